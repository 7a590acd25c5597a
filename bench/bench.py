#!/usr/bin/env python3
"""The measurements behind `make bench` (called by bench/run.sh with its work dir).

Each figure is printed next to a floor measured in the same run, on the same accelerator.

client start : `devbox --version` (or --help before --version exists), and `devbox status` of
               a running box, the lean client's paths
  floor      : a static binary that does nothing (hyperfine -N; a timed loop without it)
cold start   : stopped project -> first `devbox exec true` returns, once per guest kernel
               (DEVBOX_KERNEL=debian, DEVBOX_KERNEL=devbox: the devbox kernel's cache, or
               DEVBOX_KERNEL_VMLINUX=/path/vmlinux until that exists)
  floor      : boot-to-poweroff of the same QEMU command line (same kernel, machine, memory,
               accelerator, CPU) with a trivial init that powers off at once and no devices
  and        : the devbox kernel's cold start against the Debian kernel's
warm exec    : `devbox exec true`, p50/p99 over 100 runs, per kernel
  floor      : the guest's own fork+exec+wait of /bin/true, p50/p99 over 100 runs
  phases     : medians of the phases `DEVBOX_EXEC_TIMING=1 devbox exec true` prints on stderr
idle memory  : PSS of the box's host processes (supervisor, QEMU, virtiofsd, passt: everything
               under the supervisor) without the guest's RAM (the memfd QEMU and virtiofsd map),
               a box with [box] memory = 1536M and network open that has not used the network
               (passt starts on the box's first frame; it is counted when it runs)
  floor      : QEMU alone, the same command line without devices, not started (-S)
memory back  : QEMU's RSS while the box holds 1 GiB it touched, then each 0.5 s for 30 s after
               the box freed it (free page reporting gives it back)
disk back    : the qcow2 overlay's allocated size (st_blocks) before, after writing 1 GiB in the
               box, and for 30 s after deleting it (discard gives it back)
guest profile: the vCPU sampled through QEMU's gdbstub during warm `devbox exec true` (devbox
               kernel; bench/guest-profile.py): the share of init, the spare, the command, kernel
               threads and idle
new project with [setup], its derived disk cached : a new repo -> first `devbox exec true`
  floor      : the same for a new repo without [setup] (image base disk, no setup at all)
  (and, for scale, the first project, which runs setup and builds the derived disk)

Never fails on a number; a figure that cannot be measured here prints "n/a (why)".
"""
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

work = sys.argv[1]
devbox = os.environ["DEVBOX_BIN"]
repo = os.path.join(work, "repo")
COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "5"))
WARM_RUNS = int(os.environ.get("BENCH_WARM_RUNS", "100"))
TIMING_RUNS = int(os.environ.get("BENCH_TIMING_RUNS", "30"))
CLIENT_RUNS = int(os.environ.get("BENCH_CLIENT_RUNS", "100"))
SETUP_RUNS = int(os.environ.get("BENCH_SETUP_RUNS", "3"))
RETURN_S = float(os.environ.get("BENCH_RETURN_S", "30"))
LOAD_MIB = int(os.environ.get("BENCH_LOAD_MIB", "1024"))
MIB = 1024 * 1024


def kernel_env(kind):
    """The environment that makes the supervisor boot `kind` (it reads it when it starts)."""
    env = dict(os.environ)
    if kind:
        env["DEVBOX_KERNEL"] = kind
    if kind == "debian":
        env.pop("DEVBOX_KERNEL_VMLINUX", None)  # an early dev hook may look only at this
    return env


def dbx(*args, env=None, d=None, **kw):
    return subprocess.run([devbox, "-C", d or repo, *args], check=True, capture_output=True,
                          env=env, **kw)


def why(e):
    """One line saying why a devbox command failed."""
    if isinstance(e, subprocess.CalledProcessError):
        lines = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        return "%s exited %d%s" % (os.path.basename(str(e.cmd[0])), e.returncode,
                                   (": " + lines[-1]) if lines else "")
    return str(e)


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def newc(entries):
    """A newc cpio archive: [(name, mode, data)]."""
    out = bytearray()
    ino = 1
    for name, mode, data in entries + [("TRAILER!!!", 0, b"")]:
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        out += hdr.encode() + nb
        out += b"\0" * ((4 - len(out) % 4) % 4)
        out += data
        out += b"\0" * ((4 - len(out) % 4) % 4)
        ino += 1
    return bytes(out)


def kernel_file(arg):
    """The file behind a box QEMU's -kernel.  Each QEMU gets the devbox kernel as a copy of its
    own (/proc/self/fd/N, its pages freed once the guest runs: vm/vm-kcopy.c), which no other
    process can open: the floor's QEMU loads the file it was copied from."""
    if not arg.startswith("/proc/self/fd/"):
        return arg
    return os.environ.get("DEVBOX_KERNEL_VMLINUX") or \
        json.loads(dbx("kernel", "status", "--json").stdout)["path"]


def initrd_file(qemu_pid, arg):
    """The file behind a box QEMU's -initrd: a copy of its own as well (/proc/self/fd/N, a memfd
    named "devbox-initramfs NAME" after the cache's file, vm/vm-kcopy.c)."""
    if not arg.startswith("/proc/self/fd/"):
        return arg
    link = os.readlink("/proc/%d/fd/%s" % (qemu_pid, arg.rsplit("/", 1)[1]))
    name = link.split(" ", 1)[1].rsplit(" (deleted)", 1)[0]
    kdir = os.path.join(os.environ["DEVBOX_HOME"], "data", "kernel")
    found = [os.path.join(d, f) for d, _, fs in os.walk(kdir) for f in fs
             if f in (name, "devbox-initramfs-" + name)]
    if len(found) != 1:
        raise RuntimeError("not one initramfs named %s under %s: %s" % (name, kdir, found))
    return found[0]


def floor_argv(qemu_pid, initrd=None):
    """devbox's own QEMU command line with no devices (and the trivial initramfs if given)."""
    with open("/proc/%d/cmdline" % qemu_pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    out, i = [], 0
    # devices and their backends (some by inherited fd), the QMP monitor, its panic action
    drop_opts = {"-drive", "-chardev", "-mon", "-action", "-device", "-serial", "-netdev",
                 "-fsdev", "-blockdev"}
    while i < len(argv):
        a = argv[i]
        v = argv[i + 1] if i + 1 < len(argv) else None
        if a in drop_opts:
            i += 2
            continue
        if a == "-initrd":
            v = initrd or initrd_file(qemu_pid, v)
        if a == "-kernel":
            v = kernel_file(v)
        out.append(a)
        if v is not None and not a.startswith("-no") and a not in ("-S", "-enable-kvm", "-snapshot"):
            out.append(v)
            i += 2
        else:
            i += 1
    return out


# ---- client start -------------------------------------------------------------------------

def hyperfine(cmds, runs):
    """Median seconds of each command (hyperfine -N, or a timed loop without it)."""
    if shutil.which("hyperfine"):
        out = os.path.join(work, "hyperfine.json")
        subprocess.run(["hyperfine", "-N", "--warmup", "10", "--runs", str(runs),
                        "--export-json", out] + [shlex.join(c) for c in cmds],
                       check=True, capture_output=True)
        with open(out) as f:
            return [r["median"] for r in json.load(f)["results"]]
    res = []
    for c in cmds:
        ts = [timed(lambda: subprocess.run(c, check=True, capture_output=True))
              for _ in range(runs)]
        res.append(statistics.median(ts))
    return res


def client_start():
    noop = [os.path.join(work, "noop")]
    ver = [devbox, "--version"]
    if subprocess.run(ver, capture_output=True).returncode != 0:
        ver = [devbox, "--help"]  # the no-op there is before --version exists
    status = [devbox, "-C", repo, "status"]
    tool = "hyperfine -N" if shutil.which("hyperfine") else "timed loop"
    v, s, f = hyperfine([ver, status, noop], CLIENT_RUNS)
    print("  client start    `devbox %s` median %5.1f ms   floor (static no-op) %5.2f ms   +%.1f ms  ratio %.1fx  (aim: within +2 ms)"
          % (ver[1], v * 1e3, f * 1e3, (v - f) * 1e3, v / f))
    print("                  `devbox status` (box running) median %5.1f ms   +%.1f ms over the floor   (%s, %d runs)"
          % (s * 1e3, (s - f) * 1e3, tool, CLIENT_RUNS))


# ---- kernels: cold start, warm exec ----------------------------------------------------------

TOKEN = re.compile(r"\b([a-z][a-z0-9_]*)[=:]\s*([0-9]+(?:\.[0-9]+)?)\s*(us|µs|ms|s)?\b")


def phases(stderr):
    """The phases of DEVBOX_EXEC_TIMING's stderr line: {key: ms}, in order, or None.

    Accepted: one line containing "timing" with key=value pairs, a value with a unit (us, ms,
    s) or without one (microseconds, the unit of the protocol's TIMING frame); keys ending in
    _at are absolute times and skipped."""
    for line in stderr.decode(errors="replace").splitlines():
        if "timing" not in line.lower():
            continue
        out = {}
        for k, v, unit in TOKEN.findall(line):
            if k.endswith("_at"):
                continue
            out[k] = float(v) * {"s": 1e3, "ms": 1.0}.get(unit, 1e-3)
        if out:
            return out
    return None


def boot(kind, env, d=None):
    """Boot a stopped project with kernel `kind`: (status, guest release) or raise why not."""
    dbx("stop", env=env, d=d)
    try:
        dbx("exec", "true", env=env, d=d)
    except subprocess.CalledProcessError as e:
        raise RuntimeError("boot failed: " + why(e))
    rel = dbx("exec", "uname", "-r", env=env, d=d).stdout.decode().strip()
    if (kind == "devbox") != rel.endswith("-devbox"):
        dbx("stop", env=env, d=d)
        hint = " (no devbox kernel: `devbox kernel build`, or DEVBOX_KERNEL_VMLINUX=/path/vmlinux)" \
            if kind == "devbox" else ""
        raise RuntimeError("DEVBOX_KERNEL=%s booted %s%s" % (kind, rel, hint))
    return json.loads(dbx("status", "--json", env=env, d=d).stdout), rel


STEP = re.compile(r"([a-zA-Z][a-zA-Z ]*?) ([0-9]+(?:\.[0-9]+)?)(?=,| ms)")


def boot_steps(st):
    """The last boot's steps in ms, in order: the supervisor's (supervisor.log: prepare, spawn,
    to hello, setup) and the guest's own (console.log: kernel, api filesystems, ..., audit)."""
    out = []
    d = os.path.join(os.environ.get("DEVBOX_HOME", ""), "state", "projects", st.get("id") or "?")
    try:
        with open(os.path.join(d, "supervisor.log"), errors="replace") as f:
            ready = [l for l in f if " ready (" in l and ": prepare " in l]
        if ready:
            out += [("host " + k, float(v)) for k, v in STEP.findall(ready[-1].split(" ms: ", 1)[1])]
        with open(os.path.join(d, "console.log"), errors="replace") as f:
            guest = [l for l in f if "devbox-init: boot: ready at " in l]
        if guest:
            out += [("guest " + k, float(v)) for k, v in STEP.findall(guest[-1].split(" ms: ", 1)[1])]
    except OSError:
        pass
    return out


def run_floor(argv):
    """Seconds from QEMU's start to its exit with the trivial init, or None if it did not end."""
    try:
        return timed(lambda: subprocess.run(argv, check=True, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, timeout=60))
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None


def kernel_bench(kind, initrd):
    """Warm exec and cold start with one guest kernel; leaves its box running."""
    env = kernel_env(kind)
    r = {"kind": kind, "env": env}
    try:
        st, r["release"] = boot(kind, env)
    except RuntimeError as e:
        r["na"] = str(e)
        return r
    argv = floor_argv(st["qemu_pid"], initrd)

    # In-guest fork+exec floor and warm exec, while the VM is up.
    out = dbx("exec", "./forkexec", str(WARM_RUNS), "/bin/true", env=env).stdout.split()
    r["g50"], r["g99"] = float(out[0]) / 1000, float(out[1]) / 1000
    warm = [timed(lambda: dbx("exec", "true", env=env)) * 1000 for _ in range(WARM_RUNS)]
    r["w50"], r["w99"] = pct(warm, 50), pct(warm, 99)
    tenv = dict(env, DEVBOX_EXEC_TIMING="1")
    split, total = [], []
    for _ in range(TIMING_RUNS):
        t0 = time.monotonic()
        p = dbx("exec", "true", env=tenv)
        total.append((time.monotonic() - t0) * 1000)
        ph = phases(p.stderr)
        if ph is None:
            break
        split.append(ph)
    r["phases"] = split
    r["phases_total"] = statistics.median(total)

    # Cold start vs boot floor, interleaved so both see the same machine load.
    cold, floor, steps = [], [], []
    for _ in range(COLD_RUNS):
        dbx("stop", env=env)
        cold.append(timed(lambda: dbx("exec", "true", env=env)))
        steps.append(boot_steps(st))
        if None not in floor:  # one that did not end would not end the next time either
            floor.append(run_floor(argv))
    r["steps"] = [x for x in steps if x]
    r["c50"] = statistics.median(cold)
    ok = [f for f in floor if f is not None]
    r["f50"] = statistics.median(ok) if ok else None
    return r


def print_kernels(deb, dev):
    def cold(r, aim):
        if "na" in r:
            print("                  %-6s kernel  n/a (%s)" % (r["kind"], r["na"]))
            return
        if r["f50"] is None:
            fl = "floor n/a (the trivial init's QEMU did not exit within 60 s)"
        else:
            fl = "floor (same kernel, trivial init) %6.2f s   ratio %.2fx%s" % (
                r["f50"], r["c50"] / r["f50"], aim)
        print("                  %-6s kernel  median %6.2f s   %s   [%s]"
              % (r["kind"], r["c50"], fl, r["release"]))
        if r.get("steps"):
            keys = []
            for x in r["steps"]:
                keys += [k for k, _ in x if k not in keys]
            line = "                    boot steps (median ms):"
            for k in keys:
                item = " %s %.1f" % (k, statistics.median([v for x in r["steps"] for kk, v in x if kk == k]))
                if len(line) + len(item) > 118:
                    print(line)
                    line = "                     "
                line += item
            print(line)

    print("  cold start      stopped project -> `devbox exec true` returned, median of %d" % COLD_RUNS)
    cold(deb, "")
    cold(dev, "  (aim <= 1.2x)")
    if "na" not in deb and "na" not in dev:
        print("                  devbox kernel vs Debian kernel: %.2f s / %.2f s   ratio %.2fx  (aim <= 0.4x)"
              % (dev["c50"], deb["c50"], dev["c50"] / deb["c50"]))
    else:
        print("                  devbox kernel vs Debian kernel: n/a (%s)"
              % ("Debian kernel: " + deb["na"] if "na" in deb else "devbox kernel n/a"))

    print("  warm exec true  p50/p99 over %d runs   floor: the guest's own fork+exec+wait of /bin/true"
          % WARM_RUNS)
    for r in (deb, dev):
        if "na" in r:
            print("                  %-6s kernel  n/a (%s)" % (r["kind"], r["na"]))
            continue
        print("                  %-6s kernel  p50 %6.1f ms  p99 %6.1f ms   floor p50 %5.1f ms  p99 %5.1f ms   p50 +%.1f ms  ratio %.1fx  (aim: within +3 ms)"
              % (r["kind"], r["w50"], r["w99"], r["g50"], r["g99"], r["w50"] - r["g50"],
                 r["w50"] / r["g50"] if r["g50"] else float("inf")))
        if not r["phases"]:
            print("                    phases: n/a (DEVBOX_EXEC_TIMING=1 printed no timing line on stderr)")
            continue
        keys = []
        for ph in r["phases"]:
            keys += [k for k in ph if k not in keys]
        med = [(k, statistics.median([ph[k] for ph in r["phases"] if k in ph])) for k in keys]
        print("                    phases (median of %d runs, DEVBOX_EXEC_TIMING=1; exec took %.1f ms):"
              % (len(r["phases"]), r["phases_total"]))
        line = "                     "
        for k, v in med:
            item = " %s %.2f ms" % (k, v)
            if len(line) + len(item) > 118:
                print(line)
                line = "                     "
            line += item
        print(line)


# ---- box resources -----------------------------------------------------------------------------

# network open: the mode with the most host processes (passt, once the box sends a frame)
BOX_INI = """[box]
memory = 1536M

[network]
mode = open
"""


def children_map():
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(p))
    return kids


def tree(pid):
    kids, out, todo = children_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def pss_kib(pid, guest_kib):
    """(PSS, PSS of the guest RAM mapping, PSS of TCG's code cache) in KiB.  The guest RAM is
    QEMU's memfd RAM backend (named memory-backend-memfd; virtiofsd maps the same memfd), else
    a mapping of the guest's size; TCG translates into anonymous writable+executable memory."""
    total = guest = jit = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                total = int(line.split()[1])
    named, sized, cur = 0, 0, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split(None, 5)
                cur = {"name": parts[5].strip() if len(parts) > 5 else ""}
                perms = parts[1]
            elif cur is not None and line.startswith("Size:"):
                cur["size"] = int(line.split()[1])
            elif cur is not None and line.startswith("Pss:"):
                v = int(line.split()[1])
                if "memory-backend" in cur["name"]:
                    named += v
                elif cur.get("size") == guest_kib:
                    sized += v
                elif (not cur["name"] and "w" in perms and "x" in perms) or "jit" in cur["name"]:
                    jit += v
    guest = named if named else sized
    return total, guest, jit


def group(name):
    for pre, g in (("qemu", "qemu"), ("virtiofsd", "virtiofsd"), ("passt", "passt")):
        if name.startswith(pre):
            return g
    return "supervisor"


def idle_memory(st):
    guest_kib = st["memory_mib"] * 1024
    groups, guest_seen, jit_seen = {}, 0, 0
    ours = tree(st["pid"])
    for p in ours:
        try:
            name = "supervisor" if p == st["pid"] else group(comm(p))
            total, guest, jit = pss_kib(p, guest_kib)
        except OSError:
            continue
        groups[name] = groups.get(name, 0) + total - guest
        guest_seen += guest
        jit_seen += jit
    total = sum(groups.values()) / 1024
    # PSS splits a file page among the processes that map it: other QEMUs (another box, a
    # playground) make the binary's and libraries' pages look cheaper than they are for one box
    others = 0
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and int(p) not in ours and comm(int(p)).startswith("qemu-system"):
                others += 1
        except OSError:
            pass
    parts = " + ".join("%s %.1f" % (g, groups[g] / 1024)
                       for g in ("qemu", "virtiofsd", "supervisor", "passt") if g in groups)
    if jit_seen:
        parts += "; TCG code cache %.1f of it" % (jit_seen / 1024)
    # QEMU alone: the same command line (kernel and initramfs kept: QEMU holds a copy) without
    # devices, never started; measured while the box's QEMU runs, so the two share the binary's
    # file pages and the floor's PSS counts only its share of those
    argv = floor_argv(st["qemu_pid"]) + ["-S"]
    fl = None
    q = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            time.sleep(0.1)
            if q.poll() is not None:
                break
            try:
                t, g, _j = pss_kib(q.pid, guest_kib)
            except OSError:
                break
            if g or _ >= 30:
                time.sleep(1)
                t, g, _j = pss_kib(q.pid, guest_kib)
                fl = (t - g) / 1024
                break
    finally:
        q.kill()
        q.wait()
    print("  idle box memory host PSS without guest RAM %5.1f MiB (%s; guest RAM PSS %.0f MiB left out)"
          % (total, parts, guest_seen / 1024))
    if others:
        print("                  (%d other QEMU process%s running: they share QEMU's file pages, "
              "so this PSS is lower than for a box alone)" % (others, "es" if others > 1 else ""))
    if fl:
        print("                  floor (QEMU alone, same command line without devices, not started) %5.1f MiB   ratio %.1fx  (aim: total <= 40 MiB)"
              % (fl, total / fl))
    else:
        print("                  floor n/a (QEMU -S did not come up)   (aim: total <= 40 MiB)")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_return(st, env, d):
    qpid = st["qemu_pid"]
    before = rss_kib(qpid)
    peak, stop = [before], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(qpid))
            time.sleep(0.2)

    th = threading.Thread(target=sample)
    th.start()
    try:
        dbx("exec", "./boxload", "mem", str(LOAD_MIB), "3", env=env, d=d)
    except subprocess.CalledProcessError as e:
        stop.set()
        th.join()
        print("  memory back     n/a (allocating %d MiB in the box: %s)" % (LOAD_MIB, why(e)))
        return
    stop.set()
    th.join()
    pk = max(peak[0], rss_kib(qpid))
    # sampled until it is back to the aim (then 2 s more: it stays) or for RETURN_S
    t0, reached, last = time.monotonic(), None, pk
    while time.monotonic() - t0 < RETURN_S:
        time.sleep(0.5)
        last = rss_kib(qpid)
        if reached is None and last <= 0.3 * pk:
            reached = time.monotonic() - t0
        if reached is not None and time.monotonic() - t0 >= reached + 2:
            break
    print("  memory back     QEMU RSS %5.0f MiB before, peak %5.0f MiB with %d MiB touched in the box, %5.0f MiB %.1f s after it freed it"
          % (before / 1024, pk / 1024, LOAD_MIB, last / 1024, time.monotonic() - t0))
    print("                  %.0f%% of the peak%s  (aim <= 30%% within 30 s)"
          % (100.0 * last / pk, "; <= 30%% after %.1f s" % reached if reached is not None
             else "; never <= 30%% in %.0f s" % RETURN_S))


def alloc(path):
    return os.stat(path).st_blocks * 512


def disk_return(st, env, d):
    disk = os.path.join(os.environ["DEVBOX_HOME"], "data", "projects", st["id"], "disk.qcow2")
    if not os.path.exists(disk):
        print("  disk back       n/a (no overlay at %s)" % disk)
        return
    blob = "/var/tmp/bench-blob"
    before = alloc(disk)
    try:
        dbx("exec", "./boxload", "file", blob, str(LOAD_MIB), env=env, d=d)
        full = alloc(disk)
        dbx("exec", "sh", "-c", "rm %s && sync" % blob, env=env, d=d)
    except subprocess.CalledProcessError as e:
        print("  disk back       n/a (writing %d MiB in the box: %s)" % (LOAD_MIB, why(e)))
        return
    t0, reached, last = time.monotonic(), None, alloc(disk)
    while time.monotonic() - t0 < RETURN_S:
        last = alloc(disk)
        if reached is None and last <= 1.1 * before:
            reached = time.monotonic() - t0
            break
        time.sleep(0.5)
    print("  disk back       qcow2 overlay allocated %6.1f MiB before, %6.1f MiB after writing %d MiB in the box, %6.1f MiB %s after deleting it"
          % (before / MIB, full / MIB, LOAD_MIB, last / MIB,
             "%.1f s" % reached if reached is not None else "%.0f s" % RETURN_S))
    print("                  ratio %.2fx of before  (aim <= 1.10x)" % (last / before if before else float("inf")))


def box_bench(kind):
    d = new_repo("box", BOX_INI)
    os.link(os.path.join(work, "boxload"), os.path.join(d, "boxload"))
    env = kernel_env(kind)
    try:
        st, rel = boot(kind, env, d)
    except RuntimeError as e:
        print("  box resources   n/a (%s)" % e)
        return
    print("  box resources   a box with [box] memory = 1536M, network open (unused: passt not started),"
          " %s kernel [%s]" % (kind, rel))
    time.sleep(5)  # idle: the boot's own work done
    idle_memory(st)
    memory_return(st, env, d)
    disk_return(st, env, d)
    subprocess.run([devbox, "-C", d, "rm", "--force"], check=True, capture_output=True)


# ---- new project with [setup] --------------------------------------------------------------------

SETUP_INI = """[setup]
run = dd if=/dev/urandom of=/opt-blob bs=1M count=32 2>/dev/null
      echo installed > /etc/bench-tool
network = none
"""


def new_repo(name, ini):
    d = os.path.join(work, name)
    os.makedirs(d)
    subprocess.run(["git", "-C", d, "init", "-q"], check=True)
    if ini:
        with open(os.path.join(d, "devbox.ini"), "w") as f:
            f.write(ini)
        subprocess.run([devbox, "-C", d, "trust"], check=True, capture_output=True)
    return d


def first_exec(d):
    t = timed(lambda: subprocess.run([devbox, "-C", d, "exec", "true"], check=True,
                                     capture_output=True))
    subprocess.run([devbox, "-C", d, "rm", "--force"], check=True, capture_output=True)
    return t


def setup_bench():
    """Time to first exec of a new project: with a cached derived disk vs. without setup."""
    built = first_exec(new_repo("setup-first", SETUP_INI))
    cached, plain = [], []
    for i in range(SETUP_RUNS):
        cached.append(first_exec(new_repo("setup-cached-%d" % i, SETUP_INI)))
        plain.append(first_exec(new_repo("plain-%d" % i, None)))
    c50, p50 = statistics.median(cached), statistics.median(plain)
    print("  new project     with [setup], derived disk cached: median of %d %6.2f s   without [setup] %6.2f s   ratio %.2fx  (aim <= 1.1x)"
          % (SETUP_RUNS, c50, p50, c50 / p50))
    print("                  (the first project with that setup, which runs it: %.2f s)" % built)


# ---- where a warm exec's guest time goes ---------------------------------------------------------

PROFILE_S = float(os.environ.get("BENCH_PROFILE_S", "10"))


def guest_profile_bench():
    """The guest's vCPU, sampled 100 times a second through QEMU's gdbstub (DEVBOX_GUEST_GDB)
    while `devbox exec true` runs again and again: the share of each process (bench/
    guest-profile.py).  The devbox kernel only: the Debian kernel ships no symbols."""
    gp = load_guest_profile()
    env = dict(kernel_env("devbox"), DEVBOX_GUEST_GDB="1")
    try:
        vml = gp.find_vmlinux()
        dbx("stop", env=env)
        for _ in range(5):  # the boot, the spare made after its first command, warm
            dbx("exec", "true", env=env)
        rows = gp.sample_while(gp.find_socket(repo), vml, PROFILE_S, 100,
                               [devbox, "-C", repo, "exec", "true"], env=env)
    except (Exception, SystemExit) as e:  # a figure, not the run: n/a and on
        print("  guest profile   n/a (%s)" % why(e))
        return
    finally:  # no box of the later parts keeps the gdbstub
        subprocess.run([devbox, "-C", repo, "stop"], env=env, capture_output=True)
    share, user, _ = gp.split(rows)
    cmd = share.get("true", 0)
    init = share.get("init", 0) + share.get("devbox-spare", 0)
    kthreads = sum(v for p, v in share.items() if p in ("kworker", "rcu_sched", "ksoftirqd", "swapper"))
    print("  guest profile   warm `devbox exec true` again and again, the vCPU sampled %d times in %.0f s (gdbstub):"
          % (len(rows), PROFILE_S))
    print("                  init %.0f%% + spare %.0f%% (their user mode %.0f%%), the command %.0f%%, kernel threads %.0f%%,"
          " idle %.0f%%, entry code %.0f%%   init+spare / command %.1fx"
          % (100 * share.get("init", 0), 100 * share.get("devbox-spare", 0),
             100 * (user.get("init", 0) + user.get("devbox-spare", 0)), 100 * cmd, 100 * kthreads,
             100 * share.get("idle", 0), 100 * share.get("?", 0), init / cmd if cmd else 0))


def load_guest_profile():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "guest_profile", os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest-profile.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def section(name, t0):
    """How long a part took, on stderr: what to trim when `make bench` grows past 10 minutes."""
    print("devbox bench: %s took %.0f s" % (name, time.monotonic() - t0), file=sys.stderr)
    return time.monotonic()


def main():
    t0 = time.monotonic()
    with open(os.path.join(work, "trivial-init"), "rb") as f:
        init = f.read()
    initrd = os.path.join(work, "floor.cpio")
    with open(initrd, "wb") as f:
        f.write(newc([("dev", 0o40755, b""), ("init", 0o100755, init)]))

    deb = kernel_bench("debian", initrd)
    if "na" in deb:  # nothing else means much without a box
        raise SystemExit("devbox bench: the Debian kernel's box did not come up: " + deb["na"])
    accel = json.loads(dbx("status", "--json", env=deb["env"]).stdout)["accel"]
    print("devbox bench (accelerator: %s)" % accel)
    sys.stdout.flush()
    client_start()  # the Debian box is up: `status` takes the path of a running box
    t0 = section("Debian kernel + client", t0)
    dev = kernel_bench("devbox", initrd)
    dbx("stop")
    print_kernels(deb, dev)
    sys.stdout.flush()
    t0 = section("devbox kernel", t0)
    if "na" not in dev:
        guest_profile_bench()
        sys.stdout.flush()
        t0 = section("guest profile", t0)
    box_bench(os.environ.get("BENCH_BOX_KERNEL") or ("debian" if "na" in dev else "devbox"))
    sys.stdout.flush()
    t0 = section("box resources", t0)
    setup_bench()
    section("new project", t0)


main()

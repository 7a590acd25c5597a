#!/usr/bin/env python3
"""The measurements behind `make bench` (called by bench/run.sh with its work dir).

cold start : stopped project -> first `devbox exec true` returns
  floor    : boot-to-poweroff of the same QEMU command line (same kernel, machine, memory,
             accelerator, CPU) with a trivial init that powers off at once and no devices
warm exec  : `devbox exec true`, p50/p99 over 100 runs
  floor    : the guest's own fork+exec+wait of /bin/true, p50/p99 over 100 runs
new project with [setup], its derived disk cached : a new repo -> first `devbox exec true`
  floor    : the same for a new repo without [setup] (image base disk, no setup at all)
  (and, for scale, the first project, which runs setup and builds the derived disk)
"""
import json
import os
import statistics
import subprocess
import sys
import time

work = sys.argv[1]
devbox = os.environ["DEVBOX_BIN"]
repo = os.path.join(work, "repo")
COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "5"))
WARM_RUNS = int(os.environ.get("BENCH_WARM_RUNS", "100"))


def dbx(*args, **kw):
    return subprocess.run([devbox, "-C", repo, *args], check=True, capture_output=True, **kw)


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


def floor_argv(qemu_pid, initrd):
    """devbox's own QEMU command line with the trivial initramfs and no devices."""
    with open("/proc/%d/cmdline" % qemu_pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    out, i = [], 0
    drop_opts = {"-drive", "-chardev", "-mon", "-action"}  # devices, the QMP monitor, its panic action
    while i < len(argv):
        a = argv[i]
        v = argv[i + 1] if i + 1 < len(argv) else None
        if a in drop_opts or (a == "-device" and not v.startswith("virtio-serial")) or a == "-serial":
            i += 2
            continue
        if a == "-device":  # virtio-serial-device and the agent port: drop too
            i += 2
            continue
        if a == "-initrd":
            v = initrd
        out.append(a)
        if v is not None and not a.startswith("-no") and a not in ("-nographic",):
            out.append(v)
            i += 2
        else:
            i += 1
    return out


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
    for i in range(COLD_RUNS):
        cached.append(first_exec(new_repo("setup-cached-%d" % i, SETUP_INI)))
        plain.append(first_exec(new_repo("plain-%d" % i, None)))
    c50, p50 = statistics.median(cached), statistics.median(plain)
    print("  new project     with [setup], derived disk cached: median %6.2f s   without [setup] %6.2f s   ratio %.2fx  (aim <= 1.1x)"
          % (c50, p50, c50 / p50))
    print("                  (the first project with that setup, which runs it: %.2f s)" % built)


def main():
    # Boot once to learn the accelerator and QEMU command line devbox uses.
    dbx("exec", "true")
    st = json.loads(dbx("status", "--json").stdout)
    accel = st["accel"]
    with open(os.path.join(work, "trivial-init"), "rb") as f:
        init = f.read()
    initrd = os.path.join(work, "floor.cpio")
    with open(initrd, "wb") as f:
        f.write(newc([("dev", 0o40755, b""), ("init", 0o100755, init)]))
    argv = floor_argv(st["qemu_pid"], initrd)

    # In-guest fork+exec floor and warm exec, while the VM is up.
    out = dbx("exec", "./forkexec", str(WARM_RUNS), "/bin/true").stdout.split()
    g50, g99 = float(out[0]) / 1000, float(out[1]) / 1000
    warm = [timed(lambda: dbx("exec", "true")) * 1000 for _ in range(WARM_RUNS)]
    w50, w99 = pct(warm, 50), pct(warm, 99)

    # Cold start vs boot floor, interleaved so both see the same machine load.
    cold, floor = [], []
    for _ in range(COLD_RUNS):
        dbx("stop")
        cold.append(timed(lambda: dbx("exec", "true")))
        floor.append(timed(lambda: subprocess.run(argv, check=True, stdin=subprocess.DEVNULL,
                                                  stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL, timeout=120)))
    dbx("stop")
    c50, f50 = statistics.median(cold), statistics.median(floor)

    print("devbox bench (accelerator: %s)" % accel)
    print("  cold start      median %6.2f s   floor (boot-to-poweroff, trivial init) %6.2f s   ratio %.2fx  (aim <= 1.3x)"
          % (c50, f50, c50 / f50))
    print("  warm exec true  p50 %6.1f ms  p99 %6.1f ms   in-guest fork+exec+wait p50 %5.1f ms  p99 %5.1f ms"
          % (w50, w99, g50, g99))
    print("                  p50 over floor: +%.1f ms   ratio %.1fx  (aim: within +2 ms)"
          % (w50 - g50, w50 / g50 if g50 else float("inf")))
    setup_bench()


main()

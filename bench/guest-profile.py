#!/usr/bin/env python3
"""bench/guest-profile.py: where a box's guest spends its (first) vCPU, by process and kernel function.

  DEVBOX_GUEST_GDB=1 devbox exec true          # a box started with QEMU's gdbstub
  bench/guest-profile.py [-C DIR] [--seconds S] [--hz N] [--vmlinux PATH] [--raw FILE]
                         [-- CMD ARG...]       # CMD run again and again while it samples

Samples the guest through QEMU's gdbstub, which the supervisor gives the box when it is
started with DEVBOX_GUEST_GDB set (a unix socket in the project's run directory, 0700): every
1/N s it stops the vCPU, reads its program counter and the task the guest kernel is running
(its per-CPU `current_task`, the task's `comm`), and lets it go on.  The guest kernel's
symbols come from the devbox kernel's vmlinux (`devbox kernel status` names it); the Debian
kernel ships none, so its boxes are not profiled.  A stop costs ~1 ms, so 100 samples a
second slow the guest by about a tenth; shares are what matters, not absolute times.  The first
vCPU only (a box of several: the others run on meanwhile).  Under KVM on an Intel host the
guest may isolate its page tables: a stop in user mode then sees no kernel memory, and such
samples are "?" (so are stops in the entry code, before the kernel's per-CPU base is loaded).
A VM held stopped for 90 s is declared dead by its supervisor: this tool stops it ~1 ms at a
time; an interactive debugger on the same socket must not stay longer.

The output: samples per process (comm; kworkers merged), the part of each in user mode, and
the kernel functions it was in most.  "idle" is the idle task in its idle routine: the vCPU
had nothing to run (waiting for the host: virtio, the client, the supervisor).
"""
import argparse
import bisect
import collections
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

# QEMU's `g` packet for x86_64: 16 GPRs, rip (8 bytes each), eflags, 6 segment selectors (4
# each), then fs_base, gs_base, k_gs_base (8 each)
RIP_OFF, GS_BASE_OFF, KGS_BASE_OFF = 128, 172, 180
KERNEL_MIN = 0xFFFFFFFF80000000


class Gdb:
    """A minimal gdb remote-protocol client (all-stop mode)."""

    def __init__(self, path, timeout=5.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.running = False
        self.buf = b""
        try:
            self.s.connect(path)
        except ConnectionRefusedError:
            raise SystemExit("guest-profile: nothing listens on %s: start the box with "
                             "DEVBOX_GUEST_GDB=1 (devbox stop; DEVBOX_GUEST_GDB=1 devbox exec true)" % path)
        # QEMU stops the VM on a connection; 7.2 also says so unasked, 8.1 and later only when
        # asked: what came unasked is dropped, then the stop reason is asked for
        self.s.settimeout(0.2)
        try:
            while self.s.recv(65536):
                pass
        except socket.timeout:
            pass
        self.s.settimeout(timeout)
        self.cmd(b"?")

    def reply(self):
        while True:
            i = self.buf.find(b"$")
            if i >= 0:
                j = self.buf.find(b"#", i)
                if j >= 0 and len(self.buf) >= j + 3:
                    p = self.buf[i + 1:j]
                    self.buf = self.buf[j + 3:]
                    self.s.sendall(b"+")
                    return p
            d = self.s.recv(65536)
            if not d:
                raise EOFError("the gdbstub closed the connection")
            self.buf += d

    def send(self, c):
        self.s.sendall(b"$" + c + b"#" + b"%02x" % (sum(c) & 0xFF))

    def cmd(self, c):
        self.send(c)
        return self.reply()

    def mem(self, addr, n):
        out = b""
        while n > 0:
            k = min(n, 1024)
            r = self.cmd(b"m%x,%x" % (addr, k))
            if len(r) == 3 and r.startswith(b"E"):
                raise OSError("cannot read guest memory at %#x" % addr)
            out += bytes.fromhex(r.decode())
            addr += k
            n -= k
        return out

    def regs(self):
        r = bytes.fromhex(self.cmd(b"g").decode())
        return (struct.unpack_from("<Q", r, RIP_OFF)[0], struct.unpack_from("<Q", r, GS_BASE_OFF)[0],
                struct.unpack_from("<Q", r, KGS_BASE_OFF)[0])

    def cont(self):
        self.send(b"c")
        self.running = True

    def stop(self):
        self.s.sendall(b"\x03")
        r = self.reply()
        self.running = False
        return r

    def detach(self):
        """Lets the VM run on; never raises.  QEMU takes a packet that comes while the VM runs
        as a request to stop it (and drops it), and does not resume a VM whose debugger went
        away: so stopped first, then detached."""
        try:
            self.s.settimeout(2.0)
            if self.running:
                self.stop()
            self.cmd(b"D")
        except Exception:
            pass
        self.s.close()


class Symbols:
    def __init__(self, vmlinux):
        out = subprocess.run(["nm", "-n", vmlinux], capture_output=True, text=True, check=True).stdout
        self.text, self.data = [], {}
        for line in out.splitlines():
            p = line.split()
            if len(p) != 3:
                continue
            if p[1] in "tTwW":
                self.text.append((int(p[0], 16), p[2]))
            else:
                self.data[p[2]] = int(p[0], 16)
        if not self.text:
            raise SystemExit("guest-profile: no symbols in %s" % vmlinux)
        self.addrs = [a for a, _ in self.text]

    def name(self, pc):
        k = bisect.bisect_right(self.addrs, pc) - 1
        return self.text[k][1] if k >= 0 else "?"

    def current_task(self):
        """The per-CPU offset of the running task: current_task (6.1), pcpu_hot's first field
        (6.2 and later)."""
        for n in ("current_task", "pcpu_hot"):
            if n in self.data:
                return self.data[n]
        raise SystemExit("guest-profile: the vmlinux has neither current_task nor pcpu_hot")


def run_dir():
    h = os.environ.get("DEVBOX_HOME")
    if h:
        return os.path.join(h, "run")
    rt = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(rt, "devbox") if rt and rt.startswith("/") else "/tmp/devbox-%d" % os.getuid()


def devbox():
    return os.environ.get("DEVBOX_BIN", "devbox")


def find_socket(project):
    st = json.loads(subprocess.run([devbox(), "-C", project, "status", "--json"], capture_output=True,
                                   text=True, check=True).stdout)
    if st.get("state") != "running":
        raise SystemExit("guest-profile: the box of %s is not running" % project)
    path = os.path.join(run_dir(), st["id"], "gdb.sock")
    if not os.path.exists(path):
        raise SystemExit("guest-profile: %s has no gdbstub: start it with DEVBOX_GUEST_GDB=1 "
                         "(devbox stop; DEVBOX_GUEST_GDB=1 devbox exec true)" % project)
    return path


def find_vmlinux():
    out = subprocess.run([devbox(), "kernel", "status"], capture_output=True, text=True).stdout
    m = re.search(r"(/\S+/vmlinux)\b", out)
    if not m:
        raise SystemExit("guest-profile: no devbox kernel built (devbox kernel status); give --vmlinux")
    return m.group(1)


def sample(sock, vmlinux, seconds, hz):
    """[(comm, user?, function)], one per sample."""
    sy = Symbols(vmlinux)
    cur_off = sy.current_task()
    init_task = sy.data.get("init_task")
    if not init_task:
        raise SystemExit("guest-profile: the vmlinux has no init_task")
    rows, g = [], None
    try:
        g = Gdb(sock)
        comm_off = -1
        for _ in range(100):  # kernel memory, readable once the vCPU stops in the kernel (a
            try:              # user-mode stop under page-table isolation maps none of it)
                comm_off = g.mem(init_task, 4096).find(b"swapper")
                break
            except OSError:
                g.cont()
                time.sleep(0.001)
                g.stop()
        if comm_off < 0:
            raise SystemExit("guest-profile: cannot find comm in the guest's init_task")
        g.cont()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(1.0 / hz)
            g.stop()
            pc, gs, kgs = g.regs()
            kern = pc >= KERNEL_MIN
            try:  # in user mode the kernel's per-CPU base is the inactive one
                task = struct.unpack_from("<Q", g.mem((gs if kern else kgs) + cur_off, 8))[0]
                comm = g.mem(task + comm_off, 16).split(b"\0")[0].decode(errors="replace")
            except (OSError, ValueError):
                comm = "?"  # entry code before swapgs
            rows.append((comm, not kern, sy.name(pc) if kern else "(user)"))
            g.cont()
        g.stop()
    finally:
        if g:
            g.detach()
    return rows


def sample_while(sock, vmlinux, seconds, hz, cmd=None, cwd=None, env=None):
    """sample(), with cmd (an argv) run again and again meanwhile, from 0.3 s before."""
    stop = threading.Event()

    def workload():
        while not stop.is_set():
            subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    th = threading.Thread(target=workload) if cmd else None
    try:
        if th:
            th.start()
            time.sleep(0.3)
        return sample(sock, vmlinux, seconds, hz)
    finally:
        stop.set()
        if th:
            th.join()


def process(comm, fn):
    if comm.startswith("swapper") and "idle" in fn:
        return "idle"
    if comm.startswith("kworker"):
        return "kworker"
    return re.sub(r"/\d+$", "", comm)


def split(rows):
    """{process: share}, {process: user share}, {process: Counter of functions}."""
    n = len(rows) or 1
    by, user, fns = collections.Counter(), collections.Counter(), collections.defaultdict(collections.Counter)
    for comm, u, fn in rows:
        p = process(comm, fn)
        by[p] += 1
        user[p] += u
        fns[p][fn] += 1
    return ({p: v / n for p, v in by.items()}, {p: v / n for p, v in user.items()}, fns)


def report(rows, seconds, top=6):
    share, user, fns = split(rows)
    print("guest profile: %d samples in %.0f s" % (len(rows), seconds))
    for p, v in sorted(share.items(), key=lambda kv: -kv[1]):
        f = ", ".join("%s %d" % kv for kv in fns[p].most_common(top) if kv[0] != "(user)")
        print("  %-16s %5.1f%%  (user %4.1f%%)  %s" % (p, 100 * v, 100 * user[p], f))


def main():
    # interrupted or terminated, the finally clauses run: a VM left stopped would be taken for
    # dead (a background job starts with SIGINT ignored, and SIGTERM ends Python at once)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-C", dest="project", default=".")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--hz", type=float, default=100)
    ap.add_argument("--vmlinux")
    ap.add_argument("--socket")
    ap.add_argument("--raw")
    ap.add_argument("cmd", nargs="*")
    a = ap.parse_args()
    if not 1 <= a.hz <= 1000 or not 0 < a.seconds <= 3600:
        raise SystemExit("guest-profile: --hz 1..1000, --seconds up to 3600")
    sock = a.socket or find_socket(a.project)
    vml = a.vmlinux or find_vmlinux()
    rows = sample_while(sock, vml, a.seconds, a.hz, a.cmd, cwd=a.project)
    if a.raw:
        with open(a.raw, "w") as f:
            f.writelines("%s\t%s\t%s\n" % (c, "u" if u else "k", fn) for c, u, fn in rows)
    report(rows, a.seconds)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The measurements behind `make bench` (called by bench/run.sh with its work dir).

cold start : stopped project -> first `devbox exec true` returns
  floor    : boot-to-poweroff of the same QEMU command line (same kernel, machine, memory,
             accelerator, CPU) with a trivial init that powers off at once and no devices
warm exec  : `devbox exec true`, p50/p99 over 100 runs
  floor    : the guest's own fork+exec+wait of /bin/true, p50/p99 over 100 runs
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


main()

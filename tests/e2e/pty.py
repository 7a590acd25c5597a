#!/usr/bin/env python3
"""Run a command on a fresh pseudo terminal and script it, like a tiny expect(1).

usage: pty.py [--rows R] [--cols C] [--timeout S] [STEP...] -- CMD [ARG...]

Steps run in order:
  --expect REGEX      wait until the output (since the previous --expect) matches REGEX
  --send TEXT         write TEXT to the terminal (Python escapes: \\n, \\r, \\x03, \\x04)
  --sleep S           wait S seconds
  --resize RxC        set the terminal size (the kernel sends SIGWINCH to the foreground group)
After the last step the output is read until the command exits.  Everything the command wrote
to the terminal goes to stdout; the exit status is the command's (128+N for signal N), or 124
when --timeout (default 60) expires (the command is then killed) or an --expect never matches.
"""
import argparse
import errno
import fcntl
import os
import re
import select
import signal
import struct
import sys
import termios
import time


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit("usage: pty.py [options] -- CMD [ARG...]")
    i = argv.index("--")
    opts, cmd = argv[:i], argv[i + 1:]
    rows, cols, timeout = 24, 80, 60.0
    steps = []
    k = 0
    while k < len(opts):
        o = opts[k]
        if o in ("--rows", "--cols", "--timeout", "--expect", "--send", "--sleep", "--resize"):
            if k + 1 >= len(opts):
                sys.exit(f"pty.py: {o} needs a value")
            v = opts[k + 1]
            k += 2
            if o == "--rows":
                rows = int(v)
            elif o == "--cols":
                cols = int(v)
            elif o == "--timeout":
                timeout = float(v)
            elif o == "--send":
                steps.append(("send", v.encode().decode("unicode_escape").encode("latin-1")))
            elif o == "--expect":
                steps.append(("expect", re.compile(v.encode())))
            elif o == "--sleep":
                steps.append(("sleep", float(v)))
            else:
                r, c = v.lower().split("x")
                steps.append(("resize", (int(r), int(c))))
        else:
            sys.exit(f"pty.py: unknown option {o}")
    if not cmd:
        sys.exit("pty.py: no command")

    master, slave = os.openpty()
    set_size(slave, rows, cols)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(master)
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            if slave > 2:
                os.close(slave)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execvp(cmd[0], cmd)
        except Exception as e:  # noqa: BLE001
            os.write(2, f"pty.py: exec {cmd[0]}: {e}\n".encode())
        os._exit(127)
    os.close(slave)

    out = bytearray()
    mark = 0  # where the next --expect starts looking
    deadline = time.monotonic() + timeout
    status = None
    eof = False
    timed_out = False

    def pump(wait):
        nonlocal eof
        if eof:
            time.sleep(min(wait, 0.05))
            return
        r, _, _ = select.select([master], [], [], wait)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                data = b""
            if not data:
                eof = True
            out.extend(data)

    def reap():
        nonlocal status
        if status is None:
            p, st = os.waitpid(pid, os.WNOHANG)
            if p == pid:
                status = st

    for kind, arg in steps:
        if timed_out:
            break
        if kind == "send":
            os.write(master, arg)
        elif kind == "sleep":
            end = time.monotonic() + arg
            while time.monotonic() < end:
                pump(max(0.0, min(0.1, end - time.monotonic())))
        elif kind == "resize":
            set_size(master, *arg)
        elif kind == "expect":
            while True:
                m = arg.search(bytes(out), mark)
                if m:
                    mark = m.end()
                    break
                reap()
                if time.monotonic() > deadline or (eof and status is not None):
                    sys.stderr.write(f"pty.py: never saw {arg.pattern!r}\n")
                    timed_out = True
                    break
                pump(0.1)

    while not timed_out:
        reap()
        if status is not None and eof:
            break
        if status is not None:
            # the command is gone; drain what is left without blocking forever
            pump(0.2)
            r, _, _ = select.select([master], [], [], 0)
            if not r:
                break
            continue
        if time.monotonic() > deadline:
            timed_out = True
            break
        pump(0.1)

    if timed_out and status is None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
        sys.stderr.write("pty.py: timed out\n")
    sys.stdout.buffer.write(bytes(out))
    sys.stdout.flush()
    if timed_out:
        sys.exit(124)
    if os.WIFSIGNALED(status):
        sys.exit(128 + os.WTERMSIG(status))
    sys.exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()

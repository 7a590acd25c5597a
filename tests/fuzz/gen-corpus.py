#!/usr/bin/env python3
"""Generate the seed corpus for tests/fuzz/fuzz-protocol.c.

Each file is one byte of chunk-size seed followed by a stream of frames as guest/protocol.h
describes them (12-byte little-endian header + payload).  The output is deterministic; the
files are committed, rerun this script after changing the protocol:

    python3 tests/fuzz/gen-corpus.py tests/fuzz/corpus/protocol
"""
import os
import struct
import sys

VERSION = 1
FRAME_MAX = 256 * 1024
MAX_ARGS = 4096

HELLO, SETUP, READY, SHUTDOWN, PING, PONG = 1, 2, 3, 4, 5, 6
EXEC, STARTED, STDIN, STDOUT, STDERR, CREDIT, RESIZE, SIGNAL, EXIT, ERROR = range(10, 20)
STATUS, STATUS_REPLY, STOP = 30, 31, 32

TTY, STDIN_OPEN, LOGIN = 1, 2, 4


def hdr(typ, session, length, version=VERSION, flags=0):
    return struct.pack("<BBHII", version, typ, flags, session, length)


def frame(typ, session=0, payload=b""):
    return hdr(typ, session, len(payload)) + payload


def u8(v):
    return struct.pack("<B", v)


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def s(v):
    if isinstance(v, str):
        v = v.encode()
    return u32(len(v)) + v


def exec_req(argv, env=(), cwd="/", user="", flags=0, rows=0, cols=0, argc=None, envc=None):
    out = u32(flags) + u16(rows) + u16(cols) + s(user) + s(cwd)
    out += u32(len(argv) if argc is None else argc) + b"".join(s(a) for a in argv)
    out += u32(len(env) if envc is None else envc) + b"".join(s(e) for e in env)
    return out


def setup(tag="ws", path="/home/dev/proj", uid=1000, gid=1000, hostname="proj"):
    return s(tag) + s(path) + u32(uid) + u32(gid) + s(hostname)


def hello(release="6.1.0-28-cloud-amd64", version=VERSION):
    return u32(version) + s(release)


def error_msg(code, msg):
    return u32(code) + s(msg)


def session_stream(sid):
    """A whole exec session as the guest and host would exchange it."""
    return b"".join([
        frame(EXEC, sid, exec_req(["sh", "-c", "echo hi; exit 7"], ["PATH=/bin", "HOME=/root"],
                                  cwd="/home/dev/proj", user="1000:1000", flags=STDIN_OPEN)),
        frame(STARTED, sid, u32(42)),
        frame(STDIN, sid, b"input\n"),
        frame(STDIN, sid),
        frame(STDOUT, sid, b"hi\n"),
        frame(CREDIT, sid, u8(1) + u32(3)),
        frame(STDOUT, sid),
        frame(STDERR, sid),
        frame(EXIT, sid, u8(0) + u32(7)),
    ])


CORPUS = {
    # valid streams
    "boot": bytes([0]) + frame(HELLO, 0, hello()) + frame(SETUP, 0, setup()) + frame(READY)
    + frame(PING, 0, u64(0x1122334455667788)) + frame(PONG, 0, u64(0x1122334455667788)),
    "session": bytes([1]) + session_stream(1),
    "two-sessions": bytes([2]) + session_stream(1) + session_stream(0xFFFFFFFF),
    "tty-login": bytes([3]) + frame(EXEC, 5, exec_req([], flags=TTY | LOGIN | STDIN_OPEN,
                                                      rows=24, cols=80))
    + frame(RESIZE, 5, u16(50) + u16(132)) + frame(SIGNAL, 5, u32(2))
    + frame(EXIT, 5, u8(1) + u32(2)),
    "binary-data": bytes([4]) + frame(STDOUT, 3, bytes(range(256)) * 8)
    + frame(STDERR, 3, b"\0" * 100),
    "client": bytes([5]) + frame(STATUS) + frame(STATUS_REPLY, 0, s('{"state":"running"}'))
    + frame(STOP) + frame(SHUTDOWN),
    "errors": bytes([6]) + frame(ERROR, 9, error_msg(127, "exec 'nope': No such file or directory"))
    + frame(ERROR, 0, error_msg(125, "")),
    "max-args": bytes([7]) + frame(EXEC, 1, exec_req(["a"] * MAX_ARGS)),
    "big-stdin": bytes([8]) + frame(STDIN, 1, b"x" * 32768) + frame(CREDIT, 1, u8(0) + u32(32768)),
    # malformed streams
    "bad-version": bytes([9]) + hdr(STDOUT, 1, 3, version=2) + b"abc" + frame(STDOUT, 1, b"ok"),
    "unknown-type": bytes([10]) + hdr(99, 4, 5) + b"xxxxx" + hdr(0, 4, 0)
    + frame(EXIT, 4, u8(0) + u32(0)),
    "oversized": bytes([11]) + hdr(STDOUT, 7, FRAME_MAX + 1) + b"\x01\x0d" * ((FRAME_MAX + 1) // 2)
    + b"\x00" + frame(STDERR, 7, b"after"),
    "truncated-header": bytes([12]) + frame(READY) + hdr(STDOUT, 1, 10)[:7],
    "truncated-payload": bytes([13]) + hdr(STDOUT, 1, 100) + b"short",
    "exec-argc-too-big": bytes([14]) + frame(EXEC, 1, exec_req(["a"] * (MAX_ARGS + 1))),
    "exec-count-lies": bytes([15]) + frame(EXEC, 1, exec_req(["true"], argc=1000000))
    + frame(EXEC, 2, exec_req(["true"], ["A=1"], envc=0xFFFFFFFF)),
    "exec-nul": bytes([16]) + frame(EXEC, 1, exec_req(["a\0b"])) + frame(EXEC, 2, exec_req(["x"], cwd="/tmp\0"))
    + frame(EXEC, 3, exec_req(["x"], user="ro\0ot")),
    "exec-relative-cwd": bytes([17]) + frame(EXEC, 1, exec_req(["true"], cwd="tmp"))
    + frame(EXEC, 2, exec_req(["true"], cwd="")),
    "exec-bad-env": bytes([18]) + frame(EXEC, 1, exec_req(["true"], ["FOO"]))
    + frame(EXEC, 2, exec_req(["true"], ["=x"])),
    "exec-flags": bytes([19]) + frame(EXEC, 1, exec_req(["true"], flags=8))
    + frame(EXEC, 2, exec_req([], flags=0)),
    "exec-trailing": bytes([20]) + frame(EXEC, 1, exec_req(["true"]) + b"\0"),
    "bad-small": bytes([21]) + frame(CREDIT, 1, u8(3) + u32(1)) + frame(CREDIT, 1, u8(0))
    + frame(EXIT, 1, u8(1) + u32(0)) + frame(EXIT, 1, u8(0) + u32(256))
    + frame(EXIT, 1, u8(2) + u32(1)) + frame(RESIZE, 1, u16(1)) + frame(SIGNAL, 1, u64(9)),
    "bad-hello": bytes([22]) + frame(HELLO, 0, hello("x" * 300)) + frame(HELLO, 0, hello() + b"!")
    + frame(HELLO, 0, u32(1) + u32(1000)) + frame(SETUP, 0, setup(path="rel")),
    "string-too-long": bytes([23]) + frame(EXEC, 1, exec_req(["a" * (64 * 1024 + 1)]))
    + frame(ERROR, 1, error_msg(1, "e" * 5000)),
    "empty": b"",
    "seed-only": b"\xff",
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus",
                                                             "protocol")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(CORPUS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(CORPUS)} files in {out}")


if __name__ == "__main__":
    main()

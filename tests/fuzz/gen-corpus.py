#!/usr/bin/env python3
"""Generate the seed corpus for tests/fuzz/fuzz-protocol.c.

Each file is one byte of chunk-size seed followed by a stream of frames as common/protocol.h
describes them (12-byte little-endian header + payload).  The output is deterministic; the
files are committed, rerun this script after changing the protocol:

    python3 tests/fuzz/gen-corpus.py tests/fuzz/corpus/protocol
"""
import base64
import hashlib
import os
import struct
import sys

VERSION = 12  # DBX_PROTO_VERSION (test-protocol checks the seeds carry it)
FRAME_MAX = 256 * 1024
ARG_STR_MAX = 128 * 1024  # DBX_ARG_STR_MAX
TERMINFO_MAX = 32 * 1024  # DBX_TERMINFO_MAX
MAX_ARGS = 1 << 20

HELLO, SETUP, READY, SHUTDOWN, PING, PONG = 1, 2, 3, 4, 5, 6
EXEC, STARTED, STDIN, STDOUT, STDERR, CREDIT, RESIZE, SIGNAL, EXIT, ERROR = range(10, 20)
SOCK_OPEN, SOCK_OK, SOCK_DATA, SOCK_CLOSE = 20, 21, 22, 23
STATUS, STATUS_REPLY, STOP, PORT_REQ, PORT_REPLY = 30, 31, 32, 33, 34
STREAM_SOCK = 3
SOCK_PROXY, SOCK_FORWARD = 1, 2
GUEST = 0x80000000
NET_NONE, NET_ALLOWLIST, NET_OPEN = 0, 1, 2

TTY, STDIN_OPEN, LOGIN, ADMIN = 1, 2, 4, 8


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


def exec_req(argv, env=(), cwd="/", user="", flags=0, rows=0, cols=0, argc=None, envc=None,
             timeout_ms=0, umask=0o022, terminfo=b""):
    out = u32(flags) + u16(rows) + u16(cols) + u32(timeout_ms) + u32(umask) + s(user) + s(cwd)
    out += u32(len(argv) if argc is None else argc) + b"".join(s(a) for a in argv)
    out += u32(len(env) if envc is None else envc) + b"".join(s(e) for e in env)
    return out + u32(len(terminfo)) + terminfo


def setup(tag="ws", path="/home/dev/proj", uid=1000, gid=1000, hostname="proj", ca_pem="",
          tz="", tz_data=b"", shares=()):
    """shares: (tag, path, readonly) triples, encoded after ca_pem and the time zone (issue 13);
    tz, tz_data: the host's time zone and its TZif file (protocol 10)."""
    return (s(tag) + s(path) + u32(uid) + u32(gid) + s(hostname) + s(ca_pem) + s(tz)
            + u32(len(tz_data)) + tz_data + u32(len(shares))
            + b"".join(s(t) + s(p) + bytes([ro]) for t, p, ro in shares))


def pem(der):
    """A PEM CERTIFICATE block as dbx_ca_pem_check wants it (64-character base64 lines)."""
    b = base64.b64encode(der).decode()
    return ("-----BEGIN CERTIFICATE-----\n"
            + "".join(b[i:i + 64] + "\n" for i in range(0, len(b), 64))
            + "-----END CERTIFICATE-----\n")


def plan(net_mode=NET_NONE, proxy_port=0, addr="", gw="", dns="", env=(), checksum=True):
    """The permissive plan of dbx_plan_permissive() with the given network fields."""
    out = u64(0) + u64(0xFFFFFFFFFFFFFFFF) + u32(0) + u32(100000) + u32(0) + u32(0)
    # nofile, nproc, caps (uid 0), caps_user (every other uid), no_new_privs, seccomp,
    # no_randomize, user
    out += u64(0) + u64(0) + u64(0xFFFFFFFFFFFFFFFF) + u64(0xFFFFFFFFFFFFFFFF) + u8(0) + u8(0)
    out += u8(0)
    out += s("") + u32(0)
    out += u32(0) + u32(len(env)) + b"".join(s(e) for e in env)
    out += u8(net_mode) + u16(proxy_port) + s(addr) + s(gw) + s(dns)
    digest = hashlib.sha256(out).digest()
    return out + (digest if checksum else bytes(32))


def setup_plan(p, **kw):
    return setup(**kw) + u32(len(p)) + p


def sock_open(kind, port):
    return u8(kind) + u16(port)


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
    "tty-login": bytes([3]) + frame(EXEC, 5, exec_req([], ["TERM=xterm-kitty"],
                                                      flags=TTY | LOGIN | STDIN_OPEN, rows=24,
                                                      cols=80, terminfo=b"\x1e\x02" + bytes(30)))
    + frame(RESIZE, 5, u16(50) + u16(132)) + frame(SIGNAL, 5, u32(2))
    + frame(EXIT, 5, u8(1) + u32(2)),
    "binary-data": bytes([4]) + frame(STDOUT, 3, bytes(range(256)) * 8)
    + frame(STDERR, 3, b"\0" * 100),
    "client": bytes([5]) + frame(STATUS) + frame(STATUS_REPLY, 0, s('{"state":"running"}'))
    + frame(STOP) + frame(SHUTDOWN),
    "errors": bytes([6]) + frame(ERROR, 9, error_msg(127, "exec 'nope': No such file or directory"))
    + frame(ERROR, 0, error_msg(125, "")),
    "many-args": bytes([7]) + frame(EXEC, 1, exec_req(["a"] * 4096, umask=0o077)),
    "big-stdin": bytes([8]) + frame(STDIN, 1, b"x" * 32768) + frame(CREDIT, 1, u8(0) + u32(32768)),
    # malformed streams
    "bad-version": bytes([9]) + hdr(STDOUT, 1, 3, version=99) + b"abc" + frame(STDOUT, 1, b"ok"),
    "unknown-type": bytes([10]) + hdr(99, 4, 5) + b"xxxxx" + hdr(0, 4, 0)
    + frame(EXIT, 4, u8(0) + u32(0)),
    "oversized": bytes([11]) + hdr(STDOUT, 7, FRAME_MAX + 1) + b"\x01\x0d" * ((FRAME_MAX + 1) // 2)
    + b"\x00" + frame(STDERR, 7, b"after"),
    "truncated-header": bytes([12]) + frame(READY) + hdr(STDOUT, 1, 10)[:7],
    "truncated-payload": bytes([13]) + hdr(STDOUT, 1, 100) + b"short",
    "exec-argc-too-big": bytes([14]) + frame(EXEC, 1, exec_req(["a"], argc=MAX_ARGS + 1))
    + frame(EXEC, 2, exec_req(["true"], umask=0o1000)),
    "exec-count-lies": bytes([15]) + frame(EXEC, 1, exec_req(["true"], argc=1000000))
    + frame(EXEC, 2, exec_req(["true"], ["A=1"], envc=0xFFFFFFFF)),
    "exec-nul": bytes([16]) + frame(EXEC, 1, exec_req(["a\0b"])) + frame(EXEC, 2, exec_req(["x"], cwd="/tmp\0"))
    + frame(EXEC, 3, exec_req(["x"], user="ro\0ot")),
    "exec-relative-cwd": bytes([17]) + frame(EXEC, 1, exec_req(["true"], cwd="tmp"))
    + frame(EXEC, 2, exec_req(["true"], cwd="")),
    "exec-bad-env": bytes([18]) + frame(EXEC, 1, exec_req(["true"], ["FOO"]))
    + frame(EXEC, 2, exec_req(["true"], ["=x"])),
    "exec-flags": bytes([19]) + frame(EXEC, 1, exec_req(["true"], flags=32))
    + frame(EXEC, 2, exec_req([], flags=0))
    + frame(EXEC, 3, exec_req(["true"], flags=64))  # merged stdout and stderr
    + frame(EXEC, 4, exec_req(["true"], flags=64 | TTY)),  # merged with a terminal: refused
    "exec-trailing": bytes([20]) + frame(EXEC, 1, exec_req(["true"]) + b"\0"),
    # terminfo: without a terminal, over the cap, a length over what follows
    "exec-terminfo-bad": bytes([36]) + frame(EXEC, 1, exec_req(["true"], terminfo=b"\x1a\x01" + bytes(20)))
    + frame(EXEC, 2, exec_req(["true"], flags=TTY, terminfo=b"\x1e\x02" + bytes(TERMINFO_MAX - 1)))
    + frame(EXEC, 3, exec_req(["true"], flags=TTY)[:-4] + u32(16) + bytes(8)),
    "bad-small": bytes([21]) + frame(CREDIT, 1, u8(3) + u32(1)) + frame(CREDIT, 1, u8(0))
    + frame(EXIT, 1, u8(1) + u32(0)) + frame(EXIT, 1, u8(0) + u32(256))
    + frame(EXIT, 1, u8(2) + u32(1)) + frame(RESIZE, 1, u16(1)) + frame(SIGNAL, 1, u64(9)),
    "bad-hello": bytes([22]) + frame(HELLO, 0, hello("x" * 300)) + frame(HELLO, 0, hello() + b"!")
    + frame(HELLO, 0, u32(1) + u32(1000)) + frame(SETUP, 0, setup(path="rel")),
    "string-too-long": bytes([23]) + frame(EXEC, 1, exec_req(["a" * (ARG_STR_MAX + 1)]))
    + frame(ERROR, 1, error_msg(1, "e" * 5000)),
    # socket sessions and the plan's network settings
    "setup-allowlist": bytes([24]) + frame(SETUP, 0, setup_plan(plan(
        NET_ALLOWLIST, 3128, env=["HTTP_PROXY=http://127.0.0.1:3128",
                                  "https_proxy=http://127.0.0.1:3128"]))) + frame(READY),
    "setup-open": bytes([25]) + frame(SETUP, 0, setup_plan(plan(
        NET_OPEN, 0, "10.0.2.15/24", "10.0.2.2", "10.0.2.3"))),
    "plan-open": bytes([26]) + plan(NET_OPEN, 0, "192.168.1.9/32", "192.168.1.1", ""),
    "plan-allowlist": bytes([27]) + plan(NET_ALLOWLIST, 8080),
    "plan-bad-net": bytes([28]) + frame(SETUP, 0, setup_plan(plan(NET_ALLOWLIST, 0)))
    + frame(SETUP, 0, setup_plan(plan(NET_OPEN, 0, "10.0.2.15", "10.0.2.2")))
    + frame(SETUP, 0, setup_plan(plan(NET_OPEN, 0, "010.0.2.15/24", "10.0.2.2")))
    + frame(SETUP, 0, setup_plan(plan(NET_NONE, 0, "", "10.0.2.2")))
    + frame(SETUP, 0, setup_plan(plan(3, 0)))
    + frame(SETUP, 0, setup_plan(plan(NET_OPEN, 0, "10.0.2.15/24", "10.0.2.2", checksum=False))),
    "sock-proxy": bytes([29]) + frame(SOCK_OPEN, GUEST | 1, sock_open(SOCK_PROXY, 3128))
    + frame(SOCK_OK, GUEST | 1) + frame(SOCK_DATA, GUEST | 1, b"CONNECT example.org:443 HTTP/1.1\r\n\r\n")
    + frame(CREDIT, GUEST | 1, u8(STREAM_SOCK) + u32(39)) + frame(SOCK_DATA, GUEST | 1)
    + frame(SOCK_DATA, GUEST | 1, b"HTTP/1.1 200 OK\r\n\r\n") + frame(SOCK_DATA, GUEST | 1)
    + frame(SOCK_CLOSE, GUEST | 1),
    "sock-forward": bytes([30]) + frame(SOCK_OPEN, 7, sock_open(SOCK_FORWARD, 3000))
    + frame(SOCK_DATA, 7, b"GET / HTTP/1.0\r\n\r\n") + frame(SOCK_OK, 7)
    + frame(SOCK_DATA, 7, bytes(range(256)) * 128) + frame(SOCK_CLOSE, 7)
    + frame(SOCK_OPEN, 8, sock_open(SOCK_FORWARD, 1))
    + frame(ERROR, 8, error_msg(125, "connection refused on port 1")),
    "sock-bad": bytes([31]) + frame(SOCK_OPEN, 1, sock_open(0, 80))
    + frame(SOCK_OPEN, 2, sock_open(SOCK_FORWARD, 0)) + frame(SOCK_OPEN, 3, u8(2))
    + frame(SOCK_OPEN, 4, sock_open(SOCK_FORWARD, 80) + b"x") + frame(SOCK_OPEN, 0, sock_open(2, 80))
    + frame(CREDIT, 5, u8(4) + u32(1)) + frame(SOCK_OK, 6, b"x")
    + hdr(SOCK_DATA, 7, FRAME_MAX + 1) + b"z" * (FRAME_MAX + 1) + frame(SOCK_CLOSE, 7),
    "ports": bytes([32]) + frame(PORT_REQ, 0, s("add 8080 3000")) + frame(PORT_REPLY, 0, u32(0) + s("ok"))
    + frame(PORT_REQ, 0, s("ls")) + frame(PORT_REPLY, 0, u32(1) + s("no such port")),
    # an administrative command; SETUP with the host's CA certificates, and ones that do not decode
    "exec-admin": bytes([33]) + frame(EXEC, 1, exec_req(["apt-get", "install", "-y", "curl"],
                                                        user="root", flags=ADMIN)),
    "setup-ca": bytes([34]) + frame(SETUP, 0, setup_plan(plan(), ca_pem=pem(bytes(range(200)))
                                                         + pem(b"\x30\x82\x01"))) + frame(READY),
    "setup-ca-bad": bytes([35]) + frame(SETUP, 0, setup_plan(plan(), ca_pem="junk\n"))
    + frame(SETUP, 0, setup_plan(plan(), ca_pem=pem(b"x" * 40).replace("\n", "\r\n")))
    + frame(SETUP, 0, setup_plan(plan(), ca_pem=pem(b"x" * 40)[:-1]))
    + frame(SETUP, 0, setup_plan(plan(), ca_pem="-----BEGIN CERTIFICATE-----\n"
                                 "-----END CERTIFICATE-----\n")),
    # issue 13 (helper A): a process list, and kill requests and replies
    "ps": bytes([36]) + frame(25, 0, u64(7))
    + frame(26, 0, u64(7) + u32(1) + u32(42) + u32(1) + u32(1000) + u32(3) + u64(1500) + u64(20)
            + u64(1 << 20) + s("dev") + s("python3 -m http.server 8000") + u8(0))
    + frame(26, 0, u64(8) + u32(5000)) + frame(26, 0, u64(9) + u32(1) + u32(1) * 7),
    "kill": bytes([37]) + frame(27, 0, u64(3) + u32(42) + u32(15)) + frame(27, 0, u64(4) + u32(0) + u32(99))
    + frame(28, 0, u64(3) + u32(0) + s("")) + frame(28, 0, u64(4) + u32(3) + s("no such process")),
    # issue 13: SETUP with extra shares, and share lists that do not decode
    "setup-shares": bytes([36]) + frame(SETUP, 0, setup_plan(plan(), shares=(
        ("share0", "/home/dev/main/.git", 0), ("share1", "/data", 1)))) + frame(READY),
    "setup-shares-bad": bytes([37])
    + frame(SETUP, 0, setup_plan(plan(), shares=(("share0", "/proc", 1),)))
    + frame(SETUP, 0, setup_plan(plan(), shares=(("a,b", "/data", 1),)))
    + frame(SETUP, 0, setup_plan(plan(), shares=(("s", "/d", 1), ("s", "/e", 1))))
    + frame(SETUP, 0, setup_plan(plan(), shares=(("s", "/home/dev/proj/x", 1),)))
    + frame(SETUP, 0, setup_plan(plan(), shares=(("s", "/d/../etc", 2),))),
    # protocol 10: SETUP with the host's time zone, and zones that do not decode
    "setup-tz": bytes([38]) + frame(SETUP, 0, setup_plan(plan(), tz="Europe/Berlin",
                                                         tz_data=b"TZif2" + bytes(60)))
    + frame(READY),
    "setup-tz-bad": bytes([39])
    + frame(SETUP, 0, setup_plan(plan(), tz="../../etc/passwd", tz_data=b"TZif2" + bytes(8)))
    + frame(SETUP, 0, setup_plan(plan(), tz="Europe/Berlin", tz_data=b"#!/bin/sh\n"))
    + frame(SETUP, 0, setup_plan(plan(), tz="", tz_data=b"TZif"))
    + frame(SETUP, 0, setup_plan(plan(), tz="EST5EDT,M3.2.0", tz_data=b"TZif"))
    + frame(SETUP, 0, setup_plan(plan(), tz="a b")),
    "empty": b"",
    "seed-only": b"\xff",
}

# ---- issue 13: NOTICE and STATS (helper B); frames of the current version (5 then) ----
NOTICE, STATS, STATS_REPLY = 24, 35, 36


def frame5(typ, session=0, payload=b""):
    return hdr(typ, session, len(payload), version=VERSION) + payload


def stats_reply(token, pairs, n=None):
    return u64(token) + u32(len(pairs) if n is None else n) + b"".join(
        s(k) + u64(v) for k, v in pairs)


CORPUS.update({
    "notice": bytes([36]) + frame5(NOTICE, 3, u32(1) + u64(2 << 30) + u64((2 << 30) - 4096))
    + frame5(NOTICE, 4, u32(2) + u64(64) + u64(64)) + frame5(EXIT, 3, u8(1) + u32(9)),
    "notice-bad": bytes([37]) + frame5(NOTICE, 3, u32(3) + u64(1) + u64(1))
    + frame5(NOTICE, 3, u32(1) + u64(1)) + frame5(NOTICE, 3, u32(1) + u64(1) + u64(1) + b"x"),
    "stats": bytes([38]) + frame5(STATS, 0, u64(7)) + frame5(STATS_REPLY, 0, stats_reply(7, [
        ("cpu_usage_us", 123456), ("memory_current", 64 << 20), ("memory_max", 2**64 - 1),
        ("pids_current", 3), ("oom_kills", 0)])) + frame5(STATS_REPLY, 0, stats_reply(8, [])),
    "stats-bad": bytes([39]) + frame5(STATS_REPLY, 0, stats_reply(1, [("a", 1)], n=65))
    + frame5(STATS_REPLY, 0, stats_reply(1, [("Bad-Key", 1)]))
    + frame5(STATS_REPLY, 0, stats_reply(1, [("k", 1), ("k", 2)]))
    + frame5(STATS_REPLY, 0, stats_reply(1, [("x" * 33, 1)]))
    + frame5(STATS_REPLY, 0, stats_reply(1, [("k", 1)]) + b"\0"),
})

# ---- issue 12: EXEC's TIMING flag and TIMING (helper latency); protocol version 6 ----
TIMING = 41
TIMING_FLAG = 32


def timing(pairs, n=None):
    return u32(len(pairs) if n is None else n) + b"".join(s(k) + u64(v) for k, v in pairs)


CORPUS.update({
    "timing": bytes([40]) + frame(EXEC, 5, exec_req(["true"], flags=TIMING_FLAG))
    + frame(STARTED, 5, u32(42))
    + frame(TIMING, 5, timing([("g_queue", 12), ("g_fork", 900), ("g_execve", 1500),
                               ("g_total", 4000), ("s_recv_at", 2**40), ("s_exit_at", 2**40 + 9)]))
    + frame(EXIT, 5, u8(0) + u32(0)) + frame(TIMING, 6, timing([])),
    "timing-bad": bytes([41]) + frame(TIMING, 5, timing([("a", 1)], n=33))
    + frame(TIMING, 5, timing([("Bad-Key", 1)]))
    + frame(TIMING, 5, timing([("k", 1), ("k", 2)]))
    + frame(TIMING, 5, timing([("x" * 25, 1)]))
    + frame(TIMING, 5, timing([("", 1)]))
    + frame(TIMING, 5, timing([("k", 1)]) + b"\0")
    + frame(EXEC, 7, exec_req(["true"], flags=64)),
})

# ---- issue 13: CHANGED (host edits that wake the box's inotify watchers; helper E) ----
CHANGED = 8

CORPUS.update({
    "changed": bytes([7]) + frame(CHANGED, 0, u32(2) + s("src/a.js") + s(".git/HEAD"))
    + frame(CHANGED, 0, u32(0)),
})

# ---- an EXEC over FRAME_MAX: a frame to a reader that takes them (an odd first byte) ----

CORPUS.update({
    "exec-large": bytes([1]) + frame(EXEC, 1, exec_req(["echo", "a" * ARG_STR_MAX, "b" * ARG_STR_MAX],
                                                       ["E=" + "e" * 100]))
    + frame(STDIN, 1),
})

# ---- the clock: one-way, the guest's ask, the answer (protocol 9) ----
CLOCK = 9

CORPUS.update({
    "clock": bytes([17]) + frame(CLOCK, 0, u64(1796500000 * 10**9))
    + frame(EXEC, 1, exec_req(["true"])) + frame(CLOCK, 0, u64(5000 * 10**9))
    + frame(CLOCK, 0, u64(1796500000 * 10**9) + u64(5000 * 10**9))
    + frame(CLOCK, 0, u64(2**63) + u64(1)) + frame(CLOCK, 0, b"\0" * 15),
})


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

#!/usr/bin/env python3
"""Seeds for tests/fuzz/fuzz-status.c: status records as sandbox/sandbox-status.c encodes them
(little-endian integers, strings as u32 length + bytes).  Writes tests/fuzz/corpus/status/."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "status")


def s(text):
    b = text.encode()
    return struct.pack("<I", len(b)) + b


def record(state=1, image="default", files=("devbox.ini",), network=1, seccomp=1,
           ports="127.0.0.1:3000 -> 3000\n", hash_="a" * 64, version=4, writes=3,
           first=".claude/settings.json", aslr=2):
    out = bytes([version, state]) + s("/home/u/proj") + s("0123456789abcdef")
    out += (b"\x01" + s(image)) if image is not None else b"\x00"
    out += struct.pack("<III", 100, 101, 0xFFFFFFFF)
    out += s("tcg") + s("6.1.0-57-cloud-amd64")
    out += struct.pack("<QQQIIq", 42, 384, 123456, 2, 3, 1700000000)
    out += s(hash_) + struct.pack("<I", len(files)) + b"".join(s(f) for f in files)
    out += bytes([network, seccomp]) + struct.pack("<Q", 7) + s(ports)
    out += struct.pack("<Q", writes) + ((b"\x01" + s(first)) if first is not None else b"\x00")
    if version >= 3:  # idle_s, idle_stop_s
        out += struct.pack("<QQ", 252, 1800)
    if version >= 4:  # aslr: 0 not known, 1 on, 2 off
        out += bytes([aslr])
    return out


SEEDS = {
    "running": record(),
    "paused-open-strict": record(state=2, network=2, seccomp=2),
    "stopped-no-image": record(state=0, image=None, files=(), ports="", hash_=""),
    "bad-state": record(state=4),
    "bad-network": record(network=3),
    "version2": record(version=2),
    "version3": record(version=3),
    "aslr-on": record(aslr=1),
    "bad-aslr": record(aslr=3),
    "aslr-unknown": record(aslr=0),  # what only a record of version 2 or 3 may leave unsaid
    "bad-version": record(version=5),
    "old-version": record(version=1),
    "no-protected-writes": record(writes=0, first=None),
    # has_first = 2: the flag is followed by idle_s, idle_stop_s and aslr (17 bytes)
    "bad-protected-flag": record(first=None)[:-18] + b"\x02" + record(first=None)[-17:],
    "bad-hash": record(hash_="A" * 64),
    "trailing": record() + b"\x00",
    "truncated": record()[:-3],
}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)

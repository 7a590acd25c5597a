#!/usr/bin/env python3
"""Generate the seed corpus for tests/fuzz/fuzz-rootfs.c: small tar layers (plain and gzip)
with whiteouts, opaque markers, hard links, symlinks, devices, xattrs, large owners and a few
hostile entries.  Deterministic (fixed mtimes, gzip mtime 0); rerun after changing the reader:

    python3 tests/fuzz/gen-rootfs-corpus.py tests/fuzz/corpus/rootfs
"""
import gzip
import io
import os
import sys
import tarfile


def layer(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.mtime = 1700000000
            ti.type = e.get("type", tarfile.REGTYPE)
            ti.mode = e.get("mode", 0o644)
            ti.uid = e.get("uid", 0)
            ti.gid = e.get("gid", 0)
            ti.linkname = e.get("link", "")
            if "xattrs" in e:
                ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in e["xattrs"].items()}
            data = e.get("data", b"")
            ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
            t.addfile(ti, io.BytesIO(data) if ti.size else None)
    return buf.getvalue()


D, L, S, C, F = tarfile.DIRTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE
SEEDS = {
    "basic": [{"name": "./", "type": D, "mode": 0o755}, {"name": "etc", "type": D},
              {"name": "etc/passwd", "data": b"root:x:0:0::/root:/bin/sh\n"},
              {"name": "bin/su", "mode": 0o4755, "data": b"ELF"},
              {"name": "bin/login", "type": L, "link": "bin/su"},
              {"name": "usr/bin/sh", "type": S, "link": "/bin/busybox"},
              {"name": "dev/null", "type": C, "mode": 0o666},
              {"name": "run/fifo", "type": F},
              {"name": "home/u/f", "uid": 100000, "gid": 100000, "data": b"x"}],
    "whiteouts": [{"name": "a", "type": D}, {"name": "a/.wh..wh..opq"},
                  {"name": "a/new", "data": b"n"}, {"name": ".wh.gone"},
                  {"name": "b/.wh.c"}, {"name": ".wh..wh.plnk"}],
    "replace": [{"name": "x/y/z", "data": b"1"}, {"name": "x", "data": b"file now"},
                {"name": "x", "type": D}, {"name": "x/again", "data": b"2"},
                {"name": "x", "type": D, "mode": 0o700}],
    "xattrs": [{"name": "ping", "mode": 0o755, "data": b"ELF",
                "xattrs": {"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00" + "\x00" * 12,
                           "user.k": "v", "system.posix_acl_access": "x"}}],
    "hostile-symlink": [{"name": "a", "type": S, "link": "/etc"},
                        {"name": "a/passwd", "data": b"pwned"}],
    "hostile-dotdot": [{"name": "../../etc/passwd", "data": b"x"}],
    "hostile-link": [{"name": "y", "type": L, "link": "../x"}],
    "hostile-whiteout": [{"name": "a/.wh...", "data": b""}],
    "absolute": [{"name": "/", "type": D, "mode": 0o700, "uid": 1000},
                 {"name": "/abs/name", "data": b"x"}, {"name": "/abs/x/../link", "type": L,
                                                        "link": "/abs/name"},
                 {"name": "a/../b", "data": b"y"}],
    "root-0700": [{"name": "./", "type": D, "mode": 0o700}, {"name": ".", "type": S, "link": "/etc"},
                  {"name": "etc/passwd", "data": b"root:x:0:0::/root:/bin/sh\n"}],
    "hostile-absdotdot": [{"name": "/../etc/passwd", "data": b"x"}],
    "deep": [{"name": "/".join(["d"] * 200) + "/f", "data": b"deep"}],
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, entries in SEEDS.items():
        data = layer(entries)
        with open(os.path.join(out, name + ".tar"), "wb") as f:
            f.write(data)
        with open(os.path.join(out, name + ".tar.gz"), "wb") as f:
            f.write(gzip.compress(data, mtime=0))
    with open(os.path.join(out, "gnu-basic.tar"), "wb") as f:
        f.write(layer(SEEDS["basic"], tarfile.GNU_FORMAT))


main()

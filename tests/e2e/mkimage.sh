#!/usr/bin/env bash
# tests/e2e/mkimage.sh [--with-git] [--add SRC=/PATH[:MODE]]... OUT.tar: build the end-to-end
# test root filesystem from busybox-static, without root: owners, modes and the setuid bit are
# written into the tar headers by python3's tarfile, never applied on the host.
#
# Contents: /bin/busybox and a symlink per applet in /bin; /etc/passwd (root, dev uid 1000),
# /etc/group; /root 0700, /tmp 1777, /home/dev 0755 owned 1000:1000; /usr/bin/suidtest, a
# setuid-root copy of busybox (4755 0:0); empty mount points /dev /proc /sys /run.
#   --with-git   also the host's /usr/bin/git, every shared library `ldd` lists for it and the
#                dynamic loader, each at the path ldd prints (contents of the resolved file)
#   --add SRC=/PATH[:MODE]   also the host file SRC at /PATH, owned 0:0, MODE octal (def. 755)
set -euo pipefail

usage() {
    echo "usage: $0 [--with-git] [--add SRC=/PATH[:MODE]]... OUT.tar" >&2
    exit 2
}
extra=()
while [ $# -gt 1 ]; do
    case $1 in
    --with-git)
        git=$(command -v git) || {
            echo "mkimage: --with-git: no git on the host" >&2
            exit 1
        }
        git=$(readlink -f "$git")
        extra+=("$git=/usr/bin/git:755")
        # "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" and "/lib64/ld-linux... (0x...)"
        while read -r lib; do
            [ -n "$lib" ] && extra+=("$(readlink -f "$lib")=$lib:755")
        done < <(ldd "$git" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
        ;;
    --add)
        [ $# -gt 2 ] || usage
        extra+=("$2")
        shift
        ;;
    *) usage ;;
    esac
    shift
done
[ $# -eq 1 ] || usage
out=$1
busybox=${BUSYBOX:-/bin/busybox}
if [ ! -x "$busybox" ]; then
    echo "mkimage: $busybox not found (install busybox-static)" >&2
    exit 1
fi
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
    # `file` may be missing; ldd says "not a dynamic executable" for static binaries
    if ldd "$busybox" >/dev/null 2>&1; then
        echo "mkimage: $busybox is not static (install busybox-static)" >&2
        exit 1
    fi
fi

# The applet list comes from the binary itself, so the image matches the installed version.
applets=$("$busybox" --list)

python3 - "$busybox" "$out" "$applets" ${extra[@]+"${extra[@]}"} <<'EOF'
import io
import os
import sys
import tarfile

busybox, out, applets = sys.argv[1], sys.argv[2], sys.argv[3].split()
extra = sys.argv[4:]  # "SRC=/PATH:MODE"
MTIME = 1700000000  # fixed, so the tarball is reproducible

tmp = "%s.tmp.%d" % (out, os.getpid())  # two builders of one image (two tests) never share it
tar = tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT)


def add(name, type_=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, data=b"", linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.uname = ti.gname = ""
    ti.mtime = MTIME
    ti.linkname = linkname
    if type_ == tarfile.REGTYPE:
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    else:
        tar.addfile(ti)


def d(name, mode=0o755, uid=0, gid=0):
    add(name, tarfile.DIRTYPE, mode, uid, gid)


with open(busybox, "rb") as f:
    bb = f.read()

for name in ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "run",
             "var", "mnt", "home"]:
    d(name)
d("root", 0o700)
d("tmp", 0o1777)
d("var/tmp", 0o1777)
d("home/dev", 0o755, 1000, 1000)

add("bin/busybox", mode=0o755, data=bb)
for a in sorted(set(applets)):
    if a == "busybox" or "/" in a:
        continue
    add("bin/" + a, tarfile.SYMTYPE, 0o777, linkname="busybox")

add("usr/bin/suidtest", mode=0o4755, data=bb)

add("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"
                       b"dev:x:1000:1000:dev:/home/dev:/bin/sh\n"
                       b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
add("etc/group", data=b"root:x:0:\ndev:x:1000:\nnogroup:x:65534:\n")
add("etc/hostname", data=b"devbox-test\n")
add("etc/devbox-test-image", data=b"busybox\n")

# extra files, with every missing parent directory (0755 root)
dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc"}
for spec in extra:
    src, _, dest = spec.partition("=")
    dest, _, mode = dest.partition(":")
    dest = dest.strip("/")
    if not src or not dest or ".." in dest.split("/"):
        sys.exit("mkimage: bad --add '%s'" % spec)
    parts = dest.split("/")
    for i in range(1, len(parts)):
        p = "/".join(parts[:i])
        if p not in dirs:
            dirs.add(p)
            d(p)
    with open(src, "rb") as f:
        add(dest, mode=int(mode or "755", 8), data=f.read())
tar.close()
os.rename(tmp, out)
EOF

#!/usr/bin/env bash
# make bench: devbox's speed against floors measured in the same run, on the same accelerator.
# Prints ratios; never fails on a number (these machines are noisy), only on a broken run.
# Guest kernels: DEVBOX_KERNEL=debian and =devbox for each (the devbox kernel from its cache,
# or DEVBOX_KERNEL_VMLINUX=/path/vmlinux); its rows say n/a when there is none.
set -euo pipefail
started=$(date +%s)
here=$(cd "$(dirname "$0")/.." && pwd)
export DEVBOX_BIN=${DEVBOX_BIN:-$here/build/devbox}
cache=$here/build/cache
mkdir -p "$cache"
work=$(mktemp -d /tmp/dbx-bench.XXXXXX)
trap 'DEVBOX_HOME=$work/h "$DEVBOX_BIN" -C "$work/repo" stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export DEVBOX_HOME=$work/h

# Same kernel package the tests use (downloaded once).
if [ -z "${DEVBOX_KERNEL_DEB:-}" ]; then
    pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image/{print $2; exit}')
    deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" | sort | tail -n 1)
    if [ -z "$deb" ]; then
        (cd "$cache" && apt-get download -q "$pkg" >/dev/null)
        deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" | sort | tail -n 1)
    fi
    export DEVBOX_KERNEL_DEB=$deb
fi
[ -s "$cache/e2e-rootfs.tar" ] || "$here/tests/e2e/mkimage.sh" "$cache/e2e-rootfs.tar"
"$DEVBOX_BIN" image import "$cache/e2e-rootfs.tar" default >/dev/null

gcc -O2 -static -o "$work/trivial-init" "$here/bench/trivial-init.c"
gcc -O2 -static -o "$work/noop" "$here/bench/noop.c"
gcc -O2 -static -o "$work/boxload" "$here/bench/boxload.c"
mkdir -p "$work/repo"
git -C "$work/repo" init -q
gcc -O2 -static -o "$work/repo/forkexec" "$here/bench/forkexec.c"

python3 "$here/bench/bench.py" "$work"
echo "devbox bench: VM figures took $(($(date +%s) - started)) s" >&2

# Secrets (issue 11): an intercepted request against a blind tunnel to the same loopback TLS
# server, measured at the proxy level by its unit test binary (no VM: the cost is the proxy's
# two TLS sessions and the head rewrite; the box adds the same to both).
echo "devbox bench: proxy interception"
DEVBOX_PROXY_MITM_BENCH=${BENCH_MITM_RUNS:-50} "$here/build/tests/test-proxy-mitm" 2>&1 |
    sed -n 's/^proxy interception: /  /p' | grep .

# Images and network: a registry on loopback and the Debian rootfs the e2e tests also use, from
# the mirror devbox itself would use (`devbox image mirror`: the host's apt sources).
export TEST_TMP=$work
. "$here/tests/e2e/registry.sh"
trap 'registry_stop_all || true; DEVBOX_HOME=$work/h "$DEVBOX_BIN" -C "$work/repo" stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
registry_start bench
export REG_ADDR=$bench_ADDR
deb=$cache/debian-bookworm.tar
if [ ! -s "$deb" ]; then
    mmdebstrap -q --format=tar --variant=apt --include=ca-certificates,curl,git,procps,less,xz-utils,nano,openssl \
        bookworm "$deb.tmp" "$("$DEVBOX_BIN" image mirror)" && mv "$deb.tmp" "$deb"
fi
export DEBIAN_TAR=$deb
python3 "$here/bench/bench_images.py" "$work"
echo "devbox bench: took $(($(date +%s) - started)) s"

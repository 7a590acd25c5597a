#!/usr/bin/env bash
# devbox's main job, end to end, on a fresh machine: (make has built devbox) fetch the guest
# kernel, make a small image, boot a VM for a sample repo and run commands in it.
# Uses your normal devbox directories unless DEVBOX_HOME is set.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
devbox=${DEVBOX_BIN:-$here/build/devbox}
work=${DEMO_DIR:-$here/build/demo}
mkdir -p "$work"

echo "== building a small busybox root filesystem image"
"$here/tests/e2e/mkimage.sh" "$work/rootfs.tar"
"$devbox" image import "$work/rootfs.tar" default

repo="$work/sample-repo"
if [ ! -d "$repo/.git" ]; then
    mkdir -p "$repo"
    git -C "$repo" init -q
    echo "hello from the host" > "$repo/README"
fi
cd "$repo"
echo "== devbox exec -- uname -r   (first call boots the project's VM)"
time "$devbox" exec -- uname -r
echo "== devbox exec -- sh -c 'cat README; echo written in the VM > from-vm.txt'"
"$devbox" exec -- sh -c 'cat README; echo written in the VM > from-vm.txt'
echo "== on the host: $(ls -l from-vm.txt)"
echo "== devbox status"
"$devbox" status
echo "== devbox stop"
"$devbox" stop
echo "demo done: try 'cd $repo && $devbox enter'"

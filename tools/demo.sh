#!/usr/bin/env bash
# devbox's main job, end to end, on a fresh machine: (make has built devbox) fetch the guest
# kernel, build the default image (Debian bookworm from the Debian archive, once), boot a VM
# for a sample repo and run commands in it.
# Uses your normal devbox directories unless DEVBOX_HOME is set.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
devbox=${DEVBOX_BIN:-$here/build/devbox}
work=${DEMO_DIR:-$here/build/demo}
mkdir -p "$work"

repo="$work/sample-repo"
if [ ! -d "$repo/.git" ]; then
    mkdir -p "$repo"
    git -C "$repo" init -q
    echo "hello from the host" > "$repo/README"
fi
cd "$repo"
echo "== devbox exec -- uname -r   (the first call builds the default image once, then boots the project's VM)"
time "$devbox" exec -- uname -r
echo "== devbox exec -- cat /etc/os-release"
"$devbox" exec -- sh -c '. /etc/os-release; echo "$PRETTY_NAME"'
echo "== devbox images"
"$devbox" images
echo "== devbox exec -- sh -c 'cat README; echo written in the VM > from-vm.txt'"
"$devbox" exec -- sh -c 'cat README; echo written in the VM > from-vm.txt'
echo "== on the host: $(ls -l from-vm.txt)"
echo "== devbox status"
"$devbox" status
echo "== devbox stop"
"$devbox" stop
echo "demo done: try 'cd $repo && $devbox enter'"

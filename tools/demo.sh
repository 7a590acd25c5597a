#!/usr/bin/env bash
# devbox's main job, end to end, on a fresh machine: (make has built devbox) build the devbox
# guest kernel once, fetch Debian's, build the default image (Debian bookworm from the Debian
# archive, once), boot a VM for a sample repo and run commands in it; then a C project whose toolchain comes from its
# devbox.ini's [setup], built and tested in its box.
# Uses your normal devbox directories unless DEVBOX_HOME is set.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
devbox=${DEVBOX_BIN:-$here/build/devbox}
work=${DEMO_DIR:-$here/build/demo}
mkdir -p "$work"

# The devbox kernel, once per machine (README: minutes): every box boots it once it is built.
# Without Debian's kernel source the boxes use Debian's cloud kernel, as they do meanwhile.
echo "== devbox kernel build   (once per machine; nothing to do when it is built)"
if ! "$devbox" kernel build; then
    echo "(no devbox kernel: the boxes boot Debian's cloud kernel)"
fi

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

# A project that needs a toolchain the image lacks: five lines of [setup] (run once as root in a
# setup VM, kept as a derived disk), one `devbox trust`, then its own build and tests.
c="$work/c-project"
if [ ! -d "$c/.git" ]; then
    mkdir -p "$c"
    git -C "$c" init -q
    printf '#include <stdio.h>\nint main(void) { puts("hello from a C program built in the box"); return 0; }\n' >"$c/hello.c"
    printf 'hello: hello.c\n\tcc -O2 -o $@ $<\ntest: hello\n\t./hello | grep -q "built in the box" && echo "test passed"\n' >"$c/Makefile"
    printf '[setup]\nrun = apt-get update\n      apt-get install -y --no-install-recommends gcc make libc6-dev\n' >"$c/devbox.ini"
fi
cd "$c"
echo "== $c/devbox.ini:"
cat devbox.ini
echo "== devbox profile check   (setup is a widening: it runs as root)"
"$devbox" profile check || true
echo "== devbox trust"
"$devbox" trust
echo "== devbox exec -- make test   (the first start runs [setup]: apt-get from the host's mirror)"
time "$devbox" exec -- make test
echo "== devbox images   (the derived disk other projects with the same setup start from)"
"$devbox" images
"$devbox" stop
echo "demo done: try 'cd $repo && $devbox enter'"

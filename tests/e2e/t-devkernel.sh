#!/usr/bin/env bash
# t-devkernel: a box boots the devbox kernel (DEVBOX_KERNEL=devbox): `uname -r` ends -devbox,
# the kernel cannot load modules (no /proc/modules, no modprobe sysctl) and has no virtual
# terminals, input layer or VGA console; QEMU loads the cache's uncompressed vmlinux from a copy
# of its own (a memfd named after the cache's key) whose pages are freed once the guest runs, so
# the running QEMU holds none of the kernel's file (not the shared vmlinux either), the initramfs
# likewise (a copy of its own, freed), and the initramfs holds only the init (plus /dev/console
# and an empty modules.order): the box's own disk can never replace its PID 1.
# Initramfs files unused for a day are removed at a start, the one in use marked used.
. "$(dirname "$0")/lib.sh"

export DEVBOX_KERNEL=devbox
ok dbx kernel status --json
[ "$(json_get "$OUT" 'j["state"]')" = ready ] || skip "the devbox kernel is not built (run.sh builds it unless E2E_KERNEL=debian)"
vmlinux=$(json_get "$OUT" 'j["path"]')

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx exec -- uname -r
assert_match "$OUT" '^6\.1\.[0-9]+-devbox$' "guest 'uname -r'"
ok dbx exec -- sh -c 'test -e /proc/modules && echo modules; test -e /proc/sys/kernel/modprobe && echo modprobe; echo done'
assert_eq "done" "$OUT" "module loading in the devbox kernel"
# nothing a microVM does not have (vm/devbox-kernel.config, EXPERT): no virtual terminals (tty1
# and on, tty0, the vc class and their vcs devices, whose 63 device nodes cost the boot ~15 ms
# under TCG), no console drivers of theirs (vtconsole: the VGA and dummy consoles), no input
# layer
ok dbx exec -- sh -c 'for p in /sys/class/tty/tty0 /sys/class/tty/tty1 /sys/class/tty/tty63 \
    /sys/class/vc /sys/class/vtconsole /sys/class/input; do test -e $p && echo $p; done
    grep -E "^ *[0-9]+ (/dev/vc/0|vcs|input)\$" /proc/devices; echo done'
assert_eq "done" "$OUT" "virtual terminals, input and VGA in the devbox kernel"

q=$(the_qemu_pid)
qcmd=$(tr '\0' '\n' <"/proc/$q/cmdline")
kernel=$(printf '%s\n' "$qcmd" | grep -A1 -x -- -kernel | tail -n 1)
initrd=$(printf '%s\n' "$qcmd" | grep -A1 -x -- -initrd | tail -n 1)
# the kernel: the cache's vmlinux, copied for this QEMU alone, the copy's pages freed after the
# guest's hello (QEMU keeps what it loaded the kernel from mapped, for a reset it never does)
assert_match "$kernel" '^/proc/self/fd/[0-9]+$' "QEMU's -kernel"
key=$(basename "$(dirname "$vmlinux")")
assert_eq "/memfd:devbox-kernel $key (deleted)" "$(readlink "/proc/$q/fd/${kernel##*/}")" \
    "the file behind QEMU's -kernel"
if grep -qF "$vmlinux" "/proc/$q/maps"; then fail "QEMU maps the shared vmlinux"; fi
kmaps=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { m = index($0, "/memfd:devbox-kernel ") > 0 }
             m && /^Rss:/ { n++; kb += $2 } END { print n + 0, kb + 0 }' "/proc/$q/smaps")
[ "${kmaps% *}" -ge 1 ] || fail "QEMU does not map the kernel's copy: $kmaps"
assert_eq 0 "${kmaps#* }" "kB of the kernel's copy resident in the running QEMU"
# the initramfs the same way: a copy of the cache's file for this QEMU, freed after the hello
assert_match "$initrd" '^/proc/self/fd/[0-9]+$' "QEMU's -initrd"
ilink=$(readlink "/proc/$q/fd/${initrd##*/}")
assert_match "$ilink" '^/memfd:devbox-initramfs [0-9a-f]{64}\.cpio \(deleted\)$' "the file behind QEMU's -initrd"
name=${ilink#/memfd:devbox-initramfs }
initrd=$DEVBOX_HOME/data/kernel/devbox-initramfs-${name% (deleted)}
assert_file "$initrd"
if grep -qF "$initrd" "/proc/$q/maps"; then fail "QEMU maps the shared initramfs"; fi
imaps=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { m = index($0, "/memfd:devbox-initramfs ") > 0 }
             m && /^Rss:/ { n++; kb += $2 } END { print n + 0, kb + 0 }' "/proc/$q/smaps")
[ "${imaps% *}" -ge 1 ] || fail "QEMU does not map the initramfs's copy: $imaps"
assert_eq 0 "${imaps#* }" "kB of the initramfs's copy resident in the running QEMU"
# the newc archive's names (no cpio(1) needed)
entries=$("$PYTHON" - "$initrd" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read(); i = 0; names = []
while i + 110 <= len(d):
    h = d[i:i + 110]; ns = int(h[94:102], 16); fs = int(h[54:62], 16)
    n = d[i + 110:i + 110 + ns - 1].decode(); i = (i + 110 + ns + 3) & ~3
    if n == 'TRAILER!!!': break
    names.append(n); i = (i + fs + 3) & ~3
print(' '.join(sorted(names)) + ' ')
PY
)
assert_eq "dev dev/console init lib lib/modules modules.order newroot proc sys " "$entries" \
    "the devbox kernel's initramfs"

# initramfs files no start has used for a day go at the next start (one per devbox upgrade,
# either kernel's kind); younger ones, and the one this start uses, stay
kdir=$DEVBOX_HOME/data/kernel
old1=$kdir/devbox-initramfs-$(printf '%064d' 1).cpio
old2=$kdir/initramfs-$(printf '%064d' 2).cpio
young=$kdir/devbox-initramfs-$(printf '%064d' 3).cpio
for f in "$old1" "$old2" "$young"; do cp "$initrd" "$f"; done
touch -d '2 days ago' "$old1" "$old2" "$initrd"
touch -d '20 hours ago' "$young"
ok dbx stop
ok dbx exec -- true
[ ! -e "$old1" ] || fail "an initramfs unused for 2 days stayed: $old1"
[ ! -e "$old2" ] || fail "a Debian kernel's initramfs unused for 2 days stayed: $old2"
assert_file "$young"
assert_file "$initrd"
[ "$(( $(date +%s) - $(stat -c %Y "$initrd") ))" -lt 3600 ] || fail "the initramfs in use was not marked as used"

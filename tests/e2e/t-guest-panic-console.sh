#!/usr/bin/env bash
# t-guest-panic-console: a guest kernel without the panic device's driver (the suite's kernel
# package repacked without pvpanic*.ko) still boots (pvpanic_mmio is an optional module), and
# its panic is still noticed, from the console's "Kernel panic" line once the panic device had
# its chance to report it: the waiting client gets one line, the supervisor log names the
# console as the source, QEMU is gone and the next exec boots a fresh VM.
. "$(dirname "$0")/lib.sh"
# about the Debian kernel's optional module (the devbox kernel has no panic device at all:
# t-guest-panic covers its console path)
export DEVBOX_KERNEL=debian

command -v dpkg-deb >/dev/null || skip "dpkg-deb not installed (needed to repack the kernel)"
k=$TEST_TMP/kernel
mkdir -p "$k" || fail "mkdir $k"
dpkg-deb -R "$DEVBOX_KERNEL_DEB" "$k/x" >"$TEST_TMP/repack.log" 2>&1 || fail "dpkg-deb -R $DEVBOX_KERNEL_DEB failed"
rm -rf "$k"/x/lib/modules/*/kernel/drivers/misc/pvpanic
[ -z "$(find "$k/x/lib/modules" -name 'pvpanic*')" ] || fail "pvpanic modules left in the repacked kernel"
sed -i '/pvpanic/d' "$k/x/DEBIAN/md5sums"
dpkg-deb -Zxz -z0 -b "$k/x" "$k/$(basename "$DEVBOX_KERNEL_DEB")" >>"$TEST_TMP/repack.log" 2>&1 ||
    fail "dpkg-deb -b failed: $(tail -n 3 "$TEST_TMP/repack.log")"
rm -rf "$k/x"
export DEVBOX_KERNEL_DEB=$k/$(basename "$DEVBOX_KERNEL_DEB")

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
kernel_box "$R"
q=$(the_qemu_pid)
run dbx exec -- test -e /sys/bus/platform/drivers/pvpanic-mmio
assert_eq 1 "$RC" "pvpanic-mmio driver present in a guest whose kernel has no such module"

timeout -k 5 120 "$DEVBOX" exec -- sh -c 'umount /proc/sys && echo 0 > /proc/sys/kernel/panic &&
    umount /proc/sysrq-trigger && echo c > /proc/sysrq-trigger; sleep 1000' \
    >"$TEST_TMP/p.out" 2>"$TEST_TMP/p.err" </dev/null
rc=$?
e=$(cat "$TEST_TMP/p.err")
log "client exited $rc: $(show "$e")"
[ "$rc" != 0 ] || fail "client exited 0 after a guest panic"
[ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "client had to be killed by timeout after a guest panic"
assert_one_line "$e" "stderr of the panicking client"
assert_contains "$e" "guest kernel panicked" "stderr of the panicking client"
wait_until 30 bash -c "! kill -0 $q 2>/dev/null" || fail "qemu $q still runs after the guest panicked"
ok dbx logs --supervisor
assert_contains "$OUT" "the guest kernel panicked (seen on the console); killing QEMU" \
    "supervisor log after the panic"
assert_not_contains "$OUT" "reported by the panic device" "supervisor log after the panic"
ok dbx exec -- echo again
assert_eq again "$OUT" "exec after the panic"
assert_ne "$q" "$(the_qemu_pid)" "qemu pid after the panic"

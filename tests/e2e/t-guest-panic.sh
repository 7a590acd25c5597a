#!/usr/bin/env bash
# t-guest-panic: a guest kernel panic (a real one: root in the box with a trusted profile
# granting CAP_SYS_ADMIN and no seccomp filter writes 'c' to /proc/sysrq-trigger) is noticed
# even when the kernel then spins instead of rebooting (kernel.panic=0, as a panic whose reboot
# fails): every waiting client gets one line and a non-zero exit, QEMU is gone, status says
# stopped, and the next exec boots a fresh VM.  The panic reaches the supervisor through QEMU's
# panic device (pvpanic, bound by the guest's pvpanic-mmio driver: GUEST_PANICKED on the
# monitor), not only as the console's "Kernel panic" line: the supervisor log names the source.
# The devbox kernel boots without ACPI, so it has no panic device: there the console (hvc0) is
# the source, and the rest holds the same.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
kernel_box "$R"
q=$(the_qemu_pid)
if [ "${DEVBOX_KERNEL:-auto}" = devbox ]; then
    source="seen on the console" other="reported by the panic device"
else
    source="reported by the panic device" other="seen on the console"
    # the guest kernel found the panic device (microvm's ACPI QEMU0001) and its driver bound it
    ok dbx exec -- ls /sys/bus/platform/drivers/pvpanic-mmio
    assert_contains "$OUT" "QEMU0001" "devices bound by the guest's pvpanic-mmio driver"
fi

# two clients waiting on long commands
for i in 1 2; do
    timeout -k 5 120 "$DEVBOX" exec -- sleep 1000 >"$TEST_TMP/w$i.out" 2>"$TEST_TMP/w$i.err" </dev/null &
    eval "w$i=\$!"
done
sleep 3
# the panicking command: its own client must end too
timeout -k 5 120 "$DEVBOX" exec -- sh -c 'umount /proc/sys && echo 0 > /proc/sys/kernel/panic &&
    umount /proc/sysrq-trigger && echo c > /proc/sysrq-trigger; sleep 1000' \
    >"$TEST_TMP/p.out" 2>"$TEST_TMP/p.err" </dev/null &
p=$!
for pid in "$w1" "$w2" "$p"; do
    wait "$pid"
    rc=$?
    log "client $pid exited $rc"
    [ "$rc" != 0 ] || fail "client $pid exited 0 after a guest panic"
    [ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "client $pid had to be killed by timeout after a guest panic"
done
for f in w1 w2 p; do
    e=$(cat "$TEST_TMP/$f.err")
    assert_one_line "$e" "stderr of client $f"
    assert_contains "$e" "guest kernel panicked" "stderr of client $f"
done
wait_until 30 bash -c "! kill -0 $q 2>/dev/null" || fail "qemu $q still runs after the guest panicked"
wait_until 30 state_is stopped || fail "status does not say stopped after the panic: $(dbx status 2>&1)"
ok dbx logs --supervisor
assert_contains "$OUT" "the guest kernel panicked ($source); killing QEMU" \
    "supervisor log after the panic"
assert_not_contains "$OUT" "$other" "supervisor log after the panic"
ok dbx exec -- echo again
assert_eq again "$OUT" "exec after the panic"
assert_ne "$q" "$(the_qemu_pid)" "qemu pid after the panic"

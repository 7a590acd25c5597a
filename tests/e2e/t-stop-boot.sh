#!/usr/bin/env bash
# t-stop-boot: `devbox stop` while the box boots (QEMU started, the guest not up yet) ends the
# boot: the waiting command fails in one line that names the stop, not the processes the stop
# ended (it named virtiofsd: "the VM exited during boot (virtiofsd: virtio_loop: Unexpected
# poll revents 11 ...)"), nothing is left running, and the next command boots the box; a command
# running when the box is stopped says that a stop ended it.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# Debian's kernel, whose boot under TCG takes seconds before the guest's hello (modules from
# its initramfs): time for the stop to land while QEMU runs and the guest is not up yet
[ -n "${DEVBOX_KERNEL_DEB:-}" ] || skip "no Debian kernel package (DEVBOX_KERNEL_DEB)"
DEVBOX_KERNEL=debian "$DEVBOX" exec -- echo booted >"$TEST_TMP/e.out" 2>"$TEST_TMP/e.err" </dev/null &
pid=$!
n=0
until pgrep -f "^qemu-system.*$TEST_TMP" >/dev/null; do
    [ $((n += 1)) -lt 3000 ] || fail "no QEMU for the booting box within 60 s"
    sleep 0.02
done
ok dbx stop
wait "$pid"
rc=$?
assert_eq 125 "$rc" "exit code of the command whose boot was stopped (out: $(cat "$TEST_TMP/e.out"))"
err=$(cat "$TEST_TMP/e.err")
assert_one_line "$err" "error of the command whose boot was stopped"
assert_contains "$err" "stopped while starting" "error of the command whose boot was stopped"
assert_not_contains "$err" "virtiofsd" "error of the command whose boot was stopped"
wait_gone 15 || fail "processes left after a stop during the boot: $(describe_pids $(test_pids))"
ok dbx status
assert_contains "$OUT" "stopped" "status after a stop during the boot"

ok dbx exec -- echo again
assert_eq again "$OUT" "the next command"

# and a command running when `devbox stop` comes says what ended it (it said "the VM stopped",
# which reads as a crash)
"$DEVBOX" exec -- sleep 100 >"$TEST_TMP/e.out" 2>"$TEST_TMP/e.err" </dev/null &
pid=$!
sleeping() { [ "$(guest_running 'sleep 100')" -ge 1 ]; }
wait_until 60 sleeping || fail "sleep 100 did not start in the box"
ok dbx stop
wait "$pid"
assert_eq "125 devbox: the VM stopped: a 'devbox stop' (or restart, reset, rm) asked for it" \
    "$? $(cat "$TEST_TMP/e.err")" "a command running when the box was stopped"

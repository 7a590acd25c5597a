#!/usr/bin/env bash
# t-guest-hang: a guest that stops answering (here: QEMU stopped with SIGSTOP, as a hung kernel
# looks from the host) is declared dead after the supervisor's liveness deadline (90 s without
# a frame, pinged after 15 s): the waiting client gets one line and exit 125, QEMU is killed,
# status says stopped and the next exec boots a fresh VM.  Takes about two minutes.
. "$(dirname "$0")/lib.sh"

gone() { ! kill -0 "$1" 2>/dev/null; }

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx exec -- true
q=$(the_qemu_pid)
"$DEVBOX" exec -- sleep 1000 >"$TEST_TMP/w.out" 2>"$TEST_TMP/w.err" </dev/null &
w=$!
sleep 3
kill -STOP "$q"
CLEANUP_HOOKS+=("kill -CONT $q 2>/dev/null")
wait_until 150 gone "$w" || {
    kill -9 "$w"
    fail "the client still waits 150s after the guest stopped answering"
}
wait "$w"
rc=$?
e=$(cat "$TEST_TMP/w.err")
log "client exited $rc: $(show "$e")"
assert_eq 125 "$rc" "exit code of the waiting client"
assert_one_line "$e" "stderr of the waiting client"
assert_contains "$e" "the guest has not answered for" "stderr of the waiting client"
wait_until 30 gone "$q" || fail "qemu $q still exists after the guest was declared dead"
wait_until 30 state_is stopped || fail "status does not say stopped: $(dbx status 2>&1)"
ok dbx exec -- echo again
assert_eq again "$OUT" "exec after the hung guest"

#!/usr/bin/env bash
# t-signal-term: SIGTERM to the exec client ends it promptly even when the command does not
# end: one that ignores SIGTERM, and a fork bomb keeping the guest busy.  The client forwards
# the signal, gives the command a short grace, then exits 143 with one line; the command is
# killed in the guest and the box answers afterwards.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"
ok dbx exec -- true

guest_sleepers() { guest_running 'sleep 1000'; } # "sleep 1000" processes in the guest
sleeping() { [ "$(guest_sleepers)" -ge 1 ]; }
not_sleeping() { [ "$(guest_sleepers)" = 0 ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }

# ---- a command that ignores SIGTERM ------------------------------------------------------
"$DEVBOX" exec -- sh -c 'trap "" TERM; sleep 1000; echo not reached' \
    >"$TEST_TMP/t.out" 2>"$TEST_TMP/t.err" </dev/null &
pid=$!
wait_until 60 sleeping || fail "'sleep 1000' never showed up in the guest"
kill -TERM "$pid"
wait_until 15 gone "$pid" || {
    kill -9 "$pid"
    fail "the client still ran 15s after SIGTERM to a command that ignores it"
}
wait "$pid"
rc=$?
e=$(cat "$TEST_TMP/t.err")
log "client exited $rc; stderr: $(show "$e")"
assert_eq 143 "$rc" "exit code after SIGTERM"
assert_one_line "$e" "stderr after SIGTERM"
assert_contains "$e" "did not end within" "stderr after SIGTERM"
assert_eq "" "$(cat "$TEST_TMP/t.out")" "stdout after SIGTERM"
wait_until 20 not_sleeping || fail "the command still runs in the guest after the client gave up"

# ---- a fork bomb ---------------------------------------------------------------------------
"$DEVBOX" exec -- ./probe forkbomb 600 >"$TEST_TMP/b.out" 2>"$TEST_TMP/b.err" </dev/null &
pid=$!
sleep 5
kill -TERM "$pid"
wait_until 15 gone "$pid" || {
    kill -9 "$pid"
    fail "the client still ran 15s after SIGTERM during a fork bomb"
}
wait "$pid"
rc=$?
log "fork bomb client exited $rc; stderr: $(show "$(cat "$TEST_TMP/b.err")")"
assert_eq 143 "$rc" "exit code after SIGTERM during a fork bomb"
wait_until 90 dbx exec -- true || fail "the box does not answer within 90s after the fork bomb"

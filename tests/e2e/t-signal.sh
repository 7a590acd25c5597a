#!/usr/bin/env bash
# t-signal: Ctrl-C on the client (SIGINT) reaches the command: exit 130 quickly, the guest
# process is gone.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx exec -- true # boot first: measure forwarding, not boot

guest_sleepers() { guest_running 'sleep 100'; } # "sleep 100" processes in the guest
sleeping() { [ "$(guest_sleepers)" -ge 1 ]; }
not_sleeping() { [ "$(guest_sleepers)" = 0 ]; }

# A shell starting a background job sets SIGINT to ignored in it; a terminal's Ctrl-C goes to a
# foreground process with the default disposition, so restore it.
"$PYTHON" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$DEVBOX" exec -- sleep 100 >"$TEST_TMP/sig.out" 2>"$TEST_TMP/sig.err" </dev/null &
pid=$!
wait_until 60 sleeping || fail "'sleep 100' never showed up in the guest"
t0=$(date +%s%N)
kill -INT "$pid"
wait "$pid"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
log "client exited $rc after SIGINT in ${ms}ms; stderr: $(cat "$TEST_TMP/sig.err")"
assert_eq 130 "$rc" "exit code after SIGINT to the client"
assert_le "$ms" 5000 "milliseconds from SIGINT to exit"
wait_until 10 not_sleeping || fail "'sleep 100' still runs in the guest after SIGINT"

# the VM is still fine afterwards
ok dbx exec -- echo alive
assert_eq alive "$OUT"

# a command that handles SIGINT itself decides its exit code; like a terminal's Ctrl-C the
# signal reaches the whole foreground process group (here the shell and its 'sleep 100')
"$PYTHON" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$DEVBOX" exec -- sh -c 'trap "echo caught; exit 42" INT; while :; do sleep 100; done' \
    >"$TEST_TMP/sig.out" 2>"$TEST_TMP/sig.err" </dev/null &
pid=$!
wait_until 60 sleeping || fail "second 'sleep 100' never showed up in the guest"
kill -INT "$pid"
wait_until 10 bash -c "! kill -0 $pid 2>/dev/null" ||
    fail "client still running 10s after SIGINT to a command that traps SIGINT (output: $(show "$(cat "$TEST_TMP/sig.out")"))"
wait "$pid"
rc=$?
log "client exited $rc; stderr: $(cat "$TEST_TMP/sig.err")"
assert_eq 42 "$rc" "exit code of a command that traps SIGINT"
assert_eq caught "$(cat "$TEST_TMP/sig.out")" "output of the trap"

#!/usr/bin/env bash
# t-signal: Ctrl-C on the client (SIGINT) reaches the command: exit 130 quickly, the guest
# process is gone.  Ctrl-Z (SIGTSTP to the client) stops the command in the box too and SIGCONT
# continues both; a client leading its own session (setsid), whose stop the kernel drops, leaves
# its command running.
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

# ^Z without -t (a SIGTSTP to devbox): the command in the box stops as well, and `fg`'s SIGCONT
# continues both (found in use: devbox stopped and the command ran on in the box, its output
# coming all at once at `fg`).  The box's side is orphaned, where the kernel drops a SIGTSTP, so
# the guest stops it with SIGSTOP.
"$DEVBOX" exec -- sh -c 'echo $$; while :; do sleep 0.2; done' >"$TEST_TMP/z.out" 2>"$TEST_TMP/z.err" </dev/null &
pid=$!
wait_until 60 test -s "$TEST_TMP/z.out" || fail "the looping command did not start: $(show "$(cat "$TEST_TMP/z.err")")"
gpid=$(head -n 1 "$TEST_TMP/z.out")
box_state() { timeout 60 "$DEVBOX" exec -- sed -n 's/^State:\t\([A-Z]\).*/\1/p' "/proc/$gpid/status" </dev/null; }
client_state() { ps -o stat= -p "$pid" | cut -c1; }
box_is() { [ "$(box_state)" = "$1" ]; }
box_runs() { case $(box_state) in S | R) ;; *) false ;; esac }
client_is() { [ "$(client_state)" = "$1" ]; }
kill -TSTP "$pid"
wait_until 10 client_is T || fail "devbox not stopped by SIGTSTP: state $(client_state)"
wait_until 10 box_is T || fail "the command in the box not stopped by ^Z: state $(box_state)"
kill -CONT "$pid"
wait_until 10 box_runs || fail "the command in the box not continued by SIGCONT: state $(box_state)"
assert_ne T "$(client_state)" "devbox's state after SIGCONT"
kill -INT "$pid"
wait "$pid"
assert_eq 130 "$?" "exit code of the continued command after SIGINT"

# devbox leading its own session (`setsid`, `ssh -t host devbox exec ...`): its process group is
# orphaned and the kernel drops the stop it raises, so nothing would send the SIGCONT; it
# continues the command itself, which goes on
: >"$TEST_TMP/z.out"
setsid "$DEVBOX" exec -- sh -c 'echo $$; while :; do echo x; sleep 0.2; done' >"$TEST_TMP/z.out" 2>"$TEST_TMP/z.err" </dev/null &
pid=$!
wait_until 60 test -s "$TEST_TMP/z.out" || fail "the orphaned client's command did not start: $(show "$(cat "$TEST_TMP/z.err")")"
gpid=$(head -n 1 "$TEST_TMP/z.out")
kill -TSTP "$pid"
sleep 2
assert_ne T "$(client_state)" "an orphaned devbox after SIGTSTP"
wait_until 10 box_runs || fail "the orphaned client's command left stopped: state $(box_state)"
n1=$(wc -l <"$TEST_TMP/z.out")
sleep 1.5
[ "$(wc -l <"$TEST_TMP/z.out")" -gt "$n1" ] || fail "the orphaned client's command printed nothing more after SIGTSTP"
kill -INT "$pid"
wait "$pid"
assert_eq 130 "$?" "exit code of the orphaned client's command after SIGINT"

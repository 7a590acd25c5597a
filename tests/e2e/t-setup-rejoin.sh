#!/usr/bin/env bash
# t-setup-rejoin: a command interrupted (Ctrl-C) during a long first [setup] leaves the start
# running, and the next command waits for it.  Found in use: after a Ctrl-C during `apt-get
# install`, every `devbox exec` failed at once with "another supervisor owns '...': Resource
# temporarily unavailable" until the setup ended, and `devbox status` said "stopped".  Now the
# status says "starting" (text and JSON), and the next command says it waits, shows what the
# setup prints from then on, as the first command showed it, and runs once the box is up; setup
# ran once.  A start that fails while a command waits for it: the waiting command reports that
# failure (exit 125, devbox.ini:LINE, "the start this command waited for") without running the
# setup again, whether it waited for a start left running or for another command's (two at
# once); the next command tries the setup again.  The busybox image.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# interrupt_during_setup MARK: start `devbox exec`, wait for its stderr to show MARK (a setup
# line), then Ctrl-C it as a terminal would (SIGINT), and wait for it to end
interrupt_during_setup() {
    # (a background job of a script starts with SIGINT ignored: a terminal's Ctrl-C would not be)
    env --default-signal=INT "$DEVBOX" exec -- echo first >"$TEST_TMP/a.out" 2>"$TEST_TMP/a.err" </dev/null &
    local a=$!
    CLEANUP_HOOKS+=("kill $a 2>/dev/null")
    wait_until 120 grep -q -- "$1" "$TEST_TMP/a.err" ||
        fail "setup did not reach '$1': $(show "$(cat "$TEST_TMP/a.err")")"
    kill -INT "$a"
    wait "$a"
    local rc=$?
    [ "$rc" != 0 ] || fail "the interrupted command exited 0"
    assert_eq "" "$(cat "$TEST_TMP/a.out")" "the interrupted command's stdout"
}

# ---- a start that goes on without its command --------------------------------------------
write_profile "$R" "[setup]
$(setup_run "echo step one" "sleep 10" "echo step two > /setup-two" "echo step three")
network = none"
ok dbx trust
interrupt_during_setup 'setup \[2/4\]: sleep 10'
ok dbx status
assert_contains "$OUT" "starting" "status while the interrupted start goes on"
assert_not_contains "$OUT" "stopped" "status while the interrupted start goes on"
ok dbx status --json
assert_eq starting "$(json_get "$OUT" 'j["state"]')" "status --json state while starting"

ok dbx exec -- sh -c 'echo second; cat /setup-two'
assert_eq "second
step two" "$OUT" "the next command's output (it ran after the whole setup)"
assert_contains "$ERR" "still starting for a command that went away; waiting" "the next command's notice"
assert_contains "$ERR" "step three" "the setup's later output, shown by the waiting command"
assert_contains "$ERR" "setup: done" "the setup's end, shown by the waiting command"
assert_not_contains "$ERR" "another supervisor" "the next command's stderr"
assert_not_contains "$ERR" "setup [1/4]" "the next command's stderr: the setup did not run again"
ok dbx status
assert_contains "$OUT" "running" "status after the start"
# the running box's status record, kept to stand for one a killed supervisor would leave
id=$(json_get "$(dbx status --json)" 'j["id"]')
cp "$DEVBOX_HOME/run/$id/status" "$TEST_TMP/stale-status" || fail "no status record in the run dir"
ok dbx stop

# ---- a start that fails while a command waits for it ---------------------------------------
write_profile "$R" "[setup]
$(setup_run "echo bad one" "sleep 10" "echo failing && exit 3")
network = none"
ok dbx trust
# a record a killed supervisor left: the next start removes it, or the waiting command would
# take the start for a box stopping (no notice, no setup output)
cp "$TEST_TMP/stale-status" "$DEVBOX_HOME/run/$id/status"
interrupt_during_setup 'setup \[2/3\]: sleep 10'
run dbx exec -- echo must-not-run
assert_eq 125 "$RC" "exit code of a command that waited for a start that failed (stderr: $(show "$ERR"))"
assert_eq "" "$OUT" "stdout of a command that waited for a start that failed"
assert_contains "$ERR" "waiting for it" "the waiting command's notice (a stale record removed)"
assert_match "$(tail -n 1 <<<"$ERR")" "devbox\.ini:4: setup command failed with exit code 3: echo failing && exit 3 .*\(the start this command waited for; run it again to retry\)$" \
    "the waiting command's last line: the failure of the start it waited for"
grep -qx failing <<<"$ERR" || fail "the waiting command did not show the failing setup command's output: $(show "$ERR")"
assert_not_contains "$ERR" "setup [1/3]" "the waiting command's stderr: the setup did not run again"
ok dbx status
assert_contains "$OUT" "stopped" "status after the failed start"
# the next command, which waited for nothing, tries the setup again (and fails the same way)
run dbx exec -- echo must-not-run
assert_eq 125 "$RC" "exit code of the next command after a failed start"
assert_contains "$ERR" "setup [1/3]: echo bad one" "the next command runs the setup again"
assert_match "$(tail -n 1 <<<"$ERR")" "devbox\.ini:4: setup command failed with exit code 3: echo failing && exit 3" \
    "the next command's last line: its own start's failure"
assert_not_contains "$ERR" "waited for" "the next command's stderr"

# ---- two commands at once, the setup failing: the second waits and reports the first's ----
first=$TEST_TMP/first
n0=$(grep -c "supervisor: starting for" "$DEVBOX_HOME/state/projects/$id/supervisor.log")
"$DEVBOX" exec -- echo first >"$first.out" 2>"$first.err" </dev/null &
fpid=$!
CLEANUP_HOOKS+=("kill $fpid 2>/dev/null")
wait_until 120 grep -q -- 'setup \[2/3\]: sleep 10' "$first.err" ||
    fail "the first command's setup did not reach its sleep: $(show "$(cat "$first.err")")"
run dbx exec -- echo second
wait "$fpid"
frc=$?
assert_eq 125 "$frc" "exit code of the first of two commands (stderr: $(show "$(cat "$first.err")"))"
assert_eq 125 "$RC" "exit code of the second of two commands (stderr: $(show "$ERR"))"
assert_eq "" "$OUT" "stdout of the second of two commands"
assert_match "$(tail -n 1 <<<"$ERR")" "devbox\.ini:4: setup command failed with exit code 3: echo failing && exit 3 .*\(the start this command waited for; run it again to retry\)$" \
    "the second command's last line: the first one's failure"
assert_not_contains "$ERR" "setup [1/3]" "the second command's stderr: the setup did not run again"
n1=$(grep -c "supervisor: starting for" "$DEVBOX_HOME/state/projects/$id/supervisor.log")
assert_eq "$((n0 + 1))" "$n1" "supervisors started for the two commands"

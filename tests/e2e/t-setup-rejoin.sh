#!/usr/bin/env bash
# t-setup-rejoin: a command interrupted (Ctrl-C) during a long first [setup] leaves the start
# running, and the next command waits for it.  Found in use: after a Ctrl-C during `apt-get
# install`, every `devbox exec` failed at once with "another supervisor owns '...': Resource
# temporarily unavailable" until the setup ended, and `devbox status` said "stopped".  Now the
# status says "starting" (text and JSON), and the next command says it waits, shows what the
# setup prints from then on, as the first command showed it, and runs once the box is up; setup
# ran once.  A start that fails while a command waits for it: the waiting command starts the box
# itself, which runs the setup again and reports its failure (exit 125, devbox.ini:LINE).  The
# busybox image.
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
assert_match "$(tail -n 1 <<<"$ERR")" "devbox\.ini:4: setup command failed with exit code 3: echo failing && exit 3" \
    "the waiting command's last line: the setup's failure (it ran the setup again)"
ok dbx status
assert_contains "$OUT" "stopped" "status after the failed starts"

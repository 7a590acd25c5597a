#!/usr/bin/env bash
# t-idle-stop: config.ini's [box] idle_stop (issue 12).  With 0 the box never stops and status
# shows its idle time growing; with a few seconds it stops by itself (status stopped, the
# supervisor, QEMU and virtiofsd gone, box.idle-stopped in the journal) and the next command
# boots it again; a running `exec -d` command and an open session each keep it up until they
# end (neither is killed by the stop); commands arriving around the stop all succeed.  Five to
# eight boots.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
CONF="$DEVBOX_HOME/config/config.ini"
mkdir -p "$(dirname "$CONF")"

status_json() { dbx status --json </dev/null 2>/dev/null; }
idle_s() { json_get "$(status_json)" 'j.get("idle_s", -1)'; }
stopped_and_gone() {
    state_is stopped && [ -z "$(test_pids '^(qemu-system.*|virtiofsd|devbox.*)$')" ]
}
idle_stops() { dbx events --json </dev/null 2>/dev/null | grep -c '"type":"box.idle-stopped"'; }

# ---- config.ini errors name file:line ----------------------------------------------------
printf '[box]\nidle_stop = 5x\n' >"$CONF"
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "config.ini:2: [box] idle_stop: must be 0 (never) or a whole number" \
    "the error names config.ini:line"
printf '[box]\nmemory = 1G\n' >"$CONF"
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "config.ini:2: unknown key 'memory' in [box]" "[box] in config.ini"
write_profile "$R" '[box]
idle_stop = 1s'
printf '' >"$CONF"
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "idle_stop is a user setting" "idle_stop in devbox.ini"
rm -f "$R/devbox.ini"

# ---- idle_stop = 0: never stops; the idle time grows -------------------------------------
printf '[box]\nidle_stop = 0\n' >"$CONF"
ok dbx exec -- true
J=$(status_json)
assert_eq running "$(json_get "$J" 'j["state"]')" "state after exec"
assert_eq 0 "$(json_get "$J" 'j["idle_stop_s"]')" "idle_stop_s with idle_stop = 0"
A=$(json_get "$J" 'j["idle_s"]')
sleep 3
B=$(idle_s)
[ "$B" -gt "$A" ] || fail "idle_s did not grow: $A, then $B 3 s later"
ok dbx status
printf '%s\n' "$OUT" | grep -Eq '^idle +[0-9]+s$' || fail "no idle line in status: $(show "$OUT")"
state_is running || fail "idle_stop = 0 stopped the box"
assert_eq 0 "$(idle_stops)" "no idle stop with idle_stop = 0"
ok dbx stop

# ---- a few seconds: the box stops by itself; the next command boots it ---------------------
printf '[box]\n; short, for the test\nidle_stop = 4s\n' >"$CONF"
ok dbx exec -- true
ok dbx status
assert_contains "$OUT" "(stops at 4s)" "status names the idle stop"
wait_until 90 stopped_and_gone ||
    fail "the idle box did not stop: $(show "$(status_json)") $(describe_pids $(test_pids))"
ok dbx events --json
assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c '"type":"box.idle-stopped"')" "box.idle-stopped lines"
LAST=$(printf '%s\n' "$OUT" | tail -n 1)
assert_contains "$LAST" '"type":"box.idle-stopped"' "the journal's last line (not box.stopped)"
IDLE=$(json_get "$LAST" 'j["idle_s"]')
[ "$IDLE" -ge 4 ] || fail "box.idle-stopped says idle_s $IDLE (< idle_stop 4)"
ok dbx events
assert_match "$OUT" "box   idle-stopped \(idle for [0-9]+s\)" "text form of the idle stop"
# ---- the next command boots it; an open session keeps it up until it ends ----------------
"$DEVBOX" exec -- sh -c 'sleep 15; echo session-done' >"$TEST_TMP/sess.out" 2>"$TEST_TMP/sess.err" </dev/null &
SESS=$!
wait_until 120 state_is running || fail "the session's box did not start"
sleep 8 # twice idle_stop
state_is running || fail "the box stopped while a session was open"
assert_eq 0 "$(idle_s)" "idle_s while a session is open"
wait "$SESS"
assert_eq 0 "$?" "the session's exit code ($(show "$(cat "$TEST_TMP/sess.err")"))"
assert_eq session-done "$(cat "$TEST_TMP/sess.out")" "the first command after an idle stop"

# ---- a running `exec -d` keeps the box up until it ends -----------------------------------
# (the box may have stopped after the session already: then this boots it)
ok dbx exec -d -- sleep 15
sleep 8
state_is running || fail "the box stopped while an exec -d command ran"
assert_eq 0 "$(idle_s)" "idle_s while an exec -d command runs"
ok dbx status
assert_not_contains "$OUT" "idle " "status while busy"
wait_until 90 stopped_and_gone || fail "the box did not stop after the exec -d command ended"
ok dbx events --json
EV=$(printf '%s\n' "$OUT" | "$PYTHON" -c '
import json, sys
ev = [json.loads(l) for l in sys.stdin]
sleep = [e["id"] for e in ev if e["type"] == "exec.started" and e["argv"] == ["sleep", "15"]][-1]
print(";".join(str(e.get("exit_code")) if e["type"] == "exec.exited" and e["id"] == sleep
               else e["type"] for e in ev[-2:]))')
assert_eq "0;box.idle-stopped" "$EV" "the detached sleep ran to its end, then the idle stop"

# ---- commands arriving around the idle stop: each is served (by this VM or a new one) ------
printf '[box]\nidle_stop = 2s\n' >"$CONF"
ok dbx exec -- true
for i in 1 2 3; do
    sleep "1.$((i * 30))"
    ok dbx exec -- echo "round $i"
    assert_eq "round $i" "$OUT" "a command near the idle stop (round $i)"
done
ok dbx stop

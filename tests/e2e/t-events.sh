#!/usr/bin/env bash
# t-events: the events journal (`devbox events`): a session's commands with their exit codes in
# order (0, 3, killed by SIGTERM), a protected-path write attempt, box started and stopped; it
# reads the journal while the box is stopped, --follow sees a new command as it starts and
# ends, a corrupt line is skipped with a warning naming file:line.  One boot.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# before the first start: no journal yet, said on stderr, nothing on stdout
ok dbx events
assert_eq "" "$OUT" "events before the first start"
assert_contains "$ERR" "no events yet" "events before the first start"

ok dbx exec -- true
expect_rc 3 dbx exec -- sh -c 'exit 3'
expect_rc 143 dbx exec -- sh -c 'kill -TERM $$'
# a protected path: the write fails in the box and is reported (the init: at most once a second)
expect_rc 7 dbx exec -- sh -c 'echo x > .git/hooks/x || exit 7'
has_protected() { "$DEVBOX" events --json </dev/null 2>/dev/null | grep -q '"type":"protected"'; }
wait_until 10 has_protected || fail "no protected event: $(show "$(dbx events --json)")"

# --follow: a command run now shows up (start and exit) in the follower's output
"$DEVBOX" events --follow --json -n 0 >"$TEST_TMP/follow" 2>"$TEST_TMP/follow.err" </dev/null &
FOLLOWER=$!
sleep 1 # past its first read
ok dbx exec -- echo followed-cmd
followed() { grep -q '"exit_code":0' "$TEST_TMP/follow" && grep -q 'followed-cmd' "$TEST_TMP/follow"; }
wait_until 10 followed || fail "--follow did not see the command: $(show "$(cat "$TEST_TMP/follow")")"
kill "$FOLLOWER" && wait "$FOLLOWER" 2>/dev/null
assert_eq 2 "$(count_lines <"$TEST_TMP/follow")" "--follow -n 0: only the new command's two lines"

ok dbx stop
# while stopped: the whole session, in order
ok dbx events --json
assert_eq "" "$ERR" "stderr of events --json"
assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c '"type":"protected"')" "protected lines"
SUMMARY=$(printf '%s\n' "$OUT" | "$PYTHON" -c '
import json, sys
out, argv = [], {}
for line in sys.stdin:
    e = json.loads(line)
    t = e["type"]
    assert e["time"].endswith("Z") and "T" in e["time"], e
    if t == "exec.started":
        argv[e["id"]] = " ".join(e["argv"])
    elif t == "exec.exited":
        out.append("%s=%s" % (argv[e["id"]], e["exit_code"]))
        assert e["duration_ms"] >= 0
    elif t == "protected": # reported within a second: before or after the exit line
        assert (e["count"], e["first"]) == (1, ".git/hooks"), e
    else:
        out.append(t)
print(";".join(out))
') || fail "events --json is not JSON lines: $(show "$OUT")"
assert_eq "box.started;true=0;sh -c exit 3=3;sh -c kill -TERM \$\$=143;sh -c echo x > .git/hooks/x || exit 7=7;echo followed-cmd=0;box.stopped" \
    "$SUMMARY" "the session in events --json"

# the text form: one line an event
ok dbx events
assert_eq 13 "$(printf '%s\n' "$OUT" | count_lines)" "text lines"
assert_match "$OUT" "exec  'sh -c exit 3' \(uid [0-9]+\) exited 3 after [0-9.]+ s" "text form"
assert_match "$OUT" "box   stopped \(requested by a client\)" "text form of the stop"
ok dbx events -n 2
assert_eq 2 "$(printf '%s\n' "$OUT" | count_lines)" "-n 2"
assert_contains "$OUT" "box   stopped" "-n 2: the last line"

# a corrupt line (a partial one, then more): skipped with one warning naming file:line
J=$(find "$DEVBOX_HOME" -name events.jsonl | head -n 1)
[ -n "$J" ] || fail "no events.jsonl under DEVBOX_HOME"
printf '{"time":"2026-01-01T00:00:00Z","type":"exec.sta\n' >>"$J"
printf '{"time":"2026-01-01T00:00:01.000Z","type":"box.started"}\n{"time":"x"' >>"$J"
ok dbx events --json
assert_one_line "$ERR" "stderr with a corrupt line"
assert_contains "$ERR" "events.jsonl:14: skipping a corrupt line" "warning names file:line"
assert_eq 14 "$(printf '%s\n' "$OUT" | count_lines)" "lines around the corrupt one (the partial last one held back)"

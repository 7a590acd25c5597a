#!/usr/bin/env bash
# t-procs: processes in the box, one boot.  Each command runs in its own leaf cgroup; a detached
# HTTP server (`exec -d`) survives its client, is reached through a port forward, shows in `ps`
# as detached, its output in `logs` (-n N: its last lines; `logs -f` ends when it does), and
# `kill` ends it; `--timeout` exits 124 and leaves no process; an attached command still dies with
# its client; `kill` refuses what is not the box's.  `logs -f` of the supervisor's log shows an
# admin command as it is logged, and ends when the project is removed.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || skip "curl not installed on the host"
import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
mkdir -p "$R/www"
echo "served by a detached command" >"$R/www/index.html"
P=$(free_port)

# the command's own leaf under the box cgroup
ok dbx exec -- cat /proc/self/cgroup
assert_match "$OUT" '^0::/box/s[0-9]+$' "a command's cgroup"

# logs -f of the box's own log (the supervisor's, the default), from its end (-n 0): the line an
# admin command leaves there comes as it is written
"$DEVBOX" logs -f -n 0 >"$TEST_TMP/sup-follow" 2>&1 </dev/null &
SUPF=$!
CLEANUP_HOOKS+=("kill $SUPF 2>/dev/null")
sleep 1 # past its first read
ok dbx exec --admin -- echo followed-admin
wait_until 20 grep -q "admin exec: 'echo' 'followed-admin'" "$TEST_TMP/sup-follow" ||
    fail "logs -f did not show the admin command: $(show "$(cat "$TEST_TMP/sup-follow")")"

# a detached server: the client prints its pid and returns at once
ok dbx exec -d -- sh -c "echo detached server up; exec busybox httpd -f -p 127.0.0.1:8000 -h '$R/www'"
PID=$OUT
assert_match "$PID" '^[0-9]+$' "exec -d prints the guest pid"
ok dbx port add "$P:8000"
wait_until 60 curl -sf -o /dev/null "http://127.0.0.1:$P/index.html" ||
    fail "the detached server never answered through the forward"
ok curl -sS "http://127.0.0.1:$P/index.html"
assert_eq "served by a detached command" "$OUT" "body from the detached server"

ok dbx ps
assert_match "$OUT" "(^|$(printf '\n')) *$PID +[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +D +busybox httpd" \
    "ps shows the server as detached"
assert_not_contains "$OUT" "devbox-init" "ps lists the box's processes only"
ok dbx ps --json
python3 - "$TEST_TMP/stdout" "$PID" <<'EOF' || fail "ps --json: $(show "$OUT")"
import json, sys
procs = json.load(open(sys.argv[1]))
me = [p for p in procs if p["pid"] == int(sys.argv[2])]
assert len(me) == 1 and me[0]["detached"] is True and me[0]["session"] > 0, me
assert all(p["pid"] != 1 for p in procs), procs
EOF

ok dbx logs "$PID"
assert_contains "$OUT" "detached server up" "logs PID"
ok dbx logs -n 1 "$PID"
assert_eq "detached server up" "$OUT" "logs -n 1 PID"
run_in / dbx logs --tail 1 "$PID" "$R"
assert_eq "0 detached server up" "$RC $OUT" "logs --tail 1 PID PATH, from outside the project"

# logs -f follows until the process is gone
"$DEVBOX" logs -f "$PID" >"$TEST_TMP/follow" 2>&1 &
FOLLOW=$!
CLEANUP_HOOKS+=("kill $FOLLOW 2>/dev/null")

# kill: refused for init and for pids that are not the box's; then the server
expect_rc 125 dbx kill 1
assert_contains "$ERR" "no process 1 in the box" "kill 1"
expect_rc 125 dbx kill -s NOPE "$PID"
assert_contains "$ERR" "unknown signal" "kill -s NOPE"
ok dbx kill -s TERM "$PID"
wait_until 30 sh -c "! kill -0 $FOLLOW 2>/dev/null" || fail "logs -f did not end with the process"
assert_contains "$(cat "$TEST_TMP/follow")" "detached server up" "logs -f output"
ok dbx ps
assert_not_contains "$OUT" "httpd" "ps after kill"
run curl -sS --max-time 5 "http://127.0.0.1:$P/index.html"
assert_ne 0 "$RC" "curl after kill"

# --timeout: 124 at the deadline, and nothing the command started is left
expect_rc 125 dbx exec --timeout 5x -- true
assert_contains "$ERR" "invalid duration" "a bad --timeout"
t0=$SECONDS
expect_rc 124 dbx exec --timeout 2s -- sh -c 'sleep 300 & sleep 301'
assert_le $((SECONDS - t0)) 30 "seconds until --timeout ended the command"
ok dbx exec --timeout 1m -- true
ok dbx ps
assert_not_contains "$OUT" "sleep 30" "ps after --timeout"

# an attached command dies when its client is killed
"$DEVBOX" exec -- sh -c 'echo $$; exec sleep 302' >"$TEST_TMP/attached" 2>&1 &
CLIENT=$!
CLEANUP_HOOKS+=("kill -9 $CLIENT 2>/dev/null")
wait_until 60 grep -q '^[0-9]' "$TEST_TMP/attached" || fail "the attached command never started"
ok dbx ps
assert_contains "$OUT" "sleep 302" "the attached command in ps"
assert_match "$OUT" " A +sleep 302" "ps shows it attached"
kill -9 "$CLIENT"
# a running box's list (its header): ps of a stopped box also exits 0
gone() { run dbx ps && [ "$RC" = 0 ] && grep -q "PID" "$TEST_TMP/stdout" && ! grep -q "sleep 302" "$TEST_TMP/stdout"; }
wait_until 30 gone || fail "the attached command outlived its client: $(show "$OUT")"

# kill --all leaves the box empty
ok dbx exec -d -- sleep 303
ok dbx kill -s KILL --all
gone_all() { run dbx ps && [ "$RC" = 0 ] && grep -q "PID" "$TEST_TMP/stdout" && ! grep -q "sleep 303" "$TEST_TMP/stdout"; }
wait_until 30 gone_all || fail "kill --all left: $(show "$OUT")"
ok dbx exec -- true

# every ended command's leaf is gone: only this command's own is left
one_leaf() { run dbx exec -- sh -c 'ls -d /sys/fs/cgroup/box/s*' && [ "$(printf '%s\n' "$OUT" | grep -c .)" = 1 ]; }
wait_until 30 one_leaf || fail "leaf cgroups left behind: $(show "$OUT")"
expect_rc 125 dbx logs 99999
assert_contains "$ERR" "no log for process 99999" "logs of a pid without a log"

# a FIFO where the image's /etc/passwd was (the box's root may put one there) does not block
# PID 1 when ps looks up user names: ps still answers (the box stays so: exec refuses that file)
ok dbx exec -d -- sleep 304
ok dbx exec --admin -- sh -c 'mv /etc/passwd /etc/passwd.real && mkfifo /etc/passwd'
ok dbx ps
assert_contains "$OUT" "sleep 304" "ps with a FIFO at /etc/passwd"

# the project removed: the supervisor log's follower ends by itself
ok dbx rm --force
wait_until 10 sh -c "! kill -0 $SUPF 2>/dev/null" || fail "logs -f outlived the project's removal"
wait "$SUPF"
assert_eq 0 "$?" "exit code of logs -f once the project was removed"

#!/usr/bin/env bash
# t-net-port: port forwarding in network mode none.  A server in the box is reached from the
# host through 127.0.0.1:HOST (profile [ports] and `devbox port add`), with 100 parallel
# connections (to a server whose backlog is not the bottleneck); status --json and port ls
# --json list them as objects; the forwards disappear when the VM stops, and then port ls says
# so and lists devbox.ini's (--json and ps --json: []).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || skip "curl not installed on the host"
import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
mkdir -p "$R/www"
echo "served from the box" >"$R/www/index.html"
P1=$(free_port)
P2=$(free_port)
write_profile "$R" "[ports]
$P1 = 8000"

# the server runs as long as this exec does
dbx exec -- busybox httpd -f -p 127.0.0.1:8000 -h "$R/www" >"$TEST_TMP/httpd.log" 2>&1 &
HTTPD=$!
CLEANUP_HOOKS+=("kill $HTTPD 2>/dev/null")
wait_until 120 curl -sf -o /dev/null "http://127.0.0.1:$P1/index.html" ||
    fail "forward from the profile's [ports] never answered: $(tail -n 3 "$TEST_TMP/httpd.log")"
ok curl -sS "http://127.0.0.1:$P1/index.html"
assert_eq "served from the box" "$OUT" "body through the [ports] forward"

ok dbx port add "$P2:8000"
ok dbx port ls
assert_contains "$OUT" "127.0.0.1:$P1 -> 8000" "port ls (profile forward)"
assert_contains "$OUT" "127.0.0.1:$P2 -> 8000" "port ls (added forward)"
ok curl -sS "http://127.0.0.1:$P2/index.html"
assert_eq "served from the box" "$OUT" "body through the added forward"

# the same forwards as JSON objects, in status --json and port ls --json
same="(all(sorted(p) == ['address', 'guest', 'host'] for p in j) and
    sorted((p['address'], p['host'], p['guest']) for p in j) ==
    sorted([('127.0.0.1', $P1, 8000), ('127.0.0.1', $P2, 8000)]))"
ok dbx port ls --json
assert_eq true "$(json_get "$OUT" "$same")" "port ls --json: $(show "$OUT")"
ok dbx status --json
assert_eq true "$(json_get "$OUT" "(lambda j: $same)(j['ports'])")" "status --json's ports: $(show "$OUT")"
ok dbx status
assert_match "$OUT" "port +127\.0\.0\.1:$P2 -> 8000" "the human status keeps its port lines"

# 100 parallel connections, every one answered in full.  Not to busybox httpd: its listen
# backlog is 9, so a burst overflows the box's accept queue and the kernel drops SYNs, which
# the client (here: the guest agent) resends after 1, 3, 7, 15, 31, 63 s; on a loaded machine
# the last ones then miss any sane deadline.  That is the server's choice, the same without
# devbox; the probe listens with SOMAXCONN, as real servers do.
build_probe "$R"
dbx exec -- "$R/probe" serve 127.0.0.1 8001 "burst answer" >"$TEST_TMP/serve.log" 2>&1 &
SERVE=$!
CLEANUP_HOOKS+=("kill $SERVE 2>/dev/null")
P4=$(free_port)
ok dbx port add "$P4:8001"
wait_until 120 curl -sf -o /dev/null "http://127.0.0.1:$P4/" ||
    fail "the probe's server never answered: $(tail -n 3 "$TEST_TMP/serve.log")"
seq 100 | xargs -P 100 -I{} sh -c "curl -sS --max-time 60 http://127.0.0.1:$P4/ > $TEST_TMP/par.{} 2>&1"
good=$(cat "$TEST_TMP"/par.* | grep -c "^burst answer$")
assert_eq 100 "$good" "answers to 100 parallel connections: $(grep -hv '^burst answer$' "$TEST_TMP"/par.* | sort | uniq -c | head -n 3)"

# a forward to a port nothing listens on: the connection is closed, devbox keeps working
P3=$(free_port)
ok dbx port add "$P3:9"
run curl -sS --max-time 20 "http://127.0.0.1:$P3/"
assert_ne 0 "$RC" "curl to a forward whose guest port is closed"
ok dbx exec -- true

# the forward listens on loopback only: its listening sockets (checked on every host: 127.0.0.1,
# and [::1] where the host has IPv6, as `localhost` is ::1 first for clients such as Node 18),
# and no answer on the host's first other address (where it has one)
command -v ss >/dev/null || fail "ss missing (package iproute2)"
listen=$(ss -Hltn "sport = :$P2" | awk '{print $4}' | sort -u | tr '\n' ' ')
if [ -e /proc/net/if_inet6 ] && grep -q "^0\{31\}1 " /proc/net/if_inet6; then
    assert_eq "127.0.0.1:$P2 [::1]:$P2 " "$listen" "listening addresses of the added forward"
    ok curl -sS --max-time 30 "http://[::1]:$P2/index.html"
    assert_eq "served from the box" "$OUT" "body through the forward's [::1] listener"
else
    assert_eq "127.0.0.1:$P2 " "$listen" "listening addresses of the added forward (no IPv6 here)"
fi
addr=$(hostname -I 2>/dev/null | awk '{print $1}')
if [ -n "$addr" ]; then
    run curl -sS --max-time 5 "http://$addr:$P2/index.html"
    assert_ne 0 "$RC" "the forward on a non-loopback address ($addr)"
fi

ok dbx port rm "$P2"
run curl -sS --max-time 5 "http://127.0.0.1:$P2/index.html"
assert_ne 0 "$RC" "curl after port rm"
ok dbx stop
run curl -sS --max-time 5 "http://127.0.0.1:$P1/index.html"
assert_ne 0 "$RC" "curl after the VM stopped"
# a stopped box: a state, not a failure (exit 0); port ls lists what devbox.ini forwards once it
# starts, --json has no forward, ps no process
ok dbx port ls
assert_eq "the box is not running; when it starts, devbox.ini forwards:
127.0.0.1:$P1 -> 8000" "$OUT" "port ls on a stopped VM"
ok dbx port ls --json
assert_eq "[]" "$OUT" "port ls --json on a stopped VM"
ok dbx status --json
assert_eq "[]" "$(json_get "$OUT" 'j["ports"]')" "status --json's ports on a stopped VM"
ok dbx ps --json
assert_eq "[]" "$OUT" "ps --json on a stopped VM"
ok dbx ps
assert_eq "the box is not running" "$OUT" "ps on a stopped VM"
expect_rc 125 dbx port rm "$P1"
assert_contains "$ERR" "not running" "port rm on a stopped VM"

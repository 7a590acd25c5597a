#!/usr/bin/env bash
# t-net-upstream: a company network whose only way out is its HTTP proxy (docs/network.md,
# "A company's proxy").  The proxy (tests/e2e/upstream-proxy.py, on loopback, wanting
# credentials) takes every name to mean 127.0.0.1, where the test's servers stand for the
# outside; the host itself cannot resolve far.test, so only the way through the proxy works.
# config.ini [network] proxy names it, with a percent-encoded password:
# - curl over https (CONNECT) and plain http (absolute form) reach far.test through it, with
#   the user's credentials; the network log says via=; the box's own Proxy-Authorization
#   never reaches it, and the box never sees the credentials;
# - a name outside the allow list never reaches it; what it refuses is a 502 naming it;
# - devbox's own downloads on the host go the same way: the supervisor's proxy variables (which
#   libcurl, mmdebstrap and apt read) are config.ini's;
# - no_proxy's 127.0.0.1 is connected directly;
# - without [network] proxy the environment's https_proxy is used; an unusable one is set aside
#   with a warning naming the variable (its password not shown); proxy = none ignores it;
# - a proxy that wants credentials it was not given: the log says where to put them.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || skip "openssl not installed"
import_debian
R=$(make_repo proj)
cd "$R" || fail "cd $R"
getent hosts far.test >/dev/null && skip "far.test resolves on this host"

test_ca "$TEST_TMP/ca" far.test blocked.test
WWW=$TEST_TMP/www
mkdir -p "$WWW" && echo "hello from outside" >"$WWW/hello" || fail "write $WWW"
HTTPS=$(start_netserver "$WWW" --tls "$TEST_TMP/ca/server.pem" "$TEST_TMP/ca/server.key")
HTTP=$(start_netserver "$WWW")
cp "$TEST_TMP/ca/ca.pem" "$R/ca.pem"

UPLOG=$TEST_TMP/upstream.log
: >"$UPLOG"
# start_upstream ARGS...: the company's proxy (upstream-proxy.py ARGS); prints its port
start_upstream() {
    local pf
    pf=$(mktemp "$TEST_TMP/port.XXXXXX")
    rm -f "$pf"
    "$PYTHON" "$E2E_DIR/upstream-proxy.py" "$pf" "$UPLOG" "$@" >>"$TEST_TMP/upstream.err" 2>&1 &
    printf '%s\n' "$!" >>"$TEST_TMP/servers.pids"
    wait_until 20 test -s "$pf" || fail "upstream-proxy.py did not start: $(tail -n 3 "$TEST_TMP/upstream.err")"
    cat "$pf"
}
UP=$(start_upstream --auth 'alice:s3cr@t' --block blocked.test)
CFG=$DEVBOX_HOME/config/config.ini
mkdir -p "$DEVBOX_HOME/config"
printf '[network]\nproxy = http://alice:s3cr%%40t@127.0.0.1:%s\nno_proxy = 127.0.0.1\n' "$UP" >"$CFG"

write_profile "$R" "[network]
mode = allowlist
allow = far.test:$HTTPS, far.test:$HTTP, blocked.test:$HTTPS, other.test:$HTTPS, 127.0.0.1:$HTTP
[env]
CURL_CA_BUNDLE = $R/ca.pem"
ok dbx trust

# ---- through the company's proxy -----------------------------------------------------------
ok dbx exec -- curl -sS --max-time 60 "https://far.test:$HTTPS/hello"
assert_eq "hello from outside" "$OUT" "curl over https through the upstream proxy"
ok dbx exec -- curl -sS --max-time 60 "http://far.test:$HTTP/hello"
assert_eq "hello from outside" "$OUT" "curl over plain http through the upstream proxy"
up=$(cat "$UPLOG")
assert_contains "$up" "CONNECT far.test:$HTTPS auth=alice:s3cr@t" "the CONNECT, by name, with the user's credentials"
assert_contains "$up" "GET http://far.test:$HTTP/hello auth=alice:s3cr@t" "plain http in absolute form, with the credentials"
ok dbx logs --network
assert_match "$OUT" "allow CONNECT far.test:$HTTPS via=127.0.0.1:$UP " "the log line says via"
assert_match "$OUT" "allow GET far.test:$HTTP via=127.0.0.1:$UP " "the plain http log line says via"

# devbox's own downloads on the host (image pulls, mmdebstrap, apt) go the same way
# (the first start loaded config.ini before it spawned the supervisor: /proc shows what it got)
ok dbx status --json
spid=$(json_get "$OUT" 'j["pid"]')
senv=$(tr '\0' '\n' <"/proc/$spid/environ")
assert_contains "$senv" "https_proxy=http://alice:s3cr%40t@127.0.0.1:$UP" "config.ini's proxy for the supervisor's downloads"
assert_contains "$senv" "HTTP_PROXY=http://alice:s3cr%40t@127.0.0.1:$UP" "config.ini's proxy for plain http too"
assert_contains "$senv" "no_proxy=127.0.0.1" "config.ini's no_proxy for the supervisor's downloads"

# the box's own credentials stay in the box; the user's never enter it
: >"$UPLOG"
ok dbx exec -- curl -sS --max-time 60 -x http://127.0.0.1:3128 -U mallory:pw "http://far.test:$HTTP/hello"
assert_eq "hello from outside" "$OUT" "a request carrying the box's own proxy credentials"
assert_eq "GET http://far.test:$HTTP/hello auth=alice:s3cr@t" "$(cat "$UPLOG")" "only the user's credentials reached the proxy"
ok dbx exec -- sh -c 'env; cat /etc/apt/apt.conf.d/99devbox-proxy'
assert_not_contains "$OUT" "s3cr" "the password in the box"
assert_not_contains "$OUT" "alice" "the proxy user in the box"
assert_contains "$OUT" "HTTPS_PROXY=http://127.0.0.1:3128" "the box still talks to devbox's proxy"

# ---- refusals --------------------------------------------------------------------------------
: >"$UPLOG"
expect_rc 56 dbx exec -- curl -sS --max-time 60 "https://denied.test:$HTTPS/hello"
assert_contains "$ERR" "403" "a name outside the allow list"
expect_rc 56 dbx exec -- curl -sS --max-time 60 "https://blocked.test:$HTTPS/hello"
assert_contains "$ERR" "502" "what the company's proxy refuses"
assert_not_contains "$(cat "$UPLOG")" "denied.test" "a refused name reached the upstream proxy"
assert_contains "$(cat "$UPLOG")" "CONNECT blocked.test:$HTTPS" "the upstream proxy was asked for blocked.test"
ok dbx logs --network
assert_contains "$OUT" "upstream proxy 127.0.0.1:$UP answered CONNECT blocked.test:$HTTPS with 'HTTP/1.1 403 Forbidden by the company proxy'" "the log names the upstream's refusal"

# ---- no_proxy: directly ----------------------------------------------------------------------
: >"$UPLOG"
# (the box's own NO_PROXY keeps its loopback to itself: name devbox's proxy outright)
ok dbx exec -- curl -sS --max-time 60 --noproxy '' -x http://127.0.0.1:3128 "http://127.0.0.1:$HTTP/hello"
assert_eq "hello from outside" "$OUT" "a no_proxy address, directly"
assert_eq "" "$(cat "$UPLOG")" "a no_proxy address went to the upstream proxy"
ok dbx logs --network
assert_match "$OUT" "allow GET 127.0.0.1:$HTTP 127.0.0.1:$HTTP " "the direct connection's log line"

# ---- the environment's proxy, when config.ini names none ---------------------------------------
ok dbx stop
printf '[network]\nno_proxy = 127.0.0.1\n' >"$CFG"
https_proxy="http://alice:s3cr%40t@127.0.0.1:$UP" ok dbx exec -- curl -sS --max-time 60 "https://far.test:$HTTPS/hello"
assert_eq "hello from outside" "$OUT" "through the environment's https_proxy"
ok dbx stop
# (ssh -D's socks5h:// set for other tools must not stop the box: a warning, and directly)
https_proxy="socks5h://bob:hunter2@127.0.0.1:1080" ok dbx exec -- true
assert_contains "$ERR" "the environment's https_proxy='socks5h://***@127.0.0.1:1080': only an http:// proxy is supported" "an unusable environment proxy is named"
assert_contains "$ERR" "the box's network connects directly (set [network] proxy in config.ini, or proxy = none)" "what happens instead, and the fix"
assert_not_contains "$ERR" "hunter2" "the environment proxy's password in the warning"
expect_rc 56 dbx exec -- curl -sS --max-time 60 "https://far.test:$HTTPS/hello"
assert_contains "$ERR" "502" "directly: far.test cannot be resolved on the host"
ok dbx stop
printf '[network]\nproxy = none\n' >"$CFG"
https_proxy="socks5h://bob:hunter2@127.0.0.1:1080" ok dbx exec -- true
assert_not_contains "$ERR" "https_proxy" "proxy = none: the environment's is not looked at"
ok dbx stop
# (a project's first start loads config.ini before the supervisor is spawned: what it was
# given shows in /proc/PID/environ, which the supervisor's own setenv does not change)
R2=$(make_repo proj2)
cd "$R2" || fail "cd $R2"
https_proxy="socks5h://bob:hunter2@127.0.0.1:1080" ok dbx exec -- true
ok dbx status --json
spid=$(json_get "$OUT" 'j["pid"]')
assert_not_contains "$(tr '\0' '\n' <"/proc/$spid/environ")" "proxy=" "proxy = none: no proxy for devbox's own downloads"
ok dbx stop
cd "$R" || fail "cd $R"

# ---- a proxy that wants credentials it was not given -------------------------------------------
ok dbx stop
printf '[network]\nproxy = 127.0.0.1:%s\n' "$UP" >"$CFG"
expect_rc 56 dbx exec -- curl -sS --max-time 60 "https://far.test:$HTTPS/hello"
ok dbx logs --network
assert_contains "$OUT" "answered CONNECT far.test:$HTTPS with 'HTTP/1.1 407 Proxy Authentication Required'; it wants credentials: [network] proxy = http://USER:PASSWORD@HOST:PORT in config.ini" "a 407 says where the credentials go"
ok dbx stop

#!/usr/bin/env bash
# t-net-allowlist: network mode allowlist.  The VM has no network device; the guest init's
# listener on 127.0.0.1:3128 carries connections to the supervisor's proxy, which allows only
# the profile's names.  Test names map to servers on the host's loopback through the
# profile's `resolve` (loopback is reachable only because the profile names 127.0.0.1).
# Covers curl and git over https, 403 + log line for a denied name, and the bypass table.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || skip "openssl not installed"
import_debian
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# ---- servers on the host: https (allowed.test) and plain http, a bare repo to clone --------
test_ca "$TEST_TMP/ca" allowed.test
WWW=$TEST_TMP/www
mkdir -p "$WWW"
echo "hello over the allowlist" >"$WWW/hello"
git init -q --bare "$WWW/repo.git"
src=$TEST_TMP/src
git init -q "$src" && echo "cloned through the proxy" >"$src/README" &&
    git -C "$src" add README && git -C "$src" -c user.email=t@e.invalid -c user.name=t commit -qm one &&
    git -C "$src" push -q "$WWW/repo.git" HEAD:refs/heads/main || fail "make test repo"
git -C "$WWW/repo.git" symbolic-ref HEAD refs/heads/main
git -C "$WWW/repo.git" update-server-info
HTTPS=$(start_netserver "$WWW" --tls "$TEST_TMP/ca/server.pem" "$TEST_TMP/ca/server.key")
HTTP=$(start_netserver "$WWW")
cp "$TEST_TMP/ca/ca.pem" "$R/ca.pem"

write_profile "$R" "[network]
mode = allowlist
allow = allowed.test:$HTTPS, allowed.test:$HTTP, private.test:$HTTP, doc.test:$HTTP, 127.0.0.1:$HTTP
resolve = allowed.test:127.0.0.1, evil-allowed.test:127.0.0.1, private.test:10.1.2.3, doc.test:203.0.113.5,
    allowed.test.evil.test:127.0.0.1, denied.test:127.0.0.1
[env]
CURL_CA_BUNDLE = $R/ca.pem
GIT_SSL_CAINFO = $R/ca.pem"
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "network mode 'allowlist'" "refusal of an untrusted allowlist"
ok dbx trust

# ---- the proxy environment and allowed traffic --------------------------------------------
ok dbx exec -- sh -c 'echo "$HTTPS_PROXY $http_proxy $ALL_PROXY $NO_PROXY"'
assert_eq "http://127.0.0.1:3128 http://127.0.0.1:3128 http://127.0.0.1:3128 localhost,127.0.0.1,::1,127.0.1.1,devbox" "$OUT" "proxy variables"
# the box's own name is the box (its /etc/hosts): a server in it is reached directly, not
# refused by the proxy (found in use: `curl http://devbox:3000` got the proxy's 403)
build_probe "$R"
ok dbx exec -- sh -c './probe serve 0.0.0.0 8099 own >/dev/null 2>&1 & p=$!
    for i in 1 2 3 4 5 6 7 8 9 10; do curl -sS --max-time 10 "http://$(hostname):8099/" 2>/dev/null && break; sleep 1; done
    kill $p'
assert_eq own "$OUT" "a server in the box by the box's hostname"
ok dbx exec -- curl -sS --max-time 30 "https://allowed.test:$HTTPS/hello"
assert_eq "hello over the allowlist" "$OUT" "curl over https through the proxy"
ok dbx exec -- curl -sS --max-time 30 "http://allowed.test:$HTTP/hello"
assert_eq "hello over the allowlist" "$OUT" "curl over plain http through the proxy"
# (into the box's /tmp: the box may not create a '.git' in the workspace, docs/SECURITY.md)
ok dbx exec -- sh -c "git clone -q 'https://allowed.test:$HTTPS/repo.git' /tmp/clone && cat /tmp/clone/README"
assert_eq "cloned through the proxy" "$OUT" "git clone over https"
ok dbx exec -- cat /etc/apt/apt.conf.d/99devbox-proxy
assert_contains "$OUT" 'Acquire::http::Proxy "http://127.0.0.1:3128"' "apt proxy configuration"

# ---- denied: 403 naming the rule, and a log line ------------------------------------------
ok dbx exec -- curl -sS --max-time 30 -o /dev/null -w '%{http_code}' "http://denied.test:$HTTP/hello"
assert_eq 403 "$OUT" "plain http to a name not in the allow list"
ok dbx exec -- curl -sS --max-time 30 "http://denied.test:$HTTP/hello"
assert_contains "$OUT" "denied.test" "403 body names the host"
assert_contains "$OUT" "[network] allow" "403 body says which rule to add"
expect_rc 56 dbx exec -- curl -sS --max-time 30 "https://denied.test:$HTTPS/hello"
assert_contains "$ERR" "403" "CONNECT to a name not in the allow list"
ok dbx logs --network
assert_match "$OUT" "deny[^
]*denied.test:$HTTPS" "network log line for the denied CONNECT"
assert_match "$OUT" "allow[^
]*allowed.test:$HTTPS" "network log line for an allowed CONNECT"
assert_contains "$OUT" "denied.test:$HTTPS is not in the allow list; to allow it add 'denied.test:$HTTPS' to [network] allow" "the denial's log line names the fix"
# apt prints only the status line of a refusal: it carries the reason
run dbx exec -- /usr/lib/apt/apt-helper -o APT::Sandbox::User=root download-file "http://denied.test:$HTTP/hello" "$R/apt-out"
assert_contains "$OUT$ERR" "Forbidden by devbox: denied.test:$HTTP is not in the allow list" "apt shows why the proxy refused"

# ---- the bypass table: raw requests to the proxy -------------------------------------------
# proxyreq REQUEST: send REQUEST (printf format) to the proxy from inside the box, print the
# status line it answers (or "closed").
cat >"$R/proxyreq" <<'SH'
#!/bin/bash
exec 3<>/dev/tcp/127.0.0.1/3128 || { echo noproxy; exit 0; }
printf "$1" >&3
IFS= read -r -t 20 line <&3 || line=closed
printf '%s\n' "${line%$'\r'}"
SH
chmod +x "$R/proxyreq"
status_of() { # REQUEST: run proxyreq in the box, set OUT to the status line
    ok dbx exec -- "$R/proxyreq" "$1"
}
status_of "CONNECT allowed.test:$HTTPS HTTP/1.1\r\nHost: allowed.test:$HTTPS\r\n\r\n"
assert_match "$OUT" "^HTTP/1.[01] 200" "CONNECT to an allowed name"
status_of "CONNECT 127.0.0.1:$HTTP HTTP/1.1\r\n\r\n"
assert_match "$OUT" "^HTTP/1.[01] 200" "CONNECT to a literally listed address"
for lit in "127.1" "2130706433" "0x7f.0.0.1" "0177.0.0.1" "[::ffff:127.0.0.1]" "[::1]" "localhost"; do
    status_of "CONNECT $lit:$HTTP HTTP/1.1\r\n\r\n"
    assert_match "$OUT" "^HTTP/1.[01] (400|403)|^closed" "CONNECT to $lit:$HTTP"
    status_of "GET http://$lit:$HTTP/hello HTTP/1.1\r\nHost: $lit:$HTTP\r\n\r\n"
    assert_match "$OUT" "^HTTP/1.[01] (400|403)|^closed" "GET via $lit:$HTTP"
done
for name in evil-allowed.test allowed.test.evil.test "allowed.test.evil.test." denied.test. ALLOWED.TEST.EVIL.TEST; do
    status_of "CONNECT $name:$HTTPS HTTP/1.1\r\n\r\n"
    assert_match "$OUT" "^HTTP/1.[01] 403" "CONNECT to $name"
done
status_of "CONNECT allowed.test.:$HTTPS HTTP/1.1\r\n\r\n"
assert_match "$OUT" "^HTTP/1.[01] 200" "CONNECT with a trailing dot (normalized)"
status_of "CONNECT Allowed.Test:$HTTPS HTTP/1.1\r\n\r\n"
assert_match "$OUT" "^HTTP/1.[01] 200" "CONNECT with another case"
# a port the pattern does not name
status_of "CONNECT allowed.test:22 HTTP/1.1\r\n\r\n"
assert_match "$OUT" "^HTTP/1.[01] 403" "CONNECT to an allowed name on another port"
# a name that resolves to a private address is refused even though the name is allowed
status_of "GET http://private.test:$HTTP/hello HTTP/1.1\r\nHost: private.test:$HTTP\r\n\r\n"
assert_match "$OUT" "^HTTP/1.[01] 403" "allowed name resolving to a private address"
# a documentation range (RFC 5737): refused, and the status line and the log line say which
status_of "GET http://doc.test:$HTTP/hello HTTP/1.1\r\nHost: doc.test:$HTTP\r\n\r\n"
assert_eq "HTTP/1.1 403 Forbidden by devbox: doc.test resolves to 203.0.113.5, a reserved address: documentation (RFC 5737)" "$OUT" "status line for an address in a documentation range"
ok dbx logs --network
assert_match "$OUT" "deny GET doc.test:$HTTP [^
]*reason=\"doc.test resolves to 203.0.113.5, a reserved address: documentation \(RFC 5737\); to allow it add '203.0.113.5' to \[network\] allow\"" "the refusal's log line names the range and the fix"
# Host header smuggling: the request target decides, a conflicting Host is refused
status_of "GET http://allowed.test:$HTTP/echo-host HTTP/1.1\r\nHost: evil.test\r\n\r\n"
assert_match "$OUT" "^HTTP/1.[01] (400|403)" "conflicting Host header"
status_of "GET /hello HTTP/1.1\r\nHost: allowed.test:$HTTP\r\n\r\n"
assert_match "$OUT" "^HTTP/1.[01] (400|403)" "origin-form request (no absolute URI)"
# keep-alive: a second request to another host on the same connection is refused
ok dbx exec -- bash -c "exec 3<>/dev/tcp/127.0.0.1/3128
printf 'GET http://allowed.test:$HTTP/hello HTTP/1.1\r\nHost: allowed.test:$HTTP\r\n\r\nGET http://127.0.0.1:$HTTP/hello HTTP/1.1\r\nHost: 127.0.0.1:$HTTP\r\n\r\n' >&3
timeout 20 cat <&3 | grep -a '^HTTP/'"
assert_match "$(printf '%s\n' "$OUT" | head -n 1)" "^HTTP/1.[01] 200" "first request on a kept-alive connection"
assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c ' 200')" "200s on a connection whose second request changes destination"
# other methods and the supervisor's own socket are not proxied
status_of "DELETE http://allowed.test:$HTTP/hello HTTP/1.1\r\nHost: allowed.test:$HTTP\r\n\r\n"
assert_match "$OUT" "^HTTP/1.[01] (400|403|405)" "DELETE"
status_of "CONNECT $DEVBOX_HOME/run/sock HTTP/1.1\r\n\r\n"
assert_match "$OUT" "^HTTP/1.[01] (400|403)|^closed" "CONNECT to a unix socket path"

# ---- no way around the proxy -----------------------------------------------------------------
expect_rc 0 dbx exec -- sh -c 'ls /sys/class/net'
assert_eq "lo" "$OUT" "network interfaces in allowlist mode"
run dbx exec -- env -u HTTPS_PROXY -u https_proxy -u ALL_PROXY -u all_proxy curl -sS --max-time 10 "https://allowed.test:$HTTPS/hello"
assert_box_failed "curl without the proxy variables"
run dbx exec -- bash -c "echo > /dev/tcp/10.0.2.2/$HTTP"
assert_box_failed "raw TCP to an outside address"
run dbx exec -- bash -c "echo > /dev/tcp/127.0.0.1/$HTTP"
assert_box_failed "raw TCP to the host's loopback port (the guest's own loopback)"

# ---- --network none narrows, and only on a fresh start ------------------------------------------
expect_rc 125 dbx --network none exec -- true
assert_contains "$ERR" "network mode 'allowlist'" "--network none on a running allowlist VM"
ok dbx stop
ok dbx --network none exec -- sh -c 'ls /sys/class/net; echo "proxy=${HTTPS_PROXY:-}"'
assert_eq $'lo\nproxy=' "$OUT" "--network none: no proxy"
ok dbx status --json
assert_eq none "$(json_get "$OUT" 'j["network"]')" "status network mode with --network none"

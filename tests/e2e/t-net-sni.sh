#!/usr/bin/env bash
# t-net-sni: in network mode allowlist, a CONNECT to port 443 carries on only when the TLS
# ClientHello's server name is the CONNECT host (no interception: the box's client sees the
# real certificate).  Needs root for a test server on port 443 (of 127.9.9.9, loopback).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root for a test server on port 443"
command -v openssl >/dev/null || skip "openssl not installed"
import_debian
R=$(make_repo proj)
cd "$R" || fail "cd $R"
test_ca "$TEST_TMP/ca" sni.test
WWW=$TEST_TMP/www
mkdir -p "$WWW"
echo "tls through the proxy" >"$WWW/hello"
start_netserver "$WWW" --tls "$TEST_TMP/ca/server.pem" "$TEST_TMP/ca/server.key" \
    --bind 127.9.9.9 --port 443 >/dev/null
cp "$TEST_TMP/ca/ca.pem" "$R/ca.pem"
write_profile "$R" "[network]
mode = allowlist
allow = sni.test, other.test, 127.9.9.9
resolve = sni.test:127.9.9.9, other.test:127.9.9.9
[env]
CURL_CA_BUNDLE = $R/ca.pem"
ok dbx trust

ok dbx exec -- curl -sS --max-time 30 https://sni.test/hello
assert_eq "tls through the proxy" "$OUT" "https on port 443 through the proxy"
# the same tunnel, the ClientHello naming another (even allowed) host: closed
ok dbx exec -- sh -c 'openssl s_client -proxy 127.0.0.1:3128 -connect sni.test:443 -servername sni.test -CAfile ca.pem </dev/null >/dev/null 2>&1; echo $?'
assert_eq 0 "$OUT" "s_client with the matching server name"
ok dbx exec -- sh -c 'openssl s_client -proxy 127.0.0.1:3128 -connect sni.test:443 -servername other.test -CAfile ca.pem </dev/null >/dev/null 2>&1; echo $?'
assert_ne 0 "$OUT" "s_client whose server name differs from the CONNECT host"
ok dbx exec -- sh -c 'openssl s_client -proxy 127.0.0.1:3128 -connect sni.test:443 -noservername -CAfile ca.pem </dev/null >/dev/null 2>&1; echo $?'
assert_ne 0 "$OUT" "s_client without a server name"
ok dbx logs --network
assert_match "$OUT" "deny CONNECT sni.test:443[^
]*reason=\"TLS server_name .other.test. differs" "log line for the mismatched server name"

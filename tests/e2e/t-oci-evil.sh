#!/usr/bin/env bash
# tests/e2e/t-oci-evil.sh: crafted registry responses (evil-registry.py on 127.0.0.1/127.0.0.2)
# against the oci/ library: every failure is one clear line and leaves no complete-looking blob
# (every blob in the store hashes to its name, the bad one is absent); what a registry may
# legitimately do (429, 503, resets, Range, same-origin redirects, https redirects to another
# host) succeeds, and Authorization never crosses to another host.  An interrupted pull resumes
# with Range.  No VM.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/oci-lib.sh"
command -v openssl >/dev/null || skip "openssl not installed"

oci_layout multilayer >/dev/null
CA=$TEST_TMP/ca
registry_ca "$CA" || fail "openssl: cannot make the test CA"
EVLOG=$TEST_TMP/evil.log
"$PYTHON" "$E2E_DIR/evil-registry.py" --layout "$TEST_TMP/layouts/multilayer" \
    --port-file "$TEST_TMP/evil.port" --log "$EVLOG" --cert "$CA/server.crt" --key "$CA/server.key" \
    --max-seconds 400 >"$TEST_TMP/evil.out" 2>&1 &
EVPID=$!
CLEANUP_HOOKS+=("kill $EVPID 2>/dev/null")
for ((i = 0; i < 100; i++)); do [ -s "$TEST_TMP/evil.port" ] && break; sleep 0.1; done
read -r PORT TLSPORT <"$TEST_TMP/evil.port" || fail "evil registry did not start: $(cat "$TEST_TMP/evil.out")"
R=127.0.0.1:$PORT
O=$TEST_TMP/out
E=$TEST_TMP/err
CFG=$TEST_TMP/docker/config.json
docker_config "$CFG" "$R" devbox:secret
BIG=sha256:ee263b615d393feab22e917f563e601ce26c8459064f3e79107dc99445956534 # a layer ~1 MB

# expect_fail MODE SUBSTRING: the pull fails with one line containing SUBSTRING; store clean.
expect_fail() {
    local s=$TEST_TMP/st-$1
    oci_run "$O" "$E" pull "$s" "$R/$1/img" --ca-file "$CA/ca.crt" --docker-config "$CFG" --quiet
    assert_ne 0 $? "pull from mode $1"
    assert_one_line "$(cat "$E")" "$1 error"
    assert_contains "$(cat "$E")" "$2" "$1 error"
    assert_store_clean "$s"
    log "  $1: $(cut -c1-160 "$E")"
}
expect_ok() {
    local s=$TEST_TMP/st-$1
    oci_run "$O" "$E" pull "$s" "$R/$1/img" --ca-file "$CA/ca.crt" --docker-config "$CFG" --quiet ||
        fail "pull from mode $1: $(cat "$E")"
    assert_store_clean "$s"
    assert_eq 0 "$(find "$s/ingest" -type f | wc -l)" "ingest files left after a good pull ($1)"
    log "  $1: ok"
}

log "crafted failures"
expect_fail mismatch "digest mismatch"
expect_fail long "bytes declared"
expect_fail short "declared"
expect_fail bigmanifest "larger than 4194304 bytes"
expect_fail dupkeys "duplicate object key"
expect_fail baddigest "does not match the content"
expect_fail redirect-other "refused redirect to plain http"
expect_fail redirect-loop "more than 5 redirects"
expect_fail badrealm "plain http on another host"
expect_fail ftprealm "is not https"
expect_fail bigheaders "response headers larger than"
# every layer is bad in these modes: only the manifest and the config may be in the store
for m in mismatch long short; do
    assert_eq 2 "$(find "$TEST_TMP/st-$m/blobs" -type f | wc -l)" "complete blobs after mode $m"
done

log "what registries legitimately do"
expect_ok ok
expect_ok ratelimit
expect_ok redirect-same
expect_ok redirect-https
expect_ok cut
expect_ok norange
grep -q '"path": "/v2/cut/img/blobs/'"$BIG"'".*"range": "bytes=[1-9]' "$EVLOG" ||
    fail "the cut blob was not resumed with Range"
expect_ok auth
: >"$EVLOG.before"
cp "$EVLOG" "$EVLOG.before"
expect_ok auth-redirect
grep -q '"server": "127.0.0.2:'"$TLSPORT"'"' "$EVLOG" || fail "the https redirect was not followed"
if grep '"server": "127.0.0.2:' "$EVLOG" | grep -q '"auth": true'; then
    fail "Authorization was sent to another host after a redirect"
fi
if grep '/token' "$EVLOG" | grep -q '127.0.0.2'; then fail "token request went to another host"; fi
oci_run "$O" "$E" pull "$TEST_TMP/st-noauth" "$R/auth/img" --docker-config "$TEST_TMP/none.json" --quiet
assert_ne 0 $? "auth without credentials"
assert_one_line "$(cat "$E")"
assert_contains "$(cat "$E")" "HTTP 401"

log "an interrupted pull resumes with Range"
S=$TEST_TMP/st-slow
"$OCI_TOOL" pull "$S" "$R/slow/img" --quiet >"$O" 2>"$E" &
pid=$!
ing=$S/ingest/sha256-${BIG#sha256:}
for ((i = 0; i < 200; i++)); do
    sz=$(stat -c %s "$ing" 2>/dev/null || echo 0)
    [ "$sz" -gt 100000 ] && break
    sleep 0.02
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
sz=$(stat -c %s "$ing" 2>/dev/null || echo 0)
[ "$sz" -gt 0 ] || fail "no partial ingest file after the kill"
[ ! -e "$S/blobs/sha256/${BIG#sha256:}" ] || fail "a partial blob looks complete"
assert_store_clean "$S"
oci_run "$O" "$E" pull "$S" "$R/slow/img" --quiet || fail "resumed pull: $(cat "$E")"
grep -q '"path": "/v2/slow/img/blobs/'"$BIG"'".*"range": "bytes=[1-9]' "$EVLOG" ||
    fail "the interrupted blob was not resumed with Range"
assert_store_clean "$S"
log "  resumed after $sz bytes"
exit 0

#!/usr/bin/env bash
# t-secrets: config.ini's [secret NAME] keeps API keys on the host (docs/secrets.md).  As an
# ordinary user, with three secrets (from an environment variable, a file and a command) bound to
# api.test, a TLS server on the host's loopback (port 443: the proxy intercepts only there) whose
# certificate a test CA signed (config.ini ca_files: the proxy trusts it upstream):
# - the box holds placeholders; curl -H "Authorization: Bearer $DBX_TOKEN" reaches the server,
#   which records the real value; the two `header =` secrets are added by the proxy; the box
#   saw a certificate of the per-box CA for api.test and the server's own for plain.test, an
#   allowed host without a secret (still a blind tunnel, nothing added);
# - the placeholder sent to other.test (in a plain http request, and in a CONNECT head) is
#   refused and shows in `devbox logs --network`;
# - no value anywhere in the guest (every process's environment, its disk's usual places), in
#   the workspace, in any file under DEVBOX_HOME (logs, disk, state), in the environment of
#   QEMU, virtiofsd or the supervisor; the supervisor is not dumpable;
# - a missing variable fails the start with config.ini's [secret NAME] named, no value shown;
#   a restart gets a fresh placeholder.
# The Debian image (curl).
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || skip "openssl not installed"
command -v ss >/dev/null || skip "ss not installed (iproute2)"
ss -Hltn 'sport = :443' | grep -q . && skip "port 443 is taken on this host"
rootless_user
tar=$(debian_tar) || exit $?
cp "$tar" "$U/share/debian.tar" && chmod 644 "$U/share/debian.tar" || fail "copy the Debian image"

CA=$U/ca
test_ca "$CA" api.test plain.test other.test
chmod 755 "$CA" && chmod 644 "$CA/ca.pem" || fail "chmod $CA"
mkdir -p "$CA/www" && echo ca-ok >"$CA/www/index.html" || fail "write $CA/www"
REC=$TEST_TMP/record.log
: >"$REC"
start_netserver "$CA/www" --tls "$CA/server.pem" "$CA/server.key" --port 443 --record "$REC" >/dev/null
mkdir -p "$TEST_TMP/plain" && echo plain-ok >"$TEST_TMP/plain/index.html"
P=$(http_files "$TEST_TMP/plain") || exit $?

V_ENV=sk-env-$(openssl rand -hex 16)
V_FILE=sk-file-$(openssl rand -hex 16)
V_CMD=sk-cmd-$(openssl rand -hex 16)
as_user sh -c "umask 077 && printf '%s\n' '$V_FILE' >'$UH/keyfile' && printf '%s' '$V_CMD' >'$UH/cmdkey'" ||
    fail "write the key files as $TU"
# every place a value must not be: grep -F patterns in a file the box never sees
printf '%s\n' "$V_ENV" "$V_FILE" "$V_CMD" >"$TEST_TMP/values"
no_value() { # WHAT FILE-OR-DIR...: none of the values in these (grep -r, binary files too)
    local what=$1 hits
    shift
    hits=$(grep -rlaF -f "$TEST_TMP/values" "$@" 2>/dev/null)
    [ -z "$hits" ] || fail "a secret's value in $what: $hits"
}

as_user mkdir -p "$UH/dbx/config" || fail "mkdir config as $TU"
as_user sh -c "cat >'$UH/dbx/config/config.ini'" <<EOF || fail "write config.ini"
[network]
ca_files = $CA/ca.pem

[secret DBX_TOKEN]
env = DBX_TEST_TOKEN
hosts = api.test

[secret FILE_KEY]
file = $UH/keyfile
hosts = api.test
header = x-file-key: {}

[secret CMD_KEY]
command = cat $UH/cmdkey
hosts = api.test
header = x-cmd-key: {}
EOF
as_user git init -q "$RU" || fail "git init as $TU"
as_user sh -c "cat >'$RU/devbox.ini'" <<EOF || fail "write devbox.ini"
[box]
image = debian

[network]
mode = allowlist
allow = plain.test, other.test, other.test:$P, 127.0.0.1:443, 127.0.0.1:$P
resolve = api.test:127.0.0.1, plain.test:127.0.0.1, other.test:127.0.0.1

[secrets]
use = DBX_TOKEN, FILE_KEY, CMD_KEY
EOF
run_in "$RU" as_user "$UD" image import "$U/share/debian.tar" debian
assert_eq 0 "$RC" "image import as $TU: $(show "$ERR")"
run_in "$RU" as_user "$UD" trust
assert_eq 0 "$RC" "trust as $TU: $(show "$ERR")"
# a box that never started: status reads the profile with config.ini's secrets
run_in "$RU" as_user "$UD" status --json
assert_eq 0 "$RC" "status before the first start (stderr: $(show "$ERR"))"
assert_eq debian "$(json_get "$OUT" 'j["image"]')" "status names the profile's image before the first start"

cd "$RU" || fail "cd $RU"
# ux CMD...: devbox as the test user (in the repo: the cwd), the env secret's variable set
ux() { as_user env DBX_TEST_TOKEN="$V_ENV" timeout 300 "$UD" "$@"; }
dbx_u() { run ux "$@"; }

# ---- the secret reaches its host, the placeholder is all the box has ------------------------
dbx_u exec -- sh -c 'curl -sS --max-time 60 -H "Authorization: Bearer $DBX_TOKEN" https://api.test/'
assert_eq 0 "$RC" "curl to api.test with the placeholder (stderr: $(show "$ERR"))"
assert_eq ca-ok "$OUT" "api.test's answer"
grep -qxF "Authorization: Bearer $V_ENV" "$REC" ||
    fail "the server did not get the env secret's value: $(show "$(cat "$REC")")"
grep -qixF "x-file-key: $V_FILE" "$REC" || fail "no x-file-key header with the file's value: $(show "$(cat "$REC")")"
grep -qixF "x-cmd-key: $V_CMD" "$REC" || fail "no x-cmd-key header with the command's value: $(show "$(cat "$REC")")"
grep -q 'devbox-secret-' "$REC" && fail "a placeholder reached the server: $(show "$(cat "$REC")")"

dbx_u exec -- sh -c 'echo "DBX_TOKEN=$DBX_TOKEN"; echo "FILE_KEY=$FILE_KEY"; echo "CMD_KEY=$CMD_KEY"'
assert_eq 0 "$RC" "printing the placeholders (stderr: $(show "$ERR"))"
PH=$(kv "$OUT" DBX_TOKEN)
assert_match "$PH" '^devbox-secret-DBX_TOKEN-[0-9a-f]{32}$' "DBX_TOKEN in the box"
assert_match "$(kv "$OUT" FILE_KEY)" '^devbox-secret-FILE_KEY-[0-9a-f]{32}$' "FILE_KEY in the box"
assert_match "$(kv "$OUT" CMD_KEY)" '^devbox-secret-CMD_KEY-[0-9a-f]{32}$' "CMD_KEY in the box"

# who signed what the box saw: the per-box CA for api.test, the server's CA for plain.test
dbx_u exec -- sh -c 'curl -sv --max-time 60 https://api.test/ 2>&1 >/dev/null | grep -i "issuer:"'
assert_contains "$OUT" "devbox box CA" "issuer of api.test's certificate in the box"
: >"$REC"
dbx_u exec -- sh -c 'curl -sS --max-time 60 -H "Authorization: Bearer $DBX_TOKEN" https://plain.test/; curl -sv --max-time 60 https://plain.test/ 2>&1 >/dev/null | grep -i "issuer:"'
assert_eq 0 "$RC" "curl to plain.test (stderr: $(show "$ERR"))"
assert_contains "$OUT" ca-ok "plain.test's answer through the blind tunnel"
assert_contains "$OUT" "devbox-test-ca" "issuer of plain.test's certificate (the server's own)"
assert_not_contains "$OUT" "devbox box CA" "plain.test intercepted"
# a placeholder inside a blind tunnel is out of the proxy's sight: it arrives as the box sent it
grep -qxF "Authorization: Bearer $PH" "$REC" || fail "plain.test's request: $(show "$(cat "$REC")")"
grep -qiE '^x-(file|cmd)-key:' "$REC" && fail "a secret's header added for plain.test: $(show "$(cat "$REC")")"
no_value "what plain.test received" "$REC"

# ---- the placeholder to another host: refused, logged ------------------------------------------
dbx_u exec -- sh -c 'curl -sS -o /dev/null -w "%{http_code}" --max-time 60 -H "Authorization: Bearer $DBX_TOKEN" http://other.test:'"$P"'/'
assert_eq 403 "$OUT" "plain http to other.test with the placeholder (stderr: $(show "$ERR"))"
dbx_u exec -- sh -c 'curl -sS --max-time 60 --proxy-header "X-Leak: $DBX_TOKEN" https://other.test/'
assert_box_failed "CONNECT to other.test with the placeholder in its head"
dbx_u exec -- sh -c 'curl -sS --max-time 60 http://other.test:'"$P"'/'
assert_eq plain-ok "$OUT" "other.test without a placeholder (stderr: $(show "$ERR"))"
# a header the server could reflect (Origin) never carries the value, even to api.test
dbx_u exec -- sh -c 'curl -sS -o /dev/null -w "%{http_code}" --max-time 60 -H "Origin: https://$DBX_TOKEN" https://api.test/'
assert_eq 403 "$OUT" "the placeholder in Origin to api.test (stderr: $(show "$ERR"))"
# -e of a secret's name would copy the host's value into the box
dbx_u exec -e DBX_TOKEN -- true
assert_eq 125 "$RC" "exec -e of a secret's name"
assert_contains "$ERR" "-e DBX_TOKEN: 'DBX_TOKEN' is a secret" "the -e refusal names the secret"
dbx_u exec -e DBX_TEST_TOKEN -- true
assert_eq 125 "$RC" "exec -e of the variable a secret's value comes from"
assert_contains "$ERR" "-e DBX_TEST_TOKEN: the variable holds the value of secret 'DBX_TOKEN'" \
    "the -e refusal names the variable and the secret"
dbx_u logs --network
assert_eq 0 "$RC" "logs --network (stderr: $(show "$ERR"))"
n=$(printf '%s\n' "$OUT" | grep -c 'secret DBX_TOKEN placeholder sent to other.test')
[ "$n" -ge 2 ] || fail "expected 2 refusals of DBX_TOKEN's placeholder for other.test in the network log, got $n: $(show "$OUT")"
assert_contains "$OUT" "mitm" "network log line of an intercepted connection"

# ---- no value in the guest, the workspace, the host's state, the children's environments -----
dbx_u exec -u root -- sh -c 'env; for f in /proc/[0-9]*/environ; do tr "\0" "\n" <"$f"; echo; done'
assert_eq 0 "$RC" "dump the guest's environments (stderr: $(show "$ERR"))"
printf '%s\n' "$OUT" >"$TEST_TMP/guest-env"
grep -q "^DBX_TOKEN=$PH\$" "$TEST_TMP/guest-env" || fail "the dump holds no placeholder (not vacuous?)"
no_value "the guest's process environments" "$TEST_TMP/guest-env"
# the guest's own search, the values on stdin (never in an argv or environment there)
printf '%s\n' "$V_ENV" "$V_FILE" "$V_CMD" >"$TEST_TMP/values.in"
run_stdin "$TEST_TMP/values.in" ux exec -i -u root -- sh -c \
    'grep -rlaF -f /dev/stdin /etc /root /home /tmp /var/tmp /run /usr/local 2>/dev/null; echo done'
assert_eq done "$OUT" "files in the guest holding a value"
no_value "the workspace" "$RU"
no_value "DEVBOX_HOME's files" "$UH/dbx"
for pid in $(test_pids '^(qemu-system.*|virtiofsd)$'); do
    no_value "the environment of $(describe_pids "$pid")" "/proc/$pid/environ"
done
[ -n "$(test_pids '^qemu-system')" ] || fail "no qemu process found for the box"
sup=$(pgrep -u "$TU" -f "__supervise $RU" | head -n 1)
[ -n "$sup" ] || fail "no supervisor process for $RU"
no_value "the supervisor's environment block" "/proc/$sup/environ"
as_user cat "/proc/$sup/environ" >/dev/null 2>&1 &&
    fail "the supervisor's /proc/PID/environ is readable by $TU (not PR_SET_DUMPABLE 0)"

# ---- a missing value fails the start; a restart makes new placeholders ------------------------
run_in "$RU" as_user timeout 60 "$UD" stop
assert_eq 0 "$RC" "stop (stderr: $(show "$ERR"))"
run_in "$RU" as_user timeout 300 "$UD" exec -- true
assert_eq 125 "$RC" "exec without DBX_TEST_TOKEN in the environment"
assert_contains "$ERR" "[secret DBX_TOKEN] env = DBX_TEST_TOKEN" "the error names the secret"
dbx_u exec -- sh -c 'echo "$DBX_TOKEN"; curl -sS --max-time 60 -H "Authorization: Bearer $DBX_TOKEN" https://api.test/'
assert_eq 0 "$RC" "after a restart (stderr: $(show "$ERR"))"
PH2=$(printf '%s\n' "$OUT" | head -n 1)
assert_match "$PH2" '^devbox-secret-DBX_TOKEN-[0-9a-f]{32}$' "DBX_TOKEN after a restart"
assert_ne "$PH" "$PH2" "the placeholder after a restart"
assert_contains "$OUT" ca-ok "api.test after a restart"
dbx_u exec -- sh -c 'openssl crl2pkcs7 -nocrl -certfile /etc/ssl/certs/ca-certificates.crt | openssl pkcs7 -print_certs -noout | grep -c "^subject=.*devbox box CA"'
assert_eq 1 "$OUT" "box CAs in the system bundle after a restart (stderr: $(show "$ERR"))"
no_value "DEVBOX_HOME's files after a restart" "$UH/dbx"

#!/usr/bin/env bash
# t-setup-ca: config.ini `[network] ca_files` installs the user's CA in every box: a TLS server
# on the host's loopback whose certificate that CA signed is trusted, through the allowlist
# proxy, by curl and git with no variable of the profile's; the CA-bundle variables (OpenSSL,
# Python requests, curl, git, Node) name files holding it; the system bundle holds it once,
# also after restarts, and after root in the box took the block out; the record of the boot
# that installed it is left as it was by one that found nothing changed.
# Without ca_files the same request fails (the check is not vacuous).
# The Debian image.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || skip "openssl not installed"
import_debian
CA=$TEST_TMP/ca
T=$(tls_server "$CA" ca.test) || exit $?
# a bare repository beside the "ca-ok" page, for git over https (dumb http protocol)
src=$TEST_TMP/src
git init -q "$src" && echo "over the user's CA" >"$src/README" && git -C "$src" add README &&
    git -C "$src" -c user.email=t@e.invalid -c user.name=t commit -qm one &&
    git init -q --bare "$CA/www/repo.git" &&
    git -C "$src" push -q "$CA/www/repo.git" HEAD:refs/heads/main &&
    git -C "$CA/www/repo.git" symbolic-ref HEAD refs/heads/main &&
    git -C "$CA/www/repo.git" update-server-info || fail "make the test repository"
# a line of the CA's PEM (inside its public key): finds the CA in a bundle
CA_LINE=$(grep -v -e '-----' "$CA/ca.pem" | sed -n 8p)
[ ${#CA_LINE} = 64 ] || fail "line 8 of the CA's base64: $(show "$CA_LINE")"

R=$(make_repo proj)
cd "$R" || fail "cd $R"
write_profile "$R" "[network]
mode = allowlist
allow = ca.test:$T, 127.0.0.1:$T
resolve = ca.test:127.0.0.1"
ok dbx trust

# ---- without ca_files: the box does not trust the server ---------------------------------
run dbx exec -- curl -sS --max-time 30 "https://ca.test:$T/"
assert_eq 60 "$RC" "curl to the test server with no ca_files (60: certificate not trusted); stderr: $(show "$ERR")"
restart

# ---- with ca_files ---------------------------------------------------------------------
mkdir -p "$DEVBOX_HOME/config"
printf '[network]\nca_files = %s\n' "$CA/ca.pem" >"$DEVBOX_HOME/config/config.ini"
ok dbx exec -- curl -sS --max-time 30 "https://ca.test:$T/"
assert_eq ca-ok "$OUT" "curl in the box, through the proxy, to a server the user's CA signed"
ok dbx exec -- git ls-remote "https://ca.test:$T/repo.git"
assert_match "$OUT" "[0-9a-f]{40}"$'\t'"refs/heads/main" "git ls-remote over https to a server the user's CA signed"

VARS="SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO NODE_EXTRA_CA_CERTS"
# For each variable: NAME=VALUE and NAME.has_ca=N, the count of the CA's line in the file
# it names (-1: not a readable file).
# shellcheck disable=SC2016
check_env='for v in '"$VARS"'; do
    eval "f=\${$v:-}"
    echo "$v=$f"
    if [ -n "$f" ] && [ -r "$f" ]; then echo "$v.has_ca=$(grep -cxF "$1" "$f")"; else echo "$v.has_ca=-1"; fi
done
echo "bundle=$(grep -cxF "$1" /etc/ssl/certs/ca-certificates.crt)"'
check_box() { # WHAT
    local v
    ok dbx exec -- sh -c "$check_env" sh "$CA_LINE"
    for v in $VARS; do
        assert_kv "$OUT" "$v" '/.+' "$1: $v in the box"
        assert_kv "$OUT" "$v.has_ca" '[1-9][0-9]*' "$1: the file $v names holds the CA"
    done
    assert_kv "$OUT" bundle 1 "$1: copies of the CA in /etc/ssl/certs/ca-certificates.crt"
}
check_box "first start with ca_files"

restart
check_box "after a restart"
restart
check_box "after a second restart"
# The boot that did the work recorded it (root's, in /var/lib/devbox), and a boot that found
# nothing changed read no bundle and left the record as it was; a change in the box is found at
# the next boot: the block root in the box took out of the bundle (sed -i: a new file) is back.
rec=/var/lib/devbox/ca.state
ok dbx exec --admin -- stat -c '%a %u %i %.9Y' /var/lib/devbox "$rec"
assert_match "$(echo $OUT)" '^755 0 [0-9]+ [0-9.]+ 644 0 [0-9]+ [0-9.]+$' \
    "the record of the boot that installed the CA"
before=$(echo $OUT | cut -d' ' -f7-)
restart
check_box "after a restart that found nothing changed"
ok dbx exec --admin -- stat -c '%i %.9Y' "$rec"
assert_eq "$before" "$(echo $OUT)" "the record's inode and mtime after a boot that found nothing changed"
ok dbx exec --admin -- sed -i '/^# devbox: host CA certificates (begin)$/,/^# devbox: host CA certificates (end)$/d' \
    /etc/ssl/certs/ca-certificates.crt
run dbx exec -- grep -cxF "$CA_LINE" /etc/ssl/certs/ca-certificates.crt
assert_eq 0 "$OUT" "the CA's copies in the bundle once root in the box took the block out"
restart
check_box "after a restart that followed a change in the box"
ok dbx exec -- curl -sS --max-time 30 "https://ca.test:$T/"
assert_eq ca-ok "$OUT" "curl to the test server after two restarts"

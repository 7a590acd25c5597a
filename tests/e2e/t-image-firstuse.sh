#!/usr/bin/env bash
# t-image-firstuse: what a first use says when stderr is not a terminal (one line per phase:
# building the default image, pulling, booting), where the default image's Debian mirror comes
# from (the host's apt sources; DEVBOX_DEBIAN_MIRROR wins; `devbox image mirror` tells), and
# what `devbox image inspect default` suggests before the default image exists.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/registry.sh"
registry_init || exit $?

# ---- inspect before the default image exists: suggest what builds it, not a registry pull ---
expect_rc 125 dbx image inspect default
assert_one_line "$ERR" "inspect of a missing default image"
assert_contains "$ERR" "'devbox exec true'" "inspect default suggests what builds it"
assert_not_contains "$ERR" "devbox pull default" "inspect default suggests no registry pull"
expect_rc 125 dbx image inspect other
assert_contains "$ERR" "devbox pull other" "other names still suggest a pull"

# ---- the mirror: the host's apt sources (fixtures through DEVBOX_APT_DIR) ---------------------
port=$(free_port) # nothing listens there: the build below fails fast, on loopback
mkdir -p "$TEST_TMP/apt/sources.list.d"
cat >"$TEST_TMP/apt/sources.list.d/corp.sources" <<EOF
Types: deb
URIs: http://127.0.0.1:$port/old
Suites: bookworm
Enabled: no

Types: deb
URIs: http://127.0.0.1:$port/debian-security
Suites: bookworm-security

Types: deb
# the company mirror
URIs: http://127.0.0.1:$port/debian
Suites: bookworm bookworm-updates
Components: main
EOF
export DEVBOX_APT_DIR=$TEST_TMP/apt
ok dbx image mirror
assert_eq "http://127.0.0.1:$port/debian" "$OUT" "mirror from the host's deb822 sources"
DEVBOX_DEBIAN_MIRROR=http://127.0.0.1:$port/override ok dbx image mirror
assert_eq "http://127.0.0.1:$port/override" "$OUT" "DEVBOX_DEBIAN_MIRROR wins"
DEVBOX_APT_DIR=$TEST_TMP/no-apt ok dbx image mirror
assert_eq "http://deb.debian.org/debian" "$OUT" "the documented default without apt sources"

# ---- first use of the default image, stderr a file: the phase line names that mirror --------
command -v mmdebstrap >/dev/null || skip "mmdebstrap not installed"
R=$(make_repo proj)
cd "$R" || fail "cd $R"
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "devbox: building the default image (once): Debian bookworm from http://127.0.0.1:$port/debian" \
    "phase line when stderr is not a terminal, with the host's mirror"
assert_contains "$ERR" "mmdebstrap" "the build's failure is reported"
assert_not_contains "$ERR" "booting" "no boot after a failed build"
assert_eq 2 "$(printf '%s\n' "$ERR" | grep -c .)" "phase line + one error line"
unset DEVBOX_APT_DIR

# ---- first use of a registry image: pulling, then booting -----------------------------------
registry_start reg || fail "registry_start"
mkdir -p "$TEST_TMP/layout"
"$PYTHON" "$E2E_DIR/mkoci.py" preset busybox "$TEST_TMP/layout" --tag v1 >/dev/null || fail "mkoci.py busybox"
registry_push "$TEST_TMP/layout" v1 "$reg_ADDR/test/busy:v1" || fail "push"
R2=$(make_repo proj2)
cd "$R2" || fail "cd $R2"
write_profile "$R2" "[box]
image = $reg_ADDR/test/busy:v1"
ok dbx exec -- echo hi
assert_eq hi "$OUT" "exec in the pulled image"
assert_eq "devbox: pulling $reg_ADDR/test/busy:v1
devbox: booting" "$ERR" "one line per phase when stderr is not a terminal"
ok dbx stop
ok dbx exec -- echo again
assert_eq "" "$ERR" "nothing on a later start"

#!/usr/bin/env bash
# t-kernel-build: `devbox kernel status` and `devbox kernel build` without compiling a kernel
# here.  The suite's own cache (run.sh built it once): ready, the same for two DEVBOX_HOMEs, and
# a second build changes nothing.  A cache of this test's own, filled through the build's test
# knob (DEVBOX_KERNEL_TEST_VMLINUX: a copied file instead of `make vmlinux`): absent -> two
# concurrent builds, one of which builds while the other waits and finds it built (the cache's
# lock), status "building" meanwhile; a failing build leaves nothing installed, names its step
# and keeps its log; and a supervisor that boots Debian's kernel because the devbox kernel is
# missing builds it in the background without making the exec wait, unless config.ini says
# [box] kernel_autobuild = false (that start also removes an initramfs unused for a day); a
# build for an upgraded source package removes the older version's builds but the newest, and
# its failed logs, and names them in its log.
. "$(dirname "$0")/lib.sh"

json() { json_get "$1" "$2"; }

# ---- the suite's cache ---------------------------------------------------------------------
ok dbx kernel status --json
if [ "$(json "$OUT" 'j["state"]')" = ready ]; then
    st=$OUT
    path=$(json "$st" 'j["path"]')
    key=$(json "$st" 'j["key"]')
    assert_file "$path"
    assert_match "$key" '^[0-9][0-9.+~-]*-[0-9a-f]{12}$' "key"
    assert_eq "$key" "$(basename "$(dirname "$path")")" "the key names the kernel's directory"
    frag_hash=$(sha256sum "$(json "$st" 'j["fragment"]')" | cut -c1-12)
    assert_eq "$(json "$st" 'j["version"]')-$frag_hash" "$key" "key = version-sha256(fragment)[:12]"
    mtime=$(stat -c %Y.%i "$path")
    # another DEVBOX_HOME finds the same kernel, and building again builds nothing
    ok env DEVBOX_HOME="$TEST_TMP/h2" "$DEVBOX" kernel status --json
    assert_eq "$path" "$(json "$OUT" 'j["path"]')" "kernel path seen from a second DEVBOX_HOME"
    ok env DEVBOX_HOME="$TEST_TMP/h2" "$DEVBOX" kernel build
    assert_contains "$OUT" "the devbox kernel is built already: $path"
    assert_eq "$mtime" "$(stat -c %Y.%i "$path")" "vmlinux after a second build (must not be rebuilt)"
    ok dbx kernel status
    assert_contains "$OUT" "ready"
else
    log "the suite's devbox kernel is not built (E2E_KERNEL=${E2E_KERNEL:-}): only the test cache"
fi

# ---- a cache of our own, filled by the test knob ----------------------------------------------
export DEVBOX_KERNEL_CACHE=$TEST_TMP/kc
export DEVBOX_KERNEL_TEST_VMLINUX=$TEST_TMP/fake-vmlinux
export DEVBOX_KERNEL_TEST_VERSION=6.1.0-test1
export DEVBOX_KERNEL_CONFIG=$TEST_TMP/frag.config
printf 'CONFIG_TEST_A=y\n' >"$DEVBOX_KERNEL_CONFIG"
head -c 100000 /dev/urandom >"$DEVBOX_KERNEL_TEST_VMLINUX"
ok dbx kernel status --json
assert_eq absent "$(json "$OUT" 'j["state"]')" "state of an empty cache"
key=$(json "$OUT" 'j["key"]')
assert_eq "6.1.0-test1-$(sha256sum "$DEVBOX_KERNEL_CONFIG" | cut -c1-12)" "$key" "test key"

# two builders at once: the lock makes one build and the other wait for it
DEVBOX_KERNEL_TEST_DELAY=4 "$DEVBOX" kernel build >"$TEST_TMP/b1.out" 2>"$TEST_TMP/b1.err" &
b1=$!
wait_until 30 sh -c "'$DEVBOX' kernel status | grep -q building" ||
    fail "status never said building: $(dbx kernel status)"
DEVBOX_KERNEL_TEST_DELAY=4 DEVBOX_HOME=$TEST_TMP/h2 "$DEVBOX" kernel build >"$TEST_TMP/b2.out" 2>"$TEST_TMP/b2.err" &
b2=$!
wait $b1 || fail "first build failed: $(cat "$TEST_TMP/b1.err")"
wait $b2 || fail "second build failed: $(cat "$TEST_TMP/b2.err")"
assert_contains "$(cat "$TEST_TMP/b1.out")" "built the devbox kernel: $DEVBOX_KERNEL_CACHE/$key/vmlinux"
assert_contains "$(cat "$TEST_TMP/b2.out")" "the devbox kernel is built already"
assert_contains "$(cat "$TEST_TMP/b2.err")" "waiting for another build"
n=$(grep -c '^devbox: building the devbox kernel' "$DEVBOX_KERNEL_CACHE/$key/build.log")
assert_eq 1 "$n" "builds recorded in build.log"
cmp -s "$DEVBOX_KERNEL_TEST_VMLINUX" "$DEVBOX_KERNEL_CACHE/$key/vmlinux" || fail "installed vmlinux differs"
assert_eq 644 "$(stat -c %a "$DEVBOX_KERNEL_CACHE/$key/vmlinux")" "vmlinux mode"
[ -z "$(find "$DEVBOX_KERNEL_CACHE" -maxdepth 1 -name '.build-*')" ] || fail "work directory left behind"
ok dbx kernel status --json
assert_eq ready "$(json "$OUT" 'j["state"]')" "state after the build"
assert_eq 100000 "$(json "$OUT" 'j["size"]')" "size"
ok env DEVBOX_HOME="$TEST_TMP/h3" "$DEVBOX" kernel status --json
assert_eq "$DEVBOX_KERNEL_CACHE/$key/vmlinux" "$(json "$OUT" 'j["path"]')" "path from another DEVBOX_HOME"

# a failing build: its step and log, nothing installed
printf 'CONFIG_TEST_B=y\n' >"$DEVBOX_KERNEL_CONFIG"
ok dbx kernel status --json
key2=$(json "$OUT" 'j["key"]')
expect_rc 125 env DEVBOX_KERNEL_TEST_VMLINUX="$TEST_TMP/missing" "$DEVBOX" kernel build
assert_contains "$ERR" "kernel build step 'compile' failed"
assert_contains "$ERR" "$TEST_TMP/missing"
[ ! -e "$DEVBOX_KERNEL_CACHE/$key2" ] || fail "a failed build left $DEVBOX_KERNEL_CACHE/$key2"
assert_file "$DEVBOX_KERNEL_CACHE/$key2.failed.log"
ok dbx kernel status --json
assert_eq failed "$(json "$OUT" 'j["state"]')" "state after a failed build"

# ---- the supervisor's background build ----------------------------------------------------------
import_image
printf 'CONFIG_TEST_C=y\n' >"$DEVBOX_KERNEL_CONFIG"
ok dbx kernel status --json
key3=$(json "$OUT" 'j["key"]')
R=$(make_repo proj)
cd "$R" || fail "cd $R"
mkdir -p "$DEVBOX_HOME/config"
printf '[box]\nkernel_autobuild = false\n' >"$DEVBOX_HOME/config/config.ini"
export DEVBOX_KERNEL=auto DEVBOX_KERNEL_TEST_DELAY=2
# an initramfs no start has used for a day goes at a start of Debian's kernel too
mkdir -p "$DEVBOX_HOME/data/kernel"
stale=$DEVBOX_HOME/data/kernel/initramfs-$(printf '%064d' 7).cpio
echo stale >"$stale"
touch -d '2 days ago' "$stale"
ok dbx exec -- uname -r
assert_match "$OUT" 'cloud-amd64$' "the kernel booted while the devbox kernel is missing"
[ ! -e "$stale" ] || fail "a start of Debian's kernel left an initramfs unused for 2 days"
ok dbx stop
[ ! -e "$DEVBOX_KERNEL_CACHE/$key3" ] || fail "kernel_autobuild = false: a build happened anyway"
rm "$DEVBOX_HOME/config/config.ini"
ok dbx exec -- uname -r
assert_match "$OUT" 'cloud-amd64$' "this boot's kernel (the build runs in the background)"
wait_until 60 test -f "$DEVBOX_KERNEL_CACHE/$key3/vmlinux" ||
    fail "no background build: $(dbx kernel status); $(tail -n 5 "$DEVBOX_HOME"/state/projects/*/supervisor.log)"
grep -q "building it in the background" "$DEVBOX_HOME"/state/projects/*/supervisor.log ||
    fail "the supervisor log does not mention the background build"
# the next boot takes it (the fake vmlinux would not boot: only check the choice is made)
ok dbx stop

# ---- an upgraded source package: its build removes the older version's builds and logs ----
# (no devbox here can boot them again: each keys on the installed package)
wait_until 60 sh -c "! '$DEVBOX' kernel status | grep -q building" || fail "the background build never ended"
printf 'CONFIG_TEST_C=y\n' >"$DEVBOX_KERNEL_CONFIG"
export DEVBOX_KERNEL_TEST_VERSION=6.1.0-test2
ok dbx kernel status --json
key4=$(json "$OUT" 'j["key"]')
assert_eq absent "$(json "$OUT" 'j["state"]')" "state after the source package changed"
ok dbx kernel build
assert_contains "$OUT" "built the devbox kernel: $DEVBOX_KERNEL_CACHE/$key4/vmlinux"
for old in "$key" "$key2.failed.log"; do
    [ ! -e "$DEVBOX_KERNEL_CACHE/$old" ] || fail "the build of 6.1.0-test2 left $old"
    grep -qF "devbox: removed '$old' (source version other than 6.1.0-test2)" \
        "$DEVBOX_KERNEL_CACHE/$key4/build.log" || fail "the build log does not name $old"
done
# the newest build of the older version stays (a start may have chosen it before the upgrade)
assert_file "$DEVBOX_KERNEL_CACHE/$key3/vmlinux"
grep -qF "devbox: kept '$key3' (the newest build of another source version)" \
    "$DEVBOX_KERNEL_CACHE/$key4/build.log" || fail "the build log does not say $key3 was kept"
assert_file "$DEVBOX_KERNEL_CACHE/lock"

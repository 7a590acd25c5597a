#!/usr/bin/env bash
# t-image-import: `devbox image import` of a `docker save` tarball, an OCI image layout
# directory and an OCI layout tar; a private registry over TLS with basic auth, its CA from the
# user's config.ini and the credentials from ~/.docker/config.json; hostile images refused by
# `devbox pull` with one line and nothing recorded.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/registry.sh"
registry_init || exit $?

L=$TEST_TMP/layouts
mkdir -p "$L/busybox"
"$PYTHON" "$E2E_DIR/mkoci.py" preset busybox "$L/busybox" --tag v1 >/dev/null || fail "mkoci.py busybox"
skopeo copy -q "oci:$L/busybox:v1" "docker-archive:$TEST_TMP/save.tar:test/busy:v1" ||
    fail "skopeo docker-archive"
tar -C "$L/busybox" -cf "$TEST_TMP/layout.tar" . || fail "tar of the layout"

R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx image import "$TEST_TMP/save.tar" saved
assert_match "$OUT" "^saved sha256:[0-9a-f]{64}$" "import of a docker save tarball"
ok dbx image import "$L/busybox" layout-dir
ok dbx image import "$TEST_TMP/layout.tar" layout-tar
ok dbx images --json
assert_eq '["layout-dir", "layout-tar", "saved"]' "$(json_get "$OUT" '[x["name"] for x in j]')" "imported images"
assert_eq '["archive", "archive", "archive"]' "$(json_get "$OUT" '[x["source"] for x in j]')" "their source"
write_profile "$R" $'[box]\nimage = saved'
ok dbx exec -- sh -c 'cat /etc/passwd | head -n 1'
assert_eq "root:x:0:0:root:/root:/bin/sh" "$OUT" "exec in an image from a docker save tarball"
ok dbx stop
expect_rc 125 dbx image import "$TEST_TMP/nonexistent.tar" x
assert_one_line "$ERR" "import of a missing file"
printf 'not a tar' >"$TEST_TMP/garbage.tar"
expect_rc 125 dbx image import "$TEST_TMP/garbage.tar" x
assert_one_line "$ERR" "import of garbage"

# ---- a private registry: TLS with a test CA, basic auth ----------------------------------------
CA=$TEST_TMP/ca
registry_ca "$CA" || fail "registry_ca"
registry_start SECURE --tls "$CA" --auth devbox:s3cret || fail "registry_start"
registry_push "$L/busybox" v1 "$SECURE_ADDR/private/busy:v1" --tls "$CA" --creds devbox:s3cret ||
    fail "push to the private registry"
expect_rc 125 dbx pull "$SECURE_ADDR/private/busy:v1"
assert_one_line "$ERR" "pull without the CA"
mkdir -p "$DEVBOX_HOME/config"
printf '[registries]\nca_file = %s\n' "$CA/ca.crt" >"$DEVBOX_HOME/config/config.ini"
expect_rc 125 dbx pull "$SECURE_ADDR/private/busy:v1"
assert_one_line "$ERR" "pull without credentials"
export HOME=$TEST_TMP/home
docker_config "$HOME/.docker/config.json" "$SECURE_ADDR" devbox:s3cret
ok dbx pull "$SECURE_ADDR/private/busy:v1"
assert_contains "$OUT" "$SECURE_ADDR/private/busy:v1 sha256:" "pull from a private registry"
# a repository profile cannot make devbox use plain http towards a non-loopback registry
write_profile "$R" $'[registries]\ninsecure = example.com'
expect_rc 1 dbx profile check
assert_contains "$ERR$OUT" "user setting" "registries in a repository profile"

# ---- hostile images: refused, nothing recorded -------------------------------------------------
registry_start PLAIN || fail "registry_start"
n0=$(find "$DEVBOX_HOME/data/bases" -name '*.raw' | wc -l)
for preset in hostile-dotdot hostile-absolute hostile-symlink-escape hostile-hardlink-outside \
    hostile-whiteout-dotdot; do
    mkdir -p "$L/$preset"
    "$PYTHON" "$E2E_DIR/mkoci.py" preset "$preset" "$L/$preset" --tag v1 >/dev/null || fail "mkoci.py $preset"
    registry_push "$L/$preset" v1 "$PLAIN_ADDR/evil/$preset:v1" || fail "push $preset"
    expect_rc 125 dbx pull "$PLAIN_ADDR/evil/$preset:v1"
    assert_one_line "$ERR" "pull of $preset"
done
ok dbx images --json
assert_eq 4 "$(json_get "$OUT" 'len(j)')" "images after the hostile pulls (only the 4 good ones)"
[ ! -e /tmp/devbox-evil ] || fail "a hostile layer wrote /tmp/devbox-evil"
n=$(find "$DEVBOX_HOME/data/bases" -name '*.raw' | wc -l)
assert_eq "$n0" "$n" "base disks after the hostile pulls"
left=$(find "$DEVBOX_HOME/data/bases" -name '*.tmp*' -o -name '*.XXXX*' -o -name '*spool*' | wc -l)
assert_eq 0 "$left" "temporary files left by refused pulls"

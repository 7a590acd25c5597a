#!/usr/bin/env bash
# t-image-root: entries that resolve to the image's root and absolute member names, as
# containerd handles them.  A rootfs tarball made with `tar -C "$(mktemp -d)" .` (a 0700 "./"
# entry) and an OCI layer with a 0700 "./" leave the root 0755 root:root, so an ordinary box
# user can run commands, with and without `-w /`.  A layer written by `umoci insert` ("/" and
# "/abs/name" members) is pulled and its files are at the cleaned paths; a name whose '..'
# leaves the root is still refused with one line.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/registry.sh"
registry_init || exit $?

# use_image NAME IMAGE: a fresh project (its disk comes from IMAGE) whose box user is an
# ordinary one (uid 1000); its repository is reachable by that user for the runs without -w.
use_image() {
    R=$(make_repo "$1")
    cd "$R" || fail "cd $R"
    chmod 0755 "$TEST_TMP" "$TEST_TMP/repos" "$R"
    write_profile "$R" "[box]
image = $2
[security]
user = 1000:1000"
}
# as_box_user WHAT: the checks an ordinary box user must pass in the current image
as_box_user() {
    ok dbx exec -w / -- sh -c 'stat -c "%a %u:%g" /; id -u; ls /bin >/dev/null && echo listed'
    assert_eq $'755 0:0\n1000\nlisted' "$OUT" "$1: root mode and a command as uid 1000 with -w /"
    ok dbx exec -- sh -c 'pwd'
    assert_eq "$R" "$OUT" "$1: a command as uid 1000 in the repository (no -w)"
    ok dbx stop
}

# ---- an imported rootfs tarball whose "./" entry is 0700 ----------------------------------
"$PYTHON" - "$DBX_TEST_IMAGE" "$TEST_TMP/locked.tar" <<'EOF' || fail "cannot write locked.tar"
import sys, tarfile
with tarfile.open(sys.argv[1]) as src, tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT) as out:
    root = tarfile.TarInfo("./")
    root.type, root.mode, root.mtime = tarfile.DIRTYPE, 0o700, 1700000000
    out.addfile(root)  # what `tar -C "$(mktemp -d)" .` writes first
    for m in src:
        if m.name in (".", "./"):
            continue
        out.addfile(m, src.extractfile(m) if m.isreg() else None)
EOF
[ "$(tar -tvf "$TEST_TMP/locked.tar" | awk 'NR == 1 { print $1 }')" = drwx------ ] || fail "locked.tar: './' is not 0700"
ok dbx image import "$TEST_TMP/locked.tar" locked
use_image p-locked locked
as_box_user "imported tarball with a 0700 root entry"

# ---- OCI layers: a 0700 "./", and "/" plus absolute names (umoci insert) -----------------------
registry_start reg || fail "registry_start"
L=$TEST_TMP/layouts
for preset in root-0700 absolute hostile-absolute; do
    mkdir -p "$L/$preset"
    "$PYTHON" "$E2E_DIR/mkoci.py" preset "$preset" "$L/$preset" --tag v1 >/dev/null ||
        fail "mkoci.py $preset"
    registry_push "$L/$preset" v1 "$reg_ADDR/test/$preset:v1" || fail "push $preset"
done
use_image p-layer "$reg_ADDR/test/root-0700:v1"
as_box_user "layer with a 0700 root entry"

use_image p-abs "$reg_ADDR/test/absolute:v1"
ok dbx exec -w / -- sh -c 'cat /abs/name /abs/link; stat -c "%i" /abs/name /abs/link | uniq | wc -l; ls -d /abs/x 2>&1 || true'
assert_eq $'absolute\nabsolute\n1' "$(printf '%s\n' "$OUT" | head -n 3)" "absolute names at the cleaned paths (hard link shared)"
assert_contains "$OUT" "No such file" "no directory 'abs/x' made for a name that '..' leaves"
as_box_user "layer with '/' and absolute names"

# a '..' that leaves the root after cleaning ("/../../tmp/devbox-evil") is still refused
n0=$(find "$DEVBOX_HOME/data/bases" -name '*.raw' | wc -l)
expect_rc 125 dbx pull "$reg_ADDR/test/hostile-absolute:v1"
assert_one_line "$ERR" "pull of a layer whose '..' leaves the root"
assert_contains "$ERR" "'..' leads out of the root in path '/../../tmp/devbox-evil'" "the refusal names the entry"
[ ! -e /tmp/devbox-evil ] || fail "a hostile layer wrote /tmp/devbox-evil"
assert_eq "$n0" "$(find "$DEVBOX_HOME/data/bases" -name '*.raw' | wc -l)" "base disks after the refused pull"

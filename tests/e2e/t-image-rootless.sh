#!/usr/bin/env bash
# t-image-rootless: as an ordinary user (dbxtest): pull a multi-layer image from a loopback
# registry and build the default Debian image (mmdebstrap in a user namespace); inside the VM
# the files are root-owned with their setuid bits, although no host root was involved.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/registry.sh"
registry_init || exit $?
rootless_user

dir=$TEST_TMP/layout
mkdir -p "$dir"
"$PYTHON" "$E2E_DIR/mkoci.py" preset multilayer "$dir" --tag v1 >/dev/null || fail "mkoci.py multilayer"
registry_start reg || fail "registry_start"
registry_push "$dir" v1 "$reg_ADDR/test/multi:v1" || fail "skopeo push"

as_user git init -q "$RU" || fail "git init as $TU"
printf '[box]\nimage = %s/test/multi:v1\n' "$reg_ADDR" >"$RU/devbox.ini"
chown "$TU" "$RU/devbox.ini"
run_in "$RU" as_user timeout 240 "$UD" exec -- stat -c '%u:%g %a' /data/setuid /data/bigid /bin/busybox
assert_eq 0 "$RC" "exec in a pulled image as $TU (stderr: $(show "$ERR"))"
assert_eq $'0:0 4755\n100000:100000 644\n0:0 755' "$OUT" "owners and modes in the VM (rootless pull)"
files=$(find "$UH/dbx/data" -newer "$RU/devbox.ini" 2>/dev/null | head -n 200)
[ -n "$files" ] || fail "no files of the pull under $UH/dbx/data"
for f in $files; do
    [ "$(stat -c %u "$f")" = "$tuid" ] || fail "$f is not owned by $TU"
done

RD=$UH/repo-default
as_user git init -q "$RD" || fail "git init as $TU"
run_in "$RD" as_user timeout 400 "$UD" exec -- stat -c '%u:%g %a' /usr/bin/passwd /usr/bin/su
assert_eq 0 "$RC" "exec in the default image built as $TU (stderr: $(show "$ERR"))"
assert_eq $'0:0 4755\n0:0 4755' "$OUT" "setuid root files of the default image built rootless"
run_in "$RD" as_user timeout 60 "$UD" stop
assert_eq 0 "$RC" "stop as $TU: $(show "$ERR")"
run_in "$RU" as_user timeout 60 "$UD" stop
assert_eq 0 "$RC" "stop as $TU: $(show "$ERR")"
assert_no_vm_procs 10

#!/usr/bin/env bash
# t-image-disk: `[box] disk` sets the virtual size of the project's disk (its qcow2 overlay):
# at creation, grown at the next start when the value grows, never shrunk (a warning), and the
# image's size with `auto`.  The guest's filesystem growing into it is guest/'s part.
. "$(dirname "$0")/lib.sh"

import_image
vsize() { # FILE: the virtual size qemu-img reports, in bytes
    qemu-img info -U --output=json -f qcow2 "$1" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}
disk_of() { # REPO: the project's disk
    local id
    id=$(dbx -C "$1" status --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])') ||
        fail "no project id for $1"
    printf '%s\n' "$DEVBOX_HOME/data/projects/$id/disk.qcow2"
}
base=$(find "$DEVBOX_HOME/data/bases" -name '*.raw' | head -n 1)
[ -f "$base" ] || fail "no base disk after the import"
img_size=$(stat -c %s "$base")

# auto: the image's size
A=$(make_repo auto)
ok dbx -C "$A" exec -- true
assert_eq "$img_size" "$(vsize "$(disk_of "$A")")" "disk = auto: the image's size"

# below the image's size: the image's size, and a warning that says so (no new disk would be
# smaller: 'devbox rm' is no advice here)
S=$(make_repo small)
write_profile "$S" $'[box]\ndisk = 1G'
ok dbx -C "$S" exec -- echo ran
assert_eq ran "$OUT" "the command runs with a disk value below the image's size"
assert_eq "$img_size" "$(vsize "$(disk_of "$S")")" "disk = 1G: the image's size"
assert_one_line "$ERR" "the warning about a disk value below the image's size"
assert_contains "$ERR" "smaller than the image" "the warning names the image"
assert_not_contains "$ERR" "devbox rm" "no advice that cannot help"
ok dbx -C "$S" stop

# a size at creation
R=$(make_repo proj)
cd "$R" || fail "cd $R"
write_profile "$R" $'[box]\ndisk = 6G'
ok dbx exec -- true
d=$(disk_of "$R")
assert_eq $((6 << 30)) "$(vsize "$d")" "disk = 6G at creation"

# grown at the next start; the running VM keeps its disk until then
write_profile "$R" $'[box]\ndisk = 9G'
ok dbx exec -- true
assert_eq $((6 << 30)) "$(vsize "$d")" "a running VM's disk is not resized under it"
ok dbx stop
ok dbx exec -- true
assert_eq $((9 << 30)) "$(vsize "$d")" "disk = 9G grows the disk at the next start"
assert_eq "" "$ERR" "no warning when the disk grows"

# never shrunk: a warning, the command still runs
ok dbx stop
write_profile "$R" $'[box]\ndisk = 7G'
ok dbx exec -- echo ran
assert_eq ran "$OUT" "the command runs with a smaller disk value"
assert_eq $((9 << 30)) "$(vsize "$d")" "disk = 7G does not shrink a 9G disk"
assert_one_line "$ERR" "the warning about a smaller disk value"
assert_contains "$ERR" "never shrinks" "the warning says why"
ok dbx stop
qemu-img check -q "$d" || fail "qemu-img check of the grown disk"

#!/usr/bin/env bash
# t-exec-basic: exit code and files: the repository is shared at the same absolute path, a
# file the command writes lands on the host owned by the invoking user.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

expect_rc 7 dbx exec -- sh -c 'echo hi > out.txt; exit 7'
assert_file "$R/out.txt"
assert_eq hi "$(cat "$R/out.txt")" "content of out.txt"
assert_eq "$(id -u):$(id -g)" "$(stat -c %u:%g "$R/out.txt")" "owner of out.txt on the host"

# same absolute path in the guest, and host changes are visible at once (shared, not copied)
ok dbx exec -- pwd
assert_eq "$R" "$OUT" "guest cwd"
echo "from host" >"$R/host.txt"
ok dbx exec -- cat "$R/host.txt"
assert_eq "from host" "$OUT" "host file read in the guest"
ok dbx exec -- sh -c 'mkdir -p d/e && echo nested > d/e/f && rm host.txt'
assert_eq nested "$(cat "$R/d/e/f" 2>&1)" "file in a directory made by the guest"
assert_eq "$(id -u):$(id -g)" "$(stat -c %u:%g "$R/d/e")" "owner of a guest-made directory"
[ ! -e "$R/host.txt" ] || fail "host.txt deleted in the guest still exists on the host"

# plain exit codes pass through
for c in 0 1 2 100 255; do
    expect_rc "$c" dbx exec -- sh -c "exit $c"
done
expect_rc 1 dbx exec -- false

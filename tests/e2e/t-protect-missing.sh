#!/usr/bin/env bash
# t-protect-missing: a protected path that does not exist when the VM starts cannot be a
# read-only mount point, so the box can create it (documented in docs/SECURITY.md).  What
# devbox guarantees instead: a devbox.ini the box plants is still a repo profile, so if it
# widens anything the next start refuses it until the user trusts it; and once the path
# exists at a start, it is protected like any other.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# the box plants a widening devbox.ini while none exists
run dbx exec -- sh -c 'printf "[security]\ncapabilities = sys_admin\nseccomp = unconfined\n" > devbox.ini'
assert_eq 0 "$RC" "the box creates a missing devbox.ini (stderr: $(show "$ERR"))"
[ -f "$R/devbox.ini" ] || fail "devbox.ini not created on the host"

# the running VM keeps its policy; the next start refuses the planted profile
ok dbx exec -- sh -c 'grep -E "^(CapEff|Seccomp):" /proc/self/status'
assert_contains "$OUT" "CapEff:	0000000000000000" "capabilities of the running VM after the plant"
ok dbx stop
run dbx exec -- true
assert_eq 125 "$RC" "exec after the box planted a widening devbox.ini"
assert_contains "$ERR" "widens the default profile" "refusal message"
assert_contains "$ERR" "capability 'sys_admin'" "refusal names the capability"
assert_contains "$ERR" "devbox trust" "refusal says how to allow it"

# the user removes it; a narrowing profile that now exists is protected at the next start
rm -f "$R/devbox.ini"
printf '[limits]\npids = 500\n' >"$R/devbox.ini"
before=$(fingerprint "$R/devbox.ini")
ok dbx exec -- true
for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    run dbx exec "${u[@]}" -- sh -c 'echo "[security]" >> devbox.ini'
    [ "$RC" != 0 ] || fail "the box ($who) appended to the now protected devbox.ini"
    run dbx exec "${u[@]}" -- sh -c 'mv devbox.ini gone.ini'
    [ "$RC" != 0 ] || fail "the box ($who) renamed the now protected devbox.ini"
done
assert_eq "$before" "$(fingerprint "$R/devbox.ini")" "host devbox.ini (sha256, inode, mode, size, mtime)"

#!/usr/bin/env bash
# t-rm: rm refuses while the VM runs unless --force, and deletes the VM and its disk.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

in_ls() { # prints how many ls --json entries are for $R
    local out
    out=$(dbx ls --json </dev/null) || fail "ls --json failed"
    json_get "$out" "len([e for e in j if e.get('project') == '$R'])"
}

ok dbx exec -u root -- sh -c 'echo one > /root/marker'
q=$(the_qemu_pid)
assert_eq 1 "$(in_ls)" "entries in ls --json while running"

run dbx rm
[ "$RC" != 0 ] || fail "rm of a running VM without --force succeeded"
assert_one_line "$ERR" "stderr of rm while running"
assert_match "$ERR" '^devbox: ' "stderr of rm while running"
kill -0 "$q" 2>/dev/null || fail "qemu died after a refused rm"
ok dbx exec -u root -- cat /root/marker
assert_eq one "$OUT" "marker after a refused rm"

ok dbx stop
assert_no_vm_procs 10
ok dbx rm
assert_eq 0 "$(in_ls)" "entries in ls --json after rm"
ok dbx exec -u root -- sh -c 'test -e /root/marker && echo present || echo absent'
assert_eq absent "$OUT" "marker after rm and a new exec (fresh disk)"

ok dbx exec -u root -- sh -c 'echo two > /root/marker'
ok dbx rm --force
assert_no_vm_procs 10
assert_eq 0 "$(in_ls)" "entries in ls --json after rm --force"
ok dbx exec -u root -- sh -c 'test -e /root/marker && echo present || echo absent'
assert_eq absent "$OUT" "marker after rm --force and a new exec"

# the repository itself is untouched
[ -d "$R/.git" ] || fail "rm touched the repository"
ok dbx rm --force

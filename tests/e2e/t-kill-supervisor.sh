#!/usr/bin/env bash
# t-kill-supervisor: SIGKILL of the supervisor takes QEMU and virtiofsd with it within a few
# seconds, a client waiting on it does not hang, and the next exec works.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

ok dbx exec -u root -- sh -c 'echo before > /root/state; sync'
q=$(the_qemu_pid)
sup=$(awk '/^PPid:/ {print $2}' "/proc/$q/status")
supcmd=$(tr '\0' ' ' <"/proc/$sup/cmdline" 2>/dev/null)
log "qemu $q, its parent $sup: $supcmd"
case "${supcmd%% *}" in
*/devbox* | devbox*) ;;
*) fail "qemu's parent $sup is not a devbox process: $(show "$supcmd")" ;;
esac
[ -n "$(vfsd_pids)" ] || fail "no virtiofsd process found for the running project"

# a client in the middle of an exec
"$DEVBOX" exec -- sleep 100 >"$TEST_TMP/c.out" 2>"$TEST_TMP/c.err" </dev/null &
client=$!
sleep 2

kill -9 "$sup"
assert_no_vm_procs 5

# the waiting client notices (any non-zero code), within a few seconds
wait_until 10 bash -c "! kill -0 $client 2>/dev/null" || {
    kill -9 "$client"
    fail "client of 'exec -- sleep 100' still running 10s after the supervisor was killed"
}
wait "$client"
rc=$?
log "client exit code $rc, stderr: $(cat "$TEST_TMP/c.err")"
[ "$rc" != 0 ] || fail "client exited 0 although its supervisor was killed"

# the next exec boots again, from the same disk
ok dbx exec -- echo back
assert_eq back "$OUT" "exec after killing the supervisor"
ok dbx exec -u root -- cat /root/state
assert_eq before "$OUT" "file synced before the kill"
assert_eq 1 "$(qemu_pids | count_lines)" "qemu processes after the restart"
ok dbx status --json
assert_eq running "$(json_get "$OUT" 'j["state"]')" "state after the restart"

#!/usr/bin/env bash
# t-kill-qemu: SIGKILL of QEMU: the next exec works again (and synced data is kept).
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

ok dbx exec -u root -- sh -c 'echo kept > /root/state; sync'
q=$(the_qemu_pid)
kill -9 "$q"
wait_until 10 bash -c "! kill -0 $q 2>/dev/null" || fail "qemu $q survived SIGKILL"

ok dbx exec -- echo again
assert_eq again "$OUT" "exec after killing qemu"
ok dbx exec -u root -- cat /root/state
assert_eq kept "$OUT" "file synced before qemu was killed"
q2=$(the_qemu_pid)
assert_ne "$q" "$q2" "qemu pid after the restart"
ok dbx status --json
assert_eq running "$(json_get "$OUT" 'j["state"]')" "state after the restart"

# and once more, the status must not claim a dead VM runs
kill -9 "$q2"
wait_until 10 bash -c "! kill -0 $q2 2>/dev/null" || fail "qemu $q2 survived SIGKILL"
sleep 2
run dbx status --json
if [ "$RC" = 0 ]; then
    assert_eq stopped "$(json_get "$OUT" 'j["state"]')" "state a few seconds after qemu was killed"
fi
ok dbx exec -- echo third
assert_eq third "$OUT" "exec after killing qemu twice"

#!/usr/bin/env bash
# t-persist: the VM's disk survives stop; the base image does not change (another project on
# the same image does not see the first one's files).
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
R2=$(make_repo proj2)
cd "$R" || fail "cd $R"

ok dbx exec -u root -- sh -c 'echo marker-1 > /root/marker && mkdir -p /opt/x && echo y > /opt/x/y'
ok dbx exec -- cat /proc/sys/kernel/random/boot_id
boot1=$OUT

ok dbx stop
assert_no_vm_procs 10
ok dbx status --json
assert_eq stopped "$(json_get "$OUT" 'j["state"]')" "state after stop"

ok dbx exec -u root -- cat /root/marker
assert_eq marker-1 "$OUT" "/root/marker after stop and restart"
ok dbx exec -- cat /opt/x/y
assert_eq y "$OUT" "/opt/x/y after stop and restart"
ok dbx exec -- cat /proc/sys/kernel/random/boot_id
assert_ne "$boot1" "$OUT" "boot id after stop (the VM must have rebooted)"

# same image, other project: a clean disk
run_in "$R2" dbx exec -u root -- sh -c 'test -e /root/marker && echo present || echo absent'
assert_eq 0 "$RC" "exec in the second project: $(show "$ERR")"
assert_eq absent "$OUT" "/root/marker in a second project from the same image"
run_in "$R2" dbx exec -- cat /etc/devbox-test-image
assert_eq busybox "$OUT" "image content in the second project"

# both run at once, each on its own disk
ok dbx exec -u root -- cat /root/marker
assert_eq marker-1 "$OUT" "/root/marker with the second project running"
assert_eq 2 "$(qemu_pids | count_lines)" "qemu processes for two running projects"

# a stop + start cycle more, and the marker is still there
ok dbx stop
ok dbx exec -u root -- sh -c 'cat /root/marker; echo marker-2 >> /root/marker'
assert_eq marker-1 "$OUT"
ok dbx stop
ok dbx exec -u root -- cat /root/marker
assert_eq $'marker-1\nmarker-2' "$OUT" "/root/marker after a second restart"

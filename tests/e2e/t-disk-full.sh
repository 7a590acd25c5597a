#!/usr/bin/env bash
# t-disk-full: the host disk filling while the box writes (DEVBOX_HOME on a small tmpfs) pauses
# the VM (QEMU's werror=enospc): the writing client is told in one line and ends instead of
# hanging, status says paused, a new exec is refused at once with the same reason, and once
# space is freed the VM resumes by itself and answers again.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs as DEVBOX_HOME"
mkdir -p "$DEVBOX_HOME"
mount -t tmpfs -o size=1G,mode=0700 tmpfs "$DEVBOX_HOME" || skip "cannot mount a tmpfs"
CLEANUP_HOOKS+=("umount -l '$DEVBOX_HOME'")

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx exec -- true
# leave about 40 MiB free; the ballast is what the test frees later
free_kib=$(df -k --output=avail "$DEVBOX_HOME" | tail -n 1)
fallocate -l $(((free_kib - 40 * 1024) * 1024)) "$DEVBOX_HOME/ballast" || fail "fallocate ballast"
log "free on the tmpfs: $(df -h --output=avail "$DEVBOX_HOME" | tail -n 1)"

timeout -k 5 90 "$DEVBOX" exec -u root -- dd if=/dev/urandom of=/root/big bs=1M count=100 conv=fsync \
    >"$TEST_TMP/w.out" 2>"$TEST_TMP/w.err" </dev/null &
w=$!
wait_until 80 state_is paused || fail "status never said paused while the host disk was full: $(dbx status 2>&1)"
expect_rc 125 dbx exec -- echo hi
assert_one_line "$ERR" "exec while the disk is full"
assert_contains "$ERR" "the host disk is full" "exec while the disk is full"
wait "$w"
rc=$?
e=$(grep -v records "$TEST_TMP/w.err")
log "writer exited $rc: $(show "$e")"
[ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "the writing client hung until its timeout"
assert_eq 125 "$rc" "exit code of the writer"
assert_one_line "$e" "stderr of the writer"
assert_contains "$e" "the host disk is full" "stderr of the writer"

rm -f "$DEVBOX_HOME/ballast"
wait_until 60 state_is running || fail "the VM did not resume after space was freed: $(dbx status 2>&1)"
ok dbx exec -u root -- sh -c 'rm -f /root/big; echo alive'
assert_eq alive "$OUT" "exec after space was freed"

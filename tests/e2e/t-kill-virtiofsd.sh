#!/usr/bin/env bash
# t-kill-virtiofsd: when virtiofsd dies the workspace is gone: every waiting client gets one
# line and exit 125 at once (not when the guest's shutdown gives up on the share), the VM is
# stopped, and the next exec boots a fresh one.  The guard that started virtiofsd is devbox-guard.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx exec -- true
q=$(the_qemu_pid)
# virtiofsd's guard (its parent) is devbox-guard, the small program next to devbox-full, not the
# full devbox with its 53 libraries
want=$(readlink -f "$(dirname "$DEVBOX")/devbox-guard")
n=0
for v in $(vfsd_pids); do
    g=$(awk '{print $4}' "/proc/$v/stat")
    [ "$(cat "/proc/$g/comm" 2>/dev/null)" = virtiofsd-guard ] || continue
    assert_eq "$want" "$(readlink "/proc/$g/exe")" "the program of virtiofsd's guard $g"
    n=$((n + 1))
done
[ "$n" -ge 1 ] || fail "no virtiofsd guard found"
for i in 1 2; do
    "$DEVBOX" exec -- sleep 1000 >"$TEST_TMP/w$i.out" 2>"$TEST_TMP/w$i.err" </dev/null &
    eval "w$i=\$!"
done
sleep 3
# shellcheck disable=SC2046
kill -9 $(vfsd_pids)
gone() { ! kill -0 "$1" 2>/dev/null; }
for pid in "$w1" "$w2"; do
    wait_until 10 gone "$pid" || {
        kill -9 "$pid"
        fail "client $pid still waiting 10s after virtiofsd was killed"
    }
done
for i in 1 2; do
    eval "pid=\$w$i"
    wait "$pid"
    rc=$?
    e=$(cat "$TEST_TMP/w$i.err")
    log "client $i exited $rc: $(show "$e")"
    assert_eq 125 "$rc" "exit code of client $i"
    assert_one_line "$e" "stderr of client $i"
    assert_contains "$e" "virtiofsd" "stderr of client $i"
done
wait_until 30 gone "$q" || fail "qemu $q still runs 30s after virtiofsd was killed"
ok dbx exec -- echo again
assert_eq again "$OUT" "exec after virtiofsd was killed"

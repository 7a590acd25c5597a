#!/usr/bin/env bash
# t-race-boot: execs started at the same moment on a stopped project boot exactly one VM; a
# second supervisor started for a running box gives up without touching the first's socket and
# status (it used to unlink them, and the running box could no longer be reached).
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

any_alive() {
    local p
    for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
    return 1
}

race() { # N: start N execs at once, check them and the qemu count
    local n=$1 i rc boot first='' pids=()
    for i in $(seq 1 "$n"); do
        (dbx exec -- cat /proc/sys/kernel/random/boot_id >"$TEST_TMP/r$i.out" 2>"$TEST_TMP/r$i.err"
        echo $? >"$TEST_TMP/r$i.rc") &
        pids+=($!)
    done
    # while they boot, there must never be more than one qemu
    local max=0 c
    while any_alive "${pids[@]}"; do
        c=$(qemu_pids | count_lines)
        [ "$c" -gt "$max" ] && max=$c
        sleep 0.2
    done
    wait
    for i in $(seq 1 "$n"); do
        rc=$(cat "$TEST_TMP/r$i.rc")
        assert_eq 0 "$rc" "exit code of racing exec $i/$n (stderr: $(show "$(cat "$TEST_TMP/r$i.err")"))"
        boot=$(cat "$TEST_TMP/r$i.out")
        [ -n "$first" ] || first=$boot
        assert_eq "$first" "$boot" "boot id seen by racing exec $i/$n"
    done
    assert_le "$max" 1 "qemu processes seen at once while $n execs raced"
    assert_eq 1 "$(qemu_pids | count_lines)" "qemu processes after $n racing execs"
}

race 2 # never booted
ok dbx stop
assert_no_vm_procs 10
race 2 # stopped
ok dbx stop
assert_no_vm_procs 10
race 4

# ---- a supervisor that loses the race leaves the running one alone ---------------------------
q=$(the_qemu_pid)
expect_rc 1 "$DEVBOX" __supervise "$R" 3>/dev/null
assert_contains "$ERR" "another supervisor owns '$R'" "the second supervisor's log line"
ok dbx exec -- echo reached
assert_eq reached "$OUT" "the running box after a second supervisor gave up"
assert_eq "$q" "$(the_qemu_pid)" "the same VM"
ok dbx status
assert_contains "$OUT" "running" "status of the running box"

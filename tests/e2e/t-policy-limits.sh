#!/usr/bin/env bash
# t-policy-limits: [limits] from devbox.ini (all narrowings: no trust needed) land in the box
# cgroup; a fork bomb stops at pids.max, a memory hog over limits.memory is OOM-killed (137),
# cpu = 0.2 holds a busy loop to about a fifth of a CPU; the VM and later execs survive all of it.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"
write_profile "$R" '[limits]
memory = 64M
swap = 0
pids = 64
cpu = 0.2
nofile = 1024
nproc = 500
io_weight = 50'

ok dbx profile check
assert_eq ok "$OUT" "profile check"
ok dbx exec -- sh -c 'cd /sys/fs/cgroup/box && for f in memory.max memory.swap.max pids.max cpu.max; do echo "$f=$(cat $f)"; done; echo "nofile=$(ulimit -n)"; echo "nproc=$(ulimit -u)"; echo "io=$(cat io.weight 2>&1 | head -n 1)"; echo "cgroup=$(cat /proc/self/cgroup)"'
cg=$OUT
assert_kv "$cg" cgroup "0::/box/s[0-9]+"
assert_kv "$cg" memory.max $((64 << 20)) "cgroup memory.max"
assert_kv "$cg" memory.swap.max 0 "cgroup memory.swap.max"
assert_kv "$cg" pids.max 64 "cgroup pids.max"
assert_kv "$cg" nofile 1024 "RLIMIT_NOFILE"
assert_kv "$cg" nproc 500 "RLIMIT_NPROC"
assert_kv "$cg" io "default 50" "cgroup io.weight"
read -r quota period <<<"$(kv "$cg" cpu.max)"
assert_match "$quota $period" '^[0-9]+ [0-9]+$' "cpu.max"
assert_eq 200 $((quota * 1000 / period)) "cpu.max quota/period in thousandths of a CPU ($quota $period)"
ok dbx exec -- cat /proc/sys/kernel/random/boot_id
boot=$OUT

# ---- pids ------------------------------------------------------------------------------
ok dbx exec -- ./probe forkbomb 4
bomb=$OUT
assert_match "$(kv "$bomb" fails)" '^[1-9][0-9]*$' "fork failures in the bomb (it must hit pids.max)"
assert_le "$(kv "$bomb" max_current)" 64 "pids.current during the bomb"
ok dbx exec -- sh -c 'grep "^max " /sys/fs/cgroup/box/pids.events'
assert_match "$OUT" '^max [1-9][0-9]*$' "pids.events after the bomb"
ok dbx exec true
# A box held at pids.max still starts a command at once (to see or kill what fills it): the
# command's process joins its leaf by migration, which the limit does not refuse, rather than
# being born there, which it would.
# Exactly pids.max (64) sleeps: 63 started by the shell, which then becomes the 64th.  Not
# "until a fork fails": busybox sh exits when one does, which frees a slot again and made the
# box full or not at the moment of the exec below by chance.
ok dbx exec -d -- sh -c 'i=0; while [ $i -lt 63 ]; do sleep 300 & i=$((i+1)); done; exec sleep 300'
sleeps() { [ "$(dbx ps 2>/dev/null | grep -c 'sleep 300')" -eq 64 ]; }
wait_until 60 sleeps || fail "the sleeps did not fill the box: $(dbx ps 2>&1 | tail -n 3)"
run dbx exec -- cat /sys/fs/cgroup/box/pids.current
assert_eq 0 "$RC" "exec while the box is at pids.max (stderr: $ERR)"
assert_le 64 "$OUT" "pids.current with the box full"
ok dbx kill --all
wait_until 60 "$DEVBOX" exec true >/dev/null 2>&1 </dev/null || fail "exec after kill --all"
# the classic one, left running until the client is interrupted (background jobs of a
# non-interactive shell ignore SIGINT, so the client is killed 5 s later)
run timeout -s INT -k 5 8 "$DEVBOX" exec -- sh -c 'b() { b | b & }; b; sleep 60'
log "classic fork bomb client ended with rc $RC"
wait_until 60 "$DEVBOX" exec true >/dev/null 2>&1 </dev/null ||
    fail "'devbox exec true' does not work within 60s after the fork bomb"
# The leaf's cgroup.kill is sent when the client goes; its processes are gone once reaped, and
# the orphans among them are init's to reap, which under load can trail the next command (a run
# of the whole suite, two tests at a time, read 14 here once).  Escaped ones would stay.
low_pids() {
    run dbx exec -- cat /sys/fs/cgroup/box/pids.current
    [ "$RC" = 0 ] && [ "$OUT" -le 10 ] 2>/dev/null
}
wait_until 30 low_pids || fail "pids.current 30 s after the bomb's session ended: $OUT (rc $RC)"
ok dbx exec -- cat /proc/sys/kernel/random/boot_id
assert_eq "$boot" "$OUT" "boot id after the fork bombs"

# ---- memory ----------------------------------------------------------------------------
expect_rc 137 dbx exec -- ./probe hog 200
assert_not_contains "$OUT" hog_done "hog output"
ok dbx exec -- sh -c 'grep "^oom_kill " /sys/fs/cgroup/box/memory.events'
assert_match "$OUT" '^oom_kill [1-9][0-9]*$' "memory.events after the hog"
ok dbx exec -- ./probe hog 16
assert_eq hog_done=16 "$OUT" "a small allocation under the limit"
ok dbx exec -- cat /proc/sys/kernel/random/boot_id
assert_eq "$boot" "$OUT" "boot id after the OOM kill (the VM must survive)"
assert_eq 1 "$(qemu_pids | count_lines)" "qemu processes after the OOM kill"

# ---- cpu -------------------------------------------------------------------------------
ok dbx exec -- sh -c 'u0=$(sed -n "s/^usage_usec //p" /sys/fs/cgroup/box/cpu.stat); ./probe spin 2; u1=$(sed -n "s/^usage_usec //p" /sys/fs/cgroup/box/cpu.stat); echo "usage_usec=$((u1 - u0))"'
spin=$OUT
wall=$(kv "$spin" wall_ms)
cpu=$(kv "$spin" cpu_ms)
usage=$(kv "$spin" usage_usec)
log "cpu = 0.2: wall ${wall} ms, probe cpu ${cpu} ms, box cgroup usage ${usage} us"
assert_le 1900 "$wall" "wall time of the spin"
assert_le "$cpu" 500 "cpu time of a 2 s busy loop under cpu = 0.2 (ms)"
assert_le $((usage / 1000 * 100 / wall)) 35 "cgroup usage/wall in percent under cpu = 0.2"

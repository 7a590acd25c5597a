#!/usr/bin/env bash
# t-policy-escape: guest root without capabilities (`-u root`, and the default user when the
# host user is root) must not undo the policy through files that only DAC guards: the box
# cgroup's limits, leaving /box for the root cgroup, new cgroups, kernel tunables in /proc/sys
# (core_pattern and modprobe would run a program as full root), sysrq, uevent_helper.  Every
# write that works is undone where possible and reported.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
write_profile "$R" $'[limits]\npids = 500\nmemory = 128M'

# Prints "NAME=blocked" or "NAME=ALLOWED" per attempt; restores what it changed.
cat >"$R/escape.sh" <<'SCRIPT'
w() { # NAME FILE VALUE: try to write VALUE to FILE, put back the old first line if it worked
    old=$(head -n 1 "$2" 2>/dev/null)
    if (printf '%s\n' "$3" > "$2") 2>/dev/null; then
        echo "$1=ALLOWED"
        [ -n "$old" ] && (printf '%s\n' "$old" > "$2") 2>/dev/null
    else
        echo "$1=blocked"
    fi
}
cg=/sys/fs/cgroup
w cg_pids_max $cg/box/pids.max max
w cg_memory_max $cg/box/memory.max max
w cg_cpu_max $cg/box/cpu.max "max 100000"
w cg_subtree $cg/box/cgroup.subtree_control +pids
if (echo $$ > $cg/cgroup.procs) 2>/dev/null; then echo "cg_leave_box=ALLOWED"; else echo "cg_leave_box=blocked"; fi
# each command has a leaf of its own (box/sN): neither the box itself nor another leaf
if (echo $$ > $cg/box/cgroup.procs) 2>/dev/null; then echo "cg_leave_leaf=ALLOWED"; else echo "cg_leave_leaf=blocked"; fi
echo "cgroup_after=$(cat /proc/self/cgroup)"
if mkdir $cg/box/sub 2>/dev/null; then echo "cg_mkdir_box=ALLOWED"; rmdir $cg/box/sub; else echo "cg_mkdir_box=blocked"; fi
if mkdir $cg/other 2>/dev/null; then echo "cg_mkdir_root=ALLOWED"; rmdir $cg/other; else echo "cg_mkdir_root=blocked"; fi
w core_pattern /proc/sys/kernel/core_pattern "|/tmp/pwn"
w modprobe /proc/sys/kernel/modprobe /tmp/pwn
w hostname /proc/sys/kernel/hostname pwned
w sysrq /proc/sys/kernel/sysrq 1
w drop_caches /proc/sys/vm/drop_caches 3
w uevent_helper /sys/kernel/uevent_helper /tmp/pwn
# 'h' only prints the sysrq help to the kernel log
if (echo h > /proc/sysrq-trigger) 2>/dev/null; then echo "sysrq_trigger=ALLOWED"; else echo "sysrq_trigger=blocked"; fi
w oom_score_adj_1 /proc/1/oom_score_adj 1000
# the same file of init's thread: every command inherits init's value
w oom_score_adj_task /proc/1/task/1/oom_score_adj 1000
w oom_adj_task /proc/1/task/1/oom_adj 15
echo "oom_self=$(cat /proc/self/oom_score_adj)"
exit 0
SCRIPT

for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    ok dbx exec "${u[@]}" -- sh escape.sh
    out=$OUT
    allowed=$(printf '%s\n' "$out" | grep '=ALLOWED$' | tr '\n' ' ')
    [ -z "$allowed" ] || fail "as $who (uid $(dbx exec "${u[@]}" -- id -u 2>/dev/null </dev/null)) with capabilities dropped: $allowed"
    assert_kv "$out" cgroup_after "0::/box/s[0-9]+" "cgroup after trying to leave /box as $who"
    assert_kv "$out" oom_self 0 "a command's oom_score_adj as $who"
    ok dbx exec -- sh -c 'cd /sys/fs/cgroup/box && echo "pids=$(cat pids.max)" && echo "mem=$(cat memory.max)"'
    assert_kv "$OUT" pids 500 "pids.max after the attempts as $who"
    assert_kv "$OUT" mem $((128 << 20)) "memory.max after the attempts as $who"
done

# Each command gets a mount namespace of its own, a copy of the template PID 1 builds once with
# the read-only mounts above (guest/init-policy.c): no two commands share one, so what one
# mounts, where a plan lets it, never reaches another.
# (One after the other they may show the same number: the kernel reuses a freed one.)
dbx exec -- sh -c 'readlink /proc/self/ns/mnt; sleep 30' >"$TEST_TMP/ns-first" 2>&1 </dev/null &
bg=$!
for _ in $(seq 100); do [ -s "$TEST_TMP/ns-first" ] && break; sleep 0.2; done
first=$(head -n 1 "$TEST_TMP/ns-first")
ok dbx exec -u root -- readlink /proc/self/ns/mnt
second=$OUT
kill "$bg" 2>/dev/null
wait "$bg" 2>/dev/null
case $first in mnt:\[*\]) ;; *) fail "mount namespace of a command: '$first'" ;; esac
[ "$first" != "$second" ] || fail "two commands shared the mount namespace $first"

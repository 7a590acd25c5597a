#!/usr/bin/env bash
# t-exec-timing: DEVBOX_EXEC_TIMING=1 makes `devbox exec` print one line on stderr with where
# the exec's time went (client, supervisor, guest phases in microseconds, from the TIMING frame
# the guest sends before EXIT); the phases are consistent (the guest's add up to its total, the
# host's fit in the client's); the command's output and exit code are unchanged; without the
# variable, and for a command that never started, there is no line.  And the boot's own split:
# the supervisor log's ready line (prepare, spawn, to hello, setup) and the console log's boot
# line (the guest's steps, which add up to the time it gives).  One boot.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# The boot's first command does not wait for the spare process (init makes it once that
# command has ended): it starts the ordinary way; the next one through the spare.
DEVBOX_EXEC_TIMING=1 run dbx exec -- true
assert_eq 0 "$RC" "the boot's first command"
first=$(printf '%s\n' "$ERR" | grep '^devbox: exec timing (us): ')
assert_one_line "$first" "the boot's first command's timing line"
assert_match "$first" " g_verify=[0-9]+( |\$)" "the boot's first command started the ordinary way"
assert_not_contains "$first" " g_wake=" "the boot's first command did not go through the spare"

# ---- the boot's split ------------------------------------------------------------------------
ok dbx logs --supervisor
ready=$(printf '%s\n' "$OUT" | grep ' ready (' | tail -n 1)
assert_match "$ready" "boot [0-9]+ ms: prepare [0-9.]+, spawn [0-9.]+, to hello [0-9.]+, setup [0-9.]+ ms\)" \
    "the supervisor's ready line"
id=$(dbx status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
boot=$(grep -a 'devbox-init: boot: ready at ' "$DEVBOX_HOME/state/projects/$id/console.log")
assert_one_line "$boot" "the guest's boot line"
# the mount template was made (init-policy.c, mnt_template): without it every command would
# build the box's mounts itself, slower, and only this line would say so
assert_not_contains "$(cat "$DEVBOX_HOME/state/projects/$id/console.log")" \
    "commands build their own mounts" "the boot's mount template"
python3 - "$boot" <<'PY' || fail "the guest's boot steps do not add up: $boot"
import re, sys
line = sys.argv[1]
at = float(re.search(r"ready at ([0-9.]+) ms", line).group(1))
steps = re.findall(r"([a-zA-Z][a-zA-Z ]*?) ([0-9]+\.[0-9])(?=,| ms)", line.split(" ms: ", 1)[1])
names = [k for k, _ in steps]
for want in ("kernel", "root", "agent", "to setup", "workspace", "network", "CAs", "audit"):
    assert want in names, want
assert abs(sum(float(v) for _, v in steps) - at) < 0.1 * len(steps) + 0.5, (steps, at)
PY

DEVBOX_EXEC_TIMING=1 run dbx exec -- sh -c 'echo out; echo err >&2; exit 3'
assert_eq 3 "$RC" "exit code with timing"
assert_eq out "$OUT" "stdout with timing"
line=$(printf '%s\n' "$ERR" | grep '^devbox: exec timing (us): ')
assert_one_line "$line" "timing line"
assert_eq err "$(printf '%s\n' "$ERR" | grep -v '^devbox: exec timing')" "the command's stderr"

# every phase: key=integer; the ones each layer must report.  The default user's command is
# started by the spare process (t-spare), one naming its user by a child of init's (below).
for k in total c_prep c_connect c_to_sup g_queue g_user g_cgroup g_send g_wake g_fork g_chdir \
    g_execve g_started g_run g_exit g_total s_relay s_to_started s_to_exit vio c_from_sup; do
    assert_match "$line" " $k=[0-9]+( |\$)" "phase $k"
done
DEVBOX_EXEC_TIMING=1 run dbx exec -u "$(box_uid):$(box_gid)" -- true
line2=$(printf '%s\n' "$ERR" | grep '^devbox: exec timing (us): ')
for k in g_cgroup g_fork g_enter g_ids g_caps g_chdir g_lock g_verify g_execve g_started; do
    assert_match "$line2" " $k=[0-9]+( |\$)" "phase $k of a command started without the spare"
done
val() { printf '%s\n' "$line" | grep -o " $1=[0-9]*" | cut -d= -f2; }
# the guest's phases are consecutive intervals of its own clock: they add up to its total
gsum=0
for kv in $(printf '%s\n' "$line" | grep -o ' g_[a-z]*=[0-9]*' | grep -v g_total); do
    gsum=$((gsum + ${kv#*=}))
done
assert_eq "$(val g_total)" "$gsum" "sum of the guest's phases"
# the supervisor's intervals lie inside the client's (one host clock)
host=$(($(val s_relay) + $(val s_to_started) + $(val s_to_exit)))
assert_le "$host" "$(val total)" "supervisor phases within the client's total"
[ "$(val total)" -gt 0 ] || fail "total is 0: $line"

# no variable: no line
run dbx exec -- sh -c 'echo err >&2'
assert_eq 0 "$RC" "exit code without timing"
assert_eq err "$ERR" "stderr without timing"

# a command that never started: its error, no timing line
DEVBOX_EXEC_TIMING=1 run dbx exec -- /no/such/command
assert_eq 127 "$RC" "exit code of a missing command with timing"
assert_not_contains "$ERR" "exec timing" "no timing line for a command that never started"

# a detached command: the pid on stdout and nothing else
DEVBOX_EXEC_TIMING=1 run dbx exec -d -- sleep 1
assert_eq 0 "$RC" "exec -d with timing"
assert_match "$OUT" '^[0-9]+$' "exec -d prints the pid"
assert_not_contains "$ERR" "exec timing" "no timing line for exec -d"

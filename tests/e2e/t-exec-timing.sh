#!/usr/bin/env bash
# t-exec-timing: DEVBOX_EXEC_TIMING=1 makes `devbox exec` print one line on stderr with where
# the exec's time went (client, supervisor, guest phases in microseconds, from the TIMING frame
# the guest sends before EXIT); the phases are consistent (the guest's add up to its total, the
# host's fit in the client's); the command's output and exit code are unchanged; without the
# variable, and for a command that never started, there is no line.  One boot.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

ok dbx exec -- true

DEVBOX_EXEC_TIMING=1 run dbx exec -- sh -c 'echo out; echo err >&2; exit 3'
assert_eq 3 "$RC" "exit code with timing"
assert_eq out "$OUT" "stdout with timing"
line=$(printf '%s\n' "$ERR" | grep '^devbox: exec timing (us): ')
assert_one_line "$line" "timing line"
assert_eq err "$(printf '%s\n' "$ERR" | grep -v '^devbox: exec timing')" "the command's stderr"

# every phase: key=integer; the ones each layer must report
for k in total c_prep c_connect c_to_sup g_queue g_user g_cgroup g_fork g_enter g_ids g_caps \
    g_chdir g_lock g_verify g_execve g_started g_run g_exit g_total s_relay s_to_started \
    s_to_exit vio c_from_sup; do
    assert_match "$line" " $k=[0-9]+( |\$)" "phase $k"
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

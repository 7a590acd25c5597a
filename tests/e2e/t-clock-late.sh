#!/usr/bin/env bash
# t-clock-late: a clock frame that reaches the box late never sets the box's clock back.  The
# host's clock goes to the box before each command, with the ping of a quiet box and every
# few seconds while a command runs; while the init is blocked, here on a stalled workspace
# (virtiofsd stopped, a host edit whose change notice the init applies in the workspace), those
# frames wait in the port, and the box, whose clock is right, looks ahead of them by the stall.
# The init stepped back to one: the command queued behind it saw a clock behind the host's by
# the stall, until the next command put it forward again (found in use: -6956 ms, then +6956
# ms).  Now a guest that seems ahead asks the host, and keeps its clock when the answer agrees.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx exec -- true
id=$(json_get "$(dbx status --json)" 'j["id"]')
console=$DEVBOX_HOME/state/projects/$id/console.log
# the box's clock, twice a second, into its own /tmp (not the workspace, which will stall)
ok dbx exec --detach -- sh -c 'while :; do date +%s >>/tmp/clk; sleep 0.5; done'
sleep 1

mapfile -t vfs < <(vfsd_pids)
[ ${#vfs[@]} -gt 0 ] || fail "no virtiofsd of this test"
kill -STOP "${vfs[@]}"
CLEANUP_HOOKS+=("kill -CONT ${vfs[*]} 2>/dev/null")
echo edit >"$R/edited" # its notice goes first: the init's statx of it waits for virtiofsd
"$DEVBOX" exec -- date +%s >"$TEST_TMP/date.out" 2>"$TEST_TMP/date.err" </dev/null &
w=$!
sleep 8 # the command's clock frame waits behind the notice
kill -CONT "${vfs[@]}"
resumed=$(date +%s)
wait "$w" || fail "the command queued during the stall failed: $(show "$(cat "$TEST_TMP/date.err")")"
after=$(date +%s)
guest=$(cat "$TEST_TMP/date.out")
log "the command queued during the stall: box clock $guest, host $resumed..$after"
((guest >= resumed - 1 && guest <= after)) ||
    fail "the command queued during the stall saw the box's clock at $guest, the host's was $resumed..$after"

late=$(grep -a 'devbox-init: clock: a clock frame came' "$console" | tail -n 1)
[[ $late =~ came\ ([0-9]+)\ ms\ late ]] ||
    fail "the init never got a late clock frame (console: $(show "$(tail -n 5 "$console")"))"
# (The line itself says a frame came a second late or more: the guest asks only then.  How late
# varies: while a command runs the host sends its clock every few seconds, so frames from
# different moments of the stall wait in the port, and an ask unanswered for a second is made
# again on a later one, which the answer then names.)
assert_not_contains "$(cat "$console")" "clock: stepped -" "console: the box's clock set back"

# the box's clock never went back while it ran
ok dbx exec -- sh -c 'awk "NR > 1 && \$1 < p { print \"back \" p \" -> \" \$1 } { p = \$1 }" /tmp/clk; wc -l </tmp/clk'
assert_not_contains "$OUT" "back" "the box's clock, sampled twice a second"
n=$(printf '%s\n' "$OUT" | tail -n 1)
((n >= 15)) || fail "the sampler wrote only $n lines"

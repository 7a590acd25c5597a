#!/usr/bin/env bash
# t-clock: the box's wall clock is never behind the host's.  Files the box writes in the
# workspace carry the host's clock (virtiofsd writes them), so a box clock behind the host's
# sees them as written in its future: `make` warns "Clock skew detected" and may rebuild or skip
# the wrong things.  A guest reads its clock once at boot from an RTC that counts whole seconds
# (up to a second behind), a host that sleeps leaves it further behind, and it drifts.  The
# supervisor sends its clock (DBX_MSG_CLOCK) before SETUP, before a command when the last one
# is a second old, and every few seconds while a command runs; the guest steps to 20 ms past it
# when it lags or leads by less than 5 ms (the frame's trip made it late), or asks and steps
# back when it leads by over a second (the host's clock was set back).
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"

# the guest's clock when a command runs, against the host's just before and just after it:
# never behind, and ahead by the 20 ms lead at most (5 ms of slack for the frame's trip)
check_clock() { # WHAT
    local before after guest
    before=$(date +%s%N)
    ok dbx exec -- ./probe realtime
    guest=$OUT
    after=$(date +%s%N)
    [[ $guest =~ ^[0-9]+$ ]] || fail "$1: probe realtime printed '$guest'"
    ((guest >= before)) ||
        fail "$1: the box's clock is $(((before - guest) / 1000)) us behind the host's"
    ((guest <= after + 25000000)) ||
        fail "$1: the box's clock is $(((guest - after) / 1000000)) ms ahead of the host's"
}

check_clock "first command after boot"
check_clock "second command"

# What make sees: a file the command just wrote in the workspace is never in its future.  Found
# in use: zlib's `make test` in the box warned "File 'minigzip64' has modification time 0.0027
# s in the future" and "Clock skew detected", when the guest stepped to the frame's time itself
# and so stayed behind by the frame's trip.
ok dbx exec -- ./probe skew 5 .skew
assert_contains "$OUT" "future=0" "files written in the workspace, in the box's future (${OUT//$'\n'/ })"
samples=$(sed -n 's/^samples=//p' <<<"$OUT")
((samples >= 50)) || fail "probe skew took $samples samples in 5 s"

# A guest clock that went wrong while the box ran (a host that slept, or a root box user with
# the capability to set it) is put right by the next command a second later.  Setting the
# clock needs CAP_SYS_TIME and a filter that allows clock_settime: a trusted profile.
write_profile "$R" $'[security]\nseccomp = unconfined\ncapabilities = sys_time'
ok dbx trust
ok dbx stop
check_clock "after a restart"
ok dbx exec -u root -- ./probe settime -3600
assert_kv "$OUT" settime OK "setting the box's clock back an hour"
sleep 1.2
check_clock "a second after the box's clock was set back an hour"
ok dbx exec -u root -- ./probe settime 3600
sleep 1.2
check_clock "a second after the box's clock was set forward an hour"

# A command that runs for minutes, its output keeping the guest from the quiet that brings a
# PING: the clock still follows, with no command started in between.  The box's clock is set
# back 200 ms while the probe runs (as a drift would, only faster): the guest steps forward
# again (its console says so; the settime's own clock frame went before it), and from a few
# seconds later on nothing the probe writes is in its future.
id=$(json_get "$(dbx status --json)" 'j["id"]')
console=$DEVBOX_HOME/state/projects/$id/console.log
steps0=$(grep -ac 'clock: stepped +' "$console")
t_start=$(date +%s%N)
dbx exec -- ./probe skew 18 .skew >"$TEST_TMP/skew.out" 2>&1 </dev/null &
skew_pid=$!
sleep 3
ok dbx exec -u root -- ./probe settime -0.2
assert_kv "$OUT" settime OK "setting the box's clock back 200 ms"
t_set=$(date +%s%N)
wait "$skew_pid"
assert_eq 0 "$?" "probe skew beside the settime: $(show "$(cat "$TEST_TMP/skew.out")")"
steps=$(grep -a 'clock: stepped +' "$console" | tail -n +$((steps0 + 1)))
[[ $steps =~ stepped\ \+(1[0-9][0-9]|2[0-9][0-9])\ ms ]] ||
    fail "no step forward of 100-300 ms after the settime (console: $(show "$steps"))"
mapfile -t secs < <(sed -n 's/^skew_max_us=//p' "$TEST_TMP/skew.out")
# probe second i began at t_start + i - 1 or later (the command's own start): from i_from on,
# it began 2 s or more after the settime returned
i_from=$(((t_set - t_start) / 1000000000 + 4))
((${#secs[@]} >= i_from + 2)) ||
    fail "probe skew printed ${#secs[@]} seconds, the settime returned before second $((i_from - 3)): $(show "$(cat "$TEST_TMP/skew.out")")"
for ((i = i_from; i <= ${#secs[@]}; i++)); do
    v=${secs[i - 1]}
    [[ $v =~ ^-?[0-9]+$ ]] || fail "probe skew second $i: '$v' (${secs[*]})"
    ((v <= 0)) ||
        fail "the box's clock was behind in second $i of the command, the settime returned before second $((i_from - 3)) (us by second: ${secs[*]})"
done

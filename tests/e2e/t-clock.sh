#!/usr/bin/env bash
# t-clock: the box's wall clock is the host's when a command starts.  A guest reads its clock
# once at boot from an RTC that counts whole seconds, so it started up to a second behind, and
# `make` in the box then saw files the host had just written as written in its future ("clock
# skew detected", wrong rebuild decisions).  The supervisor sends its clock (DBX_MSG_CLOCK)
# before SETUP and before a command when the last one is a second old; the guest steps to it
# when it lags, or when it leads by over a second (the host's clock was set back).
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"

# the guest's clock when a command runs, against the host's just before and just after it;
# 5 ms of slack for the frame's trip (the guest is behind by that trip at most)
check_clock() { # WHAT
    local before after guest
    before=$(date +%s%N)
    ok dbx exec -- ./probe realtime
    guest=$OUT
    after=$(date +%s%N)
    [[ $guest =~ ^[0-9]+$ ]] || fail "$1: probe realtime printed '$guest'"
    ((guest >= before - 5000000)) ||
        fail "$1: the box's clock is $(((before - guest) / 1000000)) ms behind the host's"
    ((guest <= after + 5000000)) ||
        fail "$1: the box's clock is $(((guest - after) / 1000000)) ms ahead of the host's"
}

check_clock "first command after boot"
check_clock "second command"

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

#!/usr/bin/env bash
# t-net-loopback: the guest init brings the loopback interface up at SETUP (a fresh kernel
# leaves it down), in every network mode: a server a command starts on 127.0.0.1 is reachable
# from another command, which is what forwarded ports and the proxy listener build on.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

ok dbx exec -- cat /sys/class/net/lo/flags
flags=$OUT
[ $((flags & 1)) -eq 1 ] || fail "lo is not up in the guest (flags $flags)"

# a TCP round trip over the guest's loopback, between two commands
ok dbx exec -- sh -c 'nc -l -p 4567 </dev/null >got.txt & sleep 1;
    echo ping | nc -w 1 127.0.0.1 4567; wait'
assert_eq ping "$(cat "$R/got.txt")" "bytes the guest server received"

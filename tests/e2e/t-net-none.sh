#!/usr/bin/env bash
# t-net-none: the default network mode: no network device, only loopback, no proxy.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx exec -- ls /sys/class/net
assert_eq "lo" "$OUT" "interfaces in mode none"
ok dbx exec -- sh -c 'echo "${HTTPS_PROXY:-unset} ${http_proxy:-unset}"; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "'
assert_eq $'unset unset\nlo' "$OUT" "proxy variables and /proc/net/dev"
# loopback works inside
ok dbx exec -- sh -c 'busybox nc -l -p 7000 -e echo looped & sleep 0.5; busybox nc 127.0.0.1 7000 </dev/null'
assert_eq "looped" "$OUT" "loopback inside the box"
# nothing listens on the proxy port
run dbx exec -- busybox nc -w 2 127.0.0.1 3128 </dev/null
assert_box_failed "connect to 127.0.0.1:3128 in mode none"
ok dbx status --json
assert_eq none "$(json_get "$OUT" 'j["network"]')" "status network"
# `--network none` reaches the supervisor as a value, not through devbox's own environment: `-e
# NAME` (which copies NAME from that environment) finds no DEVBOX_NETWORK to pass on.
ok dbx --network none exec -e DEVBOX_NETWORK -- sh -c 'echo "${DEVBOX_NETWORK-unset}"'
assert_eq unset "$OUT" "DEVBOX_NETWORK in the box after --network none"

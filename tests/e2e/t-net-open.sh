#!/usr/bin/env bash
# t-net-open: network mode open (user-mode NAT through passt).  The box reaches a test host
# inside a network namespace the test creates (veth), has eth0 and a resolver, and cannot
# reach servers on the host's loopback or on the host's own addresses.  Needs root (ip netns).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to create a network namespace with a veth test host"
command -v ip >/dev/null || skip "iproute2 not installed"
command -v passt >/dev/null || fail "passt not installed"
import_debian
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# ---- a test host at 10.77.N.2 in its own namespace; the host side is 10.77.N.1 ------------
n=$(($$ % 200 + 20))
netns_host dbxnet "10.77.$n"
WWW=$TEST_TMP/www
mkdir -p "$WWW"
echo "from the test host" >"$WWW/hello"
pf=$TEST_TMP/ns.port
ip netns exec "$NETNS" "$PYTHON" "$E2E_DIR/netserver.py" "$WWW" "$pf" --bind "10.77.$n.2" \
    >>"$TEST_TMP/netserver.log" 2>&1 &
CLEANUP_HOOKS+=("kill $! 2>/dev/null")
wait_until 20 test -s "$pf" || fail "test host server did not start"
NSPORT=$(cat "$pf")
LOOP=$(start_netserver "$WWW")                        # the host's loopback
HOSTADDR=$(start_netserver "$WWW" --bind "10.77.$n.1")  # one of the host's own addresses

write_profile "$R" "[network]
mode = open"
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "network mode 'open'" "refusal of an untrusted open profile"
ok dbx trust

ok dbx exec -- sh -c 'ls /sys/class/net; grep -v "^#" /etc/resolv.conf; echo "proxy=${HTTPS_PROXY:-}"'
assert_eq $'eth0\nlo\nnameserver 10.0.2.3\nproxy=' "$OUT" "interfaces, resolver and no proxy in mode open"
ok dbx exec -- cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6
assert_eq 1 "$OUT" "IPv6 off on eth0 (passt is IPv4-only)"
# passt starts on the guest's first frame: a box that has not used the network has none
SUP=$(ps -o ppid= -p "$(the_qemu_pid)" | tr -d ' ')
passts() { pgrep -P "$SUP" '^passt' | count_lines; }
sleep 3 # the kernel's own frames after the link came up (IPv6's are 1-2 s late) would be here
assert_eq 0 "$(passts)" "passt processes of a box that has not used the network"
# ... nor when it stops (QEMU's hang-up on the socket is no frame)
ok dbx stop
assert_not_contains "$(cat "$DEVBOX_HOME"/state/projects/*/supervisor.log)" "passt started" \
    "the supervisor's log of a box stopped before it used the network"
ok dbx exec -- true
SUP=$(ps -o ppid= -p "$(the_qemu_pid)" | tr -d ' ')
ok dbx exec -- curl -sS --max-time 30 "http://10.77.$n.2:$NSPORT/hello"
assert_eq "from the test host" "$OUT" "the test host in the namespace (the first connection)"
assert_eq 1 "$(passts)" "passt processes after the first connection"
assert_match "$(cat "$DEVBOX_HOME"/state/projects/*/supervisor.log)" \
    "passt started on the guest's first frame, [0-9]+ ms after the VM, in [0-9]+\.[0-9] ms" \
    "the supervisor's log (when passt started and how long its start took)"
run dbx exec -- curl -sS --max-time 10 "http://10.0.2.2:$LOOP/hello"
assert_box_failed "the gateway address must not lead to the host's loopback"
run dbx exec -- curl -sS --max-time 10 "http://127.0.0.1:$LOOP/hello"
assert_box_failed "127.0.0.1 in the box is the box's own loopback"
run dbx exec -- curl -sS --max-time 10 "http://10.77.$n.1:$HOSTADDR/hello"
assert_box_failed "a server on one of the host's own addresses"
run dbx exec -- curl -sS --max-time 10 "http://169.254.169.254/"
assert_box_failed "the metadata address"
ok dbx status --json
assert_eq open "$(json_get "$OUT" 'j["network"]')" "status network"

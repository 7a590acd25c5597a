#!/usr/bin/env bash
# t-qemu-caps: when devbox runs as root, QEMU and passt (network mode open) run with no
# capability at all: CapInh, CapPrm, CapEff, CapBnd and CapAmb are 0 in /proc/PID/status, with
# no_new_privs; passt also runs as an unprivileged uid.  A QEMU escape is not host root's
# capabilities.  (Before, both ran as root with every capability.)
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "the capability drop applies when devbox runs as root"
command -v passt >/dev/null || skip "passt not installed (network mode open)"
import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
write_profile "$R" $'[network]\nmode = open'
ok dbx trust
ok dbx exec -- echo up
assert_eq up "$OUT" "exec with the capability-less QEMU"

# assert_no_caps PID WHAT [SKIP-KEY]: every capability set of PID is empty, no_new_privs is on
assert_no_caps() {
    local st k
    st=$(cat "/proc/$1/status") || fail "$2: no /proc/$1/status"
    for k in CapInh CapPrm CapEff CapBnd CapAmb; do
        [ "$k" = "${3:-}" ] && continue
        assert_eq 0000000000000000 "$(awk -v k="$k:" '$1 == k {print $2}' <<<"$st")" "$2 $k"
    done
    assert_eq 1 "$(awk '$1 == "NoNewPrivs:" {print $2}' <<<"$st")" "$2 NoNewPrivs"
}
q=$(the_qemu_pid)
assert_no_caps "$q" "qemu"

# ---- passt carries traffic as nobody: a test host in a namespace of our own -----------------
# (passt starts on the guest's first frame: this fetch starts it)
command -v ip >/dev/null || skip "iproute2 not installed (traffic check)"
n=$(($$ % 200 + 20))
netns_host dbxcap "10.78.$n"
mkdir -p "$TEST_TMP/www" && echo "through passt" >"$TEST_TMP/www/hello"
pf=$TEST_TMP/ns.port
ip netns exec "$NETNS" "$PYTHON" "$E2E_DIR/netserver.py" "$TEST_TMP/www" "$pf" --bind "10.78.$n.2" \
    >>"$TEST_TMP/netserver.log" 2>&1 &
CLEANUP_HOOKS+=("kill $! 2>/dev/null")
wait_until 20 test -s "$pf" || fail "test host server did not start"
ok dbx exec -- wget -q -O - "http://10.78.$n.2:$(cat "$pf")/hello"
assert_eq "through passt" "$OUT" "a fetch through the capability-less passt"

ok dbx status --json
sup=$(json_get "$OUT" 'j["pid"]')
passt=
for p in /proc/[0-9]*; do
    [[ "$(cat "$p/comm" 2>/dev/null)" == passt* ]] || continue # passt re-execs passt.avx2
    [ "$(awk '{print $4}' "$p/stat" 2>/dev/null)" = "$sup" ] && passt=${p#/proc/}
done
[ -n "$passt" ] || fail "no passt child of the supervisor $sup"
log "passt: $(grep -E '^(Uid|Cap|NoNewPrivs)' "/proc/$passt/status" | tr '\n' ' ')"
uid=$(awk '$1 == "Uid:" {print $2}' "/proc/$passt/status")
assert_ne 0 "$uid" "passt's uid"
# passt (as an unprivileged user) puts itself in a user namespace of its own: its bounding set
# there is the kernel's full one, which reaches nothing outside that namespace; on the host it
# must hold nothing.  Outside such a namespace the bounding set must be empty as well.
if [ "$(readlink "/proc/$passt/ns/user")" = "$(readlink /proc/self/ns/user)" ]; then
    assert_no_caps "$passt" "passt"
else
    assert_no_caps "$passt" "passt" CapBnd
fi

# ... and its destination filter still reads what passt asks for: the host's own address is
# refused
HOSTADDR=$(start_netserver "$TEST_TMP/www" --bind "10.78.$n.1")
run dbx exec -- timeout 10 wget -q -O - "http://10.78.$n.1:$HOSTADDR/hello"
assert_box_failed "a server on one of the host's own addresses"
refused() { grep -q "refused passt connect to 10.78.$n.1:$HOSTADDR" "$DEVBOX_HOME"/state/projects/*/qemu.log; }
wait_until 10 refused || fail "no refusal logged for 10.78.$n.1:$HOSTADDR"

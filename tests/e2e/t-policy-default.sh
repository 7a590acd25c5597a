#!/usr/bin/env bash
# t-policy-default: with no devbox.ini every command runs confined by the built-in default
# profile: in a leaf of cgroup /box (box/s<session>) with its pids limit, as the host user's uid/gid with a HOME inside the
# VM, all capability sets empty, no_new_privs, a seccomp filter; the box cannot reach the agent
# port, the disk or raw memory (not even as guest root, nor by mknod), cannot ptrace PID 1 and
# the VM survives the box signalling PID 1.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"

uid=$(box_uid)
gid=$(box_gid)

# ---- identity, confinement state, cgroup, for the default user and for -u root ----------
ok dbx exec -- sh -c './probe status; ./probe ids; echo "cgroup=$(cat /proc/self/cgroup)"; echo "home=$HOME"'
st=$OUT
assert_confined_status "$st" "default user"
assert_kv "$st" uid "$uid/$uid/$uid" "default user ids"
assert_kv "$st" gid "$gid/$gid/$gid" "default user ids"
assert_kv "$st" cgroup "0::/box/s[0-9]+" "default user"
home=$(kv "$st" home)
assert_match "$home" '^/' "HOME in the box"
[[ $home != "$R" && $home != "$R"/* ]] || fail "HOME $home is inside the shared repository"
ok dbx exec -- sh -c 'test -d "$HOME" && test -w "$HOME" && touch "$HOME/.probe-home" && echo yes'
assert_eq yes "$OUT" "HOME is a writable directory in the VM"
[ ! -e "$R/.probe-home" ] || fail "the box's HOME file showed up in the repository"

ok dbx exec -u root -- sh -c './probe status; ./probe ids; echo "cgroup=$(cat /proc/self/cgroup)"'
assert_confined_status "$OUT" "-u root"
assert_kv "$OUT" uid 0/0/0 "-u root ids"
assert_kv "$OUT" cgroup "0::/box/s[0-9]+" "-u root"

# a child of a child is confined the same way (and stays in the box cgroup)
ok dbx exec -- sh -c 'sh -c "./probe status; echo cgroup=\$(cat /proc/self/cgroup)"'
assert_confined_status "$OUT" "grandchild"
assert_kv "$OUT" cgroup "0::/box/s[0-9]+" "grandchild"

# the default limits are in force in the box cgroup
ok dbx exec -- cat /sys/fs/cgroup/box/pids.max
assert_eq 4096 "$OUT" "pids.max of the default profile"

# files the box makes in the workspace belong to the host user
ok dbx exec -- sh -c 'echo hi > made-in-box.txt && mkdir -p made-dir'
assert_eq "$(id -u):$(id -g)" "$(stat -c %u:%g "$R/made-in-box.txt")" "host owner of a file made in the box"
assert_eq "$(id -u):$(id -g)" "$(stat -c %u:%g "$R/made-dir")" "host owner of a directory made in the box"

# ---- devices: agent port, block devices, raw memory --------------------------------------
# The devices exist in the VM (sysfs knows them), so the checks below are not vacuous.
ok dbx exec -u root -- sh -c 'for f in /sys/class/virtio-ports/*/dev; do echo "port=$(cat "$f")"; done; echo "vda=$(cat /sys/class/block/vda/dev)"'
port=$(kv "$OUT" port) || fail "no virtio port in sysfs: $(show "$OUT")"
vda=$(kv "$OUT" vda)
assert_match "$port" '^[0-9]+:[0-9]+$' "agent port major:minor"
assert_match "$vda" '^[0-9]+:[0-9]+$' "vda major:minor"

for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    ok dbx exec "${u[@]}" -- sh -c './probe open /dev/vport* /dev/hvc0 /dev/vda /dev/vda1 /dev/mem /dev/kmem /dev/port'
    out=$OUT
    while IFS= read -r line; do
        [[ $line == *=* ]] || continue
        assert_match "${line#*=}" '^(EACCES|EPERM|ENOENT)$' "open ${line%%=*} as $who"
    done <<<"$out"
    assert_contains "$out" "/dev/vda=" "probe output as $who"
    # recreating the nodes needs CAP_MKNOD
    ok dbx exec "${u[@]}" -- sh -c "./probe mknod /tmp/p c ${port/:/ }; ./probe mknod /tmp/d b ${vda/:/ }; ./probe mknod /tmp/m c 1 1"
    assert_eq $'mknod=EPERM\nmknod=EPERM\nmknod=EPERM' "$OUT" "mknod of port, vda, mem as $who"
done

# ---- PID 1 -------------------------------------------------------------------------------
ok dbx exec -- cat /proc/sys/kernel/random/boot_id
boot=$OUT
for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    ok dbx exec "${u[@]}" -- ./probe ptrace1
    assert_match "$(kv "$OUT" ptrace1)" '^(EPERM|EACCES)$' "ptrace(PTRACE_ATTACH, 1) as $who"
    run dbx exec "${u[@]}" -- cat /proc/1/environ
    assert_ne 0 "$RC" "reading /proc/1/environ as $who (stdout $(show "$OUT"))"
    # SIGTERM and SIGKILL to PID 1: refused or without effect; the VM carries on
    ok dbx exec "${u[@]}" -- sh -c './probe kill1 15; sleep 1; ./probe kill1 9; sleep 1'
    log "kill(1) as $who: ${OUT//$'\n'/ }"
    ok dbx exec -- cat /proc/sys/kernel/random/boot_id
    assert_eq "$boot" "$OUT" "boot id after signalling PID 1 as $who (the VM must not restart)"
done
ok dbx exec true
assert_eq 1 "$(qemu_pids | count_lines)" "qemu processes after the PID 1 attempts"

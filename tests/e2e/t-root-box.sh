#!/usr/bin/env bash
# t-root-box: devbox run by host root (CI, sudo) does not hand the box root's files: the box
# user is uid 1000 in the guest and maps back to root (the invoking user) on the host; guest
# root and every other guest id land on the high range 2147483648+65536, so guest root's files,
# setuid ones included, are not root's on the host.  virtiofsd runs in a user namespace of its
# own as a high uid: its capabilities exist only in that namespace.  Needs root.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "tests devbox run as host root"
HIGH=2147483648
COUNT=65536
in_high() { [ "$1" -ge $HIGH ] && [ "$1" -lt $((HIGH + COUNT)) ]; }

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
echo host >"$R/by-host.txt"

ok dbx exec -- sh -c 'id -u; id -g'
assert_eq $'1000\n1000' "$OUT" "uid and gid of the default box user for host root"
ok dbx exec -- stat -c %u:%g by-host.txt
assert_eq 1000:1000 "$OUT" "a root-owned workspace file as the box sees it"
ok dbx exec -- sh -c 'echo hi > by-box.txt && mkdir -m 777 shared && chmod 777 shared'
assert_eq 0:0 "$(stat -c %u:%g "$R/by-box.txt")" "host owner of a file the box user made"

ok dbx exec -u root -- sh -c 'id -u; echo r > shared/by-root.txt'
assert_eq 0 "$OUT" "uid with -u root"
owner=$(stat -c %u "$R/shared/by-root.txt")
group=$(stat -c %g "$R/shared/by-root.txt")
in_high "$owner" || fail "a file guest root made is owned by host uid $owner, not the high range"
in_high "$group" || fail "a file guest root made has host gid $group, not the high range"

# a setuid-root file made by guest root is not setuid-root on the host
ok dbx exec -u root -- sh -c 'cp /bin/busybox shared/suid && chmod 4755 shared/suid && stat -c "%u %a" shared/suid'
assert_eq "0 4755" "$OUT" "setuid file as guest root sees it"
read -r owner mode < <(stat -c '%u %a' "$R/shared/suid")
in_high "$owner" || fail "guest root's setuid file is owned by host uid $owner (mode $mode)"
[ "$owner" != 0 ] || fail "guest root made a setuid-root file on the host"

# virtiofsd: a high uid in a user namespace of its own, the map as documented
pids=$(vfsd_pids)
[ -n "$pids" ] || fail "no virtiofsd process found"
init_ns=$(readlink /proc/1/ns/user)
for p in $pids; do
    euid=$(awk '/^Uid:/ {print $3}' "/proc/$p/status")
    in_high "$euid" || fail "virtiofsd $p runs as host uid $euid, expected the high range"
    ns=$(readlink "/proc/$p/ns/user")
    [ -n "$ns" ] && [ "$ns" != "$init_ns" ] || fail "virtiofsd $p is in the initial user namespace ($ns)"
    map=$(awk '{print $1, $2, $3}' "/proc/$p/uid_map")
    assert_eq $'0 2147483648 1000\n1000 0 1\n1001 2147484648 64536' "$map" "uid_map of virtiofsd $p"
    # CapEff is relative to the process's own namespace: with the checks above it grants
    # nothing on host objects (owned by the initial namespace).
    log "virtiofsd $p: euid $euid, $(grep -E '^Cap(Eff|Bnd):' "/proc/$p/status" | tr '\n\t' '  ')"
done
ok dbx stop

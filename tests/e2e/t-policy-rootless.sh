#!/usr/bin/env bash
# t-policy-rootless: the default policy for an ordinary host user (dbxtest, made by rootless_user):
# commands run as the user's uid/gid with every capability set empty, no_new_privs and the
# seccomp filter, in cgroup /box; a setuid-root binary does not help; the protected paths hold
# for the user and for guest root; files land on the host owned by the user.  Needs root.
. "$(dirname "$0")/lib.sh"

rootless_user
ux() { run_in "$RU" as_user timeout 240 "$UD" exec "$@"; }

as_user git init -q "$RU" || fail "git init as $TU"
build_probe "$TEST_TMP"
cp "$TEST_TMP/probe" "$RU/probe"
printf '[submodule "lib"]\n\tpath = lib\n\turl = https://example.invalid/lib.git\n' >"$RU/.gitmodules"
write_profile "$RU" $'[limits]\npids = 2000'
write_attacks "$RU/attacks.sh"
chown -R "$TU:$tgid" "$RU"
run_in "$RU" as_user "$UD" image import "$U/share/rootfs.tar" default
assert_eq 0 "$RC" "image import as $TU: $(show "$ERR")"

ux -- sh -c './probe status; ./probe ids; echo "cgroup=$(cat /proc/self/cgroup)"; echo "home=$HOME"; ./probe sys mount bpf unshare_user read'
st=$OUT
assert_eq 0 "$RC" "exec as $TU: $(show "$ERR")"
assert_confined_status "$st" "$TU"
assert_kv "$st" uid "$tuid/$tuid/$tuid" "ids of $TU in the box"
assert_kv "$st" gid "$tgid/$tgid/$tgid" "gids of $TU in the box"
assert_kv "$st" cgroup "0::/box/s[0-9]+" "$TU"
assert_kv "$st" mount EPERM "$TU: mount"
assert_kv "$st" bpf EPERM "$TU: bpf"
assert_kv "$st" unshare_user EPERM "$TU: unshare(CLONE_NEWUSER)"
assert_kv "$st" read EBADF "$TU: read(-1)"
home=$(kv "$st" home)
[[ $home == /* && $home != "$RU" && $home != "$RU"/* ]] || fail "HOME of $TU in the box: $(show "$home")"
ux -- sh -c 'touch "$HOME/x" && echo ok'
assert_eq ok "$OUT" "HOME of $TU is writable in the box"

ux -- sh -c 'echo hi > out.txt; mkdir -p od; ln -sf /usr/bin/suidtest /tmp/id; /tmp/id -u'
assert_eq "$tuid" "$OUT" "setuid-root busybox id -u as $TU"
assert_eq "$tuid:$tgid" "$(stat -c %u:%g "$RU/out.txt")" "host owner of a file $TU made in the box"
assert_eq "$tuid:$tgid" "$(stat -c %u:%g "$RU/od")" "host owner of a directory $TU made in the box"

ux -u root -- ./probe status
assert_confined_status "$OUT" "guest root of $TU"

before=$(cd "$RU" && fingerprint devbox.ini .gitmodules .git/config .git/hooks)
ux -- sh attacks.sh
assert_all_blocked "$OUT" "$TU"
ux -u root -- sh attacks.sh
assert_all_blocked "$OUT" "guest root of $TU"
assert_eq "$before" "$(cd "$RU" && fingerprint devbox.ini .gitmodules .git/config .git/hooks)" "protected paths on the host"

run_in "$RU" as_user timeout 60 "$UD" stop
assert_eq 0 "$RC" "stop as $TU: $(show "$ERR")"
assert_no_vm_procs 10

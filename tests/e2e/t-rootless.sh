#!/usr/bin/env bash
# t-rootless: the whole flow as an ordinary user (dbxtest, with /etc/subuid and /etc/subgid
# ranges): import, exec, file ownership on the host, stop.  Needs root to set the user up.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to create and switch to the test user"
command -v runuser >/dev/null || skip "runuser not installed"
command -v newuidmap >/dev/null || fail "newuidmap missing (package uidmap)"

TU=dbxtest
if ! id "$TU" >/dev/null 2>&1; then
    useradd -m -s /bin/bash "$TU" || fail "useradd $TU"
fi
if ! grep -q "^$TU:" /etc/subuid || ! grep -q "^$TU:" /etc/subgid; then
    usermod --add-subuids 200000-265535 --add-subgids 200000-265535 "$TU" || fail "usermod --add-subuids"
fi
tuid=$(id -u "$TU")
tgid=$(id -g "$TU")
IFS=: read -r _ sub_start sub_count < <(grep "^$TU:" /etc/subuid | head -n 1)
log "user $TU uid $tuid gid $tgid, subuids $sub_start+$sub_count"

# Everything the user needs, in places it can reach: the binaries, the image, the kernel.
chmod 711 "$TEST_TMP"
U=$TEST_TMP/u
mkdir -p "$U/bin" "$U/share" "$U/home"
cp "$DEVBOX" "$U/bin/devbox" || fail "copy devbox"
init=${DEVBOX_INIT:-$(dirname "$DEVBOX")/devbox-init}
[ -f "$init" ] || fail "guest init not found at $init"
cp "$init" "$U/bin/devbox-init" || fail "copy devbox-init"
cp "$DBX_TEST_IMAGE" "$U/share/rootfs.tar"
cp "$DEVBOX_KERNEL_DEB" "$U/share/$(basename "$DEVBOX_KERNEL_DEB")"
chmod 755 "$U" "$U/bin" "$U/share" "$U/bin/"*
chmod 644 "$U/share/"*
chown "$TU:$tgid" "$U/home"
chmod 700 "$U/home"

as_user() {
    runuser -u "$TU" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$U/home" USER="$TU" \
        LOGNAME="$TU" DEVBOX_HOME="$U/home/dbx" DEVBOX_ACCEL="$DEVBOX_ACCEL" \
        DEVBOX_KERNEL_DEB="$U/share/$(basename "$DEVBOX_KERNEL_DEB")" "$@"
}
UD="$U/bin/devbox"
RU=$U/home/repo
CLEANUP_HOOKS+=("as_user timeout 60 $UD -C $RU stop >/dev/null 2>&1 </dev/null")

as_user git init -q "$RU" || fail "git init as $TU"
run_in "$RU" as_user "$UD" image import "$U/share/rootfs.tar" default
assert_eq 0 "$RC" "image import as $TU: $(show "$ERR")"

run_in "$RU" as_user timeout 240 "$UD" exec -- sh -c 'echo hi > out.txt; id -u; exit 7'
assert_eq 7 "$RC" "exit code of exec as $TU (stderr: $(show "$ERR"))"
assert_eq "$tuid" "$OUT" "guest uid of the default user"
assert_file "$RU/out.txt"
assert_eq hi "$(cat "$RU/out.txt")" "content of out.txt"
assert_eq "$tuid:$tgid" "$(stat -c %u:%g "$RU/out.txt")" "host owner of a file the default user made"

# guest root's files land on a subordinate id: neither the user nor real root.  Guest root
# has no capabilities under the default profile (no CAP_DAC_OVERRIDE), so it writes into a
# directory the user made world-writable.
run_in "$RU" as_user timeout 120 "$UD" exec -- sh -c 'mkdir -m 777 shared && chmod 777 shared'
assert_eq 0 "$RC" "mkdir a world-writable dir as $TU (stderr: $(show "$ERR"))"
run_in "$RU" as_user timeout 120 "$UD" exec -u root -- sh -c 'echo r > shared/by-root.txt; id -u'
assert_eq 0 "$RC" "exec -u root as $TU (stderr: $(show "$ERR"))"
assert_eq 0 "$OUT" "uid of -u root"
run_in "$RU" as_user timeout 120 "$UD" exec -u root -- sh -c 'echo r > root-denied.txt'
[ "$RC" != 0 ] || fail "guest root without capabilities wrote into the user's 0755 repo"
owner=$(stat -c %u "$RU/shared/by-root.txt")
[ "$owner" != 0 ] && [ "$owner" != "$tuid" ] || fail "file by guest root owned by host uid $owner"
if [ -n "$sub_start" ] && [ -n "$sub_count" ]; then
    [ "$owner" -ge "$sub_start" ] && [ "$owner" -lt $((sub_start + sub_count)) ] ||
        fail "file by guest root owned by $owner, outside $TU's subordinate range $sub_start+$sub_count"
fi

# stdin and a pipe as the user
got=$(printf 'a\nb\n' | (cd "$RU" && as_user timeout 120 "$UD" exec -i -- wc -l))
assert_eq 2 "$(echo $got)" "wc -l through -i as $TU"

# nothing of this VM runs as real root
for p in $(test_pids '^(qemu-system.*|virtiofsd)$'); do
    euid=$(awk '/^Uid:/ {print $3}' "/proc/$p/status" 2>/dev/null)
    [ -z "$euid" ] || [ "$euid" != 0 ] || fail "process $(describe_pids "$p")runs as root in a rootless setup"
done
[ -n "$(test_pids '^qemu-system')" ] || fail "no qemu process found for $TU's VM"

run_in "$RU" as_user "$UD" status --json
assert_eq 0 "$RC" "status as $TU"
assert_eq running "$(json_get "$OUT" 'j["state"]')" "state as $TU"

run_in "$RU" as_user timeout 60 "$UD" stop
assert_eq 0 "$RC" "stop as $TU: $(show "$ERR")"
assert_no_vm_procs 10
run_in "$RU" as_user "$UD" status --json
assert_eq stopped "$(json_get "$OUT" 'j["state"]')" "state after stop as $TU"

# and it boots again from the same disk
run_in "$RU" as_user timeout 240 "$UD" exec -- cat shared/by-root.txt
assert_eq 0 "$RC" "exec after stop as $TU (stderr: $(show "$ERR"))"
assert_eq r "$OUT" "file content after restart"

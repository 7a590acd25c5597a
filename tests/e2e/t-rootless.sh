#!/usr/bin/env bash
# t-rootless: the whole flow as an ordinary user (dbxtest, with /etc/subuid and /etc/subgid
# ranges): import, exec, file ownership on the host (guest root's on a subordinate id, a
# workspace setup's the user's), stop.  Needs root to set the user up.
. "$(dirname "$0")/lib.sh"

rootless_user

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
[ -n "$sub_start" ] && [ -n "$sub_count" ] || fail "no subordinate range for $TU in /etc/subuid"
[ "$owner" -ge "$sub_start" ] && [ "$owner" -lt $((sub_start + sub_count)) ] ||
    fail "file by guest root owned by $owner, outside $TU's subordinate range $sub_start+$sub_count"

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

# what [setup] with workspace = true writes into the workspace is the user's own (in a setup VM
# guest root is the user there), which the user can remove; found in use: `npm ci` in setup
# left a node_modules owned by a subordinate id, and `rm -rf node_modules` was refused
as_user sh -c "printf '[setup]\nrun = mkdir -p %s/deps/sub\n      echo dep > %s/deps/sub/file\nnetwork = none\nworkspace = true\n' '$RU' '$RU' > '$RU/devbox.ini'" ||
    fail "write devbox.ini as $TU"
run_in "$RU" as_user timeout 60 "$UD" stop
run_in "$RU" as_user "$UD" trust
assert_eq 0 "$RC" "trust as $TU: $(show "$ERR")"
run_in "$RU" as_user timeout 240 "$UD" exec -- cat deps/sub/file
assert_eq 0/dep "$RC/$OUT" "a setup with the workspace as $TU (stderr: $(show "$ERR"))"
for f in "$RU/deps" "$RU/deps/sub" "$RU/deps/sub/file"; do
    assert_eq "$tuid:$tgid" "$(stat -c %u:%g "$f")" "host owner of $f, written by setup as $TU"
done
as_user rm -r "$RU/deps" || fail "$TU cannot remove what setup wrote into the workspace"

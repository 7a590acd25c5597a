#!/usr/bin/env bash
# t-gc: cleaning up after projects that are gone.  One real box (a record, disk, logs and run dir
# as a start leaves them) and records made by hand for the others (no boot needed): ls marks a
# project whose repository was deleted as gone; gc --dry-run removes nothing; gc removes the gone
# project (not the running one) and says how much space came back; rm --all skips the running
# box; stop --all stops every running box; a box whose repository was deleted under it is kept by
# gc, which says that `devbox stop ID` stops it, and is stopped by that; rm PATH of a deleted
# repository works; nothing of a removed project is left anywhere under DEVBOX_HOME.
. "$(dirname "$0")/lib.sh"

H=$DEVBOX_HOME
import_image

# fake_project NAME: a repo and the record, disk and state a start would leave (no VM); prints
# the project's id.
fake_project() {
    local root id
    root=$(realpath "$(make_repo "$1")") || fail "make_repo $1"
    id=$(printf '%s' "$root" | sha256sum | cut -c1-16)
    mkdir -p "$H/state/projects/$id/procs" "$H/data/projects/$id" "$H/run/$id" || fail "mkdir $id"
    printf '{"root": "%s", "image": "default", "base": "/nonexistent.raw", "created": 1}\n' \
        "$root" >"$H/state/projects/$id/project.json"
    head -c 1048576 /dev/urandom >"$H/data/projects/$id/disk.qcow2"
    echo log >"$H/state/projects/$id/console.log"
    echo '{"type":"started"}' >"$H/state/projects/$id/events.jsonl"
    echo out >"$H/state/projects/$id/procs/42.log"
    printf '%s\n' "$id"
}

# left ID ROOT: what of project ID (or naming ROOT) is anywhere under DEVBOX_HOME
left() {
    find "$H" -name "*$1*" 2>/dev/null
    grep -rlF -- "$2" "$H" 2>/dev/null
}

ls_field() { # ID EXPR: an ls --json entry's field
    local out
    out=$(dbx ls --json </dev/null) || fail "ls --json failed"
    json_get "$out" "[e for e in j if e['id'] == '$1'][0]$2"
}

# ---- the real box (running), a project to be gone, one that stays ---------------------------
R1=$(make_repo real)
cd "$R1" || fail "cd $R1"
ok dbx exec -- true
q=$(the_qemu_pid)
ID1=$(json_get "$(dbx status --json </dev/null)" "j['id']")
# what detached processes and the events journal leave in the state dir
mkdir -p "$H/state/projects/$ID1/procs" && echo out >"$H/state/projects/$ID1/procs/7.log"
echo '{"type":"exec"}' >"$H/state/projects/$ID1/events.jsonl"

IDG=$(fake_project gone)
RG=$(realpath "$TEST_TMP/repos/gone")
IDK=$(fake_project kept)
rm -rf --one-file-system -- "$RG"

ok dbx ls
assert_match "$OUT" "$IDG  gone " "ls line of the deleted repository"
assert_match "$OUT" "$IDK  stopped " "ls line of a stopped project"
assert_match "$OUT" "$ID1  running " "ls line of the running box"
assert_eq true "$(ls_field "$IDG" "['repo_missing']")" "repo_missing of the deleted repository"
assert_eq false "$(ls_field "$IDK" "['repo_missing']")" "repo_missing of an existing one"
assert_eq stopped "$(ls_field "$IDG" "['state']")" "state in ls --json of the gone project"

# ---- gc --dry-run removes nothing; gc removes the gone project only --------------------------
before=$(find "$H" | sort)
ok dbx gc --dry-run
assert_contains "$OUT" "would remove project $RG" "gc --dry-run"
assert_match "$OUT" "would remove 1 project, .*would be freed" "gc --dry-run summary"
assert_eq "$before" "$(find "$H" | sort)" "files under DEVBOX_HOME after gc --dry-run"

ok dbx gc
assert_contains "$OUT" "removed project $RG" "gc"
assert_match "$OUT" "removed 1 project, [0-9]+ derived disks?, [0-9]+ leftovers?: [0-9.]+[BKMG] freed" \
    "gc summary"
assert_eq "" "$(left "$IDG" "$RG")" "files of the gone project after gc"
kill -0 "$q" 2>/dev/null || fail "gc stopped the running box"
[ -e "$H/run/$ID1/sock" ] || fail "gc removed the running box's socket"
[ -f "$H/data/projects/$IDK/disk.qcow2" ] || fail "gc removed a live project's disk"

# ---- rm --all without --force skips the running box ----------------------------------------
ok dbx rm --all
assert_contains "$ERR" "skipped '$R1': it is running" "rm --all stderr"
assert_match "$OUT" "removed 1 project: [0-9.]+[BKMG] freed" "rm --all summary"
assert_eq "" "$(left "$IDK" "$(realpath "$TEST_TMP/repos/kept")")" "files of a project after rm --all"
kill -0 "$q" 2>/dev/null || fail "rm --all without --force stopped the running box"
ok dbx exec -- true

# ---- stop --all stops every running box, and says which ------------------------------------
cd "$TEST_TMP" || fail "cd $TEST_TMP"
ok dbx stop --all
assert_eq "stopped $R1 ($ID1)
stopped 1 box" "$OUT" "stop --all"
assert_no_vm_procs 10
ok dbx stop --all
assert_eq "stopped 0 boxes" "$OUT" "stop --all with nothing running"
expect_rc 125 dbx stop --all "$R1"
assert_contains "$ERR" "--all takes no PATH or ID" "stop --all PATH"

# ---- the real project's repository deleted under its running box: gc keeps it and says how to
# stop it; stop ID does; then gone in ls, rm PATH removes everything ---------------------------
ok dbx -C "$R1" exec -- true
rm -rf --one-file-system -- "$R1"
ok dbx ls
assert_match "$OUT" "$ID1  running .*$R1 \(gone\)" "ls line of a running box whose repository is gone"
ok dbx gc
assert_contains "$OUT" "kept project $R1: its repository is gone but its box is running; 'devbox stop $ID1' stops it" "gc of a running gone project"
[ -n "$(qemu_pids)" ] || fail "gc stopped a running box"
ok dbx stop "$ID1"
assert_no_vm_procs 10
ok dbx ls
assert_match "$OUT" "$ID1  gone " "ls line of the real project after its repository was deleted"
run dbx rm "${ID1:0:3}"
[ "$RC" = 125 ] || fail "rm of a 3-digit id prefix: rc $RC"
run dbx rm "$R1/sub/dir"
[ "$RC" = 125 ] || fail "rm of a path below a project's root: rc $RC"
assert_contains "$ERR" "lies inside project '$R1'" "rm of a path below a project's root"
ok dbx rm "$R1"
assert_match "$OUT" "^removed $R1 \\($ID1\\): [0-9.]+[BKMG] freed$" "rm PATH output"
assert_eq "" "$(left "$ID1" "$R1")" "files of the real project after rm PATH"
run dbx rm "$R1"
[ "$RC" = 125 ] || fail "a second rm of the same path: rc $RC"
assert_contains "$ERR" "not a project devbox knows" "a second rm"

# ---- rm --all --force of what is left; nothing of any project remains -----------------------
IDL=$(fake_project last)
ok dbx rm --all --force
assert_match "$OUT" "removed 1 project: " "rm --all --force summary"
assert_eq "" "$(ls -A "$H/state/projects" "$H/data/projects" 2>/dev/null | grep -v ':$' | grep .)" \
    "project dirs after rm --all"
assert_eq "" "$(left "$IDL" "$TEST_TMP/repos/last")" "files of the last project"

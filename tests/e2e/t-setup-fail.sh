#!/usr/bin/env bash
# t-setup-fail: a [setup] command that fails stops setup there: `devbox exec` exits 125 with one
# line naming devbox.ini:LINE, the exit code and the command; the later commands do not run;
# the box refuses every command (each exec tries setup again and fails the same way) until
# devbox.ini is fixed and trusted.  A setup with workspace = true reads the project, and what it
# writes there is the user's on the host.  The busybox image.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# devbox.ini: line 1 [setup], line 2 "run = " + the first command, then one command a line
CMDS=(
    "echo one > /setup-one"
    "echo about to fail && exit 3"
    "echo three > /setup-three"
)
write_profile "$R" "[setup]
$(setup_run "${CMDS[@]}")"
assert_eq "      ${CMDS[1]}" "$(sed -n 3p "$R/devbox.ini")" "line 3 of devbox.ini (the failing command)"
ok dbx trust

# check_failure WHAT: the exec in RC/OUT/ERR failed in setup line 2 (devbox.ini:3), line 3 unrun
check_failure() {
    local what=$1 lines
    assert_eq 125 "$RC" "$what: exit code (stderr: $(show "$ERR"))"
    assert_eq "" "$OUT" "$what: stdout (the command must not run)"
    lines=$(printf '%s\n' "$ERR" | grep -F 'setup command failed')
    assert_one_line "$lines" "$what: lines saying the setup command failed"
    assert_match "$lines" "^devbox: (/[^ ]*/)?devbox\.ini:3: setup command failed with exit code 3: ${CMDS[1]}( \(.*\))?$" \
        "$what: the failure line"
    assert_eq "$lines" "$(printf '%s\n' "$ERR" | tail -n 1)" "$what: the failure line is the last line of stderr"
    assert_setup_progress "$ERR" 3 "$what" "${CMDS[0]}" "${CMDS[1]}"
    assert_contains "$ERR" "about to fail" "$what: the failing command's output"
}

run dbx exec -- echo must-not-run
check_failure "first exec"
ok dbx logs --setup
assert_setup_progress "$OUT" 3 "devbox logs --setup after the failure" "${CMDS[0]}" "${CMDS[1]}"
assert_contains "$OUT" "about to fail" "devbox logs --setup: the failing command's output"

# the box refuses commands: every exec runs setup again and fails the same way
run dbx exec -- echo must-not-run
check_failure "second exec"

# ---- fixed: untrusted again (the bytes changed), then setup runs to the end ----------------
CMDS[1]="echo fixed"
write_profile "$R" "[setup]
$(setup_run "${CMDS[@]}")"
expect_rc 125 dbx exec -- true
assert_one_line "$ERR" "refusal of the fixed but untrusted [setup]"
assert_contains "$ERR" "setup runs 'echo fixed' as root" "refusal of the fixed but untrusted [setup]"
assert_contains "$ERR" "devbox trust" "refusal of the fixed but untrusted [setup]"
ok dbx trust
ok dbx exec -- cat /setup-one /setup-three
assert_eq $'one\nthree' "$OUT" "files written by setup lines 1 and 3 after the fix"
assert_setup_progress "$ERR" 3 "stderr of the start after the fix" "${CMDS[@]}"
assert_contains "$ERR" "fixed" "stderr of the start after the fix: the fixed command's output"
ok dbx exec -- echo runs
assert_eq runs "$OUT" "a command after setup succeeded"

# ---- a shared setup does not see the project; workspace = true does ----------------------------
echo "project data" >"$R/project-file"
write_profile "$R" "[setup]
run = cat $R/project-file > /from-workspace
network = none"
ok dbx stop
ok dbx trust
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "setup command failed with exit code 1: cat $R/project-file" \
    "a shared setup reading the workspace"
assert_contains "$ERR" "without the workspace unless [setup] workspace = true" \
    "the failure says where setup runs"
write_profile "$R" "[setup]
run = cat $R/project-file > /from-workspace
      mkdir -p $R/deps/sub
      echo dep > $R/deps/sub/file
network = none
workspace = true"
ok dbx trust
ok dbx exec -- cat /from-workspace
assert_eq "project data" "$OUT" "a setup with workspace = true read the project's file"
# what setup (root in its VM) wrote into the workspace is the user's on the host, as the box
# user's writes are: the box user and the user can change and remove it (found in use: `npm
# ci` in [setup] left a node_modules owned by a subordinate id, which `rm -rf` could not remove)
for f in "$R/deps" "$R/deps/sub" "$R/deps/sub/file"; do
    assert_eq "$(id -u):$(id -g)" "$(stat -c %u:%g "$f")" "owner on the host of $f, written by setup"
done
ok dbx exec -- sh -c "echo box >> $R/deps/sub/file && mkdir $R/deps/sub/more && cat $R/deps/sub/file"
assert_eq $'dep\nbox' "$OUT" "the box user changing what setup wrote"
rm -r "$R/deps" || fail "remove what setup wrote into the workspace" # (as the user: t-rootless)

# ---- devbox stop while setup runs: the starting command fails, nothing is left running --------
write_profile "$R" "[setup]
run = sleep 600
network = none"
ok dbx stop
ok dbx trust
dbx exec -- echo must-not-run >"$TEST_TMP/bg.out" 2>"$TEST_TMP/bg.err" &
bg=$!
for _ in $(seq 1 120); do
    grep -q 'setup \[1/1\]' "$TEST_TMP/bg.err" 2>/dev/null && break
    sleep 1
done
grep -q 'setup \[1/1\]' "$TEST_TMP/bg.err" || fail "setup did not start: $(show "$(cat "$TEST_TMP/bg.err")")"
run dbx status
assert_eq 0 "$RC" "exit code of status while setup runs"
ok dbx stop
wait "$bg"
bgrc=$?
assert_eq 125 "$bgrc" "exit code of the exec whose setup was stopped"
assert_not_contains "$(cat "$TEST_TMP/bg.out")" "must-not-run" "stdout of the exec whose setup was stopped"
assert_no_vm_procs 10

#!/usr/bin/env bash
# t-trust: a devbox.ini that widens the built-in default is refused (exit 125, one line naming
# every widening, no VM started) until `devbox trust`; trust covers exactly those bytes (an
# edit needs trust again); a narrowing profile never needs it; `devbox status` says when
# devbox.ini changed under a running VM, which keeps its policy until stop.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"
msg_tail="); review it and run 'devbox trust' to allow it"

# ---- one widening: a capability ---------------------------------------------------------
write_profile "$R" $'[security]\ncapabilities = net_admin'
expect_rc 125 dbx exec -- true
assert_one_line "$ERR" "refusal"
assert_eq "devbox: $R/devbox.ini widens the default profile (capability 'net_admin'$msg_tail" \
    "$ERR" "refusal message"
assert_eq "" "$OUT" "stdout of a refused exec"
assert_eq 0 "$(qemu_pids | count_lines)" "qemu processes after a refused exec (none may start)"
expect_rc 1 dbx profile check
assert_contains "$ERR" "capability 'net_admin'" "profile check of an untrusted widening"

ok dbx trust
assert_contains "$OUT" "net_admin" "devbox trust output"
ok dbx profile check
assert_match "$OUT" "^ok \(widens the default profile, trusted by you: capability 'net_admin'\)$" "profile check after trust"
# capabilities are for uid 0 in the box: the box user keeps none, -u root gets net_admin
ok dbx exec -- ./probe status
assert_kv "$OUT" CapEff 0000000000000000 "box user's CapEff with capabilities = net_admin"
assert_kv "$OUT" CapBnd 0000000000000000 "box user's CapBnd with capabilities = net_admin"
ok dbx exec -u root -- ./probe status
# CAP_NET_ADMIN is 12: bit 0x1000, in the effective and bounding sets; nothing else
assert_kv "$OUT" CapEff 0000000000001000 "CapEff with capabilities = net_admin"
assert_kv "$OUT" CapPrm 0000000000001000 "CapPrm with capabilities = net_admin"
assert_kv "$OUT" CapBnd 0000000000001000 "CapBnd with capabilities = net_admin"
assert_kv "$OUT" NoNewPrivs 1 "NoNewPrivs with capabilities = net_admin"
assert_kv "$OUT" Seccomp 2 "Seccomp with capabilities = net_admin"
# the trust record lives outside the repository
ok git -C "$R" status --porcelain --ignored
assert_eq $'?? devbox.ini\n?? probe' "$OUT" "repository content after trust"

# ---- status while running: unchanged, then changed on disk -------------------------------
ok dbx status --json
assert_eq false "$(json_get "$OUT" 'j.get("profile_changed")')" "profile_changed right after start"
printf '# a comment changes the bytes\n' >>"$R/devbox.ini"
ok dbx status --json
assert_eq true "$(json_get "$OUT" 'j.get("profile_changed")')" "profile_changed after editing devbox.ini"
ok dbx status
grep -q '^profile  *devbox.ini changed since the VM started' <<<"$OUT" ||
    fail "devbox status (text) after the edit: no 'profile ... changed since the VM started' line in $(show "$OUT")"
# the running VM keeps the policy it started with
ok dbx exec -u root -- ./probe status
assert_kv "$OUT" CapEff 0000000000001000 "CapEff in the running VM after the edit"

# ---- the edit needs trust again ----------------------------------------------------------
restart
expect_rc 125 dbx exec -- true
assert_eq "devbox: $R/devbox.ini widens the default profile (capability 'net_admin'$msg_tail" \
    "$ERR" "refusal after an edit of a trusted profile"
assert_eq 0 "$(qemu_pids | count_lines)" "qemu processes after the refusal"
ok dbx trust
ok dbx exec -- true
ok dbx status --json
assert_eq false "$(json_get "$OUT" 'j.get("profile_changed")')" "profile_changed after restart"

# ---- everything that widens, in one refusal ----------------------------------------------
restart
over=$(($(nproc) + 1))
write_profile "$R" "[box]
cpus = $over
memory = 3G

[security]
user = root
capabilities = net_admin, sys_ptrace
seccomp = unconfined
no_new_privileges = false

[workspace]
unprotect = .git/hooks

[network]
mode = open"
expect_rc 125 dbx exec -- true
assert_one_line "$ERR" "refusal of many widenings"
assert_match "$ERR" "^devbox: $R/devbox.ini widens the default profile \(.*\); review it and run 'devbox trust' to allow it$" "refusal of many widenings"
for w in "capability 'net_admin'" "capability 'sys_ptrace'" "seccomp 'unconfined'" \
    "no_new_privileges false" "unprotects '.git/hooks'" "network mode 'open'" "cpus $over" \
    "memory 3G" "user 'root'"; do
    assert_contains "$ERR" "$w" "refusal of many widenings"
done
assert_eq 0 "$(qemu_pids | count_lines)" "qemu processes after the refusal"

# each widening alone is refused too
for body in $'[box]\ncpus = '"$over" $'[box]\nmemory = 3G' $'[security]\nuser = root' \
    $'[workspace]\nunprotect = devbox.ini' $'[network]\nmode = allowlist\nallow = example.org' \
    $'[security]\nno_new_privileges = false' $'[limits]\npids = 100000' \
    $'[security]\nuser = 0:0' $'[security]\nuser = 1000:0' $'[security]\nuser = 0'; do
    write_profile "$R" "$body"
    expect_rc 125 dbx exec -- true
    assert_contains "$ERR" "widens the default profile" "refusal of $(show "$body")"
done
assert_eq 0 "$(qemu_pids | count_lines)" "qemu processes after the refusals"

# ---- a narrowing profile never needs trust -------------------------------------------------
write_profile "$R" $'[limits]\npids = 100\n\n[security]\nseccomp = strict\n\n[workspace]\nprotect = secrets'
ok dbx profile check
assert_eq ok "$OUT" "profile check of a narrowing profile"
ok dbx trust
assert_contains "$OUT" "nothing to trust" "devbox trust of a narrowing profile"
ok dbx exec -- sh -c './probe status; echo "pids=$(cat /sys/fs/cgroup/box/pids.max)"'
assert_confined_status "$OUT" "narrowing profile"
assert_kv "$OUT" pids 100 "pids.max of a narrowing profile"
# and editing it keeps it runnable without trust
restart
printf '# edited\n' >>"$R/devbox.ini"
ok dbx exec -- true

# ---- going back to bytes trusted before does not ask again --------------------------------
restart
write_profile "$R" $'[security]\ncapabilities = net_admin'
ok dbx exec -u root -- ./probe status
assert_kv "$OUT" CapEff 0000000000001000 "CapEff of a profile trusted earlier"

# ---- trust is per repository: the same bytes elsewhere are not trusted --------------------
R2=$(make_repo other)
cp "$R/devbox.ini" "$R2/devbox.ini"
run_in "$R2" dbx exec -- true
assert_eq 125 "$RC" "exec in another repo with the same (there untrusted) devbox.ini: $(show "$ERR")"

# ---- a linked worktree shares its repository's trust: the same bytes, the same widenings ----
# (`git worktree add` checks the committed devbox.ini out again; agents make one per task)
git -C "$R" add devbox.ini && git -C "$R" commit -qm profile || fail "commit devbox.ini"
WT=$TEST_TMP/repos/wt
git -C "$R" worktree add -q "$WT" -b wt >/dev/null 2>&1 || fail "git worktree add"
CLEANUP_HOOKS+=("timeout 60 '$DEVBOX' -C '$WT' stop >/dev/null 2>&1 </dev/null")
cp "$R/probe" "$WT/probe"
run_in "$WT" dbx exec -u root -- ./probe status
assert_eq 0 "$RC" "exec in a linked worktree with the trusted devbox.ini: $(show "$ERR")"
assert_kv "$OUT" CapEff 0000000000001000 "CapEff in the linked worktree"
run_in "$WT" dbx stop
# its own edit is its own bytes
printf '# edited in the worktree\n' >>"$WT/devbox.ini"
run_in "$WT" dbx exec -- true
assert_eq 125 "$RC" "exec in the worktree after an edit there: $(show "$ERR")"
git -C "$WT" checkout -q devbox.ini
# the same bytes that widen differently there (a read-write folder of the repo is its real
# path, another in each worktree) are not the trusted ones
mkdir -p "$R/data" "$WT/data"
write_profile "$R" $'[mounts]\ndata = /data:rw'
cp "$R/devbox.ini" "$WT/devbox.ini"
(cd "$R" && ok dbx trust)
run_in "$WT" dbx exec -- true
assert_eq 125 "$RC" "exec in the worktree with a profile whose widening names the main's folder: $(show "$ERR")"
assert_contains "$ERR" "$WT/data" "the worktree's refusal names its own folder"

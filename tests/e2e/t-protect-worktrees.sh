#!/usr/bin/env bash
# t-protect-worktrees: a repository with a submodule and a linked worktree (`git worktree add`)
# in which the submodule is checked out too, so that its git directory lives in the worktree's
# entry, .git/worktrees/wt/modules/sub, where host git reads its config when it works in the
# worktree's submodule.  From the linked worktree's box and from the main worktree's box alike:
# that config, the entry's pointers and config.worktree, and new entries are out of the box's
# reach (a marker command never runs after host `git status` there); git keeps working in the
# linked worktree's box, a commit in its submodule included; the main worktree's box, to which
# the linked checkout looks missing, cannot prune its entry; a tree whose `.git` file names the
# worktree's entry is no worktree of the repository.
. "$(dirname "$0")/lib.sh"

submodule_repo # $R with submodule sub, host git "${HG[@]}", markers in $M
GD=$R/.git
WT=$TEST_TMP/repos/wt
"${HG[@]}" worktree add -q "$WT" -b side >/dev/null 2>&1 || fail "git worktree add"
"${HG[@]}" -C "$WT" submodule -q update --init >/dev/null 2>&1 || fail "submodule in the worktree"
CLEANUP_HOOKS+=("timeout 60 '$DEVBOX' -C '$WT' stop >/dev/null 2>&1 </dev/null")
E=$GD/worktrees/wt
[ -f "$E/modules/sub/config" ] || fail "no $E/modules/sub: $(ls "$E" 2>&1)"

# Each attack would make host git run `touch $M/NAME`, or point it elsewhere; all must fail.
cat >"$TEST_TMP/attacks.sh" <<ATT # (copied into each workspace)
M=$M E=$E
try() { name=\$1; shift; if sh -c "\$*" 2>/dev/null; then echo "ALLOWED \$name"; fi; }
try sub-config    "printf '[core]\n\tfsmonitor = touch \$M/sub-config\n' >> \$E/modules/sub/config"
try sub-config-wt "printf '[core]\n\tfsmonitor = touch \$M/sub-config-wt\n' > \$E/modules/sub/config.worktree"
try sub-hooks     "printf '#!/bin/sh\ntouch \$M/sub-hooks\n' > \$E/modules/sub/hooks/post-checkout"
try sub-mv        "mv \$E/modules/sub \$E/modules/sub2"
try sub-new       "mkdir \$E/modules/evil"
try config-wt     "printf '[core]\n\tfsmonitor = touch \$M/config-wt\n' > \$E/config.worktree"
try entry-config  "printf '[core]\n\tfsmonitor = touch \$M/entry-config\n' > \$E/config"
try entry-hooks   "mkdir \$E/hooks"
try commondir     "echo /tmp > \$E/commondir"
try gitdir        "echo /tmp > \$E/gitdir"
try entry-mv      "mv \$E \$E.old"
try entry-new     "mkdir $GD/worktrees/new"
echo done
ATT
PROTECTED=("$E/modules/sub/config" "$E/modules/sub/hooks" "$E/commondir" "$E/gitdir")
BG=(git -c user.name=b -c user.email=b@b)

# the linked worktree's box
cd "$WT" || fail "cd $WT"
ok dbx exec -- true
before=$(fingerprint "${PROTECTED[@]}")
cp "$TEST_TMP/attacks.sh" . && attacks_as_default_and_root attacks.sh && rm attacks.sh
ok dbx exec -- sh -c 'cd sub && '"${BG[*]}"' commit -q --allow-empty -m sub-in-wt && git log --format=%s -1'
assert_eq sub-in-wt "$OUT" "a commit in the worktree's submodule in the box"
ok dbx stop

# the main worktree's box
cd "$R" || fail "cd $R"
cp "$TEST_TMP/attacks.sh" . && attacks_as_default_and_root attacks.sh && rm attacks.sh
# inside the box the linked checkout looks missing: prune would delete its entry (its HEAD,
# its staged index) if worktrees/ were writable
ok dbx exec -- sh -c 'git worktree list --porcelain | grep -c prunable; git worktree prune 2>/dev/null; true'
assert_eq 1 "$OUT" "the linked worktree as the main box sees it"
ok dbx stop
[ -f "$E/HEAD" ] && [ -f "$E/index" ] || fail "the entry lost its HEAD or index: $(ls -A "$E")"

assert_eq "$before" "$(fingerprint "${PROTECTED[@]}")" "the worktree entry on the host after the boxes"
for n in modules/sub/config.worktree modules/sub2 modules/evil config.worktree config hooks; do
    [ ! -e "$E/$n" ] || fail "the box created $E/$n"
done
[ ! -e "$GD/worktrees/new" ] || fail "the box created worktrees/new"
ok "${HG[@]}" -C "$WT/sub" status --porcelain
ok "${HG[@]}" -C "$WT" status --porcelain
ok "${HG[@]}" -C "$R" worktree list
assert_eq "" "$(ls -A "$M")" "markers of commands host git ran"
ok "${HG[@]}" -C "$WT/sub" log --format=%s -1
assert_eq sub-in-wt "$OUT" "the box's submodule commit on the host"
ok "${HG[@]}" -C "$R" fsck --no-progress

# a tree whose `.git` file names this repository's entry of another worktree (one made to
# borrow the user's repository: its box would get the repository, and its trust) gets no box
B=$TEST_TMP/repos/borrow
mkdir -p "$B" && printf 'gitdir: %s\n' "$E" >"$B/.git"
CLEANUP_HOOKS+=("timeout 60 '$DEVBOX' -C '$B' stop >/dev/null 2>&1 </dev/null")
run_in "$B" dbx exec -- true
assert_eq 125 "$RC" "exec in a tree borrowing another worktree's entry (stderr: $(show "$ERR"))"
assert_contains "$ERR" "not this worktree" "the refusal"
assert_one_line "$ERR" "the refusal"

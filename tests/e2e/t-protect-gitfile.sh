#!/usr/bin/env bash
# t-protect-gitfile: a repo whose `.git` is a file (a linked worktree from `git worktree add`,
# a checkout made with `git init --separate-git-dir`) starts a box; the `.git` file, a
# redirection host git follows, is read-only from the box (default user and root): it cannot
# be written, replaced, renamed or removed.  The linked worktree's repository git directory is
# shared at its host path (t-shares.sh tests git in it); the separate git directory, which is
# no worktree's, is not.
. "$(dirname "$0")/lib.sh"

import_image
M=$(make_repo main)
echo base >"$M/base.txt"
git -C "$M" add base.txt && git -C "$M" commit -qm base || fail "host commit"
WT=$TEST_TMP/repos/wt
git -C "$M" worktree add -q "$WT" -b side >/dev/null 2>&1 || fail "git worktree add"
SEP=$TEST_TMP/repos/sep
git init -q --separate-git-dir "$TEST_TMP/sep.git" "$SEP" || fail "git init --separate-git-dir"
# (_cleanup only stops repos whose .git is a directory)
CLEANUP_HOOKS+=("timeout 60 '$DEVBOX' -C '$WT' stop >/dev/null 2>&1 </dev/null"
    "timeout 60 '$DEVBOX' -C '$SEP' stop >/dev/null 2>&1 </dev/null")

for R in "$WT" "$SEP"; do
    [ -f "$R/.git" ] || fail "$R/.git is not a file"
    before=$(fingerprint "$R/.git")
    gitfile=$(cat "$R/.git")
    run_in "$R" dbx exec -- sh -c 'cat .git; echo hi > out.txt'
    assert_eq 0 "$RC" "exec in $R (stderr: $(show "$ERR"))"
    assert_eq "$gitfile" "$OUT" ".git as the box reads it"
    assert_eq hi "$(cat "$R/out.txt")" "a file the box wrote in $R"
    for who in default root; do
        u=()
        [ $who = root ] && u=(-u root)
        run_in "$R" dbx exec "${u[@]}" -- sh -c 'echo "gitdir: /tmp/evil" > .git'
        assert_box_failed "writing .git as $who in $R"
        run_in "$R" dbx exec "${u[@]}" -- sh -c 'mv .git moved'
        assert_box_failed "renaming .git as $who in $R"
        run_in "$R" dbx exec "${u[@]}" -- sh -c 'rm -f .git'
        assert_box_failed "removing .git as $who in $R"
        run_in "$R" dbx exec "${u[@]}" -- sh -c 'echo "gitdir: /tmp/evil" > g && mv g .git'
        assert_box_failed "replacing .git by rename as $who in $R"
    done
    assert_eq "$before" "$(fingerprint "$R/.git")" ".git of $R after the box's attempts"
    if [ "$R" = "$WT" ]; then
        run_in "$R" dbx exec -- cat "$M/.git/worktrees/wt/HEAD"
        assert_eq 0 "$RC" "reading the shared repository (stderr: $(show "$ERR"))"
        assert_eq "ref: refs/heads/side" "$OUT" "the worktree's HEAD through the shared repository"
    else
        run_in "$R" dbx exec -- ls "$TEST_TMP/sep.git/HEAD"
        assert_box_failed "the separate git directory is not shared"
    fi
    ok git -C "$R" status --porcelain
    run_in "$R" dbx stop
done

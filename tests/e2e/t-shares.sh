#!/usr/bin/env bash
# t-shares: extra virtiofs shares (issue 13), one box.
# - A linked worktree (`git worktree add`) works in its box: the main repository's git
#   directory is shared at its host path, so git status/commit/log work there and the commit
#   shows up on the host; the main repository's hooks/ and config, and the worktree's own
#   pointers (worktrees/NAME/commondir, gitdir), are read-only from the box (host unchanged);
#   so is worktrees/ itself: a second worktree the host adds while the box runs, or a new
#   entry, cannot be written from the box, while git in the box's own worktree still works.
# - A `[mounts]` folder is there read-only (readable; writes fail; host unchanged), each its
#   own virtiofsd; a read-write one (a widening) is refused until `devbox trust`.
. "$(dirname "$0")/lib.sh"

import_git_image
M=$(make_repo main)
echo base >"$M/base.txt"
git -C "$M" add base.txt && git -C "$M" commit -qm base || fail "host commit"
WT=$TEST_TMP/repos/wt
git -C "$M" worktree add -q "$WT" -b side >/dev/null 2>&1 || fail "git worktree add"
CLEANUP_HOOKS+=("timeout 60 '$DEVBOX' -C '$WT' stop >/dev/null 2>&1 </dev/null")
GD=$M/.git
DATA=$TEST_TMP/data
mkdir -p "$DATA/sub" && echo hello >"$DATA/sub/file.txt"
PROTECTED=("$GD/config" "$GD/hooks" "$GD/worktrees/wt/commondir" "$GD/worktrees/wt/gitdir"
    "$WT/.git" "$DATA/sub/file.txt")
before=$(fingerprint "${PROTECTED[@]}")
cd "$WT" || fail "cd $WT"

# ---- [mounts]: a read-only folder outside the repository, then a read-write one -----------
HAVE_MOUNTS=1
write_profile "$WT" "[mounts]
$DATA = /data"
run dbx profile check
case $ERR in *"unknown section '[mounts]'"*) HAVE_MOUNTS=0 && rm -f "$WT/devbox.ini" ;; esac
if [ $HAVE_MOUNTS = 1 ]; then
    # outside the repo: a widening, trusted once
    expect_rc 125 dbx exec -- true
    assert_contains "$ERR" "devbox trust" "an untrusted [mounts] outside the repository"
    ok dbx trust
fi

GIT=(git -c user.name=t -c user.email=t@t)
ok dbx exec -- sh -c 'cat .git; git status --porcelain; git log --format=%s'
assert_contains "$OUT" "gitdir: $GD/worktrees/wt" "the .git file in the box"
assert_contains "$OUT" "base" "git log of the worktree in the box"
ok dbx exec -- sh -c 'echo f > f && git add f && git -c user.name=t -c user.email=t@t commit -qm from-box'
ok git -C "$WT" log --format=%s
assert_eq $'from-box\nbase' "$OUT" "git log of the worktree on the host"
ok git -C "$M" log --format=%s side
assert_eq $'from-box\nbase' "$OUT" "the box's commit on branch side in the main repository"
ok git -C "$M" fsck --no-progress

# the main repository's configuration, hooks and the worktree's pointers stay read-only
for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    for cmd in "echo x >> '$GD/config'" "printf '#!/bin/sh\n' > '$GD/hooks/pre-commit'" \
        "echo /tmp > '$GD/worktrees/wt/commondir'" "echo /tmp > '$GD/worktrees/wt/gitdir'" \
        "mv '$GD/hooks' '$GD/hooks.old'" "echo '[core]' > '$GD/worktrees/wt/config.worktree'" \
        "echo /tmp/x > '$GD/objects/info/alternates'"; do
        run dbx exec "${u[@]}" -- sh -c "$cmd"
        assert_ne 0 "$RC" "'$cmd' as $who"
    done
    expect_rc 255 dbx exec "${u[@]}" -- sh -c 'git config core.hooksPath /tmp/h && exit 0; exit 255'
done

# a worktree the host adds while the box runs: its entry is no more the box's than a new one
WT2=$TEST_TMP/repos/wt2
git -C "$M" worktree add -q "$WT2" -b side2 >/dev/null 2>&1 || fail "git worktree add wt2"
W2=("$GD/worktrees/wt2/commondir" "$GD/worktrees/wt2/gitdir" "$GD/worktrees/wt2/HEAD")
before2=$(fingerprint "${W2[@]}")
for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    for cmd in "echo /tmp > '$GD/worktrees/wt2/commondir'" "echo /tmp > '$GD/worktrees/wt2/gitdir'" \
        "echo '[core]' > '$GD/worktrees/wt2/config.worktree'" \
        "mkdir -p '$GD/worktrees/new' && echo /tmp > '$GD/worktrees/new/commondir'" \
        "rm -rf '$GD/worktrees/wt2'" "mv '$GD/worktrees/wt2' '$GD/worktrees/wt3'"; do
        run dbx exec "${u[@]}" -- sh -c "$cmd"
        assert_ne 0 "$RC" "'$cmd' as $who"
    done
done
assert_eq "$before2" "$(fingerprint "${W2[@]}")" "the host's second worktree after the box"
[ ! -e "$GD/worktrees/wt2/config.worktree" ] || fail "the box created wt2/config.worktree"
[ ! -e "$GD/worktrees/new" ] || fail "the box created worktrees/new"
ok git -C "$WT2" status --porcelain
# the box's own worktree entry stays writable: status, commit
ok dbx exec -- sh -c 'git status --porcelain && echo g > g && git add g && git -c user.name=t -c user.email=t@t commit -qm again'
ok git -C "$M" log --format=%s side
assert_eq $'again\nfrom-box\nbase' "$OUT" "the box's second commit on branch side"
ok git -C "$M" fsck --no-progress

if [ $HAVE_MOUNTS = 1 ]; then
    ok dbx exec -- cat /data/sub/file.txt
    assert_eq hello "$OUT" "a [mounts] file read in the box"
    for who in default root; do
        u=()
        [ $who = root ] && u=(-u root)
        run dbx exec "${u[@]}" -- sh -c 'echo x >> /data/sub/file.txt'
        assert_ne 0 "$RC" "writing a read-only [mounts] file as $who"
        run dbx exec "${u[@]}" -- sh -c 'touch /data/new'
        assert_ne 0 "$RC" "creating a file in a read-only [mounts] folder as $who"
        run dbx exec "${u[@]}" -- sh -c 'mount -o remount,rw /data'
        assert_ne 0 "$RC" "remounting a [mounts] folder read-write as $who"
    done
    [ ! -e "$DATA/new" ] || fail "the box created $DATA/new"
fi
assert_eq "$before" "$(fingerprint "${PROTECTED[@]}")" "protected files on the host after the box"
run git -C "$M" config --get core.hooksPath
assert_eq 1 "$RC" "core.hooksPath on the host (stdout: $(show "$OUT"))"

if [ $HAVE_MOUNTS = 1 ]; then
    # read-write: another widening, refused until trusted (the VM keeps running meanwhile)
    run dbx stop
    write_profile "$WT" "[mounts]
$DATA = /data:rw"
    expect_rc 125 dbx exec -- true
    assert_contains "$ERR" "devbox trust" "an untrusted read-write [mounts]"
    ok dbx trust
    ok dbx exec -- sh -c 'echo rw > /data/new'
    assert_eq rw "$(cat "$DATA/new")" "a file the box wrote in a read-write [mounts] folder"
else
    log "profiles/ has no [mounts] yet (helper D1's branch): those checks skipped"
fi
run dbx stop

# The workspace itself is never the user's home, one holding it, or one in or holding devbox's
# own directories (a home that is a git repository was shared whole: the box could rewrite
# ~/.bashrc, ~/.ssh and devbox's config.ini for the host to read): refused at the start, before
# anything of the box runs or is recorded.
H=$TEST_TMP/homerepo
mkdir -p "$H" && git init -q "$H" || fail "a home repository"
run_in "$H" env HOME="$H" "$DEVBOX" exec -- true
assert_eq 125 "$RC" "exec in a home that is a work tree"
assert_contains "$ERR" "the work tree '$H' is your home directory: devbox never shares it" "its error"
mkdir -p "$H/inner" && git init -q "$H/inner" || fail "a repository inside that home"
run_in "$H/inner" env HOME="$H" "$DEVBOX" exec -- true
assert_eq 0 "$RC" "exec in a repository inside the home: $(show "$ERR")"
run_in "$H/inner" env HOME="$H" "$DEVBOX" stop
run_in "$TEST_TMP" env HOME="$H/inner" "$DEVBOX" -C "$H" exec -- true
assert_contains "$ERR" "holds your home directory '$H/inner'" "a work tree that holds the home"
mkdir -p "$DEVBOX_HOME/config/repo" && git init -q "$DEVBOX_HOME/config/repo" || fail "a repository in devbox's config"
run_in "$DEVBOX_HOME/config/repo" "$DEVBOX" exec -- true
assert_eq 125 "$RC" "exec in a repository inside devbox's own directory"
assert_contains "$ERR" "is in devbox's own directory '$DEVBOX_HOME/config'" "its error"
git init -q "$TEST_TMP" || fail "a repository holding DEVBOX_HOME"
run_in "$TEST_TMP" "$DEVBOX" exec -- true
assert_contains "$ERR" "holds devbox's own directory" "a work tree holding DEVBOX_HOME"
rm -rf "$TEST_TMP/.git"

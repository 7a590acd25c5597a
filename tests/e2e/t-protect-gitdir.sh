#!/usr/bin/env bash
# t-protect-gitdir: what git reads from a git directory as configuration, hooks or a pointer
# elsewhere is read-only from the box, present or not, in `.git` and in every submodule git
# directory below .git/modules (docs/SECURITY.md, "Git directories"): the box cannot make host
# git run a command through them (a marker command never runs after host `git status`,
# `git commit` and `git submodule status`), while git add/commit/branch/checkout/log/status
# keep working in the box, in the repository and in a submodule, with an in-place editor
# (`sed -i`) as GIT_EDITOR and with `git add -e`; and git stash's harmless rmdir of `.git` is
# not counted as a write attempt on a protected path.
. "$(dirname "$0")/lib.sh"

submodule_repo
[ -d .git/modules/sub ] || fail "no .git/modules/sub"
mkdir -p evil/hooks
printf '[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch %s/commondir\n' "$M" >evil/config

# Each attack plants configuration that would run `touch $M/NAME` on the host.  They must all
# fail in the box; we check the files too, below.
cat >attacks.sh <<ATT
M=$M
try() { name=\$1; shift; if sh -c "\$*" 2>/dev/null; then echo "ALLOWED \$name"; fi; }
try hooks          "printf '#!/bin/sh\ntouch \$M/hooks\n' > .git/hooks/post-commit && chmod +x .git/hooks/post-commit"
try config         "printf '[core]\n\tfsmonitor = touch \$M/config\n' >> .git/config"
try attributes     "printf '* filter=x\n' > .git/info/attributes"
try alternates     "echo /tmp > .git/objects/info/alternates"
try worktrees      "mkdir -p .git/worktrees/w && echo /tmp > .git/worktrees/w/commondir"
try modules-new    "mkdir .git/modules/evil"
try modules-config "printf '[core]\n\tfsmonitor = touch \$M/modules-config\n' >> .git/modules/sub/config"
try modules-hooks  "printf '#!/bin/sh\ntouch \$M/modules-hooks\n' > .git/modules/sub/hooks/post-checkout"
try modules-attr   "printf '* filter=x\n' > .git/modules/sub/info/attributes"
try modules-mv     "mv .git/modules/sub .git/modules/sub2"
try branches       "echo /tmp/x > .git/branches/origin"
try remotes        "mkdir -p .git/remotes && echo 'URL: /tmp/x' > .git/remotes/origin"
try info-mv        "mv .git/info .git/info2"
try grafts         "echo 0000000000000000000000000000000000000000 > .git/info/grafts"
try http-alt       "echo http://127.0.0.1/ > .git/objects/info/http-alternates"
# names at the top of a git directory that git reads as a redirection or configuration: no
# mount can cover a missing name there, the name filter in virtiofsd refuses them
try commondir      "echo \$PWD/evil > .git/commondir"
try commondir-mv   "echo \$PWD/evil > .git/X_TMP; mv .git/X_TMP .git/commondir"
try commondir-ln   "ln .git/HEAD .git/commondir"
try commondir-sym  "ln -s \$PWD/evil .git/commondir"
try commondir-dir  "mkdir .git/commondir"
try gitdir         "echo \$PWD > .git/gitdir"
try config-wt      "printf '[core]\n\tfsmonitor = touch \$M/config-wt\n' > .git/config.worktree"
try sub-commondir  "echo \$PWD/evil > .git/modules/sub/commondir"
try sub-config-wt  "printf '[core]\n\tfsmonitor = touch \$M/sub-config-wt\n' > .git/modules/sub/config.worktree"
try other-name     "mkdir .git/newdir"
rm -f .git/X_TMP
echo done
ATT
# (the first start creates the missing directories: take the fingerprint after it)
ok dbx exec -- true
before=$(fingerprint .git/config .git/hooks .git/info .git/modules/sub/config .git/modules/sub/hooks .git/objects/info/alternates)

attacks_as_default_and_root attacks.sh
assert_eq "$before" "$(fingerprint .git/config .git/hooks .git/info .git/modules/sub/config .git/modules/sub/hooks .git/objects/info/alternates)" \
    "git configuration on the host after the attacks"
for d in .git/worktrees .git/branches .git/remotes; do
    [ -z "$(ls -A "$d")" ] || fail "$d is not empty: $(ls -A "$d")"
done
[ ! -e .git/modules/evil ] || fail "the box created .git/modules/evil"

# git still works in the box, in the repository and in the submodule
BG=(git -c user.name=b -c user.email=b@b)
ok dbx exec -- sh -c 'echo f > f && git add f && '"${BG[*]}"' commit -qm in-box && git branch b2 &&
    git checkout -q -b b3 && git checkout -q - && git log --format=%s -1 && git status --porcelain'
assert_eq in-box "$(printf '%s\n' "$OUT" | head -n 1)" "commit in the box"
ok dbx exec -- sh -c 'cd sub && '"${BG[*]}"' commit -q --allow-empty -m sub-in-box && git log --format=%s -1'
assert_eq sub-in-box "$OUT" "commit in the submodule in the box"
ok dbx exec -- sh -c 'echo g > g && git add g && git stash -q && git stash pop -q && git reset -q &&
    rm g && git gc -q && git tag t1 && git pack-refs --all && git status --porcelain'
# an in-place editor as GIT_EDITOR (an agent rewording a commit): BusyBox sed -i writes
# COMMIT_EDITMSG's new text to a temporary file next to it, then renames it over (GNU sed's and
# perl -i's names: the unit test)
ok dbx exec -- sh -c "GIT_EDITOR='sed -i s/in-box/reworded-in-box/' ${BG[*]} commit -q --amend &&
    git log --format=%s -1"
assert_eq reworded-in-box "$OUT" "commit --amend with 'sed -i' as the editor in the box"
for f in .git/COMMIT_EDITMSG?*; do [ ! -e "$f" ] || fail "sed -i left $f"; done
# git add -e: the patch it writes in .git for the editor (refused before)
ok dbx exec -- sh -c "echo e >> f && GIT_EDITOR='sed -i s/^+e\$/+e/' git add -e -- f &&
    git diff --cached --name-only && git reset -q"
assert_eq f "$OUT" "git add -e with 'sed -i' as the editor in the box"

# the count of write attempts on protected paths: git stash's rmdir of ".git" (git's
# remove_path() tries each parent of the temporary index it removes) is none, an rmdir of a
# protected directory is one
writes() { json_get "$(dbx status --json)" 'j["protected_writes"]'; }
writes_are() { [ "$(writes)" = "$1" ]; }
# the count goes to the host at most once a second: start from one that held for 1.2 s
w0=$(writes)
for _ in 1 2 3 4 5; do
    sleep 1.2
    w=$(writes)
    [ "$w" = "$w0" ] && break
    w0=$w
done
ok dbx exec -- sh -c 'echo s >> f && git stash -q && git stash pop -q && rmdir .git; git checkout -q f'
ok dbx exec -- sh -c 'rmdir .git/hooks || true'
wait_until 10 writes_are $((w0 + 1)) || fail "write attempts: $(writes) after $w0 and one rmdir of .git/hooks"
sleep 1.2
assert_eq $((w0 + 1)) "$(writes)" "write attempts after git stash, rmdir .git and rmdir .git/hooks"
for n in commondir gitdir config.worktree newdir X_TMP modules/sub/commondir; do
    [ ! -e ".git/$n" ] || fail "the box created .git/$n"
done

# host git: nothing of the box runs
ok "${HG[@]}" status --porcelain
ok "${HG[@]}" commit -q --allow-empty -m host
ok "${HG[@]}" submodule status
ok "${HG[@]}" -C sub status --porcelain
assert_eq "" "$(ls -A "$M")" "markers of commands host git ran"
assert_eq reworded-in-box "$(git log --format=%s -1 HEAD~1)" "the box's commit in the host's history"
# nothing of it was created (only the empty directories devbox makes at the start)
for f in .git/info/attributes .git/info/grafts .git/objects/info/alternates .git/commondir; do
    [ ! -e "$f" ] || fail "$f exists after the box's attempts"
done

#!/usr/bin/env bash
# t-protect-nested: repositories nested in the work tree (docs/SECURITY.md, "Nested
# repositories").  The box, as its user and as root, cannot make a new git directory or `.git`
# file anywhere in the workspace (git init, mkdir, rename, symlink, hard link: the name `.git`
# is refused on the host), cannot change the config, hooks or redirections of the nested
# repositories the workspace had at the start (a vendored clone's `.git` directory, a
# submodule's `.git` file, a checkout whose `.git` file names a git directory elsewhere in the
# workspace), and so, after it adds gitlinks for all of them to the superproject's index, host
# `git status`, `git commit -a` and `git submodule status` run no command of the box's (a marker
# never appears).  git keeps working in the box, in the superproject and in the vendored clone.
. "$(dirname "$0")/lib.sh"

submodule_repo
[ -f sub/.git ] || fail "sub/.git is not a file"
# a vendored clone (a .git directory below the top) and a checkout whose .git file names a
# git directory elsewhere in the workspace; neither is known to the superproject yet
mkdir -p vendor store
git init -q vendor/foo && "${HG[@]}" -C vendor/foo commit -q --allow-empty -m foo ||
    fail "vendored repository"
git init -q --separate-git-dir "$(pwd -P)/store/wt.git" wt && "${HG[@]}" -C wt commit -q --allow-empty -m wt ||
    fail "separate-git-dir checkout"
[ -f wt/.git ] && [ -d vendor/foo/.git ] || fail "nested repositories not set up"

# Each attack plants configuration that would run `touch $M/NAME` on the host; `evil` is a git
# directory of the box's (allowed: it is not named .git) that the redirections point at ($M is
# expanded here, so the host's shell finds the path in its config).
cat >attacks.sh <<ATT
M=$M
try() { name=\$1; shift; if sh -c "\$*" 2>/dev/null; then echo "ALLOWED \$name"; fi; }
[ -f evil/config ] || { mkdir -p evil/objects evil/refs/heads && echo 'ref: refs/heads/master' > evil/HEAD &&
    printf '[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch $M/evil\n' > evil/config; } || echo "no evil"
mkdir -p d/some z z2 h c
try git-init       "git init -q x1"
try git-clone      "git clone -q vendor/foo x2"
try mkdir-dotgit   "mkdir -p y/.git"
try mv-dotgit      "mv d/some d/.git"
try symlink-dotgit "ln -s ../evil z/.git"
try file-dotgit    "echo 'gitdir: ../evil' > z2/.git"
try link-dotgit    "ln sub/.git h/.git"
try case-dotgit    "mkdir c/.GIT"
try top-dotgit     "mkdir .git/.git"
# renames and removals put things back when they work (as on a build without the rule), so
# the plants below still reach host git there
try vendor-mv      "mv vendor/foo/.git vendor/foo/git.old && mv vendor/foo/git.old vendor/foo/.git"
try vendor-rm      "cp vendor/foo/.git/config /tmp/c && rm -f vendor/foo/.git/config && cp /tmp/c vendor/foo/.git/config"
try sub-rm         "cp sub/.git /tmp/g && rm -f sub/.git && cp /tmp/g sub/.git"
try sub-mvdir      "mv sub sub.old && mv sub.old sub"
try store-mv       "mv store/wt.git store/wt2.git && mv store/wt2.git store/wt.git"
try vendor-config  "printf '[core]\n\tfsmonitor = touch \$M/vendor-config\n' >> vendor/foo/.git/config"
try vendor-hooks   "printf '#!/bin/sh\ntouch \$M/vendor-hooks\n' > vendor/foo/.git/hooks/post-commit && chmod +x vendor/foo/.git/hooks/post-commit"
try vendor-cdir    "echo \$PWD/evil > vendor/foo/.git/commondir"
try vendor-cfgwt   "printf '[core]\n\tfsmonitor = touch \$M/vendor-cfgwt\n' > vendor/foo/.git/config.worktree"
try sub-gitfile    "echo 'gitdir: ../evil' > sub/.git"
try wt-gitfile     "echo 'gitdir: ../evil' > wt/.git"
try store-config   "printf '[core]\n\tfsmonitor = touch \$M/store-config\n' >> store/wt.git/config"
try store-hooks    "printf '#!/bin/sh\ntouch \$M/store-hooks\n' > store/wt.git/hooks/post-commit"
echo done
ATT
# (the first start creates the missing directories: take the fingerprint after it)
ok dbx exec -- true
watched=(vendor/foo/.git/config vendor/foo/.git/hooks sub/.git wt/.git store/wt.git/config store/wt.git/hooks)
before=$(fingerprint "${watched[@]}")

attacks_as_default_and_root attacks.sh
assert_eq "$before" "$(fingerprint "${watched[@]}")" "nested repositories' git files after the attacks"
for p in x1/.git x2/.git y/.git d/.git z/.git z2/.git h/.git c/.GIT .git/.git vendor/foo/.git/commondir \
    vendor/foo/.git/config.worktree; do
    [ ! -e "$p" ] && [ ! -L "$p" ] || fail "the box created $p"
done

# the box makes gitlinks for everything that could be a repository, as a hostile agent would
BG=(git -c user.name=b -c user.email=b@b)
ok dbx exec -- sh -c 'h=$(git rev-parse HEAD) && for p in vendor/foo wt x1 z z2 h evil; do
    git update-index --add --cacheinfo 160000,$h,$p || exit 1; done && git ls-files -s | grep -c ^160000'
assert_eq 8 "$OUT" "gitlinks in the superproject's index (sub and the box's 7)"
# git still works in the box: the superproject, the vendored clone, the submodule
ok dbx exec -- sh -c 'echo f > f && git add f && '"${BG[*]}"' commit -qm in-box && git log --format=%s -1 &&
    cd vendor/foo && '"${BG[*]}"' commit -q --allow-empty -m foo-in-box && git log --format=%s -1 &&
    cd ../../sub && '"${BG[*]}"' commit -q --allow-empty -m sub-in-box && git log --format=%s -1'
assert_eq "$(printf 'in-box\nfoo-in-box\nsub-in-box')" "$OUT" "commits in the box"
# devbox run inside the submodule's checkout is the superproject's box (a box of its own could
# not reach its git directory, in the superproject's .git/modules); the vendored clone, a
# repository of its own, stays its own project
ok dbx -C sub status
assert_contains "$OUT" "project     $R
" "the project of a command in the submodule"
ok dbx -C sub exec -- sh -c 'pwd && git log --format=%s -1 && git status --porcelain | wc -l'
assert_eq "$(printf '%s\nsub-in-box\n0' "$R/sub")" "$OUT" "git in the submodule, run from there"
ok dbx -C vendor/foo status
assert_contains "$OUT" "project     $R/vendor/foo
" "the project of a command in a nested clone"

# host git: nothing of the box runs
ok "${HG[@]}" status --porcelain
echo host >>base.txt
ok "${HG[@]}" commit -q -a -m host
# (it may complain about the box's gitlinks, which .gitmodules does not name: what counts is
# that it runs nothing of the box's)
run "${HG[@]}" submodule status
ok "${HG[@]}" -C vendor/foo status --porcelain
ok "${HG[@]}" -C wt status --porcelain
assert_eq "" "$(ls -A "$M")" "markers of commands host git ran"
assert_eq in-box "$(git log --format=%s -1 HEAD~1)" "the box's commit in the host's history"
assert_eq foo-in-box "$(git -C vendor/foo log --format=%s -1)" "the box's commit in vendor/foo"

# The same as an ordinary user: the walk runs as the user, virtiofsd in a user namespace of
# the user's subordinate ids.
rootless_user
as_user git init -q "$RU" && as_user git init -q "$RU/vendor/foo" || fail "repositories as $TU"
run_in "$RU" as_user "$UD" image import "$U/share/rootfs.tar" default
assert_eq 0 "$RC" "image import as $TU: $(show "$ERR")"
ubefore=$(fingerprint "$RU/vendor/foo/.git/config" "$RU/vendor/foo/.git/hooks")
for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    run_in "$RU" as_user timeout 240 "$UD" exec "${u[@]}" -- sh -c '
        mkdir -p y/.git 2>/dev/null && echo "ALLOWED mkdir"
        mkdir -p z && mv z .GIT 2>/dev/null && echo "ALLOWED mv"
        echo "[core] fsmonitor = x" >> vendor/foo/.git/config 2>/dev/null && echo "ALLOWED config"
        echo x > vendor/foo/.git/hooks/post-commit 2>/dev/null && echo "ALLOWED hooks"
        echo done'
    assert_eq 0 "$RC" "exec as $TU ($who): $(show "$ERR")"
    assert_eq "done" "$OUT" "attacks as $TU's $who that were allowed"
done
assert_eq "$ubefore" "$(fingerprint "$RU/vendor/foo/.git/config" "$RU/vendor/foo/.git/hooks")" \
    "$TU's nested repository after the attacks"
[ ! -e "$RU/y/.git" ] && [ ! -e "$RU/.GIT" ] || fail "the box made a .git as $TU"

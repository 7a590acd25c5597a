#!/usr/bin/env bash
# t-protect-git: git works in the box with the default protection in force (an image with the
# host's git, mkimage.sh --with-git): commits made in the box show up in `git log` on the host,
# objects belong to the host user; hooks and .git/config stay out of the box's reach, also
# through git itself (git config, a hook written by hand).
. "$(dirname "$0")/lib.sh"

import_git_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
echo base >"$R/base.txt"
git -C "$R" add base.txt && git -C "$R" commit -qm base || fail "host commit"
write_profile "$R" $'[limits]\npids = 1000'
PROTECTED=(devbox.ini .git/config .git/hooks)
before=$(fingerprint "${PROTECTED[@]}")
uid=$(id -u)
gid=$(id -g)

GIT=(git -c user.name=t -c user.email=t@t)
ok dbx exec -- git --version
assert_match "$OUT" '^git version ' "git in the box"
ok dbx exec -- "${GIT[@]}" commit -qm x --allow-empty
ok dbx exec -- sh -c 'echo f > f && git add f && git -c user.name=t -c user.email=t@t commit -qm f'
# guest root is not the repository's owner (its ids land on the subordinate or, for host
# root, the high range) and has no capabilities: it cannot commit
run dbx exec -u root -- "${GIT[@]}" -c 'safe.directory=*' commit -qm by-root --allow-empty
assert_box_failed "commit by guest root"

ok git -C "$R" log --format=%s
assert_eq $'f\nx\nbase' "$OUT" "git log on the host"
ok git -C "$R" show --format= --name-only HEAD
assert_eq f "$OUT" "files of the box's commit"
ok git -C "$R" status --porcelain
assert_eq $'?? devbox.ini' "$OUT" "git status on the host"
ok git -C "$R" fsck --no-progress
head=$(git -C "$R" rev-parse HEAD)
obj=$R/.git/objects/${head:0:2}/${head:2}
assert_file "$obj"
assert_eq "$uid:$gid" "$(stat -c %u:%g "$obj")" "host owner of a commit object made in the box"
assert_eq "$uid:$gid" "$(stat -c %u:%g "$R/f")" "host owner of a file committed in the box"

# the box sees the host's commits too
echo h >"$R/h.txt"
git -C "$R" add h.txt && git -C "$R" commit -qm from-host || fail "host commit"
# (virtiofs cache=auto: host changes show up within about a second)
seen_commit() { [ "$("$DEVBOX" exec -- git log -1 --format=%s 2>/dev/null </dev/null)" = from-host ]; }
wait_until 10 seen_commit || fail "host commit not seen by git in the box within 10 s"

# git cannot be turned against the host through its configuration or hooks
for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    expect_rc 255 dbx exec "${u[@]}" -- sh -c 'git config core.hooksPath /tmp/hooks; s1=$?; git config core.fsmonitor "touch /tmp/pwned"; s2=$?; [ $s1 != 0 ] && [ $s2 != 0 ] && exit 255; exit 0'
    run dbx exec "${u[@]}" -- sh -c 'printf "#!/bin/sh\necho pwned\n" > .git/hooks/pre-commit'
    assert_ne 0 "$RC" "writing .git/hooks/pre-commit as $who"
    run dbx exec "${u[@]}" -- sh -c 'echo x >> devbox.ini'
    assert_ne 0 "$RC" "appending to devbox.ini as $who"
done
assert_eq "$before" "$(fingerprint "${PROTECTED[@]}")" "protected paths on the host after git in the box"
run git -C "$R" config --get core.hooksPath
assert_eq "" "$OUT" "core.hooksPath on the host"
run git -C "$R" config --get core.fsmonitor
assert_eq "" "$OUT" "core.fsmonitor on the host"

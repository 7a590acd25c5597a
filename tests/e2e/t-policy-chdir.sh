#!/usr/bin/env bash
# t-policy-chdir: when the box user cannot enter its working directory, the error names the
# first directory on the way it lacks search permission on, with its mode and owner (an image
# whose / is 0700 otherwise fails every command with a bare "chdir: Permission denied").
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

ok dbx exec -u root -- sh -c 'mkdir -p /srv/locked/sub && chmod 700 /srv/locked'
expect_rc 125 dbx exec -u dev -w /srv/locked/sub -- true
assert_one_line "$ERR" "stderr of a locked-out -w"
assert_contains "$ERR" "cannot enter '/srv/locked/sub': the box user (uid 1000) lacks search permission on '/srv/locked' (mode 0700, owner 0:0)" "error for -w under a 0700 directory"
# the directory itself locked: it is the one named
expect_rc 125 dbx exec -u dev -w /srv/locked -- true
assert_contains "$ERR" "lacks search permission on '/srv/locked' (mode 0700, owner 0:0)" "error for -w on a 0700 directory"
# a uid without a passwd entry, and a double slash in the path
expect_rc 125 dbx exec -u 1500 -w //srv//locked/sub/ -- true
assert_contains "$ERR" "the box user (uid 1500) lacks search permission on '//srv//locked' (mode 0700, owner 0:0)" "error for -u 1500"

# / itself at 0700 (an image built that way): every command of the box user names '/'
ok dbx exec -u root -- chmod 700 /
expect_rc 125 dbx exec -u dev -w /home/dev -- true
assert_contains "$ERR" "cannot enter '/home/dev': the box user (uid 1000) lacks search permission on '/' (mode 0700, owner 0:0)" "error with / at 0700"
ok dbx exec -u root -- chmod 755 /
ok dbx exec -u dev -w /home/dev -- true
# other failures keep their plain message
expect_rc 125 dbx exec -u dev -w /nonexistent/dir -- true
assert_contains "$ERR" "chdir '/nonexistent/dir'" "error for a missing directory"

#!/usr/bin/env bash
# t-guest-passwd: the guest init (PID 1) reads the image's /etc/passwd and /etc/group before
# every command, and a root box user can rewrite them.  Hostile content (a 300 KB line, a NUL
# byte, no final newline, a relative shell, a shell that is a symlink to a device) must not
# crash it; a FIFO, or a symlink to a terminal in init's own /dev, must not block it (PID 1
# would wait forever and no command would run again): the command fails with one line naming
# the file, and once the file is back the next one runs.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# ---- hostile lines around the real entries ----------------------------------------------
ok dbx exec -u root -- sh -c 'cp /etc/passwd /tmp/passwd.orig && ln -s /dev/null /bin/odd-shell &&
    { head -c 300000 /dev/zero | tr "\0" a; echo
      cat /tmp/passwd.orig
      echo "rel:x:1701:1701::/tmp:bin/sh"
      echo "odd:x:1702:1702::/tmp:/bin/odd-shell"
      printf "last:x:1703:1703::/tmp:/bin/sh"; } > /etc/passwd'
ok dbx exec -u dev -- id -u
assert_eq 1000 "$OUT" "uid of dev after the hostile lines"
ok dbx exec -u last -- sh -c 'id -u; echo "$SHELL"'
assert_eq $'1703\n/bin/sh' "$OUT" "an entry without a final newline"
# a relative shell is checked against init's cwd but would run from the command's: not used
ok dbx exec -u rel -- sh -c 'echo "$SHELL"'
assert_eq /bin/sh "$OUT" "SHELL of an entry whose shell is relative"
ok dbx exec -u odd -- sh -c 'echo "$SHELL"'
assert_eq /bin/sh "$OUT" "SHELL of an entry whose shell is a symlink to a device"
# a NUL byte ends the text PID 1 looks at (the entries before it still resolve)
ok dbx exec -u root -- sh -c '{ cat /tmp/passwd.orig; printf "nul:x:1700:1700:\0:/tmp:/bin/sh\n"
    echo "after:x:1704:1704::/tmp:/bin/sh"; } > /etc/passwd'
ok dbx exec -u dev -- id -u
assert_eq 1000 "$OUT" "uid of dev with a NUL byte after its entry"
ok dbx exec -u root -- cp /tmp/passwd.orig /etc/passwd

# ---- files that would block PID 1 -------------------------------------------------------
# /etc is opened up so that uid 1500 (no passwd entry, a numeric group: /etc/group is not
# read for it) can remove the file afterwards
ok dbx exec -u root -- sh -c 'cp /etc/group /tmp/group.orig && chmod 644 /tmp/group.orig &&
    chmod 777 /etc && rm /etc/group && mkfifo -m 666 /etc/group'
# before the fix PID 1 waited here for a writer: bound the wait (it is not a timing assertion)
DBX_CMD_TIMEOUT=120 expect_rc 125 dbx exec -u dev -- true
assert_one_line "$ERR" "stderr with /etc/group a FIFO"
assert_contains "$ERR" "'/etc/group' is not a regular file" "error with /etc/group a FIFO"
ok dbx exec -u 1500:1500 -- sh -c 'rm /etc/group && ln -s /dev/console /etc/group'
DBX_CMD_TIMEOUT=120 expect_rc 125 dbx exec -u dev -- true
assert_contains "$ERR" "'/etc/group' is not a regular file" "error with /etc/group -> /dev/console"
# a missing /etc/group is an image without groups: root can run and put it back
ok dbx exec -u 1500:1500 -- rm /etc/group
ok dbx exec -u root -- sh -c 'cp /tmp/group.orig /etc/group && chmod 755 /etc'
ok dbx exec -u dev -- id -u
assert_eq 1000 "$OUT" "uid of dev with /etc/group back"

# ---- an edit that keeps the file's size and inode ----------------------------------------
# PID 1 reuses its last lookup while stat() says /etc/passwd and /etc/group are unchanged
# (guest/init-user.c): an in-place rewrite of the same length must still count as a change.
ok dbx exec -u dev -- sh -c 'echo "$HOME"'
assert_eq /home/dev "$OUT" "HOME of dev before the edit"
ok dbx exec -u dev -- sh -c 'echo "$HOME"'
assert_eq /home/dev "$OUT" "HOME of dev, asked again"
ok dbx exec -u root -- sh -c 'ino=$(stat -c %i /etc/passwd) size=$(stat -c %s /etc/passwd)
    sed "s#:/home/dev:#:/home/xyz:#" /etc/passwd > /tmp/passwd.same &&
    dd if=/tmp/passwd.same of=/etc/passwd conv=notrunc status=none &&
    test "$(stat -c %i.%s /etc/passwd)" = "$ino.$size"'
ok dbx exec -u dev -- sh -c 'echo "$HOME"'
assert_eq /home/xyz "$OUT" "HOME of dev after a same-size in-place edit"
ok dbx exec -u root -- sh -c 'sed "s#:/home/xyz:#:/home/dev:#" /etc/passwd > /tmp/passwd.same &&
    dd if=/tmp/passwd.same of=/etc/passwd conv=notrunc status=none'
ok dbx exec -u dev -- sh -c 'echo "$HOME"'
assert_eq /home/dev "$OUT" "HOME of dev after the edit is undone"

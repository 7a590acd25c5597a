#!/usr/bin/env bash
# t-timezone: the box keeps the host's time and speaks UTF-8.  Commands get TZ naming the
# host's zone (from devbox's TZ, else /etc/localtime) read at the box's start; the test image
# has no zone files, so the host's file is written to the box's /usr/share/zoneinfo (rewritten
# when the host's changes; another file there is never replaced, and a symlink planted on the way
# is not followed); a POSIX rule
# goes alone; -e and the profile's [env] win; --admin gets it too.  LANG=C.UTF-8 only once the
# image has that locale.  Found in use: the box said UTC where the host said CET, and a commit
# made in the box carried +0000.  Eight boots.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ENVS='echo "TZ=${TZ-unset} LANG=${LANG-unset}"'

# a named zone the image lacks: the host's file
export TZ=Asia/Tokyo
ok dbx exec -- sh -c "$ENVS; date +%z; md5sum </usr/share/zoneinfo/Asia/Tokyo"
assert_eq "TZ=Asia/Tokyo LANG=unset
+0900
$(md5sum </usr/share/zoneinfo/Asia/Tokyo)" "$OUT" "the host's zone in the box"
ok dbx exec --admin -- date +%z
assert_eq "+0900" "$OUT" "an administrative command's zone"
ok dbx exec -e TZ=UTC0 -- date +%z
assert_eq "+0000" "$OUT" "-e TZ wins"
# the box's own user cannot replace the zone file
expect_rc 1 dbx exec -- sh -c 'echo x > /usr/share/zoneinfo/Asia/Tokyo'

# the profile's [env] wins; a POSIX rule from the host goes alone
write_profile "$R" $'[env]\nTZ = UTC0'
ok dbx restart
ok dbx exec -- date +%z
assert_eq "+0000" "$OUT" "[env] TZ wins"
rm -f "$R/devbox.ini"
export TZ='EST5EDT,M3.2.0,M11.1.0'
ok dbx restart
ok dbx exec -- sh -c "$ENVS; date +%z"
assert_eq "TZ=EST5EDT,M3.2.0,M11.1.0 LANG=unset
$(date +%z)" "$OUT" "a POSIX rule"

# a file there is the image's (or a later tzdata's): never replaced; a symlink root in the box
# put on the way is not followed (the boot goes on, the zone's file is not written)
export TZ=Asia/Tokyo
ok dbx restart
ok dbx exec --admin -- sh -c 'printf "TZif2 not a zone" >/usr/share/zoneinfo/Asia/Tokyo &&
    mkdir -p /usr/lib/locale/C.utf8 && ln -s /tmp/elsewhere /usr/share/zoneinfo/Europe'
ok dbx restart
ok dbx exec -- sh -c "$ENVS; head -c 16 /usr/share/zoneinfo/Asia/Tokyo; echo"
assert_eq "TZ=Asia/Tokyo LANG=C.UTF-8
TZif2 not a zone" "$OUT" "the image's own zone file kept, the locale found"
export TZ=Europe/Berlin
ok dbx restart
ok dbx exec -- sh -c "$ENVS; ls /tmp/elsewhere 2>&1 || true"
assert_eq "TZ=Europe/Berlin LANG=C.UTF-8
ls: /tmp/elsewhere: No such file or directory" "$OUT" "nothing written through a symlink"
assert_contains "$(cat "$DEVBOX_HOME"/state/projects/*/console.log)" "setup: time zone:" \
    "the symlink noted on the console"

# the host's file changes (a tzdata update): the box's copy, still the one devbox wrote, is
# rewritten at the next start (an absolute TZ is named after its zoneinfo/ part)
mkdir -p "$TEST_TMP/zoneinfo/Test"
cp /usr/share/zoneinfo/Asia/Tokyo "$TEST_TMP/zoneinfo/Test/Zone"
export TZ=$TEST_TMP/zoneinfo/Test/Zone
ok dbx restart
ok dbx exec -- sh -c 'echo "$TZ"; date +%z'
assert_eq "Test/Zone
+0900" "$OUT" "a zone of the host's own, written"
cp /usr/share/zoneinfo/Europe/Berlin "$TEST_TMP/zoneinfo/Test/Zone"
ok dbx restart
ok dbx exec -- date +%z
assert_eq "$(TZ=Europe/Berlin date +%z)" "$OUT" "the host's changed zone file, rewritten in the box"

# without TZ: /etc/localtime's zone, or nothing when the host has none
unset TZ
ok dbx restart
ok dbx exec -- sh -c 'echo "${TZ-unset}"'
if lt=$(readlink /etc/localtime) && [[ $lt == *zoneinfo/* ]]; then
    assert_eq "${lt##*zoneinfo/}" "$OUT" "/etc/localtime's zone"
elif [ ! -e /etc/localtime ]; then
    assert_eq "unset" "$OUT" "no zone on the host"
fi
ok dbx stop

#!/usr/bin/env bash
# t-timezone: the box keeps the host's time and speaks UTF-8.  Commands get TZ naming the
# host's zone (from devbox's TZ, else /etc/localtime) read at the box's start; the test image
# has no zone files, so the host's file goes to /run/devbox/zoneinfo and TZDIR names it; a POSIX
# rule goes alone; -e and the profile's [env] win; --admin gets it too; once the image has the
# zone, TZDIR is not set.  LANG=C.UTF-8 only once the image has that locale.  Found in use: the
# box said UTC where the host said CET, and a commit made in the box carried +0000.  Five boots.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ENVS='echo "TZ=${TZ-unset} TZDIR=${TZDIR-unset} ZONEINFO=${ZONEINFO-unset} LANG=${LANG-unset}"'

# a named zone the image lacks: the host's file, TZDIR and ZONEINFO
export TZ=Asia/Tokyo
ok dbx exec -- sh -c "$ENVS; date +%z; md5sum </run/devbox/zoneinfo/Asia/Tokyo"
assert_eq "TZ=Asia/Tokyo TZDIR=/run/devbox/zoneinfo ZONEINFO=/run/devbox/zoneinfo LANG=unset
+0900
$(md5sum </usr/share/zoneinfo/Asia/Tokyo)" "$OUT" "the host's zone in the box"
ok dbx exec --admin -- date +%z
assert_eq "+0900" "$OUT" "an administrative command's zone"
ok dbx exec -e TZ=UTC0 -- date +%z
assert_eq "+0000" "$OUT" "-e TZ wins"
# the box's own user cannot replace the zone file
expect_rc 1 dbx exec -- sh -c 'echo x > /run/devbox/zoneinfo/Asia/Tokyo'

# the profile's [env] wins; a POSIX rule from the host goes alone
write_profile "$R" $'[env]\nTZ = UTC0'
ok dbx restart
ok dbx exec -- date +%z
assert_eq "+0000" "$OUT" "[env] TZ wins"
rm -f "$R/devbox.ini"
export TZ='EST5EDT,M3.2.0,M11.1.0'
ok dbx restart
ok dbx exec -- sh -c "$ENVS; date +%z"
assert_eq "TZ=EST5EDT,M3.2.0,M11.1.0 TZDIR=unset ZONEINFO=unset LANG=unset
$(date +%z)" "$OUT" "a POSIX rule"

# the image gains the zone and the locale: TZDIR is left out, LANG=C.UTF-8 set
export TZ=Asia/Tokyo
ok dbx restart
ok dbx exec --admin -- sh -c 'mkdir -p /usr/share/zoneinfo/Asia /usr/lib/locale/C.utf8 &&
    cp /run/devbox/zoneinfo/Asia/Tokyo /usr/share/zoneinfo/Asia/Tokyo'
ok dbx restart
ok dbx exec -- sh -c "$ENVS; date +%z; ls /run/devbox/zoneinfo 2>&1 || true"
assert_eq "TZ=Asia/Tokyo TZDIR=unset ZONEINFO=unset LANG=C.UTF-8
+0900" "$(head -2 "$TEST_TMP/stdout")" "the image's own zone and locale"
assert_contains "$OUT" "No such file" "nothing written to /run/devbox/zoneinfo"

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

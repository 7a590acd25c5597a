#!/usr/bin/env bash
# t-admin: `devbox exec --admin -- CMD` runs one command as uid 0 with the profile's root
# capabilities plus Docker's default set (DBX_CAPS_ADMIN, CapEff 00000000a80425fb) in all five
# sets, and otherwise the box's policy (no_new_privs, seccomp, the box cgroup), HOME=/root: it
# can chown a file in / and create one in /etc and under the box user's home.  A plain
# `-u root` (no capabilities by default) cannot chown or write where only its missing
# DAC_OVERRIDE would let it (root owns /etc, so creating a file there needs no capability), and
# a failure of it prints one hint line naming --admin; a failed --admin in a box without network
# one line saying so.  Afterwards the box user and `-u root`
# are as confined as before; `--admin -u 1000` is refused with one line and 125 (`-u 0:0` and
# `-u root:root` are root); the supervisor log names each admin command.  The repository's
# [env] (PATH, LD_PRELOAD, FOO) reaches a plain command but not an --admin one, which gets the
# fixed PATH and what -e gives it (sudo's env_reset and secure_path).  With the Debian image cached: apt-get, which drops to its
# `_apt` user, fails as plain root and installs a local package with --admin (setuid under
# no_new_privs is fine); dpkg -i works too.
. "$(dirname "$0")/lib.sh"

ADMIN_CAPS=00000000a80425fb
HINT="devbox: root in this box has no capabilities; 'devbox exec --admin -- CMD' runs one command with the ones package managers need"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"
# the repository's [env]: the box user's PATH and preloads must not reach root's admin commands
write_profile "$R" $'[env]\nLD_PRELOAD = /nonexistent.so\nFOO = bar\nPATH = /home/dev/bin:/bin:/usr/bin'

# ---- --admin: uid 0, the admin set in every set, the rest of the policy unchanged ---------
ok dbx exec --admin -- sh -c './probe status; ./probe ids; echo "cgroup=$(cat /proc/self/cgroup)"; echo "home=$HOME"'
for k in CapInh CapPrm CapEff CapBnd CapAmb; do
    assert_kv "$OUT" "$k" "$ADMIN_CAPS" "--admin"
done
assert_kv "$OUT" NoNewPrivs 1 "--admin"
assert_kv "$OUT" Seccomp 2 "--admin"
assert_kv "$OUT" uid 0/0/0 "--admin ids"
assert_kv "$OUT" gid 0/0/0 "--admin ids"
assert_kv "$OUT" cgroup "0::/box/s[0-9]+" "--admin"
assert_kv "$OUT" home /root "--admin"
ok dbx exec --admin -u root -- true
ok dbx exec --admin -u 0 -- true
ok dbx exec --admin -u 0:0 -- true
ok dbx exec --admin -u root:root -- true

# ---- the environment: the profile's [env] for the box user, a reset one for --admin ------
ok dbx exec -- env
assert_contains "$OUT" "LD_PRELOAD=/nonexistent.so" "plain exec env"
assert_contains "$OUT" "FOO=bar" "plain exec env"
# (~/.local/bin ahead of it, as for every plain command; ~/bin is there already)
assert_contains "$OUT" "PATH=/home/dev/.local/bin:/home/dev/bin:/bin:/usr/bin" "plain exec env"
ok dbx exec --admin -- env
assert_not_contains "$OUT" "LD_PRELOAD" "--admin env"
assert_not_contains "$OUT" "FOO=" "--admin env"
assert_contains "$OUT" "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "--admin env"
assert_not_contains "$OUT" "/home/dev/bin" "--admin env"
assert_contains "$OUT" "USER=root" "--admin env"
ok dbx exec --admin -e FOO=typed -- env
assert_contains "$OUT" "FOO=typed" "--admin -e"

ok dbx exec --admin -- sh -c 'touch /admin-chown && chown 1000:1000 /admin-chown && stat -c %u:%g /admin-chown'
assert_eq 1000:1000 "$OUT" "--admin chown of a file in /"
ok dbx exec --admin -- sh -c 'echo x > /etc/devbox-admin-test && cat /etc/devbox-admin-test'
assert_eq x "$OUT" "--admin creating a file in /etc"
ok dbx exec --admin -- sh -c 'echo x > /home/dev/by-admin && chown 1000:1000 /home/dev/by-admin'
# still no way out of the box: the kernel's own knobs stay out of reach
run dbx exec --admin -- sh -c 'echo 1 > /proc/sys/kernel/sysrq'
assert_box_failed "--admin writing /proc/sys"

# ---- a plain -u root: no capabilities, one hint line on failure --------------------------
run dbx exec -u root -- chown 1000:1000 /etc/devbox-admin-test
assert_box_failed "-u root chown"
assert_contains "$ERR" "$HINT" "-u root chown"
[ "$(printf '%s\n' "$ERR" | grep -cF "$HINT")" = 1 ] || fail "hint printed more than once: $(show "$ERR")"
run dbx exec -u 0 -- sh -c 'echo x > /home/dev/by-root'
assert_box_failed "-u 0 writing into the box user's home"
assert_contains "$ERR" "$HINT" "-u 0 writing into the box user's home"
# a failure of the box user, or a success of root, says nothing about --admin
run dbx exec -- chown 0 /admin-chown
assert_box_failed "box user chown"
assert_not_contains "$ERR" "--admin" "box user's failure"
ok dbx exec -u root -- true
assert_eq "" "$ERR" "stderr of a successful -u root"

# ---- a failed --admin of a package manager in a box without network (the default): one hint
# line saying so (found in use: README's `--admin -- apt-get install -y jq` ended in apt's
# "Temporary failure resolving"; a user reading that does not guess that the box has no network
# at all); a failed --admin that downloads nothing gets none (it used to)
NETHINT="devbox: this box has no network: a package manager cannot download here; [setup] installs with the host's mirrors (docs/setup.md)"
ok dbx exec --admin -- sh -c 'mkdir -p /usr/local/bin &&
    printf "#!/bin/sh\necho out\nexit 100\n" >/usr/local/bin/apt-get && chmod 755 /usr/local/bin/apt-get'
expect_rc 100 dbx exec --admin -- apt-get install -y jq
assert_eq out "$OUT" "stdout of a failed --admin"
assert_contains "$ERR" "$NETHINT" "failed --admin apt-get without network"
[ "$(printf '%s\n' "$ERR" | grep -cF "$NETHINT")" = 1 ] || fail "network hint printed more than once: $(show "$ERR")"
assert_not_contains "$ERR" "$HINT" "failed --admin (it has the capabilities)"
expect_rc 100 dbx exec --admin --shell 'cd / && apt-get update'
assert_contains "$ERR" "$NETHINT" "failed --admin --shell of apt-get without network"
expect_rc 3 dbx exec --admin -- sh -c 'echo out; exit 3'
assert_not_contains "$ERR" "$NETHINT" "a failed --admin that downloads nothing"
ok dbx exec --admin -- true
assert_eq "" "$ERR" "stderr of a successful --admin"

# ---- after an admin command: the profile's policy, for everyone ----------------------------
ok dbx exec -- ./probe status
assert_confined_status "$OUT" "box user after --admin"
ok dbx exec -u root -- ./probe status
assert_confined_status "$OUT" "-u root after --admin"

# ---- refusals ------------------------------------------------------------------------------
expect_rc 125 dbx exec --admin -u 1000 -- id -u
assert_one_line "$ERR" "--admin -u 1000"
assert_contains "$ERR" "--admin" "--admin -u 1000"
assert_eq "" "$OUT" "stdout of --admin -u 1000"
expect_rc 125 dbx exec --admin -u dev -- id -u
assert_one_line "$ERR" "--admin -u dev"

# ---- the supervisor's log names each admin command ----------------------------------------
ok dbx logs --supervisor
assert_contains "$OUT" "admin exec: 'sh' '-c' 'touch /admin-chown" "supervisor log"
assert_not_contains "$OUT" "admin exec: 'chown'" "supervisor log (a plain -u root is not admin)"

# ---- Debian: dpkg and apt under --admin (when the Debian tarball is at hand) --------------
if [ -s "${DBX_TEST_IMAGE%/*}/debian-bookworm.tar" ] && command -v dpkg-deb >/dev/null; then
    D=$(make_repo deb)
    cd "$D" || fail "cd $D"
    write_profile "$D" $'[box]\nimage = debian'
    import_debian debian
    mk_deb() { # NAME: a package installing /usr/share/NAME/file, owned by root
        mkdir -p "$TEST_TMP/$1/DEBIAN" "$TEST_TMP/$1/usr/share/$1"
        printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n' \
            "$1" >"$TEST_TMP/$1/DEBIAN/control"
        echo "$1" >"$TEST_TMP/$1/usr/share/$1/file"
        dpkg-deb --root-owner-group -b "$TEST_TMP/$1" "$D/$1.deb" >/dev/null || fail "dpkg-deb $1"
    }
    mk_deb devbox-admin-a
    mk_deb devbox-admin-b
    # root owns every file dpkg touches here, so plain root gets as far as dpkg; apt's drop
    # to `_apt` (setgroups, setgid, setuid) is what needs the admin set
    APT='cp devbox-admin-b.deb /tmp/ && chmod 644 /tmp/devbox-admin-b.deb && apt-get install -y /tmp/devbox-admin-b.deb'
    run dbx exec -u root -- sh -c "$APT"
    assert_box_failed "apt-get install as plain root"
    assert_contains "$ERR" "$HINT" "apt-get install as plain root"
    ok dbx exec --admin -- dpkg -i devbox-admin-a.deb
    ok dbx exec -- cat /usr/share/devbox-admin-a/file
    assert_eq devbox-admin-a "$OUT" "file of the package dpkg installed"
    ok dbx exec --admin -- sh -c "$APT"
    assert_not_contains "$ERR$OUT" "unsandboxed" "apt-get install (the _apt sandbox)"
    ok dbx exec -- dpkg -s devbox-admin-b
    assert_contains "$OUT" "Status: install ok installed" "dpkg -s after apt-get install"
else
    log "no cached Debian tarball or dpkg-deb: dpkg/apt part skipped"
fi

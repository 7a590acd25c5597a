#!/usr/bin/env bash
# t-policy-suid: setuid-root binaries in the image do not raise privileges in the box
# (no_new_privs): /usr/bin/suidtest (busybox 4755) and /usr/bin/suidprobe (the static probe,
# 4755: it reports its real/effective/saved ids, busybox would drop them itself).  Control: with
# a trusted no_new_privileges = false the same binary does become euid 0, so the image's setuid
# bit is real and the first result means something; and with root granted capabilities, the
# setuid-root binary run by the box user gets only capabilities_user (its bounding set).
. "$(dirname "$0")/lib.sh"

R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$TEST_TMP"
import_variant default --add "$TEST_TMP/probe=/usr/bin/suidprobe:4755"
uid=$(box_uid)

ok dbx exec -- sh -c 'stat -c "%a %u" /usr/bin/suidprobe /usr/bin/suidtest'
assert_eq $'4755 0\n4755 0' "$OUT" "mode and owner of the setuid binaries in the image"

# busybox applets pick their name from argv[0]: run suidtest through a symlink called id
ok dbx exec -- sh -c 'ln -sf /usr/bin/suidtest /tmp/id && /tmp/id -u'
assert_eq "$uid" "$OUT" "suidtest id -u as the default user"
ok dbx exec -u dev -- sh -c 'mkdir -p /tmp/dev-bin && ln -sf /usr/bin/suidtest /tmp/dev-bin/id && /tmp/dev-bin/id -u'
assert_eq 1000 "$OUT" "suidtest id -u as dev"

ok dbx exec -u dev -- sh -c '/usr/bin/suidprobe ids; /usr/bin/suidprobe status'
assert_kv "$OUT" uid 1000/1000/1000 "setuid-root probe run by dev (real/effective/saved)"
assert_confined_status "$OUT" "setuid-root probe run by dev"
ok dbx exec -- /usr/bin/suidprobe ids
assert_kv "$OUT" uid "$uid/$uid/$uid" "setuid-root probe run by the default user"

# ---- the same with the box user from the profile: user = dev (a narrowing) ---------------
write_profile "$R" $'[security]\nuser = dev'
restart
ok dbx exec -- sh -c 'id -u; id -g; /usr/bin/suidprobe ids'
assert_eq $'1000\n1000' "$(printf '%s\n' "$OUT" | head -n 2)" "uid and gid of user = dev"
assert_kv "$OUT" uid 1000/1000/1000 "setuid-root probe with user = dev"

# ---- control: no_new_privileges = false (a widening: trust) -----------------------------
write_profile "$R" $'[security]\nno_new_privileges = false'
restart
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "no_new_privileges false" "refusal of no_new_privileges = false"
ok dbx trust
ok dbx exec -u dev -- sh -c '/usr/bin/suidprobe ids; /usr/bin/suidprobe status'
assert_kv "$OUT" NoNewPrivs 0 "no_new_privileges = false: NoNewPrivs"
assert_kv "$OUT" uid 1000/0/0 "control: setuid-root probe with no_new_privileges = false"
# euid 0 but still no capabilities: the bounding set is empty
assert_kv "$OUT" CapEff 0000000000000000 "control: CapEff of the setuid-root probe"
assert_kv "$OUT" CapBnd 0000000000000000 "control: CapBnd of the setuid-root probe"

# ---- root's capabilities do not follow a setuid-root binary run by the box user ----------
# capabilities is for uid 0 only: the box user's bounding set is capabilities_user, so euid 0
# from a setuid binary gets that and nothing of root's list
write_profile "$R" $'[security]\nno_new_privileges = false\ncapabilities = chown, dac_override, fowner\ncapabilities_user = net_bind_service'
restart
ok dbx trust
ok dbx exec -u dev -- sh -c '/usr/bin/suidprobe ids; /usr/bin/suidprobe status'
assert_kv "$OUT" uid 1000/0/0 "setuid-root probe with root's capabilities granted"
for k in CapPrm CapEff CapBnd; do
    assert_kv "$OUT" "$k" 0000000000000400 "$k of the setuid-root probe run by dev"
done
ok dbx exec -u root -- /usr/bin/suidprobe status
assert_kv "$OUT" CapEff 000000000000040b "control: CapEff of uid 0 with capabilities and capabilities_user"

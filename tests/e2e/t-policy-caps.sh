#!/usr/bin/env bash
# t-policy-caps: `[security] capabilities` is for uid 0 in the box only: with chown,
# dac_override and fowner granted (and trusted), the ordinary box user's five capability sets
# stay zero and it cannot write /etc, while `-u root` has them.  `capabilities_user` is the
# explicit opt-in for the box user (a widening of its own), and `profile show` says whom each
# list is for.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"
write_profile "$R" '[security]
capabilities = chown, dac_override, fowner'
ok dbx trust

ok dbx exec -u root -- ./probe status
caps=$(kv "$OUT" CapEff)
assert_eq 000000000000000b "$caps" "CapEff of -u root with chown, dac_override, fowner"
assert_kv "$OUT" CapBnd 000000000000000b "-u root"

# the box user: uid 1000 of the image's passwd, and a uid without an entry
for u in dev 1500; do
    ok dbx exec -u "$u" -- ./probe status
    assert_confined_status "$OUT" "box user '$u' with capabilities granted to root"
    run dbx exec -u "$u" -- sh -c 'echo x > /etc/devbox-caps-test'
    assert_box_failed "box user '$u' writing /etc"
    assert_contains "$ERR" "Permission denied" "box user '$u' writing /etc"
done
ok dbx exec -u root -- sh -c 'echo x > /etc/devbox-caps-test && rm /etc/devbox-caps-test'

ok dbx profile show
assert_match "$OUT" 'capabilities = chown, dac_override, fowner +; devbox.ini:2; uid 0 in the box only' "profile show"
assert_match "$OUT" 'capabilities_user = +; built-in default; every user of the box' "profile show"


# capabilities_user: a widening until trusted, then the box user has exactly those
write_profile "$R" '[security]
capabilities = chown, dac_override, fowner
capabilities_user = net_bind_service'
restart
expect_rc 125 dbx exec -u dev -- true
assert_contains "$ERR" "capability 'net_bind_service' for the box user" "refusal of capabilities_user"
ok dbx trust
ok dbx exec -u dev -- ./probe status
for k in CapInh CapPrm CapEff CapBnd CapAmb; do
    assert_kv "$OUT" "$k" 0000000000000400 "box user with capabilities_user = net_bind_service"
done
ok dbx exec -u root -- ./probe status
assert_kv "$OUT" CapEff 000000000000040b "-u root with capabilities and capabilities_user"

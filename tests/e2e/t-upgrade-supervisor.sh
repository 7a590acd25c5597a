#!/usr/bin/env bash
# t-upgrade-supervisor: devbox upgraded while a box runs, its supervisor of the previous build
# (the protocol version before this one; tests/e2e/old-supervisor.py stands in for it).  A
# command says so in one line and how to get out of it (exit 125: it died of SIGPIPE, 141,
# without a word when the supervisor closed while it still wrote, which a command of 240 KB,
# more than the socket holds, makes sure of); `devbox stop` stops it (it waited for good on a
# supervisor that had refused its frame); the next command starts the box as usual.
. "$(dirname "$0")/lib.sh"

cur=$(sed -n 's/^#define DBX_PROTO_VERSION \([0-9][0-9]*\)$/\1/p' "$REPO_ROOT/common/protocol.h")
[ -n "$cur" ] || fail "no DBX_PROTO_VERSION in common/protocol.h"
old_version=$((cur - 1))

R=$(make_repo proj)
cd "$R" || fail "cd $R"
import_image
ok dbx exec -- true
run dbx status --json
id=$(json_get "$OUT" 'j["id"]')
restart

rd=$DEVBOX_HOME/run/$id
"$PYTHON" "$E2E_DIR/old-supervisor.py" "$rd" "$old_version" &
old=$!
CLEANUP_HOOKS+=("kill $old 2>/dev/null")
wait_until 10 test -S "$rd/sock" || fail "the stand-in supervisor did not start"
big=$(head -c 60000 /dev/zero | tr '\0' x)
want="this box was started by another devbox build (its supervisor speaks protocol $old_version, this devbox $cur): 'devbox stop' stops it"
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "$want" "exec against the old supervisor"
assert_one_line "$ERR" "exec's error"
for i in 1 2 3; do
    expect_rc 125 dbx exec -- true "$big" "$big" "$big" "$big"
    assert_contains "$ERR" "$want" "exec of 240 KB against the old supervisor ($i)"
    assert_one_line "$ERR" "exec's error ($i)"
done
expect_rc 125 dbx stats
assert_contains "$ERR" "$want" "stats against the old supervisor"
ok dbx stop
wait "$old"
assert_eq 0 "$?" "the old supervisor ended by SIGTERM"
ok dbx exec -- echo started-again
assert_eq started-again "$OUT" "the box after the old supervisor's stop"

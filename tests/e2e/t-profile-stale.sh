#!/usr/bin/env bash
# t-profile-stale: a running box keeps the policy it started with; while devbox.ini (or what it
# extends) differs from what it runs, every exec says so in one line on stderr; `devbox
# restart` applies the new profile (and the line goes away).
. "$(dirname "$0")/lib.sh"

STALE="devbox: the box runs the previous devbox.ini; 'devbox stop' to apply the new one"
import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

ok dbx exec -- cat /sys/fs/cgroup/box/pids.max
assert_eq "" "$ERR" "stderr of an exec with the profile unchanged"
before=$OUT

write_profile "$R" $'extends = base.ini\n[limits]\npids = 100'
printf '[limits]\nnofile = 1000\n' >"$R/base.ini"
for i in 1 2; do
    ok dbx exec -- cat /sys/fs/cgroup/box/pids.max
    assert_eq "$STALE" "$ERR" "stderr of exec $i after devbox.ini appeared"
    assert_eq "$before" "$OUT" "pids.max of the running box (the previous policy)"
done

ok dbx restart
ok dbx exec -- sh -c 'cat /sys/fs/cgroup/box/pids.max; ulimit -n'
assert_eq "" "$ERR" "stderr of an exec after restart"
assert_eq $'100\n1000' "$OUT" "limits after restart"

# a change in a file devbox.ini extends counts too; changing it back ends the warning
printf '[limits]\nnofile = 900\n' >"$R/base.ini"
ok dbx exec -- true
assert_eq "$STALE" "$ERR" "stderr after the extended file changed"
printf '[limits]\nnofile = 1000\n' >"$R/base.ini"
ok dbx exec -- true
assert_eq "" "$ERR" "stderr once the files match the running box again"

# removing devbox.ini is a change as well
rm -f "$R/devbox.ini"
ok dbx exec -- true
assert_eq "$STALE" "$ERR" "stderr after devbox.ini was removed"

# restart of a stopped box starts it
ok dbx stop
ok dbx restart
ok dbx status --json
assert_eq running "$(json_get "$OUT" 'j["state"]')" "state after restart of a stopped box"

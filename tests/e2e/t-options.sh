#!/usr/bin/env bash
# t-options: -e, -w, -u, the default user and the default working directory.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
mkdir -p "$R/a/b"
cd "$R" || fail "cd $R"

ok dbx exec -e FOO=bar -e 'SP=a b' -e 'EQ=x=y' -- sh -c 'printf "%s|%s|%s" "$FOO" "$SP" "$EQ"'
assert_eq 'bar|a b|x=y' "$OUT" "variables from -e"
ok dbx exec -e EMPTY= -- sh -c 'echo "[${EMPTY-unset}]"'
assert_eq '[]' "$OUT" "empty variable from -e"
ok dbx exec -- sh -c 'echo "[${FOO-unset}]"'
assert_eq '[unset]' "$OUT" "-e does not stick to later execs"

ok dbx exec -w /tmp -- pwd
assert_eq /tmp "$OUT" "cwd with -w /tmp"
ok dbx exec -w "$R/a/b" -- pwd
assert_eq "$R/a/b" "$OUT" "cwd with -w inside the repo"
run dbx exec -w /no/such/dir -- pwd
[ "$RC" != 0 ] || fail "exec -w /no/such/dir succeeded: $(show "$OUT")"

# default cwd = host cwd, also in a subdirectory
run_in "$R/a/b" dbx exec -- pwd
assert_eq 0 "$RC" "exit code in a subdirectory"
assert_eq "$R/a/b" "$OUT" "default cwd in a subdirectory"
# -C DIR acts as if started in DIR (like git -C)
run_in "$TEST_TMP" dbx -C "$R/a" exec -- pwd
assert_eq 0 "$RC" "exit code of exec -C"
assert_eq "$R/a" "$OUT" "cwd with -C $R/a"

# users
ok dbx exec -- id -u
assert_eq "$(box_uid)" "$OUT" "default uid (the host user's; 1000 for host root)"
ok dbx exec -- id -g
assert_eq "$(box_gid)" "$OUT" "default gid (the host user's; 1000 for host root)"
ok dbx exec -u root -- id -u
assert_eq 0 "$OUT" "uid with -u root"
ok dbx exec -u 0 -- id -u
assert_eq 0 "$OUT" "uid with -u 0"
ok dbx exec -u 1000 -- id -u
assert_eq 1000 "$OUT" "uid with -u 1000"
ok dbx exec -u 1234 -- id -u
assert_eq 1234 "$OUT" "uid with -u 1234 (not in the image's passwd)"
ok dbx exec -u dev -- id -u
assert_eq 1000 "$OUT" "uid with -u dev"
chmod 777 "$R/a"
ok dbx exec -u 1000 -- touch "$R/a/by-1000"
[ -e "$R/a/by-1000" ] || fail "file written by guest uid 1000 missing on the host"
if [ "$(id -u)" = 0 ]; then # root: guest 1000 is the box user, which maps back to root
    assert_eq 0 "$(stat -c %u "$R/a/by-1000")" "host owner of a file guest uid 1000 made"
fi
ok dbx exec -u 1000 -- sh -c 'echo x > /root/denied 2>/dev/null && echo wrote || echo denied'
assert_eq denied "$OUT" "uid 1000 writing /root"
run dbx exec -u no-such-user -- id -u
[ "$RC" != 0 ] || fail "exec -u no-such-user succeeded: $(show "$OUT")"

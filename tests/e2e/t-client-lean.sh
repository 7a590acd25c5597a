#!/usr/bin/env bash
# t-client-lean: build/devbox is the lean client: it links no libcurl, libgit2, OpenSSL or
# libarchive; `exec` on a running VM goes the lean way (DEVBOX_CLIENT_DEBUG says which way a
# command went) with output, stdin, exit codes and the stale-profile warning as before, and so
# does `status [--json]` of a running box (the same output as the full devbox's); every
# case it cannot decide alone goes to the full devbox and still works: a new project (the first
# exec boots), GIT_DIR, -e with a config.ini, -u root, --admin, other commands, a stopped VM; its errors
# are the full devbox's words; without devbox-full next to it, it says so.  Two boots.
. "$(dirname "$0")/lib.sh"

# ---- the binary itself --------------------------------------------------------------------
libs=$(ldd "$DEVBOX" 2>&1)
log "ldd $DEVBOX: $libs"
for l in libcurl libgit2 libssl libcrypto libarchive libinih libseccomp; do
    assert_not_contains "$libs" "$l" "a library the lean client must not load"
done
FULL=$(dirname "$DEVBOX")/devbox-full
[ -x "$FULL" ] || fail "no devbox-full next to $DEVBOX"
assert_contains "$(ldd "$FULL")" libgit2 "the full devbox's libraries"

# the same words as the full devbox for what needs no VM (usage, option errors)
same() { # ARGS...: lean and full agree on stdout, stderr and exit code
    run "$DEVBOX" "$@"
    local o1=$OUT e1=$ERR r1=$RC
    run "$FULL" "$@"
    assert_eq "$r1/$o1/$e1" "$RC/$OUT/$ERR" "lean vs full: devbox $*"
}
same --help
same --version
same
same --network open exec -- true
same exec --timeout 3x -- true
same exec -d -t -- true
same exec --shell a b
same exec --help
same enter extra

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
export DEVBOX_CLIENT_DEBUG=1

# ---- a new project: the full devbox (libgit2 confirms it, then the first boot) ----------------
ok dbx exec -- true
assert_contains "$ERR" "devbox: client: full (new project)" "first exec"

# ---- the lean way ------------------------------------------------------------------------
ok dbx exec -- sh -c 'echo out; echo err >&2'
assert_contains "$ERR" "devbox: client: lean" "warm exec"
assert_eq "out" "$OUT" "stdout through the lean client"
assert_contains "$ERR" "err" "stderr through the lean client"
expect_rc 7 dbx exec -- sh -c 'exit 7'
assert_contains "$ERR" "devbox: client: lean" "exit code"
printf 'abc\n' >"$TEST_TMP/in"
run_stdin "$TEST_TMP/in" dbx exec -i -- cat
assert_eq "0/abc" "$RC/$OUT" "stdin through the lean client"
assert_contains "$ERR" "devbox: client: lean" "exec -i"
mkdir -p "$R/sub/dir"
run dbx -C "$R/sub/dir" exec -w .. -e A=1 -- sh -c 'echo "$PWD $A"'
assert_eq "0/$R/sub 1" "$RC/$OUT" "-C, -w and -e (no config.ini) through the lean client"
assert_contains "$ERR" "devbox: client: lean" "-C -w -e"
# symlinked way into the repo: the same project, lean
ln -s "$R/sub" "$TEST_TMP/shortcut"
run dbx -C "$TEST_TMP/shortcut" exec -- pwd
assert_eq "0/$R/sub" "$RC/$OUT" "a symlinked -C"
assert_contains "$ERR" "devbox: client: lean" "symlinked -C"
# the stale-profile warning is checked on the lean way too
printf '# changed after the start\n' >"$R/devbox.ini"
ok dbx exec -- true
assert_contains "$ERR" "devbox: client: lean" "exec with a stale profile"
assert_contains "$ERR" "runs the previous devbox.ini" "stale-profile warning"
rm -f "$R/devbox.ini"
# without the debug variable the lean way says nothing of itself
run env -u DEVBOX_CLIENT_DEBUG "$DEVBOX" exec -- true
assert_eq "0/" "$RC/$ERR" "lean exec, quiet"

# ---- what goes to the full devbox, and works there -----------------------------------------
run env GIT_DIR="$R/.git" "$DEVBOX" exec -- echo via-full
assert_eq "0/via-full" "$RC/$OUT" "exec with GIT_DIR"
assert_contains "$ERR" "devbox: client: full (GIT_DIR)" "GIT_DIR"
mkdir -p "$DEVBOX_HOME/config"
: >"$DEVBOX_HOME/config/config.ini"
ok dbx exec -e A=2 -- sh -c 'echo $A'
assert_eq 2 "$OUT" "-e with a config.ini"
assert_contains "$ERR" "devbox: client: full (-e with a config.ini)" "-e with a config.ini"
rm -f "$DEVBOX_HOME/config/config.ini"
ok dbx exec -u root -- id -u
assert_eq 0 "$OUT" "-u root"
assert_contains "$ERR" "devbox: client: full (-u root)" "-u root"
ok dbx exec --admin -- id -u
assert_eq 0 "$OUT" "--admin"
assert_contains "$ERR" "devbox: client: full (--admin)" "--admin"
ok env DEVBOX_CLIENT=full "$DEVBOX" exec -- true
assert_contains "$ERR" "devbox: client: full (DEVBOX_CLIENT=full)" "DEVBOX_CLIENT=full"
ok dbx ls
assert_contains "$ERR" "devbox: client: full (not exec, enter or status)" "ls"
# status of a running box: lean, the same lines as the full devbox's (uptime, rss and idle move)
steady() { printf '%s\n' "$1" | grep -Ev '^(uptime_s|rss_kib|idle) '; }
ok dbx status
assert_contains "$ERR" "devbox: client: lean" "status of a running box"
LEAN_STATUS=$OUT
assert_contains "$LEAN_STATUS" "state       running" "lean status"
assert_match "$LEAN_STATUS" $'(^|\n)rss_kib +[1-9][0-9]*(\n|$)' "lean status has the live fields"
ok env DEVBOX_CLIENT=full "$DEVBOX" status
assert_contains "$ERR" "devbox: client: full (DEVBOX_CLIENT=full)" "status, the full devbox's"
assert_eq "$(steady "$OUT")" "$(steady "$LEAN_STATUS")" "lean and full status agree"
ok dbx status --json
assert_contains "$ERR" "devbox: client: lean" "status --json of a running box"
LEAN_JSON=$OUT
ok env DEVBOX_CLIENT=full "$DEVBOX" status --json
steady_json() { json_get "$1" '{k: v for k, v in j.items() if k not in ("uptime_s", "rss_kib", "idle_s")}'; }
assert_eq "$(steady_json "$OUT")" "$(steady_json "$LEAN_JSON")" "lean and full status --json agree"
assert_eq false "$(json_get "$LEAN_JSON" 'j["profile_changed"]')" "lean status --json: profile checked"
# a devbox.ini changed since the start: the full devbox tells a change from an error
printf '# changed after the start\n' >"$R/devbox.ini"
ok dbx status
assert_contains "$ERR" "devbox: client: full (devbox.ini changed since the start)" "status, stale profile"
assert_contains "$OUT" "profile     devbox.ini changed since the VM started" "status: stale profile"
rm -f "$R/devbox.ini"
expect_rc 125 dbx status --bogus
assert_contains "$ERR" "devbox: client: full (status arguments)" "status with a bad argument"
assert_contains "$ERR" "devbox: status: invalid option '--bogus' (see devbox status --help)" "the full devbox's error"
# the full devbox's own errors for a directory that is no project
mkdir -p "$TEST_TMP/plain"
expect_rc 125 dbx -C "$TEST_TMP/plain" exec -- true
assert_contains "$ERR" "devbox: client: full (no .git above the directory)" "no work tree"
assert_contains "$ERR" "is not inside a git work tree" "the full devbox's error"
# -C naming a file, or nothing (the first said only "devbox: 'FILE'")
expect_rc 125 dbx -C "$R/devbox-file" exec -- true
assert_contains "$ERR" "devbox: '$R/devbox-file': No such file or directory" "-C naming nothing"
: >"$R/devbox-file"
expect_rc 125 dbx -C "$R/devbox-file" exec -- true
assert_contains "$ERR" "devbox: '$R/devbox-file' is not a directory" "-C naming a file"
expect_rc 125 "$(dirname "$DEVBOX")/devbox-full" -C "$R/devbox-file" status
assert_eq "devbox: '$R/devbox-file' is not a directory" "$ERR" "-C naming a file, the full devbox"
rm -f "$R/devbox-file"
# a stopped VM: the full devbox boots it
ok dbx stop
ok dbx status
assert_contains "$ERR" "devbox: client: full (the VM is not running)" "status of a stopped box"
assert_contains "$OUT" "state       stopped" "status of a stopped box"
ok dbx exec -- echo booted
assert_eq booted "$OUT" "exec after stop"
assert_contains "$ERR" "devbox: client: full (the VM is not running)" "exec after stop"
ok dbx exec -- true
assert_contains "$ERR" "devbox: client: lean" "warm again"

# ---- a lean client without its full devbox ---------------------------------------------------
mkdir -p "$TEST_TMP/alone"
cp "$DEVBOX" "$TEST_TMP/alone/devbox"
run "$TEST_TMP/alone/devbox" --help
assert_eq 0 "$RC" "--help needs no full devbox"
run "$TEST_TMP/alone/devbox" ls
assert_eq 125 "$RC" "ls without devbox-full"
assert_contains "$ERR" "devbox: cannot run the full devbox '$TEST_TMP/alone/../lib/devbox/devbox-full'" "missing devbox-full"
# ...but it still runs a warm exec alone
run "$TEST_TMP/alone/devbox" exec -- echo alone
assert_eq "0/alone" "$RC/$OUT" "lean exec with no devbox-full at all"
log "ok"

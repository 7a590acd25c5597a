#!/usr/bin/env bash
# t-escape: terminal controls in untrusted strings never reach the user's terminal raw through
# devbox's own output: an unknown command, a -C path, a command name, a working directory (C0,
# raw C1 and UTF-8 encoded C1), and `devbox logs --console` replaying a guest OOM line that
# names a process called ESC ] 0 ; PWN BEL ESC [ 2 J.  The command's own output stays
# byte-exact.
. "$(dirname "$0")/lib.sh"

# no_controls FILE WHAT: FILE holds only printable ASCII, tabs and newlines
no_controls() {
    "$PYTHON" - "$1" <<'PY' || fail "$2: raw control bytes in $(show "$(cat -v "$1")")"
import sys
d = open(sys.argv[1], "rb").read()
sys.exit(1 if any((b < 0x20 and b not in (9, 10)) or b >= 0x7f for b in d) else 0)
PY
}

PWN=$'\e]0;PWN\a\e[2J'
run dbx "x${PWN}"$'\xc2\x9b'
assert_eq 125 "$RC" "exit code of an unknown command"
no_controls "$TEST_TMP/stderr" "unknown command"
assert_contains "$ERR" "unknown command 'x\\e]0;PWN\\x07\\e[2J\\xc2\\x9b'" "unknown command"

run dbx -C "/nonexistent${PWN}"$'\x9b' status
assert_eq 125 "$RC" "exit code with a bad -C path"
no_controls "$TEST_TMP/stderr" "-C path"
assert_contains "$ERR" "/nonexistent\\e]0;PWN\\x07\\e[2J\\x9b" "-C path"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"
cp "$R/probe" "$R/$PWN" || fail "copy the probe"
write_profile "$R" $'[limits]\nmemory = 64M'

run dbx exec -- "nocmd${PWN}"
assert_eq 127 "$RC" "exit code of a missing command"
no_controls "$TEST_TMP/stderr" "missing command name"
assert_contains "$ERR" "nocmd\\e]0;PWN" "missing command name"

run dbx exec -w "/nowhere${PWN}"$'\xc2\x85' -- true
assert_ne 0 "$RC" "exit code with a missing working directory"
no_controls "$TEST_TMP/stderr" "working directory"
assert_contains "$ERR" "nowhere\\e]0;PWN\\x07\\e[2J\\xc2\\x85" "working directory"

# the command's own output is not devbox's: byte-exact
ok dbx exec -- printf '\033[2J\302\233'
assert_eq "$(printf '\033[2J\302\233')" "$(cat "$TEST_TMP/stdout")" "command stdout"

# a process with that name killed by the OOM killer: the kernel names it on the console
expect_rc 137 dbx exec -- "./$PWN" hog 200
wait_until 20 bash -c "'$DEVBOX' logs --console | grep -q 'Killed process'" ||
    fail "no OOM line on the console: $(dbx logs --console | tail -n 5)"
run dbx logs --console
no_controls "$TEST_TMP/stdout" "logs --console"
assert_contains "$OUT" "(\\e]0;PWN\\x07\\e[2J)" "OOM line in logs --console"
run dbx logs
no_controls "$TEST_TMP/stdout" "logs (supervisor)"

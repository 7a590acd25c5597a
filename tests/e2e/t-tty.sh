#!/usr/bin/env bash
# t-tty: -t gives the command a terminal of the client's size, follows resizes, and a Ctrl-C
# typed on it interrupts the command.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx exec -- true # boot

PTY=("$PYTHON" "$E2E_DIR/pty.py")

run "${PTY[@]}" --rows 33 --cols 101 --timeout 60 -- "$DEVBOX" exec -t -- tty
assert_eq 0 "$RC" "exit code of 'exec -t -- tty'"
assert_match "$(tr -d '\r' <"$TEST_TMP/stdout")" '^/dev/pts/[0-9]+$' "'tty' with -t"

run "${PTY[@]}" --rows 33 --cols 101 --timeout 60 -- "$DEVBOX" exec -t -- stty size
assert_eq 0 "$RC" "exit code of 'exec -t -- stty size'"
assert_eq "33 101" "$(tr -d '\r' <"$TEST_TMP/stdout")" "'stty size' in a 33x101 terminal"

# without -t there is no terminal, even when the client has one
run "${PTY[@]}" --timeout 60 -- "$DEVBOX" exec -- tty
assert_eq 1 "$RC" "exit code of 'tty' without -t"
assert_contains "$(tr -d '\r' <"$TEST_TMP/stdout")" "not a tty" "'tty' without -t"

# resize while running (-i so that the Enter typed afterwards reaches the command)
run "${PTY[@]}" --rows 24 --cols 80 --timeout 60 --expect ready --resize 40x120 --sleep 1 --send '\n' \
    -- "$DEVBOX" exec -i -t -- sh -c 'echo ready; read x; stty size'
assert_eq 0 "$RC" "exit code of the resize probe"
assert_contains "$(tr -d '\r' <"$TEST_TMP/stdout")" "40 120" "'stty size' after resizing to 40x120"

# The host terminal's terminfo entry goes along where the image has none of that name (found in
# use: kitty, alacritty, foot and wezterm users got "unknown terminal type" from every curses
# program in the box), in /run/devbox/terminfo with TERMINFO_DIRS naming it; an image that has
# the entry keeps its own.
ti="$TEST_TMP/terminfo"
infocmp -x xterm-256color | sed '1,2s/^xterm-256color|[^,]*/devbox-test-term|a test terminal/' >"$ti.src" &&
    mkdir -p "$ti" && tic -x -o "$ti" "$ti.src" || fail "tic"
want_md5=$(md5sum <"$ti/d/devbox-test-term" | cut -d' ' -f1)
probe='echo "dirs=$TERMINFO_DIRS"; md5sum </run/devbox/terminfo/d/devbox-test-term | cut -d" " -f1'
TERMINFO=$ti TERM=devbox-test-term run "${PTY[@]}" --timeout 60 -- "$DEVBOX" exec -t -- sh -c "$probe"
assert_eq 0 "$RC" "exit code of the terminfo probe"
assert_eq "dirs=/run/devbox/terminfo:"$'\n'"$want_md5" "$(tr -d '\r' <"$TEST_TMP/stdout")" "the host's entry in the box"
ok dbx exec --admin -- sh -c 'mkdir -p /usr/share/terminfo/d && cp /run/devbox/terminfo/d/devbox-test-term /usr/share/terminfo/d/'
TERMINFO=$ti TERM=devbox-test-term run "${PTY[@]}" --timeout 60 -- "$DEVBOX" exec -t -- sh -c 'echo "dirs=$TERMINFO_DIRS"'
assert_eq "dirs=" "$(tr -d '\r' <"$TEST_TMP/stdout")" "an image with the entry: no TERMINFO_DIRS"
ok dbx exec --admin -- rm -r /usr/share/terminfo/d

# exit code through a terminal
run "${PTY[@]}" --timeout 60 -- "$DEVBOX" exec -t -- sh -c 'exit 5'
assert_eq 5 "$RC" "exit code of 'sh -c \"exit 5\"' with -t"

# input typed on the terminal reaches the command (-i -t, as docker)
run "${PTY[@]}" --timeout 60 --expect 'name\?' --send 'devbox\r' -- "$DEVBOX" exec -i -t -- sh -c 'echo "name?"; read n; echo "hello <$n>"'
assert_eq 0 "$RC" "exit code of the read probe"
assert_contains "$(tr -d '\r' <"$TEST_TMP/stdout")" "hello <devbox>" "line typed on the terminal"

# Ctrl-C typed on the terminal
t0=$SECONDS
run "${PTY[@]}" --timeout 60 --expect ready --sleep 0.5 --send '\x03' -- "$DEVBOX" exec -i -t -- sh -c 'echo ready; exec sleep 100'
assert_eq 130 "$RC" "exit code after typing Ctrl-C with -t"
assert_le $((SECONDS - t0)) 30 "seconds until Ctrl-C took effect"

# with -i -t the client's terminal is raw: the guest's line discipline alone turns \n into
# \r\n (a cooked local terminal would add a second \r) and echoes typed input once
run "${PTY[@]}" --timeout 60 --expect ready --send 'typed\r' -- "$DEVBOX" exec -i -t -- sh -c 'echo ready; read x; printf "a\nb\n"'
assert_eq 0 "$RC" "exit code of the raw-mode probe"
raw=$(cat "$TEST_TMP/stdout"; echo .)
raw=${raw%.}
assert_contains "$raw" $'a\r\nb\r\n' "output of printf 'a\\nb\\n' with -i -t"
assert_not_contains "$raw" $'\r\r\n' "output with -i -t (doubled CR: local terminal not raw)"
assert_eq 1 "$(grep -o typed <<<"$raw" | count_lines)" "echoes of the typed line with -i -t"

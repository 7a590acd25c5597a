#!/usr/bin/env bash
# t-image-default: a repository with no devbox.ini on a fresh machine: the first exec builds
# the default image (Debian bookworm from the Debian archive with mmdebstrap; no container
# registry) once, and every later project reuses it.
. "$(dirname "$0")/lib.sh"

command -v mmdebstrap >/dev/null || skip "mmdebstrap not installed"
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx exec -- sh -c '. /etc/os-release; echo "$ID $VERSION_CODENAME"; command -v curl; command -v git'
assert_eq $'debian bookworm\n/usr/bin/curl\n/usr/bin/git' "$OUT" "the default image"
ok dbx images --json
assert_eq default "$(json_get "$OUT" 'j[0]["name"]')" "images: the default image's name"
assert_eq debian "$(json_get "$OUT" 'j[0]["source"]')" "images: where it came from"
# the root filesystem is root's, setuid bits kept, built without host root where rootless
ok dbx exec -- stat -c '%u:%g %a' /usr/bin/passwd /etc/shadow
assert_eq $'0:0 4755\n0:42 640' "$OUT" "owners and modes from the Debian packages"

# git's editor (Debian's git opens `editor`): `git commit` in a terminal edits its message in
# nano (found in use: "error: cannot run editor: No such file or directory")
PTY=("$PYTHON" "$E2E_DIR/pty.py")
# (typed once nano has drawn the message and set up its terminal: it discards what came before)
run "${PTY[@]}" --timeout 120 --expect 'Initial commit' --sleep 1 --send 'from nano' --send '\x18' \
    --expect 'Save modified buffer' --send 'y' --expect 'File Name to Write' --send '\r' \
    -- "$DEVBOX" exec -i -t -- sh -c 'cd /tmp && git init -q ed && cd ed && git -c user.name=a -c user.email=a@b commit -q --allow-empty'
assert_eq 0 "$RC" "exit code of git commit through its editor: $(show "$(tail -c 300 "$TEST_TMP/stdout")")"
ok dbx exec -- git -C /tmp/ed log -1 --format=%s
assert_eq "from nano" "$OUT" "the message typed in the editor"

# a terminal this image has no terminfo entry for (kitty's, here made from xterm-256color):
# the host's goes along, and ncurses in the box reads it
ti="$TEST_TMP/terminfo"
infocmp -x xterm-256color | sed '1,2s/^xterm-256color|[^,]*/devbox-test-kitty|a test terminal/' >"$ti.src" &&
    mkdir -p "$ti" && tic -x -o "$ti" "$ti.src" || fail "tic"
TERMINFO=$ti TERM=devbox-test-kitty run "${PTY[@]}" --rows 30 --cols 97 --timeout 60 -- "$DEVBOX" exec -t -- tput cols
assert_eq 0 "$RC" "tput with the host's entry: $(show "$(cat "$TEST_TMP/stdout")")"
assert_eq 97 "$(tr -d '\r' <"$TEST_TMP/stdout")" "tput cols with the host's entry"

R2=$(make_repo proj2)
t0=$SECONDS
ok dbx -C "$R2" exec -- true
assert_le $((SECONDS - t0)) 60 "second project's first exec (seconds; no rebuild)"
assert_eq 1 "$(ls "$DEVBOX_HOME/data/bases" | grep -c '\.raw$')" "base disks"

#!/usr/bin/env bash
# t-enter: an interactive login shell on a terminal, in the host cwd; its exit code returns.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
mkdir -p "$R/sub dir"
esc=$(printf '%s' "$R/sub dir" | sed 's/[][\.*^$+?(){}|]/\\&/g')

# enter boots the VM itself (cold)
run_in "$R/sub dir" "$PYTHON" "$E2E_DIR/pty.py" --timeout 150 \
    --expect '[#$] ' --send 'echo "PWD=[$(pwd)] TTY=[$(tty)]"\r' \
    --expect "PWD=\\[$esc\\] TTY=\\[/dev/pts/[0-9]+\\]" \
    --send 'exit 3\r' -- "$DEVBOX" enter
out=$(tr -d '\r' <"$TEST_TMP/stdout")
assert_eq 3 "$RC" "exit code of 'exit 3' in devbox enter; output: $(show "$out")"
assert_contains "$out" "PWD=[$R/sub dir]" "cwd of the login shell"
assert_match "$out" 'TTY=\[/dev/pts/[0-9]+\]' "terminal of the login shell"

# again on the running VM, with -C from elsewhere; exit 0
run_in "$TEST_TMP" "$PYTHON" "$E2E_DIR/pty.py" --timeout 60 \
    --expect '[#$] ' --send 'echo "UID=[$(id -u)]"\r' --expect 'UID=\[[0-9]+\]' --send 'exit\r' \
    -- "$DEVBOX" -C "$R" enter
assert_eq 0 "$RC" "exit code of a plain 'exit' in devbox enter"
assert_contains "$(tr -d '\r' <"$TEST_TMP/stdout")" "UID=[$(box_uid)]" "uid in the login shell"

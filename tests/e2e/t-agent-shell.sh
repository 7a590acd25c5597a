#!/usr/bin/env bash
# t-agent-shell: `devbox exec --shell 'CMD STRING'` runs the string with the box user's shell
# (cwd, exit code, stdin, signals as exec), and an agent on the host whose shell prefix is
# tools/devbox-shell-prefix, called exactly as Claude Code calls CLAUDE_CODE_SHELL_PREFIX
# (tests/e2e/fake-claude.py), gets the right output, directory and exit codes from the box.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
SUB="$R/sub dir/deeper"
mkdir -p "$SUB" "$R/sub"
SUB_REAL=$(cd "$SUB" && pwd -P)
cd "$R" || fail "cd $R"
ok dbx exec -- true # boot first

# ---- devbox exec --shell ---------------------------------------------------------------------
ok dbx exec -- sh -c 'printf %s "$SHELL"'
BOX_SHELL=$OUT
ok dbx exec --shell 'echo "$0"'
assert_eq "$BOX_SHELL" "$OUT" "the shell --shell runs (its \$0) is the box's \$SHELL"

# one string, parsed by the shell in the box: quotes, variables, ;, &&, redirections
ok dbx exec --shell 'x="a  b"; y=it\'"'"'s; printf "%s:%s\n" "$x" "$y" && echo err >&2'
assert_eq "a  b:it's" "$OUT" "quotes and variables"
assert_eq err "$ERR" "stderr"
expect_rc 9 dbx exec --shell 'echo before; exit 9'
assert_eq before "$OUT"
expect_rc 1 dbx exec --shell 'false && echo not-reached'
assert_eq "" "$OUT"
expect_rc 127 dbx exec --shell 'no-such-command-dbx'
expect_rc 143 dbx exec --shell 'kill -TERM $$'

# the working directory maps as for exec: the host's, or -w
run_in "$SUB" "$DEVBOX" exec --shell 'pwd -P'
assert_eq 0 "$RC" "exec --shell from a subdirectory"
assert_eq "$SUB_REAL" "$OUT" "cwd of exec --shell"
ok dbx exec -w "sub dir" --shell 'pwd -P'
assert_eq "$(cd "$R/sub dir" && pwd -P)" "$OUT" "cwd of exec -w DIR --shell"

# a terminal with -t: the string's commands see it, its exit code comes through
run "$PYTHON" "$E2E_DIR/pty.py" --rows 33 --cols 101 --timeout 60 -- "$DEVBOX" exec -t --shell 'tty && stty size; exit 4'
assert_eq 4 "$RC" "exit code of exec -t --shell"
assert_match "$(tr -d '\r' <"$TEST_TMP/stdout")" $'^/dev/pts/[0-9]+\n33 101$' "tty and size with exec -t --shell"

# stdin with -i
printf 'one\ntwo\nthree\n' >"$TEST_TMP/in.txt"
run_stdin "$TEST_TMP/in.txt" dbx exec -i --shell 'n=0; while read -r l; do n=$((n + 1)); done; echo "$n lines"'
assert_eq 0 "$RC" "exec -i --shell"
assert_eq "3 lines" "$OUT" "stdin through exec -i --shell"

# $SHELL chooses the shell: -e SHELL, the passwd entry; nologin is not one
printf '#!/bin/sh\necho "myshell $1" >&2\nexec /bin/sh "$@"\n' >"$R/myshell"
chmod 755 "$R/myshell"
ok dbx exec -e SHELL="$R/myshell" --shell 'echo hi'
assert_eq hi "$OUT"
assert_eq "myshell -c" "$ERR" "the shell named by SHELL runs the string"
ok dbx exec -e SHELL=/usr/sbin/nologin --shell 'echo "fine $0"'
assert_eq "fine /bin/sh" "$OUT" "a nologin SHELL falls back to /bin/sh"
uid=$(box_uid)
ok dbx exec --admin -- sh -c "awk -F: -v OFS=: '\$3 == $uid { \$7 = \"/bin/ash\" } 1' /etc/passwd >/etc/passwd.new && cat /etc/passwd.new >/etc/passwd"
ok dbx exec --shell 'echo "$0"'
assert_eq /bin/ash "$OUT" "the passwd entry's shell runs the string"

# usage errors are devbox's: 125, one line
expect_rc 125 dbx exec --shell echo hi
assert_contains "$ERR" "one command string"
expect_rc 125 dbx exec --shell

# SIGINT to the client reaches the command: 130, and nothing is left running in the box
guest_sleepers() { guest_running 'sleep 100'; } # "sleep 100" processes in the guest
sleeping() { [ "$(guest_sleepers)" -ge 1 ]; }
not_sleeping() { [ "$(guest_sleepers)" = 0 ]; }
"$PYTHON" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$DEVBOX" exec --shell 'sleep 100; echo not-reached' >"$TEST_TMP/sig.out" 2>"$TEST_TMP/sig.err" </dev/null &
pid=$!
wait_until 60 sleeping || fail "'sleep 100' never showed up in the guest"
kill -INT "$pid"
wait "$pid"
rc=$?
assert_eq 130 "$rc" "exit code of exec --shell after SIGINT"
assert_eq "" "$(cat "$TEST_TMP/sig.out")" "output after SIGINT"
wait_until 10 not_sleeping || fail "'sleep 100' still runs in the guest after SIGINT"

# ---- an agent on the host: Claude Code's CLAUDE_CODE_SHELL_PREFIX -------------------------------
# Claude Code writes its command strings for bash or zsh: `source FILE 2>/dev/null || true` of a
# snapshot the box does not have is fatal in busybox's ash (`.` is a special builtin), harmless
# in bash, zsh and dash (no `source`).  So the box user's shell is bash here, as in a Debian
# image, where devbox's default user gets it.
import_bash_image withbash
R=$(make_repo agent)
write_profile "$R" $'[box]\nimage = withbash'
SUB="$R/sub dir/deeper"
mkdir -p "$SUB" "$R/sub"
SUB_REAL=$(cd "$SUB" && pwd -P)
cd "$R" || fail "cd $R"
ok dbx exec --admin -- sh -c "awk -F: -v OFS=: '\$3 == $uid { \$7 = \"/bin/bash\" } 1' /etc/passwd >/etc/passwd.new && cat /etc/passwd.new >/etc/passwd"
ok dbx exec --shell 'echo "$0"'
assert_eq /bin/bash "$OUT" "the box user's shell for the agent"

export CLAUDE_CODE_SHELL_PREFIX=$REPO_ROOT/tools/devbox-shell-prefix
mkdir -p "$TEST_TMP/agent-home"
agent() { # DIR COMMAND: the fake agent, from DIR
    run env HOME="$TEST_TMP/agent-home" "$PYTHON" "$E2E_DIR/fake-claude.py" "$@"
}
agent_out() { printf '%s' "$OUT" | sed '$d'; }       # the command's output
agent_cwd() { printf '%s' "$OUT" | sed -n '$s/^cwd-after: //p'; }

agent "$SUB" 'pwd'
assert_eq 0 "$RC" "agent pwd: rc; output $(show "$OUT")"
assert_eq "$SUB_REAL" "$(agent_out)" "agent pwd: the box starts in the agent's directory"
agent "$R" 'cat /proc/sys/kernel/random/boot_id'
assert_eq 0 "$RC" "agent: boot_id"
assert_ne "$(cat /proc/sys/kernel/random/boot_id)" "$(agent_out)" "agent: the command ran in the box, not on the host"

agent "$R" 'ls no-such-file-here'
assert_ne 0 "$RC" "agent: a failing command fails"
assert_ne 125 "$RC" "agent: a failing command's own code, not devbox's"
assert_contains "$(agent_out)" "no-such-file-here" "agent: the error message comes back"
agent "$R" 'echo partial; exit 7'
assert_eq 7 "$RC" "agent: exit code preserved"
assert_eq partial "$(agent_out)"

agent "$SUB" 'x="two  spaces"; y='"'"'single $HOME'"'"'; printf "%s:%s:%s\n" "$x" "$y" "${PWD##*/}"'
assert_eq 0 "$RC" "agent: quotes and variables; output $(show "$OUT")"
assert_eq "two  spaces:single \$HOME:deeper" "$(agent_out)" "agent: quotes and variables"
ok dbx exec -- sh -c 'printf %s "$HOME"'
BOX_HOME=$OUT
agent "$R" 'echo "home=$HOME" && echo "back\\slash \"dq\" \$notexpanded"'
assert_eq 0 "$RC" "agent: \$HOME and escapes; output $(show "$OUT")"
assert_eq "home=$BOX_HOME
back\\slash \"dq\" \$notexpanded" "$(agent_out)" "agent: variables expand in the box"
agent "$R" "cat <<'EOF'
a 'quoted' \$line
EOF"
assert_eq 0 "$RC" "agent: heredoc"
assert_eq "a 'quoted' \$line" "$(agent_out)" "agent: heredoc"
agent "$R" 'echo to-stderr >&2; false'
assert_eq 1 "$RC" "agent: false"
assert_eq to-stderr "$(agent_out)" "agent: stderr comes back"

# `cd` in the box does not move the agent on the host: Claude Code reads its next directory
# from a file under the host's /tmp, which the box cannot write
agent "$SUB" 'cd / && pwd'
assert_eq 0 "$RC" "agent: cd"
assert_eq / "$(agent_out)" "agent: cd inside the command"
assert_eq "$SUB" "$(agent_cwd)" "agent: the host agent's directory after a cd in the box"

# options after the prefix's path go to devbox exec (Claude Code splits the variable at the first
# " -" after the last "/", so they must not contain a "/")
CLAUDE_CODE_SHELL_PREFIX="$REPO_ROOT/tools/devbox-shell-prefix -e AGENT_FLAG=on -w sub" \
    agent "$R" 'echo "$AGENT_FLAG ${PWD##*/}"'
assert_eq 0 "$RC" "agent: prefix with options; output $(show "$OUT")"
assert_eq "on sub" "$(agent_out)" "agent: prefix options reach devbox exec"

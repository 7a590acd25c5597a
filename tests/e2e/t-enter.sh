#!/usr/bin/env bash
# t-enter: an interactive login shell on a terminal, in the host cwd; its exit code returns.
# The shell is the user's passwd shell when it can run, else bash when the image has it, else
# sh; it starts as a login shell ("-sh", "-bash") and every command gets SHELL.  enter takes
# exec's options for a shell (--admin, -w, -u, -e, --env-file); exec --env-file.
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
    --expect '[#$] ' --send 'echo "UID=[$(id -u)] SH=[$SHELL] ZERO=[$0]"\r' --expect 'UID=\[[0-9]+\]' --send 'exit\r' \
    -- "$DEVBOX" -C "$R" enter
assert_eq 0 "$RC" "exit code of a plain 'exit' in devbox enter"
out=$(tr -d '\r' <"$TEST_TMP/stdout")
assert_contains "$out" "UID=[$(box_uid)]" "uid in the login shell"
# the busybox image has no bash: sh, as a login shell
assert_contains "$out" "SH=[/bin/sh] ZERO=[-sh]" "shell of devbox enter without bash"
run dbx -C "$R" exec -u 1500 -- sh -c 'echo "$SHELL"'
assert_eq /bin/sh "$OUT" "SHELL of a uid without a passwd entry, no bash in the image"

# A background job holding the terminal does not keep enter waiting once the shell exits (a
# terminal window closes, ssh ends the session; it never returned before): the terminal hangs
# up, the shell's last output and exit code still arrive, and the job lives on in the box.
run_in "$R" "$PYTHON" "$E2E_DIR/pty.py" --timeout 60 \
    --expect '[#$] ' --send 'set -m; sleep 1000 & echo "JOB=[$!]"\r' --expect 'JOB=\[[0-9]+\]' \
    --send 'echo "last words"; exit 4\r' -- "$DEVBOX" enter
out=$(tr -d '\r' <"$TEST_TMP/stdout")
assert_eq 4 "$RC" "exit code of enter whose shell left a job on the terminal; output: $(show "$out")"
assert_contains "$out" "last words" "the shell's last output"
job=$(printf '%s' "$out" | sed -n 's/.*JOB=\[\([0-9]*\)\].*/\1/p' | tail -n 1)
ok dbx -C "$R" ps
assert_contains "$OUT" "sleep 1000" "the job after enter returned"
ok dbx -C "$R" kill "$job"
# the same for exec -t: the command's output up to its exit, and its code
run_in "$R" timeout 60 "$DEVBOX" exec -t -- sh -c 'set -m; sleep 1000 & echo "after the job"; exit 5'
assert_eq 5 "$RC" "exec -t whose command left a job on the terminal"
assert_eq "after the job" "$(printf '%s' "$OUT" | tr -d '\r')" "its output"
# a job that writes on cannot keep the session open: what the terminal held is read, no more
run_in "$R" timeout 60 "$DEVBOX" exec -t -- sh -c 'set -m; yes & sleep 0.3; exit 3'
assert_eq 3 "$RC" "exec -t whose job writes on to the terminal after the command's exit"
ok dbx -C "$R" kill --all

# exec's options for a shell: --admin (a root shell), -w, -e and --env-file (docker's format:
# comments and blank lines skipped, K alone from devbox's environment, -e over the file)
printf '# the env file\n\n  FROM_FILE=a b\nBOTH=file\nHOSTVAR\n' >"$TEST_TMP/env"
run_in "$R" env HOSTVAR=here "$PYTHON" "$E2E_DIR/pty.py" --timeout 60 \
    --expect '[#$] ' --send 'echo "UID=[$(id -u)] PWD=[$(pwd)] F=[$FROM_FILE] B=[$BOTH] H=[$HOSTVAR]"\r' \
    --expect 'UID=\[[0-9]+\] PWD' --send 'exit\r' \
    -- "$DEVBOX" enter --admin -w "sub dir" --env-file "$TEST_TMP/env" -e BOTH=flag
out=$(tr -d '\r' <"$TEST_TMP/stdout")
assert_eq 0 "$RC" "devbox enter --admin; output: $(show "$out")"
assert_contains "$out" "UID=[0] PWD=[$R/sub dir] F=[a b] B=[flag] H=[here]" "enter's options"
run_in "$R" env HOSTVAR=here "$DEVBOX" exec --env-file "$TEST_TMP/env" -- sh -c 'echo "$FROM_FILE|$BOTH|$HOSTVAR"'
assert_eq "a b|file|here" "$OUT" "exec --env-file"
# -e over the file for every program (one entry per name, not two that only a shell reads
# last-wins), a file
# with a BOM and CRLF lines, and a pipe read once when the box is stopped (the lean client hands
# the command to the full devbox, which reads it)
printf '\xef\xbb\xbfCRLF=dos\r\nBOTH=file\r\n' >"$TEST_TMP/env-dos"
run_in "$R" "$DEVBOX" exec --env-file "$TEST_TMP/env-dos" -e BOTH=flag -- sh -c 'env | grep -E "^(CRLF|BOTH)=" | sort'
assert_eq "BOTH=flag
CRLF=dos" "$OUT" "exec --env-file with CRLF, -e over it: one BOTH in the environment"
ok dbx -C "$R" stop
run_in "$R" "$DEVBOX" exec --env-file <(printf 'PIPED=yes\n') -- sh -c 'echo "$PIPED"'
assert_eq "yes" "$OUT" "--env-file from a pipe, the box stopped"

# ---- an image with bash ------------------------------------------------------------------
import_bash_image withbash
B=$(make_repo bash)
write_profile "$B" $'[box]\nimage = withbash'
# a uid without a passwd entry gets bash; a passwd shell is kept (dev's is /bin/sh)
run dbx -C "$B" exec -u 1500 -- sh -c 'echo "$SHELL"'
assert_eq /bin/bash "$OUT" "SHELL of a uid without a passwd entry, bash in the image"
run dbx -C "$B" exec -u dev -- sh -c 'echo "$SHELL"'
assert_eq /bin/sh "$OUT" "SHELL of dev, whose passwd shell is /bin/sh"
# an entry devbox wrote before it chose shells ("devbox" with /bin/sh) is not the user's choice;
# a passwd shell that is missing is not used
ok dbx -C "$B" exec -u root -- sh -c 'echo "old:x:1600:1600:devbox:/tmp:/bin/sh" >> /etc/passwd &&
    echo "gone:x:1601:1601:gone:/tmp:/usr/bin/zsh" >> /etc/passwd &&
    sed -i -e "s#^root:x:0:0:root:/root:/bin/sh\$#root:x:0:0:root:/root:/bin/bash#" \
        -e "s#^\(dev:.*\):/bin/sh\$#\1:/bin/bash#" /etc/passwd'
run dbx -C "$B" exec -u 1600 -- sh -c 'echo "$SHELL"'
assert_eq /bin/bash "$OUT" "SHELL of an entry devbox wrote with /bin/sh"
run dbx -C "$B" exec -u 1601 -- sh -c 'echo "$SHELL"'
assert_eq /bin/bash "$OUT" "SHELL of an entry whose shell is missing"
# root's and dev's passwd shells are now bash (the box user is dev, uid 1000, when the host
# user is root): enter runs it as a login shell
run_in "$B" "$PYTHON" "$E2E_DIR/pty.py" --timeout 150 \
    --expect '[#$] ' --send 'echo "SH=[$SHELL] ZERO=[$0] BV=[${BASH_VERSION:+set}]"\r' \
    --expect 'SH=\[[^]]*\] ZERO' --send 'exit\r' -- "$DEVBOX" enter
out=$(tr -d '\r' <"$TEST_TMP/stdout")
assert_eq 0 "$RC" "exit code of devbox enter with bash; output: $(show "$out")"
assert_contains "$out" "SH=[/bin/bash] ZERO=[-bash] BV=[set]" "login shell of devbox enter with bash"

# ---- the Debian image: root's passwd shell is bash ---------------------------------------
import_debian deb
D=$(make_repo deb)
write_profile "$D" $'[box]\nimage = deb'
run_in "$D" "$PYTHON" "$E2E_DIR/pty.py" --timeout 150 \
    --expect '[#$] ' --send 'echo "SH=[$SHELL] ZERO=[$0] BV=[${BASH_VERSION:+set}] HC=[$HISTCONTROL]"\r' \
    --expect 'SH=\[[^]]*\] ZERO' --send 'exit 4\r' -- "$DEVBOX" enter
out=$(tr -d '\r' <"$TEST_TMP/stdout")
assert_eq 4 "$RC" "exit code of devbox enter on Debian; output: $(show "$out")"
assert_contains "$out" "SH=[/bin/bash] ZERO=[-bash] BV=[set]" "login shell of devbox enter on Debian"
# the box user's new home got the image's /etc/skel, as useradd -m gives one: Debian's
# .profile and .bashrc (found in use: an empty home, no history settings, no ls colours)
assert_contains "$out" "HC=[ignoreboth]" "Debian's ~/.bashrc read by the login shell"
run dbx -C "$D" exec -- sh -c 'stat -c "%U %a" ~/.bashrc ~/.profile'
assert_eq $'devbox 644\ndevbox 644' "$OUT" "owner and mode of the files from /etc/skel"
run dbx -C "$D" exec -u 1500 -- sh -c 'echo "$SHELL"'
assert_eq /bin/bash "$OUT" "SHELL of a uid without a passwd entry on Debian"

#!/usr/bin/env bash
# t-exit-codes: 127 not found, 126 not executable, 128+N killed by signal N, 125 devbox
# failure (outside a git work tree: one line "devbox: ...").  The guest's PATH search is
# execvpe's: the first directory whose name executes wins, one whose name is not executable is
# passed over (126 when nothing else runs), a missing name, a dangling link and a PATH element
# that is a file are passed over, an empty element is the working directory.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# outside a git work tree: before anything boots
mkdir -p "$TEST_TMP/norepo"
run_in "$TEST_TMP/norepo" "$DEVBOX" exec -- true
assert_eq 125 "$RC" "exit code of exec outside a git work tree"
assert_one_line "$ERR" "stderr of exec outside a git work tree"
assert_match "$ERR" '^devbox: ' "stderr of exec outside a git work tree"
run "$DEVBOX" -C "$TEST_TMP/norepo" exec -- true
assert_eq 125 "$RC" "exit code of exec -C DIR outside a git work tree"
assert_one_line "$ERR" "stderr of exec -C outside a git work tree"
assert_match "$ERR" '^devbox: ' "stderr of exec -C outside a git work tree"
[ -z "$(qemu_pids)" ] || fail "a VM was started for a directory outside any repository"

expect_rc 127 dbx exec -- no-such-command-dbx
assert_contains "$ERR" "no-such-command-dbx" "stderr for a missing command"
expect_rc 127 dbx exec -- /no/such/path/cmd

printf '#!/bin/sh\necho should-not-run\n' >"$R/script.sh"
chmod 644 "$R/script.sh"
expect_rc 126 dbx exec -- ./script.sh
assert_not_contains "$OUT" "should-not-run"
expect_rc 126 dbx exec -- "$R/script.sh"
mkdir -p "$R/adir"
expect_rc 126 dbx exec -- "$R/adir"
chmod 755 "$R/script.sh"
ok dbx exec -- ./script.sh
assert_eq should-not-run "$OUT" "output once executable"

# the PATH search (the guest stats each name before its execve: a miss skips the execve)
mkdir -p "$R/p1" "$R/p2" "$R/p3"
printf '#!/bin/sh\necho p1\n' >"$R/p1/dbxcmd"
chmod 644 "$R/p1/dbxcmd" # there, but not executable: passed over
printf '#!/bin/sh\necho p2\n' >"$R/p2/dbxcmd"
chmod 755 "$R/p2/dbxcmd"
printf '#!/bin/sh\necho p3\n' >"$R/p3/dbxcmd"
chmod 755 "$R/p3/dbxcmd"
ln -s "$R/nowhere" "$R/p1/dbxlink" # dangling: not there
: >"$R/afile"
ok dbx exec -e "PATH=$R/nodir:$R/afile:$R/p1:$R/p2:$R/p3" -- dbxcmd
assert_eq p2 "$OUT" "the PATH search: the first directory whose name executes"
expect_rc 126 dbx exec -e "PATH=$R/nodir:$R/p1" -- dbxcmd
expect_rc 127 dbx exec -e "PATH=$R/nodir:$R/afile:$R/p1" -- dbxlink
expect_rc 127 dbx exec -e "PATH=$R/nodir:$R/afile" -- dbxcmd
ok dbx exec -w "$R/p3" -e "PATH=$R/nodir::$R/p2" -- dbxcmd
assert_eq p3 "$OUT" "an empty PATH element: the working directory"

# a file that is there whose interpreter is not: still 127 (bash's "required file not found"),
# and the line names what is missing (found in use: a script with Windows line endings said
# "No such file or directory", of a file the user could see); through the PATH search too, and
# an ELF program's loader (the host's `true`, its loader's name changed)
printf '#!/bin/sh\r\necho crlf\r\n' >"$R/crlf.sh"
chmod 755 "$R/crlf.sh"
expect_rc 127 dbx exec -- ./crlf.sh
assert_eq "devbox: exec './crlf.sh': its #! line names '/bin/sh\r', which is not in the box (the line ends in \r: Windows line endings)" \
    "$ERR" "the line for a script with Windows line endings"
mkdir -p "$R/p4"
printf '#!/nix/store/dbx-bash/bin/bash -e\necho nix\n' >"$R/p4/dbxnix"
chmod 755 "$R/p4/dbxnix"
expect_rc 127 dbx exec -e "PATH=$R/nodir:$R/p4" -- dbxnix
assert_eq "devbox: exec 'dbxnix': '$R/p4/dbxnix': its #! line names '/nix/store/dbx-bash/bin/bash', which is not in the box" \
    "$ERR" "the line for a script found on PATH whose interpreter is missing"
"$PYTHON" - "$(type -P true)" "$R/elfprog" <<'EOF' || fail "could not make an ELF program with a missing loader"
import sys
b = open(sys.argv[1], "rb").read()
old = b"/lib64/ld-linux-x86-64.so.2\0"
assert old in b, "the host's true has no /lib64 loader"
open(sys.argv[2], "wb").write(b.replace(old, b"/lib64/ld-dbx-nowhere.so.2\0\0", 1))
EOF
chmod 755 "$R/elfprog"
expect_rc 127 dbx exec -- ./elfprog
assert_eq "devbox: exec './elfprog': it is an ELF program whose loader '/lib64/ld-dbx-nowhere.so.2' is not in the box (built for another system?)" \
    "$ERR" "the line for an ELF program whose loader is missing"
printf '#!/no/dbx-sh' >"$R/nonl.sh" # no newline: the file's end ends the name, as the kernel's
chmod 755 "$R/nonl.sh"
expect_rc 127 dbx exec -- ./nonl.sh
assert_eq "devbox: exec './nonl.sh': its #! line names '/no/dbx-sh', which is not in the box" \
    "$ERR" "the line for a #! line without its newline"
printf '#!/%0300d\n' 0 >"$R/long.sh" # longer than the kernel reads: not judged
chmod 755 "$R/long.sh"
expect_rc 126 dbx exec -- ./long.sh
expect_rc 127 dbx exec -- ./no-such-file
assert_eq "devbox: exec './no-such-file': No such file or directory" "$ERR" "the line for a missing file"

expect_rc 130 dbx exec -- sh -c 'kill -INT $$'
expect_rc 137 dbx exec -- sh -c 'kill -KILL $$'
expect_rc 143 dbx exec -- sh -c 'kill -TERM $$'
expect_rc 129 dbx exec -- sh -c 'kill -HUP $$'

# the shell's own codes for not-found / not-executable are passed through as any other code
expect_rc 127 dbx exec -- sh -c 'no-such-command-dbx'
expect_rc 3 dbx exec -- sh -c 'exit 3'

#!/usr/bin/env bash
# t-streams: stdout and stderr stay separate and binary-safe, in both directions, and in the order
# written when the client's are one file (2>&1, a terminal); a client whose output nobody reads
# does not keep `devbox stop` from ending the box.  Output that cannot be written (a full disk;
# /dev/full) is a failure with one line and 125, for exec's command output, `status` and `logs`,
# while a reader that goes away (`| head`) is not: the command then meets a closed pipe
# (SIGPIPE), as it would on the host.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

ok dbx exec -- sh -c 'echo out1; echo err1 >&2; echo out2; echo err2 >&2'
assert_eq $'out1\nout2' "$OUT" "stdout"
assert_eq $'err1\nerr2' "$ERR" "stderr"

# ---- stdout and stderr that are one file keep their order (found in use) ---------------------
# `devbox exec -- make 2>&1 | tail` showed every compiler warning after every line of make's: the
# guest read the command's two pipes in turn.  When the client's stdout and stderr are one open
# file (`2>&1`, a terminal) the command gets one pipe as both, as it would here; apart, two.
interleave='for i in 1 2 3 4 5; do echo "out $i"; echo "err $i" >&2; done'
want=$(sh -c "$interleave" 2>&1)
dbx exec -- sh -c "$interleave" >"$TEST_TMP/o" 2>&1
assert_eq "0 $want" "$? $(cat "$TEST_TMP/o")" "stdout and stderr into one file (2>&1)"
dbx exec -- sh -c "$interleave" 2>&1 | cat >"$TEST_TMP/o"
assert_eq "0 $want" "${PIPESTATUS[0]} $(cat "$TEST_TMP/o")" "stdout and stderr into one pipe (2>&1 |)"
: >"$TEST_TMP/o"
dbx exec -- sh -c "$interleave" >>"$TEST_TMP/o" 2>>"$TEST_TMP/o"
assert_eq "0 $want" "$? $(cat "$TEST_TMP/o")" "stdout and stderr appended to one file (>>f 2>>f)"
# the shell's fds 1 and 2, the same pipe or two (readlink is a BusyBox applet its sh may run in
# its own process, so not `readlink /proc/self/fd/1 >&2`)
fds='echo $(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/2)'
pipes() { # DESC FILE: the line in FILE names one pipe twice, or two ("apart" in DESC)
    local fd1 fd2
    read -r fd1 fd2 <<<"$(tr -d '\r' <"$2")"
    assert_match "$fd1 $fd2" "^pipe:\[[0-9]+\] pipe:\[[0-9]+\]$" "$1: the command's stdout and stderr"
    case $1 in
    *apart*) [ "$fd1" != "$fd2" ] || fail "$1: the command's stdout and stderr are one pipe" ;;
    *) assert_eq "$fd1" "$fd2" "$1: the command's stderr is its stdout" ;;
    esac
}
dbx exec -- sh -c "$fds" >"$TEST_TMP/o" 2>&1
pipes "2>&1 into a file" "$TEST_TMP/o"
dbx exec -- sh -c "$fds" 2>&1 | cat >"$TEST_TMP/o"
pipes "2>&1 into a pipe" "$TEST_TMP/o"
: >"$TEST_TMP/o"
dbx exec -- sh -c "$fds" >>"$TEST_TMP/o" 2>>"$TEST_TMP/o"
pipes ">>f 2>>f" "$TEST_TMP/o"
"$PYTHON" "$E2E_DIR/pty.py" --timeout 60 -- "$DEVBOX" exec -- sh -c "$fds" >"$TEST_TMP/o"
pipes "a terminal without -t" "$TEST_TMP/o"
dbx exec -- sh -c "$fds" >"$TEST_TMP/o" 2>"$TEST_TMP/e"
pipes "stdout and stderr apart" "$TEST_TMP/o"
dbx exec -- sh -c "$fds" >"$TEST_TMP/o" 2>"$TEST_TMP/o" # each open at its own offset, as here
pipes ">f 2>f, apart" "$TEST_TMP/o"
# where the client cannot use kcmp(2) (a kernel without it; Docker's seccomp filter refuses it
# without CAP_SYS_PTRACE): `>f 2>&1` is still told from `>f 2>f`
# (LeakSanitizer cannot stop the world under a tracer: off for this one client of `make asan`'s)
kcmp_off() {
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -f -qq -o /dev/null -e trace=kcmp -e inject=kcmp:error=ENOSYS "$@"
}
kcmp_off "$DEVBOX" exec -- sh -c "$fds" >"$TEST_TMP/o" 2>&1
pipes "2>&1 into a file, without kcmp" "$TEST_TMP/o"
kcmp_off "$DEVBOX" exec -- sh -c "$fds" >"$TEST_TMP/o" 2>"$TEST_TMP/o"
pipes ">f 2>f without kcmp, apart" "$TEST_TMP/o"
# a detached command's log is one file too (`devbox logs PID`)
ok dbx exec -d -- sh -c "$interleave"
pid=$OUT
for _ in $(seq 50); do
    run dbx logs "$pid"
    [ "$OUT" = "$want" ] && break
    sleep 0.2
done
assert_eq "$want" "$OUT" "the log of a detached command writing to both streams"
# the reader gone: the command's stderr, now the same pipe, meets it too (a shell dies of
# SIGPIPE in its echo to stderr or to stdout, as here)
dbx exec -- sh -c 'while :; do echo out; echo err >&2; done' 2>&1 | head -n 2 >"$TEST_TMP/o"
assert_eq "141 out err" "${PIPESTATUS[0]} $(tr '\n' ' ' <"$TEST_TMP/o" | sed 's/ $//')" \
    "a writer to both streams into '2>&1 | head -n 2'"

# all 256 byte values, 4 times
"$PYTHON" -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 4)' >"$R/bytes.bin"

dbx exec -- cat bytes.bin >"$TEST_TMP/o" 2>"$TEST_TMP/e"
assert_eq 0 "$?" "exit code of cat bytes.bin"
cmp "$R/bytes.bin" "$TEST_TMP/o" >/dev/null || fail "stdout of 'cat bytes.bin' differs: $(cmp "$R/bytes.bin" "$TEST_TMP/o" 2>&1)"
[ ! -s "$TEST_TMP/e" ] || fail "stderr not empty: $(show "$(cat "$TEST_TMP/e")")"

dbx exec -- sh -c 'cat bytes.bin >&2' >"$TEST_TMP/o" 2>"$TEST_TMP/e"
assert_eq 0 "$?" "exit code of cat bytes.bin >&2"
cmp "$R/bytes.bin" "$TEST_TMP/e" >/dev/null || fail "stderr of 'cat bytes.bin >&2' differs: $(cmp "$R/bytes.bin" "$TEST_TMP/e" 2>&1)"
[ ! -s "$TEST_TMP/o" ] || fail "stdout not empty: $(show "$(cat "$TEST_TMP/o")")"

# a full disk under the command's output: the command ends as it would (its exit code in the
# line), and devbox fails, since the output is lost
dbx exec -- sh -c 'seq 100000; exit 3' >/dev/full 2>"$TEST_TMP/e"
assert_eq 125 "$?" "exit code with stdout on a full disk"
assert_eq "devbox: could not write the command's stdout: No space left on device; the rest of it was dropped (the command exited 3)" \
    "$(cat "$TEST_TMP/e")" "the line for stdout on a full disk"
dbx exec -- sh -c 'seq 1000 >&2' 2>/dev/full
assert_eq 125 "$?" "exit code with stderr on a full disk"
dbx status >/dev/full 2>"$TEST_TMP/e"
assert_eq "125 devbox: status: write to stdout: No space left on device" "$? $(cat "$TEST_TMP/e")" "status on a full disk"
dbx logs >/dev/full 2>"$TEST_TMP/e"
assert_eq "125 devbox: write the log 'supervisor.log' to stdout: No space left on device" "$? $(cat "$TEST_TMP/e")" "logs on a full disk"
# a reader that goes away is no failure of devbox's: the command meets a pipe without a reader,
# as it would here (`yes | head` ends by SIGPIPE, 141; it never ended before), nothing on stderr
dbx exec -- yes 2>"$TEST_TMP/e" | head -n 2 >"$TEST_TMP/o"
assert_eq "141 y
y" "${PIPESTATUS[0]} $(cat "$TEST_TMP/o")" "exec's exit code and output of yes into '| head -n 2'"
[ ! -s "$TEST_TMP/e" ] || fail "stderr with '| head': $(show "$(cat "$TEST_TMP/e")")"
# as root too, with no word about root's capabilities (a hint for commands that fail by
# themselves, not for one whose reader went away)
dbx exec -u root -- yes 2>"$TEST_TMP/e" | head -n 1 >"$TEST_TMP/o"
assert_eq "141 y" "${PIPESTATUS[0]} $(cat "$TEST_TMP/o")" "exec -u root of yes into '| head -n 1'"
[ ! -s "$TEST_TMP/e" ] || fail "stderr of exec -u root with '| head': $(show "$(cat "$TEST_TMP/e")")"
# only the writer: a shell goes on after its child's SIGPIPE, as here
dbx exec -- sh -c 'yes; echo "after $?" >&2' 2>"$TEST_TMP/e" | head -n 1 >"$TEST_TMP/o"
assert_eq "0 y after 141" "${PIPESTATUS[0]} $(cat "$TEST_TMP/o") $(cat "$TEST_TMP/e")" "a shell whose child met '| head -n 1'"
# on a terminal (-t) the reader gone is the terminal gone: it hangs up, as a closed terminal
# window does, and the command ends by SIGHUP (129; it never ended before)
dbx exec -t -- yes 2>"$TEST_TMP/e" | head -n 1 >"$TEST_TMP/o"
assert_eq "129 y" "${PIPESTATUS[0]} $(tr -d '\r' <"$TEST_TMP/o")" "exec -t of yes into '| head -n 1'"
[ ! -s "$TEST_TMP/e" ] || fail "stderr of exec -t with '| head': $(show "$(cat "$TEST_TMP/e")")"
# a shell on the terminal ends with its children, as a hung-up login shell does
dbx exec -t -- sh -c 'yes; echo "after $?" >/dev/null' 2>"$TEST_TMP/e" | head -n 1 >"$TEST_TMP/o"
assert_eq "129 y" "${PIPESTATUS[0]} $(tr -d '\r' <"$TEST_TMP/o")" "exec -t of a shell into '| head -n 1'"
dbx exec -d -- true 2>"$TEST_TMP/e" | true # the pid, to a reader that is gone
assert_eq 0 "${PIPESTATUS[0]}" "exec -d's exit code into '| true'"
[ ! -s "$TEST_TMP/e" ] || fail "stderr of exec -d into '| true': $(show "$(cat "$TEST_TMP/e")")"

# stdin -> stdout, binary
dbx exec -i -- cat <"$R/bytes.bin" >"$TEST_TMP/o" 2>"$TEST_TMP/e"
assert_eq 0 "$?" "exit code of cat with -i"
cmp "$R/bytes.bin" "$TEST_TMP/o" >/dev/null || fail "bytes through stdin->stdout differ: $(cmp "$R/bytes.bin" "$TEST_TMP/o" 2>&1)"

# bytes produced in the guest (no tty: no \n -> \r\n, NUL kept)
dbx exec -- sh -c 'i=0; while [ $i -lt 256 ]; do printf "\\$(printf %o $i)"; i=$((i+1)); done' >"$TEST_TMP/o"
"$PYTHON" -c 'import sys; sys.stdout.buffer.write(bytes(range(256)))' >"$TEST_TMP/want"
cmp "$TEST_TMP/want" "$TEST_TMP/o" >/dev/null || fail "256 byte values printed in the guest differ: $(cmp "$TEST_TMP/want" "$TEST_TMP/o" 2>&1), $(od -An -tx1 "$TEST_TMP/o" | head -n 2)"

# both streams busy at once, 4 MiB each: nothing lost, nothing crossed
dbx exec -- sh -c 'head -c 4194304 /dev/zero | tr "\0" o & head -c 4194304 /dev/zero | tr "\0" e >&2; wait' \
    >"$TEST_TMP/o" 2>"$TEST_TMP/e"
assert_eq 0 "$?" "exit code of the two-stream writer"
assert_eq 4194304 "$(wc -c <"$TEST_TMP/o")" "bytes on stdout"
assert_eq 4194304 "$(wc -c <"$TEST_TMP/e")" "bytes on stderr"
assert_eq "" "$(tr -d o <"$TEST_TMP/o" | head -c 100)" "foreign bytes on stdout"
assert_eq "" "$(tr -d e <"$TEST_TMP/e" | head -c 100)" "foreign bytes on stderr"

# a slow reader on the host: flow control must hold the guest back, not drop data
dbx exec -- head -c 3000000 /dev/urandom | (sleep 3; wc -c) >"$TEST_TMP/n"
assert_eq 3000000 "$(cat "$TEST_TMP/n" | tr -d ' ')" "bytes received by a slow reader"

# ---- closed standard fds (found in use) -------------------------------------------------------
# `devbox exec -- echo hi >&-` answered 'protocol version 104, expected 11': the connection to the
# supervisor got fd 1 and the command's output went into it; `exec -i -- cat <&-` hung.  As here:
# output that cannot be written fails (a command's own write fails with EBADF; devbox says what
# it dropped), a closed stdin is no input.  The lean client, and the full one run directly.
for client in "$DEVBOX" "$(dirname "$DEVBOX")/devbox-full"; do
    c=$(basename "$client")
    timeout -k 5 "$DBX_CMD_TIMEOUT" "$client" exec -- sh -c 'echo hi; echo err >&2; exit 3' \
        >&- 2>"$TEST_TMP/e"
    assert_eq "125 err
devbox: could not write the command's stdout: Bad file descriptor; the rest of it was dropped (the command exited 3)" \
        "$? $(cat "$TEST_TMP/e")" "$c: exec with stdout closed"
    timeout -k 5 "$DBX_CMD_TIMEOUT" "$client" exec -- sh -c 'echo hi; echo err >&2' \
        >"$TEST_TMP/o" 2>&-
    assert_eq "125 hi" "$? $(cat "$TEST_TMP/o")" "$c: exec with stderr closed"
    timeout -k 5 "$DBX_CMD_TIMEOUT" "$client" exec -i -- sh -c 'wc -c; echo done' \
        <&- >"$TEST_TMP/o" 2>"$TEST_TMP/e"
    assert_eq "0 0 done" "$? $(tr '\n' ' ' <"$TEST_TMP/o" | sed 's/ *$//')" \
        "$c: exec -i with stdin closed"
    [ ! -s "$TEST_TMP/e" ] || fail "$c: stderr of exec -i with stdin closed: $(show "$(cat "$TEST_TMP/e")")"
    timeout -k 5 "$DBX_CMD_TIMEOUT" "$client" exec -- true <&- >&- 2>&-
    assert_eq 0 "$?" "$c: exec true with all three closed"
    timeout -k 5 "$DBX_CMD_TIMEOUT" "$client" status >&- 2>"$TEST_TMP/e"
    assert_eq "125 devbox: status: write to stdout: Bad file descriptor" "$? $(cat "$TEST_TMP/e")" \
        "$c: status with stdout closed"
done
# and with the box stopped: the lean client hands over, the full one starts the supervisor
ok dbx stop
timeout -k 5 "$DBX_CMD_TIMEOUT" "$DEVBOX" exec -i -- sh -c 'wc -c; echo hi' <&- >&- 2>"$TEST_TMP/e"
assert_eq 125 "$?" "exec booting the box with stdin and stdout closed"
assert_contains "$(cat "$TEST_TMP/e")" "devbox: could not write the command's stdout: Bad file descriptor; the rest of it was dropped (the command exited 0)" \
    "exec booting the box with stdin and stdout closed"

# ---- a client whose output nobody reads does not keep the box from stopping --------------------
# Its devbox blocks writing to a full pipe and reads nothing more from the supervisor, whose last
# frames to it then cannot go out; the stop's writes are bounded (2 s), so `devbox stop` returns
# and the next command boots a new box (the stop used to wait for that client for good).
mkfifo "$TEST_TMP/fifo" || fail "mkfifo"
exec 7<>"$TEST_TMP/fifo" # opened both ways, and never read
"$DEVBOX" exec -- head -c 50000000 /dev/zero >&7 2>/dev/null </dev/null &
stuck=$!
for _ in $(seq 100); do
    case $(cat "/proc/$stuck/wchan" 2>/dev/null) in *pipe_write) break ;; esac
    sleep 0.2
done
assert_match "$(cat "/proc/$stuck/wchan" 2>/dev/null)" "pipe_write$" "the unread client blocked on its stdout"
sleep 2 # the guest fills the supervisor's buffer and the socket towards it meanwhile
ok timeout -k 5 60 "$DEVBOX" stop
assert_no_vm_procs 10
kill -KILL "$stuck" 2>/dev/null # blocked in a write, it takes no SIGTERM (devbox reads its signals)
wait "$stuck" 2>/dev/null
exec 7>&-
ok dbx exec -- echo again
assert_eq again "$OUT" "a command after the stop"

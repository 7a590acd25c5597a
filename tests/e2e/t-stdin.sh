#!/usr/bin/env bash
# t-stdin: stdin is forwarded with -i (10 MiB of random bytes hash the same in the guest),
# stdout carries large binary output intact, and without -i the command sees EOF at once.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

head -c 10M /dev/urandom >"$R/rand.bin"
want=$(sha256sum <"$R/rand.bin" | cut -d' ' -f1)

# through a pipe, as a user would
t0=$SECONDS
got=$(head -c 10M "$R/rand.bin" | dbx exec -i -- sha256sum; exit "${PIPESTATUS[1]}")
rc=$?
log "pipe of 10 MiB into sha256sum: rc=$rc ($((SECONDS - t0))s) $got"
assert_eq 0 "$rc" "exit code of 'head -c 10M | devbox exec -i -- sha256sum'"
assert_eq "$want" "${got%% *}" "sha256 of 10 MiB piped through devbox exec -i"

# from a file
run_stdin "$R/rand.bin" dbx exec -i -- sha256sum
assert_eq 0 "$RC" "exit code"
assert_eq "$want" "${OUT%% *}" "sha256 of 10 MiB redirected from a file"

# 10 MiB the other way: guest stdout to the host
dbx exec -- cat rand.bin >"$TEST_TMP/back.bin" 2>"$TEST_TMP/back.err"
rc=$?
assert_eq 0 "$rc" "exit code of 'devbox exec -- cat rand.bin'"
assert_eq "$want" "$(sha256sum <"$TEST_TMP/back.bin" | cut -d' ' -f1)" "sha256 of 10 MiB of guest stdout"

# EOF is delivered: line count of a short input
got=$(printf 'a\nb\nc\n' | dbx exec -i -- wc -l)
assert_eq 3 "$(echo $got)" "wc -l of 3 lines through -i"

# without -i the command sees EOF at once (does not hang, reads nothing)
got=$(printf 'not forwarded\n' | DBX_CMD_TIMEOUT=60 dbx exec -- cat; exit "${PIPESTATUS[1]}")
rc=$?
assert_eq 0 "$rc" "exit code of 'devbox exec -- cat' without -i"
assert_eq "" "$got" "stdout of 'cat' without -i"

# a command that does not read its stdin still exits; data left unread is no error
head -c 1M /dev/zero | dbx exec -i -- true
rc=${PIPESTATUS[1]}
assert_eq 0 "$rc" "exit code of 'true' with 1 MiB of unread stdin"

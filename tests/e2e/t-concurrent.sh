#!/usr/bin/env bash
# t-concurrent: 20 execs at once on one VM, each with its own stdin, stdout, stderr and exit
# code.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx exec -- true # boot

N=20
for i in $(seq 1 $N); do
    (printf 'in-%s\n' "$i" | dbx exec -i -- sh -c 'read x; echo "$x-out"; echo "err-$1" >&2; sleep 1; exit $(($1 % 7))' sh "$i" \
        >"$TEST_TMP/c$i.out" 2>"$TEST_TMP/c$i.err"
    echo $? >"$TEST_TMP/c$i.rc") &
done
wait
bad=0
for i in $(seq 1 $N); do
    rc=$(cat "$TEST_TMP/c$i.rc")
    out=$(cat "$TEST_TMP/c$i.out")
    err=$(cat "$TEST_TMP/c$i.err")
    if [ "$rc" != $((i % 7)) ] || [ "$out" != "in-$i-out" ] || [ "$err" != "err-$i" ]; then
        log "exec $i: rc=$rc (want $((i % 7))) out=$(show "$out") err=$(show "$err")"
        bad=$((bad + 1))
    fi
done
assert_eq 0 "$bad" "concurrent execs with a wrong exit code or output (of $N)"
assert_eq 1 "$(qemu_pids | count_lines)" "qemu processes after $N concurrent execs"

# concurrent bulk output does not mix between sessions
for i in 1 2 3 4; do
    (dbx exec -- sh -c 'head -c 2000000 /dev/zero | tr "\0" "$1"' sh "$i" >"$TEST_TMP/b$i.out"
    echo $? >"$TEST_TMP/b$i.rc") &
done
wait
for i in 1 2 3 4; do
    assert_eq 0 "$(cat "$TEST_TMP/b$i.rc")" "exit code of bulk writer $i"
    assert_eq 2000000 "$(wc -c <"$TEST_TMP/b$i.out")" "bytes from bulk writer $i"
    assert_eq "" "$(tr -d "$i" <"$TEST_TMP/b$i.out" | head -c 50)" "foreign bytes in bulk writer $i's output"
done

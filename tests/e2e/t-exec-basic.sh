#!/usr/bin/env bash
# t-exec-basic: exit code and files: the repository is shared at the same absolute path, a
# file the command writes lands on the host owned by the invoking user.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

expect_rc 7 dbx exec -- sh -c 'echo hi > out.txt; exit 7'
assert_file "$R/out.txt"
assert_eq hi "$(cat "$R/out.txt")" "content of out.txt"
assert_eq "$(id -u):$(id -g)" "$(stat -c %u:%g "$R/out.txt")" "owner of out.txt on the host"

# same absolute path in the guest, and host changes are visible at once (shared, not copied)
ok dbx exec -- pwd
assert_eq "$R" "$OUT" "guest cwd"
echo "from host" >"$R/host.txt"
ok dbx exec -- cat "$R/host.txt"
assert_eq "from host" "$OUT" "host file read in the guest"
ok dbx exec -- sh -c 'mkdir -p d/e && echo nested > d/e/f && rm host.txt'
assert_eq nested "$(cat "$R/d/e/f" 2>&1)" "file in a directory made by the guest"
assert_eq "$(id -u):$(id -g)" "$(stat -c %u:%g "$R/d/e")" "owner of a guest-made directory"
[ ! -e "$R/host.txt" ] || fail "host.txt deleted in the guest still exists on the host"

# run from a directory deleted under the shell: one line that says so (it said "'.': No such
# file or directory"), through both clients
for client in lean full; do
    mkdir "$R/gone" || fail "mkdir gone"
    (
        cd "$R/gone" && rmdir "$R/gone" || exit 1
        DEVBOX_CLIENT=$client expect_rc 125 dbx exec -- pwd
        assert_eq "devbox: the current directory no longer exists (deleted or moved): cd to the repository again" "$ERR" "exec from a deleted directory ($client client)"
    ) || fail "exec from a deleted directory ($client client)"
done

# plain exit codes pass through
for c in 0 1 2 100 255; do
    expect_rc "$c" dbx exec -- sh -c "exit $c"
done
expect_rc 1 dbx exec -- false

# The command's umask is the caller's, so that files come out with the modes the same command
# gives them here (found in use: with umask 077 a file the box made was 644); through the spare
# process (the default user) and without it (--admin).
(
    umask 027
    ok dbx exec -- sh -c 'umask; rm -rf um.f um.d; touch um.f; mkdir um.d'
    assert_eq 0027 "$OUT" "the box user's umask"
    assert_eq "640 750" "$(stat -c %a "$R/um.f" "$R/um.d" | tr '\n' ' ' | sed 's/ $//')" "modes of what the box made"
    ok dbx exec --admin -- sh -c umask
    assert_eq 0027 "$OUT" "the admin's umask"
    umask 0
    ok dbx exec -- sh -c umask
    assert_eq 0000 "$OUT" "umask 0"
) || fail "umask"
rm -rf "$R/um.f" "$R/um.d"

# File locks taken in the box are the box's (README): a lock a host process holds, fcntl's or
# flock's, does not hold for the box, and one that waits is granted (QEMU's virtiofsd with
# posix_lock and flock passed locks to the host but refused those: "Operation not supported").
build_probe "$R"
mkfifo "$TEST_TMP/held" || fail "mkfifo"
"$PYTHON" -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").write("held\n")
time.sleep(120)' "$R/lk" "$TEST_TMP/held" &
holder=$!
CLEANUP_HOOKS+=("kill $holder 2>/dev/null")
read -r held <"$TEST_TMP/held"
assert_eq held "$held" "the host's locks on lk"
ok dbx exec --timeout 30s -- ./probe lock lk
assert_eq $'setlk ok\nsetlkw ok\nflock ok' "$OUT" "locks in the box (the host holding lk)"
kill "$holder"
rm -f "$R/lk" "$R/probe"

# A tool installed under ~/.local/bin (pip --user, pipx, npm --prefix ~/.local) runs by name, as
# from a login shell, and a tool a command installs is found by that same command; the admin's
# PATH stays fixed, and a login shell's ~/.profile adds the entries itself.
ok dbx exec -- sh -c 'mkdir -p ~/.local/bin && printf "#!/bin/sh\necho local-tool\n" >~/.local/bin/dbx-local-tool && chmod +x ~/.local/bin/dbx-local-tool'
ok dbx exec -- dbx-local-tool
assert_eq local-tool "$OUT" "a tool in ~/.local/bin run by name"
ok dbx exec --shell -- 'dbx-local-tool'
assert_eq local-tool "$OUT" "the same through the user's shell"
ok dbx exec -- sh -c 'echo "$PATH"'
HOME_IN_BOX=$(dbx exec -- sh -c 'echo "$HOME"')
assert_eq "$HOME_IN_BOX/.local/bin:$HOME_IN_BOX/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$OUT" "exec's PATH"
ok dbx exec -- sh -c 'mkdir -p ~/bin && printf "#!/bin/sh\necho bin-tool\n" >~/bin/dbx-bin-tool && chmod +x ~/bin/dbx-bin-tool && dbx-bin-tool'
assert_eq bin-tool "$OUT" "a tool the same command put in ~/bin"
ok dbx exec -e PATH=/usr/bin:/bin -- sh -c 'echo "$PATH"'
assert_eq /usr/bin:/bin "$OUT" "a PATH typed with -e"
ok dbx exec --admin -- sh -c 'echo "$PATH"'
assert_eq /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$OUT" "the admin's PATH"
ok dbx exec -- sh -c 'rm -rf ~/.local/bin/dbx-local-tool ~/bin'

# A command line as large as the host lets one be runs as it would there (an agent's `python3
# -c "$script"`, a patch handed over as one argument, xargs' 128 KiB lines of short names): one
# argument of 131071 bytes (execve's most, with its NUL), 500 KiB in five, 20,000 arguments;
# more than the box's execve takes in all fails as a local exec fails, "Argument list too long"
# and 126, and the box keeps serving.
a127k=$(head -c 131071 /dev/zero | tr '\0' a)
ok dbx exec -- sh -c 'echo "${#1}"' _ "$a127k"
assert_eq 131071 "$OUT" "one argument of 131071 bytes"
b100k=$(head -c 102400 /dev/zero | tr '\0' b)
for client in lean full; do
    DEVBOX_CLIENT=$client ok dbx exec -- sh -c 'n=0; for a; do n=$((n + ${#a})); done; echo "$# $n"' _ "$b100k" "$b100k" "$b100k" "$b100k" "$b100k"
    assert_eq "5 512000" "$OUT" "five arguments of 100 KiB ($client client)"
done
mapfile -t many < <(seq 1 20000)
ok dbx exec -- sh -c 'echo "$# ${20000}"' _ "${many[@]}"
assert_eq "20000 20000" "$OUT" "20,000 arguments"
ok dbx exec -e "BIG=$b100k" -- sh -c 'echo "${#BIG}"'
assert_eq 102400 "$OUT" "an environment variable of 100 KiB"
# 2.3 MiB: more than the box's execve takes (its stack's rlimit, 8 MiB, a quarter of it), run
# with a larger stack here so that the host's own execve of devbox takes it
big=()
for _ in $(seq 23); do big+=("$b100k"); done
(
    ulimit -s 65536 || exit 1
    run dbx exec -- true "${big[@]}"
    [ "$RC" = 126 ] || fail "23 arguments of 100 KiB exited $RC, expected 126: $(show "$ERR")"
    assert_contains "$ERR" "exec 'true': Argument list too long" "more than the box's execve takes"
) || fail "2.3 MiB of arguments"
# over 6 MiB + 40 KiB in all, what no execve takes: 6 MiB of arguments (a stack without limit
# lets the host's execve of devbox take them) and 700 KiB of variables from --env-file, refused
# before it reaches the box (by the full client: the lean one hands --env-file to it)
envf="$TEST_TMP/big.env"
for i in 1 2 3 4 5 6 7; do printf 'V%s=%s\n' "$i" "$b100k"; done >"$envf"
big=()
for _ in $(seq 60); do big+=("$b100k"); done
(
    ulimit -s unlimited || exit 1
    run dbx exec --env-file "$envf" -- true "${big[@]}"
    [ "$RC" = 126 ] || fail "6.7 MiB exited $RC, expected 126: $(show "$ERR")"
    assert_contains "$ERR" "over 6332416): Argument list too long" "6.7 MiB in all"
) || fail "6.7 MiB of arguments and variables"
# an -e without a name is a mistake of the command line: 125, as before
expect_rc 125 dbx exec -e =x -- true
assert_contains "$ERR" "invalid environment entry '=x'" "-e =x"
ok dbx exec -- echo still serving
assert_eq "still serving" "$OUT" "the box after the refusals"

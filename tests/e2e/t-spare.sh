#!/usr/bin/env bash
# t-spare: the default user's commands start from the spare process init keeps ready
# (guest/init-exec.c: already confined and checked, it forks each command); three boots.
# - A command started that way has the identity, capabilities, no_new_privs, seccomp filter,
#   rlimits, OOM score, parent and a leaf cgroup of its own exactly as one started the ordinary
#   way (the same user named with -u, which does not use the spare), and the same errors (no
#   such command, a directory it cannot enter).
# - The spare is not listed by ps nor counted in the box's pids (it waits outside the box), and
#   a process of the box (its own user) can read neither its memory nor its environment.
# - What a box process can do to it: killed, a new one takes the next commands (three times,
#   then none that boot); stopped (SIGSTOP), the command that needed it starts the ordinary way
#   (the spare forked nothing), init's console says why, and so do the boot's later ones;
#   stopped by the command it started, that command has run once (it fails or not), never
#   twice; its
#   limits lowered (prlimit), the command that would inherit them starts the ordinary way
#   instead, and so do the boot's later ones.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"
uid=$(box_uid)
gid=$(box_gid)

ok dbx exec -- true # the boot; the spare is made while the box is idle after it

# how a command started: the spare's phases (g_wake: it received the command) or the child's
started_by() { # ARGS...: sets BY to "spare" or "child"
    DEVBOX_EXEC_TIMING=1 run dbx exec "$@" -- true
    [ "$RC" = 0 ] || fail "exec $* -- true: rc $RC: $(show "$ERR")"
    local line
    line=$(printf '%s\n' "$ERR" | grep '^devbox: exec timing (us): ')
    assert_one_line "$line" "timing line of exec $*"
    if [[ $line == *" g_wake="* ]]; then
        [[ $line != *" g_verify="* ]] || fail "both ways in one timing line: $line"
        BY=spare
    else
        assert_match "$line" " g_verify=[0-9]+" "the child's phases"
        BY=child
    fi
}
started_by
assert_eq spare "$BY" "the default user's command"
started_by -u "$uid:$gid"
assert_eq child "$BY" "a command naming its user"
started_by
assert_eq spare "$BY" "the next default command, after one that did not use the spare"

# ---- the same confinement either way ---------------------------------------------------------
state='grep -E "^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs|Seccomp|Seccomp_filters|PPid|Umask):" /proc/$$/status
cat /proc/$$/limits; echo "oom=$(cat /proc/$$/oom_score_adj)"; echo "policy=$(cut -d" " -f41 /proc/$$/stat)"
echo "cgroup=$(sed "s/s[0-9]*$/sN/" /proc/$$/cgroup)"; echo "cwd=$(pwd)"; ./probe ids; ./probe status'
umask 027 # the caller's umask, either way
ok dbx exec -- sh -c "$state"
by_spare=$OUT
ok dbx exec -u "$uid:$gid" -- sh -c "$state"
by_child=$OUT
umask 022
[[ $'\n'$by_spare$'\n' == *$'\nUmask:\t0027\n'* ]] || fail "the spare's command's umask: $(show "$by_spare")"
assert_eq "$by_child" "$by_spare" "the state of a command started each way"
assert_confined_status "$by_spare" "a command the spare started"
assert_kv "$by_spare" uid "$uid/$uid/$uid" "ids"
assert_kv "$by_spare" cgroup "0::/box/sN" "its leaf"
# SCHED_OTHER (0), not init's SCHED_BATCH (3)
assert_kv "$by_spare" policy 0 "its scheduling policy"
ok dbx exec -- cut -d" " -f41 /proc/1/stat
assert_eq 3 "$OUT" "init's scheduling policy"
# not grep -q: under pipefail its early exit can fail printf's write (SIGPIPE), and the match
[[ $'\n'$by_spare$'\n' == *$'\nPPid:\t1\n'* ]] || fail "its parent is not init: $(show "$by_spare")"
# each command in a leaf of its own, the spare in none of them
ok dbx exec -- sh -c 'cat /proc/self/cgroup; sh -c "cat /proc/self/cgroup"'
c1=$OUT
ok dbx exec -- cat /proc/self/cgroup
assert_ne "$(printf '%s\n' "$c1" | head -n 1)" "$OUT" "two commands' leaves"
assert_eq 1 "$(printf '%s\n' "$c1" | sort -u | count_lines)" "a command's child stays in its leaf"

# ---- errors come back the same way ------------------------------------------------------------
expect_rc 127 dbx exec -- no-such-command-here
assert_contains "$ERR" "no-such-command-here" "a missing command's error"
ok dbx exec -u root -- sh -c 'mkdir -p /srv/locked/in && chmod 700 /srv/locked'
expect_rc 125 dbx exec -w /srv/locked/in -- true
assert_contains "$ERR" "lacks search permission on '/srv/locked'" "a directory the user cannot enter"
echo input >"$TEST_TMP/in"
run_stdin "$TEST_TMP/in" dbx exec -i -- sh -c 'read x; echo "got $x"'
assert_eq 0 "$RC" "exit code with stdin"
assert_eq "got input" "$(cat "$TEST_TMP/stdout")" "stdin through the spare"

# ---- what a box process can do to it ----------------------------------------------------------
find_spare='for p in /proc/[0-9]*; do
  case "$(tr "\0" " " <$p/cmdline 2>/dev/null)" in "devbox-spare "*) echo ${p#/proc/};; esac
done'
ok dbx exec -- sh -c "$find_spare"
sp=$OUT
assert_match "$sp" '^[0-9]+$' "one spare process in the box"
ok dbx ps
assert_not_contains "$OUT" "devbox-spare" "ps lists commands, not the spare"
# it waits outside the box: none of the box's pids.max is its (a command alone counts one).  It
# is in the command's leaf for the fork and leaves it right after the exec: the sleep waits
# that out.
ok dbx exec -- sh -c 'sleep 0.5; exec cat /sys/fs/cgroup/box/pids.current'
assert_eq 1 "$OUT" "the box's pids.current with one command running"
ok dbx exec -- sh -c "cat /proc/$sp/environ >/dev/null 2>&1 && echo environ-read; \
    head -c 1 /proc/$sp/mem >/dev/null 2>&1 && echo mem-read; stat -c uid=%u /proc/$sp/environ"
assert_not_contains "$OUT" "-read" "its environment or memory read by the box's user"
assert_contains "$OUT" "uid=0" "its /proc files are root's (not dumpable)"

# killed: init makes another while the box is idle (or, when a command comes first, starts it
# the ordinary way)
ok dbx exec -- kill -KILL "$sp"
ok dbx exec -- echo after
assert_eq after "$OUT" "the command after the spare was killed"
started_by
assert_eq spare "$BY" "a command after that, from a new spare"
ok dbx exec -- sh -c "$find_spare"
sp2=$OUT
assert_match "$sp2" '^[0-9]+$' "the new spare"
assert_ne "$sp" "$sp2" "a new spare process"

# stopped: the command that needed it starts the ordinary way (the spare, stopped before it read
# the request, forked nothing), and so do the rest
ok dbx exec -- kill -STOP "$sp2"
ok dbx exec -- echo anyway
assert_eq anyway "$OUT" "the command whose spare was stopped"
started_by
assert_eq child "$BY" "commands after that"
ok dbx exec -- echo still
assert_eq still "$OUT" "the box still serves"
ok dbx exec -- sh -c "$find_spare"
assert_eq "" "$OUT" "no spare left after it was stopped"
ok dbx logs --console
assert_contains "$OUT" "was stopped (by a process in the box?)" "init's console says why"

# stopped by the command it started, perhaps before the spare answered init: whatever init then
# decides, the command ran once, never twice
restart
ok dbx exec -- true # the boot's first command: the spare is made once it has ended
ok dbx exec -- sh -c "$find_spare"
sp4=$OUT
assert_match "$sp4" '^[0-9]+$' "the spare after a restart"
run dbx exec -- sh -c "kill -STOP $sp4; echo ran >>/tmp/runs"
rc=$RC
[ "$rc" = 0 ] || [ "$rc" = 125 ] || fail "a command that stopped its spare exited $rc: $(show "$ERR")"
ok dbx exec -- sh -c 'cat /tmp/runs 2>/dev/null; true'
# empty when init saw the stop and killed the leaf before the echo ran
[ "$rc" = 125 ] && [ -z "$OUT" ] || assert_eq ran "$OUT" "the runs of a command that stopped its spare"

# changed: a box process lowers the spare's open-file limit (prlimit needs only the same uid),
# which its commands would inherit; the command that sees it starts the ordinary way, with the
# profile's limit, and so do the boot's later ones
restart
ok dbx exec -- sh -c 'ulimit -n'
nofile=$OUT
ok dbx exec -- sh -c "$find_spare"
sp3=$OUT
assert_match "$sp3" '^[0-9]+$' "the spare after a restart"
ok dbx exec -- ./probe nofile "$sp3" 64
assert_eq "nofile=OK" "$OUT" "prlimit on the spare by a box process"
ok dbx exec -- sh -c 'ulimit -n'
assert_eq "$nofile" "$OUT" "the open-file limit of the command after the change"
started_by
assert_eq child "$BY" "a command after the spare was changed"
ok dbx logs --console
assert_contains "$OUT" "the spare process was changed by a process in the box (its rlimits)" \
    "init's console says why"

# killed three times: init stops making new ones for the boot
restart
ok dbx exec -- true
for round in 1 2 3; do
    ok dbx exec -- sh -c "$find_spare"
    assert_match "$OUT" '^[0-9]+$' "a spare before kill $round"
    ok dbx exec -- kill -KILL "$OUT"
done
ok dbx exec -- true
ok dbx exec -- sh -c "$find_spare"
assert_eq "" "$OUT" "no spare after it was killed three times"
started_by
assert_eq child "$BY" "commands after the third kill"
ok dbx logs --console
assert_contains "$OUT" "the spare process died 3 times" "init's console says why"

#!/usr/bin/env bash
# t-guest-profile: DEVBOX_GUEST_GDB=1 gives a box QEMU's gdbstub on a unix socket in the
# project's run directory (0700), and bench/guest-profile.py samples the guest through it by
# process while a command runs again and again; the box runs on after it, and serves.  Without
# the variable there is no gdbstub, and the profiler says how to get one.  Devbox kernel only
# (the Debian kernel ships no symbols).
. "$(dirname "$0")/lib.sh"

[ "$E2E_KERNEL" = devbox ] || skip "the Debian kernel has no symbols to profile with"
import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
PROFILER=$REPO_ROOT/bench/guest-profile.py

ok dbx exec -- true
ok dbx status --json
id=$(json_get "$OUT" 'j["id"]')
rundir=$DEVBOX_HOME/run/$id
[ -d "$rundir" ] || fail "no run directory $rundir"
[ -e "$rundir/gdb.sock" ] && fail "a gdbstub without DEVBOX_GUEST_GDB"
DEVBOX_BIN=$DEVBOX run "$PYTHON" "$PROFILER" -C "$R" --seconds 1
assert_ne 0 "$RC" "the profiler against a box without a gdbstub"
assert_contains "$ERR" "DEVBOX_GUEST_GDB=1" "the profiler's error says how to get one"

ok dbx stop
DEVBOX_GUEST_GDB=1 ok dbx exec -- true
[ -S "$rundir/gdb.sock" ] || fail "no gdbstub socket with DEVBOX_GUEST_GDB=1"
assert_eq 700 "$(stat -c %a "$rundir")" "the gdbstub's directory is the user's alone"

DEVBOX_BIN=$DEVBOX run "$PYTHON" "$PROFILER" -C "$R" --seconds 4 --hz 50 -- "$DEVBOX" exec true
assert_eq 0 "$RC" "the profiler: $(show "$ERR")"
n=$(printf '%s\n' "$OUT" | sed -n 's/^guest profile: \([0-9]*\) samples.*/\1/p')
assert_match "$n" '^[0-9]+$' "the sample count"
assert_le 40 "$n" "samples in 4 s at 50 a second"
assert_match "$OUT" $'\n  init +[0-9.]+%' "PID 1's share"
assert_match "$OUT" $'\n  devbox-spare +[0-9.]+%' "the spare's share (it names itself)"
assert_match "$OUT" $'\n  true +[0-9.]+%' "the command's share"

# detached: the VM runs on
ok dbx exec -- echo still here
assert_eq "still here" "$OUT" "a command after the profiler detached"

# a profiler that ends while the guest runs (terminated mid-sample) leaves it running: it
# stops the VM before it detaches
DEVBOX_BIN=$DEVBOX "$PYTHON" "$PROFILER" -C "$R" --seconds 30 --hz 20 >/dev/null 2>&1 &
prof=$!
sleep 3
kill -TERM "$prof"
wait "$prof"
assert_eq 143 "$?" "the profiler, terminated"
ok dbx exec -- echo after an interrupted profile
assert_eq "after an interrupted profile" "$OUT" "a command after the profiler was interrupted"

# the socket goes with the VM
ok dbx stop
[ -e "$rundir/gdb.sock" ] && fail "gdb.sock left after devbox stop"
true

#!/usr/bin/env bash
# t-workspace-replaced: the repository directory deleted and made again at the same path while
# its box runs (`rm -rf repo && git clone URL repo`), found in use.  virtiofsd serves the
# directory it was started on, so before the fix the box went on sharing the old, deleted one:
# `ls` printed nothing and a write failed.  Now an idle box is restarted by the next command,
# which says so in one line and then runs in the new directory (lean client and full devbox
# alike, and after a rename as after a removal); a box with a command still running in the old
# directory is not stopped under it: the new command is refused (125) with a line naming the
# path and `devbox restart`, and the restart shares the new directory; a `[mounts]` share made
# again at its path restarts the box the same way, and says so once even when the full devbox
# the lean client hands the restart to starts after the old box is gone; and of two commands both
# told to restart, the later stops nothing the earlier started.  Eight boots.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
P=$(dirname "$R")
remake() { # FILE: the work tree made again at the same path, holding FILE
    mkdir "$R" && git -C "$R" init -q && printf '%s\n' "$1" >"$R/$1" || fail "remake $R"
}
events_of() { dbx -C "$R" events --json </dev/null 2>/dev/null | grep -c "\"type\":\"$1\"" || true; }

ok dbx -C "$R" exec -- sh -c 'echo one > one; ls'
assert_eq one "$OUT" "the first box's workspace"
QEMU1=$(the_qemu_pid)

# ---- removed and made again, the box idle: the next command restarts it --------------------
rm -rf "$R"
remake two
# a devbox.ini the old box did not start with: the new box does, so no stale-profile warning
printf '# the new clone has one\n' >"$R/devbox.ini"
ok dbx -C "$R" exec -- sh -c 'ls; echo written > w; cat w'
assert_eq "devbox.ini
two
written" "$OUT" "the command sees the new directory and writes into it"
assert_one_line "$ERR" "one notice on stderr (no stale-profile warning)"
assert_contains "$ERR" "devbox: '$R' is a new directory since this box started" "the notice names the path"
assert_contains "$ERR" "restarting the box" "the notice says what happens"
assert_eq written "$(cat "$R/w")" "the write reached the new directory on the host"
QEMU2=$(the_qemu_pid)
assert_ne "$QEMU1" "$QEMU2" "a new VM"
kill -0 "$QEMU1" 2>/dev/null && fail "the first VM's QEMU ($QEMU1) still runs"
ok dbx -C "$R" exec -- ls
assert_eq "devbox.ini
two
w" "$OUT" "the next command runs in the same box, no second restart"
assert_eq "" "$ERR" "no notice once the box shares the new directory"
assert_eq "$QEMU2" "$(the_qemu_pid)" "the same VM"

# ---- renamed away, a new one in its place; the full devbox this time ------------------------
mv "$R" "$P/proj.old"
remake three
ok env DEVBOX_CLIENT=full DEVBOX_CLIENT_DEBUG=1 "$DEVBOX" -C "$R" exec -- ls
assert_eq three "$OUT" "the full devbox restarts the box too"
assert_contains "$ERR" "client: full" "the full devbox ran it"
assert_contains "$ERR" "restarting the box" "the full devbox's notice"
[ -f "$P/proj.old/w" ] || fail "the renamed directory lost its files"

# ---- a command still running in the old directory: refused, not stopped under it ---------------
ok dbx -C "$R" exec -d -- sleep 600
rm -rf "$R"
remake four
expect_rc 125 dbx -C "$R" exec -- ls
assert_one_line "$ERR" "one error line"
assert_contains "$ERR" "'$R' is a new directory since this box started, and commands or connections still use the old" "the error names the path"
assert_contains "$ERR" "'devbox restart' shares the new one" "the error says what to do"
ok dbx -C "$R" ps
assert_contains "$OUT" "sleep 600" "the running command was left alone"
ok dbx -C "$R" restart
ok dbx -C "$R" exec -- ls
assert_eq four "$OUT" "after the restart the box shares the new directory"
assert_eq "" "$ERR" "no notice after the restart"
[ "$(events_of box.started)" -ge 4 ] || fail "expected four boots in the journal"
ok dbx -C "$R" stop

# ---- a [mounts] share made again at its path: the same, naming the share ------------------------
S=$(make_repo shares)
DATA=$TEST_TMP/data
mkdir -p "$DATA" && echo old >"$DATA/f"
write_profile "$S" "[mounts]
$DATA = /data"
run dbx -C "$S" profile check
case $ERR in *"unknown section '[mounts]'"*) skip "no [mounts] in this build" ;; esac
ok dbx -C "$S" trust
ok dbx -C "$S" exec -- cat /data/f
assert_eq old "$OUT" "the share before"
rm -rf "$DATA" && mkdir -p "$DATA" && echo new >"$DATA/f"
ok dbx -C "$S" exec -- cat /data/f
assert_eq new "$OUT" "the share made again"
assert_one_line "$ERR" "one notice for the share"
assert_contains "$ERR" "devbox: '$DATA' is a new directory since this box started" "the notice names the share"

# ---- the full devbox slower than the old box's stop: the notice still comes, once --------------
# The lean client hands a restart to the full devbox, and the supervisor that asked for it stops
# by itself; a full devbox that connects after that starts the new box without hearing why (seen
# under ASan, whose full devbox starts slowly).  Here it starts only once the old box is gone: a
# copy of the lean client beside a devbox-full that waits for the old QEMU to exit.
ok dbx -C "$S" exec -- true
old=$(the_qemu_pid)
slow=$TEST_TMP/slow
mkdir -p "$slow" && cp "$DEVBOX" "$slow/devbox" || fail "copy the lean client"
printf '#!/bin/sh\nwhile kill -0 %s 2>/dev/null; do sleep 0.1; done\nsleep 1\nexec %s "$@"\n' \
    "$old" "$(dirname "$DEVBOX")/devbox-full" >"$slow/devbox-full" && chmod +x "$slow/devbox-full"
rm -rf "$DATA" && mkdir -p "$DATA" && echo newer >"$DATA/f"
ok timeout -k 5 "$DBX_CMD_TIMEOUT" "$slow/devbox" -C "$S" exec -- cat /data/f
assert_eq newer "$OUT" "the share made again, the full devbox late"
assert_one_line "$ERR" "one notice with the full devbox late"
assert_contains "$ERR" "devbox: '$DATA' is a new directory since this box started" "the late notice names the share"
kill -0 "$old" 2>/dev/null && fail "the old VM's QEMU ($old) still runs"

# ---- two commands told to restart by the same box: the later one stops nothing ----------------
# Both get the answer from the old box.  The first starts the new box and runs its command there;
# the second, slower (its stderr is a full pipe, so it stalls on the notice until the first
# command is running), used to stop whichever box was current when it got there: the new one,
# under the first command.  Now it waits for the box that answered it to be gone, then runs in
# the new one.
ok dbx -C "$S" exec -- true
sup=$(json_get "$(dbx -C "$S" status --json </dev/null)" "j['pid']")
rm -rf "$DATA" && mkdir -p "$DATA" && echo newest >"$DATA/f"
cat >"$TEST_TMP/two.py" <<'EOF'
import fcntl, os, subprocess, sys, threading, time
devbox, repo, old = sys.argv[1], sys.argv[2], int(sys.argv[3])
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, os.O_NONBLOCK)
filled = 0
try:
    while True:
        filled += os.write(w, b"x" * 4096)
except BlockingIOError:
    pass
fcntl.fcntl(w, fcntl.F_SETFL, 0)
env = dict(os.environ, DEVBOX_CLIENT="full")
late = subprocess.Popen([devbox, "-C", repo, "exec", "--", "cat", "/data/f"], env=env,
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=w)
os.close(w)
deadline = time.monotonic() + 120
# the old box stops once it answered the late one; the first command comes once it is gone (a
# command that meets it while it stops waits for it, but one that connects just as it closes
# its socket is refused)
def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
while alive(old):
    if time.monotonic() > deadline:
        sys.exit("the old supervisor never exited")
    time.sleep(0.1)
first = subprocess.Popen([devbox, "-C", repo, "exec", "--", "sh", "-c",
                          "echo started; sleep 5; cat /data/f"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
line = first.stdout.readline()
if line != b"started\n":
    sys.exit("the first command: %r" % line)
err = []
def drain():
    for b in iter(lambda: os.read(r, 65536), b""):
        err.append(b)
t = threading.Thread(target=drain)
t.start()  # the late one goes on now, with the first command running in the new box
lo, _ = late.communicate(timeout=300)
fo, fe = first.communicate(timeout=300)
t.join()
late_err = b"".join(err)[filled:]
print("first rc %d out %r err %r" % (first.returncode, fo, fe))
print("late rc %d out %r err %r" % (late.returncode, lo, late_err))
sys.exit(0 if first.returncode == 0 and fo == b"newest\n" and late.returncode == 0
         and lo == b"newest\n" else 1)
EOF
ok "$PYTHON" "$TEST_TMP/two.py" "$DEVBOX" "$S" "$sup"
assert_contains "$OUT" "first rc 0 out b'newest\\n'" "the first command ran to its end in the new box"
assert_contains "$OUT" "late rc 0 out b'newest\\n'" "the late command ran in the new box too"
assert_contains "$OUT" "is a new directory since this box started" "the late command's notice"
ok dbx -C "$S" stop
assert_no_vm_procs

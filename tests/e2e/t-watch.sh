#!/usr/bin/env bash
# t-watch: host edits wake inotify watchers in the box (issue 13).  One boot; a static probe
# (watch-probe.c) watches a workspace directory in the box and prints each event with the
# file's last line.  An append on the host wakes it within 2 s and it reads the new content; the
# file's mtime on the host only moves forward (never back before the host's own write) and
# settles after each notice; a file created on the host is reported; 1,000 rapid host
# edits reach it as far fewer events, the last edit's content among them; once the edits stop
# the events stop (no feedback loop); a symlink in the workspace pointing outside is never
# followed (its target's ctime is unchanged on the host); a time set on purpose (touch -d, cp -p,
# tar x), on the host or in the box, is kept and still wakes the watcher; the box's own writes
# wake it once, not again for their notice, and keep their mtime.  And a file created
# on the host, its creation noticed by the box, then written: the next command reads what was
# written (the pending notice goes to the guest before the command; the box's attribute cache
# once held the empty file's size for a second).  And with 4,000 directories more, watched a
# slice at a time after the start: the first walk's log line, then an edit at its deepest level
# wakes a watcher there.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R" watch-probe
mkdir -p "$R/w" "$TEST_TMP/outside"
# a node_modules-sized part of the tree (4,000 directories), which the supervisor watches a
# slice at a time after the start rather than all before the first command
(cd "$R/w" && for i in $(seq 2000); do echo "d$i/e"; done | sed 's|^|many/|' | xargs mkdir -p) ||
    fail "make w/many"
echo 0 >"$R/w/a.txt"
echo secret >"$TEST_TMP/outside/target.txt"
ln -s "$TEST_TMP/outside/target.txt" "$R/w/out"
ln -s "$TEST_TMP/outside" "$R/w/outdir"
target_ctime=$(stat -c %.9Z "$TEST_TMP/outside/target.txt")

ok dbx exec -- true
LOG=$TEST_TMP/watch.log
"$DEVBOX" exec -- ./watch-probe w 120 >"$LOG" 2>"$TEST_TMP/watch.err" </dev/null &
PROBE=$!
CLEANUP_HOOKS+=("kill $PROBE 2>/dev/null")
wait_until 60 grep -q '^ready' "$LOG" || fail "the probe did not start: $(show "$(cat "$TEST_TMP/watch.err")")"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_line ERE MS: wait up to MS for a probe line matching ERE; prints the wait in ms
wait_line() {
    local t0 t
    t0=$(now_ms)
    while ! grep -Eq -- "$1" "$LOG"; do
        t=$(now_ms)
        [ $((t - t0)) -gt "$2" ] && return 1
        sleep 0.05
    done
    echo $(($(now_ms) - t0))
}

# ---- an edit wakes the watcher within 2 s, which reads the new content --------------------
# mtime_ns PATH: the host's mtime in ns (%.9Y without its dot: one integer)
mtime_ns() { stat -c %.9Y "$1" | tr -d .; }
# The box's re-touch stamps the host's clock (UTIME_NOW): the mtime never goes back before the
# host's own write, and it settles (each notice is one touch; the touch sends none back).
for k in 1 2; do
    echo "x$k" >>"$R/w/a.txt"
    mtime=$(mtime_ns "$R/w/a.txt")
    ms=$(wait_line " a\.txt content=x$k\$" 2000) ||
        fail "no event for a.txt (edit $k) within 2 s: $(show "$(cat "$LOG")")"
    log "host edit $k seen in the box after ${ms} ms"
    sleep 1
    m1=$(mtime_ns "$R/w/a.txt")
    assert_le "$mtime" "$m1" "a.txt's mtime after the host's write $k <= after the box's re-touch"
    sleep 2
    assert_eq "$m1" "$(mtime_ns "$R/w/a.txt")" "a.txt's mtime 1 s and 3 s after edit $k (no loop)"
done

# ---- a file created on the host is reported ----------------------------------------------
echo hello >"$R/w/new.txt"
wait_line ' new\.txt content=hello$' 2000 >/dev/null ||
    fail "no event for new.txt within 2 s: $(show "$(cat "$LOG")")"

# ---- symlinks to the outside: created and edited through on the host, never followed ------
ln -s "$TEST_TMP/outside/target.txt" "$R/w/out2"
echo more >>"$R/w/outdir/other.txt" # outside the workspace: not watched
outdir_ctime=$(stat -c %.9Z "$TEST_TMP/outside")
sleep 1

# ---- 1,000 rapid edits: coalesced, the last one not lost ----------------------------------
before=$(grep -c ' b\.txt ' "$LOG" || true)
for i in $(seq 1000); do echo "$i" >>"$R/w/b.txt"; done
wait_line ' b\.txt content=1000$' 3000 >/dev/null ||
    fail "the last of 1,000 edits was not reported: $(show "$(tail -n 5 "$LOG")")"
sleep 1
n=$(($(grep -c ' b\.txt ' "$LOG") - before))
log "1,000 host edits of b.txt: $n events in the box"
assert_le "$n" 100 "events for 1,000 edits"

# ---- no feedback loop: once the edits stop, the events stop ------------------------------
sleep 2
c1=$(wc -l <"$LOG")
sleep 3
c2=$(wc -l <"$LOG")
assert_eq "$c1" "$c2" "probe lines 2 s and 5 s after the last edit (tail: $(show "$(tail -n 3 "$LOG")"))"

# ---- a time set on purpose is kept (found in use) ------------------------------------------
# The box's own writes come back as notices, and each notice set the file's mtime to now: a
# `touch -d`, `cp -p` or `tar x` in the box lost its time some 100 ms later.  A time more than
# 2 s from now, either way, is kept, and still wakes the watcher.  On the host first (made, then
# given a time; and cp -p):
old_s=978307200 # 2001-01-01T00:00:00Z
new_s=$(($(date +%s) + 86400))
echo old >"$R/w/old.txt"
touch -d "@$old_s" "$R/w/old.txt"
cp -p "$R/w/old.txt" "$R/w/old2.txt"
echo future >"$R/w/future.txt"
touch -d "@$new_s" "$R/w/future.txt"
for f in old old2; do
    wait_line " $f\.txt content=old\$" 2000 >/dev/null ||
        fail "no event for $f.txt within 2 s: $(show "$(tail -n 5 "$LOG")")"
done
wait_line ' future\.txt content=future$' 2000 >/dev/null ||
    fail "no event for future.txt within 2 s: $(show "$(tail -n 5 "$LOG")")"
assert_eq "$old_s $old_s $new_s" \
    "$(stat -c %Y "$R/w/old.txt") $(stat -c %Y "$R/w/old2.txt") $(stat -c %Y "$R/w/future.txt")" \
    "mtimes on the host of files given a time on the host, after their notices"
# in the box: touch -d, cp -p, tar x (BusyBox's keeps a file's time, not a directory's, which
# touch -d sets), all in the workspace; then a host file as a barrier: notices go out in order
ok dbx exec -- sh -c "echo own >w/own.txt && touch -d @$old_s w/own.txt && cp -p w/own.txt w/own2.txt &&
    mkdir -p w/src/d && echo t >w/src/d/f && touch -d @$old_s w/src/d/f w/src/d &&
    tar cf w/t.tar -C w/src d && mkdir w/x && tar xf w/t.tar -C w/x && touch -d @$old_s w/x/d"
echo over >"$R/w/barrier.txt"
wait_line ' barrier\.txt content=over$' 3000 >/dev/null ||
    fail "no event for barrier.txt within 3 s: $(show "$(tail -n 5 "$LOG")")"
for f in own.txt own2.txt x/d/f x/d; do
    assert_eq "$old_s" "$(stat -c %Y "$R/w/$f")" "mtime on the host of w/$f, given 2001 in the box"
done
ok dbx exec -- stat -c %Y w/own.txt w/own2.txt w/x/d/f w/x/d
assert_eq "$old_s $old_s $old_s $old_s" "$(echo $OUT)" "the same mtimes seen in the box"

assert_eq "$target_ctime" "$(stat -c %.9Z "$TEST_TMP/outside/target.txt")" "ctime of a symlink's target outside"
assert_eq "$outdir_ctime" "$(stat -c %.9Z "$TEST_TMP/outside")" "ctime of a linked directory outside"
assert_not_contains "$(cat "$LOG")" "secret" "the probe's view"

# ---- the box's own writes do not come back (found in use) ----------------------------------
# A write in the box reaches the host as virtiofsd's and comes back as a notice: the probe heard
# each edit made in the box twice (entr -r restarted twice), and the file's mtime moved to the
# notice's time.  The init records what the box's writes leave in what its watchers watch (the
# probe's watch on w, read after the notices above), and a notice that finds exactly that
# touches nothing.  Two writes, each a modify and a close-write, the first a create as well.
ok dbx exec -- sh -c 'echo one >>w/mine.txt && sleep 0.5 && echo two >>w/mine.txt'
m_box=$(mtime_ns "$R/w/mine.txt")
echo over >"$R/w/barrier2.txt"
wait_line ' barrier2\.txt content=over$' 3000 >/dev/null ||
    fail "no event for barrier2.txt within 3 s: $(show "$(tail -n 5 "$LOG")")"
sleep 1
assert_eq "$m_box" "$(mtime_ns "$R/w/mine.txt")" "mtime on the host of a file the box wrote, after its notices"
assert_eq "CREATE MODIFY CLOSE_WRITE MODIFY CLOSE_WRITE" \
    "$(grep ' mine\.txt ' "$LOG" | awk '{print $2}' | tr '\n' ' ' | sed 's/ $//')" \
    "the probe's events for two writes in the box"
echo host >>"$R/w/mine.txt" # and the host's edit of it still wakes the probe
wait_line ' mine\.txt content=host$' 2000 >/dev/null ||
    fail "no event for a host edit of a file the box wrote: $(show "$(tail -n 5 "$LOG")")"
# a box process that opens a file for writing and closes it unwritten (`: >>f`, an O_RDWR open
# only read through) is no write of the box's: a host edit meanwhile still reaches the probe as
# its modify (a record taken at such a close would have held the host's edit)
echo 0 >"$R/w/rw.txt"
wait_line ' rw\.txt content=0$' 2000 >/dev/null || fail "no event for rw.txt: $(show "$(tail -n 5 "$LOG")")"
"$DEVBOX" exec -- sh -c 'end=$(($(date +%s) + 60))
    while [ ! -e w/rw.stop ] && [ "$(date +%s)" -lt "$end" ]; do : >>w/rw.txt; done' \
    </dev/null >/dev/null 2>&1 &
OPENER=$!
CLEANUP_HOOKS+=("kill $OPENER 2>/dev/null")
wait_line ' CLOSE_WRITE rw\.txt ' 30000 >/dev/null || fail "the box's opener did not start"
sleep 0.5
echo host >>"$R/w/rw.txt"
wait_line ' MODIFY rw\.txt content=host$' 3000 >/dev/null ||
    fail "no modify for a host edit of a file the box keeps opening: $(show "$(grep ' rw\.txt ' "$LOG" | sort | uniq -c)")"
touch "$R/w/rw.stop"
wait "$OPENER"
kill "$PROBE" 2>/dev/null
wait "$PROBE" 2>/dev/null
log "probe events: $(wc -l <"$LOG"): $(head -n 8 "$LOG" | tr '\n' ';')"

# the first walk ended (its log line counts every directory), and an edit in a directory at its
# deepest level wakes a watcher there
SUPLOG=$(echo "$DEVBOX_HOME"/state/projects/*/supervisor.log)
wait_until 60 grep -Eq 'file watching: [0-9]{4,} directories' "$SUPLOG" ||
    fail "the first walk did not end: $(show "$(grep 'file watching' "$SUPLOG")")"
n=$(grep -Eo 'file watching: [0-9]+' "$SUPLOG" | tail -n 1 | grep -Eo '[0-9]+$')
assert_le 4000 "$n" "directories watched once the first walk ended"
LOG=$TEST_TMP/watch-deep.log
"$DEVBOX" exec -- ./watch-probe w/many/d2000/e 60 >"$LOG" 2>"$TEST_TMP/watch-deep.err" </dev/null &
PROBE=$!
CLEANUP_HOOKS+=("kill $PROBE 2>/dev/null")
wait_until 60 grep -q '^ready' "$LOG" || fail "the probe did not start: $(show "$(cat "$TEST_TMP/watch-deep.err")")"
echo deep >"$R/w/many/d2000/e/f.txt"
wait_line ' f\.txt content=deep$' 3000 >/dev/null ||
    fail "no event for a file in the last directory the walk reached: $(show "$(cat "$LOG")")"
kill "$PROBE" 2>/dev/null
wait "$PROBE" 2>/dev/null

# created (the box is told at once, and looks at the empty file), written 0.3 s later, read by
# the very next command
for i in 1 2 3 4 5; do
    { sleep 0.3; printf 'written %s\n' "$i"; } >"$R/w/late$i.txt"
    ok dbx exec -- cat "w/late$i.txt"
    assert_eq "written $i" "$OUT" "a host file read right after its write (round $i)"
done
ok dbx stop

#!/usr/bin/env bash
# t-watch-file: a watch on one file in the box hears the host write it in place (MODIFY) and
# replace or delete it.
# Found in use: `node --watch app.js` (and tsc --watch, chokidar on a file) restarted on the
# first edit made in place, then never again once an editor saved by rename (vim, sed -i) or git
# checkout wrote a new file: the box's watch stayed on the old inode, which virtiofs never
# reports gone.  Here, as on a local disk, the old inode's watchers get DELETE_SELF and
# IGNORED, and a watcher that watches the path again (chokidar, TypeScript, the probe's -f
# mode) reads the new content and hears the next replacement too: whether the box's name was
# looked up within the last second (its dentry still valid) or not (expired), by rename, sed
# -i, rm and create, and git checkout.  And a watcher stopped and started again hears an edit
# made in the box once (its notice raises nothing).
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R" watch-probe
mkdir -p "$R/w"
echo v0 >"$R/w/app.js"

ok dbx exec -- true
LOG=$TEST_TMP/watch.log
"$DEVBOX" exec -- ./watch-probe -f w/app.js 200 >"$LOG" 2>"$TEST_TMP/watch.err" </dev/null &
PROBE=$!
CLEANUP_HOOKS+=("kill $PROBE 2>/dev/null")
wait_until 60 grep -q '^ready' "$LOG" || fail "the probe did not start: $(show "$(cat "$TEST_TMP/watch.err")")"

# expect N ERE WHAT [LOG]: the probe's log has at least N lines matching ERE within 5 s
expect() {
    local i log=${4:-$LOG}
    for ((i = 0; i < 100; i++)); do
        [ "$(grep -Ec -- "$2" "$log")" -ge "$1" ] && return 0
        sleep 0.05
    done
    fail "$3: no ${1}th line matching /$2/ within 5 s; the probe saw: $(show "$(cat "$log")")"
}

# an edit in place: MODIFY on the watched inode (worked before)
echo v1 >>"$R/w/app.js"
expect 1 '^ev MODIFY \. content=v1$' "an append on the host"
sleep 1.5

# replaced by rename, the box's dentry expired (no lookup in the last second)
printf 'v2\n' >"$R/w/.app.js.tmp" && mv "$R/w/.app.js.tmp" "$R/w/app.js"
expect 1 'DELETE_SELF' "a rename over the file, the box's name expired"
expect 1 '^rewatched content=v2$' "the watcher's new watch after the first rename"

# replaced again at once: the rewatch looked the name up a moment ago (its dentry still valid)
printf 'v3\n' >"$R/w/.app.js.tmp" && mv "$R/w/.app.js.tmp" "$R/w/app.js"
expect 2 'DELETE_SELF' "a rename over the file, the box's name fresh"
expect 1 '^rewatched content=v3$' "the watcher's new watch after the second rename"
sleep 1.5

# sed -i (a rename, as vim's save)
sed -i 's/v3/v4/' "$R/w/app.js"
expect 3 'DELETE_SELF' "sed -i"
expect 1 '^rewatched content=v4$' "the new watch after sed -i"

# the new watch hears an edit in place again
echo v5 >>"$R/w/app.js"
expect 1 '^ev MODIFY \. content=v5$' "an append after the rewatch"
sleep 1.5

# deleted, then made again
rm "$R/w/app.js"
expect 4 'DELETE_SELF' "rm"
echo v6 >"$R/w/app.js"
expect 1 '^rewatched content=v6$' "the new watch after rm and create"
sleep 1.5

# git checkout writes a new file
git add w/app.js && git commit -qm v6 && echo v7 >"$R/w/app.js"
expect 1 '^ev MODIFY \. content=v7$' "an edit before the checkout"
sleep 1.5
git checkout -q -- w/app.js
expect 5 'DELETE_SELF' "git checkout"
expect 1 '^rewatched content=v6$' "the new watch after git checkout"

sleep 1.5
# as many DELETE_SELF and IGNORED as replacements, one each
assert_eq "5 5" "$(grep -c DELETE_SELF "$LOG") $(grep -c IGNORED "$LOG")" "DELETE_SELF and IGNORED lines"
kill "$PROBE" 2>/dev/null
wait "$PROBE" 2>/dev/null
log "probe: $(tr '\n' ';' <"$LOG")"

# ---- two watchers of one file, the first gone: the second still hears the replacement ------
# (the box learns an inode's name once for all its watches)
echo s0 >"$R/w/shared.js"
L1=$TEST_TMP/w1.log L2=$TEST_TMP/w2.log
"$DEVBOX" exec -- ./watch-probe -f w/shared.js 200 >"$L1" 2>&1 </dev/null &
P1=$!
"$DEVBOX" exec -- ./watch-probe -f w/shared.js 200 >"$L2" 2>&1 </dev/null &
P2=$!
CLEANUP_HOOKS+=("kill $P1 $P2 2>/dev/null")
wait_until 60 grep -q '^ready' "$L1" || fail "the first probe did not start: $(show "$(cat "$L1")")"
wait_until 60 grep -q '^ready' "$L2" || fail "the second probe did not start: $(show "$(cat "$L2")")"
echo s1 >>"$R/w/shared.js" # a notice: the box reads both watches
expect 1 '^ev MODIFY \. content=s1$' "the first watcher, an append" "$L1"
expect 1 '^ev MODIFY \. content=s1$' "the second watcher, an append" "$L2"
sleep 1.5
kill "$P1" 2>/dev/null
wait "$P1" 2>/dev/null
sed -i 's/s1/s2/' "$R/w/shared.js"
expect 1 'DELETE_SELF' "the second watcher, after the first went, sed -i" "$L2"
expect 1 '^rewatched content=s2$' "the second watcher's new watch" "$L2"

# ---- renamed elsewhere on the host: the inode lives on, no DELETE_SELF; its edits still come
sleep 1.5
mv "$R/w/shared.js" "$R/w/moved.js"
sleep 2
echo s3 >>"$R/w/moved.js"
expect 1 '^ev MODIFY \. content=$' "an append to the renamed file" "$L2"
assert_eq 1 "$(grep -c DELETE_SELF "$L2")" "DELETE_SELF lines after a rename elsewhere"
kill "$P2" 2>/dev/null
wait "$P2" 2>/dev/null

# ---- a watcher restarted: an edit in the box after it reaches it once ------------------------
# The init marks each watched inode to tell the box's own writes (their notices come back) from
# the host's.  A watcher stopped and started again watches the same file: the box's next writes
# must still be known as its own (a mark that went with an inode evicted at the stop, its node
# id reused, would have been lost without a word).
echo r0 >"$R/w/restart.js"
L3=$TEST_TMP/w3.log
"$DEVBOX" exec -- ./watch-probe -f w/restart.js 200 >"$L3" 2>&1 </dev/null &
P3=$!
CLEANUP_HOOKS+=("kill $P3 2>/dev/null")
wait_until 60 grep -q '^ready' "$L3" || fail "the probe did not start: $(show "$(cat "$L3")")"
echo r1 >>"$R/w/restart.js" # a notice: the box reads the watch and marks the file
expect 1 '^ev MODIFY \. content=r1$' "a host append, first watcher" "$L3"
sleep 1.5
kill "$P3" 2>/dev/null
wait "$P3" 2>/dev/null
L4=$TEST_TMP/w4.log
"$DEVBOX" exec -- ./watch-probe -f w/restart.js 200 >"$L4" 2>&1 </dev/null &
P4=$!
CLEANUP_HOOKS+=("kill $P4 2>/dev/null")
wait_until 60 grep -q '^ready' "$L4" || fail "the probe did not start again: $(show "$(cat "$L4")")"
echo r2 >>"$R/w/restart.js" # a notice: the box reads the new watch
expect 1 '^ev MODIFY \. content=r2$' "a host append, watcher restarted" "$L4"
sleep 1.5
ok dbx exec -- sh -c 'echo r3 >>w/restart.js'
echo r4 >"$R/w/barrier.js" # notices go out in order
sleep 2
assert_eq "MODIFY CLOSE_WRITE" \
    "$(grep 'content=r3$' "$L4" | awk '{print $2}' | tr '\n' ' ' | sed 's/ $//')" \
    "the restarted watcher's events for an append in the box"
kill "$P4" 2>/dev/null
wait "$P4" 2>/dev/null
ok dbx stop

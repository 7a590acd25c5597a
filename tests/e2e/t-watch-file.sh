#!/usr/bin/env bash
# t-watch-file: a watch on one file in the box hears the host replace or delete that file.
# Found in use: `node --watch app.js` (and tsc --watch, chokidar on a file) restarted on the
# first edit made in place, then never again once an editor saved by rename (vim, sed -i) or git
# checkout wrote a new file: the box's watch stayed on the old inode, which virtiofs never
# reports gone.  Here, as on a local disk, the old inode's watchers get DELETE_SELF and
# IGNORED, and a watcher that watches the path again (chokidar, TypeScript, the probe's -f
# mode) reads the new content and hears the next replacement too: whether the box's name was
# looked up within the last second (its dentry still valid) or not (expired), by rename, sed
# -i, rm and create, and git checkout.
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

# expect N ERE WHAT: the probe's log has at least N lines matching ERE within 5 s
expect() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(grep -Ec -- "$2" "$LOG")" -ge "$1" ] && return 0
        sleep 0.05
    done
    fail "$3: no ${1}th line matching /$2/ within 5 s; the probe saw: $(show "$(cat "$LOG")")"
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

kill "$PROBE" 2>/dev/null
wait "$PROBE" 2>/dev/null
log "probe: $(tr '\n' ';' <"$LOG")"
ok dbx stop

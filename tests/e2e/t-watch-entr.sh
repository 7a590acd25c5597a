#!/usr/bin/env bash
# t-watch-entr: entr in the box reruns its command for every kind of host edit, an edit made in
# place included.  Found in use: `ls app.js | entr -n node app.js` in the box reran for a save by
# rename (sed -i, vim) but never for one made in place (nano, a shell's `>>`): entr follows a
# file's CLOSE_WRITE and not its MODIFY, and a host edit reaches the box's watchers as a MODIFY
# only (guest/init-watch.c).  The box's commands get ENTR_INOTIFY_WORKAROUND=1, entr's own switch
# to follow MODIFY on such file systems.  The host's entr (and its libraries) in the test image.
. "$(dirname "$0")/lib.sh"

import_host_progs default "$(command -v entr || echo /usr/bin/entr)=/usr/bin/entr"
R=$(make_repo proj)
cd "$R" || fail "cd $R"
mkdir -p "$R/w"
echo v0 >"$R/w/app.js"

run dbx exec -- sh -c 'echo "[$ENTR_INOTIFY_WORKAROUND]"'
assert_eq "[1]" "$OUT" "ENTR_INOTIFY_WORKAROUND in the box's environment"

LOG=$TEST_TMP/entr.log
"$DEVBOX" exec -- sh -c 'ls w/app.js | exec entr -n tail -n 1 w/app.js' >"$LOG" \
    2>"$TEST_TMP/entr.err" </dev/null &
ENTR=$!
CLEANUP_HOOKS+=("kill $ENTR 2>/dev/null")
# entr runs the command once as it starts, after its watches are in place
wait_until 60 grep -qx v0 "$LOG" || fail "entr did not start: $(show "$(cat "$TEST_TMP/entr.err")")"

# expect LINE WHAT: entr ran the command and it printed LINE, within 10 s
expect() {
    wait_until 10 grep -qx -- "$1" "$LOG" ||
        fail "$2: entr did not rerun within 10 s; it printed: $(show "$(cat "$LOG")"), stderr: $(show "$(cat "$TEST_TMP/entr.err")")"
}

echo v1 >>"$R/w/app.js" # an append in place
expect v1 "an append on the host"
sleep 1.5
printf 'v2\n' >"$R/w/app.js" # truncated and written in place, as nano saves
expect v2 "a write in place on the host"
sleep 1.5
sed -i 's/v2/v3/' "$R/w/app.js" # a new file renamed over it
expect v3 "sed -i on the host"
sleep 1.5
echo v4 >>"$R/w/app.js" # in place again: entr's new watch, on the new file
expect v4 "an append after the rename"
sleep 2
# once per edit: the box's echo of a host edit raises no second event
assert_eq "v0 v1 v2 v3 v4" "$(tr '\n' ' ' <"$LOG" | sed 's/ $//')" "entr's runs, one per host edit"
grep -q 'broken inotify workaround enabled' "$TEST_TMP/entr.err" ||
    fail "entr did not say it follows MODIFY: $(show "$(cat "$TEST_TMP/entr.err")")"

# an edit in the box still reruns it, once: its notice from the host raises nothing (the init
# recorded what the box's write left)
ok dbx exec -- sh -c 'echo v5 >>w/app.js'
expect v5 "an append in the box"
sleep 2
assert_eq "v0 v1 v2 v3 v4 v5" "$(tr '\n' ' ' <"$LOG" | sed 's/ $//')" "entr's runs after an edit in the box"
kill "$ENTR" 2>/dev/null
wait "$ENTR" 2>/dev/null
ok dbx stop

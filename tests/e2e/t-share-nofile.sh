#!/usr/bin/env bash
# t-share-nofile: a workspace with many more files than the default soft RLIMIT_NOFILE (1024),
# as an ordinary user whose soft limit is 1024: `find`, `tar` and `git status` in the box see
# the whole tree (virtiofsd holds one descriptor per inode the guest knows, so it needs the
# hard limit, not the soft one), and so do four readers at once, on a device the guest must
# kick for every request.  With a hard limit too low for the tree, devbox says so once
# when the box starts.  Needs root (to make the user).
. "$(dirname "$0")/lib.sh"

rootless_user
gimg=$(git_image_tar) || exit $?
cp "$gimg" "$U/share/git.tar" && chmod 644 "$U/share/git.tar" || fail "copy the git image"

# The tree: 6,000 files (six times the soft limit: enough to prove the share does not live
# within it, and small enough that the sanitized run, which walks it four times under TCG, stays
# well inside the per-test timeout; at 20,000 it took 420 s on CI), or fewer when this machine's
# hard limit (what an ordinary user can reach at most) cannot hold that many.
hard=$(as_user sh -c 'ulimit -Hn')
files=6000
if [ "$hard" != unlimited ] && [ "$hard" -lt $((files + 2000)) ]; then files=$((hard - 2000)); fi
[ "$files" -ge 3000 ] || skip "hard RLIMIT_NOFILE of $TU is $hard: too low for a meaningful tree"
log "hard limit of $TU: $hard; tree of $files files"

as_user git init -q "$RU" || fail "git init as $TU"
(
    cd "$RU" || exit 1
    for ((d = 0; d < files / 100; d++)); do
        mkdir "d$d" || exit 1
        for ((f = 0; f < 100; f++)); do printf '%s/%s\n' "$d" "$f" >"d$d/f$f" || exit 1; done
    done
) || fail "make the tree"
chown -R "$TU:$tgid" "$RU"
as_user sh -c "cd '$RU' && git -c user.email=t@e.invalid -c user.name=t add -A &&
    git -c gc.auto=0 -c user.email=t@e.invalid -c user.name=t commit -qm tree && git gc -q" ||
    fail "commit the tree as $TU"
run_in "$RU" as_user "$UD" image import "$U/share/git.tar" default
assert_eq 0 "$RC" "image import as $TU: $(show "$ERR")"

# as_user with limits: soft 1024 (the default), hard $1
ux_limit() {
    local h=$1
    shift
    run_in "$RU" as_user sh -c "ulimit -Hn $h && ulimit -Sn 1024 && exec \"\$@\"" sh \
        timeout 400 "$UD" "$@"
}

# 1. the usual soft 1024 with a hard limit that fits: everything sees the whole tree
ux_limit "$hard" exec -- true # (the start adds empty directories to .git: count after it)
assert_eq 0 "$RC" "first exec (stderr: $(show "$ERR"))"
host_n=$(cd "$RU" && find . | wc -l)
host_sum=$(cd "$RU" && find . -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -d' ' -f1)
ux_limit "$hard" exec -- sh -c 'find . | wc -l'
assert_eq 0 "$RC" "find in the box (stderr: $(show "$ERR"))"
assert_not_contains "$ERR" "hard limit on open files" "warning when the limit fits"
assert_eq "$host_n" "$OUT" "entries find sees in the box"
ux_limit "$hard" exec -- sh -c 'find . -type f | LC_ALL=C sort | xargs cat | sha256sum'
assert_eq 0 "$RC" "hash of every file in the box (stderr: $(show "$ERR"))"
assert_eq "$host_sum" "${OUT%% *}" "hash of every file's content in the box"
ux_limit "$hard" exec -- tar cf - .
assert_eq 0 "$RC" "tar in the box (stderr: $(show "$ERR"))"
mkdir "$TEST_TMP/untar" && tar xf "$TEST_TMP/stdout" -C "$TEST_TMP/untar" ||
    fail "extract the box's tar on the host"
diff -r "$RU" "$TEST_TMP/untar" >"$TEST_TMP/diff" 2>&1 ||
    fail "the box's tar differs from the tree: $(head -n 5 "$TEST_TMP/diff")"
ux_limit "$hard" exec -- sh -c 'git status --porcelain && echo clean'
assert_eq 0 "$RC" "git status in the box (stderr: $(show "$ERR"))"
assert_eq clean "$OUT" "git status in the box"
# The workspace's virtio-fs device without VIRTIO_RING_F_EVENT_IDX (feature bit 29) in the guest:
# with it, QEMU 7.2's virtiofsd can miss the guest's kick and the workspace hangs for good (CI:
# this test's `git status` above, stuck until the timeout; vm-qemu.c).  Then four readers of the
# whole tree at once (many requests in flight, the load that lost a kick) all finish.
ux_limit "$hard" exec -- sh -c 'for d in /sys/bus/virtio/devices/*; do
    if [ "$(cat "$d/device")" = 0x001a ]; then cut -c30 "$d/features"; fi; done'
assert_eq 0 "$RC" "features of the guest's virtio-fs device (stderr: $(show "$ERR"))"
assert_eq 0 "$OUT" "EVENT_IDX (bit 29) of the guest's virtio-fs device"
ux_limit "$hard" exec -- sh -c 'for i in 1 2 3 4; do (cat d*/f* >/dev/null && echo read) & done; wait'
assert_eq 0 "$RC" "four readers of the tree at once (stderr: $(show "$ERR"))"
assert_eq "$(printf 'read\nread\nread\nread')" "$OUT" "four readers of the tree at once"
run_in "$RU" as_user "$UD" logs --virtiofsd
assert_eq 0 "$RC" "devbox logs --virtiofsd"
assert_not_contains "$OUT" "Too many open files" "virtiofsd's log"
run_in "$RU" as_user timeout 60 "$UD" stop
assert_eq 0 "$RC" "stop: $(show "$ERR")"

# 2. a hard limit far below the tree: told once, at start
ux_limit 2048 exec -- true
assert_eq 0 "$RC" "exec with a hard limit of 2048 (stderr: $(show "$ERR"))"
assert_contains "$ERR" "hard limit on open files" "warning at start with a low hard limit"
run_in "$RU" as_user timeout 60 "$UD" stop
assert_eq 0 "$RC" "stop: $(show "$ERR")"

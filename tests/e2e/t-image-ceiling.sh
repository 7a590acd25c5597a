#!/usr/bin/env bash
# t-image-ceiling: `[ceilings] image_size` in the user's config.ini bounds what a pulled image
# (one any repository's devbox.ini can name) may write to the host: an image whose compressed
# layers are already over it is refused before any layer is downloaded, one whose layers
# unpack to more (a decompression bomb) while it unpacks; one line naming the image and the
# limit, nothing left on disk (no base disk, no blobs, no temp files).  Images under it pull.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/registry.sh"
registry_init || exit $?

registry_start reg || fail "registry_start"
L=$TEST_TMP/layouts
mkdir -p "$L"
head -c $((2 << 20)) /dev/urandom >"$TEST_TMP/random.bin"
cat >"$TEST_TMP/big.json" <<EOF2
{"images": [{"platform": "linux/amd64", "layers": [{"compression": "gzip", "entries": [
  {"path": "random.bin", "src": "$TEST_TMP/random.bin"}]}]}]}
EOF2
cat >"$TEST_TMP/small.json" <<'EOF2'
{"images": [{"platform": "linux/amd64", "layers": [{"compression": "gzip", "entries": [
  {"path": "hello", "data": "hello\n"}]}]}]}
EOF2
for n in big small; do
    "$PYTHON" "$E2E_DIR/mkoci.py" build "$TEST_TMP/$n.json" "$L/$n" --tag v1 >/dev/null || fail "mkoci.py $n"
    registry_push "$L/$n" v1 "$reg_ADDR/test/$n:v1" || fail "push $n"
done
mkdir -p "$L/bomb"
MKOCI_BOMB=$((4 << 20)) "$PYTHON" "$E2E_DIR/mkoci.py" preset hostile-bomb "$L/bomb" --tag v1 >/dev/null ||
    fail "mkoci.py hostile-bomb"
registry_push "$L/bomb" v1 "$reg_ADDR/test/bomb:v1" || fail "push bomb"

mkdir -p "$DEVBOX_HOME/config"
printf '[ceilings]\nimage_size = 1M\n' >"$DEVBOX_HOME/config/config.ini"
assert_nothing_left() { # WHAT
    local n
    n=$(find "$DEVBOX_HOME/data/bases" -name '*.raw' 2>/dev/null | wc -l)
    assert_eq 0 "$n" "$1: base disks"
    n=$(find "$DEVBOX_HOME/data/oci" -type f \( -path '*/blobs/*' -o -path '*/ingest/*' \) 2>/dev/null | wc -l)
    assert_eq 0 "$n" "$1: blobs and ingest files in the content store"
    n=$(find "$DEVBOX_HOME/data" -name '*.tmp*' -o -name '.rootfs.*' -o -name '.spool.*' -o -name '*.img.*' | wc -l)
    assert_eq 0 "$n" "$1: temporary files"
    ok dbx images --json
    assert_eq 0 "$(json_get "$OUT" 'len(j)')" "$1: images recorded"
}

# compressed layers over the ceiling: refused before downloading them
expect_rc 125 dbx pull "$reg_ADDR/test/big:v1"
assert_one_line "$ERR" "pull of an image over the ceiling"
assert_contains "$ERR" "pull '$reg_ADDR/test/big:v1'" "the refusal names the image"
assert_contains "$ERR" "image_size 1M of config.ini" "the refusal names the limit"
layer=$("$PYTHON" -c 'import json,sys; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+json.load(open(sys.argv[1]+"/index.json"))["manifests"][0]["digest"][7:])); print(m["layers"][0]["digest"])' "$L/big")
assert_eq 0 "$(registry_blob_gets reg "$layer")" "the big layer was never downloaded"
assert_nothing_left "over the ceiling"

# a decompression bomb (4 MiB of zeros, a few KiB compressed): refused while it unpacks
expect_rc 125 dbx pull "$reg_ADDR/test/bomb:v1"
assert_one_line "$ERR" "pull of a bomb over the ceiling"
assert_contains "$ERR" "pull '$reg_ADDR/test/bomb:v1'" "the refusal names the image"
assert_contains "$ERR" "image_size 1M of config.ini" "the refusal names the limit"
assert_nothing_left "bomb over the ceiling"

# under the ceiling: pulled
ok dbx pull "$reg_ADDR/test/small:v1"
assert_contains "$OUT" "$reg_ADDR/test/small:v1 sha256:" "an image under the ceiling"

# A refused pull drops blobs no image record needs, but not those of a pull beside it that has
# downloaded its image and is still writing its base disk (no record yet): that pull is
# stopped (SIGSTOP) as soon as it starts the disk, the refused pull runs until it is done or
# waits for the store's lock, then the stopped one goes on.  Its image must be whole after:
# `image prune` reads the manifest of every recorded image.
cat >"$TEST_TMP/beside.json" <<'EOF2'
{"images": [{"platform": "linux/amd64", "layers": [{"compression": "gzip", "entries": [
  {"path": "beside", "data": "beside\n"}]}]}]}
EOF2
"$PYTHON" "$E2E_DIR/mkoci.py" build "$TEST_TMP/beside.json" "$L/beside" --tag v1 >/dev/null || fail "mkoci.py beside"
registry_push "$L/beside" v1 "$reg_ADDR/test/beside:v1" || fail "push beside"
"$PYTHON" - "$DEVBOX" "$DEVBOX_HOME/data" "$reg_ADDR/test/beside:v1" "$reg_ADDR/test/big:v1" \
    "$TEST_TMP/race" <<'EOF2' || fail "the refused pull beside a pull writing its disk: $(cat "$TEST_TMP/race.log" 2>/dev/null)"
import ctypes, os, select, signal, struct, subprocess, sys, time
devbox, data, beside, big, out = sys.argv[1:]
log = open(out + ".log", "w")
libc = ctypes.CDLL(None, use_errno=True)
ino = libc.inotify_init1(os.O_CLOEXEC)
if ino < 0 or libc.inotify_add_watch(ino, os.path.join(data, "bases").encode(), 0x100) < 0:
    sys.exit("inotify on the bases directory failed")  # 0x100: IN_CREATE
records = len(os.listdir(os.path.join(data, "images")))
b = subprocess.Popen([devbox, "pull", beside], stdout=open(out + ".b.out", "w"),
                     stderr=open(out + ".b.err", "w"), stdin=subprocess.DEVNULL)
def run():
    while True:  # the pull's work directory beside the base disk: it writes the disk now
        if b.poll() is not None:
            return "the pull beside ended before it wrote its disk: " + open(out + ".b.err").read()
        if not select.select([ino], [], [], 0.5)[0]:
            continue
        buf = os.read(ino, 65536)
        while buf:
            _, _, _, n = struct.unpack_from("iIII", buf)
            name = buf[16:16 + n].rstrip(b"\0")
            buf = buf[16 + n:]
            if name.startswith(b".rootfs."):
                os.kill(b.pid, signal.SIGSTOP)
                break
        else:
            continue
        break
    if b.poll() is not None or len(os.listdir(os.path.join(data, "images"))) != records:
        return "the pull beside finished before it could be stopped"
    a = subprocess.Popen([devbox, "pull", big], stdout=subprocess.DEVNULL,
                         stderr=open(out + ".a.err", "w"), stdin=subprocess.DEVNULL)
    for _ in range(6000):  # until the refused pull is done or waits for a lock ("->")
        if a.poll() is not None:
            break
        with open("/proc/locks") as f:
            if any("->" in l.split() and str(a.pid) in l.split() for l in f):
                print("the refused pull waits for a lock", file=log)
                break
        time.sleep(0.05)
    else:
        a.kill()
        return "the refused pull neither ended nor waited"
    os.kill(b.pid, signal.SIGCONT)
    rb, ra = b.wait(), a.wait()
    return None if rb == 0 and ra == 125 else f"beside: exit {rb}, refused: exit {ra}"
try:
    why = run()
finally:
    if b.poll() is None:
        os.kill(b.pid, signal.SIGCONT)
print(why or "ok", file=log)
sys.exit(1 if why else 0)
EOF2
assert_contains "$(cat "$TEST_TMP/race.a.err")" "image_size 1M of config.ini" "the pull beside: the big one is refused"
manifest=$(sed -n 's/.* sha256:\([0-9a-f]\{64\}\)$/\1/p' "$TEST_TMP/race.b.out")
[ -n "$manifest" ] || fail "no digest in the output of the pull beside: $(cat "$TEST_TMP/race.b.out")"
[ -f "$DEVBOX_HOME/data/oci/blobs/sha256/$manifest" ] || fail "the manifest of the image pulled beside the refused one was dropped"
ok dbx image prune
ok dbx image inspect "$reg_ADDR/test/beside:v1"

# the value is checked where it is written
printf '[ceilings]\nimage_size = 100G\n' >"$DEVBOX_HOME/config/config.ini"
expect_rc 125 dbx pull "$reg_ADDR/test/small:v1"
assert_contains "$ERR" "config.ini:2: [ceilings] image_size: must be a size from 1M to 64G" "an out-of-range ceiling"

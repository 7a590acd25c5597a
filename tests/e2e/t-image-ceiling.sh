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

# the value is checked where it is written
printf '[ceilings]\nimage_size = 100G\n' >"$DEVBOX_HOME/config/config.ini"
expect_rc 125 dbx pull "$reg_ADDR/test/small:v1"
assert_contains "$ERR" "config.ini:2: [ceilings] image_size: must be a size from 1M to 64G" "an out-of-range ceiling"

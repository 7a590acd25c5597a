#!/usr/bin/env bash
# t-image-pull: a devbox.ini naming an image in a registry (Debian's docker-registry on
# loopback, with a 4-layer image the test builds: gzip/zstd/plain layers, whiteouts, an opaque
# directory, hard links, a setuid file, uid 100000, an xattr, a device node) is pulled on first
# use and the VM sees exactly the merged tree; `devbox images/inspect/rmi/prune`; a second
# project from the pulled image costs no pull and a tiny overlay.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/registry.sh"
registry_init || exit $?

dir=$TEST_TMP/layout
mkdir -p "$dir"
"$PYTHON" "$E2E_DIR/mkoci.py" preset multilayer "$dir" --tag v1 >/dev/null || fail "mkoci.py multilayer"
registry_start reg || fail "registry_start"
registry_push "$dir" v1 "$reg_ADDR/test/multi:v1" || fail "skopeo push"
digest=$(registry_digest "$reg_ADDR/test/multi:v1")
assert_match "$digest" '^sha256:[0-9a-f]{64}$' "digest the registry serves"

R=$(make_repo proj)
cd "$R" || fail "cd $R"
write_profile "$R" "[box]
image = $reg_ADDR/test/multi:v1"
ok dbx exec -- sh -c 'cat /data/file /data/layer3 /opt/old/new; ls /opt/old; ls /data'
assert_eq $'hello\nthird layer\nnew\nnew\nbig\nbigid\nfifo\nfile\nhardlink\nlayer3\nnull\nsetuid\nsymlink\nxattr' "$OUT" \
    "merged tree (whiteout of data/gone, opaque opt/old)"
ok dbx exec -- sh -c 'stat -c "%i" /data/file /data/hardlink | uniq | wc -l'
assert_eq 1 "$OUT" "hard link shares the inode"
ok dbx exec -- stat -c '%u:%g %a %F' /data/setuid /data/bigid /data/null /data/fifo /data/big
assert_eq $'0:0 4755 regular file\n100000:100000 644 regular file\n0:0 666 character special file\n0:0 644 fifo\n0:0 644 regular file' \
    "$OUT" "owners, modes and types in the VM"
ok dbx exec -- stat -c '%t,%T %s' /data/null /data/big
assert_eq $'1,3 0\n0,0 4194304' "$OUT" "device numbers and file size"
ok dbx exec -- busybox readlink /data/symlink
assert_eq file "$OUT" "symlink target"
build_probe "$R"
ok dbx exec -- ./probe xattr /data/xattr user.devbox
assert_eq "xattr=yes" "$OUT" "xattr from the layer"
ok dbx exec -- sh -c 'echo "$LAYERS"'
assert_eq 4 "$OUT" "image config Env applied in the guest"

# ---- the image commands -----------------------------------------------------------------
name="$reg_ADDR/test/multi:v1"
ok dbx images --json
assert_eq "$name" "$(json_get "$OUT" 'j[0]["name"]')" "images: canonical name"
assert_eq "$digest" "$(json_get "$OUT" 'j[0]["digest"]')" "images: the digest the registry served"
assert_eq "[\"$R\"]" "$(json_get "$OUT" 'j[0]["used_by"]')" "images: used by the project"
ok dbx images
assert_contains "$OUT" "$name" "images table"
ok dbx image inspect "$name"
assert_eq 4 "$(json_get "$OUT" 'len(j["image"]["layers"])')" "inspect: layers"
assert_eq "linux/amd64" "$(json_get "$OUT" 'j["platform"] if "platform" in j else j["image"]["platform"] if isinstance(j["image"]["platform"], str) else "/".join(v for v in (j["image"]["platform"].get("os"), j["image"]["platform"].get("architecture")) if v)')" "inspect: platform"
expect_rc 125 dbx rmi "$name"
assert_one_line "$ERR" "rmi of an image in use"
assert_contains "$ERR" "used by 1 project" "rmi of an image in use"

# a second project from the same image: no download, a copy-on-write overlay of a few KiB
R2=$(make_repo proj2)
write_profile "$R2" "[box]
image = $reg_ADDR/test/multi:v1"
registry_stop reg
t0=$(date +%s%N)
ok dbx -C "$R2" exec -- cat /data/file
assert_eq hello "$OUT" "second project (registry stopped: nothing pulled)"
ok dbx -C "$R2" status --json
id2=$(json_get "$OUT" 'j["id"]')
ov=$DEVBOX_HOME/data/projects/$id2/disk.qcow2
assert_le "$(du -k "$ov" | cut -f1)" 16384 "second project overlay after its first boot (KiB)"
log "second project from a pulled image: $((($(date +%s%N) - t0) / 1000000)) ms to first exec (boot included)"

# pull by digest (on a terminal: per-layer progress) records the digest reference and reuses
# the base disk
registry_start reg2 || fail "registry_start"
registry_push "$dir" v1 "$reg2_ADDR/test/multi:v1" || fail "skopeo push"
d2=$(registry_digest "$reg2_ADDR/test/multi:v1")
run "$PYTHON" "$E2E_DIR/pty.py" --timeout 120 -- "$DEVBOX" pull "$reg2_ADDR/test/multi@$d2"
assert_eq 0 "$RC" "pull by digest on a terminal"
assert_contains "$OUT" "$reg2_ADDR/test/multi@$d2" "pull by digest"
assert_match "$OUT" "\[#{30}\] +[0-9.]+ / [0-9.]+ MB" "a full progress bar per layer on the terminal"
ok ls "$DEVBOX_HOME/data/bases"
assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c '\.raw$')" "base disks after pulling the same manifest twice"

# rmi after the projects are gone; prune then frees the blobs
ok dbx stop
ok dbx -C "$R2" stop
ok dbx rm
ok dbx -C "$R2" rm
ok dbx rmi "$name" "$reg2_ADDR/test/multi@$d2"
ok dbx image prune
ok dbx images --json
assert_eq "[]" "$OUT" "images after rmi"
left=$(find "$DEVBOX_HOME/data/oci/blobs" "$DEVBOX_HOME/data/bases" -type f 2>/dev/null | grep -v '\.lock$' | wc -l)
assert_eq 0 "$left" "blobs and base disks left after prune"

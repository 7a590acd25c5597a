#!/usr/bin/env bash
# t-discard: space the box frees in its root filesystem goes back to the host.  1 GiB written
# to the root ext4 and deleted: the project's qcow2 overlay (discard=unmap) grows by about that
# much, then its allocated size comes back within 10% of what it was before the write, because
# the guest passes ext4's freed blocks down as discards through virtio-blk.  Measures the host
# file's allocated blocks, not the mount option.  One boot.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
ok dbx exec -- sh -c 'sync'
disk=$(find "$DEVBOX_HOME" -name disk.qcow2 -path '*projects*' | head -n 1)
[ -f "$disk" ] || fail "no project overlay disk.qcow2 under $DEVBOX_HOME"
alloc_kib() { echo $(($(stat -c '%b * %B' "$disk") / 1024)); }
ok dbx exec -- sh -c 'stat -f -c %T /tmp'
case "$OUT" in ext2/ext3 | ext4) ;; *) fail "/tmp in the box is $(show "$OUT"), not the root ext4" ;; esac
before=$(alloc_kib)
ok dbx exec -- sh -c 'dd if=/dev/zero of=/tmp/big bs=1M count=1024 2>/dev/null && sync'
full=$(alloc_kib)
log "overlay allocated: $((before / 1024)) MiB before, $((full / 1024)) MiB with 1 GiB written"
[ $((full - before)) -ge $((900 * 1024)) ] || fail "the overlay grew by only $(((full - before) / 1024)) MiB for 1 GiB written"
ok dbx exec -- sh -c 'rm /tmp/big && sync'
limit=$((before + before / 10))
back() { [ "$(alloc_kib)" -le "$limit" ]; }
t0=$SECONDS
wait_until 60 back || fail "overlay still $(($(alloc_kib) / 1024)) MiB allocated 60 s after the delete (before: $((before / 1024)) MiB, limit $((limit / 1024)) MiB)"
log "overlay allocated: $(($(alloc_kib) / 1024)) MiB after the delete ($((SECONDS - t0)) s)"

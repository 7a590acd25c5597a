#!/usr/bin/env bash
# t-root-grow: the guest init grows the root ext4 online to fill its disk at every boot, so a
# project disk made larger while the VM is stopped (`[box] disk`, here qemu-img resize of the
# project's overlay by hand) is usable after the next start, with the files kept.
. "$(dirname "$0")/lib.sh"

command -v qemu-img >/dev/null || skip "qemu-img not installed"
import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

KB=0
root_kb() { # KB = the size of / in the box, in KiB
    ok dbx exec -- sh -c "df -k / | awk 'NR == 2 {print \$2}'"
    [[ $OUT =~ ^[0-9]+$ ]] || fail "df -k / in the box: $(show "$OUT")"
    KB=$OUT
}
root_kb
before=$KB
ok dbx exec -u root -- sh -c 'echo kept > /root/marker && sync'
restart

disk=$(find "$DEVBOX_HOME" -name disk.qcow2 -path '*projects*' | head -n 1)
[ -f "$disk" ] || fail "no project overlay disk.qcow2 under $DEVBOX_HOME"
qemu-img resize -q -f qcow2 "$disk" +512M || fail "qemu-img resize $disk"
log "overlay resized: $(qemu-img info -f qcow2 "$disk" | grep 'virtual size')"

root_kb
after=$KB
log "root filesystem: $before KiB before, $after KiB after"
assert_le $((before + 400 * 1024)) "$after" "size of / after growing the disk by 512 MiB"
ok dbx exec -u root -- cat /root/marker
assert_eq kept "$OUT" "a file written before the resize"
# the next boot finds nothing to grow and keeps the size
restart
root_kb
assert_eq "$after" "$KB" "size of / after another boot"

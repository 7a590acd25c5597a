#!/usr/bin/env bash
# t-policy-devices: the box's /dev is a minimal one of its own (null, zero, full, random,
# urandom, tty, ptmx, pts, shm and the fd links), read-only, so nothing else the guest kernel
# offers in devtmpfs is reachable, for the box user and for `-u root`: /dev/userfaultfd (a
# userfaultfd through USERFAULTFD_IOC_NEW while the syscall is denied), the consoles (root
# could chmod them back and write into the host's console log), /dev/kmsg (forged kernel log
# lines), tty0, tty1, vcs, vcsa, snapshot, raw memory and ports, the agent port, block devices.
# A node cannot be made again, in /dev or elsewhere.  Nor does the virtual CPU offer hardware
# virtualization (VMX, SVM), through which a hostile guest kernel would reach the host's
# nested-virtualization code (vm-qemu.c: CPU_NO_NESTED).
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"

# CPUID as the guest's kernel sees it (the same instruction in ring 0): before, TCG's `-cpu max`
# offered SVM, and the guest listed svm, npt and vgif in /proc/cpuinfo
ok dbx exec -- ./probe cpuid
assert_kv "$OUT" vmx 0 "CPUID VMX"
assert_kv "$OUT" svm 0 "CPUID SVM"
assert_kv "$OUT" svm_leaf 'none|0+,0+,0+,0+' "CPUID leaf 0x8000000A (SVM features)"
ok dbx exec -- sh -c 'grep -m1 "^flags" /proc/cpuinfo'
for f in vmx svm npt vgif; do
    [[ " $OUT " == *" $f "* ]] && fail "the guest's CPU flags list '$f': $(show "$OUT")"
done

WANT="fd full null ptmx pts random shm stderr stdin stdout tty urandom zero"
GONE=(/dev/userfaultfd /dev/console /dev/kmsg /dev/tty0 /dev/tty1 /dev/tty63 /dev/vcs /dev/vcsa
    /dev/vcs1 /dev/snapshot /dev/mem /dev/kmem /dev/port /dev/vda /dev/ttyS0 /dev/hvc0
    /dev/vport0p1 /dev/vport1p1 /dev/rtc0 /dev/cpu_dma_latency /dev/autofs /dev/fuse /dev/vhost-vsock
    /dev/loop-control /dev/mapper/control /dev/hwrng)

for who in dev root; do
    u=(-u "$who")
    ok dbx exec "${u[@]}" -- sh -c 'ls -A /dev | tr "\n" " "'
    assert_eq "$WANT" "$(printf '%s' "$OUT" | sed 's/ *$//')" "entries of /dev as $who"

    ok dbx exec "${u[@]}" -- ./probe open "${GONE[@]}"
    for n in "${GONE[@]}"; do
        assert_kv "$OUT" "$n" ENOENT "open $n as $who"
    done
    ok dbx exec "${u[@]}" -- ./probe uffd /dev/userfaultfd
    assert_kv "$OUT" uffd_open ENOENT "open /dev/userfaultfd as $who"
    assert_not_contains "$OUT" "uffd_new=" "USERFAULTFD_IOC_NEW as $who"

    # the misc major 10 minor 126 is userfaultfd; 1/11 is kmsg
    for p in /dev/userfaultfd /tmp/uffd "$R/uffd"; do
        ok dbx exec "${u[@]}" -- ./probe mknod "$p" c 10 126
        assert_kv "$OUT" mknod 'EPERM|EROFS|EACCES' "mknod $p as $who"
    done
    ok dbx exec "${u[@]}" -- ./probe mknod /tmp/kmsg c 1 11
    assert_kv "$OUT" mknod 'EPERM|EACCES' "mknod /tmp/kmsg as $who"

    # what stays works: the data nodes, shm, the fd links, the controlling terminal's node
    ok dbx exec "${u[@]}" -- sh -c 'echo x > /dev/null && head -c 5 /dev/zero | wc -c &&
        head -c 7 /dev/urandom | wc -c && head -c 3 /dev/random | wc -c &&
        echo shm > /dev/shm/t-$$ && cat /dev/shm/t-$$ && rm /dev/shm/t-$$ &&
        for l in fd stdin stdout stderr; do readlink /dev/$l; done | tr "\n" " " && echo && (echo x > /dev/full) 2>&1 | grep -c "No space left"'
    assert_eq $'5\n7\n3\nshm\n/proc/self/fd /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2 \n1' "$OUT" "data nodes, shm and links as $who"
done

# the real /dev stays out of reach for root: the bind cannot be unmounted (seccomp denies
# umount2; no CAP_SYS_ADMIN either), PID 1's root is not reachable (not dumpable)
ok dbx exec -u root -- sh -c 'umount -l /dev 2>/dev/null; umount /dev 2>/dev/null; ls -A /dev | tr "\n" " "'
assert_eq "$WANT" "$(printf '%s' "$OUT" | sed 's/ *$//')" "entries of /dev after umount as root"
run dbx exec -u root -- ls -A /proc/1/root/dev
assert_box_failed "listing PID 1's /dev through /proc/1/root as root"
run dbx exec -u root -- ls -A /dev/.devbox
assert_box_failed "the staging directory /dev/.devbox as root"

# root owns /dev, but it is read-only: no chmod, no new file, no rename
run dbx exec -u root -- chmod 666 /dev/null
assert_box_failed "chmod /dev/null as root"
run dbx exec -u root -- touch /dev/newfile
assert_box_failed "creating a file in /dev as root"
ok dbx exec -u root -- sh -c 'ls -ln /dev/null /dev/zero /dev/tty | cut -c1-10 | tr "\n" " "'
assert_eq "crw-rw-rw- crw-rw-rw- crw-rw-rw- " "$OUT" "modes of null, zero, tty"

# root granted `mknod` (a trusted profile) makes nodes, but they open nowhere outside /dev
# (every other mount is nodev in the box), and /dev itself is read-only
write_profile "$R" $'[security]\ncapabilities = mknod'
restart
expect_rc 125 dbx exec -- true
ok dbx trust
ok dbx exec -u root -- sh -c 'for d in /tmp /dev/shm /root; do
    mknod $d/uffd c 10 126 && echo "made $d" && ./probe uffd $d/uffd; rm -f $d/uffd; done'
assert_eq $'made /tmp\nuffd_open=EACCES\nmade /dev/shm\nuffd_open=EACCES\nmade /root\nuffd_open=EACCES' "$OUT" "nodes made by root with mknod"
ok dbx exec -u root -- ./probe mknod /dev/userfaultfd c 10 126
assert_kv "$OUT" mknod EROFS "mknod in /dev by root with mknod"
ok dbx exec -u root -- sh -c 'echo x > /dev/null && head -c 2 /dev/zero | wc -c && tty -s; echo tty=$?'
assert_eq $'2\ntty=1' "$OUT" "/dev/null and /dev/zero with the nodev mounts"

#!/usr/bin/env bash
# t-balloon: memory the box frees goes back to the host.  A command in the box touches 1 GiB,
# then exits; QEMU's resident set (its guest RAM is a shared memfd, so freed guest pages stay
# resident until the balloon's free page reporting has QEMU punch them out) must come back to
# at most 30% of its peak within 30 s.  Measures the effect, not the device: without the
# balloon QEMU keeps the whole peak.  One boot.
. "$(dirname "$0")/lib.sh"

command -v gcc >/dev/null || skip "gcc not installed (needed for the static hog)"
import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
# hog MB READY RELEASE: touch MB MiB, create READY, wait for RELEASE to appear, exit (freeing it)
gcc -static -O2 -o "$R/hog" -x c - >"$TEST_TMP/cc.log" 2>&1 <<'C' || fail "gcc hog: $(tail -n 3 "$TEST_TMP/cc.log")"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    long mb = atol(argv[1]);
    for (long i = 0; i < mb; i++) {
        char *p = malloc(1 << 20);
        if (!p) return 3;
        memset(p, 0x5a, 1 << 20);
    }
    close(open(argv[2], O_WRONLY | O_CREAT, 0644));
    for (int i = 0; i < 1200 && access(argv[3], F_OK) != 0; i++) usleep(100000);
    return 0;
}
C
write_profile "$R" '[box]
memory = 2G'
ok dbx exec -- true
q=$(the_qemu_pid)
run dbx exec -- sh -c 'ls /sys/bus/virtio/drivers/ 2>/dev/null'
case "$OUT" in
*virtio_balloon*) ;;
*) skip "the guest kernel has no virtio_balloon driver (drivers: $(show "$OUT"))" ;;
esac

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$q/status"; }
base=$(rss_kib)
"$DEVBOX" exec -- ./hog 1024 ready release >"$TEST_TMP/hog.out" 2>&1 </dev/null &
hog=$!
wait_until 120 test -e "$R/ready" || fail "the hog did not touch 1 GiB within 120 s: $(show "$(cat "$TEST_TMP/hog.out")")"
peak=$(rss_kib)
touch "$R/release"
wait "$hog"
assert_eq 0 "$?" "exit code of the hog"
limit=$((peak * 30 / 100))
log "QEMU RSS: $((base / 1024)) MiB after boot, $((peak / 1024)) MiB with 1 GiB touched, limit $((limit / 1024)) MiB"
[ "$((peak - base))" -ge $((900 * 1024)) ] || fail "QEMU RSS grew by only $(((peak - base) / 1024)) MiB while the box held 1 GiB"
t0=$SECONDS
back() { [ "$(rss_kib)" -le "$limit" ]; }
wait_until 30 back || fail "QEMU RSS still $(($(rss_kib) / 1024)) MiB 30 s after the box freed 1 GiB (peak $((peak / 1024)) MiB, limit $((limit / 1024)) MiB)"
log "QEMU RSS back to $(($(rss_kib) / 1024)) MiB after $((SECONDS - t0)) s"

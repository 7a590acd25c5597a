#!/usr/bin/env bash
# t-policy-seccomp: the seccomp profiles, probed syscall by syscall with tests/e2e/probe.c
# (bubblewrap try-syscall style: EPERM/ENOSYS = stopped by the filter; EFAULT/EBADF/EINVAL =
# reached the kernel).  `default` blocks the dangerous calls for the box user and for guest
# root and lets harmless ones through; `strict` (a narrowing: no trust) blocks at least as much;
# `unconfined` (a widening: trust) really removes the filter.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"

BLOCKED=(mount umount2 unshare_user clone_user bpf perf_event_open keyctl add_key userfaultfd
    io_uring_setup kexec_load init_module finit_module ptrace socket_vsock socket_packet setns
    swapon reboot)
HARMLESS=(read getpid socket_inet socket_unix fork)
# the mount table and namespaces (docs/SECURITY.md: denied by default)
MOUNT_NS=(unshare_ns open_tree move_mount fsopen fsconfig fsmount mount_setattr pivot_root)

check_default_filter() { # WHAT CHROOT EXEC-ARGS...: CHROOT is chroot's result (strict adds it)
    local what=$1 chroot=$2 out n
    shift 2
    ok dbx exec "$@" -- ./probe sys "${BLOCKED[@]}" clone3 "${HARMLESS[@]}" "${MOUNT_NS[@]}" chroot
    out=$OUT
    for n in "${BLOCKED[@]}"; do
        assert_kv "$out" "$n" EPERM "$what: $n"
    done
    assert_kv "$out" clone3 ENOSYS "$what: clone3 (ENOSYS, so that libc falls back to clone)"
    assert_kv "$out" read EBADF "$what: read(-1)"
    assert_kv "$out" getpid OK "$what: getpid"
    assert_kv "$out" socket_inet OK "$what: socket(AF_INET, SOCK_STREAM)"
    assert_kv "$out" socket_unix OK "$what: socket(AF_UNIX, SOCK_STREAM)"
    assert_kv "$out" fork OK "$what: fork"
    for n in "${MOUNT_NS[@]}"; do
        assert_kv "$out" "$n" EPERM "$what: $n"
    done
    assert_kv "$out" chroot "$chroot" "$what: chroot"
}

# ---- default ---------------------------------------------------------------------------
check_default_filter "seccomp default, box user" EFAULT
check_default_filter "seccomp default, -u root" EFAULT -u root
# the filter is inherited through exec and fork (a shell in between)
ok dbx exec -- sh -c 'sh -c "./probe sys mount bpf read"'
assert_kv "$OUT" mount EPERM "through two shells: mount"
assert_kv "$OUT" bpf EPERM "through two shells: bpf"
assert_kv "$OUT" read EBADF "through two shells: read"
# ordinary work still works under the filter
ok dbx exec -- sh -c 'echo a > f && cat f && ls / >/dev/null && sleep 0.1 && rm f && echo done'
assert_eq $'a\ndone' "$OUT" "ordinary commands under the default filter"

# ---- strict: a narrowing, never needs trust ---------------------------------------------
write_profile "$R" $'[security]\nseccomp = strict'
ok dbx profile check
assert_eq ok "$OUT" "profile check of seccomp = strict"
restart
ok dbx exec -- ./probe status
assert_confined_status "$OUT" "seccomp strict"
check_default_filter "seccomp strict, box user" EPERM
check_default_filter "seccomp strict, -u root" EPERM -u root
ok dbx exec -- sh -c 'echo a > f && cat f && rm f'
assert_eq a "$OUT" "ordinary commands under the strict filter"

# ---- unconfined: a widening; once trusted the filter is gone (the probe is not vacuous) ---
write_profile "$R" $'[security]\nseccomp = unconfined'
restart
expect_rc 125 dbx exec -- true
assert_one_line "$ERR" "refusal of seccomp = unconfined"
assert_contains "$ERR" "seccomp 'unconfined'" "refusal of seccomp = unconfined"
ok dbx trust
ok dbx exec -- ./probe status
assert_kv "$OUT" Seccomp 0 "seccomp unconfined: Seccomp"
assert_kv "$OUT" CapEff 0000000000000000 "seccomp unconfined: capabilities still dropped"
ok dbx exec -- ./probe sys mount umount2 perf_event_open add_key io_uring_setup setns clone3 read
for n in mount umount2 perf_event_open add_key io_uring_setup; do
    assert_kv "$OUT" "$n" EFAULT "seccomp unconfined: $n reaches the kernel"
done
assert_kv "$OUT" setns EBADF "seccomp unconfined: setns reaches the kernel"
assert_kv "$OUT" clone3 EFAULT "seccomp unconfined: clone3 reaches the kernel"

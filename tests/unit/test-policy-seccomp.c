/* tests/unit/test-policy-seccomp.c: what the compiled seccomp programs do, checked by loading
 * them in a forked child and calling each syscall with bad fds/pointers (bubblewrap's
 * try-syscall): the kernel's own answer (EBADF, EFAULT, EINVAL...) means allowed.
 *
 * The kernel also answers EPERM for missing privileges, so for the deny checks the child's copy
 * of the program has its EPERM returns rewritten to a marker errno nothing else returns
 * (EHWPOISON); test_eperm checks the unmodified program really answers EPERM.  Skipped where
 * seccomp filters are unavailable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "policy/policy.h"
#include "tests/unit/helpers.h"

#define MiB (UINT64_C(1) << 20)
#define MARK EHWPOISON /* stands for "our filter said EPERM" */
#define SETUP_FAILED 250
#define BAD ((void *)1) /* a pointer the kernel refuses with EFAULT */

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static struct dbx_plan plans[3]; /* by enum profile_seccomp */

static int setup(void **state) {
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL) return 0; /* no seccomp */
    for (int m = 0; m < 3; m++) {
        struct profile p = {.memory = 512 * MiB,
                            .swap_limit = UINT64_MAX,
                            .user = "",
                            .seccomp = (enum profile_seccomp)m,
                            .no_new_privs = true};
        dbx_error *e = NULL;
        if (policy_compile(&p, 512 * MiB, &plans[m], &e) < 0) {
            fprintf(stderr, "policy_compile: %s\n", e->msg);
            dbx_error_free(&e);
            return -1;
        }
    }
    return 0;
}

static int teardown(void **state) {
    for (int m = 0; m < 3; m++)
        dbx_plan_free(&plans[m]);
    return 0;
}

#define SKIP_WITHOUT_SECCOMP()                                                                     \
    do {                                                                                           \
        if (!plans[0].bpf) skip_because("libseccomp compiled no filter here");                     \
    } while (0)

/* Decode the plan's little-endian instructions, optionally marking EPERM. */
static struct sock_filter *program(const struct dbx_plan *plan, bool mark, size_t *ret_marked) {
    struct sock_filter *f = dbx_xcalloc(plan->bpf_len, sizeof(*f));
    size_t marked = 0;
    for (uint32_t i = 0; i < plan->bpf_len; i++) {
        const uint8_t *b = plan->bpf + 8 * i;
        f[i].code = (uint16_t)(b[0] | b[1] << 8);
        f[i].jt = b[2];
        f[i].jf = b[3];
        f[i].k = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
        if (mark && f[i].code == (BPF_RET | BPF_K) && f[i].k == (SECCOMP_RET_ERRNO | EPERM)) {
            f[i].k = SECCOMP_RET_ERRNO | MARK;
            marked++;
        }
    }
    if (ret_marked) *ret_marked = marked;
    return f;
}

struct outcome {
    bool signaled;
    int value; /* the signal, or the probe's errno (0 = the call succeeded) */
};

/* Run probe() in a child under the plan's filter (none for an unconfined plan). */
static struct outcome run(const struct dbx_plan *plan, bool mark, long (*probe)(void)) {
    size_t marked = 0;
    struct sock_filter *f = program(plan, mark, &marked);
    if (mark && plan->bpf_len) assert_true(marked > 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka catches SIGSEGV & co. to report a crashed test: in this child a fault is the
         * outcome (an i386 syscall on a kernel without IA32 emulation faults), so it must kill
         * the child rather than run the rest of the suite in it. */
        const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            signal(sigs[i], SIG_DFL);
        struct sock_fprog prog = {.len = (unsigned short)plan->bpf_len, .filter = f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            (prog.len && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0))
            _exit(SETUP_FAILED);
        errno = 0;
        long r = probe();
        _exit(r < 0 ? (errno & 0xff) : 0);
    }
    free(f);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) return (struct outcome){true, WTERMSIG(status)};
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), SETUP_FAILED);
    return (struct outcome){false, WEXITSTATUS(status)};
}

/* ---- probes: harmless whether or not they get through ---------------------------------- */

/* A clone that does get through must not leave a second copy of the test running. */
static long clone_flags(unsigned long flags) {
    long r = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
    if (r == 0) _exit(0);
    if (r > 0) waitpid((pid_t)r, NULL, 0);
    return r < 0 ? -1 : 0;
}
static long close_if(long fd) {
    if (fd >= 0) close((int)fd);
    return fd < 0 ? -1 : 0;
}

#define P(name, expr)                                                                              \
    static long probe_##name(void) {                                                               \
        return (long)(expr);                                                                       \
    }
P(kexec_load, syscall(SYS_kexec_load, 0, 0, NULL, ~0ul))
P(kexec_file_load, syscall(SYS_kexec_file_load, -1, -1, 0, NULL, ~0ul))
P(init_module, syscall(SYS_init_module, NULL, 0, NULL))
P(finit_module, syscall(SYS_finit_module, -1, NULL, 0))
P(delete_module, syscall(SYS_delete_module, NULL, 0))
P(bpf, syscall(SYS_bpf, -1, NULL, 0))
P(perf_event_open, syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0))
P(keyctl, syscall(SYS_keyctl, -1, 0, 0, 0, 0))
P(add_key, syscall(SYS_add_key, NULL, NULL, NULL, 0, 0))
P(request_key, syscall(SYS_request_key, NULL, NULL, NULL, 0))
P(syslog, syscall(SYS_syslog, -1, NULL, 0))
P(acct, syscall(SYS_acct, BAD))
P(lookup_dcookie, syscall(SYS_lookup_dcookie, 0, NULL, 0))
P(nfsservctl, syscall(SYS_nfsservctl, 0, NULL, NULL))
P(reboot, syscall(SYS_reboot, 0, 0, 0, NULL))
P(swapon, syscall(SYS_swapon, NULL, 0))
P(swapoff, syscall(SYS_swapoff, NULL))
P(quotactl, syscall(SYS_quotactl, 0, NULL, 0, NULL))
P(quotactl_fd, syscall(SYS_quotactl_fd, -1, 0, 0, NULL))
P(mount, syscall(SYS_mount, NULL, NULL, NULL, 0, NULL))
P(umount2, syscall(SYS_umount2, NULL, 0))
P(pivot_root, syscall(SYS_pivot_root, NULL, NULL))
P(move_mount, syscall(SYS_move_mount, -1, NULL, -1, NULL, 0))
P(open_tree, syscall(SYS_open_tree, -1, NULL, 0))
P(fsopen, syscall(SYS_fsopen, NULL, 0))
P(fsmount, syscall(SYS_fsmount, -1, 0, 0))
P(fsconfig, syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0))
P(fspick, syscall(SYS_fspick, -1, NULL, 0))
P(mount_setattr, syscall(SYS_mount_setattr, -1, NULL, 0, NULL, 0))
P(unshare_user, unshare(CLONE_NEWUSER))
P(unshare_bad, unshare(~0))
P(setns, setns(-1, 0))
P(clone_newuser, clone_flags(CLONE_NEWUSER))
P(clone_newnet, clone_flags(CLONE_NEWNET))
P(clone_newns, clone_flags(CLONE_NEWNS))
P(clone_newpid_high, clone_flags(CLONE_NEWPID | (1ul << 40)))
P(userfaultfd, syscall(SYS_userfaultfd, ~0))
P(io_uring_setup, syscall(SYS_io_uring_setup, 0, NULL))
P(io_uring_enter, syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0))
P(io_uring_register, syscall(SYS_io_uring_register, -1, 0, NULL, 0))
P(ptrace, syscall(SYS_ptrace, -1, 0, NULL, NULL))
P(process_vm_writev, syscall(SYS_process_vm_writev, 0, NULL, 0, NULL, 0, ~0ul))
P(iopl, syscall(SYS_iopl, 4))
P(ioperm, syscall(SYS_ioperm, ~0ul, 1, 1))
P(settimeofday, syscall(SYS_settimeofday, BAD, NULL))
P(clock_settime, syscall(SYS_clock_settime, CLOCK_REALTIME, BAD))
P(clock_adjtime, syscall(SYS_clock_adjtime, CLOCK_REALTIME, BAD))
P(adjtimex, syscall(SYS_adjtimex, BAD))
P(name_to_handle_at, syscall(SYS_name_to_handle_at, -1, NULL, NULL, NULL, 0))
P(open_by_handle_at, syscall(SYS_open_by_handle_at, -1, NULL, 0))
P(socket_vsock, close_if(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0)))
P(socket_vsock_high, close_if(syscall(SYS_socket, (1ul << 32) | AF_VSOCK, SOCK_STREAM, 0)))
P(socket_packet, close_if(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)))
P(ioctl_tiocsti, syscall(SYS_ioctl, -1, TIOCSTI, NULL))
P(ioctl_tiocsti_high, syscall(SYS_ioctl, -1, (1ul << 32) | TIOCSTI, NULL))
P(ioctl_tioclinux, syscall(SYS_ioctl, -1, TIOCLINUX, NULL))
P(personality_rie, syscall(SYS_personality, 0x0400000))    /* READ_IMPLIES_EXEC */
P(personality_norand, syscall(SYS_personality, 0x0040000)) /* ADDR_NO_RANDOMIZE */
P(personality_high, syscall(SYS_personality, (1ul << 32) | 0x0400000))
/* strict */
P(chroot, syscall(SYS_chroot, BAD))
P(process_vm_readv, syscall(SYS_process_vm_readv, 0, NULL, 0, NULL, 0, ~0ul))
P(kcmp, syscall(SYS_kcmp, -1, -1, 0, 0, 0))
P(pidfd_getfd, syscall(SYS_pidfd_getfd, -1, -1, 0))
P(memfd_secret, close_if(syscall(SYS_memfd_secret, ~0u)))
P(fanotify_init, syscall(SYS_fanotify_init, ~0u, ~0u))
P(sethostname, syscall(SYS_sethostname, BAD, 1))
P(mknod_chr, syscall(SYS_mknod, BAD, S_IFCHR | 0600, 0))
P(mknod_blk_high, syscall(SYS_mknod, BAD, (1ul << 40) | S_IFBLK | 0600, 0))
P(mknodat_chr, syscall(SYS_mknodat, AT_FDCWD, BAD, S_IFCHR | 0600, 0))
P(socket_bluetooth, close_if(socket(31 /* AF_BLUETOOTH */, SOCK_STREAM | SOCK_CLOEXEC, 0)))
P(socket_alg, close_if(socket(38 /* AF_ALG */, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)))
P(socket_key, close_if(socket(15 /* AF_KEY */, SOCK_RAW | SOCK_CLOEXEC, 2)))
P(socket_unspec, close_if(socket(AF_UNSPEC, SOCK_STREAM | SOCK_CLOEXEC, 0)))
P(socket_future, close_if(socket(60, SOCK_STREAM | SOCK_CLOEXEC, 0)))
P(socket_negative, close_if(socket(-1, SOCK_STREAM | SOCK_CLOEXEC, 0)))
P(socket_inet_high, close_if(syscall(SYS_socket, (1ul << 32) | AF_INET, SOCK_STREAM, 0)))
/* allowed everywhere */
P(read_badfd, read(-1, NULL, 0))
P(write_badfd, write(-1, NULL, 0))
P(getpid, getpid())
P(fork_plain, clone_flags(0))
P(clone3_bad, syscall(SYS_clone3, NULL, 0))
P(socket_inet, close_if(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)))
P(socket_inet6, close_if(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)))
P(socket_unix, close_if(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)))
P(socket_netlink, close_if(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0)))
P(ioctl_tcgets, syscall(SYS_ioctl, -1, TCGETS, NULL))
P(personality_query, syscall(SYS_personality, 0xffffffff))
P(personality_linux, syscall(SYS_personality, 0))
P(personality_linux32, syscall(SYS_personality, 0x0008))
P(personality_uname26, syscall(SYS_personality, 0x20008))
P(mknod_fifo, syscall(SYS_mknod, BAD, S_IFIFO | 0600, 0))
P(mknodat_reg, syscall(SYS_mknodat, AT_FDCWD, BAD, S_IFREG | 0600, 0))
P(open_badptr, syscall(SYS_openat, AT_FDCWD, BAD, O_RDONLY))
P(prctl_nnp, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0))
#undef P
/* x32 (nr | 0x40000000) and i386 (int 0x80) syscalls: the filter kills the process */
static long probe_x32_getpid(void) {
    return syscall(0x40000000 | SYS_getpid);
}
static long probe_i386_getpid(void) {
    long r = 20; /* __NR_getpid on i386 */
    __asm__ volatile("int $0x80" : "+a"(r) : : "memory");
    return r;
}

struct probe {
    const char *name;
    long (*fn)(void);
};
#define PR(n)                                                                                      \
    { #n, probe_##n }

static const struct probe denied_default[] = {
    PR(kexec_load),
    PR(kexec_file_load),
    PR(init_module),
    PR(finit_module),
    PR(delete_module),
    PR(bpf),
    PR(perf_event_open),
    PR(keyctl),
    PR(add_key),
    PR(request_key),
    PR(syslog),
    PR(acct),
    PR(lookup_dcookie),
    PR(nfsservctl),
    PR(reboot),
    PR(swapon),
    PR(swapoff),
    PR(quotactl),
    PR(quotactl_fd),
    PR(mount),
    PR(umount2),
    PR(pivot_root),
    PR(move_mount),
    PR(open_tree),
    PR(fsopen),
    PR(fsmount),
    PR(fsconfig),
    PR(fspick),
    PR(mount_setattr),
    PR(unshare_user),
    PR(unshare_bad),
    PR(setns),
    PR(clone_newuser),
    PR(clone_newnet),
    PR(clone_newns),
    PR(clone_newpid_high),
    PR(userfaultfd),
    PR(io_uring_setup),
    PR(io_uring_enter),
    PR(io_uring_register),
    PR(ptrace),
    PR(process_vm_writev),
    PR(iopl),
    PR(ioperm),
    PR(settimeofday),
    PR(clock_settime),
    PR(clock_adjtime),
    PR(adjtimex),
    PR(name_to_handle_at),
    PR(open_by_handle_at),
    PR(socket_vsock),
    PR(socket_vsock_high),
    PR(socket_packet),
    PR(ioctl_tiocsti),
    PR(ioctl_tiocsti_high),
    PR(ioctl_tioclinux),
    PR(personality_rie),
    PR(personality_norand),
    PR(personality_high),
};

static const struct probe denied_strict_only[] = {
    PR(chroot),          PR(process_vm_readv), PR(kcmp),
    PR(pidfd_getfd),     PR(memfd_secret),     PR(fanotify_init),
    PR(sethostname),     PR(mknod_chr),        PR(mknod_blk_high),
    PR(mknodat_chr),     PR(socket_bluetooth), PR(socket_alg),
    PR(socket_key),      PR(socket_unspec),    PR(socket_future),
    PR(socket_negative), PR(socket_inet_high),
};

static const struct probe allowed_all[] = {
    PR(read_badfd),          PR(write_badfd),       PR(getpid),
    PR(fork_plain),          PR(socket_inet),       PR(socket_inet6),
    PR(socket_unix),         PR(socket_netlink),    PR(ioctl_tcgets),
    PR(personality_query),   PR(personality_linux), PR(personality_linux32),
    PR(personality_uname26), PR(mknod_fifo),        PR(mknodat_reg),
    PR(open_badptr),         PR(prctl_nnp),
};

static void expect_denied(const struct dbx_plan *plan, const struct probe *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        struct outcome o = run(plan, true, p[i].fn);
        if (o.signaled || o.value != MARK)
            fail_msg("%s: want blocked, got %s %d", p[i].name, o.signaled ? "signal" : "errno",
                     o.value);
    }
}

static void expect_allowed(const struct dbx_plan *plan, const struct probe *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        struct outcome o = run(plan, true, p[i].fn);
        if (o.signaled || o.value == MARK)
            fail_msg("%s: want allowed, got %s %d", p[i].name, o.signaled ? "signal" : "errno",
                     o.value);
    }
}

static void test_default(void **state) {
    SKIP_WITHOUT_SECCOMP();
    const struct dbx_plan *plan = &plans[PROFILE_SECCOMP_DEFAULT];
    expect_denied(plan, denied_default, DBX_ARRAY_SIZE(denied_default));
    expect_allowed(plan, allowed_all, DBX_ARRAY_SIZE(allowed_all));
    /* strict's additions get the kernel's own answer here */
    expect_allowed(plan, denied_strict_only, DBX_ARRAY_SIZE(denied_strict_only));
    assert_int_equal(run(plan, true, probe_mknod_chr).value, EFAULT);
    assert_int_equal(run(plan, true, probe_chroot).value, EFAULT);
}

static void test_strict(void **state) {
    SKIP_WITHOUT_SECCOMP();
    const struct dbx_plan *plan = &plans[PROFILE_SECCOMP_STRICT];
    expect_denied(plan, denied_default, DBX_ARRAY_SIZE(denied_default));
    expect_denied(plan, denied_strict_only, DBX_ARRAY_SIZE(denied_strict_only));
    expect_allowed(plan, allowed_all, DBX_ARRAY_SIZE(allowed_all));
}

/* Without the marker: EPERM for the deny list, ENOSYS for clone3, the kernel's own errno for
 * the rest. */
static void test_errnos(void **state) {
    SKIP_WITHOUT_SECCOMP();
    for (int m = PROFILE_SECCOMP_DEFAULT; m <= PROFILE_SECCOMP_STRICT; m++) {
        const struct dbx_plan *plan = &plans[m];
        assert_int_equal(run(plan, false, probe_mount).value, EPERM);
        assert_int_equal(run(plan, false, probe_bpf).value, EPERM);
        assert_int_equal(run(plan, false, probe_clone_newuser).value, EPERM);
        assert_int_equal(run(plan, false, probe_personality_rie).value, EPERM);
        assert_int_equal(run(plan, false, probe_clone3_bad).value, ENOSYS);
        assert_int_equal(run(plan, false, probe_read_badfd).value, EBADF);
        assert_int_equal(run(plan, false, probe_open_badptr).value, EFAULT);
        assert_int_equal(run(plan, false, probe_socket_inet).value, 0);
        assert_int_equal(run(plan, false, probe_personality_query).value, 0);
    }
    /* unconfined: the kernel's own answers, so the ENOSYS above came from the filter */
    const struct dbx_plan *none = &plans[PROFILE_SECCOMP_UNCONFINED];
    assert_int_equal(none->bpf_len, 0);
    assert_int_equal(none->seccomp_mode, DBX_SECCOMP_UNCONFINED);
    assert_int_not_equal(run(none, false, probe_clone3_bad).value, ENOSYS);
    assert_int_not_equal(run(none, false, probe_x32_getpid).value, SIGSYS);
}

/* x32 and i386 syscalls kill the process (SIGSYS) rather than fail. */
static void test_foreign_abis(void **state) {
    SKIP_WITHOUT_SECCOMP();
    for (int m = PROFILE_SECCOMP_DEFAULT; m <= PROFILE_SECCOMP_STRICT; m++) {
        struct outcome o = run(&plans[m], false, probe_x32_getpid);
        assert_true(o.signaled);
        assert_int_equal(o.value, SIGSYS);
        o = run(&plans[m], false, probe_i386_getpid);
        assert_true(o.signaled);
        /* a kernel without IA32 emulation faults before seccomp sees the call */
        if (o.value == SIGSEGV) continue;
        assert_int_equal(o.value, SIGSYS);
    }
}

/* The guard in front of libseccomp's program kills foreign ABIs on its own. */
static void test_guard_first(void **state) {
    SKIP_WITHOUT_SECCOMP();
    size_t n = 0;
    struct sock_filter *f = program(&plans[PROFILE_SECCOMP_DEFAULT], false, &n);
    assert_int_equal(f[0].code, BPF_LD | BPF_W | BPF_ABS);
    assert_int_equal(f[0].k, offsetof(struct seccomp_data, arch));
    assert_int_equal(f[2].code, BPF_RET | BPF_K);
    assert_int_equal(f[2].k, SECCOMP_RET_KILL_PROCESS);
    assert_int_equal(f[4].code, BPF_JMP | BPF_JGE | BPF_K);
    assert_int_equal(f[4].k, 0x40000000);
    free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),     cmocka_unit_test(test_strict),
        cmocka_unit_test(test_errnos),      cmocka_unit_test(test_foreign_abis),
        cmocka_unit_test(test_guard_first),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

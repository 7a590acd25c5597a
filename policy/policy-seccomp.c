/* policy/policy-seccomp.c: the seccomp programs of the `default` and `strict` profiles.
 *
 * Compiled on the host with libseccomp for x86_64, exported as classic BPF and carried in the
 * plan; the guest init loads the bytes as they are (bubblewrap's --seccomp FD model).  The
 * filter allows by default and makes the listed syscalls fail with EPERM, so a denied call
 * looks like a missing privilege to the program (Docker's and bubblewrap's choice); clone3
 * fails with ENOSYS instead so that glibc falls back to clone, whose flags a filter can see.
 *
 * In front of libseccomp's program sits a short hand-written guard (see guard_build):
 *   - any ABI other than x86_64 (i386 via int 0x80, x32 via the 0x40000000 bit) kills the
 *     process.  libseccomp 2.5 emits the same checks; the guard keeps them explicit and
 *     independent of its code generator, since a filter written for one syscall table means
 *     nothing for another (CVE-2009-0835 style confusion);
 *   - personality() is allowed only with the values Docker's profile allows.  "arg not in
 *     set" needs several comparisons of one argument in one rule, which libseccomp 2.5
 *     refuses (EINVAL).
 *
 * Integer arguments the kernel declares as `int`/`unsigned int` are compared on their low
 * 32 bits only (SCMP_CMP_MASKED_EQ with mask 0xffffffff): the syscall wrappers truncate the
 * register, so a full 64-bit comparison (or libseccomp 2.5's SCMP_A0_32, which still requires
 * the high half to be zero) is bypassed by setting a high bit: socket(1ul << 32 | AF_VSOCK). */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "policy-internal.h"

#define X32_SYSCALL_BIT 0x40000000u
/* AF_MAX of the guest kernel (Linux 6.1: AF_MCTP = 45 is the last family).  The kernel
 * refuses families >= AF_MAX itself; strict denies them too, so a newer guest kernel's
 * families stay closed until they are reviewed here. */
#define GUEST_AF_MAX 46u
#define LOW32 0xffffffffu

struct deny {
    const char *name;
    int errnum;
    unsigned argc; /* 0 or 1 */
    struct scmp_arg_cmp cmp;
};

/* clang-format off */
#define DENY(n) {n, EPERM, 0, {0}}
/* (arg & mask) == value */
#define DENY_MASKED(n, a, mask, value) \
    {n, EPERM, 1, {.arg = (a), .op = SCMP_CMP_MASKED_EQ, .datum_a = (mask), .datum_b = (value)}}
/* clang-format on */
/* an int argument equal to value, whatever the register's high half holds */
#define DENY_INT(n, a, value) DENY_MASKED(n, a, LOW32, value)
#define DENY_FLAG(n, a, flag) DENY_MASKED(n, a, flag, flag)

/* Keep in step with policy.h and docs/SECURITY.md. */
static const struct deny default_deny[] = {
    /* the kernel itself: modules, kexec, BPF, perf, keyrings, kernel log, accounting */
    DENY("kexec_load"),
    DENY("kexec_file_load"),
    DENY("init_module"),
    DENY("finit_module"),
    DENY("delete_module"),
    DENY("bpf"),
    DENY("perf_event_open"),
    DENY("keyctl"),
    DENY("add_key"),
    DENY("request_key"),
    DENY("syslog"),
    DENY("acct"),
    DENY("lookup_dcookie"),
    DENY("nfsservctl"),
    DENY("reboot"),
    DENY("swapon"),
    DENY("swapoff"),
    DENY("quotactl"),
    DENY("quotactl_fd"),
    /* the mount table and namespaces: containers inside the box are not a goal, and user
     * namespaces are the usual way to reach kernel code that needs CAP_SYS_ADMIN
     * (CVE-2022-0185, CVE-2022-0492, CVE-2023-32233) */
    DENY("mount"),
    DENY("umount2"),
    DENY("pivot_root"),
    DENY("move_mount"),
    DENY("open_tree"),
    DENY("fsopen"),
    DENY("fsmount"),
    DENY("fsconfig"),
    DENY("fspick"),
    DENY("mount_setattr"),
    DENY("unshare"),
    DENY("setns"),
    DENY_FLAG("clone", 0, CLONE_NEWNS),
    DENY_FLAG("clone", 0, CLONE_NEWCGROUP),
    DENY_FLAG("clone", 0, CLONE_NEWUTS),
    DENY_FLAG("clone", 0, CLONE_NEWIPC),
    DENY_FLAG("clone", 0, CLONE_NEWUSER),
    DENY_FLAG("clone", 0, CLONE_NEWPID),
    DENY_FLAG("clone", 0, CLONE_NEWNET),
    /* clone3 passes its flags in memory a filter cannot read: ENOSYS makes glibc (2.34+) and
     * others fall back to clone, as under Docker and systemd */
    {"clone3", ENOSYS, 0, {0}},
    /* frequent sources of kernel bugs an unprivileged process can reach */
    DENY("userfaultfd"),
    DENY("io_uring_setup"),
    DENY("io_uring_enter"),
    DENY("io_uring_register"),
    /* other processes' memory; the guest's ptrace_scope covers the rest */
    DENY("ptrace"),
    DENY("process_vm_writev"),
    /* raw hardware and the clock */
    DENY("iopl"),
    DENY("ioperm"),
    DENY("settimeofday"),
    DENY("clock_settime"),
    DENY("clock_adjtime"),
    DENY("adjtimex"),
    /* file handles bypass path checks (the "shocker" escape) */
    DENY("name_to_handle_at"),
    DENY("open_by_handle_at"),
    /* the agent's vsock transport and raw frames */
    DENY_INT("socket", 0, AF_VSOCK),
    DENY_INT("socket", 0, AF_PACKET),
    /* typing into the terminal's input queue, and the console ioctl (bubblewrap
     * CVE-2017-5226, CVE-2023-28100); Linux 6.1 predates CONFIG_LEGACY_TIOCSTI */
    DENY_INT("ioctl", 1, TIOCSTI),
    DENY_INT("ioctl", 1, TIOCLINUX),
};

static const struct deny strict_deny[] = {
    DENY("chroot"),
    DENY("process_vm_readv"),
    DENY("kcmp"),
    DENY("pidfd_getfd"),
    DENY("memfd_secret"),
    DENY("fanotify_init"),
    DENY("uselib"),
    DENY("sethostname"),
    DENY("setdomainname"),
    DENY("vhangup"),
    DENY_MASKED("mknod", 1, S_IFMT, S_IFCHR),
    DENY_MASKED("mknod", 1, S_IFMT, S_IFBLK),
    DENY_MASKED("mknodat", 2, S_IFMT, S_IFCHR),
    DENY_MASKED("mknodat", 2, S_IFMT, S_IFBLK),
    /* families at or above the guest's AF_MAX, and negative ones (sign-extended, so huge) */
    {"socket", EPERM, 1, {.arg = 0, .op = SCMP_CMP_GE, .datum_a = GUEST_AF_MAX}},
};

/* Families strict keeps: AF_NETLINK because `ip`, `ss` and glibc's getifaddrs need it. */
static bool strict_family_allowed(unsigned af) {
    return af == AF_UNIX || af == AF_INET || af == AF_INET6 || af == AF_NETLINK ||
           /* already denied by default_deny */
           af == AF_VSOCK || af == AF_PACKET;
}

/* personality() values Docker's default profile allows: PER_LINUX, PER_LINUX32, UNAME26,
 * PER_LINUX32|UNAME26, and 0xffffffff (query). */
static const uint32_t allowed_personas[] = {0x0, 0x0008, 0x20000, 0x20008, 0xffffffff};
#define NPERSONA DBX_ARRAY_SIZE(allowed_personas)
#define GUARD_LEN (8 + 1 + NPERSONA + 1) /* arch, x32, personality: load, compare each, deny */

/* The guard in front of libseccomp's program; falls through to it for everything it lets
 * pass.  It reads only nr and arch except on personality(), so the kernel's per-syscall
 * "always allowed" cache (Linux 5.11+) still works for every other syscall. */
static size_t guard_build(struct sock_filter f[GUARD_LEN], uint32_t nr_personality) {
    size_t n = 0;
    f[n++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[n++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    /* x32 numbers have bit 30 set; nr == -1 is a tracer skipping the call, which libseccomp
     * lets through as well */
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 2);
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[n++] =
        (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr_personality, 0, NPERSONA + 2);
    /* personality(unsigned int): the low half of args[0] (x86_64 is little-endian) */
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, args[0]));
    for (size_t i = 0; i < NPERSONA; i++)
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, allowed_personas[i],
                                              (uint8_t)(NPERSONA - i), 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                                          SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
    return n;
}

static void seccomp_releasep(scmp_filter_ctx *ctx) {
    if (*ctx) seccomp_release(*ctx);
}

static int add_rule(scmp_filter_ctx ctx, const struct deny *d, dbx_error **err) {
    int nr = seccomp_syscall_resolve_name(d->name);
    if (nr == __NR_SCMP_ERROR)
        return dbx_error_setx(err, ENOSYS, "libseccomp does not know syscall '%s'", d->name);
    int r = d->argc ? seccomp_rule_add(ctx, SCMP_ACT_ERRNO(d->errnum), nr, 1, d->cmp)
                    : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(d->errnum), nr, 0);
    if (r < 0) return dbx_error_set(err, -r, "seccomp rule for '%s'", d->name);
    return 0;
}

static int add_rules(scmp_filter_ctx ctx, enum profile_seccomp mode, dbx_error **err) {
    int r = 0;
    for (size_t i = 0; r == 0 && i < DBX_ARRAY_SIZE(default_deny); i++)
        r = add_rule(ctx, &default_deny[i], err);
    if (mode != PROFILE_SECCOMP_STRICT) return r;
    for (size_t i = 0; r == 0 && i < DBX_ARRAY_SIZE(strict_deny); i++)
        r = add_rule(ctx, &strict_deny[i], err);
    for (unsigned af = 0; r == 0 && af < GUEST_AF_MAX; af++) {
        if (strict_family_allowed(af)) continue;
        const struct deny d = DENY_INT("socket", 0, af);
        r = add_rule(ctx, &d, err);
    }
    return r;
}

/* A filter for x86_64 only, whatever the host is. */
static int new_filter(scmp_filter_ctx *ret, dbx_error **err) {
    _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return dbx_error_setx(err, ENOMEM, "seccomp_init failed");
    int r = 0;
    if (seccomp_arch_native() != SCMP_ARCH_X86_64) {
        r = seccomp_arch_add(ctx, SCMP_ARCH_X86_64);
        if (r == 0) r = seccomp_arch_remove(ctx, SCMP_ARCH_NATIVE);
        if (r < 0) return dbx_error_set(err, -r, "seccomp: select x86_64");
    }
    r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    /* a binary search over syscall numbers: ioctl and socket are checked on every call */
    if (r == 0) r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (r < 0) return dbx_error_set(err, -r, "seccomp: set filter attributes");
    *ret = TAKE_PTR(ctx);
    return 0;
}

/* libseccomp 2.5 exports only to an fd. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_filter **ret, size_t *ret_n,
                      dbx_error **err) {
    _cleanup_close_ int fd = memfd_create("devbox-seccomp", MFD_CLOEXEC);
    if (fd < 0) return dbx_error_set(err, errno, "memfd_create");
    int r = seccomp_export_bpf(ctx, fd);
    if (r < 0) return dbx_error_set(err, -r, "seccomp: export");
    if (lseek(fd, 0, SEEK_SET) < 0) return dbx_error_set(err, errno, "seccomp: rewind");
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    r = dbx_read_all(fd, (size_t)DBX_PLAN_MAX_BPF * sizeof(struct sock_filter), &buf, &len, err);
    if (r < 0) {
        dbx_error_wrap(err, "seccomp program");
        return r;
    }
    if (len == 0 || len % sizeof(struct sock_filter) != 0)
        return dbx_error_setx(err, EIO, "seccomp: exported %zu bytes, not whole instructions", len);
    *ret = (struct sock_filter *)TAKE_PTR(buf);
    *ret_n = len / sizeof(struct sock_filter);
    return 0;
}

static void put_insn(uint8_t *p, const struct sock_filter *f) {
    p[0] = (uint8_t)f->code;
    p[1] = (uint8_t)(f->code >> 8);
    p[2] = f->jt;
    p[3] = f->jf;
    for (int i = 0; i < 4; i++)
        p[4 + i] = (uint8_t)(f->k >> (8 * i));
}

int policy_seccomp_build(enum profile_seccomp mode, uint8_t **ret_bpf, uint32_t *ret_len,
                         dbx_error **err) {
    _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
    int r = new_filter(&ctx, err);
    if (r == 0) r = add_rules(ctx, mode, err);
    if (r < 0) return r;
    _cleanup_free_ struct sock_filter *body = NULL;
    size_t nbody = 0;
    r = export_bpf(ctx, &body, &nbody, err);
    if (r < 0) return r;

    int nr_personality = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, "personality");
    if (nr_personality < 0)
        return dbx_error_setx(err, ENOSYS, "libseccomp does not know syscall 'personality'");
    struct sock_filter guard[GUARD_LEN];
    size_t nguard = guard_build(guard, (uint32_t)nr_personality);

    size_t n = nguard + nbody;
    if (n > DBX_PLAN_MAX_BPF)
        return dbx_error_setx(err, E2BIG, "seccomp program has %zu instructions, more than %u", n,
                              DBX_PLAN_MAX_BPF);
    uint8_t *out = dbx_xmalloc(n * 8);
    for (size_t i = 0; i < nguard; i++)
        put_insn(out + 8 * i, &guard[i]);
    for (size_t i = 0; i < nbody; i++)
        put_insn(out + 8 * (nguard + i), &body[i]);
    *ret_bpf = out;
    *ret_len = (uint32_t)n;
    return 0;
}

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
#include <jansson.h>
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
static const struct policy_seccomp_deny default_deny[] = {
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

static const struct policy_seccomp_deny strict_deny[] = {
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

static int add_rule(const struct policy_seccomp_deny *d, void *userdata, dbx_error **err) {
    scmp_filter_ctx ctx = userdata;
    int nr = seccomp_syscall_resolve_name(d->name);
    if (nr == __NR_SCMP_ERROR)
        return dbx_error_setx(err, ENOSYS, "libseccomp does not know syscall '%s'", d->name);
    int r = d->argc ? seccomp_rule_add(ctx, SCMP_ACT_ERRNO(d->errnum), nr, 1, d->cmp)
                    : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(d->errnum), nr, 0);
    if (r < 0) return dbx_error_set(err, -r, "seccomp rule for '%s'", d->name);
    return 0;
}

/* The one walk over the tables: the BPF (add_rule) and the OCI JSON (oci_add) both come from
 * it, so they cannot list different rules. */
int policy_seccomp_each(enum profile_seccomp mode, policy_seccomp_fn fn, void *userdata,
                        dbx_error **err) {
    if (mode != PROFILE_SECCOMP_DEFAULT && mode != PROFILE_SECCOMP_STRICT)
        return dbx_error_setx(err, EINVAL, "seccomp mode %d has no deny list", (int)mode);
    int r = 0;
    for (size_t i = 0; r == 0 && i < DBX_ARRAY_SIZE(default_deny); i++)
        r = fn(&default_deny[i], userdata, err);
    if (mode != PROFILE_SECCOMP_STRICT) return r;
    for (size_t i = 0; r == 0 && i < DBX_ARRAY_SIZE(strict_deny); i++)
        r = fn(&strict_deny[i], userdata, err);
    for (unsigned af = 0; r == 0 && af < GUEST_AF_MAX; af++) {
        if (strict_family_allowed(af)) continue;
        const struct policy_seccomp_deny d = DENY_INT("socket", 0, af);
        r = fn(&d, userdata, err);
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
    if (r == 0) r = policy_seccomp_each(mode, add_rule, ctx, err);
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

/* ---- the same filter as an OCI runtime-spec seccomp profile ------------------------------
 *
 * What runc and crun do with the profile, read in their sources (runc 76d9cf5
 * libcontainer/seccomp/seccomp_linux.go; crun ba38286 src/libcrun/seccomp.c; libseccomp 90d3f7d
 * src/gen_bpf.c, src/db.c):
 *   - seccomp_init(defaultAction) holds the native architecture, each "architectures" entry is
 *     added, and each name is a seccomp_rule_add with the entry's action: the same libseccomp
 *     calls add_rule makes, so the table rules mean the same in both;
 *   - an argument's "value" is passed as datum_a and "valueTwo" as datum_b (runc getCondition
 *     -> libseccomp-golang MakeCondition(index, op, value, valueTwo) -> Operand1/Operand2 ->
 *     datum_a/datum_b; crun: arg_cmp[k].datum_a = value, .datum_b = value_two), so
 *     SCMP_CMP_MASKED_EQ takes the mask in "value" and the expected bits in "valueTwo";
 *   - with SCMP_ARCH_X86_64 the only architecture (the native one of an x86_64 node),
 *     libseccomp's program sends every other audit arch (i386) to the bad-arch action, and
 *     in an x86_64 filter a number with the x32 bit set (other than -1) as well ("filter out
 *     x32" in gen_bpf.c).  Neither runtime sets SCMP_FLTATR_ACT_BADARCH, so that action is
 *     libseccomp's default SCMP_ACT_KILL, which kills the thread where the guard kills the
 *     process: both end the call, the JSON cannot say more;
 *   - several comparisons of one argument in one entry are split into separate rules (ORed),
 *     so the personality() guard is written as single-comparison rules (personality_each);
 *   - with an allowing defaultAction runc adds no -ENOSYS stub (patchbpf generatePatch). */

/* personality() values the guard allows, as rules that deny every other value: no
 * "not in set" operator exists, but for the table's shape (every subset of a bit set `keep`
 * without bit 31, plus 0xffffffff) a 32-bit x is refused iff bit 31 is set and some bit
 * 0..30 is clear, or bit 31 is clear and some bit outside `keep` is set.  Each of those is one
 * masked compare of the low 32 bits, which is all the kernel reads.  A table of another shape
 * is refused rather than written wrong. */
static int personality_each(policy_seccomp_fn fn, void *userdata, dbx_error **err) {
    const uint32_t top = UINT32_C(1) << 31;
    uint32_t keep = 0;
    size_t nsub = 0;
    bool query = false;
    for (size_t i = 0; i < NPERSONA; i++) {
        for (size_t j = 0; j < i; j++)
            if (allowed_personas[j] == allowed_personas[i])
                return dbx_error_setx(err, EINVAL, "personality 0x%x is listed twice",
                                      allowed_personas[i]);
        if (allowed_personas[i] == LOW32) {
            query = true;
            continue;
        }
        keep |= allowed_personas[i];
        nsub++;
    }
    /* distinct subsets of keep, 2^|keep| of them: exactly all of them */
    if (!query || (keep & top) || nsub != (size_t)1 << __builtin_popcount(keep))
        return dbx_error_setx(
            err, EINVAL, "allowed personalities are not 0xffffffff and every subset of 0x%x", keep);
    int r = 0;
    for (unsigned c = 0; r == 0 && c < 31; c++) {
        const struct policy_seccomp_deny d = DENY_MASKED("personality", 0, top | 1u << c, top);
        r = fn(&d, userdata, err);
    }
    for (unsigned b = 0; r == 0 && b < 31; b++) {
        if (keep & 1u << b) continue;
        const struct policy_seccomp_deny d = DENY_MASKED("personality", 0, 1u << b | top, 1u << b);
        r = fn(&d, userdata, err);
    }
    return r;
}

static json_t *oci_arg(const struct scmp_arg_cmp *c) {
    switch (c->op) {
    case SCMP_CMP_MASKED_EQ:
        return json_pack("{s:i, s:I, s:I, s:s}", "index", (int)c->arg, "value",
                         (json_int_t)c->datum_a, "valueTwo", (json_int_t)c->datum_b, "op",
                         "SCMP_CMP_MASKED_EQ");
    case SCMP_CMP_GE:
        return json_pack("{s:i, s:I, s:s}", "index", (int)c->arg, "value", (json_int_t)c->datum_a,
                         "op", "SCMP_CMP_GE");
    default:
        return NULL;
    }
}

/* Rules without arguments join the first entry with the same errno; each rule with an
 * argument is an entry of its own (one condition: see personality_each). */
static int oci_add(const struct policy_seccomp_deny *d, void *userdata, dbx_error **err) {
    json_t *syscalls = userdata;
    size_t i;
    json_t *e;
    if (d->argc == 0) json_array_foreach(syscalls, i, e) {
            if (json_object_get(e, "args") ||
                json_integer_value(json_object_get(e, "errnoRet")) != d->errnum)
                continue;
            if (json_array_append_new(json_object_get(e, "names"), json_string(d->name)) < 0)
                return dbx_error_setx(err, ENOMEM, "seccomp profile: out of memory");
            return 0;
        }
    e = json_pack("{s:[s], s:s, s:i}", "names", d->name, "action", "SCMP_ACT_ERRNO", "errnoRet",
                  d->errnum);
    if (e && d->argc) {
        json_t *arg = oci_arg(&d->cmp);
        if (!arg) {
            json_decref(e);
            return dbx_error_setx(err, EINVAL,
                                  "seccomp rule for '%s': comparison %d has no OCI form", d->name,
                                  (int)d->cmp.op);
        }
        if (json_object_set_new(e, "args", json_pack("[o]", arg)) < 0) {
            json_decref(e);
            e = NULL;
        }
    }
    if (!e || json_array_append_new(syscalls, e) < 0)
        return dbx_error_setx(err, ENOMEM, "seccomp profile: out of memory");
    return 0;
}

int policy_seccomp_oci_json(enum profile_seccomp mode, char **ret_json, dbx_error **err) {
    if (mode != PROFILE_SECCOMP_DEFAULT && mode != PROFILE_SECCOMP_STRICT)
        return dbx_error_setx(err, EINVAL, "seccomp mode %d has no filter to export", (int)mode);
    _cleanup_(json_decrefp) json_t *root =
        json_pack("{s:s, s:[s], s:[]}", "defaultAction", "SCMP_ACT_ALLOW", "architectures",
                  "SCMP_ARCH_X86_64", "syscalls");
    if (!root) return dbx_error_setx(err, ENOMEM, "seccomp profile: out of memory");
    json_t *syscalls = json_object_get(root, "syscalls");
    int r = policy_seccomp_each(mode, oci_add, syscalls, err);
    if (r == 0) r = personality_each(oci_add, syscalls, err);
    if (r < 0) {
        dbx_error_wrap(err, "seccomp profile");
        return r;
    }
    _cleanup_free_ char *text = json_dumps(root, JSON_INDENT(2));
    if (!text) return dbx_error_setx(err, ENOMEM, "seccomp profile: out of memory");
    *ret_json = dbx_xasprintf("%s\n", text);
    return 0;
}

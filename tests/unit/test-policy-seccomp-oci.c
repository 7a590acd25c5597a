/* tests/unit/test-policy-seccomp-oci.c: policy_seccomp_oci_json against the guest's program.
 *
 * Both come from the same tables (policy_seccomp_each), and this test holds them to the same
 * verdicts without a kernel: a classic-BPF interpreter runs the guest's program
 * (policy_seccomp_build), an evaluator reads the JSON the way the OCI runtime spec and runc/crun
 * define it, and a third leg loads the JSON into libseccomp as crun does (seccomp_init with the
 * default action, seccomp_rule_add per name, value -> datum_a, valueTwo -> datum_b) and runs
 * that program too.  Every x86_64 syscall number 0..460 is tried with argument vectors that
 * cover each rule's edges (CLONE_NEW* flags, every socket family, ioctl requests, mknod modes,
 * personality values, high register halves).  A verdict is allow, errno N or kill. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "policy/policy-internal.h"
#include "tests/unit/helpers.h"

#define NR_MAX 460 /* the last x86_64 syscall number tried */
#define X32_BIT 0x40000000u

/* ---- verdicts --------------------------------------------------------------------------- */

enum kind { ALLOW, ERRNO, KILL };
struct verdict {
    enum kind kind;
    int errnum; /* ERRNO */
};

static bool verdict_eq(struct verdict a, struct verdict b) {
    return a.kind == b.kind && (a.kind != ERRNO || a.errnum == b.errnum);
}

static const char *verdict_str(struct verdict v, char buf[32]) {
    if (v.kind == ERRNO)
        snprintf(buf, 32, "errno %d", v.errnum);
    else
        snprintf(buf, 32, "%s", v.kind == ALLOW ? "allow" : "kill");
    return buf;
}

/* What a seccomp return value means to the calling program. */
static struct verdict from_ret(uint32_t ret) {
    switch (ret & SECCOMP_RET_ACTION_FULL) {
    case SECCOMP_RET_ALLOW:
        return (struct verdict){ALLOW, 0};
    case SECCOMP_RET_ERRNO:
        return (struct verdict){ERRNO, (int)(ret & SECCOMP_RET_DATA)};
    case SECCOMP_RET_KILL_PROCESS:
    case SECCOMP_RET_KILL_THREAD:
        return (struct verdict){KILL, 0};
    default:
        fail_msg("seccomp return 0x%x is none of allow, errno, kill", ret);
    }
    return (struct verdict){KILL, 0};
}

/* ---- a classic-BPF interpreter for seccomp programs ------------------------------------- */

struct prog {
    struct sock_filter *f;
    size_t n;
};

static struct prog decode(const uint8_t *bpf, size_t n) {
    struct prog p = {dbx_xcalloc(n, sizeof(*p.f)), n};
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b = bpf + 8 * i;
        p.f[i].code = (uint16_t)(b[0] | b[1] << 8);
        p.f[i].jt = b[2];
        p.f[i].jf = b[3];
        p.f[i].k =
            (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
    }
    return p;
}

/* The kernel's checks (seccomp_check_filter, bpf_check_classic) restrict programs to these
 * opcodes; the interpreter knows the ones libseccomp and the guard emit and fails on the rest,
 * so a new code generator cannot slip past the comparison. */
static uint32_t bpf_run(const struct prog *p, const struct seccomp_data *d) {
    uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {0};
    const uint8_t *data = (const uint8_t *)d;
    for (size_t pc = 0; pc < p->n; pc++) {
        const struct sock_filter *f = &p->f[pc];
        uint32_t k = f->k;
        switch (f->code) {
        case BPF_LD | BPF_W | BPF_ABS:
            if (k % 4 || k + 4 > sizeof(*d)) fail_msg("insn %zu: load at %u", pc, k);
            memcpy(&a, data + k, 4);
            break;
        case BPF_LD | BPF_IMM:
            a = k;
            break;
        case BPF_LDX | BPF_IMM:
            x = k;
            break;
        case BPF_LD | BPF_MEM:
        case BPF_LDX | BPF_MEM:
        case BPF_ST:
        case BPF_STX:
            if (k >= BPF_MEMWORDS) fail_msg("insn %zu: scratch word %u", pc, k);
            if (f->code == (BPF_LD | BPF_MEM)) a = mem[k];
            if (f->code == (BPF_LDX | BPF_MEM)) x = mem[k];
            if (f->code == BPF_ST) mem[k] = a;
            if (f->code == BPF_STX) mem[k] = x;
            break;
        case BPF_ALU | BPF_AND | BPF_K:
            a &= k;
            break;
        case BPF_ALU | BPF_OR | BPF_K:
            a |= k;
            break;
        case BPF_MISC | BPF_TAX:
            x = a;
            break;
        case BPF_MISC | BPF_TXA:
            a = x;
            break;
        case BPF_JMP | BPF_JA:
            pc += k;
            break;
        case BPF_JMP | BPF_JEQ | BPF_K:
            pc += a == k ? f->jt : f->jf;
            break;
        case BPF_JMP | BPF_JGT | BPF_K:
            pc += a > k ? f->jt : f->jf;
            break;
        case BPF_JMP | BPF_JGE | BPF_K:
            pc += a >= k ? f->jt : f->jf;
            break;
        case BPF_JMP | BPF_JSET | BPF_K:
            pc += (a & k) ? f->jt : f->jf;
            break;
        case BPF_JMP | BPF_JEQ | BPF_X:
            pc += a == x ? f->jt : f->jf;
            break;
        case BPF_JMP | BPF_JGT | BPF_X:
            pc += a > x ? f->jt : f->jf;
            break;
        case BPF_JMP | BPF_JGE | BPF_X:
            pc += a >= x ? f->jt : f->jf;
            break;
        case BPF_RET | BPF_K:
            return k;
        case BPF_RET | BPF_A:
            return a;
        default:
            fail_msg("insn %zu: opcode 0x%x not known to this interpreter", pc, f->code);
        }
    }
    fail_msg("program runs off its end");
    return 0;
}

static struct verdict bpf_verdict(const struct prog *p, uint32_t arch, int nr,
                                  const uint64_t *args) {
    struct seccomp_data d = {.nr = nr, .arch = arch};
    memcpy(d.args, args, sizeof(d.args));
    return from_ret(bpf_run(p, &d));
}

/* ---- the OCI profile, read strictly -------------------------------------------------------- */

struct oci_arg {
    unsigned index;
    enum scmp_compare op;
    uint64_t value, value_two;
};
struct oci_rule {
    char name[64];
    int errnum;
    size_t nargs;
    struct oci_arg args[6];
};
struct oci {
    struct oci_rule *rules;
    size_t n;
};

static uint64_t uint_of(json_t *j, const char *what) {
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        fail_msg("%s is not an unsigned integer", what);
    return (uint64_t)json_integer_value(j);
}

/* Only what policy_seccomp_oci_json may write: anything else fails the test rather than being
 * evaluated with a guessed meaning. */
static struct oci oci_parse(const char *text) {
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root) fail_msg("JSON %d:%d: %s", je.line, je.column, je.text);
    assert_int_equal(json_object_size(root), 3);
    assert_string_equal(json_string_value(json_object_get(root, "defaultAction")),
                        "SCMP_ACT_ALLOW");
    /* the guard's kill of every other ABI is, in the JSON, listing x86_64 alone */
    json_t *arches = json_object_get(root, "architectures");
    assert_int_equal(json_array_size(arches), 1);
    assert_string_equal(json_string_value(json_array_get(arches, 0)), "SCMP_ARCH_X86_64");
    json_t *syscalls = json_object_get(root, "syscalls");
    assert_true(json_is_array(syscalls));
    struct oci o = {NULL, 0};
    size_t i, j;
    json_t *e, *v;
    json_array_foreach(syscalls, i, e) {
        json_t *names = json_object_get(e, "names"), *args = json_object_get(e, "args");
        assert_string_equal(json_string_value(json_object_get(e, "action")), "SCMP_ACT_ERRNO");
        uint64_t errnum = uint_of(json_object_get(e, "errnoRet"), "errnoRet");
        assert_true(errnum > 0 && errnum <= SECCOMP_RET_DATA);
        assert_int_equal(json_object_size(e), args ? 4 : 3);
        assert_true(json_array_size(names) > 0);
        struct oci_rule r = {.errnum = (int)errnum};
        json_array_foreach(args, j, v) {
            assert_true(j < 6);
            struct oci_arg *a = &r.args[r.nargs++];
            a->index = (unsigned)uint_of(json_object_get(v, "index"), "index");
            assert_true(a->index < 6);
            a->value = uint_of(json_object_get(v, "value"), "value");
            const char *op = json_string_value(json_object_get(v, "op"));
            assert_non_null(op);
            if (strcmp(op, "SCMP_CMP_MASKED_EQ") == 0) {
                a->op = SCMP_CMP_MASKED_EQ;
                a->value_two = uint_of(json_object_get(v, "valueTwo"), "valueTwo");
                assert_int_equal(json_object_size(v), 4);
            } else if (strcmp(op, "SCMP_CMP_GE") == 0) {
                a->op = SCMP_CMP_GE;
                assert_int_equal(json_object_size(v), 3);
            } else {
                fail_msg("op '%s'", op);
            }
        }
        /* libseccomp (so runc and crun) splits several comparisons of one argument into ORed
         * rules: the JSON must not rely on them being ANDed */
        for (size_t a = 0; a < r.nargs; a++)
            for (size_t b = 0; b < a; b++)
                assert_int_not_equal(r.args[a].index, r.args[b].index);
        json_array_foreach(names, j, v) {
            const char *name = json_string_value(v);
            assert_non_null(name);
            assert_true(strlen(name) < sizeof(r.name));
            o.rules = dbx_xrealloc(o.rules, (o.n + 1) * sizeof(*o.rules));
            o.rules[o.n] = r;
            snprintf(o.rules[o.n].name, sizeof(r.name), "%s", name);
            o.n++;
        }
    }
    json_decref(root);
    return o;
}

static bool oci_arg_true(const struct oci_arg *a, const uint64_t *args) {
    uint64_t v = args[a->index];
    return a->op == SCMP_CMP_GE ? v >= a->value : (v & a->value) == a->value_two;
}

/* The OCI meaning for an x86_64 call: the matching rules' action (they must agree), else the
 * default.  The candidates for nr are the rules naming it (per_nr). */
static struct verdict oci_verdict(const struct oci *o, const size_t *cand, size_t ncand,
                                  const uint64_t *args) {
    struct verdict v = {ALLOW, 0};
    bool matched = false;
    for (size_t c = 0; c < ncand; c++) {
        const struct oci_rule *r = &o->rules[cand[c]];
        bool all = true;
        for (size_t a = 0; all && a < r->nargs; a++)
            all = oci_arg_true(&r->args[a], args);
        if (!all) continue;
        struct verdict rv = {ERRNO, r->errnum};
        if (matched && !verdict_eq(v, rv)) fail_msg("rules for '%s' disagree", r->name);
        v = rv;
        matched = true;
    }
    return v;
}

/* The JSON as crun loads it (src/libcrun/seccomp.c): the native arch (x86_64 here) plus the
 * listed ones, no bad-arch attribute, one seccomp_rule_add per name.  NULL prog.f when the
 * machine is not x86_64 (the native arch would differ from the guest's). */
static struct prog crun_compile(const struct oci *o) {
    struct prog p = {NULL, 0};
    if (seccomp_arch_native() != SCMP_ARCH_X86_64) return p;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    assert_non_null(ctx);
    int r = seccomp_arch_add(ctx, SCMP_ARCH_X86_64);
    assert_true(r == 0 || r == -EEXIST);
    for (size_t i = 0; i < o->n; i++) {
        const struct oci_rule *rule = &o->rules[i];
        struct scmp_arg_cmp cmp[6];
        for (size_t a = 0; a < rule->nargs; a++)
            cmp[a] = (struct scmp_arg_cmp){.arg = rule->args[a].index,
                                           .op = rule->args[a].op,
                                           .datum_a = rule->args[a].value,
                                           .datum_b = rule->args[a].value_two};
        int nr = seccomp_syscall_resolve_name(rule->name);
        assert_int_not_equal(nr, __NR_SCMP_ERROR);
        r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO((uint32_t)rule->errnum), nr,
                                   (unsigned)rule->nargs, cmp);
        if (r < 0) fail_msg("seccomp_rule_add '%s': %s", rule->name, strerror(-r));
    }
    int fd = memfd_create("oci-test", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(seccomp_export_bpf(ctx, fd), 0);
    seccomp_release(ctx);
    off_t len = lseek(fd, 0, SEEK_END);
    assert_true(len > 0 && len % 8 == 0);
    uint8_t *buf = dbx_xmalloc((size_t)len);
    assert_int_equal(pread(fd, buf, (size_t)len, 0), len);
    close(fd);
    p = decode(buf, (size_t)len / 8);
    free(buf);
    return p;
}

/* ---- argument values --------------------------------------------------------------------- */

struct values {
    uint64_t *v;
    size_t n;
};

static void add(struct values *vs, uint64_t v) {
    vs->v = dbx_xrealloc(vs->v, (vs->n + 1) * sizeof(*vs->v));
    vs->v[vs->n++] = v;
}

/* A fixed-seed generator, so a failure repeats. */
static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static struct values values(void) {
    struct values vs = {NULL, 0};
    const uint64_t high[] = {0, UINT64_C(1) << 32, UINT64_C(0xffffffff00000000)};
    const uint64_t clone_new[] = {CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                  CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET, CLONE_NEWTIME};
    for (size_t h = 0; h < DBX_ARRAY_SIZE(high); h++) {
        for (size_t i = 0; i < DBX_ARRAY_SIZE(clone_new); i++) {
            add(&vs, high[h] | clone_new[i]);
            add(&vs, high[h] | clone_new[i] | CLONE_VM | CLONE_FS | SIGCHLD);
        }
        add(&vs, high[h] | CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD);
        /* socket families (the kernel's and beyond), ioctl requests, mknod modes */
        for (uint64_t af = 0; af <= 50; af++)
            add(&vs, high[h] | af);
        const uint64_t misc[] = {
            TIOCSTI,         TIOCLINUX,      TCGETS,         TIOCGWINSZ,     FIONREAD,
            TIOCSCTTY,       S_IFCHR | 0600, S_IFBLK | 0600, S_IFREG | 0644, S_IFIFO | 0600,
            S_IFSOCK | 0600, S_IFDIR,        S_IFLNK,        S_IFMT,         0600};
        for (size_t i = 0; i < DBX_ARRAY_SIZE(misc); i++)
            add(&vs, high[h] | misc[i]);
        /* personality: the allowed ones, each bit alone and missing, the edges */
        const uint64_t pers[] = {0x0,        0x8,        0x20000,    0x20008,   0xffffffff,
                                 0xfffffffe, 0x7fffffff, 0x80000000, 0x0400000, 0x0040000,
                                 0x20009,    0x28,       0x800};
        for (size_t i = 0; i < DBX_ARRAY_SIZE(pers); i++)
            add(&vs, high[h] | pers[i]);
        for (unsigned b = 0; b < 32; b++) {
            add(&vs, high[h] | UINT64_C(1) << b);
            add(&vs, high[h] | (0xffffffffu & ~(1u << b)));
            add(&vs, high[h] | 0x20008u | 1u << b);
        }
    }
    for (unsigned b = 32; b < 64; b++)
        add(&vs, UINT64_C(1) << b);
    const uint64_t huge[] = {
        UINT64_MAX, (uint64_t)-46, (uint64_t)-1 << 31, INT64_MAX, UINT64_C(1) << 63 | 46, 46, 45,
        47,         0xffffffff,    0x100000000};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(huge); i++)
        add(&vs, huge[i]);
    uint64_t seed = 0x9e3779b97f4a7c15;
    for (int i = 0; i < 400; i++) {
        uint64_t r = rnd(&seed);
        add(&vs, r & 0xffffffff);
        add(&vs, r);
        add(&vs, r & 0x8002000f); /* near the allowed personalities */
    }
    return vs;
}

/* ---- the comparison ---------------------------------------------------------------------- */

static char *json_for(enum profile_seccomp mode) {
    char *json = NULL;
    dbx_error *e = NULL;
    if (policy_seccomp_oci_json(mode, &json, &e) < 0)
        fail_msg("policy_seccomp_oci_json: %s", e->msg);
    assert_null(e);
    return json;
}

static struct prog guest_for(enum profile_seccomp mode) {
    uint8_t *bpf = NULL;
    uint32_t len = 0;
    dbx_error *e = NULL;
    if (policy_seccomp_build(mode, &bpf, &len, &e) < 0)
        fail_msg("policy_seccomp_build: %s", e->msg);
    struct prog p = decode(bpf, len);
    free(bpf);
    return p;
}

static void compare(enum profile_seccomp mode) {
    struct prog guest = guest_for(mode);
    char *json = json_for(mode);
    struct oci o = oci_parse(json);
    struct prog crun = crun_compile(&o);
    struct values vs = values();
    size_t *cand = dbx_xcalloc(o.n ? o.n : 1, sizeof(*cand));
    size_t checked = 0, denied = 0, named = 0;
    for (int nr = 0; nr <= NR_MAX; nr++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
        size_t ncand = 0;
        for (size_t i = 0; name && i < o.n; i++)
            if (strcmp(o.rules[i].name, name) == 0) cand[ncand++] = i;
        named += ncand;
        for (size_t i = 0; i < vs.n; i++) {
            /* the value in each argument the rules read, and in all six at once */
            for (int pos = 0; pos <= 3; pos++) {
                uint64_t args[6] = {0};
                for (int a = 0; a < 6; a++)
                    if (a == pos || pos == 3) args[a] = vs.v[i];
                struct verdict g = bpf_verdict(&guest, AUDIT_ARCH_X86_64, nr, args);
                struct verdict j = oci_verdict(&o, cand, ncand, args);
                char b1[32], b2[32];
                if (!verdict_eq(g, j))
                    fail_msg("%s %s(%d) arg%d=0x%llx: guest %s, JSON %s",
                             mode == PROFILE_SECCOMP_STRICT ? "strict" : "default",
                             name ? name : "?", nr, pos, (unsigned long long)vs.v[i],
                             verdict_str(g, b1), verdict_str(j, b2));
                if (crun.f) {
                    struct verdict c = bpf_verdict(&crun, AUDIT_ARCH_X86_64, nr, args);
                    if (!verdict_eq(g, c))
                        fail_msg("%s(%d) arg%d=0x%llx: guest %s, JSON via libseccomp %s",
                                 name ? name : "?", nr, pos, (unsigned long long)vs.v[i],
                                 verdict_str(g, b1), verdict_str(c, b2));
                }
                denied += g.kind != ALLOW;
                checked++;
            }
        }
        free(name);
    }
    /* every JSON rule names a syscall tried above */
    assert_int_equal(named, o.n);
    assert_true(denied > 0 && denied < checked);

    /* foreign ABIs: the guard kills them; the JSON says only "x86_64", which runtimes (as the
     * libseccomp program built from it shows) turn into a kill as well */
    const uint64_t zero[6] = {0};
    const uint32_t foreign[] = {AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64, 0};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(foreign); i++)
        for (int nr = 0; nr < 3; nr++) {
            assert_int_equal(bpf_verdict(&guest, foreign[i], nr, zero).kind, KILL);
            if (crun.f) assert_int_equal(bpf_verdict(&crun, foreign[i], nr, zero).kind, KILL);
        }
    const int x32[] = {(int)X32_BIT, (int)(X32_BIT | 39), (int)(X32_BIT | 0x3fffffff), -2};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(x32); i++) {
        assert_int_equal(bpf_verdict(&guest, AUDIT_ARCH_X86_64, x32[i], zero).kind, KILL);
        if (crun.f)
            assert_int_equal(bpf_verdict(&crun, AUDIT_ARCH_X86_64, x32[i], zero).kind, KILL);
    }
    /* nr -1 (a tracer skipping the call) passes both */
    assert_int_equal(bpf_verdict(&guest, AUDIT_ARCH_X86_64, -1, zero).kind, ALLOW);
    if (crun.f) assert_int_equal(bpf_verdict(&crun, AUDIT_ARCH_X86_64, -1, zero).kind, ALLOW);
    if (!crun.f) print_message("note: not x86_64, the libseccomp leg was skipped\n");

    free(cand);
    free(vs.v);
    free(crun.f);
    free(o.rules);
    free(json);
    free(guest.f);
}

static void test_default_same_verdicts(void **state) {
    compare(PROFILE_SECCOMP_DEFAULT);
}

static void test_strict_same_verdicts(void **state) {
    compare(PROFILE_SECCOMP_STRICT);
}

/* The issue's own words: every syscall the guest filter denies appears denied in the JSON. */
struct names {
    const struct oci *o;
    size_t n;
};

static int expect_named(const struct policy_seccomp_deny *d, void *userdata, dbx_error **err) {
    struct names *ns = userdata;
    for (size_t i = 0; i < ns->o->n; i++)
        if (strcmp(ns->o->rules[i].name, d->name) == 0 && ns->o->rules[i].errnum == d->errnum) {
            ns->n++;
            return 0;
        }
    fail_msg("'%s' (errno %d) is not denied in the JSON", d->name, d->errnum);
    return -1;
}

static void test_table_names_denied(void **state) {
    for (int m = PROFILE_SECCOMP_DEFAULT; m <= PROFILE_SECCOMP_STRICT; m++) {
        char *json = json_for((enum profile_seccomp)m);
        struct oci o = oci_parse(json);
        struct names ns = {&o, 0};
        dbx_error *e = NULL;
        assert_int_equal(policy_seccomp_each((enum profile_seccomp)m, expect_named, &ns, &e), 0);
        assert_true(ns.n > 50);
        /* the guard's personality() check, too */
        bool personality = false;
        for (size_t i = 0; i < o.n; i++)
            personality |= strcmp(o.rules[i].name, "personality") == 0;
        assert_true(personality);
        free(o.rules);
        free(json);
    }
}

/* Same tables, same bytes; pretty-printed with a final newline; argument-less rules share one
 * entry per errno. */
static void test_format(void **state) {
    char *a = json_for(PROFILE_SECCOMP_STRICT), *b = json_for(PROFILE_SECCOMP_STRICT);
    assert_string_equal(a, b);
    size_t len = strlen(a);
    assert_true(len > 2 && a[len - 1] == '\n' && a[len - 2] == '}');
    assert_non_null(strstr(a, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n"));
    json_t *root = json_loads(a, 0, NULL);
    assert_non_null(root);
    json_t *first = json_array_get(json_object_get(root, "syscalls"), 0);
    json_t *names = json_object_get(first, "names");
    assert_string_equal(json_string_value(json_array_get(names, 0)), "kexec_load");
    assert_null(json_object_get(first, "args"));
    size_t i;
    json_t *e;
    size_t argless = 0;
    json_array_foreach(json_object_get(root, "syscalls"), i, e) argless +=
        !json_object_get(e, "args");
    assert_int_equal(argless, 2); /* EPERM, and clone3's ENOSYS */
    json_decref(root);
    free(a);
    free(b);
}

static void test_unconfined_refused(void **state) {
    char *json = (char *)0x1;
    dbx_error *e = NULL;
    assert_int_equal(policy_seccomp_oci_json(PROFILE_SECCOMP_UNCONFINED, &json, &e), -EINVAL);
    assert_non_null(e);
    assert_int_equal(e->code, EINVAL);
    assert_ptr_equal(json, (char *)0x1);
    dbx_error_free(&e);
    assert_int_equal(policy_seccomp_oci_json(PROFILE_SECCOMP_UNCONFINED, &json, NULL), -EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_same_verdicts), cmocka_unit_test(test_strict_same_verdicts),
        cmocka_unit_test(test_table_names_denied),    cmocka_unit_test(test_format),
        cmocka_unit_test(test_unconfined_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

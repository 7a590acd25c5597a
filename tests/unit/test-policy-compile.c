/* tests/unit/test-policy-compile.c: policy_compile's arithmetic and checks (cgroup values,
 * capabilities, user, protected paths, environment, seccomp mode, network mode and proxy
 * variables) and the plan's trip through dbx_plan_encode/dbx_plan_decode.  The seccomp
 * program's behaviour is in test-policy-seccomp.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <linux/capability.h>

#include "common/protocol.h" /* struct dbx_buf, for the plan's encoding */
#include "policy/policy-internal.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

/* The built-in default as profiles.c describes it, before any devbox.ini. */
static struct profile base(void) {
    return (struct profile){.cpus = 1,
                            .memory = 512 * MiB,
                            .swap_limit = UINT64_MAX,
                            .user = "",
                            .seccomp = PROFILE_SECCOMP_DEFAULT,
                            .no_new_privs = true};
}

static struct dbx_plan compile_ok(const struct profile *p, uint64_t vm) {
    struct dbx_plan plan = {0};
    dbx_error *e = NULL;
    int r = policy_compile(p, vm, &plan, &e);
    if (r < 0) fail_msg("policy_compile: %s", e->msg);
    assert_null(e);
    return plan;
}

/* Expect failure with `code` and a message containing `needle`; *ret must stay untouched. */
static void compile_fails(const struct profile *p, uint64_t vm, int code, const char *needle) {
    struct dbx_plan plan;
    memset(&plan, 0xa5, sizeof(plan));
    struct dbx_plan before = plan;
    dbx_error *e = NULL;
    int r = policy_compile(p, vm, &plan, &e);
    assert_int_equal(r, -code);
    assert_non_null(e);
    assert_int_equal(e->code, code);
    if (!strstr(e->msg, needle)) fail_msg("message '%s' lacks '%s'", e->msg, needle);
    assert_memory_equal(&plan, &before, sizeof(plan));
    dbx_error_free(&e);
    /* err may be NULL */
    assert_int_equal(policy_compile(p, vm, &plan, NULL), -code);
}

static void test_memory_default(void **state) {
    static const struct {
        uint64_t vm, want;
    } cases[] = {
        {512 * MiB, 448 * MiB},         /* 64 MiB reserve (1/8 = 64 MiB) */
        {128 * MiB, 64 * MiB},          /* the 64 MiB floor */
        {256 * MiB, 192 * MiB},         /* the floor beats 1/8 = 32 MiB */
        {2 * GiB, 2 * GiB - 256 * MiB}, /* 1/8 */
        {64 * MiB + 1, 1},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        struct profile p = base();
        struct dbx_plan plan = compile_ok(&p, cases[i].vm);
        assert_int_equal(plan.mem_max, cases[i].want);
        assert_int_equal(policy_mem_reserve(cases[i].vm), cases[i].vm - cases[i].want);
        dbx_plan_free(&plan);
    }
    struct profile p = base();
    compile_fails(&p, 64 * MiB, EINVAL, "box.memory");
    compile_fails(&p, 0, EINVAL, "box.memory");
}

static void test_memory_limit(void **state) {
    struct profile p = base();
    p.mem_limit = 256 * MiB;
    struct dbx_plan plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.mem_max, 256 * MiB);
    dbx_plan_free(&plan);
    /* an explicit limit may eat into the reserve, but not reach the VM's size */
    p.mem_limit = 500 * MiB;
    plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.mem_max, 500 * MiB);
    dbx_plan_free(&plan);
    p.mem_limit = 512 * MiB;
    compile_fails(&p, 512 * MiB, EINVAL, "limits.memory");
    p.mem_limit = 4 * GiB;
    compile_fails(&p, 512 * MiB, EINVAL, "limits.memory");
}

static void test_swap(void **state) {
    const uint64_t values[] = {UINT64_MAX, 0, 100 * MiB};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(values); i++) {
        struct profile p = base();
        p.swap_limit = values[i];
        struct dbx_plan plan = compile_ok(&p, 512 * MiB);
        assert_true(plan.swap_max == values[i]);
        dbx_plan_free(&plan);
    }
}

static void test_cpu(void **state) {
    static const struct {
        uint32_t milli, quota;
    } cases[] = {{0, 0},       {1000, 100000}, {1500, 150000},
                 {250, 25000}, {10, 1000},     {64000, 6400000}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        struct profile p = base();
        p.cpu_milli = cases[i].milli;
        struct dbx_plan plan = compile_ok(&p, 512 * MiB);
        assert_int_equal(plan.cpu_quota_us, cases[i].quota);
        assert_int_equal(plan.cpu_period_us, 100000);
        dbx_plan_free(&plan);
    }
    struct profile p = base();
    p.cpu_milli = 9; /* 900 us: below cpu.max's 1 ms minimum */
    compile_fails(&p, 512 * MiB, ERANGE, "limits.cpu 0.009");
    p.cpu_milli = UINT32_MAX; /* quota would overflow u32 */
    compile_fails(&p, 512 * MiB, ERANGE, "limits.cpu");
}

static void test_passthrough(void **state) {
    struct profile p = base();
    p.pids = 512;
    p.io_weight = 50;
    p.nofile = 4096;
    p.nproc = 1000;
    struct dbx_plan plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.pids_max, 512);
    assert_int_equal(plan.io_weight, 50);
    assert_int_equal(plan.nofile, 4096);
    assert_int_equal(plan.nproc, 1000);
    dbx_plan_free(&plan);

    p = base();
    plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.pids_max, 0);
    assert_int_equal(plan.io_weight, 0);
    assert_int_equal(plan.nofile, 0);
    assert_int_equal(plan.nproc, 0);
    dbx_plan_free(&plan);

    p.io_weight = 10001;
    compile_fails(&p, 512 * MiB, ERANGE, "limits.io_weight");
}

static void test_caps(void **state) {
    struct profile p = base();
    struct dbx_plan plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.caps, 0); /* drop everything, not DBX_CAP_ALL ("leave alone") */
    dbx_plan_free(&plan);

    p.caps = (UINT64_C(1) << CAP_NET_BIND_SERVICE) | (UINT64_C(1) << CAP_CHOWN);
    plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.caps, p.caps);
    dbx_plan_free(&plan);

    p.caps = UINT64_C(1) << 40; /* CAP_CHECKPOINT_RESTORE, the last one in Linux 6.1 */
    plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.caps, p.caps);
    dbx_plan_free(&plan);

    p.caps = UINT64_C(1) << 41;
    compile_fails(&p, 512 * MiB, EINVAL, "capability 41");
    p.caps = DBX_CAP_ALL;
    compile_fails(&p, 512 * MiB, EINVAL, "capability 41");
}

/* capabilities are for uid 0 only; capabilities_user for every uid (so root has them too) */
static void test_caps_user(void **state) {
    struct profile p = base();
    p.caps = (UINT64_C(1) << CAP_CHOWN) | (UINT64_C(1) << CAP_DAC_OVERRIDE);
    struct dbx_plan plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.caps, p.caps);
    assert_int_equal(plan.caps_user, 0); /* the ordinary box user gets none of root's */
    dbx_plan_free(&plan);

    p.caps_user = UINT64_C(1) << CAP_NET_BIND_SERVICE;
    plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.caps, p.caps | p.caps_user);
    assert_int_equal(plan.caps_user, p.caps_user);
    dbx_plan_free(&plan);

    p.caps = 0;
    plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.caps, p.caps_user);
    assert_int_equal(plan.caps_user, p.caps_user);
    dbx_plan_free(&plan);

    p.caps_user = UINT64_C(1) << 41;
    compile_fails(&p, 512 * MiB, EINVAL, "security.capabilities_user: capability 41");
}

static void test_security_flags(void **state) {
    struct profile p = base();
    struct dbx_plan plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.no_new_privs, 1);
    assert_string_equal(plan.user, "");
    dbx_plan_free(&plan);

    p.no_new_privs = false;
    p.user = NULL; /* treated as "" */
    plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.no_new_privs, 0);
    assert_string_equal(plan.user, "");
    dbx_plan_free(&plan);

    p.user = "1000:1000";
    plan = compile_ok(&p, 512 * MiB);
    assert_string_equal(plan.user, "1000:1000");
    dbx_plan_free(&plan);

    char long_user[300];
    memset(long_user, 'u', sizeof(long_user) - 1);
    long_user[sizeof(long_user) - 1] = '\0';
    p.user = long_user;
    compile_fails(&p, 512 * MiB, EINVAL, "security.user");
}

static void test_seccomp_modes(void **state) {
    struct profile p = base();
    struct dbx_plan def = compile_ok(&p, 512 * MiB);
    assert_int_equal(def.seccomp_mode, DBX_SECCOMP_DEFAULT);
    assert_true(def.bpf_len > 0 && def.bpf_len <= DBX_PLAN_MAX_BPF);
    assert_non_null(def.bpf);

    p.seccomp = PROFILE_SECCOMP_STRICT;
    struct dbx_plan strict = compile_ok(&p, 512 * MiB);
    assert_int_equal(strict.seccomp_mode, DBX_SECCOMP_STRICT);
    assert_true(strict.bpf_len > def.bpf_len && strict.bpf_len <= DBX_PLAN_MAX_BPF);

    p.seccomp = PROFILE_SECCOMP_UNCONFINED;
    struct dbx_plan none = compile_ok(&p, 512 * MiB);
    assert_int_equal(none.seccomp_mode, DBX_SECCOMP_UNCONFINED);
    assert_int_equal(none.bpf_len, 0);
    assert_null(none.bpf);

    /* the same profile gives the same bytes */
    p.seccomp = PROFILE_SECCOMP_DEFAULT;
    struct dbx_plan again = compile_ok(&p, 512 * MiB);
    assert_int_equal(again.bpf_len, def.bpf_len);
    assert_memory_equal(again.bpf, def.bpf, (size_t)def.bpf_len * 8);

    p.seccomp = (enum profile_seccomp)7;
    compile_fails(&p, 512 * MiB, EINVAL, "security.seccomp");
    dbx_plan_free(&def);
    dbx_plan_free(&strict);
    dbx_plan_free(&none);
    dbx_plan_free(&again);
}

static void test_lists(void **state) {
    char *protect[] = {".git/hooks", ".git/config", "devbox.ini", NULL};
    char *env[] = {"A=1", "EMPTY=", "PATHS=/a:/b=c", NULL};
    struct profile p = base();
    p.protect = protect;
    p.env = env;
    struct dbx_plan plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.nprotected, 3);
    assert_int_equal(plan.nenv, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(plan.protected[i], protect[i]);
        assert_ptr_not_equal(plan.protected[i], protect[i]); /* copies */
        assert_string_equal(plan.env[i], env[i]);
    }
    assert_null(plan.protected[3]);
    assert_null(plan.env[3]);
    dbx_plan_free(&plan);

    /* the checks dbx_plan_decode makes, made here first */
    static const char *const bad_paths[] = {"/etc/passwd", "", "../x", "a/../../b", "a..b"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad_paths); i++) {
        char *one[] = {"ok", (char *)bad_paths[i], NULL};
        p = base();
        p.protect = one;
        compile_fails(&p, 512 * MiB, EINVAL, "workspace.protect: entry 2");
    }
    static const char *const bad_env[] = {"NOEQUALS", "=value", ""};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad_env); i++) {
        char *one[] = {(char *)bad_env[i], NULL};
        p = base();
        p.env = one;
        compile_fails(&p, 512 * MiB, EINVAL, "env: entry 1");
    }
}

static void test_list_limits(void **state) {
    struct profile p = base();
    _cleanup_strv_ char **many = NULL;
    for (unsigned i = 0; i <= DBX_PLAN_MAX_PATHS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p%u", i);
        many = dbx_strv_push(many, name);
    }
    p.protect = many;
    compile_fails(&p, 512 * MiB, E2BIG, "workspace.protect");

    /* within every count limit, but too big for the SETUP frame */
    _cleanup_strv_ char **big = NULL;
    char entry[512];
    memset(entry, 'v', sizeof(entry) - 1);
    entry[sizeof(entry) - 1] = '\0';
    entry[0] = 'K';
    entry[1] = '=';
    for (unsigned i = 0; i < DBX_PLAN_MAX_ENV; i++)
        big = dbx_strv_push(big, entry);
    p = base();
    p.env = big;
    compile_fails(&p, 512 * MiB, E2BIG, "plan takes");
}

static void assert_plans_equal(const struct dbx_plan *a, const struct dbx_plan *b) {
    assert_true(a->mem_max == b->mem_max && a->swap_max == b->swap_max);
    assert_int_equal(a->cpu_quota_us, b->cpu_quota_us);
    assert_int_equal(a->cpu_period_us, b->cpu_period_us);
    assert_int_equal(a->pids_max, b->pids_max);
    assert_int_equal(a->io_weight, b->io_weight);
    assert_true(a->nofile == b->nofile && a->nproc == b->nproc && a->caps == b->caps &&
                a->caps_user == b->caps_user);
    assert_int_equal(a->no_new_privs, b->no_new_privs);
    assert_int_equal(a->seccomp_mode, b->seccomp_mode);
    assert_int_equal(a->no_randomize, b->no_randomize);
    assert_string_equal(a->user, b->user);
    assert_int_equal(a->bpf_len, b->bpf_len);
    if (a->bpf_len) assert_memory_equal(a->bpf, b->bpf, (size_t)a->bpf_len * 8);
    assert_int_equal(a->nprotected, b->nprotected);
    for (uint32_t i = 0; i < a->nprotected; i++)
        assert_string_equal(a->protected[i], b -> protected[i]);
    assert_int_equal(a->nenv, b->nenv);
    for (uint32_t i = 0; i < a->nenv; i++)
        assert_string_equal(a->env[i], b->env[i]);
}

static void test_round_trip(void **state) {
    char *protect[] = {".git/hooks", "devbox.ini", NULL};
    char *env[] = {"LANG=C.UTF-8", NULL};
    const enum profile_seccomp modes[] = {PROFILE_SECCOMP_DEFAULT, PROFILE_SECCOMP_STRICT,
                                          PROFILE_SECCOMP_UNCONFINED};
    for (size_t m = 0; m < DBX_ARRAY_SIZE(modes); m++) {
        struct profile p = base();
        p.mem_limit = 300 * MiB;
        p.swap_limit = 0;
        p.cpu_milli = 1500;
        p.pids = 256;
        p.io_weight = 100;
        p.nofile = 1024;
        p.nproc = 512;
        p.caps = UINT64_C(1) << CAP_NET_BIND_SERVICE;
        p.user = "dev";
        p.seccomp = modes[m];
        p.protect = protect;
        p.env = env;
        struct dbx_plan plan = compile_ok(&p, 1 * GiB);

        struct dbx_buf b = {0};
        dbx_plan_encode(&plan, &b);
        struct dbx_plan back = {0};
        dbx_error *e = NULL;
        if (dbx_plan_decode(b.data, b.len, &back, &e) < 0) fail_msg("decode: %s", e->msg);
        assert_plans_equal(&plan, &back);
        dbx_plan_free(&back);

        /* every single flipped byte is refused (the SHA-256 trailer) */
        for (size_t i = 0; i < b.len; i++) {
            b.data[i] ^= 0x01;
            struct dbx_plan bad = {0};
            assert_true(dbx_plan_decode(b.data, b.len, &bad, &e) < 0);
            assert_int_equal(e->code, EPROTO);
            dbx_error_free(&e);
            b.data[i] ^= 0x01;
        }
        /* and so is a truncated one */
        struct dbx_plan bad = {0};
        assert_true(dbx_plan_decode(b.data, b.len - 1, &bad, &e) < 0);
        dbx_error_free(&e);
        dbx_buf_free(&b);
        dbx_plan_free(&plan);
    }
}

static bool has_env(const struct dbx_plan *plan, const char *kv) {
    for (uint32_t i = 0; i < plan->nenv; i++)
        if (strcmp(plan->env[i], kv) == 0) return true;
    return false;
}

static void test_network(void **state) {
    struct profile p = base();
    struct dbx_plan plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.net_mode, DBX_NET_NONE);
    assert_int_equal(plan.proxy_port, 0);
    assert_string_equal(plan.net_addr, "");
    assert_string_equal(plan.net_gw, "");
    assert_string_equal(plan.net_dns, "");
    assert_int_equal(plan.nenv, 0);
    dbx_plan_free(&plan);

    p.net_mode = PROFILE_NET_OPEN;
    plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.net_mode, DBX_NET_OPEN);
    assert_int_equal(plan.proxy_port, 0);
    assert_string_equal(plan.net_addr, "10.0.2.15/24");
    assert_string_equal(plan.net_gw, "10.0.2.2");
    assert_string_equal(plan.net_dns, "10.0.2.3");
    assert_int_equal(plan.nenv, 0);
    dbx_plan_free(&plan);

    char *allow[] = {"pypi.org", "*.githubusercontent.com", "127.0.0.1:8443", "[::1]:80", NULL};
    p.net_mode = PROFILE_NET_ALLOWLIST;
    p.allow = allow;
    plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.net_mode, DBX_NET_ALLOWLIST);
    assert_int_equal(plan.proxy_port, POLICY_PROXY_PORT);
    assert_int_equal(plan.proxy_port, 3128);
    assert_string_equal(plan.net_addr, "");
    assert_int_equal(plan.nenv, 8);
    static const char *const want[] = {
        "HTTP_PROXY=http://127.0.0.1:3128", "HTTPS_PROXY=http://127.0.0.1:3128",
        "ALL_PROXY=http://127.0.0.1:3128",  "NO_PROXY=localhost,127.0.0.1,::1",
        "http_proxy=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128",
        "all_proxy=http://127.0.0.1:3128",  "no_proxy=localhost,127.0.0.1,::1",
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(want); i++)
        assert_true(has_env(&plan, want[i]));
    assert_null(plan.env[plan.nenv]);
    /* the guest accepts it */
    struct dbx_buf b = {0};
    dbx_plan_encode(&plan, &b);
    struct dbx_plan back = {0};
    assert_int_equal(dbx_plan_decode(b.data, b.len, &back, NULL), 0);
    assert_int_equal(back.net_mode, DBX_NET_ALLOWLIST);
    assert_int_equal(back.proxy_port, 3128);
    assert_int_equal(back.nenv, 8);
    dbx_plan_free(&back);
    dbx_buf_free(&b);
    dbx_plan_free(&plan);

    /* the box's hostname is the box (127.0.1.1 in its /etc/hosts): not through the proxy */
    p.hostname = "devbox";
    plan = compile_ok(&p, 512 * MiB);
    assert_true(has_env(&plan, "NO_PROXY=localhost,127.0.0.1,::1,127.0.1.1,devbox"));
    assert_true(has_env(&plan, "no_proxy=localhost,127.0.0.1,::1,127.0.1.1,devbox"));
    dbx_plan_free(&plan);
    p.hostname = "localhost";
    plan = compile_ok(&p, 512 * MiB);
    assert_true(has_env(&plan, "NO_PROXY=localhost,127.0.0.1,::1"));
    dbx_plan_free(&plan);
    p.hostname = NULL;

    /* a profile [env] value for the same key wins; the other case is still added */
    char *env[] = {"HTTPS_PROXY=http://corp:8080", "no_proxy=*", "LANG=C", NULL};
    p.env = env;
    plan = compile_ok(&p, 512 * MiB);
    assert_int_equal(plan.nenv, 3 + 6);
    assert_true(has_env(&plan, "HTTPS_PROXY=http://corp:8080"));
    assert_false(has_env(&plan, "HTTPS_PROXY=http://127.0.0.1:3128"));
    assert_true(has_env(&plan, "https_proxy=http://127.0.0.1:3128"));
    assert_true(has_env(&plan, "no_proxy=*"));
    assert_true(has_env(&plan, "NO_PROXY=localhost,127.0.0.1,::1"));
    dbx_plan_free(&plan);

    /* with mode none, allow has no effect (and is not looked at) */
    char *bad[] = {"pypi.org", "0x7f.1", NULL};
    p = base();
    p.allow = bad;
    plan = compile_ok(&p, 512 * MiB);
    dbx_plan_free(&plan);
    p.net_mode = PROFILE_NET_ALLOWLIST;
    compile_fails(&p, 512 * MiB, EINVAL, "network.allow: '0x7f.1'");
    p.net_mode = (enum profile_net)7;
    p.allow = NULL;
    compile_fails(&p, 512 * MiB, EINVAL, "network.mode");

    /* no room left for the proxy variables */
    _cleanup_strv_ char **full = NULL;
    for (unsigned i = 0; i < DBX_PLAN_MAX_ENV; i++) {
        char kv[32];
        snprintf(kv, sizeof(kv), "K%u=v", i);
        full = dbx_strv_push(full, kv);
    }
    p = base();
    p.env = full;
    p.net_mode = PROFILE_NET_ALLOWLIST;
    compile_fails(&p, 512 * MiB, E2BIG, "proxy variables");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_default), cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_swap),           cmocka_unit_test(test_cpu),
        cmocka_unit_test(test_passthrough),    cmocka_unit_test(test_caps),
        cmocka_unit_test(test_caps_user),      cmocka_unit_test(test_security_flags),
        cmocka_unit_test(test_seccomp_modes),  cmocka_unit_test(test_lists),
        cmocka_unit_test(test_list_limits),    cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_network),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

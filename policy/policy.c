/* policy/policy.c: the effective profile -> the plan the guest init applies (limits,
 * capabilities, user, protected paths, environment, network mode; seccomp in
 * policy-seccomp.c).
 *
 * Everything the guest's dbx_plan_decode would refuse is refused here first, with a message
 * naming the profile key, so a bad profile fails on the host instead of at guest boot. */
#include <inttypes.h>

#include "policy-internal.h"

#include "../common/protocol.h" /* the plan travels in a SETUP frame */

/* Highest capability number of the guest kernel (Linux 6.1: CAP_CHECKPOINT_RESTORE).
 * PR_CAPBSET_DROP and capset refuse numbers above it. */
#define GUEST_CAP_LAST 40
#define CPU_PERIOD_US 100000u
/* cpu.max refuses a quota below 1 ms (Linux 6.1 kernel/sched/core.c min_cfs_quota_period) */
#define CPU_QUOTA_MIN_US 1000u
/* Room left in the SETUP frame for its other fields (workspace tag and path, hostname). */
#define SETUP_RESERVE (16u * 1024u)

static void plan_freep(struct dbx_plan *p) {
    dbx_plan_free(p);
}

uint64_t policy_mem_reserve(uint64_t vm_memory) {
    uint64_t r = vm_memory / 8;
    return r > POLICY_MEM_RESERVE_MIN ? r : POLICY_MEM_RESERVE_MIN;
}

static int compile_limits(const struct profile *p, uint64_t vm_memory, struct dbx_plan *plan,
                          dbx_error **err) {
    if (p->mem_limit != 0) {
        if (p->mem_limit >= vm_memory)
            return dbx_error_setx(err, EINVAL,
                                  "limits.memory %" PRIu64 " bytes is not below the VM's "
                                  "memory (box.memory %" PRIu64 " bytes)",
                                  p->mem_limit, vm_memory);
        plan->mem_max = p->mem_limit;
    } else {
        uint64_t reserve = policy_mem_reserve(vm_memory);
        if (vm_memory <= reserve)
            return dbx_error_setx(err, EINVAL,
                                  "box.memory %" PRIu64 " bytes leaves nothing for commands "
                                  "after the guest's reserve of %" PRIu64 " bytes",
                                  vm_memory, reserve);
        plan->mem_max = vm_memory - reserve;
    }
    /* The VM has no swap device; the value is written anyway so that the box stays limited
     * if one is ever added. */
    plan->swap_max = p->swap_limit;

    plan->cpu_period_us = CPU_PERIOD_US;
    if (p->cpu_milli != 0) {
        uint64_t quota = (uint64_t)p->cpu_milli * (CPU_PERIOD_US / 1000u);
        if (quota < CPU_QUOTA_MIN_US || quota > UINT32_MAX)
            return dbx_error_setx(err, ERANGE, "limits.cpu %u.%03u is out of range",
                                  p->cpu_milli / 1000u, p->cpu_milli % 1000u);
        plan->cpu_quota_us = (uint32_t)quota;
    }
    plan->pids_max = p->pids;
    if (p->io_weight > 10000)
        return dbx_error_setx(err, ERANGE, "limits.io_weight %u is above 10000", p->io_weight);
    plan->io_weight = p->io_weight;
    plan->nofile = p->nofile;
    plan->nproc = p->nproc;
    return 0;
}

static int compile_security(const struct profile *p, struct dbx_plan *plan, dbx_error **err) {
    uint64_t known = (UINT64_C(1) << (GUEST_CAP_LAST + 1)) - 1;
    if ((p->caps | p->caps_user) & ~known) {
        int bit = __builtin_ctzll((p->caps | p->caps_user) & ~known);
        return dbx_error_setx(err, EINVAL,
                              "security.%s: capability %d is unknown to the guest kernel",
                              (p->caps_user & ~known) ? "capabilities_user" : "capabilities", bit);
    }
    /* What the box user may have, root may have too: root's mask is the union. */
    plan->caps = p->caps | p->caps_user;
    plan->caps_user = p->caps_user;
    plan->no_new_privs = p->no_new_privs ? 1 : 0;
    const char *user = p->user ? p->user : "";
    if (strlen(user) > 256)
        return dbx_error_setx(err, EINVAL, "security.user is longer than 256 bytes");
    plan->user = dbx_xstrdup(user);

    switch (p->seccomp) {
    case PROFILE_SECCOMP_UNCONFINED:
        plan->seccomp_mode = DBX_SECCOMP_UNCONFINED;
        return 0;
    case PROFILE_SECCOMP_DEFAULT:
        plan->seccomp_mode = DBX_SECCOMP_DEFAULT;
        break;
    case PROFILE_SECCOMP_STRICT:
        plan->seccomp_mode = DBX_SECCOMP_STRICT;
        break;
    default:
        return dbx_error_setx(err, EINVAL, "security.seccomp: unknown mode %d", (int)p->seccomp);
    }
    int r = policy_seccomp_build(p->seccomp, &plan->bpf, &plan->bpf_len, err);
    if (r < 0) dbx_error_wrap(err, "security.seccomp");
    return r;
}

/* Copy a NULL-terminated list into a counted one, checking each entry as the guest will. */
static int copy_list(char *const *src, uint32_t max, const char *key,
                     const char *(*check)(const char *), uint32_t *ret_n, char ***ret_v,
                     dbx_error **err) {
    size_t n = dbx_strv_len(src);
    if (n > max) return dbx_error_setx(err, E2BIG, "%s: %zu entries, more than %u", key, n, max);
    char **v = dbx_xcalloc(n + 1, sizeof(char *));
    *ret_v = v; /* owned by the plan from here on, even if a check fails */
    for (size_t i = 0; i < n; i++) {
        const char *why = strlen(src[i]) > DBX_MAX_STR ? "too long" : check(src[i]);
        if (why) return dbx_error_setx(err, EINVAL, "%s: entry %zu %s", key, i + 1, why);
        v[i] = dbx_xstrdup(src[i]);
        *ret_n = (uint32_t)(i + 1);
    }
    return 0;
}

/* The same test as dbx_plan_decode's, which refuses any "..", even inside a name. */
static const char *check_protected(const char *s) {
    if (s[0] == '\0') return "is empty";
    if (s[0] == '/') return "is not relative to the workspace";
    if (strstr(s, "..")) return "contains '..'";
    return NULL;
}

static const char *check_env(const char *s) {
    if (s[0] == '=' || !strchr(s, '=')) return "is not KEY=VALUE";
    return NULL;
}

/* ---- network ------------------------------------------------------------------------------ */

/* What every exec'd process gets in allowlist mode, so curl, git, pip, npm, apt and Go tools
 * use the proxy unchanged (some read only the upper-case names, some only the lower-case). */
static const char *const proxy_env[][2] = {
    {"HTTP_PROXY", POLICY_PROXY_URL}, {"HTTPS_PROXY", POLICY_PROXY_URL},
    {"ALL_PROXY", POLICY_PROXY_URL},  {"NO_PROXY", POLICY_NO_PROXY},
    {"http_proxy", POLICY_PROXY_URL}, {"https_proxy", POLICY_PROXY_URL},
    {"all_proxy", POLICY_PROXY_URL},  {"no_proxy", POLICY_NO_PROXY},
};

static int compile_allowlist(const struct profile *p, struct dbx_plan *plan, dbx_error **err) {
    for (size_t i = 0; p->allow && p->allow[i]; i++) {
        struct profile_allow pat;
        int r = policy_pattern_parse(p->allow[i], &pat, err);
        if (r < 0) return r;
    }
    plan->net_mode = DBX_NET_ALLOWLIST;
    plan->proxy_port = POLICY_PROXY_PORT;
    /* The box's own name is the box, as its /etc/hosts says (guest/init-hosts.c: 127.0.1.1):
     * `curl http://devbox:3000` to a server in the box went to the proxy, which refused it. */
    bool own = p->hostname && p->hostname[0] && strcasecmp(p->hostname, "localhost") != 0;
    _cleanup_free_ char *no_proxy =
        own ? dbx_xasprintf("%s,127.0.1.1,%s", POLICY_NO_PROXY, p->hostname)
            : dbx_xstrdup(POLICY_NO_PROXY);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(proxy_env); i++) {
        if (dbx_plan_env_find(plan, proxy_env[i][0]) >= 0) continue; /* the profile's wins */
        const char *v = proxy_env[i][1];
        if (!strcmp(v, POLICY_NO_PROXY)) v = no_proxy;
        if (!dbx_plan_env_add(plan, proxy_env[i][0], v))
            return dbx_error_setx(err, E2BIG,
                                  "env: no room for the proxy variables (%u "
                                  "entries at most)",
                                  DBX_PLAN_MAX_ENV);
    }
    return 0;
}

static int compile_network(const struct profile *p, struct dbx_plan *plan, dbx_error **err) {
    bool open = p->net_mode == PROFILE_NET_OPEN;
    plan->net_addr = dbx_xstrdup(open ? DBX_NET_OPEN_ADDR : "");
    plan->net_gw = dbx_xstrdup(open ? DBX_NET_OPEN_GW : "");
    plan->net_dns = dbx_xstrdup(open ? DBX_NET_OPEN_DNS : "");
    switch (p->net_mode) {
    case PROFILE_NET_NONE:
        plan->net_mode = DBX_NET_NONE;
        return 0;
    case PROFILE_NET_OPEN:
        plan->net_mode = DBX_NET_OPEN;
        return 0;
    case PROFILE_NET_ALLOWLIST:
        return compile_allowlist(p, plan, err);
    default:
        return dbx_error_setx(err, EINVAL, "network.mode: unknown mode %d", (int)p->net_mode);
    }
}

/* The plan travels inside SETUP, one frame of at most DBX_FRAME_MAX bytes. */
static int check_size(const struct dbx_plan *plan, dbx_error **err) {
    struct dbx_buf b = {0};
    dbx_plan_encode(plan, &b);
    size_t len = b.len;
    dbx_buf_free(&b);
    if (len > DBX_FRAME_MAX - SETUP_RESERVE)
        return dbx_error_setx(err, E2BIG, "the plan takes %zu bytes, more than %u", len,
                              DBX_FRAME_MAX - SETUP_RESERVE);
    return 0;
}

int policy_compile(const struct profile *p, uint64_t vm_memory, struct dbx_plan *ret,
                   dbx_error **err) {
    _cleanup_(plan_freep) struct dbx_plan plan = {0};
    int r = compile_limits(p, vm_memory, &plan, err);
    if (r == 0) r = compile_security(p, &plan, err);
    if (r == 0)
        r = copy_list(p->protect, DBX_PLAN_MAX_PATHS, "workspace.protect", check_protected,
                      &plan.nprotected, &plan.protected, err);
    if (r == 0)
        r = copy_list(p->env, DBX_PLAN_MAX_ENV, "env", check_env, &plan.nenv, &plan.env, err);
    if (r == 0) r = compile_network(p, &plan, err);
    if (r == 0) r = check_size(&plan, err);
    if (r < 0) return r;
    *ret = plan;
    plan = (struct dbx_plan){0};
    return 0;
}

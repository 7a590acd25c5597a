/* common/plan.c: the plan's encoding and its strict decoding.  Pure byte manipulation like the
 * rest of the codec (common/protocol.c): fuzzed, unit-tested and linked into the static init. */
#define _GNU_SOURCE
#include "plan.h"
#include "protocol.h"
#include "sha256.h"

void dbx_plan_permissive(struct dbx_plan *ret) {
    *ret = (struct dbx_plan){.swap_max = UINT64_MAX,
                             .cpu_period_us = 100000,
                             .caps = DBX_CAP_ALL,
                             .caps_user = DBX_CAP_ALL,
                             .user = dbx_xstrdup(""),
                             .net_addr = dbx_xstrdup(""),
                             .net_gw = dbx_xstrdup(""),
                             .net_dns = dbx_xstrdup("")};
}

int dbx_plan_env_find(const struct dbx_plan *p, const char *name) {
    size_t kl = strlen(name);
    for (uint32_t i = 0; i < p->nenv; i++)
        if (strncmp(p->env[i], name, kl) == 0 && p->env[i][kl] == '=') return (int)i;
    return -1;
}

bool dbx_plan_env_add(struct dbx_plan *p, const char *name, const char *value) {
    if (p->nenv >= DBX_PLAN_MAX_ENV) return false;
    p->env = dbx_xrealloc(p->env, (p->nenv + 2) * sizeof(char *));
    p->env[p->nenv++] = dbx_xasprintf("%s=%s", name, value);
    p->env[p->nenv] = NULL;
    return true;
}

void dbx_plan_free(struct dbx_plan *p) {
    if (!p) return;
    free(p->user);
    free(p->bpf);
    for (uint32_t i = 0; p->protected && i < p->nprotected; i++)
        free(p->protected[i]);
    free(p->protected);
    for (uint32_t i = 0; p->env && i < p->nenv; i++)
        free(p->env[i]);
    free(p->env);
    free(p->net_addr);
    free(p->net_gw);
    free(p->net_dns);
    *p = (struct dbx_plan){0};
}

void dbx_plan_encode(const struct dbx_plan *p, struct dbx_buf *out) {
    size_t start = out->len;
    dbx_buf_put_u64(out, p->mem_max);
    dbx_buf_put_u64(out, p->swap_max);
    dbx_buf_put_u32(out, p->cpu_quota_us);
    dbx_buf_put_u32(out, p->cpu_period_us);
    dbx_buf_put_u32(out, p->pids_max);
    dbx_buf_put_u32(out, p->io_weight);
    dbx_buf_put_u64(out, p->nofile);
    dbx_buf_put_u64(out, p->nproc);
    dbx_buf_put_u64(out, p->caps);
    dbx_buf_put_u64(out, p->caps_user);
    dbx_buf_put_u8(out, p->no_new_privs);
    dbx_buf_put_u8(out, p->seccomp_mode);
    dbx_buf_put_u8(out, p->no_randomize);
    dbx_buf_put_str(out, p->user);
    dbx_buf_put_u32(out, p->bpf_len);
    dbx_buf_put(out, p->bpf, (size_t)p->bpf_len * 8);
    dbx_buf_put_u32(out, p->nprotected);
    for (uint32_t i = 0; i < p->nprotected; i++)
        dbx_buf_put_str(out, p->protected[i]);
    dbx_buf_put_u32(out, p->nenv);
    for (uint32_t i = 0; i < p->nenv; i++)
        dbx_buf_put_str(out, p->env[i]);
    dbx_buf_put_u8(out, p->net_mode);
    dbx_buf_put_u16(out, p->proxy_port);
    dbx_buf_put_str(out, p->net_addr ? p->net_addr : "");
    dbx_buf_put_str(out, p->net_gw ? p->net_gw : "");
    dbx_buf_put_str(out, p->net_dns ? p->net_dns : "");
    uint8_t md[32];
    dbx_sha256(out->data + start, out->len - start, md);
    dbx_buf_put(out, md, sizeof(md));
}

/* The open mode's addresses in their one accepted spelling; other modes carry none. */
static int check_net(const struct dbx_plan *r) {
    uint8_t a[4], prefix;
    if (r->net_mode != DBX_NET_OPEN)
        return r->net_gw[0] == '\0' && r->net_dns[0] == '\0' ? 0 : -EINVAL;
    if (dbx_parse_ipv4(r->net_addr, a, &prefix) < 0 || dbx_parse_ipv4(r->net_gw, a, NULL) < 0)
        return -EINVAL;
    return r->net_dns[0] == '\0' || dbx_parse_ipv4(r->net_dns, a, NULL) == 0 ? 0 : -EINVAL;
}

int dbx_plan_decode(const uint8_t *p, size_t n, struct dbx_plan *ret, dbx_error **err) {
    if (n < 32) return dbx_error_setx(err, EPROTO, "malformed plan: too short");
    uint8_t md[32];
    dbx_sha256(p, n - 32, md);
    if (memcmp(md, p + n - 32, 32) != 0)
        return dbx_error_setx(err, EPROTO, "plan checksum mismatch");
    struct dbx_cursor c = {p, n - 32};
    struct dbx_plan r = {0};
    const char *why = NULL;
    if (dbx_get_u64(&c, &r.mem_max) < 0 || dbx_get_u64(&c, &r.swap_max) < 0 ||
        dbx_get_u32(&c, &r.cpu_quota_us) < 0 || dbx_get_u32(&c, &r.cpu_period_us) < 0 ||
        dbx_get_u32(&c, &r.pids_max) < 0 || dbx_get_u32(&c, &r.io_weight) < 0 ||
        dbx_get_u64(&c, &r.nofile) < 0 || dbx_get_u64(&c, &r.nproc) < 0 ||
        dbx_get_u64(&c, &r.caps) < 0 || dbx_get_u64(&c, &r.caps_user) < 0 ||
        dbx_get_u8(&c, &r.no_new_privs) < 0 || dbx_get_u8(&c, &r.seccomp_mode) < 0 ||
        dbx_get_u8(&c, &r.no_randomize) < 0 || dbx_get_str(&c, 256, &r.user) < 0 ||
        dbx_get_u32(&c, &r.bpf_len) < 0)
        why = "truncated";
    else if (r.bpf_len > DBX_PLAN_MAX_BPF || (size_t)r.bpf_len * 8 > c.left)
        why = "seccomp program too long";
    else {
        r.bpf = dbx_xmalloc((size_t)r.bpf_len * 8);
        memcpy(r.bpf, c.p, (size_t)r.bpf_len * 8);
        c.p += (size_t)r.bpf_len * 8;
        c.left -= (size_t)r.bpf_len * 8;
        if (dbx_get_strv(&c, DBX_PLAN_MAX_PATHS, &r.nprotected, &r.protected) < 0 ||
            dbx_get_strv(&c, DBX_PLAN_MAX_ENV, &r.nenv, &r.env) < 0)
            why = "bad path or environment list";
        else if (dbx_get_u8(&c, &r.net_mode) < 0 || dbx_get_u16(&c, &r.proxy_port) < 0 ||
                 dbx_get_str(&c, 64, &r.net_addr) < 0 || dbx_get_str(&c, 64, &r.net_gw) < 0 ||
                 dbx_get_str(&c, 64, &r.net_dns) < 0)
            why = "truncated network settings";
        else if (c.left != 0)
            why = "trailing bytes";
        else if (r.net_mode > DBX_NET_OPEN)
            why = "bad network mode";
        else if ((r.net_mode == DBX_NET_ALLOWLIST) != (r.proxy_port != 0))
            why = "network mode and proxy port disagree";
        else if ((r.net_mode == DBX_NET_OPEN) != (r.net_addr[0] != '\0'))
            why = "network mode and address disagree";
        else if (check_net(&r) < 0)
            why = "bad network address";
        else if (r.no_new_privs > 1 || r.seccomp_mode > DBX_SECCOMP_STRICT || r.no_randomize > 1)
            why = "bad flag";
        else if ((r.seccomp_mode == DBX_SECCOMP_UNCONFINED) != (r.bpf_len == 0))
            why = "seccomp mode and program disagree";
        else if (r.cpu_quota_us && (r.cpu_period_us < 1000 || r.cpu_period_us > 1000000))
            why = "bad cpu period";
        else if (r.io_weight > 10000)
            why = "bad io weight";
        else if (r.caps != DBX_CAP_ALL && (r.caps_user & ~r.caps))
            why = "the box user's capabilities are not a subset of root's";
        for (uint32_t i = 0; !why && i < r.nenv; i++)
            if (!strchr(r.env[i], '=') || r.env[i][0] == '=') why = "environment entry without '='";
        for (uint32_t i = 0; !why && i < r.nprotected; i++)
            if (r.protected[i][0] == '/' || r.protected[i][0] == '\0' ||
                strstr(r.protected[i], ".."))
                why = "protected path not relative";
    }
    if (why) {
        dbx_plan_free(&r);
        return dbx_error_setx(err, EPROTO, "malformed plan: %s", why);
    }
    *ret = r;
    return 0;
}

/* One decimal part 0..255 without a leading zero; advances *s past it. */
static int ipv4_part(const char **s, unsigned max, unsigned *ret) {
    const char *p = *s;
    unsigned v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 3) {
        v = v * 10 + (unsigned)(*p++ - '0');
        digits++;
    }
    if (digits == 0 || (digits > 1 && **s == '0') || v > max || (*p >= '0' && *p <= '9'))
        return -EINVAL;
    *s = p;
    *ret = v;
    return 0;
}

int dbx_parse_ipv4(const char *s, uint8_t ret[4], uint8_t *ret_prefix) {
    uint8_t a[4];
    unsigned v;
    for (int i = 0; i < 4; i++) {
        if ((i > 0 && *s++ != '.') || ipv4_part(&s, 255, &v) < 0) return -EINVAL;
        a[i] = (uint8_t)v;
    }
    if (ret_prefix) {
        if (*s++ != '/' || ipv4_part(&s, 32, &v) < 0 || v == 0) return -EINVAL;
    }
    if (*s != '\0') return -EINVAL;
    memcpy(ret, a, 4);
    if (ret_prefix) *ret_prefix = (uint8_t)v;
    return 0;
}

bool dbx_path_near(const char *rel, char *const *paths, uint32_t n) {
    size_t rl = strlen(rel);
    for (uint32_t i = 0; paths && i < n; i++) {
        const char *q = paths[i];
        size_t ql = strlen(q);
        if (rl >= ql && !strncmp(rel, q, ql) && (rel[ql] == '\0' || rel[ql] == '/')) return true;
        if (ql > rl && !strncmp(q, rel, rl) && q[rl] == '/') return true;
    }
    return false;
}

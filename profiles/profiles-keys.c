/* profiles/profiles-keys.c: what each key means.  One table row per key (nspawn's
 * Section.Key -> parser); each parser checks the value, sets the field and records where it
 * came from.  Layers are applied in chain order, so later files win key by key; `protect`
 * accumulates and `unprotect` removes. */
#define _GNU_SOURCE
#include "profiles-internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>

struct prof_apply {
    struct profile *p;
    const struct profile_layer *l;
    char ***errors;
};

struct item {
    char *s;
    unsigned line;
};

static void bad(struct prof_apply *a, const struct prof_entry *e, unsigned line, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
static void bad(struct prof_apply *a, const struct prof_entry *e, unsigned line, const char *fmt,
                ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    if (line)
        prof_errf(a->errors, "%s:%u: [%s] %s: %s", a->l->name, line, e->section, e->key, m);
    else
        prof_errf(a->errors, "%s: [%s] %s: %s", a->l->name, e->section, e->key, m);
}

static char *where_at(const struct prof_apply *a, unsigned line) {
    return line ? dbx_xasprintf("%s:%u", a->l->where, line) : dbx_xstrdup(a->l->where);
}

static void set_origin(struct prof_apply *a, const struct prof_entry *e, unsigned line) {
    _cleanup_free_ char *key = dbx_xasprintf("%s.%s", e->section, e->key);
    _cleanup_free_ char *w = where_at(a, line);
    prof_origin_set(a->p, key, w);
}

static const char *single(const struct prof_entry *e) {
    return e->parts[0].text;
}

static void items_free(struct item *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i].s);
    free(v);
}

/* Split every part of a list entry at commas and whitespace.  -1 when over the limit. */
static ssize_t split_items(struct prof_apply *a, const struct prof_entry *e, struct item **ret) {
    struct item *v = NULL;
    size_t n = 0;
    for (size_t i = 0; i < e->nparts; i++) {
        const char *s = e->parts[i].text;
        while (*s) {
            size_t sep = strspn(s, ", \t");
            s += sep;
            size_t len = strcspn(s, ", \t");
            if (!len) continue;
            if (n == PROFILE_MAX_LIST) {
                bad(a, e, e->parts[i].line, "more than %u entries", PROFILE_MAX_LIST);
                items_free(v, n);
                return -1;
            }
            v = dbx_xrealloc(v, (n + 1) * sizeof(*v));
            v[n++] = (struct item){.s = dbx_xstrndup(s, len), .line = e->parts[i].line};
            s += len;
        }
    }
    *ret = v;
    return (ssize_t)n;
}

/* ---- scalar parsers ------------------------------------------------------------------------ */

static bool parse_size_range(const char *v, uint64_t min, uint64_t max, uint64_t *ret) {
    uint64_t n;
    if (dbx_parse_size(v, &n) < 0 || n < min || n > max) return false;
    *ret = n;
    return true;
}

static void parse_image(struct prof_apply *a, const struct prof_entry *e) {
    const char *v = single(e), *why = NULL;
    if (!prof_image_ref_ok(v, &why))
        return bad(a, e, e->line, "'%s' is not an image reference or name: %s", v, why);
    free(a->p->image);
    a->p->image = dbx_xstrdup(v);
    set_origin(a, e, e->line);
}

static void parse_cpus(struct prof_apply *a, const struct prof_entry *e) {
    uint64_t n;
    if (dbx_parse_u64(single(e), 1, 64, &n) < 0)
        return bad(a, e, e->line, "must be a whole number from 1 to 64, not '%s'", single(e));
    a->p->cpus = (unsigned)n;
    set_origin(a, e, e->line);
}

static void parse_memory(struct prof_apply *a, const struct prof_entry *e) {
    if (!parse_size_range(single(e), 128ull << 20, 256ull << 30, &a->p->memory))
        return bad(a, e, e->line, "must be a size from 128M to 256G (e.g. 512M, 2G), not '%s'",
                   single(e));
    set_origin(a, e, e->line);
}

static void parse_disk(struct prof_apply *a, const struct prof_entry *e) {
    if (strcmp(single(e), "auto") == 0)
        a->p->disk = 0;
    else if (!parse_size_range(single(e), 1ull << 30, 2ull << 40, &a->p->disk))
        return bad(a, e, e->line, "must be 'auto' or a size from 1G to 2T, not '%s'", single(e));
    set_origin(a, e, e->line);
}

static void parse_hostname(struct prof_apply *a, const struct prof_entry *e) {
    const char *v = single(e);
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= 63 && v[0] != '-' && v[n - 1] != '-';
    for (const char *s = v; ok && *s; s++)
        ok = isalnum((unsigned char)*s) || *s == '-';
    if (!ok)
        return bad(a, e, e->line,
                   "'%s' is not a host name label (1 to 63 of a-z A-Z 0-9 -, no '-' at the ends)",
                   v);
    free(a->p->hostname);
    a->p->hostname = dbx_xstrdup(v);
    set_origin(a, e, e->line);
}

const char *profile_kernel_name(enum profile_kernel k) {
    static const char *const names[] = {"auto", "devbox", "debian"};
    return (unsigned)k < DBX_ARRAY_SIZE(names) ? names[k] : "auto";
}

/* [box] kernel: not a widening either way (the box's policy is the same on both kernels) */
static void parse_kernel(struct prof_apply *a, const struct prof_entry *e) {
    for (int k = PROFILE_KERNEL_AUTO; k <= PROFILE_KERNEL_DEBIAN; k++)
        if (strcmp(single(e), profile_kernel_name((enum profile_kernel)k)) == 0) {
            a->p->kernel = (enum profile_kernel)k;
            return set_origin(a, e, e->line);
        }
    bad(a, e, e->line, "must be 'auto', 'devbox' or 'debian', not '%s'", single(e));
}

static void parse_mem_limit(struct prof_apply *a, const struct prof_entry *e) {
    if (strcmp(single(e), "auto") == 0)
        a->p->mem_limit = 0;
    else if (!parse_size_range(single(e), 16ull << 20, 256ull << 30, &a->p->mem_limit))
        return bad(a, e, e->line, "must be 'auto' or a size from 16M to 256G, not '%s'", single(e));
    set_origin(a, e, e->line);
}

static void parse_swap(struct prof_apply *a, const struct prof_entry *e) {
    if (strcmp(single(e), "max") == 0)
        a->p->swap_limit = UINT64_MAX;
    else if (!parse_size_range(single(e), 0, 1ull << 40, &a->p->swap_limit))
        return bad(a, e, e->line, "must be 'max' or a size up to 1T, not '%s'", single(e));
    set_origin(a, e, e->line);
}

/* "1.5" -> 1500: a decimal with at most three fractional digits. */
static int parse_milli(const char *s, uint64_t *ret) {
    uint64_t whole = 0, frac = 0;
    size_t nd = strspn(s, "0123456789");
    if (nd == 0 || nd > 6) return -EINVAL;
    for (size_t i = 0; i < nd; i++)
        whole = whole * 10 + (uint64_t)(s[i] - '0');
    s += nd;
    if (*s == '.') {
        s++;
        size_t nf = strspn(s, "0123456789");
        if (nf == 0 || nf > 3 || s[nf]) return -EINVAL;
        for (size_t i = 0; i < 3; i++)
            frac = frac * 10 + (i < nf ? (uint64_t)(s[i] - '0') : 0);
    } else if (*s) {
        return -EINVAL;
    }
    *ret = whole * 1000 + frac;
    return 0;
}

static void parse_cpu(struct prof_apply *a, const struct prof_entry *e) {
    uint64_t m = 0;
    if (strcmp(single(e), "none") != 0 && (parse_milli(single(e), &m) < 0 || m < 10 || m > 64000))
        return bad(a, e, e->line,
                   "must be 'none' or a number of CPUs from 0.01 to 64 (e.g. 1.5), not '%s'",
                   single(e));
    a->p->cpu_milli = (uint32_t)m;
    set_origin(a, e, e->line);
}

static void parse_pids(struct prof_apply *a, const struct prof_entry *e) {
    uint64_t n;
    if (dbx_parse_u64(single(e), 1, 4194304, &n) < 0)
        return bad(a, e, e->line, "must be a whole number from 1 to 4194304, not '%s'", single(e));
    a->p->pids = (uint32_t)n;
    set_origin(a, e, e->line);
}

static void parse_nofile(struct prof_apply *a, const struct prof_entry *e) {
    if (dbx_parse_u64(single(e), 1, 1048576, &a->p->nofile) < 0)
        return bad(a, e, e->line, "must be a whole number from 1 to 1048576, not '%s'", single(e));
    set_origin(a, e, e->line);
}

static void parse_nproc(struct prof_apply *a, const struct prof_entry *e) {
    if (strcmp(single(e), "none") == 0)
        a->p->nproc = 0;
    else if (dbx_parse_u64(single(e), 1, 4194304, &a->p->nproc) < 0)
        return bad(a, e, e->line, "must be 'none' or a whole number from 1 to 4194304, not '%s'",
                   single(e));
    set_origin(a, e, e->line);
}

static void parse_io_weight(struct prof_apply *a, const struct prof_entry *e) {
    uint64_t n = 0;
    if (strcmp(single(e), "default") != 0 && dbx_parse_u64(single(e), 1, 10000, &n) < 0)
        return bad(a, e, e->line, "must be 'default' or a whole number from 1 to 10000, not '%s'",
                   single(e));
    a->p->io_weight = (uint32_t)n;
    set_origin(a, e, e->line);
}

static bool valid_id(const char *s) {
    uint64_t n;
    return dbx_parse_u64(s, 0, UINT32_MAX - 1, &n) == 0;
}

static void parse_user(struct prof_apply *a, const struct prof_entry *e) {
    const char *v = single(e);
    bool ok;
    if (isdigit((unsigned char)v[0])) {
        _cleanup_free_ char *uid = dbx_xstrndup(v, strcspn(v, ":"));
        const char *gid = strchr(v, ':');
        ok = valid_id(uid) && (!gid || valid_id(gid + 1));
    } else {
        size_t n = strlen(v);
        ok = n <= 32 && (n == 0 || v[0] == '_' || (v[0] >= 'a' && v[0] <= 'z'));
        for (const char *s = v; ok && *s; s++)
            ok = (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-';
    }
    if (!ok)
        return bad(a, e, e->line,
                   "'%s' is not 'root', a user name ([a-z_][a-z0-9_-]*) or uid[:gid]", v);
    free(a->p->user);
    a->p->user = dbx_xstrdup(v);
    set_origin(a, e, e->line);
}

static const char *const cap_names[] = {
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
};

int profile_cap_from_name(const char *name) {
    if (strncasecmp(name, "cap_", 4) == 0) name += 4;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cap_names); i++)
        if (strcasecmp(name, cap_names[i]) == 0) return (int)i;
    return -1;
}

const char *profile_cap_name(int cap) {
    return cap >= 0 && (size_t)cap < DBX_ARRAY_SIZE(cap_names) ? cap_names[cap] : NULL;
}

static void parse_caps(struct prof_apply *a, const struct prof_entry *e) {
    struct item *v = NULL;
    ssize_t n = split_items(a, e, &v);
    if (n < 0) return;
    uint64_t caps = 0;
    bool ok = true;
    for (ssize_t i = 0; i < n; i++) {
        int c = profile_cap_from_name(v[i].s);
        if (c >= 0) {
            caps |= 1ull << c;
            continue;
        }
        ok = false;
        const char *name = strncasecmp(v[i].s, "cap_", 4) == 0 ? v[i].s + 4 : v[i].s;
        const char *best = NULL;
        unsigned bd = 3;
        for (size_t j = 0; j < DBX_ARRAY_SIZE(cap_names); j++) {
            unsigned d = prof_distance(name, cap_names[j]);
            if (d < bd) bd = d, best = cap_names[j];
        }
        if (best)
            bad(a, e, v[i].line, "unknown capability '%s' (did you mean '%s'?)", v[i].s, best);
        else
            bad(a, e, v[i].line, "unknown capability '%s'", v[i].s);
    }
    items_free(v, (size_t)n);
    if (!ok) return;
    /* capabilities: uid 0 only; capabilities_user: the ordinary box user as well */
    if (strcmp(e->key, "capabilities_user") == 0)
        a->p->caps_user = caps;
    else
        a->p->caps = caps;
    set_origin(a, e, e->line);
}

static void parse_seccomp(struct prof_apply *a, const struct prof_entry *e) {
    static const char *const names[] = {"default", "strict", "unconfined"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(names); i++)
        if (strcmp(single(e), names[i]) == 0) {
            a->p->seccomp = (enum profile_seccomp)i;
            return set_origin(a, e, e->line);
        }
    bad(a, e, e->line, "must be 'default', 'strict' or 'unconfined', not '%s'", single(e));
}

/* true | false into *dst (the key's origin recorded), else an error at its line. */
static void parse_bool(struct prof_apply *a, const struct prof_entry *e, bool *dst) {
    if (strcmp(single(e), "true") == 0)
        *dst = true;
    else if (strcmp(single(e), "false") == 0)
        *dst = false;
    else
        return bad(a, e, e->line, "must be 'true' or 'false', not '%s'", single(e));
    set_origin(a, e, e->line);
}

/* [setup] workspace */
static void parse_setup_workspace(struct prof_apply *a, const struct prof_entry *e) {
    parse_bool(a, e, &a->p->setup_workspace);
}

static void parse_nnp(struct prof_apply *a, const struct prof_entry *e) {
    parse_bool(a, e, &a->p->no_new_privs);
}

static void parse_aslr(struct prof_apply *a, const struct prof_entry *e) {
    if (strcmp(single(e), "auto") != 0 && strcmp(single(e), "on") != 0)
        return bad(a, e, e->line, "must be 'auto' or 'on', not '%s'", single(e));
    a->p->aslr_on = strcmp(single(e), "on") == 0;
    set_origin(a, e, e->line);
}

/* ---- workspace ----------------------------------------------------------------------------- */

char *prof_path_normalize(const char *s, const char **why) {
    if (!*s) return *why = "empty path", NULL;
    if (*s == '/') return *why = "must be relative to the repo root (no leading '/')", NULL;
    if (strpbrk(s, "*?[")) return *why = "wildcards are not supported", NULL;
    if (strlen(s) > 4096) return *why = "longer than 4096 bytes", NULL;
    _cleanup_free_ char *out = dbx_xmalloc(strlen(s) + 1);
    size_t n = 0;
    while (*s) {
        size_t len = strcspn(s, "/");
        if (len == 2 && s[0] == '.' && s[1] == '.') return *why = "must not contain '..'", NULL;
        if (len && !(len == 1 && s[0] == '.')) {
            if (n) out[n++] = '/';
            memcpy(out + n, s, len);
            n += len;
        }
        s += len;
        s += strspn(s, "/");
    }
    out[n] = '\0';
    if (!n) return *why = "must name a path inside the repo, not the repo itself", NULL;
    return TAKE_PTR(out);
}

bool prof_strv_contains(char *const *v, const char *s) {
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0) return true;
    return false;
}

char *prof_strv_join(char *const *v) {
    return dbx_strv_join(v, ", ");
}

bool prof_strv_remove(char **v, const char *s) {
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0) {
            free(v[i]);
            memmove(&v[i], &v[i + 1], (dbx_strv_len(v + i + 1) + 1) * sizeof(*v));
            return true;
        }
    return false;
}

static void parse_protect(struct prof_apply *a, const struct prof_entry *e) {
    bool add = strcmp(e->key, "protect") == 0;
    struct item *v = NULL;
    ssize_t n = split_items(a, e, &v);
    for (ssize_t i = 0; i < n; i++) {
        const char *why = NULL;
        _cleanup_free_ char *path = prof_path_normalize(v[i].s, &why);
        if (!path) {
            bad(a, e, v[i].line, "'%s': %s", v[i].s, why);
            continue;
        }
        _cleanup_free_ char *pk = dbx_xasprintf("workspace.protect[%s]", path);
        _cleanup_free_ char *uk = dbx_xasprintf("workspace.unprotect[%s]", path);
        _cleanup_free_ char *w = where_at(a, v[i].line);
        if (add) {
            if (!prof_strv_contains(a->p->protect, path)) {
                if (dbx_strv_len(a->p->protect) >= PROFILE_MAX_LIST) {
                    bad(a, e, v[i].line, "more than %u protected paths", PROFILE_MAX_LIST);
                    break;
                }
                a->p->protect = dbx_strv_push(a->p->protect, path);
            }
            prof_origin_drop(a->p, uk);
            prof_origin_set(a->p, pk, w);
        } else {
            prof_strv_remove(a->p->protect, path);
            prof_origin_drop(a->p, pk);
            prof_origin_set(a->p, uk, w);
        }
    }
    if (n > 0) items_free(v, (size_t)n);
}

/* ---- env ----------------------------------------------------------------------------------- */

static void parse_env(struct prof_apply *a, const struct prof_entry *e) {
    const char *k = e->key;
    bool ok = isalpha((unsigned char)k[0]) || k[0] == '_';
    for (const char *s = k; ok && *s; s++)
        ok = isalnum((unsigned char)*s) || *s == '_';
    if (!ok) {
        prof_errf(a->errors, "%s:%u: [env] '%s' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
                  a->l->name, e->line, k);
        return;
    }
    size_t kl = strlen(k);
    _cleanup_free_ char *kv = dbx_xasprintf("%s=%s", k, single(e));
    for (size_t i = 0; a->p->env && a->p->env[i]; i++)
        if (strncmp(a->p->env[i], k, kl) == 0 && a->p->env[i][kl] == '=') {
            free(a->p->env[i]);
            a->p->env[i] = TAKE_PTR(kv);
            break;
        }
    if (kv) {
        if (dbx_strv_len(a->p->env) >= PROFILE_MAX_LIST)
            return bad(a, e, e->line, "more than %u variables", PROFILE_MAX_LIST);
        a->p->env = dbx_strv_push(a->p->env, kv);
    }
    set_origin(a, e, e->line);
}

/* ---- network ------------------------------------------------------------------------------- */

/* [network] mode/allow/resolve and [setup] network/allow/resolve are one grammar each: the
 * same parser, the section picks the field. */
static bool in_setup(const struct prof_entry *e) {
    return strcmp(e->section, "setup") == 0;
}

static void parse_net_mode(struct prof_apply *a, const struct prof_entry *e) {
    static const char *const names[] = {"none", "allowlist", "open"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(names); i++)
        if (strcmp(single(e), names[i]) == 0) {
            *(in_setup(e) ? &a->p->setup_net : &a->p->net_mode) = (enum profile_net)i;
            return set_origin(a, e, e->line);
        }
    bad(a, e, e->line, "must be 'none', 'allowlist' or 'open', not '%s'", single(e));
}

static void parse_allow(struct prof_apply *a, const struct prof_entry *e) {
    struct item *v = NULL;
    ssize_t n = split_items(a, e, &v);
    if (n < 0) return;
    _cleanup_strv_ char **allow = NULL;
    bool ok = true;
    for (ssize_t i = 0; i < n; i++) {
        const char *why = NULL;
        _cleanup_free_ char *norm = prof_allow_normalize(v[i].s, &why);
        if (!norm) {
            bad(a, e, v[i].line, "'%s': %s", v[i].s, why);
            ok = false;
        } else if (!prof_strv_contains(allow, norm)) {
            allow = dbx_strv_push(allow, norm);
        }
    }
    items_free(v, (size_t)n);
    if (!ok) return;
    char ***dst = in_setup(e) ? &a->p->setup_allow : &a->p->allow;
    /* a used secret's hosts (origin "network.allow[HOST]", added after the chain) stay when
     * profile_set replaces the list: they come with the secret, not with this key */
    for (size_t i = 0; !in_setup(e) && *dst && (*dst)[i]; i++) {
        _cleanup_free_ char *k = dbx_xasprintf("network.allow[%s]", (*dst)[i]);
        if (profile_origin_of(a->p, k) && !prof_strv_contains(allow, (*dst)[i]))
            allow = dbx_strv_push(allow, (*dst)[i]);
    }
    dbx_strv_free(*dst);
    *dst = TAKE_PTR(allow);
    set_origin(a, e, e->line);
}

/* One entry per name: two addresses for one name would make the answer depend on order. */
static void parse_resolve(struct prof_apply *a, const struct prof_entry *e) {
    struct item *v = NULL;
    ssize_t n = split_items(a, e, &v);
    if (n < 0) return;
    _cleanup_strv_ char **res = NULL;
    bool ok = true;
    for (ssize_t i = 0; i < n; i++) {
        const char *why = NULL;
        _cleanup_free_ char *norm = prof_resolve_normalize(v[i].s, &why);
        if (!norm) {
            bad(a, e, v[i].line, "'%s': %s", v[i].s, why);
            ok = false;
            continue;
        }
        size_t nl = strcspn(norm, ":") + 1;
        for (size_t j = 0; res && res[j]; j++)
            if (strncmp(res[j], norm, nl) == 0 && strcmp(res[j], norm) != 0) {
                bad(a, e, v[i].line, "'%s': '%.*s' already resolves to '%s'", v[i].s, (int)(nl - 1),
                    norm, res[j] + nl);
                ok = false;
            }
        if (ok && !prof_strv_contains(res, norm)) res = dbx_strv_push(res, norm);
    }
    items_free(v, (size_t)n);
    if (!ok) return;
    char ***dst = in_setup(e) ? &a->p->setup_resolve : &a->p->resolve;
    dbx_strv_free(*dst);
    *dst = TAKE_PTR(res);
    set_origin(a, e, e->line);
}

/* ---- setup --------------------------------------------------------------------------------- */

/* [setup] run: every line is one command as written (commands have spaces and commas, so
 * this list is not split), empty lines skipped.  A file's run replaces the whole list, and
 * each command records its own line, so a failure can name it.  Files cannot hold control
 * bytes or over-long lines (profiles-parse.c); profile_set's value is checked here. */
static void parse_setup_run(struct prof_apply *a, const struct prof_entry *e) {
    _cleanup_strv_ char **run = NULL;
    _cleanup_free_ unsigned *lines = NULL;
    size_t n = 0;
    bool ok = true;
    for (size_t i = 0; i < e->nparts; i++) {
        const char *cmd = e->parts[i].text;
        unsigned line = e->parts[i].line;
        if (!*cmd) continue;
        const unsigned char *c = (const unsigned char *)cmd;
        while (*c && (*c >= 0x20 || *c == '\t') && *c != 0x7f)
            c++;
        if (*c) {
            bad(a, e, line, "command %zu: control character 0x%02x", n + 1, *c);
            ok = false;
        } else if (strlen(cmd) > PROFILE_MAX_LINE) {
            bad(a, e, line, "command %zu: longer than %u bytes", n + 1, PROFILE_MAX_LINE);
            ok = false;
        }
        if (n == PROFILE_MAX_SETUP) {
            bad(a, e, line, "more than %u commands", PROFILE_MAX_SETUP);
            return;
        }
        run = dbx_strv_push(run, cmd);
        lines = dbx_xrealloc(lines, (n + 1) * sizeof(*lines));
        lines[n++] = line;
    }
    if (!ok) return;
    for (size_t i = 1; i <= dbx_strv_len(a->p->setup_run); i++) {
        char k[32];
        snprintf(k, sizeof(k), "setup.run[%zu]", i);
        prof_origin_drop(a->p, k);
    }
    dbx_strv_free(a->p->setup_run);
    a->p->setup_run = TAKE_PTR(run);
    set_origin(a, e, e->line);
    for (size_t i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof(k), "setup.run[%zu]", i + 1);
        _cleanup_free_ char *w = where_at(a, lines[i]);
        prof_origin_set(a->p, k, w);
    }
}

/* ---- secrets ------------------------------------------------------------------------------- */

/* [secrets] use = NAME ...: names only (config.ini says where each value comes from and may
 * go; profiles-secrets.c checks them against it once the chain is applied).  A later file's
 * list replaces the earlier one; each name records its own line. */
static void parse_secrets_use(struct prof_apply *a, const struct prof_entry *e) {
    struct item *v = NULL;
    ssize_t n = split_items(a, e, &v);
    if (n < 0) return;
    _cleanup_strv_ char **use = NULL;
    _cleanup_free_ unsigned *lines = NULL;
    bool ok = true;
    for (ssize_t i = 0; i < n; i++) {
        if (!prof_secret_name_ok(v[i].s)) {
            bad(a, e, v[i].line,
                "'%s' is not a secret name ([A-Za-z_][A-Za-z0-9_]*, at most %u bytes)", v[i].s,
                PROFILE_MAX_SECRET_NAME);
            ok = false;
        } else if (prof_strv_contains(use, v[i].s)) {
            continue;
        } else if (dbx_strv_len(use) >= PROFILE_MAX_SECRETS) {
            bad(a, e, v[i].line, "more than %u secrets", PROFILE_MAX_SECRETS);
            ok = false;
            break;
        } else {
            lines = dbx_xrealloc(lines, (dbx_strv_len(use) + 1) * sizeof(*lines));
            lines[dbx_strv_len(use)] = v[i].line;
            use = dbx_strv_push(use, v[i].s);
        }
    }
    items_free(v, (size_t)n);
    if (!ok) return;
    for (size_t i = 0; a->p->secrets_use && a->p->secrets_use[i]; i++) {
        _cleanup_free_ char *k = dbx_xasprintf("secrets.use[%s]", a->p->secrets_use[i]);
        prof_origin_drop(a->p, k);
    }
    dbx_strv_free(a->p->secrets_use);
    a->p->secrets_use = TAKE_PTR(use);
    set_origin(a, e, e->line);
    for (size_t i = 0; a->p->secrets_use && a->p->secrets_use[i]; i++) {
        _cleanup_free_ char *k = dbx_xasprintf("secrets.use[%s]", a->p->secrets_use[i]);
        _cleanup_free_ char *w = where_at(a, lines[i]);
        prof_origin_set(a->p, k, w);
    }
}

/* ---- ports --------------------------------------------------------------------------------- */

static void ports_remove(struct profile *p, uint16_t host) {
    for (size_t i = 0; i < p->nports; i++)
        if (p->ports[i].host == host) {
            memmove(&p->ports[i], &p->ports[i + 1], (p->nports - i - 1) * sizeof(*p->ports));
            p->nports--;
            return;
        }
}

/* HOST = GUEST, or HOST = none to drop an inherited forward.  A later file replaces a
 * forward by its host port; the same host port twice in one file is a duplicate key. */
static void parse_port(struct prof_apply *a, const struct prof_entry *e) {
    uint16_t host = 0, guest = 0;
    if (!prof_port_parse(e->key, &host)) {
        _cleanup_free_ char *w =
            e->line ? dbx_xasprintf("%s:%u", a->l->name, e->line) : dbx_xstrdup(a->l->name);
        prof_errf(a->errors, "%s: [ports] '%s': the host port must be 1 to 65535", w, e->key);
        return;
    }
    bool drop = strcmp(single(e), "none") == 0;
    if (!drop && !prof_port_parse(single(e), &guest))
        return bad(a, e, e->line, "the guest port must be 1 to 65535 or 'none', not '%s'",
                   single(e));
    struct profile *p = a->p;
    size_t i = 0;
    while (i < p->nports && p->ports[i].host != host)
        i++;
    if (drop) {
        ports_remove(p, host);
    } else if (i < p->nports) {
        p->ports[i].guest = guest;
    } else {
        if (p->nports >= PROFILE_MAX_PORTS)
            return bad(a, e, e->line, "more than %u port forwards", PROFILE_MAX_PORTS);
        p->ports = dbx_xrealloc(p->ports, (p->nports + 1) * sizeof(*p->ports));
        p->ports[p->nports++] = (struct profile_port){.host = host, .guest = guest};
    }
    set_origin(a, e, e->line);
}

/* ---- mounts (profiles-mounts.c) ----------------------------------------------------------- */

static void parse_mount(struct prof_apply *a, const struct prof_entry *e) {
    prof_mount_apply(a->p, a->l, e, a->errors);
}

/* ---- the table ----------------------------------------------------------------------------- */

const struct prof_key prof_keys[] = {
    {"profile", "extends", NULL, 0},
    {"box", "image", parse_image, 0},
    {"box", "cpus", parse_cpus, 0},
    {"box", "memory", parse_memory, 0},
    {"box", "disk", parse_disk, 0},
    {"box", "hostname", parse_hostname, 0},
    {"box", "kernel", parse_kernel, 0},
    {"limits", "memory", parse_mem_limit, 0},
    {"limits", "swap", parse_swap, 0},
    {"limits", "cpu", parse_cpu, 0},
    {"limits", "pids", parse_pids, 0},
    {"limits", "nofile", parse_nofile, 0},
    {"limits", "nproc", parse_nproc, 0},
    {"limits", "io_weight", parse_io_weight, 0},
    {"security", "user", parse_user, 0},
    {"security", "capabilities", parse_caps, PROF_LIST},
    {"security", "capabilities_user", parse_caps, PROF_LIST},
    {"security", "seccomp", parse_seccomp, 0},
    {"security", "no_new_privileges", parse_nnp, 0},
    {"security", "aslr", parse_aslr, 0},
    {"workspace", "protect", parse_protect, PROF_LIST},
    {"workspace", "unprotect", parse_protect, PROF_LIST},
    {"network", "mode", parse_net_mode, 0},
    {"network", "allow", parse_allow, PROF_LIST},
    {"network", "resolve", parse_resolve, PROF_LIST},
    {"setup", "run", parse_setup_run, PROF_LIST},
    {"setup", "network", parse_net_mode, 0},
    {"setup", "allow", parse_allow, PROF_LIST},
    {"setup", "resolve", parse_resolve, PROF_LIST},
    {"setup", "workspace", parse_setup_workspace, 0},
    {"secrets", "use", parse_secrets_use, PROF_LIST},
};
const size_t prof_nkeys = DBX_ARRAY_SIZE(prof_keys);
const char *const prof_sections[] = {"profile", "box",   "limits", "security", "workspace", "env",
                                     "network", "ports", "setup",  "secrets",  "mounts",    NULL};
static const struct prof_key env_key = {"env", "*", parse_env, 0};
static const struct prof_key port_key = {"ports", "*", parse_port, 0};
static const struct prof_key mount_key = {"mounts", "*", parse_mount, 0};

static const struct prof_user_key user_keys[] = {
    {"ceilings", "cpus", 0},
    {"ceilings", "memory", 0},
    {"ceilings", "disk", 0},
    {"ceilings", "image_size", 0},
    {"registries", "insecure", PROF_LIST},
    {"registries", "ca_file", 0},
    {"network", "listen", 0},
    {"network", "ca_files", PROF_LIST},
    {"network", "proxy", 0},
    {"network", "no_proxy", PROF_LIST},
    /* also a profile key: in a profile it is the repo's own list (profiles-parse.c) */
    {"setup", "allow", PROF_LIST},
    /* [box] is a profile section too; kernel_autobuild and idle_stop are the user's alone */
    {"box", "kernel_autobuild", 0},
    {"box", "idle_stop", 0},
};

const struct prof_user_key *prof_user_key_find(const char *section, const char *key) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(user_keys); i++)
        if (strcmp(user_keys[i].section, section) == 0 && strcmp(user_keys[i].key, key) == 0)
            return &user_keys[i];
    return NULL;
}

const char *prof_user_suggest(const char *section, const char *key) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(user_keys); i++)
        if (strcmp(user_keys[i].section, section) == 0 && prof_distance(key, user_keys[i].key) <= 2)
            return user_keys[i].key;
    return NULL;
}

bool prof_user_section(const char *section) {
    return strcmp(section, "ceilings") == 0 || strcmp(section, "registries") == 0;
}

const struct prof_key *prof_key_find(const char *section, const char *key) {
    if (strcmp(section, "env") == 0) return &env_key;
    if (strcmp(section, "ports") == 0) return &port_key;
    if (strcmp(section, "mounts") == 0) return &mount_key;
    for (size_t i = 0; i < prof_nkeys; i++)
        if (strcmp(prof_keys[i].section, section) == 0 && strcmp(prof_keys[i].key, key) == 0)
            return &prof_keys[i];
    return NULL;
}

const char *prof_suggest(const char *section, const char *key) {
    const char *best = NULL;
    unsigned bd = 3;
    if (!key) {
        for (size_t i = 0; prof_sections[i]; i++) {
            unsigned d = prof_distance(section, prof_sections[i]);
            if (d < bd) bd = d, best = prof_sections[i];
        }
        return best;
    }
    for (size_t i = 0; i < prof_nkeys; i++) {
        if (strcmp(prof_keys[i].section, section) != 0) continue;
        unsigned d = prof_distance(key, prof_keys[i].key);
        if (d < bd) bd = d, best = prof_keys[i].key;
    }
    return best;
}

/* ---- origins ------------------------------------------------------------------------------- */

void prof_origins_set(struct profile_origin **v, size_t *n, const char *key, const char *where) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i].key, key) == 0) {
            free((*v)[i].where);
            (*v)[i].where = dbx_xstrdup(where);
            return;
        }
    *v = dbx_xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = (struct profile_origin){.key = dbx_xstrdup(key), .where = dbx_xstrdup(where)};
}

void prof_origin_set(struct profile *p, const char *key, const char *where) {
    prof_origins_set(&p->origin, &p->norigin, key, where);
}

void prof_origin_drop(struct profile *p, const char *key) {
    for (size_t i = 0; i < p->norigin; i++)
        if (strcmp(p->origin[i].key, key) == 0) {
            free(p->origin[i].key);
            free(p->origin[i].where);
            memmove(&p->origin[i], &p->origin[i + 1], (p->norigin - i - 1) * sizeof(*p->origin));
            p->norigin--;
            return;
        }
}

const char *profile_origin_of(const struct profile *p, const char *key) {
    for (size_t i = 0; i < p->norigin; i++)
        if (strcmp(p->origin[i].key, key) == 0) return p->origin[i].where;
    return NULL;
}

/* ---- defaults, applying, cross-key checks ------------------------------------------------- */

/* Each makes the host run code when it changes: git's hooks and config (core.fsmonitor,
 * core.hooksPath...), submodule URLs, the profile itself, and the configuration that agents,
 * editors and shells on the host load and run without asking: Claude Code's .claude
 * (settings.json hooks), Codex's .codex, Gemini CLI's .gemini, Cursor's .cursor, VS Code's
 * .vscode (tasks.json, settings that name programs), JetBrains' .idea (run configurations),
 * .mcp.json (MCP servers are commands the host agent starts), direnv's .envrc, husky's git
 * hooks and pre-commit's hook list; Dev Containers' .devcontainer and .devcontainer.json
 * (initializeCommand runs on the host when the editor opens the folder in a container), Zed's
 * .zed and Helix's .helix (language servers are commands), the MCP servers and hooks of
 * Continue (.continue), Roo Code (.roo), Kiro (.kiro), Amazon Q (.amazonq) and opencode
 * (opencode.json, .opencode), and aider's .aider.conf.yml (its lint and test commands). */
const char *const profile_default_protect[] = {".git/hooks",
                                               ".git/config",
                                               ".gitmodules",
                                               PROFILE_FILE,
                                               ".claude",
                                               ".codex",
                                               ".gemini",
                                               ".cursor",
                                               ".vscode",
                                               ".idea",
                                               ".mcp.json",
                                               ".envrc",
                                               ".husky",
                                               ".pre-commit-config.yaml",
                                               ".devcontainer",
                                               ".devcontainer.json",
                                               ".zed",
                                               ".helix",
                                               ".continue",
                                               ".roo",
                                               ".kiro",
                                               ".amazonq",
                                               "opencode.json",
                                               ".opencode",
                                               ".aider.conf.yml",
                                               NULL};

void prof_init_default(struct profile *p) {
    *p = (struct profile){
        .image = dbx_xstrdup("default"),
        .cpus = 1,
        .memory = 512ull << 20,
        .hostname = dbx_xstrdup("devbox"),
        .swap_limit = UINT64_MAX,
        .pids = 4096,
        .nofile = 65536,
        .user = dbx_xstrdup(""),
        .seccomp = PROFILE_SECCOMP_DEFAULT,
        .no_new_privs = true,
        .net_mode = PROFILE_NET_NONE,
        .setup_net = PROFILE_NET_ALLOWLIST,
    };
    for (size_t i = 0; i < prof_nkeys; i++) {
        if (strcmp(prof_keys[i].section, "profile") == 0 ||
            strcmp(prof_keys[i].section, "workspace") == 0)
            continue;
        _cleanup_free_ char *k = dbx_xasprintf("%s.%s", prof_keys[i].section, prof_keys[i].key);
        prof_origin_set(p, k, "built-in default");
    }
    for (size_t i = 0; profile_default_protect[i]; i++) {
        p->protect = dbx_strv_push(p->protect, profile_default_protect[i]);
        _cleanup_free_ char *k = dbx_xasprintf("workspace.protect[%s]", profile_default_protect[i]);
        prof_origin_set(p, k, "built-in default");
    }
}

void prof_apply_layer(struct profile *p, const struct profile_layer *l, char ***errors) {
    struct prof_apply a = {.p = p, .l = l, .errors = errors};
    for (size_t i = 0; i < l->n; i++) {
        const struct prof_key *k = prof_key_find(l->v[i].section, l->v[i].key);
        if (k && k->parse) k->parse(&a, &l->v[i]);
    }
}

char *prof_size_str(uint64_t v) {
    static const char units[] = "KMGT";
    if (v == 0) return dbx_xstrdup("0");
    int u = -1;
    while (u < 3 && v % 1024 == 0)
        v /= 1024, u++;
    if (u < 0) return dbx_xasprintf("%llu", (unsigned long long)v);
    return dbx_xasprintf("%llu%c", (unsigned long long)v, units[u]);
}

char *prof_milli_str(uint32_t m) {
    if (m % 1000 == 0) return dbx_xasprintf("%u", m / 1000);
    char *s = m % 100 == 0  ? dbx_xasprintf("%u.%01u", m / 1000, m % 1000 / 100)
              : m % 10 == 0 ? dbx_xasprintf("%u.%02u", m / 1000, m % 1000 / 10)
                            : dbx_xasprintf("%u.%03u", m / 1000, m % 1000);
    return s;
}

void prof_check(const struct profile *p, char ***errors) {
    prof_secrets_check(p, errors);
    if (p->mem_limit && p->mem_limit >= p->memory) {
        _cleanup_free_ char *l = prof_size_str(p->mem_limit), *m = prof_size_str(p->memory);
        prof_errf(errors,
                  "%s: [limits] memory: %s must be below the VM's memory %s ([box] memory, %s)",
                  profile_origin_of(p, "limits.memory"), l, m, profile_origin_of(p, "box.memory"));
    }
    if (p->cpu_milli > p->cpus * 1000u) {
        _cleanup_free_ char *c = prof_milli_str(p->cpu_milli);
        prof_errf(errors, "%s: [limits] cpu: %s is more than the VM's %u cpus ([box] cpus, %s)",
                  profile_origin_of(p, "limits.cpu"), c, p->cpus, profile_origin_of(p, "box.cpus"));
    }
}

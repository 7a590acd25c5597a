/* profiles/profiles-trust.c: what a profile widens, and the host-side record of what the
 * user trusted.  A repo's devbox.ini may only narrow (R3: elevating options never come from
 * project-local files without host-side approval tied to the profile's hash); the baseline
 * is the built-in `default` with the user's own [defaults] applied, plus the user's
 * ceilings for cpus, memory and disk. */
#define _GNU_SOURCE
#include "profiles-internal.h"

#include <sys/file.h>
#include <sys/stat.h>

#include "../common/sha256.h"

/* ---- widenings ----------------------------------------------------------------------------- */

static void ceilings(const struct profile_user *u, const struct profile *base, unsigned *cpus,
                     uint64_t *mem, uint64_t *disk) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    *cpus = u && u->max_cpus ? u->max_cpus : n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
    *mem = u && u->max_memory ? u->max_memory : 2ull << 30;
    *disk = u && u->max_disk ? u->max_disk : 16ull << 30;
    /* the user's own [defaults] above their own ceilings are the user's choice */
    if (base->cpus > *cpus) *cpus = base->cpus;
    if (base->memory > *mem) *mem = base->memory;
    if (base->disk > *disk) *disk = base->disk;
}

static void push(char ***v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void push(char ***v, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    *v = dbx_strv_push(*v, m);
}

enum lim_kind { LIM_SIZE, LIM_COUNT, LIM_MILLI };

static char *lim_str(uint64_t v, enum lim_kind k) {
    if (v == UINT64_MAX) return dbx_xstrdup("max");
    if (k == LIM_SIZE) return prof_size_str(v);
    if (k == LIM_MILLI) return prof_milli_str((uint32_t)v);
    return dbx_xasprintf("%llu", (unsigned long long)v);
}

/* A limit widens when the baseline has one and p has none (0) or a larger one. */
static void limit(char ***w, const char *name, uint64_t pv, uint64_t bv, enum lim_kind k) {
    if (bv == 0 || (pv != 0 && pv <= bv)) return;
    _cleanup_free_ char *b = lim_str(bv, k), *v = lim_str(pv, k);
    if (pv == 0)
        push(w, "limits.%s removed (default %s)", name, b);
    else
        push(w, "limits.%s %s above the default %s", name, v, b);
}

static bool covered(char *const *protect, const char *path) {
    for (size_t i = 0; protect && protect[i]; i++) {
        size_t n = strlen(protect[i]);
        if (strncmp(path, protect[i], n) == 0 && (path[n] == '\0' || path[n] == '/')) return true;
    }
    return false;
}

static bool user_is_root(const char *u) {
    if (strcmp(u, "root") == 0) return true;
    size_t n = strcspn(u, ":");
    return n > 0 && strspn(u, "0") == n; /* uid 0 in any spelling ("0", "00:1000") */
}

static bool user_gid_root(const char *u) {
    const char *g = strchr(u, ':');
    return g && g[1] && strspn(g + 1, "0") == strlen(g + 1);
}

static const char *const seccomp_names[] = {"default", "strict", "unconfined"};
static const int seccomp_rank[] = {1, 0, 2}; /* strict < default < unconfined */
static const char *const net_names[] = {"none", "allowlist", "open"};

/* [setup] runs the repo's commands as root in the box, with a network of its own.  A command
 * the baseline (the user's [defaults] setup.run) also runs is the user's own; each other one
 * is listed whole, so `devbox profile check` and `devbox trust` show exactly what will run.
 * Hosts the user pre-approved for setup (config.ini [setup] allow; [defaults] cannot name
 * setup.allow, so the baseline has none) are not widenings; the
 * comparison is by the normalized spelling (both lists went through the same normalizer), so
 * an entry is pre-approved only when written the same, not when another pattern covers it. */
static void setup_widenings(char ***w, const struct profile *p, const struct profile *base,
                            const struct profile_user *user) {
    for (size_t i = 0; p->setup_run && p->setup_run[i]; i++)
        if (!prof_strv_contains(base->setup_run, p->setup_run[i]))
            push(w, "setup runs '%s' as root", p->setup_run[i]);
    /* ranked as [network] is: none < allowlist < open (a user's [defaults] may narrow) */
    if (p->setup_net > base->setup_net) push(w, "setup network mode '%s'", net_names[p->setup_net]);
    if (p->setup_net == PROFILE_NET_ALLOWLIST)
        for (size_t i = 0; p->setup_allow && p->setup_allow[i]; i++)
            if (!(user && prof_strv_contains(user->setup_allow, p->setup_allow[i])))
                push(w, "setup network allow '%s'", p->setup_allow[i]);
    if (p->setup_net != PROFILE_NET_NONE)
        for (size_t i = 0; p->setup_resolve && p->setup_resolve[i]; i++)
            if (!prof_strv_contains(base->setup_resolve, p->setup_resolve[i]))
                push(w, "setup network resolve '%s'", p->setup_resolve[i]);
}

/* A host in allow only because a used secret goes there (prof_secrets_resolve): the secret
 * is the widening, named with its hosts. */
static bool secret_host(const struct profile *p, const char *host) {
    _cleanup_free_ char *k = dbx_xasprintf("network.allow[%s]", host);
    return profile_origin_of(p, k) != NULL;
}

/* Every used secret: the user's [defaults] cannot use one, so the baseline never does. */
static void secret_widenings(char ***w, const struct profile *p) {
    for (size_t i = 0; i < p->nsecrets; i++) {
        _cleanup_free_ char *hosts = prof_strv_join(p->secrets[i].hosts);
        push(w, "secret '%s' sent to %s", p->secrets[i].name, hosts);
    }
}

/* [mounts]: a read-only folder inside the repo shows the box nothing the workspace does not;
 * any folder outside it, and anything writable, is the user's to allow.  ([defaults] cannot
 * share folders, so the baseline has none.) */
static void mount_widenings(char ***w, const struct profile *p) {
    for (size_t i = 0; i < p->nmounts; i++) {
        const struct profile_mount *m = &p->mounts[i];
        if (m->in_repo && !m->rw) continue;
        push(w, "mount '%s'%s at '%s'%s", m->host, m->in_repo ? "" : " (outside the repo)",
             m->guest, m->rw ? " read-write" : "");
    }
}

char **profile_widenings(const struct profile *p, const struct profile_user *user) {
    struct profile base;
    prof_init_default(&base);
    _cleanup_strv_ char **ignored = NULL;
    if (user && user->defaults) prof_apply_layer(&base, user->defaults, &ignored);
    char **w = dbx_xcalloc(1, sizeof(char *));
    unsigned max_cpus;
    uint64_t max_mem, max_disk;
    ceilings(user, &base, &max_cpus, &max_mem, &max_disk);
    if (p->cpus > max_cpus) push(&w, "cpus %u over the ceiling %u", p->cpus, max_cpus);
    if (p->memory > max_mem) {
        _cleanup_free_ char *a = prof_size_str(p->memory), *b = prof_size_str(max_mem);
        push(&w, "memory %s over the ceiling %s", a, b);
    }
    if (p->disk > max_disk) {
        _cleanup_free_ char *a = prof_size_str(p->disk), *b = prof_size_str(max_disk);
        push(&w, "disk %s over the ceiling %s", a, b);
    }
    limit(&w, "memory", p->mem_limit, base.mem_limit, LIM_SIZE);
    if (p->swap_limit > base.swap_limit) { /* swap 0 is "no swap", not "no limit" */
        _cleanup_free_ char *v = lim_str(p->swap_limit, LIM_SIZE);
        _cleanup_free_ char *b = lim_str(base.swap_limit, LIM_SIZE);
        push(&w, "limits.swap %s above the default %s", v, b);
    }
    limit(&w, "cpu", p->cpu_milli, base.cpu_milli, LIM_MILLI);
    limit(&w, "pids", p->pids, base.pids, LIM_COUNT);
    limit(&w, "nofile", p->nofile, base.nofile, LIM_COUNT);
    limit(&w, "nproc", p->nproc, base.nproc, LIM_COUNT);
    if (strcmp(p->user, base.user) != 0) {
        if (user_is_root(p->user))
            push(&w, "user '%s' (root)", p->user);
        else if (user_gid_root(p->user))
            push(&w, "user '%s' (group 0)", p->user);
    }
    for (int c = 0; c < 64; c++)
        if ((p->caps & ~base.caps) & (1ull << c)) push(&w, "capability '%s'", profile_cap_name(c));
    /* a capability for the ordinary box user is a widening of its own, even when root has it */
    for (int c = 0; c < 64; c++)
        if ((p->caps_user & ~base.caps_user) & (1ull << c))
            push(&w, "capability '%s' for the box user", profile_cap_name(c));
    if (seccomp_rank[p->seccomp] > seccomp_rank[base.seccomp])
        push(&w, "seccomp '%s'", seccomp_names[p->seccomp]);
    if (base.no_new_privs && !p->no_new_privs) push(&w, "no_new_privileges false");
    if (base.aslr_on && !p->aslr_on) push(&w, "aslr auto");
    for (size_t i = 0; base.protect && base.protect[i]; i++)
        if (!covered(p->protect, base.protect[i])) push(&w, "unprotects '%s'", base.protect[i]);
    if (p->net_mode > base.net_mode) push(&w, "network mode '%s'", net_names[p->net_mode]);
    if (p->net_mode == PROFILE_NET_ALLOWLIST)
        for (size_t i = 0; p->allow && p->allow[i]; i++)
            if ((base.net_mode != PROFILE_NET_ALLOWLIST ||
                 !prof_strv_contains(base.allow, p->allow[i])) &&
                !secret_host(p, p->allow[i]))
                push(&w, "network allow '%s'", p->allow[i]);
    secret_widenings(&w, p);
    /* A name override can point an allowed name anywhere, the host's loopback included.
     * The user's own overrides ([defaults]) point where the user chose: not widenings. */
    if (p->net_mode != PROFILE_NET_NONE)
        for (size_t i = 0; p->resolve && p->resolve[i]; i++)
            if (!prof_strv_contains(base.resolve, p->resolve[i]))
                push(&w, "network resolve '%s'", p->resolve[i]);
    setup_widenings(&w, p, &base, user);
    mount_widenings(&w, p);
    profile_clear(&base);
    return w;
}

/* ---- trust store --------------------------------------------------------------------------- */

static bool hash_ok(const char *h) {
    return strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64;
}

static void root_name(const char *root, char out[65]) {
    uint8_t d[32];
    dbx_sha256(root, strlen(root), d);
    for (size_t i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The trusted hashes in the record (valid lines only), oldest first. */
static int read_record(int dfd, const char *name, char ***ret, dbx_error **err) {
    _cleanup_free_ char *buf = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(dfd, name, 64u * 1024u, &buf, NULL, &e) < 0) {
        if (e->code == ENOENT) return *ret = NULL, 0;
        *err = TAKE_PTR(e);
        return -EIO;
    }
    char **v = NULL;
    for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (hash_ok(line) && !prof_strv_contains(v, line)) v = dbx_strv_push(v, line);
    }
    *ret = v;
    return 0;
}

static int check_args(const char *root, const char *hash, dbx_error **err) {
    if (!root || root[0] != '/')
        return dbx_error_setx(err, EINVAL, "trust: repo root '%s' is not an absolute path",
                              root ? root : "");
    if (!hash_ok(hash))
        return dbx_error_setx(err, EINVAL, "trust: '%s' is not a sha256 hex digest", hash);
    return 0;
}

int profile_trust_check(const char *trust_dir, const char *root, const char *hash,
                        bool *ret_trusted, dbx_error **err) {
    if (hash && !*hash) return *ret_trusted = false, 0;
    if (check_args(root, hash, err) < 0) return -EINVAL;
    _cleanup_close_ int dfd = open(trust_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT) return *ret_trusted = false, 0;
        return dbx_error_set(err, errno, "open '%s'", trust_dir);
    }
    char name[65];
    root_name(root, name);
    _cleanup_strv_ char **v = NULL;
    if (read_record(dfd, name, &v, err) < 0) return dbx_error_wrap(err, "trust record");
    *ret_trusted = prof_strv_contains(v, hash);
    return 0;
}

int profile_trust_add(const char *trust_dir, const char *root, const char *hash, dbx_error **err) {
    if (check_args(root, hash, err) < 0) return -EINVAL;
    if (dbx_mkdir_private(trust_dir, err) < 0) return -EIO;
    _cleanup_close_ int dfd = open(trust_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return dbx_error_set(err, errno, "open '%s'", trust_dir);
    /* two `devbox trust` at once must not lose a record */
    if (flock(dfd, LOCK_EX) < 0) return dbx_error_set(err, errno, "lock '%s'", trust_dir);
    char name[65];
    root_name(root, name);
    _cleanup_strv_ char **v = NULL;
    if (read_record(dfd, name, &v, err) < 0) return dbx_error_wrap(err, "trust record");
    prof_strv_remove(v, hash);
    v = dbx_strv_push(v, hash);
    size_t n = dbx_strv_len(v), skip = n > PROFILE_TRUST_KEEP ? n - PROFILE_TRUST_KEEP : 0;
    _cleanup_free_ char *shown = dbx_sanitize_printable(dbx_xstrdup(root));
    for (char *s = shown; *s; s++)
        if (*s == '\n') *s = '?';
    size_t len = strlen(shown) + 64 + (n - skip) * 65;
    _cleanup_free_ char *out = dbx_xmalloc(len + 1);
    size_t o = (size_t)snprintf(out, len + 1, "# devbox trusted profiles for %s\n", shown);
    for (size_t i = skip; i < n && o < len; i++)
        o += (size_t)snprintf(out + o, len + 1 - o, "%s\n", v[i]);
    return dbx_write_file_atomic(dfd, name, out, o, 0600, err);
}

/* profiles/profiles-load.c: the chain.  Built-in `default` (compiled in), the user's
 * [defaults], then the repo's devbox.ini after everything it extends.  Repo files are opened
 * one path component at a time from the repo root fd with O_NOFOLLOW (a symlink anywhere is
 * refused, `..` never reaches the kernel), so no repo content can make devbox read a file
 * outside the repo (CVE-2018-15664 is the path-string version of this mistake).  A repo
 * without devbox.ini may have a devcontainer.json instead, read the same way and parsed from
 * its devbox.ini translation (profiles-devcontainer.c). */
#define _GNU_SOURCE
#include "profiles-internal.h"

#include <ctype.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

#include "../common/sha256.h"

/* ---- opening files ------------------------------------------------------------------------- */

static bool builtin_name_ok(const char *s) {
    size_t n = strlen(s);
    return n >= 1 && n <= PROF_MAX_NAME && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* Read an opened profile file: regular, at most PROFILE_MAX_BYTES.  *why on failure. */
static int read_opened(int fd, char **ret_buf, size_t *ret_len, char **why) {
    struct stat st;
    if (fstat(fd, &st) < 0) return *why = dbx_xasprintf("stat: %s", strerror(errno)), -1;
    if (!S_ISREG(st.st_mode)) return *why = dbx_xstrdup("not a regular file"), -1;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_all(fd, PROFILE_MAX_BYTES, ret_buf, ret_len, &e) < 0)
        return *why = e->code == E2BIG ? dbx_xasprintf("larger than %u bytes", PROFILE_MAX_BYTES)
                                       : dbx_xstrdup(e->msg),
               -1;
    return 0;
}

/* Open repo-relative `rel` (normalized) beneath root_fd without following any symlink.
 * Returns the fd, or -errno with *why saying what went wrong (without naming `rel`). */
static int open_beneath(int root_fd, const char *rel, char **why) {
    _cleanup_free_ char *copy = dbx_xstrdup(rel);
    _cleanup_close_ int dfd = -EBADF;
    int cur = root_fd;
    char *comp = copy;
    for (char *slash; (slash = strchr(comp, '/')); comp = slash + 1) {
        *slash = '\0';
        int fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            struct stat st;
            if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                *why = dbx_xasprintf("'%s' is a symlink; devbox refuses symlinks in profile paths",
                                     copy);
            else
                *why = dbx_xasprintf("'%s': %s", copy, strerror(e));
            return -e;
        }
        dbx_closep(&dfd);
        cur = dfd = fd;
        *slash = '/';
    }
    int fd = openat(cur, comp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        *why = e == ELOOP ? dbx_xstrdup("is a symlink; devbox refuses symlinked profiles")
                          : dbx_xstrdup(strerror(e));
        return -e;
    }
    return fd;
}

char *profile_builtin_dir(void) {
    const char *e = getenv("DEVBOX_PROFILES_DIR");
    if (e && *e) return dbx_xstrdup(e);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        /* the source tree (build/devbox -> profiles/) */
        _cleanup_free_ char *d = dbx_xasprintf("%s/../profiles", dirname(self));
        struct stat st;
        char *real = stat(d, &st) == 0 && S_ISDIR(st.st_mode) ? realpath(d, NULL) : NULL;
        if (real) return real;
    }
    return dbx_xstrdup("/usr/local/share/devbox/profiles");
}

/* ---- the chain ----------------------------------------------------------------------------- */

struct chain {
    struct profile_layer *l[PROFILE_MAX_DEPTH + 1]; /* discovery order: devbox.ini first */
    char *buf[PROFILE_MAX_DEPTH + 1];
    size_t len[PROFILE_MAX_DEPTH + 1];
    char *id[PROFILE_MAX_DEPTH + 1]; /* "repo:PATH" or "builtin:NAME", for cycles */
    size_t n;
    /* a devcontainer.json read in devbox.ini's place: l[0] was parsed from dc_ini, buf[0]
     * holds the JSON (what the hash covers); dc_keys[N - 1] is the JSON key of line N */
    char *dc_ini;
    char **dc_warnings, **dc_keys;
};

static void chain_clear(struct chain *c) {
    for (size_t i = 0; i < c->n; i++) {
        prof_layer_free(c->l[i]);
        free(c->buf[i]);
        free(c->id[i]);
    }
    c->n = 0;
    free(c->dc_ini);
    dbx_strv_free(c->dc_warnings);
    dbx_strv_free(c->dc_keys);
    c->dc_ini = NULL;
    c->dc_warnings = c->dc_keys = NULL;
}

/* Add a file (buf: its bytes, which the hash covers) parsed from `text` (NULL: buf itself). */
static void chain_push(struct chain *c, enum prof_kind kind, const char *name, const char *where,
                       char *id, char *buf, size_t len, const char *text, char ***errors) {
    struct profile_layer *l = dbx_xcalloc(1, sizeof(*l));
    l->kind = kind;
    l->name = dbx_xstrdup(name);
    l->where = dbx_xstrdup(where);
    prof_parse(text ? text : buf, text ? strlen(text) : len, l, errors);
    c->l[c->n] = l;
    c->buf[c->n] = buf;
    c->len[c->n] = len;
    c->id[c->n] = id;
    c->n++;
}

/* "a -> b -> c" for a cycle message. */
static char *chain_path(const struct chain *c, const char *last) {
    _cleanup_free_ char *s = dbx_xstrdup(c->l[0]->name);
    for (size_t i = 1; i < c->n; i++) {
        char *t = dbx_xasprintf("%s -> %s", s, c->l[i]->name);
        free(s);
        s = t;
    }
    char *t = dbx_xasprintf("%s -> %s", s, last);
    return t;
}

/* Follow the extends of the last layer; false when the chain ends (or broke, reported). */
static bool follow(struct chain *c, int root_fd, const char *bdir, char ***errors) {
    const struct profile_layer *from = c->l[c->n - 1];
    if (!from->extends) return false;
    const char *target = from->extends;
    char *why = NULL;
    _cleanup_free_ char *id = NULL, *name = NULL, *where = NULL, *buf = NULL;
    size_t len = 0;
    _cleanup_close_ int fd = -EBADF;
    enum prof_kind kind = PROF_KIND_REPO;
    if (builtin_name_ok(target)) {
        kind = PROF_KIND_BUILTIN;
        id = dbx_xasprintf("builtin:%s", target);
        name = dbx_xasprintf("%s/%s.ini", bdir, target);
        where = dbx_xasprintf("built-in %s.ini", target);
    } else if (from->kind == PROF_KIND_BUILTIN) {
        why = dbx_xasprintf("'%s': a built-in profile can only extend built-in profiles", target);
    } else {
        const char *w = NULL;
        kind = PROF_KIND_REPO;
        name = prof_path_normalize(target, &w);
        if (!name && strstr(target, ".."))
            why = dbx_xasprintf("'%s' is outside the repo (%s)", target, w);
        else if (!name)
            why = dbx_xasprintf("'%s': %s", target, w);
        else
            id = dbx_xasprintf("repo:%s", name), where = dbx_xstrdup(name);
    }
    for (size_t i = 0; !why && i < c->n; i++)
        if (strcmp(c->id[i], id) == 0) {
            _cleanup_free_ char *path = chain_path(c, name);
            why = dbx_xasprintf("'%s' makes a cycle: %s", target, path);
        }
    if (!why && c->n > PROFILE_MAX_DEPTH)
        why = dbx_xasprintf("'%s': more than %u levels of extends", target, PROFILE_MAX_DEPTH);
    if (!why) {
        if (kind == PROF_KIND_BUILTIN) {
            fd = open(name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
            if (fd < 0 && errno == ENOENT)
                why = dbx_xasprintf("no built-in profile '%s' in '%s'", target, bdir);
            else if (fd < 0)
                why = dbx_xasprintf("'%s': %s", name, strerror(errno));
        } else {
            char *w = NULL;
            fd = open_beneath(root_fd, name, &w);
            if (fd < 0) why = dbx_xasprintf("'%s': %s", name, w);
            free(w);
        }
    }
    if (!why) read_opened(fd, &buf, &len, &why);
    if (why) {
        prof_errf(errors, "%s:%u: extends: %s", from->name, from->extends_line, why);
        free(why);
        return false;
    }
    chain_push(c, kind, name, where, TAKE_PTR(id), TAKE_PTR(buf), len, NULL, errors);
    return true;
}

/* sha256 over every repo file of the chain in apply order: "name\0length\0bytes" each. */
static void chain_hash(const struct chain *c, char hex[65]) {
    struct dbx_sha256 h;
    dbx_sha256_init(&h);
    bool any = false;
    for (size_t i = c->n; i-- > 0;) {
        if (c->l[i]->kind != PROF_KIND_REPO) continue;
        char lenbuf[32];
        int n = snprintf(lenbuf, sizeof(lenbuf), "%zu", c->len[i]);
        dbx_sha256_update(&h, c->l[i]->name, strlen(c->l[i]->name) + 1);
        dbx_sha256_update(&h, lenbuf, (size_t)n + 1);
        dbx_sha256_update(&h, c->buf[i], c->len[i]);
        any = true;
    }
    uint8_t out[32];
    dbx_sha256_final(&h, out);
    hex[0] = '\0';
    if (any)
        for (size_t i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", out[i]);
}

static void chain_apply(const struct chain *c, const char *root, const struct profile_user *user,
                        struct profile *p, char ***errors) {
    prof_init_default(p);
    if (user && user->defaults) prof_apply_layer(p, user->defaults, errors);
    for (size_t i = c->n; i-- > 0;) {
        prof_apply_layer(p, c->l[i], errors);
        if (c->l[i]->kind == PROF_KIND_REPO) p->files = dbx_strv_push(p->files, c->l[i]->name);
    }
    /* Every repo file the chain read is protected like devbox.ini itself: from inside the
     * box, editing what devbox.ini extends would be editing devbox.ini. */
    for (size_t i = 1; i < c->n; i++) {
        if (c->l[i]->kind != PROF_KIND_REPO) continue;
        if (!prof_strv_contains(p->protect, c->l[i]->name))
            p->protect = dbx_strv_push(p->protect, c->l[i]->name);
        _cleanup_free_ char *k = dbx_xasprintf("workspace.protect[%s]", c->l[i]->name);
        _cleanup_free_ char *w =
            dbx_xasprintf("%s:%u (extends)", c->l[i - 1]->where, c->l[i - 1]->extends_line);
        prof_origin_set(p, k, w);
    }
    prof_secrets_resolve(p, user, errors);
    prof_mounts_resolve(p, root, user, errors); /* after protect is final */
    prof_check(p, errors);
    chain_hash(c, p->hash);
}

/* ---- devcontainer.json --------------------------------------------------------------------- */

/* No devbox.ini: the first PROFILE_DEVCONTAINER_FILES that exists, translated to devbox.ini
 * text and parsed as the repo's profile (l[0], with no extends: the translation writes none). */
static void load_devcontainer(struct chain *c, int root_fd, char ***errors) {
    static const char *const names[] = PROFILE_DEVCONTAINER_FILES;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(names); i++) {
        _cleanup_free_ char *why = NULL, *buf = NULL;
        _cleanup_close_ int fd = open_beneath(root_fd, names[i], &why);
        if (fd == -ENOENT) continue;
        size_t len = 0;
        if (fd < 0 || read_opened(fd, &buf, &len, &why) < 0)
            return prof_errf(errors, "%s: %s", names[i], why);
        _cleanup_error_ dbx_error *e = NULL;
        char *ini = NULL;
        if (prof_devcontainer_translate(buf, len, names[i], &ini, &c->dc_warnings, &c->dc_keys,
                                        &e) < 0) {
            /* one problem per line, already "file:line: ..." or "file: key: ..." */
            char *save = NULL;
            for (char *l = strtok_r(e->msg, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                prof_errf(errors, "%s", l);
            return;
        }
        c->dc_ini = ini;
        chain_push(c, PROF_KIND_REPO, names[i], names[i], dbx_xasprintf("repo:%s", names[i]),
                   TAKE_PTR(buf), len, ini, errors);
        return;
    }
}

/* A message or origin about line N of the translated text, "NAME:N...", as
 * "NAME (json key)..." (or "NAME (translated line N)..."); NULL when it is not one. */
static char *dc_rewrite(const struct chain *c, const char *s) {
    const char *name = c->l[0]->name;
    size_t n = strlen(name);
    if (strncmp(s, name, n) != 0 || s[n] != ':' || !isdigit((unsigned char)s[n + 1])) return NULL;
    char *end = NULL;
    unsigned long line = strtoul(s + n + 1, &end, 10);
    if (line >= 1 && line <= dbx_strv_len(c->dc_keys) && c->dc_keys[line - 1][0])
        return dbx_xasprintf("%s (%s)%s", name, c->dc_keys[line - 1], end);
    return dbx_xasprintf("%s (translated line %lu)%s", name, line, end);
}

/* After applying a chain read from a devcontainer.json: the JSON is protected like
 * devbox.ini, origins and problems name JSON keys instead of lines of text the user never
 * wrote, and the translation and its warnings move to the profile. */
static void dc_finish(struct chain *c, struct profile *p, char **errors) {
    if (!c->dc_ini || !c->n) return;
    const char *name = c->l[0]->name;
    if (!prof_strv_contains(p->protect, name)) p->protect = dbx_strv_push(p->protect, name);
    _cleanup_free_ char *k = dbx_xasprintf("workspace.protect[%s]", name);
    _cleanup_free_ char *w = dbx_xasprintf("%s (the repo's profile)", name);
    prof_origin_set(p, k, w);
    for (size_t i = 0; i < p->norigin; i++) {
        char *r = dc_rewrite(c, p->origin[i].where);
        if (r) free(p->origin[i].where), p->origin[i].where = r;
    }
    for (size_t i = 0; errors && errors[i]; i++) {
        char *r = dc_rewrite(c, errors[i]);
        if (r) free(errors[i]), errors[i] = r;
    }
    p->ini_equivalent = TAKE_PTR(c->dc_ini);
    p->warnings = TAKE_PTR(c->dc_warnings);
}

/* Apply a loaded chain to a fresh profile and consume the chain: *ret on success, or every
 * problem collected so far (loading and applying) as one error. */
static int chain_finish(struct chain *c, const char *root, const struct profile_user *user,
                        char ***errors, struct profile *ret, dbx_error **err) {
    struct profile p = {0};
    chain_apply(c, root, user, &p, errors);
    dc_finish(c, &p, *errors);
    chain_clear(c);
    if (*errors) {
        profile_clear(&p);
        return prof_errors_raise(*errors, err);
    }
    *ret = p;
    return 0;
}

int profile_load(int root_fd, const char *root, const struct profile_user *user,
                 const char *builtin_dir, struct profile *ret, dbx_error **err) {
    _cleanup_strv_ char **errors = NULL;
    _cleanup_free_ char *bdir = builtin_dir ? dbx_xstrdup(builtin_dir) : profile_builtin_dir();
    struct chain c = {0};
    char *why = NULL;
    _cleanup_close_ int fd = open_beneath(root_fd, PROFILE_FILE, &why);
    if (fd < 0 && fd != -ENOENT) {
        prof_errf(&errors, "%s: %s", PROFILE_FILE, why);
    } else if (fd >= 0) {
        char *buf = NULL;
        size_t len = 0;
        if (read_opened(fd, &buf, &len, &why) < 0)
            prof_errf(&errors, "%s: %s", PROFILE_FILE, why);
        else
            chain_push(&c, PROF_KIND_REPO, PROFILE_FILE, PROFILE_FILE,
                       dbx_xasprintf("repo:%s", PROFILE_FILE), buf, len, NULL, &errors);
        while (c.n && follow(&c, root_fd, bdir, &errors)) {
        }
    } else {
        load_devcontainer(&c, root_fd, &errors);
    }
    free(why);
    return chain_finish(&c, root, user, &errors, ret, err);
}

void profile_clear(struct profile *p) {
    if (!p) return;
    free(p->image);
    free(p->hostname);
    free(p->user);
    dbx_strv_free(p->protect);
    dbx_strv_free(p->env);
    dbx_strv_free(p->allow);
    dbx_strv_free(p->resolve);
    free(p->ports);
    prof_mounts_free(p->mounts, p->nmounts);
    dbx_strv_free(p->setup_run);
    dbx_strv_free(p->setup_allow);
    dbx_strv_free(p->setup_resolve);
    dbx_strv_free(p->secrets_use);
    prof_secrets_free(p->secrets, p->nsecrets);
    dbx_strv_free(p->files);
    dbx_strv_free(p->warnings);
    free(p->ini_equivalent);
    for (size_t i = 0; i < p->norigin; i++) {
        free(p->origin[i].key);
        free(p->origin[i].where);
    }
    free(p->origin);
    *p = (struct profile){0};
}

int profile_init_default(struct profile *ret) {
    prof_init_default(ret);
    return 0;
}

int profile_load_builtin(const char *name, const struct profile_user *user, const char *builtin_dir,
                         struct profile *ret, dbx_error **err) {
    if (!builtin_name_ok(name))
        return dbx_error_setx(err, EINVAL, "'%s' is not a built-in profile name", name);
    _cleanup_strv_ char **errors = NULL;
    _cleanup_free_ char *bdir = builtin_dir ? dbx_xstrdup(builtin_dir) : profile_builtin_dir();
    _cleanup_free_ char *path = dbx_xasprintf("%s/%s.ini", bdir, name);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return dbx_error_set(err, errno, "built-in profile '%s'", path);
    char *buf = NULL, *why = NULL;
    size_t len = 0;
    if (read_opened(fd, &buf, &len, &why) < 0) {
        int r = dbx_error_setx(err, EINVAL, "%s: %s", path, why);
        free(why);
        return r;
    }
    struct chain c = {0};
    _cleanup_free_ char *where = dbx_xasprintf("built-in %s.ini", name);
    chain_push(&c, PROF_KIND_BUILTIN, path, where, dbx_xasprintf("builtin:%s", name), buf, len,
               NULL, &errors);
    while (follow(&c, AT_FDCWD, bdir, &errors)) {
    }
    return chain_finish(&c, NULL, user, &errors, ret, err);
}

static void drop_net_lists(struct profile *p, const char *section, char ***allow, char ***resolve,
                           const char *where) {
    for (size_t i = 0; *allow && (*allow)[i]; i++) {
        _cleanup_free_ char *k = dbx_xasprintf("%s.allow[%s]", section, (*allow)[i]);
        prof_origin_drop(p, k);
    }
    dbx_strv_free(*allow);
    dbx_strv_free(*resolve);
    *allow = *resolve = NULL;
    _cleanup_free_ char *ka = dbx_xasprintf("%s.allow", section);
    _cleanup_free_ char *kr = dbx_xasprintf("%s.resolve", section);
    prof_origin_set(p, ka, where);
    prof_origin_set(p, kr, where);
}

int profile_set(struct profile *p, const char *key, const char *value, const char *where,
                dbx_error **err) {
    const char *dot = strchr(key, '.');
    _cleanup_free_ char *sec = dot ? dbx_xstrndup(key, (size_t)(dot - key)) : NULL;
    const struct prof_key *k = sec ? prof_key_find(sec, dot + 1) : NULL;
    if (!k || !k->parse) return dbx_error_setx(err, EINVAL, "unknown profile key '%s'", key);
    /* where a secret goes is the user's (config.ini), whether a box gets it the repo's
     * trusted profile: nothing a command line sets */
    if (strcmp(sec, "mounts") == 0)
        return dbx_error_setx(err, EINVAL,
                              "%s: %s: only a repo profile shares folders ([mounts] in devbox.ini)",
                              where, key);
    if (strcmp(key, "secrets.use") == 0)
        return dbx_error_setx(err, EINVAL,
                              "%s: secrets.use: only a repo profile asks for secrets ([secrets] "
                              "use in devbox.ini)",
                              where);
    struct prof_entry e = {.section = sec, .key = (char *)(dot + 1), .line = 0};
    struct prof_part part = {.text = (char *)value, .line = 0};
    e.parts = &part;
    e.nparts = 1;
    struct profile_layer l = {
        .kind = PROF_KIND_REPO, .name = (char *)where, .where = (char *)where, .v = &e, .n = 1};
    _cleanup_strv_ char **errors = NULL;
    prof_apply_layer(p, &l, &errors);
    /* `--network none`: no network, so no secret to send (a narrowing, never an error) */
    if (!errors && strcmp(key, "network.mode") == 0 && p->net_mode == PROFILE_NET_NONE)
        prof_secrets_drop(p, where);
    if (!errors) prof_check(p, &errors);
    if (errors) return prof_errors_raise(errors, err);
    /* `--network none` must leave no allowlist or name override behind to show or compile;
     * the same for setup's own network */
    if (strcmp(key, "network.mode") == 0 && p->net_mode == PROFILE_NET_NONE)
        drop_net_lists(p, "network", &p->allow, &p->resolve, where);
    if (strcmp(key, "setup.network") == 0 && p->setup_net == PROFILE_NET_NONE)
        drop_net_lists(p, "setup", &p->setup_allow, &p->setup_resolve, where);
    return 0;
}

/* ---- user configuration ------------------------------------------------------------------ */

static void user_defaults_init(struct profile_user *u) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    *u = (struct profile_user){.max_cpus = n < 1    ? 1
                                           : n > 64 ? 64
                                                    : (unsigned)n,
                               .max_memory = 2ull << 30,
                               .max_disk = 16ull << 30,
                               .max_image_size = PROFILE_IMAGE_SIZE_DEFAULT,
                               .idle_stop_s = PROFILE_IDLE_STOP_DEFAULT,
                               .listen = dbx_xstrdup(PROFILE_LISTEN_DEFAULT)};
}

static void user_ceiling(struct profile_user *u, const struct profile_layer *l,
                         const struct prof_entry *e, char ***errors) {
    const char *v = e->parts[0].text;
    uint64_t n = 0;
    if (strcmp(e->key, "cpus") == 0) {
        if (dbx_parse_u64(v, 1, 1024, &n) < 0)
            return prof_errf(errors,
                             "%s:%u: [ceilings] cpus: must be a whole number from 1 to 1024, not "
                             "'%s'",
                             l->name, e->line, v);
        u->max_cpus = (unsigned)n;
        return;
    }
    if (strcmp(e->key, "image_size") == 0) {
        if (dbx_parse_size(v, &n) < 0 || n < (1ull << 20) || n > (64ull << 30))
            return prof_errf(errors,
                             "%s:%u: [ceilings] image_size: must be a size from 1M to 64G, not "
                             "'%s'",
                             l->name, e->line, v);
        u->max_image_size = n;
        return;
    }
    bool mem = strcmp(e->key, "memory") == 0;
    if (dbx_parse_size(v, &n) < 0 || n < (mem ? 128ull << 20 : 1ull << 30) || n > (64ull << 40))
        return prof_errf(errors, "%s:%u: [ceilings] %s: must be a size from %s to 64T, not '%s'",
                         l->name, e->line, e->key, mem ? "128M" : "1G", v);
    if (mem)
        u->max_memory = n;
    else
        u->max_disk = n;
}

int profile_parse_idle_stop(const char *s, uint32_t *ret_s) {
    static const struct {
        char unit;
        uint32_t s;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}};
    if (strcmp(s, "0") == 0) {
        *ret_s = 0;
        return 0;
    }
    size_t n = strspn(s, "0123456789");
    uint32_t mult = 0;
    for (size_t i = 0; n > 0 && n <= 10 && i < DBX_ARRAY_SIZE(units); i++)
        if (s[n] == units[i].unit && s[n + 1] == '\0') mult = units[i].s;
    _cleanup_free_ char *num = dbx_xstrndup(s, n);
    uint64_t v = 0;
    if (!mult || dbx_parse_u64(num, 0, PROFILE_IDLE_STOP_MAX, &v) < 0 ||
        v * mult > PROFILE_IDLE_STOP_MAX)
        return -EINVAL;
    *ret_s = (uint32_t)(v * mult);
    return 0;
}

static void user_idle_stop(struct profile_user *u, const struct profile_layer *l,
                           const struct prof_entry *e, char ***errors) {
    if (profile_parse_idle_stop(e->parts[0].text, &u->idle_stop_s) < 0)
        prof_errf(errors,
                  "%s:%u: [box] idle_stop: must be 0 (never) or a whole number with s, m or h "
                  "up to 720h, not '%s'",
                  l->name, e->line, e->parts[0].text);
}

/* [registries] insecure, [network] ca_files, [setup] allow, a secret's hosts */
void prof_user_list(const struct profile_layer *l, const struct prof_entry *e,
                    char *(*norm)(const char *, const char **), size_t max, char ***dst,
                    char ***errors) {
    _cleanup_strv_ char **v = NULL;
    bool ok = true;
    for (size_t i = 0; i < e->nparts; i++) {
        _cleanup_free_ char *copy = dbx_xstrdup(e->parts[i].text);
        char *save = NULL;
        for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
            const char *why = NULL;
            _cleanup_free_ char *n = norm(t, &why);
            if (!n) {
                prof_errf(errors, "%s:%u: [%s] %s: '%s': %s", l->name, e->parts[i].line, e->section,
                          e->key, t, why);
                ok = false;
            } else if (prof_strv_contains(v, n)) {
                continue;
            } else if (dbx_strv_len(v) >= max) {
                prof_errf(errors, "%s:%u: [%s] %s: more than %zu entries", l->name,
                          e->parts[i].line, e->section, e->key, max);
                return;
            } else {
                v = dbx_strv_push(v, n);
            }
        }
    }
    if (ok) {
        dbx_strv_free(*dst);
        *dst = TAKE_PTR(v);
    }
}

/* [network] ca_files: absolute paths (a line is at most PROFILE_MAX_LINE bytes), not opened
 * here: the caller reads them when it builds a box's trust store. */
static char *ca_path_normalize(const char *in, const char **why) {
    if (strcmp(in, "none") == 0) return *why = "'none' must be the whole value", NULL;
    if (in[0] != '/') return *why = "not an absolute path", NULL;
    return dbx_xstrdup(in);
}

/* `none` alone is the empty list; set either way (a file with errors is not used at all). */
static void user_ca_files(struct profile_user *u, const struct profile_layer *l,
                          const struct prof_entry *e, char ***errors) {
    if (e->nparts == 1 && strcmp(e->parts[0].text, "none") == 0) {
        dbx_strv_free(u->ca_files);
        u->ca_files = NULL;
    } else {
        prof_user_list(l, e, ca_path_normalize, PROFILE_MAX_LIST, &u->ca_files, errors);
    }
    u->ca_files_set = true;
}

static void user_setting(struct profile_user *u, const struct profile_layer *l,
                         const struct prof_entry *e, char ***errors) {
    const char *v = e->parts[0].text, *why = NULL;
    size_t nerr = dbx_strv_len(*errors);
    if (strcmp(e->section, "ceilings") == 0) {
        user_ceiling(u, l, e, errors);
    } else if (strcmp(e->key, "idle_stop") == 0) { /* [box] */
        user_idle_stop(u, l, e, errors);
    } else if (strcmp(e->key, "insecure") == 0) {
        prof_user_list(l, e, prof_registry_normalize, PROFILE_MAX_LIST, &u->registries_insecure,
                       errors);
    } else if (strcmp(e->key, "ca_files") == 0) {
        user_ca_files(u, l, e, errors);
    } else if (strcmp(e->key, "proxy") == 0) { /* [network] */
        struct profile_proxy px = {0};
        if (strcmp(v, "none") == 0) {
            free(u->proxy), u->proxy = NULL, u->proxy_set = true;
        } else if (profile_proxy_parse(v, &px, &why) < 0) {
            _cleanup_free_ char *shown = profile_proxy_redact(v);
            prof_errf(errors, "%s:%u: [network] proxy: '%s': %s (or 'none')", l->name, e->line,
                      shown, why);
        } else {
            free(u->proxy), u->proxy = dbx_xstrdup(v), u->proxy_set = true;
            profile_proxy_clear(&px);
        }
    } else if (strcmp(e->key, "no_proxy") == 0) { /* [network] */
        if (e->nparts == 1 && strcmp(e->parts[0].text, "none") == 0) {
            dbx_strv_free(u->no_proxy);
            u->no_proxy = NULL;
        } else {
            prof_user_list(l, e, profile_no_proxy_normalize, PROFILE_MAX_LIST, &u->no_proxy,
                           errors);
        }
        u->no_proxy_set = true;
    } else if (strcmp(e->section, "setup") == 0) { /* allow */
        prof_user_list(l, e, prof_allow_normalize, PROFILE_MAX_LIST, &u->setup_allow, errors);
        u->setup_allow_set = true;
    } else if (strcmp(e->key, "kernel_autobuild") == 0) { /* [box] */
        if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
            u->kernel_autobuild_off = strcmp(v, "false") == 0;
        else
            prof_errf(errors, "%s:%u: [box] kernel_autobuild: must be 'true' or 'false', not '%s'",
                      l->name, e->line, v);
    } else if (strcmp(e->key, "ca_file") == 0) {
        if (v[0] != '/' || strlen(v) > 4096)
            prof_errf(errors, "%s:%u: [registries] ca_file: '%s' is not an absolute path", l->name,
                      e->line, v);
        else
            free(u->registries_ca_file), u->registries_ca_file = dbx_xstrdup(v);
    } else { /* [network] listen */
        _cleanup_free_ char *addr = prof_addr_normalize(v, &why);
        if (!addr)
            prof_errf(errors, "%s:%u: [network] listen: '%s': %s (an IP address: 127.0.0.1, ::1)",
                      l->name, e->line, v, why);
        else
            free(u->listen), u->listen = TAKE_PTR(addr);
    }
    if (dbx_strv_len(*errors) == nerr) {
        _cleanup_free_ char *k = dbx_xasprintf("%s.%s", e->section, e->key);
        _cleanup_free_ char *w = dbx_xasprintf("%s:%u", l->where, e->line);
        prof_origins_set(&u->origin, &u->norigin, k, w);
    }
}

/* Apply the user-only entries; the rest stays in the layer as the user's [defaults]. */
static void user_settings(struct profile_user *u, struct profile_layer *l, char ***errors) {
    size_t keep = 0;
    for (size_t i = 0; i < l->n; i++) {
        struct prof_entry *e = &l->v[i];
        bool secret = prof_secret_section(e->section) != NULL; /* prof_user_secrets' */
        if (!secret && !prof_user_key_find(e->section, e->key)) {
            l->v[keep++] = *e;
            continue;
        }
        if (!secret) user_setting(u, l, e, errors);
        free(e->section);
        free(e->key);
        for (size_t j = 0; j < e->nparts; j++)
            free(e->parts[j].text);
        free(e->parts);
    }
    l->n = keep;
}

int profile_user_load(const char *config_dir, struct profile_user *ret, dbx_error **err) {
    _cleanup_(profile_user_clear) struct profile_user u;
    user_defaults_init(&u);
    /* config.ini itself, and whatever else the user keeps there */
    if (config_dir[0] == '/') u.private_dirs = dbx_strv_push(u.private_dirs, config_dir);
    _cleanup_free_ char *path = dbx_xasprintf("%s/config.ini", config_dir);
    /* The user's own file: symlinks are fine here (dotfile managers use them). */
    _cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            *ret = u;
            u = (struct profile_user){0};
            return 0;
        }
        return dbx_error_set(err, errno, "open '%s'", path);
    }
    _cleanup_free_ char *buf = NULL, *why = NULL;
    size_t len = 0;
    if (read_opened(fd, &buf, &len, &why) < 0)
        return dbx_error_setx(err, EINVAL, "%s: %s", path, why);
    _cleanup_(prof_layer_freep) struct profile_layer *l = dbx_xcalloc(1, sizeof(*l));
    l->kind = PROF_KIND_USER;
    l->name = dbx_xstrdup(path);
    l->where = dbx_xstrdup(path);
    _cleanup_strv_ char **errors = NULL;
    prof_parse(buf, len, l, &errors);
    prof_user_secrets(&u, l, &errors);
    user_settings(&u, l, &errors);
    /* Check the defaults now, so a mistake is reported against config.ini. */
    struct profile p;
    prof_init_default(&p);
    prof_apply_layer(&p, l, &errors);
    prof_check(&p, &errors);
    profile_clear(&p);
    if (errors) return prof_errors_raise(errors, err);
    u.path = TAKE_PTR(path);
    u.defaults = TAKE_PTR(l);
    *ret = u;
    u = (struct profile_user){0};
    return 0;
}

void profile_user_clear(struct profile_user *u) {
    if (!u) return;
    free(u->path);
    prof_layer_free(u->defaults);
    dbx_strv_free(u->registries_insecure);
    free(u->registries_ca_file);
    free(u->listen);
    dbx_strv_free(u->ca_files);
    free(u->proxy);
    dbx_strv_free(u->no_proxy);
    dbx_strv_free(u->setup_allow);
    dbx_strv_free(u->private_dirs);
    prof_secrets_free(u->secrets, u->nsecrets);
    for (size_t i = 0; i < u->norigin; i++) {
        free(u->origin[i].key);
        free(u->origin[i].where);
    }
    free(u->origin);
    *u = (struct profile_user){0};
}

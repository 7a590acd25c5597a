/* profiles/profiles-mounts.c: [mounts], host folders shared into the box.  The lines come
 * from the repo's profile, which an agent in the box can edit, so everything a line could
 * reach is checked here on the host: the folder is resolved to its real path (a symlink the
 * box could rewrite is refused, see resolve()), and some folders are never shared whoever
 * asks: the host's root, the user's home or anything holding it, devbox's own state (trust
 * records, keys, other projects' disks), and, writable, anything that holds the repo's
 * protected paths.  What remains is either a read-only folder inside the repo (no wider than
 * the workspace itself) or a widening that needs `devbox trust` (profiles-trust.c). */
#define _GNU_SOURCE
#include "profiles-internal.h"

#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>

#define MOUNT_MAX_PATH 4096u /* a host or guest path as written, and as resolved */
#define MOUNT_MAX_LINKS 40u  /* symlinks followed resolving one path: Linux's own MAXSYMLINKS */

/* Guest directories a share must not be mounted on or below, because the box itself lives
 * there: the kernel's (/proc, /sys, /dev: the in-guest enforcement reads and writes them);
 * the programs and libraries (/usr, /bin, /sbin, /lib*: the guest init runs /bin/sh, and a
 * share there would replace what every command runs); the configuration devbox's init writes
 * (/etc: passwd, group, resolv.conf); /boot; the runtime and variable state the system
 * expects to keep and own (/run, /var, /tmp: sockets, locks, package state); root's home
 * (/root).  "/" itself and "/home" exactly (it holds the box user's home) are refused too.
 * Folders go to /data, /mnt, /opt, /srv or below a home. */
static const char *const guest_refused[] = {"/proc", "/sys", "/dev",   "/etc",   "/usr",    "/bin",
                                            "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot",
                                            "/run",  "/var", "/tmp",   "/root",  NULL};

/* a strictly below b ("/" holds every other absolute path) */
static bool below(const char *a, const char *b) {
    size_t n = strlen(b);
    if (n == 1 && b[0] == '/') return a[0] == '/' && a[1];
    return strncmp(a, b, n) == 0 && a[n] == '/';
}

/* "/a//b/./c/" -> "/a/b/c"; NULL with *why (static) for a relative path, "..", or one too long. */
static char *abs_normalize(const char *s, const char **why) {
    if (s[0] != '/') return *why = "not an absolute path", NULL;
    if (strlen(s) > MOUNT_MAX_PATH) return *why = "longer than 4096 bytes", NULL;
    _cleanup_free_ char *out = dbx_xmalloc(strlen(s) + 2);
    size_t n = 0;
    while (*s) {
        s += strspn(s, "/");
        size_t len = strcspn(s, "/");
        if (!len) break;
        if (len == 2 && s[0] == '.' && s[1] == '.') return *why = "must not contain '..'", NULL;
        if (!(len == 1 && s[0] == '.')) {
            out[n++] = '/';
            memcpy(out + n, s, len);
            n += len;
        }
        s += len;
    }
    if (!n) out[n++] = '/';
    out[n] = '\0';
    return TAKE_PTR(out);
}

/* HOST as written -> "~", "~/a/b", "/a/b" or repo-relative "a/b" (no ".." anywhere: with
 * symlinks on the way it means something else to the kernel than to the reader). */
static char *spec_normalize(const char *s, const char **why) {
    if (s[0] == '~') {
        if (s[1] && s[1] != '/')
            return *why = "only '~/' (your home) is expanded, not '~user'", NULL;
        _cleanup_free_ char *rest = abs_normalize(s[1] ? s + 1 : "/", why);
        if (!rest) return NULL;
        return strcmp(rest, "/") == 0 ? dbx_xstrdup("~") : dbx_xasprintf("~%s", rest);
    }
    if (s[0] == '/') return abs_normalize(s, why);
    return prof_path_normalize(s, why);
}

static void lbad(char ***errors, const struct profile_layer *l, const struct prof_entry *e,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void lbad(char ***errors, const struct profile_layer *l, const struct prof_entry *e,
                 const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    prof_errf(errors, "%s:%u: [mounts] '%s': %s", l->name, e->line, e->key, m);
}

/* GUEST[:ro|:rw] -> the normalized guest path and *rw; NULL when refused (reported). */
static char *guest_parse(const struct profile_layer *l, const struct prof_entry *e, bool *rw,
                         char ***errors) {
    const char *v = e->parts[0].text, *why = NULL;
    const char *colon = strrchr(v, ':');
    _cleanup_free_ char *path = dbx_xstrndup(v, colon ? (size_t)(colon - v) : strlen(v));
    *rw = false;
    if (colon && strcmp(colon, ":rw") == 0)
        *rw = true;
    else if (colon && strcmp(colon, ":ro") != 0)
        return lbad(errors, l, e, "'%s': the mode after ':' must be 'ro' or 'rw'", v), NULL;
    if (!*path)
        return lbad(errors, l, e, "'%s': needs a guest path (HOST = /data or /data:rw)", v), NULL;
    _cleanup_free_ char *g = abs_normalize(path, &why);
    if (!g) return lbad(errors, l, e, "guest path '%s': %s", path, why), NULL;
    return TAKE_PTR(g);
}

static void mount_clear(struct profile_mount *m) {
    free(m->host);
    free(m->guest);
    free(m->file);
    free(m->spec);
}

void prof_mounts_free(struct profile_mount *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        mount_clear(&v[i]);
    free(v);
}

void prof_mount_apply(struct profile *p, const struct profile_layer *l, const struct prof_entry *e,
                      char ***errors) {
    const char *why = NULL;
    _cleanup_free_ char *spec = spec_normalize(e->key, &why);
    if (!spec) return lbad(errors, l, e, "host path: %s", why);
    size_t i = 0;
    while (i < p->nmounts && strcmp(p->mounts[i].spec, spec) != 0)
        i++;
    _cleanup_free_ char *key = dbx_xasprintf("mounts.%s", spec);
    _cleanup_free_ char *where = dbx_xasprintf("%s:%u", l->where, e->line);
    if (strcmp(e->parts[0].text, "none") == 0) { /* drop an inherited line */
        if (i < p->nmounts) {
            mount_clear(&p->mounts[i]);
            memmove(&p->mounts[i], &p->mounts[i + 1], (p->nmounts - i - 1) * sizeof(*p->mounts));
            p->nmounts--;
        }
        return prof_origin_set(p, key, where);
    }
    bool rw = false;
    _cleanup_free_ char *guest = guest_parse(l, e, &rw, errors);
    if (!guest) return;
    if (i < p->nmounts && strcmp(p->mounts[i].file, l->name) == 0)
        return lbad(errors, l, e, "'%s' is already shared on line %u", spec, p->mounts[i].line);
    if (i == p->nmounts) {
        if (p->nmounts >= PROFILE_MAX_MOUNTS)
            return lbad(errors, l, e, "more than %u mounts", PROFILE_MAX_MOUNTS);
        p->mounts = dbx_xrealloc(p->mounts, (p->nmounts + 1) * sizeof(*p->mounts));
        p->mounts[p->nmounts++] = (struct profile_mount){.spec = TAKE_PTR(spec)};
    }
    struct profile_mount *m = &p->mounts[i];
    free(m->guest);
    free(m->file);
    m->guest = TAKE_PTR(guest);
    m->rw = rw;
    m->file = dbx_xstrdup(l->name);
    m->line = e->line;
    prof_origin_set(p, key, where);
}

/* ---- resolving and checking the effective list --------------------------------------------- */

static void mbad(char ***errors, const struct profile_mount *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void mbad(char ***errors, const struct profile_mount *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    prof_errf(errors, "%s:%u: [mounts] '%s': %s", m->file, m->line, m->spec, msg);
}

/* Resolve absolute, normalized `path` as realpath(3) does, except that a symlink located in
 * `repo` or below it (NULL: none) is refused: the box writes there, and trust records the
 * profile's bytes, not where its links point, so a link the box rewrote would move a
 * trusted share anywhere.  Links outside the repo are the user's own and are followed.
 * The canonical path, or NULL with *why (caller frees). */
static char *resolve(const char *path, const char *repo, char **why) {
    _cleanup_free_ char *rest = dbx_xstrdup(path);
    const char *s = rest;
    char cur[PATH_MAX];
    size_t n = 0;
    unsigned links = 0;
    cur[0] = '\0';
    while (*s) {
        s += strspn(s, "/");
        size_t len = strcspn(s, "/");
        if (!len) break;
        if (len == 1 && s[0] == '.') {
            s += len;
            continue;
        }
        if (len == 2 && s[0] == '.' && s[1] == '.') { /* only from a link's target: cur has
                                                         no links, so its parent is lexical */
            while (n && cur[n - 1] != '/')
                n--;
            if (n) n--;
            cur[n] = '\0';
            s += len;
            continue;
        }
        if (n + 1 + len >= sizeof(cur))
            return *why = dbx_xasprintf("longer than %u bytes resolved", PATH_MAX - 1), NULL;
        size_t parent = n;
        cur[n++] = '/';
        memcpy(cur + n, s, len);
        n += len;
        cur[n] = '\0';
        s += len;
        struct stat st;
        if (lstat(cur, &st) < 0)
            return *why = dbx_xasprintf("'%s': %s", cur, strerror(errno)), NULL;
        if (!S_ISLNK(st.st_mode)) continue;
        cur[parent] = '\0';
        bool in_repo = repo && dbx_path_at_or_below(parent ? cur : "/", repo);
        cur[parent] = '/';
        if (in_repo)
            return *why = dbx_xasprintf("'%s' is a symlink inside the repo (the box could change "
                                        "where it points); name the folder itself",
                                        cur),
                   NULL;
        if (++links > MOUNT_MAX_LINKS)
            return *why = dbx_xasprintf("'%s': too many levels of symlinks", cur), NULL;
        char target[PATH_MAX];
        ssize_t t = readlink(cur, target, sizeof(target) - 1);
        if (t <= 0)
            return *why = dbx_xasprintf("'%s': %s", cur, t < 0 ? strerror(errno) : "empty link"),
                   NULL;
        target[t] = '\0';
        char *next = dbx_xasprintf("%s/%s", target, s);
        free(rest);
        rest = next;
        s = rest;
        n = target[0] == '/' ? 0 : parent;
        cur[n] = '\0';
    }
    return n ? dbx_xstrdup(cur) : dbx_xstrdup("/");
}

/* A directory the user named (home, devbox's own): canonical when it exists, else as written. */
static char *canonical_dir(const char *d) {
    char *r = realpath(d, NULL);
    if (r) return r;
    const char *why = NULL;
    return abs_normalize(d, &why);
}

static char *home_dir(void) {
    const char *h = getenv("HOME");
    if (h && h[0] == '/') return canonical_dir(h);
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir && pw->pw_dir[0] == '/' ? canonical_dir(pw->pw_dir) : NULL;
}

struct mctx {
    char *root; /* canonical repo root, or NULL */
    char *home; /* canonical home, or NULL (unknown) */
    char **private_dirs;
    char *const *protect;
    char ***errors;
};

/* The absolute path m->spec names, before resolving; NULL when it cannot be said (reported). */
static char *expand(const struct mctx *c, const struct profile_mount *m) {
    if (m->spec[0] == '/') return dbx_xstrdup(m->spec);
    if (m->spec[0] == '~') {
        if (!c->home) return mbad(c->errors, m, "'~' needs $HOME set to an absolute path"), NULL;
        return strcmp(c->home, "/") == 0 ? dbx_xasprintf("/%s", m->spec + 2)
                                         : dbx_xasprintf("%s%s", c->home, m->spec + 1);
    }
    if (!c->root) return mbad(c->errors, m, "a relative host path needs a repo"), NULL;
    return dbx_xasprintf("%s/%s", strcmp(c->root, "/") == 0 ? "" : c->root, m->spec);
}

/* Writable, a folder inside the repo must neither hold a protected path nor be in one. */
static bool protected_ok(const struct mctx *c, const struct profile_mount *m) {
    const char *rel = m->host + strlen(c->root) + 1;
    for (size_t i = 0; c->protect && c->protect[i]; i++) {
        if (dbx_path_at_or_below(rel, c->protect[i]))
            return mbad(c->errors, m,
                        "'%s' is inside the protected path '%s': it cannot be shared writable", rel,
                        c->protect[i]),
                   false;
        if (below(c->protect[i], rel))
            return mbad(c->errors, m,
                        "'%s' holds the protected path '%s': it cannot be shared writable (share "
                        "it read-only, or a folder that holds no protected path)",
                        rel, c->protect[i]),
                   false;
    }
    return true;
}

/* The host-side rules on one resolved folder. */
static bool host_ok(const struct mctx *c, const struct profile_mount *m) {
    const char *h = m->host;
    struct stat st;
    if (stat(h, &st) < 0) return mbad(c->errors, m, "'%s': %s", h, strerror(errno)), false;
    if (!S_ISDIR(st.st_mode)) return mbad(c->errors, m, "'%s' is not a directory", h), false;
    if (strcmp(h, "/") == 0)
        return mbad(c->errors, m, "'/' is the whole host: devbox never shares it"), false;
    if (c->home && strcmp(h, c->home) == 0)
        return mbad(c->errors, m, "'%s' is your home directory itself: share a folder inside it",
                    h),
               false;
    if (c->home && below(c->home, h))
        return mbad(c->errors, m, "'%s' holds your home directory '%s': devbox never shares it", h,
                    c->home),
               false;
    for (size_t i = 0; c->private_dirs && c->private_dirs[i]; i++) {
        const char *d = c->private_dirs[i];
        if (dbx_path_at_or_below(h, d) || below(d, h))
            return mbad(c->errors, m,
                        "'%s' %s devbox's own state '%s' (trust records, keys, disks): devbox "
                        "never shares it",
                        h, dbx_path_at_or_below(h, d) ? "is in" : "holds", d),
                   false;
    }
    if (!c->root) return true;
    if (strcmp(h, c->root) == 0)
        return mbad(c->errors, m,
                    "'%s' is the repo itself: the box has it already, at its own path", h),
               false;
    if (m->rw && below(c->root, h))
        return mbad(c->errors, m,
                    "'%s' holds the repo '%s': writable, it would make the repo's protected "
                    "paths writable (share it read-only)",
                    h, c->root),
               false;
    if (m->rw && m->in_repo) return protected_ok(c, m);
    return true;
}

/* The box's own directories (guest_refused), and the workspace: the box mounts the repo at
 * its host path, so a share there, inside it or above it would hide (part of) it.  The
 * workspace first: a repo under /tmp is named as the workspace, not as /tmp. */
static bool guest_ok(const struct mctx *c, const struct profile_mount *m) {
    const char *g = m->guest;
    if (strcmp(g, "/") == 0)
        return mbad(c->errors, m, "guest path '/' would hide the box's whole system"), false;
    if (c->root && dbx_path_at_or_below(m->guest, c->root))
        return mbad(c->errors, m, "guest path '%s' is in the workspace, which the box has at '%s'",
                    m->guest, c->root),
               false;
    if (c->root && below(c->root, m->guest))
        return mbad(c->errors, m,
                    "guest path '%s' would hide the workspace, which the box has at '%s'", m->guest,
                    c->root),
               false;
    if (strcmp(g, "/home") == 0)
        return mbad(c->errors, m, "guest path '/home' would hide the box user's home"), false;
    for (size_t i = 0; guest_refused[i]; i++)
        if (dbx_path_at_or_below(g, guest_refused[i]))
            return mbad(c->errors, m,
                        "guest path '%s' is in the box's system directory '%s' (use /data, "
                        "/mnt, /opt or /srv)",
                        g, guest_refused[i]),
                   false;
    return true;
}

/* Two lines must not share a guest path, nest guest paths, or share the same folder twice. */
static void pairs_check(const struct mctx *c, const struct profile *p, const bool *ok) {
    for (size_t j = 0; j < p->nmounts; j++)
        for (size_t i = 0; i < j; i++) {
            const struct profile_mount *a = &p->mounts[i], *b = &p->mounts[j];
            if (strcmp(a->guest, b->guest) == 0)
                mbad(c->errors, b, "guest path '%s' is also the guest path of '%s' (%s:%u)",
                     b->guest, a->spec, a->file, a->line);
            else if (below(a->guest, b->guest) || below(b->guest, a->guest))
                mbad(c->errors, b, "guest path '%s' and '%s' of '%s' (%s:%u) nest", b->guest,
                     a->guest, a->spec, a->file, a->line);
            else if (ok[i] && ok[j] && strcmp(a->host, b->host) == 0)
                mbad(c->errors, b, "'%s' is also shared by '%s' (%s:%u)", b->host, a->spec, a->file,
                     a->line);
        }
}

void prof_mounts_resolve(struct profile *p, const char *root, const struct profile_user *user,
                         char ***errors) {
    if (!p->nmounts) return;
    struct mctx c = {.root = root && root[0] == '/' ? canonical_dir(root) : NULL,
                     .home = home_dir(),
                     .protect = p->protect,
                     .errors = errors};
    for (size_t i = 0; user && user->private_dirs && user->private_dirs[i]; i++) {
        char *d = canonical_dir(user->private_dirs[i]);
        if (d) c.private_dirs = dbx_strv_push(c.private_dirs, d);
        free(d);
    }
    _cleanup_free_ bool *ok = dbx_xcalloc(p->nmounts, sizeof(bool));
    for (size_t i = 0; i < p->nmounts; i++) {
        struct profile_mount *m = &p->mounts[i];
        bool guest = guest_ok(&c, m); /* whether or not the host path resolves */
        _cleanup_free_ char *path = expand(&c, m);
        if (!path) continue;
        char *why = NULL;
        char *host = resolve(path, c.root, &why);
        if (!host) {
            mbad(errors, m, "%s", why);
            free(why);
            continue;
        }
        free(m->host);
        m->host = host;
        m->in_repo = c.root && below(host, c.root);
        ok[i] = host_ok(&c, m) && guest;
    }
    pairs_check(&c, p, ok);
    free(c.root);
    free(c.home);
    dbx_strv_free(c.private_dirs);
}

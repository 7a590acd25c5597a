/* sandbox/sandbox-project.c: which project the user means, and its persistent record. */
#define _GNU_SOURCE
#include "sandbox-internal.h"

#include <dirent.h>
#include <git2.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

/* libgit2 decides whether `start` is inside a git work tree the first time devbox meets a
 * project (and whenever its VM starts): repository discovery with libgit2, which must agree
 * with our own walk.  libgit2's global init costs ~10 ms (it sets up OpenSSL and reads the CA
 * bundle), so commands on a project devbox already knows use the walk alone. */
static int git_check(const char *start, const char *root, dbx_error **err) {
    git_libgit2_init();
    git_buf buf = {0};
    int r = git_repository_discover(&buf, start, 0, NULL);
    _cleanup_free_ char *gitdir = r == 0 ? dbx_xstrdup(buf.ptr) : NULL;
    git_buf_dispose(&buf);
    git_libgit2_shutdown();
    if (r < 0 || !root)
        return dbx_error_set(err, 0, "'%s' is not inside a git work tree (use -C DIR)", start);
    return 0;
}
int dbx_project_find(const struct dbx_paths *paths, const char *dir, bool validate,
                     struct dbx_project *ret, dbx_error **err) {
    struct dbx_project p = {0};
    if (dbx_project_locate(paths, dir, &p, NULL, err) < 0) return -1;
    _cleanup_free_ char *rec = NULL;
    if (p.root) rec = dbx_xasprintf("%s/project.json", p.state_dir);
    if ((!rec || access(rec, F_OK) < 0 || validate) && git_check(p.cwd, p.root, err) < 0) {
        dbx_project_clear(&p);
        return -1;
    }
    if (strlen(p.root) > 3000) {
        dbx_project_clear(&p);
        return dbx_error_set(err, 0, "project path is too long");
    }
    *ret = p;
    return 0;
}

/* d made canonical as far as it exists: the real path of its deepest existing ancestor, then
 * the rest as written (a directory devbox has not made yet, below a symlinked home); NULL for
 * NULL or a relative d. */
static char *canonical_dir(const char *d) {
    if (!d || d[0] != '/') return NULL;
    _cleanup_free_ char *head = dbx_xstrdup(d);
    for (;;) {
        char *r = realpath(head, NULL);
        if (r) {
            const char *rest = d + strlen(head);
            char *out = dbx_xasprintf("%s%s", strcmp(r, "/") || !rest[0] ? r : "", rest);
            free(r);
            return out;
        }
        char *slash = strrchr(head, '/');
        if (!slash || slash == head) return dbx_xstrdup(d);
        *slash = '\0';
    }
}

/* The user's homes: $HOME and the passwd entry's, canonical (either may be missing, or both
 * the same). */
static void home_dirs(char *ret[2]) {
    const char *h = getenv("HOME");
    struct passwd *pw = getpwuid(getuid());
    ret[0] = h && h[0] == '/' ? canonical_dir(h) : NULL;
    ret[1] = pw && pw->pw_dir ? canonical_dir(pw->pw_dir) : NULL;
    if (ret[0] && ret[1] && !strcmp(ret[0], ret[1])) {
        free(ret[1]);
        ret[1] = NULL;
    }
}

int dbx_project_share_check(const struct dbx_paths *paths, const char *root, dbx_error **err) {
    if (!strcmp(root, "/"))
        return dbx_error_setx(err, EPERM,
                              "the work tree is '/', the whole host: devbox never shares it");
    char *homes[2];
    home_dirs(homes);
    _cleanup_free_ char *h0 = homes[0], *h1 = homes[1];
    for (size_t i = 0; i < 2; i++) {
        const char *home = homes[i];
        if (home && !strcmp(root, home))
            return dbx_error_setx(err, EPERM,
                                  "the work tree '%s' is your home directory: devbox never shares "
                                  "it (the box could rewrite your shell, ssh, git and devbox "
                                  "configuration); run devbox in a repository inside it",
                                  root);
        if (home && dbx_path_at_or_below(home, root))
            return dbx_error_setx(err, EPERM,
                                  "the work tree '%s' holds your home directory '%s': devbox never "
                                  "shares it; run devbox in a repository inside your home",
                                  root, home);
    }
    const char *const own[] = {paths->config, paths->state, paths->data, paths->run};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(own); i++) {
        /* (config.ini's directory may not exist yet: canonical as far as it does) */
        _cleanup_free_ char *d = canonical_dir(own[i]);
        if (!d) continue;
        bool in = dbx_path_at_or_below(root, d);
        if (in || dbx_path_at_or_below(d, root))
            return dbx_error_setx(err, EPERM,
                                  "the work tree '%s' %s devbox's own directory '%s' (trust "
                                  "records, configuration, disks): devbox never shares it",
                                  root, in ? "is in" : "holds", d);
    }
    return 0;
}

/* The home's directories whose symlinks count (dbx_project_home_links): "" is the home itself,
 * where only dotfiles count (a link like ~/work -> ~/src/repo is a shortcut, not configuration);
 * the others count whole when they are themselves a link into the workspace (GNU stow folds a
 * directory it can: ~/bin -> ~/dotfiles/bin). */
static const char *const home_link_dirs[] = {"", ".config", ".ssh", ".local/bin", "bin"};
#define HOME_LINK_SCAN_MAX 4096u /* entries read per directory */
#define HOME_LINK_HOPS 40u       /* symlinks followed resolving one link: Linux's MAXSYMLINKS */
#define HOME_LINK_PATH_MAX 1024u /* a protected path's length (DBX_PROTECTED_PATH_MAX) */

/* A list of path components to resolve, front first. */
struct comps {
    char **v;
    size_t n, off;
};

/* (a component taken off the front is NULL in v: its taker frees it) */
static void comps_free(struct comps *q) {
    for (size_t i = 0; i < q->n; i++)
        free(q->v[i]);
    free(q->v);
    *q = (struct comps){0};
}

/* Put path's components in front of what q has left. */
static void comps_prepend(struct comps *q, const char *path) {
    char **add = NULL;
    size_t na = 0;
    _cleanup_free_ char *copy = dbx_xstrdup(path);
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        add = dbx_xrealloc(add, (na + 1) * sizeof(char *));
        add[na++] = dbx_xstrdup(c);
    }
    size_t left = q->n - q->off;
    char **v = dbx_xcalloc(na + left + 1, sizeof(char *));
    memcpy(v, add, na * sizeof(char *));
    if (left) memcpy(v + na, q->v + q->off, left * sizeof(char *));
    free(add);
    free(q->v);
    *q = (struct comps){.v = v, .n = na + left, .off = 0};
}

/* The workspace path (root-relative) that `lexical`, root-relative components as written,
 * names: "." dropped; a component with ".." in it (which a protected path may not hold: the
 * plan refuses one) ends it at its parent, and so does one past HOME_LINK_PATH_MAX; NULL for
 * nothing left (the root itself). */
static char *lexical_rel(struct comps *q, const char *first) {
    _cleanup_free_ char *rel = dbx_xstrdup(first);
    for (; q->off < q->n; q->off++) {
        const char *c = q->v[q->off];
        if (!strcmp(c, ".")) continue;
        if (strstr(c, "..")) break;
        if (strlen(rel) + strlen(c) + 1 > HOME_LINK_PATH_MAX) break;
        char *r = rel[0] ? dbx_xasprintf("%s/%s", rel, c) : dbx_xstrdup(c);
        free(rel);
        rel = r;
    }
    return rel[0] ? TAKE_PTR(rel) : NULL;
}

/* Where the host's own lookup of the link `path` (absolute, its directory outside the
 * workspace) enters the work tree at root: that path, root-relative, or NULL (it stays
 * outside, reaches the root itself, or cannot be said).  Resolved one component at a time as
 * the kernel does, following only what lies outside the workspace (the user's): from the first
 * component that is inside, the rest is taken as written, since the box could make any of it a
 * symlink; the protected-path walk then refuses such a one rather than follow it
 * (mounts-protected.c), and guards a missing one, so the box can neither redirect the host nor
 * create the file.  A `..` inside cannot be said without following what the box made: the path
 * ends before it, at what is known. */
static char *link_rel(const char *path, const char *root) {
    struct comps q = {0};
    comps_prepend(&q, path);
    _cleanup_free_ char *cur = dbx_xstrdup("/"); /* canonical, outside the workspace */
    unsigned hops = 0;
    char *out = NULL;
    while (q.off < q.n) {
        _cleanup_free_ char *c = TAKE_PTR(q.v[q.off]);
        q.off++;
        if (!strcmp(c, ".")) continue;
        if (!strcmp(c, "..")) {
            char *slash = strrchr(cur, '/');
            slash[slash == cur ? 1 : 0] = '\0';
            continue;
        }
        _cleanup_free_ char *next = dbx_xasprintf("%s/%s", strcmp(cur, "/") ? cur : "", c);
        if (dbx_path_at_or_below(next, root)) {
            const char *in = next + strlen(root);
            _cleanup_free_ char *first = dbx_xstrdup(in[0] == '/' ? in + 1 : in);
            out = strstr(first, "..") ? NULL : lexical_rel(&q, first);
            break;
        }
        struct stat st;
        if (lstat(next, &st) < 0) break; /* missing outside the workspace: never reaches it */
        if (S_ISLNK(st.st_mode)) {
            char buf[PATH_MAX];
            ssize_t n = readlink(next, buf, sizeof(buf) - 1);
            if (n <= 0 || ++hops > HOME_LINK_HOPS) break;
            buf[n] = '\0';
            if (buf[0] == '/') {
                free(cur);
                cur = dbx_xstrdup("/");
            }
            comps_prepend(&q, buf);
            continue;
        }
        free(cur);
        cur = TAKE_PTR(next);
    }
    comps_free(&q);
    return out;
}

static void links_add(char ***out, size_t *n, size_t max, char *rel, bool *ret_full) {
    if (!rel) return;
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*out)[i], rel)) {
            free(rel);
            return;
        }
    if (*n >= max) {
        *ret_full = true;
        free(rel);
        return;
    }
    *out = dbx_strv_push(*out, rel);
    (*n)++;
    free(rel);
}

static void home_links_in(const char *home, const char *sub, const char *root, size_t max,
                          char ***out, size_t *n, bool *ret_full) {
    _cleanup_free_ char *dir = sub[0] ? dbx_xasprintf("%s/%s", home, sub) : dbx_xstrdup(home);
    struct stat st;
    if (lstat(dir, &st) < 0) return;
    /* a link itself (~/bin -> ~/dotfiles/bin): into the workspace, protected whole */
    if (S_ISLNK(st.st_mode)) links_add(out, n, max, link_rel(dir, root), ret_full);
    /* a directory in the workspace (through a link of its own or of a parent's) holds what
     * the box wrote: it is protected whole, or lies in what is, and is never scanned */
    _cleanup_free_ char *real = realpath(dir, NULL);
    if (!real || dbx_path_at_or_below(real, root)) return;
    DIR *d = opendir(real);
    if (!d) return;
    size_t seen = 0;
    for (struct dirent *e; seen < HOME_LINK_SCAN_MAX && (e = readdir(d));) {
        seen++;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!sub[0] && e->d_name[0] != '.') continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
            continue;
        _cleanup_free_ char *link =
            dbx_xasprintf("%s/%s", strcmp(real, "/") ? real : "", e->d_name);
        links_add(out, n, max, link_rel(link, root), ret_full);
    }
    if (seen >= HOME_LINK_SCAN_MAX) *ret_full = true;
    closedir(d);
}

char **dbx_project_home_links(const char *root, size_t max, bool *ret_full) {
    char **out = dbx_xcalloc(1, sizeof(char *));
    size_t n = 0;
    *ret_full = false;
    if (!strcmp(root, "/")) return out; /* never a workspace (dbx_project_share_check) */
    char *homes[2];
    home_dirs(homes);
    for (size_t h = 0; h < 2; h++) {
        for (size_t i = 0; homes[h] && i < DBX_ARRAY_SIZE(home_link_dirs); i++)
            home_links_in(homes[h], home_link_dirs[i], root, max, &out, &n, ret_full);
        free(homes[h]);
    }
    return out;
}

void dbx_git_hold(void) {
    git_libgit2_init();
}

void dbx_git_release(void) {
    git_libgit2_shutdown();
}

/* One identity value as git would use it, or NULL: unset, empty, over 256 bytes or holding a
 * control character (it becomes an environment variable in the box). */
static char *ident_get(git_config *cfg, const char *key) {
    const char *v = NULL;
    if (git_config_get_string(&v, cfg, key) < 0 || !v || !*v || strlen(v) > 256) return NULL;
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c < 0x20 || *c == 0x7f) return NULL;
    return dbx_xstrdup(v);
}

int dbx_git_identity(const char *root, char **ret_name, char **ret_email, dbx_error **err) {
    *ret_name = *ret_email = NULL;
    git_libgit2_init();
    git_repository *repo = NULL;
    git_config *cfg = NULL;
    int r = 0;
    /* libgit2 reads config files only: no hook, filter or fsmonitor runs.  A `.git` that is a
     * symlink is not followed (a gitfile is: the worktree's and submodule's own, which the box
     * cannot write); an unreadable one leaves the user's own config. */
    _cleanup_free_ char *dotgit = dbx_xasprintf("%s/.git", root);
    struct stat st;
    if (lstat(dotgit, &st) == 0 && S_ISLNK(st.st_mode))
        r = dbx_error_setx(err, ELOOP, "'%s' is a symlink: its config is not read", dotgit);
    else if (git_repository_open_ext(&repo, root, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0 ||
             git_repository_config_snapshot(&cfg, repo) < 0) {
        const git_error *e = git_error_last();
        r = dbx_error_setx(err, EIO, "the repository's config at '%s': %s", root,
                           e && e->message ? e->message : "libgit2 failed");
    }
    git_config *def = NULL;
    if (!cfg && git_config_open_default(&def) == 0) {
        git_config_snapshot(&cfg, def);
        git_config_free(def);
    }
    if (cfg) {
        *ret_name = ident_get(cfg, "user.name");
        *ret_email = ident_get(cfg, "user.email");
    }
    git_config_free(cfg);
    git_repository_free(repo);
    git_libgit2_shutdown();
    return r;
}

/* ---- record ----------------------------------------------------------------------------- */

void dbx_project_rec_clear(struct dbx_project_rec *r) {
    if (!r) return;
    free(r->root);
    free(r->image);
    free(r->base);
    free(r->setup);
    *r = (struct dbx_project_rec){0};
}

int dbx_project_rec_load(const char *state_dir, struct dbx_project_rec *ret, dbx_error **err) {
    _cleanup_free_ char *path = dbx_xasprintf("%s/project.json", state_dir);
    _cleanup_free_ char *buf = NULL;
    size_t len;
    if (dbx_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len, err) < 0) return -1;
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) return dbx_error_set(err, 0, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    const char *root = NULL, *image = NULL, *base = NULL, *setup = "";
    json_int_t created = 0;
    /* "setup" is absent in records from before [setup] existed */
    int r = json_unpack_ex(j, &je, JSON_STRICT, "{s:s, s:s, s:s, s:I, s?s}", "root", &root, "image",
                           &image, "base", &base, "created", &created, "setup", &setup);
    if (r == 0) {
        *ret = (struct dbx_project_rec){dbx_xstrdup(root), dbx_xstrdup(image), dbx_xstrdup(base),
                                        (int64_t)created, dbx_xstrdup(setup)};
    }
    json_decref(j);
    if (r < 0) return dbx_error_set(err, 0, "%s: %s", path, je.text);
    return 0;
}

int dbx_project_rec_save(const char *state_dir, const struct dbx_project_rec *rec,
                         dbx_error **err) {
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s}", "root", rec->root, "image", rec->image,
                          "base", rec->base, "created", (json_int_t)rec->created, "setup",
                          rec->setup ? rec->setup : "");
    if (!j) return dbx_error_set(err, 0, "encode project record");
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    if (!s) dbx_oom_hook();
    _cleanup_close_ int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = dfd < 0 ? dbx_error_set(err, errno, "open '%s'", state_dir)
                    : dbx_write_file_atomic(dfd, "project.json", s, strlen(s), 0600, err);
    free(s);
    return r;
}

int dbx_project_list(const struct dbx_paths *paths, char ***ret_ids, dbx_error **err) {
    _cleanup_free_ char *dir = dbx_xasprintf("%s/projects", paths->state);
    char **ids = dbx_xcalloc(1, sizeof(char *));
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            *ret_ids = ids;
            return 0;
        }
        dbx_strv_free(ids);
        return dbx_error_set(err, errno, "open '%s'", dir);
    }
    struct dirent *de;
    while ((de = readdir(d)))
        if (strlen(de->d_name) == 16 && strspn(de->d_name, "0123456789abcdef") == 16)
            ids = dbx_strv_push(ids, de->d_name);
    closedir(d);
    *ret_ids = ids;
    return 0;
}

/* ---- cleaning up (issue 13) ------------------------------------------------------------- */

bool dbx_project_gone(const char *root) {
    struct stat st;
    if (lstat(root, &st) < 0) return errno == ENOENT || errno == ENOTDIR;
    if (!S_ISDIR(st.st_mode)) return true; /* the canonical root was a directory */
    _cleanup_free_ char *dotgit = dbx_xasprintf("%s/.git", root);
    if (lstat(dotgit, &st) < 0) return errno == ENOENT || errno == ENOTDIR;
    return false;
}

bool dbx_project_busy(const struct dbx_project *proj) {
    _cleanup_free_ char *lp = dbx_xasprintf("%s/%s", proj->run_dir, DBX_ALIVE_LOCK);
    _cleanup_close_ int fd = open(lp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno != ENOENT && errno != ENOTDIR; /* cannot tell: treat as busy */
    return flock(fd, LOCK_SH | LOCK_NB) < 0;
}

static bool id_ok(const char *id) {
    return strlen(id) == 16 && strspn(id, "0123456789abcdef") == 16;
}

/* The project whose recorded root is exactly root, or -ENOENT. */
static int from_root(const struct dbx_paths *paths, const char *root, struct dbx_project *ret) {
    struct dbx_project p = {.root = (char *)root};
    dbx_project_fill(paths, &p);
    p.root = NULL;
    struct dbx_project q = {0};
    int r = dbx_project_from_id(paths, p.id, &q, NULL) == 0 && strcmp(q.root, root) == 0;
    dbx_project_clear(&p);
    if (!r) {
        dbx_project_clear(&q);
        return -ENOENT;
    }
    *ret = q;
    return 0;
}

/* arg as an absolute path: resolved with realpath as far as it exists (the directories above a
 * deleted tree usually do, and the recorded root is canonical), the rest appended after "."
 * and ".." were folded lexically. */
static char *abs_path(const char *arg) {
    char *real = realpath(arg, NULL);
    if (real) return real;
    _cleanup_free_ char *cwd = arg[0] == '/' ? dbx_xstrdup("") : getcwd(NULL, 0);
    if (!cwd) return NULL;
    _cleanup_free_ char *full = dbx_xasprintf("%s/%s", cwd, arg);
    /* fold "//", "/./" and "/x/../" in place */
    char *out = dbx_xcalloc(1, strlen(full) + 2);
    size_t n = 0;
    for (char *save = NULL, *c = strtok_r(full, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, ".")) continue;
        if (!strcmp(c, "..")) {
            while (n > 0 && out[--n] != '/') {
            }
            out[n] = '\0';
            continue;
        }
        n += (size_t)sprintf(out + n, "/%s", c);
    }
    if (n == 0) strcpy(out, "/");
    /* the longest prefix that exists, canonical */
    for (size_t i = n; i > 0; i--) {
        if (out[i] != '/' && out[i] != '\0') continue;
        char c = out[i];
        out[i] = '\0';
        _cleanup_free_ char *head = realpath(out, NULL);
        out[i] = c;
        if (!head) continue;
        char *r = dbx_xasprintf("%s%s", strcmp(head, "/") ? head : "", out + i);
        free(out);
        return r;
    }
    return out;
}

/* The recorded project whose id starts with prefix: 1 found, 0 none, -1 several (err set). */
static int from_prefix(const struct dbx_paths *paths, const char *prefix, struct dbx_project *ret,
                       dbx_error **err) {
    _cleanup_strv_ char **ids = NULL;
    if (dbx_project_list(paths, &ids, err) < 0) return -1;
    const char *found = NULL;
    for (char **id = ids; *id; id++) {
        if (!dbx_str_has_prefix(*id, prefix)) continue;
        if (found)
            return dbx_error_set(err, 0, "'%s' is the start of several project ids (%s, %s, ...)",
                                 prefix, found, *id);
        found = *id;
    }
    if (!found) return 0;
    if (dbx_project_from_id(paths, found, ret, err) < 0) return -1;
    return 1;
}

int dbx_project_lookup(const struct dbx_paths *paths, const char *arg, struct dbx_project *ret,
                       dbx_error **err) {
    size_t len = strlen(arg);
    if (len == 0 || len > 3000) return dbx_error_set(err, 0, "bad project path or id '%s'", arg);
    if (len >= 4 && len <= 16 && strspn(arg, "0123456789abcdef") == len) {
        struct dbx_project p = {0};
        int r = from_prefix(paths, arg, &p, err);
        if (r < 0) return -1;
        struct stat st;
        if (r > 0 && lstat(arg, &st) == 0) {
            dbx_project_clear(&p);
            return dbx_error_set(err, 0,
                                 "'%s' is both a project id and a path here (write ./%s for the "
                                 "path)",
                                 arg, arg);
        }
        if (r > 0) {
            *ret = p;
            return 0;
        }
    }
    _cleanup_free_ char *path = abs_path(arg);
    if (!path) return dbx_error_set(err, errno, "'%s'", arg);
    /* The project's root exactly, never a recorded root found by going up: a mistyped or
     * deleted path below a project (a dotfiles repo at $HOME, a monorepo holding others) would
     * otherwise name that project, and rm would delete its box. */
    if (from_root(paths, path, ret) == 0) return 0;
    for (char *cut = strrchr(path, '/'); cut && cut != path; cut = strrchr(path, '/')) {
        *cut = '\0';
        if (from_root(paths, path, ret) == 0) {
            _cleanup_free_ char *root = dbx_xstrdup(ret->root);
            dbx_project_clear(ret);
            return dbx_error_set(err, 0,
                                 "'%s' is not a project's root but lies inside project '%s' "
                                 "(name that root, or its id as 'devbox ls' shows it)",
                                 arg, root);
        }
    }
    return dbx_error_set(err, 0, "'%s' is not a project devbox knows (see 'devbox ls')", arg);
}

/* The project's starters' lock (DBX_START_LOCK, what dbx_connect holds while it starts a box).
 * *ret_fd -EBADF when the state dir is already gone (nothing left to start from).  !wait: -EAGAIN
 * when a start holds it. */
int dbx_project_lock(const char *state_dir, bool wait, int *ret_fd, dbx_error **err) {
    _cleanup_free_ char *lp = dbx_xasprintf("%s/%s", state_dir, DBX_START_LOCK);
    _cleanup_close_ int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        *ret_fd = -EBADF;
        return 0;
    }
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", lp);
    while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0)
        if (errno != EINTR) {
            if (errno == EWOULDBLOCK && !wait) return -EAGAIN;
            return dbx_error_set(err, errno, "lock '%s'", lp);
        }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

/* Open dir/sub (sub: one name, not followed if a symlink); -ENOENT quietly. */
static int open_sub(const char *dir, const char *sub, dbx_error **err) {
    _cleanup_close_ int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) return errno == ENOENT ? -ENOENT : dbx_error_set(err, errno, "open '%s'", dir);
    if (!sub) return TAKE_FD(d);
    int fd = openat(d, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ENOENT : dbx_error_set(err, errno, "open '%s/%s'", dir, sub);
    return fd;
}

int dbx_project_remove_locked(const struct dbx_paths *paths, const char *id, bool dry_run,
                              uint64_t *freed, dbx_error **err) {
    if (!id_ok(id)) return dbx_error_set(err, EINVAL, "bad project id '%s'", id);
    /* Each dir found from devbox's own dirs by fixed names: never a path a record names. */
    const struct {
        const char *dir, *sub;
    } where[] = {{paths->state, "projects"}, {paths->run, NULL}, {paths->data, "projects"}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(where); i++) {
        _cleanup_close_ int fd = open_sub(where[i].dir, where[i].sub, err);
        if (fd == -ENOENT) continue;
        if (fd < 0) return -1;
        /* The record first: what an interrupted rm leaves is a record-less dir gc removes. */
        if (i == 0 && !dry_run) {
            _cleanup_close_ int sd =
                openat(fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sd >= 0 && unlinkat(sd, "project.json", 0) < 0 && errno != ENOENT)
                return dbx_error_set(err, errno, "remove '%s/%s/%s/project.json'", where[i].dir,
                                     where[i].sub, id);
        }
        if (dbx_rm_tree_at(fd, id, dry_run, freed, err) < 0)
            return dbx_error_wrap(err, "in '%s%s%s'", where[i].dir, where[i].sub ? "/" : "",
                                  where[i].sub ? where[i].sub : "");
    }
    return 0;
}

int dbx_project_remove(const struct dbx_paths *paths, const struct dbx_project *proj, bool force,
                       uint64_t *ret_freed, dbx_error **err) {
    if (dbx_project_busy(proj)) {
        if (!force)
            return dbx_error_set(err, 0, "project '%s' is running (stop it first, or use --force)",
                                 proj->root);
        if (dbx_stop(paths, proj, err) < 0) return -1;
    }
    /* Under the starters' lock: a start waits for the removal (and then makes a new box). */
    _cleanup_close_ int lock = -EBADF;
    if (dbx_project_lock(proj->state_dir, true, &lock, err) < 0) return -1;
    if (dbx_project_busy(proj))
        return dbx_error_set(err, 0, "project '%s' was started meanwhile", proj->root);
    uint64_t freed = 0;
    if (dbx_project_remove_locked(paths, proj->id, false, &freed, err) < 0) return -1;
    if (ret_freed) *ret_freed = freed;
    return 0;
}

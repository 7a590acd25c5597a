/* mounts/mounts-protected.c: protected paths, enforced on the host (R2) inside virtiofsd's own
 * mount namespace.
 *
 * A read-only bind of the path alone is not enough: the guest can rename a parent away and
 * recreate the path (`mv .git .git.old && mkdir -p .git/hooks`); Linux refuses to rename or
 * unlink a dentry only if it is itself a mount point in the caller's namespace (EBUSY).  So for
 * `.git/hooks` we make `.git` a read-write bind of itself first, then `.git/hooks` a read-only
 * one inside it: neither can be renamed, replaced or removed, writes below `.git/hooks` give
 * EROFS, hard links out of or into it give EXDEV, and the rest of `.git` (index, objects, refs)
 * stays writable.
 *
 * Paths are walked one component at a time from the share's root with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS) (R4; an O_NOFOLLOW walk where openat2 is missing), and every mount is
 * made on the fd we resolved with the new mount API (Linux 5.12: open_tree, mount_setattr,
 * move_mount), never on a path string, so a concurrent rename cannot redirect it.
 * mount_setattr only adds flags, so, unlike a MS_REMOUNT in a user namespace, it cannot trip
 * over the flags (nosuid, nodev, atime) the kernel locks on mounts inherited from the host. */
#define _GNU_SOURCE
#include "mounts-internal.h"

#include <dirent.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

int mounts_protected_validate(const char *const *paths, dbx_error **err) {
    size_t n = 0;
    for (; paths && paths[n]; n++) {
        const char *p = paths[n];
        if (n >= MOUNTS_PROTECTED_MAX)
            return dbx_error_setx(err, E2BIG, "more than %u protected paths", MOUNTS_PROTECTED_MAX);
        size_t len = strnlen(p, PATH_MAX);
        if (len == 0 || len >= PATH_MAX || p[0] == '/')
            return dbx_error_setx(err, EINVAL, "protected path '%.64s' is not repo-relative", p);
        for (const char *c = p; *c;) {
            size_t cl = strcspn(c, "/");
            if (cl == 0 || cl > NAME_MAX || (cl == 1 && c[0] == '.') ||
                (cl == 2 && c[0] == '.' && c[1] == '.'))
                return dbx_error_setx(err, EINVAL, "protected path '%.64s' is not normalized", p);
            c += cl;
            if (*c == '/' && *++c == '\0')
                return dbx_error_setx(err, EINVAL, "protected path '%.64s' is not normalized", p);
        }
    }
    return 0;
}

/* ---- one component, no symlinks ------------------------------------------------------------ */

/* Open `name` (a single component, never "." or "..") in dirfd as O_PATH without following a
 * symlink.  An fd, or -errno: -ELOOP for a symlink, -ENOENT when missing. */
static int open_component(int dirfd, const char *name) {
    static bool no_openat2;
    int fd = -1;
    if (!no_openat2) {
        struct open_how how = {
            .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        for (int i = 0; i < 8 && fd < 0; i++) {
            fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
            if (fd < 0 && errno != EAGAIN && errno != EINTR) break; /* EAGAIN: a rename raced */
        }
        if (fd < 0 && errno != ENOSYS) return -errno;
        if (fd < 0) no_openat2 = true; /* before Linux 5.6 */
    }
    /* A single component that is not ".." cannot leave dirfd. */
    if (fd < 0) fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -errno;
    /* With O_PATH | O_NOFOLLOW both calls return a trailing symlink itself (openat2 too, despite
     * RESOLVE_NO_SYMLINKS: see openat2(2)); refuse it here. */
    struct stat st;
    int e = fstat(fd, &st) < 0 ? errno : S_ISLNK(st.st_mode) ? ELOOP : 0;
    if (e) {
        close(fd);
        return -e;
    }
    return fd;
}

/* ---- the walk ------------------------------------------------------------------------------ */

struct walk {
    int root_fd;
    bool do_mount;   /* false: only resolve (mounts_protected_scan) */
    char *const *rw; /* directories to bind writable even below a read-only path of ours */
    char **done;     /* repo-relative paths that are our mount points now */
    char **missing;  /* protected paths that do not exist */
    struct mounts_guard *guard; /* or NULL: where to add their first missing components */
};

static bool strv_contains(char *const *v, const char *s) {
    for (size_t i = 0; v && v[i]; i++)
        if (!strcmp(v[i], s)) return true;
    return false;
}

/* Bind the inode at fd over itself (the whole subtree: in a user namespace the kernel refuses a
 * non-recursive bind of a tree with locked submounts, and a non-recursive one would hide them),
 * read-only, nosuid and nodev if `ro`.  Returns an fd on the root of the new mount, which is
 * where later components must be resolved from: the old fd still points below it. */
static int bind_self(int fd, bool ro, bool make_rw, const char *what, dbx_error **err) {
    _cleanup_close_ int tree =
        open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0) return dbx_error_set(err, errno, "bind '%s': open_tree", what);
    if (ro) {
        struct mount_attr attr = {.attr_set =
                                      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
        if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
            return dbx_error_set(err, errno, "make '%s' read-only: mount_setattr", what);
    } else if (make_rw) {
        /* A clone of our own read-only bind (never of a mount the host made read-only: only
         * paths below one of ours are asked for) is read-only too; only this one is cleared,
         * its submounts keep theirs. */
        struct mount_attr attr = {.attr_clr = MOUNT_ATTR_RDONLY};
        if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
            return dbx_error_set(err, errno, "make '%s' writable: mount_setattr", what);
    }
    if (move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return dbx_error_set(err, errno, "bind '%s': move_mount", what);
    return TAKE_FD(tree);
}

/* Whether directory `dir` (any fd on it) folds case itself: ext4 and f2fs directories with
 * `chattr +F`, which also fold non-ASCII letters onto ASCII ones (U+017F to 's', U+212A to
 * 'k', U+FB01 to "fi", ...).  Unknown (no such flag on this file system): no. */
static bool dir_casefold(int dir) {
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dir);
    _cleanup_close_ int fd = open(proc, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
    int flags = 0;
    return fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_CASEFOLD_FL);
}

/* Record `name`, missing in directory `dir`, for the name guard. */
static int guard_add_missing(struct mounts_guard *g, int dir, const char *name, dbx_error **err) {
    struct stat st;
    if (fstat(dir, &st) < 0) return dbx_error_set(err, errno, "stat the parent of '%s'", name);
    for (size_t i = 0; i < g->nmissing; i++)
        if (g->missing[i].dev == st.st_dev && g->missing[i].ino == st.st_ino &&
            mounts_name_caseeq(g->missing[i].name, name))
            return 0;
    if (g->nmissing >= MOUNTS_GUARD_MISSING_MAX)
        return dbx_error_setx(err, E2BIG, "more than %u missing protected paths",
                              MOUNTS_GUARD_MISSING_MAX);
    struct mounts_guard_missing *m = &g->missing[g->nmissing++];
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    m->casefold = dir_casefold(dir);
    snprintf(m->name, sizeof(m->name), "%s", name); /* validated: at most NAME_MAX */
    return 0;
}

/* Resolve `path` component by component below the share root.  A symlink anywhere on the way
 * is an error, not something to follow or to skip: following could protect a file outside the
 * share (or a different one inside) while the link itself stays replaceable, and mounts cannot
 * be put on a link, so the only safe answer is to refuse to start.  Each ancestor becomes a
 * read-write mount point (once: w->done), the path itself a read-only one.  A missing path is
 * recorded in w->missing, and its first missing component in w->guard: a nested path whose
 * parent is missing too (`a/b/c` without `a/b`) guards that parent's name, so the box cannot
 * create `a/b` at all, nor anything below it.  That is the price of a list fixed at the start
 * (a directory the box makes has an inode nobody knew then), and a small one: protected paths
 * are configuration files at the top or in tool directories that are protected whole; the
 * user can create the directory on the host, after which the next start guards only `c`.  An
 * ancestor that is not a directory (a worktree's `.git` file) decides where the path would
 * lead, so it is protected read-only in the path's place. */
static int walk_one(struct walk *w, const char *path, dbx_error **err) {
    _cleanup_close_ int dir = fcntl(w->root_fd, F_DUPFD_CLOEXEC, 3);
    if (dir < 0) return dbx_error_set(err, errno, "dup");
    _cleanup_free_ char *prefix = dbx_xstrdup(path);
    size_t off = 0, len = strlen(path);
    while (off < len) {
        size_t cl = strcspn(path + off, "/");
        bool last = off + cl == len;
        prefix[off + cl] = '\0';
        _cleanup_free_ char *name = dbx_xstrndup(path + off, cl);
        _cleanup_close_ int fd = open_component(dir, name);
        if (fd == -ENOENT) {
            w->missing = dbx_strv_push(w->missing, path);
            return w->guard ? guard_add_missing(w->guard, dir, name, err) : 0;
        }
        if (fd == -ELOOP)
            return dbx_error_setx(err, ELOOP,
                                  "protected path '%s': '%s' is a symbolic link (devbox cannot "
                                  "protect a link; replace it with what it points to)",
                                  path, prefix);
        if (fd < 0) return dbx_error_set(err, -fd, "protected path '%s': open '%s'", path, prefix);
        struct stat st;
        if (fstat(fd, &st) < 0) return dbx_error_set(err, errno, "stat '%s'", prefix);
        bool leaf = last || !S_ISDIR(st.st_mode);
        if (!last && !S_ISDIR(st.st_mode)) w->missing = dbx_strv_push(w->missing, path);
        if (w->do_mount && !strv_contains(w->done, prefix)) {
            int m = bind_self(fd, leaf, !leaf && strv_contains(w->rw, prefix), prefix, err);
            if (m < 0) return dbx_error_wrap(err, "protected path '%s'", path);
            close(fd);
            fd = m;
            w->done = dbx_strv_push(w->done, prefix);
        }
        if (leaf) return 0;
        close(dir);
        dir = TAKE_FD(fd);
        prefix[off + cl] = '/';
        off += cl + 1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `extra` and `rw` come from mounts_git_paths (normalized by construction); `rw` are
 * directories below a read-only extra path that are bound writable again (nested git
 * directories). */
static int walk_all(const char *source, const char *const *paths, char *const *extra,
                    char *const *rw, bool do_mount, struct mounts_guard *guard, char ***ret_missing,
                    dbx_error **err) {
    if (mounts_protected_validate(paths, err) < 0) return -(*err)->code;
    if ((!paths || !paths[0]) && (!extra || !extra[0])) {
        if (ret_missing) *ret_missing = NULL;
        return 0;
    }
    /* Sorted, an ancestor comes before everything below it ("a" < "a/b"), so a path that is
     * protected itself is bound read-only before a longer one could bind it read-write. */
    _cleanup_strv_ char **sorted = NULL;
    for (size_t i = 0; paths && paths[i]; i++)
        sorted = dbx_strv_push(sorted, paths[i]);
    for (size_t i = 0; extra && extra[i]; i++)
        sorted = dbx_strv_push(sorted, extra[i]);
    qsort(sorted, dbx_strv_len(sorted), sizeof(*sorted), cmp_str);

    struct walk w = {.root_fd = -EBADF, .do_mount = do_mount, .rw = rw, .guard = guard};
    w.root_fd = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (w.root_fd < 0) return dbx_error_set(err, errno, "share source '%s'", source);
    int r = 0;
    for (size_t i = 0; sorted[i] && r == 0; i++) {
        if (i > 0 && !strcmp(sorted[i], sorted[i - 1])) continue;
        r = walk_one(&w, sorted[i], err);
    }
    close(w.root_fd);
    dbx_strv_free(w.done);
    if (r == 0 && ret_missing) {
        *ret_missing = TAKE_PTR(w.missing);
    }
    dbx_strv_free(w.missing);
    return r;
}

int mounts_apply_readonly(const char *source, dbx_error **err) {
    _cleanup_close_ int fd = open(source, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return dbx_error_set(err, errno, "share source '%s'", source);
    int tree = bind_self(fd, true, false, source, err);
    if (tree < 0) return tree;
    close(tree);
    return 0;
}

int mounts_apply_protected(const char *source, const char *const *paths, dbx_error **err) {
    return walk_all(source, paths, NULL, NULL, true, NULL, NULL, err);
}

int mounts_protected_scan(const char *source, const char *const *paths, char ***ret_missing,
                          dbx_error **err) {
    return walk_all(source, paths, NULL, NULL, false, NULL, ret_missing, err);
}

int mounts_guard_missing(const char *source, const char *const *paths, struct mounts_guard *g,
                         dbx_error **err) {
    return walk_all(source, paths, NULL, NULL, false, g, NULL, err);
}

/* ---- git directories ----------------------------------------------------------------------- */

/* Below every git directory in the share: what git reads as configuration, as hooks, or as a
 * pointer to another git directory or object store (gitrepository-layout(5), git-config(1)
 * FILES, githooks(5)).  Directories git needs to write (objects, refs, logs) and top-level
 * files it replaces by rename (index, HEAD, packed-refs, ...) are not here. */
static const char *const git_readonly[] = {
    "branches",        /* legacy remote definitions: URLs fetch and push follow */
    "commondir",       /* redirects config, hooks, refs and objects elsewhere */
    "config",          /* core.fsmonitor, core.hooksPath, filters, aliases, ... */
    "config.worktree", /* per-worktree config (extensions.worktreeConfig) */
    "gitdir",          /* a worktree's pointer back to its checkout */
    "hooks",
    "info/attributes", /* filter, diff and merge drivers by path (info/exclude, ignore patterns
                        * that run nothing, stays writable) */
    "info/grafts",     /* rewrites history as git sees it */
    "modules",         /* submodules' git directories (each gets this rule itself) */
    "objects/info/alternates", /* other object stores */
    "objects/info/http-alternates",
    "remotes",   /* legacy remote definitions */
    "worktrees", /* linked worktrees' git directories: commondir, gitdir, config */
    NULL,
};

/* Of git_readonly, what git reads from a worktree entry itself (everything else of a linked
 * worktree, config and hooks included, it reads from the common directory; path.c's
 * common_list): not walked there, so that a link the box planted for a name git never reads in
 * an entry (objects) cannot stop a start.  The name guard refuses the rest there anyway. */
static const char *const entry_readonly[] = {"commondir", "config.worktree", "gitdir", "modules",
                                             NULL};

const char *const *mounts_git_readonly_names(void) {
    return git_readonly;
}

/* Of git_readonly, the directories an empty one of which means the same to git as a missing
 * one: created before the share starts so that the box finds them read-only instead of
 * creating them with content (as `git init` creates hooks/ and info/).  Missing files (say
 * commondir or info/attributes) cannot be covered by a mount: the name guard refuses to create
 * them (mounts-names.c).  Directories end in '/'. */
static const char *const git_placeholders[] = {
    "branches/", "hooks/", "info/", "modules/", "objects/info/", "remotes/", "worktrees/",
};

#define GIT_DEPTH_MAX 8u

int mounts_open_dir_beneath(int root, const char *rel) {
    int dir = fcntl(root, F_DUPFD_CLOEXEC, 3);
    if (dir < 0) return -errno;
    _cleanup_free_ char *copy = dbx_xstrdup(rel);
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        int fd = open_component(dir, c);
        close(dir);
        if (fd < 0) return fd;
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
            close(fd);
            return -ENOTDIR;
        }
        dir = fd;
    }
    /* O_PATH cannot be listed: reopen through the fd itself (no path walk, no link). */
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dir);
    int rd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = errno;
    close(dir);
    return rd < 0 ? -e : rd;
}

bool mounts_is_git_dir(int dfd) {
    struct stat st;
    return fstatat(dfd, "HEAD", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           fstatat(dfd, "objects", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* `name` in git directory `dir` ("": the share's root is one) */
static char *git_path(const char *dir, const char *name) {
    return dir[0] ? dbx_xasprintf("%s/%s", dir, name) : dbx_xstrdup(name);
}

/* The git directories of a share (find_git_dirs). */
struct git_dirs {
    int root;       /* the share, O_PATH */
    char **dirs;    /* each gets the rule: git_readonly below it, the name guard on its top */
    char **rw;      /* of dirs, those bound writable again below a read-only modules/ or
                     * worktrees/ (submodules' git directories, worktree entries) */
    char **entries; /* of dirs, the worktree entries (worktrees/NAME) */
};

static void git_dirs_done(struct git_dirs *g) {
    if (g->root >= 0) close(g->root);
    dbx_strv_free(g->dirs);
    dbx_strv_free(g->rw);
    dbx_strv_free(g->entries);
    *g = (struct git_dirs){.root = -EBADF};
}

/* The subdirectories of `rel` (a directory below the share's root) that are neither links nor
 * `.`/`..`, each passed to `fn` with its fd (closed after), until the cap. */
static void each_subdir(struct git_dirs *g, const char *rel,
                        void (*fn)(struct git_dirs *g, const char *sub, int fd, unsigned depth),
                        unsigned depth) {
    int fd = mounts_open_dir_beneath(g->root, rel);
    if (fd < 0) return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) && dbx_strv_len(g->dirs) < MOUNTS_GIT_DIRS_MAX) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, ".."))) continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue;
        _cleanup_free_ char *sub = dbx_xasprintf("%s/%s", rel, de->d_name);
        if (strlen(sub) >= PATH_MAX - 64) continue;
        int sfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd < 0) continue;
        fn(g, sub, sfd, depth);
        close(sfd);
    }
    closedir(d);
}

static void find_modules(struct git_dirs *g, const char *rel, unsigned depth);

static void module_found(struct git_dirs *g, const char *sub, int fd, unsigned depth) {
    if (mounts_is_git_dir(fd)) {
        if (!strv_contains(g->dirs, sub)) g->dirs = dbx_strv_push(g->dirs, sub);
        g->rw = dbx_strv_push(g->rw, sub); /* below the read-only modules/ */
        _cleanup_free_ char *mods = git_path(sub, "modules");
        find_modules(g, mods, depth + 1);
    } else {
        find_modules(g, sub, depth + 1);
    }
}

/* Submodule git directories below `modules` (`rel`), which may be nested: a submodule named
 * a/b lives in modules/a/b, and a submodule's own submodules in modules/x/modules/y. */
static void find_modules(struct git_dirs *g, const char *rel, unsigned depth) {
    if (depth > GIT_DEPTH_MAX) return;
    each_subdir(g, rel, module_found, depth);
}

/* An entry of the shared git directory's worktrees/ (`git worktree add`): a linked worktree's
 * own git directory, which git finds by the worktree's `.git` file and reads as one (HEAD,
 * index, and as configuration or a pointer: config.worktree, commondir, gitdir, and modules/,
 * where git keeps the worktree's own submodules' git directories).  Only one with a HEAD, as
 * git's own check. */
static void entry_found(struct git_dirs *g, const char *sub, int fd, unsigned depth) {
    struct stat st;
    if (fstatat(fd, "HEAD", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) return;
    if (strv_contains(g->dirs, sub)) return;
    g->dirs = dbx_strv_push(g->dirs, sub);
    g->rw = dbx_strv_push(g->rw, sub);
    g->entries = dbx_strv_push(g->entries, sub);
}

/* The git directories in the share: the root when nested->root (a linked worktree's
 * repository, shared whole) and its worktree entries, `.git` when it is a directory (a `.git`
 * file is a redirection out of the share, protected as a path of its own), the nested ones the
 * walk found (mounts-nested.c), then the submodules' of each, entries included.
 *
 * Entries only of a shared git directory, where the spawner opens the box's own entry again
 * below the read-only worktrees/ (mounts-worktree.c) and the rest stay covered by it.  A
 * workspace's `.git/worktrees/` stays read-only whole: its entries' HEAD, index and logs
 * writable would let the main worktree's `git gc` in the box take their HEAD logs, but also let
 * its `git worktree prune`, to which every linked checkout looks missing from inside the box,
 * delete the worktrees' HEAD and staged index on the host. */
static int find_git_dirs(const char *source, const struct mounts_nested *nested,
                         struct git_dirs *ret, dbx_error **err) {
    struct git_dirs g = {.root = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC)};
    if (g.root < 0) return dbx_error_set(err, errno, "share source '%s'", source);
    if (nested && nested->root) g.dirs = dbx_strv_push(g.dirs, "");
    int fd = mounts_open_dir_beneath(g.root, ".git");
    if (fd >= 0) {
        close(fd);
        g.dirs = dbx_strv_push(g.dirs, ".git");
    } else if (fd != -ENOENT && fd != -ENOTDIR) {
        git_dirs_done(&g);
        return dbx_error_set(err, -fd, "'%s/.git'", source);
    }
    /* every nested one first: the cap below is for submodules and entries, never for these */
    for (size_t i = 0; nested && nested->gitdirs && nested->gitdirs[i]; i++)
        if (!strv_contains(g.dirs, nested->gitdirs[i]))
            g.dirs = dbx_strv_push(g.dirs, nested->gitdirs[i]);
    /* then the entries, before any submodule counts against the cap (an entry the spawner
     * opens again must be under the rule: mounts_apply_protected_git refuses to start if the
     * cap left it out) */
    if (nested && nested->root) each_subdir(&g, "worktrees", entry_found, 0);
    size_t tops = dbx_strv_len(g.dirs);
    for (size_t i = 0; i < tops; i++) {
        _cleanup_free_ char *mods = git_path(g.dirs[i], "modules");
        find_modules(&g, mods, 1);
    }
    *ret = g;
    return 0;
}

bool mounts_git_readonly_covers(const char *gitdir, const char *path) {
    for (size_t k = 0; k < DBX_ARRAY_SIZE(git_readonly) - 1; k++) {
        _cleanup_free_ char *p = git_path(gitdir, git_readonly[k]);
        if (dbx_path_at_or_below(path, p)) return true;
    }
    return false;
}

int mounts_git_paths(const char *source, const struct mounts_nested *nested, char ***ret_readonly,
                     char ***ret_rw, dbx_error **err) {
    struct git_dirs g;
    if (find_git_dirs(source, nested, &g, err) < 0) return -(*err)->code;
    char **ro = NULL;
    for (size_t i = 0; g.dirs && g.dirs[i]; i++) {
        bool entry = strv_contains(g.entries, g.dirs[i]);
        const char *const *names = entry ? entry_readonly : git_readonly;
        for (size_t k = 0; names[k]; k++) {
            _cleanup_free_ char *p = git_path(g.dirs[i], names[k]);
            ro = dbx_strv_push(ro, p);
        }
    }
    /* a nested `.git` file redirects host git as the top's would: read-only, and its
     * directories pinned (a relative path must keep meaning what it meant) */
    for (size_t i = 0; nested && nested->gitfiles && nested->gitfiles[i]; i++)
        ro = dbx_strv_push(ro, nested->gitfiles[i]);
    *ret_readonly = ro;
    *ret_rw = TAKE_PTR(g.rw);
    git_dirs_done(&g);
    return 0;
}

int mounts_guard_dirs(const char *source, const struct mounts_nested *nested,
                      struct mounts_guard *ret, dbx_error **err) {
    struct git_dirs gd;
    if (find_git_dirs(source, nested, &gd, err) < 0) return -(*err)->code;
    struct mounts_guard *g = ret; /* large: filled in place */
    g->n = g->nmissing = 0;
    static const struct {
        const char *sub;
        enum mounts_guard_kind kind;
    } parts[] = {{"", MOUNTS_GUARD_TOP},
                 {"info", MOUNTS_GUARD_INFO},
                 {"objects/info", MOUNTS_GUARD_OBJECTS_INFO}};
    for (size_t i = 0; gd.dirs && gd.dirs[i]; i++) {
        for (size_t k = 0; k < DBX_ARRAY_SIZE(parts) && g->n < MOUNTS_GUARD_DIRS_MAX; k++) {
            _cleanup_free_ char *path =
                parts[k].sub[0] ? git_path(gd.dirs[i], parts[k].sub) : dbx_xstrdup(gd.dirs[i]);
            int fd = mounts_open_dir_beneath(gd.root, path);
            struct stat st;
            if (fd < 0) continue;
            if (fstat(fd, &st) == 0) {
                g->dev[g->n] = st.st_dev;
                g->ino[g->n] = st.st_ino;
                g->kind[g->n++] = parts[k].kind;
            }
            close(fd);
        }
    }
    git_dirs_done(&gd);
    return 0;
}

int mounts_git_prepare(const char *source, const struct mounts_nested *nested, dbx_error **err) {
    struct git_dirs g;
    if (find_git_dirs(source, nested, &g, err) < 0) return -(*err)->code;
    int r = 0;
    for (size_t i = 0; r == 0 && g.dirs && g.dirs[i]; i++) {
        if (strv_contains(g.entries, g.dirs[i])) continue;
        for (size_t k = 0; r == 0 && k < DBX_ARRAY_SIZE(git_placeholders); k++) {
            /* create the last component in its resolved parent, never through a link */
            _cleanup_free_ char *path = git_path(g.dirs[i], git_placeholders[k]);
            size_t len = strlen(path);
            bool dir = path[len - 1] == '/';
            if (dir) path[len - 1] = '\0';
            char *slash = strrchr(path, '/');
            const char *parent = slash ? path : "", *name = slash ? slash + 1 : path;
            if (slash) *slash = '\0';
            int pfd = mounts_open_dir_beneath(g.root, parent);
            if (pfd == -ENOENT || pfd == -ENOTDIR) continue;
            if (pfd < 0) {
                r = dbx_error_set(err, -pfd, "open '%s/%s'", source, parent);
                break;
            }
            int fd =
                dir ? mkdirat(pfd, name, 0755)
                    : openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            /* A git directory we may not write to and do not own (someone else's clone in the
             * workspace), or a read-only or immutable one, the box cannot write to either: its
             * user is us, its other ids are nobody's on the host.  One of ours it could chmod. */
            int e = fd < 0 ? errno : 0;
            struct stat st;
            if (e == EACCES && fstat(pfd, &st) == 0 && st.st_uid != getuid()) e = 0;
            if (e && e != EEXIST && e != EPERM && e != EROFS)
                r = dbx_error_set(err, e, "create '%s/%s%s%s'", source, parent, slash ? "/" : "",
                                  name);
            if (!dir && fd >= 0) close(fd);
            close(pfd);
        }
    }
    git_dirs_done(&g);
    return r;
}

int mounts_apply_protected_git(const char *source, const char *const *paths,
                               const char *const *writable, const struct mounts_nested *nested,
                               dbx_error **err) {
    _cleanup_strv_ char **ro = NULL, **rw = NULL, **keep = NULL;
    if (mounts_git_paths(source, nested, &ro, &rw, err) < 0) return -(*err)->code;
    /* A submodule's git directory or a worktree entry is writable again below the read-only
     * modules/ or worktrees/, unless a path the profile protects covers it: the profile's word
     * is read-only.  Not a path above one of the spawner's islands, which opens what is below
     * it again (a submodule of the worktree whose own entry is the island). */
    for (size_t i = 0; rw && rw[i]; i++) {
        bool covered = false;
        for (size_t k = 0; paths && paths[k] && !covered; k++) {
            covered = dbx_path_at_or_below(rw[i], paths[k]);
            for (size_t w = 0; covered && writable && writable[w]; w++)
                if (dbx_path_at_or_below(rw[i], writable[w]) &&
                    dbx_path_at_or_below(writable[w], paths[k]) &&
                    strcmp(writable[w], paths[k]) != 0)
                    covered = false;
        }
        if (!covered) keep = dbx_strv_push(keep, rw[i]);
    }
    /* the spawner's islands (a worktree's own entry) are writable whatever covers them: the
     * read-only path above them is the spawner's too.  In a shared git directory each must be
     * an entry under the rule (its modules/ read-only, its top under the name guard): one the
     * cap left out, or without a HEAD, would be open whole. */
    for (size_t i = 0; writable && writable[i]; i++) {
        if (nested && nested->root && !strv_contains(rw, writable[i]))
            return dbx_error_setx(err, E2BIG,
                                  "'%s/%s' is not a worktree entry devbox can protect (no HEAD, "
                                  "or more than %u git directories and worktrees in '%s')",
                                  source, writable[i], MOUNTS_GIT_DIRS_MAX, source);
        keep = dbx_strv_push(keep, writable[i]);
    }
    return walk_all(source, paths, ro, keep, true, NULL, NULL, err);
}

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

#include <limits.h>
#include <linux/openat2.h>
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
    bool do_mount;  /* false: only resolve (mounts_protected_scan) */
    char **done;    /* repo-relative paths that are our mount points now */
    char **missing; /* protected paths that do not exist */
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
static int bind_self(int fd, bool ro, const char *what, dbx_error **err) {
    _cleanup_close_ int tree =
        open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0) return dbx_error_set(err, errno, "bind '%s': open_tree", what);
    if (ro) {
        struct mount_attr attr = {.attr_set =
                                      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
        if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
            return dbx_error_set(err, errno, "make '%s' read-only: mount_setattr", what);
    }
    if (move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return dbx_error_set(err, errno, "bind '%s': move_mount", what);
    return TAKE_FD(tree);
}

/* Resolve `path` component by component below the share root.  A symlink anywhere on the way
 * is an error, not something to follow or to skip: following could protect a file outside the
 * share (or a different one inside) while the link itself stays replaceable, and mounts cannot
 * be put on a link, so the only safe answer is to refuse to start.  Each ancestor becomes a
 * read-write mount point (once: w->done), the path itself a read-only one.  A missing path is
 * recorded in w->missing; an ancestor that is not a directory (a worktree's `.git` file)
 * decides where the path would lead, so it is protected read-only in the path's place. */
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
            return 0;
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
            int m = bind_self(fd, leaf, prefix, err);
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

static int walk_all(const char *source, const char *const *paths, bool do_mount,
                    char ***ret_missing, dbx_error **err) {
    if (mounts_protected_validate(paths, err) < 0) return -(*err)->code;
    if (!paths || !paths[0]) {
        if (ret_missing) *ret_missing = NULL;
        return 0;
    }
    /* Sorted, an ancestor comes before everything below it ("a" < "a/b"), so a path that is
     * protected itself is bound read-only before a longer one could bind it read-write. */
    _cleanup_strv_ char **sorted = NULL;
    for (size_t i = 0; paths[i]; i++) sorted = dbx_strv_push(sorted, paths[i]);
    qsort(sorted, dbx_strv_len(sorted), sizeof(*sorted), cmp_str);

    struct walk w = {.root_fd = -EBADF, .do_mount = do_mount};
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

int mounts_apply_protected(const char *source, const char *const *paths, dbx_error **err) {
    return walk_all(source, paths, true, NULL, err);
}

int mounts_protected_scan(const char *source, const char *const *paths, char ***ret_missing,
                          dbx_error **err) {
    return walk_all(source, paths, false, ret_missing, err);
}

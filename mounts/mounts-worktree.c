/* mounts/mounts-worktree.c: a linked worktree's repository (issue 13).  When the workspace's
 * `.git` is a file (`git worktree add`), git in the box needs the main repository's git
 * directory (the "common dir") too: it is shared at its own host path, with the git-directory
 * rule of mounts-protected.c applied to it as a whole (hooks, config, info/attributes,
 * worktrees/, ...), with the worktree's own entry below worktrees/ writable again except for
 * its pointers (commondir, gitdir, config.worktree); the share is marked a git directory
 * (struct mounts_vfs_config.gitdir), so that mounts-protected.c applies the rule to the entry
 * as well (its modules/, where git keeps the worktree's own submodules, with their configs).
 *
 * The chain `.git` -> gitdir -> commondir is repository content (R5): every file is opened
 * without following a symbolic link, every directory walked one component at a time from '/'
 * with no links (mounts_open_dir_beneath), and the result must be what `git worktree add`
 * makes: gitdir = COMMON/worktrees/NAME, COMMON a git directory owned by the invoking user
 * (any place on the host the user owns: repositories live outside home too, in /tmp or /srv;
 * the owner check keeps someone else's repository, which the box could then write, out). */
#define _GNU_SOURCE
#include "mounts-internal.h"

#include <sys/stat.h>

#define POINTER_MAX 4096 /* a `.git` file or commondir: one path */

/* Collapse "//", "." and ".." in an absolute path (lexically: every component is then walked
 * with no symbolic links, so the lexical and the physical meaning agree).  NULL if it climbs
 * above '/' or is not absolute. */
static char *normalize(const char *path) {
    if (path[0] != '/') return NULL;
    _cleanup_free_ char *copy = dbx_xstrdup(path);
    char *out = dbx_xmalloc(strlen(path) + 2);
    size_t len = 0;
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, ".")) continue;
        if (!strcmp(c, "..")) {
            if (len == 0) {
                free(out);
                return NULL;
            }
            while (len > 0 && out[len - 1] != '/')
                len--;
            len--; /* the '/' */
            continue;
        }
        out[len++] = '/';
        memcpy(out + len, c, strlen(c));
        len += strlen(c);
    }
    if (len == 0) out[len++] = '/';
    out[len] = '\0';
    return out;
}

/* One line of a pointer file `name` in dirfd (no link followed), without its newline; a
 * relative value is taken relative to `base`.  *ret normalized and absolute. */
static int read_pointer(int dirfd, const char *name, const char *prefix, const char *base,
                        const char *what, char **ret, dbx_error **err) {
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (dbx_read_file_at(dirfd, name, POINTER_MAX, &buf, &len, err) < 0)
        return dbx_error_wrap(err, "%s", what);
    if (memchr(buf, '\0', len)) return dbx_error_setx(err, EINVAL, "%s: a NUL byte", what);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    const char *v = buf;
    if (prefix) {
        if (strncmp(buf, prefix, strlen(prefix)) != 0)
            return dbx_error_setx(err, EINVAL, "%s: does not start with '%s'", what, prefix);
        v += strlen(prefix);
    }
    if (!v[0] || strchr(v, '\n'))
        return dbx_error_setx(err, EINVAL, "%s: not one path on one line", what);
    _cleanup_free_ char *abs = v[0] == '/' ? dbx_xstrdup(v) : dbx_xasprintf("%s/%s", base, v);
    *ret = normalize(abs);
    if (!*ret) return dbx_error_setx(err, EINVAL, "%s: '%s' is not a usable path", what, v);
    return 0;
}

int mounts_open_dir_nofollow(const char *path, const char *what, dbx_error **err) {
    _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return dbx_error_set(err, errno, "open '/'");
    int fd = mounts_open_dir_beneath(root, path + 1);
    if (fd == -ELOOP)
        return dbx_error_setx(err, ELOOP, "%s '%s' goes through a symbolic link", what, path);
    if (fd < 0) return dbx_error_set(err, -fd, "%s '%s'", what, path);
    return fd;
}

void mounts_worktree_clear(struct mounts_worktree *w) {
    free(w->common);
    free(w->name);
    dbx_strv_free(w->protected);
    dbx_strv_free(w->writable);
    *w = (struct mounts_worktree){0};
}

static int find(const char *source, struct mounts_worktree *w, dbx_error **err) {
    _cleanup_close_ int src = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (src < 0) return dbx_error_set(err, errno, "'%s'", source);
    struct stat st;
    if (fstatat(src, ".git", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        return 0; /* no `.git`, a directory, or a link (the protected-path walk refuses it) */
    _cleanup_free_ char *gitdir = NULL, *common = NULL;
    if (read_pointer(src, ".git", "gitdir: ", source, "its contents", &gitdir, err) < 0) return -1;
    _cleanup_close_ int gfd = mounts_open_dir_nofollow(gitdir, "its git directory", err);
    if (gfd < 0) return -1;
    if (fstatat(gfd, "commondir", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        return 0; /* not a linked worktree (`git init --separate-git-dir`): nothing to add */
    if (read_pointer(gfd, "commondir", NULL, gitdir, "its commondir", &common, err) < 0) return -1;
    _cleanup_close_ int cfd =
        mounts_open_dir_nofollow(common, "its repository's git directory", err);
    if (cfd < 0) return -1;
    if (!mounts_is_git_dir(cfd))
        return dbx_error_setx(err, EINVAL, "'%s' is not a git directory", common);
    _cleanup_free_ char *wt = dbx_xasprintf("%s/worktrees/", common);
    const char *name = gitdir + strlen(wt);
    if (strncmp(gitdir, wt, strlen(wt)) != 0 || !name[0] || strchr(name, '/'))
        return dbx_error_setx(err, EINVAL, "git directory '%s' is not an entry of '%s/worktrees'",
                              gitdir, common);
    if (fstat(cfd, &st) < 0) return dbx_error_set(err, errno, "'%s'", common);
    if (st.st_uid != getuid())
        return dbx_error_setx(err, EPERM, "'%s' belongs to uid %u, not to you", common,
                              (unsigned)st.st_uid);
    if (dbx_path_at_or_below(common, source) || dbx_path_at_or_below(source, common))
        return dbx_error_setx(err, EINVAL, "'%s' and the workspace lie inside one another", common);

    /* The entry must be this worktree's own: its gitdir names our `.git` (`git worktree add`
     * writes it; `git worktree repair` mends it after a move).  Else any directory whose `.git`
     * file names an entry of the user's repository (a tarball made for this user) would get that
     * repository shared into its box, and its trust (sandbox-policy.c).  Compared as files
     * (device and inode, and no other name for ours): git may write the path through a link the
     * canonical root does not have; nothing is read or written through it.  Only in a
     * repository of the user's (checked above): no stat of a path someone else wrote. */
    _cleanup_free_ char *back = NULL;
    if (read_pointer(gfd, "gitdir", NULL, gitdir, "its git directory's gitdir", &back, err) < 0) {
        _cleanup_free_ char *why = dbx_xstrdup((*err)->msg);
        int code = (*err)->code;
        dbx_error_free(err);
        return dbx_error_setx(err, code, "%s (run 'git worktree repair' in it)", why);
    }
    struct stat mine, named;
    if (fstatat(src, ".git", &mine, AT_SYMLINK_NOFOLLOW) < 0 || stat(back, &named) < 0 ||
        mine.st_dev != named.st_dev || mine.st_ino != named.st_ino || mine.st_nlink != 1)
        return dbx_error_setx(err, EINVAL,
                              "'%s/gitdir' names '%s', not this worktree (moved? run "
                              "'git worktree repair' in it)",
                              gitdir, back);

    /* The rule: the git directory's read-only paths, worktrees/ included (else the box could
     * write the pointers of an entry the user adds later, or re-create a pruned one, to lead
     * host git into a config of its own), with this worktree's entry writable again below it
     * (git writes HEAD, index, logs there) but its pointers and config read-only. */
    char **ro = NULL;
    for (const char *const *p = mounts_git_readonly_names(); *p; p++)
        ro = dbx_strv_push(ro, *p);
    static const char *const own[] = {"commondir", "gitdir", "config.worktree"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(own); i++) {
        _cleanup_free_ char *p = dbx_xasprintf("worktrees/%s/%s", name, own[i]);
        ro = dbx_strv_push(ro, p);
    }
    _cleanup_free_ char *island = dbx_xasprintf("worktrees/%s", name);
    w->writable = dbx_strv_push(NULL, island);
    w->common = TAKE_PTR(common);
    w->name = dbx_xstrdup(name);
    w->protected = ro;
    return 0;
}

int mounts_worktree_find(const char *source, struct mounts_worktree *ret, dbx_error **err) {
    *ret = (struct mounts_worktree){0};
    if (find(source, ret, err) < 0) {
        mounts_worktree_clear(ret);
        return dbx_error_wrap(err, "'%s/.git'", source);
    }
    return 0;
}

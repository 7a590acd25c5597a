/* mounts/mounts-nested.c: git directories nested in the work tree, found at the start so that
 * they get the git-directory rule of `.git` (docs/SECURITY.md, "Nested repositories").
 *
 * The superproject's `git status` on the host runs git in every path the index has a gitlink
 * for (the index is the box's to write) that holds a `.git` directory or a `.git` file, with
 * that repository's own config and hooks.  The box cannot make a new one: the name guard
 * refuses the name `.git` anywhere (mounts-names.c).  So what remains are the ones the
 * workspace already has, which this walk finds: `.git` directories (a vendored clone) and
 * `.git` files (a submodule's checkout, `gitdir: ../.git/modules/x`), the file itself being a
 * redirection to protect read-only and the directory it names, when it lies in the workspace,
 * a git directory to protect.
 *
 * It runs as the invoking user before virtiofsd starts, when no box runs against the share (the
 * VM starts after virtiofsd), and reads only names and `.git` files' first bytes: d_type from
 * getdents, no stat per entry, never descending into a git directory (its objects are most of
 * a repository's files) or through a symbolic link.  Everything else is walked: skipping a
 * directory would leave a repository in it writable.  Past the caps the start fails: a
 * repository the walk did not see would keep a writable config. */
#define _GNU_SOURCE
#include "mounts-internal.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

struct nwalk {
    int root;
    const char *source;
    struct mounts_nested_caps caps;
    uint64_t entries;
    char **gitdirs;
    char **gitfiles;
    char **targets;   /* in-workspace directories `.git` files name, checked after the walk */
    char **target_of; /* the `.git` file each of targets came from, for messages */
};

void mounts_nested_free(struct mounts_nested *n) {
    dbx_strv_free(n->gitdirs);
    dbx_strv_free(n->gitfiles);
    n->gitdirs = n->gitfiles = NULL;
}

static char *join(const char *dir, const char *name) {
    return dir[0] ? dbx_xasprintf("%s/%s", dir, name) : dbx_xstrdup(name);
}

static int found(struct nwalk *w, char ***v, const char *path, dbx_error **err) {
    if (dbx_strv_len(w->gitdirs) + dbx_strv_len(w->gitfiles) >= w->caps.found)
        return dbx_error_setx(err, E2BIG,
                              "the workspace has more than %u nested git directories and '.git' "
                              "files (devbox protects each one; the next is '%s')",
                              w->caps.found, path);
    *v = dbx_strv_push(*v, path);
    return 0;
}

/* Pop the last component of a repo-relative path in place. */
static void pop(char *p) {
    char *s = strrchr(p, '/');
    if (s)
        *s = '\0';
    else
        p[0] = '\0';
}

/* A `.git` file's path that leaves the workspace: the host's own symlinks outside it may
 * lead back in, where the box could change what they name. */
static int check_outside(struct nwalk *w, const char *dir, const char *file, const char *gd,
                         dbx_error **err) {
    size_t slen = strlen(w->source);
    _cleanup_free_ char *abs =
        gd[0] == '/' ? dbx_xstrdup(gd)
                     : dbx_xasprintf("%s/%s%s%s", w->source, dir, dir[0] ? "/" : "", gd);
    _cleanup_free_ char *real = realpath(abs, NULL);
    if (real && !strncmp(real, w->source, slen) && (real[slen] == '/' || real[slen] == '\0'))
        return dbx_error_setx(err, ELOOP,
                              "'%s' names a git directory in the workspace by a path outside it "
                              "('%s'): devbox cannot protect it (write the path inside the "
                              "workspace)",
                              file, gd);
    return 0;
}

/* Where the `.git` file `file` (repo-relative, in directory `dir`) points, as git reads it
 * (read_gitfile_gently: "gitdir: " then a path, trailing CR/LF dropped, relative to the file's
 * directory): a repo-relative path in *ret_rel, or NULL when it lies outside the workspace or
 * the file is no redirection git would follow.  Components are resolved one at a time as the
 * kernel would: a symbolic link in the workspace on the way (or a missing component a `..`
 * leaves) is refused, since the box could replace it and so redirect the file; a path that
 * leaves the workspace is canonicalized on the host (the user's own symlinks) and refused if
 * it comes back in. */
static int gitfile_target(struct nwalk *w, int dfd, const char *name, const char *dir,
                          const char *file, char **ret_rel, dbx_error **err) {
    *ret_rel = NULL;
    _cleanup_free_ char *gd = dbx_gitfile_read(dfd, name);
    if (!gd) return 0;

    _cleanup_free_ char *rel = NULL;
    const char *rest = gd;
    size_t slen = strlen(w->source);
    if (gd[0] == '/') {
        if (strncmp(gd, w->source, slen) != 0 || (gd[slen] != '/' && gd[slen] != '\0'))
            return check_outside(w, dir, file, gd, err);
        rel = dbx_xstrdup("");
        rest = gd + slen;
    } else {
        rel = dbx_xstrdup(dir);
    }
    _cleanup_free_ char *copy = dbx_xstrdup(rest);
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, ".")) continue;
        if (!strcmp(c, "..")) {
            if (!rel[0]) return check_outside(w, dir, file, gd, err);
            /* `x/..` is x's parent only if x is a real directory */
            int fd = mounts_open_dir_beneath(w->root, rel);
            if (fd < 0)
                return dbx_error_setx(err, ELOOP,
                                      "'%s' names a git directory through '%s', which is %s: "
                                      "devbox cannot keep the box from redirecting it",
                                      file, rel, fd == -ENOENT ? "missing" : "no plain directory");
            close(fd);
            pop(rel);
            continue;
        }
        char *next = join(rel, c);
        free(rel);
        rel = next;
        if (strlen(rel) >= PATH_MAX) return 0; /* git cannot use it either */
    }
    *ret_rel = TAKE_PTR(rel);
    return 0;
}

static int visit_dotgit(struct nwalk *w, int dfd, const char *dir, const char *name,
                        unsigned char type, dbx_error **err) {
    _cleanup_free_ char *path = join(dir, name);
    if (type == DT_DIR) return found(w, &w->gitdirs, path, err);
    if (type == DT_LNK)
        return dbx_error_setx(err, ELOOP,
                              "'%s' is a symbolic link: devbox cannot keep the box from "
                              "redirecting it (make it a '.git' file, 'gitdir: PATH')",
                              path);
    if (type != DT_REG) return 0; /* git reads neither a fifo nor a device as a git dir */
    if (found(w, &w->gitfiles, path, err) < 0) return -(*err)->code;
    _cleanup_free_ char *target = NULL;
    if (gitfile_target(w, dfd, name, dir, path, &target, err) < 0) return -(*err)->code;
    if (target) {
        w->targets = dbx_strv_push(w->targets, target);
        w->target_of = dbx_strv_push(w->target_of, path);
    }
    return 0;
}

/* Depth-first, one open directory per level. */
static int walk_dir(struct nwalk *w, int dfd, const char *dir, unsigned depth, dbx_error **err) {
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return dbx_error_set(err, e, "read '%s/%s'", w->source, dir);
    }
    int r = 0;
    struct dirent *de;
    while (r == 0 && (errno = 0, de = readdir(d))) {
        const char *n = de->d_name;
        if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]))) continue;
        if (++w->entries > w->caps.entries) {
            r = dbx_error_setx(
                err, E2BIG,
                "the workspace has more than %u files and directories: devbox "
                "looks through all of them at the start for git repositories "
                "to protect, and stops there (docs/SECURITY.md, Nested repositories)",
                w->caps.entries);
            break;
        }
        unsigned char type = de->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
            type = S_ISDIR(st.st_mode)   ? DT_DIR
                   : S_ISLNK(st.st_mode) ? DT_LNK
                   : S_ISREG(st.st_mode) ? DT_REG
                                         : DT_UNKNOWN;
        }
        if (!strcmp(n, ".git")) {
            /* the top's own .git is the git directory rule's (or a protected path) */
            if (depth > 0) r = visit_dotgit(w, dirfd(d), dir, n, type, err);
            continue;
        }
        if (type != DT_DIR) continue;
        _cleanup_free_ char *path = join(dir, n);
        if (depth + 1 > w->caps.depth) {
            r = dbx_error_setx(err, E2BIG,
                               "'%s' is more than %u directories deep: devbox looks through "
                               "the whole workspace at the start for git repositories to "
                               "protect, and stops there (docs/SECURITY.md, Nested repositories)",
                               path, w->caps.depth);
            break;
        }
        int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (sub < 0) {
            struct stat st;
            /* a directory of ours we cannot read, the box (whose files are ours) can chmod */
            if (errno == EACCES && fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                st.st_uid == getuid())
                r = dbx_error_setx(err, EACCES,
                                   "cannot read '%s' to look for git repositories in it "
                                   "(chmod u+rx it)",
                                   path);
            continue; /* gone since, or another user's the box cannot read either */
        }
        r = walk_dir(w, sub, path, depth + 1, err);
    }
    if (r == 0 && errno != 0 && !de) r = dbx_error_set(err, errno, "read '%s/%s'", w->source, dir);
    closedir(d);
    return r;
}

/* Whether the box cannot create `rel`: it lies in something read-only under the rule of one
 * of the git directories, or a `.git` on its way is missing (the name guard refuses it). */
static bool out_of_reach(const struct nwalk *w, const char *rel) {
    if (mounts_git_readonly_covers(".git", rel)) return true;
    for (size_t i = 0; w->gitdirs && w->gitdirs[i]; i++)
        if (mounts_git_readonly_covers(w->gitdirs[i], rel)) return true;
    _cleanup_free_ char *copy = dbx_xstrdup(rel);
    for (char *s = copy; (s = strstr(s, ".git"));) {
        bool comp = (s == copy || s[-1] == '/') && (s[4] == '\0' || s[4] == '/');
        if (comp) {
            char c = s[4];
            s[4] = '\0';
            int fd = mounts_open_dir_beneath(w->root, copy);
            s[4] = c;
            if (fd == -ENOENT) return true;
            if (fd >= 0) close(fd);
        }
        s += 4;
    }
    return false;
}

/* A `.git` file's directory in the workspace is a git directory to protect, or cannot become
 * one; anything else (missing, not a git directory yet, reached through a link) the box could
 * fill in with a config of its own. */
static int check_targets(struct nwalk *w, dbx_error **err) {
    for (size_t i = 0; w->targets && w->targets[i]; i++) {
        const char *t = w->targets[i];
        if (!t[0] || !strcmp(t, ".git")) continue; /* the top, or its .git: their own rules */
        bool dup = false;
        for (size_t k = 0; w->gitdirs && w->gitdirs[k] && !dup; k++)
            dup = !strcmp(w->gitdirs[k], t);
        if (dup) continue;
        int fd = mounts_open_dir_beneath(w->root, t);
        bool git = fd >= 0 && mounts_is_git_dir(fd);
        if (fd >= 0) close(fd);
        if (git) {
            if (found(w, &w->gitdirs, t, err) < 0) return -(*err)->code;
            continue;
        }
        if (fd == -ELOOP)
            return dbx_error_setx(err, ELOOP,
                                  "'%s' names '%s', which is reached through a symbolic link: "
                                  "devbox cannot keep the box from redirecting it",
                                  w->target_of[i], t);
        if (!out_of_reach(w, t))
            return dbx_error_setx(err, ENOENT,
                                  "'%s' names '%s', which is not a git directory: the box could "
                                  "make it one with a config of its own (remove '%s' or restore "
                                  "the git directory)",
                                  w->target_of[i], t, w->target_of[i]);
    }
    return 0;
}

int mounts_nested_find_caps(const char *source, const struct mounts_nested_caps *caps,
                            struct mounts_nested *ret, dbx_error **err) {
    struct nwalk w = {.root = -1, .source = source, .caps = *caps};
    w.root = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (w.root < 0) return dbx_error_set(err, errno, "share source '%s'", source);
    int r = 0;
    int fd = open(source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        r = dbx_error_set(err, errno, "open '%s'", source);
    else
        r = walk_dir(&w, fd, "", 0, err);
    if (r == 0) r = check_targets(&w, err);
    close(w.root);
    dbx_strv_free(w.targets);
    dbx_strv_free(w.target_of);
    if (r < 0) {
        dbx_strv_free(w.gitdirs);
        dbx_strv_free(w.gitfiles);
        return r;
    }
    *ret =
        (struct mounts_nested){.gitdirs = w.gitdirs, .gitfiles = w.gitfiles, .entries = w.entries};
    return 0;
}

int mounts_nested_find(const char *source, struct mounts_nested *ret, dbx_error **err) {
    static const struct mounts_nested_caps caps = {
        .entries = MOUNTS_NESTED_ENTRIES_MAX,
        .depth = MOUNTS_NESTED_DEPTH_MAX,
        .found = MOUNTS_NESTED_MAX,
    };
    return mounts_nested_find_caps(source, &caps, ret, err);
}

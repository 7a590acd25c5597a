/* sandbox/sandbox-lean.c: what the lean client (sandbox/lean-main.c, build/devbox) shares with
 * the full devbox: finding the project's directories, and whether the running box's profile is
 * stale.  Plain libc and common/ only: this file is linked into both binaries, so the two can
 * never disagree on a project's identity (its root and id). */
#define _GNU_SOURCE
#include "sandbox-internal.h"
#include "../common/sha256.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#define PROFILE_FILE_MAX (1u << 20) /* over the profile loader's own limit: differs anyway */

void dbx_project_clear(struct dbx_project *p) {
    if (!p) return;
    free(p->root);
    free(p->cwd);
    free(p->state_dir);
    free(p->data_dir);
    free(p->run_dir);
    *p = (struct dbx_project){0};
}

void dbx_project_fill(const struct dbx_paths *paths, struct dbx_project *p) {
    uint8_t md[32];
    dbx_sha256(p->root, strlen(p->root), md);
    for (int i = 0; i < 8; i++)
        snprintf(p->id + 2 * i, 3, "%02x", md[i]);
    p->state_dir = dbx_xasprintf("%s/projects/%s", paths->state, p->id);
    p->data_dir = dbx_xasprintf("%s/projects/%s", paths->data, p->id);
    p->run_dir = dbx_xasprintf("%s/%s", paths->run, p->id);
}

/* The nearest directory, from `dir` up, holding a `.git` entry (a directory, or a gitfile for
 * worktrees and submodules).  Repo configuration such as core.worktree is deliberately not
 * consulted: the share is a directory the user is in, never one a repo file names. */
static int walk_to_dotgit(const char *dir, char **ret, bool *ret_gitfile) {
    _cleanup_free_ char *d = dbx_xstrdup(dir);
    for (;;) {
        _cleanup_free_ char *dotgit = dbx_xasprintf("%s/.git", strcmp(d, "/") ? d : "");
        struct stat st;
        if (lstat(dotgit, &st) == 0 && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
            *ret_gitfile = S_ISREG(st.st_mode);
            *ret = TAKE_PTR(d);
            return 0;
        }
        char *slash = strrchr(d, '/');
        if (!slash || slash == d) return -ENOENT;
        *slash = '\0';
    }
}

/* path (absolute) in its lexical normal form: no empty or "." components, each ".." taking off
 * the one before it (none above "/"). */
static char *path_lexical(const char *path) {
    char *out = dbx_xstrdup("");
    _cleanup_free_ char *copy = dbx_xstrdup(path);
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, ".")) continue;
        if (!strcmp(c, "..")) {
            char *slash = strrchr(out, '/');
            if (slash) *slash = '\0';
            continue;
        }
        char *n = dbx_xasprintf("%s/%s", out, c);
        free(out);
        out = n;
    }
    if (!out[0]) {
        free(out);
        out = dbx_xstrdup("/");
    }
    return out;
}

/* Where the `.git` file of work tree `wt` points, as git reads it (read_gitfile_gently:
 * "gitdir: " then a path, trailing CR/LF dropped, relative to wt), as an absolute path in its
 * lexical normal form; NULL when it is no such file.  Only compared (submodule_of): nothing is
 * opened through it. */
static char *gitfile_dir(const char *wt) {
    _cleanup_close_ int dfd = open(wt, O_PATH | O_DIRECTORY | O_CLOEXEC);
    _cleanup_free_ char *gd = dfd < 0 ? NULL : dbx_gitfile_read(dfd, ".git");
    if (!gd) return NULL;
    _cleanup_free_ char *abs = gd[0] == '/' ? dbx_xstrdup(gd) : dbx_xasprintf("%s/%s", wt, gd);
    return path_lexical(abs);
}

/* Whether work tree `wt`, whose `.git` is a file, is a submodule's checkout in work tree `outer`
 * (the nearest one above it): its git directory is in outer's `modules/`, where `git submodule`
 * keeps it (outer's `.git` directory, or the git directory outer's own `.git` file names: a
 * linked worktree's entry, the superproject's modules directory for a nested submodule). */
static bool submodule_of(const char *wt, const char *outer, bool outer_gitfile) {
    _cleanup_free_ char *gd = gitfile_dir(wt);
    _cleanup_free_ char *ogd = outer_gitfile
                                   ? gitfile_dir(outer)
                                   : dbx_xasprintf("%s/.git", strcmp(outer, "/") ? outer : "");
    if (!gd || !ogd) return false;
    _cleanup_free_ char *modules = dbx_xasprintf("%s/modules/", strcmp(ogd, "/") ? ogd : "");
    return dbx_str_has_prefix(gd, modules) && gd[strlen(modules)] != '\0';
}

/* The work tree top: the nearest `.git` from `dir` up, except that a submodule's checkout belongs
 * to its superproject, up to the outermost: the project is the repository the user cloned, and
 * its box shares the submodule's git directory with it (in the superproject's `.git/modules`),
 * where a box of the submodule alone could not run git at all.  Only ever a directory above
 * `dir`: what the `.git` files say decides which one, never a path shared. */
static int project_root(const char *dir, char **ret, bool *ret_gitfile) {
    _cleanup_free_ char *d = NULL;
    bool gitfile = false;
    if (walk_to_dotgit(dir, &d, &gitfile) < 0) return -ENOENT;
    while (gitfile && strcmp(d, "/") != 0) {
        _cleanup_free_ char *parent = dbx_xstrdup(d), *outer = NULL;
        char *slash = strrchr(parent, '/');
        slash[slash == parent ? 1 : 0] = '\0';
        bool outer_gitfile = false;
        if (walk_to_dotgit(parent, &outer, &outer_gitfile) < 0 ||
            !submodule_of(d, outer, outer_gitfile))
            break;
        free(d);
        d = TAKE_PTR(outer);
        gitfile = outer_gitfile;
    }
    *ret_gitfile = gitfile;
    *ret = TAKE_PTR(d);
    return 0;
}

int dbx_project_locate(const struct dbx_paths *paths, const char *dir, struct dbx_project *ret,
                       bool *ret_gitfile, dbx_error **err) {
    struct dbx_project p = {0};
    const char *start = dir ? dir : ".";
    p.cwd = realpath(start, NULL);
    /* the shell's directory was removed under it (`rm -rf` from another terminal, a branch
     * switch that dropped it): say so, rather than "'.': No such file or directory" */
    if (!p.cwd && !dir && errno == ENOENT)
        return dbx_error_setx(err, ENOENT,
                              "the current directory no longer exists (deleted or moved): cd to "
                              "the repository again");
    if (!p.cwd) return dbx_error_set(err, errno, "'%s'", start);
    struct stat st;
    if (stat(p.cwd, &st) < 0) {
        int e = errno;
        dbx_project_clear(&p);
        return dbx_error_set(err, e, "'%s'", start);
    }
    if (!S_ISDIR(st.st_mode)) { /* -C FILE (it said only "devbox: 'FILE'") */
        dbx_project_clear(&p);
        return dbx_error_setx(err, ENOTDIR, "'%s' is not a directory", start);
    }
    bool gitfile = false;
    if (project_root(p.cwd, &p.root, &gitfile) < 0) p.root = NULL;
    if (p.root) dbx_project_fill(paths, &p);
    if (ret_gitfile) *ret_gitfile = gitfile;
    *ret = p;
    return 0;
}

/* Variables that change where git looks for a repository.  devbox's own walk ignores them (as
 * the full devbox does for a known project), but a user who sets them may expect otherwise:
 * such a command goes the full way, where libgit2 has the last word on new projects. */
static const char *const git_env[] = {"GIT_DIR",
                                      "GIT_WORK_TREE",
                                      "GIT_CEILING_DIRECTORIES",
                                      "GIT_DISCOVERY_ACROSS_FILESYSTEM",
                                      "GIT_COMMON_DIR",
                                      "GIT_OBJECT_DIRECTORY",
                                      "GIT_NAMESPACE"};

int dbx_project_find_lean(const struct dbx_paths *paths, const char *dir, struct dbx_project *ret,
                          const char **ret_why) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(git_env); i++)
        if (getenv(git_env[i])) {
            *ret_why = git_env[i];
            return -1;
        }
    struct dbx_project p = {0};
    bool gitfile = false;
    if (dbx_project_locate(paths, dir, &p, &gitfile, NULL) < 0) {
        *ret_why = "no such directory";
        return -1;
    }
    const char *why = NULL;
    if (!p.root)
        why = "no .git above the directory";
    else if (gitfile)
        why = ".git is a file";
    else if (strlen(p.root) > 3000)
        why = "project path too long";
    else {
        /* only a project devbox knows: a new one is confirmed by libgit2 (dbx_project_find) */
        _cleanup_free_ char *rec = dbx_xasprintf("%s/project.json", p.state_dir);
        if (access(rec, F_OK) < 0) why = "new project";
    }
    if (why) {
        dbx_project_clear(&p);
        *ret_why = why;
        return -1;
    }
    *ret = p;
    return 0;
}

int dbx_sockaddr(struct sockaddr_un *sa, const char *path, dbx_error **err) {
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return dbx_error_set(err, 0,
                             "socket path '%s' is longer than %zu bytes (use a "
                             "shorter DEVBOX_HOME or XDG_RUNTIME_DIR)",
                             path, sizeof(sa->sun_path) - 1);
    strcpy(sa->sun_path, path);
    return 0;
}

int dbx_supervisor_bad_frame(const struct dbx_frame_hdr *h, dbx_error **err) {
    if (h->version == DBX_PROTO_VERSION) return dbx_error_wrap(err, "from the supervisor");
    return dbx_error_setx(err, EPROTO,
                          "this box was started by another devbox build (its supervisor speaks "
                          "protocol %u, this devbox %u): 'devbox stop' stops it, and the next "
                          "command starts it again",
                          h->version, DBX_PROTO_VERSION);
}

void dbx_restart_notice(const char *why) {
    fprintf(stderr, "devbox: %s; restarting the box\n", why);
}

int dbx_send_failed(int fd, int r, const char *what, dbx_error **err) {
    /* it reads the header before it refuses and closes, so a later write of ours fails; only
     * then (the peer is gone) is there something to read that cannot block */
    struct dbx_frame_hdr h = {.version = DBX_PROTO_VERSION};
    _cleanup_free_ uint8_t *p = NULL;
    _cleanup_error_ dbx_error *why = NULL;
    if ((r == -EPIPE || r == -ECONNRESET) && dbx_read_frame(fd, &h, &p, &why) < 0 && why &&
        h.version != DBX_PROTO_VERSION) {
        if (err) *err = TAKE_PTR(why);
        return -1;
    }
    dbx_error_set(err, -r, "%s", what);
    return -1;
}

int dbx_read_frame(int fd, struct dbx_frame_hdr *h, uint8_t **payload, dbx_error **err) {
    uint8_t hb[DBX_FRAME_HDR];
    size_t got = 0;
    while (got < sizeof(hb)) {
        ssize_t n = read(fd, hb + got, sizeof(hb) - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n == 0 ? -EPIPE : dbx_error_set(err, errno, "read");
        got += (size_t)n;
    }
    dbx_hdr_decode(hb, h);
    if (dbx_hdr_check(h, err) < 0) return dbx_supervisor_bad_frame(h, err);
    uint8_t *p = dbx_xmalloc(h->len + 1);
    for (got = 0; got < h->len;) {
        ssize_t n = read(fd, p + got, h->len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            free(p);
            return n == 0 ? -EPIPE : dbx_error_set(err, errno, "read");
        }
        got += (size_t)n;
    }
    *payload = p;
    return 0;
}

/* send(2) with MSG_NOSIGNAL: a supervisor that closes first (one of another devbox build,
 * refusing the header) is an EPIPE to report, not a SIGPIPE that ends devbox without a word
 * (exit 141). */
static int send_all(int fd, const void *buf, size_t len) {
    const uint8_t *b = buf;
    while (len > 0) {
        ssize_t k = send(fd, b, len, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        b += k;
        len -= (size_t)k;
    }
    return 0;
}

int dbx_send_frame(int fd, uint8_t type, uint32_t session, const void *p, size_t n) {
    uint8_t h[DBX_FRAME_HDR];
    dbx_hdr_encode(h, type, session, (uint32_t)n);
    int r = send_all(fd, h, sizeof(h));
    if (r == 0 && n) r = send_all(fd, p, n);
    return r;
}

/* One repo file into the hash as profiles/ hashes it: "name\0length\0bytes".  Opened below
 * the root without following symlinks; false if it cannot be read (then it changed). */
static bool hash_file(int rootfd, const char *name, struct dbx_sha256 *h) {
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
    _cleanup_close_ int fd = (int)syscall(SYS_openat2, rootfd, name, &how, sizeof(how));
    if (fd < 0) return false;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        dbx_read_all(fd, PROFILE_FILE_MAX, &buf, &len, NULL) < 0)
        return false;
    char lenbuf[32];
    int n = snprintf(lenbuf, sizeof(lenbuf), "%zu", len);
    dbx_sha256_update(h, name, strlen(name) + 1);
    dbx_sha256_update(h, lenbuf, (size_t)n + 1);
    dbx_sha256_update(h, buf, len);
    return true;
}

bool dbx_profile_stale(const struct dbx_project *proj) {
    struct dbx_status st = {0};
    if (dbx_status_read(proj->run_dir, &st) < 0) return false;
    bool stale = false;
    _cleanup_close_ int rootfd = open(proj->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd >= 0 && !st.profile_files) {
        /* started without a devbox.ini: one appeared since? */
        struct stat sb;
        stale = fstatat(rootfd, PROFILE_FILE, &sb, AT_SYMLINK_NOFOLLOW) == 0;
    } else if (rootfd >= 0) {
        struct dbx_sha256 h;
        dbx_sha256_init(&h);
        for (char **f = st.profile_files; *f; f++)
            if (!hash_file(rootfd, *f, &h)) stale = true;
        if (!stale) {
            uint8_t out[32];
            char hex[65];
            dbx_sha256_final(&h, out);
            for (size_t k = 0; k < 32; k++)
                snprintf(hex + 2 * k, 3, "%02x", out[k]);
            stale = strcmp(hex, st.profile_hash) != 0;
        }
    }
    dbx_status_clear(&st);
    return stale;
}
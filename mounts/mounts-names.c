/* mounts/mounts-names.c: which names the box may create at the top of a git directory,
 * enforced in virtiofsd's own system calls.
 *
 * The top of a git directory cannot be read-only (git replaces index, HEAD, packed-refs by
 * rename from a lock file next to them) and a missing name cannot be a mount point, so the
 * mounts of mounts-protected.c cannot stop the box from creating `commondir` (a redirection to
 * another git directory, config and hooks included), `gitdir` or `config.worktree` there.
 * virtiofsd creates every name with one of a few system calls on the parent directory's fd
 * (openat with O_CREAT, mkdirat, mknodat, symlinkat, linkat, renameat2); a seccomp filter
 * installed before its exec hands those to a guard process (its parent) through a
 * user-notification fd.  The guard reads the name from virtiofsd's memory (a copy of the FUSE
 * request in virtiofsd's heap, not guest memory the guest could change under us), resolves the
 * directory fd through /proc, and refuses (EPERM) names outside the allowlists below in the
 * top, info/ and objects/info/ of any git directory the share had when it started.
 * Everything else continues unchanged.  An allowlist, not a denylist: a name git will read
 * tomorrow is refused until added.  The name `.git` is refused everywhere (mounts-nested.c).
 *
 * The same guard keeps missing protected paths missing (`.envrc`, `.vscode`, `devbox.ini` in a
 * repository without them): a mount needs something to mount on, and an empty placeholder is
 * not neutral (an empty `.envrc` is still run by direnv, an empty devbox.ini is a profile).
 * The first missing component of each, in its existing parent directory (pinned as a mount
 * point by mounts-protected.c, so it cannot be renamed away and recreated), is refused to
 * every name-creating call: create, mkdir, mknod, symlink, link and rename onto it.  In any
 * ASCII case, as `.git` is: a case-insensitive file system (vfat, ntfs3, an ext4 directory
 * with casefolding) or a later checkout on macOS or Windows opens `.ENVRC` as `.envrc`, and no
 * tool needs `.ENVRC` on a case-sensitive one.  In a directory that folds case itself, where
 * non-ASCII letters fold onto ASCII ones (U+212A KELVIN SIGN to 'k', U+FB01 to "fi"), a name
 * with any non-ASCII byte next to a missing protected one is refused too.  EPERM, as for the
 * other names this guard refuses: EROFS would say the whole file system is read-only, and
 * tools that see it (package managers, editors' swap files) give up on the tree, while the
 * rest of the directory is writable.
 *
 * Threat model: a hostile guest (its kernel included) speaking FUSE to an honest virtiofsd.
 * The guard checks, then lets the kernel run the call (SECCOMP_USER_NOTIF_FLAG_CONTINUE), which
 * re-reads the name and the directory fd; seccomp_unotify(2) warns that this is no boundary
 * against the target itself, and here it need not be:
 * - the name is in virtiofsd's private memory: it copies every request out of the virtqueue
 *   before parsing it (only a WRITE's payload is used in place in guest memory, and that is
 *   never a name), so the guest cannot change it between our read and the kernel's;
 * - the directory fd is the parent inode's O_PATH fd, on which virtiofsd holds a reference for
 *   the whole request (lo_inode() ... lo_inode_put()), so the guest cannot have it closed and
 *   the number reused for another directory by a FORGET racing the call;
 * - virtiofsd makes these calls directly (no io_uring, which seccomp would not see).
 * A compromised virtiofsd could race both, but it is then past this layer anyway: it holds
 * every file of the share and capabilities in its namespace.  If the guard dies, the listener
 * closes: pending and later filtered calls fail with ENOSYS (none passes unchecked), and
 * virtiofsd dies with it (parent-death signal). */
#define _GNU_SOURCE
#include "mounts-internal.h"

#include <fnmatch.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* Names git itself creates at the top of a git directory (gitrepository-layout(5) and the
 * state files of merge, rebase, am, bisect, cherry-pick, revert, notes, stash, gc): the
 * all-capital ones (HEAD, ORIG_HEAD, FETCH_HEAD, MERGE_*, BISECT_*, COMMIT_EDITMSG, ...; not
 * COMMONDIR or MODULES, which a directory that folds case opens as a name of the rule),
 * lock files, the index and its temporary copies, and these.  None is read as configuration
 * or as a pointer to another git directory. */
/* clang-format off */
static const char *const allowed_globs[] = {
    "*.lock", "index", "index.*", "sharedindex.*", "packed-refs", "packed-refs.*",
    "description", "gc.pid", "gc.log", "shallow", "rr-cache", "rebase-merge", "rebase-apply",
    "sequencer", "logs", "refs", "objects", "lost-found",
    "lfs", "annex",     /* Git LFS's and git-annex's stores */
    ".*", "#*#", "*~",  /* editors' files next to COMMIT_EDITMSG */
};
/* clang-format on */

/* The files git hands to an editor there whose names are not all-capital: the hunk `git add
 * -p` edits and `git add -e`'s patch (the first n bytes of name are one of them). */
static bool edit_file(const char *name, size_t n) {
    return (n == 19 && !strncmp(name, "addp-hunk-edit.diff", n)) ||
           (n == 14 && !strncmp(name, "ADD_EDIT.patch", n));
}

/* In info/: what git writes there (update-server-info's refs and its temporary file,
 * sparse-checkout, exclude); attributes and grafts are not among them. */
static const char *const allowed_info[] = {"refs", "refs_*",          "exclude", "*.lock",
                                           ".*",   "sparse-checkout", "*~"};
/* In objects/info/: commit-graph(s), update-server-info's packs and its temporary file;
 * alternates and http-alternates are not among them. */
static const char *const allowed_objinfo[] = {"commit-graph", "commit-graphs", "packs",
                                              "packs_*",      "*.lock",        ".*"};

static bool match_any(const char *const *globs, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (fnmatch(globs[i], name, FNM_PERIOD) == 0) return true;
    return false;
}

/* the first n bytes are capitals, digits and '_' (git's state files: HEAD, MERGE_MSG, ...) */
static bool caps_only(const char *name, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return false;
    return true;
}

static bool alnum_only(const char *s) {
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

bool mounts_git_name_allowed_in(enum mounts_guard_kind kind, const char *name) {
    if (!name[0] || strchr(name, '/')) return false;
    if (kind == MOUNTS_GUARD_INFO)
        return match_any(allowed_info, DBX_ARRAY_SIZE(allowed_info), name);
    if (kind == MOUNTS_GUARD_OBJECTS_INFO)
        return match_any(allowed_objinfo, DBX_ARRAY_SIZE(allowed_objinfo), name);
    /* never a name of the rule in another case: a directory that folds case (ext4 `chattr +F`,
     * a later checkout on macOS or Windows) opens COMMONDIR as commondir, MODULES as modules */
    for (const char *const *r = mounts_git_readonly_names(); *r; r++) {
        size_t n = strcspn(*r, "/");
        if (strlen(name) == n && strncasecmp(name, *r, n) == 0 && strncmp(name, *r, n) != 0)
            return false;
    }
    size_t n = strlen(name);
    /* In-place editors as GIT_EDITOR (an agent rewording a commit with `sed -i`) write the new
     * text to a temporary file next to the message file, then rename it over (found in use:
     * `GIT_EDITOR='sed -i ...' git rebase -i` stopped: "sed: couldn't open temporary file
     * .git/sedG6QIQj").  mkstemp's six letters or digits after GNU sed's "sed", after perl -i's
     * "XX", and after the edited (all-capital) file's name for BusyBox sed. */
    if ((n == 9 && !strncmp(name, "sed", 3) && alnum_only(name + 3)) ||
        (n == 8 && !strncmp(name, "XX", 2) && alnum_only(name + 2)) ||
        (n > 6 && (caps_only(name, n - 6) || edit_file(name, n - 6)) && alnum_only(name + n - 6)))
        return true;
    return caps_only(name, n) || edit_file(name, n) ||
           match_any(allowed_globs, DBX_ARRAY_SIZE(allowed_globs), name);
}

bool mounts_name_is_dotgit(const char *name) {
    /* the last component, trailing slashes ignored as the kernel does (mkdir ".git/") */
    size_t end = strlen(name);
    while (end > 0 && name[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && name[start - 1] != '/')
        start--;
    return end - start == 4 && strncasecmp(name + start, ".git", 4) == 0;
}

bool mounts_name_caseeq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + ('a' - 'A')) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + ('a' - 'A')) : *b;
        if (x != y) return false;
    }
    return *a == *b;
}

static bool has_non_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return true;
    return false;
}

int mounts_guard_check(const struct mounts_guard *g, const struct stat *dir, const char *name) {
    for (size_t i = 0; i < g->nmissing; i++) {
        const struct mounts_guard_missing *m = &g->missing[i];
        if (m->dev != dir->st_dev || m->ino != dir->st_ino) continue;
        if (mounts_name_caseeq(name, m->name) || (m->casefold && has_non_ascii(name))) return EPERM;
    }
    for (size_t i = 0; i < g->n; i++)
        if (dir->st_dev == g->dev[i] && dir->st_ino == g->ino[i])
            return mounts_git_name_allowed_in(g->kind[i], name) ? 0 : EPERM;
    return 0;
}

bool mounts_git_name_allowed(const char *name) {
    return mounts_git_name_allowed_in(MOUNTS_GUARD_TOP, name);
}

/* ---- the filter (in the process that execs virtiofsd) ---------------------------------------- */

static void seccomp_releasep(scmp_filter_ctx *ctx) {
    if (*ctx) seccomp_release(*ctx);
}

/* More than the filter below compiles to. */
#define GUARD_BPF_MAX 4096u

int mounts_guard_filter_bpf(struct sock_filter **ret, size_t *ret_n, dbx_error **err) {
    _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return dbx_error_setx(err, ENOMEM, "seccomp_init");
    int r = 0;
    struct {
        int nr;
        int flags_arg; /* -1: always */
    } calls[] = {
        {SCMP_SYS(openat), 2},     {SCMP_SYS(open), 1},       {SCMP_SYS(creat), -1},
        {SCMP_SYS(mkdirat), -1},   {SCMP_SYS(mkdir), -1},     {SCMP_SYS(mknodat), -1},
        {SCMP_SYS(mknod), -1},     {SCMP_SYS(symlinkat), -1}, {SCMP_SYS(symlink), -1},
        {SCMP_SYS(linkat), -1},    {SCMP_SYS(link), -1},      {SCMP_SYS(renameat), -1},
        {SCMP_SYS(renameat2), -1}, {SCMP_SYS(rename), -1},
    };
    for (size_t i = 0; r == 0 && i < DBX_ARRAY_SIZE(calls); i++) {
        if (calls[i].flags_arg < 0)
            r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, calls[i].nr, 0);
        else
            r = seccomp_rule_add(
                ctx, SCMP_ACT_NOTIFY, calls[i].nr, 1,
                SCMP_CMP((unsigned)calls[i].flags_arg, SCMP_CMP_MASKED_EQ, O_CREAT, O_CREAT));
    }
    /* openat2 hides its flags behind a pointer; virtiofsd does not use it */
    if (r == 0) r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0);
    if (r < 0) return dbx_error_setx(err, -r, "build the name filter: %s", strerror(-r));
    /* libseccomp 2.5 exports only to an fd */
    _cleanup_close_ int fd = memfd_create("devbox-name-filter", MFD_CLOEXEC);
    if (fd < 0) return dbx_error_set(err, errno, "memfd_create");
    r = seccomp_export_bpf(ctx, fd);
    if (r < 0) return dbx_error_setx(err, -r, "export the name filter: %s", strerror(-r));
    if (lseek(fd, 0, SEEK_SET) < 0) return dbx_error_set(err, errno, "name filter: rewind");
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (dbx_read_all(fd, GUARD_BPF_MAX * sizeof(struct sock_filter), &buf, &len, err) < 0)
        return dbx_error_wrap(err, "name filter");
    if (len == 0 || len % sizeof(struct sock_filter) != 0)
        return dbx_error_setx(err, EIO, "name filter: exported %zu bytes", len);
    *ret = (struct sock_filter *)TAKE_PTR(buf);
    *ret_n = len / sizeof(struct sock_filter);
    return 0;
}

/* ---- the guard ------------------------------------------------------------------------------- */

/* The directory `dirfd` of process pid names, as device and inode. */
static bool dir_id(pid_t pid, uint64_t dirfd, struct stat *ret) {
    char p[64];
    if ((int)dirfd == AT_FDCWD)
        snprintf(p, sizeof(p), "/proc/%d/cwd", (int)pid);
    else if (dirfd <= INT32_MAX)
        snprintf(p, sizeof(p), "/proc/%d/fd/%u", (int)pid, (unsigned)dirfd);
    else
        return false;
    return stat(p, ret) == 0;
}

/* Read a NUL-terminated string of at most size-1 bytes at addr in pid's memory. */
static bool read_name(int mem, uint64_t addr, char *buf, size_t size) {
    size_t got = 0;
    while (got < size - 1) {
        /* never read across a page boundary in one go: the next page may be unmapped */
        size_t room = 4096 - ((addr + got) & 4095);
        size_t want = size - 1 - got < room ? size - 1 - got : room;
        ssize_t n = pread(mem, buf + got, want, (off_t)(addr + got));
        if (n <= 0) return false;
        if (memchr(buf + got, '\0', (size_t)n)) return true;
        got += (size_t)n;
    }
    return false;
}

/* 0 to let the call go on, or the errno to fail it with. */
static int check_one(const struct seccomp_notif *req, int mem, const struct mounts_guard *g,
                     uint64_t dirfd, uint64_t name_addr) {
    char name[PATH_MAX];
    if (!read_name(mem, name_addr, name, sizeof(name))) return EPERM; /* cannot tell: no */
    /* No new git directory or `.git` file anywhere (mounts-nested.c): host git would enter it
     * for a gitlink the box adds to the index and run its config. */
    if (mounts_name_is_dotgit(name)) return EPERM;
    /* virtiofsd passes the guest's names as one component (it refuses '/' in them); a path is
     * its own business (/proc, its pid file). */
    if (strchr(name, '/')) return 0;
    struct stat st;
    if (!dir_id(req->pid, dirfd, &st)) return EPERM;
    return mounts_guard_check(g, &st, name);
}

static int decide(const struct seccomp_notif *req, int mem, const struct mounts_guard *g) {
    const __u64 *a = req->data.args;
    const uint64_t cwd = (uint64_t)(int64_t)AT_FDCWD;
    int nr = req->data.nr;
    if (nr == SCMP_SYS(openat) || nr == SCMP_SYS(mkdirat) || nr == SCMP_SYS(mknodat))
        return check_one(req, mem, g, a[0], a[1]);
    if (nr == SCMP_SYS(open) || nr == SCMP_SYS(creat) || nr == SCMP_SYS(mkdir) ||
        nr == SCMP_SYS(mknod))
        return check_one(req, mem, g, cwd, a[0]);
    if (nr == SCMP_SYS(symlinkat)) return check_one(req, mem, g, a[1], a[2]);
    if (nr == SCMP_SYS(symlink) || nr == SCMP_SYS(link) || nr == SCMP_SYS(rename))
        return check_one(req, mem, g, cwd, a[1]);
    if (nr == SCMP_SYS(linkat) || nr == SCMP_SYS(renameat))
        return check_one(req, mem, g, a[2], a[3]);
    if (nr == SCMP_SYS(renameat2)) {
        int e = check_one(req, mem, g, a[2], a[3]);
        /* an exchange gives the old name the new one's file: both are new names */
        if (!e && (a[4] & RENAME_EXCHANGE)) e = check_one(req, mem, g, a[0], a[1]);
        return e;
    }
    return 0;
}

int mounts_guard_serve(int listener, const struct mounts_guard *g) {
    struct seccomp_notif *req = NULL;
    struct seccomp_notif_resp *resp = NULL;
    if (seccomp_notify_alloc(&req, &resp) < 0) return -ENOMEM;
    struct seccomp_notif_sizes sizes;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) {
        int e = errno;
        seccomp_notify_free(req, resp);
        return -e;
    }
    int ret = 0;
    for (;;) {
        struct pollfd p = {.fd = listener, .events = POLLIN};
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR) continue;
            ret = -errno;
            break;
        }
        if (!(p.revents & POLLIN)) {
            /* POLLHUP: every filtered task is gone */
            ret = p.revents & POLLHUP ? 0 : -EIO;
            break;
        }
        memset(req, 0, sizes.seccomp_notif);
        int r = seccomp_notify_receive(listener, req);
        if (r < 0) {
            /* libseccomp 2.5 reports a failed ioctl as -ECANCELED with errno kept (older ones
             * as -errno).  ENOENT: the call we saw by poll was interrupted by a signal or its
             * task died before we took it; nothing to answer, go on. */
            int e = r == -ECANCELED ? errno : -r;
            if (e == ENOENT || e == EINTR) continue;
            ret = -e;
            break;
        }
        char mp[64];
        snprintf(mp, sizeof(mp), "/proc/%d/mem", (int)req->pid);
        int mem = open(mp, O_RDONLY | O_CLOEXEC);
        int e = mem < 0 ? EPERM : decide(req, mem, g);
        if (mem >= 0) close(mem);
        /* what we read belongs to this request only if it is still pending (the pid could
         * have been reused); otherwise there is nobody to answer */
        if (seccomp_notify_id_valid(listener, req->id) < 0) continue;
        memset(resp, 0, sizes.seccomp_notif_resp);
        resp->id = req->id;
        if (e)
            resp->error = -e;
        else
            resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        (void)seccomp_notify_respond(listener, resp);
    }
    seccomp_notify_free(req, resp);
    return ret;
}

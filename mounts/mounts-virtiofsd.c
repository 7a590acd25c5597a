/* mounts/mounts-virtiofsd.c: start virtiofsd jailed (R9): own mount namespace with a private
 * /run, a user namespace with subordinate (or, as root, high) ids, empty environment, only
 * the vhost-user socket and the log inherited, dead when its parent dies.
 *
 * Flow (both children start through dbx_spawn, so each is exec'd: no fork of ours runs on):
 *   spawner                            guard (`devbox __virtiofsd-guard`)    virtiofsd
 *   dbx_spawn: setsid, fds 0-4 -------> exec'd
 *   setup frame (paths, argv, nested) ->  decode, PDEATHSIG, RLIMIT_NOFILE,
 *                                         unshare(CLONE_NEWUSER)
 *   <-------------------- 'U' ---------
 *   newuidmap/newgidmap PID ...
 *   ---------------------- 'M' ------->  setgroups/setresgid/setresuid(0), mount ns,
 *                                         /run tmpfs, protected paths, guard dirs,
 *                                         no_new_privs, PDEATHSIG again
 *                                         name filter's BPF; dbx_spawn ---> fds 0-3, PDEATHSIG,
 *                                         <----- listener (SCM_RIGHTS) --- seccomp filter
 *                                                                          exec
 *   <------ EOF (exec'd) or 'E' code msg  closes the sync socket, then serves the filter's
 *                                         notifications until virtiofsd exits; exits with
 *                                         its status
 * The spawner's sync channel is a SOCK_CLOEXEC socketpair, which the guard closes once
 * virtiofsd has exec'd (or sends 'E' with what failed, also written to the log, and exits
 * 125).  As host root the same happens; the spawner writes the maps itself instead of
 * newuidmap, so virtiofsd holds capabilities only in its own namespace (none on the host). */
#define _GNU_SOURCE
#include "mounts-internal.h"

#include "../common/spawn.h"

#include <dirent.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define VIRTIOFSD_DEFAULT "/usr/lib/qemu/virtiofsd"
/* The guard's fds, as the spawner maps them: 0, 1 /dev/null, 2 the log (or /dev/null), 3 the
 * vhost-user socket, 4 the sync socket.  virtiofsd gets 0-3 the same; the socket's number is
 * fixed so the spawner can build virtiofsd's argv. */
#define GUARD_LISTEN_FD 3
#define GUARD_SYNC_FD 4
#define MSG_UNSHARED 'U'
#define MSG_MAPPED 'M'
#define MSG_ERROR 'E'
#define MSG_MAX 1024

char *mounts_fuse_opt_escape(const char *s) {
    char *out = dbx_xmalloc(2 * strlen(s) + 1), *o = out;
    for (; *s; s++) {
        if (*s == ',' || *s == '\\') *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

/* ---- descriptors (see mounts.h) ------------------------------------------------------------ */

static uint64_t nr_open(void) {
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    uint64_t v = 0;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, "/proc/sys/fs/nr_open", 64, &buf, &len, &e) < 0) return 0;
    buf[strcspn(buf, "\n")] = '\0';
    if (dbx_parse_u64(buf, 1, UINT32_MAX, &v) < 0) return 0;
    return v;
}

/* The limit to ask for: as root (before any user namespace) the wanted value, else the hard
 * limit.  Never below the current soft limit. */
static struct rlimit nofile_target(void) {
    struct rlimit cur = {1024, 1024};
    (void)getrlimit(RLIMIT_NOFILE, &cur);
    struct rlimit t = {cur.rlim_max, cur.rlim_max};
    if (geteuid() == 0) {
        uint64_t want = MOUNTS_NOFILE_WANT, max = nr_open();
        if (max && want > max) want = max;
        if (want > t.rlim_max) t.rlim_cur = t.rlim_max = want;
    }
    return t;
}

uint64_t mounts_nofile_limit(void) {
    struct rlimit t = nofile_target();
    return t.rlim_cur == RLIM_INFINITY ? UINT64_MAX : t.rlim_cur;
}

struct counter {
    uint64_t n, max;
};

/* Depth-first with one open directory per level; links are counted, never followed. */
static void count_dir(int dfd, unsigned depth, struct counter *c) {
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while (c->n <= c->max && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        c->n++;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) continue;
        if (depth >= 256) continue; /* deeper trees are counted as far as this */
        int sub = openat(dirfd(d), de->d_name,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (sub >= 0) count_dir(sub, depth + 1, c);
    }
    closedir(d);
}

int mounts_count_entries(const char *source, uint64_t max, uint64_t *ret_count, dbx_error **err) {
    int fd = open(source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", source);
    struct counter c = {0, max};
    count_dir(fd, 0, &c);
    *ret_count = c.n;
    return 0;
}

char *mounts_nofile_warning(const char *source) {
    uint64_t limit = mounts_nofile_limit(), n = 0;
    if (limit > MOUNTS_NOFILE_CHECK_MAX) return NULL;
    uint64_t room = limit > MOUNTS_NOFILE_RESERVE ? limit - MOUNTS_NOFILE_RESERVE : 0;
    _cleanup_error_ dbx_error *e = NULL;
    if (mounts_count_entries(source, room, &n, &e) < 0 || n <= room) return NULL;
    return dbx_xasprintf("the workspace has more than %" PRIu64 " files and directories, but "
                         "the share may hold only %" PRIu64 " open (the hard limit on open "
                         "files, ulimit -Hn); commands that walk the whole tree may fail with "
                         "'Too many open files': raise the hard limit (e.g. 'nofile' in "
                         "/etc/security/limits.conf) and run 'devbox stop'",
                         room, limit);
}

/* ---- the setup data (parent -> guard) ------------------------------------------------------ */

/* One frame on the sync socket before the handshake: a u32 length, then the payload:
 *   u32 GUARD_MAGIC, u32 parent pid, str binary, str source, u32 flags (1: read-only,
 *   2: the source is a git directory),
 *   list argv, list protected, list writable, list nested gitdirs, list nested gitfiles
 * where str is a u32 length and that many bytes (no NUL) and list a u32 count and that many
 * strs; integers little-endian, as struct dbx_buf writes them. */
#define GUARD_MAGIC 0x44425847u /* "DBXG" */
#define GUARD_SETUP_MAX (4u << 20)
#define GUARD_STR_MAX (4u * 4096)
#define GUARD_ARGV_MAX 64u
#define GUARD_READONLY 1u
#define GUARD_GITDIR 2u

static void put_list(struct dbx_buf *b, const char *const *v) {
    uint32_t n = 0;
    while (v && v[n])
        n++;
    dbx_buf_put_u32(b, n);
    for (uint32_t i = 0; i < n; i++)
        dbx_buf_put_str(b, v[i]);
}

char *mounts_guard_setup_encode(pid_t parent, const char *binary, const char *source, bool readonly,
                                char *const *argv, const char *const *protected,
                                const char *const *writable, const struct mounts_nested *nested,
                                size_t *ret_len) {
    struct dbx_buf b = {0};
    dbx_buf_put_u32(&b, 0); /* the length, filled in below */
    dbx_buf_put_u32(&b, GUARD_MAGIC);
    dbx_buf_put_u32(&b, (uint32_t)parent);
    dbx_buf_put_str(&b, binary);
    dbx_buf_put_str(&b, source);
    dbx_buf_put_u32(&b, (readonly ? GUARD_READONLY : 0) | (nested->root ? GUARD_GITDIR : 0));
    put_list(&b, (const char *const *)argv);
    put_list(&b, protected);
    put_list(&b, writable);
    put_list(&b, (const char *const *)nested->gitdirs);
    put_list(&b, (const char *const *)nested->gitfiles);
    dbx_put_le(b.data, b.len - sizeof(uint32_t), sizeof(uint32_t));
    *ret_len = b.len;
    return (char *)b.data;
}

struct rbuf {
    const char *p;
    size_t len, off;
};

static int get_u32(struct rbuf *r, uint32_t *ret, const char *what, dbx_error **err) {
    if (r->len - r->off < sizeof(*ret))
        return dbx_error_setx(err, EINVAL, "bad setup data: %s truncated at byte %zu", what,
                              r->off);
    *ret = (uint32_t)dbx_get_le((const uint8_t *)r->p + r->off, sizeof(*ret));
    r->off += sizeof(*ret);
    return 0;
}

static int get_str(struct rbuf *r, char **ret, const char *what, dbx_error **err) {
    uint32_t n = 0;
    if (get_u32(r, &n, what, err) < 0) return -EINVAL;
    if (n > GUARD_STR_MAX)
        return dbx_error_setx(err, EINVAL, "bad setup data: %s of %u bytes (at most %u)", what, n,
                              GUARD_STR_MAX);
    if (r->len - r->off < n)
        return dbx_error_setx(err, EINVAL, "bad setup data: %s truncated at byte %zu", what,
                              r->off);
    if (memchr(r->p + r->off, '\0', n))
        return dbx_error_setx(err, EINVAL, "bad setup data: %s holds a NUL byte", what);
    *ret = dbx_xstrndup(r->p + r->off, n);
    r->off += n;
    return 0;
}

static int get_list(struct rbuf *r, char ***ret, uint32_t max, const char *what, dbx_error **err) {
    uint32_t n = 0;
    if (get_u32(r, &n, what, err) < 0) return -EINVAL;
    if (n > max)
        return dbx_error_setx(err, EINVAL, "bad setup data: %u %s (at most %u)", n, what, max);
    for (uint32_t i = 0; i < n; i++) {
        _cleanup_free_ char *s = NULL;
        if (get_str(r, &s, what, err) < 0) return -EINVAL;
        *ret = dbx_strv_push(*ret, s);
    }
    return 0;
}

void mounts_guard_setup_free(struct mounts_guard_setup *s) {
    free(s->binary);
    free(s->source);
    dbx_strv_free(s->argv);
    dbx_strv_free(s->protected);
    dbx_strv_free(s->writable);
    mounts_nested_free(&s->nested);
    *s = (struct mounts_guard_setup){0};
}

int mounts_guard_setup_decode(const char *buf, size_t len, struct mounts_guard_setup *ret,
                              dbx_error **err) {
    struct rbuf r = {buf, len, 0};
    struct mounts_guard_setup s = {0};
    uint32_t magic = 0, parent = 0;
    int rc = get_u32(&r, &magic, "header", err);
    if (rc == 0 && magic != GUARD_MAGIC)
        rc = dbx_error_setx(err, EINVAL, "bad setup data: magic %#x", magic);
    if (rc == 0) rc = get_u32(&r, &parent, "parent pid", err);
    if (rc == 0 && (parent < 1 || parent > INT32_MAX))
        rc = dbx_error_setx(err, EINVAL, "bad setup data: parent pid %u", parent);
    s.parent = (pid_t)parent;
    if (rc == 0) rc = get_str(&r, &s.binary, "virtiofsd path", err);
    if (rc == 0 && s.binary[0] != '/')
        rc = dbx_error_setx(err, EINVAL, "bad setup data: virtiofsd path is not absolute");
    if (rc == 0) rc = get_str(&r, &s.source, "source", err);
    if (rc == 0 && s.source[0] != '/')
        rc = dbx_error_setx(err, EINVAL, "bad setup data: source is not absolute");
    uint32_t flags = 0;
    if (rc == 0) rc = get_u32(&r, &flags, "flags", err);
    if (rc == 0 && (flags & ~(GUARD_READONLY | GUARD_GITDIR)))
        rc = dbx_error_setx(err, EINVAL, "bad setup data: flags %#x", flags);
    s.readonly = flags & GUARD_READONLY;
    s.nested.root = flags & GUARD_GITDIR;
    if (rc == 0) rc = get_list(&r, &s.argv, GUARD_ARGV_MAX, "virtiofsd arguments", err);
    if (rc == 0 && !s.argv)
        rc = dbx_error_setx(err, EINVAL, "bad setup data: no virtiofsd arguments");
    if (rc == 0) rc = get_list(&r, &s.protected, MOUNTS_PROTECTED_MAX, "protected paths", err);
    /* the spawner validated them; again here, as the guard mounts over each */
    if (rc == 0 && mounts_protected_validate((const char *const *)s.protected, err) < 0)
        rc = dbx_error_wrap(err, "bad setup data");
    if (rc == 0) rc = get_list(&r, &s.writable, MOUNTS_PROTECTED_MAX, "writable paths", err);
    if (rc == 0 && mounts_protected_validate((const char *const *)s.writable, err) < 0)
        rc = dbx_error_wrap(err, "bad setup data");
    if (rc == 0)
        rc = get_list(&r, &s.nested.gitdirs, MOUNTS_NESTED_MAX, "nested git directories", err);
    if (rc == 0) rc = get_list(&r, &s.nested.gitfiles, MOUNTS_NESTED_MAX, "nested .git files", err);
    if (rc == 0 && r.off != r.len)
        rc = dbx_error_setx(err, EINVAL, "bad setup data: %zu bytes left over", r.len - r.off);
    if (rc < 0) {
        mounts_guard_setup_free(&s);
        return rc;
    }
    *ret = s;
    return 0;
}

/* ---- the guard: `devbox __virtiofsd-guard`, started by mounts_virtiofsd_spawn ------------- */

/* Report to the parent (and the log), then exit 125 as mounts.h promises.  The parent gets
 * `code` (EIO if 0); the message gets ": strerror(code)" appended if `suffix`. */
__attribute__((noreturn)) static void guard_vfail(int code, bool suffix, const char *fmt,
                                                  va_list ap) {
    char msg[MSG_MAX];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0) n = 0;
    if (suffix && code && (size_t)n < sizeof(msg))
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(code));
    size_t len = strnlen(msg, sizeof(msg) - 1);

    (void)!dbx_write_all(2, "devbox: virtiofsd setup: ", 25);
    (void)!dbx_write_all(2, msg, len);
    (void)!dbx_write_all(2, "\n", 1);
    int32_t code32 = code ? code : EIO;
    char frame[1 + sizeof(code32) + MSG_MAX];
    frame[0] = MSG_ERROR;
    memcpy(frame + 1, &code32, sizeof(code32));
    memcpy(frame + 1 + sizeof(code32), msg, len);
    (void)!send(GUARD_SYNC_FD, frame, 1 + sizeof(code32) + len, MSG_NOSIGNAL);
    _exit(125);
}

__attribute__((noreturn, format(printf, 2, 3))) static void guard_fail(int errnum, const char *fmt,
                                                                       ...) {
    va_list ap;
    va_start(ap, fmt);
    guard_vfail(errnum, true, fmt, ap);
}

__attribute__((noreturn, format(printf, 2, 3))) static void guard_fail_plain(int code,
                                                                             const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    guard_vfail(code, false, fmt, ap);
}

/* A dbx_error from library code: its message already says why; keep its code. */
__attribute__((noreturn)) static void guard_fail_error(const dbx_error *e) {
    guard_fail_plain(e->code, "%s", e->msg);
}

/* Die with the parent; the check after the prctl closes the race where it already died. */
static void guard_tie_to_parent(pid_t parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) guard_fail(errno, "prctl(PR_SET_PDEATHSIG)");
    if (getppid() != parent) _exit(125);
}

/* len bytes from the sync socket; false on EOF or error (errno set, EPIPE for EOF). */
static bool read_exact(int fd, void *buf, size_t len) {
    for (size_t got = 0; got < len;) {
        ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EPIPE;
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

/* The setup frame, read whole before anything else happens. */
static void guard_read_setup(struct mounts_guard_setup *ret) {
    uint8_t le[4];
    _cleanup_error_ dbx_error *e = NULL;
    if (!read_exact(GUARD_SYNC_FD, le, sizeof(le))) guard_fail(errno, "read the setup data");
    uint32_t len = (uint32_t)dbx_get_le(le, sizeof(le));
    if (len > GUARD_SETUP_MAX)
        guard_fail_plain(EINVAL, "bad setup data: %u bytes (at most %u)", len, GUARD_SETUP_MAX);
    _cleanup_free_ char *buf = dbx_xmalloc(len ? len : 1);
    if (!read_exact(GUARD_SYNC_FD, buf, len)) guard_fail(errno, "read the setup data");
    if (mounts_guard_setup_decode(buf, len, ret, &e) < 0) guard_fail_error(e);
}

static void guard_enter_userns(void) {
    if (unshare(CLONE_NEWUSER) < 0) guard_fail(errno, "unshare(CLONE_NEWUSER)");
    char m = MSG_UNSHARED;
    if (send(GUARD_SYNC_FD, &m, 1, MSG_NOSIGNAL) != 1) _exit(125);
    ssize_t n;
    do
        n = recv(GUARD_SYNC_FD, &m, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n != 1 || m != MSG_MAPPED) _exit(125); /* the parent failed and reports it itself */

    /* Namespace root owns the mount namespace below and is what virtiofsd expects to be. */
    if (setgroups(0, NULL) < 0) guard_fail(errno, "setgroups in the user namespace");
    if (setresgid(0, 0, 0) < 0) guard_fail(errno, "setresgid(0) in the user namespace");
    if (setresuid(0, 0, 0) < 0) guard_fail(errno, "setresuid(0) in the user namespace");
}

static void guard_mount_tmpfs(const char *where) {
    if (mount("tmpfs", where, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m") < 0)
        guard_fail(errno, "mount tmpfs on '%s'", where);
}

/* A private mount namespace where / no longer propagates to the host and /run is our own, so
 * virtiofsd's pid file (/var/run/virtiofsd/...) and lock never touch the real /run. */
static void guard_enter_mountns(const struct mounts_guard_setup *s) {
    if (unshare(CLONE_NEWNS) < 0) guard_fail(errno, "unshare(CLONE_NEWNS)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        guard_fail(errno, "make '/' private");
    guard_mount_tmpfs("/run");
    struct stat st;
    /* Debian's /var/run is a symlink to /run; if it is a real directory somewhere, cover it. */
    if (lstat("/var/run", &st) == 0 && S_ISDIR(st.st_mode)) guard_mount_tmpfs("/var/run");

    /* Before virtiofsd (and its sandbox, which binds the source recursively and pivots into it)
     * starts, so it never serves a writable protected path. */
    _cleanup_error_ dbx_error *e = NULL;
    if (mounts_apply_protected_git(s->source, (const char *const *)s->protected,
                                   (const char *const *)s->writable, &s->nested, &e) < 0)
        guard_fail_error(e);
    /* last: the recursive read-only bind covers the protected paths' mounts too */
    if (s->readonly && mounts_apply_readonly(s->source, &e) < 0) guard_fail_error(e);
}

/* Before entering a user namespace: raising the hard limit needs CAP_SYS_RESOURCE in the
 * initial one.  If the wanted value is refused, soft = hard still works. */
static void guard_raise_nofile(void) {
    struct rlimit t = nofile_target();
    if (setrlimit(RLIMIT_NOFILE, &t) == 0) return;
    struct rlimit cur;
    if (getrlimit(RLIMIT_NOFILE, &cur) < 0) guard_fail(errno, "getrlimit(RLIMIT_NOFILE)");
    cur.rlim_cur = cur.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &cur) < 0) guard_fail(errno, "setrlimit(RLIMIT_NOFILE)");
}

/* The name filter's listener, sent by virtiofsd's process over sock (SCM_RIGHTS: the filter
 * traps name-creating calls, not sendmsg, so no ptrace access to the child is needed).
 * -ECHILD when the child sent nothing (it reported the step that failed, or died). */
static int guard_recv_listener(int sock) {
    char data;
    struct iovec iov = {.iov_base = &data, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    do
        n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (n == 0 || !c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len != CMSG_LEN(sizeof(int)))
        return -ECHILD;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

/* Start virtiofsd under the name filter (built here, before the fork, so its process only
 * loads it) and receive the filter's listener from it.  Returns the listener; *ret_pid
 * virtiofsd's pid.  Failures are reported (and end the guard). */
static int guard_start_virtiofsd(const struct mounts_guard_setup *s, pid_t *ret_pid) {
    _cleanup_error_ dbx_error *e = NULL;
    _cleanup_free_ struct sock_filter *insns = NULL;
    size_t n = 0;
    if (mounts_guard_filter_bpf(&insns, &n, &e) < 0) guard_fail_error(e);
    struct sock_fprog prog = {.len = (unsigned short)n, .filter = insns};
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) guard_fail(errno, "socketpair");
    _cleanup_close_ int ours = sp[0], theirs = sp[1];
    static char *const envp[] = {NULL};
    const struct dbx_spawn_fd fds[] = {
        {0, DBX_SPAWN_DEVNULL}, {1, DBX_SPAWN_DEVNULL}, {2, 2}, {GUARD_LISTEN_FD, GUARD_LISTEN_FD}};
    struct dbx_spawn sp_cfg = {
        .name = "virtiofsd",
        .path = s->binary,
        .argv = s->argv,
        .envp = envp,
        .pdeathsig = SIGKILL,
        .fds = fds,
        .nfds = DBX_ARRAY_SIZE(fds),
        .seccomp = &prog,
        .seccomp_flags = SECCOMP_FILTER_FLAG_NEW_LISTENER,
        .seccomp_listener_sock = theirs,
        .seccomp_listener_w = -1,
        .seccomp_go_r = -1,
        .seccomp_go_w = -1,
    };
    struct dbx_spawn_child child;
    if (dbx_spawn_start(&sp_cfg, &child, &e) < 0) guard_fail_error(e);
    close(TAKE_FD(theirs)); /* EOF once the child exec'd or died */
    int listener = guard_recv_listener(ours);
    if (listener < 0) {
        pid_t pid = child.pid;
        /* the child reported the step that failed, or was killed before sending */
        if (dbx_spawn_finish(&child, &e) < 0) guard_fail_error(e);
        kill(pid, SIGKILL);
        (void)dbx_spawn_wait(pid);
        if (listener == -ECHILD) guard_fail_plain(EIO, "virtiofsd's process died before exec");
        guard_fail(-listener, "receive the name filter's listener");
    }
    *ret_pid = child.pid;
    if (dbx_spawn_finish(&child, &e) < 0) guard_fail_error(e); /* reaped it */
    return listener;
}

/* Answer the name filter's notifications (mounts-names.c) until virtiofsd is gone, then exit
 * with its status.  The spawner's sync socket closes once virtiofsd has exec'd. */
__attribute__((noreturn)) static void guard_serve(pid_t vfs, int listener,
                                                  const struct mounts_guard *g) {
    close(GUARD_LISTEN_FD); /* virtiofsd's, not ours */
    close(GUARD_SYNC_FD);   /* EOF for the spawner: virtiofsd runs */
    prctl(PR_SET_NAME, "virtiofsd-guard");
    int r = mounts_guard_serve(listener, g);
    close(listener); /* from here virtiofsd's name-creating calls fail (ENOSYS), none passes */
    if (r < 0) {
        /* a share that cannot create files is broken: stop it, the supervisor sees it go */
        dprintf(2, "devbox: virtiofsd name guard: %s: stopping virtiofsd\n", strerror(-r));
        kill(vfs, SIGKILL);
    }
    int st = dbx_spawn_wait(vfs);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0));
}

int mounts_virtiofsd_guard_main(int argc, char **argv) {
    struct stat st;
    if (argc != 1 || fstat(GUARD_SYNC_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        static const char m[] = "devbox: __virtiofsd-guard is started by devbox itself\n";
        (void)!write(2, m, sizeof(m) - 1);
        return 125;
    }
    _cleanup_(mounts_guard_setup_free) struct mounts_guard_setup s = {0};
    guard_read_setup(&s);
    guard_tie_to_parent(s.parent);
    guard_raise_nofile();
    guard_enter_userns();
    guard_enter_mountns(&s);

    static struct mounts_guard guard; /* large: not on the stack */
    _cleanup_error_ dbx_error *e = NULL;
    if (mounts_guard_dirs(s.source, &s.nested, &guard, &e) < 0) guard_fail_error(e);
    /* after the mounts: each missing path's parent is a mount point now, its inode fixed */
    if (mounts_guard_missing(s.source, (const char *const *)s.protected, &guard, &e) < 0)
        guard_fail_error(e);

    struct rlimit core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &core) < 0) guard_fail(errno, "setrlimit(RLIMIT_CORE)");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) guard_fail(errno, "prctl(NO_NEW_PRIVS)");
    /* Credential changes clear the parent-death signal: set it again after the last one. */
    guard_tie_to_parent(s.parent);
    pid_t vfs = 0;
    int listener = guard_start_virtiofsd(&s, &vfs);
    guard_serve(vfs, listener, &guard);
}

/* ---- parent -------------------------------------------------------------------------------- */

static char **build_argv(const char *binary, const char *source) {
    _cleanup_free_ char *esc = mounts_fuse_opt_escape(source);
    _cleanup_free_ char *src = dbx_xasprintf("source=%s", esc);
    /* clang-format off */
    const char *const args[] = {
        binary,
        "--fd=3", /* GUARD_LISTEN_FD */
        "-o", src,
        /* Kernel page cache with close-to-open consistency; host edits show up within ~1 s. */
        "-o", "cache=auto",
        /* No xattrs: the guest cannot set security.capability (file caps) or ACLs on host
         * files.  Git and build tools do not need them. */
        "-o", "no_xattr",
        "-o", "announce_submounts",
        /* Keep virtiofsd's own jail (R9): pid/net/mount namespaces, pivot_root, seccomp. */
        "-o", "sandbox=namespace",
        /* Guest root must not create device nodes in the repo (matters when run as host
         * root; in a user namespace the kernel refuses them anyway) nor set file caps. */
        "-o", "modcaps=-mknod:-setfcap",
        /* Warnings and errors only: nothing per request, so a guest cannot make it chatty. */
        "-o", "log_level=warn",
        /* We set RLIMIT_NOFILE ourselves (guard_raise_nofile); virtiofsd's own default would
         * also lower the hard limit to the soft one it picks. */
        "--rlimit-nofile=0",
        NULL,
    };
    /* clang-format on */
    char **v = NULL;
    for (size_t i = 0; args[i]; i++)
        v = dbx_strv_push(v, args[i]);
    return v;
}

/* No SIGPIPE if the guard is gone.  0 or -errno. */
static int send_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read one byte from the child, retrying EINTR.  1, 0 on EOF, -errno. */
static int read_byte(int fd, char *ret) {
    for (;;) {
        ssize_t n = recv(fd, ret, 1, 0);
        if (n >= 0) return (int)n;
        if (errno != EINTR) return -errno;
    }
}

static void reap(pid_t pid, bool kill_it) {
    if (kill_it) kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* The rest of an 'E' frame: code then message, until EOF. */
static int read_child_error(int fd, pid_t pid, dbx_error **err) {
    char buf[sizeof(int32_t) + MSG_MAX + 1];
    size_t len = 0;
    while (len < sizeof(buf) - 1) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    reap(pid, false);
    if (len < sizeof(int32_t)) return dbx_error_setx(err, EIO, "virtiofsd setup failed");
    int32_t code;
    memcpy(&code, buf, sizeof(code));
    buf[len] = '\0';
    if (code <= 0 || code > 4095) code = EIO;
    return dbx_error_setx(err, code, "%s", dbx_sanitize_printable(buf + sizeof(code)));
}

/* As host root: write /proc/PID/{uid,gid}_map ourselves, each in one write as the kernel
 * requires.  setgroups stays allowed (only unprivileged writers of gid_map must deny it), so
 * the child's setgroups(0, NULL) works. */
static int write_map_file(pid_t pid, const char *which, const struct mounts_id_range *r, size_t n,
                          dbx_error **err) {
    char path[64], text[3 * 40];
    size_t len = 0;
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, which);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%u %u %u\n", r[i].inside,
                                r[i].outside, r[i].count);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", path);
    ssize_t w = write(fd, text, len);
    if (w != (ssize_t)len) return dbx_error_set(err, w < 0 ? errno : EIO, "write '%s'", path);
    return 0;
}

static int write_maps(pid_t pid, const struct mounts_idmap *map, dbx_error **err) {
    struct mounts_id_range u[3], g[3];
    size_t nu = mounts_idmap_ranges(map->box_uid, map->uid, map->sub_uid, map->sub_uid_count, u);
    size_t ng = mounts_idmap_ranges(map->box_gid, map->gid, map->sub_gid, map->sub_gid_count, g);
    if (!map->rootless) {
        if (write_map_file(pid, "uid_map", u, nu, err) < 0) return -(*err)->code;
        if (write_map_file(pid, "gid_map", g, ng, err) < 0) return -(*err)->code;
        return 0;
    }
    if (mounts_run_idmap_tool("newuidmap", pid, u, nu, err) < 0) return -(*err)->code;
    if (mounts_run_idmap_tool("newgidmap", pid, g, ng, err) < 0) return -(*err)->code;
    return 0;
}

int mounts_virtiofsd_start(const struct mounts_vfs_config *cfg, const struct mounts_idmap *map,
                           struct mounts_vfs_pending *ret, dbx_error **err) {
    const char *binary = cfg->virtiofsd ? cfg->virtiofsd : VIRTIOFSD_DEFAULT;
    if (!cfg->source || cfg->source[0] != '/')
        return dbx_error_set(err, EINVAL, "share source must be an absolute path");
    if (cfg->listen_fd < 0 || fcntl(cfg->listen_fd, F_GETFD) < 0)
        return dbx_error_set(err, EBADF, "virtiofsd listen fd %d", cfg->listen_fd);
    if (map->rootless != (getuid() != 0))
        return dbx_error_set(err, EINVAL, "id mapping does not match the current user");
    struct stat st;
    if (stat(cfg->source, &st) < 0)
        return dbx_error_set(err, errno, "share source '%s'", cfg->source);
    if (!S_ISDIR(st.st_mode)) return dbx_error_set(err, ENOTDIR, "share source '%s'", cfg->source);
    if (mounts_protected_validate(cfg->protected, err) < 0) return -(*err)->code;
    if (mounts_protected_validate(cfg->writable, err) < 0) return -(*err)->code;
    /* Nested repositories: walked here, as the user, before anything runs against the share
     * (the VM starts after us), so the child can use the list as it is. */
    _cleanup_(mounts_nested_free) struct mounts_nested nested = {0};
    /* A read-only share needs neither (the box writes nothing there) and may be large (a
     * [mounts] data set): no walk, nothing created on the host. */
    if (!cfg->readonly && mounts_nested_find(cfg->source, &nested, err) < 0)
        return dbx_error_wrap(err, "nested git repositories");
    nested.root = cfg->gitdir && !cfg->readonly;
    if (!cfg->readonly && mounts_git_prepare(cfg->source, &nested, err) < 0)
        return dbx_error_wrap(err, "git directory");

    _cleanup_strv_ char **argv = build_argv(binary, cfg->source);
    size_t setup_len = 0;
    _cleanup_free_ char *setup =
        mounts_guard_setup_encode(getpid(), binary, cfg->source, cfg->readonly, argv,
                                  cfg->protected, cfg->writable, &nested, &setup_len);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return dbx_error_set(err, errno, "socketpair");
    _cleanup_close_ int fd = sv[0], guard_fd = sv[1];
    /* The guard is devbox again (`devbox __virtiofsd-guard`, mounts_virtiofsd_guard_main),
     * exec'd: our threads and their locks do not follow it.  Own session: a ^C on the user's
     * terminal must not kill the share under a running VM; the supervisor decides when it
     * stops. */
    static char *const envp[] = {NULL};
    char *const gargv[] = {"devbox", "__virtiofsd-guard", NULL};
    const struct dbx_spawn_fd fds[] = {
        {0, DBX_SPAWN_DEVNULL},
        {1, DBX_SPAWN_DEVNULL},
        {2, cfg->log_fd >= 0 ? cfg->log_fd : DBX_SPAWN_DEVNULL},
        {GUARD_LISTEN_FD, cfg->listen_fd},
        {GUARD_SYNC_FD, guard_fd},
    };
    const struct dbx_spawn gs = {
        .name = "virtiofsd guard",
        .path = cfg->guard_exe ? cfg->guard_exe : "/proc/self/exe",
        .argv = gargv,
        .envp = envp,
        .new_session = true,
        .pdeathsig = SIGKILL,
        .fds = fds,
        .nfds = DBX_ARRAY_SIZE(fds),
    };
    pid_t pid = 0;
    if (dbx_spawn(&gs, &pid, err) < 0) return -(*err)->code;
    close(TAKE_FD(guard_fd));
    /* a frame that fits the socket's buffer (all but huge nested-repository lists) does not
     * wait for the guard to start */
    int r = send_all(fd, setup, setup_len);
    if (r < 0) {
        reap(pid, true);
        return dbx_error_set(err, -r, "virtiofsd setup: sync");
    }
    *ret = (struct mounts_vfs_pending){.pid = pid, .sync_fd = TAKE_FD(fd)};
    return 0;
}

pid_t mounts_virtiofsd_finish(struct mounts_vfs_pending *p, const struct mounts_idmap *map,
                              dbx_error **err) {
    _cleanup_close_ int fd = TAKE_FD(p->sync_fd);
    pid_t pid = p->pid;
    p->pid = -1; /* reaped below on failure, the caller's on success */
    char m = 0;
    int r = read_byte(fd, &m);
    if (r == 1 && m == MSG_UNSHARED) {
        if (write_maps(pid, map, err) < 0) {
            reap(pid, true);
            return -(*err)->code;
        }
        m = MSG_MAPPED;
        if (send(fd, &m, 1, MSG_NOSIGNAL) != 1) {
            int e = errno;
            reap(pid, true);
            return dbx_error_set(err, e, "virtiofsd setup: sync");
        }
        r = read_byte(fd, &m);
    }
    if (r == 0 && m != MSG_MAPPED) r = -EPIPE; /* died before 'U' */
    if (r == 0) {
        /* The socket closes on exec, or when the child dies without a word (a signal). */
        int status = 0;
        pid_t w;
        while ((w = waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR) {
        }
        if (w != pid) return pid; /* virtiofsd runs (or SIGCHLD is ignored: cannot tell) */
        return dbx_error_setx(err, EIO, "virtiofsd exited at once (status 0x%x)", status);
    }
    if (r == 1 && m == MSG_ERROR) return read_child_error(fd, pid, err);
    reap(pid, true);
    if (r < 0) return dbx_error_set(err, -r, "virtiofsd setup: sync");
    return dbx_error_setx(err, EIO, "virtiofsd setup: unexpected message %d", m);
}

pid_t mounts_virtiofsd_spawn(const struct mounts_vfs_config *cfg, const struct mounts_idmap *map,
                             dbx_error **err) {
    struct mounts_vfs_pending p;
    if (mounts_virtiofsd_start(cfg, map, &p, err) < 0) return -(*err)->code;
    return mounts_virtiofsd_finish(&p, map, err);
}

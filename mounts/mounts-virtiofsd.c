/* mounts/mounts-virtiofsd.c: start virtiofsd jailed (R9): own mount namespace with a private
 * /run, a user namespace with subordinate (or, as root, high) ids, empty environment, only
 * the vhost-user socket and the log inherited, dead when its parent dies.
 *
 * Flow:
 *   parent                                   child
 *   fork ------------------------------------> setsid, fds to 0-3, unshare(CLONE_NEWUSER)
 *   <-------------------- 'U' ---------------
 *   newuidmap/newgidmap PID ...
 *   ---------------------- 'M' ------------->  setgroups/setresgid/setresuid(0), mount ns,
 *                                              /run tmpfs, protected paths, PDEATHSIG, exec
 *   <-------- EOF (exec'd) or 'E' code msg ---
 * The sync channel is a SOCK_CLOEXEC socketpair, so a successful exec closes it with no data.
 * As host root the same happens; the parent writes the maps itself instead of newuidmap, so
 * virtiofsd holds capabilities only in its own namespace (none on the host). */
#define _GNU_SOURCE
#include "mounts-internal.h"

#include "../common/spawn.h"

#include <dirent.h>
#include <grp.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define VIRTIOFSD_DEFAULT "/usr/lib/qemu/virtiofsd"
/* Where the vhost-user socket lands in the child; fixed so the argv can be built before fork. */
#define CHILD_LISTEN_FD 3
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

/* ---- child --------------------------------------------------------------------------------- */

struct child {
    const char *binary;
    const char *source;
    const char *const *protected;
    const struct mounts_nested *nested; /* found by the parent before fork */
    char *const *argv;
    const struct mounts_idmap *map;
    pid_t parent;
    int sync_fd;   /* child end of the socketpair (close-on-exec) */
    int listen_fd; /* where the listening socket currently is */
    int log_fd;    /* where the log currently is, or -1 */
};

/* Report to the parent (and the log), then exit 125 as mounts.h promises.  The parent gets
 * `code` (EIO if 0); the message gets ": strerror(code)" appended if `suffix`. */
__attribute__((noreturn)) static void child_vfail(struct child *c, int code, bool suffix,
                                                  const char *fmt, va_list ap) {
    char msg[MSG_MAX];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0) n = 0;
    if (suffix && code && (size_t)n < sizeof(msg))
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(code));
    size_t len = strnlen(msg, sizeof(msg) - 1);

    if (c->log_fd >= 0) {
        (void)!dbx_write_all(c->log_fd, "devbox: virtiofsd setup: ", 25);
        (void)!dbx_write_all(c->log_fd, msg, len);
        (void)!dbx_write_all(c->log_fd, "\n", 1);
    }
    int32_t code32 = code ? code : EIO;
    char frame[1 + sizeof(code32) + MSG_MAX];
    frame[0] = MSG_ERROR;
    memcpy(frame + 1, &code32, sizeof(code32));
    memcpy(frame + 1 + sizeof(code32), msg, len);
    (void)!send(c->sync_fd, frame, 1 + sizeof(code32) + len, MSG_NOSIGNAL);
    _exit(125);
}

__attribute__((noreturn, format(printf, 3, 4))) static void child_fail(struct child *c, int errnum,
                                                                       const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    child_vfail(c, errnum, true, fmt, ap);
}

/* A dbx_error from library code: its message already says why; keep its code. */
__attribute__((noreturn, format(printf, 3, 4))) static void
child_fail_plain(struct child *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    child_vfail(c, code, false, fmt, ap);
}

/* Die with the parent; the check after the prctl closes the race where it already died. */
static void child_tie_to_parent(struct child *c) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail(c, errno, "prctl(PR_SET_PDEATHSIG)");
    if (getppid() != c->parent) _exit(125);
}

/* Signal mask and ignored signals survive exec; virtiofsd must see the defaults. */
static void child_reset_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++) {
        if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
    }
}

/* Give virtiofsd exactly: 0,1 = /dev/null, 2 = log (or /dev/null), 3 = the socket.  Everything
 * else is closed now, except the close-on-exec sync socket (CVE-2024-21626: leaked fds). */
static void child_setup_fds(struct child *c) {
    /* Move the three fds we keep above 3 first so the dup2s below cannot clobber them. */
    int sync = fcntl(c->sync_fd, F_DUPFD_CLOEXEC, CHILD_LISTEN_FD + 1);
    if (sync < 0) child_fail(c, errno, "dup sync fd");
    c->sync_fd = sync;
    int lfd = fcntl(c->listen_fd, F_DUPFD_CLOEXEC, CHILD_LISTEN_FD + 1);
    if (lfd < 0) child_fail(c, errno, "dup listen fd %d", c->listen_fd);
    int log = c->log_fd >= 0 ? fcntl(c->log_fd, F_DUPFD_CLOEXEC, CHILD_LISTEN_FD + 1) : -1;
    if (c->log_fd >= 0 && log < 0) child_fail(c, errno, "dup log fd %d", c->log_fd);
    c->log_fd = log;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) child_fail(c, errno, "open '/dev/null'");

    if (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(log >= 0 ? log : null, 2) < 0 ||
        dup2(lfd, CHILD_LISTEN_FD) < 0)
        child_fail(c, errno, "dup2");
    c->listen_fd = CHILD_LISTEN_FD;
    c->log_fd = 2;
    int keep[] = {c->sync_fd};
    dbx_spawn_close_fds(CHILD_LISTEN_FD + 1, keep, DBX_ARRAY_SIZE(keep));
}

static void child_enter_userns(struct child *c) {
    if (unshare(CLONE_NEWUSER) < 0) child_fail(c, errno, "unshare(CLONE_NEWUSER)");
    char m = MSG_UNSHARED;
    if (send(c->sync_fd, &m, 1, MSG_NOSIGNAL) != 1) _exit(125);
    ssize_t n;
    do
        n = recv(c->sync_fd, &m, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n != 1 || m != MSG_MAPPED) _exit(125); /* the parent failed and reports it itself */

    /* Namespace root owns the mount namespace below and is what virtiofsd expects to be. */
    if (setgroups(0, NULL) < 0) child_fail(c, errno, "setgroups in the user namespace");
    if (setresgid(0, 0, 0) < 0) child_fail(c, errno, "setresgid(0) in the user namespace");
    if (setresuid(0, 0, 0) < 0) child_fail(c, errno, "setresuid(0) in the user namespace");
}

static void child_mount_tmpfs(struct child *c, const char *where) {
    if (mount("tmpfs", where, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m") < 0)
        child_fail(c, errno, "mount tmpfs on '%s'", where);
}

/* A private mount namespace where / no longer propagates to the host and /run is our own, so
 * virtiofsd's pid file (/var/run/virtiofsd/...) and lock never touch the real /run. */
static void child_enter_mountns(struct child *c) {
    if (unshare(CLONE_NEWNS) < 0) child_fail(c, errno, "unshare(CLONE_NEWNS)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        child_fail(c, errno, "make '/' private");
    child_mount_tmpfs(c, "/run");
    struct stat st;
    /* Debian's /var/run is a symlink to /run; if it is a real directory somewhere, cover it. */
    if (lstat("/var/run", &st) == 0 && S_ISDIR(st.st_mode)) child_mount_tmpfs(c, "/var/run");

    /* Before virtiofsd (and its sandbox, which binds the source recursively and pivots into it)
     * starts, so it never serves a writable protected path. */
    _cleanup_error_ dbx_error *e = NULL;
    if (mounts_apply_protected_git(c->source, c->protected, c->nested, &e) < 0)
        child_fail_plain(c, e->code, "%s", e->msg);
}

/* Before entering a user namespace: raising the hard limit needs CAP_SYS_RESOURCE in the
 * initial one.  If the wanted value is refused, soft = hard still works. */
static void child_raise_nofile(struct child *c) {
    struct rlimit t = nofile_target();
    if (setrlimit(RLIMIT_NOFILE, &t) == 0) return;
    struct rlimit cur;
    if (getrlimit(RLIMIT_NOFILE, &cur) < 0) child_fail(c, errno, "getrlimit(RLIMIT_NOFILE)");
    cur.rlim_cur = cur.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &cur) < 0) child_fail(c, errno, "setrlimit(RLIMIT_NOFILE)");
}

/* SCM_RIGHTS: one fd over a socket.  0 or -errno. */
static int send_fd(int sock, int fd) {
    char byte = 'F';
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

static int recv_fd(int sock) {
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    struct cmsghdr *cm = n == 1 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int))) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    return fd;
}

/* The process that execs virtiofsd: dies with the guard, loads the name filter, hands the
 * guard its listener, execs.  Errors go to the spawner as the child's would. */
__attribute__((noreturn)) static void daemon_main(struct child *c, int sock) {
    c->parent = getppid();
    child_tie_to_parent(c);
    _cleanup_error_ dbx_error *e = NULL;
    int lfd = mounts_guard_install(&e);
    if (lfd < 0) child_fail_plain(c, e->code, "%s", e->msg);
    int r = send_fd(sock, lfd);
    if (r < 0) child_fail(c, -r, "hand over the name filter");
    close(lfd);
    char *envp[] = {NULL};
    execve(c->binary, c->argv, envp);
    child_fail(c, errno, "exec '%s'", c->binary);
}

/* Fork virtiofsd's process and stay as its guard (mounts-names.c): answer the filter's
 * notifications until virtiofsd is gone, then exit with its status.  The spawner's sync
 * socket closes once virtiofsd has exec'd (its own copy is close-on-exec; ours is closed
 * here), so the spawner's protocol is unchanged; the pid it returns is the guard's, and
 * killing it kills virtiofsd (parent-death signal). */
__attribute__((noreturn)) static void child_guard_and_exec(struct child *c,
                                                           const struct mounts_guard *g) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        child_fail(c, errno, "socketpair");
    /* Not dbx_spawn: the exec'ing process loads the name filter with libseccomp (which
     * allocates) and hands its listener over a socket.  Safe here: the guard is a forked child
     * of one thread, so it runs no other thread. */
    pid_t d = fork();
    if (d < 0) child_fail(c, errno, "fork");
    if (d == 0) {
        close(sp[0]);
        daemon_main(c, sp[1]);
    }
    close(sp[1]);
    close(CHILD_LISTEN_FD); /* virtiofsd's, not ours */
    int listener = recv_fd(sp[0]);
    /* EOF: virtiofsd exec'd, or its process died (it reported why itself) */
    for (char b;;) {
        ssize_t n = read(sp[0], &b, 1);
        if (n == 0 || (n < 0 && errno != EINTR)) break;
    }
    close(sp[0]);
    if (listener < 0) {
        while (waitpid(d, NULL, 0) < 0 && errno == EINTR) {
        }
        _exit(125);
    }
    close(c->sync_fd);
    prctl(PR_SET_NAME, "virtiofsd-guard");
    int r = mounts_guard_serve(listener, g);
    close(listener); /* from here virtiofsd's name-creating calls fail (ENOSYS), none passes */
    if (r < 0) {
        /* a share that cannot create files is broken: stop it, the supervisor sees it go */
        dprintf(2, "devbox: virtiofsd name guard: %s: stopping virtiofsd\n", strerror(-r));
        kill(d, SIGKILL);
    }
    int st = 0;
    while (waitpid(d, &st, 0) < 0 && errno == EINTR) {
    }
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0));
}

__attribute__((noreturn)) static void child_main(struct child *c) {
    child_tie_to_parent(c);
    child_reset_signals();
    child_raise_nofile(c);
    /* Own session: a ^C on the user's terminal must not kill the share under a running VM;
     * the supervisor decides when it stops. */
    if (setsid() < 0) child_fail(c, errno, "setsid");
    child_setup_fds(c);
    child_enter_userns(c);
    child_enter_mountns(c);

    struct mounts_guard guard;
    _cleanup_error_ dbx_error *e = NULL;
    if (mounts_guard_dirs(c->source, c->nested, &guard, &e) < 0)
        child_fail_plain(c, e->code, "%s", e->msg);

    struct rlimit core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &core) < 0) child_fail(c, errno, "setrlimit(RLIMIT_CORE)");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(c, errno, "prctl(NO_NEW_PRIVS)");
    /* Credential changes clear the parent-death signal: set it again after the last one. */
    child_tie_to_parent(c);
    child_guard_and_exec(c, &guard);
}

/* ---- parent -------------------------------------------------------------------------------- */

static char **build_argv(const char *binary, const char *source) {
    _cleanup_free_ char *esc = mounts_fuse_opt_escape(source);
    _cleanup_free_ char *src = dbx_xasprintf("source=%s", esc);
    /* clang-format off */
    const char *const args[] = {
        binary,
        "--fd=3", /* CHILD_LISTEN_FD */
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
        /* We set RLIMIT_NOFILE ourselves (child_raise_nofile); virtiofsd's own default would
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

pid_t mounts_virtiofsd_spawn(const struct mounts_vfs_config *cfg, const struct mounts_idmap *map,
                             dbx_error **err) {
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
    /* Nested repositories: walked here, as the user, before anything runs against the share
     * (the VM starts after us), so the child can use the list as it is. */
    _cleanup_(mounts_nested_free) struct mounts_nested nested = {0};
    if (mounts_nested_find(cfg->source, &nested, err) < 0)
        return dbx_error_wrap(err, "nested git repositories");
    if (mounts_git_prepare(cfg->source, &nested, err) < 0)
        return dbx_error_wrap(err, "git directory");

    _cleanup_strv_ char **argv = build_argv(binary, cfg->source);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return dbx_error_set(err, errno, "socketpair");
    _cleanup_close_ int fd = sv[0];
    struct child c = {
        .binary = binary,
        .source = cfg->source,
        .protected = cfg->protected,
        .nested = &nested,
        .argv = argv,
        .map = map,
        .parent = getpid(),
        .sync_fd = sv[1],
        .listen_fd = cfg->listen_fd,
        .log_fd = cfg->log_fd,
    };
    /* Not dbx_spawn: this child runs our code (the user namespace handshake above, the mount
     * namespace, mounts_apply_protected_git, mounts_guard_dirs) and then stays, without exec,
     * as virtiofsd's guard.  A fork that does not exec may make only async-signal-safe calls
     * if the process has other threads, and this child allocates; that holds only because
     * the supervisor has no other thread when it calls us: the pull's download thread is
     * joined in prepare(), the passt filter thread starts after us in spawn_vm and is joined
     * by kill_children before a boot is retried, and proxy connection threads exist only
     * after the guest's hello, after which no virtiofsd is started.  Keep it that way (and
     * glibc's fork also resets malloc's locks in the child).  Its fds are really closed, not
     * close-on-exec (dbx_spawn_close_fds): the guard never execs. */
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[1]);
        return dbx_error_set(err, errno, "fork");
    }
    if (pid == 0) {
        close(sv[0]);
        child_main(&c);
    }
    close(sv[1]);

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

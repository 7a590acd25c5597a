/* common/spawn.c: see spawn.h.
 *
 * The shape follows systemd's safe_fork and crun's exec path: signals blocked around fork (no
 * handler of ours runs in the child), every disposition reset in the child, fds moved above the
 * targets before the dup2s, everything else close-on-exec via close_range(2), and a
 * close-on-exec report pipe whose EOF means "exec happened". */
#define _GNU_SOURCE
#include "spawn.h"

#include <linux/capability.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* More than any child needs (QEMU gets 6); keeps the child's fd plan on the stack. */
#define SPAWN_FDS_MAX 32
/* The fallback marks fds close-on-exec one by one up to RLIMIT_NOFILE, capped here. */
#define SPAWN_FD_LIMIT_CAP (1 << 20)

enum step {
    STEP_FORK,
    STEP_SETSID,
    STEP_SETPGID,
    STEP_PDEATHSIG,
    STEP_UNSHARE,
    STEP_SETGROUPS_DENY,
    STEP_UID_MAP,
    STEP_GID_MAP,
    STEP_SECUREBITS,
    STEP_BSET,
    STEP_SETGROUPS,
    STEP_SETRESGID,
    STEP_SETRESUID,
    STEP_AMBIENT,
    STEP_CAPSET,
    STEP_NO_NEW_PRIVS,
    STEP_CHDIR,
    STEP_REPORT,
    STEP_DEVNULL,
    STEP_DUP2,
    STEP_CLOSE,
    STEP_SECCOMP,
    STEP_LISTENER,
    STEP_GO,
    STEP_EXEC,
};

static const char *const step_names[] = {
    [STEP_FORK] = "fork",
    [STEP_SETSID] = "setsid",
    [STEP_SETPGID] = "setpgid",
    [STEP_PDEATHSIG] = "prctl(PR_SET_PDEATHSIG)",
    [STEP_UNSHARE] = "unshare",
    [STEP_SETGROUPS_DENY] = "write '/proc/self/setgroups'",
    [STEP_UID_MAP] = "write '/proc/self/uid_map'",
    [STEP_GID_MAP] = "write '/proc/self/gid_map'",
    [STEP_SECUREBITS] = "prctl(PR_SET_SECUREBITS)",
    [STEP_BSET] = "drop the bounding set",
    [STEP_SETGROUPS] = "setgroups",
    [STEP_SETRESGID] = "setresgid",
    [STEP_SETRESUID] = "setresuid",
    [STEP_AMBIENT] = "clear the ambient set",
    [STEP_CAPSET] = "capset",
    [STEP_NO_NEW_PRIVS] = "prctl(PR_SET_NO_NEW_PRIVS)",
    [STEP_CHDIR] = "chdir",
    [STEP_REPORT] = "move the report pipe",
    [STEP_DEVNULL] = "open '/dev/null'",
    [STEP_DUP2] = "dup2 fd",
    [STEP_CLOSE] = "close fds",
    [STEP_SECCOMP] = "load the seccomp filter",
    [STEP_LISTENER] = "hand over the seccomp listener",
    [STEP_GO] = "wait for the parent",
};

struct report {
    int step;
    int errnum;
    int fd; /* STEP_DUP2: the child's fd */
};

/* Everything the child reads: built by the parent before fork. */
struct plan {
    const struct dbx_spawn *s;
    pid_t parent;
    char **candidates; /* the paths to try, in order */
    char *const *envp;
    int err_w, devnull;
    int max_target; /* highest fd the child keeps (at least 2) */
    int fd_limit;   /* for the fallback of close_range */
};

/* ---- child side: async-signal-safe calls only ------------------------------------------- */

static void __attribute__((noreturn)) child_fail(const struct plan *p, int step, int fd) {
    struct report r = {.step = step, .errnum = errno, .fd = fd};
    (void)!write(p->err_w, &r, sizeof(r));
    _exit(127);
}

static bool write_proc(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    size_t len = 0;
    while (s[len])
        len++;
    bool ok = write(fd, s, len) == (ssize_t)len;
    int e = errno;
    close(fd);
    errno = e;
    return ok;
}

static void child_tie_to_parent(const struct plan *p) {
    if (!p->s->pdeathsig) return;
    if (prctl(PR_SET_PDEATHSIG, p->s->pdeathsig) < 0) child_fail(p, STEP_PDEATHSIG, -1);
    if (getppid() != p->parent) { /* died before the prctl: nobody to serve */
        errno = ESRCH;
        child_fail(p, STEP_PDEATHSIG, -1);
    }
}

static void child_set_ids(const struct plan *p) {
    const struct dbx_spawn *s = p->s;
    if (syscall(SYS_setgroups, 0, NULL) < 0) child_fail(p, STEP_SETGROUPS, -1);
    /* raw syscalls: glibc's wrappers would signal every thread to change it too (setxid) */
    if (syscall(SYS_setresgid, s->gid, s->gid, s->gid) < 0) child_fail(p, STEP_SETRESGID, -1);
    if (syscall(SYS_setresuid, s->uid, s->uid, s->uid) < 0) child_fail(p, STEP_SETRESUID, -1);
}

static void child_identity(const struct plan *p) {
    const struct dbx_spawn *s = p->s;
    if (!s->drop_caps) {
        if (s->set_ids) child_set_ids(p);
    } else {
        if (geteuid() == 0) {
            /* Lock these first: they need CAP_SETPCAP, which is about to go. */
            unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                 SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                                 SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED | SECBIT_KEEP_CAPS_LOCKED;
            if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0) child_fail(p, STEP_SECUREBITS, -1);
            for (unsigned long c = 0; c <= 63; c++)
                if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                    child_fail(p, STEP_BSET, -1);
            if (s->set_ids) child_set_ids(p);
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
            child_fail(p, STEP_AMBIENT, -1);
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
        struct __user_cap_data_struct d[2] = {{0}, {0}};
        if (syscall(SYS_capset, &h, d) < 0) child_fail(p, STEP_CAPSET, -1);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(p, STEP_NO_NEW_PRIVS, -1);
    }
    /* a uid change clears the parent-death signal */
    if (s->set_ids || s->drop_caps) child_tie_to_parent(p);
}

static bool fd_mapped(const struct dbx_spawn *s, int fd) {
    for (size_t i = 0; i < s->nfds; i++)
        if (s->fds[i].child_fd == fd) return true;
    return false;
}

/* Move an fd above every target so no dup2 below can clobber it; reports on failure. */
static int child_lift(struct plan *p, int fd, int step, int arg) {
    int r = fcntl(fd, F_DUPFD_CLOEXEC, p->max_target + 1);
    if (r < 0) child_fail(p, step, arg);
    return r;
}

static void child_fds(struct plan *p, int *listener_sock, int *listener_w, int *go_r) {
    const struct dbx_spawn *s = p->s;
    int src[SPAWN_FDS_MAX];
    p->err_w = child_lift(p, p->err_w, STEP_REPORT, -1);
    if (p->devnull >= 0) p->devnull = child_lift(p, p->devnull, STEP_DEVNULL, -1);
    if (*listener_sock >= 0) *listener_sock = child_lift(p, *listener_sock, STEP_LISTENER, -1);
    if (*listener_w >= 0) *listener_w = child_lift(p, *listener_w, STEP_LISTENER, -1);
    if (*go_r >= 0) *go_r = child_lift(p, *go_r, STEP_GO, -1);
    for (size_t i = 0; i < s->nfds; i++) {
        int from = s->fds[i].parent_fd == DBX_SPAWN_DEVNULL ? p->devnull : s->fds[i].parent_fd;
        src[i] = child_lift(p, from, STEP_DUP2, s->fds[i].child_fd);
    }
    for (size_t i = 0; i < s->nfds; i++)
        if (dup2(src[i], s->fds[i].child_fd) < 0) child_fail(p, STEP_DUP2, s->fds[i].child_fd);
    for (int fd = 0; fd <= p->max_target; fd++) {
        if (fd_mapped(s, fd)) continue;
        if (fd <= 2) {
            if (dup2(p->devnull, fd) < 0) child_fail(p, STEP_DUP2, fd);
        } else {
            close(fd);
        }
    }
    /* Above the targets everything (the lifted copies, the report pipe, whatever the parent
     * left open) closes at exec; marking rather than closing keeps the report pipe usable. */
    unsigned from = (unsigned)p->max_target + 1;
    if (syscall(SYS_close_range, from, ~0u, CLOSE_RANGE_CLOEXEC) == 0) return;
    /* Before Linux 5.11: one fcntl per possible fd (no /proc/self/fd listing: opendir
     * allocates). */
    for (int fd = (int)from; fd < p->fd_limit; fd++)
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 && errno != EBADF) child_fail(p, STEP_CLOSE, -1);
}

/* SCM_RIGHTS by hand: sendmsg and the CMSG macros are async-signal-safe. */
static bool child_send_fd(int sock, int fd) {
    char data = 'L';
    struct iovec iov = {.iov_base = &data, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n;
    do
        n = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == 1;
}

static void child_seccomp(const struct plan *p, int listener_sock, int listener_w, int go_r) {
    const struct dbx_spawn *s = p->s;
    if (!s->seccomp) return;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(p, STEP_NO_NEW_PRIVS, -1);
    int lfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, s->seccomp_flags, s->seccomp);
    if (lfd < 0) child_fail(p, STEP_SECCOMP, -1);
    if (!(s->seccomp_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)) return;
    if (listener_sock >= 0) {
        if (!child_send_fd(listener_sock, lfd)) child_fail(p, STEP_LISTENER, -1);
        close(lfd);
        return;
    }
    /* The parent takes the listener with pidfd_getfd: sending it over a socket could itself be
     * a trapped call that nobody answers yet. */
    if (write(listener_w, &lfd, sizeof(lfd)) != (ssize_t)sizeof(lfd))
        child_fail(p, STEP_LISTENER, -1);
    char go;
    ssize_t n;
    do
        n = read(go_r, &go, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) { /* the parent gave up */
        errno = n < 0 ? errno : EPIPE;
        child_fail(p, STEP_GO, -1);
    }
    close(lfd);
}

static void __attribute__((noreturn)) child_main(struct plan *p) {
    const struct dbx_spawn *s = p->s;
    int listener_sock = s->seccomp_listener_sock, listener_w = s->seccomp_listener_w,
        go_r = s->seccomp_go_r;
    if (!(s->seccomp && (s->seccomp_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)))
        listener_sock = listener_w = go_r = -1;
    else if (listener_sock >= 0)
        listener_w = go_r = -1;
    else if (s->seccomp_go_w >= 0)
        close(s->seccomp_go_w); /* so that the parent closing its end is an EOF here */
    /* Dispositions first (signals are still blocked): ignored signals survive exec, and no
     * handler of the parent's may run here. */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
    if (s->detach) {
        if (setsid() < 0) child_fail(p, STEP_SETSID, -1);
        pid_t pid = _Fork(); /* not fork(): no atfork handlers run in a forked child */
        if (pid < 0) child_fail(p, STEP_FORK, -1);
        if (pid > 0) _exit(0); /* the program is reparented to init (or a subreaper) */
    }
    if (s->new_session && !s->detach && setsid() < 0) child_fail(p, STEP_SETSID, -1);
    if (s->new_pgrp && setpgid(0, 0) < 0) child_fail(p, STEP_SETPGID, -1);
    child_tie_to_parent(p);
    if (s->unshare_flags) {
        if (unshare(s->unshare_flags) < 0) child_fail(p, STEP_UNSHARE, -1);
        if ((s->unshare_flags & CLONE_NEWUSER) && s->uid_map) {
            if (!write_proc("/proc/self/setgroups", "deny")) child_fail(p, STEP_SETGROUPS_DENY, -1);
            if (!write_proc("/proc/self/uid_map", s->uid_map)) child_fail(p, STEP_UID_MAP, -1);
            if (s->gid_map && !write_proc("/proc/self/gid_map", s->gid_map))
                child_fail(p, STEP_GID_MAP, -1);
        }
    }
    child_identity(p);
    if (s->cwd && chdir(s->cwd) < 0) child_fail(p, STEP_CHDIR, -1);
    child_fds(p, &listener_sock, &listener_w, &go_r);
    child_seccomp(p, listener_sock, listener_w, go_r);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char *const *envp = p->envp;
    if (!envp) {
        extern char **environ;
        envp = environ;
    }
    int e = ENOENT;
    bool eacces = false;
    for (size_t i = 0; p->candidates[i]; i++) {
        execve(p->candidates[i], s->argv, envp);
        e = errno;
        if (e == EACCES) eacces = true;
        /* execvpe's rule: these mean "not here", anything else stops the search */
        if (e != ENOENT && e != ENOTDIR && e != EACCES && e != ESTALE && e != ENODEV &&
            e != ETIMEDOUT)
            break;
    }
    errno = eacces && (e == ENOENT || e == ENOTDIR) ? EACCES : e;
    child_fail(p, STEP_EXEC, -1);
}

/* ---- parent side ------------------------------------------------------------------------ */

static const char *env_path(char *const *envp) {
    if (!envp) return getenv("PATH");
    for (size_t i = 0; envp[i]; i++)
        if (dbx_str_has_prefix(envp[i], "PATH=")) return envp[i] + 5;
    return NULL;
}

static char **exec_candidates(const struct dbx_spawn *s, const char *file) {
    char **v = NULL;
    if (!s->search_path || strchr(file, '/')) return dbx_strv_push(v, file);
    const char *path = env_path(s->envp);
    if (!path) path = "/bin:/usr/bin";
    for (const char *d = path;; d++) {
        const char *end = strchrnul(d, ':');
        _cleanup_free_ char *c = end == d ? dbx_xasprintf("./%s", file)
                                          : dbx_xasprintf("%.*s/%s", (int)(end - d), d, file);
        v = dbx_strv_push(v, c);
        if (!*end) break;
        d = end;
    }
    return v;
}

/* The hard limit: fds opened before the soft one was lowered are still there. */
static int fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max > SPAWN_FD_LIMIT_CAP)
        return SPAWN_FD_LIMIT_CAP;
    return (int)rl.rlim_max;
}

int dbx_spawn_start(const struct dbx_spawn *s, struct dbx_spawn_child *ret, dbx_error **err) {
    if (!s->argv || !s->argv[0]) return dbx_error_setx(err, EINVAL, "spawn: no argv");
    const char *file = s->path ? s->path : s->argv[0];
    const char *name = s->name ? s->name : s->argv[0];
    if (s->nfds > SPAWN_FDS_MAX)
        return dbx_error_setx(err, EINVAL, "spawn '%s': more than %d fds", name, SPAWN_FDS_MAX);
    if (s->detach && s->pdeathsig)
        return dbx_error_setx(err, EINVAL, "spawn '%s': a detached child outlives us", name);
    struct plan p = {.s = s, .parent = getpid(), .envp = s->envp, .max_target = 2};
    for (size_t i = 0; i < s->nfds; i++) {
        if (s->fds[i].child_fd < 0)
            return dbx_error_setx(err, EINVAL, "spawn '%s': bad child fd %d", name,
                                  s->fds[i].child_fd);
        if (s->fds[i].child_fd > p.max_target) p.max_target = s->fds[i].child_fd;
        for (size_t j = 0; j < i; j++)
            if (s->fds[j].child_fd == s->fds[i].child_fd)
                return dbx_error_setx(err, EINVAL, "spawn '%s': child fd %d given twice", name,
                                      s->fds[i].child_fd);
    }
    _cleanup_strv_ char **candidates = exec_candidates(s, file);
    p.candidates = candidates;
    p.fd_limit = fd_limit();
    /* /dev/null always: for unlisted 0-2 and DBX_SPAWN_DEVNULL entries */
    _cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) return dbx_error_set(err, errno, "spawn '%s': open '/dev/null'", name);
    p.devnull = devnull;
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "spawn '%s': pipe", name);
    _cleanup_close_ int err_r = pp[0];
    p.err_w = pp[1];

    /* No handler of ours may run in the child before it has reset the dispositions. */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) child_main(&p);
    int fork_errno = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(p.err_w);
    if (pid < 0) return dbx_error_set(err, fork_errno, "spawn '%s': fork", name);
    if (s->detach) {
        /* the intermediate process exits at once (after its fork); the program is not ours */
        (void)dbx_spawn_wait(pid);
        pid = 0;
    }
    *ret = (struct dbx_spawn_child){
        .pid = pid, .err_r = TAKE_FD(err_r), .name = dbx_xstrdup(name), .file = dbx_xstrdup(file)};
    return 0;
}

static void child_clear(struct dbx_spawn_child *c) {
    if (c->err_r >= 0) close(c->err_r);
    c->err_r = -1;
    free(c->name);
    c->name = NULL;
    free(c->file);
    c->file = NULL;
}

int dbx_spawn_finish(struct dbx_spawn_child *c, dbx_error **err) {
    struct report r;
    ssize_t n;
    do
        n = read(c->err_r, &r, sizeof(r));
    while (n < 0 && errno == EINTR);
    int ret = 0;
    if (n != 0) {
        if (c->pid > 0) (void)dbx_spawn_wait(c->pid);
        if (n != (ssize_t)sizeof(r))
            ret = dbx_error_set(err, n < 0 ? errno : EIO, "spawn '%s': read its report", c->name);
        else if (r.step == STEP_EXEC)
            ret = dbx_error_set(err, r.errnum, "exec '%s'", c->file);
        else if (r.step == STEP_DUP2)
            ret = dbx_error_set(err, r.errnum, "spawn '%s': dup2 fd %d", c->name, r.fd);
        else if (r.step >= 0 && r.step < (int)DBX_ARRAY_SIZE(step_names) && step_names[r.step])
            ret = dbx_error_set(err, r.errnum, "spawn '%s': %s", c->name, step_names[r.step]);
        else
            ret = dbx_error_set(err, r.errnum, "spawn '%s': step %d", c->name, r.step);
    }
    child_clear(c);
    return ret;
}

int dbx_spawn_abort(struct dbx_spawn_child *c) {
    int status = 0;
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        status = dbx_spawn_wait(c->pid);
    }
    child_clear(c);
    return status;
}

int dbx_spawn(const struct dbx_spawn *s, pid_t *ret_pid, dbx_error **err) {
    struct dbx_spawn_child c;
    int r = dbx_spawn_start(s, &c, err);
    if (r < 0) return r;
    pid_t pid = c.pid;
    r = dbx_spawn_finish(&c, err);
    if (r < 0) return r;
    if (ret_pid) *ret_pid = pid;
    return 0;
}

int dbx_spawn_wait(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return status;
}

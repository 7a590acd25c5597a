/* guest/init-exec.c: start the command of one EXEC request.
 *
 * The parent prepares everything that can fail without side effects (user lookup,
 * environment, argv, pipes or pty) so the child between fork and exec only makes syscalls.
 * The child reports a failed step to the parent through a close-on-exec pipe: reading EOF
 * means exec succeeded, reading a report means it did not.  The parent waits for that answer
 * before replying STARTED, so the host sees STARTED or ERROR and never both; the wait is as
 * long as the child's own setup (microseconds) and avoids a second state machine. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <elf.h>

#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/sched.h> /* struct clone_args, CLONE_INTO_CGROUP */
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

/* Both ends of the command's stdio.  Parent ends are non-blocking; all are close-on-exec. */
struct stdio_set {
    int master;   /* pty master (parent) or -1 */
    char pts[64]; /* pty slave path */
    int par_in, par_out, par_err;
    int ch_in, ch_out, ch_err;
};

/* What the child needs, prepared by the parent. */
struct child_plan {
    const char *file; /* a path, or a name to look up in PATH */
    char *const *argv;
    char *const *envp;
    const char *path; /* PATH of the new environment */
    const char *cwd;
    const struct stdio_set *io;
    const struct init_user *user;
    const struct box_policy *box;
    uint64_t caps; /* policy_caps_for the user (and DBX_EXEC_ADMIN) */
    mode_t umask;  /* the request's (the client's own) */
    bool switch_ids;
    int report_fd;
    int cg_procs_fd;     /* the session's leaf cgroup.procs, or -1 */
    int mnt_fd;          /* the command's copy of the mount template, made ahead, or -1 */
    const char *cg_line; /* what /proc/self/cgroup must say there, or NULL */
    uint64_t *stamps;    /* DBX_EXEC_TIMING: the shared page's exec_times.t, else NULL */
    /* Making the spare process (struct spare_proc): no stdio and no chdir (the command brings
     * them); once verified, exec this binary (spare_exe, O_PATH) with spare_argv, keeping
     * spare_sock open across that exec. */
    bool spare;
    int spare_exe, spare_sock;
    const char *spare_fdarg; /* spare_sock in decimal */
};

/* ---- timing (DBX_EXEC_TIMING) ----------------------------------------------------------- */

uint64_t exec_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The child's steps go to a page it shares with init (one exec starts at a time: init waits
 * for each child's verdict), mapped at the first timed exec and kept. */
static uint64_t *child_stamps(void) {
    static struct exec_times *page;
    if (!page) {
        void *m =
            mmap(NULL, sizeof(*page), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return NULL;
        page = m;
    }
    memset(page, 0, sizeof(*page));
    return page->t;
}

static inline void stamp(const struct child_plan *p, int step) {
    if (p->stamps) p->stamps[step] = exec_now_us();
}

/* TIMING's keys: the duration from the previous step reached to this one. */
static const char *const time_keys[T_N_] = {
    [T_DISPATCH] = "g_queue", [T_DECODED] = "g_decode", [T_USER] = "g_user",
    [T_STDIO] = "g_stdio",    [T_CGROUP] = "g_cgroup",  [T_SENT] = "g_send",
    [T_WAKE] = "g_wake",      [T_CHILD] = "g_fork",     [T_JOIN] = "g_join",
    [T_MOUNTS] = "g_mounts",  [T_ENTER] = "g_enter",    [T_IDS] = "g_ids",
    [T_CAPS] = "g_caps",      [T_CHDIR] = "g_chdir",    [T_LOCK] = "g_lock",
    [T_EXECVE] = "g_verify",  [T_EOF] = "g_execve",     [T_STARTED] = "g_started",
    [T_REAPED] = "g_run",     [T_EXIT] = "g_exit",
};

void exec_times_send(struct agent *a, const struct session *s) {
    uint64_t *t = s->times->t;
    t[T_EXIT] = exec_now_us();
    struct dbx_timing tm = {0};
    uint64_t prev = t[T_RX];
    for (int i = T_RX + 1; i < T_N_; i++) {
        if (!t[i] || !prev) continue;
        dbx_timing_add(&tm, time_keys[i], t[i] >= prev ? t[i] - prev : 0);
        prev = t[i];
    }
    dbx_timing_add(&tm, "g_total", t[T_EXIT] >= t[T_RX] ? t[T_EXIT] - t[T_RX] : 0);
    struct dbx_buf b = {0};
    dbx_timing_encode(&tm, &b);
    agent_send(a, DBX_MSG_TIMING, s->id, b.data, b.len);
    dbx_buf_free(&b);
}

static void closep_set(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static void stdio_close(struct stdio_set *io) {
    closep_set(&io->master);
    closep_set(&io->par_in);
    closep_set(&io->par_out);
    closep_set(&io->par_err);
    closep_set(&io->ch_in);
    closep_set(&io->ch_out);
    closep_set(&io->ch_err);
}

static int open_pty(struct stdio_set *io, const struct dbx_exec_req *req, dbx_error **err) {
    io->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (io->master < 0) return dbx_error_set(err, errno, "open pty master '/dev/ptmx'");
    if (grantpt(io->master) < 0 || unlockpt(io->master) < 0)
        return dbx_error_set(err, errno, "unlock pty");
    int r = ptsname_r(io->master, io->pts, sizeof(io->pts));
    if (r != 0) return dbx_error_set(err, r, "ptsname");
    if (req->rows || req->cols) {
        struct winsize ws = {.ws_row = req->rows, .ws_col = req->cols};
        if (ioctl(io->master, TIOCSWINSZ, &ws) < 0)
            return dbx_error_set(err, errno, "set pty size");
    }
    r = dbx_set_nonblock(io->master, true);
    return r < 0 ? dbx_error_set(err, -r, "pty master") : 0;
}

/* A pipe whose parent end (read end when parent_reads) is non-blocking. */
static int open_pipe(int *par, int *ch, bool parent_reads, dbx_error **err) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    *par = parent_reads ? p[0] : p[1];
    *ch = parent_reads ? p[1] : p[0];
    int r = dbx_set_nonblock(*par, true);
    return r < 0 ? dbx_error_set(err, -r, "pipe") : 0;
}

static int stdio_open(struct stdio_set *io, const struct dbx_exec_req *req, dbx_error **err) {
    if (req->flags & DBX_EXEC_TTY) return open_pty(io, req, err);
    if (open_pipe(&io->par_out, &io->ch_out, true, err) < 0) return -1;
    /* DBX_EXEC_MERGED: no pipe of its own; the command's stderr is its stdout (child_stdio) */
    if (!(req->flags & DBX_EXEC_MERGED) && open_pipe(&io->par_err, &io->ch_err, true, err) < 0)
        return -1;
    if ((req->flags & DBX_EXEC_STDIN) && open_pipe(&io->par_in, &io->ch_in, false, err) < 0)
        return -1;
    return 0;
}

/* ---- child ------------------------------------------------------------------------------ */

static _Noreturn void child_report_fail(const struct child_plan *p, const struct child_report *r) {
    (void)!write(p->report_fd, r, sizeof(*r));
    _exit(r->step != STEP_EXEC ? DBX_ERR_FAILED
          : r->err == ENOENT   ? DBX_ERR_NOT_FOUND
                               : DBX_ERR_NOT_EXEC);
}

static _Noreturn void child_fail(const struct child_plan *p, int step, int e) {
    struct child_report r = {.step = step, .err = e};
    child_report_fail(p, &r);
}

static void child_stdio(const struct child_plan *p) {
    const struct stdio_set *io = p->io;
    int in = io->ch_in, out = io->ch_out, errfd = io->ch_err >= 0 ? io->ch_err : io->ch_out;
    if (io->master >= 0) {
        /* After setsid() we have no controlling terminal; make the slave ours so job control
         * and ^C work.  O_NOCTTY + TIOCSCTTY makes that explicit rather than implicit. */
        int fd = open(io->pts, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) child_fail(p, STEP_TTY, errno);
        if (ioctl(fd, TIOCSCTTY, 0) < 0) child_fail(p, STEP_TTY, errno);
        in = out = errfd = fd;
    } else if (in < 0) {
        in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in < 0) child_fail(p, STEP_STDIO, errno);
    }
    /* init keeps fds 0-2 open, so every source here is > 2 and dup2 never clobbers one. */
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0) child_fail(p, STEP_STDIO, errno);
}

/* Whether a stat says path is not there, which execve would say too.  The PATH search skips such
 * a name without execve: Linux 6.1's execve builds the new process's memory and copies argv and
 * the environment before it opens the file (6.8 opens first), so a miss cost 110 us and a stat
 * 12 in the box under TCG (2026-12-04), and `true` misses 5 of the default PATH's 6
 * directories.  Any other answer (the name is there, EACCES, a denied stat) goes to execve as
 * before, so the search's order and errors stay execvpe's. */
static bool path_absent(const char *path) {
    struct stat st;
    return stat(path, &st) < 0 && (errno == ENOENT || errno == ENOTDIR);
}

/* execvpe() without its /bin/sh fallback for ENOEXEC, using the new environment's PATH.  On
 * ENOENT, *ret_there is the first file that was there and still gave ENOENT (its interpreter
 * is what is missing), or "" when none was. */
static int child_exec(const struct child_plan *p, char ret_there[PATH_MAX]) {
    const char *f = p->file;
    ret_there[0] = '\0';
    if (f[0] == '\0') return ENOENT;
    if (strchr(f, '/')) {
        execve(f, p->argv, p->envp);
        int e = errno;
        if (e == ENOENT && strlen(f) < PATH_MAX && !path_absent(f)) strcpy(ret_there, f);
        return e;
    }
    bool eacces = false;
    size_t flen = strlen(f);
    for (const char *d = p->path;;) {
        const char *end = strchrnul(d, ':');
        size_t dl = (size_t)(end - d);
        char buf[PATH_MAX];
        /* an empty PATH element means the current directory */
        if (dl + flen + 2 <= sizeof(buf) &&
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)(dl ? dl : 1), dl ? d : ".", f) > 0 &&
            !path_absent(buf)) {
            execve(buf, p->argv, p->envp);
            switch (errno) {
            case EACCES:
                eacces = true;
                break;
            case ENOENT:
                if (!ret_there[0]) strcpy(ret_there, buf); /* it was there a moment ago */
                break;
            case ENOTDIR:
            case ESTALE:
            case ENODEV:
            case ETIMEDOUT:
            case ENAMETOOLONG:
                break;
            default:
                return errno;
            }
        }
        if (*end == '\0') break;
        d = end + 1;
    }
    return eacces ? EACCES : ENOENT;
}

/* s (n bytes) into out as text: \r as the two characters \r, other control bytes as \xNN. */
static void interp_show(const char *s, size_t n, char *out, size_t size) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            o += (size_t)snprintf(out + o, size - o, "\\r");
        else if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

/* Why execve said ENOENT of `path`, a file that is there: the interpreter it names is not (a #!
 * line, or an ELF program's loader).  Found in use: a script with Windows line endings failed
 * with "exec './build.sh': No such file or directory", of a file the user could see; bash says
 * "cannot execute: required file not found".  Written into msg ("" when it cannot tell).  The
 * child shares init's memory: the stack only, no allocation. */
static void exec_why_missing(const char *path, bool searched, char *msg, size_t size) {
    msg[0] = '\0';
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    /* binfmt_script reads 256 bytes of the #! line (BINPRM_BUF_SIZE) */
    char head[256], interp[256] = "";
    ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? pread(fd, head, sizeof(head), 0) : -1;
    size_t len = 0;
    bool script = n >= 2 && head[0] == '#' && head[1] == '!';
    if (script) { /* as binfmt_script: blanks after #!, then up to a blank or the line's end */
        size_t i = 2;
        while (i < (size_t)n && (head[i] == ' ' || head[i] == '\t'))
            i++;
        while (i < (size_t)n && head[i] != ' ' && head[i] != '\t' && head[i] != '\n' &&
               head[i] != '\0' && len < sizeof(interp) - 1)
            interp[len++] = head[i++];
        /* the file's end ends the name (the kernel's buffer is zeroed past it); the buffer's
         * does not: the kernel refused that line (ENOEXEC), so it cannot be ours to judge */
        if (i == sizeof(head)) len = 0;
    } else if ((size_t)n >= sizeof(Elf64_Ehdr) && memcmp(head, ELFMAG, SELFMAG) == 0 &&
               head[EI_CLASS] == ELFCLASS64 && head[EI_DATA] == ELFDATA2LSB) {
        Elf64_Ehdr eh;
        memcpy(&eh, head, sizeof(eh));
        /* the box's own machine only (the guest is x86-64): another machine's program is a
         * binfmt_misc handler's, not a loader's */
        for (uint16_t i = 0; eh.e_machine == EM_X86_64 && i < eh.e_phnum && i < 64 &&
                             eh.e_phentsize >= sizeof(Elf64_Phdr);
             i++) {
            Elf64_Phdr ph;
            if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
                (ssize_t)sizeof(ph))
                break;
            if (ph.p_type != PT_INTERP) continue;
            if (ph.p_filesz > 1 && ph.p_filesz <= sizeof(interp)) {
                ssize_t k = pread(fd, interp, (size_t)ph.p_filesz - 1, (off_t)ph.p_offset);
                len = k > 0 ? strnlen(interp, (size_t)k) : 0;
            }
            break;
        }
    }
    close(fd);
    if (len == 0) return;
    interp[len] = '\0';
    if (!path_absent(interp)) return; /* there: what is missing is further down */
    char shown[sizeof(interp) * 4 + 1];
    interp_show(interp, len, shown, sizeof(shown));
    /* found on PATH: which file it was (the name alone does not say) */
    int k = searched ? snprintf(msg, size, "'%.64s%s': ", path, strlen(path) > 64 ? "..." : "") : 0;
    size_t off = k > 0 && (size_t)k < size ? (size_t)k : 0;
    msg += off;
    size -= off;
    if (script)
        snprintf(msg, size, "its #! line names '%.120s', which is not in the box%s", shown,
                 interp[len - 1] == '\r' ? " (the line ends in \\r: Windows line endings)" : "");
    else
        snprintf(msg, size,
                 "it is an ELF program whose loader '%.120s' is not in the box (built for "
                 "another system?)",
                 shown);
}

/* The exec failed with e: the report, with exec_why_missing's reason when it has one. */
static _Noreturn void child_exec_fail(const struct child_plan *p, int e, const char *there) {
    struct child_report r = {.step = STEP_EXEC, .err = e};
    if (e == ENOENT && there[0])
        exec_why_missing(there, !strchr(p->file, '/'), r.msg, sizeof(r.msg));
    child_report_fail(p, &r);
}

/* chdir(cwd) failed with EACCES: find the first directory from / down that this user cannot
 * enter (chdir into each ancestor in turn; we are about to fail anyway), so the error names
 * it instead of only the target (an image whose / is 0700 locks the box user out of
 * everything, and "chdir: Permission denied" does not say why). */
static void child_find_blocked(const char *cwd, struct child_report *r) {
    char buf[PATH_MAX];
    size_t n = strlen(cwd);
    if (n >= sizeof(buf) || cwd[0] != '/') return;
    for (size_t i = 1; i <= n; i++) {
        /* the prefixes "/", "/a", "/a/b", ...: the root, then up to each later '/' or the end */
        if (i > 1 && i < n && cwd[i] != '/') continue;
        if (i > 1 && cwd[i - 1] == '/')
            continue; /* "//" or a trailing '/': same directory as the prefix before */
        memcpy(buf, cwd, i);
        buf[i] = '\0';
        size_t len = i;
        if (chdir(buf) == 0) continue;
        struct stat st;
        if (errno != EACCES || stat(buf, &st) < 0) return;
        r->dir_len = (uint32_t)len;
        r->dir_mode = st.st_mode & 07777;
        r->dir_uid = st.st_uid;
        r->dir_gid = st.st_gid;
        r->uid = geteuid();
        return;
    }
}

/* What a process of the box's user can change in another of its processes without ptrace
 * (prlimit, setpriority, sched_setscheduler, sched_setaffinity, ioprio_set), which every later
 * command would inherit from the spare.  Read by the spare's maker while still root (no box
 * process may touch it then) and again once it checked the policy, as the user; the two must
 * agree, and the second goes to the spare in its argv.  Each command's child compares its own
 * with that before its exec.  A difference means a box process changed the spare; the command
 * then starts the ordinary way, and the spare is used no more. */
struct spare_state {
    struct rlimit rl[RLIM_NLIMITS];
    int nice, policy, ioprio, oom;
    cpu_set_t cpus;
};
static struct spare_state spare_checked;
/* The spare's /proc/self/oom_score_adj, opened when it starts: a box process running as root (a
 * daemon a `-u root` command left) may raise it.  Each command's child reads it through this
 * descriptor (a pread; a /proc/self lookup costs 0.2 ms in a new process under TCG) in the
 * moment after its fork, when its own still is the spare's. */
static int spare_oom_fd = -1;

static void spare_state_read(struct spare_state *st) {
    memset(st, 0, sizeof(*st));
    char buf[16] = {0};
    _cleanup_close_ int own =
        spare_oom_fd >= 0 ? -EBADF : open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
    int fd = spare_oom_fd >= 0 ? spare_oom_fd : own;
    st->oom = fd >= 0 && pread(fd, buf, sizeof(buf) - 1, 0) > 0 ? atoi(buf) : -100000;
    for (int i = 0; i < RLIM_NLIMITS; i++)
        (void)getrlimit((__rlimit_resource_t)i, &st->rl[i]);
    errno = 0;
    st->nice = getpriority(PRIO_PROCESS, 0);
    st->policy = sched_getscheduler(0);
    st->ioprio = (int)syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
    (void)sched_getaffinity(0, sizeof(st->cpus), &st->cpus);
}

/* The spare process, confined and checked: stdio on /dev/null until its command brings its
 * own, then this binary as SPARE_ARGV0 with the socket it waits on.  The exec gives it a
 * memory of its own (it shares none with init, whose pages then take no copy-on-write faults),
 * and since the box user cannot read /init (0711) it is not dumpable from its first
 * instruction: no box process can ptrace it or open its /proc/PID/mem. */
static _Noreturn void child_spare_exec(const struct child_plan *p, const struct spare_state *pre) {
    static char *const no_env[] = {NULL};
    struct spare_state now;
    spare_state_read(&now);
    if (memcmp(&now, pre, sizeof(now)) != 0) {
        struct child_report r = {.step = STEP_SPARE, .err = EPERM};
        snprintf(r.msg, sizeof(r.msg), "changed while it was made");
        child_report_fail(p, &r);
    }
    char hex[2 * sizeof(now) + 1];
    const unsigned char *b = (const unsigned char *)&now;
    for (size_t i = 0; i < sizeof(now); i++) {
        hex[2 * i] = "0123456789abcdef"[b[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[b[i] & 15];
    }
    hex[2 * sizeof(now)] = '\0';
    char *const argv[] = {SPARE_ARGV0, (char *)p->spare_fdarg, hex, NULL};
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul < 0) child_fail(p, STEP_STDIO, errno);
    if (dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0) child_fail(p, STEP_STDIO, errno);
    if (fcntl(p->spare_sock, F_SETFD, 0) < 0) child_fail(p, STEP_EXEC, errno);
    execveat(p->spare_exe, "", argv, no_env, AT_EMPTY_PATH);
    child_fail(p, STEP_EXEC, errno);
}

/* The order matters: the box cgroup, rlimits and the bounding set while still root; ids;
 * capabilities; no_new_privs and seccomp last; then check all of it before exec (R11). */
static _Noreturn void child_run(const struct child_plan *p) {
    const struct box_policy *box = p->box;
    struct child_report r;
    stamp(p, T_CHILD);
    struct spare_state pre; /* the spare's, read while still root */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Only ignored dispositions survive exec, and SIGPIPE is the one init ignores. */
    signal(SIGPIPE, SIG_DFL);
    /* init's SCHED_BATCH (boot_process) is neither the command's nor the spare's, whose
     * commands inherit its policy.  The spare stays SCHED_OTHER on purpose: woken as its vfork
     * ends, it preempts the command and answers init before the command can stop or kill it
     * (a command that kills its spare then still succeeds).  Skipped when already so. */
    static const struct sched_param zero = {0};
    if (sched_getscheduler(0) != SCHED_OTHER && sched_setscheduler(0, SCHED_OTHER, &zero) < 0)
        child_fail(p, STEP_SCHED, errno);
    if (setsid() < 0) child_fail(p, STEP_SETSID, errno);
    if (box->confined) {
        if (policy_child_enter(box, p->cg_procs_fd, p->mnt_fd, p->caps, p->stamps, &r) < 0)
            child_report_fail(p, &r);
    }
    stamp(p, T_ENTER);
    if (p->spare) spare_state_read(&pre);
    if (!p->spare) child_stdio(p);
    if (p->switch_ids) {
        if (setgroups(p->user->ngroups, p->user->groups) < 0) child_fail(p, STEP_SETGROUPS, errno);
        if (setgid(p->user->gid) < 0) child_fail(p, STEP_SETGID, errno);
        if (setuid(p->user->uid) < 0) child_fail(p, STEP_SETUID, errno);
    }
    stamp(p, T_IDS);
    if (box->confined && policy_child_caps(box, p->caps, &r) < 0) child_report_fail(p, &r);
    stamp(p, T_CAPS);
    if (!p->spare && chdir(p->cwd) < 0) {
        r = (struct child_report){.step = STEP_CHDIR, .err = errno};
        if (r.err == EACCES) child_find_blocked(p->cwd, &r);
        child_report_fail(p, &r);
    }
    stamp(p, T_CHDIR);
    if (box->confined && policy_child_lock(box, &r) < 0) child_report_fail(p, &r);
    stamp(p, T_LOCK);
    if (box->confined &&
        policy_child_verify(box, p->cg_line, p->user, p->caps, p->switch_ids, &r) < 0)
        child_report_fail(p, &r);
    stamp(p, T_EXECVE);
    if (p->spare) child_spare_exec(p, &pre);
    umask(p->umask);
    char there[PATH_MAX];
    int e = child_exec(p, there);
    child_exec_fail(p, e, there);
}

/* ---- parent ----------------------------------------------------------------------------- */

/* The host terminal's entry where the image has none (init-locale.c), and TERMINFO_DIRS to it
 * (init-env.c). */
static void exec_terminfo(const struct exec_ctx *ctx, const struct dbx_exec_req *req, char ***env) {
    const char *root = ctx->agent ? agent_files_root(ctx->agent) : NULL;
    const char *term = exec_env_get(*env, "TERM");
    if (!root || !root[0] || !term) return;
    _cleanup_strv_ char **notes = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    int r = terminfo_install(root, term, req->terminfo, req->terminfo_len, &notes, &e);
    if (r < 0) init_log("exec: terminfo for '%s': %s", term, e->msg);
    for (char **m = notes; m && *m; m++)
        init_log("exec: terminfo: %s", *m);
    if (r == 1) exec_env_terminfo(env);
}

static int report_error(const struct child_report *r, const struct child_plan *p,
                        const struct dbx_exec_req *req, int *ret_code, dbx_error **err) {
    int e = r->err > 0 ? r->err : EIO;
    *ret_code = DBX_ERR_FAILED;
    switch (r->step) {
    case STEP_EXEC:
        *ret_code = e == ENOENT ? DBX_ERR_NOT_FOUND : DBX_ERR_NOT_EXEC;
        /* cut: the reason must fit an ERROR (4 KiB) after a name of up to 128 KiB */
        if (r->msg[0])
            return dbx_error_setx(err, e, "exec '%.256s%s': %.*s", p->file,
                                  strlen(p->file) > 256 ? "..." : "", (int)sizeof(r->msg), r->msg);
        return dbx_error_set(err, e, "exec '%.256s%s'", p->file,
                             strlen(p->file) > 256 ? "..." : "");
    case STEP_CHDIR:
        if (e == EACCES && r->dir_len > 0 && r->dir_len <= strlen(p->cwd))
            return dbx_error_setx(err, e,
                                  "cannot enter '%s': the box user (uid %u) lacks search "
                                  "permission on '%.*s' (mode %04o, owner %u:%u)",
                                  p->cwd, r->uid, (int)r->dir_len, p->cwd, r->dir_mode, r->dir_uid,
                                  r->dir_gid);
        return dbx_error_set(err, e, "chdir '%s'", p->cwd);
    case STEP_SETUID:
        return dbx_error_set(err, e, "setuid %u", (unsigned)p->user->uid);
    case STEP_SETGID:
        return dbx_error_set(err, e, "setgid %u", (unsigned)p->user->gid);
    case STEP_SETGROUPS:
        return dbx_error_set(err, e, "setgroups for uid %u", (unsigned)p->user->uid);
    case STEP_TTY:
        return dbx_error_set(err, e, "open terminal '%s'", p->io->pts);
    case STEP_STDIO:
        return dbx_error_set(err, e, "set up stdio");
    case STEP_CGROUP:
        return dbx_error_set(err, e, "join the box cgroup");
    case STEP_RLIMIT:
        return dbx_error_set(err, e, "set rlimits");
    case STEP_CAPS:
        return dbx_error_set(err, e, "set capabilities");
    case STEP_NNP:
        return dbx_error_set(err, e, "set no_new_privs");
    case STEP_SECCOMP:
        return dbx_error_set(err, e, "load the seccomp filter");
    case STEP_MOUNTS:
        return dbx_error_set(err, e, "make kernel and cgroup files read-only for the box");
    case STEP_VERIFY:
        return dbx_error_setx(err, EPERM, "policy not in force: %.*s", (int)sizeof(r->msg), r->msg);
    case STEP_SPARE:
        return dbx_error_setx(err, EPERM, "the spare process's state: %.*s", (int)sizeof(r->msg),
                              r->msg);
    case STEP_SCHED:
        return dbx_error_set(err, e, "set the scheduling policy");
    default:
        return dbx_error_set(err, e, "setsid");
    }
}

/* The child's stack: it shares init's memory (below), so it needs its own.  Mapped once and
 * kept; one child at a time uses it (init waits until that child has exec'd, or reaps it).
 * Init installs no signal handler (SIGCHLD comes through a signalfd) and makes no thread: a
 * handler would run on the child too, and glibc's set*id act on the child alone only while
 * the process is single-threaded. */
#define CHILD_STACK (256u * 1024u)

static int child_main(void *arg) {
    child_run(arg);
}

/* clone3(2) with a function on a stack of its own, as glibc's clone() is for clone(2) (glibc
 * 2.36 exports no clone3 wrapper).  x86_64, the guest's only architecture: the child starts on
 * args->stack + stack_size, with fn and arg kept in callee-saved registers through the
 * syscall, calls fn(arg) and exits with what it returns; nothing of the caller's frame is valid
 * there.  -1 with errno, else the child's pid. */
#if defined(__x86_64__)
static pid_t clone3_fn(struct clone_args *args, int (*fn)(void *), void *arg) {
    register void *r12 __asm__("r12") = (void *)fn;
    register void *r13 __asm__("r13") = arg;
    long ret;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "mov %%r13, %%rdi\n\t"
                     "call *%%r12\n\t"
                     "mov %%eax, %%edi\n\t"
                     "mov %[exit_nr], %%eax\n\t"
                     "syscall\n\t"
                     "ud2\n\t"
                     "1:\n\t"
                     : "=a"(ret)
                     : "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)), "r"(r12),
                       "r"(r13), [exit_nr] "i"(SYS_exit)
                     : "rcx", "r11", "memory");
    if (ret < 0) {
        errno = (int)-ret;
        return -1;
    }
    return (pid_t)ret;
}
#endif

/* The child, born in its leaf cgroup when it has one: clone3's CLONE_INTO_CGROUP places it at
 * fork, instead of the child writing its leaf's cgroup.procs, a migration (fork and join went
 * 0.87 to 0.70 ms of a 13 ms warm exec under TCG, 2026-12-03, interleaved runs).  clone(2) and
 * that write when clone3 is refused. */
static pid_t child_clone(struct child_plan *p, void *stack, int cg_dir_fd) {
    /* No CLONE_VFORK: once it has the box user's ids a box process can stop the child, and init
     * must not sleep in vfork for it (fork_and_wait waits in slices).  The spare's maker is a
     * fork: the spare, which runs on, must not share init's memory. */
    const unsigned long flags = p->spare ? 0 : CLONE_VM;
#if defined(__x86_64__)
    if (cg_dir_fd >= 0) {
        struct clone_args args = {.flags = flags | CLONE_INTO_CGROUP,
                                  .exit_signal = SIGCHLD,
                                  .stack = (uint64_t)(uintptr_t)stack,
                                  .stack_size = CHILD_STACK,
                                  .cgroup = (uint64_t)cg_dir_fd};
        int procs_fd = p->cg_procs_fd;
        p->cg_procs_fd = -1; /* placed already: no join in the child */
        pid_t pid = clone3_fn(&args, child_main, p);
        /* EAGAIN: the box is at pids.max, which a new process born in the leaf counts
         * against; a migration is not refused by it, so a command still starts while a fork
         * bomb holds the box at its limit (devbox kill --all, ps), as it did before */
        if (pid >= 0 || (errno != ENOSYS && errno != E2BIG && errno != EINVAL && errno != EAGAIN))
            return pid;
        p->cg_procs_fd = procs_fd;
    }
#else
    (void)cg_dir_fd;
#endif
    return clone(child_main, (char *)stack + CHILD_STACK, (int)flags | SIGCHLD, p);
}

/* How long init waits for an answer of the spare's (made, its reply, its command's exec) before
 * it looks at who should answer: a stopped one (SIGSTOP from a process of the same user) would
 * never answer, and init is PID 1; any other state is a slow exec (a cold binary under load),
 * which is waited for, up to the cap. */
#define SPARE_SLICE_MS 200
#define SPARE_WAIT_MAX_MS 60000u

/* Whether pid, or any process in the leaf (leaf_fd, or -1), is stopped: /proc/PID/stat's state
 * 'T' or 't'.  The spare waiting for its vfork child shows 'D', the child the stopped one. */
static bool proc_stopped(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!read_proc(path, buf, sizeof(buf))) return false;
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'T' || rp[2] == 't');
}

static bool stopped_one(pid_t pid, void *ud) {
    (void)ud;
    return proc_stopped(pid);
}

static bool any_stopped(pid_t pid, int leaf_fd) {
    return proc_stopped(pid) || (leaf_fd >= 0 && procs_listed_any(leaf_fd, stopped_one, NULL));
}

/* Wait until fd is readable (or at its end): 0, or -EAGAIN when pid or a process of its leaf
 * (leaf_fd, or -1) is stopped, -ETIMEDOUT after SPARE_WAIT_MAX_MS.  Not through errno: a child
 * on init's memory (CLONE_VM) writes the same errno while this runs. */
static int spare_wait_fd(int fd, pid_t pid, int leaf_fd) {
    uint64_t start = dbx_now_ms();
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int n = poll(&pf, 1, SPARE_SLICE_MS);
        if (n > 0) return 0;
        if (any_stopped(pid, leaf_fd)) return -EAGAIN;
        if (dbx_now_ms() - start >= SPARE_WAIT_MAX_MS) return -ETIMEDOUT;
    }
}

/* SIGKILL a child of ours and reap it: it runs no more user code (the kill wakes a stopped one),
 * and its stack and pid are free once this returns. */
static void kill_reap(pid_t pid) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR) {
    }
}

/* Start the child and wait for its verdict.  0 with *ret_pid, or < 0 with *err and *ret_code. */
static int fork_and_wait(struct child_plan *p, const struct dbx_exec_req *req, int cg_dir_fd,
                         pid_t *ret_pid, int *ret_code, dbx_error **err) {
    static void *stack;
    if (!stack) {
        void *m = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (m == MAP_FAILED) return dbx_error_set(err, errno, "map the child's stack");
        stack = m;
    }
    int rep[2];
    if (pipe2(rep, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    p->report_fd = rep[1];
    /* Not dbx_spawn (common/spawn.h), on purpose: the child interleaves the box policy (its
     * leaf cgroup, joined when clone3 could not place it there, rlimits, mounts, bounding set,
     * capabilities, no_new_privs and seccomp, then a read-back check whose verdict carries a
     * message) with the pty, the user's supplementary groups and a chdir diagnosis, in the order
     * child_run states, and its report maps to protocol error codes.  Fixed options would not
     * express that order. CLONE_VM, as posix_spawn does: init (PID 1, no threads) neither copies
     * its page tables nor takes copy-on-write faults afterwards (a fork cost milliseconds under
     * TCG); it waits for the child's exec, in slices, touching nothing the child reads (the plan,
     * argv, environment) and not its stack.  Not CLONE_VFORK, whose sleep a box process could
     * make endless by stopping the child once it has the user's ids.  Everything else stays the
     * child's own (no CLONE_FS, CLONE_FILES, CLONE_SIGHAND): ids, capabilities, seccomp,
     * rlimits, namespaces and cwd are per task.  child_run allocates nothing and writes only its
     * stack, the report pipe, the timing page and errno (init's, which init reads only right
     * after a call of its own that it knows failed). */
    pid_t pid = child_clone(p, stack, cg_dir_fd);
    int fork_errno = errno;
    close(rep[1]);
    _cleanup_close_ int rd = rep[0];
    if (pid < 0) return dbx_error_set(err, fork_errno, "clone");
    /* the spare's maker: its leaf too (nothing else is in it); a command's: the child alone */
    int w = spare_wait_fd(rd, pid, p->spare ? cg_dir_fd : -1);
    struct pollfd last = {.fd = rd, .events = POLLIN};
    if (w < 0 && poll(&last, 1, 0) > 0) w = 0; /* it answered after all, in the meantime */
    if (w < 0) { /* it has not exec'd: the kill ends it before anything of the command runs */
        kill_reap(pid);
        *ret_code = DBX_ERR_FAILED;
        if (p->spare) return dbx_error_set(err, -w, "the spare process did not check in");
        return dbx_error_setx(err, -w,
                              w == -EAGAIN
                                  ? "the command's process was stopped before its exec (by a "
                                    "process in the box?); run the command again"
                                  : "the command's process did not reach its exec in 60 s");
    }
    struct child_report r;
    ssize_t n;
    do
        n = read(rd, &r, sizeof(r));
    while (n < 0 && errno == EINTR);
    if (n != 0) {
        /* A child that reported is on its way out, still on the stack it shares (CLONE_VM) or
         * its copy, and a box process may stop it there: killed and reaped here, so that no
         * task runs on memory init reuses (SIGKILL wakes a stopped one; nothing blocks it by
         * now).  Its exit status is nobody's: the EXEC gets ERROR. */
        kill_reap(pid);
    }
    if (n == (ssize_t)sizeof(r)) return report_error(&r, p, req, ret_code, err);
    if (n != 0) return dbx_error_set(err, n < 0 ? errno : EIO, "read exec status");
    *ret_pid = pid;
    return 0;
}

/* ---- the spare process ------------------------------------------------------------------ */

/* One command for the spare, in one SOCK_SEQPACKET message: this header, then NUL-terminated
 * strings (file, cwd, PATH, argc arguments, envc variables) and, as SCM_RIGHTS, the command's
 * stdin, stdout and stderr (SPARE_TTY: the pty's slave alone), then the write end of the
 * command's report pipe.  A request that does not fit SPARE_MSG_MAX starts the ordinary way.
 * The spare answers each with SPARE_TAKEN just before its fork, then a struct spare_reply: the
 * command's pid, or why there is none (a request it cannot read is refused without
 * SPARE_TAKEN, a refused fork after it). */
#define SPARE_MAGIC 0x64627873u
#define SPARE_TAKEN 0x6e6b6174u /* a uint32_t message of its own */
#define SPARE_TTY 1u
#define SPARE_TIMING 2u /* DBX_EXEC_TIMING: the reply carries the steps' times */
#define SPARE_MSG_MAX (64u * 1024u)
#define SPARE_FDS_MAX 4u
struct spare_hdr {
    uint32_t magic, flags, argc, envc, umask;
};
struct spare_reply {
    int32_t pid; /* > 0, else 0 and err */
    int32_t err;
    uint64_t t_wake, t_child, t_chdir; /* SPARE_TIMING: received, child runs, before its exec */
};

/* Whether the spare can run this command: the default user with the groups and capabilities
 * it was made with (the image's /etc/group may have changed since). */
static bool spare_fits(const struct exec_ctx *ctx, const struct dbx_exec_req *req,
                       const struct init_user *u, uint64_t caps) {
    const struct spare_proc *sp = &ctx->spare->proc;
    return sp->pid > 0 && !sp->reaped && !sp->disabled && ctx->box->confined &&
           !(req->flags & DBX_EXEC_ADMIN) && !req->user[0] && u->uid == sp->uid &&
           u->gid == sp->gid && caps == sp->caps && u->ngroups == sp->ngroups &&
           (!u->ngroups || memcmp(u->groups, sp->groups, u->ngroups * sizeof(gid_t)) == 0);
}

static void put_strz(struct dbx_buf *b, const char *str) {
    dbx_buf_put(b, str, strlen(str) + 1);
}

/* msg with fds, in one datagram that never blocks: the socket holds nothing else, and a stopped
 * spare cannot stall PID 1. */
static bool send_with_fds(int sock, const struct dbx_buf *msg, const int *fds, size_t nfds) {
    union {
        char buf[CMSG_SPACE(SPARE_FDS_MAX * sizeof(int))];
        struct cmsghdr align;
    } c;
    memset(&c, 0, sizeof(c));
    struct iovec iov = {.iov_base = msg->data, .iov_len = msg->len};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = c.buf,
                        .msg_controllen = CMSG_SPACE(nfds * sizeof(int))};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    return sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)msg->len;
}

/* The command to the spare, without waiting: false when it cannot take it (it died, or said
 * something unasked, or the request is too big), and nothing was sent. */
static bool spare_send(const struct spare_proc *sp, const struct child_plan *p,
                       const struct stdio_set *io, int report_w, uint64_t *t) {
    struct pollfd pf = {.fd = sp->sock, .events = POLLIN};
    if (poll(&pf, 1, 0) != 0) return false;
    size_t argc = 0, envc = 0;
    while (p->argv[argc])
        argc++;
    while (p->envp[envc])
        envc++;
    struct spare_hdr h = {.magic = SPARE_MAGIC,
                          .flags = (io->master >= 0 ? SPARE_TTY : 0) | (t ? SPARE_TIMING : 0),
                          .argc = (uint32_t)argc,
                          .envc = (uint32_t)envc,
                          .umask = p->umask};
    _cleanup_(dbx_buf_free) struct dbx_buf b = {0};
    dbx_buf_put(&b, &h, sizeof(h));
    put_strz(&b, p->file);
    put_strz(&b, p->cwd);
    put_strz(&b, p->path);
    for (size_t i = 0; i < argc && b.len <= SPARE_MSG_MAX; i++)
        put_strz(&b, p->argv[i]);
    for (size_t i = 0; i < envc && b.len <= SPARE_MSG_MAX; i++)
        put_strz(&b, p->envp[i]);
    if (b.len > SPARE_MSG_MAX) return false;
    /* before the send: on one vCPU the spare may run its whole part before this returns */
    if (t) t[T_SENT] = exec_now_us();
    if (io->master >= 0) { /* the slave, opened here: the spare is not root, the pty is init's */
        _cleanup_close_ int slave = open(io->pts, O_RDWR | O_NOCTTY | O_CLOEXEC);
        const int fds[2] = {slave, report_w};
        return slave >= 0 && send_with_fds(sp->sock, &b, fds, 2);
    }
    _cleanup_close_ int nul = io->ch_in >= 0 ? -EBADF : open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int fds[4] = {io->ch_in >= 0 ? io->ch_in : nul, io->ch_out,
                        io->ch_err >= 0 ? io->ch_err : io->ch_out, report_w};
    return fds[0] >= 0 && send_with_fds(sp->sock, &b, fds, 4);
}

/* spare_wait_fd, for an answer of the spare's or its command's.  When none comes, false with
 * *err (the caller kills the command's leaf, or, when the spare never took the command, starts
 * it the ordinary way: spare_lost); the spare is used no more this boot: that user does not
 * want it. */
static bool spare_answer(struct spare_proc *sp, int fd, pid_t pid, int leaf_fd, dbx_error **err) {
    int e = -spare_wait_fd(fd, pid, leaf_fd);
    if (e == 0) return true;
    sp->disabled = true;
    init_log("exec: process %d %s; commands start without the spare process until the box "
             "restarts",
             (int)pid,
             e == EAGAIN ? "was stopped (by a process in the box?)" : "did not answer in 60 s");
    if (e == EAGAIN)
        dbx_error_setx(err, e,
                       "the box's process starting this command was stopped (by a process in "
                       "the box?); run the command again");
    else
        dbx_error_setx(err, e, "the box's process starting this command did not answer in 60 s");
    return false;
}

/* Whether pid is a child of init's (reapable by it: what CLONE_PARENT makes) and no live
 * session's: the spare's reply is believed only so far, since init signals that pid's group. */
static bool our_new_child(const struct agent *a, const struct spare_proc *sp, pid_t pid) {
    siginfo_t si = {0};
    if (pid <= 1 || pid == sp->pid ||
        waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
        return false;
    for (size_t i = 0; i < a->nsess; i++)
        if (!a->sess[i]->dead && !a->sess[i]->exited && a->sess[i]->pid == pid) return false;
    return true;
}

/* The spare stopped, silent or dead without an answer (a box process may stop or kill it: it
 * has the box user's uid).  Once it is dead it sends nothing more, and what it sent stays in
 * init's end of the socket; with no SPARE_TAKEN there (taken: init read it already) it never
 * reached its fork, so nothing of the command ran and the command starts the ordinary way (1)
 * instead of failing.  Otherwise -2 with *err: it may have forked the command, which may even
 * have run and exited (a zombie, which its leaf's cgroup.procs does not list), so the caller
 * kills the leaf and the command fails rather than run twice. */
static int spare_lost(struct spare_proc *sp, bool taken, dbx_error **err) {
    _cleanup_close_ int sock = TAKE_FD(sp->sock); /* read after the drop killed and reaped it */
    exec_spare_drop(sp);
    /* Empty: 0 (the end, nothing queued before it) or EAGAIN.  ECONNRESET (a peer that died
     * with a message of init's unread) is reported once, ahead of what is queued: read again.
     * Any other error counts as a message. */
    bool fell_back = false;
    for (int i = 0; !taken && i < 4; i++) {
        char c;
        ssize_t n = recv(sock, &c, sizeof(c), MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == ECONNRESET)) continue;
        fell_back = n == 0 || (n < 0 && errno == EAGAIN);
        break;
    }
    if (!fell_back) return -2;
    init_log("exec: the spare process went before it took a command (%s); the command starts "
             "without it",
             *err ? (*err)->msg : "no answer");
    dbx_error_free(err);
    return 1;
}

/* The command through the spare (in the leaf leaf_fd): sent, then its pid, then its exec's
 * verdict on the report pipe (EOF: exec'd; a child_report: a step failed, and the child exits).
 * 1 when nothing started (not sent, not taken by a spare that then went, its fork refused, its
 * own state changed since it checked it): start it the ordinary way; 0 with *ret_pid; -1 with *err
 * and *ret_code when a step failed; -2 with *err when an answer did not come (the caller kills the
 * leaf: nothing of the command runs on). */
static int spare_run(const struct agent *a, struct spare_proc *sp, int leaf_fd,
                     const struct child_plan *p, const struct stdio_set *io, uint64_t *t,
                     pid_t *ret_pid, int *ret_code, dbx_error **err) {
    int rep[2];
    if (pipe2(rep, O_CLOEXEC) < 0) return 1;
    _cleanup_close_ int rd = rep[0];
    bool sent = spare_send(sp, p, io, rep[1], t);
    close(rep[1]);
    if (!sent) {
        if (t) t[T_SENT] = 0;
        return 1;
    }
    union {
        uint32_t taken;
        struct spare_reply reply;
    } m = {0};
    if (!spare_answer(sp, sp->sock, sp->pid, leaf_fd, err)) return spare_lost(sp, false, err);
    ssize_t n = recv(sp->sock, &m, sizeof(m), MSG_DONTWAIT);
    bool taken = n == (ssize_t)sizeof(m.taken) && m.taken == SPARE_TAKEN;
    if (taken) {
        if (!spare_answer(sp, sp->sock, sp->pid, leaf_fd, err)) return spare_lost(sp, true, err);
        n = recv(sp->sock, &m, sizeof(m), MSG_DONTWAIT);
    }
    if (n != (ssize_t)sizeof(m.reply) || (m.reply.pid > 0 && !taken)) { /* it died, or lies */
        dbx_error_set(err, n < 0 ? errno : EIO, "the spare process's answer");
        return spare_lost(sp, taken || n > 0, err);
    }
    struct spare_reply reply = m.reply;
    /* EAGAIN: the box at pids.max, where a fork is refused and a migration is not (as the child
     * of init's that joins the leaf after clone(2) does): nothing started, go that way; as for
     * any other refusal, after which the spare is not asked again */
    if (reply.pid <= 0) {
        if (reply.err != EAGAIN) {
            sp->disabled = true;
            init_log("exec: the spare process could not start a command: %s", strerror(reply.err));
        }
        return 1;
    }
    if (!our_new_child(a, sp, reply.pid)) {
        dbx_error_setx(err, EPROTO, "the spare process answered pid %d, not a new command's",
                       (int)reply.pid);
        return -2;
    }
    *ret_pid = reply.pid;
    if (t) {
        t[T_WAKE] = reply.t_wake;
        t[T_CHILD] = reply.t_child;
        t[T_CHDIR] = reply.t_chdir;
    }
    if (!spare_answer(sp, rd, reply.pid, leaf_fd, err)) return -2;
    struct child_report r;
    do
        n = read(rd, &r, sizeof(r));
    while (n < 0 && errno == EINTR);
    if (n != 0) { /* as fork_and_wait's: the spare sleeps in vfork until its child is gone */
        kill_reap(reply.pid);
    }
    if (n == (ssize_t)sizeof(r) && r.step == STEP_SPARE) {
        sp->disabled = true;
        init_log("exec: the spare process was changed by a process in the box (%.*s); commands "
                 "start without it until the box restarts",
                 (int)sizeof(r.msg), r.msg);
        return 1;
    }
    if (n == (ssize_t)sizeof(r)) return report_error(&r, p, NULL, ret_code, err);
    if (n != 0) return dbx_error_set(err, n < 0 ? errno : EIO, "read exec status");
    if (t) t[T_EOF] = exec_now_us();
    return 0;
}

void exec_spare_drop(struct spare_proc *sp) {
    siginfo_t si = {0};
    /* dead before init killed it: a box process did (or it failed); three times, no more */
    if (sp->pid > 0 &&
        (sp->reaped || (waitid(P_PID, (id_t)sp->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                        si.si_pid == sp->pid)))
        sp->deaths++;
    if (sp->pid > 0 && !sp->reaped) {
        kill_reap(sp->pid);
    }
    if (sp->sock >= 0) close(sp->sock);
    if (sp->mnt_fd >= 0) close(sp->mnt_fd);
    free(sp->groups);
    *sp = (struct spare_proc){.sock = -1,
                              .mnt_fd = -1,
                              .failed_id = sp->failed_id,
                              .deaths = sp->deaths,
                              .disabled = sp->disabled};
}

/* Move the spare into a leaf (its cgroup.procs), where its next command is born. */
static bool spare_move(struct spare_proc *sp, int procs_fd, uint32_t leaf) {
    char buf[16];
    int len = snprintf(buf, sizeof(buf), "%d", (int)sp->pid);
    if (write(procs_fd, buf, (size_t)len) != len) return false;
    sp->leaf = leaf;
    return true;
}

/* Between commands the spare waits in init's own cgroup, the root, outside the box: in the box
 * it would take one of the box's pids.max (a profile's `pids = 64` would let the user run 63)
 * and stand in a leaf that is not a command's.  It goes into a command's leaf for the fork
 * and out again, two migrations of one process (0.1-0.2 ms each under TCG).  Dropped when it
 * cannot be moved. */
static void spare_park(struct spare_proc *sp, const struct box_policy *b) {
    static int root_procs = -1;
    if (sp->pid <= 0 || !sp->leaf) return;
    if (root_procs < 0) {
        _cleanup_close_ int up = openat(b->cg_box_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (up >= 0) root_procs = openat(up, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    }
    if (root_procs < 0 || sp->reaped || !spare_move(sp, root_procs, 0)) exec_spare_drop(sp);
}

void exec_spare_start(struct agent *a) {
    struct leaf_spare *ls = &a->spare;
    struct spare_proc *sp = &ls->proc;
    if (sp->pid > 0 && sp->reaped) exec_spare_drop(sp); /* a box process killed it: another */
    if (sp->pid > 0) return;
    if (sp->deaths >= 3 && !sp->disabled) { /* but not forever */
        sp->disabled = true;
        init_log("exec: the spare process died %u times; commands start without it until the "
                 "box restarts",
                 sp->deaths);
    }
    /* Not before the boot's first command: on a cold start its EXEC comes right after SETUP's
     * answer, and the first spare (an exec of /init, then the first translation of its code
     * under TCG) kept it waiting 36-71 ms in the port.  That command starts the ordinary way
     * instead, and the spare is made once it has ended.  Measured 2026-12-04, 12 interleaved
     * cold `devbox exec true` each: from ready to the command's exit median 98 -> 79.5 ms; a
     * second command right after it 14 -> 34.5 ms (it now waits for the spare), so a script
     * that runs several back to back pays the same in all; an agent or a person, whose next
     * command comes later, gets the first answer sooner. */
    if (a->test_mode || a->setup != SETUP_DONE || !a->last_exec_id || !a->box.confined || !ls->id ||
        ls->dir_fd < 0 || sp->disabled || sp->failed_id == ls->id || a->box.mnt_next < 0)
        return;
    static int exe = -1;
    if (exe < 0 && (exe = open("/proc/self/exe", O_PATH | O_CLOEXEC)) < 0) {
        sp->disabled = true;
        return init_log("exec: no spare process: open /proc/self/exe: %s", strerror(errno));
    }
    sp->failed_id = ls->id; /* until it is made */
    _cleanup_(user_clear) struct init_user u = {0};
    _cleanup_error_ dbx_error *err = NULL;
    if (user_resolve(a->box.plan.user ? a->box.plan.user : "", a->uid, a->gid, &u, &err) < 0)
        return;
    uint64_t caps = policy_caps_for(&a->box, u.uid, false);
    /* Not for root nor for a user who can read /init (0711) or trace: the spare would be
     * dumpable for a moment after its exec (its memory then open to that user's processes), and
     * root owns the /proc files of a process that is not dumpable (its oom_score_adj, which its
     * commands would inherit); nor for one who could become root (setuid) or change the spare's
     * priority or limits while its maker is still root (sys_nice, sys_resource).  Nor for one
     * with sys_admin: its commands share the spare's copy of the box's mounts, which only that
     * capability could change; such a user gets a copy per command, as before. */
    const uint64_t no_spare = (UINT64_C(1) << CAP_SYS_ADMIN) | (UINT64_C(1) << CAP_SYS_PTRACE) |
                              (UINT64_C(1) << CAP_DAC_OVERRIDE) |
                              (UINT64_C(1) << CAP_DAC_READ_SEARCH) | (UINT64_C(1) << CAP_SYS_NICE) |
                              (UINT64_C(1) << CAP_SYS_RESOURCE) | (UINT64_C(1) << CAP_SETUID);
    if (u.uid == 0 || (caps & no_spare)) {
        sp->disabled = true;
        return;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return;
    char fdarg[16];
    snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
    _cleanup_free_ char *cg_line = dbx_xasprintf("%s/s%" PRIu32, a->box.cg_line, ls->id);
    struct child_plan p = {.file = SPARE_ARGV0,
                           .user = &u,
                           .box = &a->box,
                           .caps = caps,
                           .switch_ids = true,
                           .cg_procs_fd = ls->procs_fd,
                           .mnt_fd = a->box.mnt_next,
                           .cg_line = cg_line,
                           .spare = true,
                           .spare_exe = exe,
                           .spare_sock = sv[1],
                           .spare_fdarg = fdarg};
    pid_t pid = -1;
    int code;
    int r = fork_and_wait(&p, NULL, ls->dir_fd, &pid, &code, &err);
    close(sv[1]);
    if (r < 0) { /* stopped or changed by a box process, or the policy not in force: no more */
        init_log("exec: no spare process: %s; commands start without it until the box restarts",
                 err->msg);
        sp->disabled = true;
        close(sv[0]);
        return;
    }
    *sp = (struct spare_proc){.pid = pid,
                              .deaths = sp->deaths,
                              .sock = sv[0],
                              .mnt_fd = TAKE_FD(a->box.mnt_next),
                              .leaf = ls->id,
                              .uid = u.uid,
                              .gid = u.gid,
                              .groups = TAKE_PTR(u.groups),
                              .ngroups = u.ngroups,
                              .caps = caps};
    spare_park(sp, &a->box); /* it was born in the spare leaf, where it checked its cgroup */
}

/* The spare's side.  One request: its strings into p (pointers into buf; *ret_v to free). */
static int spare_parse(char *buf, size_t n, struct child_plan *p, uint32_t *flags, char ***ret_v) {
    struct spare_hdr h;
    if (n < sizeof(h)) return -1;
    memcpy(&h, buf, sizeof(h));
    if (h.magic != SPARE_MAGIC || h.argc == 0 || h.argc > n || h.envc > n || h.umask > 0777)
        return -1;
    char *q = buf + sizeof(h), *end = buf + n;
    size_t nstr = 3 + (size_t)h.argc + h.envc;
    _cleanup_free_ char **v = calloc(nstr + 2, sizeof(char *));
    if (!v) return -1;
    for (size_t i = 0; i < nstr; i++) {
        char *z = q < end ? memchr(q, '\0', (size_t)(end - q)) : NULL;
        if (!z) return -1;
        v[i < 3 + h.argc ? i : i + 1] = q; /* a NULL after argv, one after the environment */
        q = z + 1;
    }
    if (q != end) return -1;
    p->file = v[0];
    p->cwd = v[1];
    p->path = v[2];
    p->argv = v + 3;
    p->envp = v + 3 + h.argc + 1;
    p->umask = (mode_t)h.umask;
    *flags = h.flags;
    *ret_v = TAKE_PTR(v);
    return 0;
}

/* NULL when the state is the one checked, else what differs. */
static const char *spare_state_changed(void) {
    struct spare_state now;
    spare_state_read(&now);
    if (memcmp(now.rl, spare_checked.rl, sizeof(now.rl)) != 0) return "rlimits";
    if (now.nice != spare_checked.nice || now.policy != spare_checked.policy)
        return "scheduling priority";
    if (now.ioprio != spare_checked.ioprio) return "I/O priority";
    if (now.oom != spare_checked.oom) return "OOM score";
    if (memcmp(&now.cpus, &spare_checked.cpus, sizeof(now.cpus)) != 0) return "CPU affinity";
    return NULL;
}

/* The command's process, a child of init's (CLONE_PARENT: init reaps it and hears of its
 * exit): its own session, its stdio, its directory and its exec, as child_run does them,
 * reporting a failed step on the report pipe. */
static _Noreturn void spare_child(const struct child_plan *p, uint32_t flags, const int *fds,
                                  struct spare_reply *reply) {
    if (flags & SPARE_TIMING) reply->t_child = exec_now_us(); /* the spare's memory (CLONE_VM) */
    const char *changed = spare_state_changed();
    if (changed) {
        struct child_report r = {.step = STEP_SPARE, .err = EPERM};
        snprintf(r.msg, sizeof(r.msg), "its %s", changed);
        child_report_fail(p, &r);
    }
    if (setsid() < 0) child_fail(p, STEP_SETSID, errno);
    int in = fds[0], out = fds[1], errfd = fds[2];
    if (flags & SPARE_TTY) {
        /* a new session leader without a terminal: this one becomes its controlling tty */
        if (ioctl(fds[0], TIOCSCTTY, 0) < 0) child_fail(p, STEP_TTY, errno);
        out = errfd = in;
    }
    /* each received descriptor is > 2 (0-2 are /dev/null), so dup2 never clobbers one */
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0) child_fail(p, STEP_STDIO, errno);
    if (chdir(p->cwd) < 0) {
        struct child_report r = {.step = STEP_CHDIR, .err = errno};
        if (r.err == EACCES) child_find_blocked(p->cwd, &r);
        child_report_fail(p, &r);
    }
    if (flags & SPARE_TIMING) reply->t_chdir = exec_now_us();
    umask(p->umask);
    char there[PATH_MAX];
    int e = child_exec(p, there);
    child_exec_fail(p, e, there);
}

struct spare_child_arg {
    const struct child_plan *p;
    uint32_t flags;
    const int *fds;
    struct spare_reply *reply;
};

static int spare_child_main(void *arg) {
    const struct spare_child_arg *c = arg;
    spare_child(c->p, c->flags, c->fds, c->reply);
}

/* Serve one request: false when init has let the spare go (its end closed) or broke the
 * protocol, after which the spare exits. */
static bool spare_serve_one(int sock) {
    static char buf[SPARE_MSG_MAX];
    int fds[SPARE_FDS_MAX];
    union {
        char buf[CMSG_SPACE(sizeof(fds))];
        struct cmsghdr align;
    } c;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return false;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    size_t nfds = cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS
                      ? (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int)
                      : 0;
    if (nfds > SPARE_FDS_MAX) return false;
    if (nfds) memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
    struct child_plan p = {.report_fd = -1};
    uint32_t flags = 0;
    _cleanup_free_ char **v = NULL;
    bool ok = !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
              spare_parse(buf, (size_t)n, &p, &flags, &v) == 0 &&
              nfds == ((flags & SPARE_TTY) ? 2u : 4u);
    struct spare_reply reply = {.err = EPROTO};
    if (ok && (flags & SPARE_TIMING)) reply.t_wake = exec_now_us();
    /* taken, before the fork: a spare stopped or killed before this is known to have started
     * nothing, and init starts the command the ordinary way (spare_lost) */
    static const uint32_t taken = SPARE_TAKEN;
    if (ok && send(sock, &taken, sizeof(taken), MSG_NOSIGNAL) != (ssize_t)sizeof(taken)) ok = false;
    if (ok) {
        p.report_fd = fds[nfds - 1];
        /* CLONE_VM | CLONE_VFORK, as fork_and_wait's: the spare sleeps until its child has
         * exec'd, and neither copies page tables nor takes copy-on-write faults (a fork cost
         * 2.5 ms more of a warm exec under TCG, 2026-12-04).  clone(2), not clone3: the box's
         * seccomp filter refuses clone3 so that it can see clone's flags. */
        static char stack[64 * 1024] __attribute__((aligned(16)));
        struct spare_child_arg arg = {.p = &p, .flags = flags, .fds = fds, .reply = &reply};
        pid_t pid = clone(spare_child_main, stack + sizeof(stack),
                          CLONE_VM | CLONE_VFORK | CLONE_PARENT | SIGCHLD, &arg);
        reply.pid = pid > 0 ? pid : 0;
        reply.err = pid > 0 ? 0 : errno;
    }
    for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
    /* after the close: init reads the report pipe's EOF once the child has exec'd */
    return send(sock, &reply, sizeof(reply), MSG_NOSIGNAL) == (ssize_t)sizeof(reply) && ok;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int exec_spare_main(int argc, char **argv) {
    uint64_t fd;
    if (argc != 3 || dbx_parse_u64(argv[1], 3, INT_MAX, &fd) < 0 ||
        strlen(argv[2]) != 2 * sizeof(spare_checked))
        return DBX_ERR_FAILED;
    unsigned char *b = (unsigned char *)&spare_checked;
    for (size_t i = 0; i < sizeof(spare_checked); i++) {
        int hi = hexval(argv[2][2 * i]), lo = hexval(argv[2][2 * i + 1]);
        if (hi < 0 || lo < 0) return DBX_ERR_FAILED;
        b[i] = (unsigned char)(hi << 4 | lo);
    }
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* already not, as /init is unreadable: kept so */
    /* its name, not init's: /proc/PID/comm and a profile of the guest (bench/guest-profile.py)
     * tell it from PID 1; its commands take their own with their exec */
    (void)prctl(PR_SET_NAME, SPARE_ARGV0, 0, 0, 0);
    if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0) return DBX_ERR_FAILED;
    spare_oom_fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
    while (spare_serve_one((int)fd)) {
    }
    return 0;
}

/* The parent's ends of the command's stdio, now the session's. */
static void session_take_stdio(struct session *s, struct stdio_set *io) {
    s->tty = io->master >= 0;
    if (s->tty) {
        s->pty = s->in_fd = s->rd_fd[DBX_STREAM_STDOUT] = TAKE_FD(io->master);
    } else {
        s->in_fd = TAKE_FD(io->par_in);
        s->rd_fd[DBX_STREAM_STDOUT] = TAKE_FD(io->par_out);
        s->rd_fd[DBX_STREAM_STDERR] = TAKE_FD(io->par_err);
    }
}

/* DBX_EXEC_ADMIN runs as root and nobody else: a request naming another user is a mistake
 * the host's client catches first; the guest refuses it too rather than pick one. */
static bool admin_user_ok(const char *user, dbx_error **err) {
    if (user[0] == '\0' || dbx_user_is_root(user)) return true;
    dbx_error_setx(err, EINVAL, "an administrative command runs as root, not as '%s'", user);
    return false;
}

int exec_spawn(const struct exec_ctx *ctx, const struct dbx_exec_req *req, struct session *s,
               int *ret_code, dbx_error **err) {
    *ret_code = DBX_ERR_FAILED;
    uint64_t *t = s->times ? s->times->t : NULL;
    _cleanup_(user_clear) struct init_user u = {0};
    bool admin = req->flags & DBX_EXEC_ADMIN;
    /* the request's user, else the plan's, else SETUP's uid:gid; root for an admin command */
    const char *spec = req->user[0] || !ctx->box->plan.user ? req->user : ctx->box->plan.user;
    if (admin && !admin_user_ok(req->user, err)) return -1;
    if (user_resolve(admin ? "0:0" : spec, ctx->uid, ctx->gid, &u, err) < 0) return -1;
    if (admin) { /* root's home whatever the image's passwd says, as `sudo -i` would */
        free(u.home);
        u.home = dbx_xstrdup("/root");
    }
    _cleanup_strv_ char **env = exec_env_build(ctx, &u, req);
    if ((req->flags & DBX_EXEC_TTY) && req->terminfo_len > 0) exec_terminfo(ctx, req, &env);
    if (t) t[T_USER] = exec_now_us();
    _cleanup_free_ char *login0 = NULL;
    char *login_argv[2] = {NULL, NULL};
    struct child_plan p = {.envp = env,
                           .path = exec_env_path(env),
                           .cwd = req->cwd,
                           .user = &u,
                           .box = ctx->box,
                           .caps = ctx->box->confined ? policy_caps_for(ctx->box, u.uid, admin)
                                                      : DBX_CAP_ALL,
                           .umask = (mode_t)req->umask};
    if (req->argc == 0) { /* login shell: argv[0] "-bash" tells the shell it is one */
        p.file = u.shell ? u.shell : "/bin/sh";
        const char *base = strrchr(p.file, '/');
        login_argv[0] = login0 = dbx_xasprintf("-%s", base ? base + 1 : p.file);
        p.argv = login_argv;
    } else {
        p.file = req->argv[0];
        p.argv = req->argv;
    }
    /* Unprivileged (only in --serve-fd tests) running as the requested user already:
     * nothing to switch, and setgroups would fail. */
    p.switch_ids = geteuid() == 0 || u.uid != getuid() || u.gid != getgid();
    _cleanup_(stdio_close) struct stdio_set io = {.master = -1,
                                                  .par_in = -1,
                                                  .par_out = -1,
                                                  .par_err = -1,
                                                  .ch_in = -1,
                                                  .ch_out = -1,
                                                  .ch_err = -1};
    p.io = &io;
    if (stdio_open(&io, req, err) < 0) return -1;
    if (t) t[T_STDIO] = exec_now_us();
    /* The spare process runs the command when it was made for this user.  It is in this leaf
     * already, or goes there (below); one that cannot run it goes, so that the leaf it may be in
     * holds only the command.  Its commands share its mount namespace: no copy to take. */
    struct spare_proc *sp = ctx->spare ? &ctx->spare->proc : NULL;
    bool use_spare = sp && spare_fits(ctx, req, &u, p.caps);
    /* Its own leaf cgroup (the box's limits stay on the box): cgroup.kill ends the command with
     * every child it started, and PS tells whose a process is. */
    _cleanup_close_ int cg_procs = -EBADF;
    _cleanup_free_ char *cg_line = NULL;
    if (ctx->box->confined &&
        procs_leaf_create(ctx->box, ctx->spare, s, &cg_procs, &cg_line, err) < 0)
        return -1;
    p.cg_procs_fd = cg_procs;
    p.cg_line = cg_line;
    if (use_spare && cg_procs >= 0 && spare_move(sp, cg_procs, s->id)) {
        if (t) t[T_CGROUP] = exec_now_us();
        pid_t pid = 0;
        int r = spare_run(ctx->agent, sp, s->cg_fd, &p, &io, t, &pid, ret_code, err);
        if (r == -2) { /* no answer: nothing of the command runs on, nor the spare */
            s->pid = pid;
            procs_leaf_kill(s);
            exec_spare_drop(sp);
        }
        if (sp->disabled) exec_spare_drop(sp); /* stopped or changed: it goes */
        spare_park(sp, ctx->box);              /* out of the leaf before anything looks */
        if (r <= 0) {
            if (r < 0) return -1; /* a failed step's child is reaped already */
            s->pid = pid;
            session_take_stdio(s, &io);
            return 0;
        }
        /* nothing started (not sent, its fork refused: the box at pids.max, its state changed
         * since it checked it): started as before, below */
        if (t) t[T_SENT] = t[T_WAKE] = t[T_CHILD] = t[T_CHDIR] = 0;
    }
    /* the copy made while idle (policy_mnt_prepare) is this command's alone; init keeps its
     * descriptor until the session is freed (sweep, after EXIT is written) */
    _cleanup_close_ int mnt_fd = ctx->box->confined && ctx->mnt_next ? TAKE_FD(*ctx->mnt_next) : -1;
    p.mnt_fd = mnt_fd;
    if (t) {
        t[T_CGROUP] = exec_now_us();
        p.stamps = child_stamps();
    }
    pid_t pid = -1;
    if (fork_and_wait(&p, req, cg_procs >= 0 ? s->cg_fd : -1, &pid, ret_code, err) < 0) return -1;
    if (t) {
        t[T_EOF] = exec_now_us();
        if (p.stamps)
            for (int i = T_CHILD; i <= T_EXECVE; i++)
                t[i] = p.stamps[i];
    }
    s->pid = pid;
    /* Whoever drops a mount namespace's last reference tears it down: umount_tree of its 25
     * mounts, then a cleanup_mnt task work per mount.  Had init closed this now, that would be
     * the command's exit, after its output's EOF and before its parent hears of it: on the
     * exit-to-EXIT path.  Held here, init does it in sweep, after EXIT went out.  Nothing else
     * can enter the namespace through this descriptor (CLOEXEC, init's table only); a command
     * whose processes outlive it keeps the namespace alive either way.  Measured in the guest
     * under TCG (2026-12-04, a child per try entering a fresh copy, exec of a static no-op,
     * blocking wait; 120-200 interleaved tries, 4 runs): fork to reaped p50 lower by 70-310 us
     * with init holding the copy than with init closing it once the exec succeeded. */
    s->mnt_fd = TAKE_FD(mnt_fd);
    session_take_stdio(s, &io);
    return 0;
}

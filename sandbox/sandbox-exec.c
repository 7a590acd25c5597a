/* sandbox/sandbox-exec.c: the client half of an exec session.  Relays stdin (within the
 * credit the guest grants), stdout/stderr (granting credit back once written), signals and
 * terminal size changes, and returns the command's exit code. */
#define _GNU_SOURCE
#include "sandbox-internal.h"

#include <inttypes.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>

/* Signals the user sends to devbox that are meant for the command. */
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
/* SIGTERM or SIGHUP means "end": they are forwarded, and if the command has not ended this long
 * after (it ignores them, or a fork bomb keeps the guest too busy to answer), devbox ends
 * anyway; the supervisor then kills the command.  A second one ends devbox at once.  SIGINT
 * stays the command's business (a program may catch it and go on). */
#define TERM_GRACE_MS 3000

struct xs {
    int sock;
    struct dbx_reader rd;
    uint32_t stdin_credit;
    bool stdin_open, started, done;
    bool restart; /* DBX_ERR_RESTART: nothing ran; errmsg says why */
    /* checked for a changed devbox.ini when STARTED comes (before the command's output, and
     * not at all when the box restarts instead) */
    const struct dbx_project *stale_proj;
    bool out_eof[3];
    bool out_closed[3]; /* our reader of that stream went away (EPIPE); the box was told */
    /* the first error writing the command's stdout or stderr other than EPIPE (a full disk
     * under `> file`), and which stream: that stream's output is dropped from then on */
    int out_err, out_err_stream;
    int code;
    char *errmsg;
    struct termios saved;
    bool raw;
    int term_sig;             /* the SIGTERM/SIGHUP that started the grace period, or 0 */
    bool detach;              /* -d: STARTED is the answer */
    uint64_t give_up_ms;      /* when the grace period ends */
    struct dbx_notice notice; /* why the command died, told after the terminal is restored */
    /* DEVBOX_EXEC_TIMING=1: CLOCK_MONOTONIC microseconds of the client's steps, and the
     * supervisor's TIMING (its own phases and the guest's) */
    uint64_t t_start, t_connect, t_sent, t_exit;
    bool have_timing;
    struct dbx_timing timing;
};

uint64_t dbx_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int dbx_log_create(int dfd, const char *name, int flags) {
    if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT) return -1;
    return openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | flags, 0600);
}

bool dbx_log_cut(int fd, off_t cap) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > cap && ftruncate(fd, 0) == 0;
}

static bool timing_wanted(const struct dbx_exec_opts *o) {
    const char *v = getenv("DEVBOX_EXEC_TIMING");
    return v && strcmp(v, "1") == 0 && !o->detach;
}

static uint64_t since(uint64_t from, uint64_t to) {
    return from && to >= from ? to - from : 0;
}

/* One line on stderr: where the exec's time went, in microseconds (docs/protocol.md: TIMING).
 * c_*: the client; s_*: the supervisor; g_*: the guest (its own clock); vio: the time between
 * the supervisor's write of EXEC and its read of TIMING that the guest did not account for
 * (virtio-serial both ways and the guest's wake-ups). */
static void timing_print(const struct xs *x) {
    const struct dbx_timing *t = &x->timing;
    uint64_t recv_at = 0, exit_at = 0, a = 0, b = 0, g = 0;
    fprintf(stderr,
            "devbox: exec timing (us): total=%" PRIu64 " c_prep=%" PRIu64 " c_connect=%" PRIu64,
            since(x->t_start, x->t_exit), since(x->t_start, x->t_connect),
            since(x->t_connect, x->t_sent));
    if (!x->have_timing) {
        fprintf(stderr, " (no phases from the supervisor)\n");
        return;
    }
    (void)dbx_timing_find(t, "s_recv_at", &recv_at);
    (void)dbx_timing_find(t, "s_exit_at", &exit_at);
    fprintf(stderr, " c_to_sup=%" PRIu64, since(x->t_sent, recv_at));
    for (uint32_t i = 0; i < t->n; i++) {
        size_t l = strlen(t->v[i].key);
        if (l < 3 || strcmp(t->v[i].key + l - 3, "_at") != 0)
            fprintf(stderr, " %s=%" PRIu64, t->v[i].key, t->v[i].value);
    }
    if (dbx_timing_find(t, "s_to_started", &a) && dbx_timing_find(t, "s_to_exit", &b) &&
        dbx_timing_find(t, "g_total", &g))
        fprintf(stderr, " vio=%" PRIu64, a + b >= g ? a + b - g : 0);
    fprintf(stderr, " c_from_sup=%" PRIu64 "\n", since(exit_at, x->t_exit));
}

#ifndef DBX_LEAN /* the lean client hands -e with a config.ini to the full devbox */
/* `-e NAME` of a secret config.ini declares would copy the host's value into the box (and
 * `-e NAME=...` replace its placeholder): the one way around the proxy, so refused.  config.ini
 * is read only when -e is given (a warm exec stays fast). */
static int check_env_secrets(const struct dbx_paths *paths, char *const *env, dbx_error **err) {
    if (!env || !*env) return 0;
    struct profile_user u = {0};
    if (dbx_user_load(paths, &u, err) < 0) return -1;
    int r = 0;
    for (char *const *e = env; r == 0 && *e; e++) {
        _cleanup_free_ char *name = dbx_xstrndup(*e, strcspn(*e, "="));
        for (size_t i = 0; r == 0 && i < u.nsecrets; i++) {
            const struct profile_secret *x = &u.secrets[i];
            if (strcmp(x->name, name) == 0)
                r = dbx_error_set(err, 0,
                                  "-e %s: '%s' is a secret (config.ini [secret %s]): the box gets "
                                  "its placeholder, never the value, and the proxy adds the value",
                                  name, name, name);
            else if (x->from == PROFILE_SECRET_ENV && strcmp(x->source, name) == 0)
                r = dbx_error_set(err, 0,
                                  "-e %s: the variable holds the value of secret '%s' (config.ini "
                                  "[secret %s]), which never enters the box",
                                  name, x->name, x->name);
        }
    }
    profile_user_clear(&u);
    return r;
}

#endif

/* kv ("K=V") into *env, replacing an earlier K: the later of --env-file's and -e's entries
 * wins for every program, as in docker, not only for shells (an envp with K twice leaves
 * getenv() the first, sh the last). */
static void env_set(char ***env, const char *kv) {
    size_t k = strcspn(kv, "=") + 1;
    for (char **e = *env; e && *e; e++)
        if (strncmp(*e, kv, k) == 0) {
            free(*e);
            *e = dbx_xstrdup(kv);
            return;
        }
    *env = dbx_strv_push(*env, kv);
}

/* The host's compiled terminfo entry for term, from where ncurses looks (term(5)): $TERMINFO,
 * ~/.terminfo, $TERMINFO_DIRS, then the system's directories; NULL when there is none fit to
 * send (dbx_terminfo_check).  Found in use: a box's image has the common entries (Debian's
 * ncurses-base: xterm-256color, screen, tmux) but not kitty's, alacritty's, foot's or wezterm's,
 * and every curses program in `devbox enter` from those said "unknown terminal type". */
static char *terminfo_read(const char *term, size_t *ret_len) {
    if (!dbx_terminfo_check(term, NULL, 0)) return NULL;
    const char *ti = getenv("TERMINFO"), *home = getenv("HOME"), *dirs = getenv("TERMINFO_DIRS");
    _cleanup_free_ char *list = dbx_xasprintf(
        "%s:%s%s:%s:/etc/terminfo:/lib/terminfo:/usr/share/terminfo", ti ? ti : "",
        home && *home ? home : "", home && *home ? "/.terminfo" : "", dirs ? dirs : "");
    for (char *d = list, *next; d; d = next) {
        next = strchr(d, ':');
        if (next) *next++ = '\0';
        if (*d != '/') continue; /* empty (the system's, searched last anyway) or relative */
        _cleanup_free_ char *path = dbx_xasprintf("%s/%c/%s", d, term[0], term);
        /* O_PATH first: a device or FIFO there is never opened */
        _cleanup_close_ int pfd = open(path, O_PATH | O_CLOEXEC);
        struct stat st;
        if (pfd < 0 || fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode)) continue;
        _cleanup_free_ char *proc = dbx_xasprintf("/proc/self/fd/%d", pfd);
        _cleanup_close_ int fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) continue;
        char *data = NULL;
        size_t len = 0;
        if (dbx_read_all(fd, DBX_TERMINFO_MAX, &data, &len, NULL) == 0 &&
            dbx_terminfo_check(term, (const uint8_t *)data, len)) {
            *ret_len = len;
            return data;
        }
        free(data);
    }
    return NULL;
}

/* Whether our stdout and stderr are one destination, whose writes land in the order made:
 * `2>&1` into a pipe or a file, a terminal, `>>f 2>>f`.  The command then gets one pipe as both
 * (DBX_EXEC_MERGED), as it would here.  With a pipe each, which the guest reads in turn, all that
 * one stream held went before the other's: found in use, `devbox exec -- make 2>&1 | tail`
 * showed every compiler warning after every line of make's, not under the file it was about.
 * Not a regular file opened twice without O_APPEND (`>f 2>f`): here each open writes at its own
 * offset over the other's, so the two stay apart. */
static bool stdout_is_stderr(void) {
    struct stat a, b;
    if (fstat(1, &a) < 0 || fstat(2, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return false;
    if (!S_ISREG(a.st_mode)) return true; /* one pipe, terminal or socket */
    int fa = fcntl(1, F_GETFL), fb = fcntl(2, F_GETFL);
    if (fa < 0 || fb < 0) return false;
    if (fa & fb & O_APPEND) return true;
    pid_t self = getpid(); /* one open file description, one offset: `>f 2>&1` */
    long r = syscall(SYS_kcmp, self, self, KCMP_FILE, 1, 2);
    if (r >= 0) return r == 0;
    /* no kcmp (a kernel without it, a seccomp filter: Docker's refuses it without
     * CAP_SYS_PTRACE): a status flag changed through fd 1 shows through fd 2 when both are one
     * open; O_NONBLOCK, which means nothing to a regular file, and put back at once */
    if (fcntl(1, F_SETFL, fa ^ O_NONBLOCK) < 0) return false;
    int fb2 = fcntl(2, F_GETFL);
    (void)fcntl(1, F_SETFL, fa);
    return fb2 >= 0 && ((fb2 ^ fb) & O_NONBLOCK);
}

int dbx_exec_req_build(const struct dbx_project *proj, const struct dbx_exec_opts *o,
                       struct dbx_buf *out, dbx_error **err) {
    struct dbx_exec_req req = {0};
    req.flags = (o->tty ? DBX_EXEC_TTY : 0) | (o->interactive ? DBX_EXEC_STDIN : 0) |
                (o->login ? DBX_EXEC_LOGIN : 0) | (o->admin ? DBX_EXEC_ADMIN : 0) |
                (o->detach ? DBX_EXEC_DETACH : 0) | (timing_wanted(o) ? DBX_EXEC_TIMING : 0) |
                /* -d: its output goes to one log (supervisor-procs.c), so one stream too */
                (!o->tty && (o->detach || stdout_is_stderr()) ? DBX_EXEC_MERGED : 0);
    req.timeout_ms = o->timeout_ms;
    /* files the command makes get the modes they would get from the same command here */
    mode_t mask = umask(0);
    umask(mask);
    req.umask = mask & 0777;
    struct winsize ws;
    if (o->tty && (ioctl(0, TIOCGWINSZ, &ws) == 0 || ioctl(1, TIOCGWINSZ, &ws) == 0)) {
        req.rows = ws.ws_row;
        req.cols = ws.ws_col;
    }
    req.user = (char *)(o->user ? o->user : "");
    _cleanup_free_ char *cwd = NULL;
    if (!o->workdir)
        cwd = dbx_xstrdup(proj->cwd);
    else if (o->workdir[0] == '/')
        cwd = dbx_xstrdup(o->workdir);
    else
        cwd = dbx_xasprintf("%s/%s", proj->cwd, o->workdir);
    req.cwd = cwd;
    _cleanup_strv_ char **env = NULL;
    for (char **e = o->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == *e) return dbx_error_set(err, 0, "invalid environment entry '%s'", *e);
        _cleanup_free_ char *kv = NULL;
        if (!eq) { /* docker's `-e NAME`: take the value from our environment */
            const char *v = getenv(*e);
            if (!v) continue;
            kv = dbx_xasprintf("%s=%s", *e, v);
        } else
            kv = dbx_xstrdup(*e);
        env_set(&env, kv);
    }
    _cleanup_free_ char *terminfo = NULL;
    size_t terminfo_len = 0;
    if (o->tty) { /* the terminal's name (-e's, else ours) and its entry go along */
        const char *term = NULL;
        for (char **e = env; e && *e && !term; e++)
            if (dbx_str_has_prefix(*e, "TERM=")) term = *e + 5;
        if (!term) {
            const char *t = getenv("TERM");
            _cleanup_free_ char *kv = dbx_xasprintf("TERM=%s", t && *t ? t : "xterm");
            env = dbx_strv_push(env, kv);
            term = env[dbx_strv_len(env) - 1] + 5;
        }
        terminfo = terminfo_read(term, &terminfo_len);
    }
    req.terminfo = (uint8_t *)terminfo;
    req.terminfo_len = (uint32_t)terminfo_len;
    req.argv = o->argv;
    req.argc = (uint32_t)dbx_strv_len(o->argv);
    req.env = env;
    req.envc = (uint32_t)dbx_strv_len(env);
    /* What execve would refuse on the host is refused as it would be (E2BIG: exit 126); the
     * box's own execve judges the rest (protocol.h, DBX_EXEC_MAX). */
    for (uint32_t i = 0; i < req.argc; i++)
        if (strlen(req.argv[i]) > DBX_ARG_STR_MAX - 1)
            return dbx_error_set(err, E2BIG, "argument %u of the command (%zu bytes, over %u)",
                                 i + 1, strlen(req.argv[i]), DBX_ARG_STR_MAX - 1);
    for (uint32_t i = 0; i < req.envc; i++)
        if (strlen(req.env[i]) > DBX_ARG_STR_MAX - 1)
            return dbx_error_set(err, E2BIG, "environment variable %.*s (%zu bytes, over %u)",
                                 (int)strcspn(req.env[i], "="), req.env[i], strlen(req.env[i]),
                                 DBX_ARG_STR_MAX - 1);
    if (req.argc > DBX_MAX_ARGS)
        return dbx_error_set(err, E2BIG, "%u arguments (over %u)", req.argc, DBX_MAX_ARGS);
    if (req.envc > DBX_MAX_ENV)
        return dbx_error_set(err, E2BIG, "%u environment variables (over %u)", req.envc,
                             DBX_MAX_ENV);
    dbx_exec_req_encode(&req, out);
    if (out->len > DBX_EXEC_MAX)
        return dbx_error_set(err, E2BIG, "the command line and environment (%zu bytes, over %u)",
                             out->len, DBX_EXEC_MAX);
    return 0;
}

int dbx_write_out(int fd, const void *buf, size_t n) {
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {fd, POLLOUT, 0};
            poll(&pf, 1, -1);
            continue;
        }
        if (w < 0) return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void raw_on(struct xs *x);
static void raw_off(struct xs *x);

static void on_frame(struct xs *x, const struct dbx_frame_hdr *h, const uint8_t *p) {
    uint8_t st;
    uint32_t v;
    bool sig;
    switch (h->type) {
    case DBX_MSG_STARTED:
        x->started = true;
        if (x->stale_proj && dbx_profile_stale(x->stale_proj)) {
            bool raw = x->raw; /* a line of its own on a terminal in raw mode too */
            raw_off(x);
            fprintf(stderr,
                    "devbox: the box runs the previous %s; 'devbox stop' to apply the new one\n",
                    PROFILE_FILE);
            if (raw) raw_on(x);
        }
        if (x->detach) { /* the supervisor keeps the command; we are done */
            if (dbx_dec_u32(p, h->len, &v) == 0) {
                printf("%" PRIu32 "\n", v);
                /* its reader gone (SIGPIPE is ignored here) is no failure; cmd_stdout_done
                 * tells any other */
                if (fflush(stdout) != 0 && errno == EPIPE) clearerr(stdout);
                x->code = 0;
            } else {
                x->errmsg = dbx_xstrdup("malformed started frame from the supervisor");
            }
            x->done = true;
        }
        break;
    case DBX_MSG_STDOUT:
    case DBX_MSG_STDERR: {
        int stream = h->type == DBX_MSG_STDOUT ? 1 : 2;
        if (h->len == 0) {
            x->out_eof[stream] = true;
            break;
        }
        /* A closed stdout (e.g. `| head`) must not stall the command: drop and keep crediting,
         * and tell the box once, which closes the command's pipe so that it meets a pipe
         * without a reader as it would here (SIGPIPE).  Any other write error drops the rest of
         * that stream too, and devbox fails at the end: output that never reached its file is
         * not a success. */
        int w = x->out_err_stream == stream || x->out_closed[stream]
                    ? 0
                    : dbx_write_out(stream, p, h->len);
        uint8_t c[5];
        if (w == -EPIPE) {
            x->out_closed[stream] = true; /* a credit of 0: the reader is gone */
            (void)dbx_send_frame(x->sock, DBX_MSG_CREDIT, 1, c,
                                 dbx_enc_credit(c, (uint8_t)stream, 0));
        } else if (w < 0 && !x->out_err) {
            x->out_err = -w;
            x->out_err_stream = stream;
        }
        (void)dbx_send_frame(x->sock, DBX_MSG_CREDIT, 1, c,
                             dbx_enc_credit(c, (uint8_t)stream, h->len));
        break;
    }
    case DBX_MSG_CREDIT:
        if (dbx_dec_credit(p, h->len, &st, &v) == 0 && st == DBX_STREAM_STDIN) x->stdin_credit += v;
        break;
    case DBX_MSG_NOTICE: /* garbage is ignored: the exit code still tells the story */
        (void)dbx_dec_notice(p, h->len, &x->notice);
        break;
    case DBX_MSG_TIMING:
        x->have_timing = dbx_timing_decode(p, h->len, &x->timing, NULL) == 0;
        break;
    case DBX_MSG_EXIT:
        x->t_exit = dbx_mono_us();
        if (dbx_dec_exit(p, h->len, &sig, &v) == 0)
            x->code = dbx_exit_code(sig, v);
        else
            x->code = 125;
        x->done = true;
        break;
    case DBX_MSG_ERROR: {
        char *m = NULL;
        if (dbx_error_msg_decode(p, h->len, &v, &m) < 0) {
            v = 125;
            m = dbx_xstrdup("malformed error from the supervisor");
        }
        x->code = v >= 1 && v <= 255 ? (int)v : 125;
        x->restart = v == DBX_ERR_RESTART && !x->started;
        x->errmsg = dbx_escape(m);
        free(m);
        x->done = true;
        break;
    }
    default:
        break;
    }
}

static void raw_on(struct xs *x) {
    if (!isatty(0) || tcgetattr(0, &x->saved) < 0) return;
    struct termios t = x->saved;
    cfmakeraw(&t);
    if (tcsetattr(0, TCSADRAIN, &t) == 0) x->raw = true;
}

static void raw_off(struct xs *x) {
    if (x->raw) tcsetattr(0, TCSADRAIN, &x->saved);
    x->raw = false;
}

/* Ctrl-Z on a terminal that is not raw (no -t, or -t without -i): the terminal's SIGTSTP comes
 * to us, the command's foreground job here.  It went no further: devbox stopped and the
 * command ran on in the box (a build went on compiling until its output filled the window, and
 * all it had printed came at `fg`).  Now the command gets the SIGTSTP first, and the SIGCONT
 * of `fg` or `bg` after (forwarded like the rest, on_signal); then we stop as the shell
 * expects: the default action of a SIGTSTP raised while blocked, let through.  False when we
 * did not stop: our process group is orphaned (we lead a session: `setsid`, `ssh -t host devbox
 * ...`, a terminal emulator's `-e`), where the kernel drops the stop, and no SIGCONT will come.
 * With -t -i the terminal is raw: ^Z is a byte for the box's own terminal, where only a shell
 * with job control (`devbox enter`) acts on it. */
static bool stop_self(void) {
    sigset_t t, pending;
    sigemptyset(&t);
    sigaddset(&t, SIGTSTP);
    (void)raise(SIGTSTP);
    sigprocmask(SIG_UNBLOCK, &t, NULL); /* stops here until SIGCONT */
    sigprocmask(SIG_BLOCK, &t, NULL);
    return sigpending(&pending) == 0 && sigismember(&pending, SIGCONT); /* blocked: pending */
}

static void on_signal(struct xs *x, int sfd, bool tty) {
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGWINCH) {
            struct winsize ws;
            if (!tty || ioctl(0, TIOCGWINSZ, &ws) < 0) continue;
            uint8_t b[4];
            (void)dbx_send_frame(x->sock, DBX_MSG_RESIZE, 1, b,
                                 dbx_enc_resize(b, ws.ws_row, ws.ws_col));
        } else {
            uint8_t b[4];
            (void)dbx_send_frame(x->sock, DBX_MSG_SIGNAL, 1, b, dbx_enc_u32(b, si.ssi_signo));
            if (si.ssi_signo == SIGTSTP && !stop_self()) /* nothing will continue it */
                (void)dbx_send_frame(x->sock, DBX_MSG_SIGNAL, 1, b, dbx_enc_u32(b, SIGCONT));
            if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP) {
                if (x->term_sig)
                    x->give_up_ms = 0; /* the second one: now */
                else
                    x->give_up_ms = dbx_now_ms() + TERM_GRACE_MS;
                x->term_sig = (int)si.ssi_signo;
            }
        }
    }
}

static void pump_stdin(struct xs *x) {
    uint8_t buf[DBX_DATA_CHUNK];
    size_t want = x->stdin_credit < sizeof(buf) ? x->stdin_credit : sizeof(buf);
    ssize_t n = read(0, buf, want);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) { /* EOF (or an unreadable stdin): the command sees EOF */
        (void)dbx_send_frame(x->sock, DBX_MSG_STDIN, 1, NULL, 0);
        x->stdin_open = false;
        return;
    }
    x->stdin_credit -= (uint32_t)n;
    (void)dbx_send_frame(x->sock, DBX_MSG_STDIN, 1, buf, (size_t)n);
}

static int relay(struct xs *x, const struct dbx_exec_opts *o, int sfd, dbx_error **err) {
    uint8_t buf[65536];
    while (!x->done) {
        struct pollfd pf[3] = {
            {x->sock, POLLIN, 0},
            {sfd, POLLIN, 0},
            {x->stdin_open && x->started && x->stdin_credit > 0 ? 0 : -1, POLLIN, 0},
        };
        int timeout = -1;
        if (x->term_sig) {
            uint64_t now = dbx_now_ms();
            timeout = x->give_up_ms > now ? (int)(x->give_up_ms - now) : 0;
        }
        if (poll(pf, 3, timeout) < 0 && errno != EINTR) return dbx_error_set(err, errno, "poll");
        if (pf[1].revents) on_signal(x, sfd, o->tty);
        if (x->term_sig && dbx_now_ms() >= x->give_up_ms) {
            /* Closing the connection makes the supervisor SIGKILL the command. */
            x->code = 128 + x->term_sig;
            x->errmsg =
                dbx_xasprintf("the command did not end within %us of %s; it is killed",
                              TERM_GRACE_MS / 1000, x->term_sig == SIGTERM ? "SIGTERM" : "SIGHUP");
            return 0;
        }
        if (pf[2].revents) pump_stdin(x);
        if (!pf[0].revents) continue;
        ssize_t n = read(x->sock, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return dbx_error_set(err, 0, "lost the connection to the VM's supervisor");
        dbx_reader_feed(&x->rd, buf, (size_t)n);
        struct dbx_frame_hdr h;
        const uint8_t *p;
        enum dbx_read_result r;
        while (!x->done && (r = dbx_reader_next(&x->rd, &h, &p, err)) != DBX_READ_NEED_MORE) {
            if (r == DBX_READ_BAD) return dbx_supervisor_bad_frame(&h, err);
            on_frame(x, &h, p);
        }
    }
    return 0;
}

int dbx_exec_session(int sock, const struct dbx_buf *req, const struct dbx_exec_opts *o,
                     const struct dbx_project *proj, uint64_t t_start, uint64_t t_connect,
                     bool *ret_ran, dbx_error **err) {
    struct xs x = {.sock = sock,
                   .stale_proj = proj,
                   .stdin_credit = DBX_WINDOW,
                   .stdin_open = o->interactive,
                   .code = 125,
                   .detach = o->detach,
                   .t_start = t_start,
                   .t_connect = t_connect};
    uint32_t flags = 0; /* the request's first field */
    bool merged = dbx_dec_u32(req->data, req->len, &flags) == 0 && (flags & DBX_EXEC_MERGED);
    int r = dbx_send_frame(x.sock, DBX_MSG_EXEC, 1, req->data, req->len);
    x.t_sent = dbx_mono_us();
    if (r < 0) {
        dbx_send_failed(x.sock, r, "send the command to the supervisor", err);
        close(x.sock);
        return -1;
    }
    sigset_t mask;
    sigemptyset(&mask);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(forwarded); i++) {
        signal(forwarded[i], SIG_DFL); /* a background job inherits SIGINT ignored */
        sigaddset(&mask, forwarded[i]);
    }
    /* job control (stop_self), unless our shell has none and left SIGTSTP ignored */
    struct sigaction tstp;
    if (!(o->tty && o->interactive) && sigaction(SIGTSTP, NULL, &tstp) == 0 &&
        tstp.sa_handler != SIG_IGN) {
        sigaddset(&mask, SIGTSTP);
        sigaddset(&mask, SIGCONT);
    }
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    _cleanup_close_ int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (o->tty && o->interactive) raw_on(&x);
    r = relay(&x, o, sfd, err);
    raw_off(&x);
    close(x.sock);
    dbx_reader_free(&x.rd);
    /* the hint is for a command that ran and failed, not for devbox's own errors (its output
     * lost among them), nor for one whose reader went away (`| head`: SIGPIPE, 141) */
    *ret_ran = !x.errmsg && !x.out_err && !x.out_closed[1] && !x.out_closed[2];
    if (x.notice.kind) {
        _cleanup_free_ char *m = dbx_notice_line(&x.notice, o->argv);
        fprintf(stderr, "devbox: %s\n", m);
    }
    if (x.t_exit && timing_wanted(o)) timing_print(&x);
    if (x.restart) { /* the caller restarts the box and says so */
        /* and waits for the start (a [setup] can take minutes; the lean client's exec of the
         * full devbox keeps the mask): Ctrl-C ends devbox there, as at any start.  What is
         * pending goes first; of it, only a signal that ends us is raised again. */
        struct signalfd_siginfo si;
        int end = 0;
        while (sfd >= 0 && read(sfd, &si, sizeof(si)) == sizeof(si))
            if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP)
                end = (int)si.ssi_signo;
        sigprocmask(SIG_UNBLOCK, &mask, NULL);
        if (end) raise(end);
        dbx_error_set(err, 0, "%s", x.errmsg);
        free(x.errmsg);
        return DBX_ERR_RESTART;
    }
    bool failed = x.errmsg != NULL;
    if (failed) {
        fprintf(stderr, "devbox: %s\n", x.errmsg);
        free(x.errmsg);
    }
    if (r >= 0 && x.out_err && !failed) {
        fprintf(stderr,
                "devbox: could not write the command's %s: %s; the rest of it was dropped "
                "(the command exited %d)\n",
                x.out_err_stream == 2 ? "stderr"
                : merged              ? "output" /* one stream of both */
                                      : "stdout",
                strerror(x.out_err), x.code);
        return 125;
    }
    return r < 0 ? r : x.code;
}

#ifndef DBX_LEAN /* the lean client hands `-u root` and --admin to the full devbox */
/* A command as root failed, for a reason the user may not guess; say what would work.  `-u
 * root` (or `-u 0`, `0:0`...): the profile gives root in the box no capability, so a package
 * manager or chown fails (asked of the profile on disk; one that does not load says nothing
 * here, the next start reports it).  --admin: the box runs without a network, so a package
 * manager cannot download (found in use: README's `--admin -- apt-get install -y jq` in a box of
 * the default profile ended in apt's "Temporary failure resolving 'deb.debian.org'"); asked of
 * the running box's status file, which says the network it started with, and only for a command
 * that downloads.  Only after a failure (a warm exec stays fast). */
/* Whether a word of argv (or of a shell string in it) names a program that downloads: a package
 * manager, or curl, wget or git.  The network hint is for those: `--admin -- chown` failing in a
 * box without a network has nothing to do with it (the hint printed after any failed --admin). */
static bool names_downloader(char *const *argv) {
    static const char *const names[] = {
        "apt",    "apt-get", "aptitude", "apk",  "dnf",      "yum",    "microdnf", "zypper",
        "pacman", "pip",     "pip3",     "pipx", "uv",       "poetry", "conda",    "mamba",
        "npm",    "npx",     "yarn",     "pnpm", "corepack", "gem",    "bundle",   "cargo",
        "rustup", "go",      "composer", "curl", "wget",     "git",
    };
    for (char *const *a = argv; a && *a; a++) {
        _cleanup_free_ char *w = dbx_xstrdup(*a);
        char *save = NULL;
        for (char *t = strtok_r(w, " \t\n;&|()`'\"", &save); t;
             t = strtok_r(NULL, " \t\n;&|()`'\"", &save)) {
            const char *base = strrchr(t, '/') ? strrchr(t, '/') + 1 : t;
            for (size_t i = 0; i < DBX_ARRAY_SIZE(names); i++)
                if (strcmp(base, names[i]) == 0) return true;
        }
    }
    return false;
}

static void hint_root(const struct dbx_paths *paths, const struct dbx_project *proj,
                      const struct dbx_exec_opts *o) {
    if (o->admin) {
        if (!names_downloader(o->argv)) return;
        struct dbx_status st = {0};
        bool no_net = dbx_status_read(proj->run_dir, &st) == 0 && st.state != DBX_VM_STOPPED &&
                      st.network == DBX_NET_NONE;
        dbx_status_clear(&st);
        if (no_net)
            fprintf(stderr, "devbox: this box has no network: a package manager cannot download "
                            "here; [setup] installs with the host's mirrors (docs/setup.md)\n");
        return;
    }
    if (!o->user || !dbx_user_is_root(o->user)) return;
    struct profile prof = {0};
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_profile_load(paths, proj, &prof, NULL, &e) < 0) return;
    /* what policy/ compiles into the plan's caps for uid 0 */
    bool none = (prof.caps | prof.caps_user) == 0;
    profile_clear(&prof);
    if (none)
        fprintf(stderr, "devbox: root in this box has no capabilities; 'devbox exec --admin -- "
                        "CMD' runs one command with the ones package managers need\n");
}

int dbx_exec(const struct dbx_paths *paths, const struct dbx_project *proj,
             const struct dbx_exec_opts *o, dbx_error **err) {
    uint64_t t_start = dbx_mono_us();
    struct dbx_buf req = {0};
    if (check_env_secrets(paths, o->env, err) < 0) return -1;
    if (dbx_exec_req_build(proj, o, &req, err) < 0) {
        dbx_buf_free(&req);
        return (*err)->code == E2BIG ? -E2BIG : -1; /* too large, or an -e without a name */
    }
    int r;
    bool ran = false;
    /* the lean client told the user already (lean-main.c); not for the supervisor we may start */
    bool said = getenv(DBX_ENV_RESTART_SAID) != NULL;
    unsetenv(DBX_ENV_RESTART_SAID);
    /* twice at most: the second start shares the workspace as it is now */
    for (int attempt = 0;; attempt++) {
        int sock = -1;
        _cleanup_strv_ char **warnings = NULL;
        uint64_t t_connect = dbx_mono_us();
        struct dbx_connect_opts co = {.start = true, .network_none = o->network_none};
        r = dbx_connect(paths, proj, &co, &sock, &warnings, err);
        for (char **w = warnings; w && *w; w++) {
            _cleanup_free_ char *m = dbx_escape(*w);
            fprintf(stderr, "devbox: warning: %s\n", m);
        }
        if (r < 0) {
            dbx_buf_free(&req);
            return -1;
        }
        _cleanup_close_ int sup = dbx_peer_pidfd(sock); /* the supervisor this attempt reached */
        r = dbx_exec_session(sock, &req, o, proj, t_start, t_connect, &ran, err);
        if (r != DBX_ERR_RESTART) break;
        if (attempt > 0) { /* the box it just started asks again: say so, do not loop */
            dbx_buf_free(&req);
            dbx_error_wrap(err, "the box asked for a restart again after restarting");
            return -1;
        }
        if (!said) dbx_restart_notice((*err)->msg);
        dbx_error_free(err);
        if (dbx_restart_wait(paths, proj, sup, err) < 0) {
            dbx_buf_free(&req);
            return -1;
        }
    }
    dbx_buf_free(&req);
    if (r > 0 && ran) hint_root(paths, proj, o);
    return r < 0 ? -1 : r; /* -E2BIG is the command line's alone */
}
#endif

/* ---- issue 13: processes (helper A) ---- */

int dbx_parse_duration_ms(const char *s, uint32_t *ret_ms, dbx_error **err) {
    static const struct {
        char unit;
        uint64_t ms;
    } units[] = {{'s', 1000}, {'m', 60 * 1000}, {'h', 3600 * 1000}, {'d', 24 * 3600 * 1000}};
    size_t n = strspn(s, "0123456789");
    uint64_t mult = 0;
    if (n > 0 && n <= 10 && s[n] == '\0') mult = 1000;
    for (size_t i = 0; n > 0 && n <= 10 && !mult && i < DBX_ARRAY_SIZE(units); i++)
        if (s[n] == units[i].unit && s[n + 1] == '\0') mult = units[i].ms;
    _cleanup_free_ char *num = dbx_xstrndup(s, n);
    uint64_t v;
    if (!mult || dbx_parse_u64(num, 1, UINT32_MAX, &v) < 0 || v * mult > DBX_EXEC_TIMEOUT_MAX) {
        _cleanup_free_ char *q = dbx_escape(s);
        return dbx_error_setx(err, EINVAL,
                              "invalid duration '%s' (a whole number with s, m, h or d; 1s to "
                              "30d)",
                              q);
    }
    *ret_ms = (uint32_t)(v * mult);
    return 0;
}

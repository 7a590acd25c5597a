/* guest/init-serve.c: the serve loop of the guest init.  One poll() over the agent port, the
 * SIGCHLD signalfd and every session's pipes or pty; no threads, no timers on the hot path.
 *
 * Frame order per session, as the host sees it:
 *   ERROR                                   (the request was refused or the start failed), or
 *   STARTED, STDOUT/STDERR data..., empty STDOUT, empty STDERR (either order), EXIT
 * and ERROR may replace the tail at any point when the session is ended for a protocol
 * violation.  ERROR and EXIT are always last.  With a tty the empty STDERR comes right after
 * STARTED (the pty is the one output stream).  Frames for a session that already ended are
 * ignored, except that a bad header naming it is still answered with ERROR. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <inttypes.h>
#include <time.h>

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>

#define AGENT_READ_MAX (1024u * 1024u) /* per loop iteration, so children get their turn */
#define SESS_READS 8                   /* reads per stream per wakeup, for the same reason */
#define HUP_RETRY_MS 10
#define SHUTDOWN_TERM_MS 2000
#define SHUTDOWN_KILL_MS 1000
/* from a pty session's exit to its terminal's hang-up, when a background job holds the terminal
 * (pty_hangups): long after the tty layer moved the command's last output to the master (a
 * queued work item, run as soon as the vCPU is free), short beside a person's next keystroke */
#define PTY_HANGUP_GRACE_MS 200
/* ... moved on while output still comes after the exit, up to this long after it */
#define PTY_HANGUP_CAP_MS 2000

/* ---- output to the host ----------------------------------------------------------------- */

void agent_send(struct agent *a, uint8_t type, uint32_t sid, const void *p, size_t n) {
    dbx_frame_put(&a->out, type, sid, p, n);
}

void agent_send_error(struct agent *a, uint32_t sid, uint32_t code, const char *msg) {
    struct dbx_buf b = {0};
    dbx_error_msg_encode(&b, code, msg);
    agent_send(a, DBX_MSG_ERROR, sid, b.data, b.len);
    dbx_buf_free(&b);
}

static void send_errorf(struct agent *a, uint32_t sid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_errorf(struct agent *a, uint32_t sid, const char *fmt, ...) {
    _cleanup_free_ char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) dbx_oom_hook();
    va_end(ap);
    agent_send_error(a, sid, DBX_ERR_FAILED, msg);
}

int agent_flush(struct agent *a) {
    while (dbx_buf_avail(&a->out) > 0) {
        ssize_t n = write(a->fd, dbx_buf_head(&a->out), dbx_buf_avail(&a->out));
        if (n < 0) {
            if (errno == EINTR) continue;
            /* virtio-serial: EAGAIN also while the host end is disconnected; keep the data */
            if (errno == EAGAIN) return 0;
            return -errno;
        }
        if (n == 0) {
            /* virtio_console (Linux 6.1 __send_to_port) returns 0 when its virtqueue had no
             * room after all; POLLOUT may not follow, so retry on a timer, never spin. */
            a->hup = true;
            a->hup_until = dbx_now_ms() + HUP_RETRY_MS;
            return 0;
        }
        dbx_buf_consume(&a->out, (size_t)n);
    }
    return 0;
}

/* ---- sessions --------------------------------------------------------------------------- */

static struct session *session_new(uint32_t id) {
    struct session *s = dbx_xcalloc(1, sizeof(*s));
    s->id = id;
    s->pty = s->in_fd = s->rd_fd[0] = s->rd_fd[1] = s->rd_fd[2] = s->cg_fd = s->mnt_fd = -1;
    s->credit[DBX_STREAM_STDOUT] = s->credit[DBX_STREAM_STDERR] = DBX_WINDOW;
    return s;
}

static void session_close_fds(struct session *s) {
    if (s->pty >= 0) close(s->pty);
    if (s->in_fd >= 0 && s->in_fd != s->pty) close(s->in_fd);
    for (int i = 1; i <= 2; i++)
        if (s->rd_fd[i] >= 0 && s->rd_fd[i] != s->pty) close(s->rd_fd[i]);
    s->pty = s->in_fd = s->rd_fd[1] = s->rd_fd[2] = -1;
    dbx_buf_free(&s->in);
}

static void session_free(struct session *s) {
    if (!s) return;
    session_close_fds(s);
    if (s->cg_fd >= 0) close(s->cg_fd);   /* procs_leaf_release ran unless the start failed */
    if (s->mnt_fd >= 0) close(s->mnt_fd); /* often the last reference: see exec_spawn */
    free(s->times);
    free(s);
}

static struct session *find_live(struct agent *a, uint32_t id) {
    for (size_t i = 0; i < a->nsess; i++)
        if (!a->sess[i]->dead && a->sess[i]->id == id) return a->sess[i];
    return NULL;
}

static size_t count_live(struct agent *a) {
    size_t n = 0;
    for (size_t i = 0; i < a->nsess; i++)
        n += !a->sess[i]->dead;
    return n;
}

static void session_add(struct agent *a, struct session *s) {
    if (a->nsess == a->cap_sess) {
        a->cap_sess = a->cap_sess ? 2 * a->cap_sess : 16;
        a->sess = dbx_xrealloc(a->sess, a->cap_sess * sizeof(*a->sess));
    }
    a->sess[a->nsess++] = s;
}

static bool any_running(struct agent *a) {
    for (size_t i = 0; i < a->nsess; i++)
        if (!a->sess[i]->dead && !a->sess[i]->exited) return true;
    return false;
}

/* Free finished sessions; only here, between iterations, so pointers in the poll table and
 * in handlers never dangle. */
static void sweep(struct agent *a) {
    sock_sweep(a);
    size_t j = 0;
    bool ended = false;
    for (size_t i = 0; i < a->nsess; i++) {
        if (a->sess[i]->dead) {
            /* here rather than with EXIT: the rmdir runs after EXIT went out */
            procs_leaf_release(a, a->sess[i]);
            session_free(a->sess[i]);
            ended = true;
        } else {
            a->sess[j++] = a->sess[i];
        }
    }
    a->nsess = j;
    /* The next command's leaf, when a command has just ended (its EXIT written: the next one
     * is on its way) or none runs; never right after an EXEC, where the mkdir would take the
     * vCPU from the command just started (g_run +1.2 ms, measured). */
    if (a->setup == SETUP_DONE && (ended || !any_running(a))) {
        procs_leaf_prepare(a, a->last_exec_id);
        policy_mnt_prepare(&a->box);
        exec_spare_start(a);
    }
}

/* End a session early: ERROR is its last frame and its process group is killed. */
static void session_abort(struct agent *a, struct session *s, const char *msg, bool tell) {
    if (tell) agent_send_error(a, s->id, DBX_ERR_FAILED, msg);
    /* The leaf (or, without one, the group, which outlives a reaped leader while members
     * remain) reaches every process the command started. */
    procs_leaf_kill(s);
    session_close_fds(s);
    procs_leaf_release(a, s);
    s->dead = true;
}

/* EXIT once the process is reaped and every output stream has reached EOF. */
static void session_check_done(struct agent *a, struct session *s) {
    if (s->dead || !s->exited || !s->eof_sent[DBX_STREAM_STDOUT] || !s->eof_sent[DBX_STREAM_STDERR])
        return;
    stats_session_end(a, s); /* NOTICE comes right before EXIT */
    if (s->times) exec_times_send(a, s);
    uint8_t p[5];
    bool sig = WIFSIGNALED(s->status) && !s->timed_out;
    /* --timeout: 124 as timeout(1) reports it, whatever the kill did to the status */
    uint32_t v = s->timed_out ? 124
                 : sig        ? (uint32_t)WTERMSIG(s->status)
                              : (uint32_t)WEXITSTATUS(s->status);
    agent_send(a, DBX_MSG_EXIT, s->id, p, dbx_enc_exit(p, sig, v));
    session_close_fds(s);
    s->dead = true; /* its leaf goes in sweep(), after EXIT is written */
}

static void credit_back(struct agent *a, struct session *s, size_t n) {
    if (n == 0) return;
    uint8_t p[5];
    s->in_pending -= (uint32_t)n;
    agent_send(a, DBX_MSG_CREDIT, s->id, p, dbx_enc_credit(p, DBX_STREAM_STDIN, (uint32_t)n));
}

/* Stop delivering stdin: the command closed it, or the host ended it.  Pending bytes are
 * credited back so the host's window never stays consumed by data nobody will read. */
static void stdin_close(struct agent *a, struct session *s) {
    credit_back(a, s, dbx_buf_avail(&s->in));
    dbx_buf_free(&s->in);
    if (s->in_fd >= 0 && s->in_fd != s->pty) close(s->in_fd);
    s->in_fd = -1;
}

static void stdin_write(struct agent *a, struct session *s) {
    while (s->in_fd >= 0 && dbx_buf_avail(&s->in) > 0) {
        ssize_t n = write(s->in_fd, dbx_buf_head(&s->in), dbx_buf_avail(&s->in));
        if (n > 0) {
            dbx_buf_consume(&s->in, (size_t)n);
            credit_back(a, s, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        stdin_close(a, s); /* EPIPE from a pipe, EIO from a pty whose slave is gone */
        return;
    }
    /* A pty has no half-close: EOF from the host leaves the master alone. */
    if (s->in_fd >= 0 && s->in_eof && !s->tty && dbx_buf_avail(&s->in) == 0) stdin_close(a, s);
}

static void output_eof(struct agent *a, struct session *s, int st) {
    agent_send(a, st == DBX_STREAM_STDOUT ? DBX_MSG_STDOUT : DBX_MSG_STDERR, s->id, NULL, 0);
    s->eof_sent[st] = true;
    if (s->rd_fd[st] == s->pty) { /* the pty is also stdin: nothing more can be written */
        stdin_close(a, s);
        close(s->pty);
        s->pty = -1;
    } else {
        close(s->rd_fd[st]);
    }
    s->rd_fd[st] = -1;
    session_check_done(a, s);
}

/* The host's reader of this output is gone (`devbox exec CMD | head`), said by a CREDIT of 0
 * bytes: our read end closes, as the pipe's reader would be gone had the command run on the
 * host, so the command's next write gets SIGPIPE (or EPIPE) and it stops as it would there,
 * instead of running on into output nobody reads (`yes | head -1` never ended).  On a pty
 * (`devbox exec -t CMD | head`) the terminal itself is what nobody reads any more: closing the
 * master hangs it up, as a terminal window that closes does: the session's leader (the
 * command) gets SIGHUP, which a shell passes on to its jobs, and every write to the terminal
 * fails with EIO; its stdin, the same master, ends with it.  A
 * zero credit meant nothing before, so an older supervisor passes it on and an older init
 * ignores it (the host then drops the output as it did). */
static void output_closed(struct agent *a, struct session *s, int st) {
    if (s->rd_fd[st] >= 0 && !s->eof_sent[st]) output_eof(a, s, st);
}

/* Move output to the host while it has credit and the queue is not backed up. */
static void output_read(struct agent *a, struct session *s, int st) {
    static uint8_t buf[DBX_DATA_CHUNK];
    for (int i = 0; i < SESS_READS; i++) {
        if (s->rd_fd[st] < 0 || s->credit[st] == 0 || dbx_buf_avail(&a->out) >= INIT_OUT_HIGH)
            return;
        size_t want = s->credit[st] < sizeof(buf) ? s->credit[st] : sizeof(buf);
        ssize_t n = read(s->rd_fd[st], buf, want);
        if (n > 0) {
            agent_send(a, st == DBX_STREAM_STDOUT ? DBX_MSG_STDOUT : DBX_MSG_STDERR, s->id, buf,
                       (size_t)n);
            s->credit[st] -= (uint32_t)n;
            if (s->hangup_ms && !s->hangup_draining) { /* still coming: a grace from here */
                uint64_t due = dbx_now_ms() + PTY_HANGUP_GRACE_MS;
                s->hangup_ms = due < s->hangup_cap_ms ? due : s->hangup_cap_ms;
            }
            if ((size_t)n < want) return; /* drained for now: skip the EAGAIN round trip */
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        /* 0 from a pipe; EIO from a pty master once every slave fd is closed.  Any other
         * error cannot be retried either, so it ends the stream the same way. */
        output_eof(a, s, st);
        return;
    }
}

/* ---- reaping ---------------------------------------------------------------------------- */

static struct session *find_pid(struct agent *a, pid_t pid) {
    for (size_t i = 0; i < a->nsess; i++) {
        struct session *s = a->sess[i];
        if (!s->dead && !s->exited && s->pid == pid) return s;
    }
    return NULL;
}

/* Reap every child, including orphans reparented to us.  With notify, finished sessions
 * send EXIT; during shutdown only their state is updated. */
static void reap(struct agent *a, bool notify) {
    struct signalfd_siginfo si;
    while (read(a->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    }
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0) break;
        if (pid == a->spare.proc.pid)
            a->spare.proc.reaped = true; /* exec_spare_start makes another */
        struct session *s = find_pid(a, pid);
        if (!s) continue;
        s->exited = true;
        s->status = st;
        if (s->times) s->times->t[T_REAPED] = exec_now_us();
        if (s->tty && s->rd_fd[DBX_STREAM_STDOUT] >= 0) {
            uint64_t now = dbx_now_ms();
            s->hangup_ms = now + PTY_HANGUP_GRACE_MS;
            s->hangup_cap_ms = now + PTY_HANGUP_CAP_MS;
        }
        if (notify) session_check_done(a, s);
    }
    /* a process that outlived its command may just have ended: its leaf can go now */
    procs_linger_retry(a);
}

/* Reap for up to ms, until no session process (or, with all, no child at all) is left. */
static void reap_wait(struct agent *a, unsigned ms, bool all) {
    uint64_t end = dbx_now_ms() + ms;
    for (;;) {
        reap(a, false);
        if (all ? (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD) : !any_running(a)) return;
        uint64_t now = dbx_now_ms();
        if (now >= end) return;
        struct pollfd pf = {.fd = a->sigfd, .events = POLLIN};
        poll(&pf, 1, (int)(end - now));
    }
}

static void kill_sessions(struct agent *a, int sig) {
    for (size_t i = 0; i < a->nsess; i++)
        if (!a->sess[i]->dead && a->sess[i]->pid > 0) kill(-a->sess[i]->pid, sig);
}

/* --serve-fd: the host side went away; do not leave commands behind on the test machine. */
static _Noreturn void test_exit(struct agent *a) {
    kill_sessions(a, SIGKILL);
    exit(0);
}

/* ---- session frames --------------------------------------------------------------------- */

static void on_stdin(struct agent *a, struct session *s, const uint8_t *p, uint32_t n) {
    if (n == 0) {
        s->in_eof = true;
        stdin_write(a, s);
        return;
    }
    if ((uint64_t)s->in_pending + n > DBX_WINDOW) {
        session_abort(a, s, "stdin data exceeds the flow-control window", true);
        return;
    }
    s->in_pending += n;
    if (s->in_fd < 0 || s->in_eof) { /* nobody reads it: drop it, but return the credit */
        credit_back(a, s, n);
        return;
    }
    dbx_buf_put(&s->in, p, n);
    stdin_write(a, s); /* most writes complete at once: no poll round trip */
}

static void on_credit(struct agent *a, struct session *s, const uint8_t *p, uint32_t n) {
    uint8_t st;
    uint32_t bytes;
    if (dbx_dec_credit(p, n, &st, &bytes) < 0) {
        session_abort(a, s, "malformed credit frame", true);
        return;
    }
    if (st == DBX_STREAM_SOCK) {
        session_abort(a, s, "socket credit on an exec session", true);
        return;
    }
    if (st == DBX_STREAM_STDIN) return; /* we never send stdin */
    if (bytes == 0) {
        output_closed(a, s, st);
        return;
    }
    uint64_t c = (uint64_t)s->credit[st] + bytes;
    s->credit[st] = c > DBX_WINDOW ? DBX_WINDOW : (uint32_t)c; /* a generous host is clamped */
}

static void on_resize(struct agent *a, struct session *s, const uint8_t *p, uint32_t n) {
    uint16_t rows, cols;
    if (dbx_dec_resize(p, n, &rows, &cols) < 0) {
        session_abort(a, s, "malformed resize frame", true);
        return;
    }
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    if (s->pty >= 0) ioctl(s->pty, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH */
}

static void on_signal(struct agent *a, struct session *s, const uint8_t *p, uint32_t n) {
    uint32_t sig;
    if (dbx_dec_u32(p, n, &sig) < 0) {
        session_abort(a, s, "malformed signal frame", true);
        return;
    }
    /* a death it explains gets no NOTICE; a stop and its continue (^Z, fg) explain none */
    if (sig >= 1 && sig <= 64 && sig != SIGTSTP && sig != SIGCONT) s->host_sig = sig;
    /* ^Z on the host (devbox exec on a terminal that is not raw): the command leads its own
     * session, whose parent (init) is outside it, so its process group is orphaned and the
     * kernel discards a SIGTSTP sent there (POSIX: no stop a shell could not undo); SIGSTOP
     * stops it, and the SIGCONT of the host's `fg` continues it.  What moved to a process group
     * of its own (timeout(1)'s child) runs on, as a background job's would here. */
    if (sig == SIGTSTP) sig = SIGSTOP;
    /* SIGKILL (the client went away) ends everything the command started */
    if (sig == SIGKILL)
        procs_leaf_kill(s);
    else if (sig >= 1 && sig <= 64)
        kill(-s->pid, (int)sig);
}

/* The host gave up on the session: kill it and say nothing more about it. */
static void on_sess_error(struct agent *a, struct session *s, const uint8_t *p, uint32_t n) {
    session_abort(a, s, NULL, false);
}

typedef void (*sess_fn)(struct agent *, struct session *, const uint8_t *, uint32_t);
static const sess_fn sess_handlers[DBX_MSG_MAX_] = {
    [DBX_MSG_STDIN] = on_stdin,   [DBX_MSG_CREDIT] = on_credit,    [DBX_MSG_RESIZE] = on_resize,
    [DBX_MSG_SIGNAL] = on_signal, [DBX_MSG_ERROR] = on_sess_error,
};

/* EXEC or SOCK_OPEN on an id that is live (as either kind of session) ends that session: the
 * host now believes it ended.  True when the new request must not go ahead. */
static bool id_taken(struct agent *a, uint32_t id) {
    struct session *old = find_live(a, id);
    struct sock_sess *k = sock_find(a, id);
    if (!old && !k) return false;
    _cleanup_free_ char *m = dbx_xasprintf("session %u already exists", id);
    if (old)
        session_abort(a, old, m, true);
    else
        sock_abort(a, k, m);
    return true;
}

static void on_exec(struct agent *a, uint32_t id, const uint8_t *p, uint32_t n) {
    if (id == 0) return send_errorf(a, 0, "exec on session 0");
    if (id_taken(a, id)) return;
    if (id & DBX_SESSION_GUEST) return send_errorf(a, id, "session id in the guest's range");
    if (a->setup == SETUP_WAIT) return send_errorf(a, id, "exec before setup");
    if (a->setup == SETUP_FAILED) return send_errorf(a, id, "setup failed: %s", a->setup_error);
    if (count_live(a) >= DBX_MAX_SESSIONS)
        return send_errorf(a, id, "too many sessions (at most %u)", DBX_MAX_SESSIONS);
    uint64_t t_dispatch = exec_now_us();
    _cleanup_(dbx_exec_req_free) struct dbx_exec_req req = {0};
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_exec_req_decode(p, n, &req, &err) < 0)
        return agent_send_error(a, id, DBX_ERR_FAILED, err->msg);
    struct session *s = session_new(id);
    if (req.flags & DBX_EXEC_TIMING) {
        s->times = dbx_xcalloc(1, sizeof(*s->times));
        s->times->t[T_RX] = a->rx_us;
        s->times->t[T_DISPATCH] = t_dispatch;
        s->times->t[T_DECODED] = exec_now_us();
    }
    stats_session_start(a, s);
    if (id > a->last_exec_id || id + 1024 < a->last_exec_id) a->last_exec_id = id;
    const struct exec_ctx ctx = {.agent = a,
                                 .uid = a->uid,
                                 .gid = a->gid,
                                 .hostname = a->hostname,
                                 .box = &a->box,
                                 .spare = &a->spare,
                                 .mnt_next = &a->box.mnt_next,
                                 .ca = a->ca,
                                 .tz = a->tz,
                                 .lang = a->lang};
    int code = DBX_ERR_FAILED;
    if (exec_spawn(&ctx, &req, s, &code, &err) < 0) {
        procs_leaf_release(a, s);
        session_free(s);
        return agent_send_error(a, id, (uint32_t)code, err->msg);
    }
    if (req.timeout_ms) s->deadline_ms = dbx_now_ms() + req.timeout_ms;
    session_add(a, s);
    uint8_t b[4];
    agent_send(a, DBX_MSG_STARTED, id, b, dbx_enc_u32(b, (uint32_t)s->pid));
    if (s->times) s->times->t[T_STARTED] = exec_now_us();
    if (s->rd_fd[DBX_STREAM_STDERR] < 0) {
        /* the pty, or the pipe of DBX_EXEC_MERGED, is the only output stream: stderr is at EOF
         * from the start */
        agent_send(a, DBX_MSG_STDERR, id, NULL, 0);
        s->eof_sent[DBX_STREAM_STDERR] = true;
    }
}

/* ---- connection frames ------------------------------------------------------------------ */

const char *agent_files_root(const struct agent *a) {
    return a->test_mode ? getenv("DEVBOX_TEST_CA_ROOT") : "/";
}

/* The host's CA certificates, before any command runs (an empty list takes out what an
 * earlier boot put in).  --serve-fd: under $DEVBOX_TEST_CA_ROOT, or not at all. */
static int setup_ca(struct agent *a, const char *pem, dbx_error **err) {
    const char *root = agent_files_root(a);
    if (!root || !root[0]) return 0;
    _cleanup_strv_ char **notes = NULL;
    int r = ca_install(root, pem, &notes, err);
    for (char **m = notes; m && *m; m++)
        init_log("setup: host CA certificates: %s", *m);
    if (r < 0) return -1;
    a->ca = (unsigned)r;
    return 0;
}

/* The host's time zone and the box's LANG (init-locale.c).  --serve-fd: files under
 * $DEVBOX_TEST_CA_ROOT, or none. */
static void setup_locale(struct agent *a, const struct dbx_setup *su) {
    const char *root = agent_files_root(a);
    if (!root || !root[0]) return;
    a->lang = locale_default(root);
    if (!su->tz_name[0]) return;
    /* a nicety, never a reason not to boot: a full root disk (ENOSPC) must still let the user
     * in to free space; TZ alone still serves Java and Node.js */
    _cleanup_strv_ char **notes = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (tz_install(root, su->tz_name, su->tz_data, su->tz_len, &notes, &e) < 0)
        init_log("setup: %s", e->msg);
    for (char **m = notes; m && *m; m++)
        init_log("setup: time zone: %s", *m);
    a->tz = dbx_xstrdup(su->tz_name);
}

static int setup_apply(struct agent *a, struct dbx_setup *su, dbx_error **err) {
    if (su->ws_tag[0]) {
        /* --serve-fd runs on a developer's machine: create nothing there; the mount itself
         * still runs (and fails without a virtiofs device), which tests the error path. */
        if (!a->test_mode && dbx_mkdir_p(su->ws_path, 0755, err) < 0) return -1;
        if (mount(su->ws_tag, su->ws_path, "virtiofs", MS_NOSUID | MS_NODEV, NULL) < 0)
            return dbx_error_set(err, errno, "mount virtiofs '%s' on '%s'", su->ws_tag,
                                 su->ws_path);
        a->ws_path = dbx_xstrdup(su->ws_path);
        if (!a->test_mode) watch_setup(a);
    }
    if (boot_mount_shares(a, su, err) < 0) return -1; /* issue 13: extra shares (D2) */
    boot_mark(&a->marks, "workspace");
    if (!a->test_mode && su->hostname[0] && sethostname(su->hostname, strlen(su->hostname)) < 0)
        return dbx_error_set(err, errno, "sethostname '%s'", su->hostname);
    /* before any command can run: the proxy port is ours before a box command could bind it */
    if (net_setup(a, &su->plan, su->hostname, err) < 0) return dbx_error_wrap(err, "network");
    boot_mark(&a->marks, "network");
    if (setup_ca(a, su->ca_pem, err) < 0) return dbx_error_wrap(err, "host CA certificates");
    boot_mark(&a->marks, "CAs");
    setup_locale(a, su);
    boot_mark(&a->marks, "locale");
    /* last: the protected paths live in the workspace mounted above */
    if (policy_setup(a, su, err) < 0) return -1;
    boot_mark(&a->marks, "user");
    stats_setup(a);
    _cleanup_error_ dbx_error *e = NULL;
    if (audit_setup(a, &e) < 0)
        init_log("setup: write attempts on protected paths are not counted: %s", e->msg);
    boot_mark(&a->marks, "audit");
    return 0;
}

static void on_setup(struct agent *a, const uint8_t *p, uint32_t n) {
    if (a->setup != SETUP_WAIT) return send_errorf(a, 0, "setup received twice");
    boot_mark(&a->marks, "to setup");
    _cleanup_(dbx_setup_free) struct dbx_setup su = {0};
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_setup_decode(p, n, &su, &err) < 0 || setup_apply(a, &su, &err) < 0) {
        /* Not fatal: keep serving so the host reads the reason, then shuts us down. */
        init_log("setup: %s", err->msg);
        a->setup = SETUP_FAILED;
        a->setup_error = dbx_xstrdup(err->msg);
        return agent_send_error(a, 0, DBX_ERR_FAILED, err->msg);
    }
    a->setup = SETUP_DONE;
    a->uid = su.uid;
    a->gid = su.gid;
    a->hostname = TAKE_PTR(su.hostname);
    agent_send(a, DBX_MSG_READY, 0, NULL, 0);
    if (!a->test_mode) boot_marks_log(&a->marks);
}

static void on_ping(struct agent *a, const uint8_t *p, uint32_t n) {
    uint64_t token;
    if (dbx_dec_u64(p, n, &token) < 0) return send_errorf(a, 0, "malformed ping frame");
    agent_send(a, DBX_MSG_PONG, 0, p, n);
}

/* Up to CLOCK_ANSWER_WAIT_MS for the answer to the ask just queued (init-clock.c), reading the
 * port into the reader and taking the answer out ahead of the frames before it, so that an
 * EXEC right behind the CLOCK that made us ask starts with the clock put right.  Not answered
 * in time: the loop handles the answer whenever it comes (as too slow to trust). */
#define CLOCK_ANSWER_WAIT_MS 100
static void clock_apply(struct agent *a, uint64_t host_ns, bool answer, uint64_t token);
static void clock_ask(struct agent *a) {
    uint8_t b[DBX_CLOCK_ANSWER_LEN];
    agent_send(a, DBX_MSG_CLOCK, 0, b, dbx_enc_u64(b, a->clock.ask));
    if (agent_flush(a) < 0 || dbx_buf_avail(&a->out) > 0) return;
    for (uint64_t end = dbx_now_ms() + CLOCK_ANSWER_WAIT_MS;;) {
        uint64_t host_ns, token;
        bool answer;
        if (dbx_reader_take(&a->rd, DBX_MSG_CLOCK, DBX_CLOCK_ANSWER_LEN, b)) {
            if (dbx_dec_clock(b, DBX_CLOCK_ANSWER_LEN, &host_ns, &answer, &token) == 0)
                clock_apply(a, host_ns, answer, token);
            return;
        }
        uint64_t now = dbx_now_ms();
        struct pollfd pf = {.fd = a->fd, .events = POLLIN};
        int r = now < end ? poll(&pf, 1, (int)(end - now)) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
        static uint8_t buf[65536]; /* behind an EXEC of megabytes, the answer within 100 ms */
        ssize_t n = read(a->fd, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return; /* the loop's own read sees the end */
        dbx_reader_feed(&a->rd, buf, (size_t)n);
    }
}

static void clock_apply(struct agent *a, uint64_t host_ns, bool answer, uint64_t token) {
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    struct clock_verdict v = clock_decide(
        &a->clock, host_ns, answer, token, (int64_t)rt.tv_sec * 1000000000ll + rt.tv_nsec,
        (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec);
    if (v.late_ns)
        init_log("clock: a clock frame came %" PRId64 " ms late (the init was busy); the "
                 "host's answer says the clock is not ahead, so it was not set back",
                 v.late_ns / 1000000);
    switch (v.act) {
    case CLOCK_KEEP:
        return;
    case CLOCK_ASK:
        return clock_ask(a);
    case CLOCK_SLOW:
        init_log("clock: the host's answer took %" PRId64 " ms; the clock is kept",
                 v.lag_ns / 1000000);
        return;
    case CLOCK_STEP:
        break;
    }
    /* --serve-fd runs on a developer's machine: its clock is not ours to set */
    if (a->test_mode) return;
    struct timespec ts = {.tv_sec = (time_t)(v.to_ns / 1000000000),
                          .tv_nsec = (long)(v.to_ns % 1000000000)};
    int64_t step = v.to_ns - ((int64_t)rt.tv_sec * 1000000000ll + rt.tv_nsec);
    if (clock_settime(CLOCK_REALTIME, &ts) < 0)
        init_log("clock: cannot set the clock past the host's: %s", strerror(errno));
    else if (v.lag_ns > 100000000ll || v.lag_ns < -100000000ll)
        init_log("clock: stepped %+" PRId64 " ms, to 20 ms past the host's", step / 1000000);
}

/* The host's wall clock (DBX_MSG_CLOCK): forward at once, back only on a fresh answer to an
 * ask of ours (init-clock.c says why). */
static void on_clock(struct agent *a, const uint8_t *p, uint32_t n) {
    uint64_t host_ns, token;
    bool answer;
    if (dbx_dec_clock(p, n, &host_ns, &answer, &token) < 0)
        return send_errorf(a, 0, "malformed clock frame");
    clock_apply(a, host_ns, answer, token);
}

static void on_conn_error(struct agent *a, const uint8_t *p, uint32_t n) {
    uint32_t code;
    _cleanup_free_ char *msg = NULL;
    if (dbx_error_msg_decode(p, n, &code, &msg) == 0)
        init_log("host error %u: %s", code, dbx_sanitize_printable(msg));
}

/* SIGTERM, a grace period, SIGKILL for everyone, then a clean unmount and power-off. */
static void on_shutdown(struct agent *a, const uint8_t *p, uint32_t n) {
    kill_sessions(a, SIGTERM);
    kill_sessions(a, SIGCONT); /* a command stopped by ^Z on the host acts on its SIGTERM */
    reap_wait(a, SHUTDOWN_TERM_MS, false);
    if (a->test_mode) test_exit(a); /* kill(-1) would hit the test machine's processes */
    kill(-1, SIGKILL);
    reap_wait(a, SHUTDOWN_KILL_MS, true);
    sync();
    watch_shutdown();
    if (a->ws_path && umount2(a->ws_path, MNT_DETACH) < 0)
        init_log("shutdown: umount '%s': %s", a->ws_path, strerror(errno));
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
        init_log("shutdown: remount '/' read-only: %s", strerror(errno));
    init_poweroff(a, 0);
}

typedef void (*conn_fn)(struct agent *, const uint8_t *, uint32_t);
static const conn_fn conn_handlers[DBX_MSG_MAX_] = {
    [DBX_MSG_SETUP] = on_setup,
    [DBX_MSG_SHUTDOWN] = on_shutdown,
    [DBX_MSG_PING] = on_ping,
    [DBX_MSG_CLOCK] = on_clock,
    [DBX_MSG_ERROR] = on_conn_error,
    /* host edits for the box's file watchers */
    [DBX_MSG_CHANGED] = watch_on_changed,
    [DBX_MSG_PS] = procs_on_ps,
    [DBX_MSG_KILL] = procs_on_kill,
    [DBX_MSG_STATS] = stats_on_request,
};

static void on_sock_open(struct agent *a, uint32_t id, const uint8_t *p, uint32_t n) {
    if (id == 0) return send_errorf(a, 0, "sock-open on session 0");
    if (!id_taken(a, id)) sock_on_open(a, id, p, n);
}

static void dispatch(struct agent *a, const struct dbx_frame_hdr *h, const uint8_t *p) {
    if (h->type == DBX_MSG_EXEC) return on_exec(a, h->session, p, h->len);
    if (h->type == DBX_MSG_SOCK_OPEN) return on_sock_open(a, h->session, p, h->len);
    if (h->session == 0) {
        if (conn_handlers[h->type]) conn_handlers[h->type](a, p, h->len);
        return;
    }
    struct sock_sess *k = sock_find(a, h->session);
    if (k) return sock_on_frame(a, k, h->type, p, h->len);
    struct session *s = find_live(a, h->session);
    if (s && sess_handlers[h->type]) sess_handlers[h->type](a, s, p, h->len);
}

static void dispatch_all(struct agent *a) {
    for (;;) {
        struct dbx_frame_hdr h;
        const uint8_t *p = NULL;
        _cleanup_error_ dbx_error *err = NULL;
        enum dbx_read_result r = dbx_reader_next(&a->rd, &h, &p, &err);
        if (r == DBX_READ_NEED_MORE) return;
        if (r == DBX_READ_FRAME) {
            dispatch(a, &h, p);
            continue;
        }
        /* A bad header still names its session; answer even an unknown one, since that is
         * how an oversized EXEC learns its fate. */
        struct session *s = h.session ? find_live(a, h.session) : NULL;
        struct sock_sess *k = h.session ? sock_find(a, h.session) : NULL;
        if (s)
            session_abort(a, s, err->msg, true);
        else if (k)
            sock_abort(a, k, err->msg);
        else
            agent_send_error(a, h.session, DBX_ERR_FAILED, err->msg);
    }
}

/* ---- the loop --------------------------------------------------------------------------- */

/* Read what the port has, then handle every whole frame.  Peer gone: retry later (PID 1) or
 * exit (--serve-fd). */
static int agent_input(struct agent *a, dbx_error **err) {
    static uint8_t buf[64 * 1024];
    bool gone = false;
    for (size_t total = 0; total < AGENT_READ_MAX;) {
        ssize_t n = read(a->fd, buf, sizeof(buf));
        if (n > 0) {
            if (total == 0) a->rx_us = exec_now_us();
            dbx_reader_feed(&a->rd, buf, (size_t)n);
            total += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n < 0 && !(a->test_mode && errno == ECONNRESET))
            return dbx_error_set(err, errno, "read agent port");
        gone = true; /* virtio-serial reads 0 while the host end is not connected */
        break;
    }
    dispatch_all(a);
    if (gone && a->test_mode) test_exit(a);
    if (gone) {
        a->hup = true;
        a->hup_until = dbx_now_ms() + HUP_RETRY_MS;
    }
    return 0;
}

void pollset_add(struct pollset *ps, int fd, short ev, void *obj, int role) {
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 64;
        ps->pfd = dbx_xrealloc(ps->pfd, ps->cap * sizeof(*ps->pfd));
        ps->ref = dbx_xrealloc(ps->ref, ps->cap * sizeof(*ps->ref));
    }
    ps->pfd[ps->n] = (struct pollfd){.fd = fd, .events = ev};
    ps->ref[ps->n++] = (struct pollref){.obj = obj, .role = role};
}

static void pollset_free(struct pollset *ps) {
    free(ps->pfd);
    free(ps->ref);
}

/* Entry 0 is the port (fd -1 while the host end is away), 1 the signalfd, then sessions, the
 * proxy listener and socket sessions.
 * A stream is polled only while it may move data, so a HUP nobody can act on never spins. */
static void pollset_build(struct agent *a, struct pollset *ps) {
    size_t queued = dbx_buf_avail(&a->out);
    short ev = (short)((queued < INIT_OUT_HARD ? POLLIN : 0) | (queued ? POLLOUT : 0));
    ps->n = 0;
    pollset_add(ps, a->hup ? -1 : a->fd, ev, NULL, 0);
    pollset_add(ps, a->sigfd, POLLIN, NULL, 0);
    bool out_ok = queued < INIT_OUT_HIGH;
    for (size_t i = 0; i < a->nsess; i++) {
        struct session *s = a->sess[i];
        bool want_in = s->in_fd >= 0 && dbx_buf_avail(&s->in) > 0;
        bool want_out[3] = {false};
        for (int st = 1; st <= 2; st++)
            want_out[st] = out_ok && s->rd_fd[st] >= 0 && s->credit[st] > 0;
        if (s->tty) {
            short e = (short)((want_in ? POLLOUT : 0) | (want_out[1] ? POLLIN : 0));
            if (e) pollset_add(ps, s->pty, e, s, ROLE_PTY);
            continue;
        }
        if (want_in) pollset_add(ps, s->in_fd, POLLOUT, s, ROLE_IN);
        for (int st = 1; st <= 2; st++)
            if (want_out[st]) pollset_add(ps, s->rd_fd[st], POLLIN, s, st);
    }
    sock_poll_build(a, ps, out_ok);
    if (a->audit_fd >= 0 && queued < INIT_OUT_HARD)
        pollset_add(ps, a->audit_fd, POLLIN, NULL, ROLE_AUDIT);
    if (watch_own_fd() >= 0) pollset_add(ps, watch_own_fd(), POLLIN, NULL, ROLE_OWN_WRITES);
}

static void session_events(struct agent *a, const struct pollfd *pf, const struct pollref *r) {
    if (r->role == ROLE_AUDIT) return pf->revents ? audit_events(a) : (void)0;
    if (r->role == ROLE_OWN_WRITES) return pf->revents ? watch_own_ready(a) : (void)0;
    if (r->role == ROLE_SOCK || r->role == ROLE_LISTEN) return sock_events(a, pf, r);
    struct session *s = r->obj;
    if (!pf->revents || s->dead) return;
    bool ready = pf->revents & (POLLERR | POLLHUP | POLLNVAL);
    if ((pf->events & POLLOUT) && (ready || (pf->revents & POLLOUT))) stdin_write(a, s);
    if (s->dead || !(pf->events & POLLIN) || !(ready || (pf->revents & POLLIN))) return;
    output_read(a, s, r->role == ROLE_PTY ? DBX_STREAM_STDOUT : r->role);
}

/* A pty session's command has exited, but the terminal's EOF (every slave fd closed) has not
 * come: a background job of the shell holds the terminal (`devbox enter`, `sleep 100 &`,
 * `exit`).  A terminal window closes when its shell exits, and ssh ends the session, hanging the
 * terminal up; the job lives on (as there, unless the shell's huponexit hangs it up too), and
 * its writes to the terminal fail.  So after a grace period the master is read to what it holds
 * then (as the host's credit allows; a job that writes on cannot keep it open) and closed, and
 * EXIT goes out.  The grace period is for the command's last output: a write to the slave
 * reaches the master through the tty layer's flip-buffer work, which may not have run yet when
 * the command is reaped; it runs from the exit, or from the last output read since, up to
 * PTY_HANGUP_CAP_MS after the exit (a stalled guest's work item runs late).  The ms until the
 * next such hang-up, or -1 (one waiting for credit or for the agent queue to drain is woken by
 * the frame or the flush, and comes back here in the next iteration). */
static int pty_hangups(struct agent *a, uint64_t now) {
    static uint8_t buf[DBX_DATA_CHUNK];
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < a->nsess; i++) {
        struct session *s = a->sess[i];
        if (s->dead || !s->hangup_ms) continue;
        if (s->rd_fd[DBX_STREAM_STDOUT] < 0) { /* the EOF came by itself */
            s->hangup_ms = 0;
            continue;
        }
        if (now < s->hangup_ms) {
            next = s->hangup_ms < next ? s->hangup_ms : next;
            continue;
        }
        if (!s->hangup_draining) { /* what it holds now, and no more: a job may write on */
            int held = 0;
            s->hangup_draining = true;
            s->hangup_left =
                ioctl(s->pty, FIONREAD, &held) == 0 && held >= 0 ? (uint32_t)held : DBX_WINDOW;
        }
        if (s->hangup_left == 0) { /* (whatever the host's credit) */
            s->hangup_ms = 0;
            output_eof(a, s, DBX_STREAM_STDOUT);
            continue;
        }
        while (s->credit[DBX_STREAM_STDOUT] > 0 && dbx_buf_avail(&a->out) < INIT_OUT_HIGH) {
            uint32_t c = s->credit[DBX_STREAM_STDOUT];
            c = c < s->hangup_left ? c : s->hangup_left;
            ssize_t n = c ? read(s->pty, buf, c < sizeof(buf) ? c : sizeof(buf)) : 0;
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) { /* what it held (or all there is: EAGAIN), its EOF, an error: hang up */
                s->hangup_ms = 0;
                output_eof(a, s, DBX_STREAM_STDOUT);
                break;
            }
            agent_send(a, DBX_MSG_STDOUT, s->id, buf, (size_t)n);
            s->credit[DBX_STREAM_STDOUT] -= (uint32_t)n;
            s->hangup_left -= (uint32_t)n;
        }
    }
    return next == UINT64_MAX ? -1 : next - now > INT32_MAX ? INT32_MAX : (int)(next - now);
}

/* --timeout: kill the leaves of the sessions whose deadline passed; the ms until the next
 * deadline, or -1. */
static int deadlines(struct agent *a, uint64_t now) {
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < a->nsess; i++) {
        struct session *s = a->sess[i];
        if (s->dead || !s->deadline_ms || s->timed_out) continue;
        if (now < s->deadline_ms) {
            next = s->deadline_ms < next ? s->deadline_ms : next;
            continue;
        }
        s->timed_out = !s->exited; /* ended in time: its own status, its stragglers killed */
        s->deadline_ms = 0;
        procs_leaf_kill(s);
    }
    return next == UINT64_MAX ? -1 : next - now > INT32_MAX ? INT32_MAX : (int)(next - now);
}

static int min_timeout(int x, int y) {
    return x < 0 ? y : y < 0 ? x : x < y ? x : y;
}

static int poll_timeout(struct agent *a) {
    uint64_t now = dbx_now_ms();
    watch_tick(a, now);
    int report =
        min_timeout(min_timeout(audit_report_due(a, now), deadlines(a, now)), pty_hangups(a, now));
    report = min_timeout(report, watch_timeout(a, now));
    if (!a->hup) return report;
    if (now >= a->hup_until) {
        a->hup = false; /* poll the port again */
        return report;
    }
    int hup = (int)(a->hup_until - now);
    return report >= 0 && report < hup ? report : hup;
}

int serve(struct agent *a, dbx_error **err) {
    _cleanup_(pollset_free) struct pollset ps = {0};
    for (;;) {
        sweep(a);
        int timeout = poll_timeout(a);
        pollset_build(a, &ps);
        if (poll(ps.pfd, ps.n, timeout) < 0) {
            if (errno == EINTR) continue;
            return dbx_error_set(err, errno, "poll");
        }
        if ((ps.pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && agent_input(a, err) < 0)
            return -1;
        for (size_t i = 2; i < ps.n; i++)
            session_events(a, &ps.pfd[i], &ps.ref[i]);
        if (ps.pfd[1].revents) reap(a, true);
        int r = agent_flush(a);
        if (r < 0 && a->test_mode && (r == -EPIPE || r == -ECONNRESET)) test_exit(a);
        if (r < 0) return dbx_error_set(err, -r, "write agent port");
    }
}

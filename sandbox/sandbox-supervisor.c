/* sandbox/sandbox-supervisor.c: one process per running project.  It owns QEMU and
 * virtiofsd (they die with it: PR_SET_PDEATHSIG), speaks the agent protocol to the guest
 * init over a virtio-serial port, and relays exec sessions between clients on the control
 * socket and the guest.  Single-threaded poll loop; everything the guest sends is treated as
 * hostile: bounded buffers, strict decoding, a malformed frame ends one session. */
#define _GNU_SOURCE
#include "sandbox-internal.h"
#include "../mounts/mounts.h"
#include "../policy/policy.h"
#include "../profiles/profiles.h"
#include "../vm/vm.h"

#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define MAX_CLIENTS 512
#define MAX_NET_FDS 640 /* port listeners + socket sessions (sandbox-net.c) */
#define SESS_SLOTS 1024 /* power of two, > DBX_MAX_SESSIONS */
#define CLIENT_OUT_CAP (4 * DBX_WINDOW + 64 * 1024)
#define AGENT_OUT_HIGH (16u << 20) /* stop reading clients above this */
#define AGENT_OUT_MAX (64u << 20)  /* stop reading the guest above this */
#define KVM_HELLO_MS 10000
#define TCG_HELLO_MS 45000
#define TCG_BOOT_TRIES 2 /* a TCG boot that never says hello is retried once (loaded hosts) */
#define READY_MS 30000
#define STOP_MS 20000
/* Without virtiofsd the guest's shutdown would hang on the share: a short grace to sync the
 * root disk, then QEMU is killed. */
#define VFS_GONE_STOP_MS 3000
/* A guest that sends nothing for PING_IDLE_MS is pinged (init answers PING from its poll loop);
 * one silent for LIVENESS_MS is dead: a hung or panicked kernel (panic=-1 only helps when
 * the reboot itself works; under TCG it sometimes spins instead).  Generous: a loaded TCG guest
 * under a fork bomb still answers within seconds, since init is outside the box's cgroup. */
#define PING_IDLE_MS 15000
#define LIVENESS_MS 90000
/* What the guest kernel prints on a panic (always, even with `quiet`: KERN_EMERG). */
#define PANIC_MARK "Kernel panic - not syncing"
/* The kernel prints PANIC_MARK before its panic notifiers run, so the console usually shows a
 * panic just before the panic device reports it (QMP GUEST_PANICKED, vm-qemu.c).  The device's
 * report is the one that counts; the console line alone (a kernel without the pvpanic_mmio
 * driver) is believed after this long (in between, the kernel stops the other CPUs: up to 1 s). */
#define PANIC_CONFIRM_MS 5000
/* QEMU pauses the VM when a disk write fails with ENOSPC (werror=enospc); it is resumed once
 * the overlay's filesystem has this much free space again (checked every NOSPACE_POLL_MS). */
#define NOSPACE_RESUME_BYTES (32ull << 20)
#define NOSPACE_POLL_MS 1000

enum client_kind { C_NEW, C_EXEC, C_STOP, C_CLOSING };

struct client {
    int fd;
    enum client_kind kind;
    uint32_t gsid;
    struct dbx_reader rd;
    struct dbx_buf out;
};

struct sess {
    uint32_t gsid;    /* 0 = free slot */
    struct client *c; /* NULL once the client went away: frames are dropped */
};

struct logsink {
    int in;  /* read end (from QEMU/virtiofsd/console) */
    int out; /* log file */
    uint64_t written;
    char tail[1024]; /* last bytes, for error messages */
    size_t tail_len;
};

struct sup {
    struct dbx_paths paths;
    struct dbx_project proj;
    struct profile prof;
    struct dbx_plan plan; /* compiled from prof; what the guest enforces */
    struct dbx_project_rec rec;
    struct vm_kernel kernel;
    enum vm_accel accel;
    int ready_fd;
    int listen_fd, agent_fd, sig_fd;
    pid_t qemu_pid, vfs_pid, passt_pid; /* passt: network mode open only */
    struct vm_passt *passt;
    int qemu_status;
    struct logsink logs[3]; /* console, qemu, virtiofsd */
    struct dbx_reader agent_rd;
    struct dbx_buf agent_out;
    struct client *clients[MAX_CLIENTS];
    size_t nclients;
    struct sess sess[SESS_SLOTS];
    uint32_t next_gsid, nsess;
    bool hello, ready, stopping, quit;
    bool dead;                 /* the guest died (panic, no answer): clients were told */
    uint64_t console_panic_ms; /* when the console showed PANIC_MARK (0: not yet) */
    uint64_t last_guest_ms;    /* when the guest last sent anything */
    uint64_t ping_token;
    struct vm_qmp *qmp; /* QEMU's monitor: pause/resume and I/O error events */
    bool nospace;       /* paused by QEMU because the host disk is full */
    uint64_t nospace_check_ms;
    char *boot_error;
    char *guest_release;
    uint64_t stop_deadline, started_ms;
    int64_t started_wall;
    struct net *net;          /* socket sessions, port forwards, egress proxy */
    const char *net_override; /* --network none from the command line, or NULL */
};

static void sup_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sup_log(const char *fmt, ...) {
    char ts[32];
    time_t t = time(NULL);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", gmtime(&t));
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) dbx_oom_hook();
    va_end(ap);
    /* paths, names and guest text end up here; `devbox logs` prints this file */
    _cleanup_free_ char *e = dbx_escape(msg);
    free(msg);
    fprintf(stderr, "%s supervisor: %s\n", ts, e);
}

/* Lines to the client that started us: "W text", "E text", "OK". */
static void ready_say(struct sup *s, char kind, const char *msg) {
    if (s->ready_fd < 0) return;
    _cleanup_free_ char *line =
        kind == 'O' ? dbx_xstrdup("OK\n") : dbx_xasprintf("%c %s\n", kind, msg);
    for (char *p = line; *p && p[1]; p++)
        if (*p == '\n') *p = ' ';
    (void)dbx_write_all(s->ready_fd, line, strlen(line));
    if (kind != 'W') {
        close(s->ready_fd);
        s->ready_fd = -1;
    }
}

/* ---- logs ------------------------------------------------------------------------------- */

static int logsink_open(struct logsink *l, const char *path, int *ret_write_end, dbx_error **err) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    l->out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (l->out < 0) {
        close(p[0]);
        close(p[1]);
        return dbx_error_set(err, errno, "open '%s'", path);
    }
    dbx_set_nonblock(p[0], true);
    l->in = p[0];
    l->written = 0;
    l->tail_len = 0;
    *ret_write_end = p[1];
    return 0;
}

/* Drain what is readable; keep at most DBX_LOG_CAP bytes on disk (the guest can write to the
 * console as fast as it likes) and the last bytes for error messages. */
static void logsink_pump(struct logsink *l) {
    char buf[8192];
    for (;;) {
        ssize_t n = read(l->in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                close(l->in);
                l->in = -1;
            }
            return;
        }
        if (l->written < DBX_LOG_CAP) {
            size_t k = (size_t)n;
            if (k > DBX_LOG_CAP - l->written) k = DBX_LOG_CAP - l->written;
            (void)dbx_write_all(l->out, buf, k);
            l->written += k;
            if (l->written >= DBX_LOG_CAP) {
                static const char m[] = "\n[devbox: log truncated]\n";
                (void)dbx_write_all(l->out, m, sizeof(m) - 1);
            }
        }
        size_t k = (size_t)n > sizeof(l->tail) ? sizeof(l->tail) : (size_t)n;
        if (l->tail_len + k > sizeof(l->tail)) {
            size_t drop = l->tail_len + k - sizeof(l->tail);
            memmove(l->tail, l->tail + drop, l->tail_len - drop);
            l->tail_len -= drop;
        }
        memcpy(l->tail + l->tail_len, buf + n - k, k);
        l->tail_len += k;
    }
}

static void logsink_close(struct logsink *l) {
    if (l->in >= 0) {
        logsink_pump(l);
        close(l->in);
    }
    if (l->out >= 0) close(l->out);
    l->in = l->out = -1;
}

/* Last non-empty line of a log tail, sanitized, for one-line errors. */
static char *logsink_last_line(struct logsink *l) {
    _cleanup_free_ char *t = dbx_xstrndup(l->tail, l->tail_len);
    char *end = t + strlen(t);
    while (end > t && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        *--end = '\0';
    char *start = end;
    while (start > t && start[-1] != '\n')
        start--;
    return dbx_sanitize_printable(dbx_xstrdup(start));
}

/* ---- sessions and clients --------------------------------------------------------------- */

static struct sess *sess_find(struct sup *s, uint32_t gsid) {
    struct sess *x = &s->sess[gsid & (SESS_SLOTS - 1)];
    return gsid && x->gsid == gsid ? x : NULL;
}

static uint32_t sess_alloc(struct sup *s, struct client *c) {
    for (unsigned tries = 0; tries < SESS_SLOTS; tries++) {
        uint32_t g = ++s->next_gsid;
        /* ids from NET_SID_BASE up belong to socket sessions (sandbox-net.c) */
        if (g == 0 || g >= NET_SID_BASE) g = s->next_gsid = 1;
        struct sess *x = &s->sess[g & (SESS_SLOTS - 1)];
        if (x->gsid) continue;
        x->gsid = g;
        x->c = c;
        s->nsess++;
        return g;
    }
    return 0;
}

static void sess_free(struct sup *s, struct sess *x) {
    if (x->c) x->c->gsid = 0;
    x->gsid = 0;
    x->c = NULL;
    s->nsess--;
}

static void agent_send(struct sup *s, uint8_t type, uint32_t session, const void *p, size_t n) {
    dbx_frame_put(&s->agent_out, type, session, p, n);
}

static void client_send(struct client *c, uint8_t type, const void *p, size_t n) {
    if (c->kind == C_CLOSING && type != DBX_MSG_ERROR) return;
    dbx_frame_put(&c->out, type, 1, p, n);
}

static void client_error(struct client *c, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void client_error(struct client *c, uint32_t code, const char *fmt, ...) {
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) dbx_oom_hook();
    va_end(ap);
    struct dbx_buf b = {0};
    dbx_error_msg_encode(&b, code, msg);
    client_send(c, DBX_MSG_ERROR, b.data, b.len);
    dbx_buf_free(&b);
    free(msg);
    c->kind = C_CLOSING;
}

/* The client side of a session is gone or broken: kill the command in the guest; its
 * remaining frames are dropped when they arrive. */
static void client_detach(struct sup *s, struct client *c) {
    struct sess *x = c->gsid ? sess_find(s, c->gsid) : NULL;
    if (x) {
        uint8_t p[4];
        agent_send(s, DBX_MSG_SIGNAL, x->gsid, p, dbx_enc_u32(p, SIGKILL));
        x->c = NULL;
    }
    c->gsid = 0;
}

static void client_free(struct sup *s, size_t i) {
    struct client *c = s->clients[i];
    client_detach(s, c);
    close(c->fd);
    dbx_reader_free(&c->rd);
    dbx_buf_free(&c->out);
    free(c);
    s->clients[i] = s->clients[--s->nclients];
}

static char *status_json(struct sup *s);

static void begin_stop(struct sup *s, const char *why) {
    if (s->stopping) return;
    sup_log("stopping: %s", why);
    s->stopping = true;
    s->stop_deadline = dbx_now_ms() + STOP_MS;
    /* A VM paused on a full disk cannot run its shutdown. */
    if (s->hello && !s->nospace)
        agent_send(s, DBX_MSG_SHUTDOWN, 0, NULL, 0);
    else if (s->qemu_pid > 0)
        kill(s->qemu_pid, SIGKILL);
}

static char *skew_error(unsigned version) {
    return dbx_xasprintf("the guest init speaks protocol version %u and devbox %u: devbox-init "
                         "comes from another build (check DEVBOX_INIT)",
                         version, DBX_PROTO_VERSION);
}

/* The guest is gone for good (its kernel panicked, or it stopped answering): say so once to
 * every waiting client, in one line, and kill QEMU now: nothing in the guest can shut down
 * cleanly any more, and a spinning vCPU would otherwise burn a host core until `devbox stop`.
 * The disk is checked on the next start (the "running" mark stays). */
static void guest_died(struct sup *s, const char *why, const char *source) {
    if (s->dead) return;
    s->dead = true;
    sup_log("%s (%s); killing QEMU", why, source);
    if (!s->ready && !s->boot_error) s->boot_error = dbx_xstrdup(why);
    for (size_t i = 0; i < s->nclients; i++) {
        struct client *c = s->clients[i];
        if (c->kind == C_EXEC)
            client_error(c, DBX_ERR_FAILED,
                         "%s; the VM was stopped (logs in '%s'; the next "
                         "command starts it again)",
                         why, s->proj.state_dir);
    }
    s->stopping = true;
    s->stop_deadline = UINT64_MAX;
    if (s->qemu_pid > 0) kill(s->qemu_pid, SIGKILL);
}

/* The console's word on a panic, once the panic device had PANIC_CONFIRM_MS to report it
 * (qmp_events); at once (now_or_never) when QEMU is going away, or when it has no monitor: no
 * report can come then. */
static void check_console_panic(struct sup *s, bool now_or_never) {
    struct logsink *l = &s->logs[0];
    if (s->dead) return;
    uint64_t now = dbx_now_ms();
    if (!s->console_panic_ms && memmem(l->tail, l->tail_len, PANIC_MARK, strlen(PANIC_MARK)))
        s->console_panic_ms = now;
    if (!s->console_panic_ms) return;
    bool device_can_report = s->qemu_pid > 0 && vm_qmp_fd(s->qmp) >= 0;
    if (now_or_never || !device_can_report || now - s->console_panic_ms >= PANIC_CONFIRM_MS)
        guest_died(s, "the guest kernel panicked", "seen on the console");
}

/* Called every poll round: ping a quiet guest, declare a silent one dead. */
static void check_liveness(struct sup *s) {
    if (!s->ready || s->stopping || s->dead || s->nospace || s->agent_fd < 0) return;
    uint64_t now = dbx_now_ms(), quiet = now - s->last_guest_ms;
    if (quiet > LIVENESS_MS) {
        _cleanup_free_ char *why =
            dbx_xasprintf("the guest has not answered for %us", (unsigned)(quiet / 1000));
        guest_died(s, why, "liveness deadline");
    } else if (quiet > PING_IDLE_MS && s->ping_token != s->last_guest_ms) {
        /* one ping per quiet spell: the token remembers which spell it was sent in */
        uint8_t b[8];
        s->ping_token = s->last_guest_ms;
        agent_send(s, DBX_MSG_PING, 0, b, dbx_enc_u64(b, s->ping_token));
    }
}

static char *nospace_msg(struct sup *s) {
    return dbx_xasprintf("the host disk is full (no space left for '%s/disk.qcow2'); the VM is "
                         "paused until space is freed",
                         s->proj.data_dir);
}

/* QEMU paused the VM: a write to the overlay hit ENOSPC.  Every exec client is told in one line
 * and its command ended (it would hang for as long as the disk stays full); the VM resumes on
 * its own once space returns (nospace_poll). */
static void nospace_begin(struct sup *s) {
    _cleanup_free_ char *m = nospace_msg(s);
    if (!s->nospace) sup_log("%s", m);
    s->nospace = true;
    s->nospace_check_ms = dbx_now_ms() + NOSPACE_POLL_MS;
    for (size_t i = 0; i < s->nclients; i++) {
        struct client *c = s->clients[i];
        if (c->kind == C_EXEC) {
            client_detach(s, c);
            client_error(c, DBX_ERR_FAILED, "%s (the command was ended)", m);
        }
    }
    if (s->stopping && s->qemu_pid > 0) kill(s->qemu_pid, SIGKILL); /* cannot shut down now */
}

static void nospace_poll(struct sup *s) {
    if (!s->nospace || dbx_now_ms() < s->nospace_check_ms) return;
    s->nospace_check_ms = dbx_now_ms() + NOSPACE_POLL_MS;
    struct statvfs sv;
    if (statvfs(s->proj.data_dir, &sv) < 0) return;
    if ((uint64_t)sv.f_bavail * sv.f_frsize < NOSPACE_RESUME_BYTES) return;
    sup_log("the host disk has space again; resuming the VM");
    vm_qmp_cont(s->qmp); /* a write that fails again pauses it again */
}

static void qmp_events(struct sup *s) {
    struct vm_qmp_state st = {0};
    _cleanup_error_ dbx_error *e = NULL;
    if (vm_qmp_io(s->qmp, &st, &e) < 0 && !s->stopping && !s->quit)
        sup_log("%s", e->msg); /* QEMU is going away; SIGCHLD follows */
    if (st.events & VM_QMP_EV_NOSPACE)
        nospace_begin(s);
    else if (st.events & VM_QMP_EV_IO_ERROR)
        sup_log("QEMU reported a disk I/O error");
    if ((st.events & VM_QMP_EV_RESUME) && !(st.events & VM_QMP_EV_NOSPACE) && s->nospace) {
        s->nospace = false;
        s->last_guest_ms = dbx_now_ms(); /* the liveness clock stood still while paused */
        sup_log("the VM runs again");
    }
    if (st.events & VM_QMP_EV_PANIC)
        guest_died(s, "the guest kernel panicked", "reported by the panic device");
}

static void client_frame_new(struct sup *s, struct client *c, const struct dbx_frame_hdr *h,
                             const uint8_t *p) {
    if (h->type == DBX_MSG_STATUS) {
        _cleanup_free_ char *j = status_json(s);
        struct dbx_buf b = {0};
        dbx_buf_put_str(&b, j);
        client_send(c, DBX_MSG_STATUS_REPLY, b.data, b.len);
        dbx_buf_free(&b);
        c->kind = C_CLOSING;
        return;
    }
    if (h->type == DBX_MSG_PORT_REQ) {
        char *req = NULL, *text = NULL;
        struct dbx_cursor cur = {p, h->len};
        _cleanup_error_ dbx_error *e = NULL;
        int r = dbx_get_str(&cur, 256, &req) < 0 || cur.left
                    ? dbx_error_set(&e, 0, "malformed port request")
                    : net_port_request(s->net, req, &text, &e);
        struct dbx_buf b = {0};
        dbx_buf_put_u32(&b, r < 0 ? 1 : 0);
        dbx_buf_put_str(&b, r < 0 ? e->msg : text);
        client_send(c, DBX_MSG_PORT_REPLY, b.data, b.len);
        dbx_buf_free(&b);
        free(req);
        free(text);
        c->kind = C_CLOSING;
        return;
    }
    if (h->type == DBX_MSG_STOP) {
        c->kind = C_STOP; /* answered by the socket closing when we exit */
        begin_stop(s, "requested by a client");
        return;
    }
    if (h->type != DBX_MSG_EXEC) {
        client_error(c, DBX_ERR_FAILED, "unexpected %s frame", dbx_msg_name(h->type));
        return;
    }
    struct dbx_exec_req req = {0};
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_exec_req_decode(p, h->len, &req, &e) < 0) {
        client_error(c, DBX_ERR_FAILED, "%s", e->msg);
        return;
    }
    dbx_exec_req_free(&req);
    if (s->stopping || !s->ready) {
        client_error(c, DBX_ERR_FAILED, "the VM is stopping");
        return;
    }
    if (s->nospace) {
        _cleanup_free_ char *m = nospace_msg(s);
        client_error(c, DBX_ERR_FAILED, "%s", m);
        return;
    }
    uint32_t g = s->nsess < DBX_MAX_SESSIONS ? sess_alloc(s, c) : 0;
    if (!g) {
        client_error(c, DBX_ERR_FAILED, "too many sessions (limit %u)", DBX_MAX_SESSIONS);
        return;
    }
    c->gsid = g;
    c->kind = C_EXEC;
    agent_send(s, DBX_MSG_EXEC, g, p, h->len);
}

static void client_frame_exec(struct sup *s, struct client *c, const struct dbx_frame_hdr *h,
                              const uint8_t *p) {
    uint8_t st;
    uint32_t v;
    uint16_t a, b;
    bool ok;
    switch (h->type) {
    case DBX_MSG_STDIN:
        ok = h->len <= DBX_DATA_CHUNK;
        break;
    case DBX_MSG_CREDIT:
        ok = dbx_dec_credit(p, h->len, &st, &v) == 0 &&
             (st == DBX_STREAM_STDOUT || st == DBX_STREAM_STDERR);
        break;
    case DBX_MSG_RESIZE:
        ok = dbx_dec_resize(p, h->len, &a, &b) == 0;
        break;
    case DBX_MSG_SIGNAL:
        ok = dbx_dec_u32(p, h->len, &v) == 0 && v >= 1 && v <= 64;
        break;
    default:
        ok = false;
    }
    if (!ok) {
        client_detach(s, c);
        client_error(c, DBX_ERR_FAILED, "malformed %s frame from client", dbx_msg_name(h->type));
        return;
    }
    if (c->gsid) agent_send(s, h->type, c->gsid, p, h->len);
}

static void client_read(struct sup *s, struct client *c) {
    uint8_t buf[65536];
    ssize_t n = read(c->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        client_detach(s, c);
        c->kind = C_CLOSING;
        c->out.len = c->out.off = 0; /* nobody to read it */
        shutdown(c->fd, SHUT_RDWR);
        return;
    }
    dbx_reader_feed(&c->rd, buf, (size_t)n);
    struct dbx_frame_hdr h;
    const uint8_t *p;
    enum dbx_read_result r;
    _cleanup_error_ dbx_error *e = NULL;
    while (c->kind != C_CLOSING &&
           (r = dbx_reader_next(&c->rd, &h, &p, &e)) != DBX_READ_NEED_MORE) {
        if (r == DBX_READ_BAD) {
            client_detach(s, c);
            client_error(c, DBX_ERR_FAILED, "%s", e->msg);
            break;
        }
        if (c->kind == C_NEW)
            client_frame_new(s, c, &h, p);
        else if (c->kind == C_EXEC)
            client_frame_exec(s, c, &h, p);
        else
            client_error(c, DBX_ERR_FAILED, "unexpected %s frame", dbx_msg_name(h.type));
    }
}

static void client_accept(struct sup *s) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    struct ucred cr;
    socklen_t l = sizeof(cr);
    /* The socket lives in a 0700 directory; checking the peer is defence in depth. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0 || cr.uid != geteuid() ||
        s->nclients >= MAX_CLIENTS) {
        close(fd);
        return;
    }
    struct client *c = dbx_xcalloc(1, sizeof(*c));
    c->fd = fd;
    s->clients[s->nclients++] = c;
}

static void client_flush(struct client *c) {
    while (dbx_buf_avail(&c->out) > 0) {
        ssize_t n = write(c->fd, dbx_buf_head(&c->out), dbx_buf_avail(&c->out));
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) {
                c->out.len = c->out.off = 0;
                c->kind = C_CLOSING;
            }
            return;
        }
        dbx_buf_consume(&c->out, (size_t)n);
    }
}

/* ---- the guest -------------------------------------------------------------------------- */

static void send_setup(struct sup *s) {
    struct dbx_setup st = {
        .ws_tag = "workspace",
        .ws_path = s->proj.root,
        .hostname = "devbox",
    };
    mounts_box_ids(&st.uid, &st.gid); /* as root not 0: mounts.h maps it back to the user */
    st.plan = s->plan;                /* borrowed */
    st.hostname = s->prof.hostname;
    struct dbx_buf b = {0};
    dbx_setup_encode(&st, &b);
    agent_send(s, DBX_MSG_SETUP, 0, b.data, b.len);
    dbx_buf_free(&b);
}

static void agent_control(struct sup *s, const struct dbx_frame_hdr *h, const uint8_t *p) {
    switch (h->type) {
    case DBX_MSG_HELLO: {
        uint32_t ver = 0;
        char *rel = NULL;
        if (s->hello || dbx_hello_decode(p, h->len, &ver, &rel) < 0 || ver != DBX_PROTO_VERSION) {
            sup_log("ignoring unexpected or malformed hello");
            if (!s->hello && rel && ver != DBX_PROTO_VERSION && !s->boot_error)
                s->boot_error = skew_error(ver);
            free(rel);
            return;
        }
        s->hello = true;
        s->guest_release = dbx_sanitize_printable(rel);
        send_setup(s);
        return;
    }
    case DBX_MSG_READY:
        if (s->hello) {
            s->ready = true;
            s->last_guest_ms = dbx_now_ms();
            net_guest_ready(s->net);
        }
        return;
    case DBX_MSG_PING:
        agent_send(s, DBX_MSG_PONG, 0, p, h->len);
        return;
    case DBX_MSG_PONG: /* liveness: any frame counts (agent_read) */
        return;
    case DBX_MSG_ERROR: {
        uint32_t code;
        char *msg = NULL;
        if (dbx_error_msg_decode(p, h->len, &code, &msg) == 0) {
            dbx_sanitize_printable(msg);
            sup_log("guest error: %s", msg);
            if (!s->ready && !s->boot_error)
                s->boot_error = msg;
            else
                free(msg);
        }
        return;
    }
    default:
        sup_log("ignoring %s frame on the control session", dbx_msg_name(h->type));
    }
}

static void agent_session(struct sup *s, const struct dbx_frame_hdr *h, const uint8_t *p) {
    struct sess *x = sess_find(s, h->session);
    if (!x) return; /* unknown or finished session: drop */
    bool last = h->type == DBX_MSG_EXIT || h->type == DBX_MSG_ERROR;
    bool ok;
    uint8_t st;
    uint32_t v;
    bool sig;
    switch (h->type) {
    case DBX_MSG_STARTED:
        ok = h->len == 4;
        break;
    case DBX_MSG_STDOUT:
    case DBX_MSG_STDERR:
        ok = h->len <= DBX_DATA_CHUNK;
        break;
    case DBX_MSG_CREDIT:
        ok = dbx_dec_credit(p, h->len, &st, &v) == 0 && st == DBX_STREAM_STDIN;
        break;
    case DBX_MSG_EXIT:
        ok = dbx_dec_exit(p, h->len, &sig, &v) == 0;
        break;
    case DBX_MSG_ERROR: {
        char *m = NULL;
        ok = dbx_error_msg_decode(p, h->len, &v, &m) == 0;
        free(m);
        break;
    }
    default:
        ok = false;
    }
    struct client *c = x->c;
    if (!ok) {
        sup_log("session %u: malformed %s frame from the guest", h->session, dbx_msg_name(h->type));
        if (c)
            client_error(c, DBX_ERR_FAILED, "malformed %s frame from the guest",
                         dbx_msg_name(h->type));
        uint8_t k[4];
        agent_send(s, DBX_MSG_SIGNAL, x->gsid, k, dbx_enc_u32(k, SIGKILL));
        sess_free(s, x);
        return;
    }
    if (c) {
        if (dbx_buf_avail(&c->out) > CLIENT_OUT_CAP) {
            /* The guest ignored the client's credit: end the session, not the supervisor. */
            client_error(c, DBX_ERR_FAILED, "the guest exceeded the flow-control window");
            uint8_t k[4];
            agent_send(s, DBX_MSG_SIGNAL, x->gsid, k, dbx_enc_u32(k, SIGKILL));
            sess_free(s, x);
            return;
        }
        client_send(c, h->type, p, h->len);
        if (last) c->kind = C_CLOSING;
    }
    if (last) sess_free(s, x);
}

static void agent_read(struct sup *s) {
    uint8_t buf[65536];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(s->agent_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            /* QEMU closed the port: the VM is going away; SIGCHLD will follow. */
            close(s->agent_fd);
            s->agent_fd = -1;
            return;
        }
        s->last_guest_ms = dbx_now_ms();
        dbx_reader_feed(&s->agent_rd, buf, (size_t)n);
        struct dbx_frame_hdr h;
        const uint8_t *p;
        enum dbx_read_result r;
        _cleanup_error_ dbx_error *e = NULL;
        while ((r = dbx_reader_next(&s->agent_rd, &h, &p, &e)) != DBX_READ_NEED_MORE) {
            if (r == DBX_READ_BAD) {
                sup_log("bad frame from the guest: %s", e->msg);
                /* Before its hello, a frame of another version means devbox-init comes from
                 * another build: fail the boot now, naming it, rather than at the hello deadline.
                 */
                if (!s->hello && h.version != DBX_PROTO_VERSION && !s->boot_error)
                    s->boot_error = skew_error(h.version);
                struct sess *x = sess_find(s, h.session);
                if (x && x->c)
                    client_error(x->c, DBX_ERR_FAILED, "bad frame from the guest: %s", e->msg);
                if (x) sess_free(s, x);
                dbx_error_free(&e);
                continue;
            }
            if (h.session == 0)
                agent_control(s, &h, p);
            else if (net_owns(s->net, &h))
                net_agent_frame(s->net, &h, p);
            else
                agent_session(s, &h, p);
        }
    }
}

static void agent_flush(struct sup *s) {
    while (s->agent_fd >= 0 && dbx_buf_avail(&s->agent_out) > 0) {
        ssize_t n = write(s->agent_fd, dbx_buf_head(&s->agent_out), dbx_buf_avail(&s->agent_out));
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) s->agent_out.len = s->agent_out.off = 0;
            return;
        }
        dbx_buf_consume(&s->agent_out, (size_t)n);
    }
}

/* ---- children --------------------------------------------------------------------------- */

/* The workspace is gone with virtiofsd: every running command is told now, in one line, rather
 * than when the guest's shutdown gives up on the share. */
static void vfs_died(struct sup *s, int status) {
    _cleanup_free_ char *how = WIFSIGNALED(status)
                                   ? dbx_xasprintf("killed by signal %d", WTERMSIG(status))
                                   : dbx_xasprintf("exited with status %d", WEXITSTATUS(status));
    sup_log("virtiofsd %s; stopping the VM", how);
    for (size_t i = 0; i < s->nclients; i++) {
        struct client *c = s->clients[i];
        if (c->kind == C_EXEC)
            client_error(c, DBX_ERR_FAILED,
                         "the workspace share stopped (virtiofsd %s); the VM "
                         "is being stopped (the next command starts it again)",
                         how);
    }
    begin_stop(s, "virtiofsd exited");
    s->stop_deadline = dbx_now_ms() + VFS_GONE_STOP_MS;
}

static void reap(struct sup *s) {
    struct signalfd_siginfo si;
    while (read(s->sig_fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGHUP)
            begin_stop(s, "signal");
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == s->qemu_pid) {
            s->qemu_pid = -1;
            s->qemu_status = status;
            s->quit = true;
        } else if (pid == s->passt_pid) {
            s->passt_pid = -1;
            if (!s->stopping)
                sup_log("passt exited (status %d): the VM has no network now", status);
        } else if (pid == s->vfs_pid) {
            s->vfs_pid = -1;
            if (!s->stopping) {
                /* a panic's reboot ends virtiofsd too (QEMU hung up): name the real cause */
                if (s->logs[0].in >= 0) logsink_pump(&s->logs[0]);
                if (vm_qmp_fd(s->qmp) >= 0) qmp_events(s);
                check_console_panic(s, true);
            }
            if (!s->stopping) vfs_died(s, status);
        }
    }
}

/* ---- the loop --------------------------------------------------------------------------- */

/* One poll round over everything; timeout_ms bounds the wait. */
static void sup_poll(struct sup *s, int timeout_ms) {
    struct pollfd pfd[8 + MAX_CLIENTS + MAX_NET_FDS];
    size_t n = 0;
    pfd[n++] = (struct pollfd){s->sig_fd, POLLIN, 0};
    size_t agent_i = n;
    /* A guest that floods requests without reading the answers is not read further until it
     * drains them (legitimate traffic to the guest stops growing at AGENT_OUT_HIGH). */
    bool agent_full = dbx_buf_avail(&s->agent_out) > AGENT_OUT_MAX;
    pfd[n++] = (struct pollfd){
        s->agent_fd,
        (short)((agent_full ? 0 : POLLIN) | (dbx_buf_avail(&s->agent_out) ? POLLOUT : 0)), 0};
    size_t logs_i = n;
    for (int i = 0; i < 3; i++)
        pfd[n++] = (struct pollfd){s->logs[i].in, POLLIN, 0};
    size_t qmp_i = n;
    pfd[n++] = (struct pollfd){vm_qmp_fd(s->qmp), vm_qmp_poll_events(s->qmp), 0};
    size_t listen_i = n;
    pfd[n++] = (struct pollfd){s->listen_fd, POLLIN, 0};
    size_t cl_i = n;
    bool agent_busy = dbx_buf_avail(&s->agent_out) > AGENT_OUT_HIGH;
    for (size_t i = 0; i < s->nclients; i++) {
        struct client *c = s->clients[i];
        short ev = (short)((c->kind != C_CLOSING && !agent_busy ? POLLIN : 0) |
                           (dbx_buf_avail(&c->out) ? POLLOUT : 0));
        pfd[n++] = (struct pollfd){c->fd, ev, 0};
    }
    size_t net_i = n;
    size_t net_n = net_pollfds(s->net, pfd + n, MAX_NET_FDS, agent_busy);
    n += net_n;
    if (poll(pfd, n, timeout_ms) < 0) return;
    if (pfd[0].revents) reap(s);
    for (int i = 0; i < 3; i++)
        if (pfd[logs_i + i].revents && s->logs[i].in >= 0) logsink_pump(&s->logs[i]);
    /* the monitor first: a panic device report read in this round wins over the console */
    if (pfd[qmp_i].revents) qmp_events(s);
    check_console_panic(s, false);
    nospace_poll(s);
    /* Socket sessions first: agent_read may free some, and their fd numbers be reused. */
    net_dispatch(s->net, pfd + net_i, net_n);
    if (s->agent_fd >= 0 && (pfd[agent_i].revents & (POLLIN | POLLHUP | POLLERR)) && !agent_full)
        agent_read(s);
    if (s->listen_fd >= 0 && (pfd[listen_i].revents & POLLIN)) client_accept(s);
    size_t nc = net_i - cl_i;
    for (size_t i = 0; i < nc && i < s->nclients; i++) {
        struct client *c = s->clients[i];
        if (pfd[cl_i + i].fd != c->fd) continue;
        if (pfd[cl_i + i].revents & (POLLIN | POLLHUP | POLLERR)) client_read(s, c);
    }
    for (size_t i = 0; i < s->nclients; i++)
        client_flush(s->clients[i]);
    agent_flush(s);
    /* Closing clients go once their last frame is written. */
    for (size_t i = s->nclients; i-- > 0;) {
        struct client *c = s->clients[i];
        if (c->kind == C_CLOSING && dbx_buf_avail(&c->out) == 0) client_free(s, i);
    }
    check_liveness(s);
    if (s->stopping && s->qemu_pid > 0 && dbx_now_ms() > s->stop_deadline) {
        sup_log("guest did not power off in time; killing QEMU");
        kill(s->qemu_pid, SIGKILL);
        s->stop_deadline = UINT64_MAX;
    }
}

/* ---- status ----------------------------------------------------------------------------- */

static uint64_t proc_rss_kib(pid_t pid) {
    _cleanup_free_ char *path = dbx_xasprintf("/proc/%d/status", (int)pid);
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    char line[256];
    unsigned long long v = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %llu kB", &v) == 1) break;
    return v;
}

static char *status_json(struct sup *s) {
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:i, s:i, s:i, s:s, s:I, s:I, s:I, s:i, s:s, s:s, s:I, s:i}", "state",
        s->stopping  ? "stopping"
        : s->nospace ? "paused"
                     : "running",
        "project", s->proj.root, "id", s->proj.id, "pid", (int)getpid(), "qemu_pid",
        (int)s->qemu_pid, "virtiofsd_pid", (int)s->vfs_pid, "accel", vm_accel_name(s->accel),
        "uptime_s", (json_int_t)((dbx_now_ms() - s->started_ms) / 1000), "memory_mib",
        (json_int_t)(s->prof.memory >> 20), "rss_kib", (json_int_t)proc_rss_kib(s->qemu_pid),
        "cpus", (int)s->prof.cpus, "image", s->rec.image, "kernel",
        s->guest_release ? s->guest_release : "", "started", (json_int_t)s->started_wall,
        "sessions", (int)s->nsess);
    if (j) {
        json_object_set_new(j, "profile_hash", json_string(s->prof.hash));
        /* which repo files that hash covers, in order: a client re-hashes just those */
        json_t *files = json_array();
        for (char **f = s->prof.files; f && *f; f++)
            json_array_append_new(files, json_string(*f));
        json_object_set_new(j, "profile_files", files);
        static const char *const modes[] = {"none", "allowlist", "open"};
        json_object_set_new(j, "network",
                            json_string(modes[s->plan.net_mode <= 2 ? s->plan.net_mode : 0]));
        json_object_set_new(j, "connections", json_integer((json_int_t)net_nsocks(s->net)));
        if (s->net) {
            char *ports = net_port_list(s->net);
            json_object_set_new(j, "ports", json_string(ports));
            free(ports);
        }
        json_object_set_new(j, "seccomp",
                            json_string(s->plan.seccomp_mode == DBX_SECCOMP_STRICT ? "strict"
                                        : s->plan.seccomp_mode                     ? "default"
                                                                                   : "unconfined"));
    }
    char *out = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!out) dbx_oom_hook();
    return out;
}

/* ---- boot ------------------------------------------------------------------------------- */

static int listen_unix(const char *path, int backlog, dbx_error **err) {
    struct sockaddr_un sa;
    if (dbx_sockaddr(&sa, path, err) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return dbx_error_set(err, errno, "socket");
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        return dbx_error_set(err, e, "listen on '%s'", path);
    }
    return fd;
}

static void kill_children(struct sup *s) {
    if (s->qemu_pid > 0) kill(s->qemu_pid, SIGKILL);
    if (s->vfs_pid > 0) kill(s->vfs_pid, SIGKILL);
    vm_passt_free(s->passt); /* SIGKILL through its pidfd; reaped below */
    s->passt = NULL;
    if (s->qemu_pid > 0) waitpid(s->qemu_pid, &s->qemu_status, 0);
    if (s->vfs_pid > 0) waitpid(s->vfs_pid, NULL, 0);
    if (s->passt_pid > 0) waitpid(s->passt_pid, NULL, 0);
    s->qemu_pid = s->vfs_pid = s->passt_pid = -1;
    if (s->agent_fd >= 0) close(s->agent_fd);
    s->agent_fd = -1;
    for (int i = 0; i < 3; i++)
        logsink_close(&s->logs[i]);
    dbx_reader_free(&s->agent_rd);
    dbx_buf_free(&s->agent_out);
    vm_qmp_free(s->qmp);
    s->qmp = NULL;
    s->hello = s->ready = s->quit = s->dead = s->nospace = false;
    s->console_panic_ms = 0;
}

static int spawn_vm(struct sup *s, dbx_error **err) {
    static const char *const names[3] = {"console.log", "qemu.log", "virtiofsd.log"};
    int wr[3] = {-1, -1, -1}, agent[2] = {-1, -1}, con[2] = {-1, -1}, qmp[2] = {-1, -1};
    _cleanup_free_ char *vfs_path = dbx_xasprintf("%s/%s", s->proj.run_dir, DBX_VFS_SOCK_NAME);
    _cleanup_free_ char *disk = dbx_xasprintf("%s/disk.qcow2", s->proj.data_dir);
    _cleanup_close_ int vfs_listen = -EBADF;
    struct mounts_idmap map;
    int r = 0;
    for (int i = 0; i < 3 && r == 0; i++) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", s->proj.state_dir, names[i]);
        r = logsink_open(&s->logs[i], p, &wr[i], err);
    }
    if (r == 0 && (vfs_listen = listen_unix(vfs_path, 1, err)) < 0) r = -1;
    if (r == 0) {
        dbx_set_nonblock(vfs_listen, false);
        r = mounts_idmap_get(&map, err);
    }
    if (r == 0) {
        struct mounts_vfs_config vc = {.source = s->proj.root,
                                       .listen_fd = vfs_listen,
                                       .log_fd = wr[2],
                                       .protected = (const char *const *)s->prof.protect};
        s->vfs_pid = mounts_virtiofsd_spawn(&vc, &map, err);
        if (s->vfs_pid < 0) r = dbx_error_wrap(err, "start virtiofsd");
    }
    /* Network mode open: user-mode NAT (passt) behind a virtio-net device; its messages go to
     * the QEMU log. */
    int net[2] = {-1, -1};
    if (r == 0 && s->plan.net_mode == DBX_NET_OPEN) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, net) < 0)
            r = dbx_error_set(err, errno, "socketpair");
        else if (vm_passt_start(net[0], wr[1], &s->passt, err) < 0)
            r = dbx_error_wrap(err, "start passt");
        else
            s->passt_pid = vm_passt_pid(s->passt);
    }
    if (r == 0 && (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, agent) < 0 ||
                   socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con) < 0 ||
                   socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qmp) < 0))
        r = dbx_error_set(err, errno, "socketpair");
    if (r == 0) {
        struct vm_config cfg = {
            .kernel = s->kernel.vmlinuz,
            .initramfs = s->kernel.initramfs,
            .disk = disk,
            .vfs_socket = vfs_path,
            .vfs_tag = "workspace",
            .agent_fd = agent[1],
            .console_fd = con[1],
            .cpus = s->prof.cpus,
            .mem_mib = s->prof.memory >> 20,
            .accel = s->accel,
            .net_fd = net[1] >= 0 ? net[1] : 0,
            .qmp_fd = qmp[1],
        };
        s->qemu_pid = vm_qemu_spawn(&cfg, wr[1], err);
        if (s->qemu_pid < 0) r = dbx_error_wrap(err, "start QEMU");
    }
    if (r == 0) {
        /* The console socket replaces the console pipe: it is just another log stream. */
        close(s->logs[0].in);
        s->logs[0].in = TAKE_FD(con[0]);
        dbx_set_nonblock(s->logs[0].in, true);
        s->agent_fd = TAKE_FD(agent[0]);
        dbx_set_nonblock(s->agent_fd, true);
        r = vm_qmp_new(TAKE_FD(qmp[0]), &s->qmp, err);
    }
    /* Our copies of the children's ends. */
    for (int i = 0; i < 3; i++)
        if (wr[i] >= 0) close(wr[i]);
    int fds[8] = {agent[0], agent[1], con[0], con[1], net[0], net[1], qmp[0], qmp[1]};
    for (int i = 0; i < 8; i++)
        if (fds[i] >= 0) close(fds[i]);
    if (r < 0) kill_children(s);
    return r;
}

/* Why the boot failed, for the one-line error: the guest's own message, else the last line
 * QEMU, virtiofsd or the console printed. */
static int boot_failure(struct sup *s, const char *what, dbx_error **err) {
    if (s->boot_error) return dbx_error_set(err, 0, "%s: %s", what, s->boot_error);
    for (int i = 1; i <= 3; i++) {
        int k = i % 3; /* qemu, virtiofsd, console */
        logsink_pump(&s->logs[k]);
        _cleanup_free_ char *l = logsink_last_line(&s->logs[k]);
        if (*l) {
            static const char *const src[3] = {"console", "qemu", "virtiofsd"};
            return dbx_error_set(err, 0, "%s (%s: %s; logs in '%s')", what, src[k], l,
                                 s->proj.state_dir);
        }
    }
    return dbx_error_set(err, 0, "%s (logs in '%s')", what, s->proj.state_dir);
}

/* Boot and wait for the agent's hello; -ETIMEDOUT if it did not come within deadline. */
static int boot_once(struct sup *s, uint64_t hello_ms, dbx_error **err) {
    if (spawn_vm(s, err) < 0) return -1;
    uint64_t deadline = dbx_now_ms() + hello_ms;
    while (!s->hello && !s->quit && !s->boot_error && dbx_now_ms() < deadline)
        sup_poll(s, 100);
    if (!s->hello) {
        if (s->quit) return boot_failure(s, "the VM exited during boot", err);
        if (s->boot_error) return boot_failure(s, "boot", err); /* not worth a second boot */
        return -ETIMEDOUT;
    }
    deadline = dbx_now_ms() + READY_MS;
    while (!s->ready && !s->quit && !s->boot_error && dbx_now_ms() < deadline)
        sup_poll(s, 100);
    if (!s->ready) return boot_failure(s, "guest setup failed", err);
    return 0;
}

static int boot(struct sup *s, dbx_error **err) {
    bool forced = false;
    if (vm_accel_choose(s->paths.state, &s->accel, &forced, err) < 0) return -1;
    for (int tcg_tries = 0;;) {
        s->started_ms = dbx_now_ms();
        s->started_wall = (int64_t)time(NULL);
        uint64_t wait = s->accel == VM_ACCEL_KVM ? KVM_HELLO_MS : TCG_HELLO_MS;
        int r = boot_once(s, wait, err);
        if (r == 0) return 0;
        kill_children(s);
        if (r != -ETIMEDOUT && !(s->accel == VM_ACCEL_KVM && !forced && !s->boot_error)) return r;
        if (s->accel == VM_ACCEL_KVM && !forced) {
            dbx_error_free(err);
            _cleanup_free_ char *w = dbx_xasprintf(
                "KVM did not boot the guest within %us; using TCG (software emulation, slower); "
                "set DEVBOX_ACCEL=kvm to insist",
                KVM_HELLO_MS / 1000);
            sup_log("%s", w);
            ready_say(s, 'W', w);
            (void)vm_accel_record_kvm_broken(s->paths.state, NULL);
            s->accel = VM_ACCEL_TCG;
            continue;
        }
        if (r == -ETIMEDOUT && ++tcg_tries < TCG_BOOT_TRIES) {
            sup_log("the guest did not say hello within %us; booting again", TCG_HELLO_MS / 1000);
            continue;
        }
        if (r == -ETIMEDOUT) return boot_failure(s, "the guest did not answer in time", err);
        return r;
    }
}

/* The image's config Env applies inside the guest, under the profile's own [env] (which wins)
 * and never for the proxy variables the network policy sets. */
static void add_image_env(struct profile *p, char *const *env) {
    static const char *const reserved[] = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"};
    for (; env && *env; env++) {
        const char *eq = strchr(*env, '=');
        if (!eq || eq == *env) continue;
        size_t klen = (size_t)(eq - *env);
        bool skip = false;
        for (size_t i = 0; i < DBX_ARRAY_SIZE(reserved) && !skip; i++)
            skip = strlen(reserved[i]) == klen && strncasecmp(reserved[i], *env, klen) == 0;
        for (char **e = p->env; e && *e && !skip; e++)
            skip = strncmp(*e, *env, klen + 1) == 0;
        if (!skip) p->env = dbx_strv_push(p->env, *env);
    }
}

/* [box] disk: the overlay's virtual size (the guest grows its filesystem to fill it at boot).
 * A larger value grows an existing disk at the next start; a smaller one than the disk (or
 * the image) already has is ignored with a warning: shrinking would cut off the guest's
 * filesystem.  0 (auto) leaves the disk as it is. */
static int fit_disk(struct sup *s, const char *disk, dbx_error **err) {
    if (!s->prof.disk) return 0;
    uint64_t size = 0;
    if (vm_disk_grow_overlay(disk, s->prof.disk, &size, err) < 0)
        return dbx_error_wrap(err, "grow the project's disk");
    if (size >= s->prof.disk + 512) {
        /* Below the image's own size no new disk would be smaller either: say which it is. */
        struct stat st;
        bool image = s->rec.base && stat(s->rec.base, &st) == 0 &&
                     (uint64_t)st.st_size >= s->prof.disk + 512;
        _cleanup_free_ char *w =
            image ? dbx_xasprintf("[box] disk %.1f GiB is smaller than the image (%.1f GiB): the "
                                  "disk has the image's size",
                                  s->prof.disk / 1073741824.0, st.st_size / 1073741824.0)
                  : dbx_xasprintf("[box] disk %.1f GiB is smaller than the project's disk (%.1f "
                                  "GiB): kept (a disk never shrinks; 'devbox rm' and a new start "
                                  "make a smaller one)",
                                  s->prof.disk / 1073741824.0, size / 1073741824.0);
        sup_log("%s", w);
        ready_say(s, 'W', w);
    }
    return 0;
}

/* Everything a boot needs on disk: kernel + initramfs, the project's record and disk. */
static int prepare(struct sup *s, dbx_error **err) {
    struct profile_user user = {0};
    if (dbx_profile_load(&s->paths, &s->proj, &s->prof, &user, err) < 0) return -1;
    /* The repo profile may only narrow; this is the authoritative check (the client's is
     * only for an early message). */
    int r = dbx_profile_allowed(&s->paths, &s->proj, &s->prof, &user, err);
    /* `--network none` narrows whatever the profile says (after the trust check: a narrower
     * box never needs trust, and the profile itself is what was trusted). */
    if (r == 0 && s->net_override)
        r = profile_set(&s->prof, "network.mode", s->net_override, "command line", err);
    if (r == 0) r = net_new(&s->net, &s->prof, &user, s->proj.state_dir, &s->agent_out, err);
    for (size_t i = 0; r == 0 && i < s->prof.nports; i++)
        if (net_port_add(s->net, s->prof.ports[i].host, s->prof.ports[i].guest, err) < 0)
            r = dbx_error_wrap(err, "%s [ports]", PROFILE_FILE);
    profile_user_clear(&user);
    if (r < 0) return -1;
    _cleanup_free_ char *nofile = mounts_nofile_warning(s->proj.root); /* once per start */
    if (nofile) {
        sup_log("%s", nofile);
        ready_say(s, 'W', nofile);
    }
    _cleanup_free_ char *init = NULL;
    if (dbx_find_init(&init, err) < 0) return -1;
    _cleanup_free_ char *kdir = dbx_xasprintf("%s/kernel", s->paths.data);
    if (vm_kernel_ensure(kdir, init, &s->kernel, err) < 0)
        return dbx_error_wrap(err, "guest kernel");
    _cleanup_free_ char *disk = dbx_xasprintf("%s/disk.qcow2", s->proj.data_dir);
    _cleanup_free_ char *dirty = dbx_xasprintf("%s/running", s->proj.state_dir);
    struct dbx_image img = {0};
    if (dbx_project_rec_load(s->proj.state_dir, &s->rec, NULL) < 0 || access(disk, F_OK) < 0) {
        dbx_project_rec_clear(&s->rec);
        /* Normally the client has already pulled or built it, with progress on its tty. */
        struct dbx_pull_opts opts = {.progress_fd = -1};
        if (dbx_image_ensure(&s->paths, s->prof.image, &opts, &img, err) < 0) return -1;
        r = vm_disk_create_overlay(img.base, disk, s->prof.disk, err);
        s->rec = (struct dbx_project_rec){dbx_xstrdup(s->proj.root), dbx_xstrdup(img.name),
                                          dbx_xstrdup(img.base), (int64_t)time(NULL)};
        if (r < 0) {
            dbx_image_clear(&img);
            return dbx_error_wrap(err, "create the project's disk");
        }
        if (dbx_project_rec_save(s->proj.state_dir, &s->rec, err) < 0) {
            dbx_image_clear(&img);
            return -1;
        }
    } else {
        if (access(dirty, F_OK) == 0) {
            /* The last run ended without a clean shutdown (killed supervisor or QEMU). */
            sup_log("last run did not stop cleanly; checking the disk");
            if (vm_disk_check(disk, err) < 0)
                return dbx_error_wrap(err, "disk check after an unclean stop");
        }
        /* The image record may be gone (rmi --force): its environment is then unknown. */
        if (dbx_image_get(&s->paths, s->rec.image, &img, NULL) < 0) img = (struct dbx_image){0};
    }
    if (fit_disk(s, disk, err) < 0) {
        dbx_image_clear(&img);
        return -1;
    }
    add_image_env(&s->prof, img.env);
    dbx_image_clear(&img);
    if (policy_compile(&s->prof, s->prof.memory, &s->plan, err) < 0)
        return dbx_error_wrap(err, "%s/%s", s->proj.root, PROFILE_FILE);
    _cleanup_close_ int mark = open(dirty, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (mark < 0) return dbx_error_set(err, errno, "create '%s'", dirty);
    return 0;
}

static int write_status_file(struct sup *s, dbx_error **err) {
    _cleanup_free_ char *j = status_json(s);
    _cleanup_close_ int dfd = open(s->proj.run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return dbx_error_set(err, errno, "open '%s'", s->proj.run_dir);
    return dbx_write_file_atomic(dfd, DBX_STATUS_NAME, j, strlen(j), 0600, err);
}

static void sup_teardown(struct sup *s, bool clean) {
    if (!s->proj.run_dir) return;
    for (size_t i = 0; i < s->nclients; i++) {
        struct client *c = s->clients[i];
        if (c->kind == C_EXEC && c->gsid)
            client_error(c, DBX_ERR_FAILED, "the VM stopped%s",
                         clean ? "" : " unexpectedly (see the logs in the project's state dir)");
        dbx_set_nonblock(c->fd, false);
        client_flush(c);
    }
    while (s->nclients)
        client_free(s, s->nclients - 1);
    net_free(s->net);
    s->net = NULL;
    if (s->listen_fd >= 0) close(s->listen_fd);
    s->listen_fd = -1;
    _cleanup_free_ char *sock = dbx_xasprintf("%s/%s", s->proj.run_dir, DBX_SOCK_NAME);
    _cleanup_free_ char *vfs = dbx_xasprintf("%s/%s", s->proj.run_dir, DBX_VFS_SOCK_NAME);
    _cleanup_free_ char *st = dbx_xasprintf("%s/%s", s->proj.run_dir, DBX_STATUS_NAME);
    unlink(sock);
    unlink(vfs);
    unlink(st);
    kill_children(s);
    if (clean) {
        _cleanup_free_ char *dirty = dbx_xasprintf("%s/running", s->proj.state_dir);
        unlink(dirty);
    }
}

int dbx_supervise(const char *root, const char *net_override, int ready_fd) {
    struct sup s = {.ready_fd = ready_fd,
                    .net_override = net_override,
                    .listen_fd = -1,
                    .agent_fd = -1,
                    .sig_fd = -1,
                    .qemu_pid = -1,
                    .vfs_pid = -1,
                    .passt_pid = -1};
    for (int i = 0; i < 3; i++)
        s.logs[i].in = s.logs[i].out = -1;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_free_ char *sock = NULL, *alive = NULL;
    _cleanup_close_ int alive_fd = -EBADF;
    bool clean = false;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    s.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s.sig_fd < 0) {
        dbx_error_set(&err, errno, "signalfd");
        goto out;
    }
    if (dbx_paths_init(&s.paths, &err) < 0 ||
        dbx_project_find(&s.paths, root, true, &s.proj, &err) < 0 ||
        dbx_project_dirs(&s.proj, &err) < 0)
        goto out;
    if (strcmp(s.proj.root, root) != 0) {
        dbx_error_set(&err, 0, "'%s' is not a project root", root);
        goto out;
    }
    alive = dbx_xasprintf("%s/%s", s.proj.run_dir, DBX_ALIVE_LOCK);
    alive_fd = open(alive, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (alive_fd < 0 || flock(alive_fd, LOCK_EX | LOCK_NB) < 0) {
        dbx_error_set(&err, errno, "another supervisor owns '%s'", s.proj.root);
        goto out;
    }
    sup_log("starting for '%s'", s.proj.root);
    if (prepare(&s, &err) < 0 || boot(&s, &err) < 0) goto out;
    sock = dbx_xasprintf("%s/%s", s.proj.run_dir, DBX_SOCK_NAME);
    s.listen_fd = listen_unix(sock, 128, &err);
    if (s.listen_fd < 0 || write_status_file(&s, &err) < 0) goto out;
    sup_log("ready (accel %s, kernel %s, boot %llu ms)", vm_accel_name(s.accel), s.guest_release,
            (unsigned long long)(dbx_now_ms() - s.started_ms));
    ready_say(&s, 'O', NULL);
    while (!s.quit)
        sup_poll(&s, s.stopping || s.console_panic_ms ? 200 : 5000);
    /* The monitor, then the console, may still hold why QEMU went away (a panic, then a
     * reboot -no-reboot ends). */
    if (vm_qmp_fd(s.qmp) >= 0) qmp_events(&s);
    if (s.logs[0].in >= 0) logsink_pump(&s.logs[0]);
    check_console_panic(&s, true);
    clean = s.stopping && WIFEXITED(s.qemu_status) && WEXITSTATUS(s.qemu_status) == 0;
    sup_log("QEMU exited (%s, status 0x%x)", clean ? "clean" : "unexpected", s.qemu_status);
    sup_teardown(&s, clean);
out:
    if (err) {
        sup_log("error: %s", err->msg);
        ready_say(&s, 'E', err->msg);
        sup_teardown(&s, false);
    }
    if (s.sig_fd >= 0) close(s.sig_fd);
    free(s.boot_error);
    free(s.guest_release);
    vm_kernel_clear(&s.kernel);
    dbx_plan_free(&s.plan);
    dbx_project_rec_clear(&s.rec);
    profile_clear(&s.prof);
    dbx_project_clear(&s.proj);
    dbx_paths_clear(&s.paths);
    return err ? 1 : 0;
}

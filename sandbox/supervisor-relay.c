/* sandbox/supervisor-relay.c: clients on the control socket and the guest's agent channel:
 * exec sessions relayed both ways with the guest's credit-based flow control (a side that
 * ignores it ends its own session), the small requests (status, stop, ports), and frames from
 * the guest dispatched to the session they belong to.  Runs on the poll loop's thread
 * (sandbox-supervisor.c). */
#define _GNU_SOURCE
#include "supervisor-internal.h"

#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#define CLIENT_OUT_CAP (4 * DBX_WINDOW + 64 * 1024)

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- sessions and clients --------------------------------------------------------------- */

static struct sess *sess_find(struct sup *s, uint32_t gsid) {
    struct sess *x = &s->relay.sess[gsid & (SESS_SLOTS - 1)];
    return gsid && x->gsid == gsid ? x : NULL;
}

static uint32_t sess_alloc(struct sup *s, struct client *c) {
    for (unsigned tries = 0; tries < SESS_SLOTS; tries++) {
        uint32_t g = ++s->relay.next_gsid;
        /* ids from NET_SID_BASE up belong to socket sessions (sandbox-net.c) */
        if (g == 0 || g >= NET_SID_BASE) g = s->relay.next_gsid = 1;
        struct sess *x = &s->relay.sess[g & (SESS_SLOTS - 1)];
        if (x->gsid) continue;
        *x = (struct sess){.gsid = g, .c = c, .log_fd = -1};
        s->relay.nsess++;
        return g;
    }
    return 0;
}

static void sess_free(struct sup *s, struct sess *x) {
    sup_event_exec_exit(s, x->gsid, -1); /* no line if EXIT gave one */
    if (x->c) x->c->gsid = 0;
    if (x->log_fd >= 0) close(x->log_fd);
    *x = (struct sess){.log_fd = -1};
    s->relay.nsess--;
}

void sup_agent_send(struct sup *s, uint8_t type, uint32_t session, const void *p, size_t n) {
    dbx_frame_put(&s->relay.agent_out, type, session, p, n);
}

static void client_send(struct client *c, uint8_t type, const void *p, size_t n) {
    if (c->kind == C_CLOSING && type != DBX_MSG_ERROR) return;
    dbx_frame_put(&c->out, type, 1, p, n);
}

void sup_client_error(struct client *c, uint32_t code, const char *fmt, ...) {
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
 * remaining frames are dropped when they arrive.  A detached command is not the client's to
 * end: it runs on, its output going to its log. */
void sup_client_detach(struct sup *s, struct client *c) {
    struct sess *x = c->gsid ? sess_find(s, c->gsid) : NULL;
    if (x && x->detached) {
        x->c = NULL;
    } else if (x) {
        uint8_t p[4];
        sup_agent_send(s, DBX_MSG_SIGNAL, x->gsid, p, dbx_enc_u32(p, SIGKILL));
        x->c = NULL;
    }
    c->gsid = 0;
}

void sup_client_free(struct sup *s, size_t i) {
    struct client *c = s->relay.clients[i];
    sup_client_detach(s, c);
    sup_procs_client_gone(s, c);
    sup_stats_client_gone(s, c);
    close(c->fd);
    dbx_reader_free(&c->rd);
    dbx_buf_free(&c->out);
    free(c);
    s->relay.clients[i] = s->relay.clients[--s->relay.nclients];
}

/* An administrative command (DBX_EXEC_ADMIN: root with more capabilities than the profile
 * grants) leaves a trace in the supervisor's log: its argv, each argument escaped and quoted,
 * the line cut at 2 KiB. */
static void log_admin(const struct dbx_exec_req *req) {
    struct dbx_buf b = {0};
    for (uint32_t i = 0; i < req->argc && b.len < 2048; i++) {
        _cleanup_free_ char *a = dbx_escape(req->argv[i]);
        _cleanup_free_ char *q = dbx_xasprintf("%s'%s'", i ? " " : "", a);
        dbx_buf_put(&b, q, strlen(q));
    }
    if (req->argc == 0) dbx_buf_put(&b, "(login shell)", 13);
    int n = b.len > 2048 ? 2048 : (int)b.len;
    sup_log("admin exec: %.*s%s", n, (const char *)b.data, b.len > 2048 ? "..." : "");
    dbx_buf_free(&b);
}

static void client_frame_new(struct sup *s, struct client *c, const struct dbx_frame_hdr *h,
                             const uint8_t *p) {
    if (h->type == DBX_MSG_STATUS) {
        struct dbx_status st = {0};
        struct dbx_buf b = {0};
        sup_status(s, &st);
        dbx_status_encode(&st, &b);
        dbx_status_clear(&st);
        client_send(c, DBX_MSG_STATUS_REPLY, b.data, b.len);
        dbx_buf_free(&b);
        c->kind = C_CLOSING;
        return;
    }
    if (h->type == DBX_MSG_PORT_REQ) {
        struct dbx_buf b = {0};
        net_port_frame(s->net, p, h->len, &b);
        client_send(c, DBX_MSG_PORT_REPLY, b.data, b.len);
        dbx_buf_free(&b);
        c->kind = C_CLOSING;
        return;
    }
    if (h->type == DBX_MSG_STATS) return sup_stats_request(s, c, p, h->len);
    if (h->type == DBX_MSG_STOP) {
        c->kind = C_STOP; /* answered by the socket closing when we exit */
        sup_begin_stop(s, SUP_STOP_CLIENT);
        return;
    }
    if (h->type == DBX_MSG_PS || h->type == DBX_MSG_KILL) {
        sup_procs_client_frame(s, c, h, p);
        return;
    }
    if (h->type != DBX_MSG_EXEC) {
        sup_client_error(c, DBX_ERR_FAILED, "unexpected %s frame", dbx_msg_name(h->type));
        return;
    }
    _cleanup_(dbx_exec_req_free) struct dbx_exec_req req = {0};
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_exec_req_decode(p, h->len, &req, &e) < 0) {
        sup_client_error(c, DBX_ERR_FAILED, "%s", e->msg);
        return;
    }
    /* before "stopping": the stop it began answers every EXEC with a restart */
    if (s->guest.ready && sup_ws_replaced(s, c)) return;
    if (s->guest.stopping || !s->guest.ready) {
        sup_client_error(c, DBX_ERR_FAILED, "the VM is stopping");
        return;
    }
    if (s->guest.nospace) {
        _cleanup_free_ char *m = sup_nospace_msg(s);
        sup_client_error(c, DBX_ERR_FAILED, "%s", m);
        return;
    }
    bool detach = req.flags & DBX_EXEC_DETACH;
    if (detach && (req.flags & (DBX_EXEC_TTY | DBX_EXEC_STDIN))) {
        sup_client_error(c, DBX_ERR_FAILED, "a detached command has no terminal and no stdin");
        return;
    }
    uint32_t g = s->relay.nsess < DBX_MAX_SESSIONS ? sess_alloc(s, c) : 0;
    if (!g) {
        sup_client_error(c, DBX_ERR_FAILED, "too many sessions (limit %u)", DBX_MAX_SESSIONS);
        return;
    }
    sess_find(s, g)->detached = detach;
    c->gsid = g;
    c->kind = C_EXEC;
    if (req.flags & DBX_EXEC_ADMIN) log_admin(&req);
    sup_event_exec_start(s, g, &req, detach);
    sup_watch_flush(s);       /* the command sees the host's edits made before it */
    sup_clock_send(s, false); /* ... and a clock that does not put them in its future */
    sup_agent_send(s, DBX_MSG_EXEC, g, p, h->len);
    if (req.flags & DBX_EXEC_TIMING) {
        sess_find(s, g)->t_recv = c->rx_us ? c->rx_us : now_us();
        s->relay.fwd_gsid = g;
    }
}

/* The guest's TIMING with the supervisor's own phases added, to the client: s_recv_at and
 * s_exit_at on the host's clock (the client subtracts its own times), s_relay from reading
 * the EXEC to writing it to the agent port, s_to_started from there to STARTED (the
 * virtio-serial round trip and the guest's start of the command). */
static void timing_relay(struct sup *s, struct sess *x, const uint8_t *p, uint32_t n) {
    struct dbx_timing g, t;
    _cleanup_error_ dbx_error *e = NULL;
    if (!x->t_recv) return; /* not asked for (or a second one): dropped */
    if (dbx_timing_decode(p, n, &g, &e) < 0) {
        sup_log("session %u: dropped a timing frame from the guest: %s", x->gsid, e->msg);
        x->t_recv = 0;
        return;
    }
    /* The guest speaks only for itself (g_*), and leaves room for the supervisor's five: it
     * cannot pass off its own figures as the host's nor crowd them out. */
    dbx_timing_filter(&g, "g_", 5, &t);
    uint64_t now = now_us();
    dbx_timing_add(&t, "s_recv_at", x->t_recv);
    if (x->t_fwd >= x->t_recv) dbx_timing_add(&t, "s_relay", x->t_fwd - x->t_recv);
    if (x->t_fwd && x->t_started >= x->t_fwd)
        dbx_timing_add(&t, "s_to_started", x->t_started - x->t_fwd);
    if (x->t_started && now >= x->t_started) dbx_timing_add(&t, "s_to_exit", now - x->t_started);
    dbx_timing_add(&t, "s_exit_at", now);
    struct dbx_buf b = {0};
    dbx_timing_encode(&t, &b);
    if (x->c) client_send(x->c, DBX_MSG_TIMING, b.data, b.len);
    dbx_buf_free(&b);
    x->t_recv = 0; /* one per session */
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
        sup_client_detach(s, c);
        sup_client_error(c, DBX_ERR_FAILED, "malformed %s frame from client",
                         dbx_msg_name(h->type));
        return;
    }
    if (c->gsid) sup_agent_send(s, h->type, c->gsid, p, h->len);
}

void sup_client_read(struct sup *s, struct client *c) {
    uint8_t buf[65536];
    ssize_t n = read(c->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        sup_client_detach(s, c);
        c->kind = C_CLOSING;
        c->out.len = c->out.off = 0; /* nobody to read it */
        shutdown(c->fd, SHUT_RDWR);
        return;
    }
    c->rx_us = now_us();
    dbx_reader_feed(&c->rd, buf, (size_t)n);
    struct dbx_frame_hdr h;
    const uint8_t *p;
    enum dbx_read_result r;
    _cleanup_error_ dbx_error *e = NULL;
    while (c->kind != C_CLOSING &&
           (r = dbx_reader_next(&c->rd, &h, &p, &e)) != DBX_READ_NEED_MORE) {
        if (r == DBX_READ_BAD) {
            sup_client_detach(s, c);
            sup_client_error(c, DBX_ERR_FAILED, "%s", e->msg);
            break;
        }
        if (c->kind == C_NEW)
            client_frame_new(s, c, &h, p);
        else if (c->kind == C_EXEC)
            client_frame_exec(s, c, &h, p);
        else
            sup_client_error(c, DBX_ERR_FAILED, "unexpected %s frame", dbx_msg_name(h.type));
    }
}

bool sup_client_accept(struct sup *s) {
    int fd = accept4(s->relay.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return false;
    struct ucred cr;
    socklen_t l = sizeof(cr);
    /* The socket lives in a 0700 directory; checking the peer is defence in depth. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0 || cr.uid != geteuid() ||
        s->relay.nclients >= MAX_CLIENTS) {
        close(fd);
        return true;
    }
    sup_client_add(s, fd);
    return true;
}

void sup_client_add(struct sup *s, int fd) {
    if (s->relay.nclients >= MAX_CLIENTS) {
        close(fd);
        return;
    }
    struct client *c = dbx_xcalloc(1, sizeof(*c));
    c->rd.takes_exec = true;
    c->fd = fd;
    s->relay.clients[s->relay.nclients++] = c;
}

void sup_client_flush(struct client *c) {
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

static void agent_session(struct sup *s, const struct dbx_frame_hdr *h, const uint8_t *p) {
    struct sess *x = sess_find(s, h->session);
    if (!x) return; /* unknown or finished session: drop */
    bool last = h->type == DBX_MSG_EXIT || h->type == DBX_MSG_ERROR;
    bool ok, again = false;
    uint8_t st;
    uint32_t v;
    bool sig;
    switch (h->type) {
    case DBX_MSG_STARTED:
        /* once per session: a second one would name another pid (and open another log) */
        again = x->started;
        ok = h->len == 4 && !again;
        x->started = true;
        if (x->t_recv) x->t_started = now_us();
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
    case DBX_MSG_NOTICE: /* informational: garbage is logged and dropped, the session goes on */
        if (!sup_notice_ok(s, x, p, h->len)) return;
        ok = true;
        break;
    case DBX_MSG_TIMING: /* informational, like NOTICE; only a client that asked gets it */
        if (!x->detached) timing_relay(s, x, p, h->len);
        return;
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
    if (ok && x->detached) {
        if (sup_procs_detached_frame(s, x, h, p)) {
            if (last) sess_free(s, x);
            return;
        }
        uint8_t k[4];
        sup_agent_send(s, DBX_MSG_SIGNAL, x->gsid, k, dbx_enc_u32(k, SIGKILL));
        sess_free(s, x);
        return;
    }
    if (!ok) {
        const char *what = again ? "second" : "malformed";
        sup_log("session %u: %s %s frame from the guest: session ended", h->session, what,
                dbx_msg_name(h->type));
        if (c)
            sup_client_error(c, DBX_ERR_FAILED, "%s %s frame from the guest", what,
                             dbx_msg_name(h->type));
        uint8_t k[4];
        sup_agent_send(s, DBX_MSG_SIGNAL, x->gsid, k, dbx_enc_u32(k, SIGKILL));
        sess_free(s, x);
        return;
    }
    if (c) {
        if (dbx_buf_avail(&c->out) > CLIENT_OUT_CAP) {
            /* The guest ignored the client's credit: end the session, not the supervisor. */
            sup_client_error(c, DBX_ERR_FAILED, "the guest exceeded the flow-control window");
            uint8_t k[4];
            sup_agent_send(s, DBX_MSG_SIGNAL, x->gsid, k, dbx_enc_u32(k, SIGKILL));
            sess_free(s, x);
            return;
        }
        client_send(c, h->type, p, h->len);
        if (last) c->kind = C_CLOSING;
    }
    if (h->type == DBX_MSG_EXIT) sup_event_exec_exit(s, x->gsid, sig ? 128 + (int)v : (int)v);
    if (last) sess_free(s, x);
}

void sup_agent_read(struct sup *s) {
    uint8_t buf[65536];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(s->relay.agent_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            /* QEMU closed the port: the VM is going away; SIGCHLD will follow. */
            close(s->relay.agent_fd);
            s->relay.agent_fd = -1;
            return;
        }
        s->guest.last_frame_ms = dbx_now_ms();
        dbx_reader_feed(&s->relay.agent_rd, buf, (size_t)n);
        struct dbx_frame_hdr h;
        const uint8_t *p;
        enum dbx_read_result r;
        _cleanup_error_ dbx_error *e = NULL;
        while ((r = dbx_reader_next(&s->relay.agent_rd, &h, &p, &e)) != DBX_READ_NEED_MORE) {
            if (r == DBX_READ_BAD) {
                sup_log("bad frame from the guest: %s", e->msg);
                /* Before its hello, a frame of another version means devbox-init comes from
                 * another build: fail the boot now, naming it, rather than at the hello deadline.
                 */
                if (!s->guest.hello && h.version != DBX_PROTO_VERSION && !s->guest.boot_error)
                    s->guest.boot_error = sup_skew_error(h.version);
                struct sess *x = sess_find(s, h.session);
                if (x && x->c)
                    sup_client_error(x->c, DBX_ERR_FAILED, "bad frame from the guest: %s", e->msg);
                if (x) sess_free(s, x);
                dbx_error_free(&e);
                continue;
            }
            if (h.session == 0 && h.type == DBX_MSG_PROTECTED)
                sup_protected_frame(s, &h, p);
            else if (h.session == 0 && (h.type == DBX_MSG_PS_REPLY || h.type == DBX_MSG_KILL_REPLY))
                sup_procs_agent_frame(s, &h, p);
            else if (h.session == 0 && h.type == DBX_MSG_STATS_REPLY)
                sup_stats_reply(s, p, h.len);
            else if (h.session == 0)
                sup_agent_control(s, &h, p);
            else if (net_owns(s->net, &h))
                net_agent_frame(s->net, &h, p);
            else
                agent_session(s, &h, p);
        }
    }
}

void sup_agent_flush(struct sup *s) {
    while (s->relay.agent_fd >= 0 && dbx_buf_avail(&s->relay.agent_out) > 0) {
        ssize_t n = write(s->relay.agent_fd, dbx_buf_head(&s->relay.agent_out),
                          dbx_buf_avail(&s->relay.agent_out));
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) s->relay.agent_out.len = s->relay.agent_out.off = 0;
            return;
        }
        dbx_buf_consume(&s->relay.agent_out, (size_t)n);
    }
    if (s->relay.fwd_gsid && dbx_buf_avail(&s->relay.agent_out) == 0) {
        struct sess *x = sess_find(s, s->relay.fwd_gsid);
        if (x && x->t_recv && !x->t_fwd) x->t_fwd = now_us();
        s->relay.fwd_gsid = 0;
    }
}

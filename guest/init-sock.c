/* guest/init-sock.c: socket sessions of the guest init.  A socket session relays one TCP
 * connection in the guest over the agent channel:
 *   forward  the host sends SOCK_OPEN (kind DBX_SOCK_FORWARD, port P) for a connection to a
 *            port it forwards; we connect to 127.0.0.1:P, else [::1]:P, and answer SOCK_OK
 *            or ERROR
 *   proxy    allowlist mode: we listen on 127.0.0.1:proxy_port from SETUP on; each accepted
 *            connection becomes a session with a guest-allocated id, announced with SOCK_OPEN
 *            (kind DBX_SOCK_PROXY); the host answers SOCK_OK (relay) or ERROR (we close it)
 * Data moves as SOCK_DATA both ways under the exec streams' credit scheme (DBX_WINDOW per
 * direction, CREDIT stream DBX_STREAM_SOCK).  An empty SOCK_DATA is EOF: we shutdown(SHUT_WR)
 * once the bytes before it are written.  Both directions at EOF, or a failed read or write,
 * ends the session with SOCK_CLOSE; a protocol violation ends only that session, with ERROR.
 * Every fd is non-blocking and only polled while it may move data, so one stuck connection
 * never holds up the others or the exec sessions. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define SOCK_READS 8    /* reads per connection per wakeup: the others get their turn */
#define SOCK_ACCEPTS 64 /* accepts per wakeup */
#define SOCK_ID_MASK (~DBX_SESSION_GUEST)

/* ---- the table -------------------------------------------------------------------------- */

struct sock_sess *sock_find(struct agent *a, uint32_t id) {
    for (size_t i = 0; i < a->nsocks; i++)
        if (!a->socks[i]->dead && a->socks[i]->id == id) return a->socks[i];
    return NULL;
}

static size_t sock_count(struct agent *a) {
    size_t n = 0;
    for (size_t i = 0; i < a->nsocks; i++)
        n += !a->socks[i]->dead;
    return n;
}

static struct sock_sess *sock_new(struct agent *a, uint32_t id, uint8_t kind, uint16_t port,
                                  int fd) {
    struct sock_sess *k = dbx_xcalloc(1, sizeof(*k));
    *k = (struct sock_sess){.id = id, .kind = kind, .port = port, .fd = fd, .credit = DBX_WINDOW};
    if (a->nsocks == a->cap_socks) {
        a->cap_socks = a->cap_socks ? 2 * a->cap_socks : 16;
        a->socks = dbx_xrealloc(a->socks, a->cap_socks * sizeof(*a->socks));
    }
    a->socks[a->nsocks++] = k;
    return k;
}

static void sock_close_fd(struct sock_sess *k) {
    if (k->fd >= 0) close(k->fd);
    k->fd = -1;
    dbx_buf_free(&k->in);
    k->dead = true;
}

void sock_sweep(struct agent *a) {
    size_t j = 0;
    for (size_t i = 0; i < a->nsocks; i++) {
        if (a->socks[i]->dead)
            free(a->socks[i]); /* its fd was closed when it died */
        else
            a->socks[j++] = a->socks[i];
    }
    a->nsocks = j;
}

void sock_abort(struct agent *a, struct sock_sess *k, const char *msg) {
    if (msg) agent_send_error(a, k->id, DBX_ERR_FAILED, msg);
    sock_close_fd(k);
}

/* The connection is over (both directions done, or it failed): SOCK_CLOSE is the last frame. */
static void sock_end(struct agent *a, struct sock_sess *k) {
    agent_send(a, DBX_MSG_SOCK_CLOSE, k->id, NULL, 0);
    sock_close_fd(k);
}

static void sock_check_done(struct agent *a, struct sock_sess *k) {
    if (!k->dead && k->rd_eof && k->wr_shut) sock_end(a, k);
}

/* A guest id not in use by any live session: DBX_SESSION_GUEST | n, n = 1..2^31-1, in turn. */
static uint32_t sock_alloc_id(struct agent *a) {
    for (;;) {
        a->sock_next = (a->sock_next & SOCK_ID_MASK) + 1;
        if ((a->sock_next & SOCK_ID_MASK) == 0) a->sock_next = 1;
        uint32_t id = DBX_SESSION_GUEST | a->sock_next;
        if (!sock_find(a, id)) /* at most DBX_MAX_SOCK_SESSIONS are live: this ends */
            return id;
    }
}

static void set_nodelay(int fd) {
    int one = 1;
    /* relayed bytes already come in chunks; Nagle would only add latency to small replies */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- moving data ------------------------------------------------------------------------ */

static void sock_credit_back(struct agent *a, struct sock_sess *k, size_t n) {
    if (n == 0) return;
    uint8_t p[5];
    k->in_pending -= (uint32_t)n;
    agent_send(a, DBX_MSG_CREDIT, k->id, p, dbx_enc_credit(p, DBX_STREAM_SOCK, (uint32_t)n));
}

/* Host -> connection: write what the socket takes now; after EOF, half-close. */
static void sock_write(struct agent *a, struct sock_sess *k) {
    if (k->dead || k->state == SOCK_CONNECTING) return;
    while (dbx_buf_avail(&k->in) > 0) {
        ssize_t n = send(k->fd, dbx_buf_head(&k->in), dbx_buf_avail(&k->in), MSG_NOSIGNAL);
        if (n > 0) {
            dbx_buf_consume(&k->in, (size_t)n);
            sock_credit_back(a, k, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        return sock_end(a, k); /* EPIPE, ECONNRESET: the peer is gone */
    }
    if (k->in_eof && !k->wr_shut) {
        k->wr_shut = true;
        dbx_buf_free(&k->in);
        if (shutdown(k->fd, SHUT_WR) < 0 && errno != ENOTCONN) return sock_end(a, k);
        sock_check_done(a, k);
    }
}

/* Connection -> host, while the host has credit and the queue to it has room. */
static void sock_read(struct agent *a, struct sock_sess *k) {
    static uint8_t buf[DBX_DATA_CHUNK];
    for (int i = 0; i < SOCK_READS; i++) {
        if (k->dead || k->rd_eof || k->credit == 0 || dbx_buf_avail(&a->out) >= INIT_OUT_HIGH)
            return;
        size_t want = k->credit < sizeof(buf) ? k->credit : sizeof(buf);
        ssize_t n = recv(k->fd, buf, want, 0);
        if (n > 0) {
            agent_send(a, DBX_MSG_SOCK_DATA, k->id, buf, (size_t)n);
            k->credit -= (uint32_t)n;
            if ((size_t)n < want) return;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n < 0) return sock_end(a, k); /* ECONNRESET and the like */
        agent_send(a, DBX_MSG_SOCK_DATA, k->id, NULL, 0);
        k->rd_eof = true;
        return sock_check_done(a, k);
    }
}

/* ---- host-opened sessions (forwarded ports) --------------------------------------------- */

/* "connection refused on port 3000": strerror's words, lower case, as the host prints them. */
static void sock_refuse(struct agent *a, struct sock_sess *k, int e) {
    _cleanup_free_ char *msg = dbx_xasprintf("%s on port %u", strerror(e), k->port);
    if (msg[0] >= 'A' && msg[0] <= 'Z') msg[0] = (char)(msg[0] - 'A' + 'a');
    sock_abort(a, k, msg);
}

static void sock_connected(struct agent *a, struct sock_sess *k) {
    k->state = SOCK_RELAY;
    set_nodelay(k->fd);
    agent_send(a, DBX_MSG_SOCK_OK, k->id, NULL, 0);
    sock_write(a, k); /* bytes the host sent ahead of our SOCK_OK */
}

static void sock_connect(struct agent *a, struct sock_sess *k);

/* A forward tries 127.0.0.1, then [::1] when that refused: a server told to listen on ::1, or
 * on "localhost" where the image's own /etc/hosts gives it ::1 first (Node since 17 and Vite's
 * dev server take the resolver's first answer), is reached on [::1] only.  The first error is
 * what the host hears when neither answers. */
static void sock_failed(struct agent *a, struct sock_sess *k, int e) {
    if (k->v6) return sock_refuse(a, k, ECONNREFUSED);
    if (e != ECONNREFUSED) return sock_refuse(a, k, e);
    close(k->fd);
    k->fd = -1;
    k->v6 = true;
    sock_connect(a, k);
}

static void sock_connect_done(struct agent *a, struct sock_sess *k) {
    int e = 0;
    socklen_t len = sizeof(e);
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0) e = errno;
    if (e == EINPROGRESS || e == EINTR) return;
    if (e) return sock_failed(a, k, e);
    sock_connected(a, k);
}

static void sock_connect(struct agent *a, struct sock_sess *k) {
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(k->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in6 sa6 = {
        .sin6_family = AF_INET6, .sin6_port = htons(k->port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    k->fd = socket(k->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* no IPv6 in this kernel: the box has no [::1] either */
    if (k->fd < 0) return k->v6 ? sock_refuse(a, k, ECONNREFUSED) : sock_refuse(a, k, errno);
    int r = k->v6 ? connect(k->fd, (struct sockaddr *)&sa6, sizeof(sa6))
                  : connect(k->fd, (struct sockaddr *)&sa, sizeof(sa));
    if (r == 0) return sock_connected(a, k);
    if (errno != EINPROGRESS && errno != EINTR) return sock_failed(a, k, errno);
    k->state = SOCK_CONNECTING; /* POLLOUT says when */
}

void sock_on_open(struct agent *a, uint32_t id, const uint8_t *p, uint32_t n) {
    uint8_t kind;
    uint16_t port;
    if (id & DBX_SESSION_GUEST)
        return agent_send_error(a, id, DBX_ERR_FAILED, "socket session id in the guest's range");
    if (a->setup != SETUP_DONE)
        return agent_send_error(a, id, DBX_ERR_FAILED, "socket before setup");
    if (dbx_dec_sock_open(p, n, &kind, &port) < 0)
        return agent_send_error(a, id, DBX_ERR_FAILED, "malformed sock-open frame");
    if (kind != DBX_SOCK_FORWARD)
        return agent_send_error(a, id, DBX_ERR_FAILED, "the host may only open forward sockets");
    if (sock_count(a) >= DBX_MAX_SOCK_SESSIONS) {
        _cleanup_free_ char *m =
            dbx_xasprintf("too many socket sessions (at most %u)", DBX_MAX_SOCK_SESSIONS);
        return agent_send_error(a, id, DBX_ERR_FAILED, m);
    }
    sock_connect(a, sock_new(a, id, kind, port, -1));
}

/* ---- guest-opened sessions (the proxy listener) ----------------------------------------- */

int sock_listen(struct agent *a, uint16_t port, dbx_error **err) {
    _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return dbx_error_set(err, errno, "proxy listener: socket");
    /* SO_REUSEADDR only lets us bind over old TIME_WAIT connections: Linux refuses any other
     * bind to a port in LISTEN state.  No SO_REUSEPORT, which would let a box command running
     * as uid 0 bind the same port and take half the connections. */
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return dbx_error_set(err, errno, "proxy listener: bind 127.0.0.1:%u", port);
    if (listen(fd, SOMAXCONN) < 0)
        return dbx_error_set(err, errno, "proxy listener: listen on 127.0.0.1:%u", port);
    if (a->proxy_fd >= 0) close(a->proxy_fd);
    a->proxy_fd = TAKE_FD(fd);
    a->proxy_port = port;
    return 0;
}

static void sock_accept(struct agent *a) {
    for (int i = 0; i < SOCK_ACCEPTS; i++) {
        int fd = accept4(a->proxy_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            /* EAGAIN: drained; ECONNABORTED and the like: that client is gone; EMFILE: the
             * connection stays queued and POLLIN comes back when sessions end */
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) init_log("proxy listener: accept: %s", strerror(errno));
            return;
        }
        if (sock_count(a) >= DBX_MAX_SOCK_SESSIONS) {
            close(fd); /* refused: the client sees the connection close at once */
            continue;
        }
        set_nodelay(fd);
        struct sock_sess *k = sock_new(a, sock_alloc_id(a), DBX_SOCK_PROXY, a->proxy_port, fd);
        k->state = SOCK_WAIT_OK;
        uint8_t p[3];
        agent_send(a, DBX_MSG_SOCK_OPEN, k->id, p, dbx_enc_sock_open(p, k->kind, k->port));
    }
}

/* ---- frames on a live session ----------------------------------------------------------- */

static void on_sock_data(struct agent *a, struct sock_sess *k, const uint8_t *p, uint32_t n) {
    if (k->in_eof) return sock_abort(a, k, "socket data after end of stream");
    if (n == 0) {
        k->in_eof = true;
        return sock_write(a, k);
    }
    if ((uint64_t)k->in_pending + n > DBX_WINDOW)
        return sock_abort(a, k, "socket data exceeds the flow-control window");
    k->in_pending += n;
    dbx_buf_put(&k->in, p, n);
    sock_write(a, k); /* most writes complete at once: no poll round trip */
}

static void on_sock_credit(struct agent *a, struct sock_sess *k, const uint8_t *p, uint32_t n) {
    uint8_t st;
    uint32_t bytes;
    if (dbx_dec_credit(p, n, &st, &bytes) < 0 || st != DBX_STREAM_SOCK)
        return sock_abort(a, k, "malformed credit frame");
    uint64_t c = (uint64_t)k->credit + bytes;
    k->credit = c > DBX_WINDOW ? DBX_WINDOW : (uint32_t)c; /* a generous host is clamped */
}

static void on_sock_ok(struct agent *a, struct sock_sess *k, const uint8_t *p, uint32_t n) {
    if (k->state != SOCK_WAIT_OK || n != 0) return sock_abort(a, k, "unexpected sock-ok frame");
    k->state = SOCK_RELAY;
    sock_write(a, k);
}

/* SOCK_CLOSE, or ERROR (the host refused our SOCK_OPEN or gave up): close now, say nothing. */
static void on_sock_close(struct agent *a, struct sock_sess *k, const uint8_t *p, uint32_t n) {
    sock_close_fd(k);
}

typedef void (*sock_fn)(struct agent *, struct sock_sess *, const uint8_t *, uint32_t);
static const sock_fn sock_handlers[DBX_MSG_MAX_] = {
    [DBX_MSG_SOCK_DATA] = on_sock_data, [DBX_MSG_CREDIT] = on_sock_credit,
    [DBX_MSG_SOCK_OK] = on_sock_ok,     [DBX_MSG_SOCK_CLOSE] = on_sock_close,
    [DBX_MSG_ERROR] = on_sock_close,
};

void sock_on_frame(struct agent *a, struct sock_sess *k, uint8_t type, const uint8_t *p,
                   uint32_t n) {
    if (type < DBX_MSG_MAX_ && sock_handlers[type]) return sock_handlers[type](a, k, p, n);
    _cleanup_free_ char *m =
        dbx_xasprintf("unexpected %s frame on a socket session", dbx_msg_name(type));
    sock_abort(a, k, m);
}

/* ---- polling ---------------------------------------------------------------------------- */

void sock_poll_build(struct agent *a, struct pollset *ps, bool out_ok) {
    /* Over the cap the listener still accepts, to refuse at once instead of leaving clients
     * hanging in the backlog. */
    if (a->proxy_fd >= 0) pollset_add(ps, a->proxy_fd, POLLIN, NULL, ROLE_LISTEN);
    for (size_t i = 0; i < a->nsocks; i++) {
        struct sock_sess *k = a->socks[i];
        if (k->dead) continue;
        short ev = 0;
        if (k->state == SOCK_CONNECTING)
            ev = POLLOUT;
        else if (dbx_buf_avail(&k->in) > 0)
            ev = POLLOUT;
        if (k->state == SOCK_RELAY && !k->rd_eof && k->credit > 0 && out_ok) ev |= POLLIN;
        if (ev) pollset_add(ps, k->fd, ev, k, ROLE_SOCK);
    }
}

void sock_events(struct agent *a, const struct pollfd *pf, const struct pollref *r) {
    if (!pf->revents) return;
    if (r->role == ROLE_LISTEN) return sock_accept(a);
    struct sock_sess *k = r->obj;
    if (k->dead) return;
    bool ready = pf->revents & (POLLERR | POLLHUP | POLLNVAL);
    if (k->state == SOCK_CONNECTING) return sock_connect_done(a, k);
    if ((pf->events & POLLOUT) && (ready || (pf->revents & POLLOUT))) sock_write(a, k);
    if (!k->dead && (pf->events & POLLIN) && (ready || (pf->revents & POLLIN))) sock_read(a, k);
}

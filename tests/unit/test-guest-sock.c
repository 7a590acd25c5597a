/* tests/unit/test-guest-sock.c: socket sessions and network setup of the real static guest
 * init, without a VM.
 *
 * The test enters a network namespace of its own (unshare; as an ordinary user inside a user
 * namespace too), so every connection stays on that namespace's loopback, then runs
 * build/devbox-init (next to the tests' directory, or $DEVBOX_TEST_INIT) in its --serve-fd
 * mode on one end of a socketpair and plays the host on the other: HELLO, SETUP with a plan,
 * READY, then socket sessions.  A TCP client of the proxy listener, or a test server the init
 * connects to for a forwarded port, is the guest-side peer.  Checked: loopback brought up,
 * the proxy listener and its port kept from others, SOCK_OPEN/SOCK_OK/SOCK_DATA/SOCK_CLOSE
 * both ways with EOF and credit flow control (several MiB, windows exhausted on purpose),
 * ERROR for a refused forward, 200 concurrent sessions, the 512-session cap, malformed frames
 * ending only their session; and with DEVBOX_TEST_NET=1 and a veth named eth0, the open mode's
 * address, link and default route, resolv.conf replacing a symlink, the apt proxy file; and
 * SETUP refusing a box user's capability mask the kernel does not know.
 * Without namespaces or the init binary every test skips with a message. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/common.h"
#include "common/plan.h"
#include "common/protocol.h"

static char g_init[PATH_MAX];     /* the devbox-init binary */
static const char *g_skip = NULL; /* why every test skips, or NULL */

/* ---- the host side of the agent channel ------------------------------------------------- */

struct host {
    pid_t pid;
    int fd;
    struct dbx_reader rd;
    char etc[64]; /* the init's DEVBOX_TEST_ETC */
};

struct frame {
    uint8_t type;
    uint32_t session;
    uint32_t len;
    uint8_t *p;
};

static void frame_clear(struct frame *f) {
    free(f->p);
    *f = (struct frame){0};
}

static void host_send(struct host *h, uint8_t type, uint32_t sid, const void *p, size_t n) {
    struct dbx_buf b = {0};
    dbx_frame_put(&b, type, sid, p, n);
    assert_int_equal(dbx_write_all(h->fd, b.data, b.len), 0);
    dbx_buf_free(&b);
}

static void host_send_raw(struct host *h, const void *p, size_t n) {
    assert_int_equal(dbx_write_all(h->fd, p, n), 0);
}

/* The next frame within ms; false on timeout.  A bad header from the init fails the test. */
static bool host_next(struct host *h, struct frame *f, int ms) {
    uint64_t end = dbx_now_ms() + (uint64_t)ms;
    for (;;) {
        struct dbx_frame_hdr hdr;
        const uint8_t *p = NULL;
        dbx_error *err = NULL;
        enum dbx_read_result r = dbx_reader_next(&h->rd, &hdr, &p, &err);
        if (r == DBX_READ_BAD) fail_msg("bad frame from the init: %s", err->msg);
        if (r == DBX_READ_FRAME) {
            *f = (struct frame){.type = hdr.type,
                                .session = hdr.session,
                                .len = hdr.len,
                                .p = dbx_xmalloc(hdr.len + 1)};
            if (hdr.len) memcpy(f->p, p, hdr.len);
            return true;
        }
        uint64_t now = dbx_now_ms();
        struct pollfd pf = {.fd = h->fd, .events = POLLIN};
        int n = poll(&pf, 1, now >= end ? 0 : (int)(end - now));
        if (n == 0) return false;
        uint8_t buf[65536];
        ssize_t k = read(h->fd, buf, sizeof(buf));
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0)
            fail_msg("the init closed the agent channel (%s)", k < 0 ? strerror(errno) : "EOF");
        dbx_reader_feed(&h->rd, buf, (size_t)k);
    }
}

/* The next frame, which must be of this type (and session, unless sid is UINT32_MAX). */
static void host_expect(struct host *h, uint8_t type, uint32_t sid, struct frame *f) {
    if (!host_next(h, f, 5000)) fail_msg("no %s frame within 5 s", dbx_msg_name(type));
    if (f->type != type || (sid != UINT32_MAX && f->session != sid)) {
        uint32_t code;
        char *msg = NULL;
        if (f->type == DBX_MSG_ERROR && dbx_error_msg_decode(f->p, f->len, &code, &msg) == 0)
            fail_msg("expected %s on %x, got error on %x: %s", dbx_msg_name(type), sid, f->session,
                     msg);
        fail_msg("expected %s on %x, got %s on %x", dbx_msg_name(type), sid, dbx_msg_name(f->type),
                 f->session);
    }
}

/* An ERROR frame's message (the frame must be one). */
static char *error_text(const struct frame *f) {
    uint32_t code;
    char *msg = NULL;
    assert_int_equal(f->type, DBX_MSG_ERROR);
    assert_int_equal(dbx_error_msg_decode(f->p, f->len, &code, &msg), 0);
    assert_int_equal(code, DBX_ERR_FAILED);
    return msg;
}

static void host_start(struct host *h, const char *const *extra_env) {
    *h = (struct host){.pid = -1, .fd = -1};
    snprintf(h->etc, sizeof(h->etc), "/tmp/dbx-sock-etc.XXXXXX");
    assert_non_null(mkdtemp(h->etc));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    h->pid = fork();
    assert_true(h->pid >= 0);
    if (h->pid == 0) {
        int fd = dup(sv[1]); /* without close-on-exec */
        char fdstr[16], etc[96];
        snprintf(fdstr, sizeof(fdstr), "%d", fd);
        snprintf(etc, sizeof(etc), "DEVBOX_TEST_ETC=%s", h->etc);
        const char *envp[8] = {"PATH=/usr/bin:/bin", etc};
        size_t n = 2;
        for (size_t i = 0; extra_env && extra_env[i] && n < 7; i++)
            envp[n++] = extra_env[i];
        execve(g_init, (char *[]){g_init, "--serve-fd", fdstr, NULL}, (char **)envp);
        _exit(127);
    }
    close(sv[1]);
    h->fd = sv[0];
    struct frame f = {0};
    host_expect(h, DBX_MSG_HELLO, 0, &f);
    frame_clear(&f);
}

static void rm_rf(const char *dir) {
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/rm", "rm", "-rf", dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
}

/* EOF on the channel: the init kills its sessions and exits 0. */
static void host_stop(struct host *h) {
    if (h->fd >= 0) close(h->fd);
    int st = 0;
    for (int i = 0; i < 500 && waitpid(h->pid, &st, WNOHANG) == 0; i++)
        usleep(10000);
    if (waitpid(h->pid, &st, WNOHANG) == 0) {
        kill(h->pid, SIGKILL);
        waitpid(h->pid, &st, 0);
        fail_msg("the init did not exit on EOF");
    }
    dbx_reader_free(&h->rd);
    rm_rf(h->etc);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void plan_set_net(struct dbx_plan *p, uint8_t mode, uint16_t port, const char *addr,
                         const char *gw, const char *dns) {
    dbx_plan_permissive(p);
    p->net_mode = mode;
    p->proxy_port = port;
    free(p->net_addr);
    free(p->net_gw);
    free(p->net_dns);
    p->net_addr = dbx_xstrdup(addr);
    p->net_gw = dbx_xstrdup(gw);
    p->net_dns = dbx_xstrdup(dns);
}

/* SETUP with this network; the answer (READY or ERROR) in *f. */
static void host_setup(struct host *h, uint8_t mode, uint16_t port, const char *addr,
                       const char *gw, const char *dns, struct frame *f) {
    struct dbx_setup su = {
        .ws_tag = "", .ws_path = "/", .uid = getuid(), .gid = getgid(), .hostname = ""};
    plan_set_net(&su.plan, mode, port, addr, gw, dns);
    struct dbx_buf b = {0};
    dbx_setup_encode(&su, &b);
    dbx_plan_free(&su.plan);
    host_send(h, DBX_MSG_SETUP, 0, b.data, b.len);
    dbx_buf_free(&b);
    assert_true(host_next(h, f, 5000));
}

static void host_setup_ok(struct host *h, uint8_t mode, uint16_t port) {
    struct frame f = {0};
    host_setup(h, mode, port, "", "", "", &f);
    if (f.type == DBX_MSG_ERROR) fail_msg("setup: %s", error_text(&f));
    assert_int_equal(f.type, DBX_MSG_READY);
    frame_clear(&f);
}

static void host_sock_open(struct host *h, uint32_t sid, uint8_t kind, uint16_t port) {
    uint8_t p[3];
    host_send(h, DBX_MSG_SOCK_OPEN, sid, p, dbx_enc_sock_open(p, kind, port));
}

static void host_credit(struct host *h, uint32_t sid, uint8_t stream, uint32_t n) {
    uint8_t p[5];
    host_send(h, DBX_MSG_CREDIT, sid, p, dbx_enc_credit(p, stream, n));
}

/* ---- plain sockets on the namespace's loopback ------------------------------------------ */

static int tcp_listen(uint16_t *ret_port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 1024), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *ret_port = ntohs(sa.sin_port);
    return fd;
}

/* A listener on [::1] only (a server told to listen on "localhost" where ::1 comes first), or
 * -1 when this kernel has no IPv6 loopback. */
static int tcp6_listen(uint16_t *ret_port) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *ret_port = ntohs(sa.sin6_port);
    return fd;
}

static int tcp_connect(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        fail_msg("connect 127.0.0.1:%u: %s", port, strerror(errno));
    assert_int_equal(dbx_set_nonblock(fd, true), 0);
    return fd;
}

/* A port nothing listens on: bound, never listening, closed. */
static uint16_t closed_port(void) {
    uint16_t port;
    int fd = tcp_listen(&port);
    close(fd);
    return port;
}

/* ---- relaying: one guest-side TCP peer and the host end of its session ------------------- */

static uint8_t pattern(size_t i, uint8_t seed) {
    return (uint8_t)(i * 31u + (i >> 9) + seed);
}

struct rel {
    uint32_t id;
    int cfd; /* the guest-side TCP peer */
    uint8_t seed;
    size_t c_total, c_sent; /* peer -> host */
    size_t h_got;
    size_t h_total, h_sent; /* host -> peer */
    size_t c_got;
    uint32_t h_credit;     /* what the host may still send */
    uint32_t h_uncredited; /* received by the host, not yet credited back */
    bool c_shut, h_eof_sent, h_got_eof, c_got_eof, closed;
    size_t max_uncredited;
};

static void rel_init(struct rel *r, uint32_t id, int cfd, size_t c_total, size_t h_total,
                     uint8_t seed) {
    *r = (struct rel){.id = id,
                      .cfd = cfd,
                      .c_total = c_total,
                      .h_total = h_total,
                      .seed = seed,
                      .h_credit = DBX_WINDOW};
}

static struct rel *rel_find(struct rel *v, size_t n, uint32_t id) {
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id) return &v[i];
    return NULL;
}

/* Host side: data, EOF, credit, close from the init. hold: return credit only once the whole
 * window is used (so the init must stop reading its socket and wait). */
static void rel_frame(struct host *h, struct rel *r, const struct frame *f, bool hold) {
    if (f->type == DBX_MSG_SOCK_DATA) {
        assert_false(r->h_got_eof);
        if (f->len == 0) {
            r->h_got_eof = true;
            assert_int_equal(r->h_got, r->c_total);
        } else {
            for (uint32_t i = 0; i < f->len; i++)
                if (f->p[i] != pattern(r->h_got + i, r->seed))
                    fail_msg("session %x: byte %zu differs", r->id, r->h_got + i);
            r->h_got += f->len;
            r->h_uncredited += f->len;
            assert_true(f->len <= DBX_DATA_CHUNK);
            /* the init never sends more than the window */
            assert_true(r->h_uncredited <= DBX_WINDOW);
            if (r->h_uncredited > r->max_uncredited) r->max_uncredited = r->h_uncredited;
        }
        if (r->h_uncredited && (!hold || r->h_uncredited == DBX_WINDOW || r->h_got == r->c_total)) {
            host_credit(h, r->id, DBX_STREAM_SOCK, r->h_uncredited);
            r->h_uncredited = 0;
        }
    } else if (f->type == DBX_MSG_CREDIT) {
        uint8_t st;
        uint32_t n;
        assert_int_equal(dbx_dec_credit(f->p, f->len, &st, &n), 0);
        assert_int_equal(st, DBX_STREAM_SOCK);
        r->h_credit += n;
        assert_true(r->h_credit <= DBX_WINDOW);
    } else if (f->type == DBX_MSG_SOCK_CLOSE) {
        assert_true(r->h_got_eof && r->h_eof_sent);
        r->closed = true;
    } else if (f->type == DBX_MSG_ERROR) {
        fail_msg("session %x: error: %s", r->id, error_text(f));
    } else {
        fail_msg("session %x: unexpected %s", r->id, dbx_msg_name(f->type));
    }
}

/* Host -> peer: send while credit lasts, then EOF. */
static void rel_host_send(struct host *h, struct rel *r) {
    static uint8_t buf[DBX_DATA_CHUNK];
    while (r->h_sent < r->h_total && r->h_credit > 0) {
        size_t n = r->h_total - r->h_sent;
        if (n > sizeof(buf)) n = sizeof(buf);
        if (n > r->h_credit) n = r->h_credit;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(r->h_sent + i, (uint8_t)(r->seed ^ 0x55));
        host_send(h, DBX_MSG_SOCK_DATA, r->id, buf, n);
        r->h_sent += n;
        r->h_credit -= (uint32_t)n;
    }
    if (r->h_sent == r->h_total && !r->h_eof_sent) {
        host_send(h, DBX_MSG_SOCK_DATA, r->id, NULL, 0);
        r->h_eof_sent = true;
    }
}

static void rel_peer_io(struct rel *r, short revents) {
    uint8_t buf[65536];
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && !r->c_got_eof) {
        ssize_t n = read(r->cfd, buf, sizeof(buf));
        if (n == 0) {
            r->c_got_eof = true;
            assert_int_equal(r->c_got, r->h_total);
        } else if (n > 0) {
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] != pattern(r->c_got + (size_t)i, (uint8_t)(r->seed ^ 0x55)))
                    fail_msg("session %x: peer byte %zu differs", r->id, r->c_got + (size_t)i);
            r->c_got += (size_t)n;
        } else if (errno != EAGAIN) {
            fail_msg("session %x: peer read: %s", r->id, strerror(errno));
        }
    }
    if ((revents & POLLOUT) && r->c_sent < r->c_total) {
        size_t n = r->c_total - r->c_sent;
        if (n > sizeof(buf)) n = sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(r->c_sent + i, r->seed);
        ssize_t k = write(r->cfd, buf, n);
        if (k > 0)
            r->c_sent += (size_t)k;
        else if (errno != EAGAIN)
            fail_msg("session %x: peer write: %s", r->id, strerror(errno));
    }
    if (r->c_sent == r->c_total && !r->c_shut) {
        assert_int_equal(shutdown(r->cfd, SHUT_WR), 0);
        r->c_shut = true;
    }
}

/* Move everything both ways until every session is closed (or ms pass). */
static void rel_pump(struct host *h, struct rel *v, size_t n, bool hold, int ms) {
    uint64_t end = dbx_now_ms() + (uint64_t)ms;
    struct pollfd *pf = dbx_xcalloc(n + 1, sizeof(*pf));
    for (;;) {
        size_t open = 0;
        for (size_t i = 0; i < n; i++) {
            rel_host_send(h, &v[i]);
            open += !v[i].closed || !v[i].c_got_eof;
        }
        if (open == 0) break;
        if (dbx_now_ms() > end) {
            for (size_t i = 0; i < n; i++)
                if (!v[i].closed)
                    fail_msg("session %x stuck: peer sent %zu/%zu got %zu/%zu, host sent %zu/%zu "
                             "got %zu credit %u eof %d%d%d%d",
                             v[i].id, v[i].c_sent, v[i].c_total, v[i].c_got, v[i].h_total,
                             v[i].h_sent, v[i].h_total, v[i].h_got, v[i].h_credit, v[i].c_shut,
                             v[i].h_eof_sent, v[i].h_got_eof, v[i].c_got_eof);
        }
        pf[0] = (struct pollfd){.fd = h->fd, .events = POLLIN};
        for (size_t i = 0; i < n; i++) {
            short ev = (short)((v[i].c_got_eof ? 0 : POLLIN) | (v[i].c_shut ? 0 : POLLOUT));
            pf[i + 1] = (struct pollfd){.fd = ev ? v[i].cfd : -1, .events = ev};
        }
        assert_true(poll(pf, n + 1, 100) >= 0);
        for (size_t i = 0; i < n; i++)
            if (pf[i + 1].revents) rel_peer_io(&v[i], pf[i + 1].revents);
        struct frame f = {0};
        while (host_next(h, &f, 0)) {
            struct rel *r = rel_find(v, n, f.session);
            if (!r) fail_msg("frame %s for unknown session %x", dbx_msg_name(f.type), f.session);
            rel_frame(h, r, &f, hold);
            frame_clear(&f);
        }
    }
    free(pf);
    for (size_t i = 0; i < n; i++) {
        assert_true(v[i].c_got_eof && v[i].h_got_eof);
        assert_int_equal(v[i].c_got, v[i].h_total);
        assert_int_equal(v[i].h_got, v[i].c_total);
        close(v[i].cfd);
        v[i].cfd = -1;
    }
}

/* Connect to the proxy listener and take the init's SOCK_OPEN; answer SOCK_OK. */
static uint32_t proxy_accept(struct host *h, uint16_t port, int *ret_fd) {
    *ret_fd = tcp_connect(port);
    struct frame f = {0};
    host_expect(h, DBX_MSG_SOCK_OPEN, UINT32_MAX, &f);
    uint8_t kind;
    uint16_t p;
    assert_int_equal(dbx_dec_sock_open(f.p, f.len, &kind, &p), 0);
    assert_int_equal(kind, DBX_SOCK_PROXY);
    assert_int_equal(p, port);
    uint32_t id = f.session;
    assert_true(id & DBX_SESSION_GUEST);
    frame_clear(&f);
    host_send(h, DBX_MSG_SOCK_OK, id, NULL, 0);
    return id;
}

/* SOCK_OPEN(FORWARD) to the test server: SOCK_OK and the server's side of the connection. */
static int forward_open(struct host *h, uint32_t id, int lfd, uint16_t port) {
    host_sock_open(h, id, DBX_SOCK_FORWARD, port);
    struct frame f = {0};
    host_expect(h, DBX_MSG_SOCK_OK, id, &f);
    assert_int_equal(f.len, 0);
    frame_clear(&f);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    assert_true(fd >= 0);
    return fd;
}

/* ---- tests ------------------------------------------------------------------------------ */

static bool lo_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    bool up = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
    if (fd >= 0) close(fd);
    return up;
}

static int test_setup(void **state) {
    if (g_skip) {
        print_message("skipped: %s\n", g_skip);
        skip();
    }
    return 0;
}

/* The proxy listener: SETUP binds it (and brings lo up), apt is pointed at it, no one else can
 * bind its port, and one connection relays 3 MiB one way and 2 MiB the other, with EOF in
 * both directions and the init's window exhausted on purpose. */
static void test_proxy_relay(void **state) {
    test_setup(state);
    struct host h;
    host_start(&h, NULL);
    char apt[128];
    snprintf(apt, sizeof(apt), "%s/apt", h.etc);
    assert_int_equal(mkdir(apt, 0755), 0);
    snprintf(apt, sizeof(apt), "%s/apt/apt.conf.d", h.etc);
    assert_int_equal(mkdir(apt, 0755), 0);

    /* before SETUP: no socket sessions */
    struct frame f = {0};
    host_sock_open(&h, 9, DBX_SOCK_FORWARD, 80);
    host_expect(&h, DBX_MSG_ERROR, 9, &f);
    _cleanup_free_ char *m0 = error_text(&f);
    assert_non_null(strstr(m0, "before setup"));
    frame_clear(&f);

    const uint16_t port = 3128;
    host_setup_ok(&h, DBX_NET_ALLOWLIST, port);
    assert_true(lo_up());

    _cleanup_free_ char *conf = NULL;
    snprintf(apt, sizeof(apt), "%s/apt/apt.conf.d/99devbox-proxy", h.etc);
    dbx_error *err = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, apt, 4096, &conf, NULL, &err), 0);
    assert_non_null(strstr(conf, "Acquire::http::Proxy \"http://127.0.0.1:3128\";"));
    assert_non_null(strstr(conf, "Acquire::https::Proxy \"http://127.0.0.1:3128\";"));

    /* the port is taken for good: not even SO_REUSEPORT or the wildcard address get it */
    static const uint32_t addrs[] = {INADDR_LOOPBACK, INADDR_ANY};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(addrs); i++) {
        _cleanup_close_ int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        struct sockaddr_in sa = {
            .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addrs[i])};
        assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), -1);
        assert_int_equal(errno, EADDRINUSE);
    }

    int cfd;
    uint32_t id = proxy_accept(&h, port, &cfd);
    struct rel r;
    rel_init(&r, id, cfd, 3u << 20, 2u << 20, 7);
    rel_pump(&h, &r, 1, true, 30000);
    assert_int_equal(r.max_uncredited, DBX_WINDOW); /* the init used its whole window, no more */

    /* a second connection gets a new id; the host refuses it: the client sees it closed */
    int c2;
    uint32_t id2;
    c2 = tcp_connect(port);
    host_expect(&h, DBX_MSG_SOCK_OPEN, UINT32_MAX, &f);
    id2 = f.session;
    assert_true(id2 != id && (id2 & DBX_SESSION_GUEST));
    frame_clear(&f);
    struct dbx_buf b = {0};
    dbx_error_msg_encode(&b, 125, "'example.org' is not allowed");
    host_send(&h, DBX_MSG_ERROR, id2, b.data, b.len);
    dbx_buf_free(&b);
    assert_int_equal(dbx_set_nonblock(c2, false), 0);
    char c;
    assert_true(read(c2, &c, 1) <= 0);
    close(c2);
    /* nothing more from the init about either session */
    assert_false(host_next(&h, &f, 200));
    host_stop(&h);
}

/* Forwarded ports: the init connects to a server in the guest's loopback; the data of both
 * directions arrives intact; a closed port is an ERROR naming it. */
static void test_forward(void **state) {
    test_setup(state);
    struct host h;
    host_start(&h, NULL);
    host_setup_ok(&h, DBX_NET_NONE, 0);

    uint16_t sport;
    int lfd = tcp_listen(&sport);
    struct rel r[2];
    rel_init(&r[0], 1, forward_open(&h, 1, lfd, sport), 1u << 20, (3u << 20) / 2, 1);
    rel_init(&r[1], 2, forward_open(&h, 2, lfd, sport), 0, 100, 2); /* the peer sends nothing */
    rel_pump(&h, r, 2, false, 30000);

    /* a server on [::1] only: 127.0.0.1 refuses, the init connects to [::1] */
    uint16_t port6;
    int lfd6 = tcp6_listen(&port6);
    if (lfd6 >= 0) {
        struct rel r6;
        rel_init(&r6, 5, forward_open(&h, 5, lfd6, port6), 1000, 2000, 5);
        rel_pump(&h, &r6, 1, false, 30000);
        close(lfd6);
    } else {
        print_message("no IPv6 loopback here: the [::1] forward is not tried\n");
    }

    /* SETUP gave the box's /etc/hosts localhost (its hostname was empty: no line of its own) */
    char hosts[96];
    snprintf(hosts, sizeof(hosts), "%s/hosts", h.etc);
    _cleanup_free_ char *htext = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, hosts, 4096, &htext, NULL, NULL), 0);
    assert_non_null(strstr(htext, "\n127.0.0.1\tlocalhost\n::1\tip6-localhost "));
    assert_null(strstr(htext, "127.0.1.1"));

    uint16_t cport = closed_port();
    struct frame f = {0};
    host_sock_open(&h, 3, DBX_SOCK_FORWARD, cport);
    host_expect(&h, DBX_MSG_ERROR, 3, &f);
    _cleanup_free_ char *msg = error_text(&f);
    _cleanup_free_ char *want = dbx_xasprintf("connection refused on port %u", cport);
    assert_string_equal(msg, want);
    frame_clear(&f);

    /* the host may also just close a session, and the init tells nobody */
    int sfd = forward_open(&h, 4, lfd, sport);
    host_send(&h, DBX_MSG_SOCK_CLOSE, 4, NULL, 0);
    assert_int_equal(dbx_set_nonblock(sfd, false), 0);
    char c;
    assert_true(read(sfd, &c, 1) <= 0);
    close(sfd);
    assert_false(host_next(&h, &f, 200));
    close(lfd);
    host_stop(&h);
}

/* 200 sessions at once, half through the proxy and half forwarded, each 64 KiB + x each way. */
static void test_many(void **state) {
    test_setup(state);
    struct host h;
    host_start(&h, NULL);
    const uint16_t port = 3129;
    host_setup_ok(&h, DBX_NET_ALLOWLIST, port);
    uint16_t sport;
    int lfd = tcp_listen(&sport);
    enum { N = 200 };
    struct rel *r = dbx_xcalloc(N, sizeof(*r));
    for (size_t i = 0; i < N; i++) {
        int fd;
        uint32_t id = i % 2 ? proxy_accept(&h, port, &fd) : (uint32_t)(100 + i);
        if (i % 2 == 0) fd = forward_open(&h, id, lfd, sport);
        assert_null(rel_find(r, i, id));
        rel_init(&r[i], id, fd, 65536 + i * 13, 65536 + i * 7, (uint8_t)i);
    }
    rel_pump(&h, r, N, false, 60000);
    free(r);
    close(lfd);
    host_stop(&h);
}

/* At most DBX_MAX_SOCK_SESSIONS: the proxy closes further clients at once, the host's further
 * SOCK_OPENs get ERROR; one ends, a new one fits. */
static void test_cap(void **state) {
    test_setup(state);
    struct host h;
    host_start(&h, NULL);
    const uint16_t port = 3130;
    host_setup_ok(&h, DBX_NET_ALLOWLIST, port);
    enum { N = DBX_MAX_SOCK_SESSIONS };
    int *fds = dbx_xcalloc(N, sizeof(int));
    uint32_t *ids = dbx_xcalloc(N, sizeof(uint32_t));
    for (size_t i = 0; i < N; i++)
        ids[i] = proxy_accept(&h, port, &fds[i]);
    struct frame f = {0};
    /* over the cap */
    int extra = tcp_connect(port);
    assert_int_equal(dbx_set_nonblock(extra, false), 0);
    char c;
    assert_true(read(extra, &c, 1) <= 0);
    close(extra);
    host_sock_open(&h, 7, DBX_SOCK_FORWARD, 80);
    host_expect(&h, DBX_MSG_ERROR, 7, &f);
    _cleanup_free_ char *msg = error_text(&f);
    assert_non_null(strstr(msg, "too many socket sessions"));
    frame_clear(&f);
    /* end one: room for one more */
    host_send(&h, DBX_MSG_SOCK_CLOSE, ids[0], NULL, 0);
    close(fds[0]);
    int fd;
    uint32_t id = proxy_accept(&h, port, &fd);
    for (size_t i = 1; i < N; i++)
        assert_int_not_equal(id, ids[i]);
    close(fd);
    for (size_t i = 1; i < N; i++)
        close(fds[i]);
    free(fds);
    free(ids);
    host_stop(&h);
}

/* Send su as SETUP (its plan freed) and expect an ERROR whose text contains want. */
static void setup_expect_error(struct host *h, struct dbx_setup *su, const char *what,
                               const char *want) {
    struct dbx_buf b = {0};
    dbx_setup_encode(su, &b);
    dbx_plan_free(&su->plan);
    host_send(h, DBX_MSG_SETUP, 0, b.data, b.len);
    dbx_buf_free(&b);
    struct frame f = {0};
    assert_true(host_next(h, &f, 5000));
    if (f.type != DBX_MSG_ERROR) fail_msg("SETUP with %s got %s", what, dbx_msg_name(f.type));
    _cleanup_free_ char *msg = error_text(&f);
    if (!strstr(msg, want)) fail_msg("SETUP with %s: unexpected error: %s", what, msg);
    frame_clear(&f);
}

/* SETUP refuses a box user's capability mask with bits the kernel does not know, also when
 * root's mask is DBX_CAP_ALL ("leave them alone"): nothing is set up, the answer is ERROR. */
static void test_setup_unknown_caps(void **state) {
    test_setup(state);
    struct host h;
    host_start(&h, NULL);
    struct dbx_setup su = {
        .ws_tag = "", .ws_path = "/", .uid = getuid(), .gid = getgid(), .hostname = ""};
    plan_set_net(&su.plan, DBX_NET_NONE, 0, "", "", "");
    su.plan.caps_user = UINT64_C(1) << 62;
    setup_expect_error(&h, &su, "caps_user bit 62",
                       "capabilities 0x4000000000000000 this kernel does not know");
    host_stop(&h);
}

/* SETUP tries the plan's rlimits and seccomp filter once in a throwaway child (setup_trial, a
 * CLONE_VM | CLONE_VFORK child of init): a limit the kernel refuses, or a filter that kills
 * the process, is SETUP's ERROR naming it, and the init still answers. */
static void setup_trial_error(const char *what, uint64_t nofile, const uint8_t *bpf,
                              uint32_t bpf_len, const char *want) {
    struct host h;
    host_start(&h, NULL);
    struct dbx_setup su = {
        .ws_tag = "", .ws_path = "/", .uid = getuid(), .gid = getgid(), .hostname = ""};
    plan_set_net(&su.plan, DBX_NET_NONE, 0, "", "", "");
    su.plan.nofile = nofile;
    if (bpf_len) {
        su.plan.seccomp_mode = DBX_SECCOMP_DEFAULT;
        su.plan.bpf = dbx_xmalloc((size_t)bpf_len * 8);
        memcpy(su.plan.bpf, bpf, (size_t)bpf_len * 8);
        su.plan.bpf_len = bpf_len;
    }
    setup_expect_error(&h, &su, what, want);
    struct frame f = {0};
    uint8_t token[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    host_send(&h, DBX_MSG_PING, 0, token, sizeof(token));
    host_expect(&h, DBX_MSG_PONG, 0, &f);
    frame_clear(&f);
    host_stop(&h);
}

static void test_setup_trial(void **state) {
    test_setup(state);
    /* above fs.nr_open, which no process may raise RLIMIT_NOFILE past: 2^31 is above even its
     * largest setting (2147483584) */
    setup_trial_error("nofile 2^31", UINT64_C(1) << 31, NULL, 0, "set RLIMIT_NOFILE to 2147483648");
    /* BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS: the child dies at its next syscall, its exit */
    static const uint8_t kill_all[8] = {0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80};
    setup_trial_error("a filter that kills", 0, kill_all, 1,
                      "trial of the seccomp filter: the process was killed by signal 31");
}

/* The peer of a session the init ended sees the connection closed. */
static void peer_sees_close(int fd) {
    assert_int_equal(dbx_set_nonblock(fd, false), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n > 0 || (n < 0 && errno != ECONNRESET))
        fail_msg("peer: read %zd (%s)", n, strerror(errno));
    close(fd);
}

/* Flood a session whose peer never reads, ignoring credit: once the socket buffers are full
 * the window runs out and the init ends the session.  Returns the ERROR frame. */
static void flood(struct host *h, uint32_t id, struct frame *f) {
    static uint8_t big[DBX_DATA_CHUNK];
    for (int i = 0; i < 8192; i++) {
        host_send(h, DBX_MSG_SOCK_DATA, id, big, sizeof(big));
        while (host_next(h, f, 0)) {
            if (f->type == DBX_MSG_ERROR) return;
            assert_int_equal(f->type, DBX_MSG_CREDIT);
            frame_clear(f);
        }
    }
    fail_msg("256 MiB without credit and no error");
}

struct garbage {
    bool open;       /* forward_open first */
    const char *why; /* in the ERROR message */
};
static const struct garbage garbage[] = {
    {true, "malformed credit frame"},
    {true, "unexpected sock-ok frame"},
    {true, "unexpected stdin frame on a socket session"},
    {true, "socket data after end of stream"},
    {true, "unknown frame type 99"},
    {true, "socket data exceeds the flow-control window"},
    {true, "session 106 already exists"},
    {false, "malformed sock-open frame"},
    {false, "socket session id in the guest's range"},
    {false, "the host may only open forward sockets"},
    {true, "protocol version 99"}, /* any version but DBX_PROTO_VERSION */
    {true, "byte limit"},
};

/* Send case k's bad frame(s) for session id; returns the session the ERROR must name. */
static uint32_t garbage_send(struct host *h, size_t k, uint32_t id, uint16_t sport) {
    uint8_t p[8];
    uint8_t raw[DBX_FRAME_HDR + 3];
    switch (k) {
    case 0:
        host_send(h, DBX_MSG_CREDIT, id, p, dbx_enc_credit(p, DBX_STREAM_STDOUT, 1));
        break;
    case 1:
        host_send(h, DBX_MSG_SOCK_OK, id, NULL, 0);
        break;
    case 2:
        host_send(h, DBX_MSG_STDIN, id, "x", 1);
        break;
    case 3:
        host_send(h, DBX_MSG_SOCK_DATA, id, NULL, 0);
        host_send(h, DBX_MSG_SOCK_DATA, id, "late", 4);
        break;
    case 4:
        dbx_hdr_encode(raw, 99, id, 3);
        memcpy(raw + DBX_FRAME_HDR, "abc", 3);
        host_send_raw(h, raw, sizeof(raw));
        break;
    case 6:
        host_sock_open(h, id, DBX_SOCK_FORWARD, sport);
        break;
    case 7:
        host_send(h, DBX_MSG_SOCK_OPEN, id, "\x02", 1);
        break;
    case 8:
        host_sock_open(h, DBX_SESSION_GUEST | 5, DBX_SOCK_FORWARD, sport);
        return DBX_SESSION_GUEST | 5;
    case 9:
        host_sock_open(h, id, DBX_SOCK_PROXY, sport);
        break;
    case 10:
        dbx_hdr_encode(raw, DBX_MSG_SOCK_DATA, id, 3);
        raw[0] = 99;
        memcpy(raw + DBX_FRAME_HDR, "abc", 3);
        host_send_raw(h, raw, sizeof(raw));
        break;
    case 11: {
        uint8_t *big = dbx_xcalloc(1, DBX_FRAME_HDR + DBX_FRAME_MAX + 1);
        dbx_hdr_encode(big, DBX_MSG_SOCK_DATA, id, DBX_FRAME_MAX + 1);
        host_send_raw(h, big, DBX_FRAME_HDR + DBX_FRAME_MAX + 1);
        free(big);
        break;
    }
    }
    return id;
}

/* Each kind of malformed frame ends its own session with ERROR and nothing else: a relay
 * opened before them all completes afterwards, and the connection still answers PING. */
static void test_garbage(void **state) {
    test_setup(state);
    struct host h;
    host_start(&h, NULL);
    host_setup_ok(&h, DBX_NET_NONE, 0);
    uint16_t sport;
    int lfd = tcp_listen(&sport);
    struct rel good;
    rel_init(&good, 1, forward_open(&h, 1, lfd, sport), 300000, 300000, 9);

    for (size_t k = 0; k < DBX_ARRAY_SIZE(garbage); k++) {
        uint32_t id = 100 + (uint32_t)k;
        int peer = garbage[k].open ? forward_open(&h, id, lfd, sport) : -1;
        struct frame f = {0};
        uint32_t want = id;
        if (k == 5)
            flood(&h, id, &f);
        else {
            want = garbage_send(&h, k, id, sport);
            host_expect(&h, DBX_MSG_ERROR, UINT32_MAX, &f);
        }
        _cleanup_free_ char *msg = error_text(&f);
        if (f.session != want || !strstr(msg, garbage[k].why))
            fail_msg("case %zu: error on %x: %s", k, f.session, msg);
        frame_clear(&f);
        if (peer >= 0 && k != 5)
            peer_sees_close(peer);
        else if (peer >= 0)
            close(peer);
        assert_false(host_next(&h, &f, 50)); /* nothing else about it */
    }
    uint8_t tok[8];
    struct frame f = {0};
    /* CLOCK: a short payload is an error on the connection; a good one is applied silently
     * (not at all under --serve-fd: the test machine's clock is not the init's to set) */
    host_send(&h, DBX_MSG_CLOCK, 0, tok, 3);
    host_expect(&h, DBX_MSG_ERROR, 0, &f);
    _cleanup_free_ char *clock_msg = error_text(&f);
    assert_non_null(strstr(clock_msg, "malformed clock frame"));
    frame_clear(&f);
    /* a clock that puts the guest behind: stepped at once (not here), nothing said */
    host_send(&h, DBX_MSG_CLOCK, 0, tok, dbx_enc_u64(tok, (uint64_t)INT64_MAX));
    assert_false(host_next(&h, &f, 50));
    /* one that puts it ahead (1 ns after the epoch): maybe only late, so the guest asks, with
     * its monotonic clock as the token, and steps back only on the answer (not here) */
    host_send(&h, DBX_MSG_CLOCK, 0, tok, dbx_enc_u64(tok, 1));
    host_expect(&h, DBX_MSG_CLOCK, 0, &f);
    uint64_t ask = 0;
    assert_int_equal(dbx_dec_u64(f.p, f.len, &ask), 0);
    assert_true(ask > 0);
    frame_clear(&f);
    /* an EXEC queued behind it waits for the answer, which overtakes it */
    uint8_t ans[DBX_CLOCK_ANSWER_LEN];
    host_send(&h, DBX_MSG_CLOCK, 0, ans, dbx_enc_clock(ans, 1, true, ask));
    assert_false(host_next(&h, &f, 50));
    /* an answer nobody asked for, and a malformed one: ignored, and an error */
    host_send(&h, DBX_MSG_CLOCK, 0, ans, dbx_enc_clock(ans, 1, true, ask + 1));
    assert_false(host_next(&h, &f, 50));
    host_send(&h, DBX_MSG_CLOCK, 0, ans, 12);
    host_expect(&h, DBX_MSG_ERROR, 0, &f);
    frame_clear(&f);
    host_send(&h, DBX_MSG_PING, 0, tok, dbx_enc_u64(tok, 42));
    host_expect(&h, DBX_MSG_PONG, 0, &f);
    frame_clear(&f);
    rel_pump(&h, &good, 1, false, 30000);
    close(lfd);
    host_stop(&h);
}

/* ---- open mode -------------------------------------------------------------------------- */

static int run(const char *const *argv) {
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(dbx_write_all(fd, text, strlen(text)), 0);
    close(fd);
}

static bool has_route(const char *dev, const char *gw_hex) {
    _cleanup_free_ char *text = NULL;
    if (dbx_read_file_at(AT_FDCWD, "/proc/net/route", 1 << 16, &text, NULL, NULL) < 0) return false;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char ifn[32], dst[16], gw[16];
        if (sscanf(l, "%31s %15s %15s", ifn, dst, gw) == 3 && !strcmp(ifn, dev) &&
            !strcmp(dst, "00000000") && !strcmp(gw, gw_hex))
            return true;
    }
    return false;
}

static void test_open(void **state) {
    test_setup(state);
    static const char *const env[] = {"DEVBOX_TEST_NET=1", NULL};
    struct host h;
    struct frame f = {0};

    /* no eth0: a clear setup error */
    host_start(&h, env);
    host_setup(&h, DBX_NET_OPEN, 0, "10.0.2.15/24", "10.0.2.2", "10.0.2.3", &f);
    _cleanup_free_ char *msg = error_text(&f);
    assert_non_null(strstr(msg, "network: network = open needs the interface 'eth0'"));
    frame_clear(&f);
    host_stop(&h);

    if (run((const char *const[]){"/sbin/ip", "link", "add", "eth0", "type", "veth", "peer", "name",
                                  "peer0", NULL}) != 0) {
        print_message("skipped: cannot create a veth pair (ip link add ... type veth)\n");
        skip();
    }
    host_start(&h, env);
    char path[128], target[128];
    /* resolv.conf a symlink to a file outside: replaced, the file left alone; a stale apt
     * proxy file removed */
    snprintf(target, sizeof(target), "%s/outside", h.etc);
    write_text(target, "keep\n");
    snprintf(path, sizeof(path), "%s/resolv.conf", h.etc);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/apt", h.etc);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/apt/apt.conf.d", h.etc);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/apt/apt.conf.d/99devbox-proxy", h.etc);
    write_text(path, "stale");

    host_setup(&h, DBX_NET_OPEN, 0, "10.0.2.15/24", "10.0.2.2", "10.0.2.3", &f);
    if (f.type == DBX_MSG_ERROR) fail_msg("setup: %s", error_text(&f));
    assert_int_equal(f.type, DBX_MSG_READY);
    frame_clear(&f);

    /* eth0: up, 10.0.2.15/24, default route via 10.0.2.2 */
    struct ifaddrs *ifa = NULL;
    bool found = false;
    assert_int_equal(getifaddrs(&ifa), 0);
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        if (strcmp(i->ifa_name, "eth0") || !i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        char a[INET_ADDRSTRLEN], m[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof(a));
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_netmask)->sin_addr, m, sizeof(m));
        assert_string_equal(a, "10.0.2.15");
        assert_string_equal(m, "255.255.255.0");
        assert_true(i->ifa_flags & IFF_UP);
        found = true;
    }
    freeifaddrs(ifa);
    assert_true(found);
    assert_true(has_route("eth0", "0202000A"));

    struct stat st;
    snprintf(path, sizeof(path), "%s/resolv.conf", h.etc);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    _cleanup_free_ char *resolv = NULL, *outside = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, path, 4096, &resolv, NULL, NULL), 0);
    assert_non_null(strstr(resolv, "\nnameserver 10.0.2.3\n"));
    assert_int_equal(dbx_read_file_at(AT_FDCWD, target, 4096, &outside, NULL, NULL), 0);
    assert_string_equal(outside, "keep\n");
    snprintf(path, sizeof(path), "%s/apt/apt.conf.d/99devbox-proxy", h.etc);
    assert_int_equal(access(path, F_OK), -1);
    host_stop(&h);
    run((const char *const[]){"/sbin/ip", "link", "del", "eth0", NULL});
}

/* ---- namespaces ------------------------------------------------------------------------- */

static bool write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    close(fd);
    return ok;
}

/* A network namespace of our own (in a user namespace when not root): traffic stays here. */
static const char *enter_netns(void) {
    static char why[160];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int flags = CLONE_NEWNET | (uid == 0 ? 0 : CLONE_NEWUSER);
    if (unshare(flags) < 0) {
        snprintf(why, sizeof(why), "cannot create a network namespace (unshare: %s)",
                 strerror(errno));
        return why;
    }
    if (uid != 0) {
        char map[64];
        snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
        bool ok =
            write_file("/proc/self/setgroups", "deny") && write_file("/proc/self/uid_map", map);
        snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
        if (!ok || !write_file("/proc/self/gid_map", map)) {
            snprintf(why, sizeof(why), "cannot map ids in a user namespace");
            return why;
        }
    }
    if (lo_up()) return "the new network namespace's loopback is already up";
    return NULL;
}

static const char *find_init(void) {
    const char *env = getenv("DEVBOX_TEST_INIT");
    if (env && env[0]) {
        snprintf(g_init, sizeof(g_init), "%s", env);
    } else {
        char self[PATH_MAX - 32];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0) return "cannot find the test binary";
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) *slash = '\0';
        snprintf(g_init, sizeof(g_init), "%s/../devbox-init", self);
    }
    if (access(g_init, X_OK) < 0) return "no devbox-init next to the tests (run make first)";
    return NULL;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    g_skip = find_init();
    if (!g_skip) g_skip = enter_netns();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_relay),
        cmocka_unit_test(test_forward),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_setup_unknown_caps),
        cmocka_unit_test(test_setup_trial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

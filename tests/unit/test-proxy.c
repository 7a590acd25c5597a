/* tests/unit/test-proxy.c: the egress proxy end to end.  Local servers (threads on
 * 127.0.0.1) stand in for the internet; the proxy gets one end of a socketpair per client
 * connection, as the supervisor gives it.  Test names reach the servers through resolve
 * overrides ("allowed.test:127.0.0.1"); loopback is allowed only by naming it.
 *
 * main() first moves into a new network namespace (a user namespace too when not root) so
 * that a server can listen on port 443, where the proxy checks the ClientHello; without one
 * those tests are skipped.  Set DEVBOX_PROXY_BENCH_MB to change the size of the throughput
 * measurement (default 100). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "proxy/proxy-internal.h"
#include "proxy/proxy.h"
#include "tests/unit/helpers.h"
#include "tests/unit/test-proxy-fixture.h"
#include "tests/unit/test-proxy-hello.h"

static bool have_netns;

/* ---- servers ----------------------------------------------------------------------------- */

/* SRV_UPSTREAM: a company's proxy: logs the request head, answers it with `status` and,
 * after a 200, echoes (the tunnel's far end). */
enum srv_mode { SRV_ECHO, SRV_HTTP, SRV_BULK, SRV_UPSTREAM };

struct server {
    int lfd;
    uint16_t port;
    enum srv_mode mode;
    size_t bulk;
    int status;       /* SRV_UPSTREAM's answer (0 = 200) */
    const char *auth; /* and header lines it adds to a 407, or NULL */
    pthread_t tid;
    atomic_int accepted;
    atomic_size_t received;
    pthread_mutex_t lock;
    char log[64 * 1024]; /* HTTP: every request head received, in order */
    size_t log_len;
};

static void srv_log(struct server *s, const char *p, size_t n) {
    pthread_mutex_lock(&s->lock);
    if (s->log_len + n < sizeof(s->log)) {
        memcpy(s->log + s->log_len, p, n);
        s->log_len += n;
        s->log[s->log_len] = '\0';
    }
    pthread_mutex_unlock(&s->lock);
}

static void serve_echo(struct server *s, int fd) {
    char buf[65536];
    ssize_t k;
    while ((k = read(fd, buf, sizeof(buf))) > 0) {
        s->received += (size_t)k;
        if (dbx_write_all(fd, buf, (size_t)k) < 0) break;
    }
}

static void serve_bulk(struct server *s, int fd) {
    static char buf[256 * 1024];
    size_t left = s->bulk;
    while (left > 0) {
        size_t n = left < sizeof(buf) ? left : sizeof(buf);
        if (dbx_write_all(fd, buf, n) < 0) return;
        left -= n;
    }
}

/* A tiny origin server: answers each request with its request line as the body. */
static void serve_http(struct server *s, int fd) {
    _cleanup_free_ char *buf = dbx_xmalloc(256 * 1024);
    const size_t cap = 256 * 1024;
    size_t len = 0;
    for (;;) {
        char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (!end) {
            ssize_t k = read(fd, buf + len, cap - len);
            if (k <= 0) return;
            s->received += (size_t)k;
            len += (size_t)k;
            continue;
        }
        size_t head = (size_t)(end - buf) + 4;
        srv_log(s, buf, head);
        struct proxy_http_req r = {.body = PROXY_BODY_NONE};
        char *cl = strcasestr(buf, "\r\ncontent-length: ");
        if (cl && cl < end)
            r.body = PROXY_BODY_LENGTH, r.content_length = strtoull(cl + 18, NULL, 10);
        char *te = strcasestr(buf, "\r\ntransfer-encoding: chunked");
        if (te && te < end) r.body = PROXY_BODY_CHUNKED;
        struct proxy_body b;
        proxy_body_init(&b, &r);
        size_t off = head;
        while (!b.done) {
            ssize_t k = proxy_body_scan(&b, (uint8_t *)buf + off, len - off, NULL);
            assert_true(k >= 0);
            off += (size_t)k;
            if (b.done) break;
            ssize_t n = read(fd, buf + len, cap - len);
            if (n <= 0) return;
            s->received += (size_t)n;
            len += (size_t)n;
        }
        srv_log(s, buf + head, off - head);
        char line[256];
        size_t ll = strcspn(buf, "\r");
        snprintf(line, sizeof(line), "%.*s", (int)(ll < 200 ? ll : 200), buf);
        char *resp =
            dbx_xasprintf("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(line), line);
        int w = dbx_write_all(fd, resp, strlen(resp));
        free(resp);
        if (w < 0) return;
        memmove(buf, buf + off, len - off);
        len -= off;
    }
}

static void serve_upstream(struct server *s, int fd) {
    char buf[16384];
    size_t len = 0;
    while (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0) {
        if (len + 1 >= sizeof(buf) || read(fd, buf + len, 1) != 1) return;
        len++;
    }
    srv_log(s, buf, len);
    int st = s->status ? s->status : 200;
    char *resp = st == 200  ? dbx_xstrdup("HTTP/1.1 200 Connection established\r\n\r\n")
                 : st == -1 ? dbx_xstrdup("SSH-2.0-OpenSSH_9.2\r\n\r\n") /* not HTTP */
                 : st == -2 ? memset(dbx_xcalloc(1, 20001), 'a', 20000)  /* no end */
                            : dbx_xasprintf("HTTP/1.1 %d Nope\r\n%sContent-Length: 0\r\n\r\n", st,
                                            s->auth ? s->auth : "");
    int w = dbx_write_all(fd, resp, strlen(resp));
    free(resp);
    if (w == 0 && st == 200) serve_echo(s, fd);
}

/* The server takes its connections one at a time in its own thread: one the proxy opened
 * and closed may not be counted yet when the proxy's answer arrives.  Up to 10 s for n. */
static int accepted_reach(struct server *s, int n) {
    for (int i = 0; i < 1000 && s->accepted < n; i++)
        usleep(10000);
    return s->accepted;
}

static void *server_main(void *arg) {
    struct server *s = arg;
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) return NULL;
        s->accepted++;
        if (s->mode == SRV_ECHO)
            serve_echo(s, fd);
        else if (s->mode == SRV_BULK)
            serve_bulk(s, fd);
        else if (s->mode == SRV_UPSTREAM)
            serve_upstream(s, fd);
        else
            serve_http(s, fd);
        close(fd);
    }
}

static struct server *server_start(enum srv_mode mode, uint16_t port) {
    struct server *s = dbx_xcalloc(1, sizeof(*s));
    s->mode = mode;
    pthread_mutex_init(&s->lock, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t al = sizeof(a);
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->tid, NULL, server_main, s), 0);
    return s;
}

static void server_stop(struct server *s) {
    shutdown(s->lfd, SHUT_RDWR); /* wakes accept() */
    pthread_join(s->tid, NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- the proxy and its log --------------------------------------------------------------- */

struct fixture {
    struct proxy *proxy;
    int log_fd;
};

/* A proxy with cfg (its log_fd replaced by a memfd the test reads). */
static struct fixture fixture_start_cfg(struct proxy_config cfg) {
    struct fixture f = {.log_fd = memfd_create("proxy-log", MFD_CLOEXEC)};
    assert_true(f.log_fd >= 0);
    fcntl(f.log_fd, F_SETFL, O_APPEND);
    cfg.log_fd = f.log_fd;
    dbx_error *e = NULL;
    if (proxy_start(&cfg, &f.proxy, &e) < 0) fail_msg("proxy start: %s", e->msg);
    return f;
}

static struct fixture fixture_start(char **allow, char **resolve) {
    return fixture_start_cfg((struct proxy_config){.allow = allow, .resolve = resolve});
}

static void fixture_stop(struct fixture *f) {
    proxy_stop(f->proxy);
    close(f->log_fd);
}

static char *log_text(const struct fixture *f) {
    return proxy_test_log_text(f->log_fd);
}
static void expect_log(const struct fixture *f, const char *needle, const char *needle2) {
    proxy_test_expect_log(f->log_fd, needle, needle2);
}
static int client(const struct fixture *f) {
    return proxy_test_client(f->proxy);
}

static int read_response(int fd, char *buf, size_t cap) {
    return proxy_test_read_response(fd, NULL, buf, cap);
}

/* One request on a new connection; the status, or -1 when the proxy just closed. */
static int request(const struct fixture *f, const char *req, char *buf, size_t cap) {
    int fd = client(f);
    send_str(fd, req);
    int st = read_response(fd, buf, cap);
    close(fd);
    return st;
}

/* The proxy closed fd: end of file, or a reset when it closed with our bytes unread (a unix
 * socket reports that as ECONNRESET). */
static bool at_eof(int fd) {
    char c;
    ssize_t k = read(fd, &c, 1);
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_start_errors(void **state) {
    char *bad[] = {"allowed.test", "127.1", NULL};
    struct proxy_config cfg = {.allow = bad, .log_fd = -1};
    struct proxy *p = NULL;
    dbx_error *e = NULL;
    assert_int_equal(proxy_start(&cfg, &p, &e), -EINVAL);
    assert_non_null(strstr(e->msg, "'127.1'"));
    dbx_error_free(&e);
    char *ok[] = {"allowed.test", NULL};
    char *res[] = {"allowed.test:127.0.0.1", "six.test:::1", "six.test:[::2]", "x.test:nope", NULL};
    cfg = (struct proxy_config){.allow = ok, .resolve = res, .log_fd = -1};
    assert_int_equal(proxy_start(&cfg, &p, &e), -EINVAL);
    assert_non_null(strstr(e->msg, "'x.test:nope'"));
    dbx_error_free(&e);
    res[3] = NULL;
    assert_int_equal(proxy_start(&cfg, &p, &e), 0);
    proxy_stop(p);
    proxy_stop(NULL);
}

static void test_connect_tunnel(void **state) {
    struct server *s = server_start(SRV_ECHO, 0);
    char *allow[] = {dbx_xasprintf("allowed.test:%u", s->port), "127.0.0.1", NULL};
    char *res[] = {"allowed.test:127.0.0.1", NULL};
    struct fixture f = fixture_start(allow, res);
    int fd = client(&f);
    char *req = dbx_xasprintf("CONNECT allowed.test:%u HTTP/1.1\r\nHost: allowed.test:%u\r\n\r\n"
                              "early",
                              s->port, s->port);
    send_str(fd, req);
    char buf[4096];
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    char got[16] = {0};
    assert_int_equal(read(fd, got, 5), 5);
    assert_string_equal(got, "early"); /* bytes after the head were not lost */
    send_str(fd, "ping");
    assert_int_equal(read(fd, got, 4), 4);
    assert_memory_equal(got, "ping", 4);
    shutdown(fd, SHUT_WR);
    assert_true(at_eof(fd)); /* half-close travels through */
    close(fd);
    char *want =
        dbx_xasprintf("allow CONNECT allowed.test:%u 127.0.0.1:%u up=9 down=9", s->port, s->port);
    expect_log(&f, want, NULL);
    /* the time stamp is UTC ISO 8601 */
    char *t = log_text(&f);
    assert_true(strlen(t) > 24 && t[4] == '-' && t[10] == 'T' && t[23] == 'Z');
    free(want);
    free(req);
    fixture_stop(&f);
    server_stop(s);
    free(allow[0]);
}

static void test_connect_443_sni(void **state) {
    if (!have_netns) skip_because("no network namespace for port 443");
    struct server *s = server_start(SRV_ECHO, 443);
    char *allow[] = {"allowed.test", "127.0.0.1", NULL};
    char *res[] = {"allowed.test:127.0.0.1", "evil.test:127.0.0.1", NULL};
    struct fixture f = fixture_start(allow, res);
    char buf[4096];
    static uint8_t h[PROXY_TLS_MAX_RAW];
    static const struct {
        const char *host, *sni; /* sni NULL: none; "-": not TLS */
        size_t nrec;
        bool ok;
    } cases[] = {
        {"allowed.test", "allowed.test", 1, true},
        {"allowed.test", "ALLOWED.test.", 3, true},
        {"allowed.test.", "allowed.test", 1, true},
        {"allowed.test", "evil.test", 1, false},
        {"allowed.test", "allowed.test.evil.test", 1, false},
        {"allowed.test", NULL, 1, false},
        {"allowed.test", "-", 1, false},
        {"127.0.0.1", NULL, 1, true},
        {"127.0.0.1", "127.0.0.1", 1, true},
        {"127.0.0.1", "allowed.test", 1, false},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        size_t before = s->received;
        int fd = client(&f);
        char *req = dbx_xasprintf("CONNECT %s:443 HTTP/1.1\r\n\r\n", cases[i].host);
        send_str(fd, req);
        free(req);
        assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
        size_t n;
        if (cases[i].sni && strcmp(cases[i].sni, "-") == 0) {
            n = 18;
            memcpy(h, "GET / HTTP/1.1\r\n\r\n", n);
        } else {
            n = hello(h, cases[i].sni, 100, cases[i].nrec);
        }
        /* in pieces, so the proxy has to wait for the rest */
        assert_int_equal(dbx_write_all(fd, h, 7), 0);
        usleep(20000);
        int w = dbx_write_all(fd, h + 7, n - 7); /* fails once the proxy refused */
        if (cases[i].ok) assert_int_equal(w, 0);
        if (cases[i].ok) {
            static uint8_t back[PROXY_TLS_MAX_RAW];
            size_t got = 0;
            while (got < n) {
                ssize_t k = read(fd, back + got, n - got);
                if (k <= 0) fail_msg("case %zu: tunnel closed after %zu bytes", i, got);
                got += (size_t)k;
            }
            assert_memory_equal(back, h, n);
        } else {
            if (!at_eof(fd)) fail_msg("case %zu: tunnel not closed", i);
            assert_int_equal(s->received, before); /* not one byte reached the server */
        }
        close(fd);
    }
    expect_log(&f, "deny CONNECT allowed.test:443 127.0.0.1:443",
               "reason=\"TLS server_name 'evil.test' differs from the CONNECT host\"");
    expect_log(&f, "deny CONNECT allowed.test:443", "server_name '' differs");
    expect_log(&f, "deny CONNECT allowed.test:443", "not a TLS handshake record");
    fixture_stop(&f);
    server_stop(s);
}

static void test_http_keepalive(void **state) {
    struct server *s = server_start(SRV_HTTP, 0);
    char *allow[] = {dbx_xasprintf("allowed.test:%u", s->port), "127.0.0.1", NULL};
    char *res[] = {"allowed.test:127.0.0.1", NULL};
    struct fixture f = fixture_start(allow, res);
    int fd = client(&f);
    char buf[8192];
    unsigned p = s->port;
    char *r1 =
        dbx_xasprintf("GET http://allowed.test:%u/one?x=1 HTTP/1.1\r\nHost: allowed.test:%u"
                      "\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n"
                      "Accept: */*\r\n\r\n",
                      p, p);
    send_str(fd, r1);
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "GET /one?x=1 HTTP/1.1"));
    /* the second request on the same connection, in two pieces */
    char *r2 = dbx_xasprintf("GET http://ALLOWED.test.:%u/two HTTP/1.1\r\n", p);
    send_str(fd, r2);
    usleep(20000);
    send_str(fd, "\r\n");
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "GET /two HTTP/1.1"));
    /* bodies by length and chunked, pipelined with the next request */
    char *r3 =
        dbx_xasprintf("POST http://allowed.test:%u/len HTTP/1.1\r\nContent-Length: 11\r\n\r\n"
                      "hello world"
                      "POST http://allowed.test:%u/chunked HTTP/1.1\r\nTransfer-Encoding: "
                      "chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                      p, p);
    send_str(fd, r3);
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "POST /len"));
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "POST /chunked"));
    close(fd);
    expect_log(&f, "allow GET allowed.test:", "reqs=4");
    /* what the origin saw: origin-form targets, our Host, no proxy headers, exact bodies */
    pthread_mutex_lock(&s->lock);
    char *host = dbx_xasprintf("GET /one?x=1 HTTP/1.1\r\nHost: allowed.test:%u\r\nAccept: */*\r\n"
                               "Connection: keep-alive\r\n\r\n",
                               p);
    if (!strstr(s->log, host)) fail_msg("origin saw:\n%s", s->log);
    assert_null(strstr(s->log, "http://"));
    assert_null(strcasestr(s->log, "proxy-"));
    assert_non_null(strstr(s->log, "\r\n\r\nhello world"));
    assert_non_null(strstr(s->log, "\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
    pthread_mutex_unlock(&s->lock);
    assert_int_equal(s->accepted, 1);
    free(host);
    free(r1);
    free(r2);
    free(r3);
    fixture_stop(&f);
    server_stop(s);
    free(allow[0]);
}

static void test_http_pinned(void **state) {
    struct server *s = server_start(SRV_HTTP, 0);
    unsigned p = s->port;
    char *allow[] = {dbx_xasprintf("allowed.test:%u", p), dbx_xasprintf("other.test:%u", p),
                     "127.0.0.1", NULL};
    char *res[] = {"allowed.test:127.0.0.1", "other.test:127.0.0.1", NULL};
    struct fixture f = fixture_start(allow, res);
    char buf[8192];
    /* a second request for another (allowed) host on the same connection */
    int fd = client(&f);
    char *r = dbx_xasprintf("GET http://allowed.test:%u/a HTTP/1.1\r\n\r\n", p);
    send_str(fd, r);
    free(r);
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    r = dbx_xasprintf("GET http://other.test:%u/b HTTP/1.1\r\n\r\n", p);
    send_str(fd, r);
    free(r);
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 403);
    assert_non_null(strstr(buf, "pinned to allowed.test:"));
    assert_true(at_eof(fd));
    close(fd);
    /* a request smuggled behind an empty body */
    fd = client(&f);
    r = dbx_xasprintf("POST http://allowed.test:%u/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
                      "GET http://evil.test/ HTTP/1.1\r\n\r\n",
                      p);
    send_str(fd, r);
    free(r);
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 403);
    assert_true(at_eof(fd));
    close(fd);
    /* a malformed second request ends the connection with 400 */
    fd = client(&f);
    r = dbx_xasprintf("GET http://allowed.test:%u/a HTTP/1.1\r\n\r\nGET http://allowed.test:%u/b "
                      "HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                      p, p);
    send_str(fd, r);
    free(r);
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 400);
    close(fd);
    expect_log(&f, "deny GET", "pinned to allowed.test:");
    pthread_mutex_lock(&s->lock);
    assert_null(strstr(s->log, "/b"));
    assert_null(strstr(s->log, "evil"));
    pthread_mutex_unlock(&s->lock);
    fixture_stop(&f);
    server_stop(s);
    free(allow[0]);
    free(allow[1]);
}

static void test_denied(void **state) {
    struct server *s = server_start(SRV_ECHO, 0);
    char *allow[] = {"allowed.test", NULL};
    /* evil.test would reach the server if the proxy ever looked it up */
    char *res[] = {"evil.test:127.0.0.1", "allowed.test:203.0.113.5", NULL};
    struct fixture f = fixture_start(allow, res);
    char buf[8192];
    assert_int_equal(request(&f, "CONNECT evil.test:443 HTTP/1.1\r\n\r\n", buf, sizeof(buf)), 403);
    /* apt shows only the status line: it names the reason too */
    assert_true(dbx_str_has_prefix(
        buf, "HTTP/1.1 403 Forbidden by devbox: evil.test:443 is not in the allow list\r\n"));
    assert_non_null(strstr(buf, "devbox: evil.test:443 is not in this box's network allow list; "
                                "add `evil.test` to [network] allow in devbox.ini (then `devbox "
                                "trust`)"));
    assert_non_null(strstr(buf, "Connection: close"));
    char *r = dbx_xasprintf("GET http://evil.test:%u/x HTTP/1.1\r\n\r\n", s->port);
    assert_int_equal(request(&f, r, buf, sizeof(buf)), 403);
    free(r);
    char *rule = dbx_xasprintf("add `evil.test:%u`", s->port);
    assert_non_null(strstr(buf, rule));
    free(rule);
    expect_log(&f, "deny CONNECT evil.test:443 - up=0 down=0",
               "reason=\"evil.test:443 is not in the allow list; to allow it add 'evil.test' to "
               "[network] allow\"");
    /* an allowed name resolving to a refused address: the class and its table row, and the
     * fix, in the body, the status line and on the log line of the refusal */
    assert_int_equal(request(&f, "CONNECT allowed.test:443 HTTP/1.1\r\n\r\n", buf, sizeof(buf)),
                     403);
    assert_true(dbx_str_has_prefix(buf, "HTTP/1.1 403 Forbidden by devbox: allowed.test resolves "
                                        "to 203.0.113.5, a reserved address: documentation (RFC "
                                        "5737)\r\n"));
    assert_non_null(strstr(buf, "add `203.0.113.5` to [network] allow in devbox.ini"));
    expect_log(&f, "deny CONNECT allowed.test:443 - up=0 down=0",
               "reason=\"allowed.test resolves to 203.0.113.5, a reserved address: documentation "
               "(RFC 5737); to allow it add '203.0.113.5' to [network] allow\"");
    /* a denied POST with a body still gets its answer (no reset) */
    int fd = client(&f);
    static char body[200000];
    memset(body, 'x', sizeof(body));
    send_str(fd, "POST http://evil.test/ HTTP/1.1\r\nContent-Length: 200000\r\n\r\n");
    (void)!write(fd, body, sizeof(body));
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 403);
    close(fd);
    assert_int_equal(s->accepted, 0);
    fixture_stop(&f);
    server_stop(s);
}

/* tmpl with {P} and {O} replaced by the two ports. */
static char *subst(const char *tmpl, unsigned p, unsigned o) {
    char *out = dbx_xstrdup("");
    for (const char *t = tmpl; *t;) {
        char *next;
        if (strncmp(t, "{P}", 3) == 0 || strncmp(t, "{O}", 3) == 0) {
            next = dbx_xasprintf("%s%u", out, t[1] == 'P' ? p : o);
            t += 3;
        } else {
            next = dbx_xasprintf("%s%c", out, *t++);
        }
        free(out);
        out = next;
    }
    return out;
}

/* Every row must be refused before the proxy connects anywhere. */
static void test_bypass_table(void **state) {
    struct server *s = server_start(SRV_ECHO, 0), *other = server_start(SRV_ECHO, 0);
    unsigned p = s->port;
    char *allow[] = {dbx_xasprintf("allowed.test:%u", p),  dbx_xasprintf("127.0.0.1:%u", p),
                     dbx_xasprintf("private.test:%u", p),  dbx_xasprintf("loop2.test:%u", p),
                     dbx_xasprintf("metadata.test:%u", p), dbx_xasprintf("mapped.test:%u", p),
                     dbx_xasprintf("nat64.test:%u", p),    dbx_xasprintf("six.test:%u", p),
                     dbx_xasprintf("cgnat.test:%u", p),    NULL};
    char *res[] = {"allowed.test:127.0.0.1",
                   "evil-allowed.test:127.0.0.1",
                   "allowed.test.evil.test:127.0.0.1",
                   "private.test:10.0.0.1",
                   "loop2.test:127.0.0.2",
                   "metadata.test:169.254.169.254",
                   "mapped.test:::ffff:127.0.0.1",
                   "nat64.test:64:ff9b::7f00:1",
                   "six.test:::1",
                   "cgnat.test:100.64.0.1",
                   "localhost:127.0.0.1",
                   NULL};
    struct fixture f = fixture_start(allow, res);
    static const struct {
        const char *req; /* {P}: the allowed server's port, {O}: another listener's */
        int status;
        const char *why; /* in the body */
    } rows[] = {
        /* IP literals in every encoding (only 127.0.0.1:%u is listed) */
        {"CONNECT 127.1:{P} HTTP/1.1\r\n\r\n", 403, "not a canonical IP address"},
        {"CONNECT 2130706433:{P} HTTP/1.1\r\n\r\n", 403, "not a canonical IP address"},
        {"CONNECT 0x7f.0.0.1:{P} HTTP/1.1\r\n\r\n", 403, "not a canonical IP address"},
        {"CONNECT 0x7f000001:{P} HTTP/1.1\r\n\r\n", 403, "not a canonical IP address"},
        {"CONNECT 0177.0.0.1:{P} HTTP/1.1\r\n\r\n", 403, "not a canonical IP address"},
        {"CONNECT 127.0.0.1.:{P} HTTP/1.1\r\n\r\n", 403, "not a canonical IP address"},
        {"CONNECT [::ffff:127.0.0.1]:{P} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"CONNECT [::ffff:7f00:1]:{P} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"CONNECT [64:ff9b::127.0.0.1]:{P} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"CONNECT [::1]:{P} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"CONNECT [::127.0.0.1]:{P} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"CONNECT 127.0.0.2:{P} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"GET http://2130706433:{P}/ HTTP/1.1\r\n\r\n", 403, "not a canonical IP address"},
        {"GET http://[::1]:{P}/ HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        /* name matching */
        {"CONNECT evil-allowed.test:{P} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"CONNECT allowed.test.evil.test:{P} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"CONNECT allowed.test..:{P} HTTP/1.1\r\n\r\n", 403, "empty label"},
        {"CONNECT .allowed.test:{P} HTTP/1.1\r\n\r\n", 403, "empty label"},
        {"CONNECT allowed.test:{O} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"CONNECT allowed.test:443 HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"GET http://allowed.test:{P}@evil.test/ HTTP/1.1\r\n\r\n", 400, "userinfo"},
        {"GET http://evil.test/http://allowed.test:{P}/ HTTP/1.1\r\n\r\n", 403, "not in this"},
        /* names that resolve to refused addresses */
        {"CONNECT private.test:{P} HTTP/1.1\r\n\r\n", 403, "10.0.0.1, a private address"},
        {"CONNECT loop2.test:{P} HTTP/1.1\r\n\r\n", 403, "127.0.0.2, a loopback address"},
        {"CONNECT metadata.test:{P} HTTP/1.1\r\n\r\n", 403, "a cloud metadata address"},
        {"CONNECT mapped.test:{P} HTTP/1.1\r\n\r\n", 403, "an IPv4-mapped address"},
        {"CONNECT nat64.test:{P} HTTP/1.1\r\n\r\n", 403, "a NAT64 address"},
        {"CONNECT six.test:{P} HTTP/1.1\r\n\r\n", 403, "::1, a loopback address"},
        {"CONNECT cgnat.test:{P} HTTP/1.1\r\n\r\n", 403, "a shared (CGNAT) address"},
        /* the supervisor's socket, another project's listener, the proxy itself */
        {"CONNECT /run/user/0/devbox/supervisor.sock HTTP/1.1\r\n\r\n", 400, "port"},
        {"CONNECT unix:/run/user/0/devbox/other/supervisor.sock HTTP/1.1\r\n\r\n", 400, "port"},
        {"CONNECT localhost:{P} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"CONNECT 127.0.0.1:{O} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"CONNECT 127.0.0.1:3128 HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        {"CONNECT 0.0.0.0:{P} HTTP/1.1\r\n\r\n", 403, "not in this box's"},
        /* Host header smuggling and framing on plain http */
        {"GET http://allowed.test:{P}/ HTTP/1.1\r\nHost: evil.test\r\n\r\n", 400, "Host header"},
        {"GET http://allowed.test:{P}/ HTTP/1.1\r\nHost: allowed.test:{P}\r\nHost: "
         "evil.test\r\n\r\n",
         400, "Host"},
        {"GET http://allowed.test:{P}/ HTTP/1.1\r\nHost: allowed.test:{O}\r\n\r\n", 400,
         "Host header"},
        {"POST http://allowed.test:{P}/ HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         400, "both"},
        {"POST http://allowed.test:{P}/ HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
         400, "Transfer-Encoding"},
        {"POST http://allowed.test:{P}/ HTTP/1.1\r\nTransfer-Encoding:\tchunked\r\nX: y\r\n "
         "folded\r\n\r\n",
         400, "folded"},
        /* not served */
        {"GET / HTTP/1.1\r\nHost: allowed.test:{P}\r\n\r\n", 400, "absolute"},
        {"GET https://allowed.test:{P}/ HTTP/1.1\r\n\r\n", 405, "CONNECT"},
        {"PUT http://allowed.test:{P}/ HTTP/1.1\r\n\r\n", 405, "not served"},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 405, "not served"},
        {"GET http://allowed.test:{P}/ HTTP/0.9\r\n\r\n", 505, "HTTP/1.0"},
    };
    char buf[8192];
    for (size_t i = 0; i < DBX_ARRAY_SIZE(rows); i++) {
        char *req = subst(rows[i].req, p, other->port);
        int st = request(&f, req, buf, sizeof(buf));
        if (st != rows[i].status || !strstr(buf, rows[i].why))
            fail_msg("row %zu: %d, want %d '%s':\n%s\n->\n%s", i, st, rows[i].status, rows[i].why,
                     req, buf);
        free(req);
    }
    assert_int_equal(s->accepted, 0);
    assert_int_equal(other->accepted, 0);
    expect_log(&f, "deny CONNECT private.test:", "10.0.0.1, a private address");
    /* and the allowed ones do get through */
    char *ok = dbx_xasprintf("CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", p);
    assert_int_equal(request(&f, ok, buf, sizeof(buf)), 200);
    free(ok);
    ok = dbx_xasprintf("CONNECT allowed.test.:%u HTTP/1.1\r\n\r\n", p);
    assert_int_equal(request(&f, ok, buf, sizeof(buf)), 200);
    free(ok);
    fixture_stop(&f);
    server_stop(s);
    server_stop(other);
    for (size_t i = 0; allow[i]; i++)
        free(allow[i]);
}

/* Real DNS (the host's resolver, /etc/hosts): "localhost" resolves to loopback, refused
 * unless 127.0.0.1 is listed. */
static void test_dns_private(void **state) {
    struct server *s = server_start(SRV_ECHO, 0);
    char *allow[] = {dbx_xasprintf("localhost:%u", s->port), NULL};
    struct fixture f = fixture_start(allow, NULL);
    char buf[4096];
    char *r = dbx_xasprintf("CONNECT localhost:%u HTTP/1.1\r\n\r\n", s->port);
    assert_int_equal(request(&f, r, buf, sizeof(buf)), 403);
    assert_non_null(strstr(buf, "a loopback address"));
    fixture_stop(&f);
    assert_int_equal(s->accepted, 0);
    /* with the address named it works */
    char *allow2[] = {allow[0], "127.0.0.1", "::1", NULL};
    f = fixture_start(allow2, NULL);
    assert_int_equal(request(&f, r, buf, sizeof(buf)), 200);
    fixture_stop(&f);
    free(r);
    free(allow[0]);
    server_stop(s);
}

static void test_limits_and_stop(void **state) {
    char *allow[] = {"allowed.test", NULL};
    struct proxy_config cfg = {.allow = allow, .log_fd = -1, .max_conns = 2};
    struct proxy *p = NULL;
    assert_int_equal(proxy_start(&cfg, &p, NULL), 0);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        dbx_error *e = NULL;
        int r = proxy_serve(p, sv[1], &e);
        if (i < 2) {
            assert_int_equal(r, 0);
        } else {
            assert_int_equal(r, -EAGAIN);
            assert_true(at_eof(sv[0])); /* the refused fd was closed */
            dbx_error_free(&e);
        }
        fds[i] = sv[0];
    }
    send_str(fds[0], "GET http://allowed.test/ HTTP/1.1\r\n"); /* half a head */
    /* stop ends idle connections at once (not after the head time limits) */
    uint64_t t0 = dbx_now_ms();
    proxy_stop(p);
    assert_true(dbx_now_ms() - t0 < 2000);
    for (int i = 0; i < 3; i++) {
        assert_true(at_eof(fds[i]));
        close(fds[i]);
    }
    /* finished connections make room again */
    cfg.max_conns = 1;
    assert_int_equal(proxy_start(&cfg, &p, NULL), 0);
    for (int i = 0; i < 5; i++) {
        int sv[2];
        /* The previous connection's thread closes its socket (our EOF) just before it gives its
         * slot back: on a loaded machine the next serve can come in between, so retry (a refused
         * fd is closed: a new pair each time). */
        int r;
        uint64_t until = dbx_now_ms() + 5000;
        do {
            assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
            r = proxy_serve(p, sv[1], NULL);
            if (r == -EAGAIN) {
                close(sv[0]);
                usleep(1000);
            }
        } while (r == -EAGAIN && dbx_now_ms() < until);
        assert_int_equal(r, 0);
        send_str(sv[0], "BAD\r\n\r\n");
        char buf[4096];
        assert_int_equal(read_response(sv[0], buf, sizeof(buf)), 400);
        assert_true(at_eof(sv[0]));
        close(sv[0]);
        usleep(50000); /* the thread marks itself done after closing */
    }
    proxy_stop(p);
}

/* Without fds for the splice pipe (EMFILE), a tunnel copies through user space. */
static void test_no_pipe(void **state) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 4), 0); /* accepted only later: the backlog completes it */
    getsockname(lfd, (struct sockaddr *)&a, &al);
    unsigned port = ntohs(a.sin_port);
    char *allow[] = {dbx_xasprintf("allowed.test:%u", port), "127.0.0.1", NULL};
    char *res[] = {"allowed.test:127.0.0.1", NULL};
    struct fixture f = fixture_start(allow, res);
    int fd = client(&f);
    /* fds are allocated lowest first: leave exactly one, for the proxy's upstream socket */
    int lowest = dup(0);
    assert_true(lowest >= 0);
    close(lowest);
    struct rlimit old, one_left = {.rlim_max = RLIM_INFINITY};
    getrlimit(RLIMIT_NOFILE, &old);
    one_left = (struct rlimit){.rlim_cur = (rlim_t)lowest + 1, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &one_left), 0);
    char *req = dbx_xasprintf("CONNECT allowed.test:%u HTTP/1.1\r\n\r\n", port);
    send_str(fd, req);
    char buf[4096];
    int st = read_response(fd, buf, sizeof(buf));
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(st, 200);
    int ufd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(ufd >= 0);
    send_str(fd, "ping");
    char got[5] = {0};
    assert_int_equal(read(ufd, got, 4), 4);
    assert_string_equal(got, "ping");
    send_str(ufd, "pong");
    assert_int_equal(read(fd, got, 4), 4);
    assert_string_equal(got, "pong");
    close(ufd);
    assert_true(at_eof(fd));
    close(fd);
    free(req);
    fixture_stop(&f);
    close(lfd);
    free(allow[0]);
}

/* ---- head and ClientHello time limits ------------------------------------------------------ */

/* Send n bytes one at a time, DRIBBLE_MS apart; stop early once the proxy answered or closed. */
#define DRIBBLE_MS 5
static void dribble(int fd, const void *data, size_t n) {
    const uint8_t *b = data;
    for (size_t i = 0; i < n; i++) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, DRIBBLE_MS) != 0) return;
        if (send(fd, b + i, 1, MSG_NOSIGNAL) != 1) return;
    }
}

/* The limits are idle-based: a head that keeps coming is served however long it takes in all
 * (up to head_total_ms); a pause longer than head_idle_ms, or a head still incomplete after
 * head_total_ms, is cut with 408.  The limits are small here, the margins large: the dribble's
 * total time exceeds the idle limit by construction (each gap is at least DRIBBLE_MS), and each
 * gap would have to stall for ~100 times DRIBBLE_MS to reach it. */
static void test_head_timeouts(void **state) {
    struct server *s = server_start(SRV_ECHO, 0);
    char *allow[] = {dbx_xasprintf("allowed.test:%u", s->port), "127.0.0.1", NULL};
    char *res[] = {"allowed.test:127.0.0.1", NULL};
    const unsigned idle = 500;
    struct fixture f = fixture_start_cfg((struct proxy_config){
        .allow = allow, .resolve = res, .head_idle_ms = idle, .head_total_ms = 60000});
    char buf[4096];
    /* a head dribbled over longer than the idle limit: served */
    char *req =
        dbx_xasprintf("CONNECT allowed.test:%u HTTP/1.1\r\nUser-Agent: %0150d\r\n\r\n", s->port, 0);
    assert_true(strlen(req) * DRIBBLE_MS > idle);
    int fd = client(&f);
    dribble(fd, req, strlen(req));
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    send_str(fd, "ping");
    char got[4];
    assert_int_equal(read(fd, got, 4), 4);
    close(fd);
    free(req);
    fixture_stop(&f);
    /* a pause longer than the idle limit: 408, and logged */
    f = fixture_start_cfg((struct proxy_config){
        .allow = allow, .resolve = res, .head_idle_ms = 200, .head_total_ms = 60000});
    fd = client(&f);
    send_str(fd, "GET http://allowed.test/ HTTP/1.1\r\n");
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 408);
    assert_non_null(strstr(buf, "request head: no byte for 200 ms"));
    close(fd);
    expect_log(&f, "deny - - - up=0 down=0", "request head: no byte for 200 ms");
    fixture_stop(&f);
    /* a head that keeps coming but never ends: cut at the total limit */
    f = fixture_start_cfg((struct proxy_config){
        .allow = allow, .resolve = res, .head_idle_ms = 60000, .head_total_ms = 300});
    fd = client(&f);
    static char endless[4096];
    static const char start[] = "GET http://allowed.test/ HTTP/1.1\r\nX: ";
    memset(endless, 'a', sizeof(endless));
    memcpy(endless, start, sizeof(start) - 1);
    dribble(fd, endless, sizeof(endless));
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 408);
    assert_non_null(strstr(buf, "request head: not complete after 300 ms"));
    close(fd);
    fixture_stop(&f);
    assert_int_equal(s->accepted, 1);
    server_stop(s);
    free(allow[0]);
}

/* The same limits for the ClientHello after CONNECT to port 443. */
static void test_hello_timeouts(void **state) {
    if (!have_netns) skip_because("no network namespace for port 443");
    struct server *s = server_start(SRV_ECHO, 443);
    char *allow[] = {"allowed.test", "127.0.0.1", NULL};
    char *res[] = {"allowed.test:127.0.0.1", NULL};
    const unsigned idle = 400;
    struct fixture f = fixture_start_cfg((struct proxy_config){
        .allow = allow, .resolve = res, .head_idle_ms = idle, .head_total_ms = 60000});
    static uint8_t h[PROXY_TLS_MAX_RAW], back[PROXY_TLS_MAX_RAW];
    size_t n = hello(h, "allowed.test", 200, 1);
    assert_true(n * DRIBBLE_MS > idle);
    char buf[4096];
    int fd = client(&f);
    send_str(fd, "CONNECT allowed.test:443 HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    dribble(fd, h, n);
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, back + got, n - got);
        if (k <= 0) fail_msg("tunnel closed after %zu bytes:\n%s", got, log_text(&f));
        got += (size_t)k;
    }
    assert_memory_equal(back, h, n);
    close(fd);
    /* a hello that stops half way: the tunnel is closed, nothing reached the server */
    size_t before = s->received;
    fd = client(&f);
    send_str(fd, "CONNECT allowed.test:443 HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    assert_int_equal(dbx_write_all(fd, h, 7), 0);
    assert_true(at_eof(fd));
    close(fd);
    assert_int_equal(s->received, before);
    expect_log(&f, "deny CONNECT allowed.test:443", "TLS ClientHello: no byte for 400 ms");
    fixture_stop(&f);
    server_stop(s);
}

/* ---- the name cache ---------------------------------------------------------------------- */

/* A resolver standing in for getaddrinfo: counts its calls, fails the first `fail` of them,
 * and holds each lookup for hold_ms so that concurrent requests pile up behind it. */
struct fake_dns {
    atomic_uint calls;
    atomic_uint fail;
    unsigned hold_ms;
    const char *addr;
};

static int fake_resolve(void *data, const char *name, struct dbx_addr *out, size_t max,
                        size_t *ret_n) {
    struct fake_dns *d = data;
    d->calls++;
    if (d->hold_ms) usleep(d->hold_ms * 1000u);
    unsigned f = d->fail;
    while (f > 0 && !atomic_compare_exchange_weak(&d->fail, &f, f - 1))
        ;
    if (f > 0) return EAI_AGAIN;
    assert_true(max >= 1);
    struct policy_host h;
    const char *why;
    assert_int_equal(policy_host_parse(d->addr, strlen(d->addr), &h, &why), 0);
    out[0] = h.addr;
    *ret_n = 1;
    return 0;
}

/* CONNECT name:443 on a new connection; the status (403 once resolved to the fake's private
 * address, 502 when the lookup failed). */
static int connect_status(const struct fixture *f, const char *name) {
    char *req = dbx_xasprintf("CONNECT %s:443 HTTP/1.1\r\n\r\n", name);
    char buf[4096];
    int st = request(f, req, buf, sizeof(buf));
    free(req);
    return st;
}

/* npm's burst: 150 concurrent requests for one name make one lookup; later ones come from the
 * cache, and every cached answer is still checked (10.0.0.1 stays refused). */
static void test_dns_coalesce(void **state) {
    struct fake_dns d = {.addr = "10.0.0.1", .hold_ms = 200};
    char *allow[] = {"burst.test", NULL};
    struct fixture f = fixture_start_cfg(
        (struct proxy_config){.allow = allow, .dns_resolve = fake_resolve, .dns_resolve_data = &d});
    enum { N = 150 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = client(&f);
        send_str(fds[i], "CONNECT burst.test:443 HTTP/1.1\r\n\r\n");
    }
    char buf[4096];
    for (int i = 0; i < N; i++) {
        assert_int_equal(read_response(fds[i], buf, sizeof(buf)), 403);
        assert_non_null(strstr(buf, "10.0.0.1"));
        close(fds[i]);
    }
    assert_int_equal(d.calls, 1);
    assert_int_equal(connect_status(&f, "burst.test"), 403);
    assert_int_equal(d.calls, 1);
    fixture_stop(&f);
}

/* A failed lookup is retried once (not more), and a failure is not cached. */
static void test_dns_retry(void **state) {
    struct fake_dns d = {.addr = "10.0.0.1", .fail = 1};
    char *allow[] = {"flaky.test", "gone.test", NULL};
    struct fixture f = fixture_start_cfg((struct proxy_config){
        .allow = allow, .dns_resolve = fake_resolve, .dns_resolve_data = &d, .dns_retry_ms = 1});
    assert_int_equal(connect_status(&f, "flaky.test"), 403); /* resolved on the retry */
    assert_int_equal(d.calls, 2);
    d.fail = 2;
    char buf[4096];
    assert_int_equal(request(&f, "CONNECT gone.test:443 HTTP/1.1\r\n\r\n", buf, sizeof(buf)), 502);
    assert_non_null(strstr(buf, "cannot resolve gone.test"));
    assert_int_equal(d.calls, 4);
    assert_int_equal(connect_status(&f, "gone.test"), 403); /* asked again, not cached */
    assert_int_equal(d.calls, 5);
    assert_int_equal(connect_status(&f, "flaky.test"), 403); /* still cached */
    assert_int_equal(d.calls, 5);
    fixture_stop(&f);
}

/* Answers expire after dns_ttl_ms; the least recently used name leaves a full cache first;
 * `resolve` overrides come before the cache and the resolver. */
static void test_dns_expiry_and_cap(void **state) {
    struct fake_dns d = {.addr = "10.0.0.1"};
    char *allow[] = {"*.cache.test", NULL};
    char *res[] = {"over.cache.test:192.168.7.7", NULL};
    struct fixture f = fixture_start_cfg((struct proxy_config){.allow = allow,
                                                               .resolve = res,
                                                               .dns_resolve = fake_resolve,
                                                               .dns_resolve_data = &d,
                                                               .dns_ttl_ms = 1});
    assert_int_equal(connect_status(&f, "a.cache.test"), 403);
    usleep(20000); /* > dns_ttl_ms */
    assert_int_equal(connect_status(&f, "a.cache.test"), 403);
    assert_int_equal(d.calls, 2);
    fixture_stop(&f);

    d.calls = 0;
    f = fixture_start_cfg((struct proxy_config){.allow = allow,
                                                .resolve = res,
                                                .dns_resolve = fake_resolve,
                                                .dns_resolve_data = &d,
                                                .dns_cache_max = 2});
    static const struct {
        const char *name;
        unsigned calls; /* after the request */
    } steps[] = {
        {"a.cache.test", 1}, {"b.cache.test", 2},    {"a.cache.test", 2}, /* a used after b */
        {"c.cache.test", 3},                                              /* evicts b */
        {"a.cache.test", 3}, {"c.cache.test", 3},    {"b.cache.test", 4}, /* evicts a */
        {"c.cache.test", 4}, {"over.cache.test", 4},
    };
    char buf[4096];
    for (size_t i = 0; i < DBX_ARRAY_SIZE(steps); i++) {
        char *req = dbx_xasprintf("CONNECT %s:443 HTTP/1.1\r\n\r\n", steps[i].name);
        assert_int_equal(request(&f, req, buf, sizeof(buf)), 403);
        free(req);
        if (d.calls != steps[i].calls)
            fail_msg("step %zu (%s): %u lookups, want %u", i, steps[i].name, (unsigned)d.calls,
                     steps[i].calls);
    }
    assert_non_null(strstr(buf, "192.168.7.7")); /* the override's address */
    fixture_stop(&f);
}

/* A resolver that holds every lookup until the test opens the gate, then fails it. */
struct gate_dns {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    atomic_uint calls;
};

static int gate_resolve(void *data, const char *name, struct dbx_addr *out, size_t max,
                        size_t *ret_n) {
    struct gate_dns *g = data;
    g->calls++;
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    return EAI_AGAIN;
}

static void *stop_main(void *arg) {
    fixture_stop(arg);
    return NULL;
}

/* Stop while a lookup is in flight and other requests wait for it: stop waits for the lookup
 * (getaddrinfo cannot be interrupted) but not for the retry's pause; the waiters leave with
 * the lookup's failure, and a request that reaches the cache only after that (its thread ran
 * late) finds the proxy stopping instead of starting a lookup of its own. */
static void test_dns_stop_in_flight(void **state) {
    struct gate_dns g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    char *allow[] = {"gate.test", NULL};
    struct fixture f = fixture_start_cfg((struct proxy_config){.allow = allow,
                                                               .dns_resolve = gate_resolve,
                                                               .dns_resolve_data = &g,
                                                               .dns_retry_ms = 3600u * 1000u});
    enum { N = 16 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = client(&f);
        send_str(fds[i], "CONNECT gate.test:443 HTTP/1.1\r\n\r\n");
    }
    for (int i = 0; i < 5000 && g.calls == 0; i++)
        usleep(1000);
    assert_int_equal(g.calls, 1);
    pthread_t stopper;
    assert_int_equal(pthread_create(&stopper, NULL, stop_main, &f), 0);
    pthread_mutex_lock(&g.lock);
    g.open = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    /* an hour of retry pause would hold stop for an hour: a minute is plenty */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    if (pthread_timedjoin_np(stopper, NULL, &until) != 0)
        fail_msg("proxy_stop still waiting after 60 s");
    assert_int_equal(g.calls, 1);
    char buf[4096];
    for (int i = 0; i < N; i++) {
        int st = read_response(fds[i], buf, sizeof(buf));
        if (st != -1 && st != 502) fail_msg("status %d:\n%s", st, buf);
        close(fds[i]);
    }
}

/* The same at the cache's own interface, without the race: once the stop pipe is readable a
 * cached answer is still served but no lookup starts. */
static void test_dns_stopping(void **state) {
    struct fake_dns fd = {.addr = "10.0.0.1"};
    int stop[2];
    assert_int_equal(pipe2(stop, O_CLOEXEC), 0);
    struct proxy_dns *d = proxy_dns_new(&(struct proxy_dns_config){
        .resolve = fake_resolve, .resolve_data = &fd, .stop_fd = stop[0]});
    struct dbx_addr out[PROXY_DNS_MAX_ADDRS];
    size_t n = 0;
    assert_int_equal(proxy_dns_lookup(d, "a.test", out, PROXY_DNS_MAX_ADDRS, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(write(stop[1], "x", 1), 1);
    assert_int_equal(proxy_dns_lookup(d, "a.test", out, PROXY_DNS_MAX_ADDRS, &n), 0);
    assert_int_equal(proxy_dns_lookup(d, "b.test", out, PROXY_DNS_MAX_ADDRS, &n), EAI_AGAIN);
    assert_int_equal(fd.calls, 1);
    proxy_dns_free(d);
    close(stop[0]);
    close(stop[1]);
}

/* The network log is read on the host's terminal (`devbox logs --network`): no byte a guest
 * sends may reach it as a control sequence.  A Host header may carry any byte from 0x80 up,
 * and UTF-8 terminals (xterm, VTE) act on U+009B, encoded C2 9B, as CSI. */
static void test_log_ascii(void **state) {
    char *allow[] = {"allowed.test", NULL};
    struct fixture f = fixture_start(allow, NULL);
    char buf[4096];
    assert_int_equal(request(&f,
                             "GET http://allowed.test/ HTTP/1.1\r\nHost: x\xc2\x9b"
                             "31m\xe2\x80\xae\r\n\r\n",
                             buf, sizeof(buf)),
                     400);
    expect_log(&f, "deny - - -", "Host header");
    for (const unsigned char *t = (const unsigned char *)log_text(&f); *t; t++)
        if (*t >= 0x7f || (*t < 0x20 && *t != '\n'))
            fail_msg("byte 0x%02x in the log:\n%s", *t, log_text(&f));
    fixture_stop(&f);
}

/* ---- throughput -------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the whole process (server, proxy and client threads): steadier than the wall
 * clock on a loaded machine. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t drain(int fd) {
    static char buf[256 * 1024];
    size_t total = 0;
    ssize_t k;
    while ((k = read(fd, buf, sizeof(buf))) > 0)
        total += (size_t)k;
    return total;
}

static void test_throughput(void **state) {
    const char *mb_env = getenv("DEVBOX_PROXY_BENCH_MB");
    size_t mb = mb_env ? strtoul(mb_env, NULL, 10) : 100;
    struct server *s = server_start(SRV_BULK, 0);
    s->bulk = mb << 20;
    char *allow[] = {dbx_xasprintf("allowed.test:%u", s->port), "127.0.0.1", NULL};
    char *res[] = {"allowed.test:127.0.0.1", NULL};
    struct fixture f = fixture_start(allow, res);

    /* direct: a TCP client on the same loopback */
    double t0 = now_s(), c0 = cpu_s();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(s->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(drain(fd), s->bulk);
    close(fd);
    double direct = now_s() - t0, direct_cpu = cpu_s() - c0;

    /* through the proxy: CONNECT, then the same download */
    t0 = now_s();
    c0 = cpu_s();
    fd = client(&f);
    char *req = dbx_xasprintf("CONNECT allowed.test:%u HTTP/1.1\r\n\r\n", s->port);
    send_str(fd, req);
    char head[39];
    assert_int_equal(read(fd, head, 39), 39); /* "HTTP/1.1 200 Connection established\r\n\r\n" */
    assert_int_equal(drain(fd), s->bulk);
    close(fd);
    double proxied = now_s() - t0, proxied_cpu = cpu_s() - c0;
    double mbs_d = (double)mb / direct, mbs_p = (double)mb / proxied;
    fprintf(stderr,
            "proxy throughput: %zu MiB direct %.3f s (%.0f MiB/s, %.3f s CPU), through the proxy "
            "%.3f s (%.0f MiB/s, %.3f s CPU), ratio %.2f\n",
            mb, direct, mbs_d, direct_cpu, proxied, mbs_p, proxied_cpu, mbs_p / mbs_d);
    free(req);
    fixture_stop(&f);
    server_stop(s);
    free(allow[0]);
}

/* ---- the upstream proxy ------------------------------------------------------------------ */

/* The host of a network whose only way out is its proxy: no outside name resolves. */
static int no_resolve(void *data, const char *name, struct dbx_addr *out, size_t max,
                      size_t *ret_n) {
    return EAI_NONAME;
}

/* CONNECT and plain http through the user's proxy: the name goes to it unresolved, with the
 * user's credentials (percent-decoded, Basic), never the box's; the log says via. */
static void test_upstream(void **state) {
    struct server *up = server_start(SRV_UPSTREAM, 0);
    char *allow[] = {"far.test:9000", "far.test", "meta.test:9000", NULL};
    char *url = dbx_xasprintf("http://al%%40ice:p%%3Aw@127.0.0.1:%u/", up->port);
    struct fixture f = fixture_start_cfg(
        (struct proxy_config){.allow = allow, .upstream = url, .dns_resolve = no_resolve});
    int fd = client(&f);
    send_str(fd, "CONNECT far.test:9000 HTTP/1.1\r\nHost: far.test:9000\r\n"
                 "Proxy-Authorization: Basic Ym94OmJveA==\r\n\r\nearly");
    char buf[4096];
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    char got[8] = {0};
    assert_int_equal(read(fd, got, 5), 5);
    assert_string_equal(got, "early");
    close(fd);
    char *want =
        dbx_xasprintf("allow CONNECT far.test:9000 via=127.0.0.1:%u up=5 down=5", up->port);
    expect_log(&f, want, NULL);
    /* "al@ice:p:w" in Basic; the box's own credentials (box:box) stayed behind */
    assert_non_null(strstr(up->log, "CONNECT far.test:9000 HTTP/1.1\r\nHost: far.test:9000\r\n"
                                    "User-Agent: devbox\r\n"
                                    "Proxy-Authorization: Basic YWxAaWNlOnA6dw==\r\n\r\n"));
    assert_null(strstr(up->log, "Ym94"));
    fixture_stop(&f);
    server_stop(up);
    free(want);

    /* plain http: the absolute form, to an origin-form server standing in for the proxy */
    struct server *web = server_start(SRV_HTTP, 0);
    free(url);
    url = dbx_xasprintf("127.0.0.1:%u", web->port); /* no scheme: as http_proxy often is */
    f = fixture_start_cfg(
        (struct proxy_config){.allow = allow, .upstream = url, .dns_resolve = no_resolve});
    fd = client(&f);
    send_str(fd, "GET http://far.test/x?y HTTP/1.1\r\nHost: far.test\r\n"
                 "Proxy-Authorization: Basic Ym94OmJveA==\r\nProxy-Foo: 1\r\n\r\n");
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "\r\n\r\nGET http://far.test/x?y HTTP/1.1"));
    /* the kept-alive connection's next request goes the same way */
    send_str(fd, "HEAD http://far.test/z HTTP/1.1\r\nHost: far.test\r\n\r\n");
    assert_int_equal(read_response(fd, buf, sizeof(buf)), 200);
    close(fd);
    assert_null(strstr(web->log, "Proxy-Authorization"));
    assert_null(strstr(web->log, "Proxy-Foo"));
    assert_non_null(strstr(web->log, "HEAD http://far.test/z HTTP/1.1\r\nHost: far.test\r\n"));
    want = dbx_xasprintf("allow GET far.test:80 via=127.0.0.1:%u", web->port);
    expect_log(&f, want, NULL);
    fixture_stop(&f);
    free(want);

    /* a proxy on this host resolves as the host does: a name the host resolves to its own
     * loopback is refused here, as on the direct path, and never reaches the proxy */
    struct fake_dns d = {.addr = "127.0.0.1"};
    f = fixture_start_cfg((struct proxy_config){
        .allow = allow, .upstream = url, .dns_resolve = fake_resolve, .dns_resolve_data = &d});
    int before = web->accepted;
    assert_int_equal(
        request(&f, "GET http://far.test/ HTTP/1.1\r\nHost: far.test\r\n\r\n", buf, sizeof(buf)),
        403);
    assert_non_null(strstr(buf, "far.test resolves to 127.0.0.1, a loopback address"));
    d.addr = "169.254.169.254";
    assert_int_equal(request(&f, "CONNECT meta.test:9000 HTTP/1.1\r\n\r\n", buf, sizeof(buf)), 403);
    assert_non_null(strstr(buf, "meta.test resolves to 169.254.169.254, a cloud metadata"));
    /* the connection to the proxy was opened, nothing was sent on it */
    assert_int_equal(accepted_reach(web, before + 2), before + 2);
    assert_null(strstr(web->log, "GET http://far.test/ HTTP"));
    fixture_stop(&f);
    server_stop(web);
    free(url);
}

/* What the upstream refuses is a 502 naming it; what the allow list refuses never reaches it;
 * no_proxy and resolve overrides are connected directly. */
static void test_upstream_refusals_and_direct(void **state) {
    struct server *up = server_start(SRV_UPSTREAM, 0), *echo = server_start(SRV_ECHO, 0);
    up->status = 407;
    char *allow[] = {"far.test:9000", dbx_xasprintf("sub.near.test:%u", echo->port),
                     dbx_xasprintf("pinned.test:%u", echo->port), "127.0.0.1", NULL};
    char *res[] = {"pinned.test:127.0.0.1", NULL};
    char *np[] = {"near.test", "192.0.2.0/24", NULL};
    char *url = dbx_xasprintf("http://127.0.0.1:%u", up->port);
    struct fake_dns d = {.addr = "127.0.0.1"};
    struct fixture f = fixture_start_cfg((struct proxy_config){.allow = allow,
                                                               .resolve = res,
                                                               .upstream = url,
                                                               .no_proxy = np,
                                                               .dns_resolve = fake_resolve,
                                                               .dns_resolve_data = &d});
    char buf[4096];
    assert_int_equal(request(&f, "CONNECT far.test:9000 HTTP/1.1\r\n\r\n", buf, sizeof(buf)), 502);
    assert_non_null(strstr(buf, "answered CONNECT far.test:9000 with 'HTTP/1.1 407 Nope'; it "
                                "wants credentials: [network] proxy = "
                                "http://USER:PASSWORD@HOST:PORT in config.ini"));
    expect_log(&f, "error CONNECT far.test:9000 via=127.0.0.1:", "it wants credentials");
    /* NTLM or Negotiate alone: devbox speaks Basic only */
    up->auth = "Proxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate\r\n";
    assert_int_equal(request(&f, "CONNECT far.test:9000 HTTP/1.1\r\n\r\n", buf, sizeof(buf)), 502);
    assert_non_null(strstr(buf, "it wants a login devbox cannot give (only Basic): run a local "
                                "proxy that logs in (cntlm, px) and name it in [network] proxy"));
    up->auth = "Proxy-Authenticate: NTLM\r\nProxy-Authenticate: Basic realm=\"corp\"\r\n";
    assert_int_equal(request(&f, "CONNECT far.test:9000 HTTP/1.1\r\n\r\n", buf, sizeof(buf)), 502);
    assert_non_null(strstr(buf, "with 'HTTP/1.1 407 Nope'; it wants credentials"));
    assert_int_equal(request(&f, "CONNECT other.test:9000 HTTP/1.1\r\n\r\n", buf, sizeof(buf)),
                     403);
    assert_int_equal(up->accepted, 3);
    /* sub.near.test is under no_proxy's near.test: looked up on the host, connected directly */
    char *req = dbx_xasprintf("CONNECT sub.near.test:%u HTTP/1.1\r\n\r\n", echo->port);
    assert_int_equal(request(&f, req, buf, sizeof(buf)), 200);
    free(req);
    req = dbx_xasprintf("CONNECT pinned.test:%u HTTP/1.1\r\n\r\n", echo->port);
    assert_int_equal(request(&f, req, buf, sizeof(buf)), 200);
    free(req);
    assert_int_equal(up->accepted, 3);
    char *want = dbx_xasprintf("allow CONNECT pinned.test:%u 127.0.0.1:%u", echo->port, echo->port);
    expect_log(&f, want, NULL);
    free(want);
    fixture_stop(&f);

    /* "*" in no_proxy: nothing goes through it */
    char *all[] = {"*", NULL};
    f = fixture_start_cfg((struct proxy_config){.allow = allow,
                                                .upstream = url,
                                                .no_proxy = all,
                                                .dns_resolve = fake_resolve,
                                                .dns_resolve_data = &d});
    req = dbx_xasprintf("CONNECT sub.near.test:%u HTTP/1.1\r\n\r\n", echo->port);
    assert_int_equal(request(&f, req, buf, sizeof(buf)), 200);
    free(req);
    assert_int_equal(up->accepted, 3);
    fixture_stop(&f);

    /* garbage from the upstream: a 502 saying so, nothing relayed */
    f = fixture_start_cfg((struct proxy_config){.allow = allow, .upstream = url});
    up->status = -1;
    assert_int_equal(request(&f, "CONNECT far.test:9000 HTTP/1.1\r\n\r\n", buf, sizeof(buf)), 502);
    assert_non_null(strstr(buf, "no answer to CONNECT far.test:9000: not an HTTP status line"));
    up->status = -2;
    assert_int_equal(request(&f, "CONNECT far.test:9000 HTTP/1.1\r\n\r\n", buf, sizeof(buf)), 502);
    assert_non_null(strstr(buf, "no answer to CONNECT far.test:9000: Message too long"));
    fixture_stop(&f);

    /* a proxy that cannot be reached; one that is not http: (its password never shown) */
    up->status = 0;
    free(url);
    url = dbx_xstrdup("http://127.0.0.1:1");
    f = fixture_start_cfg((struct proxy_config){.allow = allow, .upstream = url});
    assert_int_equal(request(&f, "CONNECT far.test:9000 HTTP/1.1\r\n\r\n", buf, sizeof(buf)), 502);
    assert_non_null(strstr(buf, "connect to the upstream proxy 127.0.0.1:1: Connection refused"));
    fixture_stop(&f);
    struct proxy *p = NULL;
    dbx_error *e = NULL;
    struct proxy_config bad = {.allow = allow, .upstream = "socks5://u:hunter2@h:1"};
    assert_true(proxy_start(&bad, &p, &e) < 0);
    assert_non_null(strstr(e->msg, "only an http:// proxy"));
    assert_null(strstr(e->msg, "hunter2"));
    dbx_error_free(&e);
    free(url);
    free(allow[1]);
    free(allow[2]);
    server_stop(up);
    server_stop(echo);
}

/* ---- setup ------------------------------------------------------------------------------- */

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* refused clients write into closed sockets */
    have_netns = proxy_test_enter_netns();
    if (!have_netns) fprintf(stderr, "no network namespace: the port 443 tests are skipped\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_connect_tunnel),
        cmocka_unit_test(test_connect_443_sni),
        cmocka_unit_test(test_http_keepalive),
        cmocka_unit_test(test_http_pinned),
        cmocka_unit_test(test_denied),
        cmocka_unit_test(test_bypass_table),
        cmocka_unit_test(test_dns_private),
        cmocka_unit_test(test_limits_and_stop),
        cmocka_unit_test(test_dns_coalesce),
        cmocka_unit_test(test_dns_retry),
        cmocka_unit_test(test_dns_expiry_and_cap),
        cmocka_unit_test(test_dns_stop_in_flight),
        cmocka_unit_test(test_dns_stopping),
        cmocka_unit_test(test_head_timeouts),
        cmocka_unit_test(test_hello_timeouts),
        cmocka_unit_test(test_no_pipe),
        cmocka_unit_test(test_log_ascii),
        cmocka_unit_test(test_upstream),
        cmocka_unit_test(test_upstream_refusals_and_direct),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

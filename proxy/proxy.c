/* proxy/proxy.c: the allowlist egress proxy (the contract is in proxy.h).
 *
 * One thread per client connection with non-blocking sockets: every wait is a poll() that
 * also watches the proxy's stop pipe, so proxy_stop can end them all; only
 * getaddrinfo cannot be interrupted.  Names are resolved only after they are allowed (so a
 * refused name never leaves the host as a DNS query), each resolved address is checked, and
 * the proxy connects to exactly the checked sockaddr: a second lookup (DNS rebinding) can
 * never change where the bytes go. */
#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "proxy-internal.h"

/* A request head (or ClientHello) may pause this long between bytes, and take this long in
 * all.  Under emulation and load (npm's ~200 connections, a TCG guest) a fixed 30 s from accept
 * fired hundreds of times in one `npm install`, each costing npm a 25-49 s retry; the total cap
 * stays against a slowloris client holding one of max_conns threads. */
#define HEAD_IDLE_MS (120u * 1000u)
#define HEAD_TOTAL_MS (300u * 1000u)
#define CONNECT_TIMEOUT_MS PROXY_CONNECT_TIMEOUT_MS
#define WRITE_TIMEOUT_MS PROXY_WRITE_TIMEOUT_MS
#define IDLE_TIMEOUT_MS PROXY_IDLE_TIMEOUT_MS
#define DRAIN_TIMEOUT_MS PROXY_DRAIN_TIMEOUT_MS
#define LINGER_MS                                                                                  \
    1000u /* reading what a refused client still sends, so the                                     \
             refusal is not lost to a reset */
#define CIN_CAP PROXY_CIN_CAP
#define UOUT_CAP (64u * 1024u)  /* bytes for the destination */
#define DOUT_CAP (256u * 1024u) /* bytes for the client (downloads: keep it large) */
#define MAX_ADDRS PROXY_DNS_MAX_ADDRS
#define MAX_RESOLVE 256u
#define DEFAULT_MAX_CONNS 256u
#define THREAD_STACK (256u * 1024u)
/* the upstream proxy's Proxy-Authorization line, for a "user:password" within its cap */
#define UP_AUTH_MAX (4u * (PROFILE_PROXY_USERINFO_MAX + 2) / 3 + 64u)

/* ---- small helpers ---------------------------------------------------------------------- */

void proxy_stamp(struct conn *c) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(c->when, sizeof(c->when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(c->when + n, sizeof(c->when) - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* host:port as a client would write it (IPv6 in brackets). */
void proxy_fmt_target(const struct policy_host *h, uint16_t port, char *out, size_t n) {
    bool v6 = h->is_addr && h->addr.family == AF_INET6;
    snprintf(out, n, v6 ? "[%s]:%u" : "%s:%u", h->name, (unsigned)port);
}

/* The allow entry that would let h:port through. */
static void fmt_rule(const struct policy_host *h, uint16_t port, char *out, size_t n) {
    if (port == 443 || port == 80)
        snprintf(out, n, "%s", h->name);
    else
        proxy_fmt_target(h, port, out, n);
}

/* Untrusted text in a log line: printable ASCII, no quotes.  The log is shown on the host's
 * terminal (`devbox logs --network`), and a Host header may carry any byte from 0x80 up: UTF-8
 * terminals act on C1 controls encoded in UTF-8 (C2 9B is CSI in xterm and VTE), and U+202E
 * reorders what follows; the log's own text is ASCII. */
static void clean(char *s) {
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') *p = '?';
}

void proxy_log(struct conn *c, const char *verdict, const char *reason) {
    if (c->p->log_fd < 0) return;
    char target[DBX_HOST_MAX + 16] = "-", addr[INET6_ADDRSTRLEN + 16] = "-";
    char reqs[32] = "";
    _cleanup_free_ char *why = NULL;
    if (c->have_target) proxy_fmt_target(&c->host, c->port, target, sizeof(target));
    if (c->connected) {
        struct policy_host h = {.is_addr = true, .addr = c->addr};
        dbx_addr_format(&c->addr, h.name);
        proxy_fmt_target(&h, c->aport, addr + (c->via ? 4 : 0), sizeof(addr) - 4);
        if (c->via) memcpy(addr, "via=", 4);
    }
    if (c->reqs > 1 || c->mitm) snprintf(reqs, sizeof(reqs), " reqs=%u", c->reqs);
    if (reason) {
        why = dbx_xasprintf(" reason=\"%s\"", reason);
        clean(why + 9);
        why[strlen(why) - 1] = '"';
    }
    _cleanup_free_ char *line = dbx_xasprintf(
        "%s %s %s %s %s up=%" PRIu64 " down=%" PRIu64 "%s%s\n", c->when, verdict,
        c->method ? c->method : "-", target, addr, c->up, c->down, reqs, why ? why : "");
    /* one write per line: O_APPEND keeps concurrent connections' lines whole */
    (void)!write(c->p->log_fd, line, strlen(line));
}

const char *proxy_method_name(enum proxy_http_method m) {
    static const char *const names[] = {"CONNECT", "GET",   "HEAD",   "POST",
                                        "PUT",     "PATCH", "DELETE", "OPTIONS"};
    return (unsigned)m < DBX_ARRAY_SIZE(names) ? names[m] : "-";
}

static const char *status_text(int status) {
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 408:
        return "Request Timeout";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 502:
        return "Bad Gateway";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* ---- waiting and I/O (every wait also watches the stop pipe) ---------------------------- */

int proxy_wait(struct conn *c, int fd, short events, uint64_t deadline) {
    for (;;) {
        struct pollfd pfd[2] = {{fd, events, 0}, {c->p->stop_pipe[0], POLLIN, 0}};
        uint64_t now = dbx_now_ms();
        int timeout = now >= deadline ? 0 : (int)(deadline - now);
        int r = poll(pfd, 2, timeout);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (pfd[1].revents) return -ECANCELED;
        if (r == 0) return -ETIMEDOUT;
        return 0;
    }
}

static ssize_t recv_some(struct conn *c, int fd, void *buf, size_t n, uint64_t deadline) {
    for (;;) {
        ssize_t k = recv(fd, buf, n, 0);
        if (k >= 0) return k;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return -errno;
        int r = proxy_wait(c, fd, POLLIN, deadline);
        if (r < 0) return r;
    }
}

int proxy_send_all(struct conn *c, int fd, const void *buf, size_t n, uint64_t deadline) {
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno != EAGAIN) return -errno;
        int r = proxy_wait(c, fd, POLLOUT, deadline);
        if (r < 0) return r;
    }
    return 0;
}

static void buf_alloc(struct buf *b, size_t cap) {
    if (!b->data) *b = (struct buf){.data = dbx_xmalloc(cap), .cap = cap};
}
static void buf_consume(struct buf *b, size_t n) {
    b->start += n;
    if (b->start == b->end) b->start = b->end = 0;
}
static void buf_compact(struct buf *b) {
    if (b->start == 0) return;
    memmove(b->data, b->data + b->start, buf_len(b));
    b->end -= b->start;
    b->start = 0;
}
static void buf_put(struct buf *b, const void *p, size_t n) {
    memcpy(b->data + b->end, p, n);
    b->end += n;
}
static void buf_puts(struct buf *b, const char *s) {
    buf_put(b, s, strlen(s));
}

/* ---- refusals --------------------------------------------------------------------------- */

/* Send what is left to the client, then read (and drop) what it still sends for a moment:
 * closing a socket with unread bytes resets it, and the client would lose the answer. */
void proxy_finish_client(struct conn *c) {
    shutdown(c->cfd, SHUT_WR);
    uint64_t deadline = dbx_now_ms() + LINGER_MS;
    uint8_t junk[4096];
    for (size_t total = 0; total < (1u << 20);) {
        ssize_t k = recv_some(c, c->cfd, junk, sizeof(junk), deadline);
        if (k <= 0) break;
        total += (size_t)k;
    }
}

/* phrase: the status line's reason phrase (free text, RFC 9112 4), NULL = the standard one. */
static void send_error(struct conn *c, int status, const char *phrase, const char *body) {
    _cleanup_free_ char *msg = dbx_xasprintf(
        "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
        "Connection: close\r\n\r\n%s",
        status, phrase ? phrase : status_text(status), strlen(body), body);
    (void)proxy_send_all(c, c->cfd, msg, strlen(msg), dbx_now_ms() + WRITE_TIMEOUT_MS);
}

#define PHRASE_MAX 200u

/* Answer the client with `status` and log `verdict` with `reason`; body NULL = "devbox: " +
 * reason.  A 403 carries the reason (up to its first ';') in its status line too: apt prints
 * only the status line, curl and the rest print the body. */
static void refuse(struct conn *c, int status, const char *verdict, const char *reason,
                   const char *body) {
    _cleanup_free_ char *shown = dbx_sanitize_printable(dbx_xstrdup(reason));
    _cleanup_free_ char *text = dbx_xasprintf("devbox: %s\n", shown);
    _cleanup_free_ char *phrase = NULL;
    if (status == 403) {
        size_t n = strcspn(shown, ";");
        phrase = dbx_xasprintf("Forbidden by devbox: %.*s", (int)(n < PHRASE_MAX ? n : PHRASE_MAX),
                               shown);
    }
    send_error(c, status, phrase, body ? body : text);
    proxy_log(c, verdict, reason);
    proxy_finish_client(c);
}

static void refuse_not_allowed(struct conn *c) {
    char target[DBX_HOST_MAX + 16], rule[DBX_HOST_MAX + 16];
    proxy_fmt_target(&c->host, c->port, target, sizeof(target));
    fmt_rule(&c->host, c->port, rule, sizeof(rule));
    _cleanup_free_ char *body = dbx_xasprintf(
        "devbox: %s is not in this box's network allow list; add `%s` to [network] allow in "
        "devbox.ini (then `devbox trust`)\n",
        target, rule);
    _cleanup_free_ char *reason = dbx_xasprintf(
        "%s is not in the allow list; to allow it add '%s' to [network] allow", target, rule);
    refuse(c, 403, "deny", reason, body);
}

/* A secret's placeholder in a request to a host the secret may not go to: an exfiltration
 * attempt (the box never holds the value, but it tried to send what stands for it). */
static char *secret_reason(const struct conn *c, int secret, const struct policy_host *h) {
    return dbx_xasprintf("secret %s placeholder sent to %s", c->p->secrets[secret].name, h->name);
}

/* ---- resolving and connecting ----------------------------------------------------------- */

static size_t lookup(struct conn *c, struct dbx_addr *out, int *ret_gai) {
    if (c->host.is_addr) {
        out[0] = c->host.addr;
        return 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < c->p->nres && n < MAX_ADDRS; i++)
        if (strcmp(c->p->res[i].name, c->host.name) == 0) out[n++] = c->p->res[i].addr;
    if (n > 0) return n;
    *ret_gai = proxy_dns_lookup(c->p->dns, c->host.name, out, MAX_ADDRS, &n);
    if (*ret_gai != 0) return 0;
    c->from_dns = true;
    return n;
}

static socklen_t to_sockaddr(const struct dbx_addr *a, uint16_t port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof(*ss));
    if (a->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        memcpy(&in->sin_addr, a->a, 4);
        return sizeof(*in);
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    memcpy(&in6->sin6_addr, a->a, 16);
    return sizeof(*in6);
}

/* Connect to exactly a:port; 0 with c->ufd and c->aport set, or -errno. */
static int connect_one(struct conn *c, const struct dbx_addr *a, uint16_t port) {
    struct sockaddr_storage ss;
    socklen_t sl = to_sockaddr(a, port, &ss);
    _cleanup_close_ int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        if (errno != EINPROGRESS) return -errno;
        int r = proxy_wait(c, fd, POLLOUT, dbx_now_ms() + CONNECT_TIMEOUT_MS);
        if (r < 0) return r;
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) return -errno;
        if (soerr) return -soerr;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->ufd = TAKE_FD(fd);
    c->aport = port;
    return 0;
}

/* The answer to a refused address a (class cls) host led to.  Always -EACCES. */
static int refuse_addr(struct conn *c, const struct dbx_addr *addr, const char *cls) {
    char a[INET6_ADDRSTRLEN];
    dbx_addr_format(addr, a);
    /* the class and the table row that refused it (docs/network.md lists them all) */
    const struct dbx_addr_range *row = dbx_addr_range_of(addr);
    bool same = !row || strcmp(row->what, cls) == 0;
    _cleanup_free_ char *what = dbx_xasprintf("%s resolves to %s, %s %s address%s%s", c->host.name,
                                              a, strchr("aeiouAEIOU", cls[0]) ? "an" : "a", cls,
                                              same ? "" : ": ", same ? "" : row->what);
    _cleanup_free_ char *reason =
        dbx_xasprintf("%s; to allow it add '%s' to [network] allow", what, a);
    _cleanup_free_ char *body = dbx_xasprintf(
        "devbox: %s; add `%s` to [network] allow in devbox.ini to allow it (then `devbox "
        "trust`)\n",
        what, a);
    refuse(c, 403, "deny", reason, body);
    return -EACCES;
}

/* Resolve (only now: the name is allowed), drop refused addresses, connect.  0, or the
 * client has been answered and logged. */
static int resolve_and_connect(struct conn *c) {
    struct dbx_addr addrs[MAX_ADDRS];
    int gai = 0;
    size_t n = lookup(c, addrs, &gai);
    if (n == 0) {
        _cleanup_free_ char *why = dbx_xasprintf("cannot resolve %s: %s", c->host.name,
                                                 gai ? gai_strerror(gai) : "no address");
        refuse(c, 502, "error", why, NULL);
        return -EHOSTUNREACH;
    }
    int last = -EHOSTUNREACH;
    bool tried = false; /* connect_one ran (its -EHOSTUNREACH is not a refusal) */
    const char *refused = NULL;
    struct dbx_addr refused_addr = {0};
    for (size_t i = 0; i < n; i++) {
        const char *cls = policy_addr_refused(c->p->pats, c->p->npats, &addrs[i]);
        if (cls) {
            if (!refused) refused = cls, refused_addr = addrs[i];
            continue;
        }
        tried = true;
        last = connect_one(c, &addrs[i], c->port);
        if (last == -ECANCELED) return last;
        if (last == 0) {
            c->connected = true;
            c->addr = addrs[i];
            return 0;
        }
    }
    /* a cached answer none of whose addresses works is stale: the next request asks again */
    if (c->from_dns && tried) proxy_dns_forget(c->p->dns, c->host.name);
    if (!tried && refused) return refuse_addr(c, &refused_addr, refused);
    _cleanup_free_ char *why = dbx_xasprintf("connect to %s: %s", c->host.name, strerror(-last));
    refuse(c, last == -ETIMEDOUT ? 504 : 502, "error", why, NULL);
    return last;
}

/* ---- the upstream proxy ----------------------------------------------------------------- */

/* Whether c's host goes through the upstream proxy: there is one, and neither no_proxy nor a
 * resolve override (which says where the host is) names the host. */
static bool via_upstream(const struct conn *c) {
    const struct proxy *p = c->p;
    if (!p->up) return false;
    for (size_t i = 0; i < p->nnop; i++)
        if (profile_no_proxy_match(&p->nop[i], c->host.is_addr, &c->host.addr, c->host.name))
            return false;
    for (size_t i = 0; !c->host.is_addr && i < p->nres; i++)
        if (strcmp(p->res[i].name, c->host.name) == 0) return false;
    return true;
}

/* Whether the answer head offers Basic in a Proxy-Authenticate header (or names no scheme at
 * all: then credentials are still the likely fix). */
static bool offers_basic(const char *head) {
    bool any = false;
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
        const char *v = l + 2;
        if (strncasecmp(v, "proxy-authenticate:", 19) != 0) continue;
        any = true;
        v += 19 + strspn(v + 19, " \t");
        if (strncasecmp(v, "basic", 5) == 0 && (v[5] == ' ' || v[5] == '\r' || v[5] == ','))
            return true;
    }
    return !any;
}

/* Whether a is one of this host's interfaces' addresses (true when that cannot be known: the
 * name is then judged). */
static bool host_has_addr(const struct dbx_addr *a) {
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) < 0) return true;
    bool mine = false;
    for (struct ifaddrs *i = ifs; i && !mine; i = i->ifa_next) {
        struct dbx_addr x;
        if (!i->ifa_addr) continue;
        socklen_t len = i->ifa_addr->sa_family == AF_INET    ? sizeof(struct sockaddr_in)
                        : i->ifa_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                             : 0;
        mine = len && dbx_addr_from_sockaddr(i->ifa_addr, len, &x) == 0 && x.family == a->family &&
               memcmp(x.a, a->a, a->family == AF_INET ? 4 : 16) == 0;
    }
    freeifaddrs(ifs);
    return mine;
}

/* Whether a (the upstream proxy's address) is this host: loopback, or one of its interfaces'
 * addresses (the answer kept a minute: a company proxy is asked for on every connection).
 * Link-local counts too (a proxy there reaches what the host's own link does). */
static bool on_this_host(struct proxy *p, const struct dbx_addr *a) {
    enum dbx_addr_class k = dbx_addr_classify(a);
    if (k == DBX_ADDR_LOOPBACK || k == DBX_ADDR_LINK_LOCAL || k == DBX_ADDR_UNSPECIFIED)
        return true;
    uint64_t now = dbx_now_ms();
    pthread_mutex_lock(&p->lock);
    bool known = now < p->here_until && p->here_addr.family == a->family &&
                 memcmp(p->here_addr.a, a->a, a->family == AF_INET ? 4 : 16) == 0;
    bool here = p->here;
    pthread_mutex_unlock(&p->lock);
    if (known) return here;
    here = host_has_addr(a);
    pthread_mutex_lock(&p->lock);
    p->here_addr = *a;
    p->here = here;
    p->here_until = now + PROXY_DNS_TTL_MS;
    pthread_mutex_unlock(&p->lock);
    return here;
}

/* Read the upstream proxy's answer head to a CONNECT, and nothing past it (what follows is the
 * destination's).  Its status code with its status line (sanitized) in line and whether it
 * offers Basic authentication in *basic, or -errno (-EPROTO: not an HTTP/1.x status line;
 * -EMSGSIZE: no end within PROXY_HTTP_MAX_HEAD). */
static int upstream_answer(struct conn *c, char *line, size_t n, bool *basic) {
    _cleanup_free_ char *buf = dbx_xmalloc(PROXY_HTTP_MAX_HEAD + 1);
    uint64_t deadline = dbx_now_ms() + PROXY_UPSTREAM_HEAD_MS;
    size_t have = 0;
    for (;;) {
        int r = proxy_wait(c, c->ufd, POLLIN, deadline);
        if (r < 0) return r;
        /* peek, then take only up to the head's end */
        ssize_t k = recv(c->ufd, buf + have, PROXY_HTTP_MAX_HEAD - have, MSG_PEEK);
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (k < 0) return -errno;
        if (k == 0) return -ECONNRESET;
        size_t from = have > 3 ? have - 3 : 0;
        const char *e = memmem(buf + from, have + (size_t)k - from, "\r\n\r\n", 4);
        size_t take = e ? (size_t)(e + 4 - (buf + have)) : (size_t)k;
        if (recv(c->ufd, buf + have, take, 0) != (ssize_t)take) return -EIO;
        have += take;
        if (e) break;
        if (have >= PROXY_HTTP_MAX_HEAD) return -EMSGSIZE;
    }
    buf[have] = '\0';
    *basic = offers_basic(buf);
    size_t ll = strcspn(buf, "\r\n");
    snprintf(line, n, "%.*s", (int)ll, buf);
    dbx_sanitize_printable(line);
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)buf[7]) || buf[8] != ' ' ||
        !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
        !isdigit((unsigned char)buf[11]) || (buf[12] != ' ' && buf[12] != '\r'))
        return -EPROTO;
    return (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
}

/* Connect to the upstream proxy and, for CONNECT, open the tunnel through it.  0, or the
 * client has been answered and logged. */
static int upstream_connect(struct conn *c, const struct proxy_http_req *req) {
    struct proxy *p = c->p;
    /* an address the box names is still the one connected to: judged here */
    const char *cls =
        c->host.is_addr ? policy_addr_refused(p->pats, p->npats, &c->host.addr) : NULL;
    if (cls) return refuse_addr(c, &c->host.addr, cls);
    _cleanup_free_ char *up = profile_allow_format(&p->upstream.host);
    struct dbx_addr addrs[MAX_ADDRS];
    size_t n = 0;
    bool dns = p->upstream.host.kind != PROFILE_ALLOW_ADDR;
    if (!dns) {
        addrs[n++] = p->upstream.host.addr;
    } else {
        int gai = proxy_dns_lookup(p->dns, p->upstream.host.name, addrs, MAX_ADDRS, &n);
        if (gai != 0) {
            _cleanup_free_ char *why =
                dbx_xasprintf("cannot resolve the upstream proxy %s: %s", up, gai_strerror(gai));
            refuse(c, 502, "error", why, NULL);
            return -EHOSTUNREACH;
        }
    }
    int r = -EHOSTUNREACH;
    for (size_t i = 0; i < n && r < 0; i++) {
        r = connect_one(c, &addrs[i], p->upstream.host.port);
        if (r == -ECANCELED) return r;
        if (r == 0) c->addr = addrs[i];
    }
    if (r < 0) {
        if (dns) proxy_dns_forget(p->dns, p->upstream.host.name);
        _cleanup_free_ char *why =
            dbx_xasprintf("connect to the upstream proxy %s: %s", up, strerror(-r));
        refuse(c, r == -ETIMEDOUT ? 504 : 502, "error", why, NULL);
        return r;
    }
    c->connected = c->via = true;
    if (!c->host.is_addr && on_this_host(p, &c->addr)) {
        /* A proxy on this host resolves names as the host does: a name that leads to the
         * host's loopback or services, or to the cloud's metadata address, would get there
         * through it.  So the host's answer is judged as on the direct path, every address of
         * it.  A name the host cannot resolve goes on: such a proxy cannot resolve it either,
         * or hands it to a parent proxy, which cannot reach this host's loopback. */
        struct dbx_addr mine[MAX_ADDRS];
        int gai = 0;
        size_t k = lookup(c, mine, &gai);
        for (size_t i = 0; i < k; i++) {
            const char *bad = policy_addr_refused(p->pats, p->npats, &mine[i]);
            if (bad) return refuse_addr(c, &mine[i], bad);
        }
    }
    if (req->method != PROXY_HTTP_CONNECT) return 0; /* put_head writes the absolute form */
    char target[DBX_HOST_MAX + 16];
    proxy_fmt_target(&c->host, c->port, target, sizeof(target));
    /* some filtering proxies refuse a CONNECT without a User-Agent */
    _cleanup_free_ char *head =
        dbx_xasprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: devbox\r\n%s\r\n", target,
                      target, p->up_auth ? p->up_auth : "");
    r = proxy_send_all(c, c->ufd, head, strlen(head), dbx_now_ms() + WRITE_TIMEOUT_MS);
    explicit_bzero(head, strlen(head));
    char line[PHRASE_MAX + 1] = "";
    bool basic = false;
    if (r == 0) r = upstream_answer(c, line, sizeof(line), &basic);
    if (r == -ECANCELED) return r;
    if (r < 0) {
        _cleanup_free_ char *why =
            dbx_xasprintf("upstream proxy %s: no answer to CONNECT %s: %s", up, target,
                          r == -EPROTO ? "not an HTTP status line" : strerror(-r));
        refuse(c, r == -ETIMEDOUT ? 504 : 502, "error", why, NULL);
        return r;
    }
    if (r / 100 != 2) {
        /* devbox speaks Basic only: for NTLM or Negotiate, a local cntlm or px does the rest */
        const char *hint = r != 407     ? ""
                           : !basic     ? "; it wants a login devbox cannot give (only "
                                          "Basic): run a local proxy that logs in "
                                          "(cntlm, px) and name it in [network] proxy"
                           : p->up_auth ? "; it refused the credentials of [network] proxy"
                                        : "; it wants credentials: [network] proxy = "
                                          "http://USER:PASSWORD@HOST:PORT in config.ini";
        _cleanup_free_ char *why = dbx_xasprintf(
            "upstream proxy %s answered CONNECT %s with '%s'%s", up, target, line, hint);
        refuse(c, 502, "error", why, NULL);
        return -EACCES;
    }
    return 0;
}

/* ---- the first request -------------------------------------------------------------------- */

/* Read more client bytes into cin while waiting for a head or a ClientHello: at most
 * head_idle_ms for the next byte and never past `until`.  > 0 bytes read, 0 the client closed,
 * -ETIMEDOUT with *why saying which limit, or another -errno. */
static ssize_t read_more(struct conn *c, uint64_t until, const char *what, char **why) {
    uint64_t now = dbx_now_ms(), idle = now + c->p->head_idle_ms;
    buf_compact(&c->cin);
    ssize_t k = recv_some(c, c->cfd, c->cin.data + c->cin.end, c->cin.cap - c->cin.end,
                          idle < until ? idle : until);
    if (k > 0) c->cin.end += (size_t)k;
    if (k == -ETIMEDOUT) {
        bool at_idle = idle < until;
        unsigned ms = at_idle ? c->p->head_idle_ms : c->p->head_total_ms;
        *why = dbx_xasprintf(ms % 1000u ? "%s: %s %u ms" : "%s: %s %u s", what,
                             at_idle ? "no byte for" : "not complete after",
                             ms % 1000u ? ms : ms / 1000u);
    }
    return k;
}

/* Read and parse a head from c->cin.  1 parsed, 0 the client went away, < 0 answered. */
static int read_head(struct conn *c, struct proxy_http_req *req) {
    uint64_t until = dbx_now_ms() + c->p->head_total_ms;
    for (;;) {
        _cleanup_error_ dbx_error *err = NULL;
        int r = proxy_http_parse(c->cin.data + c->cin.start, buf_len(&c->cin), req, &err);
        if (r > 0) return 1;
        if (r < 0) {
            refuse(c, proxy_http_status(r), "deny", err->msg, NULL);
            return r;
        }
        _cleanup_free_ char *why = NULL;
        ssize_t k = read_more(c, until, "request head", &why);
        if (k == 0 && buf_len(&c->cin) == 0) return 0;
        if (k == 0) {
            proxy_log(c, "deny", "client closed inside a request head");
            return 0;
        }
        if (k == -ETIMEDOUT) {
            refuse(c, 408, "deny", why, NULL);
            return (int)k;
        }
        if (k < 0) return (int)k;
    }
}

/* The head for the destination: origin-form target (absolute through the upstream proxy, with
 * the user's credentials: only GET, HEAD and POST get here, never a TRACE that would have the
 * proxy echo them back), our Host and Connection, no hop-by-hop headers and none of the box's
 * Proxy-* ones. */
static void put_head(struct conn *c, const struct proxy_http_req *req) {
    static const char *const drop[] = {"host", "connection", "keep-alive", "upgrade"};
    const uint8_t *h = c->cin.data + c->cin.start;
    char target[DBX_HOST_MAX + 16];
    proxy_fmt_target(&req->host, req->port, target, sizeof(target));
    if (req->port == 80) *strrchr(target, ':') = '\0';
    struct buf *o = &c->uout;
    buf_puts(o, proxy_method_name(req->method));
    buf_puts(o, " ");
    if (c->via) { /* the upstream proxy takes the absolute form */
        buf_puts(o, "http://");
        buf_puts(o, target);
    }
    if (req->path.len == 0 || h[req->path.off] != '/') buf_puts(o, "/");
    buf_put(o, h + req->path.off, req->path.len);
    buf_puts(o, req->minor ? " HTTP/1.1\r\nHost: " : " HTTP/1.0\r\nHost: ");
    buf_puts(o, target);
    buf_puts(o, "\r\n");
    if (c->via && c->p->up_auth) buf_puts(o, c->p->up_auth);
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const uint8_t *name = h + req->headers[i].name.off;
        size_t nl = req->headers[i].name.len;
        bool skip = nl >= 6 && strncasecmp((const char *)name, "proxy-", 6) == 0;
        for (size_t k = 0; k < DBX_ARRAY_SIZE(drop) && !skip; k++)
            skip = strlen(drop[k]) == nl && strncasecmp((const char *)name, drop[k], nl) == 0;
        if (skip) continue;
        buf_put(o, name, nl);
        buf_puts(o, ": ");
        buf_put(o, h + req->headers[i].value.off, req->headers[i].value.len);
        buf_puts(o, "\r\n");
    }
    buf_puts(o, req->keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
}

/* The rewritten head is at most the original plus the added lines (the absolute form's
 * target and the upstream's credentials included). */
#define HEAD_SLACK (2u * DBX_HOST_MAX + 128u + UP_AUTH_MAX)

/* ---- plain http: later requests on the connection ------------------------------------- */

static bool same_target(const struct conn *c, const struct proxy_http_req *req) {
    return req->port == c->port && req->host.is_addr == c->host.is_addr &&
           strcmp(req->host.name, c->host.name) == 0;
}

static void set_deny(struct conn *c, int status, char *reason, char *body) {
    c->deny_status = status;
    c->deny_reason = reason;
    c->deny_body = body;
}

/* Move parsed client bytes from cin to uout.  -1 once a request was refused (set_deny). */
static int http_process(struct conn *c) {
    while (buf_len(&c->cin) > 0) {
        size_t room = c->uout.cap - c->uout.end;
        if (!c->body.done) {
            _cleanup_error_ dbx_error *err = NULL;
            size_t n = buf_len(&c->cin) < room ? buf_len(&c->cin) : room;
            if (n == 0) return 0;
            ssize_t k = proxy_body_scan(&c->body, c->cin.data + c->cin.start, n, &err);
            if (k < 0) {
                set_deny(c, 400, dbx_xstrdup(err->msg), NULL);
                return -1;
            }
            buf_put(&c->uout, c->cin.data + c->cin.start, (size_t)k);
            buf_consume(&c->cin, (size_t)k);
            continue;
        }
        if (room < PROXY_HTTP_MAX_HEAD + HEAD_SLACK) return 0; /* wait for uout to drain */
        struct proxy_http_req req;
        _cleanup_error_ dbx_error *err = NULL;
        int r = proxy_http_parse(c->cin.data + c->cin.start, buf_len(&c->cin), &req, &err);
        if (r == 0) {
            buf_compact(&c->cin);
            return 0;
        }
        if (r < 0) {
            set_deny(c, proxy_http_status(r), dbx_xstrdup(err->msg), NULL);
            return -1;
        }
        if (req.method == PROXY_HTTP_CONNECT || !same_target(c, &req)) {
            char want[DBX_HOST_MAX + 16], got[DBX_HOST_MAX + 16];
            proxy_fmt_target(&c->host, c->port, want, sizeof(want));
            proxy_fmt_target(&req.host, req.port, got, sizeof(got));
            set_deny(c, 403, dbx_xasprintf("connection pinned to %s, request for %s", want, got),
                     dbx_xasprintf("devbox: this proxy connection is pinned to %s; open a new "
                                   "connection for %s\n",
                                   want, got));
            return -1;
        }
        int bad = proxy_secret_misplaced(c->cin.data + c->cin.start, req.head_len, c->p->secrets,
                                         c->p->nsecrets, &req.host, req.port);
        if (bad >= 0) {
            set_deny(c, 403, secret_reason(c, bad, &req.host), NULL);
            return -1;
        }
        put_head(c, &req);
        buf_consume(&c->cin, req.head_len);
        proxy_body_init(&c->body, &req);
        c->reqs++;
    }
    return 0;
}

/* ---- the relay ---------------------------------------------------------------------------- */

struct relay {
    bool http; /* parse client bytes as requests (else a tunnel) */
    bool c_eof, u_eof, up_shut, down_shut, draining;
};

/* One direction's send: 0, or -errno to end the connection. */
static int flush_some(int fd, struct buf *b, uint64_t *count) {
    ssize_t k = send(fd, b->data + b->start, buf_len(b), MSG_NOSIGNAL);
    if (k < 0) return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    *count += (size_t)k;
    buf_consume(b, (size_t)k);
    return 0;
}

/* Read client bytes: into cin (http) or straight into uout (tunnel). */
static int read_client(struct conn *c, struct relay *st) {
    struct buf *b = st->http ? &c->cin : &c->uout;
    if (st->http) buf_compact(b);
    ssize_t k = recv(c->cfd, b->data + b->end, b->cap - b->end, 0);
    if (k < 0) return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    if (k == 0) st->c_eof = true;
    b->end += (size_t)k;
    return 0;
}

/* ---- destination -> client ---- */

static size_t down_pending(const struct conn *c) {
    return c->dpipe[0] >= 0 ? c->dpending : buf_len(&c->dout);
}

static bool down_room(const struct conn *c) {
    return c->dpipe[0] >= 0 ? c->dpending < DOUT_CAP : buf_len(&c->dout) == 0;
}

static int read_upstream(struct conn *c, struct relay *st) {
    ssize_t k;
    if (c->dpipe[0] >= 0)
        k = splice(c->ufd, NULL, c->dpipe[1], NULL, DOUT_CAP - c->dpending,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    else
        k = recv(c->ufd, c->dout.data + c->dout.end, c->dout.cap - c->dout.end, 0);
    if (k < 0) return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    if (k == 0) st->u_eof = true;
    if (c->dpipe[0] >= 0)
        c->dpending += (size_t)k;
    else
        c->dout.end += (size_t)k;
    return 0;
}

static int flush_down(struct conn *c) {
    if (c->dpipe[0] < 0) return flush_some(c->cfd, &c->dout, &c->down);
    ssize_t k =
        splice(c->dpipe[0], NULL, c->cfd, NULL, c->dpending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (k < 0) return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    c->dpending -= (size_t)k;
    c->down += (size_t)k;
    return 0;
}

/* The splice pipe, sized to DOUT_CAP when the per-user pipe budget allows. */
static void down_init(struct conn *c) {
    if (pipe2(c->dpipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        /* out of fds (256 connections hold 4 each): copy through user space instead */
        c->dpipe[0] = c->dpipe[1] = -EBADF;
        buf_alloc(&c->dout, DOUT_CAP);
        return;
    }
    (void)fcntl(c->dpipe[1], F_SETPIPE_SZ, (int)DOUT_CAP);
}

/* Half-close each side once its direction is finished. */
static void shut_finished(struct conn *c, struct relay *st) {
    bool up_done =
        buf_len(&c->uout) == 0 &&
        (st->draining || (st->c_eof && (!st->http || buf_len(&c->cin) == 0 || c->body.done)));
    if (up_done && !st->up_shut) {
        shutdown(c->ufd, SHUT_WR);
        st->up_shut = true;
    }
    if (st->u_eof && down_pending(c) == 0 && !st->down_shut) {
        if (!st->draining) shutdown(c->cfd, SHUT_WR);
        st->down_shut = true;
    }
}

static void relay(struct conn *c, bool http) {
    struct relay st = {.http = http};
    uint64_t drain_until = 0;
    for (;;) {
        if (http && !st.draining && http_process(c) < 0) {
            st.draining = true;
            drain_until = dbx_now_ms() + DRAIN_TIMEOUT_MS;
        }
        shut_finished(c, &st);
        if (st.up_shut && st.down_shut) return;
        struct buf *cb = http ? &c->cin : &c->uout;
        bool want_c = !st.c_eof && !st.draining &&
                      (http ? cb->end < cb->cap || cb->start > 0 : buf_len(cb) == 0);
        bool want_u = !st.u_eof && down_room(c);
        short cev = (short)((want_c ? POLLIN : 0) | (down_pending(c) ? POLLOUT : 0));
        short uev = (short)((want_u ? POLLIN : 0) | (buf_len(&c->uout) ? POLLOUT : 0));
        struct pollfd pfd[3] = {{cev ? c->cfd : -1, cev, 0},
                                {uev ? c->ufd : -1, uev, 0},
                                {c->p->stop_pipe[0], POLLIN, 0}};
        uint64_t now = dbx_now_ms();
        int timeout = !st.draining        ? (int)IDLE_TIMEOUT_MS
                      : drain_until > now ? (int)(drain_until - now)
                                          : 0;
        int r = poll(pfd, 3, timeout);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || pfd[2].revents) return;
        if ((pfd[0].revents | pfd[1].revents) & (POLLERR | POLLNVAL)) return;
        if ((pfd[0].revents & (POLLOUT | POLLHUP)) && down_pending(c) && flush_down(c) < 0) return;
        if ((pfd[1].revents & (POLLOUT | POLLHUP)) && buf_len(&c->uout) &&
            flush_some(c->ufd, &c->uout, &c->up) < 0)
            return;
        if ((pfd[0].revents & (POLLIN | POLLHUP)) && want_c && read_client(c, &st) < 0) return;
        if ((pfd[1].revents & (POLLIN | POLLHUP)) && want_u && read_upstream(c, &st) < 0) return;
        if (st.draining && st.u_eof && down_pending(c) == 0) return;
    }
}

/* ---- CONNECT ------------------------------------------------------------------------------ */

/* Port 443: the ClientHello's server_name must be the CONNECT host.  0 or refused (logged). */
int proxy_check_hello(struct conn *c) {
    uint64_t until = dbx_now_ms() + c->p->head_total_ms;
    char sni[DBX_HOST_MAX + 1];
    for (;;) {
        _cleanup_error_ dbx_error *err = NULL;
        int r = proxy_tls_sni(c->cin.data + c->cin.start, buf_len(&c->cin), sni, &err);
        if (r < 0) {
            proxy_log(c, "deny", err->msg);
            return r;
        }
        if (r > 0) break;
        _cleanup_free_ char *why = NULL;
        ssize_t k = read_more(c, until, "TLS ClientHello", &why);
        if (k <= 0) {
            if (!why)
                why = dbx_xstrdup(k == 0            ? "client closed before its ClientHello"
                                  : k == -ECANCELED ? "proxy stopped"
                                                    : strerror((int)-k));
            proxy_log(c, "deny", why);
            return -EPROTO;
        }
    }
    /* an IP literal host: a hello names no server (RFC 6066 3), or names that address */
    if (sni[0] == '\0' ? !c->host.is_addr : strcmp(sni, c->host.name) != 0) {
        _cleanup_free_ char *why = dbx_xasprintf("TLS server_name '%s' differs from the CONNECT "
                                                 "host",
                                                 sni);
        proxy_log(c, "deny", why);
        return -EACCES;
    }
    return 0;
}

static void serve_connect(struct conn *c) {
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    if (proxy_send_all(c, c->cfd, ok, sizeof(ok) - 1, dbx_now_ms() + WRITE_TIMEOUT_MS) < 0) {
        proxy_log(c, "error", "client went away");
        return;
    }
    if (c->port == 443 && proxy_check_hello(c) < 0) return;
    if (proxy_mitm_wanted(c->p, &c->host, c->port)) {
        proxy_mitm_serve(c);
        return;
    }
    /* whatever the client sent after the head (the ClientHello) goes first */
    buf_put(&c->uout, c->cin.data + c->cin.start, buf_len(&c->cin));
    buf_consume(&c->cin, buf_len(&c->cin));
    relay(c, false);
    proxy_log(c, "allow", NULL);
}

static void serve_http(struct conn *c, const struct proxy_http_req *req) {
    put_head(c, req);
    buf_consume(&c->cin, req->head_len);
    proxy_body_init(&c->body, req);
    c->reqs = 1;
    relay(c, true);
    proxy_log(c, "allow", NULL);
    if (c->deny_status) {
        proxy_stamp(c);
        refuse(c, c->deny_status, "deny", c->deny_reason, c->deny_body);
    }
}

static void conn_run(struct conn *c) {
    buf_alloc(&c->cin, CIN_CAP);
    proxy_stamp(c);
    struct proxy_http_req req;
    if (read_head(c, &req) <= 0) return;
    proxy_stamp(c);
    c->method = proxy_method_name(req.method);
    c->host = req.host;
    c->port = req.port;
    c->have_target = true;
    int bad = proxy_secret_misplaced(c->cin.data + c->cin.start, req.head_len, c->p->secrets,
                                     c->p->nsecrets, &req.host, req.port);
    if (bad >= 0) {
        _cleanup_free_ char *why = secret_reason(c, bad, &req.host);
        refuse(c, 403, "deny", why, NULL);
        return;
    }
    if (!policy_allowed(c->p->pats, c->p->npats, &req.host, req.port)) {
        refuse_not_allowed(c);
        return;
    }
    if ((via_upstream(c) ? upstream_connect(c, &req) : resolve_and_connect(c)) < 0) return;
    buf_alloc(&c->uout, UOUT_CAP);
    down_init(c);
    if (req.method == PROXY_HTTP_CONNECT) {
        buf_consume(&c->cin, req.head_len);
        serve_connect(c);
    } else {
        serve_http(c, &req);
    }
}

static void conn_free(struct conn *c) {
    if (!c) return;
    if (c->cfd >= 0) close(c->cfd);
    if (c->ufd >= 0) close(c->ufd);
    free(c->cin.data);
    free(c->uout.data);
    free(c->dout.data);
    if (c->dpipe[0] >= 0) close(c->dpipe[0]);
    if (c->dpipe[1] >= 0) close(c->dpipe[1]);
    free(c->deny_reason);
    free(c->deny_body);
    free(c);
}

static void *conn_main(void *arg) {
    struct conn *c = arg;
    conn_run(c);
    /* close the sockets now: the client sees the end without waiting for a join */
    if (c->cfd >= 0) close(TAKE_FD(c->cfd));
    if (c->ufd >= 0) close(TAKE_FD(c->ufd));
    pthread_mutex_lock(&c->p->lock);
    c->done = true;
    c->p->active--;
    pthread_mutex_unlock(&c->p->lock);
    /* This thread's OpenSSL state (its random generators, made by the first leaf certificate it
     * signed) is freed here, explicitly.  Left to OpenSSL's thread-exit handling it was reported
     * leaked at the supervisor's exit (LeakSanitizer, t-secrets) once nothing on the main thread
     * used OpenSSL first: the project id's SHA-256 is devbox's own since the lean client. */
    OPENSSL_thread_stop();
    return NULL;
}

/* ---- the proxy object ------------------------------------------------------------------- */

static int parse_resolve(const char *s, struct resolve_entry *ret, dbx_error **err) {
    const char *colon = strchr(s, ':');
    struct policy_host h;
    const char *why = "expected NAME:ADDRESS";
    if (colon && policy_host_parse(s, (size_t)(colon - s), &h, &why) == 0 && !h.is_addr) {
        const char *a = colon + 1;
        size_t len = strlen(a);
        _cleanup_free_ char *br = a[0] == '[' || !strchr(a, ':') ? NULL : dbx_xasprintf("[%s]", a);
        struct policy_host ah;
        if (policy_host_parse(br ? br : a, br ? len + 2 : len, &ah, &why) == 0 && ah.is_addr) {
            memcpy(ret->name, h.name, sizeof(ret->name));
            ret->addr = ah.addr;
            return 0;
        }
        why = "not an IP address";
    }
    return dbx_error_setx(err, EINVAL, "resolve override '%s': %s", s, why);
}

static struct proxy *proxy_new(void) {
    struct proxy *p = dbx_xcalloc(1, sizeof(*p));
    p->stop_pipe[0] = p->stop_pipe[1] = -EBADF;
    p->log_fd = -1;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

static void proxy_free(struct proxy *p) {
    if (!p) return;
    if (p->stop_pipe[0] >= 0) close(p->stop_pipe[0]);
    if (p->stop_pipe[1] >= 0) close(p->stop_pipe[1]);
    pthread_mutex_destroy(&p->lock);
    proxy_dns_free(p->dns);
    proxy_mitm_free(p->mitm);
    for (size_t i = 0; i < p->nsecrets; i++) {
        free((char *)p->secrets[i].name);
        free((char *)p->secrets[i].placeholder);
        dbx_strv_free((char **)p->secrets[i].hosts);
        free((char *)p->secrets[i].header);
    }
    free(p->secrets);
    free(p->pats);
    free(p->res);
    profile_proxy_clear(&p->upstream);
    if (p->up_auth) explicit_bzero(p->up_auth, strlen(p->up_auth));
    free(p->up_auth);
    free(p->nop);
    free(p);
}
static void proxy_freep(struct proxy **p) {
    proxy_free(*p);
}

/* The secrets' strings copied, except the values (the caller's protected memory); then the
 * interception state. */
static int copy_secrets(struct proxy *p, const struct proxy_config *cfg, dbx_error **err) {
    if (cfg->nsecrets == 0) return 0;
    int r = proxy_secrets_check(cfg->secrets, cfg->nsecrets, err);
    if (r < 0) return r;
    p->secrets = dbx_xcalloc(cfg->nsecrets, sizeof(*p->secrets));
    for (; p->nsecrets < cfg->nsecrets; p->nsecrets++) {
        const struct proxy_secret *s = &cfg->secrets[p->nsecrets];
        char **hosts = NULL;
        for (size_t i = 0; s->hosts[i]; i++)
            hosts = dbx_strv_push(hosts, s->hosts[i]);
        p->secrets[p->nsecrets] = (struct proxy_secret){
            .name = dbx_xstrdup(s->name),
            .placeholder = dbx_xstrdup(s->placeholder),
            .value = s->value,
            .hosts = hosts,
            .header = s->header ? dbx_xstrdup(s->header) : NULL,
        };
    }
    return proxy_mitm_new(cfg, &p->mitm, err);
}

/* The upstream proxy, its Proxy-Authorization line and the no_proxy entries. */
static int upstream_setup(struct proxy *p, const struct proxy_config *cfg, dbx_error **err) {
    const char *why = NULL;
    size_t n = dbx_strv_len(cfg->no_proxy);
    if (!cfg->upstream) return 0;
    if (profile_proxy_parse(cfg->upstream, &p->upstream, &why) < 0) {
        _cleanup_free_ char *shown = profile_proxy_redact(cfg->upstream);
        return dbx_error_setx(err, EINVAL, "upstream proxy '%s': %s", shown, why);
    }
    p->up = true;
    if (p->upstream.userinfo) {
        size_t ul = strlen(p->upstream.userinfo);
        if (ul > PROFILE_PROXY_USERINFO_MAX) /* parse caps it; the buffer below relies on it */
            return dbx_error_setx(err, E2BIG,
                                  "upstream proxy: user and password longer than %u bytes",
                                  PROFILE_PROXY_USERINFO_MAX);
        unsigned char b64[UP_AUTH_MAX];
        EVP_EncodeBlock(b64, (const unsigned char *)p->upstream.userinfo, (int)ul);
        p->up_auth = dbx_xasprintf("Proxy-Authorization: Basic %s\r\n", b64);
        explicit_bzero(b64, sizeof(b64));
        /* the header is the one copy kept */
        explicit_bzero(p->upstream.userinfo, ul);
        free(TAKE_PTR(p->upstream.userinfo));
    }
    if (n > PROFILE_MAX_LIST)
        return dbx_error_setx(err, E2BIG, "no_proxy: %zu entries, more than %u", n,
                              PROFILE_MAX_LIST);
    p->nop = dbx_xcalloc(n + 1, sizeof(*p->nop));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(cfg->no_proxy[i], "*") == 0) {
            p->up = false; /* every host directly */
            continue;
        }
        if (profile_allow_parse(cfg->no_proxy[i], &p->nop[p->nnop], &why) < 0 ||
            p->nop[p->nnop].kind == PROFILE_ALLOW_SUFFIX || p->nop[p->nnop].port)
            return dbx_error_setx(err, EINVAL, "no_proxy: '%s': %s", cfg->no_proxy[i],
                                  why ? why : "not a host name or IP address");
        p->nnop++;
    }
    return 0;
}

int proxy_start(const struct proxy_config *cfg, struct proxy **ret, dbx_error **err) {
    _cleanup_(proxy_freep) struct proxy *p = proxy_new();
    size_t n = dbx_strv_len(cfg->allow), nres = dbx_strv_len(cfg->resolve);
    if (n > PROFILE_MAX_LIST)
        return dbx_error_setx(err, E2BIG, "network.allow: %zu entries, more than %u", n,
                              PROFILE_MAX_LIST);
    if (nres > MAX_RESOLVE)
        return dbx_error_setx(err, E2BIG, "%zu resolve overrides, more than %u", nres, MAX_RESOLVE);
    p->pats = dbx_xcalloc(n + 1, sizeof(*p->pats));
    for (; p->npats < n; p->npats++) {
        int r = policy_pattern_parse(cfg->allow[p->npats], &p->pats[p->npats], err);
        if (r < 0) return r;
    }
    p->res = dbx_xcalloc(nres + 1, sizeof(*p->res));
    for (; p->nres < nres; p->nres++) {
        int r = parse_resolve(cfg->resolve[p->nres], &p->res[p->nres], err);
        if (r < 0) return r;
    }
    int r = copy_secrets(p, cfg, err);
    if (r < 0) return r;
    r = upstream_setup(p, cfg, err);
    if (r < 0) return r;
    if (pipe2(p->stop_pipe, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    struct proxy_dns_config dc = {.ttl_ms = cfg->dns_ttl_ms,
                                  .cache_max = cfg->dns_cache_max,
                                  .retry_ms = cfg->dns_retry_ms,
                                  .resolve = cfg->dns_resolve,
                                  .resolve_data = cfg->dns_resolve_data,
                                  .stop_fd = p->stop_pipe[0]};
    p->dns = proxy_dns_new(&dc);
    p->log_fd = cfg->log_fd;
    p->max_conns = cfg->max_conns ? cfg->max_conns : DEFAULT_MAX_CONNS;
    p->head_idle_ms = cfg->head_idle_ms ? cfg->head_idle_ms : HEAD_IDLE_MS;
    p->head_total_ms = cfg->head_total_ms ? cfg->head_total_ms : HEAD_TOTAL_MS;
    *ret = TAKE_PTR(p);
    return 0;
}

/* Join finished threads (p->lock held). */
static void reap(struct proxy *p, bool all) {
    for (struct conn **pc = &p->conns; *pc;) {
        struct conn *c = *pc;
        if (!all && !c->done) {
            pc = &c->next;
            continue;
        }
        pthread_join(c->tid, NULL);
        *pc = c->next;
        conn_free(c);
    }
}

static int start_thread(struct conn *c, dbx_error **err) {
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    /* the supervisor's signals stay with the supervisor's threads */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&c->tid, &attr, conn_main, c);
    if (r == EINVAL) /* static TLS of the program larger than our stack: take the default */
        r = pthread_create(&c->tid, NULL, conn_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (r != 0) return dbx_error_set(err, r, "proxy: start a connection thread");
    return 0;
}

int proxy_serve(struct proxy *p, int fd, dbx_error **err) {
    _cleanup_close_ int cfd = fd;
    if (dbx_set_nonblock(cfd, true) < 0 || dbx_set_cloexec(cfd, true) < 0)
        return dbx_error_set(err, errno, "proxy: client socket");
    pthread_mutex_lock(&p->lock);
    reap(p, false);
    int r = 0;
    if (p->stopping) {
        r = dbx_error_setx(err, ESHUTDOWN, "proxy: stopping");
    } else if (p->active >= p->max_conns) {
        r = dbx_error_setx(err, EAGAIN, "proxy: more than %u connections", p->max_conns);
    } else {
        struct conn *c = dbx_xcalloc(1, sizeof(*c));
        *c = (struct conn){.p = p, .cfd = TAKE_FD(cfd), .ufd = -EBADF, .dpipe = {-EBADF, -EBADF}};
        r = start_thread(c, err);
        if (r < 0) {
            conn_free(c);
        } else {
            c->next = p->conns;
            p->conns = c;
            p->active++;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

void proxy_stop(struct proxy *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_mutex_unlock(&p->lock);
    /* never read: the pipe stays readable and wakes every poll for good */
    (void)!write(p->stop_pipe[1], "x", 1);
    /* no thread adds or removes connections once stopping is set */
    reap(p, true);
    proxy_free(p);
}

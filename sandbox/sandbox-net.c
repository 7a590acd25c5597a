/* sandbox/sandbox-net.c: the supervisor's network side: socket sessions on the agent channel,
 * port forwards (a listener on the host's loopback per forward, each connection carried to
 * 127.0.0.1:PORT in the guest) and the egress proxy's connections (each guest connection to
 * the init's proxy listener becomes one socketpair handed to proxy/).
 *
 * The guest is hostile: every frame is checked, a session whose peer overruns its window or
 * sends garbage is closed alone, and the number of sessions is capped. */
#define _GNU_SOURCE
#include "sandbox-internal.h"
#include "../proxy/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define NET_LOG_CAP (8u << 20) /* the network log is cut to nothing at start above this */

enum sock_state { S_OPENING, S_OPEN };

struct sock {
    uint32_t sid;
    int fd;
    enum sock_state state;
    bool guest_eof; /* the guest sent EOF: shut our write side once `out` is drained */
    bool fd_eof;    /* our side reached EOF (sent to the guest) */
    bool shut_done;
    uint32_t window; /* bytes we may still send to the guest */
    struct dbx_buf out;
};

struct fwd {
    uint16_t host, guest;
    int lfd;
    int lfd6; /* [::1] beside the default 127.0.0.1 (listen_localhost), or -1 */
};

struct net {
    struct dbx_buf *agent_out;
    struct sock *socks[NET_MAX_SOCKS];
    size_t nsocks;
    struct fwd fwds[NET_MAX_FWDS];
    size_t nfwds;
    uint32_t next_sid;
    struct proxy *proxy;
    int log_fd;
    uint64_t log_checked_ms;
    int log_rd;    /* the same file read back for its denials (net_on_deny), or -1 */
    off_t log_off; /* how far it was read */
    net_deny_fn *deny_fn;
    void *deny_data;
    char *listen_addr;
    bool guest_ready;
    char *warning; /* net_warning's, or NULL */
};

static void send_frame(struct net *n, uint8_t type, uint32_t sid, const void *p, size_t len) {
    dbx_frame_put(n->agent_out, type, sid, p, len);
}

static void send_error(struct net *n, uint32_t sid, const char *msg) {
    struct dbx_buf b = {0};
    dbx_error_msg_encode(&b, DBX_ERR_FAILED, msg);
    send_frame(n, DBX_MSG_ERROR, sid, b.data, b.len);
    dbx_buf_free(&b);
}

static struct sock *sock_find(struct net *n, uint32_t sid, size_t *ret_i) {
    for (size_t i = 0; i < n->nsocks; i++)
        if (n->socks[i]->sid == sid) {
            if (ret_i) *ret_i = i;
            return n->socks[i];
        }
    return NULL;
}

static struct sock *sock_add(struct net *n, uint32_t sid, int fd, enum sock_state st) {
    struct sock *k = dbx_xcalloc(1, sizeof(*k));
    *k = (struct sock){.sid = sid, .fd = fd, .state = st, .window = DBX_WINDOW};
    dbx_set_nonblock(fd, true);
    n->socks[n->nsocks++] = k;
    return k;
}

static void sock_free(struct net *n, size_t i) {
    struct sock *k = n->socks[i];
    close(k->fd);
    dbx_buf_free(&k->out);
    free(k);
    n->socks[i] = n->socks[--n->nsocks];
}

/* End a session from our side: tell the guest, free it. */
static void sock_close(struct net *n, size_t i) {
    send_frame(n, DBX_MSG_SOCK_CLOSE, n->socks[i]->sid, NULL, 0);
    sock_free(n, i);
}

/* ---- setup ------------------------------------------------------------------------------ */

static int open_log(const char *state_dir, dbx_error **err) {
    _cleanup_free_ char *path = dbx_xasprintf("%s/network.log", state_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", path);
    dbx_log_cut(fd, NET_LOG_CAP);
    return fd;
}

/* One decision line of the proxy (proxy_log: "WHEN VERDICT METHOD TARGET ADDR up=N down=N
 * [reqs=N] [reason="..."]"): a deny goes to the hook.  The reason was cleaned by the proxy
 * (printable ASCII, no quotes), so its closing quote is the line's last byte. */
static void deny_line(struct net *n, char *line) {
    char *sp = NULL, *tok[5] = {0};
    char *reason = strstr(line, " reason=\"");
    if (reason) {
        *reason = 0;
        reason += 9;
        size_t l = strlen(reason);
        if (l && reason[l - 1] == '"') reason[l - 1] = 0;
    }
    tok[0] = strtok_r(line, " ", &sp);
    for (int i = 1; i < 5 && tok[i - 1]; i++)
        tok[i] = strtok_r(NULL, " ", &sp);
    if (tok[3] && strcmp(tok[1], "deny") == 0) n->deny_fn(n->deny_data, tok[3], reason);
}

/* The proxy's threads append to network.log; the loop reads what they appended since the last
 * round (a bounded chunk a round; the cut at 8 MiB, cap_log, starts it again at 0). */
static void read_denials(struct net *n) {
    if (n->log_rd < 0 || !n->deny_fn) return;
    struct stat st;
    if (fstat(n->log_rd, &st) < 0) return;
    if (st.st_size < n->log_off) n->log_off = 0;
    char buf[65536];
    ssize_t got = pread(n->log_rd, buf, sizeof(buf) - 1, n->log_off);
    if (got <= 0) return;
    char *end = memrchr(buf, '\n', (size_t)got);
    if (!end) { /* a line longer than the buffer: not one proxy_log writes; skip it */
        n->log_off += got;
        return;
    }
    *end = 0;
    n->log_off += end + 1 - buf;
    char *sp = NULL;
    for (char *l = strtok_r(buf, "\n", &sp); l; l = strtok_r(NULL, "\n", &sp))
        deny_line(n, l);
}

void net_on_deny(struct net *n, net_deny_fn *fn, void *data) {
    if (!n || n->log_fd < 0 || n->log_rd >= 0) return;
    _cleanup_free_ char *path = dbx_xasprintf("/proc/self/fd/%d", n->log_fd);
    n->log_rd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (n->log_rd < 0 || fstat(n->log_rd, &st) < 0) return;
    n->log_off = st.st_size; /* earlier boots' decisions are not this box's news */
    n->deny_fn = fn;
    n->deny_data = data;
}

/* The environment's first non-empty value of names, with the name it came from. */
static const char *env_first(const char *const *names, size_t n, const char **ret_name) {
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) return *ret_name = names[i], v;
    }
    return NULL;
}

void net_upstream(const struct profile_user *user, char **ret_url, char ***ret_no_proxy,
                  char **ret_warning) {
    static const char *const url_vars[] = {"https_proxy", "HTTPS_PROXY", "http_proxy",
                                           "HTTP_PROXY"};
    static const char *const np_vars[] = {"no_proxy", "NO_PROXY"};
    *ret_url = NULL;
    *ret_no_proxy = NULL;
    *ret_warning = NULL;
    const char *var = NULL, *url = NULL;
    if (user && user->proxy_set) {
        url = user->proxy;
    } else {
        url = env_first(url_vars, DBX_ARRAY_SIZE(url_vars), &var);
        struct profile_proxy px;
        const char *why = NULL;
        if (url && profile_proxy_parse(url, &px, &why) < 0) {
            /* a variable set for other tools (ssh -D's socks5h://) must not stop the box */
            _cleanup_free_ char *shown = profile_proxy_redact(url);
            *ret_warning = dbx_xasprintf("the environment's %s='%s': %s; the box's network "
                                         "connects directly (set [network] proxy in "
                                         "config.ini, or proxy = none)",
                                         var, shown, why);
            return;
        }
        if (url) profile_proxy_clear(&px);
    }
    if (!url) return;
    char **np = NULL;
    if (user && user->no_proxy_set) {
        for (char **x = user->no_proxy; x && *x; x++)
            np = dbx_strv_push(np, *x);
    } else {
        /* curl's reading: entries split at commas (and blanks); one it cannot read here (a
         * port, a glob) is skipped, as curl and Go skip what they do not understand */
        const char *v = env_first(np_vars, DBX_ARRAY_SIZE(np_vars), &var);
        _cleanup_free_ char *copy = dbx_xstrdup(v ? v : "");
        char *save = NULL;
        for (char *t = strtok_r(copy, ", \t", &save); t && dbx_strv_len(np) < PROFILE_MAX_LIST;
             t = strtok_r(NULL, ", \t", &save)) {
            const char *why = NULL;
            _cleanup_free_ char *e = profile_no_proxy_normalize(t, &why);
            if (e) np = dbx_strv_push(np, e);
        }
    }
    *ret_url = dbx_xstrdup(url);
    *ret_no_proxy = np;
}

int net_new(struct net **ret, const struct profile *prof, const struct profile_user *user,
            const struct net_secrets *sec, const char *state_dir, struct dbx_buf *agent_out,
            dbx_error **err) {
    struct net *n = dbx_xcalloc(1, sizeof(*n));
    n->agent_out = agent_out;
    n->next_sid = NET_SID_BASE;
    n->listen_addr =
        dbx_xstrdup(user && user->listen && *user->listen ? user->listen : PROFILE_LISTEN_DEFAULT);
    n->log_fd = open_log(state_dir, err);
    n->log_rd = -1;
    int r = n->log_fd < 0 ? -1 : 0;
    _cleanup_free_ char *upstream = NULL;
    _cleanup_strv_ char **no_proxy = NULL;
    if (r == 0 && prof->net_mode == PROFILE_NET_ALLOWLIST) {
        net_upstream(user, &upstream, &no_proxy, &n->warning);
        struct proxy_config cfg = {.allow = prof->allow,
                                   .resolve = prof->resolve,
                                   .log_fd = n->log_fd,
                                   .upstream = upstream,
                                   .no_proxy = no_proxy};
        if (sec) {
            cfg.secrets = sec->secrets;
            cfg.nsecrets = sec->nsecrets;
            cfg.mitm_ca_cert_pem = sec->ca_cert_pem;
            cfg.mitm_ca_key_pem = sec->ca_key_pem;
            cfg.upstream_ca_pem = sec->upstream_ca_pem;
        }
        if (proxy_start(&cfg, &n->proxy, err) < 0) r = dbx_error_wrap(err, "network proxy");
    }
    for (size_t i = 0; r == 0 && i < prof->nports; i++)
        if (net_port_add(n, prof->ports[i].host, prof->ports[i].guest, err) < 0)
            r = dbx_error_wrap(err, "%s [ports]", PROFILE_FILE);
    if (r < 0) {
        net_free(n);
        return r;
    }
    *ret = n;
    return 0;
}

static void fwd_close(struct fwd *f) {
    close(f->lfd);
    if (f->lfd6 >= 0) close(f->lfd6);
}

void net_free(struct net *n) {
    if (!n) return;
    while (n->nsocks)
        sock_free(n, n->nsocks - 1);
    for (size_t i = 0; i < n->nfwds; i++)
        fwd_close(&n->fwds[i]);
    if (n->proxy) proxy_stop(n->proxy);
    read_denials(n); /* the last ones, now that no thread writes */
    if (n->log_rd >= 0) close(n->log_rd);
    if (n->log_fd >= 0) close(n->log_fd);
    free(n->listen_addr);
    free(n->warning);
    free(n);
}

const char *net_warning(const struct net *n) {
    return n ? n->warning : NULL;
}

void net_guest_ready(struct net *n) {
    if (n) n->guest_ready = true;
}

/* ---- port forwards ---------------------------------------------------------------------- */

/* A listener on addr:port; v6only for an IPv6 address that must not take IPv4 too (the
 * [::1] beside 127.0.0.1; a user's `listen = ::` keeps the system's dual stack). */
static int listen_tcp(const char *addr, uint16_t port, bool v6only, int *ret_fd, dbx_error **err) {
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        len = sizeof(*a4);
    } else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        len = sizeof(*a6);
    } else {
        return dbx_error_set(err, 0, "listen address '%s' is not an IP address", addr);
    }
    _cleanup_free_ char *shown = ss.ss_family == AF_INET6 ? dbx_xasprintf("[%s]:%u", addr, port)
                                                          : dbx_xasprintf("%s:%u", addr, port);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return dbx_error_set(err, errno, "listen on %s", shown);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (v6only) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        return dbx_error_set(err, e, "listen on %s", shown);
    }
    *ret_fd = fd;
    return 0;
}

/* With the default address, a forward listens on [::1] too: `localhost` is ::1 first for the
 * host's resolver, and a client that tries only the first address (Node 18, Debian 12's, for
 * `http.get("http://localhost:3000")`: ECONNREFUSED ::1) missed a forward on 127.0.0.1.  Only
 * a port taken there fails the forward, as on 127.0.0.1 (a `localhost` client would reach that
 * other program); any other failure (no IPv6: EAFNOSUPPORT, or EADDRNOTAVAIL when lo has none;
 * a seccomp or AppArmor rule of the host's refusing IPv6) leaves the forward on 127.0.0.1 alone,
 * where it always was. */
static int listen_localhost(const char *addr, uint16_t port, int *ret_fd6, dbx_error **err) {
    *ret_fd6 = -1;
    if (strcmp(addr, PROFILE_LISTEN_DEFAULT) != 0) return 0;
    dbx_error *e = NULL;
    if (listen_tcp("::1", port, true, ret_fd6, &e) == 0) return 0;
    if (e->code != EADDRINUSE) {
        dbx_error_free(&e);
        return 0;
    }
    *err = e;
    return -1;
}

int net_port_add(struct net *n, uint16_t host, uint16_t guest, dbx_error **err) {
    if (!host || !guest) return dbx_error_set(err, 0, "ports are 1-65535");
    for (size_t i = 0; i < n->nfwds; i++)
        if (n->fwds[i].host == host)
            return dbx_error_set(err, 0, "host port %u is already forwarded (to %u)", host,
                                 n->fwds[i].guest);
    if (n->nfwds >= NET_MAX_FWDS)
        return dbx_error_set(err, 0, "at most %u port forwards", NET_MAX_FWDS);
    int fd = -1, fd6 = -1;
    if (listen_tcp(n->listen_addr, host, false, &fd, err) < 0) return -1;
    if (listen_localhost(n->listen_addr, host, &fd6, err) < 0) {
        close(fd);
        return -1;
    }
    n->fwds[n->nfwds++] = (struct fwd){host, guest, fd, fd6};
    return 0;
}

int net_port_rm(struct net *n, uint16_t host, dbx_error **err) {
    for (size_t i = 0; i < n->nfwds; i++)
        if (n->fwds[i].host == host) {
            fwd_close(&n->fwds[i]);
            n->fwds[i] = n->fwds[--n->nfwds];
            return 0;
        }
    return dbx_error_set(err, 0, "host port %u is not forwarded", host);
}

char *net_port_list(struct net *n) {
    struct dbx_buf b = {0};
    for (size_t i = 0; i < n->nfwds; i++) {
        _cleanup_free_ char *line =
            dbx_port_line(n->listen_addr, n->fwds[i].host, n->fwds[i].guest);
        dbx_buf_put(&b, line, strlen(line));
    }
    dbx_buf_put_u8(&b, 0);
    return (char *)b.data;
}

/* `add HOST GUEST` | `rm HOST` | `ls`: status 0 and text, or an error. */
static int port_request(struct net *n, const char *req, char **ret_text, dbx_error **err) {
    unsigned h = 0, g = 0;
    int used = 0;
    if (!n) return dbx_error_set(err, 0, "the VM is not running");
    if (sscanf(req, "add %5u %5u%n", &h, &g, &used) == 2 && req[used] == '\0' && h <= 65535 &&
        g <= 65535) {
        if (net_port_add(n, (uint16_t)h, (uint16_t)g, err) < 0) return -1;
        *ret_text = dbx_port_line(n->listen_addr, h, g);
        return 0;
    }
    if (sscanf(req, "rm %5u%n", &h, &used) == 1 && req[used] == '\0' && h <= 65535) {
        if (net_port_rm(n, (uint16_t)h, err) < 0) return -1;
        *ret_text = dbx_xstrdup("");
        return 0;
    }
    if (strcmp(req, "ls") == 0) {
        *ret_text = net_port_list(n);
        return 0;
    }
    return dbx_error_set(err, 0, "bad port request");
}

void net_port_frame(struct net *n, const uint8_t *p, size_t len, struct dbx_buf *reply) {
    char *req = NULL, *text = NULL;
    struct dbx_cursor cur = {p, len};
    _cleanup_error_ dbx_error *e = NULL;
    int r = dbx_get_str(&cur, 256, &req) < 0 || cur.left
                ? dbx_error_set(&e, 0, "malformed port request")
                : port_request(n, req, &text, &e);
    dbx_buf_put_u32(reply, r < 0 ? 1 : 0);
    dbx_buf_put_str(reply, r < 0 ? e->msg : text);
    free(req);
    free(text);
}

static void fwd_accept(struct net *n, const struct fwd *f, int lfd) {
    for (int burst = 0; burst < 64; burst++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (n->nsocks >= NET_MAX_SOCKS || !n->guest_ready) {
            close(fd);
            continue;
        }
        /* Each SOCK_DATA from the guest goes out as it comes.  With Nagle, a response written
         * in two parts (headers, then the body: Node's res.write + res.end, most frameworks'
         * streaming) held its second part until the client acknowledged the first, which a
         * client on a kept-alive connection delays: 25.8 ms a request through a forward
         * instead of 3.9 (ab -k -c 1, trial13b, TCG).  The guest's end has it too. */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        uint32_t sid;
        do {
            sid = n->next_sid++;
            if (n->next_sid >= DBX_SESSION_GUEST) n->next_sid = NET_SID_BASE;
        } while (sock_find(n, sid, NULL));
        sock_add(n, sid, fd, S_OPENING);
        struct dbx_buf b = {0};
        dbx_buf_put_u8(&b, DBX_SOCK_FORWARD);
        dbx_buf_put_u16(&b, f->guest);
        send_frame(n, DBX_MSG_SOCK_OPEN, sid, b.data, b.len);
        dbx_buf_free(&b);
    }
}

/* ---- frames from the guest -------------------------------------------------------------- */

static void guest_open(struct net *n, uint32_t sid, const uint8_t *p, size_t len) {
    struct dbx_cursor c = {p, len};
    uint8_t kind = 0;
    uint16_t port = 0;
    if (dbx_get_u8(&c, &kind) < 0 || dbx_get_u16(&c, &port) < 0 || c.left ||
        !(sid & DBX_SESSION_GUEST) || sock_find(n, sid, NULL)) {
        send_error(n, sid, "malformed socket open");
        return;
    }
    if (kind != DBX_SOCK_PROXY || !n->proxy) {
        send_error(n, sid, "this box has no network proxy");
        return;
    }
    if (n->nsocks >= NET_MAX_SOCKS) {
        send_error(n, sid, "too many connections");
        return;
    }
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
        send_error(n, sid, "socketpair failed");
        return;
    }
    _cleanup_error_ dbx_error *e = NULL;
    if (proxy_serve(n->proxy, sp[1], &e) < 0) { /* sp[1] is the proxy's now */
        close(sp[0]);
        send_error(n, sid, e ? e->msg : "proxy refused the connection");
        return;
    }
    sock_add(n, sid, sp[0], S_OPEN);
    send_frame(n, DBX_MSG_SOCK_OK, sid, NULL, 0);
}

bool net_owns(struct net *n, const struct dbx_frame_hdr *h) {
    if (!n) return false;
    if (h->type == DBX_MSG_SOCK_OPEN || h->type == DBX_MSG_SOCK_OK ||
        h->type == DBX_MSG_SOCK_DATA || h->type == DBX_MSG_SOCK_CLOSE)
        return true;
    /* exec sessions (every stdout frame) never pay for the search */
    return h->session >= NET_SID_BASE && sock_find(n, h->session, NULL) != NULL;
}

void net_agent_frame(struct net *n, const struct dbx_frame_hdr *h, const uint8_t *p) {
    if (h->type == DBX_MSG_SOCK_OPEN) {
        guest_open(n, h->session, p, h->len);
        return;
    }
    size_t i;
    struct sock *k = sock_find(n, h->session, &i);
    if (!k) return; /* finished or unknown: drop */
    uint8_t st;
    uint32_t v;
    switch (h->type) {
    case DBX_MSG_SOCK_OK:
        if (k->state != S_OPENING || h->len) break;
        k->state = S_OPEN;
        return;
    case DBX_MSG_SOCK_DATA:
        if (k->state != S_OPEN || h->len > DBX_DATA_CHUNK || k->guest_eof) break;
        if (h->len == 0) {
            k->guest_eof = true;
            return;
        }
        /* The guest may have at most one window in flight toward us. */
        if (dbx_buf_avail(&k->out) + h->len > DBX_WINDOW) break;
        dbx_buf_put(&k->out, p, h->len);
        return;
    case DBX_MSG_CREDIT:
        if (dbx_dec_credit(p, h->len, &st, &v) < 0 || st != DBX_STREAM_SOCK ||
            (uint64_t)k->window + v > DBX_WINDOW)
            break;
        k->window += v;
        return;
    case DBX_MSG_SOCK_CLOSE:
    case DBX_MSG_ERROR:
        sock_free(n, i); /* the guest ended it: no reply */
        return;
    default:
        break;
    }
    sock_close(n, i); /* anything else ends this session only */
}

/* ---- the poll loop ---------------------------------------------------------------------- */

/* The proxy appends a line per decision: keep the file bounded during a long run too. */
static void cap_log(struct net *n) {
    uint64_t now = dbx_now_ms();
    if (n->log_fd < 0 || now - n->log_checked_ms < 1000) return;
    n->log_checked_ms = now;
    read_denials(n);
    if (dbx_log_cut(n->log_fd, NET_LOG_CAP)) {
        static const char m[] = "[devbox: network log truncated at its size cap]\n";
        (void)!write(n->log_fd, m, sizeof(m) - 1);
    }
}

size_t net_pollfds(struct net *n, struct pollfd *pfd, size_t max, bool agent_busy) {
    size_t c = 0;
    if (!n) return 0;
    cap_log(n);
    /* two entries a forward, its [::1] listener's -1 when it has none: net_dispatch counts so */
    for (size_t i = 0; i < n->nfwds && c + 1 < max; i++) {
        pfd[c++] = (struct pollfd){n->fwds[i].lfd, POLLIN, 0};
        pfd[c++] = (struct pollfd){n->fwds[i].lfd6, POLLIN, 0};
    }
    for (size_t i = 0; i < n->nsocks && c < max; i++) {
        struct sock *k = n->socks[i];
        short ev = 0;
        if (k->state == S_OPEN && !k->fd_eof && k->window && !agent_busy) ev |= POLLIN;
        /* POLLOUT also to pass on the guest's EOF once `out` is drained */
        if (dbx_buf_avail(&k->out) || (k->guest_eof && !k->shut_done)) ev |= POLLOUT;
        /* Nothing wanted: leave the fd out, or a POLLHUP we cannot act on yet (the peer has
         * closed, the guest has not) would wake the loop at once, forever. */
        pfd[c++] = (struct pollfd){ev ? k->fd : -1, ev, 0};
    }
    return c;
}

/* Returns false when the session ended. */
static bool sock_io(struct net *n, size_t i, short revents) {
    struct sock *k = n->socks[i];
    /* An error, or a hang-up after our side's EOF was passed on: both directions are dead. */
    if ((revents & POLLERR) || ((revents & POLLHUP) && k->fd_eof)) {
        sock_close(n, i);
        return false;
    }
    if (revents & POLLOUT || dbx_buf_avail(&k->out)) {
        size_t before = dbx_buf_avail(&k->out);
        while (dbx_buf_avail(&k->out)) {
            ssize_t w = send(k->fd, dbx_buf_head(&k->out), dbx_buf_avail(&k->out), MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && errno == EAGAIN) break;
            if (w < 0) {
                sock_close(n, i);
                return false;
            }
            dbx_buf_consume(&k->out, (size_t)w);
        }
        size_t sent = before - dbx_buf_avail(&k->out);
        if (sent) {
            uint8_t cr[5];
            send_frame(n, DBX_MSG_CREDIT, k->sid, cr,
                       dbx_enc_credit(cr, DBX_STREAM_SOCK, (uint32_t)sent));
        }
    }
    if (k->guest_eof && !k->shut_done && !dbx_buf_avail(&k->out)) {
        shutdown(k->fd, SHUT_WR);
        k->shut_done = true;
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && k->state == S_OPEN && !k->fd_eof && k->window) {
        uint8_t buf[DBX_DATA_CHUNK];
        size_t want = k->window < sizeof(buf) ? k->window : sizeof(buf);
        ssize_t r = recv(k->fd, buf, want, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return true;
        if (r < 0) {
            sock_close(n, i);
            return false;
        }
        if (r == 0) k->fd_eof = true;
        send_frame(n, DBX_MSG_SOCK_DATA, k->sid, buf, (size_t)r);
        k->window -= (uint32_t)r;
    } else if ((revents & (POLLHUP | POLLERR)) && k->state == S_OPENING) {
        sock_close(n, i);
        return false;
    }
    if (k->fd_eof && k->shut_done) {
        sock_close(n, i);
        return false;
    }
    return true;
}

void net_dispatch(struct net *n, const struct pollfd *pfd, size_t count) {
    if (!n) return;
    size_t c = 0;
    size_t nf = n->nfwds;
    for (size_t i = 0; i < nf && c + 1 < count; i++, c += 2) {
        if (pfd[c].revents & POLLIN) fwd_accept(n, &n->fwds[i], pfd[c].fd);
        if (pfd[c + 1].revents & POLLIN) fwd_accept(n, &n->fwds[i], pfd[c + 1].fd);
    }
    /* Sessions are matched by fd: fwd_accept may have added some, sock_io removes some. */
    for (; c < count; c++) {
        if (!pfd[c].revents) continue;
        for (size_t i = 0; i < n->nsocks; i++)
            if (n->socks[i]->fd == pfd[c].fd) {
                sock_io(n, i, pfd[c].revents);
                break;
            }
    }
}

size_t net_nsocks(const struct net *n) {
    return n ? n->nsocks : 0;
}

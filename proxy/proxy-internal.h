/* proxy/proxy-internal.h: what the proxy's files share; not for other modules. */
#pragma once

#include "proxy.h"

/* ---- the egress proxy's name lookups (proxy-dns.c) ------------------------------------- */

#define PROXY_DNS_MAX_ADDRS 16u        /* addresses kept per name */
#define PROXY_DNS_TTL_MS (60u * 1000u) /* getaddrinfo gives no TTL: a fixed one */
#define PROXY_DNS_CACHE_MAX 256u       /* names cached per proxy (per project) */
#define PROXY_DNS_RETRY_MS 200u        /* pause before retrying a failed lookup */

struct proxy_dns_config {
    unsigned ttl_ms, cache_max, retry_ms; /* 0 = the defaults above */
    proxy_resolve_fn *resolve;            /* NULL = getaddrinfo */
    void *resolve_data;
    int stop_fd; /* readable once the proxy stops: cuts the retry pause short; -1 = none */
};
struct proxy_dns;
struct proxy_dns *proxy_dns_new(const struct proxy_dns_config *cfg);
/* Only once no thread is inside proxy_dns_lookup.  Accepts NULL. */
void proxy_dns_free(struct proxy_dns *d);
/* The addresses of name (a valid host name, not an address): a cached answer younger than
 * ttl_ms, else the result of the one lookup in flight for name (started here if there is none;
 * a failure is retried once after retry_ms).  0 with 1..max addresses in out and *ret_n set,
 * or an EAI_* code (gai_strerror); failures are not cached.  Once stop_fd is readable no new
 * lookup starts (EAI_AGAIN).  Thread-safe. */
int proxy_dns_lookup(struct proxy_dns *d, const char *name, struct dbx_addr *out, size_t max,
                     size_t *ret_n);
/* Drop name's cached answer (every address of it failed to connect). */
void proxy_dns_forget(struct proxy_dns *d, const char *name);

/* ---- what proxy.c's connection threads share with proxy-mitm.c ------------------------- */

#define PROXY_WRITE_TIMEOUT_MS 60000u /* a peer that reads nothing for this long is dropped */
#define PROXY_CONNECT_TIMEOUT_MS 10000u
#define PROXY_IDLE_TIMEOUT_MS (3600u * 1000u)
#define PROXY_DRAIN_TIMEOUT_MS 2000u /* finishing earlier responses before a refusal */
#define PROXY_CIN_CAP (64u * 1024u)  /* client bytes waiting to be parsed */

struct resolve_entry {
    char name[DBX_HOST_MAX + 1];
    struct dbx_addr addr;
};

struct proxy {
    struct profile_allow *pats;
    size_t npats;
    struct resolve_entry *res;
    size_t nres;
    int log_fd;
    unsigned max_conns;
    unsigned head_idle_ms, head_total_ms;
    struct proxy_dns *dns;        /* the name cache; thread-safe on its own */
    int stop_pipe[2];             /* written once by proxy_stop; every poll watches [0] */
    struct proxy_secret *secrets; /* copies, except each value: the caller's */
    size_t nsecrets;
    struct proxy_mitm *mitm; /* TLS interception; NULL without secrets */
    /* the upstream proxy (proxy.h "upstream proxy"): up false = connect directly */
    bool up;
    struct profile_proxy upstream;
    char *up_auth;             /* "Proxy-Authorization: Basic ...\r\n", or NULL */
    struct profile_allow *nop; /* no_proxy entries other than "*" */
    size_t nnop;
    /* whether the upstream's last address is this host's (on_this_host), until here_until:
     * one getifaddrs a minute instead of one per connection; guarded by lock */
    struct dbx_addr here_addr;
    bool here;
    uint64_t here_until;
    pthread_mutex_t lock;
    struct conn *conns; /* guarded by lock */
    unsigned active;    /* guarded by lock */
    bool stopping;      /* guarded by lock */
};

struct buf {
    uint8_t *data;
    size_t start, end, cap;
};

struct conn {
    struct proxy *p;
    struct conn *next;
    pthread_t tid;
    bool done; /* guarded by p->lock: the thread is finished and may be joined */
    int cfd, ufd;
    /* the destination being served, for the log and the pin */
    const char *method;
    bool mitm; /* intercepted (proxy-mitm.c): the log line always counts requests */
    bool have_target;
    struct policy_host host;
    uint16_t port;
    bool connected;
    bool from_dns; /* the addresses came from proxy_dns_lookup */
    bool via;      /* connected to the upstream proxy (addr:aport is its address) */
    struct dbx_addr addr;
    uint16_t aport; /* the port connected at addr */
    uint64_t up, down;
    unsigned reqs;
    char when[32];
    struct buf cin, uout, dout;
    /* destination -> client: spliced through this pipe (no copy through user space for the
     * TCP side), or copied through dout when the pipe could not be made */
    int dpipe[2];
    size_t dpending; /* bytes in dpipe */
    /* plain http: the request body being forwarded; a refusal of a later request */
    struct proxy_body body;
    int deny_status;
    char *deny_reason, *deny_body;
};

static inline size_t buf_len(const struct buf *b) {
    return b->end - b->start;
}
void proxy_stamp(struct conn *c);
/* host:port as a client would write it (IPv6 in brackets). */
void proxy_fmt_target(const struct policy_host *h, uint16_t port, char *out, size_t n);
/* The connection's one decision line (reason: untrusted text, cleaned; never a value). */
void proxy_log(struct conn *c, const char *verdict, const char *reason);
const char *proxy_method_name(enum proxy_http_method m);
/* Wait for events on fd (or the proxy's stop): 0, -ETIMEDOUT, -ECANCELED or -errno. */
int proxy_wait(struct conn *c, int fd, short events, uint64_t deadline);
int proxy_send_all(struct conn *c, int fd, const void *buf, size_t n, uint64_t deadline);
/* After an answer that ends the connection: half-close, then read and drop what the client
 * still sends for a moment (closing with unread bytes resets, and the answer would be lost). */
void proxy_finish_client(struct conn *c);
/* Port 443: read the ClientHello into c->cin and check its server_name against the CONNECT
 * host.  0, or refused (logged). */
int proxy_check_hello(struct conn *c);

/* ---- TLS interception (proxy-mitm.c) -------------------------------------------------- */

/* The CA, the TLS contexts and the leaf cache, from cfg (the CA pair required). */
int proxy_mitm_new(const struct proxy_config *cfg, struct proxy_mitm **ret, dbx_error **err);
void proxy_mitm_free(struct proxy_mitm *m);
/* Whether CONNECT h:port is intercepted: port 443 and some secret may be sent to h. */
bool proxy_mitm_wanted(const struct proxy *p, const struct policy_host *h, uint16_t port);
/* Serve an intercepted CONNECT: c->ufd is connected, "200" sent, the ClientHello (checked) is
 * in c->cin.  Logs its line. */
void proxy_mitm_serve(struct conn *c);
/* The leaf certificate and key for name (issued, or from the cache), for the tests: 0 with
 * PEM strings the caller frees. */
int proxy_mitm_leaf_pem(struct proxy *p, const char *name, char **ret_cert, char **ret_key,
                        dbx_error **err);

/* proxy/proxy.h: the egress proxy of `network.mode = allowlist` boxes: the one module that
 * talks to both the guest (each connection the guest makes to the init's proxy listener) and
 * the internet.  The decision of what may be reached is policy's (policy_host_parse,
 * policy_allowed, policy_addr_refused over the profile's allow patterns); this module parses
 * the requests, resolves, connects and relays.  Exports its pure parts (request head and
 * ClientHello parsers) for the tests and the fuzz harnesses.  Library code: no printing. */
#pragma once

#include <sys/types.h>

#include "../common/common.h"
#include "../common/netaddr.h"
#include "../policy/policy.h"

/* ---- egress proxy (proxy.c) -------------------------------------------------------------- *
 *
 * An HTTP/1.x forward proxy for one box.  It serves CONNECT host:port (a tunnel) and
 * absolute-URI GET, HEAD and POST to http:// targets (forwarded in origin form), nothing else.
 * Per request:
 *   1. the head is parsed (proxy_http_parse: at most PROXY_HTTP_MAX_HEAD bytes and
 *      PROXY_HTTP_MAX_HEADERS headers, strict framing; 408 when no byte arrives for
 *      head_idle_ms or the head is not complete head_total_ms after the connection came);
 *   2. host:port must match an allow pattern (policy_allowed); an IP literal only in canonical
 *      form and only when an address pattern lists it;
 *   3. only then is a name resolved: the `resolve` overrides, else getaddrinfo on the host
 *      through a per-proxy cache of positive answers (a fixed TTL, dns_ttl_ms: getaddrinfo
 *      reports none; at most dns_cache_max names, least recently used evicted), with one
 *      lookup in flight per name shared by every request that needs it, and a failed lookup
 *      retried once; failures are not cached;
 *   4. every address in a refused class (dbx_addr_classify) is dropped unless an address
 *      pattern contains it (policy_addr_refused); the proxy connects (10 s timeout) to exactly
 *      one of the remaining sockaddrs, trying them in order;
 *   5. CONNECT to port 443: after "200 Connection established" the ClientHello is buffered
 *      (at most PROXY_TLS_MAX_RAW bytes, the same two time limits) and the tunnel closed
 *      unless its server_name equals the CONNECT host (an IP literal host needs a hello
 *      without server_name); a host a secret goes to is then intercepted (see "secrets");
 *      CONNECT to other ports is relayed without looking at the bytes;
 *   6. plain http: a Host header must name the target's host:port; the head is rewritten
 *      (origin-form target, Host, Connection; Proxy-* and Keep-Alive/Upgrade dropped) and the
 *      body forwarded by its framing; a kept-alive connection stays pinned to its first
 *      destination, a later request for another one gets 403 and the connection is closed.
 * A refusal before the tunnel is up is answered with an HTTP error (403 for policy, with a
 * body naming the allow entry to add; 400/405/431/505 for bad requests; 502/504 when the
 * destination cannot be reached) and the connection closed.  Each decision is one log line:
 *   TIME VERDICT METHOD HOST:PORT ADDR up=N down=N [reqs=N] [reason="..."]
 * with TIME in UTC ISO 8601 (ms), VERDICT allow, deny or error, ADDR the connected address
 * ("-" if none), up/down the bytes sent to the destination / to the client. */
struct dbx_addr;

/* ---- upstream proxy ---------------------------------------------------------------------- *
 *
 * On a network whose only way out is the company's HTTP proxy, the user names it (config.ini
 * [network] proxy, else the environment's https_proxy / http_proxy).  A request that passed
 * the allow list (step 2) then goes to that proxy instead of steps 3-4, unless its host is
 * in no_proxy or has a `resolve` override (both are connected directly, as above):
 *   - the proxy's own name is resolved on the host and its address used whatever its class
 *     (the user named it: a company proxy is on a private address);
 *   - CONNECT host:port (the CONNECT and plain-http targets alike keep the name the box
 *     asked for: the upstream resolves it, as it does for the host's own tools; an IP literal
 *     target is still refused in the refused classes unless allowed) is sent to it with the
 *     user's credentials (Proxy-Authorization: Basic, to that proxy only: the box's own
 *     Proxy-* headers are dropped and it never learns them); its answer head is read (at most
 *     PROXY_HTTP_MAX_HEAD bytes, PROXY_UPSTREAM_HEAD_MS) and anything but 2xx is answered 502
 *     with its status line, and logged as an error;
 *   - plain http goes to it in absolute form (GET http://host/path), with the credentials;
 *     a kept-alive connection stays pinned to its first destination as before.
 * The log line's ADDR is then "via=PROXYADDR:PORT". */
#define PROXY_UPSTREAM_HEAD_MS (60u * 1000u)

/* ---- secrets (proxy-secret.c, proxy-mitm.c) ---------------------------------------------- *
 *
 * A secret's value never enters the box: the box holds its placeholder.  CONNECT to port 443
 * of a host some secret's hosts match (and the allow list allows) is intercepted: the proxy
 * answers 200, checks the ClientHello's server_name as for a tunnel, completes the TLS
 * handshake with the box itself (a leaf certificate for the CONNECT host signed by the
 * per-box CA, cached per name; ALPN offers only http/1.1), connects upstream with TLS (SNI,
 * chain verified against OpenSSL's default store + upstream_ca_pem, host name checked) and
 * relays HTTP/1.1 requests one by one: each head is parsed (proxy_http_parse_origin), its Host
 * must be the CONNECT host, and proxy_secret_head rewrites it; bodies are forwarded by their
 * framing; responses are relayed as bytes (requests go upstream in order on one connection,
 * so pipelined responses come back in order too).  A placeholder of a secret in any request
 * head (plain http, CONNECT, intercepted) to a host outside that secret's hosts is answered
 * 403, the connection closed and logged: verdict deny, reason="secret NAME placeholder sent
 * to HOST".  Intercepted connections log METHOD "CONNECT+mitm" with reqs=N.  Plain http
 * requests are never given a value (it would cross the network in clear text).  Every other
 * CONNECT stays a blind tunnel.  No value ever appears in a log line or an error message. */
#define PROXY_SECRET_MAX 32u                 /* secrets per proxy */
#define PROXY_SECRET_VALUE_MAX (16u * 1024u) /* bytes of a value */
#define PROXY_SECRET_PLACEHOLDER_MIN 16u     /* a placeholder is distinctive ... */
#define PROXY_SECRET_PLACEHOLDER_MAX 128u    /* ... and short */
#define PROXY_MITM_MAX_HEAD (64u * 1024u)    /* a rewritten request head */
struct proxy_secret {
    const char *name;        /* "ANTHROPIC_API_KEY": for log lines only */
    const char *placeholder; /* what the box holds: "devbox-secret-NAME-<32 hex>" */
    const char *value;       /* the real value: never logged, never in an error message */
    char *const *hosts;      /* allow patterns (policy syntax) the value may be sent to */
    const char *header;      /* "x-api-key: {}" / "Authorization: Bearer {}" or NULL */
};

/* A fresh per-box CA (EC P-256, 30 days, CA:TRUE, pathlen 0, name "devbox box CA").  0 with
 * both PEM strings set (the caller frees them; the key is the caller's to keep out of files
 * and the guest), or < 0 with *err. */
int proxy_ca_generate(char **ret_cert_pem, char **ret_key_pem, dbx_error **err);

/* A resolver: 0 with 1..max addresses of name in out and *ret_n set, or an EAI_* code.  Called
 * from several connection threads at once. */
typedef int proxy_resolve_fn(void *data, const char *name, struct dbx_addr *out, size_t max,
                             size_t *ret_n);
struct proxy_config {
    char *const *allow;     /* the profile's network.allow patterns (policy_pattern_parse) */
    char *const *resolve;   /* "name:addr" overrides used instead of DNS for that name (several
                               lines for one name give several addresses), or NULL */
    int log_fd;             /* decision lines appended here (one write each); -1 = none */
    unsigned max_conns;     /* concurrent connections; 0 = 256 */
    unsigned head_idle_ms;  /* a request head or ClientHello pausing longer is cut; 0 = 120 s */
    unsigned head_total_ms; /* ... or taking longer in all; 0 = 300 s */
    unsigned dns_ttl_ms;    /* how long an answer is reused; 0 = 60 s */
    unsigned dns_cache_max; /* names cached; 0 = 256 */
    unsigned dns_retry_ms;  /* pause before the retry of a failed lookup; 0 = 200 ms */
    proxy_resolve_fn *dns_resolve; /* for tests: used instead of getaddrinfo; NULL = that */
    void *dns_resolve_data;
    /* secrets (see "secrets" below); the values are not copied: the caller keeps every
     * secrets[i].value (in its protected memory) unchanged until proxy_stop returns */
    const struct proxy_secret *secrets;
    size_t nsecrets;
    const char *mitm_ca_cert_pem, *mitm_ca_key_pem; /* per-box CA (required if nsecrets) */
    const char *upstream_ca_pem; /* extra CAs trusted upstream besides OpenSSL's default
                                    store (the host's ca_files / a test CA); NULL or ""
                                    = none; a text holding no certificate is an error */
    /* The user's upstream HTTP proxy (see "upstream proxy"): a URL profile_proxy_parse
     * accepts, or NULL to connect directly; and the hosts still reached directly
     * (profile_no_proxy_normalize's forms), or NULL. */
    const char *upstream;
    char *const *no_proxy;
};
struct proxy;
/* Validate cfg (an error names the bad pattern, override or secret, never a secret's value;
 * proxy_secrets_check, the box CA pair, upstream_ca_pem) and start a proxy with no
 * connections.  cfg's strings are copied except the secrets' values (see proxy_config);
 * log_fd stays the caller's and must outlive the proxy. */
int proxy_start(const struct proxy_config *cfg, struct proxy **ret, dbx_error **err);
/* Serve one client connection: fd is a connected stream socket whose peer speaks HTTP to the
 * proxy; ownership passes to the proxy in every case.  Starts a thread and returns at once.
 * Fails (fd closed) over max_conns or after proxy_stop began. */
int proxy_serve(struct proxy *p, int fd, dbx_error **err);
/* Close every connection, wait for their threads (a thread inside getaddrinfo finishes that
 * lookup first), free p.  Accepts NULL. */
void proxy_stop(struct proxy *p);

/* ---- HTTP request heads (proxy-http.c) -------------------------------------------------- */

#define PROXY_HTTP_MAX_HEAD (16u * 1024u) /* bytes of a request head, request line included */
#define PROXY_HTTP_MAX_HEADERS 100u

enum proxy_http_method {
    PROXY_HTTP_CONNECT,
    PROXY_HTTP_GET,
    PROXY_HTTP_HEAD,
    PROXY_HTTP_POST,
    /* origin form only (proxy_http_parse_origin) */
    PROXY_HTTP_PUT,
    PROXY_HTTP_PATCH,
    PROXY_HTTP_DELETE,
    PROXY_HTTP_OPTIONS,
};
enum proxy_body_kind { PROXY_BODY_NONE, PROXY_BODY_LENGTH, PROXY_BODY_CHUNKED };
struct proxy_span {
    uint32_t off, len; /* bytes of the head buffer */
};
struct proxy_http_req {
    enum proxy_http_method method;
    uint8_t minor;           /* HTTP/1.minor: 0 or 1 */
    struct policy_host host; /* the request target's host */
    uint16_t port;           /* CONNECT: required; http://: default 80 */
    struct proxy_span path;  /* http://: path and query from the target ("/" or "?" first;
                                 len 0 = "/"); CONNECT: unused */
    bool keep_alive;         /* Connection / Proxy-Connection and the version's default */
    bool has_host;           /* a Host header was present (and agreed with the target) */
    enum proxy_body_kind body;
    uint64_t content_length; /* PROXY_BODY_LENGTH */
    uint32_t head_len;       /* bytes of the head, final CRLF CRLF included */
    uint32_t nheaders;
    struct {
        struct proxy_span name, value; /* value without surrounding blanks */
    } headers[PROXY_HTTP_MAX_HEADERS];
};
/* Parse the request head at the start of buf[0..len).  Returns 1 when a complete head is
 * there and valid (*ret filled; the body starts at ret->head_len), 0 when more bytes are
 * needed (only while len < PROXY_HTTP_MAX_HEAD: a head that does not end within it is an
 * error), or < 0 with *err set: -E2BIG head or header count over the cap (431), -EOPNOTSUPP a
 * method or scheme the proxy does not serve (405), -EPROTONOSUPPORT not HTTP/1.0 or 1.1
 * (505), -EACCES a target host that is no valid name or canonical address (403), -EINVAL any
 * other malformation (400): bare CR or LF, obs-fold, control bytes, a blank before a colon,
 * userinfo or fragment in the target, a Host header that differs from the target (or more than
 * one), Content-Length that is not one plain decimal header, Transfer-Encoding other than
 * exactly "chunked" (or on HTTP/1.0), both framing headers, leading blank lines.  Never reads
 * beyond len; *ret is written in any case. */
int proxy_http_parse(const uint8_t *buf, size_t len, struct proxy_http_req *ret, dbx_error **err);
/* The same rules for a request inside an intercepted TLS connection: the target is in origin
 * form ("/path?query", or "*" for OPTIONS) and ret->path spans it; the methods GET, HEAD,
 * POST, PUT, PATCH, DELETE and OPTIONS are served (CONNECT is -EOPNOTSUPP); ret->host and
 * ret->port come from the Host header (port 443 when it names none), which HTTP/1.1 requires;
 * an HTTP/1.0 request without one gets ret->host.name "" and has_host false. */
int proxy_http_parse_origin(const uint8_t *buf, size_t len, struct proxy_http_req *ret,
                            dbx_error **err);
/* The status line for a proxy_http_parse error code (400, 403, 405, 431, 505). */
int proxy_http_status(int code);

/* Where a request body ends, fed incrementally. */
struct proxy_body {
    enum proxy_body_kind kind;
    uint64_t left;     /* LENGTH: body bytes left; CHUNKED: data bytes left in this chunk */
    uint8_t state;     /* chunked parser state (proxy-http.c) */
    uint32_t line;     /* bytes of the current chunk-size or trailer line */
    uint32_t trailers; /* trailer lines seen */
    bool done;
};
void proxy_body_init(struct proxy_body *b, const struct proxy_http_req *r);
/* How many of the len bytes at buf still belong to the body (the rest is the next request);
 * b->done once the body is complete.  Chunked framing is checked (hex sizes of at most 16
 * digits, CRLF after every size line and chunk, extensions and trailer lines under 4 KiB, at
 * most 100 trailers); a violation is -EINVAL with *err set. */
ssize_t proxy_body_scan(struct proxy_body *b, const uint8_t *buf, size_t len, dbx_error **err);

/* ---- TLS ClientHello (proxy-tls.c) ------------------------------------------------------ */

#define PROXY_TLS_MAX_HELLO (16u * 1024u) /* the ClientHello handshake message */
#define PROXY_TLS_MAX_RECORDS 64u         /* records it may be split over */
#define PROXY_TLS_MAX_RAW (PROXY_TLS_MAX_HELLO + 4u + 5u * PROXY_TLS_MAX_RECORDS)
/* Find the server_name of the ClientHello at the start of buf[0..len) (TLS records of type
 * handshake, the message possibly split over several).  1: the whole hello is there and
 * ret_sni holds its host_name, lower-cased without a trailing dot ("" when the hello has no
 * server_name extension); 0: more bytes needed (never once len >= PROXY_TLS_MAX_RAW); < 0
 * (-EPROTO) with *err: not a TLS handshake, not a ClientHello, a length or count out of
 * bounds, a server_name that is not one valid host name, duplicate extensions, or bytes after
 * the hello inside its records. */
int proxy_tls_sni(const uint8_t *buf, size_t len, char ret_sni[DBX_HOST_MAX + 1], dbx_error **err);

/* ---- secrets in request heads (proxy-secret.c) ------------------------------------------ */

/* Check the secret definitions (what proxy_start does): a name of [A-Za-z_][A-Za-z0-9_]{0,63},
 * distinct names and placeholders, a placeholder of PROXY_SECRET_PLACEHOLDER_MIN..MAX bytes of
 * [A-Za-z0-9_-] (no placeholder inside another), a value of 1..PROXY_SECRET_VALUE_MAX bytes
 * without control bytes (it goes into a header line), at least one host pattern, a header of
 * "Name: template" with one "{}".  An error names the secret, never its value. */
int proxy_secrets_check(const struct proxy_secret *s, size_t n, dbx_error **err);
/* Whether secret s may be sent to h:port (one of its host patterns matches). */
bool proxy_secret_allows(const struct proxy_secret *s, const struct policy_host *h, uint16_t port);
/* The first secret (index) whose placeholder occurs in head[0..len) (ignoring ASCII case) but
 * may not be sent to h:port, or -1. */
int proxy_secret_misplaced(const uint8_t *head, size_t len, const struct proxy_secret *s, size_t n,
                           const struct policy_host *h, uint16_t port);
/* Rewrite the intercepted request head req (parsed by proxy_http_parse_origin from head) for
 * h:port into out (appended): the request line as sent; header values (Host's excepted) with
 * every placeholder of a secret allowed for h:port replaced by its value; Connection set from
 * req->keep_alive, Upgrade, HTTP2-Settings, Keep-Alive and Proxy-* dropped (no protocol switch is
 * relayed); then, for each allowed secret with a header whose name the request lacks, that header
 * with
 * {} replaced by the value.  0; or -EACCES when a placeholder of a secret not allowed for
 * h:port occurs anywhere in the head (*ret_secret = its index, out unchanged, *err names the
 * secret and the host), -E2BIG when the result would pass PROXY_MITM_MAX_HEAD.  Secrets are
 * expected to have passed proxy_secrets_check.  Pure: for the tests and the fuzz harness. */
int proxy_secret_head(const uint8_t *head, const struct proxy_http_req *req,
                      const struct proxy_secret *s, size_t n, const struct policy_host *h,
                      uint16_t port, struct dbx_buf *out, int *ret_secret, dbx_error **err);

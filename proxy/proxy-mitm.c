/* proxy/proxy-mitm.c: TLS interception for the hosts secrets go to (the contract is in
 * proxy.h, "secrets").
 *
 * The connection thread terminates the box's TLS with a leaf certificate for the CONNECT host
 * (signed by the per-box CA, whose certificate the box trusts and whose key never leaves the
 * host), opens its own verified TLS connection upstream, and relays HTTP/1.1: requests are
 * parsed head by head (so a second request cannot hide in a first one's body and dodge the
 * rewrite or the placeholder check), responses go back as bytes.  Requests reach upstream in
 * the order the box sent them on one connection, so pipelined responses come back in that
 * order too and need no parsing.  Both sockets stay non-blocking; every wait is a poll that
 * also watches the proxy's stop pipe, as for the other connections. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>

#include "proxy-internal.h"

#define CA_DAYS 30
#define LEAF_CACHE_MAX 64u /* names whose leaf is kept (suffix patterns allow any number) */
#define UP_CAP (PROXY_MITM_MAX_HEAD + 64u * 1024u) /* plaintext for upstream */
#define DOWN_CAP (256u * 1024u)                    /* plaintext for the box */
#define CA_PEM_MAX (1u << 20)                      /* upstream_ca_pem */

struct leaf {
    char name[DBX_HOST_MAX + 1];
    X509 *cert;
    uint64_t used; /* for eviction: the oldest goes first */
};

struct proxy_mitm {
    SSL_CTX *box_ctx, *up_ctx;
    X509 *ca;
    EVP_PKEY *ca_key, *leaf_key; /* one leaf key for every name of this box */
    pthread_mutex_t lock;        /* guards leaves and tick */
    struct leaf leaves[LEAF_CACHE_MAX];
    size_t nleaves;
    uint64_t tick;
};

/* OpenSSL's own words for the last error (no secret is ever part of what it was given). */
static int ssl_err(dbx_error **err, int code, const char *what) {
    char msg[256] = "unknown error";
    unsigned long e = ERR_peek_last_error();
    if (e) ERR_error_string_n(e, msg, sizeof(msg));
    ERR_clear_error();
    return dbx_error_setx(err, code, "%s: %s", what, msg);
}

/* ---- certificates ----------------------------------------------------------------------- */

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext) return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A certificate with a random serial, subject CN cn (NULL: none) and key's public half. */
static X509 *cert_new(const char *cn, EVP_PKEY *key, long not_before_s) {
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();
    X509_NAME *name = X509_NAME_new();
    bool ok = x && bn && name && X509_set_version(x, 2) &&
              BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
              BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
              X509_gmtime_adj(X509_getm_notBefore(x), not_before_s) &&
              (!cn || X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                 (const unsigned char *)cn, -1, -1, 0)) &&
              X509_set_subject_name(x, name) && X509_set_pubkey(x, key);
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static char *pem_of(int (*write)(BIO *, void *), void *obj) {
    BIO *mem = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (mem && write(mem, obj)) {
        char *p = NULL;
        long n = BIO_get_mem_data(mem, &p);
        out = dbx_xstrndup(p, (size_t)n);
    }
    BIO_free(mem);
    return out;
}
static int write_cert(BIO *b, void *x) {
    return PEM_write_bio_X509(b, x);
}
static int write_key(BIO *b, void *k) {
    return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

int proxy_ca_generate(char **ret_cert_pem, char **ret_key_pem, dbx_error **err) {
    ERR_clear_error();
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = key ? cert_new("devbox box CA", key, -3600) : NULL;
    bool ok = x && X509_set_issuer_name(x, X509_get_subject_name(x)) &&
              X509_gmtime_adj(X509_getm_notAfter(x), (long)CA_DAYS * 86400) &&
              add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") == 0 &&
              add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 &&
              add_ext(x, x, NID_subject_key_identifier, "hash") == 0 &&
              X509_sign(x, key, EVP_sha256()) > 0;
    _cleanup_free_ char *cert = ok ? pem_of(write_cert, x) : NULL;
    char *pkey = ok ? pem_of(write_key, key) : NULL;
    X509_free(x);
    EVP_PKEY_free(key);
    if (!cert || !pkey) {
        if (pkey) explicit_bzero(pkey, strlen(pkey));
        free(pkey);
        return ssl_err(err, EIO, "generate the box CA");
    }
    *ret_cert_pem = TAKE_PTR(cert);
    *ret_key_pem = pkey;
    return 0;
}

/* A leaf for h, valid as long as the CA. */
static X509 *leaf_issue(struct proxy_mitm *m, const char *name, bool is_addr) {
    /* a CN holds at most 64 bytes (RFC 5280); clients match the SAN anyway */
    X509 *x = cert_new(strlen(name) <= 64 ? name : NULL, m->leaf_key, -3600);
    _cleanup_free_ char *san = dbx_xasprintf(is_addr ? "IP:%s" : "DNS:%s", name);
    bool ok = x && X509_set_issuer_name(x, X509_get_subject_name(m->ca)) &&
              X509_set1_notAfter(x, X509_get0_notAfter(m->ca)) &&
              add_ext(x, m->ca, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
              add_ext(x, m->ca, NID_key_usage, "critical,digitalSignature") == 0 &&
              add_ext(x, m->ca, NID_ext_key_usage, "serverAuth") == 0 &&
              add_ext(x, m->ca, NID_subject_alt_name, san) == 0 &&
              add_ext(x, m->ca, NID_authority_key_identifier, "keyid:always") == 0 &&
              X509_sign(x, m->ca_key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* The cached leaf for name (a reference the caller frees), issued on first use. */
static X509 *leaf_get(struct proxy_mitm *m, const struct policy_host *h) {
    pthread_mutex_lock(&m->lock);
    X509 *x = NULL;
    size_t oldest = 0;
    for (size_t i = 0; i < m->nleaves && !x; i++) {
        if (strcmp(m->leaves[i].name, h->name) == 0) {
            x = m->leaves[i].cert;
            m->leaves[i].used = ++m->tick;
        } else if (m->leaves[i].used < m->leaves[oldest].used) {
            oldest = i;
        }
    }
    if (!x) {
        x = leaf_issue(m, h->name, h->is_addr);
        if (x) {
            size_t slot = m->nleaves < LEAF_CACHE_MAX ? m->nleaves++ : oldest;
            X509_free(m->leaves[slot].cert);
            m->leaves[slot] = (struct leaf){.cert = x, .used = ++m->tick};
            memcpy(m->leaves[slot].name, h->name, strlen(h->name) + 1);
        }
    }
    if (x) X509_up_ref(x);
    pthread_mutex_unlock(&m->lock);
    return x;
}

int proxy_mitm_leaf_pem(struct proxy *p, const char *name, char **ret_cert, char **ret_key,
                        dbx_error **err) {
    struct policy_host h;
    const char *why = NULL;
    if (!p->mitm) return dbx_error_setx(err, EINVAL, "proxy without secrets");
    if (policy_host_parse(name, strlen(name), &h, &why) < 0)
        return dbx_error_setx(err, EINVAL, "'%s': %s", name, why);
    X509 *x = leaf_get(p->mitm, &h);
    if (!x) return ssl_err(err, EIO, "issue a leaf certificate");
    char *cert = pem_of(write_cert, x);
    char *key = pem_of(write_key, p->mitm->leaf_key);
    X509_free(x);
    *ret_cert = cert;
    *ret_key = key;
    return 0;
}

/* ---- contexts --------------------------------------------------------------------------- */

/* Towards the box: only http/1.1 (the relay parses HTTP/1.1 heads; an h2 client falls back
 * when the server selects no protocol). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg) {
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *ctx_new(bool server) {
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

/* OpenSSL's default store plus every certificate of pem. */
static int up_ctx_new(struct proxy_mitm *m, const char *pem, dbx_error **err) {
    m->up_ctx = ctx_new(false);
    if (!m->up_ctx) return ssl_err(err, ENOMEM, "upstream TLS context");
    SSL_CTX_set_verify(m->up_ctx, SSL_VERIFY_PEER, NULL);
    if (!SSL_CTX_set_default_verify_paths(m->up_ctx))
        return ssl_err(err, EIO, "upstream TLS: default CA store");
    static const unsigned char h11[] = "\x08http/1.1";
    if (SSL_CTX_set_alpn_protos(m->up_ctx, h11, sizeof(h11) - 1) != 0)
        return ssl_err(err, EIO, "upstream TLS: ALPN");
    if (!pem || !pem[0]) return 0; /* the host lists no CA files */
    if (strlen(pem) > CA_PEM_MAX)
        return dbx_error_setx(err, EFBIG, "upstream CA certificates over %u KiB",
                              CA_PEM_MAX / 1024);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_STORE *store = SSL_CTX_get_cert_store(m->up_ctx);
    X509 *x;
    unsigned n = 0;
    while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        int ok = X509_STORE_add_cert(store, x);
        X509_free(x);
        if (!ok) {
            BIO_free(bio);
            return ssl_err(err, EINVAL, "upstream CA certificates");
        }
        n++;
    }
    BIO_free(bio);
    ERR_clear_error(); /* the end of the PEM text */
    if (n == 0) return dbx_error_setx(err, EINVAL, "upstream CA certificates: none in the PEM");
    return 0;
}

int proxy_mitm_new(const struct proxy_config *cfg, struct proxy_mitm **ret, dbx_error **err) {
    if (!cfg->mitm_ca_cert_pem || !cfg->mitm_ca_key_pem)
        return dbx_error_setx(err, EINVAL, "secrets need the box CA certificate and key");
    struct proxy_mitm *m = dbx_xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    ERR_clear_error();
    BIO *cb = BIO_new_mem_buf(cfg->mitm_ca_cert_pem, -1);
    BIO *kb = BIO_new_mem_buf(cfg->mitm_ca_key_pem, -1);
    m->ca = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    m->ca_key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    BIO_free(cb);
    BIO_free(kb);
    int r = 0;
    if (!m->ca || !m->ca_key)
        r = ssl_err(err, EINVAL, "box CA certificate or key");
    else if (!X509_check_private_key(m->ca, m->ca_key))
        r = ssl_err(err, EINVAL, "box CA: the key does not belong to the certificate");
    else if (!(m->leaf_key = EVP_EC_gen("P-256")))
        r = ssl_err(err, EIO, "box leaf key");
    else if (!(m->box_ctx = ctx_new(true)))
        r = ssl_err(err, ENOMEM, "box TLS context");
    if (r == 0) {
        SSL_CTX_set_alpn_select_cb(m->box_ctx, alpn_select, NULL);
        r = up_ctx_new(m, cfg->upstream_ca_pem, err);
    }
    if (r < 0) {
        proxy_mitm_free(m);
        return r;
    }
    *ret = m;
    return 0;
}

void proxy_mitm_free(struct proxy_mitm *m) {
    if (!m) return;
    for (size_t i = 0; i < m->nleaves; i++)
        X509_free(m->leaves[i].cert);
    SSL_CTX_free(m->box_ctx);
    SSL_CTX_free(m->up_ctx);
    X509_free(m->ca);
    EVP_PKEY_free(m->ca_key);
    EVP_PKEY_free(m->leaf_key);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

bool proxy_mitm_wanted(const struct proxy *p, const struct policy_host *h, uint16_t port) {
    if (!p->mitm || port != 443) return false;
    for (size_t i = 0; i < p->nsecrets; i++)
        if (proxy_secret_allows(&p->secrets[i], h, port)) return true;
    return false;
}

/* ---- one intercepted connection --------------------------------------------------------- */

struct side {
    SSL *ssl;
    int fd;
    short want; /* poll events the last SSL call asked for */
    bool eof;
};

struct mitm_conn {
    struct conn *c;
    struct side box, up;
    struct dbx_buf toup, tobox; /* plaintext waiting to be written (toup may hold values) */
    struct proxy_body body;
    int deny_status;
    char *deny_reason;
    bool up_closing; /* close_notify sent upstream */
    bool cut;        /* the drain timed out inside a response: no 403 after it */
};

/* Run one handshake step loop until done, failure (-EPROTO) or a wait error. */
static int handshake(struct mitm_conn *mc, struct side *s, bool server, uint64_t deadline) {
    for (;;) {
        ERR_clear_error();
        int r = server ? SSL_accept(s->ssl) : SSL_connect(s->ssl);
        if (r == 1) return 0;
        int e = SSL_get_error(s->ssl, r);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev) return -EPROTO;
        int w = proxy_wait(mc->c, s->fd, ev, deadline);
        if (w < 0) return w;
    }
}

/* Why a handshake failed, in OpenSSL's words (and the chain check's, upstream). */
static char *handshake_why(const char *what, struct side *s, int r) {
    char msg[256] = "connection closed";
    unsigned long e = ERR_peek_last_error();
    if (r == -ETIMEDOUT) snprintf(msg, sizeof(msg), "timed out");
    if (r == -ECANCELED) snprintf(msg, sizeof(msg), "proxy stopped");
    if (r == -EPROTO && e) ERR_error_string_n(e, msg, sizeof(msg));
    ERR_clear_error();
    long v = SSL_get_verify_result(s->ssl);
    if (v != X509_V_OK)
        return dbx_xasprintf("%s: %s (%s)", what, msg, X509_verify_cert_error_string(v));
    return dbx_xasprintf("%s: %s", what, msg);
}

/* Write everything (a refusal) over TLS to the box, waiting as needed. */
static void box_write_all(struct mitm_conn *mc, const char *p, size_t n) {
    uint64_t deadline = dbx_now_ms() + PROXY_WRITE_TIMEOUT_MS;
    while (n > 0) {
        ERR_clear_error();
        int k = SSL_write(mc->box.ssl, p, (int)n);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            mc->c->down += (size_t)k;
            continue;
        }
        int e = SSL_get_error(mc->box.ssl, k);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev || proxy_wait(mc->c, mc->box.fd, ev, deadline) < 0) return;
    }
}

/* Answer the box with status over TLS, close its side and log. */
static void mitm_refuse(struct mitm_conn *mc, int status, const char *verdict, const char *why) {
    _cleanup_free_ char *shown = dbx_sanitize_printable(dbx_xstrdup(why));
    size_t pn = strcspn(shown, ";");
    _cleanup_free_ char *msg = dbx_xasprintf(
        "HTTP/1.1 %d %s%.*s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
        "Connection: close\r\n\r\ndevbox: %s\n",
        status,
        status == 403 ? "Forbidden by devbox: " : "Error from devbox: ", (int)(pn < 200 ? pn : 200),
        shown, strlen(shown) + 9, shown);
    if (!mc->cut) box_write_all(mc, msg, strlen(msg));
    ERR_clear_error();
    (void)SSL_shutdown(mc->box.ssl);
    proxy_log(mc->c, verdict, why);
    proxy_finish_client(mc->c);
}

static void set_deny(struct mitm_conn *mc, int status, char *why) {
    if (mc->deny_status) {
        free(why);
        return;
    }
    mc->deny_status = status;
    mc->deny_reason = why;
}

/* One parsed head: checked against the CONNECT host, rewritten into toup.  -1: refused. */
static int take_head(struct mitm_conn *mc, const uint8_t *h, const struct proxy_http_req *req) {
    struct conn *c = mc->c;
    if (req->has_host && (req->host.is_addr != c->host.is_addr ||
                          strcmp(req->host.name, c->host.name) != 0 || req->port != c->port)) {
        char got[DBX_HOST_MAX + 16];
        proxy_fmt_target(&req->host, req->port, got, sizeof(got));
        set_deny(mc, 403, dbx_xasprintf("Host '%s' differs from the CONNECT host", got));
        return -1;
    }
    _cleanup_error_ dbx_error *err = NULL;
    int bad = -1;
    int r = proxy_secret_head(h, req, c->p->secrets, c->p->nsecrets, &c->host, c->port, &mc->toup,
                              &bad, &err);
    if (r < 0) {
        set_deny(mc, r == -EACCES ? 403 : 431, dbx_xstrdup(err->msg));
        return -1;
    }
    proxy_body_init(&mc->body, req);
    c->reqs++;
    return 0;
}

/* Move parsed box bytes from cin to toup.  -1 once a request was refused.  toup is compacted
 * first and never grows past its allocation (no realloc leaves a copy of a value behind). */
static int process(struct mitm_conn *mc) {
    struct conn *c = mc->c;
    struct buf *in = &c->cin;
    if (mc->toup.off > 0) {
        memmove(mc->toup.data, mc->toup.data + mc->toup.off, mc->toup.len - mc->toup.off);
        mc->toup.len -= mc->toup.off;
        mc->toup.off = 0;
    }
    while (buf_len(in) > 0) {
        const uint8_t *p = in->data + in->start;
        if (!mc->body.done) {
            size_t room = UP_CAP - (mc->toup.len - mc->toup.off);
            size_t n = buf_len(in) < room ? buf_len(in) : room;
            if (n == 0) return 0;
            _cleanup_error_ dbx_error *err = NULL;
            ssize_t k = proxy_body_scan(&mc->body, p, n, &err);
            if (k < 0) {
                set_deny(mc, 400, dbx_xstrdup(err->msg));
                return -1;
            }
            dbx_buf_put(&mc->toup, p, (size_t)k);
            in->start += (size_t)k;
            if (in->start == in->end) in->start = in->end = 0;
            continue;
        }
        if (mc->toup.len - mc->toup.off > UP_CAP - PROXY_MITM_MAX_HEAD) return 0;
        struct proxy_http_req req;
        _cleanup_error_ dbx_error *err = NULL;
        int r = proxy_http_parse_origin(p, buf_len(in), &req, &err);
        if (r == 0) {
            if (in->start > 0) {
                memmove(in->data, p, buf_len(in));
                in->end -= in->start;
                in->start = 0;
            }
            return 0;
        }
        if (r < 0) {
            set_deny(mc, proxy_http_status(r), dbx_xstrdup(err->msg));
            return -1;
        }
        if (take_head(mc, p, &req) < 0) return -1;
        in->start += req.head_len;
        if (in->start == in->end) in->start = in->end = 0;
    }
    return 0;
}

/* SSL_read/SSL_write outcome: > 0 bytes, 0 would block (s->want set), -1 end of stream or
 * error. */
static int io_result(struct side *s, int k) {
    if (k > 0) return k;
    int e = SSL_get_error(s->ssl, k);
    if (e == SSL_ERROR_WANT_READ) s->want |= POLLIN;
    if (e == SSL_ERROR_WANT_WRITE) s->want |= POLLOUT;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    ERR_clear_error();
    return -1;
}

static bool flush(struct side *s, struct dbx_buf *b, uint64_t *count, bool *failed) {
    if (b->len == b->off) return false;
    ERR_clear_error();
    size_t n = b->len - b->off;
    int k = io_result(s, SSL_write(s->ssl, b->data + b->off, (int)(n > INT_MAX ? INT_MAX : n)));
    if (k < 0) *failed = true;
    if (k <= 0) return false;
    *count += (size_t)k;
    b->off += (size_t)k;
    if (b->off == b->len) b->off = b->len = 0; /* keep the bytes in place until all are sent */
    return true;
}

/* One pass over both sides; whether anything moved.  -1 in *failed ends the connection. */
static bool step(struct mitm_conn *mc, bool *failed) {
    struct conn *c = mc->c;
    bool moved = false;
    mc->box.want = mc->up.want = 0;
    moved |= flush(&mc->up, &mc->toup, &c->up, failed);
    moved |= flush(&mc->box, &mc->tobox, &c->down, failed);
    if (!mc->box.eof && !mc->deny_status && c->cin.end < c->cin.cap) {
        ERR_clear_error();
        int k = io_result(&mc->box, SSL_read(mc->box.ssl, c->cin.data + c->cin.end,
                                             (int)(c->cin.cap - c->cin.end)));
        if (k < 0) mc->box.eof = true;
        if (k > 0) c->cin.end += (size_t)k;
        moved |= k != 0;
    }
    if (!mc->deny_status && buf_len(&c->cin) > 0) {
        size_t before = buf_len(&c->cin);
        if (process(mc) < 0 || buf_len(&c->cin) != before) moved = true;
    }
    if (!mc->up.eof && mc->tobox.len < DOWN_CAP) {
        size_t room = DOWN_CAP - mc->tobox.len;
        if (mc->tobox.cap < DOWN_CAP) {
            mc->tobox.data = dbx_xrealloc(mc->tobox.data, DOWN_CAP);
            mc->tobox.cap = DOWN_CAP;
        }
        ERR_clear_error();
        int k = io_result(&mc->up, SSL_read(mc->up.ssl, mc->tobox.data + mc->tobox.len, (int)room));
        if (k < 0) mc->up.eof = true;
        if (k > 0) mc->tobox.len += (size_t)k;
        moved |= k != 0;
    }
    return moved;
}

/* The relay: until the box is done (or refused and the earlier responses are through), or
 * upstream closed and its bytes reached the box. */
static void relay(struct mitm_conn *mc) {
    struct conn *c = mc->c;
    uint64_t drain_until = 0;
    for (;;) {
        bool failed = false;
        bool moved = step(mc, &failed);
        if (failed) return;
        bool up_idle = mc->toup.len == mc->toup.off;
        bool down_idle = mc->tobox.len == mc->tobox.off;
        /* the box finished, or a request was refused: after the last forwarded bytes, tell
         * upstream (close_notify) and relay what it still answers, for a while */
        if ((mc->box.eof || mc->deny_status) && up_idle && !mc->up_closing) {
            ERR_clear_error();
            (void)SSL_shutdown(mc->up.ssl);
            mc->up_closing = true;
            drain_until = dbx_now_ms() + PROXY_DRAIN_TIMEOUT_MS;
            /* nobody left to read answers, or no request went upstream before the refusal */
            if (!mc->deny_status || c->reqs == 0) return;
        }
        if (mc->up.eof && down_idle) return;
        if (mc->deny_status && mc->up_closing && down_idle && dbx_now_ms() >= drain_until) return;
        /* the drain is over: a box that stops reading what it asked for must not keep this
         * thread polling with a zero timeout (and a 403 would land inside a partial response) */
        if (drain_until && dbx_now_ms() >= drain_until) {
            mc->cut = !down_idle;
            return;
        }
        if (moved) continue;
        struct pollfd pfd[3] = {{mc->box.want ? mc->box.fd : -1, mc->box.want, 0},
                                {mc->up.want ? mc->up.fd : -1, mc->up.want, 0},
                                {c->p->stop_pipe[0], POLLIN, 0}};
        uint64_t now = dbx_now_ms();
        int timeout = !drain_until        ? (int)PROXY_IDLE_TIMEOUT_MS
                      : drain_until > now ? (int)(drain_until - now)
                                          : 0;
        int r = poll(pfd, 3, timeout);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || pfd[2].revents) return;
        if (r == 0 && !drain_until) return; /* idle for an hour */
    }
}

static SSL *side_ssl(SSL_CTX *ctx, int fd, struct buf *first) {
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return NULL;
    BIO *wbio = BIO_new_socket(fd, BIO_NOCLOSE);
    BIO *rbio = BIO_new_socket(fd, BIO_NOCLOSE);
    if (first && rbio) {
        /* the ClientHello the SNI check already read comes first, then the socket */
        BIO *buffered = BIO_new(BIO_f_buffer());
        if (buffered && BIO_set_buffer_read_data(buffered, first->data + first->start,
                                                 (int)buf_len(first)) > 0) {
            rbio = BIO_push(buffered, rbio);
        } else {
            BIO_free(buffered);
            BIO_free(rbio);
            rbio = NULL;
        }
    }
    if (!wbio || !rbio) {
        BIO_free_all(rbio);
        BIO_free(wbio);
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_bio(ssl, rbio, wbio);
    return ssl;
}

static int mitm_setup(struct mitm_conn *mc) {
    struct conn *c = mc->c;
    struct proxy_mitm *m = c->p->mitm;
    X509 *leaf = leaf_get(m, &c->host);
    mc->box.ssl = leaf ? side_ssl(m->box_ctx, c->cfd, &c->cin) : NULL;
    bool ok = mc->box.ssl && SSL_use_certificate(mc->box.ssl, leaf) == 1 &&
              SSL_use_PrivateKey(mc->box.ssl, m->leaf_key) == 1;
    X509_free(leaf);
    if (!ok) {
        _cleanup_error_ dbx_error *err = NULL;
        ssl_err(&err, EIO, "box TLS setup");
        proxy_log(c, "error", err->msg);
        return -1;
    }
    c->cin.start = c->cin.end = 0; /* now inside the buffering BIO */
    int r = handshake(mc, &mc->box, true, dbx_now_ms() + c->p->head_total_ms);
    if (r < 0) {
        _cleanup_free_ char *why = handshake_why("TLS handshake with the box", &mc->box, r);
        proxy_log(c, "deny", why);
        return -1;
    }
    mc->up.ssl = side_ssl(m->up_ctx, c->ufd, NULL);
    X509_VERIFY_PARAM *vp = mc->up.ssl ? SSL_get0_param(mc->up.ssl) : NULL;
    ok = vp && (c->host.is_addr ? X509_VERIFY_PARAM_set1_ip_asc(vp, c->host.name)
                                : X509_VERIFY_PARAM_set1_host(vp, c->host.name, 0) &&
                                      SSL_set_tlsext_host_name(mc->up.ssl, c->host.name));
    if (vp) X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    r = ok ? handshake(mc, &mc->up, false, dbx_now_ms() + PROXY_CONNECT_TIMEOUT_MS) : -EPROTO;
    if (r < 0) {
        _cleanup_free_ char *why = handshake_why("upstream TLS", &mc->up, r);
        mitm_refuse(mc, 502, "error", why);
        return -1;
    }
    return 0;
}

void proxy_mitm_serve(struct conn *c) {
    struct mitm_conn mc = {.c = c, .box.fd = c->cfd, .up.fd = c->ufd};
    c->mitm = true;
    c->method = "CONNECT+mitm";
    proxy_body_init(&mc.body, &(struct proxy_http_req){.body = PROXY_BODY_NONE});
    mc.toup.data = dbx_xmalloc(UP_CAP + PROXY_MITM_MAX_HEAD);
    mc.toup.cap = UP_CAP + PROXY_MITM_MAX_HEAD;
    if (mitm_setup(&mc) == 0) {
        relay(&mc);
        if (mc.deny_status) {
            proxy_stamp(c);
            mitm_refuse(&mc, mc.deny_status, "deny", mc.deny_reason);
        } else {
            ERR_clear_error();
            (void)SSL_shutdown(mc.box.ssl);
            proxy_log(c, "allow", NULL);
        }
    }
    SSL_free(mc.box.ssl);
    SSL_free(mc.up.ssl);
    ERR_clear_error();
    explicit_bzero(mc.toup.data, mc.toup.cap); /* rewritten heads held values */
    dbx_buf_free(&mc.toup);
    dbx_buf_free(&mc.tobox);
    free(mc.deny_reason);
}

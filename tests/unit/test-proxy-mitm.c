/* tests/unit/test-proxy-mitm.c: secrets in the egress proxy: the per-box CA and its leaves,
 * the head rewrite (pure), placeholder refusals, and interception end to end against a TLS
 * server on loopback port 443 (in a private network namespace, as test-proxy.c) whose
 * certificate a test CA signed, trusted through upstream_ca_pem.
 *
 * DEVBOX_PROXY_MITM_BENCH=N runs the interception cost measurement with N requests (make
 * bench); without it a short run checks that the measurement works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>

#include "proxy/proxy-internal.h"
#include "proxy/proxy.h"
#include "tests/unit/helpers.h"
#include "tests/unit/test-proxy-fixture.h"
#include "tests/unit/test-proxy-hello.h"

static bool have_netns;

#define VALUE "sk-test-REAL-VALUE-0123456789"
#define VALUE2 "other-REAL-VALUE-987"
#define PH "devbox-secret-API_KEY-0123456789abcdef0123456789abcdef"
#define PH2 "devbox-secret-OTHER-fedcba9876543210fedcba9876543210"

static char *api_hosts[] = {"api.test", NULL};
static char *other_hosts[] = {"other.test", NULL};
static const struct proxy_secret secrets[] = {
    {.name = "API_KEY",
     .placeholder = PH,
     .value = VALUE,
     .hosts = api_hosts,
     .header = "x-api-key: {}"},
    {.name = "OTHER", .placeholder = PH2, .value = VALUE2, .hosts = other_hosts, .header = NULL},
};

/* ---- certificates ------------------------------------------------------------------------ */

static X509 *pem_cert(const char *pem) {
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

static EVP_PKEY *pem_key(const char *pem) {
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(k);
    return k;
}

/* A proxy whose only use is issuing leaves signed by ca (for the test's upstream server). */
static struct proxy *issuer_start(const char *ca_cert, const char *ca_key) {
    struct proxy_config cfg = {.log_fd = -1,
                               .secrets = secrets,
                               .nsecrets = 1,
                               .mitm_ca_cert_pem = ca_cert,
                               .mitm_ca_key_pem = ca_key};
    struct proxy *p = NULL;
    dbx_error *e = NULL;
    if (proxy_start(&cfg, &p, &e) < 0) fail_msg("proxy start: %s", e->msg);
    return p;
}

static void test_ca_and_leaf(void **state) {
    char *cert = NULL, *key = NULL;
    dbx_error *e = NULL;
    assert_int_equal(proxy_ca_generate(&cert, &key, &e), 0);
    X509 *ca = pem_cert(cert);
    EVP_PKEY *ck = pem_key(key);
    assert_true(X509_check_private_key(ca, ck));
    assert_int_equal(X509_check_ca(ca), 1);
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, NULL, NULL);
    assert_non_null(bc);
    assert_true(bc->ca && bc->pathlen && ASN1_INTEGER_get(bc->pathlen) == 0);
    BASIC_CONSTRAINTS_free(bc);
    char cn[64];
    X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "devbox box CA");
    assert_int_equal(EVP_PKEY_get_base_id(ck), EVP_PKEY_EC);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(ca));
    assert_true(days >= 29 && days <= 30);

    struct proxy *p = issuer_start(cert, key);
    char *l1 = NULL, *k1 = NULL, *l2 = NULL, *k2 = NULL, *l3 = NULL, *k3 = NULL;
    assert_int_equal(proxy_mitm_leaf_pem(p, "api.test", &l1, &k1, &e), 0);
    assert_int_equal(proxy_mitm_leaf_pem(p, "api.test", &l2, &k2, &e), 0);
    assert_int_equal(proxy_mitm_leaf_pem(p, "127.0.0.1", &l3, &k3, &e), 0);
    assert_string_equal(l1, l2); /* cached per name */
    assert_string_not_equal(l1, l3);
    X509 *leaf = pem_cert(l1), *ipleaf = pem_cert(l3);
    /* the chain verifies against the CA alone, for that name only */
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, NULL);
    X509_VERIFY_PARAM_set_purpose(X509_STORE_CTX_get0_param(ctx), X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), "api.test", 0);
    if (X509_verify_cert(ctx) != 1)
        fail_msg("leaf: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    assert_int_equal(X509_check_host(leaf, "api.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "other.test", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(ipleaf, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ca(leaf), 0);
    EVP_PKEY *lk = pem_key(k1);
    assert_true(X509_check_private_key(leaf, lk) == 1);
    EVP_PKEY_free(lk);
    /* another CA's leaf does not verify */
    char *cert2 = NULL, *key2 = NULL;
    assert_int_equal(proxy_ca_generate(&cert2, &key2, &e), 0);
    X509_STORE *other = X509_STORE_new();
    X509 *ca2 = pem_cert(cert2);
    X509_STORE_add_cert(other, ca2);
    X509_free(ca2);
    ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, other, leaf, NULL);
    assert_int_equal(X509_verify_cert(ctx), 0);
    X509_STORE_CTX_free(ctx);
    /* a key that is not the CA's is refused */
    struct proxy_config cfg = {.log_fd = -1,
                               .secrets = secrets,
                               .nsecrets = 1,
                               .mitm_ca_cert_pem = cert,
                               .mitm_ca_key_pem = key2};
    struct proxy *bad = NULL;
    assert_int_equal(proxy_start(&cfg, &bad, &e), -EINVAL);
    assert_non_null(strstr(e->msg, "does not belong"));
    dbx_error_free(&e);
    cfg.mitm_ca_key_pem = NULL;
    assert_int_equal(proxy_start(&cfg, &bad, &e), -EINVAL);
    dbx_error_free(&e);
    proxy_stop(p);
    X509_STORE_free(store);
    X509_STORE_free(other);
    X509_free(leaf);
    X509_free(ipleaf);
    X509_free(ca);
    EVP_PKEY_free(ck);
    free(cert), free(key), free(cert2), free(key2);
    free(l1), free(k1), free(l2), free(k2), free(l3), free(k3);
}

/* ---- the pure parts ---------------------------------------------------------------------- */

static void test_secrets_check(void **state) {
    dbx_error *e = NULL;
    assert_int_equal(proxy_secrets_check(secrets, 2, &e), 0);
    char *nohosts[] = {NULL}, *badhost[] = {"127.1", NULL};
    static const struct {
        struct proxy_secret s;
        const char *want;
    } cases[] = {
        {{.name = "1X", .placeholder = PH, .value = "v", .hosts = api_hosts}, "secret name"},
        {{.name = "X", .placeholder = "short", .value = "v", .hosts = api_hosts}, "placeholder"},
        {{.name = "X", .placeholder = PH "\n", .value = "v", .hosts = api_hosts}, "placeholder"},
        {{.name = "X", .placeholder = PH, .value = "", .hosts = api_hosts}, "empty"},
        {{.name = "X", .placeholder = PH, .value = "a\r\nInjected: 1", .hosts = api_hosts},
         "control byte (at offset 1)"},
        {{.name = "X", .placeholder = PH, .value = "v", .hosts = NULL}, "host patterns"},
        {{.name = "X", .placeholder = PH, .value = "v", .hosts = api_hosts, .header = "x: v"},
         "{}"},
        {{.name = "X", .placeholder = PH, .value = "v", .hosts = api_hosts, .header = ": {}"},
         "Name: value"},
        {{.name = "X", .placeholder = PH, .value = "v", .hosts = api_hosts, .header = "x: {}{}"},
         "exactly one"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        assert_true(proxy_secrets_check(&cases[i].s, 1, &e) < 0);
        if (!strstr(e->msg, cases[i].want)) fail_msg("case %zu: %s", i, e->msg);
        assert_null(strstr(e->msg, "Injected")); /* never the value */
        dbx_error_free(&e);
    }
    struct proxy_secret s = {.name = "X", .placeholder = PH, .value = "v", .hosts = nohosts};
    assert_true(proxy_secrets_check(&s, 1, &e) < 0);
    dbx_error_free(&e);
    s.hosts = badhost;
    assert_true(proxy_secrets_check(&s, 1, &e) < 0);
    assert_non_null(strstr(e->msg, "secret 'X'"));
    dbx_error_free(&e);
    struct proxy_secret two[] = {secrets[0], secrets[0]};
    assert_true(proxy_secrets_check(two, 2, &e) < 0);
    assert_non_null(strstr(e->msg, "twice"));
    dbx_error_free(&e);
    two[1].name = "B";
    two[1].placeholder = PH "x"; /* contains the first */
    assert_true(proxy_secrets_check(two, 2, &e) < 0);
    assert_non_null(strstr(e->msg, "overlapping"));
    dbx_error_free(&e);
}

static void test_parse_origin(void **state) {
    struct proxy_http_req r;
    dbx_error *e = NULL;
    const char *ok = "PUT /v1/x?y=1 HTTP/1.1\r\nHost: API.test.\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(proxy_http_parse_origin((const uint8_t *)ok, strlen(ok), &r, &e), 1);
    assert_int_equal(r.method, PROXY_HTTP_PUT);
    assert_string_equal(r.host.name, "api.test");
    assert_int_equal(r.port, 443);
    assert_int_equal(r.body, PROXY_BODY_LENGTH);
    const char *opt = "OPTIONS * HTTP/1.1\r\nHost: api.test:8443\r\n\r\n";
    assert_int_equal(proxy_http_parse_origin((const uint8_t *)opt, strlen(opt), &r, &e), 1);
    assert_int_equal(r.port, 8443);
    static const struct {
        const char *req;
        int code;
    } bad[] = {
        {"GET http://api.test/ HTTP/1.1\r\nHost: api.test\r\n\r\n", -EINVAL},
        {"GET / HTTP/1.1\r\n\r\n", -EINVAL},
        {"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test\r\n\r\n", -EOPNOTSUPP},
        {"GET * HTTP/1.1\r\nHost: api.test\r\n\r\n", -EINVAL},
        {"GET / HTTP/1.1\r\nHost: u@api.test\r\n\r\n", -EINVAL},
        {"GET / HTTP/1.1\r\nHost: 127.1\r\n\r\n", -EACCES},
        {"GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n", -EINVAL},
        {"GET / HTTP/1.1\r\nHost: a.test\r\nX: a\r\n b\r\n\r\n", -EINVAL},
        {"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked"
         "\r\n\r\n",
         -EINVAL},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        int rc = proxy_http_parse_origin((const uint8_t *)bad[i].req, strlen(bad[i].req), &r, &e);
        if (rc != bad[i].code) fail_msg("case %zu: %d (%s)", i, rc, e ? e->msg : "-");
        dbx_error_free(&e);
    }
    /* the proxy form still refuses the new methods */
    const char *put = "PUT http://a.test/ HTTP/1.1\r\n\r\n";
    assert_int_equal(proxy_http_parse((const uint8_t *)put, strlen(put), &r, &e), -EOPNOTSUPP);
    dbx_error_free(&e);
}

/* Rewrite head for host; the result as a string (NULL on refusal, *ret_rc set). */
static char *rewrite(const char *head, const char *host, int *ret_rc, int *ret_secret,
                     dbx_error **err) {
    static struct proxy_http_req r;
    assert_int_equal(proxy_http_parse_origin((const uint8_t *)head, strlen(head), &r, err), 1);
    struct policy_host h;
    const char *why = NULL;
    assert_int_equal(policy_host_parse(host, strlen(host), &h, &why), 0);
    struct dbx_buf out = {0};
    *ret_rc =
        proxy_secret_head((const uint8_t *)head, &r, secrets, 2, &h, 443, &out, ret_secret, err);
    if (*ret_rc < 0) {
        assert_int_equal(out.len, 0);
        dbx_buf_free(&out);
        return NULL;
    }
    char *s = dbx_xstrndup((const char *)out.data, out.len);
    dbx_buf_free(&out);
    return s;
}

static void test_secret_head(void **state) {
    int rc = 0, which = -1;
    dbx_error *e = NULL;
    char *s = rewrite("POST /v1/messages?k=" PH " HTTP/1.1\r\nHost: api.test\r\n"
                      "Authorization: Bearer " PH "," PH "\r\nConnection: "
                      "Upgrade, keep-alive\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n"
                      "Content-Length: 0\r\n\r\n",
                      "api.test", &rc, &which, &e);
    assert_int_equal(rc, 0);
    assert_string_equal(s, "POST /v1/messages?k=" PH " HTTP/1.1\r\nHost: api.test\r\n"
                           "Authorization: Bearer " VALUE "," VALUE "\r\n"
                           "Content-Length: 0\r\nx-api-key: " VALUE
                           "\r\nConnection: keep-alive\r\n\r\n");
    free(s);
    /* the header is not added twice (name compared without case), HTTP/1.0 closes */
    s = rewrite("GET / HTTP/1.0\r\nX-API-Key: mine\r\n\r\n", "api.test", &rc, &which, &e);
    assert_string_equal(s, "GET / HTTP/1.0\r\nX-API-Key: mine\r\nConnection: close\r\n\r\n");
    free(s);
    /* a host no secret goes to gets no header */
    s = rewrite("GET / HTTP/1.1\r\nHost: else.test\r\n\r\n", "else.test", &rc, &which, &e);
    assert_string_equal(s, "GET / HTTP/1.1\r\nHost: else.test\r\nConnection: keep-alive\r\n\r\n");
    free(s);
    /* a placeholder in a header the server may reflect (not Authorization, not the secret's
     * own header) is refused even to the secret's host */
    const char *reflected[] = {
        "GET / HTTP/1.1\r\nHost: api.test\r\nOrigin: https://" PH "\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: api.test\r\nX-Two: a," PH "\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: api.test\r\nreferer: " PH "\r\n\r\n",
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(reflected); i++) {
        assert_null(rewrite(reflected[i], "api.test", &rc, &which, &e));
        assert_int_equal(rc, -EACCES);
        assert_int_equal(which, 0);
        assert_non_null(strstr(e->msg, "placeholder in header"));
        assert_null(strstr(e->msg, VALUE));
        dbx_error_free(&e);
    }
    /* a placeholder where its secret may not go: refused, named, value-free message */
    const char *wrong[] = {
        "GET / HTTP/1.1\r\nHost: api.test\r\nX: " PH2 "\r\n\r\n",
        "GET /?q=" PH2 " HTTP/1.1\r\nHost: api.test\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " PH "\r\nX: a" PH2 "b\r\n\r\n",
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(wrong); i++) {
        assert_null(rewrite(wrong[i], "api.test", &rc, &which, &e));
        assert_int_equal(rc, -EACCES);
        assert_int_equal(which, 1);
        assert_string_equal(e->msg, "secret OTHER placeholder sent to api.test");
        dbx_error_free(&e);
    }
    assert_null(rewrite("GET / HTTP/1.1\r\nHost: other.test\r\nA: " PH "\r\n\r\n", "other.test",
                        &rc, &which, &e));
    assert_int_equal(which, 0);
    assert_null(strstr(e->msg, VALUE));
    dbx_error_free(&e);
    /* the misplacement check alone, as plain http and CONNECT heads use it */
    struct policy_host h;
    const char *why = NULL;
    policy_host_parse("api.test", 8, &h, &why);
    const char *head = "GET http://api.test/ HTTP/1.1\r\nX: " PH "\r\n\r\n";
    assert_int_equal(
        proxy_secret_misplaced((const uint8_t *)head, strlen(head), secrets, 2, &h, 80), -1);
    policy_host_parse("evil.test", 9, &h, &why);
    assert_int_equal(
        proxy_secret_misplaced((const uint8_t *)head, strlen(head), secrets, 2, &h, 80), 0);
}

/* ---- a TLS origin server ------------------------------------------------------------------- */

struct tls_server {
    int lfd;
    pthread_t tid;
    SSL_CTX *ctx;
    pthread_mutex_t lock;
    char log[64 * 1024]; /* every request head, in order */
    size_t log_len;
    unsigned char random[32]; /* the last ClientHello's random */
    char alpn[32];            /* what the last client got */
};

static int hello_cb(SSL *ssl, int *al, void *arg) {
    struct tls_server *s = arg;
    const unsigned char *r = NULL;
    size_t n = SSL_client_hello_get0_random(ssl, &r);
    pthread_mutex_lock(&s->lock);
    if (n == 32) memcpy(s->random, r, 32);
    pthread_mutex_unlock(&s->lock);
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int srv_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                    const unsigned char *in, unsigned inlen, void *arg) {
    /* prefers h2 when offered: the proxy must not offer it */
    static const unsigned char prefs[] = "\x02h2\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, prefs, sizeof(prefs) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Answer each request (Content-Length bodies only) with its request line; stop on close. */
static void tls_serve(struct tls_server *s, SSL *ssl) {
    char buf[16384];
    size_t len = 0;
    for (;;) {
        char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (!end) {
            if (len == sizeof(buf)) return;
            int k = SSL_read(ssl, buf + len, (int)(sizeof(buf) - len));
            if (k <= 0) return;
            len += (size_t)k;
            continue;
        }
        size_t head = (size_t)(end - buf) + 4, body = 0;
        pthread_mutex_lock(&s->lock);
        if (s->log_len + head < sizeof(s->log)) {
            memcpy(s->log + s->log_len, buf, head);
            s->log_len += head;
            s->log[s->log_len] = '\0';
        }
        pthread_mutex_unlock(&s->lock);
        char *cl = strcasestr(buf, "\r\ncontent-length: ");
        if (cl && cl < end) body = strtoul(cl + 18, NULL, 10);
        while (len < head + body) {
            int k = SSL_read(ssl, buf + len, (int)(sizeof(buf) - len));
            if (k <= 0) return;
            len += (size_t)k;
        }
        size_t ll = strcspn(buf, "\r");
        char *resp =
            dbx_xasprintf("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%.*s", ll, (int)ll, buf);
        int w = SSL_write(ssl, resp, (int)strlen(resp));
        free(resp);
        if (w <= 0) return;
        memmove(buf, buf + head + body, len - head - body);
        len -= head + body;
    }
}

static void *tls_server_main(void *arg) {
    struct tls_server *s = arg;
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) return NULL;
        int one = 1; /* the proxy sets it upstream; without it Nagle dominates the bench */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        SSL *ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
            const unsigned char *a = NULL;
            unsigned al = 0;
            SSL_get0_alpn_selected(ssl, &a, &al);
            pthread_mutex_lock(&s->lock);
            snprintf(s->alpn, sizeof(s->alpn), "%.*s", (int)al, a ? (const char *)a : "");
            pthread_mutex_unlock(&s->lock);
            tls_serve(s, ssl);
            SSL_shutdown(ssl);
        }
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
    }
}

/* On 127.0.0.1:443 with a leaf for api.test issued by the test CA (cert, key). */
static struct tls_server *tls_server_start(const char *ca_cert, const char *ca_key) {
    struct tls_server *s = dbx_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    struct proxy *issuer = issuer_start(ca_cert, ca_key);
    char *lc = NULL, *lk = NULL;
    dbx_error *e = NULL;
    assert_int_equal(proxy_mitm_leaf_pem(issuer, "api.test", &lc, &lk, &e), 0);
    proxy_stop(issuer);
    s->ctx = SSL_CTX_new(TLS_server_method());
    X509 *x = pem_cert(lc);
    EVP_PKEY *k = pem_key(lk);
    assert_int_equal(SSL_CTX_use_certificate(s->ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);
    free(lc), free(lk);
    SSL_CTX_set_client_hello_cb(s->ctx, hello_cb, s);
    SSL_CTX_set_alpn_select_cb(s->ctx, srv_alpn, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(443), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 64), 0);
    assert_int_equal(pthread_create(&s->tid, NULL, tls_server_main, s), 0);
    return s;
}

static void tls_server_stop(struct tls_server *s) {
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->tid, NULL);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- the proxy, its clients and its log ---------------------------------------------------- */

struct fixture {
    struct proxy *proxy;
    int log_fd;
    char *ca_cert, *ca_key;      /* the per-box CA */
    char *test_ca, *test_ca_key; /* what signed the upstream server */
    struct tls_server *srv;
};

static char *allow[] = {"api.test", "other.test", "plain.test", "127.0.0.1", NULL};
static char *res[] = {"api.test:127.0.0.1", "other.test:127.0.0.1", "plain.test:127.0.0.1", NULL};

static struct proxy *proxy_with(struct fixture *f, const char *upstream_ca) {
    struct proxy_config cfg = {.allow = allow,
                               .resolve = res,
                               .log_fd = f->log_fd,
                               .secrets = secrets,
                               .nsecrets = 2,
                               .mitm_ca_cert_pem = f->ca_cert,
                               .mitm_ca_key_pem = f->ca_key,
                               .upstream_ca_pem = upstream_ca};
    struct proxy *p = NULL;
    dbx_error *e = NULL;
    if (proxy_start(&cfg, &p, &e) < 0) fail_msg("proxy start: %s", e->msg);
    return p;
}

static void fixture_start(struct fixture *f) {
    *f = (struct fixture){.log_fd = memfd_create("proxy-log", MFD_CLOEXEC)};
    fcntl(f->log_fd, F_SETFL, O_APPEND);
    dbx_error *e = NULL;
    assert_int_equal(proxy_ca_generate(&f->ca_cert, &f->ca_key, &e), 0);
    assert_int_equal(proxy_ca_generate(&f->test_ca, &f->test_ca_key, &e), 0);
    f->srv = tls_server_start(f->test_ca, f->test_ca_key);
    f->proxy = proxy_with(f, f->test_ca);
}

static void fixture_stop(struct fixture *f) {
    proxy_stop(f->proxy);
    tls_server_stop(f->srv);
    close(f->log_fd);
    free(f->ca_cert), free(f->ca_key), free(f->test_ca), free(f->test_ca_key);
}

static char *log_text(const struct fixture *f) {
    return proxy_test_log_text(f->log_fd);
}
static void expect_log(const struct fixture *f, const char *needle, const char *needle2) {
    proxy_test_expect_log(f->log_fd, needle, needle2);
}

/* CONNECT host:443 and a TLS session on top, trusting ca_pem (NULL: nothing), checking the
 * name when check, offering protos (ALPN wire format, NULL: h2 and http/1.1).  NULL (freed)
 * when the handshake fails and !must. */
static SSL *tls_open(struct proxy *p, const char *host, const char *ca_pem, bool check,
                     const char *protos, bool must, int *ret_fd) {
    int fd = proxy_test_client(p);
    char *req = dbx_xasprintf("CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n", host, host);
    send_str(fd, req);
    free(req);
    char buf[1024];
    assert_int_equal(proxy_test_read_response(fd, NULL, buf, sizeof(buf)), 200);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ca_pem) {
        X509 *ca = pem_cert(ca_pem);
        X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca);
        X509_free(ca);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (!protos) protos = "\x02h2\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)protos, (unsigned)strlen(protos));
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the session keeps its reference */
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, host);
    if (check) SSL_set1_host(ssl, host);
    if (SSL_connect(ssl) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        if (must) fail_msg("TLS to %s through the proxy: %s", host, e);
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    *ret_fd = fd;
    return ssl;
}

static SSL *tls_connect(struct proxy *p, const char *host, const char *ca_pem, bool check,
                        int *ret_fd) {
    return tls_open(p, host, ca_pem, check, NULL, true, ret_fd);
}

static void tls_close(SSL *ssl, int fd) {
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
}

static void ssl_send(SSL *ssl, const char *s) {
    assert_int_equal(SSL_write(ssl, s, (int)strlen(s)), (int)strlen(s));
}

/* ---- end to end -------------------------------------------------------------------------- */

static void test_intercept(void **state) {
    if (!have_netns) skip_because("no network namespace for port 443");
    struct fixture f;
    fixture_start(&f);
    char buf[8192];
    int fd = -1;
    SSL *ssl = tls_connect(f.proxy, "api.test", f.ca_cert, true, &fd);
    const unsigned char *a = NULL;
    unsigned al = 0;
    SSL_get0_alpn_selected(ssl, &a, &al);
    assert_int_equal(al, 8);
    assert_memory_equal(a, "http/1.1", 8); /* h2 was offered, not taken */
    /* the placeholder replaced, the header added */
    ssl_send(ssl, "GET /v1/one HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " PH "\r\n\r\n");
    assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "GET /v1/one HTTP/1.1"));
    /* kept alive: a second request with a body, its header supplied by the user */
    ssl_send(ssl, "POST /v1/two HTTP/1.1\r\nHost: api.test\r\nx-api-key: " PH
                  "\r\nContent-Length: 5\r\n\r\nhello");
    assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "POST /v1/two"));
    pthread_mutex_lock(&f.srv->lock);
    char *got = dbx_xstrdup(f.srv->log);
    assert_string_equal(f.srv->alpn, "http/1.1");
    pthread_mutex_unlock(&f.srv->lock);
    assert_non_null(strstr(got, "Authorization: Bearer " VALUE "\r\n"));
    assert_non_null(strstr(got, "x-api-key: " VALUE "\r\n"));
    assert_null(strstr(got, PH));
    /* the other secret's placeholder to this host: 403 over TLS, then closed */
    ssl_send(ssl, "GET /leak HTTP/1.1\r\nHost: api.test\r\nX-Leak: " PH2 "\r\n\r\n");
    assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 403);
    assert_non_null(strstr(buf, "secret OTHER placeholder sent to api.test"));
    assert_true(SSL_read(ssl, buf, 1) <= 0);
    tls_close(ssl, fd);
    pthread_mutex_lock(&f.srv->lock);
    assert_null(strstr(f.srv->log, "/leak"));
    pthread_mutex_unlock(&f.srv->lock);
    expect_log(&f, "deny CONNECT+mitm api.test:443 127.0.0.1:443",
               "reqs=2 reason=\"secret OTHER placeholder sent to api.test\"");

    /* a Host other than the CONNECT host inside the tunnel */
    ssl = tls_connect(f.proxy, "api.test", f.ca_cert, true, &fd);
    ssl_send(ssl, "GET / HTTP/1.1\r\nHost: other.test\r\nAuthorization: " PH "\r\n\r\n");
    assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 403);
    tls_close(ssl, fd);
    expect_log(&f, "deny CONNECT+mitm api.test:443", "differs from the CONNECT host");

    /* a clean session logs allow with its count */
    ssl = tls_connect(f.proxy, "api.test", f.ca_cert, true, &fd);
    ssl_send(ssl, "GET /three HTTP/1.1\r\nHost: api.test\r\n\r\n");
    assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 200);
    tls_close(ssl, fd);
    expect_log(&f, "allow CONNECT+mitm api.test:443 127.0.0.1:443", "reqs=1");
    assert_null(strstr(log_text(&f), VALUE));
    free(got);
    fixture_stop(&f);
}

/* Pipelined requests come back in order; Upgrade never reaches the server; an h2-only client
 * gets no ALPN protocol (and speaks HTTP/1.1). */
static void test_intercept_framing(void **state) {
    if (!have_netns) skip_because("no network namespace for port 443");
    struct fixture f;
    fixture_start(&f);
    char buf[8192];
    int fd = -1;
    SSL *ssl = tls_connect(f.proxy, "api.test", f.ca_cert, true, &fd);
    ssl_send(ssl, "POST /p1 HTTP/1.1\r\nHost: api.test\r\nContent-Length: 3\r\n\r\nabc"
                  "GET /p2 HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\n"
                  "Upgrade: websocket\r\n\r\n"
                  "GET /p3 HTTP/1.1\r\nHost: api.test:443\r\n\r\n");
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 200);
        char want[32];
        snprintf(want, sizeof(want), " /p%d HTTP/1.1", i);
        if (!strstr(buf, want)) fail_msg("response %d: %s", i, buf);
    }
    tls_close(ssl, fd);
    pthread_mutex_lock(&f.srv->lock);
    assert_null(strcasestr(f.srv->log, "upgrade"));
    assert_non_null(strstr(f.srv->log, "x-api-key: " VALUE));
    pthread_mutex_unlock(&f.srv->lock);
    expect_log(&f, "allow CONNECT+mitm api.test:443", "reqs=3");

    /* h2 only: the proxy selects nothing */
    ssl = tls_open(f.proxy, "api.test", f.ca_cert, true, "\x02h2", true, &fd);
    const unsigned char *a = NULL;
    unsigned al = 0;
    SSL_get0_alpn_selected(ssl, &a, &al);
    assert_int_equal(al, 0);
    ssl_send(ssl, "GET /h1 HTTP/1.1\r\nHost: api.test\r\n\r\n");
    assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 200);
    tls_close(ssl, fd);

    /* a box that does not trust the per-box CA: the handshake fails, logged */
    assert_null(tls_open(f.proxy, "api.test", NULL, true, NULL, false, &fd));
    expect_log(&f, "deny CONNECT+mitm api.test:443", "TLS handshake with the box");
    fixture_stop(&f);
}

static void test_refusals_and_blind(void **state) {
    if (!have_netns) skip_because("no network namespace for port 443");
    struct fixture f;
    fixture_start(&f);
    char buf[8192];
    /* a placeholder in a plain http head to another allowed host */
    int fd = proxy_test_client(f.proxy);
    send_str(fd, "GET http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\nX-Key: " PH "\r\n\r\n");
    assert_int_equal(proxy_test_read_response(fd, NULL, buf, sizeof(buf)), 403);
    assert_non_null(strstr(buf, "Forbidden by devbox: secret API_KEY placeholder sent to "
                                "plain.test"));
    close(fd);
    expect_log(&f, "deny GET plain.test:80 -", "secret API_KEY placeholder sent to plain.test");
    /* ... and in a CONNECT head (a proxy credential carrying it) */
    fd = proxy_test_client(f.proxy);
    send_str(fd, "CONNECT plain.test:443 HTTP/1.1\r\nProxy-Authorization: Basic " PH "\r\n\r\n");
    assert_int_equal(proxy_test_read_response(fd, NULL, buf, sizeof(buf)), 403);
    close(fd);
    expect_log(&f, "deny CONNECT plain.test:443 -", "secret API_KEY placeholder");

    /* a host no secret goes to stays a blind tunnel: the server sees our own ClientHello and
     * its own certificate (the per-box CA is not trusted here) */
    SSL *ssl = tls_connect(f.proxy, "plain.test", f.test_ca, false, &fd);
    unsigned char mine[32];
    SSL_get_client_random(ssl, mine, sizeof(mine));
    pthread_mutex_lock(&f.srv->lock);
    assert_memory_equal(f.srv->random, mine, 32);
    pthread_mutex_unlock(&f.srv->lock);
    ssl_send(ssl, "GET /blind HTTP/1.1\r\nHost: plain.test\r\nX: " PH "\r\n\r\n");
    assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 200);
    tls_close(ssl, fd);
    expect_log(&f, "allow CONNECT plain.test:443", NULL);
    /* intercepted: the server saw the proxy's hello, not ours */
    ssl = tls_connect(f.proxy, "api.test", f.ca_cert, true, &fd);
    SSL_get_client_random(ssl, mine, sizeof(mine));
    ssl_send(ssl, "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
    assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 200);
    pthread_mutex_lock(&f.srv->lock);
    assert_memory_not_equal(f.srv->random, mine, 32);
    pthread_mutex_unlock(&f.srv->lock);
    tls_close(ssl, fd);

    /* upstream not trusted (no upstream_ca_pem): 502 to the box, with OpenSSL's reason */
    struct proxy *untrusting = proxy_with(&f, NULL);
    ssl = tls_connect(untrusting, "api.test", f.ca_cert, true, &fd);
    ssl_send(ssl, "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
    assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 502);
    assert_non_null(strstr(buf, "upstream TLS"));
    tls_close(ssl, fd);
    proxy_stop(untrusting);
    expect_log(&f, "error CONNECT+mitm api.test:443", "certificate verify failed");
    assert_null(strstr(log_text(&f), VALUE));
    fixture_stop(&f);
}

/* ---- cost of interception ------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* n requests: each on a new connection (CONNECT + handshake + request), then n on one. */
static void measure(struct fixture *f, const char *host, const char *ca, int n, double *ret_conn,
                    double *ret_req) {
    char buf[8192];
    char *req = dbx_xasprintf("GET /bench HTTP/1.1\r\nHost: %s\r\n\r\n", host);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        int fd = -1;
        SSL *ssl = tls_connect(f->proxy, host, ca, false, &fd);
        ssl_send(ssl, req);
        assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 200);
        tls_close(ssl, fd);
    }
    *ret_conn = (now_s() - t0) / n;
    int fd = -1;
    SSL *ssl = tls_connect(f->proxy, host, ca, false, &fd);
    t0 = now_s();
    for (int i = 0; i < n * 10; i++) {
        ssl_send(ssl, req);
        assert_int_equal(proxy_test_read_response(fd, ssl, buf, sizeof(buf)), 200);
    }
    *ret_req = (now_s() - t0) / (n * 10);
    tls_close(ssl, fd);
    free(req);
}

static void test_bench(void **state) {
    if (!have_netns) skip_because("no network namespace for port 443");
    const char *env = getenv("DEVBOX_PROXY_MITM_BENCH");
    int n = env ? atoi(env) : 5;
    if (n < 1) n = 1;
    struct fixture f;
    fixture_start(&f);
    double bc, br, mc, mr;
    measure(&f, "plain.test", f.test_ca, n, &bc, &br);
    measure(&f, "api.test", f.ca_cert, n, &mc, &mr);
    fprintf(stderr,
            "proxy interception: new connection + request %.2f ms intercepted vs %.2f ms blind "
            "tunnel (ratio %.2fx); request on a kept-alive connection %.3f ms vs %.3f ms (ratio "
            "%.2fx); n=%d\n",
            mc * 1e3, bc * 1e3, mc / bc, mr * 1e3, br * 1e3, mr / br, n);
    fixture_stop(&f);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    have_netns = proxy_test_enter_netns();
    if (!have_netns) fprintf(stderr, "no network namespace: the port 443 tests are skipped\n");
    if (getenv("DEVBOX_PROXY_MITM_BENCH")) { /* make bench: the measurement alone */
        const struct CMUnitTest bench[] = {cmocka_unit_test(test_bench)};
        return cmocka_run_group_tests(bench, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_and_leaf),        cmocka_unit_test(test_secrets_check),
        cmocka_unit_test(test_parse_origin),       cmocka_unit_test(test_secret_head),
        cmocka_unit_test(test_intercept),          cmocka_unit_test(test_intercept_framing),
        cmocka_unit_test(test_refusals_and_blind), cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

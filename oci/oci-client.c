/* oci/oci-client.c: the registry client (Distribution spec v2 over libcurl).
 *
 * Redirects are followed here, not by libcurl (CURLOPT_FOLLOWLOCATION is off): at most
 * MAX_REDIRECTS, https only (plain http only back to the registry's own loopback origin), and
 * Authorization only on the registry's origin (R7).  Transient failures (429, 5xx, resets) are
 * retried with backoff; a blob resumes with Range from the bytes already verified-so-far in its
 * ingest file.  Every body is bounded while it streams. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>

#include "oci/oci-internal.h"

#define MAX_REDIRECTS 5
#define MAX_ATTEMPTS 5
#define BACKOFF_MS 200
#define BACKOFF_MAX_MS 5000
#define HEADERS_MAX (64u << 10)
#define ERRBODY_MAX 1024
#define CONNECT_TIMEOUT_S 30
#define LOW_SPEED_TIME_S 30
#define SYSTEM_CA_DIR "/etc/ssl/certs"

struct oci_client {
    char *domain, *repository;
    char *host;   /* API host[:port] */
    char *base;   /* "https://host" or "http://host" */
    char *origin; /* oci_url_origin(base) */
    bool plain_ok, loopback;
    char *ca_file, *docker_config;
    bool creds_loaded;
    char *user, *secret;
    char *authz; /* "Authorization: ..." for the registry origin, or NULL */
};

/* One request, possibly redirected, re-authenticated and retried. */
struct xfer {
    struct oci_client *c;
    CURL *h;
    struct curl_slist *hdrs;
    char *url;
    const char *origin; /* whose redirect rules apply (registry or realm) */
    const char *authz;  /* Authorization header for `origin` (token requests) */
    bool registry;      /* origin is the registry's: use c->authz, which may change */
    bool send_auth;     /* url is on `origin` */
    const char *accept;
    int redirects, attempts;
    bool reauthed;
    uint64_t retry_at;
    char errbuf[CURL_ERROR_SIZE];
    /* this response */
    long status;
    char *content_type, *www_auth, *location, *digest_hdr, *content_range;
    uint64_t retry_after_ms;
    size_t header_bytes;
    bool body_started, range_sent;
    char errbody[ERRBODY_MAX + 1];
    size_t errbody_len;
    /* sink: memory (capped) or an ingest */
    struct oci_ingest *ing;
    _Atomic uint64_t *progress;
    char *mem;
    size_t mem_len, mem_cap;
    dbx_error *err;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- responses ---------------------------------------------------------------------------- */

static void response_reset(struct xfer *x) {
    free(x->content_type);
    free(x->www_auth);
    free(x->location);
    free(x->digest_hdr);
    free(x->content_range);
    x->content_type = x->www_auth = x->location = x->digest_hdr = x->content_range = NULL;
    x->retry_after_ms = 0;
    x->header_bytes = 0;
    x->body_started = false;
    x->errbody_len = 0;
    x->status = 0;
}

static void xfer_free(struct xfer *x) {
    response_reset(x);
    if (x->h) curl_easy_cleanup(x->h);
    curl_slist_free_all(x->hdrs);
    free(x->url);
    free(x->mem);
    dbx_error_free(&x->err);
    *x = (struct xfer){0};
}

static void set_header(char **slot, const char *v, size_t n) {
    if (*slot) return; /* first one wins */
    *slot = dbx_xstrndup(v, n);
}

static size_t on_header(char *buf, size_t size, size_t nmemb, void *ud) {
    struct xfer *x = ud;
    size_t n = size * nmemb;
    if (n >= 5 && !memcmp(buf, "HTTP/", 5)) { /* a new response: proxies, 100-continue */
        response_reset(x);
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
    }
    x->header_bytes += n;
    if (x->header_bytes > HEADERS_MAX) {
        dbx_error_setx(&x->err, EPROTO, "response headers larger than %u bytes", HEADERS_MAX);
        return 0;
    }
    const char *colon = memchr(buf, ':', n);
    if (!colon) return n;
    size_t kn = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vn = n - kn - 1;
    while (vn && (*v == ' ' || *v == '\t'))
        v++, vn--;
    while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
        vn--;
    static const struct {
        const char *name;
        size_t off;
    } known[] = {
        {"content-type", offsetof(struct xfer, content_type)},
        {"www-authenticate", offsetof(struct xfer, www_auth)},
        {"location", offsetof(struct xfer, location)},
        {"docker-content-digest", offsetof(struct xfer, digest_hdr)},
        {"content-range", offsetof(struct xfer, content_range)},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(known); i++)
        if (strlen(known[i].name) == kn && !strncasecmp(buf, known[i].name, kn))
            set_header((char **)((char *)x + known[i].off), v, vn);
    if (kn == 11 && !strncasecmp(buf, "retry-after", 11)) {
        _cleanup_free_ char *s = dbx_xstrndup(v, vn);
        uint64_t secs;
        if (dbx_parse_u64(s, 0, 60, &secs) == 0) x->retry_after_ms = secs * 1000;
    }
    return n;
}

/* A 206 must start exactly where our ingest file ends. */
static bool range_matches(const struct xfer *x) {
    uint64_t start;
    if (!x->content_range || !dbx_str_has_prefix(x->content_range, "bytes ")) return false;
    _cleanup_free_ char *s = dbx_xstrndup(x->content_range + 6, strcspn(x->content_range + 6, "-"));
    return dbx_parse_u64(s, 0, UINT64_MAX, &start) == 0 && start == x->ing->offset;
}

static size_t sink_ingest(struct xfer *x, const char *buf, size_t n) {
    if (!x->body_started) {
        x->body_started = true;
        if (x->status == 206 && !range_matches(x)) {
            dbx_error_setx(&x->err, EPROTO, "server resumed at the wrong offset ('%.64s')",
                           x->content_range ? x->content_range : "no Content-Range");
            return 0;
        }
        if (x->status == 200 && x->ing->offset > 0 && oci_ingest_reset(x->ing, &x->err) < 0)
            return 0;
    }
    if (oci_ingest_write(x->ing, buf, n, &x->err) < 0) return 0;
    if (x->progress) atomic_store(x->progress, x->ing->offset);
    return n;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud) {
    struct xfer *x = ud;
    size_t n = size * nmemb;
    if (x->status != 200 && x->status != 206) { /* keep the start of an error body */
        size_t k = ERRBODY_MAX - x->errbody_len < n ? ERRBODY_MAX - x->errbody_len : n;
        memcpy(x->errbody + x->errbody_len, buf, k);
        x->errbody_len += k;
        return n;
    }
    if (x->ing) return sink_ingest(x, buf, n);
    if (n > x->mem_cap - x->mem_len) {
        dbx_error_setx(&x->err, EFBIG, "response larger than %zu bytes", x->mem_cap);
        return 0;
    }
    if (!x->mem) x->mem = dbx_xmalloc(x->mem_cap + 1);
    memcpy(x->mem + x->mem_len, buf, n);
    x->mem_len += n;
    return n;
}

/* ---- requests ----------------------------------------------------------------------------- */

/* Plain http is allowed for loopback registries only when the address actually connected is
 * loopback (a name like "localhost" could resolve elsewhere). */
static curl_socket_t open_loopback_only(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
    bool ok = false;
    if (a->family == AF_INET) {
        const struct sockaddr_in *in = (const void *)&a->addr;
        ok = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (a->family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)&a->addr;
        ok = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
             (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127);
    }
    if (!ok) return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void xfer_setup(struct xfer *x) {
    struct oci_client *c = x->c;
    if (!x->h) x->h = curl_easy_init();
    if (!x->h) dbx_oom_hook();
    CURL *h = x->h;
    curl_easy_reset(h);
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    response_reset(x);
    x->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, x->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)LOW_SPEED_TIME_S);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "devbox");
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL); /* digests are over the bytes as sent */
    /* The extra CA file replaces libcurl's default bundle; with OpenSSL the system's hashed
     * directory is searched as well, so both are trusted. */
    if (c->ca_file) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        curl_easy_setopt(h, CURLOPT_CAPATH, SYSTEM_CA_DIR);
    }
    if (c->loopback) {
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
        if (dbx_str_has_prefix(x->url, "http://"))
            curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_loopback_only);
    }
    if (x->accept) {
        _cleanup_free_ char *a = dbx_xasprintf("Accept: %s", x->accept);
        x->hdrs = curl_slist_append(x->hdrs, a);
    }
    const char *authz = x->registry ? c->authz : x->authz;
    if (x->send_auth && authz) x->hdrs = curl_slist_append(x->hdrs, authz);
    x->mem_len = 0; /* a retried in-memory body starts over */
    x->range_sent = false;
    if (x->ing && x->ing->offset > 0) {
        _cleanup_free_ char *r = dbx_xasprintf("Range: bytes=%ju-", (uintmax_t)x->ing->offset);
        x->hdrs = curl_slist_append(x->hdrs, r);
        x->range_sent = true;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->hdrs);
}

enum xfer_next { XF_DONE, XF_AGAIN, XF_LATER, XF_FAIL };

static bool curl_retryable(CURLcode rc) {
    return rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_PARTIAL_FILE ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_HTTP2 ||
           rc == CURLE_HTTP2_STREAM;
}

/* The registry's {"errors":[{"code":..,"message":..}]}, sanitized, for the error message. */
static char *registry_message(struct xfer *x) {
    x->errbody[x->errbody_len] = '\0';
    json_t *j = json_loads(x->errbody, JSON_REJECT_DUPLICATES, NULL);
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    const char *code = json_string_value(json_object_get(e0, "code"));
    const char *msg = json_string_value(json_object_get(e0, "message"));
    char *r = code || msg ? dbx_xasprintf(": %.40s%s%.200s", code ? code : "",
                                          code && msg ? " " : "", msg ? msg : "")
                          : dbx_xstrdup("");
    json_decref(j);
    return dbx_sanitize_printable(r);
}

static int fail_status(struct xfer *x, dbx_error **err) {
    _cleanup_free_ char *m = registry_message(x);
    int code = x->status == 404 ? ENOENT : x->status == 401 || x->status == 403 ? EACCES : EIO;
    return dbx_error_setx(err, code, "HTTP %ld%s", x->status, m);
}

static int client_authenticate(struct oci_client *c, const char *www_auth, dbx_error **err);

static enum xfer_next later(struct xfer *x) {
    uint64_t backoff = (uint64_t)BACKOFF_MS << (x->attempts - 1);
    if (backoff > BACKOFF_MAX_MS) backoff = BACKOFF_MAX_MS;
    if (x->retry_after_ms > backoff) backoff = x->retry_after_ms;
    x->retry_at = dbx_now_ms() + backoff;
    return XF_LATER;
}

static enum xfer_next on_redirect(struct xfer *x, dbx_error **err) {
    if (!x->location) {
        dbx_error_setx(err, EPROTO, "HTTP %ld without a Location", x->status);
        return XF_FAIL;
    }
    if (++x->redirects > MAX_REDIRECTS) {
        dbx_error_setx(err, ELOOP, "more than %d redirects", MAX_REDIRECTS);
        return XF_FAIL;
    }
    char *next = NULL;
    bool same = false;
    if (oci_redirect_check(x->origin, x->url, x->location, &next, &same, err) < 0) return XF_FAIL;
    free(x->url);
    x->url = next;
    x->send_auth = same;
    return XF_AGAIN;
}

/* What to do after one attempt finished with rc. */
static enum xfer_next xfer_next(struct xfer *x, CURLcode rc, dbx_error **err) {
    x->attempts++;
    if (x->err) {
        *err = TAKE_PTR(x->err);
        return XF_FAIL;
    }
    if (rc != CURLE_OK) {
        if (curl_retryable(rc) && x->attempts < MAX_ATTEMPTS) return later(x);
        dbx_error_setx(err, EIO, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        return XF_FAIL;
    }
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
    switch (x->status) {
    case 200:
        if (x->ing && x->range_sent && !x->body_started && oci_ingest_reset(x->ing, err) < 0)
            return XF_FAIL;
        return XF_DONE;
    case 206:
        return x->range_sent ? XF_DONE : (dbx_error_setx(err, EPROTO, "unrequested 206"), XF_FAIL);
    case 301:
    case 302:
    case 303:
    case 307:
    case 308:
        return on_redirect(x, err);
    case 401:
        if (x->reauthed || !x->send_auth || !x->www_auth || !x->registry) break;
        x->reauthed = true;
        if (client_authenticate(x->c, x->www_auth, err) < 0) return XF_FAIL;
        return XF_AGAIN;
    case 416: /* our ingest is not a prefix of theirs: start over, once */
        if (x->ing && x->range_sent && x->attempts < MAX_ATTEMPTS) {
            if (oci_ingest_reset(x->ing, err) < 0) return XF_FAIL;
            return XF_AGAIN;
        }
        break;
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        if (x->attempts < MAX_ATTEMPTS) return later(x);
        break;
    }
    fail_status(x, err);
    return XF_FAIL;
}

/* Run one request to completion on this thread. */
static int xfer_run(struct xfer *x, dbx_error **err) {
    for (;;) {
        xfer_setup(x);
        CURLcode rc = curl_easy_perform(x->h);
        switch (xfer_next(x, rc, err)) {
        case XF_DONE:
            return 0;
        case XF_FAIL:
            return -1;
        case XF_LATER: {
            uint64_t now = dbx_now_ms();
            if (x->retry_at > now) usleep((useconds_t)(x->retry_at - now) * 1000);
            break;
        }
        case XF_AGAIN:
            break;
        }
    }
}

/* ---- authentication ----------------------------------------------------------------------- */

static int load_creds(struct oci_client *c, dbx_error **err) {
    if (c->creds_loaded) return 0;
    c->creds_loaded = true;
    return oci_creds_lookup(c->docker_config, c->domain, &c->user, &c->secret, err) < 0 ? -1 : 0;
}

static char *basic_header(const struct oci_client *c) {
    _cleanup_free_ char *plain = dbx_xasprintf("%s:%s", c->user, c->secret);
    size_t n = strlen(plain);
    _cleanup_free_ unsigned char *b64 = dbx_xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock(b64, (unsigned char *)plain, (int)n);
    explicit_bzero(plain, n);
    return dbx_xasprintf("Authorization: Basic %s", b64);
}

static bool token_valid(const char *t) {
    size_t n = strlen(t);
    if (n == 0 || n > 65536) return false;
    for (; *t; t++)
        if (*t <= 0x20 || *t >= 0x7f) return false; /* no header injection */
    return true;
}

static int fetch_token(struct oci_client *c, const struct oci_challenge *ch, dbx_error **err) {
    bool basic = false;
    if (oci_realm_check(c->host, c->plain_ok, ch->realm, &basic, err) < 0) return -1;
    CURLU *u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, ch->realm, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        return dbx_error_setx(err, EINVAL, "invalid token realm");
    }
    _cleanup_free_ char *scope =
        ch->scope ? dbx_xstrdup(ch->scope) : dbx_xasprintf("repository:%s:pull", c->repository);
    _cleanup_free_ char *q1 = ch->service ? dbx_xasprintf("service=%s", ch->service) : NULL;
    _cleanup_free_ char *q2 = dbx_xasprintf("scope=%s", scope);
    if (q1) curl_url_set(u, CURLUPART_QUERY, q1, CURLU_APPENDQUERY | CURLU_URLENCODE);
    curl_url_set(u, CURLUPART_QUERY, q2, CURLU_APPENDQUERY | CURLU_URLENCODE);
    char *url = NULL;
    curl_url_get(u, CURLUPART_URL, &url, 0);
    curl_url_cleanup(u);
    _cleanup_free_ char *realm_origin = oci_url_origin(ch->realm);
    _cleanup_free_ char *authz = basic && c->user ? basic_header(c) : NULL;
    struct xfer x = {.c = c,
                     .url = dbx_xstrdup(url),
                     .origin = realm_origin,
                     .authz = authz,
                     .send_auth = true,
                     .accept = "application/json",
                     .mem_cap = OCI_TOKEN_MAX};
    curl_free(url);
    int r = xfer_run(&x, err);
    json_t *j = NULL;
    if (r == 0) {
        json_error_t je;
        j = json_loadb(x.mem ? x.mem : "", x.mem_len, JSON_REJECT_DUPLICATES, &je);
        const char *t = json_string_value(json_object_get(j, "token"));
        if (!t) t = json_string_value(json_object_get(j, "access_token"));
        if (!t || !token_valid(t))
            r = dbx_error_setx(err, EPROTO, "no usable token in the response");
        else {
            free(c->authz);
            c->authz = dbx_xasprintf("Authorization: Bearer %s", t);
        }
    }
    json_decref(j);
    if (x.mem) explicit_bzero(x.mem, x.mem_len);
    xfer_free(&x);
    if (r < 0) return dbx_error_wrap(err, "token from '%.200s'", ch->realm);
    return 0;
}

static int client_authenticate(struct oci_client *c, const char *www_auth, dbx_error **err) {
    struct oci_challenge ch = {0};
    if (oci_challenge_parse(www_auth, &ch) < 0)
        return dbx_error_setx(err, EACCES, "unauthorized, with an unusable challenge '%.100s'",
                              www_auth);
    int r = load_creds(c, err);
    if (r == 0 && !strcmp(ch.scheme, "basic")) {
        if (!c->user)
            r = dbx_error_setx(err, EACCES,
                               "registry '%s' wants credentials (none found in the "
                               "docker config)",
                               c->domain);
        else {
            free(c->authz);
            c->authz = basic_header(c);
        }
    } else if (r == 0) {
        r = fetch_token(c, &ch, err);
    }
    oci_challenge_clear(&ch);
    return r;
}

/* GET /v2/: pick https or (when allowed) http, and authenticate up front. */
static int client_ping(struct oci_client *c, dbx_error **err) {
    for (int plain = 0; plain < 2; plain++) {
        free(c->base);
        free(c->origin);
        c->base = dbx_xasprintf("%s://%s", plain ? "http" : "https", c->host);
        c->origin = oci_url_origin(c->base);
        if (!c->origin) return dbx_error_setx(err, EINVAL, "invalid registry '%s'", c->host);
        struct xfer x = {.c = c,
                         .url = dbx_xasprintf("%s/v2/", c->base),
                         .origin = c->origin,
                         .registry = true,
                         .send_auth = true,
                         .mem_cap = 65536};
        dbx_error *e = NULL;
        xfer_setup(&x);
        CURLcode rc = curl_easy_perform(x.h);
        if (rc != CURLE_OK && !plain && c->plain_ok &&
            (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
             rc == CURLE_COULDNT_CONNECT)) {
            xfer_free(&x);
            continue; /* not TLS: try plain http, as docker does for insecure registries */
        }
        int r = 0;
        long status = 0;
        curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK)
            r = dbx_error_setx(&e, EIO, "%s", x.errbuf[0] ? x.errbuf : curl_easy_strerror(rc));
        else if (status == 401 && x.www_auth)
            r = client_authenticate(c, x.www_auth, &e);
        /* anything else (200, 404 from registries without /v2/): go on and see */
        xfer_free(&x);
        if (r < 0) {
            r = -e->code;
            if (!err) {
                dbx_error_free(&e);
                return r;
            }
            *err = e;
            return dbx_error_wrap(err, "registry '%s'", c->domain);
        }
        return 0;
    }
    return dbx_error_setx(err, EIO, "registry '%s' answers neither https nor http", c->domain);
}

static bool in_list(char *const *list, const char *host) {
    for (size_t i = 0; list && list[i]; i++)
        if (!strcasecmp(list[i], host)) return true;
    return false;
}

int oci_client_new(const char *domain, const char *repository, const struct oci_auth_config *auth,
                   struct oci_client **ret, dbx_error **err) {
    pthread_once(&curl_once, curl_init);
    struct oci_client *c = dbx_xcalloc(1, sizeof(*c));
    c->domain = dbx_xstrdup(domain);
    c->repository = dbx_xstrdup(repository);
    c->host = dbx_xstrdup(oci_api_host(domain));
    c->loopback = oci_host_is_loopback(c->host);
    c->plain_ok = c->loopback ||
                  (auth && (in_list(auth->insecure, domain) || in_list(auth->insecure, c->host)));
    if (auth && auth->ca_file) c->ca_file = dbx_xstrdup(auth->ca_file);
    if (auth && auth->docker_config) c->docker_config = dbx_xstrdup(auth->docker_config);
    if (client_ping(c, err) < 0) {
        oci_client_free(c);
        return -1;
    }
    *ret = c;
    return 0;
}

void oci_client_free(struct oci_client *c) {
    if (!c) return;
    free(c->domain);
    free(c->repository);
    free(c->host);
    free(c->base);
    free(c->origin);
    free(c->ca_file);
    free(c->docker_config);
    free(c->user);
    if (c->secret) explicit_bzero(c->secret, strlen(c->secret));
    free(c->secret);
    if (c->authz) explicit_bzero(c->authz, strlen(c->authz));
    free(c->authz);
    free(c);
}

static void xfer_init(struct xfer *x, struct oci_client *c, const char *kind, const char *ref) {
    *x = (struct xfer){.c = c, .origin = c->origin, .registry = true, .send_auth = true};
    x->url = dbx_xasprintf("%s/v2/%s/%s/%s", c->base, c->repository, kind, ref);
}

int oci_client_get_manifest(struct oci_client *c, const char *reference, char **ret_buf,
                            size_t *ret_len, char **ret_content_type, char **ret_digest_hdr,
                            dbx_error **err) {
    struct xfer x;
    xfer_init(&x, c, "manifests", reference);
    x.accept = OCI_ACCEPT_MANIFESTS;
    x.mem_cap = OCI_MANIFEST_MAX;
    int r = xfer_run(&x, err);
    if (r == 0) {
        *ret_buf = x.mem ? TAKE_PTR(x.mem) : dbx_xstrdup("");
        (*ret_buf)[x.mem_len] = '\0';
        *ret_len = x.mem_len;
        *ret_content_type = TAKE_PTR(x.content_type);
        *ret_digest_hdr = TAKE_PTR(x.digest_hdr);
    }
    xfer_free(&x);
    if (r < 0) return dbx_error_wrap(err, "manifest '%s'", reference);
    return 0;
}

int oci_client_get_blob_mem(struct oci_client *c, const char *digest, uint64_t size, size_t cap,
                            char **ret_buf, size_t *ret_len, dbx_error **err) {
    if (!oci_digest_valid(digest)) return dbx_error_setx(err, EINVAL, "invalid digest");
    if (size > cap)
        return dbx_error_setx(err, EFBIG, "blob '%s' is larger than %zu bytes", digest, cap);
    struct xfer x;
    xfer_init(&x, c, "blobs", digest);
    x.mem_cap = (size_t)size;
    int r = xfer_run(&x, err);
    if (r == 0 && x.mem_len != size)
        r = dbx_error_setx(err, EIO, "%zu bytes, not the %ju declared", x.mem_len, (uintmax_t)size);
    if (r == 0 && !oci_digest_matches(x.mem ? x.mem : "", x.mem_len, digest))
        r = dbx_error_setx(err, EIO, "digest mismatch (the content hashes to something else)");
    if (r == 0) {
        *ret_buf = x.mem ? TAKE_PTR(x.mem) : dbx_xstrdup("");
        (*ret_buf)[x.mem_len] = '\0';
        *ret_len = x.mem_len;
    }
    xfer_free(&x);
    if (r < 0) return dbx_error_wrap(err, "blob '%s'", digest);
    return 0;
}

/* ---- parallel blob downloads -------------------------------------------------------------- */

struct engine {
    struct oci_client *c;
    struct oci_store *s;
    struct oci_fetch *f;
    size_t n;
    struct xfer *x; /* one per fetch */
    CURLM *m;
    int running;
    void (*on_change)(void *ud);
    void *ud;
};

/* Name the blob in the error unless the store's message already does. */
static int wrap_blob(dbx_error **err, const char *digest) {
    if (err && *err && strstr((*err)->msg, digest)) return -(*err)->code;
    return dbx_error_wrap(err, "blob '%s'", digest);
}

static void set_state(struct engine *e, size_t i, int state) {
    atomic_store(&e->f[i].state, state);
    if (e->on_change) e->on_change(e->ud);
}

static int finish(struct engine *e, size_t i, dbx_error **err) {
    struct oci_fetch *f = &e->f[i];
    if (oci_ingest_commit(&f->ing, err) < 0) return -1;
    atomic_store(&f->done, f->size);
    oci_ingest_clear(&f->ing);
    set_state(e, i, OCI_FETCH_DONE);
    return 0;
}

/* Take the blob's lock without waiting: another process may be fetching it. */
static int try_lock(struct engine *e, size_t i, dbx_error **err) {
    struct oci_fetch *f = &e->f[i];
    if (dbx_now_ms() < f->next_try_ms) return 0;
    int r = oci_ingest_begin(e->s, f->digest, f->size, false, &f->ing, err);
    if (r == -EAGAIN) {
        f->next_try_ms = dbx_now_ms() + 100;
        return 0;
    }
    if (r < 0 || ((f->ing.complete || f->ing.offset == f->size) && finish(e, i, err) < 0)) {
        set_state(e, i, OCI_FETCH_FAILED);
        return wrap_blob(err, f->digest);
    }
    if (atomic_load(&f->state) == OCI_FETCH_DONE) return 0;
    atomic_store(&f->done, f->ing.offset);
    set_state(e, i, OCI_FETCH_QUEUED);
    return 0;
}

static void start(struct engine *e, size_t i) {
    struct xfer *x = &e->x[i];
    if (!x->url) {
        xfer_init(x, e->c, "blobs", e->f[i].digest);
        x->ing = &e->f[i].ing;
        x->progress = &e->f[i].done;
    }
    xfer_setup(x);
    curl_easy_setopt(x->h, CURLOPT_PRIVATE, (void *)(uintptr_t)i);
    curl_multi_add_handle(e->m, x->h);
    e->running++;
    if (atomic_load(&e->f[i].state) != OCI_FETCH_RUNNING) set_state(e, i, OCI_FETCH_RUNNING);
}

static int on_xfer_done(struct engine *e, CURL *h, CURLcode rc, dbx_error **err) {
    void *p = NULL;
    curl_easy_getinfo(h, CURLINFO_PRIVATE, &p);
    size_t i = (size_t)(uintptr_t)p;
    curl_multi_remove_handle(e->m, h);
    e->running--;
    struct xfer *x = &e->x[i];
    switch (xfer_next(x, rc, err)) {
    case XF_DONE:
        if (finish(e, i, err) == 0) return 0;
        break;
    case XF_AGAIN:
        start(e, i);
        return 0;
    case XF_LATER:
        return 0; /* started again by the loop when retry_at has passed */
    case XF_FAIL:
        break;
    }
    set_state(e, i, OCI_FETCH_FAILED);
    return wrap_blob(err, e->f[i].digest);
}

static int engine_step(struct engine *e, int parallel, dbx_error **err) {
    size_t active = (size_t)e->running;
    for (size_t i = 0; i < e->n; i++) {
        int st = atomic_load(&e->f[i].state);
        if (st == OCI_FETCH_LOCK && try_lock(e, i, err) < 0) return -1;
        st = atomic_load(&e->f[i].state);
        if (st == OCI_FETCH_QUEUED && active < (size_t)parallel) {
            start(e, i);
            active++;
        } else if (st == OCI_FETCH_RUNNING && e->x[i].retry_at &&
                   dbx_now_ms() >= e->x[i].retry_at) {
            e->x[i].retry_at = 0;
            start(e, i);
        }
    }
    int still = 0;
    curl_multi_perform(e->m, &still);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(e->m, &left)))
        if (msg->msg == CURLMSG_DONE &&
            on_xfer_done(e, msg->easy_handle, msg->data.result, err) < 0)
            return -1;
    curl_multi_poll(e->m, NULL, 0, 50, NULL);
    return 0;
}

int oci_client_fetch_blobs(struct oci_client *c, struct oci_store *s, struct oci_fetch *f, size_t n,
                           int parallel, void (*on_change)(void *ud), void *ud, atomic_bool *abort,
                           dbx_error **err) {
    struct engine e = {.c = c, .s = s, .f = f, .n = n, .on_change = on_change, .ud = ud};
    e.x = dbx_xcalloc(n ? n : 1, sizeof(*e.x));
    e.m = curl_multi_init();
    if (!e.m) dbx_oom_hook();
    int r = 0;
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += atomic_load(&f[i].state) == OCI_FETCH_DONE;
        if (done == n) break;
        if (abort && atomic_load(abort)) {
            r = dbx_error_setx(err, ECANCELED, "pull aborted");
            break;
        }
        if ((r = engine_step(&e, parallel, err)) < 0) break;
    }
    for (size_t i = 0; i < n; i++) {
        if (e.x[i].h) curl_multi_remove_handle(e.m, e.x[i].h);
        e.x[i].ing = NULL;
        xfer_free(&e.x[i]);
        oci_ingest_clear(&f[i].ing); /* what was written stays in ingest/ to resume */
    }
    curl_multi_cleanup(e.m);
    free(e.x);
    return r < 0 ? -1 : 0;
}

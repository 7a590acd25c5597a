/* tests/fuzz/fuzz-proxy-http.c: libFuzzer harness for the egress proxy's request parsing
 * (proxy_http_parse, proxy_body_scan) and, on the same bytes, host and allow-pattern parsing.
 *
 * Input layout: byte 0 seeds the chunk sizes for the body scanner, the rest is what a client
 * sends: heads and bodies, parsed one request after another as the proxy does on a kept-alive
 * connection.  Checks: a parsed head ends with CRLF CRLF within the cap and its spans lie
 * inside it; every proper prefix of a complete head is "need more"; the host re-parses to
 * itself; errors carry a message and a known code; a body scanned whole and in chunks ends at
 * the same byte.
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without DBX_LIBFUZZER a
 * replay main() runs each file (or each file in each directory) named on the command line. */
#include <dirent.h>
#include <sys/stat.h>

#include "common/common.h"
#include "proxy/proxy.h"

#include "replay.h"

static void check_error(int r, dbx_error *err) {
    CHECK(r < 0 && err != NULL && err->msg != NULL && err->code == -r);
    int st = proxy_http_status(r);
    CHECK(st == 400 || st == 403 || st == 405 || st == 431 || st == 505);
}

static void check_span(struct proxy_span s, size_t head_len) {
    CHECK(s.off <= head_len && s.len <= head_len - s.off);
}

static void check_req(const uint8_t *p, size_t n, const struct proxy_http_req *r) {
    CHECK(r->head_len >= 4 && r->head_len <= n && r->head_len <= PROXY_HTTP_MAX_HEAD);
    CHECK(memcmp(p + r->head_len - 4, "\r\n\r\n", 4) == 0);
    CHECK(r->nheaders <= PROXY_HTTP_MAX_HEADERS && r->port != 0 && r->minor <= 1);
    CHECK(r->method <= PROXY_HTTP_POST);
    for (uint32_t i = 0; i < r->nheaders; i++) {
        check_span(r->headers[i].name, r->head_len);
        check_span(r->headers[i].value, r->head_len);
        CHECK(r->headers[i].name.len > 0);
    }
    check_span(r->path, r->head_len);
    CHECK(r->method != PROXY_HTTP_CONNECT || r->body == PROXY_BODY_NONE);
    /* the normalized host parses to itself */
    struct policy_host h;
    const char *why = NULL;
    char tmp[DBX_HOST_MAX + 3];
    int len =
        snprintf(tmp, sizeof(tmp),
                 r->host.is_addr && r->host.addr.family == AF_INET6 ? "[%s]" : "%s", r->host.name);
    CHECK(policy_host_parse(tmp, (size_t)len, &h, &why) == 0);
    CHECK(h.is_addr == r->host.is_addr && strcmp(h.name, r->host.name) == 0);
    /* a proper prefix is never complete, and never an error the whole head does not have */
    size_t cuts[] = {0, r->head_len / 2, r->head_len - 1};
    for (size_t i = 0; i < 3; i++) {
        struct proxy_http_req q;
        CHECK(proxy_http_parse(p, cuts[i], &q, NULL) == 0);
    }
}

/* Scan the body whole and in chunks; returns the bytes it takes (or -1 on bad framing). */
static ssize_t body_len(const struct proxy_http_req *r, const uint8_t *p, size_t n, uint32_t seed) {
    struct proxy_body a, b;
    proxy_body_init(&a, r);
    proxy_body_init(&b, r);
    dbx_error *err = NULL;
    ssize_t whole = proxy_body_scan(&a, p, n, &err);
    if (whole < 0) CHECK(err != NULL && err->code == EINVAL);
    dbx_error_free(&err);
    size_t off = 0;
    ssize_t chunked = 0;
    uint32_t x = seed * 2654435761u + 1;
    while (off < n && !b.done) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t c = (x >> 8) % 64 + 1;
        if (c > n - off) c = n - off;
        ssize_t k = proxy_body_scan(&b, p + off, c, &err);
        if (k < 0) {
            dbx_error_free(&err);
            chunked = -1;
            break;
        }
        CHECK((size_t)k <= c);
        CHECK((size_t)k == c || b.done);
        off += (size_t)k;
        chunked = (ssize_t)off;
    }
    if (whole >= 0 && chunked >= 0) {
        CHECK(whole == chunked && a.done == b.done);
    } else {
        CHECK(whole < 0 && chunked < 0);
    }
    return whole >= 0 && a.done ? whole : -1;
}

/* The raw bytes as a host and as an allow pattern. */
static void names(const uint8_t *data, size_t size) {
    size_t n = size < 300 ? size : 300;
    struct policy_host h;
    const char *why = NULL;
    if (policy_host_parse((const char *)data, n, &h, &why) == 0) {
        CHECK(strlen(h.name) <= DBX_HOST_MAX);
        struct dbx_addr a = h.addr;
        if (h.is_addr) (void)dbx_addr_class_name(dbx_addr_classify(&a));
    } else {
        CHECK(why != NULL);
    }
    char *s = dbx_xstrndup((const char *)data, n);
    struct profile_allow pat;
    dbx_error *err = NULL;
    if (policy_pattern_parse(s, &pat, &err) == 0) {
        CHECK(err == NULL && pat.kind <= PROFILE_ALLOW_ADDR);
        /* the one spelling a profile stores parses back to the same pattern */
        char *norm = profile_allow_format(&pat);
        struct profile_allow again;
        const char *w = NULL;
        CHECK(profile_allow_parse(norm, &again, &w) == 0 && again.kind == pat.kind &&
              strcmp(again.name, pat.name) == 0 && again.addr.family == pat.addr.family &&
              memcmp(again.addr.a, pat.addr.a, 16) == 0 && again.prefix == pat.prefix &&
              again.cidr == pat.cidr && again.port == pat.port);
        free(norm);
        if (pat.kind == PROFILE_ALLOW_ADDR) {
            CHECK(pat.prefix <= (pat.addr.family == AF_INET ? 32u : 128u));
            struct policy_host lit = {.is_addr = true, .addr = pat.addr};
            CHECK(pat.port == 0 || policy_pattern_match(&pat, &lit, pat.port));
            CHECK(policy_addr_refused(&pat, 1, &pat.addr) == NULL);
        } else {
            struct policy_host nh = {0};
            memcpy(nh.name, pat.name, sizeof(nh.name));
            CHECK(policy_pattern_match(&pat, &nh, pat.port ? pat.port : 443) ==
                  (pat.kind == PROFILE_ALLOW_NAME));
        }
    } else {
        CHECK(err != NULL && err->code == EINVAL);
        dbx_error_free(&err);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint32_t seed = data[0];
    data++;
    size--;
    names(data, size);
    size_t off = 0;
    for (int req = 0; req < 16 && off < size; req++) {
        struct proxy_http_req *r = dbx_xmalloc(sizeof(*r));
        dbx_error *err = NULL;
        int rc = proxy_http_parse(data + off, size - off, r, &err);
        if (rc <= 0) {
            if (rc < 0)
                check_error(rc, err);
            else
                CHECK(err == NULL && size - off < PROXY_HTTP_MAX_HEAD);
            dbx_error_free(&err);
            free(r);
            break;
        }
        CHECK(rc == 1 && err == NULL);
        check_req(data + off, size - off, r);
        off += r->head_len;
        ssize_t body = body_len(r, data + off, size - off, seed);
        free(r);
        if (body < 0) break;
        off += (size_t)body;
    }
    return 0;
}

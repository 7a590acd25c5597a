/* tests/unit/test-proxy-parse.c: the egress proxy's parsers: the HTTP request head parser and
 * body framing, and ClientHello server_name extraction.  The proxy itself, end to end, is in
 * test-proxy.c; the host and allow-pattern decisions in test-policy-net.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/proxy.h"
#include "tests/unit/test-proxy-hello.h"

/* ---- HTTP heads -------------------------------------------------------------------------- */

static int parse(const char *s, struct proxy_http_req *r) {
    dbx_error *e = NULL;
    int rc = proxy_http_parse((const uint8_t *)s, strlen(s), r, &e);
    if (rc < 0) {
        assert_non_null(e);
        assert_int_equal(-rc, e->code);
    } else {
        assert_null(e);
    }
    dbx_error_free(&e);
    return rc;
}

static void test_http_parse_ok(void **state) {
    struct proxy_http_req r;
    assert_int_equal(parse("CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n"
                           "User-Agent: curl\r\n\r\n\x16\x03\x01",
                           &r),
                     1);
    assert_int_equal(r.method, PROXY_HTTP_CONNECT);
    assert_string_equal(r.host.name, "allowed.test");
    assert_int_equal(r.port, 443);
    assert_int_equal(r.head_len, 79);
    assert_int_equal(r.nheaders, 2);
    assert_int_equal(r.body, PROXY_BODY_NONE);
    assert_true(r.keep_alive);

    const char *get = "GET http://Allowed.Test./a/b?c=d HTTP/1.1\r\nHost: allowed.test\r\n"
                      "Accept:  */* \r\n\r\n";
    assert_int_equal(parse(get, &r), 1);
    assert_int_equal(r.method, PROXY_HTTP_GET);
    assert_string_equal(r.host.name, "allowed.test");
    assert_int_equal(r.port, 80);
    assert_memory_equal(get + r.path.off, "/a/b?c=d", r.path.len);
    assert_int_equal(r.path.len, 8);
    assert_true(r.has_host);
    assert_memory_equal(get + r.headers[1].value.off, "*/*", 3);
    assert_int_equal(r.headers[1].value.len, 3);

    assert_int_equal(parse("GET http://[::1]:8080 HTTP/1.0\r\n\r\n", &r), 1);
    assert_true(r.host.is_addr);
    assert_int_equal(r.port, 8080);
    assert_int_equal(r.path.len, 0);
    assert_false(r.keep_alive);
    assert_int_equal(parse("GET http://a.test?q HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r),
                     1);
    assert_true(r.keep_alive);
    assert_int_equal(parse("GET http://a.test/ HTTP/1.1\r\nConnection: TE, close\r\n\r\n", &r), 1);
    assert_false(r.keep_alive);
    assert_int_equal(parse("POST http://a.test/ HTTP/1.1\r\nContent-Length: 12\r\n\r\n", &r), 1);
    assert_int_equal(r.body, PROXY_BODY_LENGTH);
    assert_int_equal(r.content_length, 12);
    assert_int_equal(
        parse("POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &r), 1);
    assert_int_equal(r.body, PROXY_BODY_CHUNKED);
    assert_int_equal(parse("HEAD http://a.test:80/ HTTP/1.1\r\nHost: A.TEST:80\r\n\r\n", &r), 1);
    assert_int_equal(r.method, PROXY_HTTP_HEAD);
    /* incomplete */
    assert_int_equal(parse("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n", &r), 0);
    assert_int_equal(parse("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r", &r), 0);
    assert_int_equal(parse("", &r), 0);
}

static void test_http_parse_refused(void **state) {
#define REQ(s) s, sizeof(s) - 1
    static const struct {
        const char *req;
        size_t len;
        int code;
    } cases[] = {
        /* not served */
        {REQ("GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n"), EINVAL},
        {REQ("GET https://a.test/ HTTP/1.1\r\n\r\n"), EOPNOTSUPP},
        {REQ("GET ftp://a.test/ HTTP/1.1\r\n\r\n"), EOPNOTSUPP},
        {REQ("PUT http://a.test/ HTTP/1.1\r\n\r\n"), EOPNOTSUPP},
        {REQ("get http://a.test/ HTTP/1.1\r\n\r\n"), EOPNOTSUPP},
        {REQ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), EOPNOTSUPP},
        {REQ("GET http://a.test/ HTTP/2.0\r\n\r\n"), EPROTONOSUPPORT},
        {REQ("GET http://a.test/ HTTP/1.2\r\n\r\n"), EPROTONOSUPPORT},
        {REQ("GET http://a.test/ http/1.1\r\n\r\n"), EINVAL},
        /* request line shape */
        {REQ("GET  http://a.test/ HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/  HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1 \r\n\r\n"), EINVAL},
        {REQ("\r\nGET http://a.test/ HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/\x7f HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/#frag HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("GET http://user@a.test/ HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("GET http://evil.test\\@a.test/ HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test:/ HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test:0/ HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test:65536/ HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test:080/ HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("CONNECT a.test HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("CONNECT a.test: HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("CONNECT /run/devbox/supervisor.sock HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("CONNECT unix:/run/devbox/p.sock HTTP/1.1\r\n\r\n"), EINVAL},
        {REQ("CONNECT [::1]x:443 HTTP/1.1\r\n\r\n"), EINVAL},
        /* hosts */
        {REQ("CONNECT 127.1:443 HTTP/1.1\r\n\r\n"), EACCES},
        {REQ("CONNECT 2130706433:443 HTTP/1.1\r\n\r\n"), EACCES},
        {REQ("CONNECT 0x7f.0.0.1:443 HTTP/1.1\r\n\r\n"), EACCES},
        {REQ("GET http://0177.0.0.1/ HTTP/1.1\r\n\r\n"), EACCES},
        {REQ("GET http://a%2etest/ HTTP/1.1\r\n\r\n"), EACCES},
        {REQ("GET http://a.test../ HTTP/1.1\r\n\r\n"), EACCES},
        /* line framing */
        {REQ("GET http://a.test/ HTTP/1.1\nHost: a.test\n\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nHost: a.test\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nX: a\rb\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nX: a\0b\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nX : a\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\n: a\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nX a\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nX: \x01\r\n\r\n"), EINVAL},
        /* Host smuggling */
        {REQ("GET http://a.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nHost: a.test:8080\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test:8080/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nHost: evil.test\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nhost: a.test\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nHost: a.test@evil.test\r\n\r\n"), EINVAL},
        {REQ("GET http://a.test/ HTTP/1.1\r\nHost: \r\n\r\n"), EINVAL},
        /* framing smuggling */
        {REQ("POST http://a.test/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: "
             "chunked\r\n\r\n"),
         EINVAL},
        {REQ("POST http://a.test/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
         EINVAL},
        {REQ("POST http://a.test/ HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"), EINVAL},
        {REQ("POST http://a.test/ HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), EINVAL},
        {REQ("POST http://a.test/ HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n"), EINVAL},
        {REQ("POST http://a.test/ HTTP/1.1\r\nContent-Length:\r\n\r\n"), EINVAL},
        {REQ("POST http://a.test/ HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
         EINVAL},
        {REQ("POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), EINVAL},
        {REQ("POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
             "chunked\r\n\r\n"),
         EINVAL},
        {REQ("POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n"), EINVAL},
        {REQ("POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n"), EINVAL},
        {REQ("POST http://a.test/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), EINVAL},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        struct proxy_http_req r;
        dbx_error *e = NULL;
        int rc = proxy_http_parse((const uint8_t *)cases[i].req, cases[i].len, &r, &e);
        if (rc >= 0) fail_msg("case %zu accepted: %s", i, cases[i].req);
        if (e->code != cases[i].code)
            fail_msg("case %zu: code %d (%s), want %d: %s", i, e->code, e->msg, cases[i].code,
                     cases[i].req);
        dbx_error_free(&e);
    }
    assert_int_equal(proxy_http_status(-EACCES), 403);
    assert_int_equal(proxy_http_status(-EOPNOTSUPP), 405);
    assert_int_equal(proxy_http_status(-E2BIG), 431);
    assert_int_equal(proxy_http_status(-EPROTONOSUPPORT), 505);
    assert_int_equal(proxy_http_status(-EINVAL), 400);
}

static void test_http_parse_limits(void **state) {
    struct proxy_http_req r;
    dbx_error *e = NULL;
    /* 100 headers fit, 101 do not */
    char *s = dbx_xstrdup("GET http://a.test/ HTTP/1.1\r\n");
    for (int i = 0; i < 100; i++) {
        char *n = dbx_xasprintf("%sX-%d: v\r\n", s, i);
        free(s);
        s = n;
    }
    char *full = dbx_xasprintf("%s\r\n", s);
    assert_int_equal(proxy_http_parse((const uint8_t *)full, strlen(full), &r, NULL), 1);
    free(full);
    full = dbx_xasprintf("%sX-100: v\r\n\r\n", s);
    assert_int_equal(proxy_http_parse((const uint8_t *)full, strlen(full), &r, &e), -E2BIG);
    dbx_error_free(&e);
    free(full);
    free(s);
    /* a head that does not end within 16 KiB */
    size_t n = PROXY_HTTP_MAX_HEAD + 100;
    char *big = dbx_xmalloc(n);
    memset(big, 'a', n);
    memcpy(big, "GET http://a.test/ HTTP/1.1\r\nX: ", 32);
    assert_int_equal(proxy_http_parse((const uint8_t *)big, PROXY_HTTP_MAX_HEAD - 1, &r, NULL), 0);
    assert_int_equal(proxy_http_parse((const uint8_t *)big, PROXY_HTTP_MAX_HEAD, &r, &e), -E2BIG);
    dbx_error_free(&e);
    /* ... even when its end arrives just after */
    memcpy(big + PROXY_HTTP_MAX_HEAD, "\r\n\r\n", 4);
    assert_int_equal(proxy_http_parse((const uint8_t *)big, PROXY_HTTP_MAX_HEAD + 4, &r, &e),
                     -E2BIG);
    dbx_error_free(&e);
    free(big);
}

/* ---- bodies ------------------------------------------------------------------------------ */

/* Scan `body` with chunk sizes of `step` bytes; returns bytes consumed, -1 on error. */
static ssize_t scan(enum proxy_body_kind kind, uint64_t cl, const char *body, size_t len,
                    size_t step, bool *done) {
    struct proxy_http_req r = {.body = kind, .content_length = cl};
    struct proxy_body b;
    proxy_body_init(&b, &r);
    size_t off = 0;
    while (off < len && !b.done) {
        size_t n = len - off < step ? len - off : step;
        dbx_error *e = NULL;
        ssize_t k = proxy_body_scan(&b, (const uint8_t *)body + off, n, &e);
        if (k < 0) {
            assert_non_null(e);
            dbx_error_free(&e);
            return -1;
        }
        assert_true((size_t)k <= n);
        off += (size_t)k;
        if ((size_t)k < n) assert_true(b.done);
    }
    *done = b.done;
    return (ssize_t)off;
}

static void test_body_scan(void **state) {
    static const struct {
        const char *body;
        ssize_t used; /* -1: malformed; else bytes of the body (the rest is the next request) */
        bool done;
    } chunked[] = {
        {"5\r\nhello\r\n0\r\n\r\nGET", 15, true},
        {"5;ext=1\r\nhello\r\n0\r\n\r\n", 21, true},
        {"A\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT", 32, true},
        {"0\r\n\r\n", 5, true},
        {"5\r\nhel", 6, false},
        {"5\r\nhelloX\r\n0\r\n\r\n", -1, false},
        {"5\nhello\r\n0\r\n\r\n", -1, false},
        {"g\r\n", -1, false},
        {"\r\n", -1, false},
        {" 5\r\nhello\r\n0\r\n\r\n", -1, false},
        {"5 \r\nhello\r\n0\r\n\r\n", -1, false},
        {"-5\r\n", -1, false},
        {"0x5\r\n", -1, false},
        {"11111111111111111\r\n", -1, false},
        {"0\r\nX\x01: y\r\n\r\n", -1, false},
        {"0\r\n: y\r\n\r\n", -1, false},
        {"0\r\n\r\r", -1, false},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(chunked); i++) {
        for (size_t step = 1; step <= 64; step *= 4) {
            bool done = false;
            ssize_t used =
                scan(PROXY_BODY_CHUNKED, 0, chunked[i].body, strlen(chunked[i].body), step, &done);
            if (used != chunked[i].used || (used >= 0 && done != chunked[i].done))
                fail_msg("case %zu step %zu: used %zd done %d", i, step, used, done);
        }
    }
    bool done;
    assert_int_equal(scan(PROXY_BODY_LENGTH, 5, "helloGET", 8, 3, &done), 5);
    assert_true(done);
    assert_int_equal(scan(PROXY_BODY_LENGTH, 0, "GET", 3, 3, &done), 0);
    assert_true(done);
    assert_int_equal(scan(PROXY_BODY_NONE, 0, "GET", 3, 3, &done), 0);
    assert_true(done);
    /* a huge chunk is fine: only its framing is parsed */
    assert_int_equal(scan(PROXY_BODY_CHUNKED, 0, "ffffffffffffffff\r\nabc", 21, 64, &done), 21);
    assert_false(done);
    /* many trailers */
    char *t = dbx_xstrdup("0\r\n");
    for (int i = 0; i < 101; i++) {
        char *n = dbx_xasprintf("%sT: v\r\n", t);
        free(t);
        t = n;
    }
    char *tt = dbx_xasprintf("%s\r\n", t);
    assert_int_equal(scan(PROXY_BODY_CHUNKED, 0, tt, strlen(tt), 64, &done), -1);
    free(tt);
    free(t);
}

/* ---- ClientHello ------------------------------------------------------------------------- */

static int sni_of(const uint8_t *b, size_t n, char *sni) {
    dbx_error *e = NULL;
    int r = proxy_tls_sni(b, n, sni, &e);
    if (r < 0) {
        assert_non_null(e);
        assert_int_equal(e->code, EPROTO);
        dbx_error_free(&e);
    }
    return r;
}

static void test_tls_sni(void **state) {
    static uint8_t b[PROXY_TLS_MAX_RAW + 100];
    char sni[DBX_HOST_MAX + 1];
    /* a real one, whole and in every prefix */
    assert_int_equal(sni_of(real_hello, sizeof(real_hello), sni), 1);
    assert_string_equal(sni, "allowed.test");
    for (size_t i = 0; i < sizeof(real_hello); i++)
        assert_int_equal(sni_of(real_hello, i, sni), 0);
    size_t n = hello(b, "Allowed.Test.", 0, 1);
    assert_int_equal(sni_of(b, n, sni), 1);
    assert_string_equal(sni, "allowed.test");
    n = hello(b, NULL, 0, 1);
    assert_int_equal(sni_of(b, n, sni), 1);
    assert_string_equal(sni, "");
    /* split over several records, large */
    n = hello(b, "allowed.test", 12000, 7);
    assert_int_equal(sni_of(b, n, sni), 1);
    assert_string_equal(sni, "allowed.test");
    assert_int_equal(sni_of(b, n - 1, sni), 0);
    n = hello(b, "allowed.test", 200, PROXY_TLS_MAX_RECORDS);
    assert_int_equal(sni_of(b, n, sni), 1);
    n = hello(b, "allowed.test", 200, PROXY_TLS_MAX_RECORDS + 1);
    assert_int_equal(sni_of(b, n, sni), -EPROTO);
    /* the biggest hello allowed, and one byte more */
    n = hello(b, "allowed.test", PROXY_TLS_MAX_HELLO - 68, 2);
    assert_int_equal(sni_of(b, n, sni), 1);
    n = hello(b, "allowed.test", PROXY_TLS_MAX_HELLO - 67, 2);
    assert_int_equal(sni_of(b, n, sni), -EPROTO);
    /* bad server names */
    n = hello(b, "evil.test\0allowed.test", 0, 1);
    assert_int_equal(sni_of(b, n, sni), 1); /* strlen stops at the NUL: "evil.test" */
    assert_string_equal(sni, "evil.test");
    n = hello(b, "127.1", 0, 1);
    assert_int_equal(sni_of(b, n, sni), -EPROTO);
    n = hello(b, "a b", 0, 1);
    assert_int_equal(sni_of(b, n, sni), -EPROTO);
    n = hello(b, "", 0, 1);
    assert_int_equal(sni_of(b, n, sni), -EPROTO);
    /* not TLS at all */
    assert_int_equal(sni_of((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, sni), -EPROTO);
    assert_int_equal(sni_of((const uint8_t *)"SSH-2.0-OpenSSH", 15, sni), -EPROTO);
    /* an empty record, a non-hello, bytes after the hello */
    uint8_t empty[] = {22, 3, 1, 0, 0};
    assert_int_equal(sni_of(empty, sizeof(empty), sni), -EPROTO);
    n = hello(b, "allowed.test", 0, 1);
    b[5] = 2; /* ServerHello */
    assert_int_equal(sni_of(b, n, sni), -EPROTO);
    n = hello(b, "allowed.test", 0, 1);
    b[4]++; /* the record claims one byte more than the message */
    b[n] = 0;
    assert_int_equal(sni_of(b, n + 1, sni), -EPROTO);
    /* application data after a complete hello is not the hello's business */
    n = hello(b, "allowed.test", 0, 1);
    memcpy(b + n, "\x17\x03\x03\x00\x01x", 6);
    assert_int_equal(sni_of(b, n + 6, sni), 1);
    /* duplicate server_name extension */
    n = hello(b, "allowed.test", 0, 1);
    assert_int_equal(sni_of(b, n, sni), 1);
    {
        /* append a second server_name naming evil.test: fix up the three lengths */
        size_t extra = 4 + 5 + 9;
        uint8_t ext[] = {0, 0, 0, 14, 0, 12, 0, 0, 9, 'e', 'v', 'i', 'l', '.', 't', 'e', 's', 't'};
        memcpy(b + n, ext, sizeof(ext));
        size_t rec = ((size_t)b[3] << 8 | b[4]) + extra, msg = rec - 4;
        put16(b + 3, rec);
        b[6] = (uint8_t)(msg >> 16), b[7] = (uint8_t)(msg >> 8), b[8] = (uint8_t)msg;
        size_t ext_at = 5 + 4 + 2 + 32 + 1 + 4 + 2;
        put16(b + ext_at, ((size_t)b[ext_at] << 8 | b[ext_at + 1]) + extra);
        assert_int_equal(sni_of(b, n + extra, sni), -EPROTO);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_parse_ok),     cmocka_unit_test(test_http_parse_refused),
        cmocka_unit_test(test_http_parse_limits), cmocka_unit_test(test_body_scan),
        cmocka_unit_test(test_tls_sni),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

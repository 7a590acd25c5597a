/* tests/fuzz/fuzz-proxy-secret.c: libFuzzer harness for what the egress proxy runs on the
 * requests of an intercepted TLS connection: proxy_http_parse_origin, proxy_secret_head (the
 * placeholder check and the rewrite that puts values into headers) and the body framing.
 *
 * Input layout: byte 0 picks the host the connection goes to (api.test, other.test, a host
 * no secret goes to), the rest is what the box sends inside TLS: heads and bodies, one request
 * after another.  Checks: a refusal names a secret whose placeholder is in the head and may
 * not go to the host, and its message holds no value; a rewrite re-parses as one head with the
 * same method, target, framing and keep-alive, holds no placeholder in a value but Host's,
 * and holds a value the box did not send only when the host may receive that secret; errors
 * carry a known code.
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without DBX_LIBFUZZER a
 * replay main() runs each file (or each file in each directory) named on the command line. */
#include <dirent.h>
#include <sys/stat.h>

#include "common/common.h"
#include "proxy/proxy.h"

#include "replay.h"

static char *api_hosts[] = {"api.test", NULL};
static char *other_hosts[] = {"other.test", "*.other.test", NULL};
static const struct proxy_secret secrets[] = {
    {.name = "API_KEY",
     .placeholder = "devbox-secret-API_KEY-0123456789abcdef0123456789abcdef",
     .value = "VALUE-ONE-sk-123",
     .hosts = api_hosts,
     .header = "x-api-key: {}"},
    {.name = "OTHER",
     .placeholder = "devbox-secret-OTHER-fedcba9876543210fedcba9876543210",
     .value = "VALUE-TWO\tx",
     .hosts = other_hosts,
     .header = "Authorization: Bearer {}"},
};
static const char *const hosts[] = {"api.test", "other.test", "plain.test"};

static bool has(const uint8_t *p, size_t n, const char *s) {
    return memmem(p, n, s, strlen(s)) != NULL;
}

static void check_rewrite(const uint8_t *in, const struct proxy_http_req *r, const uint8_t *out,
                          size_t n, const struct policy_host *h) {
    CHECK(n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0);
    const uint8_t *eol = memmem(out, n, "\r\n", 2);
    CHECK(eol != NULL);
    size_t line = (size_t)(eol - out);
    CHECK(memcmp(out, in, line) == 0 && in[line] == '\r'); /* the request line as sent */
    for (size_t i = 0; i < DBX_ARRAY_SIZE(secrets); i++) {
        /* a value the box itself did not send appears only where it may go */
        if (has(out, n, secrets[i].value) && !has(in, r->head_len, secrets[i].value))
            CHECK(proxy_secret_allows(&secrets[i], h, 443));
    }
    if (n > PROXY_HTTP_MAX_HEAD) return;
    struct proxy_http_req *q = dbx_xmalloc(sizeof(*q));
    dbx_error *err = NULL;
    int rc = proxy_http_parse_origin(out, n, q, &err);
    CHECK(rc == 1 && q->head_len == n);
    CHECK(q->method == r->method && q->minor == r->minor && q->body == r->body &&
          q->content_length == r->content_length && q->keep_alive == r->keep_alive);
    CHECK(q->path.len == r->path.len &&
          memcmp(out + q->path.off, in + r->path.off, r->path.len) == 0);
    /* no header value but Host's holds a placeholder (names are not rewritten) */
    for (uint32_t k = 0; k < q->nheaders; k++) {
        const uint8_t *name = out + q->headers[k].name.off;
        if (q->headers[k].name.len == 4 && strncasecmp((const char *)name, "host", 4) == 0)
            continue;
        for (size_t i = 0; i < DBX_ARRAY_SIZE(secrets); i++)
            CHECK(!has(out + q->headers[k].value.off, q->headers[k].value.len,
                       secrets[i].placeholder));
    }
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *host = hosts[data[0] % DBX_ARRAY_SIZE(hosts)];
    data++;
    size--;
    struct policy_host h;
    const char *why = NULL;
    CHECK(policy_host_parse(host, strlen(host), &h, &why) == 0);
    CHECK(proxy_secrets_check(secrets, DBX_ARRAY_SIZE(secrets), NULL) == 0);
    size_t off = 0;
    for (int req = 0; req < 16 && off < size; req++) {
        struct proxy_http_req *r = dbx_xmalloc(sizeof(*r));
        dbx_error *err = NULL;
        int rc = proxy_http_parse_origin(data + off, size - off, r, &err);
        if (rc <= 0) {
            if (rc < 0) {
                CHECK(err != NULL && err->msg != NULL && err->code == -rc);
                int st = proxy_http_status(rc);
                CHECK(st == 400 || st == 403 || st == 405 || st == 431 || st == 505);
            }
            dbx_error_free(&err);
            free(r);
            break;
        }
        CHECK(r->method != PROXY_HTTP_CONNECT && r->head_len <= size - off);
        struct dbx_buf out = {0};
        int which = -1;
        rc = proxy_secret_head(data + off, r, secrets, DBX_ARRAY_SIZE(secrets), &h, 443, &out,
                               &which, &err);
        int bad = proxy_secret_misplaced(data + off, r->head_len, secrets, DBX_ARRAY_SIZE(secrets),
                                         &h, 443);
        if (rc == -EACCES) {
            /* a misplaced placeholder (the wrong host), or one in a header other than
             * Authorization and the secret's own, where a server could reflect the value */
            CHECK(which >= 0 && out.len == 0 && err != NULL);
            CHECK(which == bad || (bad < 0 && strstr(err->msg, "placeholder in header")));
            CHECK(strstr(err->msg, secrets[which].name) != NULL);
            for (size_t i = 0; i < DBX_ARRAY_SIZE(secrets); i++)
                CHECK(strstr(err->msg, secrets[i].value) == NULL);
        } else {
            CHECK(bad < 0);
            CHECK(rc == 0 || rc == -E2BIG);
            if (rc == 0) check_rewrite(data + off, r, out.data, out.len, &h);
        }
        dbx_error_free(&err);
        dbx_buf_free(&out);
        off += r->head_len;
        struct proxy_body b;
        proxy_body_init(&b, r);
        free(r);
        if (rc < 0) break;
        ssize_t k = proxy_body_scan(&b, data + off, size - off, &err);
        dbx_error_free(&err);
        if (k < 0 || !b.done) break;
        off += (size_t)k;
    }
    return 0;
}

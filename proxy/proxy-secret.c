/* proxy/proxy-secret.c: secrets in request heads (the contract is in proxy.h).
 *
 * Pure functions over bytes, shared by the proxy's connection threads, the unit tests and the
 * fuzz harness.  A value only ever goes into the rewritten head in `out`; error messages and
 * the placeholder checks name a secret by its name, never by its value. */
#include <ctype.h>

#include "proxy-internal.h"

#define SECRET_NAME_MAX 64u
#define HEADER_TEMPLATE_MAX 256u

static bool is_tchar(uint8_t c) {
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool name_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > SECRET_NAME_MAX || isdigit((unsigned char)s[0])) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_') return false;
    return true;
}

static bool placeholder_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n < PROXY_SECRET_PLACEHOLDER_MIN || n > PROXY_SECRET_PLACEHOLDER_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return false;
    return true;
}

/* "Name: template" with a token name and exactly one "{}"; the name's length, or 0. */
static size_t header_name_len(const char *h) {
    size_t n = 0;
    while (h[n] && is_tchar((uint8_t)h[n]))
        n++;
    return n > 0 && h[n] == ':' ? n : 0;
}

static const char *header_check(const char *h) {
    if (strlen(h) > HEADER_TEMPLATE_MAX) return "header template too long";
    if (header_name_len(h) == 0) return "header is not 'Name: value with {}'";
    const char *t = strstr(h, "{}");
    if (!t || strstr(t + 2, "{}")) return "header template needs exactly one {}";
    for (const unsigned char *p = (const unsigned char *)h; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) return "control byte in header template";
    return NULL;
}

static int check_one(const struct proxy_secret *s, dbx_error **err) {
    if (!name_ok(s->name))
        return dbx_error_setx(err, EINVAL, "secret name '%.64s' is not [A-Za-z_][A-Za-z0-9_]*",
                              s->name ? s->name : "");
    if (!placeholder_ok(s->placeholder))
        return dbx_error_setx(err, EINVAL,
                              "secret '%s': placeholder is not %u..%u bytes of [A-Za-z0-9_-]",
                              s->name, PROXY_SECRET_PLACEHOLDER_MIN, PROXY_SECRET_PLACEHOLDER_MAX);
    size_t vl = s->value ? strlen(s->value) : 0;
    if (vl == 0 || vl > PROXY_SECRET_VALUE_MAX)
        return dbx_error_setx(err, EINVAL, "secret '%s': value is empty or over %u bytes", s->name,
                              PROXY_SECRET_VALUE_MAX);
    for (size_t i = 0; i < vl; i++) {
        unsigned char c = (unsigned char)s->value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return dbx_error_setx(
                err, EINVAL, "secret '%s': value holds a control byte (at offset %zu)", s->name, i);
    }
    size_t nh = dbx_strv_len(s->hosts);
    if (nh == 0 || nh > PROFILE_MAX_LIST)
        return dbx_error_setx(err, EINVAL, "secret '%s': 1..%u host patterns needed", s->name,
                              PROFILE_MAX_LIST);
    for (size_t i = 0; i < nh; i++) {
        struct profile_allow pat;
        if (policy_pattern_parse(s->hosts[i], &pat, err) < 0)
            return dbx_error_wrap(err, "secret '%s'", s->name);
    }
    const char *why = s->header ? header_check(s->header) : NULL;
    if (why) return dbx_error_setx(err, EINVAL, "secret '%s': %s", s->name, why);
    return 0;
}

int proxy_secrets_check(const struct proxy_secret *s, size_t n, dbx_error **err) {
    if (n > PROXY_SECRET_MAX)
        return dbx_error_setx(err, E2BIG, "%zu secrets, more than %u", n, PROXY_SECRET_MAX);
    for (size_t i = 0; i < n; i++) {
        int r = check_one(&s[i], err);
        if (r < 0) return r;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s[i].name, s[j].name) == 0)
                return dbx_error_setx(err, EINVAL, "secret '%s' declared twice", s[i].name);
            /* one placeholder inside another would be replaced by the wrong value */
            if (strstr(s[i].placeholder, s[j].placeholder) ||
                strstr(s[j].placeholder, s[i].placeholder))
                return dbx_error_setx(err, EINVAL,
                                      "secrets '%s' and '%s': overlapping "
                                      "placeholders",
                                      s[j].name, s[i].name);
        }
    }
    return 0;
}

bool proxy_secret_allows(const struct proxy_secret *s, const struct policy_host *h, uint16_t port) {
    for (size_t i = 0; s->hosts && s->hosts[i]; i++) {
        struct profile_allow pat;
        if (policy_pattern_parse(s->hosts[i], &pat, NULL) == 0 &&
            policy_pattern_match(&pat, h, port))
            return true;
    }
    return false;
}

/* Whether needle occurs in hay, ignoring ASCII case: a box that lower-cases a placeholder
 * (a host name label, a header it normalizes) is still caught. */
static bool contains_nocase(const uint8_t *hay, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++)
        if (tolower(hay[i]) == tolower((unsigned char)needle[0]) &&
            strncasecmp((const char *)hay + i, needle, n) == 0)
            return true;
    return false;
}

int proxy_secret_misplaced(const uint8_t *head, size_t len, const struct proxy_secret *s, size_t n,
                           const struct policy_host *h, uint16_t port) {
    for (size_t i = 0; i < n; i++)
        if (contains_nocase(head, len, s[i].placeholder) && !proxy_secret_allows(&s[i], h, port))
            return (int)i;
    return -1;
}

/* value[0..n) with every placeholder of an allowed secret replaced. */
static void put_value(struct dbx_buf *o, const uint8_t *v, size_t n, const struct proxy_secret *s,
                      size_t ns, const bool *ok) {
    size_t i = 0;
    while (i < n) {
        size_t hit = SIZE_MAX;
        for (size_t k = 0; k < ns && hit == SIZE_MAX; k++) {
            size_t pl = strlen(s[k].placeholder);
            if (ok[k] && pl <= n - i && memcmp(v + i, s[k].placeholder, pl) == 0) hit = k;
        }
        if (hit == SIZE_MAX) {
            dbx_buf_put(o, v + i++, 1);
            continue;
        }
        dbx_buf_put(o, s[hit].value, strlen(s[hit].value));
        i += strlen(s[hit].placeholder);
    }
}

static void put_str(struct dbx_buf *o, const char *s) {
    dbx_buf_put(o, s, strlen(s));
}

static bool name_is(const uint8_t *p, size_t n, const char *word) {
    return strlen(word) == n && strncasecmp((const char *)p, word, n) == 0;
}

static bool has_header(const uint8_t *head, const struct proxy_http_req *req, const char *name,
                       size_t nl) {
    for (uint32_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name.len == nl &&
            strncasecmp((const char *)head + req->headers[i].name.off, name, nl) == 0)
            return true;
    return false;
}

static void put_headers(const uint8_t *head, const struct proxy_http_req *req,
                        const struct proxy_secret *s, size_t n, const bool *ok, struct dbx_buf *o) {
    static const char *const drop[] = {"connection",          "proxy-connection", "keep-alive",
                                       "proxy-authorization", "upgrade",          "http2-settings"};
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const uint8_t *name = head + req->headers[i].name.off;
        size_t nl = req->headers[i].name.len;
        bool skip = false;
        for (size_t k = 0; k < DBX_ARRAY_SIZE(drop) && !skip; k++)
            skip = name_is(name, nl, drop[k]);
        if (skip) continue;
        dbx_buf_put(o, name, nl);
        dbx_buf_put(o, ": ", 2);
        /* Host routes the request (checked against the CONNECT host): never rewritten */
        const uint8_t *v = head + req->headers[i].value.off;
        if (name_is(name, nl, "host"))
            dbx_buf_put(o, v, req->headers[i].value.len);
        else
            put_value(o, v, req->headers[i].value.len, s, n, ok);
        dbx_buf_put(o, "\r\n", 2);
    }
    for (size_t k = 0; k < n; k++) {
        if (!ok[k] || !s[k].header) continue;
        size_t nl = header_name_len(s[k].header);
        if (nl == 0 || has_header(head, req, s[k].header, nl)) continue;
        const char *t = s[k].header + nl + 1;
        while (*t == ' ' || *t == '\t')
            t++;
        const char *hole = strstr(t, "{}");
        if (!hole) continue;
        dbx_buf_put(o, s[k].header, nl);
        dbx_buf_put(o, ": ", 2);
        dbx_buf_put(o, t, (size_t)(hole - t));
        dbx_buf_put(o, s[k].value, strlen(s[k].value));
        put_str(o, hole + 2);
        dbx_buf_put(o, "\r\n", 2);
    }
    put_str(o, req->keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
}

/* The headers a secret's value may travel in: Authorization and its own `header`'s name.  Any
 * other header could be reflected by the server (an Origin echoed in
 * Access-Control-Allow-Origin, an error page quoting a header) and carry the value back into
 * the box. */
static bool carrier_is(const struct proxy_secret *s, const uint8_t *name, size_t nl) {
    if (name_is(name, nl, "authorization")) return true;
    size_t hl = s->header ? header_name_len(s->header) : 0;
    return hl && hl == nl && strncasecmp(s->header, (const char *)name, nl) == 0;
}

int proxy_secret_head(const uint8_t *head, const struct proxy_http_req *req,
                      const struct proxy_secret *s, size_t n, const struct policy_host *h,
                      uint16_t port, struct dbx_buf *out, int *ret_secret, dbx_error **err) {
    int bad = proxy_secret_misplaced(head, req->head_len, s, n, h, port);
    if (bad >= 0) {
        *ret_secret = bad;
        return dbx_error_setx(err, EACCES, "secret %s placeholder sent to %s", s[bad].name,
                              h->name);
    }
    bool ok[PROXY_SECRET_MAX] = {0};
    for (size_t k = 0; k < n && k < PROXY_SECRET_MAX; k++)
        ok[k] = proxy_secret_allows(&s[k], h, port);
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const uint8_t *name = head + req->headers[i].name.off;
        size_t nl = req->headers[i].name.len;
        for (size_t k = 0; k < n && k < PROXY_SECRET_MAX; k++) {
            if (!ok[k] || carrier_is(&s[k], name, nl) || name_is(name, nl, "host") ||
                !contains_nocase(head + req->headers[i].value.off, req->headers[i].value.len,
                                 s[k].placeholder))
                continue;
            *ret_secret = (int)k;
            return dbx_error_setx(
                err, EACCES,
                "secret %s placeholder in header '%.*s' (only Authorization%s%.*s "
                "carry it)",
                s[k].name, (int)(nl < 64 ? nl : 64), (const char *)name, s[k].header ? " and " : "",
                s[k].header ? (int)header_name_len(s[k].header) : 0,
                s[k].header ? s[k].header : "");
        }
    }
    /* one block for every head that can pass: growing would free copies of values unwiped */
    struct dbx_buf o = {.data = dbx_xmalloc(PROXY_MITM_MAX_HEAD + 1),
                        .cap = PROXY_MITM_MAX_HEAD + 1};
    const uint8_t *cr = memchr(head, '\r', req->head_len);
    dbx_buf_put(&o, head, cr ? (size_t)(cr - head) : 0);
    dbx_buf_put(&o, "\r\n", 2);
    put_headers(head, req, s, n < PROXY_SECRET_MAX ? n : PROXY_SECRET_MAX, ok, &o);
    if (o.len > PROXY_MITM_MAX_HEAD) {
        explicit_bzero(o.data, o.len);
        dbx_buf_free(&o);
        return dbx_error_setx(err, E2BIG, "request head with its secrets over %u bytes",
                              PROXY_MITM_MAX_HEAD);
    }
    dbx_buf_put(out, o.data, o.len);
    explicit_bzero(o.data, o.len);
    dbx_buf_free(&o);
    return 0;
}

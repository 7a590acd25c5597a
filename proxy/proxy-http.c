/* proxy/proxy-http.c: the proxy's HTTP/1.x request head parser and body framing scanner.
 *
 * Strict on purpose: the proxy forwards a request only when it knows exactly where the
 * request ends, so that a second request on a kept-alive connection is parsed (and checked)
 * rather than smuggled inside the first one's body (CL.TE / TE.CL desync).  Anything
 * ambiguous (both framing headers, a Transfer-Encoding other than "chunked", repeated or
 * listed Content-Length, obs-fold, bare CR/LF, a blank before a header's colon) is refused. */
#include <ctype.h>

#include "proxy-internal.h"

#define CHUNK_LINE_MAX 4096u
#define TRAILERS_MAX 100u

struct method_name {
    const char *name;
    enum proxy_http_method method;
    bool origin_only; /* served only inside an intercepted connection */
};
static const struct method_name methods[] = {
    {"CONNECT", PROXY_HTTP_CONNECT, false}, {"GET", PROXY_HTTP_GET, false},
    {"HEAD", PROXY_HTTP_HEAD, false},       {"POST", PROXY_HTTP_POST, false},
    {"PUT", PROXY_HTTP_PUT, true},          {"PATCH", PROXY_HTTP_PATCH, true},
    {"DELETE", PROXY_HTTP_DELETE, true},    {"OPTIONS", PROXY_HTTP_OPTIONS, true},
};

/* RFC 9110 tchar */
static bool is_tchar(uint8_t c) {
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool span_is(const uint8_t *p, size_t n, const char *word) {
    return strlen(word) == n && strncasecmp((const char *)p, word, n) == 0;
}

int proxy_http_status(int code) {
    switch (code < 0 ? -code : code) {
    case EACCES:
        return 403;
    case EOPNOTSUPP:
        return 405;
    case E2BIG:
        return 431;
    case EPROTONOSUPPORT:
        return 505;
    default:
        return 400;
    }
}

/* Find CRLF CRLF within buf[0..lim); refuse bare LF and NUL on the way (they can never become
 * valid, so the client gets its answer without waiting for more bytes). */
static int find_end(const uint8_t *buf, size_t lim, size_t *ret, dbx_error **err) {
    for (size_t i = 0; i < lim; i++) {
        if (buf[i] == '\0') return dbx_error_setx(err, EINVAL, "NUL byte in request head");
        if (buf[i] != '\n') continue;
        if (i == 0 || buf[i - 1] != '\r')
            return dbx_error_setx(err, EINVAL, "bare LF in request head");
        if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            *ret = i - 3;
            return 1;
        }
    }
    return 0;
}

static int parse_port(const uint8_t *p, size_t n, uint16_t *ret) {
    unsigned v = 0;
    if (n == 0 || n > 5 || p[0] == '0') return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit(p[i])) return -EINVAL;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > 65535) return -EINVAL;
    *ret = (uint16_t)v;
    return 0;
}

/* host[:port] (IPv6 in brackets); without a port, default_port (0 = a port is required). */
static int parse_authority(const uint8_t *p, size_t n, uint16_t default_port,
                           struct policy_host *host, uint16_t *port, const char *what,
                           dbx_error **err) {
    size_t hostlen = n;
    if (n > 0 && p[0] == '[') {
        const uint8_t *rb = memchr(p, ']', n);
        if (!rb) return dbx_error_setx(err, EINVAL, "%s: '[' without ']'", what);
        hostlen = (size_t)(rb - p) + 1;
        if (hostlen < n && p[hostlen] != ':')
            return dbx_error_setx(err, EINVAL, "%s: expected ':port' after ']'", what);
    } else {
        const uint8_t *colon = memchr(p, ':', n);
        if (colon) hostlen = (size_t)(colon - p);
    }
    if (hostlen < n) {
        if (parse_port(p + hostlen + 1, n - hostlen - 1, port) < 0)
            return dbx_error_setx(err, EINVAL, "%s: bad port", what);
    } else if (default_port) {
        *port = default_port;
    } else {
        return dbx_error_setx(err, EINVAL, "%s: a port is required", what);
    }
    const char *why = NULL;
    if (policy_host_parse((const char *)p, hostlen, host, &why) < 0)
        return dbx_error_setx(err, EACCES, "%s: %s", what, why);
    return 0;
}

/* "http://authority[/path][?query]" into host, port and path span. */
static int parse_absolute(const uint8_t *buf, size_t off, size_t n, struct proxy_http_req *r,
                          dbx_error **err) {
    const uint8_t *t = buf + off;
    if (n >= 8 && strncasecmp((const char *)t, "https://", 8) == 0)
        return dbx_error_setx(err, EOPNOTSUPP, "https:// targets go through CONNECT");
    if (n < 7 || strncasecmp((const char *)t, "http://", 7) != 0) {
        if (n > 0 && t[0] == '/')
            return dbx_error_setx(err, EINVAL,
                                  "not a proxy request (the target must be an "
                                  "absolute http:// URI)");
        return dbx_error_setx(err, EOPNOTSUPP, "only http:// targets and CONNECT are served");
    }
    if (memchr(t, '#', n)) return dbx_error_setx(err, EINVAL, "fragment in request target");
    size_t a = 7, e = a;
    while (e < n && t[e] != '/' && t[e] != '?')
        e++;
    if (memchr(t + a, '@', e - a)) return dbx_error_setx(err, EINVAL, "userinfo in request target");
    int rc = parse_authority(t + a, e - a, 80, &r->host, &r->port, "request target", err);
    if (rc < 0) return rc;
    r->path = (struct proxy_span){(uint32_t)(off + e), (uint32_t)(n - e)};
    return 0;
}

/* An origin-form target: "/..." (or "*" for OPTIONS); what the URI grammar allows beyond
 * that is the origin's business, the bytes were checked to be visible ASCII. */
static int parse_origin(const uint8_t *buf, size_t off, size_t n, struct proxy_http_req *r,
                        dbx_error **err) {
    const uint8_t *t = buf + off;
    bool star = n == 1 && t[0] == '*' && r->method == PROXY_HTTP_OPTIONS;
    if (n == 0 || (t[0] != '/' && !star))
        return dbx_error_setx(err, EINVAL, "request target is not in origin form");
    if (memchr(t, '#', n)) return dbx_error_setx(err, EINVAL, "fragment in request target");
    r->path = (struct proxy_span){(uint32_t)off, (uint32_t)n};
    return 0;
}

static int parse_request_line(const uint8_t *buf, size_t n, bool origin, struct proxy_http_req *r,
                              dbx_error **err) {
    const uint8_t *sp1 = memchr(buf, ' ', n);
    if (!sp1 || sp1 == buf) return dbx_error_setx(err, EINVAL, "malformed request line");
    size_t mlen = (size_t)(sp1 - buf);
    const uint8_t *sp2 = memchr(sp1 + 1, ' ', n - mlen - 1);
    if (!sp2 || sp2 == sp1 + 1) return dbx_error_setx(err, EINVAL, "malformed request line");
    size_t toff = mlen + 1, tlen = (size_t)(sp2 - sp1 - 1);
    const uint8_t *ver = sp2 + 1;
    size_t vlen = n - (size_t)(ver - buf);

    for (size_t i = 0; i < mlen; i++)
        if (!is_tchar(buf[i])) return dbx_error_setx(err, EINVAL, "malformed request method");
    bool known = false;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(methods) && !known; i++)
        if (strlen(methods[i].name) == mlen && memcmp(buf, methods[i].name, mlen) == 0 &&
            (origin || !methods[i].origin_only) &&
            (!origin || methods[i].method != PROXY_HTTP_CONNECT)) {
            r->method = methods[i].method;
            known = true;
        }
    if (!known)
        return dbx_error_setx(err, EOPNOTSUPP, "method '%.*s' is not served (%s)",
                              (int)(mlen > 16 ? 16 : mlen), (const char *)buf,
                              origin ? "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
                                     : "CONNECT, GET, HEAD, POST");
    for (size_t i = 0; i < tlen; i++)
        if (buf[toff + i] <= 0x20 || buf[toff + i] >= 0x7f)
            return dbx_error_setx(err, EINVAL, "bad byte in request target");
    if (vlen == 8 && memcmp(ver, "HTTP/1.", 7) == 0 && (ver[7] == '0' || ver[7] == '1'))
        r->minor = (uint8_t)(ver[7] - '0');
    else if (vlen == 8 && memcmp(ver, "HTTP/", 5) == 0 && isdigit(ver[5]) && ver[6] == '.' &&
             isdigit(ver[7]))
        return dbx_error_setx(err, EPROTONOSUPPORT, "only HTTP/1.0 and HTTP/1.1 are served");
    else
        return dbx_error_setx(err, EINVAL, "malformed request line");

    if (origin) return parse_origin(buf, toff, tlen, r, err);
    if (r->method == PROXY_HTTP_CONNECT)
        return parse_authority(buf + toff, tlen, 0, &r->host, &r->port, "CONNECT target", err);
    return parse_absolute(buf, toff, tlen, r, err);
}

/* One "name: value" line into r->headers. */
static int parse_header(const uint8_t *buf, size_t off, size_t n, struct proxy_http_req *r,
                        dbx_error **err) {
    const uint8_t *l = buf + off;
    if (l[0] == ' ' || l[0] == '\t')
        return dbx_error_setx(err, EINVAL, "folded header line (obs-fold)");
    size_t name = 0;
    while (name < n && is_tchar(l[name]))
        name++;
    if (name == 0 || name == n || l[name] != ':')
        return dbx_error_setx(err, EINVAL, "malformed header line");
    size_t v = name + 1, e = n;
    for (size_t i = v; i < n; i++)
        if ((l[i] < 0x20 && l[i] != '\t') || l[i] == 0x7f)
            return dbx_error_setx(err, EINVAL, "control byte in header value");
    while (v < e && (l[v] == ' ' || l[v] == '\t'))
        v++;
    while (e > v && (l[e - 1] == ' ' || l[e - 1] == '\t'))
        e--;
    if (r->nheaders >= PROXY_HTTP_MAX_HEADERS)
        return dbx_error_setx(err, E2BIG, "more than %u header lines", PROXY_HTTP_MAX_HEADERS);
    r->headers[r->nheaders].name = (struct proxy_span){(uint32_t)off, (uint32_t)name};
    r->headers[r->nheaders].value = (struct proxy_span){(uint32_t)(off + v), (uint32_t)(e - v)};
    r->nheaders++;
    return 0;
}

struct framing {
    bool origin; /* proxy_http_parse_origin: the Host header names the target */
    int content_length, chunked, host, close, keep_alive;
};

/* Comma-separated Connection tokens. */
static void connection_tokens(const uint8_t *v, size_t n, struct framing *f) {
    size_t i = 0;
    while (i < n) {
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i++;
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (span_is(v + s, e - s, "close")) f->close++;
        if (span_is(v + s, e - s, "keep-alive")) f->keep_alive++;
    }
}

static int check_header(const uint8_t *buf, size_t i, struct proxy_http_req *r, struct framing *f,
                        dbx_error **err) {
    const uint8_t *name = buf + r->headers[i].name.off, *v = buf + r->headers[i].value.off;
    size_t nl = r->headers[i].name.len, vl = r->headers[i].value.len;
    if (span_is(name, nl, "content-length")) {
        if (f->content_length++ || vl == 0 || vl > 19)
            return dbx_error_setx(err, EINVAL, "bad or repeated Content-Length");
        uint64_t x = 0;
        for (size_t k = 0; k < vl; k++) {
            if (!isdigit(v[k])) return dbx_error_setx(err, EINVAL, "bad Content-Length");
            x = x * 10 + (uint64_t)(v[k] - '0');
        }
        r->content_length = x;
    } else if (span_is(name, nl, "transfer-encoding")) {
        if (f->chunked++ || !span_is(v, vl, "chunked"))
            return dbx_error_setx(err, EINVAL, "Transfer-Encoding other than one 'chunked'");
    } else if (span_is(name, nl, "connection") || span_is(name, nl, "proxy-connection")) {
        connection_tokens(v, vl, f);
    } else if (span_is(name, nl, "host")) {
        if (f->host++) return dbx_error_setx(err, EINVAL, "more than one Host header");
        if (r->method == PROXY_HTTP_CONNECT) return 0;
        if (f->origin) {
            if (memchr(v, '@', vl)) return dbx_error_setx(err, EINVAL, "userinfo in Host header");
            int rc = parse_authority(v, vl, 443, &r->host, &r->port, "Host", err);
            if (rc < 0) return rc;
            r->has_host = true;
            return 0;
        }
        struct policy_host h;
        uint16_t port = 0;
        _cleanup_error_ dbx_error *e = NULL;
        if (parse_authority(v, vl, 80, &h, &port, "Host", &e) < 0 ||
            strcmp(h.name, r->host.name) != 0 || h.is_addr != r->host.is_addr || port != r->port)
            return dbx_error_setx(err, EINVAL,
                                  "Host header '%.*s' differs from the request "
                                  "target",
                                  (int)(vl > 64 ? 64 : vl), (const char *)v);
        r->has_host = true;
    }
    return 0;
}

static int check_framing(struct proxy_http_req *r, const struct framing *f, dbx_error **err) {
    if (f->content_length && f->chunked)
        return dbx_error_setx(err, EINVAL, "both Content-Length and Transfer-Encoding");
    if (f->chunked && r->minor == 0)
        return dbx_error_setx(err, EINVAL, "Transfer-Encoding in an HTTP/1.0 request");
    if (f->origin && r->minor == 1 && !r->has_host)
        return dbx_error_setx(err, EINVAL, "HTTP/1.1 request without a Host header");
    r->keep_alive = r->minor == 1 ? !f->close : (f->keep_alive && !f->close);
    if (r->method == PROXY_HTTP_CONNECT)
        r->body = PROXY_BODY_NONE;
    else if (f->chunked)
        r->body = PROXY_BODY_CHUNKED;
    else if (f->content_length)
        r->body = PROXY_BODY_LENGTH;
    return 0;
}

static int http_parse(const uint8_t *buf, size_t len, bool origin, struct proxy_http_req *ret,
                      dbx_error **err) {
    memset(ret, 0, sizeof(*ret));
    size_t lim = len < PROXY_HTTP_MAX_HEAD ? len : PROXY_HTTP_MAX_HEAD, end = 0;
    int r = find_end(buf, lim, &end, err);
    if (r < 0) return r;
    if (r == 0) {
        if (len >= PROXY_HTTP_MAX_HEAD)
            return dbx_error_setx(err, E2BIG, "request head larger than %u bytes",
                                  PROXY_HTTP_MAX_HEAD);
        return 0;
    }
    if (end == 0) return dbx_error_setx(err, EINVAL, "empty request line");
    /* every line ends in CRLF (find_end refused bare LF); each line's first CR must be its
     * end, so a CR inside a line is bare */
    struct framing f = {.origin = origin};
    size_t off = 0;
    bool first = true;
    while (off < end + 2) {
        const uint8_t *cr = memchr(buf + off, '\r', end + 2 - off);
        size_t n = (size_t)(cr - buf) - off;
        if (cr[1] != '\n') return dbx_error_setx(err, EINVAL, "bare CR in request head");
        r = first ? parse_request_line(buf, n, origin, ret, err)
                  : parse_header(buf, off, n, ret, err);
        if (r < 0) return r;
        first = false;
        off += n + 2;
    }
    for (size_t i = 0; i < ret->nheaders; i++) {
        r = check_header(buf, i, ret, &f, err);
        if (r < 0) return r;
    }
    r = check_framing(ret, &f, err);
    if (r < 0) return r;
    ret->head_len = (uint32_t)(end + 4);
    return 1;
}

int proxy_http_parse(const uint8_t *buf, size_t len, struct proxy_http_req *ret, dbx_error **err) {
    return http_parse(buf, len, false, ret, err);
}

int proxy_http_parse_origin(const uint8_t *buf, size_t len, struct proxy_http_req *ret,
                            dbx_error **err) {
    return http_parse(buf, len, true, ret, err);
}

/* ---- bodies ----------------------------------------------------------------------------- */

enum {
    CH_SIZE0,   /* first hex digit of a chunk size */
    CH_SIZE,    /* more digits, ';' or CR */
    CH_EXT,     /* chunk extension up to CR */
    CH_SIZE_LF, /* LF after the size line */
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER0, /* start of a trailer line, or CR of the final CRLF */
    CH_TRAILER,
    CH_TRAILER_LF,
    CH_END_LF,
};

void proxy_body_init(struct proxy_body *b, const struct proxy_http_req *r) {
    *b = (struct proxy_body){.kind = r->body};
    if (r->body == PROXY_BODY_LENGTH) b->left = r->content_length;
    b->done = r->body == PROXY_BODY_NONE || (r->body == PROXY_BODY_LENGTH && b->left == 0);
}

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = (uint8_t)tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One byte of chunked framing outside chunk data. */
static int chunk_byte(struct proxy_body *b, uint8_t c, dbx_error **err) {
    if (++b->line > CHUNK_LINE_MAX)
        return dbx_error_setx(err, EINVAL, "chunk size or trailer line too long");
    switch (b->state) {
    case CH_SIZE0:
    case CH_SIZE:
        if (hexval(c) >= 0) {
            if (b->line > 16) return dbx_error_setx(err, EINVAL, "chunk size too large");
            b->left = b->left * 16 + (uint64_t)hexval(c);
            b->state = CH_SIZE;
        } else if (b->state == CH_SIZE && c == ';') {
            b->state = CH_EXT;
        } else if (b->state == CH_SIZE && c == '\r') {
            b->state = CH_SIZE_LF;
        } else {
            return dbx_error_setx(err, EINVAL, "bad chunk size");
        }
        return 0;
    case CH_EXT:
        if (c == '\r')
            b->state = CH_SIZE_LF;
        else if ((c < 0x20 && c != '\t') || c == 0x7f)
            return dbx_error_setx(err, EINVAL, "control byte in chunk extension");
        return 0;
    case CH_SIZE_LF:
        if (c != '\n') return dbx_error_setx(err, EINVAL, "bare CR after chunk size");
        b->line = 0;
        b->state = b->left ? CH_DATA : CH_TRAILER0;
        return 0;
    case CH_DATA_CR:
        if (c != '\r') return dbx_error_setx(err, EINVAL, "chunk data longer than its size");
        b->state = CH_DATA_LF;
        return 0;
    case CH_DATA_LF:
        if (c != '\n') return dbx_error_setx(err, EINVAL, "bare CR after chunk data");
        b->line = 0;
        b->state = CH_SIZE0;
        return 0;
    case CH_TRAILER0:
        if (c == '\r') {
            b->state = CH_END_LF;
            return 0;
        }
        if (++b->trailers > TRAILERS_MAX) return dbx_error_setx(err, EINVAL, "too many trailers");
        if (!is_tchar(c)) return dbx_error_setx(err, EINVAL, "malformed trailer line");
        b->state = CH_TRAILER;
        return 0;
    case CH_TRAILER:
        if (c == '\r')
            b->state = CH_TRAILER_LF;
        else if ((c < 0x20 && c != '\t') || c == 0x7f)
            return dbx_error_setx(err, EINVAL, "control byte in trailer");
        return 0;
    case CH_TRAILER_LF:
        if (c != '\n') return dbx_error_setx(err, EINVAL, "bare CR in trailer");
        b->line = 0;
        b->state = CH_TRAILER0;
        return 0;
    case CH_END_LF:
        if (c != '\n') return dbx_error_setx(err, EINVAL, "bare CR at the end of the body");
        b->done = true;
        return 0;
    default:
        return dbx_error_setx(err, EINVAL, "bad chunked parser state");
    }
}

ssize_t proxy_body_scan(struct proxy_body *b, const uint8_t *buf, size_t len, dbx_error **err) {
    if (b->done) return 0;
    if (b->kind == PROXY_BODY_LENGTH) {
        size_t n = b->left < len ? (size_t)b->left : len;
        b->left -= n;
        b->done = b->left == 0;
        return (ssize_t)n;
    }
    if (b->kind != PROXY_BODY_CHUNKED) {
        b->done = true;
        return 0;
    }
    size_t i = 0;
    while (i < len && !b->done) {
        if (b->state == CH_DATA) {
            size_t n = b->left < len - i ? (size_t)b->left : len - i;
            i += n;
            b->left -= n;
            if (b->left == 0) b->state = CH_DATA_CR;
            continue;
        }
        int r = chunk_byte(b, buf[i++], err);
        if (r < 0) return r;
    }
    return (ssize_t)i;
}

/* common/protocol.c: frame codec shared by host and guest.  Pure byte manipulation: no I/O,
 * so the same code is fuzzed, unit-tested and linked into the static init. */
#define _GNU_SOURCE
#include "protocol.h"

#include <ctype.h>

void dbx_hdr_encode(uint8_t out[DBX_FRAME_HDR], uint8_t type, uint32_t session, uint32_t len) {
    out[0] = DBX_PROTO_VERSION;
    out[1] = type;
    dbx_put_le(out + 2, 0, 2);
    dbx_put_le(out + 4, session, 4);
    dbx_put_le(out + 8, len, 4);
}

void dbx_hdr_decode(const uint8_t in[DBX_FRAME_HDR], struct dbx_frame_hdr *ret) {
    ret->version = in[0];
    ret->type = in[1];
    ret->flags = (uint16_t)dbx_get_le(in + 2, 2);
    ret->session = (uint32_t)dbx_get_le(in + 4, 4);
    ret->len = (uint32_t)dbx_get_le(in + 8, 4);
}

static const char *const msg_names[DBX_MSG_MAX_] = {
    [DBX_MSG_HELLO] = "hello",
    [DBX_MSG_SETUP] = "setup",
    [DBX_MSG_READY] = "ready",
    [DBX_MSG_SHUTDOWN] = "shutdown",
    [DBX_MSG_PING] = "ping",
    [DBX_MSG_PONG] = "pong",
    [DBX_MSG_PROTECTED] = "protected",
    [DBX_MSG_CHANGED] = "changed",
    [DBX_MSG_CLOCK] = "clock",
    [DBX_MSG_EXEC] = "exec",
    [DBX_MSG_STARTED] = "started",
    [DBX_MSG_STDIN] = "stdin",
    [DBX_MSG_STDOUT] = "stdout",
    [DBX_MSG_STDERR] = "stderr",
    [DBX_MSG_CREDIT] = "credit",
    [DBX_MSG_RESIZE] = "resize",
    [DBX_MSG_SIGNAL] = "signal",
    [DBX_MSG_EXIT] = "exit",
    [DBX_MSG_ERROR] = "error",
    [DBX_MSG_STATUS] = "status",
    [DBX_MSG_STATUS_REPLY] = "status-reply",
    [DBX_MSG_STOP] = "stop",
    [DBX_MSG_SOCK_OPEN] = "sock-open",
    [DBX_MSG_SOCK_OK] = "sock-ok",
    [DBX_MSG_SOCK_DATA] = "sock-data",
    [DBX_MSG_SOCK_CLOSE] = "sock-close",
    [DBX_MSG_NOTICE] = "notice",
    [DBX_MSG_PS] = "ps",
    [DBX_MSG_PS_REPLY] = "ps-reply",
    [DBX_MSG_KILL] = "kill",
    [DBX_MSG_KILL_REPLY] = "kill-reply",
    [DBX_MSG_STATS] = "stats",
    [DBX_MSG_STATS_REPLY] = "stats-reply",
    [DBX_MSG_PORT_REQ] = "port-request",
    [DBX_MSG_PORT_REPLY] = "port-reply",
    [DBX_MSG_TIMING] = "timing",
};

const char *dbx_msg_name(uint8_t type) {
    if (type < DBX_MSG_MAX_ && msg_names[type]) return msg_names[type];
    return "unknown";
}

int dbx_hdr_check(const struct dbx_frame_hdr *h, dbx_error **err) {
    return dbx_hdr_check_exec(h, false, err);
}

int dbx_hdr_check_exec(const struct dbx_frame_hdr *h, bool takes_exec, dbx_error **err) {
    if (h->version != DBX_PROTO_VERSION)
        return dbx_error_set(err, EPROTO, "protocol version %u, expected %u", h->version,
                             DBX_PROTO_VERSION);
    if (h->type >= DBX_MSG_MAX_ || !msg_names[h->type])
        return dbx_error_set(err, EPROTO, "unknown frame type %u", h->type);
    uint32_t max = takes_exec && h->type == DBX_MSG_EXEC ? DBX_EXEC_MAX : DBX_FRAME_MAX;
    if (h->len > max)
        return dbx_error_set(err, EMSGSIZE, "%s frame of %u bytes exceeds the %u byte limit",
                             dbx_msg_name(h->type), h->len, max);
    return 0;
}

void dbx_frame_put(struct dbx_buf *out, uint8_t type, uint32_t session, const void *payload,
                   size_t len) {
    uint8_t h[DBX_FRAME_HDR];
    dbx_hdr_encode(h, type, session, (uint32_t)len);
    dbx_buf_put(out, h, sizeof(h));
    dbx_buf_put(out, payload, len);
}

/* ---- cursor ----------------------------------------------------------------------------- */

static int get_n(struct dbx_cursor *c, int n, uint64_t *v) {
    if (c->left < (size_t)n) return -EPROTO;
    *v = dbx_get_le(c->p, n);
    c->p += n;
    c->left -= (size_t)n;
    return 0;
}
int dbx_get_u8(struct dbx_cursor *c, uint8_t *v) {
    uint64_t x;
    if (get_n(c, 1, &x) < 0) return -EPROTO;
    *v = (uint8_t)x;
    return 0;
}
int dbx_get_u16(struct dbx_cursor *c, uint16_t *v) {
    uint64_t x;
    if (get_n(c, 2, &x) < 0) return -EPROTO;
    *v = (uint16_t)x;
    return 0;
}
int dbx_get_u32(struct dbx_cursor *c, uint32_t *v) {
    uint64_t x;
    if (get_n(c, 4, &x) < 0) return -EPROTO;
    *v = (uint32_t)x;
    return 0;
}
int dbx_get_u64(struct dbx_cursor *c, uint64_t *v) {
    return get_n(c, 8, v);
}

int dbx_get_str(struct dbx_cursor *c, size_t max, char **ret) {
    uint32_t n;
    if (dbx_get_u32(c, &n) < 0 || n > max || n > c->left) return -EPROTO;
    if (memchr(c->p, '\0', n)) return -EPROTO;
    *ret = dbx_xstrndup((const char *)c->p, n);
    c->p += n;
    c->left -= n;
    return 0;
}

/* ---- reader ----------------------------------------------------------------------------- */

void dbx_reader_feed(struct dbx_reader *r, const void *p, size_t n) {
    const uint8_t *b = p;
    if (r->skip > 0) { /* discard the rest of a rejected frame without buffering it */
        size_t k = r->skip < n ? (size_t)r->skip : n;
        r->skip -= k;
        b += k;
        n -= k;
    }
    dbx_buf_put(&r->in, b, n);
}

enum dbx_read_result dbx_reader_next(struct dbx_reader *r, struct dbx_frame_hdr *hdr,
                                     const uint8_t **payload, dbx_error **err) {
    /* Payload of the previous frame returned is released lazily here, so it stays valid
     * until the next call. */
    if (r->skip > 0) {
        size_t k = dbx_buf_avail(&r->in) < r->skip ? dbx_buf_avail(&r->in) : (size_t)r->skip;
        dbx_buf_consume(&r->in, k);
        r->skip -= k;
        if (r->skip > 0) return DBX_READ_NEED_MORE;
    }
    if (dbx_buf_avail(&r->in) == 0 && r->in.cap > 2 * DBX_FRAME_MAX)
        dbx_buf_free(&r->in); /* a large EXEC's room is not kept for the connection's life */
    if (dbx_buf_avail(&r->in) < DBX_FRAME_HDR) return DBX_READ_NEED_MORE;
    dbx_hdr_decode(dbx_buf_head(&r->in), hdr);
    if (dbx_hdr_check_exec(hdr, r->takes_exec, err) < 0) {
        dbx_buf_consume(&r->in, DBX_FRAME_HDR);
        r->skip = hdr->len;
        size_t k = dbx_buf_avail(&r->in) < r->skip ? dbx_buf_avail(&r->in) : (size_t)r->skip;
        dbx_buf_consume(&r->in, k);
        r->skip -= k;
        return DBX_READ_BAD;
    }
    if (dbx_buf_avail(&r->in) < DBX_FRAME_HDR + hdr->len) return DBX_READ_NEED_MORE;
    *payload = dbx_buf_head(&r->in) + DBX_FRAME_HDR;
    /* Mark consumed now; the bytes stay in place until the next feed/put can move them,
     * which only happens on the caller's next feed (after it is done with this payload). */
    r->in.off += DBX_FRAME_HDR + hdr->len;
    return DBX_READ_FRAME;
}

bool dbx_reader_take(struct dbx_reader *r, uint8_t type, uint32_t len, uint8_t *payload) {
    /* skip > 0: every byte buffered so far was fed before it and is whole frames or a part */
    size_t at = 0, avail = dbx_buf_avail(&r->in);
    if (avail < DBX_FRAME_HDR) return false; /* nothing fed yet: data may be NULL */
    uint8_t *head = r->in.data + r->in.off;
    while (avail - at >= DBX_FRAME_HDR) {
        struct dbx_frame_hdr h;
        _cleanup_error_ dbx_error *e = NULL;
        dbx_hdr_decode(head + at, &h);
        if (dbx_hdr_check_exec(&h, r->takes_exec, &e) < 0 || avail - at - DBX_FRAME_HDR < h.len)
            return false;
        size_t end = at + DBX_FRAME_HDR + h.len;
        if (h.type == type && h.session == 0 && h.len == len) {
            memcpy(payload, head + at + DBX_FRAME_HDR, len);
            memmove(head + at, head + end, avail - end);
            r->in.len -= end - at;
            return true;
        }
        at = end;
    }
    return false;
}

void dbx_reader_free(struct dbx_reader *r) {
    dbx_buf_free(&r->in);
    r->skip = 0;
}

/* ---- typed payloads --------------------------------------------------------------------- */

void dbx_exec_req_encode(const struct dbx_exec_req *req, struct dbx_buf *out) {
    dbx_buf_put_u32(out, req->flags);
    dbx_buf_put_u16(out, req->rows);
    dbx_buf_put_u16(out, req->cols);
    dbx_buf_put_u32(out, req->timeout_ms);
    dbx_buf_put_u32(out, req->umask);
    dbx_buf_put_str(out, req->user);
    dbx_buf_put_str(out, req->cwd);
    dbx_buf_put_u32(out, req->argc);
    for (uint32_t i = 0; i < req->argc; i++)
        dbx_buf_put_str(out, req->argv[i]);
    dbx_buf_put_u32(out, req->envc);
    for (uint32_t i = 0; i < req->envc; i++)
        dbx_buf_put_str(out, req->env[i]);
    dbx_buf_put_u32(out, req->terminfo_len);
    dbx_buf_put(out, req->terminfo, req->terminfo_len);
}

void dbx_exec_req_free(struct dbx_exec_req *req) {
    if (!req) return;
    free(req->user);
    free(req->cwd);
    for (uint32_t i = 0; req->argv && i < req->argc; i++)
        free(req->argv[i]);
    free(req->argv);
    for (uint32_t i = 0; req->env && i < req->envc; i++)
        free(req->env[i]);
    free(req->env);
    free(req->terminfo);
    *req = (struct dbx_exec_req){0};
}

int dbx_get_strv(struct dbx_cursor *c, uint32_t max, uint32_t *ret_n, char ***ret_v) {
    return dbx_get_strv_max(c, max, DBX_MAX_STR, ret_n, ret_v);
}

int dbx_get_strv_max(struct dbx_cursor *c, uint32_t max, size_t str_max, uint32_t *ret_n,
                     char ***ret_v) {
    uint32_t n;
    if (dbx_get_u32(c, &n) < 0 || n > max) return -EPROTO;
    /* each string needs at least 4 bytes; refuse counts the payload cannot hold */
    if ((uint64_t)n * 4 > c->left) return -EPROTO;
    char **v = dbx_xcalloc(n + 1, sizeof(char *));
    for (uint32_t i = 0; i < n; i++) {
        if (dbx_get_str(c, str_max, &v[i]) < 0) {
            for (uint32_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return -EPROTO;
        }
    }
    *ret_n = n;
    *ret_v = v;
    return 0;
}

int dbx_exec_req_decode(const uint8_t *p, size_t n, struct dbx_exec_req *ret, dbx_error **err) {
    struct dbx_cursor c = {p, n};
    struct dbx_exec_req r = {0};
    if (dbx_get_u32(&c, &r.flags) < 0 || dbx_get_u16(&c, &r.rows) < 0 ||
        dbx_get_u16(&c, &r.cols) < 0 || dbx_get_u32(&c, &r.timeout_ms) < 0 ||
        dbx_get_u32(&c, &r.umask) < 0 || dbx_get_str(&c, 256, &r.user) < 0 ||
        dbx_get_str(&c, 4096, &r.cwd) < 0 ||
        dbx_get_strv_max(&c, DBX_MAX_ARGS, DBX_ARG_STR_MAX, &r.argc, &r.argv) < 0 ||
        dbx_get_strv_max(&c, DBX_MAX_ENV, DBX_ARG_STR_MAX, &r.envc, &r.env) < 0 ||
        dbx_get_u32(&c, &r.terminfo_len) < 0 || r.terminfo_len > DBX_TERMINFO_MAX ||
        r.terminfo_len > c.left) {
        dbx_exec_req_free(&r);
        return dbx_error_set(err, EPROTO, "malformed exec request");
    }
    if (r.terminfo_len > 0) {
        r.terminfo = dbx_xmalloc(r.terminfo_len);
        memcpy(r.terminfo, c.p, r.terminfo_len);
        c.p += r.terminfo_len;
        c.left -= r.terminfo_len;
    }
    const char *why = NULL;
    if (c.left != 0)
        why = "trailing bytes";
    else if (r.flags & ~(uint32_t)(DBX_EXEC_TTY | DBX_EXEC_STDIN | DBX_EXEC_LOGIN | DBX_EXEC_ADMIN |
                                   DBX_EXEC_TIMING | DBX_EXEC_DETACH | DBX_EXEC_MERGED))
        why = "unknown flags";
    else if ((r.flags & DBX_EXEC_MERGED) && (r.flags & DBX_EXEC_TTY))
        why = "merged output with a terminal";
    else if (r.timeout_ms > DBX_EXEC_TIMEOUT_MAX)
        why = "timeout over 30 days";
    else if (r.umask > 0777)
        why = "umask over 0777";
    else if (r.terminfo_len > 0 && !(r.flags & DBX_EXEC_TTY))
        why = "terminfo without a terminal";
    else if (r.cwd[0] != '/')
        why = "working directory is not absolute";
    else if (r.argc == 0 && !(r.flags & DBX_EXEC_LOGIN))
        why = "empty command";
    else
        for (uint32_t i = 0; i < r.envc && !why; i++)
            if (!strchr(r.env[i], '=') || r.env[i][0] == '=') why = "environment entry without '='";
    if (why) {
        dbx_exec_req_free(&r);
        return dbx_error_set(err, EPROTO, "malformed exec request: %s", why);
    }
    *ret = r;
    return 0;
}

void dbx_setup_encode(const struct dbx_setup *s, struct dbx_buf *out) {
    dbx_buf_put_str(out, s->ws_tag);
    dbx_buf_put_str(out, s->ws_path);
    dbx_buf_put_u32(out, s->uid);
    dbx_buf_put_u32(out, s->gid);
    dbx_buf_put_str(out, s->hostname);
    dbx_buf_put_str(out, s->ca_pem ? s->ca_pem : "");
    dbx_buf_put_str(out, s->tz_name ? s->tz_name : "");
    dbx_buf_put_u32(out, s->tz_len);
    dbx_buf_put(out, s->tz_data, s->tz_len);
    dbx_shares_encode(out, s->nshares, s->shares);
    struct dbx_buf plan = {0};
    dbx_plan_encode(&s->plan, &plan);
    dbx_buf_put_u32(out, (uint32_t)plan.len);
    dbx_buf_put(out, plan.data, plan.len);
    dbx_buf_free(&plan);
}

void dbx_setup_free(struct dbx_setup *s) {
    if (!s) return;
    free(s->ws_tag);
    free(s->ws_path);
    free(s->hostname);
    free(s->ca_pem);
    free(s->tz_name);
    free(s->tz_data);
    dbx_shares_free(s->nshares, s->shares);
    dbx_plan_free(&s->plan);
    *s = (struct dbx_setup){0};
}

int dbx_setup_decode(const uint8_t *p, size_t n, struct dbx_setup *ret, dbx_error **err) {
    struct dbx_cursor c = {p, n};
    struct dbx_setup s = {0};
    uint32_t plen = 0;
    if (dbx_get_str(&c, 36, &s.ws_tag) < 0 || dbx_get_str(&c, 4096, &s.ws_path) < 0 ||
        dbx_get_u32(&c, &s.uid) < 0 || dbx_get_u32(&c, &s.gid) < 0 ||
        dbx_get_str(&c, 64, &s.hostname) < 0 || dbx_get_str(&c, DBX_MAX_CA_PEM, &s.ca_pem) < 0 ||
        dbx_get_str(&c, DBX_TZ_NAME_MAX, &s.tz_name) < 0 || dbx_get_u32(&c, &s.tz_len) < 0 ||
        s.tz_len > DBX_TZ_DATA_MAX || s.tz_len > c.left || s.ws_path[0] != '/') {
        dbx_setup_free(&s);
        return dbx_error_setx(err, EPROTO, "malformed setup message");
    }
    if (s.tz_len > 0) {
        s.tz_data = dbx_xmalloc(s.tz_len);
        memcpy(s.tz_data, c.p, s.tz_len);
        c.p += s.tz_len;
        c.left -= s.tz_len;
    }
    if (dbx_tz_check(s.tz_name, s.tz_data, s.tz_len, err) < 0) {
        dbx_setup_free(&s);
        dbx_error_wrap(err, "malformed setup message: time zone");
        return -EPROTO;
    }
    if (dbx_shares_decode(&c, s.ws_tag, s.ws_path, &s.nshares, &s.shares, err) < 0) {
        dbx_setup_free(&s);
        return -EPROTO;
    }
    if (dbx_get_u32(&c, &plen) < 0 || plen != c.left) {
        dbx_setup_free(&s);
        return dbx_error_setx(err, EPROTO, "malformed setup message");
    }
    if (dbx_ca_pem_check(s.ca_pem, err) < 0) {
        dbx_setup_free(&s);
        dbx_error_wrap(err, "malformed setup message: host CA certificates");
        return -EPROTO;
    }
    if (dbx_plan_decode(c.p, plen, &s.plan, err) < 0) {
        dbx_setup_free(&s);
        return -EPROTO;
    }
    *ret = s;
    return 0;
}

size_t dbx_enc_credit(uint8_t out[5], uint8_t stream, uint32_t bytes) {
    out[0] = stream;
    dbx_put_le(out + 1, bytes, 4);
    return 5;
}
int dbx_dec_credit(const uint8_t *p, size_t n, uint8_t *stream, uint32_t *bytes) {
    if (n != 5 || p[0] > DBX_STREAM_SOCK) return -EPROTO;
    *stream = p[0];
    *bytes = (uint32_t)dbx_get_le(p + 1, 4);
    return 0;
}
size_t dbx_enc_sock_open(uint8_t out[3], uint8_t kind, uint16_t port) {
    out[0] = kind;
    dbx_put_le(out + 1, port, 2);
    return 3;
}
int dbx_dec_sock_open(const uint8_t *p, size_t n, uint8_t *kind, uint16_t *port) {
    if (n != 3 || (p[0] != DBX_SOCK_PROXY && p[0] != DBX_SOCK_FORWARD)) return -EPROTO;
    uint16_t v = (uint16_t)dbx_get_le(p + 1, 2);
    if (v == 0) return -EPROTO;
    *kind = p[0];
    *port = v;
    return 0;
}

size_t dbx_enc_exit(uint8_t out[5], bool signaled, uint32_t value) {
    out[0] = signaled ? 1 : 0;
    dbx_put_le(out + 1, value, 4);
    return 5;
}
int dbx_dec_exit(const uint8_t *p, size_t n, bool *signaled, uint32_t *value) {
    if (n != 5 || p[0] > 1) return -EPROTO;
    *signaled = p[0] == 1;
    *value = (uint32_t)dbx_get_le(p + 1, 4);
    if (*signaled ? (*value == 0 || *value > 127) : *value > 255) return -EPROTO;
    return 0;
}
size_t dbx_enc_resize(uint8_t out[4], uint16_t rows, uint16_t cols) {
    dbx_put_le(out, rows, 2);
    dbx_put_le(out + 2, cols, 2);
    return 4;
}
int dbx_dec_resize(const uint8_t *p, size_t n, uint16_t *rows, uint16_t *cols) {
    if (n != 4) return -EPROTO;
    *rows = (uint16_t)dbx_get_le(p, 2);
    *cols = (uint16_t)dbx_get_le(p + 2, 2);
    return 0;
}
size_t dbx_enc_u32(uint8_t out[4], uint32_t v) {
    dbx_put_le(out, v, 4);
    return 4;
}
int dbx_dec_u32(const uint8_t *p, size_t n, uint32_t *v) {
    if (n != 4) return -EPROTO;
    *v = (uint32_t)dbx_get_le(p, 4);
    return 0;
}
size_t dbx_enc_u64(uint8_t out[8], uint64_t v) {
    dbx_put_le(out, v, 8);
    return 8;
}
int dbx_dec_u64(const uint8_t *p, size_t n, uint64_t *v) {
    if (n != 8) return -EPROTO;
    *v = dbx_get_le(p, 8);
    return 0;
}

size_t dbx_enc_clock(uint8_t out[DBX_CLOCK_ANSWER_LEN], uint64_t host_ns, bool answer,
                     uint64_t token) {
    dbx_put_le(out, host_ns, 8);
    if (!answer) return 8;
    dbx_put_le(out + 8, token, 8);
    return DBX_CLOCK_ANSWER_LEN;
}

int dbx_dec_clock(const uint8_t *p, size_t n, uint64_t *host_ns, bool *answer, uint64_t *token) {
    if (n != 8 && n != DBX_CLOCK_ANSWER_LEN) return -EPROTO;
    *host_ns = dbx_get_le(p, 8);
    if (*host_ns > (uint64_t)INT64_MAX) return -EPROTO;
    *answer = n == DBX_CLOCK_ANSWER_LEN;
    *token = *answer ? dbx_get_le(p + 8, 8) : 0;
    return 0;
}

void dbx_error_msg_encode(struct dbx_buf *out, uint32_t code, const char *msg) {
    dbx_buf_put_u32(out, code);
    size_t n = strlen(msg);
    if (n > 4096) n = 4096;
    dbx_buf_put_u32(out, (uint32_t)n);
    dbx_buf_put(out, msg, n);
}
int dbx_error_msg_decode(const uint8_t *p, size_t n, uint32_t *code, char **msg) {
    struct dbx_cursor c = {p, n};
    if (dbx_get_u32(&c, code) < 0 || dbx_get_str(&c, 4096, msg) < 0) return -EPROTO;
    if (c.left != 0) {
        free(*msg);
        *msg = NULL;
        return -EPROTO;
    }
    return 0;
}

void dbx_protected_encode(struct dbx_buf *out, uint64_t count, const char *first) {
    dbx_buf_put_u64(out, count);
    size_t n = strlen(first);
    if (n > DBX_PROTECTED_PATH_MAX) n = DBX_PROTECTED_PATH_MAX;
    dbx_buf_put_u32(out, (uint32_t)n);
    dbx_buf_put(out, first, n);
}
int dbx_protected_decode(const uint8_t *p, size_t n, uint64_t *count, char **first) {
    struct dbx_cursor c = {p, n};
    if (dbx_get_u64(&c, count) < 0 || dbx_get_str(&c, DBX_PROTECTED_PATH_MAX, first) < 0)
        return -EPROTO;
    if (c.left != 0) {
        free(*first);
        *first = NULL;
        return -EPROTO;
    }
    return 0;
}

void dbx_hello_encode(struct dbx_buf *out, const char *release) {
    dbx_buf_put_u32(out, DBX_PROTO_VERSION);
    dbx_buf_put_str(out, release);
}
int dbx_hello_decode(const uint8_t *p, size_t n, uint32_t *version, char **release) {
    struct dbx_cursor c = {p, n};
    if (dbx_get_u32(&c, version) < 0 || dbx_get_str(&c, 256, release) < 0) return -EPROTO;
    if (c.left != 0) {
        free(*release);
        *release = NULL;
        return -EPROTO;
    }
    return 0;
}

/* ---- CA certificates ------------------------------------------------------------------- */

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END "-----END CERTIFICATE-----"
#define PEM_MAX_LINE 76u    /* RFC 7468 writers use 64; 76 is MIME's */
#define PEM_MAX_LINES 1024u /* base64 lines per certificate: 48 KiB of DER */

static bool b64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* One base64 line of a block: 1..PEM_MAX_LINE characters, '=' only as 1 or 2 trailing pads,
 * and a padded line must be the block's last (*ended). */
static const char *b64_line_error(const char *l, size_t n, bool *ended) {
    if (n == 0) return "empty line";
    if (n > PEM_MAX_LINE) return "base64 line longer than 76 characters";
    size_t pad = 0;
    while (pad < n && pad < 3 && l[n - 1 - pad] == '=')
        pad++;
    if (pad > 2 || pad == n) return "not base64";
    for (size_t i = 0; i < n - pad; i++)
        if (!b64_char(l[i])) return "not base64";
    *ended = pad > 0;
    return NULL;
}

int dbx_ca_pem_check(const char *pem, dbx_error **err) {
    size_t total = strlen(pem), lineno = 0;
    if (total > DBX_MAX_CA_PEM)
        return dbx_error_setx(err, EINVAL, "%zu bytes, more than %u", total, DBX_MAX_CA_PEM);
    if (total > 0 && pem[total - 1] != '\n')
        return dbx_error_setx(err, EINVAL, "no newline at the end");
    enum { OUTSIDE, FIRST, INSIDE, PADDED } st = OUTSIDE;
    size_t nlines = 0;
    for (const char *l = pem; *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = (size_t)(nl - l);
        lineno++;
        const char *why = NULL;
        bool is_end = n == strlen(PEM_END) && memcmp(l, PEM_END, n) == 0;
        if (st == OUTSIDE) {
            if (n == strlen(PEM_BEGIN) && memcmp(l, PEM_BEGIN, n) == 0)
                st = FIRST, nlines = 0;
            else
                why = "expected '" PEM_BEGIN "'";
        } else if (is_end && st != FIRST) {
            st = OUTSIDE;
        } else if (is_end) {
            why = "certificate without base64 lines";
        } else if (st == PADDED) {
            why = "base64 after the padding";
        } else {
            bool ended = false;
            why = b64_line_error(l, n, &ended);
            if (!why && ++nlines > PEM_MAX_LINES) why = "more than 1024 base64 lines";
            st = ended ? PADDED : INSIDE;
        }
        if (why) return dbx_error_setx(err, EINVAL, "line %zu: %s", lineno, why);
        l = nl + 1;
    }
    if (st != OUTSIDE)
        return dbx_error_setx(err, EINVAL, "line %zu: '" PEM_END "' missing", lineno);
    return 0;
}

bool dbx_terminfo_check(const char *term, const uint8_t *data, size_t len) {
    size_t n = strlen(term);
    if (n == 0 || n > DBX_TERM_NAME_MAX || term[0] == '.') return false;
    for (const char *p = term; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._+-", *p)) return false;
    if (len == 0) return true;
    /* term(5): a little-endian short magic, 0432 (legacy) or 01036 (32-bit numbers) */
    return len >= 12 && len <= DBX_TERMINFO_MAX &&
           ((data[0] == 0x1a && data[1] == 0x01) || (data[0] == 0x1e && data[1] == 0x02));
}

int dbx_tz_check(const char *name, const uint8_t *data, size_t len, dbx_error **err) {
    size_t n = strlen(name);
    if (n > DBX_TZ_NAME_MAX)
        return dbx_error_setx(err, EINVAL, "name of %zu bytes, more than %u", n, DBX_TZ_NAME_MAX);
    if (n == 0 && len > 0) return dbx_error_setx(err, EINVAL, "zone data without a name");
    if (len > DBX_TZ_DATA_MAX)
        return dbx_error_setx(err, EINVAL, "zone data of %zu bytes, more than %u", len,
                              DBX_TZ_DATA_MAX);
    if (len > 0 && (len < 4 || memcmp(data, "TZif", 4) != 0))
        return dbx_error_setx(err, EINVAL, "zone data that is not a TZif file");
    for (const char *p = name; *p; p++) {
        bool path_char = isalnum((unsigned char)*p) || strchr("._+-/", *p);
        if (!path_char && !strchr(",:<>", *p))
            return dbx_error_setx(err, EINVAL, "name with a byte 0x%02x", (unsigned char)*p);
        if (!path_char && len > 0)
            return dbx_error_setx(err, EINVAL, "name '%s' with zone data is not a zone's path",
                                  name);
    }
    /* with data, the name is where the guest writes it under a directory of its own */
    for (const char *c = name; len > 0 && c;) {
        const char *slash = strchr(c, '/');
        size_t k = slash ? (size_t)(slash - c) : strlen(c);
        if (k == 0 || (k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.'))
            return dbx_error_setx(err, EINVAL, "name '%s' with zone data is not a zone's path",
                                  name);
        c = slash ? slash + 1 : NULL;
    }
    return 0;
}

int dbx_exit_code(bool signaled, uint32_t value) {
    return signaled ? 128 + (int)(value & 0x7f) : (int)(value & 0xff);
}

bool dbx_user_is_root(const char *user) {
    const char *colon = strchr(user, ':');
    size_t n = colon ? (size_t)(colon - user) : strlen(user);
    bool uid0 = (n == 1 && user[0] == '0') || (n == 4 && memcmp(user, "root", 4) == 0);
    return uid0 && (!colon || strcmp(colon + 1, "0") == 0 || strcmp(colon + 1, "root") == 0);
}

/* ---- issue 13: CHANGED (helper E) ---- */

bool dbx_changed_path_ok(const char *path) {
    size_t len = strlen(path);
    if (len == 0 || len > DBX_CHANGED_PATH_MAX || path[0] == '/') return false;
    for (const char *c = path; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += n;
        if (*c == '/' && *++c == '\0') return false; /* trailing '/': an empty component */
    }
    return true;
}

void dbx_changed_encode(struct dbx_buf *out, uint32_t n, const char *const *paths) {
    dbx_buf_put_u32(out, n);
    for (uint32_t i = 0; i < n; i++)
        dbx_buf_put_str(out, paths[i]);
}

int dbx_changed_decode(const uint8_t *p, size_t n, uint32_t *ret_n, char ***ret_paths,
                       dbx_error **err) {
    struct dbx_cursor c = {p, n};
    uint32_t count = 0;
    if (dbx_get_u32(&c, &count) < 0 || count > DBX_CHANGED_MAX_PATHS ||
        (uint64_t)count * 4 > c.left)
        return dbx_error_setx(err, EPROTO, "malformed changed message: bad count");
    char **v = dbx_xcalloc((size_t)count + 1, sizeof(char *));
    const char *why = NULL;
    for (uint32_t i = 0; i < count && !why; i++) {
        if (dbx_get_str(&c, DBX_CHANGED_PATH_MAX, &v[i]) < 0)
            why = "bad path string";
        else if (!dbx_changed_path_ok(v[i]))
            why = "path not workspace-relative";
    }
    if (!why && c.left != 0) why = "trailing bytes";
    if (why) {
        dbx_strv_free(v);
        return dbx_error_setx(err, EPROTO, "malformed changed message: %s", why);
    }
    *ret_n = count;
    *ret_paths = v;
    return 0;
}

/* ---- issue 13: processes (helper A) ---- */

size_t dbx_ps_entry_size(const struct dbx_ps_entry *e) {
    return 4 * 4 + 3 * 8 + 4 + strlen(e->user) + 4 + strlen(e->cmd) + 1;
}

void dbx_ps_entry_encode(struct dbx_buf *out, const struct dbx_ps_entry *e) {
    dbx_buf_put_u32(out, e->pid);
    dbx_buf_put_u32(out, e->ppid);
    dbx_buf_put_u32(out, e->uid);
    dbx_buf_put_u32(out, e->session);
    dbx_buf_put_u64(out, e->start_ms_ago);
    dbx_buf_put_u64(out, e->cpu_ms);
    dbx_buf_put_u64(out, e->rss_bytes);
    dbx_buf_put_str(out, e->user);
    dbx_buf_put_str(out, e->cmd);
    dbx_buf_put_u8(out, e->detached);
}

void dbx_ps_reply_begin(struct dbx_buf *out, uint64_t token, uint32_t n) {
    dbx_buf_put_u64(out, token);
    dbx_buf_put_u32(out, n);
}

void dbx_ps_reply_free(struct dbx_ps_reply *r) {
    if (!r) return;
    for (uint32_t i = 0; r->v && i < r->n; i++) {
        free(r->v[i].user);
        free(r->v[i].cmd);
    }
    free(r->v);
    *r = (struct dbx_ps_reply){0};
}

static int ps_entry_decode(struct dbx_cursor *c, struct dbx_ps_entry *e) {
    if (dbx_get_u32(c, &e->pid) < 0 || dbx_get_u32(c, &e->ppid) < 0 ||
        dbx_get_u32(c, &e->uid) < 0 || dbx_get_u32(c, &e->session) < 0 ||
        dbx_get_u64(c, &e->start_ms_ago) < 0 || dbx_get_u64(c, &e->cpu_ms) < 0 ||
        dbx_get_u64(c, &e->rss_bytes) < 0 || dbx_get_str(c, DBX_PS_USER_MAX, &e->user) < 0 ||
        dbx_get_str(c, DBX_PS_CMD_MAX, &e->cmd) < 0 || dbx_get_u8(c, &e->detached) < 0 ||
        e->detached > 1)
        return -EPROTO;
    return 0;
}

int dbx_ps_reply_decode(const uint8_t *p, size_t n, struct dbx_ps_reply *ret, dbx_error **err) {
    struct dbx_cursor c = {p, n};
    struct dbx_ps_reply r = {0};
    uint32_t count;
    /* an entry takes at least 49 bytes: refuse counts the payload cannot hold */
    if (dbx_get_u64(&c, &r.token) < 0 || dbx_get_u32(&c, &count) < 0 || count > DBX_PS_MAX ||
        (uint64_t)count * 49 > c.left)
        return dbx_error_set(err, EPROTO, "malformed process list");
    r.v = dbx_xcalloc(count ? count : 1, sizeof(*r.v));
    while (r.n < count) {
        uint32_t i = r.n++; /* counted first: a half-decoded entry is freed too */
        if (ps_entry_decode(&c, &r.v[i]) < 0) {
            dbx_ps_reply_free(&r);
            return dbx_error_set(err, EPROTO, "malformed process list: entry %u", i);
        }
    }
    if (c.left != 0) {
        dbx_ps_reply_free(&r);
        return dbx_error_set(err, EPROTO, "malformed process list: trailing bytes");
    }
    *ret = r;
    return 0;
}

size_t dbx_enc_kill(uint8_t out[16], uint64_t token, uint32_t pid, uint32_t signo) {
    dbx_enc_u64(out, token);
    dbx_enc_u32(out + 8, pid);
    dbx_enc_u32(out + 12, signo);
    return 16;
}

int dbx_dec_kill(const uint8_t *p, size_t n, uint64_t *token, uint32_t *pid, uint32_t *signo) {
    struct dbx_cursor c = {p, n};
    uint64_t t;
    uint32_t a, s;
    if (dbx_get_u64(&c, &t) < 0 || dbx_get_u32(&c, &a) < 0 || dbx_get_u32(&c, &s) < 0 ||
        c.left != 0 || s < 1 || s > 64)
        return -EPROTO;
    *token = t;
    *pid = a;
    *signo = s;
    return 0;
}

void dbx_kill_reply_encode(struct dbx_buf *out, uint64_t token, uint32_t status, const char *msg) {
    dbx_buf_put_u64(out, token);
    dbx_buf_put_u32(out, status);
    dbx_buf_put_str(out, msg);
}

int dbx_kill_reply_decode(const uint8_t *p, size_t n, uint64_t *token, uint32_t *status,
                          char **msg) {
    struct dbx_cursor c = {p, n};
    uint64_t t;
    uint32_t s;
    char *m = NULL;
    if (dbx_get_u64(&c, &t) < 0 || dbx_get_u32(&c, &s) < 0 ||
        dbx_get_str(&c, DBX_KILL_MSG_MAX, &m) < 0)
        return -EPROTO;
    if (c.left != 0) {
        free(m);
        return -EPROTO;
    }
    *token = t;
    *status = s;
    *msg = m;
    return 0;
}

/* ---- issue 13: NOTICE and STATS (helper B) ---------------------------------------------- */

size_t dbx_enc_notice(uint8_t out[DBX_NOTICE_LEN], const struct dbx_notice *n) {
    dbx_put_le(out, n->kind, 4);
    dbx_put_le(out + 4, n->limit, 8);
    dbx_put_le(out + 12, n->value, 8);
    return DBX_NOTICE_LEN;
}

int dbx_dec_notice(const uint8_t *p, size_t n, struct dbx_notice *ret) {
    if (n != DBX_NOTICE_LEN) return -EPROTO;
    struct dbx_notice v = {.kind = (uint32_t)dbx_get_le(p, 4),
                           .limit = dbx_get_le(p + 4, 8),
                           .value = dbx_get_le(p + 12, 8)};
    if (v.kind != DBX_NOTICE_OOM && v.kind != DBX_NOTICE_PIDS) return -EPROTO;
    *ret = v;
    return 0;
}

void dbx_stats_add(struct dbx_stats *st, const char *key, uint64_t value) {
    if (st->n >= DBX_STATS_MAX) return;
    st->v = dbx_xrealloc(st->v, (st->n + 1) * sizeof(*st->v));
    st->v[st->n++] = (struct dbx_stat){.key = dbx_xstrdup(key), .value = value};
}

bool dbx_stats_find(const struct dbx_stats *st, const char *key, uint64_t *ret) {
    for (uint32_t i = 0; i < st->n; i++)
        if (strcmp(st->v[i].key, key) == 0) {
            *ret = st->v[i].value;
            return true;
        }
    return false;
}

void dbx_stats_encode(const struct dbx_stats *st, struct dbx_buf *out) {
    dbx_buf_put_u64(out, st->token);
    dbx_buf_put_u32(out, st->n);
    for (uint32_t i = 0; i < st->n; i++) {
        dbx_buf_put_str(out, st->v[i].key);
        dbx_buf_put_u64(out, st->v[i].value);
    }
}

static bool stats_key_ok(const char *k) {
    size_t n = strlen(k);
    if (n == 0 || n > DBX_STATS_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
            return false;
    return true;
}

int dbx_stats_decode(const uint8_t *p, size_t n, struct dbx_stats *ret, dbx_error **err) {
    struct dbx_cursor c = {p, n};
    struct dbx_stats st = {0};
    uint32_t count;
    int r = -EPROTO;
    if (dbx_get_u64(&c, &st.token) < 0 || dbx_get_u32(&c, &count) < 0) {
        dbx_error_setx(err, EPROTO, "stats reply truncated");
        goto out;
    }
    if (count > DBX_STATS_MAX) {
        dbx_error_setx(err, EPROTO, "%u counters, more than %u", count, DBX_STATS_MAX);
        goto out;
    }
    st.v = dbx_xcalloc(count ? count : 1, sizeof(*st.v));
    for (uint32_t i = 0; i < count; i++) {
        char *key = NULL;
        uint64_t v;
        if (dbx_get_str(&c, DBX_STATS_KEY_MAX, &key) < 0 || dbx_get_u64(&c, &v) < 0) {
            free(key);
            dbx_error_setx(err, EPROTO, "stats reply: counter %u truncated", i);
            goto out;
        }
        uint64_t dup;
        bool repeated = dbx_stats_find(&st, key, &dup);
        st.v[st.n++] = (struct dbx_stat){.key = key, .value = v};
        if (!stats_key_ok(key) || repeated) {
            dbx_error_setx(err, EPROTO, "stats reply: counter %u: bad or repeated key", i);
            goto out;
        }
    }
    if (c.left != 0) {
        dbx_error_setx(err, EPROTO, "stats reply: %zu trailing bytes", c.left);
        goto out;
    }
    *ret = st;
    st = (struct dbx_stats){0};
    r = 0;
out:
    dbx_stats_clear(&st);
    return r;
}

void dbx_stats_clear(struct dbx_stats *st) {
    for (uint32_t i = 0; i < st->n; i++)
        free(st->v[i].key);
    free(st->v);
    *st = (struct dbx_stats){0};
}

/* ---- issue 13: extra shares (helper D2) ---- */

bool dbx_share_tag_ok(const char *tag) {
    size_t n = strlen(tag);
    if (n < 1 || n > DBX_SHARE_TAG_MAX) return false;
    for (const char *p = tag; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') return false;
    return true;
}

static bool path_normalized(const char *path) {
    if (path[0] != '/' || path[1] == '\0') return false;
    for (const char *p = path; *p;) {
        p++; /* past '/' */
        size_t k = strcspn(p, "/");
        if (k == 0 || (k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += k;
    }
    return true;
}

bool dbx_share_path_reserved(const char *path) {
    static const char *const sys[] = {"/proc", "/sys", "/dev",  "/etc",
                                      "/usr",  "/bin", "/sbin", "/run"};
    if (!strcmp(path, "/")) return true;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(sys); i++) {
        size_t k = strlen(sys[i]);
        if (!strncmp(path, sys[i], k) && (path[k] == '\0' || path[k] == '/')) return true;
    }
    /* /lib, /lib64, /libx32, ...: any first component that starts with "lib" */
    return strncmp(path, "/lib", 4) == 0;
}

/* a == b, or one lies below the other */
static bool paths_nest(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;
    if (strncmp(a, b, n) != 0) return false;
    return la == lb || (la < lb ? b[la] == '/' : a[lb] == '/');
}

void dbx_shares_encode(struct dbx_buf *out, uint32_t n, const struct dbx_share *v) {
    dbx_buf_put_u32(out, n);
    for (uint32_t i = 0; i < n; i++) {
        dbx_buf_put_str(out, v[i].tag);
        dbx_buf_put_str(out, v[i].path);
        dbx_buf_put_u8(out, v[i].readonly);
    }
}

void dbx_shares_free(uint32_t n, struct dbx_share *v) {
    for (uint32_t i = 0; v && i < n; i++) {
        free(v[i].tag);
        free(v[i].path);
    }
    free(v);
}

int dbx_shares_decode(struct dbx_cursor *c, const char *ws_tag, const char *ws_path,
                      uint32_t *ret_n, struct dbx_share **ret, dbx_error **err) {
    uint32_t n = 0;
    if (dbx_get_u32(c, &n) < 0 || n > DBX_SHARES_MAX)
        return dbx_error_setx(err, EPROTO, "malformed setup message: share count");
    struct dbx_share *v = n ? dbx_xcalloc(n, sizeof(*v)) : NULL;
    const char *why = NULL;
    uint32_t i = 0;
    for (; i < n && !why; i++) {
        if (dbx_get_str(c, DBX_SHARE_TAG_MAX, &v[i].tag) < 0 ||
            dbx_get_str(c, 4096, &v[i].path) < 0 || dbx_get_u8(c, &v[i].readonly) < 0)
            why = "truncated";
        else if (!dbx_share_tag_ok(v[i].tag) || !strcmp(v[i].tag, ws_tag))
            why = "bad tag";
        else if (!path_normalized(v[i].path) || dbx_share_path_reserved(v[i].path) ||
                 (ws_tag[0] && paths_nest(v[i].path, ws_path)))
            why = "bad path";
        else if (v[i].readonly > 1)
            why = "bad read-only flag";
        for (uint32_t j = 0; j < i && !why; j++)
            if (!strcmp(v[j].tag, v[i].tag) || paths_nest(v[j].path, v[i].path))
                why = "duplicate tag, or paths that nest";
    }
    if (why) {
        dbx_shares_free(n, v);
        return dbx_error_setx(err, EPROTO, "malformed setup message: share %u: %s", i - 1, why);
    }
    *ret_n = n;
    *ret = v;
    return 0;
}

/* ---- issue 12: TIMING ------------------------------------------------------------------- */

bool dbx_timing_key_ok(const char *key) {
    size_t n = strlen(key);
    if (n == 0 || n > DBX_TIMING_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!((key[i] >= 'a' && key[i] <= 'z') || (key[i] >= '0' && key[i] <= '9') ||
              key[i] == '_'))
            return false;
    return true;
}

bool dbx_timing_find(const struct dbx_timing *t, const char *key, uint64_t *ret) {
    for (uint32_t i = 0; i < t->n && i < DBX_TIMING_MAX; i++)
        if (strcmp(t->v[i].key, key) == 0) {
            if (ret) *ret = t->v[i].value;
            return true;
        }
    return false;
}

bool dbx_timing_add(struct dbx_timing *t, const char *key, uint64_t value) {
    if (t->n >= DBX_TIMING_MAX || !dbx_timing_key_ok(key) || dbx_timing_find(t, key, NULL))
        return false;
    struct dbx_timing_entry *e = &t->v[t->n++];
    memcpy(e->key, key, strlen(key) + 1);
    e->value = value;
    return true;
}

void dbx_timing_filter(const struct dbx_timing *in, const char *prefix, uint32_t room,
                       struct dbx_timing *out) {
    uint32_t cap = room < DBX_TIMING_MAX ? DBX_TIMING_MAX - room : 0;
    size_t pl = strlen(prefix);
    out->n = 0;
    for (uint32_t i = 0; i < in->n && i < DBX_TIMING_MAX && out->n < cap; i++)
        if (strncmp(in->v[i].key, prefix, pl) == 0)
            (void)dbx_timing_add(out, in->v[i].key, in->v[i].value);
}

void dbx_timing_encode(const struct dbx_timing *t, struct dbx_buf *out) {
    uint32_t n = t->n < DBX_TIMING_MAX ? t->n : DBX_TIMING_MAX;
    dbx_buf_put_u32(out, n);
    for (uint32_t i = 0; i < n; i++) {
        dbx_buf_put_str(out, t->v[i].key);
        dbx_buf_put_u64(out, t->v[i].value);
    }
}

int dbx_timing_decode(const uint8_t *p, size_t n, struct dbx_timing *ret, dbx_error **err) {
    struct dbx_cursor c = {p, n};
    uint32_t count;
    if (dbx_get_u32(&c, &count) < 0) return dbx_error_setx(err, EPROTO, "timing truncated");
    if (count > DBX_TIMING_MAX)
        return dbx_error_setx(err, EPROTO, "timing: %u phases, more than %u", count,
                              DBX_TIMING_MAX);
    struct dbx_timing t = {0};
    for (uint32_t i = 0; i < count; i++) {
        _cleanup_free_ char *key = NULL;
        uint64_t v;
        if (dbx_get_str(&c, DBX_TIMING_KEY_MAX, &key) < 0 || dbx_get_u64(&c, &v) < 0)
            return dbx_error_setx(err, EPROTO, "timing: phase %u truncated", i);
        if (!dbx_timing_add(&t, key, v))
            return dbx_error_setx(err, EPROTO, "timing: phase %u: bad or repeated key", i);
    }
    if (c.left != 0) return dbx_error_setx(err, EPROTO, "timing: %zu trailing bytes", c.left);
    *ret = t;
    return 0;
}

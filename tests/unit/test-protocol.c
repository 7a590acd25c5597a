/* tests/unit/test-protocol.c: the wire protocol codec (common/protocol.c, common/plan.c) and the
 * common helpers it relies on (common/common.c): header, incremental reader, typed payloads,
 * checked parsers, atomic file writes and error values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>

#include "common/common.h"
#include "common/plan.h"
#include "common/protocol.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static void frame(struct dbx_buf *out, uint8_t type, uint32_t session, const void *p, size_t n) {
    dbx_frame_put(out, type, session, p, n);
}

/* A raw header with every field under our control (dbx_hdr_encode always writes DBX_PROTO_VERSION).
 */
static void raw_hdr(struct dbx_buf *out, uint8_t version, uint8_t type, uint32_t session,
                    uint32_t len) {
    dbx_buf_put_u8(out, version);
    dbx_buf_put_u8(out, type);
    dbx_buf_put_u16(out, 0);
    dbx_buf_put_u32(out, session);
    dbx_buf_put_u32(out, len);
}

struct event {
    int result;
    uint8_t type;
    uint32_t session;
    uint32_t len;
    uint8_t *payload; /* copy */
    int err_code;
};

struct events {
    struct event ev[64];
    size_t n;
};

static void events_free(struct events *e) {
    for (size_t i = 0; i < e->n; i++)
        free(e->ev[i].payload);
    e->n = 0;
}

/* Drain the reader into *e until it needs more input. */
static void drain(struct dbx_reader *r, struct events *e) {
    for (;;) {
        struct dbx_frame_hdr h = {0};
        const uint8_t *p = NULL;
        dbx_error *err = NULL;
        enum dbx_read_result res = dbx_reader_next(r, &h, &p, &err);
        if (res == DBX_READ_NEED_MORE) {
            assert_null(err);
            return;
        }
        assert_true(e->n < DBX_ARRAY_SIZE(e->ev));
        struct event *ev = &e->ev[e->n++];
        *ev = (struct event){.result = res, .type = h.type, .session = h.session, .len = h.len};
        if (res == DBX_READ_FRAME) {
            assert_null(err);
            assert_non_null(p);
            ev->payload = dbx_xmalloc(h.len);
            if (h.len) memcpy(ev->payload, p, h.len);
        } else {
            assert_int_equal(res, DBX_READ_BAD);
            assert_non_null(err);
            assert_non_null(err->msg);
            ev->err_code = err->code;
            dbx_error_free(&err);
        }
    }
}

static void feed_chunked(struct dbx_reader *r, struct events *e, const uint8_t *p, size_t n,
                         size_t chunk) {
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        dbx_reader_feed(r, p + off, k);
        drain(r, e);
    }
}

static void assert_event_frame(const struct event *ev, uint8_t type, uint32_t session,
                               const void *payload, size_t len) {
    assert_int_equal(ev->result, DBX_READ_FRAME);
    assert_int_equal(ev->type, type);
    assert_int_equal(ev->session, session);
    assert_int_equal(ev->len, len);
    if (len) assert_memory_equal(ev->payload, payload, len);
}

/* ---- header ----------------------------------------------------------------------------- */

static void test_hdr_roundtrip(void **state) {
    uint8_t b[DBX_FRAME_HDR];
    dbx_hdr_encode(b, DBX_MSG_EXEC, 0xdeadbeefu, 0x00012345u);
    static const uint8_t want[DBX_FRAME_HDR] = {
        DBX_PROTO_VERSION, 10, 0, 0, 0xef, 0xbe, 0xad, 0xde, 0x45, 0x23, 0x01, 0x00};
    assert_memory_equal(b, want, sizeof(want));

    struct dbx_frame_hdr h;
    dbx_hdr_decode(b, &h);
    assert_int_equal(h.version, DBX_PROTO_VERSION);
    assert_int_equal(h.type, DBX_MSG_EXEC);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.session, 0xdeadbeefu);
    assert_int_equal(h.len, 0x12345u);

    dbx_error *err = NULL;
    assert_int_equal(dbx_hdr_check(&h, &err), 0);
    assert_null(err);

    /* every field little-endian, including flags */
    static const uint8_t raw[DBX_FRAME_HDR] = {
        DBX_PROTO_VERSION, 13, 0x34, 0x12, 1, 0, 0, 0, 0, 0, 4, 0};
    dbx_hdr_decode(raw, &h);
    assert_int_equal(h.type, DBX_MSG_STDOUT);
    assert_int_equal(h.flags, 0x1234);
    assert_int_equal(h.session, 1);
    assert_int_equal(h.len, DBX_FRAME_MAX);
    assert_int_equal(dbx_hdr_check(&h, &err), 0);
    assert_null(err);
}

static void test_hdr_check_rejects(void **state) {
    struct dbx_frame_hdr good = {.version = DBX_PROTO_VERSION, .type = DBX_MSG_STDIN, .len = 0};
    dbx_error *err = NULL;

    static const uint8_t bad_versions[] = {0, DBX_PROTO_VERSION + 1, 255};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad_versions); i++) {
        struct dbx_frame_hdr h = good;
        h.version = bad_versions[i];
        assert_int_equal(dbx_hdr_check(&h, &err), -EPROTO);
        assert_non_null(err);
        assert_int_equal(err->code, EPROTO);
        assert_non_null(strstr(err->msg, "version"));
        dbx_error_free(&err);
    }

    static const uint8_t bad_types[] = {0, 29, 37, 40, DBX_MSG_MAX_, 100, 255};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad_types); i++) {
        struct dbx_frame_hdr h = good;
        h.type = bad_types[i];
        assert_int_equal(dbx_hdr_check(&h, &err), -EPROTO);
        assert_non_null(err);
        dbx_error_free(&err);
    }

    static const uint8_t good_types[] = {
        DBX_MSG_HELLO,      DBX_MSG_SETUP,        DBX_MSG_READY,      DBX_MSG_SHUTDOWN,
        DBX_MSG_PING,       DBX_MSG_PONG,         DBX_MSG_EXEC,       DBX_MSG_STARTED,
        DBX_MSG_STDIN,      DBX_MSG_STDOUT,       DBX_MSG_STDERR,     DBX_MSG_CREDIT,
        DBX_MSG_RESIZE,     DBX_MSG_SIGNAL,       DBX_MSG_EXIT,       DBX_MSG_ERROR,
        DBX_MSG_STATUS,     DBX_MSG_STATUS_REPLY, DBX_MSG_STOP,       DBX_MSG_SOCK_OPEN,
        DBX_MSG_SOCK_OK,    DBX_MSG_SOCK_DATA,    DBX_MSG_SOCK_CLOSE, DBX_MSG_PORT_REQ,
        DBX_MSG_PORT_REPLY, DBX_MSG_PROTECTED,    DBX_MSG_TIMING,     DBX_MSG_CLOCK};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(good_types); i++) {
        struct dbx_frame_hdr h = good;
        h.type = good_types[i];
        assert_int_equal(dbx_hdr_check(&h, &err), 0);
        assert_null(err);
        assert_string_not_equal(dbx_msg_name(good_types[i]), "unknown");
    }
    assert_string_equal(dbx_msg_name(0), "unknown");
    assert_string_equal(dbx_msg_name(255), "unknown");
    assert_string_equal(dbx_msg_name(DBX_MSG_EXEC), "exec");
    assert_string_equal(dbx_msg_name(DBX_MSG_SOCK_DATA), "sock-data");
    /* the numbers are the contract with the other side */
    assert_int_equal(DBX_MSG_SOCK_OPEN, 20);
    assert_int_equal(DBX_MSG_SOCK_CLOSE, 23);
    assert_int_equal(DBX_MSG_PORT_REQ, 33);
    assert_int_equal(DBX_MSG_PORT_REPLY, 34);
    assert_int_equal(DBX_STREAM_SOCK, 3);

    struct dbx_frame_hdr h = good;
    h.len = DBX_FRAME_MAX;
    assert_int_equal(dbx_hdr_check(&h, &err), 0);
    h.len = DBX_FRAME_MAX + 1;
    assert_int_equal(dbx_hdr_check(&h, &err), -EMSGSIZE);
    assert_non_null(err);
    assert_int_equal(err->code, EMSGSIZE);
    dbx_error_free(&err);
    h.len = UINT32_MAX;
    assert_int_equal(dbx_hdr_check(&h, &err), -EMSGSIZE);
    dbx_error_free(&err);

    /* err may be NULL */
    h.len = UINT32_MAX;
    assert_int_equal(dbx_hdr_check(&h, NULL), -EMSGSIZE);

    /* an EXEC may be up to DBX_EXEC_MAX where the reader takes them, and only an EXEC */
    h.type = DBX_MSG_EXEC;
    h.len = DBX_FRAME_MAX + 1;
    assert_int_equal(dbx_hdr_check(&h, NULL), -EMSGSIZE);
    assert_int_equal(dbx_hdr_check_exec(&h, false, NULL), -EMSGSIZE);
    assert_int_equal(dbx_hdr_check_exec(&h, true, NULL), 0);
    h.len = DBX_EXEC_MAX;
    assert_int_equal(dbx_hdr_check_exec(&h, true, NULL), 0);
    h.len = DBX_EXEC_MAX + 1;
    assert_int_equal(dbx_hdr_check_exec(&h, true, NULL), -EMSGSIZE);
    h.type = DBX_MSG_STDOUT;
    h.len = DBX_FRAME_MAX + 1;
    assert_int_equal(dbx_hdr_check_exec(&h, true, NULL), -EMSGSIZE);
}

/* ---- reader ----------------------------------------------------------------------------- */

/* hello on session 0, stdout with data, an empty stdin (EOF), an exec on a large session id. */
static void build_stream(struct dbx_buf *s, struct dbx_buf *exec_payload) {
    struct dbx_buf hello = {0};
    dbx_hello_encode(&hello, "6.1.0-28-cloud-amd64");
    frame(s, DBX_MSG_HELLO, 0, hello.data, hello.len);
    dbx_buf_free(&hello);

    uint8_t data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
    frame(s, DBX_MSG_STDOUT, 7, data, sizeof(data));
    frame(s, DBX_MSG_STDIN, 7, NULL, 0);

    char *argv[] = {"echo", "hi", NULL};
    struct dbx_exec_req req = {.cwd = "/", .user = "", .argc = 2, .argv = argv};
    dbx_exec_req_encode(&req, exec_payload);
    frame(s, DBX_MSG_EXEC, 0xfffffffeu, exec_payload->data, exec_payload->len);
}

static void check_stream_events(struct events *e, const struct dbx_buf *exec_payload) {
    assert_int_equal(e->n, 4);
    assert_int_equal(e->ev[0].result, DBX_READ_FRAME);
    assert_int_equal(e->ev[0].type, DBX_MSG_HELLO);
    uint32_t v = 0;
    char *rel = NULL;
    assert_int_equal(dbx_hello_decode(e->ev[0].payload, e->ev[0].len, &v, &rel), 0);
    assert_int_equal(v, DBX_PROTO_VERSION);
    assert_string_equal(rel, "6.1.0-28-cloud-amd64");
    free(rel);

    uint8_t data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
    assert_event_frame(&e->ev[1], DBX_MSG_STDOUT, 7, data, sizeof(data));
    assert_event_frame(&e->ev[2], DBX_MSG_STDIN, 7, NULL, 0);
    assert_event_frame(&e->ev[3], DBX_MSG_EXEC, 0xfffffffeu, exec_payload->data, exec_payload->len);
}

/* dbx_reader_take: the CLOCK answer behind an EXEC and its STDIN comes out first, and the
 * others follow in order; a frame of another length or session, a bad header or an incomplete
 * frame stops or skips as documented. */
static void test_reader_take(void **state) {
    struct dbx_buf s = {0}, ep = {0};
    build_stream(&s, &ep);
    uint8_t b[DBX_CLOCK_ANSWER_LEN], got[DBX_CLOCK_ANSWER_LEN];
    frame(&s, DBX_MSG_CLOCK, 0, b, dbx_enc_clock(b, 42, false, 0)); /* 8 bytes: not it */
    frame(&s, DBX_MSG_CLOCK, 3, b, dbx_enc_clock(b, 43, true, 7));  /* session 3: not it */
    frame(&s, DBX_MSG_CLOCK, 0, b, dbx_enc_clock(b, 44, true, 9));  /* this one */
    frame(&s, DBX_MSG_CLOCK, 0, b, dbx_enc_clock(b, 45, true, 10)); /* a second: stays */
    struct dbx_reader r = {0};
    /* all but the last byte of the answer: not whole yet */
    size_t cut = s.len - DBX_FRAME_HDR - DBX_CLOCK_ANSWER_LEN - 1;
    dbx_reader_feed(&r, s.data, cut);
    assert_false(dbx_reader_take(&r, DBX_MSG_CLOCK, DBX_CLOCK_ANSWER_LEN, got));
    dbx_reader_feed(&r, s.data + cut, s.len - cut);
    assert_true(dbx_reader_take(&r, DBX_MSG_CLOCK, DBX_CLOCK_ANSWER_LEN, got));
    uint64_t ns, tok;
    bool answer;
    assert_int_equal(dbx_dec_clock(got, sizeof(got), &ns, &answer, &tok), 0);
    assert_true(answer);
    assert_int_equal(ns, 44);
    assert_int_equal(tok, 9);
    struct events e = {0};
    drain(&r, &e);
    assert_int_equal(e.n, 7);
    e.n = 4; /* the stream before, in order */
    check_stream_events(&e, &ep);
    e.n = 7;
    assert_int_equal(e.ev[4].len, 8);
    assert_int_equal(e.ev[5].session, 3);
    assert_int_equal(e.ev[6].len, DBX_CLOCK_ANSWER_LEN);
    assert_int_equal(dbx_dec_clock(e.ev[6].payload, e.ev[6].len, &ns, &answer, &tok), 0);
    assert_int_equal(ns, 45);
    events_free(&e);
    /* a bad header before an answer: the search stops there (next() reports it) */
    struct dbx_buf t = {0};
    uint8_t bad[DBX_FRAME_HDR] = {DBX_PROTO_VERSION, 0xee};
    dbx_buf_put(&t, bad, sizeof(bad));
    frame(&t, DBX_MSG_CLOCK, 0, b, dbx_enc_clock(b, 46, true, 11));
    dbx_reader_feed(&r, t.data, t.len);
    assert_false(dbx_reader_take(&r, DBX_MSG_CLOCK, DBX_CLOCK_ANSWER_LEN, got));
    dbx_reader_free(&r);
    dbx_buf_free(&t);
    dbx_buf_free(&s);
    dbx_buf_free(&ep);
}

/* CLOCK: 8 bytes from the host, 16 with an answer's token; the clock fits an int64. */
static void test_clock_codec(void **state) {
    uint8_t b[DBX_CLOCK_ANSWER_LEN];
    uint64_t ns, tok;
    bool answer;
    assert_int_equal(dbx_enc_clock(b, 123, false, 99), 8);
    assert_int_equal(dbx_dec_clock(b, 8, &ns, &answer, &tok), 0);
    assert_int_equal(ns, 123);
    assert_false(answer);
    assert_int_equal(tok, 0);
    assert_int_equal(dbx_enc_clock(b, 124, true, 0x0102030405060708ull), 16);
    assert_int_equal(dbx_dec_clock(b, 16, &ns, &answer, &tok), 0);
    assert_int_equal(ns, 124);
    assert_true(answer);
    assert_int_equal(tok, 0x0102030405060708ull);
    for (size_t n = 0; n < sizeof(b); n++)
        if (n != 8) assert_int_equal(dbx_dec_clock(b, n, &ns, &answer, &tok), -EPROTO);
    dbx_enc_clock(b, (uint64_t)INT64_MAX + 1, false, 0);
    assert_int_equal(dbx_dec_clock(b, 8, &ns, &answer, &tok), -EPROTO);
}

static void test_reader_byte_by_byte(void **state) {
    struct dbx_buf s = {0}, ep = {0};
    build_stream(&s, &ep);
    struct dbx_reader r = {0};
    struct events e = {0};
    /* nothing complete until the very last byte of each frame */
    struct dbx_frame_hdr h;
    const uint8_t *p;
    dbx_error *err = NULL;
    assert_int_equal(dbx_reader_next(&r, &h, &p, &err), DBX_READ_NEED_MORE);
    feed_chunked(&r, &e, s.data, s.len, 1);
    check_stream_events(&e, &ep);
    assert_int_equal(dbx_reader_next(&r, &h, &p, &err), DBX_READ_NEED_MORE);
    assert_null(err);
    events_free(&e);
    dbx_reader_free(&r);
    dbx_buf_free(&s);
    dbx_buf_free(&ep);
}

static void test_reader_one_feed(void **state) {
    struct dbx_buf s = {0}, ep = {0};
    build_stream(&s, &ep);
    struct dbx_reader r = {0};
    struct events e = {0};
    dbx_reader_feed(&r, s.data, s.len);
    drain(&r, &e);
    check_stream_events(&e, &ep);
    events_free(&e);

    /* the same reader keeps working: feed the stream twice more in odd chunk sizes */
    static const size_t chunks[] = {2, 3, 5, 11, 12, 13, 64, 301, 4096};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(chunks); i++) {
        feed_chunked(&r, &e, s.data, s.len, chunks[i]);
        check_stream_events(&e, &ep);
        events_free(&e);
    }
    dbx_reader_free(&r);
    dbx_buf_free(&s);
    dbx_buf_free(&ep);
}

/* An oversized frame is skipped by its length; the good frame after it still parses. */
static void oversized_then_good(size_t chunk) {
    struct dbx_buf s = {0};
    const uint32_t big = DBX_FRAME_MAX + 1;
    raw_hdr(&s, DBX_PROTO_VERSION, DBX_MSG_STDOUT, 42, big);
    uint8_t *junk = dbx_xmalloc(big);
    /* junk that looks like valid frame headers, to catch a reader that resyncs inside it */
    for (uint32_t i = 0; i < big; i++)
        junk[i] = (i % 12 == 0) ? 1 : (i % 12 == 1 ? 13 : 0);
    dbx_buf_put(&s, junk, big);
    free(junk);
    static const char good[] = "after the storm";
    frame(&s, DBX_MSG_STDERR, 43, good, sizeof(good) - 1);

    struct dbx_reader r = {0};
    struct events e = {0};
    feed_chunked(&r, &e, s.data, s.len, chunk);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.ev[0].result, DBX_READ_BAD);
    assert_int_equal(e.ev[0].session, 42);
    assert_int_equal(e.ev[0].type, DBX_MSG_STDOUT);
    assert_int_equal(e.ev[0].err_code, EMSGSIZE);
    assert_event_frame(&e.ev[1], DBX_MSG_STDERR, 43, good, sizeof(good) - 1);
    events_free(&e);
    /* the reader must not have buffered the skipped payload */
    assert_true(dbx_buf_avail(&r.in) == 0);
    dbx_reader_free(&r);
    dbx_buf_free(&s);
}

static void test_reader_oversized_skipped(void **state) {
    oversized_then_good(SIZE_MAX / 2); /* one feed */
    oversized_then_good(1);            /* byte by byte */
    oversized_then_good(7);
    oversized_then_good(DBX_FRAME_HDR);
    oversized_then_good(65536);
}

static void test_reader_bad_version_and_type(void **state) {
    struct dbx_buf s = {0};
    raw_hdr(&s, DBX_PROTO_VERSION + 1, DBX_MSG_STDOUT, 5, 3);
    dbx_buf_put(&s, "abc", 3);
    raw_hdr(&s, DBX_PROTO_VERSION, 99, 6, 4);
    dbx_buf_put(&s, "defg", 4);
    raw_hdr(&s, DBX_PROTO_VERSION, 0, 8, 0);
    frame(&s, DBX_MSG_STDOUT, 9, "ok", 2);

    static const size_t chunks[] = {1, 3, 16, 1000};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(chunks); i++) {
        struct dbx_reader r = {0};
        struct events e = {0};
        feed_chunked(&r, &e, s.data, s.len, chunks[i]);
        assert_int_equal(e.n, 4);
        assert_int_equal(e.ev[0].result, DBX_READ_BAD);
        assert_int_equal(e.ev[0].session, 5);
        assert_int_equal(e.ev[0].err_code, EPROTO);
        assert_int_equal(e.ev[1].result, DBX_READ_BAD);
        assert_int_equal(e.ev[1].session, 6);
        assert_int_equal(e.ev[2].result, DBX_READ_BAD);
        assert_int_equal(e.ev[2].session, 8);
        assert_event_frame(&e.ev[3], DBX_MSG_STDOUT, 9, "ok", 2);
        events_free(&e);
        dbx_reader_free(&r);
    }
    dbx_buf_free(&s);
}

/* A payload of exactly DBX_FRAME_MAX bytes is a frame, not an error. */
static void test_reader_max_frame(void **state) {
    struct dbx_buf s = {0};
    uint8_t *data = dbx_xmalloc(DBX_FRAME_MAX);
    for (uint32_t i = 0; i < DBX_FRAME_MAX; i++)
        data[i] = (uint8_t)(i * 7);
    frame(&s, DBX_MSG_STDIN, 1, data, DBX_FRAME_MAX);
    frame(&s, DBX_MSG_STDIN, 1, NULL, 0);
    struct dbx_reader r = {0};
    struct events e = {0};
    feed_chunked(&r, &e, s.data, s.len, 4093);
    assert_int_equal(e.n, 2);
    assert_event_frame(&e.ev[0], DBX_MSG_STDIN, 1, data, DBX_FRAME_MAX);
    assert_event_frame(&e.ev[1], DBX_MSG_STDIN, 1, NULL, 0);
    events_free(&e);
    dbx_reader_free(&r);
    dbx_buf_free(&s);
    free(data);
}

/* An EXEC over DBX_FRAME_MAX: a frame to a reader that takes EXEC (the supervisor's from its
 * clients, the init's), skipped by any other (the supervisor's from the guest). */
static void test_reader_big_exec(void **state) {
    const uint32_t len = DBX_EXEC_MAX;
    uint8_t *data = dbx_xmalloc(len);
    for (uint32_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 13);
    struct dbx_buf s = {0};
    frame(&s, DBX_MSG_EXEC, 7, data, len);
    frame(&s, DBX_MSG_STDIN, 7, "x", 1);
    for (int takes = 0; takes <= 1; takes++) {
        struct dbx_reader r = {.takes_exec = takes};
        struct events e = {0};
        feed_chunked(&r, &e, s.data, s.len, 65536);
        assert_int_equal(e.n, 2);
        if (takes) {
            assert_event_frame(&e.ev[0], DBX_MSG_EXEC, 7, data, len);
        } else {
            assert_int_equal(e.ev[0].result, DBX_READ_BAD);
            assert_int_equal(e.ev[0].err_code, EMSGSIZE);
        }
        assert_event_frame(&e.ev[1], DBX_MSG_STDIN, 7, "x", 1);
        /* drained: the room the large frame took is not kept for the connection's life */
        assert_true(r.in.cap <= 2 * DBX_FRAME_MAX);
        events_free(&e);
        dbx_reader_free(&r);
    }
    dbx_buf_free(&s);
    free(data);
}

/* ---- exec request ----------------------------------------------------------------------- */

static void test_exec_roundtrip(void **state) {
    char *argv[] = {"sh", "-c", "printf '%s\\n' \"$A\"", "", "\xff\x01 utf8 \xc3\xa9", NULL};
    char *env[] = {"A=1", "PATH=/usr/bin:/bin", "EMPTY=", "X==y", NULL};
    struct dbx_exec_req req = {
        .flags = DBX_EXEC_TTY | DBX_EXEC_STDIN,
        .rows = 24,
        .cols = 80,
        .timeout_ms = 90000,
        .umask = 027,
        .terminfo_len = 3,
        .terminfo = (uint8_t *)"\x1e\x02\x00",
        .user = "1000:1000",
        .cwd = "/home/dev/project/sub dir",
        .argc = 5,
        .argv = argv,
        .envc = 4,
        .env = env,
    };
    struct dbx_buf b = {0};
    dbx_exec_req_encode(&req, &b);

    struct dbx_exec_req got = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_exec_req_decode(b.data, b.len, &got, &err), 0);
    assert_null(err);
    assert_int_equal(got.flags, req.flags);
    assert_int_equal(got.rows, 24);
    assert_int_equal(got.cols, 80);
    assert_int_equal(got.timeout_ms, 90000);
    assert_int_equal(got.umask, 027);
    assert_int_equal(got.terminfo_len, 3);
    assert_memory_equal(got.terminfo, "\x1e\x02\x00", 3);
    assert_string_equal(got.user, "1000:1000");
    assert_string_equal(got.cwd, "/home/dev/project/sub dir");
    assert_int_equal(got.argc, 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(got.argv[i], argv[i]);
    assert_null(got.argv[5]);
    assert_int_equal(got.envc, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(got.env[i], env[i]);
    assert_null(got.env[4]);

    /* re-encoding the decoded request gives the same bytes */
    struct dbx_buf b2 = {0};
    dbx_exec_req_encode(&got, &b2);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    dbx_exec_req_free(&got);
    dbx_exec_req_free(&got); /* idempotent on a freed (zeroed) request */
    dbx_exec_req_free(NULL);
    dbx_buf_free(&b);
    dbx_buf_free(&b2);

    /* login shell: no argv, LOGIN flag, no env; default user "" */
    struct dbx_exec_req login = {.flags = DBX_EXEC_LOGIN | DBX_EXEC_TTY, .user = "", .cwd = "/"};
    dbx_exec_req_encode(&login, &b);
    assert_int_equal(dbx_exec_req_decode(b.data, b.len, &got, &err), 0);
    assert_int_equal(got.argc, 0);
    assert_non_null(got.argv);
    assert_null(got.argv[0]);
    assert_int_equal(got.envc, 0);
    assert_non_null(got.env);
    assert_null(got.env[0]);
    assert_string_equal(got.user, "");
    dbx_exec_req_free(&got);
    dbx_buf_free(&b);
}

/* Hand-built exec payloads, to express what the encoder never produces. */
struct raw_exec {
    uint32_t flags;
    uint32_t timeout_ms;
    uint32_t umask;
    uint32_t terminfo_len;  /* as written */
    uint32_t terminfo_sent; /* the bytes that follow it */
    const char *user;
    const char *cwd;
    uint32_t argc;           /* as written on the wire */
    const char *const *argv; /* NULL-terminated, may hold fewer than argc */
    uint32_t envc;
    const char *const *env;
};

static void put_raw_str(struct dbx_buf *b, const char *s) {
    dbx_buf_put_str(b, s);
}

static void raw_exec_encode(const struct raw_exec *x, struct dbx_buf *b) {
    dbx_buf_put_u32(b, x->flags);
    dbx_buf_put_u16(b, 0);
    dbx_buf_put_u16(b, 0);
    dbx_buf_put_u32(b, x->timeout_ms);
    dbx_buf_put_u32(b, x->umask);
    put_raw_str(b, x->user);
    put_raw_str(b, x->cwd);
    dbx_buf_put_u32(b, x->argc);
    for (size_t i = 0; x->argv && x->argv[i]; i++)
        put_raw_str(b, x->argv[i]);
    dbx_buf_put_u32(b, x->envc);
    for (size_t i = 0; x->env && x->env[i]; i++)
        put_raw_str(b, x->env[i]);
    dbx_buf_put_u32(b, x->terminfo_len);
    for (uint32_t i = 0; i < x->terminfo_sent; i++)
        dbx_buf_put_u8(b, 0x1a);
}

static const char *const argv_true[] = {"true", NULL};

/* Decoding must fail with EPROTO, set *err, and leave *ret untouched. */
static void assert_exec_rejected(const uint8_t *p, size_t n) {
    struct dbx_exec_req sentinel;
    memset(&sentinel, 0xa5, sizeof(sentinel));
    struct dbx_exec_req got = sentinel;
    dbx_error *err = NULL;
    int r = dbx_exec_req_decode(p, n, &got, &err);
    assert_int_equal(r, -EPROTO);
    assert_non_null(err);
    assert_int_equal(err->code, EPROTO);
    assert_non_null(strstr(err->msg, "exec request"));
    assert_memory_equal(&got, &sentinel, sizeof(got));
    dbx_error_free(&err);
    /* err == NULL is allowed */
    assert_int_equal(dbx_exec_req_decode(p, n, &got, NULL), -EPROTO);
}

static void assert_raw_exec_rejected(const struct raw_exec *x) {
    struct dbx_buf b = {0};
    raw_exec_encode(x, &b);
    assert_exec_rejected(b.data, b.len);
    dbx_buf_free(&b);
}

static void assert_raw_exec_accepted(const struct raw_exec *x) {
    struct dbx_buf b = {0};
    raw_exec_encode(x, &b);
    struct dbx_exec_req got = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_exec_req_decode(b.data, b.len, &got, &err), 0);
    assert_null(err);
    dbx_exec_req_free(&got);
    dbx_buf_free(&b);
}

static void test_exec_rejects_truncated_and_trailing(void **state) {
    char *argv[] = {"ls", "-l", NULL};
    char *env[] = {"K=V", NULL};
    struct dbx_exec_req req = {
        .user = "root", .cwd = "/tmp", .argc = 2, .argv = argv, .envc = 1, .env = env};
    struct dbx_buf b = {0};
    dbx_exec_req_encode(&req, &b);
    for (size_t n = 0; n < b.len; n++)
        assert_exec_rejected(b.data, n);
    dbx_buf_put_u8(&b, 0);
    assert_exec_rejected(b.data, b.len);
    dbx_buf_free(&b);
}

static void test_exec_rejects_counts(void **state) {
    /* argc over the limit, with every string actually present */
    const uint32_t n = DBX_MAX_ARGS + 1;
    const char **many = dbx_xcalloc(n + 1, sizeof(char *));
    for (uint32_t i = 0; i < n; i++)
        many[i] = "x";
    struct raw_exec x = {.user = "", .cwd = "/", .argc = n, .argv = many};
    assert_raw_exec_rejected(&x);
    /* exactly at the limit is fine */
    many[DBX_MAX_ARGS] = NULL;
    x.argc = DBX_MAX_ARGS;
    assert_raw_exec_accepted(&x);

    /* envc over the limit */
    const uint32_t ne = DBX_MAX_ENV + 1;
    const char **envs = dbx_xcalloc(ne + 1, sizeof(char *));
    for (uint32_t i = 0; i < ne; i++)
        envs[i] = "A=b";
    struct raw_exec y = {
        .user = "", .cwd = "/", .argc = 1, .argv = argv_true, .envc = ne, .env = envs};
    assert_raw_exec_rejected(&y);
    envs[DBX_MAX_ENV] = NULL;
    y.envc = DBX_MAX_ENV;
    assert_raw_exec_accepted(&y);
    free(many);
    free(envs);

    /* counts the payload cannot possibly hold (must fail before allocating for them) */
    struct raw_exec z = {.user = "", .cwd = "/", .argc = 1000, .argv = argv_true};
    assert_raw_exec_rejected(&z);
    z.argc = UINT32_MAX;
    assert_raw_exec_rejected(&z);
    struct raw_exec w = {.user = "", .cwd = "/", .argc = 1, .argv = argv_true, .envc = 3};
    assert_raw_exec_rejected(&w);
    w.envc = UINT32_MAX;
    assert_raw_exec_rejected(&w);

    /* argc says 2, one string present, followed by envc = 0: the decoder must read envc's
     * bytes as a string length and fail, not accept */
    struct raw_exec v = {.user = "", .cwd = "/", .argc = 2, .argv = argv_true};
    assert_raw_exec_rejected(&v);

    /* a string length pointing past the end */
    struct dbx_buf b = {0};
    dbx_buf_put_u32(&b, 0);
    dbx_buf_put_u32(&b, 0);
    dbx_buf_put_u32(&b, 0);    /* user "" */
    dbx_buf_put_u32(&b, 1000); /* cwd length 1000 */
    dbx_buf_put(&b, "/tmp", 4);
    assert_exec_rejected(b.data, b.len);
    dbx_buf_free(&b);
}

static void test_exec_rejects_strings(void **state) {
    /* NUL inside argv, cwd, user, env */
    struct dbx_buf b = {0};
    dbx_buf_put_u32(&b, 0);
    dbx_buf_put_u32(&b, 0);
    dbx_buf_put_str(&b, "");
    dbx_buf_put_str(&b, "/");
    dbx_buf_put_u32(&b, 1);
    dbx_buf_put_u32(&b, 3);
    dbx_buf_put(&b, "a\0b", 3);
    dbx_buf_put_u32(&b, 0);
    assert_exec_rejected(b.data, b.len);
    dbx_buf_free(&b);

    dbx_buf_put_u32(&b, 0);
    dbx_buf_put_u32(&b, 0);
    dbx_buf_put_str(&b, "");
    dbx_buf_put_u32(&b, 5);
    dbx_buf_put(&b, "/tmp\0", 5);
    dbx_buf_put_u32(&b, 1);
    dbx_buf_put_str(&b, "true");
    dbx_buf_put_u32(&b, 0);
    assert_exec_rejected(b.data, b.len);
    dbx_buf_free(&b);

    dbx_buf_put_u32(&b, 0);
    dbx_buf_put_u32(&b, 0);
    dbx_buf_put_u32(&b, 5);
    dbx_buf_put(&b, "ro\0ot", 5);
    dbx_buf_put_str(&b, "/");
    dbx_buf_put_u32(&b, 1);
    dbx_buf_put_str(&b, "true");
    dbx_buf_put_u32(&b, 0);
    assert_exec_rejected(b.data, b.len);
    dbx_buf_free(&b);

    dbx_buf_put_u32(&b, 0);
    dbx_buf_put_u32(&b, 0);
    dbx_buf_put_str(&b, "");
    dbx_buf_put_str(&b, "/");
    dbx_buf_put_u32(&b, 1);
    dbx_buf_put_str(&b, "true");
    dbx_buf_put_u32(&b, 1);
    dbx_buf_put_u32(&b, 4);
    dbx_buf_put(&b, "A=\0b", 4);
    assert_exec_rejected(b.data, b.len);
    dbx_buf_free(&b);

    /* relative or empty cwd */
    static const char *const cwds[] = {"", "tmp", "./tmp", "relative/path", " /tmp"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cwds); i++) {
        struct raw_exec x = {.user = "", .cwd = cwds[i], .argc = 1, .argv = argv_true};
        assert_raw_exec_rejected(&x);
    }

    /* env entries without '=' (or with an empty name) */
    static const char *const envs[] = {"FOO", "", "=value"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(envs); i++) {
        const char *env[] = {"OK=1", envs[i], NULL};
        struct raw_exec x = {
            .user = "", .cwd = "/", .argc = 1, .argv = argv_true, .envc = 2, .env = env};
        assert_raw_exec_rejected(&x);
    }

    /* an argument or environment entry longer than DBX_ARG_STR_MAX (one execve takes) */
    char *huge = dbx_xmalloc(DBX_ARG_STR_MAX + 2);
    memset(huge, 'a', DBX_ARG_STR_MAX + 1);
    huge[DBX_ARG_STR_MAX + 1] = '\0';
    const char *argv_huge[] = {huge, NULL};
    struct raw_exec x = {.user = "", .cwd = "/", .argc = 1, .argv = argv_huge};
    assert_raw_exec_rejected(&x);
    huge[DBX_ARG_STR_MAX] = '\0'; /* exactly DBX_ARG_STR_MAX is fine */
    assert_raw_exec_accepted(&x);
    huge[1] = '=';
    const char *env_huge[] = {huge, NULL};
    struct raw_exec xe = {
        .user = "", .cwd = "/", .argc = 1, .argv = argv_true, .envc = 1, .env = env_huge};
    assert_raw_exec_accepted(&xe);
    huge[DBX_ARG_STR_MAX] = 'a';
    assert_raw_exec_rejected(&xe);
    free(huge);
}

static void test_exec_rejects_flags_and_empty(void **state) {
    /* unknown flags, and one stream of output merged with a terminal (which is one already) */
    static const uint32_t bad[] = {1u << 7, 1u << 8, 1u << 31, 0xffffffffu,
                                   DBX_EXEC_MERGED | DBX_EXEC_TTY};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        struct raw_exec x = {.flags = bad[i], .user = "", .cwd = "/", .argc = 1, .argv = argv_true};
        assert_raw_exec_rejected(&x);
    }
    struct raw_exec ok = {.flags = DBX_EXEC_TTY | DBX_EXEC_STDIN | DBX_EXEC_LOGIN | DBX_EXEC_ADMIN |
                                   DBX_EXEC_DETACH | DBX_EXEC_TIMING,
                          .timeout_ms = DBX_EXEC_TIMEOUT_MAX,
                          .umask = 0777,
                          .user = "",
                          .cwd = "/",
                          .argc = 1,
                          .argv = argv_true};
    assert_raw_exec_accepted(&ok);
    ok.flags =
        DBX_EXEC_STDIN | DBX_EXEC_ADMIN | DBX_EXEC_DETACH | DBX_EXEC_TIMING | DBX_EXEC_MERGED;
    assert_raw_exec_accepted(&ok);

    /* terminfo: up to DBX_TERMINFO_MAX bytes, and only with a terminal */
    struct raw_exec ti = {.flags = DBX_EXEC_TTY,
                          .terminfo_len = DBX_TERMINFO_MAX,
                          .terminfo_sent = DBX_TERMINFO_MAX,
                          .user = "",
                          .cwd = "/",
                          .argc = 1,
                          .argv = argv_true};
    assert_raw_exec_accepted(&ti);
    ti.terminfo_len = ti.terminfo_sent = DBX_TERMINFO_MAX + 1; /* over the cap, all there */
    assert_raw_exec_rejected(&ti);
    ti.terminfo_len = UINT32_MAX;
    ti.terminfo_sent = 0;
    assert_raw_exec_rejected(&ti);
    ti.terminfo_len = 16; /* more than follows */
    ti.terminfo_sent = 8;
    assert_raw_exec_rejected(&ti);
    ti.terminfo_sent = 16;
    assert_raw_exec_accepted(&ti);
    ti.flags = 0; /* without a terminal */
    assert_raw_exec_rejected(&ti);

    /* a umask with more than the permission bits */
    static const uint32_t masks[] = {01000, 07777, 0xffffffffu};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(masks); i++) {
        struct raw_exec m = {
            .umask = masks[i], .user = "", .cwd = "/", .argc = 1, .argv = argv_true};
        assert_raw_exec_rejected(&m);
    }

    /* a timeout over 30 days */
    struct raw_exec late = {.timeout_ms = DBX_EXEC_TIMEOUT_MAX + 1,
                            .user = "",
                            .cwd = "/",
                            .argc = 1,
                            .argv = argv_true};
    assert_raw_exec_rejected(&late);

    /* no command and no LOGIN flag */
    struct raw_exec empty = {.user = "", .cwd = "/", .argc = 0};
    assert_raw_exec_rejected(&empty);
}

/* A terminal's name and compiled entry as the client sends and the guest writes them. */
static void test_terminfo_check(void **state) {
    uint8_t legacy[16] = {0x1a, 0x01}, extended[16] = {0x1e, 0x02}, script[16] = "#!/bin/sh\n";
    assert_true(dbx_terminfo_check("xterm-kitty", NULL, 0));
    assert_true(dbx_terminfo_check("xterm-kitty", legacy, sizeof(legacy)));
    assert_true(dbx_terminfo_check("foot+base_1.0", extended, sizeof(extended)));
    assert_false(dbx_terminfo_check("xterm-kitty", script, sizeof(script)));
    assert_false(dbx_terminfo_check("xterm-kitty", extended, 11)); /* shorter than a header */
    static const char *const bad[] = {"", ".x", "../x", "a/b", "x y", "x\ty", "\xc3\xa9"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++)
        assert_false(dbx_terminfo_check(bad[i], NULL, 0));
    char name[DBX_TERM_NAME_MAX + 2];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_false(dbx_terminfo_check(name, NULL, 0)); /* 129 */
    name[DBX_TERM_NAME_MAX] = '\0';
    assert_true(dbx_terminfo_check(name, NULL, 0)); /* 128 */
    uint8_t *big = dbx_xcalloc(DBX_TERMINFO_MAX + 1, 1);
    big[0] = 0x1e;
    big[1] = 0x02;
    assert_true(dbx_terminfo_check("t", big, DBX_TERMINFO_MAX));
    assert_false(dbx_terminfo_check("t", big, DBX_TERMINFO_MAX + 1));
    free(big);
}

/* ---- setup ------------------------------------------------------------------------------ */

static void test_setup_roundtrip_and_rejects(void **state) {
    struct dbx_setup s = {.ws_tag = "ws",
                          .ws_path = "/home/me/src/proj",
                          .uid = 1000,
                          .gid = 1001,
                          .hostname = "proj"};
    struct dbx_buf b = {0};
    dbx_setup_encode(&s, &b);
    struct dbx_setup got = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_setup_decode(b.data, b.len, &got, &err), 0);
    assert_null(err);
    assert_string_equal(got.ws_tag, "ws");
    assert_string_equal(got.ws_path, "/home/me/src/proj");
    assert_int_equal(got.uid, 1000);
    assert_int_equal(got.gid, 1001);
    assert_string_equal(got.hostname, "proj");
    dbx_setup_free(&got);
    dbx_setup_free(NULL);

    for (size_t n = 0; n < b.len; n++) {
        assert_int_equal(dbx_setup_decode(b.data, n, &got, &err), -EPROTO);
        assert_non_null(err);
        dbx_error_free(&err);
    }
    dbx_buf_put_u8(&b, 'x');
    assert_int_equal(dbx_setup_decode(b.data, b.len, &got, &err), -EPROTO);
    dbx_error_free(&err);
    dbx_buf_free(&b);

    struct dbx_setup rel = s;
    rel.ws_path = "home/me";
    dbx_setup_encode(&rel, &b);
    assert_int_equal(dbx_setup_decode(b.data, b.len, &got, &err), -EPROTO);
    dbx_error_free(&err);
    dbx_buf_free(&b);
}

/* s (its plan made permissive) encoded and decoded again into *got. */
static int setup_roundtrip(struct dbx_setup *s, struct dbx_setup *got, dbx_error **err) {
    dbx_plan_permissive(&s->plan);
    struct dbx_buf b = {0};
    dbx_setup_encode(s, &b);
    dbx_plan_free(&s->plan);
    int r = dbx_setup_decode(b.data, b.len, got, err);
    dbx_buf_free(&b);
    return r;
}

/* The host's time zone through SETUP: a name alone (a POSIX rule too), a name with its TZif
 * file; names that could leave the guest's zoneinfo directory, data that is not TZif, sizes
 * over the caps and data without a name do not decode. */
static int setup_tz_roundtrip(const char *name, const void *data, uint32_t len) {
    struct dbx_setup s = {.ws_tag = "ws",
                          .ws_path = "/p",
                          .hostname = "h",
                          .ca_pem = "",
                          .tz_name = (char *)name,
                          .tz_data = (uint8_t *)data,
                          .tz_len = len};
    struct dbx_setup got = {0};
    dbx_error *err = NULL;
    int r = setup_roundtrip(&s, &got, &err);
    if (r == 0) {
        assert_string_equal(got.tz_name, name);
        assert_int_equal(got.tz_len, len);
        if (len) assert_memory_equal(got.tz_data, data, len);
        dbx_setup_free(&got);
    } else {
        assert_non_null(err);
        assert_non_null(strstr(err->msg, "malformed setup message"));
        dbx_error_free(&err);
    }
    return r;
}

static void test_setup_tz(void **state) {
    static const uint8_t tzif[] = "TZif2\0\0\0\0\0with a NUL";
    assert_int_equal(setup_tz_roundtrip("", NULL, 0), 0);
    assert_int_equal(setup_tz_roundtrip("Europe/Berlin", tzif, sizeof(tzif)), 0);
    assert_int_equal(setup_tz_roundtrip("America/Argentina/Buenos_Aires", tzif, 4), 0);
    assert_int_equal(setup_tz_roundtrip("Etc/GMT+5", tzif, sizeof(tzif)), 0);
    assert_int_equal(setup_tz_roundtrip("EST5EDT,M3.2.0,M11.1.0", NULL, 0), 0);
    assert_int_equal(setup_tz_roundtrip("<+03>-3", NULL, 0), 0);
    static const char *const bad_with_data[] = {
        "../etc/passwd", "/etc/localtime", "a//b", "Europe/./Berlin", "Europe/", "a,b", "x:y"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad_with_data); i++)
        if (setup_tz_roundtrip(bad_with_data[i], tzif, sizeof(tzif)) != -EPROTO)
            fail_msg("'%s' with data decoded", bad_with_data[i]);
    static const char *const bad[] = {"a b", "x\ny", "x=y", "tab\there", "$(id)"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++)
        if (setup_tz_roundtrip(bad[i], NULL, 0) != -EPROTO) fail_msg("'%s' decoded", bad[i]);
    assert_int_equal(setup_tz_roundtrip("", tzif, sizeof(tzif)), -EPROTO);
    assert_int_equal(setup_tz_roundtrip("UTC", "#!/bin/sh\n", 10), -EPROTO);
    assert_int_equal(setup_tz_roundtrip("UTC", "TZi", 3), -EPROTO);
    char name[DBX_TZ_NAME_MAX + 2];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(setup_tz_roundtrip(name, NULL, 0), -EPROTO);
    name[DBX_TZ_NAME_MAX] = '\0';
    assert_int_equal(setup_tz_roundtrip(name, NULL, 0), 0);
    uint8_t *big = calloc(1, DBX_TZ_DATA_MAX + 1);
    memcpy(big, "TZif", 4);
    assert_int_equal(setup_tz_roundtrip("UTC", big, DBX_TZ_DATA_MAX), 0);
    assert_int_equal(setup_tz_roundtrip("UTC", big, DBX_TZ_DATA_MAX + 1), -EPROTO);
    free(big);
}

/* ---- the host's CA certificates and the admin capability set ---------------------------- */

#define BEGIN "-----BEGIN CERTIFICATE-----\n"
#define END "-----END CERTIFICATE-----\n"

/* ca_pem through SETUP: 0 when it decodes (and then equals what was sent), else the error. */
static int setup_ca_roundtrip(const char *pem, char **ret_msg) {
    struct dbx_setup s = {.ws_tag = "ws", .ws_path = "/p", .hostname = "h", .ca_pem = (char *)pem};
    struct dbx_setup got = {0};
    dbx_error *err = NULL;
    int r = setup_roundtrip(&s, &got, &err);
    if (r == 0) {
        assert_string_equal(got.ca_pem, pem);
        dbx_setup_free(&got);
    } else {
        *ret_msg = dbx_xstrdup(err->msg);
        dbx_error_free(&err);
    }
    return r;
}

static void test_setup_ca_pem(void **state) {
    static const char *const good[] = {
        "",
        BEGIN "MIIB\n" END,
        BEGIN "QUJD\nREVG\nRw==\n" END BEGIN "YQ==\n" END,
        /* the longest line (76) */
        BEGIN "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n"
              "ODk+/w=\n" END,
    };
    char *msg = NULL;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(good); i++)
        if (setup_ca_roundtrip(good[i], &msg) != 0) fail_msg("good[%zu]: %s", i, msg);
    static const struct {
        const char *pem, *why;
    } bad[] = {
        {"junk\n", "line 1: expected '-----BEGIN CERTIFICATE-----'"},
        {BEGIN "MIIB\n" END "\n", "line 4: expected"},
        {"\n" BEGIN "MIIB\n" END, "line 1: expected"},
        {BEGIN "MIIB\n" END "# comment\n", "line 4: expected"},
        {BEGIN "MIIB\n", "line 2: '-----END CERTIFICATE-----' missing"},
        {BEGIN "MIIB\n"
               "-----END CERTIFICATE-----",
         "no newline at the end"},
        {BEGIN "MIIB\r\n" END, "line 2: not base64"},
        {BEGIN "MI IB\n" END, "line 2: not base64"},
        {BEGIN "MI\x1b[2J\n" END, "line 2: not base64"},
        {BEGIN "\n" END, "line 2: empty line"},
        {BEGIN END, "line 2: certificate without base64 lines"},
        {BEGIN "YQ==\nQUJD\n" END, "line 3: base64 after the padding"},
        {BEGIN "Y===\n" END, "line 2: not base64"},
        {BEGIN "====\n" END, "line 2: not base64"},
        {BEGIN "QUJD=DEF\n" END, "line 2: not base64"},
        {"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", "line 1: expected"},
        {BEGIN BEGIN "MIIB\n" END, "line 2: not base64"},
        {BEGIN
         "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0N\n" END,
         "line 2: base64 line longer than 76 characters"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        msg = NULL;
        if (setup_ca_roundtrip(bad[i].pem, &msg) == 0) fail_msg("bad[%zu] decoded", i);
        if (!strstr(msg, bad[i].why) || !strstr(msg, "host CA certificates"))
            fail_msg("bad[%zu]: '%s' does not say '%s'", i, msg, bad[i].why);
        free(msg);
    }
    /* the size cap: exactly DBX_MAX_CA_PEM decodes, a byte more does not */
    struct dbx_buf big = {0};
    dbx_buf_put(&big, BEGIN, strlen(BEGIN));
    size_t line = 64, room = DBX_MAX_CA_PEM - strlen(BEGIN) - strlen(END);
    size_t lines = room / (line + 1);
    for (size_t i = 0; i < lines; i++) {
        for (size_t k = 0; k < (i + 1 == lines ? room - lines * (line + 1) + line : line); k++)
            dbx_buf_put_u8(&big, 'A');
        dbx_buf_put_u8(&big, '\n');
    }
    dbx_buf_put(&big, END, strlen(END));
    dbx_buf_put_u8(&big, 0);
    assert_int_equal(strlen((char *)big.data), DBX_MAX_CA_PEM);
    /* one block has at most 1024 lines, and this has more: several blocks of 1000 instead */
    msg = NULL;
    assert_int_equal(setup_ca_roundtrip((char *)big.data, &msg), -EPROTO);
    assert_non_null(strstr(msg, "more than 1024 base64 lines"));
    free(msg);
    dbx_buf_free(&big);
    for (int extra = 0; extra <= 1; extra++) {
        struct dbx_buf b = {0};
        size_t blk = strlen(BEGIN) + 1000 * 65 + strlen(END);
        while (b.len + blk <= DBX_MAX_CA_PEM) {
            dbx_buf_put(&b, BEGIN, strlen(BEGIN));
            for (int i = 0; i < 1000; i++)
                dbx_buf_put(
                    &b, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2\n", 65);
            dbx_buf_put(&b, END, strlen(END));
        }
        /* a last block whose last line makes the size come out exactly */
        size_t body = DBX_MAX_CA_PEM + (size_t)extra - b.len - strlen(BEGIN) - strlen(END);
        dbx_buf_put(&b, BEGIN, strlen(BEGIN));
        for (; body > 77; body -= 65)
            dbx_buf_put(&b, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2\n",
                        65);
        for (size_t i = 0; i + 1 < body; i++)
            dbx_buf_put_u8(&b, 'Q');
        dbx_buf_put_u8(&b, '\n');
        dbx_buf_put(&b, END, strlen(END));
        dbx_buf_put_u8(&b, 0);
        assert_int_equal(strlen((char *)b.data), DBX_MAX_CA_PEM + (size_t)extra);
        msg = NULL;
        int r = setup_ca_roundtrip((char *)b.data, &msg);
        if (extra == 0 && r != 0) fail_msg("%zu bytes: %s", (size_t)DBX_MAX_CA_PEM, msg);
        if (extra == 1) {
            assert_int_equal(r, -EPROTO); /* the string itself is over the limit */
            free(msg);
        }
        dbx_buf_free(&b);
    }
}

static void test_caps_admin(void **state) {
    /* Docker's default capability set, as `grep CapEff /proc/self/status` shows it */
    assert_true(DBX_CAPS_ADMIN == UINT64_C(0x00000000a80425fb));
}

/* `--admin -u USER` (client) and DBX_EXEC_ADMIN (guest): the same spellings of root */
static void test_user_is_root(void **state) {
    static const char *const yes[] = {"root", "0", "0:0", "root:root", "root:0", "0:root"};
    static const char *const no[] = {"",      "1000",  "dev",     "0:1000", "root:dev",
                                     "00",    "root:", ":0",      "0:0:0",  "roo",
                                     "rooot", " 0",    "0:root:", "root ",  "01:0"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(yes); i++)
        assert_true(dbx_user_is_root(yes[i]));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(no); i++)
        if (dbx_user_is_root(no[i])) fail_msg("'%s' taken for root", no[i]);
}

/* ---- small payloads --------------------------------------------------------------------- */

static void test_credit(void **state) {
    uint8_t b[8];
    assert_int_equal(dbx_enc_credit(b, DBX_STREAM_STDERR, 0x01020304u), 5);
    static const uint8_t want[5] = {2, 4, 3, 2, 1};
    assert_memory_equal(b, want, 5);
    uint8_t st = 0xee;
    uint32_t n = 0;
    assert_int_equal(dbx_dec_credit(b, 5, &st, &n), 0);
    assert_int_equal(st, DBX_STREAM_STDERR);
    assert_int_equal(n, 0x01020304u);
    for (uint8_t s = DBX_STREAM_STDIN; s <= DBX_STREAM_SOCK; s++) {
        dbx_enc_credit(b, s, DBX_WINDOW);
        assert_int_equal(dbx_dec_credit(b, 5, &st, &n), 0);
        assert_int_equal(st, s);
        assert_int_equal(n, DBX_WINDOW);
    }
    assert_int_equal(dbx_dec_credit(b, 4, &st, &n), -EPROTO);
    assert_int_equal(dbx_dec_credit(b, 6, &st, &n), -EPROTO);
    assert_int_equal(dbx_dec_credit(b, 0, &st, &n), -EPROTO);
    b[0] = 4;
    assert_int_equal(dbx_dec_credit(b, 5, &st, &n), -EPROTO);
    b[0] = 255;
    assert_int_equal(dbx_dec_credit(b, 5, &st, &n), -EPROTO);
}

static void test_sock_open(void **state) {
    uint8_t b[3];
    assert_int_equal(dbx_enc_sock_open(b, DBX_SOCK_FORWARD, 0x0bb8), 3);
    static const uint8_t want[3] = {2, 0xb8, 0x0b};
    assert_memory_equal(b, want, 3);
    uint8_t kind = 0;
    uint16_t port = 0;
    assert_int_equal(dbx_dec_sock_open(b, 3, &kind, &port), 0);
    assert_int_equal(kind, DBX_SOCK_FORWARD);
    assert_int_equal(port, 3000);
    dbx_enc_sock_open(b, DBX_SOCK_PROXY, 65535);
    assert_int_equal(dbx_dec_sock_open(b, 3, &kind, &port), 0);
    assert_int_equal(kind, DBX_SOCK_PROXY);
    assert_int_equal(port, 65535);

    assert_int_equal(dbx_dec_sock_open(b, 2, &kind, &port), -EPROTO);
    assert_int_equal(dbx_dec_sock_open(b, 4, &kind, &port), -EPROTO);
    assert_int_equal(dbx_dec_sock_open(b, 0, &kind, &port), -EPROTO);
    static const uint8_t bad_kinds[] = {0, 3, 255};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad_kinds); i++) {
        dbx_enc_sock_open(b, bad_kinds[i], 80);
        assert_int_equal(dbx_dec_sock_open(b, 3, &kind, &port), -EPROTO);
    }
    dbx_enc_sock_open(b, DBX_SOCK_FORWARD, 0);
    kind = 9;
    assert_int_equal(dbx_dec_sock_open(b, 3, &kind, &port), -EPROTO);
    assert_int_equal(kind, 9); /* untouched on failure */
}

static void test_parse_ipv4(void **state) {
    uint8_t a[4], prefix = 0;
    assert_int_equal(dbx_parse_ipv4("10.0.2.15", a, NULL), 0);
    assert_memory_equal(a, ((uint8_t[]){10, 0, 2, 15}), 4);
    assert_int_equal(dbx_parse_ipv4("255.255.255.255", a, NULL), 0);
    assert_int_equal(dbx_parse_ipv4("0.0.0.0", a, NULL), 0);
    assert_int_equal(dbx_parse_ipv4("192.168.100.7/24", a, &prefix), 0);
    assert_memory_equal(a, ((uint8_t[]){192, 168, 100, 7}), 4);
    assert_int_equal(prefix, 24);
    assert_int_equal(dbx_parse_ipv4("10.0.2.15/32", a, &prefix), 0);
    assert_int_equal(prefix, 32);
    assert_int_equal(dbx_parse_ipv4("10.0.2.15/1", a, &prefix), 0);
    assert_int_equal(prefix, 1);

    /* one spelling only: R8's odd encodings are refused, not normalized */
    static const char *const bad[] = {"",           "10.0.2",      "10.0.2.15.1",  "10.0.2.256",
                                      "010.0.2.15", "10.0.02.15",  "0x0a.0.2.15",  "167772687",
                                      "10.0.2.15 ", " 10.0.2.15",  "10..2.15",     "10.0.2.",
                                      ".10.0.2.15", "1000.0.0.1",  "10.0.2.15/24", "10.0.2.-1",
                                      "::1",        "10.0.2.15\n", "1e1.0.0.1"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++)
        if (dbx_parse_ipv4(bad[i], a, NULL) == 0) fail_msg("accepted '%s'", bad[i]);
    static const char *const bad_prefix[] = {
        "10.0.2.15",     "10.0.2.15/",    "10.0.2.15/0",  "10.0.2.15/33",  "10.0.2.15/024",
        "10.0.2.15/24/", "10.0.2.15/ 24", "10.0.2.15/-1", "10.0.2.15/100", "10.0.2/24"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad_prefix); i++)
        if (dbx_parse_ipv4(bad_prefix[i], a, &prefix) == 0)
            fail_msg("accepted '%s'", bad_prefix[i]);
}

static void plan_net(struct dbx_plan *p, uint8_t mode, uint16_t port, const char *addr,
                     const char *gw, const char *dns) {
    dbx_plan_permissive(p);
    p->net_mode = mode;
    p->proxy_port = port;
    free(p->net_addr);
    free(p->net_gw);
    free(p->net_dns);
    p->net_addr = dbx_xstrdup(addr);
    p->net_gw = dbx_xstrdup(gw);
    p->net_dns = dbx_xstrdup(dns);
}

/* Encode, decode; 0 or the decoder's result with its message checked. */
static int plan_net_roundtrip(uint8_t mode, uint16_t port, const char *addr, const char *gw,
                              const char *dns) {
    struct dbx_plan p;
    plan_net(&p, mode, port, addr, gw, dns);
    struct dbx_buf b = {0};
    dbx_plan_encode(&p, &b);
    struct dbx_plan got = {0};
    dbx_error *err = NULL;
    int r = dbx_plan_decode(b.data, b.len, &got, &err);
    if (r == 0) {
        assert_null(err);
        assert_int_equal(got.net_mode, mode);
        assert_int_equal(got.proxy_port, port);
        assert_string_equal(got.net_addr, addr);
        assert_string_equal(got.net_gw, gw);
        assert_string_equal(got.net_dns, dns);
        struct dbx_buf again = {0};
        dbx_plan_encode(&got, &again);
        assert_int_equal(again.len, b.len);
        assert_memory_equal(again.data, b.data, b.len);
        dbx_buf_free(&again);
    } else {
        assert_int_equal(r, -EPROTO);
        assert_non_null(err);
        assert_non_null(strstr(err->msg, "malformed plan: "));
        dbx_error_free(&err);
    }
    dbx_plan_free(&got);
    dbx_plan_free(&p);
    dbx_buf_free(&b);
    return r;
}

/* caps_user travels next to caps, under the checksum, and must stay within root's set */
static void test_plan_caps_user(void **state) {
    static const struct {
        uint64_t caps, caps_user;
        int want;
    } cases[] = {
        {0x3, 0x0, 0},         {0x3, 0x1, 0},
        {0x3, 0x3, 0},         {0x1, 0x2, -EPROTO},
        {0x0, 0x400, -EPROTO}, {DBX_CAP_ALL, DBX_CAP_ALL, 0},
        {DBX_CAP_ALL, 0x0, 0}, {0x3, DBX_CAP_ALL, -EPROTO},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        struct dbx_plan p;
        plan_net(&p, DBX_NET_NONE, 0, "", "", "");
        p.caps = cases[i].caps;
        p.caps_user = cases[i].caps_user;
        struct dbx_buf b = {0};
        dbx_plan_encode(&p, &b);
        struct dbx_plan got = {0};
        dbx_error *err = NULL;
        int r = dbx_plan_decode(b.data, b.len, &got, &err);
        if (r != cases[i].want) fail_msg("case %zu: decode gave %d", i, r);
        if (r == 0) {
            assert_true(got.caps == p.caps && got.caps_user == p.caps_user);
        } else {
            assert_non_null(strstr(err->msg, "not a subset of root's"));
            dbx_error_free(&err);
        }
        /* flipping a bit of caps_user (bytes 56..63 of the encoding) breaks the checksum */
        if (r == 0) {
            b.data[56] ^= 1;
            dbx_plan_free(&got);
            assert_int_equal(dbx_plan_decode(b.data, b.len, &got, &err), -EPROTO);
            assert_non_null(strstr(err->msg, "checksum"));
            dbx_error_free(&err);
        }
        dbx_plan_free(&got);
        dbx_plan_free(&p);
        dbx_buf_free(&b);
    }
    struct dbx_plan p;
    dbx_plan_permissive(&p);
    assert_true(p.caps == DBX_CAP_ALL && p.caps_user == DBX_CAP_ALL);
    dbx_plan_free(&p);
}

/* no_randomize travels after seccomp_mode (byte 66 of the encoding): 0 and 1 only */
static void test_plan_no_randomize(void **state) {
    for (uint8_t v = 0; v < 3; v++) {
        struct dbx_plan p;
        plan_net(&p, DBX_NET_NONE, 0, "", "", "");
        p.no_randomize = v;
        struct dbx_buf b = {0};
        dbx_plan_encode(&p, &b);
        assert_int_equal(b.data[66], v);
        struct dbx_plan got = {0};
        dbx_error *err = NULL;
        int r = dbx_plan_decode(b.data, b.len, &got, &err);
        if (v < 2) {
            assert_int_equal(r, 0);
            assert_int_equal(got.no_randomize, v);
        } else {
            assert_int_equal(r, -EPROTO);
            assert_string_equal(err->msg, "malformed plan: bad flag");
            dbx_error_free(&err);
        }
        dbx_plan_free(&got);
        dbx_plan_free(&p);
        dbx_buf_free(&b);
    }
}

/* A seed of the protocol fuzz corpus (byte 0 is the harness's chunk-size seed), at least two
 * bytes; skips the test when run from elsewhere than the source tree. */
static char *corpus_seed(const char *name, size_t *len) {
    char path[128];
    snprintf(path, sizeof(path), "tests/fuzz/corpus/protocol/%s", name);
    char *buf = NULL;
    dbx_error *err = NULL;
    if (access(path, F_OK) < 0) {
        print_message("skipped: run from elsewhere than the source tree\n");
        skip();
    }
    /* a seed that is there must be read (exec-large is over 256 KiB): never a silent skip */
    if (dbx_read_file_at(AT_FDCWD, path, DBX_EXEC_MAX + 64, &buf, len, &err) < 0)
        fail_msg("%s: %s", path, err->msg);
    assert_true(*len > 1);
    return buf;
}

/* The fuzz corpus's plan seeds (tests/fuzz/gen-corpus.py) must be plans the decoder accepts,
 * or the fuzzer never starts from a valid plan and the checks after a successful decode in
 * fuzz-protocol.c are not exercised: a layout change (caps_user) has to reach the generator. */
static void test_plan_corpus_seeds(void **state) {
    /* and the frame seeds must carry this protocol's version, or every one of them stops at
     * the header check (the generator said 6 while the protocol was 7) */
    static const char *const frames[] = {"setup-open", "exec-flags", "timing"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(frames); i++) {
        size_t len = 0;
        char *buf = corpus_seed(frames[i], &len);
        if ((uint8_t)buf[1] != DBX_PROTO_VERSION)
            fail_msg("%s: version %u, expected %u", frames[i], (uint8_t)buf[1], DBX_PROTO_VERSION);
        free(buf);
    }
    /* the EXEC seeds a session starts with must decode (the umask came between flags and user:
     * a seed without it is only ever a malformed request) */
    static const char *const execs[] = {"exec-admin", "tty-login", "many-args", "exec-large"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(execs); i++) {
        size_t len = 0;
        char *buf = corpus_seed(execs[i], &len);
        struct dbx_frame_hdr h;
        assert_true(len >= 1 + DBX_FRAME_HDR);
        dbx_hdr_decode((const uint8_t *)buf + 1, &h);
        assert_int_equal(h.type, DBX_MSG_EXEC);
        assert_true(len >= 1 + DBX_FRAME_HDR + h.len);
        struct dbx_exec_req req = {0};
        dbx_error *err = NULL;
        if (dbx_exec_req_decode((const uint8_t *)buf + 1 + DBX_FRAME_HDR, h.len, &req, &err) < 0)
            fail_msg("%s: %s", execs[i], err ? err->msg : "decode failed");
        dbx_exec_req_free(&req);
        free(buf);
    }
    static const char *const seeds[] = {"plan-open", "plan-allowlist"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(seeds); i++) {
        size_t len = 0;
        char *buf = corpus_seed(seeds[i], &len);
        struct dbx_plan plan = {0};
        dbx_error *err = NULL;
        int r = dbx_plan_decode((const uint8_t *)buf + 1, len - 1, &plan, &err);
        if (r != 0) fail_msg("%s: %s", seeds[i], err ? err->msg : "decode failed");
        assert_true(plan.caps == DBX_CAP_ALL && plan.caps_user == DBX_CAP_ALL);
        dbx_plan_free(&plan);
        free(buf);
    }
}

static void test_plan_network(void **state) {
    /* the three modes as the host sends them */
    assert_int_equal(plan_net_roundtrip(DBX_NET_NONE, 0, "", "", ""), 0);
    assert_int_equal(plan_net_roundtrip(DBX_NET_ALLOWLIST, 3128, "", "", ""), 0);
    assert_int_equal(plan_net_roundtrip(DBX_NET_ALLOWLIST, 65535, "", "", ""), 0);
    assert_int_equal(plan_net_roundtrip(DBX_NET_OPEN, 0, "10.0.2.15/24", "10.0.2.2", "10.0.2.3"),
                     0);
    assert_int_equal(plan_net_roundtrip(DBX_NET_OPEN, 0, "192.168.1.9/32", "192.168.1.1", ""), 0);

    /* the permissive plan is network none */
    struct dbx_plan p;
    dbx_plan_permissive(&p);
    assert_int_equal(p.net_mode, DBX_NET_NONE);
    assert_int_equal(p.proxy_port, 0);
    assert_string_equal(p.net_addr, "");
    dbx_plan_free(&p);

    /* fields that disagree with the mode */
    assert_int_equal(plan_net_roundtrip(3, 0, "", "", ""), -EPROTO);
    assert_int_equal(plan_net_roundtrip(255, 0, "", "", ""), -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_ALLOWLIST, 0, "", "", ""), -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_NONE, 3128, "", "", ""), -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_OPEN, 3128, "10.0.2.15/24", "10.0.2.2", ""),
                     -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_OPEN, 0, "", "10.0.2.2", ""), -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_NONE, 0, "10.0.2.15/24", "", ""), -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_NONE, 0, "", "10.0.2.2", ""), -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_ALLOWLIST, 8080, "", "", "1.1.1.1"), -EPROTO);
    /* open: every address in its one spelling, the gateway required */
    assert_int_equal(plan_net_roundtrip(DBX_NET_OPEN, 0, "10.0.2.15", "10.0.2.2", ""), -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_OPEN, 0, "10.0.2.15/24", "", ""), -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_OPEN, 0, "10.0.2.15/24", "010.0.2.2", ""), -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_OPEN, 0, "10.0.2.15/24", "10.0.2.2/24", ""),
                     -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_OPEN, 0, "10.0.2.15/24", "10.0.2.2", "dns"),
                     -EPROTO);
    assert_int_equal(plan_net_roundtrip(DBX_NET_OPEN, 0, "10.0.2.15/33", "10.0.2.2", ""), -EPROTO);

    /* strings over their 64-byte cap */
    char long_dns[80];
    memset(long_dns, '1', sizeof(long_dns) - 1);
    long_dns[sizeof(long_dns) - 1] = '\0';
    assert_int_equal(plan_net_roundtrip(DBX_NET_OPEN, 0, "10.0.2.15/24", "10.0.2.2", long_dns),
                     -EPROTO);

    /* every truncation of a valid open plan fails (the checksum, then the framing) */
    plan_net(&p, DBX_NET_OPEN, 0, "10.0.2.15/24", "10.0.2.2", "10.0.2.3");
    struct dbx_buf b = {0};
    dbx_plan_encode(&p, &b);
    for (size_t n = 0; n < b.len; n++) {
        struct dbx_plan got = {0};
        dbx_error *err = NULL;
        assert_int_equal(dbx_plan_decode(b.data, n, &got, &err), -EPROTO);
        dbx_error_free(&err);
    }
    dbx_buf_free(&b);
    dbx_plan_free(&p);
}

static void test_exit(void **state) {
    static const struct {
        bool sig;
        uint32_t v;
    } ok[] = {{false, 0}, {false, 1}, {false, 255}, {true, 1}, {true, 9}, {true, 64}, {true, 127}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ok); i++) {
        uint8_t b[5];
        assert_int_equal(dbx_enc_exit(b, ok[i].sig, ok[i].v), 5);
        bool sig = !ok[i].sig;
        uint32_t v = 12345;
        assert_int_equal(dbx_dec_exit(b, 5, &sig, &v), 0);
        assert_int_equal(sig, ok[i].sig);
        assert_int_equal(v, ok[i].v);
    }
    static const struct {
        bool sig;
        uint32_t v;
    } bad[] = {{false, 256}, {false, UINT32_MAX}, {true, 0}, {true, 128}, {true, UINT32_MAX}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        uint8_t b[5];
        dbx_enc_exit(b, bad[i].sig, bad[i].v);
        bool sig;
        uint32_t v;
        assert_int_equal(dbx_dec_exit(b, 5, &sig, &v), -EPROTO);
    }
    uint8_t b[6] = {2, 0, 0, 0, 0, 0};
    bool sig;
    uint32_t v;
    assert_int_equal(dbx_dec_exit(b, 5, &sig, &v), -EPROTO); /* signaled must be 0 or 1 */
    b[0] = 0;
    assert_int_equal(dbx_dec_exit(b, 4, &sig, &v), -EPROTO);
    assert_int_equal(dbx_dec_exit(b, 6, &sig, &v), -EPROTO);
}

static void test_exit_code(void **state) {
    assert_int_equal(dbx_exit_code(false, 0), 0);
    assert_int_equal(dbx_exit_code(false, 7), 7);
    assert_int_equal(dbx_exit_code(false, 255), 255);
    assert_int_equal(dbx_exit_code(true, 2), 130);  /* SIGINT */
    assert_int_equal(dbx_exit_code(true, 9), 137);  /* SIGKILL */
    assert_int_equal(dbx_exit_code(true, 15), 143); /* SIGTERM */
    assert_int_equal(dbx_exit_code(true, 1), 129);
    /* never outside 0..255 whatever arrives */
    assert_in_range(dbx_exit_code(false, UINT32_MAX), 0, 255);
    assert_in_range(dbx_exit_code(true, UINT32_MAX), 128, 255);
}

static void test_resize_u32_u64(void **state) {
    uint8_t b[9];
    assert_int_equal(dbx_enc_resize(b, 50, 132), 4);
    static const uint8_t want[4] = {50, 0, 132, 0};
    assert_memory_equal(b, want, 4);
    uint16_t rows = 0, cols = 0;
    assert_int_equal(dbx_dec_resize(b, 4, &rows, &cols), 0);
    assert_int_equal(rows, 50);
    assert_int_equal(cols, 132);
    dbx_enc_resize(b, UINT16_MAX, 1);
    assert_int_equal(dbx_dec_resize(b, 4, &rows, &cols), 0);
    assert_int_equal(rows, UINT16_MAX);
    assert_int_equal(cols, 1);
    assert_int_equal(dbx_dec_resize(b, 3, &rows, &cols), -EPROTO);
    assert_int_equal(dbx_dec_resize(b, 5, &rows, &cols), -EPROTO);

    uint32_t v32 = 0;
    assert_int_equal(dbx_enc_u32(b, 0xa1b2c3d4u), 4);
    assert_int_equal(b[0], 0xd4);
    assert_int_equal(dbx_dec_u32(b, 4, &v32), 0);
    assert_int_equal(v32, 0xa1b2c3d4u);
    assert_int_equal(dbx_dec_u32(b, 3, &v32), -EPROTO);
    assert_int_equal(dbx_dec_u32(b, 5, &v32), -EPROTO);

    uint64_t v64 = 0;
    assert_int_equal(dbx_enc_u64(b, 0x0102030405060708ull), 8);
    assert_int_equal(b[0], 0x08);
    assert_int_equal(b[7], 0x01);
    assert_int_equal(dbx_dec_u64(b, 8, &v64), 0);
    assert_true(v64 == 0x0102030405060708ull);
    assert_int_equal(dbx_dec_u64(b, 7, &v64), -EPROTO);
    assert_int_equal(dbx_dec_u64(b, 9, &v64), -EPROTO);
}

static void test_hello(void **state) {
    struct dbx_buf b = {0};
    dbx_hello_encode(&b, "6.1.0-28-cloud-amd64");
    uint32_t v = 0;
    char *rel = NULL;
    assert_int_equal(dbx_hello_decode(b.data, b.len, &v, &rel), 0);
    assert_int_equal(v, DBX_PROTO_VERSION);
    assert_string_equal(rel, "6.1.0-28-cloud-amd64");
    free(rel);
    for (size_t n = 0; n < b.len; n++) {
        rel = NULL;
        assert_int_equal(dbx_hello_decode(b.data, n, &v, &rel), -EPROTO);
        assert_null(rel);
    }
    dbx_buf_put_u8(&b, 0);
    rel = NULL;
    assert_int_equal(dbx_hello_decode(b.data, b.len, &v, &rel), -EPROTO);
    assert_null(rel); /* nothing leaks to the caller on failure */
    dbx_buf_free(&b);

    /* NUL inside, and a release longer than 256 bytes */
    dbx_buf_put_u32(&b, 1);
    dbx_buf_put_u32(&b, 3);
    dbx_buf_put(&b,
                "6\0"
                "1",
                3);
    rel = NULL;
    assert_int_equal(dbx_hello_decode(b.data, b.len, &v, &rel), -EPROTO);
    assert_null(rel);
    dbx_buf_free(&b);
    char longrel[300];
    memset(longrel, 'r', sizeof(longrel) - 1);
    longrel[sizeof(longrel) - 1] = '\0';
    dbx_hello_encode(&b, longrel);
    rel = NULL;
    assert_int_equal(dbx_hello_decode(b.data, b.len, &v, &rel), -EPROTO);
    assert_null(rel);
    dbx_buf_free(&b);
}

/* PROTECTED: strict framing (every prefix and a trailing byte refused, the path cap, no NUL);
 * what the path means is the supervisor's check (test-sandbox-status.c). */
static void test_protected_frame(void **state) {
    struct dbx_buf b = {0};
    dbx_protected_encode(&b, 42, ".claude/settings.json");
    uint64_t count = 0;
    char *first = NULL;
    assert_int_equal(dbx_protected_decode(b.data, b.len, &count, &first), 0);
    assert_int_equal(count, 42);
    assert_string_equal(first, ".claude/settings.json");
    free(first);
    for (size_t n = 0; n < b.len; n++) {
        first = NULL;
        assert_int_equal(dbx_protected_decode(b.data, n, &count, &first), -EPROTO);
        assert_null(first);
    }
    dbx_buf_put_u8(&b, 0);
    first = NULL;
    assert_int_equal(dbx_protected_decode(b.data, b.len, &count, &first), -EPROTO);
    assert_null(first);
    dbx_buf_free(&b);
    dbx_buf_put_u64(&b, 1);
    dbx_buf_put_u32(&b, 3);
    dbx_buf_put(&b, "a\0b", 3);
    assert_int_equal(dbx_protected_decode(b.data, b.len, &count, &first), -EPROTO);
    assert_null(first);
    dbx_buf_free(&b);
    char *big = calloc(DBX_PROTECTED_PATH_MAX + 2, 1);
    memset(big, 'p', DBX_PROTECTED_PATH_MAX + 1);
    dbx_buf_put_u64(&b, 1);
    dbx_buf_put_str(&b, big);
    assert_int_equal(dbx_protected_decode(b.data, b.len, &count, &first), -EPROTO);
    assert_null(first);
    free(big);
    dbx_buf_free(&b);
}

static void test_error_msg(void **state) {
    struct dbx_buf b = {0};
    dbx_error_msg_encode(&b, DBX_ERR_NOT_FOUND, "exec 'nope': No such file or directory");
    uint32_t code = 0;
    char *msg = NULL;
    assert_int_equal(dbx_error_msg_decode(b.data, b.len, &code, &msg), 0);
    assert_int_equal(code, 127);
    assert_string_equal(msg, "exec 'nope': No such file or directory");
    free(msg);
    for (size_t n = 0; n < b.len; n++) {
        msg = NULL;
        assert_int_equal(dbx_error_msg_decode(b.data, n, &code, &msg), -EPROTO);
        assert_null(msg);
    }
    dbx_buf_put_u8(&b, '!');
    msg = NULL;
    assert_int_equal(dbx_error_msg_decode(b.data, b.len, &code, &msg), -EPROTO);
    assert_null(msg);
    dbx_buf_free(&b);

    /* empty message */
    dbx_error_msg_encode(&b, DBX_ERR_FAILED, "");
    assert_int_equal(dbx_error_msg_decode(b.data, b.len, &code, &msg), 0);
    assert_int_equal(code, 125);
    assert_string_equal(msg, "");
    free(msg);
    dbx_buf_free(&b);

    /* an over-long message is cut by the encoder so that it still decodes */
    char *big = dbx_xmalloc(10001);
    memset(big, 'm', 10000);
    big[10000] = '\0';
    dbx_error_msg_encode(&b, 1, big);
    msg = NULL;
    assert_int_equal(dbx_error_msg_decode(b.data, b.len, &code, &msg), 0);
    assert_non_null(msg);
    assert_true(strlen(msg) <= 4096);
    assert_true(strlen(msg) > 0);
    free(msg);
    dbx_buf_free(&b);
    free(big);

    /* a hand-built message above the decoder's limit */
    dbx_buf_put_u32(&b, 1);
    dbx_buf_put_u32(&b, 5000);
    char fill[5000];
    memset(fill, 'z', sizeof(fill));
    dbx_buf_put(&b, fill, sizeof(fill));
    msg = NULL;
    assert_int_equal(dbx_error_msg_decode(b.data, b.len, &code, &msg), -EPROTO);
    assert_null(msg);
    dbx_buf_free(&b);
}

static void test_buf(void **state) {
    struct dbx_buf b = {0};
    dbx_buf_put_u8(&b, 1);
    dbx_buf_put_u16(&b, 0x0302);
    dbx_buf_put_u32(&b, 0x07060504);
    dbx_buf_put_u64(&b, 0x0f0e0d0c0b0a0908ull);
    static const uint8_t want[15] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    assert_int_equal(dbx_buf_avail(&b), 15);
    assert_memory_equal(dbx_buf_head(&b), want, 15);

    struct dbx_cursor c = {dbx_buf_head(&b), dbx_buf_avail(&b)};
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    assert_int_equal(dbx_get_u8(&c, &u8), 0);
    assert_int_equal(dbx_get_u16(&c, &u16), 0);
    assert_int_equal(dbx_get_u32(&c, &u32), 0);
    assert_int_equal(dbx_get_u64(&c, &u64), 0);
    assert_int_equal(u8, 1);
    assert_int_equal(u16, 0x0302);
    assert_int_equal(u32, 0x07060504);
    assert_true(u64 == 0x0f0e0d0c0b0a0908ull);
    assert_int_equal(c.left, 0);
    assert_int_equal(dbx_get_u8(&c, &u8), -EPROTO);

    dbx_buf_consume(&b, 10);
    assert_int_equal(dbx_buf_avail(&b), 5);
    assert_int_equal(dbx_buf_head(&b)[0], 11);
    /* growing after a partial consume keeps unread bytes in order */
    for (int i = 0; i < 10000; i++)
        dbx_buf_put_u8(&b, (uint8_t)i);
    assert_int_equal(dbx_buf_avail(&b), 10005);
    assert_int_equal(dbx_buf_head(&b)[0], 11);
    assert_int_equal(dbx_buf_head(&b)[4], 15);
    assert_int_equal(dbx_buf_head(&b)[5], 0);
    assert_int_equal(dbx_buf_head(&b)[10004], (uint8_t)9999);
    dbx_buf_consume(&b, SIZE_MAX); /* over-consume is clamped */
    assert_int_equal(dbx_buf_avail(&b), 0);
    dbx_buf_free(&b);
    dbx_buf_free(&b);
}

/* dbx_get_strv, shared by the exec request's and the plan's decoders: a NULL-terminated copy,
 * the cursor past the list, and a refusal (nothing returned) for a count above max, a count the
 * payload cannot hold, or a bad string inside. */
static void test_get_strv(void **state) {
    struct dbx_buf b = {0};
    dbx_buf_put_u32(&b, 2);
    dbx_buf_put_str(&b, "a=1");
    dbx_buf_put_str(&b, "");
    dbx_buf_put_u8(&b, 9);
    struct dbx_cursor c = {dbx_buf_head(&b), dbx_buf_avail(&b)};
    uint32_t n = 0;
    char **v = NULL;
    assert_int_equal(dbx_get_strv(&c, 2, &n, &v), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "a=1");
    assert_string_equal(v[1], "");
    assert_null(v[2]);
    assert_int_equal(c.left, 1);
    dbx_strv_free(v);

    c = (struct dbx_cursor){dbx_buf_head(&b), dbx_buf_avail(&b)};
    v = NULL;
    assert_int_equal(dbx_get_strv(&c, 1, &n, &v), -EPROTO);
    assert_null(v);
    dbx_buf_free(&b);

    /* a count of 1000 in a 12-byte payload is refused before anything is allocated for it */
    dbx_buf_put_u32(&b, 1000);
    dbx_buf_put_u64(&b, 0);
    c = (struct dbx_cursor){dbx_buf_head(&b), dbx_buf_avail(&b)};
    assert_int_equal(dbx_get_strv(&c, 4096, &n, &v), -EPROTO);
    assert_null(v);
    dbx_buf_free(&b);

    /* the second string holds a NUL: the first one's copy is released */
    dbx_buf_put_u32(&b, 2);
    dbx_buf_put_str(&b, "ok");
    dbx_buf_put_u32(&b, 3);
    dbx_buf_put(&b, "a\0b", 3);
    c = (struct dbx_cursor){dbx_buf_head(&b), dbx_buf_avail(&b)};
    assert_int_equal(dbx_get_strv(&c, 4, &n, &v), -EPROTO);
    assert_null(v);
    dbx_buf_free(&b);
}

/* ---- common: parsers -------------------------------------------------------------------- */

static void test_parse_u64(void **state) {
    uint64_t v = 0;
    assert_int_equal(dbx_parse_u64("0", 0, UINT64_MAX, &v), 0);
    assert_true(v == 0);
    assert_int_equal(dbx_parse_u64("42", 0, UINT64_MAX, &v), 0);
    assert_true(v == 42);
    assert_int_equal(dbx_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);

    v = 77;
    assert_int_equal(dbx_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(dbx_parse_u64("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(dbx_parse_u64("11", 0, 10, &v), -ERANGE);
    assert_int_equal(dbx_parse_u64("4", 5, 10, &v), -ERANGE);
    assert_true(v == 77); /* untouched on failure */
    assert_int_equal(dbx_parse_u64("10", 0, 10, &v), 0);
    assert_true(v == 10);
    assert_int_equal(dbx_parse_u64("5", 5, 10, &v), 0);

    static const char *const bad[] = {"",    "-1",  "+1",  " 1", "1 ",  "0x10",
                                      "1e3", "1.0", "12a", "a",  "\t7", "1\n"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        v = 77;
        assert_int_equal(dbx_parse_u64(bad[i], 0, UINT64_MAX, &v), -EINVAL);
        assert_true(v == 77);
    }
    assert_int_equal(dbx_parse_u64(NULL, 0, UINT64_MAX, &v), -EINVAL);
}

static void test_parse_size(void **state) {
    uint64_t v = 0;
    assert_int_equal(dbx_parse_size("512M", &v), 0);
    assert_true(v == 512ull << 20);
    assert_int_equal(dbx_parse_size("2G", &v), 0);
    assert_true(v == 2ull << 30);
    assert_int_equal(dbx_parse_size("2g", &v), 0);
    assert_true(v == 2ull << 30);
    assert_int_equal(dbx_parse_size("64k", &v), 0);
    assert_true(v == 64ull << 10);
    assert_int_equal(dbx_parse_size("1T", &v), 0);
    assert_true(v == 1ull << 40);
    assert_int_equal(dbx_parse_size("4096", &v), 0);
    assert_true(v == 4096);
    assert_int_equal(dbx_parse_size("0", &v), 0);
    assert_true(v == 0);
    assert_int_equal(dbx_parse_size("16777215T", &v), 0);
    assert_true(v == 16777215ull << 40);

    v = 77;
    assert_int_equal(dbx_parse_size("16777216T", &v), -ERANGE); /* 2^64 */
    assert_int_equal(dbx_parse_size("17179869184G", &v), -ERANGE);
    assert_int_equal(dbx_parse_size("18446744073709551615K", &v), -ERANGE);
    assert_int_equal(dbx_parse_size("18446744073709551616", &v), -ERANGE);
    assert_true(v == 77);

    static const char *const bad[] = {"",    "M",   "-1M", "1.5G",  "1MB", "1 M",
                                      " 1M", "1MM", "G2",  "0x10M", "1P",  "1Mi"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        v = 77;
        int r = dbx_parse_size(bad[i], &v);
        if (r != -EINVAL) print_error("dbx_parse_size(\"%s\") = %d\n", bad[i], r);
        assert_int_equal(r, -EINVAL);
        assert_true(v == 77);
    }
    assert_int_equal(dbx_parse_size(NULL, &v), -EINVAL);
}

/* ---- common: files ---------------------------------------------------------------------- */

struct tmpdir {
    char path[64];
    int fd;
};

static int tmpdir_setup(void **state) {
    struct tmpdir *t = dbx_xcalloc(1, sizeof(*t));
    strcpy(t->path, "/tmp/dbx-unit-XXXXXX");
    if (!mkdtemp(t->path)) return -1;
    t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (t->fd < 0) return -1;
    *state = t;
    return 0;
}

static int tmpdir_teardown(void **state) {
    struct tmpdir *t = *state;
    DIR *d = fdopendir(dup(t->fd));
    struct dirent *de;
    /* the dup shares the offset that count_entries left at the end (every run of the test
     * left its directory in /tmp) */
    if (d) rewinddir(d);
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            if (unlinkat(t->fd, de->d_name, 0) < 0) unlinkat(t->fd, de->d_name, AT_REMOVEDIR);
    if (d) closedir(d);
    close(t->fd);
    rmdir(t->path);
    free(t);
    return 0;
}

static size_t count_entries(int dfd) {
    DIR *d = fdopendir(dup(dfd));
    assert_non_null(d);
    rewinddir(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_write_read_file(void **state) {
    struct tmpdir *t = *state;
    dbx_error *err = NULL;
    mode_t old = umask(022);

    static const char data[] = "hello\0world\n\xff";
    assert_int_equal(dbx_write_file_atomic(t->fd, "state.json", data, sizeof(data), 0600, &err), 0);
    assert_null(err);
    struct stat st;
    assert_int_equal(fstatat(t->fd, "state.json", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, sizeof(data));
    assert_int_equal(count_entries(t->fd), 1); /* no temp file left behind */

    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(dbx_read_file_at(t->fd, "state.json", 1024, &buf, &len, &err), 0);
    assert_null(err);
    assert_int_equal(len, sizeof(data));
    assert_memory_equal(buf, data, sizeof(data));
    assert_int_equal(buf[len], '\0'); /* NUL-terminated */
    free(buf);

    /* replace: new content, still one entry */
    assert_int_equal(dbx_write_file_atomic(t->fd, "state.json", "v2", 2, 0644, &err), 0);
    buf = NULL;
    assert_int_equal(dbx_read_file_at(t->fd, "state.json", 1024, &buf, &len, &err), 0);
    assert_int_equal(len, 2);
    assert_string_equal(buf, "v2");
    free(buf);
    assert_int_equal(count_entries(t->fd), 1);

    /* empty file */
    assert_int_equal(dbx_write_file_atomic(t->fd, "empty", "", 0, 0600, &err), 0);
    buf = NULL;
    assert_int_equal(dbx_read_file_at(t->fd, "empty", 16, &buf, &len, &err), 0);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    free(buf);

    /* cap: exactly cap bytes is fine, one more is E2BIG */
    char big[10000];
    memset(big, 'b', sizeof(big));
    assert_int_equal(dbx_write_file_atomic(t->fd, "big", big, sizeof(big), 0600, &err), 0);
    buf = NULL;
    assert_int_equal(dbx_read_file_at(t->fd, "big", sizeof(big), &buf, &len, &err), 0);
    assert_int_equal(len, sizeof(big));
    free(buf);
    buf = NULL;
    assert_true(dbx_read_file_at(t->fd, "big", sizeof(big) - 1, &buf, &len, &err) < 0);
    assert_non_null(err);
    assert_int_equal(err->code, E2BIG);
    assert_null(buf);
    dbx_error_free(&err);

    /* missing file: ENOENT, message names it */
    assert_int_equal(dbx_read_file_at(t->fd, "nope", 16, &buf, &len, &err), -ENOENT);
    assert_non_null(err);
    assert_non_null(strstr(err->msg, "'nope'"));
    dbx_error_free(&err);

    /* a directory is not a regular file */
    assert_int_equal(mkdirat(t->fd, "sub", 0700), 0);
    assert_true(dbx_read_file_at(t->fd, "sub", 16, &buf, &len, &err) < 0);
    assert_non_null(err);
    dbx_error_free(&err);

    /* AT_FDCWD with an absolute path */
    char abs[128];
    snprintf(abs, sizeof(abs), "%s/state.json", t->path);
    buf = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, abs, 1024, &buf, &len, &err), 0);
    assert_string_equal(buf, "v2");
    free(buf);
    umask(old);
}

static void test_symlinks_refused(void **state) {
    struct tmpdir *t = *state;
    dbx_error *err = NULL;
    assert_int_equal(dbx_write_file_atomic(t->fd, "target", "secret", 6, 0600, &err), 0);
    assert_int_equal(symlinkat("target", t->fd, "link"), 0);

    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(dbx_read_file_at(t->fd, "link", 1024, &buf, &len, &err), -ELOOP);
    assert_non_null(err);
    assert_int_equal(err->code, ELOOP);
    assert_null(buf);
    dbx_error_free(&err);

    /* writing to a name that is a symlink replaces the link, never writes through it */
    assert_int_equal(dbx_write_file_atomic(t->fd, "link", "new", 3, 0600, &err), 0);
    struct stat st;
    assert_int_equal(fstatat(t->fd, "link", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(dbx_read_file_at(t->fd, "target", 1024, &buf, &len, &err), 0);
    assert_string_equal(buf, "secret");
    free(buf);
}

/* ---- common: errors --------------------------------------------------------------------- */

static void test_errors(void **state) {
    dbx_error *err = NULL;
    assert_int_equal(dbx_error_set(&err, ENOENT, "open '%s'", "/x/y"), -ENOENT);
    assert_non_null(err);
    assert_int_equal(err->code, ENOENT);
    char want[256];
    snprintf(want, sizeof(want), "open '/x/y': %s", strerror(ENOENT));
    assert_string_equal(err->msg, want);

    assert_int_equal(dbx_error_wrap(&err, "load profile '%s'", "dev"), -ENOENT);
    snprintf(want, sizeof(want), "load profile 'dev': open '/x/y': %s", strerror(ENOENT));
    assert_string_equal(err->msg, want);
    assert_int_equal(dbx_error_wrap(&err, "devbox"), -ENOENT);
    snprintf(want, sizeof(want), "devbox: load profile 'dev': open '/x/y': %s", strerror(ENOENT));
    assert_string_equal(err->msg, want);
    dbx_error_free(&err);
    assert_null(err);
    dbx_error_free(&err);
    dbx_error_free(NULL);

    /* errnum 0: EIO, no strerror suffix */
    assert_int_equal(dbx_error_set(&err, 0, "fetch manifest: HTTP %d", 404), -EIO);
    assert_int_equal(err->code, EIO);
    assert_string_equal(err->msg, "fetch manifest: HTTP 404");
    assert_int_equal(dbx_error_wrap(&err, "pull '%s'", "alpine:3.20"), -EIO);
    assert_string_equal(err->msg, "pull 'alpine:3.20': fetch manifest: HTTP 404");
    dbx_error_free(&err);

    /* err == NULL: only the return value */
    assert_int_equal(dbx_error_set(NULL, EACCES, "x"), -EACCES);
    assert_int_equal(dbx_error_wrap(NULL, "x"), -EIO);

    /* a message with a literal '%' in an argument is not re-interpreted */
    assert_int_equal(dbx_error_set(&err, EINVAL, "bad '%s'", "%s%n"), -EINVAL);
    snprintf(want, sizeof(want), "bad '%%s%%n': %s", strerror(EINVAL));
    assert_string_equal(err->msg, want);
    assert_int_equal(dbx_error_wrap(&err, "ctx %s", "%d"), -EINVAL);
    snprintf(want, sizeof(want), "ctx %%d: bad '%%s%%n': %s", strerror(EINVAL));
    assert_string_equal(err->msg, want);
    dbx_error_free(&err);
}

static void test_sanitize(void **state) {
    char s[] = "ok\tline\x1b[31mred\x07\x7f\r\n\xc3\xa9";
    dbx_sanitize_printable(s);
    assert_string_equal(s, "ok\tline?[31mred????\xc3\xa9");
    assert_null(dbx_sanitize_printable(NULL));
}

/* ---- issue 13: processes (helper A) ---- */

static void test_ps_reply(void **state) {
    struct dbx_ps_entry e[2] = {
        {.pid = 42,
         .ppid = 1,
         .uid = 1000,
         .session = 3,
         .start_ms_ago = 1500,
         .cpu_ms = 20,
         .rss_bytes = 1 << 20,
         .user = "dev",
         .cmd = "python3 -m http.server",
         .detached = 1},
        {.pid = 43, .user = "", .cmd = ""},
    };
    struct dbx_buf b = {0};
    dbx_ps_reply_begin(&b, 77, 2);
    size_t want = 12;
    for (int i = 0; i < 2; i++) {
        dbx_ps_entry_encode(&b, &e[i]);
        want += dbx_ps_entry_size(&e[i]);
    }
    assert_int_equal(b.len, want);
    struct dbx_ps_reply r = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_ps_reply_decode(b.data, b.len, &r, &err), 0);
    assert_int_equal(r.token, 77);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.v[0].pid, 42);
    assert_int_equal(r.v[0].session, 3);
    assert_int_equal(r.v[0].rss_bytes, 1 << 20);
    assert_string_equal(r.v[0].cmd, "python3 -m http.server");
    assert_int_equal(r.v[0].detached, 1);
    assert_string_equal(r.v[1].user, "");
    dbx_ps_reply_free(&r);
    dbx_ps_reply_free(&r);

    /* every truncation, trailing bytes, a bad detached byte, a count that lies */
    for (size_t n = 0; n < b.len; n++) {
        assert_int_equal(dbx_ps_reply_decode(b.data, n, &r, &err), -EPROTO);
        assert_non_null(err);
        dbx_error_free(&err);
    }
    dbx_buf_put_u8(&b, 0);
    assert_int_equal(dbx_ps_reply_decode(b.data, b.len, &r, &err), -EPROTO);
    assert_non_null(strstr(err->msg, "trailing"));
    dbx_error_free(&err);
    b.data[b.len - 2] = 2; /* the second entry's detached byte */
    assert_int_equal(dbx_ps_reply_decode(b.data, b.len - 1, &r, &err), -EPROTO);
    dbx_error_free(&err);
    struct dbx_buf big = {0};
    dbx_ps_reply_begin(&big, 1, DBX_PS_MAX + 1);
    for (uint32_t i = 0; i < DBX_PS_MAX + 1; i++)
        dbx_ps_entry_encode(&big, &e[1]);
    assert_int_equal(dbx_ps_reply_decode(big.data, big.len, &r, &err), -EPROTO);
    dbx_error_free(&err);
    struct dbx_buf lie = {0};
    dbx_ps_reply_begin(&lie, 1, 1000);
    assert_int_equal(dbx_ps_reply_decode(lie.data, lie.len, &r, NULL), -EPROTO);
    /* a command line over the cap */
    struct dbx_buf longcmd = {0};
    char *cmd = dbx_xcalloc(1, DBX_PS_CMD_MAX + 2);
    memset(cmd, 'x', DBX_PS_CMD_MAX + 1);
    struct dbx_ps_entry l = {.user = "u", .cmd = cmd};
    dbx_ps_reply_begin(&longcmd, 1, 1);
    dbx_ps_entry_encode(&longcmd, &l);
    assert_int_equal(dbx_ps_reply_decode(longcmd.data, longcmd.len, &r, NULL), -EPROTO);
    free(cmd);
    dbx_buf_free(&longcmd);
    dbx_buf_free(&lie);
    dbx_buf_free(&big);
    dbx_buf_free(&b);
}

static void test_kill_frames(void **state) {
    uint8_t k[16];
    uint64_t token;
    uint32_t pid, sig;
    assert_int_equal(dbx_enc_kill(k, 9, 42, 15), 16);
    assert_int_equal(dbx_dec_kill(k, 16, &token, &pid, &sig), 0);
    assert_int_equal(token, 9);
    assert_int_equal(pid, 42);
    assert_int_equal(sig, 15);
    assert_int_equal(dbx_dec_kill(k, 15, &token, &pid, &sig), -EPROTO);
    dbx_enc_kill(k, 9, 0, 0);
    assert_int_equal(dbx_dec_kill(k, 16, &token, &pid, &sig), -EPROTO);
    dbx_enc_kill(k, 9, 0, 65);
    assert_int_equal(dbx_dec_kill(k, 16, &token, &pid, &sig), -EPROTO);

    struct dbx_buf b = {0};
    dbx_kill_reply_encode(&b, 5, ESRCH, "no such process");
    uint32_t status;
    char *msg = NULL;
    assert_int_equal(dbx_kill_reply_decode(b.data, b.len, &token, &status, &msg), 0);
    assert_int_equal(token, 5);
    assert_int_equal(status, ESRCH);
    assert_string_equal(msg, "no such process");
    free(msg);
    msg = NULL;
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(dbx_kill_reply_decode(b.data, n, &token, &status, &msg), -EPROTO);
    dbx_buf_put_u8(&b, 'x');
    assert_int_equal(dbx_kill_reply_decode(b.data, b.len, &token, &status, &msg), -EPROTO);
    assert_null(msg);
    dbx_buf_free(&b);
}

/* ---- issue 13: NOTICE and STATS (helper B) ---------------------------------------------- */

static void test_notice(void **state) {
    uint8_t b[DBX_NOTICE_LEN];
    struct dbx_notice in = {DBX_NOTICE_OOM, 2ull << 30, (2ull << 30) - 4096}, out = {0};
    assert_int_equal(dbx_enc_notice(b, &in), DBX_NOTICE_LEN);
    assert_int_equal(dbx_dec_notice(b, sizeof(b), &out), 0);
    assert_int_equal(out.kind, DBX_NOTICE_OOM);
    assert_true(out.limit == in.limit && out.value == in.value);
    /* every other length, and unknown kinds, leave *ret alone */
    uint8_t big[DBX_NOTICE_LEN + 1] = {0};
    memcpy(big, b, sizeof(b));
    struct dbx_notice untouched = {7, 7, 7};
    for (size_t n = 0; n <= sizeof(big); n++) {
        if (n == DBX_NOTICE_LEN) continue;
        assert_int_equal(dbx_dec_notice(big, n, &untouched), -EPROTO);
    }
    uint32_t kinds[] = {0, 3, 0xffffffffu};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(kinds); i++) {
        struct dbx_notice k = {kinds[i], 1, 1};
        dbx_enc_notice(b, &k);
        assert_int_equal(dbx_dec_notice(b, sizeof(b), &untouched), -EPROTO);
    }
    assert_int_equal(untouched.kind, 7);
    in.kind = DBX_NOTICE_PIDS;
    dbx_enc_notice(b, &in);
    assert_int_equal(dbx_dec_notice(b, sizeof(b), &out), 0);
    assert_int_equal(out.kind, DBX_NOTICE_PIDS);
}

static void stats_refused(const struct dbx_buf *b, const char *what) {
    struct dbx_stats st = {.token = 99};
    dbx_error *e = NULL;
    assert_int_equal(dbx_stats_decode(b->data, b->len, &st, &e), -EPROTO);
    assert_non_null(e);
    assert_non_null(strstr(e->msg, what));
    assert_int_equal(st.token, 99); /* untouched */
    dbx_error_free(&e);
}

static void test_stats_frame(void **state) {
    struct dbx_stats st = {.token = 0x1122334455667788ull};
    dbx_stats_add(&st, "memory_current", 64ull << 20);
    dbx_stats_add(&st, "memory_max", UINT64_MAX);
    dbx_stats_add(&st, "pids_current", 3);
    struct dbx_buf b = {0};
    dbx_stats_encode(&st, &b);
    struct dbx_stats got = {0};
    assert_int_equal(dbx_stats_decode(b.data, b.len, &got, NULL), 0);
    assert_true(got.token == st.token);
    assert_int_equal(got.n, 3);
    uint64_t v = 0;
    assert_true(dbx_stats_find(&got, "memory_max", &v) && v == UINT64_MAX);
    assert_true(dbx_stats_find(&got, "pids_current", &v) && v == 3);
    assert_false(dbx_stats_find(&got, "swap_current", &v));
    dbx_stats_clear(&got);
    /* every truncation, and a trailing byte */
    for (size_t n = 0; n < b.len; n++) {
        struct dbx_buf t = {0};
        dbx_buf_put(&t, b.data, n);
        stats_refused(&t, "truncated");
        dbx_buf_free(&t);
    }
    dbx_buf_put_u8(&b, 0);
    stats_refused(&b, "trailing");
    dbx_buf_free(&b);
    dbx_stats_clear(&st);

    /* an empty reply (a box without a cgroup) is fine */
    dbx_stats_encode(&(struct dbx_stats){.token = 1}, &b);
    assert_int_equal(dbx_stats_decode(b.data, b.len, &got, NULL), 0);
    assert_int_equal(got.n, 0);
    dbx_stats_clear(&got);
    dbx_buf_free(&b);

    /* too many counters, a count that lies, bad keys, a repeated key */
    dbx_buf_put_u64(&b, 1);
    dbx_buf_put_u32(&b, DBX_STATS_MAX + 1);
    stats_refused(&b, "more than");
    dbx_buf_free(&b);
    dbx_buf_put_u64(&b, 1);
    dbx_buf_put_u32(&b, 0xffffffffu);
    stats_refused(&b, "more than");
    dbx_buf_free(&b);
    const char *bad[] = {
        "", "Memory", "a-b", "a b", "\x1b[2J", "k\xc3\xa9", "abcdefghijklmnopqrstuvwxyz0123456"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        dbx_buf_put_u64(&b, 1);
        dbx_buf_put_u32(&b, 1);
        dbx_buf_put_str(&b, bad[i]);
        dbx_buf_put_u64(&b, 5);
        struct dbx_stats x = {0};
        assert_int_equal(dbx_stats_decode(b.data, b.len, &x, NULL), -EPROTO);
        dbx_buf_free(&b);
    }
    dbx_buf_put_u64(&b, 1);
    dbx_buf_put_u32(&b, 2);
    for (int i = 0; i < 2; i++) {
        dbx_buf_put_str(&b, "oom_kills");
        dbx_buf_put_u64(&b, (uint64_t)i);
    }
    stats_refused(&b, "repeated");
    dbx_buf_free(&b);
    dbx_buf_put_u64(&b, 1);
    dbx_buf_put_u32(&b, 1);
    dbx_buf_put_u32(&b, 3);
    dbx_buf_put(&b, "a\0b", 3);
    dbx_buf_put_u64(&b, 5);
    stats_refused(&b, "truncated"); /* a NUL inside a key does not decode as a string */
    dbx_buf_free(&b);

    /* garbage of every small length never decodes into something half-built */
    uint8_t junk[64];
    for (size_t n = 0; n < sizeof(junk); n++)
        junk[n] = (uint8_t)(n * 37 + 11);
    for (size_t n = 0; n <= sizeof(junk); n++) {
        struct dbx_stats x = {0};
        if (dbx_stats_decode(junk, n, &x, NULL) == 0) dbx_stats_clear(&x);
    }

    /* the encoder side caps what it adds */
    for (unsigned i = 0; i < DBX_STATS_MAX + 5; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%u", i);
        dbx_stats_add(&st, k, i);
    }
    assert_int_equal(st.n, DBX_STATS_MAX);
    dbx_stats_encode(&st, &b);
    assert_int_equal(dbx_stats_decode(b.data, b.len, &got, NULL), 0);
    assert_int_equal(got.n, DBX_STATS_MAX);
    dbx_stats_clear(&got);
    dbx_stats_clear(&st);
    dbx_buf_free(&b);
}

/* ---- issue 13: extra shares (helper D2) ---- */

static int shares_roundtrip(const struct dbx_share *v, uint32_t n, struct dbx_setup *got) {
    struct dbx_setup s = {.ws_tag = "workspace", .ws_path = "/home/me/p", .hostname = "h"};
    s.nshares = n;
    s.shares = (struct dbx_share *)v;
    struct dbx_buf b = {0};
    dbx_setup_encode(&s, &b);
    dbx_error *err = NULL;
    int r = dbx_setup_decode(b.data, b.len, got, &err);
    if (r == 0)
        assert_null(err);
    else
        assert_non_null(err);
    dbx_error_free(&err);
    dbx_buf_free(&b);
    return r;
}

static void test_setup_shares(void **state) {
    (void)state;
    const struct dbx_share ok[] = {
        {"share0", "/home/me/main/.git", 0}, {"share1", "/data", 1}, {"a-B_9", "/opt/x y", 1}};
    struct dbx_setup got = {0};
    assert_int_equal(shares_roundtrip(ok, 3, &got), 0);
    assert_int_equal(got.nshares, 3);
    assert_string_equal(got.shares[0].tag, "share0");
    assert_string_equal(got.shares[0].path, "/home/me/main/.git");
    assert_int_equal(got.shares[0].readonly, 0);
    assert_string_equal(got.shares[1].path, "/data");
    assert_int_equal(got.shares[1].readonly, 1);
    assert_string_equal(got.shares[2].tag, "a-B_9");
    dbx_setup_free(&got);
    assert_int_equal(shares_roundtrip(NULL, 0, &got), 0);
    assert_int_equal(got.nshares, 0);
    assert_null(got.shares);
    dbx_setup_free(&got);

    /* every truncation of a setup with shares fails */
    struct dbx_setup s = {.ws_tag = "workspace", .ws_path = "/w", .hostname = "h"};
    s.nshares = 2;
    s.shares = (struct dbx_share *)ok;
    struct dbx_buf b = {0};
    dbx_setup_encode(&s, &b);
    dbx_error *err = NULL;
    for (size_t n = 0; n < b.len; n++) {
        assert_int_equal(dbx_setup_decode(b.data, n, &got, &err), -EPROTO);
        dbx_error_free(&err);
    }
    dbx_buf_free(&b);

    static const struct {
        const char *tag, *path;
        uint8_t ro;
    } bad[] = {
        {"", "/data", 1},         {"a b", "/data", 1},
        {"a,b", "/data", 1},      {"workspace", "/data", 1},
        {"s", "data", 1},         {"s", "/", 1},
        {"s", "/data/", 1},       {"s", "/data//x", 1},
        {"s", "/data/../etc", 1}, {"s", "/data/./x", 1},
        {"s", "/proc", 1},        {"s", "/proc/1", 1},
        {"s", "/etc/x", 1},       {"s", "/usr", 1},
        {"s", "/lib64", 1},       {"s", "/lib/x", 1},
        {"s", "/run/x", 1},       {"s", "/home/me/p", 1},
        {"s", "/data", 2},        {"s", "/home/me/p/x", 1},
        {"s", "/home/me", 1},     {"0123456789012345678901234567890123456", "/d", 1},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        struct dbx_share one = {(char *)bad[i].tag, (char *)bad[i].path, bad[i].ro};
        if (shares_roundtrip(&one, 1, &got) == 0) fail_msg("accepted bad share %zu", i);
    }
    /* duplicates */
    const struct dbx_share dup_tag[] = {{"s", "/a", 1}, {"s", "/b", 1}};
    assert_int_equal(shares_roundtrip(dup_tag, 2, &got), -EPROTO);
    const struct dbx_share dup_path[] = {{"s", "/a", 1}, {"t", "/a", 1}};
    assert_int_equal(shares_roundtrip(dup_path, 2, &got), -EPROTO);
    const struct dbx_share nest[] = {{"s", "/a/b", 1}, {"t", "/a", 1}};
    assert_int_equal(shares_roundtrip(nest, 2, &got), -EPROTO);
    const struct dbx_share near[] = {{"s", "/a/b", 1}, {"t", "/a/bc", 1}, {"u", "/home/me/pp", 0}};
    assert_int_equal(shares_roundtrip(near, 3, &got), 0);
    dbx_setup_free(&got);
    /* the cap */
    struct dbx_share many[DBX_SHARES_MAX + 1];
    char tags[DBX_SHARES_MAX + 1][8], paths[DBX_SHARES_MAX + 1][16];
    for (unsigned i = 0; i <= DBX_SHARES_MAX; i++) {
        snprintf(tags[i], sizeof(tags[i]), "s%u", i);
        snprintf(paths[i], sizeof(paths[i]), "/d%u", i);
        many[i] = (struct dbx_share){tags[i], paths[i], 1};
    }
    assert_int_equal(shares_roundtrip(many, DBX_SHARES_MAX, &got), 0);
    dbx_setup_free(&got);
    assert_int_equal(shares_roundtrip(many, DBX_SHARES_MAX + 1, &got), -EPROTO);
    /* a garbage count */
    struct dbx_buf g = {0};
    dbx_buf_put_u32(&g, UINT32_MAX);
    struct dbx_cursor c = {g.data, g.len};
    uint32_t n = 0;
    struct dbx_share *v = NULL;
    assert_int_equal(dbx_shares_decode(&c, "w", "/w", &n, &v, &err), -EPROTO);
    dbx_error_free(&err);
    dbx_buf_free(&g);
    assert_true(dbx_share_path_reserved("/sys/x"));
    assert_false(dbx_share_path_reserved("/home/x"));
    assert_false(dbx_share_path_reserved("/data"));
}

/* ---- issue 12: TIMING (helper latency) ---- */

static void timing_refused(const struct dbx_buf *b, const char *what) {
    struct dbx_timing t = {.n = 7};
    _cleanup_error_ dbx_error *e = NULL;
    assert_int_equal(dbx_timing_decode(b->data, b->len, &t, &e), -EPROTO);
    assert_non_null(e);
    assert_int_equal(t.n, 7); /* untouched */
    (void)what;
}

static void put_timing(struct dbx_buf *b, uint32_t n, const char *const *keys) {
    dbx_buf_put_u32(b, n);
    for (const char *const *k = keys; *k; k++) {
        dbx_buf_put_str(b, *k);
        dbx_buf_put_u64(b, 1);
    }
}

static void test_timing_frame(void **state) {
    struct dbx_timing t = {0};
    assert_true(dbx_timing_add(&t, "g_fork", 900));
    assert_true(dbx_timing_add(&t, "s_recv_at", UINT64_MAX));
    assert_true(dbx_timing_add(&t, "g_total", 0));
    /* refused by add: a repeated key, bad keys */
    assert_false(dbx_timing_add(&t, "g_fork", 1));
    assert_false(dbx_timing_add(&t, "", 1));
    assert_false(dbx_timing_add(&t, "G_fork", 1));
    assert_false(dbx_timing_add(&t, "g-fork", 1));
    assert_false(dbx_timing_add(&t, "abcdefghijklmnopqrstuvwxy", 1)); /* 25 */
    assert_true(dbx_timing_add(&t, "abcdefghijklmnopqrstuvwx", 1));   /* 24 */
    assert_int_equal(t.n, 4);
    struct dbx_buf b = {0};
    dbx_timing_encode(&t, &b);
    struct dbx_timing got = {0};
    assert_int_equal(dbx_timing_decode(b.data, b.len, &got, NULL), 0);
    assert_int_equal(got.n, 4);
    /* order kept: the phases are printed as they happened */
    assert_string_equal(got.v[0].key, "g_fork");
    assert_string_equal(got.v[1].key, "s_recv_at");
    uint64_t v;
    assert_true(dbx_timing_find(&got, "g_fork", &v) && v == 900);
    assert_true(dbx_timing_find(&got, "s_recv_at", &v) && v == UINT64_MAX);
    assert_true(dbx_timing_find(&got, "g_total", &v) && v == 0);
    assert_false(dbx_timing_find(&got, "g_exec", &v));
    /* every truncation, and a trailing byte */
    for (size_t n = 0; n < b.len; n++) {
        struct dbx_buf x = {0};
        dbx_buf_put(&x, b.data, n);
        timing_refused(&x, "truncated");
        dbx_buf_free(&x);
    }
    dbx_buf_put_u8(&b, 0);
    timing_refused(&b, "trailing");
    dbx_buf_free(&b);

    /* a hostile guest's frame: its s_* keys are dropped (never passed off as the host's), and
     * 32 g_* keys leave room for the supervisor's own five */
    struct dbx_timing hostile = {0}, kept;
    assert_true(dbx_timing_add(&hostile, "s_recv_at", 1));
    for (unsigned i = 0; hostile.n < DBX_TIMING_MAX; i++) {
        char k[16];
        snprintf(k, sizeof(k), "g_k%u", i);
        assert_true(dbx_timing_add(&hostile, k, i));
    }
    dbx_timing_filter(&hostile, "g_", 5, &kept);
    assert_int_equal(kept.n, DBX_TIMING_MAX - 5);
    assert_false(dbx_timing_find(&kept, "s_recv_at", NULL));
    assert_string_equal(kept.v[0].key, "g_k0");
    for (unsigned i = 0; i < 5; i++) {
        char k[16];
        snprintf(k, sizeof(k), "s_%u", i);
        assert_true(dbx_timing_add(&kept, k, i));
    }

    /* empty is fine */
    dbx_timing_encode(&(struct dbx_timing){0}, &b);
    assert_int_equal(dbx_timing_decode(b.data, b.len, &got, NULL), 0);
    assert_int_equal(got.n, 0);
    dbx_buf_free(&b);

    /* at most DBX_TIMING_MAX: add drops the next, decode refuses a count over it */
    struct dbx_timing full = {0};
    for (unsigned i = 0; i < DBX_TIMING_MAX; i++) {
        char k[16];
        snprintf(k, sizeof(k), "p%u", i);
        assert_true(dbx_timing_add(&full, k, i));
    }
    assert_false(dbx_timing_add(&full, "more", 1));
    dbx_timing_encode(&full, &b);
    assert_int_equal(dbx_timing_decode(b.data, b.len, &got, NULL), 0);
    assert_int_equal(got.n, DBX_TIMING_MAX);
    dbx_buf_free(&b);
    put_timing(&b, DBX_TIMING_MAX + 1, (const char *const[]){"a", NULL});
    timing_refused(&b, "count over the cap");
    dbx_buf_free(&b);
    /* a count that lies, bad and repeated keys */
    put_timing(&b, 2, (const char *const[]){"a", NULL});
    timing_refused(&b, "count lies");
    dbx_buf_free(&b);
    static const char *const bad_keys[][3] = {{"Bad", NULL},
                                              {"a b", NULL},
                                              {"", NULL},
                                              {"k", "k", NULL},
                                              {"abcdefghijklmnopqrstuvwxy", NULL}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad_keys); i++) {
        uint32_t n = 0;
        while (bad_keys[i][n])
            n++;
        put_timing(&b, n, bad_keys[i]);
        timing_refused(&b, "bad key");
        dbx_buf_free(&b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_roundtrip),
        cmocka_unit_test(test_hdr_check_rejects),
        cmocka_unit_test(test_reader_byte_by_byte),
        cmocka_unit_test(test_reader_take),
        cmocka_unit_test(test_clock_codec),
        cmocka_unit_test(test_reader_one_feed),
        cmocka_unit_test(test_reader_oversized_skipped),
        cmocka_unit_test(test_reader_bad_version_and_type),
        cmocka_unit_test(test_reader_max_frame),
        cmocka_unit_test(test_reader_big_exec),
        cmocka_unit_test(test_exec_roundtrip),
        cmocka_unit_test(test_exec_rejects_truncated_and_trailing),
        cmocka_unit_test(test_exec_rejects_counts),
        cmocka_unit_test(test_exec_rejects_strings),
        cmocka_unit_test(test_exec_rejects_flags_and_empty),
        cmocka_unit_test(test_terminfo_check),
        cmocka_unit_test(test_setup_roundtrip_and_rejects),
        cmocka_unit_test(test_setup_ca_pem),
        cmocka_unit_test(test_setup_tz),
        cmocka_unit_test(test_caps_admin),
        cmocka_unit_test(test_user_is_root),
        cmocka_unit_test(test_credit),
        cmocka_unit_test(test_sock_open),
        cmocka_unit_test(test_parse_ipv4),
        cmocka_unit_test(test_plan_network),
        cmocka_unit_test(test_plan_caps_user),
        cmocka_unit_test(test_plan_no_randomize),
        cmocka_unit_test(test_plan_corpus_seeds),
        cmocka_unit_test(test_exit),
        cmocka_unit_test(test_exit_code),
        cmocka_unit_test(test_resize_u32_u64),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_protected_frame),
        cmocka_unit_test(test_error_msg),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_get_strv),
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test_setup_teardown(test_write_read_file, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_symlinks_refused, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_ps_reply),
        cmocka_unit_test(test_kill_frames),
        /* issue 13: NOTICE and STATS (helper B) */
        cmocka_unit_test(test_notice),
        cmocka_unit_test(test_stats_frame),
        cmocka_unit_test(test_timing_frame),
        cmocka_unit_test(test_setup_shares),
    };
    return cmocka_run_group_tests_name("protocol", tests, NULL, NULL);
}

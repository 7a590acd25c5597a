/* tests/unit/test-supervisor-stats.c: the supervisor's side of STATS and NOTICE
 * (sandbox/supervisor-stats.c) without a VM: a client's request goes to the guest under the
 * supervisor's own token, the reply comes back under the client's, and whatever the guest sends
 * instead (garbage, truncation, an unknown token, silence) costs the waiting client an error at
 * most, never the supervisor. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers.h"
#include "sandbox/supervisor-internal.h"

#include <fcntl.h>

/* The one frame in b (header and payload): its type, and its payload in p and n. */
static uint8_t one_frame(struct dbx_buf *b, const uint8_t **p, uint32_t *n) {
    struct dbx_frame_hdr h;
    assert_true(dbx_buf_avail(b) >= DBX_FRAME_HDR);
    dbx_hdr_decode(dbx_buf_head(b), &h);
    assert_int_equal(dbx_buf_avail(b), DBX_FRAME_HDR + h.len);
    *p = dbx_buf_head(b) + DBX_FRAME_HDR;
    *n = h.len;
    return h.type;
}

struct fixture {
    struct sup s;
    struct client c;
};

static int setup(void **state) {
    struct fixture *f = calloc(1, sizeof(*f));
    f->s.guest.ready = true;
    f->s.relay.agent_fd = 1000; /* only checked to be open: nothing is written to it */
    f->c.fd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fixture *f = *state;
    dbx_buf_free(&f->s.relay.agent_out);
    dbx_buf_free(&f->c.out);
    free(f);
    return 0;
}

/* The client asks with token 77; returns the token the guest was asked with. */
static uint64_t ask(struct fixture *f) {
    uint8_t t[8];
    f->c.kind = C_NEW;
    dbx_buf_free(&f->c.out);
    dbx_buf_free(&f->s.relay.agent_out);
    sup_stats_request(&f->s, &f->c, t, dbx_enc_u64(t, 77));
    assert_int_equal(f->c.kind, C_STATS);
    const uint8_t *p;
    uint32_t n;
    assert_int_equal(one_frame(&f->s.relay.agent_out, &p, &n), DBX_MSG_STATS);
    uint64_t g;
    assert_int_equal(dbx_dec_u64(p, n, &g), 0);
    return g;
}

/* The guest answers token g with st: nothing reaches the client (nobody waits for it). */
static void reply_dropped(struct fixture *f, struct dbx_stats *st, uint64_t g) {
    struct dbx_buf b = {0};
    dbx_buf_free(&f->c.out);
    st->token = g;
    dbx_stats_encode(st, &b);
    sup_stats_reply(&f->s, b.data, (uint32_t)b.len);
    dbx_buf_free(&b);
    assert_int_equal(dbx_buf_avail(&f->c.out), 0);
}

static void assert_client_error(struct fixture *f, const char *what) {
    const uint8_t *p;
    uint32_t n, code;
    assert_int_equal(one_frame(&f->c.out, &p, &n), DBX_MSG_ERROR);
    char *m = NULL;
    assert_int_equal(dbx_error_msg_decode(p, n, &code, &m), 0);
    assert_non_null(strstr(m, what));
    free(m);
    assert_int_equal(f->c.kind, C_CLOSING);
}

static void test_round_trip(void **state) {
    struct fixture *f = *state;
    uint64_t g = ask(f);
    struct dbx_stats st = {.token = g};
    dbx_stats_add(&st, "memory_current", 1234);
    struct dbx_buf b = {0};
    dbx_stats_encode(&st, &b);
    dbx_stats_clear(&st);
    sup_stats_reply(&f->s, b.data, (uint32_t)b.len);
    dbx_buf_free(&b);
    const uint8_t *p;
    uint32_t n;
    assert_int_equal(one_frame(&f->c.out, &p, &n), DBX_MSG_STATS_REPLY);
    assert_int_equal(dbx_stats_decode(p, n, &st, NULL), 0);
    assert_int_equal(st.token, 77); /* the client's own */
    uint64_t v;
    assert_true(dbx_stats_find(&st, "memory_current", &v) && v == 1234);
    dbx_stats_clear(&st);
    assert_int_equal(f->c.kind, C_CLOSING);
    /* the same reply again: nobody waits any more, dropped */
    reply_dropped(f, &st, g);
}

static void test_guest_garbage(void **state) {
    struct fixture *f = *state;
    uint64_t g = ask(f);
    /* garbage of every length up to 64 bytes, none with the waiting token */
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(0xa5 ^ (i * 29));
    for (uint32_t n = 0; n <= sizeof(junk); n++)
        sup_stats_reply(&f->s, junk, n);
    assert_int_equal(dbx_buf_avail(&f->c.out), 0);
    assert_int_equal(f->c.kind, C_STATS);
    /* garbage that carries the token: the client gets an error, not a hang */
    struct dbx_buf b = {0};
    dbx_buf_put_u64(&b, g);
    dbx_buf_put_u32(&b, 1000);
    sup_stats_reply(&f->s, b.data, (uint32_t)b.len);
    dbx_buf_free(&b);
    assert_client_error(f, "malformed stats reply");
}

static void test_timeout_and_gone(void **state) {
    struct fixture *f = *state;
    ask(f);
    sup_stats_expire(&f->s);
    assert_int_equal(dbx_buf_avail(&f->c.out), 0); /* not yet */
    f->s.stats.wait[0].deadline_ms = 0;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(f->s.stats.wait); i++)
        if (f->s.stats.wait[i].c) f->s.stats.wait[i].deadline_ms = 0;
    sup_stats_expire(&f->s);
    assert_client_error(f, "did not answer");
    /* a client freed while waiting leaves nothing behind */
    uint64_t g = ask(f);
    sup_stats_client_gone(&f->s, &f->c);
    struct dbx_stats st = {0};
    reply_dropped(f, &st, g);
}

static void test_refusals(void **state) {
    struct fixture *f = *state;
    uint8_t t[8] = {0};
    sup_stats_request(&f->s, &f->c, t, 7); /* short token */
    assert_client_error(f, "malformed");
    dbx_buf_free(&f->c.out);
    f->c.kind = C_NEW;
    f->s.guest.ready = false;
    sup_stats_request(&f->s, &f->c, t, dbx_enc_u64(t, 1));
    assert_client_error(f, "not running");
    f->s.guest.ready = true;
    /* more waiting clients than slots: the extra one is told */
    struct client many[17] = {0};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(many); i++)
        sup_stats_request(&f->s, &many[i], t, dbx_enc_u64(t, i));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(many) - 1; i++)
        assert_int_equal(many[i].kind, C_STATS);
    assert_int_equal(many[16].kind, C_CLOSING);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(many); i++) {
        sup_stats_client_gone(&f->s, &many[i]);
        dbx_buf_free(&many[i].out);
    }
}

static void test_notice(void **state) {
    struct fixture *f = *state;
    uint8_t b[DBX_NOTICE_LEN + 1] = {0};
    struct dbx_notice nt = {DBX_NOTICE_OOM, 64u << 20, 63u << 20};
    dbx_enc_notice(b, &nt);
    struct sess x = {.gsid = 3, .log_fd = -1};
    assert_true(sup_notice_ok(&f->s, &x, b, DBX_NOTICE_LEN));
    static const uint32_t bad_len[] = {DBX_NOTICE_LEN - 1, DBX_NOTICE_LEN + 1, 0};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad_len); i++) {
        x = (struct sess){.gsid = 3, .log_fd = -1};
        assert_false(sup_notice_ok(&f->s, &x, bad_len[i] ? b : NULL, bad_len[i]));
    }
    nt.kind = 9;
    dbx_enc_notice(b, &nt);
    x = (struct sess){.gsid = 3, .log_fd = -1};
    assert_false(sup_notice_ok(&f->s, &x, b, DBX_NOTICE_LEN));
}

/* A guest that floods NOTICE on one session gets one journal line, not a rotated journal. */
static void test_notice_flood(void **state) {
    struct fixture *f = *state;
    char dir[] = "/tmp/devbox-test-notice.XXXXXX";
    assert_non_null(mkdtemp(dir));
    f->s.proj.state_dir = dir;
    uint8_t b[DBX_NOTICE_LEN];
    struct dbx_notice nt = {DBX_NOTICE_PIDS, 100, 100};
    dbx_enc_notice(b, &nt);
    struct sess x = {.gsid = 4, .log_fd = -1};
    assert_true(sup_notice_ok(&f->s, &x, b, DBX_NOTICE_LEN));
    for (int i = 0; i < 10000; i++)
        assert_false(sup_notice_ok(&f->s, &x, b, DBX_NOTICE_LEN));
    assert_int_equal(x.notices, 2);
    /* another session still has its own */
    struct sess y = {.gsid = 5, .log_fd = -1};
    assert_true(sup_notice_ok(&f->s, &y, b, DBX_NOTICE_LEN));
    _cleanup_free_ char *path = dbx_xasprintf("%s/events.jsonl", dir);
    _cleanup_free_ char *text = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, path, 1 << 20, &text, NULL, NULL), 0);
    size_t lines = 0;
    for (const char *q = text; *q; q++)
        lines += *q == '\n';
    assert_int_equal(lines, 2);
    test_rm_tree(dir);
    f->s.proj.state_dir = NULL;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notice_flood, setup, teardown),
    };
    return cmocka_run_group_tests_name("supervisor-stats", tests, NULL, NULL);
}

/* Unit tests: processes (issue 13).  `--timeout` durations parse strictly; the supervisor's PS
 * and KILL relay answers a client with the guest's reply under the client's token, marks
 * detached sessions, and survives garbage, oversized and unasked-for replies; a detached
 * session's output goes to its log (rotated once) and is credited back, and its end writes
 * <pid>.exit. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "helpers.h"
#include "sandbox/supervisor-internal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

static void test_duration(void **state) {
    static const struct {
        const char *s;
        uint32_t ms;
    } good[] = {{"30", 30000},
                {"30s", 30000},
                {"5m", 300000},
                {"1h", 3600000},
                {"2d", 172800000},
                {"1", 1000},
                {"30d", DBX_EXEC_TIMEOUT_MAX},
                {"0001s", 1000}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(good); i++) {
        uint32_t ms = 0;
        assert_int_equal(dbx_parse_duration_ms(good[i].s, &ms, NULL), 0);
        assert_int_equal(ms, good[i].ms);
    }
    static const char *const bad[] = {"",   "0",   "0s",  "5x",  "1.5s", "-1",
                                      " 5", "5s ", "31d", "s",   "5ss",  "99999999999",
                                      "5S", "+5",  "1e3", "5ms", "721h"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        uint32_t ms = 7;
        dbx_error *err = NULL;
        assert_int_equal(dbx_parse_duration_ms(bad[i], &ms, &err), -EINVAL);
        assert_int_equal(ms, 7);
        assert_non_null(strstr(err->msg, "invalid duration"));
        dbx_error_free(&err);
    }
}

/* ---- the supervisor's relay ----------------------------------------------------------- */

static struct sup *sup_new(void) {
    struct sup *s = dbx_xcalloc(1, sizeof(*s));
    s->guest.ready = true;
    s->relay.listen_fd = -1;
    s->relay.agent_fd = 1000; /* only checked to be open: frames queue in agent_out */
    return s;
}

static void sup_del(struct sup *s) {
    dbx_buf_free(&s->relay.agent_out);
    sup_procs_free(s);
    free(s);
}

/* The one frame queued in buf (consumed); its payload copied to *p. */
static struct dbx_frame_hdr take_frame(struct dbx_buf *b, uint8_t **p) {
    struct dbx_reader r = {0};
    dbx_reader_feed(&r, dbx_buf_head(b), dbx_buf_avail(b));
    struct dbx_frame_hdr h;
    const uint8_t *pl = NULL;
    assert_int_equal(dbx_reader_next(&r, &h, &pl, NULL), DBX_READ_FRAME);
    *p = dbx_xmalloc(h.len + 1);
    memcpy(*p, pl, h.len);
    b->len = b->off = 0;
    dbx_reader_free(&r);
    return h;
}

/* A client sends PS with its token; returns the supervisor's token to the guest. */
static uint64_t client_ps(struct sup *s, struct client *c, uint64_t ctoken) {
    uint8_t b[8];
    struct dbx_frame_hdr h = {.type = DBX_MSG_PS, .len = (uint32_t)dbx_enc_u64(b, ctoken)};
    sup_procs_client_frame(s, c, &h, b);
    assert_int_equal(c->kind, C_REQ);
    _cleanup_free_ uint8_t *p = NULL;
    struct dbx_frame_hdr g = take_frame(&s->relay.agent_out, &p);
    assert_int_equal(g.type, DBX_MSG_PS);
    assert_int_equal(g.session, 0);
    uint64_t t;
    assert_int_equal(dbx_dec_u64(p, g.len, &t), 0);
    return t;
}

static void guest_says(struct sup *s, uint8_t type, const void *p, size_t n) {
    struct dbx_frame_hdr h = {.type = type, .len = (uint32_t)n};
    sup_procs_agent_frame(s, &h, p);
}

static void assert_client_error(struct client *c) {
    _cleanup_free_ uint8_t *p = NULL;
    struct dbx_frame_hdr h = take_frame(&c->out, &p);
    assert_int_equal(h.type, DBX_MSG_ERROR);
    assert_int_equal(c->kind, C_CLOSING);
}

static void test_ps_relay(void **state) {
    struct sup *s = sup_new();
    struct client c1 = {.fd = -1}, c2 = {.fd = -1}, c3 = {.fd = -1};

    /* garbage: the waiting client is told, the supervisor goes on */
    uint64_t t1 = client_ps(s, &c1, 111);
    struct dbx_buf g = {0};
    dbx_ps_reply_begin(&g, t1, 1);
    dbx_buf_put(&g, "junk", 4);
    guest_says(s, DBX_MSG_PS_REPLY, g.data, g.len);
    assert_client_error(&c1);
    dbx_buf_free(&g);

    /* oversized: more entries than DBX_PS_MAX */
    uint64_t t2 = client_ps(s, &c2, 222);
    struct dbx_ps_entry e = {.pid = 9, .user = "u", .cmd = "c"};
    dbx_ps_reply_begin(&g, t2, DBX_PS_MAX + 1);
    for (uint32_t i = 0; i < DBX_PS_MAX + 1; i++)
        dbx_ps_entry_encode(&g, &e);
    guest_says(s, DBX_MSG_PS_REPLY, g.data, g.len);
    assert_client_error(&c2);
    dbx_buf_free(&g);

    /* short and empty payloads, a reply nobody asked for, a kill reply for a ps token */
    guest_says(s, DBX_MSG_PS_REPLY, "", 0);
    guest_says(s, DBX_MSG_PS_REPLY, "\1\2\3", 3);
    guest_says(s, DBX_MSG_KILL_REPLY, "\1\2\3", 3);
    dbx_ps_reply_begin(&g, 999, 0);
    guest_says(s, DBX_MSG_PS_REPLY, g.data, g.len);
    dbx_buf_free(&g);

    /* a good reply: the client's token, detached marked from the session table */
    uint64_t t3 = client_ps(s, &c3, 333);
    struct dbx_buf kb = {0};
    dbx_kill_reply_encode(&kb, t3, 0, "");
    guest_says(s, DBX_MSG_KILL_REPLY, kb.data, kb.len); /* the wrong kind: not c3's answer */
    dbx_buf_free(&kb);
    assert_int_equal(dbx_buf_avail(&c3.out), 0);
    s->relay.sess[3] = (struct sess){.gsid = 3, .detached = true, .log_fd = -1};
    s->relay.sess[4] = (struct sess){.gsid = 4, .log_fd = -1};
    struct dbx_ps_entry v[3] = {
        {.pid = 10, .session = 3, .user = "dev", .cmd = "httpd", .detached = 1},
        {.pid = 11, .session = 4, .user = "dev", .cmd = "sh"},
        {.pid = 12, .session = 0, .user = "root", .cmd = "x", .detached = 1}, /* the guest lies */
    };
    dbx_ps_reply_begin(&g, t3, 3);
    for (int i = 0; i < 3; i++)
        dbx_ps_entry_encode(&g, &v[i]);
    guest_says(s, DBX_MSG_PS_REPLY, g.data, g.len);
    dbx_buf_free(&g);
    _cleanup_free_ uint8_t *p = NULL;
    struct dbx_frame_hdr h = take_frame(&c3.out, &p);
    assert_int_equal(h.type, DBX_MSG_PS_REPLY);
    assert_int_equal(c3.kind, C_CLOSING);
    struct dbx_ps_reply r = {0};
    assert_int_equal(dbx_ps_reply_decode(p, h.len, &r, NULL), 0);
    assert_int_equal(r.token, 333);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.v[0].detached, 1);
    assert_int_equal(r.v[1].detached, 0);
    assert_int_equal(r.v[2].detached, 0);
    dbx_ps_reply_free(&r);

    /* a client that went away is forgotten: its reply is dropped */
    struct client c4 = {.fd = -1};
    uint64_t t4 = client_ps(s, &c4, 444);
    sup_procs_client_gone(s, &c4);
    dbx_ps_reply_begin(&g, t4, 0);
    guest_says(s, DBX_MSG_PS_REPLY, g.data, g.len);
    assert_int_equal(dbx_buf_avail(&c4.out), 0);
    dbx_buf_free(&g);

    /* a malformed request from a client, and one while the VM stops */
    struct client c5 = {.fd = -1}, c6 = {.fd = -1};
    struct dbx_frame_hdr bad = {.type = DBX_MSG_KILL, .len = 3};
    sup_procs_client_frame(s, &c5, &bad, (const uint8_t *)"abc");
    assert_client_error(&c5);
    s->guest.stopping = true;
    uint8_t b8[8];
    struct dbx_frame_hdr ps = {.type = DBX_MSG_PS, .len = (uint32_t)dbx_enc_u64(b8, 1)};
    sup_procs_client_frame(s, &c6, &ps, b8);
    assert_client_error(&c6);

    struct client *all[] = {&c1, &c2, &c3, &c4, &c5, &c6};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(all); i++)
        dbx_buf_free(&all[i]->out);
    sup_del(s);
}

static void test_kill_relay(void **state) {
    struct sup *s = sup_new();
    struct client c = {.fd = -1};
    uint8_t k[16];
    struct dbx_frame_hdr h = {.type = DBX_MSG_KILL, .len = (uint32_t)dbx_enc_kill(k, 55, 42, 15)};
    sup_procs_client_frame(s, &c, &h, k);
    _cleanup_free_ uint8_t *p = NULL;
    struct dbx_frame_hdr g = take_frame(&s->relay.agent_out, &p);
    uint64_t t;
    uint32_t pid, sig;
    assert_int_equal(g.type, DBX_MSG_KILL);
    assert_int_equal(dbx_dec_kill(p, g.len, &t, &pid, &sig), 0);
    assert_int_equal(pid, 42);
    assert_int_equal(sig, 15);
    struct dbx_buf b = {0};
    dbx_kill_reply_encode(&b, t, ESRCH, "no process 42 in the box");
    guest_says(s, DBX_MSG_KILL_REPLY, b.data, b.len);
    dbx_buf_free(&b);
    _cleanup_free_ uint8_t *q = NULL;
    struct dbx_frame_hdr r = take_frame(&c.out, &q);
    assert_int_equal(r.type, DBX_MSG_KILL_REPLY);
    uint32_t status;
    _cleanup_free_ char *msg = NULL;
    assert_int_equal(dbx_kill_reply_decode(q, r.len, &t, &status, &msg), 0);
    assert_int_equal(t, 55);
    assert_int_equal(status, ESRCH);
    dbx_buf_free(&c.out);
    sup_del(s);
}

static void test_ps_expiry(void **state) {
    struct sup *s = sup_new();
    struct client c = {.fd = -1}, d = {.fd = -1};
    client_ps(s, &c, 1);
    sup_procs_expire(s, dbx_now_ms());
    assert_int_equal(dbx_buf_avail(&c.out), 0); /* not yet */
    assert_int_equal(c.kind, C_REQ);
    sup_procs_expire(s, dbx_now_ms() + 10001);
    _cleanup_free_ uint8_t *p = NULL;
    struct dbx_frame_hdr h = take_frame(&c.out, &p);
    assert_int_equal(h.type, DBX_MSG_ERROR);
    assert_int_equal(c.kind, C_CLOSING);
    /* a reply after that answers nobody */
    sup_procs_expire(s, UINT64_MAX);
    assert_int_equal(dbx_buf_avail(&c.out), 0);

    /* no agent channel (the VM is going away): refused at once */
    s->relay.agent_fd = -1;
    uint8_t b[8];
    struct dbx_frame_hdr q = {.type = DBX_MSG_PS, .len = (uint32_t)dbx_enc_u64(b, 2)};
    sup_procs_client_frame(s, &d, &q, b);
    assert_client_error(&d);
    assert_int_equal(dbx_buf_avail(&s->relay.agent_out), 0);
    dbx_buf_free(&c.out);
    dbx_buf_free(&d.out);
    sup_del(s);
}

/* ---- detached sessions ---------------------------------------------------------------- */

static off_t file_size(const char *dir, const char *name) {
    _cleanup_free_ char *p = dbx_xasprintf("%s/procs/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

static void frame_to(struct sup *s, struct sess *x, uint8_t type, const void *p, size_t n) {
    struct dbx_frame_hdr h = {.type = type, .session = x->gsid, .len = (uint32_t)n};
    sup_procs_detached_frame(s, x, &h, p);
}

static void test_detached_log(void **state) {
    char tmpl[] = "/tmp/devbox-test-procs.XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    struct sup *s = sup_new();
    s->proj.state_dir = tmpl;
    struct client c = {.fd = -1, .kind = C_EXEC, .gsid = 5};
    struct sess *x = &s->relay.sess[5];
    *x = (struct sess){.gsid = 5, .c = &c, .detached = true, .log_fd = -1};

    /* files of an earlier process with the same pid go */
    _cleanup_free_ char *dir = dbx_xasprintf("%s/procs", tmpl);
    assert_int_equal(mkdir(dir, 0700), 0);
    _cleanup_free_ char *stale1 = dbx_xasprintf("%s/42.log.1", dir);
    _cleanup_free_ char *stale2 = dbx_xasprintf("%s/42.exit", dir);
    test_write_file(stale1, "old\n", 0600);
    test_write_file(stale2, "0\n", 0600);
    uint8_t b[4];
    frame_to(s, x, DBX_MSG_STARTED, b, dbx_enc_u32(b, 42));
    assert_int_equal(c.kind, C_CLOSING);
    assert_null(x->c);
    assert_int_equal(c.gsid, 0);
    _cleanup_free_ uint8_t *p = NULL;
    struct dbx_frame_hdr h = take_frame(&c.out, &p);
    assert_int_equal(h.type, DBX_MSG_STARTED);
    assert_int_equal(file_size(tmpl, "42.log"), 0);
    assert_int_equal(file_size(tmpl, "42.log.1"), -1);
    assert_int_equal(file_size(tmpl, "42.exit"), -1);

    frame_to(s, x, DBX_MSG_STDOUT, "hello\n", 6);
    frame_to(s, x, DBX_MSG_STDERR, "oops\n", 5);
    frame_to(s, x, DBX_MSG_STDOUT, NULL, 0);
    assert_int_equal(file_size(tmpl, "42.log"), 11);
    /* the output is credited back to the guest: two CREDIT frames */
    struct dbx_reader r = {0};
    dbx_reader_feed(&r, dbx_buf_head(&s->relay.agent_out), dbx_buf_avail(&s->relay.agent_out));
    struct dbx_frame_hdr ch;
    const uint8_t *cp;
    uint8_t st;
    uint32_t n;
    assert_int_equal(dbx_reader_next(&r, &ch, &cp, NULL), DBX_READ_FRAME);
    assert_int_equal(ch.type, DBX_MSG_CREDIT);
    assert_int_equal(dbx_dec_credit(cp, ch.len, &st, &n), 0);
    assert_int_equal(st, DBX_STREAM_STDOUT);
    assert_int_equal(n, 6);
    assert_int_equal(dbx_reader_next(&r, &ch, &cp, NULL), DBX_READ_FRAME);
    assert_int_equal(dbx_dec_credit(cp, ch.len, &st, &n), 0);
    assert_int_equal(st, DBX_STREAM_STDERR);
    assert_int_equal(dbx_reader_next(&r, &ch, &cp, NULL), DBX_READ_NEED_MORE);
    dbx_reader_free(&r);
    s->relay.agent_out.len = s->relay.agent_out.off = 0;

    /* past 4 MiB the log rotates once: .log.1 holds the old bytes, .log starts again */
    static uint8_t chunk[DBX_DATA_CHUNK];
    memset(chunk, 'x', sizeof(chunk));
    for (unsigned i = 0; i < (SUP_PROCS_LOG_MAX / DBX_DATA_CHUNK) * 2 + 1; i++) {
        frame_to(s, x, DBX_MSG_STDOUT, chunk, sizeof(chunk));
        s->relay.agent_out.len = s->relay.agent_out.off = 0;
    }
    assert_true(file_size(tmpl, "42.log.1") > 0);
    assert_true(file_size(tmpl, "42.log.1") <= (off_t)SUP_PROCS_LOG_MAX);
    assert_true(file_size(tmpl, "42.log") <= (off_t)SUP_PROCS_LOG_MAX);

    uint8_t e[5];
    frame_to(s, x, DBX_MSG_EXIT, e, dbx_enc_exit(e, true, 15));
    assert_int_equal(x->log_fd, -1);
    _cleanup_free_ char *ex = dbx_xasprintf("%s/procs/42.exit", tmpl);
    _cleanup_free_ char *text = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, ex, 64, &text, NULL, NULL), 0);
    assert_string_equal(text, "143\n");

    /* the same pid again (a later boot): the old rotation and exit files go */
    *x = (struct sess){.gsid = 5, .detached = true, .log_fd = -1};
    frame_to(s, x, DBX_MSG_STARTED, b, dbx_enc_u32(b, 42));
    assert_int_equal(file_size(tmpl, "42.log.1"), -1);
    assert_int_equal(file_size(tmpl, "42.exit"), -1);
    frame_to(s, x, DBX_MSG_ERROR, "", 0);
    assert_int_equal(x->log_fd, -1);
    assert_true(file_size(tmpl, "42.exit") > 0);

    dbx_buf_free(&c.out);
    test_rm_tree(tmpl);
    sup_del(s);
}

/* ---- through the relay: frames the guest writes on the agent channel ------------------ */

struct relay {
    struct sup *s;
    int guest; /* the guest's end of the channel */
    char dir[40];
};

static void relay_new(struct relay *r) {
    snprintf(r->dir, sizeof(r->dir), "/tmp/devbox-test-relay.XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    r->s = sup_new();
    r->s->proj.state_dir = r->dir;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    r->s->relay.agent_fd = sv[0];
    r->guest = sv[1];
}

static void relay_del(struct relay *r) {
    for (size_t i = 0; i < SESS_SLOTS; i++)
        if (r->s->relay.sess[i].log_fd > 0) close(r->s->relay.sess[i].log_fd);
    close(r->s->relay.agent_fd);
    close(r->guest);
    dbx_reader_free(&r->s->relay.agent_rd);
    test_rm_tree(r->dir);
    sup_del(r->s);
}

/* A session as client_frame_new makes it (journal line included). */
static struct sess *relay_sess(struct relay *r, uint32_t g, struct client *c, bool detached) {
    struct sess *x = &r->s->relay.sess[g];
    *x = (struct sess){.gsid = g, .c = c, .detached = detached, .log_fd = -1};
    r->s->relay.nsess++;
    c->gsid = g;
    c->kind = C_EXEC;
    char *argv[] = {"sleep", "1"};
    struct dbx_exec_req req = {.user = "", .cwd = "/w", .argc = 2, .argv = argv};
    sup_event_exec_start(r->s, g, &req, detached);
    return x;
}

static void guest_frame(struct relay *r, uint8_t type, uint32_t g, const void *p, size_t n) {
    struct dbx_buf b = {0};
    dbx_frame_put(&b, type, g, p, n);
    assert_int_equal(write(r->guest, b.data, b.len), (ssize_t)b.len);
    dbx_buf_free(&b);
    sup_agent_read(r->s);
}

static void guest_started(struct relay *r, uint32_t g, uint32_t pid) {
    uint8_t b[4];
    guest_frame(r, DBX_MSG_STARTED, g, b, dbx_enc_u32(b, pid));
}

/* The last frame queued for the guest is SIGKILL on session g. */
static void assert_killed(struct relay *r, uint32_t g) {
    struct dbx_reader rd = {0};
    struct dbx_buf *o = &r->s->relay.agent_out;
    dbx_reader_feed(&rd, dbx_buf_head(o), dbx_buf_avail(o));
    struct dbx_frame_hdr h, last = {0};
    const uint8_t *p, *lp = NULL;
    while (dbx_reader_next(&rd, &h, &p, NULL) == DBX_READ_FRAME) {
        last = h;
        lp = p;
    }
    assert_int_equal(last.type, DBX_MSG_SIGNAL);
    assert_int_equal(last.session, g);
    uint32_t sig;
    assert_int_equal(dbx_dec_u32(lp, last.len, &sig), 0);
    assert_int_equal(sig, SIGKILL);
    dbx_reader_free(&rd);
    o->len = o->off = 0;
}

static void test_relay_second_started(void **state) {
    struct relay r;
    relay_new(&r);
    /* attached: the client sees the first STARTED, the second ends the session */
    struct client a = {.fd = -1};
    relay_sess(&r, 7, &a, false);
    guest_started(&r, 7, 100);
    guest_started(&r, 7, 101);
    assert_int_equal(r.s->relay.sess[7].gsid, 0);
    assert_int_equal(a.kind, C_CLOSING);
    assert_non_null(memmem(a.out.data, a.out.len, "second", 6));
    assert_killed(&r, 7);

    /* detached: no second log, the first command's files stay */
    struct client c = {.fd = -1};
    relay_sess(&r, 8, &c, true);
    guest_started(&r, 8, 42);
    assert_int_equal(file_size(r.dir, "42.log"), 0);
    guest_frame(&r, DBX_MSG_STDOUT, 8, "out\n", 4);
    r.s->relay.agent_out.len = r.s->relay.agent_out.off = 0;
    guest_started(&r, 8, 43);
    assert_int_equal(r.s->relay.sess[8].gsid, 0);
    assert_killed(&r, 8);
    assert_int_equal(file_size(r.dir, "42.log"), 4);
    assert_int_equal(file_size(r.dir, "43.log"), -1);
    assert_int_equal(r.s->relay.nsess, 0);
    dbx_buf_free(&a.out);
    dbx_buf_free(&c.out);
    relay_del(&r);
}

static void test_relay_pid_collision(void **state) {
    struct relay r;
    relay_new(&r);
    struct client c1 = {.fd = -1}, c2 = {.fd = -1};
    relay_sess(&r, 3, &c1, true);
    relay_sess(&r, 4, &c2, true);
    guest_started(&r, 3, 42);
    guest_frame(&r, DBX_MSG_STDOUT, 3, "mine\n", 5);
    uint8_t e[5];
    guest_frame(&r, DBX_MSG_EXIT, 3, e, dbx_enc_exit(e, false, 0));
    r.s->relay.agent_out.len = r.s->relay.agent_out.off = 0;
    /* 42 has exited: a later command may have its pid */
    relay_sess(&r, 5, &c1, true);
    guest_started(&r, 5, 42);
    assert_int_equal(r.s->relay.sess[5].gsid, 5);
    guest_frame(&r, DBX_MSG_STDOUT, 5, "new\n", 4);
    r.s->relay.agent_out.len = r.s->relay.agent_out.off = 0;
    /* while session 5 lives, 42 is its: another session naming it is ended, 5's log intact */
    guest_started(&r, 4, 42);
    assert_int_equal(r.s->relay.sess[4].gsid, 0);
    assert_killed(&r, 4);
    assert_int_equal(c2.kind, C_CLOSING);
    _cleanup_free_ uint8_t *p = NULL;
    struct dbx_frame_hdr h = take_frame(&c2.out, &p);
    assert_int_equal(h.type, DBX_MSG_ERROR);
    assert_int_equal(file_size(r.dir, "42.log"), 4);
    assert_int_equal(file_size(r.dir, "42.exit"), -1);
    /* pid 0 is nobody's */
    struct client c3 = {.fd = -1};
    relay_sess(&r, 6, &c3, true);
    guest_started(&r, 6, 0);
    assert_int_equal(r.s->relay.sess[6].gsid, 0);
    assert_killed(&r, 6);
    dbx_buf_free(&c1.out);
    dbx_buf_free(&c2.out);
    dbx_buf_free(&c3.out);
    relay_del(&r);
}

/* A detached command's exec.exited has its code, not null; a killed one's is 128+N. */
static void test_relay_detached_exit_code(void **state) {
    struct relay r;
    relay_new(&r);
    struct client c1 = {.fd = -1}, c2 = {.fd = -1};
    relay_sess(&r, 3, &c1, true);
    relay_sess(&r, 4, &c2, true);
    guest_started(&r, 3, 50);
    guest_started(&r, 4, 51);
    uint8_t e[5];
    guest_frame(&r, DBX_MSG_EXIT, 3, e, dbx_enc_exit(e, false, 7));
    guest_frame(&r, DBX_MSG_EXIT, 4, e, dbx_enc_exit(e, true, 9));
    assert_int_equal(r.s->relay.nsess, 0);
    test_sh("grep -q '\"type\":\"exec.exited\",.*\"id\":3,\"exit_code\":7,' '%s/events.jsonl'",
            r.dir);
    test_sh("grep -q '\"id\":4,\"exit_code\":137,' '%s/events.jsonl'", r.dir);
    test_sh("! grep -q 'null' '%s/events.jsonl'", r.dir);
    dbx_buf_free(&c1.out);
    dbx_buf_free(&c2.out);
    relay_del(&r);
}

/* procs/ keeps SUP_PROCS_FILES_MAX logs: the oldest exited command's files make room; with
 * none exited, the new detached command is refused. */
static void test_procs_file_cap(void **state) {
    struct relay r;
    relay_new(&r);
    _cleanup_free_ char *dir = dbx_xasprintf("%s/procs", r.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    for (unsigned i = 1; i <= SUP_PROCS_FILES_MAX; i++) {
        _cleanup_free_ char *l = dbx_xasprintf("%s/%u.log", dir, 1000 + i);
        test_write_file(l, "x\n", 0600);
    }
    /* 1001 and 1002 exited, 1002 first */
    _cleanup_free_ char *x1 = dbx_xasprintf("%s/1001.exit", dir);
    _cleanup_free_ char *x2 = dbx_xasprintf("%s/1002.exit", dir);
    _cleanup_free_ char *r2 = dbx_xasprintf("%s/1002.log.1", dir);
    test_write_file(x1, "0\n", 0600);
    test_write_file(x2, "0\n", 0600);
    test_write_file(r2, "old\n", 0600);
    struct timespec ts[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};
    assert_int_equal(utimensat(AT_FDCWD, x2, ts, 0), 0);
    /* 1256's command ran in an earlier boot whose supervisor died before writing its .exit */
    r.s->vm.started_wall = time(NULL) - 60;
    _cleanup_free_ char *l256 = dbx_xasprintf("%s/1256.log", dir);
    struct timespec old[2] = {{.tv_sec = 2000}, {.tv_sec = 2000}};
    assert_int_equal(utimensat(AT_FDCWD, l256, old, 0), 0);

    struct client c = {.fd = -1};
    relay_sess(&r, 3, &c, true);
    guest_started(&r, 3, 5);
    assert_int_equal(r.s->relay.sess[3].gsid, 3);
    assert_int_equal(file_size(r.dir, "5.log"), 0);
    assert_int_equal(file_size(r.dir, "1002.log"), -1);
    assert_int_equal(file_size(r.dir, "1002.log.1"), -1);
    assert_int_equal(file_size(r.dir, "1002.exit"), -1);
    assert_true(file_size(r.dir, "1001.log") > 0);
    /* a pid whose log is there already replaces it: no room needed */
    struct client d = {.fd = -1};
    relay_sess(&r, 4, &d, true);
    guest_started(&r, 4, 1003);
    assert_int_equal(r.s->relay.sess[4].gsid, 4);
    assert_true(file_size(r.dir, "1001.log") > 0);
    /* the earlier boot's log (older) goes for the next one, then 1001; after them, all the rest
     * may still be written: refused */
    struct client e = {.fd = -1}, f = {.fd = -1}, g = {.fd = -1};
    relay_sess(&r, 5, &e, true);
    guest_started(&r, 5, 6);
    assert_int_equal(r.s->relay.sess[5].gsid, 5);
    assert_int_equal(file_size(r.dir, "1256.log"), -1);
    assert_true(file_size(r.dir, "1001.log") > 0);
    relay_sess(&r, 7, &g, true);
    guest_started(&r, 7, 8);
    assert_int_equal(r.s->relay.sess[7].gsid, 7);
    assert_int_equal(file_size(r.dir, "1001.log"), -1);
    r.s->relay.agent_out.len = r.s->relay.agent_out.off = 0;
    relay_sess(&r, 6, &f, true);
    guest_started(&r, 6, 7);
    assert_int_equal(r.s->relay.sess[6].gsid, 0);
    assert_killed(&r, 6);
    assert_int_equal(file_size(r.dir, "7.log"), -1);
    assert_non_null(memmem(f.out.data, f.out.len, "none of them has exited", 23));
    test_sh("test $(ls '%s' | grep -c 'log$') -eq %u", dir, SUP_PROCS_FILES_MAX);
    dbx_buf_free(&c.out);
    dbx_buf_free(&d.out);
    dbx_buf_free(&e.out);
    dbx_buf_free(&f.out);
    dbx_buf_free(&g.out);
    relay_del(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_ps_relay),
        cmocka_unit_test(test_kill_relay),
        cmocka_unit_test(test_detached_log),
        cmocka_unit_test(test_ps_expiry),
        cmocka_unit_test(test_relay_second_started),
        cmocka_unit_test(test_relay_pid_collision),
        cmocka_unit_test(test_relay_detached_exit_code),
        cmocka_unit_test(test_procs_file_cap),
    };
    return cmocka_run_group_tests_name("sandbox-procs", tests, NULL, NULL);
}

/* tests/fuzz/fuzz-protocol.c: libFuzzer harness for the wire protocol decoder.
 *
 * Input layout: byte 0 seeds the chunk sizes, the rest is a stream of frames.  The stream is
 * fed to a dbx_reader (one that takes large EXEC frames when byte 0 is odd) twice, once whole
 * and once in pseudo-random chunks (1..4096 bytes); the two runs must yield the same sequence
 * of frames and errors.  Every frame payload is given
 * to every typed decoder; whatever decodes must re-encode to the same bytes.
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without DBX_LIBFUZZER a
 * replay main() runs each file (or each file in each directory) named on the command line,
 * so CI replays the corpus under gcc. */
#include <dirent.h>
#include <sys/stat.h>

#include "common/common.h"
#include "common/plan.h"
#include "common/protocol.h"

#include "replay.h"

/* FNV-1a, to compare payloads between the two reader runs without keeping copies. */
static uint64_t hash(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

struct event {
    uint8_t result, type;
    uint32_t session, len;
    int err_code;
    uint64_t hash;
};

struct events {
    struct event *v;
    size_t n, cap;
};

static void events_push(struct events *e, struct event ev) {
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        e->v = dbx_xrealloc(e->v, e->cap * sizeof(*e->v));
    }
    e->v[e->n++] = ev;
}

static void check_same_bytes(const struct dbx_buf *b, const uint8_t *p, size_t n) {
    CHECK(dbx_buf_avail(b) == n);
    CHECK(n == 0 || memcmp(dbx_buf_head(b), p, n) == 0);
}

/* Give the payload to every decoder; decoded values must re-encode to the input. */
static void decode_all(const uint8_t *p, size_t n) {
    dbx_error *err = NULL;

    struct dbx_exec_req req = {0};
    if (dbx_exec_req_decode(p, n, &req, &err) == 0) {
        CHECK(err == NULL);
        CHECK(req.cwd && req.cwd[0] == '/');
        CHECK(req.user && req.argv && req.env);
        CHECK(req.argc <= DBX_MAX_ARGS && req.envc <= DBX_MAX_ENV && req.umask <= 0777);
        CHECK(req.argv[req.argc] == NULL && req.env[req.envc] == NULL);
        CHECK(req.argc > 0 || (req.flags & DBX_EXEC_LOGIN));
        CHECK(req.terminfo_len <= DBX_TERMINFO_MAX &&
              (req.terminfo != NULL) == (req.terminfo_len > 0));
        CHECK(req.terminfo_len == 0 || (req.flags & DBX_EXEC_TTY));
        for (uint32_t i = 0; i < req.envc; i++)
            CHECK(strchr(req.env[i], '=') != NULL);
        struct dbx_buf b = {0};
        dbx_exec_req_encode(&req, &b);
        check_same_bytes(&b, p, n);
        dbx_buf_free(&b);
        dbx_exec_req_free(&req);
    } else {
        CHECK(err != NULL && err->msg != NULL);
        dbx_error_free(&err);
    }

    struct dbx_setup s = {0};
    if (dbx_setup_decode(p, n, &s, &err) == 0) {
        CHECK(s.ws_path && s.ws_path[0] == '/' && s.ws_tag && s.hostname);
        struct dbx_buf b = {0};
        dbx_setup_encode(&s, &b);
        check_same_bytes(&b, p, n);
        dbx_buf_free(&b);
        dbx_setup_free(&s);
    } else {
        CHECK(err != NULL);
        dbx_error_free(&err);
    }

    /* a plan on its own (SETUP carries one after its own fields) */
    struct dbx_plan plan = {0};
    if (dbx_plan_decode(p, n, &plan, &err) == 0) {
        uint8_t a[4], prefix;
        CHECK(plan.net_mode <= DBX_NET_OPEN);
        CHECK((plan.net_mode == DBX_NET_ALLOWLIST) == (plan.proxy_port != 0));
        if (plan.net_mode == DBX_NET_OPEN)
            CHECK(dbx_parse_ipv4(plan.net_addr, a, &prefix) == 0 && prefix >= 1 && prefix <= 32 &&
                  dbx_parse_ipv4(plan.net_gw, a, NULL) == 0);
        else
            CHECK(!plan.net_addr[0] && !plan.net_gw[0] && !plan.net_dns[0]);
        struct dbx_buf b = {0};
        dbx_plan_encode(&plan, &b);
        check_same_bytes(&b, p, n);
        dbx_buf_free(&b);
        dbx_plan_free(&plan);
    } else {
        CHECK(err != NULL);
        dbx_error_free(&err);
    }

    uint8_t out[8];
    uint8_t stream;
    uint32_t u32;
    uint64_t u64;
    bool sig;
    uint16_t rows, cols;
    if (dbx_dec_credit(p, n, &stream, &u32) == 0) {
        CHECK(stream <= DBX_STREAM_SOCK);
        CHECK(dbx_enc_credit(out, stream, u32) == n && memcmp(out, p, n) == 0);
    }
    if (dbx_dec_exit(p, n, &sig, &u32) == 0) {
        CHECK(dbx_enc_exit(out, sig, u32) == n && memcmp(out, p, n) == 0);
        int code = dbx_exit_code(sig, u32);
        CHECK(code >= 0 && code <= 255);
        CHECK(sig ? code > 128 : (uint32_t)code == u32);
    }
    uint8_t kind;
    uint16_t port;
    if (dbx_dec_sock_open(p, n, &kind, &port) == 0) {
        CHECK((kind == DBX_SOCK_PROXY || kind == DBX_SOCK_FORWARD) && port != 0);
        CHECK(dbx_enc_sock_open(out, kind, port) == n && memcmp(out, p, n) == 0);
    }
    if (dbx_dec_resize(p, n, &rows, &cols) == 0)
        CHECK(dbx_enc_resize(out, rows, cols) == n && memcmp(out, p, n) == 0);
    if (dbx_dec_u32(p, n, &u32) == 0) CHECK(dbx_enc_u32(out, u32) == n && memcmp(out, p, n) == 0);
    if (dbx_dec_u64(p, n, &u64) == 0) CHECK(dbx_enc_u64(out, u64) == n && memcmp(out, p, n) == 0);
    uint8_t clk[DBX_CLOCK_ANSWER_LEN];
    uint64_t ns;
    bool answer;
    if (dbx_dec_clock(p, n, &ns, &answer, &u64) == 0) {
        CHECK(ns <= (uint64_t)INT64_MAX && (n == DBX_CLOCK_ANSWER_LEN) == answer);
        CHECK(dbx_enc_clock(clk, ns, answer, u64) == n && memcmp(clk, p, n) == 0);
    }

    char *msg = NULL;
    if (dbx_error_msg_decode(p, n, &u32, &msg) == 0) {
        CHECK(msg != NULL && strlen(msg) == n - 8); /* no NUL inside */
        struct dbx_buf b = {0};
        dbx_error_msg_encode(&b, u32, msg);
        check_same_bytes(&b, p, n);
        dbx_buf_free(&b);
        free(msg);
    } else {
        CHECK(msg == NULL);
    }

    char *rel = NULL;
    if (dbx_hello_decode(p, n, &u32, &rel) == 0) {
        CHECK(rel != NULL);
        if (u32 == DBX_PROTO_VERSION) {
            struct dbx_buf b = {0};
            dbx_hello_encode(&b, rel);
            check_same_bytes(&b, p, n);
            dbx_buf_free(&b);
        }
        free(rel);
    } else {
        CHECK(rel == NULL);
    }

    char *first = NULL;
    if (dbx_protected_decode(p, n, &u64, &first) == 0) {
        CHECK(first != NULL && strlen(first) == n - 12 && strlen(first) <= DBX_PROTECTED_PATH_MAX);
        struct dbx_buf b = {0};
        dbx_protected_encode(&b, u64, first);
        check_same_bytes(&b, p, n);
        dbx_buf_free(&b);
        free(first);
    } else {
        CHECK(first == NULL);
    }

    /* ---- issue 13: CHANGED (helper E) ---- */
    char **paths = NULL;
    dbx_error *cerr = NULL;
    if (dbx_changed_decode(p, n, &u32, &paths, &cerr) == 0) {
        CHECK(u32 <= DBX_CHANGED_MAX_PATHS);
        for (uint32_t i = 0; i < u32; i++)
            CHECK(dbx_changed_path_ok(paths[i]));
        struct dbx_buf b = {0};
        dbx_changed_encode(&b, u32, (const char *const *)paths);
        check_same_bytes(&b, p, n);
        dbx_buf_free(&b);
        dbx_strv_free(paths);
    } else {
        CHECK(cerr != NULL && paths == NULL);
        dbx_error_free(&cerr);
    }
    /* issue 13: processes (helper A) */
    struct dbx_ps_reply ps = {0};
    if (dbx_ps_reply_decode(p, n, &ps, &err) == 0) {
        struct dbx_buf b = {0};
        CHECK(ps.n <= DBX_PS_MAX);
        dbx_ps_reply_begin(&b, ps.token, ps.n);
        for (uint32_t i = 0; i < ps.n; i++) {
            CHECK(ps.v[i].detached <= 1);
            dbx_ps_entry_encode(&b, &ps.v[i]);
        }
        check_same_bytes(&b, p, n);
        dbx_buf_free(&b);
        dbx_ps_reply_free(&ps);
    } else {
        CHECK(err != NULL);
        dbx_error_free(&err);
    }
    uint8_t k16[16];
    uint32_t kpid, ksig;
    if (dbx_dec_kill(p, n, &u64, &kpid, &ksig) == 0) {
        CHECK(ksig >= 1 && ksig <= 64);
        CHECK(dbx_enc_kill(k16, u64, kpid, ksig) == n && memcmp(k16, p, n) == 0);
    }
    char *kmsg = NULL;
    if (dbx_kill_reply_decode(p, n, &u64, &u32, &kmsg) == 0) {
        struct dbx_buf b = {0};
        dbx_kill_reply_encode(&b, u64, u32, kmsg);
        check_same_bytes(&b, p, n);
        dbx_buf_free(&b);
        free(kmsg);
    } else {
        CHECK(kmsg == NULL);
    }
    /* issue 13: NOTICE and STATS (helper B) */
    struct dbx_notice nt;
    if (dbx_dec_notice(p, n, &nt) == 0) {
        uint8_t nb[DBX_NOTICE_LEN];
        CHECK(dbx_enc_notice(nb, &nt) == n && memcmp(nb, p, n) == 0);
    }
    struct dbx_stats st = {0};
    if (dbx_stats_decode(p, n, &st, &err) == 0) {
        CHECK(st.n <= DBX_STATS_MAX);
        struct dbx_buf b = {0};
        dbx_stats_encode(&st, &b);
        check_same_bytes(&b, p, n);
        dbx_buf_free(&b);
        dbx_stats_clear(&st);
    } else {
        CHECK(err != NULL && st.n == 0 && st.v == NULL);
        dbx_error_free(&err);
    }
    /* issue 12: TIMING (helper latency) */
    struct dbx_timing tm;
    if (dbx_timing_decode(p, n, &tm, &err) == 0) {
        CHECK(tm.n <= DBX_TIMING_MAX);
        for (uint32_t i = 0; i < tm.n; i++)
            CHECK(dbx_timing_key_ok(tm.v[i].key));
        struct dbx_buf b = {0};
        dbx_timing_encode(&tm, &b);
        check_same_bytes(&b, p, n);
        dbx_buf_free(&b);
    } else {
        CHECK(err != NULL);
        dbx_error_free(&err);
    }

    /* the cursor primitives on their own: a string decoded in place has exactly its bytes */
    struct dbx_cursor c = {p, n};
    while (c.left > 0) {
        char *str = NULL;
        size_t before = c.left;
        if (dbx_get_str(&c, DBX_MAX_STR, &str) == 0) {
            CHECK(before - c.left >= 4 && strlen(str) == before - 4 - c.left);
            free(str);
        } else {
            CHECK(str == NULL);
            uint8_t b;
            if (dbx_get_u8(&c, &b) < 0) break;
        }
    }
}

/* Run the reader over the stream in chunks from `seed` (0 = all at once). */
static void run_reader(const uint8_t *data, size_t size, uint32_t seed, bool takes_exec,
                       struct events *ev, bool decode) {
    struct dbx_reader r = {.takes_exec = takes_exec};
    size_t off = 0;
    uint32_t x = seed * 2654435761u + 1;
    while (off < size) {
        size_t k = size - off;
        if (seed != 0) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            /* mostly small chunks, sometimes large ones */
            size_t c = (x & 3) == 0 ? (x >> 8) % 4096 + 1 : (x >> 8) % 16 + 1;
            if (c < k) k = c;
        }
        dbx_reader_feed(&r, data + off, k);
        off += k;
        for (;;) {
            struct dbx_frame_hdr h = {0};
            const uint8_t *p = NULL;
            dbx_error *err = NULL;
            enum dbx_read_result res = dbx_reader_next(&r, &h, &p, &err);
            if (res == DBX_READ_NEED_MORE) {
                CHECK(err == NULL);
                break;
            }
            struct event e = {
                .result = (uint8_t)res, .type = h.type, .session = h.session, .len = h.len};
            if (res == DBX_READ_FRAME) {
                CHECK(err == NULL && p != NULL);
                CHECK(h.version == DBX_PROTO_VERSION &&
                      h.len <=
                          (takes_exec && h.type == DBX_MSG_EXEC ? DBX_EXEC_MAX : DBX_FRAME_MAX));
                CHECK(strcmp(dbx_msg_name(h.type), "unknown") != 0);
                e.hash = hash(p, h.len);
                if (decode) decode_all(p, h.len);
            } else {
                CHECK(res == DBX_READ_BAD);
                CHECK(err != NULL && err->msg != NULL);
                CHECK(dbx_hdr_check_exec(&h, takes_exec, NULL) < 0);
                e.err_code = err->code;
                dbx_error_free(&err);
            }
            events_push(ev, e);
        }
    }
    dbx_reader_free(&r);
}

static bool is_answer(const struct event *e) {
    return e->result == DBX_READ_FRAME && e->type == DBX_MSG_CLOCK && e->session == 0 &&
           e->len == DBX_CLOCK_ANSWER_LEN;
}

/* dbx_reader_take over the stream fed at once: it takes the CLOCK answers before the first bad
 * or incomplete frame, in order, and the reader then yields the rest as if they had never
 * been there. */
static void check_take(const uint8_t *data, size_t size, bool takes_exec,
                       const struct events *whole) {
    struct dbx_reader r = {.takes_exec = takes_exec};
    dbx_reader_feed(&r, data, size);
    uint8_t ans[DBX_CLOCK_ANSWER_LEN];
    struct events rest = {0};
    size_t taken = 0, w = 0;
    while (dbx_reader_take(&r, DBX_MSG_CLOCK, DBX_CLOCK_ANSWER_LEN, ans)) {
        while (w < whole->n && !is_answer(&whole->v[w])) {
            CHECK(whole->v[w].result == DBX_READ_FRAME); /* none taken past a bad frame */
            w++;
        }
        CHECK(w < whole->n && whole->v[w].hash == hash(ans, sizeof(ans)));
        w++;
        taken++;
    }
    for (;;) {
        struct dbx_frame_hdr h = {0};
        const uint8_t *p = NULL;
        dbx_error *err = NULL;
        enum dbx_read_result res = dbx_reader_next(&r, &h, &p, &err);
        if (res == DBX_READ_NEED_MORE) break;
        dbx_error_free(&err);
        events_push(&rest, (struct event){.result = (uint8_t)res,
                                          .type = h.type,
                                          .session = h.session,
                                          .len = h.len,
                                          .hash = res == DBX_READ_FRAME ? hash(p, h.len) : 0});
    }
    CHECK(rest.n + taken == whole->n);
    size_t k = 0, skip = taken;
    for (size_t i = 0; i < whole->n; i++) {
        if (skip && is_answer(&whole->v[i])) {
            skip--;
            continue;
        }
        const struct event *a = &whole->v[i], *b = &rest.v[k++];
        CHECK(a->result == b->result && a->type == b->type && a->session == b->session);
        CHECK(a->len == b->len && (a->result != DBX_READ_FRAME || a->hash == b->hash));
    }
    free(rest.v);
    dbx_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint32_t seed = data[0] + 1u;
    bool takes_exec = data[0] & 1; /* the readers of the supervisor's clients and of the init */
    data++;
    size--;

    struct events whole = {0}, chunked = {0};
    run_reader(data, size, 0, takes_exec, &whole, true);
    run_reader(data, size, seed, takes_exec, &chunked, false);
    check_take(data, size, takes_exec, &whole);
    CHECK(whole.n == chunked.n);
    for (size_t i = 0; i < whole.n; i++) {
        const struct event *a = &whole.v[i], *b = &chunked.v[i];
        CHECK(a->result == b->result && a->type == b->type && a->session == b->session);
        CHECK(a->len == b->len && a->err_code == b->err_code && a->hash == b->hash);
    }
    free(whole.v);
    free(chunked.v);

    /* the raw input itself, as one payload of every type */
    decode_all(data, size);
    /* and as a header */
    if (size >= DBX_FRAME_HDR) {
        struct dbx_frame_hdr h;
        dbx_hdr_decode(data, &h);
        uint8_t re[DBX_FRAME_HDR];
        dbx_hdr_encode(re, h.type, h.session, h.len);
        if (h.version == DBX_PROTO_VERSION && h.flags == 0)
            CHECK(memcmp(re, data, DBX_FRAME_HDR) == 0);
        (void)dbx_hdr_check(&h, NULL);
        (void)dbx_msg_name(h.type);
    }
    return 0;
}

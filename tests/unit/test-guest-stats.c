/* tests/unit/test-guest-stats.c: the guest's side of STATS and NOTICE (guest/init-stats.c) on
 * the host, over a fake box cgroup in a temporary directory ($DEVBOX_TEST_CGROUP/box, as
 * --serve-fd uses): the counters under their protocol names (io.stat summed, "max" as
 * UINT64_MAX, a missing file left out), and NOTICE only when a counter grew during the session
 * (OOM: the session's leaf's, the box's without a leaf) and the command's status fits (SIGKILL or
 * 137 for OOM, any failure for pids), never for a command the host ended (--timeout, SIGNAL). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* init-stats.c is guest code (the static init links it); the test compiles it in. */
#include "guest/init-stats.c"

#include <sys/stat.h>

#include "helpers.h"

/* init-serve.c's output functions, here collecting the frames */
static struct dbx_buf sent;
void agent_send(struct agent *a, uint8_t type, uint32_t sid, const void *p, size_t n) {
    dbx_frame_put(&sent, type, sid, p, n);
}
void agent_send_error(struct agent *a, uint32_t sid, uint32_t code, const char *msg) {
    struct dbx_buf b = {0};
    dbx_error_msg_encode(&b, code, msg);
    agent_send(a, DBX_MSG_ERROR, sid, b.data, b.len);
    dbx_buf_free(&b);
}

void init_log(const char *fmt, ...) {}

struct fx {
    char root[64];
    int box; /* root/box */
};

static int setup(void **state) {
    struct fx *f = dbx_xcalloc(1, sizeof(*f));
    strcpy(f->root, "/tmp/dbx-unit-XXXXXX");
    if (!mkdtemp(f->root)) return -1;
    _cleanup_free_ char *b = dbx_xasprintf("%s/box", f->root);
    if (mkdir(b, 0755) < 0) return -1;
    f->box = open(b, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    setenv("DEVBOX_TEST_CGROUP", f->root, 1);
    test_write_at(f->box, "cpu.stat",
                  "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n"
                  "nr_periods 10\nnr_throttled 2\nthrottled_usec 3000\n");
    test_write_at(f->box, "memory.current", "67108864\n");
    test_write_at(f->box, "memory.peak", "70000000\n");
    test_write_at(f->box, "memory.max", "134217728\n");
    test_write_at(f->box, "pids.current", "3\n");
    test_write_at(f->box, "pids.max", "max\n");
    test_write_at(f->box, "io.stat",
                  "254:0 rbytes=1000 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n"
                  "254:16 rbytes=24 wbytes=5 rios=1 wios=1 dbytes=0 dios=0\n");
    test_write_at(f->box, "memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 0\n");
    test_write_at(f->box, "pids.events", "max 0\n");
    dbx_buf_free(&sent);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fx *f = *state;
    close(f->box);
    test_rm_tree(f->root);
    unsetenv("DEVBOX_TEST_CGROUP");
    dbx_buf_free(&sent);
    free(f);
    return 0;
}

/* The one frame sent: its type, session and payload (in sent). */
static uint8_t sent_frame(uint32_t *sid, const uint8_t **p, uint32_t *n) {
    struct dbx_frame_hdr h;
    assert_true(dbx_buf_avail(&sent) >= DBX_FRAME_HDR);
    dbx_hdr_decode(dbx_buf_head(&sent), &h);
    assert_int_equal(dbx_buf_avail(&sent), DBX_FRAME_HDR + h.len);
    *sid = h.session;
    *p = dbx_buf_head(&sent) + DBX_FRAME_HDR;
    *n = h.len;
    return h.type;
}

static void test_counters(void **state) {
    struct agent a = {.test_mode = true};
    uint8_t t[8];
    stats_on_request(&a, t, (uint32_t)dbx_enc_u64(t, 42));
    uint32_t sid, n;
    const uint8_t *p;
    assert_int_equal(sent_frame(&sid, &p, &n), DBX_MSG_STATS_REPLY);
    assert_int_equal(sid, 0);
    struct dbx_stats st = {0};
    assert_int_equal(dbx_stats_decode(p, n, &st, NULL), 0);
    assert_int_equal(st.token, 42);
    static const struct {
        const char *k;
        uint64_t v;
    } want[] = {
        {"cpu_usage_us", 1500000},    {"cpu_throttled_us", 3000}, {"nr_throttled", 2},
        {"memory_current", 67108864}, {"memory_peak", 70000000},  {"memory_max", 134217728},
        {"pids_current", 3},          {"pids_max", UINT64_MAX},   {"io_read_bytes", 1024},
        {"io_write_bytes", 25},       {"oom_kills", 0},           {"pids_refused", 0},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(want); i++) {
        uint64_t v = 0;
        assert_true(dbx_stats_find(&st, want[i].k, &v));
        assert_true(v == want[i].v);
    }
    uint64_t v;
    assert_false(dbx_stats_find(&st, "swap_current", &v)); /* no memory.swap.current */
    dbx_stats_clear(&st);

    /* a malformed request is answered with ERROR; no cgroup: an empty reply */
    dbx_buf_free(&sent);
    stats_on_request(&a, t, 7);
    assert_int_equal(sent_frame(&sid, &p, &n), DBX_MSG_ERROR);
    dbx_buf_free(&sent);
    unsetenv("DEVBOX_TEST_CGROUP");
    stats_on_request(&a, t, (uint32_t)dbx_enc_u64(t, 43));
    assert_int_equal(sent_frame(&sid, &p, &n), DBX_MSG_STATS_REPLY);
    assert_int_equal(dbx_stats_decode(p, n, &st, NULL), 0);
    assert_int_equal(st.n, 0);
    dbx_stats_clear(&st);
}

/* How a session runs: its end status, the counters written after its start, and optionally its
 * leaf box/s9 (leaf0: its memory.events when the session starts, NULL: made after the start;
 * leaf1: at the end) and what the host did to it. */
struct run {
    int status;
    const char *mem_events, *pids_events;
    bool leaf;
    const char *leaf0, *leaf1;
    bool timed_out;
    uint32_t host_sig;
};

/* The session; the NOTICE sent, if any. */
static bool run(struct fx *f, const struct run *r, struct dbx_notice *ret) {
    struct agent a = {.test_mode = true};
    struct session s = {.id = 9, .cg_fd = -1};
    test_write_at(f->box, "memory.events", "oom 1\noom_kill 1\n");
    test_write_at(f->box, "pids.events", "max 5\n");
    if (r->leaf && r->leaf0) {
        assert_int_equal(mkdirat(f->box, "s9", 0755), 0);
        _cleanup_close_ int lfd = openat(f->box, "s9", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        test_write_at(lfd, "memory.events", r->leaf0);
    }
    stats_session_start(&a, &s);
    if (r->leaf) {
        if (!r->leaf0) assert_int_equal(mkdirat(f->box, "s9", 0755), 0);
        s.cg_fd = openat(f->box, "s9", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(s.cg_fd >= 0);
        test_write_at(s.cg_fd, "memory.events", r->leaf1);
    }
    test_write_at(f->box, "memory.events", r->mem_events);
    test_write_at(f->box, "pids.events", r->pids_events);
    s.exited = true;
    s.status = r->status;
    s.timed_out = r->timed_out;
    s.host_sig = r->host_sig;
    dbx_buf_free(&sent);
    stats_session_end(&a, &s);
    if (r->leaf) {
        close(s.cg_fd);
        _cleanup_free_ char *m = dbx_xasprintf("%s/box/s9/memory.events", f->root);
        _cleanup_free_ char *d = dbx_xasprintf("%s/box/s9", f->root);
        assert_int_equal(unlink(m), 0);
        assert_int_equal(rmdir(d), 0);
    }
    if (dbx_buf_avail(&sent) == 0) return false;
    uint32_t sid, n;
    const uint8_t *p;
    assert_int_equal(sent_frame(&sid, &p, &n), DBX_MSG_NOTICE);
    assert_int_equal(sid, 9);
    assert_int_equal(dbx_dec_notice(p, n, ret), 0);
    return true;
}

/* A session without a leaf: the box's counters. */
static bool session(struct fx *f, int status, const char *mem_events, const char *pids_events,
                    struct dbx_notice *ret) {
    return run(f, &(struct run){status, mem_events, pids_events, .leaf = false}, ret);
}

#define KILLED SIGKILL              /* wait status: killed by SIGKILL */
#define EXITED(c) (((c)&0xff) << 8) /* wait status: exit(c) */

static void test_notice(void **state) {
    struct fx *f = *state;
    struct dbx_notice nt = {0};
    const char *oom = "oom 2\noom_kill 2\n", *no_oom = "oom 1\noom_kill 1\n";
    assert_true(session(f, KILLED, oom, "max 5\n", &nt));
    assert_int_equal(nt.kind, DBX_NOTICE_OOM);
    assert_true(nt.limit == 134217728 && nt.value == 70000000);
    assert_true(session(f, EXITED(137), oom, "max 5\n", &nt)); /* a shell's report of it */
    assert_int_equal(nt.kind, DBX_NOTICE_OOM);
    assert_false(session(f, KILLED, no_oom, "max 5\n", &nt)); /* killed by someone else */
    assert_false(session(f, EXITED(1), oom, "max 5\n", &nt)); /* survived a child's OOM */
    assert_false(session(f, EXITED(0), oom, "max 9\n", &nt)); /* success: nothing to explain */
    assert_true(session(f, EXITED(11), no_oom, "max 6\n", &nt));
    assert_int_equal(nt.kind, DBX_NOTICE_PIDS);
    assert_true(nt.limit == UINT64_MAX && nt.value == 3);
    assert_true(session(f, KILLED, no_oom, "max 6\n", &nt)); /* any failure counts for pids */
    assert_int_equal(nt.kind, DBX_NOTICE_PIDS);
    assert_false(session(f, EXITED(2), no_oom, "max 5\n", &nt));
    /* counters the kernel does not have (or garbage in them): never a notice */
    assert_false(session(f, KILLED, "garbage\n", "max x\n", &nt));
}

/* The host ended the command: --timeout, or a signal it sent; the box's counters grew anyway
 * (another session's OOM kill, a refused fork elsewhere). */
static void test_notice_host_ended(void **state) {
    struct fx *f = *state;
    struct dbx_notice nt = {0};
    const char *oom = "oom 2\noom_kill 2\n", *no_oom = "oom 1\noom_kill 1\n";
    assert_false(run(f, &(struct run){KILLED, oom, "max 6\n", .timed_out = true}, &nt));
    assert_false(run(f, &(struct run){KILLED, oom, "max 6\n", .host_sig = SIGKILL}, &nt));
    /* Ctrl-C: dead of it, or a shell's 130 for it */
    assert_false(run(f, &(struct run){SIGINT, no_oom, "max 6\n", .host_sig = SIGINT}, &nt));
    assert_false(run(f, &(struct run){EXITED(130), no_oom, "max 6\n", .host_sig = SIGINT}, &nt));
    /* a command that caught the signal and failed for itself still gets its notice */
    assert_true(run(f, &(struct run){EXITED(1), no_oom, "max 6\n", .host_sig = SIGINT}, &nt));
    assert_int_equal(nt.kind, DBX_NOTICE_PIDS);
}

/* With a leaf, OOM is the leaf's own count: another session's OOM kill grows only the box's. */
static void test_notice_leaf(void **state) {
    struct fx *f = *state;
    struct dbx_notice nt = {0};
    const char *oom = "oom 2\noom_kill 2\n", *l0 = "oom 0\noom_kill 0\n";
    const char *l1 = "oom 1\noom_kill 1\n";
    /* killed (by `devbox kill -9`, say) while another session was OOM-killed */
    assert_false(run(f, &(struct run){KILLED, oom, "max 5\n", .leaf = true, .leaf1 = l0}, &nt));
    assert_true(run(f, &(struct run){KILLED, oom, "max 5\n", .leaf = true, .leaf1 = l1}, &nt));
    assert_int_equal(nt.kind, DBX_NOTICE_OOM);
    assert_true(nt.limit == 134217728 && nt.value == 70000000); /* the box's limit and peak */
    /* a leaf an earlier session left (a daemon in it) keeps its count: only growth counts */
    const char *l3 = "oom 3\noom_kill 3\n", *l4 = "oom 4\noom_kill 4\n";
    assert_false(
        run(f, &(struct run){KILLED, oom, "max 5\n", .leaf = true, .leaf0 = l3, .leaf1 = l3}, &nt));
    assert_true(
        run(f, &(struct run){KILLED, oom, "max 5\n", .leaf = true, .leaf0 = l3, .leaf1 = l4}, &nt));
    /* a leaf without the memory controller's files: the box's count */
    assert_true(run(f, &(struct run){KILLED, oom, "max 5\n", .leaf = true, .leaf1 = ""}, &nt));
    assert_int_equal(nt.kind, DBX_NOTICE_OOM);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notice_host_ended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notice_leaf, setup, teardown),
    };
    return cmocka_run_group_tests_name("guest-stats", tests, NULL, NULL);
}

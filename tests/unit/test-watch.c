/* tests/unit/test-watch.c: host edits for the box's file watchers (issue 13): the CHANGED codec
 * (strict decode, caps, garbage) and mounts/mounts-watch.c over a temporary tree (recursion,
 * symlinks not followed, .git/objects skipped, coalescing, caps, moves), and its first walk in
 * slices (directories not reached yet, made, moved or removed meanwhile, a slice of 0, the cap
 * mid-walk). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>

#include "common/common.h"
#include "common/protocol.h"
#include "mounts/mounts.h"

#include "helpers.h"

/* ---- codec -------------------------------------------------------------------------------- */

static void test_changed_path_ok(void **state) {
    const char *good[] = {"a", "a/b", ".git/HEAD", "a/.b/c..d", "...", "x y/z"};
    const char *bad[] = {"", "/a", "..", "a/..", "../a", "a/../b", ".", "./a", "a/.", "a//b", "a/"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(good); i++)
        assert_true(dbx_changed_path_ok(good[i]));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++)
        assert_false(dbx_changed_path_ok(bad[i]));
    _cleanup_free_ char *longp = dbx_xcalloc(DBX_CHANGED_PATH_MAX + 2, 1);
    memset(longp, 'a', DBX_CHANGED_PATH_MAX);
    assert_true(dbx_changed_path_ok(longp));
    longp[DBX_CHANGED_PATH_MAX] = 'a';
    assert_false(dbx_changed_path_ok(longp));
}

static int decode(const struct dbx_buf *b, uint32_t *n, char ***v) {
    dbx_error *err = NULL;
    int r = dbx_changed_decode(b->data, b->len, n, v, &err);
    if (r < 0) {
        assert_non_null(err);
        assert_non_null(strstr(err->msg, "malformed changed message"));
        assert_null(*v);
        dbx_error_free(&err);
    }
    return r;
}

static void test_changed_roundtrip(void **state) {
    const char *paths[] = {"src/a.js", ".git/HEAD", "b"};
    struct dbx_buf b = {0};
    dbx_changed_encode(&b, 3, paths);
    uint32_t n = 0;
    char **v = NULL;
    assert_int_equal(decode(&b, &n, &v), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(v[i], paths[i]);
    assert_null(v[3]);
    dbx_strv_free(v);
    dbx_buf_free(&b);
    /* rescan */
    dbx_changed_encode(&b, 0, NULL);
    v = NULL;
    assert_int_equal(decode(&b, &n, &v), 0);
    assert_int_equal(n, 0);
    dbx_strv_free(v);
    dbx_buf_free(&b);
}

static void test_changed_rejects(void **state) {
    uint32_t n;
    char **v = NULL;
    struct dbx_buf b = {0};
    /* each bad path alone */
    const char *bad[] = {"", "/etc/passwd", "..", "a/../../b", "a//b"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        dbx_changed_encode(&b, 1, &bad[i]);
        v = NULL;
        assert_int_equal(decode(&b, &n, &v), -EPROTO);
        dbx_buf_free(&b);
    }
    /* a NUL inside a path */
    dbx_buf_put_u32(&b, 1);
    dbx_buf_put_u32(&b, 3);
    dbx_buf_put(&b, "a\0b", 3);
    assert_int_equal(decode(&b, &n, &v), -EPROTO);
    dbx_buf_free(&b);
    /* trailing bytes, truncation, empty payload */
    const char *one = "a";
    dbx_changed_encode(&b, 1, &one);
    dbx_buf_put_u8(&b, 0);
    assert_int_equal(decode(&b, &n, &v), -EPROTO);
    b.len -= 2;
    assert_int_equal(decode(&b, &n, &v), -EPROTO);
    b.len = 0;
    assert_int_equal(decode(&b, &n, &v), -EPROTO);
    dbx_buf_free(&b);
    /* counts: over the cap, and more than the payload holds */
    dbx_buf_put_u32(&b, DBX_CHANGED_MAX_PATHS + 1);
    for (uint32_t i = 0; i <= DBX_CHANGED_MAX_PATHS; i++)
        dbx_buf_put_str(&b, "a");
    assert_int_equal(decode(&b, &n, &v), -EPROTO);
    dbx_buf_free(&b);
    dbx_buf_put_u32(&b, 200);
    dbx_buf_put_str(&b, "a");
    assert_int_equal(decode(&b, &n, &v), -EPROTO);
    dbx_buf_free(&b);
    /* a path over the length cap */
    _cleanup_free_ char *longp = dbx_xcalloc(DBX_CHANGED_PATH_MAX + 2, 1);
    memset(longp, 'a', DBX_CHANGED_PATH_MAX + 1);
    const char *lp = longp;
    dbx_changed_encode(&b, 1, &lp);
    assert_int_equal(decode(&b, &n, &v), -EPROTO);
    dbx_buf_free(&b);
}

/* Garbage never crashes the decoder, and whatever decodes is well formed. */
static void test_changed_garbage(void **state) {
    uint32_t x = 12345;
    uint8_t buf[256];
    for (int round = 0; round < 20000; round++) {
        size_t len = (x = x * 1103515245u + 12345u) % sizeof(buf);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            /* small counts and lengths, printable bytes, some '/', '.' and NULs */
            uint8_t r = (uint8_t)(x >> 16);
            buf[i] = i % 4 != 0 && i < 8 ? 0 : (r % 5 == 0 ? '/' : r % 7 == 0 ? '.' : r % 3);
        }
        uint32_t n;
        char **v = NULL;
        dbx_error *err = NULL;
        if (dbx_changed_decode(buf, len, &n, &v, &err) == 0) {
            for (uint32_t i = 0; i < n; i++)
                assert_true(dbx_changed_path_ok(v[i]));
            dbx_strv_free(v);
        } else {
            assert_non_null(err);
            dbx_error_free(&err);
        }
    }
}

/* ---- the watcher -------------------------------------------------------------------------- */

struct tree {
    char *root; /* the workspace */
    char *out;  /* a directory outside it */
};

static int tree_setup(void **state) {
    struct tree *t = dbx_xcalloc(1, sizeof(*t));
    char tmpl[] = "/tmp/dbx-watch-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    t->root = dbx_xasprintf("%s/ws", tmpl);
    t->out = dbx_xasprintf("%s/outside", tmpl);
    test_sh("mkdir -p '%s/src/deep/er' '%s/.git/objects/ab' '%s/.git/refs' '%s'", t->root, t->root,
            t->root, t->out);
    test_sh("ln -s '%s' '%s/link'", t->out, t->root);
    *state = t;
    return 0;
}

static int tree_teardown(void **state) {
    struct tree *t = *state;
    _cleanup_free_ char *top = dbx_xstrdup(t->root);
    *strrchr(top, '/') = '\0';
    test_rm_tree(top);
    free(t->root);
    free(t->out);
    free(t);
    return 0;
}

/* Wait for the kernel's events and read them at `now`. */
static void pump(struct mounts_watch *w, uint64_t now) {
    struct pollfd p = {mounts_watch_fd(w), POLLIN, 0};
    while (poll(&p, 1, 200) > 0)
        mounts_watch_read(w, now);
}

/* Everything take gives at `now`, as one vector; *rescans counts n = 0 notices, *frames all. */
static char **take_all(struct mounts_watch *w, uint64_t now, int *frames, int *rescans) {
    char **all = NULL;
    struct dbx_buf b = {0};
    *frames = *rescans = 0;
    while (mounts_watch_take(w, now, &b)) {
        uint32_t n;
        char **v = NULL;
        dbx_error *err = NULL;
        assert_int_equal(dbx_changed_decode(b.data, b.len, &n, &v, &err), 0);
        assert_true(b.len <= DBX_FRAME_MAX);
        (*frames)++;
        if (n == 0) (*rescans)++;
        for (uint32_t i = 0; i < n; i++)
            all = dbx_strv_push(all, v[i]);
        dbx_strv_free(v);
        b.len = b.off = 0;
    }
    dbx_buf_free(&b);
    return all;
}

/* mounts_watch_new and the whole first walk */
static int watch_new(const char *root, uint32_t max, struct mounts_watch **w, dbx_error **err) {
    int r = mounts_watch_new(root, max, w, err);
    while (r == 0 && mounts_watch_walk(*w, 1000, 1000))
        ;
    if (r == 0) assert_false(mounts_watch_walking(*w));
    return r;
}

static bool has(char **v, const char *s) {
    for (; v && *v; v++)
        if (strcmp(*v, s) == 0) return true;
    return false;
}

static void test_watch_tree(void **state) {
    struct tree *t = *state;
    struct mounts_watch *w = NULL;
    dbx_error *err = NULL;
    assert_int_equal(watch_new(t->root, 0, &w, &err), 0);
    /* ws, src, src/deep, src/deep/er, .git, .git/refs: not .git/objects, not the link's target */
    assert_int_equal(mounts_watch_count(w), 6);
    assert_int_equal(mounts_watch_timeout(w, 1000), -1);

    test_sh("echo x >> '%s/src/deep/er/f'; echo y > '%s/top'; echo z > '%s/inside'; "
            "echo o > '%s/.git/objects/ab/cd'",
            t->root, t->root, t->out, t->root);
    pump(w, 1000);
    /* coalescing: nothing before the quiet time, all of it after */
    assert_int_equal(mounts_watch_timeout(w, 1000), MOUNTS_WATCH_QUIET_MS);
    int frames, rescans;
    assert_null(take_all(w, 1010, &frames, &rescans));
    char **v = take_all(w, 1000 + MOUNTS_WATCH_QUIET_MS, &frames, &rescans);
    assert_int_equal(frames, 1);
    assert_int_equal(dbx_strv_len(v), 2);
    assert_true(has(v, "src/deep/er/f"));
    assert_true(has(v, "top"));
    dbx_strv_free(v);
    assert_int_equal(mounts_watch_timeout(w, 2000), -1);

    /* 1,000 edits of one file: one path; the rate limit holds the next notice back */
    test_sh("cd '%s' && for i in $(seq 1000); do echo $i >> top; done", t->root);
    pump(w, 1060);
    assert_int_equal(mounts_watch_timeout(w, 1060),
                     1000 + MOUNTS_WATCH_QUIET_MS + MOUNTS_WATCH_INTERVAL_MS - 1060);
    v = take_all(w, 1200, &frames, &rescans);
    assert_int_equal(frames, 1);
    assert_int_equal(dbx_strv_len(v), 1);
    assert_string_equal(v[0], "top");
    dbx_strv_free(v);

    /* a new directory is watched at once, a moved one under its new name, a removed one not */
    test_sh("mkdir -p '%s/new/sub' && echo a > '%s/new/sub/a'", t->root, t->root);
    pump(w, 2000);
    dbx_strv_free(take_all(w, 3000, &frames, &rescans));
    assert_int_equal(mounts_watch_count(w), 8);
    test_sh("mv '%s/new' '%s/src/moved' && echo b > '%s/src/moved/sub/b'", t->root, t->root,
            t->root);
    pump(w, 4000);
    v = take_all(w, 5000, &frames, &rescans);
    assert_true(has(v, "new"));
    assert_true(has(v, "src/moved"));
    assert_true(has(v, "src/moved/sub/b"));
    assert_false(has(v, "new/sub/b"));
    dbx_strv_free(v);
    assert_int_equal(mounts_watch_count(w), 8);
    test_sh("rm -r '%s/src/moved'", t->root);
    pump(w, 6000);
    v = take_all(w, 7000, &frames, &rescans);
    assert_true(has(v, "src/moved"));
    dbx_strv_free(v);
    assert_int_equal(mounts_watch_count(w), 6);

    /* a file created (notice sent) and then written: before a command starts, the write's
     * notice goes at once (take_now), not after the interval; nothing pending: nothing */
    test_sh("echo new > '%s/fresh'", t->root);
    pump(w, 7100);
    dbx_strv_free(take_all(w, 7100 + MOUNTS_WATCH_QUIET_MS, &frames, &rescans));
    test_sh("echo more >> '%s/fresh'", t->root);
    mounts_watch_read(w, 7200); /* no poll first: the events are queued already */
    assert_true(mounts_watch_timeout(w, 7200) > 0);
    struct dbx_buf nb = {0};
    assert_true(mounts_watch_take_now(w, 7200, &nb));
    uint32_t nn;
    char **nv = NULL;
    assert_int_equal(dbx_changed_decode(nb.data, nb.len, &nn, &nv, NULL), 0);
    assert_int_equal(nn, 1);
    assert_string_equal(nv[0], "fresh");
    dbx_strv_free(nv);
    nb.len = nb.off = 0;
    assert_false(mounts_watch_take_now(w, 7200, &nb));
    dbx_buf_free(&nb);

    /* setting times (the guest's way of raising events) is not watched: no loop */
    test_sh("touch -c -m -d @1000000000 '%s/top' '%s/src'", t->root, t->root);
    pump(w, 8000);
    assert_int_equal(mounts_watch_timeout(w, 8000), -1);
    assert_null(mounts_watch_take_warning(w));
    mounts_watch_free(w);
}

static void test_watch_caps(void **state) {
    struct tree *t = *state;
    struct mounts_watch *w = NULL;
    dbx_error *err = NULL;
    /* the watch cap: one warning, the rest of the tree unwatched */
    assert_int_equal(watch_new(t->root, 2, &w, &err), 0);
    assert_int_equal(mounts_watch_count(w), 2);
    _cleanup_free_ char *warn = mounts_watch_take_warning(w);
    assert_non_null(warn);
    assert_non_null(strstr(warn, "max_user_watches"));
    assert_null(mounts_watch_take_warning(w));
    mounts_watch_free(w);

    /* more distinct paths than the pending set holds: a single rescan */
    assert_int_equal(watch_new(t->root, 0, &w, &err), 0);
    test_sh("cd '%s/src' && seq 1 %u | xargs touch", t->root, MOUNTS_WATCH_PENDING_MAX + 10);
    pump(w, 1000);
    int frames, rescans;
    char **v = take_all(w, 2000, &frames, &rescans);
    assert_null(v);
    assert_int_equal(frames, 1);
    assert_int_equal(rescans, 1);
    mounts_watch_free(w);

    /* a few hundred distinct paths: several frames, all of them delivered */
    assert_int_equal(watch_new(t->root, 0, &w, &err), 0);
    test_sh("cd '%s/src' && seq 1 600 | sed 's/^/x/' | xargs touch", t->root);
    pump(w, 1000);
    v = take_all(w, 2000, &frames, &rescans);
    assert_int_equal(dbx_strv_len(v), 600);
    assert_int_equal(frames, 3);
    assert_int_equal(rescans, 0);
    dbx_strv_free(v);
    mounts_watch_free(w);

    /* a root that is not there */
    _cleanup_free_ char *missing = dbx_xasprintf("%s/none", t->root);
    assert_true(mounts_watch_new(missing, 0, &w, &err) < 0);
    assert_non_null(err);
    dbx_error_free(&err);
}

/* The first walk goes a slice at a time: after mounts_watch_new only the root is watched, each
 * mounts_watch_walk watches at most its share, and a file edited in a directory the walk has
 * reached is reported, one it has not reached yet is not; a directory made meanwhile in a
 * watched one is watched at once.  At the end: every directory, once. */
static void test_watch_walk_slices(void **state) {
    struct tree *t = *state;
    test_sh("cd '%s' && for i in $(seq 40); do mkdir -p many/d$i/e; done", t->root);
    struct mounts_watch *w = NULL;
    dbx_error *err = NULL;
    assert_int_equal(mounts_watch_new(t->root, 0, &w, &err), 0);
    assert_int_equal(mounts_watch_count(w), 1);
    assert_true(mounts_watch_walking(w));
    /* breadth first: the root's directories (src, .git, many) */
    assert_true(mounts_watch_walk(w, 3, 1000));
    assert_int_equal(mounts_watch_count(w), 4);
    /* many/d1/e is three levels down: not watched yet, so its edit is not reported */
    test_sh("echo x > '%s/many/d1/e/f' && mkdir '%s/src/made' && echo y > '%s/src/made/g'", t->root,
            t->root, t->root);
    pump(w, 1000);
    int frames, rescans;
    char **v = take_all(w, 2000, &frames, &rescans);
    assert_false(has(v, "many/d1/e/f"));
    assert_true(has(v, "src/made"));
    dbx_strv_free(v);
    while (mounts_watch_walk(w, 7, 1000))
        ;
    assert_false(mounts_watch_walking(w));
    /* ws, src, src/deep, src/deep/er, .git, .git/refs, src/made, many, 40 d, 40 e */
    assert_int_equal(mounts_watch_count(w), 7 + 1 + 80);
    test_sh("echo x >> '%s/many/d40/e/f' && echo z > '%s/src/made/g'", t->root, t->root);
    pump(w, 3000);
    v = take_all(w, 4000, &frames, &rescans);
    assert_true(has(v, "many/d40/e/f"));
    assert_true(has(v, "src/made/g"));
    dbx_strv_free(v);
    assert_false(mounts_watch_walk(w, 1, 1000));
    mounts_watch_free(w);

    /* a directory moved, and one removed, while only queued; a slice of 0 still makes progress:
     * the moved tree is watched under its new name, the removed one not at all */
    test_sh("cd '%s' && mkdir -p gone/x", t->root);
    assert_int_equal(mounts_watch_new(t->root, 0, &w, &err), 0);
    size_t before = mounts_watch_count(w);
    assert_true(mounts_watch_walk(w, 0, 1000));
    assert_int_equal(mounts_watch_count(w), before + 1);
    test_sh("cd '%s' && mv many many2 && rm -r gone", t->root);
    while (mounts_watch_walk(w, 5, 1000))
        ;
    pump(w, 5000);
    dbx_strv_free(take_all(w, 6000, &frames, &rescans));
    assert_int_equal(mounts_watch_count(w), 7 + 1 + 80);
    test_sh("echo x >> '%s/many2/d20/e/f'", t->root);
    pump(w, 7000);
    v = take_all(w, 8000, &frames, &rescans);
    assert_true(has(v, "many2/d20/e/f"));
    dbx_strv_free(v);
    mounts_watch_free(w);

    /* the cap reached in the middle of the walk: it ends there, with the one warning */
    assert_int_equal(mounts_watch_new(t->root, 10, &w, &err), 0);
    while (mounts_watch_walk(w, 3, 1000))
        ;
    assert_false(mounts_watch_walking(w));
    assert_int_equal(mounts_watch_count(w), 10);
    _cleanup_free_ char *warn = mounts_watch_take_warning(w);
    assert_non_null(warn);
    assert_null(mounts_watch_take_warning(w));
    mounts_watch_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changed_path_ok),
        cmocka_unit_test(test_changed_roundtrip),
        cmocka_unit_test(test_changed_rejects),
        cmocka_unit_test(test_changed_garbage),
        cmocka_unit_test_setup_teardown(test_watch_tree, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_watch_walk_slices, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_watch_caps, tree_setup, tree_teardown),
    };
    return cmocka_run_group_tests_name("watch", tests, NULL, NULL);
}

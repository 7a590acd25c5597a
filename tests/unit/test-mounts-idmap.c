/* tests/unit/test-mounts-idmap.c: /etc/subuid parsing, the uid_map ranges, fuse option
 * escaping.  Pure functions; no privileges needed. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "mounts/mounts-internal.h"

#include "tests/unit/helpers.h"

static int find(const char *text, const char *name, uint32_t id, uint32_t *start, uint32_t *count) {
    return mounts_subid_find(text, strlen(text), name, id, start, count);
}

static void test_subid_by_name_and_uid(void **state) {
    uint32_t s = 0, c = 0;
    assert_int_equal(find("bob:200000:65536\nalice:100000:65536\n", "alice", 1000, &s, &c), 0);
    assert_int_equal(s, 100000);
    assert_int_equal(c, 65536);
    /* by numeric uid, as newuidmap accepts */
    assert_int_equal(find("bob:200000:65536\n1000:300000:10\n", "alice", 1000, &s, &c), 0);
    assert_int_equal(s, 300000);
    assert_int_equal(c, 10);
    /* no name (no passwd entry): uid only */
    assert_int_equal(find("alice:1:2\n1000:5000:7", NULL, 1000, &s, &c), 0);
    assert_int_equal(s, 5000);
    /* first usable range wins */
    assert_int_equal(find("alice:100000:1\nalice:200000:65536\n", "alice", 1000, &s, &c), 0);
    assert_int_equal(s, 100000);
    assert_int_equal(c, 1);
    assert_int_equal(find("", "alice", 1000, &s, &c), -ENOENT);
    assert_int_equal(find("bob:100000:65536\n", "alice", 1000, &s, &c), -ENOENT);
    /* a name that looks like a prefix is not a match */
    assert_int_equal(find("alic:100000:65536\nalice2:1:1\n", "alice", 1000, &s, &c), -ENOENT);
}

static void test_subid_rejects_bad_lines(void **state) {
    uint32_t s = 7, c = 7;
    static const char *const bad[] = {
        "alice:100000\n",         /* two fields */
        "alice:100000:65536:1\n", /* four fields */
        "alice::65536\n",         /* empty start */
        "alice:100000:\n",        /* empty count */
        "alice:100000:0\n",       /* count 0 */
        "alice:-1:10\n",          /* negative */
        "alice:+100000:10\n",     /* sign */
        "alice:0x10:10\n",        /* hex */
        "alice: 100000:10\n",     /* space */
        "alice:100000:65536\r\n", /* CR */
        "alice:0:65536\n",        /* would map guest ids onto real root */
        "alice:999:10\n",         /* contains the user's own uid 1000 */
        "alice:4294967295:1\n",   /* the invalid id */
        "alice:4294967290:10\n",  /* runs past it */
        "alice:99999999999:10\n", /* out of range */
        " alice:100000:65536\n",  /* owner with space */
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        if (find(bad[i], "alice", 1000, &s, &c) != -ENOENT) fail_msg("accepted '%s'", bad[i]);
    }
    assert_int_equal(s, 7); /* untouched on failure */
    /* embedded NUL: the line is rejected, the next one still parses */
    static const char nul[] = "alice:1\0:2\nalice:300000:5\n";
    assert_int_equal(mounts_subid_find(nul, sizeof(nul) - 1, "alice", 1000, &s, &c), 0);
    assert_int_equal(s, 300000);
    /* the largest valid range: ends at 4294967294 */
    assert_int_equal(find("alice:4294967285:10\n", "alice", 1000, &s, &c), 0);
    assert_int_equal(s, 4294967285u);
}

static void test_subid_long_lines(void **state) {
    uint32_t s = 0, c = 0;
    /* an over-long line is skipped as a whole, even if it would parse (leading zeros) */
    char buf[2 * MOUNTS_SUBID_LINE_MAX + 64];
    strcpy(buf, "alice:100000:");
    size_t l = strlen(buf);
    memset(buf + l, '0', MOUNTS_SUBID_LINE_MAX);
    strcpy(buf + l + MOUNTS_SUBID_LINE_MAX, "9\nalice:200000:5\n");
    assert_int_equal(find(buf, "alice", 1000, &s, &c), 0);
    assert_int_equal(s, 200000);
    /* the same line within the limit is accepted: the cap, not the zeros, rejected it */
    strcpy(buf + l + 10, "9\n");
    assert_int_equal(find(buf, "alice", 1000, &s, &c), 0);
    assert_int_equal(s, 100000);
    assert_int_equal(c, 9);
    /* past the line cap nothing more is read */
    size_t n = MOUNTS_SUBID_LINES_MAX + 1;
    char *big = dbx_xmalloc(n + 32);
    memset(big, '\n', n);
    strcpy(big + n, "alice:100000:65536\n");
    assert_int_equal(find(big, "alice", 1000, &s, &c), -ENOENT);
    free(big);
}

static void test_ranges(void **state) {
    struct mounts_id_range r[3];
    /* the usual: uid 1000, 65536 subordinate ids */
    assert_int_equal(mounts_idmap_ranges(1000, 1000, 100000, 65536, r), 3);
    assert_int_equal(r[0].inside, 0);
    assert_int_equal(r[0].outside, 100000);
    assert_int_equal(r[0].count, 1000);
    assert_int_equal(r[1].inside, 1000);
    assert_int_equal(r[1].outside, 1000);
    assert_int_equal(r[1].count, 1);
    assert_int_equal(r[2].inside, 1001);
    assert_int_equal(r[2].outside, 101000);
    assert_int_equal(r[2].count, 64536);
    /* a small range: guest root still lands on a subordinate id; ids between are unmapped */
    assert_int_equal(mounts_idmap_ranges(1000, 1000, 100000, 10, r), 2);
    assert_int_equal(r[0].count, 10);
    assert_int_equal(r[1].inside, 1000);
    /* exactly uid-many ids */
    assert_int_equal(mounts_idmap_ranges(1000, 1000, 100000, 1000, r), 2);
    /* the subordinate ids used never exceed the range */
    assert_int_equal(mounts_idmap_ranges(5, 5, 100000, 7, r), 3);
    assert_int_equal(r[0].count + r[2].count, 7);
    assert_int_equal(r[2].outside + r[2].count, 100007);
    /* host root: box uid 1000 -> host 0, the rest to the high range */
    assert_int_equal(mounts_idmap_ranges(1000, 0, 2147483648u, 65536, r), 3);
    assert_int_equal(r[0].inside, 0);
    assert_int_equal(r[0].outside, 2147483648u);
    assert_int_equal(r[0].count, 1000);
    assert_int_equal(r[1].inside, 1000);
    assert_int_equal(r[1].outside, 0);
    assert_int_equal(r[1].count, 1);
    assert_int_equal(r[2].inside, 1001);
    assert_int_equal(r[2].outside, 2147484648u);
    assert_int_equal(r[2].count, 64536);
    /* a setup VM with the workspace: guest root is the user, every other id subordinate */
    assert_int_equal(mounts_idmap_ranges(0, 1000, 100000, 65536, r), 2);
    assert_int_equal(r[0].inside, 0);
    assert_int_equal(r[0].outside, 1000);
    assert_int_equal(r[0].count, 1);
    assert_int_equal(r[1].inside, 1);
    assert_int_equal(r[1].outside, 100000);
    assert_int_equal(r[1].count, 65536);
}

static void test_subid_overlaps(void **state) {
    const char *t = "alice:100000:65536\nbob:2147483000:1000\n";
    assert_true(mounts_subid_overlaps(t, strlen(t), 2147483648u, 65536));
    assert_true(mounts_subid_overlaps(t, strlen(t), 165535, 1));
    assert_false(mounts_subid_overlaps(t, strlen(t), 165536, 1000));
    assert_false(mounts_subid_overlaps(t, strlen(t), 2147484000u, 10));
    assert_false(mounts_subid_overlaps("", 0, 0, 10));
    assert_false(mounts_subid_overlaps("garbage\n:x:y\n", 14, 0, 4294967295u));
}

static void test_fuse_opt_escape(void **state) {
    char *e = mounts_fuse_opt_escape("/a,b\\c/d");
    assert_string_equal(e, "/a\\,b\\\\c/d");
    free(e);
    e = mounts_fuse_opt_escape("/plain");
    assert_string_equal(e, "/plain");
    free(e);
}

static void test_idmap_get_root(void **state) {
    if (getuid() != 0) skip_because("needs root");
    struct mounts_idmap m = {.rootless = true};
    dbx_error *err = NULL;
    assert_int_equal(mounts_idmap_get(&m, &err), 0);
    assert_null(err);
    assert_false(m.rootless);
    assert_int_equal(m.uid, 0);
    assert_int_equal(m.gid, getgid());
    /* the box user is not root in the guest; everything else lands on the high range */
    assert_int_equal(m.box_uid, MOUNTS_ROOT_BOX_ID);
    assert_int_equal(m.box_gid, MOUNTS_ROOT_BOX_ID);
    assert_int_equal(m.sub_uid, MOUNTS_ROOT_SUB_START);
    assert_int_equal(m.sub_uid_count, MOUNTS_ROOT_SUB_COUNT);
    uid_t u;
    gid_t g;
    mounts_box_ids(&u, &g);
    assert_int_equal(u, MOUNTS_ROOT_BOX_ID);
    assert_int_equal(g, MOUNTS_ROOT_BOX_ID);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subid_by_name_and_uid),
        cmocka_unit_test(test_subid_rejects_bad_lines),
        cmocka_unit_test(test_subid_long_lines),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_subid_overlaps),
        cmocka_unit_test(test_fuse_opt_escape),
        cmocka_unit_test(test_idmap_get_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

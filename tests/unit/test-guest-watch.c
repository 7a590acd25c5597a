/* tests/unit/test-guest-watch.c: the guest's reading of the box's inotify watches
 * (guest/init-watch.c) on the host: an fdinfo line of the kernel's parsed into inode and file
 * handle, lines of another filesystem, of another kind or cut or malformed refused; a mtime
 * near now touched to now and one set on purpose kept; the touched paths' table; the box's own
 * writes, recorded, not touched by their notice and touched once changed since; and the box's
 * processes gathered from its cgroup subtree (a fake one in a temporary directory), nested
 * leaves included, garbage in cgroup.procs skipped. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* init-watch.c is guest code (the static init links it); the test compiles it in, and
 * init-procs.c for the reader of cgroup.procs it uses. */
#include "guest/init-procs.c"
#include "guest/init-watch.c"

#include "helpers.h"

/* what init-procs.c calls elsewhere: nothing of it runs here */
void init_log(const char *fmt, ...) {}
void agent_send(struct agent *a, uint8_t type, uint32_t sid, const void *p, size_t n) {}
void agent_send_error(struct agent *a, uint32_t sid, uint32_t code, const char *msg) {}
bool read_proc(const char *path, char *buf, size_t size) {
    return false;
}
void stats_box_counts(struct agent *a, uint64_t *ret_oom_kills, uint64_t *ret_pids_refused) {}
int user_read_db(const char *path, char **ret, dbx_error **err) {
    return dbx_error_set(err, ENOSYS, "not here");
}

/* ---- fdinfo lines ------------------------------------------------------------------------- */

#define GOOD                                                                                       \
    "inotify wd:1f ino:a7225c sdev:12 mask:fce ignored_mask:0 fhandle-bytes:c fhandle-type:81 "    \
    "f_handle:000000000700000001000000\n"

static void test_parse_mark(void **state) {
    struct mark m = {0};
    assert_true(parse_mark(GOOD, 0x12, &m));
    assert_int_equal(m.wd, 0x1f);
    assert_int_equal(m.ino, 0xa7225c);
    assert_int_equal(m.type, 0x81);
    assert_int_equal(m.len, 12);
    static const uint8_t fh[12] = {0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0};
    assert_memory_equal(m.fh, fh, sizeof(fh));
    /* the same line of another filesystem: not ours */
    assert_false(parse_mark(GOOD, 0x13, &m));
    assert_false(parse_mark(GOOD, 0x1, &m)); /* "12" is not a prefix match of 1 */
}

static void test_parse_mark_refused(void **state) {
    static const char *bad[] = {
        "",
        "\n",
        "pos:\t0\n",
        "fanotify ino:a7225c sdev:12 mask:fce fhandle-bytes:c fhandle-type:81 f_handle:00\n",
        /* no handle: the filesystem could not encode one */
        "inotify wd:1 ino:a7225c sdev:12 mask:fce ignored_mask:0\n",
        "inotify wd:1 ino:a7225c sdev:12 mask:fce ignored_mask:0 fhandle-bytes:0 "
        "fhandle-type:81 f_handle:\n",
        /* longer than a FUSE handle */
        "inotify wd:1 ino:1 sdev:12 mask:fce ignored_mask:0 fhandle-bytes:20 fhandle-type:81 "
        "f_handle:0000000000000000000000000000000000000000000000000000000000000000\n",
        /* the bytes cut short, and not hex */
        "inotify wd:1 ino:1 sdev:12 mask:fce ignored_mask:0 fhandle-bytes:c fhandle-type:81 "
        "f_handle:0000000007\n",
        "inotify wd:1 ino:1 sdev:12 mask:fce ignored_mask:0 fhandle-bytes:c fhandle-type:81 "
        "f_handle:00000000070000000100zz00\n",
        "inotify wd:1 ino:1 sdev:12 mask:fce ignored_mask:0 fhandle-bytes:c fhandle-type:81 "
        "f_handle:\n",
        /* a type the kernel never gives */
        "inotify wd:1 ino:1 sdev:12 mask:fce ignored_mask:0 fhandle-bytes:c fhandle-type:0 "
        "f_handle:000000000700000001000000\n",
        "inotify wd:1 ino:1 sdev:12 mask:fce ignored_mask:0 fhandle-bytes:c fhandle-type:-1 "
        "f_handle:000000000700000001000000\n",
        "inotify wd:1 ino:1 sdev:12 mask:fce ignored_mask:0 fhandle-bytes:c fhandle-type:100 "
        "f_handle:000000000700000001000000\n",
        /* sdev followed by garbage, missing ino */
        "inotify wd:1 ino:1 sdev:12x mask:fce fhandle-bytes:c fhandle-type:81 "
        "f_handle:000000000700000001000000\n",
        "inotify wd:1 sdev:12 mask:fce fhandle-bytes:c fhandle-type:81 "
        "f_handle:000000000700000001000000\n",
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        struct mark m = {0};
        if (parse_mark(bad[i], 0x12, &m)) fail_msg("accepted: %s", bad[i]);
    }
}

/* ---- the rest of the file's small parts --------------------------------------------------- */

static void test_time_kept(void **state) {
    struct timespec now = {.tv_sec = 1000000, .tv_nsec = 500000000};
    struct statx_timestamp near = {.tv_sec = 999999, .tv_nsec = 0};         /* 1.5 s ago */
    struct statx_timestamp past = {.tv_sec = 999998, .tv_nsec = 400000000}; /* 2.1 s ago */
    struct statx_timestamp future = {.tv_sec = 1000002, .tv_nsec = 600000000};
    struct statx_timestamp epoch = {.tv_sec = 0, .tv_nsec = 0};
    assert_false(time_kept(&near, &now));
    assert_true(time_kept(&past, &now));
    assert_true(time_kept(&future, &now));
    assert_true(time_kept(&epoch, &now));
}

static void test_touched_table(void **state) {
    struct touched t[8] = {{0}};
    const char *paths[] = {"w/app.js", "src/a.ts", "x", "w/app.js"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(paths); i++)
        touched_add(t, 8, paths[i], 100 + i);
    size_t used = 0;
    for (size_t i = 0; i < 8; i++)
        used += t[i].path != NULL;
    assert_int_equal(used, 3); /* a path twice is one entry: its first inode */
    for (size_t i = 0; i < 3; i++) {
        const struct touched *f = touched_find(t, 8, paths[i]);
        assert_non_null(f);
        assert_int_equal(f->ino, 100 + i);
    }
    assert_null(touched_find(t, 8, "w/app.j"));
    assert_null(touched_find(t, 8, ""));
}

/* readlink of a watched inode's descriptor: a name below the workspace, or none */
static void test_name_below(void **state) {
    char buf[64];
    struct {
        const char *link, *ws, *want;
    } cases[] = {
        {"/home/u/src/p/w/app.js", "/home/u/src/p", "w/app.js"},
        {"/home/u/src/p/app.js", "/home/u/src/p", "app.js"},
        {"/", "/home/u/src/p", NULL},                              /* disconnected */
        {"/home/u/src/p/app.js (deleted)", "/home/u/src/p", NULL}, /* unhashed */
        {"/home/u/src/p", "/home/u/src/p", NULL},                  /* the root itself */
        {"/home/u/src/p/", "/home/u/src/p", NULL},
        {"/home/u/src/pq/app.js", "/home/u/src/p", NULL}, /* a sibling with the prefix */
        {"/home/u/src/p/app.js", NULL, NULL},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        snprintf(buf, sizeof(buf), "%s", cases[i].link);
        const char *got = name_below(buf, (ssize_t)strlen(cases[i].link), sizeof(buf), cases[i].ws);
        if (!cases[i].want) {
            if (got) fail_msg("'%s' gave '%s'", cases[i].link, got);
        } else {
            assert_non_null(got);
            assert_string_equal(got, cases[i].want);
        }
    }
    /* a link that filled the buffer may have been cut: no name */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "/w/", 3);
    assert_null(name_below(buf, sizeof(buf) - 1, sizeof(buf), "/w"));
    assert_null(name_below(buf, -1, sizeof(buf), "/w")); /* readlink failed */
}

/* ---- the box's own writes ----------------------------------------------------------------- */

static void put(int dfd, const char *path, const char *text);

static int64_t mtime_ns(int dfd, const char *name) {
    struct stat st;
    assert_int_equal(fstatat(dfd, name, &st, 0), 0);
    return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

/* mtime set to half a second ago (never whole seconds): well within the 2 s a notice's touch
 * moves to now */
static void set_recent(int dfd, const char *name) {
    struct timespec now;
    assert_int_equal(clock_gettime(CLOCK_REALTIME, &now), 0);
    int64_t t = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - 500000000;
    if (t % 1000000000 == 0) t++;
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                             {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000}};
    assert_int_equal(utimensat(dfd, name, ts, 0), 0);
}

/* what the box wrote is recorded; the notice of it touches nothing, a later change (here a time
 * set, as a host write would move it) is touched again, and so is a file whose record's slot
 * another took, a directory, and a file whose time was whole seconds when recorded */
static void test_own_writes(void **state) {
    char root[] = "/tmp/dbx-test-own.XXXXXX";
    assert_non_null(mkdtemp(root));
    int ws = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(ws >= 0);
    struct agent a = {.ws_path = root};
    own = dbx_xcalloc((size_t)1 << OWN_BITS, sizeof(*own));
    put(ws, "f", "one\n");
    set_recent(ws, "f");
    int64_t t0 = mtime_ns(ws, "f");
    uint64_t ino = 0;
    /* not recorded: a notice touches it (to now) */
    assert_int_equal(touch(&a, ws, "f", &ino), 0);
    assert_true(mtime_ns(ws, "f") > t0);
    /* written by the box (recorded at its close): its notice leaves it alone */
    put(ws, "f", "two\n");
    set_recent(ws, "f");
    t0 = mtime_ns(ws, "f");
    int fd = openat(ws, "f", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    own_record(fd);
    assert_int_equal(touch(&a, ws, "f", &ino), 0);
    assert_int_equal(mtime_ns(ws, "f"), t0);
    assert_int_equal(touch(&a, ws, "f", &ino), 0); /* a second notice of the same write too */
    assert_int_equal(mtime_ns(ws, "f"), t0);
    /* changed since (the host wrote it: another mtime): touched */
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                             {.tv_sec = t0 / 1000000000, .tv_nsec = t0 % 1000000000 - 1}};
    assert_int_equal(utimensat(ws, "f", ts, 0), 0);
    assert_int_equal(touch(&a, ws, "f", &ino), 0);
    assert_true(mtime_ns(ws, "f") > t0);
    /* the same record, another size: touched */
    set_recent(ws, "f");
    own_record(fd);
    put(ws, "f", "three\n");
    set_recent(ws, "f");
    t0 = mtime_ns(ws, "f");
    assert_int_equal(touch(&a, ws, "f", &ino), 0);
    assert_true(mtime_ns(ws, "f") > t0);
    /* a file whose inode takes the slot: f's record is gone */
    set_recent(ws, "f");
    t0 = mtime_ns(ws, "f");
    own_record(fd);
    own_slot(ino)->ino = ino + 1;
    assert_int_equal(touch(&a, ws, "f", &ino), 0);
    assert_true(mtime_ns(ws, "f") > t0);
    /* whole seconds: not recorded */
    set_recent(ws, "f");
    own_record(fd);
    struct timespec whole[2] = {{.tv_nsec = UTIME_OMIT}, {0}};
    assert_int_equal(clock_gettime(CLOCK_REALTIME, &whole[1]), 0);
    whole[1].tv_nsec = 0; /* this second's start: less than 1 s ago */
    assert_int_equal(utimensat(ws, "f", whole, 0), 0);
    own_record(fd);
    t0 = mtime_ns(ws, "f");
    assert_int_equal(touch(&a, ws, "f", &ino), 0);
    assert_true(mtime_ns(ws, "f") != t0);
    /* a directory is never the box's own write */
    assert_int_equal(mkdirat(ws, "d", 0755), 0);
    set_recent(ws, "d");
    t0 = mtime_ns(ws, "d");
    int dfd = openat(ws, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    own_record(dfd);
    assert_int_equal(touch(&a, ws, "d", &ino), 0);
    assert_true(mtime_ns(ws, "d") > t0);
    close(dfd);
    close(fd);
    close(ws);
    free(own);
    own = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}

/* ---- the box's processes from its cgroup -------------------------------------------------- */

static void put(int dfd, const char *path, const char *text) {
    int fd = openat(dfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int has(const struct pids *p, pid_t pid) {
    int n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->v[i] == pid;
    return n;
}

static void test_cgroup_pids(void **state) {
    char root[] = "/tmp/dbx-test-watch.XXXXXX";
    assert_non_null(mkdtemp(root));
    int box = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(box >= 0);
    put(box, "cgroup.procs", "");
    assert_int_equal(mkdirat(box, "s1", 0755), 0);
    put(box, "s1/cgroup.procs", "101\n102\n");
    assert_int_equal(mkdirat(box, "s2", 0755), 0);
    put(box, "s2/cgroup.procs", "201\nnot-a-pid\n0\n1\n-5\n99999999999\n");
    assert_int_equal(mkdirat(box, "s2/inner", 0755), 0); /* a leaf's own child */
    put(box, "s2/inner/cgroup.procs", "301\n");
    assert_int_equal(mkdirat(box, "s3", 0755), 0); /* no cgroup.procs: nothing, no error */
    put(box, "stray-file", "401\n");
    struct pids p = {0};
    cgroup_pids(box, 0, &p);
    assert_int_equal(p.n, 4);
    assert_int_equal(has(&p, 101) + has(&p, 102) + has(&p, 201) + has(&p, 301), 4);
    free(p.v);
    close(box);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_mark), cmocka_unit_test(test_parse_mark_refused),
        cmocka_unit_test(test_time_kept),  cmocka_unit_test(test_touched_table),
        cmocka_unit_test(test_name_below), cmocka_unit_test(test_cgroup_pids),
        cmocka_unit_test(test_own_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

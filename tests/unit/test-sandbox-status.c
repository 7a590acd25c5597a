/* Unit tests: the status record (sandbox/sandbox-status.c): its binary form round-trips, the
 * decoder refuses anything off by a byte, and the JSON `devbox status --json` prints keeps its
 * keys, its port forwards an array of objects. */
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "sandbox/sandbox-internal.h"
#include "sandbox/sandbox.h"

static void sample(struct dbx_status *st) {
    *st = (struct dbx_status){
        .state = DBX_VM_PAUSED,
        .project = dbx_xstrdup("/home/u/proj"),
        .image = dbx_xstrdup("docker.io/library/debian:bookworm"),
        .pid = 100,
        .qemu_pid = 101,
        .virtiofsd_pid = -1,
        .accel = dbx_xstrdup("tcg"),
        .kernel = dbx_xstrdup("6.1.0-57-cloud-amd64"),
        .uptime_s = 42,
        .memory_mib = 384,
        .rss_kib = 123456,
        .cpus = 2,
        .sessions = 3,
        .started = 1700000000,
        .network = DBX_NET_ALLOWLIST,
        .seccomp = DBX_SECCOMP_STRICT,
        .connections = 7,
        .ports = dbx_xstrdup("127.0.0.1:3000 -> 3000\n"),
        .protected_writes = 5,
        .protected_first = dbx_xstrdup(".claude/settings.json"),
        .idle_s = 252,
        .idle_stop_s = 1800,
        .aslr = DBX_ASLR_OFF,
    };
    memcpy(st->id, "0123456789abcdef", 17);
    memset(st->profile_hash, 'a', 64);
    st->profile_files = dbx_strv_push(st->profile_files, "devbox.ini");
    st->profile_files = dbx_strv_push(st->profile_files, "sub/base.ini");
}

static void test_roundtrip(void **state) {
    (void)state;
    struct dbx_status a, b = {0};
    struct dbx_buf buf = {0};
    dbx_error *err = NULL;
    sample(&a);
    dbx_status_encode(&a, &buf);
    assert_int_equal(dbx_status_decode(buf.data, buf.len, &b, &err), 0);
    assert_int_equal(b.state, DBX_VM_PAUSED);
    assert_string_equal(b.project, a.project);
    assert_string_equal(b.id, a.id);
    assert_string_equal(b.image, a.image);
    assert_int_equal(b.pid, 100);
    assert_int_equal(b.qemu_pid, 101);
    assert_int_equal(b.virtiofsd_pid, -1);
    assert_string_equal(b.accel, "tcg");
    assert_string_equal(b.kernel, a.kernel);
    assert_int_equal(b.uptime_s, 42);
    assert_int_equal(b.memory_mib, 384);
    assert_int_equal(b.rss_kib, 123456);
    assert_int_equal(b.cpus, 2);
    assert_int_equal(b.sessions, 3);
    assert_int_equal(b.started, 1700000000);
    assert_string_equal(b.profile_hash, a.profile_hash);
    assert_int_equal(dbx_strv_len(b.profile_files), 2);
    assert_string_equal(b.profile_files[1], "sub/base.ini");
    assert_int_equal(b.network, DBX_NET_ALLOWLIST);
    assert_int_equal(b.seccomp, DBX_SECCOMP_STRICT);
    assert_int_equal(b.connections, 7);
    assert_string_equal(b.ports, a.ports);
    assert_int_equal(b.protected_writes, 5);
    assert_string_equal(b.protected_first, ".claude/settings.json");
    assert_int_equal(b.idle_s, 252);
    assert_int_equal(b.idle_stop_s, 1800);
    assert_int_equal(b.aslr, DBX_ASLR_OFF);
    dbx_status_clear(&b);
    /* an image may be absent (a stopped project); no profile files is NULL, not empty */
    free(a.image);
    a.image = NULL;
    dbx_strv_free(a.profile_files);
    a.profile_files = NULL;
    free(a.protected_first);
    a.protected_first = NULL;
    buf.len = buf.off = 0;
    dbx_status_encode(&a, &buf);
    assert_int_equal(dbx_status_decode(buf.data, buf.len, &b, &err), 0);
    assert_null(b.image);
    assert_null(b.profile_files);
    assert_null(b.protected_first);
    dbx_status_clear(&b);
    dbx_status_clear(&a);
    dbx_buf_free(&buf);
}

/* Every prefix is refused (no field is optional by accident), and so is a trailing byte. */
static void test_truncated_and_trailing(void **state) {
    (void)state;
    struct dbx_status a, b = {0};
    struct dbx_buf buf = {0};
    sample(&a);
    dbx_status_encode(&a, &buf);
    for (size_t n = 0; n < buf.len; n++) {
        dbx_error *err = NULL;
        assert_true(dbx_status_decode(buf.data, n, &b, &err) < 0);
        assert_non_null(strstr(err->msg, "malformed status record"));
        dbx_error_free(&err);
    }
    dbx_buf_put_u8(&buf, 0);
    dbx_error *err = NULL;
    assert_true(dbx_status_decode(buf.data, buf.len, &b, &err) < 0);
    dbx_error_free(&err);
    dbx_status_clear(&a);
    dbx_buf_free(&buf);
}

/* A record from a supervisor started by an earlier devbox (version 2, no idle fields; version
 * 3, no aslr) still reads (its network mode is what `--network none` checks); other versions
 * do not. */
static void test_version2(void **state) {
    (void)state;
    struct dbx_status a, b = {0};
    struct dbx_buf buf = {0};
    sample(&a);
    dbx_status_encode(&a, &buf);
    buf.data[0] = 2;
    assert_int_equal(dbx_status_decode(buf.data, buf.len - 17, &b, NULL), 0);
    assert_int_equal(b.network, DBX_NET_ALLOWLIST);
    assert_int_equal(b.idle_s, 0);
    assert_int_equal(b.idle_stop_s, 0);
    assert_int_equal(b.aslr, DBX_ASLR_UNKNOWN);
    dbx_status_clear(&b);
    assert_true(dbx_status_decode(buf.data, buf.len - 1, &b, NULL) < 0); /* v2 with idle */
    buf.data[0] = 3;
    assert_int_equal(dbx_status_decode(buf.data, buf.len - 1, &b, NULL), 0);
    assert_int_equal(b.idle_stop_s, 1800);
    assert_int_equal(b.aslr, DBX_ASLR_UNKNOWN);
    dbx_status_clear(&b);
    assert_true(dbx_status_decode(buf.data, buf.len, &b, NULL) < 0); /* v3 with aslr */
    buf.data[0] = 4;
    buf.data[buf.len - 1] = DBX_ASLR_OFF + 1;
    assert_true(dbx_status_decode(buf.data, buf.len, &b, NULL) < 0);
    buf.data[buf.len - 1] = DBX_ASLR_UNKNOWN; /* version 4 says on or off */
    assert_true(dbx_status_decode(buf.data, buf.len, &b, NULL) < 0);
    buf.data[0] = 1;
    assert_true(dbx_status_decode(buf.data, buf.len - 17, &b, NULL) < 0);
    buf.data[0] = 5;
    assert_true(dbx_status_decode(buf.data, buf.len, &b, NULL) < 0);
    dbx_status_clear(&a);
    dbx_buf_free(&buf);
}

/* Out-of-range values: state, network and seccomp enums, an id or hash that is not hex. */
static void test_out_of_range(void **state) {
    (void)state;
    struct dbx_status a, b = {0};
    dbx_error *err = NULL;
    for (int k = 0; k < 5; k++) {
        struct dbx_buf buf = {0};
        sample(&a);
        if (k == 0) a.state = (enum dbx_vm_state)9;
        if (k == 1) a.network = 3;
        if (k == 2) a.seccomp = 3;
        if (k == 3) a.id[3] = 'G';
        if (k == 4) a.profile_hash[0] = 'x';
        dbx_status_encode(&a, &buf);
        assert_true(dbx_status_decode(buf.data, buf.len, &b, &err) < 0);
        dbx_error_free(&err);
        dbx_status_clear(&a);
        dbx_buf_free(&buf);
    }
}

static void test_json_keys(void **state) {
    (void)state;
    struct dbx_status a;
    sample(&a);
    a.state = DBX_VM_RUNNING;
    char *j = dbx_status_json(&a);
    assert_string_equal(
        j, "{\"accel\":\"tcg\",\"aslr\":false,\"connections\":7,\"cpus\":2,\"id\":"
           "\"0123456789abcdef\","
           "\"idle_s\":252,\"idle_stop_s\":1800,\"image\":\"docker.io/library/"
           "debian:bookworm\",\"kernel\":\"6.1.0-57-cloud-amd64\","
           "\"memory_mib\":384,\"network\":\"allowlist\",\"pid\":100,\"ports\":[{\"address\":"
           "\"127.0.0.1\",\"guest\":3000,\"host\":3000}],\"profile_files\":[\"devbox.ini\","
           "\"sub/base.ini\"],\"profile_hash\":"
           "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"project\":"
           "\"/home/u/proj\",\"protected_first\":\".claude/settings.json\",\"protected_writes\":5,"
           "\"qemu_pid\":101,\"rss_kib\":123456,\"seccomp\":\"strict\","
           "\"sessions\":3,\"started\":1700000000,\"state\":\"running\",\"uptime_s\":42,"
           "\"virtiofsd_pid\":-1}");
    free(j);
    /* on; not known (a record of version 2 or 3): null */
    a.aslr = DBX_ASLR_ON;
    j = dbx_status_json(&a);
    assert_non_null(strstr(j, "\"aslr\":true,"));
    free(j);
    a.aslr = DBX_ASLR_UNKNOWN;
    j = dbx_status_json(&a);
    assert_non_null(strstr(j, "\"aslr\":null,"));
    free(j);
    a.profile_checked = a.profile_changed = true;
    j = dbx_status_json(&a);
    assert_non_null(strstr(j, "\"profile_changed\":true"));
    free(j);
    dbx_status_clear(&a);
    /* stopped: the fields that have no value are null (the image too when it is not known) */
    struct dbx_status s = {.state = DBX_VM_STOPPED, .project = dbx_xstrdup("/p")};
    memcpy(s.id, "0123456789abcdef", 17);
    j = dbx_status_json(&s);
    assert_string_equal(
        j, "{\"accel\":null,\"id\":\"0123456789abcdef\",\"image\":null,\"memory_mib\":null,"
           "\"pid\":null,\"ports\":[],\"project\":\"/p\",\"state\":\"stopped\",\"uptime_s\":"
           "null}");
    free(j);
    /* a project path that is not UTF-8 (a host path need not be): U+FFFD, and JSON all the same */
    free(s.project);
    s.project = dbx_xstrdup("/home/u/caf\xe9\"q");
    j = dbx_status_json(&s);
    assert_non_null(strstr(j, "\"project\":\"/home/u/caf\\uFFFD\\\"q\""));
    free(j);
    dbx_status_clear(&s);
}

/* The forwards' text (the status record's, `port ls`'s) as JSON: each line dbx_port_line
 * writes, an IPv6 address too; a line of another form is left out. */
static void test_ports_json(void **state) {
    (void)state;
    _cleanup_free_ char *a = dbx_port_line("127.0.0.1", 3000, 8000);
    _cleanup_free_ char *b = dbx_port_line("::1", 65535, 1);
    assert_string_equal(a, "127.0.0.1:3000 -> 8000\n");
    _cleanup_free_ char *text = dbx_xasprintf("%s%s", a, b);
    char *j = dbx_ports_json(text);
    assert_string_equal(j, "[{\"address\":\"127.0.0.1\",\"guest\":8000,\"host\":3000},"
                           "{\"address\":\"::1\",\"guest\":1,\"host\":65535}]");
    free(j);
    static const char *const none[] = {NULL,
                                       "",
                                       "\n\n",
                                       "127.0.0.1:3000\n",
                                       "127.0.0.1:0 -> 3000\n",
                                       "127.0.0.1:3000 -> 65536\n",
                                       ":3000 -> 3000\n",
                                       "127.0.0.1:x -> 3000\n",
                                       "127.0.0.1:3000 -> 3000 \n",
                                       "3000 -> 3000\n"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(none); i++) {
        j = dbx_ports_json(none[i]);
        assert_string_equal(j, "[]");
        free(j);
    }
}

/* ---- the guest's PROTECTED reports (dbx_protected_update) -------------------------------- */

static char *const prot_paths[] = {".claude", ".git/hooks", ".envrc", NULL};

static int report(struct dbx_protected *pw, uint64_t count, const char *first, uint64_t now,
                  char **ret_msg) {
    struct dbx_buf b = {0};
    dbx_protected_encode(&b, count, first);
    dbx_error *err = NULL;
    int r = dbx_protected_update(pw, b.data, b.len, prot_paths, 3, now, &err);
    if (ret_msg) *ret_msg = err ? dbx_xstrdup(err->msg) : NULL;
    dbx_error_free(&err);
    dbx_buf_free(&b);
    return r;
}

static void test_protected_valid(void **state) {
    (void)state;
    struct dbx_protected pw = {0};
    assert_int_equal(report(&pw, 1, ".claude/settings.json", 1000, NULL), 0);
    assert_int_equal(pw.count, 1);
    assert_string_equal(pw.first, ".claude/settings.json");
    /* the count grows (or stays), the first path stays */
    assert_int_equal(report(&pw, 7, ".claude/settings.json", 2000, NULL), 0);
    assert_int_equal(report(&pw, 7, ".claude/settings.json", 3000, NULL), 0);
    assert_int_equal(pw.count, 7);
    /* at, below and above (a parent renamed) a protected path */
    struct dbx_protected q = {0};
    assert_int_equal(report(&q, 1, ".envrc", 0, NULL), 0);
    q = (struct dbx_protected){0};
    assert_int_equal(report(&q, 1, ".git", 0, NULL), 0);
    q = (struct dbx_protected){0};
    assert_int_equal(report(&q, 1, ".git/hooks/pre-commit", 0, NULL), 0);
}

static void test_protected_refused(void **state) {
    (void)state;
    static const char *const bad_paths[] = {
        "",
        "/etc/passwd",
        "../outside",
        ".claude/../../x",
        "./.claude",
        ".claude//x",
        ".claude/",
        "src/main.c",
        ".claudex",
        ".git/config",
        ".git/hooksx",
        ".claude/\x1b[2J",
        ".claude/\xc3\xa9",
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad_paths); i++) {
        struct dbx_protected pw = {0};
        char *msg = NULL;
        assert_int_equal(report(&pw, 1, bad_paths[i], 0, &msg), -EPROTO);
        assert_non_null(strstr(msg, "is not a protected path"));
        free(msg);
        assert_int_equal(pw.count, 0);
        assert_string_equal(pw.first, "");
    }
    struct dbx_protected pw = {0};
    char *msg = NULL;
    /* count 0, a count going down, a first path that changes */
    assert_int_equal(report(&pw, 0, ".envrc", 0, NULL), -EPROTO);
    assert_int_equal(report(&pw, 5, ".envrc", 1000, NULL), 0);
    assert_int_equal(report(&pw, 4, ".envrc", 2000, &msg), -EPROTO);
    assert_non_null(strstr(msg, "count 4 after 5"));
    free(msg);
    assert_int_equal(report(&pw, 6, ".claude", 3000, &msg), -EPROTO);
    assert_non_null(strstr(msg, "first path changed"));
    free(msg);
    assert_int_equal(pw.count, 5);
    assert_string_equal(pw.first, ".envrc");
    /* garbage: truncated, trailing bytes, oversized path, embedded NUL */
    static const uint8_t junk[][16] = {{1, 2, 3}, {0}};
    dbx_error *err = NULL;
    assert_int_equal(dbx_protected_update(&pw, junk[0], 3, prot_paths, 3, 5000, &err), -EPROTO);
    dbx_error_free(&err);
    struct dbx_buf b = {0};
    dbx_protected_encode(&b, 9, ".envrc");
    dbx_buf_put_u8(&b, 0);
    assert_int_equal(dbx_protected_update(&pw, b.data, b.len, prot_paths, 3, 5001, &err), -EPROTO);
    dbx_error_free(&err);
    b.len = b.off = 0;
    dbx_buf_put_u64(&b, 9);
    dbx_buf_put_u32(&b, DBX_PROTECTED_PATH_MAX + 1);
    char *big = dbx_xcalloc(DBX_PROTECTED_PATH_MAX + 1, 1);
    memset(big, 'a', DBX_PROTECTED_PATH_MAX + 1);
    dbx_buf_put(&b, big, DBX_PROTECTED_PATH_MAX + 1);
    free(big);
    assert_int_equal(dbx_protected_update(&pw, b.data, b.len, prot_paths, 3, 5002, &err), -EPROTO);
    dbx_error_free(&err);
    b.len = b.off = 0;
    dbx_buf_put_u64(&b, 9);
    dbx_buf_put_u32(&b, 8);
    dbx_buf_put(&b, ".env\0rc\0", 8);
    assert_int_equal(dbx_protected_update(&pw, b.data, b.len, prot_paths, 3, 5003, &err), -EPROTO);
    dbx_error_free(&err);
    dbx_buf_free(&b);
    assert_int_equal(pw.count, 5);
    /* the encoder cuts an oversized path (the guest never sends more than the cap) */
    big = dbx_xcalloc(2 * DBX_PROTECTED_PATH_MAX, 1);
    memset(big, 'b', 2 * DBX_PROTECTED_PATH_MAX - 1);
    dbx_protected_encode(&b, 1, big);
    assert_int_equal(b.len, 8 + 4 + DBX_PROTECTED_PATH_MAX);
    free(big);
    dbx_buf_free(&b);
}

/* More than DBX_PROTECTED_RATE frames in a second are dropped, valid or not; the next second
 * takes them again. */
static void test_protected_rate(void **state) {
    (void)state;
    struct dbx_protected pw = {0};
    for (uint32_t i = 0; i < DBX_PROTECTED_RATE; i++)
        assert_int_equal(report(&pw, i + 1, ".envrc", 10000 + i, NULL), 0);
    assert_int_equal(report(&pw, 50, ".envrc", 10500, NULL), -EAGAIN);
    assert_int_equal(report(&pw, 50, "junk/../x", 10999, NULL), -EAGAIN);
    assert_int_equal(pw.count, DBX_PROTECTED_RATE);
    assert_int_equal(report(&pw, 50, ".envrc", 11000, NULL), 0);
    assert_int_equal(pw.count, 50);
}

/* The fuzz corpus's seeds (tests/fuzz/gen-corpus-status.py) are what their names say: a
 * "bad-", "old-", "trailing" or "truncated" one is refused, every other decodes.  Otherwise the
 * fuzzer starts from no valid record of the current version (the generator wrote version 2 until
 * version 4), or a seed meant to be refused tests nothing (a field added at the end moved the
 * byte bad-protected-flag had replaced). */
static void test_corpus_seeds(void **state) {
    (void)state;
    static const char dir[] = "tests/fuzz/corpus/status";
    DIR *d = opendir(dir);
    if (!d) {
        print_message("skipped: run from elsewhere than the source tree\n");
        skip();
    }
    size_t good = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char *path = dbx_xasprintf("%s/%s", dir, e->d_name);
        char *buf = NULL;
        size_t len = 0;
        dbx_error *err = NULL;
        assert_int_equal(dbx_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len, &err), 0);
        free(path);
        bool bad = !strncmp(e->d_name, "bad-", 4) || !strncmp(e->d_name, "old-", 4) ||
                   !strcmp(e->d_name, "trailing") || !strcmp(e->d_name, "truncated") ||
                   !strcmp(e->d_name, "aslr-unknown");
        struct dbx_status st = {0};
        int r = dbx_status_decode((const uint8_t *)buf, len, &st, NULL);
        if ((r == 0) == bad) fail_msg("seed %s: %s", e->d_name, bad ? "decodes" : "refused");
        good += r == 0 && (uint8_t)buf[0] == 4;
        dbx_status_clear(&st);
        free(buf);
    }
    closedir(d);
    assert_true(good >= 3); /* running, paused-open-strict, aslr-on, ... at version 4 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),         cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_out_of_range),      cmocka_unit_test(test_json_keys),
        cmocka_unit_test(test_ports_json),        cmocka_unit_test(test_protected_valid),
        cmocka_unit_test(test_protected_refused), cmocka_unit_test(test_protected_rate),
        cmocka_unit_test(test_corpus_seeds),      cmocka_unit_test(test_version2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

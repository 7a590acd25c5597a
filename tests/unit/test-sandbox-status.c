/* Unit tests: the status record (sandbox/sandbox-status.c): its binary form round-trips, the
 * decoder refuses anything off by a byte, and the JSON `devbox status --json` prints keeps its
 * keys. */
#define _GNU_SOURCE
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
    dbx_status_clear(&b);
    /* an image may be absent (a stopped project); no profile files is NULL, not empty */
    free(a.image);
    a.image = NULL;
    dbx_strv_free(a.profile_files);
    a.profile_files = NULL;
    buf.len = buf.off = 0;
    dbx_status_encode(&a, &buf);
    assert_int_equal(dbx_status_decode(buf.data, buf.len, &b, &err), 0);
    assert_null(b.image);
    assert_null(b.profile_files);
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
        j, "{\"accel\":\"tcg\",\"connections\":7,\"cpus\":2,\"id\":\"0123456789abcdef\",\"image\":"
           "\"docker.io/library/debian:bookworm\",\"kernel\":\"6.1.0-57-cloud-amd64\","
           "\"memory_mib\":384,\"network\":\"allowlist\",\"pid\":100,\"ports\":\"127.0.0.1:3000 "
           "-> 3000\\n\",\"profile_files\":[\"devbox.ini\",\"sub/base.ini\"],\"profile_hash\":"
           "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"project\":"
           "\"/home/u/proj\",\"qemu_pid\":101,\"rss_kib\":123456,\"seccomp\":\"strict\","
           "\"sessions\":3,\"started\":1700000000,\"state\":\"running\",\"uptime_s\":42,"
           "\"virtiofsd_pid\":-1}");
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
           "\"pid\":null,\"project\":\"/p\",\"state\":\"stopped\",\"uptime_s\":"
           "null}");
    free(j);
    dbx_status_clear(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_json_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

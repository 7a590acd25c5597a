/* tests/unit/test-oci-store.c: the content store: digest grammar before paths, ingest ->
 * verify -> commit (a wrong digest or size never looks complete), resume re-hashes what is in
 * ingest/, blob locks between processes, gc, and an OCI layout import with a lying blob. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include "oci/oci-internal.h"

static char dir[] = "/tmp/test-oci-store-XXXXXX";
static struct oci_store *st;

static int setup(void **state) {
    if (!mkdtemp(dir)) return -1;
    char p[128];
    snprintf(p, sizeof(p), "%s/s", dir);
    return oci_store_open(p, &st, NULL);
}
static int teardown(void **state) {
    oci_store_free(st);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_grammar(void **state) {
    int fd = -1;
    dbx_error *err = NULL;
    assert_true(oci_store_open_blob(st, "sha256:../../../etc/passwd", &fd, &err) < 0);
    assert_non_null(strstr(err->msg, "invalid digest"));
    dbx_error_free(&err);
    struct oci_ingest ing;
    assert_true(oci_ingest_begin(st, "sha256:/etc/passwd", 1, true, &ing, &err) < 0);
    dbx_error_free(&err);
    assert_true(oci_store_put(st, "md5:abc", "x", 1, &err) < 0);
    dbx_error_free(&err);
}

static void test_ingest_verify(void **state) {
    const char *data = "hello, store";
    _cleanup_free_ char *d = oci_digest_sha256(data, strlen(data));
    struct oci_ingest ing;
    dbx_error *err = NULL;
    /* wrong content: never complete, and the ingest is reset */
    assert_int_equal(oci_ingest_begin(st, d, strlen(data), true, &ing, NULL), 0);
    assert_int_equal(oci_ingest_write(&ing, "HELLO, STORE", 12, NULL), 0);
    assert_true(oci_ingest_commit(&ing, &err) < 0);
    assert_non_null(strstr(err->msg, "digest mismatch"));
    dbx_error_free(&err);
    oci_ingest_clear(&ing);
    assert_false(oci_store_has(st, d, UINT64_MAX));
    /* more than declared */
    assert_int_equal(oci_ingest_begin(st, d, 3, true, &ing, NULL), 0);
    assert_true(oci_ingest_write(&ing, data, strlen(data), &err) < 0);
    dbx_error_free(&err);
    oci_ingest_clear(&ing);
    /* partial, then resumed: the first bytes are re-hashed from the ingest file */
    assert_int_equal(oci_ingest_begin(st, d, strlen(data), true, &ing, NULL), 0);
    assert_int_equal(oci_ingest_write(&ing, data, 5, NULL), 0);
    oci_ingest_clear(&ing);
    assert_false(oci_store_has(st, d, UINT64_MAX));
    assert_int_equal(oci_ingest_begin(st, d, strlen(data), true, &ing, NULL), 0);
    assert_int_equal(ing.offset, 5);
    assert_int_equal(oci_ingest_write(&ing, data + 5, strlen(data) - 5, NULL), 0);
    assert_int_equal(oci_ingest_commit(&ing, NULL), 0);
    oci_ingest_clear(&ing);
    assert_true(oci_store_has(st, d, strlen(data)));
    int fd = -1;
    assert_int_equal(oci_store_open_blob(st, d, &fd, NULL), 0);
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0444);
    close(fd);
    /* already complete with another declared size: an error */
    assert_true(oci_ingest_begin(st, d, 99, true, &ing, &err) < 0);
    dbx_error_free(&err);
}

static void test_lock(void **state) {
    const char *data = "locked blob";
    _cleanup_free_ char *d = oci_digest_sha256(data, strlen(data));
    struct oci_ingest ing;
    assert_int_equal(oci_ingest_begin(st, d, strlen(data), true, &ing, NULL), 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct oci_ingest other;
        _exit(oci_ingest_begin(st, d, strlen(data), false, &other, NULL) == -EAGAIN ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(oci_ingest_write(&ing, data, strlen(data), NULL), 0);
    assert_int_equal(oci_ingest_commit(&ing, NULL), 0);
    oci_ingest_clear(&ing);
    /* once committed, a waiter gets the lock and finds the blob complete */
    assert_int_equal(oci_ingest_begin(st, d, strlen(data), false, &ing, NULL), 0);
    assert_true(ing.complete);
    oci_ingest_clear(&ing);
}

static void test_gc(void **state) {
    const char *cfg =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"diff_ids\":[\"x\"]}}";
    const char *layer = "layer bytes";
    _cleanup_free_ char *dc = oci_digest_sha256(cfg, strlen(cfg));
    _cleanup_free_ char *dl = oci_digest_sha256(layer, strlen(layer));
    _cleanup_free_ char *man = dbx_xasprintf(
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},"
        "\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
        OCI_MT_OCI_CONFIG, dc, strlen(cfg), OCI_MT_OCI_LAYER, dl, strlen(layer));
    _cleanup_free_ char *dm = oci_digest_sha256(man, strlen(man));
    assert_int_equal(oci_store_put(st, dc, cfg, strlen(cfg), NULL), 0);
    assert_int_equal(oci_store_put(st, dl, layer, strlen(layer), NULL), 0);
    assert_int_equal(oci_store_put(st, dm, man, strlen(man), NULL), 0);
    struct oci_image img = {0};
    dbx_error *err = NULL;
    assert_int_equal(oci_store_load_image(st, dm, &img, &err), 0);
    assert_string_equal(img.layers[0].digest, dl);
    oci_image_clear(&img);
    char *keep[] = {dm, NULL};
    uint64_t freed = 0;
    assert_int_equal(oci_store_gc(st, keep, &freed, NULL), 0);
    assert_true(freed > 0); /* the blobs of the earlier tests */
    assert_true(oci_store_has(st, dl, UINT64_MAX));
    char *none[] = {NULL};
    assert_int_equal(oci_store_gc(st, none, &freed, NULL), 0);
    assert_false(oci_store_has(st, dm, UINT64_MAX));
    assert_true(oci_store_gc(st, keep, &freed, &err) < 0); /* missing keep: error */
    dbx_error_free(&err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_ingest_verify),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_gc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* tests/unit/test-sandbox-tz.c: the host's time zone for the box (sandbox/sandbox-tz.c), from
 * TZ or /etc/localtime laid out in a temporary directory: names from a link's target (posix/
 * and right/ dropped), from /etc/timezone beside a copied localtime, from TZ (a name, ':NAME',
 * an absolute path, TZ=:/etc/localtime, a POSIX rule, empty); the TZif file sent with a name that
 * has one; a host on UTC without saying so; and the files that cannot be sent (not TZif, over the
 * cap, no name). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers.h"
#include "sandbox/sandbox-internal.h"

#define TZIF "TZif2 a zone\n"

static char *at(const struct repo *f, const char *rel) {
    return dbx_xasprintf("%s/%s", f->dir, rel);
}

static void put(const struct repo *f, const char *rel, const char *text) {
    test_put_file(f->dir, rel, text);
}

struct got {
    int r;
    char *name;
    uint8_t *data;
    uint32_t len;
    dbx_error *err;
};

static struct got host_tz(const struct repo *f, const char *tz) {
    struct got g = {0};
    _cleanup_free_ char *zi = at(f, "zoneinfo"), *lt = at(f, "etc/localtime");
    g.r = dbx_host_tz(tz, zi, lt, &g.name, &g.data, &g.len, &g.err);
    return g;
}

static void got_clear(struct got *g) {
    free(g->name);
    free(g->data);
    dbx_error_free(&g->err);
}

static void expect(const struct repo *f, const char *tz, const char *name, bool data) {
    struct got g = host_tz(f, tz);
    if (g.r != 0) fail_msg("TZ=%s: %s", tz ? tz : "(unset)", g.err ? g.err->msg : "?");
    if (!name) {
        assert_null(g.name);
    } else {
        assert_non_null(g.name);
        assert_string_equal(g.name, name);
    }
    assert_int_equal(g.len, data ? strlen(TZIF) : 0);
    if (data) assert_memory_equal(g.data, TZIF, strlen(TZIF));
    got_clear(&g);
}

static void expect_error(const struct repo *f, const char *tz, const char *what) {
    struct got g = host_tz(f, tz);
    assert_true(g.r < 0);
    assert_non_null(g.err);
    if (!strstr(g.err->msg, what)) fail_msg("'%s' does not say '%s'", g.err->msg, what);
    assert_null(g.name);
    assert_null(g.data);
    got_clear(&g);
}

static void link_localtime(const struct repo *f, const char *target) {
    _cleanup_free_ char *lt = at(f, "etc/localtime");
    (void)unlink(lt);
    assert_int_equal(symlink(target, lt), 0);
}

static void test_localtime_link(void **state) {
    const struct repo *f = *state;
    put(f, "zoneinfo/Europe/Berlin", TZIF);
    put(f, "zoneinfo/right/Asia/Tokyo", TZIF);
    put(f, "etc/.keep", "");
    expect(f, NULL, NULL, false); /* no /etc/localtime: UTC, nothing sent */
    _cleanup_free_ char *berlin = at(f, "zoneinfo/Europe/Berlin");
    link_localtime(f, berlin);
    expect(f, NULL, "Europe/Berlin", true);
    link_localtime(f, "../zoneinfo/right/Asia/Tokyo"); /* relative, right/ dropped */
    expect(f, NULL, "Asia/Tokyo", true);
    link_localtime(f, "../nowhere/zone");
    expect(f, NULL, NULL, false); /* a dangling link names nothing there is */
}

static void test_localtime_copy(void **state) {
    const struct repo *f = *state;
    put(f, "etc/localtime", TZIF);
    expect_error(f, NULL, "has no name");
    put(f, "etc/timezone", "America/New_York\n");
    expect(f, NULL, "America/New_York", true);
    put(f, "etc/localtime", "#!/bin/sh\n");
    expect_error(f, NULL, "not a TZif file");
    char *big = dbx_xcalloc(1, DBX_TZ_DATA_MAX + 2);
    memset(big, 'x', DBX_TZ_DATA_MAX + 1);
    memcpy(big, "TZif", 4);
    put(f, "etc/localtime", big);
    free(big);
    expect_error(f, NULL, "larger than");
}

/* TZ=:/etc/localtime (common advice) is /etc/localtime's zone; a link whose target names no
 * zone falls back to the timezone file beside it. */
static void test_tz_localtime_path(void **state) {
    const struct repo *f = *state;
    put(f, "zoneinfo/Europe/Paris", TZIF);
    put(f, "etc/.keep", "");
    _cleanup_free_ char *paris = at(f, "zoneinfo/Europe/Paris");
    link_localtime(f, paris);
    _cleanup_free_ char *lt = at(f, "etc/localtime");
    _cleanup_free_ char *colon = dbx_xasprintf(":%s", lt);
    expect(f, colon, "Europe/Paris", true);
    expect(f, lt, "Europe/Paris", true);
    put(f, "elsewhere/zone", TZIF);
    _cleanup_free_ char *other = at(f, "elsewhere/zone");
    link_localtime(f, other);
    expect_error(f, NULL, "has no name");
    put(f, "etc/timezone", "Europe/Paris\n");
    expect(f, NULL, "Europe/Paris", true);
}

static void test_tz_variable(void **state) {
    const struct repo *f = *state;
    put(f, "zoneinfo/Asia/Kolkata", TZIF);
    put(f, "etc/localtime", "not read: TZ wins");
    expect(f, "", NULL, false);  /* TZ= is UTC */
    expect(f, ":", NULL, false); /* so is TZ=: */
    expect(f, "Asia/Kolkata", "Asia/Kolkata", true);
    expect(f, ":Asia/Kolkata", "Asia/Kolkata", true);
    _cleanup_free_ char *abs = at(f, "zoneinfo/Asia/Kolkata");
    expect(f, abs, "Asia/Kolkata", true);
    expect(f, "EST5EDT,M3.2.0,M11.1.0", "EST5EDT,M3.2.0,M11.1.0", false); /* a POSIX rule */
    expect(f, "<+03>-3", "<+03>-3", false);
    expect(f, "Nowhere/Zone", "Nowhere/Zone", false); /* the host has no file: the name alone */
    put(f, "mytz", TZIF);
    _cleanup_free_ char *mine = at(f, "mytz");
    expect_error(f, mine, "has no name");
    expect_error(f, "a b", "byte 0x20");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_localtime_link, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_localtime_copy, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_tz_localtime_path, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_tz_variable, test_repo_setup, test_repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

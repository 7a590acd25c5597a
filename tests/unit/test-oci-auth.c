/* tests/unit/test-oci-auth.c: where credentials may go: WWW-Authenticate parsing, the token realm
 * rule, the redirect rule, and docker config.json lookups (auths, helpers refused by name). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <sys/stat.h>

#include "oci/oci-internal.h"

static void test_challenge(void **state) {
    struct oci_challenge c = {0};
    assert_int_equal(oci_challenge_parse("Bearer realm=\"https://auth.docker.io/token\","
                                         "service=\"registry.docker.io\",scope=\"repository:"
                                         "library/debian:pull\"",
                                         &c),
                     0);
    assert_string_equal(c.scheme, "bearer");
    assert_string_equal(c.realm, "https://auth.docker.io/token");
    assert_string_equal(c.service, "registry.docker.io");
    assert_string_equal(c.scope, "repository:library/debian:pull");
    oci_challenge_clear(&c);
    assert_int_equal(oci_challenge_parse("Basic realm=\"x\"", &c), 0);
    assert_string_equal(c.scheme, "basic");
    oci_challenge_clear(&c);
    assert_int_equal(oci_challenge_parse("bearer realm=https://r/t, service=s", &c), 0);
    assert_string_equal(c.realm, "https://r/t");
    assert_string_equal(c.service, "s");
    oci_challenge_clear(&c);
    assert_true(oci_challenge_parse("Bearer service=\"x\"", &c) < 0); /* no realm */
    assert_true(oci_challenge_parse("Negotiate abc", &c) < 0);
    assert_true(oci_challenge_parse("Bearer realm=\"unterminated", &c) < 0);
    assert_true(oci_challenge_parse("", &c) < 0);
}

static void realm_ok(const char *reg, bool plain, const char *realm, bool basic) {
    bool b = !basic;
    dbx_error *err = NULL;
    if (oci_realm_check(reg, plain, realm, &b, &err) < 0)
        fail_msg("%s for %s: %s", realm, reg, err->msg);
    if (b != basic) fail_msg("%s for %s: basic %d", realm, reg, b);
}

static void realm_bad(const char *reg, bool plain, const char *realm) {
    bool b = false;
    dbx_error *err = NULL;
    if (oci_realm_check(reg, plain, realm, &b, &err) == 0)
        fail_msg("%s for %s accepted", realm, reg);
    assert_non_null(err);
    dbx_error_free(&err);
}

static void test_realm(void **state) {
    realm_ok("registry-1.docker.io", false, "https://auth.docker.io/token", true);
    realm_ok("ghcr.io", false, "https://ghcr.io/token", true);
    realm_ok("ghcr.io", false, "https://other.example/token", false); /* token yes, creds no */
    realm_ok("127.0.0.1:5000", true, "http://127.0.0.1:5001/token", true);
    realm_ok("localhost:5000", true, "https://localhost/token", true);
    realm_ok("quay.io", false, "https://auth.docker.io/token", false);
    realm_bad("ghcr.io", false, "http://ghcr.io/token"); /* http for an https registry */
    realm_bad("127.0.0.1:5000", true, "http://127.0.0.2:5000/token"); /* http, another host */
    realm_bad("127.0.0.1:5000", true, "http://169.254.169.254/latest/meta-data");
    realm_bad("ghcr.io", false, "ftp://ghcr.io/token");
    realm_bad("ghcr.io", false, "file:///etc/passwd");
    realm_bad("ghcr.io", false, "gopher://ghcr.io/");
    realm_bad("ghcr.io", false, "https://user:pw@ghcr.io/token"); /* userinfo */
    realm_bad("ghcr.io", false, "not a url");
    realm_bad("ghcr.io", false, "");
}

static void redirect_ok(const char *origin, const char *from, const char *loc, const char *want,
                        bool auth) {
    char *url = NULL;
    bool a = !auth;
    dbx_error *err = NULL;
    if (oci_redirect_check(origin, from, loc, &url, &a, &err) < 0)
        fail_msg("%s -> %s: %s", from, loc, err->msg);
    assert_string_equal(url, want);
    if (a != auth) fail_msg("%s -> %s: auth %d", from, loc, a);
    free(url);
}

static void redirect_bad(const char *origin, const char *from, const char *loc) {
    char *url = NULL;
    bool a = false;
    dbx_error *err = NULL;
    if (oci_redirect_check(origin, from, loc, &url, &a, &err) == 0)
        fail_msg("%s -> %s accepted", from, loc);
    assert_null(url);
    dbx_error_free(&err);
}

static void test_redirect(void **state) {
    const char *o = "https://ghcr.io:443", *f = "https://ghcr.io/v2/a/blobs/sha256:x";
    redirect_ok(o, f, "https://cdn.example/blob?sig=1", "https://cdn.example/blob?sig=1", false);
    redirect_ok(o, f, "/v2/b/blobs/y", "https://ghcr.io/v2/b/blobs/y", true);
    redirect_ok(o, f, "https://GHCR.io/z", "https://GHCR.io/z", true);
    redirect_ok(o, f, "https://ghcr.io:8443/z", "https://ghcr.io:8443/z", false); /* other port */
    redirect_bad(o, f, "http://ghcr.io/z");                                       /* downgrade */
    redirect_bad(o, f, "http://127.0.0.1/z");
    redirect_bad(o, f, "ftp://ghcr.io/z");
    redirect_bad(o, f, "file:///etc/passwd");
    redirect_bad(o, f, "https://u:p@cdn.example/");
    /* plain-http loopback registry: http only back to itself */
    const char *lo = "http://127.0.0.1:5000", *lf = "http://127.0.0.1:5000/v2/a/blobs/x";
    redirect_ok(lo, lf, "/v2/other", "http://127.0.0.1:5000/v2/other", true);
    redirect_ok(lo, lf, "https://127.0.0.2:5001/b", "https://127.0.0.2:5001/b", false);
    redirect_bad(lo, lf, "http://127.0.0.2:5000/v2/a");
    redirect_bad(lo, lf, "http://127.0.0.1:5001/v2/a");
    redirect_bad(lo, lf, "http://169.254.169.254/");
    /* a plain-http registry that is not loopback (user-listed insecure): no http redirects */
    redirect_bad("http://reg.lan:80", "http://reg.lan/v2/x", "/v2/y");
}

static char dir[] = "/tmp/test-oci-auth-XXXXXX";

static void write_config(const char *json) {
    char p[256];
    snprintf(p, sizeof(p), "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
}

static int lookup(const char *domain, char **u, char **s, char **msg) {
    char p[256];
    snprintf(p, sizeof(p), "%s/config.json", dir);
    dbx_error *err = NULL;
    *u = *s = NULL;
    int r = oci_creds_lookup(p, domain, u, s, &err);
    if (r < 0 && msg) *msg = strdup(err->msg);
    dbx_error_free(&err);
    return r;
}

static void test_creds(void **state) {
    assert_non_null(mkdtemp(dir));
    char *u, *s, *msg = NULL;
    /* "devbox:pw" and "hub:x" */
    write_config("{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"ZGV2Ym94OnB3\"},"
                 "\"https://index.docker.io/v1/\":{\"auth\":\"aHViOng=\"},"
                 "\"https://reg.example/v2/\":{\"username\":\"a\",\"password\":\"b\"}}}");
    assert_int_equal(lookup("127.0.0.1:5000", &u, &s, NULL), 1);
    assert_string_equal(u, "devbox");
    assert_string_equal(s, "pw");
    free(u), free(s);
    assert_int_equal(lookup("docker.io", &u, &s, NULL), 1);
    assert_string_equal(u, "hub");
    free(u), free(s);
    assert_int_equal(lookup("reg.example", &u, &s, NULL), 1);
    assert_string_equal(s, "b");
    free(u), free(s);
    assert_int_equal(lookup("127.0.0.1:5001", &u, &s, NULL), 0); /* another port: none */
    assert_int_equal(lookup("127.0.0.1", &u, &s, NULL), 0);
    assert_null(u);
    write_config("{\"auths\":{},\"auths\":{}}");
    assert_true(lookup("x.io", &u, &s, &msg) < 0);
    assert_non_null(strstr(msg, "duplicate"));
    free(msg);
    write_config("{\"credHelpers\":{\"x.io\":\"../../bin/sh\"}}");
    assert_true(lookup("x.io", &u, &s, &msg) < 0);
    assert_non_null(strstr(msg, "invalid credential helper name"));
    free(msg);
    write_config("{\"credsStore\":\"devbox-test-no-such-helper\"}");
    assert_true(lookup("x.io", &u, &s, &msg) < 0);
    /* the exec failure comes back from the child as an error value, errno and all */
    assert_string_equal(msg, "credentials for 'x.io': "
                             "credential helper 'docker-credential-devbox-test-no-such-helper' "
                             "failed to run: exec 'docker-credential-devbox-test-no-such-helper': "
                             "No such file or directory");
    free(msg);
    write_config("{\"auths\":{\"x.io\":{\"auth\":\"bm9jb2xvbg==\"}}}"); /* "nocolon" */
    assert_true(lookup("x.io", &u, &s, &msg) < 0);
    free(msg);
    char p[256];
    snprintf(p, sizeof(p), "%s/config.json", dir);
    unlink(p);
    assert_int_equal(lookup("x.io", &u, &s, NULL), 0); /* no config: no credentials */
    rmdir(dir);
}

/* A helper found in PATH gets "get" and the server on stdin, and its JSON is the answer. */
static void test_creds_helper(void **state) {
    snprintf(dir, sizeof(dir), "/tmp/test-oci-auth-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char bin[256], helper[300], path[512], p[256];
    snprintf(bin, sizeof(bin), "%s/bin", dir);
    assert_int_equal(mkdir(bin, 0700), 0);
    snprintf(helper, sizeof(helper), "%s/docker-credential-dbxt", bin);
    FILE *f = fopen(helper, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread server\n"
          "printf '{\"Username\":\"u %s\",\"Secret\":\"s\"}' \"$server\"\n",
          f);
    fclose(f);
    assert_int_equal(chmod(helper, 0700), 0);
    const char *old = getenv("PATH");
    char *saved = strdup(old ? old : "/usr/bin:/bin");
    snprintf(path, sizeof(path), "%s:/usr/bin:/bin", bin);
    setenv("PATH", path, 1);
    write_config("{\"credsStore\":\"dbxt\"}");
    char *u = NULL, *s = NULL;
    int r = lookup("x.io", &u, &s, NULL);
    setenv("PATH", saved, 1);
    free(saved);
    assert_int_equal(r, 1);
    assert_string_equal(u, "u x.io");
    assert_string_equal(s, "s");
    free(u), free(s);
    unlink(helper);
    rmdir(bin);
    snprintf(p, sizeof(p), "%s/config.json", dir);
    unlink(p);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenge),    cmocka_unit_test(test_realm),
        cmocka_unit_test(test_redirect),     cmocka_unit_test(test_creds),
        cmocka_unit_test(test_creds_helper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

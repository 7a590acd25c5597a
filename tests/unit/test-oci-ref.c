/* tests/unit/test-oci-ref.c: image references (docker's normalization table from
 * distribution/reference's normalize_test.go), digest grammar, platforms. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "oci/oci-internal.h"

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_normalize(void **state) {
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"debian", "docker.io/library/debian:latest"},
        {"debian:bookworm", "docker.io/library/debian:bookworm"},
        {"library/debian", "docker.io/library/debian:latest"},
        {"docker.io/debian", "docker.io/library/debian:latest"},
        {"index.docker.io/debian", "docker.io/library/debian:latest"},
        {"docker.io/library/debian:12", "docker.io/library/debian:12"},
        {"user/repo", "docker.io/user/repo:latest"},
        {"ghcr.io/owner/img:v1.2", "ghcr.io/owner/img:v1.2"},
        {"localhost/foo", "localhost/foo:latest"},
        {"localhost:5000/foo/bar:t", "localhost:5000/foo/bar:t"},
        {"127.0.0.1:5000/a", "127.0.0.1:5000/a:latest"},
        {"[::1]:5000/a", "[::1]:5000/a:latest"},
        {"Foo.io/a", "Foo.io/a:latest"},
        {"FOO/a", "FOO/a:latest"}, /* upper case first component: a domain, as docker does */
        {"localhost:5000", "docker.io/library/localhost:5000"},
        {"a/b/c/d", "docker.io/a/b/c/d:latest"},
        {"a-b_c__d/e.f", "docker.io/a-b_c__d/e.f:latest"},
        {"debian@" D64, "docker.io/library/debian@" D64},
        {"debian:12@" D64, "docker.io/library/debian:12@" D64},
        {"foo---bar", "docker.io/library/foo---bar:latest"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ok); i++) {
        struct oci_ref r = {0};
        dbx_error *err = NULL;
        int rc = oci_ref_parse(ok[i].in, &r, &err);
        if (rc < 0) fail_msg("%s: %s", ok[i].in, err->msg);
        char *s = oci_ref_format(&r);
        if (strcmp(s, ok[i].out)) fail_msg("%s: got %s, want %s", ok[i].in, s, ok[i].out);
        free(s);
        oci_ref_clear(&r);
    }
}

static void test_fields(void **state) {
    struct oci_ref r = {0};
    assert_int_equal(oci_ref_parse("debian@" D64, &r, NULL), 0);
    assert_string_equal(r.domain, "docker.io");
    assert_string_equal(r.repository, "library/debian");
    assert_null(r.tag);
    assert_string_equal(r.digest, D64);
    oci_ref_clear(&r);
    assert_int_equal(oci_ref_parse("localhost:5000/x", &r, NULL), 0);
    assert_string_equal(r.domain, "localhost:5000");
    assert_string_equal(r.tag, "latest");
    assert_null(r.digest);
    oci_ref_clear(&r);
}

static void test_invalid(void **state) {
    static const char *const bad[] = {
        "",
        "Debian", /* repository must be lowercase */
        "docker.io/Library/x",
        "a//b",
        "a/",
        "/a",
        "a:",
        "a:-tag",
        ":tag",
        "a@sha256:123",
        "a@md5:0123456789abcdef0123456789abcdef",
        "a@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "a b",
        "a\n",
        "foo_-bar",
        "a-b_c__d.e/f", /* a domain (it has a dot), and "_" is not allowed in one */
        "-foo",
        "foo.",
        "ho-.st/a",
        "host:port/a",
        "host:123456/a",
        "a:"
        "012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
        "0123456789012345678901234567890123456789",
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        struct oci_ref r = {0};
        dbx_error *err = NULL;
        if (oci_ref_parse(bad[i], &r, &err) == 0) fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(err);
        assert_null(strchr(err->msg, '\n'));
        dbx_error_free(&err);
        assert_null(r.domain); /* ret untouched on failure */
    }
}

static void test_digest_grammar(void **state) {
    assert_true(oci_digest_valid(D64));
    char s512[7 + 128 + 1] = "sha512:";
    memset(s512 + 7, 'a', 128);
    s512[135] = '\0';
    assert_true(oci_digest_valid(s512));
    assert_false(oci_digest_valid(NULL));
    assert_false(oci_digest_valid("sha256:"));
    assert_false(oci_digest_valid(D64 "0"));
    assert_false(oci_digest_valid("sha256:../../../../etc/passwd"));
    assert_false(oci_digest_valid(
        "SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(oci_digest_valid(
        "sha384:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    s512[100] = 'g';
    assert_false(oci_digest_valid(s512));
}

static void test_platform(void **state) {
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"linux/amd64", "linux/amd64"},   {"linux/x86_64", "linux/amd64"},
        {"linux/arm64", "linux/arm64"},   {"linux/arm64/v8", "linux/arm64"},
        {"linux/aarch64", "linux/arm64"}, {"linux/arm", "linux/arm/v7"},
        {"linux/arm/v6", "linux/arm/v6"}, {"Linux/AMD64", "linux/amd64"},
        {"linux/arm64/8", "linux/arm64"}, {"linux/s390x", "linux/s390x"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ok); i++) {
        struct oci_platform p = {0};
        assert_int_equal(oci_platform_parse(ok[i].in, &p, NULL), 0);
        char *s = oci_platform_format(&p);
        if (strcmp(s, ok[i].out)) fail_msg("%s: got %s", ok[i].in, s);
        free(s);
        oci_platform_clear(&p);
    }
    static const char *const bad[] = {"linux",   "linux/",       "/amd64", "linux//amd64",
                                      "a/b/c/d", "linux/am d64", ""};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        struct oci_platform p = {0};
        dbx_error *err = NULL;
        if (oci_platform_parse(bad[i], &p, &err) == 0) fail_msg("'%s' accepted", bad[i]);
        dbx_error_free(&err);
    }
    struct oci_platform h = {0};
    oci_platform_host(&h);
    assert_string_equal(h.os, "linux");
    assert_non_null(h.architecture);
    oci_platform_clear(&h);
}

static void test_loopback(void **state) {
    assert_true(oci_host_is_loopback("localhost"));
    assert_true(oci_host_is_loopback("localhost:5000"));
    assert_true(oci_host_is_loopback("127.0.0.1:5000"));
    assert_true(oci_host_is_loopback("127.1.2.3"));
    assert_true(oci_host_is_loopback("[::1]:5000"));
    assert_false(oci_host_is_loopback("127.1"));      /* short form is not a dotted quad */
    assert_false(oci_host_is_loopback("0177.0.0.1")); /* octal spelling */
    assert_false(oci_host_is_loopback("2130706433")); /* decimal spelling */
    assert_false(oci_host_is_loopback("localhost.example.com"));
    assert_false(oci_host_is_loopback("128.0.0.1"));
    assert_false(oci_host_is_loopback("[::2]"));
    assert_false(oci_host_is_loopback("example.com"));
    assert_string_equal(oci_api_host("docker.io"), "registry-1.docker.io");
    assert_string_equal(oci_api_host("ghcr.io"), "ghcr.io");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize), cmocka_unit_test(test_fields),
        cmocka_unit_test(test_invalid),   cmocka_unit_test(test_digest_grammar),
        cmocka_unit_test(test_platform),  cmocka_unit_test(test_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

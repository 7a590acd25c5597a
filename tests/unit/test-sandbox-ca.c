/* tests/unit/test-sandbox-ca.c: dbx_ca_load (sandbox/sandbox-ca.c) with certificates made at
 * test time with OpenSSL: files and directories (sorted, one subdirectory level), other PEM
 * blocks and text skipped, duplicates once, a file without a certificate a warning, a broken
 * certificate, a missing or relative path, an oversized file and too many certificates
 * errors naming the file, '-' for a path that may be missing.  Also the other half of the
 * host's company-network settings: config.ini's proxy exported to devbox's own environment
 * (dbx_user_proxy_env, sandbox/sandbox-policy.c). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include "helpers.h"
#include "sandbox/sandbox-internal.h"

/* One key signs every certificate (made once, in the group setup); each test gets helpers.h's
 * struct repo, a fresh directory. */
static EVP_PKEY *signer;

static int group_setup(void **state) {
    signer = EVP_EC_gen("P-256");
    return signer ? 0 : -1;
}

static int group_teardown(void **state) {
    EVP_PKEY_free(signer);
    return 0;
}

/* A self-signed certificate "CN=name", serial n, as PEM (caller frees). */
static char *make_cert(const struct repo *f, const char *name, long n) {
    X509 *x = X509_new();
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, signer);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
    X509_set_issuer_name(x, nm);
    assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    char *p = NULL;
    long len = BIO_get_mem_data(b, &p);
    char *ret = dbx_xstrndup(p, (size_t)len);
    BIO_free(b);
    X509_free(x);
    return ret;
}

static char *key_pem(const struct repo *f) {
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, signer, NULL, NULL, 0, NULL, NULL), 1);
    char *p = NULL;
    long len = BIO_get_mem_data(b, &p);
    char *ret = dbx_xstrndup(p, (size_t)len);
    BIO_free(b);
    return ret;
}

static char *path(const struct repo *f, const char *rel) {
    return dbx_xasprintf("%s/%s", f->dir, rel);
}

static void put(const struct repo *f, const char *rel, const char *text) {
    _cleanup_free_ char *p = path(f, rel);
    _cleanup_free_ char *d = dbx_xstrdup(p);
    *strrchr(d, '/') = '\0';
    assert_int_equal(dbx_mkdir_p(d, 0755, NULL), 0);
    test_write_file(p, text, 0644);
}

/* dbx_ca_load of one path; *ret_pem and *ret_w on success, else the error message in *ret_msg */
static int load1(const char *p, char **ret_pem, char ***ret_w, char **ret_msg) {
    char *const paths[] = {(char *)p, NULL};
    dbx_error *err = NULL;
    int r = dbx_ca_load(paths, ret_pem, ret_w, &err);
    if (r < 0) {
        *ret_msg = dbx_xstrdup(err->msg);
        dbx_error_free(&err);
    }
    return r;
}

static void test_dir_sorted_and_filtered(void **state) {
    const struct repo *f = *state;
    _cleanup_free_ char *c1 = make_cert(f, "one", 1), *c2 = make_cert(f, "two", 2),
                        *c3 = make_cert(f, "three", 3), *c4 = make_cert(f, "deep", 4),
                        *key = key_pem(f);
    put(f, "ca/b.crt", c2);
    /* comments, a private key and CRLF line ends around a certificate: only it is kept */
    _cleanup_free_ char *mixed = dbx_xasprintf("# my corp CA\n%s\ntrailing words\n%s", key, c1);
    put(f, "ca/a.pem", mixed);
    put(f, "ca/sub/c.crt", c3);
    put(f, "ca/sub/deeper/d.crt", c4);   /* two levels down: not read */
    put(f, "ca/.hidden.crt", c4);        /* hidden: not read */
    put(f, "ca/notes.txt", c4);          /* another suffix: not read */
    put(f, "ca/empty.crt", "nothing\n"); /* a warning */
    put(f, "ca/sub/dup.pem", c2);        /* the same certificate again: once */
    _cleanup_free_ char *dir = path(f, "ca"), *pem = NULL, *msg = NULL;
    _cleanup_strv_ char **w = NULL;
    if (load1(dir, &pem, &w, &msg) < 0) fail_msg("%s", msg);
    _cleanup_free_ char *want = dbx_xasprintf("%s%s%s", c1, c2, c3);
    assert_string_equal(pem, want);
    assert_int_equal(dbx_strv_len(w), 1);
    assert_non_null(strstr(w[0], "empty.crt': no PEM certificate in it"));
    assert_int_equal(dbx_ca_pem_check(pem, NULL), 0);

    /* CRLF in a certificate file: OpenSSL reads it, the output is in the one spelling */
    struct dbx_buf crlf = {0};
    for (const char *p = c1; *p; p++) {
        if (*p == '\n') dbx_buf_put_u8(&crlf, '\r');
        dbx_buf_put_u8(&crlf, (uint8_t)*p);
    }
    dbx_buf_put_u8(&crlf, 0);
    put(f, "crlf.crt", (char *)crlf.data);
    dbx_buf_free(&crlf);
    _cleanup_free_ char *fp = path(f, "crlf.crt"), *pem2 = NULL;
    _cleanup_strv_ char **w2 = NULL;
    if (load1(fp, &pem2, &w2, &msg) < 0) fail_msg("%s", msg);
    assert_string_equal(pem2, c1);
    assert_null(w2);
}

static void test_errors(void **state) {
    const struct repo *f = *state;
    _cleanup_free_ char *c1 = make_cert(f, "one", 1);
    char *pem = NULL, *msg = NULL, **w = NULL;

    /* a certificate block whose base64 or DER is broken */
    _cleanup_free_ char *broken = dbx_xstrdup(c1);
    char *mid = broken + strlen("-----BEGIN CERTIFICATE-----\n") + 10;
    memcpy(mid, "!!!!", 4);
    put(f, "broken.crt", broken);
    _cleanup_free_ char *bp = path(f, "broken.crt");
    assert_int_equal(load1(bp, &pem, &w, &msg), -1);
    assert_non_null(strstr(msg, "broken.crt'"));
    free(msg);
    put(f, "garbage.pem", "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n");
    _cleanup_free_ char *gp = path(f, "garbage.pem");
    assert_int_equal(load1(gp, &pem, &w, &msg), -1);
    assert_non_null(strstr(msg, "garbage.pem'"));
    free(msg);

    /* missing: an error, unless the path says it may be missing */
    _cleanup_free_ char *missing = path(f, "nope.crt"), *opt = dbx_xasprintf("-%s", missing);
    assert_int_equal(load1(missing, &pem, &w, &msg), -1);
    assert_non_null(strstr(msg, "nope.crt'"));
    free(msg);
    assert_int_equal(load1(opt, &pem, &w, &msg), 0);
    assert_string_equal(pem, "");
    assert_null(w);
    free(pem);
    assert_int_equal(load1("relative/ca.crt", &pem, &w, &msg), -1);
    assert_non_null(strstr(msg, "not an absolute path"));
    free(msg);

    /* one file over 64 KiB */
    struct dbx_buf big = {0};
    while (big.len <= 64 * 1024)
        dbx_buf_put(&big, c1, strlen(c1));
    dbx_buf_put_u8(&big, 0);
    put(f, "big.crt", (char *)big.data);
    dbx_buf_free(&big);
    _cleanup_free_ char *bigp = path(f, "big.crt");
    assert_int_equal(load1(bigp, &pem, &w, &msg), -1);
    assert_non_null(strstr(msg, "big.crt'"));
    free(msg);

    /* more certificates than SETUP carries: the file that went over is named */
    for (long i = 0; i < 600; i++) {
        _cleanup_free_ char *c = make_cert(f, "many", 100 + i);
        _cleanup_free_ char *rel = dbx_xasprintf("many/%03ld.crt", i);
        put(f, rel, c);
    }
    _cleanup_free_ char *many = path(f, "many");
    assert_int_equal(load1(many, &pem, &w, &msg), -1);
    assert_non_null(strstr(msg, "more than 192 KiB"));
    assert_non_null(strstr(msg, "many/"));
    free(msg);

    /* several paths, NULL: fine */
    char *const none[] = {NULL};
    assert_int_equal(dbx_ca_load(none, &pem, &w, NULL), 0);
    assert_string_equal(pem, "");
    free(pem);
    assert_int_equal(dbx_ca_load(NULL, &pem, &w, NULL), 0);
    free(pem);
}

/* config.ini's proxy becomes devbox's own proxy variables (what libcurl, mmdebstrap and apt
 * read); `none` unsets them; a file that says nothing leaves the environment's alone. */
static void test_proxy_env(void **state) {
    (void)state;
    setenv("https_proxy", "http://env.example:1", 1);
    setenv("ALL_PROXY", "socks5h://env.example:2", 1);
    setenv("no_proxy", "env.example", 1);
    struct profile_user u = {0};
    dbx_user_proxy_env(&u);
    assert_string_equal(getenv("https_proxy"), "http://env.example:1");
    assert_string_equal(getenv("no_proxy"), "env.example");
    char *np[] = {"corp.example", "10.0.0.0/8", NULL};
    u.proxy_set = u.no_proxy_set = true;
    u.proxy = "http://u:p%40w@proxy.corp.example:3128";
    u.no_proxy = np;
    dbx_user_proxy_env(&u);
    const char *vars[] = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(vars); i++)
        assert_string_equal(getenv(vars[i]), u.proxy);
    assert_null(getenv("ALL_PROXY"));
    assert_string_equal(getenv("no_proxy"), "corp.example,10.0.0.0/8");
    assert_string_equal(getenv("NO_PROXY"), "corp.example,10.0.0.0/8");
    u.proxy = "proxy.corp.example:3128"; /* without its scheme: exported with it */
    dbx_user_proxy_env(&u);
    assert_string_equal(getenv("http_proxy"), "http://proxy.corp.example:3128");
    u.proxy = NULL; /* none */
    u.no_proxy = NULL;
    dbx_user_proxy_env(&u);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(vars); i++)
        assert_null(getenv(vars[i]));
    assert_null(getenv("no_proxy"));
    assert_null(getenv("NO_PROXY"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dir_sorted_and_filtered, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_errors, test_repo_setup, test_repo_teardown),
        cmocka_unit_test(test_proxy_env),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

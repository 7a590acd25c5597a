/* tests/unit/test-vm-debian.c: the Debian mirror taken from the host's apt sources
 * (vm_debian_mirror) with fixture files: deb822 stanzas (several entries, disabled ones,
 * comments, continuation lines, field names in any case), the one-line format with [options]
 * and comments, apt's file order, suites that only look alike, unusable URIs and the caps. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <sys/stat.h>

#include "vm/vm-internal.h"

static char dir[] = "/tmp/test-vm-debian-XXXXXX";

static int setup(void **state) {
    return mkdtemp(dir) ? 0 : -1;
}
static int teardown(void **state) {
    dbx_error *e = NULL;
    vm_rm_rf(dir, &e);
    dbx_error_free(&e);
    return 0;
}

/* A fresh etc/apt under dir/NAME with the given files (relative name, content) */
static char *etc(const char *name, const char *const *files) {
    char *d = dbx_xasprintf("%s/%s", dir, name);
    assert_int_equal(mkdir(d, 0755), 0);
    _cleanup_free_ char *parts = dbx_xasprintf("%s/sources.list.d", d);
    assert_int_equal(mkdir(parts, 0755), 0);
    for (size_t i = 0; files[i]; i += 2) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", d, files[i]);
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        fputs(files[i + 1], f);
        fclose(f);
    }
    return d;
}

static void expect(const char *name, const char *const *files, const char *want) {
    _cleanup_free_ char *d = etc(name, files);
    _cleanup_free_ char *got = vm_debian_mirror(d, "bookworm");
    if (!want && got) fail_msg("%s: want none, got '%s'", name, got);
    if (want && (!got || strcmp(got, want) != 0))
        fail_msg("%s: want '%s', got '%s'", name, want, got ? got : "(none)");
}

static void test_deb822(void **state) {
    /* what Debian 12 installs, plus a comment inside the stanza */
    const char *const debian[] = {"sources.list.d/debian.sources",
                                  "Types: deb\n"
                                  "# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
                                  "URIs: http://deb.debian.org/debian\n"
                                  "Suites: bookworm bookworm-updates\n"
                                  "Components: main\n"
                                  "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
                                  "\n"
                                  "Types: deb\n"
                                  "URIs: http://deb.debian.org/debian-security\n"
                                  "Suites: bookworm-security\n"
                                  "Components: main\n",
                                  NULL};
    expect("stock", debian, "http://deb.debian.org/debian");
    /* disabled and source-only stanzas, updates/security suites first; continuation lines and
     * field names in any case; the first URI of the matching stanza */
    const char *const several[] = {"sources.list.d/corp.sources",
                                   "# company mirror\n"
                                   "Types: deb\n"
                                   "URIs: http://old.corp.example/debian\n"
                                   "Suites: bookworm\n"
                                   "Enabled: no\n"
                                   "\n"
                                   "Types: deb\n"
                                   "URIs: http://older.corp.example/debian\n"
                                   "Suites: bookworm\n"
                                   "Enabled: False\n"
                                   "\n"
                                   "Types: deb-src\n"
                                   "URIs: http://src.corp.example/debian\n"
                                   "Suites: bookworm\n"
                                   "\n"
                                   "Types: deb\n"
                                   "URIs: http://sec.corp.example/debian-security\n"
                                   "Suites: bookworm-security bookworm-updates\n"
                                   "\n"
                                   "types: deb-src deb\n"
                                   "uris:\n"
                                   " https://mirror.corp.example/debian/\n"
                                   " http://second.corp.example/debian\n"
                                   "suites: bullseye\n"
                                   "  bookworm\n"
                                   "enabled: yes\n",
                                   NULL};
    expect("several", several, "https://mirror.corp.example/debian");
    const char *const none[] = {"sources.list.d/x.sources",
                                "Types: deb\nURIs: http://a.example/ubuntu\nSuites: jammy\n", NULL};
    expect("other-suite", none, NULL);
}

static void test_one_line(void **state) {
    const char *const list[] = {"sources.list",
                                "# deb http://commented.example/debian bookworm main\n"
                                "deb-src http://src.example/debian bookworm main\n"
                                "deb http://sec.example/debian-security bookworm-security main\n"
                                "deb [ arch=amd64 signed-by=/usr/share/keyrings/k.gpg ] "
                                "http://corp.example/debian bookworm main # here\n"
                                "deb http://later.example/debian bookworm main\n",
                                NULL};
    expect("options", list, "http://corp.example/debian");
    const char *const compact[] = {"sources.list",
                                   "deb [trusted=yes] file:/srv/mirror bookworm main\n", NULL};
    expect("compact-options", compact, "file:/srv/mirror");
    /* sources.list comes before the parts; parts go in name order; other names are ignored */
    const char *const order[] = {"sources.list.d/b.list",
                                 "deb http://b.example/debian bookworm main\n",
                                 "sources.list.d/a.sources",
                                 "Types: deb\nURIs: http://a.example/debian\nSuites: bookworm\n",
                                 "sources.list.d/0.list.disabled",
                                 "deb http://disabled.example/debian bookworm main\n",
                                 NULL};
    expect("order", order, "http://a.example/debian");
    /* names apt skips: hidden ones and those with other bytes than [A-Za-z0-9_.:-] */
    const char *const names[] = {"sources.list.d/.hidden.list",
                                 "deb http://hidden.example/debian bookworm main\n",
                                 "sources.list.d/0 old.list",
                                 "deb http://space.example/debian bookworm main\n",
                                 "sources.list.d/0+x.sources",
                                 "Types: deb\nURIs: http://plus.example/debian\nSuites: bookworm\n",
                                 "sources.list.d/z_corp-1:2.list",
                                 "deb http://valid.example/debian bookworm main\n",
                                 NULL};
    expect("names", names, "http://valid.example/debian");
    const char *const first[] = {"sources.list", "deb http://main.example/debian bookworm main\n",
                                 "sources.list.d/a.list",
                                 "deb http://a.example/debian bookworm main\n", NULL};
    expect("main-first", first, "http://main.example/debian");
}

static void test_refused(void **state) {
    /* schemes apt needs a plugin for, and lines that are not entries */
    const char *const bad[] = {"sources.list",
                               "deb ftp://old.example/debian bookworm main\n"
                               "deb mirror+file:/etc/apt/mirrors.txt bookworm main\n"
                               "deb [arch=amd64 http://unclosed.example/debian bookworm main\n"
                               "deb http://short.example/debian\n"
                               "garbage\n",
                               NULL};
    expect("bad", bad, NULL);
    /* an over-long line is skipped, the next entry counts */
    size_t n = 9000;
    _cleanup_free_ char *longl = dbx_xmalloc(n + 200);
    memset(longl, 'a', n);
    snprintf(longl + n, 200, "\ndeb http://after.example/debian bookworm main\n");
    memcpy(longl, "deb http://", 11);
    const char *const lng[] = {"sources.list", longl, NULL};
    expect("long-line", lng, "http://after.example/debian");
    /* a file over the size cap is skipped as a whole */
    size_t big = (1u << 20) + 10;
    _cleanup_free_ char *huge = dbx_xmalloc(big + 1);
    memset(huge, '#', big);
    memcpy(huge, "deb http://huge.example/debian bookworm main\n", 45);
    huge[big] = '\0';
    const char *const hg[] = {"sources.list", huge, "sources.list.d/z.list",
                              "deb http://small.example/debian bookworm main\n", NULL};
    expect("huge", hg, "http://small.example/debian");
    /* a deb822 field continued past the line cap makes its stanza malformed (skipped): the
     * continuation lines of a near-1 MiB file are appended in place, not copied each time */
    size_t lines = ((1u << 20) - 200) / 3;
    _cleanup_free_ char *cont = dbx_xmalloc(200 + lines * 3 + 100);
    char *p =
        cont + sprintf(cont, "Types: deb\nURIs: http://cont.example/debian\nSuites: bookworm\n");
    for (size_t i = 0; i < lines; i++, p += 3)
        memcpy(p, " a\n", 3);
    strcpy(p, "\nTypes: deb\nURIs: http://next.example/debian\nSuites: bookworm\n");
    const char *const ct[] = {"sources.list.d/a.sources", cont, NULL};
    expect("continued", ct, "http://next.example/debian");
    /* nothing there at all */
    _cleanup_free_ char *got = vm_debian_mirror("/nonexistent/etc/apt", "bookworm");
    assert_null(got);
}

/* vm_apt_hosts: every enabled deb entry's host, any suite, in apt's order, once each. */
static void test_hosts(void **state) {
    const char *const files[] = {
        "sources.list",
        "deb http://Mirror.Example.COM/debian bookworm main\n"
        "deb-src http://src.example.com/debian bookworm main\n"
        "deb [trusted=yes] https://mirror.example.com:8443/x bookworm-updates main\n"
        "deb file:/srv/local ./\n"
        "deb http://user@evil.example/debian bookworm main\n"
        "deb http://localhost:3142/debian bookworm main\n"
        "deb http://127.0.0.1:3142/debian bookworm main\n"
        "deb http://10.1.2.3/debian bookworm main\n",
        "sources.list.d/debian.sources",
        "Types: deb\nURIs: http://security.example.org/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://disabled.example.org/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb\nURIs: http://mirror.example.com/debian\nSuites: trixie\n",
        NULL};
    _cleanup_free_ char *d = etc("hosts", files);
    _cleanup_strv_ char **h = vm_apt_hosts(d);
    assert_int_equal(dbx_strv_len(h), 3);
    assert_string_equal(h[0], "mirror.example.com");
    assert_string_equal(h[1], "mirror.example.com:8443");
    assert_string_equal(h[2], "security.example.org");
    _cleanup_free_ char *none = dbx_xasprintf("%s/nothing-here", dir);
    _cleanup_strv_ char **h2 = vm_apt_hosts(none);
    assert_non_null(h2);
    assert_null(h2[0]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deb822),
        cmocka_unit_test(test_one_line),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_hosts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

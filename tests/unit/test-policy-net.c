/* tests/unit/test-policy-net.c: the egress proxy's decision: request host spellings, allow
 * patterns and which addresses they open.  The address classes are in test-common-netaddr.c,
 * the proxy's parsers in test-proxy-parse.c, the proxy itself, end to end, in test-proxy.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "policy/policy.h"

/* ---- hosts ------------------------------------------------------------------------------- */

static void test_host_parse(void **state) {
    static const struct {
        const char *in;
        int ok;           /* 1 name, 2 address, 0 refused */
        const char *name; /* normalized */
    } cases[] = {
        {"allowed.test", 1, "allowed.test"},
        {"Allowed.TEST", 1, "allowed.test"},
        {"allowed.test.", 1, "allowed.test"},
        {"a-b_c.example.com", 1, "a-b_c.example.com"},
        {"localhost", 1, "localhost"},
        {"1e100.net", 1, "1e100.net"},
        {"127.0.0.1", 2, "127.0.0.1"},
        {"8.8.8.8", 2, "8.8.8.8"},
        {"[::1]", 2, "::1"},
        {"[0:0:0:0:0:0:0:1]", 2, "::1"},
        {"[::ffff:127.0.0.1]", 2, "::ffff:127.0.0.1"},
        {"[64:ff9b::7f00:1]", 2, "64:ff9b::7f00:1"},
        /* every other IPv4 spelling */
        {"127.1", 0, NULL},
        {"127.0.1", 0, NULL},
        {"2130706433", 0, NULL},
        {"0x7f000001", 0, NULL},
        {"0x7f.0.0.1", 0, NULL},
        {"0x7F.0.0.1", 0, NULL},
        {"0177.0.0.1", 0, NULL},
        {"127.000.0.1", 0, NULL},
        {"127.0.0.01", 0, NULL},
        {"127.0.0.1.", 0, NULL},
        {"127.0.0.256", 0, NULL},
        {"1.2.3.4.5", 0, NULL},
        {"foo.0x10", 0, NULL},
        {"foo.123", 0, NULL},
        {"0x", 0, NULL},
        /* malformed names and brackets */
        {"", 0, NULL},
        {".", 0, NULL},
        {"allowed.test..", 0, NULL},
        {"..allowed.test", 0, NULL},
        {"allowed..test", 0, NULL},
        {"allowed.test/x", 0, NULL},
        {"allowed.test:443", 0, NULL},
        {"evil.test\\@allowed.test", 0, NULL},
        {"ex ample.com", 0, NULL},
        {"[::1", 0, NULL},
        {"::1", 0, NULL},
        {"[127.0.0.1]", 0, NULL},
        {"[fe80::1%25eth0]", 0, NULL},
        {"[fe80::1%eth0]", 0, NULL},
        {"[]", 0, NULL},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        struct policy_host h;
        const char *why = NULL;
        int r = policy_host_parse(cases[i].in, strlen(cases[i].in), &h, &why);
        if (cases[i].ok == 0) {
            if (r != -EINVAL) fail_msg("'%s' accepted as '%s'", cases[i].in, h.name);
            assert_non_null(why);
            continue;
        }
        if (r != 0) fail_msg("'%s' refused: %s", cases[i].in, why);
        assert_int_equal(h.is_addr, cases[i].ok == 2);
        assert_string_equal(h.name, cases[i].name);
    }
    /* a label of 63 is fine, 64 is not; 253 bytes is fine, 254 is not */
    char name[300];
    memset(name, 'a', 63);
    strcpy(name + 63, ".test");
    struct policy_host h;
    const char *why;
    assert_int_equal(policy_host_parse(name, strlen(name), &h, &why), 0);
    memset(name, 'a', 64);
    strcpy(name + 64, ".test");
    assert_int_equal(policy_host_parse(name, strlen(name), &h, &why), -EINVAL);
    for (int i = 0; i < 4; i++)
        memcpy(name + i * 62, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.", 62);
    strcpy(name + 248, "abcde");
    assert_int_equal(strlen(name), 253);
    assert_int_equal(policy_host_parse(name, 253, &h, &why), 0);
    strcpy(name + 248, "abcdef");
    assert_int_equal(policy_host_parse(name, 254, &h, &why), -EINVAL);
    /* a NUL inside the span is not the end of the name */
    assert_int_equal(policy_host_parse("allowed.test\0.evil", 18, &h, &why), -EINVAL);
}

/* An address written as a bare allow entry ("127.0.0.1", "::ffff:10.0.0.1"). */
static struct dbx_addr addr(const char *s) {
    struct profile_allow p;
    const char *why = NULL;
    if (profile_allow_parse(s, &p, &why) < 0 || p.kind != PROFILE_ALLOW_ADDR || p.cidr)
        fail_msg("bad address in test: %s", s);
    return p.addr;
}

/* ---- patterns ---------------------------------------------------------------------------- */

static void test_pattern_parse(void **state) {
    static const char *const good[] = {
        "allowed.test", "ALLOWED.test.",  "allowed.test:8443", "*.example.com",  "*.example.com:22",
        "127.0.0.1",    "127.0.0.1:8443", "10.0.0.0/8",        "10.0.0.0/8:443", "::1",
        "[::1]",        "[::1]:8443",     "fd00::/8",          "[fd00::/8]:443", "0.0.0.0/0",
        "localhost",
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(good); i++) {
        struct profile_allow p;
        dbx_error *e = NULL;
        if (policy_pattern_parse(good[i], &p, &e) < 0) fail_msg("%s", e->msg);
    }
    static const char *const bad[] = {
        "",           "*",           "*.com",      "*.",         "a.*.com",     "**.example.com",
        "127.1",      "2130706433",  "0x7f.0.0.1", "0177.0.0.1", "127.0.0.1:0", "host:65536",
        "host:",      "host:x",      "host:08",    "[::1",       "[::1]x",      "[::1]:",
        "10.0.0.1/8", "10.0.0.0/33", "::1/129",    "host/8",     "a..b",        "exa mple.com",
        "http://x",   "[127.0.0.1]", "foo.123",
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        struct profile_allow p;
        dbx_error *e = NULL;
        if (policy_pattern_parse(bad[i], &p, &e) == 0) fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(e->code, EINVAL);
        char want[64];
        snprintf(want, sizeof(want), "'%s'", bad[i]);
        if (!strstr(e->msg, want)) fail_msg("message '%s' does not name '%s'", e->msg, bad[i]);
        dbx_error_free(&e);
    }
}

static bool allowed(char *const *pats, const char *host, uint16_t port) {
    struct profile_allow p[16];
    size_t n = 0;
    for (; pats[n]; n++)
        assert_int_equal(policy_pattern_parse(pats[n], &p[n], NULL), 0);
    struct policy_host h;
    const char *why;
    if (policy_host_parse(host, strlen(host), &h, &why) < 0) return false;
    return policy_allowed(p, n, &h, port);
}

static void test_pattern_match(void **state) {
    char *pats[] = {"allowed.test",
                    "*.suffix.test",
                    "port.test:8443",
                    "127.0.0.1",
                    "[::1]:8080",
                    "10.1.0.0/16",
                    NULL};
    static const struct {
        const char *host;
        uint16_t port;
        bool ok;
    } cases[] = {
        {"allowed.test", 443, true},
        {"allowed.test", 80, true},
        {"ALLOWED.TEST.", 443, true},
        {"allowed.test", 8443, false},
        {"allowed.test", 22, false},
        {"evil-allowed.test", 443, false},
        {"allowed.test.evil.test", 443, false},
        {"xallowed.test", 443, false},
        {"sub.allowed.test", 443, false},
        {"a.suffix.test", 443, true},
        {"a.b.suffix.test", 80, true},
        {"suffix.test", 443, false},
        {"evilsuffix.test", 443, false},
        {"a.suffix.test.evil", 443, false},
        {"port.test", 8443, true},
        {"port.test", 443, false},
        {"127.0.0.1", 443, true},
        {"127.0.0.1", 8443, false},
        {"127.1", 443, false},
        {"[::ffff:127.0.0.1]", 443, false},
        {"[::1]", 8080, true},
        {"[::1]", 443, false},
        {"10.1.2.3", 80, true},
        {"10.2.0.1", 80, false},
        {"localhost", 443, false},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++)
        if (allowed(pats, cases[i].host, cases[i].port) != cases[i].ok)
            fail_msg("%s:%u: want %s", cases[i].host, cases[i].port,
                     cases[i].ok ? "allowed" : "refused");
}

static void test_addr_refused(void **state) {
    char *pats[] = {"allowed.test", "127.0.0.1:8443", "10.0.0.0/8", "fd00::/8", NULL};
    struct profile_allow p[8];
    size_t n = 0;
    for (; pats[n]; n++)
        assert_int_equal(policy_pattern_parse(pats[n], &p[n], NULL), 0);
    struct dbx_addr a = addr("8.8.8.8");
    assert_null(policy_addr_refused(p, n, &a));
    a = addr("127.0.0.1"); /* named (the pattern's port does not matter here) */
    assert_null(policy_addr_refused(p, n, &a));
    a = addr("127.0.0.2");
    assert_string_equal(policy_addr_refused(p, n, &a), "loopback");
    a = addr("10.9.9.9");
    assert_null(policy_addr_refused(p, n, &a));
    a = addr("192.168.0.1");
    assert_string_equal(policy_addr_refused(p, n, &a), "private");
    a = addr("::ffff:127.0.0.1"); /* listing 127.0.0.1 does not list its mapped spelling */
    assert_string_equal(policy_addr_refused(p, n, &a), "IPv4-mapped");
    a = addr("::ffff:10.0.0.1");
    assert_string_equal(policy_addr_refused(p, n, &a), "IPv4-mapped");
    a = addr("64:ff9b::10.0.0.1");
    assert_string_equal(policy_addr_refused(p, n, &a), "NAT64");
    a = addr("fd00:ec2::254"); /* inside the listed fd00::/8 */
    assert_null(policy_addr_refused(p, n, &a));
    a = addr("169.254.169.254");
    assert_string_equal(policy_addr_refused(p, n, &a), "cloud metadata");
    a = addr("::1");
    assert_string_equal(policy_addr_refused(p, n, &a), "loopback");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_parse),
        cmocka_unit_test(test_pattern_parse),
        cmocka_unit_test(test_pattern_match),
        cmocka_unit_test(test_addr_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

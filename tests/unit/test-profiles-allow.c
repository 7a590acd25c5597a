/* tests/unit/test-profiles-allow.c: one allow-pattern grammar.  Every pattern of the table goes
 * through the validation `devbox profile check` runs (profile_set "network.allow", the same
 * checks as a devbox.ini line) and through what the egress proxy does with it (proxy_start's
 * parse of the pattern, then its matcher on request hosts): both must accept it or both refuse
 * it, and an accepted pattern matches the same hosts written as the user wrote it and in the
 * normalized spelling the profile hands the proxy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "profiles/profiles.h"
#include "proxy/proxy.h"

#define NAME63 "abcdefghij0123456789abcdefghij0123456789abcdefghij0123456789abc"
#define NAME61 "abcdefghij0123456789abcdefghij0123456789abcdefghij0123456789a"
#define NAME253 NAME63 "." NAME63 "." NAME63 "." NAME61

static const struct {
    const char *pattern;
    const char *norm; /* NULL: refused by both */
    const char *host; /* a request host (as in a CONNECT line) and port to probe, or NULL */
    uint16_t port;
    bool match;
} cases[] = {
    /* the three forms the two parsers disagreed on */
    {"a_b.test", "a_b.test", "a_b.test", 443, true}, /* DNS allows '_'; the proxy serves it */
    {"foo.0x10", NULL, NULL, 0, false},              /* a numeric last label reads as IPv4 */
    {"10.0.0.0/08", NULL, NULL, 0, false},           /* one spelling: no leading zero */
    /* names */
    {"allowed.test", "allowed.test", "allowed.test", 443, true},
    {"allowed.test", "allowed.test", "allowed.test", 80, true},
    {"allowed.test", "allowed.test", "allowed.test", 22, false},
    {"allowed.test", "allowed.test", "evil-allowed.test", 443, false},
    {"allowed.test", "allowed.test", "allowed.test.evil.test", 443, false},
    {"allowed.test.", "allowed.test", "allowed.test", 443, true},
    {"allowed.test.", "allowed.test", "allowed.test.", 443, true},
    {"ALLOWED.Test", "allowed.test", "allowed.test", 443, true},
    {"allowed.test", "allowed.test", "ALLOWED.TEST", 443, true},
    {"allowed.test:8443", "allowed.test:8443", "allowed.test", 8443, true},
    {"allowed.test:8443", "allowed.test:8443", "allowed.test", 443, false},
    {"a.test:65535", "a.test:65535", "a.test", 65535, true},
    {"-a.test", "-a.test", "-a.test", 443, true},
    {"localhost", "localhost", "localhost", 80, true},
    {NAME63 ".test", NAME63 ".test", NAME63 ".test", 443, true},
    {NAME253, NAME253, NAME253, 443, true},
    {NAME253 ".", NAME253, NAME253, 443, true},
    {"x" NAME63 ".test", NULL, NULL, 0, false}, /* a label of 64 */
    {"e" NAME253, NULL, NULL, 0, false},        /* 254 bytes */
    {"a..b", NULL, NULL, 0, false},
    {".a.test", NULL, NULL, 0, false},
    {"a.test..", NULL, NULL, 0, false},
    {".", NULL, NULL, 0, false},
    {"a~b.test", NULL, NULL, 0, false},
    {"a/b.test", NULL, NULL, 0, false},
    {"foo.123", NULL, NULL, 0, false},
    {"foo.0x", NULL, NULL, 0, false},
    {"foo.0xg", "foo.0xg", "foo.0xg", 443, true},
    {"123", NULL, NULL, 0, false},
    /* wildcards */
    {"*.example.com", "*.example.com", "a.example.com", 443, true},
    {"*.example.com", "*.example.com", "a.b.example.com", 80, true},
    {"*.example.com", "*.example.com", "example.com", 443, false},
    {"*.example.com", "*.example.com", "aexample.com", 443, false},
    {"*.Example.COM.:8443", "*.example.com:8443", "x.example.com", 8443, true},
    {"*.example.com:8443", "*.example.com:8443", "x.example.com", 443, false},
    {"*.com", NULL, NULL, 0, false},
    {"*.", NULL, NULL, 0, false},
    {"*", NULL, NULL, 0, false},
    {"*.*.a.com", NULL, NULL, 0, false},
    {"a.*.com", NULL, NULL, 0, false},
    {"a*.b.com", NULL, NULL, 0, false},
    {"*.1.2.3.4", NULL, NULL, 0, false},
    /* IPv4 */
    {"1.2.3.4", "1.2.3.4", "1.2.3.4", 443, true},
    {"1.2.3.4:8080", "1.2.3.4:8080", "1.2.3.4", 8080, true},
    {"1.2.3.4/32", "1.2.3.4/32", "1.2.3.4", 443, true},
    {"10.0.0.0/8", "10.0.0.0/8", "10.200.0.1", 443, true},
    {"10.0.0.0/8:443", "10.0.0.0/8:443", "11.0.0.1", 443, false},
    {"0.0.0.0/0", "0.0.0.0/0", "8.8.8.8", 80, true},
    {"1.2.3.4", "1.2.3.4", "[::ffff:1.2.3.4]", 443, false}, /* one family per pattern */
    {"10.0.0.1/8", NULL, NULL, 0, false},                   /* bits beyond the prefix */
    {"10.0.0.0/33", NULL, NULL, 0, false},
    {"10.0.0.0/", NULL, NULL, 0, false},
    {"10.0.0.0/+8", NULL, NULL, 0, false},
    {"10.0.0.0/-1", NULL, NULL, 0, false},
    {"10.0.0.0/8/8", NULL, NULL, 0, false},
    {"127.1", NULL, NULL, 0, false},
    {"2130706433", NULL, NULL, 0, false},
    {"0x7f.0.0.1", NULL, NULL, 0, false},
    {"01.2.3.4", NULL, NULL, 0, false},
    {"1.2.3.4.", NULL, NULL, 0, false},
    {"1.2.3.999", NULL, NULL, 0, false},
    {"10.1/16", NULL, NULL, 0, false},
    {"[1.2.3.4]", NULL, NULL, 0, false},
    {"[10.0.0.0/8]:443", NULL, NULL, 0, false},
    /* IPv6 */
    {"::1", "::1", "[::1]", 443, true},
    {"[::1]", "::1", "[::1]", 80, true},
    {"[::1]:8080", "[::1]:8080", "[::1]", 8080, true},
    {"[::1]:8080", "[::1]:8080", "[::1]", 443, false},
    {"FD00::/8", "fd00::/8", "[fd00::5]", 443, true},
    {"[fd00::/8]:443", "[fd00::/8]:443", "[fdff::1]", 443, true},
    {"[fd00::/8]:443", "[fd00::/8]:443", "[fe00::1]", 443, false},
    {"2001:0db8:0:0::1", "2001:db8::1", "[2001:db8::1]", 443, true},
    {"::ffff:1.2.3.4", "::ffff:1.2.3.4", "[::ffff:1.2.3.4]", 443, true},
    {"::ffff:1.2.3.4", "::ffff:1.2.3.4", "1.2.3.4", 443, false},
    {"::/0", "::/0", "[2606:4700::1111]", 80, true},
    {"[::/128]:1", "[::/128]:1", "[::]", 1, true},
    {"::1:80", "::0.1.0.128", "[::1:80]", 443, true}, /* bare IPv6 takes no port */
    {"fd00::1/8", NULL, NULL, 0, false},
    {"::/129", NULL, NULL, 0, false},
    {"::/08", NULL, NULL, 0, false},
    {"[::1", NULL, NULL, 0, false},
    {"[::1]x", NULL, NULL, 0, false},
    {"[::1]:", NULL, NULL, 0, false},
    {"fe80::1%eth0", NULL, NULL, 0, false},
    {"::g", NULL, NULL, 0, false},
    /* ports */
    {"a.test:0", NULL, NULL, 0, false},
    {"a.test:65536", NULL, NULL, 0, false},
    {"a.test:080", NULL, NULL, 0, false},
    {"a.test:", NULL, NULL, 0, false},
    {"a.test:+80", NULL, NULL, 0, false},
    {"a.test:8o", NULL, NULL, 0, false},
    {"a.test:80:90", NULL, NULL, 0, false},
    {":80", NULL, NULL, 0, false},
};

/* What `devbox profile check` says: the normalized pattern, or NULL (*ret_msg: the error).
 * (An empty value and blanks are the list's business, not a pattern's: not in the table.) */
static char *validate(const char *pattern, char **ret_msg) {
    struct profile p;
    assert_int_equal(profile_init_default(&p), 0);
    dbx_error *e = NULL;
    char *norm = NULL;
    if (profile_set(&p, "network.allow", pattern, "test", &e) == 0) {
        assert_int_equal(dbx_strv_len(p.allow), 1);
        norm = dbx_xstrdup(p.allow[0]);
    } else {
        *ret_msg = dbx_xstrdup(e->msg);
        dbx_error_free(&e);
    }
    profile_clear(&p);
    return norm;
}

/* Whether the proxy starts with pattern as its one allow entry. */
static bool proxy_accepts(const char *pattern, char **ret_msg) {
    char *allow[] = {(char *)pattern, NULL};
    struct proxy_config cfg = {.allow = allow, .log_fd = -1};
    struct proxy *px = NULL;
    dbx_error *e = NULL;
    if (proxy_start(&cfg, &px, &e) < 0) {
        *ret_msg = dbx_xstrdup(e->msg);
        dbx_error_free(&e);
        return false;
    }
    proxy_stop(px);
    return true;
}

/* Whether the proxy's matcher lets host:port through pattern. */
static bool proxy_matches(const char *pattern, const char *host, uint16_t port) {
    struct policy_host h;
    const char *why = NULL;
    if (policy_host_parse(host, strlen(host), &h, &why) < 0)
        fail_msg("'%s': not a request host: %s", host, why);
    struct profile_allow pat;
    dbx_error *e = NULL;
    if (policy_pattern_parse(pattern, &pat, &e) < 0) fail_msg("'%s': %s", pattern, e->msg);
    return policy_allowed(&pat, 1, &h, port);
}

static void test_agree(void **state) {
    size_t failures = 0;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        const char *pat = cases[i].pattern;
        char *vmsg = NULL, *pmsg = NULL;
        char *norm = validate(pat, &vmsg);
        bool proxy_ok = proxy_accepts(pat, &pmsg);
        const char *want = cases[i].norm;
        if (!!norm != proxy_ok) {
            print_error("'%s': profile check %s, the proxy %s\n", pat, norm ? "accepts" : vmsg,
                        proxy_ok ? "accepts" : pmsg);
            failures++;
        } else if (!!norm != !!want || (norm && strcmp(norm, want) != 0)) {
            print_error("'%s': profile check gives %s, want %s\n", pat, norm ? norm : vmsg,
                        want ? want : "a refusal");
            failures++;
        } else if (norm && cases[i].host) {
            /* the proxy gets the normalized spelling from a profile; both must match alike */
            bool m_raw = proxy_matches(pat, cases[i].host, cases[i].port);
            bool m_norm = proxy_matches(norm, cases[i].host, cases[i].port);
            char *amsg = NULL, *again = validate(norm, &amsg);
            if (m_raw != cases[i].match || m_norm != cases[i].match) {
                print_error("'%s' (as '%s'): %s:%u %s, want %s\n", pat, norm, cases[i].host,
                            cases[i].port, m_raw ? "matches" : "does not match",
                            cases[i].match ? "a match" : "no match");
                failures++;
            } else if (!again || strcmp(again, norm) != 0) {
                print_error("'%s': its normalized form '%s' does not normalize to itself\n", pat,
                            norm);
                failures++;
            }
            free(again);
            free(amsg);
        }
        free(norm);
        free(vmsg);
        free(pmsg);
    }
    if (failures) fail_msg("%zu of %zu patterns disagree", failures, DBX_ARRAY_SIZE(cases));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

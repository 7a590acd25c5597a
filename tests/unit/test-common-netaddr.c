/* tests/unit/test-common-netaddr.c: the address classifier both the egress proxy and the passt
 * filter use, and its table against docs/network.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "common/common.h"
#include "common/netaddr.h"

static struct dbx_addr addr(const char *s) {
    struct dbx_addr a = {0};
    if (dbx_addr_parse(s, strlen(s), AF_INET, &a) < 0 &&
        dbx_addr_parse(s, strlen(s), AF_INET6, &a) < 0)
        fail_msg("bad address in test: %s", s);
    return a;
}

static void test_addr_parse(void **state) {
    static const char *const bad4[] = {"127.1",    "2130706433", "0x7f.0.0.1", "0177.0.0.1",
                                       "1.2.3.4.", "1.2.3.256",  " 1.2.3.4",   ""};
    struct dbx_addr a;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad4); i++)
        if (dbx_addr_parse(bad4[i], strlen(bad4[i]), AF_INET, &a) == 0)
            fail_msg("'%s' parsed as IPv4", bad4[i]);
    assert_int_equal(dbx_addr_parse("1.2.3.4\0.5", 9, AF_INET, &a), -EINVAL);
    assert_int_equal(dbx_addr_parse("1.2.3.45", 7, AF_INET, &a), 0); /* len bounds the text */
    char buf[INET6_ADDRSTRLEN];
    assert_string_equal(dbx_addr_format(&a, buf), "1.2.3.4");
    assert_int_equal(dbx_addr_parse("[::1]", 5, AF_INET6, &a), -EINVAL);
    assert_int_equal(dbx_addr_parse("fe80::1%eth0", 12, AF_INET6, &a), -EINVAL);
    assert_int_equal(dbx_addr_parse("1.2.3.4", 7, AF_UNIX, &a), -EINVAL);
    struct dbx_addr net = addr("fd00::"), in = addr("fdff::1"), out = addr("fe00::1");
    assert_true(dbx_addr_in(&in, &net, 8));
    assert_false(dbx_addr_in(&out, &net, 8));
    struct dbx_addr v4 = addr("253.0.0.1");
    assert_false(dbx_addr_in(&v4, &net, 8)); /* same leading byte, other family */
}

static void test_addr_classify(void **state) {
    static const struct {
        const char *a;
        enum dbx_addr_class c;
    } cases[] = {
        {"8.8.8.8", DBX_ADDR_PUBLIC},
        {"1.1.1.1", DBX_ADDR_PUBLIC},
        {"127.0.0.1", DBX_ADDR_LOOPBACK},
        {"127.255.255.254", DBX_ADDR_LOOPBACK},
        {"10.1.2.3", DBX_ADDR_PRIVATE},
        {"172.16.0.1", DBX_ADDR_PRIVATE},
        {"172.31.255.255", DBX_ADDR_PRIVATE},
        {"172.32.0.1", DBX_ADDR_PUBLIC},
        {"192.168.1.1", DBX_ADDR_PRIVATE},
        {"169.254.1.1", DBX_ADDR_LINK_LOCAL},
        {"169.254.169.254", DBX_ADDR_METADATA},
        {"100.64.0.1", DBX_ADDR_CGNAT},
        {"100.127.255.255", DBX_ADDR_CGNAT},
        {"100.128.0.1", DBX_ADDR_PUBLIC},
        {"224.0.0.1", DBX_ADDR_MULTICAST},
        {"239.255.255.250", DBX_ADDR_MULTICAST},
        {"255.255.255.255", DBX_ADDR_BROADCAST},
        {"0.0.0.0", DBX_ADDR_UNSPECIFIED},
        {"0.1.2.3", DBX_ADDR_UNSPECIFIED},
        {"192.0.2.1", DBX_ADDR_RESERVED},
        {"198.18.0.1", DBX_ADDR_RESERVED},
        {"198.51.100.1", DBX_ADDR_RESERVED},
        {"203.0.113.1", DBX_ADDR_RESERVED},
        {"240.0.0.1", DBX_ADDR_RESERVED},
        {"2606:4700::1111", DBX_ADDR_PUBLIC},
        {"::1", DBX_ADDR_LOOPBACK},
        {"::", DBX_ADDR_UNSPECIFIED},
        {"::127.0.0.1", DBX_ADDR_UNSPECIFIED},
        {"::ffff:127.0.0.1", DBX_ADDR_MAPPED},
        {"::ffff:8.8.8.8", DBX_ADDR_MAPPED},
        {"::ffff:0:127.0.0.1", DBX_ADDR_MAPPED},
        {"64:ff9b::127.0.0.1", DBX_ADDR_NAT64},
        {"64:ff9b::a9fe:a9fe", DBX_ADDR_NAT64},
        {"64:ff9b::8.8.8.8", DBX_ADDR_PUBLIC},
        {"64:ff9b:1::1", DBX_ADDR_NAT64},
        {"2002:7f00:1::1", DBX_ADDR_TUNNEL},
        {"2001:0:4136:e378::1", DBX_ADDR_TUNNEL},
        {"2001:db8::1", DBX_ADDR_RESERVED},
        {"fc00::1", DBX_ADDR_PRIVATE},
        {"fd12:3456::1", DBX_ADDR_PRIVATE},
        {"fd00:ec2::254", DBX_ADDR_METADATA},
        {"fe80::1", DBX_ADDR_LINK_LOCAL},
        {"febf::1", DBX_ADDR_LINK_LOCAL},
        {"fec0::1", DBX_ADDR_PRIVATE},
        {"ff02::1", DBX_ADDR_MULTICAST},
        {"100::1", DBX_ADDR_RESERVED},
        {"4000::1", DBX_ADDR_RESERVED},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        struct dbx_addr a = addr(cases[i].a);
        enum dbx_addr_class c = dbx_addr_classify(&a);
        if (c != cases[i].c)
            fail_msg("%s: class %s, want %s", cases[i].a, dbx_addr_class_name(c),
                     dbx_addr_class_name(cases[i].c));
    }
}

/* docs/network.md's table of refused addresses is the classifier's table: every row that is not
 * public, in match order, with the same class and words.  On a mismatch the message carries the
 * table the code has, to paste into the document. */
/* cmocka cuts long messages: the table goes to stderr first */
#define docs_fail(want, ...)                                                                       \
    do {                                                                                           \
        fprintf(stderr, "the code's table:\n%s", want);                                            \
        fail_msg(__VA_ARGS__);                                                                     \
    } while (0)
#define DOCS_MARK                                                                                  \
    "<!-- refused addresses: checked against common/netaddr.c by test-common-netaddr.c -->"
static void test_docs_ranges(void **state) {
    size_t n;
    const struct dbx_addr_range *r = dbx_addr_ranges(&n);
    char *want = dbx_xstrdup("");
    for (size_t i = 0; i < n; i++) {
        if (r[i].cls == DBX_ADDR_PUBLIC) continue;
        char a[INET6_ADDRSTRLEN];
        inet_ntop(r[i].family, r[i].net, a, sizeof(a));
        char *next = dbx_xasprintf("%s| `%s/%u` | %s | %s |\n", want, a, r[i].prefix,
                                   dbx_addr_class_name(r[i].cls), r[i].what);
        free(want);
        want = next;
    }
    _cleanup_fclose_ FILE *f = fopen("docs/network.md", "re");
    if (!f) fail_msg("docs/network.md: %s (run from the repository root)", strerror(errno));
    char line[512];
    bool in = false;
    size_t row = 0, lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (!in) {
            in = strstr(line, DOCS_MARK) != NULL;
            continue;
        }
        if (line[0] != '|') break;
        if (strncmp(line, "| `", 3) != 0) continue; /* the header and its rule */
        /* | `cidr` | class | what | */
        char cidr[64], cls[64], what[128];
        if (sscanf(line, "| `%63[^`]` | %63[^|]| %127[^|]|", cidr, cls, what) != 3)
            fail_msg("docs/network.md:%zu: not a table row", lineno);
        for (char *e = cls + strlen(cls); e > cls && e[-1] == ' ';)
            *--e = '\0';
        for (char *e = what + strlen(what); e > what && e[-1] == ' ';)
            *--e = '\0';
        while (row < n && r[row].cls == DBX_ADDR_PUBLIC)
            row++;
        if (row == n) docs_fail(want, "docs/network.md:%zu: a row the code lacks", lineno);
        char *slash = strchr(cidr, '/');
        uint8_t net[16] = {0};
        bool ok =
            slash && (*slash = '\0', inet_pton(r[row].family, cidr, net) == 1) &&
            memcmp(net, r[row].net, 16) == 0 && strtoul(slash + 1, NULL, 10) == r[row].prefix &&
            strcmp(cls, dbx_addr_class_name(r[row].cls)) == 0 && strcmp(what, r[row].what) == 0;
        if (!ok) docs_fail(want, "docs/network.md:%zu: differs from the code's row", lineno);
        row++;
    }
    if (!in) fail_msg("docs/network.md: no line '%s'", DOCS_MARK);
    while (row < n && r[row].cls == DBX_ADDR_PUBLIC)
        row++;
    if (row != n) docs_fail(want, "docs/network.md: rows missing");
    free(want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_addr_classify),
        cmocka_unit_test(test_docs_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test-common-escape.c: escaping untrusted text for the user's terminal. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/common.h"

static void check(const char *in, size_t n, unsigned flags, const char *want) {
    _cleanup_free_ char *o = dbx_escape_n(in, n, flags);
    assert_string_equal(o, want);
}

static void test_escape_c0(void **state) {
    const char s[] = "\x1b]0;PWN\a\x1b[2J";
    check(s, sizeof(s) - 1, 0, "\\e]0;PWN\\x07\\e[2J");
    check("a\bb\rc\nd\te\x7f", 10, 0, "a\\x08b\\x0dc\\x0ad\te\\x7f");
    check("nul\0x", 5, 0, "nul\\x00x");
    _cleanup_free_ char *e = dbx_escape(NULL);
    assert_string_equal(e, "");
}

static void test_escape_c1(void **state) {
    /* raw C1 bytes (CSI 0x9b, OSC 0x9d) and their UTF-8 encodings U+009B, U+0085 */
    check("a\x9b"
          "2J\x9d"
          "0;x",
          8, 0, "a\\x9b2J\\x9d0;x");
    check("a\xc2\x9b"
          "2J\xc2\x85",
          7, 0, "a\\xc2\\x9b2J\\xc2\\x85");
    /* U+00A0 and above are text */
    check("caf\xc3\xa9 \xc2\xa0 \xe2\x82\xac \xf0\x9f\x98\x80", 17, 0,
          "caf\xc3\xa9 \xc2\xa0 \xe2\x82\xac \xf0\x9f\x98\x80");
    /* not UTF-8: overlong, surrogate, truncated, stray continuation, out of range */
    check("\xc0\x9b", 2, 0, "\\xc0\\x9b");
    check("\xed\xa0\x80", 3, 0, "\\xed\\xa0\\x80");
    check("\xe2\x82", 2, 0, "\\xe2\\x82");
    check("\x82z", 2, 0, "\\x82z");
    check("\xf4\x90\x80\x80", 4, 0, "\\xf4\\x90\\x80\\x80");
}

static void test_escape_lines(void **state) {
    check("one\r\ntwo\n\rthree\r", 16, DBX_ESC_LINES, "one\ntwo\n\\x0dthree\\x0d");
    check("one\r\ntwo", 8, 0, "one\\x0d\\x0atwo");
}

static void test_escape_cut(void **state) {
    assert_int_equal(dbx_escape_cut("abc", 3), 3);
    assert_int_equal(dbx_escape_cut("abc\r", 4), 3);
    assert_int_equal(dbx_escape_cut("ab\xc2", 3), 2);
    assert_int_equal(dbx_escape_cut("ab\xc2\x9b", 4), 4);
    assert_int_equal(dbx_escape_cut("ab\xe2\x82", 4), 2);
    assert_int_equal(dbx_escape_cut("ab\xe2\x82\xac", 5), 5);
    assert_int_equal(dbx_escape_cut("ab\xf0\x9f\x98", 5), 2);
    assert_int_equal(dbx_escape_cut("", 0), 0);
}

static void test_sanitize_c1(void **state) {
    char s[] = "x\x1b[1m\xc2\x9b\x9b\xc3\xa9\t";
    dbx_sanitize_printable(s);
    assert_string_equal(s, "x?[1m???\xc3\xa9\t");
}

/* dbx_utf8_next: code points of each length; and what RFC 3629 refuses, each at the last byte
 * it is wrong at, never reading past a NUL. */
static void test_utf8_next(void **state) {
    static const struct {
        const char *s;
        size_t len;
        uint32_t cp;
    } ok[] = {{"A", 1, 0x41},
              {"\xc2\x80", 2, 0x80},
              {"\xdf\xbf", 2, 0x7ff},
              {"\xe0\xa0\x80", 3, 0x800},
              {"\xef\xbf\xbf", 3, 0xffff},
              {"\xf0\x90\x80\x80", 4, 0x10000},
              {"\xf4\x8f\xbf\xbf", 4, 0x10ffff}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint32_t cp = 0;
        assert_int_equal(dbx_utf8_next(ok[i].s, 4, &cp), ok[i].len);
        assert_int_equal(cp, ok[i].cp);
    }
    static const char *const bad[] = {
        "\x80",             /* a continuation byte first */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, 3 bytes */
        "\xed\xa0\x80",     /* a surrogate */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\xf5\x80\x80\x80",
        "\xff",
        "\xe2\x82", /* cut short by the NUL */
        "\xc3"
        "A",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t cp = 0;
        assert_int_equal(dbx_utf8_next(bad[i], 4, &cp), 0);
    }
    uint32_t cp = 0;
    assert_int_equal(dbx_utf8_next("\xc3\xa9", 1, &cp), 0); /* n shorter than the sequence */
    assert_int_equal(dbx_utf8_next("", 0, &cp), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_c0),    cmocka_unit_test(test_escape_c1),
        cmocka_unit_test(test_escape_lines), cmocka_unit_test(test_escape_cut),
        cmocka_unit_test(test_sanitize_c1),  cmocka_unit_test(test_utf8_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/fuzz/fuzz-escape.c: libFuzzer harness for dbx_escape_n / dbx_escape_cut, which make
 * untrusted bytes (guest console, names, paths) safe for the user's terminal.
 *
 * Checks: the output holds no C0 control but TAB (and LF with DBX_ESC_LINES), no DEL, no raw
 * C1 byte outside a well-formed multi-byte sequence and no UTF-8 encoded C1 (0xc2 0x80-0x9f);
 * escaping in chunks cut by dbx_escape_cut gives the same text as escaping the whole input.
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without DBX_LIBFUZZER a
 * replay main() runs each file (or each file in each directory) named on the command line. */
#include "common/common.h"
#include "common/protocol.h"

#include "replay.h"

static void check_clean(const char *o, bool lines) {
    for (const unsigned char *p = (const unsigned char *)o; *p; p++) {
        CHECK(*p >= 0x20 || *p == '\t' || (lines && *p == '\n'));
        CHECK(*p != 0x7f);
        CHECK(!(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f));
        /* a byte >= 0x80 only inside a sequence that starts with a lead byte */
        if (*p >= 0x80 && *p <= 0xbf) CHECK(p > (const unsigned char *)o && p[-1] >= 0x80);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    _cleanup_free_ char *whole = dbx_escape_n(s, size, DBX_ESC_LINES);
    check_clean(whole, true);
    _cleanup_free_ char *flat = dbx_escape_n(s, size, 0);
    check_clean(flat, false);
    /* chunked as `devbox logs` does, with a small buffer */
    size_t cap = size ? (size_t)data[0] % 16 + 4 : 4, have = 0, off = 0;
    char buf[32];
    struct dbx_buf out = {0};
    for (;;) {
        size_t n = size - off < cap - have ? size - off : cap - have;
        memcpy(buf + have, s + off, n);
        off += n;
        have += n;
        size_t cut = n == 0 ? have : dbx_escape_cut(buf, have);
        _cleanup_free_ char *e = dbx_escape_n(buf, cut, DBX_ESC_LINES);
        dbx_buf_put(&out, e, strlen(e));
        if (n == 0) break;
        memmove(buf, buf + cut, have - cut);
        have -= cut;
    }
    dbx_buf_put(&out, "", 1);
    CHECK(strcmp((const char *)out.data, whole) == 0);
    dbx_buf_free(&out);
    return 0;
}

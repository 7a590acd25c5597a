/* tests/fuzz/fuzz-status.c: libFuzzer harness for the status record decoder
 * (sandbox/sandbox-status.c), which reads the supervisor's reply and the run dir's status file.
 *
 * Whatever decodes must re-encode to exactly the input (the format has one spelling per value;
 * a version 2 or 3 record re-encodes as version 4 with the fields it lacks zero: idle_s and
 * idle_stop_s, aslr) and render as JSON;
 * whatever does not decode leaves nothing allocated.
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without DBX_LIBFUZZER a
 * replay main() runs each file (or each file in each directory) named on the command line,
 * so CI replays the corpus under gcc.  Seeds: tests/fuzz/gen-corpus-status.py. */
#include "common/common.h"
#include "sandbox/sandbox-internal.h"

#include "replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct dbx_status st = {0};
    if (dbx_status_decode(data, size, &st, NULL) < 0) {
        CHECK(st.project == NULL && st.profile_files == NULL);
        return 0;
    }
    struct dbx_buf b = {0};
    dbx_status_encode(&st, &b);
    if (data[0] == 2 || data[0] == 3) { /* earlier: the same fields, then what it lacks */
        static const uint8_t zero[17];
        size_t more = data[0] == 2 ? 17 : 1; /* idle_s, idle_stop_s; aslr */
        CHECK(b.len == size + more && b.data[0] == 4 &&
              memcmp(b.data + 1, data + 1, size - 1) == 0 &&
              memcmp(b.data + size, zero, more) == 0);
    } else {
        CHECK(b.len == size && memcmp(b.data, data, size) == 0);
    }
    char *j = dbx_status_json(&st);
    CHECK(j && j[0] == '{');
    free(j);
    dbx_buf_free(&b);
    dbx_status_clear(&st);
    return 0;
}

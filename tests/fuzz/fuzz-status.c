/* tests/fuzz/fuzz-status.c: libFuzzer harness for the status record decoder
 * (sandbox/sandbox-status.c), which reads the supervisor's reply and the run dir's status file.
 *
 * Whatever decodes must re-encode to exactly the input (the format has one spelling per value;
 * a version 2 record re-encodes as version 3 with its idle fields zero) and render as JSON;
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
    if (data[0] == 2) { /* the previous version: the same fields, then idle_s, idle_stop_s */
        static const uint8_t zero[16];
        CHECK(b.len == size + 16 && b.data[0] == 3 && memcmp(b.data + 1, data + 1, size - 1) == 0 &&
              memcmp(b.data + size, zero, 16) == 0);
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

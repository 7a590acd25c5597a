/* tests/fuzz/fuzz-proxy-tls.c: libFuzzer harness for proxy_tls_sni, the ClientHello
 * server_name extraction the egress proxy runs on CONNECT tunnels to port 443.
 *
 * Checks: a result of 1 gives a valid normalized host name (or ""), and every proper prefix of
 * such an input is "need more" or the same answer; "need more" never happens once the input
 * reaches PROXY_TLS_MAX_RAW; errors carry EPROTO and a message.
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without DBX_LIBFUZZER a
 * replay main() runs each file (or each file in each directory) named on the command line. */
#include <dirent.h>
#include <sys/stat.h>

#include "common/common.h"
#include "proxy/proxy.h"

#include "replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char sni[DBX_HOST_MAX + 1];
    dbx_error *err = NULL;
    int r = proxy_tls_sni(data, size, sni, &err);
    if (r < 0) {
        CHECK(r == -EPROTO && err != NULL && err->code == EPROTO && err->msg != NULL);
        dbx_error_free(&err);
        return 0;
    }
    CHECK(err == NULL);
    if (r == 0) {
        CHECK(size < PROXY_TLS_MAX_RAW);
        return 0;
    }
    CHECK(r == 1 && strlen(sni) <= DBX_HOST_MAX);
    if (sni[0]) {
        struct policy_host h;
        const char *why = NULL;
        char tmp[DBX_HOST_MAX + 3];
        bool v6 = strchr(sni, ':') != NULL;
        int len = snprintf(tmp, sizeof(tmp), v6 ? "[%s]" : "%s", sni);
        CHECK(policy_host_parse(tmp, (size_t)len, &h, &why) == 0 && strcmp(h.name, sni) == 0);
    }
    /* prefixes: need more, or (once the hello is whole) the same name */
    size_t cuts[] = {0, 4, 5, size / 2, size - 1};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cuts); i++) {
        if (cuts[i] >= size) continue;
        char s2[DBX_HOST_MAX + 1];
        int r2 = proxy_tls_sni(data, cuts[i], s2, NULL);
        CHECK(r2 == 0 || (r2 == 1 && strcmp(s2, sni) == 0));
    }
    return 0;
}

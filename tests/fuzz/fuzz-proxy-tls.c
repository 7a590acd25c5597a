/* tests/fuzz/fuzz-proxy-tls.c: libFuzzer harness for policy_tls_sni, the ClientHello
 * server_name extraction the egress proxy runs on CONNECT tunnels to port 443.
 *
 * Checks: a result of 1 gives a valid normalized host name (or ""), and every proper prefix of
 * such an input is "need more" or the same answer; "need more" never happens once the input
 * reaches POLICY_TLS_MAX_RAW; errors carry EPROTO and a message.
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without DBX_LIBFUZZER a
 * replay main() runs each file (or each file in each directory) named on the command line. */
#include <dirent.h>
#include <sys/stat.h>

#include "common/common.h"
#include "policy/policy.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char sni[POLICY_HOST_MAX + 1];
    dbx_error *err = NULL;
    int r = policy_tls_sni(data, size, sni, &err);
    if (r < 0) {
        CHECK(r == -EPROTO && err != NULL && err->code == EPROTO && err->msg != NULL);
        dbx_error_free(&err);
        return 0;
    }
    CHECK(err == NULL);
    if (r == 0) {
        CHECK(size < POLICY_TLS_MAX_RAW);
        return 0;
    }
    CHECK(r == 1 && strlen(sni) <= POLICY_HOST_MAX);
    if (sni[0]) {
        struct policy_host h;
        const char *why = NULL;
        char tmp[POLICY_HOST_MAX + 3];
        bool v6 = strchr(sni, ':') != NULL;
        int len = snprintf(tmp, sizeof(tmp), v6 ? "[%s]" : "%s", sni);
        CHECK(policy_host_parse(tmp, (size_t)len, &h, &why) == 0 && strcmp(h.name, sni) == 0);
    }
    /* prefixes: need more, or (once the hello is whole) the same name */
    size_t cuts[] = {0, 4, 5, size / 2, size - 1};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cuts); i++) {
        if (cuts[i] >= size) continue;
        char s2[POLICY_HOST_MAX + 1];
        int r2 = policy_tls_sni(data, cuts[i], s2, NULL);
        CHECK(r2 == 0 || (r2 == 1 && strcmp(s2, sni) == 0));
    }
    return 0;
}

#ifndef DBX_LIBFUZZER
static int run_file(int dirfd, const char *name, const char *shown) {
    char *buf = NULL;
    size_t len = 0;
    dbx_error *err = NULL;
    if (dbx_read_file_at(dirfd, name, 16u << 20, &buf, &len, &err) < 0) {
        fprintf(stderr, "fuzz-proxy-tls: %s\n", err->msg);
        dbx_error_free(&err);
        return -1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
    free(buf);
    (void)shown;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    size_t ran = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "fuzz-proxy-tls: stat '%s': %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(AT_FDCWD, argv[i], argv[i]) < 0)
                failed = 1;
            else
                ran++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "fuzz-proxy-tls: opendir '%s': %s\n", argv[i], strerror(errno));
            return 1;
        }
        char **names = NULL;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            struct stat est;
            if (fstatat(dirfd(d), de->d_name, &est, AT_SYMLINK_NOFOLLOW) < 0 ||
                !S_ISREG(est.st_mode))
                continue;
            names = dbx_strv_push(names, de->d_name);
        }
        size_t n = dbx_strv_len(names);
        if (n) qsort(names, n, sizeof(char *), cmp_str);
        for (size_t j = 0; j < n; j++) {
            if (run_file(dirfd(d), names[j], names[j]) < 0)
                failed = 1;
            else
                ran++;
        }
        dbx_strv_free(names);
        closedir(d);
    }
    printf("fuzz-proxy-tls: %zu input(s) replayed%s\n", ran, failed ? ", some unreadable" : "");
    if (ran == 0) return 1; /* an empty corpus is a setup error, not a pass */
    return failed;
}
#endif

/* tests/fuzz/replay.h: shared by every tests/fuzz/fuzz-*.c (included once, by the harness).
 * CHECK() aborts with file:line, so libFuzzer and the replay build both report it.  Without
 * DBX_LIBFUZZER it also defines main(): each FILE argument, and each regular file of each DIR
 * argument in name order, goes through LLVMFuzzerTestOneInput, so `make unit` replays the
 * committed corpus under gcc.  Unreadable inputs fail the run; so does an empty corpus. */
#ifndef DBX_FUZZ_REPLAY_H
#define DBX_FUZZ_REPLAY_H

#include <dirent.h>
#include <sys/stat.h>

#include "common/common.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef DBX_LIBFUZZER
static int replay_file(int dirfd, const char *name) {
    char *buf = NULL;
    size_t len = 0;
    dbx_error *err = NULL;
    if (dbx_read_file_at(dirfd, name, 16u << 20, &buf, &len, &err) < 0) {
        fprintf(stderr, "%s: %s\n", program_invocation_short_name, err->msg);
        dbx_error_free(&err);
        return -1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
    free(buf);
    return 0;
}

static int replay_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files only (a symlink or FIFO in the corpus is skipped, not followed), sorted so a
 * failure reproduces in the same order. */
static int replay_dir(const char *path, size_t *ran, int *failed) {
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "%s: opendir '%s': %s\n", program_invocation_short_name, path,
                strerror(errno));
        return -1;
    }
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode))
            continue;
        names = dbx_strv_push(names, de->d_name);
    }
    size_t n = dbx_strv_len(names);
    if (n) qsort(names, n, sizeof(char *), replay_cmp);
    for (size_t j = 0; j < n; j++) {
        if (replay_file(dirfd(d), names[j]) < 0)
            *failed = 1;
        else
            (*ran)++;
    }
    dbx_strv_free(names);
    closedir(d);
    return 0;
}

int main(int argc, char **argv) {
    const char *me = program_invocation_short_name;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", me);
        return 2;
    }
    size_t ran = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "%s: stat '%s': %s\n", me, argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            if (replay_dir(argv[i], &ran, &failed) < 0) return 1;
        } else if (replay_file(AT_FDCWD, argv[i]) < 0) {
            failed = 1;
        } else {
            ran++;
        }
    }
    printf("%s: %zu input(s) replayed%s\n", me, ran, failed ? ", some unreadable" : "");
    if (ran == 0) return 1; /* an empty corpus is a setup error, not a pass */
    return failed;
}
#endif /* !DBX_LIBFUZZER */

#endif /* DBX_FUZZ_REPLAY_H */

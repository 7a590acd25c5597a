/* tests/fuzz/fuzz-devcontainer.c: libFuzzer harness for the devcontainer.json translator
 * (profiles/profiles-devcontainer.c), the JSON-with-comments a repo's untrusted
 * .devcontainer/devcontainer.json goes through when it has no devbox.ini.
 *
 * Each input is translated; what translates is then loaded through profile_load as the repo's
 * .devcontainer/devcontainer.json in a private temp dir.  Invariants: a translation either
 * succeeds with devbox.ini text of printable lines, each at most PROFILE_MAX_LINE bytes, or
 * fails with a message naming the file; warnings name the file too; a load fails only with
 * lines naming the JSON file; no leaks or overflows (run under ASan/UBSan).
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without DBX_LIBFUZZER a
 * replay main() runs each corpus file, so CI replays the corpus under gcc. */
#include <limits.h>
#include <sys/stat.h>

#include "common/common.h"
#include "profiles/profiles.h"

#include "replay.h"

#define FNAME ".devcontainer/devcontainer.json"

static char tmpdir[PATH_MAX];
static int tmpfd = -1, subfd = -1;

static void cleanup_tmp(void) {
    if (!tmpdir[0]) return;
    unlinkat(subfd, "devcontainer.json", 0);
    unlinkat(tmpfd, ".devcontainer", AT_REMOVEDIR);
    rmdir(tmpdir);
}

static void setup_once(void) {
    if (tmpfd >= 0) return;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/dbx-fuzz-devcontainer-XXXXXX", t && *t ? t : "/tmp");
    CHECK(mkdtemp(tmpdir));
    tmpfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(tmpfd >= 0);
    CHECK(mkdirat(tmpfd, ".devcontainer", 0700) == 0);
    subfd = openat(tmpfd, ".devcontainer", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(subfd >= 0);
    atexit(cleanup_tmp);
}

static void check_lines(const char *s, bool ini) {
    size_t len = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        CHECK(*p >= 0x20 || *p == '\n' || *p == '\t');
        len = *p == '\n' ? 0 : len + 1;
        if (ini) CHECK(len <= PROFILE_MAX_LINE);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup_once();
    char *ini = NULL, **warnings = NULL;
    dbx_error *err = NULL;
    if (profile_devcontainer_translate((const char *)data, size, FNAME, &ini, &warnings, &err) <
        0) {
        CHECK(err && err->msg && dbx_str_has_prefix(err->msg, FNAME));
        dbx_error_free(&err);
        return 0;
    }
    CHECK(ini);
    check_lines(ini, true);
    for (char **w = warnings; w && *w; w++) {
        CHECK(dbx_str_has_prefix(*w, FNAME));
        check_lines(*w, false);
    }
    free(ini);
    dbx_strv_free(warnings);

    /* The same bytes as the repo's profile file. */
    int fd = openat(subfd, "devcontainer.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK(dbx_write_all(fd, data, size) == 0);
    close(fd);
    struct profile p = {0};
    if (profile_load(tmpfd, tmpdir, NULL, "/nonexistent/devbox-profiles", &p, &err) < 0) {
        CHECK(err && err->msg && *err->msg);
        for (const char *line = err->msg; line;
             line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
            CHECK(dbx_str_has_prefix(line, FNAME) || dbx_str_has_prefix(line, "built-in") ||
                  dbx_str_has_prefix(line, "/nonexistent") ||
                  dbx_str_has_prefix(line, "more problems"));
        dbx_error_free(&err);
        return 0;
    }
    CHECK(strlen(p.hash) == 64);
    CHECK(p.ini_equivalent);
    char *t = profile_to_text(&p);
    check_lines(t, false);
    free(t);
    char **wide = profile_widenings(&p, NULL);
    CHECK(wide);
    dbx_strv_free(wide);
    profile_clear(&p);
    return 0;
}

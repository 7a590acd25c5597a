/* tests/fuzz/fuzz-profile.c: libFuzzer harness for the profile parser (profiles/), the INI
 * a repo's untrusted devbox.ini goes through (R15).
 *
 * Each input is written as devbox.ini, as x.ini (so `extends = x.ini` follows a chain of
 * the same bytes until the cycle check stops it) and as config.ini in a private temp dir,
 * then loaded as a repo profile and as the user's config.  Whatever loads is shown as text
 * and JSON and checked for widenings.  Invariants: a load either succeeds or fails with a
 * non-empty message whose lines all name the file they come from; no leaks or overflows
 * (run under ASan/UBSan); a loaded profile keeps the contract (cpus 1..64, lists bounded,
 * no control bytes in the text output).
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without DBX_LIBFUZZER a
 * replay main() runs each file (or each file in each directory) named on the command line,
 * so CI replays the corpus under gcc. */
#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/common.h"
#include "profiles/profiles.h"

#include "replay.h"

static char tmpdir[PATH_MAX];
static int tmpfd = -1;
static char builtin[PATH_MAX];

static void cleanup_tmp(void) {
    if (!tmpdir[0]) return;
    const char *names[] = {"devbox.ini", "x.ini", "config.ini"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(names); i++)
        unlinkat(tmpfd, names[i], 0);
    rmdir(tmpdir);
}

static void setup_once(void) {
    if (tmpfd >= 0) return;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/dbx-fuzz-profile-XXXXXX", t && *t ? t : "/tmp");
    CHECK(mkdtemp(tmpdir));
    tmpfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(tmpfd >= 0);
    atexit(cleanup_tmp);
    /* the built-in profiles of the source tree when run from it, else none (extends = NAME
     * then fails cleanly, which is also worth fuzzing) */
    const char *b = getenv("DEVBOX_PROFILES_DIR");
    if (b && *b)
        snprintf(builtin, sizeof(builtin), "%s", b);
    else if (!realpath("profiles", builtin))
        strcpy(builtin, "/nonexistent/devbox-profiles");
}

static void put(const char *name, const uint8_t *data, size_t size) {
    int fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK(dbx_write_all(fd, data, size) == 0);
    close(fd);
}

static void check_text(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        CHECK(*p >= 0x20 || *p == '\n' || *p == '\t');
}

/* Every line of an error names a file: "devbox.ini:", "x.ini:", the built-in dir, "flag". */
static void check_error(const dbx_error *err) {
    CHECK(err && err->msg && *err->msg);
    CHECK(err->code == EINVAL);
    const char *line = err->msg;
    while (line) {
        CHECK(dbx_str_has_prefix(line, "devbox.ini") || dbx_str_has_prefix(line, "x.ini") ||
              dbx_str_has_prefix(line, builtin) || dbx_str_has_prefix(line, "built-in") ||
              dbx_str_has_prefix(line, tmpdir) || dbx_str_has_prefix(line, "more problems"));
        line = strchr(line, '\n');
        if (line) line++;
    }
}

static void check_profile(const struct profile *p, const struct profile_user *u) {
    CHECK(p->cpus >= 1 && p->cpus <= 64);
    CHECK(p->memory >= (128ull << 20));
    CHECK(p->mem_limit < p->memory);
    CHECK(p->cpu_milli <= p->cpus * 1000u);
    CHECK(dbx_strv_len(p->allow) <= PROFILE_MAX_LIST);
    CHECK(dbx_strv_len(p->resolve) <= PROFILE_MAX_LIST);
    CHECK(p->nports <= PROFILE_MAX_PORTS);
    for (size_t i = 0; i < p->nports; i++) {
        CHECK(p->ports[i].host && p->ports[i].guest);
        for (size_t j = 0; j < i; j++)
            CHECK(p->ports[i].host != p->ports[j].host);
    }
    for (size_t i = 0; p->resolve && p->resolve[i]; i++)
        CHECK(strchr(p->resolve[i], ':') && !strchr(p->resolve[i], '*'));
    CHECK(strlen(p->image) >= 1 && strlen(p->image) <= PROFILE_MAX_IMAGE_REF);
    CHECK(dbx_strv_len(p->env) <= PROFILE_MAX_LIST);
    CHECK(dbx_strv_len(p->protect) <= PROFILE_MAX_LIST + PROFILE_MAX_DEPTH + 4);
    CHECK(strlen(p->hash) == 64);
    for (size_t i = 0; p->protect && p->protect[i]; i++) {
        CHECK(p->protect[i][0] != '/');
        CHECK(!strstr(p->protect[i], "//"));
    }
    char *t = profile_to_text(p);
    check_text(t);
    free(t);
    char *j = profile_to_json(p);
    check_text(j);
    free(j);
    char **w = profile_widenings(p, u);
    CHECK(w);
    dbx_strv_free(w);
}

/* `--network none` on whatever loaded: always succeeds and leaves nothing network to trust. */
static void check_network_none(struct profile *p, const struct profile_user *u) {
    dbx_error *err = NULL;
    CHECK(profile_set(p, "network.mode", "none", "command line", &err) == 0);
    CHECK(p->net_mode == PROFILE_NET_NONE && !p->allow && !p->resolve);
    char **w = profile_widenings(p, u);
    for (size_t i = 0; w[i]; i++)
        CHECK(!dbx_str_has_prefix(w[i], "network "));
    dbx_strv_free(w);
}

static void check_user(const struct profile_user *u) {
    CHECK(u->listen && *u->listen);
    CHECK(dbx_strv_len(u->registries_insecure) <= PROFILE_MAX_LIST);
    CHECK(!u->registries_ca_file || u->registries_ca_file[0] == '/');
    char *t = profile_user_to_text(u);
    check_text(t);
    free(t);
    char *j = profile_user_to_json(u);
    check_text(j);
    free(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup_once();
    put("devbox.ini", data, size);
    put("x.ini", data, size);
    put("config.ini", data, size);

    struct profile_user u = {0};
    dbx_error *err = NULL;
    if (profile_user_load(tmpdir, &u, &err) < 0) {
        check_error(err);
        dbx_error_free(&err);
    } else {
        check_user(&u);
    }
    struct profile p = {0};
    if (profile_load(tmpfd, tmpdir, &u, builtin, &p, &err) == 0) {
        CHECK(!err);
        check_profile(&p, &u);
        check_network_none(&p, &u);
        profile_clear(&p);
    } else {
        check_error(err);
        dbx_error_free(&err);
    }
    profile_user_clear(&u);
    return 0;
}

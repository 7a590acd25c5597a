/* sandbox/sandbox-policy.c: the effective profile of a project, and the trust rule: a repo
 * profile may only narrow the built-in default; anything wider needs a `devbox trust`
 * recorded on the host for exactly those profile bytes. */
#define _GNU_SOURCE
#include "sandbox-internal.h"
#include "../common/sha256.h"
#include "../vm/vm.h"

#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define PROFILE_FILE_MAX (1u << 20) /* over the profile loader's own limit: differs anyway */

char *dbx_trust_dir(const struct dbx_paths *paths) {
    return dbx_xasprintf("%s/trust", paths->state);
}

int dbx_user_load(const struct dbx_paths *paths, struct profile_user *ret, dbx_error **err) {
    if (profile_user_load(paths->config, ret, err) < 0) return -1;
    /* What [setup] may reach without the repo asking: unless config.ini says, the mirrors the
     * host's own apt uses (DEVBOX_APT_DIR replaces /etc/apt, for tests): the distribution's
     * mirrors as this machine's network knows them, never a name written here. */
    if (!ret->setup_allow_set) {
        dbx_strv_free(ret->setup_allow);
        const char *etc = getenv("DEVBOX_APT_DIR");
        ret->setup_allow = vm_apt_hosts(etc && *etc ? etc : NULL);
    }
    return 0;
}

int dbx_profile_load(const struct dbx_paths *paths, const struct dbx_project *proj,
                     struct profile *ret, struct profile_user *ret_user, dbx_error **err) {
    struct profile_user user = {0};
    if (dbx_user_load(paths, &user, err) < 0) return -1;
    _cleanup_close_ int rootfd = open(proj->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        profile_user_clear(&user);
        return dbx_error_set(err, errno, "open '%s'", proj->root);
    }
    if (profile_load(rootfd, proj->root, &user, NULL, ret, err) < 0) {
        profile_user_clear(&user);
        return -1;
    }
    if (ret_user)
        *ret_user = user;
    else
        profile_user_clear(&user);
    return 0;
}

int dbx_profile_allowed(const struct dbx_paths *paths, const struct dbx_project *proj,
                        const struct profile *p, const struct profile_user *user, dbx_error **err) {
    _cleanup_strv_ char **wide = profile_widenings(p, user);
    if (!wide || !wide[0]) return 0;
    _cleanup_free_ char *dir = dbx_trust_dir(paths);
    bool trusted = false;
    if (profile_trust_check(dir, proj->root, p->hash, &trusted, err) < 0) return -1;
    if (trusted) return 0;
    size_t len = 0;
    for (char **w = wide; *w; w++)
        len += strlen(*w) + 2;
    _cleanup_free_ char *list = dbx_xcalloc(1, len + 1);
    for (char **w = wide; *w; w++) {
        if (w != wide) strcat(list, ", ");
        strcat(list, *w);
    }
    return dbx_error_setx(err, EPERM,
                          "%s/%s widens the default profile (%s); review it and run "
                          "'devbox trust' to allow it",
                          proj->root, PROFILE_FILE, list);
}

/* One repo file into the hash as profiles/ hashes it: "name\0length\0bytes".  Opened below
 * the root without following symlinks; false if it cannot be read (then it changed). */
static bool hash_file(int rootfd, const char *name, struct dbx_sha256 *h) {
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
    _cleanup_close_ int fd = (int)syscall(SYS_openat2, rootfd, name, &how, sizeof(how));
    if (fd < 0) return false;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        dbx_read_all(fd, PROFILE_FILE_MAX, &buf, &len, NULL) < 0)
        return false;
    char lenbuf[32];
    int n = snprintf(lenbuf, sizeof(lenbuf), "%zu", len);
    dbx_sha256_update(h, name, strlen(name) + 1);
    dbx_sha256_update(h, lenbuf, (size_t)n + 1);
    dbx_sha256_update(h, buf, len);
    return true;
}

bool dbx_profile_stale(const struct dbx_project *proj) {
    struct dbx_status st = {0};
    if (dbx_status_read(proj->run_dir, &st) < 0) return false;
    bool stale = false;
    _cleanup_close_ int rootfd = open(proj->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd >= 0 && !st.profile_files) {
        /* started without a devbox.ini: one appeared since? */
        struct stat sb;
        stale = fstatat(rootfd, PROFILE_FILE, &sb, AT_SYMLINK_NOFOLLOW) == 0;
    } else if (rootfd >= 0) {
        struct dbx_sha256 h;
        dbx_sha256_init(&h);
        for (char **f = st.profile_files; *f; f++)
            if (!hash_file(rootfd, *f, &h)) stale = true;
        if (!stale) {
            uint8_t out[32];
            char hex[65];
            dbx_sha256_final(&h, out);
            for (size_t k = 0; k < 32; k++)
                snprintf(hex + 2 * k, 3, "%02x", out[k]);
            stale = strcmp(hex, st.profile_hash) != 0;
        }
    }
    dbx_status_clear(&st);
    return stale;
}

/* sandbox/sandbox-tz.c: the host's time zone, for the box (SETUP's tz_name and tz_data).
 *
 * Found in use: with the host in Europe/Berlin, `devbox exec -- date` printed UTC, and a commit
 * made in the box carried +0000 where the user's own carry +0100, so an agent's commits and
 * every timestamp a tool printed in the box disagreed with the same command run locally.  The
 * box gets the zone of the host as the supervisor's environment has it when the box starts:
 *   TZ           the name it gives (a leading ':' dropped): Europe/Berlin, whose file is
 *                $TZDIR/NAME or /usr/share/zoneinfo/NAME; an absolute path, named by what
 *                follows "zoneinfo/" in it, else as /etc/localtime is (TZ=:/etc/localtime is
 *                common advice); a POSIX rule (EST5EDT, <+03>-3), sent alone; empty: UTC,
 *                nothing sent
 *   /etc/localtime  without TZ: named by its symlink's target after "zoneinfo/", else by the
 *                timezone file beside it (Debian writes /etc/timezone too)
 * The file goes with the name, because many images have no zone files at all (devbox's default
 * image, Debian's and Ubuntu's slim ones): the guest then writes it to the box's
 * /usr/share/zoneinfo (guest/init-locale.c).  These are the host's own configuration files,
 * read as such (following their symlinks), never a file of the box or the workspace; one that is
 * not a TZif file, or is larger than a zone ever is, sends nothing and says why in the log. */
#define _GNU_SOURCE
#include "sandbox-internal.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

/* The zone's name in a path to its file: what follows the last "zoneinfo/" ("posix/" and
 * "right/", tzdata's variants of the same zones, dropped), or NULL. */
static const char *name_in_path(const char *path) {
    const char *at = NULL;
    for (const char *p = strstr(path, "zoneinfo/"); p; p = strstr(p + 1, "zoneinfo/"))
        at = p + strlen("zoneinfo/");
    if (at && (dbx_str_has_prefix(at, "posix/") || dbx_str_has_prefix(at, "right/"))) at += 6;
    return at && *at ? at : NULL;
}

/* A TZif file's content: 0, or < 0 with *err (a missing file: -ENOENT, no *err). */
static int read_tzif(const char *path, uint8_t **ret, uint32_t *ret_len, dbx_error **err) {
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) return -ENOENT;
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0) return dbx_error_set(err, errno, "stat '%s'", path);
    if (!S_ISREG(st.st_mode)) return dbx_error_setx(err, EINVAL, "'%s' is not a file", path);
    char *buf = NULL;
    size_t len = 0;
    int r = dbx_read_all(fd, DBX_TZ_DATA_MAX, &buf, &len, err);
    if (r == -E2BIG)
        return dbx_error_setx(err, E2BIG, "'%s' is larger than %u bytes", path, DBX_TZ_DATA_MAX);
    if (r < 0) return dbx_error_wrap(err, "'%s'", path);
    if (len < 4 || memcmp(buf, "TZif", 4) != 0) {
        free(buf);
        return dbx_error_setx(err, EINVAL, "'%s' is not a TZif file", path);
    }
    *ret = (uint8_t *)buf;
    *ret_len = (uint32_t)len;
    return 0;
}

/* The zone's name of a file read as /etc/localtime is (a malloc'd string, "" when none): its
 * symlink's target after "zoneinfo/", else the first word of the timezone file beside it. */
static char *localtime_name(const char *path) {
    char target[PATH_MAX];
    ssize_t k = readlink(path, target, sizeof(target) - 1);
    if (k > 0) {
        target[k] = '\0';
        if (name_in_path(target)) return dbx_xstrdup(name_in_path(target));
    }
    _cleanup_free_ char *dir = dbx_xstrdup(path), *text = NULL;
    char *slash = strrchr(dir, '/');
    if (!slash) return dbx_xstrdup("");
    *slash = '\0';
    _cleanup_free_ char *file = dbx_xasprintf("%s/timezone", dir);
    _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 || dbx_read_all(fd, 4096, &text, NULL, NULL) < 0) return dbx_xstrdup("");
    return dbx_xstrndup(text, strcspn(text, " \t\r\n"));
}

int dbx_host_tz(const char *tz, const char *tzdir, const char *localtime, char **ret_name,
                uint8_t **ret_data, uint32_t *ret_len, dbx_error **err) {
    *ret_name = NULL;
    *ret_data = NULL;
    *ret_len = 0;
    _cleanup_free_ char *name = NULL, *path = NULL;
    if (tz) {
        if (*tz == ':') tz++;
        if (!*tz) return 0; /* TZ= (or TZ=:) is UTC */
        if (*tz == '/') {
            path = dbx_xstrdup(tz);
            name = name_in_path(tz) ? dbx_xstrdup(name_in_path(tz)) : localtime_name(tz);
        } else {
            name = dbx_xstrdup(tz);
            path = dbx_xasprintf("%s/%s", tzdir && *tzdir ? tzdir : "/usr/share/zoneinfo", tz);
        }
    } else {
        path = dbx_xstrdup(localtime);
        name = localtime_name(localtime);
    }
    if (!*name) {
        if (access(path, F_OK) < 0 && errno == ENOENT) return 0; /* no zone configured: UTC */
        return dbx_error_setx(err, EINVAL, "the time zone of '%s' has no name", path);
    }
    uint8_t *data = NULL;
    uint32_t len = 0;
    /* a name that is not a zone's path (a POSIX rule, "../x"): sent without a file, when it
     * passes as a rule */
    bool file_name = dbx_tz_check(name, (const uint8_t *)"TZif", 4, NULL) == 0;
    int r = file_name ? read_tzif(path, &data, &len, err) : -ENOENT;
    if (r < 0 && r != -ENOENT) return dbx_error_wrap(err, "time zone '%s'", name);
    if (dbx_tz_check(name, data, len, err) < 0) {
        free(data);
        return dbx_error_wrap(err, "time zone '%s'", name);
    }
    *ret_name = TAKE_PTR(name);
    *ret_data = data;
    *ret_len = len;
    return 0;
}

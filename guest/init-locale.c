/* guest/init-locale.c: the host's time zone (SETUP's tz_name and tz_data) and a UTF-8 locale,
 * found at SETUP, before READY.
 *
 * Found in use: with the host in Europe/Berlin, the box said UTC (`date`, a commit's +0000), and
 * with no LANG every program in the box ran in the POSIX locale, so `ls` printed a file named
 * 'ü' as '?', bash's readline garbled non-ASCII input and Python's streams, sort and grep took
 * bytes where the same command on the host takes UTF-8.
 *
 * Time zone: every command gets TZ=NAME (init-env.c), which glibc, musl, Go, Python, Java and
 * Node.js (ICU) all read.  A name needs its file where the C library looks, and many images have
 * no zone files (devbox's default image, Debian's and Ubuntu's slim ones; Debian's golang-go
 * does not pull tzdata in): when the image has none for NAME, the host's file is written to
 * /usr/share/zoneinfo/NAME on the box's disk, as tzdata would have it, with a copy in
 * ZONE_RECORD/NAME that marks it as ours.  A later boot rewrites it when the host's file
 * changed (tzdata's rule updates) and the zone file is still the one we wrote; any other file
 * there (the image's, a later tzdata's) is left alone, and so is NAME when we cannot tell (a
 * lookup that fails for another reason than the file not being there).  Not a directory of ours
 * named by TZDIR: Go reads its local zone from the fixed system directories only, not TZDIR or
 * ZONEINFO (measured: UTC in a Debian box with golang-go and TZDIR set), and musl ignores
 * TZDIR.  Java and Node.js carry their own zone data and need only the name.  dpkg replaces
 * the file without a word when tzdata is installed later.  The disk persists and root in the
 * box may have put a symlink on the way: guest_own_file follows none (a note).  When no file
 * could be written, TZ is still set: glibc then keeps UTC (under the name's first letters),
 * while Java and Node.js have the zone. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define ZONE_RECORD "var/lib/devbox/zoneinfo"

/* Open rel under rootfd through its symlinks but inside the root file system (tzdata links
 * zones to each other), as O_PATH: an fd, or -1 with errno. */
static int open_in_root(int rootfd, const char *rel) {
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
    };
    return (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
}

/* The image has rel as a file of that type (S_IFREG, S_IFDIR). */
static bool image_has(int rootfd, const char *rel, mode_t type) {
    _cleanup_close_ int fd = open_in_root(rootfd, rel);
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

/* rel's content when it is a regular file (at most DBX_TZ_DATA_MAX bytes): 0; -ENOENT when
 * there is nothing there (or a symlink to nothing, a directory on the way that is not one);
 * -EEXIST when something else is (not a regular file); -EFBIG for a file larger than any zone;
 * another -errno when the lookup itself failed.  Opened O_PATH first: a FIFO or device there is
 * never opened. */
static int read_in_root(int rootfd, const char *rel, char **ret, size_t *ret_len) {
    _cleanup_close_ int pfd = open_in_root(rootfd, rel);
    if (pfd < 0) return errno == ENOENT || errno == ENOTDIR ? -ENOENT : -errno;
    struct stat st;
    if (fstat(pfd, &st) < 0) return -errno;
    if (!S_ISREG(st.st_mode)) return -EEXIST;
    _cleanup_free_ char *proc = dbx_xasprintf("/proc/self/fd/%d", pfd);
    _cleanup_close_ int fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int r = dbx_read_all(fd, DBX_TZ_DATA_MAX, ret, ret_len, NULL);
    return r == -E2BIG ? -EFBIG : r;
}

static bool same(const void *a, size_t alen, const void *b, size_t blen) {
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Locale: a C library that has no locale of that name falls back to POSIX, and Perl then warns
 * at every start ("Setting locale failed"), so LANG=C.UTF-8 is set only where it exists: glibc
 * keeps it in /usr/lib/locale/C.utf8 (Debian's and Ubuntu's libc-bin, Fedora's
 * glibc-minimal-langpack; glibc 2.35 added it upstream, not built in), and musl is UTF-8 under
 * any name.  Not the host's own LANG: an image seldom has the host's language (de_DE.UTF-8)
 * generated, and the same warning would follow; [env] or -e set another. */
const char *locale_default(const char *root) {
    static const char *const musl[] = {"lib/ld-musl-x86_64.so.1", "lib/ld-musl-aarch64.so.1"};
    _cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) return NULL;
    /* C.utf8 since glibc 2.35 (Debian 12, Ubuntu 22.04); C.UTF-8 in Debian's and Ubuntu's before */
    if (image_has(rootfd, "usr/lib/locale/C.utf8", S_IFDIR) ||
        image_has(rootfd, "usr/lib/locale/C.UTF-8", S_IFDIR))
        return "C.UTF-8";
    for (size_t i = 0; i < DBX_ARRAY_SIZE(musl); i++)
        if (image_has(rootfd, musl[i], S_IFREG)) return "C.UTF-8";
    return NULL;
}

int tz_install(const char *root, const char *name, const uint8_t *data, uint32_t len, char ***notes,
               dbx_error **err) {
    if (dbx_tz_check(name, data, len, err) < 0) return dbx_error_wrap(err, "time zone");
    if (!*name || len == 0) return 0;
    _cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) return dbx_error_set(err, errno, "time zone: open '%s'", root);
    _cleanup_free_ char *rel = dbx_xasprintf("usr/share/zoneinfo/%s", name);
    _cleanup_free_ char *rec = dbx_xasprintf(ZONE_RECORD "/%s", name);
    _cleanup_free_ char *zone = NULL, *mine = NULL;
    size_t zlen = 0, mlen = 0;
    int r = read_in_root(rootfd, rel, &zone, &zlen);
    if ((r == 0 && same(zone, zlen, data, len)) || r == -EFBIG)
        return 0; /* up to date, or not ours */
    if (r == 0) {
        /* another file: ours of an earlier boot (the record says what we wrote), else not ours */
        if (read_in_root(rootfd, rec, &mine, &mlen) < 0 || !same(mine, mlen, zone, zlen)) return 0;
    } else if (r != -ENOENT && r != -EEXIST) {
        *notes = dbx_strv_push(*notes, "'/usr/share/zoneinfo' could not be looked at, not written");
        return 0;
    }
    r = guest_own_file(rootfd, rel, data, len, notes, err);
    if (r == 1) r = guest_own_file(rootfd, rec, data, len, notes, err);
    return r < 0 ? dbx_error_wrap(err, "time zone") : r;
}

/* ---- the host's terminal ---------------------------------------------------------------- */

/* Where a box without the host terminal's entry gets it: init's tmpfs, named by TERMINFO_DIRS
 * (ncurses reads it: tput, vim, less, htop, nano, Python's curses; an empty entry after it is
 * the system's directories).  Not the box's disk: the entry is the host's, for this session. */
static const char *const terminfo_image_dirs[] = {"etc/terminfo", "lib/terminfo",
                                                  "usr/share/terminfo"};

int terminfo_install(const char *root, const char *term, const uint8_t *data, size_t len,
                     char ***notes, dbx_error **err) {
    if (len == 0 || !dbx_terminfo_check(term, data, len)) return 0;
    _cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) return dbx_error_set(err, errno, "terminfo: open '%s'", root);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(terminfo_image_dirs); i++) {
        _cleanup_free_ char *rel = dbx_xasprintf("%s/%c/%s", terminfo_image_dirs[i], term[0], term);
        if (image_has(rootfd, rel, S_IFREG)) return 0; /* the image's own entry */
    }
    _cleanup_free_ char *rel = dbx_xasprintf("%s/%c/%s", TERMINFO_RUN_DIR + 1, term[0], term);
    return guest_own_file(rootfd, rel, data, len, notes, err);
}

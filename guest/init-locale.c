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
 * /usr/share/zoneinfo/NAME on the box's disk, as tzdata would have it, once: a file there is
 * never replaced (the image's, a later tzdata's, or ours of an earlier boot).  Not a directory
 * of ours named by TZDIR: Go reads its local zone from the fixed system directories only, not
 * TZDIR or ZONEINFO (measured: UTC in a Debian box with golang-go and TZDIR set), and musl
 * ignores TZDIR.  Java and Node.js carry their own zone data and need only the name.  dpkg
 * replaces the file without a word when tzdata is installed later.  The disk persists and root
 * in the box may have put a symlink on the way: guest_own_file follows none (a note, and the
 * zone stays unset for the C library). */
#define _GNU_SOURCE
#include "init-internal.h"

#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* The image has rel (relative to root) as a file of that type (S_IFREG, S_IFDIR): through
 * its symlinks but inside the root file system (tzdata links zones to each other). */
static bool image_has(const char *root, const char *rel, mode_t type) {
    _cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) return false;
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
    };
    _cleanup_close_ int fd = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

static bool image_has_zone(const char *root, const char *name) {
    _cleanup_free_ char *rel = dbx_xasprintf("usr/share/zoneinfo/%s", name);
    return image_has(root, rel, S_IFREG);
}

/* Locale: a C library that has no locale of that name falls back to POSIX, and Perl then warns
 * at every start ("Setting locale failed"), so LANG=C.UTF-8 is set only where it exists: glibc
 * keeps it in /usr/lib/locale/C.utf8 (Debian's and Ubuntu's libc-bin, Fedora's
 * glibc-minimal-langpack; glibc 2.35 added it upstream, not built in), and musl is UTF-8 under
 * any name.  Not the host's own LANG: an image seldom has the host's language (de_DE.UTF-8)
 * generated, and the same warning would follow; [env] or -e set another. */
const char *locale_default(const char *root) {
    static const char *const musl[] = {"lib/ld-musl-x86_64.so.1", "lib/ld-musl-aarch64.so.1"};
    if (image_has(root, "usr/lib/locale/C.utf8", S_IFDIR)) return "C.UTF-8";
    for (size_t i = 0; i < DBX_ARRAY_SIZE(musl); i++)
        if (image_has(root, musl[i], S_IFREG)) return "C.UTF-8";
    return NULL;
}

int tz_install(const char *root, const char *name, const uint8_t *data, uint32_t len, char ***notes,
               dbx_error **err) {
    if (dbx_tz_check(name, data, len, err) < 0) return dbx_error_wrap(err, "time zone");
    if (!*name || len == 0 || image_has_zone(root, name)) return 0;
    _cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) return dbx_error_set(err, errno, "time zone: open '%s'", root);
    _cleanup_free_ char *rel = dbx_xasprintf("usr/share/zoneinfo/%s", name);
    int r = guest_own_file(rootfd, rel, data, len, notes, err);
    return r < 0 ? dbx_error_wrap(err, "time zone") : r;
}

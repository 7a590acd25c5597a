/* guest/init-watch.c: CHANGED from the host (files edited on the host under the workspace)
 * made visible to inotify watchers in the box.
 *
 * virtiofs reports nothing the host does, so the guest kernel raises the events itself: for
 * each path the init sets the file's modification time, to now (UTIME_NOW) or to the time it
 * has (below), leaving the access time alone (UTIME_OMIT).  A setattr of the mtime alone is what
 * the kernel reports as IN_MODIFY (fsnotify_change), whatever the value, to watchers of the file
 * and, with its name, to watchers of its directory: the event editors' own writes give, which
 * every watcher (inotifywait -e modify, chokidar, watchdog, node's fs.watch) follows; IN_ATTRIB
 * (both times set) would be missed by those that ask only for modify/close_write and by Go's
 * fsnotify users, who drop CHMOD.
 *
 * Why now and not the mtime the file has: a value read first and written back later goes back
 * in time when a write lands in between (the next notice re-reads that older value, so make
 * would never rebuild).  A time-less mtime update reaches virtiofsd as FATTR_MTIME_NOW (fuse's
 * iattr_to_fattr: ATTR_MTIME without ATTR_MTIME_SET, and no writeback cache under cache=auto),
 * and virtiofsd passes UTIME_NOW to the host, so the host's clock stamps it: never earlier than
 * a host write that came before it.  The mtime moves forward to the time of the notice, which
 * causes an extra rebuild at worst.
 *
 * But a file whose mtime is more than WATCH_KEEP_NS from now, either way, keeps it: a time set
 * on purpose after the write (`touch -d`, `cp -p`, `tar x`, `rsync -a`, unzip, npm's 1985), by
 * the box, whose own writes come back as notices (mounts/mounts.h), or by the host.  Found in
 * use: every one of those in the box's workspace lost its time to the echo some 100 ms later.
 * Such a file gets the time it has (ns, which FUSE and virtiofsd pass on as they are), which
 * raises the same event.  The statx and the utimensat act on one O_PATH descriptor, so a file
 * renamed over the name in between (an atomic save) is not given the old one's time; a write
 * into the same file in the few ms between them (by the host, or by the box right after it
 * set the time: `tar x` and then a patch) does get its time set back, and keeps it until the
 * file is written again: that write's time is lost, as a missed rebuild, in that narrow case.
 *
 * The host's kernel reports the setattr as IN_MODIFY, which the host's watcher does not follow
 * (it follows close-write: mounts/mounts.h), so nothing comes back.  Content: the statx below
 * (AT_STATX_FORCE_SYNC, past the 1 s attribute cache of cache=auto) and the setattr's reply
 * refresh size and times (a changed size drops the cached pages), and with cache=auto each
 * open without FOPEN_KEEP_CACHE drops them too, so a watcher that re-opens the file reads the
 * new bytes; no extra open here (fsnotify reports nothing for an O_PATH open), which would add
 * IN_OPEN/IN_CLOSE_NOWRITE noise.  Limits of the method: a file the box cannot set times on
 * (owned on the host by another user) and anything that is not a regular file or directory (a
 * symlink is never followed) is reported through its directory instead.
 *
 * A path that no longer exists (deleted or renamed on the host) is reported through the nearest
 * directory above it that exists: IN_MODIFY|IN_ISDIR, so its watchers rescan.  n == 0 (the
 * host had too many) touches the workspace root.
 *
 * Paths are resolved below the workspace mount only: openat2 with RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV for the directory, AT_SYMLINK_NOFOLLOW for the last
 * component; the decoder already refused "..", absolute paths and NULs.  Rate: at most
 * WATCH_TOUCH_MAX touches a second; past that, one touch of the root for the rest of the second. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#define WATCH_TOUCH_MAX 4096u
/* a notice comes 50-300 ms after the host's event, seconds when the channel is backed up */
#define WATCH_KEEP_NS (2ll * 1000000000ll)

/* An mtime more than WATCH_KEEP_NS from now, either way: kept (see the top).  Seconds first,
 * so that no time a filesystem stores overflows the sum. */
static bool time_kept(const struct statx_timestamp *m, const struct timespec *now) {
    if (m->tv_sec < now->tv_sec - 3 || m->tv_sec > now->tv_sec + 3) return true;
    long long d = (long long)(m->tv_sec - now->tv_sec) * 1000000000ll +
                  ((long long)m->tv_nsec - (long long)now->tv_nsec);
    return d < -WATCH_KEEP_NS || d > WATCH_KEEP_NS;
}

static uint64_t window_ms, touches; /* PID 1 has no threads */
static bool root_touched;

/* 0 when rel ("" = the workspace root) was a regular file or directory and got its mtime set. */
static int touch(struct agent *a, int ws, const char *rel) {
    _cleanup_free_ char *dir = dbx_xstrdup(rel);
    char *slash = strrchr(dir, '/');
    const char *name = rel;
    _cleanup_close_ int dfd = -EBADF;
    if (rel[0] == '\0') {
        name = a->ws_path; /* our own mount point */
    } else {
        if (slash) {
            *slash = '\0';
            name = slash + 1;
        }
        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                          RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
        dfd = (int)syscall(SYS_openat2, ws, slash ? dir : ".", &how, sizeof(how));
        if (dfd < 0) return -errno;
    }
    /* one inode for the statx and the utimensat: the name may be renamed over meanwhile */
    _cleanup_close_ int fd = openat(rel[0] ? dfd : AT_FDCWD, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct statx stx;
    const int flags = AT_EMPTY_PATH | AT_STATX_FORCE_SYNC;
    if (statx(fd, "", flags, STATX_TYPE | STATX_NLINK | STATX_MTIME, &stx) < 0) return -errno;
    if (!S_ISREG(stx.stx_mode) && !S_ISDIR(stx.stx_mode)) return -EINVAL;
    if (S_ISREG(stx.stx_mode) && stx.stx_nlink == 0) return -ENOENT; /* a stale inode */
    /* the host's clock, never a time read earlier, unless the time was set on purpose: see
     * the top */
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_NOW}};
    struct timespec now;
    if ((stx.stx_mask & STATX_MTIME) && clock_gettime(CLOCK_REALTIME, &now) == 0 &&
        time_kept(&stx.stx_mtime, &now)) {
        ts[1].tv_sec = stx.stx_mtime.tv_sec;
        ts[1].tv_nsec = stx.stx_mtime.tv_nsec;
    }
    if (utimensat(fd, "", ts, AT_EMPTY_PATH) < 0) return -errno;
    return 0;
}

/* Touch path, or the nearest directory above it that can be touched. */
static void touch_or_parent(struct agent *a, int ws, const char *path) {
    _cleanup_free_ char *cur = dbx_xstrdup(path);
    for (;;) {
        if (touches >= WATCH_TOUCH_MAX && cur[0]) {
            cur[0] = '\0'; /* over the rate: the root, once this second */
            if (root_touched) return;
        }
        touches++;
        if (cur[0] == '\0') root_touched = true;
        if (touch(a, ws, cur) == 0 || cur[0] == '\0') return;
        char *slash = strrchr(cur, '/');
        if (slash)
            *slash = '\0';
        else
            cur[0] = '\0';
    }
}

void watch_on_changed(struct agent *a, const uint8_t *p, uint32_t n) {
    _cleanup_error_ dbx_error *err = NULL;
    uint32_t count = 0;
    char **paths = NULL;
    if (dbx_changed_decode(p, n, &count, &paths, &err) < 0) {
        init_log("%s", err->msg);
        return;
    }
    if (a->setup == SETUP_DONE && a->ws_path) {
        _cleanup_close_ int ws = open(a->ws_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        uint64_t now = dbx_now_ms();
        if (now - window_ms >= 1000) {
            window_ms = now;
            touches = 0;
            root_touched = false;
        }
        if (ws >= 0 && count == 0) touch_or_parent(a, ws, "");
        for (uint32_t i = 0; ws >= 0 && i < count; i++)
            touch_or_parent(a, ws, paths[i]);
    }
    dbx_strv_free(paths);
}

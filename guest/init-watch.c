/* guest/init-watch.c: CHANGED from the host (files edited on the host under the workspace)
 * made visible to inotify watchers in the box.
 *
 * virtiofs reports nothing the host does, so the guest kernel raises the events itself: for
 * each path the init re-reads the file's attributes from virtiofsd (statx with
 * AT_STATX_FORCE_SYNC, past the 1 s attribute cache of cache=auto) and sets its modification
 * time to the value it just read, leaving the access time alone (UTIME_OMIT).  A setattr of
 * the mtime alone is what the kernel reports as IN_MODIFY (fsnotify_change), to watchers of the
 * file and, with its name, to watchers of its directory: the event editors' own writes give,
 * which every watcher (inotifywait -e modify, chokidar, watchdog, node's fs.watch) follows;
 * IN_ATTRIB (both times set) would be missed by those that ask only for modify/close_write and
 * by Go's fsnotify users, who drop CHMOD.  On the host the mtime keeps its value and the ctime
 * moves; the host's kernel reports the setattr as IN_MODIFY, which the host's watcher does not
 * watch (it follows close-write: mounts/mounts.h), so nothing comes back.  Content: the forced
 * statx refreshes size and times (a changed size drops the cached pages), and with cache=auto each
 * open without FOPEN_KEEP_CACHE drops them too, so a watcher that re-opens the file reads the new
 * bytes; no extra open here, which would add IN_OPEN/IN_CLOSE_NOWRITE noise.  Limits of the method:
 * an edit that lands on the host between our statx and our setattr gets the mtime read just before
 * it (ms earlier); a file the box cannot set times on (owned on the host by another user) and
 * anything that is not a regular file or directory (a symlink is never followed) is reported
 * through its directory instead.
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

#define WATCH_TOUCH_MAX 4096u

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
    int at = rel[0] ? dfd : AT_FDCWD;
    struct statx stx;
    if (statx(at, name, AT_SYMLINK_NOFOLLOW | AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &stx) < 0)
        return -errno;
    if (!S_ISREG(stx.stx_mode) && !S_ISDIR(stx.stx_mode)) return -EINVAL;
    if (S_ISREG(stx.stx_mode) && stx.stx_nlink == 0) return -ENOENT; /* a stale inode */
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                             {.tv_sec = stx.stx_mtime.tv_sec, .tv_nsec = stx.stx_mtime.tv_nsec}};
    if (utimensat(at, name, ts, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
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

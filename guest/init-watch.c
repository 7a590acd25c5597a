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
 * fsnotify users, who drop CHMOD.  A watcher that asks only for close-write or attribute
 * changes hears no edit the host makes in place: entr (ATTRIB and CLOSE_WRITE) is told to follow
 * MODIFY too (ENTR_INOTIFY_WORKAROUND, init-env.c); `inotifywait -e close_write` is left
 * alone.  CLOSE_WRITE takes an open for writing, which reaches the host (tried: an extra
 * close-write for every host edit that the host's own watchers see, a few ms in which the file
 * cannot be run, ETXTBSY, and two boxes sharing a file echo it to each other forever); ATTRIB
 * as well would double the event every other watcher gets, and entr acts on ATTRIB only for a
 * changed mode or inode.
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
 * A watch on the file itself (tsc --watch, chokidar or node's fs.watch on a file) is on an
 * inode, and a file the host deleted or replaced with a new one (an editor's save by rename,
 * sed -i, git checkout) leaves that inode behind: the touch above reaches the new file, and
 * virtiofs never tells the box the old one is gone.  Found in use: a watch on a file heard edits
 * in place, then nothing once the host saved it by rename.  On a local disk the old inode's
 * watchers hear DELETE_SELF and IGNORED when its last name goes; the guest's kernel raises them
 * itself when a dentry of an inode whose link count is 0 dies (dentry_unlink_inode), but it
 * never learns the count.  So the init reads the box's inotify watches on the workspace (each
 * inotify descriptor's fdinfo: inode number and file handle; after a notice, at most once every
 * READ_EVERY_MS) and records the name each watched regular file has in the box.  When a notice
 * reports that name and it now leads to another inode or to none, the init opens the old inode
 * by its handle, asks the host for its link count (FUSE_GETATTR) and closes it: at 0, the
 * dentry that open made dies with the count known, and the watchers hear DELETE_SELF and
 * IGNORED.  A watch first read after its file was replaced has no name left in the box and is
 * asked at once.  A watcher that then watches the path again (chokidar, TypeScript) is on the
 * new file; one that does not (node 20's --watch) hears nothing more of it, as on a local disk.
 * A name the box looked up within the last second still leads to the old inode (cache=auto's
 * entry timeout): the touch finds the count at 0 there, and a handle's open of the inode makes
 * FUSE expire the name (fuse_get_dentry), so that dentry dies at the close and the name is
 * looked up afresh.  An inode the host only renamed (on a local disk: MOVE_SELF) is left alone.
 *
 * The box's own writes reach the host as virtiofsd's and come back as notices (mounts/mounts.h):
 * each edit made in the box reached its watchers twice, the second time 100-300 ms later (found
 * in use: `entr -r` restarted its server twice; a bundler rebuilds twice), and moved the file's
 * mtime to the notice's time.  So the init follows the box's writes where its watchers look:
 * each inode the box watches (read as below) is marked on a fanotify group of the init's own
 * (FAN_MODIFY, and for a directory its files'; the mark is the inode's, whichever mount a
 * command writes through), and for each write the init records the file's inode number, size
 * and mtime as the host has them when it reads the event (the kernel opens the file for it: a
 * FUSE open, a getattr, a release).  Not FAN_CLOSE_WRITE: that comes for any close of a file
 * opened for writing, written or not, and a record taken then would hold a host edit made just
 * before.  A notice that finds a regular file exactly as recorded touches nothing: the box's
 * watchers heard that write as it was made.  A host write after the box's changes the mtime
 * (or the inode, for a save by rename) and is touched as before.  FAN_MODIFY comes for write,
 * fallocate, copy_file_range and sendfile; not for a setattr (a truncation, our own touch),
 * which reaches a group without file handles with no path (6.1), nor for splice, AIO or mmap
 * writes, whose echoes still come.  File handles (FAN_REPORT_FID) would report entries too, but
 * 6.1 refuses them on FUSE, whose filesystem id is zero.  Only what is watched is followed:
 * measured under TCG, following every write in the workspace (a filesystem mark) doubled a `tar
 * x` of 3,000 files (6-10 s to 11-16 s); with marks on watched inodes alone a write elsewhere
 * costs nothing.  Events are read OWN_DELAY_MS after the first is queued, the kernel merging a
 * file's repeated writes meanwhile, for OWN_SLICE_MS at a time (each is two FUSE round trips),
 * and all of them, up to OWN_NOTICE_MS, before a notice's touches.  Limits: a watch not yet read
 * (the watches are read after a notice: a watcher that has just started) hears the first write's
 * echo; a host write landing between the box's write and the record (OWN_DELAY_MS at least,
 * more in a burst) is taken for the box's and not reported, and so is a same-size host write
 * within the host's timestamp tick after the box's (a few ms; a time of whole seconds, from a
 * filesystem that may keep no finer, is not recorded at all); a directory's own echo stays
 * (what the box deleted or renamed away reports its directory, a directory it made is touched);
 * OWN_BITS files are remembered, by inode number, and one pushed out by another comes back.
 *
 * Paths are resolved below the workspace mount only: openat2 with RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV for the directory, AT_SYMLINK_NOFOLLOW for the last
 * component; the decoder already refused "..", absolute paths and NULs.  Rate: at most
 * WATCH_TOUCH_MAX touches a second; past that, one touch of the root for the rest of the second. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
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

/* ---- the box's own writes (see the top) --------------------------------------------------- */

#define OWN_BITS 12u /* 4096 files remembered, by inode number (direct-mapped) */
#define OWN_BATCH 8u /* events a read, each with a descriptor the kernel opened for us */
/* Events are read this long after the first is queued: the kernel merges a file's events (of
 * one process) while they wait, so a file written again and again costs one record, not one a
 * write. */
#define OWN_DELAY_MS 20u
/* Time a reading may take (at least one read of OWN_BATCH, whose opens the kernel makes in the
 * read itself): each event is a FUSE open and getattr (and a release), so a burst in a watched
 * directory is read a slice at a time between the loop's other work; a notice's own reading may
 * take longer, its echoes being what is at stake. */
#define OWN_SLICE_MS 5u
#define OWN_NOTICE_MS 50u

struct own {
    uint64_t ino, size;
    int64_t sec;
    uint32_t nsec;
};

static struct own *own; /* 1 << OWN_BITS, ino 0 unused */
static int own_fd = -EBADF;
static uint64_t own_due_ms; /* when the queued events are read, or 0 */

static struct own *own_slot(uint64_t ino) {
    return &own[(ino * 0x9e3779b97f4a7c15ull) >> (64 - OWN_BITS)];
}

/* The file at fd was written by the box: what the host has now is the box's.  A time of whole
 * seconds may be a filesystem's that has no finer (a same-size host edit within the second would
 * look the same): not recorded. */
static void own_record(int fd) {
    const unsigned need = STATX_TYPE | STATX_INO | STATX_SIZE | STATX_MTIME;
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, need, &stx) < 0 ||
        (stx.stx_mask & need) != need || !S_ISREG(stx.stx_mode) || stx.stx_ino == 0 ||
        stx.stx_mtime.tv_nsec == 0)
        return;
    *own_slot(stx.stx_ino) = (struct own){.ino = stx.stx_ino,
                                          .size = stx.stx_size,
                                          .sec = stx.stx_mtime.tv_sec,
                                          .nsec = stx.stx_mtime.tv_nsec};
}

/* stx (the host's, just asked) is what the box's last write of that file left. */
static bool own_match(const struct statx *stx) {
    const unsigned need = STATX_INO | STATX_SIZE | STATX_MTIME;
    if (!own || (stx->stx_mask & need) != need || stx->stx_ino == 0) return false;
    const struct own *o = own_slot(stx->stx_ino);
    return o->ino == stx->stx_ino && o->size == stx->stx_size && o->sec == stx->stx_mtime.tv_sec &&
           o->nsec == stx->stx_mtime.tv_nsec;
}

void watch_setup(struct agent *a) {
    if (!a->ws_path || own_fd >= 0) return;
    /* O_NONBLOCK: an event's open does not wait for a lease's break (it fails, and the event
     * is dropped); a FIFO or device raises no event in this mode */
    own_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK,
                           O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_LARGEFILE);
    if (own_fd < 0) {
        init_log("setup: the box's own writes come back to its watchers: fanotify: %s",
                 strerror(errno));
        return;
    }
    own = dbx_xcalloc((size_t)1 << OWN_BITS, sizeof(*own));
}

int watch_own_fd(void) {
    return own_due_ms ? -1 : own_fd; /* not polled while a read waits for its time */
}

void watch_own_ready(struct agent *a) {
    own_due_ms = dbx_now_ms() + OWN_DELAY_MS;
}

/* The events queued, for up to ms: each written file recorded.  What is left makes the
 * descriptor ready again, and is read OWN_DELAY_MS later. */
static void own_read(uint64_t ms) {
    own_due_ms = 0;
    const uint64_t end = dbx_now_ms() + ms;
    const int self = getpid();
    do {
        union {
            struct fanotify_event_metadata m;
            uint8_t b[OWN_BATCH * sizeof(struct fanotify_event_metadata)];
        } u;
        ssize_t n = own_fd >= 0 ? read(own_fd, u.b, sizeof(u.b)) : 0;
        /* another error: an event whose descriptor could not be opened (the host refused the
         * open), dropped by the kernel; its echo comes, as without this */
        if (n < 0 && errno != EAGAIN) continue;
        if (n <= 0) return;
        for (struct fanotify_event_metadata *m = &u.m; FAN_EVENT_OK(m, n);
             m = FAN_EVENT_NEXT(m, n)) {
            if (m->fd < 0) continue; /* FAN_NOFD: the queue overflowed; those echoes come */
            /* never the init's own: what its touch left is the host's (a setattr raises no
             * event here today, see the top; this holds if that changes) */
            if (m->vers == FANOTIFY_METADATA_VERSION && (m->mask & FAN_MODIFY) && m->pid != self)
                own_record(m->fd);
            close(m->fd);
        }
    } while (dbx_now_ms() < end);
}

static bool root_touched;

static void expire_name(struct agent *a, int fd);

/* 0 when rel ("" = the workspace root) was a regular file or directory and got its mtime set.
 * *ino: the regular file or directory rel leads to, set even when its time could not be set. */
static int touch(struct agent *a, int ws, const char *rel, uint64_t *ino) {
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
    _cleanup_close_ int fd = -EBADF;
    struct statx stx;
    for (int tries = 0;; tries++) {
        fd = openat(rel[0] ? dfd : AT_FDCWD, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return -errno;
        const int flags = AT_EMPTY_PATH | AT_STATX_FORCE_SYNC;
        const unsigned mask = STATX_TYPE | STATX_NLINK | STATX_MTIME | STATX_INO | STATX_SIZE;
        if (statx(fd, "", flags, mask, &stx) < 0) return -errno;
        if (!S_ISREG(stx.stx_mode) && !S_ISDIR(stx.stx_mode)) return -EINVAL;
        if (!S_ISREG(stx.stx_mode) || stx.stx_nlink > 0) break;
        /* the box's name still leads to the inode the host deleted or replaced (looked up
         * within the entry timeout): the name dies with the count now known (its watchers
         * hear DELETE_SELF), and the next open looks it up afresh */
        if (tries > 0) return -ENOENT;
        expire_name(a, fd);
        close(fd);
        fd = -EBADF;
    }
    *ino = stx.stx_ino;
    if (S_ISREG(stx.stx_mode) && own_match(&stx)) return 0; /* the box's own write, come back */
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

/* Touch path, or the nearest directory above it that can be touched.  Returns the inode the
 * path leads to now, 0 when it leads to none (gone, or not a file), or INO_UNKNOWN when it was
 * not looked at (over the rate). */
#define INO_UNKNOWN UINT64_MAX
static uint64_t touch_or_parent(struct agent *a, int ws, const char *path) {
    _cleanup_free_ char *cur = dbx_xstrdup(path);
    uint64_t ret = INO_UNKNOWN;
    for (bool first = true;; first = false) {
        if (touches >= WATCH_TOUCH_MAX && cur[0]) {
            cur[0] = '\0'; /* over the rate: the root, once this second */
            if (root_touched) return ret;
        }
        touches++;
        if (cur[0] == '\0') root_touched = true;
        uint64_t ino = 0; /* set once the path was looked at, even when it cannot be touched */
        int r = touch(a, ws, cur, &ino);
        /* the path leads to no file: gone, through a symlink or another mount, or not a file
         * (EINVAL); any other failure says nothing of where it leads */
        bool none = r == -ENOENT || r == -ENOTDIR || r == -ELOOP || r == -EXDEV || r == -EINVAL;
        if (first && cur[0]) ret = ino ? ino : none ? 0 : INO_UNKNOWN;
        if (r == 0 || cur[0] == '\0') return ret;
        char *slash = strrchr(cur, '/');
        if (slash)
            *slash = '\0';
        else
            cur[0] = '\0';
    }
}

/* ---- watched inodes (see the top) --------------------------------------------------------- */

/* The watches are read at most every READ_EVERY_MS, after a notice: 1-1.5 ms under TCG with
 * a command running (the box cgroup's processes), 30-90 ms with 200 processes and 128 inotify
 * descriptors. */
#define READ_EVERY_MS 1000u
#define MARKS_MAX 16384u     /* watches on the workspace looked at; more are left alone */
#define LEARN_MAX 2048u      /* inodes learned per reading; the rest at the next */
#define NAMES_MAX (4u << 20) /* bytes of names kept, all watches together */
#define CHECK_ALL_MAX 2048u  /* watches looked up per tick when a notice lost track */
#define FH_MAX 16u           /* a FUSE handle is 12 bytes: node id and generation */

/* One watch: the same inode watched twice is two, and a watch added again (a new wd) is new,
 * so nothing learned of a gone inode carries over to a later one that has its number (the
 * host reuses inode numbers, and virtiofsd's node ids follow them). */
struct mark {
    int pid, fd, wd;
    uint64_t ino;
    int type;
    uint8_t len;
    uint8_t fh[FH_MAX];
    bool learned; /* its name known, or settled */
    bool settled; /* reported gone, or not a regular file: never looked at again */
    char *path;   /* its workspace-relative name in the box when learned, or NULL */
};

static size_t names_bytes; /* of every mark's path */

static struct mark *marks; /* sorted by mark_cmp */
static size_t nmarks;
static uint64_t read_ms; /* when the watches were last read */
static bool read_due;    /* a notice came since, or watches are left to learn */
static bool check_all;   /* a notice lost track: every named watch looked up (check_all_at on) */
static size_t check_all_at;

/* The inode a mark is on: its number and handle. */
static int inode_cmp(const struct mark *a, const struct mark *b) {
    if (a->ino != b->ino) return a->ino < b->ino ? -1 : 1;
    if (a->type != b->type) return a->type < b->type ? -1 : 1;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return memcmp(a->fh, b->fh, a->len);
}

static int mark_cmp(const void *pa, const void *pb) {
    const struct mark *a = pa, *b = pb;
    if (a->pid != b->pid) return a->pid < b->pid ? -1 : 1;
    if (a->fd != b->fd) return a->fd < b->fd ? -1 : 1;
    if (a->wd != b->wd) return a->wd < b->wd ? -1 : 1;
    if (a->ino != b->ino) return a->ino < b->ino ? -1 : 1;
    if (a->type != b->type) return a->type < b->type ? -1 : 1;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return memcmp(a->fh, b->fh, a->len);
}

/* open_by_handle_at's mount_fd: a descriptor of the workspace's filesystem that is not O_PATH
 * (fdget refuses those).  Opened once: an open of the root reports IN_OPEN to its watchers. */
static int handles = -EBADF;

static int handles_fd(struct agent *a) {
    if (handles < 0) handles = open(a->ws_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return handles;
}

void watch_shutdown(void) {
    /* held, it would keep the workspace's superblock after the lazy unmount: no FUSE_DESTROY
     * (and an event queued on own_fd holds the mount its file was written through) */
    if (handles >= 0) close(handles);
    handles = -EBADF;
    if (own_fd >= 0) close(own_fd);
    own_fd = -EBADF;
}

/* The workspace mount's path as the kernel names it (mount(2) resolved the symlinks in
 * ws_path, if any), which readlink gives for the files below it; NULL if unknown. */
static const char *ws_real(struct agent *a) {
    static char *path;
    if (!path && handles_fd(a) >= 0) {
        char proc[32], buf[PATH_MAX];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", handles_fd(a));
        ssize_t n = readlink(proc, buf, sizeof(buf) - 1);
        if (n > 0 && buf[0] == '/') path = dbx_xstrndup(buf, (size_t)n);
    }
    return path;
}

static int open_mark(struct agent *a, const struct mark *m) {
    union {
        struct file_handle h;
        uint8_t buf[sizeof(struct file_handle) + FH_MAX];
    } u = {.h = {.handle_bytes = m->len, .handle_type = m->type}};
    memcpy(u.h.f_handle, m->fh, m->len);
    return open_by_handle_at(handles_fd(a), &u.h, O_PATH | O_CLOEXEC);
}

/* The open inode fd is a regular file the host no longer has (link count 0, asked of the host).
 * The kernel keeps the count: the dentry fd holds reports DELETE_SELF when it dies. */
static bool gone_on_host(int fd) {
    struct statx stx;
    return statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, STATX_TYPE | STATX_NLINK, &stx) ==
               0 &&
           S_ISREG(stx.stx_mode) && stx.stx_nlink == 0;
}

/* fd's dentry expires (a handle's open of its inode makes FUSE expire the alias it returns:
 * fuse_get_dentry), so that it dies at its last close instead of waiting in the dcache: an
 * expired dentry is not kept (fuse_dentry_delete, which virtiofs's delete_stale turns on).  An
 * inode with two names in the box (a hard link) may have the other expired: this one then dies
 * when the dcache lets it go. */
static void expire_name(struct agent *a, int fd) {
    union {
        struct file_handle h;
        uint8_t buf[sizeof(struct file_handle) + FH_MAX];
    } u = {.h = {.handle_bytes = FH_MAX}};
    int mount_id;
    if (name_to_handle_at(fd, "", &u.h, &mount_id, AT_EMPTY_PATH) < 0) return;
    int hfd = open_by_handle_at(handles_fd(a), &u.h, O_PATH | O_CLOEXEC);
    if (hfd >= 0) close(hfd);
}

/* The workspace-relative name in buf (readlink of an inode's descriptor, n bytes, buf holding
 * cap) when it is one below the workspace mount ws; NULL for a dentry without a name ("/":
 * disconnected; " (deleted)"), or one cut short. */
static const char *name_below(char *buf, ssize_t n, size_t cap, const char *ws) {
    static const char deleted[] = " (deleted)";
    size_t wl = ws ? strlen(ws) : 0;
    if (!ws || n <= (ssize_t)wl + 1 || (size_t)n >= cap - 1) return NULL;
    buf[n] = '\0';
    if (memcmp(buf, ws, wl) != 0 || buf[wl] != '/') return NULL;
    if ((size_t)n >= wl + strlen(deleted) && strcmp(buf + n - strlen(deleted), deleted) == 0)
        return NULL;
    return buf + wl + 1;
}

/* An inode's first watch: a regular file with a name in the box gets it recorded.  One without
 * (its dentry died when the name was looked up after the host replaced it, or the host renamed
 * it) is asked for its link count: gone, reported at the close; there still, learned again at
 * the next reading.  The handle's open expires the name it finds (see expire_name): the next
 * lookup of it asks the host again, as after the entry timeout, one FUSE_LOOKUP per inode. */
static void mark_learn(struct agent *a, struct mark *m) {
    m->learned = m->settled = true;
    _cleanup_close_ int fd = open_mark(a, m);
    if (fd < 0) return;
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &stx) < 0 ||
        !S_ISREG(stx.stx_mode))
        return;
    char proc[32], buf[PATH_MAX];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    const char *name = name_below(buf, readlink(proc, buf, sizeof(buf)), sizeof(buf), ws_real(a));
    if (name && names_bytes + strlen(name) < NAMES_MAX) {
        m->path = dbx_xstrdup(name);
        names_bytes += strlen(name) + 1;
        m->settled = false;
        return;
    }
    if (!name && !gone_on_host(fd)) m->learned = m->settled = false; /* again next time */
}

/* A mark's name forgotten: learned again at the next reading (the host renamed the file). */
static void mark_forget(struct mark *m) {
    if (m->path) names_bytes -= strlen(m->path) + 1;
    free(m->path);
    m->path = NULL;
    m->learned = false;
}

/* Parse one fdinfo line "inotify wd:1 ino:a7225c sdev:12 mask:fce ignored_mask:0
 * fhandle-bytes:c fhandle-type:81 f_handle:000000000700000000000000" of a watch on sdev. */
static bool parse_mark(const char *line, unsigned long sdev, struct mark *m) {
    const char *p;
    char *end;
    if (strncmp(line, "inotify wd:", 11) != 0) return false;
    m->wd = (int)strtol(line + 11, &end, 16);
    if (!(p = strstr(line, " sdev:")) || strtoul(p + 6, &end, 16) != sdev || *end != ' ')
        return false;
    if (!(p = strstr(line, " ino:"))) return false;
    m->ino = strtoull(p + 5, &end, 16);
    if (!(p = strstr(line, " fhandle-bytes:"))) return false;
    unsigned long len = strtoul(p + 15, &end, 16);
    if (len == 0 || len > FH_MAX || !(p = strstr(line, " fhandle-type:"))) return false;
    long type = strtol(p + 14, &end, 16);
    if (type <= 0 || type > 0xff || !(p = strstr(line, " f_handle:"))) return false;
    p += 10;
    for (unsigned long i = 0; i < len; i++) {
        char hex[3] = {p[2 * i], p[2 * i] ? p[2 * i + 1] : '\0', '\0'};
        if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1])) return false;
        m->fh[i] = (uint8_t)strtoul(hex, NULL, 16);
    }
    m->len = (uint8_t)len;
    m->type = (int)type;
    return true;
}

#define PIDS_MAX 65536u  /* processes whose descriptors are looked at */
#define FDS_MAX 65536u   /* descriptors looked at, all processes together */
#define LINES_MAX 65536u /* fdinfo lines read, all descriptors together (any filesystem's) */

struct pids {
    pid_t *v;
    size_t n, cap;
};

static bool pid_add(pid_t pid, void *ud) {
    struct pids *p = ud;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->v = dbx_xrealloc(p->v, p->cap * sizeof(*p->v));
    }
    p->v[p->n++] = pid;
    return p->n >= PIDS_MAX;
}

/* The processes of the cgroup at dfd and of those below it. */
static void cgroup_pids(int dfd, unsigned depth, struct pids *p) {
    if (procs_listed_any(dfd, pid_add, p) || depth >= 8) return;
    int dup_fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0) close(dup_fd);
        return;
    }
    for (struct dirent *de; (de = readdir(d)) && p->n < PIDS_MAX;) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.') continue;
        _cleanup_close_ int sub =
            openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (sub >= 0) cgroup_pids(sub, depth + 1, p);
    }
    closedir(d);
}

/* The processes whose watches count: the box's (its cgroup's subtree, which neither init nor a
 * kernel thread is in: 36 processes in /proc with one command running, 2 ms to look through
 * under TCG), or without a box cgroup every one in /proc. */
static void watcher_pids(struct agent *a, struct pids *p) {
    if (a->box.cg_box_fd >= 0) {
        cgroup_pids(a->box.cg_box_fd, 0, p);
        return;
    }
    DIR *proc = opendir("/proc");
    if (!proc) return;
    for (struct dirent *de; (de = readdir(proc)) && p->n < PIDS_MAX;) {
        uint64_t pid;
        if (dbx_parse_u64(de->d_name, 2, INT32_MAX, &pid) == 0) pid_add((pid_t)pid, p);
    }
    closedir(proc);
}

/* Every inotify watch on the workspace's filesystem (sdev: its kernel-internal number) held by
 * a process of the box, appended to *out (at most MARKS_MAX). */
static void marks_list(struct agent *a, unsigned long sdev, struct mark **out, size_t *n) {
    _cleanup_free_ pid_t *pv = NULL;
    struct pids pids = {0};
    watcher_pids(a, &pids);
    pv = pids.v;
    size_t cap = 0;
    _cleanup_free_ char *line = NULL;
    size_t line_cap = 0;
    size_t looked = 0, lines = 0;
    for (size_t i = 0; i < pids.n && *n < MARKS_MAX && looked < FDS_MAX; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pids.v[i]);
        int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *fds = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!fds) {
            if (dfd >= 0) close(dfd);
            continue;
        }
        for (struct dirent *fe; (fe = readdir(fds)) && *n < MARKS_MAX && looked++ < FDS_MAX;) {
            static const char inotify[] = "anon_inode:inotify";
            char target[sizeof(inotify)];
            if (readlinkat(dfd, fe->d_name, target, sizeof(target)) != sizeof(inotify) - 1 ||
                memcmp(target, inotify, sizeof(inotify) - 1) != 0)
                continue;
            snprintf(path, sizeof(path), "/proc/%d/fdinfo/%.20s", (int)pids.v[i], fe->d_name);
            _cleanup_fclose_ FILE *f = fopen(path, "re");
            while (f && *n < MARKS_MAX && lines++ < LINES_MAX && getline(&line, &line_cap, f) > 0) {
                struct mark m = {.pid = (int)pids.v[i], .fd = atoi(fe->d_name)};
                if (!parse_mark(line, sdev, &m)) continue;
                if (*n == cap) {
                    cap = cap ? cap * 2 : 64;
                    *out = dbx_xrealloc(*out, cap * sizeof(**out));
                }
                (*out)[(*n)++] = m;
            }
        }
        closedir(fds);
    }
}

/* The inodes the box watches, each marked on own_fd as well (sorted by inode_cmp; path NULL):
 * a write there is recorded (own_record), one elsewhere costs nothing. */
#define OWN_MARKS_MAX 8192u
static struct mark *omarks;
static size_t nomarks;

/* 0, or -errno.  fanotify_mark needs a descriptor fdget accepts, which an O_PATH one is not:
 * its /proc name.  Not evictable (FAN_MARK_EVICTABLE): a FUSE inode nobody holds is evicted at
 * once and its node id freed, which virtiofsd gives to the next file looked up, so a mark gone
 * with its inode would leave an entry here that names another inode; a plain mark pins its inode
 * until the next reading removes it.  A removal first checks that the handle still leads to
 * m's inode number (an inode whose mark died with it, a file the host deleted, frees its node
 * id too). */
static int own_mark_change(struct agent *a, const struct mark *m, unsigned flags) {
    _cleanup_close_ int fd = open_mark(a, m);
    if (fd < 0) return -errno;
    struct statx stx;
    if ((flags & FAN_MARK_REMOVE) &&
        (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_INO, &stx) < 0 ||
         stx.stx_ino != m->ino))
        return -ESTALE;
    char proc[32];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    return fanotify_mark(own_fd, flags, FAN_MODIFY | FAN_EVENT_ON_CHILD, AT_FDCWD, proc) == 0
               ? 0
               : -errno;
}

/* by: every watch, sorted by inode_cmp.  Marks what is newly watched, unmarks what no longer is. */
static void own_marks_sync(struct agent *a, struct mark *const *by, size_t n) {
    if (own_fd < 0) return;
    struct mark *keep = dbx_xcalloc(n ? n : 1, sizeof(*keep));
    size_t nk = 0, j = 0;
    for (size_t g = 0, e; g < n; g = e) {
        for (e = g + 1; e < n && inode_cmp(by[e], by[g]) == 0; e++)
            ;
        for (; j < nomarks && inode_cmp(&omarks[j], by[g]) < 0; j++) /* failed: gone, or left */
            own_mark_change(a, &omarks[j], FAN_MARK_REMOVE);
        if (j < nomarks && inode_cmp(&omarks[j], by[g]) == 0) {
            keep[nk++] = omarks[j++];
        } else if (nk < OWN_MARKS_MAX && own_mark_change(a, by[g], FAN_MARK_ADD) == 0) {
            keep[nk] = *by[g];
            keep[nk++].path = NULL;
        }
    }
    for (; j < nomarks; j++)
        own_mark_change(a, &omarks[j], FAN_MARK_REMOVE);
    free(omarks);
    omarks = keep;
    nomarks = nk;
}

static int inode_cmp_p(const void *pa, const void *pb) {
    return inode_cmp(*(const struct mark *const *)pa, *(const struct mark *const *)pb);
}

/* Read the watches anew: what was learned of each carries over, gone ones are forgotten, and
 * the watches of one inode share what is known of it: learned once (at most LEARN_MAX inodes
 * a reading; the rest at the next), since a learning expires the name the next would find. */
static void marks_read(struct agent *a, uint64_t now) {
    read_ms = now;
    read_due = false;
    struct stat st;
    if (fstat(handles_fd(a), &st) < 0) return;
    unsigned long sdev = (unsigned long)major(st.st_dev) << 20 | minor(st.st_dev);
    struct mark *cur = NULL;
    size_t ncur = 0;
    marks_list(a, sdev, &cur, &ncur);
    if (ncur) qsort(cur, ncur, sizeof(*cur), mark_cmp);
    size_t j = 0, n = 0;
    for (size_t i = 0; i < ncur; i++) {
        if (n && mark_cmp(&cur[n - 1], &cur[i]) == 0) continue; /* a line read twice */
        cur[n] = cur[i];
        while (j < nmarks && mark_cmp(&marks[j], &cur[n]) < 0)
            j++;
        if (j < nmarks && mark_cmp(&marks[j], &cur[n]) == 0) {
            cur[n].learned = marks[j].learned;
            cur[n].settled = marks[j].settled;
            cur[n].path = marks[j].path;
            marks[j].path = NULL;
        }
        n++;
    }
    for (size_t i = 0; i < nmarks; i++)
        if (marks[i].path) mark_forget(&marks[i]);
    free(marks);
    marks = cur;
    nmarks = n;
    check_all_at = 0;

    _cleanup_free_ struct mark **by = dbx_xcalloc(n ? n : 1, sizeof(*by));
    for (size_t i = 0; i < n; i++)
        by[i] = &marks[i];
    if (n) qsort(by, n, sizeof(*by), inode_cmp_p);
    size_t learnt = 0;
    for (size_t g = 0, e; g < n; g = e) {
        struct mark *known = NULL, *todo = NULL;
        for (e = g; e < n && inode_cmp(by[e], by[g]) == 0; e++) {
            if (by[e]->learned && (!known || by[e]->path)) known = by[e];
            if (!by[e]->learned && !todo) todo = by[e];
        }
        if (!todo) continue;
        if (!known) {
            if (learnt == LEARN_MAX) {
                read_due = true;
                continue;
            }
            learnt++;
            mark_learn(a, todo);
            if (!todo->learned) continue;
            known = todo;
        }
        for (size_t k = g; k < e; k++) {
            if (by[k]->learned) continue;
            by[k]->learned = true;
            by[k]->settled = known->settled;
            if (known->path && names_bytes + strlen(known->path) < NAMES_MAX) {
                by[k]->path = dbx_xstrdup(known->path);
                names_bytes += strlen(known->path) + 1;
            } else if (known->path) {
                by[k]->settled = true; /* over the names' budget: left alone */
            }
        }
    }
    own_marks_sync(a, by, n);
}

/* The touched paths of one notice and the inode each leads to now (open addressing). */
struct touched {
    const char *path;
    uint64_t ino;
};

static uint32_t path_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static const struct touched *touched_find(const struct touched *t, size_t size, const char *p) {
    for (size_t i = path_hash(p) & (size - 1); t[i].path; i = (i + 1) & (size - 1))
        if (strcmp(t[i].path, p) == 0) return &t[i];
    return NULL;
}

/* p (not copied) added with ino, unless there; size a power of two above the count. */
static void touched_add(struct touched *t, size_t size, const char *p, uint64_t ino) {
    if (touched_find(t, size, p)) return;
    size_t i = path_hash(p) & (size - 1);
    while (t[i].path)
        i = (i + 1) & (size - 1);
    t[i] = (struct touched){p, ino};
}

/* The inode rel leads to now (resolved as touch() does), or 0. */
static uint64_t ino_of(int ws, const char *rel) {
    struct open_how how = {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
    _cleanup_close_ int fd = (int)syscall(SYS_openat2, ws, rel, &how, sizeof(how));
    struct statx stx; /* an inode's number never changes: the cached attributes do */
    return fd >= 0 && statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_INO, &stx) == 0
               ? stx.stx_ino
               : 0;
}

/* m's name leads to inode now (0: none): if that is not m's inode, the host is asked whether
 * it still has m's; gone, DELETE_SELF at the close; there, renamed on the host: its name is
 * learned again. */
static void mark_check(struct agent *a, struct mark *m, uint64_t now) {
    if (now == INO_UNKNOWN || now == m->ino) return;
    _cleanup_close_ int fd = open_mark(a, m);
    if (fd >= 0 && gone_on_host(fd))
        m->settled = true;
    else
        mark_forget(m);
}

/* After a notice's touches: each named watch whose name the notice reports. */
static void marks_check(struct agent *a, const struct touched *t, size_t tsize) {
    for (size_t i = 0; i < nmarks; i++) {
        struct mark *m = &marks[i];
        const struct touched *tp = m->settled || !m->path ? NULL : touched_find(t, tsize, m->path);
        if (tp) mark_check(a, m, tp->ino);
    }
}

/* A notice that lost track (over the rate, or the host's n == 0): every named watch's name
 * looked up, CHECK_ALL_MAX a tick (one lookup each, most from the dcache). */
static void marks_check_all(struct agent *a) {
    _cleanup_close_ int ws = open(a->ws_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (unsigned k = 0; ws >= 0 && check_all_at < nmarks && k < CHECK_ALL_MAX; check_all_at++) {
        struct mark *m = &marks[check_all_at];
        if (m->settled || !m->path) continue;
        k++;
        mark_check(a, m, ino_of(ws, m->path));
    }
    check_all = ws >= 0 && check_all_at < nmarks;
}

int watch_timeout(struct agent *a, uint64_t now) {
    int own_ms = !own_due_ms ? -1 : now >= own_due_ms ? 0 : (int)(own_due_ms - now);
    if (check_all) return 0;
    if (!read_due) return own_ms;
    int ms = now >= read_ms + READ_EVERY_MS ? 0 : (int)(read_ms + READ_EVERY_MS - now);
    return own_ms >= 0 && own_ms < ms ? own_ms : ms;
}

void watch_tick(struct agent *a, uint64_t now) {
    if (own_due_ms && now >= own_due_ms) own_read(OWN_SLICE_MS);
    if (!a->ws_path) return;
    if (read_due && now >= read_ms + READ_EVERY_MS) marks_read(a, now);
    if (check_all) marks_check_all(a);
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
        own_read(OWN_NOTICE_MS); /* the box's writes before this notice, whose events may wait */
        _cleanup_close_ int ws = open(a->ws_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        uint64_t now = dbx_now_ms();
        if (now - window_ms >= 1000) {
            window_ms = now;
            touches = 0;
            root_touched = false;
        }
        size_t tsize = 16;
        while (tsize < 2 * (size_t)count)
            tsize *= 2;
        _cleanup_free_ struct touched *t = dbx_xcalloc(tsize, sizeof(*t));
        bool lost = count == 0;
        if (ws >= 0 && count == 0) touch_or_parent(a, ws, "");
        for (uint32_t i = 0; ws >= 0 && i < count; i++) {
            uint64_t ino = touch_or_parent(a, ws, paths[i]);
            lost = lost || (ino == INO_UNKNOWN && touches >= WATCH_TOUCH_MAX);
            touched_add(t, tsize, paths[i], ino);
        }
        marks_check(a, t, tsize);
        if (lost) { /* from the start (again), at the next tick */
            check_all = true;
            check_all_at = 0;
        }
        /* the watches made since the last reading: learned now, or after READ_EVERY_MS (one
         * whose file this notice replaced is learned without a name, and asked then) */
        read_due = true;
        watch_tick(a, now);
    }
    dbx_strv_free(paths);
}

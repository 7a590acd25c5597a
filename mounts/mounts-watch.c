/* mounts/mounts-watch.c: recursive inotify over the workspace, coalesced into CHANGED notices
 * for the guest's file watchers.  See mounts.h for what is watched and why.  Library code: no
 * printing; the one warning is handed to the caller. */
#define _GNU_SOURCE
#include "mounts.h"

#include "../common/protocol.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR |           \
     IN_EXCL_UNLINK)
#define SKIP_DIR ".git/objects" /* see mounts.h */
#define READ_ROUNDS 64u         /* reads per mounts_watch_read: the loop has other work too */

struct wdir {
    int wd;     /* 0: free slot */
    char *path; /* workspace-relative; "" is the root */
};

/* Directories still to watch, breadth first: v[head..n) */
struct dirq {
    char **v;
    size_t head, n, cap;
};

struct mounts_watch {
    int fd;      /* inotify */
    int root_fd; /* O_PATH of the root: every directory is opened beneath it */
    uint32_t max;
    /* wd -> directory: open addressing, linear probing, size a power of two */
    struct wdir *tab;
    size_t tab_size, count;
    /* distinct pending paths (hashes beside them for a cheap duplicate test) */
    char *pending[MOUNTS_WATCH_PENDING_MAX];
    uint32_t hash[MOUNTS_WATCH_PENDING_MAX];
    size_t npending;
    bool rescan;   /* too many, or the kernel's queue overflowed: one n = 0 notice instead */
    bool draining; /* a notice started going out: the rest follows without waiting */
    uint64_t first_ms, last_ms, sent_ms;
    bool warned;
    char *warning;
    /* a directory's MOVED_FROM waiting for its MOVED_TO (same cookie, next in the queue): a
     * move inside the tree keeps its watches (re-added under the new name, same wds), a move
     * out of it drops them */
    char *move_from;
    uint32_t move_cookie;
    struct dirq first; /* the first walk, a slice at a time (mounts_watch_walk) */
};

/* ---- wd table ----------------------------------------------------------------------------- */

static size_t slot_of(const struct mounts_watch *w, int wd) {
    size_t i = ((uint32_t)wd * 2654435761u) & (w->tab_size - 1);
    while (w->tab[i].wd != 0 && w->tab[i].wd != wd)
        i = (i + 1) & (w->tab_size - 1);
    return i;
}

static void tab_put(struct mounts_watch *w, int wd, char *path);

static void tab_grow(struct mounts_watch *w) {
    struct wdir *old = w->tab;
    size_t old_size = w->tab_size;
    w->tab_size = old_size ? old_size * 2 : 256;
    w->tab = dbx_xcalloc(w->tab_size, sizeof(*w->tab));
    w->count = 0;
    for (size_t i = 0; i < old_size; i++)
        if (old[i].wd != 0) tab_put(w, old[i].wd, old[i].path);
    free(old);
}

/* Takes path. */
static void tab_put(struct mounts_watch *w, int wd, char *path) {
    if ((w->count + 1) * 2 > w->tab_size) tab_grow(w);
    size_t i = slot_of(w, wd);
    if (w->tab[i].wd == wd) {
        free(w->tab[i].path); /* the same directory again (moved back): its new name wins */
    } else {
        w->count++;
    }
    w->tab[i] = (struct wdir){wd, path};
}

static const char *tab_get(const struct mounts_watch *w, int wd) {
    if (w->tab_size == 0 || wd <= 0) return NULL;
    size_t i = slot_of(w, wd);
    return w->tab[i].wd == wd ? w->tab[i].path : NULL;
}

/* Remove with backward shift, so probing needs no tombstones. */
static void tab_del(struct mounts_watch *w, int wd) {
    if (w->tab_size == 0) return;
    size_t mask = w->tab_size - 1, i = slot_of(w, wd);
    if (w->tab[i].wd != wd) return;
    free(w->tab[i].path);
    w->tab[i] = (struct wdir){0};
    w->count--;
    for (size_t j = (i + 1) & mask; w->tab[j].wd != 0; j = (j + 1) & mask) {
        size_t home = ((uint32_t)w->tab[j].wd * 2654435761u) & mask;
        /* j's entry may move to the hole at i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        w->tab[i] = w->tab[j];
        w->tab[j] = (struct wdir){0};
        i = j;
    }
}

/* ---- pending paths ------------------------------------------------------------------------ */

static uint32_t str_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static void pending_clear(struct mounts_watch *w) {
    for (size_t i = 0; i < w->npending; i++)
        free(w->pending[i]);
    w->npending = 0;
}

static void mark(struct mounts_watch *w, uint64_t now_ms) {
    if (w->npending == 0 && !w->rescan) w->first_ms = now_ms;
    w->last_ms = now_ms;
}

/* Takes path. */
static void pending_add(struct mounts_watch *w, char *path, uint64_t now_ms) {
    mark(w, now_ms);
    if (w->rescan || !dbx_changed_path_ok(path)) {
        w->rescan = true; /* a name the wire cannot carry: let the guest look for itself */
        free(path);
        return;
    }
    uint32_t h = str_hash(path);
    for (size_t i = 0; i < w->npending; i++)
        if (w->hash[i] == h && strcmp(w->pending[i], path) == 0) {
            free(path);
            return;
        }
    if (w->npending == MOUNTS_WATCH_PENDING_MAX) {
        w->rescan = true;
        pending_clear(w);
        free(path);
        return;
    }
    w->hash[w->npending] = h;
    w->pending[w->npending++] = path;
}

/* ---- adding directories ------------------------------------------------------------------- */

static char *join(const char *dir, const char *name) {
    return dir[0] ? dbx_xasprintf("%s/%s", dir, name) : dbx_xstrdup(name);
}

static void cap_reached(struct mounts_watch *w) {
    if (w->warned) return;
    w->warned = true;
    w->warning = dbx_xasprintf("file watching: only %zu directories of the workspace are watched "
                               "(cap %u; raise fs.inotify.max_user_watches for more): edits "
                               "below the others do not wake watchers in the box",
                               w->count, w->max);
}

static int open_beneath(int root_fd, const char *rel) {
    struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
    return (int)syscall(SYS_openat2, root_fd, rel[0] ? rel : ".", &how, sizeof(how));
}

/* Watch one directory (opened beneath the root, so a symlink anywhere on the way fails the
 * open) and return its fd for listing, or -1 (gone, not a directory, refused, cap). */
static int watch_one(struct mounts_watch *w, const char *rel) {
    if (w->count >= w->max) {
        cap_reached(w);
        return -1;
    }
    int fd = open_beneath(w->root_fd, rel);
    if (fd < 0) return -1;
    /* the magic link names exactly the directory opened, whatever happens to its path */
    char proc[40];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    int wd = inotify_add_watch(w->fd, proc, WATCH_MASK);
    if (wd < 0) {
        if (errno == ENOSPC) cap_reached(w);
        close(fd);
        return -1;
    }
    tab_put(w, wd, dbx_xstrdup(rel));
    return fd;
}

static void dirq_push(struct dirq *q, char *dir) {
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 64;
        q->v = dbx_xrealloc(q->v, q->cap * sizeof(char *));
    }
    q->v[q->n++] = dir;
}

static void dirq_free(struct dirq *q) {
    for (size_t i = q->head; i < q->n; i++)
        free(q->v[i]);
    free(q->v);
    *q = (struct dirq){0};
}

/* Watch the directory at q's head and queue the directories in it (two descriptors at a time;
 * the queue is bounded like the watches). */
static void visit(struct mounts_watch *w, struct dirq *q) {
    _cleanup_free_ char *dir = q->v[q->head];
    q->v[q->head++] = NULL;
    if (strcmp(dir, SKIP_DIR) == 0) return;
    int fd = watch_one(w, dir);
    if (fd < 0) return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        bool is_dir = e->d_type == DT_DIR;
        struct stat st;
        if (e->d_type == DT_UNKNOWN)
            is_dir =
                fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        if (!is_dir || q->n - q->head >= w->max) continue;
        dirq_push(q, join(dir, e->d_name));
    }
    closedir(d);
}

/* Watch rel and every directory below it, at once: a directory made or moved in while the box
 * runs, whose events must name it from now on. */
static void add_tree(struct mounts_watch *w, const char *rel) {
    struct dirq q = {0};
    dirq_push(&q, dbx_xstrdup(rel));
    while (q.head < q.n)
        visit(w, &q);
    dirq_free(&q);
}

/* Forget the watches of dir and everything below it (it moved away: the paths are stale). */
static void drop_tree(struct mounts_watch *w, const char *dir) {
    size_t len = strlen(dir), nwd = 0;
    _cleanup_free_ int *wds = dbx_xcalloc(w->count + 1, sizeof(int));
    for (size_t i = 0; i < w->tab_size; i++) {
        const char *p = w->tab[i].path;
        if (w->tab[i].wd != 0 && strncmp(p, dir, len) == 0 && (p[len] == '\0' || p[len] == '/'))
            wds[nwd++] = w->tab[i].wd;
    }
    for (size_t i = 0; i < nwd; i++) {
        inotify_rm_watch(w->fd, wds[i]);
        tab_del(w, wds[i]);
    }
}

/* ---- public ------------------------------------------------------------------------------- */

static uint32_t default_max(void) {
    _cleanup_free_ char *s = NULL;
    uint64_t v = 0;
    if (dbx_read_file_at(AT_FDCWD, "/proc/sys/fs/inotify/max_user_watches", 64, &s, NULL, NULL) < 0)
        return MOUNTS_WATCH_MAX / 8; /* unknown: a modest share */
    s[strcspn(s, "\n")] = '\0';
    if (dbx_parse_u64(s, 0, UINT32_MAX, &v) < 0) return MOUNTS_WATCH_MAX / 8;
    v /= 2;
    return v < MOUNTS_WATCH_MAX ? (uint32_t)(v ? v : 1) : MOUNTS_WATCH_MAX;
}

int mounts_watch_new(const char *root, uint32_t max_watches, struct mounts_watch **ret,
                     dbx_error **err) {
    struct mounts_watch *w = dbx_xcalloc(1, sizeof(*w));
    w->root_fd = -1;
    w->max = max_watches ? max_watches : default_max();
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        int e = errno;
        mounts_watch_free(w);
        return dbx_error_set(err, e, "inotify_init1 (fs.inotify.max_user_instances?)");
    }
    w->root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (w->root_fd < 0) {
        int e = errno;
        mounts_watch_free(w);
        return dbx_error_set(err, e, "open '%s'", root);
    }
    /* the root now (a root that cannot be watched is the error); the rest by
     * mounts_watch_walk */
    dirq_push(&w->first, dbx_xstrdup(""));
    visit(w, &w->first);
    if (w->count == 0) {
        mounts_watch_free(w);
        return dbx_error_set(err, EACCES, "watch '%s'", root);
    }
    *ret = w;
    return 0;
}

struct mounts_watch *mounts_watch_free(struct mounts_watch *w) {
    if (!w) return NULL;
    if (w->fd >= 0) close(w->fd);
    if (w->root_fd >= 0) close(w->root_fd);
    for (size_t i = 0; i < w->tab_size; i++)
        free(w->tab[i].path);
    free(w->tab);
    pending_clear(w);
    free(w->warning);
    free(w->move_from);
    dirq_free(&w->first);
    free(w);
    return NULL;
}

bool mounts_watch_walk(struct mounts_watch *w, unsigned max_dirs, unsigned max_ms) {
    uint64_t end = dbx_now_ms() + max_ms;
    /* one directory at least, however small the slice; the clock after each, for one
     * directory can hold thousands of entries (node_modules itself) */
    for (unsigned i = 0; w->first.head < w->first.n && w->count < w->max; i++) {
        visit(w, &w->first);
        if (i + 1 >= max_dirs || dbx_now_ms() >= end) break;
    }
    if (w->first.head < w->first.n && w->count < w->max) return true;
    if (w->first.head < w->first.n) cap_reached(w); /* the rest goes unwatched */
    dirq_free(&w->first);
    return false;
}

bool mounts_watch_walking(const struct mounts_watch *w) {
    return w->first.head < w->first.n;
}

int mounts_watch_fd(const struct mounts_watch *w) {
    return w->fd;
}

size_t mounts_watch_count(const struct mounts_watch *w) {
    return w->count;
}

char *mounts_watch_take_warning(struct mounts_watch *w) {
    return TAKE_PTR(w->warning);
}

/* A directory moved out of the tree: forget its watches. */
static void move_done(struct mounts_watch *w) {
    if (!w->move_from) return;
    _cleanup_free_ char *from = TAKE_PTR(w->move_from);
    drop_tree(w, from);
}

static void on_event(struct mounts_watch *w, const struct inotify_event *ev, uint64_t now_ms) {
    if (w->move_from && !((ev->mask & IN_MOVED_TO) && ev->cookie == w->move_cookie)) move_done(w);
    free(TAKE_PTR(w->move_from)); /* (its MOVED_TO: the add below renames the watches) */
    if (ev->mask & IN_Q_OVERFLOW) {
        mark(w, now_ms);
        w->rescan = true;
        pending_clear(w);
        return;
    }
    if (ev->mask & IN_IGNORED) return tab_del(w, ev->wd);
    const char *dir = tab_get(w, ev->wd);
    if (!dir || ev->len == 0 || ev->name[0] == '\0') return;
    char *path = join(dir, ev->name);
    if (ev->mask & IN_ISDIR) {
        if (ev->mask & IN_MOVED_FROM) {
            w->move_from = dbx_xstrdup(path);
            w->move_cookie = ev->cookie;
        }
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) add_tree(w, path); /* (dir is stale now) */
    }
    pending_add(w, path, now_ms);
}

void mounts_watch_read(struct mounts_watch *w, uint64_t now_ms) {
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (unsigned round = 0; round < READ_ROUNDS; round++) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0) {
            move_done(w); /* no MOVED_TO followed */
            return;
        }
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
            on_event(w, ev, now_ms);
            off += (ssize_t)sizeof(*ev) + ev->len;
        }
    }
}

int mounts_watch_timeout(const struct mounts_watch *w, uint64_t now_ms) {
    if (w->npending == 0 && !w->rescan) return -1;
    if (w->draining) return 0;
    uint64_t due = w->last_ms + MOUNTS_WATCH_QUIET_MS;
    if (w->first_ms + MOUNTS_WATCH_DELAY_MS < due) due = w->first_ms + MOUNTS_WATCH_DELAY_MS;
    if (w->sent_ms && w->sent_ms + MOUNTS_WATCH_INTERVAL_MS > due)
        due = w->sent_ms + MOUNTS_WATCH_INTERVAL_MS;
    return due <= now_ms ? 0 : (int)(due - now_ms);
}

bool mounts_watch_take_now(struct mounts_watch *w, uint64_t now_ms, struct dbx_buf *out) {
    if (w->npending == 0 && !w->rescan) return false;
    w->draining = true; /* due now: mounts_watch_timeout says 0 */
    return mounts_watch_take(w, now_ms, out);
}

bool mounts_watch_take(struct mounts_watch *w, uint64_t now_ms, struct dbx_buf *out) {
    if (mounts_watch_timeout(w, now_ms) != 0) {
        w->draining = false;
        return false;
    }
    w->draining = true;
    w->sent_ms = now_ms;
    if (w->rescan) {
        w->rescan = false;
        pending_clear(w);
        dbx_changed_encode(out, 0, NULL);
        return true;
    }
    /* the oldest first, as many as one frame holds */
    size_t k = 0, bytes = 4;
    while (k < w->npending && k < DBX_CHANGED_MAX_PATHS) {
        size_t len = 4 + strlen(w->pending[k]);
        if (bytes + len > DBX_FRAME_MAX) break;
        bytes += len;
        k++;
    }
    dbx_changed_encode(out, (uint32_t)k, (const char *const *)w->pending);
    for (size_t i = 0; i < k; i++)
        free(w->pending[i]);
    memmove(w->pending, w->pending + k, (w->npending - k) * sizeof(char *));
    memmove(w->hash, w->hash + k, (w->npending - k) * sizeof(uint32_t));
    w->npending -= k;
    return true;
}

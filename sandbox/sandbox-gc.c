/* sandbox/sandbox-gc.c: `devbox gc`: removing what no one can use any more.  Only devbox's own
 * dirs are touched, by fixed names below them (project ids, the derived disk dir), with an
 * fd-relative walk that never follows a symlink.  Each project is taken under its starters'
 * lock without waiting and only while no supervisor holds its alive lock: a box that runs or
 * starts is left as it is, and a start that comes later waits for gc, then makes a new box. */
#define _GNU_SOURCE
#include "sandbox-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RM_DEPTH_MAX 64
#define GC_STALE_S 3600 /* a temp file or record-less dir this old has no writer left */
#define GC_MAX_ENTRIES 100000u

static int rm_walk(int dfd, const char *name, bool dry_run, unsigned depth, uint64_t *freed) {
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno == ENOENT ? 0 : -errno;
    if (S_ISDIR(st.st_mode)) {
        if (depth >= RM_DEPTH_MAX) return -ELOOP;
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return errno == ENOENT ? 0 : -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
            int e = errno;
            close(fd);
            return -e;
        }
        int r = 0;
        for (struct dirent *de; (de = readdir(d));) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            int q = rm_walk(dirfd(d), de->d_name, dry_run, depth + 1, freed);
            if (q < 0 && r == 0) r = q;
        }
        closedir(d);
        if (r < 0) return r;
        if (!dry_run && unlinkat(dfd, name, AT_REMOVEDIR) < 0) return errno == ENOENT ? 0 : -errno;
    } else if (!dry_run && unlinkat(dfd, name, 0) < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    if (S_ISDIR(st.st_mode) || st.st_nlink <= 1) *freed += (uint64_t)st.st_blocks * 512;
    return 0;
}

int dbx_rm_tree_at(int dirfd, const char *name, bool dry_run, uint64_t *freed, dbx_error **err) {
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return dbx_error_set(err, EINVAL, "refusing to remove '%s'", name);
    uint64_t n = 0;
    int r = rm_walk(dirfd, name, dry_run, 0, &n);
    *freed += n;
    if (r < 0) return dbx_error_set(err, -r, "remove '%s'", name);
    return 0;
}

void dbx_gc_report_clear(struct dbx_gc_report *r) {
    if (!r) return;
    dbx_strv_free(r->projects);
    dbx_strv_free(r->derived);
    dbx_strv_free(r->kept);
    dbx_strv_free(r->running);
    dbx_strv_free(r->running_ids);
    *r = (struct dbx_gc_report){0};
}

/* A temp file a crashed writer left: "NAME.tmp.PID" (dbx_write_file_atomic's ".NAME.tmp.PID",
 * a project overlay's "disk.qcow2.tmp.PID"), a regular file not written for an hour. */
static bool stale_tmp(int dfd, const char *name, time_t now) {
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name) return false;
    t += 5;
    if (!*t || strspn(t, "0123456789") != strlen(t)) return false;
    struct stat st;
    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           st.st_mtime + GC_STALE_S < now;
}

/* Stale temp files directly in dir/sub (sub NULL: dir itself). */
static void gc_tmp(const char *dir, const char *sub, bool dry_run, struct dbx_gc_report *r) {
    _cleanup_close_ int base = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (base < 0) return;
    int fd = sub ? openat(base, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : dup(base);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    time_t now = time(NULL);
    unsigned seen = 0;
    for (struct dirent *de; (de = readdir(d)) && seen < GC_MAX_ENTRIES; seen++) {
        if (!stale_tmp(dirfd(d), de->d_name, now)) continue;
        uint64_t n = 0;
        if (dbx_rm_tree_at(dirfd(d), de->d_name, dry_run, &n, NULL) < 0) continue;
        r->freed += n;
        r->leftovers++;
    }
    closedir(d);
}

/* The age of dir/name in seconds (0 when it cannot be told: then it is young). */
static time_t age_of(const char *dir, const char *name) {
    _cleanup_free_ char *p = dbx_xasprintf("%s/%s", dir, name);
    struct stat st;
    if (lstat(p, &st) < 0) return 0;
    time_t now = time(NULL);
    return now > st.st_mtime ? now - st.st_mtime : 0;
}

/* What a stopped box whose repository is still there left: its run dir (stale sockets, the
 * status file) and temp files of crashed writers in its dirs. */
static void gc_stopped(const struct dbx_paths *paths, const char *id, bool dry_run,
                       struct dbx_gc_report *r) {
    _cleanup_close_ int run = open(paths->run, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    uint64_t n = 0;
    if (run >= 0 && fstatat(run, id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        dbx_rm_tree_at(run, id, dry_run, &n, NULL) == 0) {
        r->leftovers++;
        r->freed += n;
    }
    _cleanup_free_ char *state = dbx_xasprintf("%s/projects", paths->state);
    _cleanup_free_ char *data = dbx_xasprintf("%s/projects", paths->data);
    gc_tmp(state, id, dry_run, r);
    gc_tmp(data, id, dry_run, r);
}

/* Whether a gone repository at root was deleted rather than hidden: the root itself is missing
 * and its parent directory exists, is not empty and is not a mount point.  A repository on a disk
 * that is not mounted (a USB disk, an NFS home while offline) also looks gone, and the empty
 * directory it was mounted on, or a parent that went with the disk, is what tells the two apart; gc
 * keeps such a project for `devbox rm PATH`, which the user names on purpose. */
static bool gone_for_sure(const char *root) {
    struct stat rst;
    /* a root that exists without its .git: an empty mount point, or .git moved aside */
    if (lstat(root, &rst) == 0 || errno != ENOENT) return false;
    _cleanup_free_ char *parent = dbx_xstrdup(root);
    char *slash = strrchr(parent, '/');
    if (!slash || slash == parent) return false; /* a repository at / or /x: keep it */
    *slash = '\0';
    _cleanup_free_ char *grand = dbx_xstrdup(parent);
    char *gs = strrchr(grand, '/');
    if (gs == grand)
        gs[1] = '\0';
    else if (gs)
        *gs = '\0';
    struct stat st, gst;
    if (lstat(parent, &st) < 0 || !S_ISDIR(st.st_mode) || lstat(grand, &gst) < 0 ||
        st.st_dev != gst.st_dev)
        return false;
    _cleanup_close_ int fd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(dup(fd)) : NULL;
    bool empty = true;
    for (struct dirent *de; d && empty && (de = readdir(d));)
        empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
    if (d) closedir(d);
    return d && !empty;
}

/* One project id found in state/projects: removed when its repository is gone; else what its
 * stopped box left (the run dir and stale temp files).  A dir without a record (a first start
 * that failed, an interrupted rm) goes after an hour. */
static int gc_project(const struct dbx_paths *paths, const char *id, bool dry_run,
                      struct dbx_gc_report *r, dbx_error **err) {
    struct dbx_project p = {0};
    _cleanup_error_ dbx_error *lerr = NULL;
    bool recorded = dbx_project_from_id(paths, id, &p, &lerr) == 0;
    if (!recorded) {
        /* Only a missing record: one that does not parse may still name a disk worth keeping. */
        if (!lerr || lerr->code != ENOENT) return 0;
        p = (struct dbx_project){.state_dir = dbx_xasprintf("%s/projects/%s", paths->state, id),
                                 .data_dir = dbx_xasprintf("%s/projects/%s", paths->data, id),
                                 .run_dir = dbx_xasprintf("%s/%s", paths->run, id)};
        snprintf(p.id, sizeof(p.id), "%s", id);
    }
    _cleanup_free_ char *projects = dbx_xasprintf("%s/projects", paths->state);
    _cleanup_close_ int lock = -EBADF;
    int rc = 0;
    uint64_t n = 0;
    if (dbx_project_busy(&p)) {
        /* not removed under its box, but said: no path names it for `devbox stop` any more */
        if (recorded && dbx_project_gone(p.root)) {
            r->running = dbx_strv_push(r->running, p.root);
            r->running_ids = dbx_strv_push(r->running_ids, p.id);
        }
        goto out;
    }
    if (!recorded && age_of(projects, id) < GC_STALE_S) goto out;
    /* (A dry run takes no lock: it would create the lock file, and it removes nothing.) */
    rc = dry_run ? 0 : dbx_project_lock(p.state_dir, false, &lock, err);
    if (rc == -EAGAIN) rc = 0;
    if (rc < 0 || (lock < 0 && !dry_run) || dbx_project_busy(&p)) goto out;
    if (recorded && dbx_project_gone(p.root) && !gone_for_sure(p.root)) {
        r->kept = dbx_strv_push(r->kept, p.root);
        goto out;
    }
    if (!recorded || dbx_project_gone(p.root)) {
        rc = dbx_project_remove_locked(paths, id, dry_run, &n, err);
        if (rc < 0) goto out;
        if (recorded)
            r->projects = dbx_strv_push(r->projects, p.root);
        else
            r->leftovers++;
        r->freed += n;
        goto out;
    }
    gc_stopped(paths, id, dry_run, r);
out:
    dbx_project_clear(&p);
    return rc;
}

/* Dirs named by a project id in dir/sub (data/projects, run) with no state dir of that id: what
 * an rm interrupted after the state dir went left (the state dir goes first), or a start that
 * died before making it.  After an hour; a run dir only while no supervisor holds its lock. */
static void gc_strays(const struct dbx_paths *paths, const char *dir, const char *sub, bool dry_run,
                      struct dbx_gc_report *r) {
    _cleanup_free_ char *where = sub ? dbx_xasprintf("%s/%s", dir, sub) : dbx_xstrdup(dir);
    _cleanup_close_ int fd = open(where, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(dup(fd)) : NULL;
    unsigned seen = 0;
    for (struct dirent *de; d && (de = readdir(d)) && seen < GC_MAX_ENTRIES; seen++) {
        const char *id = de->d_name;
        if (strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16) continue;
        _cleanup_free_ char *sd = dbx_xasprintf("%s/projects/%s", paths->state, id);
        struct stat st;
        if (lstat(sd, &st) == 0 || errno != ENOENT || age_of(where, id) < GC_STALE_S) continue;
        struct dbx_project p = {.run_dir = dbx_xasprintf("%s/%s", paths->run, id)};
        bool busy = dbx_project_busy(&p);
        dbx_project_clear(&p);
        uint64_t n = 0;
        if (busy || dbx_rm_tree_at(fd, id, dry_run, &n, NULL) < 0) continue;
        r->leftovers++;
        r->freed += n;
    }
    if (d) closedir(d);
}

static bool in_strv(char *const *v, const char *s) {
    for (; v && *v; v++)
        if (!strcmp(*v, s)) return true;
    return false;
}

/* --dry-run's view of `image prune`'s derived disks: those whose only users are projects gc
 * would remove.  (Base disks and blobs are only known by pruning: not counted.) */
static void dry_derived(const struct dbx_paths *paths, struct dbx_gc_report *r) {
    _cleanup_free_ char *dir = dbx_derived_dir(paths);
    DIR *d = opendir(dir);
    unsigned seen = 0;
    for (struct dirent *de; d && (de = readdir(d)) && seen < GC_MAX_ENTRIES; seen++) {
        char key[65];
        _cleanup_free_ char *path = dbx_xasprintf("%s/%s", dir, de->d_name);
        if (!dbx_derived_is_disk(paths, path, key)) continue;
        _cleanup_strv_ char **users = dbx_image_users(paths, path);
        bool used = false;
        for (char **u = users; *u && !used; u++)
            used = !in_strv(r->projects, *u);
        struct stat st;
        if (used || lstat(path, &st) < 0) continue;
        r->freed += (uint64_t)st.st_blocks * 512;
        struct dbx_derived x = {0};
        _cleanup_free_ char *name = dbx_derived_load(paths, key, &x, NULL) == 0
                                        ? dbx_derived_disk_name(&x, path)
                                        : dbx_xstrdup(key);
        dbx_derived_clear(&x);
        r->derived = dbx_strv_push(r->derived, name);
    }
    if (d) closedir(d);
}

int dbx_gc(const struct dbx_paths *paths, bool dry_run, struct dbx_gc_report *ret,
           dbx_error **err) {
    struct dbx_gc_report r = {.projects = dbx_xcalloc(1, sizeof(char *))};
    _cleanup_strv_ char **ids = NULL;
    int rc = dbx_project_list(paths, &ids, err);
    for (char **id = ids; rc == 0 && *id; id++)
        rc = gc_project(paths, *id, dry_run, &r, err);
    if (rc == 0) {
        gc_strays(paths, paths->data, "projects", dry_run, &r);
        gc_strays(paths, paths->run, NULL, dry_run, &r);
        _cleanup_free_ char *derived = dbx_derived_dir(paths);
        _cleanup_free_ char *images = dbx_xasprintf("%s/images", paths->data);
        gc_tmp(paths->state, NULL, dry_run, &r);
        gc_tmp(images, NULL, dry_run, &r);
        gc_tmp(derived, NULL, dry_run, &r);
    }
    if (rc == 0 && dry_run) {
        dry_derived(paths, &r);
    } else if (rc == 0) {
        uint64_t n = 0;
        rc = dbx_image_prune(paths, &r.derived, &n, err);
        if (rc == 0) r.freed += n, r.images_counted = true;
    }
    if (!r.derived) r.derived = dbx_xcalloc(1, sizeof(char *));
    if (rc < 0) {
        dbx_gc_report_clear(&r);
        return -1;
    }
    *ret = r;
    return 0;
}

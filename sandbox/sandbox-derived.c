/* sandbox/sandbox-derived.c: derived disks, what an image's base disk becomes after a
 * profile's [setup] ran in it.  A derived disk is a qcow2 overlay of the image's raw base disk,
 * made read-only once setup succeeded, in data/derived/:
 *
 *   KEY.json         the record: image, base disk, setup commands, the current disk, when
 *   KEY-MS.qcow2     a disk (MS: milliseconds when it was committed; 0444)
 *   KEY.lock         held while setup builds or a start reuses KEY
 *   KEY.build.qcow2  the disk setup is running in (renamed into place when it succeeded)
 *
 * KEY is the SHA-256 of (DBX_DERIVED_VERSION, the base disk's name, the setup commands, and
 * what else shapes their result: the setup network and, for a setup that sees the workspace,
 * the project): the base disk's name is its content digest, so two projects with the same
 * image and the same setup share one derived disk, and a changed image, setup or guest
 * protocol never meets a stale one.  `devbox setup --force` commits a new disk under the same key:
 * projects made from the old one keep it (their overlays name its path), new ones get the new one;
 * `image prune` removes disks no project uses.  Project overlays name the derived disk as their
 * backing file, so a disk file is never rewritten once committed. */
#include "sandbox-internal.h"
#include "../common/protocol.h"
#include "../common/sha256.h"
#include "../vm/vm.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bumped when what the guest init leaves on a root disk at boot changes in a way a derived disk
 * would keep (its records are then rebuilt, never reused).  It named the protocol's version, up
 * to 10; 11 (EXEC's umask and terminfo) changed nothing a root disk keeps ([setup] runs with 022,
 * as the init's own before it; terminfo goes to the /run tmpfs), and a new name would have run
 * every project's [setup] again after the upgrade (8.5 minutes for a Node project's apt and npm
 * steps here), so it stays: bump it by hand when the init's files on a root disk change. */
#define DBX_DERIVED_VERSION "devbox-derived 1, protocol 10"
#define DERIVED_REC_MAX (256u * 1024u)
#define DERIVED_MAX_FILES 4096u

char *dbx_derived_dir(const struct dbx_paths *paths) {
    return dbx_xasprintf("%s/derived", paths->data);
}

void dbx_derived_clear(struct dbx_derived *d) {
    if (!d) return;
    free(d->image);
    free(d->base);
    free(d->disk);
    free(d->built_for);
    dbx_strv_free(d->run);
    *d = (struct dbx_derived){0};
}

static void hash_str(struct dbx_sha256 *h, const char *s) {
    dbx_sha256_update(h, s, strlen(s) + 1); /* with its NUL: "ab","c" differs from "a","bc" */
}

void dbx_derived_key(const char *base, char *const *run, char *const *context, char ret[65]) {
    struct dbx_sha256 h;
    dbx_sha256_init(&h);
    hash_str(&h, DBX_DERIVED_VERSION);
    const char *slash = strrchr(base, '/');
    hash_str(&h, slash ? slash + 1 : base);
    for (; run && *run; run++)
        hash_str(&h, *run);
    hash_str(&h, ""); /* the commands end here (no command is empty) */
    for (; context && *context; context++)
        hash_str(&h, *context);
    uint8_t md[32];
    dbx_sha256_final(&h, md);
    dbx_sha256_hex(md, ret);
}

void dbx_setup_hash(char *const *run, char ret[65]) {
    if (!run || !*run) {
        ret[0] = '\0';
        return;
    }
    struct dbx_sha256 h;
    dbx_sha256_init(&h);
    for (; *run; run++)
        hash_str(&h, *run);
    uint8_t md[32];
    dbx_sha256_final(&h, md);
    dbx_sha256_hex(md, ret);
}

static bool key_ok(const char *k) {
    if (strlen(k) != 64) return false;
    for (; *k; k++)
        if (!((*k >= '0' && *k <= '9') || (*k >= 'a' && *k <= 'f'))) return false;
    return true;
}

/* The key a derived disk's file name starts with ("KEY-MS.qcow2"), or false. */
static bool disk_key(const char *name, char key[65]) {
    size_t n = strlen(name);
    if (n < 64 + 2 + 6 || name[64] != '-' || strcmp(name + n - 6, ".qcow2") != 0) return false;
    for (size_t i = 65; i < n - 6; i++)
        if (name[i] < '0' || name[i] > '9') return false;
    memcpy(key, name, 64);
    key[64] = '\0';
    return key_ok(key);
}

int dbx_derived_lock(const struct dbx_paths *paths, const char *key, bool wait, dbx_error **err) {
    if (!key_ok(key)) return dbx_error_set(err, EINVAL, "bad derived disk key '%s'", key);
    _cleanup_free_ char *dir = dbx_derived_dir(paths);
    if (dbx_mkdir_p(dir, 0700, err) < 0) return -1;
    _cleanup_free_ char *p = dbx_xasprintf("%s/%s.lock", dir, key);
    for (;;) {
        int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) return dbx_error_set(err, errno, "open '%s'", p);
        while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0)
            if (errno != EINTR) {
                int e = errno;
                close(fd);
                if (e == EWOULDBLOCK && !wait) return -EAGAIN;
                return dbx_error_set(err, e, "lock '%s'", p);
            }
        /* prune unlinks lock files it holds: a lock on a file no longer at that name locks
         * nothing, so take the one that is there now. */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(p, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
            return fd;
        close(fd);
    }
}

char *dbx_derived_build_path(const struct dbx_paths *paths, const char *key) {
    _cleanup_free_ char *dir = dbx_derived_dir(paths);
    return dbx_xasprintf("%s/%s.build.qcow2", dir, key);
}

static int rec_parse(const char *path, const char *buf, size_t len, struct dbx_derived *ret,
                     dbx_error **err) {
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) return dbx_error_set(err, 0, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    const char *key = NULL, *image = NULL, *base = NULL, *disk = NULL, *built_for = NULL;
    json_t *run = NULL;
    json_int_t created = 0;
    int r = json_unpack_ex(j, &je, JSON_STRICT, "{s:s, s:s, s:s, s:s, s:s, s:o, s:I}", "key", &key,
                           "image", &image, "base", &base, "disk", &disk, "built_for", &built_for,
                           "run", &run, "created", &created);
    if (r == 0 && (!key_ok(key) || !json_is_array(run) || json_array_size(run) > 4096))
        r = -1, snprintf(je.text, sizeof(je.text), "malformed record");
    if (r == 0) {
        *ret = (struct dbx_derived){.image = dbx_xstrdup(image),
                                    .base = dbx_xstrdup(base),
                                    .disk = dbx_xstrdup(disk),
                                    .built_for = dbx_xstrdup(built_for),
                                    .created = (int64_t)created};
        memcpy(ret->key, key, 65);
        ret->run = dbx_xcalloc(1, sizeof(char *));
        size_t i;
        json_t *v;
        json_array_foreach(run, i, v) {
            if (json_is_string(v)) ret->run = dbx_strv_push(ret->run, json_string_value(v));
        }
        struct stat st;
        if (stat(ret->disk, &st) == 0) ret->size = (uint64_t)st.st_blocks * 512;
    }
    json_decref(j);
    if (r < 0) return dbx_error_set(err, 0, "%s: %s", path, je.text);
    return 0;
}

static int rec_load(const char *dir, const char *key, struct dbx_derived *ret, dbx_error **err) {
    _cleanup_free_ char *path = dbx_xasprintf("%s/%s.json", dir, key);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = dbx_read_file_at(AT_FDCWD, path, DERIVED_REC_MAX, &buf, &len, err);
    if (r < 0) return r;
    return rec_parse(path, buf, len, ret, err);
}

int dbx_derived_load(const struct dbx_paths *paths, const char *key, struct dbx_derived *ret,
                     dbx_error **err) {
    if (!key_ok(key)) return dbx_error_set(err, EINVAL, "bad derived disk key '%s'", key);
    _cleanup_free_ char *dir = dbx_derived_dir(paths);
    _cleanup_error_ dbx_error *e = NULL;
    if (rec_load(dir, key, ret, &e) < 0) {
        if (e && e->code == ENOENT) return -ENOENT;
        if (err) *err = TAKE_PTR(e);
        return -EINVAL;
    }
    return 0;
}

int dbx_derived_get(const struct dbx_paths *paths, const char *key, struct dbx_derived *ret,
                    dbx_error **err) {
    int r = dbx_derived_load(paths, key, ret, err);
    if (r < 0) return r;
    /* The record outlives a disk `image prune` removed: then there is nothing to reuse. */
    if (access(ret->disk, F_OK) < 0) {
        dbx_derived_clear(ret);
        return -ENOENT;
    }
    return 0;
}

int dbx_derived_commit(const struct dbx_paths *paths, struct dbx_derived *d, const char *build,
                       dbx_error **err) {
    _cleanup_free_ char *dir = dbx_derived_dir(paths);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    _cleanup_free_ char *disk =
        dbx_xasprintf("%s/%s-%llu.qcow2", dir, d->key, (unsigned long long)ms);
    /* Read-only before it gets its name: from then on overlays may be backed by it. */
    _cleanup_close_ int fd = open(build, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fchmod(fd, 0444) < 0 || fsync(fd) < 0)
        return dbx_error_set(err, errno, "seal the derived disk '%s'", build);
    if (rename(build, disk) < 0) return dbx_error_set(err, errno, "rename to '%s'", disk);
    free(d->disk);
    d->disk = TAKE_PTR(disk);
    d->created = (int64_t)ts.tv_sec;
    json_t *run = json_array();
    for (char **x = d->run; x && *x; x++)
        json_array_append_new(run, json_string(*x));
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I}", "key", d->key, "image", d->image,
                          "base", d->base, "disk", d->disk, "built_for", d->built_for, "run", run,
                          "created", (json_int_t)d->created);
    if (!j) return dbx_error_set(err, 0, "encode the derived disk record");
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    if (!s) dbx_oom_hook();
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_free_ char *name = dbx_xasprintf("%s.json", d->key);
    int r = dfd < 0 ? dbx_error_set(err, errno, "open '%s'", dir)
                    : dbx_write_file_atomic(dfd, name, s, strlen(s), 0600, err);
    free(s);
    return r;
}

static int cmp_created(const void *a, const void *b) {
    const struct dbx_derived *x = a, *y = b;
    return x->created < y->created ? -1 : x->created > y->created;
}

int dbx_derived_list(const struct dbx_paths *paths, struct dbx_derived **ret, size_t *ret_n,
                     dbx_error **err) {
    _cleanup_free_ char *dir = dbx_derived_dir(paths);
    *ret = NULL;
    *ret_n = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : dbx_error_set(err, errno, "open '%s'", dir);
    struct dbx_derived *v = NULL;
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d)) && n < DERIVED_MAX_FILES;) {
        size_t len = strlen(de->d_name);
        if (len != 64 + 5 || strcmp(de->d_name + 64, ".json") != 0) continue;
        char key[65];
        memcpy(key, de->d_name, 64);
        key[64] = '\0';
        struct dbx_derived x = {0};
        if (!key_ok(key) || rec_load(dir, key, &x, NULL) < 0) continue;
        v = dbx_xrealloc(v, (n + 1) * sizeof(*v));
        v[n++] = x;
    }
    closedir(d);
    if (n) qsort(v, n, sizeof(*v), cmp_created);
    *ret = v;
    *ret_n = n;
    return 0;
}

void dbx_derived_list_free(struct dbx_derived *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        dbx_derived_clear(&v[i]);
    free(v);
}

bool dbx_derived_is_disk(const struct dbx_paths *paths, const char *path, char key[65]) {
    _cleanup_free_ char *dir = dbx_derived_dir(paths);
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/' && !strchr(path + n + 1, '/') &&
           disk_key(path + n + 1, key);
}

char *dbx_derived_name(const struct dbx_derived *d) {
    return dbx_xasprintf("%s+setup-%.12s", d->image, d->key);
}

char *dbx_derived_disk_name(const struct dbx_derived *d, const char *path) {
    const char *a = strrchr(path, '/'), *b = d->disk ? strrchr(d->disk, '/') : NULL;
    /* not its current disk: one `setup --force` replaced, which `devbox images` no longer
     * lists under that name (found in use: gc's "would remove derived disk X" next to an X
     * that a project used); file names compared */
    bool earlier = d->disk && strcmp(a ? a + 1 : path, b ? b + 1 : d->disk) != 0;
    return dbx_xasprintf("%s+setup-%.12s%s", d->image, d->key,
                         earlier ? " (an earlier build, not the one `devbox images` lists)" : "");
}

int dbx_derived_prune(const struct dbx_paths *paths, char ***ret_removed, uint64_t *ret_freed,
                      dbx_error **err) {
    _cleanup_free_ char *dir = dbx_derived_dir(paths);
    char **removed = dbx_xcalloc(1, sizeof(char *));
    uint64_t freed = 0;
    DIR *d = opendir(dir);
    if (!d && errno != ENOENT) {
        dbx_strv_free(removed);
        return dbx_error_set(err, errno, "open '%s'", dir);
    }
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *de; d && (de = readdir(d)) && n < DERIVED_MAX_FILES;) {
        char key[65];
        if (!disk_key(de->d_name, key)) continue;
        names = dbx_xrealloc(names, (n + 1) * sizeof(char *));
        names[n++] = dbx_xstrdup(de->d_name);
    }
    if (d) closedir(d);
    /* Disks no project's overlay is backed by go. */
    char **gone = NULL; /* keys whose disks were removed */
    for (size_t i = 0; i < n; i++) {
        char key[65];
        disk_key(names[i], key);
        _cleanup_free_ char *path = dbx_xasprintf("%s/%s", dir, names[i]);
        /* Not while setup builds or a start reuses this key (a start holds the lock until its
         * project's record names the disk): the lock first, then the users. */
        _cleanup_close_ int lock = dbx_derived_lock(paths, key, false, NULL);
        if (lock < 0) continue;
        _cleanup_strv_ char **users = dbx_image_users(paths, path);
        if (users[0]) continue;
        struct stat st;
        if (lstat(path, &st) < 0 || unlink(path) < 0) continue;
        freed += (uint64_t)st.st_blocks * 512;
        free(names[i]);
        names[i] = NULL;
        struct dbx_derived x = {0};
        if (rec_load(dir, key, &x, NULL) == 0) {
            _cleanup_free_ char *nm = dbx_derived_disk_name(&x, path);
            removed = dbx_strv_push(removed, nm);
            dbx_derived_clear(&x);
        }
        gone = dbx_strv_push(gone, key);
    }
    /* A record stays while any disk of its key does (it tells which image that disk is made
     * from); with none left it goes too. */
    for (char **k = gone; k && *k; k++) {
        bool left = false;
        for (size_t i = 0; i < n && !left; i++)
            left = names[i] && strncmp(names[i], *k, 64) == 0;
        if (left) continue;
        /* (The lock file stays: unlinking it could split a starter holding it from the next.) */
        _cleanup_free_ char *rp = dbx_xasprintf("%s/%s.json", dir, *k);
        unlink(rp);
    }
    dbx_strv_free(gone);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    /* What a setup killed half-way left (KEY.build.qcow2), unless it is building now. */
    d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len != 64 + 12 || strcmp(de->d_name + 64, ".build.qcow2") != 0) continue;
        char key[65];
        memcpy(key, de->d_name, 64);
        key[64] = '\0';
        if (!key_ok(key)) continue;
        _cleanup_close_ int lock = dbx_derived_lock(paths, key, false, NULL);
        if (lock < 0) continue;
        _cleanup_free_ char *bp = dbx_xasprintf("%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(bp, &st) == 0 && unlink(bp) == 0) freed += (uint64_t)st.st_blocks * 512;
    }
    if (d) closedir(d);
    /* Lock files of keys with neither a record nor a disk (failed setups leave them), unlinked
     * while held (dbx_derived_lock then takes the new file). */
    d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len != 64 + 5 || strcmp(de->d_name + 64, ".lock") != 0) continue;
        char key[65];
        memcpy(key, de->d_name, 64);
        key[64] = '\0';
        _cleanup_free_ char *rp = dbx_xasprintf("%s/%s.json", dir, key);
        _cleanup_free_ char *lp = dbx_xasprintf("%s/%s", dir, de->d_name);
        _cleanup_close_ int lock = open(lp, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) continue;
        if (access(rp, F_OK) < 0 && errno == ENOENT) (void)unlink(lp);
    }
    if (d) closedir(d);
    *ret_removed = removed;
    if (ret_freed) *ret_freed = freed;
    return 0;
}

/* oci/oci-store.c: the content-addressed blob store.  A blob is written to ingest/ALG-HEX while
 * its bytes are hashed, under a flock on ingest/ALG-HEX.lock, and renamed to blobs/ALG/HEX only
 * once size and digest match (containerd's ingest -> verify -> commit), so nothing partial ever
 * looks complete and an interrupted download resumes from what is in ingest/. */
#define _GNU_SOURCE
#include <dirent.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "oci/oci-internal.h"

struct oci_store {
    char *dir;
    int dfd;
};

/* ---- digests ------------------------------------------------------------------------------ */

EVP_MD_CTX *oci_hash_new(const char *digest) {
    const EVP_MD *alg = dbx_str_has_prefix(digest, "sha512:") ? EVP_sha512() : EVP_sha256();
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, alg, NULL) != 1) dbx_oom_hook();
    return md;
}

static void hex(const unsigned char *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

bool oci_hash_check(EVP_MD_CTX *md, const char *digest) {
    unsigned char b[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char h[2 * EVP_MAX_MD_SIZE + 1];
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    if (!copy || EVP_MD_CTX_copy_ex(copy, md) != 1 || EVP_DigestFinal_ex(copy, b, &n) != 1)
        dbx_oom_hook();
    EVP_MD_CTX_free(copy);
    hex(b, n, h);
    const char *colon = strchr(digest, ':');
    return colon && strlen(colon + 1) == 2 * n && !strcmp(colon + 1, h);
}

char *oci_digest_sha256(const void *buf, size_t len) {
    unsigned char b[32];
    char h[65];
    EVP_Digest(buf, len, b, NULL, EVP_sha256(), NULL);
    hex(b, 32, h);
    return dbx_xasprintf("sha256:%s", h);
}

bool oci_digest_matches(const void *buf, size_t len, const char *digest) {
    if (!oci_digest_valid(digest)) return false;
    EVP_MD_CTX *md = oci_hash_new(digest);
    EVP_DigestUpdate(md, buf, len);
    bool ok = oci_hash_check(md, digest);
    EVP_MD_CTX_free(md);
    return ok;
}

/* "blobs/sha256/HEX" / "ingest/sha256-HEX[.lock]" for a digest that passed oci_digest_valid. */
static char *blob_path(const char *digest) {
    const char *colon = strchr(digest, ':');
    return dbx_xasprintf("blobs/%.*s/%s", (int)(colon - digest), digest, colon + 1);
}
static char *ingest_path(const char *digest, const char *suffix) {
    const char *colon = strchr(digest, ':');
    return dbx_xasprintf("ingest/%.*s-%s%s", (int)(colon - digest), digest, colon + 1, suffix);
}

/* ---- the store ---------------------------------------------------------------------------- */

int oci_store_open(const char *dir, struct oci_store **ret, dbx_error **err) {
    if (dbx_mkdir_private(dir, err) < 0) return dbx_error_wrap(err, "content store");
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0) return dbx_error_set(err, errno, "open content store '%s'", dir);
    static const char *const sub[] = {"blobs", "blobs/sha256", "blobs/sha512", "ingest"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(sub); i++)
        if (mkdirat(dfd, sub[i], 0700) < 0 && errno != EEXIST)
            return dbx_error_set(err, errno, "mkdir '%s/%s'", dir, sub[i]);
    struct oci_store *s = dbx_xcalloc(1, sizeof(*s));
    s->dir = dbx_xstrdup(dir);
    s->dfd = TAKE_FD(dfd);
    *ret = s;
    return 0;
}

void oci_store_free(struct oci_store *s) {
    if (!s) return;
    if (s->dfd >= 0) close(s->dfd);
    free(s->dir);
    free(s);
}

int oci_store_lock(struct oci_store *s, bool exclusive, int *ret_fd, dbx_error **err) {
    _cleanup_close_ int fd =
        openat(s->dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s/lock'", s->dir);
    while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
        if (errno != EINTR) return dbx_error_set(err, errno, "lock '%s/lock'", s->dir);
    *ret_fd = TAKE_FD(fd);
    return 0;
}

int oci_store_hold(struct oci_store *s, bool exclusive, int *ret_fd, dbx_error **err) {
    return oci_store_lock(s, exclusive, ret_fd, err);
}

int oci_store_open_blob(struct oci_store *s, const char *digest, int *ret_fd, dbx_error **err) {
    if (!oci_digest_valid(digest))
        return dbx_error_setx(err, EINVAL, "invalid digest '%.200s'", digest);
    _cleanup_free_ char *p = blob_path(digest);
    int fd = openat(s->dfd, p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) return dbx_error_set(err, errno, "blob '%s'", digest);
    *ret_fd = fd;
    return 0;
}

bool oci_store_has(struct oci_store *s, const char *digest, uint64_t size) {
    if (!oci_digest_valid(digest)) return false;
    _cleanup_free_ char *p = blob_path(digest);
    struct stat st;
    return fstatat(s->dfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           (size == UINT64_MAX || (uint64_t)st.st_size == size);
}

int oci_store_read(struct oci_store *s, const char *digest, size_t cap, char **ret_buf,
                   size_t *ret_len, dbx_error **err) {
    _cleanup_close_ int fd = -EBADF;
    if (oci_store_open_blob(s, digest, &fd, err) < 0) return -1;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (dbx_read_all(fd, cap, &buf, &len, err) < 0) return dbx_error_wrap(err, "blob '%s'", digest);
    /* cheap for manifests and configs, and it catches a store modified behind our back */
    if (!oci_digest_matches(buf, len, digest))
        return dbx_error_setx(err, EIO, "blob '%s' in the store does not match its digest", digest);
    *ret_buf = TAKE_PTR(buf);
    *ret_len = len;
    return 0;
}

/* ---- ingest ------------------------------------------------------------------------------- */

/* Lock ingest/ALG-HEX.lock; retry when the file we locked was unlinked meanwhile (a commit or
 * gc removes lock files while holding them). */
static int lock_blob(struct oci_store *s, const char *digest, bool wait, int *ret_fd,
                     dbx_error **err) {
    _cleanup_free_ char *lp = ingest_path(digest, ".lock");
    for (int tries = 0; tries < 100; tries++) {
        _cleanup_close_ int fd =
            openat(s->dfd, lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) return dbx_error_set(err, errno, "open '%s/%s'", s->dir, lp);
        while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
            if (errno == EWOULDBLOCK) return -EAGAIN;
            if (errno != EINTR) return dbx_error_set(err, errno, "lock '%s/%s'", s->dir, lp);
        }
        struct stat a, b;
        if (fstat(fd, &a) < 0) return dbx_error_set(err, errno, "stat '%s'", lp);
        if (fstatat(s->dfd, lp, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev) {
            *ret_fd = TAKE_FD(fd);
            return 0;
        }
    }
    return dbx_error_setx(err, EAGAIN, "cannot lock '%s/%s'", s->dir, lp);
}

static int rehash(struct oci_ingest *ing, dbx_error **err) {
    char buf[65536];
    if (lseek(ing->fd, 0, SEEK_SET) < 0) return dbx_error_set(err, errno, "seek ingest");
    for (;;) {
        ssize_t n = read(ing->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return dbx_error_set(err, errno, "read ingest of '%s'", ing->digest);
        if (n == 0) break;
        EVP_DigestUpdate(ing->md, buf, (size_t)n);
        ing->offset += (uint64_t)n;
    }
    return 0;
}

int oci_ingest_begin(struct oci_store *s, const char *digest, uint64_t size, bool wait,
                     struct oci_ingest *ing, dbx_error **err) {
    *ing = (struct oci_ingest){.store = s, .lock_fd = -EBADF, .fd = -EBADF, .size = size};
    if (!oci_digest_valid(digest))
        return dbx_error_setx(err, EINVAL, "invalid digest '%.200s'", digest);
    int r = lock_blob(s, digest, wait, &ing->lock_fd, err);
    if (r < 0) return r;
    ing->digest = dbx_xstrdup(digest);
    _cleanup_free_ char *bp = blob_path(digest);
    struct stat st;
    if (fstatat(s->dfd, bp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (size != UINT64_MAX && (uint64_t)st.st_size != size) {
            r = dbx_error_setx(err, EINVAL, "blob '%s' is %jd bytes, not the %ju declared", digest,
                               (intmax_t)st.st_size, (uintmax_t)size);
            oci_ingest_clear(ing);
            return r;
        }
        ing->complete = true;
        _cleanup_free_ char *lp = ingest_path(digest, ".lock");
        unlinkat(s->dfd, lp, 0); /* held: waiters re-check the inode */
        return 0;
    }
    _cleanup_free_ char *ip = ingest_path(digest, "");
    ing->fd = openat(s->dfd, ip, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    ing->md = oci_hash_new(digest);
    if (ing->fd < 0 || fstat(ing->fd, &st) < 0) {
        r = dbx_error_set(err, errno, "open '%s/%s'", s->dir, ip);
        oci_ingest_clear(ing);
        return r;
    }
    if (!S_ISREG(st.st_mode) || (size != UINT64_MAX && (uint64_t)st.st_size > size))
        r = oci_ingest_reset(ing, err);
    else
        r = rehash(ing, err);
    if (r < 0) {
        oci_ingest_clear(ing);
        return r;
    }
    return 0;
}

int oci_ingest_write(struct oci_ingest *ing, const void *buf, size_t len, dbx_error **err) {
    if (ing->size != UINT64_MAX && (len > ing->size || ing->offset > ing->size - len))
        return dbx_error_setx(err, EFBIG, "blob '%s' is larger than the %ju bytes declared",
                              ing->digest, (uintmax_t)ing->size);
    if (ing->offset + len > OCI_LAYER_SIZE_MAX)
        return dbx_error_setx(err, EFBIG, "blob '%s' is larger than %llu bytes", ing->digest,
                              OCI_LAYER_SIZE_MAX);
    int r = dbx_write_all(ing->fd, buf, len);
    if (r < 0) return dbx_error_set(err, -r, "write ingest of '%s'", ing->digest);
    EVP_DigestUpdate(ing->md, buf, len);
    ing->offset += len;
    return 0;
}

int oci_ingest_reset(struct oci_ingest *ing, dbx_error **err) {
    if (ftruncate(ing->fd, 0) < 0 || lseek(ing->fd, 0, SEEK_SET) < 0)
        return dbx_error_set(err, errno, "truncate ingest of '%s'", ing->digest);
    EVP_MD_CTX_free(ing->md);
    ing->md = oci_hash_new(ing->digest);
    ing->offset = 0;
    return 0;
}

int oci_ingest_commit(struct oci_ingest *ing, dbx_error **err) {
    struct oci_store *s = ing->store;
    if (ing->complete) return 0;
    if (ing->size != UINT64_MAX && ing->offset != ing->size) {
        int r = dbx_error_setx(err, EIO, "blob '%s' is %ju bytes, not the %ju declared",
                               ing->digest, (uintmax_t)ing->offset, (uintmax_t)ing->size);
        oci_ingest_reset(ing, NULL);
        return r;
    }
    if (!oci_hash_check(ing->md, ing->digest)) {
        /* never resume from bytes that hashed wrong */
        oci_ingest_reset(ing, NULL);
        return dbx_error_setx(err, EIO,
                              "blob '%s': digest mismatch (the content hashes to "
                              "something else)",
                              ing->digest);
    }
    if (fsync(ing->fd) < 0) return dbx_error_set(err, errno, "fsync ingest of '%s'", ing->digest);
    fchmod(ing->fd, 0444);
    _cleanup_free_ char *ip = ingest_path(ing->digest, "");
    _cleanup_free_ char *bp = blob_path(ing->digest);
    if (renameat(s->dfd, ip, s->dfd, bp) < 0)
        return dbx_error_set(err, errno, "rename '%s' into the store", ing->digest);
    _cleanup_free_ char *bdir = dbx_xstrndup(bp, (size_t)(strrchr(bp, '/') - bp));
    _cleanup_close_ int bfd = openat(s->dfd, bdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0 || fsync(bfd) < 0) return dbx_error_set(err, errno, "fsync '%s/%s'", s->dir, bdir);
    ing->complete = true;
    /* drop the lock file while we hold it: a waiter re-checks the inode and then finds the blob */
    _cleanup_free_ char *lp = ingest_path(ing->digest, ".lock");
    unlinkat(s->dfd, lp, 0);
    return 0;
}

void oci_ingest_clear(struct oci_ingest *ing) {
    if (!ing) return;
    /* nothing to resume from: drop the empty ingest file and its lock file (still held) */
    if (ing->fd >= 0 && ing->lock_fd >= 0 && !ing->complete && ing->offset == 0) {
        _cleanup_free_ char *ip = ingest_path(ing->digest, "");
        _cleanup_free_ char *lp = ingest_path(ing->digest, ".lock");
        unlinkat(ing->store->dfd, ip, 0);
        unlinkat(ing->store->dfd, lp, 0);
    }
    if (ing->fd >= 0) close(ing->fd);
    if (ing->lock_fd >= 0) close(ing->lock_fd);
    EVP_MD_CTX_free(ing->md);
    free(ing->digest);
    *ing = (struct oci_ingest){.lock_fd = -EBADF, .fd = -EBADF};
}

int oci_store_put(struct oci_store *s, const char *digest, const void *buf, size_t len,
                  dbx_error **err) {
    if (!oci_digest_matches(buf, len, digest))
        return dbx_error_setx(err, EIO, "'%s': digest mismatch", digest);
    if (oci_store_has(s, digest, len)) return 0;
    struct oci_ingest ing;
    if (oci_ingest_begin(s, digest, len, true, &ing, err) < 0) return -1;
    int r = 0;
    if (!ing.complete) {
        r = oci_ingest_reset(&ing, err);
        if (r == 0) r = oci_ingest_write(&ing, buf, len, err);
        if (r == 0) r = oci_ingest_commit(&ing, err);
    }
    oci_ingest_clear(&ing);
    return r;
}

/* ---- images and gc ------------------------------------------------------------------------ */

static int read_manifest(struct oci_store *s, const char *digest, struct oci_manifest *ret,
                         dbx_error **err) {
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (oci_store_read(s, digest, OCI_MANIFEST_MAX, &buf, &len, err) < 0) return -1;
    if (oci_manifest_parse(buf, len, NULL, ret, err) < 0)
        return dbx_error_wrap(err, "'%s'", digest);
    return 0;
}

int oci_store_load_image(struct oci_store *s, const char *manifest_digest, struct oci_image *ret,
                         dbx_error **err) {
    struct oci_manifest m = {0};
    if (read_manifest(s, manifest_digest, &m, err) < 0) return -1;
    _cleanup_free_ char *cfg = NULL;
    size_t cfg_len = 0;
    int r = 0;
    if (m.kind != OCI_KIND_MANIFEST)
        r = dbx_error_setx(err, EINVAL, "'%s' is an index, not an image manifest", manifest_digest);
    if (r == 0) r = oci_store_read(s, m.config.digest, OCI_CONFIG_MAX, &cfg, &cfg_len, err);
    if (r == 0 && cfg_len != m.config.size)
        r = dbx_error_setx(err, EIO, "config '%s' has the wrong size", m.config.digest);
    if (r == 0) r = oci_image_build(manifest_digest, &m, cfg, cfg_len, ret, err);
    oci_manifest_clear(&m);
    return r;
}

static bool strv_has(char **v, const char *s) {
    for (size_t i = 0; v && v[i]; i++)
        if (!strcmp(v[i], s)) return true;
    return false;
}

static void keep_manifest(const struct oci_manifest *m, char ***live) {
    *live = dbx_strv_push(*live, m->config.digest);
    for (size_t i = 0; i < m->nlayers; i++)
        *live = dbx_strv_push(*live, m->layers[i].digest);
}

static int gc_mark(struct oci_store *s, char *const *keep, char ***live, dbx_error **err) {
    for (size_t i = 0; keep && keep[i]; i++) {
        struct oci_manifest m = {0};
        if (read_manifest(s, keep[i], &m, err) < 0) return dbx_error_wrap(err, "keep");
        *live = dbx_strv_push(*live, keep[i]);
        if (m.kind == OCI_KIND_MANIFEST) keep_manifest(&m, live);
        for (size_t k = 0; k < m.nmanifests; k++) {
            struct oci_manifest c = {0};
            dbx_error *e = NULL;
            if (!oci_store_has(s, m.manifests[k].digest, UINT64_MAX)) continue;
            if (read_manifest(s, m.manifests[k].digest, &c, &e) == 0) {
                *live = dbx_strv_push(*live, m.manifests[k].digest);
                if (c.kind == OCI_KIND_MANIFEST) keep_manifest(&c, live);
            }
            dbx_error_free(&e);
            oci_manifest_clear(&c);
        }
        oci_manifest_clear(&m);
    }
    return 0;
}

static int gc_sweep_blobs(struct oci_store *s, const char *alg, char **live, uint64_t *freed,
                          dbx_error **err) {
    _cleanup_free_ char *sub = dbx_xasprintf("blobs/%s", alg);
    int fd = openat(s->dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT ? 0 : dbx_error_set(err, errno, "open '%s/%s'", s->dir, sub);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return dbx_error_set(err, errno, "opendir '%s'", sub);
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        _cleanup_free_ char *digest = dbx_xasprintf("%s:%s", alg, de->d_name);
        if (strv_has(live, digest)) continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0 && S_ISREG(st.st_mode))
            *freed += (uint64_t)st.st_size;
    }
    closedir(d);
    return 0;
}

/* Ingest files whose blob lock nobody holds belong to pulls that died: remove them. */
static void gc_sweep_ingest(struct oci_store *s, uint64_t *freed) {
    int fd = openat(s->dfd, "ingest", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && !strstr(de->d_name, ".lock"))
            names = dbx_strv_push(names, de->d_name);
    for (size_t i = 0; names && names[i]; i++) {
        char *dash = strchr(names[i], '-');
        if (!dash) continue;
        _cleanup_free_ char *digest =
            dbx_xasprintf("%.*s:%s", (int)(dash - names[i]), names[i], dash + 1);
        _cleanup_close_ int lfd = -EBADF;
        if (!oci_digest_valid(digest) || lock_blob(s, digest, false, &lfd, NULL) < 0) continue;
        struct stat st;
        if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            unlinkat(dirfd(d), names[i], 0) == 0)
            *freed += (uint64_t)st.st_size;
        _cleanup_free_ char *lp = dbx_xasprintf("%s.lock", names[i]);
        unlinkat(dirfd(d), lp, 0);
    }
    dbx_strv_free(names);
    closedir(d);
}

int oci_store_gc(struct oci_store *s, char *const *keep, uint64_t *ret_freed, dbx_error **err) {
    _cleanup_close_ int lock = -EBADF;
    if (oci_store_lock(s, true, &lock, err) < 0) return -1;
    return oci_store_gc_held(s, keep, ret_freed, err);
}

int oci_store_gc_held(struct oci_store *s, char *const *keep, uint64_t *ret_freed,
                      dbx_error **err) {
    _cleanup_strv_ char **live = NULL;
    if (gc_mark(s, keep, &live, err) < 0) return dbx_error_wrap(err, "gc");
    uint64_t freed = 0;
    if (gc_sweep_blobs(s, "sha256", live, &freed, err) < 0 ||
        gc_sweep_blobs(s, "sha512", live, &freed, err) < 0)
        return dbx_error_wrap(err, "gc");
    gc_sweep_ingest(s, &freed);
    if (ret_freed) *ret_freed = freed;
    return 0;
}

/* ---- blobs of unknown digest -------------------------------------------------------------- */

int oci_tmpblob_begin(struct oci_store *s, const char *alg, struct oci_tmpblob *tb,
                      dbx_error **err) {
    *tb = (struct oci_tmpblob){.fd = -EBADF};
    tb->fd = openat(s->dfd, "ingest", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (tb->fd < 0) return dbx_error_set(err, errno, "create a temporary blob in '%s'", s->dir);
    tb->alg = dbx_xstrdup(!strcmp(alg, "sha512") ? "sha512" : "sha256");
    _cleanup_free_ char *d = dbx_xasprintf("%s:", tb->alg);
    tb->md = oci_hash_new(d);
    return 0;
}

int oci_tmpblob_write(struct oci_tmpblob *tb, const void *buf, size_t len, dbx_error **err) {
    if (tb->size + len > OCI_LAYER_SIZE_MAX)
        return dbx_error_setx(err, EFBIG, "blob larger than %llu bytes", OCI_LAYER_SIZE_MAX);
    int r = dbx_write_all(tb->fd, buf, len);
    if (r < 0) return dbx_error_set(err, -r, "write temporary blob");
    EVP_DigestUpdate(tb->md, buf, len);
    tb->size += len;
    return 0;
}

int oci_tmpblob_commit(struct oci_store *s, struct oci_tmpblob *tb, const char *expect,
                       char **ret_digest, dbx_error **err) {
    unsigned char b[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char h[2 * EVP_MAX_MD_SIZE + 1];
    EVP_DigestFinal_ex(tb->md, b, &n);
    hex(b, n, h);
    _cleanup_free_ char *digest = dbx_xasprintf("%s:%s", tb->alg, h);
    if (expect && strcmp(expect, digest))
        return dbx_error_setx(err, EIO, "'%s': digest mismatch (the content hashes to '%s')",
                              expect, digest);
    if (fsync(tb->fd) < 0) return dbx_error_set(err, errno, "fsync temporary blob");
    fchmod(tb->fd, 0444);
    _cleanup_close_ int lock = -EBADF;
    if (lock_blob(s, digest, true, &lock, err) < 0) return -1;
    _cleanup_free_ char *bp = blob_path(digest);
    _cleanup_free_ char *proc = dbx_xasprintf("/proc/self/fd/%d", tb->fd);
    if (linkat(AT_FDCWD, proc, s->dfd, bp, AT_SYMLINK_FOLLOW) < 0 && errno != EEXIST)
        return dbx_error_set(err, errno, "link blob '%s' into the store", digest);
    _cleanup_free_ char *bdir = dbx_xstrndup(bp, (size_t)(strrchr(bp, '/') - bp));
    _cleanup_close_ int bfd = openat(s->dfd, bdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd >= 0) fsync(bfd);
    _cleanup_free_ char *lp = ingest_path(digest, ".lock");
    unlinkat(s->dfd, lp, 0);
    if (ret_digest) *ret_digest = TAKE_PTR(digest);
    return 0;
}

void oci_tmpblob_clear(struct oci_tmpblob *tb) {
    if (!tb) return;
    if (tb->fd >= 0) close(tb->fd);
    EVP_MD_CTX_free(tb->md);
    free(tb->alg);
    *tb = (struct oci_tmpblob){.fd = -EBADF};
}

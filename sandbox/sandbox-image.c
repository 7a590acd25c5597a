/* sandbox/sandbox-image.c: the local image store.  An image is a name pointing at a
 * read-only raw base disk named by the digest of what it was built from; base disks are
 * immutable and shared by every project created from them (each project writes only to its
 * own qcow2 overlay). */
#define _GNU_SOURCE
#include "sandbox.h"
#include "../vm/vm.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#define IMAGE_EXTRA_BYTES (4ull << 30) /* free space in a new root filesystem (sparse) */

void dbx_image_clear(struct dbx_image *img) {
    if (!img) return;
    free(img->name);
    free(img->base);
    free(img->digest);
    *img = (struct dbx_image){0};
}

static int check_name(const char *name, dbx_error **err) {
    size_t n = strlen(name);
    bool ok = n > 0 && n <= 128 && name[0] != '.' && name[0] != '-';
    for (const char *s = name; ok && *s; s++)
        ok = (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("._-:/@", *s);
    if (!ok || strstr(name, ".."))
        return dbx_error_set(err, 0, "invalid image name '%s' (use a-z 0-9 . _ - : / @, "
                                          "at most 128 characters)", name);
    return 0;
}

static int sha256_hex(const void *p, size_t n, char out[65]) {
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL)) return -EIO;
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int sha256_file(const char *path, char out[65], dbx_error **err) {
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0) return dbx_error_set(err, errno, "stat '%s'", path);
    if (!S_ISREG(st.st_mode)) return dbx_error_set(err, 0, "'%s' is not a regular file", path);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) dbx_oom_hook();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    static uint8_t buf[1 << 16];
    int r = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            r = dbx_error_set(err, errno, "read '%s'", path);
            break;
        }
        if (n == 0) break;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (r == 0) EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (r < 0) return r;
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static char *image_rec_path(const struct dbx_paths *paths, const char *name) {
    char h[65];
    sha256_hex(name, strlen(name), h);
    h[32] = '\0';
    return dbx_xasprintf("%s/images/%s.json", paths->data, h);
}

int dbx_image_get(const struct dbx_paths *paths, const char *name, struct dbx_image *ret,
                  dbx_error **err) {
    if (check_name(name, err) < 0) return -1;
    _cleanup_free_ char *path = image_rec_path(paths, name);
    _cleanup_free_ char *buf = NULL;
    size_t len;
    if (dbx_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len, NULL) < 0)
        return dbx_error_set(err, 0, "no image '%s' (import one with 'devbox image import "
                                          "ROOTFS.tar %s')", name, name);
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) return dbx_error_set(err, 0, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    const char *n = NULL, *base = NULL, *digest = NULL;
    json_int_t size = 0, created = 0;
    int r = json_unpack_ex(j, &je, JSON_STRICT, "{s:s, s:s, s:s, s:I, s:I}", "name", &n, "base",
                           &base, "digest", &digest, "size", &size, "created", &created);
    if (r == 0 && (strcmp(n, name) != 0 || strchr(base, '/')))
        r = -1, snprintf(je.text, sizeof(je.text), "inconsistent record");
    if (r == 0)
        *ret = (struct dbx_image){dbx_xstrdup(n), dbx_xasprintf("%s/bases/%s", paths->data, base),
                                  dbx_xstrdup(digest), (uint64_t)size, (int64_t)created};
    json_decref(j);
    if (r < 0) return dbx_error_set(err, 0, "%s: %s", path, je.text);
    return 0;
}

int dbx_image_import(const struct dbx_paths *paths, const char *tar_path, const char *name,
                     struct dbx_image *ret, dbx_error **err) {
    if (check_name(name, err) < 0) return -1;
    char digest[65];
    if (sha256_file(tar_path, digest, err) < 0) return -1;
    _cleanup_free_ char *bases = dbx_xasprintf("%s/bases", paths->data);
    _cleanup_free_ char *images = dbx_xasprintf("%s/images", paths->data);
    if (dbx_mkdir_p(bases, 0700, err) < 0 || dbx_mkdir_p(images, 0700, err) < 0) return -1;

    /* One import at a time per store: two imports of the same tarball build it once. */
    _cleanup_free_ char *lockp = dbx_xasprintf("%s/.lock", images);
    _cleanup_close_ int lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) < 0) return dbx_error_set(err, errno, "lock '%s'", lockp);

    _cleanup_free_ char *base_name = dbx_xasprintf("%s.raw", digest);
    _cleanup_free_ char *base = dbx_xasprintf("%s/%s", bases, base_name);
    struct stat st;
    uint64_t size = 0;
    if (stat(base, &st) == 0) size = (uint64_t)st.st_size;
    else if (vm_disk_build_base(tar_path, base, IMAGE_EXTRA_BYTES, &size, err) < 0)
        return dbx_error_wrap(err, "import '%s'", tar_path);

    int64_t now = (int64_t)time(NULL);
    _cleanup_free_ char *dg = dbx_xasprintf("sha256:%s", digest);
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", name, "base", base_name, "digest",
                          dg, "size", (json_int_t)size, "created", (json_int_t)now);
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!s) dbx_oom_hook();
    _cleanup_free_ char *rec = image_rec_path(paths, name);
    _cleanup_close_ int dfd = open(images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = dfd < 0 ? dbx_error_set(err, errno, "open '%s'", images)
                    : dbx_write_file_atomic(dfd, strrchr(rec, '/') + 1, s, strlen(s), 0600, err);
    free(s);
    if (r < 0) return r;
    if (ret) *ret = (struct dbx_image){dbx_xstrdup(name), TAKE_PTR(base), TAKE_PTR(dg), size, now};
    return 0;
}

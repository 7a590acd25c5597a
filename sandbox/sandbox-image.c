/* sandbox/sandbox-image.c: the local image store.  An image is a name pointing at a
 * read-only raw base disk named by the digest of what it was built from (the manifest digest
 * of an OCI image, the digest of a rootfs tarball); base disks are immutable and shared by
 * every project created from them (each project writes only to its own qcow2 overlay).
 * OCI blobs live in one content store (oci/), shared by every image.
 *
 * Why the manifest digest names an OCI base disk, not the config digest: the config's
 * diff_ids are not checked against the layers, so two manifests could share a config and
 * differ in content; the manifest digest covers every layer digest. */
#define _GNU_SOURCE
#include "sandbox-internal.h"
#include "../oci/oci.h"
#include "../vm/vm.h"

#include <dirent.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#define IMAGE_EXTRA_BYTES (4ull << 30) /* free space in a new root filesystem (sparse) */
#define IMAGE_REC_MAX (1u << 20)
#define IMAGE_MAX_RECORDS 4096u

/* What the default image holds: Debian bookworm's apt variant plus the tools an agent reaches
 * for first, and an editor: Debian's git opens `editor` for a message (found in use: `git
 * commit` in `devbox enter` said "cannot run editor"), which nano provides, as on a standard
 * Debian install (it is Debian's default `editor`).  Built once from the Debian archive (no
 * container registry involved), from the mirror dbx_image_debian_mirror picks; DEFAULT_MIRROR
 * only when the host names none. */
#define DEFAULT_SUITE "bookworm"
#define DEFAULT_MIRROR "http://deb.debian.org/debian" /* documented in docs/images.md */
#define DEFAULT_INCLUDE "ca-certificates,curl,git,procps,less,xz-utils,nano"

void dbx_image_clear(struct dbx_image *img) {
    if (!img) return;
    free(img->name);
    free(img->base);
    free(img->digest);
    free(img->source);
    free(img->platform);
    dbx_strv_free(img->env);
    free(img->user);
    free(img->workdir);
    *img = (struct dbx_image){0};
}

/* ---- names and records ------------------------------------------------------------------ */

static bool local_name_ok(const char *name) {
    size_t n = strlen(name);
    bool ok = n > 0 && n <= 255 && name[0] != '.' && name[0] != '-' && !strstr(name, "..");
    for (const char *s = name; ok && *s; s++)
        ok = (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("._-:/@", *s);
    return ok;
}

static bool record_name_ok(const char *name) {
    size_t n = strnlen(name, 1025);
    bool ok = n > 0 && n <= 1024;
    for (const unsigned char *p = (const unsigned char *)name; ok && *p; p++)
        ok = *p > 0x20 && *p < 0x7f;
    return ok;
}

static int check_name(const char *name, dbx_error **err) {
    if (local_name_ok(name)) return 0;
    _cleanup_free_ char *shown = dbx_sanitize_printable(dbx_xstrdup(name));
    return dbx_error_set(err, 0,
                         "invalid image name '%s' (use a-z 0-9 . _ - : / @, at most "
                         "255 characters)",
                         shown);
}

static void sha256_hex(const void *p, size_t n, char out[65]) {
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL)) dbx_oom_hook();
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
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
    _cleanup_free_ uint8_t *buf = dbx_xmalloc(1 << 16);
    int r = 0;
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 16);
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
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static char *images_dir(const struct dbx_paths *paths) {
    return dbx_xasprintf("%s/images", paths->data);
}
static char *bases_dir(const struct dbx_paths *paths) {
    return dbx_xasprintf("%s/bases", paths->data);
}
static char *store_dir(const struct dbx_paths *paths) {
    return dbx_xasprintf("%s/oci", paths->data);
}

static char *rec_file(const char *name) {
    char h[65];
    sha256_hex(name, strlen(name), h);
    h[32] = '\0';
    return dbx_xasprintf("%s.json", h);
}

static char **json_strv(json_t *a) {
    char **v = dbx_xcalloc(1, sizeof(char *));
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) if (json_is_string(x)) v = dbx_strv_push(v, json_string_value(x));
    return v;
}

static int rec_parse(const struct dbx_paths *paths, const char *path, const char *buf, size_t len,
                     struct dbx_image *ret, dbx_error **err) {
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) return dbx_error_set(err, 0, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    const char *n = NULL, *base = NULL, *digest = NULL, *source = "rootfs", *platform = "",
               *user = "", *workdir = "";
    json_int_t size = 0, created = 0;
    json_t *env = NULL;
    int r = json_unpack_ex(j, &je, 0, "{s:s, s:s, s:s, s:I, s:I, s?:s, s?:s, s?:o, s?:s, s?:s}",
                           "name", &n, "base", &base, "digest", &digest, "size", &size, "created",
                           &created, "source", &source, "platform", &platform, "env", &env, "user",
                           &user, "workdir", &workdir);
    /* The record's file is named by a hash of the name, so the name only has to be sane text:
     * canonical references may hold upper-case tags, brackets or be longer than local names. */
    if (r == 0 && (strchr(base, '/') || base[0] == '.' || !record_name_ok(n)))
        r = -1, snprintf(je.text, sizeof(je.text), "inconsistent record");
    if (r == 0)
        *ret = (struct dbx_image){
            dbx_xstrdup(n),        dbx_xasprintf("%s/bases/%s", paths->data, base),
            dbx_xstrdup(digest),   (uint64_t)size,
            (int64_t)created,      dbx_xstrdup(source),
            dbx_xstrdup(platform), env ? json_strv(env) : dbx_xcalloc(1, sizeof(char *)),
            dbx_xstrdup(user),     dbx_xstrdup(workdir)};
    json_decref(j);
    if (r < 0) return dbx_error_set(err, 0, "%s: %s", path, je.text);
    return 0;
}

/* 0 found, -ENOENT absent (no message), else an error. */
static int rec_load(const struct dbx_paths *paths, const char *name, struct dbx_image *ret,
                    dbx_error **err) {
    _cleanup_free_ char *dir = images_dir(paths), *file = rec_file(name);
    _cleanup_free_ char *path = dbx_xasprintf("%s/%s", dir, file);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = dbx_read_file_at(AT_FDCWD, path, IMAGE_REC_MAX, &buf, &len, NULL);
    if (r == -ENOENT) return -ENOENT;
    if (r < 0) return dbx_error_set(err, -r, "read '%s'", path);
    struct dbx_image img = {0};
    if (rec_parse(paths, path, buf, len, &img, err) < 0) return -1;
    if (strcmp(img.name, name) != 0) {
        dbx_image_clear(&img);
        return dbx_error_set(err, 0, "%s: record is for another name", path);
    }
    *ret = img;
    return 0;
}

static int rec_save(const struct dbx_paths *paths, const struct dbx_image *img, dbx_error **err) {
    _cleanup_free_ char *dir = images_dir(paths), *file = rec_file(img->name);
    if (dbx_mkdir_p(dir, 0700, err) < 0) return -1;
    json_t *env = json_array();
    for (char **e = img->env; e && *e; e++)
        json_array_append_new(env, json_string(*e));
    const char *base = strrchr(img->base, '/') ? strrchr(img->base, '/') + 1 : img->base;
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:o, s:s, s:s}", "name", img->name,
                          "base", base, "digest", img->digest, "size", (json_int_t)img->size,
                          "created", (json_int_t)img->created, "source", img->source, "platform",
                          img->platform ? img->platform : "", "env", env, "user",
                          img->user ? img->user : "", "workdir", img->workdir ? img->workdir : "");
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!s) return dbx_error_set(err, 0, "image record for '%s': bad text", img->name);
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = dfd < 0 ? dbx_error_set(err, errno, "open '%s'", dir)
                    : dbx_write_file_atomic(dfd, file, s, strlen(s), 0600, err);
    free(s);
    return r;
}

/* The record name for what a user typed: itself when such a record exists, else the canonical
 * form of the reference it parses as. */
static int resolve_name(const struct dbx_paths *paths, const char *name, char **ret,
                        struct dbx_image *ret_img, dbx_error **err) {
    if (local_name_ok(name)) {
        int r = rec_load(paths, name, ret_img, err);
        if (r == 0) {
            *ret = dbx_xstrdup(name);
            return 0;
        }
        if (r != -ENOENT) return -1;
    }
    struct oci_ref ref = {0};
    if (oci_ref_parse(name, &ref, NULL) < 0) {
        if (!local_name_ok(name)) return check_name(name, err);
        *ret = dbx_xstrdup(name);
        return -ENOENT;
    }
    char *canon = oci_ref_format(&ref);
    oci_ref_clear(&ref);
    int r = rec_load(paths, canon, ret_img, err);
    *ret = canon;
    return r;
}

int dbx_image_get(const struct dbx_paths *paths, const char *name, struct dbx_image *ret,
                  dbx_error **err) {
    _cleanup_free_ char *key = NULL;
    int r = resolve_name(paths, name, &key, ret, err);
    /* "default" is not in any registry: `devbox pull default` would ask Docker Hub. */
    if (r == -ENOENT && strcmp(name, "default") == 0)
        return dbx_error_setx(err, ENOENT,
                              "no image 'default' (devbox builds it from the Debian "
                              "archive when a project first needs it: run 'devbox "
                              "exec true' in a git work tree)");
    if (r == -ENOENT)
        return dbx_error_setx(err, ENOENT,
                              "no image '%s' (pull it with 'devbox pull %s' or "
                              "import one with 'devbox image import FILE %s')",
                              name, name, name);
    return r < 0 ? -1 : 0;
}

/* ---- user settings for registries ------------------------------------------------------- */

struct auth {
    struct profile_user user;
    struct oci_auth_config cfg;
};

static int auth_load(const struct dbx_paths *paths, struct auth *a, dbx_error **err) {
    *a = (struct auth){0};
    if (profile_user_load(paths->config, &a->user, err) < 0) return -1;
    dbx_user_proxy_env(&a->user); /* libcurl reads the proxy variables */
    a->cfg.ca_file = a->user.registries_ca_file;
    a->cfg.insecure = a->user.registries_insecure;
    return 0;
}

static void auth_clear(struct auth *a) {
    profile_user_clear(&a->user);
}

/* ---- progress --------------------------------------------------------------------------- */

struct progress {
    int fd; /* tty, or -1 for none */
    size_t n;
    uint64_t *done, *total;
    char **labels;
    size_t drawn; /* lines on screen */
    uint64_t last_ms;
};

static void progress_draw(struct progress *p, bool force) {
    if (p->fd < 0 || !p->n) return;
    uint64_t now = dbx_now_ms();
    if (!force && now - p->last_ms < 100) return;
    p->last_ms = now;
    struct dbx_buf b = {0};
    if (p->drawn) {
        char up[32];
        int k = snprintf(up, sizeof(up), "\033[%zuA", p->drawn);
        dbx_buf_put(&b, up, (size_t)k);
    }
    for (size_t i = 0; i < p->n; i++) {
        char bar[31];
        uint64_t t = p->total[i] ? p->total[i] : 1;
        size_t fill = (size_t)(p->done[i] * 30 / t);
        if (fill > 30) fill = 30;
        memset(bar, '#', fill);
        memset(bar + fill, ' ', 30 - fill);
        bar[30] = '\0';
        _cleanup_free_ char *line =
            dbx_xasprintf("\r\033[K%-19.19s [%s] %7.1f / %.1f MB\n", p->labels[i], bar,
                          p->done[i] / 1e6, p->total[i] / 1e6);
        dbx_buf_put(&b, line, strlen(line));
    }
    p->drawn = p->n;
    (void)!write(p->fd, b.data, b.len);
    dbx_buf_free(&b);
}

static void progress_clear(struct progress *p) {
    free(p->done);
    free(p->total);
    for (size_t i = 0; i < p->n; i++)
        free(p->labels[i]);
    free(p->labels);
}

/* The lock of base disk BASES/NAME.raw (BASES/NAME.lock): held while a pull or import builds or
 * reuses the disk, so rmi/prune never delete it under them.  Returns the locked fd or -errno
 * (-EWOULDBLOCK with LOCK_NB when it is held). */
static int lock_base(const char *base, int how) {
    size_t len = strlen(base);
    if (len < 5 || strcmp(base + len - 4, ".raw") != 0) return -EINVAL;
    _cleanup_free_ char *lockp = dbx_xasprintf("%.*s.lock", (int)(len - 4), base);
    _cleanup_close_ int fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return -errno;
    while (flock(fd, how) < 0)
        if (errno != EINTR) return -errno;
    return TAKE_FD(fd);
}

/* ---- building a base disk from layers, while they download ------------------------------ */

/* oci_pull calls layer_ready on this thread while its own thread keeps downloading the later
 * layers, so applying a layer here overlaps with the rest of the pull. */
struct builder {
    struct oci_store *store;
    struct vm_rootfs *fs;
    bool skip; /* the base disk exists already */
    struct progress *progress;
    const char *bases;
    char *base_path;
    int base_lock;
    uint64_t max_size; /* [ceilings] image_size for pulls; 0 = only the vm/ caps */
    bool over_ceiling; /* refused by max_size: its blobs are dropped again */
};

static char *size_str(uint64_t n) {
    if (n && n % (1ull << 30) == 0) return dbx_xasprintf("%lluG", (unsigned long long)(n >> 30));
    if (n && n % (1ull << 20) == 0) return dbx_xasprintf("%lluM", (unsigned long long)(n >> 20));
    return dbx_xasprintf("%llu bytes", (unsigned long long)n);
}

static char *ceiling_why(uint64_t max) {
    _cleanup_free_ char *s = size_str(max);
    return dbx_xasprintf("over the [ceilings] image_size %s of config.ini", s);
}

static int on_resolved(void *ud, const struct oci_image *img, dbx_error **err) {
    struct builder *b = ud;

    if (b->progress && b->progress->fd >= 0) {
        struct progress *p = b->progress;
        p->n = img->nlayers;
        p->done = dbx_xcalloc(p->n ? p->n : 1, sizeof(uint64_t));
        p->total = dbx_xcalloc(p->n ? p->n : 1, sizeof(uint64_t));
        p->labels = dbx_xcalloc(p->n ? p->n : 1, sizeof(char *));
        for (size_t i = 0; i < p->n; i++) {
            p->total[i] = img->layers[i].size;
            const char *d = strchr(img->layers[i].digest, ':');
            p->labels[i] = dbx_xasprintf("%.12s", d ? d + 1 : img->layers[i].digest);
        }
    }
    /* Another pull of the same image may be building its disk: wait for it, then use it. */
    const char *hex = strchr(img->manifest_digest, ':') + 1;
    b->base_path = dbx_xasprintf("%s/%s.raw", b->bases, hex);
    b->base_lock = lock_base(b->base_path, LOCK_EX); /* a failure is reported by on_layer */
    b->skip = b->base_lock >= 0 && access(b->base_path, F_OK) == 0;
    if (b->skip || !b->max_size) return 0;
    /* Compressed sizes are a lower bound of what the layers unpack to: refuse before any
     * download when they alone are over the ceiling; the unpacking checks the rest. */
    uint64_t total = 0;
    for (size_t i = 0; i < img->nlayers; i++)
        total +=
            img->layers[i].size > UINT64_MAX - total ? UINT64_MAX - total : img->layers[i].size;
    _cleanup_free_ char *why = ceiling_why(b->max_size);
    if (total > b->max_size) {
        b->over_ceiling = true;
        return dbx_error_set(err, 0, "layers of %llu bytes compressed, %s",
                             (unsigned long long)total, why);
    }
    vm_rootfs_limit_bytes(b->fs, b->max_size, why);
    return 0;
}

static void on_progress(void *ud, size_t layer, uint64_t done, uint64_t total) {
    struct builder *b = ud;
    struct progress *p = b->progress;
    if (!p || p->fd < 0 || layer >= p->n) return;
    p->done[layer] = done;
    if (total) p->total[layer] = total;
    progress_draw(p, false);
}

static int on_layer(void *ud, size_t layer, const char *digest, dbx_error **err) {
    struct builder *b = ud;
    if (b->progress && b->progress->fd >= 0 && layer < b->progress->n) {
        b->progress->done[layer] = b->progress->total[layer];
        progress_draw(b->progress, true);
    }
    if (b->base_lock < 0) return dbx_error_set(err, -b->base_lock, "lock '%s'", b->base_path);
    if (b->skip) return 0;
    _cleanup_close_ int fd = -EBADF;
    if (oci_store_open_blob(b->store, digest, &fd, err) < 0) return -1;
    int r = vm_rootfs_add_layer(b->fs, fd, digest, true, err);
    if (r < 0 && vm_rootfs_over_limit(b->fs)) b->over_ceiling = true;
    return r;
}

static void builder_clear(struct builder *b) {
    vm_rootfs_free(b->fs);
    free(b->base_path);
    if (b->base_lock >= 0) close(b->base_lock);
}

static int builder_init(struct builder *b, struct oci_store *store, const char *bases,
                        struct progress *progress, dbx_error **err) {
    *b = (struct builder){.store = store, .bases = bases, .progress = progress, .base_lock = -1};
    return vm_rootfs_new(bases, &b->fs, err);
}

/* Every layer is applied: write the disk (unless another pull already did). */
static int builder_finish(struct builder *b, const char *what, uint64_t *ret_size,
                          dbx_error **err) {
    if (b->base_lock < 0) return dbx_error_set(err, -b->base_lock, "lock '%s'", b->base_path);
    struct stat st;
    if (b->skip) {
        /* No layer was applied: the disk must still be there (rmi/prune take its lock). */
        if (stat(b->base_path, &st) < 0)
            return dbx_error_set(err, errno, "%s: base disk '%s' vanished; pull again", what,
                                 b->base_path);
        *ret_size = (uint64_t)st.st_size;
        return 0;
    }
    if (vm_rootfs_write_disk(b->fs, b->base_path, IMAGE_EXTRA_BYTES, ret_size, err) < 0)
        return dbx_error_wrap(err, "%s", what);
    return 0;
}

/* Apply every layer of an image already in the store (archives), then write the disk. */
static int build_from_store(struct builder *b, const struct oci_image *img, const char *what,
                            uint64_t *ret_size, dbx_error **err) {
    if (on_resolved(b, img, err) < 0) return -1;
    for (size_t i = 0; i < img->nlayers; i++)
        if (on_layer(b, i, img->layers[i].digest, err) < 0) return -1;
    return builder_finish(b, what, ret_size, err);
}

static char **strv_copy(char *const *v) {
    char **out = dbx_xcalloc(1, sizeof(char *));
    for (; v && *v; v++)
        out = dbx_strv_push(out, *v);
    return out;
}

static int record_oci(const struct dbx_paths *paths, const char *name, const char *source,
                      const struct oci_image *img, const char *base, uint64_t size,
                      struct dbx_image *ret, dbx_error **err) {
    struct dbx_image rec = {
        .name = dbx_xstrdup(name),
        .base = dbx_xstrdup(base),
        .digest = dbx_xstrdup(img->manifest_digest),
        .size = size,
        .created = (int64_t)time(NULL),
        .source = dbx_xstrdup(source),
        .platform = oci_platform_format(&img->platform),
        .env = strv_copy(img->env),
        .user = dbx_xstrdup(img->user ? img->user : ""),
        .workdir = dbx_xstrdup(img->workdir ? img->workdir : ""),
    };
    int r = rec_save(paths, &rec, err);
    if (r == 0 && ret)
        *ret = rec;
    else
        dbx_image_clear(&rec);
    return r;
}

static int open_store(const struct dbx_paths *paths, struct oci_store **ret, char **ret_bases,
                      dbx_error **err) {
    _cleanup_free_ char *dir = store_dir(paths);
    char *bases = bases_dir(paths);
    if (dbx_mkdir_p(bases, 0700, err) < 0 || oci_store_open(dir, ret, err) < 0) {
        free(bases);
        return -1;
    }
    *ret_bases = bases;
    return 0;
}

static int store_gc(const struct dbx_paths *paths, struct oci_store *store, uint64_t *ret_freed,
                    dbx_error **err);

int dbx_image_pull(const struct dbx_paths *paths, const char *refstr,
                   const struct dbx_pull_opts *opts, struct dbx_image *ret, dbx_error **err) {
    struct oci_ref ref = {0};
    if (oci_ref_parse(refstr, &ref, err) < 0) return -1;
    _cleanup_free_ char *canon = oci_ref_format(&ref);
    struct oci_platform plat = {0};
    if (opts && opts->platform && oci_platform_parse(opts->platform, &plat, err) < 0) {
        oci_ref_clear(&ref);
        return -1;
    }
    struct auth auth = {0};
    struct oci_store *store = NULL;
    _cleanup_free_ char *bases = NULL;
    struct progress progress = {.fd = opts ? opts->progress_fd : -1};
    struct builder b = {.base_lock = -1};
    struct oci_image img = {0};
    _cleanup_close_ int hold = -EBADF; /* the blobs stay until the record names them */
    int r = auth_load(paths, &auth, err);
    if (r == 0) r = open_store(paths, &store, &bases, err);
    if (r == 0) r = oci_store_hold(store, false, &hold, err);
    if (r == 0) r = builder_init(&b, store, bases, &progress, err);
    if (r == 0) {
        /* A repository's devbox.ini can name any image: the user's ceiling bounds what it may
         * make us write (imports and the default image are the user's own doing). */
        b.max_size =
            auth.user.max_image_size ? auth.user.max_image_size : PROFILE_IMAGE_SIZE_DEFAULT;
        struct oci_pull_cb cb = {&b, on_resolved, on_progress, on_layer};
        r = oci_pull(store, &ref, opts && opts->platform ? &plat : NULL, &auth.cfg, &cb, &img, err);
        progress_draw(&progress, true);
        /* Nothing of a refused image stays: its blobs go as `image prune` would drop them,
         * once the pulls and imports running beside this one have recorded what they use. */
        if (r < 0 && b.over_ceiling) {
            builder_clear(&b);
            b = (struct builder){.base_lock = -1};
            close(TAKE_FD(hold));
            store_gc(paths, store, NULL, NULL);
        }
    }
    uint64_t size = 0;
    if (r == 0) r = builder_finish(&b, canon, &size, err);
    /* Recorded under the name the user gave in canonical form; pulling by digest records the
     * digest reference. */
    if (r == 0) r = record_oci(paths, canon, "registry", &img, b.base_path, size, ret, err);
    oci_image_clear(&img);
    builder_clear(&b);
    progress_clear(&progress);
    if (store) oci_store_free(store);
    auth_clear(&auth);
    oci_platform_clear(&plat);
    oci_ref_clear(&ref);
    return r < 0 ? -1 : 0;
}

/* ---- import ----------------------------------------------------------------------------- */

static int import_rootfs(const struct dbx_paths *paths, const char *tar_path, const char *name,
                         const char *source, struct dbx_image *ret, dbx_error **err) {
    if (check_name(name, err) < 0) return -1;
    char digest[65];
    if (sha256_file(tar_path, digest, err) < 0) return -1;
    _cleanup_free_ char *bases = bases_dir(paths);
    if (dbx_mkdir_p(bases, 0700, err) < 0) return -1;
    _cleanup_free_ char *base = dbx_xasprintf("%s/%s.raw", bases, digest);
    /* One build per tarball: a second import of the same one waits, then finds the disk. */
    _cleanup_close_ int lock = lock_base(base, LOCK_EX);
    if (lock < 0) return dbx_error_set(err, -lock, "lock '%s'", base);
    struct stat st;
    uint64_t size = 0;
    if (stat(base, &st) == 0)
        size = (uint64_t)st.st_size;
    else if (vm_disk_build_base(tar_path, base, IMAGE_EXTRA_BYTES, &size, err) < 0)
        return dbx_error_wrap(err, "import '%s'", tar_path);
    struct dbx_image rec = {
        .name = dbx_xstrdup(name),
        .base = TAKE_PTR(base),
        .digest = dbx_xasprintf("sha256:%s", digest),
        .size = size,
        .created = (int64_t)time(NULL),
        .source = dbx_xstrdup(source),
        .platform = dbx_xstrdup(""),
        .env = dbx_xcalloc(1, sizeof(char *)),
        .user = dbx_xstrdup(""),
        .workdir = dbx_xstrdup(""),
    };
    int r = rec_save(paths, &rec, err);
    if (r == 0 && ret)
        *ret = rec;
    else
        dbx_image_clear(&rec);
    return r;
}

int dbx_image_import(const struct dbx_paths *paths, const char *file, const char *name,
                     const struct dbx_pull_opts *opts, struct dbx_image *ret, dbx_error **err) {
    enum oci_archive_kind kind;
    if (oci_archive_detect(file, &kind, err) < 0) return -1;
    if (kind == OCI_ARCHIVE_ROOTFS) {
        if (!name)
            return dbx_error_set(err, 0,
                                 "'%s' is a root filesystem tarball: give the image a "
                                 "name (devbox image import FILE NAME)",
                                 file);
        return import_rootfs(paths, file, name, "rootfs", ret, err);
    }
    if (name && check_name(name, err) < 0) return -1;
    struct oci_platform plat = {0};
    if (opts && opts->platform && oci_platform_parse(opts->platform, &plat, err) < 0) return -1;
    struct oci_store *store = NULL;
    _cleanup_free_ char *bases = NULL;
    struct builder b = {.base_lock = -1};
    struct oci_image img = {0};
    uint64_t size = 0;
    _cleanup_close_ int hold = -EBADF; /* the blobs stay until the record names them */
    int r = open_store(paths, &store, &bases, err);
    if (r == 0) r = oci_store_hold(store, false, &hold, err);
    if (r == 0)
        r = oci_archive_import(store, file, NULL, opts && opts->platform ? &plat : NULL, &img, err);
    if (r == 0) r = builder_init(&b, store, bases, NULL, err);
    if (r == 0) r = build_from_store(&b, &img, file, &size, err);
    if (r == 0) {
        /* Without a name: "import@" and the manifest digest. */
        _cleanup_free_ char *fallback = dbx_xasprintf("import@%s", img.manifest_digest);
        r = record_oci(paths, name ? name : fallback, "archive", &img, b.base_path, size, ret, err);
    }
    oci_image_clear(&img);
    builder_clear(&b);
    if (store) oci_store_free(store);
    oci_platform_clear(&plat);
    return r < 0 ? -1 : 0;
}

/* ---- the default image ------------------------------------------------------------------ */

char *dbx_image_debian_mirror(void) {
    const char *m = getenv("DEVBOX_DEBIAN_MIRROR");
    if (m && *m) return dbx_xstrdup(m);
    const char *etc = getenv("DEVBOX_APT_DIR");
    char *found = vm_debian_mirror(etc && *etc ? etc : NULL, DEFAULT_SUITE);
    return found ? found : dbx_xstrdup(DEFAULT_MIRROR);
}

int dbx_image_build_default(const struct dbx_paths *paths, struct dbx_image *ret, dbx_error **err) {
    _cleanup_free_ char *dir = images_dir(paths);
    if (dbx_mkdir_p(dir, 0700, err) < 0) return -1;
    /* Two projects starting at once build it once. */
    _cleanup_free_ char *lockp = dbx_xasprintf("%s/default.lock", dir);
    _cleanup_close_ int lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) < 0) return dbx_error_set(err, errno, "lock '%s'", lockp);
    if (rec_load(paths, "default", ret, NULL) == 0) return 0;

    _cleanup_unlink_free_ char *tar = dbx_xasprintf("%s/default.tar.XXXXXX", dir);
    _cleanup_close_ int fd = mkostemp(tar, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(TAKE_PTR(tar));
        return dbx_error_set(err, e, "create a temp file in '%s'", dir);
    }
    _cleanup_free_ char *mirror = dbx_image_debian_mirror();
    if (vm_debian_rootfs(tar, DEFAULT_SUITE, mirror, DEFAULT_INCLUDE, err) < 0)
        return dbx_error_wrap(err, "build the default image from '%s'", mirror);
    return import_rootfs(paths, tar, "default", "debian", ret, err);
}

int dbx_image_ensure(const struct dbx_paths *paths, const char *name,
                     const struct dbx_pull_opts *opts, struct dbx_image *ret, dbx_error **err) {
    _cleanup_free_ char *key = NULL;
    int r = resolve_name(paths, name, &key, ret, err);
    if (r != -ENOENT) return r < 0 ? -1 : 0;
    /* One line per long phase, tty or not: the first use otherwise says nothing for minutes. */
    int out = opts && opts->phase_fd > 0 ? opts->phase_fd : -1;
    if (strcmp(name, "default") == 0) {
        if (out >= 0) {
            _cleanup_free_ char *mirror = dbx_image_debian_mirror();
            _cleanup_free_ char *shown = dbx_sanitize_printable(dbx_xstrdup(mirror));
            dprintf(out, "devbox: building the default image (once): Debian %s from %s\n",
                    DEFAULT_SUITE, shown);
        }
        return dbx_image_build_default(paths, ret, err);
    }
    struct oci_ref ref = {0};
    if (oci_ref_parse(name, &ref, NULL) < 0)
        return dbx_error_setx(err, ENOENT,
                              "no image '%s' (import one with 'devbox image import "
                              "FILE %s')",
                              name, name);
    oci_ref_clear(&ref);
    if (out >= 0) dprintf(out, "devbox: pulling %s\n", name);
    return dbx_image_pull(paths, name, opts, ret, err);
}

/* ---- listing and removing --------------------------------------------------------------- */

static int cmp_image(const void *a, const void *b) {
    return strcmp(((const struct dbx_image *)a)->name, ((const struct dbx_image *)b)->name);
}

int dbx_image_list(const struct dbx_paths *paths, struct dbx_image **ret, size_t *ret_n,
                   dbx_error **err) {
    _cleanup_free_ char *dir = images_dir(paths);
    *ret = NULL;
    *ret_n = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : dbx_error_set(err, errno, "open '%s'", dir);
    struct dbx_image *v = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < IMAGE_MAX_RECORDS) {
        size_t len = strlen(de->d_name);
        if (len != 37 || strcmp(de->d_name + 32, ".json") != 0) continue;
        _cleanup_free_ char *path = dbx_xasprintf("%s/%s", dir, de->d_name);
        _cleanup_free_ char *buf = NULL;
        size_t blen = 0;
        if (dbx_read_file_at(AT_FDCWD, path, IMAGE_REC_MAX, &buf, &blen, NULL) < 0) continue;
        struct dbx_image img = {0};
        if (rec_parse(paths, path, buf, blen, &img, NULL) < 0) continue;
        v = realloc(v, (n + 1) * sizeof(*v));
        if (!v) dbx_oom_hook();
        v[n++] = img;
    }
    closedir(d);
    if (n) qsort(v, n, sizeof(*v), cmp_image);
    *ret = v;
    *ret_n = n;
    return 0;
}

static void image_list_free(struct dbx_image *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        dbx_image_clear(&v[i]);
    free(v);
}

char **dbx_projects_where(const struct dbx_paths *paths,
                          bool (*match)(const struct dbx_paths *paths,
                                        const struct dbx_project_rec *rec, const void *ud),
                          const void *ud) {
    char **users = dbx_xcalloc(1, sizeof(char *));
    _cleanup_strv_ char **ids = NULL;
    if (dbx_project_list(paths, &ids, NULL) < 0) return users;
    for (char **id = ids; id && *id; id++) {
        _cleanup_free_ char *state = dbx_xasprintf("%s/projects/%s", paths->state, *id);
        struct dbx_project_rec rec = {0};
        if (dbx_project_rec_load(state, &rec, NULL) < 0) continue;
        if (rec.base && match(paths, &rec, ud)) users = dbx_strv_push(users, rec.root);
        dbx_project_rec_clear(&rec);
    }
    return users;
}

static bool backed_by(const struct dbx_paths *paths, const struct dbx_project_rec *rec,
                      const void *base) {
    if (strcmp(rec->base, base) == 0) return true;
    /* A derived disk ([setup]) is itself backed by its image's base disk (its record says
     * which, also for an older disk of the key than the record's current one). */
    char key[65];
    struct dbx_derived d = {0};
    bool uses = dbx_derived_is_disk(paths, rec->base, key) &&
                dbx_derived_load(paths, key, &d, NULL) == 0 && strcmp(d.base, base) == 0;
    dbx_derived_clear(&d);
    return uses;
}

char **dbx_image_users(const struct dbx_paths *paths, const char *base) {
    return dbx_projects_where(paths, backed_by, base);
}

int dbx_image_inspect(const struct dbx_paths *paths, const char *name, char **ret_json,
                      dbx_error **err) {
    struct dbx_image img = {0};
    if (dbx_image_get(paths, name, &img, err) < 0) return -1;
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(img.name));
    json_object_set_new(j, "digest", json_string(img.digest));
    json_object_set_new(j, "source", json_string(img.source));
    json_object_set_new(j, "base", json_string(img.base));
    json_object_set_new(j, "size", json_integer((json_int_t)img.size));
    json_object_set_new(j, "created", json_integer(img.created));
    _cleanup_strv_ char **users = dbx_image_users(paths, img.base);
    json_t *u = json_array();
    for (char **x = users; *x; x++)
        json_array_append_new(u, json_string(*x));
    json_object_set_new(j, "used_by", u);
    int r = 0;
    if (strcmp(img.source, "registry") == 0 || strcmp(img.source, "archive") == 0) {
        struct oci_store *store = NULL;
        _cleanup_free_ char *bases = NULL;
        struct oci_image oi = {0};
        r = open_store(paths, &store, &bases, err);
        if (r == 0) r = oci_store_load_image(store, img.digest, &oi, err);
        if (r == 0) {
            char *s = oci_image_to_json(&oi);
            json_t *o = s ? json_loads(s, 0, NULL) : NULL;
            free(s);
            if (o) json_object_set_new(j, "image", o);
        }
        oci_image_clear(&oi);
        if (store) oci_store_free(store);
    }
    dbx_image_clear(&img);
    if (r == 0) {
        *ret_json = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!*ret_json) dbx_oom_hook();
    }
    json_decref(j);
    return r < 0 ? -1 : 0;
}

/* Delete a base disk unless a pull or import holds its lock (it is being built or reused right
 * now); returns the bytes freed. */
static uint64_t unlink_base(const char *base) {
    _cleanup_close_ int lock = lock_base(base, LOCK_EX | LOCK_NB);
    if (lock < 0) return 0;
    struct stat st;
    if (lstat(base, &st) < 0 || unlink(base) < 0) return 0;
    return (uint64_t)st.st_blocks * 512;
}

/* Does an image record, or a derived disk's record (its disks are backed by the base), name
 * base? */
static bool base_referenced(const struct dbx_paths *paths, const struct dbx_image *v, size_t n,
                            const char *base) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].base, base) == 0) return true;
    struct dbx_derived *dv = NULL;
    size_t dn = 0;
    bool found = false;
    if (dbx_derived_list(paths, &dv, &dn, NULL) < 0) return true; /* unknown: keep it */
    for (size_t i = 0; i < dn && !found; i++)
        found = strcmp(dv[i].base, base) == 0;
    dbx_derived_list_free(dv, dn);
    return found;
}

int dbx_image_remove(const struct dbx_paths *paths, const char *name, bool force, dbx_error **err) {
    struct dbx_image img = {0};
    if (dbx_image_get(paths, name, &img, err) < 0) return -1;
    _cleanup_strv_ char **users = dbx_image_users(paths, img.base);
    if (users[0] && !force) {
        int r = dbx_error_set(err, 0,
                              "image '%s' is used by %zu project%s (%s%s); 'devbox rm' "
                              "them first or use --force",
                              img.name, dbx_strv_len(users), users[1] ? "s" : "", users[0],
                              users[1] ? ", ..." : "");
        dbx_image_clear(&img);
        return r;
    }
    _cleanup_free_ char *dir = images_dir(paths), *file = rec_file(img.name);
    _cleanup_free_ char *path = dbx_xasprintf("%s/%s", dir, file);
    int r = 0;
    if (unlink(path) < 0) r = dbx_error_set(err, errno, "remove '%s'", path);
    /* The base disk goes too unless another record or a project still uses it (a project's
     * overlay needs its backing file even with --force: it is left for `image prune`). */
    struct dbx_image *v = NULL;
    size_t n = 0;
    if (r == 0 && !users[0] && dbx_image_list(paths, &v, &n, NULL) == 0 &&
        !base_referenced(paths, v, n, img.base))
        unlink_base(img.base);
    image_list_free(v, n);
    dbx_image_clear(&img);
    return r;
}

/* Drop every blob no image record needs (and stale ingest files).  The records are read under
 * the store's exclusive lock: pulls and imports hold it shared until they have recorded. */
static int store_gc(const struct dbx_paths *paths, struct oci_store *store, uint64_t *ret_freed,
                    dbx_error **err) {
    _cleanup_close_ int lock = -EBADF;
    if (oci_store_hold(store, true, &lock, err) < 0) return -1;
    struct dbx_image *v = NULL;
    size_t n = 0;
    if (dbx_image_list(paths, &v, &n, err) < 0) return -1;
    _cleanup_strv_ char **keep = dbx_xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].source, "registry") == 0 || strcmp(v[i].source, "archive") == 0)
            keep = dbx_strv_push(keep, v[i].digest);
    image_list_free(v, n);
    uint64_t freed = 0;
    int r = oci_store_gc_held(store, keep, &freed, err);
    if (r == 0 && ret_freed) *ret_freed = freed;
    return r;
}

int dbx_image_prune(const struct dbx_paths *paths, char ***ret_removed, uint64_t *ret_freed,
                    dbx_error **err) {
    struct dbx_image *v = NULL;
    size_t n = 0;
    uint64_t freed = 0;
    /* Derived disks first: they are what keeps a base disk in use. */
    if (dbx_derived_prune(paths, ret_removed, &freed, err) < 0) return -1;
    if (dbx_image_list(paths, &v, &n, err) < 0) return -1;
    _cleanup_free_ char *bases = bases_dir(paths);
    DIR *d = opendir(bases);
    for (struct dirent *de; d && (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".raw") != 0) continue;
        _cleanup_free_ char *path = dbx_xasprintf("%s/%s", bases, de->d_name);
        _cleanup_strv_ char **users = dbx_image_users(paths, path);
        if (users[0] || base_referenced(paths, v, n, path)) continue;
        freed += unlink_base(path);
    }
    if (d) closedir(d);
    image_list_free(v, n);
    struct oci_store *store = NULL;
    _cleanup_free_ char *b2 = NULL;
    uint64_t blobs = 0;
    int r = open_store(paths, &store, &b2, err);
    if (r == 0) r = store_gc(paths, store, &blobs, err);
    if (store) oci_store_free(store);
    if (r < 0) return -1;
    if (ret_freed) *ret_freed = freed + blobs;
    return 0;
}

/* oci/oci-archive.c: image archives.  A `docker save` tarball, an OCI image layout (directory or
 * tar) or a plain rootfs tarball.  Member paths are untrusted: they are normalized and only ever
 * compared with the names the archive's own metadata uses; nothing is extracted by path.  A
 * layout directory is read fd-relative without following symlinks (R4). */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <sys/stat.h>

#include "oci/oci-internal.h"

#define MEMBERS_MAX 65536
#define META_MAX (8u << 20)
#define META_TOTAL_MAX (64u << 20)

/* "./a//b" -> "a/b"; NULL for absolute paths, "..", or empty names. */
static char *member_name(const char *p) {
    if (!p || p[0] == '/') return NULL;
    _cleanup_free_ char *out = dbx_xmalloc(strlen(p) + 1);
    size_t n = 0;
    while (*p) {
        size_t len = strcspn(p, "/");
        if (len == 2 && !strncmp(p, "..", 2)) return NULL;
        if (len && !(len == 1 && p[0] == '.')) {
            if (n) out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
        while (*p == '/')
            p++;
    }
    out[n] = '\0';
    return n ? TAKE_PTR(out) : NULL;
}

static struct archive *tar_open(const char *path, dbx_error **err) {
    struct archive *a = archive_read_new();
    if (!a) dbx_oom_hook();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
        dbx_error_setx(err, EINVAL, "'%s': %s", path, archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    return a;
}

static int dir_is_layout(const char *path, dbx_error **err) {
    _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return dbx_error_set(err, errno, "open '%s'", path);
    struct stat st;
    if (fstatat(dfd, "oci-layout", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        return dbx_error_setx(err, EINVAL, "'%s' is a directory without an oci-layout file", path);
    return 0;
}

int oci_archive_detect(const char *path, enum oci_archive_kind *ret, dbx_error **err) {
    struct stat st;
    if (stat(path, &st) < 0) return dbx_error_set(err, errno, "'%s'", path);
    if (S_ISDIR(st.st_mode)) {
        if (dir_is_layout(path, err) < 0) return -1;
        *ret = OCI_ARCHIVE_LAYOUT;
        return 0;
    }
    struct archive *a = tar_open(path, err);
    if (!a) return -1;
    struct archive_entry *e;
    bool docker = false, layout = false, any = false;
    int r;
    /* ARCHIVE_WARN: a name libarchive cannot convert to the locale (a rootfs tarball's UTF-8
     * names under LC_ALL=C) is still a member; only our two ASCII names matter here. */
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        any = true;
        _cleanup_free_ char *n = member_name(archive_entry_pathname(e));
        if (n && !strcmp(n, "oci-layout")) layout = true;
        if (n && !strcmp(n, "manifest.json")) docker = true;
        if (layout) break;
    }
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN && r != ARCHIVE_EOF && !layout) {
        int rc = dbx_error_setx(err, EINVAL, "'%s': %s", path, archive_error_string(a));
        archive_read_free(a);
        return rc;
    }
    archive_read_free(a);
    if (!any) return dbx_error_setx(err, EINVAL, "'%s': empty or not a tar archive", path);
    *ret = layout ? OCI_ARCHIVE_LAYOUT : docker ? OCI_ARCHIVE_DOCKER : OCI_ARCHIVE_ROOTFS;
    return 0;
}

/* ---- the archive's members, in the store and (metadata) in memory -------------------------- */

struct member {
    char *name;
    char *digest;
    uint64_t size;
    char *data; /* small JSON metadata, else NULL */
};

struct src {
    struct oci_store *s;
    const char *path;
    int dirfd; /* layout directory, or -1 for a tar (its blobs are already in the store) */
    struct member *m;
    size_t nm;
};

static void src_clear(struct src *src) {
    for (size_t i = 0; i < src->nm; i++) {
        free(src->m[i].name);
        free(src->m[i].digest);
        free(src->m[i].data);
    }
    free(src->m);
    if (src->dirfd >= 0) close(src->dirfd);
}

static const struct member *src_member(const struct src *src, const char *name) {
    _cleanup_free_ char *n = member_name(name);
    for (size_t i = 0; n && i < src->nm; i++)
        if (!strcmp(src->m[i].name, n)) return &src->m[i];
    return NULL;
}

/* Is the member a blob named by its digest (blobs/ALG/HEX)?  Then its content must match. */
static char *blob_member_digest(const char *name) {
    if (!dbx_str_has_prefix(name, "blobs/")) return NULL;
    const char *alg = name + 6, *slash = strchr(alg, '/');
    if (!slash) return NULL;
    char *d = dbx_xasprintf("%.*s:%s", (int)(slash - alg), alg, slash + 1);
    if (oci_digest_valid(d)) return d;
    free(d);
    return NULL;
}

static int read_member(struct src *src, struct archive *a, struct archive_entry *e,
                       const char *name, size_t *meta_total, dbx_error **err) {
    _cleanup_free_ char *expect = blob_member_digest(name);
    bool meta = !expect && (strstr(name, ".json") || !strcmp(name, "oci-layout"));
    uint64_t size = (uint64_t)archive_entry_size(e);
    bool keep = meta && size <= META_MAX && *meta_total + size <= META_TOTAL_MAX;
    struct oci_tmpblob tb;
    if (oci_tmpblob_begin(src->s, expect ? expect : "sha256", &tb, err) < 0) return -1;
    _cleanup_free_ char *data = keep ? dbx_xmalloc(size + 1) : NULL;
    size_t dlen = 0;
    char buf[65536];
    int r = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, sizeof(buf));
        if (n < 0) {
            r = dbx_error_setx(err, EINVAL, "'%s': %s", name, archive_error_string(a));
            break;
        }
        if (n == 0) break;
        if (keep && dlen + (size_t)n > size) keep = false;
        if (keep) memcpy(data + dlen, buf, (size_t)n), dlen += (size_t)n;
        if ((r = oci_tmpblob_write(&tb, buf, (size_t)n, err)) < 0) break;
    }
    _cleanup_free_ char *digest = NULL;
    if (r == 0) r = oci_tmpblob_commit(src->s, &tb, expect, &digest, err);
    uint64_t got = tb.size;
    oci_tmpblob_clear(&tb);
    if (r < 0) return dbx_error_wrap(err, "archive member '%s'", name);
    struct member *m = &src->m[src->nm++];
    *m = (struct member){dbx_xstrdup(name), TAKE_PTR(digest), got, NULL};
    if (keep) {
        data[dlen] = '\0';
        m->data = TAKE_PTR(data);
        *meta_total += dlen;
    }
    return 0;
}

/* One pass: every regular member becomes a verified blob (named blobs must match their name);
 * small JSON members are also kept in memory. */
static int tar_load(struct src *src, dbx_error **err) {
    struct archive *a = tar_open(src->path, err);
    if (!a) return -1;
    struct archive_entry *e;
    size_t meta_total = 0;
    int r = 0, hr;
    while ((hr = archive_read_next_header(a, &e)) == ARCHIVE_OK || hr == ARCHIVE_WARN) {
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        _cleanup_free_ char *name = member_name(archive_entry_pathname(e));
        if (!name || src_member(src, name)) continue; /* hostile or duplicate: never used */
        if (src->nm == MEMBERS_MAX) {
            r = dbx_error_setx(err, E2BIG, "'%s': more than %d members", src->path, MEMBERS_MAX);
            break;
        }
        if (src->nm % 64 == 0) src->m = dbx_xrealloc(src->m, (src->nm + 64) * sizeof(*src->m));
        if ((r = read_member(src, a, e, name, &meta_total, err)) < 0) break;
    }
    if (r == 0 && hr != ARCHIVE_EOF)
        r = dbx_error_setx(err, EINVAL, "'%s': %s", src->path, archive_error_string(a));
    archive_read_free(a);
    return r;
}

/* Open blobs/ALG/HEX under a layout directory, one component at a time, no symlinks. */
static int layout_open_blob(int dirfd, const char *digest, dbx_error **err) {
    const char *colon = strchr(digest, ':');
    _cleanup_free_ char *alg = dbx_xstrndup(digest, (size_t)(colon - digest));
    _cleanup_close_ int b = openat(dirfd, "blobs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int d =
        b < 0 ? -1 : openat(b, alg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int fd = d < 0 ? -1 : openat(d, colon + 1, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return dbx_error_set(err, errno, "layout blob '%s'", digest);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return dbx_error_setx(err, EINVAL, "layout blob '%s' is not a regular file", digest);
    }
    return fd;
}

/* Make sure the blob is in the store (copying it from a layout directory, verified). */
static int src_ensure(struct src *src, const char *digest, uint64_t size, dbx_error **err) {
    if (oci_store_has(src->s, digest, size)) return 0;
    if (src->dirfd < 0)
        return dbx_error_setx(err, ENOENT, "blob '%s' (%ju bytes) is not in the archive", digest,
                              (uintmax_t)size);
    _cleanup_close_ int fd = layout_open_blob(src->dirfd, digest, err);
    if (fd < 0) return -1;
    struct oci_ingest ing;
    if (oci_ingest_begin(src->s, digest, size, true, &ing, err) < 0) return -1;
    int r = ing.complete ? 0 : oci_ingest_reset(&ing, err);
    char buf[65536];
    while (r == 0 && !ing.complete) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) r = dbx_error_set(err, errno, "read layout blob '%s'", digest);
        if (n <= 0) break;
        r = oci_ingest_write(&ing, buf, (size_t)n, err);
    }
    if (r == 0) r = oci_ingest_commit(&ing, err);
    oci_ingest_clear(&ing);
    return r;
}

static int src_read(struct src *src, const char *digest, uint64_t size, size_t cap, char **ret,
                    size_t *ret_len, dbx_error **err) {
    if (size > cap) return dbx_error_setx(err, EFBIG, "'%s' is larger than %zu bytes", digest, cap);
    if (src_ensure(src, digest, size, err) < 0) return -1;
    return oci_store_read(src->s, digest, cap, ret, ret_len, err);
}

/* ---- OCI layouts -------------------------------------------------------------------------- */

static bool name_matches(const char *want, const char *have) {
    if (!strcmp(want, have)) return true;
    struct oci_ref a = {0}, b = {0};
    bool eq = false;
    if (oci_ref_parse(want, &a, NULL) == 0 && oci_ref_parse(have, &b, NULL) == 0) {
        _cleanup_free_ char *fa = oci_ref_format(&a), *fb = oci_ref_format(&b);
        eq = !strcmp(fa, fb);
    }
    oci_ref_clear(&a);
    oci_ref_clear(&b);
    return eq;
}

static int pick_entry(const struct oci_manifest *idx, const char *name, size_t *ret,
                      dbx_error **err) {
    if (!name) {
        if (idx->nmanifests == 1) return *ret = 0, 0;
        return dbx_error_setx(err, EINVAL, "the archive holds %zu images: name one",
                              idx->nmanifests);
    }
    for (size_t i = 0; i < idx->nmanifests; i++) {
        const char *rn = idx->manifests[i].ref_name;
        if (rn && (!strcmp(rn, name) || name_matches(name, rn))) return *ret = i, 0;
    }
    return dbx_error_setx(err, ENOENT, "no image named '%s' in the archive", name);
}

static int import_manifest(struct src *src, const char *digest, uint64_t size,
                           const struct oci_platform *plat, struct oci_image *ret, char **ret_index,
                           int depth, dbx_error **err) {
    _cleanup_free_ char *buf = NULL, *cfg = NULL;
    size_t len = 0, cfg_len = 0;
    if (src_read(src, digest, size, OCI_MANIFEST_MAX, &buf, &len, err) < 0) return -1;
    struct oci_manifest m = {0};
    if (oci_manifest_parse(buf, len, NULL, &m, err) < 0) return dbx_error_wrap(err, "'%s'", digest);
    int r = 0;
    if (m.kind == OCI_KIND_INDEX) {
        size_t i = 0;
        if (depth > 0) r = dbx_error_setx(err, EINVAL, "'%s': nested index", digest);
        if (r == 0) r = oci_index_select(&m, plat, &i, err);
        if (r == 0) {
            *ret_index = dbx_xstrdup(digest);
            r = import_manifest(src, m.manifests[i].digest, m.manifests[i].size, plat, ret,
                                ret_index, depth + 1, err);
        }
        oci_manifest_clear(&m);
        return r;
    }
    r = src_read(src, m.config.digest, m.config.size, OCI_CONFIG_MAX, &cfg, &cfg_len, err);
    for (size_t i = 0; r == 0 && i < m.nlayers; i++)
        r = src_ensure(src, m.layers[i].digest, m.layers[i].size, err);
    if (r == 0) r = oci_image_build(digest, &m, cfg, cfg_len, ret, err);
    oci_manifest_clear(&m);
    return r;
}

static int import_layout(struct src *src, const char *name, const struct oci_platform *plat,
                         struct oci_image *ret, dbx_error **err) {
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    const struct member *idxm = src->dirfd < 0 ? src_member(src, "index.json") : NULL;
    if (src->dirfd >= 0) {
        if (dbx_read_file_at(src->dirfd, "index.json", OCI_MANIFEST_MAX, &buf, &len, err) < 0)
            return -1;
    } else if (idxm && idxm->data) {
        buf = dbx_xstrdup(idxm->data);
        len = idxm->size;
    } else {
        return dbx_error_setx(err, EINVAL, "no index.json in the layout");
    }
    struct oci_manifest idx = {0};
    if (oci_manifest_parse(buf, len, OCI_MT_OCI_INDEX, &idx, err) < 0)
        return dbx_error_wrap(err, "index.json");
    size_t i = 0;
    _cleanup_free_ char *index_digest = NULL;
    int r = pick_entry(&idx, name, &i, err);
    if (r == 0)
        r = import_manifest(src, idx.manifests[i].digest, idx.manifests[i].size, plat, ret,
                            &index_digest, 0, err);
    if (r == 0) ret->index_digest = TAKE_PTR(index_digest);
    oci_manifest_clear(&idx);
    return r;
}

/* ---- docker save -------------------------------------------------------------------------- */

static const char *sniff_layer(struct oci_store *s, const char *digest) {
    unsigned char m[4] = {0};
    _cleanup_close_ int fd = -EBADF;
    if (oci_store_open_blob(s, digest, &fd, NULL) == 0 && read(fd, m, 4) == 4) {
        if (m[0] == 0x1f && m[1] == 0x8b) return OCI_MT_OCI_LAYER_GZIP;
        if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
            return OCI_MT_OCI_LAYER_ZSTD;
    }
    return OCI_MT_OCI_LAYER;
}

static json_t *desc_json(const char *mt, const char *digest, uint64_t size) {
    return json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", digest, "size",
                     (json_int_t)size);
}

static int docker_pick(json_t *list, const char *name, json_t **ret, dbx_error **err) {
    if (!json_is_array(list) || json_array_size(list) == 0)
        return dbx_error_setx(err, EINVAL, "manifest.json: not a non-empty array");
    if (!name) {
        if (json_array_size(list) != 1)
            return dbx_error_setx(err, EINVAL, "the archive holds %zu images: name one",
                                  json_array_size(list));
        *ret = json_array_get(list, 0);
        return 0;
    }
    size_t i, k;
    json_t *e, *t;
    json_array_foreach(list, i, e) {
        json_array_foreach(json_object_get(e, "RepoTags"), k, t) {
            if (json_is_string(t) && name_matches(name, json_string_value(t))) {
                *ret = e;
                return 0;
            }
        }
    }
    return dbx_error_setx(err, ENOENT, "no image named '%s' in the archive", name);
}

/* Turn manifest.json's entry into an OCI manifest over the stored members. */
static int docker_manifest(struct src *src, json_t *entry, char **ret_json, dbx_error **err) {
    const char *cfgname = json_string_value(json_object_get(entry, "Config"));
    json_t *layers = json_object_get(entry, "Layers");
    const struct member *cfg = cfgname ? src_member(src, cfgname) : NULL;
    if (!cfg) return dbx_error_setx(err, EINVAL, "manifest.json: config not in the archive");
    if (!json_is_array(layers) || json_array_size(layers) > OCI_LAYERS_MAX)
        return dbx_error_setx(err, EINVAL, "manifest.json: bad 'Layers'");
    json_t *ls = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l) {
        const struct member *m = json_is_string(l) ? src_member(src, json_string_value(l)) : NULL;
        if (!m) {
            json_decref(ls);
            return dbx_error_setx(err, EINVAL, "manifest.json: layer %zu not in the archive", i);
        }
        json_array_append_new(ls, desc_json(sniff_layer(src->s, m->digest), m->digest, m->size));
    }
    json_t *o =
        json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType", OCI_MT_OCI_MANIFEST,
                  "config", desc_json(OCI_MT_OCI_CONFIG, cfg->digest, cfg->size), "layers", ls);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) dbx_oom_hook();
    *ret_json = s;
    return 0;
}

static int import_docker(struct src *src, const char *name, const struct oci_platform *plat,
                         struct oci_image *ret, dbx_error **err) {
    const struct member *mj = src_member(src, "manifest.json");
    if (!mj || !mj->data) return dbx_error_setx(err, EINVAL, "no usable manifest.json");
    json_error_t je;
    json_t *list = json_loads(mj->data, JSON_REJECT_DUPLICATES, &je);
    if (!list)
        return dbx_error_setx(err, EINVAL, "manifest.json:%d:%d: %s", je.line, je.column, je.text);
    json_t *entry = NULL;
    _cleanup_free_ char *mjson = NULL;
    int r = docker_pick(list, name, &entry, err);
    if (r == 0) r = docker_manifest(src, entry, &mjson, err);
    json_decref(list);
    if (r < 0) return r;
    _cleanup_free_ char *digest = oci_digest_sha256(mjson, strlen(mjson));
    if (oci_store_put(src->s, digest, mjson, strlen(mjson), err) < 0) return -1;
    return import_manifest(src, digest, strlen(mjson), plat, ret, &(char *){NULL}, 1, err);
}

int oci_archive_import(struct oci_store *s, const char *path, const char *name,
                       const struct oci_platform *plat, struct oci_image *ret, dbx_error **err) {
    enum oci_archive_kind kind;
    if (oci_archive_detect(path, &kind, err) < 0) return -1;
    if (kind == OCI_ARCHIVE_ROOTFS)
        return dbx_error_setx(err, EINVAL, "'%s' is a plain rootfs tarball, not an image archive",
                              path);
    struct oci_platform host = {0};
    if (!plat) {
        oci_platform_host(&host);
        plat = &host;
    }
    _cleanup_close_ int lock = -EBADF;
    struct src src = {.s = s, .path = path, .dirfd = -1};
    struct oci_image img = {0};
    struct stat st;
    int r = oci_store_lock(s, false, &lock, err);
    if (r == 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        src.dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (src.dirfd < 0) r = dbx_error_set(err, errno, "open '%s'", path);
    } else if (r == 0) {
        r = tar_load(&src, err);
    }
    if (r == 0 && kind == OCI_ARCHIVE_LAYOUT) r = import_layout(&src, name, plat, &img, err);
    if (r == 0 && kind == OCI_ARCHIVE_DOCKER) r = import_docker(&src, name, plat, &img, err);
    src_clear(&src);
    oci_platform_clear(&host);
    if (r < 0) {
        oci_image_clear(&img);
        return dbx_error_wrap(err, "import '%s'", path);
    }
    *ret = img;
    return 0;
}

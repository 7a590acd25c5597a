/* oci/oci-manifest.c: manifests, indexes and image configs, parsed strictly (duplicate keys
 * rejected, known media types only, caps on sizes and counts) into typed structs: no json_t
 * leaves this file. */
#define _GNU_SOURCE
#include <jansson.h>

#include "oci/oci-internal.h"

static void json_decref_p(json_t **j) {
    if (*j) json_decref(*j);
}
#define _cleanup_json_ _cleanup_(json_decref_p)

static json_t *parse_json(const char *buf, size_t len, size_t cap, const char *what,
                          dbx_error **err) {
    if (len > cap) {
        dbx_error_setx(err, EFBIG, "%s is larger than %zu bytes", what, cap);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        dbx_error_setx(err, EINVAL, "%s:%d:%d: %s", what, je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        dbx_error_setx(err, EINVAL, "%s: not a JSON object", what);
        return NULL;
    }
    return j;
}

/* Optional string member: NULL when absent; error when present with another type. */
static int get_str(json_t *o, const char *key, const char *what, const char **ret,
                   dbx_error **err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *ret = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return dbx_error_setx(err, EINVAL, "%s: '%s' is not a string", what, key);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return dbx_error_setx(err, EINVAL, "%s: '%s' contains a NUL byte", what, key);
    *ret = json_string_value(v);
    return 0;
}

static bool is_manifest_mt(const char *mt) {
    return !strcmp(mt, OCI_MT_OCI_MANIFEST) || !strcmp(mt, OCI_MT_DOCKER_MANIFEST);
}
static bool is_index_mt(const char *mt) {
    return !strcmp(mt, OCI_MT_OCI_INDEX) || !strcmp(mt, OCI_MT_DOCKER_LIST);
}

bool oci_layer_media_type_known(const char *mt) {
    static const char *const known[] = {OCI_MT_OCI_LAYER, OCI_MT_OCI_LAYER_GZIP,
                                        OCI_MT_OCI_LAYER_ZSTD, OCI_MT_DOCKER_LAYER,
                                        "application/vnd.docker.image.rootfs.diff.tar"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(known); i++)
        if (!strcmp(mt, known[i])) return true;
    return false;
}

void oci_desc_clear(struct oci_desc *d) {
    if (!d) return;
    free(d->media_type);
    free(d->digest);
    free(d->ref_name);
    oci_platform_clear(&d->platform);
    *d = (struct oci_desc){0};
}

void oci_manifest_clear(struct oci_manifest *m) {
    if (!m) return;
    free(m->media_type);
    oci_desc_clear(&m->config);
    for (size_t i = 0; i < m->nlayers; i++)
        oci_desc_clear(&m->layers[i]);
    free(m->layers);
    for (size_t i = 0; i < m->nmanifests; i++)
        oci_desc_clear(&m->manifests[i]);
    free(m->manifests);
    *m = (struct oci_manifest){0};
}

static int parse_platform(json_t *o, const char *what, struct oci_desc *d, dbx_error **err) {
    json_t *p = json_object_get(o, "platform");
    if (!p) return 0;
    if (!json_is_object(p))
        return dbx_error_setx(err, EINVAL, "%s: 'platform' is not an object", what);
    const char *os, *arch, *variant;
    if (get_str(p, "os", what, &os, err) < 0 || get_str(p, "architecture", what, &arch, err) < 0 ||
        get_str(p, "variant", what, &variant, err) < 0)
        return -EINVAL;
    if (!os || !arch || strlen(os) > 64 || strlen(arch) > 64 || (variant && strlen(variant) > 64))
        return 0; /* unusable platform: the entry simply never matches */
    d->platform = (struct oci_platform){dbx_xstrdup(os), dbx_xstrdup(arch),
                                        variant && *variant ? dbx_xstrdup(variant) : NULL};
    d->has_platform = true;
    return 0;
}

static int parse_desc(json_t *o, const char *what, struct oci_desc *d, dbx_error **err) {
    if (!json_is_object(o))
        return dbx_error_setx(err, EINVAL, "%s: descriptor is not an object", what);
    const char *mt, *digest;
    if (get_str(o, "mediaType", what, &mt, err) < 0 || get_str(o, "digest", what, &digest, err) < 0)
        return -EINVAL;
    if (!mt) return dbx_error_setx(err, EINVAL, "%s: descriptor without mediaType", what);
    if (!digest || !oci_digest_valid(digest))
        return dbx_error_setx(err, EINVAL, "%s: descriptor with an invalid digest", what);
    json_t *size = json_object_get(o, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0 ||
        (uint64_t)json_integer_value(size) > OCI_LAYER_SIZE_MAX)
        return dbx_error_setx(err, EINVAL, "%s: descriptor '%s' has an invalid size", what, digest);
    /* foreign layers would make us fetch from wherever the manifest says */
    if (json_object_get(o, "urls"))
        return dbx_error_setx(err, EINVAL,
                              "%s: descriptor '%s' has urls (foreign layers are not "
                              "supported)",
                              what, digest);
    d->media_type = dbx_xstrndup(mt, 255);
    d->digest = dbx_xstrdup(digest);
    d->size = (uint64_t)json_integer_value(size);
    json_t *ann = json_object_get(o, "annotations");
    const char *name = NULL;
    if (json_is_object(ann) &&
        get_str(ann, "org.opencontainers.image.ref.name", what, &name, err) < 0)
        return -EINVAL;
    if (name) d->ref_name = dbx_xstrndup(name, 512);
    return parse_platform(o, what, d, err);
}

static int parse_desc_array(json_t *a, const char *what, const char *key, size_t max,
                            struct oci_desc **ret, size_t *ret_n, dbx_error **err) {
    if (!json_is_array(a))
        return dbx_error_setx(err, EINVAL, "%s: '%s' is not an array", what, key);
    size_t n = json_array_size(a);
    if (n > max) return dbx_error_setx(err, E2BIG, "%s: more than %zu %s", what, max, key);
    struct oci_desc *d = dbx_xcalloc(n ? n : 1, sizeof(*d));
    for (size_t i = 0; i < n; i++) {
        if (parse_desc(json_array_get(a, i), what, &d[i], err) < 0) {
            for (size_t k = 0; k <= i; k++)
                oci_desc_clear(&d[k]);
            free(d);
            return -EINVAL;
        }
    }
    *ret = d;
    *ret_n = n;
    return 0;
}

/* The media type from the document, or else from Content-Type, or else from its shape; the
 * two declarations must agree when both are present. */
static int manifest_kind(json_t *j, const char *content_type, const char *what, char **ret_mt,
                         dbx_error **err) {
    const char *body_mt;
    if (get_str(j, "mediaType", what, &body_mt, err) < 0) return -EINVAL;
    _cleanup_free_ char *ct = NULL;
    if (content_type) {
        ct = dbx_xstrdup(content_type);
        ct[strcspn(ct, "; \t")] = '\0';
        if (!is_manifest_mt(ct) && !is_index_mt(ct)) {
            free(ct);
            ct = NULL; /* application/json, octet-stream, ...: let the body decide */
        }
    }
    if (body_mt && ct && strcmp(body_mt, ct))
        return dbx_error_setx(err, EINVAL, "%s: mediaType '%s' does not match Content-Type '%s'",
                              what, body_mt, ct);
    const char *mt = body_mt ? body_mt : ct;
    bool has_layers = json_object_get(j, "layers") != NULL;
    bool has_manifests = json_object_get(j, "manifests") != NULL;
    if (has_layers && has_manifests)
        return dbx_error_setx(err, EINVAL, "%s: both 'layers' and 'manifests'", what);
    if (!mt) mt = has_manifests ? OCI_MT_OCI_INDEX : OCI_MT_OCI_MANIFEST;
    if (!is_manifest_mt(mt) && !is_index_mt(mt))
        return dbx_error_setx(err, EINVAL, "%s: unsupported media type '%.100s'", what, mt);
    if ((is_manifest_mt(mt) && has_manifests) || (is_index_mt(mt) && has_layers))
        return dbx_error_setx(err, EINVAL, "%s: content does not match media type '%s'", what, mt);
    *ret_mt = dbx_xstrdup(mt);
    return 0;
}

int oci_manifest_parse(const char *buf, size_t len, const char *content_type,
                       struct oci_manifest *ret, dbx_error **err) {
    const char *what = "manifest";
    _cleanup_json_ json_t *j = parse_json(buf, len, OCI_MANIFEST_MAX, what, err);
    if (!j) return -EINVAL;
    json_t *sv = json_object_get(j, "schemaVersion");
    if (!json_is_integer(sv) || json_integer_value(sv) != 2)
        return dbx_error_setx(err, EINVAL, "%s: schemaVersion is not 2", what);
    struct oci_manifest m = {0};
    if (manifest_kind(j, content_type, what, &m.media_type, err) < 0) return -EINVAL;
    int r;
    if (is_index_mt(m.media_type)) {
        m.kind = OCI_KIND_INDEX;
        r = parse_desc_array(json_object_get(j, "manifests"), what, "manifests",
                             OCI_INDEX_ENTRIES_MAX, &m.manifests, &m.nmanifests, err);
    } else {
        m.kind = OCI_KIND_MANIFEST;
        r = parse_desc(json_object_get(j, "config"), what, &m.config, err);
        if (r == 0 && strcmp(m.config.media_type, OCI_MT_OCI_CONFIG) &&
            strcmp(m.config.media_type, OCI_MT_DOCKER_CONFIG))
            r = dbx_error_setx(err, EINVAL, "%s: unsupported config media type '%s'", what,
                               m.config.media_type);
        if (r == 0 && m.config.size > OCI_CONFIG_MAX)
            r = dbx_error_setx(err, EFBIG, "%s: config is larger than %u bytes", what,
                               OCI_CONFIG_MAX);
        if (r == 0)
            r = parse_desc_array(json_object_get(j, "layers"), what, "layers", OCI_LAYERS_MAX,
                                 &m.layers, &m.nlayers, err);
        for (size_t i = 0; r == 0 && i < m.nlayers; i++)
            if (!oci_layer_media_type_known(m.layers[i].media_type))
                r = dbx_error_setx(err, EINVAL, "%s: layer %zu has unsupported media type '%s'",
                                   what, i, m.layers[i].media_type);
    }
    if (r < 0) {
        oci_manifest_clear(&m);
        return r;
    }
    *ret = m;
    return 0;
}

int oci_index_select(const struct oci_manifest *idx, const struct oci_platform *want, size_t *ret,
                     dbx_error **err) {
    for (size_t i = 0; i < idx->nmanifests; i++) {
        const struct oci_desc *d = &idx->manifests[i];
        if (d->has_platform && is_manifest_mt(d->media_type) &&
            oci_platform_match(want, &d->platform)) {
            *ret = i;
            return 0;
        }
    }
    /* say what there is, so the user can pick with --platform */
    _cleanup_free_ char *have = dbx_xstrdup("");
    for (size_t i = 0; i < idx->nmanifests && i < 16; i++) {
        const struct oci_desc *d = &idx->manifests[i];
        if (!d->has_platform || !is_manifest_mt(d->media_type) ||
            !strcmp(d->platform.os, "unknown"))
            continue; /* attestation manifests */
        struct oci_platform norm = {0};
        oci_platform_copy(&d->platform, &norm);
        oci_platform_normalize(&norm);
        _cleanup_free_ char *p = oci_platform_format(&norm);
        oci_platform_clear(&norm);
        char *n = dbx_xasprintf("%s%s%s", have, *have ? ", " : "", p);
        free(have);
        have = n;
    }
    _cleanup_free_ char *w = oci_platform_format(want);
    return dbx_error_setx(err, ENOENT, "no image for platform %s in the index (it has: %s)", w,
                          *have ? have : "nothing usable");
}

static int get_strv(json_t *o, const char *key, const char *what, char ***v, dbx_error **err) {
    json_t *a = json_object_get(o, key);
    if (!a || json_is_null(a)) return 0;
    if (!json_is_array(a))
        return dbx_error_setx(err, EINVAL, "%s: '%s' is not an array", what, key);
    if (json_array_size(a) > OCI_ENV_MAX)
        return dbx_error_setx(err, E2BIG, "%s: '%s' too long", what, key);
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
        if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e))
            return dbx_error_setx(err, EINVAL, "%s: '%s' has a non-string entry", what, key);
        *v = dbx_strv_push(*v, json_string_value(e));
    }
    return 0;
}

static int config_parse(const char *buf, size_t len, struct oci_image *img, size_t *ret_ndiff,
                        dbx_error **err) {
    const char *what = "image config";
    _cleanup_json_ json_t *j = parse_json(buf, len, OCI_CONFIG_MAX, what, err);
    if (!j) return -EINVAL;
    const char *os, *arch, *variant, *created;
    if (get_str(j, "os", what, &os, err) < 0 || get_str(j, "architecture", what, &arch, err) < 0 ||
        get_str(j, "variant", what, &variant, err) < 0 ||
        get_str(j, "created", what, &created, err) < 0)
        return -EINVAL;
    if (!os || !arch || !*os || !*arch || strlen(os) > 64 || strlen(arch) > 64)
        return dbx_error_setx(err, EINVAL, "%s: missing os or architecture", what);
    img->platform = (struct oci_platform){dbx_xstrdup(os), dbx_xstrdup(arch),
                                          variant && *variant ? dbx_xstrndup(variant, 64) : NULL};
    oci_platform_normalize(&img->platform);
    if (created) img->created = dbx_xstrndup(created, 64);
    img->env = dbx_xcalloc(1, sizeof(char *));
    img->cmd = dbx_xcalloc(1, sizeof(char *));
    json_t *c = json_object_get(j, "config");
    if (c && !json_is_null(c)) {
        if (!json_is_object(c))
            return dbx_error_setx(err, EINVAL, "%s: 'config' is not an object", what);
        const char *user, *wd;
        if (get_str(c, "User", what, &user, err) < 0 ||
            get_str(c, "WorkingDir", what, &wd, err) < 0 ||
            get_strv(c, "Env", what, &img->env, err) < 0 ||
            get_strv(c, "Entrypoint", what, &img->cmd, err) < 0 ||
            get_strv(c, "Cmd", what, &img->cmd, err) < 0)
            return -EINVAL;
        if (user && *user) img->user = dbx_xstrdup(user);
        if (wd && *wd) img->workdir = dbx_xstrdup(wd);
    }
    json_t *rootfs = json_object_get(j, "rootfs");
    json_t *diff = json_is_object(rootfs) ? json_object_get(rootfs, "diff_ids") : NULL;
    if (!json_is_array(diff)) return dbx_error_setx(err, EINVAL, "%s: no rootfs.diff_ids", what);
    *ret_ndiff = json_array_size(diff);
    return 0;
}

int oci_image_build(const char *manifest_digest, const struct oci_manifest *m, const char *config,
                    size_t config_len, struct oci_image *ret, dbx_error **err) {
    if (m->kind != OCI_KIND_MANIFEST)
        return dbx_error_setx(err, EINVAL, "'%s' is an index, not an image manifest",
                              manifest_digest);
    struct oci_image img = {0};
    size_t ndiff = 0;
    if (config_parse(config, config_len, &img, &ndiff, err) < 0) {
        oci_image_clear(&img);
        return -EINVAL;
    }
    if (ndiff != m->nlayers) {
        oci_image_clear(&img);
        return dbx_error_setx(err, EINVAL, "image config lists %zu layers, the manifest %zu", ndiff,
                              m->nlayers);
    }
    img.manifest_digest = dbx_xstrdup(manifest_digest);
    img.config_digest = dbx_xstrdup(m->config.digest);
    img.nlayers = m->nlayers;
    img.layers = dbx_xcalloc(m->nlayers ? m->nlayers : 1, sizeof(*img.layers));
    for (size_t i = 0; i < m->nlayers; i++) {
        img.layers[i] = (struct oci_layer){dbx_xstrdup(m->layers[i].digest),
                                           dbx_xstrdup(m->layers[i].media_type), m->layers[i].size};
        img.size += m->layers[i].size;
    }
    *ret = img;
    return 0;
}

void oci_image_clear(struct oci_image *img) {
    if (!img) return;
    free(img->manifest_digest);
    free(img->index_digest);
    free(img->config_digest);
    free(img->created);
    oci_platform_clear(&img->platform);
    for (size_t i = 0; i < img->nlayers; i++) {
        free(img->layers[i].digest);
        free(img->layers[i].media_type);
    }
    free(img->layers);
    dbx_strv_free(img->env);
    free(img->user);
    free(img->workdir);
    dbx_strv_free(img->cmd);
    *img = (struct oci_image){0};
}

static json_t *strv_json(char *const *v) {
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *str_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

char *oci_image_to_json(const struct oci_image *img) {
    json_t *o = json_object();
    json_object_set_new(o, "manifest_digest", str_or_null(img->manifest_digest));
    json_object_set_new(o, "index_digest", str_or_null(img->index_digest));
    json_object_set_new(o, "config_digest", str_or_null(img->config_digest));
    _cleanup_free_ char *plat = img->platform.os ? oci_platform_format(&img->platform) : NULL;
    json_object_set_new(o, "platform", str_or_null(plat));
    json_object_set_new(o, "created", str_or_null(img->created));
    json_object_set_new(o, "size", json_integer((json_int_t)img->size));
    json_t *cfg = json_object();
    json_object_set_new(cfg, "env", strv_json(img->env));
    json_object_set_new(cfg, "user", str_or_null(img->user));
    json_object_set_new(cfg, "workdir", str_or_null(img->workdir));
    json_object_set_new(cfg, "cmd", strv_json(img->cmd));
    json_object_set_new(o, "config", cfg);
    json_t *layers = json_array();
    for (size_t i = 0; i < img->nlayers; i++) {
        json_t *l = json_object();
        json_object_set_new(l, "digest", json_string(img->layers[i].digest));
        json_object_set_new(l, "media_type", json_string(img->layers[i].media_type));
        json_object_set_new(l, "size", json_integer((json_int_t)img->layers[i].size));
        json_array_append_new(layers, l);
    }
    json_object_set_new(o, "layers", layers);
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!s) dbx_oom_hook();
    return s; /* jansson allocates with malloc: the caller frees it with free() */
}

/* oci/oci-pull.c: pull an image: resolve the tag (index -> platform manifest), fetch and verify
 * manifest and config, then download the layers on a helper thread while this thread hands
 * completed layers, in order, to the caller's layer_ready (so unpacking overlaps downloading). */
#define _GNU_SOURCE
#include <pthread.h>

#include "oci/oci-internal.h"

#define PARALLEL 3

/* GET a manifest by tag or digest and check what it hashes to.  By digest: it must hash to that
 * digest.  By tag: the digest we record is the one we computed; a Docker-Content-Digest header
 * that disagrees is an error. */
static int fetch_manifest(struct oci_client *c, struct oci_store *s, const char *reference,
                          uint64_t size, struct oci_manifest *ret, char **ret_digest,
                          dbx_error **err) {
    _cleanup_free_ char *buf = NULL, *ct = NULL, *hdr = NULL, *digest = NULL;
    size_t len = 0;
    if (oci_client_get_manifest(c, reference, &buf, &len, &ct, &hdr, err) < 0) return -1;
    if (size != UINT64_MAX && len != size)
        return dbx_error_setx(err, EIO, "manifest '%s' is %zu bytes, not the %ju the index says",
                              reference, len, (uintmax_t)size);
    if (oci_digest_valid(reference)) {
        if (!oci_digest_matches(buf, len, reference))
            return dbx_error_setx(err, EIO,
                                  "manifest '%s': digest mismatch (the content hashes "
                                  "to something else)",
                                  reference);
        digest = dbx_xstrdup(reference);
    } else {
        digest = oci_digest_sha256(buf, len);
        if (hdr && oci_digest_valid(hdr) && !oci_digest_matches(buf, len, hdr))
            return dbx_error_setx(err, EIO,
                                  "manifest '%s': Docker-Content-Digest '%s' does not "
                                  "match the content",
                                  reference, hdr);
    }
    if (oci_manifest_parse(buf, len, ct, ret, err) < 0)
        return dbx_error_wrap(err, "manifest '%s'", reference);
    if (oci_store_put(s, digest, buf, len, err) < 0) {
        oci_manifest_clear(ret);
        return -1;
    }
    *ret_digest = TAKE_PTR(digest);
    return 0;
}

static int fetch_config(struct oci_client *c, struct oci_store *s, const struct oci_desc *d,
                        char **ret, size_t *ret_len, dbx_error **err) {
    if (oci_store_has(s, d->digest, d->size))
        return oci_store_read(s, d->digest, OCI_CONFIG_MAX, ret, ret_len, err);
    if (oci_client_get_blob_mem(c, d->digest, d->size, OCI_CONFIG_MAX, ret, ret_len, err) < 0)
        return dbx_error_wrap(err, "config");
    return oci_store_put(s, d->digest, *ret, *ret_len, err);
}

/* Resolve ref to an image manifest for plat, store manifest(s) and config, describe it. */
static int resolve(struct oci_client *c, struct oci_store *s, const struct oci_ref *ref,
                   const struct oci_platform *plat, struct oci_image *ret, dbx_error **err) {
    struct oci_manifest m = {0};
    _cleanup_free_ char *digest = NULL, *index_digest = NULL;
    if (fetch_manifest(c, s, ref->digest ? ref->digest : ref->tag, UINT64_MAX, &m, &digest, err) <
        0)
        return -1;
    if (m.kind == OCI_KIND_INDEX) {
        size_t i;
        int r = oci_index_select(&m, plat, &i, err);
        _cleanup_free_ char *child = r == 0 ? dbx_xstrdup(m.manifests[i].digest) : NULL;
        uint64_t child_size = r == 0 ? m.manifests[i].size : 0;
        oci_manifest_clear(&m);
        if (r < 0) return -1;
        index_digest = TAKE_PTR(digest);
        if (fetch_manifest(c, s, child, child_size, &m, &digest, err) < 0) return -1;
        if (m.kind != OCI_KIND_MANIFEST) {
            oci_manifest_clear(&m);
            return dbx_error_setx(err, EINVAL, "manifest '%s': nested index", child);
        }
    }
    _cleanup_free_ char *cfg = NULL;
    size_t cfg_len = 0;
    int r = fetch_config(c, s, &m.config, &cfg, &cfg_len, err);
    struct oci_image img = {0};
    if (r == 0) r = oci_image_build(digest, &m, cfg, cfg_len, &img, err);
    if (r == 0 && index_digest && !oci_platform_match(plat, &img.platform)) {
        _cleanup_free_ char *have = oci_platform_format(&img.platform);
        r = dbx_error_setx(err, EINVAL, "image config says platform %s, not the one selected",
                           have);
        oci_image_clear(&img);
    }
    oci_manifest_clear(&m);
    if (r < 0) return -1;
    img.index_digest = TAKE_PTR(index_digest);
    *ret = img;
    return 0;
}

/* ---- layers: a download thread and in-order hand-over ------------------------------------- */

struct pull {
    struct oci_client *c;
    struct oci_store *s;
    struct oci_fetch *f;
    size_t n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool finished;
    int rc;
    dbx_error *err;
    atomic_bool abort;
};

static void on_change(void *ud) {
    struct pull *p = ud;
    pthread_mutex_lock(&p->mu);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *download_thread(void *ud) {
    struct pull *p = ud;
    dbx_error *e = NULL;
    int r = oci_client_fetch_blobs(p->c, p->s, p->f, p->n, PARALLEL, on_change, p, &p->abort, &e);
    pthread_mutex_lock(&p->mu);
    p->rc = r;
    p->err = e;
    p->finished = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Call layer_ready for every newly complete prefix layer and progress for changes. */
static int hand_over(struct pull *p, const struct oci_pull_cb *cb, size_t *next, uint64_t *shown,
                     dbx_error **err) {
    for (size_t i = 0; cb && cb->progress && i < p->n; i++) {
        uint64_t d = atomic_load(&p->f[i].done);
        if (d != shown[i]) {
            shown[i] = d;
            cb->progress(cb->userdata, i, d, p->f[i].size);
        }
    }
    while (*next < p->n && atomic_load(&p->f[*next].state) == OCI_FETCH_DONE) {
        if (cb && cb->layer_ready &&
            cb->layer_ready(cb->userdata, *next, p->f[*next].digest, err) < 0)
            return -1;
        (*next)++;
    }
    return 0;
}

static int download_layers(struct oci_client *c, struct oci_store *s, const struct oci_image *img,
                           const struct oci_pull_cb *cb, dbx_error **err) {
    struct pull p = {.c = c, .s = s, .n = img->nlayers};
    p.f = dbx_xcalloc(p.n ? p.n : 1, sizeof(*p.f));
    uint64_t *shown = dbx_xcalloc(p.n ? p.n : 1, sizeof(*shown));
    for (size_t i = 0; i < p.n; i++) {
        p.f[i].digest = img->layers[i].digest;
        p.f[i].size = img->layers[i].size;
        shown[i] = UINT64_MAX;
    }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t t;
    int r = pthread_create(&t, NULL, download_thread, &p);
    if (r != 0) {
        free(p.f);
        free(shown);
        return dbx_error_set(err, r, "start download thread");
    }
    size_t next = 0;
    for (;;) {
        pthread_mutex_lock(&p.mu);
        bool finished = p.finished;
        if (!finished) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&p.cv, &p.mu, &ts);
        }
        pthread_mutex_unlock(&p.mu);
        if (hand_over(&p, cb, &next, shown, err) < 0) {
            atomic_store(&p.abort, true);
            r = -1;
            break;
        }
        if (finished) break;
    }
    pthread_join(t, NULL);
    if (r == 0 && p.rc < 0) {
        if (err) *err = TAKE_PTR(p.err);
        r = -1;
    }
    if (r == 0 && next != p.n) r = hand_over(&p, cb, &next, shown, err);
    dbx_error_free(&p.err);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    free(p.f);
    free(shown);
    return r;
}

int oci_pull(struct oci_store *s, const struct oci_ref *ref, const struct oci_platform *plat,
             const struct oci_auth_config *auth, const struct oci_pull_cb *cb,
             struct oci_image *ret, dbx_error **err) {
    struct oci_platform host = {0};
    if (!plat) {
        oci_platform_host(&host);
        plat = &host;
    }
    _cleanup_close_ int lock = -EBADF;
    struct oci_client *c = NULL;
    struct oci_image img = {0};
    int r = oci_store_lock(s, false, &lock, err);
    if (r == 0) r = oci_client_new(ref->domain, ref->repository, auth, &c, err);
    if (r == 0) r = resolve(c, s, ref, plat, &img, err);
    if (r == 0 && cb && cb->resolved) r = cb->resolved(cb->userdata, &img, err);
    if (r == 0) r = download_layers(c, s, &img, cb, err);
    oci_client_free(c);
    oci_platform_clear(&host);
    if (r < 0) {
        oci_image_clear(&img);
        _cleanup_free_ char *name = oci_ref_format(ref);
        return dbx_error_wrap(err, "pull '%s'", name);
    }
    *ret = img;
    return 0;
}

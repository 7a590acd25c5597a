/* oci/oci-internal.h: what the files of oci/ share and the unit tests reach; not for other
 * modules (they use oci/oci.h). */
#pragma once

#include <openssl/evp.h>
#include <stdatomic.h>

#include "oci/oci.h"

#define OCI_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define OCI_MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define OCI_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define OCI_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define OCI_ACCEPT_MANIFESTS                                                                       \
    OCI_MT_OCI_INDEX ", " OCI_MT_DOCKER_LIST ", " OCI_MT_OCI_MANIFEST ", " OCI_MT_DOCKER_MANIFEST

#define OCI_TOKEN_MAX (1u << 20)
#define OCI_INDEX_ENTRIES_MAX 1024
#define OCI_ENV_MAX 4096

/* ---- ref/platform helpers (oci-ref.c) ----------------------------------------------------- */

/* "registry-1.docker.io" for "docker.io", else domain itself. */
const char *oci_api_host(const char *domain);
/* localhost, 127.0.0.0/8 or [::1], with or without a port. */
bool oci_host_is_loopback(const char *hostport);
/* Same platform, after normalization (arm64 v8 == no variant; a NULL wanted variant matches any
 * variant only when the candidate has none or the architecture's default). */
bool oci_platform_match(const struct oci_platform *want, const struct oci_platform *have);
void oci_platform_normalize(struct oci_platform *p);
int oci_platform_copy(const struct oci_platform *from, struct oci_platform *to);

/* ---- manifests, indexes, configs (oci-manifest.c) ----------------------------------------- */

enum oci_manifest_kind { OCI_KIND_MANIFEST, OCI_KIND_INDEX };

struct oci_desc {
    char *media_type, *digest;
    uint64_t size;
    bool has_platform;
    struct oci_platform platform;
    char *ref_name; /* org.opencontainers.image.ref.name annotation (layouts), or NULL */
};
void oci_desc_clear(struct oci_desc *d);

struct oci_manifest {
    enum oci_manifest_kind kind;
    char *media_type;
    struct oci_desc config;     /* manifests */
    size_t nlayers;             /* manifests */
    struct oci_desc *layers;    /* manifests */
    size_t nmanifests;          /* indexes */
    struct oci_desc *manifests; /* indexes */
};
/* Parse a manifest or index (at most OCI_MANIFEST_MAX bytes, duplicate keys rejected, known media
 * types only).  content_type is the HTTP Content-Type or NULL; when both it and the document's
 * mediaType are given they must agree (CVE-2021-41190). */
int oci_manifest_parse(const char *buf, size_t len, const char *content_type,
                       struct oci_manifest *ret, dbx_error **err);
void oci_manifest_clear(struct oci_manifest *m);
/* Index entry for want (an image manifest, not a nested index); ENOENT names what is there. */
int oci_index_select(const struct oci_manifest *idx, const struct oci_platform *want, size_t *ret,
                     dbx_error **err);
/* Build the image from its manifest and config bytes (config's digest is checked by the caller). */
int oci_image_build(const char *manifest_digest, const struct oci_manifest *m, const char *config,
                    size_t config_len, struct oci_image *ret, dbx_error **err);
bool oci_layer_media_type_known(const char *mt);

/* ---- digests (oci-store.c) ---------------------------------------------------------------- */

/* EVP context for the digest's algorithm ("sha256:..." or "sha512:..."). */
EVP_MD_CTX *oci_hash_new(const char *digest);
/* Finish and compare with digest; true when equal. */
bool oci_hash_check(EVP_MD_CTX *md, const char *digest);
/* "sha256:HEX" of buf (caller frees). */
char *oci_digest_sha256(const void *buf, size_t len);
bool oci_digest_matches(const void *buf, size_t len, const char *digest);

/* ---- store internals (oci-store.c) -------------------------------------------------------- */

/* A blob being written: holds the blob's flock; data goes to ingest/ALG-HEX and is hashed. */
struct oci_ingest {
    struct oci_store *store;
    char *digest;
    uint64_t size; /* expected size, or UINT64_MAX when unknown (checked at commit only) */
    int lock_fd;
    int fd;
    uint64_t offset; /* bytes in the file and in md */
    EVP_MD_CTX *md;
    bool complete; /* the blob was already in the store when the lock was taken */
};
/* Take the blob's lock (wait: block, else EWOULDBLOCK/-EAGAIN when another process holds it)
 * and open its ingest file, resuming: bytes already there are re-hashed.  If the blob is already
 * complete, ing->complete is set and no ingest file is opened. */
int oci_ingest_begin(struct oci_store *s, const char *digest, uint64_t size, bool wait,
                     struct oci_ingest *ing, dbx_error **err);
int oci_ingest_write(struct oci_ingest *ing, const void *buf, size_t len, dbx_error **err);
/* Throw away what was written (the server would not resume). */
int oci_ingest_reset(struct oci_ingest *ing, dbx_error **err);
/* Check size and digest, fsync, rename into blobs/, fsync the directory. */
int oci_ingest_commit(struct oci_ingest *ing, dbx_error **err);
void oci_ingest_clear(struct oci_ingest *ing);
/* Store a verified in-memory blob (manifests, configs). */
int oci_store_put(struct oci_store *s, const char *digest, const void *buf, size_t len,
                  dbx_error **err);
/* Read a complete blob (at most cap bytes) and check its digest again. */
int oci_store_read(struct oci_store *s, const char *digest, size_t cap, char **ret_buf,
                   size_t *ret_len, dbx_error **err);
bool oci_store_has(struct oci_store *s, const char *digest, uint64_t size);
/* The store-wide lock: shared for pulls and imports, exclusive for gc. */
int oci_store_lock(struct oci_store *s, bool exclusive, int *ret_fd, dbx_error **err);

/* ---- network policy (oci-auth.c) ---------------------------------------------------------- */

struct oci_challenge {
    char *scheme; /* "bearer" or "basic", lower case */
    char *realm, *service, *scope;
};
/* Parse the first challenge of a WWW-Authenticate value; -EINVAL when unusable. */
int oci_challenge_parse(const char *hdr, struct oci_challenge *ret);
void oci_challenge_clear(struct oci_challenge *c);
/* May a token be requested from realm for the registry at registry_host ("host[:port]")?
 * plain_ok: the registry itself may be used over plain http.  *ret_basic: basic credentials may
 * be sent to the realm (its host is the registry's, or the Docker Hub pair). */
int oci_realm_check(const char *registry_host, bool plain_ok, const char *realm, bool *ret_basic,
                    dbx_error **err);
/* Follow one redirect from `from` (a URL on or off the registry origin) to `location` (absolute
 * or relative).  origin is "scheme://host[:port]" of the registry.  https only; http only when
 * the target is the registry's own plain-http loopback origin.  *ret_auth: the target is the
 * registry origin, so Authorization may be sent. */
int oci_redirect_check(const char *origin, const char *from, const char *location, char **ret_url,
                       bool *ret_auth, dbx_error **err);
/* Credentials for domain from a docker config.json (path NULL = default location): 1 found,
 * 0 none, < 0 error.  Runs credential helpers. */
int oci_creds_lookup(const char *config_path, const char *domain, char **ret_user,
                     char **ret_secret, dbx_error **err);
/* "scheme://host[:port]" of a URL, lower-cased host (caller frees), or NULL when unparsable. */
char *oci_url_origin(const char *url);
/* Host (no port, no brackets) of a URL, or NULL. */
char *oci_url_host(const char *url);

/* ---- registry client (oci-client.c) ------------------------------------------------------- */

struct oci_client;
int oci_client_new(const char *domain, const char *repository, const struct oci_auth_config *auth,
                   struct oci_client **ret, dbx_error **err);
void oci_client_free(struct oci_client *c);
/* GET /v2/REPO/manifests/REFERENCE into memory (capped); content type returned. */
int oci_client_get_manifest(struct oci_client *c, const char *reference, char **ret_buf,
                            size_t *ret_len, char **ret_content_type, char **ret_digest_hdr,
                            dbx_error **err);
/* GET a small blob into memory (at most cap) and verify its digest and size. */
int oci_client_get_blob_mem(struct oci_client *c, const char *digest, uint64_t size, size_t cap,
                            char **ret_buf, size_t *ret_len, dbx_error **err);

/* One blob to download into the store. */
struct oci_fetch {
    const char *digest;
    uint64_t size;
    _Atomic uint64_t done; /* bytes in the ingest file (progress) */
    _Atomic int state;     /* OCI_FETCH_* */
    /* private to oci_client_fetch_blobs */
    struct oci_ingest ing;
    uint64_t next_try_ms;
};
enum { OCI_FETCH_LOCK, OCI_FETCH_QUEUED, OCI_FETCH_RUNNING, OCI_FETCH_DONE, OCI_FETCH_FAILED };
/* Download n blobs into the store (at most `parallel` at a time; each under its blob lock, so a
 * blob another process is fetching is waited for, not fetched twice), committing each.
 * on_change(ud) is called from this thread after each state change; abort is polled.  Returns
 * < 0 on the first failure or on abort. */
int oci_client_fetch_blobs(struct oci_client *c, struct oci_store *s, struct oci_fetch *f, size_t n,
                           int parallel, void (*on_change)(void *ud), void *ud, atomic_bool *abort,
                           dbx_error **err);

/* ---- blobs of unknown digest (archive import; oci-store.c) -------------------------------- */

/* An unnamed file (O_TMPFILE) in ingest/, hashed while written, linked into blobs/ at commit:
 * a crash leaves nothing behind. */
struct oci_tmpblob {
    int fd;
    EVP_MD_CTX *md;
    uint64_t size;
    char *alg;
};
int oci_tmpblob_begin(struct oci_store *s, const char *alg, struct oci_tmpblob *tb,
                      dbx_error **err);
int oci_tmpblob_write(struct oci_tmpblob *tb, const void *buf, size_t len, dbx_error **err);
/* Finish: the digest is computed (and must equal expect when given) and the blob linked in. */
int oci_tmpblob_commit(struct oci_store *s, struct oci_tmpblob *tb, const char *expect,
                       char **ret_digest, dbx_error **err);
void oci_tmpblob_clear(struct oci_tmpblob *tb);

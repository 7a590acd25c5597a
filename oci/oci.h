/* oci/oci.h: OCI images for devbox: image references, a registry client (Distribution spec v2:
 * Docker schema 2 and OCI manifests and indexes), a content-addressed blob store, and image
 * archives (`docker save`, OCI image layouts).
 *
 * Everything a registry or an archive sends is untrusted: digests are checked for grammar before
 * they name a file or a URL, every blob is hashed while it streams and must match its digest and
 * size exactly, manifests (4 MiB) and configs (8 MiB) are capped and parsed with duplicate keys
 * rejected, and credentials and tokens go only to the registry's own origin.
 *
 * Functions that can fail take `dbx_error **err`, return < 0 on failure with *err set, and set
 * their `ret` out-parameters only on success.  Strings in the structs below are malloc'd and
 * owned by the struct; the *_clear() functions free them, accept zeroed or half-filled structs
 * and leave the struct zeroed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* ---- references and digests --------------------------------------------------------------- */

struct oci_ref {
    char *domain;     /* "docker.io", "ghcr.io", "127.0.0.1:5000", "localhost:5000" */
    char *repository; /* "library/debian" */
    char *tag;        /* NULL when only a digest was given; "latest" when neither */
    char *digest;     /* "sha256:..." or NULL */
};
/* Parse a reference with docker's normalization rules: a first component without '.' or ':'
 * that is not "localhost" is part of the path on docker.io, "index.docker.io" is "docker.io",
 * single-component docker.io names get "library/".  Repositories are lower case; tags are
 * [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; digests must pass oci_digest_valid(). */
int oci_ref_parse(const char *s, struct oci_ref *ret, dbx_error **err);
/* Canonical "docker.io/library/debian:bookworm[@sha256:..]" (caller frees). */
char *oci_ref_format(const struct oci_ref *r);
void oci_ref_clear(struct oci_ref *r);
/* sha256:[0-9a-f]{64} or sha512:[0-9a-f]{128}, nothing else. */
bool oci_digest_valid(const char *digest);

/* ---- platforms ---------------------------------------------------------------------------- */

struct oci_platform {
    char *os, *architecture, *variant; /* variant may be NULL */
};
/* "linux/arm64[/v8]"; architecture aliases are normalized (x86_64 -> amd64, aarch64 -> arm64),
 * arm64's default variant v8 is dropped and 32-bit arm gets v7 when none is given. */
int oci_platform_parse(const char *s, struct oci_platform *ret, dbx_error **err);
/* The platform devbox runs on ("linux/amd64", "linux/arm64", ...). */
void oci_platform_host(struct oci_platform *ret);
/* "os/architecture[/variant]" (caller frees). */
char *oci_platform_format(const struct oci_platform *p);
void oci_platform_clear(struct oci_platform *p);

/* ---- registry access settings -------------------------------------------------------------- */

struct oci_auth_config {       /* from the user's own config only, never from a repo profile */
    const char *docker_config; /* config.json path; NULL = $DOCKER_CONFIG/config.json, else
                                  ~/.docker/config.json (a missing file means no credentials) */
    const char *ca_file;       /* extra CA bundle (PEM) or NULL; the system store is always used */
    char *const *insecure;     /* NULL-terminated "host[:port]" allowed over plain http, or NULL;
                                  loopback registries (localhost, 127.0.0.0/8, [::1]) always are */
};

/* ---- images ------------------------------------------------------------------------------- */

struct oci_layer {
    char *digest;
    char *media_type; /* tar, tar+gzip or tar+zstd (OCI or Docker spelling) */
    uint64_t size;
};
struct oci_image {
    char *manifest_digest; /* the platform's image manifest */
    char *index_digest;    /* what the tag resolved to when it was an index/list, else NULL */
    char *config_digest;
    char *created; /* config "created", or NULL */
    struct oci_platform platform;
    size_t nlayers;
    struct oci_layer *layers;
    char **env;           /* config.Env, NULL-terminated (may be empty) */
    char *user, *workdir; /* config.User / WorkingDir, or NULL */
    char **cmd;           /* Entrypoint+Cmd, informational (NULL-terminated, may be empty) */
    uint64_t size;        /* sum of the layers' sizes */
};
void oci_image_clear(struct oci_image *img);
/* The image as JSON for `devbox image inspect` (config, layers, platform, digests): caller
 * frees.  Strings from the image are JSON-escaped, not sanitized for a terminal. */
char *oci_image_to_json(const struct oci_image *img);

/* Caps on what a registry or an archive may send. */
#define OCI_MANIFEST_MAX (4u << 20)
#define OCI_CONFIG_MAX (8u << 20)
#define OCI_LAYERS_MAX 256
#define OCI_LAYER_SIZE_MAX (64ull << 30)

/* ---- content store ------------------------------------------------------------------------ */

/* Layout: DIR/blobs/sha256/HEX (complete, verified, read-only), DIR/ingest/ALG-HEX (downloads in
 * progress, resumable) and DIR/ingest/ALG-HEX.lock (one flock per blob, so concurrent pulls
 * fetch each blob once), DIR/lock (shared by pulls and imports, exclusive for gc). */
struct oci_store;
/* Open the store at dir, creating it 0700 (and checking an existing one is ours and private). */
int oci_store_open(const char *dir, struct oci_store **ret, dbx_error **err);
void oci_store_free(struct oci_store *s);
/* Take DIR/lock, shared or exclusive, and return its fd (close it to release).  Shared: held
 * by a caller from its pull or import until what it built from the blobs is recorded (the
 * record is what keeps them), so that a gc in between cannot delete them.  Exclusive: held
 * while the caller reads its records and runs oci_store_gc_held, so that the keep list is not
 * older than the records.  flock: never call oci_store_gc while holding either (it waits). */
int oci_store_hold(struct oci_store *s, bool exclusive, int *ret_fd, dbx_error **err);
/* Open a complete blob read-only (digest grammar checked first).  ENOENT when absent. */
int oci_store_open_blob(struct oci_store *s, const char *digest, int *ret_fd, dbx_error **err);
/* Re-read an image from the store by its manifest digest (manifest + config must be there;
 * index_digest is NULL in the result). */
int oci_store_load_image(struct oci_store *s, const char *manifest_digest, struct oci_image *ret,
                         dbx_error **err);
/* Delete every blob not reachable from the given manifests (NULL-terminated digests; their
 * configs and layers and the indexes in keep, with the manifests they list that are present,
 * are kept) and stale ingest files; *ret_freed bytes.  A keep digest that is not in the store is
 * an error and nothing is deleted. */
int oci_store_gc(struct oci_store *s, char *const *keep, uint64_t *ret_freed, dbx_error **err);
/* oci_store_gc for a caller that holds oci_store_hold(s, true, ...). */
int oci_store_gc_held(struct oci_store *s, char *const *keep, uint64_t *ret_freed, dbx_error **err);

/* ---- pull --------------------------------------------------------------------------------- */

/* Every callback runs on the thread that called oci_pull() (downloads run on a helper thread),
 * so they need no locking against each other. */
struct oci_pull_cb {
    void *userdata;
    /* once, before any layer is downloaded; a negative return aborts the pull there */
    int (*resolved)(void *ud, const struct oci_image *img, dbx_error **err);
    void (*progress)(void *ud, size_t layer, uint64_t done, uint64_t total);
    /* Layers 0..layer are all complete in the store: called once per layer, in order, as early
     * as possible (while later layers still download).  A negative return aborts the pull. */
    int (*layer_ready)(void *ud, size_t layer, const char *digest, dbx_error **err);
};
/* Pull ref (tag or digest) for plat (NULL = host) into the store.  cb may be NULL or have NULL
 * members; auth may be NULL (defaults).  On success *ret describes the image (manifest_digest
 * is the digest the bytes hashed to; index_digest what the tag resolved to if it was an
 * index).  On failure nothing partial looks complete: what was verified stays in the store,
 * the rest stays in ingest/ to resume. */
int oci_pull(struct oci_store *s, const struct oci_ref *ref, const struct oci_platform *plat,
             const struct oci_auth_config *auth, const struct oci_pull_cb *cb,
             struct oci_image *ret, dbx_error **err);

/* ---- archives ----------------------------------------------------------------------------- */

enum oci_archive_kind { OCI_ARCHIVE_ROOTFS, OCI_ARCHIVE_DOCKER, OCI_ARCHIVE_LAYOUT };
/* A directory with an `oci-layout` file is a layout; a tar holding `oci-layout` is a layout, one
 * holding `manifest.json` a `docker save` archive; anything else a rootfs tarball.  A file that
 * is not a (possibly compressed) tar at all is an error. */
int oci_archive_detect(const char *path, enum oci_archive_kind *ret, dbx_error **err);
/* Copy a docker-save or OCI-layout image's blobs into the store, verifying every digest (a
 * docker save's layer files become blobs named by their own digest) and describe it.  name picks
 * one image when the archive holds several (RepoTags / org.opencontainers.image.ref.name), NULL
 * = the only one; plat picks from an index (NULL = host).  Archive member paths are untrusted:
 * they are only ever compared with names, never used to open files. */
int oci_archive_import(struct oci_store *s, const char *path, const char *name,
                       const struct oci_platform *plat, struct oci_image *ret, dbx_error **err);

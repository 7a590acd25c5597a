/* tests/fuzz/fuzz-oci-manifest.c: libFuzzer harness for what a registry or an archive sends the
 * oci/ parsers (R15): the bytes are parsed as a manifest/index (with each Content-Type the
 * client may see), as an image config against a fixed manifest, as a WWW-Authenticate header
 * and as an image reference.  Invariants: a parse either succeeds or fails with a one-line
 * message; what parses keeps the contract (valid digests, at most OCI_LAYERS_MAX layers, known
 * layer media types); no leaks or overflows (ASan/UBSan).
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without it a replay main()
 * runs each file (or each file of each directory) named on the command line, so `make unit`
 * replays tests/fuzz/corpus/oci-manifest under gcc. */
#include <dirent.h>
#include <sys/stat.h>

#include "common/common.h"
#include "oci/oci-internal.h"

#include "replay.h"

static const char fixed_manifest[] =
    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MT_OCI_CONFIG "\",\"digest\":"
    "\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"size\":1},"
    "\"layers\":[{\"mediaType\":\"" OCI_MT_OCI_LAYER "\",\"digest\":\"sha256:bbbbbbbbbbbbbbbbbbbb"
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"size\":2}]}";

static void check_err(dbx_error **err) {
    CHECK(*err && (*err)->msg && *(*err)->msg);
    dbx_error_free(err);
}

static void check_manifest(const struct oci_manifest *m) {
    if (m->kind == OCI_KIND_MANIFEST) {
        CHECK(oci_digest_valid(m->config.digest));
        CHECK(m->nlayers <= OCI_LAYERS_MAX);
        for (size_t i = 0; i < m->nlayers; i++) {
            CHECK(oci_digest_valid(m->layers[i].digest));
            CHECK(oci_layer_media_type_known(m->layers[i].media_type));
            CHECK(m->layers[i].size <= OCI_LAYER_SIZE_MAX);
        }
    } else {
        CHECK(m->nmanifests <= OCI_INDEX_ENTRIES_MAX);
        struct oci_platform p = {0};
        oci_platform_host(&p);
        size_t i = 0;
        dbx_error *err = NULL;
        if (oci_index_select(m, &p, &i, &err) == 0)
            CHECK(i < m->nmanifests && oci_digest_valid(m->manifests[i].digest));
        else
            check_err(&err);
        oci_platform_clear(&p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const cts[] = {NULL, OCI_MT_OCI_MANIFEST, OCI_MT_DOCKER_LIST,
                                      "application/json"};
    for (size_t k = 0; k < DBX_ARRAY_SIZE(cts); k++) {
        struct oci_manifest m = {0};
        dbx_error *err = NULL;
        if (oci_manifest_parse((const char *)data, size, cts[k], &m, &err) == 0) {
            CHECK(!err);
            check_manifest(&m);
            oci_manifest_clear(&m);
        } else {
            check_err(&err);
        }
    }
    struct oci_manifest fm = {0};
    CHECK(oci_manifest_parse(fixed_manifest, strlen(fixed_manifest), NULL, &fm, NULL) == 0);
    struct oci_image img = {0};
    dbx_error *err = NULL;
    if (oci_image_build("sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
                        &fm, (const char *)data, size, &img, &err) == 0) {
        CHECK(img.env && img.cmd && img.platform.os && img.nlayers == 1);
        free(oci_image_to_json(&img));
        oci_image_clear(&img);
    } else {
        check_err(&err);
    }
    oci_manifest_clear(&fm);
    /* text parsers: NUL-terminated copies */
    char *s = dbx_xstrndup((const char *)data, size > 4096 ? 4096 : size);
    struct oci_challenge ch = {0};
    if (oci_challenge_parse(s, &ch) == 0) {
        CHECK(ch.scheme);
        bool basic;
        if (ch.realm && oci_realm_check("registry.example:5000", false, ch.realm, &basic, &err) < 0)
            check_err(&err);
        oci_challenge_clear(&ch);
    }
    struct oci_ref ref = {0};
    if (oci_ref_parse(s, &ref, &err) == 0) {
        CHECK(ref.domain && ref.repository && (ref.tag || ref.digest));
        CHECK(!ref.digest || oci_digest_valid(ref.digest));
        char *f = oci_ref_format(&ref);
        struct oci_ref again = {0};
        CHECK(oci_ref_parse(f, &again, NULL) == 0); /* the canonical form parses */
        oci_ref_clear(&again);
        free(f);
        oci_ref_clear(&ref);
    } else {
        check_err(&err);
    }
    free(s);
    return 0;
}

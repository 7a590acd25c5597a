/* tests/unit/test-oci-manifest.c: manifest/index/config parsing (media types, caps, duplicate
 * keys, Content-Type confusion), platform selection from an index, and the image JSON. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "oci/oci-internal.h"

#define DA "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DB "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DC "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

#define MANIFEST(mt, layermt)                                                                      \
    "{\"schemaVersion\":2,\"mediaType\":\"" mt "\",\"config\":{\"mediaType\":\"" OCI_MT_OCI_CONFIG \
    "\",\"digest\":\"" DA "\",\"size\":10},\"layers\":[{\"mediaType\":\"" layermt                  \
    "\",\"digest\":\"" DB "\",\"size\":20}]}"

static int parse(const char *s, const char *ct, struct oci_manifest *m, char **msg) {
    dbx_error *err = NULL;
    int r = oci_manifest_parse(s, strlen(s), ct, m, &err);
    if (r < 0 && msg) *msg = strdup(err->msg);
    dbx_error_free(&err);
    return r;
}

static void test_manifest_ok(void **state) {
    struct oci_manifest m = {0};
    assert_int_equal(parse(MANIFEST(OCI_MT_OCI_MANIFEST, OCI_MT_OCI_LAYER_GZIP), NULL, &m, NULL),
                     0);
    assert_int_equal(m.kind, OCI_KIND_MANIFEST);
    assert_string_equal(m.config.digest, DA);
    assert_int_equal(m.nlayers, 1);
    assert_int_equal(m.layers[0].size, 20);
    oci_manifest_clear(&m);
    /* docker schema 2 with its Content-Type (parameters ignored) */
    assert_int_equal(parse(MANIFEST(OCI_MT_DOCKER_MANIFEST, OCI_MT_DOCKER_LAYER),
                           OCI_MT_DOCKER_MANIFEST "; charset=utf-8", &m, NULL),
                     0);
    oci_manifest_clear(&m);
    /* OCI without mediaType: decided by shape; generic Content-Type ignored */
    const char *nomt = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MT_OCI_CONFIG
                       "\",\"digest\":\"" DA "\",\"size\":1},\"layers\":[]}";
    assert_int_equal(parse(nomt, "application/json", &m, NULL), 0);
    assert_int_equal(m.kind, OCI_KIND_MANIFEST);
    oci_manifest_clear(&m);
}

static void expect_bad(const char *doc, const char *ct, const char *why) {
    struct oci_manifest m = {0};
    char *msg = NULL;
    if (parse(doc, ct, &m, &msg) == 0) fail_msg("accepted: %s", doc);
    if (!strstr(msg, why)) fail_msg("error '%s' lacks '%s'", msg, why);
    assert_null(strchr(msg, '\n'));
    free(msg);
    assert_null(m.media_type);
}

static void test_manifest_bad(void **state) {
    expect_bad(
        MANIFEST(OCI_MT_OCI_MANIFEST, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
        NULL, "unsupported media type");
    expect_bad(MANIFEST("application/vnd.docker.distribution.manifest.v1+json", OCI_MT_OCI_LAYER),
               NULL, "unsupported media type");
    expect_bad(MANIFEST(OCI_MT_OCI_MANIFEST, OCI_MT_OCI_LAYER), OCI_MT_DOCKER_LIST,
               "does not match Content-Type");
    expect_bad("{\"schemaVersion\":2,\"schemaVersion\":2}", NULL, "duplicate object key");
    expect_bad("{\"schemaVersion\":1}", NULL, "schemaVersion");
    expect_bad("[]", NULL, "not a JSON object");
    expect_bad("{\"schemaVersion\":2,\"layers\":[],\"manifests\":[]}", NULL, "both");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX "\",\"layers\":[]}", NULL,
               "does not match media type");
    expect_bad("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MT_OCI_CONFIG
               "\",\"digest\":\"sha256:../../etc/passwd\",\"size\":1},\"layers\":[]}",
               NULL, "invalid digest");
    expect_bad("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MT_OCI_CONFIG
               "\",\"digest\":\"" DA "\",\"size\":-1},\"layers\":[]}",
               NULL, "invalid size");
    expect_bad("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MT_OCI_CONFIG
               "\",\"digest\":\"" DA "\",\"size\":99999999},\"layers\":[]}",
               NULL, "config is larger");
    expect_bad("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MT_OCI_CONFIG
               "\",\"digest\":\"" DA "\",\"size\":1},\"layers\":[{\"mediaType\":\"" OCI_MT_OCI_LAYER
               "\",\"digest\":\"" DB "\",\"size\":1,\"urls\":[\"http://x\"]}]}",
               NULL, "foreign layers");
    /* too many layers */
    size_t cap = 300 * 200 + 4096, n = 0;
    char *big = malloc(cap);
    n += (size_t)sprintf(big + n,
                         "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"%s\",\"digest\":"
                         "\"%s\",\"size\":1},\"layers\":[",
                         OCI_MT_OCI_CONFIG, DA);
    for (int i = 0; i < 300; i++)
        n += (size_t)sprintf(big + n, "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1}",
                             i ? "," : "", OCI_MT_OCI_LAYER, DB);
    sprintf(big + n, "]}");
    expect_bad(big, NULL, "more than 256 layers");
    free(big);
    /* over the size cap, whatever it contains */
    char *huge = calloc(1, OCI_MANIFEST_MAX + 2);
    memset(huge, ' ', OCI_MANIFEST_MAX + 1);
    expect_bad(huge, NULL, "larger than");
    free(huge);
}

#define ENTRY(d, os, arch, variant)                                                                \
    "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"" d "\",\"size\":5,\"platform\":{"    \
    "\"os\":\"" os "\",\"architecture\":\"" arch "\"" variant "}}"

static void test_index_select(void **state) {
    const char *idx =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX
        "\",\"manifests\":[" ENTRY(DA, "linux", "amd64", "") "," ENTRY(
            DB, "linux", "arm64",
            ",\"variant\":\"v8\"") "," ENTRY(DC, "linux", "arm",
                                             ",\"variant\":\"v7\"") ","
                                                                    "{\"mediaType\":"
                                                                    "\"" OCI_MT_OCI_MANIFEST
                                                                    "\",\"digest\":\"" DC
                                                                    "\",\"size\":5,"
                                                                    "\"platform\":{\"os\":"
                                                                    "\"unknown\",\"architecture\":"
                                                                    "\"unknown\"}}]}";
    struct oci_manifest m = {0};
    assert_int_equal(parse(idx, OCI_MT_OCI_INDEX, &m, NULL), 0);
    assert_int_equal(m.kind, OCI_KIND_INDEX);
    assert_int_equal(m.nmanifests, 4);
    static const struct {
        const char *want;
        size_t i;
    } cases[] = {{"linux/amd64", 0},    {"linux/x86_64", 0}, {"linux/arm64", 1},
                 {"linux/arm64/v8", 1}, {"linux/arm", 2},    {"linux/arm/v7", 2}};
    for (size_t k = 0; k < DBX_ARRAY_SIZE(cases); k++) {
        struct oci_platform p = {0};
        size_t i = 99;
        assert_int_equal(oci_platform_parse(cases[k].want, &p, NULL), 0);
        assert_int_equal(oci_index_select(&m, &p, &i, NULL), 0);
        assert_int_equal(i, cases[k].i);
        oci_platform_clear(&p);
    }
    struct oci_platform p = {0};
    dbx_error *err = NULL;
    size_t i = 99;
    assert_int_equal(oci_platform_parse("linux/arm/v6", &p, NULL), 0);
    assert_true(oci_index_select(&m, &p, &i, &err) < 0);
    assert_int_equal(i, 99);
    assert_non_null(strstr(err->msg, "linux/amd64, linux/arm64, linux/arm/v7"));
    dbx_error_free(&err);
    oci_platform_clear(&p);
    oci_manifest_clear(&m);
}

static const char config[] =
    "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\",\"created\":\"2024-01-01T00:"
    "00:00Z\","
    "\"config\":{\"Env\":[\"PATH=/bin\",\"A=b\"],\"User\":\"1000\",\"WorkingDir\":\"/w\","
    "\"Entrypoint\":[\"/e\"],\"Cmd\":[\"c\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DC
    "\"]}}";

static void test_image_build(void **state) {
    struct oci_manifest m = {0};
    assert_int_equal(parse(MANIFEST(OCI_MT_OCI_MANIFEST, OCI_MT_OCI_LAYER_ZSTD), NULL, &m, NULL),
                     0);
    struct oci_image img = {0};
    dbx_error *err = NULL;
    assert_int_equal(oci_image_build(DC, &m, config, strlen(config), &img, &err), 0);
    assert_string_equal(img.platform.architecture, "arm64");
    assert_null(img.platform.variant); /* v8 is arm64's default */
    assert_string_equal(img.env[1], "A=b");
    assert_null(img.env[2]);
    assert_string_equal(img.cmd[0], "/e");
    assert_string_equal(img.cmd[1], "c");
    assert_string_equal(img.user, "1000");
    assert_string_equal(img.workdir, "/w");
    assert_int_equal(img.size, 20);
    char *j = oci_image_to_json(&img);
    assert_non_null(strstr(j, "\"platform\": \"linux/arm64\""));
    assert_non_null(strstr(j, DB));
    free(j);
    oci_image_clear(&img);
    /* diff_ids must match the layer count */
    const char *two =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"diff_ids\":[1,2]}}";
    assert_true(oci_image_build(DC, &m, two, strlen(two), &img, &err) < 0);
    assert_non_null(strstr(err->msg, "2 layers"));
    dbx_error_free(&err);
    const char *dup = "{\"os\":\"linux\",\"os\":\"linux\"}";
    assert_true(oci_image_build(DC, &m, dup, strlen(dup), &img, &err) < 0);
    dbx_error_free(&err);
    const char *envbad = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[1]},"
                         "\"rootfs\":{\"diff_ids\":[1]}}";
    assert_true(oci_image_build(DC, &m, envbad, strlen(envbad), &img, &err) < 0);
    dbx_error_free(&err);
    oci_manifest_clear(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_ok),
        cmocka_unit_test(test_manifest_bad),
        cmocka_unit_test(test_index_select),
        cmocka_unit_test(test_image_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

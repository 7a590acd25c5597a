/* tests/tools/oci-tool.c: a thin driver over oci/oci.h for the registry tests (t-oci-*.sh), so
 * the library is tested without the devbox CLI or a VM.
 *
 *   oci-tool pull STORE REF [--platform P] [--docker-config F] [--ca-file F] [--insecure H]...
 *                           [--ready-delay MS] [--quiet]
 *       prints "resolved MANIFEST [INDEX]", "ready I DIGEST" per layer in order, then the
 *       image JSON.  --ready-delay sleeps in layer_ready (to show downloads overlap it).
 *   oci-tool import STORE PATH [--name N] [--platform P]    prints the image JSON
 *   oci-tool detect PATH                                     prints rootfs|docker|layout
 *   oci-tool inspect STORE MANIFEST_DIGEST                   prints the image JSON
 *   oci-tool gc STORE [KEEP_DIGEST...]                       prints "freed N"
 *   oci-tool ref REF                                         prints the canonical reference
 *
 * Errors: one line "oci-tool: MESSAGE" on stderr, exit 1 (2 for usage). */
#define _GNU_SOURCE
#include <getopt.h>

#include "oci/oci.h"

static int usage(void) {
    fprintf(stderr, "usage: oci-tool pull|import|detect|inspect|gc|ref ...\n");
    return 2;
}

static int fail(dbx_error **err) {
    fprintf(stderr, "oci-tool: %s\n", dbx_sanitize_printable((*err)->msg));
    dbx_error_free(err);
    return 1;
}

static void print_image(const struct oci_image *img) {
    char *j = oci_image_to_json(img);
    printf("%s\n", j);
    free(j);
}

struct opts {
    const char *platform, *docker_config, *ca_file, *name;
    char **insecure;
    long ready_delay;
    bool quiet;
};

static int parse_opts(int argc, char **argv, struct opts *o) {
    static const struct option lo[] = {
        {"platform", required_argument, NULL, 'p'}, {"docker-config", required_argument, NULL, 'c'},
        {"ca-file", required_argument, NULL, 'a'},  {"insecure", required_argument, NULL, 'i'},
        {"name", required_argument, NULL, 'n'},     {"ready-delay", required_argument, NULL, 'd'},
        {"quiet", no_argument, NULL, 'q'},          {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'p':
            o->platform = optarg;
            break;
        case 'c':
            o->docker_config = optarg;
            break;
        case 'a':
            o->ca_file = optarg;
            break;
        case 'i':
            o->insecure = dbx_strv_push(o->insecure, optarg);
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'd':
            o->ready_delay = atol(optarg);
            break;
        case 'q':
            o->quiet = true;
            break;
        default:
            return -1;
        }
    }
    return 0;
}

static int on_resolved(void *ud, const struct oci_image *img, dbx_error **err) {
    printf("resolved %s%s%s\n", img->manifest_digest, img->index_digest ? " " : "",
           img->index_digest ? img->index_digest : "");
    fflush(stdout);
    return 0;
}

static int on_ready(void *ud, size_t layer, const char *digest, dbx_error **err) {
    const struct opts *o = ud;
    printf("ready %zu %s\n", layer, digest);
    fflush(stdout);
    if (o->ready_delay > 0) usleep((useconds_t)o->ready_delay * 1000);
    return 0;
}

static int cmd_pull(struct oci_store *s, int argc, char **argv, struct opts *o) {
    dbx_error *err = NULL;
    if (optind >= argc) return usage();
    struct oci_ref ref = {0};
    struct oci_platform plat = {0};
    if (oci_ref_parse(argv[optind], &ref, &err) < 0) return fail(&err);
    if (o->platform && oci_platform_parse(o->platform, &plat, &err) < 0) return fail(&err);
    struct oci_auth_config auth = {o->docker_config, o->ca_file, o->insecure};
    struct oci_pull_cb cb = {.userdata = o, .resolved = on_resolved, .layer_ready = on_ready};
    struct oci_image img = {0};
    uint64_t t0 = dbx_now_ms();
    int r = oci_pull(s, &ref, o->platform ? &plat : NULL, &auth, &cb, &img, &err);
    oci_ref_clear(&ref);
    oci_platform_clear(&plat);
    if (r < 0) return fail(&err);
    fprintf(stderr, "oci-tool: pulled in %ju ms\n", (uintmax_t)(dbx_now_ms() - t0));
    if (!o->quiet) print_image(&img);
    oci_image_clear(&img);
    return 0;
}

static int cmd_import(struct oci_store *s, int argc, char **argv, struct opts *o) {
    dbx_error *err = NULL;
    if (optind >= argc) return usage();
    struct oci_platform plat = {0};
    if (o->platform && oci_platform_parse(o->platform, &plat, &err) < 0) return fail(&err);
    struct oci_image img = {0};
    int r = oci_archive_import(s, argv[optind], o->name, o->platform ? &plat : NULL, &img, &err);
    oci_platform_clear(&plat);
    if (r < 0) return fail(&err);
    print_image(&img);
    oci_image_clear(&img);
    return 0;
}

int main(int argc, char **argv) {
    dbx_error *err = NULL;
    if (argc < 3) return usage();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "ref")) {
        struct oci_ref r = {0};
        if (oci_ref_parse(argv[2], &r, &err) < 0) return fail(&err);
        char *s = oci_ref_format(&r);
        printf("%s\n", s);
        free(s);
        oci_ref_clear(&r);
        return 0;
    }
    if (!strcmp(cmd, "detect")) {
        static const char *const names[] = {"rootfs", "docker", "layout"};
        enum oci_archive_kind k;
        if (oci_archive_detect(argv[2], &k, &err) < 0) return fail(&err);
        printf("%s\n", names[k]);
        return 0;
    }
    struct opts o = {0};
    optind = 3;
    if (parse_opts(argc, argv, &o) < 0) return usage();
    struct oci_store *s = NULL;
    if (oci_store_open(argv[2], &s, &err) < 0) return fail(&err);
    int r;
    if (!strcmp(cmd, "pull")) {
        r = cmd_pull(s, argc, argv, &o);
    } else if (!strcmp(cmd, "import")) {
        r = cmd_import(s, argc, argv, &o);
    } else if (!strcmp(cmd, "inspect") && optind < argc) {
        struct oci_image img = {0};
        r = oci_store_load_image(s, argv[optind], &img, &err) < 0 ? fail(&err) : 0;
        if (r == 0) print_image(&img);
        oci_image_clear(&img);
    } else if (!strcmp(cmd, "gc")) {
        uint64_t freed = 0;
        r = oci_store_gc(s, argv + optind, &freed, &err) < 0 ? fail(&err) : 0;
        if (r == 0) printf("freed %ju\n", (uintmax_t)freed);
    } else {
        r = usage();
    }
    oci_store_free(s);
    dbx_strv_free(o.insecure);
    return r;
}

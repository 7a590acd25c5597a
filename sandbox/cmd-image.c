/* sandbox/cmd-image.c: `devbox pull`, `devbox images`, `devbox rmi` and `devbox image
 * import|inspect|ls|rm|prune|mirror`. */
#define _GNU_SOURCE
#include "commands.h"

#include <jansson.h>
#include <sys/stat.h>
#include <time.h>

static void print_image_line(const struct dbx_image *img) {
    printf("%s %s\n", img->name, img->digest);
}

/* --platform P / --platform=P: consumed from argv; returns the index of the next operand or
 * -1 for a usage error. */
static int take_platform(int argc, char **argv, int i, const char **ret) {
    if (strcmp(argv[i], "--platform") == 0) {
        if (i + 1 >= argc) return -1;
        *ret = argv[i + 1];
        return i + 2;
    }
    if (strncmp(argv[i], "--platform=", 11) == 0) {
        *ret = argv[i] + 11;
        return i + 1;
    }
    return i;
}

static struct dbx_pull_opts pull_opts(const char *platform) {
    return (struct dbx_pull_opts){.platform = platform, .progress_fd = isatty(2) ? 2 : -1};
}

/* REF with an optional --platform; false on a usage error. */
static bool pull_args(int argc, char **argv, const char **platform, const char **ref) {
    for (int i = 1; i < argc;) {
        int next = take_platform(argc, argv, i, platform);
        if (next < 0) return false;
        if (next > i) {
            i = next;
            continue;
        }
        if (*ref || argv[i][0] == '-') return false;
        *ref = argv[i++];
    }
    return *ref != NULL;
}

int cmd_pull(struct cmd_ctx *ctx, int argc, char **argv) {
    const char *platform = NULL, *ref = NULL;
    if (!pull_args(argc, argv, &platform, &ref)) {
        fprintf(stderr, "usage: devbox pull [--platform OS/ARCH[/VARIANT]] REF\n");
        return 125;
    }
    _cleanup_error_ dbx_error *err = NULL;
    struct dbx_pull_opts opts = pull_opts(platform);
    struct dbx_image img = {0};
    if (dbx_image_pull(&ctx->paths, ref, &opts, &img, &err) < 0) return cmd_fail(&err);
    print_image_line(&img);
    dbx_image_clear(&img);
    return 0;
}

static char *human_size(uint64_t n) {
    if (n >= (1ull << 30)) return dbx_xasprintf("%.1f GB", n / 1e9);
    if (n >= (1ull << 20)) return dbx_xasprintf("%.1f MB", n / 1e6);
    return dbx_xasprintf("%.1f kB", n / 1e3);
}

/* Projects using any disk of a derived record's key (a project keeps the disk it was made
 * from after `devbox setup --force` commits a newer one). */
static bool of_key(const struct dbx_paths *paths, const struct dbx_project_rec *rec,
                   const void *key) {
    char k[65];
    return dbx_derived_is_disk(paths, rec->base, k) && strcmp(k, key) == 0;
}

int cmd_images(struct cmd_ctx *ctx, int argc, char **argv) {
    bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !json)) {
        fprintf(stderr, "usage: devbox images [--json]\n");
        return 125;
    }
    _cleanup_error_ dbx_error *err = NULL;
    struct dbx_image *v = NULL;
    size_t n = 0;
    if (dbx_image_list(&ctx->paths, &v, &n, &err) < 0) return cmd_fail(&err);
    json_t *arr = json_array();
    if (!json)
        printf("%-48s %-19s %9s  %-16s %s\n", "NAME", "DIGEST", "SIZE", "CREATED", "USED BY");
    for (size_t i = 0; i < n; i++) {
        _cleanup_strv_ char **users = dbx_image_users(&ctx->paths, v[i].base);
        /* size on disk: the base disk is sparse */
        struct stat st;
        uint64_t used = stat(v[i].base, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
        if (json) {
            json_t *u = json_array();
            for (char **x = users; *x; x++)
                json_array_append_new(u, json_string(*x));
            json_array_append_new(arr,
                                  json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "name",
                                            v[i].name, "digest", v[i].digest, "source", v[i].source,
                                            "platform", v[i].platform, "size", (json_int_t)used,
                                            "created", (json_int_t)v[i].created, "used_by", u));
        } else {
            char when[32];
            time_t t = (time_t)v[i].created;
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M", localtime(&t));
            const char *d = strchr(v[i].digest, ':');
            _cleanup_free_ char *sz = human_size(used);
            _cleanup_free_ char *dg = dbx_xasprintf("%.12s", d ? d + 1 : v[i].digest);
            printf("%-48s %-19s %9s  %-16s %zu project%s\n", v[i].name, dg, sz, when,
                   dbx_strv_len(users), dbx_strv_len(users) == 1 ? "" : "s");
        }
        dbx_image_clear(&v[i]);
    }
    free(v);
    /* Derived disks ([setup]): the image after a profile's setup ran in it. */
    struct dbx_derived *dv = NULL;
    size_t dn = 0;
    if (dbx_derived_list(&ctx->paths, &dv, &dn, &err) < 0) {
        json_decref(arr);
        return cmd_fail(&err);
    }
    for (size_t i = 0; i < dn; i++) {
        _cleanup_strv_ char **users = dbx_projects_where(&ctx->paths, of_key, dv[i].key);
        _cleanup_free_ char *name = dbx_derived_name(&dv[i]);
        if (json) {
            json_t *u = json_array(), *run = json_array();
            for (char **x = users; *x; x++)
                json_array_append_new(u, json_string(*x));
            for (char **x = dv[i].run; x && *x; x++)
                json_array_append_new(run, json_string(*x));
            json_array_append_new(arr,
                                  json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:o}", "name",
                                            name, "source", "setup", "derived_from", dv[i].image,
                                            "key", dv[i].key, "setup", run, "built_for",
                                            dv[i].built_for, "size", (json_int_t)dv[i].size,
                                            "created", (json_int_t)dv[i].created, "used_by", u));
        } else {
            char when[32];
            time_t t = (time_t)dv[i].created;
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M", localtime(&t));
            _cleanup_free_ char *sz = human_size(dv[i].size);
            _cleanup_free_ char *dg = dbx_xasprintf("%.12s", dv[i].key);
            printf("%-48s %-19s %9s  %-16s %zu project%s\n", name, dg, sz, when,
                   dbx_strv_len(users), dbx_strv_len(users) == 1 ? "" : "s");
        }
    }
    dbx_derived_list_free(dv, dn);
    if (json) {
        char *s = json_dumps(arr, JSON_INDENT(2));
        if (!s) dbx_oom_hook();
        printf("%s\n", s);
        free(s);
    }
    json_decref(arr);
    return 0;
}

int cmd_rmi(struct cmd_ctx *ctx, int argc, char **argv) {
    bool force = false;
    int i = 1, rc = 0;
    if (i < argc && (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)) {
        force = true;
        i++;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: devbox rmi [--force] IMAGE...\n");
        return 125;
    }
    for (; i < argc; i++) {
        _cleanup_error_ dbx_error *err = NULL;
        if (dbx_image_remove(&ctx->paths, argv[i], force, &err) < 0)
            rc = cmd_fail(&err);
        else
            printf("removed %s\n", argv[i]);
    }
    return rc;
}

static int image_import(struct cmd_ctx *ctx, int argc, char **argv) {
    const char *platform = NULL, *file = NULL, *name = NULL;
    for (int i = 2; i < argc;) {
        int next = take_platform(argc, argv, i, &platform);
        if (next < 0) return -1;
        if (next > i) {
            i = next;
            continue;
        }
        if (!file)
            file = argv[i];
        else if (!name)
            name = argv[i];
        else
            return -1;
        i++;
    }
    if (!file) return -1;
    _cleanup_error_ dbx_error *err = NULL;
    struct dbx_pull_opts opts = pull_opts(platform);
    struct dbx_image img = {0};
    if (dbx_image_import(&ctx->paths, file, name, &opts, &img, &err) < 0) return cmd_fail(&err);
    print_image_line(&img);
    dbx_image_clear(&img);
    return 0;
}

int cmd_image(struct cmd_ctx *ctx, int argc, char **argv) {
    const char *sub = argc >= 2 ? argv[1] : "";
    if (strcmp(sub, "import") == 0) {
        int rc = image_import(ctx, argc, argv);
        if (rc >= 0) return rc;
    } else if (strcmp(sub, "inspect") == 0 && argc == 3) {
        _cleanup_error_ dbx_error *err = NULL;
        _cleanup_free_ char *json = NULL;
        if (dbx_image_inspect(&ctx->paths, argv[2], &json, &err) < 0) return cmd_fail(&err);
        printf("%s\n", json);
        return 0;
    } else if (strcmp(sub, "ls") == 0) {
        return cmd_images(ctx, argc - 1, argv + 1);
    } else if (strcmp(sub, "rm") == 0) {
        return cmd_rmi(ctx, argc - 1, argv + 1);
    } else if (strcmp(sub, "mirror") == 0 && argc == 2) {
        /* The one rule for the Debian mirror, also for the tests and the bench. */
        _cleanup_free_ char *mirror = dbx_image_debian_mirror();
        printf("%s\n", mirror);
        return 0;
    } else if (strcmp(sub, "prune") == 0 && argc == 2) {
        _cleanup_error_ dbx_error *err = NULL;
        uint64_t freed = 0;
        _cleanup_strv_ char **removed = NULL;
        if (dbx_image_prune(&ctx->paths, &removed, &freed, &err) < 0) return cmd_fail(&err);
        for (char **x = removed; x && *x; x++)
            printf("removed derived disk %s\n", *x);
        printf("freed %.1f MB\n", freed / 1e6);
        return 0;
    }
    if (argc >= 2 && cmd_unknown_sub("image", sub)) return 125;
    fprintf(stderr,
            "usage: devbox image import [--platform P] FILE [NAME]\n"
            "       devbox image inspect IMAGE\n"
            "       devbox image ls [--json] | rm [--force] IMAGE... | prune\n"
            "       devbox image mirror   (the Debian mirror the default image comes from)\n");
    return 125;
}

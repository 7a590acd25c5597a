/* sandbox/cmd-status.c: `devbox status`, `devbox ls`, `devbox stop`, `devbox rm`. */
#define _GNU_SOURCE
#include "commands.h"
#include "sandbox-internal.h"

#include <jansson.h>

static bool want_json(int argc, char **argv, const char *extra, bool *extra_set, int *bad) {
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (extra && strcmp(argv[i], extra) == 0)
            *extra_set = true;
        else {
            _cleanup_free_ char *a = dbx_escape(argv[i]);
            fprintf(stderr, "devbox: %s: unknown argument '%s'\n", argv[0], a);
            *bad = 125;
        }
    }
    return json;
}

/* A running VM keeps the policy it started with: say when devbox.ini on disk differs. */
static void annotate_profile(struct cmd_ctx *ctx, struct dbx_project *proj, json_t *j) {
    const char *running = json_string_value(json_object_get(j, "profile_hash"));
    if (!running) return;
    struct profile p = {0};
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_profile_load(&ctx->paths, proj, &p, NULL, &err) < 0) {
        json_object_set_new(j, "profile_changed", json_true());
        json_object_set_new(j, "profile_error", json_string(err->msg));
        return;
    }
    json_object_set_new(j, "profile_changed", json_boolean(strcmp(p.hash, running) != 0));
    profile_clear(&p);
}

static void print_human(json_t *j) {
    static const char *const keys[] = {"project",  "state",      "image",   "accel",      "pid",
                                       "uptime_s", "memory_mib", "rss_kib", "cpus",       "kernel",
                                       "seccomp",  "sessions",   "network", "connections"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(keys); i++) {
        json_t *v = json_object_get(j, keys[i]);
        if (!v || json_is_null(v)) continue;
        if (json_is_string(v)) {
            _cleanup_free_ char *s = dbx_escape(json_string_value(v));
            printf("%-11s %s\n", keys[i], s);
        } else if (json_is_integer(v)) {
            printf("%-11s %lld\n", keys[i], (long long)json_integer_value(v));
        }
    }
    /* one line per forward ("127.0.0.1:3000 -> 3000") */
    const char *ports = json_string_value(json_object_get(j, "ports"));
    _cleanup_free_ char *pcopy = ports ? dbx_xstrdup(ports) : NULL;
    for (char *save = NULL, *l = pcopy ? strtok_r(pcopy, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save))
        printf("%-11s %s\n", "port", dbx_sanitize_printable(l));
    if (json_is_true(json_object_get(j, "profile_changed")))
        printf("%-11s %s changed since the VM started; it keeps its policy until 'devbox stop'\n",
               "profile", PROFILE_FILE);
}

int cmd_status(struct cmd_ctx *ctx, int argc, char **argv) {
    int bad = 0;
    bool json = want_json(argc, argv, NULL, NULL, &bad);
    if (bad) return bad;
    struct dbx_project proj = {0};
    int rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_free_ char *s = NULL;
    rc = dbx_status_json(&ctx->paths, &proj, &s, &err);
    if (rc < 0) {
        dbx_project_clear(&proj);
        return cmd_fail(&err);
    }
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    if (j) annotate_profile(ctx, &proj, j);
    dbx_project_clear(&proj);
    if (json) {
        /* ENSURE_ASCII: U+0080-U+009F (C1 controls) would otherwise be printed raw */
        char *out = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) : NULL;
        printf("%s\n", out ? out : s);
        free(out);
    } else if (j) {
        print_human(j);
    }
    json_decref(j);
    return 0;
}

int cmd_ls(struct cmd_ctx *ctx, int argc, char **argv) {
    int bad = 0;
    bool json = want_json(argc, argv, NULL, NULL, &bad);
    if (bad) return bad;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **ids = NULL;
    if (dbx_project_list(&ctx->paths, &ids, &err) < 0) return cmd_fail(&err);
    json_t *arr = json_array();
    for (char **id = ids; *id; id++) {
        struct dbx_project p = {0};
        _cleanup_free_ char *s = NULL;
        if (dbx_project_from_id(&ctx->paths, *id, &p, NULL) < 0) continue;
        if (dbx_status_json(&ctx->paths, &p, &s, NULL) == 0) {
            json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
            if (j) json_array_append_new(arr, j);
        }
        dbx_project_clear(&p);
    }
    if (json) {
        char *out = json_dumps(arr, JSON_COMPACT | JSON_ENSURE_ASCII);
        printf("%s\n", out ? out : "[]");
        free(out);
    } else {
        printf("%-16s  %-8s  %-16s  %s\n", "ID", "STATE", "IMAGE", "PROJECT");
        size_t i;
        json_t *j;
        json_array_foreach(arr, i, j) {
            const char *img = json_string_value(json_object_get(j, "image"));
            _cleanup_free_ char *root =
                dbx_escape(json_string_value(json_object_get(j, "project")));
            _cleanup_free_ char *image = dbx_escape(img ? img : "-");
            printf("%-16s  %-8s  %-16s  %s\n", json_string_value(json_object_get(j, "id")) ?: "",
                   json_string_value(json_object_get(j, "state")) ?: "", image, root);
        }
    }
    json_decref(arr);
    return 0;
}

int cmd_stop(struct cmd_ctx *ctx, int argc, char **argv) {
    if (argc > 1) {
        _cleanup_free_ char *a = dbx_escape(argv[1]);
        fprintf(stderr, "devbox: stop: unknown argument '%s'\n", a);
        return 125;
    }
    struct dbx_project proj = {0};
    int rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    rc = dbx_stop(&ctx->paths, &proj, &err);
    dbx_project_clear(&proj);
    return rc < 0 ? cmd_fail(&err) : 0;
}

/* stop, then start again (the profile, trust and image are read afresh); a stopped VM is just
 * started. */
int cmd_restart(struct cmd_ctx *ctx, int argc, char **argv) {
    if (argc > 1) {
        _cleanup_free_ char *a = dbx_escape(argv[1]);
        fprintf(stderr, "devbox: restart: unknown argument '%s'\n", a);
        return 125;
    }
    struct dbx_project proj = {0};
    int rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **warnings = NULL;
    _cleanup_close_ int fd = -EBADF;
    rc = dbx_stop(&ctx->paths, &proj, &err);
    struct dbx_connect_opts co = {.start = true, .network_none = ctx->network_none};
    if (rc == 0) rc = dbx_connect(&ctx->paths, &proj, &co, &fd, &warnings, &err);
    dbx_project_clear(&proj);
    for (char **w = warnings; w && *w; w++) {
        _cleanup_free_ char *m = dbx_escape(*w);
        fprintf(stderr, "devbox: warning: %s\n", m);
    }
    return rc < 0 ? cmd_fail(&err) : 0;
}

int cmd_rm(struct cmd_ctx *ctx, int argc, char **argv) {
    bool force = false;
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
            force = true;
        else {
            _cleanup_free_ char *a = dbx_escape(argv[i]);
            fprintf(stderr, "devbox: rm: unknown argument '%s'\n", a);
            bad = 125;
        }
    }
    if (bad) return bad;
    struct dbx_project proj = {0};
    int rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    rc = dbx_remove(&ctx->paths, &proj, force, &err);
    dbx_project_clear(&proj);
    return rc < 0 ? cmd_fail(&err) : 0;
}

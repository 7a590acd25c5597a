/* sandbox/cmd-status.c: `devbox status`, `devbox ls`, `devbox stop`, `devbox rm`. */
#define _GNU_SOURCE
#include "commands.h"
#include "sandbox-internal.h"

#include <jansson.h>

/* A running VM keeps the policy it started with: say when devbox.ini on disk differs. */
static void annotate_profile(struct cmd_ctx *ctx, struct dbx_project *proj, struct dbx_status *st) {
    /* a repository that is gone has no devbox.ini to compare (`status ID` reaches one) */
    if (!dbx_status_live(st) || dbx_project_gone(proj->root)) return;
    struct profile p = {0};
    _cleanup_error_ dbx_error *err = NULL;
    st->profile_checked = true;
    if (dbx_profile_load(&ctx->paths, proj, &p, NULL, &err) < 0) {
        st->profile_changed = true;
        st->profile_error = dbx_xstrdup(err->msg);
        return;
    }
    st->profile_changed = strcmp(p.hash, st->profile_hash) != 0;
    profile_clear(&p);
}

/* `status [--json] [PATH|ID]` */
int cmd_status(struct cmd_ctx *ctx, int argc, char **argv) {
    bool json = false;
    const struct cmd_opt opts[] = {{"--json", NULL, .flag = &json}, {NULL}};
    struct dbx_project proj = {0};
    int rc = cmd_args_project(ctx, argc, argv, opts, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    struct dbx_status st = {0};
    rc = dbx_status_get(&ctx->paths, &proj, &st, &err);
    if (rc < 0) {
        dbx_project_clear(&proj);
        return cmd_fail(&err);
    }
    annotate_profile(ctx, &proj, &st);
    dbx_project_clear(&proj);
    if (json) {
        _cleanup_free_ char *out = dbx_status_json(&st);
        printf("%s\n", out);
    } else {
        dbx_status_print(&st);
    }
    dbx_status_clear(&st);
    return 0;
}

/* status --json's object with "repo_missing": the project's repository no longer exists. */
static char *ls_json(const struct dbx_status *st, bool gone) {
    _cleanup_free_ char *o = dbx_status_json(st);
    json_t *j = json_loads(o, 0, NULL);
    if (!j) return TAKE_PTR(o);
    json_object_set_new(j, "repo_missing", json_boolean(gone));
    char *out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(j);
    if (!out) dbx_oom_hook();
    return out;
}

int cmd_ls(struct cmd_ctx *ctx, int argc, char **argv) {
    bool json = false;
    const struct cmd_opt opts[] = {{"--json", NULL, .flag = &json}, {NULL}};
    _cleanup_error_ dbx_error *err = NULL;
    if (cmd_parse_args(argc, argv, opts, NULL, 0, NULL, &err) < 0) return cmd_fail(&err);
    _cleanup_strv_ char **ids = NULL;
    if (dbx_project_list(&ctx->paths, &ids, &err) < 0) return cmd_fail(&err);
    if (json)
        printf("[");
    else
        printf("%-16s  %-8s  %-16s  %s\n", "ID", "STATE", "IMAGE", "PROJECT");
    size_t shown = 0;
    for (char **id = ids; *id; id++) {
        struct dbx_project p = {0};
        struct dbx_status st = {0};
        if (dbx_project_from_id(&ctx->paths, *id, &p, NULL) < 0) continue;
        /* lstat only: a deleted tree (or an unmounted disk) is not opened */
        bool gone = dbx_project_gone(p.root);
        if (dbx_status_get(&ctx->paths, &p, &st, NULL) == 0) {
            if (json) {
                _cleanup_free_ char *o = ls_json(&st, gone);
                printf("%s%s", shown++ ? "," : "", o);
            } else {
                _cleanup_free_ char *root = dbx_escape(st.project);
                _cleanup_free_ char *image = dbx_escape(st.image ? st.image : "-");
                /* a running box keeps its state; the mark goes on the path */
                const char *state =
                    gone && st.state == DBX_VM_STOPPED ? "gone" : dbx_vm_state_name(st.state);
                printf("%-16s  %-8s  %-16s  %s%s\n", st.id, state, image, root,
                       gone && st.state != DBX_VM_STOPPED ? " (gone)" : "");
            }
        }
        dbx_status_clear(&st);
        dbx_project_clear(&p);
    }
    if (json) printf("]\n");
    return 0;
}

/* `NAME [--force|-f] [PATH|ID]` or `NAME --all [--force|-f]`, as rm and stop take them (stop has
 * no --force: force NULL).  0, or the exit code once the error is printed. */
static int parse_target(int argc, char **argv, bool *force, bool *all, const char **which) {
    const struct cmd_opt opts[] = {{"--all", NULL, .flag = all},
                                   /* stop has no --force: its table ends here */
                                   {force ? "--force" : NULL, "-f", .flag = force},
                                   {NULL}};
    _cleanup_error_ dbx_error *err = NULL;
    if (cmd_parse_args(argc, argv, opts, which, 1, NULL, &err) == 0 && *all && *which)
        dbx_error_setx(&err, EINVAL, "%s: --all takes no PATH or ID", argv[0]);
    return err ? cmd_fail(&err) : 0;
}

/* `stop --all`: every running (or starting) box, one line each. */
static int stop_all(struct cmd_ctx *ctx) {
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **ids = NULL;
    if (dbx_project_list(&ctx->paths, &ids, &err) < 0) return cmd_fail(&err);
    int rc = 0;
    size_t n = 0;
    for (char **id = ids; *id; id++) {
        struct dbx_project p = {0};
        _cleanup_error_ dbx_error *e = NULL;
        if (dbx_project_from_id(&ctx->paths, *id, &p, &e) < 0) {
            if (!e || e->code != ENOENT) rc = cmd_fail(&e);
            continue; /* no record: nothing of it runs (its supervisor writes one first) */
        }
        if (dbx_project_busy(&p)) {
            _cleanup_free_ char *root = dbx_escape(p.root);
            if (dbx_stop(&ctx->paths, &p, &e) < 0) {
                rc = cmd_fail(&e);
            } else {
                printf("stopped %s (%s)\n", root, p.id);
                n++;
            }
        }
        dbx_project_clear(&p);
    }
    printf("stopped %zu box%s\n", n, n == 1 ? "" : "es");
    return rc;
}

/* `stop [PATH|ID]`, `stop --all`: without an operand the current project.  An ID (as `devbox ls`
 * shows it) reaches a box whose repository is gone, which no path names any more. */
int cmd_stop(struct cmd_ctx *ctx, int argc, char **argv) {
    bool all = false;
    const char *which = NULL;
    int rc = parse_target(argc, argv, NULL, &all, &which);
    if (rc) return rc;
    if (all) return stop_all(ctx);
    struct dbx_project proj = {0};
    rc = cmd_target(ctx, which, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    rc = dbx_stop(&ctx->paths, &proj, &err);
    dbx_project_clear(&proj);
    return rc < 0 ? cmd_fail(&err) : 0;
}

/* `restart [PATH|ID]`: stop, then start again (the profile, trust and image are read afresh); a
 * stopped VM is just started. */
int cmd_restart(struct cmd_ctx *ctx, int argc, char **argv) {
    struct dbx_project proj = {0};
    int rc = cmd_args_project(ctx, argc, argv, (const struct cmd_opt[]){{NULL}}, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **warnings = NULL;
    _cleanup_close_ int fd = -EBADF;
    /* an id reaches a project whose repository was deleted: no tree to start a box on, and its
     * running box (if any) is left alone rather than stopped for nothing */
    if (dbx_project_gone(proj.root))
        rc = dbx_error_setx(&err, ENOENT,
                            "restart: the repository '%s' is gone: nothing to start (devbox stop "
                            "%s stops its box, devbox rm %s removes it)",
                            proj.root, proj.id, proj.id);
    if (rc == 0) rc = dbx_stop(&ctx->paths, &proj, &err);
    struct dbx_connect_opts co = {.start = true, .network_none = ctx->network_none};
    if (rc == 0) rc = dbx_connect(&ctx->paths, &proj, &co, &fd, &warnings, &err);
    dbx_project_clear(&proj);
    for (char **w = warnings; w && *w; w++) {
        _cleanup_free_ char *m = dbx_escape(*w);
        fprintf(stderr, "devbox: warning: %s\n", m);
    }
    return rc < 0 ? cmd_fail(&err) : 0;
}

/* One project removed: "removed PATH (ID): 1.2G freed". */
static int rm_one(struct cmd_ctx *ctx, const struct dbx_project *proj, bool force) {
    _cleanup_error_ dbx_error *err = NULL;
    uint64_t freed = 0;
    if (dbx_project_remove(&ctx->paths, proj, force, &freed, &err) < 0) return cmd_fail(&err);
    _cleanup_free_ char *root = dbx_escape(proj->root);
    _cleanup_free_ char *size = dbx_size_human(freed, false);
    printf("removed %s (%s): %s freed\n", root, proj->id, size);
    return 0;
}

/* `rm --all [--force]`: every project; a running one only with --force (stopped first), else
 * it is skipped and said so. */
static int rm_all(struct cmd_ctx *ctx, bool force) {
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **ids = NULL;
    if (dbx_project_list(&ctx->paths, &ids, &err) < 0) return cmd_fail(&err);
    int rc = 0;
    size_t n = 0, skipped = 0;
    uint64_t total = 0;
    for (char **id = ids; *id; id++) {
        struct dbx_project p = {0};
        _cleanup_error_ dbx_error *e = NULL;
        if (dbx_project_from_id(&ctx->paths, *id, &p, &e) < 0) {
            if (!e || e->code != ENOENT) rc = cmd_fail(&e);
            continue; /* no record: `devbox gc` takes such leftovers */
        }
        _cleanup_free_ char *root = dbx_escape(p.root);
        uint64_t freed = 0;
        if (!force && dbx_project_busy(&p)) {
            fprintf(stderr, "devbox: rm: skipped '%s': it is running (use --force)\n", root);
            skipped++;
        } else if (dbx_project_remove(&ctx->paths, &p, force, &freed, &e) < 0) {
            rc = cmd_fail(&e);
        } else {
            _cleanup_free_ char *size = dbx_size_human(freed, false);
            printf("removed %s (%s): %s freed\n", root, p.id, size);
            total += freed;
            n++;
        }
        dbx_project_clear(&p);
    }
    _cleanup_free_ char *size = dbx_size_human(total, false);
    printf("removed %zu project%s: %s freed%s\n", n, n == 1 ? "" : "s", size,
           skipped ? " (running ones skipped)" : "");
    return rc;
}

/* `rm [--force] [PATH|ID]`, `rm --all [--force]`: without an operand the current project. */
int cmd_rm(struct cmd_ctx *ctx, int argc, char **argv) {
    bool force = false, all = false;
    const char *which = NULL;
    int rc = parse_target(argc, argv, &force, &all, &which);
    if (rc) return rc;
    if (all) return rm_all(ctx, force);
    struct dbx_project proj = {0};
    rc = cmd_target(ctx, which, &proj);
    if (rc) return rc;
    rc = rm_one(ctx, &proj, force);
    dbx_project_clear(&proj);
    return rc;
}

/* `NAME [--force|-f]`: the flag, then the project; the exit code on failure (printed). */
static int force_and_project(struct cmd_ctx *ctx, int argc, char **argv, bool *force,
                             struct dbx_project *proj) {
    const struct cmd_opt opts[] = {{"--force", "-f", .flag = force}, {NULL}};
    _cleanup_error_ dbx_error *err = NULL;
    if (cmd_parse_args(argc, argv, opts, NULL, 0, NULL, &err) < 0) return cmd_fail(&err);
    return cmd_project(ctx, proj);
}

/* `devbox reset [--force]`: the disk goes; the next start makes it from the image + [setup]. */
int cmd_reset(struct cmd_ctx *ctx, int argc, char **argv) {
    bool force = false;
    struct dbx_project proj = {0};
    int rc = force_and_project(ctx, argc, argv, &force, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    rc = dbx_reset(&ctx->paths, &proj, force, false, &err);
    if (rc == 0)
        fprintf(stderr, "devbox: the box's disk was thrown away; the next command makes it again "
                        "from the image and [setup] (the workspace is kept)\n");
    dbx_project_clear(&proj);
    return rc < 0 ? cmd_fail(&err) : 0;
}

/* `devbox setup [--force]`: apply [setup] now and leave the box running: a restart, whose start
 * makes the disk again when [setup] changed (a box made with the current setup just starts);
 * --force runs setup again (no derived disk reused) and makes the box's disk from its result. */
int cmd_setup(struct cmd_ctx *ctx, int argc, char **argv) {
    bool force = false;
    struct dbx_project proj = {0};
    int rc = force_and_project(ctx, argc, argv, &force, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    rc = force ? dbx_reset(&ctx->paths, &proj, true, true, &err) : 0;
    dbx_project_clear(&proj);
    if (rc < 0) return cmd_fail(&err);
    return cmd_restart(ctx, 1, argv); /* stop, then start: the start applies [setup] */
}

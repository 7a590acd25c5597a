/* sandbox/cmd-profile.c: `devbox profile check`, `devbox profile show [--json]`,
 * `devbox trust`. */
#define _GNU_SOURCE
#include "commands.h"

#include "sandbox-internal.h"
#include <jansson.h>

/* Print multi-line text from profiles/ with each line stripped of terminal controls (repo
 * bytes can appear in messages) but the line structure kept. */
static void print_lines(FILE *f, char *text) {
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        fprintf(f, "%s\n", dbx_sanitize_printable(line));
    }
}

static void print_warnings(const struct profile *p) {
    for (char **w = p->warnings; w && *w; w++) {
        _cleanup_free_ char *m = dbx_xstrdup(*w);
        fprintf(stderr, "devbox: warning: %s\n", dbx_sanitize_printable(m));
    }
}

/* What [setup] will run and reach, spelled out: the commands run as root. */
static void print_setup(const struct profile *p, const struct profile_user *u) {
    if (!p->setup_run || !p->setup_run[0]) return;
    printf("setup runs as root in a setup VM before the box first starts:\n");
    for (char **x = p->setup_run; *x; x++) {
        _cleanup_free_ char *m = dbx_xstrdup(*x);
        printf("  %s\n", dbx_sanitize_printable(m));
    }
    const char *mode = p->setup_net == PROFILE_NET_OPEN        ? "open (any address but the host's)"
                       : p->setup_net == PROFILE_NET_ALLOWLIST ? "allowlist"
                                                               : "none";
    printf("setup network: %s\n", mode);
    if (p->setup_net != PROFILE_NET_ALLOWLIST) return;
    for (char **x = p->setup_allow; x && *x; x++)
        printf("  %s (devbox.ini)\n", *x);
    for (char **x = u->setup_allow; x && *x; x++)
        printf("  %s (%s)\n", *x,
               u->setup_allow_set ? "config.ini [setup] allow" : "the host's apt sources");
    for (char **x = p->setup_resolve; x && *x; x++)
        printf("  resolve %s (devbox.ini)\n", *x);
}

static int profile_check(struct cmd_ctx *ctx, struct dbx_project *proj) {
    struct profile p = {0};
    struct profile_user u = {0};
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_profile_load(&ctx->paths, proj, &p, &u, &err) < 0) {
        /* every problem, one per line, each naming file:line */
        print_lines(stderr, err->msg);
        return 1;
    }
    int rc = 0;
    _cleanup_strv_ char **wide = profile_widenings(&p, &u);
    if (wide && wide[0]) {
        if (dbx_profile_allowed(&ctx->paths, proj, &p, &u, &err) < 0) {
            fprintf(stderr, "%s\n", dbx_sanitize_printable(err->msg));
            rc = 1;
        } else {
            printf("ok (widens the default profile, trusted by you: ");
            for (char **w = wide; *w; w++)
                printf("%s%s", w == wide ? "" : ", ", *w);
            printf(")\n");
        }
    } else {
        printf("ok\n");
    }
    print_warnings(&p);
    print_setup(&p, &u);
    profile_clear(&p);
    profile_user_clear(&u);
    return rc;
}

static int profile_show(struct cmd_ctx *ctx, struct dbx_project *proj, bool json) {
    struct profile p = {0};
    struct profile_user u = {0};
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_profile_load(&ctx->paths, proj, &p, &u, &err) < 0) return cmd_fail(&err);
    _cleanup_free_ char *s = json ? profile_to_json(&p) : profile_to_text(&p);
    _cleanup_free_ char *us = json ? profile_user_to_json(&u) : profile_user_to_text(&u);
    if (json) {
        /* one JSON document: the profile, with the user's own settings under "user" */
        json_t *j = json_loads(s, 0, NULL), *uj = json_loads(us, 0, NULL);
        if (j && uj)
            json_object_set_new(j, "user", uj);
        else
            json_decref(uj);
        if (j && p.ini_equivalent)
            json_object_set_new(j, "ini_equivalent", json_string(p.ini_equivalent));
        char *both = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        json_decref(j);
        print_lines(stdout, both ? both : s);
        free(both);
    } else {
        print_lines(stdout, s);
        print_lines(stdout, us);
        if (p.ini_equivalent) {
            /* a devcontainer.json repo: the devbox.ini to check in instead */
            _cleanup_free_ char *ini = dbx_xstrdup(p.ini_equivalent);
            printf("\n; the devbox.ini this repository's devcontainer.json amounts to:\n");
            print_lines(stdout, ini);
        }
    }
    print_warnings(&p);
    profile_user_clear(&u);
    profile_clear(&p);
    return 0;
}

int cmd_profile(struct cmd_ctx *ctx, int argc, char **argv) {
    bool check = argc == 2 && !strcmp(argv[1], "check");
    bool show = argc >= 2 && !strcmp(argv[1], "show") &&
                (argc == 2 || (argc == 3 && !strcmp(argv[2], "--json")));
    if (!check && !show) {
        if (argc < 2 || !cmd_unknown_sub("profile", argv[1]))
            fprintf(stderr, "usage: devbox profile check | devbox profile show [--json]\n");
        return 125;
    }
    struct dbx_project proj = {0};
    int rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    rc = check ? profile_check(ctx, &proj) : profile_show(ctx, &proj, argc == 3);
    dbx_project_clear(&proj);
    return rc;
}

int cmd_trust(struct cmd_ctx *ctx, int argc, char **argv) {
    if (argc > 1) {
        _cleanup_free_ char *a = dbx_escape(argv[1]);
        fprintf(stderr, "devbox: trust: unknown argument '%s'\n", a);
        return 125;
    }
    struct dbx_project proj = {0};
    int rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    struct profile p = {0};
    struct profile_user u = {0};
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_profile_load(&ctx->paths, &proj, &p, &u, &err) < 0) {
        dbx_project_clear(&proj);
        return cmd_fail(&err);
    }
    _cleanup_strv_ char **wide = profile_widenings(&p, &u);
    _cleanup_free_ char *root = dbx_escape(proj.root);
    if (!wide || !wide[0]) {
        printf("%s/%s only narrows the default profile: nothing to trust\n", root, PROFILE_FILE);
    } else {
        _cleanup_free_ char *dir = dbx_trust_dir(&ctx->paths);
        if (profile_trust_add(dir, proj.root, p.hash, &err) < 0)
            rc = cmd_fail(&err);
        else {
            printf("trusted %s/%s (sha256 %.16s...), which widens the default profile:\n", root,
                   PROFILE_FILE, p.hash);
            for (char **w = wide; *w; w++)
                printf("  %s\n", dbx_sanitize_printable(*w));
            printf("a running VM keeps its policy until 'devbox stop'\n");
        }
    }
    profile_clear(&p);
    profile_user_clear(&u);
    dbx_project_clear(&proj);
    return rc;
}

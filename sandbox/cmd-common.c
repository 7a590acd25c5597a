/* sandbox/cmd-common.c: what every command shares: the one place errors are printed. */
#define _GNU_SOURCE
#include "commands.h"

int cmd_fail(dbx_error **err) {
    /* Messages carry names, paths and guest text: never raw terminal controls (\e, C1). */
    _cleanup_free_ char *m = dbx_escape(*err ? (*err)->msg : "failed");
    fprintf(stderr, "devbox: %s\n", m);
    dbx_error_free(err);
    return 125;
}

int cmd_parse_global(int argc, char **argv, struct cmd_ctx *ctx, int (*usage)(FILE *), int *ret_i) {
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-C") == 0 && i + 1 < argc) {
            ctx->dir = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "-C", 2) == 0 && argv[i][2]) {
            ctx->dir = argv[i] + 2;
            i++;
        } else if (strcmp(argv[i], "--network") == 0 && i + 1 < argc) {
            /* Only ever narrows: the one mode a command line may force is none. */
            if (strcmp(argv[i + 1], "none") != 0) {
                fprintf(stderr,
                        "devbox: --network takes only 'none' (a profile sets wider modes)\n");
                return 125;
            }
            ctx->network_none = true;
            i += 2;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            return usage(stdout);
        } else {
            _cleanup_free_ char *o = dbx_escape(argv[i]);
            fprintf(stderr, "devbox: unknown option '%s'\n", o);
            return usage(stderr);
        }
    }
    if (i >= argc) return usage(stderr);
    *ret_i = i;
    return -1;
}

#ifndef DBX_LEAN /* libgit2: the lean client finds its projects with dbx_project_find_lean */
int cmd_project(struct cmd_ctx *ctx, struct dbx_project *ret) {
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_project_find(&ctx->paths, ctx->dir, false, ret, &err) < 0) return cmd_fail(&err);
    return 0;
}
#endif

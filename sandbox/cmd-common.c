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

#ifndef DBX_LEAN /* libgit2: the lean client finds its projects with dbx_project_find_lean */
int cmd_project(struct cmd_ctx *ctx, struct dbx_project *ret) {
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_project_find(&ctx->paths, ctx->dir, false, ret, &err) < 0) return cmd_fail(&err);
    return 0;
}
#endif

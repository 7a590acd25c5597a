/* sandbox/cmd-net.c: `devbox port add|rm|ls`. */
#define _GNU_SOURCE
#include "commands.h"

/* "HOST:GUEST" or "PORT" (the same on both sides). */
static int parse_pair(const char *s, unsigned *host, unsigned *guest) {
    char tail;
    if (sscanf(s, "%5u:%5u%c", host, guest, &tail) == 2 ||
        (sscanf(s, "%5u%c", host, &tail) == 1 && (*guest = *host, true)))
        return *host >= 1 && *host <= 65535 && *guest >= 1 && *guest <= 65535 ? 0 : -1;
    return -1;
}

int cmd_port(struct cmd_ctx *ctx, int argc, char **argv) {
    const char *sub = argc >= 2 ? argv[1] : "ls";
    unsigned h = 0, g = 0;
    _cleanup_free_ char *req = NULL;
    bool start = false;
    if (strcmp(sub, "add") == 0 && argc == 3 && parse_pair(argv[2], &h, &g) == 0) {
        req = dbx_xasprintf("add %u %u", h, g);
        start = true;
    } else if (strcmp(sub, "rm") == 0 && argc == 3 && parse_pair(argv[2], &h, &g) == 0) {
        req = dbx_xasprintf("rm %u", h);
    } else if (strcmp(sub, "ls") == 0 && argc <= 2) {
        req = dbx_xstrdup("ls");
    } else {
        fprintf(stderr, "usage: devbox port add HOST:GUEST | rm HOST | ls\n");
        return 125;
    }
    struct dbx_project proj = {0};
    int rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_free_ char *text = NULL;
    struct dbx_connect_opts co = {.start = start, .network_none = ctx->network_none};
    rc = dbx_port_request(&ctx->paths, &proj, req, &co, &text, &err);
    dbx_project_clear(&proj);
    if (rc < 0) return cmd_fail(&err);
    fputs(text, stdout);
    return 0;
}

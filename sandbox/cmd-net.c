/* sandbox/cmd-net.c: `devbox port add|rm|ls [--json]`. */
#define _GNU_SOURCE
#include "commands.h"
#include "sandbox-internal.h"

/* "HOST:GUEST" or "PORT" (the same on both sides). */
static int parse_pair(const char *s, unsigned *host, unsigned *guest) {
    char tail;
    if (sscanf(s, "%5u:%5u%c", host, guest, &tail) == 2 ||
        (sscanf(s, "%5u%c", host, &tail) == 1 && (*guest = *host, true)))
        return *host >= 1 && *host <= 65535 && *guest >= 1 && *guest <= 65535 ? 0 : -1;
    return -1;
}

/* `port ls` of a stopped box: no forwards (JSON: [], as `ps --json` says no processes); the
 * text says so, and what devbox.ini forwards once it starts, on config.ini's listen address. */
static int ls_stopped(struct cmd_ctx *ctx, const struct dbx_project *proj, bool json) {
    if (json) {
        printf("[]\n");
        return 0;
    }
    struct profile p = {0};
    struct profile_user u = {0};
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_profile_load(&ctx->paths, proj, &p, &u, &err) < 0) {
        printf("the box is not running\n");
        _cleanup_free_ char *m = dbx_escape(err->msg);
        fprintf(stderr, "devbox: warning: what devbox.ini forwards is not known: %s\n", m);
        return 0;
    }
    printf("the box is not running%s\n",
           p.nports ? "; when it starts, devbox.ini forwards:" : " (devbox.ini forwards no ports)");
    for (size_t i = 0; i < p.nports; i++) {
        _cleanup_free_ char *l = dbx_port_line(u.listen ? u.listen : PROFILE_LISTEN_DEFAULT,
                                               p.ports[i].host, p.ports[i].guest);
        fputs(l, stdout);
    }
    profile_clear(&p);
    profile_user_clear(&u);
    return 0;
}

int cmd_port(struct cmd_ctx *ctx, int argc, char **argv) {
    const char *sub = argc >= 2 ? argv[1] : "ls";
    unsigned h = 0, g = 0;
    _cleanup_free_ char *req = NULL;
    bool start = false, ls = strcmp(sub, "ls") == 0, json = false;
    if (strcmp(sub, "add") == 0 && argc == 3 && parse_pair(argv[2], &h, &g) == 0) {
        req = dbx_xasprintf("add %u %u", h, g);
        start = true;
    } else if (strcmp(sub, "rm") == 0 && argc == 3 && parse_pair(argv[2], &h, &g) == 0) {
        req = dbx_xasprintf("rm %u", h);
    } else if (ls && (argc <= 2 || (argc == 3 && strcmp(argv[2], "--json") == 0))) {
        req = dbx_xstrdup("ls");
        json = argc == 3;
    } else {
        if (!cmd_unknown_sub("port", sub))
            fprintf(stderr, "usage: devbox port add HOST:GUEST | rm HOST | ls [--json]\n");
        return 125;
    }
    struct dbx_project proj = {0};
    int rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_free_ char *text = NULL;
    struct dbx_connect_opts co = {.start = start, .network_none = ctx->network_none};
    rc = dbx_port_request(&ctx->paths, &proj, req, &co, &text, &err);
    if (rc < 0 && ls && err->code == ESRCH) /* a state, as status says it, not a failure */
        rc = ls_stopped(ctx, &proj, json);
    else if (rc < 0)
        rc = cmd_fail(&err);
    else if (json) {
        _cleanup_free_ char *out = dbx_ports_json(text);
        printf("%s\n", out);
    } else {
        fputs(text, stdout);
    }
    dbx_project_clear(&proj);
    return rc;
}

/* sandbox/cmd-net.c: `devbox port add|rm|ls` and `devbox logs` (a detached command's: cmd-ps.c). */
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

static const char *log_file(int argc, char **argv) {
    static const struct {
        const char *flag, *file;
    } logs[] = {
        {"--network", "network.log"},     {"--supervisor", "supervisor.log"},
        {"--console", "console.log"},     {"--qemu", "qemu.log"},
        {"--virtiofsd", "virtiofsd.log"}, {"--setup", "setup.log"},
    };
    if (argc == 1) return "supervisor.log";
    for (size_t i = 0; argc == 2 && i < DBX_ARRAY_SIZE(logs); i++)
        if (strcmp(argv[1], logs[i].flag) == 0) return logs[i].file;
    return NULL;
}

int cmd_logs(struct cmd_ctx *ctx, int argc, char **argv) {
    /* `logs [-f] PID`: a detached command's output (cmd-ps.c) */
    bool f = argc == 3 && strcmp(argv[1], "-f") == 0;
    if ((argc == 2 && argv[1][0] != '-') || f) return cmd_logs_pid(ctx, argv[argc - 1], f);
    const char *file = log_file(argc, argv);
    if (!file) {
        fprintf(stderr, "usage: devbox logs [--network | --setup | --supervisor | --console | "
                        "--qemu | --virtiofsd]\n"
                        "       devbox logs [-f] PID\n");
        return 125;
    }
    struct dbx_project proj = {0};
    int rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    _cleanup_free_ char *path = dbx_xasprintf("%s/%s", proj.state_dir, file);
    dbx_project_clear(&proj);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) return 0; /* nothing logged yet */
        _cleanup_error_ dbx_error *err = NULL;
        dbx_error_set(&err, errno, "open '%s'", path);
        return cmd_fail(&err);
    }
    /* The console log is the guest's bytes (a process name in an OOM line, say): replayed
     * escaped. */
    cmd_dump_escaped(fd);
    return 0;
}

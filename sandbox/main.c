/* sandbox/main.c: `devbox [-C DIR] COMMAND ...` dispatch. */
#define _GNU_SOURCE
#include "commands.h"

#include "../mounts/mounts.h"

#include <signal.h>

static const struct {
    const char *name;
    int (*fn)(struct cmd_ctx *, int, char **);
    const char *help;
} commands[] = {
    {"exec", cmd_exec,
     "exec [-i] [-t] [-e K=V] [-w DIR] [-u USER] [--] CMD [ARG...]  run a command in the project's "
     "VM"},
    {"enter", cmd_enter, "enter                      interactive shell in the project's VM"},
    {"status", cmd_status, "status [--json]            state of the project's VM"},
    {"ls", cmd_ls, "ls [--json]                every project devbox knows"},
    {"stop", cmd_stop, "stop                       shut the project's VM down cleanly"},
    {"restart", cmd_restart,
     "restart                    stop the VM, then start it with devbox.ini as it is now"},
    {"rm", cmd_rm, "rm [--force]               delete the project's VM and disk"},
    {"reset", cmd_reset,
     "reset [--force]            throw the box's disk away: start again from image + [setup]"},
    {"setup", cmd_setup,
     "setup [--force]            apply devbox.ini's [setup] now (--force: run it again)"},
    {"port", cmd_port,
     "port add HOST:GUEST | rm HOST | ls  forward 127.0.0.1:HOST to the box's GUEST port"},
    {"logs", cmd_logs,
     "logs [--network|--setup|...]  the project's logs (network: every proxy decision)"},
    {"profile", cmd_profile,
     "profile check | profile show [--json]  validate or explain devbox.ini"},
    {"trust", cmd_trust,
     "trust                      allow this repo's devbox.ini to widen the default"},
    {"pull", cmd_pull,
     "pull [--platform P] REF     fetch an image from a registry (docker.io implied)"},
    {"images", cmd_images, "images [--json]            the local images, their sizes and users"},
    {"rmi", cmd_rmi, "rmi [--force] IMAGE...     remove images no project uses"},
    {"image", cmd_image,
     "image import FILE [NAME] | inspect IMAGE | prune  docker save / OCI layout / rootfs tar"},
};

static void host_oom(void) {
    static const char m[] = "devbox: out of memory\n";
    (void)!write(2, m, sizeof(m) - 1);
    _exit(125);
}

static int usage(FILE *f) {
    fprintf(f, "usage: devbox [-C DIR] [--network none] COMMAND ...\n\n");
    for (size_t i = 0; i < DBX_ARRAY_SIZE(commands); i++)
        fprintf(f, "  devbox %s\n", commands[i].help);
    fprintf(f, "\nThe project is the git work tree containing the current directory (or DIR).\n"
               "Environment: DEVBOX_HOME (all state under one directory), DEVBOX_ACCEL=kvm|tcg.\n");
    return f == stdout ? 0 : 125;
}

int main(int argc, char **argv) {
    dbx_oom_hook = host_oom;
    if (argc >= 2 && strcmp(argv[1], "__virtiofsd-guard") == 0) /* mounts_virtiofsd_spawn */
        return mounts_virtiofsd_guard_main(argc - 1, argv + 1);
    if (argc >= 3 && strcmp(argv[1], "__supervise") == 0) {
        /* Started by dbx_connect with the report pipe on fd 3. */
        return dbx_supervise(argv[2], argc >= 4 ? argv[3] : NULL, 3);
    }
    struct cmd_ctx ctx = {0};
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-C") == 0 && i + 1 < argc) {
            ctx.dir = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "-C", 2) == 0 && argv[i][2]) {
            ctx.dir = argv[i] + 2;
            i++;
        } else if (strcmp(argv[i], "--network") == 0 && i + 1 < argc) {
            /* Only ever narrows: the one mode a command line may force is none. */
            if (strcmp(argv[i + 1], "none") != 0) {
                fprintf(stderr,
                        "devbox: --network takes only 'none' (a profile sets wider modes)\n");
                return 125;
            }
            ctx.network_none = true;
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
    for (size_t k = 0; k < DBX_ARRAY_SIZE(commands); k++) {
        if (strcmp(argv[i], commands[k].name) != 0) continue;
        _cleanup_error_ dbx_error *err = NULL;
        if (dbx_paths_init(&ctx.paths, &err) < 0) return cmd_fail(&err);
        int rc = commands[k].fn(&ctx, argc - i, argv + i);
        dbx_paths_clear(&ctx.paths);
        return rc;
    }
    _cleanup_free_ char *name = dbx_escape(argv[i]);
    fprintf(stderr, "devbox: unknown command '%s'\n", name);
    return usage(stderr);
}

/* sandbox/main.c: `devbox [-C DIR] COMMAND ...` dispatch. */
#define _GNU_SOURCE
#include "commands.h"

#include "../mounts/mounts.h"

#include <signal.h>

static int usage(FILE *f) {
    fprintf(f, "usage: devbox [-C DIR] [--network none] COMMAND ...\n\n");
    for (size_t i = 0; i < cmd_table_len; i++) {
        const char *u = cmd_table[i].usage;
        fprintf(f, "  devbox %s%*s  %s\n", u, strlen(u) < 25 ? (int)(25 - strlen(u)) : 0, "",
                cmd_table[i].desc);
    }
    fprintf(f, "\nThe project is the git work tree containing the current directory (or DIR).\n"
               "Environment: DEVBOX_HOME (all state under one directory), DEVBOX_ACCEL=kvm|tcg,\n"
               "DEVBOX_KERNEL=auto|devbox|debian (the guest kernel).\n");
    return f == stdout ? 0 : 125;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "__virtiofsd-guard") == 0) /* mounts_virtiofsd_spawn */
        return mounts_virtiofsd_guard_main(argc - 1, argv + 1);
    if (argc == 2 && strcmp(argv[1], "__kernel-autobuild") == 0) /* started by a supervisor */
        return cmd_kernel_autobuild();
    if (argc >= 3 && strcmp(argv[1], "__supervise") == 0) {
        /* Started by dbx_connect with the report pipe on fd 3. */
        return dbx_supervise(argv[2], argc >= 4 ? argv[3] : NULL, 3);
    }
    struct cmd_ctx ctx = {0};
    int i = argc;
    int rc = cmd_parse_global(argc, argv, &ctx, usage, &i);
    if (rc >= 0) return rc;
    for (size_t k = 0; k < cmd_table_len; k++) {
        if (strcmp(argv[i], cmd_table[k].name) != 0) continue;
        _cleanup_error_ dbx_error *err = NULL;
        if (dbx_paths_init(&ctx.paths, &err) < 0) return cmd_fail(&err);
        rc = cmd_table[k].fn(&ctx, argc - i, argv + i);
        dbx_paths_clear(&ctx.paths);
        return rc;
    }
    _cleanup_free_ char *name = dbx_escape(argv[i]);
    fprintf(stderr, "devbox: unknown command '%s'\n", name);
    return usage(stderr);
}

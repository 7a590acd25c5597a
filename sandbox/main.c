/* sandbox/main.c: `devbox [-C DIR] COMMAND ...` dispatch. */
#define _GNU_SOURCE
#include "commands.h"

#include "../mounts/mounts.h"

#include <signal.h>

/* The Makefile passes it to this object alone (and the lean client's main), so a new commit
 * rebuilds two objects, not the archive every unit test links. */
#ifndef DBX_VERSION
#error "DBX_VERSION is not defined (the Makefile defines it: VERSION=...)"
#endif

int main(int argc, char **argv) {
    if (cmd_stdio_reserve()) return 125; /* before any fd of ours can land on 0, 1 or 2 */
    if (argc >= 2 && strcmp(argv[1], "__virtiofsd-guard") == 0) /* mounts_virtiofsd_spawn */
        return mounts_virtiofsd_guard_main(argc - 1, argv + 1);
    if (argc == 2 && strcmp(argv[1], "__kernel-autobuild") == 0) /* started by a supervisor */
        return cmd_kernel_autobuild();
    if (argc >= 3 && strcmp(argv[1], "__supervise") == 0) {
        /* Started by dbx_connect with the report pipe on fd 3. */
        return dbx_supervise(argv[2], argc >= 4 ? argv[3] : NULL, 3);
    }
    struct cmd_ctx ctx = {.version = DBX_VERSION};
    int i = argc;
    int rc = cmd_parse_global(argc, argv, &ctx, cmd_usage, &i);
    if (rc >= 0) return cmd_stdout_done(NULL, rc);
    rc = cmd_dispatch(&ctx, argc - i, argv + i);
    return cmd_stdout_done(argv[i], rc);
}

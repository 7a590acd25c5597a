/* sandbox/cmd-exec.c: `devbox exec` (options follow `docker exec`) and `devbox enter`. */
#define _GNU_SOURCE
#include "commands.h"

#include "../common/protocol.h"

#include <getopt.h>

/* --shell: the box user's shell runs the string, as `ssh HOST 'CMD'` or a terminal would.  The
 * guest init puts that shell (the passwd entry's when it can run, else bash, else /bin/sh) in
 * SHELL for every command (guest/init-env.c), so a POSIX sh in the image picks it up here and
 * execs it: no protocol change, and an older guest init does the same.  `exec` keeps the pid the
 * guest signals and reports, so exit codes and signals are the command's as with `exec --`.
 * nologin and false are not shells to run a command with (`-u www-data`): /bin/sh instead. */
static const char shell_script[] = "case ${SHELL##*/} in ''|nologin|false) SHELL=/bin/sh ;; esac; "
                                   "exec \"$SHELL\" -c \"$1\"";

#ifndef DBX_LEAN /* the lean client's is in sandbox/lean-main.c */
int cmd_exec_run(struct cmd_ctx *ctx, struct dbx_exec_opts *o) {
    struct dbx_project proj = {0};
    int rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    o->network_none = ctx->network_none;
    rc = dbx_exec(&ctx->paths, &proj, o, &err);
    dbx_project_clear(&proj);
    return rc < 0 ? cmd_fail(&err) : rc;
}
#endif

/* exec's long options without a short one: vals above 255 (cmd_getopt_error tells them from
 * unknown short options by that) */
enum { OPT_ADMIN = 256, OPT_SHELL, OPT_TIMEOUT };

int cmd_exec(struct cmd_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {
        {"interactive", no_argument, NULL, 'i'},
        {"tty", no_argument, NULL, 't'},
        {"env", required_argument, NULL, 'e'},
        {"workdir", required_argument, NULL, 'w'},
        {"user", required_argument, NULL, 'u'},
        {"admin", no_argument, NULL, OPT_ADMIN},
        {"shell", no_argument, NULL, OPT_SHELL},
        {"detach", no_argument, NULL, 'd'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* '+': options end at the command; ':' and opterr = 0: errors are ours (cmd_getopt_error) */
    static const char shortopts[] = "+:ite:w:u:dh";
    struct dbx_exec_opts o = {0};
    bool shell = false;
    _cleanup_strv_ char **env = NULL;
    int c;
    optind = 0; /* not 1: glibc then starts afresh (its ordering, a bundle left half read) */
    opterr = 0;
    _cleanup_error_ dbx_error *err = NULL;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            o.interactive = true;
            break;
        case 't':
            o.tty = true;
            break;
        case 'e':
            env = dbx_strv_push(env, optarg);
            break;
        case 'w':
            o.workdir = optarg;
            break;
        case 'u':
            o.user = optarg;
            break;
        case OPT_ADMIN:
            o.admin = true;
            break;
        case OPT_SHELL:
            shell = true;
            break;
        case 'd':
            o.detach = true;
            break;
        case OPT_TIMEOUT:
            if (dbx_parse_duration_ms(optarg, &o.timeout_ms, &err) < 0) {
                dbx_error_wrap(&err, "exec: --timeout");
                return cmd_fail(&err);
            }
            break;
        case 'h': /* with other options; `exec --help` alone is the dispatcher's */
            return cmd_usage_of(stdout, "exec");
        default:
            cmd_getopt_error("exec", c, argv, shortopts, &err);
            return cmd_fail(&err);
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "devbox: exec: no command given\n");
        return 125;
    }
    if (o.detach && (o.interactive || o.tty)) {
        fprintf(stderr, "devbox: exec: -d runs without a terminal or stdin; it cannot take -i or "
                        "-t\n");
        return 125;
    }
    if (o.admin && o.user && !dbx_user_is_root(o.user)) {
        fprintf(stderr, "devbox: exec: --admin runs the command as root; it cannot run as '%s'\n",
                o.user);
        return 125;
    }
    if (shell && argc - optind != 1) {
        fprintf(stderr, "devbox: exec: --shell takes one command string (quote it: --shell "
                        "'CMD ARG...')\n");
        return 125;
    }
    char *shell_argv[] = {"/bin/sh", "-c", (char *)shell_script, "sh", NULL, NULL};
    o.env = env;
    if (shell) {
        shell_argv[4] = argv[optind];
        o.argv = shell_argv;
    } else
        o.argv = argv + optind;
    return cmd_exec_run(ctx, &o);
}

int cmd_enter(struct cmd_ctx *ctx, int argc, char **argv) {
    if (argc > 1) {
        fprintf(stderr, "devbox: enter takes no arguments (use exec)\n");
        return 125;
    }
    char *none[] = {NULL};
    struct dbx_exec_opts o = {
        .interactive = true, .tty = isatty(0) == 1, .login = true, .argv = none};
    (void)argv;
    return cmd_exec_run(ctx, &o);
}

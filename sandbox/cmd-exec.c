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
    if (rc == -E2BIG) return cmd_fail_e2big(&err);
    return rc < 0 ? cmd_fail(&err) : rc;
}
#endif

/* exec's long options without a short one: vals above 255 (cmd_getopt_error tells them from
 * unknown short options by that) */
enum { OPT_ADMIN = 256, OPT_SHELL, OPT_TIMEOUT, OPT_ENV_FILE };

#define ENV_FILE_MAX (1u << 20)

/* --env-file FILE, as `docker run --env-file` reads it: one NAME=VALUE per line, taken as it is
 * (no quotes, no expansion); leading white space is dropped; blank lines and lines starting
 * with '#' are skipped; a NAME alone takes its value from our environment, as -e NAME does.  The
 * file is the user's own (a symlink is followed), at most 1 MiB; each entry goes before the -e
 * ones, so -e wins.  An error names the file and line. */
static int env_file_read(const char *cmd, const char *path, char ***env, dbx_error **err) {
    _cleanup_free_ char *shown = dbx_escape(path);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return dbx_error_set(err, errno, "%s: --env-file '%s'", cmd, shown);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = dbx_read_all(fd, ENV_FILE_MAX, &text, &len, err);
    if (r == -E2BIG)
        return dbx_error_setx(err, E2BIG, "%s: --env-file '%s': larger than %u bytes", cmd, shown,
                              ENV_FILE_MAX);
    if (r < 0) return dbx_error_wrap(err, "%s: --env-file '%s'", cmd, shown);
    if (memchr(text, '\0', len))
        return dbx_error_setx(err, EINVAL, "%s: --env-file '%s': a NUL byte (not a text file)", cmd,
                              shown);
    char *start = text;
    if (dbx_str_has_prefix(start, "\xef\xbb\xbf")) start += 3; /* a UTF-8 BOM, as docker drops */
    unsigned lineno = 0;
    size_t n = dbx_strv_len(*env);
    for (char *line = start, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        size_t l = strlen(line);
        if (l > 0 && line[l - 1] == '\r') line[--l] = '\0'; /* CRLF, as docker's scanner */
        line += strspn(line, " \t\r\f\v");
        if (!*line || *line == '#') continue;
        size_t name_len = strcspn(line, "=");
        const char *why = name_len == 0                           ? "no variable name before '='"
                          : strcspn(line, " \t\r\f\v") < name_len ? "white space in the name"
                          : strlen(line) >= DBX_ARG_STR_MAX       ? "a line of 128 KiB or more"
                          : n >= DBX_MAX_ENV                      ? "more than 4096 variables"
                                                                  : NULL;
        if (why) {
            _cleanup_free_ char *entry = dbx_xstrndup(line, 64);
            _cleanup_free_ char *e = dbx_escape(entry);
            return dbx_error_setx(err, EINVAL, "%s: --env-file %s:%u: %s: '%s%s'", cmd, shown,
                                  lineno, why, e, strlen(line) > 64 ? "..." : "");
        }
        *env = dbx_strv_push(*env, line);
        n++;
    }
    return 0;
}

/* The options exec and enter share; 0, 1 for --help, or -1 with *err. */
static int take_option(const char *cmd, int c, char **argv, const char *shortopts,
                       struct dbx_exec_opts *o, bool *shell, char ***env, char ***env_files,
                       dbx_error **err) {
    switch (c) {
    case 'i':
        o->interactive = true;
        return 0;
    case 't':
        o->tty = true;
        return 0;
    case 'e':
        *env = dbx_strv_push(*env, optarg);
        return 0;
    case OPT_ENV_FILE:
        *env_files = dbx_strv_push(*env_files, optarg);
        return 0;
    case 'w':
        o->workdir = optarg;
        return 0;
    case 'u':
        o->user = optarg;
        return 0;
    case OPT_ADMIN:
        o->admin = true;
        return 0;
    case OPT_SHELL:
        *shell = true;
        return 0;
    case 'd':
        o->detach = true;
        return 0;
    case OPT_TIMEOUT:
        if (dbx_parse_duration_ms(optarg, &o->timeout_ms, err) < 0)
            return dbx_error_wrap(err, "%s: --timeout", cmd), -1;
        return 0;
    case 'h': /* with other options; `exec --help` alone is the dispatcher's */
        return 1;
    default:
        cmd_getopt_error(cmd, c, argv, shortopts, err);
        return -1;
    }
}

/* Parse exec's (enter: its subset of) options into *o; the env files are read, their entries
 * first.  optind, 0 after --help (printed), or -1 after an error (printed). */
static int parse_options(const char *cmd, int argc, char **argv, const char *shortopts,
                         const struct option *longopts, struct dbx_exec_opts *o, bool *shell,
                         char ***env) {
    _cleanup_strv_ char **dash_e = NULL, **env_files = NULL;
    _cleanup_error_ dbx_error *err = NULL;
    int c;
    optind = 0; /* not 1: glibc then starts afresh (its ordering, a bundle left half read) */
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        int r = take_option(cmd, c, argv, shortopts, o, shell, &dash_e, &env_files, &err);
        if (r == 1) return cmd_usage_of(stdout, cmd), 0;
        if (r < 0) return cmd_fail(&err), -1;
    }
#ifdef DBX_LEAN
    /* the full devbox may take over later (a stopped box, a config.ini) and parse again: a file
     * read here would be read twice, and a pipe (--env-file <(...)) would be empty the second
     * time; so the full devbox reads it, once */
    if (env_files) cmd_lean_handover("--env-file");
#endif
    for (char **f = env_files; f && *f; f++)
        if (env_file_read(cmd, *f, env, &err) < 0) return cmd_fail(&err), -1;
    for (char **e = dash_e; e && *e; e++)
        *env = dbx_strv_push(*env, *e);
    if (o->admin && o->user && !dbx_user_is_root(o->user)) {
        fprintf(stderr, "devbox: %s: --admin runs as root; it cannot run as '%s'\n", cmd, o->user);
        return -1;
    }
    return optind;
}

int cmd_exec(struct cmd_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {
        {"interactive", no_argument, NULL, 'i'},
        {"tty", no_argument, NULL, 't'},
        {"env", required_argument, NULL, 'e'},
        {"env-file", required_argument, NULL, OPT_ENV_FILE},
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
    int first = parse_options("exec", argc, argv, shortopts, longopts, &o, &shell, &env);
    if (first <= 0) return first < 0 ? 125 : 0;
    if (first >= argc) {
        fprintf(stderr, "devbox: exec: no command given\n");
        return 125;
    }
    if (o.detach && (o.interactive || o.tty)) {
        fprintf(stderr, "devbox: exec: -d runs without a terminal or stdin; it cannot take -i or "
                        "-t\n");
        return 125;
    }
    if (shell && argc - first != 1) {
        fprintf(stderr, "devbox: exec: --shell takes one command string (quote it: --shell "
                        "'CMD ARG...')\n");
        return 125;
    }
    char *shell_argv[] = {"/bin/sh", "-c", (char *)shell_script, "sh", NULL, NULL};
    o.env = env;
    if (shell) {
        shell_argv[4] = argv[first];
        o.argv = shell_argv;
    } else
        o.argv = argv + first;
    return cmd_exec_run(ctx, &o);
}

/* `devbox enter`: the user's login shell, with exec's options that make sense for one (`enter
 * --admin` for a root shell, `-w sub`, `-u`, `-e`, `--env-file`); -i and -t are implied. */
int cmd_enter(struct cmd_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {
        {"env", required_argument, NULL, 'e'},
        {"env-file", required_argument, NULL, OPT_ENV_FILE},
        {"workdir", required_argument, NULL, 'w'},
        {"user", required_argument, NULL, 'u'},
        {"admin", no_argument, NULL, OPT_ADMIN},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char shortopts[] = "+:e:w:u:h";
    char *none[] = {NULL};
    struct dbx_exec_opts o = {0};
    bool shell = false;
    _cleanup_strv_ char **env = NULL;
    int first = parse_options("enter", argc, argv, shortopts, longopts, &o, &shell, &env);
    if (first <= 0) return first < 0 ? 125 : 0;
    if (first < argc) {
        _cleanup_free_ char *a = dbx_escape(argv[first]);
        fprintf(stderr, "devbox: enter: unexpected '%s' (a command: devbox exec -it -- CMD)\n", a);
        return 125;
    }
    o.interactive = true;
    o.tty = isatty(0) == 1;
    o.login = true;
    o.argv = none;
    o.env = env;
    return cmd_exec_run(ctx, &o);
}

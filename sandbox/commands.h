/* sandbox/commands.h: the subcommands main() dispatches to.  Each returns the process exit
 * code; devbox's own failures print one "devbox: ..." line (in main) and return 125. */
#pragma once

#include "sandbox.h"

struct cmd_ctx {
    const char *version; /* the build's (the Makefile's VERSION), set by main */
    const char *dir;     /* -C DIR, or NULL */
    bool network_none;   /* --network none */
    struct dbx_paths paths;
};

/* devbox's global options (-C DIR, --network none, -h/--help, --version) before the
 * subcommand, into ctx, the same for the lean client and the full devbox (which is handed the
 * same argv).  -1 with *ret_i the subcommand's index in argv; else the exit code, after the
 * usage (each binary's own), the version or a one-line error. */
int cmd_parse_global(int argc, char **argv, struct cmd_ctx *ctx, int (*usage)(FILE *), int *ret_i);
/* At the end of command name (NULL: devbox's own options) with exit code rc: a write error on
 * stdout (a full disk under `devbox status > file`) is one line, and 125 when rc was 0, as
 * coreutils' close_stdout; a reader gone (EPIPE) is not an error.  The exit code. */
int cmd_stdout_done(const char *name, int rc);
/* First thing in main: a closed stdin, stdout or stderr held (dbx_stdio_reserve).  0, or 125
 * when it could not be (said on stderr, if there is one). */
int cmd_stdio_reserve(void);
/* Print err as the one line devbox prints for a failure; returns 125. */
int cmd_fail(dbx_error **err);
/* cmd_fail for a command line larger than execve takes (dbx_exec_req_build, dbx_exec's
 * -E2BIG): 126, as a shell's exec of it exits, on the host or in the box. */
int cmd_fail_e2big(dbx_error **err);
/* -h or --help. */
bool cmd_is_help(const char *arg);
#ifdef DBX_LEAN
/* The lean client hands this command to the full devbox (lean-main.c): for what it would
 * otherwise do twice, as reading an --env-file that is a pipe. */
_Noreturn void cmd_lean_handover(const char *why);
#endif
/* What getopt_long refused, as an error naming the option as typed: "NAME: invalid option
 * '-x' (see devbox NAME --help)".  Call it with getopt's return c (':' or '?': opterr = 0 and
 * shortopts starting with ':', after a '+' if any) and the argv getopt parsed.  A long option
 * that has no short form and takes no value must have a val above 255.  Returns < 0. */
int cmd_getopt_error(const char *name, int c, char **argv, const char *shortopts, dbx_error **err);
/* Find the project for ctx (-C or cwd) and print the error if there is none. */
int cmd_project(struct cmd_ctx *ctx, struct dbx_project *ret);
/* The project an operand names (a path, or an id as `devbox ls` shows it, which reaches one
 * whose repository is gone: dbx_project_lookup), else (which NULL) ctx's, as cmd_project; 0, or
 * the exit code once the error is printed. */
int cmd_target(struct cmd_ctx *ctx, const char *which, struct dbx_project *ret);

/* One option in a command's table for cmd_parse_args: its name and an alias ("--follow", "-f";
 * alias may be NULL), and what it sets: *flag to true; or *num to the next word (or what
 * follows "--name="), a number from 0 to max; or *choice to value, one of several options that
 * exclude each other (logs --network, --setup, ...).  A table ends with {NULL}. */
struct cmd_opt {
    const char *name, *alias;
    bool *flag;
    uint64_t *num;
    uint64_t max;
    const char **choice;
    const char *value;
};
/* argv[1..] (argv[0] the command's name, for messages) against opts: options anywhere, and at
 * most max_ops operands (words not starting with '-', and every word after "--") into ops, their
 * count in *ret_nops (may be NULL when max_ops is 0 or 1).  < 0 with err naming what is wrong:
 * "status: invalid option '-x' (see devbox status --help)". */
int cmd_parse_args(int argc, char **argv, const struct cmd_opt *opts, const char **ops,
                   size_t max_ops, size_t *ret_nops, dbx_error **err);
/* `NAME [OPTION...] [PATH|ID]`: cmd_parse_args with one operand at most, then its project
 * (cmd_target).  0, or the exit code once the error is printed. */
int cmd_args_project(struct cmd_ctx *ctx, int argc, char **argv, const struct cmd_opt *opts,
                     struct dbx_project *ret);

/* The full devbox's usage (cmd-help.c): every line of the command table; 0 on stdout, 125 on
 * stderr (a usage error). */
int cmd_usage(FILE *f);
/* One command's usage (its table lines and help text), for `devbox NAME --help`, `devbox help
 * NAME` and a command's own -h: 0 on stdout, 125 on stderr or for a name not in the table.  The
 * lean client's hands the command line to the full devbox (lean-main.c). */
int cmd_usage_of(FILE *f, const char *name);
/* For a command with subcommands (its table entry's `subs`, the words completion offers): when
 * `word` is none of them, one line naming it (and the nearest one, as for an unknown command)
 * and true; else false (an option, "-...", too), and the caller says what else was wrong. */
bool cmd_unknown_sub(const char *cmd, const char *word);
/* `devbox [-C DIR] COMMAND ARG...` once the global options are parsed (argv[0] the command):
 * `COMMAND -h|--help` alone prints its usage, any other runs it.  The exit code. */
int cmd_dispatch(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_help(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_version(struct cmd_ctx *ctx, int argc, char **argv);

int cmd_exec(struct cmd_ctx *ctx, int argc, char **argv);
/* exec's and enter's last step, once the options are parsed: the full devbox's runs the command
 * (cmd-exec.c); the lean client's (lean-main.c) runs it when it can, else execs the full one. */
int cmd_exec_run(struct cmd_ctx *ctx, struct dbx_exec_opts *o);
int cmd_enter(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_status(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_ls(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_stop(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_rm(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_restart(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_image(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_port(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_logs(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_pull(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_images(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_rmi(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_profile(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_trust(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_reset(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_setup(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_completion(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_events(struct cmd_ctx *ctx, int argc, char **argv);
/* issue 13: processes (cmd-ps.c) */
int cmd_ps(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_kill(struct cmd_ctx *ctx, int argc, char **argv);
/* -n N of logs and events: at most this many lines */
#define CMD_LINES_MAX 1000000u
/* Following a file as `tail -F` does (cmd-logs.c; logs -f, events --follow): what is appended
 * to it, across a rotation or a replacement (a new file at its name: the old one read to its end
 * first) and a truncation (read again from its start), polled 4 times a second until done says
 * so, the directory is removed (the project was), or stdout is gone.  0. */
struct cmd_tail {
    int dfd;          /* the directory holding name (the caller's) */
    const char *name; /* the file in it */
    int *fd;          /* the caller's fd on name (-1: none yet), read as far as shown; replaced
                       * by the new file's on a rotation (the old one closed) */
    /* print what *fd holds past its offset; < 0: stop following (stdout is gone) */
    int (*show)(struct cmd_tail *t);
    /* *fd is read from its start now (a new file, or truncated): forget what show kept of the
     * old (NULL: nothing) */
    void (*reset)(struct cmd_tail *t);
    /* whether to end (NULL: never), asked before a last show, so nothing written before the
     * end is missed */
    bool (*done)(struct cmd_tail *t);
    void *arg;
};
int cmd_tail_follow(struct cmd_tail *t);
int cmd_stats(struct cmd_ctx *ctx, int argc, char **argv); /* issue 13 (helper B) */
/* issue 13, cleaning up (helper F) */
int cmd_gc(struct cmd_ctx *ctx, int argc, char **argv);
/* issue 12: the devbox kernel (cmd-kernel.c): `kernel build|status`, and the background build
 * the supervisor starts as `devbox __kernel-autobuild` (main.c) */
int cmd_kernel(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_kernel_autobuild(void);
/* issue 15: `devbox export kubernetes` (cmd-export.c) */
int cmd_export(struct cmd_ctx *ctx, int argc, char **argv);

/* One line of devbox's usage: cmd_dispatch() dispatches on name (the first entry of that name)
 * and prints usage + desc, and help (NULL, or lines explaining the options, on the first entry
 * of a name) after a command's own usage lines; `devbox completion` offers flags and subs
 * (space-separated, or NULL; on the first entry of a name) after the command.  Defined in
 * cmd-completion.c. */
struct cmd_def {
    const char *name;
    int (*fn)(struct cmd_ctx *, int, char **);
    const char *usage, *desc;
    const char *flags, *subs;
    const char *help;
};
extern const struct cmd_def cmd_table[];
extern const size_t cmd_table_len;

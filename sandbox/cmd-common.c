/* sandbox/cmd-common.c: what every command shares: the one place errors are printed, the global
 * options, getopt's refusals as errors. */
#define _GNU_SOURCE
#include "commands.h"

#include "../common/protocol.h"

#include <getopt.h>

int cmd_fail(dbx_error **err) {
    /* Messages carry names, paths and guest text: never raw terminal controls (\e, C1). */
    _cleanup_free_ char *m = dbx_escape(*err ? (*err)->msg : "failed");
    fprintf(stderr, "devbox: %s\n", m);
    dbx_error_free(err);
    return 125;
}

int cmd_fail_e2big(dbx_error **err) {
    cmd_fail(err);
    return DBX_ERR_NOT_EXEC;
}

int cmd_stdout_done(const char *name, int rc) {
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return rc;
    int e = errno;
    if (e == EPIPE) return rc; /* its reader is gone (`| head`): not ours to report */
    _cleanup_free_ char *n = name ? dbx_xasprintf("%s: ", name) : dbx_xstrdup(""),
                        *ne = dbx_escape(n);
    if (e)
        fprintf(stderr, "devbox: %swrite to stdout: %s\n", ne, strerror(e));
    else
        fprintf(stderr, "devbox: %swrite to stdout failed\n", ne);
    return rc ? rc : 125;
}

int cmd_stdio_reserve(void) {
    int r = dbx_stdio_reserve();
    if (r == 0) return 0;
    fprintf(stderr, "devbox: a standard fd is closed and nothing will open to hold it: %s\n",
            strerror(-r));
    return 125;
}

int cmd_parse_global(int argc, char **argv, struct cmd_ctx *ctx, int (*usage)(FILE *), int *ret_i) {
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-C") == 0 && i + 1 < argc) {
            ctx->dir = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "-C", 2) == 0 && argv[i][2]) {
            ctx->dir = argv[i] + 2;
            i++;
        } else if (strcmp(argv[i], "--network") == 0 && i + 1 < argc) {
            /* Only ever narrows: the one mode a command line may force is none. */
            if (strcmp(argv[i + 1], "none") != 0) {
                fprintf(stderr,
                        "devbox: --network takes only 'none' (a profile sets wider modes)\n");
                return 125;
            }
            ctx->network_none = true;
            i += 2;
        } else if (cmd_is_help(argv[i])) {
            return usage(stdout);
        } else if (!strcmp(argv[i], "--version")) {
            printf("devbox %s\n", ctx->version);
            return 0; /* a write error: cmd_stdout_done */
        } else {
            _cleanup_free_ char *o = dbx_escape(argv[i]);
            fprintf(stderr, "devbox: unknown option '%s'\n", o);
            return usage(stderr);
        }
    }
    if (i >= argc) return usage(stderr);
    *ret_i = i;
    return -1;
}

bool cmd_is_help(const char *arg) {
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* getopt's own messages ("exec: invalid option -- 'x'") lack devbox's prefix and the way to
 * the usage.  What glibc leaves: optopt is the short option, a long option's val, or 0 for a
 * long option it does not know (or an ambiguous abbreviation); a long option, and a short one
 * missing its value, is argv[optind - 1] (optind has stepped past it), while an unknown short
 * option may sit inside a bundle ("-ix") optind has not left yet.  So a '?' with an optopt
 * that is no short option of shortopts is that short option, and one that is (or a val above
 * 255: a long option without a short form) is a long option given a value it does not take. */
int cmd_getopt_error(const char *name, int c, char **argv, const char *shortopts, dbx_error **err) {
    const char *el = optind > 0 ? argv[optind - 1] : "";
    bool known = optopt > 255 || (optopt > 0 && optopt != ':' && strchr(shortopts, optopt));
    bool is_long = c == ':' ? strncmp(el, "--", 2) == 0 : optopt == 0 || known;
    const char *what = c == ':' ? "needs a value" : known ? "takes no value" : NULL;
    _cleanup_free_ char *opt =
        is_long ? dbx_xstrndup(el, strcspn(el, "=")) : dbx_xasprintf("-%c", (char)optopt);
    if (what)
        return dbx_error_setx(err, EINVAL, "%s: option '%s' %s (see devbox %s --help)", name, opt,
                              what, name);
    return dbx_error_setx(err, EINVAL, "%s: invalid option '%s' (see devbox %s --help)", name, opt,
                          name);
}

#ifndef DBX_LEAN /* libgit2: the lean client finds its projects with dbx_project_find_lean */
int cmd_project(struct cmd_ctx *ctx, struct dbx_project *ret) {
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_project_find(&ctx->paths, ctx->dir, false, ret, &err) < 0) return cmd_fail(&err);
    return 0;
}

int cmd_target(struct cmd_ctx *ctx, const char *which, struct dbx_project *ret) {
    if (!which) return cmd_project(ctx, ret);
    _cleanup_error_ dbx_error *err = NULL;
    return dbx_project_lookup(&ctx->paths, which, ret, &err) < 0 ? cmd_fail(&err) : 0;
}

/* The option word (len bytes of it: "--tail" of "--tail=5") names. */
static const struct cmd_opt *find_opt(const struct cmd_opt *o, const char *word, size_t len) {
    for (; o->name; o++)
        if ((strlen(o->name) == len && strncmp(o->name, word, len) == 0) ||
            (o->alias && strlen(o->alias) == len && strncmp(o->alias, word, len) == 0))
            return o;
    return NULL;
}

/* An option's value: "--tail=5" or "-n 5" (word: the option as typed). */
static int opt_value(const char *name, const char *word, char **argv, int argc, int *i,
                     const char *eq, const struct cmd_opt *o, dbx_error **err) {
    const char *v = eq ? eq + 1 : *i + 1 < argc ? argv[++*i] : NULL;
    if (!v)
        return dbx_error_setx(err, EINVAL, "%s: option '%s' needs a value (see devbox %s --help)",
                              name, word, name);
    if (dbx_parse_u64(v, 0, o->max, o->num) < 0)
        return dbx_error_setx(err, EINVAL,
                              "%s: option '%s' takes a number from 0 to %llu, not '%s'", name, word,
                              (unsigned long long)o->max, v);
    return 0;
}

/* One of several options that exclude each other (the same choice): the one given before. */
static const char *chosen(const struct cmd_opt *opts, const struct cmd_opt *o) {
    for (; opts->name; opts++)
        if (opts->choice == o->choice && strcmp(opts->value, *o->choice) == 0) return opts->name;
    return "?";
}

int cmd_parse_args(int argc, char **argv, const struct cmd_opt *opts, const char **ops,
                   size_t max_ops, size_t *ret_nops, dbx_error **err) {
    const char *name = argv[0];
    size_t n = 0;
    bool operands_only = false; /* after "--" */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!operands_only && strcmp(a, "--") == 0) {
            operands_only = true;
        } else if (operands_only || a[0] != '-' || a[1] == '\0') {
            if (n >= max_ops)
                return dbx_error_setx(err, EINVAL,
                                      "%s: unexpected argument '%s' (see devbox %s --help)", name,
                                      a, name);
            ops[n++] = a;
        } else {
            const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            const struct cmd_opt *o = find_opt(opts, a, len);
            _cleanup_free_ char *word = dbx_xstrndup(a, len);
            if (!o)
                return dbx_error_setx(err, EINVAL, "%s: invalid option '%s' (see devbox %s --help)",
                                      name, word, name);
            if (eq && !o->num)
                return dbx_error_setx(err, EINVAL,
                                      "%s: option '%s' takes no value (see devbox %s --help)", name,
                                      word, name);
            if (o->flag) {
                *o->flag = true;
            } else if (o->num) {
                if (opt_value(name, word, argv, argc, &i, eq, o, err) < 0) return -EINVAL;
            } else if (o->choice) {
                if (*o->choice && strcmp(*o->choice, o->value) != 0)
                    return dbx_error_setx(err, EINVAL, "%s: '%s' and '%s' exclude each other", name,
                                          chosen(opts, o), o->name);
                *o->choice = o->value;
            }
        }
    }
    if (ret_nops) *ret_nops = n;
    return 0;
}

int cmd_args_project(struct cmd_ctx *ctx, int argc, char **argv, const struct cmd_opt *opts,
                     struct dbx_project *ret) {
    _cleanup_error_ dbx_error *err = NULL;
    const char *which = NULL;
    if (cmd_parse_args(argc, argv, opts, &which, 1, NULL, &err) < 0) return cmd_fail(&err);
    return cmd_target(ctx, which, ret);
}
#endif

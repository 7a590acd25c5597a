/* sandbox/cmd-help.c: the full devbox's front: the dispatch from the command table
 * (cmd-completion.c), and what is printed from that table: `devbox --help` and `devbox help`,
 * `devbox COMMAND --help` and `devbox help COMMAND`, `devbox version`.  Help is the
 * dispatcher's, not each command's: one table line per usage, so a command cannot lack it or
 * say it differently from `devbox --help`. */
#define _GNU_SOURCE
#include "commands.h"

#define USAGE_COLUMN 25

#define USAGE_WIDTH 100

/* "  devbox USAGE  DESC", DESC in a column, or on a line of its own under a long USAGE that
 * would take the line past USAGE_WIDTH */
static void print_line(FILE *f, const struct cmd_def *c) {
    int len = (int)strlen(c->usage), indent = (int)strlen("  devbox ") + USAGE_COLUMN;
    if (len > USAGE_COLUMN && indent + len - USAGE_COLUMN + 2 + (int)strlen(c->desc) > USAGE_WIDTH)
        fprintf(f, "  devbox %s\n%*s  %s\n", c->usage, indent, "", c->desc);
    else
        fprintf(f, "  devbox %s%*s  %s\n", c->usage, len < USAGE_COLUMN ? USAGE_COLUMN - len : 0,
                "", c->desc);
}

int cmd_usage(FILE *f) {
    fprintf(f, "usage: devbox [-C DIR] [--network none] COMMAND ...\n"
               "       devbox --help | --version\n\n");
    for (size_t i = 0; i < cmd_table_len; i++)
        print_line(f, &cmd_table[i]);
    fprintf(f, "\nThe project is the git work tree containing the current directory (or DIR);\n"
               "in a submodule, its superproject's.\n"
               "devbox COMMAND --help (or devbox help COMMAND): that command's usage.\n"
               "Environment: DEVBOX_HOME (all state under one directory), DEVBOX_ACCEL=kvm|tcg,\n"
               "DEVBOX_KERNEL=auto|devbox|debian (the guest kernel).\n");
    return f == stdout ? 0 : 125;
}

static const struct cmd_def *find(const char *name) {
    for (size_t i = 0; i < cmd_table_len; i++)
        if (strcmp(cmd_table[i].name, name) == 0) return &cmd_table[i];
    return NULL;
}

/* Edit distance (insert, delete, substitute, swap two neighbours) of a and b, or cap + 1 at
 * once when their lengths alone differ by more than cap or either is over 32 bytes (command
 * names are short; a typed word may be anything). */
static size_t edits(const char *a, const char *b, size_t cap) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32 || (la > lb ? la - lb : lb - la) > cap) return cap + 1;
    size_t d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

/* The name among names[0..n) that `word` is a typo of: two edits for a word of 6 or more, one
 * for a shorter one, never the whole word ('x' is no typo of 'ls', 'fish' none of 'zsh'); else
 * the one name it begins (`ent`), when only one does.  NULL when none.  names may repeat (the
 * command table). */
static const char *nearest(const char *word, const char *const *names, size_t n) {
    size_t len = strlen(word), cap = len >= 6 ? 2 : len >= 2 ? 1 : 0;
    const char *best = NULL;
    size_t best_d = cap + 1;
    for (size_t i = 0; i < n; i++) {
        size_t d = edits(word, names[i], cap);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    if (best || len < 2) return best;
    const char *prefix_of = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], word, len) != 0) continue;
        if (prefix_of && strcmp(prefix_of, names[i]) != 0) return NULL; /* two: no guess */
        prefix_of = names[i];
    }
    return prefix_of;
}

/* "devbox: unknown WHAT 'word' (did you mean 'x'? see devbox HELP --help)" */
static void unknown_line(const char *what, const char *word, const char *near, const char *help) {
    _cleanup_free_ char *w = dbx_escape(word);
    fprintf(stderr, "devbox: unknown %s '%s' (%s%s%ssee devbox %s%s--help)\n", what, w,
            near ? "did you mean '" : "", near ? near : "", near ? "'? " : "", help ? help : "",
            help ? " " : "");
}

/* One line for a command name we do not have, with the nearest one (found in use: `devbox exe`
 * printed the whole usage, 40 lines, after its line).  125. */
static int unknown_command(const char *name) {
    _cleanup_free_ const char **names = dbx_xcalloc(cmd_table_len, sizeof(*names));
    for (size_t i = 0; i < cmd_table_len; i++)
        names[i] = cmd_table[i].name;
    unknown_line("command", name, nearest(name, names, cmd_table_len), NULL);
    return 125;
}

bool cmd_unknown_sub(const char *cmd, const char *word) {
    const struct cmd_def *c = find(cmd); /* a command's first entry holds its subs */
    if (!c || !c->subs || word[0] == '-') return false;
    _cleanup_free_ char *copy = dbx_xstrdup(c->subs);
    _cleanup_strv_ char **subs = NULL;
    char *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
        subs = dbx_strv_push(subs, t);
    size_t n = dbx_strv_len(subs);
    for (size_t i = 0; i < n; i++)
        if (strcmp(subs[i], word) == 0) return false;
    _cleanup_free_ char *what = dbx_xasprintf("%s subcommand", cmd);
    unknown_line(what, word, nearest(word, (const char *const *)subs, n), cmd);
    return true;
}

/* The command's usage lines, then its help text (the first entry's). */
int cmd_usage_of(FILE *f, const char *name) {
    const struct cmd_def *first = find(name);
    if (!first) return unknown_command(name);
    fprintf(f, "usage:\n");
    for (size_t i = 0; i < cmd_table_len; i++)
        if (strcmp(cmd_table[i].name, name) == 0) print_line(f, &cmd_table[i]);
    if (first->help) fprintf(f, "\n%s", first->help);
    return f == stdout ? 0 : 125;
}

/* Commands that only print: they make no state directory (make install runs `devbox completion`
 * as whoever builds, with whatever HOME). */
static bool prints_only(const struct cmd_def *c) {
    return c->fn == cmd_help || c->fn == cmd_version || c->fn == cmd_completion;
}

int cmd_dispatch(struct cmd_ctx *ctx, int argc, char **argv) {
    const struct cmd_def *c = find(argv[0]);
    if (!c) return unknown_command(argv[0]);
    /* before the command parses anything: no project, no state directory needed.  -h among
     * other arguments too (`status --json --help`), up to a "--"; exec, enter and export parse
     * theirs with getopt, which stops at their command or takes -h itself */
    bool getopt_cmd = c->fn == cmd_exec || c->fn == cmd_enter || c->fn == cmd_export;
    for (int i = 1; i < argc && (i == 1 || !getopt_cmd) && strcmp(argv[i], "--") != 0; i++)
        if (cmd_is_help(argv[i])) return cmd_usage_of(stdout, c->name);
    if (prints_only(c)) return c->fn(ctx, argc, argv);
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_paths_init(&ctx->paths, &err) < 0) return cmd_fail(&err);
    int rc = c->fn(ctx, argc, argv);
    dbx_paths_clear(&ctx->paths);
    return rc;
}

/* `devbox help [COMMAND]` */
int cmd_help(struct cmd_ctx *ctx, int argc, char **argv) {
    (void)ctx;
    if (argc == 1) return cmd_usage(stdout);
    if (argc == 2) return cmd_usage_of(stdout, argv[1]);
    fprintf(stderr, "usage: devbox help [COMMAND]\n");
    return 125;
}

/* `devbox version`, as `devbox --version` (cmd_parse_global) */
int cmd_version(struct cmd_ctx *ctx, int argc, char **argv) {
    if (argc > 1) {
        _cleanup_free_ char *a = dbx_escape(argv[1]);
        fprintf(stderr, "devbox: version: unknown argument '%s'\n", a);
        return 125;
    }
    printf("devbox %s\n", ctx->version);
    return 0; /* a write error: cmd_stdout_done */
}

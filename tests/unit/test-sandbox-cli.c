/* Unit tests: devbox's command line before any command runs (cmd-help.c, cmd-common.c, the
 * table of cmd-completion.c): every command of the table prints its usage for a lone -h or
 * --help and for `devbox help COMMAND` (stdout, exit 0, no state directory), `devbox help` is
 * `devbox --help`, --version and `devbox version` say "devbox VERSION", usage errors stay on
 * stderr with 125, getopt's refusals become one "devbox: NAME: ..." line naming the option as
 * typed, and the zsh completion lists each command once; the options of the other commands
 * (cmd_parse_args), and the PATH|ID operand status, ps, stats, events and restart take (a
 * project whose repository is gone, by its id); ps and port ls of a stopped box. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <getopt.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "helpers.h"
#include "sandbox/commands.h"
#include "sandbox/sandbox-internal.h"

/* What `devbox ARGV...` (after the global options) prints and returns, through the dispatcher. */
struct run {
    int rc;
    char *out, *err;
};

static struct run dispatch(int argc, char **argv) {
    struct cmd_ctx ctx = {.version = "1.2-test"};
    struct run r = {0};
    r.rc = test_run_cmd(cmd_dispatch, &ctx, argv, &r.out, &r.err);
    assert_null(argv[argc]);
    return r;
}

static void run_clear(struct run *r) {
    free(r->out);
    free(r->err);
}

/* The table's line for c as the usage prints it, up to its description. */
static bool has_usage_line(const char *text, const struct cmd_def *c) {
    _cleanup_free_ char *line = dbx_xasprintf("\n  devbox %s ", c->usage);
    _cleanup_free_ char *wrapped = dbx_xasprintf("\n  devbox %s\n", c->usage);
    return strstr(text, line) || strstr(text, wrapped);
}

/* A failed check names the command it was about. */
static void check(bool ok, const char *name, const char *what) {
    if (!ok) print_message("devbox %s: %s\n", name, what);
    assert_true(ok);
}

static void test_help_of_every_command(void **state) {
    (void)state;
    char *dir = dbx_xasprintf("%s/home", test_tmp);
    for (size_t i = 0; i < cmd_table_len; i++) {
        const char *name = cmd_table[i].name;
        struct run h = dispatch(2, (char *[]){(char *)name, "--help", NULL});
        struct run s = dispatch(2, (char *[]){(char *)name, "-h", NULL});
        struct run hc = dispatch(2, (char *[]){"help", (char *)name, NULL});
        check(h.rc == 0 && !*h.err && strncmp(h.out, "usage:\n", 7) == 0, name,
              "--help: not its usage on stdout with exit 0");
        /* every usage line of that name (exec's three, logs' two), no other command's */
        for (size_t k = 0; k < cmd_table_len; k++)
            check(has_usage_line(h.out, &cmd_table[k]) == (strcmp(cmd_table[k].name, name) == 0),
                  name, cmd_table[k].usage);
        check(s.rc == 0 && strcmp(s.out, h.out) == 0, name, "-h is not --help");
        check(hc.rc == 0 && strcmp(hc.out, h.out) == 0, name, "`help NAME` is not --help");
        run_clear(&h), run_clear(&s), run_clear(&hc);
    }
    /* help needs no state: nothing was made */
    struct stat st;
    assert_int_equal(stat(dir, &st), -1);
    free(dir);
}

static void test_help_and_usage(void **state) {
    (void)state;
    struct run h = dispatch(1, (char *[]){"help", NULL});
    assert_int_equal(h.rc, 0);
    fflush(stdout);
    int so = dup(1), fo = memfd_create("usage", MFD_CLOEXEC);
    dup2(fo, 1);
    assert_int_equal(cmd_usage(stdout), 0);
    fflush(stdout);
    dup2(so, 1);
    char *usage = test_fd_text(fo);
    close(so), close(fo);
    assert_string_equal(h.out, usage);
    for (size_t i = 0; i < cmd_table_len; i++)
        assert_true(has_usage_line(usage, &cmd_table[i]));
    free(usage);
    run_clear(&h);
    /* exec's options, every one (its getopt table), and --timeout on the main line */
    h = dispatch(2, (char *[]){"exec", "--help", NULL});
    static const char *const opts[] = {
        "-i, --interactive", "-t, --tty",          "-e, --env K=V", "-e K:",
        "-w, --workdir DIR", "-u, --user USER",    "--admin",       "--shell",
        "-d, --detach",      "--timeout DURATION", "-h, --help"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(opts); i++)
        assert_non_null(strstr(h.out, opts[i]));
    assert_non_null(strstr(cmd_table[0].usage, "[--timeout DURATION]"));
    /* the same text for `exec -i --help` (exec's own getopt) */
    struct run e = dispatch(3, (char *[]){"exec", "-i", "--help", NULL});
    assert_int_equal(e.rc, 0);
    assert_string_equal(e.out, h.out);
    run_clear(&h), run_clear(&e);
    /* an unknown command: stderr, 125 */
    h = dispatch(2, (char *[]){"help", "nosuch", NULL});
    assert_int_equal(h.rc, 125);
    assert_string_equal(h.out, "");
    assert_string_equal(h.err, "devbox: unknown command 'nosuch' (see devbox --help)\n");
    run_clear(&h);
}

static void test_version(void **state) {
    (void)state;
    struct run v = dispatch(1, (char *[]){"version", NULL});
    assert_int_equal(v.rc, 0);
    assert_string_equal(v.out, "devbox 1.2-test\n");
    run_clear(&v);
    v = dispatch(2, (char *[]){"version", "x", NULL});
    assert_int_equal(v.rc, 125);
    assert_string_equal(v.out, "");
    assert_string_equal(v.err, "devbox: version: unknown argument 'x'\n");
    run_clear(&v);
    /* --version among the global options */
    struct cmd_ctx ctx = {.version = "1.2-test"};
    int i = 0;
    fflush(stdout);
    int so = dup(1), fo = memfd_create("out", MFD_CLOEXEC);
    dup2(fo, 1);
    int rc = cmd_parse_global(4, (char *[]){"devbox", "-C", "/", "--version", NULL}, &ctx,
                              cmd_usage, &i);
    fflush(stdout);
    dup2(so, 1);
    char *out = test_fd_text(fo);
    close(so), close(fo);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "devbox 1.2-test\n");
    free(out);
}

/* Usage errors: one line (or the usage) on stderr, nothing on stdout, 125. */
static void usage_error(const char *want, int argc, char **argv) {
    struct run r = dispatch(argc, argv);
    assert_int_equal(r.rc, 125);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, want);
    run_clear(&r);
}

static void test_usage_errors(void **state) {
    (void)state;
    usage_error("devbox: exec: invalid option '-x' (see devbox exec --help)\n", 3,
                (char *[]){"exec", "-x", "true", NULL});
    /* inside a bundle, after a long option */
    usage_error("devbox: exec: invalid option '-x' (see devbox exec --help)\n", 4,
                (char *[]){"exec", "--tty", "-ixt", "true", NULL});
    usage_error("devbox: exec: invalid option '--bogus' (see devbox exec --help)\n", 3,
                (char *[]){"exec", "--bogus=1", "true", NULL});
    usage_error("devbox: exec: invalid option '--t' (see devbox exec --help)\n", 3,
                (char *[]){"exec", "--t", "true", NULL}); /* --tty or --timeout */
    usage_error("devbox: exec: option '--timeout' needs a value (see devbox exec --help)\n", 2,
                (char *[]){"exec", "--timeout", NULL});
    usage_error("devbox: exec: option '-e' needs a value (see devbox exec --help)\n", 2,
                (char *[]){"exec", "-ie", NULL});
    usage_error("devbox: exec: option '--tty' takes no value (see devbox exec --help)\n", 3,
                (char *[]){"exec", "--tty=1", "true", NULL});
    usage_error("devbox: exec: option '--shell' takes no value (see devbox exec --help)\n", 3,
                (char *[]){"exec", "--shell=x", "true", NULL});
    usage_error("devbox: export: invalid option '-x' (see devbox export --help)\n", 3,
                (char *[]){"export", "kubernetes", "-x", NULL});
    usage_error("devbox: export: option '--namespace' needs a value (see devbox export --help)\n",
                3, (char *[]){"export", "kubernetes", "--namespace", NULL});
    usage_error("devbox: status: invalid option '--bogus' (see devbox status --help)\n", 2,
                (char *[]){"status", "--bogus", NULL});
    usage_error("devbox: ps: invalid option '--bogus' (see devbox ps --help)\n", 2,
                (char *[]){"ps", "--bogus", NULL});
    /* --help among other arguments is help too (not after "--"; exec's command keeps its own) */
    struct run h = dispatch(3, (char *[]){"stop", "--all", "--help", NULL});
    assert_int_equal(h.rc, 0);
    assert_non_null(strstr(h.out, "devbox stop [PATH|ID]"));
    assert_string_equal(h.err, "");
    run_clear(&h);
    usage_error("devbox: stop: unexpected argument '--help' (see devbox stop --help)\n", 4,
                (char *[]){"stop", "--", "a", "--help", NULL});
    /* one PATH or ID at most; --all names none */
    usage_error("devbox: status: unexpected argument 'b' (see devbox status --help)\n", 3,
                (char *[]){"status", "a", "b", NULL});
    usage_error("devbox: restart: invalid option '-f' (see devbox restart --help)\n", 2,
                (char *[]){"restart", "-f", NULL});
    usage_error("devbox: rm: --all takes no PATH or ID\n", 3, (char *[]){"rm", "--all", "x", NULL});
    usage_error("devbox: stop: invalid option '--force' (see devbox stop --help)\n", 2,
                (char *[]){"stop", "--force", NULL});
    usage_error("devbox: events: option '-n' takes a number from 0 to 1000000, not 'x'\n", 3,
                (char *[]){"events", "-n", "x", NULL});
}

/* ---- options and the [PATH|ID] operand (cmd_parse_args, cmd_target) ---------------------- */

/* cmd_parse_args over argv (NULL-terminated); the error's message or NULL. */
static char *parse(char **argv, const struct cmd_opt *opts, const char **ops, size_t max,
                   size_t *n) {
    int argc = 0;
    while (argv[argc])
        argc++;
    dbx_error *err = NULL;
    int r = cmd_parse_args(argc, argv, opts, ops, max, n, &err);
    assert_true((r < 0) == (err != NULL));
    char *msg = err ? dbx_xstrdup(err->msg) : NULL;
    dbx_error_free(&err);
    return msg;
}

static void test_parse_args(void **state) {
    (void)state;
    bool json = false, follow = false;
    uint64_t num = 7;
    const char *which = NULL, *ops[2] = {0};
    size_t n = 9;
    const struct cmd_opt opts[] = {{"--json", NULL, .flag = &json},
                                   {"--follow", "-f", .flag = &follow},
                                   {"--tail", "-n", .num = &num, .max = 100},
                                   {"--network", NULL, .choice = &which, .value = "network.log"},
                                   {"--setup", NULL, .choice = &which, .value = "setup.log"},
                                   {NULL}};
    /* options anywhere, an alias, a value after the option or its '=', operands in order */
    assert_null(
        parse((char *[]){"logs", "a", "-f", "--tail=5", "--network", "b", NULL}, opts, ops, 2, &n));
    assert_true(follow && !json);
    assert_int_equal(num, 5);
    assert_string_equal(which, "network.log");
    assert_int_equal(n, 2);
    assert_string_equal(ops[0], "a");
    assert_string_equal(ops[1], "b");
    /* the same choice twice is fine; after "--" everything is an operand */
    assert_null(parse((char *[]){"logs", "--network", "-n", "0", "--network", "--", "-x", NULL},
                      opts, ops, 2, &n));
    assert_int_equal(num, 0);
    assert_int_equal(n, 1);
    assert_string_equal(ops[0], "-x");
    static const struct {
        char *argv[5];
        const char *want;
    } bad[] = {
        {{"logs", "--bogus"}, "logs: invalid option '--bogus' (see devbox logs --help)"},
        {{"logs", "--json=1"}, "logs: option '--json' takes no value (see devbox logs --help)"},
        {{"logs", "-n"}, "logs: option '-n' needs a value (see devbox logs --help)"},
        {{"logs", "--tail", "101"},
         "logs: option '--tail' takes a number from 0 to 100, not '101'"},
        {{"logs", "--tail=-1"}, "logs: option '--tail' takes a number from 0 to 100, not '-1'"},
        {{"logs", "--network", "--setup"}, "logs: '--network' and '--setup' exclude each other"},
        {{"logs", "a", "b", "c"}, "logs: unexpected argument 'c' (see devbox logs --help)"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        which = NULL;
        char *msg = parse((char **)bad[i].argv, opts, ops, 2, &n);
        check(msg && strcmp(msg, bad[i].want) == 0, bad[i].argv[1], msg ? msg : "accepted");
        free(msg);
    }
    /* no operands at all (ls) */
    char *msg = parse((char *[]){"ls", "x", NULL}, opts, NULL, 0, NULL);
    assert_string_equal(msg, "ls: unexpected argument 'x' (see devbox ls --help)");
    free(msg);
}

/* A project devbox knows whose repository was deleted: its id. */
static char *gone_project(void) {
    struct dbx_paths paths = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_paths_init(&paths, &err), 0);
    test_sh("mkdir -p %s/gone && git init -q %s/gone", test_tmp, test_tmp);
    char *dir = dbx_xasprintf("%s/gone", test_tmp);
    struct dbx_project p = {0};
    assert_int_equal(dbx_project_find(&paths, dir, false, &p, &err), 0);
    assert_int_equal(dbx_project_dirs(&p, &err), 0);
    struct dbx_project_rec r = {p.root, (char *)"default", (char *)"/b.raw", 1, (char *)""};
    assert_int_equal(dbx_project_rec_save(p.state_dir, &r, &err), 0);
    test_sh("rm -rf '%s'", dir);
    char *id = dbx_xstrdup(p.id);
    dbx_project_clear(&p);
    dbx_paths_clear(&paths);
    free(dir);
    return id;
}

/* `port ls` of a stopped box: [] for --json; the text says so, with what devbox.ini forwards
 * once it starts. */
static void test_port_ls_stopped(void **state) {
    (void)state;
    test_sh("mkdir -p %s/live && git init -q %s/live && printf '[ports]\\n3000 = 8000\\n' > "
            "%s/live/devbox.ini",
            test_tmp, test_tmp, test_tmp);
    char *here = getcwd(NULL, 0), *live = dbx_xasprintf("%s/live", test_tmp);
    assert_int_equal(chdir(live), 0);
    struct run r = dispatch(3, (char *[]){"port", "ls", "--json", NULL});
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "[]\n");
    run_clear(&r);
    r = dispatch(2, (char *[]){"port", "ls", NULL});
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "the box is not running; when it starts, devbox.ini forwards:\n"
                               "127.0.0.1:3000 -> 8000\n");
    assert_string_equal(r.err, "");
    run_clear(&r);
    usage_error("usage: devbox port add HOST:GUEST | rm HOST | ls [--json]\n", 3,
                (char *[]){"port", "ls", "--bogus", NULL});
    assert_int_equal(chdir(here), 0);
    free(here), free(live);
}

/* status, ps, stats, events and restart take the PATH|ID stop and rm take (a project whose
 * repository is gone, by its id); restart refuses such a one in one line. */
static void test_targets(void **state) {
    (void)state;
    char *id = gone_project();
    struct run r = dispatch(3, (char *[]){"status", "--json", id, NULL});
    assert_int_equal(r.rc, 0);
    _cleanup_free_ char *want = dbx_xasprintf("\"id\":\"%s\"", id);
    assert_non_null(strstr(r.out, want));
    assert_non_null(strstr(r.out, "\"state\":\"stopped\""));
    run_clear(&r);
    /* a stopped box runs nothing: said, or [], and success */
    r = dispatch(3, (char *[]){"ps", "--json", id, NULL});
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "[]\n");
    run_clear(&r);
    r = dispatch(2, (char *[]){"ps", id, NULL});
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "the box is not running\n");
    run_clear(&r);
    r = dispatch(2, (char *[]){"events", id, NULL});
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.err, "no events yet"));
    run_clear(&r);
    r = dispatch(2, (char *[]){"restart", id, NULL});
    assert_int_equal(r.rc, 125);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "devbox: restart: the repository '"));
    assert_non_null(strstr(r.err, "/gone' is gone: nothing to start (devbox stop "));
    assert_ptr_equal(strchr(r.err, '\n'), r.err + strlen(r.err) - 1); /* one line */
    run_clear(&r);
    /* an id nobody has, a path that is no project */
    r = dispatch(2, (char *[]){"stats", "ffffffffffffffff", NULL});
    assert_int_equal(r.rc, 125);
    assert_non_null(strstr(r.err, "'ffffffffffffffff' is not a project devbox knows"));
    run_clear(&r);
    r = dispatch(2, (char *[]){"ps", "/nonexistent/x", NULL});
    assert_int_equal(r.rc, 125);
    assert_non_null(strstr(r.err, "is not a project devbox knows"));
    run_clear(&r);
    free(id);
}

/* --env-file's refusals, each naming the file and line, before any box is asked; enter takes
 * exec's options for a shell, not a command or exec's own. */
static void test_env_file_and_enter(void **state) {
    (void)state;
    _cleanup_free_ char *f = dbx_xasprintf("%s/env", test_tmp);
    test_write_file(f, "# comment\n\n  GOOD=1\nA B=2\n", 0644);
    _cleanup_free_ char *want =
        dbx_xasprintf("devbox: exec: --env-file %s:4: white space in the name: 'A B=2'\n", f);
    usage_error(want, 4, (char *[]){"exec", "--env-file", f, "true", NULL});
    test_write_file(f, "OK=1\n=x\n", 0644);
    _cleanup_free_ char *want2 =
        dbx_xasprintf("devbox: enter: --env-file %s:2: no variable name before '=': '=x'\n", f);
    usage_error(want2, 3, (char *[]){"enter", "--env-file", f, NULL});
    test_write_file(f, "A=1\n", 0644);
    assert_int_equal(truncate(f, 5), 0); /* "A=1\n\0" */
    _cleanup_free_ char *want3 =
        dbx_xasprintf("devbox: exec: --env-file '%s': a NUL byte (not a text file)\n", f);
    usage_error(want3, 4, (char *[]){"exec", "--env-file", f, "true", NULL});
    _cleanup_free_ char *missing = dbx_xasprintf("%s/nope", test_tmp);
    _cleanup_free_ char *want4 =
        dbx_xasprintf("devbox: exec: --env-file '%s': No such file or directory\n", missing);
    usage_error(want4, 4, (char *[]){"exec", "--env-file", missing, "true", NULL});
    usage_error("devbox: enter: unexpected 'ls' (a command: devbox exec -it -- CMD)\n", 2,
                (char *[]){"enter", "ls", NULL});
    usage_error("devbox: enter: invalid option '-d' (see devbox enter --help)\n", 2,
                (char *[]){"enter", "-d", NULL});
    usage_error("devbox: enter: --admin runs as root; it cannot run as 'dev'\n", 4,
                (char *[]){"enter", "--admin", "-u", "dev", NULL});
}

/* Where a second usage line of a command would put flags, subcommands or help, the completion
 * and `COMMAND --help` would not see them: only the first entry of a name has them. */
static void test_table(void **state) {
    (void)state;
    for (size_t i = 0; i < cmd_table_len; i++) {
        const struct cmd_def *c = &cmd_table[i];
        assert_non_null(c->fn);
        assert_true(strncmp(c->usage, c->name, strlen(c->name)) == 0);
        for (size_t k = 0; k < i; k++) {
            if (strcmp(cmd_table[k].name, c->name) != 0) continue;
            assert_true(cmd_table[k].fn == c->fn);
            assert_null(c->flags);
            assert_null(c->subs);
            assert_null(c->help);
        }
    }
}

/* Each command once among zsh's descriptions (logs and image have several usage lines). */
static void test_zsh_commands_once(void **state) {
    (void)state;
    fflush(stdout);
    int so = dup(1), fo = memfd_create("zsh", MFD_CLOEXEC);
    dup2(fo, 1);
    struct cmd_ctx ctx = {0};
    int rc = cmd_completion(&ctx, 2, (char *[]){"completion", "zsh", NULL});
    fflush(stdout);
    dup2(so, 1);
    char *zsh = test_fd_text(fo);
    close(so), close(fo);
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < cmd_table_len; i++) {
        _cleanup_free_ char *entry = dbx_xasprintf("\n        '%s:", cmd_table[i].name);
        const char *first = strstr(zsh, entry);
        assert_non_null(first);
        assert_null(strstr(first + 1, entry));
    }
    free(zsh);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_help_of_every_command, test_home_setup,
                                        test_home_teardown),
        cmocka_unit_test_setup_teardown(test_help_and_usage, test_home_setup, test_home_teardown),
        cmocka_unit_test_setup_teardown(test_version, test_home_setup, test_home_teardown),
        cmocka_unit_test_setup_teardown(test_env_file_and_enter, test_home_setup,
                                        test_home_teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors, test_home_setup, test_home_teardown),
        cmocka_unit_test(test_parse_args),
        cmocka_unit_test_setup_teardown(test_targets, test_home_setup, test_home_teardown),
        cmocka_unit_test_setup_teardown(test_port_ls_stopped, test_home_setup, test_home_teardown),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_zsh_commands_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests: devbox's command line before any command runs (cmd-help.c, cmd-common.c, the
 * table of cmd-completion.c): every command of the table prints its usage for a lone -h or
 * --help and for `devbox help COMMAND` (stdout, exit 0, no state directory), `devbox help` is
 * `devbox --help`, --version and `devbox version` say "devbox VERSION", usage errors stay on
 * stderr with 125, getopt's refusals become one "devbox: NAME: ..." line naming the option as
 * typed, and the zsh completion lists each command once. */
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

static char tmpl[64];

static int setup(void **state) {
    snprintf(tmpl, sizeof(tmpl), "/tmp/dbx-unit-XXXXXX");
    assert_non_null(mkdtemp(tmpl));
    char *home = dbx_xasprintf("%s/home", tmpl);
    setenv("DEVBOX_HOME", home, 1);
    free(home);
    (void)state;
    return 0;
}

static int teardown(void **state) {
    test_sh("rm -rf '%s'", tmpl);
    (void)state;
    return 0;
}

static char *read_fd(int fd) {
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *s = dbx_xcalloc(1, (size_t)st.st_size + 1);
    assert_int_equal(pread(fd, s, (size_t)st.st_size, 0), st.st_size);
    return s;
}

/* What `devbox ARGV...` (after the global options) prints and returns, through the dispatcher. */
struct run {
    int rc;
    char *out, *err;
};

static struct run dispatch(int argc, char **argv) {
    struct cmd_ctx ctx = {.version = "1.2-test"};
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = memfd_create("out", MFD_CLOEXEC), fe = memfd_create("err", MFD_CLOEXEC);
    assert_true(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = cmd_dispatch(&ctx, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    struct run r = {.rc = rc, .out = read_fd(fo), .err = read_fd(fe)};
    close(so), close(se), close(fo), close(fe);
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
    char *dir = dbx_xasprintf("%s/home", tmpl);
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
    char *usage = read_fd(fo);
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
    char *out = read_fd(fo);
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
    usage_error("devbox: status: unknown argument '--bogus'\n", 2,
                (char *[]){"status", "--bogus", NULL});
    usage_error("usage: devbox ps [--json]\n", 2, (char *[]){"ps", "--bogus", NULL});
    /* --help among other arguments is the command's to refuse */
    usage_error("devbox: stop: unknown argument '--help'\n", 3,
                (char *[]){"stop", "--all", "--help", NULL});
}

/* --env-file's refusals, each naming the file and line, before any box is asked; enter takes
 * exec's options for a shell, not a command or exec's own. */
static void test_env_file_and_enter(void **state) {
    (void)state;
    _cleanup_free_ char *f = dbx_xasprintf("%s/env", tmpl);
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
    _cleanup_free_ char *missing = dbx_xasprintf("%s/nope", tmpl);
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
    char *zsh = read_fd(fo);
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
        cmocka_unit_test_setup_teardown(test_help_of_every_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_and_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_file_and_enter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_zsh_commands_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

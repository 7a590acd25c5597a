/* Unit tests: the events journal: the JSON string writer (escapes, cuts, invalid UTF-8), the
 * append with its rotation (sandbox/supervisor-events.c), a line's check and text form, and
 * `devbox events` reading the files (sandbox/cmd-events.c): both files in order, -n, a corrupt
 * line skipped with file:line, a partial last line held back, --follow across a rotation and
 * until the project is removed. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "helpers.h"
#include "sandbox/commands.h"
#include "sandbox/sandbox-internal.h"
#include "sandbox/supervisor-internal.h"

#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static int setup(void **state) {
    test_home_setup(state);
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static char *json_str(const char *s, size_t max) {
    struct dbx_buf b = {0};
    dbx_json_str(&b, s, max);
    char *r = dbx_xasprintf("%.*s", (int)b.len, (const char *)b.data);
    dbx_buf_free(&b);
    return r;
}

static void test_json_str(void **state) {
    (void)state;
    static const struct {
        const char *in;
        size_t max;
        const char *want;
    } cases[] = {
        {"make test", 1024, "\"make test\""},
        {"a\"b\\c", 1024, "\"a\\\"b\\\\c\""},
        {"t\ta\nb\r\x1b[31m\x7f", 1024, "\"t\\u0009a\\u000ab\\u000d\\u001b[31m\\u007f\""},
        {"caf\xc3\xa9 \xe2\x82\xac", 1024, "\"caf\xc3\xa9 \xe2\x82\xac\""},
        {"bad\xff\xc3(\xed\xa0\x80!", 1024, "\"bad\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd!\""},
        {"\xc0\xaf", 1024, "\"\\ufffd\\ufffd\""}, /* overlong '/' */
        {"abcdef", 3, "\"abc...\""},
        {"ab\xe2\x82\xac", 4, "\"ab...\""}, /* a UTF-8 sequence is not cut */
        {"", 1024, "\"\""},
        {NULL, 1024, "null"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        char *got = json_str(cases[i].in, cases[i].max);
        assert_string_equal(got, cases[i].want);
        /* and it is JSON jansson reads back */
        json_error_t je;
        json_t *v = json_loads(got, JSON_DECODE_ANY, &je);
        assert_non_null(v);
        json_decref(v);
        free(got);
    }
}

static char *read_text(int dfd, const char *name) {
    _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof(buf));
    assert_true(n >= 0);
    return dbx_xasprintf("%.*s", (int)n, buf);
}

static void test_append_rotates(void **state) {
    (void)state;
    _cleanup_close_ int dfd = open(test_tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    dbx_error *err = NULL;
    static const char l1[] = "{\"n\":1}\n", l2[] = "{\"n\":2}\n", l3[] = "{\"n\":3}\n";
    assert_int_equal(dbx_events_append(dfd, l1, strlen(l1), 20, &err), 0);
    assert_int_equal(dbx_events_append(dfd, l2, strlen(l2), 20, &err), 0);
    /* a third would pass 20 bytes: the file becomes .1 and l3 starts the new one */
    assert_int_equal(dbx_events_append(dfd, l3, strlen(l3), 20, &err), 0);
    char *a = read_text(dfd, "events.jsonl.1"), *b = read_text(dfd, "events.jsonl");
    assert_string_equal(a, "{\"n\":1}\n{\"n\":2}\n");
    assert_string_equal(b, "{\"n\":3}\n");
    free(a);
    free(b);
    /* rotating again replaces the old .1 */
    assert_int_equal(dbx_events_append(dfd, l1, strlen(l1), 10, &err), 0);
    a = read_text(dfd, "events.jsonl.1");
    b = read_text(dfd, "events.jsonl");
    assert_string_equal(a, "{\"n\":3}\n");
    assert_string_equal(b, "{\"n\":1}\n");
    free(a);
    free(b);
    /* no newline, or too long: refused, nothing written */
    assert_true(dbx_events_append(dfd, "{}", 2, 1 << 20, &err) < 0);
    dbx_error_free(&err);
    /* a symlink in its place is not followed */
    assert_int_equal(unlinkat(dfd, "events.jsonl", 0), 0);
    assert_int_equal(symlinkat("/dev/null", dfd, "events.jsonl"), 0);
    assert_true(dbx_events_append(dfd, l1, strlen(l1), 1 << 20, &err) < 0);
    dbx_error_free(&err);
}

static char *text_of(struct dbx_events_ctx *ctx, const char *line) {
    char *t = NULL;
    dbx_error *err = NULL;
    if (dbx_event_text(ctx, line, strlen(line), &t, &err) < 0) {
        char *m = dbx_xasprintf("ERR %s", err->msg);
        dbx_error_free(&err);
        return m;
    }
    return t;
}

static void test_event_text(void **state) {
    (void)state;
    struct dbx_events_ctx *ctx = dbx_xcalloc(1, sizeof(*ctx));
    static const struct {
        const char *line, *want;
    } cases[] = {
        {"{\"time\":\"2026-12-02T17:31:00.120Z\",\"type\":\"box.started\",\"accel\":\"kvm\"}",
         "2026-12-02 17:31:00 box   started (kvm)"},
        {"{\"time\":\"2026-12-02T17:31:02.000Z\",\"type\":\"exec.started\",\"id\":3,"
         "\"argv\":[\"make\",\"test\"],\"user\":\"1000\",\"cwd\":\"/w\",\"detached\":false}",
         "2026-12-02 17:31:02 exec  'make test' (uid 1000) started"},
        {"{\"time\":\"2026-12-02T17:31:05.100Z\",\"type\":\"exec.exited\",\"id\":3,"
         "\"exit_code\":2,\"duration_ms\":3100}",
         "2026-12-02 17:31:05 exec  'make test' (uid 1000) exited 2 after 3.1 s"},
        {"{\"time\":\"2026-12-02T17:31:06Z\",\"type\":\"exec.exited\",\"id\":9,"
         "\"exit_code\":null,\"duration_ms\":5}",
         "2026-12-02 17:31:06 exec  #9 ended without an exit status after 0.0 s"},
        {"{\"time\":\"2026-12-02T17:31:07Z\",\"type\":\"notice\",\"kind\":\"oom\",\"id\":3,"
         "\"limit\":2147483648,\"value\":2147483648}",
         "2026-12-02 17:31:07 oom   'make test' was killed: out of memory (limit 2.0G, peak "
         "2.0G)"},
        {"{\"time\":\"2026-12-02T17:31:08Z\",\"type\":\"protected\",\"count\":2,"
         "\"first\":\".git/hooks/x\"}",
         "2026-12-02 17:31:08 protect 2 write attempt(s) on protected paths (first "
         "'.git/hooks/x')"},
        {"{\"time\":\"2026-12-02T17:31:09Z\",\"type\":\"proxy.denied\",\"host\":\"evil:443\","
         "\"reason\":\"not allowed\"}",
         "2026-12-02 17:31:09 proxy denied 'evil:443': not allowed"},
        /* guest text stays inert on the terminal */
        {"{\"time\":\"2026-12-02T17:31:10Z\",\"type\":\"exec.started\",\"id\":4,"
         "\"argv\":[\"echo\",\"\\u001b[2J\"],\"user\":\"0\"}",
         "2026-12-02 17:31:10 exec  'echo \\e[2J' (uid 0) started"},
        {"{\"time\":\"2026-12-02T17:31:11Z\",\"type\":\"new.kind\"}",
         "2026-12-02 17:31:11 new.kind"},
        /* refused */
        {"{\"time\":\"2026-12-02T17:31:11Z\",\"type\":\"a\",\"type\":\"b\"}", "ERR"},
        {"{\"time\":\"2026-12-02T17:31:11Z\"}", "ERR"},
        {"{\"time\":\"yesterday\",\"type\":\"a\"}", "ERR"},
        {"{\"time\":\"2026-12-02T17:31:11+01:00\",\"type\":\"a\"}", "ERR"},
        {"[1,2]", "ERR"},
        {"{\"time\":\"2026-12-02T17:31:11Z\",\"type\":\"box.st", "ERR"},
        {"", "ERR"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        char *got = text_of(ctx, cases[i].line);
        if (strcmp(cases[i].want, "ERR") == 0)
            assert_true(strncmp(got, "ERR ", 4) == 0);
        else
            assert_string_equal(got, cases[i].want);
        free(got);
    }
    free(ctx);
}

/* ---- `devbox events` over a repo's state dir --------------------------------------------- */

static char *state_dir(struct cmd_ctx *ctx) {
    test_sh("mkdir -p %s/repo && git init -q %s/repo", test_tmp, test_tmp);
    dbx_error *err = NULL;
    assert_int_equal(dbx_paths_init(&ctx->paths, &err), 0);
    struct dbx_project p = {0};
    ctx->dir = dbx_xasprintf("%s/repo", test_tmp);
    assert_int_equal(dbx_project_find(&ctx->paths, ctx->dir, false, &p, &err), 0);
    char *d = dbx_xstrdup(p.state_dir);
    dbx_project_clear(&p);
    test_sh("mkdir -p '%s'", d);
    return d;
}

static void ctx_clear(struct cmd_ctx *ctx) {
    free((char *)ctx->dir);
    dbx_paths_clear(&ctx->paths);
}

static int run_events(struct cmd_ctx *ctx, char **argv, char **ret_out, char **ret_err) {
    return test_run_cmd(cmd_events, ctx, argv, ret_out, ret_err);
}

#define L1 "{\"time\":\"2026-12-02T10:00:01Z\",\"type\":\"box.started\",\"accel\":\"tcg\"}\n"
#define L2                                                                                         \
    "{\"time\":\"2026-12-02T10:00:02Z\",\"type\":\"exec.started\",\"id\":1,\"argv\":[\"true\"]}\n"
#define L3 "{\"time\":\"2026-12-02T10:00:03Z\",\"type\":\"exec.exited\",\"id\":1,\"exit_code\":0}\n"
#define L4 "{\"time\":\"2026-12-02T10:00:04Z\",\"type\":\"box.stopped\"}\n"

static void test_read_files(void **state) {
    (void)state;
    struct cmd_ctx ctx = {0};
    char *d = state_dir(&ctx), *out, *err;
    /* no journal yet: said on stderr, success */
    assert_int_equal(run_events(&ctx, (char *[]){"events", NULL}, &out, &err), 0);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "no events yet"));
    free(out), free(err);

    char *p1 = dbx_xasprintf("%s/events.jsonl.1", d), *p0 = dbx_xasprintf("%s/events.jsonl", d);
    test_write_file(p1, L1 L2, 0600);
    /* line 2 of the current file is corrupt, the last line is partial (being written) */
    test_write_file(p0, L3 "{\"time\":\"x\",\"type\":\"a\"}\n" L4 "{\"time\":\"2026-", 0600);
    assert_int_equal(run_events(&ctx, (char *[]){"events", "--json", NULL}, &out, &err), 0);
    assert_string_equal(out, L1 L2 L3 L4);
    assert_non_null(strstr(err, ":2: skipping a corrupt line: bad time"));
    assert_non_null(strstr(err, "events.jsonl:2:"));
    assert_null(strchr(strchr(err, '\n') + 1, '\n')); /* one warning */
    free(out), free(err);

    assert_int_equal(run_events(&ctx, (char *[]){"events", "-n", "2", NULL}, &out, &err), 0);
    assert_string_equal(out, "2026-12-02 10:00:03 exec  'true' exited 0 after 0.0 s\n"
                             "2026-12-02 10:00:04 box   stopped\n");
    free(out), free(err);
    assert_int_equal(run_events(&ctx, (char *[]){"events", "-n", "0", NULL}, &out, &err), 0);
    assert_string_equal(out, "");
    free(out), free(err);
    assert_int_equal(run_events(&ctx, (char *[]){"events", "-n", "x", NULL}, &out, &err), 125);
    assert_non_null(strstr(err, "events: option '-n' takes a number"));
    free(out), free(err);
    free(p0), free(p1), free(d);
    ctx_clear(&ctx);
}

static bool file_has(const char *path, const char *text) {
    _cleanup_close_ int dfd = open(test_tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *t = read_text(dfd, path);
    bool r = t && strstr(t, text);
    free(t);
    return r;
}

static void test_follow_rotation(void **state) {
    (void)state;
    struct cmd_ctx ctx = {0};
    char *d = state_dir(&ctx);
    _cleanup_close_ int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    dbx_error *err = NULL;
    assert_int_equal(dbx_events_append(dfd, L1, strlen(L1), 1 << 20, &err), 0);
    char *o = dbx_xasprintf("%s/fout", test_tmp);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        _exit(cmd_events(&ctx, 3, (char *[]){"events", "--json", "--follow", NULL}));
    }
    for (int i = 0; i < 200 && !file_has("fout", "box.started"); i++)
        usleep(10000);
    assert_true(file_has("fout", "box.started"));
    /* L2 goes into the file the follower has open, L3 into a new one after the rotation */
    assert_int_equal(dbx_events_append(dfd, L2, strlen(L2), 1 << 20, &err), 0);
    assert_int_equal(dbx_events_append(dfd, L3, strlen(L3), strlen(L1) + strlen(L2), &err), 0);
    for (int i = 0; i < 300 && !file_has("fout", "exec.exited"); i++)
        usleep(10000);
    /* the project goes away: the follower ends */
    test_sh("rm -rf --one-file-system '%s'", d);
    int st = 0;
    assert_true(test_wait_exit(pid, 3000, &st));
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    _cleanup_close_ int tfd = open(test_tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *got = read_text(tfd, "fout");
    assert_string_equal(got, L1 L2 L3);
    free(got), free(o), free(d);
    ctx_clear(&ctx);
}

/* ---- the supervisor's side (supervisor-events.c) ---------------------------------------- */

/* The journal's types in order, "type:id:exit_code" for exec.exited; every line must pass the
 * reader's check. */
static char *journal_summary(const char *dir) {
    char *path = dbx_xasprintf("%s/events.jsonl", dir);
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    struct dbx_buf b = {0};
    char line[DBX_EVENTS_LINE_MAX + 2];
    struct dbx_events_ctx *ctx = dbx_xcalloc(1, sizeof(*ctx));
    while (fgets(line, sizeof(line), f)) {
        size_t l = strlen(line);
        assert_true(l > 0 && line[l - 1] == '\n');
        dbx_error *err = NULL;
        assert_int_equal(dbx_event_text(ctx, line, l - 1, NULL, &err), 0);
        json_t *o = json_loadb(line, l - 1, 0, NULL);
        const char *type = json_string_value(json_object_get(o, "type"));
        char *item =
            strcmp(type, "exec.exited") == 0
                ? dbx_xasprintf("%s:%lld:%lld;", type, json_integer_value(json_object_get(o, "id")),
                                json_is_null(json_object_get(o, "exit_code"))
                                    ? -1ll
                                    : json_integer_value(json_object_get(o, "exit_code")))
                : dbx_xasprintf("%s;", type);
        dbx_buf_put(&b, item, strlen(item));
        free(item);
        json_decref(o);
    }
    fclose(f);
    free(ctx);
    free(path);
    char *r = dbx_xasprintf("%.*s", (int)b.len, (const char *)b.data);
    dbx_buf_free(&b);
    return r;
}

static void test_sup_events(void **state) {
    (void)state;
    struct sup *s = dbx_xcalloc(1, sizeof(*s));
    s->proj.state_dir = test_tmp;
    sup_event_box(s, "started", "tcg");
    /* hostile argv: bytes that are not UTF-8, controls, quotes; 100 entries (cut at 64) */
    char *argv[101] = {"sh", "-c", "echo \"\xff\x1b[2J\\\"", NULL};
    for (int i = 3; i < 100; i++)
        argv[i] = "x";
    struct dbx_exec_req req = {.user = "", .cwd = "/w", .argc = 100, .argv = argv};
    sup_event_exec_start(s, 1, &req, false);
    sup_event_exec_start(s, 2, &req, true);
    sup_event_exec_start(s, 3, &req, false);
    sup_event_exec_exit(s, 1, 3);
    sup_event_exec_exit(s, 1, -1); /* the session's end after its EXIT: no second line */
    sup_event_exec_exit(s, 3, -1); /* ended without EXIT */
    sup_event_exec_exit(s, 7, 0);  /* never started: nothing */
    sup_event_notice(s, 2, 1, UINT64_MAX, 5);
    s->protect.count = 1;
    snprintf(s->protect.first, sizeof(s->protect.first), ".git/hooks");
    sup_event_protected(s, 1, ".git/hooks");
    s->protect.count = 5;
    sup_event_protected(s, 5, ".git/hooks"); /* within the second: held back until stop */
    for (int i = 0; i < 15; i++)
        sup_event_proxy(s, "deny", "evil.example:443", "not allowed");
    sup_event_proxy(s, "allow", "ok.example:443", NULL);
    sup_event_box(s, "stopping", "requested by a client");
    sup_event_box(s, "stopped", NULL); /* session 2 is still open: the VM went away */
    char *got = journal_summary(test_tmp);
    char want[2048] = "box.started;exec.started;exec.started;exec.started;exec.exited:1:3;"
                      "exec.exited:3:-1;notice;protected;";
    for (int i = 0; i < 10; i++)
        strcat(want, "proxy.denied;");
    strcat(want, "exec.exited:2:-1;protected;proxy.suppressed;box.stopped;");
    assert_string_equal(got, want);
    free(got);
    char *path = dbx_xasprintf("%s/events.jsonl", test_tmp);
    test_sh("grep -q '\"count\":5,\"first\":\".git/hooks\"' %s", path);
    test_sh("grep -q '\"type\":\"proxy.suppressed\",\"count\":5' %s", path);
    test_sh("grep -q '\"why\":\"requested by a client\"' %s", path);
    test_sh("grep -q '\"limit\":null,\"value\":5' %s", path);
    test_sh("grep -q '\"x\",\"...\"],\"user\"' %s", path);
    free(path);

    /* the longest argv, user and cwd there are, each byte escaped: the line is still written */
    char *big = dbx_xcalloc(1, 4096);
    memset(big, '\x01', 4095);
    for (int i = 0; i < 100; i++)
        argv[i] = big;
    struct dbx_exec_req huge = {.user = big, .cwd = big, .argc = 100, .argv = argv};
    sup_event_exec_start(s, 5, &huge, false);
    assert_false(s->events.failed);
    got = journal_summary(test_tmp);
    assert_non_null(strstr(got, "box.stopped;exec.started;"));
    free(got);

    /* a journal that cannot be written: the box goes on (logged once); req's argv is big's */
    s->proj.state_dir = "/nonexistent/dir";
    sup_event_exec_start(s, 4, &req, false);
    sup_event_exec_exit(s, 4, 0);
    assert_true(s->events.failed);
    free(big);
    free(s);
}

/* ---- the proxy's denials, read back from network.log (sandbox-net.c) ------------------- */

struct denials {
    char got[1024];
};

static void on_deny(void *data, const char *host, const char *reason) {
    struct denials *d = data;
    size_t l = strlen(d->got);
    snprintf(d->got + l, sizeof(d->got) - l, "%s|%s;", host, reason ? reason : "-");
}

static void test_net_denials(void **state) {
    (void)state;
    struct profile prof = {0}; /* network mode none: no proxy, the log is still opened */
    struct dbx_buf out = {0};
    struct net *n = NULL;
    dbx_error *err = NULL;
    char *log = dbx_xasprintf("%s/network.log", test_tmp);
    test_write_file(log, "2026-12-02T10:00:00.000Z deny CONNECT old:443 - up=0 down=0\n", 0600);
    assert_int_equal(net_new(&n, &prof, NULL, NULL, test_tmp, &out, &err), 0);
    struct denials d = {0};
    net_on_deny(n, on_deny, &d); /* what was there before is not news */
    FILE *f = fopen(log, "a");
    assert_non_null(f);
    fputs("2026-12-02T10:00:01.000Z allow CONNECT ok.example:443 1.2.3.4:443 up=1 down=2\n"
          "2026-12-02T10:00:02.000Z deny GET evil.example - up=0 down=0 reason=\"not in "
          "network.allow\"\n"
          "2026-12-02T10:00:03.000Z deny - - - up=0 down=0 reason=\"bad head\"\n"
          "2026-12-02T10:00:04.000Z deny CONNECT x.example:8443 - up=0 down=0 reqs=2\n"
          "garbage\n\n2026-12-02T10:00:05.000Z deny CONNECT partial",
          f);
    fclose(f);
    struct pollfd pfd[4];
    net_pollfds(n, pfd, 4, false);
    assert_string_equal(d.got, "evil.example|not in network.allow;-|bad head;x.example:8443|-;");
    net_free(n);
    dbx_buf_free(&out);
    free(log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_str),
        cmocka_unit_test_setup_teardown(test_append_rotates, setup, test_home_teardown),
        cmocka_unit_test_setup_teardown(test_event_text, setup, test_home_teardown),
        cmocka_unit_test_setup_teardown(test_read_files, setup, test_home_teardown),
        cmocka_unit_test_setup_teardown(test_follow_rotation, setup, test_home_teardown),
        cmocka_unit_test_setup_teardown(test_net_denials, setup, test_home_teardown),
        cmocka_unit_test_setup_teardown(test_sup_events, setup, test_home_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests: `devbox logs` over a project's state dir (sandbox/cmd-logs.c): which log each
 * selector reads, -n N across a detached command's rotated half, the operands (a PID, a
 * PATH|ID, both) and their errors, escaping; -f on the box's own logs across a truncation, a
 * replacement and until the project is removed; -f PID across a rotation until its .exit. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "helpers.h"
#include "sandbox/commands.h"
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ctx on a repo test_tmp/repo; its project (the caller clears it), recorded (a PATH names it). */
static struct dbx_project project(struct cmd_ctx *ctx) {
    test_sh("mkdir -p %s/repo && git init -q %s/repo", test_tmp, test_tmp);
    dbx_error *err = NULL;
    assert_int_equal(dbx_paths_init(&ctx->paths, &err), 0);
    ctx->dir = dbx_xasprintf("%s/repo", test_tmp);
    struct dbx_project p = {0};
    assert_int_equal(dbx_project_find(&ctx->paths, ctx->dir, false, &p, &err), 0);
    test_sh("mkdir -p '%s/procs' '%s'", p.state_dir, p.run_dir);
    struct dbx_project_rec r = {p.root, (char *)"default", (char *)"/b.raw", 1, (char *)""};
    assert_int_equal(dbx_project_rec_save(p.state_dir, &r, &err), 0);
    return p;
}

static void ctx_clear(struct cmd_ctx *ctx) {
    free((char *)ctx->dir);
    dbx_paths_clear(&ctx->paths);
}

static char *slurp(const char *path) {
    char *buf = NULL;
    size_t len = 0;
    if (dbx_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len, NULL) < 0) return dbx_xstrdup("");
    return buf;
}

static int run_logs(struct cmd_ctx *ctx, char **argv, char **ret_out, char **ret_err) {
    return test_run_cmd(cmd_logs, ctx, argv, ret_out, ret_err);
}

/* `devbox logs ARG...` prints want on stdout, nothing on stderr, exit 0. */
static void logs_ok(struct cmd_ctx *ctx, char **argv, const char *want) {
    char *out, *err;
    int rc = run_logs(ctx, argv, &out, &err);
    if (rc != 0 || strcmp(out, want) != 0 || *err)
        print_message("logs %s: rc %d, stdout '%s', stderr '%s'\n", argv[1] ? argv[1] : "", rc, out,
                      err);
    assert_int_equal(rc, 0);
    assert_string_equal(out, want);
    assert_string_equal(err, "");
    free(out), free(err);
}

/* `devbox logs ARG...` fails: exit 125, want in the one line on stderr. */
static void logs_fails(struct cmd_ctx *ctx, char **argv, const char *want) {
    char *out, *err;
    assert_int_equal(run_logs(ctx, argv, &out, &err), 125);
    assert_string_equal(out, "");
    if (!strstr(err, want)) print_message("stderr '%s', want '%s'\n", err, want);
    assert_non_null(strstr(err, want));
    assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
    free(out), free(err);
}

static void put(const char *dir, const char *name, const char *text) {
    char *p = dbx_xasprintf("%s/%s", dir, name);
    test_write_file(p, text, 0600);
    free(p);
}

static void test_read(void **state) {
    (void)state;
    struct cmd_ctx ctx = {0};
    struct dbx_project p = project(&ctx);
    const char *d = p.state_dir;
    /* nothing logged yet: nothing, and success */
    logs_ok(&ctx, (char *[]){"logs", NULL}, "");
    put(d, "supervisor.log", "s1\ns2\ns3\n");
    put(d, "console.log", "c1\n\033]0;x\007c2"); /* the guest's bytes, a last line unended */
    put(d, "network.log", "n1\n");
    logs_ok(&ctx, (char *[]){"logs", NULL}, "s1\ns2\ns3\n");
    logs_ok(&ctx, (char *[]){"logs", "-n", "2", NULL}, "s2\ns3\n");
    logs_ok(&ctx, (char *[]){"logs", "--tail=0", NULL}, "");
    logs_ok(&ctx, (char *[]){"logs", "--tail", "9", NULL}, "s1\ns2\ns3\n");
    logs_ok(&ctx, (char *[]){"logs", "--console", "-n", "1", NULL}, "\\e]0;x\\x07c2");
    logs_ok(&ctx, (char *[]){"logs", "--network", p.root, NULL}, "n1\n"); /* by its PATH, its ID */
    /* a detached command's: the rotated half first, -n across both (a line the rotation cut
     * counts once) */
    put(d, "procs/42.log.1", "o1\no2\npart-");
    put(d, "procs/42.log", "ial\nn1\n");
    logs_ok(&ctx, (char *[]){"logs", "42", NULL}, "o1\no2\npart-ial\nn1\n");
    logs_ok(&ctx, (char *[]){"logs", "-n", "2", "42", NULL}, "part-ial\nn1\n");
    logs_ok(&ctx, (char *[]){"logs", "-n", "3", "42", p.id, NULL}, "o2\npart-ial\nn1\n");
    logs_fails(&ctx, (char *[]){"logs", "43", NULL}, "logs: no log for process 43 (only detached");
    logs_fails(&ctx, (char *[]){"logs", "--setup", "42", NULL}, "logs: a PID names a detached");
    logs_fails(&ctx, (char *[]){"logs", "x", "y", NULL}, "logs: 'x' is not a process id");
    logs_fails(&ctx, (char *[]){"logs", "0", NULL}, "logs: '0' is not a process id");
    logs_fails(&ctx, (char *[]){"logs", "99999999999", NULL},
               "logs: '99999999999' is not a process id");
    logs_fails(&ctx, (char *[]){"logs", "--qemu", "--console", NULL},
               "logs: '--qemu' and '--console' exclude each other");
    logs_fails(&ctx, (char *[]){"logs", "1", "2", "3", NULL}, "logs: unexpected argument '3'");
    logs_fails(&ctx, (char *[]){"logs", "/nonexistent/x", NULL}, "is not a project devbox knows");
    dbx_project_clear(&p);
    ctx_clear(&ctx);
}

/* Wait (up to 3 s) until path holds want. */
static void wait_for(const char *path, const char *want) {
    for (int i = 0; i < 300; i++) {
        char *t = slurp(path);
        bool ok = strcmp(t, want) == 0;
        free(t);
        if (ok) return;
        usleep(10000);
    }
    char *t = slurp(path);
    print_message("'%s' holds '%s', want '%s'\n", path, t, want);
    free(t);
    fail();
}

/* cmd_logs in a child, stdout to test_tmp/fout; its pid. */
static pid_t follower(struct cmd_ctx *ctx, char **argv) {
    int argc = 0;
    while (argv[argc])
        argc++;
    char *o = dbx_xasprintf("%s/fout", test_tmp);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        _exit(cmd_logs(ctx, argc, argv));
    }
    free(o);
    return pid;
}

static void ends_with_0(pid_t pid) {
    int st = 0;
    assert_true(test_wait_exit(pid, 3000, &st));
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* -f on the box's own logs: appended lines, a truncation (a boot), a new file in its place,
 * until the project is removed. */
static void test_follow(void **state) {
    (void)state;
    struct cmd_ctx ctx = {0};
    struct dbx_project p = project(&ctx);
    char *log = dbx_xasprintf("%s/console.log", p.state_dir);
    char *out = dbx_xasprintf("%s/fout", test_tmp);
    test_write_file(log, "boot1\nline1\n", 0600);
    pid_t pid = follower(&ctx, (char *[]){"logs", "--console", "-n", "1", "-f", NULL});
    wait_for(out, "line1\n");
    test_sh("echo line2 >> '%s'", log);
    wait_for(out, "line1\nline2\n");
    test_sh(": > '%s' && echo boot2 >> '%s'", log, log); /* truncated, as at a boot */
    wait_for(out, "line1\nline2\nboot2\n");
    test_sh("echo boot3 > '%s.new' && mv '%s.new' '%s'", log, log, log);
    wait_for(out, "line1\nline2\nboot2\nboot3\n");
    test_sh("rm -rf --one-file-system '%s'", p.state_dir); /* devbox rm */
    ends_with_0(pid);
    /* a log not there yet is waited for */
    test_sh("mkdir -p '%s'", p.state_dir);
    pid = follower(&ctx, (char *[]){"logs", "--setup", "--follow", NULL});
    usleep(300000);
    put(p.state_dir, "setup.log", "setup ran\n");
    wait_for(out, "setup ran\n");
    test_sh("rm -rf --one-file-system '%s'", p.state_dir);
    ends_with_0(pid);
    free(log), free(out);
    dbx_project_clear(&p);
    ctx_clear(&ctx);
}

/* -f PID: while the box runs (its status file) and until the command's .exit, across the
 * log's rotation; the bytes written before the .exit are all there. */
static void test_follow_pid(void **state) {
    (void)state;
    struct cmd_ctx ctx = {0};
    struct dbx_project p = project(&ctx);
    struct dbx_status st = {.state = DBX_VM_RUNNING, .project = dbx_xstrdup(p.root)};
    memcpy(st.id, p.id, sizeof(st.id));
    struct dbx_buf b = {0};
    dbx_status_encode(&st, &b);
    _cleanup_close_ int rfd = open(p.run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    dbx_error *err = NULL;
    assert_int_equal(dbx_write_file_atomic(rfd, DBX_STATUS_NAME, b.data, b.len, 0600, &err), 0);
    char *log = dbx_xasprintf("%s/procs/7.log", p.state_dir);
    char *out = dbx_xasprintf("%s/fout", test_tmp);
    test_write_file(log, "a\n", 0600);
    pid_t pid = follower(&ctx, (char *[]){"logs", "-f", "7", NULL});
    wait_for(out, "a\n");
    test_sh("echo b >> '%s' && mv '%s' '%s.1' && echo c > '%s'", log, log, log, log);
    wait_for(out, "a\nb\nc\n");
    test_sh("echo d >> '%s' && echo 0 > '%s/procs/7.exit'", log, p.state_dir);
    ends_with_0(pid);
    wait_for(out, "a\nb\nc\nd\n");
    free(log), free(out);
    dbx_buf_free(&b);
    dbx_status_clear(&st);
    dbx_project_clear(&p);
    ctx_clear(&ctx);
}

/* -f into a pipe whose reader is gone ends while the log is idle (`logs -f PID | grep -m1
 * ready`), as tail -f does; and a log the supervisor starts afresh (dbx_log_create) is a new
 * file, which a follower reads from its start, not a truncated one. */
static void test_follow_reader_gone(void **state) {
    (void)state;
    struct cmd_ctx ctx = {0};
    struct dbx_project p = project(&ctx);
    char *log = dbx_xasprintf("%s/console.log", p.state_dir);
    test_write_file(log, "boot1\n", 0600);
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pp[0]);
        dup2(pp[1], 1);
        _exit(cmd_logs(&ctx, 3, (char *[]){"logs", "--console", "-f", NULL}));
    }
    close(pp[1]);
    char buf[16];
    assert_int_equal(read(pp[0], buf, sizeof(buf)), 6); /* "boot1\n", then nothing more */
    close(pp[0]);
    ends_with_0(pid);
    struct stat a, b;
    int held = open(log, O_RDONLY | O_CLOEXEC); /* as a follower holds it */
    assert_int_equal(fstat(held, &a), 0);
    int fd = dbx_log_create(AT_FDCWD, log, 0);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &b), 0);
    assert_true(a.st_ino != b.st_ino);
    assert_int_equal(b.st_size, 0);
    assert_int_equal(b.st_mode & 07777, 0600);
    close(fd);
    close(held);
    free(log);
    dbx_project_clear(&p);
    ctx_clear(&ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read, test_home_setup, test_home_teardown),
        cmocka_unit_test_setup_teardown(test_follow, test_home_setup, test_home_teardown),
        cmocka_unit_test_setup_teardown(test_follow_pid, test_home_setup, test_home_teardown),
        cmocka_unit_test_setup_teardown(test_follow_reader_gone, test_home_setup,
                                        test_home_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

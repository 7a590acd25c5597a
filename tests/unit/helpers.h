/* tests/unit/helpers.h: fixtures shared by the unit tests (tests/unit/helpers.c, linked into
 * every test binary).  Include after <cmocka.h>. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

/* Exit code of a forked scenario that cannot run here: the parent turns it into a skip. */
#define SKIP_CODE 77

/* For code that runs in a forked child (cmocka's asserts only work in the test's own process):
 * a failed check prints where and why (an optional printf message, which may use %m; without
 * one, errno) and exits 1, which the parent asserts against.  (The " " prefix keeps the
 * format non-empty when there is no message.) */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) test_check_failed(__FILE__, __LINE__, #cond, " " __VA_ARGS__);                \
    } while (0)
_Noreturn void test_check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* cmocka's skip() with the reason in the output: a skip says why, a pass is never a skip. */
#define skip_because(...)                                                                          \
    do {                                                                                           \
        print_message("skipped: " __VA_ARGS__);                                                    \
        print_message("\n");                                                                       \
        skip();                                                                                    \
    } while (0)

/* Pass fd over a unix socket (SCM_RIGHTS, one byte); exits 3 when sendmsg fails. */
void test_send_fd(int sock, int fd);
/* The fd test_send_fd sent, or -1. */
int test_recv_fd(int sock);

/* True if PROG is an executable in /usr/sbin, /usr/bin, /sbin or /bin. */
bool test_have(const char *prog);

/* The ordinary user the "as user" scenarios switch to: DBX_TEST_USER, default "dbxtest";
 * false if it does not exist or is root. */
bool test_user(uid_t *uid, gid_t *gid);

/* Remove a tree without following links.  Files that namespace root created in the rootless
 * runs belong to a subordinate uid; we can still unlink them (the directories are ours) but
 * not enter its directories: best effort. */
void test_rm_tree(const char *path);
/* Run a shell command line made from fmt (fixtures only: the code under test never uses a
 * shell); asserts it exits 0. */
void test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The pid of one child of parent (from /proc/PID/stat), 0 if none. */
pid_t test_find_child(pid_t parent);

/* A pid is gone once it is reaped (ours) or never existed; EPERM means it runs as another
 * (subordinate) uid. */
bool test_pid_gone(pid_t pid);

/* Wait up to ms for our child pid to exit (waitpid WNOHANG, every 10 ms). */
bool test_wait_exit(pid_t pid, int ms, int *status);

/* Create or truncate path with text (CHECK on failure). */
void test_write_file(const char *path, const char *text, mode_t mode);
/* dir/rel with text (0644), its missing directories made first (CHECK on failure). */
void test_put_file(const char *dir, const char *rel, const char *text);

/* A fresh directory under $TMPDIR (default /tmp), held open: the fixture of tests that work on
 * a repository's files (test_repo_setup/test_repo_teardown as cmocka setup and teardown; *state
 * is the struct repo). */
struct repo {
    char dir[4096];
    int fd;
};
int test_repo_setup(void **state);
int test_repo_teardown(void **state);

/* The absolute path of the built-in profiles (./profiles: the tests run from the source tree
 * root, as `make unit` does; fails the test otherwise). */
const char *test_builtin_profiles(void);

/* Create or truncate dfd/name with text (0644; asserts on failure). */
void test_write_at(int dfd, const char *name, const char *text);

/* profile_load of r's repo with the user's settings u (may be NULL) and the built-in profiles:
 * NULL with *ret loaded (the profile is dropped when ret is NULL), or the error message
 * (caller frees). */
struct profile;
struct profile_user;
char *test_profile_load(const struct repo *r, const struct profile_user *u, struct profile *ret);
/* r's config.ini = text, then profile_user_load of r's directory: NULL with *ret loaded, or the
 * error message (caller frees). */
char *test_config_load(const struct repo *r, const char *text, struct profile_user *ret);

/* The tests that run devbox's commands: a fresh directory test_tmp (/tmp/dbx-unit-XXXXXX) with
 * DEVBOX_HOME=test_tmp/home, as cmocka setup and teardown (which removes it). */
extern char test_tmp[64];
int test_home_setup(void **state);
int test_home_teardown(void **state);

/* All of fd's text (a memfd's, a file's), read from its start; the caller frees. */
char *test_fd_text(int fd);

/* fn(ctx, argc, argv): a devbox command (argv NULL-terminated, argv[0] its name) with its stdout
 * and stderr caught: what it returns, and in *ret_out and *ret_err (the caller frees) what it
 * printed. */
struct cmd_ctx;
int test_run_cmd(int (*fn)(struct cmd_ctx *, int, char **), struct cmd_ctx *ctx, char **argv,
                 char **ret_out, char **ret_err);

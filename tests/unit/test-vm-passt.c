/* tests/unit/test-vm-passt.c: starting passt for one VM (no traffic is sent: passt only listens
 * on its unix socket).  Checks the socket appears, the process hygiene (empty environment, own
 * process group, no inherited fds, dies with its parent) and the errors.  Skips without passt. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "vm/vm-internal.h"

static char dir[] = "/tmp/test-vm-passt-XXXXXX";

static int setup(void **state) {
    if (!mkdtemp(dir)) return -1;
    /* As root, passt drops to nobody before it binds its socket. */
    return chmod(dir, geteuid() == 0 ? 01777 : 0700);
}
static int teardown(void **state) {
    dbx_error *e = NULL;
    vm_rm_rf(dir, &e);
    dbx_error_free(&e);
    return 0;
}

static size_t count_fds(pid_t pid) {
    _cleanup_free_ char *p = dbx_xasprintf("/proc/%d/fd", (int)pid);
    DIR *d = opendir(p);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_spawn(void **state) {
    if (access("/usr/bin/passt", X_OK) != 0) {
        skip();
        return;
    }
    _cleanup_free_ char *sock = dbx_xasprintf("%s/passt.sock", dir);
    _cleanup_free_ char *logp = dbx_xasprintf("%s/passt.log", dir);
    _cleanup_close_ int log_fd = open(logp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(log_fd >= 0);
    _cleanup_error_ dbx_error *err = NULL;
    pid_t pid = vm_passt_spawn(sock, log_fd, &err);
    if (pid < 0) fail_msg("%s", err->msg);
    struct stat st;
    assert_int_equal(lstat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(getpgid(pid), pid);
    /* passt re-executes its AVX2 build; either way the environment stays empty */
    _cleanup_free_ char *envp = dbx_xasprintf("/proc/%d/environ", (int)pid);
    _cleanup_free_ char *env = NULL;
    size_t len = 99;
    _cleanup_error_ dbx_error *e2 = NULL;
    if (dbx_read_file_at(AT_FDCWD, envp, 65536, &env, &len, &e2) == 0) assert_int_equal(len, 0);
    assert_true(count_fds(pid) < 64); /* its own sockets only */
    /* a second passt on the same path is refused before anything starts */
    assert_true(vm_passt_spawn(sock, log_fd, &err) < 0);
    assert_non_null(strstr(err->msg, "File exists"));
    dbx_error_free(&err);

    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

static bool gone(pid_t pid) {
    _cleanup_free_ char *p = dbx_xasprintf("/proc/%d/stat", (int)pid);
    _cleanup_free_ char *st = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, p, 4096, &st, NULL, &e) < 0) return true;
    const char *rp = strrchr(st, ')');
    return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

/* passt dies with the process that started it (PR_SET_PDEATHSIG).  Not as root: passt then
 * switches to nobody, and a credential change clears the parent-death signal (measured; run
 * this test as an ordinary user, e.g. setpriv --reuid=65534 --regid=65534 --clear-groups). */
static void test_dies_with_parent(void **state) {
    if (access("/usr/bin/passt", X_OK) != 0 || geteuid() == 0) {
        skip();
        return;
    }
    _cleanup_free_ char *sock = dbx_xasprintf("%s/orphan.sock", dir);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t mid = fork();
    if (mid == 0) {
        dbx_error *err = NULL;
        pid_t pid = vm_passt_spawn(sock, -1, &err);
        (void)!write(p[1], &pid, sizeof(pid));
        _exit(pid > 0 ? 0 : 1);
    }
    close(p[1]);
    pid_t pid = -1;
    assert_int_equal(read(p[0], &pid, sizeof(pid)), sizeof(pid));
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(mid, &status, 0), mid);
    assert_true(pid > 0);
    for (int i = 0; i < 200 && !gone(pid); i++)
        usleep(10000);
    assert_true(gone(pid));
}

static void test_errors(void **state) {
    _cleanup_error_ dbx_error *err = NULL;
    assert_true(vm_passt_spawn("relative.sock", -1, &err) < 0);
    assert_non_null(strstr(err->msg, "absolute"));
    dbx_error_free(&err);
    if (access("/usr/bin/passt", X_OK) != 0) return;
    /* passt cannot bind there: it logs, exits, and we say so instead of waiting */
    assert_true(vm_passt_spawn("/proc/devbox-no-such-dir/passt.sock", -1, &err) < 0);
    assert_non_null(strstr(err->msg, "passt exited with status"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn),
        cmocka_unit_test(test_dies_with_parent),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

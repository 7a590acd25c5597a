/* tests/unit/test-spawn.c: common/spawn.c, the one way devbox starts a child: no deadlock when
 * other threads hold malloc's locks, the child gets exactly the mapped fds, failed steps come
 * back as errors naming the step and errno, new session, parent-death signal, environment.
 * Also common.c's dbx_stdio_reserve, which the clients run before they open anything. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "common/common.h"
#include "common/spawn.h"
#include "tests/unit/helpers.h"

/* A hang must fail the test, not the CI job: SIGALRM's default action ends the process. */
#define TEST_TIMEOUT_S 120

static char *const true_argv[] = {"true", NULL};
static char *const sleep_argv[] = {"sleep", "60", NULL};

static void reap_killed(pid_t pid) {
    kill(pid, SIGKILL);
    assert_int_not_equal(dbx_spawn_wait(pid), -1);
}

/* ---- no deadlock with busy threads ----------------------------------------------------- */

static volatile int stop_threads;

static void *malloc_churn(void *arg) {
    size_t seed = (size_t)arg;
    void *keep[64] = {0};
    while (!stop_threads) {
        for (size_t i = 0; i < DBX_ARRAY_SIZE(keep); i++) {
            free(keep[i]);
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            keep[i] = malloc(16 + (seed >> 40) % 70000); /* small bins and mmap'd chunks */
        }
    }
    for (size_t i = 0; i < DBX_ARRAY_SIZE(keep); i++)
        free(keep[i]);
    return NULL;
}

static void test_threads_no_deadlock(void **state) {
    enum { THREADS = 4, SPAWNS = 300 };
    pthread_t t[THREADS];
    /* one arena for every thread: the lock the spawning thread needs is the busiest one */
    mallopt(M_ARENA_MAX, 1);
    stop_threads = 0;
    for (size_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, malloc_churn, (void *)(i + 1)), 0);
    alarm(TEST_TIMEOUT_S);
    for (int i = 0; i < SPAWNS; i++) {
        struct dbx_spawn s = {.argv = true_argv, .search_path = true, .pdeathsig = SIGKILL};
        _cleanup_error_ dbx_error *err = NULL;
        pid_t pid = -1;
        int r = dbx_spawn(&s, &pid, &err);
        if (r < 0) fail_msg("spawn %d: %s", i, err->msg);
        int status = dbx_spawn_wait(pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    alarm(0);
    stop_threads = 1;
    for (size_t i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

/* ---- the fd map ------------------------------------------------------------------------ */

/* The fds open in process pid, as a bit set (fds < 64). */
static uint64_t open_fds(pid_t pid) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    uint64_t set = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        int fd = atoi(de->d_name);
        assert_true(fd < 64);
        set |= 1ull << fd;
    }
    closedir(d);
    return set;
}

static void test_fd_map(void **state) {
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    /* a leaked fd (not close-on-exec), placed where a mapped child fd lives and above */
    int leak = open("/dev/null", O_RDONLY);
    assert_true(leak >= 0);
    int leak_hi = fcntl(leak, F_DUPFD, 40);
    assert_true(leak_hi >= 40);
    struct dbx_spawn_fd fds[] = {{0, DBX_SPAWN_DEVNULL}, {1, p[1]}, {5, p[0]}, {7, leak}};
    struct dbx_spawn s = {
        .argv = sleep_argv, .search_path = true, .fds = fds, .nfds = DBX_ARRAY_SIZE(fds)};
    _cleanup_error_ dbx_error *err = NULL;
    pid_t pid = -1;
    int r = dbx_spawn(&s, &pid, &err);
    if (r < 0) fail_msg("%s", err->msg);
    /* dbx_spawn returned: the program was exec'd.  Its dynamic loader (libc.so) and locale
     * setup may still hold an fd of their own for a moment: look until they are done. */
    const uint64_t want = (1ull << 0) | (1ull << 1) | (1ull << 2) | (1ull << 5) | (1ull << 7);
    uint64_t got = open_fds(pid);
    for (int i = 0; i < 100 && got != want; i++) {
        usleep(20000);
        got = open_fds(pid);
    }
    reap_killed(pid);
    /* 2 was not listed: /dev/null, never left closed */
    assert_int_equal(got, want);
    close(p[0]), close(p[1]), close(leak), close(leak_hi);
}

/* Mapping onto each other's numbers (child 3 := parent 4, child 4 := parent 3) must not
 * clobber: the child sees them swapped. */
static void test_fd_map_swap(void **state) {
    int a[2], b[2];
    assert_int_equal(pipe2(a, O_CLOEXEC), 0);
    assert_int_equal(pipe2(b, O_CLOEXEC), 0);
    struct dbx_spawn_fd fds[] = {{3, a[1]}, {4, b[1]}};
    char *const argv[] = {"sh", "-c", "echo three >&3; echo four >&4", NULL};
    struct dbx_spawn s = {.argv = argv, .search_path = true, .fds = fds, .nfds = 2};
    _cleanup_error_ dbx_error *err = NULL;
    pid_t pid = -1;
    if (dbx_spawn(&s, &pid, &err) < 0) fail_msg("%s", err->msg);
    close(a[1]), close(b[1]);
    int status = dbx_spawn_wait(pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char buf[32] = {0};
    assert_int_equal(read(a[0], buf, sizeof(buf) - 1), 6);
    assert_string_equal(buf, "three\n");
    memset(buf, 0, sizeof(buf));
    assert_int_equal(read(b[0], buf, sizeof(buf) - 1), 5);
    assert_string_equal(buf, "four\n");
    close(a[0]), close(b[0]);
}

/* Fail close_range(2) with ENOSYS in this process and its children (a kernel before 5.9). */
static void deny_close_range(void) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    assert_non_null(ctx);
    assert_int_equal(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(close_range), 0), 0);
    assert_int_equal(seccomp_load(ctx), 0);
    seccomp_release(ctx);
}

/* Without close_range the child falls back to marking fds one by one: still exactly the
 * mapped fds. */
static void test_close_fallback(void **state) {
    pid_t t = fork();
    assert_true(t >= 0);
    if (t == 0) {
        deny_close_range();
        if (syscall(SYS_close_range, 1000u, 1000u, 0u) != -1 || errno != ENOSYS) _exit(9);
        int leak = open("/dev/null", O_RDONLY); /* not close-on-exec */
        if (leak < 0 || fcntl(leak, F_DUPFD, 200) < 200) _exit(10);
        struct dbx_spawn_fd fds[] = {{4, leak}};
        struct dbx_spawn s = {.argv = sleep_argv, .search_path = true, .fds = fds, .nfds = 1};
        pid_t pid = -1;
        if (dbx_spawn(&s, &pid, NULL) < 0) _exit(11);
        const uint64_t want = (1ull << 0) | (1ull << 1) | (1ull << 2) | (1ull << 4);
        uint64_t got = open_fds(pid);
        for (int i = 0; i < 100 && got != want; i++) { /* the loader's own fd, as above */
            usleep(20000);
            got = open_fds(pid);
        }
        kill(pid, SIGKILL);
        (void)dbx_spawn_wait(pid);
        if (got != want) _exit(12);
        _exit(0);
    }
    int status = dbx_spawn_wait(t);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void test_exec_missing(void **state) {
    char *const argv[] = {"devbox-no-such-program", NULL};
    struct dbx_spawn s = {.argv = argv, .search_path = true};
    _cleanup_error_ dbx_error *err = NULL;
    pid_t pid = -1;
    assert_int_equal(dbx_spawn(&s, &pid, &err), -ENOENT);
    assert_int_equal(pid, -1); /* not set on failure */
    assert_int_equal(err->code, ENOENT);
    assert_string_equal(err->msg, "exec 'devbox-no-such-program': No such file or directory");

    dbx_error_free(&err);
    struct dbx_spawn abs = {.argv = argv, .path = "/nonexistent/dir/prog"};
    assert_int_equal(dbx_spawn(&abs, NULL, &err), -ENOENT);
    assert_string_equal(err->msg, "exec '/nonexistent/dir/prog': No such file or directory");
}

static void test_exec_not_executable(void **state) {
    char *const argv[] = {"passwd", NULL};
    struct dbx_spawn s = {.argv = argv, .path = "/etc/passwd"};
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(dbx_spawn(&s, NULL, &err), -EACCES);
    assert_string_equal(err->msg, "exec '/etc/passwd': Permission denied");
}

static void test_bad_fd(void **state) {
    struct dbx_spawn_fd fds[] = {{3, 999}};
    struct dbx_spawn s = {
        .name = "virtiofsd", .argv = true_argv, .search_path = true, .fds = fds, .nfds = 1};
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(dbx_spawn(&s, NULL, &err), -EBADF);
    assert_string_equal(err->msg, "spawn 'virtiofsd': dup2 fd 3: Bad file descriptor");
}

static void test_bad_cwd(void **state) {
    struct dbx_spawn s = {.argv = true_argv, .search_path = true, .cwd = "/nonexistent/dir"};
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(dbx_spawn(&s, NULL, &err), -ENOENT);
    assert_string_equal(err->msg, "spawn 'true': chdir: No such file or directory");
}

/* ---- session, parent-death signal, environment ---------------------------------------- */

static void test_new_session(void **state) {
    struct dbx_spawn s = {.argv = sleep_argv, .search_path = true, .new_session = true};
    _cleanup_error_ dbx_error *err = NULL;
    pid_t pid = -1;
    if (dbx_spawn(&s, &pid, &err) < 0) fail_msg("%s", err->msg);
    pid_t sid = getsid(pid);
    reap_killed(pid);
    assert_int_equal(sid, pid);
    assert_int_not_equal(getsid(0), pid);

    struct dbx_spawn same = {.argv = sleep_argv, .search_path = true};
    if (dbx_spawn(&same, &pid, &err) < 0) fail_msg("%s", err->msg);
    sid = getsid(pid);
    reap_killed(pid);
    assert_int_equal(sid, getsid(0));
}

/* A middle process spawns `sleep 60` with SIGKILL as its parent-death signal and exits; we
 * (a subreaper) inherit the sleep, which must have been killed. */
static void test_pdeathsig(void **state) {
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t mid = fork();
    assert_true(mid >= 0);
    if (mid == 0) {
        struct dbx_spawn s = {.argv = sleep_argv, .search_path = true, .pdeathsig = SIGKILL};
        pid_t pid = -1;
        if (dbx_spawn(&s, &pid, NULL) < 0) _exit(1);
        (void)!write(p[1], &pid, sizeof(pid));
        _exit(0);
    }
    close(p[1]);
    pid_t pid = -1;
    assert_int_equal(read(p[0], &pid, sizeof(pid)), sizeof(pid));
    close(p[0]);
    int status = dbx_spawn_wait(mid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    alarm(TEST_TIMEOUT_S);
    status = dbx_spawn_wait(pid); /* ours now (subreaper); without the signal: 60 s, then 0 */
    alarm(0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
}

static void test_env_and_detach(void **state) {
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    char *const envp[] = {"PATH=/usr/bin:/bin", "DBX_T=one", NULL};
    char *const argv[] = {"sh", "-c", "echo \"$DBX_T ${HOME-unset} $(ps -o sid= -p $$)\"", NULL};
    struct dbx_spawn_fd fds[] = {{1, p[1]}};
    struct dbx_spawn s = {
        .argv = argv, .envp = envp, .search_path = true, .detach = true, .fds = fds, .nfds = 1};
    _cleanup_error_ dbx_error *err = NULL;
    pid_t pid = -1;
    if (dbx_spawn(&s, &pid, &err) < 0) fail_msg("%s", err->msg);
    assert_int_equal(pid, 0); /* not our child */
    close(p[1]);
    char buf[128] = {0};
    size_t len = 0;
    ssize_t n;
    while ((n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    close(p[0]);
    int sid = 0;
    char home[16];
    assert_int_equal(sscanf(buf, "one %15s %d", home, &sid), 2);
    assert_string_equal(home, "unset");
    assert_int_not_equal(sid, getsid(0)); /* its own session */
}

/* ---- the seccomp listener handoff ------------------------------------------------------ */

/* A filter that allows everything, loaded with NEW_LISTENER (a listener with nothing to
 * notify is still a listener fd). */
static struct sock_filter allow_all[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
static struct sock_fprog allow_prog = {.len = 1, .filter = allow_all};

/* SCM_RIGHTS mode: the listener arrives over the socket and the child execs without waiting
 * (no ptrace access to it needed). */
static void test_listener_sock(void **state) {
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    struct dbx_spawn s = {.argv = true_argv,
                          .search_path = true,
                          .seccomp = &allow_prog,
                          .seccomp_flags = SECCOMP_FILTER_FLAG_NEW_LISTENER,
                          .seccomp_listener_sock = sp[1],
                          .seccomp_listener_w = -1,
                          .seccomp_go_r = -1,
                          .seccomp_go_w = -1};
    struct dbx_spawn_child c;
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(dbx_spawn_start(&s, &c, &err), 0);
    close(sp[1]);
    int lfd = test_recv_fd(sp[0]);
    assert_true(lfd >= 0);
    char link[64] = "";
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", lfd);
    assert_true(readlink(path, link, sizeof(link) - 1) > 0);
    assert_string_equal(link, "anon_inode:seccomp notify");
    pid_t pid = c.pid;
    assert_int_equal(dbx_spawn_finish(&c, &err), 0);
    int st = dbx_spawn_wait(pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(lfd);
    close(sp[0]);
}

/* pidfd_getfd mode: a parent that gives up closes its end of the go pipe; the child sees EOF
 * (it closed its own copy of that end) and reports, rather than both waiting for ever. */
static void test_listener_give_up(void **state) {
    int info[2], go[2];
    assert_int_equal(pipe2(info, O_CLOEXEC), 0);
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    struct dbx_spawn s = {.name = "waiter",
                          .argv = true_argv,
                          .search_path = true,
                          .seccomp = &allow_prog,
                          .seccomp_flags = SECCOMP_FILTER_FLAG_NEW_LISTENER,
                          .seccomp_listener_sock = -1,
                          .seccomp_listener_w = info[1],
                          .seccomp_go_r = go[0],
                          .seccomp_go_w = go[1]};
    struct dbx_spawn_child c;
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(dbx_spawn_start(&s, &c, &err), 0);
    close(info[1]);
    close(go[0]);
    int lfd = -1;
    assert_int_equal(read(info[0], &lfd, sizeof(lfd)), (ssize_t)sizeof(lfd));
    close(go[1]); /* give up */
    assert_true(dbx_spawn_finish(&c, &err) < 0);
    assert_string_equal(err->msg, "spawn 'waiter': wait for the parent: Broken pipe");
    close(info[0]);
}

static void test_fd_twice(void **state) {
    struct dbx_spawn_fd fds[] = {{3, 0}, {3, 1}};
    struct dbx_spawn s = {
        .name = "twice", .argv = true_argv, .search_path = true, .fds = fds, .nfds = 2};
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(dbx_spawn(&s, NULL, &err), -EINVAL);
    assert_string_equal(err->msg, "spawn 'twice': child fd 3 given twice");
}

/* In a child (it closes our stdio): closes the fds `closed` names (bits 0-2), reserves, then
 * checks each: a closed one is /dev/null the wrong way round (reads or writes fail with EBADF),
 * an open one is untouched, and the next fd opened is none of them.  Exits 0 when so. */
static int reserve_child(unsigned closed) {
    /* the runner's own stdio may be closed, the case under test: ours is open first */
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0) {
            int n = open("/dev/null", O_RDWR);
            if (n < 0 || (n != fd && dup2(n, fd) < 0)) return 5;
            if (n != fd) close(n);
        }
    struct stat before[3];
    for (int fd = 0; fd <= 2; fd++)
        if (fstat(fd, &before[fd]) < 0) return 10 + fd;
    for (int fd = 0; fd <= 2; fd++)
        if (closed & (1u << fd)) close(fd);
    if (dbx_stdio_reserve() < 0) return 20;
    for (int fd = 0; fd <= 2; fd++) {
        struct stat st;
        if (fstat(fd, &st) < 0) return 30 + fd;
        if (!(closed & (1u << fd))) {
            if (st.st_ino != before[fd].st_ino || st.st_dev != before[fd].st_dev) return 40 + fd;
            continue;
        }
        if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) return 50 + fd; /* /dev/null */
        char c = 'x';
        ssize_t n = fd == 0 ? read(fd, &c, 1) : write(fd, &c, 1);
        if (n != -1 || errno != EBADF) return 60 + fd;
    }
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    return s > 2 ? 0 : 70;
}

static void test_stdio_reserve(void **state) {
    (void)state;
    for (unsigned closed = 0; closed < 8; closed++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) _exit(reserve_child(closed));
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) != 0)
            fail_msg("closed fds %#x: child exited %d", closed, WEXITSTATUS(st));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stdio_reserve),
        cmocka_unit_test(test_threads_no_deadlock),
        cmocka_unit_test(test_fd_map),
        cmocka_unit_test(test_fd_map_swap),
        cmocka_unit_test(test_close_fallback),
        cmocka_unit_test(test_exec_missing),
        cmocka_unit_test(test_exec_not_executable),
        cmocka_unit_test(test_bad_fd),
        cmocka_unit_test(test_bad_cwd),
        cmocka_unit_test(test_new_session),
        cmocka_unit_test(test_pdeathsig),
        cmocka_unit_test(test_env_and_detach),
        cmocka_unit_test(test_listener_sock),
        cmocka_unit_test(test_listener_give_up),
        cmocka_unit_test(test_fd_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

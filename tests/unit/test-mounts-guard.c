/* tests/unit/test-mounts-guard.c: the name guard (mounts-names.c) serving a real seccomp
 * listener.  A child process loads the filter, hands the guard its listener, and has threads
 * create names while another thread interrupts them with a signal: a notification the guard
 * saw by poll can be gone when it receives (ENOENT, which libseccomp reports as -ECANCELED);
 * the guard must go on serving, and return 0 only once every filtered task is gone (a call
 * left unanswered fails with ENOSYS when the listener closes, and the child reports it). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "mounts/mounts-internal.h"

#include "tests/unit/helpers.h"

#define WORKERS 4
#define ROUNDS 20000

static char dir[64];
static volatile int stop;
static volatile int unanswered; /* a call failed with ENOSYS: the listener closed under it */
static pthread_t workers[WORKERS];

static void on_usr1(int sig) {
    (void)sig;
}

static void *worker(void *arg) {
    char name[32];
    snprintf(name, sizeof(name), "w%d", (int)(intptr_t)arg);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (int i = 0; i < ROUNDS; i++) {
        if (mkdirat(dfd, name, 0755) == 0)
            unlinkat(dfd, name, AT_REMOVEDIR);
        else if (errno == ENOSYS)
            unanswered = 1;
    }
    close(dfd);
    return NULL;
}

static void *interrupter(void *arg) {
    (void)arg;
    while (!stop)
        for (int i = 0; i < WORKERS; i++)
            pthread_kill(workers[i], SIGUSR1);
    return NULL;
}

static void child(int sock) {
    struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART: the call is interrupted */
    sigaction(SIGUSR1, &sa, NULL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) _exit(2);
    dbx_error *err = NULL;
    struct sock_filter *insns = NULL;
    size_t n = 0;
    if (mounts_guard_filter_bpf(&insns, &n, &err) < 0) _exit(2);
    struct sock_fprog prog = {.len = (unsigned short)n, .filter = insns};
    int lfd =
        (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (lfd < 0) _exit(2);
    test_send_fd(sock, lfd);
    close(lfd);
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i);
    pthread_t sig;
    pthread_create(&sig, NULL, interrupter, NULL);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(workers[i], NULL);
    stop = 1;
    pthread_join(sig, NULL);
    _exit(unanswered ? 1 : 0);
}

static void test_guard_survives_interrupted_calls(void **state) {
    snprintf(dir, sizeof(dir), "/tmp/test-guard-XXXXXX");
    assert_non_null(mkdtemp(dir));
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sp[0]);
        child(sp[1]);
    }
    close(sp[1]);
    int listener = test_recv_fd(sp[0]);
    close(sp[0]);
    if (listener < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        skip_because("no seccomp user notification here");
    }
    struct mounts_guard g = {0}; /* no git directories: every name is fine */
    int r = mounts_guard_serve(listener, &g);
    /* Closing the listener fails every call still waiting for an answer with ENOSYS, so the
     * child ends either way: with 1 if the guard had stopped answering before it was done. */
    close(listener);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    rmdir(dir);
    assert_int_equal(r, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_survives_interrupted_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* bench/forkexec.c: the in-guest floor for `devbox exec true`: N fork+exec+wait of a program,
 * printing p50 and p99 in microseconds.  Built static so it runs in any image. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100;
    const char *prog = argc > 2 ? argv[2] : "/bin/true";
    if (n < 1 || n > 100000) return 2;
    double *t = calloc((size_t)n, sizeof(double));
    for (int i = 0; i < n; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        pid_t pid = fork();
        if (pid == 0) {
            execl(prog, prog, (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        t[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
    }
    qsort(t, (size_t)n, sizeof(double), cmp);
    printf("%.1f %.1f\n", t[n / 2], t[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1]);
    return 0;
}

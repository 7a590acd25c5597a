/* bench/boxload.c: the load `make bench` puts in a box to see what the host gets back.
 *   boxload mem MIB HOLD_S   touch MIB of anonymous memory, hold it HOLD_S seconds, exit (the
 *                            guest frees it; free page reporting should hand it to the host)
 *   boxload file PATH MIB    write MIB of non-zero data to PATH and fsync it (non-zero so no
 *                            zero detection anywhere can skip the allocation)
 * Built static so it runs in any image. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1024L * 1024L)

static int mem(long mib, int hold) {
    char *p =
        mmap(NULL, (size_t)(mib * MIB), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("boxload: mmap");
        return 1;
    }
    long page = sysconf(_SC_PAGESIZE);
    for (long off = 0; off < mib * MIB; off += page)
        p[off] = (char)(off / page) | 1;
    sleep((unsigned)hold);
    return 0;
}

static int file(const char *path, long mib) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("boxload: open");
        return 1;
    }
    static char buf[1 << 20];
    for (long i = 0; i < mib; i++) {
        memset(buf, (int)(i % 255) + 1, sizeof(buf));
        for (size_t done = 0; done < sizeof(buf);) {
            ssize_t w = write(fd, buf + done, sizeof(buf) - done);
            if (w < 0) {
                perror("boxload: write");
                return 1;
            }
            done += (size_t)w;
        }
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        perror("boxload: fsync");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "mem") == 0) return mem(atol(argv[2]), atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "file") == 0) return file(argv[2], atol(argv[3]));
    fprintf(stderr, "usage: boxload mem MIB HOLD_S | file PATH MIB\n");
    return 2;
}

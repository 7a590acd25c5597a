/* tests/e2e/probe.c: a static probe the end-to-end tests run inside the box (built by the
 * test with `gcc -static -O2` into the shared repository).  Prints one "NAME=RESULT" line
 * per probe, RESULT being OK or the errno name (EPERM, ENOSYS, EFAULT...).
 *
 * usage: probe sys NAME...     try each syscall with harmless or bad arguments, in a forked
 *                              child (so a call that works changes nothing for the next one)
 *                              in the style of bubblewrap's try-syscall: EPERM/ENOSYS means
 *                              the filter stopped it; EBADF/EFAULT/EINVAL/... means the call
 *                              reached the kernel
 *        probe status          the Cap*, NoNewPrivs, Seccomp lines of /proc/self/status
 *        probe open PATH...    open PATH read-only, then write-only (O_NONBLOCK|O_NOCTTY);
 *                              OK when either works, else the read-only attempt's errno
 *        probe mknod PATH c|b MAJOR MINOR
 *        probe kill1 SIG       kill(1, SIG)
 *        probe ptrace1         ptrace(PTRACE_ATTACH, 1)
 *        probe ids             uid=R/E/S and gid=R/E/S lines
 *        probe realtime        CLOCK_REALTIME in nanoseconds (busybox date has no %N)
 *        probe settime SECS    move CLOCK_REALTIME by SECS seconds (may be negative or a
 *                              fraction)
 *        probe skew SECS FILE  for SECS seconds, write FILE (in the workspace: its mtime is the
 *                              host's clock) every 20 ms and compare its mtime with the box's
 *                              clock right after; once a second "skew_max_us=N" (the most the
 *                              file was in the box's future that second; negative: never;
 *                              "none": no sample that second), and
 *                              at the end "samples=N" and "future=N" (how many were)
 *        probe forkbomb SECS   every process forks again and again for SECS seconds (then
 *                              they all wait for their children and exit); prints forks=,
 *                              fails= (EAGAIN and the like), max_current= (pids.current of
 *                              the process's cgroup, sampled)
 *        probe spin SECS       busy loop for SECS of wall time; prints wall_ms= and cpu_ms=
 *        probe hog MB          allocate and touch MB MiB, 1 MiB at a time; prints hog_done=MB
 *        probe remount_rw PATH try to make the read-only mount at PATH writable:
 *                              open_tree + mount_setattr, mount(MS_REMOUNT|MS_BIND), then
 *                              open(PATH, O_WRONLY|O_APPEND) (nothing is written)
 *        probe xattr PATH NAME  the value of extended attribute NAME of PATH (not following a
 *                              symlink): "xattr=VALUE" or "xattr=ERRNO"
 *        probe handle_open PATH DIR   name_to_handle_at(PATH), then open_by_handle_at through
 *                              DIR's mount for writing ("shocker"; nothing is written)
 *        probe uffd PATH       open PATH (/dev/userfaultfd) read-write, then ioctl
 *                              USERFAULTFD_IOC_NEW on it: "uffd_open=", "uffd_new=" (the
 *                              latter only when the open worked)
 * Exit status: 0 unless the usage is wrong (2). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_userfaultfd
#define SYS_userfaultfd 323
#endif

#define NR_open_tree 428
#define NR_move_mount 429
#define NR_fsopen 430
#define NR_fsconfig 431
#define NR_fsmount 432
#define NR_mount_setattr 442

#define WRONG_POINTER ((void *)1)

static const char *errname(int e) {
    switch (e) {
    case 0:
        return "OK";
#define E(x)                                                                                       \
    case x:                                                                                        \
        return #x
        E(EPERM);
        E(ENOENT);
        E(ESRCH);
        E(EINTR);
        E(EIO);
        E(ENXIO);
        E(E2BIG);
        E(EBADF);
        E(ECHILD);
        E(EAGAIN);
        E(ENOMEM);
        E(EACCES);
        E(EFAULT);
        E(EBUSY);
        E(EEXIST);
        E(EXDEV);
        E(ENODEV);
        E(ENOTDIR);
        E(EISDIR);
        E(EINVAL);
        E(ENFILE);
        E(EMFILE);
        E(ENOTTY);
        E(EROFS);
        E(ENOSPC);
        E(ESPIPE);
        E(EMLINK);
        E(ENOSYS);
        E(EOPNOTSUPP);
        E(EAFNOSUPPORT);
        E(EPROTONOSUPPORT);
        E(ESOCKTNOSUPPORT);
        E(ENOKEY);
        E(EKEYREJECTED);
        E(EDQUOT);
        E(ELOOP);
        E(ENAMETOOLONG);
        E(ENOEXEC);
#undef E
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "E%d", e);
        return buf;
    }
    }
}

/* One syscall attempt: -1 with errno set, or >= 0 on success.  Runs in a child. */
static long try_syscall(const char *name, int *unknown) {
    *unknown = 0;
    if (!strcmp(name, "mount"))
        return syscall(SYS_mount, WRONG_POINTER, WRONG_POINTER, WRONG_POINTER, 0UL, NULL);
    if (!strcmp(name, "umount2")) return syscall(SYS_umount2, WRONG_POINTER, 0);
    if (!strcmp(name, "unshare_user")) return syscall(SYS_unshare, CLONE_NEWUSER);
    if (!strcmp(name, "unshare_ns")) return syscall(SYS_unshare, CLONE_NEWNS);
    if (!strcmp(name, "clone_user")) {
        long r =
            syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, 0UL);
        if (r == 0) _exit(0); /* the grandchild */
        if (r > 0) waitpid((pid_t)r, NULL, 0);
        return r;
    }
    if (!strcmp(name, "clone3")) return syscall(SYS_clone3, WRONG_POINTER, (size_t)88);
    if (!strcmp(name, "bpf")) return syscall(SYS_bpf, -1, NULL, 0);
    if (!strcmp(name, "perf_event_open"))
        return syscall(SYS_perf_event_open, WRONG_POINTER, 0, -1, -1, 0UL);
    if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, 0x7fffffffL, 0L, 0L, 0L, 0L);
    if (!strcmp(name, "add_key"))
        return syscall(SYS_add_key, WRONG_POINTER, WRONG_POINTER, NULL, (size_t)0, 0);
    if (!strcmp(name, "userfaultfd")) /* user-mode-only + an invalid flag: EINVAL if reached */
        return syscall(SYS_userfaultfd, 1 | 0x40000000);
    if (!strcmp(name, "io_uring_setup")) return syscall(SYS_io_uring_setup, 1, WRONG_POINTER);
    if (!strcmp(name, "kexec_load")) return syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0xffff0000UL);
    if (!strcmp(name, "init_module")) return syscall(SYS_init_module, WRONG_POINTER, 0UL, "");
    if (!strcmp(name, "finit_module")) return syscall(SYS_finit_module, -1, "", 0);
    if (!strcmp(name, "ptrace")) /* TRACEME from the forked child: works if reached */
        return syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL);
    if (!strcmp(name, "socket_vsock")) /* EAFNOSUPPORT without vsock: reached, though */
        return syscall(SYS_socket, AF_VSOCK, SOCK_STREAM, 0);
    if (!strcmp(name, "socket_packet")) return syscall(SYS_socket, 17 /* AF_PACKET */, SOCK_RAW, 0);
    if (!strcmp(name, "socket_inet")) return syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    if (!strcmp(name, "socket_unix")) return syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
    if (!strcmp(name, "setns")) return syscall(SYS_setns, -1, 0);
    if (!strcmp(name, "swapon")) return syscall(SYS_swapon, WRONG_POINTER, 0);
    if (!strcmp(name, "reboot")) /* wrong magic: EINVAL if reached, never a reboot */
        return syscall(SYS_reboot, 0, 0, 0, NULL);
    if (!strcmp(name, "read")) return syscall(SYS_read, -1, NULL, (size_t)0);
    if (!strcmp(name, "getpid")) return syscall(SYS_getpid);
    if (!strcmp(name, "chmod")) return syscall(SYS_chmod, WRONG_POINTER, 0700);
    if (!strcmp(name, "open_tree")) return syscall(NR_open_tree, -1, WRONG_POINTER, 0);
    if (!strcmp(name, "move_mount"))
        return syscall(NR_move_mount, -1, WRONG_POINTER, -1, WRONG_POINTER, 0);
    if (!strcmp(name, "fsopen")) return syscall(NR_fsopen, WRONG_POINTER, 0);
    if (!strcmp(name, "fsconfig")) return syscall(NR_fsconfig, -1, 0, NULL, NULL, 0);
    if (!strcmp(name, "fsmount")) return syscall(NR_fsmount, -1, 0, 0);
    if (!strcmp(name, "mount_setattr"))
        return syscall(NR_mount_setattr, -1, WRONG_POINTER, 0, WRONG_POINTER, (size_t)32);
    if (!strcmp(name, "pivot_root")) return syscall(SYS_pivot_root, WRONG_POINTER, WRONG_POINTER);
    if (!strcmp(name, "chroot")) return syscall(SYS_chroot, WRONG_POINTER);
    if (!strcmp(name, "open_by_handle_at"))
        return syscall(SYS_open_by_handle_at, -1, WRONG_POINTER, 0);
    if (!strcmp(name, "fork")) {
        pid_t p = fork();
        if (p == 0) _exit(0);
        if (p > 0) waitpid(p, NULL, 0);
        return p;
    }
    *unknown = 1;
    return -1;
}

static int cmd_sys(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        int pfd[2];
        if (pipe(pfd) < 0) {
            perror("pipe");
            return 1;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            printf("%s=fork:%s\n", argv[i], errname(errno));
            close(pfd[0]);
            close(pfd[1]);
            continue;
        }
        if (pid == 0) {
            close(pfd[0]);
            int unknown;
            errno = 0;
            long r = try_syscall(argv[i], &unknown);
            int res = unknown ? -1 : r < 0 ? errno : 0;
            if (write(pfd[1], &res, sizeof res) != sizeof res) _exit(1);
            _exit(0);
        }
        close(pfd[1]);
        int res = -2;
        ssize_t n = read(pfd[0], &res, sizeof res);
        close(pfd[0]);
        int st = 0;
        waitpid(pid, &st, 0);
        if (n != sizeof res) {
            if (WIFSIGNALED(st))
                printf("%s=SIGNAL%d\n", argv[i], WTERMSIG(st));
            else
                printf("%s=NORESULT\n", argv[i]);
        } else if (res == -1) {
            printf("%s=UNKNOWN\n", argv[i]);
        } else {
            printf("%s=%s\n", argv[i], errname(res));
        }
    }
    return 0;
}

static int cmd_status(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        printf("status=%s\n", errname(errno));
        return 0;
    }
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs:", 11) ||
            !strncmp(line, "Seccomp:", 8)) {
            char *tab = strchr(line, ':');
            *tab = '=';
            /* "Name=\tvalue" -> "Name=value" */
            char *v = tab + 1;
            while (*v == '\t' || *v == ' ')
                v++;
            printf("%.*s%s", (int)(tab - line + 1), line, v);
        }
    }
    fclose(f);
    return 0;
}

static int cmd_open(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        int e1 = fd < 0 ? errno : 0;
        if (fd >= 0) close(fd);
        fd = open(argv[i], O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        int e2 = fd < 0 ? errno : 0;
        if (fd >= 0) close(fd);
        printf("%s=%s\n", argv[i], (e1 == 0 || e2 == 0) ? "OK" : errname(e1));
    }
    return 0;
}

static double now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long read_pids_current(void) {
    char cg[256] = "", path[512], buf[64];
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return -1;
    if (!fgets(cg, sizeof cg, f)) cg[0] = 0;
    fclose(f);
    cg[strcspn(cg, "\n")] = 0;
    if (strncmp(cg, "0::", 3) != 0) return -1;
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/pids.current", cg + 3);
    f = fopen(path, "r");
    if (!f) return -1;
    long v = fgets(buf, sizeof buf, f) ? atol(buf) : -1;
    fclose(f);
    return v;
}

static int cmd_forkbomb(int secs) {
    struct counts {
        int forks, fails;
    } *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    double end = now(CLOCK_MONOTONIC) + secs;
    pid_t root = fork();
    if (root < 0) {
        printf("forks=0\nfails=1\nmax_current=%ld\n", read_pids_current());
        return 0;
    }
    if (root == 0) {
        while (now(CLOCK_MONOTONIC) < end) {
            pid_t p = fork();
            if (p < 0) {
                __sync_fetch_and_add(&sh->fails, 1);
                usleep(20000);
            } else if (p > 0) {
                __sync_fetch_and_add(&sh->forks, 1);
            }
        }
        while (wait(NULL) > 0)
            ;
        _exit(0);
    }
    long max = 0;
    while (now(CLOCK_MONOTONIC) < end + 1) {
        long c = read_pids_current();
        if (c > max) max = c;
        usleep(50000);
    }
    waitpid(root, NULL, 0);
    printf("forks=%d\nfails=%d\nmax_current=%ld\n", sh->forks, sh->fails, max);
    return 0;
}

static int cmd_spin(double secs) {
    double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    volatile unsigned long x = 0;
    while (now(CLOCK_MONOTONIC) - w0 < secs)
        for (int i = 0; i < 100000; i++)
            x++;
    printf("wall_ms=%ld\ncpu_ms=%ld\n", (long)((now(CLOCK_MONOTONIC) - w0) * 1000),
           (long)((now(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1000));
    return 0;
}

static int cmd_hog(long mb) {
    for (long i = 0; i < mb; i++) {
        char *p = malloc(1 << 20);
        if (!p) {
            printf("hog_malloc_failed=%ld\n", i);
            return 1;
        }
        memset(p, (int)(i & 0xff) | 1, 1 << 20);
    }
    printf("hog_done=%ld\n", mb);
    return 0;
}

struct mount_attr_ {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

static int cmd_remount_rw(const char *path) {
    long fd = syscall(NR_open_tree, AT_FDCWD, path, 01 /* OPEN_TREE_CLOEXEC */);
    printf("open_tree=%s\n", errname(fd < 0 ? errno : 0));
    if (fd >= 0) {
        struct mount_attr_ a = {.attr_clr = 0x1 /* MOUNT_ATTR_RDONLY */};
        long r = syscall(NR_mount_setattr, (int)fd, "", 0x1000 /* AT_EMPTY_PATH */, &a, sizeof a);
        printf("mount_setattr=%s\n", errname(r < 0 ? errno : 0));
        close((int)fd);
    }
    int r = mount(NULL, path, NULL, MS_REMOUNT | MS_BIND, NULL);
    printf("remount=%s\n", errname(r < 0 ? errno : 0));
    int wfd = open(path, O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC);
    printf("write_open=%s\n", errname(wfd < 0 ? errno : 0));
    if (wfd >= 0) close(wfd);
    return 0;
}

static int cmd_handle_open(const char *path, const char *dir) {
    struct {
        struct file_handle fh;
        unsigned char buf[128];
    } h;
    int mnt = 0;
    h.fh.handle_bytes = sizeof h.buf;
    int r = name_to_handle_at(AT_FDCWD, path, &h.fh, &mnt, 0);
    printf("name_to_handle_at=%s\n", errname(r < 0 ? errno : 0));
    if (r < 0) return 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        printf("open_dir=%s\n", errname(errno));
        return 0;
    }
    int fd = open_by_handle_at(dfd, &h.fh, O_WRONLY | O_APPEND | O_CLOEXEC);
    printf("open_by_handle_at=%s\n", errname(fd < 0 ? errno : 0));
    if (fd >= 0) close(fd);
    close(dfd);
    return 0;
}

/* Linux 6.1 include/uapi/linux/userfaultfd.h; defined here so older headers build the probe */
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static int cmd_cpuid(void) {
    /* __get_cpuid and __get_cpuid_count return 0 for a leaf above the CPU's highest */
    unsigned a, b, c, d;
    printf("vmx=%u\n", __get_cpuid(1, &a, &b, &c, &d) ? (c >> 5) & 1 : 0);
    printf("svm=%u\n", __get_cpuid(0x80000001u, &a, &b, &c, &d) ? (c >> 2) & 1 : 0);
    if (__get_cpuid_count(0x8000000Au, 0, &a, &b, &c, &d))
        printf("svm_leaf=%08x,%08x,%08x,%08x\n", a, b, c, d);
    else
        printf("svm_leaf=none\n");
    return 0;
}

static int cmd_uffd(const char *path) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    printf("uffd_open=%s\n", errname(fd < 0 ? errno : 0));
    if (fd < 0) return 0;
    int u = ioctl(fd, USERFAULTFD_IOC_NEW, O_CLOEXEC);
    printf("uffd_new=%s\n", errname(u < 0 ? errno : 0));
    if (u >= 0) close(u);
    close(fd);
    return 0;
}

static int cmd_serve(const char *addr, int port, const char *text) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    bool v6 = strchr(addr, ':') != NULL;
    if (v6 ? inet_pton(AF_INET6, addr, &sa6.sin6_addr) != 1
           : inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        printf("serve=EINVAL\n");
        return 2;
    }
    int l = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (v6 ? bind(l, (struct sockaddr *)&sa6, sizeof(sa6))
            : bind(l, (struct sockaddr *)&sa, sizeof(sa))) < 0 ||
        listen(l, SOMAXCONN) < 0) {
        printf("serve=%s\n", errname(errno));
        return 1;
    }
    printf("listening\n");
    char resp[4096];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                     strlen(text) + 1, text);
    if (n < 0 || (size_t)n >= sizeof(resp)) return 2;
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        /* the request's head, up to its blank line (a client that sends more is cut off) */
        char req[8192];
        size_t got = 0;
        ssize_t r;
        while (got < sizeof(req) - 1 && (r = read(c, req + got, sizeof(req) - 1 - got)) > 0) {
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n")) break;
        }
        for (ssize_t off = 0; off < n && (r = write(c, resp + off, (size_t)(n - off))) > 0;)
            off += r;
        close(c);
    }
}

/* lock FILE: the locks tools take on a file, each as it went (t-exec-basic): an fcntl lock
 * that does not wait (F_SETLK, SQLite's), one that waits (F_SETLKW: `lockf`, Python's
 * fcntl.lockf), and flock that does not wait. */
static int cmd_lock(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return perror("open"), 1;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    printf("setlk %s\n", fcntl(fd, F_SETLK, &fl) == 0 ? "ok" : strerror(errno));
    printf("setlkw %s\n", fcntl(fd, F_SETLKW, &fl) == 0 ? "ok" : strerror(errno));
    printf("flock %s\n", flock(fd, LOCK_EX | LOCK_NB) == 0 ? "ok" : strerror(errno));
    return 0;
}

static long long ns_of(const struct timespec *ts) {
    return (long long)ts->tv_sec * 1000000000ll + ts->tv_nsec;
}

/* make's check: a file it just saw written, against its clock (GNU make's "File '...' has
 * modification time ... in the future" and "Clock skew detected") */
static int cmd_skew(double secs, const char *path) {
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long long end = ns_of(&t0) + (long long)(secs * 1e9), second = ns_of(&t0) + 1000000000ll;
    long long max = LLONG_MIN, samples = 0, future = 0;
    for (;;) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, "x", 1) != 1) {
            printf("skew=%s\n", errname(errno));
            return 1;
        }
        close(fd);
        struct stat st;
        if (stat(path, &st) < 0) {
            printf("skew=%s\n", errname(errno));
            return 1;
        }
        clock_gettime(CLOCK_REALTIME, &now);
        long long d = ns_of(&st.st_mtim) - ns_of(&now);
        samples++;
        if (d > 0) future++;
        if (d > max) max = d;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ns_of(&now) >= second) {
            if (max == LLONG_MIN)
                printf("skew_max_us=none\n"); /* a second without a sample: stalled */
            else
                printf("skew_max_us=%lld\n", max > 0 ? (max + 999) / 1000 : max / 1000);
            fflush(stdout);
            max = LLONG_MIN;
            second += 1000000000ll;
        }
        if (ns_of(&now) >= end) break;
        usleep(20000);
    }
    unlink(path);
    printf("samples=%lld\nfuture=%lld\n", samples, future);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) goto usage;
    if (!strcmp(argv[1], "sys")) return cmd_sys(argc - 2, argv + 2);
    if (!strcmp(argv[1], "status")) return cmd_status();
    if (!strcmp(argv[1], "open")) return cmd_open(argc - 2, argv + 2);
    if (!strcmp(argv[1], "mknod") && argc == 6) {
        mode_t type = !strcmp(argv[3], "b") ? S_IFBLK : S_IFCHR;
        dev_t dev = makedev((unsigned)atoi(argv[4]), (unsigned)atoi(argv[5]));
        int r = mknod(argv[2], type | 0600, dev);
        printf("mknod=%s\n", errname(r < 0 ? errno : 0));
        if (r == 0) unlink(argv[2]);
        return 0;
    }
    if (!strcmp(argv[1], "kill1") && argc == 3) {
        int r = kill(1, atoi(argv[2]));
        printf("kill1=%s\n", errname(r < 0 ? errno : 0));
        return 0;
    }
    if (!strcmp(argv[1], "nofile") && argc == 4) { /* prlimit another process's RLIMIT_NOFILE */
        struct rlimit rl = {(rlim_t)atol(argv[3]), (rlim_t)atol(argv[3])};
        int r = prlimit((pid_t)atoi(argv[2]), RLIMIT_NOFILE, &rl, NULL);
        printf("nofile=%s\n", errname(r < 0 ? errno : 0));
        return 0;
    }
    if (!strcmp(argv[1], "ptrace1")) {
        long r = ptrace(PTRACE_ATTACH, 1, NULL, NULL);
        printf("ptrace1=%s\n", errname(r < 0 ? errno : 0));
        if (r == 0) ptrace(PTRACE_DETACH, 1, NULL, NULL);
        return 0;
    }
    if (!strcmp(argv[1], "ids")) {
        uid_t r, e, s;
        gid_t gr, ge, gs;
        getresuid(&r, &e, &s);
        getresgid(&gr, &ge, &gs);
        printf("uid=%u/%u/%u\ngid=%u/%u/%u\n", r, e, s, gr, ge, gs);
        return 0;
    }
    if (!strcmp(argv[1], "realtime")) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        printf("%lld%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
        return 0;
    }
    if (!strcmp(argv[1], "settime") && argc == 3) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec +
                       (long long)(strtod(argv[2], NULL) * 1e9);
        ts.tv_sec = (time_t)(ns / 1000000000ll);
        ts.tv_nsec = (long)(ns % 1000000000ll);
        if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
            printf("settime=%s\n", errname(errno));
            return 1;
        }
        printf("settime=OK\n");
        return 0;
    }
    if (!strcmp(argv[1], "skew") && argc == 4) return cmd_skew(atof(argv[2]), argv[3]);
    if (!strcmp(argv[1], "serve") && argc == 5) return cmd_serve(argv[2], atoi(argv[3]), argv[4]);
    if (!strcmp(argv[1], "forkbomb") && argc == 3) return cmd_forkbomb(atoi(argv[2]));
    if (!strcmp(argv[1], "spin") && argc == 3) return cmd_spin(atof(argv[2]));
    if (!strcmp(argv[1], "hog") && argc == 3) return cmd_hog(atol(argv[2]));
    if (!strcmp(argv[1], "handle_open") && argc == 4) return cmd_handle_open(argv[2], argv[3]);
    if (!strcmp(argv[1], "uffd") && argc == 3) return cmd_uffd(argv[2]);
    if (!strcmp(argv[1], "cpuid")) return cmd_cpuid();
    if (!strcmp(argv[1], "lock") && argc == 3) return cmd_lock(argv[2]);
    if (!strcmp(argv[1], "remount_rw") && argc == 3) return cmd_remount_rw(argv[2]);
    if (!strcmp(argv[1], "xattr") && argc == 4) {
        char v[4096];
        ssize_t n = lgetxattr(argv[2], argv[3], v, sizeof(v) - 1);
        if (n < 0)
            printf("xattr=%s\n", errname(errno));
        else
            printf("xattr=%.*s\n", (int)n, v);
        return 0;
    }
usage:
    fprintf(stderr, "usage: probe sys NAME... | status | open PATH... | mknod PATH c|b MAJ MIN | "
                    "kill1 SIG | ptrace1 | ids | forkbomb SECS | spin SECS | hog MB | "
                    "remount_rw PATH | handle_open PATH DIR | xattr PATH NAME | uffd PATH | cpuid "
                    "| lock PATH | realtime | settime SECS | skew SECS FILE | "
                    "serve ADDR PORT TEXT\n");
    return 2;
}

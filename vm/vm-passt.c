/* vm/vm-passt.c: passt, the user-mode network back-end of the "open" network mode, confined by
 * a seccomp user-notification filter (vm-passt-filter.c).
 *
 * Measured with Debian 12's passt 0.0~git20230309.7c7625d in a network namespace, with a fake
 * guest speaking QEMU's stream protocol (4-byte length + Ethernet frame) on passt's socket:
 * - `--dns-forward 10.0.2.3` sends the guest's queries for 10.0.2.3 to the first resolver of
 *   the host's /etc/resolv.conf; adding `-D 10.0.2.3` makes 10.0.2.3 the upstream as well and
 *   the queries go nowhere, so -D is not passed (DHCP, which would announce it, is off).
 * - `--no-map-gw` only stops the gateway address (10.0.2.2) from being translated to the
 *   host's 127.0.0.1.  passt itself still connects wherever the guest's packets say: SYNs to
 *   127.0.0.1, 127.0.0.2, 0.0.0.0, the host's own addresses and 169.254.169.254 were all
 *   answered and accepted by listeners in the namespace, and no option of this version stops
 *   it (`--outbound-if4`'s SO_BINDTODEVICE does not stop local delivery).  Hence the filter:
 *   every destination passt names goes past vm_passt_vet first.
 * - passt makes itself non-dumpable (PR_SET_DUMPABLE 0) before serving, so reading its memory
 *   (process_vm_readv) needs CAP_SYS_PTRACE in the user namespace its memory belongs to (the
 *   one current at exec).  An ordinary user has that only in a namespace of its own: the child
 *   enters a new user namespace mapping just our uid and gid to themselves before exec, which
 *   changes nothing else for passt (it still sees our uid and creates its own namespaces).
 * - passt gets its end of the socket pair with QEMU as --fd: there is no socket on the
 *   filesystem (as root, passt drops to nobody and then could not reach a socket in our 0700
 *   run directory; it exited with status 0).
 * - Without a terminal passt logs to stderr and tries syslog (each line also prints "Failed to
 *   send ... to syslog" when there is none); -q keeps it to warnings and errors. */
#include "vm-internal.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define PASST_READY_MS 5000
#define STR_(x) #x
#define STR(x) STR_(x)
#define PASST_EARLY_CHECKS 10 /* x 10 ms */
#define PASST_FD 3            /* passt's end of the socket pair with QEMU, in the child */

struct vm_passt {
    pid_t pid;
    int pidfd; /* signals reach this passt even after the caller reaped it */
    struct vm_passt_filter *filter;
};

/* Everything the child needs, prepared before fork: it only makes async-signal-safe calls. */
struct child {
    pid_t parent;
    char **argv;
    int log_fd;
    int sock_fd; /* becomes PASST_FD */
    struct sock_fprog prog;
    int info_w; /* the listener's fd number goes here */
    int go_r;   /* EOF or a byte: exec (a byte) or give up (EOF) */
    bool userns;
    uid_t run_as; /* as root: the uid (and gid) passt runs as */
    char uid_map[32], gid_map[32];
    size_t uid_len, gid_len;
};

static bool write_file(const char *path, const char *s, size_t len) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = write(fd, s, len) == (ssize_t)len;
    close(fd);
    return ok;
}

/* A user namespace of our own, so that its owner (us) may read passt's memory. */
static bool enter_userns(const struct child *c) {
    return unshare(CLONE_NEWUSER) == 0 && write_file("/proc/self/setgroups", "deny", 4) &&
           write_file("/proc/self/uid_map", c->uid_map, c->uid_len) &&
           write_file("/proc/self/gid_map", c->gid_map, c->gid_len);
}

/* Install the filter and hand its listener to the parent (which takes it with pidfd_getfd:
 * sending it over a socket would itself be a trapped sendmsg nobody answers yet). */
static bool install_filter(const struct child *c) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return false;
    int lfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                           &c->prog);
    if (lfd < 0 || write(c->info_w, &lfd, sizeof(lfd)) != sizeof(lfd)) return false;
    char go;
    return read(c->go_r, &go, 1) == 1;
}

static void __attribute__((noreturn)) passt_child(const struct child *c) {
    static char *const env[] = {NULL};
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != c->parent) _exit(127);
    if (setpgid(0, 0) < 0) _exit(127);
    if (c->userns && !enter_userns(c)) _exit(126);
    /* As root: passt would switch to nobody itself but keep a full bounding set; do it here,
     * with every capability gone (the uid change clears the parent-death signal: set again). */
    if (!c->userns && (vm_child_drop_privileges(c->run_as) < 0 ||
                       prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != c->parent))
        _exit(126);
    if (!install_filter(c)) _exit(126);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) _exit(127);
    int l = fcntl(c->log_fd >= 0 ? c->log_fd : devnull, F_DUPFD_CLOEXEC, 10);
    int k = fcntl(c->sock_fd, F_DUPFD_CLOEXEC, 10);
    if (l < 0 || k < 0 || dup2(devnull, 0) < 0 || dup2(l, 1) < 0 || dup2(l, 2) < 0 ||
        dup2(k, PASST_FD) < 0)
        _exit(127);
    vm_child_close_fds(PASST_FD + 1, -1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
    /* An absolute path: with an empty environment there is no PATH to search. */
    execve(c->argv[0], c->argv, env);
    _exit(127);
}

static char **passt_argv(const char *passt) {
    char *const args[] = {(char *)passt, "--foreground", "--one-off", "--quiet", "--fd",
                          STR(PASST_FD), "--ipv4-only", "--address", VM_GUEST_ADDR, "--netmask",
                          STR(VM_GUEST_PREFIX), "--gateway", VM_GUEST_GATEWAY,
                          /* passt's own MAC: fixed, rather than the host interface's */
                          "--mac-addr", "9a:55:9a:55:9a:55", "--dns-forward", VM_GUEST_DNS,
                          "--no-map-gw", "--tcp-ports", "none", "--udp-ports", "none", "--no-dhcp",
                          "--no-ndp", "--no-dhcpv6", "--no-ra", NULL};
    char **v = NULL;
    for (size_t i = 0; args[i]; i++)
        v = dbx_strv_push(v, args[i]);
    return v;
}

static const char *find_passt(void) {
    static const char *const candidates[] = {"/usr/bin/passt", "/usr/local/bin/passt",
                                             "/bin/passt"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(candidates); i++)
        if (access(candidates[i], X_OK) == 0) return candidates[i];
    return NULL;
}

static int exit_error(int status, dbx_error **err) {
    if (WIFSIGNALED(status))
        return dbx_error_set(err, 0, "passt: killed by signal %d while starting", WTERMSIG(status));
    if (WEXITSTATUS(status) == 126)
        return dbx_error_set(err, 0, "passt: could not install its destination filter");
    return dbx_error_set(err, 0, "passt exited with status %d while starting (see its log)",
                         WEXITSTATUS(status));
}

/* passt serves a socket it was given, so there is no "listening" moment to wait for: catch
 * the failures that happen at once (options, sandbox set-up), and leave later ones to the
 * caller's SIGCHLD.  Frames QEMU sends meanwhile wait in the socket buffer. */
static int wait_started(pid_t pid, dbx_error **err) {
    for (int i = 0; i < PASST_EARLY_CHECKS; i++) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) return exit_error(status, err);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Take the child's listener fd (its number arrives on info_r) into our fd table.  -ECHILD
 * when the child sent none (it failed or died). */
static int take_listener(struct vm_passt *p, int info_r, dbx_error **err) {
    struct pollfd pfd = {.fd = info_r, .events = POLLIN};
    int lfd = -1;
    if (poll(&pfd, 1, PASST_READY_MS) <= 0 || read(info_r, &lfd, sizeof(lfd)) != sizeof(lfd) ||
        lfd < 0)
        return -ECHILD;
    p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    if (p->pidfd < 0) return dbx_error_set(err, errno, "pidfd_open");
    int fd = (int)syscall(SYS_pidfd_getfd, p->pidfd, lfd, 0);
    if (fd < 0) return dbx_error_set(err, errno, "pidfd_getfd (seccomp listener)");
    return fd;
}

static void prepare_child(struct child *c, char **argv, int sock_fd, int log_fd) {
    c->parent = getpid();
    c->argv = argv;
    c->sock_fd = sock_fd;
    c->log_fd = log_fd;
    c->userns = geteuid() != 0;
    c->run_as = c->userns ? 0 : vm_nobody_uid();
    c->uid_len = (size_t)snprintf(c->uid_map, sizeof(c->uid_map), "%u %u 1\n", (unsigned)geteuid(),
                                  (unsigned)geteuid());
    c->gid_len = (size_t)snprintf(c->gid_map, sizeof(c->gid_map), "%u %u 1\n", (unsigned)getegid(),
                                  (unsigned)getegid());
}

/* fork, hand the filter's listener to f's thread, let the child exec passt. */
static int launch(struct vm_passt *p, struct child *c, dbx_error **err) {
    _cleanup_close_ int info_r = -1, info_w = -1, go_r = -1, go_w = -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    info_r = fds[0], info_w = fds[1];
    if (pipe2(fds, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    go_r = fds[0], go_w = fds[1];
    c->info_w = info_w;
    c->go_r = go_r;
    p->pid = fork();
    if (p->pid < 0) return dbx_error_set(err, errno, "passt: fork");
    if (p->pid == 0) passt_child(c);
    close(TAKE_FD(info_w));
    close(TAKE_FD(go_r));
    int fd = take_listener(p, info_r, err);
    int r = fd < 0 ? fd : vm_passt_filter_run(p->filter, fd, err); /* takes fd */
    if (r == 0 && write(go_w, "g", 1) != 1) r = dbx_error_set(err, errno, "passt: start");
    if (r < 0) {
        int status = 0;
        kill(p->pid, SIGKILL);
        while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (r == -ECHILD)
            r = WIFEXITED(status) ? exit_error(status, err)
                                  : dbx_error_set(err, 0, "passt: child died");
    }
    return r;
}

int vm_passt_start(int sock_fd, int log_fd, struct vm_passt **ret, dbx_error **err) {
    struct stat st;
    if (sock_fd < 0 || fstat(sock_fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return dbx_error_set(err, EBADF, "passt: no socket to serve");
    const char *passt = find_passt();
    if (!passt) return dbx_error_set(err, ENOENT, "passt (Debian package 'passt')");
    _cleanup_strv_ char **argv = passt_argv(passt);
    _cleanup_free_ struct sock_filter *insns = NULL;
    size_t n = 0;
    int r = vm_passt_filter_bpf(&insns, &n, err);
    if (r < 0) return r;
    struct vm_passt *p = dbx_xcalloc(1, sizeof(*p));
    p->pid = -1;
    p->pidfd = -1;
    r = vm_passt_filter_new("/etc/resolv.conf", log_fd, &p->filter, err);
    struct child c = {.prog = {.len = (unsigned short)n, .filter = insns}};
    prepare_child(&c, argv, sock_fd, log_fd);
    if (r == 0) r = launch(p, &c, err);
    if (r == 0) r = wait_started(p->pid, err);
    if (r < 0) {
        p->pid = -1; /* reaped */
        vm_passt_free(p);
        return r;
    }
    *ret = p;
    return 0;
}

pid_t vm_passt_pid(const struct vm_passt *p) {
    return p->pid;
}

uint64_t vm_passt_refused(const struct vm_passt *p) {
    return p->filter ? vm_passt_filter_refused(p->filter) : 0;
}

void vm_passt_free(struct vm_passt *p) {
    if (!p) return;
    /* passt first: a call of its that waits for the thread then ends with it */
    if (p->pidfd >= 0) {
        syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
        close(p->pidfd);
    }
    vm_passt_filter_free(p->filter);
    free(p);
}

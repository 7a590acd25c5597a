/* vm/vm-passt.c: passt, the user-mode network back-end of the "open" network mode.
 *
 * Measured with Debian 12's passt 0.0~git20230309.7c7625d in a network namespace, with a fake
 * guest speaking QEMU's stream protocol (4-byte length + Ethernet frame) on passt's socket:
 * - `--dns-forward 10.0.2.3` sends the guest's queries for 10.0.2.3 to the first resolver of
 *   the host's /etc/resolv.conf; adding `-D 10.0.2.3` makes 10.0.2.3 the upstream as well and
 *   the queries go nowhere, so -D is not passed (DHCP, which would announce it, is off).
 * - `--no-map-gw` only stops the gateway address (10.0.2.2) from being translated to the
 *   host's 127.0.0.1.  passt still connects wherever the guest's packets say: SYNs to
 *   127.0.0.1, 127.0.0.2, 0.0.0.0, the host's own addresses and 169.254.169.254 were all
 *   answered and accepted by listeners in the namespace.  Neither this version nor
 *   `--outbound-if4` (SO_BINDTODEVICE does not stop local delivery) can prevent it, so the
 *   loopback, link-local and host-address restriction of the "open" mode is NOT enforced here:
 *   passt must be confined from outside (e.g. run inside its own network namespace whose only
 *   way out is a translator that drops those destinations).
 * - As root passt drops to nobody ("Don't run as root") before binding its socket: the socket
 *   directory must then be writable by nobody.  A failed bind is only logged and passt exits
 *   with status 0, hence the wait for the socket below.
 * - Without a terminal passt logs to stderr and tries syslog (each line also prints "Failed to
 *   send ... to syslog" when there is none); -q keeps it to warnings and errors. */
#include "vm-internal.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define PASST_READY_MS 5000
#define STR_(x) #x
#define STR(x) STR_(x)

/* Child: only async-signal-safe calls; argv was built before fork. */
static void __attribute__((noreturn)) passt_child(pid_t parent, char **argv, int log_fd) {
    static char *const env[] = {NULL};
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) _exit(127);
    if (setpgid(0, 0) < 0) _exit(127);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) _exit(127);
    int l = fcntl(log_fd >= 0 ? log_fd : devnull, F_DUPFD_CLOEXEC, 10);
    if (l < 0 || dup2(devnull, 0) < 0 || dup2(l, 1) < 0 || dup2(l, 2) < 0) _exit(127);
    vm_child_close_fds(3, -1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
    /* An absolute path: with an empty environment there is no PATH to search. */
    execve(argv[0], argv, env);
    _exit(127);
}

static char **passt_argv(const char *passt, const char *socket_path) {
    char *const args[] = {(char *)passt, "--foreground", "--one-off", "--quiet", "--socket",
                          (char *)socket_path, "--ipv4-only", "--address", VM_GUEST_ADDR,
                          "--netmask", STR(VM_GUEST_PREFIX), "--gateway", VM_GUEST_GATEWAY,
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

/* Wait until passt's socket exists, or passt is gone. */
static int wait_ready(pid_t pid, const char *socket_path, dbx_error **err) {
    uint64_t deadline = dbx_now_ms() + PASST_READY_MS;
    for (;;) {
        struct stat st;
        if (lstat(socket_path, &st) == 0 && S_ISSOCK(st.st_mode)) return 0;
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            if (WIFSIGNALED(status))
                return dbx_error_set(err, 0, "passt: killed by signal %d before listening",
                                     WTERMSIG(status));
            return dbx_error_set(err, 0,
                                 "passt exited with status %d before listening on '%s' (see "
                                 "its log)",
                                 WEXITSTATUS(status), socket_path);
        }
        if (dbx_now_ms() > deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
            return dbx_error_set(err, 0, "passt: no socket at '%s' after %u ms", socket_path,
                                 PASST_READY_MS);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

pid_t vm_passt_spawn(const char *socket_path, int log_fd, dbx_error **err) {
    if (!socket_path || socket_path[0] != '/' || strlen(socket_path) >= 108)
        return dbx_error_set(err, 0, "passt: socket path must be absolute and under 108 bytes");
    struct stat st;
    if (lstat(socket_path, &st) == 0) return dbx_error_set(err, EEXIST, "passt: '%s'", socket_path);
    const char *passt = find_passt();
    if (!passt) return dbx_error_set(err, ENOENT, "passt (Debian package 'passt')");
    _cleanup_strv_ char **argv = passt_argv(passt, socket_path);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return dbx_error_set(err, errno, "passt: fork");
    if (pid == 0) passt_child(parent, argv, log_fd);
    int r = wait_ready(pid, socket_path, err);
    return r < 0 ? r : pid;
}

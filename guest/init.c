/* guest/init.c: devbox-init, PID 1 of every devbox VM.
 *
 * A boot script of named phases that never exits:
 *   api filesystems  /proc, /sys, /dev (devtmpfs); fds 0-2 on /dev/console
 *   modules          finit_module() each file named in /modules.order, in order
 *   root             wait for /dev/vda, mount it (ext4) and switch root to it; devpts,
 *                    /dev/shm, /run, cgroup2
 *   process          SIGPIPE ignored, SIGCHLD through a signalfd
 *   agent            open the virtio-serial port named "org.devbox.agent", send HELLO
 *   setup, serve     the protocol of common/protocol.h (init-serve.c): SETUP (workspace,
 *                    hostname, the network of init-net.c, the policy plan of init-policy.c,
 *                    all verified) -> READY, then exec and socket sessions (init-sock.c)
 *                    until SHUTDOWN, which powers the VM off
 * A failing phase logs "devbox-init: PHASE: message" on the console, sends ERROR (code 125) on
 * session 0 when the agent port is already open, syncs and powers off.
 *
 * Test mode (not used in a VM):  devbox-init --serve-fd FD
 *   Refused when running as PID 1.  Skips every boot phase except "process" and serves the
 *   protocol on FD (e.g. one end of a socketpair): HELLO is sent at once, SETUP with an empty
 *   ws_tag skips the workspace mount (a non-empty tag tries the mount without creating the
 *   directory, to exercise the error path), the hostname is not changed, and commands run as
 *   the requested user (switching ids needs root; asking for the current user works without).
 *   The process becomes a child subreaper so orphans are reaped as PID 1 would.  A plan other
 *   than the permissive one needs root: its bind mounts go to a private mount namespace, device
 *   nodes and /etc/passwd are left alone, and the box cgroup is made under $DEVBOX_TEST_CGROUP
 *   (an existing cgroup2 directory whose parent delegates cpu, memory and pids; unset: commands
 *   run without a box cgroup).  DEVBOX_TEST_VERIFY_SKEW=1 makes the check before exec fail.
 *   Network: lo is brought up only if it is down and the proxy listener binds 127.0.0.1 of
 *   the current network namespace (tests run in one of their own); eth0 is configured only
 *   with DEVBOX_TEST_NET=1, and resolv.conf and apt's proxy file go under $DEVBOX_TEST_ETC
 *   (unset: nowhere).
 *   SHUTDOWN terminates the sessions (SIGTERM, 2 s, SIGKILL) and exits 0; EOF on FD kills every
 *   session's process group and exits 0; a fatal error exits 125. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <limits.h>
#include <sys/reboot.h>

static struct agent g_agent = {
    .fd = -1,
    .sigfd = -1,
    .proxy_fd = -1,
    .audit_fd = -1,
    .box = {.cg_box_fd = -1, .mnt_ns = -1, .mnt_next = -1},
    .spare = {.dir_fd = -1, .procs_fd = -1, .proc = {.sock = -1, .mnt_fd = -1}}};

void init_log(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    char line[1100];
    n = snprintf(line, sizeof(line), "devbox-init: %s\n", msg);
    if (n < 0) return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (write(2, line, len) >= 0 || g_agent.test_mode) return;
    /* No console on fd 2 (early boot without /dev/console): the kernel log is all there is. */
    int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return;
    (void)!write(fd, line, len);
    close(fd);
}

/* A kernel without ACPI (the devbox kernel) cannot power off: RB_POWER_OFF would halt the vCPU
 * for good and leave QEMU running.  A reset ends QEMU as well (it runs with -no-reboot). */
static int poweroff_cmd(void) {
    return access("/sys/firmware/acpi", F_OK) == 0 ? RB_POWER_OFF : RB_AUTOBOOT;
}

_Noreturn void init_poweroff(struct agent *a, int code) {
    if (a->test_mode) exit(code);
    sync();
    reboot(poweroff_cmd());
    /* PID 1 must never exit (the kernel would panic); nothing else is left to do. */
    init_log("reboot: %s", strerror(errno));
    for (;;)
        pause();
}

_Noreturn void init_fatal(struct agent *a, const char *phase, const char *msg) {
    init_log("%s: %s", phase, msg);
    if (a->fd >= 0) {
        _cleanup_free_ char *full = dbx_xasprintf("%s: %s", phase, msg);
        agent_send_error(a, 0, DBX_ERR_FAILED, full);
        /* Give the host up to 2 s to take the reason before the VM disappears. */
        uint64_t end = dbx_now_ms() + 2000;
        while (dbx_buf_avail(&a->out) > 0 && agent_flush(a) == 0 && dbx_buf_avail(&a->out) > 0) {
            uint64_t now = dbx_now_ms();
            if (now >= end) break;
            struct pollfd pf = {.fd = a->fd, .events = POLLOUT};
            if (poll(&pf, 1, 10) < 0 && errno != EINTR) break;
        }
    }
    init_poweroff(a, DBX_ERR_FAILED);
}

/* Out of memory: no allocation, no formatting; leave a trace and stop the VM. */
static void init_oom(void) {
    static const char m[] = "devbox-init: out of memory\n";
    (void)!write(2, m, sizeof(m) - 1);
    if (g_agent.test_mode) _exit(DBX_ERR_FAILED);
    sync();
    reboot(poweroff_cmd());
    for (;;)
        pause();
}

void boot_mark(struct boot_marks *m, const char *name) {
    if (m->n >= BOOT_MARKS_MAX) return;
    m->name[m->n] = name;
    m->ns[m->n++] = dbx_now_ns();
}

/* "boot: ready at 812.3 ms: kernel 610.2, api filesystems 3.1, ...": each step's duration from
 * the one before (the first, from the kernel's start). */
void boot_marks_log(const struct boot_marks *m) {
    if (!m->n) return;
    char line[900]; /* init_log formats into 1024 */
    size_t off = 0;
    uint64_t prev = 0;
    for (unsigned i = 0; i < m->n && off < sizeof(line); i++) {
        int k = snprintf(line + off, sizeof(line) - off, "%s%s %.1f", i ? ", " : "", m->name[i],
                         (double)(m->ns[i] - prev) / 1e6);
        if (k < 0) return;
        off += (size_t)k;
        prev = m->ns[i];
    }
    init_log("boot: ready at %.1f ms: %s ms", (double)m->ns[m->n - 1] / 1e6, line);
}

struct phase {
    const char *name;
    int (*run)(struct agent *a, dbx_error **err);
};

static void run_phases(struct agent *a, const struct phase *ph, size_t n) {
    for (size_t i = 0; i < n; i++) {
        _cleanup_error_ dbx_error *err = NULL;
        if (ph[i].run(a, &err) < 0) init_fatal(a, ph[i].name, err ? err->msg : "failed");
        boot_mark(&a->marks, ph[i].name);
    }
}

static _Noreturn void serve_or_die(struct agent *a) {
    _cleanup_error_ dbx_error *err = NULL;
    serve(a, &err);
    init_fatal(a, "serve", err ? err->msg : "failed");
}

static int test_main(struct agent *a, const char *fdstr) {
    uint64_t fd;
    if (dbx_parse_u64(fdstr, 0, INT_MAX, &fd) < 0 || fcntl((int)fd, F_GETFD) < 0) {
        fprintf(stderr, "devbox-init: --serve-fd: '%s' is not an open file descriptor\n", fdstr);
        return DBX_ERR_FAILED;
    }
    a->test_mode = true;
    a->fd = (int)fd;
    if (dbx_set_nonblock(a->fd, true) < 0 || dbx_set_cloexec(a->fd, true) < 0) {
        fprintf(stderr, "devbox-init: --serve-fd: %s\n", strerror(errno));
        return DBX_ERR_FAILED;
    }
    boot_stdio();
    static const struct phase phases[] = {{"process", boot_process}};
    run_phases(a, phases, DBX_ARRAY_SIZE(phases));
    boot_send_hello(a);
    serve_or_die(a);
}

int main(int argc, char **argv) {
    if (argc > 0 && strcmp(argv[0], SPARE_ARGV0) == 0) return exec_spare_main(argc, argv);
    dbx_oom_hook = init_oom;
    struct agent *a = &g_agent;
    a->rd.takes_exec = true; /* the host's EXEC may carry a command line of up to 6 MiB */
    if (getpid() != 1) {
        if (argc == 3 && strcmp(argv[1], "--serve-fd") == 0) return test_main(a, argv[2]);
        fprintf(stderr, "devbox-init: runs as PID 1 in a devbox VM (tests: --serve-fd FD)\n");
        return DBX_ERR_FAILED;
    }
    boot_mark(&a->marks, "kernel");
    static const struct phase phases[] = {
        {"api filesystems", boot_api_fs}, {"modules", boot_modules}, {"root", boot_root},
        {"process", boot_process},        {"agent", boot_agent},
    };
    run_phases(a, phases, DBX_ARRAY_SIZE(phases));
    serve_or_die(a);
}

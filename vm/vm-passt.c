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
 *   send ... to syslog" when there is none); -q keeps it to warnings and errors.
 * - Its 19.4 MiB PSS (2026-12-03, this command line) is there from the start, before any
 *   traffic: static buffers its TCP (8.7 MiB), UDP (2 MiB) and ICMP (2 MiB) handlers write at
 *   initialisation, and 4.5 MiB more; `--mtu` changes nothing.  Only --no-tcp/--no-udp/--no-icmp
 *   drop theirs, and each takes a function away (UDP carries DNS; ICMP is the guest's ping
 *   where ping_group_range allows passt ping sockets), so none is passed.  Instead the supervisor
 *   starts passt only on the guest's first frame (sandbox/supervisor-vm.c). */
#include "vm-internal.h"

#include "../common/spawn.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define PASST_READY_MS 5000
#define STR_(x) #x
#define STR(x) STR_(x)
#define PASST_FD 3 /* passt's end of the socket pair with QEMU, in the child */

struct vm_passt {
    pid_t pid;
    int pidfd; /* signals reach this passt even after the caller reaped it */
    struct vm_passt_filter *filter;
};

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

/* The child's set-up: a user namespace of our own (rootless: its owner, us, may then read
 * passt's memory) or, as root, every capability gone and nobody's uid (passt would switch to
 * nobody itself but keep a full bounding set); then the filter, whose listener the parent takes
 * (with pidfd_getfd: sending it over a socket would itself be a trapped sendmsg nobody answers
 * yet) before letting the child exec. */
struct passt_spawn {
    struct dbx_spawn s;
    struct dbx_spawn_fd fds[4];
    char uid_map[32], gid_map[32];
};

static void prepare_spawn(struct passt_spawn *ps, char **argv, int sock_fd, int log_fd,
                          const struct sock_fprog *prog) {
    static char *const env[] = {NULL};
    int log = log_fd >= 0 ? log_fd : DBX_SPAWN_DEVNULL;
    ps->fds[0] = (struct dbx_spawn_fd){0, DBX_SPAWN_DEVNULL};
    ps->fds[1] = (struct dbx_spawn_fd){1, log};
    ps->fds[2] = (struct dbx_spawn_fd){2, log};
    ps->fds[3] = (struct dbx_spawn_fd){PASST_FD, sock_fd};
    snprintf(ps->uid_map, sizeof(ps->uid_map), "%u %u 1\n", (unsigned)geteuid(),
             (unsigned)geteuid());
    snprintf(ps->gid_map, sizeof(ps->gid_map), "%u %u 1\n", (unsigned)getegid(),
             (unsigned)getegid());
    bool userns = geteuid() != 0;
    uid_t nobody = userns ? 0 : vm_nobody_uid();
    ps->s = (struct dbx_spawn){
        .name = "passt",
        .argv = argv, /* an absolute path: with an empty environment there is no PATH */
        .envp = env,
        .new_pgrp = true,
        .pdeathsig = SIGKILL,
        .unshare_flags = userns ? CLONE_NEWUSER : 0,
        .uid_map = userns ? ps->uid_map : NULL,
        .gid_map = userns ? ps->gid_map : NULL,
        .drop_caps = !userns,
        .set_ids = !userns,
        .uid = nobody,
        .gid = nobody,
        .fds = ps->fds,
        .nfds = DBX_ARRAY_SIZE(ps->fds),
        .seccomp = prog,
        .seccomp_flags = SECCOMP_FILTER_FLAG_NEW_LISTENER,
        .seccomp_listener_sock = -1, /* passt's filter traps socket calls: pidfd_getfd */
        .seccomp_listener_w = -1,
        .seccomp_go_r = -1,
        .seccomp_go_w = -1,
    };
}

/* Start the child, hand the filter's listener to f's thread, let the child exec passt. */
static int launch(struct vm_passt *p, struct dbx_spawn *s, dbx_error **err) {
    _cleanup_close_ int info_r = -1, info_w = -1, go_r = -1, go_w = -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    info_r = fds[0], info_w = fds[1];
    if (pipe2(fds, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    go_r = fds[0], go_w = fds[1];
    s->seccomp_listener_w = info_w;
    s->seccomp_go_r = go_r;
    s->seccomp_go_w = go_w;
    struct dbx_spawn_child child;
    int r = dbx_spawn_start(s, &child, err);
    if (r < 0) return r;
    p->pid = child.pid;
    close(TAKE_FD(info_w));
    close(TAKE_FD(go_r));
    int fd = take_listener(p, info_r, err);
    if (fd == -ECHILD) {
        /* no listener: the child reported the step that failed (or was killed) */
        r = dbx_spawn_finish(&child, err);
        if (r == 0) {
            kill(p->pid, SIGKILL);
            (void)dbx_spawn_wait(p->pid);
            r = dbx_error_set(err, 0, "passt: child died");
        }
        return r;
    }
    r = fd < 0 ? fd : vm_passt_filter_run(p->filter, fd, err); /* takes fd */
    if (r == 0 && write(go_w, "g", 1) != 1) r = dbx_error_set(err, errno, "passt: start");
    if (r < 0) {
        dbx_spawn_abort(&child);
        return r;
    }
    return dbx_spawn_finish(&child, err); /* exec failures; reaps the child then */
}

int vm_passt_check(dbx_error **err) {
    return find_passt() ? 0 : dbx_error_set(err, ENOENT, "passt (Debian package 'passt')");
}

int vm_passt_start(int sock_fd, int log_fd, struct vm_passt **ret, dbx_error **err) {
    struct stat st;
    if (sock_fd < 0 || fstat(sock_fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return dbx_error_set(err, EBADF, "passt: no socket to serve");
    const char *passt = find_passt();
    if (!passt) return vm_passt_check(err);
    _cleanup_strv_ char **argv = passt_argv(passt);
    _cleanup_free_ struct sock_filter *insns = NULL;
    size_t n = 0;
    int r = vm_passt_filter_bpf(&insns, &n, err);
    if (r < 0) return r;
    struct vm_passt *p = dbx_xcalloc(1, sizeof(*p));
    p->pid = -1;
    p->pidfd = -1;
    r = vm_passt_filter_new("/etc/resolv.conf", log_fd, &p->filter, err);
    struct sock_fprog prog = {.len = (unsigned short)n, .filter = insns};
    struct passt_spawn ps;
    prepare_spawn(&ps, argv, sock_fd, log_fd, &prog);
    if (r == 0) r = launch(p, &ps.s, err);
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

/* vm/vm-passt-filter.c: the seccomp user-notification filter around passt and the thread that
 * answers it.
 *
 * passt names a destination with connect, sendto, sendmsg and sendmmsg only (strace of a run
 * with TCP, UDP and DNS traffic: no io_uring, no clone after start, bind only for its unix
 * socket).  The filter, installed in the child before exec (so passt's own seccomp filter
 * stacks on top of it), sends those calls to us; everything that could carry a destination
 * past us is denied outright in BPF:
 * - io_uring (IORING_OP_CONNECT/SENDMSG do not pass through seccomp): ENOSYS;
 * - threads and vfork (clone with CLONE_VM, clone3, vfork): EPERM/ENOSYS.  We let the kernel
 *   re-read the sockaddr after our check (SECCOMP_USER_NOTIF_FLAG_CONTINUE), which is only
 *   sound while nothing else can write that memory: with one thread blocked in the call and
 *   no memory shared with another task, nothing can;
 * - source routing, where the first hop is the real destination: setsockopt IP_OPTIONS,
 *   IPV6_RTHDR and IPV6_2292RTHDR (EPERM); the same in sendmsg control data is refused by
 *   the thread.
 * sendto with a NULL address (a connected socket) is allowed in BPF: no round trip. */
#include "vm-internal.h"

#include <inttypes.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#define LOG_PER_SECOND 5   /* refusal lines; the rest are counted and summarized */
#define MAX_MMSG 1024u     /* sendmmsg handles at most UIO_MAXIOV messages per call */
#define MAX_CONTROL 65536u /* sendmsg control data we parse; more is refused */
#define MAX_BPF_INSNS 4096u

/* Linux 6.6: wake our thread synchronously, on the notifying task's CPU.  A notified sendmsg
 * (passt's frames to QEMU go through one too: msg_name is not visible to BPF) took ~60 us
 * without it and ~11 us with it on a 2-core test machine (a plain one: 2 us).  Older
 * kernels (Debian 12's 6.1) refuse the ioctl and keep the ordinary wake-up. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

/* ---- the BPF program -------------------------------------------------------------------- */

static void seccomp_releasep(scmp_filter_ctx *c) {
    if (*c) seccomp_release(*c);
}

#define LOW32(i, v) SCMP_CMP64(i, SCMP_CMP_MASKED_EQ, 0xffffffffu, v)

static int add_rules(scmp_filter_ctx ctx) {
    const uint32_t notify = SCMP_ACT_NOTIFY;
    int r = 0;
    r = r ?: seccomp_rule_add(ctx, notify, SCMP_SYS(connect), 0);
    r = r ?: seccomp_rule_add(ctx, notify, SCMP_SYS(sendmsg), 0);
    r = r ?: seccomp_rule_add(ctx, notify, SCMP_SYS(sendmmsg), 0);
    r = r ?: seccomp_rule_add(ctx, notify, SCMP_SYS(sendto), 1, SCMP_A4(SCMP_CMP_NE, 0));
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_setup), 0);
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_enter), 0);
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_register), 0);
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(vfork), 0);
    r = r
            ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_VM, CLONE_VM));
    /* level and optname are ints: only their low 32 bits count */
    r = r
            ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setsockopt), 2,
                                LOW32(1, IPPROTO_IP), LOW32(2, IP_OPTIONS));
    r = r
            ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setsockopt), 2,
                                LOW32(1, IPPROTO_IPV6), LOW32(2, IPV6_RTHDR));
    r = r
            ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setsockopt), 2,
                                LOW32(1, IPPROTO_IPV6), LOW32(2, IPV6_2292RTHDR));
    return r;
}

int vm_passt_filter_bpf(struct sock_filter **ret, size_t *ret_n, dbx_error **err) {
    _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return dbx_error_setx(err, ENOMEM, "passt filter: seccomp_init failed");
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    r = r ?: add_rules(ctx);
    if (r < 0) return dbx_error_set(err, -r, "passt filter: seccomp rules");
    /* libseccomp 2.5 exports only to an fd */
    _cleanup_close_ int fd = memfd_create("devbox-passt-filter", MFD_CLOEXEC);
    if (fd < 0) return dbx_error_set(err, errno, "memfd_create");
    r = seccomp_export_bpf(ctx, fd);
    if (r < 0) return dbx_error_set(err, -r, "passt filter: export");
    if (lseek(fd, 0, SEEK_SET) < 0) return dbx_error_set(err, errno, "passt filter: rewind");
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    r = dbx_read_all(fd, MAX_BPF_INSNS * sizeof(struct sock_filter), &buf, &len, err);
    if (r < 0) return dbx_error_wrap(err, "passt filter");
    if (len == 0 || len % sizeof(struct sock_filter) != 0)
        return dbx_error_setx(err, EIO, "passt filter: exported %zu bytes", len);
    *ret = (struct sock_filter *)TAKE_PTR(buf);
    *ret_n = len / sizeof(struct sock_filter);
    return 0;
}

/* ---- the thread ------------------------------------------------------------------------- */

struct vm_passt_filter {
    int notify_fd;
    int stop_fd[2]; /* a byte on [1] ends the thread */
    int log_fd;
    pthread_t thread;
    bool started;
    struct seccomp_notif_sizes sizes;
    struct vm_passt_rules rules; /* only the thread touches these after start */
    uint64_t refused;            /* __atomic */
    uint64_t log_window;         /* second of the last logged refusal */
    unsigned logged;             /* lines in that second */
    uint64_t unlogged;
};

/* Read exactly len bytes at addr in the task that made the call.  0 or -errno. */
static int peek(pid_t pid, uint64_t addr, void *buf, size_t len) {
    if (len == 0) return 0;
    struct iovec local = {buf, len}, remote = {(void *)(uintptr_t)addr, len};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n < 0) return -errno;
    return (size_t)n == len ? 0 : -EFAULT;
}

struct call {
    struct vm_passt_filter *f;
    const struct seccomp_notif *req;
    char where[VM_PASST_WHERE_MAX];
    const char *why; /* set when refused */
};

/* 0: allowed; -errno: the call fails with that error (c->why says why, for the log). */
static int vet_addr(struct call *c, uint64_t ptr, uint64_t len, bool is_connect) {
    uint8_t sa[sizeof(struct sockaddr_storage)];
    /* move_addr_to_kernel: more than a sockaddr_storage is EINVAL */
    if (len > sizeof(sa)) return -EINVAL;
    int r = peek(c->req->pid, ptr, sa, len);
    if (r < 0) {
        c->why = "unreadable address";
        return r;
    }
    c->why = vm_passt_vet(&c->f->rules, sa, len, is_connect, c->where);
    return c->why ? -EACCES : 0;
}

/* Control messages that set IP options or an IPv6 routing header name a first hop. */
static int vet_control(struct call *c, const struct msghdr *m) {
    if (!m->msg_control || m->msg_controllen == 0) return 0;
    if (m->msg_controllen > MAX_CONTROL) {
        c->why = "oversized control data";
        return -EACCES;
    }
    _cleanup_free_ uint8_t *buf = dbx_xmalloc(m->msg_controllen);
    int r = peek(c->req->pid, (uintptr_t)m->msg_control, buf, m->msg_controllen);
    if (r < 0) {
        c->why = "unreadable control data";
        return r;
    }
    struct msghdr local = {.msg_control = buf, .msg_controllen = m->msg_controllen};
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&local); h; h = CMSG_NXTHDR(&local, h)) {
        if ((h->cmsg_level == IPPROTO_IP && h->cmsg_type == IP_RETOPTS) ||
            (h->cmsg_level == IPPROTO_IPV6 &&
             (h->cmsg_type == IPV6_RTHDR || h->cmsg_type == IPV6_2292RTHDR))) {
            c->why = "source route";
            return -EACCES;
        }
    }
    return 0;
}

static int vet_msghdr(struct call *c, const struct msghdr *m) {
    int r = vet_control(c, m);
    if (r < 0) return r;
    /* __copy_msghdr: no name or an empty one means the connected peer; a longer one is cut
     * to a sockaddr_storage; a negative length is EINVAL */
    if (!m->msg_name || m->msg_namelen == 0) return 0;
    if ((int)m->msg_namelen < 0) return -EINVAL;
    size_t len = m->msg_namelen;
    if (len > sizeof(struct sockaddr_storage)) len = sizeof(struct sockaddr_storage);
    return vet_addr(c, (uintptr_t)m->msg_name, len, false);
}

static int vet_sendmmsg(struct call *c, uint64_t ptr, unsigned vlen) {
    if (vlen > MAX_MMSG) vlen = MAX_MMSG; /* the kernel ignores the rest */
    if (vlen == 0) return 0;
    _cleanup_free_ struct mmsghdr *v = dbx_xcalloc(vlen, sizeof(*v));
    int r = peek(c->req->pid, ptr, v, vlen * sizeof(*v));
    if (r < 0) {
        c->why = "unreadable message vector";
        return r;
    }
    for (unsigned i = 0; i < vlen && r == 0; i++)
        r = vet_msghdr(c, &v[i].msg_hdr);
    return r;
}

static int vet_call(struct call *c) {
    const struct seccomp_data *d = &c->req->data;
    const __u64 *a = d->args;
    if (d->nr == SYS_connect) return vet_addr(c, a[1], (uint32_t)a[2], true);
    if (d->nr == SYS_sendto) return a[4] ? vet_addr(c, a[4], (uint32_t)a[5], false) : 0;
    if (d->nr == SYS_sendmmsg) return vet_sendmmsg(c, a[1], (uint32_t)a[2]);
    if (d->nr == SYS_sendmsg) {
        struct msghdr m;
        int r = peek(c->req->pid, a[1], &m, sizeof(m));
        if (r < 0) c->why = "unreadable message";
        return r < 0 ? r : vet_msghdr(c, &m);
    }
    c->why = "unexpected system call";
    return -EACCES;
}

static const char *call_name(int nr) {
    return nr == SYS_connect    ? "connect"
           : nr == SYS_sendto   ? "sendto"
           : nr == SYS_sendmsg  ? "sendmsg"
           : nr == SYS_sendmmsg ? "sendmmsg"
                                : "call";
}

/* One line per refusal, at most LOG_PER_SECOND a second; the rest are counted. */
static void log_refusal(struct vm_passt_filter *f, const struct call *c) {
    if (f->log_fd < 0) return;
    uint64_t now = dbx_now_ms() / 1000;
    if (now != f->log_window) {
        f->log_window = now;
        f->logged = 0;
    }
    if (f->logged >= LOG_PER_SECOND) {
        f->unlogged++;
        return;
    }
    f->logged++;
    char line[256];
    int n = 0;
    if (f->unlogged)
        n = snprintf(line, sizeof(line), "devbox: %" PRIu64 " more passt refusals not logged\n",
                     f->unlogged);
    f->unlogged = 0;
    snprintf(line + n, sizeof(line) - (size_t)n, "devbox: refused passt %s to %s (%s)\n",
             call_name(c->req->data.nr), c->where, c->why);
    (void)dbx_write_all(f->log_fd, line, strlen(line));
}

static void handle_one(struct vm_passt_filter *f, struct seccomp_notif *req,
                       struct seccomp_notif_resp *resp) {
    memset(req, 0, f->sizes.seccomp_notif);
    if (ioctl(f->notify_fd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) return; /* caller gone: ENOENT */
    struct call c = {.f = f, .req = req};
    snprintf(c.where, sizeof(c.where), "an unread address");
    int r = vet_call(&c);
    /* What we read came from req->pid: only if the call is still pending was that passt
     * (and not a new process that got its pid). */
    if (ioctl(f->notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0) return;
    memset(resp, 0, f->sizes.seccomp_notif_resp);
    resp->id = req->id;
    if (r == 0) {
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    } else {
        resp->error = r;
        if (c.why) {
            __atomic_add_fetch(&f->refused, 1, __ATOMIC_RELAXED);
            log_refusal(f, &c);
        }
    }
    (void)ioctl(f->notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
}

static void *filter_main(void *arg) {
    struct vm_passt_filter *f = arg;
    _cleanup_free_ struct seccomp_notif *req = dbx_xcalloc(1, f->sizes.seccomp_notif);
    _cleanup_free_ struct seccomp_notif_resp *resp = dbx_xcalloc(1, f->sizes.seccomp_notif_resp);
    for (;;) {
        struct pollfd p[2] = {{.fd = f->notify_fd, .events = POLLIN},
                              {.fd = f->stop_fd[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[1].revents) break;
        if (p[0].revents & POLLIN)
            handle_one(f, req, resp);
        else if (p[0].revents)
            break; /* POLLHUP: passt is gone */
    }
    return NULL;
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

void vm_passt_filter_free(struct vm_passt_filter *f) {
    if (!f) return;
    if (f->started) {
        (void)!write(f->stop_fd[1], "x", 1);
        pthread_join(f->thread, NULL);
    }
    close_fd(&f->notify_fd);
    close_fd(&f->stop_fd[0]);
    close_fd(&f->stop_fd[1]);
    close_fd(&f->log_fd);
    close_fd(&f->rules.nl_fd);
    free(f);
}

static int filter_init(struct vm_passt_filter *f, const char *resolv_conf, int log_fd,
                       dbx_error **err) {
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &f->sizes) < 0)
        return dbx_error_set(err, errno, "passt filter: seccomp notification sizes");
    if (pipe2(f->stop_fd, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    if (log_fd >= 0 && (f->log_fd = fcntl(log_fd, F_DUPFD_CLOEXEC, 3)) < 0)
        return dbx_error_set(err, errno, "passt filter: log fd");
    f->rules.nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (f->rules.nl_fd < 0) return dbx_error_set(err, errno, "passt filter: netlink socket");
    struct timeval tv = {.tv_sec = 1};
    if (setsockopt(f->rules.nl_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        return dbx_error_set(err, errno, "passt filter: netlink timeout");
    /* passt reads the same file once, at its start, for --dns-forward */
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, resolv_conf, 65536, &text, NULL, &e) == 0)
        vm_passt_parse_resolv(text, &f->rules);
    return 0;
}

int vm_passt_filter_new(const char *resolv_conf, int log_fd, struct vm_passt_filter **ret,
                        dbx_error **err) {
    struct vm_passt_filter *f = dbx_xcalloc(1, sizeof(*f));
    f->notify_fd = f->stop_fd[0] = f->stop_fd[1] = f->log_fd = f->rules.nl_fd = -1;
    int r = filter_init(f, resolv_conf, log_fd, err);
    if (r < 0) {
        vm_passt_filter_free(f);
        return r;
    }
    *ret = f;
    return 0;
}

int vm_passt_filter_run(struct vm_passt_filter *f, int notify_fd, dbx_error **err) {
    f->notify_fd = notify_fd;
    (void)ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    /* every signal stays with the supervisor's other threads */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&f->thread, NULL, filter_main, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) return dbx_error_set(err, r, "passt filter: thread");
    f->started = true;
    return 0;
}

uint64_t vm_passt_filter_refused(const struct vm_passt_filter *f) {
    return __atomic_load_n(&f->refused, __ATOMIC_RELAXED);
}

/* guest/init-audit.c: counting the box's write attempts on protected paths (DBX_MSG_PROTECTED).
 *
 * A protected path is read-only twice: a read-only bind in virtiofsd's mount namespace on the
 * host (the boundary, R2) and one in the guest (init-policy.c).  A write on it therefore fails
 * inside the guest kernel with EROFS (the guest's bind, or the host's through virtiofs when guest
 * root took the guest's away), or EACCES/EPERM when the permission check comes first (add_rules),
 * and a rename or removal of it or of a parent with EBUSY (a mount point, here or on the host). The
 * host never sees the first kind (no FUSE request is sent), so only the guest kernel can observe
 * every attempt: its audit subsystem (Debian's cloud kernel has CONFIG_AUDIT and
 * CONFIG_AUDITSYSCALL) reports, at the exit of any syscall that failed with one of those errors, a
 * SYSCALL record with the cwd and the PATH records of the names it looked up. The init registers as
 * the audit daemon over NETLINK_AUDIT, so the records come to it and not to the console, and counts
 * those whose path lies in the workspace at, below or above one of the plan's protected paths
 * (a removal of a directory above one only when that one was missing at SETUP: protected_rel).
 *
 * Tasks forked before audit is first enabled carry no audit context, so this runs at SETUP,
 * before any box command exists (the init itself stays unaudited).  Records are dropped, never
 * waited for: a backlog wait of 0 means a box that floods itself with failing writes loses
 * records instead of stalling, and a rate limit bounds our parsing.  The count is informational:
 * guest root with CAP_AUDIT_CONTROL could turn it off; enforcement never depends on it. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <limits.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define AUDIT_RATE 200u    /* records a second the kernel lets through */
#define AUDIT_BACKLOG 1024 /* records queued in the kernel before it drops */
#define AUDIT_MSG_MAX 9000 /* MAX_AUDIT_MESSAGE_LENGTH is 8970 */
#define AUDIT_BATCH 256    /* records handled per wake-up */
#define AUDIT_REPORT_MS 1000u

static int audit_request(int fd, uint16_t type, const void *data, size_t len, dbx_error **err) {
    static uint32_t seq;
    struct {
        struct nlmsghdr nh;
        uint8_t data[sizeof(struct audit_rule_data) + 64];
    } req = {0};
    if (len > sizeof(req.data)) return dbx_error_setx(err, E2BIG, "audit request too large");
    req.nh = (struct nlmsghdr){.nlmsg_len = (uint32_t)NLMSG_LENGTH(len),
                               .nlmsg_type = type,
                               .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
                               .nlmsg_seq = ++seq};
    memcpy(req.data, data, len);
    struct sockaddr_nl to = {.nl_family = AF_NETLINK};
    if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
        return dbx_error_set(err, errno, "send audit request %u", type);
    /* The answer is an NLMSG_ERROR with our seq; records (config changes) may come first. */
    for (int i = 0; i < 64; i++) {
        static uint8_t buf[AUDIT_MSG_MAX];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return dbx_error_set(err, errno, "audit request %u: no answer", type);
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq != seq) continue;
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                return dbx_error_setx(err, EPROTO, "audit request %u: short answer", type);
            const struct nlmsgerr *e = NLMSG_DATA(h);
            if (e->error) return dbx_error_set(err, -e->error, "audit request %u", type);
            return 0;
        }
    }
    return dbx_error_setx(err, EPROTO, "audit request %u: no answer", type);
}

struct rule {
    int errnum;     /* the syscall's result is -errnum */
    const int *nrs; /* these x86_64 syscalls (terminated by -1), or NULL: any syscall */
    int arg;        /* 0, or AUDIT_ARG0 + n: that argument must have a bit of `bits` */
    uint32_t bits;
};

static int add_rule(int fd, const struct rule *ru, dbx_error **err) {
    struct audit_rule_data r = {.flags = AUDIT_FILTER_EXIT, .action = AUDIT_ALWAYS};
    uint32_t n = 0;
    if (!ru->nrs) {
        for (size_t i = 0; i < AUDIT_BITMASK_SIZE; i++)
            r.mask[i] = UINT32_MAX;
    } else {
        for (const int *nr = ru->nrs; *nr >= 0; nr++)
            r.mask[*nr / 32] |= UINT32_C(1) << (*nr % 32);
        /* syscall numbers are the architecture's */
        r.fields[n] = AUDIT_ARCH, r.values[n] = AUDIT_ARCH_X86_64, r.fieldflags[n++] = AUDIT_EQUAL;
    }
    r.fields[n] = AUDIT_EXIT, r.values[n] = (uint32_t)-ru->errnum, r.fieldflags[n++] = AUDIT_EQUAL;
    if (ru->arg)
        r.fields[n] = (uint32_t)ru->arg, r.values[n] = ru->bits, r.fieldflags[n++] = AUDIT_BIT_MASK;
    r.field_count = n;
    return audit_request(fd, AUDIT_ADD_RULE, &r, sizeof(r), err);
}

/* The write attempts to catch.  A read-only mount fails every write with EROFS (and a rename
 * or removal of a mount point with EBUSY), whatever the syscall, so those rules take them all.
 * But the permission check runs before the mount's: guest root without CAP_DAC_OVERRIDE writing
 * a file the box user owns gets EACCES, and chmod, chown or utimes by a non-owner EPERM, so
 * those errors count too, for the syscalls that change a name, its content or its attributes
 * only (a read refused with EACCES is no write attempt). */
static int add_rules(int fd, dbx_error **err) {
#ifdef __x86_64__
    static const int writers[] = {
        SYS_creat,     SYS_mkdir,    SYS_mkdirat,   SYS_rmdir,       SYS_unlink,       SYS_unlinkat,
        SYS_rename,    SYS_renameat, SYS_renameat2, SYS_link,        SYS_linkat,       SYS_symlink,
        SYS_symlinkat, SYS_chmod,    SYS_fchmodat,  SYS_chown,       SYS_lchown,       SYS_fchownat,
        SYS_truncate,  SYS_utime,    SYS_utimes,    SYS_utimensat,   SYS_futimesat,    SYS_mknod,
        SYS_mknodat,   SYS_setxattr, SYS_lsetxattr, SYS_removexattr, SYS_lremovexattr, -1};
    static const int open1[] = {SYS_open, -1}, open2[] = {SYS_openat, -1};
    const uint32_t wflags = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND;
    const struct rule rules[] = {
        {EROFS, NULL, 0, 0},
        {EBUSY, NULL, 0, 0},
        {EACCES, writers, 0, 0},
        {EPERM, writers, 0, 0},
        {EACCES, open1, AUDIT_ARG1, wflags},
        {EACCES, open2, AUDIT_ARG2, wflags},
    };
#else
    const struct rule rules[] = {{EROFS, NULL, 0, 0}, {EBUSY, NULL, 0, 0}};
#endif
    for (size_t i = 0; i < DBX_ARRAY_SIZE(rules); i++)
        if (add_rule(fd, &rules[i], err) < 0) return -1;
    return 0;
}

int audit_setup(struct agent *a, dbx_error **err) {
    if (a->test_mode || !a->ws_path || a->box.plan.nprotected == 0) return 0;
    _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
    if (fd < 0) return dbx_error_set(err, errno, "audit socket");
    struct timeval tv = {.tv_sec = 2};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        return dbx_error_set(err, errno, "audit socket timeout");
    if (add_rules(fd, err) < 0) return -1;
    struct audit_status st = {
        .mask = AUDIT_STATUS_ENABLED | AUDIT_STATUS_FAILURE | AUDIT_STATUS_PID |
                AUDIT_STATUS_RATE_LIMIT | AUDIT_STATUS_BACKLOG_LIMIT |
                AUDIT_STATUS_BACKLOG_WAIT_TIME,
        .enabled = 1,
        .failure = AUDIT_FAIL_SILENT, /* a lost record is not worth a console line */
        .pid = (uint32_t)getpid(),
        .rate_limit = AUDIT_RATE,
        .backlog_limit = AUDIT_BACKLOG,
        .backlog_wait_time = 0,
    };
    if (audit_request(fd, AUDIT_SET, &st, sizeof(st), err) < 0) return -1;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return dbx_error_set(err, errno, "audit socket non-blocking");
    a->audit_fd = TAKE_FD(fd);
    return 0;
}

/* ---- records ---------------------------------------------------------------------------- */

/* The value of " key=" in a record's text (values never hold a space: the kernel hex-encodes
 * any untrusted string with a space, a quote or a control character), or NULL. */
static const char *field(const char *text, const char *key, size_t *ret_len) {
    size_t kl = strlen(key);
    for (const char *p = strstr(text, "): "); p && (p = strchr(p, ' ')); p++) {
        if (strncmp(p + 1, key, kl) == 0 && p[1 + kl] == '=') {
            const char *v = p + 2 + kl;
            *ret_len = strcspn(v, " \n");
            return v;
        }
    }
    return NULL;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* An untrusted string as the kernel logs it: "quoted", HEX or (null).  NULL if none. */
static char *field_str(const char *text, const char *key) {
    size_t n = 0;
    const char *v = field(text, key, &n);
    if (!v || n == 0 || n > 2 * PATH_MAX) return NULL;
    if (v[0] == '"') return n >= 2 && v[n - 1] == '"' ? dbx_xstrndup(v + 1, n - 2) : NULL;
    if (n % 2) return NULL; /* "(null)" too */
    char *s = dbx_xcalloc(n / 2 + 1, 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(v[2 * i]), lo = hexval(v[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            free(s);
            return NULL;
        }
        s[i] = (char)(hi << 4 | lo);
    }
    return s;
}

static bool field_num(const char *text, const char *key, int base, int64_t *ret) {
    size_t n = 0;
    const char *v = field(text, key, &n);
    char tmp[24];
    if (!v || n == 0 || n >= sizeof(tmp)) return false;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    char *end = NULL;
    errno = 0;
    long long x = base == 16 ? (long long)strtoull(tmp, &end, 16) : strtoll(tmp, &end, 10);
    if (errno || *end) return false;
    *ret = x;
    return true;
}

/* "audit(1700000000.123:45): ..." -> 45 */
static bool record_serial(const char *text, uint64_t *ret) {
    const char *p = strncmp(text, "audit(", 6) == 0 ? strchr(text, ':') : NULL;
    if (!p) return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(p + 1, &end, 10);
    if (errno || end == p + 1 || strncmp(end, "): ", 3) != 0) return false;
    *ret = v;
    return true;
}

static void event_clear(struct audit_event *e) {
    free(e->cwd);
    for (size_t i = 0; i < e->nnames; i++)
        free(e->names[i]);
    *e = (struct audit_event){0};
}

/* Syscalls whose first argument is a directory fd that relative names start from. */
static bool dirfd_syscall(int64_t arch, int64_t nr) {
#ifdef __x86_64__
    static const int at[] = {SYS_openat,    SYS_mkdirat,          SYS_mknodat, SYS_fchownat,
                             SYS_unlinkat,  SYS_renameat,         SYS_linkat,  SYS_fchmodat,
                             SYS_utimensat, SYS_renameat2,        SYS_openat2, SYS_futimesat,
                             SYS_faccessat, SYS_name_to_handle_at};
    /* the same calls of a 32-bit program (arch/x86/entry/syscalls/syscall_32.tbl) */
    static const int at32[] = {295, 296, 297, 298, 301, 302, 303,
                               306, 320, 353, 437, 299, 307, 341};
    _Static_assert(DBX_ARRAY_SIZE(at32) == DBX_ARRAY_SIZE(at), "one 32-bit number for each call");
    const int *t = arch == AUDIT_ARCH_X86_64 ? at : arch == AUDIT_ARCH_I386 ? at32 : NULL;
    for (size_t i = 0; t && i < DBX_ARRAY_SIZE(at); i++)
        if (nr == t[i]) return true;
#else
    (void)arch, (void)nr;
#endif
    return false;
}

/* Lexically normalized absolute path of name: ".", ".." and empty components resolved. */
static char *normalize(const char *base, const char *name) {
    _cleanup_free_ char *in = dbx_xasprintf("%s/%s", name[0] == '/' ? "" : base, name);
    char *out = dbx_xcalloc(strlen(in) + 2, 1);
    size_t o = 0;
    for (char *save = NULL, *c = strtok_r(in, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, ".")) continue;
        if (!strcmp(c, "..")) {
            while (o > 0 && out[--o] != '/') {
            }
            continue;
        }
        o += (size_t)sprintf(out + o, "/%s", c);
    }
    if (o == 0) out[o++] = '/';
    out[o] = '\0';
    return out;
}

/* rmdir(2), or unlinkat(2) with AT_REMOVEDIR, of a 64-bit or a 32-bit x86 program */
static bool rmdir_syscall(int64_t arch, int64_t nr, int64_t a2) {
#ifdef __x86_64__
    if (arch == AUDIT_ARCH_X86_64)
        return nr == SYS_rmdir || (nr == SYS_unlinkat && (a2 & AT_REMOVEDIR));
    if (arch == AUDIT_ARCH_I386) /* arch/x86/entry/syscalls/syscall_32.tbl */
        return nr == 40 || (nr == 301 && (a2 & AT_REMOVEDIR));
#else
    (void)arch, (void)nr, (void)a2;
#endif
    return false;
}

/* The workspace-relative path if abs lies in the workspace at, below or above a protected
 * path (a write below, a rename of one of its parents), else NULL.  A removal of a directory
 * above one counts only when that one was missing at SETUP: rmdir cannot remove a directory
 * that holds anything, so above a protected path that exists it takes nothing protected with
 * it, while the host pins the parent of a missing one (its name guard watches that directory),
 * which may well be empty.  Found in use: every `git stash` counted a write attempt on '.git':
 * git's remove_path() removes stash's temporary index, then tries rmdir on each parent, ".git"
 * included, which a host answers with ENOTEMPTY and the box with EBUSY (`.git` is a mount point
 * in virtiofsd's mount namespace on the host). */
static const char *protected_rel(const struct agent *a, const char *abs, bool rmdir) {
    size_t wl = strlen(a->ws_path);
    while (wl > 1 && a->ws_path[wl - 1] == '/')
        wl--;
    if (strncmp(abs, a->ws_path, wl) != 0 || abs[wl] != '/' || abs[wl + 1] == '\0') return NULL;
    const char *rel = abs + wl + 1;
    const struct box_policy *b = &a->box;
    if (!rmdir) return dbx_path_near(rel, b->plan.protected, b->plan.nprotected) ? rel : NULL;
    for (uint32_t i = 0; i < b->plan.nprotected; i++) {
        const char *q = b->plan.protected[i];
        if (dbx_path_at_or_below(rel, q)) return rel;
        if ((!b->prot_missing || b->prot_missing[i]) && dbx_path_at_or_below(q, rel)) return rel;
    }
    return NULL;
}

static void event_done(struct agent *a) {
    struct audit_event *e = &a->audit_ev;
    if (!e->syscall_seen) return event_clear(e);
    _cleanup_free_ char *dir = NULL;
    if (dirfd_syscall(e->arch, e->nr) && (int32_t)e->a0 != AT_FDCWD && e->pid > 0) {
        /* best effort: the process may be gone by now */
        _cleanup_free_ char *link = dbx_xasprintf("/proc/%d/fd/%d", (int)e->pid, (int)e->a0);
        char buf[PATH_MAX];
        ssize_t n = readlink(link, buf, sizeof(buf) - 1);
        if (n > 0 && buf[0] == '/') dir = dbx_xstrndup(buf, (size_t)n);
    }
    const char *base = dir ? dir : e->cwd;
    /* The longest match names the attempt best: an O_CREAT open or a creation logs the parent
     * (".claude/") before the file itself. */
    _cleanup_free_ char *best = NULL;
    for (size_t i = 0; i < e->nnames; i++) {
        if (e->names[i][0] != '/' && !base) continue;
        _cleanup_free_ char *abs = normalize(base, e->names[i]);
        const char *rel = protected_rel(a, abs, rmdir_syscall(e->arch, e->nr, e->a2));
        if (rel && (!best || strlen(rel) > strlen(best))) {
            free(best);
            best = dbx_xstrdup(rel);
        }
    }
    if (!best) return event_clear(e);
    a->prot_count++;
    if (!a->prot_first && strlen(best) > DBX_PROTECTED_PATH_MAX) {
        /* too long for the wire: its longest parent that fits, a path the host still takes */
        char *cut = best + DBX_PROTECTED_PATH_MAX;
        while (cut > best && *cut != '/')
            cut--;
        *cut = '\0';
    }
    if (!a->prot_first && best[0]) a->prot_first = TAKE_PTR(best);
    event_clear(e);
}

static void on_record(struct agent *a, uint16_t type, const char *text) {
    uint64_t serial = 0;
    struct audit_event *e = &a->audit_ev;
    if (!record_serial(text, &serial)) return;
    if (e->serial && serial != e->serial) event_done(a); /* its EOE was lost */
    e->serial = serial;
    switch (type) {
    case AUDIT_SYSCALL: {
        int64_t v;
        e->syscall_seen = field_num(text, "arch", 16, &e->arch) &&
                          field_num(text, "syscall", 10, &e->nr) &&
                          field_num(text, "a0", 16, &e->a0) && field_num(text, "a2", 16, &e->a2) &&
                          field_num(text, "pid", 10, &v);
        e->pid = e->syscall_seen ? (pid_t)v : 0;
        return;
    }
    case AUDIT_CWD:
        free(e->cwd);
        e->cwd = field_str(text, "cwd");
        return;
    case AUDIT_PATH:
        if (e->nnames < DBX_ARRAY_SIZE(e->names)) {
            char *n = field_str(text, "name");
            if (n) e->names[e->nnames++] = n;
        }
        return;
    case AUDIT_EOE:
        return event_done(a);
    }
}

void audit_events(struct agent *a) {
    static char buf[AUDIT_MSG_MAX + 1];
    for (int i = 0; i < AUDIT_BATCH; i++) {
        ssize_t n = recv(a->audit_fd, buf, AUDIT_MSG_MAX, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* EAGAIN; ENOBUFS (records were dropped) is just a lower count */
        if ((size_t)n < NLMSG_HDRLEN) continue;
        /* One record a datagram.  Its nlmsg_len is the payload's length, not the message's (a
         * quirk kept for old auditd, kernel/audit.c __audit_log_end), so take the datagram's. */
        const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
        if (h->nlmsg_type < AUDIT_SYSCALL || h->nlmsg_type > AUDIT_SYSCALL + 99)
            continue; /* events */
        buf[n] = '\0';
        on_record(a, h->nlmsg_type, buf + NLMSG_HDRLEN); /* up to the first NUL */
    }
}

int audit_report_due(struct agent *a, uint64_t now) {
    if (a->prot_count == a->prot_sent) return -1;
    uint64_t due = a->prot_sent_ms + AUDIT_REPORT_MS;
    if (now < due) return (int)(due - now);
    struct dbx_buf b = {0};
    dbx_protected_encode(&b, a->prot_count, a->prot_first ? a->prot_first : "");
    agent_send(a, DBX_MSG_PROTECTED, 0, b.data, b.len);
    dbx_buf_free(&b);
    a->prot_sent = a->prot_count;
    a->prot_sent_ms = now;
    return -1;
}

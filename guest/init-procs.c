/* guest/init-procs.c: the box's processes.  Every command runs in a leaf cgroup of its own,
 * box/s<session> (the box's limits stay on box, which holds no process itself), so that
 * cgroup.kill ends a command with every child it started (--timeout, a client that went away)
 * and a pid's session is read from /proc/PID/cgroup.  PS lists the processes of the box's
 * subtree, KILL signals one of them or all; init itself, kernel threads and anything outside
 * the box are never listed nor signalled.  Without a box cgroup (the permissive plan, or
 * --serve-fd tests without DEVBOX_TEST_CGROUP) a process belongs to the box when its session id
 * is one of our commands' (each command calls setsid()). */
#define _GNU_SOURCE
#include "init-internal.h"

#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#define LINGER_MAX 4096u    /* leaves remembered for removal; more are left in place */
#define PROC_FILE_MAX 8192u /* /proc/PID/{stat,status,cgroup} */
#define PS_SCAN_MAX 65536u  /* /proc entries looked at per request */

/* ---- leaves ----------------------------------------------------------------------------- */

/* box/NAME's directory and its cgroup.procs, opened; when either does not open, the leaf goes
 * (rmdir: only an empty one) and the error names what did not open. */
static int leaf_open(int box_fd, const char *name, int *ret_dfd, int *ret_pfd, dbx_error **err) {
    _cleanup_close_ int dfd = openat(box_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    int pfd = dfd < 0 ? -1 : openat(dfd, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (pfd < 0) {
        int e = errno;
        unlinkat(box_fd, name, AT_REMOVEDIR);
        return dfd < 0 ? dbx_error_set(err, e, "open cgroup 'box/%s'", name)
                       : dbx_error_set(err, e, "open 'box/%s/cgroup.procs'", name);
    }
    *ret_dfd = TAKE_FD(dfd);
    *ret_pfd = pfd;
    return 0;
}

int procs_leaf_create(const struct box_policy *b, struct leaf_spare *spare, struct session *s,
                      int *ret_procs_fd, char **ret_line, dbx_error **err) {
    if (b->cg_box_fd < 0) {
        *ret_procs_fd = -1;
        *ret_line = NULL;
        return 0;
    }
    char name[16];
    snprintf(name, sizeof(name), "s%" PRIu32, s->id);
    if (spare && s->id && spare->id == s->id) { /* made while the box was idle */
        s->cg_fd = TAKE_FD(spare->dir_fd);
        *ret_procs_fd = TAKE_FD(spare->procs_fd);
        spare->id = 0;
        *ret_line = dbx_xasprintf("%s/%s", b->cg_line, name);
        return 0;
    }
    /* EEXIST: a leaf an earlier session of this id left with a daemon in it; shared then */
    if (mkdirat(b->cg_box_fd, name, 0755) < 0 && errno != EEXIST)
        return dbx_error_set(err, errno, "create the command's cgroup 'box/%s'", name);
    if (leaf_open(b->cg_box_fd, name, &s->cg_fd, ret_procs_fd, err) < 0) return -1;
    *ret_line = dbx_xasprintf("%s/%s", b->cg_line, name);
    return 0;
}

/* The spare, closed and removed: it was guessed wrong (never joined, so empty). */
static void spare_drop(struct agent *a) {
    struct leaf_spare *sp = &a->spare;
    if (!sp->id) return;
    if (sp->dir_fd >= 0) close(sp->dir_fd);
    if (sp->procs_fd >= 0) close(sp->procs_fd);
    sp->dir_fd = sp->procs_fd = -1;
    char name[16];
    snprintf(name, sizeof(name), "s%" PRIu32, sp->id);
    (void)unlinkat(a->box.cg_box_fd, name, AT_REMOVEDIR); /* empty: no process ever joined */
    sp->id = 0;
}

/* The next leaf, ahead of its EXEC.  Session ids come from the host, one more than the last
 * (sandbox/supervisor-relay.c), so the next EXEC most likely carries last_id + 1; a wrong guess
 * costs a mkdir and an rmdir while the box is idle, a right one takes mkdir and two opens
 * (0.55 ms of a 12-15 ms warm exec under TCG, 2026-12-03) off the command's start.  Only a
 * leaf this makes is a spare: an existing one (a daemon an earlier session of the id left) is
 * for procs_leaf_create to share, as before. */
void procs_leaf_prepare(struct agent *a, uint32_t last_id) {
    struct leaf_spare *sp = &a->spare;
    uint32_t want = last_id + 1;
    if (a->box.cg_box_fd < 0 || !a->box.confined || want == 0 || want >= DBX_SESSION_GUEST ||
        sp->id == want)
        return;
    spare_drop(a);
    for (size_t i = 0; i < a->nsess; i++)
        if (!a->sess[i]->dead && a->sess[i]->id == want) return;
    char name[16];
    snprintf(name, sizeof(name), "s%" PRIu32, want);
    int dfd, pfd;
    if (mkdirat(a->box.cg_box_fd, name, 0755) < 0 ||
        leaf_open(a->box.cg_box_fd, name, &dfd, &pfd, NULL) < 0)
        return;
    sp->id = want;
    sp->dir_fd = dfd;
    sp->procs_fd = pfd;
    stats_box_counts(a, &sp->oom_kills0, &sp->pids_refused0);
}

bool procs_listed_any(int dfd, bool (*fn)(pid_t pid, void *ud), void *ud) {
    _cleanup_free_ char *text = NULL;
    if (dbx_read_file_at(dfd, "cgroup.procs", 1u << 20, &text, NULL, NULL) < 0) return false;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        uint64_t pid;
        if (dbx_parse_u64(l, 2, INT32_MAX, &pid) == 0 && fn((pid_t)pid, ud)) return true;
    }
    return false;
}

static bool signal_listed(pid_t pid, void *sig) {
    kill(pid, *(int *)sig);
    return false;
}

static void kill_listed(int dfd, int sig) {
    procs_listed_any(dfd, signal_listed, &sig);
}

/* cgroup.kill (Linux 5.14) also reaches processes forked while it runs; cgroup.procs is the
 * fallback of older kernels. */
static void cg_kill(int dfd) {
    _cleanup_close_ int fd = openat(dfd, "cgroup.kill", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && write(fd, "1", 1) == 1) return;
    kill_listed(dfd, SIGKILL);
}

void procs_leaf_kill(struct session *s) {
    if (s->pid > 0) kill(-s->pid, SIGKILL);
    if (s->cg_fd >= 0) cg_kill(s->cg_fd);
}

static bool leaf_remove(struct agent *a, uint32_t id) {
    char name[16];
    snprintf(name, sizeof(name), "s%" PRIu32, id);
    return unlinkat(a->box.cg_box_fd, name, AT_REMOVEDIR) == 0 || errno != EBUSY;
}

static void linger_forget(struct agent *a, uint32_t id) {
    size_t j = 0;
    for (size_t i = 0; i < a->ncg_linger; i++)
        if (a->cg_linger[i] != id) a->cg_linger[j++] = a->cg_linger[i];
    a->ncg_linger = j;
}

void procs_leaf_release(struct agent *a, struct session *s) {
    if (s->cg_fd < 0) return;
    close(s->cg_fd);
    s->cg_fd = -1;
    if (a->box.cg_box_fd < 0 || leaf_remove(a, s->id)) return;
    linger_forget(a, s->id);
    if (a->ncg_linger >= LINGER_MAX) return; /* left in place; its processes live on */
    a->cg_linger = dbx_xrealloc(a->cg_linger, (a->ncg_linger + 1) * sizeof(*a->cg_linger));
    a->cg_linger[a->ncg_linger++] = s->id;
}

void procs_linger_retry(struct agent *a) {
    size_t j = 0;
    for (size_t i = 0; i < a->ncg_linger; i++) {
        uint32_t id = a->cg_linger[i];
        bool live = false; /* a new session of the same id owns the leaf now */
        for (size_t k = 0; k < a->nsess && !live; k++)
            live = !a->sess[k]->dead && a->sess[k]->id == id;
        if (!live && !leaf_remove(a, id)) a->cg_linger[j++] = id;
    }
    a->ncg_linger = j;
}

/* ---- the box's processes ------------------------------------------------------------------ */

/* Whether pid is a process of the box, and the session whose leaf holds it (0: the box itself
 * or, without a cgroup, none known). */
static bool in_box(struct agent *a, pid_t pid, uint32_t *ret_session) {
    if (pid <= 1) return false;
    /* the spare process is init's, not yet a command's: not listed, not signalled */
    if (pid == a->spare.proc.pid && !a->spare.proc.reaped) return false;
    *ret_session = 0;
    if (a->box.cg_box_fd < 0) {
        pid_t sid = getsid(pid);
        for (size_t i = 0; sid > 0 && i < a->nsess; i++)
            if (!a->sess[i]->dead && a->sess[i]->pid == sid) {
                *ret_session = a->sess[i]->id;
                return true;
            }
        return false;
    }
    char path[64], text[PROC_FILE_MAX];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    if (n <= 0) return false;
    text[n] = '\0';
    const char *l = strstr(text, "0::"); /* the v2 line */
    while (l && l != text && l[-1] != '\n')
        l = strstr(l + 1, "0::");
    size_t bl = strlen(a->box.cg_line);
    if (!l || strncmp(l, a->box.cg_line, bl) != 0) return false;
    const char *rest = l + bl;
    if (*rest == '\n' || *rest == '\0') return true; /* in box itself (an older init's way) */
    if (rest[0] != '/') return false;                /* "/box2": a sibling, not ours */
    if (rest[1] != 's') return true;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(rest + 2, &end, 10);
    if (errno == 0 && end != rest + 2 && v <= UINT32_MAX &&
        (*end == '\n' || *end == '\0' || *end == '/'))
        *ret_session = (uint32_t)v;
    return true;
}

/* /etc/passwd's name for uid, else the uid in decimal.  pw may be NULL. */
static char *uid_name(const char *pw, uint32_t uid) {
    for (const char *l = pw; l && *l;) {
        const char *nl = strchrnul(l, '\n');
        const char *c1 = memchr(l, ':', (size_t)(nl - l));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(nl - c1 - 1)) : NULL;
        if (c2) {
            char *end = NULL;
            unsigned long v = strtoul(c2 + 1, &end, 10);
            size_t len = (size_t)(c1 - l);
            if (end != c2 + 1 && *end == ':' && v == uid && len > 0 && len <= 64)
                return dbx_xstrndup(l, len);
        }
        l = *nl ? nl + 1 : nl;
    }
    return dbx_xasprintf("%" PRIu32, uid);
}

/* One entry from /proc/PID/{stat,status,statm,cmdline}; false when the process is gone. */
static bool ps_read(pid_t pid, uint64_t now_ms, const char *pw, struct dbx_ps_entry *e) {
    static char buf[PROC_FILE_MAX];
    char path[64];
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!read_proc(path, buf, sizeof(buf))) return false;
    char *rp = strrchr(buf, ')'); /* comm may hold anything, ')' included */
    if (!rp || hz <= 0) return false;
    unsigned long long f[20] = {0};
    char *tok = rp + 2, *save = NULL;
    size_t i = 0;
    for (char *t = strtok_r(tok, " ", &save); t && i < 20; t = strtok_r(NULL, " ", &save), i++)
        f[i] = strtoull(t, NULL, 10); /* f[0] is the state letter: 0 */
    if (i < 20) return false;
    e->pid = (uint32_t)pid;
    e->ppid = (uint32_t)f[1];
    e->cpu_ms = (f[11] + f[12]) * 1000 / (unsigned long long)hz;
    uint64_t start_ms = f[19] * 1000 / (unsigned long long)hz;
    e->start_ms_ago = now_ms > start_ms ? now_ms - start_ms : 0;
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    unsigned long long size = 0, res = 0;
    if (read_proc(path, buf, sizeof(buf)) && sscanf(buf, "%llu %llu", &size, &res) == 2)
        e->rss_bytes = res * (unsigned long long)page;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    const char *u = read_proc(path, buf, sizeof(buf)) ? strstr(buf, "\nUid:\t") : NULL;
    e->uid = u ? (uint32_t)strtoul(u + 6, NULL, 10) : 0;
    e->user = uid_name(pw, e->uid);
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, DBX_PS_CMD_MAX) : -1;
    if (n <= 0) {
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        if (!read_proc(path, buf, 64)) buf[0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        e->cmd = dbx_xasprintf("[%s]", buf);
        return true;
    }
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    for (ssize_t k = 0; k < n; k++)
        if (buf[k] == '\0') buf[k] = ' ';
    e->cmd = dbx_xstrndup(buf, (size_t)n);
    return true;
}

static uint64_t boot_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Call fn for every process of the box (at most PS_SCAN_MAX /proc entries). */
static void for_each_boxed(struct agent *a, void (*fn)(pid_t, uint32_t, void *), void *ud) {
    DIR *d = opendir("/proc");
    if (!d) return;
    struct dirent *de;
    for (unsigned seen = 0; (de = readdir(d)) && seen < PS_SCAN_MAX; seen++) {
        uint64_t pid;
        uint32_t session;
        if (dbx_parse_u64(de->d_name, 2, INT32_MAX, &pid) == 0 && in_box(a, (pid_t)pid, &session))
            fn((pid_t)pid, session, ud);
    }
    closedir(d);
}

struct ps_acc {
    struct dbx_buf entries;
    uint32_t n;
    uint64_t now;
    char *pw;
};

static void ps_one(pid_t pid, uint32_t session, void *ud) {
    struct ps_acc *acc = ud;
    struct dbx_ps_entry e = {.session = session};
    if (acc->n >= DBX_PS_MAX || !ps_read(pid, acc->now, acc->pw, &e)) goto out;
    /* the reply fits one frame: later processes are left out */
    if (12 + acc->entries.len + dbx_ps_entry_size(&e) > DBX_FRAME_MAX) goto out;
    dbx_ps_entry_encode(&acc->entries, &e);
    acc->n++;
out:
    free(e.user);
    free(e.cmd);
}

void procs_on_ps(struct agent *a, const uint8_t *p, uint32_t n) {
    uint64_t token;
    if (dbx_dec_u64(p, n, &token) < 0)
        return agent_send_error(a, 0, DBX_ERR_FAILED, "malformed ps frame");
    struct ps_acc acc = {.now = boot_ms()};
    /* as exec's user lookup reads it: a FIFO or device there must not block PID 1 */
    if (user_read_db("/etc/passwd", &acc.pw, NULL) < 0) acc.pw = NULL;
    for_each_boxed(a, ps_one, &acc);
    struct dbx_buf out = {0};
    dbx_ps_reply_begin(&out, token, acc.n);
    dbx_buf_put(&out, acc.entries.data, acc.entries.len);
    agent_send(a, DBX_MSG_PS_REPLY, 0, out.data, out.len);
    dbx_buf_free(&out);
    dbx_buf_free(&acc.entries);
    free(acc.pw);
}

struct kill_acc {
    int sig;
    unsigned sent, failed;
    int err;
};

static void kill_one(pid_t pid, uint32_t session, void *ud) {
    struct kill_acc *k = ud;
    if (kill(pid, k->sig) == 0) {
        k->sent++;
    } else if (errno != ESRCH) {
        k->failed++;
        k->err = errno;
    }
}

static void kill_reply(struct agent *a, uint64_t token, uint32_t status, const char *msg) {
    struct dbx_buf b = {0};
    dbx_kill_reply_encode(&b, token, status, msg);
    agent_send(a, DBX_MSG_KILL_REPLY, 0, b.data, b.len);
    dbx_buf_free(&b);
}

void procs_on_kill(struct agent *a, const uint8_t *p, uint32_t n) {
    uint64_t token;
    uint32_t pid, sig, session;
    if (dbx_dec_kill(p, n, &token, &pid, &sig) < 0)
        return agent_send_error(a, 0, DBX_ERR_FAILED, "malformed kill frame");
    _cleanup_free_ char *msg = NULL;
    if (pid == 0) {
        struct kill_acc k = {.sig = (int)sig};
        for_each_boxed(a, kill_one, &k);
        /* SIGKILL: the whole subtree at once, so a fork bomb cannot outrun the scan */
        if (sig == SIGKILL && a->box.cg_box_fd >= 0) cg_kill(a->box.cg_box_fd);
        if (k.failed) {
            msg = dbx_xasprintf("signal %u: %u processes, %u failed: %s", sig, k.sent, k.failed,
                                strerror(k.err));
            return kill_reply(a, token, (uint32_t)k.err, msg);
        }
        msg = dbx_xasprintf("signal %u sent to %u processes", sig, k.sent);
        return kill_reply(a, token, 0, msg);
    }
    if (pid > INT32_MAX || !in_box(a, (pid_t)pid, &session)) {
        msg = dbx_xasprintf("no process %u in the box", pid);
        return kill_reply(a, token, ESRCH, msg);
    }
    if (kill((pid_t)pid, (int)sig) < 0) {
        int e = errno;
        msg = dbx_xasprintf("kill %u: %s", pid, strerror(e));
        return kill_reply(a, token, (uint32_t)e, msg);
    }
    kill_reply(a, token, 0, "");
}

/* sandbox/supervisor-procs.c: the box's processes as clients see them.  PS and KILL from a
 * client go to the guest under a token of ours (clients cannot guess or collide with each
 * other's), and the guest's reply, decoded strictly (it is the guest's word), goes back under
 * the client's token.  Detached commands (`devbox exec -d`) write their output to
 * <state_dir>/procs/<pid>.log, rotated once to .log.1 at SUP_PROCS_LOG_MAX, and end with
 * <pid>.exit (the exit code) for `devbox logs -f`; the supervisor credits their output back
 * itself, since no client reads it. */
#define _GNU_SOURCE
#include "supervisor-internal.h"

#include <dirent.h>
#include <inttypes.h>
#include <sys/stat.h>

#define PROCS_PENDING_MAX 64   /* PS/KILL requests waiting for the guest */
#define PROCS_TIMEOUT_MS 10000 /* then the waiting client gets an error */

struct procs_req {
    uint64_t token;        /* ours, on the agent channel */
    uint64_t client_token; /* the client's, repeated in its reply */
    struct client *c;
    uint8_t type; /* DBX_MSG_PS or DBX_MSG_KILL */
    uint64_t deadline_ms;
};

struct sup_procs {
    struct procs_req pend[PROCS_PENDING_MAX];
    size_t npend;
    uint64_t next_token;
};

void sup_procs_free(struct sup *s) {
    free(s->procs);
    s->procs = NULL;
}

static struct sup_procs *procs_of(struct sup *s) {
    if (!s->procs) s->procs = dbx_xcalloc(1, sizeof(*s->procs));
    return s->procs;
}

void sup_procs_client_gone(struct sup *s, struct client *c) {
    struct sup_procs *pr = s->procs;
    for (size_t i = 0; pr && i < pr->npend;) {
        if (pr->pend[i].c == c)
            pr->pend[i] = pr->pend[--pr->npend];
        else
            i++;
    }
}

static void reply_client(struct client *c, uint8_t type, const struct dbx_buf *b) {
    dbx_frame_put(&c->out, type, 1, b->data, b->len);
    c->kind = C_CLOSING;
}

void sup_procs_client_frame(struct sup *s, struct client *c, const struct dbx_frame_hdr *h,
                            const uint8_t *p) {
    uint64_t token;
    uint32_t pid = 0, sig = 0;
    bool ok = h->type == DBX_MSG_PS ? dbx_dec_u64(p, h->len, &token) == 0
                                    : dbx_dec_kill(p, h->len, &token, &pid, &sig) == 0;
    if (!ok) {
        sup_client_error(c, DBX_ERR_FAILED, "malformed %s frame from client",
                         dbx_msg_name(h->type));
        return;
    }
    if (s->guest.stopping || !s->guest.ready || s->relay.agent_fd < 0) {
        sup_client_error(c, DBX_ERR_FAILED, "the VM is stopping");
        return;
    }
    struct sup_procs *pr = procs_of(s);
    if (pr->npend >= PROCS_PENDING_MAX) {
        sup_client_error(c, DBX_ERR_FAILED, "too many requests waiting for the guest");
        return;
    }
    struct procs_req *r = &pr->pend[pr->npend++];
    *r = (struct procs_req){.token = ++pr->next_token,
                            .client_token = token,
                            .c = c,
                            .type = h->type,
                            .deadline_ms = dbx_now_ms() + PROCS_TIMEOUT_MS};
    c->kind = C_REQ;
    if (h->type == DBX_MSG_PS) {
        uint8_t b[8];
        sup_agent_send(s, DBX_MSG_PS, 0, b, dbx_enc_u64(b, r->token));
    } else {
        uint8_t b[16];
        sup_agent_send(s, DBX_MSG_KILL, 0, b, dbx_enc_kill(b, r->token, pid, sig));
    }
}

void sup_procs_expire(struct sup *s, uint64_t now) {
    struct sup_procs *pr = s->procs;
    for (size_t i = 0; pr && i < pr->npend;) {
        struct procs_req *r = &pr->pend[i];
        if (now < r->deadline_ms) {
            i++;
            continue;
        }
        sup_client_error(r->c, DBX_ERR_FAILED, "the guest did not answer the %s request within %us",
                         r->type == DBX_MSG_PS ? "ps" : "kill", PROCS_TIMEOUT_MS / 1000);
        pr->pend[i] = pr->pend[--pr->npend];
    }
}

static struct procs_req *take_pending(struct sup *s, uint64_t token, uint8_t type,
                                      struct procs_req *ret) {
    struct sup_procs *pr = s->procs;
    for (size_t i = 0; pr && i < pr->npend; i++) {
        if (pr->pend[i].token != token || pr->pend[i].type != type) continue;
        *ret = pr->pend[i];
        pr->pend[i] = pr->pend[--pr->npend];
        return ret;
    }
    return NULL;
}

static bool sess_detached(struct sup *s, uint32_t gsid) {
    if (gsid == 0 || gsid >= NET_SID_BASE) return false;
    const struct sess *x = &s->relay.sess[gsid & (SESS_SLOTS - 1)];
    return x->gsid == gsid && x->detached;
}

static void ps_reply(struct sup *s, const uint8_t *p, uint32_t n) {
    struct dbx_ps_reply r = {0};
    _cleanup_error_ dbx_error *e = NULL;
    uint64_t token;
    struct procs_req req;
    if (dbx_ps_reply_decode(p, n, &r, &e) < 0) {
        sup_log("bad PS_REPLY from the guest: %s", e->msg);
        /* the token, when there is one, says whom to tell */
        if (dbx_dec_u64(p, n >= 8 ? 8 : n, &token) == 0 && take_pending(s, token, DBX_MSG_PS, &req))
            sup_client_error(req.c, DBX_ERR_FAILED, "malformed process list from the guest");
        return;
    }
    if (!take_pending(s, r.token, DBX_MSG_PS, &req)) {
        sup_log("PS_REPLY from the guest for no request (token %" PRIu64 ")", r.token);
        dbx_ps_reply_free(&r);
        return;
    }
    struct dbx_buf b = {0};
    dbx_ps_reply_begin(&b, req.client_token, r.n);
    for (uint32_t i = 0; i < r.n; i++) {
        r.v[i].detached = sess_detached(s, r.v[i].session);
        dbx_ps_entry_encode(&b, &r.v[i]);
    }
    reply_client(req.c, DBX_MSG_PS_REPLY, &b);
    dbx_buf_free(&b);
    dbx_ps_reply_free(&r);
}

static void kill_reply(struct sup *s, const uint8_t *p, uint32_t n) {
    uint64_t token;
    uint32_t status;
    _cleanup_free_ char *msg = NULL;
    struct procs_req req;
    if (dbx_kill_reply_decode(p, n, &token, &status, &msg) < 0) {
        sup_log("bad KILL_REPLY from the guest");
        if (dbx_dec_u64(p, n >= 8 ? 8 : n, &token) == 0 &&
            take_pending(s, token, DBX_MSG_KILL, &req))
            sup_client_error(req.c, DBX_ERR_FAILED, "malformed kill reply from the guest");
        return;
    }
    if (!take_pending(s, token, DBX_MSG_KILL, &req)) {
        sup_log("KILL_REPLY from the guest for no request (token %" PRIu64 ")", token);
        return;
    }
    struct dbx_buf b = {0};
    dbx_kill_reply_encode(&b, req.client_token, status, msg);
    reply_client(req.c, DBX_MSG_KILL_REPLY, &b);
    dbx_buf_free(&b);
}

void sup_procs_agent_frame(struct sup *s, const struct dbx_frame_hdr *h, const uint8_t *p) {
    if (h->type == DBX_MSG_PS_REPLY)
        ps_reply(s, p, h->len);
    else
        kill_reply(s, p, h->len);
}

/* ---- detached sessions ------------------------------------------------------------------ */

static int procs_dir(struct sup *s, dbx_error **err) {
    _cleanup_free_ char *dir = dbx_xasprintf("%s/procs", s->proj.state_dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return dbx_error_set(err, errno, "create '%s'", dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", dir);
    return fd;
}

static bool log_name_pid(const char *name, uint32_t *pid) {
    if (name[0] < '1' || name[0] > '9') return false;
    char *end;
    unsigned long v = strtoul(name, &end, 10);
    if (strcmp(end, ".log") != 0 || v > UINT32_MAX) return false;
    *pid = (uint32_t)v;
    return true;
}

struct exited {
    uint32_t pid;
    struct timespec t; /* its .exit's mtime */
};

static int exited_cmp(const void *a, const void *b) {
    const struct timespec *x = &((const struct exited *)a)->t, *y = &((const struct exited *)b)->t;
    if (x->tv_sec != y->tv_sec) return x->tv_sec < y->tv_sec ? -1 : 1;
    return x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec;
}

/* Another live detached session has this pid: the guest's word, so maybe forged, and its log
 * and .exit are that session's. */
static bool pid_held(struct sup *s, const struct sess *x, uint32_t pid) {
    for (size_t i = 0; i < SESS_SLOTS; i++) {
        const struct sess *y = &s->relay.sess[i];
        if (y != x && y->gsid && y->detached && y->pid == pid) return true;
    }
    return false;
}

/* procs/ keeps at most SUP_PROCS_FILES_MAX logs (each up to twice SUP_PROCS_LOG_MAX on the
 * host's disk): before pid's, the oldest ended commands' files go.  A command has ended when its
 * .exit exists, or when no live session writes its log and the log was last written before
 * this boot (a previous boot's, whose supervisor died before writing .exit: that VM and its
 * processes are gone).  Other logs stay; when all are such, the new command is refused. */
static int make_room(struct sup *s, int dfd, uint32_t pid, dbx_error **err) {
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0) close(fd);
        return dbx_error_set(err, errno, "read '%s/procs'", s->proj.state_dir);
    }
    _cleanup_free_ struct exited *v = NULL;
    size_t nv = 0, nlogs = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint32_t p;
        if (!log_name_pid(de->d_name, &p) || p == pid) continue; /* pid's own is replaced */
        nlogs++;
        char done[32];
        struct stat st;
        snprintf(done, sizeof(done), "%" PRIu32 ".exit", p);
        if (fstatat(dfd, done, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
            (pid_held(s, NULL, p) || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
             st.st_mtim.tv_sec >= s->vm.started_wall))
            continue;
        v = dbx_xrealloc(v, (nv + 1) * sizeof(*v));
        v[nv++] = (struct exited){.pid = p, .t = st.st_mtim};
    }
    closedir(d);
    if (nlogs < SUP_PROCS_FILES_MAX) return 0;
    size_t need = nlogs - SUP_PROCS_FILES_MAX + 1;
    if (nv < need)
        return dbx_error_setx(err, ENOSPC,
                              "'%s/procs' holds %zu logs of detached commands (at most %u) and "
                              "none of them has exited: stop one (devbox kill)",
                              s->proj.state_dir, nlogs, SUP_PROCS_FILES_MAX);
    qsort(v, nv, sizeof(*v), exited_cmp);
    for (size_t i = 0; i < need; i++) {
        static const char *const ext[] = {"log", "log.1", "exit"};
        for (size_t k = 0; k < DBX_ARRAY_SIZE(ext); k++) {
            char name[40];
            snprintf(name, sizeof(name), "%" PRIu32 ".%s", v[i].pid, ext[k]);
            unlinkat(dfd, name, 0);
        }
    }
    return 0;
}

/* (Re)open <pid>.log empty; rotate: the current one becomes .log.1 first. */
static int log_open(struct sup *s, struct sess *x, bool rotate, dbx_error **err) {
    _cleanup_close_ int dfd = procs_dir(s, err);
    if (dfd < 0) return -1;
    char name[32], old[40], done[40];
    snprintf(name, sizeof(name), "%" PRIu32 ".log", x->pid);
    snprintf(old, sizeof(old), "%s.1", name);
    snprintf(done, sizeof(done), "%" PRIu32 ".exit", x->pid);
    if (rotate) {
        if (renameat(dfd, name, dfd, old) < 0)
            return dbx_error_set(err, errno, "rotate '%s/procs/%s'", s->proj.state_dir, name);
    } else { /* a pid of an earlier boot: its files are not this command's */
        if (make_room(s, dfd, x->pid, err) < 0) return -1;
        unlinkat(dfd, old, 0);
        unlinkat(dfd, done, 0);
    }
    if (x->log_fd >= 0) close(x->log_fd);
    x->log_fd = dbx_log_create(dfd, name, O_APPEND);
    x->log_bytes = 0;
    if (x->log_fd < 0)
        return dbx_error_set(err, errno, "open '%s/procs/%s'", s->proj.state_dir, name);
    return 0;
}

static void log_write(struct sup *s, struct sess *x, const uint8_t *p, size_t n) {
    _cleanup_error_ dbx_error *e = NULL;
    if (x->log_fd >= 0 && x->log_bytes + n > SUP_PROCS_LOG_MAX && log_open(s, x, true, &e) < 0)
        sup_log("session %u: %s", x->gsid, e->msg);
    if (x->log_fd < 0) return; /* dropped: the command must not stall on a log */
    if (dbx_write_all(x->log_fd, p, n) < 0) {
        sup_log("session %u: write its log: %s", x->gsid, strerror(errno));
        close(x->log_fd);
        x->log_fd = -1;
        return;
    }
    x->log_bytes += n;
}

/* <pid>.exit: "CODE\n", written once the session is over (temp + rename: `logs -f` reads it
 * whole or not at all). */
static void write_exit(struct sup *s, struct sess *x, int code) {
    if (!x->pid) return;
    _cleanup_error_ dbx_error *e = NULL;
    _cleanup_close_ int dfd = procs_dir(s, &e);
    char name[32], text[16];
    snprintf(name, sizeof(name), "%" PRIu32 ".exit", x->pid);
    snprintf(text, sizeof(text), "%d\n", code);
    if (dfd < 0 || dbx_write_file_atomic(dfd, name, text, strlen(text), 0600, &e) < 0)
        sup_log("session %u: %s", x->gsid, e ? e->msg : "cannot write its exit file");
}

/* The session ends before its command is ours: the client, if still there, says why. */
static bool refuse(struct sup *s, struct sess *x, const char *msg) {
    sup_log("session %u: %s: session ended", x->gsid, msg);
    if (x->c) {
        sup_client_error(x->c, DBX_ERR_FAILED, "%s", msg);
        x->c->gsid = 0;
        x->c = NULL;
    }
    if (x->log_fd >= 0) close(x->log_fd);
    x->log_fd = -1;
    return false;
}

bool sup_procs_detached_frame(struct sup *s, struct sess *x, const struct dbx_frame_hdr *h,
                              const uint8_t *p) {
    _cleanup_error_ dbx_error *e = NULL;
    struct client *c = x->c;
    bool sig;
    uint32_t v, pid = 0;
    int code;
    switch (h->type) {
    case DBX_MSG_STARTED:
        (void)dbx_dec_u32(p, h->len, &pid);
        if (pid == 0) return refuse(s, x, "the guest started the detached command as pid 0");
        if (pid_held(s, x, pid)) {
            _cleanup_free_ char *m = dbx_xasprintf(
                "the guest named pid %" PRIu32 ", which another detached command has", pid);
            return refuse(s, x, m);
        }
        x->pid = pid;
        if (log_open(s, x, false, &e) < 0) {
            if (e->code == ENOSPC) {
                x->pid = 0; /* no .exit either: the files are not this command's */
                return refuse(s, x, e->msg);
            }
            sup_log("session %u: %s", x->gsid, e->msg);
        }
        if (c) { /* the client has what it waited for; the command is ours from now on */
            dbx_frame_put(&c->out, DBX_MSG_STARTED, 1, p, h->len);
            c->kind = C_CLOSING;
            c->gsid = 0;
            x->c = NULL;
        }
        return true;
    case DBX_MSG_STDOUT:
    case DBX_MSG_STDERR:
        if (h->len == 0) return true;
        log_write(s, x, p, h->len);
        uint8_t cr[5];
        sup_agent_send(
            s, DBX_MSG_CREDIT, x->gsid, cr,
            dbx_enc_credit(cr, h->type == DBX_MSG_STDOUT ? DBX_STREAM_STDOUT : DBX_STREAM_STDERR,
                           h->len));
        return true;
    case DBX_MSG_EXIT:
        code = dbx_dec_exit(p, h->len, &sig, &v) == 0 ? dbx_exit_code(sig, v) : 125;
        write_exit(s, x, code);
        /* the journal's line has the code too (the session's end would write null) */
        sup_event_exec_exit(s, x->gsid, code);
        break;
    case DBX_MSG_ERROR:
        if (c) { /* the start failed: the client says why */
            dbx_frame_put(&c->out, DBX_MSG_ERROR, 1, p, h->len);
            c->kind = C_CLOSING;
        }
        write_exit(s, x, 125);
        break;
    default:
        return true;
    }
    if (x->log_fd >= 0) close(x->log_fd);
    x->log_fd = -1;
    return true;
}

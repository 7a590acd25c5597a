/* sandbox/supervisor-events.c: the events journal, <state_dir>/events.jsonl: one JSON object a
 * line (time, type, fields) for what a user reads after an agent session: the box started and
 * stopped, each command's start and exit, OOM and pids-limit notices, protected-path write
 * attempts, proxy denials.  `devbox events` (cmd-events.c) reads it without the supervisor.
 *
 * Best effort, never corrupt: each line goes out in one write(2) on an O_APPEND fd (a reader
 * sees whole lines, or a partial last one it holds back), the file is renamed to .1 at its cap
 * (rename is atomic: a reader has either file whole), and a failure is logged once and then
 * ignored: the box must not stop because its journal cannot be written.  The guest chooses
 * argv, paths and hosts, so every string is escaped and cut (dbx_json_str) and the rates of
 * the guest-driven lines are capped.  Runs on the poll loop's thread (sandbox-supervisor.c);
 * a local append is short, and the loop writes nothing here per byte of a session. */
#define _GNU_SOURCE
#include "supervisor-internal.h"
#include "../mounts/mounts.h"

#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#define PROXY_RATE 10u /* proxy.denied lines a second */

/* ---- the line format (also used by tests) ---------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xc2 && c <= 0xdf ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (len == 0 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    /* overlong 3- and 4-byte forms, surrogates, above U+10FFFF */
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

void dbx_json_str(struct dbx_buf *b, const char *s, size_t max) {
    if (!s) {
        dbx_buf_put(b, "null", 4);
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    dbx_buf_put(b, "\"", 1);
    while (i < n) {
        size_t l = utf8_len(p + i, n - i);
        if (i + (l ? l : 1) > max) {
            dbx_buf_put(b, "...", 3);
            break;
        }
        char esc[8];
        if (l == 0) {
            dbx_buf_put(b, "\\ufffd", 6);
            i++;
        } else if (p[i] == '"' || p[i] == '\\') {
            esc[0] = '\\', esc[1] = (char)p[i];
            dbx_buf_put(b, esc, 2);
            i++;
        } else if (p[i] < 0x20 || p[i] == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
            dbx_buf_put(b, esc, 6);
            i++;
        } else {
            dbx_buf_put(b, p + i, l);
            i += l;
        }
    }
    dbx_buf_put(b, "\"", 1);
}

int dbx_events_append(int dir_fd, const char *line, size_t len, uint64_t cap, dbx_error **err) {
    if (len == 0 || len > DBX_EVENTS_LINE_MAX || line[len - 1] != '\n')
        return dbx_error_set(err, EINVAL, "journal line of %zu bytes", len);
    _cleanup_close_ int fd = openat(dir_fd, DBX_EVENTS_NAME,
                                    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", DBX_EVENTS_NAME);
    struct stat st;
    if (fstat(fd, &st) < 0) return dbx_error_set(err, errno, "stat '%s'", DBX_EVENTS_NAME);
    if (st.st_size > 0 && (uint64_t)st.st_size + len > cap) {
        /* A reader that has the old file open keeps reading it as .1 (cmd-events.c). */
        if (renameat(dir_fd, DBX_EVENTS_NAME, dir_fd, DBX_EVENTS_NAME ".1") < 0)
            return dbx_error_set(err, errno, "rename '%s'", DBX_EVENTS_NAME);
        close(fd);
        fd = openat(dir_fd, DBX_EVENTS_NAME,
                    O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) return dbx_error_set(err, errno, "open '%s'", DBX_EVENTS_NAME);
    }
    ssize_t n = write(fd, line, len);
    if (n < 0) return dbx_error_set(err, errno, "write '%s'", DBX_EVENTS_NAME);
    /* Short (a full disk): the reader skips the unfinished line as corrupt; end it here so
     * the next line starts on a line of its own. */
    if ((size_t)n != len) {
        (void)!write(fd, "\n", 1);
        return dbx_error_set(err, ENOSPC, "write '%s': %zd of %zu bytes", DBX_EVENTS_NAME, n, len);
    }
    return 0;
}

/* ---- writing a line -------------------------------------------------------------------- */

static void ev_begin(struct dbx_buf *b, const char *type) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char t[40], head[96];
    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
    int n =
        snprintf(head, sizeof(head), "{\"time\":\"%s.%03ldZ\",\"type\":", t, ts.tv_nsec / 1000000);
    dbx_buf_put(b, head, (size_t)n);
    dbx_json_str(b, type, DBX_EVENTS_STR_MAX);
}

static void ev_str(struct dbx_buf *b, const char *key, const char *v) {
    dbx_buf_put(b, ",\"", 2);
    dbx_buf_put(b, key, strlen(key));
    dbx_buf_put(b, "\":", 2);
    dbx_json_str(b, v, DBX_EVENTS_STR_MAX);
}

/* Above INT64_MAX (a limit of "max") is null: JSON readers such as jansson refuse larger
 * integers, and a line they refuse is a lost line. */
static void ev_u64(struct dbx_buf *b, const char *key, uint64_t v) {
    char t[64];
    int n = v > INT64_MAX ? snprintf(t, sizeof(t), ",\"%s\":null", key)
                          : snprintf(t, sizeof(t), ",\"%s\":%" PRIu64, key, v);
    dbx_buf_put(b, t, (size_t)n);
}

/* Close the object and append it; b is freed. */
static void ev_end(struct sup *s, struct dbx_buf *b) {
    dbx_buf_put(b, "}\n", 2);
    _cleanup_error_ dbx_error *e = NULL;
    _cleanup_close_ int dfd =
        s->proj.state_dir ? open(s->proj.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    int r = dfd < 0 ? dbx_error_set(&e, errno, "open '%s'", s->proj.state_dir)
                    : dbx_events_append(dfd, (const char *)b->data, b->len, DBX_EVENTS_CAP, &e);
    if (r < 0 && !s->events.failed) {
        s->events.failed = true;
        sup_log("events journal: %s (not logged again)", e->msg);
    }
    dbx_buf_free(b);
}

/* ---- the events ------------------------------------------------------------------------ */

static void proxy_flush(struct sup *s, uint64_t now) {
    if (now - s->events.proxy_window_ms < 1000) return;
    s->events.proxy_window_ms = now;
    s->events.proxy_n = 0;
    if (!s->events.proxy_suppressed) return;
    struct dbx_buf b = {0};
    ev_begin(&b, "proxy.suppressed");
    ev_u64(&b, "count", s->events.proxy_suppressed);
    ev_end(s, &b);
    s->events.proxy_suppressed = 0;
}

static void protected_write(struct sup *s, uint64_t count, const char *first) {
    struct dbx_buf b = {0};
    ev_begin(&b, "protected");
    ev_u64(&b, "count", count);
    ev_str(&b, "first", first);
    ev_end(s, &b);
    s->events.protected_logged = count;
    s->events.protected_ms = dbx_now_ms();
}

static void proxy_denied(void *data, const char *host, const char *reason) {
    sup_event_proxy(data, "deny", host, reason);
}

void sup_event_box(struct sup *s, const char *what, const char *detail) {
    if (strcmp(what, "stopping") == 0) {
        snprintf(s->events.stop_why, sizeof(s->events.stop_why), "%s", detail ? detail : "");
        return;
    }
    bool stop = strcmp(what, "started") != 0;
    if (stop) { /* what is still open or pending goes out before the stop line */
        for (size_t i = 0; i < SESS_SLOTS; i++)
            if (s->events.exec_gsid[i]) sup_event_exec_exit(s, s->events.exec_gsid[i], -1);
        if (s->protect.count > s->events.protected_logged)
            protected_write(s, s->protect.count, s->protect.first);
        proxy_flush(s, UINT64_MAX);
        if (!detail && s->events.stop_why[0]) detail = s->events.stop_why;
    } else {
        memset(&s->events, 0, sizeof(s->events));
        net_on_deny(s->net, proxy_denied, s);
    }
    _cleanup_free_ char *type = dbx_xasprintf("box.%s", what);
    struct dbx_buf b = {0};
    ev_begin(&b, type);
    if (detail) ev_str(&b, stop ? "why" : "accel", detail);
    if (strcmp(what, "idle-stopped") == 0) ev_u64(&b, "idle_s", s->idle.stopped_ms / 1000);
    ev_end(s, &b);
}

void sup_event_exec_start(struct sup *s, uint32_t gsid, const struct dbx_exec_req *req,
                          bool detached) {
    size_t slot = gsid & (SESS_SLOTS - 1);
    s->events.exec_gsid[slot] = gsid;
    s->events.exec_ms[slot] = dbx_now_ms();
    struct dbx_buf b = {0};
    ev_begin(&b, "exec.started");
    ev_u64(&b, "id", gsid);
    dbx_buf_put(&b, ",\"argv\":[", 9);
    /* An escaped string takes up to 6 bytes a byte: argv stops at a quarter of a line, so
     * with user and cwd (each at most 6 KiB) the line stays under DBX_EVENTS_LINE_MAX. */
    for (uint32_t i = 0; i < req->argc; i++) {
        bool cut = i == DBX_EVENTS_ARGV_MAX || b.len > DBX_EVENTS_LINE_MAX / 4;
        if (i) dbx_buf_put(&b, ",", 1);
        dbx_json_str(&b, cut ? "..." : req->argv[i], DBX_EVENTS_STR_MAX);
        if (cut) break;
    }
    dbx_buf_put(&b, "]", 1);
    if (req->user && *req->user) {
        ev_str(&b, "user", req->user);
    } else { /* the box's default user: its uid, as `id -u` in the box says */
        uid_t uid;
        gid_t gid;
        mounts_box_ids(&uid, &gid);
        _cleanup_free_ char *u = dbx_xasprintf("%u", (unsigned)uid);
        ev_str(&b, "user", u);
    }
    ev_str(&b, "cwd", req->cwd);
    if (req->flags & DBX_EXEC_ADMIN) dbx_buf_put(&b, ",\"admin\":true", 13);
    dbx_buf_put(&b, detached ? ",\"detached\":true" : ",\"detached\":false", detached ? 16 : 17);
    ev_end(s, &b);
}

void sup_event_exec_exit(struct sup *s, uint32_t gsid, int exit_code) {
    size_t slot = gsid & (SESS_SLOTS - 1);
    if (!gsid || s->events.exec_gsid[slot] != gsid) return; /* written already */
    s->events.exec_gsid[slot] = 0;
    struct dbx_buf b = {0};
    ev_begin(&b, "exec.exited");
    ev_u64(&b, "id", gsid);
    if (exit_code >= 0)
        ev_u64(&b, "exit_code", (uint64_t)exit_code);
    else
        dbx_buf_put(&b, ",\"exit_code\":null", 17);
    ev_u64(&b, "duration_ms", dbx_now_ms() - s->events.exec_ms[slot]);
    ev_end(s, &b);
}

void sup_event_notice(struct sup *s, uint32_t gsid, uint32_t kind, uint64_t limit, uint64_t value) {
    static const char *const kinds[] = {NULL, "oom", "pids"};
    struct dbx_buf b = {0};
    ev_begin(&b, "notice");
    _cleanup_free_ char *k = dbx_xasprintf("kind-%u", kind);
    ev_str(&b, "kind", kind < DBX_ARRAY_SIZE(kinds) && kinds[kind] ? kinds[kind] : k);
    ev_u64(&b, "id", gsid);
    ev_u64(&b, "limit", limit);
    ev_u64(&b, "value", value);
    ev_end(s, &b);
}

void sup_event_protected(struct sup *s, uint64_t count, const char *first) {
    if (count <= s->events.protected_logged) return;
    if (dbx_now_ms() - s->events.protected_ms < 1000 && s->events.protected_ms) return;
    protected_write(s, count, first);
}

void sup_event_proxy(struct sup *s, const char *verdict, const char *host, const char *reason) {
    if (!verdict || strcmp(verdict, "deny") != 0) return;
    proxy_flush(s, dbx_now_ms());
    if (s->events.proxy_n >= PROXY_RATE) {
        s->events.proxy_suppressed++;
        return;
    }
    s->events.proxy_n++;
    struct dbx_buf b = {0};
    ev_begin(&b, "proxy.denied");
    ev_str(&b, "host", host);
    ev_str(&b, "reason", reason);
    ev_end(s, &b);
}

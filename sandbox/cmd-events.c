/* sandbox/cmd-events.c: `devbox events [--json] [--follow|-f] [-n|--tail N] [PATH|ID]`: the
 * project's events journal (supervisor-events.c writes it), read straight from the state dir, so
 * it works while the box is stopped (and for a project whose repository is gone, by its id).
 * events.jsonl.1 (the rotated half) comes first, then events.jsonl.
 *
 * The journal's strings come from the guest: every line is checked as JSON before it is shown
 * (a corrupt one is skipped with a warning naming file:line), --json prints lines as stored (valid
 * JSON, ASCII controls escaped), and the text form escapes every string for the terminal.  A
 * last line without its '\n' may be one being written: it is held back, not reported.
 * --follow follows the rotation (cmd_tail_follow, cmd-logs.c): a rename leaves the old file
 * readable through our fd, so it is drained before the new one is opened. */
#define _GNU_SOURCE
#include "commands.h"
#include "sandbox-internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <time.h>

/* ---- one line to text -------------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key)); /* NULL: absent or not a string */
}

/* An integer >= 0, or -1 (absent, null, negative, not an integer). */
static int64_t jnum(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : -1;
}

/* 2147483648 -> "2.0G" */
static char *size_text(int64_t v) {
    if (v < 0) return dbx_xstrdup("none");
    static const char units[] = "KMGTPE";
    if (v < 1024) return dbx_xasprintf("%" PRId64, v);
    double d = (double)v;
    int u = -1;
    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    return dbx_xasprintf("%.1f%c", d, units[u]);
}

/* argv as one quoted, escaped string of at most ~80 bytes: 'make test' */
static char *cmd_text(json_t *argv) {
    if (!json_is_array(argv) || json_array_size(argv) == 0) return dbx_xstrdup("(login shell)");
    struct dbx_buf b = {0};
    size_t i;
    json_t *a;
    json_array_foreach(argv, i, a) {
        const char *s = json_string_value(a);
        if (i) dbx_buf_put(&b, " ", 1);
        if (s) dbx_buf_put(&b, s, strlen(s));
        if (b.len > 80) break;
    }
    bool cut = b.len > 80;
    _cleanup_free_ char *e = dbx_escape_n((const char *)b.data, cut ? 80 : b.len, 0);
    dbx_buf_free(&b);
    /* cutting may split an escape or a UTF-8 sequence: dbx_escape_n keeps the text safe */
    return dbx_xasprintf("'%s%s'", e, cut ? "..." : "");
}

static void remember_exec(struct dbx_events_ctx *ctx, int64_t id, json_t *o) {
    if (id < 0) return;
    __typeof__(ctx->exec[0]) *x = &ctx->exec[(uint64_t)id % DBX_EVENTS_CMDS];
    _cleanup_free_ char *c = cmd_text(json_object_get(o, "argv"));
    _cleanup_free_ char *u = dbx_escape(jstr(o, "user"));
    x->id = (uint32_t)id;
    snprintf(x->cmd, sizeof(x->cmd), "%s", c);
    snprintf(x->user, sizeof(x->user), "%s", u);
}

/* " (uid 1000)", " (user dev)", or "" when the line named none. */
static char *user_text(const char *u) {
    if (!*u) return dbx_xstrdup("");
    return dbx_xasprintf(" (%s %s)", strspn(u, "0123456789") == strlen(u) ? "uid" : "user", u);
}

/* The text after the time for each type (NULL: unknown type). */
static char *body_text(struct dbx_events_ctx *ctx, const char *type, json_t *o) {
    int64_t id = jnum(o, "id");
    __typeof__(ctx->exec[0]) *x = id >= 0 ? &ctx->exec[(uint64_t)id % DBX_EVENTS_CMDS] : NULL;
    _cleanup_free_ char *unknown = dbx_xasprintf("#%" PRId64, id);
    const char *cmd = x && x->id == id ? x->cmd : unknown;
    if (strncmp(type, "box.", 4) == 0) {
        _cleanup_free_ char *d = dbx_escape(jstr(o, "why") ? jstr(o, "why") : jstr(o, "accel"));
        if (strcmp(type, "box.started") == 0) memset(ctx, 0, sizeof(*ctx)); /* ids restart */
        _cleanup_free_ char *what = dbx_escape(type + 4);
        return dbx_xasprintf("box   %s%s%s%s", what, *d ? " (" : "", d, *d ? ")" : "");
    }
    if (strcmp(type, "exec.started") == 0) {
        remember_exec(ctx, id, o);
        x = id >= 0 ? &ctx->exec[(uint64_t)id % DBX_EVENTS_CMDS] : NULL;
        bool det = json_is_true(json_object_get(o, "detached"));
        bool adm = json_is_true(json_object_get(o, "admin"));
        _cleanup_free_ char *who = user_text(x ? x->user : "");
        return dbx_xasprintf("exec  %s%s started%s%s", x ? x->cmd : cmd, who,
                             det ? " detached" : "", adm ? " as admin" : "");
    }
    if (strcmp(type, "exec.exited") == 0) {
        int64_t code = jnum(o, "exit_code"), ms = jnum(o, "duration_ms");
        _cleanup_free_ char *how = code < 0 ? dbx_xstrdup("ended without an exit status")
                                            : dbx_xasprintf("exited %" PRId64, code);
        _cleanup_free_ char *who = user_text(x && x->id == id ? x->user : "");
        return dbx_xasprintf("exec  %s%s %s after %.1f s", cmd, who, how,
                             ms < 0 ? 0.0 : (double)ms / 1000);
    }
    if (strcmp(type, "notice") == 0) {
        const char *kind = jstr(o, "kind") ? jstr(o, "kind") : "";
        _cleanup_free_ char *lim = size_text(jnum(o, "limit")), *val = size_text(jnum(o, "value"));
        if (strcmp(kind, "oom") == 0)
            return dbx_xasprintf("oom   %s was killed: out of memory (limit %s, peak %s)", cmd, lim,
                                 val);
        if (strcmp(kind, "pids") == 0)
            return dbx_xasprintf("pids  %s hit the box's process limit (pids.max %" PRId64 ")", cmd,
                                 jnum(o, "limit"));
        _cleanup_free_ char *k = dbx_escape(kind);
        return dbx_xasprintf("notice %s %s (limit %s, value %s)", k, cmd, lim, val);
    }
    if (strcmp(type, "protected") == 0) {
        _cleanup_free_ char *f = dbx_escape(jstr(o, "first"));
        return dbx_xasprintf("protect %" PRId64 " write attempt(s) on protected paths (first '%s')",
                             jnum(o, "count"), f);
    }
    if (strcmp(type, "proxy.denied") == 0) {
        _cleanup_free_ char *h = dbx_escape(jstr(o, "host")), *r = dbx_escape(jstr(o, "reason"));
        return dbx_xasprintf("proxy denied '%s'%s%s", h, *r ? ": " : "", r);
    }
    if (strcmp(type, "proxy.suppressed") == 0)
        return dbx_xasprintf("proxy %" PRId64 " more denials (not recorded one by one)",
                             jnum(o, "count"));
    return NULL;
}

int dbx_event_text(struct dbx_events_ctx *ctx, const char *line, size_t len, char **ret_text,
                   dbx_error **err) {
    if (len > DBX_EVENTS_LINE_MAX) return dbx_error_set(err, 0, "line of %zu bytes", len);
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) return dbx_error_set(err, 0, "not JSON: %s (column %d)", je.text, je.column);
    int r = 0;
    const char *t = jstr(o, "time"), *type = jstr(o, "type");
    struct tm tm = {0};
    const char *rest = t ? strptime(t, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!json_is_object(o) || !t || !type)
        r = dbx_error_set(err, 0, "not an event (an object with a \"time\" and a \"type\")");
    else if (!rest || (*rest != '.' && *rest != 'Z') || rest[strlen(rest) - 1] != 'Z')
        r = dbx_error_set(err, 0, "bad time (want RFC 3339 UTC)");
    if (r == 0 && ret_text) {
        time_t when = timegm(&tm);
        struct tm lt;
        char ts[40];
        localtime_r(&when, &lt);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &lt);
        _cleanup_free_ char *body = body_text(ctx, type, o);
        _cleanup_free_ char *other = body ? NULL : dbx_escape(type);
        *ret_text = dbx_xasprintf("%s %s", ts, body ? body : other);
    }
    json_decref(o);
    return r;
}

/* ---- reading the files ------------------------------------------------------------------- */

struct src {
    char *path; /* for messages */
    int fd;
    unsigned line;
    bool skipping;       /* inside an over-long line: dropped up to its '\n' */
    struct dbx_buf pend; /* bytes after the last '\n' */
};

struct view {
    bool json;
    size_t n;       /* print the last n lines (SIZE_MAX: all) */
    char **ring;    /* while collecting the last n */
    size_t ring_at; /* lines collected */
    bool live;      /* past the initial read: print at once */
    struct dbx_events_ctx ctx;
};

static void emit(struct view *v, char *text) {
    if (v->live || v->n == SIZE_MAX) {
        printf("%s\n", text);
        free(text);
        return;
    }
    if (v->n == 0) {
        free(text);
        return;
    }
    size_t k = v->ring_at++ % v->n;
    free(v->ring[k]);
    v->ring[k] = text;
}

static void one_line(struct view *v, struct src *f, const char *p, size_t len) {
    _cleanup_error_ dbx_error *e = NULL;
    char *text = NULL;
    f->line++;
    if (dbx_event_text(&v->ctx, p, len, v->json ? NULL : &text, &e) < 0) {
        _cleanup_free_ char *path = dbx_escape(f->path);
        fprintf(stderr, "devbox: %s:%u: skipping a corrupt line: %s\n", path, f->line, e->msg);
        return;
    }
    emit(v, v->json ? dbx_xasprintf("%.*s", (int)len, p) : text);
}

/* Every complete line of what fd has now; the partial rest stays in pend. */
static void drain(struct view *v, struct src *f) {
    char buf[65536];
    for (;;) {
        ssize_t n = f->fd < 0 ? 0 : read(f->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        dbx_buf_put(&f->pend, buf, (size_t)n);
        const char *s = (const char *)f->pend.data, *end = s + f->pend.len, *nl;
        while ((nl = memchr(s, '\n', (size_t)(end - s)))) {
            if (f->skipping)
                f->skipping = false;
            else
                one_line(v, f, s, (size_t)(nl - s));
            s = nl + 1;
        }
        size_t rest = (size_t)(end - s);
        if (rest > DBX_EVENTS_LINE_MAX && !f->skipping) { /* never a line the writer wrote */
            one_line(v, f, s, rest);
            f->skipping = true;
        }
        if (f->skipping) rest = 0;
        memmove(f->pend.data, s, rest);
        f->pend.len = rest;
    }
}

/* A new file (or the same from its start): its lines count from 1. */
static void src_reset(struct src *f) {
    f->line = 0;
    f->skipping = false;
    f->pend.len = f->pend.off = 0;
}

static void src_open(struct src *f, const char *dir, const char *name) {
    free(f->path);
    f->path = dbx_xasprintf("%s/%s", dir, name);
    if (f->fd >= 0) close(f->fd);
    f->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    src_reset(f);
}

static void src_close(struct src *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    free(f->path);
    f->path = NULL;
    dbx_buf_free(&f->pend);
}

/* --follow: new lines as they come (cmd_tail_follow: across rotations, while the project's
 * state dir exists). */
struct follow {
    struct view *v;
    struct src *cur;
};

static int follow_show(struct cmd_tail *t) {
    struct follow *f = t->arg;
    drain(f->v, f->cur);
    return 0;
}

static void follow_reset(struct cmd_tail *t) {
    src_reset(((struct follow *)t->arg)->cur);
}

static int follow(struct view *v, struct src *cur, const char *dir) {
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0) { /* no state dir: the project never started (or was removed) */
        fprintf(stderr, "devbox: events: nothing to follow: the project's box never started\n");
        return 0;
    }
    struct follow f = {v, cur};
    struct cmd_tail t = {.dfd = dfd,
                         .name = DBX_EVENTS_NAME,
                         .fd = &cur->fd,
                         .show = follow_show,
                         .reset = follow_reset,
                         .arg = &f};
    return cmd_tail_follow(&t);
}

int cmd_events(struct cmd_ctx *ctx, int argc, char **argv) {
    struct view v = {.n = SIZE_MAX};
    bool fol = false;
    uint64_t n = UINT64_MAX;
    const struct cmd_opt opts[] = {{"--json", NULL, .flag = &v.json},
                                   {"--follow", "-f", .flag = &fol},
                                   {"--tail", "-n", .num = &n, .max = CMD_LINES_MAX},
                                   {NULL}};
    struct dbx_project proj = {0};
    int rc = cmd_args_project(ctx, argc, argv, opts, &proj);
    if (rc) return rc;
    if (n != UINT64_MAX) v.n = (size_t)n;
    _cleanup_free_ char *dir = dbx_xstrdup(proj.state_dir);
    dbx_project_clear(&proj);
    if (v.n != SIZE_MAX) v.ring = dbx_xcalloc(v.n ? v.n : 1, sizeof(char *));
    struct src old = {.fd = -1}, cur = {.fd = -1};
    src_open(&old, dir, DBX_EVENTS_NAME ".1");
    src_open(&cur, dir, DBX_EVENTS_NAME);
    if (old.fd < 0 && cur.fd < 0 && !fol) {
        _cleanup_free_ char *d = dbx_escape(dir);
        fprintf(stderr, "devbox: no events yet (the journal '%s/%s' starts with the box)\n", d,
                DBX_EVENTS_NAME);
    }
    drain(&v, &old);
    if (old.pend.len) one_line(&v, &old, (const char *)old.pend.data, old.pend.len);
    src_close(&old);
    drain(&v, &cur);
    for (size_t k = v.ring_at > v.n ? v.ring_at - v.n : 0; v.ring && k < v.ring_at; k++) {
        printf("%s\n", v.ring[k % v.n]);
        free(v.ring[k % v.n]);
        v.ring[k % v.n] = NULL;
    }
    free(v.ring);
    v.live = true;
    if (fol) rc = follow(&v, &cur, dir);
    src_close(&cur);
    return rc; /* a write error on stdout: cmd_stdout_done */
}

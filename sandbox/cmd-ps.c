/* sandbox/cmd-ps.c: `devbox ps [--json] [PATH|ID]`, `devbox kill [-s SIG] PID|--all` (a
 * detached command's log: cmd-logs.c).  Everything the guest said (users, command lines) is
 * printed escaped: the box chooses those bytes. */
#define _GNU_SOURCE
#include "commands.h"

#include "../common/protocol.h"

#include <inttypes.h>
#include <jansson.h>
#include <signal.h>

/* "45s", "12m", "3h", "2d" */
static void fmt_age(char *buf, size_t n, uint64_t ms) {
    uint64_t s = ms / 1000;
    if (s < 60)
        snprintf(buf, n, "%" PRIu64 "s", s);
    else if (s < 3600)
        snprintf(buf, n, "%" PRIu64 "m", s / 60);
    else if (s < 86400)
        snprintf(buf, n, "%" PRIu64 "h", s / 3600);
    else
        snprintf(buf, n, "%" PRIu64 "d", s / 86400);
}

/* "512K", "12M", "1.5G" */
static void fmt_bytes(char *buf, size_t n, uint64_t b) {
    if (b < (10u << 20))
        snprintf(buf, n, "%" PRIu64 "K", b >> 10);
    else if (b < (10ull << 30))
        snprintf(buf, n, "%" PRIu64 "M", b >> 20);
    else
        snprintf(buf, n, "%.1fG", (double)b / (double)(1ull << 30));
}

static int ps_json(const struct dbx_ps_reply *r) {
    json_t *arr = json_array();
    for (uint32_t i = 0; i < r->n; i++) {
        const struct dbx_ps_entry *e = &r->v[i];
        json_array_append_new(
            arr,
            json_pack("{s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:b, s:s}", "pid",
                      (json_int_t)e->pid, "ppid", (json_int_t)e->ppid, "uid", (json_int_t)e->uid,
                      "user", e->user, "session", (json_int_t)e->session, "age_ms",
                      (json_int_t)e->start_ms_ago, "cpu_ms", (json_int_t)e->cpu_ms, "rss_bytes",
                      (json_int_t)e->rss_bytes, "detached", e->detached, "command", e->cmd));
    }
    /* JSON_ENSURE_ASCII: the guest's bytes come out as \u escapes, never as terminal controls */
    char *s = json_dumps(arr, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(arr);
    if (!s) {
        fprintf(stderr, "devbox: ps: the process list is not valid UTF-8 JSON\n");
        return 125;
    }
    puts(s);
    free(s);
    return 0;
}

static void ps_table(const struct dbx_ps_reply *r) {
    printf("%7s %-10s %5s %8s %7s %3s %s\n", "PID", "USER", "AGE", "CPU", "RSS", "D/A", "COMMAND");
    for (uint32_t i = 0; i < r->n; i++) {
        const struct dbx_ps_entry *e = &r->v[i];
        char age[16], rss[16], cpu[24];
        fmt_age(age, sizeof(age), e->start_ms_ago);
        fmt_bytes(rss, sizeof(rss), e->rss_bytes);
        snprintf(cpu, sizeof(cpu), "%" PRIu64 ".%02" PRIu64 "s", e->cpu_ms / 1000,
                 e->cpu_ms % 1000 / 10);
        _cleanup_free_ char *user = dbx_escape(e->user);
        _cleanup_free_ char *cmd = dbx_escape(e->cmd);
        printf("%7" PRIu32 " %-10.10s %5s %8s %7s %3s %s\n", e->pid, user, age, cpu, rss,
               e->detached ? "D" : "A", cmd);
    }
}

/* `ps [--json] [PATH|ID]` */
int cmd_ps(struct cmd_ctx *ctx, int argc, char **argv) {
    bool json = false;
    const struct cmd_opt opts[] = {{"--json", NULL, .flag = &json}, {NULL}};
    struct dbx_project proj = {0};
    int rc = cmd_args_project(ctx, argc, argv, opts, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_(dbx_ps_reply_free) struct dbx_ps_reply r = {0};
    rc = dbx_ps(&ctx->paths, &proj, &r, &err);
    dbx_project_clear(&proj);
    /* a stopped box runs nothing: as status, it is a state, not a failure (JSON: []) */
    bool stopped = rc < 0 && err->code == ESRCH;
    if (rc < 0 && !stopped) return cmd_fail(&err);
    if (json) return ps_json(&r);
    if (stopped) {
        printf("the box is not running\n");
        return 0;
    }
    ps_table(&r);
    return 0;
}

/* "TERM", "SIGTERM", "term" or "15". */
static int parse_signal(const char *s, uint32_t *ret) {
    uint64_t v;
    if (dbx_parse_u64(s, 1, 64, &v) == 0) {
        *ret = (uint32_t)v;
        return 0;
    }
    const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (int i = 1; i < 65; i++) {
        const char *abbrev = sigabbrev_np(i);
        if (abbrev && strcasecmp(abbrev, name) == 0) {
            *ret = (uint32_t)i;
            return 0;
        }
    }
    return -1;
}

int cmd_kill(struct cmd_ctx *ctx, int argc, char **argv) {
    uint32_t sig = SIGTERM, pid = 0;
    bool all = false, have_pid = false;
    for (int i = 1; i < argc; i++) {
        uint64_t v;
        if ((strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "--signal") == 0) && i + 1 < argc) {
            if (parse_signal(argv[++i], &sig) < 0) {
                _cleanup_free_ char *q = dbx_escape(argv[i]);
                fprintf(stderr, "devbox: kill: unknown signal '%s'\n", q);
                return 125;
            }
        } else if (strcmp(argv[i], "--all") == 0 && !all) {
            all = true;
        } else if (!have_pid && dbx_parse_u64(argv[i], 1, INT32_MAX, &v) == 0) {
            pid = (uint32_t)v;
            have_pid = true;
        } else {
            _cleanup_free_ char *q = dbx_escape(argv[i]);
            fprintf(stderr,
                    "devbox: kill: unexpected '%s'\nusage: devbox kill [-s SIG] PID|--all\n", q);
            return 125;
        }
    }
    if (all == have_pid) {
        fprintf(stderr, "usage: devbox kill [-s SIG] PID|--all\n");
        return 125;
    }
    struct dbx_project proj = {0};
    int rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_free_ char *msg = NULL;
    rc = dbx_kill(&ctx->paths, &proj, pid, sig, &msg, &err);
    dbx_project_clear(&proj);
    if (rc < 0) return cmd_fail(&err);
    if (all && msg[0]) printf("%s\n", msg);
    return 0;
}

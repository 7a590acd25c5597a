/* sandbox/sandbox-stats.c: the client side of STATS (one request to the supervisor, with a
 * deadline), the sizes and durations `devbox stats` shows, and the one line that explains a
 * NOTICE (a command killed by the OOM killer or stopped by the pids limit). */
#define _GNU_SOURCE
#include "sandbox-internal.h"

#include <poll.h>

/* Longer than the supervisor's own deadline for the guest (supervisor-stats.c, 5 s) plus one
 * round of its poll loop (5 s): its error arrives first when the guest is the slow one. */
#define STATS_CLIENT_TIMEOUT_MS 15000
#define NOTICE_CMD_MAX 60 /* characters of the command line in the NOTICE line */

#ifndef DBX_LEAN /* dbx_connect may start a VM: not the lean client's business */
int dbx_stats_request(const struct dbx_paths *paths, const struct dbx_project *proj,
                      struct dbx_stats *ret, dbx_error **err) {
    _cleanup_close_ int fd = -EBADF;
    struct dbx_connect_opts co = {0};
    int r = dbx_connect(paths, proj, &co, &fd, NULL, err);
    if (r == -ENOENT) return dbx_error_setx(err, ENOENT, "the project's VM is not running");
    if (r < 0) return -1;
    uint64_t token = dbx_now_ns();
    uint8_t t[8];
    r = dbx_send_frame(fd, DBX_MSG_STATS, 0, t, dbx_enc_u64(t, token));
    if (r < 0) return dbx_send_failed(fd, r, "send to the supervisor", err);
    struct dbx_reader rd = {0};
    uint64_t end = dbx_now_ms() + STATS_CLIENT_TIMEOUT_MS;
    r = -1;
    for (;;) {
        struct dbx_frame_hdr h;
        const uint8_t *p;
        _cleanup_error_ dbx_error *e = NULL;
        enum dbx_read_result rr = dbx_reader_next(&rd, &h, &p, &e);
        if (rr == DBX_READ_BAD) {
            r = h.version != DBX_PROTO_VERSION
                    ? dbx_supervisor_bad_frame(&h, err)
                    : dbx_error_setx(err, EPROTO, "bad frame from the supervisor: %s", e->msg);
            break;
        }
        if (rr == DBX_READ_FRAME) {
            uint32_t code;
            char *msg = NULL;
            if (h.type == DBX_MSG_ERROR && dbx_error_msg_decode(p, h.len, &code, &msg) == 0) {
                r = dbx_error_setx(err, EIO, "%s", msg);
                free(msg);
            } else if (h.type != DBX_MSG_STATS_REPLY || dbx_stats_decode(p, h.len, ret, &e) < 0) {
                r = dbx_error_setx(err, EPROTO, "bad stats reply from the supervisor%s%s",
                                   e ? ": " : "", e ? e->msg : "");
            } else if (ret->token != token) {
                dbx_stats_clear(ret);
                r = dbx_error_setx(err, EPROTO, "stats reply for another request");
            } else {
                r = 0;
            }
            break;
        }
        uint64_t now = dbx_now_ms();
        struct pollfd pf = {fd, POLLIN, 0};
        int n = now < end ? poll(&pf, 1, (int)(end - now)) : 0;
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            r = n == 0 ? dbx_error_setx(err, ETIMEDOUT, "the supervisor did not answer within %us",
                                        STATS_CLIENT_TIMEOUT_MS / 1000)
                       : dbx_error_set(err, errno, "poll");
            break;
        }
        uint8_t buf[16384];
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            r = dbx_error_setx(err, EPIPE, "the supervisor went away (the VM stopped?)");
            break;
        }
        dbx_reader_feed(&rd, buf, (size_t)got);
    }
    dbx_reader_free(&rd);
    return r;
}
#endif

char *dbx_size_human(uint64_t n, bool exact) {
    static const char units[] = "KMGTPE";
    if (n < 1024) return dbx_xasprintf("%lluB", (unsigned long long)n);
    int u = 0;
    uint64_t div = 1024;
    while (u < 5 && n / div >= 1024) {
        div *= 1024;
        u++;
    }
    if (exact && n % div == 0)
        return dbx_xasprintf("%llu%c", (unsigned long long)(n / div), units[u]);
    return dbx_xasprintf("%.1f%c", (double)n / (double)div, units[u]);
}

char *dbx_duration_human(uint64_t us) {
    uint64_t s = us / 1000000;
    if (s < 60) return dbx_xasprintf("%.2fs", (double)us / 1e6);
    if (s < 3600)
        return dbx_xasprintf("%llum%02llus", (unsigned long long)(s / 60),
                             (unsigned long long)(s % 60));
    return dbx_xasprintf("%lluh%02llum", (unsigned long long)(s / 3600),
                         (unsigned long long)(s / 60 % 60));
}

/* The command line as the user typed it, cut to about NOTICE_CMD_MAX characters. */
static char *cmd_short(char *const *argv) {
    if (!argv || !argv[0]) return dbx_xstrdup("the login shell");
    struct dbx_buf b = {0};
    for (size_t i = 0; argv[i] && b.len <= NOTICE_CMD_MAX; i++) {
        if (i) dbx_buf_put(&b, " ", 1);
        dbx_buf_put(&b, argv[i], strlen(argv[i]));
    }
    bool cut = b.len > NOTICE_CMD_MAX;
    const char *t = (const char *)b.data;
    size_t n = cut ? dbx_escape_cut(t, NOTICE_CMD_MAX - 3) : b.len; /* whole UTF-8 characters */
    _cleanup_free_ char *e = dbx_escape_n(t, n, 0);
    dbx_buf_free(&b);
    return dbx_xasprintf("'%s%s'", e, cut ? "..." : "");
}

char *dbx_notice_line(const struct dbx_notice *nt, char *const *argv) {
    _cleanup_free_ char *cmd = cmd_short(argv);
    if (nt->kind == DBX_NOTICE_PIDS) {
        if (nt->limit == UINT64_MAX)
            return dbx_xasprintf("%s hit the box's process limit (%llu processes)", cmd,
                                 (unsigned long long)nt->value);
        return dbx_xasprintf("%s hit the box's process limit (pids.max %llu)", cmd,
                             (unsigned long long)nt->limit);
    }
    _cleanup_free_ char *peak = dbx_size_human(nt->value, false);
    if (nt->limit == UINT64_MAX)
        return dbx_xasprintf("%s was killed: out of memory (the VM's memory, peak %s)", cmd, peak);
    _cleanup_free_ char *lim = dbx_size_human(nt->limit, true);
    return dbx_xasprintf("%s was killed: out of memory (limit %s, peak %s)", cmd, lim, peak);
}

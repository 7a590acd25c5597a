/* sandbox/cmd-stats.c: `devbox stats [--json] [--watch] [PATH|ID]`: the box cgroup's counters, in
 * human units or as one JSON object; --watch asks again every 2 s until interrupted. */
#define _GNU_SOURCE
#include "commands.h"
#include "sandbox-internal.h"

#include <time.h>

#define WATCH_INTERVAL_MS 2000

static char *value_str(const struct dbx_stats *st, const char *key, bool size) {
    uint64_t v;
    if (!dbx_stats_find(st, key, &v)) return dbx_xstrdup("-");
    if (v == UINT64_MAX) return dbx_xstrdup("no limit");
    /* a limit is what the user wrote ("128M"), a measure one decimal ("63.9M") */
    if (size) return dbx_size_human(v, strstr(key, "_max") != NULL);
    return dbx_xasprintf("%llu", (unsigned long long)v);
}

static char *usec_str(const struct dbx_stats *st, const char *key) {
    uint64_t v;
    return dbx_stats_find(st, key, &v) ? dbx_duration_human(v) : dbx_xstrdup("-");
}

/* prev: the previous sample of --watch (NULL: none), for the CPU share in between. */
static void print_human(const struct dbx_stats *st, const struct dbx_stats *prev,
                        uint64_t elapsed_us) {
    if (st->n == 0) {
        printf("the box has no cgroup (permissive profile): no counters\n");
        return;
    }
    _cleanup_free_ char *cpu = usec_str(st, "cpu_usage_us");
    _cleanup_free_ char *thr = usec_str(st, "cpu_throttled_us");
    _cleanup_free_ char *nthr = value_str(st, "nr_throttled", false);
    uint64_t now_us, prev_us;
    _cleanup_free_ char *share = NULL;
    if (prev && elapsed_us && dbx_stats_find(st, "cpu_usage_us", &now_us) &&
        dbx_stats_find(prev, "cpu_usage_us", &prev_us) && now_us >= prev_us)
        share = dbx_xasprintf(", %.0f%% of a CPU now",
                              100.0 * (double)(now_us - prev_us) / (double)elapsed_us);
    printf("%-13s %s used%s, %s throttled (%s times)\n", "cpu", cpu, share ? share : "", thr, nthr);
    _cleanup_free_ char *mcur = value_str(st, "memory_current", true);
    _cleanup_free_ char *mmax = value_str(st, "memory_max", true);
    _cleanup_free_ char *mpeak = value_str(st, "memory_peak", true);
    printf("%-13s %s of %s, peak %s\n", "memory", mcur, mmax, mpeak);
    _cleanup_free_ char *swap = value_str(st, "swap_current", true);
    printf("%-13s %s\n", "swap", swap);
    _cleanup_free_ char *pcur = value_str(st, "pids_current", false);
    _cleanup_free_ char *pmax = value_str(st, "pids_max", false);
    printf("%-13s %s of %s\n", "pids", pcur, pmax);
    _cleanup_free_ char *rd = value_str(st, "io_read_bytes", true);
    _cleanup_free_ char *wr = value_str(st, "io_write_bytes", true);
    printf("%-13s %s read, %s written\n", "io", rd, wr);
    _cleanup_free_ char *oom = value_str(st, "oom_kills", false);
    _cleanup_free_ char *ref = value_str(st, "pids_refused", false);
    printf("%-13s %s (since the box started)\n", "oom kills", oom);
    printf("%-13s %s forks at pids.max (since the box started)\n", "pids refused", ref);
}

/* Keys are [a-z0-9_] (the decoder checks): printed as they are.  "no limit" is null. */
static void print_json(const struct dbx_stats *st) {
    printf("{");
    for (uint32_t i = 0; i < st->n; i++) {
        if (st->v[i].value == UINT64_MAX)
            printf("%s\"%s\":null", i ? "," : "", st->v[i].key);
        else
            printf("%s\"%s\":%llu", i ? "," : "", st->v[i].key, (unsigned long long)st->v[i].value);
    }
    printf("}\n");
}

int cmd_stats(struct cmd_ctx *ctx, int argc, char **argv) {
    bool json = false, watch = false;
    const struct cmd_opt opts[] = {
        {"--json", NULL, .flag = &json}, {"--watch", NULL, .flag = &watch}, {NULL}};
    struct dbx_project proj = {0};
    int rc = cmd_args_project(ctx, argc, argv, opts, &proj);
    if (rc) return rc;
    struct dbx_stats prev = {0};
    uint64_t prev_ms = 0;
    bool clear = watch && !json && isatty(1);
    for (;;) {
        struct dbx_stats st = {0};
        _cleanup_error_ dbx_error *err = NULL;
        if (dbx_stats_request(&ctx->paths, &proj, &st, &err) < 0) {
            /* a stopped box has no counters: as ps and status, a state, not a failure (JSON:
             * {}); one that stops under --watch ends the watch the same way */
            if (err->code != ENOENT) {
                rc = cmd_fail(&err);
            } else if (json) {
                printf("{}\n");
            } else {
                printf("the box is not running\n");
            }
            break;
        }
        uint64_t now = dbx_now_ms();
        if (clear) printf("\033[H\033[2J");
        if (json)
            print_json(&st);
        else
            print_human(&st, prev_ms ? &prev : NULL, (now - prev_ms) * 1000);
        fflush(stdout);
        dbx_stats_clear(&prev);
        prev = st;
        prev_ms = now;
        if (!watch) break;
        struct timespec ts = {WATCH_INTERVAL_MS / 1000, 0};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
        if (!clear && !json) printf("\n");
    }
    dbx_stats_clear(&prev);
    dbx_project_clear(&proj);
    return rc;
}

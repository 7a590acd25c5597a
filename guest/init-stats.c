/* guest/init-stats.c: the box cgroup's counters (STATS -> STATS_REPLY), and NOTICE: why a
 * command died when the box's limits explain it.
 *
 * Attribution is by the box-wide counters' change while the session ran (memory.events
 * oom_kill, pids.events max) plus the command's own status: an OOM notice needs a SIGKILL (the
 * command's, or a shell's 137 for a child's), a pids notice any failure.  Two commands failing
 * at once may both be told; a command that survived its child's OOM kill is not. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <signal.h>
#include <sys/wait.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CG_FILE_MAX (64u * 1024u) /* io.stat grows with block devices; the rest are a line */

/* The box cgroup's directory (init-policy.c makes ROOT/box), or -1: the box has none (the
 * permissive plan, or --serve-fd without DEVBOX_TEST_CGROUP). */
static int box_dir(struct agent *a) {
    const char *root = a->test_mode ? getenv("DEVBOX_TEST_CGROUP") : CGROUP_ROOT;
    if (!root || !root[0]) return -1;
    _cleanup_free_ char *p = dbx_xasprintf("%s/box", root);
    return open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

static char *cg_read(int dfd, const char *name) {
    char *buf = NULL;
    size_t n = 0;
    if (dbx_read_file_at(dfd, name, CG_FILE_MAX, &buf, &n, NULL) < 0) return NULL;
    return buf;
}

/* A one-value file: a number, or "max" (UINT64_MAX). */
static bool cg_value(int dfd, const char *name, uint64_t *ret) {
    _cleanup_free_ char *t = cg_read(dfd, name);
    if (!t) return false;
    t[strcspn(t, "\n")] = '\0';
    if (strcmp(t, "max") == 0) {
        *ret = UINT64_MAX;
        return true;
    }
    return dbx_parse_u64(t, 0, UINT64_MAX, ret) == 0;
}

/* A flat keyed file (cpu.stat, memory.events, pids.events): the value on the line "key N". */
static bool cg_keyed(int dfd, const char *name, const char *key, uint64_t *ret) {
    _cleanup_free_ char *t = cg_read(dfd, name);
    size_t k = strlen(key);
    for (char *save = NULL, *l = t ? strtok_r(t, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save))
        if (strncmp(l, key, k) == 0 && l[k] == ' ')
            return dbx_parse_u64(l + k + 1, 0, UINT64_MAX, ret) == 0;
    return false;
}

/* io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device, summed. */
static bool cg_io(int dfd, uint64_t *rd, uint64_t *wr) {
    _cleanup_free_ char *t = cg_read(dfd, "io.stat");
    if (!t) return false;
    *rd = *wr = 0;
    for (char *save = NULL, *w = strtok_r(t, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
        uint64_t v;
        bool r = dbx_str_has_prefix(w, "rbytes="), wb = dbx_str_has_prefix(w, "wbytes=");
        if ((r || wb) && dbx_parse_u64(w + 7, 0, UINT64_MAX, &v) == 0) *(r ? rd : wr) += v;
    }
    return true;
}

/* Every counter the kernel has, under the names of common/protocol.h. */
static void stats_collect(int dfd, struct dbx_stats *st) {
    static const struct {
        const char *key, *file, *line; /* line NULL: a one-value file */
    } tab[] = {
        {"cpu_usage_us", "cpu.stat", "usage_usec"},
        {"cpu_throttled_us", "cpu.stat", "throttled_usec"},
        {"nr_throttled", "cpu.stat", "nr_throttled"},
        {"memory_current", "memory.current", NULL},
        {"memory_peak", "memory.peak", NULL},
        {"memory_max", "memory.max", NULL},
        {"swap_current", "memory.swap.current", NULL},
        {"pids_current", "pids.current", NULL},
        {"pids_max", "pids.max", NULL},
        {"oom_kills", "memory.events", "oom_kill"},
        {"pids_refused", "pids.events", "max"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(tab); i++) {
        uint64_t v;
        bool ok = tab[i].line ? cg_keyed(dfd, tab[i].file, tab[i].line, &v)
                              : cg_value(dfd, tab[i].file, &v);
        if (ok) dbx_stats_add(st, tab[i].key, v);
    }
    uint64_t rd, wr;
    if (cg_io(dfd, &rd, &wr)) {
        dbx_stats_add(st, "io_read_bytes", rd);
        dbx_stats_add(st, "io_write_bytes", wr);
    }
}

void stats_on_request(struct agent *a, const uint8_t *p, uint32_t n) {
    struct dbx_stats st = {0};
    if (dbx_dec_u64(p, n, &st.token) < 0) {
        agent_send_error(a, 0, DBX_ERR_FAILED, "malformed stats frame");
        return;
    }
    _cleanup_close_ int dfd = box_dir(a);
    if (dfd >= 0) stats_collect(dfd, &st);
    struct dbx_buf b = {0};
    dbx_stats_encode(&st, &b);
    agent_send(a, DBX_MSG_STATS_REPLY, 0, b.data, b.len);
    dbx_buf_free(&b);
    dbx_stats_clear(&st);
}

/* ---- NOTICE ----------------------------------------------------------------------------- */

void stats_session_start(struct agent *a, struct session *s) {
    _cleanup_close_ int dfd = box_dir(a);
    s->oom_kills0 = s->pids_refused0 = UINT64_MAX; /* unknown: never a notice */
    if (dfd < 0) return;
    if (!cg_keyed(dfd, "memory.events", "oom_kill", &s->oom_kills0)) s->oom_kills0 = UINT64_MAX;
    if (!cg_keyed(dfd, "pids.events", "max", &s->pids_refused0)) s->pids_refused0 = UINT64_MAX;
}

/* A counter that was known at the start and grew since. */
static bool grew(int dfd, const char *file, const char *key, uint64_t before) {
    uint64_t now;
    return before != UINT64_MAX && cg_keyed(dfd, file, key, &now) && now > before;
}

void stats_session_end(struct agent *a, struct session *s) {
    if (!s->exited || s->oom_kills0 == UINT64_MAX) return;
    bool sigkill = (WIFSIGNALED(s->status) && WTERMSIG(s->status) == SIGKILL) ||
                   (WIFEXITED(s->status) && WEXITSTATUS(s->status) == 128 + SIGKILL);
    bool failed = !WIFEXITED(s->status) || WEXITSTATUS(s->status) != 0;
    if (!failed) return;
    _cleanup_close_ int dfd = box_dir(a);
    if (dfd < 0) return;
    struct dbx_notice nt = {0};
    if (sigkill && grew(dfd, "memory.events", "oom_kill", s->oom_kills0)) {
        nt.kind = DBX_NOTICE_OOM;
        if (!cg_value(dfd, "memory.max", &nt.limit)) nt.limit = UINT64_MAX;
        if (!cg_value(dfd, "memory.peak", &nt.value) && !cg_value(dfd, "memory.current", &nt.value))
            nt.value = 0;
    } else if (grew(dfd, "pids.events", "max", s->pids_refused0)) {
        nt.kind = DBX_NOTICE_PIDS;
        if (!cg_value(dfd, "pids.max", &nt.limit)) nt.limit = UINT64_MAX;
        if (!cg_value(dfd, "pids.current", &nt.value)) nt.value = 0;
    } else {
        return;
    }
    uint8_t b[DBX_NOTICE_LEN];
    agent_send(a, DBX_MSG_NOTICE, s->id, b, dbx_enc_notice(b, &nt));
}

/* guest/init-stats.c: the box cgroup's counters (STATS -> STATS_REPLY), and NOTICE: why a
 * command died when the box's limits explain it.
 *
 * Attribution is by a counter's change while the session ran plus the command's own status.
 * OOM: the oom_kill count of the session's own leaf box/s<id> (memory.events is hierarchical,
 * and the kernel charges a kill to the victim's cgroup and its ancestors, so it counts exactly
 * the kills among the command's processes, whoever else shares the box), and a SIGKILL (the
 * command's, or a shell's 137 for a child's); the box's count only when the session has no leaf
 * or the leaf has no memory controller (stats_setup enables it below the box: no limit of its
 * own, the box's covers every leaf).  Pids: the box's pids.events max (the
 * kernel counts a refused fork at the cgroup whose limit refused it, the box, not the leaf of
 * the process that forked), and any failure: two commands failing while the box was full may
 * both be told.  No NOTICE at all for a command the host ended: --timeout (the leaf killed, EXIT
 * 124) or a death by a signal the host sent (SIGNAL: Ctrl-C, the client going away).  A
 * `devbox kill` of a single process (KILL) is not tracked per session; with a leaf it cannot
 * look like an OOM kill, and it can look like a pids refusal only while the box refused forks.
 * A command that survived its child's OOM kill is not told. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <inttypes.h>
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

void stats_setup(struct agent *a) {
    if (a->box.cg_box_fd < 0) return;
    _cleanup_close_ int fd =
        openat(a->box.cg_box_fd, "cgroup.subtree_control", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && write(fd, "+memory", 7) == 7) return;
    init_log("setup: no memory controller in the commands' cgroups (an OOM NOTICE goes by the "
             "box's count): %s",
             strerror(errno));
}

/* The box's oom_kill and pids-refusal counts through its directory dfd (-1: unknown). */
static void box_counts_at(int dfd, uint64_t *ret_oom_kills, uint64_t *ret_pids_refused) {
    *ret_oom_kills = *ret_pids_refused = UINT64_MAX; /* unknown: no notice */
    if (dfd < 0) return;
    if (!cg_keyed(dfd, "memory.events", "oom_kill", ret_oom_kills)) *ret_oom_kills = UINT64_MAX;
    if (!cg_keyed(dfd, "pids.events", "max", ret_pids_refused)) *ret_pids_refused = UINT64_MAX;
}

void stats_box_counts(struct agent *a, uint64_t *ret_oom_kills, uint64_t *ret_pids_refused) {
    _cleanup_close_ int dfd = box_dir(a);
    box_counts_at(dfd, ret_oom_kills, ret_pids_refused);
}

void stats_session_start(struct agent *a, struct session *s) {
    /* The spare leaf made for this session while the box was idle (init-procs.c): no process
     * yet, and the box's counts read then, which took 0.27 ms of a warm exec's 9-11 under TCG
     * (2026-12-04).  A limit a lingering process hits between then and now counts as this
     * session's, as one a concurrent session hits while this one runs always has. */
    if (a->spare.id && a->spare.id == s->id) {
        s->oom_kills0 = a->spare.oom_kills0;
        s->pids_refused0 = a->spare.pids_refused0;
        s->leaf_oom_kills0 = 0;
        return;
    }
    s->leaf_oom_kills0 = UINT64_MAX;
    _cleanup_close_ int dfd = box_dir(a);
    box_counts_at(dfd, &s->oom_kills0, &s->pids_refused0);
    if (dfd < 0) return;
    /* The leaf is made after this (init-procs.c); one an earlier session of the id left behind
     * with a daemon in it is reused and keeps its count. */
    char name[16];
    snprintf(name, sizeof(name), "s%" PRIu32, s->id);
    _cleanup_close_ int lfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (lfd < 0 && errno == ENOENT)
        s->leaf_oom_kills0 = 0;
    else if (lfd < 0 || !cg_keyed(lfd, "memory.events", "oom_kill", &s->leaf_oom_kills0))
        s->leaf_oom_kills0 = UINT64_MAX;
}

/* A counter that was known at the start and grew since. */
static bool grew(int dfd, const char *file, const char *key, uint64_t before) {
    uint64_t now;
    return before != UINT64_MAX && cg_keyed(dfd, file, key, &now) && now > before;
}

/* An OOM kill among the session's processes: its leaf's count (still there: EXIT, and so this,
 * comes before procs_leaf_release), or without one the box's. */
static bool oom_killed(int box, const struct session *s) {
    uint64_t now;
    if (s->cg_fd >= 0 && s->leaf_oom_kills0 != UINT64_MAX &&
        cg_keyed(s->cg_fd, "memory.events", "oom_kill", &now))
        return now > s->leaf_oom_kills0;
    return grew(box, "memory.events", "oom_kill", s->oom_kills0);
}

/* The command died of a signal the host sent (or a shell reported it as 128+N). */
static bool host_killed(const struct session *s) {
    int sig = (int)s->host_sig;
    return sig == SIGKILL || (sig && WIFSIGNALED(s->status) && WTERMSIG(s->status) == sig) ||
           (sig && WIFEXITED(s->status) && WEXITSTATUS(s->status) == 128 + sig);
}

void stats_session_end(struct agent *a, struct session *s) {
    if (!s->exited || s->oom_kills0 == UINT64_MAX || s->timed_out || host_killed(s)) return;
    bool sigkill = (WIFSIGNALED(s->status) && WTERMSIG(s->status) == SIGKILL) ||
                   (WIFEXITED(s->status) && WEXITSTATUS(s->status) == 128 + SIGKILL);
    bool failed = !WIFEXITED(s->status) || WEXITSTATUS(s->status) != 0;
    if (!failed) return;
    _cleanup_close_ int dfd = box_dir(a);
    if (dfd < 0) return;
    struct dbx_notice nt = {0};
    if (sigkill && oom_killed(dfd, s)) {
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

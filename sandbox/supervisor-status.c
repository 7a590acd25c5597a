/* sandbox/supervisor-status.c: the status record of the running VM (struct dbx_status, encoded
 * by sandbox-status.c): answered to `devbox status` on the control socket and kept in the run
 * dir for clients that only need the network mode or the profile it started with.  Runs on the
 * poll loop's thread (sandbox-supervisor.c). */
#define _GNU_SOURCE
#include "supervisor-internal.h"

static uint64_t proc_rss_kib(pid_t pid) {
    _cleanup_free_ char *path = dbx_xasprintf("/proc/%d/status", (int)pid);
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    char line[256];
    unsigned long long v = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %llu kB", &v) == 1) break;
    return v;
}

void sup_status(struct sup *s, struct dbx_status *ret) {
    struct dbx_status st = {
        .state = s->guest.stopping  ? DBX_VM_STOPPING
                 : s->guest.nospace ? DBX_VM_PAUSED
                                    : DBX_VM_RUNNING,
        .project = dbx_xstrdup(s->proj.root),
        .image = dbx_xstrdup(s->rec.image ? s->rec.image : ""),
        .pid = (int32_t)getpid(),
        .qemu_pid = (int32_t)s->vm.qemu_pid,
        .virtiofsd_pid = (int32_t)s->vm.vfs_pid,
        .accel = dbx_xstrdup(vm_accel_name(s->vm.accel)),
        .kernel = dbx_xstrdup(s->guest.release ? s->guest.release : ""),
        .uptime_s = (dbx_now_ms() - s->vm.started_ms) / 1000,
        .memory_mib = s->prof.memory >> 20,
        .rss_kib = proc_rss_kib(s->vm.qemu_pid),
        .cpus = s->prof.cpus,
        .sessions = s->relay.nsess,
        .started = s->vm.started_wall,
        .network = s->plan.net_mode <= DBX_NET_OPEN ? (uint8_t)s->plan.net_mode : DBX_NET_NONE,
        .seccomp = s->plan.seccomp_mode == DBX_SECCOMP_STRICT ? DBX_SECCOMP_STRICT
                   : s->plan.seccomp_mode                     ? DBX_SECCOMP_DEFAULT
                                                              : DBX_SECCOMP_UNCONFINED,
        .connections = net_nsocks(s->net),
        .ports = s->net ? net_port_list(s->net) : dbx_xstrdup(""),
        .protected_writes = s->protect.count,
        .protected_first = s->protect.first[0] ? dbx_xstrdup(s->protect.first) : NULL,
        .idle_s = sup_idle_for(&s->idle.clock, dbx_now_ms()) / 1000,
        .idle_stop_s = s->idle.clock.stop_ms / 1000,
        .aslr = sup_no_randomize(s) ? DBX_ASLR_OFF : DBX_ASLR_ON,
    };
    memcpy(st.id, s->proj.id, sizeof(st.id));
    for (char **f = s->prof.files; f && *f; f++)
        st.profile_files = dbx_strv_push(st.profile_files, *f);
    snprintf(st.profile_hash, sizeof(st.profile_hash), "%s", s->prof.hash);
    *ret = st;
}

int sup_write_status_file(struct sup *s, dbx_error **err) {
    struct dbx_status st = {0};
    struct dbx_buf b = {0};
    sup_status(s, &st);
    dbx_status_encode(&st, &b);
    dbx_status_clear(&st);
    _cleanup_close_ int dfd = open(s->proj.run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = dfd < 0 ? dbx_error_set(err, errno, "open '%s'", s->proj.run_dir)
                    : dbx_write_file_atomic(dfd, DBX_STATUS_NAME, b.data, b.len, 0600, err);
    dbx_buf_free(&b);
    return r;
}

void sup_protected_frame(struct sup *s, const struct dbx_frame_hdr *h, const uint8_t *p) {
    _cleanup_error_ dbx_error *err = NULL;
    uint64_t before = s->protect.count;
    int r = dbx_protected_update(&s->protect, p, h->len, s->plan.protected, s->plan.nprotected,
                                 dbx_now_ms(), &err);
    if (r == -EAGAIN) return; /* a flood: logging each would be one too */
    if (r < 0) {
        sup_log("ignoring the guest's %s", err->msg);
        return;
    }
    sup_event_protected(s, s->protect.count, s->protect.first);
    if (before == 0) { /* the first only: the rest is `devbox status`'s to say */
        _cleanup_free_ char *first = dbx_escape(s->protect.first);
        sup_log("the box tried to write a protected path: '%s'", first);
    }
}

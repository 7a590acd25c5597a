/* sandbox/supervisor-status.c: the status record of the running VM: answered to `devbox status`
 * on the control socket and kept in the run dir for clients that only need the network mode or
 * the profile it started with.  Runs on the poll loop's thread (sandbox-supervisor.c). */
#define _GNU_SOURCE
#include "supervisor-internal.h"

#include <jansson.h>

static uint64_t proc_rss_kib(pid_t pid) {
    _cleanup_free_ char *path = dbx_xasprintf("/proc/%d/status", (int)pid);
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    char line[256];
    unsigned long long v = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %llu kB", &v) == 1) break;
    return v;
}

char *sup_status_json(struct sup *s) {
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:i, s:i, s:i, s:s, s:I, s:I, s:I, s:i, s:s, s:s, s:I, s:i}", "state",
        s->guest.stopping  ? "stopping"
        : s->guest.nospace ? "paused"
                           : "running",
        "project", s->proj.root, "id", s->proj.id, "pid", (int)getpid(), "qemu_pid",
        (int)s->vm.qemu_pid, "virtiofsd_pid", (int)s->vm.vfs_pid, "accel",
        vm_accel_name(s->vm.accel), "uptime_s",
        (json_int_t)((dbx_now_ms() - s->vm.started_ms) / 1000), "memory_mib",
        (json_int_t)(s->prof.memory >> 20), "rss_kib", (json_int_t)proc_rss_kib(s->vm.qemu_pid),
        "cpus", (int)s->prof.cpus, "image", s->rec.image, "kernel",
        s->guest.release ? s->guest.release : "", "started", (json_int_t)s->vm.started_wall,
        "sessions", (int)s->relay.nsess);
    if (j) {
        json_object_set_new(j, "profile_hash", json_string(s->prof.hash));
        /* which repo files that hash covers, in order: a client re-hashes just those */
        json_t *files = json_array();
        for (char **f = s->prof.files; f && *f; f++)
            json_array_append_new(files, json_string(*f));
        json_object_set_new(j, "profile_files", files);
        static const char *const modes[] = {"none", "allowlist", "open"};
        json_object_set_new(j, "network",
                            json_string(modes[s->plan.net_mode <= 2 ? s->plan.net_mode : 0]));
        json_object_set_new(j, "connections", json_integer((json_int_t)net_nsocks(s->net)));
        if (s->net) {
            char *ports = net_port_list(s->net);
            json_object_set_new(j, "ports", json_string(ports));
            free(ports);
        }
        json_object_set_new(j, "seccomp",
                            json_string(s->plan.seccomp_mode == DBX_SECCOMP_STRICT ? "strict"
                                        : s->plan.seccomp_mode                     ? "default"
                                                                                   : "unconfined"));
    }
    char *out = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!out) dbx_oom_hook();
    return out;
}

int sup_write_status_file(struct sup *s, dbx_error **err) {
    _cleanup_free_ char *j = sup_status_json(s);
    _cleanup_close_ int dfd = open(s->proj.run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return dbx_error_set(err, errno, "open '%s'", s->proj.run_dir);
    return dbx_write_file_atomic(dfd, DBX_STATUS_NAME, j, strlen(j), 0600, err);
}

/* sandbox/supervisor-vm.c: the VM's life in the supervisor: what a boot needs on disk (profile,
 * trust, kernel, the project's disk), starting virtiofsd, passt and QEMU, booting with the
 * KVM -> TCG fallback and a retry, the guest's hello and setup, and killing the children.  Runs
 * on the poll loop's thread (sandbox-supervisor.c). */
#define _GNU_SOURCE
#include "supervisor-internal.h"
#include "../common/spawn.h"
#include "../mounts/mounts.h"
#include "../policy/policy.h"

#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define KVM_HELLO_MS 10000
#define TCG_HELLO_MS 45000
#define TCG_BOOT_TRIES 2 /* a TCG boot that never says hello is retried once (loaded hosts) */
#define READY_MS 30000

/* ---- logs ------------------------------------------------------------------------------- */

static int logsink_open(struct logsink *l, const char *path, int *ret_write_end, dbx_error **err) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    l->out = dbx_log_create(AT_FDCWD, path, 0);
    if (l->out < 0) {
        close(p[0]);
        close(p[1]);
        return dbx_error_set(err, errno, "open '%s'", path);
    }
    dbx_set_nonblock(p[0], true);
    l->in = p[0];
    l->written = 0;
    l->tail_len = 0;
    *ret_write_end = p[1];
    return 0;
}

/* Drain what is readable; keep at most DBX_LOG_CAP bytes on disk (the guest can write to the
 * console as fast as it likes) and the last bytes for error messages. */
void sup_logsink_pump(struct logsink *l) {
    char buf[8192];
    for (;;) {
        ssize_t n = read(l->in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                close(l->in);
                l->in = -1;
            }
            return;
        }
        if (l->written < DBX_LOG_CAP) {
            size_t k = (size_t)n;
            if (k > DBX_LOG_CAP - l->written) k = DBX_LOG_CAP - l->written;
            (void)dbx_write_all(l->out, buf, k);
            l->written += k;
            if (l->written >= DBX_LOG_CAP) {
                static const char m[] = "\n[devbox: log truncated]\n";
                (void)dbx_write_all(l->out, m, sizeof(m) - 1);
            }
        }
        size_t k = (size_t)n > sizeof(l->tail) ? sizeof(l->tail) : (size_t)n;
        if (l->tail_len + k > sizeof(l->tail)) {
            size_t drop = l->tail_len + k - sizeof(l->tail);
            memmove(l->tail, l->tail + drop, l->tail_len - drop);
            l->tail_len -= drop;
        }
        memcpy(l->tail + l->tail_len, buf + n - k, k);
        l->tail_len += k;
    }
}

static void logsink_close(struct logsink *l) {
    if (l->in >= 0) {
        sup_logsink_pump(l);
        close(l->in);
    }
    if (l->out >= 0) close(l->out);
    l->in = l->out = -1;
}

/* Last non-empty line of a log tail, sanitized, for one-line errors. */
static char *logsink_last_line(struct logsink *l) {
    _cleanup_free_ char *t = dbx_xstrndup(l->tail, l->tail_len);
    char *end = t + strlen(t);
    while (end > t && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        *--end = '\0';
    char *start = end;
    while (start > t && start[-1] != '\n')
        start--;
    return dbx_sanitize_printable(dbx_xstrdup(start));
}

/* ---- the guest's hello ------------------------------------------------------------------- */

char *sup_skew_error(unsigned version) {
    return dbx_xasprintf("the guest init speaks protocol version %u and devbox %u: devbox-init "
                         "comes from another build (check DEVBOX_INIT)",
                         version, DBX_PROTO_VERSION);
}

/* ---- issue 13: extra shares (helper D2) ---- */

static char *share_tag(size_t i) {
    return dbx_xasprintf("share%zu", i);
}

static char *share_sock(struct sup *s, size_t i) {
    return dbx_xasprintf("%s/vfs-%zu.sock", s->proj.run_dir, i);
}

const char *sup_share_reaped(struct sup *s, pid_t pid) {
    for (size_t i = 0; i < s->nshares; i++)
        if (pid > 0 && s->shares[i].pid == pid) {
            s->shares[i].pid = -1;
            return s->shares[i].host;
        }
    return NULL;
}

void sup_shares_free(struct sup *s) {
    for (size_t i = 0; i < s->nshares; i++) {
        free(s->shares[i].host);
        free(s->shares[i].guest);
        dbx_strv_free(s->shares[i].protected);
        dbx_strv_free(s->shares[i].writable);
    }
    s->nshares = 0;
}

static void share_add(struct sup *s, const char *host, const char *guest, bool ro, char **protected,
                      char **writable, bool gitdir) {
    s->shares[s->nshares++] = (struct sup_share){.host = dbx_xstrdup(host),
                                                 .guest = dbx_xstrdup(guest),
                                                 .readonly = ro,
                                                 .protected = protected,
                                                 .writable = writable,
                                                 .gitdir = gitdir,
                                                 .pid = -1};
}

/* every [mounts] line the profile allows, with the worktree's repository besides */
_Static_assert(DBX_SHARES_MAX >= PROFILE_MAX_MOUNTS + 1 && VM_SHARES_MAX >= DBX_SHARES_MAX,
               "room for a worktree's repository and every [mounts] share");

/* The shares of this box: a linked worktree's repository (read-write, at its host path, under
 * the git-directory rule), then the profile's [mounts] (read-only unless rw; the profile
 * checked them, and their trust, already). */
static int shares_find(struct sup *s, dbx_error **err) {
    sup_shares_free(s);
    struct mounts_worktree wt = {0};
    if (mounts_worktree_find(s->proj.root, &wt, err) < 0) return -1;
    if (wt.common) {
        share_add(s, wt.common, wt.common, false, TAKE_PTR(wt.protected), TAKE_PTR(wt.writable),
                  true);
        mounts_worktree_clear(&wt);
    }
    for (size_t i = 0; i < s->prof.nmounts; i++) {
        const struct profile_mount *m = &s->prof.mounts[i];
        if (s->nshares >= DBX_SHARES_MAX)
            return dbx_error_setx(err, E2BIG, "%s:%u: more than %u shares", m->file, m->line,
                                  DBX_SHARES_MAX);
        share_add(s, m->host, m->guest, !m->rw, NULL, NULL, false);
    }
    return 0;
}

/* A virtiofsd started (its guard setting up) but not yet through its handshake
 * (mounts_virtiofsd_start), and where its pid goes once it is. */
struct vfs_start {
    struct mounts_vfs_pending p;
    pid_t *pid;
    const char *share; /* the [mounts] or repository host path, NULL for the workspace */
};

/* Start one virtiofsd (the workspace's or a share's) and note it in v[*n]; its pid, the
 * guard's, goes to *pid at once, so that sup_kill_children stops it should anything after
 * fail. */
static int vfs_start(const struct mounts_vfs_config *vc, const struct mounts_idmap *map, pid_t *pid,
                     const char *share, struct vfs_start *v, size_t *n, dbx_error **err) {
    struct vfs_start *e = &v[*n];
    if (mounts_virtiofsd_start(vc, map, &e->p, err) < 0)
        return share ? dbx_error_wrap(err, "start virtiofsd for '%s'", share)
                     : dbx_error_wrap(err, "start virtiofsd");
    e->pid = pid;
    e->share = share;
    *pid = e->p.pid;
    (*n)++;
    return 0;
}

/* Finish the started virtiofsds in the order they started; the first failure is the error
 * (the rest are left to sup_kill_children, their sync sockets to vfs_close). */
static int vfs_finish(struct vfs_start *v, size_t n, const struct mounts_idmap *map,
                      dbx_error **err) {
    for (size_t i = 0; i < n; i++) {
        *v[i].pid = mounts_virtiofsd_finish(&v[i].p, map, err);
        if (*v[i].pid < 0)
            return v[i].share ? dbx_error_wrap(err, "start virtiofsd for '%s'", v[i].share)
                              : dbx_error_wrap(err, "start virtiofsd");
    }
    return 0;
}

static void vfs_close(struct vfs_start *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (v[i].p.sync_fd >= 0) close(v[i].p.sync_fd);
}

/* virtiofsd's guard: devbox-guard next to this devbox (the build tree and lib/devbox alike), a
 * small program (libseccomp and libc) that starts in under 1 ms, where the full devbox (NULL:
 * /proc/self/exe) loads 53 libraries it never uses for the guard, 9 ms.  Looked up once; the
 * supervisor's binary does not move under it. */
static const char *guard_exe(void) {
    static char *path; /* the supervisor's, for its whole life */
    static bool done;
    if (!done) {
        done = true;
        path = dbx_find_beside_self("devbox-guard", X_OK);
    }
    return path;
}

/* One virtiofsd per share, as the workspace's (same id mapping, log, lifecycle), started
 * into v; QEMU gets their sockets in *ret (paths owned by the caller: free with
 * dbx_strv_free). */
static int shares_start(struct sup *s, const struct mounts_idmap *map, int log_fd,
                        char ***ret_socks, struct vfs_start *v, size_t *n, dbx_error **err) {
    for (size_t i = 0; i < s->nshares; i++) {
        /* [mounts] hosts had no symbolic link when the profile was loaded; one swapped in
         * since is refused, not followed (profiles.h) */
        int dfd = mounts_open_dir_nofollow(s->shares[i].host, "share", err);
        if (dfd < 0) return -1;
        struct stat st; /* before its virtiofsd opens it, as the workspace's */
        s->shares[i].id = sup_dir_id_of(fstat(dfd, &st) == 0 ? &st : NULL);
        close(dfd);
        _cleanup_free_ char *path = share_sock(s, i);
        _cleanup_close_ int fd = sup_listen_unix(path, 1, err);
        if (fd < 0) return -1;
        dbx_set_nonblock(fd, false);
        *ret_socks = dbx_strv_push(*ret_socks, path);
        struct mounts_vfs_config vc = {.source = s->shares[i].host,
                                       .listen_fd = fd,
                                       .log_fd = log_fd,
                                       .protected = (const char *const *)s->shares[i].protected,
                                       .writable = (const char *const *)s->shares[i].writable,
                                       .guard_exe = guard_exe(),
                                       .readonly = s->shares[i].readonly,
                                       .gitdir = s->shares[i].gitdir};
        if (vfs_start(&vc, map, &s->shares[i].pid, s->shares[i].host, v, n, err) < 0) return -1;
    }
    return 0;
}

/* TCG finds the code it translated by virtual address, so a program whose libraries land
 * elsewhere each time is translated afresh at every start: in a Debian box under TCG, 200 runs
 * of the dynamically linked /bin/true took 4.8-5.4 s randomized and 0.77-0.87 s at fixed
 * addresses; cJSON's cmake configure 51-57 s vs 22-25 s, its build 93-94 s vs 57-58 s
 * (2026-12-05, alternating boots).  Final only once the guest said HELLO: a KVM attempt that
 * failed falls back to TCG before.  KVM keeps randomization. */
bool sup_no_randomize(const struct sup *s) {
    return s->vm.accel == VM_ACCEL_TCG && !s->prof.aslr_on;
}

static void send_setup(struct sup *s) {
    struct dbx_setup st = {
        .ws_tag = s->vm.no_workspace ? "" : "workspace",
        .ws_path = s->proj.root,
        .hostname = "devbox",
    };
    mounts_box_ids(&st.uid, &st.gid); /* as root not 0: mounts.h maps it back to the user */
    st.plan = s->plan;                /* borrowed */
    st.plan.no_randomize = sup_no_randomize(s);
    st.hostname = s->prof.hostname;
    st.ca_pem = s->ca_pem ? s->ca_pem : ""; /* borrowed */
    st.tz_name = s->tz_name ? s->tz_name : "";
    st.tz_data = s->tz_data;
    st.tz_len = s->tz_len;
    struct dbx_share shares[DBX_SHARES_MAX];
    for (size_t i = 0; !s->vm.no_workspace && i < s->nshares; i++)
        shares[st.nshares++] =
            (struct dbx_share){share_tag(i), s->shares[i].guest, s->shares[i].readonly};
    st.shares = shares;
    struct dbx_buf b = {0};
    dbx_setup_encode(&st, &b);
    if (b.len > DBX_FRAME_MAX && st.tz_len > 0) {
        /* the zone's file is a nicety: the name alone still serves Java and Node.js */
        sup_log("the time zone's file does not fit the setup frame: the box gets its name alone");
        st.tz_data = NULL;
        st.tz_len = 0;
        dbx_buf_free(&b);
        dbx_setup_encode(&st, &b);
    }
    for (uint32_t i = 0; i < st.nshares; i++)
        free(shares[i].tag);
    /* the plan (up to 240 KiB, policy.c) and the CAs (up to 192 KiB) each fit, not always both */
    if (b.len > DBX_FRAME_MAX && !s->guest.boot_error)
        s->guest.boot_error =
            dbx_xasprintf("the policy plan and the host CA certificates take %zu bytes, more than "
                          "a setup frame's %u",
                          b.len, DBX_FRAME_MAX);
    else {
        sup_clock_send(s, true); /* before anything the setup runs writes a file */
        sup_agent_send(s, DBX_MSG_SETUP, 0, b.data, b.len);
    }
    dbx_buf_free(&b);
}

static void copy_drop(int *fd, const char *what) {
    if (*fd < 0) return;
    int r = vm_copy_drop(*fd);
    if (r < 0) sup_log("free the %s's copy: %s", what, strerror(-r));
    close(*fd);
    *fd = -1;
}

/* The guest runs: QEMU has copied its kernel and initramfs into guest memory and will not read
 * the copies again (vm.h, vm_kernel_copy, vm_initrd_copy). */
static void kernel_copy_drop(struct sup *s) {
    copy_drop(&s->vm.kernel_copy, "kernel");
    copy_drop(&s->vm.initrd_copy, "initramfs");
}

/* The devbox kernel for this QEMU, as a copy of its own (vm.h, vm_kernel_copy), named after
 * the cache's key (the vmlinux's directory).  Not fatal: QEMU reads the shared file instead,
 * and keeps it mapped. */
static void kernel_copy_make(struct sup *s) {
    if (s->vm.kernel_kind != VM_KERNEL_DEVBOX || s->vm.kernel_copy >= 0) return;
    _cleanup_free_ char *dir = dbx_xstrdup(s->kernel.vmlinuz);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    const char *key = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    _cleanup_error_ dbx_error *e = NULL;
    if (vm_kernel_copy(s->kernel.vmlinuz, key, &s->vm.kernel_copy, &e) < 0) {
        sup_log("QEMU maps the shared kernel (no copy of its own: %s)", e->msg);
        s->vm.kernel_copy = -1;
    }
}

/* The initramfs (either kernel's) as a copy of its own, named after its file (the cache's
 * "devbox-initramfs-" prefix left out: the memfd's name says it). */
static void initrd_copy_make(struct sup *s) {
    if (s->vm.initrd_copy >= 0) return;
    const char *base = strrchr(s->kernel.initramfs, '/');
    base = base ? base + 1 : s->kernel.initramfs;
    if (dbx_str_has_prefix(base, "devbox-initramfs-")) base += strlen("devbox-initramfs-");
    _cleanup_error_ dbx_error *e = NULL;
    if (vm_initrd_copy(s->kernel.initramfs, base, &s->vm.initrd_copy, &e) < 0) {
        sup_log("QEMU maps the shared initramfs (no copy of its own: %s)", e->msg);
        s->vm.initrd_copy = -1;
    }
}

void sup_agent_control(struct sup *s, const struct dbx_frame_hdr *h, const uint8_t *p) {
    switch (h->type) {
    case DBX_MSG_HELLO: {
        uint32_t ver = 0;
        char *rel = NULL;
        if (s->guest.hello || dbx_hello_decode(p, h->len, &ver, &rel) < 0 ||
            ver != DBX_PROTO_VERSION) {
            sup_log("ignoring unexpected or malformed hello");
            if (!s->guest.hello && rel && ver != DBX_PROTO_VERSION && !s->guest.boot_error)
                s->guest.boot_error = sup_skew_error(ver);
            free(rel);
            return;
        }
        s->guest.hello = true;
        s->vm.t_hello = dbx_now_ns();
        free(s->guest.release); /* a setup VM booted before this one */
        s->guest.release = dbx_sanitize_printable(rel);
        send_setup(s);
        /* SETUP written now, not at the loop's flush: freeing the copies takes 5.5 ms (the
         * pages are mapped in QEMU too), which the guest's setup then overlaps instead of
         * waiting behind it (2026-12-05) */
        sup_agent_flush(s);
        kernel_copy_drop(s);
        return;
    }
    case DBX_MSG_READY:
        if (s->guest.hello) {
            s->guest.ready = true;
            s->guest.last_frame_ms = dbx_now_ms();
            net_guest_ready(s->net);
        }
        return;
    case DBX_MSG_PING:
        sup_agent_send(s, DBX_MSG_PONG, 0, p, h->len);
        return;
    case DBX_MSG_PONG: /* liveness: any frame counts (agent_read) */
        return;
    case DBX_MSG_CLOCK: { /* the guest asks for our clock (guest/init-clock.c) */
        uint64_t token;
        if (dbx_dec_u64(p, h->len, &token) < 0)
            sup_log("ignoring a malformed clock frame from the guest");
        else
            sup_clock_answer(s, token);
        return;
    }
    case DBX_MSG_ERROR: {
        uint32_t code;
        char *msg = NULL;
        if (dbx_error_msg_decode(p, h->len, &code, &msg) == 0) {
            dbx_sanitize_printable(msg);
            sup_log("guest error: %s", msg);
            if (!s->guest.ready && !s->guest.boot_error)
                s->guest.boot_error = msg;
            else
                free(msg);
        }
        return;
    }
    default:
        sup_log("ignoring %s frame on the control session", dbx_msg_name(h->type));
    }
}

/* ---- children and boot ------------------------------------------------------------------ */

static void close_passt_fds(struct sup *s) {
    if (s->vm.passt_sock >= 0) close(s->vm.passt_sock);
    if (s->vm.passt_log >= 0) close(s->vm.passt_log);
    s->vm.passt_sock = s->vm.passt_log = -1;
}

/* passt starts on the guest's first frame, not at boot: its ~20 MiB (vm/vm-passt.c) only in
 * a box that has used the network, and the boot does not wait for its start.  The frame waits
 * in the socket for it.  Open mode has no secrets (profiles), so the supervisor is still
 * dumpable here, as a rootless passt's user namespace needs (supervisor-secrets.c). */
void sup_passt_start(struct sup *s) {
    /* a frame: not QEMU's hang-up at its exit, and not in a box on its way down */
    char c;
    ssize_t n = recv(s->vm.passt_sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n != 1 || s->guest.stopping) {
        close_passt_fds(s);
        return;
    }
    _cleanup_error_ dbx_error *err = NULL;
    uint64_t t0 = dbx_now_ns(); /* the loop waits for this start: the log says how long */
    if (vm_passt_start(s->vm.passt_sock, s->vm.passt_log, &s->vm.passt, &err) < 0) {
        sup_log("start passt: %s: the VM has no network now", err->msg);
    } else {
        s->vm.passt_pid = vm_passt_pid(s->vm.passt);
        sup_log("passt started on the guest's first frame, %llu ms after the VM, in %.1f ms",
                (unsigned long long)((t0 - s->vm.t_spawned) / 1000000),
                (double)(dbx_now_ns() - t0) / 1e6);
    }
    close_passt_fds(s); /* passt has its own (or the guest's frames now go nowhere) */
}

void sup_kill_children(struct sup *s) {
    if (s->vm.qemu_pid > 0) kill(s->vm.qemu_pid, SIGKILL);
    if (s->vm.vfs_pid > 0) kill(s->vm.vfs_pid, SIGKILL);
    for (size_t i = 0; i < s->nshares; i++)
        if (s->shares[i].pid > 0) kill(s->shares[i].pid, SIGKILL);
    vm_passt_free(s->vm.passt); /* SIGKILL through its pidfd; reaped below */
    s->vm.passt = NULL;
    close_passt_fds(s);
    if (s->vm.qemu_pid > 0) waitpid(s->vm.qemu_pid, &s->vm.qemu_status, 0);
    if (s->vm.vfs_pid > 0) waitpid(s->vm.vfs_pid, NULL, 0);
    if (s->vm.passt_pid > 0) waitpid(s->vm.passt_pid, NULL, 0);
    for (size_t i = 0; i < s->nshares; i++) {
        if (s->shares[i].pid > 0) waitpid(s->shares[i].pid, NULL, 0);
        s->shares[i].pid = -1;
        _cleanup_free_ char *sock = share_sock(s, i);
        unlink(sock);
    }
    s->vm.qemu_pid = s->vm.vfs_pid = s->vm.passt_pid = -1;
    if (s->vm.kernel_copy >= 0) close(s->vm.kernel_copy);
    if (s->vm.initrd_copy >= 0) close(s->vm.initrd_copy);
    s->vm.kernel_copy = s->vm.initrd_copy = -1;
    if (s->relay.agent_fd >= 0) close(s->relay.agent_fd);
    s->relay.agent_fd = -1;
    for (int i = 0; i < 3; i++)
        logsink_close(&s->vm.logs[i]);
    dbx_reader_free(&s->relay.agent_rd);
    dbx_buf_free(&s->relay.agent_out);
    vm_qmp_free(s->vm.qmp);
    s->vm.qmp = NULL;
    s->guest.hello = s->guest.ready = s->guest.quit = s->guest.dead = s->guest.nospace = false;
    s->guest.console_panic_ms = 0;
}

static int spawn_vm(struct sup *s, dbx_error **err) {
    static const char *const names[3] = {"console.log", "qemu.log", "virtiofsd.log"};
    int wr[3] = {-1, -1, -1}, agent[2] = {-1, -1}, con[2] = {-1, -1}, qmp[2] = {-1, -1};
    _cleanup_free_ char *vfs_path = dbx_xasprintf("%s/%s", s->proj.run_dir, DBX_VFS_SOCK_NAME);
    _cleanup_free_ char *gdb_path = getenv("DEVBOX_GUEST_GDB")
                                        ? dbx_xasprintf("%s/%s", s->proj.run_dir, DBX_GDB_SOCK_NAME)
                                        : NULL;
    const char *disk = s->vm.disk; /* the box's, or the setup VM's (supervisor-setup.c) */
    _cleanup_close_ int vfs_listen = -EBADF;
    struct mounts_idmap map;
    int r = 0;
    for (int i = 0; i < 3 && r == 0; i++) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", s->proj.state_dir, names[i]);
        r = logsink_open(&s->vm.logs[i], p, &wr[i], err);
    }
    /* A shared setup VM gets no workspace at all: no virtiofsd, no device (supervisor-setup.c). */
    bool ws = !s->vm.no_workspace;
    if (r == 0 && ws && (vfs_listen = sup_listen_unix(vfs_path, 1, err)) < 0) r = -1;
    if (r == 0 && ws) {
        dbx_set_nonblock(vfs_listen, false);
        r = mounts_idmap_get(&map, err);
        /* Setup's commands run as root: what they write into the workspace (`npm ci` filling
         * node_modules) must be the user's own on the host, as the box user's writes are.
         * Mapped the usual way it landed on the first subordinate id, files the user could
         * then neither change nor remove (found in use: `rm -rf node_modules` refused).
         * Guest root gets nothing it did not have: as the namespace's root, virtiofsd already
         * wrote the user's files for it (CAP_DAC_OVERRIDE over the ids mapped there), and the
         * protected paths are read-only binds in virtiofsd's own mount namespace either way. */
        if (r == 0 && s->vm.root_is_user) map.box_uid = map.box_gid = 0;
    }
    /* The virtiofsds' guards set up (each a new devbox process) while passt and QEMU start:
     * QEMU's vhost-user connection waits in the listen queue until virtiofsd itself, behind
     * the guard's mounts and filter, accepts it.  Their errors come first, as when each was
     * waited for before the next step: the steps up to QEMU report into `later`. */
    struct vfs_start vfs[1 + DBX_SHARES_MAX];
    size_t nvfs = 0;
    _cleanup_error_ dbx_error *later = NULL;
    if (r == 0 && ws) {
        /* before virtiofsd opens it: a swap in between restarts, never hides */
        struct stat st;
        s->vm.ws_id = sup_dir_id_of(stat(s->proj.root, &st) == 0 ? &st : NULL);
        struct mounts_vfs_config vc = {.source = s->proj.root,
                                       .listen_fd = vfs_listen,
                                       .log_fd = wr[2],
                                       .protected = (const char *const *)s->prof.protect,
                                       .guard_exe = guard_exe()};
        r = vfs_start(&vc, &map, &s->vm.vfs_pid, NULL, vfs, &nvfs, &later);
    }
    _cleanup_strv_ char **share_socks = NULL;
    if (r == 0 && ws) r = shares_start(s, &map, wr[2], &share_socks, vfs, &nvfs, &later);
    /* Network mode open: user-mode NAT (passt) behind a virtio-net device, started on the
     * guest's first frame (sup_passt_start); its messages go to the QEMU log. */
    int net[2] = {-1, -1};
    if (r == 0 && s->plan.net_mode == DBX_NET_OPEN) {
        if (vm_passt_check(&later) < 0)
            r = -1;
        else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, net) < 0 ||
                 (s->vm.passt_log = fcntl(wr[1], F_DUPFD_CLOEXEC, 3)) < 0)
            r = dbx_error_set(&later, errno, "the network's socket");
    }
    if (r == 0 && (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, agent) < 0 ||
                   socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con) < 0 ||
                   socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qmp) < 0))
        r = dbx_error_set(&later, errno, "socketpair");
    struct vm_share vshares[DBX_SHARES_MAX];
    _cleanup_strv_ char **tags = NULL;
    for (size_t i = 0; share_socks && share_socks[i]; i++) {
        _cleanup_free_ char *t = share_tag(i);
        tags = dbx_strv_push(tags, t);
    }
    for (size_t i = 0; share_socks && share_socks[i]; i++)
        vshares[i] = (struct vm_share){share_socks[i], tags[i]};
    if (r == 0) {
        kernel_copy_make(s);
        initrd_copy_make(s);
    }
    if (r == 0) {
        struct vm_config cfg = {
            .kernel = s->kernel.vmlinuz,
            .kernel_fd = s->vm.kernel_copy >= 0 ? s->vm.kernel_copy : 0,
            .initramfs_fd = s->vm.initrd_copy >= 0 ? s->vm.initrd_copy : 0,
            .kernel_kind = s->vm.kernel_kind,
            .balloon = true,
            /* the ISA serial console costs boot time on the devbox kernel; hvc0 carries it */
            .console = getenv("DEVBOX_KERNEL_CONSOLE") != NULL,
            .initramfs = s->kernel.initramfs,
            .disk = disk,
            .vfs_socket = ws ? vfs_path : NULL,
            .vfs_tag = ws ? "workspace" : NULL,
            .shares = vshares,
            .nshares = dbx_strv_len(share_socks),
            .agent_fd = agent[1],
            .console_fd = con[1],
            .cpus = s->prof.cpus,
            .mem_mib = s->prof.memory >> 20,
            .accel = s->vm.accel,
            .kvm_mask_arch_caps = s->vm.mask_arch_caps,
            .net_fd = net[1] >= 0 ? net[1] : 0,
            .qmp_fd = qmp[1],
            .gdb_socket = gdb_path,
        };
        s->vm.qemu_pid = vm_qemu_spawn(&cfg, wr[1], &later);
        if (s->vm.qemu_pid < 0) r = dbx_error_wrap(&later, "start QEMU");
    }
    if (r == 0) {
        /* The console socket replaces the console pipe: it is just another log stream. */
        close(s->vm.logs[0].in);
        s->vm.logs[0].in = TAKE_FD(con[0]);
        dbx_set_nonblock(s->vm.logs[0].in, true);
        s->relay.agent_fd = TAKE_FD(agent[0]);
        dbx_set_nonblock(s->relay.agent_fd, true);
        s->vm.passt_sock = TAKE_FD(net[0]); /* -1 unless network mode open */
        r = vm_qmp_new(TAKE_FD(qmp[0]), &s->vm.qmp, &later);
    }
    int rv = vfs_finish(vfs, nvfs, &map, err);
    vfs_close(vfs, nvfs);
    if (rv < 0)
        r = rv;
    else if (r < 0 && later)
        *err = TAKE_PTR(later);
    /* Our copies of the children's ends. */
    for (int i = 0; i < 3; i++)
        if (wr[i] >= 0) close(wr[i]);
    int fds[8] = {agent[0], agent[1], con[0], con[1], net[0], net[1], qmp[0], qmp[1]};
    for (int i = 0; i < 8; i++)
        if (fds[i] >= 0) close(fds[i]);
    if (r < 0) sup_kill_children(s);
    return r;
}

/* Why the boot failed, for the one-line error: the guest's own message, else the last line
 * QEMU, virtiofsd or the console printed. */
static int boot_failure(struct sup *s, const char *what, dbx_error **err) {
    if (s->guest.boot_error) return dbx_error_set(err, 0, "%s: %s", what, s->guest.boot_error);
    for (int i = 1; i <= 3; i++) {
        int k = i % 3; /* qemu, virtiofsd, console */
        sup_logsink_pump(&s->vm.logs[k]);
        _cleanup_free_ char *l = logsink_last_line(&s->vm.logs[k]);
        if (*l) {
            static const char *const src[3] = {"console", "qemu", "virtiofsd"};
            return dbx_error_set(err, 0, "%s (%s: %s; logs in '%s')", what, src[k], l,
                                 s->proj.state_dir);
        }
    }
    return dbx_error_set(err, 0, "%s (logs in '%s')", what, s->proj.state_dir);
}

/* Boot and wait for the agent's hello; -ETIMEDOUT if it did not come within deadline. */
static int boot_once(struct sup *s, uint64_t hello_ms, dbx_error **err) {
    if (spawn_vm(s, err) < 0) return -1;
    s->vm.t_spawned = dbx_now_ns();
    uint64_t deadline = dbx_now_ms() + hello_ms;
    while (!s->guest.hello && !s->guest.quit && !s->guest.boot_error && dbx_now_ms() < deadline)
        sup_poll(s, 100);
    if (!s->guest.hello) {
        if (s->guest.quit) return boot_failure(s, "the VM exited during boot", err);
        if (s->guest.boot_error) return boot_failure(s, "boot", err); /* not worth a second boot */
        return -ETIMEDOUT;
    }
    deadline = dbx_now_ms() + READY_MS;
    while (!s->guest.ready && !s->guest.quit && !s->guest.boot_error && dbx_now_ms() < deadline)
        sup_poll(s, 100);
    if (!s->guest.ready) return boot_failure(s, "guest setup failed", err);
    return 0;
}

/* A KVM boot whose QEMU died because the host's KVM refused the host CPU's
 * IA32_ARCH_CAPABILITIES (QEMU's own words on its stderr; it aborts before the guest runs). */
static bool arch_caps_refused(struct sup *s) {
    if (s->vm.accel != VM_ACCEL_KVM || s->vm.mask_arch_caps || !s->guest.quit) return false;
    struct logsink *l = &s->vm.logs[1]; /* qemu */
    if (l->in >= 0) sup_logsink_pump(l);
    return vm_qemu_refused_arch_caps(l->tail, l->tail_len);
}

/* Before another boot: the failed one's children died by themselves, and a death may have
 * begun a stop that nobody asked for (virtiofsd exits when QEMU hangs up, and sup_vfs_died
 * stops the box), which would end the next boot once it is up.  A stop that came as a signal
 * (`devbox stop` during the boot) still ends this one: false then. */
static bool boot_again(struct sup *s) {
    if (s->stop_requested) return false;
    s->guest.stopping = false;
    s->guest.stop_deadline = UINT64_MAX;
    return true;
}

int sup_boot(struct sup *s, dbx_error **err) {
    bool forced = false;
    if (vm_accel_choose(s->paths.state, &s->vm.accel, &forced, err) < 0) return -1;
    s->vm.mask_arch_caps =
        s->vm.accel == VM_ACCEL_KVM && vm_accel_arch_caps_refused(s->paths.state);
    for (int tcg_tries = 0;;) {
        s->vm.started_ms = dbx_now_ms();
        s->vm.started_wall = (int64_t)time(NULL);
        uint64_t wait = s->vm.accel == VM_ACCEL_KVM ? KVM_HELLO_MS : TCG_HELLO_MS;
        int r = boot_once(s, wait, err);
        if (r == 0) return 0;
        bool caps = r != -ETIMEDOUT && arch_caps_refused(s);
        sup_kill_children(s);
        if (!boot_again(s)) {
            /* the stop killed QEMU: its end, or virtiofsd's, is not the cause to name */
            dbx_error_free(err);
            return dbx_error_set(err, 0, "stopped while starting");
        }
        if (caps) {
            /* Not a KVM that cannot boot: the same KVM without that MSR usually can.  Recorded,
             * so the next boots on this host kernel go straight to the masked CPU. */
            dbx_error_free(err);
            sup_log("KVM refused the host CPU's IA32_ARCH_CAPABILITIES (QEMU: failed to set MSR "
                    "0x10a); booting again with it hidden from the guest");
            _cleanup_error_ dbx_error *e = NULL;
            if (vm_accel_record_arch_caps_refused(s->paths.state, &e) < 0) sup_log("%s", e->msg);
            s->vm.mask_arch_caps = true;
            continue;
        }
        if (r != -ETIMEDOUT && !(s->vm.accel == VM_ACCEL_KVM && !forced && !s->guest.boot_error))
            return r;
        if (s->vm.accel == VM_ACCEL_KVM && !forced) {
            dbx_error_free(err);
            _cleanup_free_ char *w = dbx_xasprintf(
                "KVM did not boot the guest within %us; using TCG (software emulation, slower); "
                "set DEVBOX_ACCEL=kvm to insist",
                KVM_HELLO_MS / 1000);
            sup_log("%s", w);
            sup_ready_say(s, 'W', w);
            (void)vm_accel_record_kvm_broken(s->paths.state, NULL);
            s->vm.accel = VM_ACCEL_TCG;
            continue;
        }
        if (r == -ETIMEDOUT && ++tcg_tries < TCG_BOOT_TRIES) {
            sup_log("the guest did not say hello within %us; booting again", TCG_HELLO_MS / 1000);
            continue;
        }
        if (r == -ETIMEDOUT) return boot_failure(s, "the guest did not answer in time", err);
        return r;
    }
}

/* ---- before the boot --------------------------------------------------------------------- */

/* The image's config Env applies inside the guest, under the profile's own [env] (which wins)
 * and never for the proxy variables the network policy sets. */
static void add_image_env(struct profile *p, char *const *env) {
    static const char *const reserved[] = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"};
    for (; env && *env; env++) {
        const char *eq = strchr(*env, '=');
        if (!eq || eq == *env) continue;
        size_t klen = (size_t)(eq - *env);
        bool skip = false;
        for (size_t i = 0; i < DBX_ARRAY_SIZE(reserved) && !skip; i++)
            skip = strlen(reserved[i]) == klen && strncasecmp(reserved[i], *env, klen) == 0;
        for (char **e = p->env; e && *e && !skip; e++)
            skip = strncmp(*e, *env, klen + 1) == 0;
        if (!skip) p->env = dbx_strv_push(p->env, *env);
    }
}

/* [box] disk: the overlay's virtual size (the guest grows its filesystem to fill it at boot).
 * A larger value grows an existing disk at the next start; a smaller one than the disk (or
 * the image) already has is ignored with a warning: shrinking would cut off the guest's
 * filesystem.  0 (auto) leaves the disk as it is. */
static int fit_disk(struct sup *s, const char *disk, dbx_error **err) {
    if (!s->prof.disk) return 0;
    uint64_t size = 0;
    if (vm_disk_grow_overlay(disk, s->prof.disk, &size, err) < 0)
        return dbx_error_wrap(err, "grow the project's disk");
    if (size >= s->prof.disk + 512) {
        /* Below the image's own size no new disk would be smaller either: say which it is. */
        struct stat st;
        bool image = s->rec.base && stat(s->rec.base, &st) == 0 &&
                     (uint64_t)st.st_size >= s->prof.disk + 512;
        _cleanup_free_ char *w =
            image ? dbx_xasprintf("[box] disk %.1f GiB is smaller than the image (%.1f GiB): the "
                                  "disk has the image's size",
                                  s->prof.disk / 1073741824.0, st.st_size / 1073741824.0)
                  : dbx_xasprintf("[box] disk %.1f GiB is smaller than the project's disk (%.1f "
                                  "GiB): kept (a disk never shrinks; 'devbox rm' and a new start "
                                  "make a smaller one)",
                                  s->prof.disk / 1073741824.0, size / 1073741824.0);
        sup_log("%s", w);
        sup_ready_say(s, 'W', w);
    }
    return 0;
}

/* The file `devbox setup --force` leaves in the state dir for the supervisor it starts; it
 * goes once a setup succeeded (a failed forced setup is forced again next time). */
static char *setup_force_path(struct sup *s) {
    return dbx_xasprintf("%s/%s", s->proj.state_dir, DBX_SETUP_FORCE);
}

/* The project's disk: kept from the last run, or made from the image (through [setup]'s
 * derived disk when the profile has one).  A [setup] that changed since the disk was made, or
 * `devbox setup --force`, makes it again: the root disk is the product of image + setup, and
 * only the workspace (on the host) is the user's to keep.  Sets *img (the image record, or a
 * zero one when it is gone). */
static int prepare_disk(struct sup *s, const struct profile_user *user, struct dbx_image *img,
                        dbx_error **err) {
    const char *disk = s->vm.disk;
    _cleanup_free_ char *dirty = dbx_xasprintf("%s/running", s->proj.state_dir);
    char hash[65];
    dbx_setup_hash(s->prof.setup_run, hash);
    _cleanup_free_ char *force_path = setup_force_path(s);
    bool force = access(force_path, F_OK) == 0;
    bool have =
        dbx_project_rec_load(s->proj.state_dir, &s->rec, NULL) == 0 && access(disk, F_OK) == 0;
    if (have && (force || strcmp(s->rec.setup ? s->rec.setup : "", hash) != 0)) {
        _cleanup_free_ char *w =
            force ? dbx_xstrdup("devbox: setup --force: making the box's disk again from the "
                                "image and [setup] (only the workspace is kept)")
                  : dbx_xasprintf("devbox: [setup] changed since the box's disk was made: making "
                                  "it again from the image and the new setup (only the "
                                  "workspace is kept)");
        sup_log("%s", w);
        sup_ready_say(s, 'S', w);
        if (unlink(disk) < 0 && errno != ENOENT)
            return dbx_error_set(err, errno, "remove '%s'", disk);
        (void)unlink(dirty); /* the old disk's state does not matter any more */
        have = false;
    }
    if (have) {
        if (access(dirty, F_OK) == 0) {
            /* The last run ended without a clean shutdown (killed supervisor or QEMU). */
            sup_log("last run did not stop cleanly; checking the disk");
            if (vm_disk_check(disk, err) < 0)
                return dbx_error_wrap(err, "disk check after an unclean stop");
        }
        /* The image record may be gone (rmi --force): its environment is then unknown. */
        if (dbx_image_get(&s->paths, s->rec.image, img, NULL) < 0) *img = (struct dbx_image){0};
        add_image_env(&s->prof, img->env);
        return 0;
    }
    dbx_project_rec_clear(&s->rec);
    /* Normally the client has already pulled or built it, with progress on its tty. */
    struct dbx_pull_opts opts = {.progress_fd = -1};
    if (dbx_image_ensure(&s->paths, s->prof.image, &opts, img, err) < 0) return -1;
    /* Setup runs with the image's environment (PATH above all) too. */
    add_image_env(&s->prof, img->env);
    struct dbx_derived derived = {0};
    const char *backing = img->base;
    /* Held until the project's record names the derived disk: `image prune` takes it before
     * it looks for users. */
    _cleanup_close_ int lock = -EBADF;
    if (s->prof.setup_run && s->prof.setup_run[0]) {
        if (sup_setup(s, user, img, force, &derived, &lock, err) < 0) {
            dbx_derived_clear(&derived);
            return -1;
        }
        backing = derived.disk;
        (void)unlink(force_path);
    }
    int r = vm_disk_create_overlay(backing, disk, s->prof.disk, err);
    s->rec = (struct dbx_project_rec){dbx_xstrdup(s->proj.root), dbx_xstrdup(img->name),
                                      dbx_xstrdup(backing), (int64_t)time(NULL), dbx_xstrdup(hash)};
    dbx_derived_clear(&derived);
    if (r < 0) return dbx_error_wrap(err, "create the project's disk");
    return dbx_project_rec_save(s->proj.state_dir, &s->rec, err);
}

/* The host's CA certificates every box trusts (dbx_ca_paths). */
static int load_cas(struct sup *s, const struct profile_user *user, dbx_error **err) {
    _cleanup_strv_ char **warnings = NULL;
    if (dbx_ca_load(dbx_ca_paths(user), &s->ca_pem, &warnings, err) < 0) {
        const char *where = NULL;
        for (size_t i = 0; i < user->norigin && !where; i++)
            if (strcmp(user->origin[i].key, "network.ca_files") == 0) where = user->origin[i].where;
        return dbx_error_wrap(err, "%s [network] ca_files", where ? where : "config.ini");
    }
    for (char **w = warnings; w && *w; w++) {
        sup_log("%s", *w);
        sup_ready_say(s, 'W', *w);
    }
    return 0;
}

/* The devbox kernel is not built and this box boots Debian's: build it in the background, at
 * nice 19 and idle I/O priority, for the next boots (issue 12: a first exec never waits for a
 * kernel build).  `devbox __kernel-autobuild` is detached (not our child) and gives up at once
 * when another process builds (the cache's lock) or the same build failed before. */
static void kernel_autobuild(struct sup *s, const struct profile_user *user,
                             const struct vm_devkernel_status *st) {
    if (user->kernel_autobuild_off || !st->source_installed || st->state != VM_DEVKERNEL_ABSENT)
        return;
    char *argv[] = {"devbox", "__kernel-autobuild", NULL};
    const struct dbx_spawn_fd fds[] = {{0, DBX_SPAWN_DEVNULL}, {1, DBX_SPAWN_DEVNULL}, {2, 2}};
    const struct dbx_spawn sp = {.name = "kernel autobuild",
                                 .path = "/proc/self/exe",
                                 .argv = argv,
                                 .detach = true,
                                 .fds = fds,
                                 .nfds = DBX_ARRAY_SIZE(fds)};
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_spawn(&sp, NULL, &e) < 0)
        sup_log("could not start the devbox kernel's background build: %s", e->msg);
    else
        sup_log("the devbox kernel is not built: building it in the background into '%s' "
                "(config.ini [box] kernel_autobuild = false stops this); this boot uses Debian's",
                st->cache);
}

/* user.name and user.email as the host's git reads them in this work tree, in every command's
 * environment (GIT_AUTHOR_* and GIT_COMMITTER_*), so that `git commit` in the box makes the
 * commit the user would make there; found in use: it failed with "unable to auto-detect email
 * address" where the host's git commits.  Read once per start, as the profile is.  The
 * profile's [env] wins (and so does a secret's placeholder): a box that must not learn the
 * user's name or email sets its own.  Variables, not a file in the box: they override an
 * identity set inside the box (its ~/.gitconfig, a `git config` there), which a file would
 * have to overwrite. */
static void git_identity_env(struct dbx_plan *p, const char *root) {
    _cleanup_free_ char *name = NULL, *email = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_git_identity(root, &name, &email, &e) < 0)
        sup_log("git identity for the box: %s; the user's own config is used", e->msg);
    const char *vars[][2] = {{"GIT_AUTHOR_NAME", name},
                             {"GIT_COMMITTER_NAME", name},
                             {"GIT_AUTHOR_EMAIL", email},
                             {"GIT_COMMITTER_EMAIL", email}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(vars); i++)
        if (vars[i][1] && dbx_plan_env_find(p, vars[i][0]) < 0)
            (void)dbx_plan_env_add(p, vars[i][0], vars[i][1]); /* full: the box goes without */
}

/* The host's time zone, read once per start as the identity is (sandbox-tz.c); a zone that
 * cannot be sent leaves the box on UTC, with the reason in the log. */
static void host_tz(struct sup *s) {
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_host_tz(getenv("TZ"), getenv("TZDIR"), "/etc/localtime", &s->tz_name, &s->tz_data,
                    &s->tz_len, &e) < 0)
        sup_log("the box stays on UTC: %s", e->msg);
}

/* Which kernel boots (env DEVBOX_KERNEL over [box] kernel; auto = the devbox kernel when it is
 * built) and its initramfs: the Debian kernel's carries the virtio modules, the devbox
 * kernel's only the init. */
static int choose_kernel(struct sup *s, const struct profile_user *user, const char *init,
                         dbx_error **err) {
    _cleanup_free_ char *kdir = dbx_xasprintf("%s/kernel", s->paths.data);
    struct vm_devkernel_status st = {0};
    _cleanup_error_ dbx_error *st_err = NULL;
    /* the devbox kernel only makes boots faster: a cache that cannot be read means Debian's,
     * unless the devbox kernel was asked for (its error then says why) */
    bool ready = vm_devkernel_status(&st, &st_err) == 0 && st.state == VM_DEVKERNEL_READY;
    enum vm_kernel_kind kind = VM_KERNEL_DEBIAN;
    const char *env = getenv("DEVBOX_KERNEL");
    int r = vm_kernel_select(env, profile_kernel_name(s->prof.kernel), ready, &kind, err);
    if (r < 0 && st_err) dbx_error_wrap(err, "%s", st_err->msg);
    if (r == 0 && kind == VM_KERNEL_DEVBOX)
        r = vm_devkernel_ensure(kdir, init, &st, &s->kernel, err);
    if (r == 0 && kind == VM_KERNEL_DEBIAN) {
        r = vm_kernel_ensure(kdir, init, &s->kernel, err);
        bool autoc = !(env && *env) ? s->prof.kernel == PROFILE_KERNEL_AUTO : !strcmp(env, "auto");
        if (r == 0 && autoc && !st_err) kernel_autobuild(s, user, &st);
    }
    if (r == 0) s->vm.kernel_kind = kind;
    vm_devkernel_status_clear(&st);
    return r < 0 ? dbx_error_wrap(err, "guest kernel") : 0;
}

/* Everything a boot needs on disk: kernel + initramfs, the project's record and disk. */
/* Rule 9 for a dotfiles repository: what the user's home links to inside the workspace
 * (~/.bashrc -> ~/dotfiles/.bashrc, as GNU stow installs them) is the host's own configuration,
 * run or read there the next time a shell, git or ssh starts, so it is protected as the
 * profile's paths are (read-only on the host and in the guest), after the trust check: it only
 * narrows.  The profile's `unprotect` does not reach these; a link made while the box runs
 * counts from its next start. */
static void protect_home_links(struct sup *s) {
    size_t have = dbx_strv_len(s->prof.protect);
    size_t room = have < MOUNTS_PROTECTED_MAX ? MOUNTS_PROTECTED_MAX - have : 0;
    bool full = false;
    _cleanup_strv_ char **links = dbx_project_home_links(s->proj.root, room, &full);
    for (size_t i = 0; links[i]; i++) {
        bool dup = false;
        for (size_t j = 0; s->prof.protect && s->prof.protect[j] && !dup; j++)
            dup = !strcmp(s->prof.protect[j], links[i]);
        if (dup) continue;
        s->prof.protect = dbx_strv_push(s->prof.protect, links[i]);
        _cleanup_free_ char *e = dbx_escape(links[i]);
        sup_log("protected: '%s' (your home links to it)", e);
    }
    if (full) {
        const char *w = "not every file your home links into the workspace could be protected "
                        "(more than the protected paths' limit, or a directory of over 4096 "
                        "entries): the box may change some of them";
        sup_log("%s", w);
        sup_ready_say(s, 'W', w);
    }
}

int sup_prepare(struct sup *s, dbx_error **err) {
    /* TCG's tsc_early_khz needs two TSC readings 20 ms apart: what follows fills the gap */
    vm_tsc_calibration_start();
    struct profile_user user = {0};
    if (dbx_profile_load(&s->paths, &s->proj, &s->prof, &user, err) < 0) return -1;
    /* The repo profile may only narrow; this is the authoritative check (the client's is
     * only for an early message). */
    int r = dbx_profile_allowed(&s->paths, &s->proj, &s->prof, &user, err);
    for (char **w = s->prof.warnings; r == 0 && w && *w; w++) {
        sup_log("%s", *w);
        sup_ready_say(s, 'W', *w);
    }
    if (r == 0) protect_home_links(s);
    /* `--network none` narrows whatever the profile says (after the trust check: a narrower
     * box never needs trust, and the profile itself is what was trusted). */
    if (r == 0 && s->net_override)
        r = profile_set(&s->prof, "network.mode", s->net_override, "command line", err);
    /* Before any child: a used `env =` secret's value moves into protected memory, and every
     * declared secret variable leaves our environment. */
    s->idle.clock.stop_ms = (uint64_t)user.idle_stop_s * 1000;
    if (r == 0) r = sup_secrets_take_env(s, &user, err);
    if (r == 0) r = shares_find(s, err);
    _cleanup_free_ char *nofile = r == 0 ? mounts_nofile_warning(s->proj.root) : NULL;
    if (nofile) { /* once per start */
        sup_log("%s", nofile);
        sup_ready_say(s, 'W', nofile);
    }
    _cleanup_free_ char *init = NULL;
    if (r == 0 && dbx_find_init(&init, err) < 0) r = -1;
    if (r == 0) r = choose_kernel(s, &user, init, err);
    if (r == 0) r = load_cas(s, &user, err);
    s->vm.disk = dbx_xasprintf("%s/disk.qcow2", s->proj.data_dir);
    struct dbx_image img = {0};
    if (r == 0) r = prepare_disk(s, &user, &img, err);
    dbx_image_clear(&img);
    /* After [setup]: its VM gets neither a secret nor the box's CA. */
    if (r == 0) r = sup_secrets_read(s, &user, err);
    struct net_secrets sec;
    if (r == 0) sup_secrets_net(s, &sec); /* upstream: s->ca_pem before the box's CA joins it */
    if (r == 0)
        r = net_new(&s->net, &s->prof, &user, &sec, s->proj.state_dir, &s->relay.agent_out, err);
    profile_user_clear(&user);
    if (r < 0) return -1;
    if (net_warning(s->net)) {
        sup_log("%s", net_warning(s->net));
        sup_ready_say(s, 'W', net_warning(s->net));
    }
    if (fit_disk(s, s->vm.disk, err) < 0) return -1;
    if (policy_compile(&s->prof, s->prof.memory, &s->plan, err) < 0)
        return dbx_error_wrap(err, "%s/%s", s->proj.root, PROFILE_FILE);
    if (sup_secrets_guest(s, err) < 0) return -1;
    git_identity_env(&s->plan, s->proj.root);
    host_tz(s);
    _cleanup_free_ char *dirty = dbx_xasprintf("%s/running", s->proj.state_dir);
    _cleanup_close_ int mark = open(dirty, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (mark < 0) return dbx_error_set(err, errno, "create '%s'", dirty);
    return 0;
}

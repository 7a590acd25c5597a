/* sandbox/sandbox-supervisor.c: one process per running project.  It owns QEMU and
 * virtiofsd (they die with it: PR_SET_PDEATHSIG), speaks the agent protocol to the guest
 * init over a virtio-serial port, and relays exec sessions between clients on the control
 * socket and the guest.  Everything the guest sends is treated as hostile: bounded buffers,
 * strict decoding, a malformed frame ends one session.  This file holds the poll loop and the
 * process's start and end; supervisor-internal.h lists the others.
 *
 * Threads.  One poll loop (this file's sup_poll, in the main thread) owns all of struct sup:
 * every client, session, buffer, child pid and flag is read and written by it alone, so none
 * needs a lock.  Other threads exist, and touch none of it:
 * - the egress proxy (network mode allowlist): one thread per proxied connection, started from
 *   the loop when the guest opens a proxy session (sandbox-net.c hands the proxy one end of a
 *   socketpair).  A thread owns its connection and that end; the loop keeps the other end and
 *   carries its bytes to and from the guest as socket-session frames.  The proxy's shared state
 *   (its connection list and counters) is under the proxy's own mutex, its name cache is
 *   thread-safe on its own, and each decision is one write(2) to network.log (O_APPEND), an fd
 *   the loop only fstat()s and truncates.  net_free (at teardown) stops the proxy, which ends
 *   and joins every thread before the log fd is closed.
 * - the passt filter (network mode open, vm/vm-passt-filter.c): one thread answering passt's
 *   seccomp notifications.  It owns its rules and a dup of the qemu.log pipe's write end; the
 *   loop only reads that pipe (a logsink).  Its refusal count is an atomic.  vm_passt_free
 *   (sup_kill_children) kills passt, then stops and joins the thread.
 * - pull workers (oci/oci-pull.c): only while sup_prepare pulls an image, before the loop
 *   runs; the main thread waits on them and joins them before sup_prepare returns.
 * The proxy's and the filter's threads block every signal, and a pull worker inherits the
 * mask dbx_supervise sets before sup_prepare, so SIGCHLD and the stop signals reach only the
 * loop's signalfd.  The loop hands data to the threads only through file descriptors (socketpairs,
 * stop pipes) and the objects' own locked entry points.  Children are started from the main
 * thread, except a registry's credential helper, which a pull worker may start when the
 * registry first asks for credentials on a blob; and not always from a single-threaded
 * process: with network mode open the filter's thread runs when QEMU is forked (and a retried
 * boot forks again).  So every child goes through dbx_spawn, which makes only
 * async-signal-safe calls before its exec. */
#define _GNU_SOURCE
#include "supervisor-internal.h"

#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

/* ---- logging and the starting client -------------------------------------------------- */

void sup_log(const char *fmt, ...) {
    char ts[32];
    time_t t = time(NULL);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", gmtime(&t));
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) dbx_oom_hook();
    va_end(ap);
    /* paths, names and guest text end up here; `devbox logs` prints this file */
    _cleanup_free_ char *e = dbx_escape(msg);
    free(msg);
    /* The guest can make lines come as fast as it sends frames (a malformed or unexpected one
     * is logged), and the file lives as long as the box: past DBX_LOG_CAP it is cut to
     * nothing, with a line that says so, as the console log stops and the network log is cut
     * (the client also cuts it before a start).  The client opens it O_APPEND. */
    if (dbx_log_cut(STDERR_FILENO, DBX_LOG_CAP))
        fprintf(stderr, "%s supervisor: [this log was cut at its size cap, %u bytes]\n", ts,
                (unsigned)DBX_LOG_CAP);
    fprintf(stderr, "%s supervisor: %s\n", ts, e);
}

/* Lines to the client that started us: "W text", "E text", "OK". */
void sup_ready_say(struct sup *s, char kind, const char *msg) {
    if (s->ready_fd < 0) return;
    _cleanup_free_ char *line =
        kind == 'O' ? dbx_xstrdup("OK\n") : dbx_xasprintf("%c %s\n", kind, msg);
    for (char *p = line; *p && p[1]; p++)
        if (*p == '\n') *p = ' ';
    (void)dbx_write_all(s->ready_fd, line, strlen(line));
    if (kind != 'W' && kind != 'S') {
        close(s->ready_fd);
        s->ready_fd = -1;
    }
}

/* Why this start failed, for the commands that waited for it (DBX_START_FAILED): they report
 * it rather than run a failing [setup] again each.  Not fatal: without it they start again. */
static void start_failed_record(struct sup *s, const char *msg) {
    _cleanup_close_ int dfd = open(s->proj.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        sup_log("record why the start failed: open '%s': %s", s->proj.state_dir, strerror(errno));
        return;
    }
    /* one line, within what the commands read */
    _cleanup_free_ char *line = dbx_xasprintf("%.*s\n", DBX_START_FAILED_MAX - 1, msg);
    for (char *p = line; p[0] && p[1]; p++)
        if (*p == '\n') *p = ' ';
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_write_file_atomic(dfd, DBX_START_FAILED, line, strlen(line), 0600, &e) < 0)
        sup_log("record why the start failed: %s", e->msg);
}

/* ---- the loop --------------------------------------------------------------------------- */

static void reap(struct sup *s) {
    struct signalfd_siginfo si;
    while (read(s->sig_fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGHUP) {
            s->stop_requested = true; /* outlives a setup VM's own stop */
            sup_begin_stop(s, SUP_STOP_SIGNAL);
        }
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        const char *share = NULL; /* an extra share's host path, when its virtiofsd died */
        if (pid == s->vm.qemu_pid) {
            s->vm.qemu_pid = -1;
            s->vm.qemu_status = status;
            s->guest.quit = true;
        } else if (pid == s->vm.passt_pid) {
            s->vm.passt_pid = -1;
            if (!s->guest.stopping)
                sup_log("passt exited (status %d): the VM has no network now", status);
        } else if (pid == s->vm.vfs_pid || (share = sup_share_reaped(s, pid))) {
            if (pid == s->vm.vfs_pid) s->vm.vfs_pid = -1;
            if (!s->guest.stopping) {
                /* a panic's reboot ends virtiofsd too (QEMU hung up): name the real cause */
                if (s->vm.logs[0].in >= 0) sup_logsink_pump(&s->vm.logs[0]);
                if (vm_qmp_fd(s->vm.qmp) >= 0) sup_qmp_events(s);
                sup_check_console_panic(s, true);
            }
            if (!s->guest.stopping) sup_vfs_died(s, status, share);
        }
    }
}

/* One poll round over everything; timeout_ms bounds the wait. */
void sup_poll(struct sup *s, int timeout_ms) {
    struct pollfd pfd[9 + MAX_CLIENTS + MAX_NET_FDS];
    size_t n = 0;
    pfd[n++] = (struct pollfd){s->sig_fd, POLLIN, 0};
    size_t agent_i = n;
    /* A guest that floods requests without reading the answers is not read further until it
     * drains them (legitimate traffic to the guest stops growing at AGENT_OUT_HIGH). */
    bool agent_full = dbx_buf_avail(&s->relay.agent_out) > AGENT_OUT_MAX;
    pfd[n++] = (struct pollfd){
        s->relay.agent_fd,
        (short)((agent_full ? 0 : POLLIN) | (dbx_buf_avail(&s->relay.agent_out) ? POLLOUT : 0)), 0};
    size_t logs_i = n;
    for (int i = 0; i < 3; i++)
        pfd[n++] = (struct pollfd){s->vm.logs[i].in, POLLIN, 0};
    size_t qmp_i = n;
    pfd[n++] = (struct pollfd){vm_qmp_fd(s->vm.qmp), vm_qmp_poll_events(s->vm.qmp), 0};
    size_t listen_i = n;
    pfd[n++] = (struct pollfd){s->relay.listen_fd, POLLIN, 0};
    size_t cl_i = n;
    bool agent_busy = dbx_buf_avail(&s->relay.agent_out) > AGENT_OUT_HIGH;
    for (size_t i = 0; i < s->relay.nclients; i++) {
        struct client *c = s->relay.clients[i];
        short ev = (short)((c->kind != C_CLOSING && !agent_busy ? POLLIN : 0) |
                           (dbx_buf_avail(&c->out) ? POLLOUT : 0));
        pfd[n++] = (struct pollfd){c->fd, ev, 0};
    }
    size_t watch_i = n;
    pfd[n++] = (struct pollfd){sup_watch_fd(s), POLLIN, 0};
    size_t net_i = n;
    size_t net_n = net_pollfds(s->net, pfd + n, MAX_NET_FDS, agent_busy);
    n += net_n;
    size_t passt_i = n; /* network mode open, before the guest's first frame */
    if (s->vm.passt_sock >= 0) pfd[n++] = (struct pollfd){s->vm.passt_sock, POLLIN, 0};
    if (poll(pfd, n, sup_watch_timeout(s, timeout_ms)) < 0) return;
    if (pfd[0].revents) reap(s);
    if (passt_i < n && pfd[passt_i].revents) sup_passt_start(s);
    for (int i = 0; i < 3; i++)
        if (pfd[logs_i + i].revents && s->vm.logs[i].in >= 0) sup_logsink_pump(&s->vm.logs[i]);
    /* the monitor first: a panic device report read in this round wins over the console */
    if (pfd[qmp_i].revents) sup_qmp_events(s);
    sup_check_console_panic(s, false);
    sup_nospace_poll(s);
    /* Socket sessions first: agent_read may free some, and their fd numbers be reused. */
    net_dispatch(s->net, pfd + net_i, net_n);
    if (s->relay.agent_fd >= 0 && (pfd[agent_i].revents & (POLLIN | POLLHUP | POLLERR)) &&
        !agent_full)
        sup_agent_read(s);
    if (s->relay.listen_fd >= 0 && (pfd[listen_i].revents & POLLIN)) sup_client_accept(s);
    size_t nc = net_i - cl_i;
    for (size_t i = 0; i < nc && i < s->relay.nclients; i++) {
        struct client *c = s->relay.clients[i];
        if (pfd[cl_i + i].fd != c->fd) continue;
        /* again before each: one read may finish an EXEC of up to DBX_EXEC_MAX, so the queue
         * to the guest passes AGENT_OUT_HIGH by one at most (the rest wait for the next round) */
        if (dbx_buf_avail(&s->relay.agent_out) > AGENT_OUT_HIGH) break;
        if (pfd[cl_i + i].revents & (POLLIN | POLLHUP | POLLERR)) sup_client_read(s, c);
    }
    sup_watch_dispatch(s, pfd[watch_i].revents & POLLIN);
    for (size_t i = 0; i < s->relay.nclients; i++)
        sup_client_flush(s->relay.clients[i]);
    sup_clock_tick(s);
    sup_agent_flush(s);
    /* Closing clients go once their last frame is written. */
    for (size_t i = s->relay.nclients; i-- > 0;) {
        struct client *c = s->relay.clients[i];
        if (c->kind == C_CLOSING && dbx_buf_avail(&c->out) == 0) sup_client_free(s, i);
    }
    sup_check_liveness(s);
    sup_stats_expire(s);
    sup_procs_expire(s, dbx_now_ms());
    if (s->guest.stopping && s->vm.qemu_pid > 0 && dbx_now_ms() > s->guest.stop_deadline) {
        sup_log("guest did not power off in time; killing QEMU");
        kill(s->vm.qemu_pid, SIGKILL);
        s->guest.stop_deadline = UINT64_MAX;
    }
    sup_watch_walk(s);
}

/* ---- start and end ---------------------------------------------------------------------- */

int sup_listen_unix(const char *path, int backlog, dbx_error **err) {
    struct sockaddr_un sa;
    if (dbx_sockaddr(&sa, path, err) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return dbx_error_set(err, errno, "socket");
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        return dbx_error_set(err, e, "listen on '%s'", path);
    }
    return fd;
}

static void sup_teardown(struct sup *s, bool clean) {
    /* A supervisor that did not get the alive lock leaves the run dir alone: the socket and
     * status file there are the running supervisor's (unlinking them made its box
     * unreachable). */
    if (!s->proj.run_dir || !s->owner) return;
    /* no new client first: one that comes while the others' last words go out (which may wait
     * on them, below) finds no socket, and waits on the starters' lock for the next box */
    _cleanup_free_ char *sock = dbx_xasprintf("%s/%s", s->proj.run_dir, DBX_SOCK_NAME);
    if (s->relay.listen_fd >= 0) close(s->relay.listen_fd);
    s->relay.listen_fd = -1;
    unlink(sock);
    /* why, for a command it ends (found in use: an `npm install` ended by a `devbox stop` in
     * another terminal said only "the VM stopped", which reads as a crash) */
    const char *why = s->events.stop_why;
    /* clean or not: a stopping box paused on a full disk is killed */
    const char *reason = !s->guest.stopping || !why[0]       ? NULL
                         : strcmp(why, SUP_STOP_CLIENT) == 0 ? "a 'devbox stop' (or restart, "
                                                               "reset, rm) asked for it"
                         : strcmp(why, SUP_STOP_SIGNAL) == 0 ? "its supervisor was sent a signal"
                                                             : why;
    const char *logs = clean ? "" : " (see the logs in the project's state dir)";
    _cleanup_free_ char *said = reason ? dbx_xasprintf(": %s%s", reason, logs)
                                       : dbx_xasprintf("%s%s", clean ? "" : " unexpectedly", logs);
    for (size_t i = 0; i < s->relay.nclients; i++) {
        struct client *c = s->relay.clients[i];
        if (c->kind == C_EXEC && c->gsid)
            sup_client_error(c, DBX_ERR_FAILED, "the VM stopped%s", said);
        /* blocking, but bounded: a client that reads nothing must not keep us (and the
         * starters' lock we hold) from exiting */
        dbx_set_nonblock(c->fd, false);
        struct timeval tv = {.tv_sec = 2};
        (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        sup_client_flush(c);
    }
    while (s->relay.nclients)
        sup_client_free(s, s->relay.nclients - 1);
    net_free(s->net);
    s->net = NULL;
    _cleanup_free_ char *vfs = dbx_xasprintf("%s/%s", s->proj.run_dir, DBX_VFS_SOCK_NAME);
    _cleanup_free_ char *st = dbx_xasprintf("%s/%s", s->proj.run_dir, DBX_STATUS_NAME);
    _cleanup_free_ char *gdb = dbx_xasprintf("%s/%s", s->proj.run_dir, DBX_GDB_SOCK_NAME);
    unlink(vfs);
    unlink(gdb); /* QEMU's (DEVBOX_GUEST_GDB), which a QEMU that was killed leaves */
    sup_kill_children(s);
    /* after the children: a command that comes meanwhile reads a record without a socket as a
     * box stopping (dbx_connect waits for it quietly), not one starting */
    unlink(st);
    if (clean) {
        _cleanup_free_ char *dirty = dbx_xasprintf("%s/running", s->proj.state_dir);
        unlink(dirty);
    }
}

#define ALIVE_TRIES_MS 200

/* The alive lock, taken (0), or -1 with errno.  A client asking whether a start is under way
 * (supervisor_starting) holds it shared for a moment: tried again for ALIVE_TRIES_MS before
 * that counts as another owner. */
static int alive_take(int fd) {
    int r = flock(fd, LOCK_EX | LOCK_NB);
    for (int ms = 0; r < 0 && errno == EWOULDBLOCK && ms < ALIVE_TRIES_MS; ms += 10) {
        poll(NULL, 0, 10);
        r = flock(fd, LOCK_EX | LOCK_NB);
    }
    return r;
}

/* A status record a killed supervisor left (its teardown removes it) would read as this
 * start's: a client takes a record without a control socket for a supervisor that stops. */
static int stale_record_drop(const struct dbx_project *proj, dbx_error **err) {
    _cleanup_free_ char *p = dbx_xasprintf("%s/%s", proj->run_dir, DBX_STATUS_NAME);
    if (unlink(p) < 0 && errno != ENOENT) return dbx_error_set(err, errno, "remove '%s'", p);
    return 0;
}

int dbx_supervise(const char *root, const char *net_override, int ready_fd) {
    struct sup s = {.ready_fd = ready_fd,
                    .net_override = net_override,
                    .sig_fd = -1,
                    .vm = {.qemu_pid = -1,
                           .vfs_pid = -1,
                           .passt_pid = -1,
                           .passt_sock = -1,
                           .passt_log = -1,
                           .kernel_copy = -1,
                           .initrd_copy = -1},
                    .relay = {.listen_fd = -1, .agent_fd = -1},
                    .idle = {.lock_fd = -1}};
    for (int i = 0; i < 3; i++)
        s.vm.logs[i].in = s.vm.logs[i].out = -1;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_free_ char *sock = NULL, *alive = NULL;
    _cleanup_close_ int alive_fd = -EBADF;
    bool clean = false;
    bool git_held = false;
    char pid[24];
    int pn = 0;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    s.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s.sig_fd < 0) {
        dbx_error_set(&err, errno, "signalfd");
        goto out;
    }
    dbx_git_hold(); /* through sup_prepare: the project's check and its git identity */
    git_held = true;
    if (dbx_paths_init(&s.paths, &err) < 0 ||
        dbx_project_find(&s.paths, root, true, &s.proj, &err) < 0 ||
        dbx_project_dirs(&s.proj, &err) < 0)
        goto out;
    if (strcmp(s.proj.root, root) != 0) {
        dbx_error_set(&err, 0, "'%s' is not a project root", root);
        goto out;
    }
    /* here, where every start passes, whatever the client checked */
    if (dbx_project_share_check(&s.paths, s.proj.root, &err) < 0) goto out;
    alive = dbx_xasprintf("%s/%s", s.proj.run_dir, DBX_ALIVE_LOCK);
    alive_fd = open(alive, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (alive_fd < 0 || alive_take(alive_fd) < 0) {
        dbx_error_set(&err, errno, "another supervisor owns '%s'", s.proj.root);
        goto out;
    }
    s.owner = true;
    if (stale_record_drop(&s.proj, &err) < 0) goto out;
    /* Our pid in the lock we hold: before the control socket exists (an image build, [setup],
     * the boot) this is how `devbox stop` reaches us. */
    pn = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(alive_fd, 0) < 0 || pwrite(alive_fd, pid, (size_t)pn, 0) != pn) {
        dbx_error_set(&err, errno, "write '%s'", alive);
        goto out;
    }
    s.vm.t_start = dbx_now_ns();
    sup_log("starting for '%s'", s.proj.root);
    if (sup_prepare(&s, &err) < 0) goto out;
    dbx_git_release();
    git_held = false;
    if (s.stop_requested) { /* a stop during [setup]: do not boot the box after all */
        dbx_error_set(&err, 0, "stopped while starting");
        goto out;
    }
    if (sup_boot(&s, &err) < 0) goto out;
    sock = dbx_xasprintf("%s/%s", s.proj.run_dir, DBX_SOCK_NAME);
    s.relay.listen_fd = sup_listen_unix(sock, 128, &err);
    if (s.relay.listen_fd < 0 || sup_write_status_file(&s, &err) < 0) goto out;
    {
        /* where a cold start's time went: before QEMU (image, disk, kernel choice, virtiofsd,
         * passt), QEMU's start to the guest init's hello (kernel boot), hello to ready (the
         * guest's setup: mounts, network, users, policy) */
        uint64_t now = dbx_now_ns(), boot = s.vm.started_ms * 1000000ull;
        sup_log("ready (accel %s, kernel %s, boot %llu ms: prepare %.1f, spawn %.1f, to hello "
                "%.1f, setup %.1f ms)",
                vm_accel_name(s.vm.accel), s.guest.release,
                (unsigned long long)(dbx_now_ms() - s.vm.started_ms), (boot - s.vm.t_start) / 1e6,
                (s.vm.t_spawned - boot) / 1e6, (s.vm.t_hello - s.vm.t_spawned) / 1e6,
                (now - s.vm.t_hello) / 1e6);
    }
    sup_ready_say(&s, 'O', NULL);
    {
        _cleanup_free_ char *failed = dbx_xasprintf("%s/%s", s.proj.state_dir, DBX_START_FAILED);
        (void)unlink(failed); /* an earlier start's: this one did not fail */
    }
    sup_event_box(&s, "started", vm_accel_name(s.vm.accel));
    sup_watch_start(&s);
    sup_idle_ready(&s);
    while (!s.guest.quit) {
        sup_poll(&s, sup_idle_poll_timeout(
                         &s, s.guest.stopping || s.guest.console_panic_ms ? 200 : 5000));
        sup_idle_check(&s);
    }
    /* The monitor, then the console, may still hold why QEMU went away (a panic, then a
     * reboot -no-reboot ends). */
    if (vm_qmp_fd(s.vm.qmp) >= 0) sup_qmp_events(&s);
    if (s.vm.logs[0].in >= 0) sup_logsink_pump(&s.vm.logs[0]);
    sup_check_console_panic(&s, true);
    clean = s.guest.stopping && WIFEXITED(s.vm.qemu_status) && WEXITSTATUS(s.vm.qemu_status) == 0;
    sup_log("QEMU exited (%s, status 0x%x)", clean ? "clean" : "unexpected", s.vm.qemu_status);
    sup_teardown(&s, clean);
    sup_event_box(&s, s.idle.stopped_ms ? "idle-stopped" : "stopped",
                  clean || s.guest.stopping ? NULL : "QEMU exited unexpectedly");
out:
    if (git_held) dbx_git_release();
    if (err) {
        sup_log("error: %s", err->msg);
        /* a start of ours that failed (not a stop's, after which a waiting command boots
         * anew, nor another supervisor's project) is recorded for the commands waiting */
        if (s.owner && s.ready_fd >= 0 && !s.stop_requested) start_failed_record(&s, err->msg);
        sup_ready_say(&s, 'E', err->msg);
        sup_teardown(&s, false);
    }
    if (s.sig_fd >= 0) close(s.sig_fd);
    /* A stop holds the starters' lock (sup_begin_stop, the idle stop's drain): a command
     * waiting for it boots a new VM, which needs the alive lock free first. */
    if (alive_fd >= 0) close(TAKE_FD(alive_fd));
    sup_idle_release(&s);
    sup_watch_stop(&s);
    free(s.guest.boot_error);
    free(s.guest.release);
    vm_kernel_clear(&s.kernel);
    free(s.vm.disk);
    free(s.ca_pem);
    free(s.tz_name);
    free(s.tz_data);
    sup_secrets_free(&s);
    sup_procs_free(&s);
    sup_shares_free(&s);
    dbx_plan_free(&s.plan);
    dbx_project_rec_clear(&s.rec);
    profile_clear(&s.prof);
    dbx_project_clear(&s.proj);
    dbx_paths_clear(&s.paths);
    return err ? 1 : 0;
}

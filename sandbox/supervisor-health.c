/* sandbox/supervisor-health.c: what can go wrong with a running guest and what the supervisor
 * does about it: a kernel panic (panic device or console), a guest that stops answering, a host
 * disk that fills up (QEMU pauses the VM), virtiofsd dying; and stopping.  Runs on the poll
 * loop's thread (sandbox-supervisor.c). */
#define _GNU_SOURCE
#include "supervisor-internal.h"

#include <signal.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>

#define STOP_MS 20000
/* Without virtiofsd the guest's shutdown would hang on the share: a short grace to sync the
 * root disk, then QEMU is killed. */
#define VFS_GONE_STOP_MS 3000
/* A guest that sends nothing for PING_IDLE_MS is pinged (init answers PING from its poll loop);
 * one silent for LIVENESS_MS is dead: a hung or panicked kernel (panic=-1 only helps when
 * the reboot itself works; under TCG it sometimes spins instead).  Generous: a loaded TCG guest
 * under a fork bomb still answers within seconds, since init is outside the box's cgroup. */
#define PING_IDLE_MS 15000
#define LIVENESS_MS 90000
/* What the guest kernel prints on a panic (always, even with `quiet`: KERN_EMERG). */
#define PANIC_MARK "Kernel panic - not syncing"
/* The kernel prints PANIC_MARK before its panic notifiers run, so the console usually shows a
 * panic just before the panic device reports it (QMP GUEST_PANICKED, vm-qemu.c).  The device's
 * report is the one that counts; the console line alone (a kernel without the pvpanic_mmio
 * driver) is believed after this long (in between, the kernel stops the other CPUs: up to 1 s). */
#define PANIC_CONFIRM_MS 5000
/* QEMU pauses the VM when a disk write fails with ENOSPC (werror=enospc); it is resumed once
 * the overlay's filesystem has this much free space again (checked every NOSPACE_POLL_MS). */
#define NOSPACE_RESUME_BYTES (32ull << 20)
#define NOSPACE_POLL_MS 1000

void sup_begin_stop(struct sup *s, const char *why) {
    if (s->guest.stopping) return;
    sup_log("stopping: %s", why);
    sup_event_box(s, "stopping", why);
    s->guest.stopping = true;
    s->guest.stop_deadline = dbx_now_ms() + STOP_MS;
    /* a command that comes meanwhile starts the next box once we are gone */
    sup_hold_starters(s);
    /* A VM paused on a full disk cannot run its shutdown. */
    if (s->guest.hello && !s->guest.nospace)
        sup_agent_send(s, DBX_MSG_SHUTDOWN, 0, NULL, 0);
    else if (s->vm.qemu_pid > 0)
        kill(s->vm.qemu_pid, SIGKILL);
}

/* Every running command ends with msg, in one line. */
static void fail_exec_clients(struct sup *s, const char *msg) {
    for (size_t i = 0; i < s->relay.nclients; i++)
        if (s->relay.clients[i]->kind == C_EXEC)
            sup_client_error(s->relay.clients[i], DBX_ERR_FAILED, "%s", msg);
}

/* The guest is gone for good (its kernel panicked, or it stopped answering): say so once to
 * every waiting client, in one line, and kill QEMU now: nothing in the guest can shut down
 * cleanly any more, and a spinning vCPU would otherwise burn a host core until `devbox stop`.
 * The disk is checked on the next start (the "running" mark stays). */
static void guest_died(struct sup *s, const char *why, const char *source) {
    if (s->guest.dead) return;
    s->guest.dead = true;
    sup_log("%s (%s); killing QEMU", why, source);
    sup_event_box(s, "stopping", why);
    if (!s->guest.ready && !s->guest.boot_error) s->guest.boot_error = dbx_xstrdup(why);
    _cleanup_free_ char *m =
        dbx_xasprintf("%s; the VM was stopped (logs in '%s'; the next command starts it again)",
                      why, s->proj.state_dir);
    fail_exec_clients(s, m);
    s->guest.stopping = true;
    s->guest.stop_deadline = UINT64_MAX;
    if (s->vm.qemu_pid > 0) kill(s->vm.qemu_pid, SIGKILL);
}

/* The console's word on a panic, once the panic device had PANIC_CONFIRM_MS to report it
 * (qmp_events); at once (now_or_never) when QEMU is going away, or when it has no monitor: no
 * report can come then. */
void sup_check_console_panic(struct sup *s, bool now_or_never) {
    struct logsink *l = &s->vm.logs[0];
    if (s->guest.dead) return;
    uint64_t now = dbx_now_ms();
    if (!s->guest.console_panic_ms && memmem(l->tail, l->tail_len, PANIC_MARK, strlen(PANIC_MARK)))
        s->guest.console_panic_ms = now;
    if (!s->guest.console_panic_ms) return;
    bool device_can_report = s->vm.qemu_pid > 0 && vm_qmp_fd(s->vm.qmp) >= 0;
    if (now_or_never || !device_can_report || now - s->guest.console_panic_ms >= PANIC_CONFIRM_MS)
        guest_died(s, "the guest kernel panicked", "seen on the console");
}

static void clock_frame(struct sup *s, bool answer, uint64_t token) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint8_t b[DBX_CLOCK_ANSWER_LEN];
    sup_agent_send(
        s, DBX_MSG_CLOCK, 0, b,
        dbx_enc_clock(b, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, answer, token));
}

/* The host's wall clock to the guest (DBX_MSG_CLOCK), at most once a second unless forced.  A
 * guest whose clock lags the host's sees the files the host just wrote as written in its
 * future: `make` warns of clock skew and may rebuild or skip the wrong things.  A guest reads
 * its clock once at boot, from an RTC that counts whole seconds (so it starts up to a second
 * behind), and a host that sleeps leaves it behind by the nap.  Sent before SETUP, before an
 * EXEC, with a PING and while the box is busy (sup_clock_tick), the last one a second old at
 * most by the time a command starts. */
void sup_clock_send(struct sup *s, bool force) {
    uint64_t now = dbx_now_ms();
    if (!force && s->guest.clock_ms && now - s->guest.clock_ms < 1000) return;
    s->guest.clock_ms = now;
    clock_frame(s, false, 0);
}

/* The guest asked (it seemed to lead: init-clock.c).  It trusts the answer only when it comes
 * back quickly, and it does: the loop writes what it queued right after the guest's frames it
 * read (batched, like PONG, so that a flood of asks costs a write per batch, not per ask, and
 * stops being read past AGENT_OUT_MAX). */
void sup_clock_answer(struct sup *s, uint64_t token) {
    clock_frame(s, true, token);
}

static bool guest_talks(const struct sup *s) {
    return s->guest.ready && !s->guest.stopping && !s->guest.dead && !s->guest.nospace &&
           s->relay.agent_fd >= 0;
}

/* A command may run for hours, and its output keeps the guest from the quiet that brings a
 * PING: a clock that drifts behind meanwhile puts what the command writes in its future (the
 * make of a long build warns of clock skew).  So while a session or a forwarded connection is
 * live, the clock goes with a round of the loop at most once a second (at least every 5 s, the
 * loop's timeout); a box with nothing running gets none.  Not behind a backlog the guest is not
 * reading (a stalled init): it would come late, and every frame a second late makes the guest
 * ask.  Called before the round's frames are written: queued after them, it would wait a
 * round, late by the wait. */
#define CLOCK_TICK_BACKLOG (64u << 10)
void sup_clock_tick(struct sup *s) {
    if (guest_talks(s) && sup_busy(s) && dbx_buf_avail(&s->relay.agent_out) <= CLOCK_TICK_BACKLOG)
        sup_clock_send(s, false);
}

/* Called every poll round: ping a quiet guest, declare a silent one dead. */
void sup_check_liveness(struct sup *s) {
    if (!guest_talks(s)) return;
    uint64_t now = dbx_now_ms(), quiet = now - s->guest.last_frame_ms;
    if (quiet > LIVENESS_MS) {
        _cleanup_free_ char *why =
            dbx_xasprintf("the guest has not answered for %us", (unsigned)(quiet / 1000));
        guest_died(s, why, "liveness deadline");
    } else if (quiet > PING_IDLE_MS && s->guest.ping_token != s->guest.last_frame_ms) {
        /* one ping per quiet spell: the token remembers which spell it was sent in */
        uint8_t b[8];
        s->guest.ping_token = s->guest.last_frame_ms;
        sup_clock_send(s, false);
        sup_agent_send(s, DBX_MSG_PING, 0, b, dbx_enc_u64(b, s->guest.ping_token));
    }
}

char *sup_nospace_msg(struct sup *s) {
    return dbx_xasprintf("the host disk is full (no space left for '%s/disk.qcow2'); the VM is "
                         "paused until space is freed",
                         s->proj.data_dir);
}

/* QEMU paused the VM: a write to the overlay hit ENOSPC.  Every exec client is told in one line
 * and its command ended (it would hang for as long as the disk stays full); the VM resumes on
 * its own once space returns (nospace_poll). */
static void nospace_begin(struct sup *s) {
    _cleanup_free_ char *m = sup_nospace_msg(s);
    if (!s->guest.nospace) sup_log("%s", m);
    s->guest.nospace = true;
    s->guest.nospace_check_ms = dbx_now_ms() + NOSPACE_POLL_MS;
    for (size_t i = 0; i < s->relay.nclients; i++) {
        struct client *c = s->relay.clients[i];
        if (c->kind == C_EXEC) {
            sup_client_detach(s, c);
            sup_client_error(c, DBX_ERR_FAILED, "%s (the command was ended)", m);
        }
    }
    if (s->guest.stopping && s->vm.qemu_pid > 0)
        kill(s->vm.qemu_pid, SIGKILL); /* cannot shut down now */
}

void sup_nospace_poll(struct sup *s) {
    if (!s->guest.nospace || dbx_now_ms() < s->guest.nospace_check_ms) return;
    s->guest.nospace_check_ms = dbx_now_ms() + NOSPACE_POLL_MS;
    struct statvfs sv;
    if (statvfs(s->proj.data_dir, &sv) < 0) return;
    if ((uint64_t)sv.f_bavail * sv.f_frsize < NOSPACE_RESUME_BYTES) return;
    sup_log("the host disk has space again; resuming the VM");
    vm_qmp_cont(s->vm.qmp); /* a write that fails again pauses it again */
}

void sup_qmp_events(struct sup *s) {
    struct vm_qmp_state st = {0};
    _cleanup_error_ dbx_error *e = NULL;
    if (vm_qmp_io(s->vm.qmp, &st, &e) < 0 && !s->guest.stopping && !s->guest.quit)
        sup_log("%s", e->msg); /* QEMU is going away; SIGCHLD follows */
    if (st.events & VM_QMP_EV_NOSPACE)
        nospace_begin(s);
    else if (st.events & VM_QMP_EV_IO_ERROR)
        sup_log("QEMU reported a disk I/O error");
    if ((st.events & VM_QMP_EV_RESUME) && !(st.events & VM_QMP_EV_NOSPACE) && s->guest.nospace) {
        s->guest.nospace = false;
        s->guest.last_frame_ms = dbx_now_ms(); /* the liveness clock stood still while paused */
        sup_log("the VM runs again");
    }
    if (st.events & VM_QMP_EV_PANIC)
        guest_died(s, "the guest kernel panicked", "reported by the panic device");
}

/* ---- the workspace replaced on the host ----------------------------------------------------
 * virtiofsd serves the directory it was started on, not its path.  When the user deletes the
 * repository and makes it again at the same path (`rm -rf repo && git clone URL repo`), a
 * running box goes on sharing the old, deleted directory: its commands see an empty workspace
 * and cannot create anything in it.  So each EXEC compares the directory at the project's path,
 * and at each share's host path ([mounts], a worktree's repository), with the one recorded
 * before its virtiofsd started (a stat each, a few microseconds).
 *  - The box idle (no session, no forwarded connection): it is stopped, and this client and
 *    every other until the supervisor exits are answered DBX_ERR_RESTART; the client then
 *    starts the box again, which shares the new directory, and sends its command there.  What
 *    the stop loses is what an idle stop loses: nothing on a disk.
 *  - Commands or connections still running in the old directory: they are not ended for a new
 *    command; that one is refused with a line saying that `devbox restart` shares the new one.
 * The workspace is compared by path as virtiofsd opens it at the next start (symbolic links
 * followed), a share as shares_start opens it (replaced_dir); a path that does not stat (gone)
 * is left alone: the client's project lookup, or the next start, reports it. */
struct sup_dir_id sup_dir_id_of(const struct stat *st) {
    return st ? (struct sup_dir_id){st->st_dev, st->st_ino, true} : (struct sup_dir_id){0};
}

/* Whether the directory at path is another than id's; a path that does not stat is not. */
static bool other_dir(const char *path, int flags, const struct sup_dir_id *id) {
    struct stat st;
    return id->known && fstatat(AT_FDCWD, path, &st, flags) == 0 &&
           (st.st_dev != id->dev || st.st_ino != id->ino);
}

/* The workspace's path, or a share's, whose directory is another than its virtiofsd's; NULL
 * when none is.  Shares by lstat: their hosts are refused as symbolic links at the start
 * (shares_start), so one swapped in since counts as replaced, and the restart reports it. */
static const char *replaced_dir(const struct sup *s) {
    if (s->vm.no_workspace) return NULL;
    if (other_dir(s->proj.root, 0, &s->vm.ws_id)) return s->proj.root;
    for (size_t i = 0; i < s->nshares; i++)
        if (other_dir(s->shares[i].host, AT_SYMLINK_NOFOLLOW, &s->shares[i].id))
            return s->shares[i].host;
    return NULL;
}

bool sup_ws_replaced(struct sup *s, struct client *c) {
    const char *dir = s->vm.ws_replaced ? s->vm.ws_replaced : replaced_dir(s);
    if (!dir) return false;
    _cleanup_free_ char *root = dbx_escape(dir);
    if (!s->vm.ws_replaced) {
        if (sup_busy(s)) {
            sup_client_error(c, DBX_ERR_FAILED,
                             "'%s' is a new directory since this box started, and commands or "
                             "connections still use the old, deleted one the box shares; 'devbox "
                             "restart' shares the new one (it ends them)",
                             root);
            return true;
        }
        sup_log("'%s' is a new directory since the box started; stopping the box so that its "
                "next start shares it",
                root);
        s->vm.ws_replaced = dir;
        sup_begin_stop(s, "a shared directory was replaced");
    }
    sup_client_error(c, DBX_ERR_RESTART,
                     "'%s' is a new directory since this box started (the box shared the old, "
                     "deleted one)",
                     root);
    return true;
}

/* The workspace is gone with virtiofsd: every running command is told now, in one line, rather
 * than when the guest's shutdown gives up on the share. */
void sup_vfs_died(struct sup *s, int status, const char *share) {
    _cleanup_free_ char *how = WIFSIGNALED(status)
                                   ? dbx_xasprintf("killed by signal %d", WTERMSIG(status))
                                   : dbx_xasprintf("exited with status %d", WEXITSTATUS(status));
    _cleanup_free_ char *what =
        share ? dbx_xasprintf("the share of '%s'", share) : dbx_xstrdup("the workspace share");
    sup_log("virtiofsd of %s %s; stopping the VM", what, how);
    _cleanup_free_ char *m = dbx_xasprintf("%s stopped (virtiofsd %s); the VM is being stopped "
                                           "(the next command starts it again)",
                                           what, how);
    fail_exec_clients(s, m);
    sup_begin_stop(s, "virtiofsd exited");
    s->guest.stop_deadline = dbx_now_ms() + VFS_GONE_STOP_MS;
}

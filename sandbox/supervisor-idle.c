/* sandbox/supervisor-idle.c: idle stop (issue 12).  A box with no session (an exec or enter
 * client, or an `exec -d` command still running: both hold a session), no socket session (a
 * port forward's connection, a proxied connection) for config.ini's [box] idle_stop is
 * stopped the way `devbox stop` stops it (the guest shuts down, the disk stays), and the
 * journal gets box.idle-stopped.  The next command boots the box again as usual.
 *
 * The clock costs no wake-ups of its own: after each poll round the loop tells it whether the
 * box is busy, and the poll timeout is cut to the moment the box would be due.
 *
 * The race with a command that arrives as the box goes idle.  A client reaches the box by
 * connect(2) on the control socket, and only when that fails does it take the starters' lock
 * (dbx_connect) and start a supervisor.  So the idle stop, in this order:
 *  1. takes the starters' lock without waiting (someone holds it: starting or removing the
 *     project; tried again a second later);
 *  2. unlinks the control socket: from here on a client's connect fails, it waits for the lock,
 *     and boots a new VM once this supervisor has exited (the lock is released after the alive
 *     lock, in dbx_supervise): a clean reboot;
 *  3. accepts what is already queued on the socket, and keeps the (now nameless) socket open
 *     and polled until the VM stops or the stop is called off: a connect(2) that found the
 *     name just before the unlink lands in its queue a moment later and is served, where
 *     closing it would reset that connection after the client's connect had succeeded;
 *  4. waits (at most IDLE_DRAIN_MS) until every client it has is answered.  A client that was
 *     queued sends its request right after connect: an exec or enter starts a session and is
 *     served by this VM: the idle stop is called off, the socket made again and the lock given
 *     back (a starter waiting for it then connects to this VM).  A status, ps or stats request
 *     is answered and does not count.
 *  5. stops the VM.  A client that connected before step 2 and said nothing for IDLE_DRAIN_MS
 *     is closed when the supervisor exits (its command fails).
 * From step 2 on, `devbox status` finds no socket and says "stopped" while the guest is still
 * shutting down; `devbox stop` finds the supervisor by its alive lock and waits for it.  Runs
 * on the poll loop's thread (sandbox-supervisor.c). */
#define _GNU_SOURCE
#include "supervisor-internal.h"

#include <inttypes.h>
#include <sys/file.h>

#define IDLE_DRAIN_MS 10000
#define IDLE_LOCK_RETRY_MS 1000
/* The start's library pages go this long after the box is ready (supervisor-trim.c): after the
 * first commands, which a client that just started the box sends at once. */
#define TRIM_AFTER_MS 2000

/* ---- the clock (pure: unit-tested) -------------------------------------------------------- */

void sup_idle_mark(struct sup_idle_clock *c, bool busy, uint64_t now) {
    if (busy)
        c->since_ms = 0;
    else if (!c->since_ms)
        c->since_ms = now ? now : 1;
}

uint64_t sup_idle_for(const struct sup_idle_clock *c, uint64_t now) {
    return c->since_ms && now > c->since_ms ? now - c->since_ms : 0;
}

bool sup_idle_due(const struct sup_idle_clock *c, uint64_t now) {
    return c->stop_ms && c->since_ms && now >= c->since_ms && now - c->since_ms >= c->stop_ms;
}

int sup_idle_timeout(const struct sup_idle_clock *c, uint64_t now, int timeout_ms) {
    if (!c->stop_ms || !c->since_ms) return timeout_ms;
    uint64_t due = c->since_ms + c->stop_ms;
    if (now >= due) return 0;
    return due - now < (uint64_t)timeout_ms ? (int)(due - now) : timeout_ms;
}

/* ---- the supervisor's side ---------------------------------------------------------------- */

bool sup_busy(const struct sup *s) {
    return s->relay.nsess > 0 || net_nsocks(s->net) > 0;
}

static char *sock_path(const struct sup *s) {
    return dbx_xasprintf("%s/%s", s->proj.run_dir, DBX_SOCK_NAME);
}

void sup_idle_ready(struct sup *s) {
    sup_idle_mark(&s->idle.clock, sup_busy(s), dbx_now_ms());
    s->idle.trim_ms = dbx_now_ms() + TRIM_AFTER_MS;
}

/* Once per boot, TRIM_AFTER_MS after it: busy or not, the start's libraries are not needed. */
static void trim_check(struct sup *s, uint64_t now) {
    if (!s->idle.trim_ms || now < s->idle.trim_ms) return;
    s->idle.trim_ms = 0;
    uint64_t kb = sup_trim_file_pages();
    sup_log("unmapped %" PRIu64 " KiB of library pages the start used", kb);
}

int sup_idle_poll_timeout(struct sup *s, int timeout_ms) {
    uint64_t now = dbx_now_ms();
    if (s->guest.stopping) return timeout_ms;
    if (s->idle.trim_ms) {
        uint64_t left = s->idle.trim_ms > now ? s->idle.trim_ms - now : 0;
        if (left < (uint64_t)timeout_ms) timeout_ms = (int)left;
    }
    if (s->idle.drain_deadline) {
        uint64_t left = s->idle.drain_deadline > now ? s->idle.drain_deadline - now : 0;
        return left < (uint64_t)timeout_ms ? (int)left : timeout_ms;
    }
    if (s->idle.retry_ms > now) {
        uint64_t left = s->idle.retry_ms - now;
        return left < (uint64_t)timeout_ms ? (int)left : timeout_ms;
    }
    return sup_idle_timeout(&s->idle.clock, now, timeout_ms);
}

/* Steps 1-3: false when the lock is taken (try again later) or the socket cannot go. */
static bool drain_begin(struct sup *s, uint64_t now) {
    if (!sup_hold_starters(s)) {
        s->idle.retry_ms = now + IDLE_LOCK_RETRY_MS;
        return false;
    }
    _cleanup_free_ char *sock = sock_path(s);
    if (unlink(sock) < 0 && errno != ENOENT) {
        sup_log("idle stop: unlink '%s': %s", sock, strerror(errno));
        sup_idle_release(s);
        s->idle.retry_ms = now + IDLE_LOCK_RETRY_MS;
        return false;
    }
    /* what connected before the unlink waits in the backlog: take it all (the poll loop takes
     * any that still arrives) */
    while (s->relay.listen_fd >= 0 && sup_client_accept(s)) {
    }
    s->idle.drain_deadline = now + IDLE_DRAIN_MS;
    return true;
}

/* A queued client started a session: this VM serves it, and anyone after it. */
static void drain_cancel(struct sup *s) {
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_free_ char *sock = sock_path(s);
    s->idle.drain_deadline = 0;
    /* the nameless socket's last arrivals first, then a socket with the name again */
    while (s->relay.listen_fd >= 0 && sup_client_accept(s)) {
    }
    if (s->relay.listen_fd >= 0) close(s->relay.listen_fd);
    s->relay.listen_fd = sup_listen_unix(sock, 128, &err);
    if (s->relay.listen_fd < 0) {
        /* no socket, no client: stopping is all that is left (the lock is kept until exit) */
        sup_log("idle stop: cannot listen again: %s", err->msg);
        sup_begin_stop(s, "the control socket could not be made again");
        return;
    }
    sup_idle_release(s);
    sup_log("idle stop called off: a command came in");
}

void sup_idle_check(struct sup *s) {
    if (s->guest.stopping || !s->guest.ready) return;
    uint64_t now = dbx_now_ms();
    trim_check(s, now);
    sup_idle_mark(&s->idle.clock, sup_busy(s), now);
    if (s->idle.drain_deadline) {
        if (sup_busy(s)) return drain_cancel(s);
        if (s->relay.nclients > 0 && now < s->idle.drain_deadline) return;
        uint64_t idle_ms = sup_idle_for(&s->idle.clock, now);
        s->idle.drain_deadline = 0;
        s->idle.stopped_ms = idle_ms ? idle_ms : 1;
        _cleanup_free_ char *d = dbx_status_idle_human(idle_ms / 1000);
        _cleanup_free_ char *why = dbx_xasprintf("idle for %s", d);
        sup_begin_stop(s, why);
        return;
    }
    if (now < s->idle.retry_ms || !sup_idle_due(&s->idle.clock, now)) return;
    s->idle.retry_ms = 0;
    if (drain_begin(s, now)) sup_idle_check(s); /* nothing queued: stop now */
}

bool sup_hold_starters(struct sup *s) {
    if (s->idle.lock_fd >= 0) return true;
    _cleanup_error_ dbx_error *err = NULL;
    int fd = -EBADF;
    if (dbx_project_lock(s->proj.state_dir, false, &fd, &err) == 0 && fd >= 0)
        s->idle.lock_fd = fd;
    else if (err)
        sup_log("starters' lock: %s", err->msg);
    return s->idle.lock_fd >= 0;
}

void sup_idle_release(struct sup *s) {
    if (s->idle.lock_fd >= 0) close(s->idle.lock_fd);
    s->idle.lock_fd = -1;
}

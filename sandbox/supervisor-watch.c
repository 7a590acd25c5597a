/* sandbox/supervisor-watch.c: host edits wake the box's file watchers (issue 13).  The loop
 * polls the workspace watcher (mounts/mounts-watch.c) and sends its coalesced notices to the
 * guest as CHANGED frames once the guest is ready; guest/init-watch.c raises the events. */
#include "supervisor-internal.h"

#include "../mounts/mounts.h"

/* A slice of the first walk (mounts_watch_walk: 256 directories or 5 ms, whichever comes
 * first), and its log line once it is done (at once for a root without directories). */
static void walk(struct sup *s) {
    bool more = mounts_watch_walk(s->watch, 256, 5);
    _cleanup_free_ char *warn = mounts_watch_take_warning(s->watch);
    if (warn) sup_log("%s", warn);
    if (!more) sup_log("file watching: %zu directories", mounts_watch_count(s->watch));
}

/* Last in each round of the loop, after what the round read was written on (an EXEC to the
 * guest, output to a client): a command read meanwhile waits for no slice. */
void sup_watch_walk(struct sup *s) {
    if (s->watch && mounts_watch_walking(s->watch)) walk(s);
}

/* After the boot: watch the workspace (not a setup VM's, which has none).  A failure only
 * costs the feature: logged, and the box runs on. */
void sup_watch_start(struct sup *s) {
    _cleanup_error_ dbx_error *err = NULL;
    if (s->vm.no_workspace || s->watch) return;
    if (mounts_watch_new(s->proj.root, 0, &s->watch, &err) < 0) {
        sup_log("file watching is off: %s", err->msg);
        return;
    }
    walk(s);
}

void sup_watch_stop(struct sup *s) {
    s->watch = mounts_watch_free(s->watch);
}

int sup_watch_fd(const struct sup *s) {
    return s->watch ? mounts_watch_fd(s->watch) : -1;
}

/* Notices go out only to a guest that is up and keeps up. */
static bool can_send(const struct sup *s) {
    return s->watch && s->guest.ready && !s->guest.stopping && !s->guest.dead &&
           s->relay.agent_fd >= 0 && dbx_buf_avail(&s->relay.agent_out) < AGENT_OUT_HIGH;
}

/* The poll timeout, shortened to the watcher's next notice. */
int sup_watch_timeout(struct sup *s, int timeout_ms) {
    if (s->watch && mounts_watch_walking(s->watch)) return 0; /* the next slice */
    if (!can_send(s)) return timeout_ms; /* (a busy channel wakes the loop when it drains) */
    int t = mounts_watch_timeout(s->watch, dbx_now_ms());
    return t >= 0 && t < timeout_ms ? t : timeout_ms;
}

/* After poll: read what came (readable) and send what is due, unless the agent channel is
 * backed up (the notices wait, and coalesce further). */
void sup_watch_dispatch(struct sup *s, bool readable) {
    if (!s->watch) return;
    uint64_t now = dbx_now_ms();
    if (readable) mounts_watch_read(s->watch, now);
    _cleanup_free_ char *warn = mounts_watch_take_warning(s->watch);
    if (warn) sup_log("%s", warn);
    struct dbx_buf b = {0};
    while (can_send(s) && mounts_watch_take(s->watch, now, &b)) {
        sup_agent_send(s, DBX_MSG_CHANGED, 0, b.data, b.len);
        b.len = b.off = 0;
    }
    dbx_buf_free(&b);
}

/* Before an EXEC goes to the guest: what the host changed so far in the directories watched
 * yet (its inotify events are queued
 * by the time the syscall that made them returned, so before the client even connected) goes
 * first, in a CHANGED the guest handles before the EXEC behind it.  Without it, a file created
 * on the host and read by the next command could look empty: a notice sent for its creation
 * had the guest cache its size 0 for up to a second, and the notice for its write was still
 * waiting for its interval. */
void sup_watch_flush(struct sup *s) {
    if (!can_send(s)) return;
    uint64_t now = dbx_now_ms();
    mounts_watch_read(s->watch, now);
    struct dbx_buf b = {0};
    while (can_send(s) && mounts_watch_take_now(s->watch, now, &b)) {
        sup_agent_send(s, DBX_MSG_CHANGED, 0, b.data, b.len);
        b.len = b.off = 0;
    }
    dbx_buf_free(&b);
}

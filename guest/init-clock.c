/* guest/init-clock.c: the box's wall clock follows the host's (DBX_MSG_CLOCK).
 *
 * Never behind.  Files the box writes in the workspace carry the host's clock (virtiofsd writes
 * them), so a box whose clock is behind the host's by even a millisecond sees the file it just
 * wrote as written in its future: `make` warns "Clock skew detected.  Your build may be
 * incomplete." (found in use: zlib's `make test`, 'minigzip64' 2.7 ms in the future).  A guest
 * reads its clock at boot from an RTC that counts whole seconds, a host that sleeps leaves it
 * behind, and it drifts.  So a frame that shows the guest leading it by less than
 * CLOCK_LEAD_MIN_NS steps it forward at once, to CLOCK_LEAD_NS past the frame's time: the frame
 * was already late by its trip when read (a few ms under TCG), and stepping to the frame's time
 * itself left the guest behind by that trip, every time.  A late frame only understates the
 * lag, so stepping forward on it never puts the guest further ahead than CLOCK_LEAD_NS.  What
 * the box writes in the workspace carries the host's time whatever the lead, `touch` included
 * (virtiofsd sets UTIME_NOW); only files on the box's own disks carry the guest's, up to 20 ms
 * ahead (a guest kept within its band could already be up to a second ahead).
 *
 * Back only on a fresh answer.  The same late frame makes a guest whose clock is right look
 * ahead by the delay: a frame waits in the port while the init is blocked (on a stalled
 * workspace, say), and stepping back to it set the box's clock back by the stall, then forward
 * again at the next command (found in use: the workspace stalled for 22 s, the box's clock
 * went back 6956 ms).  A guest that seems to lead by CLOCK_AHEAD_NS or more asks the host
 * (a CLOCK of its own whose token is its CLOCK_MONOTONIC) and steps back only on an answer
 * that came back within CLOCK_RTT_MAX_NS, to the host's time plus half the round trip (plus
 * the lead).  Leads from CLOCK_LEAD_MIN_NS up to a second are left alone: stepping back makes
 * files written just before look newer than those written next.
 *
 * The decision only: init-serve.c reads the clocks, sends the ask, waits for the answer and
 * sets the clock. */
#include "init-internal.h"

#define CLOCK_LEAD_NS 20000000ll      /* 20 ms: where a step puts the guest, past the host */
#define CLOCK_LEAD_MIN_NS 5000000ll   /* 5 ms: a lead under this (or a lag) steps forward */
#define CLOCK_AHEAD_NS 1000000000ll   /* 1 s: ask, then step back */
#define CLOCK_RTT_MAX_NS 100000000ull /* an answer slower than this says too little */
#define CLOCK_REASK_NS 1000000000ull  /* an unanswered ask is repeated after this */

/* t + CLOCK_LEAD_NS, at most INT64_MAX (t is at most INT64_MAX) */
static int64_t lead(uint64_t t) {
    return t > (uint64_t)(INT64_MAX - CLOCK_LEAD_NS) ? INT64_MAX : (int64_t)t + CLOCK_LEAD_NS;
}

struct clock_verdict clock_decide(struct clock_state *st, uint64_t host_ns, bool answer,
                                  uint64_t token, int64_t rt_ns, uint64_t mono_ns) {
    struct clock_verdict v = {.act = CLOCK_KEEP};
    /* host_ns <= INT64_MAX (dbx_dec_clock) and CLOCK_REALTIME is never negative */
    if (!answer) {
        v.lag_ns = (int64_t)host_ns - rt_ns;
        if (v.lag_ns > -CLOCK_LEAD_MIN_NS) {
            v.act = CLOCK_STEP;
            v.to_ns = lead(host_ns);
        } else if (v.lag_ns <= -CLOCK_AHEAD_NS &&
                   (!st->ask || mono_ns - st->ask >= CLOCK_REASK_NS)) {
            v.act = CLOCK_ASK;
            st->ask = mono_ns ? mono_ns : 1;
            st->ask_lead_ns = -v.lag_ns;
        }
        return v;
    }
    if (!st->ask || token != st->ask) return v; /* not asked, or an ask already given up */
    st->ask = 0;
    uint64_t rtt = mono_ns - token;
    if (mono_ns < token || rtt > CLOCK_RTT_MAX_NS) {
        v.act = CLOCK_SLOW;
        v.lag_ns = mono_ns < token ? 0 : (int64_t)rtt;
        return v;
    }
    int64_t est = (int64_t)host_ns > INT64_MAX - (int64_t)(rtt / 2)
                      ? INT64_MAX
                      : (int64_t)host_ns + (int64_t)(rtt / 2);
    v.lag_ns = est - rt_ns;
    if (v.lag_ns > -CLOCK_LEAD_MIN_NS || v.lag_ns <= -CLOCK_AHEAD_NS) {
        v.act = CLOCK_STEP;
        v.to_ns = lead((uint64_t)est);
    }
    if (v.lag_ns > -CLOCK_AHEAD_NS) v.late_ns = st->ask_lead_ns;
    return v;
}

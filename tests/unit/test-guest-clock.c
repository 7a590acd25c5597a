/* tests/unit/test-guest-clock.c: how the guest's clock follows the host's (guest/init-clock.c):
 * a frame that shows the guest behind, or ahead by less than 5 ms, steps it forward at once, to
 * 20 ms past the frame's time, even a late one (it only understates the lag); one that shows it
 * a second or more ahead only asks the host, once a second while unanswered; an answer that came
 * back quickly steps it back (to the host's time plus half the round trip, plus the 20 ms), and
 * says how late the frame was when the guest is not ahead after all; a slow, unasked, repeated
 * or superseded answer changes nothing. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* init-clock.c is guest code (the static init links it); the test compiles it in. */
#include "guest/init-clock.c"

#define MS 1000000ll
#define S 1000000000ll
#define T0 (1796500000ll * S) /* the guest's CLOCK_REALTIME in these cases */
#define M0 (5000ull * S)      /* its CLOCK_MONOTONIC */

static void test_behind_steps_forward(void **state) {
    struct clock_state st = {0};
    struct clock_verdict v = clock_decide(&st, T0 + 2 * MS, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_STEP);
    assert_int_equal(v.to_ns, T0 + 22 * MS); /* past the frame's time by the lead */
    assert_int_equal(v.lag_ns, 2 * MS);
    /* behind by a fraction of a millisecond (zlib's make saw a file 2.7 ms in its future) */
    v = clock_decide(&st, T0 + MS / 2, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_STEP);
    assert_int_equal(v.to_ns, T0 + MS / 2 + 20 * MS);
    /* level, or ahead by less than 5 ms: the frame's trip may have eaten that, forward too */
    v = clock_decide(&st, T0, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_STEP);
    assert_int_equal(v.to_ns, T0 + 20 * MS);
    v = clock_decide(&st, T0 - 5 * MS + 1, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_STEP);
    assert_int_equal(v.to_ns, T0 + 15 * MS + 1);
    /* ahead by 5 ms up to a second: kept (a step just made leads by up to 20 ms) */
    v = clock_decide(&st, T0 - 5 * MS, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_KEEP);
    v = clock_decide(&st, T0 - 20 * MS, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_KEEP);
    v = clock_decide(&st, T0 - S + MS, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_KEEP);
    assert_int_equal(st.ask, 0);
    /* a frame at the top of the host's range: the lead does not overflow */
    v = clock_decide(&st, INT64_MAX, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_STEP);
    assert_int_equal(v.to_ns, INT64_MAX);
}

static void test_late_frame_asks_and_keeps(void **state) {
    struct clock_state st = {0};
    /* the frame was sent 8 s ago and waited in the port: the guest looks 8 s ahead */
    struct clock_verdict v = clock_decide(&st, T0 - 8 * S, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_ASK);
    assert_int_equal(st.ask, M0);
    /* another late frame while the ask is out: no second ask within a second */
    v = clock_decide(&st, T0 - 7 * S, false, 0, T0 + 500 * MS, M0 + 500 * MS);
    assert_int_equal(v.act, CLOCK_KEEP);
    assert_int_equal(st.ask, M0);
    /* the answer, 2 ms later: the guest leads the host by 10 ms (1 ms for the way back), as a
     * step leaves it */
    v = clock_decide(&st, T0 - 9 * MS, true, M0, T0 + 2 * MS, M0 + 2 * MS);
    assert_int_equal(v.act, CLOCK_KEEP);
    assert_int_equal(v.lag_ns, -10 * MS);
    assert_int_equal(v.late_ns, 8 * S);
    assert_int_equal(st.ask, 0);
    /* the same answer again (a replay): not asked, nothing */
    v = clock_decide(&st, T0 - 9 * MS, true, M0, T0 + 3 * MS, M0 + 3 * MS);
    assert_int_equal(v.act, CLOCK_KEEP);
    assert_int_equal(v.late_ns, 0);
}

static void test_lead_steps_back_on_answer(void **state) {
    struct clock_state st = {0};
    /* the guest is an hour ahead (the host's clock was set back) */
    struct clock_verdict v = clock_decide(&st, T0 - 3600 * S, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_ASK);
    v = clock_decide(&st, T0 - 3600 * S + 2 * MS, true, M0, T0 + 4 * MS, M0 + 4 * MS);
    assert_int_equal(v.act, CLOCK_STEP);
    /* + half the 4 ms round trip, + the lead */
    assert_int_equal(v.to_ns, T0 - 3600 * S + 24 * MS);
    assert_int_equal(v.lag_ns, -3600 * S);
    assert_int_equal(v.late_ns, 0);
    /* the guest behind, found by the answer (it drifted while it asked): forward, and the
     * frame that made it ask came late */
    st = (struct clock_state){0};
    v = clock_decide(&st, T0 - 5 * S, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_ASK);
    v = clock_decide(&st, T0 + 10 * MS, true, M0, T0 + 2 * MS, M0 + 2 * MS);
    assert_int_equal(v.act, CLOCK_STEP);
    assert_int_equal(v.to_ns, T0 + 31 * MS);
    assert_int_equal(v.late_ns, 5 * S);
    /* an answer that shows the guest ahead by less than the lead's floor: forward to the lead */
    st = (struct clock_state){0};
    v = clock_decide(&st, T0 - 5 * S, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_ASK);
    v = clock_decide(&st, T0, true, M0, T0 + 2 * MS, M0 + 2 * MS);
    assert_int_equal(v.act, CLOCK_STEP);
    assert_int_equal(v.to_ns, T0 + 21 * MS);
    /* ... and by 5 ms or more: kept */
    st = (struct clock_state){0};
    v = clock_decide(&st, T0 - 5 * S, false, 0, T0, M0);
    v = clock_decide(&st, T0 - 10 * MS, true, M0, T0 + 2 * MS, M0 + 2 * MS);
    assert_int_equal(v.act, CLOCK_KEEP);
    assert_int_equal(v.late_ns, 5 * S);
}

static void test_slow_or_foreign_answer(void **state) {
    struct clock_state st = {0};
    struct clock_verdict v = clock_decide(&st, T0 - 3600 * S, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_ASK);
    /* an answer to another ask: ignored, the ask stays out */
    v = clock_decide(&st, T0 - 3600 * S, true, M0 - 1, T0 + MS, M0 + MS);
    assert_int_equal(v.act, CLOCK_KEEP);
    assert_int_equal(st.ask, M0);
    /* the answer, 150 ms later: too slow to say where the host's clock is now */
    v = clock_decide(&st, T0 - 3600 * S, true, M0, T0 + 150 * MS, M0 + 150 * MS);
    assert_int_equal(v.act, CLOCK_SLOW);
    assert_int_equal(v.lag_ns, 150 * MS);
    assert_int_equal(st.ask, 0);
    /* the next frame asks again at once */
    v = clock_decide(&st, T0 - 3600 * S, false, 0, T0 + 200 * MS, M0 + 200 * MS);
    assert_int_equal(v.act, CLOCK_ASK);
    assert_int_equal(st.ask, M0 + 200 * MS);
    /* an ask unanswered for a second is made again */
    v = clock_decide(&st, T0 - 3600 * S, false, 0, T0 + 1200 * MS, M0 + 1200 * MS);
    assert_int_equal(v.act, CLOCK_ASK);
    assert_int_equal(st.ask, M0 + 1200 * MS);
    /* the first one's answer now: superseded */
    v = clock_decide(&st, T0 - 3600 * S, true, M0 + 200 * MS, T0 + 1201 * MS, M0 + 1201 * MS);
    assert_int_equal(v.act, CLOCK_KEEP);
    /* an answer from before its ask (a token from the future): slow, kept */
    v = clock_decide(&st, T0, true, M0 + 1200 * MS, T0, M0 + 1000 * MS);
    assert_int_equal(v.act, CLOCK_SLOW);
    /* the host's clock at the top of its range: no overflow */
    st = (struct clock_state){0};
    v = clock_decide(&st, 0, false, 0, T0, M0);
    assert_int_equal(v.act, CLOCK_ASK);
    v = clock_decide(&st, INT64_MAX, true, M0, T0, M0 + 4 * MS);
    assert_int_equal(v.act, CLOCK_STEP);
    assert_int_equal(v.to_ns, INT64_MAX);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_behind_steps_forward),
        cmocka_unit_test(test_late_frame_asks_and_keeps),
        cmocka_unit_test(test_lead_steps_back_on_answer),
        cmocka_unit_test(test_slow_or_foreign_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

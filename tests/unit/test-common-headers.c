/* tests/unit/test-common-headers.c: the header structure of issue 14, held by the compiler.
 *
 * common/plan.h is included first, so it must compile on its own: policy/ and the guest get the
 * plan without the frame codec.  The public headers of policy/ and sandbox/ must not hand the
 * wire protocol (common/protocol.h) to whoever includes them: a file that uses frames or
 * struct dbx_buf includes common/protocol.h itself.  Either mistake fails this file's build.
 * At run time: the plan's own API, usable with plan.h alone. */
#include "common/plan.h"
#include "policy/policy.h"
#include "sandbox/sandbox.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#ifdef DBX_FRAME_MAX
#error "policy/policy.h or sandbox/sandbox.h brings in common/protocol.h; include it where used"
#endif

/* The plan a box without confinement gets: it changes nothing, and its strings are "" (never
 * NULL) so the encoder and the guest read them without checks. */
static void test_plan_permissive(void **state) {
    struct dbx_plan p;
    dbx_plan_permissive(&p);
    assert_true(p.caps == DBX_CAP_ALL);
    assert_true(p.caps_user == DBX_CAP_ALL);
    assert_true(p.swap_max == UINT64_MAX);
    assert_int_equal(p.mem_max, 0);
    assert_int_equal(p.cpu_quota_us, 0);
    assert_int_equal(p.pids_max, 0);
    assert_int_equal(p.no_new_privs, 0);
    assert_int_equal(p.seccomp_mode, DBX_SECCOMP_UNCONFINED);
    assert_int_equal(p.bpf_len, 0);
    assert_int_equal(p.net_mode, DBX_NET_NONE);
    assert_int_equal(p.proxy_port, 0);
    assert_string_equal(p.user, "");
    assert_string_equal(p.net_addr, "");
    assert_string_equal(p.net_gw, "");
    assert_string_equal(p.net_dns, "");
    dbx_plan_free(&p);
    assert_null(p.user);
    assert_null(p.net_addr);
    dbx_plan_free(&p); /* a freed plan is empty: freeing again is harmless */
}

/* The plan's address spelling is declared with the plan (policy/ and the guest init use it). */
static void test_plan_ipv4(void **state) {
    uint8_t a[4], prefix = 0;
    assert_int_equal(dbx_parse_ipv4("10.0.2.15/24", a, &prefix), 0);
    assert_int_equal(a[0], 10);
    assert_int_equal(a[3], 15);
    assert_int_equal(prefix, 24);
    assert_int_equal(dbx_parse_ipv4("010.0.2.15", a, NULL), -EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_permissive),
        cmocka_unit_test(test_plan_ipv4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

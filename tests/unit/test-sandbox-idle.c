/* Unit tests: idle stop (issue 12, sandbox/supervisor-idle.c).  The clock runs only while
 * nothing is busy and restarts after each busy spell; the poll timeout is cut to the moment
 * the box is due (never a wake-up of its own otherwise); config.ini's [box] idle_stop parses
 * strictly with file:line errors and is refused in a profile; and the stop's steps: the
 * starters' lock taken and the control socket gone before the stop, a queued exec calls the
 * stop off (socket back, lock given back), a busy lock postpones it. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "helpers.h"
#include "profiles/profiles.h"
#include "sandbox/supervisor-internal.h"

#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* ---- the clock -------------------------------------------------------------------------- */

static void test_clock(void **state) {
    (void)state;
    struct sup_idle_clock c = {.stop_ms = 30000};
    /* busy from the start: no idle time, no deadline, the caller's timeout untouched */
    sup_idle_mark(&c, true, 1000);
    assert_int_equal(sup_idle_for(&c, 1000), 0);
    assert_false(sup_idle_due(&c, 1000000));
    assert_int_equal(sup_idle_timeout(&c, 1000, 5000), 5000);
    /* idle from 2000: the clock starts once, later idle rounds do not restart it */
    sup_idle_mark(&c, false, 2000);
    sup_idle_mark(&c, false, 9000);
    assert_int_equal(sup_idle_for(&c, 12000), 10000);
    assert_false(sup_idle_due(&c, 31999));
    assert_true(sup_idle_due(&c, 32000));
    /* the poll timeout: the caller's while the deadline is further, then what is left */
    assert_int_equal(sup_idle_timeout(&c, 2000, 5000), 5000);
    assert_int_equal(sup_idle_timeout(&c, 29000, 5000), 3000);
    assert_int_equal(sup_idle_timeout(&c, 31999, 5000), 1);
    assert_int_equal(sup_idle_timeout(&c, 32000, 5000), 0);
    assert_int_equal(sup_idle_timeout(&c, 99000, 5000), 0);
    /* a busy spell resets it: idle again from 40000 */
    sup_idle_mark(&c, true, 31000);
    assert_int_equal(sup_idle_for(&c, 35000), 0);
    assert_false(sup_idle_due(&c, 60000));
    sup_idle_mark(&c, false, 40000);
    assert_false(sup_idle_due(&c, 69999));
    assert_true(sup_idle_due(&c, 70000));
    /* 0 disables the stop, not the clock (status still shows the idle time) */
    struct sup_idle_clock off = {0};
    sup_idle_mark(&off, false, 5);
    assert_int_equal(sup_idle_for(&off, 1005), 1000);
    assert_false(sup_idle_due(&off, UINT64_MAX / 2));
    assert_int_equal(sup_idle_timeout(&off, 1005, 200), 200);
    /* a clock idle from time 0 still counts (0 means busy inside) */
    struct sup_idle_clock z = {.stop_ms = 10};
    sup_idle_mark(&z, false, 0);
    assert_true(sup_idle_due(&z, 11));
    /* a time before since (cannot happen with a monotonic clock) is not idle */
    assert_int_equal(sup_idle_for(&c, 100), 0);
    assert_false(sup_idle_due(&c, 100));
}

static void test_human(void **state) {
    (void)state;
    static const struct {
        uint64_t s;
        const char *text;
    } cases[] = {{0, "0s"},        {42, "42s"},        {60, "1m00s"},      {252, "4m12s"},
                 {3599, "59m59s"}, {3600, "1h00m00s"}, {7507, "2h05m07s"}, {2592000, "720h00m00s"}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        char *t = dbx_status_idle_human(cases[i].s);
        assert_string_equal(t, cases[i].text);
        free(t);
    }
}

/* ---- config.ini ------------------------------------------------------------------------- */

static void test_parse(void **state) {
    (void)state;
    static const struct {
        const char *s;
        uint32_t v;
    } good[] = {
        {"0", 0},     {"0s", 0},         {"0m", 0},           {"3s", 3},   {"30m", 1800},
        {"2h", 7200}, {"720h", 2592000}, {"43200m", 2592000}, {"007s", 7}, {"2592000s", 2592000}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(good); i++) {
        uint32_t v = 99;
        assert_int_equal(profile_parse_idle_stop(good[i].s, &v), 0);
        assert_int_equal(v, good[i].v);
    }
    static const char *const bad[] = {
        "",     "5",  "30", "5x", "1.5m", "-1s",  " 5s",      "5s ",          "5S", "5ms",
        "721h", "1d", "s",  "m5", "+5s",  "1e3s", "2592001s", "99999999999h", "5 m"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        uint32_t v = 99;
        assert_int_equal(profile_parse_idle_stop(bad[i], &v), -EINVAL);
        assert_int_equal(v, 99);
    }
}

static void test_config(void **state) {
    struct repo *r = *state;
    struct profile_user u = {0};
    /* no file, or a file without it: the default */
    char *m = test_config_load(r, "[ceilings]\ncpus = 1\n", &u);
    assert_null(m);
    assert_int_equal(u.idle_stop_s, PROFILE_IDLE_STOP_DEFAULT);
    assert_int_equal(PROFILE_IDLE_STOP_DEFAULT, 1800);
    profile_user_clear(&u);
    m = test_config_load(r, "[box]\nidle_stop = 4s   ; short\n", &u);
    assert_null(m);
    assert_int_equal(u.idle_stop_s, 4);
    profile_user_clear(&u);
    m = test_config_load(r, "[box]\nidle_stop = 0\n", &u);
    assert_null(m);
    assert_int_equal(u.idle_stop_s, 0);
    profile_user_clear(&u);
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"[box]\n\nidle_stop = 10\n",
         "config.ini:3: [box] idle_stop: must be 0 (never) or a whole number with s, m or h up "
         "to 720h, not '10'"},
        {"[box]\nidle_stop = 1s\nidle_stop = 2s\n", "config.ini:3: duplicate key 'idle_stop'"},
        {"[box]\nidle_stpo = 1s\n", "unknown key 'idle_stpo' in [box] (did you mean 'idle_stop'?)"},
        {"[box]\nmemory = 1G\n", "unknown key 'memory' in [box] (profile defaults go in"},
        {"[defaults]\nbox.idle_stop = 1s\n", "a user setting: write it in [box], not [defaults]"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        m = test_config_load(r, bad[i].text, &u);
        assert_non_null(m);
        if (!strstr(m, bad[i].msg)) fail_msg("'%s': got '%s'", bad[i].text, m);
        free(m);
    }
}

/* A repo profile cannot set it: the box's owner decides when it stops. */
static void test_not_in_profile(void **state) {
    struct repo *r = *state;
    test_write_at(r->fd, "devbox.ini", "[box]\nidle_stop = 1s\n");
    char *m = test_profile_load(r, NULL, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "devbox.ini:2: [box] idle_stop is a user setting"));
    free(m);
}

/* ---- the stop's steps ------------------------------------------------------------------- */

struct fx {
    char dir[4096];
    struct sup s;
    char sock[4200];
};

static int fx_setup(void **state) {
    struct fx *f = dbx_xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "%s/dbx-idle-XXXXXX", getenv("TMPDIR") ?: "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/%s", f->dir, DBX_SOCK_NAME);
    struct sup *s = &f->s;
    s->proj.state_dir = f->dir;
    s->proj.run_dir = f->dir;
    s->guest.ready = true;
    s->vm.qemu_pid = -1;
    s->relay.agent_fd = -1;
    s->idle.lock_fd = -1;
    s->idle.clock.stop_ms = 1000;
    s->relay.listen_fd = sup_listen_unix(f->sock, 16, NULL);
    assert_true(s->relay.listen_fd >= 0);
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    struct fx *f = *state;
    while (f->s.relay.nclients)
        sup_client_free(&f->s, f->s.relay.nclients - 1);
    if (f->s.relay.listen_fd >= 0) close(f->s.relay.listen_fd);
    sup_idle_release(&f->s);
    dbx_buf_free(&f->s.relay.agent_out);
    test_rm_tree(f->dir);
    free(f);
    return 0;
}

static int connect_to(const char *path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Whether someone else could take the starters' lock now. */
static bool lock_free(const char *dir) {
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", dir, DBX_START_LOCK);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    bool ok = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    return ok;
}

/* Idle long enough with nothing queued: the lock is held, the socket gone, the stop begun. */
static void test_stop(void **state) {
    struct fx *f = *state;
    struct sup *s = &f->s;
    sup_idle_ready(s);
    sup_idle_check(s);
    assert_false(s->guest.stopping); /* not yet due */
    assert_true(sup_idle_poll_timeout(s, 5000) <= 1000);
    s->idle.clock.since_ms -= 1500;
    assert_int_equal(sup_idle_poll_timeout(s, 5000), 0);
    sup_idle_check(s);
    assert_true(s->guest.stopping);
    assert_true(s->idle.stopped_ms >= 1500);
    /* the socket is nameless but still open (a connect in flight at the unlink lands there) */
    assert_true(s->relay.listen_fd >= 0);
    assert_int_equal(connect_to(f->sock), -1); /* a new client goes to the start path */
    assert_false(lock_free(f->dir));           /* and waits there until we exit */
    sup_idle_release(s);
    assert_true(lock_free(f->dir));
}

/* A client queued before the socket went, whose exec then starts a session: the stop is
 * called off, the socket is back and the lock given back. */
static void test_queued_exec(void **state) {
    struct fx *f = *state;
    struct sup *s = &f->s;
    int c = connect_to(f->sock); /* queued, not yet accepted */
    assert_true(c >= 0);
    sup_idle_ready(s);
    s->idle.clock.since_ms -= 1500;
    sup_idle_check(s);
    assert_false(s->guest.stopping);
    assert_int_equal(s->relay.nclients, 1); /* taken from the backlog */
    int nameless = s->relay.listen_fd;
    assert_true(nameless >= 0);
    assert_int_equal(connect_to(f->sock), -1);
    assert_false(lock_free(f->dir));
    /* waiting for the client's word: the poll timeout is the drain's */
    int t = sup_idle_poll_timeout(s, 60000);
    assert_true(t > 0 && t <= 10000);
    sup_idle_check(s);
    assert_false(s->guest.stopping);
    /* its exec started a session (the relay's doing): called off */
    s->relay.nsess = 1;
    sup_idle_check(s);
    assert_false(s->guest.stopping);
    assert_true(s->relay.listen_fd >= 0);
    assert_true(lock_free(f->dir));
    int c2 = connect_to(f->sock);
    assert_true(c2 >= 0);
    assert_int_equal(sup_idle_for(&s->idle.clock, dbx_now_ms()), 0);
    s->idle.trim_ms = 0; /* the start's pages gone (test_trim): its deadline is not the idle's */
    assert_int_equal(sup_idle_poll_timeout(s, 5000), 5000); /* busy: no deadline */
    close(c2);
    close(c);
    s->relay.nsess = 0;
}

/* A queued client that asked only for status, and closed: the stop goes on. */
static void test_queued_status(void **state) {
    struct fx *f = *state;
    struct sup *s = &f->s;
    int c = connect_to(f->sock);
    assert_true(c >= 0);
    sup_idle_ready(s);
    s->idle.clock.since_ms -= 1500;
    sup_idle_check(s);
    assert_false(s->guest.stopping);
    assert_int_equal(s->relay.nclients, 1);
    /* answered and gone (as sup_poll frees a closing client) */
    sup_client_free(s, 0);
    close(c);
    sup_idle_check(s);
    assert_true(s->guest.stopping);
}

/* Someone holds the starters' lock (starting or removing the project): tried again later. */
static void test_lock_busy(void **state) {
    struct fx *f = *state;
    struct sup *s = &f->s;
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", f->dir, DBX_START_LOCK);
    int other = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_int_equal(flock(other, LOCK_EX), 0);
    sup_idle_ready(s);
    s->idle.clock.since_ms -= 1500;
    sup_idle_check(s);
    assert_false(s->guest.stopping);
    assert_true(s->relay.listen_fd >= 0); /* the socket stays */
    int t = sup_idle_poll_timeout(s, 5000);
    assert_true(t > 0 && t <= 1000);
    close(other);
    s->idle.retry_ms = 1; /* the retry is due */
    sup_idle_check(s);
    assert_true(s->guest.stopping);
}

/* While stopping (a stop request, a dead guest) the idle stop does nothing. */
static void test_stopping(void **state) {
    struct fx *f = *state;
    struct sup *s = &f->s;
    s->guest.stopping = true;
    sup_idle_ready(s);
    s->idle.clock.since_ms -= 5000;
    sup_idle_check(s);
    assert_true(s->relay.listen_fd >= 0);
    assert_int_equal(s->idle.stopped_ms, 0);
    assert_int_equal(sup_idle_poll_timeout(s, 200), 200);
}

/* The start's library pages go once, a while after the box is ready, busy or idle
 * (supervisor-trim.c): the poll wakes for it, and the pages come back on use. */
static void test_trim(void **state) {
    struct fx *f = *state;
    struct sup *s = &f->s;
    s->idle.clock.stop_ms = 0; /* idle_stop 0: only the trim has a deadline */
    sup_idle_ready(s);
    assert_true(s->idle.trim_ms > dbx_now_ms());
    int t = sup_idle_poll_timeout(s, 60000);
    assert_true(t > 0 && t <= 2000);
    sup_idle_check(s);
    assert_true(s->idle.trim_ms != 0); /* not yet */
    s->relay.nsess = 1;                /* busy: the trim still comes */
    s->idle.trim_ms = dbx_now_ms() - 1;
    assert_int_equal(sup_idle_poll_timeout(s, 5000), 0);
    sup_idle_check(s);
    assert_int_equal(s->idle.trim_ms, 0);
    assert_int_equal(sup_idle_poll_timeout(s, 5000), 5000); /* once */
    s->relay.nsess = 0;
    /* on this process: its libraries' pages go, and what runs next maps them back */
    assert_true(sup_trim_file_pages() > 0);
    _cleanup_free_ char *again = dbx_xasprintf("%s %d", "still", 1);
    assert_string_equal(again, "still 1");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock),
        cmocka_unit_test(test_human),
        cmocka_unit_test(test_parse),
        cmocka_unit_test_setup_teardown(test_config, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_not_in_profile, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_stop, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_queued_exec, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_queued_status, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lock_busy, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stopping, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_trim, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

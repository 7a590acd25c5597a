/* tests/unit/test-sandbox-log.c: the supervisor's log (sup_log, its stderr: supervisor.log)
 * stops growing at DBX_LOG_CAP while the box runs.  The guest makes lines come as fast as it
 * sends malformed or unexpected frames, and before this the file grew for as long as the box
 * ran; the client cut it only before a start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers.h"
#include "sandbox/supervisor-internal.h"

#include <sys/stat.h>

static void test_log_cut_at_cap(void **state) {
    char path[] = "/tmp/dbx-unit-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    /* as the client opens it for the supervisor */
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    char line[1000];
    memset(line, 'g', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    off_t most = 0;
    for (unsigned i = 0; i < 3 * DBX_LOG_CAP / sizeof(line); i++) {
        sup_log("ignoring %s frame on the control session", line);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        if (st.st_size > most) most = st.st_size;
    }
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    /* never more than the cap and a line or two */
    assert_true(most <= (off_t)DBX_LOG_CAP + 2 * (off_t)sizeof(line) + 200);
    char *text = NULL;
    size_t len = 0;
    dbx_error *err = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, path, 4 * DBX_LOG_CAP, &text, &len, &err), 0);
    /* cut, and it says so first */
    assert_true(len < 3 * DBX_LOG_CAP / 2);
    assert_non_null(strstr(text, "supervisor: [this log was cut at its size cap"));
    assert_true(strstr(text, "[this log was cut") < strstr(text, "ignoring ggg"));
    free(text);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_cut_at_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

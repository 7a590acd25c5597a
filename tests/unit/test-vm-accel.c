/* tests/unit/test-vm-accel.c: DEVBOX_ACCEL and the "kvm does not boot here" verdict. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <sys/utsname.h>

#include "vm/vm-internal.h"

static char dir[] = "/tmp/test-vm-accel-XXXXXX";

static int setup(void **state) {
    unsetenv("DEVBOX_ACCEL");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    dbx_error *e = NULL;
    vm_rm_rf(dir, &e);
    dbx_error_free(&e);
    return 0;
}

static enum vm_accel automatic(void) {
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) return VM_ACCEL_TCG;
    close(fd);
    return VM_ACCEL_KVM;
}

static void test_forced(void **state) {
    static const struct {
        const char *value;
        enum vm_accel want;
    } cases[] = {{"kvm", VM_ACCEL_KVM}, {"tcg", VM_ACCEL_TCG}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        setenv("DEVBOX_ACCEL", cases[i].value, 1);
        enum vm_accel a = 99;
        bool forced = false;
        _cleanup_error_ dbx_error *err = NULL;
        assert_int_equal(vm_accel_choose(dir, &a, &forced, &err), 0);
        assert_int_equal(a, cases[i].want);
        assert_true(forced);
        assert_string_equal(vm_accel_name(a), cases[i].value);
    }
    unsetenv("DEVBOX_ACCEL");
}

static void test_bogus(void **state) {
    setenv("DEVBOX_ACCEL", "hvf\x1b[31m", 1);
    enum vm_accel a = 99;
    bool forced = false;
    _cleanup_error_ dbx_error *err = NULL;
    assert_true(vm_accel_choose(dir, &a, &forced, &err) < 0);
    assert_non_null(err);
    assert_string_equal(err->msg, "DEVBOX_ACCEL='hvf?[31m': expected 'kvm', 'tcg' or 'auto'");
    assert_int_equal(a, 99); /* untouched on failure */
    unsetenv("DEVBOX_ACCEL");
}

static void test_verdict(void **state) {
    enum vm_accel a;
    bool forced = true;
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_accel_choose(dir, &a, &forced, &err), 0);
    assert_false(forced);
    assert_int_equal(a, automatic());

    assert_int_equal(vm_accel_record_kvm_broken(dir, &err), 0);
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_free_ char *text = NULL;
    assert_int_equal(dbx_read_file_at(dfd, "accel.json", 4096, &text, NULL, &err), 0);
    struct utsname u;
    uname(&u);
    assert_non_null(strstr(text, "\"kvm\":\"broken\""));
    assert_non_null(strstr(text, u.release));
    assert_int_equal(vm_accel_choose(dir, &a, &forced, &err), 0);
    assert_int_equal(a, VM_ACCEL_TCG);

    /* a forced kvm wins over the verdict */
    setenv("DEVBOX_ACCEL", "kvm", 1);
    assert_int_equal(vm_accel_choose(dir, &a, &forced, &err), 0);
    assert_int_equal(a, VM_ACCEL_KVM);
    unsetenv("DEVBOX_ACCEL");

    /* a verdict for another host kernel is ignored; so is a malformed file */
    const char *other = "{\"kvm\":\"broken\",\"host_kernel\":\"0.0.0-other\"}\n";
    assert_int_equal(dbx_write_file_atomic(dfd, "accel.json", other, strlen(other), 0600, &err), 0);
    assert_int_equal(vm_accel_choose(dir, &a, &forced, &err), 0);
    assert_int_equal(a, automatic());
    const char *bad = "{\"kvm\":\"broken\",\"kvm\":\"broken\"";
    assert_int_equal(dbx_write_file_atomic(dfd, "accel.json", bad, strlen(bad), 0600, &err), 0);
    assert_int_equal(vm_accel_choose(dir, &a, &forced, &err), 0);
    assert_int_equal(a, automatic());
    assert_null(err);
}

/* The host KVM that refuses IA32_ARCH_CAPABILITIES: its own verdict in the same file, kept
 * beside "kvm broken" (either may come first), for this host kernel only. */
static void test_arch_caps_verdict(void **state) {
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    (void)unlinkat(dfd, "accel.json", 0);
    assert_false(vm_accel_arch_caps_refused(dir));
    assert_false(vm_accel_arch_caps_refused("/nonexistent/devbox-state"));

    assert_int_equal(vm_accel_record_arch_caps_refused(dir, &err), 0);
    assert_true(vm_accel_arch_caps_refused(dir));
    enum vm_accel a;
    bool forced;
    assert_int_equal(vm_accel_choose(dir, &a, &forced, &err), 0);
    assert_int_equal(a, automatic()); /* not a verdict against KVM */

    assert_int_equal(vm_accel_record_kvm_broken(dir, &err), 0);
    assert_true(vm_accel_arch_caps_refused(dir));
    assert_int_equal(vm_accel_choose(dir, &a, &forced, &err), 0);
    assert_int_equal(a, VM_ACCEL_TCG);
    _cleanup_free_ char *text = NULL;
    assert_int_equal(dbx_read_file_at(dfd, "accel.json", 4096, &text, NULL, &err), 0);
    struct utsname u;
    uname(&u);
    _cleanup_free_ char *want = dbx_xasprintf(
        "{\"arch_capabilities\":\"refused\",\"host_kernel\":\"%s\",\"kvm\":\"broken\"}\n",
        u.release);
    assert_string_equal(text, want);
    struct stat st;
    assert_int_equal(fstatat(dfd, "accel.json", &st, 0), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    /* a file written before this verdict existed (kvm broken only) still reads, without it */
    _cleanup_free_ char *old =
        dbx_xasprintf("{\"kvm\":\"broken\",\"host_kernel\":\"%s\"}\n", u.release);
    assert_int_equal(dbx_write_file_atomic(dfd, "accel.json", old, strlen(old), 0600, &err), 0);
    assert_false(vm_accel_arch_caps_refused(dir));
    assert_int_equal(vm_accel_record_arch_caps_refused(dir, &err), 0);
    assert_true(vm_accel_arch_caps_refused(dir));
    assert_int_equal(vm_accel_choose(dir, &a, &forced, &err), 0);
    assert_int_equal(a, VM_ACCEL_TCG); /* the older verdict kept */

    /* another host kernel's verdicts are dropped when a new one is recorded */
    const char *other =
        "{\"kvm\":\"broken\",\"arch_capabilities\":\"refused\",\"host_kernel\":\"0.0.0-other\"}\n";
    assert_int_equal(dbx_write_file_atomic(dfd, "accel.json", other, strlen(other), 0600, &err), 0);
    assert_false(vm_accel_arch_caps_refused(dir));
    assert_int_equal(vm_accel_record_arch_caps_refused(dir, &err), 0);
    assert_int_equal(vm_accel_choose(dir, &a, &forced, &err), 0);
    assert_int_equal(a, automatic());
    /* a value other than "refused", a wrong type: no verdict */
    _cleanup_free_ char *odd =
        dbx_xasprintf("{\"arch_capabilities\":\"fine\",\"host_kernel\":\"%s\"}", u.release);
    assert_int_equal(dbx_write_file_atomic(dfd, "accel.json", odd, strlen(odd), 0600, &err), 0);
    assert_false(vm_accel_arch_caps_refused(dir));
    _cleanup_free_ char *typed = dbx_xasprintf(
        "{\"arch_capabilities\":1,\"kvm\":\"broken\",\"host_kernel\":\"%s\"}", u.release);
    assert_int_equal(dbx_write_file_atomic(dfd, "accel.json", typed, strlen(typed), 0600, &err), 0);
    assert_false(vm_accel_arch_caps_refused(dir));
    assert_null(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forced),
        cmocka_unit_test(test_bogus),
        cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_arch_caps_verdict),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* tests/unit/test-vm-kernel.c: the initramfs writer (read back with libarchive) and the kernel
 * fetch's error reporting.  The real download is exercised end to end, not here. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "vm/vm-internal.h"

#include "tests/unit/helpers.h"

static char dir[] = "/tmp/test-vm-kernel-XXXXXX";

static int setup(void **state) {
    return mkdtemp(dir) ? 0 : -1;
}
static int teardown(void **state) {
    dbx_error *e = NULL;
    vm_rm_rf(dir, &e);
    dbx_error_free(&e);
    return 0;
}

static char *write_file(const char *name, const char *text) {
    char *p = dbx_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "we");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

struct seen {
    const char *name;
    mode_t mode;
    const char *data;
    bool found;
};

static void test_initramfs_contents(void **state) {
    _cleanup_free_ char *init = write_file("init", "#!init binary\n");
    _cleanup_free_ char *m1 = write_file("virtio_ring.ko", "ring module");
    _cleanup_free_ char *m2 = write_file("virtio.ko", "virtio module");
    struct vm_initramfs_module mods[] = {{"virtio_ring.ko", m1}, {"virtio.ko", m2}};
    _cleanup_free_ char *out = dbx_xasprintf("%s/initramfs.cpio", dir);
    _cleanup_close_ int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    _cleanup_error_ dbx_error *err = NULL;
    if (vm_initramfs_write(fd, init, mods, 2, &err) < 0) fail_msg("%s", err->msg);

    struct seen want[] = {
        {"dev", S_IFDIR | 0755, NULL, false},
        {"proc", S_IFDIR | 0755, NULL, false},
        {"sys", S_IFDIR | 0755, NULL, false},
        {"newroot", S_IFDIR | 0755, NULL, false},
        {"lib", S_IFDIR | 0755, NULL, false},
        {"lib/modules", S_IFDIR | 0755, NULL, false},
        {"dev/console", S_IFCHR | 0600, NULL, false},
        {"init", S_IFREG | 0711, "#!init binary\n", false}, /* exec, not read, by the box */
        {"lib/modules/virtio_ring.ko", S_IFREG | 0644, "ring module", false},
        {"lib/modules/virtio.ko", S_IFREG | 0644, "virtio module", false},
        {"modules.order", S_IFREG | 0644, "virtio_ring.ko\nvirtio.ko\n", false},
    };
    struct archive *a = archive_read_new();
    archive_read_support_format_cpio(a);
    archive_read_support_filter_none(a);
    assert_int_equal(archive_read_open_filename(a, out, 4096), ARCHIVE_OK);
    /* uncompressed: only support_filter_none is enabled above */
    struct archive_entry *e;
    size_t n = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        n++;
        /* newc */ assert_string_equal(archive_format_name(a), "ASCII cpio (SVR4 with no CRC)");
        const char *name = archive_entry_pathname(e);
        size_t i = 0;
        while (i < DBX_ARRAY_SIZE(want) && strcmp(want[i].name, name) != 0)
            i++;
        if (i == DBX_ARRAY_SIZE(want)) fail_msg("unexpected entry '%s'", name);
        assert_false(want[i].found);
        want[i].found = true;
        assert_int_equal(archive_entry_mode(e), want[i].mode);
        assert_int_equal(archive_entry_uid(e), 0);
        assert_int_equal(archive_entry_gid(e), 0);
        if (S_ISCHR(want[i].mode)) {
            assert_int_equal(archive_entry_rdevmajor(e), 5);
            assert_int_equal(archive_entry_rdevminor(e), 1);
        }
        if (want[i].data) {
            char buf[256] = {0};
            la_ssize_t got = archive_read_data(a, buf, sizeof(buf) - 1);
            assert_int_equal(got, strlen(want[i].data));
            assert_string_equal(buf, want[i].data);
        }
    }
    archive_read_free(a);
    assert_int_equal(n, DBX_ARRAY_SIZE(want));

    /* same inputs, same bytes (the cache key is a hash of the inputs) */
    _cleanup_free_ char *out2 = dbx_xasprintf("%s/initramfs2.cpio", dir);
    _cleanup_close_ int fd2 = open(out2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_int_equal(vm_initramfs_write(fd2, init, mods, 2, &err), 0);
    _cleanup_free_ char *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, out, 1 << 20, &b1, &l1, &err), 0);
    assert_int_equal(dbx_read_file_at(AT_FDCWD, out2, 1 << 20, &b2, &l2, &err), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
}

static void test_initramfs_bad_module_name(void **state) {
    _cleanup_free_ char *init = write_file("init", "x");
    struct vm_initramfs_module mods[] = {{"../evil.ko", init}};
    _cleanup_free_ char *out = dbx_xasprintf("%s/bad.cpio", dir);
    _cleanup_close_ int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    _cleanup_error_ dbx_error *err = NULL;
    assert_true(vm_initramfs_write(fd, init, mods, 1, &err) < 0);
    assert_string_equal(err->msg, "bad module name '../evil.ko'");
}

static void test_kernel_local_deb_missing(void **state) {
    if (access("/usr/bin/dpkg-deb", X_OK) < 0) skip_because("no /usr/bin/dpkg-deb");
    _cleanup_free_ char *kdir = dbx_xasprintf("%s/kernel", dir);
    _cleanup_free_ char *init = write_file("init", "x");
    setenv("DEVBOX_KERNEL_DEB", "/nonexistent/linux-image.deb", 1);
    struct vm_kernel k = {0};
    _cleanup_error_ dbx_error *err = NULL;
    assert_true(vm_kernel_ensure(kdir, init, &k, &err) < 0);
    unsetenv("DEVBOX_KERNEL_DEB");
    assert_null(k.vmlinuz);
    assert_non_null(strstr(err->msg, "DEVBOX_KERNEL_DEB: "));
    assert_non_null(strstr(err->msg, "/nonexistent/linux-image.deb"));
    assert_null(strchr(err->msg, '\n'));
    struct stat st;
    assert_int_equal(stat(kdir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initramfs_contents),
        cmocka_unit_test(test_initramfs_bad_module_name),
        cmocka_unit_test(test_kernel_local_deb_missing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

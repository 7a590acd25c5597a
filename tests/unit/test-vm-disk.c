/* tests/unit/test-vm-disk.c: the tar path filter, hostile tarballs (refused with a clear message
 * and nothing left behind), and a real base image built rootless from a tiny tarball whose
 * owners, setuid bit and device node must survive (skips without genext2fs/e2fsprogs/qemu-img).
 * Layers, whiteouts, xattrs and large owners: test-vm-rootfs.c. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "vm/vm-internal.h"

#include "tests/unit/helpers.h"

static char dir[] = "/tmp/test-vm-disk-XXXXXX";

static int setup(void **state) {
    return mkdtemp(dir) ? 0 : -1;
}
static int teardown(void **state) {
    dbx_error *e = NULL;
    vm_rm_rf(dir, &e);
    dbx_error_free(&e);
    return 0;
}

struct ent {
    const char *name;
    mode_t type; /* AE_IF*; 0 = hard link */
    mode_t perm;
    int64_t uid, gid;
    const char *link; /* symlink or hard link target */
    const char *data;
};

static void make_tar(const char *path, const struct ent *e, size_t n) {
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, e[i].name);
        archive_entry_set_filetype(ae, e[i].type ? e[i].type : AE_IFREG);
        archive_entry_set_perm(ae, e[i].perm ? e[i].perm : 0644);
        archive_entry_set_uid(ae, e[i].uid);
        archive_entry_set_gid(ae, e[i].gid);
        if (e[i].type == AE_IFLNK) archive_entry_set_symlink(ae, e[i].link);
        if (e[i].type == 0) archive_entry_set_hardlink(ae, e[i].link);
        if (e[i].type == AE_IFCHR) archive_entry_set_rdev(ae, makedev(1, 3));
        size_t len = e[i].data ? strlen(e[i].data) : 0;
        archive_entry_set_size(ae, e[i].type == AE_IFREG ? (la_int64_t)len : 0);
        assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
        if (len && e[i].type == AE_IFREG)
            assert_int_equal(archive_write_data(a, e[i].data, len), len);
        archive_entry_free(ae);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static size_t count_entries(const char *d) {
    DIR *dp = opendir(d);
    assert_non_null(dp);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dp)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(dp);
    return n;
}

static void test_clean_path(void **state) {
    static const struct {
        const char *in, *out, *err;
    } cases[] = {
        {"./bin/sh", "bin/sh", NULL},
        {"bin//sh/", "bin/sh", NULL},
        {"././a/./b", "a/b", NULL},
        {"./", "", NULL},
        {"a..b/..c", "a..b/..c", NULL},
        {"/etc/passwd", "etc/passwd", NULL},
        {"/", "", NULL},
        {"//a//./b/", "a/b", NULL},
        {"a/..", "", NULL},
        {"a/b/../c", "a/c", NULL},
        {"/a/b/../../c/..", "", NULL},
        {"../x", NULL, "'..' leads out of the root in path '../x'"},
        {"a/../../x", NULL, "'..' leads out of the root in path 'a/../../x'"},
        {"/../x", NULL, "'..' leads out of the root in path '/../x'"},
        {"a/b/../../..", NULL, "'..' leads out of the root in path 'a/b/../../..'"},
        {"a\nb", NULL, "control character in path 'a?b'"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        _cleanup_error_ dbx_error *err = NULL;
        _cleanup_free_ char *out = NULL;
        int r = vm_tar_clean_path(cases[i].in, &out, &err);
        if (cases[i].out) {
            assert_int_equal(r, 0);
            assert_string_equal(out, cases[i].out);
        } else {
            assert_true(r < 0);
            assert_null(out);
            assert_string_equal(err->msg, cases[i].err);
        }
    }
    _cleanup_free_ char *longp = dbx_xmalloc(VM_TAR_MAX_PATH + 2);
    memset(longp, 'a', VM_TAR_MAX_PATH + 1);
    longp[VM_TAR_MAX_PATH + 1] = '\0';
    for (size_t i = 100; i < VM_TAR_MAX_PATH; i += 100)
        longp[i] = '/';
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_free_ char *out = NULL;
    assert_true(vm_tar_clean_path(longp, &out, &err) < 0);
    assert_non_null(strstr(err->msg, "longer than 4096 bytes"));
}

#define DIR_E(n)                                                                                   \
    { n, AE_IFDIR, 0755, 0, 0, NULL, NULL }
#define FILE_E(n)                                                                                  \
    { n, AE_IFREG, 0644, 0, 0, NULL, "data\n" }

static void test_hostile(void **state) {
    static const struct ent abs[] = {DIR_E("etc"), FILE_E("/../etc/passwd")};
    static const struct ent dotdot[] = {DIR_E("a"), FILE_E("a/../../x")};
    static const struct ent hl_out[] = {FILE_E("x"), {"y", 0, 0, 0, 0, "../x", NULL}};
    static const struct ent hl_abs[] = {FILE_E("x"), {"y", 0, 0, 0, 0, "/etc/shadow", NULL}};
    static const struct ent hl_abs_out[] = {FILE_E("x"), {"y", 0, 0, 0, 0, "/x/../../x", NULL}};
    static const struct ent hl_missing[] = {{"y", 0, 0, 0, 0, "x", NULL}};
    static const struct ent sym_parent[] = {{"a", AE_IFLNK, 0777, 0, 0, "/etc", NULL},
                                            FILE_E("a/passwd")};
    static const struct ent bigid[] = {{"x", AE_IFREG, 0644, 4294967295ll, 0, NULL, "d"}};
    static const struct {
        const char *name;
        const struct ent *e;
        size_t n;
        const char *msg;
    } cases[] = {
        {"abs", abs, DBX_ARRAY_SIZE(abs), "'..' leads out of the root in path '/../etc/passwd'"},
        {"dotdot", dotdot, DBX_ARRAY_SIZE(dotdot),
         "'..' leads out of the root in path 'a/../../x'"},
        {"hl_out", hl_out, DBX_ARRAY_SIZE(hl_out),
         "hard link 'y': '..' leads out of the root in path '../x'"},
        /* an absolute target resolves under the root: there is no /etc/shadow in the tree */
        {"hl_abs", hl_abs, DBX_ARRAY_SIZE(hl_abs),
         "hard link 'y' to 'etc/shadow': not an earlier file in the archive"},
        {"hl_abs_out", hl_abs_out, DBX_ARRAY_SIZE(hl_abs_out),
         "hard link 'y': '..' leads out of the root in path '/x/../../x'"},
        {"hl_missing", hl_missing, DBX_ARRAY_SIZE(hl_missing),
         "hard link 'y' to 'x': not an earlier file in the archive"},
        {"sym_parent", sym_parent, DBX_ARRAY_SIZE(sym_parent),
         "'a/passwd': parent 'a' is a symlink"},
        {"bigid", bigid, DBX_ARRAY_SIZE(bigid), "owner 4294967295:0 out of range"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *sub = dbx_xasprintf("%s/%s", dir, cases[i].name);
        assert_int_equal(mkdir(sub, 0700), 0);
        _cleanup_free_ char *tar = dbx_xasprintf("%s/in.tar.gz", sub);
        _cleanup_free_ char *out = dbx_xasprintf("%s/base.img", sub);
        make_tar(tar, cases[i].e, cases[i].n);
        _cleanup_error_ dbx_error *err = NULL;
        uint64_t size = 7;
        int r = vm_disk_build_base(tar, out, 1 << 20, &size, &err);
        assert_true(r < 0);
        assert_non_null(err);
        if (!strstr(err->msg, cases[i].msg))
            fail_msg("%s: got '%s', want '%s'", cases[i].name, err->msg, cases[i].msg);
        assert_null(strchr(err->msg, '\n'));
        assert_int_equal(size, 7);
        /* only the input is left: no image, no temp files */
        assert_int_equal(count_entries(sub), 1);
    }
}

static char *debugfs_stat(const char *img, const char *path) {
    _cleanup_free_ char *req = dbx_xasprintf("stat %s", path);
    char *argv[] = {"debugfs", "-R", req, (char *)img, NULL};
    char *out = NULL;
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_run("debugfs", argv, NULL, &out, NULL, NULL, &err), 0);
    return out;
}

static void test_build_base(void **state) {
    /* every tool up front: a missing qemu-img skips the test, it does not pass half of it */
    static const char *const tools[] = {"genext2fs", "debugfs", "e2fsck", "resize2fs", "qemu-img"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(tools); i++)
        if (!test_have(tools[i]))
            skip_because("no '%s' (e2fsprogs, genext2fs, qemu-utils)", tools[i]);
    static const struct ent tree[] = {
        /* `tar -C "$(mktemp -d)" .`: a 0700 root entry, skipped (the root stays 0755 root:root) */
        {"./", AE_IFDIR, 0700, 1000, 1000, NULL, NULL},
        /* no "bin/" entry: the normalizer adds the missing parent */
        {"./bin/su", AE_IFREG, 04755, 0, 0, NULL, "#!/bin/false\n"},
        {"./bin/login", 0, 0, 0, 0, "bin/su", NULL},
        DIR_E("./dev"),
        {"./dev/null", AE_IFCHR, 0666, 0, 0, NULL, NULL},
        {"./home/u/notes", AE_IFREG, 0600, 1000, 1000, NULL, "mine\n"},
        {"./tmp", AE_IFDIR, 01777, 0, 0, NULL, NULL},
        {"./usr/bin/sh", AE_IFLNK, 0777, 0, 0, "/bin/su", NULL},
    };
    _cleanup_free_ char *tar = dbx_xasprintf("%s/tiny.tar.gz", dir);
    _cleanup_free_ char *img = dbx_xasprintf("%s/tiny.img", dir);
    make_tar(tar, tree, DBX_ARRAY_SIZE(tree));
    _cleanup_error_ dbx_error *err = NULL;
    uint64_t size = 0;
    if (vm_disk_build_base(tar, img, 64 << 20, &size, &err) < 0) fail_msg("%s", err->msg);
    struct stat st;
    assert_int_equal(stat(img, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    assert_int_equal((uint64_t)st.st_size, size);
    assert_true(size >= (64u << 20));

    _cleanup_free_ char *root = debugfs_stat(img, "/");
    assert_non_null(strstr(root, "Mode:  0755"));
    assert_non_null(strstr(root, "User:     0   Group:     0"));
    _cleanup_free_ char *su = debugfs_stat(img, "/bin/su");
    assert_non_null(strstr(su, "Mode:  04755"));
    assert_non_null(strstr(su, "User:     0   Group:     0"));
    assert_non_null(strstr(su, "Links: 2")); /* bin/login is a hard link */
    _cleanup_free_ char *null = debugfs_stat(img, "/dev/null");
    assert_non_null(strstr(null, "character special"));
    assert_non_null(strstr(null, "Device major/minor number: 01:03"));
    _cleanup_free_ char *notes = debugfs_stat(img, "/home/u/notes");
    assert_non_null(strstr(notes, "User:  1000   Group:  1000"));
    assert_non_null(strstr(notes, "Mode:  0600"));
    _cleanup_free_ char *tmp = debugfs_stat(img, "/tmp");
    assert_non_null(strstr(tmp, "Mode:  01777"));

    char *fsck[] = {"e2fsck", "-f", "-n", img, NULL};
    int status = -1;
    assert_int_equal(vm_run("e2fsck", fsck, NULL, NULL, NULL, &status, &err), 0);
    assert_int_equal(status, 0);
    char *dumpe2fs[] = {"dumpe2fs", "-h", img, NULL};
    _cleanup_free_ char *hdr = NULL;
    assert_int_equal(vm_run("dumpe2fs", dumpe2fs, NULL, &hdr, NULL, NULL, &err), 0);
    assert_non_null(strstr(hdr, "has_journal"));
    assert_non_null(strstr(hdr, "extent"));
    assert_non_null(strstr(hdr, "Inode size:\t          256"));

    /* the overlay on top of it, and its check */
    _cleanup_free_ char *ov = dbx_xasprintf("%s/ov.qcow2", dir);
    if (vm_disk_create_overlay(img, ov, 0, &err) < 0) fail_msg("%s", err->msg);
    if (vm_disk_check(ov, &err) < 0) fail_msg("%s", err->msg);
    /* auto: the image's size */
    uint64_t vsize = 0;
    assert_int_equal(vm_disk_size(ov, &vsize, &err), 0);
    assert_int_equal(vsize, size);
    _cleanup_free_ char *missing = dbx_xasprintf("%s/nope.img", dir);
    assert_true(vm_disk_create_overlay(missing, ov, 0, &err) < 0);
    assert_non_null(strstr(err->msg, "No such file or directory"));
    dbx_error_free(&err);

    /* [box] disk: the overlay's virtual size, grown later, never shrunk nor below the image */
    _cleanup_free_ char *ov2 = dbx_xasprintf("%s/ov2.qcow2", dir);
    if (vm_disk_create_overlay(img, ov2, 1ull << 30, &err) < 0) fail_msg("%s", err->msg);
    assert_int_equal(vm_disk_size(ov2, &vsize, &err), 0);
    assert_int_equal(vsize, 1ull << 30);
    uint64_t after = 0;
    assert_int_equal(vm_disk_grow_overlay(ov2, 3ull << 30, &after, &err), 0);
    assert_int_equal(after, 3ull << 30);
    assert_int_equal(vm_disk_size(ov2, &vsize, &err), 0);
    assert_int_equal(vsize, 3ull << 30);
    assert_int_equal(vm_disk_grow_overlay(ov2, 2ull << 30, &after, &err), 0);
    assert_int_equal(after, 3ull << 30); /* not shrunk */
    if (vm_disk_check(ov2, &err) < 0) fail_msg("%s", err->msg);
    _cleanup_free_ char *ov3 = dbx_xasprintf("%s/ov3.qcow2", dir);
    if (vm_disk_create_overlay(img, ov3, 4096, &err) < 0) /* smaller than the image */
        fail_msg("%s", err->msg);
    assert_int_equal(vm_disk_size(ov3, &vsize, &err), 0);
    assert_int_equal(vsize, size);
    assert_int_equal(vm_disk_create_overlay(img, ov3, (1ull << 30) + 1, &err), 0);
    assert_int_equal(vm_disk_size(ov3, &vsize, &err), 0);
    assert_int_equal(vsize, (1ull << 30) + 512); /* whole sectors */

    /* A derived disk (an overlay made read-only after [setup]) backs another overlay as qcow2,
     * told by its magic: with -F raw QEMU would show the guest the qcow2 file's bytes. */
    _cleanup_free_ char *ov4 = dbx_xasprintf("%s/ov4.qcow2", dir);
    if (vm_disk_create_overlay(ov2, ov4, 0, &err) < 0) fail_msg("%s", err->msg);
    assert_int_equal(vm_disk_size(ov4, &vsize, &err), 0);
    assert_int_equal(vsize, 3ull << 30); /* the derived disk's size, not its file's */
    char *info[] = {"qemu-img", "info", "--output=json", ov4, NULL};
    _cleanup_free_ char *js = NULL;
    assert_int_equal(vm_run("qemu-img info", info, NULL, &js, NULL, NULL, &err), 0);
    assert_non_null(strstr(js, "\"backing-filename-format\": \"qcow2\""));
    if (vm_disk_check(ov4, &err) < 0) fail_msg("%s", err->msg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_path),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_build_base),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* tests/unit/test-vm-rootfs.c: root filesystems from OCI-style tar layers.  Layers are written
 * here with libarchive (gzip, zstd, plain), applied in order, the disk built, and the result
 * inspected with debugfs: owners above 65535, setuid bits, device nodes (also above 255:255),
 * file capabilities and other xattrs byte for byte, hard links across layers, whiteouts and
 * opaque directories in either order, a file replacing a directory, directory merges.  Hostile
 * layers must be refused with a one-line message naming layer and entry, leaving nothing
 * behind.  The disk tests skip without genext2fs/e2fsprogs. */
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

/* Entry tables name only the fields that matter for each case. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static char dir[] = "/tmp/test-vm-rootfs-XXXXXX";

static int setup(void **state) {
    return mkdtemp(dir) ? 0 : -1;
}
static int teardown(void **state) {
    dbx_error *e = NULL;
    vm_rm_rf(dir, &e);
    dbx_error_free(&e);
    return 0;
}

enum { HL = 1 }; /* ent.type for a hard link */
enum comp { PLAIN, GZIP, ZSTD };

struct ent {
    const char *name;
    int type; /* AE_IF*, HL, 0 = regular file */
    mode_t perm;
    int64_t uid, gid;
    const char *link; /* symlink or hard link target */
    const char *data;
    const char *xname; /* one xattr */
    const void *xvalue;
    size_t xsize;
    unsigned major, minor;
    int64_t size; /* 0 = strlen(data); > 0 with data NULL: zeros */
};

static const unsigned char cap_net_raw[20] = {0x01, 0x00, 0x00, 0x02, 0x00,
                                              0x20, 0x00, 0x00}; /* VFS_CAP_REVISION_2, bit 13 */

static void make_layer(const char *path, enum comp comp, const struct ent *e, size_t n) {
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format_pax(a), ARCHIVE_OK);
    if (comp == GZIP) assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    if (comp == ZSTD) assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        int type = e[i].type ? e[i].type : (int)AE_IFREG;
        archive_entry_set_pathname(ae, e[i].name);
        archive_entry_set_filetype(ae, type == HL ? AE_IFREG : (unsigned)type);
        archive_entry_set_perm(ae,
                               e[i].perm ? e[i].perm : (mode_t)(type == AE_IFDIR ? 0755 : 0644));
        archive_entry_set_uid(ae, e[i].uid);
        archive_entry_set_gid(ae, e[i].gid);
        archive_entry_set_mtime(ae, 1700000000, 0);
        if (type == AE_IFLNK) archive_entry_set_symlink(ae, e[i].link);
        if (type == HL) archive_entry_set_hardlink(ae, e[i].link);
        if (type == AE_IFCHR || type == AE_IFBLK) {
            archive_entry_set_rdevmajor(ae, e[i].major);
            archive_entry_set_rdevminor(ae, e[i].minor);
        }
        if (e[i].xname) archive_entry_xattr_add_entry(ae, e[i].xname, e[i].xvalue, e[i].xsize);
        int64_t len = e[i].size ? e[i].size : e[i].data ? (int64_t)strlen(e[i].data) : 0;
        archive_entry_set_size(ae, type == AE_IFREG ? len : 0);
        assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
        if (type == AE_IFREG && len) {
            if (e[i].data) {
                assert_int_equal(archive_write_data(a, e[i].data, (size_t)len), len);
            } else {
                static const char zeros[65536];
                for (int64_t done = 0; done < len; done += (int64_t)sizeof(zeros))
                    archive_write_data(a, zeros, sizeof(zeros));
            }
        }
        archive_entry_free(ae);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

struct layer {
    enum comp comp;
    const struct ent *e;
    size_t n;
};
#define LAYER(c, arr)                                                                              \
    { c, arr, DBX_ARRAY_SIZE(arr) }

/* Apply the layers (written under sub/) and build sub/base.img.  Returns 0 or the error. */
static int build(const char *sub, const struct layer *layers, size_t n, struct vm_rootfs *pre,
                 dbx_error **err) {
    struct vm_rootfs *b = pre;
    if (!b) assert_int_equal(vm_rootfs_new(sub, &b, err), 0);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/layer%zu.tar", sub, i);
        make_layer(p, layers[i].comp, layers[i].e, layers[i].n);
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        _cleanup_free_ char *label = dbx_xasprintf("sha256:%zu", i);
        r = vm_rootfs_add_layer(b, fd, label, true, err);
        assert_int_equal(fcntl(fd, F_GETFD), FD_CLOEXEC); /* still ours */
    }
    if (r == 0) {
        _cleanup_free_ char *img = dbx_xasprintf("%s/base.img", sub);
        r = vm_rootfs_write_disk(b, img, 16 << 20, NULL, err);
    } else {
        /* a failed builder refuses further use */
        dbx_error *e2 = NULL;
        _cleanup_free_ char *img = dbx_xasprintf("%s/base.img", sub);
        assert_true(vm_rootfs_write_disk(b, img, 0, NULL, &e2) < 0);
        dbx_error_free(&e2);
    }
    vm_rootfs_free(b);
    return r;
}

static char *debugfs(const char *img, const char *req) {
    char *argv[] = {"debugfs", "-R", (char *)req, (char *)img, NULL};
    char *out = NULL, *errs = NULL;
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_run("debugfs", argv, NULL, &out, &errs, NULL, &err), 0);
    char *both = dbx_xasprintf("%s%s", out, errs);
    free(out);
    free(errs);
    return both;
}

#define EXPECT(img, req, want)                                                                     \
    do {                                                                                           \
        _cleanup_free_ char *_o = debugfs(img, req);                                               \
        if (!strstr(_o, want)) fail_msg("%s: want '%s' in:\n%s", req, want, _o);                   \
    } while (0)
#define EXPECT_NOT(img, req, want)                                                                 \
    do {                                                                                           \
        _cleanup_free_ char *_o = debugfs(img, req);                                               \
        if (strstr(_o, want)) fail_msg("%s: did not want '%s' in:\n%s", req, want, _o);            \
    } while (0)

static unsigned inode_of(const char *img, const char *path) {
    _cleanup_free_ char *req = dbx_xasprintf("stat %s", path);
    _cleanup_free_ char *o = debugfs(img, req);
    const char *p = strstr(o, "Inode: ");
    assert_non_null(p);
    return (unsigned)strtoul(p + 7, NULL, 10);
}

static bool tools(void) {
    return test_have("genext2fs") && test_have("debugfs") && test_have("e2fsck") &&
           test_have("resize2fs");
}

static void test_layers(void **state) {
    if (!tools()) skip_because("needs genext2fs, debugfs, e2fsck and resize2fs");
    static unsigned char big[3000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 7);
    const struct ent l1[] = {
        {"./", AE_IFDIR, 0755},
        {"etc", AE_IFDIR, 0755},
        {"etc/motd", 0, 0644, 0, 0, NULL, "hello\n", "user.comment", big, sizeof(big)},
        {"usr/bin/ping", 0, 04755, 0, 0, NULL, "ELF", "security.capability", cap_net_raw,
         sizeof(cap_net_raw)},
        {"usr/bin/a", 0, 0755, 0, 0, NULL, "A\n"},
        {"usr/bin/b", HL, 0, 0, 0, "usr/bin/a"},
        {"usr/bin/c", HL, 0, 0, 0, "./usr/bin/a"},
        {"usr/bin/newgrp", 0, 02755, 0, 0, NULL, "x"},
        {"home/u", AE_IFDIR, 0700, 100000, 100000},
        {"home/u/notes", 0, 0600, 100000, 4294967294ll, NULL, "mine\n"},
        {"tmp", AE_IFDIR, 01777},
        {"dev/null", AE_IFCHR, 0666, 0, 0, .major = 1, .minor = 3},
        {"dev/big", AE_IFBLK, 0660, 0, 6, .major = 259, .minor = 300},
        {"dev/fifo", AE_IFIFO, 0600},
        {"lnk", AE_IFLNK, 0777, 0, 0, "/etc", NULL, "security.selinux", "x_t", 3},
        {"opq", AE_IFDIR},
        {"opq/lower", 0, 0644, 0, 0, NULL, "low"},
        {"opq/sub/deep", 0, 0644, 0, 0, NULL, "low"},
        {"opq2/lower", 0, 0644, 0, 0, NULL, "low"},
        {"gone/file", 0, 0644, 0, 0, NULL, "x"},
        {"gone2", 0, 0644, 0, 0, NULL, "x"},
        {"dirfile/x/y", 0, 0644, 0, 0, NULL, "x"},
        {"dup", 0, 0644, 0, 0, NULL, "first"},
        {"odd dir/q\"uote's \\name", 0, 0644, 100001, 0, NULL, "odd", "user.k", "v", 1},
        {"dup", 0, 0644, 0, 0, NULL, "second"},
    };
    const struct ent l2[] = {
        {"./", AE_IFDIR, 0700, 1000, 1000},      /* skipped: the root stays 0755 root:root */
        {"opq/new", 0, 0644, 0, 0, NULL, "new"}, /* before the marker: stays */
        {"opq/sub/fresh", 0, 0644, 0, 0, NULL, "new"},
        {"opq/.wh..wh..opq", 0, 0644},
        {".wh.gone"},
        {".wh.gone2"},
        {".wh.never-existed"},
        {"missing/.wh.x"},
        {"usr/bin/.wh.a"},
        {"usr/bin/d", HL, 0, 0, 0, "usr/bin/b"}, /* to a file of the lower layer */
        {"dirfile", 0, 0600, 0, 0, NULL, "now a file"},
        {"etc", AE_IFDIR, 0700, 0, 42},
        {"etc/new", 0, 0644, 0, 0, NULL, "n"},
    };
    const struct ent l3[] = {
        {"opq2/.wh..wh..opq"}, /* marker first, then this layer's entries */
        {"opq2/x", 0, 0644, 0, 0, NULL, "x"},
        {"usr/bin/.wh.b"},
        /* what `umoci insert` writes: "/" and absolute names, resolved under the root */
        {"/", AE_IFDIR, 0700, 1000, 1000},
        {"/abs", AE_IFDIR, 0750},
        {"/abs/name", 0, 0644, 0, 0, NULL, "absolute\n"},
        {"//abs/./x/../link", HL, 0, 0, 0, "/abs/name"},
        {"abs/sub/..", AE_IFDIR, 0711},      /* resolves to abs: merged */
        {"abs/..", AE_IFDIR, 0700},          /* resolves to the root: skipped */
        {".", AE_IFLNK, 0777, 0, 0, "/etc"}, /* skipped: "." never becomes a symlink */
        {"./", HL, 0, 0, 0, "abs/name"},     /* skipped too */
    };
    const struct layer layers[] = {LAYER(GZIP, l1), LAYER(ZSTD, l2), LAYER(PLAIN, l3)};
    _cleanup_free_ char *sub = dbx_xasprintf("%s/layers", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    _cleanup_error_ dbx_error *err = NULL;
    if (build(sub, layers, DBX_ARRAY_SIZE(layers), NULL, &err) < 0) fail_msg("%s", err->msg);
    _cleanup_free_ char *img = dbx_xasprintf("%s/base.img", sub);

    /* "./" and "/" entries (0700, uid 1000) are skipped */
    EXPECT(img, "stat /", "Mode:  0755");
    EXPECT(img, "stat /", "User:     0   Group:     0");
    EXPECT(img, "stat /", "Type: directory");
    EXPECT(img, "cat /abs/name", "absolute");
    EXPECT(img, "stat /abs", "Mode:  0711");
    assert_int_equal(inode_of(img, "/abs/name"), inode_of(img, "/abs/link"));
    EXPECT(img, "stat /usr/bin/ping", "Mode:  04755");
    EXPECT(img, "ea_get -x /usr/bin/ping security.capability",
           "01 00 00 02 00 20 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    EXPECT(img, "stat /usr/bin/newgrp", "Mode:  02755");
    EXPECT(img, "stat /tmp", "Mode:  01777");
    EXPECT(img, "stat /home/u", "User: 100000   Group: 100000");
    EXPECT(img, "stat /home/u/notes", "User: 100000   Group:    -2"); /* 4294967294 */
    EXPECT(img, "stat /dev/null", "Device major/minor number: 01:03");
    EXPECT(img, "stat /dev/big", "Device major/minor number: 259:300");
    EXPECT(img, "stat /dev/big", "Group:     6");
    EXPECT(img, "stat /dev/fifo", "Type: FIFO");
    EXPECT(img, "stat /lnk", "Type: symlink");
    EXPECT(img, "stat /lnk", "Fast link dest: \"/etc\"");
    EXPECT(img, "ea_get /lnk security.selinux", "x_t");
    EXPECT(img, "stat /usr/bin/ping", "mtime: 0x6553f100");
    {
        /* a 3000-byte binary value went through `ea_set -f` */
        _cleanup_free_ char *o = debugfs(img, "ea_get -x /etc/motd user.comment");
        char want[64];
        snprintf(want, sizeof(want), "%02x %02x %02x", big[2997], big[2998], big[2999]);
        assert_non_null(strstr(o, "(3000)"));
        assert_non_null(strstr(o, want));
    }
    /* hard links: a whited out in layer 2, b in layer 3; c and d (added in layer 2 as a link
     * to the lower layer's b) still share the inode */
    EXPECT(img, "stat /usr/bin/a", "File not found");
    EXPECT(img, "stat /usr/bin/b", "File not found");
    assert_int_equal(inode_of(img, "/usr/bin/c"), inode_of(img, "/usr/bin/d"));
    EXPECT(img, "stat /usr/bin/c", "Links: 2");
    EXPECT(img, "cat /usr/bin/d", "A");
    /* opaque directories, whatever the order of marker and entries */
    EXPECT(img, "ls -p /opq", "/new/");
    EXPECT_NOT(img, "ls -p /opq", "/lower/");
    EXPECT(img, "ls -p /opq/sub", "/fresh/");
    EXPECT_NOT(img, "ls -p /opq/sub", "/deep/");
    EXPECT(img, "ls -p /opq2", "/x/");
    EXPECT_NOT(img, "ls -p /opq2", "/lower/");
    /* whiteouts of a directory and a file; markers never show up */
    EXPECT(img, "stat /gone", "File not found");
    EXPECT(img, "stat /gone2", "File not found");
    EXPECT_NOT(img, "ls -p /opq", ".wh.");
    EXPECT(img, "stat /missing", "File not found"); /* a whiteout creates nothing */
    /* a file replacing a directory tree; a directory merge taking the newer metadata */
    EXPECT(img, "stat /dirfile", "Type: regular");
    EXPECT(img, "cat /dirfile", "now a file");
    EXPECT(img, "stat /etc", "Mode:  0700");
    EXPECT(img, "stat /etc", "Group:    42");
    EXPECT(img, "ls -p /etc", "/motd/");
    EXPECT(img, "ls -p /etc", "/new/");
    /* the later of two entries in one layer wins */
    EXPECT(img, "cat /dup", "second");
    /* debugfs quoting: space, double quote, single quote, backslash */
    EXPECT(img, "stat \"/odd dir/q\"\"uote's \\name\"", "User: 100001");
    EXPECT(img, "ea_get \"/odd dir/q\"\"uote's \\name\" user.k", "v");
    /* small xattrs live in the inode, not in a separate block */
    EXPECT(img, "stat /usr/bin/ping", "Size of extra inode fields: 32");
    EXPECT(img, "stat /usr/bin/ping", "File ACL: 0");

    char *fsck[] = {"e2fsck", "-f", "-n", img, NULL};
    int status = -1;
    assert_int_equal(vm_run("e2fsck", fsck, NULL, NULL, NULL, &status, &err), 0);
    assert_int_equal(status, 0);
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

#define F(n)                                                                                       \
    { n, 0, 0644, 0, 0, NULL, "x" }

static void test_hostile(void **state) {
    static char longname[VM_TAR_MAX_PATH + 10];
    memset(longname, 'a', sizeof(longname) - 1);
    for (size_t i = 100; i < sizeof(longname) - 1; i += 100)
        longname[i] = '/';
    static unsigned char huge_x[5000];
    const struct ent sym[] = {{"a", AE_IFLNK, 0777, 0, 0, "/etc"}};
    const struct ent through[] = {F("a/passwd")};
    const struct ent wh_through[] = {{"a/.wh.passwd"}};
    const struct ent dotdot[] = {F("a/../../x")};
    const struct ent abs_dotdot[] = {F("/../etc/passwd")};
    const struct ent hl_out[] = {F("x"), {"y", HL, 0, 0, 0, "../x"}};
    const struct ent hl_abs[] = {F("x"), {"y", HL, 0, 0, 0, "/../etc/shadow"}};
    /* cleaned names are what the symlink checks see: "b/../a/passwd" is "a/passwd" */
    const struct ent through_clean[] = {F("b/../a/passwd")};
    const struct ent hl_sym_clean[] = {{"y", HL, 0, 0, 0, "/x/../a/passwd"}};
    const struct ent hl_none[] = {{"y", HL, 0, 0, 0, "x"}};
    const struct ent hl_dir[] = {{"d", AE_IFDIR}, {"y", HL, 0, 0, 0, "d"}};
    const struct ent hl_sym[] = {{"y", HL, 0, 0, 0, "a/passwd"}};
    const struct ent wh_dotdot[] = {{"a/.wh..."}};
    const struct ent wh_dot[] = {{".wh.."}};
    const struct ent wh_empty[] = {{"etc/.wh."}};
    const struct ent longp[] = {F(longname)};
    const struct ent badid[] = {{"x", 0, 0644, 4294967295ll, 0, NULL, "x"}};
    const struct ent bigx[] = {{"x", 0, 0644, 0, 0, NULL, "x", "user.big", huge_x, sizeof(huge_x)}};
    const struct ent bomb[] = {{"zeros", 0, 0644, 0, 0, NULL, NULL, .size = 2 << 20}};
    const struct ent many[] = {F("1"), F("2"), F("3"), F("4"), F("5")};
    const struct ent deep[] = {F("a/b/c/d/e/f")};
    static char quotes[4000];
    memset(quotes, '"', sizeof(quotes) - 1);
    for (size_t i = 200; i < sizeof(quotes) - 1; i += 200)
        quotes[i] = '/';
    const struct ent quoted[] = {{quotes, 0, 0644, 70000, 0, NULL, "x"}};
    const struct {
        const char *name;
        struct layer l[2];
        int limit; /* 1 = 1 MiB of data, 2 = 3 headers, 3 = 4 nodes, 4 = a 1 MiB ceiling */
        const char *msg;
    } cases[] = {
        {"through",
         {LAYER(GZIP, sym), LAYER(ZSTD, through)},
         0,
         "layer 'sha256:1': 'a/passwd': parent 'a' is a symlink"},
        {"wh_through",
         {LAYER(GZIP, sym), LAYER(PLAIN, wh_through)},
         0,
         "layer 'sha256:1': 'a/.wh.passwd': parent 'a' is a symlink"},
        {"hl_sym",
         {LAYER(GZIP, sym), LAYER(PLAIN, hl_sym)},
         0,
         "layer 'sha256:1': hard link 'y': 'a/passwd': parent 'a' is a symlink"},
        {"through_clean",
         {LAYER(GZIP, sym), LAYER(ZSTD, through_clean)},
         0,
         "layer 'sha256:1': 'a/passwd': parent 'a' is a symlink"},
        {"hl_sym_clean",
         {LAYER(GZIP, sym), LAYER(PLAIN, hl_sym_clean)},
         0,
         "layer 'sha256:1': hard link 'y': 'a/passwd': parent 'a' is a symlink"},
        {"dotdot",
         {LAYER(GZIP, dotdot)},
         0,
         "layer 'sha256:0': '..' leads out of the root in path 'a/../../x'"},
        {"abs_dotdot",
         {LAYER(GZIP, abs_dotdot)},
         0,
         "layer 'sha256:0': '..' leads out of the root in path '/../etc/passwd'"},
        {"hl_out",
         {LAYER(PLAIN, hl_out)},
         0,
         "hard link 'y': '..' leads out of the root in path '../x'"},
        {"hl_abs",
         {LAYER(PLAIN, hl_abs)},
         0,
         "hard link 'y': '..' leads out of the root in path '/../etc/shadow'"},
        {"hl_none",
         {LAYER(PLAIN, hl_none)},
         0,
         "hard link 'y' to 'x': not an earlier file in the archive"},
        {"hl_dir", {LAYER(PLAIN, hl_dir)}, 0, "hard link 'y' to directory 'd'"},
        {"wh_dotdot", {LAYER(PLAIN, wh_dotdot)}, 0, "bad whiteout 'a/.wh...'"},
        {"wh_dot", {LAYER(PLAIN, wh_dot)}, 0, "bad whiteout '.wh..'"},
        {"wh_empty", {LAYER(PLAIN, wh_empty)}, 0, "bad whiteout 'etc/.wh.'"},
        {"longp", {LAYER(GZIP, longp)}, 0, "is longer than 4096 bytes"},
        {"badid", {LAYER(GZIP, badid)}, 0, "'x': owner 4294967295:0 out of range"},
        {"bigx", {LAYER(GZIP, bigx)}, 0, "'x': extended attributes larger than ext4 can store"},
        {"bomb",
         {LAYER(GZIP, bomb)},
         1,
         "layer 'sha256:0': more than 1048576 bytes of file data in all layers"},
        {"headers", {LAYER(GZIP, many)}, 2, "more than 3 entries in all layers"},
        {"ceiling",
         {LAYER(GZIP, bomb)},
         4,
         "layer 'sha256:0': more than 1048576 bytes of file data in all layers (over a test "
         "ceiling)"},
        {"nodes", {LAYER(GZIP, deep)}, 3, "more than 4 entries"},
        {"quoted", {LAYER(GZIP, quoted)}, 0, "path too long to fix up with debugfs"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *sub = dbx_xasprintf("%s/%s", dir, cases[i].name);
        assert_int_equal(mkdir(sub, 0700), 0);
        struct vm_rootfs *b = NULL;
        _cleanup_error_ dbx_error *err = NULL;
        assert_int_equal(vm_rootfs_new(sub, &b, &err), 0);
        if (cases[i].limit == 1) b->max_bytes = 1 << 20;
        if (cases[i].limit == 2) b->max_headers = 3;
        if (cases[i].limit == 3) b->max_nodes = 4;
        if (cases[i].limit == 4) {
            vm_rootfs_limit_bytes(b, 1 << 20, "over a test ceiling");
            vm_rootfs_limit_bytes(b, 2 << 20, "never raised again");
        }
        size_t n = cases[i].l[1].e ? 2 : 1;
        int r = build(sub, cases[i].l, n, b, &err);
        assert_true(r < 0);
        assert_non_null(err);
        if (!strstr(err->msg, cases[i].msg))
            fail_msg("%s: got '%s', want '%s'", cases[i].name, err->msg, cases[i].msg);
        assert_null(strchr(err->msg, '\n'));
        /* only the layers are left: no image, no temp files, no spool */
        assert_int_equal(count_entries(sub), n);
    }
}

/* Bad scratch dir, a layer that is not a tar: errors, and the caller's fd stays open. */
static void test_fd_and_errors(void **state) {
    struct vm_rootfs *b = NULL;
    _cleanup_error_ dbx_error *err = NULL;
    assert_true(vm_rootfs_new("/nonexistent/dir", &b, &err) < 0);
    assert_non_null(strstr(err->msg, "/nonexistent/dir"));
    dbx_error_free(&err);
    assert_int_equal(vm_rootfs_new(dir, &b, &err), 0);
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    assert_int_equal(write(fds[1], "not a tar at all, not even close..", 34), 34);
    close(fds[1]);
    assert_true(vm_rootfs_add_layer(b, fds[0], "sha256:junk", true, &err) < 0);
    assert_non_null(strstr(err->msg, "layer 'sha256:junk': "));
    assert_int_equal(fcntl(fds[0], F_GETFD), FD_CLOEXEC); /* the caller's fd is left open */
    close(fds[0]);
    vm_rootfs_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_fd_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

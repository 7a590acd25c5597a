/* vm/vm-disk.c: base images (raw ext4 built rootless from a normalized tarball) and
 * per-project qcow2 overlays.
 *
 * Why genext2fs: e2fsprogs 1.47.0's `mkfs.ext4 -d` takes only a directory (tarball input came in
 * 1.47.1), so it would need the tree unpacked on the host under fakeroot.  `genext2fs -a` reads
 * owners, modes, setuid bits and device nodes straight from tar headers without privileges.
 * It makes a plain ext2 (128-byte inodes, no features); tune2fs/e2fsck/resize2fs then turn it
 * into an ext4 with 256-byte inodes, extents for new files, dir_index and a journal.
 * What genext2fs cannot store (owners above 65535, device numbers above 255:255, extended
 * attributes, the root directory's metadata) is set afterwards with a `debugfs -w` script
 * (vm-rootfs-disk.c writes both the tar and the script).  genext2fs also needs parents before
 * their entries and no duplicates: the tar comes from the in-memory tree, so both hold. */
#include "vm-internal.h"

#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <sys/sysmacros.h>

#define printable vm_path_printable

#define BLOCKS_PER_GROUP 8192u /* genext2fs's fixed maximum */
#define MIN_INODES_PER_GROUP 2048u
#define MAX_INODES_PER_GROUP 8192u

/* ---- path checks ------------------------------------------------------------------------ */

char *vm_path_printable(const char *s) {
    size_t n = strnlen(s, 200);
    char *p = dbx_xasprintf("%.*s%s", (int)n, s, s[n] ? "..." : "");
    return dbx_sanitize_printable(p);
}

int vm_tar_clean_path(const char *path, char **ret, dbx_error **err) {
    size_t len = strnlen(path, VM_TAR_MAX_PATH + 1);
    _cleanup_free_ char *shown = printable(path);
    if (len > VM_TAR_MAX_PATH)
        return dbx_error_set(err, 0, "path '%s' is longer than %d bytes", shown, VM_TAR_MAX_PATH);
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return dbx_error_set(err, 0, "control character in path '%s'", shown);
    /* Names are resolved under the root, as containerd and Docker do: a leading '/' means the
     * image's root (umoci insert writes "/" and "/abs/name"), and '..' removes the component
     * before it.  The tree never follows symlinks, so this lexical cleaning is the whole
     * resolution; a '..' with nothing left to remove would leave the root and is refused. */
    _cleanup_free_ char *out = dbx_xmalloc(len + 1);
    size_t o = 0;
    const char *p = path;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n > 255) return dbx_error_set(err, 0, "name longer than 255 bytes in '%s'", shown);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (!o) return dbx_error_set(err, 0, "'..' leads out of the root in path '%s'", shown);
            while (o && out[o - 1] != '/')
                o--;
            if (o) o--;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (o) out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
        if (*p == '/') p++;
    }
    out[o] = '\0';
    *ret = TAKE_PTR(out);
    return 0;
}

/* ---- building the image ----------------------------------------------------------------- */

struct geometry {
    uint64_t blocks, inodes;
};

/* Size the genext2fs image from the content.  genext2fs 1.5 makes groups of at most 8192
 * blocks whatever the block size (one group of exactly the image size when smaller), and
 * resize2fs gives every added group the same inodes per group, so the image is a whole number
 * of 8192-block groups with at least 2048 inodes each: ext4's usual one inode per 16 KiB, also
 * in the free space the guest fills later.  Inode tables are budgeted at 256 bytes per inode
 * because tune2fs -I 256 grows them in place. */
static struct geometry size_image(const struct vm_tar_stats *st) {
    uint64_t entries = st->entries + 64;
    uint64_t need = st->data_blocks + st->data_blocks / 512 + st->dirs + entries / 64 + 1024;
    need += need / 20;
    uint64_t groups = 1, ipg = MIN_INODES_PER_GROUP;
    for (int i = 0; i < 8; i++) {
        ipg = (entries + groups - 1) / groups;
        if (ipg < MIN_INODES_PER_GROUP) ipg = MIN_INODES_PER_GROUP;
        if (ipg > MAX_INODES_PER_GROUP) {
            groups = (entries + MAX_INODES_PER_GROUP - 1) / MAX_INODES_PER_GROUP;
            ipg = MAX_INODES_PER_GROUP;
        }
        ipg = (ipg + 31) & ~31ull;
        uint64_t total = need + groups * (ipg * 256 / VM_BLOCK + 4);
        uint64_t g = (total + BLOCKS_PER_GROUP - 1) / BLOCKS_PER_GROUP;
        if (g <= groups) break;
        groups = g;
    }
    return (struct geometry){.blocks = groups * BLOCKS_PER_GROUP, .inodes = ipg * groups};
}

/* e2fsprogs' default journal size for a filesystem of `blocks` 4 KiB blocks (misc/util.c). */
static uint64_t journal_blocks(uint64_t blocks) {
    if (blocks < 32768) return 1024;
    if (blocks < 256 * 1024) return 4096;
    if (blocks < 512 * 1024) return 8192;
    if (blocks < 4096 * 1024) return 16384;
    if (blocks < 8192 * 1024) return 32768;
    if (blocks < 16384 * 1024) return 65536;
    if (blocks < 32768 * 1024) return 131072;
    return 262144;
}

static int run_tool(const char *label, char **argv, bool fsck, dbx_error **err) {
    int status = 0;
    _cleanup_free_ char *errs = NULL;
    if (vm_run(label, argv, NULL, NULL, &errs, &status, err) < 0) return -1;
    /* e2fsck: 1 = errors corrected, fine while we are still shaping the image. */
    if (status == 0 || (fsck && status == 1)) return 0;
    _cleanup_free_ char *line = NULL;
    for (char *save = NULL, *l = strtok_r(errs, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (*l && strncmp(l, "e2fsck ", 7) != 0 && strncmp(l, "resize2fs ", 10) != 0) {
            free(line);
            line = dbx_xstrdup(l);
        }
    if (line) return dbx_error_set(err, 0, "%s: %s", label, dbx_sanitize_printable(line));
    return dbx_error_set(err, 0, "%s: exited with status %d", label, status);
}

/* debugfs -f always exits 0 and reports a failed command only on stderr, after its banner. */
static int run_debugfs(const char *img, const char *script, dbx_error **err) {
    char *argv[] = {"debugfs", "-w", "-f", (char *)script, (char *)img, NULL};
    _cleanup_free_ char *errs = NULL;
    if (vm_run("debugfs", argv, NULL, NULL, &errs, NULL, err) < 0) return -1;
    for (char *save = NULL, *l = strtok_r(errs, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (*l && !dbx_str_has_prefix(l, "debugfs "))
            return dbx_error_set(err, 0, "debugfs: %s", dbx_sanitize_printable(l));
    return 0;
}

int vm_disk_make_fs(const char *tar, const char *img, int img_fd, const struct vm_tar_stats *st,
                    const char *script, uint64_t extra, dbx_error **err) {
    struct geometry g = size_image(st);
    _cleanup_free_ char *b = dbx_xasprintf("%llu", (unsigned long long)g.blocks);
    _cleanup_free_ char *N = dbx_xasprintf("%llu", (unsigned long long)g.inodes);
    char *gen[] = {"genext2fs", "-B", "4096", "-b",        b,           "-N", N,
                   "-m",        "0",  "-a",   (char *)tar, (char *)img, NULL};
    _cleanup_free_ char *errs = NULL;
    if (vm_run("genext2fs", gen, NULL, NULL, &errs, NULL, err) < 0) return -1;
    /* genext2fs reports some failures only as a message with exit status 0. */
    for (char *save = NULL, *l = strtok_r(errs, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (dbx_str_has_prefix(l, "genext2fs: "))
            return dbx_error_set(err, 0, "%s", dbx_sanitize_printable(l));

    char *inode[] = {"tune2fs", "-I", "256", (char *)img, NULL};
    if (run_tool("tune2fs -I 256", inode, false, err) < 0) return -1;
    char *feat[] = {"tune2fs",
                    "-O",
                    "extents,uninit_bg,dir_index,filetype,dir_nlink,extra_isize,"
                    "large_file,huge_file",
                    "-c",
                    "0",
                    "-i",
                    "0",
                    (char *)img,
                    NULL};
    if (run_tool("tune2fs -O", feat, false, err) < 0) return -1;
    /* Required after enabling uninit_bg/filetype; -D builds the directory indexes. */
    char *fsck1[] = {"e2fsck", "-f", "-y", "-D", (char *)img, NULL};
    if (run_tool("e2fsck", fsck1, true, err) < 0) return -1;
    /* Now that inodes are 256 bytes with extra_isize, small xattrs go in the inode. */
    if (script && run_debugfs(img, script, err) < 0) return -1;

    if (extra > (16ull << 40)) return dbx_error_set(err, 0, "extra space above 16 TiB");
    struct stat sb;
    if (fstat(img_fd, &sb) < 0) return dbx_error_set(err, errno, "stat '%s'", img);
    uint64_t base = ((uint64_t)sb.st_size + VM_BLOCK - 1) / VM_BLOCK;
    uint64_t more = (extra + VM_BLOCK - 1) / VM_BLOCK;
    uint64_t final = base + more;
    final += journal_blocks(final);
    if (final > (16ull << 40) / VM_BLOCK) return dbx_error_set(err, 0, "image larger than 16 TiB");
    if (ftruncate(img_fd, (off_t)(final * VM_BLOCK)) < 0)
        return dbx_error_set(err, errno, "grow '%s'", img);
    char *rs[] = {"resize2fs", (char *)img, NULL};
    if (run_tool("resize2fs", rs, false, err) < 0) return -1;
    char *jn[] = {"tune2fs", "-j", (char *)img, NULL};
    if (run_tool("tune2fs -j", jn, false, err) < 0) return -1;
    char *check[] = {"e2fsck", "-f", "-n", (char *)img, NULL};
    if (run_tool("e2fsck -n", check, false, err) < 0) return dbx_error_wrap(err, "final check");
    return 0;
}

int vm_dir_fsync(const char *path) {
    _cleanup_free_ char *copy = dbx_xstrdup(path);
    _cleanup_close_ int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd >= 0 ? fsync(fd) : -1;
}

static void rootfs_freep(struct vm_rootfs **b) {
    vm_rootfs_free(*b);
}

int vm_disk_build_base(const char *tar_path, const char *out_path, uint64_t extra_bytes,
                       uint64_t *ret_size, dbx_error **err) {
    _cleanup_close_ int fd = open(tar_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", tar_path);
    _cleanup_free_ char *copy = dbx_xstrdup(out_path);
    __attribute__((cleanup(rootfs_freep))) struct vm_rootfs *b = NULL;
    if (vm_rootfs_new(dirname(copy), &b, err) < 0 ||
        vm_rootfs_add_layer(b, fd, tar_path, false, err) < 0)
        return -1;
    if (vm_rootfs_write_disk(b, out_path, extra_bytes, ret_size, err) < 0)
        return dbx_error_wrap(err, "build image from '%s'", tar_path);
    return 0;
}

/* ---- overlays --------------------------------------------------------------------------- */

/* The virtual size qemu-img reports for a qcow2 or raw image. */
static int virtual_size(const char *path, const char *fmt, uint64_t *ret, dbx_error **err) {
    char *argv[] = {"qemu-img", "info", "--output=json", "-f", (char *)fmt, (char *)path, NULL};
    _cleanup_free_ char *out = NULL;
    if (vm_run("qemu-img info", argv, NULL, &out, NULL, NULL, err) < 0) return -1;
    json_error_t je;
    json_t *j = json_loads(out, JSON_REJECT_DUPLICATES, &je);
    json_int_t v = -1;
    if (j && json_unpack(j, "{s:I}", "virtual-size", &v) < 0) v = -1;
    json_decref(j);
    if (v <= 0) return dbx_error_set(err, 0, "qemu-img info '%s': no virtual size", path);
    *ret = (uint64_t)v;
    return 0;
}

int vm_disk_size(const char *overlay_path, uint64_t *ret, dbx_error **err) {
    return virtual_size(overlay_path, "qcow2", ret, err);
}

/* qemu-img takes sizes in bytes; a qcow2 virtual size is a whole number of 512-byte sectors. */
static char *size_arg(uint64_t n) {
    return dbx_xasprintf("%llu", (unsigned long long)((n + 511) / 512 * 512));
}

/* Is the file at path a qcow2 image (magic "QFI\xfb")?  Base disks are raw ext4, whose first
 * 1024 bytes are zero (the boot block), so the two never mix up. */
static int backing_is_qcow2(const char *path, bool *ret, dbx_error **err) {
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", path);
    uint8_t magic[4] = {0};
    ssize_t n = pread(fd, magic, sizeof(magic), 0);
    if (n < 0) return dbx_error_set(err, errno, "read '%s'", path);
    *ret = n == 4 && memcmp(magic, "QFI\xfb", 4) == 0;
    return 0;
}

/* QEMU option values are comma-separated; qemu-img's -b value is a plain argument, but a ',' in
 * a backing path would still be parsed by -o, so refuse it rather than escape it. */
int vm_disk_create_overlay(const char *base_path, const char *overlay_path, uint64_t size,
                           dbx_error **err) {
    _cleanup_free_ char *base = realpath(base_path, NULL);
    if (!base) return dbx_error_set(err, errno, "base image '%s'", base_path);
    if (strchr(base, ','))
        return dbx_error_set(err, 0, "base image path '%s' contains a comma", base);
    /* The backing file is a raw base disk, or a derived disk (a qcow2 overlay of one, made
     * read-only after [setup] ran in it).  Told by its magic, never probed by QEMU: a raw
     * image whose first bytes the guest wrote could otherwise pass for another format. */
    bool qcow2 = false;
    if (backing_is_qcow2(base, &qcow2, err) < 0) return -1;
    const char *fmt = qcow2 ? "qcow2" : "raw";
    /* Never smaller than the image: the guest would see its filesystem cut off. */
    uint64_t base_size = 0;
    if (size && virtual_size(base, fmt, &base_size, err) < 0) return -1;
    _cleanup_free_ char *sz = size > base_size ? size_arg(size) : NULL;
    _cleanup_unlink_free_ char *tmp = dbx_xasprintf("%s.tmp.%d", overlay_path, (int)getpid());
    char *argv[] = {"qemu-img",  "create", "-q", "-f", "qcow2", "-F",
                    (char *)fmt, "-b",     base, tmp,  sz,      NULL};
    if (vm_run("qemu-img create", argv, NULL, NULL, NULL, NULL, err) < 0) return -1;
    _cleanup_close_ int fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fsync(fd) < 0) return dbx_error_set(err, errno, "fsync '%s'", tmp);
    if (rename(tmp, overlay_path) < 0)
        return dbx_error_set(err, errno, "rename to '%s'", overlay_path);
    free(TAKE_PTR(tmp));
    vm_dir_fsync(overlay_path);
    return 0;
}

int vm_disk_grow_overlay(const char *overlay_path, uint64_t size, uint64_t *ret_size,
                         dbx_error **err) {
    uint64_t cur = 0;
    if (vm_disk_size(overlay_path, &cur, err) < 0) return -1;
    if (size > cur) {
        /* qemu-img resize writes the new size into the qcow2 header in one sector write and
         * syncs; the guest's filesystem grows into it at boot. */
        _cleanup_free_ char *sz = size_arg(size);
        char *argv[] = {"qemu-img", "resize", "-q", "-f", "qcow2", (char *)overlay_path, sz, NULL};
        if (vm_run("qemu-img resize", argv, NULL, NULL, NULL, NULL, err) < 0) return -1;
        if (vm_disk_size(overlay_path, &cur, err) < 0) return -1;
    }
    if (ret_size) *ret_size = cur;
    return 0;
}

/* qemu-img check exit codes: 0 clean, 1 check failed to run, 2 corruption left, 3 only leaked
 * clusters left (harmless: wasted space), 63 format without checks. */
int vm_disk_check(const char *overlay_path, dbx_error **err) {
    char *argv[] = {"qemu-img",           "check", "-q", "-r", "all", "-f", "qcow2",
                    (char *)overlay_path, NULL};
    int status = 0;
    _cleanup_free_ char *errs = NULL, *out = NULL;
    if (vm_run("qemu-img check", argv, NULL, &out, &errs, &status, err) < 0) return -1;
    if (status == 0 || status == 3) return 0;
    _cleanup_free_ char *line = NULL;
    for (char *save = NULL, *l = strtok_r(errs, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (*l) {
            free(line);
            line = dbx_xstrdup(l);
        }
    if (status == 2)
        return dbx_error_set(err, 0, "'%s' is corrupt and could not be repaired%s%s", overlay_path,
                             line ? ": " : "", line ? dbx_sanitize_printable(line) : "");
    return dbx_error_set(err, 0, "qemu-img check '%s': %s", overlay_path,
                         line ? dbx_sanitize_printable(line) : "failed");
}

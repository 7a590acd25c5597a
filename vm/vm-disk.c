/* vm/vm-disk.c: base images (raw ext4 built rootless from a tarball) and per-project qcow2
 * overlays.
 *
 * Why genext2fs: e2fsprogs 1.47.0's `mkfs.ext4 -d` takes only a directory (tarball input came in
 * 1.47.1), so it would need the tree unpacked on the host under fakeroot.  `genext2fs -a` reads
 * owners, modes, setuid bits and device nodes straight from tar headers without privileges.
 * It makes a plain ext2 (128-byte inodes, no features); tune2fs/e2fsck/resize2fs then turn it
 * into an ext4 with 256-byte inodes, extents for new files, dir_index and a journal.
 * genext2fs limits that the normalizer enforces up front: owners are stored in 16 bits, parent
 * directories must precede their entries (a missing one is only a message, exit status 0), and
 * duplicate entries corrupt the parent directory's mode.  Extended attributes (file
 * capabilities, SELinux labels) are not supported and are dropped. */
#include "vm-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <libgen.h>
#include <limits.h>
#include <sys/sysmacros.h>

#define BLOCK 4096u
#define BLOCKS_PER_GROUP 8192u /* genext2fs's fixed maximum */
#define MIN_INODES_PER_GROUP 2048u
#define MAX_INODES_PER_GROUP 8192u

/* ---- path checks ------------------------------------------------------------------------ */

static char *printable(const char *s) {
    size_t n = strnlen(s, 200);
    char *p = dbx_xasprintf("%.*s%s", (int)n, s, s[n] ? "..." : "");
    return dbx_sanitize_printable(p);
}

int vm_tar_clean_path(const char *path, char **ret, dbx_error **err) {
    size_t len = strnlen(path, VM_TAR_MAX_PATH + 1);
    _cleanup_free_ char *shown = printable(path);
    if (len > VM_TAR_MAX_PATH)
        return dbx_error_set(err, 0, "path '%s' is longer than %d bytes", shown, VM_TAR_MAX_PATH);
    if (path[0] == '/')
        return dbx_error_set(err, 0, "absolute path '%s'", shown);
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return dbx_error_set(err, 0, "control character in path '%s'", shown);
    _cleanup_free_ char *out = dbx_xmalloc(len + 1);
    size_t o = 0;
    const char *p = path;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return dbx_error_set(err, 0, "'..' in path '%s'", shown);
        if (n > 255)
            return dbx_error_set(err, 0, "name longer than 255 bytes in '%s'", shown);
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (o)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    out[o] = '\0';
    *ret = TAKE_PTR(out);
    return 0;
}

/* ---- a set of seen paths (64-bit hashes; a collision can only refuse a tarball) ---------- */

struct path_set {
    uint64_t *keys; /* 0 = empty; bit 0 = is a directory */
    size_t cap, n;
};

static uint64_t path_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (h | 2) & ~1ull;
}

/* Returns 0 absent, 1 present (file), 2 present (directory). */
static int set_get(const struct path_set *s, const char *path) {
    if (!s->cap)
        return 0;
    uint64_t h = path_hash(path);
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->keys[i])
            return 0;
        if ((s->keys[i] & ~1ull) == h)
            return (s->keys[i] & 1) ? 2 : 1;
    }
}

static void set_put(struct path_set *s, const char *path, bool dir) {
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        uint64_t *nk = dbx_xcalloc(ncap, sizeof(uint64_t));
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->keys[i])
                continue;
            size_t j = (s->keys[i] & ~1ull) & (ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = s->keys[i];
        }
        free(s->keys);
        s->keys = nk;
        s->cap = ncap;
    }
    uint64_t h = path_hash(path);
    size_t i = h & (s->cap - 1);
    while (s->keys[i] && (s->keys[i] & ~1ull) != h)
        i = (i + 1) & (s->cap - 1);
    if (!s->keys[i])
        s->n++;
    s->keys[i] = h | (dir ? 1 : 0);
}

/* ---- normalizing ------------------------------------------------------------------------ */

struct norm {
    struct archive *in, *out;
    struct path_set seen;
    struct vm_tar_stats st;
    const char *in_path;
};

static void norm_free(struct norm *n) {
    if (n->in)
        archive_read_free(n->in);
    if (n->out)
        archive_write_free(n->out);
    free(n->seen.keys);
}

static int write_dir(struct norm *n, const char *path, dbx_error **err) {
    struct archive_entry *e = archive_entry_new();
    if (!e)
        dbx_oom_hook();
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, AE_IFDIR);
    archive_entry_set_perm(e, 0755);
    int r = archive_write_header(n->out, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK)
        return dbx_error_set(err, 0, "write tar: %s", archive_error_string(n->out));
    set_put(&n->seen, path, true);
    n->st.dirs++;
    n->st.entries++;
    return 0;
}

/* Every parent must be a directory seen earlier; missing ones are added (root-owned, 0755),
 * a parent that is a file or symlink is refused (no writing "through" a symlink). */
static int ensure_parents(struct norm *n, char *path, dbx_error **err) {
    for (char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        int have = set_get(&n->seen, path);
        int r = 0;
        if (have == 1) {
            _cleanup_free_ char *shown = printable(path);
            r = dbx_error_set(err, 0, "'%s' is used as a directory but is not one", shown);
        } else if (have == 0) {
            r = write_dir(n, path, err);
        }
        *s = '/';
        if (r < 0)
            return r;
    }
    return 0;
}

static int copy_data(struct norm *n, int64_t size, dbx_error **err) {
    char buf[65536];
    int64_t done = 0;
    for (;;) {
        la_ssize_t r = archive_read_data(n->in, buf, sizeof(buf));
        if (r < 0)
            return dbx_error_set(err, 0, "%s", archive_error_string(n->in));
        if (r == 0)
            break;
        done += r;
        if (done > size)
            return dbx_error_set(err, 0, "entry data longer than its header says");
        if (archive_write_data(n->out, buf, (size_t)r) != r)
            return dbx_error_set(err, 0, "write tar: %s", archive_error_string(n->out));
    }
    if (done != size)
        return dbx_error_set(err, 0, "entry data shorter than its header says");
    return 0;
}

/* One input entry: check, then write its normalized copy (or skip it). */
static int norm_entry(struct norm *n, struct archive_entry *in, dbx_error **err) {
    const char *raw = archive_entry_pathname(in);
    if (!raw)
        return dbx_error_set(err, 0, "entry without a usable path name");
    _cleanup_free_ char *path = NULL;
    if (vm_tar_clean_path(raw, &path, err) < 0)
        return -1;
    _cleanup_free_ char *shown = printable(path);
    mode_t type = archive_entry_filetype(in);
    const char *link = archive_entry_hardlink(in);
    if (path[0] == '\0') {
        if (type != AE_IFDIR || link)
            return dbx_error_set(err, 0, "root entry is not a directory");
        return 0; /* genext2fs makes the root itself (0755 root:root) */
    }
    int64_t uid = archive_entry_uid(in), gid = archive_entry_gid(in);
    if (uid < 0 || gid < 0 || uid > VM_TAR_MAX_ID || gid > VM_TAR_MAX_ID)
        return dbx_error_set(err, 0,
                             "'%s': owner %lld:%lld is above %d, which the image "
                             "builder (genext2fs) cannot store",
                             shown, (long long)uid, (long long)gid, VM_TAR_MAX_ID);
    if (ensure_parents(n, path, err) < 0)
        return -1;
    int have = set_get(&n->seen, path);
    if (have == 2 && type == AE_IFDIR && !link)
        return 0; /* repeated directory: keep the first */
    if (have)
        return dbx_error_set(err, 0, "duplicate entry '%s'", shown);

    _cleanup_free_ char *target = NULL;
    if (link) {
        if (vm_tar_clean_path(link, &target, err) < 0)
            return dbx_error_wrap(err, "hard link '%s'", shown);
        if (set_get(&n->seen, target) != 1) {
            _cleanup_free_ char *t = printable(target);
            return dbx_error_set(err, 0,
                                 "hard link '%s' to '%s': not an earlier file in the "
                                 "archive",
                                 shown, t);
        }
        type = AE_IFREG;
    }
    switch (type) {
    case AE_IFREG:
    case AE_IFDIR:
    case AE_IFLNK:
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
        break;
    default:
        return dbx_error_set(err, 0, "'%s': unsupported entry type 0%o", shown, (unsigned)type);
    }
    int64_t size =
        (type == AE_IFREG && !link && archive_entry_size_is_set(in)) ? archive_entry_size(in) : 0;
    if (size < 0 || (uint64_t)size > VM_TAR_MAX_BYTES - n->st.data_bytes)
        return dbx_error_set(err, 0, "more than %llu bytes of file data",
                             (unsigned long long)VM_TAR_MAX_BYTES);
    n->st.data_bytes += (uint64_t)size;
    n->st.data_blocks += ((uint64_t)size + BLOCK - 1) / BLOCK;

    struct archive_entry *e = archive_entry_new();
    if (!e)
        dbx_oom_hook();
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, archive_entry_perm(in) & 07777);
    archive_entry_set_uid(e, uid);
    archive_entry_set_gid(e, gid);
    archive_entry_set_mtime(e, archive_entry_mtime(in), 0);
    archive_entry_set_size(e, size);
    if (link)
        archive_entry_set_hardlink(e, target);
    if (type == AE_IFCHR || type == AE_IFBLK) {
        archive_entry_set_rdevmajor(e, archive_entry_rdevmajor(in));
        archive_entry_set_rdevminor(e, archive_entry_rdevminor(in));
    }
    int r = 0;
    if (type == AE_IFLNK) {
        const char *sl = archive_entry_symlink(in);
        if (!sl || !*sl || strlen(sl) > VM_TAR_MAX_PATH || strchr(sl, '\n'))
            r = dbx_error_set(err, 0, "symlink '%s': bad target", shown);
        else {
            archive_entry_set_symlink(e, sl);
            if (strlen(sl) >= 60)
                n->st.data_blocks++; /* not a "fast" symlink */
        }
    }
    if (r == 0 && archive_write_header(n->out, e) != ARCHIVE_OK)
        r = dbx_error_set(err, 0, "write tar: %s", archive_error_string(n->out));
    archive_entry_free(e);
    if (r == 0 && size > 0 && copy_data(n, size, err) < 0)
        r = dbx_error_wrap(err, "'%s'", shown);
    if (r < 0)
        return r;
    set_put(&n->seen, path, type == AE_IFDIR);
    if (type == AE_IFDIR)
        n->st.dirs++;
    n->st.entries++;
    return 0;
}

int vm_tar_normalize(const char *in_path, int out_fd, struct vm_tar_stats *ret_stats,
                     dbx_error **err) {
    __attribute__((cleanup(norm_free))) struct norm n = {.in_path = in_path};
    n.in = archive_read_new();
    n.out = archive_write_new();
    if (!n.in || !n.out)
        dbx_oom_hook();
    archive_read_support_filter_all(n.in);
    archive_read_support_format_tar(n.in);
    if (archive_read_open_filename(n.in, in_path, 1 << 16) != ARCHIVE_OK) {
        if (archive_errno(n.in) > 0)
            return dbx_error_set(err, archive_errno(n.in), "open '%s'", in_path);
        return dbx_error_set(err, 0, "open '%s': %s", in_path, archive_error_string(n.in));
    }
    /* Restricted pax: plain ustar headers unless a path, id or size needs an extension. */
    /* Names are bytes: hdrcharset=BINARY keeps them as they are, whatever the locale (in the C
     * locale libarchive would otherwise fail to "translate" a UTF-8 name). */
    if (archive_write_set_format_pax_restricted(n.out) != ARCHIVE_OK ||
        archive_write_set_format_option(n.out, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
        archive_write_add_filter_none(n.out) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(n.out, 1) != ARCHIVE_OK ||
        archive_write_open_fd(n.out, out_fd) != ARCHIVE_OK)
        return dbx_error_set(err, 0, "write tar: %s", archive_error_string(n.out));
    uint64_t count = 0;
    for (;;) {
        struct archive_entry *e = NULL;
        int r = archive_read_next_header(n.in, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return dbx_error_set(err, 0, "'%s': %s", in_path, archive_error_string(n.in));
        if (++count > VM_TAR_MAX_ENTRIES)
            return dbx_error_set(err, 0, "'%s': more than %llu entries", in_path,
                                 (unsigned long long)VM_TAR_MAX_ENTRIES);
        if (norm_entry(&n, e, err) < 0)
            return dbx_error_wrap(err, "'%s'", in_path);
        if (n.st.entries > VM_TAR_MAX_ENTRIES) /* with the added parents */
            return dbx_error_set(err, 0, "'%s': more than %llu entries", in_path,
                                 (unsigned long long)VM_TAR_MAX_ENTRIES);
    }
    if (archive_write_close(n.out) != ARCHIVE_OK)
        return dbx_error_set(err, 0, "write tar: %s", archive_error_string(n.out));
    if (ret_stats)
        *ret_stats = n.st;
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
        if (ipg < MIN_INODES_PER_GROUP)
            ipg = MIN_INODES_PER_GROUP;
        if (ipg > MAX_INODES_PER_GROUP) {
            groups = (entries + MAX_INODES_PER_GROUP - 1) / MAX_INODES_PER_GROUP;
            ipg = MAX_INODES_PER_GROUP;
        }
        ipg = (ipg + 31) & ~31ull;
        uint64_t total = need + groups * (ipg * 256 / BLOCK + 4);
        uint64_t g = (total + BLOCKS_PER_GROUP - 1) / BLOCKS_PER_GROUP;
        if (g <= groups)
            break;
        groups = g;
    }
    return (struct geometry){.blocks = groups * BLOCKS_PER_GROUP, .inodes = ipg * groups};
}

/* e2fsprogs' default journal size for a filesystem of `blocks` 4 KiB blocks (misc/util.c). */
static uint64_t journal_blocks(uint64_t blocks) {
    if (blocks < 32768)
        return 1024;
    if (blocks < 256 * 1024)
        return 4096;
    if (blocks < 512 * 1024)
        return 8192;
    if (blocks < 4096 * 1024)
        return 16384;
    if (blocks < 8192 * 1024)
        return 32768;
    if (blocks < 16384 * 1024)
        return 65536;
    if (blocks < 32768 * 1024)
        return 131072;
    return 262144;
}

static int run_tool(const char *label, char **argv, bool fsck, dbx_error **err) {
    int status = 0;
    _cleanup_free_ char *errs = NULL;
    if (vm_run(label, argv, NULL, NULL, &errs, &status, err) < 0)
        return -1;
    /* e2fsck: 1 = errors corrected, fine while we are still shaping the image. */
    if (status == 0 || (fsck && status == 1))
        return 0;
    _cleanup_free_ char *line = NULL;
    for (char *save = NULL, *l = strtok_r(errs, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (*l && strncmp(l, "e2fsck ", 7) != 0 && strncmp(l, "resize2fs ", 10) != 0) {
            free(line);
            line = dbx_xstrdup(l);
        }
    if (line)
        return dbx_error_set(err, 0, "%s: %s", label, dbx_sanitize_printable(line));
    return dbx_error_set(err, 0, "%s: exited with status %d", label, status);
}

static int make_fs(const char *tar, const char *img, int img_fd, const struct vm_tar_stats *st,
                   uint64_t extra, dbx_error **err) {
    struct geometry g = size_image(st);
    _cleanup_free_ char *b = dbx_xasprintf("%llu", (unsigned long long)g.blocks);
    _cleanup_free_ char *N = dbx_xasprintf("%llu", (unsigned long long)g.inodes);
    char *gen[] = {"genext2fs", "-B", "4096", "-b",        b,           "-N", N,
                   "-m",        "0",  "-a",   (char *)tar, (char *)img, NULL};
    _cleanup_free_ char *errs = NULL;
    if (vm_run("genext2fs", gen, NULL, NULL, &errs, NULL, err) < 0)
        return -1;
    /* genext2fs reports some failures only as a message with exit status 0. */
    for (char *save = NULL, *l = strtok_r(errs, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (dbx_str_has_prefix(l, "genext2fs: "))
            return dbx_error_set(err, 0, "%s", dbx_sanitize_printable(l));

    char *inode[] = {"tune2fs", "-I", "256", (char *)img, NULL};
    if (run_tool("tune2fs -I 256", inode, false, err) < 0)
        return -1;
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
    if (run_tool("tune2fs -O", feat, false, err) < 0)
        return -1;
    /* Required after enabling uninit_bg/filetype; -D builds the directory indexes. */
    char *fsck1[] = {"e2fsck", "-f", "-y", "-D", (char *)img, NULL};
    if (run_tool("e2fsck", fsck1, true, err) < 0)
        return -1;

    if (extra > (16ull << 40))
        return dbx_error_set(err, 0, "extra space above 16 TiB");
    struct stat sb;
    if (fstat(img_fd, &sb) < 0)
        return dbx_error_set(err, errno, "stat '%s'", img);
    uint64_t base = ((uint64_t)sb.st_size + BLOCK - 1) / BLOCK;
    uint64_t more = (extra + BLOCK - 1) / BLOCK;
    uint64_t final = base + more;
    final += journal_blocks(final);
    if (final > (16ull << 40) / BLOCK)
        return dbx_error_set(err, 0, "image larger than 16 TiB");
    if (ftruncate(img_fd, (off_t)(final * BLOCK)) < 0)
        return dbx_error_set(err, errno, "grow '%s'", img);
    char *rs[] = {"resize2fs", (char *)img, NULL};
    if (run_tool("resize2fs", rs, false, err) < 0)
        return -1;
    char *jn[] = {"tune2fs", "-j", (char *)img, NULL};
    if (run_tool("tune2fs -j", jn, false, err) < 0)
        return -1;
    char *check[] = {"e2fsck", "-f", "-n", (char *)img, NULL};
    if (run_tool("e2fsck -n", check, false, err) < 0)
        return dbx_error_wrap(err, "final check");
    return 0;
}

static void unlink_freep(char **p) {
    if (*p) {
        unlink(*p);
        free(*p);
    }
}

static int dir_fsync(const char *path) {
    _cleanup_free_ char *copy = dbx_xstrdup(path);
    _cleanup_close_ int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd >= 0 ? fsync(fd) : -1;
}

int vm_disk_build_base(const char *tar_path, const char *out_path, uint64_t extra_bytes,
                       uint64_t *ret_size, dbx_error **err) {
    __attribute__((cleanup(unlink_freep))) char *tar = dbx_xasprintf("%s.tar.XXXXXX", out_path);
    _cleanup_close_ int tar_fd = mkostemp(tar, O_CLOEXEC);
    if (tar_fd < 0) {
        int e = errno;
        free(TAKE_PTR(tar));
        return dbx_error_set(err, e, "create temp file beside '%s'", out_path);
    }
    struct vm_tar_stats st = {0};
    if (vm_tar_normalize(tar_path, tar_fd, &st, err) < 0)
        return -1;

    __attribute__((cleanup(unlink_freep))) char *img = dbx_xasprintf("%s.img.XXXXXX", out_path);
    _cleanup_close_ int img_fd = mkostemp(img, O_CLOEXEC);
    if (img_fd < 0) {
        int e = errno;
        free(TAKE_PTR(img));
        return dbx_error_set(err, e, "create temp file beside '%s'", out_path);
    }
    if (make_fs(tar, img, img_fd, &st, extra_bytes, err) < 0)
        return dbx_error_wrap(err, "build image from '%s'", tar_path);
    struct stat sb;
    if (fchmod(img_fd, 0444) < 0 || fsync(img_fd) < 0 || fstat(img_fd, &sb) < 0)
        return dbx_error_set(err, errno, "finish '%s'", img);
    if (rename(img, out_path) < 0)
        return dbx_error_set(err, errno, "rename to '%s'", out_path);
    free(TAKE_PTR(img));
    dir_fsync(out_path);
    if (ret_size)
        *ret_size = (uint64_t)sb.st_size;
    return 0;
}

/* ---- overlays --------------------------------------------------------------------------- */

/* QEMU option values are comma-separated; qemu-img's -b value is a plain argument, but a ',' in
 * a backing path would still be parsed by -o, so refuse it rather than escape it. */
int vm_disk_create_overlay(const char *base_path, const char *overlay_path, dbx_error **err) {
    _cleanup_free_ char *base = realpath(base_path, NULL);
    if (!base)
        return dbx_error_set(err, errno, "base image '%s'", base_path);
    if (strchr(base, ','))
        return dbx_error_set(err, 0, "base image path '%s' contains a comma", base);
    __attribute__((cleanup(unlink_freep))) char *tmp =
        dbx_xasprintf("%s.tmp.%d", overlay_path, (int)getpid());
    char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, tmp, NULL};
    if (vm_run("qemu-img create", argv, NULL, NULL, NULL, NULL, err) < 0)
        return -1;
    _cleanup_close_ int fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fsync(fd) < 0)
        return dbx_error_set(err, errno, "fsync '%s'", tmp);
    if (rename(tmp, overlay_path) < 0)
        return dbx_error_set(err, errno, "rename to '%s'", overlay_path);
    free(TAKE_PTR(tmp));
    dir_fsync(overlay_path);
    return 0;
}

/* qemu-img check exit codes: 0 clean, 1 check failed to run, 2 corruption left, 3 only leaked
 * clusters left (harmless: wasted space), 63 format without checks. */
int vm_disk_check(const char *overlay_path, dbx_error **err) {
    char *argv[] = {"qemu-img",           "check", "-q", "-r", "all", "-f", "qcow2",
                    (char *)overlay_path, NULL};
    int status = 0;
    _cleanup_free_ char *errs = NULL, *out = NULL;
    if (vm_run("qemu-img check", argv, NULL, &out, &errs, &status, err) < 0)
        return -1;
    if (status == 0 || status == 3)
        return 0;
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

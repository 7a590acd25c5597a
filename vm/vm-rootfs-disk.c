/* vm/vm-rootfs-disk.c: writing a vm_rootfs out as a base disk.
 *
 * The tree goes to genext2fs as a normalized tar (parents before children, children sorted by
 * name so the same layers give the same image, the first name of a hard-linked inode as the
 * file and the others as hard links to it, numeric owners, no extensions it would misread).
 * What genext2fs cannot store is then set by one `debugfs -w -f SCRIPT` run on the finished
 * ext4: owners above 65535 (genext2fs keeps the low 16 bits), device numbers above 255:255
 * (it keeps the old 8:8 encoding), extended attributes, and the root directory's mode and
 * owner (always 0755 root:root: layer entries for the root itself are skipped).
 * debugfs commands take absolute paths inside the image, so nothing is resolved on the host. */
#include "vm-internal.h"

#include <archive.h>
#include <archive_entry.h>

/* debugfs 1.47.0 reads script lines into a BUFSIZ (8192) buffer and runs the rest of a longer
 * line as a command of its own (measured), so longer lines are refused. */
#define SCRIPT_LINE_MAX 8000u

struct line {
    char *buf;
    size_t len, cap;
};

struct emit {
    struct vm_rootfs *b;
    struct archive *out;
    FILE *script;
    const char *work; /* private temp dir: the tar, the script, long xattr values */
    unsigned n_values;
    bool have_script;
    struct vm_tar_stats st;
    struct line line;
    char path[VM_TAR_MAX_PATH + 2];
};

/* ---- debugfs script lines --------------------------------------------------------------- */

static void line_add(struct line *l, const char *s, size_t n) {
    if (l->len + n + 1 > l->cap) {
        l->cap = (l->len + n + 1) * 2;
        l->buf = dbx_xrealloc(l->buf, l->cap);
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

static void line_str(struct line *l, const char *s) {
    line_add(l, s, strlen(s));
}

/* debugfs's argument parser (lib/ss): inside double quotes everything is literal except `""`,
 * which stands for one `"`.  Control characters never get here (vm_tar_clean_path). */
static void line_quoted(struct line *l, const char *prefix, const char *s) {
    line_add(l, " \"", 2);
    line_str(l, prefix);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            line_add(l, "\"\"", 2);
        else
            line_add(l, p, 1);
    }
    line_add(l, "\"", 1);
}

/* ea_set runs its value argument through parse_c_string: \ooo octal escapes for binary. */
static void line_value(struct line *l, const unsigned char *v, size_t n) {
    line_add(l, " \"", 2);
    for (size_t i = 0; i < n; i++) {
        char esc[5];
        if (v[i] >= 0x20 && v[i] < 0x7f && v[i] != '"' && v[i] != '\\')
            line_add(l, (const char *)&v[i], 1);
        else
            line_add(l, esc, (size_t)snprintf(esc, sizeof(esc), "\\%03o", v[i]));
    }
    line_add(l, "\"", 1);
}

static int line_end(struct emit *em, const char *shown, dbx_error **err) {
    struct line *l = &em->line;
    if (l->len + 1 > SCRIPT_LINE_MAX)
        return dbx_error_set(err, 0, "'%s': path too long to fix up with debugfs", shown);
    line_add(l, "\n", 1);
    if (fwrite(l->buf, 1, l->len, em->script) != l->len)
        return dbx_error_set(err, errno, "write debugfs script");
    l->len = 0;
    em->have_script = true;
    return 0;
}

static int fix_field(struct emit *em, const char *path, const char *field, unsigned long long v,
                     const char *shown, dbx_error **err) {
    char num[64];
    line_str(&em->line, "set_inode_field");
    line_quoted(&em->line, "/", path);
    snprintf(num, sizeof(num), " %s %llu", field, v);
    line_str(&em->line, num);
    return line_end(em, shown, err);
}

static int fix_xattr(struct emit *em, const char *path, const struct vm_rootfs_xattr *x,
                     const char *shown, dbx_error **err) {
    line_str(&em->line, "ea_set");
    line_quoted(&em->line, "/", path);
    line_quoted(&em->line, "", x->name);
    line_value(&em->line, x->value, x->size);
    if (em->line.len + 1 <= SCRIPT_LINE_MAX) return line_end(em, shown, err);
    /* Too long to spell inline: from a file in our private work dir (ea_set -f FILE). */
    _cleanup_free_ char *vf = dbx_xasprintf("%s/value.%u", em->work, em->n_values++);
    _cleanup_close_ int fd = open(vf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int r = fd < 0 ? -errno : dbx_write_all(fd, x->value, x->size);
    if (r < 0) return dbx_error_set(err, -r, "write '%s'", vf);
    em->line.len = 0;
    line_str(&em->line, "ea_set -f");
    line_quoted(&em->line, "", vf);
    line_quoted(&em->line, "/", path);
    line_quoted(&em->line, "", x->name);
    return line_end(em, shown, err);
}

/* What genext2fs got wrong or could not store for this inode (path "" = the root, whose mode
 * and owner are always written: layers never change them, and genext2fs's root need not be
 * 0755 root:root). */
static int fix_inode(struct emit *em, const char *path, const struct vm_rootfs_inode *ino,
                     bool root, dbx_error **err) {
    _cleanup_free_ char *shown = vm_path_printable(path);
    if (root && fix_field(em, path, "mode", ino->mode, shown, err) < 0) return -1;
    if ((root || ino->uid > 65535) && fix_field(em, path, "uid", ino->uid, shown, err) < 0)
        return -1;
    if ((root || ino->gid > 65535) && fix_field(em, path, "gid", ino->gid, shown, err) < 0)
        return -1;
    if ((S_ISCHR(ino->mode) || S_ISBLK(ino->mode)) &&
        (ino->rdev_major > 255 || ino->rdev_minor > 255)) {
        /* ext4 keeps large device numbers in i_block[1] (new_encode_dev), i_block[0] = 0. */
        unsigned long long enc = (ino->rdev_minor & 0xff) | (ino->rdev_major << 8) |
                                 ((unsigned long long)(ino->rdev_minor & ~0xffu) << 12);
        if (fix_field(em, path, "block[0]", 0, shown, err) < 0 ||
            fix_field(em, path, "block[1]", enc, shown, err) < 0)
            return -1;
    }
    /* Inodes that tune2fs -I 256 grew have i_extra_isize 0, which leaves no room for in-inode
     * xattrs: 32 is what mke2fs gives new inodes (all extra fields of ext4 in 6.1). */
    if (ino->n_xattrs && fix_field(em, path, "extra_isize", 32, shown, err) < 0) return -1;
    for (uint32_t i = 0; i < ino->n_xattrs; i++)
        if (fix_xattr(em, path, &ino->xattrs[i], shown, err) < 0) return -1;
    return 0;
}

/* ---- the tar ---------------------------------------------------------------------------- */

static int copy_data(struct emit *em, const struct vm_rootfs_inode *ino, dbx_error **err) {
    char buf[65536];
    for (uint64_t off = 0; off < ino->size;) {
        size_t want = ino->size - off < sizeof(buf) ? (size_t)(ino->size - off) : sizeof(buf);
        ssize_t n = pread(em->b->spool_fd, buf, want, (off_t)(ino->data_off + off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return dbx_error_set(err, n < 0 ? errno : EIO, "read spool file");
        if (archive_write_data(em->out, buf, (size_t)n) != n)
            return dbx_error_set(err, 0, "write tar: %s", archive_error_string(em->out));
        off += (uint64_t)n;
    }
    return 0;
}

static void entry_freep(struct archive_entry **e) {
    if (*e) archive_entry_free(*e);
}

static int emit_entry(struct emit *em, struct vm_rootfs_inode *ino, dbx_error **err) {
    __attribute__((cleanup(entry_freep))) struct archive_entry *e = archive_entry_new();
    if (!e) dbx_oom_hook();
    archive_entry_set_pathname(e, em->path);
    em->st.entries++;
    if (ino->emitted == em->b->generation) {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, ino->first_path);
        archive_entry_set_size(e, 0);
        if (archive_write_header(em->out, e) != ARCHIVE_OK)
            return dbx_error_set(err, 0, "write tar: %s", archive_error_string(em->out));
        return 0;
    }
    ino->emitted = em->b->generation;
    if (ino->refs > 1) { /* only a second name needs the first one */
        free(ino->first_path);
        ino->first_path = dbx_xstrdup(em->path);
    }
    archive_entry_set_filetype(e, ino->mode & S_IFMT);
    archive_entry_set_perm(e, ino->mode & 07777);
    archive_entry_set_uid(e, ino->uid > 65535 ? 0 : ino->uid); /* fixed up by debugfs */
    archive_entry_set_gid(e, ino->gid > 65535 ? 0 : ino->gid);
    archive_entry_set_mtime(e, ino->mtime, 0);
    archive_entry_set_size(e, S_ISREG(ino->mode) ? (la_int64_t)ino->size : 0);
    if (S_ISLNK(ino->mode)) archive_entry_set_symlink(e, ino->symlink);
    if ((S_ISCHR(ino->mode) || S_ISBLK(ino->mode)) && ino->rdev_major < 256 &&
        ino->rdev_minor < 256) {
        archive_entry_set_rdevmajor(e, ino->rdev_major);
        archive_entry_set_rdevminor(e, ino->rdev_minor);
    }
    if (archive_write_header(em->out, e) != ARCHIVE_OK)
        return dbx_error_set(err, 0, "write tar: %s", archive_error_string(em->out));
    if (S_ISREG(ino->mode) && copy_data(em, ino, err) < 0) return -1;
    if (S_ISDIR(ino->mode)) em->st.dirs++;
    em->st.data_blocks += S_ISREG(ino->mode) ? (ino->size + VM_BLOCK - 1) / VM_BLOCK : 0;
    em->st.data_blocks += (S_ISLNK(ino->mode) && strlen(ino->symlink) >= 60) ? 1 : 0;
    em->st.data_blocks += ino->n_xattrs ? 1 : 0;
    return fix_inode(em, em->path, ino, false, err);
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(struct vm_rootfs_node *const *)a)->name,
                  (*(struct vm_rootfs_node *const *)b)->name);
}

/* em->path holds dir's path (plen bytes, "" for the root); emit its children depth first. */
static int emit_children(struct emit *em, struct vm_rootfs_node *dir, size_t plen,
                         dbx_error **err) {
    size_t n = 0;
    for (struct vm_rootfs_node *c = dir->child; c; c = c->next)
        n++;
    if (!n) return 0;
    _cleanup_free_ struct vm_rootfs_node **v = dbx_xcalloc(n, sizeof(*v));
    n = 0;
    for (struct vm_rootfs_node *c = dir->child; c; c = c->next)
        v[n++] = c;
    qsort(v, n, sizeof(*v), by_name);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]->name), at = plen ? plen + 1 : 0;
        if (at + len > VM_TAR_MAX_PATH) /* cannot happen: every path came from an entry */
            return dbx_error_set(err, 0, "path longer than %d bytes", VM_TAR_MAX_PATH);
        if (plen) em->path[plen] = '/';
        memcpy(em->path + at, v[i]->name, len + 1);
        if (emit_entry(em, v[i]->ino, err) < 0) return -1;
        if (S_ISDIR(v[i]->ino->mode) && emit_children(em, v[i], at + len, err) < 0) return -1;
        em->path[plen] = '\0';
    }
    return 0;
}

static void archive_write_freep(struct archive **a) {
    if (*a) archive_write_free(*a);
}

static int emit_all(struct emit *em, int tar_fd, dbx_error **err) {
    __attribute__((cleanup(archive_write_freep))) struct archive *out = archive_write_new();
    if (!out) dbx_oom_hook();
    /* Restricted pax: plain ustar headers unless a path or size needs an extension (genext2fs
     * reads those); hdrcharset=BINARY keeps names as bytes whatever the locale. */
    if (archive_write_set_format_pax_restricted(out) != ARCHIVE_OK ||
        archive_write_set_format_option(out, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
        archive_write_add_filter_none(out) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(out, 1) != ARCHIVE_OK ||
        archive_write_open_fd(out, tar_fd) != ARCHIVE_OK)
        return dbx_error_set(err, 0, "write tar: %s", archive_error_string(out));
    em->out = out;
    em->path[0] = '\0';
    /* tune2fs 1.47.0 cannot set ext_attr ("not supported"); without it ea_set does nothing. */
    if (fputs("feature ext_attr\n", em->script) < 0)
        return dbx_error_set(err, errno, "write debugfs script");
    if (fix_inode(em, "", em->b->root->ino, true, err) < 0) return -1;
    if (emit_children(em, em->b->root, 0, err) < 0) return -1;
    if (archive_write_close(out) != ARCHIVE_OK)
        return dbx_error_set(err, 0, "write tar: %s", archive_error_string(out));
    if (fflush(em->script) != 0) return dbx_error_set(err, errno, "write debugfs script");
    return 0;
}

/* ---- the disk --------------------------------------------------------------------------- */

static void rm_rf_freep(char **p) {
    if (*p) {
        dbx_error *e = NULL;
        vm_rm_rf(*p, &e);
        dbx_error_free(&e);
        free(*p);
    }
}

static int build_image(const char *tar, const char *script, const struct vm_tar_stats *st,
                       const char *out_path, uint64_t extra, uint64_t *ret_size, dbx_error **err) {
    _cleanup_unlink_free_ char *img = dbx_xasprintf("%s.img.XXXXXX", out_path);
    _cleanup_close_ int img_fd = mkostemp(img, O_CLOEXEC);
    if (img_fd < 0) {
        int e = errno;
        free(TAKE_PTR(img));
        return dbx_error_set(err, e, "create temp file beside '%s'", out_path);
    }
    if (vm_disk_make_fs(tar, img, img_fd, st, script, extra, err) < 0) return -1;
    struct stat sb;
    if (fchmod(img_fd, 0444) < 0 || fsync(img_fd) < 0 || fstat(img_fd, &sb) < 0)
        return dbx_error_set(err, errno, "finish '%s'", img);
    if (rename(img, out_path) < 0) return dbx_error_set(err, errno, "rename to '%s'", out_path);
    free(TAKE_PTR(img));
    vm_dir_fsync(out_path);
    if (ret_size) *ret_size = (uint64_t)sb.st_size;
    return 0;
}

int vm_rootfs_write_disk(struct vm_rootfs *b, const char *out_path, uint64_t extra_bytes,
                         uint64_t *ret_size, dbx_error **err) {
    if (b->broken) return dbx_error_set(err, 0, "a layer failed to apply");
    __attribute__((cleanup(rm_rf_freep))) char *work =
        dbx_xasprintf("%s/.rootfs.XXXXXX", b->scratch_dir);
    if (!mkdtemp(work)) {
        int e = errno;
        free(TAKE_PTR(work));
        return dbx_error_set(err, e, "create temp dir in '%s'", b->scratch_dir);
    }
    _cleanup_free_ char *tar = dbx_xasprintf("%s/rootfs.tar", work);
    _cleanup_free_ char *script = dbx_xasprintf("%s/fixup.debugfs", work);
    _cleanup_close_ int tar_fd = open(tar, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (tar_fd < 0) return dbx_error_set(err, errno, "create '%s'", tar);
    _cleanup_fclose_ FILE *sf = fopen(script, "wxe");
    if (!sf) return dbx_error_set(err, errno, "create '%s'", script);
    b->generation++;
    struct emit em = {.b = b, .script = sf, .work = work};
    int r = emit_all(&em, tar_fd, err);
    free(em.line.buf);
    if (r < 0) return r;
    return build_image(tar, em.have_script ? script : NULL, &em.st, out_path, extra_bytes, ret_size,
                       err);
}

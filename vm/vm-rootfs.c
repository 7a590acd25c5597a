/* vm/vm-rootfs.c: a root filesystem assembled in memory from tar layers (OCI layer semantics).
 *
 * Nothing from a layer touches the host filesystem except file data, appended to one unlinked
 * spool file: a hostile layer can therefore not make us write outside the image, whatever its
 * paths, symlinks or hard links say.  The tree is a set of nodes (names) pointing to inodes
 * (hard links share one), found by a hash of (parent, name); lookups never follow symlinks, and
 * an entry below a symlink is refused rather than resolved.
 *
 * Whiteouts: each node remembers the last layer that added it or something below it, so an
 * opaque marker (`.wh..wh..opq`) removes exactly what lower layers put in its directory,
 * whether it comes before or after the same layer's own entries there. */
#include "vm-internal.h"

#include <archive.h>
#include <archive_entry.h>

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

static const char *const xattr_namespaces[] = {"user.", "security.", "trusted."};

#define printable vm_path_printable

/* ---- memory accounting ------------------------------------------------------------------ */

static int meta_charge(struct vm_rootfs *b, uint64_t n, dbx_error **err) {
    if (n > b->max_meta - b->meta_bytes)
        return dbx_error_set(err, 0, "more than %llu bytes of metadata",
                             (unsigned long long)b->max_meta);
    b->meta_bytes += n;
    return 0;
}

static uint64_t inode_meta(const struct vm_rootfs_inode *ino) {
    uint64_t n = sizeof(*ino) + (ino->symlink ? strlen(ino->symlink) + 1 : 0);
    for (uint32_t i = 0; i < ino->n_xattrs; i++)
        n += sizeof(ino->xattrs[i]) + strlen(ino->xattrs[i].name) + 1 + ino->xattrs[i].size;
    return n;
}

static void xattrs_free(struct vm_rootfs_xattr *x, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        free(x[i].name);
        free(x[i].value);
    }
    free(x);
}

static void inode_unref(struct vm_rootfs *b, struct vm_rootfs_inode *ino) {
    if (!ino || --ino->refs > 0) return;
    b->meta_bytes -= inode_meta(ino);
    free(ino->symlink);
    xattrs_free(ino->xattrs, ino->n_xattrs);
    free(ino->first_path);
    free(ino);
}

/* ---- the (parent, name) hash ------------------------------------------------------------ */

static size_t name_hash(const struct vm_rootfs_node *parent, const char *name, size_t len) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)parent;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 1099511628211ull;
    h ^= h >> 31;
    return (size_t)h;
}

static struct vm_rootfs_node *lookup(const struct vm_rootfs *b, const struct vm_rootfs_node *dir,
                                     const char *name, size_t len) {
    if (!b->n_buckets) return NULL;
    struct vm_rootfs_node *n = b->buckets[name_hash(dir, name, len) & (b->n_buckets - 1)];
    for (; n; n = n->hnext)
        if (n->parent == dir && strncmp(n->name, name, len) == 0 && n->name[len] == '\0') return n;
    return NULL;
}

static void hash_grow(struct vm_rootfs *b) {
    size_t ncap = b->n_buckets ? b->n_buckets * 2 : 4096;
    struct vm_rootfs_node **nb = dbx_xcalloc(ncap, sizeof(*nb));
    for (size_t i = 0; i < b->n_buckets; i++)
        for (struct vm_rootfs_node *n = b->buckets[i], *next; n; n = next) {
            next = n->hnext;
            size_t j = name_hash(n->parent, n->name, strlen(n->name)) & (ncap - 1);
            n->hnext = nb[j];
            nb[j] = n;
        }
    free(b->buckets);
    b->buckets = nb;
    b->n_buckets = ncap;
}

static struct vm_rootfs_node *node_new(struct vm_rootfs *b, struct vm_rootfs_node *dir,
                                       const char *name, size_t len, dbx_error **err) {
    if (b->n_nodes >= b->max_nodes) {
        dbx_error_set(err, 0, "more than %llu entries", (unsigned long long)b->max_nodes);
        return NULL;
    }
    if (meta_charge(b, sizeof(struct vm_rootfs_node) + len + 1, err) < 0) return NULL;
    if (b->n_nodes + 1 > b->n_buckets) hash_grow(b);
    struct vm_rootfs_node *n = dbx_xcalloc(1, sizeof(*n) + len + 1);
    memcpy(n->name, name, len);
    n->parent = dir;
    n->layer = b->layer;
    size_t i = name_hash(dir, name, len) & (b->n_buckets - 1);
    n->hnext = b->buckets[i];
    b->buckets[i] = n;
    n->next = dir->child;
    if (dir->child) dir->child->prev = n;
    dir->child = n;
    b->n_nodes++;
    return n;
}

/* Remove a node and everything below it (children first; depth <= VM_TAR_MAX_PATH / 2). */
static void node_remove(struct vm_rootfs *b, struct vm_rootfs_node *n) {
    while (n->child)
        node_remove(b, n->child);
    struct vm_rootfs_node **pp =
        &b->buckets[name_hash(n->parent, n->name, strlen(n->name)) & (b->n_buckets - 1)];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    if (n->prev)
        n->prev->next = n->next;
    else
        n->parent->child = n->next;
    if (n->next) n->next->prev = n->prev;
    inode_unref(b, n->ino);
    b->meta_bytes -= sizeof(*n) + strlen(n->name) + 1;
    b->n_nodes--;
    free(n);
}

/* Opaque directory: drop what lower layers put below `dir`, keep what layer `layer` added. */
static void prune_lower(struct vm_rootfs *b, struct vm_rootfs_node *dir, uint32_t layer) {
    for (struct vm_rootfs_node *c = dir->child, *next; c; c = next) {
        next = c->next;
        if (c->layer < layer)
            node_remove(b, c);
        else if (S_ISDIR(c->ino->mode))
            prune_lower(b, c, layer);
    }
}

/* ---- creating, opening, freeing --------------------------------------------------------- */

static struct vm_rootfs_inode *inode_new(uint32_t mode) {
    struct vm_rootfs_inode *ino = dbx_xcalloc(1, sizeof(*ino));
    ino->refs = 1;
    ino->mode = mode;
    return ino;
}

static int open_spool(const char *dir, dbx_error **err) {
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != ENOENT))
        return fd >= 0 ? fd : dbx_error_set(err, errno, "create spool file in '%s'", dir);
    _cleanup_free_ char *tmp = dbx_xasprintf("%s/.spool.XXXXXX", dir);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) return dbx_error_set(err, errno, "create spool file in '%s'", dir);
    unlink(tmp);
    return fd;
}

int vm_rootfs_new(const char *scratch_dir, struct vm_rootfs **ret, dbx_error **err) {
    int fd = open_spool(scratch_dir, err);
    if (fd < 0) return fd;
    struct vm_rootfs *b = dbx_xcalloc(1, sizeof(*b));
    b->spool_fd = fd;
    b->scratch_dir = dbx_xstrdup(scratch_dir);
    b->root = dbx_xcalloc(1, sizeof(*b->root) + 1);
    b->root->ino = inode_new(S_IFDIR | 0755);
    b->meta_bytes = sizeof(*b->root->ino);
    b->max_nodes = VM_TAR_MAX_ENTRIES;
    b->max_headers = VM_ROOTFS_MAX_HEADERS;
    b->max_bytes = VM_TAR_MAX_BYTES;
    b->max_meta = VM_ROOTFS_MAX_META;
    *ret = b;
    return 0;
}

void vm_rootfs_limit_bytes(struct vm_rootfs *b, uint64_t max_bytes, const char *why) {
    if (max_bytes >= b->max_bytes) return;
    b->max_bytes = max_bytes;
    free(b->bytes_why);
    b->bytes_why = why ? dbx_xstrdup(why) : NULL;
}

bool vm_rootfs_over_limit(const struct vm_rootfs *b) {
    return b && b->over_limit;
}

void vm_rootfs_free(struct vm_rootfs *b) {
    if (!b) return;
    free(b->bytes_why);
    while (b->root->child)
        node_remove(b, b->root->child);
    inode_unref(b, b->root->ino);
    free(b->root);
    free(b->buckets);
    free(b->scratch_dir);
    if (b->spool_fd >= 0) close(b->spool_fd);
    free(b);
}

/* ---- one entry -------------------------------------------------------------------------- */

struct entry {
    struct vm_rootfs *b;
    struct archive *a;
    struct archive_entry *e;
    char *path;  /* cleaned */
    char *shown; /* for messages */
    uint32_t mode;
    const char *link; /* hard link target (raw) */
    int64_t size;
};

/* Walk to the directory holding `path`'s last component.  A component that is a symlink or a
 * non-directory is refused (never write through a symlink).  create: add missing directories
 * (root-owned 0755) and mark the walked ones as touched by this layer; otherwise *ret is NULL
 * when a component is missing. */
static int walk_parent(struct vm_rootfs *b, const char *path, const char *shown, bool create,
                       struct vm_rootfs_node **ret, const char **ret_base, dbx_error **err) {
    struct vm_rootfs_node *dir = b->root;
    const char *p = path;
    for (const char *slash; (slash = strchr(p, '/')); p = slash + 1) {
        size_t len = (size_t)(slash - p);
        struct vm_rootfs_node *n = lookup(b, dir, p, len);
        if (n && !S_ISDIR(n->ino->mode)) {
            _cleanup_free_ char *prefix = dbx_xstrndup(path, (size_t)(slash - path));
            _cleanup_free_ char *ps = printable(prefix);
            if (S_ISLNK(n->ino->mode))
                return dbx_error_set(err, 0, "'%s': parent '%s' is a symlink", shown, ps);
            return dbx_error_set(err, 0, "'%s' is used as a directory but is not one", ps);
        }
        if (!n && !create) {
            *ret = NULL;
            return 0;
        }
        if (!n) {
            if (meta_charge(b, sizeof(struct vm_rootfs_inode), err) < 0) return -1;
            n = node_new(b, dir, p, len, err);
            if (!n) {
                b->meta_bytes -= sizeof(struct vm_rootfs_inode);
                return -1;
            }
            n->ino = inode_new(S_IFDIR | 0755);
        }
        if (create) n->layer = b->layer;
        dir = n;
    }
    *ret = dir;
    *ret_base = p;
    return 0;
}

static int whiteout(struct entry *en, dbx_error **err) {
    struct vm_rootfs *b = en->b;
    struct vm_rootfs_node *dir = NULL;
    const char *base = NULL;
    if (walk_parent(b, en->path, en->shown, false, &dir, &base, err) < 0) return -1;
    if (!dir) base = strrchr(en->path, '/') ? strrchr(en->path, '/') + 1 : en->path;
    if (strcmp(base, WH_OPAQUE) == 0) {
        if (walk_parent(b, en->path, en->shown, true, &dir, &base, err) < 0) return -1;
        prune_lower(b, dir, b->layer);
        return 0;
    }
    if (dbx_str_has_prefix(base, WH_PREFIX WH_PREFIX))
        return 0; /* other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not part of the tree */
    const char *name = base + strlen(WH_PREFIX);
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return dbx_error_set(err, 0, "bad whiteout '%s'", en->shown);
    if (!dir) return 0; /* its directory does not exist: nothing to hide */
    struct vm_rootfs_node *victim = lookup(b, dir, name, strlen(name));
    if (!victim) return 0;
    /* Whiteouts apply to lower layers only: what this layer added stays. */
    if (victim->layer < b->layer)
        node_remove(b, victim);
    else if (S_ISDIR(victim->ino->mode))
        prune_lower(b, victim, b->layer);
    return 0;
}

static int xattr_keep(struct entry *en, struct vm_rootfs_inode *ino, const char *name,
                      const void *value, size_t size, dbx_error **err) {
    const char *suffix = NULL;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(xattr_namespaces) && !suffix; i++)
        if (dbx_str_has_prefix(name, xattr_namespaces[i]))
            suffix = name + strlen(xattr_namespaces[i]);
    if (!suffix) return 0; /* system.* (ACLs), foreign namespaces: ext4 has no place for them */
    if (!*suffix || strlen(suffix) > 255)
        return dbx_error_set(err, 0, "'%s': bad extended attribute name", en->shown);
    /* libarchive's pax writer stores each xattr twice (LIBARCHIVE.xattr and SCHILY.xattr) and
     * its reader returns both: the later one wins. */
    struct vm_rootfs_xattr *x = NULL;
    for (uint32_t i = 0; i < ino->n_xattrs && !x; i++)
        if (strcmp(ino->xattrs[i].name, name) == 0) x = &ino->xattrs[i];
    if (!x && ino->n_xattrs >= VM_ROOTFS_MAX_XATTRS)
        return dbx_error_set(err, 0, "'%s': more than %u extended attributes", en->shown,
                             VM_ROOTFS_MAX_XATTRS);
    if (meta_charge(en->b, sizeof(*x) + strlen(name) + 1 + size, err) < 0) return -1;
    if (x) {
        en->b->meta_bytes -= sizeof(*x) + strlen(name) + 1 + x->size;
        free(x->value);
    } else {
        ino->xattrs = dbx_xrealloc(ino->xattrs, (ino->n_xattrs + 1) * sizeof(*ino->xattrs));
        x = &ino->xattrs[ino->n_xattrs++];
        x->name = dbx_xstrdup(name);
    }
    x->value = dbx_xmalloc(size ? size : 1);
    memcpy(x->value, value, size);
    x->size = size;
    return 0;
}

static int read_xattrs(struct entry *en, struct vm_rootfs_inode *ino, dbx_error **err) {
    const char *name = NULL;
    const void *value = NULL;
    size_t size = 0, used = 0;
    archive_entry_xattr_reset(en->e);
    while (archive_entry_xattr_next(en->e, &name, &value, &size) == ARCHIVE_OK)
        if (name && xattr_keep(en, ino, name, value, size, err) < 0) return -1;
    /* ext4's accounting: a 16-byte entry header, the name suffix and the value, each rounded
     * up to 4 bytes; checked here so that debugfs never fails half-way. */
    for (uint32_t i = 0; i < ino->n_xattrs; i++)
        used += 16 + ((strlen(strchr(ino->xattrs[i].name, '.') + 1) + 3) & ~3ul) +
                ((ino->xattrs[i].size + 3) & ~3ul);
    if (used > VM_ROOTFS_MAX_XATTR_BYTES)
        return dbx_error_set(err, 0,
                             "'%s': extended attributes larger than ext4 can store (%zu bytes, "
                             "at most %u)",
                             en->shown, used, VM_ROOTFS_MAX_XATTR_BYTES);
    return 0;
}

static int spool_data(struct entry *en, struct vm_rootfs_inode *ino, dbx_error **err) {
    struct vm_rootfs *b = en->b;
    char buf[65536];
    uint64_t done = 0;
    ino->data_off = b->spool_size;
    for (;;) {
        la_ssize_t r = archive_read_data(en->a, buf, sizeof(buf));
        if (r < 0) return dbx_error_set(err, 0, "'%s': %s", en->shown, archive_error_string(en->a));
        if (r == 0) break;
        done += (uint64_t)r;
        if (done > (uint64_t)en->size)
            return dbx_error_set(err, 0, "'%s': data longer than its header says", en->shown);
        int w = dbx_write_all(b->spool_fd, buf, (size_t)r);
        if (w < 0) return dbx_error_set(err, -w, "write spool file in '%s'", b->scratch_dir);
        b->spool_size += (uint64_t)r;
    }
    if (done != (uint64_t)en->size)
        return dbx_error_set(err, 0, "'%s': data shorter than its header says", en->shown);
    ino->size = done;
    return 0;
}

/* The new inode for a non-link entry, metadata and data read. */
static int make_inode(struct entry *en, struct vm_rootfs_inode **ret, dbx_error **err) {
    struct archive_entry *e = en->e;
    int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
    if (uid < 0 || gid < 0 || (uint64_t)uid > VM_ROOTFS_MAX_ID || (uint64_t)gid > VM_ROOTFS_MAX_ID)
        return dbx_error_set(err, 0, "'%s': owner %lld:%lld out of range", en->shown,
                             (long long)uid, (long long)gid);
    uint32_t major = 0, minor = 0;
    if (S_ISCHR(en->mode) || S_ISBLK(en->mode)) {
        major = (uint32_t)archive_entry_rdevmajor(e);
        minor = (uint32_t)archive_entry_rdevminor(e);
        if (major > 4095 || minor > 0xfffff) /* Linux's 12:20-bit dev_t */
            return dbx_error_set(err, 0, "'%s': bad device number", en->shown);
    }
    const char *target = S_ISLNK(en->mode) ? archive_entry_symlink(e) : NULL;
    if (S_ISLNK(en->mode) &&
        (!target || !*target || strlen(target) > VM_TAR_MAX_PATH || strchr(target, '\n')))
        return dbx_error_set(err, 0, "symlink '%s': bad target", en->shown);
    if (meta_charge(en->b, sizeof(struct vm_rootfs_inode) + (target ? strlen(target) + 1 : 0),
                    err) < 0)
        return -1;
    struct vm_rootfs_inode *ino = inode_new(en->mode);
    ino->uid = (uint32_t)uid;
    ino->gid = (uint32_t)gid;
    /* ext2 inodes as genext2fs writes them hold 32-bit signed seconds */
    int64_t mtime = archive_entry_mtime(e);
    ino->mtime = mtime < 0 ? 0 : mtime > INT32_MAX ? INT32_MAX : mtime;
    ino->rdev_major = major;
    ino->rdev_minor = minor;
    ino->symlink = target ? dbx_xstrdup(target) : NULL;
    if (read_xattrs(en, ino, err) < 0 || (S_ISREG(en->mode) && spool_data(en, ino, err) < 0)) {
        inode_unref(en->b, ino);
        return -1;
    }
    *ret = ino;
    return 0;
}

/* A directory over a directory: merge, taking the newer metadata. */
static int merge_dir(struct entry *en, struct vm_rootfs_node *dir, dbx_error **err) {
    struct vm_rootfs_inode *ino = NULL;
    if (make_inode(en, &ino, err) < 0) return -1;
    struct vm_rootfs_inode *old = dir->ino;
    dir->ino = ino;
    dir->layer = en->b->layer;
    inode_unref(en->b, old);
    return 0;
}

static int hard_link_target(struct entry *en, struct vm_rootfs_inode **ret, dbx_error **err) {
    _cleanup_free_ char *target = NULL;
    if (vm_tar_clean_path(en->link, &target, err) < 0)
        return dbx_error_wrap(err, "hard link '%s'", en->shown);
    _cleanup_free_ char *ts = printable(target);
    struct vm_rootfs_node *dir = NULL, *t = NULL;
    const char *base = NULL;
    if (*target && walk_parent(en->b, target, ts, false, &dir, &base, err) < 0)
        return dbx_error_wrap(err, "hard link '%s'", en->shown);
    if (dir) t = lookup(en->b, dir, base, strlen(base));
    if (!t)
        return dbx_error_set(err, 0, "hard link '%s' to '%s': not an earlier file in the archive",
                             en->shown, ts);
    if (S_ISDIR(t->ino->mode))
        return dbx_error_set(err, 0, "hard link '%s' to directory '%s'", en->shown, ts);
    t->ino->refs++;
    *ret = t->ino;
    return 0;
}

static int apply_entry(struct entry *en, bool whiteouts, dbx_error **err) {
    struct vm_rootfs *b = en->b;
    const char *raw = archive_entry_pathname(en->e);
    if (!raw) return dbx_error_set(err, 0, "entry without a usable path name");
    if (vm_tar_clean_path(raw, &en->path, err) < 0) return -1;
    /* An entry that resolves to the root itself ("./", "/", "a/..") is skipped, as containerd
     * does: the root stays 0755 root:root whatever a layer or tarball says (a 0700 "./" from
     * `tar -C "$(mktemp -d)" .` would lock every user but root out of "/"). */
    if (!*en->path) return 0;
    en->shown = printable(en->path);
    const char *slash = strrchr(en->path, '/');
    const char *base = slash ? slash + 1 : en->path;
    if (whiteouts && dbx_str_has_prefix(base, WH_PREFIX)) return whiteout(en, err);
    en->link = archive_entry_hardlink(en->e);
    mode_t type = archive_entry_filetype(en->e);
    switch (en->link ? AE_IFREG : type) {
    case AE_IFREG:
    case AE_IFDIR:
    case AE_IFLNK:
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
        break;
    default:
        return dbx_error_set(err, 0, "'%s': unsupported entry type 0%o", en->shown, (unsigned)type);
    }
    en->mode = (uint32_t)(type | (archive_entry_perm(en->e) & 07777));

    struct vm_rootfs_node *dir = NULL;
    if (walk_parent(b, en->path, en->shown, true, &dir, &base, err) < 0) return -1;
    struct vm_rootfs_node *old = lookup(b, dir, base, strlen(base));
    if (old && !en->link && S_ISDIR(en->mode) && S_ISDIR(old->ino->mode))
        return merge_dir(en, old, err);
    struct vm_rootfs_inode *ino = NULL;
    if ((en->link ? hard_link_target(en, &ino, err) : make_inode(en, &ino, err)) < 0) return -1;
    if (old) node_remove(b, old);
    struct vm_rootfs_node *n = node_new(b, dir, base, strlen(base), err);
    if (!n) {
        inode_unref(b, ino);
        return -1;
    }
    n->ino = ino;
    return 0;
}

/* ---- one layer -------------------------------------------------------------------------- */

static void archive_read_freep(struct archive **a) {
    if (*a) archive_read_free(*a);
}

static int next_entry(struct vm_rootfs *b, struct archive *a, bool whiteouts, dbx_error **err) {
    struct archive_entry *e = NULL;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) return 0;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        return dbx_error_set(err, 0, "%s", archive_error_string(a));
    if (++b->headers > b->max_headers)
        return dbx_error_set(err, 0, "more than %llu entries in all layers",
                             (unsigned long long)b->max_headers);
    /* Counted before the data is read or skipped: libarchive decompresses skipped data too. */
    int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    if (size < 0 || (uint64_t)size > b->max_bytes - b->in_bytes) {
        b->over_limit = size >= 0 && b->bytes_why;
        return dbx_error_set(err, 0, "more than %llu bytes of file data in all layers%s%s%s",
                             (unsigned long long)b->max_bytes, b->bytes_why ? " (" : "",
                             b->bytes_why ? b->bytes_why : "", b->bytes_why ? ")" : "");
    }
    b->in_bytes += (uint64_t)size;
    struct entry en = {.b = b, .a = a, .e = e, .size = size};
    r = apply_entry(&en, whiteouts, err);
    free(en.path);
    free(en.shown);
    return r < 0 ? r : 1;
}

int vm_rootfs_add_layer(struct vm_rootfs *b, int fd, const char *label, bool whiteouts,
                        dbx_error **err) {
    if (b->broken) return dbx_error_set(err, 0, "layer '%s': an earlier layer failed", label);
    if (b->layer >= VM_ROOTFS_MAX_LAYERS)
        return dbx_error_set(err, 0, "layer '%s': more than %u layers", label,
                             VM_ROOTFS_MAX_LAYERS);
    b->layer++;
    b->broken = true;
    __attribute__((cleanup(archive_read_freep))) struct archive *a = archive_read_new();
    if (!a) dbx_oom_hook();
    /* Only the filters an image layer can use: no external programs (lrzip, lzop, ...). */
    if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
        archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
        archive_read_support_filter_xz(a) != ARCHIVE_OK ||
        archive_read_support_filter_bzip2(a) != ARCHIVE_OK ||
        archive_read_support_format_tar(a) != ARCHIVE_OK)
        return dbx_error_set(err, 0, "layer '%s': %s", label, archive_error_string(a));
    if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK)
        return dbx_error_set(err, 0, "layer '%s': %s", label, archive_error_string(a));
    int r;
    while ((r = next_entry(b, a, whiteouts, err)) > 0)
        ;
    if (r < 0) return dbx_error_wrap(err, "layer '%s'", label);
    b->broken = false;
    return 0;
}

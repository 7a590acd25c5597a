/* vm/vm-internal.h: helpers shared by the vm/ files (and their unit tests); not part of the
 * public contract in vm.h. */
#pragma once

#include "vm.h"

#include <sys/stat.h>

/* ---- running helper programs ------------------------------------------------------------ */

/* Run argv[0] (looked up in PATH=/usr/sbin:/usr/bin:/sbin:/bin) with argv, in directory `cwd`
 * (NULL = ours), stdin from /dev/null, every other fd closed, an environment of only PATH,
 * LC_ALL=C and the caller's proxy variables (apt needs those).  stdout is captured into
 * *ret_stdout (may be NULL: discarded) up to 16 MiB; stderr is kept for the error message.
 * `label` names the command in errors (NULL = argv[0]).  *ret_stderr (may be NULL) gets the
 * last 8 KiB of stderr.
 * When ret_status is NULL a non-zero exit is an error "LABEL: LAST STDERR LINE" (apt's last
 * "E: " line when there is one); otherwise the exit status is stored there and only failures
 * to run (exec, signal) are errors.  Returns 0 or a negative errno with *err set. */
int vm_run(const char *label, char *const argv[], const char *cwd, char **ret_stdout,
           char **ret_stderr, int *ret_status, dbx_error **err);

/* The uid the host's "nobody" has, looked up before fork (65534 when unknown). */
uid_t vm_nobody_uid(void);

/* Remove a file tree without following symlinks (like rm -rf); missing is fine. */
int vm_rm_rf(const char *path, dbx_error **err);

/* ---- root filesystems from tar layers (vm-rootfs.c, vm-rootfs-disk.c) ------------------- */

/* Caps on what layers may make us do; each is checked before the work it bounds.  They are far
 * above real images (a full Debian is ~15k entries, ~700 MB; Docker allows 127 layers) and far
 * below what would exhaust the host: */
#define VM_BLOCK 4096u                   /* the base disk's filesystem block size */
#define VM_TAR_MAX_ENTRIES 1000000ull    /* names in the tree at any time, implicit parents too */
#define VM_ROOTFS_MAX_HEADERS 4000000ull /* tar headers read, across all layers */
#define VM_TAR_MAX_PATH 4096             /* bytes in an entry path (PATH_MAX) */
/* Uncompressed entry bytes (as the headers declare, counted before the data is read or skipped)
 * across all layers: bounds decompression bombs and the spool file.  libarchive itself caps
 * each pax/GNU extension header at 1 MiB, so the bytes between entries are bounded by the
 * header count. */
#define VM_TAR_MAX_BYTES (64ull << 30)
#define VM_ROOTFS_MAX_META (512ull << 20) /* in-memory metadata: nodes, names, targets, xattrs */
#define VM_ROOTFS_MAX_LAYERS 256u
/* Extended attributes of one inode, as ext4 counts them (16-byte entry header, name suffix and
 * value each rounded to 4 bytes): what fits in one 4 KiB xattr block plus the in-inode space. */
#define VM_ROOTFS_MAX_XATTR_BYTES 4000u
#define VM_ROOTFS_MAX_XATTRS 64u
/* chown(2) takes (uid_t)-1 as "unchanged", so no file can be owned by it. */
#define VM_ROOTFS_MAX_ID 4294967294ull

/* Check a tar entry or hard link target path and return its normalized form in *ret (no
 * leading "./" or "/", no empty or "." components, no trailing slash; "" for the root).
 * Names resolve under the root (containerd's and Docker's rule): leading '/' are dropped and
 * ".." removes the component before it ("/a/../b" -> "b"; "/" -> "", the root itself).
 * Refuses a ".." that would leave the root, over-long paths and control bytes other than
 * what file names may hold (NUL cannot occur in a C string; newline and other control bytes
 * are refused because the image tools use line-oriented formats). */
int vm_tar_clean_path(const char *path, char **ret, dbx_error **err);

/* A path shortened to 200 bytes and made safe to print (caller frees). */
char *vm_path_printable(const char *s);

struct vm_tar_stats {
    uint64_t entries;
    uint64_t dirs;
    uint64_t data_blocks; /* 4 KiB blocks the regular files, long symlinks and xattrs need */
};

struct vm_rootfs_xattr {
    char *name;
    unsigned char *value;
    size_t size;
};

/* One file system object; several names (hard links) may share it. */
struct vm_rootfs_inode {
    uint32_t refs; /* names pointing here */
    uint32_t mode; /* S_IF* | permission bits */
    uint32_t uid, gid;
    int64_t mtime;
    uint32_t rdev_major, rdev_minor;
    uint64_t data_off, size; /* regular files: where the data is in the spool */
    char *symlink;
    struct vm_rootfs_xattr *xattrs;
    uint32_t n_xattrs;
    uint32_t emitted; /* write generation that emitted it (hard links refer to first_path) */
    char *first_path;
};

struct vm_rootfs_node {
    struct vm_rootfs_node *parent;
    struct vm_rootfs_node *hnext;               /* hash chain of (parent, name) */
    struct vm_rootfs_node *child, *next, *prev; /* children of a directory, siblings */
    struct vm_rootfs_inode *ino;
    uint32_t layer; /* last layer that added this node or something below it */
    char name[];
};

struct vm_rootfs {
    char *scratch_dir;
    int spool_fd;
    uint64_t spool_size;
    struct vm_rootfs_node *root;
    char *bytes_why; /* what set max_bytes below VM_TAR_MAX_BYTES (for the message), or NULL */
    bool over_limit; /* a layer was refused for the limit vm_rootfs_limit_bytes set */
    struct vm_rootfs_node **buckets;
    size_t n_buckets, n_nodes;
    uint32_t layer;
    uint32_t generation;
    uint64_t headers, in_bytes, meta_bytes;
    /* The caps (VM_TAR_MAX_ENTRIES, VM_ROOTFS_MAX_HEADERS, VM_TAR_MAX_BYTES,
     * VM_ROOTFS_MAX_META); fields so that tests can lower them. */
    uint64_t max_nodes, max_headers, max_bytes, max_meta;
    bool broken; /* a layer failed half-way: the tree is unspecified */
};

/* Build the ext4 image file `img` (already created, open as img_fd) from the normalized tar
 * `tar` whose content `st` describes, with `extra` bytes of free space; `script` (NULL = none)
 * is a debugfs script run once the inodes are 256 bytes (xattrs, 32-bit owners). */
int vm_disk_make_fs(const char *tar, const char *img, int img_fd, const struct vm_tar_stats *st,
                    const char *script, uint64_t extra, dbx_error **err);
/* fsync the directory holding `path` (best effort). */
int vm_dir_fsync(const char *path);

/* ---- initramfs (vm-kernel.c) ------------------------------------------------------------ */

struct vm_initramfs_module {
    const char *name; /* file name under /lib/modules, e.g. "virtio_ring.ko" */
    const char *path; /* host file to copy */
};

/* Write the uncompressed newc initramfs to out_fd: directories /dev /proc /sys /newroot /lib
 * /lib/modules, /dev/console (char 5,1), /init (0755, from init_path), /lib/modules/NAME for
 * each module and /modules.order listing them in the given order.  Timestamps are 0 so the
 * same inputs give the same bytes. */
int vm_initramfs_write(int out_fd, const char *init_path, const struct vm_initramfs_module *mods,
                       size_t n_mods, dbx_error **err);
/* The same with the init's bytes given (the ones a cache name was hashed from). */
int vm_initramfs_write_mem(int out_fd, const void *init, size_t init_len,
                           const struct vm_initramfs_module *mods, size_t n_mods, dbx_error **err);

/* The initramfs files of a kernel directory (both kernels' kinds: one per init build, so one per
 * devbox upgrade, each 1.7 MiB or more) that no start has used for VM_INITRAMFS_UNUSED_S are
 * removed; a start rebuilds one in milliseconds if it needs it again.  Called under the kernel
 * directory's lock once `keep` (a name in kfd) is chosen: its mtime is its last use, refreshed
 * when older than VM_INITRAMFS_TOUCH_S, so a start of another devbox (another init) that chose
 * its file and opens it again for each boot (its [setup]'s, then its box's) has 23 hours before
 * it could go.  A devbox older than this marks nothing: its file, a day old, may go between its
 * choice and its copy (milliseconds), failing that start.  Only regular files named as ours;
 * errors are ignored (what stays is tried at the next start). */
#define VM_INITRAMFS_UNUSED_S (24 * 3600)
#define VM_INITRAMFS_TOUCH_S 3600
void vm_initramfs_prune(int kfd, const char *keep);

/* ---- QEMU (vm-qemu.c) ------------------------------------------------------------------- */

/* Host TSC frequency in kHz (measured once against CLOCK_MONOTONIC, from
 * vm_tsc_calibration_start's reading when there was one), 0 when unknown. */
unsigned vm_host_tsc_khz(void);

/* ---- passt's destination filter (vm-passt-filter.c, vm-passt-vet.c) --------------------- */

#define VM_PASST_MAX_DNS 8    /* nameserver lines of resolv.conf we honour (glibc uses 3) */
#define VM_PASST_WHERE_MAX 64 /* "[v6 address]:port" and a NUL */

struct vm_passt_rules {
    struct dbx_addr dns[VM_PASST_MAX_DNS]; /* the host's resolvers (IPv4-mapped unmapped) */
    size_t n_dns;
    int nl_fd; /* NETLINK_ROUTE socket for the host-address check; -1 skips that check */
    uint32_t nl_seq;
};

/* Replace r's resolvers with the "nameserver ADDR" lines of a resolv.conf text (at most
 * VM_PASST_MAX_DNS; zone suffixes and other lines are ignored). */
void vm_passt_parse_resolv(const char *text, struct vm_passt_rules *r);
/* Judge the len bytes of a sockaddr passt gave connect (is_connect) or a send call: NULL when
 * allowed, else a static reason.  Allowed: AF_UNIX and AF_NETLINK (passt's own), AF_UNSPEC for
 * connect (a disconnect), one of r's resolvers on port 53 whatever its class, and IP addresses
 * that neither their class (loopback, unspecified (0/8, ::, ::/96), link-local, cloud metadata,
 * multicast, broadcast, NAT64 of one of these; IPv4-mapped and SIIT addresses judged as their
 * IPv4 address) nor the kernel's route lookup (local, broadcast,
 * multicast, anycast route: "host address") refuses.  Refused too: other families, addresses
 * shorter than the kernel accepts, failed route lookups.  `where` (VM_PASST_WHERE_MAX bytes)
 * gets "ADDR:PORT" or a description for the log. */
const char *vm_passt_vet(struct vm_passt_rules *r, const void *sa, size_t len, bool is_connect,
                         char *where);

struct sock_filter;
/* The BPF program installed in passt's child before exec (malloc'd into *ret, *ret_n insns). */
int vm_passt_filter_bpf(struct sock_filter **ret, size_t *ret_n, dbx_error **err);
/* The thread that answers passt's notifications: _new reads resolv_conf's resolvers (missing
 * file: none), dups log_fd (may be -1) and opens its netlink socket; _run takes ownership of
 * the listener fd (also on failure) and starts the thread; _free stops and joins the thread
 * and closes everything (NULL is fine). */
struct vm_passt_filter;
int vm_passt_filter_new(const char *resolv_conf, int log_fd, struct vm_passt_filter **ret,
                        dbx_error **err);
int vm_passt_filter_run(struct vm_passt_filter *f, int notify_fd, dbx_error **err);
uint64_t vm_passt_filter_refused(const struct vm_passt_filter *f);
void vm_passt_filter_free(struct vm_passt_filter *f);

/* vm-devkernel.c: the source package's version by query() (dpkg-query), kept in
 * cache/source-version keyed on tarball's inode, size and times, so a boot asks dpkg only after
 * the tarball changed.  NULL: no tarball, or query() had no answer. */
char *vm_devkernel_source_version_cached(const char *tarball, const char *cache,
                                         char *(*query)(void));
/* vm-devkernel.c: the source version a kernel cache entry's name holds ("<version>-<12 hex>",
 * a build, or that plus ".failed.log"), malloc'd, or NULL for any other name (lock,
 * source-version, .build-*). */
char *vm_devkernel_entry_version(const char *name);

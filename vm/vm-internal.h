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

/* In a forked child: make every fd >= from close on exec (or close it), except `keep`. */
void vm_child_close_fds(int from, int keep);

/* Remove a file tree without following symlinks (like rm -rf); missing is fine. */
int vm_rm_rf(const char *path, dbx_error **err);

/* ---- tar normalization (vm-disk.c; also the fuzzing target for the tar path filter) ------ */

#define VM_TAR_MAX_ENTRIES 1000000ull
#define VM_TAR_MAX_PATH 4096
#define VM_TAR_MAX_BYTES (64ull << 30)
/* genext2fs 1.5 stores only the low 16 bits of owners (measured: uid 100000 became 34464), so
 * larger ids are refused rather than silently changed. */
#define VM_TAR_MAX_ID 65535

/* Check a tar entry or hard link target path and return its normalized form in *ret (no
 * leading "./" or "/", no empty or "." components, no trailing slash; "" for the root).
 * Refuses absolute paths, ".." components, over-long paths and control bytes other than
 * what file names may hold (NUL cannot occur in a C string; newline is refused because the
 * image tools use line-oriented formats). */
int vm_tar_clean_path(const char *path, char **ret, dbx_error **err);

struct vm_tar_stats {
    uint64_t entries;
    uint64_t dirs;
    uint64_t data_bytes;
    uint64_t data_blocks; /* 4 KiB blocks the regular files and long symlinks need */
};

/* Read the tarball at `in_path` (plain, gzip, zstd, ...: libarchive filters; tar, pax, GNU and
 * ustar formats), validate every entry, and write a normalized pax tar to out_fd: paths
 * cleaned, only regular files, directories, symlinks, hard links, character/block devices
 * and FIFOs; numeric owners only (no user/group names, so nothing is ever looked up on the
 * host), no extended attributes, ACLs, file flags or sparse maps.  Caps: VM_TAR_MAX_*. */
int vm_tar_normalize(const char *in_path, int out_fd, struct vm_tar_stats *ret_stats,
                     dbx_error **err);

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

/* ---- QEMU (vm-qemu.c) ------------------------------------------------------------------- */

/* Host TSC frequency in kHz (measured once against CLOCK_MONOTONIC), 0 when unknown. */
unsigned vm_host_tsc_khz(void);

/* vm/vm-kcopy.c: the devbox kernel's private copy for one QEMU (vm_kernel_copy in vm.h).
 *
 * QEMU 7.2 loads a PVH vmlinux through its ROM loader, which keeps the file mapped to copy the
 * segments into guest memory again at a reset; the pages it read stay mapped in QEMU for the
 * VM's life (14.8 MiB of an idle box's PSS, 2026-12-04).  A box's QEMU never resets:
 * -no-reboot turns the guest's reset into QEMU's exit, and devbox sends no system_reset.  So
 * each QEMU gets a copy in a memfd, and once the guest runs the copy becomes a hole: QEMU's
 * mapping then holds nothing (and would read zeros, never fault).  Only what QEMU reads of the
 * file is copied: the ELF and program headers, the loadable segments and the notes (the PVH
 * entry point is one).  The section headers stay a hole, so QEMU finds no symbol table to load
 * into its heap either.
 *
 * The initramfs the same way (vm_initrd_copy): QEMU maps the whole file for the firmware's
 * fw_cfg reads, which happen once, before the kernel runs, and keeps it mapped (1.5 MiB of an
 * idle box's PSS with the devbox kernel's initramfs, 2026-12-04). */
#define _GNU_SOURCE
#include "vm-internal.h"

#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define KCOPY_SIZE_MAX (512ull << 20) /* far beyond any devbox kernel (21 MB in 2026) */
#define KCOPY_PHDRS_MAX 64u
#define INITRD_SIZE_MAX (1ull << 30) /* QEMU's own limit for an initrd is below 4 GiB */

static int pread_full(int fd, void *buf, size_t n, uint64_t off) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) return -EIO; /* the file shrank under us */
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Whether [off, off + len) lies inside a file of `size` bytes. */
static bool in_file(uint64_t off, uint64_t len, uint64_t size) {
    return off <= size && len <= size - off;
}

/* len bytes at off of `in` to the same offset of the memfd m.  sendfile moves them from the
 * page cache into the memfd's pages inside the kernel (any file is a sendfile target since
 * Linux 2.6.33, long before memfds): the devbox kernel's 15 MB of segments in 10.5 ms, against
 * 16-19 ms through a mapping of the memfd (a page fault per 4 KiB) and 12 ms through a buffer
 * (pread, pwrite), measured 2026-12-05 on this 2-core host, 3 runs each.  A cold start waits
 * for it.  0 or -errno. */
static int copy_range(int in, int m, uint64_t off, uint64_t len) {
    if (lseek(m, (off_t)off, SEEK_SET) < 0) return -errno;
    off_t o = (off_t)off;
    while (len > 0) {
        ssize_t r = sendfile(m, in, &o, len > SSIZE_MAX ? SSIZE_MAX : (size_t)len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) return -EIO; /* the file shrank under us */
        len -= (uint64_t)r;
    }
    return 0;
}

/* Write n bytes at off of the memfd m.  0 or -errno. */
static int write_at(int m, const void *buf, size_t n, uint64_t off) {
    return lseek(m, (off_t)off, SEEK_SET) < 0 ? -errno : dbx_write_all(m, buf, n);
}

/* The headers and the segments QEMU reads, into the memfd m.  0 or -errno. */
static int copy_read(int in, int m, const Elf64_Ehdr *eh, const Elf64_Phdr *ph) {
    int r = write_at(m, eh, sizeof(*eh), 0);
    if (r == 0) r = write_at(m, ph, (size_t)eh->e_phnum * sizeof(*ph), eh->e_phoff);
    for (unsigned i = 0; r == 0 && i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD || ph[i].p_type == PT_NOTE)
            r = copy_range(in, m, ph[i].p_offset, ph[i].p_filesz);
    return r;
}

/* The file to copy, opened, if it is a regular file of min..max bytes (what: "a kernel image").
 * The fd, or < 0 with *err naming the file. */
static int source_open(const char *path, uint64_t min, uint64_t max, const char *what,
                       uint64_t *ret_size, dbx_error **err) {
    _cleanup_close_ int in = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (in < 0) return dbx_error_set(err, errno, "open '%s'", path);
    struct stat st;
    if (fstat(in, &st) < 0) return dbx_error_set(err, errno, "stat '%s'", path);
    *ret_size = (uint64_t)st.st_size;
    if (!S_ISREG(st.st_mode) || *ret_size < min || *ret_size > max)
        return dbx_error_setx(err, EINVAL, "'%s': not %s (%" PRIu64 " bytes)", path, what,
                              *ret_size);
    return TAKE_FD(in);
}

/* The copy's memfd, "devbox-KIND NAME", of size bytes (a hole until written). */
static int copy_memfd(const char *kind, const char *name, uint64_t size, dbx_error **err) {
    _cleanup_free_ char *mname = dbx_xasprintf("devbox-%s %s", kind, name);
    _cleanup_close_ int m = memfd_create(mname, MFD_CLOEXEC);
    if (m < 0) return dbx_error_set(err, errno, "memfd_create");
    if (ftruncate(m, (off_t)size) < 0) return dbx_error_set(err, errno, "size the %s's copy", kind);
    return TAKE_FD(m);
}

int vm_kernel_copy(const char *path, const char *name, int *ret_fd, dbx_error **err) {
    uint64_t size = 0;
    _cleanup_close_ int in =
        source_open(path, sizeof(Elf64_Ehdr), KCOPY_SIZE_MAX, "a kernel image", &size, err);
    if (in < 0) return -1;
    Elf64_Ehdr eh;
    int r = pread_full(in, &eh, sizeof(eh), 0);
    if (r < 0) return dbx_error_set(err, -r, "read '%s'", path);
    uint64_t ph_len = (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > KCOPY_PHDRS_MAX ||
        !in_file(eh.e_phoff, ph_len, size))
        return dbx_error_setx(err, EINVAL, "'%s': not an ELF64 kernel with program headers", path);
    Elf64_Phdr ph[KCOPY_PHDRS_MAX];
    r = pread_full(in, ph, (size_t)ph_len, eh.e_phoff);
    if (r < 0) return dbx_error_set(err, -r, "read '%s'", path);
    for (unsigned i = 0; i < eh.e_phnum; i++)
        if ((ph[i].p_type == PT_LOAD || ph[i].p_type == PT_NOTE) &&
            !in_file(ph[i].p_offset, ph[i].p_filesz, size))
            return dbx_error_setx(err, EINVAL, "'%s': segment %u lies outside the file", path, i);

    _cleanup_close_ int m = copy_memfd("kernel", name, size, err);
    if (m < 0) return -1;
    r = copy_read(in, m, &eh, ph);
    if (r < 0) return dbx_error_set(err, -r, "copy '%s'", path);
    if (lseek(m, 0, SEEK_SET) < 0) return dbx_error_set(err, errno, "rewind the kernel's copy");
    *ret_fd = TAKE_FD(m);
    return 0;
}

int vm_initrd_copy(const char *path, const char *name, int *ret_fd, dbx_error **err) {
    uint64_t size = 0;
    _cleanup_close_ int in = source_open(path, 1, INITRD_SIZE_MAX, "an initramfs", &size, err);
    if (in < 0) return -1;
    _cleanup_close_ int m = copy_memfd("initramfs", name, size, err);
    if (m < 0) return -1;
    int r = copy_range(in, m, 0, size);
    if (r < 0) return dbx_error_set(err, -r, "copy '%s'", path);
    if (lseek(m, 0, SEEK_SET) < 0) return dbx_error_set(err, errno, "rewind the initramfs copy");
    *ret_fd = TAKE_FD(m);
    return 0;
}

int vm_copy_drop(int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    if (st.st_size == 0) return 0;
    /* to the end of the last page: a hole frees whole pages and only zeroes a partial one */
    off_t page = (off_t)sysconf(_SC_PAGESIZE), len = (st.st_size + page - 1) / page * page;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, len) < 0) return -errno;
    return 0;
}

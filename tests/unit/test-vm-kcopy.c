/* tests/unit/test-vm-kcopy.c: the devbox kernel's private copy for one QEMU (vm_kernel_copy),
 * and the initramfs's (vm_initrd_copy): what QEMU reads of the ELF is copied byte for byte, the
 * rest (the section headers and the symbol table behind them) is a hole, files that are not a sane
 * ELF64 are refused with their name, and dropping the copy frees every page while its size stays.
 * QEMU booting from it: t-devkernel. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "vm/vm-internal.h"

#define IMG_SIZE (64u * 1024u)
#define LOAD_OFF 0x1000u
#define LOAD_LEN 0x3000u
#define NOTE_OFF 0x5000u
#define NOTE_LEN 0x40u
#define SHDR_OFF 0x8000u

/* An ELF64 of IMG_SIZE bytes: 3 program headers (LOAD, NOTE, and a GNU_STACK that names no
 * bytes), every byte a pattern, so what is copied and what is left a hole both show. */
static void make_image(const char *path, uint16_t phnum, uint64_t load_off) {
    uint8_t *img = malloc(IMG_SIZE);
    assert_non_null(img);
    for (size_t i = 0; i < IMG_SIZE; i++)
        img[i] = (uint8_t)(i * 7 + 1) | 1; /* never 0 */
    Elf64_Ehdr eh = {.e_type = ET_EXEC,
                     .e_machine = EM_X86_64,
                     .e_version = EV_CURRENT,
                     .e_phoff = sizeof(Elf64_Ehdr),
                     .e_shoff = SHDR_OFF,
                     .e_ehsize = sizeof(Elf64_Ehdr),
                     .e_phentsize = sizeof(Elf64_Phdr),
                     .e_phnum = phnum,
                     .e_shentsize = sizeof(Elf64_Shdr),
                     .e_shnum = 4};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    memcpy(img, &eh, sizeof(eh));
    Elf64_Phdr ph[3] = {
        {.p_type = PT_LOAD, .p_offset = load_off, .p_filesz = LOAD_LEN, .p_memsz = LOAD_LEN},
        {.p_type = PT_NOTE, .p_offset = NOTE_OFF, .p_filesz = NOTE_LEN, .p_memsz = NOTE_LEN},
        {.p_type = PT_GNU_STACK, .p_offset = 0x7000, .p_filesz = 0x100}};
    memcpy(img + sizeof(eh), ph, sizeof(ph));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, img, IMG_SIZE), IMG_SIZE);
    close(fd);
    free(img);
}

static uint8_t *read_all(int fd, size_t n) {
    uint8_t *b = malloc(n);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, n, 0), (ssize_t)n);
    return b;
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static void test_copy_and_drop(void **state) {
    char dir[] = "/tmp/dbx-kcopy.XXXXXX";
    assert_non_null(mkdtemp(dir));
    _cleanup_free_ char *path = dbx_xasprintf("%s/vmlinux", dir);
    make_image(path, 3, LOAD_OFF);
    int fd = -1;
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_kernel_copy(path, "6.1.1-1-abc", &fd, &err), 0);
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    char link[64], target[256] = {0};
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    assert_true(readlink(link, target, sizeof(target) - 1) > 0);
    assert_string_equal(target, "/memfd:devbox-kernel 6.1.1-1-abc (deleted)");
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, IMG_SIZE);

    int in = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    _cleanup_free_ uint8_t *want = read_all(in, IMG_SIZE);
    close(in);
    _cleanup_free_ uint8_t *got = read_all(fd, IMG_SIZE);
    size_t hdrs = sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Phdr);
    assert_memory_equal(got, want, hdrs);
    assert_memory_equal(got + LOAD_OFF, want + LOAD_OFF, LOAD_LEN);
    assert_memory_equal(got + NOTE_OFF, want + NOTE_OFF, NOTE_LEN);
    /* the rest: holes (between the headers and the segments, the GNU_STACK range, the section
     * headers, the end) */
    assert_true(all_zero(got + hdrs, LOAD_OFF - hdrs));
    assert_true(all_zero(got + 0x7000, 0x100));
    assert_true(all_zero(got + SHDR_OFF, IMG_SIZE - SHDR_OFF));

    /* dropped: the same size, no pages, zeros where the kernel was */
    assert_int_equal(vm_copy_drop(fd), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, IMG_SIZE);
    assert_int_equal(st.st_blocks, 0);
    _cleanup_free_ uint8_t *after = read_all(fd, IMG_SIZE);
    assert_true(all_zero(after, IMG_SIZE));
    assert_int_equal(vm_copy_drop(fd), 0); /* twice: nothing left to free */
    close(fd);
    test_rm_tree(dir);
}

static void expect_refused(const char *path, const char *what) {
    int fd = -1;
    _cleanup_error_ dbx_error *err = NULL;
    assert_true(vm_kernel_copy(path, "k", &fd, &err) < 0);
    assert_int_equal(fd, -1);
    assert_non_null(err);
    assert_non_null(strstr(err->msg, path));
    assert_non_null(strstr(err->msg, what));
}

static void test_refused(void **state) {
    char dir[] = "/tmp/dbx-kcopy.XXXXXX";
    assert_non_null(mkdtemp(dir));
    _cleanup_free_ char *path = dbx_xasprintf("%s/vmlinux", dir);
    expect_refused(path, "No such file"); /* missing */
    test_write_file(path, "not an elf, long enough to hold an ELF header's 64 bytes, or more.",
                    0644);
    expect_refused(path, "not an ELF64 kernel");
    test_write_file(path, "\177ELF", 0644);
    expect_refused(path, "not a kernel image"); /* shorter than the header */
    make_image(path, 0, LOAD_OFF);
    expect_refused(path, "not an ELF64 kernel"); /* no program headers */
    make_image(path, 200, LOAD_OFF);
    expect_refused(path, "not an ELF64 kernel"); /* more than the cap, and past the end */
    make_image(path, 3, IMG_SIZE - 0x100);
    expect_refused(path, "segment 0 lies outside the file");
    make_image(path, 3, UINT64_MAX - 0x100); /* an offset that wraps */
    expect_refused(path, "segment 0 lies outside the file");
    expect_refused(dir, "not a kernel image"); /* a directory */
    test_rm_tree(dir);
}

/* The initramfs: all of it, byte for byte; dropped, no page left, the partial last one included
 * (a hole over just the file's size only zeroes that page and keeps it). */
static void test_initrd_copy(void **state) {
    char dir[] = "/tmp/dbx-kcopy.XXXXXX";
    assert_non_null(mkdtemp(dir));
    _cleanup_free_ char *path = dbx_xasprintf("%s/initrd.cpio", dir);
    const size_t n = 3 * 4096 + 123; /* not a whole number of pages */
    _cleanup_free_ uint8_t *want = malloc(n);
    assert_non_null(want);
    for (size_t i = 0; i < n; i++)
        want[i] = (uint8_t)(i * 7 + 1);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(out >= 0);
    assert_int_equal(write(out, want, n), (ssize_t)n);
    close(out);
    int fd = -1;
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_initrd_copy(path, "abc.cpio", &fd, &err), 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    char link[64], target[256] = {0};
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    assert_true(readlink(link, target, sizeof(target) - 1) > 0);
    assert_string_equal(target, "/memfd:devbox-initramfs abc.cpio (deleted)");
    _cleanup_free_ uint8_t *got = read_all(fd, n);
    assert_memory_equal(got, want, n);
    struct stat st;
    assert_int_equal(vm_copy_drop(fd), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, (off_t)n);
    assert_int_equal(st.st_blocks, 0);
    _cleanup_free_ uint8_t *after = read_all(fd, n);
    assert_true(all_zero(after, n));
    close(fd);

    /* refused, naming the file: missing, empty, a directory */
    _cleanup_free_ char *missing = dbx_xasprintf("%s/none.cpio", dir);
    _cleanup_free_ char *empty = dbx_xasprintf("%s/empty.cpio", dir);
    test_write_file(empty, "", 0644);
    const char *bad[][2] = {
        {missing, "No such file"}, {empty, "not an initramfs"}, {dir, "not an initramfs"}};
    for (size_t i = 0; i < 3; i++) {
        _cleanup_error_ dbx_error *e = NULL;
        fd = -1;
        assert_true(vm_initrd_copy(bad[i][0], "x", &fd, &e) < 0);
        assert_int_equal(fd, -1);
        assert_non_null(strstr(e->msg, bad[i][0]));
        assert_non_null(strstr(e->msg, bad[i][1]));
    }
    test_rm_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_and_drop),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_initrd_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

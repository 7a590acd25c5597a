/* tests/fuzz/fuzz-qmp.c: libFuzzer harness for the supervisor's QMP reader (vm-qmp.c), which
 * parses what QEMU, a guest-reachable process, writes on the monitor.
 *
 * The input is written to the reader's socket in chunks of varying size (events split across
 * reads), then the writer hangs up.  Checks: no crash or leak; only known event bits; a status
 * string is NUL-terminated within its buffer; the reader reports the hang-up as an error and
 * closes its fd.
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without DBX_LIBFUZZER a
 * replay main() runs each file (or each file in each directory) named on the command line. */
#include <sys/socket.h>

#include "common/common.h"
#include "vm/vm.h"

#include "replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int sp[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
    struct vm_qmp *q = NULL;
    dbx_error *err = NULL;
    CHECK(vm_qmp_new(sp[0], &q, &err) == 0);
    struct vm_qmp_state st = {0};
    const unsigned known = VM_QMP_EV_STOP | VM_QMP_EV_RESUME | VM_QMP_EV_IO_ERROR |
                           VM_QMP_EV_NOSPACE | VM_QMP_EV_PANIC | VM_QMP_EV_SHUTDOWN |
                           VM_QMP_EV_STATUS;
    /* chunk sizes from the first byte: 1..256 bytes, at most 16 KiB per write */
    size_t step = size ? (size_t)data[0] + 1 : 1;
    for (size_t off = 0; off < size;) {
        size_t n = size - off < step ? size - off : step;
        CHECK(dbx_write_all(sp[1], data + off, n) == 0);
        off += n;
        step = step * 2 > 16384 ? 1 : step * 2;
        CHECK(vm_qmp_io(q, &st, &err) == 0);
        CHECK((st.events & ~known) == 0);
        CHECK(memchr(st.status, '\0', sizeof(st.status)) != NULL);
    }
    close(sp[1]);
    CHECK(vm_qmp_io(q, &st, &err) < 0 && err != NULL);
    dbx_error_free(&err);
    CHECK(vm_qmp_fd(q) == -1);
    vm_qmp_free(q);
    return 0;
}

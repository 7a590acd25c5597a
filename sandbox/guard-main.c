/* sandbox/guard-main.c: build/devbox-guard, virtiofsd's guard as its own small program.
 *
 * The guard lives as long as the box (it serves virtiofsd's name filter), and the supervisor
 * starts one per share on every boot.  As the full devbox it loaded 53 shared libraries for code
 * it never runs: 9 ms per start, and their pages in the idle box's memory.  This one holds the
 * guard alone (mounts, common, libseccomp and libc).  Its command line is the full devbox's
 * (`devbox __virtiofsd-guard`), which still answers it (sandbox/main.c): the supervisor falls
 * back to that when devbox-guard is not next to it. */
#include "common/common.h"
#include "mounts/mounts.h"

#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "__virtiofsd-guard") != 0) {
        static const char m[] = "devbox-guard: started by devbox itself\n";
        (void)!write(2, m, sizeof(m) - 1);
        return 2;
    }
    return mounts_virtiofsd_guard_main(argc - 1, argv + 1);
}

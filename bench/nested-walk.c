/* bench/nested-walk.c: what the start's walk for nested repositories (mounts-nested.c) costs on
 * a tree: N walks of DIR, each with its time and what it found.
 *   make && cc -O2 -std=gnu11 -I. -o build/nested-walk bench/nested-walk.c build/libdevbox.a \
 *       -lgit2 -larchive -linih -ljansson -lcrypto -lseccomp -lcurl -lutil -pthread
 *   build/nested-walk DIR [N] */
#define _GNU_SOURCE
#include "mounts/mounts-internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int n = argc > 2 ? atoi(argv[2]) : 5;
    for (int i = 0; i < n; i++) {
        struct mounts_nested found = {0};
        dbx_error *err = NULL;
        uint64_t t0 = dbx_now_ns();
        int r = mounts_nested_find(argv[1], &found, &err);
        uint64_t t1 = dbx_now_ns();
        printf("%.2f ms: %" PRIu64 " entries, %zu git directories, %zu .git files%s%s\n",
               (double)(t1 - t0) / 1e6, found.entries, dbx_strv_len(found.gitdirs),
               dbx_strv_len(found.gitfiles), r < 0 ? ": " : "", r < 0 ? err->msg : "");
        dbx_error_free(&err);
        mounts_nested_free(&found);
    }
    return 0;
}

/* tests/fuzz/fuzz-rootfs.c: libFuzzer harness for the tar layer reader (vm/vm-rootfs.c), the
 * parser that image layers from registries go through (R15).
 *
 * Each input is applied as an OCI layer (whiteouts on) to a fresh vm_rootfs, then again as a
 * second layer over the first, with the caps lowered so that they are reached.  Invariants:
 * a layer either applies or fails with a non-empty one-line message naming the layer; a failed
 * builder refuses further layers; the tree keeps its counts within the caps and every node
 * is reachable from the root with a valid name (no '/', not '.' or '..', no '.wh.' prefix);
 * the root stays a 0755 root:root directory;
 * no leaks or overflows (run under ASan/UBSan).  No disk is written (that runs e2fsprogs).
 *
 * Built with clang -fsanitize=fuzzer -DDBX_LIBFUZZER for fuzzing; without DBX_LIBFUZZER a
 * replay main() runs each file (or each file in each directory) named on the command line,
 * so CI replays the corpus under gcc.  Seeds: tests/fuzz/gen-rootfs-corpus.py. */
#include <dirent.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "vm/vm-internal.h"

#include "replay.h"

static char tmpdir[PATH_MAX];

static void cleanup_tmp(void) {
    if (tmpdir[0]) rmdir(tmpdir);
}

static void setup_once(void) {
    if (tmpdir[0]) return;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/dbx-fuzz-rootfs-XXXXXX", t && *t ? t : "/tmp");
    CHECK(mkdtemp(tmpdir));
    atexit(cleanup_tmp);
}

static void check_error(dbx_error *err) {
    CHECK(err && err->msg && err->msg[0]);
    CHECK(!strchr(err->msg, '\n'));
    CHECK(strstr(err->msg, "layer 'fuzz"));
}

static size_t check_tree(const struct vm_rootfs_node *dir, size_t depth) {
    CHECK(depth <= VM_TAR_MAX_PATH / 2);
    size_t n = 0;
    for (const struct vm_rootfs_node *c = dir->child; c; c = c->next) {
        CHECK(c->parent == dir && c->ino && c->ino->refs > 0);
        CHECK(c->name[0] && !strchr(c->name, '/') && strcmp(c->name, ".") && strcmp(c->name, ".."));
        CHECK(strncmp(c->name, ".wh.", 4) != 0);
        CHECK(!c->next || c->next->prev == c);
        n += 1 + (S_ISDIR(c->ino->mode) ? check_tree(c, depth + 1) : 0);
    }
    return n;
}

static int layer_fd(const uint8_t *data, size_t size) {
    int fd = memfd_create("layer", MFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(dbx_write_all(fd, data, size) == 0);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup_once();
    struct vm_rootfs *b = NULL;
    dbx_error *err = NULL;
    CHECK(vm_rootfs_new(tmpdir, &b, &err) == 0);
    b->max_nodes = 4096;
    b->max_headers = 8192;
    b->max_bytes = 64u << 20;
    b->max_meta = 16u << 20;
    bool ok = true;
    for (int i = 0; i < 2 && ok; i++) {
        int fd = layer_fd(data, size);
        char label[16];
        snprintf(label, sizeof(label), "fuzz%d", i);
        ok = vm_rootfs_add_layer(b, fd, label, true, &err) == 0;
        close(fd);
        if (!ok) {
            check_error(err);
            dbx_error_free(&err);
            int fd2 = layer_fd(data, size);
            CHECK(vm_rootfs_add_layer(b, fd2, "fuzz-after", true, &err) < 0);
            check_error(err);
            dbx_error_free(&err);
            close(fd2);
        } else {
            CHECK(!err);
            CHECK(check_tree(b->root, 0) == b->n_nodes);
            /* no entry changes the root itself (entries resolving to it are skipped) */
            CHECK(b->root->ino->mode == (S_IFDIR | 0755) && b->root->ino->uid == 0 &&
                  b->root->ino->gid == 0);
            CHECK(b->n_nodes <= b->max_nodes && b->meta_bytes <= b->max_meta);
        }
    }
    vm_rootfs_free(b);
    return 0;
}

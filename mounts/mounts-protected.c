/* mounts/mounts-protected.c: read-only binds of protected paths inside virtiofsd's own mount
 * namespace (R2).  Extension point: see mounts-internal.h. */
#define _GNU_SOURCE
#include "mounts-internal.h"

int mounts_apply_protected(const char *source, const char *const *paths, dbx_error **err) {
    if (!paths || !paths[0]) return 0;
    /* Fail closed: a caller that asks for protection must not silently get a writable share.
     * The implementation goes here: for each path, openat2(source_fd, path, O_PATH,
     * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), then bind /proc/self/fd/N over itself and
     * remount it MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV. */
    return dbx_error_set(err, ENOTSUP, "protect '%s' below '%s'", paths[0], source);
}

/* vm/vm-debian.c: a Debian root filesystem tarball built from the Debian archive with
 * mmdebstrap, for the default image (no container registry involved). */
#define _GNU_SOURCE
#include "vm-internal.h"

int vm_debian_rootfs(const char *out_tar, const char *suite, const char *mirror,
                     const char *include, dbx_error **err) {
    _cleanup_free_ char *inc = dbx_xasprintf("--include=%s", include);
    /* As an ordinary user mmdebstrap builds in a user namespace (subordinate ids, which the
     * rootless virtiofsd needs anyway); as root it can chroot directly. */
    char *argv[] = {"mmdebstrap", "-q",
                    geteuid() == 0 ? "--mode=root" : "--mode=unshare",
                    "--variant=apt", inc, "--format=tar", (char *)suite, (char *)out_tar,
                    (char *)mirror, NULL};
    int status = 0;
    _cleanup_free_ char *errs = NULL;
    if (vm_run("mmdebstrap", argv, NULL, NULL, &errs, &status, err) < 0) return -1;
    if (status == 0) return 0;
    char *last = NULL;
    for (char *save = NULL, *l = strtok_r(errs, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (*l) last = l;
    return dbx_error_set(err, 0, "mmdebstrap exited with status %d%s%s", status,
                         last ? ": " : "", last ? dbx_sanitize_printable(last) : "");
}

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
    /* vm_run's error is mmdebstrap's last (or apt's "E: ") stderr line */
    return vm_run("mmdebstrap", argv, NULL, NULL, NULL, NULL, err);
}

/* mounts/mounts.h: host side of the workspace share: virtiofsd's lifecycle and id mapping.
 * Library code: no printing. */
#pragma once

#include "../common/common.h"

struct mounts_vfs_config {
    const char *virtiofsd;   /* binary; NULL = /usr/lib/qemu/virtiofsd */
    const char *source;      /* absolute, canonical host directory to share */
    int listen_fd;           /* listening unix socket; becomes virtiofsd's --fd */
    int log_fd;              /* stderr of virtiofsd (and our setup errors), or -1 */
};

/* The id mapping devbox uses.  Root on the host: identity (virtiofsd runs as root).
 * Otherwise virtiofsd runs in a new user namespace set up with newuidmap/newgidmap from the
 * user's /etc/subuid and /etc/subgid ranges such that namespace uid U (the invoking user's
 * uid) maps to host uid U and gid G to G; namespace 0 and every other id map to subordinate
 * ids.  So files the guest's default user (uid U) creates are owned on the host by the user,
 * and files guest root creates land on a subordinate id, never on the user or real root. */
struct mounts_idmap {
    uid_t uid;               /* the invoking user's uid/gid */
    gid_t gid;
    bool rootless;
    uid_t sub_uid;           /* first subordinate uid, count (rootless only) */
    uint32_t sub_uid_count;
    gid_t sub_gid;
    uint32_t sub_gid_count;
};

/* Find the mapping for the current user (reads /etc/subuid and /etc/subgid by user name and
 * by uid, as newuidmap does).  A missing range is an error that says what to add. */
int mounts_idmap_get(struct mounts_idmap *ret, dbx_error **err);

/* Spawn virtiofsd serving cfg->source on cfg->listen_fd (vhost-user), in its own mount
 * namespace with a private tmpfs on /run (its pid file), rootless as described above.  The
 * daemon keeps its own sandbox (namespaces + seccomp) on.  It dies with the calling process
 * (PR_SET_PDEATHSIG set after the last credential change, right before exec).  Returns the
 * pid of the process that execs virtiofsd, or -errno with *err set; errors that happen in
 * the child after fork are written to cfg->log_fd and make the child exit 125. */
pid_t mounts_virtiofsd_spawn(const struct mounts_vfs_config *cfg, const struct mounts_idmap *map,
                             dbx_error **err);

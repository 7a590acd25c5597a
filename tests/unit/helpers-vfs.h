/* tests/unit/helpers-vfs.h: the scenario harness of the virtiofsd tests (test-mounts-virtiofsd,
 * test-mounts-protected): a temporary source directory, a listening vhost-user socket and a
 * log pipe, and a runner that forks each scenario, as the current user or as the test user. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "mounts/mounts-internal.h"

#define VIRTIOFSD "/usr/lib/qemu/virtiofsd"

struct vfs_env {
    char dir[40];
    char src[64];
    char sock[64];
    int listen_fd;
    int log_rd, log_wr;
    struct mounts_idmap map;
};

/* The spawn configuration for the env's source, socket and log, with a protected list (or
 * NULL). */
struct mounts_vfs_config vfs_env_config(const struct vfs_env *e, const char *const *protected);

/* What virtiofsd (or its stand-in) wrote to the log so far, NUL-terminated; its length. */
size_t vfs_read_log(struct vfs_env *e, char *buf, size_t size);

/* A client connection to the env's socket. */
int vfs_connect(const struct vfs_env *e);

/* vhost-user GET_FEATURES round trip (what QEMU sends first): the features into
 * *ret_features; returns the latency in ms. */
uint64_t vhost_user_get_features(int fd, uint64_t *ret_features);

/* Run fn in a forked child (a subreaper, so orphans come back to it, with its cwd in the env's
 * directory), as root or, with as_user, as the test user (test_user).  Skips, with the reason,
 * when the scenario cannot run here; fails when it exits non-zero. */
void vfs_run(void (*fn)(struct vfs_env *), bool as_user, bool needs_virtiofsd);

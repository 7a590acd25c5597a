/* tests/unit/devbox-bin.h: the full devbox binary of the build a unit test belongs to
 * ($(BUILD)/devbox-full: what the supervisor's /proc/self/exe is; $(BUILD)/devbox is the lean
 * client that hands such work to it).  Unit tests are $(BUILD)/tests/test-NAME and `make unit`
 * builds it first; tests that spawn virtiofsd run it as virtiofsd's guard (struct
 * mounts_vfs_config.guard_exe). */
#pragma once

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline const char *test_devbox_bin(void) {
    static char path[PATH_MAX];
    if (path[0]) return path;
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n <= 0) abort();
    path[n] = '\0';
    for (int i = 0; i < 2; i++) { /* drop "/test-NAME", then "/tests" */
        char *slash = strrchr(path, '/');
        if (!slash) abort();
        *slash = '\0';
    }
    if (strlen(path) + sizeof("/devbox-full") > sizeof(path)) abort();
    strcat(path, "/devbox-full");
    return path;
}

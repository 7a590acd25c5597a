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

/* NAME in the build directory: the test binary is $(BUILD)/tests/test-NAME. */
static inline const char *test_build_bin(char *path, size_t size, const char *name) {
    if (path[0]) return path;
    ssize_t n = readlink("/proc/self/exe", path, size - 1);
    if (n <= 0) abort();
    path[n] = '\0';
    for (int i = 0; i < 2; i++) { /* drop "/test-NAME", then "/tests" */
        char *slash = strrchr(path, '/');
        if (!slash) abort();
        *slash = '\0';
    }
    if (strlen(path) + 1 + strlen(name) + 1 > size) abort();
    strcat(path, "/");
    strcat(path, name);
    return path;
}

static inline const char *test_devbox_bin(void) {
    static char path[PATH_MAX];
    return test_build_bin(path, sizeof(path), "devbox-full");
}

/* $(BUILD)/devbox-guard: what the supervisor starts as virtiofsd's guard. */
static inline const char *test_guard_bin(void) {
    static char path[PATH_MAX];
    return test_build_bin(path, sizeof(path), "devbox-guard");
}

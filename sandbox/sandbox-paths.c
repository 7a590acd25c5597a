/* sandbox/sandbox-paths.c: where devbox keeps things. */
#define _GNU_SOURCE
#include "sandbox.h"

#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

static char *env_or(const char *name, const char *home, const char *fallback) {
    const char *v = getenv(name);
    if (v && v[0] == '/') return dbx_xstrdup(v);
    return dbx_xasprintf("%s/%s", home, fallback);
}

void dbx_paths_clear(struct dbx_paths *p) {
    if (!p) return;
    free(p->data);
    free(p->state);
    free(p->run);
    free(p->config);
    *p = (struct dbx_paths){0};
}

int dbx_paths_init(struct dbx_paths *ret, dbx_error **err) {
    struct dbx_paths p = {0};
    const char *h = getenv("DEVBOX_HOME");
    if (h && *h) {
        if (h[0] != '/') return dbx_error_set(err, 0, "DEVBOX_HOME must be an absolute path");
        p.data = dbx_xasprintf("%s/data", h);
        p.state = dbx_xasprintf("%s/state", h);
        p.run = dbx_xasprintf("%s/run", h);
        p.config = dbx_xasprintf("%s/config", h);
    } else {
        const char *home = getenv("HOME");
        if (!home || home[0] != '/') return dbx_error_set(err, 0, "HOME is not set");
        _cleanup_free_ char *d = env_or("XDG_DATA_HOME", home, ".local/share");
        _cleanup_free_ char *s = env_or("XDG_STATE_HOME", home, ".local/state");
        _cleanup_free_ char *c = env_or("XDG_CONFIG_HOME", home, ".config");
        const char *rt = getenv("XDG_RUNTIME_DIR");
        p.data = dbx_xasprintf("%s/devbox", d);
        p.state = dbx_xasprintf("%s/devbox", s);
        p.config = dbx_xasprintf("%s/devbox", c);
        p.run = rt && rt[0] == '/' ? dbx_xasprintf("%s/devbox", rt)
                                   : dbx_xasprintf("/tmp/devbox-%u", (unsigned)getuid());
    }
    const char *dirs[] = {p.data, p.state, p.run};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(dirs); i++)
        if (dbx_mkdir_private(dirs[i], err) < 0) {
            dbx_paths_clear(&p);
            return -1;
        }
    *ret = p;
    return 0;
}

char *dbx_find_beside_self(const char *name, int mode) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) return NULL;
    self[n] = '\0';
    char *p = dbx_xasprintf("%s/%s", dirname(self), name);
    if (access(p, mode) == 0) return p;
    free(p);
    return NULL;
}

int dbx_find_init(char **ret, dbx_error **err) {
    const char *e = getenv("DEVBOX_INIT");
    if (e && *e) {
        if (access(e, R_OK) < 0) return dbx_error_set(err, errno, "DEVBOX_INIT '%s'", e);
        *ret = realpath(e, NULL);
        if (!*ret) return dbx_error_set(err, errno, "DEVBOX_INIT '%s'", e);
        return 0;
    }
    /* next to devbox (the build tree), or where `make install` puts it for any PREFIX */
    char *p = dbx_find_beside_self("devbox-init", R_OK);
    if (p) {
        *ret = p;
        return 0;
    }
    _cleanup_free_ char *lib = dbx_find_beside_self("../lib/devbox/devbox-init", R_OK);
    char *real = lib ? realpath(lib, NULL) : NULL;
    if (real) {
        *ret = real;
        return 0;
    }
    const char *sys = "/usr/local/lib/devbox/devbox-init";
    if (access(sys, R_OK) == 0) {
        *ret = dbx_xstrdup(sys);
        return 0;
    }
    return dbx_error_set(err, 0,
                         "guest init 'devbox-init' not found next to devbox, in ../lib/devbox "
                         "from it or in /usr/local/lib/devbox (set DEVBOX_INIT)");
}

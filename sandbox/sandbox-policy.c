/* sandbox/sandbox-policy.c: the effective profile of a project, and the trust rule: a repo
 * profile may only narrow the built-in default; anything wider needs a `devbox trust`
 * recorded on the host for exactly those profile bytes. */
#define _GNU_SOURCE
#include "sandbox-internal.h"
#include "../mounts/mounts.h"
#include "../vm/vm.h"

char *dbx_trust_dir(const struct dbx_paths *paths) {
    return dbx_xasprintf("%s/trust", paths->state);
}

void dbx_user_proxy_env(const struct profile_user *u) {
    static const char *const url_vars[] = {"http_proxy", "https_proxy", "HTTP_PROXY",
                                           "HTTPS_PROXY"};
    static const char *const np_vars[] = {"no_proxy", "NO_PROXY"};
    if (u->proxy_set) {
        /* with its scheme: curl takes "host:port" alone, apt does not */
        _cleanup_free_ char *url = !u->proxy ? NULL
                                   : strncasecmp(u->proxy, "http://", 7) == 0
                                       ? dbx_xstrdup(u->proxy)
                                       : dbx_xasprintf("http://%s", u->proxy);
        for (size_t i = 0; i < DBX_ARRAY_SIZE(url_vars); i++)
            if (url)
                setenv(url_vars[i], url, 1);
            else
                unsetenv(url_vars[i]);
        unsetenv("all_proxy"); /* curl would take it for what https_proxy no longer names */
        unsetenv("ALL_PROXY");
    }
    if (u->no_proxy_set) {
        _cleanup_free_ char *v = dbx_strv_join(u->no_proxy, ",");
        for (size_t i = 0; i < DBX_ARRAY_SIZE(np_vars); i++)
            if (*v)
                setenv(np_vars[i], v, 1);
            else
                unsetenv(np_vars[i]);
    }
}

int dbx_user_load(const struct dbx_paths *paths, struct profile_user *ret, dbx_error **err) {
    if (profile_user_load(paths->config, ret, err) < 0) return -1;
    dbx_user_proxy_env(ret);
    /* What [setup] may reach without the repo asking: unless config.ini says, the mirrors the
     * host's own apt uses (DEVBOX_APT_DIR replaces /etc/apt, for tests): the distribution's
     * mirrors as this machine's network knows them, never a name written here. */
    if (!ret->setup_allow_set) {
        dbx_strv_free(ret->setup_allow);
        const char *etc = getenv("DEVBOX_APT_DIR");
        ret->setup_allow = vm_apt_hosts(etc && *etc ? etc : NULL);
    }
    return 0;
}

int dbx_profile_load(const struct dbx_paths *paths, const struct dbx_project *proj,
                     struct profile *ret, struct profile_user *ret_user, dbx_error **err) {
    struct profile_user user = {0};
    if (dbx_user_load(paths, &user, err) < 0) return -1;
    _cleanup_close_ int rootfd = open(proj->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        profile_user_clear(&user);
        return dbx_error_set(err, errno, "open '%s'", proj->root);
    }
    if (profile_load(rootfd, proj->root, &user, NULL, ret, err) < 0) {
        profile_user_clear(&user);
        return -1;
    }
    if (ret_user)
        *ret_user = user;
    else
        profile_user_clear(&user);
    return 0;
}

/* A linked worktree's main worktree (its repository's `.git`'s directory), or NULL: not a
 * linked worktree, a bare repository, or a chain mounts_worktree_find refuses. */
static char *main_worktree(const char *root) {
    struct mounts_worktree wt = {0};
    dbx_error *e = NULL;
    if (mounts_worktree_find(root, &wt, &e) < 0) {
        dbx_error_free(&e);
        return NULL;
    }
    size_t n = wt.common ? strlen(wt.common) : 0;
    char *main =
        n > 5 && !strcmp(wt.common + n - 5, "/.git") ? dbx_xstrndup(wt.common, n - 5) : NULL;
    mounts_worktree_clear(&wt);
    return main;
}

/* Whether the user trusted these profile bytes in the main worktree of the linked worktree
 * `proj`, where they are its profile now and widen exactly as much (`wide`): `git worktree
 * add` checks the committed devbox.ini out again for every worktree, and agents make one per
 * task.  The same bytes can mean something else elsewhere (a [mounts] folder relative to the
 * repo), hence the widenings compared, with real paths; anything that fails is "no". */
static bool trusted_in_main(const struct dbx_paths *paths, const struct dbx_project *proj,
                            const char *dir, const struct profile *p, char *const *wide) {
    _cleanup_free_ char *main = main_worktree(proj->root);
    bool trusted = false;
    dbx_error *e = NULL;
    if (!main || profile_trust_check(dir, main, p->hash, &trusted, &e) < 0 || !trusted) {
        dbx_error_free(&e);
        return false;
    }
    struct dbx_project mp = {.root = main};
    struct profile mprof = {0};
    struct profile_user muser = {0};
    if (dbx_profile_load(paths, &mp, &mprof, &muser, &e) < 0) {
        dbx_error_free(&e);
        return false;
    }
    bool same = !strcmp(mprof.hash, p->hash);
    _cleanup_strv_ char **mwide = same ? profile_widenings(&mprof, &muser) : NULL;
    for (size_t i = 0; same && (wide[i] || mwide[i]); i++)
        same = wide[i] && mwide[i] && !strcmp(wide[i], mwide[i]);
    profile_clear(&mprof);
    profile_user_clear(&muser);
    return same;
}

int dbx_profile_allowed(const struct dbx_paths *paths, const struct dbx_project *proj,
                        const struct profile *p, const struct profile_user *user, dbx_error **err) {
    _cleanup_strv_ char **wide = profile_widenings(p, user);
    if (!wide || !wide[0]) return 0;
    _cleanup_free_ char *dir = dbx_trust_dir(paths);
    bool trusted = false;
    if (profile_trust_check(dir, proj->root, p->hash, &trusted, err) < 0) return -1;
    if (trusted || trusted_in_main(paths, proj, dir, p, wide)) return 0;
    size_t len = 0;
    for (char **w = wide; *w; w++)
        len += strlen(*w) + 2;
    _cleanup_free_ char *list = dbx_xcalloc(1, len + 1);
    for (char **w = wide; *w; w++) {
        if (w != wide) strcat(list, ", ");
        strcat(list, *w);
    }
    return dbx_error_setx(err, EPERM,
                          "%s/%s widens the default profile (%s); review it and run "
                          "'devbox trust' to allow it",
                          proj->root, PROFILE_FILE, list);
}

/* guest/init-env.c: the environment of one command (EXEC).
 *
 * An ordinary command gets the init's defaults (PATH, HOME, SHELL, USER, LOGNAME, HOSTNAME, the
 * CA variables, LANG, TZ, ENTR_INOTIFY_WORKAROUND), the plan's env (the profile's [env], the
 * image's Env, the proxy variables) and the request's own env, each later source winning over the
 * earlier ones; then $HOME/.local/bin and $HOME/bin go ahead of PATH (path_add_home).
 *
 * An administrative command (DBX_EXEC_ADMIN) runs as root with DBX_CAPS_ADMIN, while the
 * profile's [env] is the repository's: `PATH = /work/repo/.venv/bin:/usr/bin` (no widening, so
 * no trust asked) would let the box user plant an `apt-get` that `devbox exec --admin -- apt-get`
 * then runs as root, and LD_PRELOAD or PYTHONPATH would do the same to any program.  So it
 * starts from a clean environment as sudo's env_reset and secure_path do: the fixed PATH,
 * HOME=/root, USER and LOGNAME root, root's SHELL, HOSTNAME, the CA, locale and time zone
 * variables, ENTR_INOTIFY_WORKAROUND, the plan's proxy variables only (the network policy's, needed
 * to reach anything in allowlist mode), and the request's env, which the person at the host typed
 * (-e, TERM, setup's DEBIAN_FRONTEND). */
#define _GNU_SOURCE
#include "init-internal.h"

#include <limits.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The plan's variables an administrative command keeps, in lower and upper case. */
static const char *const admin_plan_keys[] = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"};

static bool env_has_key(char *const *env, size_t n, const char *kv) {
    size_t k = (size_t)(strchr(kv, '=') - kv) + 1; /* compare "KEY=" */
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], kv, k) == 0) return true;
    return false;
}

/* kv's key is one of admin_plan_keys, all lower or all upper case. */
static bool admin_keeps(const char *kv) {
    size_t k = (size_t)(strchr(kv, '=') - kv);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(admin_plan_keys); i++) {
        const char *key = admin_plan_keys[i];
        if (strlen(key) != k) continue;
        bool lower = true, upper = true;
        for (size_t j = 0; j < k; j++) {
            lower &= kv[j] == key[j];
            upper &= kv[j] == (key[j] == '_' ? '_' : key[j] - 'a' + 'A');
        }
        if (lower || upper) return true;
    }
    return false;
}

/* Whether PATH's value has dir as one of its entries. */
static bool path_has(const char *path, const char *dir) {
    size_t dl = strlen(dir);
    for (const char *d = path;;) {
        const char *end = strchrnul(d, ':');
        if ((size_t)(end - d) == dl && strncmp(d, dir, dl) == 0) return true;
        if (*end == '\0') return false;
        d = end + 1;
    }
}

/* $HOME/.local/bin and $HOME/bin ahead of PATH, as Debian's ~/.profile puts them for a login
 * shell: `pip install --user`, pipx, `npm install -g --prefix ~/.local`, uv and cargo-style
 * installers put their tools there, and a user (or an agent) who installed one in the box then
 * runs it with `devbox exec -- TOOL`, which is no login shell.  Put there whether they exist or
 * not (checking would have PID 1 stat a path the box user controls), so a tool installed by the
 * same command is found too; a missing directory costs the PATH search one stat.  Not for a
 * login shell (`devbox enter`), whose ~/.profile adds them itself, nor an administrative command
 * (a fixed PATH, as sudo's secure_path), nor a PATH the request gave (typed on the host).  HOME is
 * the final one (the plan's [env] may set it), as the shell's $HOME; none that cannot be a PATH
 * entry (relative, "/", with a ':'). */
static void path_add_home(char **env) {
    const char *home = NULL;
    char **path = NULL;
    for (size_t i = 0; env[i]; i++) {
        if (dbx_str_has_prefix(env[i], "HOME=")) home = env[i] + 5;
        if (dbx_str_has_prefix(env[i], "PATH=")) path = &env[i];
    }
    if (!home || !path || home[0] != '/' || home[1] == '\0' || strchr(home, ':')) return;
    size_t hl = strlen(home);
    while (hl > 1 && home[hl - 1] == '/')
        hl--;
    if (hl == 1) return; /* "//": "/" by another name */
    _cleanup_free_ char *local = dbx_xasprintf("%.*s/.local/bin", (int)hl, home);
    _cleanup_free_ char *bin = dbx_xasprintf("%.*s/bin", (int)hl, home);
    const char *old = *path + 5;
    bool has_local = path_has(old, local), has_bin = path_has(old, bin);
    if (has_local && has_bin) return;
    /* (an empty PATH stays without a trailing ':', which would add the current directory) */
    char *v =
        dbx_xasprintf("PATH=%s%s%s%s%s", has_local ? "" : local, !has_local && !has_bin ? ":" : "",
                      has_bin ? "" : bin, old[0] ? ":" : "", old);
    free(*path);
    *path = v;
}

char **exec_env_build(const struct exec_ctx *ctx, const struct init_user *u,
                      const struct dbx_exec_req *req) {
    const struct dbx_plan *pl = &ctx->box->plan;
    bool admin = req->flags & DBX_EXEC_ADMIN;
    char host[HOST_NAME_MAX + 1] = "";
    const char *hn = ctx->hostname && ctx->hostname[0] ? ctx->hostname : host;
    if (hn == host && gethostname(host, sizeof(host) - 1) < 0) host[0] = '\0';
    /* the plan's entries this command gets: all of them, or the proxy variables for admin */
    _cleanup_free_ char **plan = dbx_xcalloc(pl->nenv + 1, sizeof(char *));
    size_t np = 0;
    for (uint32_t i = 0; i < pl->nenv; i++)
        if (strchr(pl->env[i], '=') && (!admin || admin_keeps(pl->env[i]))) plan[np++] = pl->env[i];
    /* The CA variables, for the files init-ca.c wrote: OpenSSL, Python requests, curl and git
     * read a bundle of their own choosing, so they get the system bundle plus the host's CAs;
     * Node.js adds a file of extra CAs to its built-in ones. */
    bool pem = ctx->ca & CA_HAS_DEVBOX_PEM, crt = ctx->ca & CA_HAS_HOST_CRT;
    const char *name = admin ? "root" : u->name;
    char *defs[] = {
        dbx_xstrdup("PATH=" DEFAULT_PATH),
        dbx_xasprintf("HOME=%s", admin     ? "/root"
                                 : u->home ? u->home
                                           : "/"),
        dbx_xasprintf("SHELL=%s", u->shell ? u->shell : "/bin/sh"),
        name ? dbx_xasprintf("USER=%s", name) : NULL,
        name ? dbx_xasprintf("LOGNAME=%s", name) : NULL,
        dbx_xasprintf("HOSTNAME=%s", hn),
        pem ? dbx_xstrdup("SSL_CERT_FILE=" CA_DEVBOX_PEM) : NULL,
        pem ? dbx_xstrdup("REQUESTS_CA_BUNDLE=" CA_DEVBOX_PEM) : NULL,
        pem ? dbx_xstrdup("CURL_CA_BUNDLE=" CA_DEVBOX_PEM) : NULL,
        pem ? dbx_xstrdup("GIT_SSL_CAINFO=" CA_DEVBOX_PEM) : NULL,
        crt ? dbx_xstrdup("NODE_EXTRA_CA_CERTS=" CA_HOST_CRT) : NULL,
        /* UTF-8 and the host's time zone (init-locale.c) */
        ctx->lang ? dbx_xasprintf("LANG=%s", ctx->lang) : NULL,
        ctx->tz ? dbx_xasprintf("TZ=%s", ctx->tz) : NULL,
        /* entr follows a file's CLOSE_WRITE, never its MODIFY, unless this is set (its own
         * switch for file systems that raise no close-write, since entr 4.4): a host edit made
         * in place reaches the box's watchers as an IN_MODIFY only (init-watch.c says why), so
         * without it `ls *.c | entr make` in the box never reran for a host edit made in
         * place (nano's save, a shell's `>>`), only for a save by rename.  entr says "broken
         * inotify workaround enabled" as it starts. */
        dbx_xstrdup("ENTR_INOTIFY_WORKAROUND=1"),
    };
    char **v = dbx_xcalloc(DBX_ARRAY_SIZE(defs) + np + req->envc + 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(defs); i++) {
        if (defs[i] && !env_has_key(req->env, req->envc, defs[i]) &&
            !env_has_key(plan, np, defs[i]))
            v[n++] = defs[i];
        else
            free(defs[i]);
    }
    for (size_t i = 0; i < np; i++)
        if (!env_has_key(req->env, req->envc, plan[i])) v[n++] = dbx_xstrdup(plan[i]);
    for (uint32_t i = 0; i < req->envc; i++)
        v[n++] = dbx_xstrdup(req->env[i]);
    if (!admin && req->argc > 0 && !env_has_key(req->env, req->envc, "PATH=")) path_add_home(v);
    return v;
}

void exec_env_terminfo(char ***env) {
    for (char **e = *env; e && *e; e++) {
        if (!dbx_str_has_prefix(*e, "TERMINFO_DIRS=")) continue;
        if (path_has(*e + 14, TERMINFO_RUN_DIR)) return;
        /* after the entries the command's environment named, which come first (an empty value
         * named none: the system's directories stay, after ours) */
        char *v = (*e)[14] ? dbx_xasprintf("%s:" TERMINFO_RUN_DIR, *e)
                           : dbx_xstrdup("TERMINFO_DIRS=" TERMINFO_RUN_DIR ":");
        free(*e);
        *e = v;
        return;
    }
    /* the empty entry after it: the system's directories, as before */
    *env = dbx_strv_push(*env, "TERMINFO_DIRS=" TERMINFO_RUN_DIR ":");
}

const char *exec_env_get(char *const *env, const char *key) {
    size_t k = strlen(key);
    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], key, k) == 0 && env[i][k] == '=') return env[i] + k + 1;
    return NULL;
}

const char *exec_env_path(char *const *env) {
    const char *path = exec_env_get(env, "PATH");
    return path ? path : DEFAULT_PATH;
}

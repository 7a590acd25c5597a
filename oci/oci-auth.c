/* oci/oci-auth.c: where credentials may go.  WWW-Authenticate challenges, the token realm rule,
 * the redirect rule, and credentials from the user's docker config.json (auths, credsStore,
 * credHelpers).  Credentials and tokens go only to the registry's own origin (R7). */
#define _GNU_SOURCE
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "common/spawn.h"
#include "oci/oci-internal.h"

#define CONFIG_MAX (1u << 20)
#define HELPER_OUT_MAX (64u << 10)
#define HELPER_TIMEOUT_MS 30000

/* ---- challenges --------------------------------------------------------------------------- */

void oci_challenge_clear(struct oci_challenge *c) {
    if (!c) return;
    free(c->scheme);
    free(c->realm);
    free(c->service);
    free(c->scope);
    *c = (struct oci_challenge){0};
}

/* Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="..." */
int oci_challenge_parse(const char *hdr, struct oci_challenge *ret) {
    struct oci_challenge c = {0};
    const char *p = hdr;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t");
    if (n == 0 || n > 16) return -EINVAL;
    c.scheme = dbx_xstrndup(p, n);
    for (char *q = c.scheme; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    if (strcmp(c.scheme, "bearer") && strcmp(c.scheme, "basic")) {
        oci_challenge_clear(&c);
        return -EINVAL;
    }
    p += n;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p) break;
        size_t kn = strcspn(p, "= \t,");
        if (p[kn] != '=') break; /* a second challenge or junk: stop at the first */
        _cleanup_free_ char *key = dbx_xstrndup(p, kn);
        p += kn + 1;
        _cleanup_free_ char *val = NULL;
        if (*p == '"') {
            p++;
            size_t cap = strlen(p) + 1, vn = 0;
            val = dbx_xmalloc(cap);
            while (*p && *p != '"') {
                if (*p == '\\' && p[1]) p++;
                val[vn++] = *p++;
            }
            val[vn] = '\0';
            if (*p != '"') {
                oci_challenge_clear(&c);
                return -EINVAL;
            }
            p++;
        } else {
            size_t vn = strcspn(p, ", \t");
            val = dbx_xstrndup(p, vn);
            p += vn;
        }
        char **slot = !strcasecmp(key, "realm")     ? &c.realm
                      : !strcasecmp(key, "service") ? &c.service
                      : !strcasecmp(key, "scope")   ? &c.scope
                                                    : NULL;
        if (slot && !*slot) *slot = TAKE_PTR(val);
    }
    if (!strcmp(c.scheme, "bearer") && !c.realm) {
        oci_challenge_clear(&c);
        return -EINVAL;
    }
    *ret = c;
    return 0;
}

/* ---- URLs --------------------------------------------------------------------------------- */

static char *url_part(CURLU *u, CURLUPart part) {
    char *v = NULL;
    if (curl_url_get(u, part, &v, 0) != CURLUE_OK) return NULL;
    char *r = dbx_xstrdup(v);
    curl_free(v);
    return r;
}

static CURLU *url_parse(const char *url) {
    CURLU *u = curl_url();
    if (!u) dbx_oom_hook();
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        return NULL;
    }
    return u;
}

char *oci_url_host(const char *url) {
    CURLU *u = url_parse(url);
    if (!u) return NULL;
    char *h = url_part(u, CURLUPART_HOST);
    curl_url_cleanup(u);
    if (!h) return NULL;
    if (h[0] == '[') { /* [::1] -> ::1 */
        memmove(h, h + 1, strlen(h));
        h[strcspn(h, "]")] = '\0';
    }
    for (char *q = h; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    return h;
}

char *oci_url_origin(const char *url) {
    CURLU *u = url_parse(url);
    if (!u) return NULL;
    _cleanup_free_ char *scheme = url_part(u, CURLUPART_SCHEME);
    _cleanup_free_ char *host = url_part(u, CURLUPART_HOST);
    char *port = NULL;
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) port = NULL;
    _cleanup_free_ char *user = url_part(u, CURLUPART_USER);
    curl_url_cleanup(u);
    char *r = NULL;
    /* userinfo in a URL we are told to follow is a way to smuggle credentials: refuse */
    if (scheme && host && port && !user) {
        for (char *q = host; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        r = dbx_xasprintf("%s://%s:%s", scheme, host, port);
    }
    curl_free(port);
    return r;
}

static char *hostport_host(const char *hostport) {
    if (hostport[0] == '[') {
        const char *e = strchr(hostport, ']');
        return dbx_xstrndup(hostport + 1, e ? (size_t)(e - hostport - 1) : strlen(hostport + 1));
    }
    char *h = dbx_xstrndup(hostport, strcspn(hostport, ":"));
    for (char *q = h; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    return h;
}

int oci_realm_check(const char *registry_host, bool plain_ok, const char *realm, bool *ret_basic,
                    dbx_error **err) {
    _cleanup_free_ char *origin = oci_url_origin(realm);
    _cleanup_free_ char *rhost = oci_url_host(realm);
    if (!origin || !rhost)
        return dbx_error_setx(err, EINVAL, "invalid token realm '%.200s'", realm);
    _cleanup_free_ char *reg = hostport_host(registry_host);
    bool same_host = !strcmp(reg, rhost);
    if (dbx_str_has_prefix(origin, "http://")) {
        if (!plain_ok || !same_host)
            return dbx_error_setx(err, EPERM,
                                  "token realm '%.200s' is plain http on another host than the "
                                  "registry: refused",
                                  realm);
    } else if (!dbx_str_has_prefix(origin, "https://")) {
        return dbx_error_setx(err, EPERM, "token realm '%.200s' is not https: refused", realm);
    }
    *ret_basic =
        same_host || (!strcmp(reg, "registry-1.docker.io") && !strcmp(rhost, "auth.docker.io"));
    return 0;
}

int oci_redirect_check(const char *origin, const char *from, const char *location, char **ret_url,
                       bool *ret_auth, dbx_error **err) {
    CURLU *u = url_parse(from);
    if (!u) return dbx_error_setx(err, EINVAL, "invalid URL '%.200s'", from);
    /* a relative Location resolves against the URL it came from */
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, location, 0);
    _cleanup_free_ char *url = rc == CURLUE_OK ? url_part(u, CURLUPART_URL) : NULL;
    curl_url_cleanup(u);
    if (!url) return dbx_error_setx(err, EINVAL, "invalid redirect location '%.200s'", location);
    _cleanup_free_ char *to = oci_url_origin(url);
    if (!to) return dbx_error_setx(err, EPERM, "refused redirect to '%.200s'", location);
    bool same = !strcmp(to, origin);
    if (dbx_str_has_prefix(to, "http://")) {
        _cleanup_free_ char *h = oci_url_host(url);
        _cleanup_free_ char *hp =
            h && strchr(h, ':') ? dbx_xasprintf("[%s]", h) : dbx_xstrdup(h ? h : "");
        if (!same || !oci_host_is_loopback(hp))
            return dbx_error_setx(err, EPERM, "refused redirect to plain http '%.200s'", url);
    } else if (!dbx_str_has_prefix(to, "https://")) {
        return dbx_error_setx(err, EPERM, "refused redirect to '%.200s'", url);
    }
    *ret_auth = same;
    *ret_url = TAKE_PTR(url);
    return 0;
}

/* ---- docker config.json ------------------------------------------------------------------- */

/* The keys docker itself writes for a registry: "host", "https://host", "http://host/v1/"... */
static bool auth_key_matches(const char *key, const char *domain) {
    const char *k = key;
    if (dbx_str_has_prefix(k, "https://"))
        k += 8;
    else if (dbx_str_has_prefix(k, "http://"))
        k += 7;
    size_t n = strcspn(k, "/");
    if (!strcmp(domain, "docker.io")) {
        static const char *const hub[] = {"index.docker.io", "docker.io", "registry-1.docker.io"};
        for (size_t i = 0; i < DBX_ARRAY_SIZE(hub); i++)
            if (strlen(hub[i]) == n && !strncasecmp(k, hub[i], n)) return true;
        return false;
    }
    return strlen(domain) == n && !strncasecmp(k, domain, n);
}

static int decode_auth(const char *b64, char **ret_user, char **ret_secret) {
    size_t n = strlen(b64);
    if (n == 0 || n > 16384) return -EINVAL;
    _cleanup_free_ unsigned char *out = dbx_xmalloc(n + 1);
    int m = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
    if (m < 0) return -EINVAL;
    while (m > 0 && b64[n - 1] == '=' && out[m - 1] == '\0')
        m--, n--; /* padding */
    out[m] = '\0';
    char *colon = memchr(out, ':', (size_t)m);
    if (!colon || strlen((char *)out) != (size_t)m) return -EINVAL;
    *ret_user = dbx_xstrndup((char *)out, (size_t)(colon - (char *)out));
    *ret_secret = dbx_xstrdup(colon + 1);
    return 0;
}

static bool helper_name_valid(const char *s) {
    if (!*s || strlen(s) > 64) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') return false;
    return true;
}

/* Write input to the helper, read at most HELPER_OUT_MAX of its stdout, within the timeout. */
static int helper_io(int in, int out, const char *input, char **ret, size_t *ret_len) {
    size_t inlen = strlen(input), inoff = 0, len = 0;
    _cleanup_free_ char *buf = dbx_xmalloc(HELPER_OUT_MAX + 1);
    uint64_t deadline = dbx_now_ms() + HELPER_TIMEOUT_MS;
    while (out >= 0) {
        struct pollfd p[2] = {{out, POLLIN, 0}, {in, POLLOUT, 0}};
        uint64_t now = dbx_now_ms();
        if (now >= deadline) return -ETIMEDOUT;
        int r = poll(p, in >= 0 ? 2 : 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (in >= 0 && p[1].revents) {
            ssize_t w = write(in, input + inoff, inlen - inoff);
            if (w > 0) inoff += (size_t)w;
            if (w < 0 || inoff == inlen) {
                close(in);
                in = -1;
            }
        }
        if (p[0].revents) {
            ssize_t rd = read(out, buf + len, HELPER_OUT_MAX - len);
            if (rd < 0 && errno == EINTR) continue;
            if (rd <= 0) break;
            len += (size_t)rd;
            if (len == HELPER_OUT_MAX) return -E2BIG;
        }
    }
    if (in >= 0) close(in);
    buf[len] = '\0';
    *ret = TAKE_PTR(buf);
    *ret_len = len;
    return 0;
}

/* docker-credential-NAME get, the server on stdin; environment: PATH and HOME only. */
static int run_helper(const char *name, const char *server, char **ret_user, char **ret_secret,
                      dbx_error **err) {
    if (!helper_name_valid(name))
        return dbx_error_setx(err, EINVAL, "invalid credential helper name '%.64s'", name);
    _cleanup_free_ char *prog = dbx_xasprintf("docker-credential-%s", name);
    const char *path = getenv("PATH"), *home = getenv("HOME");
    _cleanup_free_ char *envpath =
        dbx_xasprintf("PATH=%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
    _cleanup_free_ char *envhome = home ? dbx_xasprintf("HOME=%s", home) : NULL;
    char *envp[] = {envpath, envhome, NULL};
    char *argv[] = {prog, (char *)"get", NULL};
    int pin[2], pout[2];
    if (pipe2(pin, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    if (pipe2(pout, O_CLOEXEC) < 0) {
        close(pin[0]), close(pin[1]);
        return dbx_error_set(err, errno, "pipe");
    }
    const struct dbx_spawn_fd fds[] = {{0, pin[0]}, {1, pout[1]}, {2, DBX_SPAWN_DEVNULL}};
    const struct dbx_spawn sp = {
        .argv = argv, .envp = envp, .search_path = true, .fds = fds, .nfds = DBX_ARRAY_SIZE(fds)};
    pid_t pid = -1;
    if (dbx_spawn(&sp, &pid, err) < 0) {
        close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]);
        return dbx_error_wrap(err, "credential helper '%s' failed to run", prog);
    }
    close(pin[0]);
    close(pout[1]);
    /* A helper that exits without reading must give EPIPE, not kill us; the caller's own
     * SIGPIPE disposition is put back afterwards (library code). */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &ign, &old);
    _cleanup_free_ char *out = NULL;
    size_t len = 0;
    int r = helper_io(pin[1], pout[0], server, &out, &len);
    sigaction(SIGPIPE, &old, NULL);
    close(pout[0]);
    if (r < 0) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (r < 0) return dbx_error_set(err, -r, "credential helper '%s'", prog);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
        return dbx_error_setx(err, ENOENT, "credential helper '%s' failed to run", prog);
    if (WEXITSTATUS(status) != 0) return 0; /* "credentials not found in native keychain" */
    json_error_t je;
    json_t *j = json_loadb(out, len, JSON_REJECT_DUPLICATES, &je);
    json_t *u = json_object_get(j, "Username"), *s = json_object_get(j, "Secret");
    if (!json_is_string(u) || !json_is_string(s)) {
        json_decref(j);
        return dbx_error_setx(err, EINVAL, "credential helper '%s': unexpected output", prog);
    }
    /* "<token>" marks an identity token (OAuth refresh flow), which we do not speak */
    r = strcmp(json_string_value(u), "<token>") ? 1 : 0;
    if (r) {
        *ret_user = dbx_xstrdup(json_string_value(u));
        *ret_secret = dbx_xstrdup(json_string_value(s));
    }
    json_decref(j);
    return r;
}

/* credHelpers for the registry, else auths, else credsStore: 1 found, 0 none, < 0 error. */
static int creds_from_config(json_t *j, const char *path, const char *domain, char **ret_user,
                             char **ret_secret, dbx_error **err) {
    const char *server = !strcmp(domain, "docker.io") ? "https://index.docker.io/v1/" : domain;
    json_t *helpers = json_object_get(j, "credHelpers"), *v;
    const char *key;
    json_object_foreach(helpers, key, v) {
        if (json_is_string(v) && auth_key_matches(key, domain))
            return run_helper(json_string_value(v), server, ret_user, ret_secret, err);
    }
    json_t *auths = json_object_get(j, "auths");
    json_object_foreach(auths, key, v) {
        if (!auth_key_matches(key, domain) || !json_is_object(v)) continue;
        json_t *a = json_object_get(v, "auth");
        json_t *user = json_object_get(v, "username"), *pass = json_object_get(v, "password");
        if (json_is_string(a) && json_string_length(a) > 0) {
            if (decode_auth(json_string_value(a), ret_user, ret_secret) < 0)
                return dbx_error_setx(err, EINVAL, "%s: invalid 'auth' for '%s'", path, key);
            return 1;
        }
        if (json_is_string(user) && json_is_string(pass)) {
            *ret_user = dbx_xstrdup(json_string_value(user));
            *ret_secret = dbx_xstrdup(json_string_value(pass));
            return 1;
        }
    }
    json_t *store = json_object_get(j, "credsStore");
    if (json_is_string(store) && json_string_length(store) > 0)
        return run_helper(json_string_value(store), server, ret_user, ret_secret, err);
    return 0;
}

static char *default_config_path(void) {
    const char *d = getenv("DOCKER_CONFIG");
    if (d && *d) return dbx_xasprintf("%s/config.json", d);
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    return dbx_xasprintf("%s/.docker/config.json", home);
}

int oci_creds_lookup(const char *config_path, const char *domain, char **ret_user,
                     char **ret_secret, dbx_error **err) {
    _cleanup_free_ char *def = config_path ? NULL : default_config_path();
    const char *path = config_path ? config_path : def;
    if (!path) return 0;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, path, CONFIG_MAX, &buf, &len, &e) < 0) {
        bool missing = e->code == ENOENT;
        if (missing) {
            dbx_error_free(&e);
            return 0;
        }
        if (err)
            *err = e;
        else
            dbx_error_free(&e);
        return -1;
    }
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return dbx_error_setx(err, EINVAL, "%s:%d:%d: %s", path, je.line, je.column,
                              j ? "not a JSON object" : je.text);
    }
    int r = creds_from_config(j, path, domain, ret_user, ret_secret, err);
    json_decref(j);
    if (r < 0) return dbx_error_wrap(err, "credentials for '%s'", domain);
    return r;
}

/* profiles/profiles-show.c: the effective profile for `devbox profile show [--json]`, each
 * value with where it came from.  The text form is itself valid devbox.ini syntax (lists one
 * entry per continuation line), with the origin as a `;` comment.  Strings come from files
 * checked for control bytes, but flags and the user's config are printed too: everything is
 * passed through dbx_sanitize_printable, and the JSON is ASCII-only. */
#define _GNU_SOURCE
#include "profiles-internal.h"

#include <jansson.h>

static const char *const seccomp_names[] = {"default", "strict", "unconfined"};
static const char *const net_names[] = {"none", "allowlist", "open"};

static const char *from(const struct profile *p, const char *key) {
    const char *w = profile_origin_of(p, key);
    return w ? w : "built-in default";
}

/* ---- text ---------------------------------------------------------------------------------- */

static void kv(FILE *f, const char *key, const char *value, const char *origin) {
    _cleanup_free_ char *line = dbx_xasprintf("%s = %s", key, value);
    _cleanup_free_ char *o = dbx_xstrdup(origin);
    dbx_sanitize_printable(line);
    dbx_sanitize_printable(o);
    fprintf(f, "%-44s ; %s\n", line, o);
}

static void kv_num(FILE *f, const char *key, uint64_t v, const char *none, const char *origin) {
    _cleanup_free_ char *s =
        v == 0 && none ? dbx_xstrdup(none) : dbx_xasprintf("%llu", (unsigned long long)v);
    kv(f, key, s, origin);
}

static void kv_size(FILE *f, const char *key, uint64_t v, const char *zero, const char *origin) {
    _cleanup_free_ char *s = v == UINT64_MAX  ? dbx_xstrdup("max")
                             : v == 0 && zero ? dbx_xstrdup(zero)
                                              : prof_size_str(v);
    kv(f, key, s, origin);
}

static char *caps_str(uint64_t caps) {
    _cleanup_free_ char *s = dbx_xstrdup("");
    for (int c = 0; c < 64; c++) {
        if (!(caps & (1ull << c)) || !profile_cap_name(c)) continue;
        char *t = dbx_xasprintf("%s%s%s", s, *s ? ", " : "", profile_cap_name(c));
        free(s);
        s = t;
    }
    return TAKE_PTR(s);
}

static void text_box_limits(FILE *f, const struct profile *p) {
    fprintf(f, "[box]\n");
    kv(f, "image", p->image, from(p, "box.image"));
    kv_num(f, "cpus", p->cpus, NULL, from(p, "box.cpus"));
    kv_size(f, "memory", p->memory, NULL, from(p, "box.memory"));
    kv_size(f, "disk", p->disk, "auto", from(p, "box.disk"));
    kv(f, "hostname", p->hostname, from(p, "box.hostname"));
    kv(f, "kernel", profile_kernel_name(p->kernel), from(p, "box.kernel"));
    fprintf(f, "\n[limits]\n");
    kv_size(f, "memory", p->mem_limit, "auto", from(p, "limits.memory"));
    kv_size(f, "swap", p->swap_limit, NULL, from(p, "limits.swap"));
    _cleanup_free_ char *cpu = p->cpu_milli ? prof_milli_str(p->cpu_milli) : dbx_xstrdup("none");
    kv(f, "cpu", cpu, from(p, "limits.cpu"));
    kv_num(f, "pids", p->pids, NULL, from(p, "limits.pids"));
    kv_num(f, "nofile", p->nofile, NULL, from(p, "limits.nofile"));
    kv_num(f, "nproc", p->nproc, "none", from(p, "limits.nproc"));
    kv_num(f, "io_weight", p->io_weight, "default", from(p, "limits.io_weight"));
}

static void text_list(FILE *f, const char *key, char *const *v, const char *origin) {
    fprintf(f, "%s =%*s ; %s\n", key, (int)(42 - strlen(key)), "", origin);
    for (size_t i = 0; v && v[i]; i++) {
        _cleanup_free_ char *s = dbx_sanitize_printable(dbx_xasprintf("    %s", v[i]));
        fprintf(f, "%s\n", s);
    }
}

/* network.allow, a used secret's hosts with the secret as their comment */
static void text_allow(FILE *f, const struct profile *p) {
    fprintf(f, "allow =%*s ; %s\n", 42 - 5, "", from(p, "network.allow"));
    for (size_t i = 0; p->allow && p->allow[i]; i++) {
        _cleanup_free_ char *k = dbx_xasprintf("network.allow[%s]", p->allow[i]);
        _cleanup_free_ char *s = dbx_sanitize_printable(dbx_xasprintf("    %s", p->allow[i]));
        const char *o = profile_origin_of(p, k);
        if (o)
            fprintf(f, "%-44s ; %s\n", s, o);
        else
            fprintf(f, "%s\n", s);
    }
}

/* [secrets] use: each name with its line, the kind of source and the hosts (config.ini's);
 * never the source itself (a command may hold anything) and never a value (none is here). */
static void text_secrets(FILE *f, const struct profile *p) {
    fprintf(f, "\n[secrets]\n");
    fprintf(f, "use =%*s ; %s\n", 42 - 3, "", from(p, "secrets.use"));
    for (size_t i = 0; i < p->nsecrets; i++) {
        const struct profile_secret *sc = &p->secrets[i];
        _cleanup_free_ char *k = dbx_xasprintf("secrets.use[%s]", sc->name);
        _cleanup_free_ char *h = prof_strv_join(sc->hosts);
        _cleanup_free_ char *o = dbx_sanitize_printable(
            dbx_xasprintf("%s; %s, sent to %s", from(p, k), profile_secret_from_name(sc->from), h));
        fprintf(f, "    %-40s ; %s\n", sc->name, o);
    }
}

/* Always shown, like [network]: the setup network's default matters even with no commands.
 * One command per continuation line, each with its own line as the comment: valid
 * devbox.ini that reads back as the same list. */
static void text_setup(FILE *f, const struct profile *p) {
    fprintf(f, "\n[setup]\n");
    fprintf(f, "run =%*s ; %s\n", 42 - 3, "", from(p, "setup.run"));
    for (size_t i = 0; p->setup_run && p->setup_run[i]; i++) {
        char k[32];
        snprintf(k, sizeof(k), "setup.run[%zu]", i + 1);
        _cleanup_free_ char *s = dbx_sanitize_printable(dbx_xasprintf("    %s", p->setup_run[i]));
        fprintf(f, "%-44s ; %s\n", s, from(p, k));
    }
    kv(f, "workspace", p->setup_workspace ? "true" : "false", from(p, "setup.workspace"));
    kv(f, "network", net_names[p->setup_net], from(p, "setup.network"));
    text_list(f, "allow", p->setup_allow, from(p, "setup.allow"));
    text_list(f, "resolve", p->setup_resolve, from(p, "setup.resolve"));
}

/* HOST = GUEST:ro|rw as written, the folder it resolved to in the comment */
static void text_mounts(FILE *f, const struct profile *p) {
    fprintf(f, "\n[mounts]\n");
    for (size_t i = 0; i < p->nmounts; i++) {
        const struct profile_mount *m = &p->mounts[i];
        _cleanup_free_ char *v = dbx_xasprintf("%s:%s", m->guest, m->rw ? "rw" : "ro");
        _cleanup_free_ char *o = dbx_xasprintf("%s:%u, host %s", m->file, m->line, m->host);
        kv(f, m->spec, v, o);
    }
}

char *profile_to_text(const struct profile *p) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f) dbx_oom_hook();
    fprintf(f, "# effective profile, sha256 %s\n", *p->hash ? p->hash : "(none: no devbox.ini)");
    if (p->files) {
        fprintf(f, "# files:");
        for (size_t i = 0; p->files[i]; i++) {
            _cleanup_free_ char *s = dbx_sanitize_printable(dbx_xstrdup(p->files[i]));
            fprintf(f, " %s", s);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
    text_box_limits(f, p);
    fprintf(f, "\n[security]\n");
    kv(f, "user", p->user, from(p, "security.user"));
    /* whom each list is for, next to where it came from */
    _cleanup_free_ char *caps = caps_str(p->caps), *caps_user = caps_str(p->caps_user);
    _cleanup_free_ char *o_caps =
        dbx_xasprintf("%s; uid 0 in the box only", from(p, "security.capabilities"));
    _cleanup_free_ char *o_user =
        dbx_xasprintf("%s; every user of the box", from(p, "security.capabilities_user"));
    kv(f, "capabilities", caps, o_caps);
    kv(f, "capabilities_user", caps_user, o_user);
    kv(f, "seccomp", seccomp_names[p->seccomp], from(p, "security.seccomp"));
    kv(f, "no_new_privileges", p->no_new_privs ? "true" : "false",
       from(p, "security.no_new_privileges"));
    kv(f, "aslr", p->aslr_on ? "on" : "auto", from(p, "security.aslr"));
    fprintf(f, "\n[workspace]\nprotect =\n");
    for (size_t i = 0; p->protect && p->protect[i]; i++) {
        _cleanup_free_ char *k = dbx_xasprintf("workspace.protect[%s]", p->protect[i]);
        _cleanup_free_ char *s = dbx_xasprintf("    %s", p->protect[i]);
        fprintf(f, "%-44s ; %s\n", dbx_sanitize_printable(s), from(p, k));
    }
    for (size_t i = 0; i < p->norigin; i++)
        if (dbx_str_has_prefix(p->origin[i].key, "workspace.unprotect[")) {
            _cleanup_free_ char *s = dbx_xstrdup(p->origin[i].key + strlen("workspace.unprotect["));
            s[strlen(s) - 1] = '\0';
            _cleanup_free_ char *c = dbx_xasprintf("# unprotected: %s", s);
            fprintf(f, "%-44s ; %s\n", dbx_sanitize_printable(c), p->origin[i].where);
        }
    fprintf(f, "\n[env]\n");
    for (size_t i = 0; p->env && p->env[i]; i++) {
        _cleanup_free_ char *k = dbx_xstrndup(p->env[i], strcspn(p->env[i], "="));
        _cleanup_free_ char *ok = dbx_xasprintf("env.%s", k);
        kv(f, k, p->env[i] + strlen(k) + 1, from(p, ok));
    }
    fprintf(f, "\n[network]\n");
    kv(f, "mode", net_names[p->net_mode], from(p, "network.mode"));
    text_allow(f, p);
    text_list(f, "resolve", p->resolve, from(p, "network.resolve"));
    text_secrets(f, p);
    fprintf(f, "\n[ports]\n");
    for (size_t i = 0; i < p->nports; i++) {
        char k[16], v[16], ok[32];
        snprintf(k, sizeof(k), "%u", p->ports[i].host);
        snprintf(v, sizeof(v), "%u", p->ports[i].guest);
        snprintf(ok, sizeof(ok), "ports.%u", p->ports[i].host);
        kv(f, k, v, from(p, ok));
    }
    text_setup(f, p);
    text_mounts(f, p);
    if (fclose(f) != 0) dbx_oom_hook();
    return out;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

/* json_string refuses invalid UTF-8 (flags and env values may hold any bytes): '?' them. */
static json_t *jstr(const char *s) {
    json_t *j = json_string(s);
    if (j) return j;
    _cleanup_free_ char *c = dbx_xstrdup(s);
    for (unsigned char *u = (unsigned char *)c; *u; u++)
        if (*u >= 0x80) *u = '?';
    j = json_string(c);
    if (!j) dbx_oom_hook();
    return j;
}

static void jset(json_t *obj, const char *key, json_t *value, const char *origin) {
    json_t *o = json_object();
    json_object_set_new(o, "value", value);
    json_object_set_new(o, "from", jstr(origin));
    json_object_set_new(obj, key, o);
}

static json_t *jstrv(char *const *v) {
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, jstr(v[i]));
    return a;
}

static json_t *json_box_limits(const struct profile *p, json_t *root) {
    json_t *box = json_object(), *lim = json_object();
    jset(box, "image", jstr(p->image), from(p, "box.image"));
    jset(box, "cpus", json_integer(p->cpus), from(p, "box.cpus"));
    jset(box, "memory", json_integer((json_int_t)p->memory), from(p, "box.memory"));
    jset(box, "disk", json_integer((json_int_t)p->disk), from(p, "box.disk"));
    jset(box, "hostname", jstr(p->hostname), from(p, "box.hostname"));
    jset(box, "kernel", jstr(profile_kernel_name(p->kernel)), from(p, "box.kernel"));
    json_object_set_new(root, "box", box);
    jset(lim, "memory", json_integer((json_int_t)p->mem_limit), from(p, "limits.memory"));
    jset(lim, "swap",
         p->swap_limit == UINT64_MAX ? jstr("max") : json_integer((json_int_t)p->swap_limit),
         from(p, "limits.swap"));
    jset(lim, "cpu", json_real(p->cpu_milli / 1000.0), from(p, "limits.cpu"));
    jset(lim, "pids", json_integer(p->pids), from(p, "limits.pids"));
    jset(lim, "nofile", json_integer((json_int_t)p->nofile), from(p, "limits.nofile"));
    jset(lim, "nproc", json_integer((json_int_t)p->nproc), from(p, "limits.nproc"));
    jset(lim, "io_weight", json_integer(p->io_weight), from(p, "limits.io_weight"));
    json_object_set_new(root, "limits", lim);
    return root;
}

static json_t *json_paths(const struct profile *p, const char *prefix, char *const *only) {
    json_t *a = json_array();
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < p->norigin; i++) {
        const char *k = p->origin[i].key;
        if (strncmp(k, prefix, pl) != 0) continue;
        _cleanup_free_ char *path = dbx_xstrndup(k + pl, strlen(k + pl) - 1);
        if (only && !prof_strv_contains(only, path)) continue;
        json_t *o = json_object();
        json_object_set_new(o, "value", jstr(path));
        json_object_set_new(o, "from", jstr(p->origin[i].where));
        json_array_append_new(a, o);
    }
    return a;
}

/* {"run": {"value": [{"value": CMD, "from": LINE}...], "from"}, "network", "allow", "resolve"} */
static json_t *json_setup(const struct profile *p) {
    json_t *setup = json_object(), *run = json_array();
    for (size_t i = 0; p->setup_run && p->setup_run[i]; i++) {
        char k[32];
        snprintf(k, sizeof(k), "setup.run[%zu]", i + 1);
        json_t *o = json_object();
        json_object_set_new(o, "value", jstr(p->setup_run[i]));
        json_object_set_new(o, "from", jstr(from(p, k)));
        json_array_append_new(run, o);
    }
    jset(setup, "run", run, from(p, "setup.run"));
    jset(setup, "workspace", json_boolean(p->setup_workspace), from(p, "setup.workspace"));
    jset(setup, "network", jstr(net_names[p->setup_net]), from(p, "setup.network"));
    jset(setup, "allow", jstrv(p->setup_allow), from(p, "setup.allow"));
    jset(setup, "resolve", jstrv(p->setup_resolve), from(p, "setup.resolve"));
    return setup;
}

/* {"use": {"value": [{"name", "from", "source": "env"|"file"|"command", "hosts"}], "from"}} */
static json_t *json_secrets(const struct profile *p) {
    json_t *o = json_object(), *use = json_array();
    for (size_t i = 0; i < p->nsecrets; i++) {
        const struct profile_secret *sc = &p->secrets[i];
        _cleanup_free_ char *k = dbx_xasprintf("secrets.use[%s]", sc->name);
        json_t *e = json_object();
        json_object_set_new(e, "name", jstr(sc->name));
        json_object_set_new(e, "from", jstr(from(p, k)));
        json_object_set_new(e, "source", jstr(profile_secret_from_name(sc->from)));
        json_object_set_new(e, "hosts", jstrv(sc->hosts));
        json_array_append_new(use, e);
    }
    jset(o, "use", use, from(p, "secrets.use"));
    return o;
}

static json_t *json_mounts(const struct profile *p) {
    json_t *a = json_array();
    for (size_t i = 0; i < p->nmounts; i++) {
        const struct profile_mount *m = &p->mounts[i];
        _cleanup_free_ char *o = dbx_xasprintf("%s:%u", m->file, m->line);
        json_t *j = json_object();
        json_object_set_new(j, "path", jstr(m->spec));
        json_object_set_new(j, "host", jstr(m->host));
        json_object_set_new(j, "guest", jstr(m->guest));
        json_object_set_new(j, "mode", json_string(m->rw ? "rw" : "ro"));
        json_object_set_new(j, "in_repo", json_boolean(m->in_repo));
        json_object_set_new(j, "from", jstr(o));
        json_array_append_new(a, j);
    }
    return a;
}

char *profile_to_json(const struct profile *p) {
    json_t *root = json_object();
    json_object_set_new(root, "hash", jstr(p->hash));
    json_object_set_new(root, "files", jstrv(p->files));
    json_box_limits(p, root);
    json_t *sec = json_object();
    jset(sec, "user", jstr(p->user), from(p, "security.user"));
    json_t *caps = json_array(), *caps_user = json_array();
    for (int c = 0; c < 64; c++) {
        if ((p->caps & (1ull << c)) && profile_cap_name(c))
            json_array_append_new(caps, jstr(profile_cap_name(c)));
        if ((p->caps_user & (1ull << c)) && profile_cap_name(c))
            json_array_append_new(caps_user, jstr(profile_cap_name(c)));
    }
    jset(sec, "capabilities", caps, from(p, "security.capabilities"));
    json_object_set_new(json_object_get(sec, "capabilities"), "applies_to", jstr("uid 0"));
    jset(sec, "capabilities_user", caps_user, from(p, "security.capabilities_user"));
    json_object_set_new(json_object_get(sec, "capabilities_user"), "applies_to", jstr("every uid"));
    jset(sec, "seccomp", jstr(seccomp_names[p->seccomp]), from(p, "security.seccomp"));
    jset(sec, "no_new_privileges", json_boolean(p->no_new_privs),
         from(p, "security.no_new_privileges"));
    jset(sec, "aslr", jstr(p->aslr_on ? "on" : "auto"), from(p, "security.aslr"));
    json_object_set_new(root, "security", sec);
    json_t *ws = json_object();
    json_object_set_new(ws, "protect", json_paths(p, "workspace.protect[", p->protect));
    json_object_set_new(ws, "unprotect", json_paths(p, "workspace.unprotect[", NULL));
    json_object_set_new(root, "workspace", ws);
    json_t *env = json_object();
    for (size_t i = 0; p->env && p->env[i]; i++) {
        _cleanup_free_ char *k = dbx_xstrndup(p->env[i], strcspn(p->env[i], "="));
        _cleanup_free_ char *ok = dbx_xasprintf("env.%s", k);
        jset(env, k, jstr(p->env[i] + strlen(k) + 1), from(p, ok));
    }
    json_object_set_new(root, "env", env);
    json_t *net = json_object();
    jset(net, "mode", jstr(net_names[p->net_mode]), from(p, "network.mode"));
    jset(net, "allow", jstrv(p->allow), from(p, "network.allow"));
    json_t *by_secret = json_object(); /* a used secret's hosts: {"host": "secret 'N' (...)"} */
    for (size_t i = 0; p->allow && p->allow[i]; i++) {
        _cleanup_free_ char *k = dbx_xasprintf("network.allow[%s]", p->allow[i]);
        const char *o = profile_origin_of(p, k);
        if (o) json_object_set_new(by_secret, p->allow[i], jstr(o));
    }
    json_object_set_new(json_object_get(net, "allow"), "secrets", by_secret);
    jset(net, "resolve", jstrv(p->resolve), from(p, "network.resolve"));
    json_object_set_new(root, "network", net);
    json_object_set_new(root, "secrets", json_secrets(p));
    json_t *ports = json_array();
    for (size_t i = 0; i < p->nports; i++) {
        char ok[32];
        snprintf(ok, sizeof(ok), "ports.%u", p->ports[i].host);
        json_t *o = json_object();
        json_object_set_new(o, "host", json_integer(p->ports[i].host));
        json_object_set_new(o, "guest", json_integer(p->ports[i].guest));
        json_object_set_new(o, "from", jstr(from(p, ok)));
        json_array_append_new(ports, o);
    }
    json_object_set_new(root, "ports", ports);
    json_object_set_new(root, "setup", json_setup(p));
    json_object_set_new(root, "mounts", json_mounts(p));
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (!s) dbx_oom_hook();
    return s;
}

/* ---- the user's own settings ------------------------------------------------------------- */

static const char *ufrom(const struct profile_user *u, const char *key) {
    for (size_t i = 0; u && i < u->norigin; i++)
        if (strcmp(u->origin[i].key, key) == 0) return u->origin[i].where;
    return "default";
}

/* idle_stop as config.ini would say it: the largest whole unit */
static char *idle_stop_text(uint32_t s) {
    if (s == 0) return dbx_xstrdup("0");
    if (s % 3600 == 0) return dbx_xasprintf("%uh", s / 3600);
    if (s % 60 == 0) return dbx_xasprintf("%um", s / 60);
    return dbx_xasprintf("%us", s);
}

/* What the caller (sandbox/) uses when config.ini does not set these (profiles.h). */
#define CA_FILES_DEFAULT "default: the host's /usr/local/share/ca-certificates"
#define SETUP_ALLOW_DEFAULT "default: the hosts of the host's apt sources"
#define PROXY_DEFAULT "default: the environment's https_proxy or http_proxy"
#define NO_PROXY_DEFAULT "default: the environment's no_proxy"

/* A [network] proxy for display: never its password. */
static char *proxy_shown(const char *url) {
    struct profile_proxy p;
    const char *why = NULL;
    if (profile_proxy_parse(url, &p, &why) < 0) return profile_proxy_redact(url);
    char *s = profile_proxy_display(&p);
    profile_proxy_clear(&p);
    return s;
}

/* An unset list the caller fills is a comment: `key =` would read back as "set, empty". */
static void text_user_list(FILE *f, const char *key, bool set, char *const *v, bool none,
                           const char *origin, const char *unset) {
    if (!set) {
        _cleanup_free_ char *c = dbx_xasprintf("# %s not set", key);
        fprintf(f, "%-44s ; %s\n", c, unset);
    } else if (!v && none) {
        kv(f, key, "none", origin);
    } else {
        text_list(f, key, v, origin);
    }
}

/* What a zero-filled or NULL struct means (the same as profile_widenings' ceilings). */
static void user_values(const struct profile_user *u, unsigned *cpus, uint64_t *mem, uint64_t *disk,
                        uint64_t *image_size, const char **listen) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    *cpus = u && u->max_cpus ? u->max_cpus : n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
    *mem = u && u->max_memory ? u->max_memory : 2ull << 30;
    *disk = u && u->max_disk ? u->max_disk : 16ull << 30;
    *image_size = u && u->max_image_size ? u->max_image_size : PROFILE_IMAGE_SIZE_DEFAULT;
    *listen = u && u->listen ? u->listen : PROFILE_LISTEN_DEFAULT;
}

/* A secret as config.ini declares it; a command is not shown (it may hold anything the user
 * typed, a value included), an environment variable's name and a file's path are. */
static void text_user_secret(FILE *f, const struct profile_user *u,
                             const struct profile_secret *sc) {
    _cleanup_free_ char *k = dbx_xasprintf("secret.%s", sc->name);
    _cleanup_free_ char *head = dbx_xasprintf("[secret %s]", sc->name);
    fprintf(f, "\n%-44s ; %s\n", head, ufrom(u, k));
    if (sc->from == PROFILE_SECRET_COMMAND)
        fprintf(f, "# source = command (not shown)\n");
    else
        kv(f, profile_secret_from_name(sc->from), sc->source, "the value is read at box start");
    text_list(f, "hosts", sc->hosts, ufrom(u, k));
    if (sc->header) kv(f, "header", sc->header, ufrom(u, k));
}

static json_t *json_user_secrets(const struct profile_user *u) {
    json_t *a = json_array();
    for (size_t i = 0; u && i < u->nsecrets; i++) {
        const struct profile_secret *sc = &u->secrets[i];
        _cleanup_free_ char *k = dbx_xasprintf("secret.%s", sc->name);
        json_t *e = json_object();
        json_object_set_new(e, "name", jstr(sc->name));
        json_object_set_new(e, "from", jstr(ufrom(u, k)));
        json_object_set_new(e, "source", jstr(profile_secret_from_name(sc->from)));
        if (sc->from != PROFILE_SECRET_COMMAND)
            json_object_set_new(e, profile_secret_from_name(sc->from), jstr(sc->source));
        json_object_set_new(e, "hosts", jstrv(sc->hosts));
        json_object_set_new(e, "header", sc->header ? jstr(sc->header) : json_null());
        json_array_append_new(a, e);
    }
    return a;
}

char *profile_user_to_text(const struct profile_user *u) {
    unsigned cpus;
    uint64_t mem, disk, image_size;
    const char *listen;
    user_values(u, &cpus, &mem, &disk, &image_size, &listen);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f) dbx_oom_hook();
    _cleanup_free_ char *path =
        dbx_sanitize_printable(dbx_xstrdup(u && u->path ? u->path : "(none: defaults)"));
    fprintf(f, "# user settings, %s\n\n[ceilings]\n", path);
    kv_num(f, "cpus", cpus, NULL, ufrom(u, "ceilings.cpus"));
    kv_size(f, "memory", mem, NULL, ufrom(u, "ceilings.memory"));
    kv_size(f, "disk", disk, NULL, ufrom(u, "ceilings.disk"));
    kv_size(f, "image_size", image_size, NULL, ufrom(u, "ceilings.image_size"));
    fprintf(f, "\n[registries]\n");
    text_list(f, "insecure", u ? u->registries_insecure : NULL, ufrom(u, "registries.insecure"));
    kv(f, "ca_file", u && u->registries_ca_file ? u->registries_ca_file : "",
       ufrom(u, "registries.ca_file"));
    fprintf(f, "\n[network]\n");
    kv(f, "listen", listen, ufrom(u, "network.listen"));
    if (u && u->proxy_set) {
        _cleanup_free_ char *shown = u->proxy ? proxy_shown(u->proxy) : dbx_xstrdup("none");
        kv(f, "proxy", shown, ufrom(u, "network.proxy"));
    } else {
        fprintf(f, "%-44s ; %s\n", "# proxy not set", PROXY_DEFAULT);
    }
    text_user_list(f, "no_proxy", u && u->no_proxy_set, u ? u->no_proxy : NULL, true,
                   ufrom(u, "network.no_proxy"), NO_PROXY_DEFAULT);
    text_user_list(f, "ca_files", u && u->ca_files_set, u ? u->ca_files : NULL, true,
                   ufrom(u, "network.ca_files"), CA_FILES_DEFAULT);
    fprintf(f, "\n[setup]\n");
    text_user_list(f, "allow", u && u->setup_allow_set, u ? u->setup_allow : NULL, false,
                   ufrom(u, "setup.allow"), SETUP_ALLOW_DEFAULT);
    fprintf(f, "\n[box]\n");
    kv(f, "kernel_autobuild", u && u->kernel_autobuild_off ? "false" : "true",
       ufrom(u, "box.kernel_autobuild"));
    _cleanup_free_ char *idle = idle_stop_text(u ? u->idle_stop_s : PROFILE_IDLE_STOP_DEFAULT);
    kv(f, "idle_stop", idle, ufrom(u, "box.idle_stop"));
    for (size_t i = 0; u && i < u->nsecrets; i++)
        text_user_secret(f, u, &u->secrets[i]);
    if (fclose(f) != 0) dbx_oom_hook();
    return out;
}

char *profile_user_to_json(const struct profile_user *u) {
    unsigned cpus;
    uint64_t mem, disk, image_size;
    const char *listen;
    user_values(u, &cpus, &mem, &disk, &image_size, &listen);
    json_t *root = json_object(), *ceil = json_object(), *reg = json_object(), *net = json_object();
    json_object_set_new(root, "path", u && u->path ? jstr(u->path) : json_null());
    jset(ceil, "cpus", json_integer(cpus), ufrom(u, "ceilings.cpus"));
    jset(ceil, "memory", json_integer((json_int_t)mem), ufrom(u, "ceilings.memory"));
    jset(ceil, "disk", json_integer((json_int_t)disk), ufrom(u, "ceilings.disk"));
    jset(ceil, "image_size", json_integer((json_int_t)image_size), ufrom(u, "ceilings.image_size"));
    json_object_set_new(root, "ceilings", ceil);
    jset(reg, "insecure", jstrv(u ? u->registries_insecure : NULL),
         ufrom(u, "registries.insecure"));
    jset(reg, "ca_file", u && u->registries_ca_file ? jstr(u->registries_ca_file) : json_null(),
         ufrom(u, "registries.ca_file"));
    json_object_set_new(root, "registries", reg);
    jset(net, "listen", jstr(listen), ufrom(u, "network.listen"));
    bool ca_set = u && u->ca_files_set, allow_set = u && u->setup_allow_set;
    jset(net, "ca_files", ca_set ? jstrv(u->ca_files) : json_null(),
         ca_set ? ufrom(u, "network.ca_files") : CA_FILES_DEFAULT);
    bool px_set = u && u->proxy_set, np_set = u && u->no_proxy_set;
    _cleanup_free_ char *px = px_set && u->proxy ? proxy_shown(u->proxy) : NULL;
    jset(net, "proxy",
         px       ? jstr(px)
         : px_set ? jstr("none")
                  : json_null(),
         px_set ? ufrom(u, "network.proxy") : PROXY_DEFAULT);
    jset(net, "no_proxy", np_set ? jstrv(u->no_proxy) : json_null(),
         np_set ? ufrom(u, "network.no_proxy") : NO_PROXY_DEFAULT);
    json_object_set_new(root, "network", net);
    json_t *setup = json_object();
    jset(setup, "allow", allow_set ? jstrv(u->setup_allow) : json_null(),
         allow_set ? ufrom(u, "setup.allow") : SETUP_ALLOW_DEFAULT);
    json_object_set_new(root, "setup", setup);
    json_t *box = json_object();
    jset(box, "kernel_autobuild", json_boolean(!(u && u->kernel_autobuild_off)),
         ufrom(u, "box.kernel_autobuild"));
    jset(box, "idle_stop_s", json_integer(u ? u->idle_stop_s : PROFILE_IDLE_STOP_DEFAULT),
         ufrom(u, "box.idle_stop"));
    json_object_set_new(root, "box", box);
    json_object_set_new(root, "secrets", json_user_secrets(u));
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!s) dbx_oom_hook();
    return s;
}

/* profiles/profiles-secrets.c: secrets the user declares in config.ini ([secret NAME]: where
 * the value comes from on the host, the hosts it may be sent to, the header it goes in) and
 * a repo profile's `[secrets] use`, which only asks for one by name.  A repo is code an agent
 * can edit, so it never says where a value comes from or where it may go: that would let it
 * name any file or command on the host, or send a key to a host it controls.  profiles/ never
 * reads a value (sandbox/ does, at box start). */
#define _GNU_SOURCE
#include "profiles-internal.h"

#include <ctype.h>

const char *profile_secret_from_name(enum profile_secret_from from) {
    static const char *const names[] = {"env", "file", "command"};
    return (size_t)from < DBX_ARRAY_SIZE(names) ? names[from] : "?";
}

bool prof_secret_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > PROFILE_MAX_SECRET_NAME) return false;
    if (!isalpha((unsigned char)s[0]) && s[0] != '_') return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return false;
    return true;
}

const char *prof_secret_section(const char *section) {
    if (strncmp(section, "secret ", 7) != 0) return NULL;
    return section + 7;
}

static const struct prof_user_key secret_keys[] = {
    {"secret", "env", 0},           {"secret", "file", 0},   {"secret", "command", 0},
    {"secret", "hosts", PROF_LIST}, {"secret", "header", 0},
};

const struct prof_user_key *prof_secret_key_find(const char *key) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(secret_keys); i++)
        if (strcmp(secret_keys[i].key, key) == 0) return &secret_keys[i];
    return NULL;
}

const char *prof_secret_suggest(const char *key) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(secret_keys); i++)
        if (prof_distance(key, secret_keys[i].key) <= 2) return secret_keys[i].key;
    return NULL;
}

static void secret_clear(struct profile_secret *s) {
    free(s->name);
    free(s->source);
    dbx_strv_free(s->hosts);
    free(s->header);
}

void prof_secrets_free(struct profile_secret *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        secret_clear(&v[i]);
    free(v);
}

const struct profile_secret *profile_user_secret(const struct profile_user *u, const char *name) {
    for (size_t i = 0; u && i < u->nsecrets; i++)
        if (strcmp(u->secrets[i].name, name) == 0) return &u->secrets[i];
    return NULL;
}

/* ---- config.ini [secret NAME] ------------------------------------------------------------ */

struct sbuild {
    const struct profile_layer *l;
    char ***errors;
    const char *name;
    bool ok;
};

static void sbad(struct sbuild *b, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sbad(struct sbuild *b, unsigned line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    prof_errf(b->errors, "%s:%u: [secret %s] %s", b->l->name, line, b->name, m);
    b->ok = false;
}

static bool env_name_ok(const char *s) {
    if (!isalpha((unsigned char)s[0]) && s[0] != '_') return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return false;
    return true;
}

/* file = /abs/path or ~/path: expanded here, so what sandbox/ opens is the path `profile
 * show` names and no later change of $HOME moves it. */
static char *file_source(struct sbuild *b, const struct prof_entry *e) {
    const char *v = e->parts[0].text;
    if (v[0] == '/') return dbx_xstrdup(v);
    if (v[0] == '~' && v[1] == '/' && v[2]) {
        const char *home = getenv("HOME");
        if (!home || home[0] != '/') {
            sbad(b, e->line, "file: '%s': ~/ needs $HOME set to an absolute path", v);
            return NULL;
        }
        size_t hl = strlen(home);
        while (hl > 0 && home[hl - 1] == '/')
            hl--;
        return dbx_xasprintf("%.*s%s", (int)hl, home, v + 1);
    }
    sbad(b, e->line, "file: '%s' is not an absolute path (or ~/path)", v);
    return NULL;
}

/* Header names the proxy owns (the request's framing, routing and hop-by-hop headers): a
 * secret there would change where or how the request goes, not authenticate it. */
static const char *const header_refused[] = {
    "host", "content-length", "transfer-encoding", "connection", "upgrade",
    "te",   "trailer",        "keep-alive",        "expect",     NULL};

/* "Name: text with {}": an HTTP token, ':', a value holding {} once. */
static bool header_ok(struct sbuild *b, const struct prof_entry *e) {
    const char *v = e->parts[0].text;
    size_t n = strcspn(v, ":");
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    bool tok = n > 0 && v[n] == ':';
    for (size_t i = 0; tok && i < n; i++)
        tok = isalnum((unsigned char)v[i]) || strchr(tchar, v[i]);
    if (!tok) {
        sbad(b, e->line, "header: '%s' is not 'Name: value with {}' (e.g. 'x-api-key: {}')", v);
        return false;
    }
    for (size_t i = 0; header_refused[i]; i++)
        if (strlen(header_refused[i]) == n && strncasecmp(v, header_refused[i], n) == 0) {
            sbad(b, e->line, "header: '%.*s' is a header the proxy sets itself", (int)n, v);
            return false;
        }
    if (strncasecmp(v, "proxy-", 6) == 0 && n > 6) {
        sbad(b, e->line, "header: '%.*s' is a header the proxy sets itself", (int)n, v);
        return false;
    }
    const char *val = v + n + 1, *first = strstr(val, "{}");
    if (!first || strstr(first + 2, "{}")) {
        sbad(b, e->line, "header: '%s': the value must hold '{}' (where the secret goes) once", v);
        return false;
    }
    return true;
}

/* The keys of one section into *s; false (reported) when it is not a whole secret. */
static bool secret_build(struct sbuild *b, unsigned line, struct profile_secret *s) {
    unsigned source_line = 0;
    bool have_hosts = false;
    for (size_t i = 0; i < b->l->n; i++) {
        const struct prof_entry *e = &b->l->v[i];
        const char *sn = prof_secret_section(e->section);
        if (!sn || strcmp(sn, b->name) != 0) continue;
        const char *v = e->parts[0].text;
        if (strcmp(e->key, "hosts") == 0) {
            have_hosts = true;
            size_t nerr = dbx_strv_len(*b->errors);
            prof_user_list(b->l, e, prof_allow_normalize, PROFILE_MAX_SECRET_HOSTS, &s->hosts,
                           b->errors);
            if (dbx_strv_len(*b->errors) != nerr)
                b->ok = false;
            else if (!s->hosts)
                sbad(b, e->line, "hosts: empty (at least one host)");
            continue;
        }
        if (strcmp(e->key, "header") == 0) {
            if (header_ok(b, e)) s->header = dbx_xstrdup(v);
            continue;
        }
        /* env, file or command: the one source */
        if (source_line) {
            sbad(b, e->line,
                 "%s: a second source (line %u has one): use exactly one of env, "
                 "file, command",
                 e->key, source_line);
            continue;
        }
        source_line = e->line;
        if (!*v) {
            sbad(b, e->line, "%s: empty", e->key);
        } else if (strcmp(e->key, "env") == 0) {
            s->from = PROFILE_SECRET_ENV;
            if (env_name_ok(v))
                s->source = dbx_xstrdup(v);
            else
                sbad(b, e->line, "env: '%s' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)", v);
        } else if (strcmp(e->key, "file") == 0) {
            s->from = PROFILE_SECRET_FILE;
            s->source = file_source(b, e);
        } else {
            s->from = PROFILE_SECRET_COMMAND;
            s->source = dbx_xstrdup(v);
        }
    }
    if (!source_line) sbad(b, line, "no source: set one of env, file, command");
    if (!have_hosts) sbad(b, line, "no hosts: name where the secret may be sent (hosts = ...)");
    return b->ok;
}

void prof_user_secrets(struct profile_user *u, const struct profile_layer *l, char ***errors) {
    for (size_t i = 0; i < l->nsecrets; i++) {
        struct sbuild b = {.l = l, .errors = errors, .name = l->secrets[i].text, .ok = true};
        struct profile_secret s = {.name = dbx_xstrdup(b.name)};
        if (!secret_build(&b, l->secrets[i].line, &s)) {
            secret_clear(&s);
            continue;
        }
        u->secrets = dbx_xrealloc(u->secrets, (u->nsecrets + 1) * sizeof(*u->secrets));
        u->secrets[u->nsecrets++] = s;
        _cleanup_free_ char *k = dbx_xasprintf("secret.%s", b.name);
        _cleanup_free_ char *w = dbx_xasprintf("%s:%u", l->where, l->secrets[i].line);
        prof_origins_set(&u->origin, &u->norigin, k, w);
    }
}

/* ---- a profile's [secrets] use ----------------------------------------------------------- */

static struct profile_secret secret_copy(const struct profile_secret *s) {
    struct profile_secret c = {.name = dbx_xstrdup(s->name),
                               .from = s->from,
                               .source = dbx_xstrdup(s->source),
                               .header = s->header ? dbx_xstrdup(s->header) : NULL};
    for (size_t i = 0; s->hosts && s->hosts[i]; i++)
        c.hosts = dbx_strv_push(c.hosts, s->hosts[i]);
    return c;
}

static const char *use_origin(const struct profile *p, const char *name, char key[128]) {
    snprintf(key, 128, "secrets.use[%s]", name);
    const char *w = profile_origin_of(p, key);
    return w ? w : "secrets.use";
}

void prof_secrets_resolve(struct profile *p, const struct profile_user *user, char ***errors) {
    for (size_t i = 0; p->secrets_use && p->secrets_use[i]; i++) {
        const char *name = p->secrets_use[i];
        char key[128];
        const char *where = use_origin(p, name, key);
        const struct profile_secret *s = profile_user_secret(user, name);
        if (!s) {
            prof_errf(errors,
                      "%s: [secrets] use: secret '%s' is not declared in config.ini (add a "
                      "[secret %s] section there)",
                      where, name, name);
            continue;
        }
        p->secrets = dbx_xrealloc(p->secrets, (p->nsecrets + 1) * sizeof(*p->secrets));
        p->secrets[p->nsecrets++] = secret_copy(s);
        if (p->net_mode != PROFILE_NET_ALLOWLIST) continue; /* prof_secrets_check says so */
        /* the secret's hosts are reachable as if in network.allow: the proxy must let the
         * request through to inject the value; the secret is the widening, not each host */
        _cleanup_free_ char *w = dbx_xasprintf("secret '%s' (%s)", name, where);
        for (size_t j = 0; s->hosts && s->hosts[j]; j++) {
            if (prof_strv_contains(p->allow, s->hosts[j])) continue;
            if (dbx_strv_len(p->allow) >= PROFILE_MAX_LIST) {
                prof_errf(errors, "%s: [secrets] use: secret '%s': more than %u allowed hosts",
                          where, name, PROFILE_MAX_LIST);
                break;
            }
            p->allow = dbx_strv_push(p->allow, s->hosts[j]);
            _cleanup_free_ char *k = dbx_xasprintf("network.allow[%s]", s->hosts[j]);
            prof_origin_set(p, k, w);
        }
    }
}

void prof_secrets_check(const struct profile *p, char ***errors) {
    static const char *const net_names[] = {"none", "allowlist", "open"};
    if (p->net_mode == PROFILE_NET_ALLOWLIST) return;
    for (size_t i = 0; p->secrets_use && p->secrets_use[i]; i++) {
        char key[128];
        /* open mode has no proxy to put the value in; none has no network at all */
        prof_errf(errors,
                  "%s: [secrets] use: secret '%s' needs network mode allowlist (network.mode is "
                  "'%s', from %s)",
                  use_origin(p, p->secrets_use[i], key), p->secrets_use[i], net_names[p->net_mode],
                  profile_origin_of(p, "network.mode"));
    }
}

void prof_secrets_drop(struct profile *p, const char *where) {
    for (size_t i = 0; p->secrets_use && p->secrets_use[i]; i++) {
        char key[128];
        snprintf(key, sizeof(key), "secrets.use[%s]", p->secrets_use[i]);
        prof_origin_drop(p, key);
    }
    dbx_strv_free(p->secrets_use);
    p->secrets_use = NULL;
    prof_secrets_free(p->secrets, p->nsecrets);
    p->secrets = NULL;
    p->nsecrets = 0;
    prof_origin_set(p, "secrets.use", where);
}

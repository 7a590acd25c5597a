/* profiles/profiles-devcontainer.c: a repo's .devcontainer/devcontainer.json as devbox.ini
 * text.  The JSON is translated into the devbox.ini a user would write, and that text is then
 * parsed exactly like a repo's devbox.ini (same checks, same widening and trust rules), so the
 * translation adds no second policy path, and `devbox profile show` can print it for the user
 * to check in.
 *
 * The translation never expands devcontainer variables (${localEnv:...} would read the host's
 * environment into the box) and never silently changes a value: inih trims values and cuts them
 * at a ';' that follows whitespace, and splits lines of 200+ bytes, so a value that would not
 * survive that is an error naming the JSON key.  Keys devbox does not honour are listed in one
 * warning.  Spec: containers.dev/implementors/json_reference. */
#define _GNU_SOURCE
#include "profiles-internal.h"

#include <ctype.h>
#include <jansson.h>

#define DC_MAX_SHOWN 64u /* bytes of a JSON key name quoted in a message */

/* ---- JSON with comments -------------------------------------------------------------------- */

int prof_jsonc_strip(char *s, size_t len, unsigned *ret_line) {
    enum { CODE, STR, LINE_COMMENT, BLOCK_COMMENT } st = CODE;
    unsigned line = 1, block_line = 0;
    size_t comma = SIZE_MAX; /* a ',' followed so far only by whitespace and comments */
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '\n') line++;
        switch (st) {
        case STR:
            /* skip the escaped byte, but never a newline: jansson reports that, and the line
             * count must stay right */
            if (ch == '\\' && i + 1 < len && s[i + 1] != '\n')
                i++;
            else if (ch == '"')
                st = CODE;
            break;
        case LINE_COMMENT:
            if (ch == '\n')
                st = CODE;
            else
                s[i] = ' ';
            break;
        case BLOCK_COMMENT:
            if (ch == '*' && i + 1 < len && s[i + 1] == '/') {
                s[i] = s[i + 1] = ' ';
                i++;
                st = CODE;
            } else if (ch != '\n') {
                s[i] = ' ';
            }
            break;
        case CODE:
            if (ch == '/' && i + 1 < len && (s[i + 1] == '/' || s[i + 1] == '*')) {
                st = s[i + 1] == '/' ? LINE_COMMENT : BLOCK_COMMENT;
                block_line = line;
                s[i] = s[i + 1] = ' ';
                i++;
            } else if (ch == ',') {
                comma = i;
            } else if ((ch == '}' || ch == ']') && comma != SIZE_MAX) {
                s[comma] = ' '; /* one trailing comma; ",," stays and jansson refuses it */
                comma = SIZE_MAX;
            } else if (!isspace((unsigned char)ch)) {
                comma = SIZE_MAX;
                if (ch == '"') st = STR;
            }
            break;
        }
    }
    if (st == BLOCK_COMMENT) {
        *ret_line = block_line;
        return -EINVAL;
    }
    return 0;
}

/* ---- the translation state ----------------------------------------------------------------- */

struct dc_env {
    char *name;
    char *value; /* NULL: dropped (a variable that was skipped, or remoteEnv null) */
    char *key;   /* "containerEnv.NAME" */
};

struct dc {
    const char *fname;
    char **errors;
    char **lines, **keys; /* the INI, one line each, and the JSON key each line came from */
    const char *image;
    const char *user, *user_key;
    struct dc_env *env;
    size_t nenv;
    char **cmds, **cmd_keys; /* [setup] run, in order */
    char **parallel;         /* command objects (their commands ran in parallel) */
    uint16_t ports[PROFILE_MAX_PORTS];
    size_t nports;
    char **unsupported, **skipped_vars, **ignored_ports;
};

static void dc_err(struct dc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dc_err(struct dc *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    prof_errf(&d->errors, "%s: %s", d->fname, m);
}

/* A JSON key as a message may show it: terminal-safe, at most DC_MAX_SHOWN bytes. */
static char *shown(const char *s) {
    size_t n = strlen(s);
    if (n <= DC_MAX_SHOWN) return dbx_escape(s);
    _cleanup_free_ char *e = dbx_escape_n(s, DC_MAX_SHOWN, 0);
    return dbx_xasprintf("%s...", e);
}

static void emit(struct dc *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void emit(struct dc *d, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    d->lines = dbx_strv_push(d->lines, m);
    d->keys = dbx_strv_push(d->keys, key);
}

/* Can `v` be written after "KEY = " (prefix bytes) on a devbox.ini line and read back by
 * inih unchanged?  NULL, or why not (static). */
static const char *ini_value_problem(const char *v, size_t prefix, bool trimmed) {
    for (const char *s = v; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\n' || ch == '\r') return "spans lines (a devbox.ini value is one line)";
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return "has a control character";
        if (ch == ';' && (s == v || isspace((unsigned char)s[-1])))
            return "has a ';' at the start or after whitespace, which starts a comment in "
                   "devbox.ini";
    }
    size_t n = strlen(v);
    if (!trimmed && n && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1])))
        return "starts or ends with whitespace, which devbox.ini would trim";
    if (prefix + n > PROFILE_MAX_LINE) return "is too long for one devbox.ini line";
    return NULL;
}

/* ---- commands ------------------------------------------------------------------------------ */

#define RUN_PREFIX "run = "

/* POSIX shell quoting of one argument; a ';' after whitespace is put outside the quotes as
 * "\;" so that devbox.ini does not read it as a comment. */
static void sh_quote(FILE *f, const char *a) {
    if (*a &&
        strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-") ==
            strlen(a)) {
        fputs(a, f);
        return;
    }
    fputc('\'', f);
    for (const char *s = a; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else if (*s == ';' && s > a && isspace((unsigned char)s[-1]))
            fputs("'\\;'", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* One command (string or argv array) as a shell line; NULL when it was refused (reported)
 * or is empty. */
static char *command_line(struct dc *d, json_t *v, const char *key) {
    _cleanup_free_ char *k = shown(key);
    _cleanup_free_ char *line = NULL;
    if (json_is_string(v)) {
        /* whitespace around a shell line means nothing, unless it is escaped */
        const char *s = json_string_value(v), *end = s + strlen(s);
        while (*s == ' ' || *s == '\t')
            s++;
        while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (*end && end > s && end[-1] == '\\') {
            dc_err(d, "%s: the command ends with an escaped space; put it in a script in the repo",
                   k);
            return NULL;
        }
        line = dbx_xstrndup(s, (size_t)(end - s));
    } else if (json_is_array(v)) {
        size_t n = 0, i;
        json_t *a;
        FILE *f = open_memstream(&line, &n);
        if (!f) dbx_oom_hook();
        json_array_foreach(v, i, a) {
            if (!json_is_string(a)) {
                fclose(f);
                dc_err(d, "%s[%zu]: must be a string", k, i);
                return NULL;
            }
            if (i) fputc(' ', f);
            sh_quote(f, json_string_value(a));
        }
        if (fclose(f) != 0) dbx_oom_hook();
    } else {
        dc_err(d, "%s: must be a string, an array of strings or an object of those", k);
        return NULL;
    }
    /* an empty command or a shell comment runs nothing */
    if (!line[0] || line[0] == '#') return NULL;
    const char *why = ini_value_problem(line, strlen(RUN_PREFIX), true);
    if (why && strstr(why, "too long"))
        dc_err(d, "%s: command longer than %zu bytes; put it in a script in the repo", k,
               PROFILE_MAX_LINE - strlen(RUN_PREFIX));
    else if (why)
        dc_err(d, "%s: the command %s; put it in a script in the repo", k, why);
    return why ? NULL : TAKE_PTR(line);
}

static void command_push(struct dc *d, json_t *v, const char *key) {
    _cleanup_free_ char *line = command_line(d, v, key);
    if (!line) return;
    if (dbx_strv_len(d->cmds) >= PROFILE_MAX_LIST) {
        _cleanup_free_ char *k = shown(key);
        return dc_err(d, "%s: more than %u commands", k, PROFILE_MAX_LIST);
    }
    _cleanup_free_ char *k = shown(key);
    d->cmds = dbx_strv_push(d->cmds, line);
    d->cmd_keys = dbx_strv_push(d->cmd_keys, k);
}

/* onCreateCommand, postCreateCommand: a string (one shell line), an array (argv) or an object
 * of named commands of either form. */
static void on_command(struct dc *d, const char *name, json_t *v) {
    if (!json_is_object(v)) return command_push(d, v, name);
    const char *sub;
    json_t *c;
    json_object_foreach(v, sub, c) {
        _cleanup_free_ char *key = dbx_xasprintf("%s.%s", name, sub);
        command_push(d, c, key);
    }
    if (json_object_size(v) > 1) d->parallel = dbx_strv_push(d->parallel, name);
}

/* ---- [env] --------------------------------------------------------------------------------- */

static bool env_name_ok(const char *k) {
    bool ok = isalpha((unsigned char)k[0]) || k[0] == '_';
    for (const char *s = k; ok && *s; s++)
        ok = isalnum((unsigned char)*s) || *s == '_';
    return ok;
}

static struct dc_env *env_find(struct dc *d, const char *name) {
    for (size_t i = 0; i < d->nenv; i++)
        if (strcmp(d->env[i].name, name) == 0) return &d->env[i];
    return NULL;
}

/* containerEnv, then remoteEnv (which wins for the same name; null there unsets). */
static void on_env(struct dc *d, const char *name, json_t *v) {
    if (!json_is_object(v)) return dc_err(d, "%s: must be an object of strings", name);
    bool remote = strcmp(name, "remoteEnv") == 0;
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val) {
        _cleanup_free_ char *sk = shown(k);
        _cleanup_free_ char *key = dbx_xasprintf("%s.%s", name, sk);
        if (!env_name_ok(k)) {
            dc_err(d, "%s: not a variable name ([A-Za-z_][A-Za-z0-9_]*)", key);
            continue;
        }
        if (!json_is_string(val) && !(remote && json_is_null(val))) {
            dc_err(d, "%s: must be a string%s", key, remote ? " or null" : "");
            continue;
        }
        const char *s = json_string_value(val); /* NULL for null */
        /* never expanded: ${localEnv:X} would copy the host's environment into the box */
        bool skip = s && strstr(s, "${");
        if (skip) d->skipped_vars = dbx_strv_push(d->skipped_vars, key);
        const char *why = s && !skip ? ini_value_problem(s, strlen(k) + 3, false) : NULL;
        if (why) {
            dc_err(d, "%s: the value %s", key, why);
            continue;
        }
        struct dc_env *e = env_find(d, k);
        if (!e) {
            if (d->nenv >= PROFILE_MAX_LIST) {
                dc_err(d, "%s: more than %u variables", name, PROFILE_MAX_LIST);
                return;
            }
            d->env = dbx_xrealloc(d->env, (d->nenv + 1) * sizeof(*d->env));
            e = &d->env[d->nenv++];
            *e = (struct dc_env){.name = dbx_xstrdup(k)};
        }
        free(e->value);
        free(e->key);
        e->value = s && !skip ? dbx_xstrdup(s) : NULL;
        e->key = TAKE_PTR(key);
    }
}

/* ---- the other keys ------------------------------------------------------------------------ */

static void on_image(struct dc *d, const char *name, json_t *v) {
    if (!json_is_string(v)) return dc_err(d, "%s: must be a string", name);
    const char *why = ini_value_problem(json_string_value(v), strlen("image = "), false);
    if (why) return dc_err(d, "%s: the value %s", name, why);
    d->image = json_string_value(v);
}

static void on_ports(struct dc *d, const char *name, json_t *v) {
    if (!json_is_array(v)) return dc_err(d, "%s: must be an array", name);
    size_t i;
    json_t *p;
    json_array_foreach(v, i, p) {
        if (json_is_string(p)) {
            /* "host:port" forwards to another container of a compose setup */
            _cleanup_free_ char *s = shown(json_string_value(p));
            _cleanup_free_ char *q = dbx_xasprintf("'%s'", s);
            d->ignored_ports = dbx_strv_push(d->ignored_ports, q);
            continue;
        }
        json_int_t n = json_is_integer(p) ? json_integer_value(p) : 0;
        if (n < 1 || n > 65535) {
            dc_err(d, "%s[%zu]: must be a port number from 1 to 65535 or \"host:port\"", name, i);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < d->nports; j++)
            dup |= d->ports[j] == (uint16_t)n;
        if (dup) continue;
        if (d->nports >= PROFILE_MAX_PORTS) {
            dc_err(d, "%s: more than %u ports", name, PROFILE_MAX_PORTS);
            return;
        }
        d->ports[d->nports++] = (uint16_t)n;
    }
}

static void on_user(struct dc *d, const char *name, json_t *v) {
    if (!json_is_string(v)) return dc_err(d, "%s: must be a string", name);
    const char *why = ini_value_problem(json_string_value(v), strlen("user = "), false);
    if (why) return dc_err(d, "%s: the value %s", name, why);
    /* remoteUser is who runs the tools; containerUser only when remoteUser is not set */
    if (d->user && strcmp(name, "containerUser") == 0) return;
    d->user = json_string_value(v);
    d->user_key = name;
}

static void on_silent(struct dc *d, const char *name, json_t *v) {
    (void)d, (void)name, (void)v;
}

static const struct {
    const char *name;
    void (*handle)(struct dc *d, const char *name, json_t *v);
} dc_keys[] = {
    {"name", on_silent},         {"$schema", on_silent},   {"image", on_image},
    {"onCreateCommand", NULL}, /* the commands, after the loop: onCreate runs first */
    {"postCreateCommand", NULL}, {"containerEnv", on_env}, {"remoteEnv", on_env},
    {"forwardPorts", on_ports},  {"remoteUser", on_user},  {"containerUser", on_user},
};

/* ---- output -------------------------------------------------------------------------------- */

/* "root", uid 0 or "0:gid": devbox's own user rule (profiles-trust.c) makes that a widening;
 * a devcontainer's root user is only the image's default, so it is dropped with a warning. */
static bool user_is_root(const char *u) {
    if (!u) return false;
    size_t n = strcspn(u, ":");
    return strcmp(u, "root") == 0 || (n > 0 && strspn(u, "0") >= n);
}

static void emit_ini(struct dc *d) {
    emit(d, "", "; translated by devbox from %s", d->fname);
    if (d->image) {
        emit(d, "", "[box]");
        emit(d, "image", "image = %s", d->image);
    }
    if (d->user && !user_is_root(d->user)) {
        emit(d, "", "[security]");
        emit(d, d->user_key, "user = %s", d->user);
    }
    bool any_env = false;
    for (size_t i = 0; i < d->nenv; i++) {
        if (!d->env[i].value) continue;
        if (!any_env) emit(d, "", "[env]");
        any_env = true;
        emit(d, d->env[i].key, "%s = %s", d->env[i].name, d->env[i].value);
    }
    if (d->nports) emit(d, "", "[ports]");
    for (size_t i = 0; i < d->nports; i++)
        emit(d, "forwardPorts", "%u = %u", d->ports[i], d->ports[i]);
    if (!d->cmds) return;
    emit(d, "", "[setup]");
    for (size_t i = 0; d->parallel && d->parallel[i]; i++)
        emit(d, "",
             "; %s: a devcontainer runs these commands in parallel; devbox runs them one after "
             "another, in the order written",
             d->parallel[i]);
    for (size_t i = 0; d->cmds[i]; i++)
        emit(d, d->cmd_keys[i], "%s%s", i ? "      " : RUN_PREFIX, d->cmds[i]);
    /* A devcontainer's create commands run in the project (npm install, pip install -r ...). */
    emit(d, "", "workspace = true");
}

static char **dc_warnings(struct dc *d) {
    char **w = NULL;
    _cleanup_free_ char *unsupported = prof_strv_join(d->unsupported);
    _cleanup_free_ char *vars = prof_strv_join(d->skipped_vars);
    _cleanup_free_ char *ports = prof_strv_join(d->ignored_ports);
    if (d->unsupported)
        prof_errf(&w, "%s: not supported by devbox, ignored: %s", d->fname, unsupported);
    if (d->skipped_vars)
        prof_errf(&w,
                  "%s: devbox does not expand ${...} variables (it never reads the host's "
                  "environment), skipped: %s",
                  d->fname, vars);
    if (d->ignored_ports)
        prof_errf(&w, "%s: forwardPorts: only port numbers are forwarded, ignored: %s", d->fname,
                  ports);
    if (user_is_root(d->user))
        prof_errf(&w,
                  "%s: %s '%s' ignored: devbox runs commands as your own uid; run one as root "
                  "with `devbox exec --admin`",
                  d->fname, d->user_key, d->user);
    return w;
}

static void dc_free(struct dc *d) {
    dbx_strv_free(d->errors);
    dbx_strv_free(d->lines);
    dbx_strv_free(d->keys);
    for (size_t i = 0; i < d->nenv; i++) {
        free(d->env[i].name);
        free(d->env[i].value);
        free(d->env[i].key);
    }
    free(d->env);
    dbx_strv_free(d->cmds);
    dbx_strv_free(d->cmd_keys);
    dbx_strv_free(d->parallel);
    dbx_strv_free(d->unsupported);
    dbx_strv_free(d->skipped_vars);
    dbx_strv_free(d->ignored_ports);
}

/* Parse the bytes (comments and trailing commas allowed) into a JSON object; NULL when
 * refused (reported). */
static json_t *dc_load(struct dc *d, const char *json, size_t len) {
    if (len > PROFILE_MAX_BYTES) {
        dc_err(d, "larger than %u bytes", PROFILE_MAX_BYTES);
        return NULL;
    }
    const char *nul = memchr(json, '\0', len);
    if (nul) {
        unsigned line = 1;
        for (const char *s = json; s < nul; s++)
            line += *s == '\n';
        prof_errf(&d->errors, "%s:%u: NUL byte", d->fname, line);
        return NULL;
    }
    _cleanup_free_ char *buf = dbx_xstrndup(json, len);
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) /* a UTF-8 byte order mark */
        memset(buf, ' ', 3);
    unsigned line = 0;
    if (prof_jsonc_strip(buf, len, &line) < 0) {
        prof_errf(&d->errors, "%s:%u: comment '/*' without '*/'", d->fname, line);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        _cleanup_free_ char *text = dbx_escape(je.text);
        if (je.line > 0)
            prof_errf(&d->errors, "%s:%d: %s", d->fname, je.line, text);
        else
            dc_err(d, "%s", text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        dc_err(d, "the top level must be a JSON object");
        return NULL;
    }
    return root;
}

int prof_devcontainer_translate(const char *json, size_t len, const char *fname, char **ret_ini,
                                char ***ret_warnings, char ***ret_line_keys, dbx_error **err) {
    struct dc d = {.fname = fname};
    json_auto_t *root = dc_load(&d, json, len);
    if (root) {
        const char *name;
        json_t *v;
        json_object_foreach(root, name, v) {
            size_t i = 0;
            while (i < DBX_ARRAY_SIZE(dc_keys) && strcmp(dc_keys[i].name, name) != 0)
                i++;
            if (i < DBX_ARRAY_SIZE(dc_keys)) {
                if (dc_keys[i].handle) dc_keys[i].handle(&d, name, v);
                continue;
            }
            _cleanup_free_ char *s = shown(name);
            if (strcmp(name, "initializeCommand") == 0) {
                free(s);
                s = dbx_xstrdup("initializeCommand (a devcontainer runs it on the host; devbox "
                                "never runs repo commands on the host)");
            }
            if (dbx_strv_len(d.unsupported) < PROF_MAX_ERRORS)
                d.unsupported = dbx_strv_push(d.unsupported, s);
        }
        static const char *const commands[] = {"onCreateCommand", "postCreateCommand"};
        for (size_t i = 0; i < DBX_ARRAY_SIZE(commands); i++) {
            json_t *c = json_object_get(root, commands[i]);
            if (c) on_command(&d, commands[i], c);
        }
    }
    if (d.errors) {
        int r = prof_errors_raise(d.errors, err);
        dc_free(&d);
        return r;
    }
    emit_ini(&d);
    size_t total = 1;
    for (size_t i = 0; d.lines[i]; i++)
        total += strlen(d.lines[i]) + 1;
    char *ini = dbx_xmalloc(total), *p = ini;
    for (size_t i = 0; d.lines[i]; i++) {
        size_t n = strlen(d.lines[i]);
        memcpy(p, d.lines[i], n);
        p += n;
        *p++ = '\n';
    }
    *p = '\0';
    *ret_ini = ini;
    *ret_warnings = dc_warnings(&d);
    if (ret_line_keys) *ret_line_keys = TAKE_PTR(d.keys);
    dc_free(&d);
    return 0;
}

int profile_devcontainer_translate(const char *json, size_t len, const char *fname, char **ret_ini,
                                   char ***ret_warnings, dbx_error **err) {
    return prof_devcontainer_translate(json, len, fname, ret_ini, ret_warnings, NULL, err);
}

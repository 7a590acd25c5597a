/* profiles/profiles-parse.c: bytes -> layer.  The bytes are repo content an untrusted agent
 * can edit, so they are checked by us first (NUL and control bytes, line length: inih r55
 * splits lines of 200+ bytes and parses the tail as a new line, so a key nobody wrote could
 * appear) and only then handed to inih.  Our reader hands inih exactly one line per call, so
 * our line count is exact (Debian builds inih without INI_HANDLER_LINENO), and it classifies
 * each line the way inih r55 will, which tells the handler whether it is being called for a
 * key line or for an indented continuation line (INI_ALLOW_MULTILINE), and lets us name
 * syntax errors and unknown sections precisely. */
#define _GNU_SOURCE
#include "profiles-internal.h"

#include <ctype.h>
#include <ini.h>

#define PROF_MAX_ENTRIES 1024u /* keys in one file (duplicate checks are quadratic) */
#define INIH_MAX_SECTION 50u   /* inih r55 MAX_SECTION: longer names are truncated */

enum line_kind { LINE_NONE, LINE_KEY, LINE_CONT };

struct pctx {
    struct profile_layer *l;
    char ***errors;
    size_t nerr;
    const char *cur, *end;
    unsigned lineno;
    enum line_kind kind;
    bool prev;        /* mirrors inih's prev_name: a key line since the last section line */
    bool section_ok;  /* the current section is known (unknown ones are reported once) */
    unsigned nsyntax; /* syntax errors we reported: inih's non-zero return is then expected */
    ssize_t last;     /* entry continuation lines extend; -1 = none (or already reported) */
    char *secret;     /* in config.ini's [secret NAME]: "secret NAME" in full (inih truncates
                         section names to 49 bytes; NAME may have 64), else NULL */
};

static void perr(struct pctx *c, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void perr(struct pctx *c, unsigned line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    prof_errf(c->errors, "%s:%u: %s", c->l->name, line, m);
    c->nerr++;
}

/* ---- distance for did-you-mean ------------------------------------------------------------ */

unsigned prof_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na > 64 || nb > 64) return UINT32_MAX;
    unsigned row[65];
    for (size_t j = 0; j <= nb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= na; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= nb; j++) {
            unsigned up = row[j];
            unsigned cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            unsigned best = diag + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    /* "x" is not a typo of "box": a suggestion must keep some of what was written */
    return row[nb] < na ? row[nb] : UINT32_MAX;
}

/* ---- the bytes ---------------------------------------------------------------------------- */

/* NUL and control bytes (a profile is shown on terminals: no escape sequences), over-long
 * lines.  CR is accepted only as part of a CRLF line end. */
static void check_text(struct pctx *c, const char *buf, size_t len) {
    unsigned line = 1;
    size_t start = 0;
    bool bad_byte = false;
    for (size_t i = 0; i <= len && c->nerr < PROF_MAX_ERRORS; i++) {
        if (i == len || buf[i] == '\n') {
            if (i - start > PROFILE_MAX_LINE)
                perr(c, line, "line longer than %u bytes (inih would split it)", PROFILE_MAX_LINE);
            start = i + 1;
            line++;
            bad_byte = false;
            continue;
        }
        unsigned char ch = (unsigned char)buf[i];
        if (bad_byte) continue;
        if (ch == '\0') {
            perr(c, line, "NUL byte");
            bad_byte = true;
        } else if ((ch < 0x20 && ch != '\t' &&
                    !(ch == '\r' && (i + 1 == len || buf[i + 1] == '\n'))) ||
                   ch == 0x7f) {
            perr(c, line, "control character 0x%02x", ch);
            bad_byte = true;
        }
    }
}

/* inih r55's find_chars_or_comment with inline comments on: the first of `chars`, or a ';'
 * that follows whitespace, or the end. */
static const char *find_chars_or_comment(const char *s, const char *chars) {
    bool was_space = false;
    while (*s && (!chars || !strchr(chars, *s)) && !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

static const char *const user_sections[] = {"ceilings", "defaults", "registries",
                                            "network",  "setup",    "box"};

static bool section_known(enum prof_kind kind, const char *s) {
    if (kind == PROF_KIND_USER) {
        for (size_t i = 0; i < DBX_ARRAY_SIZE(user_sections); i++)
            if (strcmp(s, user_sections[i]) == 0) return true;
        return false;
    }
    for (size_t i = 0; prof_sections[i]; i++)
        if (strcmp(prof_sections[i], s) == 0) return true;
    return false;
}

static const char *section_suggest(enum prof_kind kind, const char *s) {
    if (kind != PROF_KIND_USER) return prof_suggest(s, NULL);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(user_sections); i++)
        if (prof_distance(s, user_sections[i]) <= 2) return user_sections[i];
    return NULL;
}

/* "[secret NAME]" (name: the text between the brackets, untrimmed): a secret's section in
 * config.ini, an error anywhere else.  False when the section is not one. */
static bool secret_header(struct pctx *c, const char *name) {
    size_t lead = strspn(name, " \t");
    if (strncmp(name + lead, "secret", 6) != 0 ||
        (name[lead + 6] && name[lead + 6] != ' ' && name[lead + 6] != '\t'))
        return false;
    c->section_ok = false;
    if (c->l->kind != PROF_KIND_USER) {
        perr(c, c->lineno, "[%s]: secrets are declared in config.ini, not in the repository", name);
        return true;
    }
    const char *s = name + lead + 6;
    s += strspn(s, " \t");
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    _cleanup_free_ char *sname = dbx_xstrndup(s, n);
    if (!*sname) {
        perr(c, c->lineno, "[secret]: needs a name ([secret ANTHROPIC_API_KEY])");
        return true;
    }
    if (!prof_secret_name_ok(sname)) {
        perr(c, c->lineno,
             "[secret %s]: '%s' is not a secret name ([A-Za-z_][A-Za-z0-9_]*, at most %u bytes)",
             sname, sname, PROFILE_MAX_SECRET_NAME);
        return true;
    }
    for (size_t i = 0; i < c->l->nsecrets; i++)
        if (strcmp(c->l->secrets[i].text, sname) == 0) {
            perr(c, c->lineno, "[secret %s]: declared twice (first on line %u)", sname,
                 c->l->secrets[i].line);
            return true;
        }
    if (c->l->nsecrets >= PROFILE_MAX_SECRETS) {
        perr(c, c->lineno, "[secret %s]: more than %u secrets", sname, PROFILE_MAX_SECRETS);
        return true;
    }
    c->l->secrets = dbx_xrealloc(c->l->secrets, (c->l->nsecrets + 1) * sizeof(*c->l->secrets));
    c->l->secrets[c->l->nsecrets++] =
        (struct prof_part){.text = dbx_xstrdup(sname), .line = c->lineno};
    c->secret = dbx_xasprintf("secret %s", sname);
    c->section_ok = true;
    return true;
}

/* Classify the line the way inih r55 will (its loop body, minus the handler calls). */
static void classify(struct pctx *c, const char *line) {
    const char *start = line;
    while (*start && isspace((unsigned char)*start))
        start++;
    c->kind = LINE_NONE;
    if (*start == ';' || *start == '#' || !*start) return;
    if (c->prev && start > line) {
        c->kind = LINE_CONT;
        return;
    }
    if (*start == '[') {
        const char *e = find_chars_or_comment(start + 1, "]");
        if (*e != ']') {
            c->nsyntax++;
            perr(c, c->lineno, "section header without ']'");
            return;
        }
        c->prev = false;
        c->last = -1;
        free(c->secret);
        c->secret = NULL;
        _cleanup_free_ char *full = dbx_xstrndup(start + 1, (size_t)(e - start - 1));
        if (secret_header(c, full)) return;
        /* inih copies at most MAX_SECTION - 1 bytes of the name, untrimmed */
        size_t n = (size_t)(e - start - 1);
        if (n > INIH_MAX_SECTION - 1) n = INIH_MAX_SECTION - 1;
        _cleanup_free_ char *name = dbx_xstrndup(start + 1, n);
        c->section_ok = section_known(c->l->kind, name);
        if (!c->section_ok && c->l->kind == PROF_KIND_USER && strcmp(name, "secrets") == 0) {
            perr(c, c->lineno,
                 "[secrets] use belongs in the repo's devbox.ini; config.ini declares each "
                 "secret in a [secret NAME] section");
        } else if (!c->section_ok && prof_user_section(name)) {
            perr(c, c->lineno, "[%s] is a user setting: set it in config.ini, not in a profile",
                 name);
        } else if (!c->section_ok) {
            const char *s = section_suggest(c->l->kind, name);
            if (s)
                perr(c, c->lineno, "unknown section '[%s]' (did you mean '[%s]'?)", name, s);
            else
                perr(c, c->lineno, "unknown section '[%s]'", name);
        }
        return;
    }
    const char *e = find_chars_or_comment(start, "=:");
    if (*e != '=' && *e != ':') {
        c->nsyntax++;
        perr(c, c->lineno, "expected 'key = value', '[section]' or a comment");
        return;
    }
    const char *ne = e;
    while (ne > start && isspace((unsigned char)ne[-1]))
        ne--;
    c->prev = ne > start;
    c->kind = LINE_KEY;
}

/* inih's reader: one line per call, without its newline (lines were checked to fit inih's
 * buffer); a UTF-8 byte order mark on line 1 is dropped here rather than by inih. */
static char *read_line(char *str, int num, void *stream) {
    struct pctx *c = stream;
    if (c->cur >= c->end) return NULL;
    const char *nl = memchr(c->cur, '\n', (size_t)(c->end - c->cur));
    const char *stop = nl ? nl : c->end;
    const char *s = c->cur;
    if (c->lineno == 0 && stop - s >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) s += 3;
    size_t n = (size_t)(stop - s);
    if (n > (size_t)num - 1) n = (size_t)num - 1; /* cannot happen after check_text */
    memcpy(str, s, n);
    str[n] = '\0';
    c->cur = nl ? nl + 1 : c->end;
    c->lineno++;
    classify(c, str);
    return str;
}

static void part_push(struct prof_entry *e, const char *text, unsigned line) {
    e->parts = dbx_xrealloc(e->parts, (e->nparts + 1) * sizeof(*e->parts));
    e->parts[e->nparts++] = (struct prof_part){.text = dbx_xstrdup(text), .line = line};
}

static void on_continuation(struct pctx *c, const char *value) {
    if (c->last < 0) return; /* the key line was refused and reported */
    struct prof_entry *e = &c->l->v[c->last];
    const struct prof_key *k = prof_key_find(e->section, e->key);
    const struct prof_user_key *uk = c->l->kind != PROF_KIND_USER ? NULL
                                     : prof_secret_section(e->section)
                                         ? prof_secret_key_find(e->key)
                                         : prof_user_key_find(e->section, e->key);
    if (!(k && (k->flags & PROF_LIST)) && !(uk && (uk->flags & PROF_LIST))) {
        perr(c, c->lineno,
             "[%s] %s: indented line continues a value that is not a list (only lists span "
             "lines)",
             e->section, e->key);
        c->last = -1;
        return;
    }
    if (e->nparts > PROFILE_MAX_LIST + 1) { /* bounds the work; split_items names the entry */
        perr(c, c->lineno, "[%s] %s: more than %u lines", e->section, e->key, PROFILE_MAX_LIST);
        c->last = -1;
        return;
    }
    /* inih r55 does not strip inline comments from continuation lines; we do, so that
     * "; why" after a list entry means the same on every line. */
    _cleanup_free_ char *v = dbx_xstrdup(value);
    char *end = (char *)find_chars_or_comment(v, NULL);
    *end = '\0';
    while (end > v && isspace((unsigned char)end[-1]))
        *--end = '\0';
    if (*v) part_push(e, v, c->lineno);
}

static bool duplicate(struct pctx *c, const char *section, const char *key) {
    for (size_t i = 0; i < c->l->n; i++)
        if (strcmp(c->l->v[i].section, section) == 0 && strcmp(c->l->v[i].key, key) == 0) {
            if (strcmp(section, "profile") == 0)
                perr(c, c->lineno, "duplicate key '%s' (first on line %u)", key, c->l->v[i].line);
            else
                perr(c, c->lineno, "duplicate key '%s' in [%s] (first on line %u)", key, section,
                     c->l->v[i].line);
            return true;
        }
    return false;
}

static void unknown_key(struct pctx *c, const char *section, const char *key, const char *shown) {
    const char *s = prof_suggest(section, key);
    _cleanup_free_ char *where = strcmp(section, "profile") == 0 && c->l->kind != PROF_KIND_USER
                                     ? dbx_xstrdup("before the first section")
                                     : dbx_xasprintf("in [%s]", section);
    if (s)
        perr(c, c->lineno, "unknown key '%s' %s (did you mean '%s'?)", shown, where, s);
    else
        perr(c, c->lineno, "unknown key '%s' %s", shown, where);
}

/* A config.ini key outside [defaults]: [ceilings], [registries], [network] listen and
 * ca_files, [setup] allow. */
static bool resolve_user_key(struct pctx *c, const char *section, const char *name) {
    if (prof_user_key_find(section, name)) return true;
    const char *s = prof_user_suggest(section, name);
    if (s)
        perr(c, c->lineno, "unknown key '%s' in [%s] (did you mean '%s'?)", name, section, s);
    else if (prof_key_find(section, name))
        perr(c, c->lineno,
             "unknown key '%s' in [%s] (profile defaults go in [defaults] as '%s.%s')", name,
             section, section, name);
    else
        perr(c, c->lineno, "unknown key '%s' in [%s]", name, section);
    return false;
}

/* [defaults] section.key = value: a profile key, never a user-only one. */
static bool resolve_default_key(struct pctx *c, const char *name, char **sec, char **key) {
    const char *dot = strchr(name, '.');
    if (!dot) {
        perr(c, c->lineno, "[defaults] '%s': expected 'section.key' (e.g. 'box.memory')", name);
        return false;
    }
    *sec = dbx_xstrndup(name, (size_t)(dot - name));
    *key = dbx_xstrdup(dot + 1);
    if (strcmp(*sec, "profile") == 0) {
        perr(c, c->lineno, "[defaults] '%s': only a repo profile can extend", name);
        return false;
    }
    if (strcmp(*sec, "secrets") == 0) {
        perr(c, c->lineno,
             "[defaults] '%s': only a repo profile asks for secrets ([secrets] use in "
             "devbox.ini)",
             name);
        return false;
    }
    if (strcmp(*sec, "mounts") == 0) {
        perr(c, c->lineno,
             "[defaults] '%s': only a repo profile shares folders ([mounts] in devbox.ini)", name);
        return false;
    }
    if (prof_user_section(*sec) || prof_user_key_find(*sec, *key)) {
        perr(c, c->lineno, "[defaults] '%s': a user setting: write it in [%s], not [defaults]",
             name, *sec);
        return false;
    }
    if (!section_known(PROF_KIND_REPO, *sec)) {
        const char *s = prof_suggest(*sec, NULL);
        if (s)
            perr(c, c->lineno, "[defaults] '%s': unknown section '%s' (did you mean '%s'?)", name,
                 *sec, s);
        else
            perr(c, c->lineno, "[defaults] '%s': unknown section '%s'", name, *sec);
        return false;
    }
    return true;
}

/* Resolve the (section, key) an entry is stored under; false when refused (reported). */
static bool resolve_key(struct pctx *c, const char *section, const char *name, char **ret_section,
                        char **ret_key) {
    bool user = c->l->kind == PROF_KIND_USER;
    if (user && c->secret) {
        if (!prof_secret_key_find(name)) {
            const char *s = prof_secret_suggest(name);
            if (s)
                perr(c, c->lineno, "unknown key '%s' in [%s] (did you mean '%s'?)", name, c->secret,
                     s);
            else
                perr(c, c->lineno, "unknown key '%s' in [%s] (env, file, command, hosts, header)",
                     name, c->secret);
            return false;
        }
        *ret_section = dbx_xstrdup(c->secret);
        *ret_key = dbx_xstrdup(name);
        return true;
    }
    if (user && !*section) {
        perr(c, c->lineno,
             "key '%s' before the first section ([ceilings], [defaults], [registries], "
             "[network], [setup] or [box])",
             name);
        return false;
    }
    if (user && strcmp(section, "defaults") != 0) {
        if (!resolve_user_key(c, section, name)) return false;
        *ret_section = dbx_xstrdup(section);
        *ret_key = dbx_xstrdup(name);
        return true;
    }
    _cleanup_free_ char *sec = NULL, *key = NULL;
    if (user) {
        if (!resolve_default_key(c, name, &sec, &key)) return false;
    } else {
        sec = dbx_xstrdup(*section ? section : "profile");
        key = dbx_xstrdup(name);
        /* [setup] allow is both: the user's pre-approved hosts in config.ini, the repo's
         * own extra hosts in a profile */
        if (prof_user_key_find(sec, key) && !prof_key_find(sec, key)) {
            perr(c, c->lineno, "[%s] %s is a user setting: set it in config.ini, not in a profile",
                 sec, key);
            return false;
        }
    }
    if (!prof_key_find(sec, key)) {
        unknown_key(c, sec, key, user ? name : key);
        return false;
    }
    *ret_section = TAKE_PTR(sec);
    *ret_key = TAKE_PTR(key);
    return true;
}

static int on_entry(void *user, const char *section, const char *name, const char *value) {
    struct pctx *c = user;
    /* Always 1 ("go on"): inih treats 0 as an error; we keep our own list of problems. */
    if (c->nerr >= PROF_MAX_ERRORS) return 1;
    if (c->kind == LINE_CONT) {
        on_continuation(c, value);
        return 1;
    }
    c->last = -1;
    if (c->kind != LINE_KEY || !c->section_ok) return 1;
    if (!*name) {
        perr(c, c->lineno, "missing key name before '='");
        return 1;
    }
    _cleanup_free_ char *sec = NULL, *key = NULL;
    if (!resolve_key(c, section, name, &sec, &key)) return 1;
    if (duplicate(c, sec, key)) return 1;
    if (c->l->n >= PROF_MAX_ENTRIES) {
        perr(c, c->lineno, "more than %u keys in one file", PROF_MAX_ENTRIES);
        return 1;
    }
    c->l->v = dbx_xrealloc(c->l->v, (c->l->n + 1) * sizeof(*c->l->v));
    struct prof_entry *e = &c->l->v[c->l->n];
    *e = (struct prof_entry){.section = TAKE_PTR(sec), .key = TAKE_PTR(key), .line = c->lineno};
    part_push(e, value, c->lineno);
    c->last = (ssize_t)c->l->n++;
    return 1;
}

size_t prof_parse(const char *buf, size_t len, struct profile_layer *layer, char ***errors) {
    struct pctx c = {
        .l = layer, .errors = errors, .cur = buf, .end = buf + len, .last = -1, .section_ok = true};
    check_text(&c, buf, len);
    if (c.nerr) return c.nerr;
    int ir = ini_parse_stream(read_line, &c, on_entry, &c);
    /* Any non-zero return is an error; ours already say which line and why. */
    if (ir != 0 && c.nsyntax == 0) perr(&c, ir > 0 ? (unsigned)ir : 0, "syntax error");
    free(c.secret);
    for (size_t i = 0; i < layer->n; i++)
        if (strcmp(layer->v[i].section, "profile") == 0 &&
            strcmp(layer->v[i].key, "extends") == 0) {
            layer->extends = dbx_xstrdup(layer->v[i].parts[0].text);
            layer->extends_line = layer->v[i].line;
        }
    return c.nerr;
}

void prof_layer_free(struct profile_layer *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].section);
        free(l->v[i].key);
        for (size_t j = 0; j < l->v[i].nparts; j++)
            free(l->v[i].parts[j].text);
        free(l->v[i].parts);
    }
    free(l->v);
    for (size_t i = 0; i < l->nsecrets; i++)
        free(l->secrets[i].text);
    free(l->secrets);
    free(l->name);
    free(l->where);
    free(l->extends);
    free(l);
}

void prof_layer_freep(struct profile_layer **l) {
    prof_layer_free(*l);
}

/* ---- error lists -------------------------------------------------------------------------- */

void prof_errf(char ***errors, const char *fmt, ...) {
    size_t n = dbx_strv_len(*errors);
    if (n > PROF_MAX_ERRORS) return;
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    if (n == PROF_MAX_ERRORS)
        *errors = dbx_strv_push(*errors, "more problems not listed");
    else
        *errors = dbx_strv_push(*errors, m);
}

/* "name:LINE: ..." -> the length of name and LINE (0 when there is no line). */
static size_t err_key(const char *e, unsigned *line) {
    for (const char *s = strchr(e, ':'); s; s = strchr(s + 1, ':')) {
        size_t d = strspn(s + 1, "0123456789");
        if (d && d < 10 && s[1 + d] == ':') {
            *line = (unsigned)strtoul(s + 1, NULL, 10);
            return (size_t)(s - e);
        }
    }
    *line = 0;
    return strcspn(e, ":");
}

/* Stable order: files in the order their first problem was found, then by line. */
static void errors_sort(char **v) {
    size_t n = dbx_strv_len(v);
    if (n && strcmp(v[n - 1], "more problems not listed") == 0) n--;
    size_t *file = dbx_xcalloc(n ? n : 1, sizeof(size_t));
    unsigned *line = dbx_xcalloc(n ? n : 1, sizeof(unsigned));
    for (size_t i = 0; i < n; i++) {
        size_t len = err_key(v[i], &line[i]);
        file[i] = i;
        for (size_t j = 0; j < i; j++) {
            unsigned lj;
            if (err_key(v[j], &lj) == len && strncmp(v[i], v[j], len) == 0) {
                file[i] = file[j];
                break;
            }
        }
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: n <= PROF_MAX_ERRORS */
        for (size_t j = i;
             j > 0 && (file[j - 1] > file[j] || (file[j - 1] == file[j] && line[j - 1] > line[j]));
             j--) {
            char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
            size_t tf = file[j];
            file[j] = file[j - 1];
            file[j - 1] = tf;
            unsigned tl = line[j];
            line[j] = line[j - 1];
            line[j - 1] = tl;
        }
    free(file);
    free(line);
}

int prof_errors_raise(char **errors, dbx_error **err) {
    errors_sort(errors);
    size_t len = 0;
    for (size_t i = 0; errors && errors[i]; i++)
        len += strlen(errors[i]) + 1;
    _cleanup_free_ char *msg = dbx_xmalloc(len + 1);
    char *p = msg;
    *p = '\0';
    for (size_t i = 0; errors && errors[i]; i++) {
        if (i) *p++ = '\n';
        size_t n = strlen(errors[i]);
        memcpy(p, errors[i], n + 1);
        p += n;
    }
    return dbx_error_setx(err, EINVAL, "%s", msg);
}

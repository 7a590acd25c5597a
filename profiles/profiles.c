/* profiles/profiles.c: read and validate devbox.ini.  The file is repo content an untrusted
 * agent can edit, so it is read by us first (size, NUL bytes, line length) and only then
 * handed to inih, whose any non-zero return is an error. */
#define _GNU_SOURCE
#include "profiles.h"

#include <ini.h>
#include <sys/stat.h>

struct parse_ctx {
    struct profile *p;
    const char *cur;   /* stream position in the buffer handed to inih */
    int lineno;        /* line inih is looking at: our reader hands it one line per call */
    const char *path;
    dbx_error *err;
    unsigned seen; /* bitmask of keys already set, for duplicate detection */
};

typedef int (*key_parser)(struct parse_ctx *c, const char *value, char **why);

static int parse_image(struct parse_ctx *c, const char *v, char **why) {
    size_t n = strlen(v);
    if (n == 0 || n > 255) return *why = dbx_xstrdup("must be 1 to 255 characters"), -1;
    for (const char *s = v; *s; s++)
        if (!(*s >= 'a' && *s <= 'z') && !(*s >= '0' && *s <= '9') && !strchr("._-:/@", *s))
            return *why = dbx_xstrdup("may only contain a-z 0-9 . _ - : / @"), -1;
    free(c->p->image);
    c->p->image = dbx_xstrdup(v);
    return 0;
}

static int parse_cpus(struct parse_ctx *c, const char *v, char **why) {
    uint64_t n;
    if (dbx_parse_u64(v, 1, 64, &n) < 0) return *why = dbx_xstrdup("must be a whole number from 1 to 64"), -1;
    c->p->cpus = (unsigned)n;
    return 0;
}

static int parse_memory(struct parse_ctx *c, const char *v, char **why) {
    uint64_t n;
    if (dbx_parse_size(v, &n) < 0 || n < (128ull << 20) || n > (256ull << 30))
        return *why = dbx_xstrdup("must be a size from 128M to 256G (e.g. 512M, 2G)"), -1;
    c->p->memory = n;
    return 0;
}

static const struct {
    const char *section, *key;
    key_parser parse;
} keys[] = {
    {"box", "image", parse_image},
    {"box", "cpus", parse_cpus},
    {"box", "memory", parse_memory},
};

/* inih's line reader: one line per call, so the line count is exact (lines were checked to
 * fit inih's buffer before parsing). */
static char *read_line(char *str, int num, void *stream) {
    struct parse_ctx *c = stream;
    if (!*c->cur) return NULL;
    const char *nl = strchr(c->cur, '\n');
    size_t n = nl ? (size_t)(nl - c->cur + 1) : strlen(c->cur);
    if (n > (size_t)num - 1) n = (size_t)num - 1;
    memcpy(str, c->cur, n);
    str[n] = '\0';
    c->cur += n;
    c->lineno++;
    return str;
}

static int on_entry(void *user, const char *section, const char *name, const char *value) {
    struct parse_ctx *c = user;
    int lineno = c->lineno;
    /* Always 1 ("go on"): we keep the first error ourselves, with its own message. */
    if (c->err) return 1;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(keys); i++) {
        if (strcmp(keys[i].section, section) != 0 || strcmp(keys[i].key, name) != 0) continue;
        if (c->seen & (1u << i))
            return dbx_error_set(&c->err, 0, "%s:%d: duplicate key '%s'", c->path, lineno,
                                 name), 1;
        c->seen |= 1u << i;
        _cleanup_free_ char *why = NULL;
        if (keys[i].parse(c, value, &why) < 0)
            dbx_error_set(&c->err, 0, "%s:%d: [%s] %s: %s", c->path, lineno, section, name,
                          why);
        return 1;
    }
    bool known_section = false;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(keys); i++)
        known_section |= strcmp(keys[i].section, section) == 0;
    if (!known_section)
        dbx_error_set(&c->err, 0, "%s:%d: unknown section '[%s]'", c->path, lineno, section);
    else
        dbx_error_set(&c->err, 0, "%s:%d: unknown key '%s' in [%s]", c->path, lineno, name,
                      section);
    return 1;
}

static int check_text(const char *buf, size_t len, const char *path, dbx_error **err) {
    if (memchr(buf, '\0', len)) return dbx_error_set(err, 0, "%s: contains a NUL byte", path);
    unsigned line = 1;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || buf[i] == '\n') {
            if (i - start > PROFILE_MAX_LINE)
                return dbx_error_set(err, 0, "%s:%u: line longer than %u bytes", path, line,
                                     PROFILE_MAX_LINE);
            start = i + 1;
            line++;
        }
    }
    return 0;
}

void profile_clear(struct profile *p) {
    if (!p) return;
    free(p->image);
    free(p->hostname);
    free(p->user);
    dbx_strv_free(p->protect);
    dbx_strv_free(p->env);
    dbx_strv_free(p->allow);
    dbx_strv_free(p->files);
    for (size_t i = 0; i < p->norigin; i++) {
        free(p->origin[i].key);
        free(p->origin[i].where);
    }
    free(p->origin);
    *p = (struct profile){0};
}

int profile_load(int root_fd, const char *root, const struct profile_user *user,
                 const char *builtin_dir, struct profile *ret, dbx_error **err) {
    (void)user;
    (void)builtin_dir;
    _cleanup_free_ char *display_path = dbx_xasprintf("%s/%s", root, PROFILE_FILE);
    struct profile p = {.image = dbx_xstrdup("default"), .cpus = 1, .memory = 512ull << 20,
                        .hostname = dbx_xstrdup("devbox"), .user = dbx_xstrdup(""),
                        .swap_limit = UINT64_MAX, .no_new_privs = true};
    _cleanup_close_ int fd = openat(root_fd, PROFILE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT) {
            *ret = p;
            return 0;
        }
        int e = errno;
        profile_clear(&p);
        if (e == ELOOP)
            return dbx_error_set(err, 0, "%s: is a symlink; devbox refuses symlinked profiles",
                                 display_path);
        return dbx_error_set(err, e, "open '%s'", display_path);
    }
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0) r = dbx_error_set(err, errno, "stat '%s'", display_path);
    else if (!S_ISREG(st.st_mode)) r = dbx_error_set(err, 0, "%s: not a regular file", display_path);
    else if (dbx_read_all(fd, PROFILE_MAX_BYTES, &buf, &len, err) < 0)
        r = dbx_error_wrap(err, "%s", display_path);
    else r = check_text(buf, len, display_path, err);
    if (r < 0) {
        profile_clear(&p);
        return r;
    }
    struct parse_ctx c = {.p = &p, .path = display_path, .cur = buf};
    int ir = ini_parse_stream(read_line, &c, on_entry, &c);
    if (!c.err && ir != 0)
        dbx_error_set(&c.err, 0, "%s:%d: syntax error", display_path, ir > 0 ? ir : 0);
    if (c.err) {
        profile_clear(&p);
        *err = c.err;
        return -EINVAL;
    }
    *ret = p;
    return 0;
}

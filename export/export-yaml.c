/* export/export-yaml.c: a small YAML writer.  Every value is a double-quoted scalar (YAML 1.2
 * section 7.3.1), the one style whose meaning no content can change: a plain scalar would read
 * "true", "0x1f", "null", "- a", "a: b" or "# c" as something else, and a block scalar depends
 * on the value's own indentation and line ends.  Keys are devbox's constants. */
#define _GNU_SOURCE
#include "export-internal.h"

bool export_utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;
    while (*p) {
        size_t n = dbx_utf8_next((const char *)p, 4, &cp);
        if (n == 0) return false;
        p += n;
    }
    return true;
}

/* Code points a YAML stream may not hold as they are (its c-printable set excludes C0 but tab
 * and line ends, DEL, C1 but NEL, surrogates, U+FFFE/U+FFFF); we escape line ends and NEL too,
 * so that a value is always one line, and U+FEFF, which readers may take for a byte order
 * mark. */
static bool needs_escape(uint32_t cp) {
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0xfeff || cp == 0xfffe ||
           cp == 0xffff;
}

char *export_yaml_quote(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f) dbx_oom_hook();
    fputc('"', f);
    bool ok = true;
    while (*p) {
        uint32_t cp;
        size_t n = dbx_utf8_next((const char *)p, 4, &cp);
        if (n == 0) {
            ok = false;
            break;
        }
        if (cp == '"' || cp == '\\')
            fprintf(f, "\\%c", (char)cp);
        else if (cp == '\n')
            fputs("\\n", f);
        else if (cp == '\t')
            fputs("\\t", f);
        else if (needs_escape(cp))
            fprintf(f, cp < 0x100 ? "\\x%02x" : "\\u%04x", (unsigned)cp);
        else
            fwrite(p, 1, n, f);
        p += n;
    }
    fputc('"', f);
    if (fclose(f) != 0) dbx_oom_hook();
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

void yw_open(struct yw *w) {
    *w = (struct yw){0};
    w->f = open_memstream(&w->buf, &w->len);
    if (!w->f) dbx_oom_hook();
}

char *yw_close(struct yw *w) {
    if (fclose(w->f) != 0) dbx_oom_hook();
    w->f = NULL;
    if (w->bad) {
        free(w->buf);
        w->buf = NULL;
    }
    return TAKE_PTR(w->buf);
}

void y_line(struct yw *w, int ind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(w->f, "%*s", ind, "");
    vfprintf(w->f, fmt, ap);
    fputc('\n', w->f);
    va_end(ap);
}

/* ind spaces, prefix, then the quoted value and a line end. */
static void put_quoted(struct yw *w, int ind, const char *prefix, const char *key,
                       const char *val) {
    _cleanup_free_ char *q = export_yaml_quote(val ? val : "");
    if (!q && !w->bad) w->bad = key;
    fprintf(w->f, "%*s%s%s\n", ind, "", prefix, q ? q : "\"\"");
}

void y_kv(struct yw *w, int ind, const char *key, const char *val) {
    _cleanup_free_ char *prefix = dbx_xasprintf("%s: ", key);
    put_quoted(w, ind, prefix, key, val);
}

void y_dkv(struct yw *w, int ind, const char *key, const char *val) {
    _cleanup_free_ char *prefix = dbx_xasprintf("- %s: ", key);
    put_quoted(w, ind, prefix, key, val);
}

void y_item(struct yw *w, int ind, const char *val) {
    put_quoted(w, ind, "- ", "list item", val);
}

void y_kvn(struct yw *w, int ind, const char *key, long long n) {
    fprintf(w->f, "%*s%s: %lld\n", ind, "", key, n);
}

void y_dkvn(struct yw *w, int ind, const char *key, long long n) {
    fprintf(w->f, "%*s- %s: %lld\n", ind, "", key, n);
}

void y_comment(struct yw *w, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *s = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    /* a line end in a comment would end it: the rest would be YAML */
    for (char *c = s; *c; c++)
        if (*c == '\n' || *c == '\r') *c = '?';
    fprintf(w->f, "#%s%s\n", *s ? " " : "", dbx_sanitize_printable(s));
}

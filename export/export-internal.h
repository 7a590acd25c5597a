/* export/export-internal.h: the YAML writer export-kube.c builds the manifests with
 * (export-yaml.c).  Keys and structure come from devbox's own string constants; every value
 * goes through export_yaml_quote, so no profile byte can change the document's shape. */
#pragma once

#include "export.h"

struct yw {
    FILE *f;
    char *buf;
    size_t len;
    const char *bad; /* the first key whose value was not valid UTF-8, or NULL */
};
void yw_open(struct yw *w);
/* The text written (caller frees), or NULL when a value was not valid UTF-8 (w->bad names
 * its key); the writer is closed either way. */
char *yw_close(struct yw *w);
/* An indented line of devbox's own text (never a value from the input). */
void y_line(struct yw *w, int ind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "key: "VALUE"" / "- key: "VALUE"" / "- "VALUE"" / "key: N" / "- key: N" */
void y_kv(struct yw *w, int ind, const char *key, const char *val);
void y_dkv(struct yw *w, int ind, const char *key, const char *val);
void y_item(struct yw *w, int ind, const char *val);
void y_kvn(struct yw *w, int ind, const char *key, long long n);
void y_dkvn(struct yw *w, int ind, const char *key, long long n);
/* A "# " comment line: terminal and line controls in text become '?'. */
void y_comment(struct yw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether s is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
bool export_utf8_valid(const char *s);

/* oci/oci-ref.c: image references (docker's normalization), digest grammar and platforms. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <sys/utsname.h>

#include "oci/oci-internal.h"

#define NAME_MAX_TOTAL 255
#define TAG_MAX 128

static bool all_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return s[n] == '\0';
}

bool oci_digest_valid(const char *d) {
    if (!d) return false;
    if (dbx_str_has_prefix(d, "sha256:")) return strlen(d + 7) == 64 && all_hex(d + 7, 64);
    if (dbx_str_has_prefix(d, "sha512:")) return strlen(d + 7) == 128 && all_hex(d + 7, 128);
    return false;
}

static bool alnum_lower(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)* */
static bool path_component_valid(const char *s, size_t n) {
    size_t i = 0;
    if (n == 0 || !alnum_lower(s[0])) return false;
    while (i < n) {
        while (i < n && alnum_lower(s[i]))
            i++;
        if (i == n) return true;
        size_t sep = i;
        if (s[i] == '.')
            i++;
        else if (s[i] == '_')
            i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
        else if (s[i] == '-')
            while (i < n && s[i] == '-')
                i++;
        else
            return false;
        if (i == n || !alnum_lower(s[i]) || i == sep) return false;
    }
    return true;
}

static bool path_valid(const char *s) {
    const char *p = s;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!path_component_valid(p, n)) return false;
        if (!slash) return true;
        p = slash + 1;
    }
}

/* host components [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])? joined by '.', or [IPv6], then
 * an optional :port. */
static bool domain_valid(const char *s) {
    const char *p = s;
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (!end || end == p + 1) return false;
        _cleanup_free_ char *a = dbx_xstrndup(p + 1, (size_t)(end - p - 1));
        struct in6_addr in6;
        if (inet_pton(AF_INET6, a, &in6) != 1) return false;
        p = end + 1;
    } else {
        for (;;) {
            if (!isalnum((unsigned char)*p)) return false;
            const char *start = p;
            while (isalnum((unsigned char)*p) || *p == '-')
                p++;
            if (p[-1] == '-' || p - start > 63) return false;
            if (*p != '.') break;
            p++;
        }
    }
    if (*p == '\0') return true;
    if (*p != ':' || !p[1] || strlen(p + 1) > 5) return false;
    for (p++; *p; p++)
        if (!isdigit((unsigned char)*p)) return false;
    return true;
}

static bool tag_valid(const char *t) {
    size_t n = strlen(t);
    if (n == 0 || n > TAG_MAX) return false;
    if (!(isalnum((unsigned char)t[0]) || t[0] == '_')) return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
            return false;
    return true;
}

static bool has_upper(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isupper((unsigned char)s[i])) return true;
    return false;
}

void oci_ref_clear(struct oci_ref *r) {
    if (!r) return;
    free(r->domain);
    free(r->repository);
    free(r->tag);
    free(r->digest);
    *r = (struct oci_ref){0};
}

/* docker/distribution reference.ParseNormalizedNamed, then the tag default. */
int oci_ref_parse(const char *s, struct oci_ref *ret, dbx_error **err) {
    if (!s || !*s) return dbx_error_setx(err, EINVAL, "empty image reference");
    if (strlen(s) > 1024) return dbx_error_setx(err, EINVAL, "image reference too long");
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return dbx_error_setx(err, EINVAL, "invalid image reference: bad character");
    if (strlen(s) == 64 && all_hex(s, 64))
        return dbx_error_setx(err, EINVAL,
                              "invalid image reference '%s': cannot specify 64-byte hexadecimal "
                              "strings",
                              s);
    struct oci_ref r = {0};
    _cleanup_free_ char *rest = NULL;
    const char *slash = strchr(s, '/');
    size_t first = slash ? (size_t)(slash - s) : 0;
    if (!slash || (!memchr(s, '.', first) && !memchr(s, ':', first) &&
                   !(first == 9 && !strncmp(s, "localhost", 9)) && !has_upper(s, first))) {
        r.domain = dbx_xstrdup("docker.io");
        rest = dbx_xstrdup(s);
    } else {
        r.domain = dbx_xstrndup(s, first);
        rest = dbx_xstrdup(slash + 1);
    }
    if (!strcmp(r.domain, "index.docker.io")) {
        free(r.domain);
        r.domain = dbx_xstrdup("docker.io");
    }
    char *at = strchr(rest, '@');
    if (at) {
        *at = '\0';
        r.digest = dbx_xstrdup(at + 1);
    }
    char *colon = strrchr(rest, ':');
    if (colon && !strchr(colon, '/')) {
        *colon = '\0';
        r.tag = dbx_xstrdup(colon + 1);
    }
    if (!strcmp(r.domain, "docker.io") && !strchr(rest, '/'))
        r.repository = dbx_xasprintf("library/%s", rest);
    else
        r.repository = dbx_xstrdup(rest);

    const char *why = NULL;
    if (!domain_valid(r.domain))
        why = "invalid registry name";
    else if (has_upper(r.repository, strlen(r.repository)))
        why = "repository name must be lowercase";
    else if (!path_valid(r.repository))
        why = "invalid repository name";
    else if (strlen(r.domain) + 1 + strlen(r.repository) > NAME_MAX_TOTAL)
        why = "repository name must not be more than 255 characters";
    else if (r.tag && !tag_valid(r.tag))
        why = "invalid tag";
    else if (r.digest && !oci_digest_valid(r.digest))
        why = "invalid digest (sha256:<64 hex> or sha512:<128 hex>)";
    if (why) {
        oci_ref_clear(&r);
        return dbx_error_setx(err, EINVAL, "invalid image reference '%s': %s", s, why);
    }
    if (!r.tag && !r.digest) r.tag = dbx_xstrdup("latest");
    *ret = r;
    return 0;
}

char *oci_ref_format(const struct oci_ref *r) {
    return dbx_xasprintf("%s/%s%s%s%s%s", r->domain, r->repository, r->tag ? ":" : "",
                         r->tag ? r->tag : "", r->digest ? "@" : "", r->digest ? r->digest : "");
}

const char *oci_api_host(const char *domain) {
    return strcmp(domain, "docker.io") ? domain : "registry-1.docker.io";
}

bool oci_host_is_loopback(const char *hostport) {
    _cleanup_free_ char *h = NULL;
    if (hostport[0] == '[') {
        const char *end = strchr(hostport, ']');
        if (!end) return false;
        h = dbx_xstrndup(hostport + 1, (size_t)(end - hostport - 1));
        struct in6_addr a;
        return inet_pton(AF_INET6, h, &a) == 1 && IN6_IS_ADDR_LOOPBACK(&a);
    }
    const char *colon = strchr(hostport, ':');
    h = colon ? dbx_xstrndup(hostport, (size_t)(colon - hostport)) : dbx_xstrdup(hostport);
    if (!strcasecmp(h, "localhost")) return true;
    struct in_addr a;
    /* inet_pton accepts only the dotted-quad spelling, so "127.1" or octal forms do not count */
    return inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* ---- platforms ---------------------------------------------------------------------------- */

static const struct {
    const char *alias, *arch, *variant;
} arch_aliases[] = {
    {"x86_64", "amd64", NULL}, {"x86-64", "amd64", NULL},    {"aarch64", "arm64", NULL},
    {"armhf", "arm", "v7"},    {"armel", "arm", "v6"},       {"i386", "386", NULL},
    {"i686", "386", NULL},     {"ppc64le", "ppc64le", NULL}, {"s390x", "s390x", NULL},
};

void oci_platform_normalize(struct oci_platform *p) {
    for (char *c = p->os; c && *c; c++)
        *c = (char)tolower((unsigned char)*c);
    for (char *c = p->architecture; c && *c; c++)
        *c = (char)tolower((unsigned char)*c);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(arch_aliases); i++) {
        if (strcmp(p->architecture, arch_aliases[i].alias)) continue;
        free(p->architecture);
        p->architecture = dbx_xstrdup(arch_aliases[i].arch);
        if (!p->variant && arch_aliases[i].variant)
            p->variant = dbx_xstrdup(arch_aliases[i].variant);
    }
    if (p->variant && p->variant[0] >= '0' && p->variant[0] <= '9' &&
        (!strcmp(p->architecture, "arm") || !strcmp(p->architecture, "arm64"))) {
        char *v = dbx_xasprintf("v%s", p->variant); /* "8" -> "v8", as containerd does */
        free(p->variant);
        p->variant = v;
    }
    if (!strcmp(p->architecture, "arm64") && p->variant && !strcmp(p->variant, "v8")) {
        free(p->variant);
        p->variant = NULL;
    }
    if (!strcmp(p->architecture, "arm") && !p->variant) p->variant = dbx_xstrdup("v7");
    if (p->variant && !*p->variant) {
        free(p->variant);
        p->variant = NULL;
    }
}

static bool platform_word_valid(const char *s) {
    if (!*s || strlen(s) > 32) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return false;
    return true;
}

int oci_platform_parse(const char *s, struct oci_platform *ret, dbx_error **err) {
    _cleanup_free_ char *copy = dbx_xstrdup(s);
    char *parts[4] = {0};
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 3) return dbx_error_setx(err, EINVAL, "invalid platform '%s': too many parts", s);
        parts[n++] = t;
    }
    if (n < 2 || strstr(s, "//") || s[strlen(s) - 1] == '/')
        return dbx_error_setx(err, EINVAL, "invalid platform '%s': expected OS/ARCH[/VARIANT]", s);
    for (size_t i = 0; i < n; i++)
        if (!platform_word_valid(parts[i]))
            return dbx_error_setx(err, EINVAL, "invalid platform '%s'", s);
    struct oci_platform p = {dbx_xstrdup(parts[0]), dbx_xstrdup(parts[1]),
                             n == 3 ? dbx_xstrdup(parts[2]) : NULL};
    oci_platform_normalize(&p);
    *ret = p;
    return 0;
}

void oci_platform_host(struct oci_platform *ret) {
    struct utsname u;
    const char *m = uname(&u) == 0 ? u.machine : "x86_64";
    struct oci_platform p = {dbx_xstrdup("linux"), dbx_xstrdup(m), NULL};
    if (!strncmp(m, "armv7", 5)) {
        free(p.architecture);
        p.architecture = dbx_xstrdup("arm");
        p.variant = dbx_xstrdup("v7");
    }
    oci_platform_normalize(&p);
    *ret = p;
}

char *oci_platform_format(const struct oci_platform *p) {
    return dbx_xasprintf("%s/%s%s%s", p->os ? p->os : "?", p->architecture ? p->architecture : "?",
                         p->variant ? "/" : "", p->variant ? p->variant : "");
}

void oci_platform_clear(struct oci_platform *p) {
    if (!p) return;
    free(p->os);
    free(p->architecture);
    free(p->variant);
    *p = (struct oci_platform){0};
}

int oci_platform_copy(const struct oci_platform *from, struct oci_platform *to) {
    *to = (struct oci_platform){from->os ? dbx_xstrdup(from->os) : NULL,
                                from->architecture ? dbx_xstrdup(from->architecture) : NULL,
                                from->variant ? dbx_xstrdup(from->variant) : NULL};
    return 0;
}

bool oci_platform_match(const struct oci_platform *want, const struct oci_platform *have) {
    if (!have->os || !have->architecture) return false;
    struct oci_platform w = {0}, h = {0};
    oci_platform_copy(want, &w);
    oci_platform_copy(have, &h);
    oci_platform_normalize(&w);
    oci_platform_normalize(&h);
    bool ok =
        !strcmp(w.os, h.os) && !strcmp(w.architecture, h.architecture) &&
        ((!w.variant && !h.variant) || (w.variant && h.variant && !strcmp(w.variant, h.variant)));
    oci_platform_clear(&w);
    oci_platform_clear(&h);
    return ok;
}

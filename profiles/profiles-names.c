/* profiles/profiles-names.c: the grammars of the names a profile or config.ini writes:
 * host names and network allow patterns (the one grammar the egress proxy parses with too,
 * profiles.h), resolve overrides, IP literals, registry hosts, ports and OCI image references.
 * Each checker returns a normalized copy, or NULL with *why set to a static reason.  The proxy
 * matches against exactly these normalized forms, so an address has one spelling: IPv4 only as
 * a canonical dotted quad (inet_aton's 127.1, 2130706433 and 0x7f.0.0.1 are refused: they are
 * how allowlists get bypassed, R8), IPv6 as inet_ntop prints it, names lower case without a
 * trailing dot. */
#define _GNU_SOURCE
#include "profiles-internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>

#define ALLOW_MAX 262u /* "[" 45-byte IPv6 "/128]:65535" or a 253-byte name ":65535" */

bool prof_port_parse(const char *s, uint16_t *ret) {
    uint64_t n;
    if (s[0] == '0' || dbx_parse_u64(s, 1, 65535, &n) < 0) return false;
    *ret = (uint16_t)n;
    return true;
}

static bool host_label_ok(const char *s, size_t n) {
    if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-') return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-') return false;
    return true;
}

/* A registry host name (the docker reference grammar's letters, digits and inner '-');
 * lower-cased in place, one trailing dot dropped.  NULL when fine, else why. */
static const char *host_name_check(char *h) {
    for (char *s = h; *s; s++)
        *s = (char)tolower((unsigned char)*s);
    size_t n = strlen(h);
    if (n > 1 && h[n - 1] == '.' && h[n - 2] != '.') h[--n] = '\0';
    if (dbx_str_has_prefix(h, "*.")) return "wildcards are not allowed here, only exact names";
    if (strlen(h) > 253) return "host name longer than 253 bytes";
    const char *last = h;
    for (const char *s = h;;) {
        size_t len = strcspn(s, ".");
        if (!host_label_ok(s, len)) return "not a host name or IP address";
        last = s;
        if (!s[len]) break;
        s += len + 1;
    }
    if (strspn(last, "0123456789") == strlen(last)) return "not a host name or IPv4 address";
    return NULL;
}

/* What a URL parser (WHATWG's) would read as an IPv4 number: decimal, 0x-hex (also bare "0x"). */
static bool label_numeric(const char *s, size_t len) {
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (size_t i = 2; i < len; i++)
            if (!isxdigit((unsigned char)s[i])) return false;
        return true;
    }
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return len > 0;
}

int profile_host_name_parse(const char *s, size_t len, char out[DBX_HOST_MAX + 1],
                            const char **why) {
    if (len > 0 && s[len - 1] == '.') len--;
    if (len == 0) return *why = "empty host name", -EINVAL;
    if (len > DBX_HOST_MAX) return *why = "host name longer than 253 bytes", -EINVAL;
    size_t label = 0, last = 0;
    for (size_t i = 0; i < len; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        if (c == '.') {
            if (label == 0) return *why = "empty label in host name", -EINVAL;
            label = 0;
            last = i + 1;
        } else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
            if (++label > 63) return *why = "host name label longer than 63 bytes", -EINVAL;
        } else {
            return *why = "not a host name or canonical IP address", -EINVAL;
        }
        out[i] = c;
    }
    out[len] = '\0';
    if (label == 0) return *why = "empty label in host name", -EINVAL;
    if (label_numeric(out + last, len - last))
        return *why = "not a canonical IP address (write IPv4 as a.b.c.d, IPv6 as [addr])", -EDOM;
    return 0;
}

/* An IP literal as written: AF_INET (canonical dotted quad), AF_INET6, or 0 with *why. */
static int ip_parse(const char *s, void *addr, const char **why) {
    if (strchr(s, ':')) {
        if (inet_pton(AF_INET6, s, addr) == 1) return AF_INET6;
        return *why = "not an IPv6 address", 0;
    }
    if (inet_pton(AF_INET, s, addr) == 1) /* glibc: exactly four decimal parts, no 0 prefix */
        return AF_INET;
    struct in_addr a4;
    if (inet_aton(s, &a4)) return *why = "write IPv4 addresses as a.b.c.d", 0;
    return *why = "not an IP address", 0;
}

static char *ip_str(int af, const void *addr) {
    char buf[INET6_ADDRSTRLEN];
    if (!inet_ntop(af, addr, buf, sizeof(buf)))
        dbx_oom_hook(); /* cannot happen: the buffer fits every address */
    return dbx_xstrdup(buf);
}

char *prof_addr_normalize(const char *in, const char **why) {
    unsigned char a[sizeof(struct in6_addr)];
    if (strlen(in) > INET6_ADDRSTRLEN) return *why = "not an IP address", NULL;
    int af = ip_parse(in, a, why);
    return af ? ip_str(af, a) : NULL;
}

/* Split "host", "host:port", "[v6]", "[v6]:port", bare "v6" into *host and *port. */
static bool split_host_port(const char *in, char **host, const char **port, bool *bracketed,
                            const char **why) {
    *port = NULL;
    *bracketed = in[0] == '[';
    if (*bracketed) {
        const char *rb = strchr(in, ']');
        if (!rb) return *why = "'[' without ']'", false;
        if (rb[1] == ':')
            *port = rb + 2;
        else if (rb[1])
            return *why = "expected ':port' after ']'", false;
        *host = dbx_xstrndup(in + 1, (size_t)(rb - in - 1));
    } else if (strchr(in, ':') != strrchr(in, ':')) {
        *host = dbx_xstrdup(in); /* bare IPv6, no port */
    } else {
        *host = dbx_xstrndup(in, strcspn(in, ":"));
        if (strchr(in, ':')) *port = strchr(in, ':') + 1;
    }
    return true;
}

/* "ADDR" or "ADDR/N" (host, brackets gone) into ret's address. */
static int allow_addr(char *host, struct profile_allow *ret, const char **why) {
    char *slash = strchr(host, '/');
    if (slash) *slash = '\0';
    int af = ip_parse(host, ret->addr.a, why);
    if (!af) return -EINVAL;
    ret->kind = PROFILE_ALLOW_ADDR;
    ret->addr.family = af;
    unsigned bits = af == AF_INET ? 32 : 128;
    ret->prefix = bits;
    ret->cidr = slash != NULL;
    if (slash) {
        /* one spelling: "/08" would be 8 here and octal elsewhere */
        uint64_t n;
        const char *p = slash + 1;
        if ((p[0] == '0' && p[1]) || dbx_parse_u64(p, 0, bits, &n) < 0)
            return *why = af == AF_INET ? "prefix length must be 0 to 32"
                                        : "prefix length must be 0 to 128",
                   -EINVAL;
        ret->prefix = (unsigned)n;
    }
    for (unsigned bit = ret->prefix; bit < bits; bit++)
        if (ret->addr.a[bit / 8] & (0x80 >> (bit % 8)))
            return *why = "address has bits set beyond the prefix length", -EINVAL;
    return 0;
}

/* "name" or "*.domain" into ret. */
static int allow_name(const char *host, struct profile_allow *ret, const char **why) {
    bool wild = dbx_str_has_prefix(host, "*.");
    const char *name = wild ? host + 2 : host, *w = NULL;
    int r = profile_host_name_parse(name, strlen(name), ret->name, &w);
    if (r == -EDOM) return *why = "not a host name or IPv4 address", -EINVAL;
    if (r < 0) return *why = "not a host name, *.domain or IP address", -EINVAL;
    if (wild && !strchr(ret->name, '.'))
        return *why = "'*.' needs a domain of at least two labels", -EINVAL;
    ret->kind = wild ? PROFILE_ALLOW_SUFFIX : PROFILE_ALLOW_NAME;
    return 0;
}

int profile_allow_parse(const char *in, struct profile_allow *ret, const char **why) {
    if (strlen(in) > ALLOW_MAX) return *why = "longer than 262 bytes", -EINVAL;
    _cleanup_free_ char *host = NULL;
    const char *port;
    bool br;
    if (!split_host_port(in, &host, &port, &br, why)) return -EINVAL;
    struct profile_allow a = {0};
    if (port && !prof_port_parse(port, &a.port)) return *why = "port must be 1 to 65535", -EINVAL;
    if (br && !strchr(host, ':')) return *why = "brackets are only for IPv6 addresses", -EINVAL;
    int r;
    if (strchr(host, '/') || strchr(host, ':')) {
        r = allow_addr(host, &a, why);
    } else {
        /* an IPv4 literal, a spelling of one that must be refused, or a name */
        unsigned char a4[sizeof(struct in_addr)];
        const char *w = NULL;
        if (ip_parse(host, a4, &w) == AF_INET)
            r = allow_addr(host, &a, why);
        else if (w && strcmp(w, "write IPv4 addresses as a.b.c.d") == 0)
            r = (*why = w, -EINVAL);
        else
            r = allow_name(host, &a, why);
    }
    if (r < 0) return r;
    *ret = a;
    return 0;
}

char *profile_allow_format(const struct profile_allow *a) {
    char addr[INET6_ADDRSTRLEN];
    _cleanup_free_ char *host = NULL;
    if (a->kind == PROFILE_ALLOW_ADDR) {
        dbx_addr_format(&a->addr, addr);
        host = a->cidr ? dbx_xasprintf("%s/%u", addr, a->prefix) : dbx_xstrdup(addr);
    } else {
        host = dbx_xasprintf("%s%s", a->kind == PROFILE_ALLOW_SUFFIX ? "*." : "", a->name);
    }
    if (!a->port) return TAKE_PTR(host);
    bool v6 = a->kind == PROFILE_ALLOW_ADDR && a->addr.family == AF_INET6;
    return dbx_xasprintf(v6 ? "[%s]:%u" : "%s:%u", host, a->port);
}

char *prof_allow_normalize(const char *in, const char **why) {
    struct profile_allow a;
    if (profile_allow_parse(in, &a, why) < 0) return NULL;
    return profile_allow_format(&a);
}

char *prof_resolve_normalize(const char *in, const char **why) {
    const char *colon = strchr(in, ':');
    if (!colon) return *why = "expected 'name:address'", NULL;
    if (strlen(in) > ALLOW_MAX) return *why = "longer than 262 bytes", NULL;
    _cleanup_free_ char *name = dbx_xstrndup(in, (size_t)(colon - in));
    const char *w = NULL;
    unsigned char a[sizeof(struct in6_addr)];
    if (ip_parse(name, a, &w) || (w && strcmp(w, "write IPv4 addresses as a.b.c.d") == 0))
        return *why = "the name must be a host name, not an address", NULL;
    /* the proxy looks the request's host up by this name: the allow patterns' name grammar */
    if (dbx_str_has_prefix(name, "*."))
        return *why = "wildcards are not allowed here, only exact names", NULL;
    char norm[DBX_HOST_MAX + 1];
    int r = profile_host_name_parse(name, strlen(name), norm, &w);
    if (r < 0)
        return *why =
                   r == -EDOM ? "not a host name or IPv4 address" : "not a host name or IP address",
               NULL;
    _cleanup_free_ char *addr = NULL;
    const char *v = colon + 1;
    if (v[0] == '[' && v[strlen(v) - 1] == ']') {
        _cleanup_free_ char *inner = dbx_xstrndup(v + 1, strlen(v) - 2);
        addr = strchr(inner, ':') ? prof_addr_normalize(inner, why) : NULL;
        if (!addr && !strchr(inner, ':')) *why = "brackets are only for IPv6 addresses";
    } else {
        addr = prof_addr_normalize(v, why);
    }
    if (!addr) return NULL;
    return dbx_xasprintf("%s:%s", norm, addr);
}

char *prof_registry_normalize(const char *in, const char **why) {
    if (strlen(in) > ALLOW_MAX) return *why = "longer than 262 bytes", NULL;
    _cleanup_free_ char *host = NULL;
    const char *port;
    bool br;
    if (!split_host_port(in, &host, &port, &br, why)) return NULL;
    uint16_t pn = 0;
    if (port && !prof_port_parse(port, &pn)) return *why = "port must be 1 to 65535", NULL;
    if (strchr(host, '/')) return *why = "a registry is one host, not a network", NULL;
    _cleanup_free_ char *norm = NULL;
    if (br || strchr(host, ':')) {
        unsigned char a[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET6, host, a) != 1) return *why = "not an IPv6 address", NULL;
        _cleanup_free_ char *s = ip_str(AF_INET6, a);
        norm = dbx_xasprintf("[%s]", s); /* as in an image reference's domain */
    } else {
        unsigned char a[sizeof(struct in_addr)];
        const char *w = NULL;
        if (ip_parse(host, a, &w) == AF_INET)
            norm = ip_str(AF_INET, a);
        else if (w && strcmp(w, "write IPv4 addresses as a.b.c.d") == 0)
            return *why = w, NULL;
        else if ((*why = host_name_check(host)))
            return NULL;
        else
            norm = TAKE_PTR(host);
    }
    return pn ? dbx_xasprintf("%s:%u", norm, pn) : TAKE_PTR(norm);
}

/* ---- OCI image references -------------------------------------------------------------------
 * The docker/distribution reference grammar:
 *   reference := name [":" tag] ["@" digest]
 *   name      := [domain "/"] path-component ("/" path-component)*
 *   domain    := host [":" port], host a DNS name, IPv4 or "[" IPv6 "]"
 *   path-component := [a-z0-9]+ ((separator) [a-z0-9]+)*, separator "." | "_" | "__" | "-"+
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest    := "sha256:" [0-9a-f]{64} (the only algorithm devbox accepts, R6)
 * The first component is a domain when it has a '.' or ':', is "localhost", or has upper
 * case.  The name is at most 255 bytes (docker's NameTotalLengthMax). */

static bool alnum_lower(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool path_component_ok(const char *s, size_t n) {
    if (n == 0 || !alnum_lower(s[0]) || !alnum_lower(s[n - 1])) return false;
    for (size_t i = 0; i < n;) {
        if (alnum_lower(s[i])) {
            i++;
            continue;
        }
        size_t sep = 1;
        if (s[i] == '_' && s[i + 1] == '_')
            sep = 2;
        else if (s[i] == '-')
            sep = strspn(s + i, "-");
        else if (s[i] != '.' && s[i] != '_')
            return false;
        i += sep;
        if (i >= n || !alnum_lower(s[i])) return false;
    }
    return true;
}

static const char *domain_check(const char *s, size_t n) {
    _cleanup_free_ char *d = dbx_xstrndup(s, n);
    _cleanup_free_ char *host = NULL;
    const char *port, *why = NULL;
    bool br;
    if (!split_host_port(d, &host, &port, &br, &why)) return "registry host is not host[:port]";
    uint16_t pn;
    if (port && !prof_port_parse(port, &pn)) return "registry port must be 1 to 65535";
    if (br) {
        unsigned char a[sizeof(struct in6_addr)];
        return inet_pton(AF_INET6, host, a) == 1 ? NULL : "registry host '[...]' is not IPv6";
    }
    if (strchr(host, ':')) return "an IPv6 registry host needs brackets";
    for (const char *c = host; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.')
            return "registry host is not a host name or address";
    for (const char *c = host;;) {
        size_t len = strcspn(c, ".");
        if (!host_label_ok(c, len)) return "registry host is not a host name or address";
        if (!c[len]) break;
        c += len + 1;
    }
    return NULL;
}

static bool tag_ok(const char *s, size_t n) {
    if (n < 1 || n > 128 || !(isalnum((unsigned char)s[0]) || s[0] == '_')) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i])) return false;
    return true;
}

bool prof_image_ref_ok(const char *ref, const char **why) {
    size_t len = strlen(ref);
    if (len == 0) return *why = "empty", false;
    if (len > PROFILE_MAX_IMAGE_REF) return *why = "longer than 512 bytes", false;
    const char *at = strchr(ref, '@');
    size_t name_end = at ? (size_t)(at - ref) : len;
    if (at) {
        const char *dg = at + 1;
        if (!dbx_str_has_prefix(dg, "sha256:") || strlen(dg) != 71 ||
            strspn(dg + 7, "0123456789abcdef") != 64)
            return *why = "the digest must be 'sha256:' and 64 lower-case hex digits", false;
    }
    /* a tag is after the last ':' that follows the last '/' */
    const char *slash = memrchr(ref, '/', name_end);
    const char *from = slash ? slash : ref;
    const char *colon = memrchr(from, ':', name_end - (size_t)(from - ref));
    if (colon) {
        if (!tag_ok(colon + 1, name_end - (size_t)(colon + 1 - ref)))
            return *why = "the tag must be 1 to 128 of A-Z a-z 0-9 _ . - and not start with '.' "
                          "or '-'",
                   false;
        name_end = (size_t)(colon - ref);
    }
    if (name_end > 255) return *why = "the name is longer than 255 bytes", false;
    const char *s = ref, *end = ref + name_end;
    size_t first = strcspn(s, "/");
    if (first < name_end) {
        bool domain = memchr(s, '.', first) || memchr(s, ':', first) ||
                      (first == 9 && memcmp(s, "localhost", 9) == 0);
        for (size_t i = 0; !domain && i < first; i++)
            domain = isupper((unsigned char)s[i]);
        if (domain) {
            if ((*why = domain_check(s, first))) return false;
            s += first + 1;
        }
    }
    while (s <= end) {
        const char *sl = memchr(s, '/', (size_t)(end - s));
        size_t n = sl ? (size_t)(sl - s) : (size_t)(end - s);
        if (!path_component_ok(s, n))
            return *why = "repository path components are lower-case a-z 0-9 separated by '.', "
                          "'_', '__' or '-'",
                   false;
        s += n + 1;
    }
    return true;
}

/* ---- the upstream proxy ------------------------------------------------------------------ */

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decode n bytes of a URL's userinfo; NULL when an escape is malformed or decodes to
 * a control character (it goes into a header, base64-encoded, but a NUL would cut it). */
static char *userinfo_decode(const char *s, size_t n) {
    _cleanup_free_ char *out = dbx_xcalloc(1, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) return NULL;
            c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f) return NULL;
        out[k++] = (char)c;
    }
    return TAKE_PTR(out);
}

/* The length of url's scheme and "://" (RFC 3986: a letter, then letters, digits, '+', '-',
 * '.'), or 0 when it starts with none: a "://" later on is part of a password. */
static size_t scheme_len(const char *url) {
    if (!isalpha((unsigned char)url[0])) return 0;
    size_t i = 1;
    while (isalnum((unsigned char)url[i]) || url[i] == '+' || url[i] == '-' || url[i] == '.')
        i++;
    return strncmp(url + i, "://", 3) == 0 ? i + 3 : 0;
}

int profile_proxy_parse(const char *url, struct profile_proxy *ret, const char **why) {
    size_t len = strlen(url);
    if (len == 0) return *why = "empty", -EINVAL;
    if (len > PROFILE_PROXY_MAX) return *why = "longer than 1024 bytes", -EINVAL;
    const char *s = url;
    size_t sl = scheme_len(url);
    if (sl) {
        if (sl != 7 || strncasecmp(s, "http", 4) != 0)
            return *why = "only an http:// proxy is supported (the box's TLS goes through it "
                          "as a CONNECT tunnel)",
                   -EINVAL;
        s += sl;
    }
    _cleanup_free_ char *rest = dbx_xstrdup(s);
    size_t rl = strlen(rest);
    if (rl && rest[rl - 1] == '/') rest[--rl] = '\0';
    if (strpbrk(rest, "/?#")) return *why = "a proxy URL has no path, query or fragment", -EINVAL;
    char *at = strrchr(rest, '@');
    _cleanup_free_ char *userinfo = NULL;
    const char *hostport = rest;
    if (at) {
        if (at == rest) return *why = "empty user name before '@'", -EINVAL;
        if ((size_t)(at - rest) > PROFILE_PROXY_USERINFO_MAX)
            return *why = "user name and password longer than 512 bytes", -EINVAL;
        userinfo = userinfo_decode(rest, (size_t)(at - rest));
        if (!userinfo)
            return *why = "user name or password: a bad %-escape or a control character", -EINVAL;
        hostport = at + 1;
    }
    struct profile_allow h;
    if (profile_allow_parse(hostport, &h, why) < 0) return -EINVAL;
    if (h.kind == PROFILE_ALLOW_SUFFIX || (h.kind == PROFILE_ALLOW_ADDR && h.cidr))
        return *why = "the proxy must be one host name or address", -EINVAL;
    if (!h.port) return *why = "needs a port (http://proxy.example:3128)", -EINVAL;
    *ret = (struct profile_proxy){.host = h, .userinfo = TAKE_PTR(userinfo)};
    return 0;
}

void profile_proxy_clear(struct profile_proxy *p) {
    if (!p) return;
    if (p->userinfo) explicit_bzero(p->userinfo, strlen(p->userinfo));
    free(p->userinfo);
    *p = (struct profile_proxy){0};
}

char *profile_proxy_display(const struct profile_proxy *p) {
    _cleanup_free_ char *hp = profile_allow_format(&p->host);
    if (!p->userinfo) return dbx_xasprintf("http://%s", hp);
    _cleanup_free_ char *user = dbx_xstrndup(p->userinfo, strcspn(p->userinfo, ":"));
    dbx_sanitize_printable(user);
    return dbx_xasprintf("http://%s:***@%s", user, hp);
}

char *profile_proxy_redact(const char *url) {
    const char *start = url + scheme_len(url), *at = strrchr(start, '@');
    _cleanup_free_ char *out = NULL;
    if (at) {
        out = dbx_xasprintf("%.*s***%s", (int)(start - url), url, at);
    } else {
        /* no '@': a ':' not followed by a port may still start a password ("http://u:pw") */
        const char *colon = strchr(start, ':');
        size_t n = colon ? strspn(colon + 1, "0123456789") : 0;
        bool port = colon && n > 0 && (colon[1 + n] == '\0' || strcmp(colon + 1 + n, "/") == 0);
        out = colon && !port && start[0] != '[' ? dbx_xasprintf("%.*s:***", (int)(colon - url), url)
                                                : dbx_xstrdup(url);
    }
    return dbx_sanitize_printable(TAKE_PTR(out));
}

char *profile_no_proxy_normalize(const char *in, const char **why) {
    if (strcmp(in, "*") == 0) return dbx_xstrdup("*");
    const char *s = dbx_str_has_prefix(in, "*.") ? in + 2 : in[0] == '.' ? in + 1 : in;
    struct profile_allow a;
    if (profile_allow_parse(s, &a, why) < 0) return NULL;
    if (a.port) return *why = "no_proxy entries take no port", NULL;
    if (a.kind == PROFILE_ALLOW_SUFFIX) return *why = "not a host name or IP address", NULL;
    return profile_allow_format(&a);
}

bool profile_no_proxy_match(const struct profile_allow *e, bool is_addr, const struct dbx_addr *a,
                            const char *name) {
    if (e->kind == PROFILE_ALLOW_ADDR) return is_addr && dbx_addr_in(a, &e->addr, e->prefix);
    if (is_addr || e->kind != PROFILE_ALLOW_NAME) return false;
    size_t hl = strlen(name), el = strlen(e->name);
    return strcmp(name, e->name) == 0 ||
           (hl > el + 1 && name[hl - el - 1] == '.' && strcmp(name + hl - el, e->name) == 0);
}

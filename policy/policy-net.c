/* policy/policy-net.c: host names, IP literals, address classes and allow patterns: the pure
 * half of the egress proxy's decision (R8 in docs/SECURITY.md's sources: decisions use the
 * address actually connected, in every spelling).
 *
 * Request hosts accept exactly one spelling of an IPv4 address (the canonical dotted quad),
 * because inet_aton and browsers also read 127.1, 2130706433, 0x7f.0.0.1 and 0177.0.0.1 as
 * 127.0.0.1: a matcher that compares text would otherwise be bypassed. */
#include <arpa/inet.h>
#include <ctype.h>

#include "policy-internal.h"

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

static bool parse_quad(const char *s, size_t len, uint8_t out[4]) {
    struct dbx_addr a;
    if (dbx_addr_parse(s, len, AF_INET, &a) < 0) return false;
    memcpy(out, a.a, 4);
    return true;
}

/* What WHATWG's URL parser would read as an IPv4 number: decimal, 0x-hex (also bare "0x"). */
static bool label_numeric(const char *s, size_t len) {
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (size_t i = 2; i < len; i++)
            if (!isxdigit((unsigned char)s[i])) return false;
        return true;
    }
    for (size_t i = 0; i < len; i++)
        if (!is_digit(s[i])) return false;
    return len > 0;
}

/* A DNS name, lower-cased into out (DBX_HOST_MAX + 1), one trailing dot dropped. */
static const char *parse_name(const char *s, size_t len, char *out) {
    if (len > 0 && s[len - 1] == '.') len--;
    if (len == 0) return "empty host name";
    if (len > DBX_HOST_MAX) return "host name longer than 253 bytes";
    size_t label = 0, last = 0;
    for (size_t i = 0; i < len; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        if (c == '.') {
            if (label == 0) return "empty label in host name";
            label = 0;
            last = i + 1;
        } else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
            if (++label > 63) return "host name label longer than 63 bytes";
        } else {
            return "not a host name or canonical IP address";
        }
        out[i] = c;
    }
    out[len] = '\0';
    if (label == 0) return "empty label in host name";
    if (label_numeric(out + last, len - last))
        return "not a canonical IP address (write IPv4 as a.b.c.d, IPv6 as [addr])";
    return NULL;
}

int policy_host_parse(const char *s, size_t len, struct policy_host *ret, const char **why) {
    *ret = (struct policy_host){0};
    if (len > 0 && s[0] == '[') {
        char buf[INET6_ADDRSTRLEN + 1];
        size_t n = len - 1;
        if (len < 3 || s[len - 1] != ']' || n - 1 >= sizeof(buf)) {
            *why = "not a bracketed IPv6 address";
            return -EINVAL;
        }
        memcpy(buf, s + 1, n - 1);
        buf[n - 1] = '\0';
        if (memchr(buf, '\0', n - 1) || inet_pton(AF_INET6, buf, ret->addr.a) != 1) {
            *why = "not a bracketed IPv6 address";
            return -EINVAL;
        }
        ret->is_addr = true;
        ret->addr.family = AF_INET6;
        dbx_addr_format(&ret->addr, ret->name);
        return 0;
    }
    if (parse_quad(s, len, ret->addr.a)) {
        ret->is_addr = true;
        ret->addr.family = AF_INET;
        dbx_addr_format(&ret->addr, ret->name);
        return 0;
    }
    const char *w = parse_name(s, len, ret->name);
    if (w) {
        ret->name[0] = '\0';
        *why = w;
        return -EINVAL;
    }
    return 0;
}

/* ---- allow patterns --------------------------------------------------------------------- */

static int pattern_port(const char *s, uint16_t *ret) {
    uint64_t v;
    if (s[0] == '0' || dbx_parse_u64(s, 1, 65535, &v) < 0) return -EINVAL;
    *ret = (uint16_t)v;
    return 0;
}

/* "addr" or "addr/len" into an ADDR pattern; host bits must be zero. */
static const char *pattern_addr(const char *s, size_t len, int family, struct policy_pattern *p) {
    char buf[INET6_ADDRSTRLEN + 8];
    if (len >= sizeof(buf)) return "not an IP address";
    memcpy(buf, s, len);
    buf[len] = '\0';
    unsigned max = family == AF_INET ? 32 : 128;
    p->prefix = max;
    char *slash = strchr(buf, '/');
    if (slash) {
        uint64_t v;
        *slash = '\0';
        if (dbx_parse_u64(slash + 1, 0, max, &v) < 0) return "bad prefix length";
        p->prefix = (unsigned)v;
    }
    p->kind = POLICY_PAT_ADDR;
    p->addr.family = family;
    if (family == AF_INET ? !parse_quad(buf, strlen(buf), p->addr.a)
                          : inet_pton(AF_INET6, buf, p->addr.a) != 1)
        return family == AF_INET ? "write IPv4 addresses as a.b.c.d" : "not an IPv6 address";
    for (unsigned bit = p->prefix; bit < max; bit++)
        if (p->addr.a[bit / 8] & (0x80 >> (bit % 8)))
            return "address has bits set after the prefix";
    return NULL;
}

static const char *pattern_host(const char *s, size_t len, struct policy_pattern *p) {
    const char *slash = memchr(s, '/', len);
    size_t hostlen = slash ? (size_t)(slash - s) : len;
    uint8_t quad[4];
    if (parse_quad(s, hostlen, quad)) return pattern_addr(s, len, AF_INET, p);
    if (slash) return "a prefix length needs an address";
    bool wild = len >= 2 && s[0] == '*' && s[1] == '.';
    if (wild) {
        s += 2;
        len -= 2;
    }
    const char *why = parse_name(s, len, p->name);
    if (why) return why;
    if (wild && !strchr(p->name, '.')) return "'*.' needs a domain of at least two labels";
    p->kind = wild ? POLICY_PAT_SUFFIX : POLICY_PAT_NAME;
    return NULL;
}

int policy_pattern_parse(const char *s, struct policy_pattern *ret, dbx_error **err) {
    struct policy_pattern p = {0};
    const char *why = NULL;
    size_t len = strlen(s);
    if (len > DBX_HOST_MAX + 16) {
        why = "too long";
    } else if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb)
            why = "'[' without ']'";
        else if (rb[1] && (rb[1] != ':' || pattern_port(rb + 2, &p.port) < 0))
            why = "expected ':PORT' (1-65535) after ']'";
        else
            why = pattern_addr(s + 1, (size_t)(rb - s - 1), AF_INET6, &p);
    } else if (strchr(s, ':') != strrchr(s, ':')) {
        why = pattern_addr(s, len, AF_INET6, &p); /* bare IPv6: no port */
    } else {
        const char *colon = strchr(s, ':');
        if (colon && pattern_port(colon + 1, &p.port) < 0)
            why = "port must be 1 to 65535";
        else
            why = pattern_host(s, colon ? (size_t)(colon - s) : len, &p);
    }
    if (why) return dbx_error_setx(err, EINVAL, "network.allow: '%s': %s", s, why);
    *ret = p;
    return 0;
}

static bool port_ok(const struct policy_pattern *p, uint16_t port) {
    return p->port ? port == p->port : port == 443 || port == 80;
}

static bool addr_in(const struct policy_pattern *p, const struct dbx_addr *a) {
    return p->kind == POLICY_PAT_ADDR && dbx_addr_in(a, &p->addr, p->prefix);
}

bool policy_pattern_match(const struct policy_pattern *p, const struct policy_host *h,
                          uint16_t port) {
    if (!port_ok(p, port)) return false;
    if (h->is_addr) return addr_in(p, &h->addr);
    switch (p->kind) {
    case POLICY_PAT_NAME:
        return strcmp(h->name, p->name) == 0;
    case POLICY_PAT_SUFFIX: {
        /* on a label boundary, and never the bare domain */
        size_t hl = strlen(h->name), sl = strlen(p->name);
        return hl > sl + 1 && h->name[hl - sl - 1] == '.' &&
               strcmp(h->name + hl - sl, p->name) == 0;
    }
    default:
        return false;
    }
}

bool policy_allowed(const struct policy_pattern *pats, size_t n, const struct policy_host *h,
                    uint16_t port) {
    for (size_t i = 0; i < n; i++)
        if (policy_pattern_match(&pats[i], h, port)) return true;
    return false;
}

const char *policy_addr_refused(const struct policy_pattern *pats, size_t n,
                                const struct dbx_addr *a) {
    enum dbx_addr_class c = dbx_addr_classify(a);
    if (c == DBX_ADDR_PUBLIC) return NULL;
    for (size_t i = 0; i < n; i++)
        if (addr_in(&pats[i], a)) return NULL;
    return dbx_addr_class_name(c);
}

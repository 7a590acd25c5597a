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

/* Exactly four decimal parts 0..255, no leading zeros (the plan's own rule, dbx_parse_ipv4);
 * s is not NUL-terminated, and an embedded NUL must not end it early. */
static bool parse_quad(const char *s, size_t len, uint8_t out[4]) {
    char b[16];
    if (len >= sizeof(b) || memchr(s, '\0', len)) return false;
    memcpy(b, s, len);
    b[len] = '\0';
    return dbx_parse_ipv4(b, out, NULL) == 0;
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

/* A DNS name, lower-cased into out (POLICY_HOST_MAX + 1), one trailing dot dropped. */
static const char *parse_name(const char *s, size_t len, char *out) {
    if (len > 0 && s[len - 1] == '.') len--;
    if (len == 0) return "empty host name";
    if (len > POLICY_HOST_MAX) return "host name longer than 253 bytes";
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
        policy_addr_format(&ret->addr, ret->name);
        return 0;
    }
    if (parse_quad(s, len, ret->addr.a)) {
        ret->is_addr = true;
        ret->addr.family = AF_INET;
        policy_addr_format(&ret->addr, ret->name);
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

int policy_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct policy_addr *ret) {
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        *ret = (struct policy_addr){.family = AF_INET};
        memcpy(ret->a, &in->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        *ret = (struct policy_addr){.family = AF_INET6};
        memcpy(ret->a, &in6->sin6_addr, 16);
        return 0;
    }
    return -EINVAL;
}

char *policy_addr_format(const struct policy_addr *a, char *buf) {
    if (!inet_ntop(a->family, a->a, buf, INET6_ADDRSTRLEN)) strcpy(buf, "?");
    return buf;
}

/* ---- address classes ------------------------------------------------------------------------ */

#define V4(a, b, c, d)                                                                             \
    AF_INET, {                                                                                     \
        a, b, c, d                                                                                 \
    }

/* Matched in order, first match wins: more specific rows come first.  docs/network.md lists
 * every row that is not public, in this order, with the same words (test-policy-net.c checks:
 * change both together). */
static const struct policy_addr_range ranges[] = {
    {V4(169, 254, 169, 254), 32, POLICY_ADDR_METADATA, "cloud metadata service"},
    {V4(255, 255, 255, 255), 32, POLICY_ADDR_BROADCAST, "limited broadcast (RFC 919)"},
    {V4(0, 0, 0, 0), 8, POLICY_ADDR_UNSPECIFIED, "this network (RFC 791)"},
    {V4(10, 0, 0, 0), 8, POLICY_ADDR_PRIVATE, "private (RFC 1918)"},
    {V4(100, 64, 0, 0), 10, POLICY_ADDR_CGNAT, "shared address space, CGNAT (RFC 6598)"},
    {V4(127, 0, 0, 0), 8, POLICY_ADDR_LOOPBACK, "loopback"},
    {V4(169, 254, 0, 0), 16, POLICY_ADDR_LINK_LOCAL, "link-local (RFC 3927)"},
    {V4(172, 16, 0, 0), 12, POLICY_ADDR_PRIVATE, "private (RFC 1918)"},
    {V4(192, 0, 0, 0), 24, POLICY_ADDR_RESERVED, "IETF protocol assignments (RFC 6890)"},
    {V4(192, 0, 2, 0), 24, POLICY_ADDR_RESERVED, "documentation (RFC 5737)"},
    {V4(192, 88, 99, 0), 24, POLICY_ADDR_RESERVED, "6to4 relay anycast (RFC 7526)"},
    {V4(192, 168, 0, 0), 16, POLICY_ADDR_PRIVATE, "private (RFC 1918)"},
    {V4(198, 18, 0, 0), 15, POLICY_ADDR_RESERVED, "benchmarking (RFC 2544)"},
    {V4(198, 51, 100, 0), 24, POLICY_ADDR_RESERVED, "documentation (RFC 5737)"},
    {V4(203, 0, 113, 0), 24, POLICY_ADDR_RESERVED, "documentation (RFC 5737)"},
    {V4(224, 0, 0, 0), 4, POLICY_ADDR_MULTICAST, "multicast"},
    {V4(240, 0, 0, 0), 4, POLICY_ADDR_RESERVED, "reserved for future use (RFC 1112)"},
    /* NAT64's well-known prefix reaches the embedded IPv4 address: judged by that address
     * (policy_addr_range_of), this row only when that one is refused */
    {AF_INET6,
     {0, 0x64, 0xff, 0x9b},
     96,
     POLICY_ADDR_NAT64,
     "NAT64 (RFC 6052) of a refused IPv4 address"},
    {AF_INET6, {0}, 128, POLICY_ADDR_UNSPECIFIED, "unspecified"},
    {AF_INET6,
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
     128,
     POLICY_ADDR_LOOPBACK,
     "loopback"},
    {AF_INET6,
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
     96,
     POLICY_ADDR_MAPPED,
     "IPv4-mapped (RFC 4291)"},
    {AF_INET6,
     {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
     96,
     POLICY_ADDR_MAPPED,
     "IPv4-translated, SIIT (RFC 2765)"},
    {AF_INET6, {0}, 96, POLICY_ADDR_UNSPECIFIED, "IPv4-compatible, deprecated (RFC 4291)"},
    {AF_INET6, {0, 0x64, 0xff, 0x9b, 0, 1}, 48, POLICY_ADDR_NAT64, "local-use NAT64 (RFC 8215)"},
    {AF_INET6, {0x01, 0x00}, 64, POLICY_ADDR_RESERVED, "discard-only (RFC 6666)"},
    {AF_INET6, {0x20, 0x01, 0x0d, 0xb8}, 32, POLICY_ADDR_RESERVED, "documentation (RFC 3849)"},
    {AF_INET6, {0x20, 0x01, 0, 0}, 32, POLICY_ADDR_TUNNEL, "Teredo (RFC 4380)"},
    {AF_INET6,
     {0x20, 0x01, 0, 0},
     23,
     POLICY_ADDR_RESERVED,
     "IETF protocol assignments (RFC 2928)"},
    {AF_INET6, {0x20, 0x02}, 16, POLICY_ADDR_TUNNEL, "6to4 (RFC 3056)"},
    {AF_INET6, {0x3f, 0xff}, 20, POLICY_ADDR_RESERVED, "documentation (RFC 9637)"},
    {AF_INET6, {0x20}, 3, POLICY_ADDR_PUBLIC, "global unicast"},
    {AF_INET6,
     {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54},
     128,
     POLICY_ADDR_METADATA,
     "cloud metadata service (EC2)"},
    {AF_INET6, {0xfc}, 7, POLICY_ADDR_PRIVATE, "unique local (RFC 4193)"},
    {AF_INET6, {0xfe, 0x80}, 10, POLICY_ADDR_LINK_LOCAL, "link-local (RFC 4291)"},
    {AF_INET6, {0xfe, 0xc0}, 10, POLICY_ADDR_PRIVATE, "site-local, deprecated (RFC 3879)"},
    {AF_INET6, {0xff}, 8, POLICY_ADDR_MULTICAST, "multicast"},
    /* only 2000::/3 is allocated as global unicast */
    {AF_INET6, {0}, 0, POLICY_ADDR_RESERVED, "not global unicast (outside 2000::/3)"},
};

const struct policy_addr_range *policy_addr_ranges(size_t *ret_n) {
    *ret_n = DBX_ARRAY_SIZE(ranges);
    return ranges;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned prefix) {
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, whole) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (net[whole] & mask);
}

static const struct policy_addr_range *range_of(int family, const uint8_t *a) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ranges); i++)
        if (ranges[i].family == family && prefix_match(a, ranges[i].net, ranges[i].prefix))
            return &ranges[i];
    return NULL;
}

const struct policy_addr_range *policy_addr_range_of(const struct policy_addr *a) {
    static const struct policy_addr_range unknown = {
        0, {0}, 0, POLICY_ADDR_RESERVED, "not an IP address"};
    if (a->family != AF_INET && a->family != AF_INET6) return &unknown;
    const struct policy_addr_range *r = range_of(a->family, a->a);
    if (r && r->family == AF_INET6 && r->cls == POLICY_ADDR_NAT64 && r->prefix == 96 &&
        !range_of(AF_INET, a->a + 12))
        return NULL; /* NAT64 of a public IPv4 address */
    return r && r->cls != POLICY_ADDR_PUBLIC ? r : NULL;
}

enum policy_addr_class policy_addr_classify(const struct policy_addr *a) {
    const struct policy_addr_range *r = policy_addr_range_of(a);
    return r ? r->cls : POLICY_ADDR_PUBLIC;
}

const char *policy_addr_class_name(enum policy_addr_class c) {
    static const char *const names[] = {
        [POLICY_ADDR_PUBLIC] = "public",
        [POLICY_ADDR_LOOPBACK] = "loopback",
        [POLICY_ADDR_PRIVATE] = "private",
        [POLICY_ADDR_LINK_LOCAL] = "link-local",
        [POLICY_ADDR_METADATA] = "cloud metadata",
        [POLICY_ADDR_CGNAT] = "shared (CGNAT)",
        [POLICY_ADDR_MULTICAST] = "multicast",
        [POLICY_ADDR_BROADCAST] = "broadcast",
        [POLICY_ADDR_UNSPECIFIED] = "unspecified",
        [POLICY_ADDR_MAPPED] = "IPv4-mapped",
        [POLICY_ADDR_NAT64] = "NAT64",
        [POLICY_ADDR_TUNNEL] = "6to4/Teredo",
        [POLICY_ADDR_RESERVED] = "reserved",
    };
    return (unsigned)c < DBX_ARRAY_SIZE(names) && names[c] ? names[c] : "unknown";
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
    if (len > POLICY_HOST_MAX + 16) {
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

static bool addr_in(const struct policy_pattern *p, const struct policy_addr *a) {
    return p->kind == POLICY_PAT_ADDR && p->addr.family == a->family &&
           prefix_match(a->a, p->addr.a, p->prefix);
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
                                const struct policy_addr *a) {
    enum policy_addr_class c = policy_addr_classify(a);
    if (c == POLICY_ADDR_PUBLIC) return NULL;
    for (size_t i = 0; i < n; i++)
        if (addr_in(&pats[i], a)) return NULL;
    return policy_addr_class_name(c);
}

/* common/netaddr.c: IP addresses and their classes (the contract is in netaddr.h).  The
 * classifier follows R8 in docs/SECURITY.md's sources: decisions use the address actually
 * connected, in every spelling. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "common.h"

int dbx_addr_parse(const char *s, size_t len, int family, struct dbx_addr *ret) {
    char b[INET6_ADDRSTRLEN];
    if (len >= sizeof(b) || memchr(s, '\0', len)) return -EINVAL;
    memcpy(b, s, len);
    b[len] = '\0';
    struct dbx_addr a = {.family = family};
    /* glibc's inet_pton(AF_INET) takes exactly four decimal parts without leading zeros */
    if ((family != AF_INET && family != AF_INET6) || inet_pton(family, b, a.a) != 1) return -EINVAL;
    *ret = a;
    return 0;
}

int dbx_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct dbx_addr *ret) {
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        *ret = (struct dbx_addr){.family = AF_INET};
        memcpy(ret->a, &in->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        *ret = (struct dbx_addr){.family = AF_INET6};
        memcpy(ret->a, &in6->sin6_addr, 16);
        return 0;
    }
    return -EINVAL;
}

char *dbx_addr_format(const struct dbx_addr *a, char *buf) {
    if (!inet_ntop(a->family, a->a, buf, INET6_ADDRSTRLEN)) strcpy(buf, "?");
    return buf;
}

/* ---- address classes ------------------------------------------------------------------------ */

#define V4(a, b, c, d)                                                                             \
    AF_INET, {                                                                                     \
        a, b, c, d                                                                                 \
    }

/* Matched in order, first match wins: more specific rows come first.  docs/network.md lists
 * every row that is not public, in this order, with the same words (test-common-netaddr.c checks:
 * change both together). */
static const struct dbx_addr_range ranges[] = {
    {V4(169, 254, 169, 254), 32, DBX_ADDR_METADATA, "cloud metadata service"},
    {V4(255, 255, 255, 255), 32, DBX_ADDR_BROADCAST, "limited broadcast (RFC 919)"},
    {V4(0, 0, 0, 0), 8, DBX_ADDR_UNSPECIFIED, "this network (RFC 791)"},
    {V4(10, 0, 0, 0), 8, DBX_ADDR_PRIVATE, "private (RFC 1918)"},
    {V4(100, 64, 0, 0), 10, DBX_ADDR_CGNAT, "shared address space, CGNAT (RFC 6598)"},
    {V4(127, 0, 0, 0), 8, DBX_ADDR_LOOPBACK, "loopback"},
    {V4(169, 254, 0, 0), 16, DBX_ADDR_LINK_LOCAL, "link-local (RFC 3927)"},
    {V4(172, 16, 0, 0), 12, DBX_ADDR_PRIVATE, "private (RFC 1918)"},
    {V4(192, 0, 0, 0), 24, DBX_ADDR_RESERVED, "IETF protocol assignments (RFC 6890)"},
    {V4(192, 0, 2, 0), 24, DBX_ADDR_RESERVED, "documentation (RFC 5737)"},
    {V4(192, 88, 99, 0), 24, DBX_ADDR_RESERVED, "6to4 relay anycast (RFC 7526)"},
    {V4(192, 168, 0, 0), 16, DBX_ADDR_PRIVATE, "private (RFC 1918)"},
    {V4(198, 18, 0, 0), 15, DBX_ADDR_RESERVED, "benchmarking (RFC 2544)"},
    {V4(198, 51, 100, 0), 24, DBX_ADDR_RESERVED, "documentation (RFC 5737)"},
    {V4(203, 0, 113, 0), 24, DBX_ADDR_RESERVED, "documentation (RFC 5737)"},
    {V4(224, 0, 0, 0), 4, DBX_ADDR_MULTICAST, "multicast"},
    {V4(240, 0, 0, 0), 4, DBX_ADDR_RESERVED, "reserved for future use (RFC 1112)"},
    /* NAT64's well-known prefix reaches the embedded IPv4 address: judged by that address
     * (dbx_addr_range_of), this row only when that one is refused */
    {AF_INET6,
     {0, 0x64, 0xff, 0x9b},
     96,
     DBX_ADDR_NAT64,
     "NAT64 (RFC 6052) of a refused IPv4 address"},
    {AF_INET6, {0}, 128, DBX_ADDR_UNSPECIFIED, "unspecified"},
    {AF_INET6,
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
     128,
     DBX_ADDR_LOOPBACK,
     "loopback"},
    {AF_INET6,
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
     96,
     DBX_ADDR_MAPPED,
     "IPv4-mapped (RFC 4291)"},
    {AF_INET6,
     {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
     96,
     DBX_ADDR_MAPPED,
     "IPv4-translated, SIIT (RFC 2765)"},
    {AF_INET6, {0}, 96, DBX_ADDR_UNSPECIFIED, "IPv4-compatible, deprecated (RFC 4291)"},
    {AF_INET6, {0, 0x64, 0xff, 0x9b, 0, 1}, 48, DBX_ADDR_NAT64, "local-use NAT64 (RFC 8215)"},
    {AF_INET6, {0x01, 0x00}, 64, DBX_ADDR_RESERVED, "discard-only (RFC 6666)"},
    {AF_INET6, {0x20, 0x01, 0x0d, 0xb8}, 32, DBX_ADDR_RESERVED, "documentation (RFC 3849)"},
    {AF_INET6, {0x20, 0x01, 0, 0}, 32, DBX_ADDR_TUNNEL, "Teredo (RFC 4380)"},
    {AF_INET6, {0x20, 0x01, 0, 0}, 23, DBX_ADDR_RESERVED, "IETF protocol assignments (RFC 2928)"},
    {AF_INET6, {0x20, 0x02}, 16, DBX_ADDR_TUNNEL, "6to4 (RFC 3056)"},
    {AF_INET6, {0x3f, 0xff}, 20, DBX_ADDR_RESERVED, "documentation (RFC 9637)"},
    {AF_INET6, {0x20}, 3, DBX_ADDR_PUBLIC, "global unicast"},
    {AF_INET6,
     {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54},
     128,
     DBX_ADDR_METADATA,
     "cloud metadata service (EC2)"},
    {AF_INET6, {0xfc}, 7, DBX_ADDR_PRIVATE, "unique local (RFC 4193)"},
    {AF_INET6, {0xfe, 0x80}, 10, DBX_ADDR_LINK_LOCAL, "link-local (RFC 4291)"},
    {AF_INET6, {0xfe, 0xc0}, 10, DBX_ADDR_PRIVATE, "site-local, deprecated (RFC 3879)"},
    {AF_INET6, {0xff}, 8, DBX_ADDR_MULTICAST, "multicast"},
    /* only 2000::/3 is allocated as global unicast */
    {AF_INET6, {0}, 0, DBX_ADDR_RESERVED, "not global unicast (outside 2000::/3)"},
};

const struct dbx_addr_range *dbx_addr_ranges(size_t *ret_n) {
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

bool dbx_addr_in(const struct dbx_addr *a, const struct dbx_addr *net, unsigned prefix) {
    return a->family == net->family && prefix_match(a->a, net->a, prefix);
}

static const struct dbx_addr_range *range_of(int family, const uint8_t *a) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ranges); i++)
        if (ranges[i].family == family && prefix_match(a, ranges[i].net, ranges[i].prefix))
            return &ranges[i];
    return NULL;
}

const struct dbx_addr_range *dbx_addr_range_of(const struct dbx_addr *a) {
    static const struct dbx_addr_range unknown = {
        0, {0}, 0, DBX_ADDR_RESERVED, "not an IP address"};
    if (a->family != AF_INET && a->family != AF_INET6) return &unknown;
    const struct dbx_addr_range *r = range_of(a->family, a->a);
    if (r && r->family == AF_INET6 && r->cls == DBX_ADDR_NAT64 && r->prefix == 96 &&
        !range_of(AF_INET, a->a + 12))
        return NULL; /* NAT64 of a public IPv4 address */
    return r && r->cls != DBX_ADDR_PUBLIC ? r : NULL;
}

enum dbx_addr_class dbx_addr_classify(const struct dbx_addr *a) {
    const struct dbx_addr_range *r = dbx_addr_range_of(a);
    return r ? r->cls : DBX_ADDR_PUBLIC;
}

const char *dbx_addr_class_name(enum dbx_addr_class c) {
    static const char *const names[] = {
        [DBX_ADDR_PUBLIC] = "public",
        [DBX_ADDR_LOOPBACK] = "loopback",
        [DBX_ADDR_PRIVATE] = "private",
        [DBX_ADDR_LINK_LOCAL] = "link-local",
        [DBX_ADDR_METADATA] = "cloud metadata",
        [DBX_ADDR_CGNAT] = "shared (CGNAT)",
        [DBX_ADDR_MULTICAST] = "multicast",
        [DBX_ADDR_BROADCAST] = "broadcast",
        [DBX_ADDR_UNSPECIFIED] = "unspecified",
        [DBX_ADDR_MAPPED] = "IPv4-mapped",
        [DBX_ADDR_NAT64] = "NAT64",
        [DBX_ADDR_TUNNEL] = "6to4/Teredo",
        [DBX_ADDR_RESERVED] = "reserved",
    };
    return (unsigned)c < DBX_ARRAY_SIZE(names) && names[c] ? names[c] : "unknown";
}

/* common/netaddr.h: IP addresses as both sides of the host see them, and what kind of address
 * each one is.  The egress proxy (proxy/) refuses to connect to non-public classes unless an
 * allow pattern names the address; the passt filter (vm/) refuses a subset of them in open
 * mode.  One table, one classifier, so the two never drift.  Also the fixed addresses of the
 * guest's network in open mode, which the plan compiler (policy/) puts into the plan and the
 * VM's passt (vm/) serves.  No allocation, no printing. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* QEMU user-mode networking's fixed addresses, which passt is told to mimic: the guest's
 * address with its prefix, its gateway and its resolver (resolv.conf: nameserver 10.0.2.3). */
#define DBX_NET_OPEN_ADDR "10.0.2.15/24"
#define DBX_NET_OPEN_GW "10.0.2.2"
#define DBX_NET_OPEN_DNS "10.0.2.3"

#define DBX_HOST_MAX 253u /* a DNS name without its trailing dot */

struct dbx_addr {
    int family;    /* AF_INET or AF_INET6 */
    uint8_t a[16]; /* network byte order; AF_INET uses a[0..3] */
};

/* 0 and *ret set, or -EINVAL: len bytes at s (not NUL-terminated; an embedded NUL is refused)
 * as an address of family.  AF_INET takes only the canonical dotted quad (four decimal parts
 * 0..255 without leading zeros: inet_aton's 127.1, 2130706433, 0x7f.0.0.1 and 0177.0.0.1 are
 * how allowlists get bypassed), AF_INET6 what inet_pton takes (no brackets, no zone). */
int dbx_addr_parse(const char *s, size_t len, int family, struct dbx_addr *ret);
/* 0 and *ret set, or -EINVAL: an AF_INET/AF_INET6 sockaddr to an address. */
int dbx_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct dbx_addr *ret);
/* The address as inet_ntop text into buf (INET6_ADDRSTRLEN bytes); returns buf. */
char *dbx_addr_format(const struct dbx_addr *a, char *buf);
/* Whether a is inside net/prefix (same family, the first prefix bits equal). */
bool dbx_addr_in(const struct dbx_addr *a, const struct dbx_addr *net, unsigned prefix);

enum dbx_addr_class {
    DBX_ADDR_PUBLIC = 0,
    DBX_ADDR_LOOPBACK,    /* 127/8, ::1 */
    DBX_ADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 */
    DBX_ADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
    DBX_ADDR_METADATA,    /* 169.254.169.254, fd00:ec2::254 */
    DBX_ADDR_CGNAT,       /* 100.64/10 */
    DBX_ADDR_MULTICAST,   /* 224/4, ff00::/8 */
    DBX_ADDR_BROADCAST,   /* 255.255.255.255 */
    DBX_ADDR_UNSPECIFIED, /* 0/8, ::, ::/96 (IPv4-compatible) */
    DBX_ADDR_MAPPED,      /* ::ffff:0:0/96, ::ffff:0:0:0/96 (SIIT) */
    DBX_ADDR_NAT64,       /* 64:ff9b::/96 embedding a refused IPv4, 64:ff9b:1::/48 */
    DBX_ADDR_TUNNEL,      /* 6to4 2002::/16, Teredo 2001::/32 (both embed IPv4) */
    DBX_ADDR_RESERVED,    /* documentation, benchmarking, IETF, 240/4, 100::/64,
                             2001:db8::/32, 2001::/23 */
};
/* One row of the classifier's table: addresses in net/prefix are of class cls.  Rows match in
 * order, the first wins; docs/network.md lists every refused row (a unit test compares). */
struct dbx_addr_range {
    int family; /* AF_INET or AF_INET6 */
    uint8_t net[16];
    unsigned prefix;
    enum dbx_addr_class cls;
    const char *what; /* e.g. "documentation (RFC 5737)" */
};
/* The whole table (IPv4 rows, then IPv6), *ret_n rows, static. */
const struct dbx_addr_range *dbx_addr_ranges(size_t *ret_n);
/* The row that refuses a, or NULL for a public address (an address in 64:ff9b::/96 is judged
 * by the IPv4 address it embeds). */
const struct dbx_addr_range *dbx_addr_range_of(const struct dbx_addr *a);
enum dbx_addr_class dbx_addr_classify(const struct dbx_addr *a);
const char *dbx_addr_class_name(enum dbx_addr_class c); /* "loopback", ... */

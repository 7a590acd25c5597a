/* vm/vm-passt-vet.c: which destinations passt may name (the pure part of the passt filter,
 * vm-passt-filter.c): address classes, the host's resolvers, the host's own addresses.
 *
 * The guest chooses every destination passt connects or sends to, and this passt version
 * reaches the host's loopback, its own addresses and 169.254.169.254 when asked (measured,
 * vm-passt.c).  So each sockaddr passt hands to connect/sendto/sendmsg/sendmmsg is judged here,
 * in every spelling the kernel accepts for that call (IPv4-mapped, ::, AF_UNSPEC). */
#include "vm-internal.h"

#include "../common/netaddr.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Classes the guest must not reach through passt (NULL: allowed).  Private, shared and
 * reserved ranges stay reachable ("open" is user-mode NAT to whatever the host can reach,
 * except the host itself and its link-local neighbourhood). */
static const char *class_refusal(enum dbx_addr_class c) {
    switch (c) {
    case DBX_ADDR_LOOPBACK:
    case DBX_ADDR_LINK_LOCAL:
    case DBX_ADDR_METADATA:
    case DBX_ADDR_MULTICAST:
    case DBX_ADDR_BROADCAST:
    case DBX_ADDR_UNSPECIFIED: /* 0/8 and :: reach the host; ::/96 (compatible) too */
    case DBX_ADDR_NAT64:       /* only when the embedded IPv4 is itself refused */
        return dbx_addr_class_name(c);
    default:
        return NULL;
    }
}

/* ::ffff:a.b.c.d and ::ffff:0:a.b.c.d (SIIT) are IPv4 to the kernel: judge them as IPv4. */
static void unmap(struct dbx_addr *a) {
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    if (a->family != AF_INET6 || (memcmp(a->a, mapped, 12) != 0 && memcmp(a->a, siit, 12) != 0))
        return;
    memmove(a->a, a->a + 12, 4);
    memset(a->a + 4, 0, 12);
    a->family = AF_INET;
}

void vm_passt_parse_resolv(const char *text, struct vm_passt_rules *r) {
    r->n_dns = 0;
    for (const char *p = text; p && *p && r->n_dns < VM_PASST_MAX_DNS;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[128];
        if (len < sizeof(line)) {
            memcpy(line, p, len);
            line[len] = '\0';
            char word[16], addr[INET6_ADDRSTRLEN + 1];
            if (sscanf(line, " %15s %46[0-9a-fA-F.:]", word, addr) == 2 &&
                strcmp(word, "nameserver") == 0) {
                struct dbx_addr *d = &r->dns[r->n_dns];
                memset(d, 0, sizeof(*d));
                if (inet_pton(AF_INET, addr, d->a) == 1)
                    d->family = AF_INET;
                else if (inet_pton(AF_INET6, addr, d->a) == 1)
                    d->family = AF_INET6;
                if (d->family) {
                    unmap(d);
                    r->n_dns++;
                }
            }
        }
        p = nl ? nl + 1 : NULL;
    }
}

static bool is_resolver(const struct vm_passt_rules *r, const struct dbx_addr *a) {
    for (size_t i = 0; i < r->n_dns; i++)
        if (r->dns[i].family == a->family &&
            memcmp(r->dns[i].a, a->a, a->family == AF_INET ? 4 : 16) == 0)
            return true;
    return false;
}

/* The kernel's own answer to "would a packet to a stay on this host": the type of the route
 * it picks (ip route get).  Unlike a getifaddrs snapshot this is never stale and also covers
 * local routes for whole prefixes (AnyIP) and subnet broadcast addresses.  -errno when the
 * lookup fails (-ENETUNREACH and friends: no route, so the connect will fail anyway). */
static int route_type(struct vm_passt_rules *r, const struct dbx_addr *a) {
    struct {
        struct nlmsghdr nh;
        struct rtmsg rt;
        struct rtattr rta;
        uint8_t addr[16];
    } req;
    size_t alen = a->family == AF_INET ? 4 : 16;
    memset(&req, 0, sizeof(req));
    req.nh.nlmsg_len = (uint32_t)NLMSG_LENGTH(sizeof(req.rt) + RTA_LENGTH(alen));
    req.nh.nlmsg_type = RTM_GETROUTE;
    req.nh.nlmsg_flags = NLM_F_REQUEST;
    req.nh.nlmsg_seq = ++r->nl_seq;
    req.rt.rtm_family = (uint8_t)a->family;
    req.rt.rtm_dst_len = (uint8_t)(alen * 8);
    req.rta.rta_type = RTA_DST;
    req.rta.rta_len = (uint16_t)RTA_LENGTH(alen);
    memcpy(req.addr, a->a, alen);
    if (send(r->nl_fd, &req, req.nh.nlmsg_len, 0) < 0) return -errno;
    for (;;) {
        /* the reply is one route with a handful of attributes */
        union {
            struct nlmsghdr nh;
            uint8_t buf[4096];
        } u;
        ssize_t n = recv(r->nl_fd, u.buf, sizeof(u.buf), 0);
        if (n < 0) return errno == EINTR ? -EINTR : -errno;
        for (struct nlmsghdr *h = &u.nh; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != r->nl_seq) continue; /* a late answer to an earlier query */
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? e->error
                                                                                : -EPROTO;
            }
            if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
                return -EPROTO;
            return ((const struct rtmsg *)NLMSG_DATA(h))->rtm_type;
        }
    }
}

static const char *host_refusal(struct vm_passt_rules *r, const struct dbx_addr *a) {
    if (r->nl_fd < 0) return NULL;
    int t = route_type(r, a);
    switch (t) {
    case RTN_UNICAST:
        return NULL;
    case RTN_LOCAL:
    case RTN_ANYCAST:
        return "host address";
    case RTN_BROADCAST:
        return "broadcast";
    case RTN_MULTICAST:
        return "multicast";
    case -ENETUNREACH:
    case -EHOSTUNREACH:
    case -EACCES:    /* prohibit route */
    case -EINVAL:    /* blackhole route */
        return NULL; /* the kernel refuses the connect itself */
    default:
        /* unknown route types and failed lookups: refuse rather than guess */
        return t < 0 ? "route lookup failed" : "unusual route";
    }
}

static const char *vet_ip(struct vm_passt_rules *r, struct dbx_addr *a, uint16_t port,
                          char *where) {
    unmap(a);
    char text[INET6_ADDRSTRLEN];
    dbx_addr_format(a, text);
    snprintf(where, VM_PASST_WHERE_MAX, a->family == AF_INET ? "%s:%u" : "[%s]:%u", text, port);
    /* --dns-forward sends to the host's resolver, which may well be on loopback (127.0.0.53) */
    if (port == 53 && is_resolver(r, a)) return NULL;
    const char *why = class_refusal(dbx_addr_classify(a));
    return why ? why : host_refusal(r, a);
}

const char *vm_passt_vet(struct vm_passt_rules *r, const void *sa, size_t len, bool is_connect,
                         char *where) {
    snprintf(where, VM_PASST_WHERE_MAX, "a malformed address");
    if (len < sizeof(sa_family_t)) return "malformed address";
    sa_family_t family;
    memcpy(&family, sa, sizeof(family));
    struct dbx_addr a = {0};
    switch (family) {
    case AF_UNIX:
    case AF_NETLINK:
        /* passt's own syslog, nscd and route queries; an inet socket refuses these families */
        snprintf(where, VM_PASST_WHERE_MAX, "family %u", family);
        return NULL;
    case AF_UNSPEC:
        /* connect: dissolves the association (TCP and UDP).  sendto/sendmsg: a UDPv4 socket
         * takes sin_addr of an AF_UNSPEC address as the destination (udp_sendmsg). */
        snprintf(where, VM_PASST_WHERE_MAX, "family 0");
        if (is_connect || len < sizeof(struct sockaddr_in)) return NULL;
        /* fallthrough */
    case AF_INET: {
        struct sockaddr_in in;
        if (len < sizeof(in)) return "malformed address";
        memcpy(&in, sa, sizeof(in));
        a.family = AF_INET;
        memcpy(a.a, &in.sin_addr, 4);
        return vet_ip(r, &a, ntohs(in.sin_port), where);
    }
    case AF_INET6: {
        struct sockaddr_in6 in6 = {0};
        if (len < 24) return "malformed address"; /* SIN6_LEN_RFC2133, the kernel's minimum */
        memcpy(&in6, sa, len < sizeof(in6) ? len : sizeof(in6));
        a.family = AF_INET6;
        memcpy(a.a, &in6.sin6_addr, 16);
        return vet_ip(r, &a, ntohs(in6.sin6_port), where);
    }
    default:
        snprintf(where, VM_PASST_WHERE_MAX, "family %u", family);
        return "address family";
    }
}

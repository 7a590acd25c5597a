/* guest/init-net.c: the plan's network settings, applied at SETUP before any command runs.
 *
 *   every mode  loopback up (a fresh kernel leaves it down; the kernel gives it 127.0.0.1/8)
 *   none        nothing else: the VM has no network device
 *   allowlist   no network device either; /etc/apt/apt.conf.d/99devbox-proxy points apt at the
 *               proxy, and the init listens on 127.0.0.1:proxy_port (init-sock.c) so no box
 *               command can take that port; the proxy variables come in the plan's env
 *   open        eth0 (virtio_net, loaded from /modules.order at boot) gets net_addr, is set
 *               up, and gets a default route via net_gw, all over rtnetlink (the image may have
 *               no ip(8)); IPv6 is off on it (passt is IPv4-only); /etc/resolv.conf names
 *               net_dns
 *   every mode  /etc/hosts names localhost and the box's hostname (init-hosts.c)
 * Files under /etc are replaced atomically, never written through a symlink: the root disk
 * persists and a box user with root may have planted one there. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#define NET_DEV "eth0"
#define NET_DEV_WAIT_MS 1000
#define APT_PROXY_FILE "99devbox-proxy"

/* ---- rtnetlink -------------------------------------------------------------------------- */

struct nl_req {
    struct nlmsghdr h;
    uint8_t body[240]; /* the family header and attributes */
};

static void *nl_init(struct nl_req *r, uint16_t type, uint16_t flags, size_t hdr_len) {
    memset(r, 0, sizeof(*r));
    r->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(hdr_len);
    r->h.nlmsg_type = type;
    r->h.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
    r->h.nlmsg_seq = 1;
    return NLMSG_DATA(&r->h);
}

static void nl_attr(struct nl_req *r, uint16_t type, const void *data, size_t len) {
    struct rtattr *rta = (struct rtattr *)((uint8_t *)&r->h + NLMSG_ALIGN(r->h.nlmsg_len));
    rta->rta_type = type;
    rta->rta_len = (uint16_t)RTA_LENGTH(len);
    memcpy(RTA_DATA(rta), data, len);
    r->h.nlmsg_len = (uint32_t)(NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(rta->rta_len));
}

/* Send one request and wait for its acknowledgement; the kernel's errno becomes the error. */
static int nl_talk(struct nl_req *r, const char *what, dbx_error **err) {
    _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return dbx_error_set(err, errno, "%s: netlink socket", what);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (sendto(fd, r, r->h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return dbx_error_set(err, errno, "%s: netlink send", what);
    for (;;) {
        union {
            struct nlmsghdr h;
            uint8_t b[4096];
        } ans;
        ssize_t n = recv(fd, &ans, sizeof(ans), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return dbx_error_set(err, errno, "%s: netlink receive", what);
        for (struct nlmsghdr *h = &ans.h; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != r->h.nlmsg_seq || h->nlmsg_type != NLMSG_ERROR) continue;
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                return dbx_error_set(err, EPROTO, "%s: short netlink answer", what);
            const struct nlmsgerr *e = NLMSG_DATA(h);
            return e->error == 0 ? 0 : dbx_error_set(err, -e->error, "%s", what);
        }
    }
}

/* ifindex and flags of an interface; -ENODEV when it does not exist. */
static int link_get(const char *name, int *ret_index, short *ret_flags) {
    _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) return -errno;
    *ret_index = ifr.ifr_ifindex;
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) return -errno;
    *ret_flags = ifr.ifr_flags;
    return 0;
}

static int link_up(const char *name, int index, dbx_error **err) {
    struct nl_req r;
    struct ifinfomsg *ifi = nl_init(&r, RTM_NEWLINK, 0, sizeof(*ifi));
    *ifi = (struct ifinfomsg){
        .ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    _cleanup_free_ char *what = dbx_xasprintf("set '%s' up", name);
    return nl_talk(&r, what, err);
}

static int addr_add(int index, const uint8_t addr[4], uint8_t prefix, dbx_error **err) {
    struct nl_req r;
    struct ifaddrmsg *ifa = nl_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, sizeof(*ifa));
    *ifa = (struct ifaddrmsg){.ifa_family = AF_INET,
                              .ifa_prefixlen = prefix,
                              .ifa_scope = RT_SCOPE_UNIVERSE,
                              .ifa_index = (uint32_t)index};
    uint32_t host_mask = prefix >= 32 ? 0 : UINT32_MAX >> prefix;
    uint8_t brd[4];
    for (int i = 0; i < 4; i++)
        brd[i] = (uint8_t)(addr[i] | (uint8_t)(host_mask >> (24 - 8 * i)));
    nl_attr(&r, IFA_LOCAL, addr, 4);
    nl_attr(&r, IFA_ADDRESS, addr, 4);
    if (prefix < 31) nl_attr(&r, IFA_BROADCAST, brd, 4);
    return nl_talk(&r, "add address to '" NET_DEV "'", err);
}

static int route_add_default(int index, const uint8_t gw[4], dbx_error **err) {
    struct nl_req r;
    struct rtmsg *rt = nl_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, sizeof(*rt));
    /* onlink: the gateway is reachable on the link even when outside net_addr's subnet */
    *rt = (struct rtmsg){.rtm_family = AF_INET,
                         .rtm_table = RT_TABLE_MAIN,
                         .rtm_protocol = RTPROT_BOOT,
                         .rtm_scope = RT_SCOPE_UNIVERSE,
                         .rtm_type = RTN_UNICAST,
                         .rtm_flags = RTNH_F_ONLINK};
    uint32_t oif = (uint32_t)index;
    nl_attr(&r, RTA_GATEWAY, gw, 4);
    nl_attr(&r, RTA_OIF, &oif, sizeof(oif));
    return nl_talk(&r, "add default route via '" NET_DEV "'", err);
}

static int net_loopback(dbx_error **err) {
    int index;
    short flags;
    int r = link_get("lo", &index, &flags);
    if (r < 0) return dbx_error_set(err, -r, "loopback 'lo'");
    if (flags & IFF_UP) /* already up: nothing to change (and no CAP_NET_ADMIN needed) */
        return 0;
    return link_up("lo", index, err);
}

/* The device's probe runs when virtio_net loads at boot, so eth0 is there by now unless the
 * module is missing; a short wait covers a slow probe. */
static int net_open_dev(int *ret_index, dbx_error **err) {
    short flags;
    for (unsigned t = 0;; t += 5) {
        int r = link_get(NET_DEV, ret_index, &flags);
        if (r == 0) return 0;
        if (r != -ENODEV || t >= NET_DEV_WAIT_MS)
            return dbx_error_set(err, -r,
                                 "network = open needs the interface '" NET_DEV "' (the "
                                 "virtio_net module and a virtio-net device)");
        struct timespec ts = {.tv_nsec = 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* IPv6 off on eth0 before it goes up.  passt is IPv4-only (vm/vm-passt.c), so nothing the
 * guest sends over IPv6 ever arrives; and the kernel sends some by itself after the link comes
 * up (MLD reports, duplicate address detection, router solicitations: 7 frames), which would
 * start the host's passt in a box nothing has used the network in (sandbox/supervisor-vm.c).
 * A kernel without IPv6 has no such file (ENOENT: nothing to turn off).  The loopback keeps ::1. */
static int net_ipv6_off(dbx_error **err) {
    static const char path[] = "/proc/sys/net/ipv6/conf/" NET_DEV "/disable_ipv6";
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : dbx_error_set(err, errno, "open '%s'", path);
    int r = dbx_write_all(fd, "1\n", 2);
    close(fd);
    return r < 0 ? dbx_error_set(err, -r, "write '%s'", path) : 0;
}

static int net_open(const struct dbx_plan *plan, dbx_error **err) {
    uint8_t addr[4], gw[4], prefix;
    /* dbx_plan_decode checked both; parse again rather than trust a second copy */
    if (dbx_parse_ipv4(plan->net_addr, addr, &prefix) < 0 ||
        dbx_parse_ipv4(plan->net_gw, gw, NULL) < 0)
        return dbx_error_setx(err, EINVAL, "bad network address '%s' or gateway '%s'",
                              plan->net_addr, plan->net_gw);
    int index;
    if (net_open_dev(&index, err) < 0 || net_ipv6_off(err) < 0 ||
        addr_add(index, addr, prefix, err) < 0 || link_up(NET_DEV, index, err) < 0 ||
        route_add_default(index, gw, err) < 0)
        return -1;
    return 0;
}

/* ---- files under /etc ------------------------------------------------------------------- */

/* /etc (or the test's stand-in) in *ret_fd, opened without following a symlink; -1 when there
 * is none to write to (--serve-fd without DEVBOX_TEST_ETC). */
static int etc_open(struct agent *a, int *ret_fd, dbx_error **err) {
    const char *etc = a->test_mode ? getenv("DEVBOX_TEST_ETC") : "/etc";
    *ret_fd = -1;
    if (!etc || !etc[0]) return 0;
    *ret_fd = open(etc, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*ret_fd < 0) return dbx_error_set(err, errno, "open '%s'", etc);
    return 0;
}

/* resolv.conf may be a dangling symlink (systemd-resolved's stub) or missing: rename a new
 * file over whatever is there. */
static int write_resolv(int etc, const char *dns, dbx_error **err) {
    _cleanup_free_ char *text =
        dbx_xasprintf("# written by devbox-init at boot (network = open)\nnameserver %s\n", dns);
    if (guest_file_same(etc, "resolv.conf", text, 0644)) return 0;
    if (dbx_write_file_atomic(etc, "resolv.conf", text, strlen(text), 0644, err) < 0)
        return dbx_error_wrap(err, "/etc/resolv.conf");
    return 0;
}

/* apt reads its proxy from its own configuration, not from the environment, when run through
 * sudo or a service; the file exists only while the mode is allowlist. */
static int write_apt_proxy(int etc, uint16_t port, dbx_error **err) {
    _cleanup_close_ int apt = openat(etc, "apt", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int dir =
        apt < 0 ? -1 : openat(apt, "apt.conf.d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) /* no apt in this image (or not a plain directory): nothing to configure */
        return 0;
    if (port == 0) {
        if (unlinkat(dir, APT_PROXY_FILE, 0) < 0 && errno != ENOENT)
            return dbx_error_set(err, errno, "remove '/etc/apt/apt.conf.d/" APT_PROXY_FILE "'");
        return 0;
    }
    _cleanup_free_ char *text = dbx_xasprintf("// written by devbox-init at boot (network = "
                                              "allowlist)\nAcquire::http::Proxy "
                                              "\"http://127.0.0.1:%u\";\nAcquire::https::Proxy "
                                              "\"http://127.0.0.1:%u\";\n",
                                              port, port);
    if (guest_file_same(dir, APT_PROXY_FILE, text, 0644)) return 0;
    if (dbx_write_file_atomic(dir, APT_PROXY_FILE, text, strlen(text), 0644, err) < 0)
        return dbx_error_wrap(err, "/etc/apt/apt.conf.d");
    return 0;
}

/* The box's names are a convenience: a full root disk, or a file the box's root put in the
 * way, leaves them as they were with a line on the console, and the box boots. */
static void net_hosts(int etc, const char *hostname) {
    _cleanup_strv_ char **notes = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (hosts_install(etc, hostname, &notes, &e) < 0) init_log("setup: /etc/hosts: %s", e->msg);
    dbx_error_free(&e);
    if (hostname_install(etc, hostname, &notes, &e) < 0)
        init_log("setup: /etc/hostname: %s", e->msg);
    for (size_t i = 0; notes && notes[i]; i++)
        init_log("setup: %s", notes[i]);
}

static int net_etc(struct agent *a, const struct dbx_plan *plan, const char *hostname,
                   dbx_error **err) {
    _cleanup_close_ int etc = -EBADF;
    if (etc_open(a, &etc, err) < 0) return -1;
    if (etc < 0) return 0;
    net_hosts(etc, hostname);
    if (plan->net_mode == DBX_NET_OPEN && plan->net_dns[0] &&
        write_resolv(etc, plan->net_dns, err) < 0)
        return -1;
    return write_apt_proxy(etc, plan->net_mode == DBX_NET_ALLOWLIST ? plan->proxy_port : 0, err);
}

/* ---- SETUP ------------------------------------------------------------------------------ */

int net_setup(struct agent *a, const struct dbx_plan *plan, const char *hostname, dbx_error **err) {
    if (net_loopback(err) < 0) return -1;
    const char *test_net = getenv("DEVBOX_TEST_NET");
    bool devices = !a->test_mode || (test_net && strcmp(test_net, "1") == 0);
    if (plan->net_mode == DBX_NET_OPEN && devices && net_open(plan, err) < 0) return -1;
    if (net_etc(a, plan, hostname, err) < 0) return -1;
    if (plan->net_mode == DBX_NET_ALLOWLIST && sock_listen(a, plan->proxy_port, err) < 0) return -1;
    return 0;
}

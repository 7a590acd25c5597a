/* tests/unit/test-vm-passt.c: passt for one VM and the filter that vets its destinations.
 * - the decision table (vm_passt_vet: IPv4, IPv6, mapped, compatible, NAT64, families, the
 *   resolver exception) and the resolv.conf parser, without passt;
 * - vm_passt_start's socket, process hygiene (empty environment, own process group, no
 *   inherited fds, dies with its parent) and errors;
 * - a fake guest (QEMU's stream protocol: 4-byte big-endian length + Ethernet frame) sending
 *   TCP SYNs and UDP datagrams through passt, in network namespaces this test creates:
 *   as root, with a test host at 10.77.0.2 behind a veth pair, the host's own 10.77.0.1,
 *   169.254.169.254 on a dummy interface, 127.0.0.53 as the resolver; and as an ordinary user
 *   (nobody) without capabilities, which is the rootless path (passt in a user namespace of
 *   ours so that we may read its memory).  Only loopback and namespace traffic.
 * Skips without passt, or without namespaces. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <grp.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "vm/vm-internal.h"

#include "tests/unit/helpers.h"

static char dir[] = "/tmp/test-vm-passt-XXXXXX";

static int setup(void **state) {
    if (!mkdtemp(dir)) return -1;
    /* As root, passt drops to nobody before it binds its socket. */
    return chmod(dir, geteuid() == 0 ? 01777 : 0700);
}
static int teardown(void **state) {
    dbx_error *e = NULL;
    vm_rm_rf(dir, &e);
    dbx_error_free(&e);
    return 0;
}

static bool have_passt(void) {
    return access("/usr/bin/passt", X_OK) == 0;
}

/* ---- the decision table ----------------------------------------------------------------- */

struct vet_case {
    const char *addr; /* IPv4 or IPv6 text */
    uint16_t port;
    const char *why; /* NULL: allowed */
};

static const struct vet_case vet_cases[] = {
    {"127.0.0.1", 8080, "loopback"},
    {"127.0.0.2", 80, "loopback"},
    {"127.255.255.254", 80, "loopback"},
    {"0.0.0.0", 80, "unspecified"},
    {"0.1.2.3", 80, "unspecified"},
    {"169.254.169.254", 80, "cloud metadata"},
    {"169.254.1.1", 80, "link-local"},
    {"224.0.0.1", 5353, "multicast"},
    {"239.255.255.250", 1900, "multicast"},
    {"255.255.255.255", 67, "broadcast"},
    {"10.77.0.2", 8080, NULL},
    {"192.168.1.1", 80, NULL},
    {"172.16.0.1", 80, NULL},
    {"100.64.0.1", 80, NULL},
    {"8.8.8.8", 53, NULL},
    {"127.0.0.53", 53, NULL},       /* the resolver below */
    {"127.0.0.53", 80, "loopback"}, /* ... on port 53 only */
    {"127.0.0.1", 53, "loopback"},  /* not a resolver */
    {"::1", 80, "loopback"},
    {"::", 80, "unspecified"},
    {"fe80::1", 80, "link-local"},
    {"febf::1", 80, "link-local"},
    {"ff02::1", 80, "multicast"},
    {"::ffff:127.0.0.1", 80, "loopback"},
    {"::ffff:0.0.0.0", 80, "unspecified"},
    {"::ffff:169.254.169.254", 80, "cloud metadata"},
    {"::ffff:255.255.255.255", 80, "broadcast"},
    {"::ffff:0:127.0.0.1", 80, "loopback"}, /* SIIT */
    {"::ffff:10.0.0.1", 80, NULL},
    {"::ffff:127.0.0.53", 53, NULL},    /* the resolver, mapped */
    {"::127.0.0.1", 80, "unspecified"}, /* IPv4-compatible */
    {"::10.0.0.1", 80, "unspecified"},
    {"64:ff9b::127.0.0.1", 80, "NAT64"},
    {"64:ff9b::8.8.8.8", 80, NULL},
    {"2a00:1450::1", 443, NULL},
    {"fd00::1", 80, NULL},
    {"fd00:ec2::254", 80, "cloud metadata"},
    {"2001:db8::1", 80, NULL}, /* documentation: passt may try, nothing answers */
};

static size_t make_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        return sizeof(*in);
    }
    assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    return sizeof(*in6);
}

static void test_vet_table(void **state) {
    struct vm_passt_rules r = {.nl_fd = -1};
    vm_passt_parse_resolv("nameserver 127.0.0.53\n", &r);
    char where[VM_PASST_WHERE_MAX];
    for (size_t i = 0; i < DBX_ARRAY_SIZE(vet_cases); i++) {
        const struct vet_case *c = &vet_cases[i];
        struct sockaddr_storage ss;
        size_t len = make_sockaddr(c->addr, c->port, &ss);
        for (int connect = 0; connect < 2; connect++) {
            const char *why = vm_passt_vet(&r, &ss, len, connect, where);
            if ((why == NULL) != (c->why == NULL) || (why && strcmp(why, c->why) != 0))
                fail_msg("%s port %u: got %s, want %s", c->addr, c->port, why ? why : "allowed",
                         c->why ? c->why : "allowed");
        }
    }
    struct sockaddr_storage ss;
    make_sockaddr("127.0.0.1", 8080, &ss);
    assert_non_null(vm_passt_vet(&r, &ss, sizeof(struct sockaddr_in), true, where));
    assert_string_equal(where, "127.0.0.1:8080");
    make_sockaddr("::1", 22, &ss);
    assert_non_null(vm_passt_vet(&r, &ss, sizeof(struct sockaddr_in6), true, where));
    assert_string_equal(where, "[::1]:22");
    /* shorter than the kernel accepts, or no family at all */
    make_sockaddr("10.0.0.1", 80, &ss);
    assert_string_equal(vm_passt_vet(&r, &ss, 8, true, where), "malformed address");
    assert_string_equal(vm_passt_vet(&r, &ss, 1, true, where), "malformed address");
    assert_string_equal(vm_passt_vet(&r, &ss, 0, false, where), "malformed address");
    make_sockaddr("2a00::1", 80, &ss);
    assert_string_equal(vm_passt_vet(&r, &ss, 20, true, where), "malformed address");
    assert_null(vm_passt_vet(&r, &ss, 24, true, where)); /* no scope id: RFC 2133 length */
    /* AF_UNSPEC: a disconnect for connect; for UDPv4 sends the kernel uses sin_addr */
    make_sockaddr("127.0.0.1", 53, &ss);
    ss.ss_family = AF_UNSPEC;
    assert_null(vm_passt_vet(&r, &ss, sizeof(struct sockaddr_in), true, where));
    assert_string_equal(vm_passt_vet(&r, &ss, sizeof(struct sockaddr_in), false, where),
                        "loopback");
    /* passt's own families; anything else is refused */
    struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};
    assert_null(vm_passt_vet(&r, &un, sizeof(un), true, where));
    ss.ss_family = AF_NETLINK;
    assert_null(vm_passt_vet(&r, &ss, 12, false, where));
    ss.ss_family = AF_PACKET;
    assert_string_equal(vm_passt_vet(&r, &ss, 20, false, where), "address family");
}

/* With the kernel's route lookup: this host's own addresses are refused, whatever range. */
static void test_vet_host_address(void **state) {
    struct vm_passt_rules r = {.nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0)};
    assert_true(r.nl_fd >= 0);
    struct ifaddrs *ifa = NULL;
    assert_int_equal(getifaddrs(&ifa), 0);
    size_t n = 0;
    char where[VM_PASST_WHERE_MAX];
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        if (!i->ifa_addr ||
            (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        size_t len = i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                       : sizeof(struct sockaddr_in6);
        const char *why = vm_passt_vet(&r, i->ifa_addr, len, true, where);
        if (!why) fail_msg("%s (%s) allowed", where, i->ifa_name);
        n++;
    }
    freeifaddrs(ifa);
    assert_true(n > 0);
    close(r.nl_fd);
}

static void test_resolv(void **state) {
    struct vm_passt_rules r = {.nl_fd = -1};
    vm_passt_parse_resolv("# generated\n"
                          "search example.org\n"
                          "nameserver 127.0.0.53\n"
                          "  nameserver\t10.0.0.1 \n"
                          "nameserver fe80::1%eth0\n"
                          "nameserver ::ffff:192.0.2.1\n"
                          "nameserver not-an-address\n"
                          "options edns0\n",
                          &r);
    assert_int_equal(r.n_dns, 4);
    char buf[INET6_ADDRSTRLEN];
    assert_string_equal(dbx_addr_format(&r.dns[0], buf), "127.0.0.53");
    assert_string_equal(dbx_addr_format(&r.dns[1], buf), "10.0.0.1");
    assert_string_equal(dbx_addr_format(&r.dns[2], buf), "fe80::1");
    assert_string_equal(dbx_addr_format(&r.dns[3], buf), "192.0.2.1");
    _cleanup_free_ char *many = NULL;
    for (int i = 0; i < 20; i++) {
        char *m = dbx_xasprintf("%snameserver 10.0.0.%d\n", many ? many : "", i);
        free(many);
        many = m;
    }
    vm_passt_parse_resolv(many, &r);
    assert_int_equal(r.n_dns, VM_PASST_MAX_DNS);
    vm_passt_parse_resolv("", &r);
    assert_int_equal(r.n_dns, 0);
}

/* ---- starting passt --------------------------------------------------------------------- */

static size_t count_fds(pid_t pid) {
    _cleanup_free_ char *p = dbx_xasprintf("/proc/%d/fd", (int)pid);
    DIR *d = opendir(p);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void reap(pid_t pid) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

static void test_start(void **state) {
    /* passt's guest address is the one the guest sets from the plan */
    assert_string_equal(DBX_NET_OPEN_ADDR, VM_GUEST_ADDR "/24");
    assert_int_equal(VM_GUEST_PREFIX, 24);
    if (!have_passt()) skip_because("no passt");
    _cleanup_free_ char *logp = dbx_xasprintf("%s/passt.log", dir);
    _cleanup_close_ int log_fd = open(logp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(log_fd >= 0);
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    _cleanup_error_ dbx_error *err = NULL;
    struct vm_passt *p = NULL;
    if (vm_passt_start(sp[0], log_fd, &p, &err) < 0) fail_msg("%s", err->msg);
    close(sp[0]);
    pid_t pid = vm_passt_pid(p);
    assert_true(kill(pid, 0) == 0); /* still serving its end of the pair */
    assert_int_equal(getpgid(pid), pid);
    /* passt re-executes its AVX2 build; either way the environment stays empty */
    _cleanup_free_ char *envp = dbx_xasprintf("/proc/%d/environ", (int)pid);
    _cleanup_free_ char *env = NULL;
    size_t len = 99;
    _cleanup_error_ dbx_error *e2 = NULL;
    if (dbx_read_file_at(AT_FDCWD, envp, 65536, &env, &len, &e2) == 0) assert_int_equal(len, 0);
    assert_true(count_fds(pid) < 64); /* its own sockets only */
    /* the filter is in place: passt's Seccomp_filters count includes ours */
    _cleanup_free_ char *statusp = dbx_xasprintf("/proc/%d/status", (int)pid);
    _cleanup_free_ char *status_text = NULL;
    _cleanup_error_ dbx_error *e3 = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, statusp, 65536, &status_text, NULL, &e3), 0);
    assert_non_null(strstr(status_text, "Seccomp:\t2"));
    assert_int_equal(vm_passt_refused(p), 0);
    close(sp[1]);

    vm_passt_free(p); /* SIGKILL, no wait: we reap */
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    vm_passt_free(NULL);
}

static bool gone(pid_t pid) {
    _cleanup_free_ char *p = dbx_xasprintf("/proc/%d/stat", (int)pid);
    _cleanup_free_ char *st = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, p, 4096, &st, NULL, &e) < 0) return true;
    const char *rp = strrchr(st, ')');
    return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

/* passt dies with the process that started it (PR_SET_PDEATHSIG).  Not as root: passt then
 * switches to nobody, and a credential change clears the parent-death signal (measured; run
 * this test as an ordinary user, e.g. setpriv --reuid=65534 --regid=65534 --clear-groups). */
static void test_dies_with_parent(void **state) {
    if (!have_passt()) skip_because("no passt");
    if (geteuid() == 0)
        skip_because("as root passt switches to nobody, which clears the parent-death signal");
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t mid = fork();
    if (mid == 0) {
        dbx_error *err = NULL;
        struct vm_passt *vp = NULL;
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) _exit(1);
        pid_t pid = vm_passt_start(sp[0], -1, &vp, &err) == 0 ? vm_passt_pid(vp) : -1;
        (void)!write(p[1], &pid, sizeof(pid));
        _exit(pid > 0 ? 0 : 1);
    }
    close(p[1]);
    pid_t pid = -1;
    assert_int_equal(read(p[0], &pid, sizeof(pid)), sizeof(pid));
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(mid, &status, 0), mid);
    assert_true(pid > 0);
    for (int i = 0; i < 200 && !gone(pid); i++)
        usleep(10000);
    assert_true(gone(pid));
}

static void test_errors(void **state) {
    _cleanup_error_ dbx_error *err = NULL;
    struct vm_passt *p = NULL;
    assert_true(vm_passt_start(-1, -1, &p, &err) < 0);
    assert_non_null(strstr(err->msg, "no socket"));
    dbx_error_free(&err);
    _cleanup_close_ int notsock = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(vm_passt_start(notsock, -1, &p, &err) < 0);
    assert_null(p);
    assert_non_null(strstr(err->msg, "no socket"));
}

/* ---- a fake guest in network namespaces ------------------------------------------------- */

/* The scenarios run in a forked child (namespaces, credentials): CHECK (helpers.h). */

static uint16_t csum(const uint8_t *p, size_t len, uint32_t sum) {
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1) sum += (uint32_t)(p[len - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Ethernet + IPv4 from the guest (10.0.2.15) to dst, with an L4 payload of l4len bytes
 * already at frame + 34 (its checksum field at l4 + csum_off). */
static size_t finish_frame(uint8_t *f, const char *dst, uint8_t proto, size_t l4len,
                           size_t csum_off) {
    static const uint8_t macs[12] = {0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55, /* passt */
                                     0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    memcpy(f, macs, 12);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + l4len));
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = proto;
    CHECK(inet_pton(AF_INET, VM_GUEST_ADDR, ip + 12) == 1);
    CHECK(inet_pton(AF_INET, dst, ip + 16) == 1);
    put16(ip + 10, csum(ip, 20, 0));
    uint8_t *l4 = ip + 20;
    uint32_t pseudo = (uint32_t)proto + (uint32_t)l4len;
    for (int i = 12; i < 20; i += 2)
        pseudo += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    put16(l4 + csum_off, csum(l4, l4len, pseudo));
    return 14 + 20 + l4len;
}

static void guest_send(int fd, const uint8_t *frame, size_t len) {
    uint8_t hdr[4] = {0, 0, (uint8_t)(len >> 8), (uint8_t)len};
    CHECK(dbx_write_all(fd, hdr, 4) == 0);
    CHECK(dbx_write_all(fd, frame, len) == 0);
}

static void guest_syn(int fd, const char *dst, uint16_t sport, uint16_t dport) {
    uint8_t f[128] = {0};
    uint8_t *tcp = f + 34;
    put16(tcp, sport);
    put16(tcp + 2, dport);
    tcp[4] = 0x12; /* sequence number */
    tcp[12] = 5 << 4;
    tcp[13] = 0x02; /* SYN */
    put16(tcp + 14, 64240);
    guest_send(fd, f, finish_frame(f, dst, IPPROTO_TCP, 20, 16));
}

static void guest_udp(int fd, const char *dst, uint16_t sport, uint16_t dport, const char *msg) {
    uint8_t f[256] = {0};
    uint8_t *udp = f + 34;
    size_t len = 8 + strlen(msg);
    put16(udp, sport);
    put16(udp + 2, dport);
    put16(udp + 4, (uint16_t)len);
    memcpy(udp + 8, msg, strlen(msg));
    guest_send(fd, f, finish_frame(f, dst, IPPROTO_UDP, len, 6));
}

static int listener(int type, const char *addr, uint16_t port) {
    int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    CHECK(fd >= 0);
    int one = 1;
    CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
    CHECK(inet_pton(AF_INET, addr, &in.sin_addr) == 1);
    CHECK(bind(fd, (struct sockaddr *)&in, sizeof(in)) == 0);
    if (type == SOCK_STREAM) CHECK(listen(fd, 16) == 0);
    return fd;
}

static bool readable(int fd, int ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

static void wait_refused(struct vm_passt *p, uint64_t n) {
    for (int i = 0; i < 500 && vm_passt_refused(p) < n; i++)
        usleep(10000);
    if (vm_passt_refused(p) != n)
        fprintf(stderr, "refused %" PRIu64 ", expected %" PRIu64 "\n", vm_passt_refused(p), n);
    CHECK(vm_passt_refused(p) == n);
}

static void link_up(const char *name) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    CHECK(s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0);
    ifr.ifr_flags |= IFF_UP;
    CHECK(ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
    close(s);
}

/* passt wants an interface with a default route: loopback, in a namespace with nothing else. */
static void default_route_lo(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct rtentry rt = {.rt_flags = RTF_UP, .rt_dev = "lo"};
    ((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
    ((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
    CHECK(s >= 0 && ioctl(s, SIOCADDRT, &rt) == 0);
    close(s);
}

/* Our resolv.conf for passt and the filter: a loopback resolver, as with systemd-resolved. */
static void private_resolv_conf(const char *tmp) {
    CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
    _cleanup_free_ char *path = dbx_xasprintf("%s/resolv.conf", tmp);
    static const char text[] = "nameserver 127.0.0.53\n";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && dbx_write_all(fd, text, strlen(text)) == 0);
    close(fd);
    CHECK(mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0);
}

static void ip(const char *a0, ...) {
    char *argv[16] = {"ip", (char *)a0};
    va_list ap;
    va_start(ap, a0);
    for (size_t i = 2; i < 15 && (argv[i] = va_arg(ap, char *)); i++) {
    }
    va_end(ap);
    dbx_error *err = NULL;
    if (vm_run(NULL, argv, NULL, NULL, NULL, NULL, &err) < 0) {
        fprintf(stderr, "%s\n", err->msg);
        _exit(1);
    }
}

static void check_log(int log_fd, const char *line) {
    _cleanup_free_ char *text = NULL;
    dbx_error *err = NULL;
    CHECK(lseek(log_fd, 0, SEEK_SET) == 0);
    CHECK(dbx_read_all(log_fd, 1 << 20, &text, NULL, &err) == 0);
    if (!strstr(text, line)) {
        fprintf(stderr, "no '%s' in the log:\n%s", line, text);
        _exit(1);
    }
}

/* passt on one end of a socket pair; *guest is the other end (where QEMU would be). */
static struct vm_passt *start_passt(const char *tmp, int *log_fd, int *guest) {
    _cleanup_free_ char *logp = dbx_xasprintf("%s/passt.log", tmp);
    *log_fd = open(logp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(*log_fd >= 0);
    int sp[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
    struct vm_passt *p = NULL;
    dbx_error *err = NULL;
    if (vm_passt_start(sp[0], *log_fd, &p, &err) < 0) {
        fprintf(stderr, "vm_passt_start: %s\n", err->msg);
        check_log(*log_fd, "(the log)");
    }
    close(sp[0]);
    *guest = sp[1];
    return p;
}

/* The network namespace of a new child process G, held by an fd (G is gone at return). */
static int new_netns(pid_t *ret_pid, int *ret_ctl) {
    int p[2], q[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0 && pipe2(q, O_CLOEXEC) == 0);
    pid_t g = fork();
    CHECK(g >= 0);
    if (g == 0) {
        close(p[0]);
        close(q[1]);
        char c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
        (void)!write(p[1], &c, 1);
        (void)!read(q[0], &c, 1); /* until the parent is done with us */
        _exit(0);
    }
    close(p[1]);
    close(q[0]);
    char c = 0;
    CHECK(read(p[0], &c, 1) == 1 && c == 'y');
    close(p[0]);
    _cleanup_free_ char *path = dbx_xasprintf("/proc/%d/ns/net", (int)g);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    *ret_pid = g;
    *ret_ctl = q[1];
    return fd;
}

/* As root: host namespace A with 10.77.0.1 and 169.254.169.254 (veth v0), loopback;
 * test host namespace B with 10.77.0.2 (veth v1). */
static int root_scenario(const char *tmp) {
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) return SKIP_CODE;
    private_resolv_conf(tmp);
    int ns_a = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    CHECK(ns_a >= 0);
    pid_t g;
    int g_ctl;
    int ns_b = new_netns(&g, &g_ctl);
    _cleanup_free_ char *gpid = dbx_xasprintf("%d", (int)g);
    ip("link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", gpid, NULL);
    close(g_ctl);
    reap(g);
    ip("addr", "add", "10.77.0.1/24", "dev", "v0", NULL);
    ip("link", "set", "v0", "up", NULL);
    /* (this kernel may lack the dummy driver; the veth end does as well) */
    ip("addr", "add", "169.254.169.254/32", "dev", "v0", NULL);
    /* passt wants an interface with a default route */
    ip("route", "add", "default", "via", "10.77.0.2", "dev", "v0", NULL);
    link_up("lo");
    CHECK(setns(ns_b, CLONE_NEWNET) == 0);
    ip("addr", "add", "10.77.0.2/24", "dev", "v1", NULL);
    ip("link", "set", "v1", "up", NULL);
    link_up("lo");
    int test_host = listener(SOCK_STREAM, "10.77.0.2", 8080);
    CHECK(setns(ns_a, CLONE_NEWNET) == 0);
    /* every address of this host on 8080, and UDP on loopback */
    int host_tcp = listener(SOCK_STREAM, "0.0.0.0", 8080);
    int host_udp = listener(SOCK_DGRAM, "0.0.0.0", 5353);
    int dns = listener(SOCK_DGRAM, "127.0.0.53", 53);

    int log_fd = -1, guest = -1;
    struct vm_passt *p = start_passt(tmp, &log_fd, &guest);
    static const char *const refused[] = {"127.0.0.1", "127.0.0.2", "0.0.0.0", "10.77.0.1",
                                          "169.254.169.254"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(refused); i++)
        guest_syn(guest, refused[i], (uint16_t)(40000 + i), 8080);
    guest_udp(guest, "127.0.0.1", 40100, 5353, "to loopback");
    guest_udp(guest, VM_GUEST_DNS, 40101, 53, "query");
    guest_syn(guest, "10.77.0.2", 40200, 8080);

    CHECK(readable(test_host, 5000)); /* the private address is reachable */
    int c = accept4(test_host, NULL, NULL, SOCK_CLOEXEC);
    CHECK(c >= 0);
    close(c);
    CHECK(readable(dns, 5000)); /* the query reached the host's (loopback) resolver */
    char buf[64] = {0};
    CHECK(recv(dns, buf, sizeof(buf) - 1, 0) == 5 && strcmp(buf, "query") == 0);
    CHECK(!readable(host_tcp, 300)); /* nothing reached this host */
    CHECK(!readable(host_udp, 0));
    wait_refused(p, DBX_ARRAY_SIZE(refused) + 1);
    CHECK(!readable(host_tcp, 0));
    check_log(log_fd, "devbox: refused passt connect to 127.0.0.1:8080 (loopback)\n");
    check_log(log_fd, "devbox: refused passt connect to 0.0.0.0:8080 (unspecified)\n");
    check_log(log_fd, "devbox: refused passt connect to 10.77.0.1:8080 (host address)\n");
    check_log(log_fd, "devbox: refused passt connect to 169.254.169.254:8080 (cloud metadata)\n");
    pid_t pid = vm_passt_pid(p);
    close(guest);
    vm_passt_free(p);
    reap(pid);
    return 0;
}

static void drop_caps(void) {
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2] = {{0}};
    CHECK(syscall(SYS_capset, &h, d) == 0);
}

static void write_map(const char *file, unsigned id) {
    _cleanup_free_ char *line = dbx_xasprintf("%u %u 1\n", id, id);
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0 && dbx_write_all(fd, line, strlen(line)) == 0);
    close(fd);
}

/* As an ordinary user (nobody when we are root) in namespaces of its own (only loopback),
 * then without any capability: the rootless path. */
static int rootless_scenario(void) {
    /* (a uid change makes us non-dumpable: /proc/self would stay root's) */
    if (geteuid() == 0)
        CHECK(setgroups(0, NULL) == 0 && setresgid(65534, 65534, 65534) == 0 &&
              setresuid(65534, 65534, 65534) == 0 && prctl(PR_SET_DUMPABLE, 1) == 0);
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) < 0) return SKIP_CODE;
    int fd = open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0 && write(fd, "deny", 4) == 4);
    close(fd);
    write_map("/proc/self/uid_map", uid);
    write_map("/proc/self/gid_map", gid);
    char tmp[] = "/tmp/test-vm-passt-rootless-XXXXXX";
    CHECK(mkdtemp(tmp));
    private_resolv_conf(tmp);
    link_up("lo");
    default_route_lo();
    int host_tcp = listener(SOCK_STREAM, "0.0.0.0", 8080);
    int dns = listener(SOCK_DGRAM, "127.0.0.53", 53);
    /* From here on we hold no capability, in our namespace or any other: reading passt's
     * memory works only because passt runs in a user namespace we own. */
    drop_caps();

    int log_fd = -1, guest = -1;
    struct vm_passt *p = start_passt(tmp, &log_fd, &guest);
    guest_syn(guest, "127.0.0.1", 40000, 8080);
    guest_udp(guest, VM_GUEST_DNS, 40101, 53, "query");
    CHECK(readable(dns, 5000));
    wait_refused(p, 1);
    CHECK(!readable(host_tcp, 200));
    check_log(log_fd, "devbox: refused passt connect to 127.0.0.1:8080 (loopback)\n");
    pid_t pid = vm_passt_pid(p);
    close(guest);
    vm_passt_free(p);
    reap(pid);
    dbx_error *err = NULL;
    vm_rm_rf(tmp, &err);
    return 0;
}

static void run_scenario(int (*fn)(const char *), const char *arg) {
    if (!have_passt()) skip_because("no passt");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(fn(arg));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == SKIP_CODE)
        skip_because("the scenario cannot run here (no namespaces, or root needed)");
    assert_int_equal(WEXITSTATUS(status), 0);
}

static int root_scenario_in(const char *tmp) {
    return geteuid() == 0 ? root_scenario(tmp) : SKIP_CODE;
}
static int rootless_scenario_in(const char *tmp) {
    return rootless_scenario();
}

static void test_guest_netns(void **state) {
    run_scenario(root_scenario_in, dir);
}
static void test_guest_rootless(void **state) {
    run_scenario(rootless_scenario_in, dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vet_table),        cmocka_unit_test(test_vet_host_address),
        cmocka_unit_test(test_resolv),           cmocka_unit_test(test_start),
        cmocka_unit_test(test_dies_with_parent), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_guest_netns),      cmocka_unit_test(test_guest_rootless),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

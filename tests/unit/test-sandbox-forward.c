/* tests/unit/test-sandbox-forward.c: the host side of a port forward (sandbox/sandbox-net.c), in
 * process, without a guest: a connection to the forward's listener becomes a SOCK_OPEN frame
 * for the guest port once the guest is ready, and its socket has TCP_NODELAY, so a response the
 * guest relays in parts goes out part by part (with Nagle, a server's second write waited for
 * the client's delayed acknowledgement: 25.8 ms a request on a kept-alive connection instead of
 * 3.9, trial13b).  Before the guest is ready a connection is closed at once. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helpers.h"
#include "sandbox/sandbox-internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

/* Whether this host has an IPv6 loopback to listen on. */
static bool have_ipv6_lo(void) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/* A port free on 127.0.0.1 and, where there is one, [::1]: the forward takes both. */
static uint16_t free_port(void) {
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        close(fd);
        if (!have_ipv6_lo()) return ntohs(sa.sin_port);
        int f6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in6 s6 = {
            .sin6_family = AF_INET6, .sin6_port = sa.sin_port, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        bool free6 = bind(f6, (struct sockaddr *)&s6, sizeof(s6)) == 0;
        close(f6);
        if (free6) return ntohs(sa.sin_port);
    }
}

static int connect_to(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* A connection to [::1]:port, or -errno. */
static int connect6_to(uint16_t port) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct sockaddr_in6 sa = {
        .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) return fd;
    int e = errno;
    close(fd);
    return -e;
}

/* One round of the supervisor's loop for the net alone. */
static void net_round(struct net *n) {
    struct pollfd pfd[16];
    size_t c = net_pollfds(n, pfd, 16, false);
    assert_true(poll(pfd, c, 2000) > 0);
    net_dispatch(n, pfd, c);
}

/* The fd of ours whose peer is the client socket cfd (the forward's accepted end), or -1. */
static int accepted_end(int cfd) {
    struct sockaddr_storage me, peer;
    socklen_t len = sizeof(me);
    assert_int_equal(getsockname(cfd, (struct sockaddr *)&me, &len), 0);
    socklen_t mlen = len;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int found = -1;
    for (struct dirent *e; found < 0 && (e = readdir(d));) {
        int fd = atoi(e->d_name);
        len = sizeof(peer);
        if (e->d_name[0] == '.' || fd == cfd || fd == dirfd(d) ||
            getpeername(fd, (struct sockaddr *)&peer, &len) < 0)
            continue;
        if (len == mlen && memcmp(&peer, &me, len) == 0) found = fd;
    }
    closedir(d);
    return found;
}

static void test_forward_accept(void **state) {
    (void)state;
    struct profile prof = {0};
    struct dbx_buf out = {0};
    struct net *n = NULL;
    dbx_error *err = NULL;
    assert_int_equal(net_new(&n, &prof, NULL, NULL, test_tmp, &out, &err), 0);
    uint16_t port = free_port();
    assert_int_equal(net_port_add(n, port, 8000, &err), 0);

    /* before READY: closed at once, nothing for the guest */
    int early = connect_to(port);
    net_round(n);
    char c;
    assert_int_equal(read(early, &c, 1), 0);
    close(early);
    assert_int_equal(out.len, 0);

    net_guest_ready(n);
    int cfd = connect_to(port);
    net_round(n);
    struct dbx_reader rd = {0};
    dbx_reader_feed(&rd, out.data, out.len);
    struct dbx_frame_hdr h;
    const uint8_t *p;
    assert_int_equal(dbx_reader_next(&rd, &h, &p, &err), DBX_READ_FRAME);
    assert_int_equal(h.type, DBX_MSG_SOCK_OPEN);
    uint8_t kind = 0;
    uint16_t gport = 0;
    assert_int_equal(dbx_dec_sock_open(p, h.len, &kind, &gport), 0);
    assert_int_equal(kind, DBX_SOCK_FORWARD);
    assert_int_equal(gport, 8000);
    dbx_reader_free(&rd);
    assert_int_equal(net_nsocks(n), 1);

    int afd = accepted_end(cfd);
    assert_true(afd >= 0);
    int v = 0;
    socklen_t len = sizeof(v);
    assert_int_equal(getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    assert_int_equal(v, 1);

    /* `localhost` as ::1: the forward listens there too (where the host has IPv6) */
    bool v6 = have_ipv6_lo();
    int c6 = v6 ? connect6_to(port) : -1;
    if (v6) {
        if (c6 < 0) fail_msg("connect to [::1]:%u: %s", port, strerror(-c6));
        out.len = 0;
        net_round(n);
        dbx_reader_feed(&rd, out.data, out.len);
        assert_int_equal(dbx_reader_next(&rd, &h, &p, &err), DBX_READ_FRAME);
        assert_int_equal(h.type, DBX_MSG_SOCK_OPEN);
        assert_int_equal(dbx_dec_sock_open(p, h.len, &kind, &gport), 0);
        assert_int_equal(gport, 8000);
        dbx_reader_free(&rd);
        assert_int_equal(net_nsocks(n), 2);
        close(c6);
    } else {
        print_message("no IPv6 loopback here: the [::1] listener is not tried\n");
    }
    /* removed: both listeners closed */
    assert_int_equal(net_port_rm(n, port, &err), 0);
    int gone = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(gone, (struct sockaddr *)&sa, sizeof(sa)), -1);
    close(gone);
    if (v6) assert_int_equal(connect6_to(port), -ECONNREFUSED);

    close(cfd);
    net_free(n);
    dbx_buf_free(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forward_accept, test_home_setup, test_home_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

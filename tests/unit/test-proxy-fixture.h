/* tests/unit/test-proxy-fixture.h: the proxy's log and client connections, shared by
 * test-proxy.c and test-proxy-mitm.c (static: each test binary gets its own copy).  Include
 * after cmocka.h. */
#pragma once

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "common/common.h"
#include "proxy/proxy.h"

/* Everything the proxy logged so far into the memfd log_fd (a static buffer). */
static inline char *proxy_test_log_text(int log_fd) {
    static char buf[256 * 1024];
    ssize_t n = pread(log_fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* Wait (up to 5 s) for a log line containing every needle. */
static inline void proxy_test_expect_log(int log_fd, const char *needle, const char *needle2) {
    for (int i = 0; i < 500; i++) {
        char *t = proxy_test_log_text(log_fd);
        for (char *line = t; *line;) {
            char *nl = strchr(line, '\n');
            if (!nl) break;
            *nl = '\0';
            if (strstr(line, needle) && (!needle2 || strstr(line, needle2))) return;
            line = nl + 1;
        }
        usleep(10000);
    }
    fail_msg("no log line with '%s' / '%s' in:\n%s", needle, needle2 ? needle2 : "",
             proxy_test_log_text(log_fd));
}

/* A client connection: our end of a socketpair whose other end the proxy serves. */
static inline int proxy_test_client(struct proxy *p) {
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    dbx_error *e = NULL;
    if (proxy_serve(p, sv[1], &e) < 0) fail_msg("serve: %s", e->msg);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return sv[0];
}

/* Read exactly one response (head byte by byte, then its Content-Length body) from fd, or
 * from ssl when not NULL, into buf, so that a following response stays unread; the status. */
static inline int proxy_test_read_response(int fd, SSL *ssl, char *buf, size_t cap) {
    size_t len = 0;
    while (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0) {
        if (len + 1 >= cap) return -1;
        int k = ssl ? SSL_read(ssl, buf + len, 1) : (int)read(fd, buf + len, 1);
        if (k != 1) return -1;
        buf[++len] = '\0';
    }
    size_t head = len, body = 0;
    char *cl = strcasestr(buf, "content-length: ");
    if (cl) body = strtoul(cl + 16, NULL, 10);
    assert_true(head + body < cap);
    while (len < head + body) {
        int k = ssl ? SSL_read(ssl, buf + len, (int)(head + body - len))
                    : (int)read(fd, buf + len, head + body - len);
        if (k <= 0) return -1;
        len += (size_t)k;
    }
    buf[len] = '\0';
    int status = -1;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    return status;
}

static inline void send_str(int fd, const char *s) {
    assert_int_equal(dbx_write_all(fd, s, strlen(s)), 0);
}

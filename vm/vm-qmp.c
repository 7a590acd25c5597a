/* vm/vm-qmp.c: the supervisor's end of QEMU's monitor (QMP), on a socket pair.
 *
 * QEMU is reachable by the guest (a device-model escape owns it), so everything it sends is
 * hostile: lines are capped (VM_QMP_LINE_MAX; a longer one is skipped to its end), each is
 * parsed by jansson with duplicate keys rejected, and anything that is not one of the few
 * messages we look for is ignored.  Nothing here blocks or prints.
 *
 * Measured on QEMU 7.2: `-chardev socket,id=qmp,fd=N` + `-mon chardev=qmp,mode=control` takes a
 * connected socket pair end; QEMU writes its greeting at once and accepts `qmp_capabilities`
 * sent before the greeting was read.  A virtio-blk write failing with ENOSPC (the default
 * werror=enospc) emits BLOCK_IO_ERROR {"action": "stop", "nospace": true} and STOP; `cont`
 * retries the failed requests and emits RESUME. */
#include "vm-internal.h"

#include <jansson.h>
#include <poll.h>
#include <sys/socket.h>

#define VM_QMP_LINE_MAX (64 * 1024)
#define VM_QMP_OUT_MAX (64 * 1024) /* we send a few short commands; more is a bug */

struct vm_qmp {
    int fd;
    char in[VM_QMP_LINE_MAX];
    size_t in_len;
    bool skipping; /* inside an over-long line: drop bytes up to the next newline */
    struct dbx_buf out;
};

static void queue(struct vm_qmp *q, const char *line) {
    if (dbx_buf_avail(&q->out) + strlen(line) > VM_QMP_OUT_MAX) return;
    dbx_buf_put(&q->out, line, strlen(line));
}

int vm_qmp_new(int fd, struct vm_qmp **ret, dbx_error **err) {
    if (fd < 0) return dbx_error_set(err, EBADF, "qmp: no socket");
    struct vm_qmp *q = dbx_xcalloc(1, sizeof(*q));
    q->fd = fd;
    dbx_set_nonblock(fd, true);
    /* Leave capabilities negotiation mode; QEMU reads it after sending its greeting. */
    queue(q, "{\"execute\": \"qmp_capabilities\"}\n");
    *ret = q;
    return 0;
}

void vm_qmp_free(struct vm_qmp *q) {
    if (!q) return;
    if (q->fd >= 0) close(q->fd);
    dbx_buf_free(&q->out);
    free(q);
}

int vm_qmp_fd(const struct vm_qmp *q) {
    return q ? q->fd : -1;
}

short vm_qmp_poll_events(const struct vm_qmp *q) {
    if (!q || q->fd < 0) return 0;
    return (short)(POLLIN | (dbx_buf_avail(&q->out) ? POLLOUT : 0));
}

void vm_qmp_cont(struct vm_qmp *q) {
    if (q) queue(q, "{\"execute\": \"cont\"}\n");
}

void vm_qmp_query_status(struct vm_qmp *q) {
    if (q) queue(q, "{\"execute\": \"query-status\", \"id\": \"status\"}\n");
}

static bool str_is(json_t *v, const char *s) {
    const char *x = json_string_value(v);
    return x && strcmp(x, s) == 0;
}

/* One complete line: the few messages that matter, everything else ignored. */
static void on_line(const char *line, size_t len, struct vm_qmp_state *st) {
    json_error_t je;
    json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    json_t *ev = json_object_get(j, "event");
    json_t *data = json_object_get(j, "data");
    if (str_is(ev, "STOP")) {
        st->events |= VM_QMP_EV_STOP;
    } else if (str_is(ev, "RESUME")) {
        st->events |= VM_QMP_EV_RESUME;
    } else if (str_is(ev, "BLOCK_IO_ERROR")) {
        st->events |= VM_QMP_EV_IO_ERROR;
        if (json_is_true(json_object_get(data, "nospace")) &&
            str_is(json_object_get(data, "action"), "stop"))
            st->events |= VM_QMP_EV_NOSPACE;
    } else if (str_is(ev, "GUEST_PANICKED")) {
        st->events |= VM_QMP_EV_PANIC;
    } else if (str_is(ev, "SHUTDOWN")) {
        st->events |= str_is(json_object_get(data, "reason"), "guest-panic") ? VM_QMP_EV_PANIC
                                                                             : VM_QMP_EV_SHUTDOWN;
    } else if (!ev && str_is(json_object_get(j, "id"), "status")) {
        const char *s = json_string_value(json_object_get(json_object_get(j, "return"), "status"));
        if (s && strlen(s) < sizeof(st->status)) {
            strcpy(st->status, s);
            st->events |= VM_QMP_EV_STATUS;
        }
    }
    json_decref(j);
}

static void feed(struct vm_qmp *q, const char *p, size_t n, struct vm_qmp_state *st) {
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;
        if (q->skipping) {
            /* the rest of an over-long line */
        } else if (q->in_len + k > sizeof(q->in)) {
            q->skipping = true;
            q->in_len = 0;
        } else {
            memcpy(q->in + q->in_len, p, k);
            q->in_len += k;
        }
        if (!nl) return;
        if (!q->skipping && q->in_len) on_line(q->in, q->in_len, st);
        q->skipping = false;
        q->in_len = 0;
        p += k + 1;
        n -= k + 1;
    }
}

int vm_qmp_io(struct vm_qmp *q, struct vm_qmp_state *st, dbx_error **err) {
    if (!q || q->fd < 0) return dbx_error_set(err, EPIPE, "qmp: closed");
    while (dbx_buf_avail(&q->out) > 0) {
        ssize_t n = send(q->fd, dbx_buf_head(&q->out), dbx_buf_avail(&q->out), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n < 0) {
            int e = errno;
            close(q->fd); /* QEMU is gone (EPIPE): nothing more to read either */
            q->fd = -1;
            return dbx_error_set(err, e, "qmp: write");
        }
        dbx_buf_consume(&q->out, (size_t)n);
    }
    char buf[16384];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(q->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        if (n <= 0) {
            int e = n == 0 ? EPIPE : errno;
            close(q->fd);
            q->fd = -1;
            return dbx_error_set(err, e, "qmp: %s", n == 0 ? "QEMU closed the monitor" : "read");
        }
        feed(q, buf, (size_t)n, st);
    }
    return 0;
}

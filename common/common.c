/* common/common.c: see common.h. */
#define _GNU_SOURCE
#include "common.h"

#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

static void default_oom(void) {
    static const char m[] = "devbox: out of memory\n";
    (void)!write(2, m, sizeof(m) - 1);
    _exit(125);
}
void (*dbx_oom_hook)(void) = default_oom;

/* ---- errors ----------------------------------------------------------------------------- */

/* Install a new error taking ownership of msg; keeps only the newest, never leaks. */
static int error_store(dbx_error **err, int code, char *msg) {
    dbx_error *e = dbx_xcalloc(1, sizeof(*e));
    e->code = code;
    e->msg = msg;
    if (*err) dbx_error_free(err);
    *err = e;
    return -code;
}

int dbx_error_set(dbx_error **err, int errnum, const char *fmt, ...) {
    int code = errnum > 0 ? errnum : (errnum < 0 ? -errnum : EIO);
    if (!err) return -code;
    va_list ap;
    va_start(ap, fmt);
    char *msg = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    if (errnum != 0) {
        char *full = dbx_xasprintf("%s: %s", msg, strerror(code));
        free(msg);
        msg = full;
    }
    return error_store(err, code, msg);
}

int dbx_error_setx(dbx_error **err, int code, const char *fmt, ...) {
    code = code > 0 ? code : (code < 0 ? -code : EIO);
    if (!err) return -code;
    va_list ap;
    va_start(ap, fmt);
    char *msg = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    return error_store(err, code, msg);
}

int dbx_error_wrap(dbx_error **err, const char *fmt, ...) {
    if (!err || !*err) return -EIO;
    va_list ap;
    va_start(ap, fmt);
    char *ctx = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    char *full = dbx_xasprintf("%s: %s", ctx, (*err)->msg);
    free(ctx);
    free((*err)->msg);
    (*err)->msg = full;
    return -(*err)->code;
}

void dbx_error_free(dbx_error **err) {
    if (!err || !*err) return;
    free((*err)->msg);
    free(*err);
    *err = NULL;
}

/* ---- memory ----------------------------------------------------------------------------- */

void *dbx_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) dbx_oom_hook();
    return p;
}
void *dbx_xcalloc(size_t n, size_t m) {
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p) dbx_oom_hook();
    return p;
}
void *dbx_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) dbx_oom_hook();
    return q;
}
char *dbx_xstrdup(const char *s) {
    char *p = strdup(s);
    if (!p) dbx_oom_hook();
    return p;
}
char *dbx_xstrndup(const char *s, size_t n) {
    char *p = strndup(s, n);
    if (!p) dbx_oom_hook();
    return p;
}
char *dbx_xvasprintf(const char *fmt, va_list ap) {
    char *p = NULL;
    if (vasprintf(&p, fmt, ap) < 0) dbx_oom_hook();
    return p;
}

char *dbx_xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *p = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    return p;
}

void dbx_strv_free(char **v) {
    if (!v) return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}
size_t dbx_strv_len(char *const *v) {
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}
char *dbx_strv_join(char *const *v, const char *sep) {
    size_t n = 1, sl = strlen(sep);
    for (size_t i = 0; v && v[i]; i++)
        n += strlen(v[i]) + (i ? sl : 0);
    char *out = dbx_xmalloc(n), *p = out;
    for (size_t i = 0; v && v[i]; i++)
        p = stpcpy(i ? stpcpy(p, sep) : p, v[i]);
    *p = '\0';
    return out;
}

char **dbx_strv_push(char **v, const char *s) {
    size_t n = dbx_strv_len(v);
    v = dbx_xrealloc(v, (n + 2) * sizeof(char *));
    v[n] = dbx_xstrdup(s);
    v[n + 1] = NULL;
    return v;
}

/* ---- I/O -------------------------------------------------------------------------------- */

int dbx_write_all(int fd, const void *buf, size_t len) {
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int dbx_read_all(int fd, size_t cap, char **ret_buf, size_t *ret_len, dbx_error **err) {
    size_t len = 0, alloc = 4096;
    _cleanup_free_ char *buf = dbx_xmalloc(alloc);
    for (;;) {
        if (alloc - len < 2) {
            if (alloc > cap + 1) return dbx_error_set(err, E2BIG, "larger than %zu bytes", cap);
            alloc *= 2;
            buf = dbx_xrealloc(buf, alloc);
        }
        ssize_t n = read(fd, buf + len, alloc - len - 1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return dbx_error_set(err, errno, "read");
        }
        if (n == 0) break;
        len += (size_t)n;
        if (len > cap) return dbx_error_set(err, E2BIG, "larger than %zu bytes", cap);
    }
    buf[len] = '\0';
    *ret_buf = TAKE_PTR(buf);
    if (ret_len) *ret_len = len;
    return 0;
}

int dbx_read_file_at(int dirfd, const char *name, size_t cap, char **ret_buf, size_t *ret_len,
                     dbx_error **err) {
    /* O_NONBLOCK: a FIFO put where a file was (by a box, in its workspace) must not hang the
     * open until someone writes to it; it is then refused as no regular file.  Reads of a
     * regular file ignore the flag. */
    _cleanup_close_ int fd =
        openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", name);
    struct stat st;
    if (fstat(fd, &st) < 0) return dbx_error_set(err, errno, "stat '%s'", name);
    if (!S_ISREG(st.st_mode)) return dbx_error_set(err, EINVAL, "'%s' is not a regular file", name);
    if (dbx_read_all(fd, cap, ret_buf, ret_len, err) < 0) return dbx_error_wrap(err, "'%s'", name);
    return 0;
}

int dbx_write_file_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                          dbx_error **err) {
    char tmp[NAME_MAX + 1];
    if (snprintf(tmp, sizeof(tmp), ".%s.tmp.%d", name, (int)getpid()) >= (int)sizeof(tmp))
        return dbx_error_set(err, ENAMETOOLONG, "'%s'", name);
    _cleanup_close_ int fd =
        openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return dbx_error_set(err, errno, "create '%s'", tmp);
    int r = dbx_write_all(fd, data, len);
    if (r == 0 && fsync(fd) < 0) r = -errno;
    if (r < 0) {
        unlinkat(dirfd, tmp, 0);
        return dbx_error_set(err, -r, "write '%s'", tmp);
    }
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        r = errno;
        unlinkat(dirfd, tmp, 0);
        return dbx_error_set(err, r, "rename '%s'", name);
    }
    /* fsync the directory so the rename itself survives a crash. */
    int dfd = dirfd == AT_FDCWD ? open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : dirfd;
    if (dfd >= 0) {
        fsync(dfd);
        if (dfd != dirfd) close(dfd);
    }
    return 0;
}

int dbx_mkdir_p(const char *path, mode_t mode, dbx_error **err) {
    _cleanup_free_ char *p = dbx_xstrdup(path);
    for (char *s = p + 1;; s++) {
        bool end = *s == '\0';
        if (*s == '/' || end) {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) < 0 && errno != EEXIST)
                return dbx_error_set(err, errno, "mkdir '%s'", p);
            *s = c;
        }
        if (end) break;
    }
    return 0;
}

int dbx_mkdir_private(const char *path, dbx_error **err) {
    if (dbx_mkdir_p(path, 0700, err) < 0) return -1;
    struct stat st;
    if (lstat(path, &st) < 0) return dbx_error_set(err, errno, "stat '%s'", path);
    if (!S_ISDIR(st.st_mode)) return dbx_error_set(err, ENOTDIR, "'%s'", path);
    if (st.st_uid != geteuid())
        return dbx_error_set(err, EPERM, "'%s' is owned by uid %u, not by us", path,
                             (unsigned)st.st_uid);
    if ((st.st_mode & 077) && chmod(path, 0700) < 0)
        return dbx_error_set(err, errno, "chmod '%s'", path);
    return 0;
}

int dbx_set_nonblock(int fd, bool on) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -errno;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int dbx_set_cloexec(int fd, bool on) {
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0) return -errno;
    fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
    return fcntl(fd, F_SETFD, fl) < 0 ? -errno : 0;
}

/* Found in use: `devbox exec -- echo hi >&-` answered 'protocol version 104, expected 11' (the
 * connection to the supervisor got fd 1, and the command's "hi" went into it) and `devbox exec
 * -i -- cat <&-` hung (stdin was the connection).  Every fd we open afterwards would do the same.
 * A command here with stdout closed fails to write (EBADF); with this, devbox fails to write
 * the command's output the same way and says so, and a closed stdin reads as no input. */
int dbx_stdio_reserve(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
        /* the lower ones are open: open() takes the lowest free fd, this one */
        int n = open("/dev/null", (fd == 0 ? O_WRONLY : O_RDONLY) | O_NOCTTY);
        int null_errno = errno;
        if (n < 0) n = open("/", O_PATH); /* a chroot without /dev: reads and writes fail too */
        if (n < 0) return -null_errno;    /* /dev/null's reason, the one that matters */
        if (n != fd) {                    /* cannot happen; not worth trusting either */
            int e = dup2(n, fd) < 0 ? -errno : 0;
            close(n);
            if (e < 0) return e;
        }
    }
    return 0;
}

uint64_t dbx_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
uint64_t dbx_now_ms(void) {
    return dbx_now_ns() / 1000000ull;
}

int dbx_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
    if (!s || *s < '0' || *s > '9') return -EINVAL;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -ERANGE;
        v = v * 10 + d;
    }
    if (v < min || v > max) return -ERANGE;
    *ret = v;
    return 0;
}

int dbx_parse_size(const char *s, uint64_t *ret) {
    if (!s || !*s) return -EINVAL;
    size_t n = strlen(s);
    uint64_t mult = 1;
    char last = s[n - 1];
    switch (last) {
    case 'k':
    case 'K':
        mult = 1ull << 10;
        break;
    case 'm':
    case 'M':
        mult = 1ull << 20;
        break;
    case 'g':
    case 'G':
        mult = 1ull << 30;
        break;
    case 't':
    case 'T':
        mult = 1ull << 40;
        break;
    default:
        break;
    }
    _cleanup_free_ char *num = dbx_xstrndup(s, mult == 1 ? n : n - 1);
    uint64_t v;
    int r = dbx_parse_u64(num, 0, UINT64_MAX, &v);
    if (r < 0) return r;
    if (v > UINT64_MAX / mult) return -ERANGE;
    *ret = v * mult;
    return 0;
}

bool dbx_str_has_prefix(const char *s, const char *p) {
    return strncmp(s, p, strlen(p)) == 0;
}

bool dbx_path_at_or_below(const char *path, const char *dir) {
    size_t n = strlen(dir);
    if (!strcmp(dir, "/")) return path[0] == '/';
    return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

char *dbx_gitfile_read(int dfd, const char *name) {
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    _cleanup_error_ dbx_error *e = NULL;
    /* git refuses a `.git` file larger than 4 * PATH_MAX as not a gitfile */
    if (dbx_read_file_at(dfd, name, 4 * PATH_MAX, &buf, &len, &e) < 0) return NULL;
    len = strnlen(buf, len);
    if (len < 9 || strncmp(buf, "gitdir: ", 8) != 0) return NULL;
    while (len > 8 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    return buf[8] ? dbx_xstrdup(buf + 8) : NULL;
}

/* Length of the well-formed UTF-8 sequence (RFC 3629: shortest form, no surrogates, at most
 * U+10FFFF) at p[0..n), or 0 if none starts there. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        if (p[0] == 0xe0) lo = 0xa0;
        if (p[0] == 0xed) hi = 0x9f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        if (p[0] == 0xf0) lo = 0x90;
        if (p[0] == 0xf4) hi = 0x8f;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return len;
}

char *dbx_utf8_fix(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    struct dbx_buf b = {0};
    for (size_t i = 0; i < n;) {
        size_t len = p[i] < 0x80 ? 1 : utf8_seq(p + i, n - i);
        if (len == 0) {
            dbx_buf_put(&b, "\xef\xbf\xbd", 3); /* U+FFFD */
            i++;
            continue;
        }
        dbx_buf_put(&b, p + i, len);
        i += len;
    }
    dbx_buf_put_u8(&b, 0);
    return (char *)b.data; /* the buffer's, whole: off stays 0 */
}

size_t dbx_utf8_next(const char *s, size_t n, uint32_t *ret_cp) {
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0) return 0;
    if (p[0] < 0x80) {
        *ret_cp = p[0];
        return 1;
    }
    size_t len = utf8_seq(p, n);
    if (len == 0) return 0;
    uint32_t cp = p[0] & (0x7f >> len); /* the lead byte's payload: 5, 4 or 3 bits */
    for (size_t i = 1; i < len; i++)
        cp = (cp << 6) | (p[i] & 0x3f);
    *ret_cp = cp;
    return len;
}

/* A UTF-8 encoded C1 control (U+0080-U+009F): terminals that decode UTF-8 act on these. */
static bool utf8_c1(const unsigned char *p, size_t len) {
    return len == 2 && p[0] == 0xc2 && p[1] <= 0x9f;
}

char *dbx_sanitize_printable(char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    for (unsigned char *p = (unsigned char *)s, *end = p + n; p < end;) {
        if (*p < 0x80) {
            if ((*p < 0x20 && *p != '\t') || *p == 0x7f) *p = '?';
            p++;
            continue;
        }
        /* C1 controls, raw (8-bit terminals) or UTF-8 encoded; and bytes that are not UTF-8 */
        size_t len = utf8_seq(p, (size_t)(end - p));
        if (len == 0 || utf8_c1(p, len)) {
            for (size_t i = 0; i < (len ? len : 1); i++)
                p[i] = '?';
            len = len ? len : 1;
        }
        p += len;
    }
    return s;
}

char *dbx_escape_n(const char *s, size_t n, unsigned flags) {
    char *o = dbx_xmalloc(n * 4 + 1), *q = o;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        if (*p == '\r' && (flags & DBX_ESC_LINES) && p + 1 < end && p[1] == '\n') {
            p++;
            continue;
        }
        if (*p == '\n' && (flags & DBX_ESC_LINES)) {
            *q++ = *p++;
            continue;
        }
        if (*p == 0x1b) {
            q += sprintf(q, "\\e");
            p++;
            continue;
        }
        if (*p < 0x80) {
            if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
                q += sprintf(q, "\\x%02x", *p);
            else
                *q++ = (char)*p;
            p++;
            continue;
        }
        size_t len = utf8_seq(p, (size_t)(end - p));
        if (len == 0 || utf8_c1(p, len)) {
            for (size_t i = 0; i < (len ? len : 1); i++)
                q += sprintf(q, "\\x%02x", p[i]);
            p += len ? len : 1;
            continue;
        }
        memcpy(q, p, len);
        q += len;
        p += len;
    }
    *q = '\0';
    return o;
}

char *dbx_escape(const char *s) {
    return s ? dbx_escape_n(s, strlen(s), 0) : dbx_xstrdup("");
}

size_t dbx_escape_cut(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    if (n && p[n - 1] == '\r') return n - 1;
    /* the start of the last sequence, if it may still be incomplete */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = p[n - back];
        if (c < 0x80) return n;
        if (c >= 0xc0) {
            size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            return want > back ? n - back : n;
        }
    }
    return n;
}

/* ---- buffer ----------------------------------------------------------------------------- */

void dbx_buf_free(struct dbx_buf *b) {
    free(b->data);
    *b = (struct dbx_buf){0};
}

static void buf_reserve(struct dbx_buf *b, size_t n) {
    if (b->cap - b->len >= n) return;
    if (b->off > 0 && b->off >= b->len / 2) { /* reclaim consumed space before growing */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= n) return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    b->data = dbx_xrealloc(b->data, cap);
    b->cap = cap;
}

void dbx_buf_put(struct dbx_buf *b, const void *p, size_t n) {
    if (n == 0) return;
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
void dbx_buf_put_u8(struct dbx_buf *b, uint8_t v) {
    dbx_buf_put(b, &v, 1);
}
void dbx_buf_put_u16(struct dbx_buf *b, uint16_t v) {
    uint8_t o[2];
    dbx_put_le(o, v, 2);
    dbx_buf_put(b, o, 2);
}
void dbx_buf_put_u32(struct dbx_buf *b, uint32_t v) {
    uint8_t o[4];
    dbx_put_le(o, v, 4);
    dbx_buf_put(b, o, 4);
}
void dbx_buf_put_u64(struct dbx_buf *b, uint64_t v) {
    uint8_t o[8];
    dbx_put_le(o, v, 8);
    dbx_buf_put(b, o, 8);
}
void dbx_buf_put_str(struct dbx_buf *b, const char *s) {
    size_t n = s ? strlen(s) : 0;
    dbx_buf_put_u32(b, (uint32_t)n);
    dbx_buf_put(b, s, n);
}

void dbx_buf_consume(struct dbx_buf *b, size_t n) {
    if (n > b->len - b->off) n = b->len - b->off;
    b->off += n;
    if (b->off == b->len) b->off = b->len = 0;
}

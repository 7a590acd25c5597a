/* common/common.h: errors as values, cleanup attributes, and small I/O helpers shared by the
 * host binary and the static guest init.  Nothing here allocates behind the caller's back
 * except through dbx_x*() which call the per-binary out-of-memory hook. */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- errors ----------------------------------------------------------------------------- */

/* An error value carried up to the one place that prints it.  `code` is a positive errno-like
 * number (EIO when the failure has no errno). */
typedef struct dbx_error {
    int code;
    char *msg;
} dbx_error;

/* Create *err (which must be NULL) with a printf-style message; when errnum != 0 the message
 * gets ": strerror(errnum)" appended.  Returns -errnum, or -EIO when errnum == 0, so a failing
 * function can `return dbx_error_set(err, errno, "open '%s'", p);`.  err may be NULL. */
int dbx_error_set(dbx_error **err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like dbx_error_set, but the message is used as given (no strerror suffix) while the
 * error still carries `code`.  Returns -code. */
int dbx_error_setx(dbx_error **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the existing message with "context: ".  Returns -(*err)->code. */
int dbx_error_wrap(dbx_error **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees and NULLs *err; accepts NULL and *err == NULL. */
void dbx_error_free(dbx_error **err);

/* ---- memory ----------------------------------------------------------------------------- */

/* Called on allocation failure.  Must not return.  The default is the host programs' (print
 * "devbox: out of memory", exit 125); the guest's init installs its own (log, sync, power off). */
extern void (*dbx_oom_hook)(void);
void *dbx_xmalloc(size_t n);
void *dbx_xcalloc(size_t n, size_t m);
void *dbx_xrealloc(void *p, size_t n);
char *dbx_xstrdup(const char *s);
char *dbx_xstrndup(const char *s, size_t n);
char *dbx_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *dbx_xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* ---- cleanup ---------------------------------------------------------------------------- */

static inline void dbx_freep(void *p) {
    free(*(void **)p);
}
static inline void dbx_closep(int *fd) {
    if (*fd >= 0) {
        int e = errno;
        close(*fd);
        errno = e;
    }
}
static inline void dbx_fclosep(FILE **f) {
    if (*f) fclose(*f);
}
static inline void dbx_errorp(dbx_error **e) {
    dbx_error_free(e);
}
void dbx_strv_free(char **v);
static inline void dbx_strvp(char ***v) {
    dbx_strv_free(*v);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(dbx_freep)
#define _cleanup_close_ _cleanup_(dbx_closep)
/* A temp file's path: unlinked and freed unless TAKE_PTR took it (the file was renamed). */
static inline void dbx_unlink_freep(char **p) {
    if (*p) {
        unlink(*p);
        free(*p);
    }
}
#define _cleanup_unlink_free_ _cleanup_(dbx_unlink_freep)
#define _cleanup_fclose_ _cleanup_(dbx_fclosep)
#define _cleanup_error_ _cleanup_(dbx_errorp)
#define _cleanup_strv_ _cleanup_(dbx_strvp)

#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        typeof(p) _tp = (p);                                                                       \
        (p) = NULL;                                                                                \
        _tp;                                                                                       \
    })
#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _tf = (fd);                                                                            \
        (fd) = -EBADF;                                                                             \
        _tf;                                                                                       \
    })

#define DBX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- I/O -------------------------------------------------------------------------------- */

/* Write all of buf, retrying on EINTR/short writes (blocking fds).  0 or -errno. */
int dbx_write_all(int fd, const void *buf, size_t len);
/* Read the whole fd (up to cap bytes; more is E2BIG) into a NUL-terminated malloc'd buffer. */
int dbx_read_all(int fd, size_t cap, char **ret_buf, size_t *ret_len, dbx_error **err);
/* Read file `name` relative to dirfd (AT_FDCWD allowed), refusing symlinks (O_NOFOLLOW). */
int dbx_read_file_at(int dirfd, const char *name, size_t cap, char **ret_buf, size_t *ret_len,
                     dbx_error **err);
/* Atomically replace `name` in directory `dirfd`: temp file, fsync, rename, fsync(dirfd). */
int dbx_write_file_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                          dbx_error **err);
/* mkdir -p with mode for each created component; existing dirs are kept as they are. */
int dbx_mkdir_p(const char *path, mode_t mode, dbx_error **err);
/* Create `path` as a directory private to the user (0700) and verify it is a real directory
 * owned by us with no group/other access (fixes the mode if we own it). */
int dbx_mkdir_private(const char *path, dbx_error **err);
int dbx_set_nonblock(int fd, bool on);
int dbx_set_cloexec(int fd, bool on);
/* Fills a closed fd 0, 1 or 2 with /dev/null opened the wrong way round (stdin write-only,
 * stdout and stderr read-only; "/" as O_PATH where /dev/null will not open): what we open next
 * cannot land on it, and reading it (stdin) or writing it (stdout, stderr) fails with EBADF as
 * on the closed fd.  0, or -errno when neither would open. */
int dbx_stdio_reserve(void);
/* Monotonic clock in milliseconds / nanoseconds. */
uint64_t dbx_now_ms(void);
uint64_t dbx_now_ns(void);
/* Checked decimal parse of the whole string into [min,max]. 0 or -EINVAL/-ERANGE. */
int dbx_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* Parse a size with optional K/M/G/T suffix (binary units) into bytes. */
int dbx_parse_size(const char *s, uint64_t *ret);
bool dbx_str_has_prefix(const char *s, const char *p);
/* Whether path is dir or lies below it, by components ("/a/bc" is not below "/a/b"; "/" holds
 * every absolute path).  Both normalized, both absolute or both relative. */
bool dbx_path_at_or_below(const char *path, const char *dir);
/* The `.git` file `name` in dfd as git reads it (read_gitfile_gently: at most 4 * PATH_MAX
 * bytes, "gitdir: " then a path, trailing CR/LF dropped): the path, malloc'd, or NULL when it is
 * no such file (unreadable, not a regular file: never followed, never waited on). */
char *dbx_gitfile_read(int dfd, const char *name);
/* Number of entries in a NULL-terminated string vector. */
size_t dbx_strv_len(char *const *v);
/* Append a copy of s to a NULL-terminated vector (vector may be NULL). */
char **dbx_strv_push(char **v, const char *s);
/* v's strings with sep between them: "" for an empty or NULL v (caller frees). */
char *dbx_strv_join(char *const *v, const char *sep);
/* The UTF-8 sequence at p[0..n): its length, 1 to 4, with its code point in *ret_cp; 0 when
 * none is well-formed there (RFC 3629: shortest form, no surrogates, at most U+10FFFF), or n
 * is 0.  Reads no byte past the first one that breaks the sequence, so a NUL-terminated string
 * may pass n = 4 at any position. */
size_t dbx_utf8_next(const char *p, size_t n, uint32_t *ret_cp);
/* Replace bytes a terminal would interpret (C0 controls except \t, DEL, C1) with '?', in place,
 * so untrusted strings never drive the user's terminal. */
char *dbx_sanitize_printable(char *s);
/* Untrusted text (names, paths, guest output) made safe to print to the user's terminal: a
 * malloc'd copy of s[0..n) in which ESC becomes "\e", every other C0 control (TAB kept), DEL,
 * NUL, each C1 control (raw bytes 0x80-0x9f and their UTF-8 encoding U+0080-U+009F, 0xc2
 * 0x80-0x9f) and every byte that is not part of well-formed UTF-8 becomes "\xNN".  Valid
 * UTF-8 text is kept as is.  DBX_ESC_LINES keeps "\n" and drops a "\r" right before it (a
 * serial console's line end), for logs. */
#define DBX_ESC_LINES 1u
char *dbx_escape_n(const char *s, size_t n, unsigned flags);
/* dbx_escape_n of a string; NULL gives "". */
char *dbx_escape(const char *s);
/* A copy of s that is valid UTF-8: each byte that starts no well-formed sequence becomes
 * U+FFFD (for JSON, whose strings must be UTF-8: a path on the host need not be). */
char *dbx_utf8_fix(const char *s);
/* For escaping a stream in chunks: the length of the longest prefix of s[0..n) that does not
 * end inside a UTF-8 sequence that the next bytes may complete, nor with a "\r" (whose "\n"
 * may follow); escape that prefix and carry the rest (at most 3 bytes) over. */
size_t dbx_escape_cut(const char *s, size_t n);

/* Little-endian integers of n bytes (the wire protocol's and the status record's byte order). */
static inline void dbx_put_le(uint8_t *o, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        o[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t dbx_get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- byte buffer ------------------------------------------------------------------------ */

/* A growable byte buffer with a read offset; used for payload building and for per-connection
 * input/output queues. */
struct dbx_buf {
    uint8_t *data;
    size_t len; /* bytes stored, from data[0] */
    size_t off; /* bytes already consumed */
    size_t cap;
};
void dbx_buf_free(struct dbx_buf *b);
void dbx_buf_put(struct dbx_buf *b, const void *p, size_t n);
void dbx_buf_put_u8(struct dbx_buf *b, uint8_t v);
void dbx_buf_put_u16(struct dbx_buf *b, uint16_t v);
void dbx_buf_put_u32(struct dbx_buf *b, uint32_t v);
void dbx_buf_put_u64(struct dbx_buf *b, uint64_t v);
void dbx_buf_put_str(struct dbx_buf *b, const char *s);
static inline size_t dbx_buf_avail(const struct dbx_buf *b) {
    return b->len - b->off;
}
static inline const uint8_t *dbx_buf_head(const struct dbx_buf *b) {
    return b->data + b->off;
}
void dbx_buf_consume(struct dbx_buf *b, size_t n); /* compacts when empty or half used */

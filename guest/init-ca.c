/* guest/init-ca.c: the host's CA certificates (SETUP's ca_pem), installed before READY.
 *
 * Corporate networks re-sign outbound TLS with a CA of their own; the host sends the PEM
 * certificates it trusts for that and the box trusts them too:
 *   host-ca.crt   /usr/local/share/ca-certificates/devbox/host-ca.crt, where Debian, Ubuntu and
 *                 Alpine keep local CAs, so a later `update-ca-certificates` keeps them; and
 *                 /etc/pki/ca-trust/source/anchors/devbox-host-ca.pem when /etc/pki/ca-trust
 *                 exists (Fedora/RHEL's `update-ca-trust`)
 *   bundles       each system bundle that is a regular file (not a symlink: Fedora's are, and
 *                 their target is update-ca-trust's output) gets the certificates in a block
 *                 between two marker lines at its end, replacing the previous boot's block:
 *                 the root disk persists, so five boots leave one block; written atomically
 *                 with its mode and owner kept
 *   devbox-ca.pem /etc/ssl/devbox-ca.pem: the certificate blocks of the system bundle (read
 *                 through symlinks, but only inside the root file system, and only a file of
 *                 root's that everyone may read) without our block, then the host's
 *                 certificates; what SSL_CERT_FILE and friends name (init-env.c), for the
 *                 programs that read a bundle of their own choosing
 *   ca.state      /var/lib/devbox/ca.state: what the last boot that did this work left, so a
 *                 boot that finds nothing changed does nothing (below)
 * With no certificates all of it is undone: the files removed, the blocks taken out (and that
 * recorded).
 *
 * The box's root may have changed any of these paths in an earlier boot (the disk persists),
 * so nothing here follows a symlink when it writes or removes: every directory on the way is
 * opened with O_NOFOLLOW, one component at a time, and files are replaced by rename.  And
 * nothing it planted may stop the boot: a symlink, a file or a directory in the way of one of
 * our files, or a bundle over the size cap, is a note in the console log and that file is
 * skipped (its CA variable is not set); only I/O errors fail. */
#define _GNU_SOURCE
#include "init-internal.h"

#include "../common/sha256.h"

#include <ctype.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#define CA_MARK_BEGIN "# devbox: host CA certificates (begin)\n"
#define CA_MARK_END "# devbox: host CA certificates (end)\n"
#define CA_BUNDLE_MAX (8u << 20) /* a system bundle: Debian's is about 220 KiB */
#define PEM_CERT_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_CERT_END "-----END CERTIFICATE-----"

static const char *const ca_bundles[] = {
    "etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine */
    "etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
    "etc/ssl/cert.pem",                  /* Alpine, macOS-minded tools */
};

/* ---- paths without symlinks ------------------------------------------------------------- */

/* Open dir (relative to rootfd, no "..") one component at a time without following a
 * symlink; with create, make missing components 0755.  A directory fd, or -1 with errno (ENOENT:
 * missing; ELOOP/ENOTDIR: a symlink or a file on the way). */
static int dir_open(int rootfd, const char *dir, bool create) {
    _cleanup_free_ char *p = dbx_xstrdup(dir);
    int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    char *save = NULL;
    for (char *c = strtok_r(p, "/", &save); c && fd >= 0; c = strtok_r(NULL, "/", &save)) {
        if (create && mkdirat(fd, c, 0755) < 0 && errno != EEXIST) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        errno = e;
        fd = next;
    }
    return fd;
}

/* Split "a/b/name" into its directory and name (both malloc'd). */
static void path_split(const char *rel, char **ret_dir, char **ret_name) {
    const char *s = strrchr(rel, '/');
    *ret_dir = dbx_xstrndup(rel, (size_t)(s - rel));
    *ret_name = dbx_xstrdup(s + 1);
}

/* A regular file's content (at most CA_BUNDLE_MAX bytes), not following a symlink.  0; -ENOENT
 * when it is missing, -ELOOP/-EINVAL when it is a symlink or not a regular file, -E2BIG when it
 * is larger (no *err for these); else -1 with *err. */
static int read_regular(int dfd, const char *name, const char *shown, char **ret, size_t *ret_len,
                        struct stat *st, dbx_error **err) {
    /* O_NONBLOCK: a FIFO planted there must not hang the boot before fstat says what it is */
    _cleanup_close_ int fd =
        openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || errno == ELOOP)) return -errno;
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", shown);
    if (fstat(fd, st) < 0) return dbx_error_set(err, errno, "stat '%s'", shown);
    if (!S_ISREG(st->st_mode)) return -EINVAL;
    int r = dbx_read_all(fd, CA_BUNDLE_MAX, ret, ret_len, NULL);
    if (r == -E2BIG) return r;
    return r < 0 ? dbx_error_set(err, -r, "read '%s'", shown) : 0;
}

/* Replace dfd/name with data atomically: a temporary file with the given owner and mode,
 * fsync, rename over name, fsync the directory.  The temporary name is fixed, so a crash
 * leaves at most one, which the next boot's O_EXCL attempt removes first. */
static int write_atomic(int dfd, const char *name, const char *shown, const char *data, size_t len,
                        uid_t uid, gid_t gid, mode_t mode, dbx_error **err) {
    _cleanup_free_ char *tmp = dbx_xasprintf(".%s.devbox-tmp", name);
    if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT)
        return dbx_error_set(err, errno, "remove a stale temporary file for '%s'", shown);
    _cleanup_close_ int fd =
        openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return dbx_error_set(err, errno, "create a temporary file for '%s'", shown);
    int r = 0;
    if ((geteuid() == 0 && fchown(fd, uid, gid) < 0) || fchmod(fd, mode & 07777) < 0) r = -errno;
    if (r == 0) r = dbx_write_all(fd, data, len);
    if (r == 0 && fsync(fd) < 0) r = -errno;
    if (r == 0 && renameat(dfd, tmp, dfd, name) < 0) r = -errno;
    if (r < 0) {
        unlinkat(dfd, tmp, 0);
        return dbx_error_set(err, -r, "write '%s'", shown);
    }
    fsync(dfd);
    return 0;
}

/* dfd/name is a regular file of ours (owner, mode, one link) whose content is data: what a
 * boot would write there again.  The root disk persists, so every boot after the first finds
 * the files SETUP writes (host CAs, resolv.conf, apt's proxy) as the last one left them, and
 * rewriting each (temporary file, two fsyncs, rename) cost 5-25 ms apiece under TCG.  Read
 * without following a symlink, and without blocking on a FIFO planted there; a file too large
 * to be ours is not. */
static bool file_ours(const struct stat *st, mode_t mode, size_t len) {
    return S_ISREG(st->st_mode) && st->st_nlink == 1 && st->st_uid == geteuid() &&
           st->st_gid == getegid() && (st->st_mode & 07777) == mode && st->st_size >= 0 &&
           (size_t)st->st_size == len;
}

/* guest_file_same for data of len bytes (a NUL among them too) */
static bool file_same(int dfd, const char *name, const void *data, size_t len, mode_t mode) {
    struct stat st;
    /* checked before anything opens it: a device node planted there is not opened (nothing of
     * the box runs during SETUP; read_regular's fstat checks the file it opened again) */
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !file_ours(&st, mode, len))
        return false;
    _cleanup_free_ char *text = NULL;
    size_t got = 0;
    if (read_regular(dfd, name, name, &text, &got, &st, NULL) < 0 || !file_ours(&st, mode, len))
        return false;
    return got == len && memcmp(text, data, len) == 0; /* what was read, not what fstat said */
}

bool guest_file_same(int dfd, const char *name, const char *data, mode_t mode) {
    return file_same(dfd, name, data, strlen(data), mode);
}

/* What the box's root causes by putting a symlink, a file or a directory where we write. */
static bool blocked(int code) {
    return code == ENOTDIR || code == ELOOP || code == EISDIR;
}

/* *e (taken): a note "MSG, then" and 0 when the box's root blocked the file, else moved to *err
 * and its -code. */
static int note_or_fail(dbx_error **e, const char *then, char ***notes, dbx_error **err) {
    if (!blocked((*e)->code)) {
        int r = -(*e)->code;
        if (err)
            *err = TAKE_PTR(*e);
        else
            dbx_error_free(e);
        return r;
    }
    _cleanup_free_ char *m = dbx_xasprintf("%s, %s", (*e)->msg, then);
    *notes = dbx_strv_push(*notes, m);
    dbx_error_free(e);
    return 0;
}

/* Write (data != NULL, len bytes) or remove (data == NULL) root/rel, a file of ours (mode 0644,
 * owned by us).  Writing creates missing directories.  1 when done; 0 when the box's root
 * blocked it (a note); < 0 with *err.  Nothing behind a symlink, or at a directory, is ours to
 * remove: we never write through one. */
int guest_own_file(int rootfd, const char *rel, const void *data, size_t len, char ***notes,
                   dbx_error **err) {
    _cleanup_free_ char *dir = NULL, *name = NULL, *shown = dbx_xasprintf("/%s", rel);
    path_split(rel, &dir, &name);
    _cleanup_close_ int dfd = dir_open(rootfd, dir, data != NULL);
    if (!data) {
        if (dfd < 0 && (errno == ENOENT || blocked(errno))) return 1;
        if (dfd < 0) return dbx_error_set(err, errno, "open the directory of '%s'", shown);
        if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT && !blocked(errno))
            return dbx_error_set(err, errno, "remove '%s'", shown);
        return 1;
    }
    if (dfd >= 0) return guest_own_file_in(dfd, name, shown, data, len, notes, err);
    dbx_error *e = NULL;
    dbx_error_set(&e, errno, "open the directory of '%s'", shown);
    return note_or_fail(&e, "not written", notes, err);
}

int guest_own_file_in(int dfd, const char *name, const char *shown, const void *data, size_t len,
                      char ***notes, dbx_error **err) {
    /* unchanged since the last boot: left alone (no rewrite, no fsync) */
    if (file_same(dfd, name, data, len, 0644)) return 1;
    dbx_error *e = NULL;
    if (write_atomic(dfd, name, shown, data, len, geteuid(), getegid(), 0644, &e) == 0) return 1;
    return note_or_fail(&e, "not written", notes, err);
}

static int own_file(int rootfd, const char *rel, const char *data, char ***notes, dbx_error **err) {
    return guest_own_file(rootfd, rel, data, data ? strlen(data) : 0, notes, err);
}

/* ---- the marker block ------------------------------------------------------------------- */

static const struct guest_marks ca_marks = {CA_MARK_BEGIN, CA_MARK_END};

/* Take every block of ours out of text (in place): from a begin marker line through the next
 * end marker line, or to the end of the text when the end marker is missing (we always append
 * the block last, so a truncated write left only ours there). */
static void block_strip(char *text, const struct guest_marks *m) {
    for (;;) {
        char *b = text;
        while ((b = strstr(b, m->begin)) && b != text && b[-1] != '\n')
            b++;
        if (!b) return;
        char *e = strstr(b, m->end);
        while (e && e[-1] != '\n')
            e = strstr(e + 1, m->end);
        if (!e) {
            *b = '\0';
            return;
        }
        e += strlen(m->end);
        memmove(b, e, strlen(e) + 1);
    }
}

/* text (block stripped), a newline if it lacks its last one, then the block for body ("" = no
 * block).  Caller frees. */
static char *block_add(const char *text, const struct guest_marks *m, const char *body) {
    size_t n = strlen(text);
    const char *nl = n > 0 && text[n - 1] != '\n' ? "\n" : "";
    if (!body[0]) return dbx_xasprintf("%s%s", text, nl);
    return dbx_xasprintf("%s%s%s%s%s", text, nl, m->begin, body, m->end);
}

int guest_block_file(int dfd, const char *name, const char *shown, const struct guest_marks *m,
                     char *(*body)(const char *rest, const void *ctx), const void *ctx, bool create,
                     char ***notes, dbx_error **err) {
    _cleanup_free_ char *text = NULL;
    struct stat st;
    size_t len = 0;
    /* a device node planted there is not opened at all (read_regular checks what it opened
     * again) */
    int r;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        r = errno == ENOENT ? -ENOENT : dbx_error_set(err, errno, "stat '%s'", shown);
    else if (S_ISLNK(st.st_mode))
        r = -ELOOP;
    else if (!S_ISREG(st.st_mode))
        r = -EINVAL;
    else
        r = read_regular(dfd, name, shown, &text, &len, &st, err);
    if (r == -ENOENT && !create) return 0;
    /* text stops at a NUL: a rewrite would drop what follows it */
    if (r == 0 && strlen(text) != len) r = -EBADMSG;
    if (r == -ELOOP || r == -EINVAL || r == -E2BIG || r == -EBADMSG) {
        _cleanup_free_ char *msg = dbx_xasprintf("'%s' is %s, left alone", shown,
                                                 r == -ELOOP    ? "a symlink"
                                                 : r == -EINVAL ? "not a regular file"
                                                 : r == -E2BIG  ? "larger than 8 MiB"
                                                                : "not text (a NUL byte)");
        *notes = dbx_strv_push(*notes, msg);
        return 0;
    }
    if (r == -ENOENT) { /* made anew: ours, as every file SETUP creates */
        text = dbx_xstrdup("");
        st.st_uid = geteuid();
        st.st_gid = getegid();
        st.st_mode = 0644;
    } else if (r < 0) {
        return -1;
    }
    _cleanup_free_ char *old = r == -ENOENT ? NULL : dbx_xstrdup(text);
    block_strip(text, m);
    _cleanup_free_ char *b = body(text, ctx);
    _cleanup_free_ char *next = block_add(text, m, b);
    /* no block and nothing to take out: leave the file (and its mtime) exactly as it is, and
     * a missing one missing */
    if (old ? strcmp(next, old) == 0 || (!b[0] && strcmp(text, old) == 0) : !b[0]) return 0;
    dbx_error *e = NULL;
    if (write_atomic(dfd, name, shown, next, strlen(next), st.st_uid, st.st_gid, st.st_mode, &e) ==
        0)
        return 0;
    return note_or_fail(&e, "left alone", notes, err);
}

static char *pem_body(const char *rest, const void *pem) {
    return dbx_xstrdup(pem);
}

/* One system bundle: our block replaced (or removed with pem ""), left alone when it is
 * missing, a symlink, not a regular file or over CA_BUNDLE_MAX (noted). */
static int bundle_update(int rootfd, const char *rel, const char *pem, char ***notes,
                         dbx_error **err) {
    _cleanup_free_ char *dir = NULL, *name = NULL, *shown = dbx_xasprintf("/%s", rel);
    path_split(rel, &dir, &name);
    _cleanup_close_ int dfd = dir_open(rootfd, dir, false);
    if (dfd < 0 && errno == ENOENT) return 0;
    if (dfd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
        _cleanup_free_ char *m = dbx_xasprintf("'%s': a symlink on the way, left alone", shown);
        *notes = dbx_strv_push(*notes, m);
        return 0;
    }
    if (dfd < 0) return dbx_error_set(err, errno, "open the directory of '%s'", shown);
    return guest_block_file(dfd, name, shown, &ca_marks, pem_body, pem, false, notes, err);
}

static bool line_is(const char *l, size_t len, const char *s) {
    return len == strlen(s) && memcmp(l, s, len) == 0;
}

static bool line_base64(const char *l, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)l[i]) && l[i] != '+' && l[i] != '/' && l[i] != '=')
            return false;
    return len > 0;
}

/* Only the certificate blocks of text, each line ending in "\n" (a "\r" before it dropped): a
 * line PEM_CERT_BEGIN, base64 lines, a line PEM_CERT_END.  Comments, other PEM blocks (keys,
 * OpenSSL's trusted certificates) and a block with another line in it or without its end are
 * left out.  Caller frees. */
static char *cert_blocks(const char *text) {
    char *out = dbx_xmalloc(strlen(text) + 2);
    size_t n = 0, start = 0;
    bool in = false;
    for (const char *l = text; *l;) {
        const char *nl = strchrnul(l, '\n');
        size_t len = (size_t)(nl - l);
        if (len > 0 && l[len - 1] == '\r') len--;
        bool keep = false;
        if (!in && line_is(l, len, PEM_CERT_BEGIN)) {
            in = keep = true;
            start = n;
        } else if (in && line_is(l, len, PEM_CERT_END)) {
            keep = true;
            in = false;
        } else if (in && line_base64(l, len)) {
            keep = true;
        } else if (in) { /* not a certificate: the block goes */
            in = false;
            n = start;
        }
        if (keep) {
            memcpy(out + n, l, len);
            n += len;
            out[n++] = '\n';
        }
        l = *nl ? nl + 1 : nl;
    }
    out[in ? start : n] = '\0';
    return out;
}

/* The certificates of the first system bundle there is, our block taken out; read through
 * symlinks (Fedora's are), but only inside the root file system: no "..", absolute link or
 * mount point leads out, and no /proc magic link.  What it names must be a regular file owned
 * by root (the uid we run as: root in the VM, the test's own on the host) that everyone may
 * read: root in the box, even with no capabilities, can point the bundle at the box user's
 * private files, and devbox-ca.pem is 0644.  Only certificate blocks are copied.  A bundle
 * refused is a note, and the next one is tried.  "" when there is none. */
static char *system_bundle(int rootfd, char ***notes) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ca_bundles); i++) {
        struct open_how how = {
            .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        _cleanup_close_ int fd =
            (int)syscall(SYS_openat2, rootfd, ca_bundles[i], &how, sizeof(how));
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) continue;
        _cleanup_free_ char *text = NULL, *m = NULL;
        int r = 0;
        if (st.st_uid != geteuid() || !(st.st_mode & S_IROTH))
            m = dbx_xasprintf("'/%s' (through its symlinks) is not root's and readable by all "
                              "(owner %u, mode %04o), not copied into " CA_DEVBOX_PEM,
                              ca_bundles[i], (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        else if ((r = dbx_read_all(fd, CA_BUNDLE_MAX, &text, NULL, NULL)) == -E2BIG)
            m = dbx_xasprintf("'/%s' is larger than 8 MiB, not copied into " CA_DEVBOX_PEM,
                              ca_bundles[i]);
        if (m) *notes = dbx_strv_push(*notes, m);
        if (m || r < 0) continue;
        block_strip(text, &ca_marks);
        return cert_blocks(text);
    }
    return dbx_xstrdup("");
}

/* ---- nothing changed since the last boot -------------------------------------------------- */

/* Every boot used to read each system bundle, strip and compare it, and compare devbox-ca.pem
 * with what it would write: with Debian's 220 KiB bundle read three times that was 35-55 ms of
 * the guest's CPU under TCG (2026-12-07: `CAs 38.6, 47.0, 65.4 ms` in the boot line of a
 * Debian box, 18-22 ms of it reading the bundle and 11 ms its compare), on every cold start,
 * though nothing had changed since the last boot.  So the boot that does the work records what
 * it left: the host's certificates (a SHA-256), the notes it made, and, for each file the work
 * reads or writes and the directory whose presence it asks about, the file's identity and
 * times, both of the name itself (no symlink on the way: the work follows none there) and of
 * what it leads to inside the root (device, inode, size, mode, owner, mtime, ctime).  A boot
 * that finds exactly that repeats the notes and does nothing else.  Any change to those files
 * moves their ctime (which no caller of utimensat can set) or their inode (a rename over them:
 * update-ca-certificates, apt), and the work is done again.  A lookup that fails for another
 * reason than a missing or refused path records nothing (the key would say nothing).  The
 * record is root's, 0644 like the zone record beside it, on the root file system itself (not a
 * share), never written through a symlink; root in the box can forge it, which only keeps its
 * own box from having the host's certificates (what it could undo anyway). */
#define CA_STATE_DIR "var/lib/devbox"
#define CA_STATE_FILE "ca.state"
#define CA_STATE_MAX (16u << 10)

/* Appends rel's two lines to *key; -1 when a lookup failed with something that says nothing of
 * the path (ENOMEM, EIO, ENOSYS...). */
static int key_stat(char **key, int rootfd, const char *rel) {
    static const struct open_how how[2] = {
        /* what the name leads to inside the root */
        {.flags = O_PATH | O_CLOEXEC,
         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV},
        /* the name itself, reached through no symlink */
        {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
         .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV},
    };
    for (int self = 0; self <= 1; self++) {
        _cleanup_close_ int fd =
            (int)syscall(SYS_openat2, rootfd, rel, &how[self], sizeof(how[self]));
        struct stat st;
        char *next;
        if (fd < 0 || fstat(fd, &st) < 0) {
            if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != EXDEV &&
                errno != EACCES)
                return -1;
            next = dbx_xasprintf("%s%s %c -\n", *key, rel, self ? 'l' : 's');
        } else {
            next = dbx_xasprintf("%s%s %c %llu %llu %lld %o %u %u %lld.%09ld %lld.%09ld\n", *key,
                                 rel, self ? 'l' : 's', (unsigned long long)st.st_dev,
                                 (unsigned long long)st.st_ino, (long long)st.st_size,
                                 (unsigned)st.st_mode, (unsigned)st.st_uid, (unsigned)st.st_gid,
                                 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                                 (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
        }
        free(*key);
        *key = next;
    }
    return 0;
}

/* The record's first part: pem's SHA-256 and the files' lines; NULL when a lookup failed. */
static char *ca_state_key(int rootfd, const char *pem) {
    struct dbx_sha256 c;
    uint8_t sum[32];
    char hex[65];
    dbx_sha256_init(&c);
    dbx_sha256_update(&c, pem, strlen(pem));
    dbx_sha256_final(&c, sum);
    dbx_sha256_hex(sum, hex);
    _cleanup_free_ char *key = dbx_xasprintf("devbox-init ca.state 1\npem %s\n", hex);
    static const char *const ours[] = {CA_HOST_CRT + 1, CA_ANCHOR + 1, CA_DEVBOX_PEM + 1,
                                       "etc/pki/ca-trust"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ca_bundles); i++)
        if (key_stat(&key, rootfd, ca_bundles[i]) < 0) return NULL;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ours); i++)
        if (key_stat(&key, rootfd, ours[i]) < 0) return NULL;
    return TAKE_PTR(key);
}

/* A file's ctime is the coarse clock's (a tick: 4 ms in the devbox kernel), so a write in the
 * same tick as the one the work made would leave the recorded ctime as it was (git's "racily
 * clean" index entries).  Waiting for the next tick before taking the record (at most a tick,
 * and only at a boot that did the work) gives every later change a later ctime. */
static void ctime_settle(void) {
    struct timespec t0, t;
    if (clock_gettime(CLOCK_REALTIME_COARSE, &t0) < 0) return;
    for (int i = 0; i < 100; i++) {
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        if (clock_gettime(CLOCK_REALTIME_COARSE, &t) < 0 || t.tv_sec != t0.tv_sec ||
            t.tv_nsec != t0.tv_nsec)
            return;
    }
}

/* var/lib/devbox when each of var, lib and devbox is a directory of ours (not writable by
 * others) on the root file system itself, not a share mounted there; made (0755) where missing
 * with create; else -1. */
static int state_dir(int rootfd, bool create) {
    struct stat root, st;
    if (fstat(rootfd, &root) < 0) return -1;
    static const char *const names[] = {"var", "lib", "devbox"};
    int dfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(names) && dfd >= 0; i++) {
        if (create && mkdirat(dfd, names[i], 0755) < 0 && errno != EEXIST) {
            close(dfd);
            return -1;
        }
        int next = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(dfd);
        dfd = next;
        if (dfd >= 0 && (fstat(dfd, &st) < 0 || st.st_dev != root.st_dev ||
                         st.st_uid != geteuid() || (st.st_mode & 022))) {
            close(dfd);
            dfd = -1;
        }
    }
    return dfd;
}

/* The record of key, exactly: "has D\n" after the key, then "note TEXT\n" lines, which go to
 * *notes.  The CA_HAS_* bits it holds, or -1 (none, another key, not ours, malformed). */
static int state_read(int rootfd, const char *key, char ***notes) {
    _cleanup_close_ int dfd = state_dir(rootfd, false);
    _cleanup_free_ char *text = NULL;
    size_t len = 0, k = strlen(key);
    struct stat st;
    if (dfd < 0 || fstatat(dfd, CA_STATE_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1 || (st.st_mode & 022) ||
        dbx_read_file_at(dfd, CA_STATE_FILE, CA_STATE_MAX, &text, &len, NULL) < 0 ||
        strlen(text) != len || len < k + 6 || memcmp(text, key, k) != 0 ||
        memcmp(text + k, "has ", 4) != 0 || text[k + 4] < '0' || text[k + 4] > '3' ||
        text[k + 5] != '\n')
        return -1;
    _cleanup_strv_ char **got = NULL;
    for (const char *l = text + k + 6; *l;) {
        const char *nl = strchr(l, '\n');
        if (!nl || strncmp(l, "note ", 5) != 0 || nl == l + 5) return -1;
        _cleanup_free_ char *note = dbx_xstrndup(l + 5, (size_t)(nl - l - 5));
        got = dbx_strv_push(got, note);
        l = nl + 1;
    }
    for (char **g = got; g && *g; g++)
        *notes = dbx_strv_push(*notes, *g);
    return text[k + 4] - '0';
}

/* Record key, has and the notes the work made; a failure only costs the next boot the work. */
static void state_write(int rootfd, const char *key, int has, char *const *made) {
    _cleanup_close_ int dfd = state_dir(rootfd, true);
    if (dfd < 0) return;
    _cleanup_free_ char *text = dbx_xasprintf("%shas %d\n", key, has);
    for (char *const *m = made; m && *m; m++) {
        if (!**m || strchr(*m, '\n')) return; /* not a line: no record */
        char *next = dbx_xasprintf("%snote %s\n", text, *m);
        free(text);
        text = next;
    }
    if (strlen(text) > CA_STATE_MAX) return;
    _cleanup_strv_ char **ignored = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    guest_own_file_in(dfd, CA_STATE_FILE, "/" CA_STATE_DIR "/" CA_STATE_FILE, text, strlen(text),
                      &ignored, &e);
}

/* ---- the whole job ---------------------------------------------------------------------- */

static int ca_work(int rootfd, const char *pem, char ***notes, dbx_error **err);

int ca_install(const char *root, const char *pem, char ***notes, dbx_error **err) {
    if (dbx_ca_pem_check(pem, err) < 0) return dbx_error_wrap(err, "host CA certificates");
    _cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) return dbx_error_set(err, errno, "open '%s'", root);
    _cleanup_free_ char *key = ca_state_key(rootfd, pem);
    int has = key ? state_read(rootfd, key, notes) : -1;
    if (has >= 0) return has;
    size_t before = dbx_strv_len(*notes);
    has = ca_work(rootfd, pem, notes, err);
    if (has >= 0 && key) {
        ctime_settle();
        _cleanup_free_ char *now = ca_state_key(rootfd, pem);
        if (now) state_write(rootfd, now, has, *notes ? *notes + before : NULL);
    }
    return has;
}

static int ca_work(int rootfd, const char *pem, char ***notes, dbx_error **err) {
    /* before the bundles change: the system's own certificates, without a block of ours */
    _cleanup_free_ char *sys = pem[0] ? system_bundle(rootfd, notes) : NULL;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ca_bundles); i++)
        if (bundle_update(rootfd, ca_bundles[i], pem, notes, err) < 0) return -1;
    if (!pem[0]) {
        if (own_file(rootfd, CA_HOST_CRT + 1, NULL, notes, err) < 0 ||
            own_file(rootfd, CA_ANCHOR + 1, NULL, notes, err) < 0 ||
            own_file(rootfd, CA_DEVBOX_PEM + 1, NULL, notes, err) < 0)
            return -1;
        _cleanup_close_ int d = dir_open(rootfd, "usr/local/share/ca-certificates", false);
        if (d >= 0) unlinkat(d, "devbox", AT_REMOVEDIR); /* only when empty */
        return 0;
    }
    int has = 0;
    int r = own_file(rootfd, CA_HOST_CRT + 1, pem, notes, err);
    if (r < 0) return -1;
    has |= r > 0 ? CA_HAS_HOST_CRT : 0;
    _cleanup_close_ int trust = dir_open(rootfd, "etc/pki/ca-trust", false);
    if (trust >= 0 && own_file(rootfd, CA_ANCHOR + 1, pem, notes, err) < 0) return -1;
    _cleanup_free_ char *all = block_add(sys, &ca_marks, "");
    _cleanup_free_ char *both = dbx_xasprintf("%s%s", all, pem);
    r = own_file(rootfd, CA_DEVBOX_PEM + 1, both, notes, err);
    if (r < 0) return -1;
    return has | (r > 0 ? CA_HAS_DEVBOX_PEM : 0);
}

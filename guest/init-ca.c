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
 *   devbox-ca.pem /etc/ssl/devbox-ca.pem: the system bundle (read through symlinks, but only
 *                 inside the root file system) without our block, then the host's
 *                 certificates; what SSL_CERT_FILE and friends name (init-exec.c), for the
 *                 programs that read a bundle of their own choosing
 * With no certificates all of it is undone: the files removed, the blocks taken out.
 *
 * The box's root may have changed any of these paths in an earlier boot (the disk persists),
 * so nothing here follows a symlink when it writes or removes: every directory on the way is
 * opened with O_NOFOLLOW, one component at a time, and files are replaced by rename. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define CA_MARK_BEGIN "# devbox: host CA certificates (begin)\n"
#define CA_MARK_END "# devbox: host CA certificates (end)\n"
#define CA_BUNDLE_MAX (8u << 20) /* a system bundle: Debian's is about 220 KiB */

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

/* A regular file's content (at most cap bytes), not following a symlink.  0; -ENOENT when it
 * is missing (no *err); -ELOOP/-EINVAL when it is a symlink or not a regular file (no *err);
 * else -1 with *err. */
static int read_regular(int dfd, const char *name, const char *shown, char **ret, struct stat *st,
                        dbx_error **err) {
    /* O_NONBLOCK: a FIFO planted there must not hang the boot before fstat says what it is */
    _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || errno == ELOOP)) return -errno;
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", shown);
    if (fstat(fd, st) < 0) return dbx_error_set(err, errno, "stat '%s'", shown);
    if (!S_ISREG(st->st_mode)) return -EINVAL;
    if (dbx_read_all(fd, CA_BUNDLE_MAX, ret, NULL, err) < 0)
        return dbx_error_wrap(err, "read '%s'", shown);
    return 0;
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

/* Write (data != NULL) or remove (data == NULL) root/rel, a file of ours (mode 0644, owned by
 * us).  Writing creates missing directories. */
static int own_file(int rootfd, const char *rel, const char *data, dbx_error **err) {
    _cleanup_free_ char *dir = NULL, *name = NULL, *shown = dbx_xasprintf("/%s", rel);
    path_split(rel, &dir, &name);
    _cleanup_close_ int dfd = dir_open(rootfd, dir, data != NULL);
    if (dfd < 0 && !data && (errno == ENOENT || errno == ENOTDIR)) return 0;
    if (dfd < 0) return dbx_error_set(err, errno, "open the directory of '%s'", shown);
    if (!data) {
        if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
            return dbx_error_set(err, errno, "remove '%s'", shown);
        return 0;
    }
    return write_atomic(dfd, name, shown, data, strlen(data), geteuid(), getegid(), 0644, err);
}

/* ---- the marker block ------------------------------------------------------------------- */

/* Take every block of ours out of text (in place): from a begin marker line through the next
 * end marker line, or to the end of the text when the end marker is missing (we always append
 * the block last, so a truncated write left only ours there). */
static void block_strip(char *text) {
    for (;;) {
        char *b = text;
        while ((b = strstr(b, CA_MARK_BEGIN)) && b != text && b[-1] != '\n')
            b++;
        if (!b) return;
        char *e = strstr(b, CA_MARK_END);
        while (e && e[-1] != '\n')
            e = strstr(e + 1, CA_MARK_END);
        if (!e) {
            *b = '\0';
            return;
        }
        e += strlen(CA_MARK_END);
        memmove(b, e, strlen(e) + 1);
    }
}

/* text (block stripped), a newline if it lacks its last one, then the block for pem ("" = no
 * block).  Caller frees. */
static char *block_add(const char *text, const char *pem) {
    size_t n = strlen(text);
    const char *nl = n > 0 && text[n - 1] != '\n' ? "\n" : "";
    if (!pem[0]) return dbx_xasprintf("%s%s", text, nl);
    return dbx_xasprintf("%s%s" CA_MARK_BEGIN "%s" CA_MARK_END, text, nl, pem);
}

/* One system bundle: our block replaced (or removed with pem ""), left alone when it is
 * missing, a symlink or not a regular file (noted). */
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
    _cleanup_free_ char *text = NULL;
    struct stat st;
    int r = read_regular(dfd, name, shown, &text, &st, err);
    if (r == -ENOENT) return 0;
    if (r == -ELOOP || r == -EINVAL) {
        _cleanup_free_ char *m = dbx_xasprintf("'%s' is %s, left alone", shown,
                                               r == -ELOOP ? "a symlink" : "not a regular file");
        *notes = dbx_strv_push(*notes, m);
        return 0;
    }
    if (r < 0) return -1;
    _cleanup_free_ char *old = dbx_xstrdup(text);
    block_strip(text);
    _cleanup_free_ char *next = block_add(text, pem);
    /* no block and nothing to take out: leave the file (and its mtime) exactly as it is */
    if (strcmp(next, old) == 0 || (!pem[0] && strcmp(text, old) == 0)) return 0;
    return write_atomic(dfd, name, shown, next, strlen(next), st.st_uid, st.st_gid, st.st_mode,
                        err);
}

/* The first system bundle there is, our block taken out; read through symlinks (Fedora's are),
 * but only inside the root file system: no "..", absolute link or mount point leads out, and
 * no /proc magic link.  "" when there is none. */
static char *system_bundle(int rootfd) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ca_bundles); i++) {
        struct open_how how = {
            .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        _cleanup_close_ int fd =
            (int)syscall(SYS_openat2, rootfd, ca_bundles[i], &how, sizeof(how));
        struct stat st;
        char *text = NULL;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            dbx_read_all(fd, CA_BUNDLE_MAX, &text, NULL, NULL) < 0)
            continue;
        block_strip(text);
        return text;
    }
    return dbx_xstrdup("");
}

/* ---- the whole job ---------------------------------------------------------------------- */

int ca_install(const char *root, const char *pem, char ***notes, dbx_error **err) {
    if (dbx_ca_pem_check(pem, err) < 0) return dbx_error_wrap(err, "host CA certificates");
    _cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) return dbx_error_set(err, errno, "open '%s'", root);
    /* before the bundles change: the system's own certificates, without a block of ours */
    _cleanup_free_ char *sys = pem[0] ? system_bundle(rootfd) : NULL;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ca_bundles); i++)
        if (bundle_update(rootfd, ca_bundles[i], pem, notes, err) < 0) return -1;
    if (!pem[0]) {
        if (own_file(rootfd, CA_HOST_CRT + 1, NULL, err) < 0 ||
            own_file(rootfd, CA_ANCHOR + 1, NULL, err) < 0 ||
            own_file(rootfd, CA_DEVBOX_PEM + 1, NULL, err) < 0)
            return -1;
        _cleanup_close_ int d = dir_open(rootfd, "usr/local/share/ca-certificates", false);
        if (d >= 0) unlinkat(d, "devbox", AT_REMOVEDIR); /* only when empty */
        return 0;
    }
    if (own_file(rootfd, CA_HOST_CRT + 1, pem, err) < 0) return -1;
    _cleanup_close_ int trust = dir_open(rootfd, "etc/pki/ca-trust", false);
    if (trust >= 0 && own_file(rootfd, CA_ANCHOR + 1, pem, err) < 0) return -1;
    _cleanup_free_ char *all = block_add(sys, "");
    _cleanup_free_ char *both = dbx_xasprintf("%s%s", all, pem);
    return own_file(rootfd, CA_DEVBOX_PEM + 1, both, err);
}

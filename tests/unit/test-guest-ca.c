/* tests/unit/test-guest-ca.c: the guest init's CA installation (guest/init-ca.c) on the host,
 * in a temporary directory standing in for the box's root: the files it writes, the marker
 * block in each system bundle (mode kept, replaced, idempotent over five "boots", removed
 * again with no certificates), bundles that are symlinks or FIFOs left alone, Fedora's
 * symlinked bundle read for devbox-ca.pem, and what the box's root may plant on its persistent
 * disk, none of which may stop the boot: symlinks, files and directories where our own files go
 * (a note, the file skipped, its CA variable's bit not returned), a bundle over the 8 MiB cap,
 * and a bundle pointing at a file that is not root's and readable by all (not copied; of one
 * that is, only the certificate blocks).  And the record of a boot that did the work: believed
 * when it matches (nothing read), not when anything changed, is malformed, or others may write
 * it; notes recorded and repeated; a symlink on the way or in its own directory's place. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <sys/stat.h>

/* init-ca.c is guest code (the static init links it); the test compiles it in. */
#include "helpers.h"
#include "guest/init-ca.c"

#define PEM_A "-----BEGIN CERTIFICATE-----\nQUFBQQ==\n-----END CERTIFICATE-----\n"
#define PEM_B "-----BEGIN CERTIFICATE-----\nQkJC\n-----END CERTIFICATE-----\n"
#define PEM_S "-----BEGIN CERTIFICATE-----\nU1lT\n-----END CERTIFICATE-----\n" /* the system's */
#define BUNDLE "etc/ssl/certs/ca-certificates.crt"
#define HAS_BOTH (CA_HAS_HOST_CRT | CA_HAS_DEVBOX_PEM)

/* the fixture is helpers.h's struct repo: a fresh directory, the box's root */
static char *at(const struct repo *f, const char *rel) {
    return dbx_xasprintf("%s/%s", f->dir, rel);
}

static void put(const struct repo *f, const char *rel, const char *text, mode_t mode) {
    _cleanup_free_ char *p = at(f, rel);
    _cleanup_free_ char *dir = dbx_xstrdup(p);
    *strrchr(dir, '/') = '\0';
    dbx_error *err = NULL;
    assert_int_equal(dbx_mkdir_p(dir, 0755, &err), 0);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(dbx_write_all(fd, text, strlen(text)), 0);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* The file's content, or NULL when it does not exist (a symlink is read as itself: refused) */
static char *get(const struct repo *f, const char *rel) {
    _cleanup_free_ char *p = at(f, rel);
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return NULL;
    char *text = NULL;
    assert_int_equal(dbx_read_all(fd, 1 << 20, &text, NULL, NULL), 0);
    close(fd);
    return text;
}

static void link_at(const struct repo *f, const char *target, const char *rel) {
    _cleanup_free_ char *p = at(f, rel);
    _cleanup_free_ char *dir = dbx_xstrdup(p);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(dbx_mkdir_p(dir, 0755, NULL), 0);
    assert_int_equal(symlink(target, p), 0);
}

/* ca_install's result: the CA_HAS_* bits, or < 0 (the error printed) */
static int install(const struct repo *f, const char *pem, char ***notes) {
    dbx_error *err = NULL;
    int r = ca_install(f->dir, pem, notes, &err);
    if (r < 0) {
        print_message("ca_install: %s\n", err->msg);
        dbx_error_free(&err);
    }
    return r;
}

static size_t count(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_install_idempotent_replace_remove(void **state) {
    const struct repo *f = *state;
    put(f, BUNDLE, "# the system's\n" PEM_S, 0444);
    _cleanup_strv_ char **notes = NULL;
    for (int boot = 0; boot < 5; boot++)
        assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    assert_null(notes);
    _cleanup_free_ char *b = get(f, BUNDLE);
    assert_string_equal(b, "# the system's\n" PEM_S CA_MARK_BEGIN PEM_A CA_MARK_END);
    assert_int_equal(count(b, CA_MARK_BEGIN), 1);
    struct stat st;
    _cleanup_free_ char *bp = at(f, BUNDLE);
    assert_int_equal(stat(bp, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    _cleanup_free_ char *crt = get(f, CA_HOST_CRT + 1);
    assert_string_equal(crt, PEM_A);
    _cleanup_free_ char *all = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(all, PEM_S PEM_A); /* the certificates only */
    _cleanup_free_ char *anchor = get(f, CA_ANCHOR + 1);
    assert_null(anchor); /* no /etc/pki/ca-trust */

    /* the next boot's certificates replace the block */
    assert_int_equal(install(f, PEM_B, &notes), HAS_BOTH);
    _cleanup_free_ char *b2 = get(f, BUNDLE);
    assert_string_equal(b2, "# the system's\n" PEM_S CA_MARK_BEGIN PEM_B CA_MARK_END);
    _cleanup_free_ char *all2 = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(all2, PEM_S PEM_B);

    /* none: everything undone */
    assert_int_equal(install(f, "", &notes), 0);
    _cleanup_free_ char *b3 = get(f, BUNDLE);
    assert_string_equal(b3, "# the system's\n" PEM_S);
    assert_int_equal(stat(bp, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    _cleanup_free_ char *crt3 = get(f, CA_HOST_CRT + 1), *all3 = get(f, CA_DEVBOX_PEM + 1);
    assert_null(crt3);
    assert_null(all3);
    _cleanup_free_ char *dir = at(f, "usr/local/share/ca-certificates/devbox");
    assert_int_equal(access(dir, F_OK), -1);
    /* and again: nothing to do, the file untouched */
    struct stat before, after;
    assert_int_equal(stat(bp, &before), 0);
    assert_int_equal(install(f, "", &notes), 0);
    assert_int_equal(stat(bp, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
}

/* A boot that finds our files as the last one left them writes nothing (no rename, no fsync):
 * same inode; one whose file was changed, chmod'ed or hard-linked gets it written again. */
static void test_unchanged_not_rewritten(void **state) {
    const struct repo *f = *state;
    put(f, BUNDLE, "# the system's\n" PEM_S, 0444);
    _cleanup_strv_ char **notes = NULL;
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    _cleanup_free_ char *crt = at(f, CA_HOST_CRT + 1), *all = at(f, CA_DEVBOX_PEM + 1);
    struct stat c0, a0, c1, a1;
    assert_int_equal(stat(crt, &c0), 0);
    assert_int_equal(stat(all, &a0), 0);
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    assert_int_equal(stat(crt, &c1), 0);
    assert_int_equal(stat(all, &a1), 0);
    assert_int_equal(c0.st_ino, c1.st_ino);
    assert_int_equal(a0.st_ino, a1.st_ino);

    /* the box changed the content (same size): written again */
    _cleanup_free_ char *bad = dbx_xstrdup(PEM_S PEM_A);
    bad[30] = bad[30] == 'X' ? 'Y' : 'X';
    put(f, CA_DEVBOX_PEM + 1, bad, 0644);
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    _cleanup_free_ char *got = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(got, PEM_S PEM_A);
    /* its mode */
    assert_int_equal(chmod(all, 0666), 0);
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    assert_int_equal(stat(all, &a1), 0);
    assert_int_equal(a1.st_mode & 07777, 0644);
    /* a second name for it: replaced by a file of its own */
    _cleanup_free_ char *other = at(f, "etc/other");
    assert_int_equal(link(all, other), 0);
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    assert_int_equal(stat(all, &a1), 0);
    assert_int_equal(a1.st_nlink, 1);
    assert_null(notes);
}

static void test_bundle_edges(void **state) {
    const struct repo *f = *state;
    /* no newline at the end; a truncated block of an earlier boot (begin, no end) */
    put(f, BUNDLE, "-----BEGIN CERTIFICATE-----\r\nU1lT\n-----END CERTIFICATE-----", 0644);
    put(f, "etc/ssl/cert.pem", "OTHER\n" CA_MARK_BEGIN PEM_B "-----BEGIN CERT", 0600);
    _cleanup_strv_ char **notes = NULL;
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    _cleanup_free_ char *b = get(f, BUNDLE), *c = get(f, "etc/ssl/cert.pem");
    assert_string_equal(
        b, "-----BEGIN CERTIFICATE-----\r\nU1lT\n-----END CERTIFICATE-----\n" CA_MARK_BEGIN PEM_A
               CA_MARK_END);
    assert_string_equal(c, "OTHER\n" CA_MARK_BEGIN PEM_A CA_MARK_END);
    /* devbox-ca.pem starts from the first bundle, its lines ending in "\n" */
    _cleanup_free_ char *all = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(all, PEM_S PEM_A);
    /* a marker line inside a line is not ours */
    put(f, BUNDLE, "x" CA_MARK_BEGIN "y\n", 0644);
    assert_int_equal(install(f, "", &notes), 0);
    _cleanup_free_ char *b2 = get(f, BUNDLE);
    assert_string_equal(b2, "x" CA_MARK_BEGIN "y\n");
    /* bad certificates: refused before anything is written */
    dbx_error *err = NULL;
    assert_int_equal(ca_install(f->dir, "junk\n", &notes, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "host CA certificates: line 1"));
    dbx_error_free(&err);
}

static void test_symlinks_and_fifo_left_alone(void **state) {
    const struct repo *f = *state;
    put(f, "elsewhere/bundle", "OUTSIDE\n", 0644);
    _cleanup_free_ char *outside = at(f, "elsewhere/bundle");
    link_at(f, outside, BUNDLE);                           /* the bundle itself */
    link_at(f, "../elsewhere", "etc/pki/tls/certs");       /* a directory on the way */
    _cleanup_free_ char *fifo = at(f, "etc/ssl/cert.pem"); /* not a regular file */
    assert_int_equal(mkfifo(fifo, 0644), 0);
    _cleanup_strv_ char **notes = NULL;
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    _cleanup_free_ char *o = get(f, "elsewhere/bundle");
    assert_string_equal(o, "OUTSIDE\n");
    assert_int_equal(dbx_strv_len(notes), 3);
    assert_non_null(strstr(notes[0], "'/" BUNDLE "' is a symlink, left alone"));
    assert_non_null(strstr(notes[1], "a symlink on the way"));
    assert_non_null(strstr(notes[2], "not a regular file"));
    struct stat st;
    _cleanup_free_ char *bp = at(f, BUNDLE);
    assert_int_equal(lstat(bp, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    /* an absolute symlink resolves inside the root for reading: it names root/elsewhere/... */
    _cleanup_free_ char *all = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(all, PEM_A); /* the host's /tmp/... path is not inside the root */
}

/* Fedora: the bundle is a symlink into update-ca-trust's output; the anchor goes in, the
 * bundle is left alone, and devbox-ca.pem has the system's certificates through the link. */
static void test_fedora(void **state) {
    const struct repo *f = *state;
    put(f, "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "# fedora\n" PEM_S, 0444);
    put(f, "etc/pki/ca-trust/source/README", "x\n", 0644);
    link_at(f, "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
            "etc/pki/tls/certs/ca-bundle.crt");
    link_at(f, "../pki/tls/certs", "etc/ssl/certs");
    _cleanup_strv_ char **notes = NULL;
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    _cleanup_free_ char *anchor = get(f, CA_ANCHOR + 1), *all = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(anchor, PEM_A);
    assert_string_equal(all, PEM_S PEM_A);
    _cleanup_free_ char *sys = get(f, "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem");
    assert_string_equal(sys, "# fedora\n" PEM_S);
    assert_int_equal(install(f, "", &notes), 0);
    _cleanup_free_ char *anchor2 = get(f, CA_ANCHOR + 1);
    assert_null(anchor2);
}

/* No bundle at all (busybox): our files alone, directories created. */
static void test_no_bundle(void **state) {
    const struct repo *f = *state;
    _cleanup_strv_ char **notes = NULL;
    assert_int_equal(install(f, PEM_A PEM_B, &notes), HAS_BOTH);
    assert_null(notes);
    _cleanup_free_ char *crt = get(f, CA_HOST_CRT + 1), *all = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(crt, PEM_A PEM_B);
    assert_string_equal(all, PEM_A PEM_B);
}

/* Symlinks planted where our own files go: never written through. */
static void test_planted_symlinks(void **state) {
    const struct repo *f = *state;
    put(f, "victim", "VICTIM\n", 0644);
    _cleanup_free_ char *victim = at(f, "victim");
    link_at(f, victim, CA_DEVBOX_PEM + 1);
    _cleanup_strv_ char **notes = NULL;
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH); /* the link itself is replaced */
    _cleanup_free_ char *v = get(f, "victim"), *all = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(v, "VICTIM\n");
    assert_string_equal(all, PEM_A);
    /* a symlinked directory on the way: a note, nothing written there, no NODE_EXTRA_CA_CERTS */
    _cleanup_free_ char *d = at(f, "usr/local/share/ca-certificates/devbox");
    _cleanup_free_ char *crt = at(f, CA_HOST_CRT + 1);
    assert_int_equal(unlink(crt), 0);
    assert_int_equal(rmdir(d), 0);
    _cleanup_free_ char *vdir = at(f, "vdir");
    assert_int_equal(mkdir(vdir, 0755), 0);
    assert_int_equal(symlink(vdir, d), 0);
    _cleanup_strv_ char **notes2 = NULL;
    assert_int_equal(install(f, PEM_A, &notes2), CA_HAS_DEVBOX_PEM);
    assert_int_equal(dbx_strv_len(notes2), 1);
    assert_non_null(strstr(notes2[0], "'" CA_HOST_CRT "': Not a directory, not written"));
    _cleanup_free_ char *inv = at(f, "vdir/host-ca.crt");
    assert_int_equal(access(inv, F_OK), -1);
}

/* What root in the box can leave on the persistent disk in the way of our files: a symlinked
 * /etc/ssl or /usr/local, a directory at a file's name or at its temporary name.  Each is a
 * note; the boot goes on; the bits say which CA variables may be set. */
static void test_blocked_own_files(void **state) {
    const struct repo *f = *state;
    _cleanup_free_ char *ssl = at(f, "etc/ssl"), *usrlocal = at(f, "usr/local");
    _cleanup_free_ char *vdir = at(f, "vdir");
    assert_int_equal(mkdir(vdir, 0755), 0);
    link_at(f, "/vdir", "etc/ssl");
    link_at(f, "/vdir", "usr/local");
    _cleanup_strv_ char **notes = NULL;
    assert_int_equal(install(f, PEM_A, &notes), 0);
    assert_int_equal(dbx_strv_len(notes), 4); /* two bundles under /etc/ssl, two of our files */
    assert_non_null(strstr(notes[0], "'/" BUNDLE "': a symlink on the way, left alone"));
    assert_non_null(strstr(notes[2], "'" CA_HOST_CRT "': Not a directory, not written"));
    assert_non_null(strstr(notes[3], "'" CA_DEVBOX_PEM "': Not a directory, not written"));
    _cleanup_free_ char *in_vdir = at(f, "vdir/devbox-ca.pem");
    assert_int_equal(access(in_vdir, F_OK), -1);
    /* without certificates: nothing of ours can be behind a symlink (the bundles are noted) */
    _cleanup_strv_ char **notes2 = NULL;
    assert_int_equal(install(f, "", &notes2), 0);
    assert_int_equal(dbx_strv_len(notes2), 2);
    assert_null(strstr(notes2[1], "not written"));
    assert_int_equal(unlink(ssl), 0);
    assert_int_equal(unlink(usrlocal), 0);

    /* a directory where devbox-ca.pem goes, and at the bundle's temporary name */
    _cleanup_free_ char *pemdir = at(f, CA_DEVBOX_PEM "/x" + 1);
    assert_int_equal(dbx_mkdir_p(pemdir, 0755, NULL), 0);
    put(f, BUNDLE, PEM_S, 0644);
    _cleanup_free_ char *tmpdir = at(f, "etc/ssl/certs/.ca-certificates.crt.devbox-tmp/x");
    assert_int_equal(dbx_mkdir_p(tmpdir, 0755, NULL), 0);
    _cleanup_strv_ char **notes3 = NULL;
    assert_int_equal(install(f, PEM_A, &notes3), CA_HAS_HOST_CRT);
    assert_int_equal(dbx_strv_len(notes3), 2);
    assert_non_null(strstr(notes3[0], "'/" BUNDLE "'"));
    assert_non_null(strstr(notes3[0], "left alone"));
    assert_non_null(strstr(notes3[1], "'" CA_DEVBOX_PEM "': Is a directory, not written"));
    _cleanup_free_ char *b = get(f, BUNDLE);
    assert_string_equal(b, PEM_S);
    _cleanup_strv_ char **notes4 = NULL;
    assert_int_equal(install(f, "", &notes4), 0);
    assert_null(notes4);
}

/* A bundle over the 8 MiB cap (root in the box can write one): a note, that bundle skipped,
 * with or without certificates. */
static void test_oversized_bundle(void **state) {
    const struct repo *f = *state;
    put(f, BUNDLE, "", 0644);
    _cleanup_free_ char *bp = at(f, BUNDLE);
    assert_int_equal(truncate(bp, CA_BUNDLE_MAX + 1), 0);
    put(f, "etc/ssl/cert.pem", PEM_S, 0644);
    _cleanup_strv_ char **notes = NULL;
    assert_int_equal(install(f, "", &notes), 0);
    assert_int_equal(dbx_strv_len(notes), 1);
    assert_non_null(strstr(notes[0], "'/" BUNDLE "' is larger than 8 MiB, left alone"));
    _cleanup_strv_ char **notes2 = NULL;
    assert_int_equal(install(f, PEM_A, &notes2), HAS_BOTH);
    assert_int_equal(dbx_strv_len(notes2), 2);
    assert_non_null(strstr(notes2[0], "'/" BUNDLE "' is larger than 8 MiB, not copied"));
    assert_non_null(strstr(notes2[1], "'/" BUNDLE "' is larger than 8 MiB, left alone"));
    struct stat st;
    assert_int_equal(stat(bp, &st), 0);
    assert_int_equal(st.st_size, CA_BUNDLE_MAX + 1);
    /* the next bundle is the system's */
    _cleanup_free_ char *all = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(all, PEM_S PEM_A);
}

/* The bundle is a symlink to the box user's private file: not published in the 0644
 * devbox-ca.pem.  A root-owned file readable by all is copied, its certificate blocks only. */
static void test_bundle_target_checked(void **state) {
    const struct repo *f = *state;
    const char *secret =
        PEM_S "PRIVATE\n"
              "-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n"
              "-----BEGIN CERTIFICATE-----\nQkFE\nnot base64\n-----END CERTIFICATE-----\n"
              "-----BEGIN CERTIFICATE-----\nVU5FTkRFRA==\n";
    put(f, "home/dev/.secret", secret, 0600);
    link_at(f, "/home/dev/.secret", BUNDLE);
    put(f, "etc/pki/tls/certs/ca-bundle.crt", PEM_B, 0644);
    _cleanup_strv_ char **notes = NULL;
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    assert_non_null(notes);
    assert_non_null(strstr(notes[0], "'/" BUNDLE "' (through its symlinks) is not root's and "
                                     "readable by all"));
    assert_non_null(strstr(notes[0], "mode 0600), not copied into " CA_DEVBOX_PEM));
    _cleanup_free_ char *all = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(all, PEM_B PEM_A); /* the next bundle's */
    /* readable by all: the certificate blocks and nothing else */
    _cleanup_free_ char *sp = at(f, "home/dev/.secret");
    assert_int_equal(chmod(sp, 0644), 0);
    _cleanup_strv_ char **notes2 = NULL;
    assert_int_equal(install(f, PEM_A, &notes2), HAS_BOTH);
    _cleanup_free_ char *all2 = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(all2, PEM_S PEM_A);
    /* another owner: only root can make one */
    if (geteuid() != 0) {
        print_message("not root: the check of the bundle's owner is not tested\n");
        return;
    }
    assert_int_equal(chown(sp, 1000, 1000), 0);
    _cleanup_strv_ char **notes3 = NULL;
    assert_int_equal(install(f, PEM_A, &notes3), HAS_BOTH);
    assert_non_null(notes3);
    assert_non_null(strstr(notes3[0], "(owner 1000, mode 0644), not copied"));
    _cleanup_free_ char *all3 = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(all3, PEM_B PEM_A);
}

#define STATE CA_STATE_DIR "/" CA_STATE_FILE

/* A record made to match what is there now, with these CA_HAS_* bits and extra lines, at mode */
static void forge(const struct repo *f, const char *pem, int has, const char *extra, mode_t mode) {
    _cleanup_close_ int rootfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(rootfd >= 0);
    _cleanup_free_ char *key = ca_state_key(rootfd, pem);
    assert_non_null(key);
    _cleanup_free_ char *text = dbx_xasprintf("%shas %d\n%s", key, has, extra);
    put(f, STATE, text, mode);
}

/* The record of a boot that did the work: root's, 0644 in var/lib/devbox.  A boot that finds
 * everything as recorded reads nothing: a bundle changed behind a record made to match it is
 * left as it is, and the record's bits are returned.  Anything else makes the work run again:
 * the system's certificate changed in place at the same size (right after the work: the record
 * waits for the clock's next tick), another pem, a record of another key, garbage, a line after
 * it, one others may write; a symlink in the record's directory's place is not followed. */
static void test_state_record(void **state) {
    const struct repo *f = *state;
    put(f, BUNDLE, "# the system's\n" PEM_S, 0444);
    _cleanup_strv_ char **notes = NULL;
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    _cleanup_free_ char *dir = at(f, CA_STATE_DIR), *rec = at(f, STATE);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_int_equal(stat(rec, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    _cleanup_free_ char *text = get(f, STATE);
    assert_non_null(strstr(text, "\nhas 3\n"));
    /* the next boot: nothing written, the record included */
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    struct stat st2;
    assert_int_equal(stat(rec, &st2), 0);
    assert_int_equal(st.st_ino, st2.st_ino);

    /* the block taken out behind a record made to match: nothing read, nothing written */
    put(f, BUNDLE, "# the system's\n" PEM_S, 0444);
    forge(f, PEM_A, CA_HAS_HOST_CRT, "", 0644);
    assert_int_equal(install(f, PEM_A, &notes), CA_HAS_HOST_CRT);
    _cleanup_free_ char *b1 = get(f, BUNDLE);
    assert_string_equal(b1, "# the system's\n" PEM_S);
    assert_null(notes);

    /* garbage: the work runs, and records again; so does a line after a matching record */
    put(f, STATE, "garbage\n", 0644);
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    _cleanup_free_ char *b2 = get(f, BUNDLE);
    assert_string_equal(b2, "# the system's\n" PEM_S CA_MARK_BEGIN PEM_A CA_MARK_END);
    put(f, BUNDLE, "# the system's\n" PEM_S, 0444);
    forge(f, PEM_A, CA_HAS_HOST_CRT, "junk\n", 0644);
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    _cleanup_free_ char *b3 = get(f, BUNDLE);
    assert_string_equal(b3, "# the system's\n" PEM_S CA_MARK_BEGIN PEM_A CA_MARK_END);

    /* the system's certificate changed in place, same size, right after the work */
    put(f, BUNDLE, "# the system's\n" PEM_B CA_MARK_BEGIN PEM_A CA_MARK_END, 0444);
    assert_int_equal(strlen(PEM_B), strlen(PEM_S));
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    _cleanup_free_ char *all = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(all, PEM_B PEM_A);
    put(f, BUNDLE, "# the system's\n" PEM_S CA_MARK_BEGIN PEM_A CA_MARK_END, 0444);

    /* another pem */
    assert_int_equal(install(f, PEM_B, &notes), HAS_BOTH);
    _cleanup_free_ char *all2 = get(f, CA_DEVBOX_PEM + 1);
    assert_string_equal(all2, PEM_S PEM_B);

    /* a matching record others may write is not believed */
    put(f, BUNDLE, "# the system's\n" PEM_S, 0444);
    forge(f, PEM_B, CA_HAS_HOST_CRT, "", 0666);
    assert_int_equal(install(f, PEM_B, &notes), HAS_BOTH);
    _cleanup_free_ char *b4 = get(f, BUNDLE);
    assert_string_equal(b4, "# the system's\n" PEM_S CA_MARK_BEGIN PEM_B CA_MARK_END);

    /* none: undone, recorded as such */
    assert_int_equal(install(f, "", &notes), 0);
    _cleanup_free_ char *text2 = get(f, STATE);
    assert_non_null(strstr(text2, "\nhas 0\n"));
    assert_int_equal(install(f, "", &notes), 0);
    assert_null(notes);

    /* the record's directory a symlink: not followed, nothing recorded there */
    assert_int_equal(unlink(rec), 0);
    assert_int_equal(rmdir(dir), 0);
    _cleanup_free_ char *elsewhere = at(f, "elsewhere");
    assert_int_equal(mkdir(elsewhere, 0755), 0);
    assert_int_equal(symlink("../../elsewhere", dir), 0);
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    _cleanup_free_ char *through = get(f, "elsewhere/" CA_STATE_FILE);
    assert_null(through);
    assert_int_equal(unlink(dir), 0);
}

/* A directory on the way replaced by a symlink to a copy keeps every file's inode and times,
 * but the work follows no symlink there: the key sees the change (the name is looked up through
 * no symlink), and the boot does what a boot without a record does.  A boot that made notes
 * records them, and the next one, changing nothing, says them again. */
static void test_state_symlinked_dir_and_notes(void **state) {
    const struct repo *f = *state;
    put(f, BUNDLE, "# the system's\n" PEM_S, 0444);
    _cleanup_strv_ char **notes = NULL;
    assert_int_equal(install(f, PEM_A, &notes), HAS_BOTH);
    assert_null(notes);
    _cleanup_free_ char *ssl = at(f, "etc/ssl"), *real = at(f, "etc/ssl.real");
    assert_int_equal(rename(ssl, real), 0);
    assert_int_equal(symlink("ssl.real", ssl), 0);
    int with = install(f, PEM_A, &notes);
    size_t nwith = dbx_strv_len(notes);
    assert_true(nwith > 0);
    _cleanup_free_ char *rec = at(f, STATE);
    assert_int_equal(unlink(rec), 0);
    _cleanup_strv_ char **notes2 = NULL;
    assert_int_equal(install(f, PEM_A, &notes2), with); /* the same as without a record */
    assert_int_equal(dbx_strv_len(notes2), nwith);
    /* recorded with its notes: the next boot repeats them, reading nothing */
    _cleanup_free_ char *text = get(f, STATE);
    assert_non_null(strstr(text, "\nnote "));
    struct stat st, st2;
    assert_int_equal(stat(rec, &st), 0);
    _cleanup_strv_ char **notes3 = NULL;
    assert_int_equal(install(f, PEM_A, &notes3), with);
    assert_int_equal(dbx_strv_len(notes3), nwith);
    for (size_t i = 0; i < nwith; i++)
        assert_string_equal(notes3[i], notes2[i]);
    assert_int_equal(stat(rec, &st2), 0);
    assert_int_equal(st.st_ino, st2.st_ino);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_install_idempotent_replace_remove, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_not_rewritten, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_bundle_edges, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_symlinks_and_fifo_left_alone, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_fedora, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_no_bundle, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_planted_symlinks, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_blocked_own_files, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_oversized_bundle, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_bundle_target_checked, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_state_record, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_state_symlinked_dir_and_notes, test_repo_setup,
                                        test_repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

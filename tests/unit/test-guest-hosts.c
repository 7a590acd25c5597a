/* tests/unit/test-guest-hosts.c: the box's names in /etc/hosts (guest/init-hosts.c), on the host,
 * in a temporary directory standing in for the box's /etc: made with localhost and the hostname
 * when the image has none; an image's own localhost kept and only the hostname added; the block
 * replaced when the hostname changes, the user's lines outside it kept, and a line of the
 * user's for the hostname dropping ours; nothing written when nothing changes (the mtime stays);
 * a symlink, a FIFO or a file with a NUL byte left alone (a note), a symlink's target untouched;
 * a hostname that is not one name left out. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

/* init-hosts.c and the init-ca.c it writes with are guest code (the static init links them);
 * the test compiles them in. */
#include "helpers.h"
#include "guest/init-ca.c"
#include "guest/init-hosts.c"

#define BEGIN HOSTS_MARK_BEGIN
#define END HOSTS_MARK_END

static char *hosts_of(const struct repo *f) {
    _cleanup_free_ char *p = dbx_xasprintf("%s/hosts", f->dir);
    char *text = NULL;
    return dbx_read_file_at(AT_FDCWD, p, 1 << 16, &text, NULL, NULL) == 0 ? text : NULL;
}

/* hosts_install on the fixture's directory as /etc; the notes it made */
static char **install(const struct repo *f, const char *hostname) {
    int etc = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(etc >= 0);
    char **notes = NULL;
    dbx_error *err = NULL;
    int r = hosts_install(etc, hostname, &notes, &err);
    close(etc);
    if (r < 0) fail_msg("hosts_install: %s", err->msg);
    return notes;
}

static void test_hosts_made(void **state) {
    const struct repo *f = *state;
    _cleanup_strv_ char **notes = install(f, "devbox");
    assert_null(notes);
    _cleanup_free_ char *text = hosts_of(f);
    assert_string_equal(text, BEGIN "127.0.0.1\tlocalhost\n"
                                    "::1\tip6-localhost ip6-loopback\n"
                                    "127.0.1.1\tdevbox\n" END);
    _cleanup_free_ char *p = dbx_xasprintf("%s/hosts", f->dir);
    struct stat st, again;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    /* the next boot: the same file, not written again */
    struct timespec old[2] = {{0, 0}, {1000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    _cleanup_strv_ char **n2 = install(f, "devbox");
    assert_int_equal(stat(p, &again), 0);
    assert_int_equal(again.st_mtim.tv_sec, 1000000);
    assert_int_equal(again.st_ino, st.st_ino);
}

/* Alpine's and Fedora's images name localhost; only the hostname is added.  A hostname changed
 * in the profile replaces the old one; the user's own lines stay where they are. */
static void test_hosts_image_and_user(void **state) {
    const struct repo *f = *state;
    const char *image = "127.0.0.1\tlocalhost localhost.localdomain\n"
                        "::1\t\tlocalhost localhost.localdomain # v6\n";
    test_put_file(f->dir, "hosts", image);
    _cleanup_strv_ char **n1 = install(f, "devbox");
    _cleanup_free_ char *t1 = hosts_of(f);
    _cleanup_free_ char *w1 = dbx_xasprintf("%s" BEGIN "127.0.1.1\tdevbox\n" END, image);
    assert_string_equal(t1, w1);

    /* the user adds a line of their own after our block; the hostname changes */
    _cleanup_free_ char *edited = dbx_xasprintf("%s10.1.2.3 db.internal\n", t1);
    _cleanup_free_ char *p = dbx_xasprintf("%s/hosts", f->dir);
    unlink(p);
    test_put_file(f->dir, "hosts", edited);
    _cleanup_strv_ char **n2 = install(f, "web");
    _cleanup_free_ char *t2 = hosts_of(f);
    _cleanup_free_ char *w2 =
        dbx_xasprintf("%s10.1.2.3 db.internal\n" BEGIN "127.0.1.1\tweb\n" END, image);
    assert_string_equal(t2, w2);

    /* the user names the host themselves (any case): our block goes */
    _cleanup_free_ char *own = dbx_xasprintf("%s192.168.1.9\tWEB web.local\n", t2);
    unlink(p);
    test_put_file(f->dir, "hosts", own);
    _cleanup_strv_ char **n3 = install(f, "web");
    _cleanup_free_ char *t3 = hosts_of(f);
    _cleanup_free_ char *w3 =
        dbx_xasprintf("%s10.1.2.3 db.internal\n192.168.1.9\tWEB web.local\n", image);
    assert_string_equal(t3, w3);
}

/* A name in a comment or as the address is not a name; a file without its last newline gets
 * one before the block. */
static void test_hosts_parsing(void **state) {
    const struct repo *f = *state;
    test_put_file(f->dir, "hosts", "# localhost devbox\nlocalhost 1.2.3.4\n127.0.0.1 devboxes");
    _cleanup_strv_ char **notes = install(f, "devbox");
    _cleanup_free_ char *text = hosts_of(f);
    assert_string_equal(text, "# localhost devbox\nlocalhost 1.2.3.4\n127.0.0.1 devboxes\n" BEGIN
                              "127.0.0.1\tlocalhost\n::1\tip6-localhost ip6-loopback\n"
                              "127.0.1.1\tdevbox\n" END);
}

/* The box's root may have made /etc/hosts a symlink: left alone, with a note, its target
 * untouched.  A hostname that is not one name (SETUP's decoder takes any 64 bytes) gets no
 * line. */
static void test_hosts_hostile(void **state) {
    const struct repo *f = *state;
    test_put_file(f->dir, "target", "keep\n");
    _cleanup_free_ char *p = dbx_xasprintf("%s/hosts", f->dir);
    assert_int_equal(symlink("target", p), 0);
    _cleanup_strv_ char **notes = install(f, "devbox");
    assert_non_null(notes);
    assert_string_equal(notes[0], "'/etc/hosts' is a symlink, left alone");
    _cleanup_free_ char *p2 = dbx_xasprintf("%s/target", f->dir);
    _cleanup_free_ char *t = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, p2, 4096, &t, NULL, NULL), 0);
    assert_string_equal(t, "keep\n");

    /* a FIFO: not opened (the boot would not wait on it), a note */
    unlink(p);
    assert_int_equal(mkfifo(p, 0644), 0);
    _cleanup_strv_ char **nf = install(f, "devbox");
    assert_non_null(nf);
    assert_string_equal(nf[0], "'/etc/hosts' is not a regular file, left alone");

    /* a NUL byte: the text would stop there and a rewrite drop the rest */
    unlink(p);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(dbx_write_all(fd, "1.2.3.4 a\0\n5.6.7.8 b\n", 20), 0);
    close(fd);
    _cleanup_strv_ char **nn = install(f, "devbox");
    assert_non_null(nn);
    assert_string_equal(nn[0], "'/etc/hosts' is not text (a NUL byte), left alone");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 20);

    unlink(p);
    _cleanup_strv_ char **n2 = install(f, "a b\n1.2.3.4 evil");
    _cleanup_free_ char *text = hosts_of(f);
    assert_string_equal(text, BEGIN "127.0.0.1\tlocalhost\n"
                                    "::1\tip6-localhost ip6-loopback\n" END);
}

/* /etc/hostname: made, an image's builder name replaced, left as it is when it says the name
 * already (no rewrite), a symlink the box's root put there not followed. */
static void test_hostname(void **state) {
    const struct repo *f = *state;
    _cleanup_free_ char *p = dbx_xasprintf("%s/hostname", f->dir);
    int etc = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(etc >= 0);
    char **notes = NULL;
    dbx_error *err = NULL;
    assert_int_equal(hostname_install(etc, "devbox", &notes, &err), 0);
    _cleanup_free_ char *t1 = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, p, 4096, &t1, NULL, NULL), 0);
    assert_string_equal(t1, "devbox\n");

    test_put_file(f->dir, "hostname", "builder.example\n");
    assert_int_equal(hostname_install(etc, "web", &notes, &err), 0);
    _cleanup_free_ char *t2 = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, p, 4096, &t2, NULL, NULL), 0);
    assert_string_equal(t2, "web\n");
    struct stat st, again;
    struct timespec old[2] = {{0, 0}, {1000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(hostname_install(etc, "web", &notes, &err), 0);
    assert_int_equal(stat(p, &again), 0);
    assert_int_equal(again.st_mtim.tv_sec, 1000000);
    assert_int_equal(again.st_ino, st.st_ino);
    assert_null(notes);

    /* not one name, or none: the file stays */
    assert_int_equal(hostname_install(etc, "a b", &notes, &err), 0);
    assert_int_equal(hostname_install(etc, "", &notes, &err), 0);
    _cleanup_free_ char *t3 = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, p, 4096, &t3, NULL, NULL), 0);
    assert_string_equal(t3, "web\n");

    /* a symlink: replaced by our file, never written through */
    test_put_file(f->dir, "target", "keep\n");
    unlink(p);
    assert_int_equal(symlink("target", p), 0);
    int r = hostname_install(etc, "devbox", &notes, &err);
    if (r < 0) fail_msg("hostname_install: %s", err->msg);
    _cleanup_free_ char *p2 = dbx_xasprintf("%s/target", f->dir);
    _cleanup_free_ char *t4 = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, p2, 4096, &t4, NULL, NULL), 0);
    assert_string_equal(t4, "keep\n");
    dbx_strv_free(notes);
    close(etc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hosts_made, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_hosts_image_and_user, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_hosts_parsing, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_hosts_hostile, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_hostname, test_repo_setup, test_repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test-guest-skel.c: a new home gets the image's /etc/skel (guest/init-skel.c), on
 * the host in a temporary directory: regular files and directories copied with their modes and
 * owned by the user; a symlink, a FIFO, a file with another link and an oversized file left out;
 * nothing written outside the home. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

/* guest code (the static init links it); the test compiles it in */
#include "helpers.h"
#include "guest/init-skel.c"

static char *read_in(const char *dir, const char *rel) {
    _cleanup_free_ char *p = dbx_xasprintf("%s/%s", dir, rel);
    char *text = NULL;
    return dbx_read_file_at(AT_FDCWD, p, 1 << 22, &text, NULL, NULL) == 0 ? text : NULL;
}

static bool exists_in(const char *dir, const char *rel) {
    _cleanup_free_ char *p = dbx_xasprintf("%s/%s", dir, rel);
    struct stat st;
    return lstat(p, &st) == 0;
}

static void test_skel(void **state) {
    const struct repo *f = *state;
    _cleanup_free_ char *skel = dbx_xasprintf("%s/skel", f->dir);
    _cleanup_free_ char *home = dbx_xasprintf("%s/home", f->dir);
    test_put_file(skel, ".bashrc", "HISTCONTROL=ignoreboth\n");
    test_put_file(skel, ".profile", "PATH=$HOME/.local/bin:$PATH\n");
    test_put_file(skel, ".config/app/settings", "x=1\n");
    test_put_file(f->dir, "secret", "not for the box user\n");
    _cleanup_free_ char *p = dbx_xasprintf("%s/.bashrc", skel);
    assert_int_equal(chmod(p, 0640), 0);
    _cleanup_free_ char *cfg = dbx_xasprintf("%s/.config", skel);
    assert_int_equal(chmod(cfg, 0700), 0);
    _cleanup_free_ char *sym = dbx_xasprintf("%s/.evil", skel);
    _cleanup_free_ char *secret = dbx_xasprintf("%s/secret", f->dir);
    assert_int_equal(symlink(secret, sym), 0);
    _cleanup_free_ char *hard = dbx_xasprintf("%s/.hard", skel);
    assert_int_equal(link(secret, hard), 0);
    _cleanup_free_ char *fifo = dbx_xasprintf("%s/.fifo", skel);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    _cleanup_free_ char *big = dbx_xasprintf("%s/.big", skel);
    int bfd = open(big, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(bfd >= 0);
    assert_int_equal(ftruncate(bfd, (off_t)SKEL_FILE_MAX + 1), 0);
    close(bfd);
    assert_int_equal(mkdir(home, 0755), 0);

    int s = open(skel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int h = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(s >= 0 && h >= 0);
    skel_copy(s, h, getuid(), getgid());
    close(s);
    close(h);

    _cleanup_free_ char *b = read_in(home, ".bashrc");
    assert_non_null(b);
    assert_string_equal(b, "HISTCONTROL=ignoreboth\n");
    _cleanup_free_ char *pr = read_in(home, ".profile");
    assert_non_null(pr);
    _cleanup_free_ char *st = read_in(home, ".config/app/settings");
    assert_non_null(st);
    assert_string_equal(st, "x=1\n");
    struct stat sb;
    _cleanup_free_ char *hb = dbx_xasprintf("%s/.bashrc", home);
    assert_int_equal(stat(hb, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640);
    assert_int_equal(sb.st_uid, getuid());
    _cleanup_free_ char *hc = dbx_xasprintf("%s/.config", home);
    assert_int_equal(stat(hc, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_false(exists_in(home, ".evil"));
    assert_false(exists_in(home, ".hard"));
    assert_false(exists_in(home, ".fifo"));
    assert_false(exists_in(home, ".big"));

    /* a home that has the files already (not ours to overwrite): left as it is */
    test_put_file(home, ".profile", "mine\n");
    s = open(skel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    h = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    skel_copy(s, h, getuid(), getgid());
    close(s);
    close(h);
    _cleanup_free_ char *mine = read_in(home, ".profile");
    assert_string_equal(mine, "mine\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_skel, test_repo_setup, test_repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

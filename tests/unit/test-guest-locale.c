/* tests/unit/test-guest-locale.c: the guest init's time zone and locale (guest/init-locale.c)
 * on the host, in a temporary directory standing in for the box's root: the host's zone file
 * written to usr/share/zoneinfo/NAME when the image has no file of that name (through the
 * image's own symlinks, but never out of its root), with a record that makes a later boot
 * rewrite it when the host's file changed while leaving any other file there alone; a FIFO there
 * replaced without being opened; never written through a symlink the box's root planted (a
 * note); and LANG=C.UTF-8 only for an image that has that locale (glibc's C.utf8 or Debian's
 * older C.UTF-8 directory, or musl).  The host terminal's terminfo entry written under
 * run/devbox/terminfo only when the image has none of that name (its own, through its
 * symlinks, wins), never for a name or data that is not one, nor through a planted symlink. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <sys/stat.h>

/* init-locale.c and the init-ca.c it writes with are guest code (the static init links them);
 * the test compiles them in. */
#include "helpers.h"
#include "guest/init-ca.c"
#include "guest/init-locale.c"

static const uint8_t TZIF[] = "TZif2 the host's zone\n";

static char *at(const struct repo *f, const char *rel) {
    return dbx_xasprintf("%s/%s", f->dir, rel);
}

static void put(const struct repo *f, const char *rel, const char *text) {
    test_put_file(f->dir, rel, text);
}

/* dir/name under the fixture's root: its content, or NULL when missing */
static char *read_under(const struct repo *f, const char *dir, const char *name) {
    _cleanup_free_ char *p = dbx_xasprintf("%s/%s/%s", f->dir, dir, name);
    char *text = NULL;
    return dbx_read_file_at(AT_FDCWD, p, 4096, &text, NULL, NULL) == 0 ? text : NULL;
}

static char *zone(const struct repo *f, const char *name) {
    return read_under(f, "usr/share/zoneinfo", name);
}

static void test_zone_written_when_missing(void **state) {
    const struct repo *f = *state;
    dbx_error *err = NULL;
    _cleanup_strv_ char **notes = NULL;
    const char *ba = "America/Argentina/Buenos_Aires";
    assert_int_equal(tz_install(f->dir, ba, TZIF, sizeof(TZIF) - 1, &notes, &err), 1);
    _cleanup_free_ char *text = zone(f, ba);
    assert_non_null(text);
    assert_string_equal(text, (const char *)TZIF);
    _cleanup_free_ char *p = at(f, "usr/share/zoneinfo/America/Argentina/Buenos_Aires");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    _cleanup_free_ char *rec = at(f, "var/lib/devbox/zoneinfo/America/Argentina/Buenos_Aires");
    _cleanup_free_ char *rec_text = NULL;
    assert_int_equal(dbx_read_file_at(AT_FDCWD, rec, 4096, &rec_text, NULL, NULL), 0);
    assert_string_equal(rec_text, (const char *)TZIF); /* the record of what we wrote */
    /* the next boot: the same file, nothing written; the host's file changed (a tzdata
     * update): ours is rewritten, the record with it */
    assert_int_equal(tz_install(f->dir, ba, TZIF, sizeof(TZIF) - 1, &notes, &err), 0);
    static const uint8_t other[] = "TZif2 the host's zone, changed\n";
    assert_int_equal(tz_install(f->dir, ba, other, sizeof(other) - 1, &notes, &err), 1);
    _cleanup_free_ char *again = zone(f, ba);
    assert_string_equal(again, (const char *)other);
    /* root in the box put its own file there: not ours any more, left alone */
    put(f, "usr/share/zoneinfo/America/Argentina/Buenos_Aires", "TZif2 root's own\n");
    assert_int_equal(tz_install(f->dir, ba, TZIF, sizeof(TZIF) - 1, &notes, &err), 0);
    _cleanup_free_ char *roots = zone(f, ba);
    assert_string_equal(roots, "TZif2 root's own\n");
    /* no name, or a name without data (a POSIX rule): nothing to write */
    assert_int_equal(tz_install(f->dir, "", NULL, 0, &notes, &err), 0);
    assert_int_equal(tz_install(f->dir, "EST5EDT,M3.2.0,M11.1.0", NULL, 0, &notes, &err), 0);
    assert_null(err);
    assert_null(notes);
}

static void test_zone_of_the_image(void **state) {
    const struct repo *f = *state;
    dbx_error *err = NULL;
    _cleanup_strv_ char **notes = NULL;
    put(f, "usr/share/zoneinfo/Europe/Berlin", "TZif2 the image's\n");
    assert_int_equal(tz_install(f->dir, "Europe/Berlin", TZIF, sizeof(TZIF) - 1, &notes, &err), 0);
    _cleanup_free_ char *image = zone(f, "Europe/Berlin");
    assert_string_equal(image, "TZif2 the image's\n");
    /* tzdata's links between zones are followed, inside the root */
    _cleanup_free_ char *link = at(f, "usr/share/zoneinfo/Europe/Busingen");
    assert_int_equal(symlink("Berlin", link), 0);
    assert_int_equal(tz_install(f->dir, "Europe/Busingen", TZIF, sizeof(TZIF) - 1, &notes, &err),
                     0);
    /* an absolute link resolves in the box's root, not the host's (this host has the zone) */
    _cleanup_free_ char *abs = at(f, "usr/share/zoneinfo/Etc");
    assert_int_equal(mkdir(abs, 0755), 0);
    _cleanup_free_ char *l2 = at(f, "usr/share/zoneinfo/Etc/UTC");
    assert_int_equal(symlink("/usr/share/zoneinfo/Europe/Berlin", l2), 0);
    assert_int_equal(tz_install(f->dir, "Etc/UTC", TZIF, sizeof(TZIF) - 1, &notes, &err), 0);
    /* a link to nothing is no zone: replaced by the file, not followed */
    _cleanup_free_ char *l3 = at(f, "usr/share/zoneinfo/Etc/GMT");
    assert_int_equal(symlink("/nonexistent/zone", l3), 0);
    assert_int_equal(tz_install(f->dir, "Etc/GMT", TZIF, sizeof(TZIF) - 1, &notes, &err), 1);
    _cleanup_free_ char *gmt = zone(f, "Etc/GMT");
    assert_string_equal(gmt, (const char *)TZIF);
    assert_null(notes);
    /* a FIFO there is replaced, never opened (the boot would hang) */
    _cleanup_free_ char *fifo = at(f, "usr/share/zoneinfo/Etc/FIFO");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    assert_int_equal(tz_install(f->dir, "Etc/FIFO", TZIF, sizeof(TZIF) - 1, &notes, &err), 1);
    _cleanup_free_ char *was_fifo = zone(f, "Etc/FIFO");
    assert_string_equal(was_fifo, (const char *)TZIF);
    /* a file larger than any zone is not one of ours */
    char *big = dbx_xcalloc(1, DBX_TZ_DATA_MAX + 2);
    memset(big, 'x', DBX_TZ_DATA_MAX + 1);
    put(f, "usr/share/zoneinfo/Etc/Big", big);
    free(big);
    assert_int_equal(tz_install(f->dir, "Etc/Big", TZIF, sizeof(TZIF) - 1, &notes, &err), 0);
    assert_null(notes);
    /* a directory of that name is no zone, and not ours to replace: a note */
    assert_int_equal(tz_install(f->dir, "Europe", TZIF, sizeof(TZIF) - 1, &notes, &err), 0);
    assert_int_equal(dbx_strv_len(notes), 1);
    assert_null(err);
}

/* The disk persists: root in the box may have made a directory on the way a symlink.  Nothing
 * is written through it (a note), at the link's target neither outside the root nor inside. */
static void test_zone_symlink_planted(void **state) {
    const struct repo *f = *state;
    dbx_error *err = NULL;
    _cleanup_strv_ char **notes = NULL;
    put(f, "elsewhere/.keep", "");
    _cleanup_free_ char *elsewhere = at(f, "elsewhere"), *asia = at(f, "usr/share/zoneinfo/Asia");
    put(f, "usr/share/zoneinfo/.keep", "");
    assert_int_equal(symlink(elsewhere, asia), 0);
    assert_int_equal(tz_install(f->dir, "Asia/Tokyo", TZIF, sizeof(TZIF) - 1, &notes, &err), 0);
    assert_null(err);
    assert_int_equal(dbx_strv_len(notes), 1);
    _cleanup_free_ char *tokyo = at(f, "elsewhere/Tokyo");
    assert_int_equal(access(tokyo, F_OK), -1);
}

static void test_zone_refused(void **state) {
    const struct repo *f = *state;
    dbx_error *err = NULL;
    _cleanup_strv_ char **notes = NULL;
    assert_true(tz_install(f->dir, "../../etc/passwd", TZIF, sizeof(TZIF) - 1, &notes, &err) < 0);
    assert_non_null(strstr(err->msg, "time zone"));
    dbx_error_free(&err);
    assert_true(
        tz_install(f->dir, "Europe/Berlin", (const uint8_t *)"#!/bin/sh\n", 10, &notes, &err) < 0);
    dbx_error_free(&err);
    _cleanup_free_ char *etc = at(f, "etc/passwd");
    assert_int_equal(access(etc, F_OK), -1);
}

static void test_lang(void **state) {
    const struct repo *f = *state;
    assert_null(locale_default(f->dir)); /* an image with no locale: the POSIX one */
    put(f, "usr/lib/locale/C.utf8/LC_CTYPE", "x");
    assert_string_equal(locale_default(f->dir), "C.UTF-8");
}

static void test_lang_older_glibc(void **state) {
    const struct repo *f = *state;
    put(f, "usr/lib/locale/C.UTF-8/LC_CTYPE", "x");
    assert_string_equal(locale_default(f->dir), "C.UTF-8");
}

static void test_lang_musl(void **state) {
    const struct repo *f = *state;
    put(f, "lib/ld-musl-x86_64.so.1", "x");
    assert_string_equal(locale_default(f->dir), "C.UTF-8");
}

static void test_lang_not_a_dir(void **state) {
    const struct repo *f = *state;
    put(f, "usr/lib/locale/C.utf8", "a file");
    assert_null(locale_default(f->dir));
}

/* a compiled entry's first bytes: the extended-number magic, then enough for the check */
static const uint8_t KITTY[] = "\x1e\x02 xterm-kitty, the host's entry";

static char *run_entry(const struct repo *f, const char *rel) {
    return read_under(f, "run/devbox/terminfo", rel);
}

static void test_terminfo(void **state) {
    const struct repo *f = *state;
    dbx_error *err = NULL;
    _cleanup_strv_ char **notes = NULL;
    /* the image has none: written, 0644, and again (the same bytes) still there */
    assert_int_equal(
        terminfo_install(f->dir, "xterm-kitty", KITTY, sizeof(KITTY) - 1, &notes, &err), 1);
    assert_int_equal(
        terminfo_install(f->dir, "xterm-kitty", KITTY, sizeof(KITTY) - 1, &notes, &err), 1);
    _cleanup_free_ char *text = run_entry(f, "x/xterm-kitty");
    assert_non_null(text);
    assert_memory_equal(text, KITTY, sizeof(KITTY) - 1);
    _cleanup_free_ char *p = at(f, "run/devbox/terminfo/x/xterm-kitty");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    /* the image's own entry, in any of ncurses' directories, through its symlinks: left to it */
    put(f, "usr/share/terminfo/f/foot", "the image's foot");
    assert_int_equal(terminfo_install(f->dir, "foot", KITTY, sizeof(KITTY) - 1, &notes, &err), 0);
    put(f, "lib/terminfo/a/alacritty-direct", "the image's");
    put(f, "etc/terminfo/a/.keep", "");
    _cleanup_free_ char *link = at(f, "etc/terminfo/a/alacritty");
    assert_int_equal(symlink("../../../lib/terminfo/a/alacritty-direct", link), 0);
    assert_int_equal(terminfo_install(f->dir, "alacritty", KITTY, sizeof(KITTY) - 1, &notes, &err),
                     0);
    assert_null(run_entry(f, "f/foot"));
    assert_null(run_entry(f, "a/alacritty"));
    /* not a name, not an entry, nothing sent: nothing written */
    static const char *const bad[] = {"../../etc/passwd", ".hidden", "a/b", "", "x y"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++)
        assert_int_equal(terminfo_install(f->dir, bad[i], KITTY, sizeof(KITTY) - 1, &notes, &err),
                         0);
    static const uint8_t script[] = "#!/bin/sh\necho hi\n";
    assert_int_equal(terminfo_install(f->dir, "wezterm", script, sizeof(script) - 1, &notes, &err),
                     0);
    assert_int_equal(terminfo_install(f->dir, "wezterm", NULL, 0, &notes, &err), 0);
    assert_null(run_entry(f, "w/wezterm"));
    _cleanup_free_ char *passwd = at(f, "etc/passwd");
    assert_int_equal(access(passwd, F_OK), -1);
    assert_null(err);
    assert_null(notes);
    /* root in the box made a directory on the way a symlink: not written through it (a note) */
    put(f, "elsewhere/.keep", "");
    _cleanup_free_ char *elsewhere = at(f, "elsewhere"), *g = at(f, "run/devbox/terminfo/g");
    assert_int_equal(symlink(elsewhere, g), 0);
    assert_int_equal(terminfo_install(f->dir, "ghostty", KITTY, sizeof(KITTY) - 1, &notes, &err),
                     0);
    assert_null(err);
    assert_int_equal(dbx_strv_len(notes), 1);
    _cleanup_free_ char *planted = at(f, "elsewhere/ghostty");
    assert_int_equal(access(planted, F_OK), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_zone_written_when_missing, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_zone_of_the_image, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_zone_symlink_planted, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_zone_refused, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_lang, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_lang_older_glibc, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_lang_musl, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_lang_not_a_dir, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_terminfo, test_repo_setup, test_repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

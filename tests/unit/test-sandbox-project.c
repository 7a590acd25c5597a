/* Unit tests: project discovery (libgit2), project records. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "helpers.h"
#include "sandbox/sandbox-internal.h"
#include "sandbox/sandbox.h"

#include <sys/stat.h>

static char tmpl[64];

static int setup(void **state) {
    snprintf(tmpl, sizeof(tmpl), "/tmp/dbx-unit-XXXXXX");
    assert_non_null(mkdtemp(tmpl));
    char *home = dbx_xasprintf("%s/home", tmpl);
    setenv("DEVBOX_HOME", home, 1);
    free(home);
    (void)state;
    return 0;
}

static int teardown(void **state) {
    test_sh("rm -rf '%s'", tmpl);
    (void)state;
    return 0;
}

static void test_find_root_from_subdir(void **state) {
    (void)state;
    test_sh("mkdir -p %s/repo/a/b && git init -q %s/repo", tmpl, tmpl);
    struct dbx_paths paths = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_paths_init(&paths, &err), 0);
    char *sub = dbx_xasprintf("%s/repo/a/b", tmpl);
    struct dbx_project p = {0};
    assert_int_equal(dbx_project_find(&paths, sub, false, &p, &err), 0);
    char *want = dbx_xasprintf("%s/repo", tmpl);
    assert_string_equal(p.root, want);
    assert_string_equal(p.cwd, sub);
    assert_int_equal(strlen(p.id), 16);
    /* the id is stable for the same root */
    struct dbx_project q = {0};
    assert_int_equal(dbx_project_find(&paths, want, false, &q, &err), 0);
    assert_string_equal(p.id, q.id);
    dbx_project_clear(&p);
    dbx_project_clear(&q);
    dbx_paths_clear(&paths);
    free(sub);
    free(want);
}

static void test_core_worktree_ignored(void **state) {
    (void)state;
    /* A poisoned core.worktree must not move the share outside the directory holding .git. */
    test_sh("mkdir -p %s/evil && git init -q %s/evil && git -C %s/evil config core.worktree /",
            tmpl, tmpl, tmpl);
    struct dbx_paths paths = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_paths_init(&paths, &err), 0);
    char *dir = dbx_xasprintf("%s/evil", tmpl);
    struct dbx_project p = {0};
    assert_int_equal(dbx_project_find(&paths, dir, false, &p, &err), 0);
    assert_string_equal(p.root, dir);
    dbx_project_clear(&p);
    dbx_paths_clear(&paths);
    free(dir);
}

static void test_outside_worktree(void **state) {
    (void)state;
    test_sh("mkdir -p %s/plain", tmpl);
    struct dbx_paths paths = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_paths_init(&paths, &err), 0);
    char *dir = dbx_xasprintf("%s/plain", tmpl);
    struct dbx_project p = {0};
    assert_true(dbx_project_find(&paths, dir, false, &p, &err) < 0);
    assert_non_null(err);
    assert_non_null(strstr(err->msg, "is not inside a git work tree"));
    dbx_error_free(&err);
    dbx_paths_clear(&paths);
    free(dir);
}

static void test_record_roundtrip(void **state) {
    (void)state;
    char *dir = dbx_xasprintf("%s/st", tmpl);
    assert_int_equal(mkdir(dir, 0700), 0);
    struct dbx_project_rec r = {dbx_xstrdup("/r"), dbx_xstrdup("default"), dbx_xstrdup("/b.raw"),
                                42, dbx_xstrdup("abc")};
    dbx_error *err = NULL;
    assert_int_equal(dbx_project_rec_save(dir, &r, &err), 0);
    struct dbx_project_rec l = {0};
    assert_int_equal(dbx_project_rec_load(dir, &l, &err), 0);
    assert_string_equal(l.root, "/r");
    assert_string_equal(l.image, "default");
    assert_int_equal(l.created, 42);
    assert_string_equal(l.setup, "abc");
    dbx_project_rec_clear(&l);
    /* a record from before [setup] (no "setup") loads with setup "" */
    test_sh("printf '{\"root\":\"/a\",\"image\":\"x\",\"base\":\"y\",\"created\":1}' > "
            "%s/project.json",
            dir);
    assert_int_equal(dbx_project_rec_load(dir, &l, &err), 0);
    assert_string_equal(l.setup, "");
    dbx_project_rec_clear(&l);
    /* duplicate keys and unknown keys are refused */
    test_sh(
        "printf '{\"root\":\"/a\",\"root\":\"/b\",\"image\":\"x\",\"base\":\"y\",\"created\":1}' > "
        "%s/project.json",
        dir);
    assert_true(dbx_project_rec_load(dir, &l, &err) < 0);
    dbx_error_free(&err);
    test_sh("printf '{\"root\":\"/a\",\"image\":\"x\",\"base\":\"y\",\"created\":1,\"z\":2}' > "
            "%s/project.json",
            dir);
    assert_true(dbx_project_rec_load(dir, &l, &err) < 0);
    dbx_error_free(&err);
    /* no temp files left behind */
    test_sh("test $(ls -A %s | wc -l) -eq 1", dir);
    dbx_project_rec_clear(&r);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_find_root_from_subdir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_worktree_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outside_worktree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_roundtrip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

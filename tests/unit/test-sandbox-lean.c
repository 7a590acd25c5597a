/* Unit tests: the lean client's project discovery (dbx_project_find_lean): it finds what
 * dbx_project_find finds (same root, cwd, id, dirs) for a known project, through nested repos
 * and symlinked directories, and hands every other case to the full devbox: a new project, a
 * `.git` file, no work tree, a directory that does not resolve, GIT_* variables. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "helpers.h"
#include "sandbox/sandbox-internal.h"
#include "sandbox/sandbox.h"

static char tmpl[64];
static struct dbx_paths paths;

static int setup(void **state) {
    snprintf(tmpl, sizeof(tmpl), "/tmp/dbx-unit-XXXXXX");
    assert_non_null(mkdtemp(tmpl));
    char *home = dbx_xasprintf("%s/home", tmpl);
    setenv("DEVBOX_HOME", home, 1);
    free(home);
    dbx_error *err = NULL;
    assert_int_equal(dbx_paths_init(&paths, &err), 0);
    (void)state;
    return 0;
}

static int teardown(void **state) {
    dbx_paths_clear(&paths);
    test_sh("rm -rf '%s'", tmpl);
    (void)state;
    return 0;
}

/* Make the project at root known to devbox (a record, as the first start writes). */
static void know(const char *root) {
    struct dbx_project p = {.root = dbx_xstrdup(root)};
    dbx_project_fill(&paths, &p);
    test_sh("mkdir -p '%s' && echo '{}' > '%s/project.json'", p.state_dir, p.state_dir);
    dbx_project_clear(&p);
}

/* The lean answer for dir equals dbx_project_find's; returns the lean root (freed by caller). */
static char *lean_matches_full(const char *dir) {
    struct dbx_project l = {0}, f = {0};
    const char *why = NULL;
    assert_int_equal(dbx_project_find_lean(&paths, dir, &l, &why), 0);
    assert_null(why);
    dbx_error *err = NULL;
    assert_int_equal(dbx_project_find(&paths, dir, false, &f, &err), 0);
    assert_string_equal(l.root, f.root);
    assert_string_equal(l.cwd, f.cwd);
    assert_string_equal(l.id, f.id);
    assert_string_equal(l.state_dir, f.state_dir);
    assert_string_equal(l.data_dir, f.data_dir);
    assert_string_equal(l.run_dir, f.run_dir);
    char *root = dbx_xstrdup(l.root);
    dbx_project_clear(&l);
    dbx_project_clear(&f);
    return root;
}

static const char *lean_why(const char *dir) {
    struct dbx_project l = {0};
    const char *why = NULL;
    assert_int_equal(dbx_project_find_lean(&paths, dir, &l, &why), -1);
    assert_non_null(why);
    assert_null(l.root); /* nothing half-set */
    return why;
}

static void test_known_and_new(void **state) {
    (void)state;
    test_sh("mkdir -p %s/repo/a/b && git init -q %s/repo", tmpl, tmpl);
    char *root = dbx_xasprintf("%s/repo", tmpl), *sub = dbx_xasprintf("%s/repo/a/b", tmpl);
    /* new to devbox: libgit2 must confirm it, so the full devbox */
    assert_string_equal(lean_why(sub), "new project");
    know(root);
    char *got = lean_matches_full(sub);
    assert_string_equal(got, root);
    free(got);
    free(root);
    free(sub);
}

static void test_nested_repos(void **state) {
    (void)state;
    test_sh("mkdir -p %s/outer/inner/src && git init -q %s/outer && git init -q %s/outer/inner",
            tmpl, tmpl, tmpl);
    char *outer = dbx_xasprintf("%s/outer", tmpl), *inner = dbx_xasprintf("%s/outer/inner", tmpl);
    char *src = dbx_xasprintf("%s/src", inner);
    know(outer);
    /* the nearest .git is inner's, which devbox does not know: outer's record does not count */
    assert_string_equal(lean_why(src), "new project");
    know(inner);
    char *got = lean_matches_full(src);
    assert_string_equal(got, inner);
    free(got);
    got = lean_matches_full(outer);
    assert_string_equal(got, outer);
    free(got);
    free(outer);
    free(inner);
    free(src);
}

static void test_gitfile(void **state) {
    (void)state;
    /* a worktree's (or submodule's) .git is a file naming the real git dir */
    test_sh("mkdir -p %s/main %s/wt/d && git init -q %s/main && "
            "echo 'gitdir: %s/main/.git' > %s/wt/.git",
            tmpl, tmpl, tmpl, tmpl, tmpl);
    char *wt = dbx_xasprintf("%s/wt", tmpl), *d = dbx_xasprintf("%s/wt/d", tmpl);
    know(wt);
    assert_string_equal(lean_why(d), ".git is a file");
    free(wt);
    free(d);
}

static void test_symlinked_cwd(void **state) {
    (void)state;
    test_sh("mkdir -p %s/real/repo/x && git init -q %s/real/repo && ln -s real %s/link && "
            "ln -s repo/x %s/real/shortcut",
            tmpl, tmpl, tmpl, tmpl);
    char *root = dbx_xasprintf("%s/real/repo", tmpl);
    know(root);
    /* the identity is the canonical path, however the user got there */
    char *via_link = dbx_xasprintf("%s/link/repo/x", tmpl);
    char *got = lean_matches_full(via_link);
    assert_string_equal(got, root);
    free(got);
    char *via_short = dbx_xasprintf("%s/link/shortcut", tmpl);
    got = lean_matches_full(via_short);
    assert_string_equal(got, root);
    free(got);
    /* a symlink named .git marks no work tree (dbx_project_find's walk: lstat): the walk goes
     * past it, and finds nothing above */
    test_sh("mkdir -p %s/fake/y && ln -s %s/real/repo/.git %s/fake/.git", tmpl, tmpl, tmpl);
    char *fake = dbx_xasprintf("%s/fake/y", tmpl);
    assert_string_equal(lean_why(fake), "no .git above the directory");
    free(fake);
    free(via_short);
    free(via_link);
    free(root);
}

static void test_no_worktree_or_dir(void **state) {
    (void)state;
    test_sh("mkdir -p %s/plain && touch %s/file", tmpl, tmpl);
    char *plain = dbx_xasprintf("%s/plain", tmpl), *missing = dbx_xasprintf("%s/nope", tmpl);
    char *file = dbx_xasprintf("%s/file", tmpl);
    /* /tmp has no .git above it on a sane machine; the full devbox words the error */
    assert_string_equal(lean_why(plain), "no .git above the directory");
    assert_string_equal(lean_why(missing), "no such directory");
    assert_string_equal(lean_why(file), "no such directory");
    free(plain);
    free(missing);
    free(file);
}

static void test_git_env(void **state) {
    (void)state;
    test_sh("mkdir -p %s/repo && git init -q %s/repo", tmpl, tmpl);
    char *root = dbx_xasprintf("%s/repo", tmpl);
    know(root);
    char *got = lean_matches_full(root);
    free(got);
    static const char *const vars[] = {"GIT_DIR", "GIT_WORK_TREE", "GIT_CEILING_DIRECTORIES",
                                       "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_COMMON_DIR"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(vars); i++) {
        setenv(vars[i], "", 1); /* set at all, even empty */
        assert_string_equal(lean_why(root), vars[i]);
        unsetenv(vars[i]);
    }
    /* variables that do not move discovery keep the lean path */
    setenv("GIT_EDITOR", "vi", 1);
    got = lean_matches_full(root);
    free(got);
    unsetenv("GIT_EDITOR");
    free(root);
}

/* What a supervisor of another devbox build answers (a frame of the previous protocol version)
 * reads as one line that says so and what to do. */
static void test_other_build(void **state) {
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    uint8_t hdr[DBX_FRAME_HDR] = {DBX_PROTO_VERSION - 1, DBX_MSG_ERROR};
    assert_int_equal(write(sv[1], hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
    close(sv[1]);
    struct dbx_frame_hdr h;
    uint8_t *p = NULL;
    dbx_error *err = NULL;
    assert_true(dbx_read_frame(sv[0], &h, &p, &err) < 0);
    assert_null(p);
    assert_non_null(err);
    char *want = dbx_xasprintf("this box was started by another devbox build (its supervisor "
                               "speaks protocol %u, this devbox %u): 'devbox stop' stops it, and "
                               "the next command starts it again",
                               DBX_PROTO_VERSION - 1, DBX_PROTO_VERSION);
    assert_string_equal(err->msg, want);
    free(want);
    dbx_error_free(&err);
    close(sv[0]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_build),
        cmocka_unit_test_setup_teardown(test_known_and_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_repos, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gitfile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinked_cwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_worktree_or_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_git_env, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

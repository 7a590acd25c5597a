/* tests/unit/test-mounts-nested.c: the walk that finds repositories nested in the work tree
 * (mounts-nested.c), the `.git` name the guard refuses, and a linked worktree's repository
 * (mounts-worktree.c).  Plain files in a temporary
 * directory; no privileges needed. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <grp.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mounts/mounts-internal.h"

#include "tests/unit/helpers.h"

static char top[64];

static void put(const char *rel, const char *content) {
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", top, rel);
    for (char *s = p + strlen(top) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        (void)mkdir(p, 0755);
        *s = '/';
    }
    if (!content) {
        assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
        return;
    }
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* A git directory as git's own check sees one: HEAD and objects/. */
static void gitdir(const char *rel) {
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/HEAD", rel);
    put(p, "ref: refs/heads/main\n");
    snprintf(p, sizeof(p), "%s/objects", rel);
    put(p, NULL);
}

static int setup(void **state) {
    snprintf(top, sizeof(top), "/tmp/test-nested-XXXXXX");
    assert_non_null(mkdtemp(top));
    gitdir(".git");
    gitdir(".git/modules/sub");
    return 0;
}

static int teardown(void **state) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static bool has(char **v, const char *s) {
    for (size_t i = 0; v && v[i]; i++)
        if (!strcmp(v[i], s)) return true;
    return false;
}

static void test_finds_nested(void **state) {
    gitdir("vendor/foo/.git");
    gitdir("vendor/foo/.git/deep/.git"); /* inside a git directory: not walked */
    put("sub/.git", "gitdir: ../.git/modules/sub\n");
    gitdir("store/wt.git");
    put("wt/.git", "gitdir: ../store/wt.git\r\n");
    char abs[PATH_MAX];
    snprintf(abs, sizeof(abs), "gitdir: %s/store/wt.git\n", top);
    put("a/b/wt2/.git", abs);
    put("out/.git", "gitdir: /nonexistent/elsewhere.git\n");
    put("junk/.git", "not a gitfile\n");
    put("copy/sub/.git", "gitdir: ../.git/modules/sub\n"); /* a work tree copied without .git */
    /* a linked worktree of the top: its git directory has no objects/ of its own and lies
     * below the read-only worktrees/ */
    put(".git/worktrees/lw/HEAD", "ref: refs/heads/lw\n");
    snprintf(abs, sizeof(abs), "gitdir: %s/.git/worktrees/lw\n", top);
    put("lw/.git", abs);
    struct mounts_nested n = {0};
    dbx_error *err = NULL;
    int r = mounts_nested_find(top, &n, &err);
    if (r < 0) fail_msg("%s", err->msg);
    assert_true(has(n.gitdirs, "vendor/foo/.git"));
    assert_true(has(n.gitdirs, "store/wt.git"));
    assert_true(has(n.gitdirs, ".git/modules/sub"));
    assert_false(has(n.gitdirs, "vendor/foo/.git/deep/.git"));
    assert_false(has(n.gitdirs, ".git"));
    assert_int_equal(dbx_strv_len(n.gitdirs), 3);
    assert_true(has(n.gitfiles, "sub/.git"));
    assert_true(has(n.gitfiles, "wt/.git"));
    assert_true(has(n.gitfiles, "a/b/wt2/.git"));
    assert_true(has(n.gitfiles, "out/.git"));
    assert_true(has(n.gitfiles, "junk/.git"));
    assert_true(has(n.gitfiles, "copy/sub/.git"));
    assert_true(has(n.gitfiles, "lw/.git"));
    assert_true(n.entries > 10);
    mounts_nested_free(&n);
}

static void expect_fail(int code, const char *needle) {
    struct mounts_nested n = {0};
    dbx_error *err = NULL;
    assert_true(mounts_nested_find(top, &n, &err) < 0);
    assert_int_equal(err->code, code);
    if (!strstr(err->msg, needle)) fail_msg("'%s' does not say '%s'", err->msg, needle);
    dbx_error_free(&err);
    assert_null(n.gitdirs);
}

static void test_refuses_symlink(void **state) {
    char p[PATH_MAX];
    put("x/y", NULL);
    snprintf(p, sizeof(p), "%s/x/y/.git", top);
    assert_int_equal(symlink("../../store", p), 0);
    expect_fail(ELOOP, "'x/y/.git' is a symbolic link");
}

static void test_refuses_target_box_could_make(void **state) {
    put("x/.git", "gitdir: ../plain\n"); /* missing, the box could create it */
    expect_fail(ENOENT, "'x/.git' names 'plain'");
}

static void test_refuses_target_not_git(void **state) {
    put("plain/file", "x");
    put("x/.git", "gitdir: ../plain\n");
    expect_fail(ENOENT, "which is not a git directory");
}

static void test_refuses_link_on_the_way(void **state) {
    char p[PATH_MAX];
    gitdir("store/r.git");
    snprintf(p, sizeof(p), "%s/lnk", top);
    assert_int_equal(symlink("store", p), 0);
    put("x/.git", "gitdir: ../lnk/r.git\n");
    expect_fail(ELOOP, "symbolic link");
    /* `lnk/..` is the link's target's parent for the kernel, not the top */
    put("x/.git", "gitdir: ../lnk/../store/r.git\n");
    expect_fail(ELOOP, "'lnk'");
}

static void test_target_under_readonly(void **state) {
    /* below the read-only modules/ of .git: the box cannot create it */
    put("x/.git", "gitdir: ../.git/modules/gone\n");
    struct mounts_nested n = {0};
    dbx_error *err = NULL;
    int r = mounts_nested_find(top, &n, &err);
    if (r < 0) fail_msg("%s", err->msg);
    assert_true(has(n.gitfiles, "x/.git"));
    mounts_nested_free(&n);
}

static void test_caps(void **state) {
    for (int i = 0; i < 5; i++) {
        char p[64];
        snprintf(p, sizeof(p), "r%d/.git", i);
        gitdir(p);
    }
    put("d1/d2/d3/d4/f", "x");
    struct mounts_nested n = {0};
    dbx_error *err = NULL;
    struct mounts_nested_caps caps = {.entries = 1000, .depth = 16, .found = 4};
    assert_true(mounts_nested_find_caps(top, &caps, &n, &err) < 0);
    assert_int_equal(err->code, E2BIG);
    assert_non_null(strstr(err->msg, "more than 4 nested git directories"));
    dbx_error_free(&err);
    err = NULL;
    caps = (struct mounts_nested_caps){.entries = 5, .depth = 16, .found = 100};
    assert_true(mounts_nested_find_caps(top, &caps, &n, &err) < 0);
    assert_non_null(strstr(err->msg, "more than 5 files and directories"));
    dbx_error_free(&err);
    err = NULL;
    caps = (struct mounts_nested_caps){.entries = 1000, .depth = 3, .found = 100};
    assert_true(mounts_nested_find_caps(top, &caps, &n, &err) < 0);
    assert_non_null(strstr(err->msg, "'d1/d2/d3/d4' is more than 3 directories deep"));
    dbx_error_free(&err);
    err = NULL;
    caps = (struct mounts_nested_caps){.entries = 1000, .depth = 4, .found = 5};
    assert_int_equal(mounts_nested_find_caps(top, &caps, &n, &err), 0);
    assert_int_equal(dbx_strv_len(n.gitdirs), 5);
    mounts_nested_free(&n);
}

/* A nested git directory the user cannot write (someone else's clone in the workspace) cannot
 * take the empty directories of the rule; the box cannot create them either (its user is the
 * user, its other ids are nobody's on the host): the start must not fail on it. */
static void test_prepare_unwritable(void **state) {
    if (geteuid() != 0) skip_because("needs root (switches to uid 65534)");
    static const char *const ph[] = {".git/branches",    ".git/hooks",   ".git/info",
                                     ".git/modules",     ".git/remotes", ".git/worktrees",
                                     ".git/objects/info"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ph); i++)
        put(ph[i], NULL);
    gitdir("vendor/foo/.git");
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/.git", top);
    assert_int_equal(chown(p, 65534, 65534), 0);
    assert_int_equal(chmod(top, 0755), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
            _exit(3);
        struct mounts_nested n = {0};
        dbx_error *err = NULL;
        if (mounts_nested_find(top, &n, &err) < 0) {
            fprintf(stderr, "find: %s\n", err->msg);
            _exit(1);
        }
        if (mounts_git_prepare(top, &n, &err) < 0) {
            fprintf(stderr, "prepare: %s\n", err->msg);
            _exit(2);
        }
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_dotgit_name(void **state) {
    static const char *const yes[] = {".git",      ".GIT",  ".Git",    "a/.git",
                                      "/x/y/.gIt", ".git/", "a/.git//"};
    static const char *const no[] = {"git", ".git2", "x.git", ".gitignore", ".git/x", "..git", ""};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(yes); i++)
        if (!mounts_name_is_dotgit(yes[i])) fail_msg("'%s' not refused", yes[i]);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(no); i++)
        if (mounts_name_is_dotgit(no[i])) fail_msg("'%s' refused", no[i]);
}

/* ---- issue 13: a linked worktree's repository (mounts-worktree.c) ---- */

/* main/.git (a git directory), worktrees wt (at top/wt) and other. */
static void make_layout(void) {
    put("main/.git/HEAD", "ref: refs/heads/main\n");
    put("main/.git/objects", NULL);
    put("main/.git/config", "");
    char g[PATH_MAX];
    snprintf(g, sizeof(g), "gitdir: %s/main/.git/worktrees/wt\n", top);
    put("wt/.git", g);
    put("main/.git/worktrees/wt/HEAD", "ref: refs/heads/side\n");
    put("main/.git/worktrees/wt/commondir", "../..\n");
    snprintf(g, sizeof(g), "%s/wt/.git\n", top);
    put("main/.git/worktrees/wt/gitdir", g);
    put("main/.git/worktrees/other/HEAD", "x\n");
}

static int find_in(const char *rel, struct mounts_worktree *w, char **ret_msg) {
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", top, rel);
    dbx_error *err = NULL;
    int r = mounts_worktree_find(p, w, &err);
    if (r < 0) {
        assert_non_null(err);
        *ret_msg = dbx_xstrdup(err->msg);
        dbx_error_free(&err);
    }
    return r;
}

static void test_worktree(void **state) {
    (void)state;
    make_layout();
    struct mounts_worktree w = {0};
    char *msg = NULL;
    assert_int_equal(find_in("wt", &w, &msg), 0);
    char want[PATH_MAX];
    snprintf(want, sizeof(want), "%s/main/.git", top);
    assert_string_equal(w.common, want);
    assert_string_equal(w.name, "wt");
    assert_true(has(w.protected, "hooks"));
    assert_true(has(w.protected, "config"));
    assert_true(has(w.protected, "info/attributes"));
    assert_true(has(w.protected, "worktrees/wt/commondir"));
    assert_true(has(w.protected, "worktrees/wt/gitdir"));
    assert_true(has(w.protected, "worktrees/wt/config.worktree"));
    /* worktrees/ read-only whole (no entry the host adds later is the box's to write), this
     * worktree's own entry writable again below it */
    assert_true(has(w.protected, "worktrees"));
    assert_false(has(w.protected, "worktrees/other"));
    assert_false(has(w.protected, "worktrees/wt"));
    assert_int_equal(dbx_strv_len(w.writable), 1);
    assert_string_equal(w.writable[0], "worktrees/wt");
    dbx_error *err = NULL;
    assert_int_equal(mounts_protected_validate((const char *const *)w.protected, &err), 0);
    assert_int_equal(mounts_protected_validate((const char *const *)w.writable, &err), 0);
    mounts_worktree_clear(&w);

    /* not a worktree: a directory `.git`, none, a separate git dir without commondir */
    assert_int_equal(find_in("main", &w, &msg), 0);
    assert_null(w.common);
    put("plain/README", "x");
    assert_int_equal(find_in("plain", &w, &msg), 0);
    assert_null(w.common);
    put("sepgit/HEAD", "x\n");
    put("sepgit/objects", NULL);
    snprintf(want, sizeof(want), "gitdir: %s/sepgit\n", top);
    put("sep/.git", want);
    assert_int_equal(find_in("sep", &w, &msg), 0);
    assert_null(w.common);

    /* a relative gitdir is relative to the worktree; the entry's own gitdir may be relative
     * too (git's worktree.useRelativePaths), to the entry */
    put("rel/.git", "gitdir: ../main/.git/worktrees/rel\n");
    put("main/.git/worktrees/rel/HEAD", "ref: refs/heads/rel\n");
    put("main/.git/worktrees/rel/commondir", "../..\n");
    put("main/.git/worktrees/rel/gitdir", "../../../../rel/.git\n");
    assert_int_equal(find_in("rel", &w, &msg), 0);
    assert_string_equal(w.name, "rel");
    mounts_worktree_clear(&w);

    /* a `.git` file naming another worktree's entry (a tree made to borrow the user's
     * repository), or an entry whose gitdir is missing: refused, naming the entry */
    snprintf(want, sizeof(want), "gitdir: %s/main/.git/worktrees/wt\n", top);
    put("borrow/.git", want);
    assert_int_equal(find_in("borrow", &w, &msg), -EINVAL);
    assert_non_null(strstr(msg, "not this worktree"));
    assert_non_null(strstr(msg, "git worktree repair"));
    free(msg);
    msg = NULL;
    assert_null(w.common);
    put("main/.git/worktrees/nogd/HEAD", "ref: refs/heads/x\n");
    put("main/.git/worktrees/nogd/commondir", "../..\n");
    snprintf(want, sizeof(want), "gitdir: %s/main/.git/worktrees/nogd\n", top);
    put("nogd/.git", want);
    assert_int_equal(find_in("nogd", &w, &msg), -ENOENT);
    assert_non_null(strstr(msg, "gitdir"));
    assert_non_null(strstr(msg, "git worktree repair"));
    free(msg);
    msg = NULL;

    /* odd chains: each an error naming the .git file */
    static const struct {
        const char *gitfile, *commondir, *want;
    } bad[] = {
        {"nonsense\n", NULL, "does not start with 'gitdir: '"},
        {"gitdir: \n", NULL, "not one path"},
        {"gitdir: /../..\n", NULL, "not a usable path"},
        {"gitdir: TOP/missing\n", NULL, "No such file"},
        {"gitdir: TOP/link/worktrees/wt\n", NULL, "symbolic link"},
        {"gitdir: TOP/main/.git/worktrees/bad\n", "../../../../plain\n", "is not a git directory"},
        {"gitdir: TOP/main/.git/worktrees/bad\n", "/\n", "is not a git directory"},
        {"gitdir: TOP/main/.git/worktrees/bad\n", "../../../../sepgit\n", "is not an entry of"},
        {"gitdir: TOP/main/.git/worktrees/bad\n", "../../../../link\n", "symbolic link"},
    };
    char l[PATH_MAX];
    snprintf(l, sizeof(l), "%s/link", top);
    snprintf(want, sizeof(want), "%s/main/.git", top);
    assert_int_equal(symlink(want, l), 0);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        char text[512], *at = strstr(bad[i].gitfile, "TOP");
        if (at)
            snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - bad[i].gitfile), bad[i].gitfile,
                     top, at + 3);
        else
            snprintf(text, sizeof(text), "%s", bad[i].gitfile);
        put("odd/.git", text);
        if (bad[i].commondir) {
            put("main/.git/worktrees/bad/HEAD", "x\n");
            put("main/.git/worktrees/bad/commondir", bad[i].commondir);
        }
        msg = NULL;
        assert_int_equal(find_in("odd", &w, &msg) < 0, 1);
        assert_null(w.common);
        if (!strstr(msg, bad[i].want) || !strstr(msg, "/odd/.git'"))
            fail_msg("case %zu: '%s', want '%s'", i, msg, bad[i].want);
        free(msg);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_finds_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worktree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_target_box_could_make, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_target_not_git, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_link_on_the_way, setup, teardown),
        cmocka_unit_test_setup_teardown(test_target_under_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_unwritable, setup, teardown),
        cmocka_unit_test(test_dotgit_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

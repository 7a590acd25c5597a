/* tests/unit/test-mounts-worktree.c: a linked worktree's repository (mounts-worktree.c): the
 * chain `.git` -> gitdir -> commondir, read without following links, and the paths protected
 * in the shared git directory.  Files in a temporary directory; no privileges needed. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
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
    test_write_file(p, content, 0644);
}

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

static bool has(char **v, const char *s) {
    for (size_t i = 0; v && v[i]; i++)
        if (!strcmp(v[i], s)) return true;
    return false;
}

static void test_worktree(void **state) {
    (void)state;
    snprintf(top, sizeof(top), "/tmp/dbx-wt.XXXXXX");
    assert_non_null(mkdtemp(top));
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
    assert_true(has(w.protected, "worktrees/other"));
    assert_false(has(w.protected, "worktrees"));
    assert_false(has(w.protected, "worktrees/wt"));
    dbx_error *err = NULL;
    assert_int_equal(mounts_protected_validate((const char *const *)w.protected, &err), 0);
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

    /* a relative gitdir is relative to the worktree */
    put("rel/.git", "gitdir: ../main/.git/worktrees/wt\n");
    assert_int_equal(find_in("rel", &w, &msg), 0);
    assert_string_equal(w.name, "wt");
    mounts_worktree_clear(&w);

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
    test_rm_tree(top);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worktree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

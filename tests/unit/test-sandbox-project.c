/* Unit tests: project discovery (libgit2), project records, and cleaning up: which projects
 * are gone, rm PATH|ID lookup, removal that never follows a symlink, what gc selects. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "helpers.h"
#include "sandbox/sandbox-internal.h"
#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <sys/file.h>
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

/* root of the project found from tmpl/rel (NULL when none), for the tests below */
static char *root_from(const char *rel) {
    struct dbx_paths paths = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_paths_init(&paths, &err), 0);
    _cleanup_free_ char *dir = dbx_xasprintf("%s/%s", tmpl, rel);
    struct dbx_project p = {0};
    assert_int_equal(dbx_project_locate(&paths, dir, &p, NULL, &err), 0);
    char *root = TAKE_PTR(p.root);
    dbx_project_clear(&p);
    dbx_paths_clear(&paths);
    return root;
}

static void assert_root(const char *rel, const char *want_rel) {
    _cleanup_free_ char *root = root_from(rel);
    _cleanup_free_ char *want = dbx_xasprintf("%s/%s", tmpl, want_rel);
    assert_string_equal(root, want);
}

/* A submodule's checkout belongs to its superproject (up to the outermost, and in a linked
 * worktree of it to that worktree): its `.git` file names a directory in the `modules/` of the
 * work tree above.  Any other `.git` file keeps its own project: a linked worktree inside the
 * main one, a separate git directory, a file naming another repository's modules. */
static void test_submodule_root(void **state) {
    (void)state;
    /* the layout `git submodule add` makes (written by hand: no file:// clone needed) */
    test_sh(
        "cd %s && mkdir -p top/.git/modules/a/modules/b top/a/b/src top/a/x && "
        "printf 'gitdir: ../.git/modules/a\n' > top/a/.git && "
        "printf 'gitdir: ../../.git/modules/a/modules/b\r\n' > top/a/b/.git && "
        "mkdir -p top/.git/worktrees/wt top/wt top/.git/sep top/sep other/.git/modules/o top/o && "
        "printf 'gitdir: %s/top/.git/worktrees/wt\n' > top/wt/.git && "
        "printf 'gitdir: ../.git/sep\n' > top/sep/.git && "
        "printf 'gitdir: ../../other/.git/modules/o\n' > top/o/.git && "
        "mkdir -p top/.git/modules/f top/f && mkfifo top/f/.git && "
        "mkdir -p top/.git/modules/abs top/abs && "
        "printf 'gitdir: %s/top/x/../.git/modules/abs\n' > top/abs/.git && "
        "mkdir -p top/.git/modules/m top/m && printf 'gitdir: ../.git/modules/\n' > top/m/.git",
        tmpl, tmpl, tmpl);
    assert_root("top/a/x", "top");
    assert_root("top/a", "top");
    assert_root("top/a/b/src", "top"); /* a nested submodule: the outermost superproject */
    assert_root("top/abs", "top");     /* an absolute gitdir (older git), `..` in it */
    assert_root("top/wt", "top/wt");   /* a linked worktree inside the main one */
    assert_root("top/sep", "top/sep"); /* a separate git directory, not in modules/ */
    assert_root("top/o", "top/o");     /* another repository's modules */
    assert_root("top/f", "top");       /* a FIFO is no `.git` at all */
    assert_root("top/m", "top/m");     /* modules/ itself is no submodule's directory */

    /* in a linked worktree, its submodules' git directories are in its entry's modules/ */
    test_sh("cd %s && mkdir -p top/.git/worktrees/wt/modules/s top/wt/s/d && "
            "printf 'gitdir: ../../.git/worktrees/wt/modules/s\n' > top/wt/s/.git",
            tmpl);
    assert_root("top/wt/s/d", "top/wt");

    /* a FIFO where a `.git` file was read (the box may swap one in) is refused at once, not
     * waited on for a writer */
    _cleanup_free_ char *fifo = dbx_xasprintf("%s/top/f/.git", tmpl);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    _cleanup_error_ dbx_error *err = NULL;
    assert_true(dbx_read_file_at(AT_FDCWD, fifo, 4096, &buf, &len, &err) < 0);
    assert_non_null(strstr(err->msg, "not a regular file"));
}

/* HOME set to tmpl/rel for a test; the previous value (or NULL) for home_restore. */
static char *home_set(const char *rel) {
    const char *old = getenv("HOME");
    char *saved = old ? dbx_xstrdup(old) : NULL;
    _cleanup_free_ char *home = dbx_xasprintf("%s/%s", tmpl, rel);
    setenv("HOME", home, 1);
    return saved;
}

static void home_restore(char *saved) {
    if (saved)
        setenv("HOME", saved, 1);
    else
        unsetenv("HOME");
    free(saved);
}

/* links holds exactly the n paths of want, in any order. */
static void assert_links(char *const *links, const char *const *want, size_t n) {
    _cleanup_free_ char *all = dbx_strv_join(links, " ");
    if (dbx_strv_len(links) != n) fail_msg("got '%s'", all);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; links[j]; j++)
            found |= !strcmp(links[j], want[i]);
        if (!found) fail_msg("'%s' missing from '%s'", want[i], all);
    }
}

/* The workspace is never "/", the home or what holds it, or in or holding devbox's own dirs. */
static void test_share_check(void **state) {
    (void)state;
    test_sh("mkdir -p %s/u/repo %s/u/x", tmpl, tmpl);
    char *saved = home_set("u");
    struct dbx_paths paths = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_paths_init(&paths, &err), 0);
    static const struct {
        const char *rel;  /* below tmpl; NULL: "/" */
        const char *want; /* in the error, or NULL: allowed */
    } cases[] = {
        {NULL, "the whole host"},
        {"u", "is your home directory"},
        {"", "holds your home directory"},
        {"u/repo", NULL},
        {"u/x", NULL},
        {"home", "holds devbox's own directory"},
        {"home/config", "is in devbox's own directory"},
        {"home/state/projects", "is in devbox's own directory"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *root = !cases[i].rel     ? dbx_xstrdup("/")
                                    : cases[i].rel[0] ? dbx_xasprintf("%s/%s", tmpl, cases[i].rel)
                                                      : dbx_xstrdup(tmpl);
        int r = dbx_project_share_check(&paths, root, &err);
        if (!cases[i].want) {
            assert_int_equal(r, 0);
            continue;
        }
        if (r != -1) fail_msg("case %zu (%s): allowed", i, cases[i].rel ? cases[i].rel : "/");
        assert_non_null(strstr(err->msg, cases[i].want));
        dbx_error_free(&err);
        err = NULL;
    }
    dbx_paths_clear(&paths);
    home_restore(saved);
}

/* What the home links to inside the work tree: its dotfiles' and its config directories' links
 * that land below the root, once each, as the host looks them up there: a missing file (to be
 * guarded) and a link the box made (to be refused) as written, never followed; not a shortcut
 * to the root itself, not a plain name at the home's top, not a link elsewhere, not a `..`
 * inside the workspace; at most max. */
static void test_home_links(void **state) {
    (void)state;
    test_sh("cd %s && mkdir -p u/.config u/.ssh u/.local/bin u/bin repo/nvim repo/scripts other && "
            "touch repo/.rc repo/scripts/tool repo/t2 repo/sshcfg repo/plain other/x && "
            "ln -s ../repo/.rc u/.rc && ln -s %s/repo/.rc u/.rc2 && "
            "ln -s ../../repo/nvim u/.config/nvim && ln -s ../../other/x u/.config/x && "
            "ln -s ../repo u/.whole && ln -s ../repo/plain u/plain && "
            "ln -s ../../repo/sshcfg u/.ssh/config && ln -s ../../../repo/t2 u/.local/bin/t2 && "
            "ln -s ../../repo/scripts/tool u/bin/tool && ln -s ../repo/missing u/.dangling && "
            "ln -s .rc repo/boxlink && ln -s ../repo/boxlink u/.via && "
            "ln -s ../repo/nvim/../.rc u/.dotdot && ln -s ../repo/./nvim/./x u/.dot",
            tmpl, tmpl);
    _cleanup_free_ char *root = dbx_xasprintf("%s/repo", tmpl);
    char *saved = home_set("u");
    bool full = true;
    _cleanup_strv_ char **links = dbx_project_home_links(root, 100, &full);
    assert_false(full);
    static const char *const want[] = {".rc",          "nvim",    "sshcfg",  "t2",
                                       "scripts/tool", "missing", "boxlink", "nvim/x"};
    assert_links(links, want, DBX_ARRAY_SIZE(want));
    _cleanup_strv_ char **two = dbx_project_home_links(root, 2, &full);
    assert_int_equal(dbx_strv_len(two), 2);
    assert_true(full);
    _cleanup_strv_ char **none = dbx_project_home_links("/", 100, &full);
    assert_int_equal(dbx_strv_len(none), 0);
    home_restore(saved);
}

/* A config directory that is itself a link into the work tree (GNU stow's folding: ~/bin ->
 * ~/dotfiles/bin) is protected whole and not scanned; a link through something the box made in
 * the work tree is taken as written there, never followed; a name with ".." ends the path at its
 * parent. */
static void test_home_links_folded(void **state) {
    (void)state;
    test_sh("cd %s && mkdir -p u/.local repo/bin repo/lb repo/sub2/deep repo/d && "
            "touch repo/bin/tool repo/lb/t repo/notes..txt repo/d/a..b && "
            "ln -s ../repo/bin u/bin && ln -s ../../repo/lb u/.local/bin && "
            "ln -s x repo/bin/.evil && ln -s sub2 repo/sub && ln -s repo/sub/deep mid && "
            "ln -s ../mid/file u/.x && ln -s ../repo/notes..txt u/.notes && "
            "ln -s ../repo/d/a..b u/.ab",
            tmpl);
    _cleanup_free_ char *root = dbx_xasprintf("%s/repo", tmpl);
    char *saved = home_set("u");
    bool full = true;
    _cleanup_strv_ char **links = dbx_project_home_links(root, 100, &full);
    static const char *const want[] = {"bin", "lb", "sub/deep/file", "d"};
    assert_links(links, want, DBX_ARRAY_SIZE(want));
    home_restore(saved);
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

/* ---- cleaning up (issue 13): gone, rm PATH|ID, removal that never follows a symlink, gc ---- */

static struct dbx_paths gc_paths_storage;
static struct dbx_paths *gp = &gc_paths_storage;

static int gc_setup(void **state) {
    setup(state);
    dbx_error *err = NULL;
    assert_int_equal(dbx_paths_init(gp, &err), 0);
    return 0;
}

static int gc_teardown(void **state) {
    dbx_paths_clear(gp);
    return teardown(state);
}

/* A project devbox knows: repo tmpl/NAME (git init), its dirs, a record and a 64 KiB disk.
 * Returns it (caller clears). */
static struct dbx_project make_project(const char *name) {
    test_sh("mkdir -p %s/%s && git init -q %s/%s", tmpl, name, tmpl, name);
    char *dir = dbx_xasprintf("%s/%s", tmpl, name);
    struct dbx_project p = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_project_find(gp, dir, false, &p, &err), 0);
    assert_int_equal(dbx_project_dirs(&p, &err), 0);
    struct dbx_project_rec r = {p.root, (char *)"default", (char *)"/b.raw", 1, (char *)""};
    assert_int_equal(dbx_project_rec_save(p.state_dir, &r, &err), 0);
    test_sh("head -c 65536 /dev/urandom > %s/disk.qcow2 && echo log > %s/console.log", p.data_dir,
            p.state_dir);
    free(dir);
    return p;
}

static bool exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_gone(void **state) {
    (void)state;
    struct dbx_project p = make_project("live");
    assert_false(dbx_project_gone(p.root));
    test_sh("rm -rf %s/.git", p.root);
    assert_true(dbx_project_gone(p.root)); /* no longer a repository */
    test_sh("rm -rf %s && touch %s", p.root, p.root);
    assert_true(dbx_project_gone(p.root)); /* a file where the tree was */
    test_sh("rm -f %s", p.root);
    assert_true(dbx_project_gone(p.root));
    char *below = dbx_xasprintf("%s/x/y", p.root);
    assert_true(dbx_project_gone(below));
    free(below);
    dbx_project_clear(&p);
}

static void test_lookup(void **state) {
    (void)state;
    struct dbx_project a = make_project("a");
    struct dbx_project b = make_project("b");
    test_sh("mkdir -p %s/a/sub/dir", tmpl);
    dbx_error *err = NULL;
    struct dbx_project q = {0};
    /* by id, and by a unique prefix */
    assert_int_equal(dbx_project_lookup(gp, a.id, &q, &err), 0);
    assert_string_equal(q.root, a.root);
    dbx_project_clear(&q);
    char pre[9];
    snprintf(pre, sizeof(pre), "%.8s", b.id);
    assert_int_equal(dbx_project_lookup(gp, pre, &q, &err), 0);
    assert_string_equal(q.root, b.root);
    dbx_project_clear(&q);
    /* a path below a root names no project, existing or not (rm of a mistyped path must not
     * remove the project around it) */
    char *sub = dbx_xasprintf("%s/sub/dir", a.root);
    assert_true(dbx_project_lookup(gp, sub, &q, &err) < 0);
    assert_non_null(strstr(err->msg, "lies inside project"));
    dbx_error_free(&err);
    test_sh("rm -rf %s", a.root);
    assert_true(dbx_project_lookup(gp, sub, &q, &err) < 0);
    assert_non_null(strstr(err->msg, "lies inside project"));
    dbx_error_free(&err);
    /* the deleted root itself, with "." and ".." folded, and relative to the cwd */
    char *dotted = dbx_xasprintf("%s/b/../a/./", tmpl);
    assert_int_equal(dbx_project_lookup(gp, dotted, &q, &err), 0);
    assert_string_equal(q.root, a.root);
    dbx_project_clear(&q);
    char *cwd = getcwd(NULL, 0);
    assert_int_equal(chdir(tmpl), 0);
    assert_int_equal(dbx_project_lookup(gp, "a", &q, &err), 0);
    assert_string_equal(q.root, a.root);
    dbx_project_clear(&q);
    /* an id prefix that is also a path here is ambiguous */
    char pre4[5];
    snprintf(pre4, sizeof(pre4), "%.4s", a.id);
    test_sh("mkdir %s/%s", tmpl, pre4);
    assert_true(dbx_project_lookup(gp, pre4, &q, &err) < 0);
    assert_non_null(strstr(err->msg, "both a project id and a path"));
    dbx_error_free(&err);
    assert_int_equal(chdir(cwd), 0);
    free(cwd);
    /* not a project */
    assert_true(dbx_project_lookup(gp, "/nonexistent/x", &q, &err) < 0);
    assert_non_null(strstr(err->msg, "not a project devbox knows"));
    dbx_error_free(&err);
    assert_true(dbx_project_lookup(gp, "", &q, &err) < 0);
    dbx_error_free(&err);
    free(sub);
    free(dotted);
    dbx_project_clear(&a);
    dbx_project_clear(&b);
}

static void test_remove_no_follow(void **state) {
    (void)state;
    struct dbx_project p = make_project("p");
    /* symlinks in the state dir to a precious file and dir outside: removed, not followed */
    test_sh("mkdir -p %s/precious && echo keep > %s/precious/f && ln -s %s/precious %s/link && "
            "ln -s %s/precious/f %s/flink && mkdir -p %s/procs && echo x > %s/procs/1.log && "
            "echo e > %s/events.jsonl",
            tmpl, tmpl, tmpl, p.state_dir, tmpl, p.state_dir, p.state_dir, p.state_dir,
            p.state_dir);
    dbx_error *err = NULL;
    uint64_t freed = 0;
    assert_int_equal(dbx_project_remove(gp, &p, false, &freed, &err), 0);
    assert_true(freed >= 65536);
    assert_false(exists(p.state_dir));
    assert_false(exists(p.data_dir));
    assert_false(exists(p.run_dir));
    test_sh("test \"$(cat %s/precious/f)\" = keep", tmpl);
    assert_true(exists(p.root)); /* the workspace is never touched */
    /* a name with a slash, or "..", is refused */
    assert_true(dbx_rm_tree_at(AT_FDCWD, "..", false, &freed, &err) < 0);
    dbx_error_free(&err);
    assert_true(dbx_rm_tree_at(AT_FDCWD, "a/b", false, &freed, &err) < 0);
    dbx_error_free(&err);
    dbx_project_clear(&p);
}

/* Hold the project's alive lock as its supervisor would: the box runs. */
static int hold_alive(const struct dbx_project *p) {
    char *lp = dbx_xasprintf("%s/%s", p->run_dir, DBX_ALIVE_LOCK);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lp);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    return fd;
}

static void test_busy_refused(void **state) {
    (void)state;
    struct dbx_project p = make_project("p");
    int fd = hold_alive(&p);
    assert_true(dbx_project_busy(&p));
    dbx_error *err = NULL;
    assert_true(dbx_project_remove(gp, &p, false, NULL, &err) < 0);
    assert_non_null(strstr(err->msg, "is running"));
    dbx_error_free(&err);
    assert_true(exists(p.data_dir));
    close(fd);
    assert_false(dbx_project_busy(&p));
    dbx_project_clear(&p);
}

static void test_gc_selects(void **state) {
    (void)state;
    struct dbx_project gone = make_project("gone");
    struct dbx_project live = make_project("live");
    struct dbx_project busy = make_project("busy");
    test_sh("rm -rf %s %s", gone.root, busy.root);
    int fd = hold_alive(&busy);
    /* a record-less dir from an hour ago (a failed first start), one from now (starting) */
    test_sh("mkdir -p %s/projects/00000000000000aa %s/projects/00000000000000bb && "
            "touch -d '2 hours ago' %s/projects/00000000000000aa",
            gp->state, gp->state, gp->state);
    /* temp files of a crashed writer: old ones go, a fresh one stays */
    test_sh("echo x > %s/.project.json.tmp.123 && touch -d '2 hours ago' "
            "%s/.project.json.tmp.123 && echo y > %s/disk.qcow2.tmp.9 && "
            "echo z > %s/disk.qcow2.tmp.99 && touch -d '2 hours ago' %s/disk.qcow2.tmp.99",
            live.state_dir, live.state_dir, live.data_dir, live.data_dir, live.data_dir);
    /* a stopped box's run dir (a stale socket file) */
    test_sh("touch %s/sock", live.run_dir);

    struct dbx_gc_report r = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_gc(gp, true, &r, &err), 0);
    assert_int_equal(dbx_strv_len(r.projects), 1);
    assert_string_equal(r.projects[0], gone.root);
    assert_true(r.freed >= 65536);
    assert_false(r.images_counted);
    dbx_gc_report_clear(&r);
    /* the dry run removed nothing */
    assert_true(exists(gone.data_dir) && exists(gone.state_dir));
    char *tmp = dbx_xasprintf("%s/.project.json.tmp.123", live.state_dir);
    assert_true(exists(tmp));
    assert_true(exists(live.run_dir));
    test_sh("! test -e %s/projects/00000000000000aa/start.lock", gp->state); /* nothing made */

    assert_int_equal(dbx_gc(gp, false, &r, &err), 0);
    assert_int_equal(dbx_strv_len(r.projects), 1);
    assert_string_equal(r.projects[0], gone.root);
    /* aa, live's run dir, two old temp files */
    assert_int_equal(r.leftovers, 4);
    assert_true(r.images_counted);
    dbx_gc_report_clear(&r);
    assert_false(exists(gone.data_dir) || exists(gone.state_dir) || exists(gone.run_dir));
    assert_true(exists(busy.data_dir) && exists(busy.state_dir)); /* running: kept */
    assert_true(exists(live.data_dir) && exists(live.state_dir));
    assert_false(exists(live.run_dir));
    assert_false(exists(tmp));
    test_sh("test -e %s/disk.qcow2.tmp.9 && ! test -e %s/disk.qcow2.tmp.99", live.data_dir,
            live.data_dir);
    test_sh("! test -e %s/projects/00000000000000aa && test -d %s/projects/00000000000000bb",
            gp->state, gp->state);
    /* once stopped, the busy one goes too */
    close(fd);
    assert_int_equal(dbx_gc(gp, false, &r, &err), 0);
    assert_int_equal(dbx_strv_len(r.projects), 1);
    assert_string_equal(r.projects[0], busy.root);
    dbx_gc_report_clear(&r);
    assert_false(exists(busy.data_dir) || exists(busy.state_dir));
    free(tmp);
    dbx_project_clear(&gone);
    dbx_project_clear(&live);
    dbx_project_clear(&busy);
}

/* A repository whose folder is gone but whose parent is empty or missing may sit on a disk that
 * is not mounted now: gc keeps it (and says so); a deliberately deleted one (its parent holds
 * other things) goes. */
static void test_gc_keeps_unmounted(void **state) {
    (void)state;
    struct dbx_project usb = make_project("mnt/usb/repo");
    struct dbx_project media = make_project("media/disk/repo");
    struct dbx_project point = make_project("srv/point");
    test_sh("rm -rf %s %s/media/disk", usb.root, tmpl); /* mnt/usb stays, empty */
    test_sh("rm -rf %s/.git", point.root); /* an empty mount point is all that is left */
    struct dbx_gc_report r = {0};
    dbx_error *err = NULL;
    assert_int_equal(dbx_gc(gp, false, &r, &err), 0);
    assert_int_equal(dbx_strv_len(r.projects), 0);
    assert_int_equal(dbx_strv_len(r.kept), 3);
    dbx_gc_report_clear(&r);
    assert_true(exists(point.data_dir));
    assert_true(exists(usb.data_dir) && exists(usb.state_dir));
    assert_true(exists(media.data_dir) && exists(media.state_dir));
    /* once the folder above holds something else, the repository was deleted: gc removes it */
    test_sh("mkdir %s/mnt/usb/other", tmpl);
    assert_int_equal(dbx_gc(gp, false, &r, &err), 0);
    assert_int_equal(dbx_strv_len(r.projects), 1);
    assert_string_equal(r.projects[0], usb.root);
    assert_int_equal(dbx_strv_len(r.kept), 2);
    dbx_gc_report_clear(&r);
    assert_false(exists(usb.data_dir) || exists(usb.state_dir));
    dbx_project_clear(&point);
    dbx_project_clear(&usb);
    dbx_project_clear(&media);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_find_root_from_subdir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_worktree_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submodule_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_share_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_home_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_home_links_folded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outside_worktree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone, gc_setup, gc_teardown),
        cmocka_unit_test_setup_teardown(test_lookup, gc_setup, gc_teardown),
        cmocka_unit_test_setup_teardown(test_remove_no_follow, gc_setup, gc_teardown),
        cmocka_unit_test_setup_teardown(test_busy_refused, gc_setup, gc_teardown),
        cmocka_unit_test_setup_teardown(test_gc_selects, gc_setup, gc_teardown),
        cmocka_unit_test_setup_teardown(test_gc_keeps_unmounted, gc_setup, gc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test-profiles-mounts.c: [mounts] in a repo profile: parsing (~, relative and
 * absolute host paths, :ro / :rw), resolving (symlinks outside the repo followed, inside it
 * refused), every refusal at file:line, inheritance (replace, `none`), widenings and trust,
 * and `profile show` (profiles/).  Each test gets a base directory holding home/ (its $HOME),
 * outer/repo (the repo) and state/ (devbox's own, as the caller names it).
 * Run from the source tree root (`make unit`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "profiles/profiles.h"

#include "tests/unit/helpers.h"

struct fx {
    struct repo r; /* r.dir: base/outer/repo */
    char base[1024], home[2048], state[2048], outer[2048];
    char *old_home;
};

static int fx_setup(void **state) {
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->base, sizeof(f->base), "%s/dbx-mnt-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(f->base));
    char *real = realpath(f->base, NULL); /* comparisons are on canonical paths */
    assert_non_null(real);
    snprintf(f->base, sizeof(f->base), "%s", real);
    free(real);
    snprintf(f->home, sizeof(f->home), "%s/home", f->base);
    snprintf(f->state, sizeof(f->state), "%s/state", f->base);
    snprintf(f->outer, sizeof(f->outer), "%s/outer", f->base);
    snprintf(f->r.dir, sizeof(f->r.dir), "%s/repo", f->outer);
    const char *dirs[] = {f->home, f->state, f->outer, f->r.dir};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(dirs); i++)
        assert_int_equal(mkdir(dirs[i], 0700), 0);
    f->r.fd = open(f->r.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(f->r.fd >= 0);
    const char *h = getenv("HOME");
    f->old_home = h ? dbx_xstrdup(h) : NULL;
    setenv("HOME", f->home, 1);
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    struct fx *f = *state;
    if (f->old_home)
        setenv("HOME", f->old_home, 1);
    else
        unsetenv("HOME");
    free(f->old_home);
    close(f->r.fd);
    test_rm_tree(f->base);
    free(f);
    return 0;
}

static void mkdirs(const char *dir, const char *rel) {
    _cleanup_free_ char *p = dbx_xasprintf("%s/%s", dir, rel);
    test_sh("mkdir -p '%s'", p);
}

/* devbox.ini = text, loaded with user u; the error (caller frees) or NULL. */
static char *load(struct fx *f, const char *text, const struct profile_user *u,
                  struct profile *ret) {
    test_write_at(f->r.fd, PROFILE_FILE, text);
    return test_profile_load(&f->r, u, ret);
}

static void assert_contains(const char *text, const char *want) {
    if (!text || !strstr(text, want))
        fail_msg("got:\n%s\nwant (part):\n%s", text ? text : "(nothing)", want);
}

/* devbox.ini = text must fail with an error containing want. */
static void refused(struct fx *f, const char *text, const struct profile_user *u,
                    const char *want) {
    _cleanup_free_ char *m = load(f, text, u, NULL);
    if (!m) fail_msg("loaded:\n%s", text);
    assert_contains(m, want);
    assert_null(strchr(m, '\n')); /* one problem, one line */
}

static void test_mounts_parse(void **state) {
    struct fx *f = *state;
    mkdirs(f->r.dir, "data/ref");
    mkdirs(f->home, "datasets");
    mkdirs(f->base, "abs");
    _cleanup_free_ char *ini = dbx_xasprintf("[mounts]\n"
                                             "./data//ref/ = /ref\n"
                                             "~/datasets = /data:ro  ; read-only\n"
                                             "%s/abs = /srv//abs/:rw\n",
                                             f->base);
    struct profile p;
    _cleanup_free_ char *m = load(f, ini, NULL, &p);
    assert_null(m);
    assert_int_equal(p.nmounts, 3);
    _cleanup_free_ char *h0 = dbx_xasprintf("%s/data/ref", f->r.dir);
    _cleanup_free_ char *h1 = dbx_xasprintf("%s/datasets", f->home);
    _cleanup_free_ char *h2 = dbx_xasprintf("%s/abs", f->base);
    assert_string_equal(p.mounts[0].host, h0);
    assert_string_equal(p.mounts[0].spec, "data/ref");
    assert_string_equal(p.mounts[0].guest, "/ref");
    assert_false(p.mounts[0].rw);
    assert_true(p.mounts[0].in_repo);
    assert_string_equal(p.mounts[0].file, "devbox.ini");
    assert_int_equal(p.mounts[0].line, 2);
    assert_string_equal(p.mounts[1].host, h1);
    assert_string_equal(p.mounts[1].spec, "~/datasets");
    assert_string_equal(p.mounts[1].guest, "/data");
    assert_false(p.mounts[1].rw);
    assert_false(p.mounts[1].in_repo);
    assert_string_equal(p.mounts[2].host, h2);
    assert_string_equal(p.mounts[2].guest, "/srv/abs");
    assert_true(p.mounts[2].rw);
    assert_int_equal(p.mounts[2].line, 4);
    assert_string_equal(profile_origin_of(&p, "mounts.~/datasets"), "devbox.ini:3");
    profile_clear(&p);

    /* a symlink outside the repo is the user's: followed, the real folder is shared */
    _cleanup_free_ char *link = dbx_xasprintf("%s/ds-link", f->home);
    assert_int_equal(symlink("datasets", link), 0);
    assert_null(load(f, "[mounts]\n~/ds-link = /data\n", NULL, &p));
    assert_string_equal(p.mounts[0].host, h1);
    profile_clear(&p);
}

static void test_mounts_syntax_errors(void **state) {
    struct fx *f = *state;
    mkdirs(f->r.dir, "data");
    refused(f, "[mounts]\n../x = /x\n", NULL, "devbox.ini:2: [mounts] '../x': host path:");
    refused(f, "[mounts]\n/a/../b = /x\n", NULL, "must not contain '..'");
    refused(f, "[mounts]\n~root/x = /x\n", NULL, "only '~/' (your home) is expanded");
    refused(f, "[mounts]\n. = /x\n", NULL, "not the repo itself");
    refused(f, "[mounts]\ndata = /x:rx\n", NULL, "the mode after ':' must be 'ro' or 'rw'");
    refused(f, "[mounts]\ndata = x\n", NULL, "guest path 'x': not an absolute path");
    refused(f, "[mounts]\ndata = :rw\n", NULL, "needs a guest path");
    refused(f, "[mounts]\ndata = /a/../b\n", NULL, "guest path '/a/../b': must not contain '..'");
    refused(f, "[mounts]\ndata = /x\ndata = /y\n", NULL, "duplicate key 'data' in [mounts]");
    refused(f, "[mounts]\nnope = /x\n", NULL, "devbox.ini:2: [mounts] 'nope':");
    refused(f, "[mounts]\nnope = /x\n", NULL, "No such file or directory");
    test_write_at(f->r.fd, "file", "x");
    refused(f, "[mounts]\nfile = /x\n", NULL, "is not a directory");
    /* more than 16 */
    _cleanup_free_ char *ini = dbx_xstrdup("[mounts]\n");
    for (unsigned i = 0; i <= PROFILE_MAX_MOUNTS; i++) {
        _cleanup_free_ char *d = dbx_xasprintf("d%u", i);
        mkdirs(f->r.dir, d);
        char *t = dbx_xasprintf("%s%s = /m/%u\n", ini, d, i);
        free(ini);
        ini = t;
    }
    refused(f, ini, NULL, "devbox.ini:18: [mounts] 'd16': more than 16 mounts");
    /* only a repo profile shares folders */
    struct profile_user u;
    _cleanup_free_ char *cm = test_config_load(&f->r, "[defaults]\nmounts.data = /x\n", &u);
    assert_contains(cm, "config.ini:2: [defaults] 'mounts.data': only a repo profile shares");
    struct profile p;
    assert_null(load(f, "", NULL, &p));
    dbx_error *err = NULL;
    assert_true(profile_set(&p, "mounts.data", "/x", "flag", &err) < 0);
    assert_contains(err->msg, "flag: mounts.data: only a repo profile shares folders");
    dbx_error_free(&err);
    profile_clear(&p);
}

static void test_mounts_host_refused(void **state) {
    struct fx *f = *state;
    mkdirs(f->r.dir, ".git/hooks");
    mkdirs(f->r.dir, ".git/objects");
    mkdirs(f->r.dir, "src");
    mkdirs(f->state, "projects");
    refused(f, "[mounts]\n/ = /host\n", NULL, "devbox.ini:2: [mounts] '/': '/' is the whole host");
    refused(f, "[mounts]\n~ = /home-of-host\n", NULL, "is your home directory itself");
    refused(f, "[mounts]\n~/ = /h\n", NULL, "is your home directory itself");
    _cleanup_free_ char *up = dbx_xasprintf("[mounts]\n%s = /b\n", f->base);
    refused(f, up, NULL, "holds your home directory");
    /* devbox's own state, inside or holding it */
    struct profile_user u = {0};
    u.private_dirs = dbx_strv_push(NULL, f->state);
    _cleanup_free_ char *in = dbx_xasprintf("[mounts]\n%s/projects = /p\n", f->state);
    refused(f, in, &u, "is in devbox's own state");
    _cleanup_free_ char *st = dbx_xasprintf("[mounts]\n%s = /p\n", f->state);
    refused(f, st, &u, "is in devbox's own state");
    mkdirs(f->base, "holder/inner");
    dbx_strv_free(u.private_dirs);
    _cleanup_free_ char *inner = dbx_xasprintf("%s/holder/inner", f->base);
    u.private_dirs = dbx_strv_push(NULL, inner);
    _cleanup_free_ char *holder = dbx_xasprintf("[mounts]\n%s/holder = /p\n", f->base);
    refused(f, holder, &u, "holds devbox's own state");
    profile_user_clear(&u);
    /* the config directory profile_user_load read is devbox's own too */
    struct profile_user cu;
    assert_null(test_config_load(&f->r, "", &cu));
    assert_non_null(cu.private_dirs);
    assert_string_equal(cu.private_dirs[0], f->r.dir);
    profile_user_clear(&cu);
    /* the repo: itself, writable from above, writable protected paths */
    _cleanup_free_ char *self = dbx_xasprintf("[mounts]\n%s = /r\n", f->r.dir);
    refused(f, self, NULL, "is the repo itself");
    _cleanup_free_ char *outer_rw = dbx_xasprintf("[mounts]\n%s = /o:rw\n", f->outer);
    refused(f, outer_rw, NULL, "holds the repo");
    refused(f, "[mounts]\n.git = /g:rw\n", NULL,
            "'.git' holds the protected path '.git/hooks': it cannot be shared writable");
    refused(f, "[mounts]\n.git/hooks = /g:rw\n", NULL, "is inside the protected path '.git/hooks'");
    refused(f, "[mounts]\nsrc = /s:rw\n[workspace]\nprotect = src/gen\n", NULL,
            "holds the protected path 'src/gen'");
    /* read-only, the same folders are fine */
    struct profile p;
    _cleanup_free_ char *ok =
        dbx_xasprintf("[mounts]\n%s = /o\n.git = /g\n.git/hooks = /h\n", f->outer);
    _cleanup_free_ char *m = load(f, ok, NULL, &p);
    assert_null(m);
    profile_clear(&p);
    assert_null(load(f, "[mounts]\n.git/objects = /objects:rw\n", NULL, &p));
    profile_clear(&p);
}

static void test_mounts_symlinks(void **state) {
    struct fx *f = *state;
    mkdirs(f->r.dir, "real");
    mkdirs(f->home, "secret");
    _cleanup_free_ char *l1 = dbx_xasprintf("%s/link", f->r.dir);
    assert_int_equal(symlink("real", l1), 0);
    refused(f, "[mounts]\nlink = /l\n", NULL, "is a symlink inside the repo");
    /* through a link outside the repo that leads back in, then a link inside */
    _cleanup_free_ char *l2 = dbx_xasprintf("%s/to-repo", f->home);
    assert_int_equal(symlink(f->r.dir, l2), 0);
    _cleanup_free_ char *l3 = dbx_xasprintf("%s/esc", f->r.dir);
    assert_int_equal(symlink(f->home, l3), 0);
    _cleanup_free_ char *esc = dbx_xasprintf("'%s' is a symlink inside the repo", l3);
    refused(f, "[mounts]\n~/to-repo/esc/secret = /s\n", NULL, esc);
    refused(f, "[mounts]\n~/to-repo/esc/secret = /s\n", NULL, "is a symlink inside the repo");
    /* a link outside the repo to the root or the home is judged by where it leads */
    _cleanup_free_ char *l4 = dbx_xasprintf("%s/root", f->home);
    assert_int_equal(symlink("/", l4), 0);
    refused(f, "[mounts]\n~/root = /r\n", NULL, "'/' is the whole host");
    _cleanup_free_ char *l5 = dbx_xasprintf("%s/loop", f->home);
    assert_int_equal(symlink("loop", l5), 0);
    refused(f, "[mounts]\n~/loop = /r\n", NULL, "too many levels of symlinks");
    /* through a link outside, a folder inside the repo, no link inside: in the repo */
    struct profile p;
    assert_null(load(f, "[mounts]\n~/to-repo/real = /r\n", NULL, &p));
    _cleanup_free_ char *want = dbx_xasprintf("%s/real", f->r.dir);
    assert_string_equal(p.mounts[0].host, want);
    assert_true(p.mounts[0].in_repo);
    profile_clear(&p);
}

static void test_mounts_guest_refused(void **state) {
    struct fx *f = *state;
    mkdirs(f->r.dir, "a");
    mkdirs(f->r.dir, "b");
    static const char *const bad[] = {
        "/",      "/etc", "/usr/local/x", "/proc/1", "/dev/shm", "/tmp/x",  "/var/cache", "/lib64",
        "/run/u", "/sys", "/root/.cache", "/boot",   "/bin",     "/sbin/x", "/home"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        _cleanup_free_ char *ini = dbx_xasprintf("[mounts]\na = %s\n", bad[i]);
        refused(f, ini, NULL, "devbox.ini:2: [mounts] 'a': guest path");
    }
    /* the workspace: its path, below it, above it */
    _cleanup_free_ char *ws = dbx_xasprintf("[mounts]\na = %s\n", f->r.dir);
    refused(f, ws, NULL, "is in the workspace");
    _cleanup_free_ char *in = dbx_xasprintf("[mounts]\na = %s/sub\n", f->r.dir);
    refused(f, in, NULL, "is in the workspace");
    _cleanup_free_ char *up = dbx_xasprintf("[mounts]\na = %s\n", f->outer);
    refused(f, up, NULL, "would hide the workspace");
    /* between lines */
    refused(f, "[mounts]\na = /data\nb = /data:rw\n", NULL,
            "devbox.ini:3: [mounts] 'b': guest path '/data' is also the guest path of 'a' "
            "(devbox.ini:2)");
    refused(f, "[mounts]\na = /data\nb = /data/b\n", NULL, "nest");
    refused(f, "[mounts]\na = /data/a\nb = /data\n", NULL, "nest");
    _cleanup_free_ char *twice = dbx_xasprintf("[mounts]\na = /x\n%s/a = /y\n", f->r.dir);
    refused(f, twice, NULL, "is also shared by 'a' (devbox.ini:2)");
    struct profile p;
    assert_null(load(f, "[mounts]\na = /home/dev/a\nb = /opt/b\n", NULL, &p));
    profile_clear(&p);
}

static void test_mounts_inherit(void **state) {
    struct fx *f = *state;
    mkdirs(f->r.dir, "a");
    mkdirs(f->r.dir, "b");
    test_write_at(f->r.fd, "base.ini", "[mounts]\na = /a\nb = /b\n");
    struct profile p;
    assert_null(load(f, "extends = ./base.ini\n[mounts]\na = none\nb = /bb:rw\n", NULL, &p));
    assert_int_equal(p.nmounts, 1);
    assert_string_equal(p.mounts[0].spec, "b");
    assert_string_equal(p.mounts[0].guest, "/bb");
    assert_true(p.mounts[0].rw);
    assert_string_equal(p.mounts[0].file, "devbox.ini");
    assert_int_equal(p.mounts[0].line, 4);
    assert_string_equal(profile_origin_of(&p, "mounts.a"), "devbox.ini:3");
    profile_clear(&p);
    assert_null(load(f, "extends = ./base.ini\n", NULL, &p));
    assert_int_equal(p.nmounts, 2);
    assert_string_equal(p.mounts[1].file, "base.ini");
    assert_int_equal(p.mounts[1].line, 3);
    profile_clear(&p);
    /* one folder written twice in one file */
    refused(f, "[mounts]\na = /x\n./a/ = /y\n", NULL,
            "devbox.ini:3: [mounts] './a/': 'a' is already shared on line 2");
}

static void test_mounts_trust(void **state) {
    struct fx *f = *state;
    mkdirs(f->r.dir, "out");
    mkdirs(f->home, "ds");
    struct profile p;
    assert_null(load(f, "[mounts]\nout = /ro\n", NULL, &p));
    _cleanup_strv_ char **w0 = profile_widenings(&p, NULL);
    assert_int_equal(dbx_strv_len(w0), 0); /* read-only inside the repo: no wider than it */
    profile_clear(&p);
    assert_null(load(f, "[mounts]\nout = /out:rw\n~/ds = /ds\n", NULL, &p));
    _cleanup_strv_ char **w = profile_widenings(&p, NULL);
    assert_int_equal(dbx_strv_len(w), 2);
    _cleanup_free_ char *w1 = dbx_xasprintf("mount '%s/out' at '/out' read-write", f->r.dir);
    _cleanup_free_ char *w2 = dbx_xasprintf("mount '%s/ds' (outside the repo) at '/ds'", f->home);
    assert_string_equal(w[0], w1);
    assert_string_equal(w[1], w2);
    /* trusted by the profile's hash, as every widening */
    bool trusted = true;
    assert_int_equal(profile_trust_check(f->state, f->r.dir, p.hash, &trusted, NULL), 0);
    assert_false(trusted);
    assert_int_equal(profile_trust_add(f->state, f->r.dir, p.hash, NULL), 0);
    assert_int_equal(profile_trust_check(f->state, f->r.dir, p.hash, &trusted, NULL), 0);
    assert_true(trusted);
    profile_clear(&p);
}

static void test_mounts_show(void **state) {
    struct fx *f = *state;
    mkdirs(f->r.dir, "ref");
    mkdirs(f->home, "ds");
    struct profile p;
    assert_null(load(f, "[mounts]\nref = /ref\n~/ds = /data:rw\n", NULL, &p));
    _cleanup_free_ char *text = profile_to_text(&p);
    assert_contains(text, "\n[mounts]\nref = /ref:ro ");
    _cleanup_free_ char *o1 = dbx_xasprintf("; devbox.ini:2, host %s/ref\n", f->r.dir);
    assert_contains(text, o1);
    _cleanup_free_ char *o2 = dbx_xasprintf("; devbox.ini:3, host %s/ds\n", f->home);
    assert_contains(text, "~/ds = /data:rw ");
    assert_contains(text, o2);
    _cleanup_free_ char *js = profile_to_json(&p);
    json_error_t je;
    json_t *j = json_loads(js, 0, &je);
    assert_non_null(j);
    json_t *m = json_object_get(j, "mounts");
    assert_int_equal(json_array_size(m), 2);
    json_t *m1 = json_array_get(m, 1);
    assert_string_equal(json_string_value(json_object_get(m1, "path")), "~/ds");
    _cleanup_free_ char *h = dbx_xasprintf("%s/ds", f->home);
    assert_string_equal(json_string_value(json_object_get(m1, "host")), h);
    assert_string_equal(json_string_value(json_object_get(m1, "guest")), "/data");
    assert_string_equal(json_string_value(json_object_get(m1, "mode")), "rw");
    assert_false(json_is_true(json_object_get(m1, "in_repo")));
    assert_string_equal(json_string_value(json_object_get(m1, "from")), "devbox.ini:3");
    json_decref(j);
    profile_clear(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mounts_parse, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mounts_syntax_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mounts_host_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mounts_symlinks, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mounts_guest_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mounts_inherit, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mounts_trust, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mounts_show, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests: derived disks ([setup]): the key, commit and lookup, the listing, which projects
 * use which disk (through a derived disk to its image's base), prune, and the lock that prune
 * may unlink.  Disks are real qcow2 files made with qemu-img (no VM). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "helpers.h"
#include "sandbox/sandbox-internal.h"
#include "sandbox/sandbox.h"
#include "vm/vm.h"

#include <sys/file.h>
#include <sys/stat.h>

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

static void test_key(void **state) {
    (void)state;
    char *a[] = {"apt-get update", "apt-get install -y gcc", NULL};
    char *b[] = {"apt-get update", "apt-get install -y gcc", NULL};
    char *c[] = {"apt-get updateapt-get install -y gcc", NULL};
    char *d[] = {"apt-get install -y gcc", "apt-get update", NULL};
    char k1[65], k2[65], k3[65], k4[65], k5[65];
    dbx_derived_key("/x/bases/aaa.raw", a, NULL, k1);
    dbx_derived_key("/elsewhere/aaa.raw", b, NULL, k2); /* the base's name is its digest */
    dbx_derived_key("/x/bases/aaa.raw", c, NULL, k3);
    dbx_derived_key("/x/bases/aaa.raw", d, NULL, k4);
    dbx_derived_key("/x/bases/bbb.raw", a, NULL, k5);
    char k6[65], k7[65];
    char *net[] = {"network allowlist", "allow mirror.test", NULL};
    char *proj[] = {"network allowlist", "allow mirror.test", "workspace 0123", NULL};
    dbx_derived_key("/x/bases/aaa.raw", a, net, k6);
    dbx_derived_key("/x/bases/aaa.raw", a, proj, k7);
    assert_string_not_equal(k1, k6); /* what else shapes the result */
    assert_string_not_equal(k6, k7);
    assert_int_equal(strlen(k1), 64);
    assert_string_equal(k1, k2);
    assert_string_not_equal(k1, k3); /* lines are not just concatenated */
    assert_string_not_equal(k1, k4); /* order matters */
    assert_string_not_equal(k1, k5);
    char h[65];
    dbx_setup_hash(NULL, h);
    assert_string_equal(h, "");
    dbx_setup_hash(a, h);
    assert_int_equal(strlen(h), 64);
}

/* A base disk (raw, 64 MiB, sparse) and a derived disk committed from an overlay of it. */
static char *make_base(void) {
    char *base = dbx_xasprintf("%s/base.raw", tmpl);
    test_sh("truncate -s 64M '%s'", base);
    return base;
}

static void commit(const char *base, char **run, struct dbx_derived *ret) {
    dbx_error *err = NULL;
    char key[65];
    dbx_derived_key(base, run, NULL, key);
    int lock = dbx_derived_lock(&paths, key, true, &err);
    assert_true(lock >= 0);
    char *build = dbx_derived_build_path(&paths, key);
    if (vm_disk_create_overlay(base, build, 0, &err) < 0) fail_msg("%s", err->msg);
    *ret = (struct dbx_derived){.image = dbx_xstrdup("img"),
                                .base = dbx_xstrdup(base),
                                .built_for = dbx_xstrdup("/repo/a"),
                                .run = dbx_xcalloc(1, sizeof(char *))};
    memcpy(ret->key, key, 65);
    for (char **x = run; *x; x++)
        ret->run = dbx_strv_push(ret->run, *x);
    if (dbx_derived_commit(&paths, ret, build, &err) < 0) fail_msg("%s", err->msg);
    assert_int_equal(access(build, F_OK), -1); /* renamed */
    struct stat st;
    assert_int_equal(stat(ret->disk, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    free(build);
    close(lock);
}

/* A project whose disk is an overlay of `backing`. */
static void project(const char *name, const char *backing) {
    dbx_error *err = NULL;
    char *root = dbx_xasprintf("%s/%s", tmpl, name);
    test_sh("mkdir -p '%s' && git init -q '%s'", root, root);
    struct dbx_project p = {0};
    assert_int_equal(dbx_project_find(&paths, root, false, &p, &err), 0);
    assert_int_equal(dbx_project_dirs(&p, &err), 0);
    struct dbx_project_rec rec = {dbx_xstrdup(root), dbx_xstrdup("img"), dbx_xstrdup(backing), 1,
                                  dbx_xstrdup("")};
    assert_int_equal(dbx_project_rec_save(p.state_dir, &rec, &err), 0);
    dbx_project_rec_clear(&rec);
    dbx_project_clear(&p);
    free(root);
}

static void test_commit_get_list_prune(void **state) {
    (void)state;
    dbx_error *err = NULL;
    char *base = make_base();
    char *run[] = {"echo one", "echo two", NULL};
    struct dbx_derived d = {0}, g = {0};
    char missing[65];
    dbx_derived_key(base, (char *[]){"other", NULL}, NULL, missing);
    assert_int_equal(dbx_derived_get(&paths, missing, &g, &err), -ENOENT);
    assert_null(err);
    assert_int_equal(dbx_derived_get(&paths, "../../etc/passwd", &g, &err), -EINVAL);
    dbx_error_free(&err);

    commit(base, run, &d);
    assert_int_equal(dbx_derived_get(&paths, d.key, &g, &err), 0);
    assert_string_equal(g.disk, d.disk);
    assert_string_equal(g.base, base);
    assert_int_equal(dbx_strv_len(g.run), 2);
    assert_string_equal(g.run[1], "echo two");
    char key[65];
    assert_true(dbx_derived_is_disk(&paths, g.disk, key));
    assert_string_equal(key, d.key);
    assert_false(dbx_derived_is_disk(&paths, base, key));
    char *name = dbx_derived_name(&g);
    assert_true(strncmp(name, "img+setup-", 10) == 0);
    free(name);
    dbx_derived_clear(&g);

    /* an overlay of the derived disk, as a project's, and who uses what */
    project("p1", d.disk);
    char **u = dbx_image_users(&paths, d.disk);
    assert_int_equal(dbx_strv_len(u), 1);
    dbx_strv_free(u);
    u = dbx_image_users(&paths, base); /* through the derived disk */
    assert_int_equal(dbx_strv_len(u), 1);
    dbx_strv_free(u);

    /* setup --force: a second disk under the same key; the first stays while p1 uses it */
    struct dbx_derived d2 = {0};
    usleep(2000);
    commit(base, run, &d2);
    assert_string_not_equal(d.disk, d2.disk);
    struct dbx_derived *v = NULL;
    size_t n = 0;
    assert_int_equal(dbx_derived_list(&paths, &v, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].disk, d2.disk);
    dbx_derived_list_free(v, n);

    char **removed = NULL;
    uint64_t freed = 0;
    assert_int_equal(dbx_derived_prune(&paths, &removed, &freed, &err), 0);
    assert_int_equal(dbx_strv_len(removed), 1); /* d2: nobody uses it */
    dbx_strv_free(removed);
    assert_int_equal(access(d2.disk, F_OK), -1);
    assert_int_equal(access(d.disk, F_OK), 0);
    /* the record stays while a disk of its key does: it tells which base that disk needs */
    assert_int_equal(dbx_derived_get(&paths, d.key, &g, &err), -ENOENT);
    assert_int_equal(dbx_derived_load(&paths, d.key, &g, &err), 0);
    dbx_derived_clear(&g);
    u = dbx_image_users(&paths, base);
    assert_int_equal(dbx_strv_len(u), 1);
    dbx_strv_free(u);

    /* a build in progress (the key's lock held) is never pruned */
    char *ddir = dbx_derived_dir(&paths);
    char *lp = dbx_xasprintf("%s/%s.lock", ddir, d.key);
    free(ddir);
    test_sh("rm -rf '%s/p1'", tmpl);
    char *pdir = dbx_xasprintf("%s/projects", paths.state);
    test_sh("rm -rf '%s'", pdir);
    int lock = dbx_derived_lock(&paths, d.key, true, &err);
    assert_true(lock >= 0);
    assert_int_equal(dbx_derived_prune(&paths, &removed, &freed, &err), 0);
    assert_int_equal(dbx_strv_len(removed), 0);
    dbx_strv_free(removed);
    close(lock);
    assert_int_equal(dbx_derived_prune(&paths, &removed, &freed, &err), 0);
    assert_int_equal(dbx_strv_len(removed), 1);
    assert_true(freed > 0);
    dbx_strv_free(removed);
    assert_int_equal(access(d.disk, F_OK), -1);
    assert_int_equal(dbx_derived_load(&paths, d.key, &g, &err), -ENOENT); /* record gone */
    assert_int_equal(access(lp, F_OK), -1);                               /* and its lock */
    /* a lock taken again works on a fresh file */
    lock = dbx_derived_lock(&paths, d.key, true, &err);
    assert_true(lock >= 0);
    assert_int_equal(access(lp, F_OK), 0);
    close(lock);
    free(lp);
    free(pdir);
    dbx_derived_clear(&d);
    dbx_derived_clear(&d2);
    free(base);
}

/* A record that does not parse is not a derived disk: listing skips it, get says why. */
static void test_bad_record(void **state) {
    (void)state;
    dbx_error *err = NULL;
    char *dir = dbx_derived_dir(&paths);
    char key[65];
    memset(key, 'a', 64);
    key[64] = '\0';
    test_sh("mkdir -p '%s' && printf '{\"key\": 1}' > '%s/%s.json'", dir, dir, key);
    struct dbx_derived *v = NULL, g = {0};
    size_t n = 0;
    assert_int_equal(dbx_derived_list(&paths, &v, &n, &err), 0);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(dbx_derived_get(&paths, key, &g, &err), -EINVAL);
    assert_non_null(strstr(err->msg, ".json"));
    dbx_error_free(&err);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_get_list_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_record, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test-vm-devkernel.c: the devbox kernel's key, cache choice (root vs user, env), the
 * system cache's trust rule, the fragment-vs-.config check, kernel selection, and the build's
 * install path (lock, atomic rename, failure leaves nothing, older source versions' builds
 * removed) with the test knob that copies a file instead of compiling, and the initramfs files
 * a start keeps and removes.  The real compile runs in `devbox kernel build` (README). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/sha256.h"
#include "vm/vm-internal.h"

#include "tests/unit/helpers.h"

static char dir[] = "/tmp/test-vm-devkernel-XXXXXX";

static const char *const knobs[] = {"DEVBOX_KERNEL_CACHE",
                                    "DEVBOX_KERNEL_CONFIG",
                                    "DEVBOX_KERNEL_TEST_VMLINUX",
                                    "DEVBOX_KERNEL_TEST_VERSION",
                                    "DEVBOX_KERNEL_TEST_DELAY",
                                    "DEVBOX_KERNEL_VMLINUX",
                                    "XDG_CACHE_HOME"};

static int setup(void **state) {
    return mkdtemp(dir) ? 0 : -1;
}
static int teardown(void **state) {
    test_rm_tree(dir);
    return 0;
}
static int each(void **state) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(knobs); i++)
        unsetenv(knobs[i]);
    return 0;
}

static char *path_in(const char *name) {
    return dbx_xasprintf("%s/%s", dir, name);
}

/* ---- key ---------------------------------------------------------------------------------- */

static void test_key(void **state) {
    const char frag[] = "CONFIG_A=y\n";
    uint8_t md[32];
    char hex[65];
    dbx_sha256(frag, strlen(frag), md);
    dbx_sha256_hex(md, hex);
    _cleanup_free_ char *want = dbx_xasprintf("6.1.192-3-%.12s", hex);
    _cleanup_free_ char *k = vm_devkernel_key("6.1.192-3", frag, strlen(frag));
    assert_string_equal(k, want);
    /* another fragment or version: another key */
    _cleanup_free_ char *k2 = vm_devkernel_key("6.1.192-3", "CONFIG_A=n\n", 11);
    _cleanup_free_ char *k3 = vm_devkernel_key("6.1.193-1", frag, strlen(frag));
    assert_string_not_equal(k, k2);
    assert_string_not_equal(k, k3);
    assert_non_null(strstr(k3, "6.1.193-1-"));
    /* the version names a directory */
    static const char *const bad[] = {
        "",
        "../x",
        "a/b",
        "-1",
        ".1",
        "1 2",
        "1234567890123456789012345678901234567890123456789012345678901"
        "23456"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++)
        assert_null(vm_devkernel_key(bad[i], frag, strlen(frag)));
    _cleanup_free_ char *tilde = vm_devkernel_key("6.1.1~rc1+b2", frag, strlen(frag));
    assert_non_null(tilde);
}

/* ---- where the cache is -------------------------------------------------------------------- */

static void test_cache_dir_env(void **state) {
    setenv("DEVBOX_KERNEL_CACHE", "/srv/kc", 1);
    _cleanup_free_ char *d = NULL;
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_devkernel_cache_dir(&d, &err), 0);
    assert_string_equal(d, "/srv/kc");
    setenv("DEVBOX_KERNEL_CACHE", "rel/kc", 1);
    _cleanup_free_ char *d2 = NULL;
    assert_true(vm_devkernel_cache_dir(&d2, &err) < 0);
    assert_non_null(strstr(err->msg, "DEVBOX_KERNEL_CACHE 'rel/kc' is not an absolute path"));
    assert_null(d2);
}

/* As root the system cache; as a user XDG_CACHE_HOME (absolute only), else HOME.  The user
 * cases run in a child that gave up root. */
static void test_cache_dir_root_user(void **state) {
    _cleanup_free_ char *d = NULL;
    _cleanup_error_ dbx_error *err = NULL;
    if (geteuid() != 0) skip_because("needs root to check both the root and the user choice");
    assert_int_equal(vm_devkernel_cache_dir(&d, &err), 0);
    assert_string_equal(d, VM_DEVKERNEL_SYSTEM_CACHE);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) _exit(10);
        char *p = NULL;
        dbx_error *e = NULL;
        setenv("XDG_CACHE_HOME", "/x/cache", 1);
        setenv("HOME", "/home/u", 1);
        if (vm_devkernel_cache_dir(&p, &e) < 0 || strcmp(p, "/x/cache/devbox/kernel")) _exit(11);
        free(p);
        setenv("XDG_CACHE_HOME", "relative", 1); /* invalid per the XDG spec: ignored */
        if (vm_devkernel_cache_dir(&p, &e) < 0 || strcmp(p, "/home/u/.cache/devbox/kernel"))
            _exit(12);
        free(p);
        unsetenv("XDG_CACHE_HOME");
        unsetenv("HOME");
        if (vm_devkernel_cache_dir(&p, &e) == 0 || !strstr(e->msg, "HOME")) _exit(13);
        dbx_error_free(&e);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- trust in the system cache --------------------------------------------------------------- */

static void test_stat_trusted(void **state) {
    struct stat st = {.st_uid = 0, .st_mode = S_IFDIR | 0755};
    assert_true(vm_devkernel_stat_trusted(&st));
    st.st_mode = S_IFREG | 0644;
    assert_true(vm_devkernel_stat_trusted(&st));
    st.st_mode = S_IFDIR | 0775; /* group-writable */
    assert_false(vm_devkernel_stat_trusted(&st));
    st.st_mode = S_IFDIR | 0757; /* other-writable */
    assert_false(vm_devkernel_stat_trusted(&st));
    st.st_mode = S_IFDIR | 01777; /* /tmp */
    assert_false(vm_devkernel_stat_trusted(&st));
    st = (struct stat){.st_uid = 1000, .st_mode = S_IFREG | 0644}; /* a user's file */
    assert_false(vm_devkernel_stat_trusted(&st));
}

static void test_path_trusted(void **state) {
    struct stat st;
    assert_int_equal(lstat("/usr", &st), 0);
    assert_int_equal(vm_devkernel_path_trusted("/usr"), vm_devkernel_stat_trusted(&st));
    /* below /tmp (writable by all): never */
    _cleanup_free_ char *f = path_in("vmlinux");
    test_write_file(f, "x", 0644);
    assert_false(vm_devkernel_path_trusted(f));
    assert_false(vm_devkernel_path_trusted("relative/path"));
    assert_false(vm_devkernel_path_trusted("/nonexistent-devbox-path/vmlinux"));
    /* a symbolic link on the way is refused even to root's targets */
    if (lstat("/bin", &st) == 0 && S_ISLNK(st.st_mode))
        assert_false(vm_devkernel_path_trusted("/bin/sh"));
}

/* ---- the fragment against .config -------------------------------------------------------------
 */

static const char frag[] = "# comment\n"
                           "CONFIG_A=y\n"
                           "\n"
                           "CONFIG_LOCALVERSION=\"-devbox\"\n"
                           "  CONFIG_NR_CPUS=64  \n"
                           "CONFIG_MODULES=n\n"
                           "CONFIG_ACPI=n\n";

static void test_config_check_ok(void **state) {
    const char config[] = "#\n# Automatically generated file\n"
                          "CONFIG_A=y\n"
                          "CONFIG_AB=m\n"
                          "CONFIG_LOCALVERSION=\"-devbox\"\n"
                          "CONFIG_NR_CPUS=64\n"
                          "# CONFIG_MODULES is not set\n"; /* ACPI absent: fine for =n */
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_devkernel_config_check(frag, config, &err), 0);
}

static void test_config_check_dropped(void **state) {
    /* CONFIG_A dropped (only CONFIG_AB is there), NR_CPUS changed, MODULES turned on */
    const char config[] = "CONFIG_AB=y\n"
                          "CONFIG_LOCALVERSION=\"-devbox\"\n"
                          "CONFIG_NR_CPUS=8\n"
                          "CONFIG_MODULES=y\n";
    _cleanup_error_ dbx_error *err = NULL;
    assert_true(vm_devkernel_config_check(frag, config, &err) < 0);
    assert_non_null(strstr(err->msg, "fragment line 2 'CONFIG_A=y' did not take: .config does "
                                     "not have it"));
    assert_non_null(strstr(err->msg, "fragment line 5 'CONFIG_NR_CPUS=64' did not take: .config "
                                     "has 'CONFIG_NR_CPUS=8'"));
    assert_non_null(strstr(err->msg, "line 6 'CONFIG_MODULES=n' did not take: .config has "
                                     "'CONFIG_MODULES=y'"));
    assert_null(strstr(err->msg, "LOCALVERSION"));
    dbx_error_free(&err);
    const char unset[] = "# CONFIG_A is not set\n";
    assert_true(vm_devkernel_config_check("CONFIG_A=y\n", unset, &err) < 0);
    assert_non_null(strstr(err->msg, "has '# CONFIG_A is not set'"));
}

static void test_config_check_malformed(void **state) {
    static const char *const bad[] = {"A=y\n", "CONFIG_=y\n", "CONFIG_A\n", "CONFIG_A=\n",
                                      "CONFIG_A B=y\n"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        _cleanup_error_ dbx_error *err = NULL;
        assert_true(vm_devkernel_config_check(bad[i], "", &err) < 0);
        assert_non_null(strstr(err->msg, "fragment line 1"));
    }
}

/* ---- which kernel ------------------------------------------------------------------------------
 */

static void test_select(void **state) {
    struct {
        const char *env, *profile;
        bool ready;
        int want; /* kind, or -1: error */
    } cases[] = {
        {NULL, NULL, true, VM_KERNEL_DEVBOX},
        {NULL, NULL, false, VM_KERNEL_DEBIAN},
        {"", "auto", true, VM_KERNEL_DEVBOX},
        {NULL, "debian", true, VM_KERNEL_DEBIAN},
        {NULL, "devbox", true, VM_KERNEL_DEVBOX},
        {NULL, "devbox", false, -1},
        {"debian", "devbox", true, VM_KERNEL_DEBIAN}, /* env over profile */
        {"devbox", "debian", true, VM_KERNEL_DEVBOX},
        {"auto", "debian", false, VM_KERNEL_DEBIAN},
        {"auto", "debian", true, VM_KERNEL_DEVBOX},
        {"devbox", NULL, false, -1},
        {"Devbox", NULL, true, -1},
        {NULL, "fast", true, -1},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        enum vm_kernel_kind k = 99;
        _cleanup_error_ dbx_error *err = NULL;
        int r = vm_kernel_select(cases[i].env, cases[i].profile, cases[i].ready, &k, &err);
        if (cases[i].want < 0) {
            if (r == 0) fail_msg("case %zu: selected %d, expected an error", i, k);
            assert_int_equal(k, 99);
        } else {
            if (r < 0) fail_msg("case %zu: %s", i, err->msg);
            assert_int_equal(k, cases[i].want);
        }
    }
    _cleanup_error_ dbx_error *err = NULL;
    enum vm_kernel_kind k;
    assert_true(vm_kernel_select("Devbox", NULL, true, &k, &err) < 0);
    assert_string_equal(err->msg, "DEVBOX_KERNEL 'Devbox': expected auto, devbox or debian");
    dbx_error_free(&err);
    assert_true(vm_kernel_select(NULL, "devbox", false, &k, &err) < 0);
    assert_non_null(strstr(err->msg, "devbox kernel build"));
}

/* ---- the build's install path (test knob: a copied file instead of a compile) --------------- */

static char *cache_setup(const char *name, const char *fragment) {
    char *cache = path_in(name);
    _cleanup_free_ char *f = dbx_xasprintf("%s.config", cache);
    test_write_file(f, fragment, 0644);
    setenv("DEVBOX_KERNEL_CONFIG", f, 1);
    setenv("DEVBOX_KERNEL_CACHE", cache, 1);
    setenv("DEVBOX_KERNEL_TEST_VERSION", "6.1.1-1", 1);
    return cache;
}

static size_t count_prefix(const char *d, const char *prefix) {
    size_t n = 0;
    DIR *dd = opendir(d);
    if (!dd) return 0;
    struct dirent *de;
    while ((de = readdir(dd)))
        n += dbx_str_has_prefix(de->d_name, prefix);
    closedir(dd);
    return n;
}

static void test_build_install(void **state) {
    _cleanup_free_ char *cache = cache_setup("kc1", "CONFIG_A=y\n");
    _cleanup_free_ char *src = path_in("vmlinux-src");
    test_write_file(src, "not really a kernel", 0600);
    setenv("DEVBOX_KERNEL_TEST_VMLINUX", src, 1);
    struct vm_devkernel_status st = {0};
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_devkernel_status(&st, &err), 0);
    assert_int_equal(st.state, VM_DEVKERNEL_ABSENT);
    assert_true(st.source_installed);
    assert_string_equal(st.cache, cache);
    _cleanup_free_ char *key = dbx_xstrdup(st.key);
    vm_devkernel_status_clear(&st);

    struct vm_devkernel_build_opts o = {.wait = true};
    int r = vm_devkernel_build(&o, &st, &err);
    if (r < 0) fail_msg("%s", err->msg);
    assert_int_equal(r, 1);
    assert_int_equal(st.state, VM_DEVKERNEL_READY);
    _cleanup_free_ char *want = dbx_xasprintf("%s/%s/vmlinux", cache, key);
    assert_string_equal(st.vmlinux, want);
    assert_int_equal(st.size, strlen("not really a kernel"));
    vm_devkernel_status_clear(&st);
    /* what was installed: world-readable, nothing of the work left */
    static const char *const files[] = {"vmlinux", "config", "build.log", "info"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s/%s", cache, key, files[i]);
        struct stat sb;
        assert_int_equal(stat(p, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0644);
    }
    assert_int_equal(count_prefix(cache, ".build-"), 0);
    /* a second build finds it */
    assert_int_equal(vm_devkernel_build(&o, NULL, &err), 0);
}

static void test_build_failure(void **state) {
    _cleanup_free_ char *cache = cache_setup("kc2", "CONFIG_B=y\n");
    setenv("DEVBOX_KERNEL_TEST_VMLINUX", "/nonexistent/vmlinux", 1);
    struct vm_devkernel_build_opts o = {.wait = true};
    _cleanup_error_ dbx_error *err = NULL;
    assert_true(vm_devkernel_build(&o, NULL, &err) < 0);
    assert_non_null(strstr(err->msg, "kernel build step 'compile' failed"));
    assert_non_null(strstr(err->msg, "/nonexistent/vmlinux")); /* the log's last lines */
    /* nothing half-installed: only the lock and the failed log */
    assert_int_equal(count_prefix(cache, ".build-"), 0);
    assert_int_equal(count_prefix(cache, "6.1.1-1-"), 1);
    struct vm_devkernel_status st = {0};
    dbx_error_free(&err);
    assert_int_equal(vm_devkernel_status(&st, &err), 0);
    assert_int_equal(st.state, VM_DEVKERNEL_FAILED);
    assert_non_null(strstr(st.failed_log, ".failed.log"));
    vm_devkernel_status_clear(&st);
    /* the background build does not try the same key again; the foreground one does */
    o = (struct vm_devkernel_build_opts){.skip_failed = true};
    assert_int_equal(vm_devkernel_build(&o, NULL, &err), 2);
}

static void test_build_busy(void **state) {
    _cleanup_free_ char *cache = cache_setup("kc3", "CONFIG_C=y\n");
    setenv("DEVBOX_KERNEL_TEST_VMLINUX", "/bin/true", 1);
    assert_int_equal(mkdir(cache, 0755), 0);
    _cleanup_free_ char *lock = dbx_xasprintf("%s/lock", cache);
    _cleanup_close_ int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    struct vm_devkernel_status st = {0};
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_devkernel_status(&st, &err), 0);
    assert_int_equal(st.state, VM_DEVKERNEL_BUILDING);
    vm_devkernel_status_clear(&st);
    struct vm_devkernel_build_opts o = {.wait = false};
    assert_int_equal(vm_devkernel_build(&o, NULL, &err), 2);
    assert_int_equal(count_prefix(cache, "6.1.1-1-"), 0);
    flock(fd, LOCK_UN);
    assert_int_equal(vm_devkernel_build(&o, NULL, &err), 1);
}

static void set_age(const char *path, time_t seconds_ago) {
    struct timespec t[2] = {{.tv_sec = time(NULL) - seconds_ago},
                            {.tv_sec = time(NULL) - seconds_ago}};
    assert_int_equal(utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW), 0);
}

static char *read_text(const char *path) {
    char *text = NULL;
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_read_file_at(AT_FDCWD, path, 1 << 20, &text, NULL, &err) < 0) fail_msg("%s", err->msg);
    return text;
}

/* A successful build removes the builds and failed logs of other source versions (dead: every
 * devbox keys on the installed package) but for the newest other build, and says so in its
 * log; builds of its own version with another fragment, names that are no key, and what a
 * symbolic link points to stay.  A build that builds nothing removes nothing. */
static void test_build_prunes_old_versions(void **state) {
    _cleanup_free_ char *cache = cache_setup("kc4", "CONFIG_D=y\n");
    _cleanup_free_ char *src = path_in("vmlinux-kc4");
    test_write_file(src, "kernel", 0600);
    setenv("DEVBOX_KERNEL_TEST_VMLINUX", src, 1);
    struct vm_devkernel_build_opts o = {.wait = true};
    struct vm_devkernel_status st = {0};
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_devkernel_build(&o, &st, &err), 1);
    _cleanup_free_ char *prev_key = dbx_xstrdup(st.key); /* 6.1.1-1: the newest other, kept */
    vm_devkernel_status_clear(&st);
    _cleanup_free_ char *prev = dbx_xasprintf("%s/%s", cache, prev_key);
    set_age(prev, 86400);
    /* an older version's build and failed log, a link named as a build, names of others */
    _cleanup_free_ char *older = dbx_xasprintf("%s/6.1.0-9-cccccccccccc", cache);
    assert_int_equal(mkdir(older, 0755), 0);
    set_age(older, 10 * 86400);
    _cleanup_free_ char *flog = dbx_xasprintf("%s/6.1.0-9-bbbbbbbbbbbb.failed.log", cache);
    test_write_file(flog, "log", 0644);
    _cleanup_free_ char *outside = path_in("kc4-outside");
    assert_int_equal(mkdir(outside, 0755), 0);
    _cleanup_free_ char *outside_file = dbx_xasprintf("%s/vmlinux", outside);
    test_write_file(outside_file, "keep", 0644);
    _cleanup_free_ char *link = dbx_xasprintf("%s/6.1.0-8-dddddddddddd", cache);
    assert_int_equal(symlink(outside, link), 0);
    static const char *const others[] = {"notakey", "6.1.2-1-ABCDEFabcdef", "6.1.2-1-aaaaaaaaaaa"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(others); i++) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", cache, others[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    /* the new version's build with another devbox's fragment */
    _cleanup_free_ char *same = dbx_xasprintf("%s/6.1.2-1-aaaaaaaaaaaa", cache);
    assert_int_equal(mkdir(same, 0755), 0);
    _cleanup_free_ char *same_vm = dbx_xasprintf("%s/vmlinux", same);
    test_write_file(same_vm, "other fragment", 0644);

    setenv("DEVBOX_KERNEL_TEST_VERSION", "6.1.2-1", 1); /* the source package upgraded */
    assert_int_equal(vm_devkernel_build(&o, &st, &err), 1);
    assert_int_equal(st.state, VM_DEVKERNEL_READY);
    _cleanup_free_ char *new_key = dbx_xstrdup(st.key);
    vm_devkernel_status_clear(&st);
    struct stat sb;
    assert_int_equal(lstat(older, &sb), -1);
    assert_int_equal(lstat(flog, &sb), -1);
    assert_int_equal(lstat(link, &sb), -1);
    assert_int_equal(stat(outside_file, &sb), 0);
    assert_int_equal(stat(prev, &sb), 0);
    assert_int_equal(stat(same_vm, &sb), 0);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(others); i++) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", cache, others[i]);
        assert_int_equal(stat(p, &sb), 0);
    }
    _cleanup_free_ char *lockp = dbx_xasprintf("%s/lock", cache);
    assert_int_equal(stat(lockp, &sb), 0);
    _cleanup_free_ char *logp = dbx_xasprintf("%s/%s/build.log", cache, new_key);
    _cleanup_free_ char *logtext = read_text(logp);
    assert_non_null(strstr(logtext, "devbox: removed '6.1.0-9-cccccccccccc' (source version other "
                                    "than 6.1.2-1)\n"));
    assert_non_null(strstr(logtext, "removed '6.1.0-9-bbbbbbbbbbbb.failed.log'"));
    assert_non_null(strstr(logtext, "removed '6.1.0-8-dddddddddddd'"));
    _cleanup_free_ char *kept = dbx_xasprintf("devbox: kept '%s' (the newest build of another "
                                              "source version)\n",
                                              prev_key);
    assert_non_null(strstr(logtext, kept));
    assert_null(strstr(logtext, "aaaaaaaaaaaa"));

    /* nothing to build: nothing removed either, the log unchanged */
    _cleanup_free_ char *flog2 = dbx_xasprintf("%s/6.1.0-7-eeeeeeeeeeee.failed.log", cache);
    test_write_file(flog2, "log", 0644);
    assert_int_equal(vm_devkernel_build(&o, NULL, &err), 0);
    assert_int_equal(stat(flog2, &sb), 0);
    _cleanup_free_ char *logtext2 = read_text(logp);
    assert_string_equal(logtext, logtext2);

    /* the next upgrade: the build it replaced as the newest other one, and the rest go */
    setenv("DEVBOX_KERNEL_TEST_VERSION", "6.1.3-1", 1);
    assert_int_equal(vm_devkernel_build(&o, &st, &err), 1);
    vm_devkernel_status_clear(&st);
    _cleanup_free_ char *newp = dbx_xasprintf("%s/%s", cache, new_key);
    assert_int_equal(stat(newp, &sb), 0);
    assert_int_equal(lstat(prev, &sb), -1);
    assert_int_equal(lstat(same, &sb), -1);
    assert_int_equal(lstat(flog2, &sb), -1);
}

/* The knob never builds into a cache the test did not name (as root: the machine's).  Only the
 * refusal is tried: without it this would build into the real cache. */
static void test_build_knob_needs_cache(void **state) {
    _cleanup_free_ char *cache = cache_setup("kc5", "CONFIG_E=y\n");
    unsetenv("DEVBOX_KERNEL_CACHE");
    _cleanup_free_ char *xdg = path_in("xdg-kc5");
    setenv("XDG_CACHE_HOME", xdg, 1);
    setenv("DEVBOX_KERNEL_TEST_VMLINUX", "/bin/true", 1);
    struct vm_devkernel_build_opts o = {.wait = true};
    _cleanup_error_ dbx_error *err = NULL;
    assert_true(vm_devkernel_build(&o, NULL, &err) < 0);
    assert_string_equal(err->msg, "DEVBOX_KERNEL_TEST_VMLINUX needs DEVBOX_KERNEL_CACHE (a cache "
                                  "of the test's own)");
}

static void test_entry_version(void **state) {
    static const struct {
        const char *name, *version;
    } cases[] = {
        {"6.1.192-3-0123456789ab", "6.1.192-3"},
        {"6.1.192-3-0123456789ab.failed.log", "6.1.192-3"},
        {"6.1.0-test1-abcdefabcdef", "6.1.0-test1"},
        {"1-000000000000", "1"},
        {"6.1-0123456789AB", NULL},   /* upper case: not sha256 hex as we write it */
        {"6.1-0123456789a", NULL},    /* 11 digits */
        {"-0123456789ab", NULL},      /* no version */
        {".x-0123456789ab", NULL},    /* a version may not start with '.' */
        {"6.1 x-0123456789ab", NULL}, /* nor hold a space */
        {"6.1-0123456789ab.log", NULL},
        {"lock", NULL},
        {"source-version", NULL},
        {".build-abc123", NULL},
        {".failed.log", NULL},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *v = vm_devkernel_entry_version(cases[i].name);
        if (!cases[i].version) {
            if (v) fail_msg("'%s': got '%s', wanted none", cases[i].name, v);
        } else {
            if (!v || strcmp(v, cases[i].version) != 0)
                fail_msg("'%s': got '%s', wanted '%s'", cases[i].name, v ? v : "(none)",
                         cases[i].version);
        }
    }
}

static void test_override(void **state) {
    setenv("DEVBOX_KERNEL_VMLINUX", "/bin/true", 1);
    struct vm_devkernel_status st = {0};
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_devkernel_status(&st, &err), 0);
    assert_int_equal(st.state, VM_DEVKERNEL_READY);
    assert_true(st.override);
    vm_devkernel_status_clear(&st);
    setenv("DEVBOX_KERNEL_VMLINUX", "/nonexistent/vmlinux", 1);
    assert_true(vm_devkernel_status(&st, &err) < 0);
    assert_non_null(strstr(err->msg, "DEVBOX_KERNEL_VMLINUX"));
}

/* ---- the init-only initramfs
 * --------------------------------------------------------------------- */

static void test_ensure_initramfs(void **state) {
    _cleanup_free_ char *kdir = path_in("home-kernel");
    _cleanup_free_ char *init = path_in("init");
    test_write_file(init, "#!init", 0755);
    struct vm_devkernel_status st = {.state = VM_DEVKERNEL_READY, .key = "k", .vmlinux = "/vm"};
    struct vm_kernel k = {0};
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_devkernel_ensure(kdir, init, &st, &k, &err), 0);
    assert_string_equal(k.vmlinuz, "/vm");
    assert_string_equal(k.release, "devbox k");
    struct archive *a = archive_read_new();
    archive_read_support_format_cpio(a);
    assert_int_equal(archive_read_open_filename(a, k.initramfs, 4096), ARCHIVE_OK);
    struct archive_entry *e;
    _cleanup_free_ char *names = dbx_xstrdup("");
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *n = archive_entry_pathname(e);
        if (!strcmp(n, "modules.order")) assert_int_equal(archive_entry_size(e), 0);
        char *t = dbx_xasprintf("%s%s ", names, n);
        free(names);
        names = t;
    }
    archive_read_free(a);
    assert_string_equal(names, "dev proc sys newroot lib lib/modules dev/console init "
                               "modules.order ");
    /* the same init: the same file; not ready: an error */
    struct vm_kernel k2 = {0};
    assert_int_equal(vm_devkernel_ensure(kdir, init, &st, &k2, &err), 0);
    assert_string_equal(k.initramfs, k2.initramfs);
    vm_kernel_clear(&k);
    vm_kernel_clear(&k2);
    st.state = VM_DEVKERNEL_ABSENT;
    assert_true(vm_devkernel_ensure(kdir, init, &st, &k, &err) < 0);
}

static time_t age_of(const char *path) {
    struct stat sb;
    assert_int_equal(lstat(path, &sb), 0);
    return time(NULL) - sb.st_mtime;
}

/* A start removes the initramfs files (either kernel's) no start has used for a day, one per
 * devbox upgrade, and marks its own as used; files of other names, links and younger files
 * stay. */
static void test_ensure_prunes_initramfs(void **state) {
    _cleanup_free_ char *kdir = path_in("home-kernel-prune");
    _cleanup_free_ char *init = path_in("init-prune");
    test_write_file(init, "#!init prune", 0755);
    struct vm_devkernel_status st = {.state = VM_DEVKERNEL_READY, .key = "k", .vmlinux = "/vm"};
    struct vm_kernel k = {0};
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_devkernel_ensure(kdir, init, &st, &k, &err), 0);
    char h64[65];
    memset(h64, 'a', 64);
    h64[64] = '\0';
    _cleanup_free_ char *old_devbox = dbx_xasprintf("%s/devbox-initramfs-%s.cpio", kdir, h64);
    memset(h64, 'b', 64);
    _cleanup_free_ char *old_debian = dbx_xasprintf("%s/initramfs-%s.cpio", kdir, h64);
    memset(h64, 'c', 64);
    _cleanup_free_ char *young = dbx_xasprintf("%s/initramfs-%s.cpio", kdir, h64);
    memset(h64, 'd', 64);
    _cleanup_free_ char *link = dbx_xasprintf("%s/initramfs-%s.cpio", kdir, h64);
    _cleanup_free_ char *short_name = dbx_xasprintf("%s/initramfs-abc.cpio", kdir);
    _cleanup_free_ char *other = dbx_xasprintf("%s/notes.cpio", kdir);
    test_write_file(old_devbox, "x", 0644);
    test_write_file(old_debian, "x", 0644);
    test_write_file(young, "x", 0644);
    test_write_file(short_name, "x", 0644);
    test_write_file(other, "x", 0644);
    assert_int_equal(symlink(init, link), 0);
    set_age(old_devbox, 2 * 86400);
    set_age(old_debian, 86400 + 60);
    set_age(young, 86400 - 600);
    set_age(short_name, 10 * 86400);
    set_age(other, 10 * 86400);
    set_age(link, 10 * 86400);
    set_age(k.initramfs, 3 * 86400); /* ours, last used long ago */
    struct vm_kernel k2 = {0};
    assert_int_equal(vm_devkernel_ensure(kdir, init, &st, &k2, &err), 0);
    assert_string_equal(k.initramfs, k2.initramfs);
    struct stat sb;
    assert_int_equal(stat(k2.initramfs, &sb), 0);
    assert_true(age_of(k2.initramfs) < 60); /* marked as used now */
    assert_int_equal(lstat(old_devbox, &sb), -1);
    assert_int_equal(lstat(old_debian, &sb), -1);
    assert_int_equal(lstat(young, &sb), 0);
    assert_int_equal(lstat(short_name, &sb), 0);
    assert_int_equal(lstat(other, &sb), 0);
    assert_int_equal(lstat(link, &sb), 0);
    /* used within the hour: its time is left alone (no write at every start) */
    set_age(k2.initramfs, 1800);
    vm_kernel_clear(&k2);
    assert_int_equal(vm_devkernel_ensure(kdir, init, &st, &k2, &err), 0);
    assert_true(age_of(k2.initramfs) >= 1800);
    vm_kernel_clear(&k);
    vm_kernel_clear(&k2);
}

/* The source version is asked of dpkg once per tarball: a second boot reads the cache; a new
 * tarball (dpkg unpacks to a new inode) or a damaged cache file asks again. */
static unsigned queries;
static const char *answer;
static char *count_query(void) {
    queries++;
    return answer ? dbx_xstrdup(answer) : NULL;
}

static void test_source_version_cached(void **state) {
    _cleanup_free_ char *tar = dbx_xasprintf("%s/src.tar.xz", dir);
    _cleanup_free_ char *cache = dbx_xasprintf("%s/cache/kernel", dir);
    _cleanup_free_ char *file = dbx_xasprintf("%s/source-version", cache);
    queries = 0;
    answer = "6.1.192-1";
    /* no tarball: no version, no query */
    assert_null(vm_devkernel_source_version_cached(tar, cache, count_query));
    assert_int_equal(queries, 0);
    test_write_file(tar, "v1", 0644);
    char *v = vm_devkernel_source_version_cached(tar, cache, count_query);
    assert_string_equal(v, "6.1.192-1");
    free(v);
    assert_int_equal(queries, 1);
    answer = "changed";
    v = vm_devkernel_source_version_cached(tar, cache, count_query);
    assert_string_equal(v, "6.1.192-1"); /* from the cache */
    free(v);
    assert_int_equal(queries, 1);
    /* dpkg replaces the tarball: a new inode */
    _cleanup_free_ char *tmp = dbx_xasprintf("%s/src.new", dir);
    test_write_file(tmp, "v1", 0644);
    assert_int_equal(rename(tmp, tar), 0);
    v = vm_devkernel_source_version_cached(tar, cache, count_query);
    assert_string_equal(v, "changed");
    free(v);
    assert_int_equal(queries, 2);
    /* a damaged cache file is asked again and rewritten */
    test_write_file(file, "garbage", 0644);
    v = vm_devkernel_source_version_cached(tar, cache, count_query);
    assert_string_equal(v, "changed");
    free(v);
    assert_int_equal(queries, 3);
    v = vm_devkernel_source_version_cached(tar, cache, count_query);
    free(v);
    assert_int_equal(queries, 3);
    /* no answer from dpkg: none, and nothing cached that hides the next answer */
    test_write_file(tmp, "v2", 0644);
    assert_int_equal(rename(tmp, tar), 0);
    answer = NULL;
    assert_null(vm_devkernel_source_version_cached(tar, cache, count_query));
    answer = "6.1.193-1";
    v = vm_devkernel_source_version_cached(tar, cache, count_query);
    assert_string_equal(v, "6.1.193-1");
    free(v);
    assert_int_equal(queries, 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_key, each),
        cmocka_unit_test_setup(test_cache_dir_env, each),
        cmocka_unit_test_setup(test_cache_dir_root_user, each),
        cmocka_unit_test_setup(test_stat_trusted, each),
        cmocka_unit_test_setup(test_path_trusted, each),
        cmocka_unit_test_setup(test_config_check_ok, each),
        cmocka_unit_test_setup(test_config_check_dropped, each),
        cmocka_unit_test_setup(test_config_check_malformed, each),
        cmocka_unit_test_setup(test_select, each),
        cmocka_unit_test_setup(test_build_install, each),
        cmocka_unit_test_setup(test_build_failure, each),
        cmocka_unit_test_setup(test_build_busy, each),
        cmocka_unit_test_setup(test_override, each),
        cmocka_unit_test_setup(test_ensure_initramfs, each),
        cmocka_unit_test_setup(test_ensure_prunes_initramfs, each),
        cmocka_unit_test_setup(test_build_prunes_old_versions, each),
        cmocka_unit_test_setup(test_build_knob_needs_cache, each),
        cmocka_unit_test_setup(test_entry_version, each),
        cmocka_unit_test_setup(test_source_version_cached, each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* tests/unit/test-profiles-load.c: extends chains (built-in, repo file, cycles, depth,
 * escapes by '..', absolute paths and symlinks), the profile hash, the user's config.ini
 * (ceilings and defaults), every kind of widening, and the trust store
 * (profiles/profiles-load.c, profiles-trust.c).  Run from the source tree root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "profiles/profiles.h"

#include "tests/unit/helpers.h"

static void write_at(int dfd, const char *name, const char *text) {
    test_write_at(dfd, name, text);
}

static char *load_user(struct repo *r, const struct profile_user *u, struct profile *ret) {
    return test_profile_load(r, u, ret);
}

static char *load(struct repo *r, struct profile *ret) {
    return load_user(r, NULL, ret);
}

static void expect_error(struct repo *r, const char *want) {
    char *m = load(r, NULL);
    if (!m) fail_msg("loaded; wanted: %s", want);
    if (strcmp(m, want) != 0) fail_msg("\n  got  %s\n  want %s", m, want);
    free(m);
}

/* ---- extends ------------------------------------------------------------------------------- */

static void test_extends_builtin(void **state) {
    struct repo *r = *state;
    struct profile p;
    write_at(r->fd, PROFILE_FILE, "extends = strict\n[limits]\npids = 100\n");
    assert_null(load(r, &p));
    assert_int_equal(p.pids, 100);
    assert_int_equal(p.seccomp, PROFILE_SECCOMP_STRICT);
    assert_int_equal(dbx_strv_len(p.files), 1);
    profile_clear(&p);
    write_at(r->fd, PROFILE_FILE, "[profile]\nextends = nosuch\n");
    _cleanup_free_ char *want = dbx_xasprintf(
        "devbox.ini:2: extends: no built-in profile 'nosuch' in '%s'", test_builtin_profiles());
    expect_error(r, want);
}

static void test_extends_file(void **state) {
    struct repo *r = *state;
    struct profile p;
    assert_int_equal(mkdirat(r->fd, "ci", 0755), 0);
    write_at(r->fd, "ci/base.ini",
             "extends = strict\n[box]\ncpus = 2\nmemory = 1G\n[limits]\ncpu = 2\n");
    write_at(r->fd, PROFILE_FILE, "extends = ./ci//base.ini\n[box]\nmemory = 768M\n");
    assert_null(load(r, &p));
    assert_int_equal(p.cpus, 2);
    assert_true(p.memory == 768ull << 20); /* later file wins */
    assert_int_equal(p.cpu_milli, 2000);
    assert_int_equal(p.pids, 256); /* from strict, two levels down */
    assert_string_equal(profile_origin_of(&p, "box.cpus"), "ci/base.ini:3");
    assert_string_equal(profile_origin_of(&p, "box.memory"), "devbox.ini:3");
    assert_int_equal(dbx_strv_len(p.files), 2);
    assert_string_equal(p.files[0], "ci/base.ini");
    assert_string_equal(p.files[1], "devbox.ini");
    /* what devbox.ini extends is protected like devbox.ini */
    bool found = false;
    for (size_t i = 0; p.protect[i]; i++)
        found |= strcmp(p.protect[i], "ci/base.ini") == 0;
    assert_true(found);
    assert_string_equal(profile_origin_of(&p, "workspace.protect[ci/base.ini]"),
                        "devbox.ini:1 (extends)");
    char hash1[65];
    memcpy(hash1, p.hash, 65);
    profile_clear(&p);

    /* the hash covers the extended file's bytes too */
    write_at(r->fd, "ci/base.ini",
             "extends = strict\n[box]\ncpus = 2\nmemory = 1G\n[limits]\ncpu = 1\n");
    assert_null(load(r, &p));
    assert_string_not_equal(p.hash, hash1);
    profile_clear(&p);

    /* errors in an extended file name that file */
    write_at(r->fd, "ci/base.ini", "[box]\ncpus = 100\n");
    expect_error(r, "ci/base.ini:2: [box] cpus: must be a whole number from 1 to 64, not '100'");
    write_at(r->fd, PROFILE_FILE, "extends = ci/missing.ini\n");
    expect_error(r, "devbox.ini:1: extends: 'ci/missing.ini': No such file or directory");
}

static void test_extends_cycle_depth(void **state) {
    struct repo *r = *state;
    write_at(r->fd, PROFILE_FILE, "extends = a.ini\n");
    write_at(r->fd, "a.ini", "extends = ./b.ini\n");
    write_at(r->fd, "b.ini", "extends = a.ini\n");
    expect_error(r,
                 "b.ini:1: extends: 'a.ini' makes a cycle: devbox.ini -> a.ini -> b.ini -> a.ini");
    write_at(r->fd, PROFILE_FILE, "extends = devbox.ini\n");
    expect_error(r, "devbox.ini:1: extends: 'devbox.ini' makes a cycle: devbox.ini -> devbox.ini");

    /* a chain of PROFILE_MAX_DEPTH extends loads; one more does not */
    write_at(r->fd, PROFILE_FILE, "extends = l1.ini\n");
    for (unsigned i = 1; i <= PROFILE_MAX_DEPTH; i++) {
        char name[32], text[64];
        snprintf(name, sizeof(name), "l%u.ini", i);
        if (i < PROFILE_MAX_DEPTH)
            snprintf(text, sizeof(text), "extends = l%u.ini\n", i + 1);
        else
            snprintf(text, sizeof(text), "[box]\ncpus = 3\n");
        write_at(r->fd, name, text);
    }
    struct profile p;
    assert_null(load(r, &p));
    assert_int_equal(p.cpus, 3);
    assert_int_equal(dbx_strv_len(p.files), PROFILE_MAX_DEPTH + 1);
    profile_clear(&p);
    write_at(r->fd, "l8.ini", "extends = l9.ini\n");
    write_at(r->fd, "l9.ini", "[box]\ncpus = 3\n");
    expect_error(r, "l8.ini:1: extends: 'l9.ini': more than 8 levels of extends");
}

static void test_extends_escape(void **state) {
    struct repo *r = *state;
    write_at(r->fd, PROFILE_FILE, "extends = ../outside.ini\n");
    expect_error(
        r, "devbox.ini:1: extends: '../outside.ini' is outside the repo (must not contain '..')");
    write_at(r->fd, PROFILE_FILE, "extends = sub/../../outside.ini\n");
    expect_error(r, "devbox.ini:1: extends: 'sub/../../outside.ini' is outside the repo (must not "
                    "contain '..')");
    write_at(r->fd, PROFILE_FILE, "extends = /etc/devbox.ini\n");
    expect_error(r, "devbox.ini:1: extends: '/etc/devbox.ini': must be relative to the repo root "
                    "(no leading '/')");

    /* a symlink as the last component, and as a directory on the way */
    char target[PATH_MAX + 16];
    snprintf(target, sizeof(target), "%s/../outside.ini", r->dir);
    assert_int_equal(symlinkat(target, r->fd, "link.ini"), 0);
    write_at(r->fd, PROFILE_FILE, "extends = link.ini\n");
    expect_error(
        r, "devbox.ini:1: extends: 'link.ini': is a symlink; devbox refuses symlinked profiles");
    assert_int_equal(symlinkat("/etc", r->fd, "etc"), 0);
    write_at(r->fd, PROFILE_FILE, "extends = etc/x.ini\n");
    expect_error(r, "devbox.ini:1: extends: 'etc/x.ini': 'etc' is a symlink; devbox refuses "
                    "symlinks in profile paths");

    /* a built-in cannot extend a repo path: only repo files can */
    write_at(r->fd, PROFILE_FILE, "extends = ./x\n");
    expect_error(r, "devbox.ini:1: extends: 'x': No such file or directory");
}

static void test_symlinked_profile(void **state) {
    struct repo *r = *state;
    write_at(r->fd, "real.ini", "[box]\ncpus = 2\n");
    assert_int_equal(symlinkat("real.ini", r->fd, PROFILE_FILE), 0);
    expect_error(r, "devbox.ini: is a symlink; devbox refuses symlinked profiles");
    assert_int_equal(unlinkat(r->fd, PROFILE_FILE, 0), 0);
    assert_int_equal(mkdirat(r->fd, PROFILE_FILE, 0755), 0);
    expect_error(r, "devbox.ini: not a regular file");
    assert_int_equal(unlinkat(r->fd, PROFILE_FILE, AT_REMOVEDIR), 0);
    assert_int_equal(mkfifoat(r->fd, PROFILE_FILE, 0644), 0); /* must not block */
    expect_error(r, "devbox.ini: not a regular file");
}

/* ---- user config --------------------------------------------------------------------------- */

/* issue 12: [box] kernel (auto|devbox|debian) and config.ini [box] kernel_autobuild */
static void test_kernel_keys(void **state) {
    struct repo *r = *state;
    struct profile p;
    write_at(r->fd, PROFILE_FILE, "[box]\n");
    assert_null(load(r, &p));
    assert_int_equal(p.kernel, PROFILE_KERNEL_AUTO);
    profile_clear(&p);
    write_at(r->fd, PROFILE_FILE, "[box]\nkernel = debian\n");
    assert_null(load(r, &p));
    assert_int_equal(p.kernel, PROFILE_KERNEL_DEBIAN);
    assert_string_equal(profile_kernel_name(p.kernel), "debian");
    profile_clear(&p);
    write_at(r->fd, PROFILE_FILE, "[box]\nkernel = fast\n");
    _cleanup_free_ char *msg = load(r, &p);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "[box] kernel: must be 'auto', 'devbox' or 'debian', not 'fast'"));

    struct profile_user u;
    dbx_error *err = NULL;
    write_at(r->fd, "config.ini", "[box]\nkernel_autobuild = false\n");
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    assert_true(u.kernel_autobuild_off);
    profile_user_clear(&u);
    write_at(r->fd, "config.ini", "[box]\nkernel_autobuild = true\n");
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    assert_false(u.kernel_autobuild_off);
    profile_user_clear(&u);
    /* both of the user's [box] keys in one section, each to its own field, both shown */
    write_at(r->fd, "config.ini", "[box]\nkernel_autobuild = false\nidle_stop = 90s\n");
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    assert_true(u.kernel_autobuild_off);
    assert_int_equal(u.idle_stop_s, 90);
    _cleanup_free_ char *shown = profile_user_to_text(&u);
    assert_non_null(strstr(shown, "kernel_autobuild = false"));
    assert_non_null(strstr(shown, "idle_stop = 90s"));
    _cleanup_free_ char *json = profile_user_to_json(&u);
    assert_non_null(strstr(json, "\"idle_stop_s\": {\n      \"value\": 90"));
    profile_user_clear(&u);
    write_at(r->fd, "config.ini", "[box]\nidle_stop = 2h\nkernel_autobuild = true\n");
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    assert_false(u.kernel_autobuild_off);
    assert_int_equal(u.idle_stop_s, 7200);
    profile_user_clear(&u);
    write_at(r->fd, "config.ini", "[box]\nkernel_autobuild = maybe\n");
    assert_true(profile_user_load(r->dir, &u, &err) < 0);
    assert_non_null(strstr(err->msg, "[box] kernel_autobuild: must be 'true' or 'false'"));
    dbx_error_free(&err);
    unlinkat(r->fd, "config.ini", 0);
}

static void test_user_config(void **state) {
    struct repo *r = *state;
    struct profile_user u;
    dbx_error *err = NULL;
    /* missing: defaults */
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    assert_null(u.path);
    assert_true(u.max_memory == 2ull << 30 && u.max_disk == 16ull << 30 && u.max_cpus >= 1);
    profile_user_clear(&u);

    write_at(r->fd, "config.ini",
             "[ceilings]\ncpus = 4\nmemory = 8G\ndisk = 100G\n"
             "[defaults]\nbox.memory = 1G\nlimits.pids = 2000\nenv.EDITOR = vi\n"
             "network.mode = allowlist\nnetwork.allow = pypi.org\n");
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    assert_int_equal(u.max_cpus, 4);
    assert_true(u.max_memory == 8ull << 30 && u.max_disk == 100ull << 30);
    assert_non_null(u.path);

    /* defaults apply before the repo; the repo wins */
    write_at(r->fd, PROFILE_FILE, "[box]\ncpus = 4\n[network]\nallow = pypi.org, crates.io\n");
    struct profile p;
    assert_null(load_user(r, &u, &p));
    assert_true(p.memory == 1ull << 30);
    assert_int_equal(p.pids, 2000);
    assert_string_equal(p.env[0], "EDITOR=vi");
    _cleanup_free_ char *w = dbx_xasprintf("%s:7", u.path);
    assert_string_equal(profile_origin_of(&p, "limits.pids"), w);
    /* the user's own defaults are not widenings; cpus 4 is within the ceiling 4 */
    char **wide = profile_widenings(&p, &u);
    assert_string_equal(wide[0], "network allow 'crates.io'");
    assert_null(wide[1]);
    dbx_strv_free(wide);
    profile_clear(&p);
    profile_user_clear(&u);

    /* the user's aslr = on is the baseline: a repo's auto widens it, its on does not */
    write_at(r->fd, "config.ini", "[defaults]\nsecurity.aslr = on\n");
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    write_at(r->fd, PROFILE_FILE, "[security]\naslr = auto\n");
    assert_null(load_user(r, &u, &p));
    assert_false(p.aslr_on);
    wide = profile_widenings(&p, &u);
    assert_string_equal(wide[0], "aslr auto");
    assert_null(wide[1]);
    dbx_strv_free(wide);
    profile_clear(&p);
    write_at(r->fd, PROFILE_FILE, "[security]\naslr = on\n");
    assert_null(load_user(r, &u, &p));
    assert_true(p.aslr_on);
    wide = profile_widenings(&p, &u);
    assert_null(wide[0]);
    dbx_strv_free(wide);
    profile_clear(&p);
    profile_user_clear(&u);

    write_at(r->fd, "config.ini",
             "top = 1\n[ceilings]\ncpu = 4\nmemory = 1\n[defaults]\nbox.cpu = 2\nboxx.cpus = 2\n"
             "extends = strict\nprofile.extends = strict\nlimits.memory = 1G\n[other]\n");
    assert_true(profile_user_load(r->dir, &u, &err) < 0);
    _cleanup_free_ char *want = dbx_xasprintf(
        "%1$s/config.ini:1: key 'top' before the first section ([ceilings], [defaults], "
        "[registries], [network], [setup] or [box])\n"
        "%1$s/config.ini:3: unknown key 'cpu' in [ceilings] (did you mean 'cpus'?)\n"
        "%1$s/config.ini:4: [ceilings] memory: must be a size from 128M to 64T, not '1'\n"
        "%1$s/config.ini:6: unknown key 'box.cpu' in [box] (did you mean 'cpus'?)\n"
        "%1$s/config.ini:7: [defaults] 'boxx.cpus': unknown section 'boxx' (did you mean 'box'?)\n"
        "%1$s/config.ini:8: [defaults] 'extends': expected 'section.key' (e.g. 'box.memory')\n"
        "%1$s/config.ini:9: [defaults] 'profile.extends': only a repo profile can extend\n"
        "%1$s/config.ini:10: [limits] memory: 1G must be below the VM's memory 512M ([box] memory, "
        "built-in default)\n"
        "%1$s/config.ini:11: unknown section '[other]'",
        r->dir);
    assert_string_equal(err->msg, want);
    dbx_error_free(&err);
}

/* [network] proxy and no_proxy: the upstream HTTP proxy; its password never shown */
static void test_user_proxy(void **state) {
    struct repo *r = *state;
    struct profile_user u;
    dbx_error *err = NULL;
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    assert_false(u.proxy_set || u.no_proxy_set);
    char *t = profile_user_to_text(&u);
    assert_non_null(strstr(t, "# proxy not set                              ; default: the "
                              "environment's https_proxy or http_proxy\n"));
    free(t);
    profile_user_clear(&u);

    write_at(r->fd, "config.ini",
             "[network]\nproxy = http://bob:s%40pw9x@Proxy.Corp.example:3128/\n"
             "no_proxy = .corp.example, *.internal.example, mirror.test 10.0.0.0/8\n    ::1\n");
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    assert_true(u.proxy_set && u.no_proxy_set);
    assert_string_equal(u.proxy, "http://bob:s%40pw9x@Proxy.Corp.example:3128/");
    const char *np[] = {"corp.example", "internal.example", "mirror.test", "10.0.0.0/8", "::1"};
    assert_int_equal(dbx_strv_len(u.no_proxy), DBX_ARRAY_SIZE(np));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(np); i++)
        assert_string_equal(u.no_proxy[i], np[i]);
    t = profile_user_to_text(&u);
    assert_non_null(strstr(t, "proxy = http://bob:***@proxy.corp.example:3128"));
    assert_null(strstr(t, "pw9x"));
    free(t);
    t = profile_user_to_json(&u);
    assert_non_null(strstr(t, "\"value\": \"http://bob:***@proxy.corp.example:3128\""));
    assert_null(strstr(t, "pw9x"));
    free(t);
    profile_user_clear(&u);

    write_at(r->fd, "config.ini", "[network]\nproxy = none\nno_proxy = none\n");
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    assert_true(u.proxy_set && !u.proxy && u.no_proxy_set && !u.no_proxy);
    profile_user_clear(&u);

    write_at(r->fd, "config.ini",
             "[network]\nproxy = socks5://eve:hunter2@p.example:1080\nno_proxy = a.test:80, *\n");
    assert_true(profile_user_load(r->dir, &u, &err) < 0);
    _cleanup_free_ char *want = dbx_xasprintf(
        "%1$s/config.ini:2: [network] proxy: 'socks5://***@p.example:1080': only an http:// proxy "
        "is supported (the box's TLS goes through it as a CONNECT tunnel) (or 'none')\n"
        "%1$s/config.ini:3: [network] no_proxy: 'a.test:80': no_proxy entries take no port",
        r->dir);
    assert_string_equal(err->msg, want);
    dbx_error_free(&err);

    /* the URL grammar */
    static const struct {
        const char *in, *shown, *user, *why;
    } cases[] = {
        {"http://p.example:8080", "http://p.example:8080", NULL, NULL},
        {"p.example:8080", "http://p.example:8080", NULL, NULL},
        {"HTTP://u@10.0.0.1:3128/", "http://u:***@10.0.0.1:3128", "u", NULL},
        {"http://u%3Ax:p%25@[fd00::1]:3128", "http://u:***@[fd00::1]:3128", "u:x:p%", NULL},
        {"http://p.example", NULL, NULL, "needs a port (http://proxy.example:3128)"},
        {"https://p.example:443", NULL, NULL, "only an http:// proxy"},
        {"http://p.example:80/path", NULL, NULL, "a proxy URL has no path, query or fragment"},
        {"http://*.corp.example:80", NULL, NULL, "the proxy must be one host name or address"},
        {"http://10.0.0.0/8:80", NULL, NULL, "a proxy URL has no path"},
        {"http://u%0d%0aX:y@p:1", NULL, NULL, "user name or password: a bad %-escape"},
        {"http://u%4:y@p:1", NULL, NULL, "user name or password: a bad %-escape"},
        {"http://@p:1", NULL, NULL, "empty user name before '@'"},
        {"", NULL, NULL, "empty"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        struct profile_proxy px;
        const char *why = NULL;
        int rc = profile_proxy_parse(cases[i].in, &px, &why);
        if (!cases[i].shown) {
            assert_int_equal(rc, -EINVAL);
            if (!strstr(why, cases[i].why)) fail_msg("case %zu '%s': %s", i, cases[i].in, why);
            continue;
        }
        assert_int_equal(rc, 0);
        _cleanup_free_ char *shown = profile_proxy_display(&px);
        assert_string_equal(shown, cases[i].shown);
        if (cases[i].user)
            assert_string_equal(px.userinfo, cases[i].user);
        else
            assert_null(px.userinfo);
        profile_proxy_clear(&px);
    }
    /* what an error may show of a URL: never the password, however malformed the URL */
    const char *why = NULL;
    static const struct {
        const char *in, *shown;
    } redact[] = {
        {"http://u:pw@p:1", "http://***@p:1"},
        {"alice:pa://ss@proxy:3128", "***@proxy:3128"}, /* "://" inside the password */
        {"http://alice:secret", "http://alice:***"},    /* '@host' forgotten */
        {"socks5h://bob:pw@h:1080", "socks5h://***@h:1080"},
        {"http://p.example:3128/", "http://p.example:3128/"},
        {"http://[fd00::1]:3128", "http://[fd00::1]:3128"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(redact); i++) {
        _cleanup_free_ char *shown = profile_proxy_redact(redact[i].in);
        assert_string_equal(shown, redact[i].shown);
    }
    _cleanup_free_ char *long_user = dbx_xasprintf("http://%0513d@p:1", 0);
    struct profile_proxy lp;
    assert_int_equal(profile_proxy_parse(long_user, &lp, &why), -EINVAL);
    assert_string_equal(why, "user name and password longer than 512 bytes");

    /* no_proxy matching: the name and below it, on a label boundary; addresses in a CIDR */
    struct profile_allow e;
    assert_int_equal(profile_allow_parse("corp.example", &e, &why), 0);
    struct dbx_addr a = {0};
    assert_true(profile_no_proxy_match(&e, false, &a, "corp.example"));
    assert_true(profile_no_proxy_match(&e, false, &a, "a.b.corp.example"));
    assert_false(profile_no_proxy_match(&e, false, &a, "evilcorp.example"));
    assert_int_equal(profile_allow_parse("10.0.0.0/8", &e, &why), 0);
    assert_int_equal(dbx_addr_parse("10.9.8.7", 8, AF_INET, &a), 0);
    assert_true(profile_no_proxy_match(&e, true, &a, "10.9.8.7"));
    assert_int_equal(dbx_addr_parse("11.0.0.1", 8, AF_INET, &a), 0);
    assert_false(profile_no_proxy_match(&e, true, &a, "11.0.0.1"));
}

/* [registries] and [network] listen: user-only settings with their origins */
static void test_user_only(void **state) {
    struct repo *r = *state;
    struct profile_user u;
    dbx_error *err = NULL;
    /* missing file: listen has its default, no registries */
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    assert_string_equal(u.listen, PROFILE_LISTEN_DEFAULT);
    assert_null(u.registries_insecure);
    assert_null(u.registries_ca_file);
    char *t = profile_user_to_text(&u);
    assert_non_null(strstr(t, "listen = 127.0.0.1                           ; default\n"));
    assert_non_null(strstr(t, "image_size = 16G                             ; default\n"));
    free(t);
    profile_user_clear(&u);

    write_at(r->fd, "config.ini",
             "[registries]\n"
             "insecure = 127.0.0.1:5000, Registry.Local.\n"
             "    [0:0::1]:5000 localhost ; a comment\n"
             "ca_file = /etc/ssl/extra ca.pem\n"
             "[network]\n"
             "listen = ::1\n"
             "[defaults]\n"
             "network.resolve = a.test:10.0.0.1\n"
             "ports.3000 = 3000\n");
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    const char *insecure[] = {"127.0.0.1:5000", "registry.local", "[::1]:5000", "localhost"};
    assert_int_equal(dbx_strv_len(u.registries_insecure), DBX_ARRAY_SIZE(insecure));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(insecure); i++)
        assert_string_equal(u.registries_insecure[i], insecure[i]);
    assert_string_equal(u.registries_ca_file, "/etc/ssl/extra ca.pem");
    assert_string_equal(u.listen, "::1");
    t = profile_user_to_text(&u);
    _cleanup_free_ char *want =
        dbx_xasprintf("[registries]\ninsecure =                                   ; %1$s:2\n"
                      "    127.0.0.1:5000\n    registry.local\n    [::1]:5000\n    localhost\n"
                      "ca_file = /etc/ssl/extra ca.pem              ; %1$s:4\n\n"
                      "[network]\nlisten = ::1                                 ; %1$s:6\n",
                      u.path);
    if (!strstr(t, want)) fail_msg("got:\n%s\nwant:\n%s", t, want);
    free(t);
    char *j = profile_user_to_json(&u);
    _cleanup_free_ char *wj =
        dbx_xasprintf("\"listen\": {\n      \"value\": \"::1\",\n      \"from\": \"%s:6\"", u.path);
    assert_non_null(strstr(j, wj));
    assert_non_null(strstr(j, "\"insecure\": {\n      \"value\": [\n        \"127.0.0.1:5000\","));
    free(j);

    /* the user's own resolve and ports are defaults, not repo widenings */
    write_at(r->fd, PROFILE_FILE, "[network]\nmode = allowlist\nallow = a.test\n");
    struct profile p;
    assert_null(load_user(r, &u, &p));
    assert_string_equal(p.resolve[0], "a.test:10.0.0.1");
    assert_int_equal(p.nports, 1);
    char **w = profile_widenings(&p, &u);
    assert_string_equal(w[0], "network mode 'allowlist'");
    assert_string_equal(w[1], "network allow 'a.test'");
    assert_null(w[2]);
    dbx_strv_free(w);
    profile_clear(&p);
    profile_user_clear(&u);

    /* user-only keys: in their sections only, checked */
    write_at(r->fd, "config.ini",
             "[registries]\ninsecure = *.corp.test, 10.0.0.0/8, 127.1:5000, ok.test:0\n"
             "ca_file = certs/ca.pem\nmirror = x\n"
             "[network]\nlisten = localhost\nlisen = 1.2.3.4\nmode = none\n"
             "[defaults]\nnetwork.listen = ::1\nregistries.ca_file = /x.pem\n");
    assert_true(profile_user_load(r->dir, &u, &err) < 0);
    _cleanup_free_ char *bad = dbx_xasprintf(
        "%1$s/config.ini:2: [registries] insecure: '*.corp.test': wildcards are not allowed here, "
        "only exact names\n"
        "%1$s/config.ini:2: [registries] insecure: '10.0.0.0/8': a registry is one host, not a "
        "network\n"
        "%1$s/config.ini:2: [registries] insecure: '127.1:5000': write IPv4 addresses as a.b.c.d\n"
        "%1$s/config.ini:2: [registries] insecure: 'ok.test:0': port must be 1 to 65535\n"
        "%1$s/config.ini:3: [registries] ca_file: 'certs/ca.pem' is not an absolute path\n"
        "%1$s/config.ini:4: unknown key 'mirror' in [registries]\n"
        "%1$s/config.ini:6: [network] listen: 'localhost': not an IP address (an IP address: "
        "127.0.0.1, ::1)\n"
        "%1$s/config.ini:7: unknown key 'lisen' in [network] (did you mean 'listen'?)\n"
        "%1$s/config.ini:8: unknown key 'mode' in [network] (profile defaults go in [defaults] as "
        "'network.mode')\n"
        "%1$s/config.ini:10: [defaults] 'network.listen': a user setting: write it in [network], "
        "not [defaults]\n"
        "%1$s/config.ini:11: [defaults] 'registries.ca_file': a user setting: write it in "
        "[registries], not [defaults]",
        r->dir);
    if (strcmp(err->msg, bad) != 0) fail_msg("\n  got  %s\n  want %s", err->msg, bad);
    dbx_error_free(&err);

    write_at(r->fd, "config.ini", "[network]\nlisten = 127.0.0.1\nlisten = ::1\n");
    assert_true(profile_user_load(r->dir, &u, &err) < 0);
    _cleanup_free_ char *dup = dbx_xasprintf(
        "%s/config.ini:3: duplicate key 'listen' in [network] (first on line 2)", r->dir);
    assert_string_equal(err->msg, dup);
    dbx_error_free(&err);

    /* [ceilings] image_size is shown with the other ceilings, with its origin */
    write_at(r->fd, "config.ini", "[ceilings]\nimage_size = 8G\n");
    assert_int_equal(profile_user_load(r->dir, &u, &err), 0);
    t = profile_user_to_text(&u);
    _cleanup_free_ char *wi =
        dbx_xasprintf("image_size = 8G                              ; %s:2\n", u.path);
    if (!strstr(t, wi)) fail_msg("got:\n%s\nwant:\n%s", t, wi);
    free(t);
    j = profile_user_to_json(&u);
    _cleanup_free_ char *wij = dbx_xasprintf(
        "\"image_size\": {\n      \"value\": 8589934592,\n      \"from\": \"%s:2\"", u.path);
    if (!strstr(j, wij)) fail_msg("got:\n%s\nwant:\n%s", j, wij);
    free(j);
    profile_user_clear(&u);

    /* a zero-filled struct means the defaults */
    struct profile_user z = {0};
    t = profile_user_to_text(&z);
    assert_non_null(strstr(t, "# user settings, (none: defaults)\n"));
    assert_non_null(strstr(t, "listen = 127.0.0.1"));
    free(t);
    j = profile_user_to_json(NULL);
    assert_non_null(strstr(j, "\"path\": null"));
    free(j);
}

/* ---- widenings ----------------------------------------------------------------------------- */

static const struct {
    const char *text, *widens; /* widens: "" = none; else the phrases joined by '|' */
} wide_cases[] = {
    {"[box]\ncpus = 1\nmemory = 256M\n", ""},
    {"extends = strict\n", ""},
    {"[limits]\npids = 10\nnofile = 100\ncpu = 0.5\nmemory = 256M\nswap = 0\n", ""},
    {"[security]\nseccomp = strict\nuser = 1000:1000\n", ""},
    {"[security]\naslr = on\n", ""}, /* narrows: randomization under TCG too */
    {"[workspace]\nprotect = src\nunprotect = src\n", ""},
    {"[workspace]\nprotect = .git\nunprotect = .git/hooks, .git/config\n", ""},
    {"[network]\nmode = none\nallow = example.com\n", ""},
    {"[env]\nLD_PRELOAD = x\n", ""},
    {"[box]\ncpus = 8\n", "cpus 8 over the ceiling 4"},
    {"[box]\nmemory = 3G\n", "memory 3G over the ceiling 2G"},
    {"[box]\ndisk = 20G\n", "disk 20G over the ceiling 16G"},
    {"[limits]\npids = 5000\nnofile = 100000\n",
     "limits.pids 5000 above the default 4096|limits.nofile 100000 above the default 65536"},
    /* strict's limits are not the baseline: undoing them is no wider than `default` */
    {"extends = strict\n[limits]\ncpu = none\nmemory = auto\nnproc = none\nswap = max\n", ""},
    {"[security]\nuser = root\n", "user 'root' (root)"},
    {"[security]\nuser = 0\n", "user '0' (root)"},
    {"[security]\nuser = 1000:0\n", "user '1000:0' (group 0)"},
    {"[security]\ncapabilities = net_admin, CAP_SYS_PTRACE\n",
     "capability 'net_admin'|capability 'sys_ptrace'"},
    {"[security]\ncapabilities = chown\ncapabilities_user = chown net_bind_service\n",
     "capability 'chown'|capability 'chown' for the box user|capability 'net_bind_service' for "
     "the box user"},
    {"[security]\nseccomp = unconfined\n", "seccomp 'unconfined'"},
    {"[security]\nno_new_privileges = false\n", "no_new_privileges false"},
    {"[workspace]\nunprotect = .git/hooks devbox.ini\n",
     "unprotects '.git/hooks'|unprotects 'devbox.ini'"},
    {"[network]\nmode = open\n", "network mode 'open'"},
    {"[network]\nmode = allowlist\nallow = pypi.org\n",
     "network mode 'allowlist'|network allow 'pypi.org'"},
    {"[network]\nmode = allowlist\nallow = allowed.test\nresolve = allowed.test:127.0.0.1, "
     "b.test:::1\n",
     "network mode 'allowlist'|network allow 'allowed.test'|network resolve "
     "'allowed.test:127.0.0.1'|network resolve 'b.test:::1'"},
    {"[network]\nmode = open\nresolve = a.test:10.0.0.1\n",
     "network mode 'open'|network resolve 'a.test:10.0.0.1'"},
    /* with no network a name override does nothing */
    {"[network]\nmode = none\nresolve = a.test:10.0.0.1\n", ""},
    {"[ports]\n3000 = 3000\n8080 = 80\n", ""},
    {"[box]\nimage = ghcr.io/org/app@sha256:"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
     ""},
};

static void test_widenings(void **state) {
    struct repo *r = *state;
    struct profile_user u = {.max_cpus = 4, .max_memory = 2ull << 30, .max_disk = 16ull << 30};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(wide_cases); i++) {
        write_at(r->fd, PROFILE_FILE, wide_cases[i].text);
        struct profile p;
        char *m = load_user(r, &u, &p);
        if (m) fail_msg("case %zu: %s", i, m);
        char **w = profile_widenings(&p, &u);
        char joined[1024] = "";
        for (size_t j = 0; w[j]; j++) {
            if (j) strcat(joined, "|");
            strcat(joined, w[j]);
        }
        if (strcmp(joined, wide_cases[i].widens) != 0)
            fail_msg("case %zu:\n  got  %s\n  want %s", i, joined, wide_cases[i].widens);
        dbx_strv_free(w);
        profile_clear(&p);
    }

    /* limits the user's [defaults] set are the baseline: removing or raising them widens */
    write_at(r->fd, "config.ini",
             "[defaults]\nlimits.cpu = 0.5\nlimits.memory = 256M\n"
             "limits.nproc = 100\nlimits.swap = 0\nsecurity.seccomp = strict\n");
    struct profile_user uu;
    dbx_error *err = NULL;
    assert_int_equal(profile_user_load(r->dir, &uu, &err), 0);
    write_at(r->fd, PROFILE_FILE,
             "[limits]\ncpu = none\nmemory = auto\nnproc = 200\nswap = 1G\n"
             "[security]\nseccomp = default\n");
    struct profile p;
    assert_null(load_user(r, &uu, &p));
    char **w = profile_widenings(&p, &uu);
    const char *want[] = {"limits.memory removed (default 256M)",
                          "limits.swap 1G above the default 0", "limits.cpu removed (default 0.5)",
                          "limits.nproc 200 above the default 100", "seccomp 'default'"};
    assert_int_equal(dbx_strv_len(w), DBX_ARRAY_SIZE(want));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(want); i++)
        assert_string_equal(w[i], want[i]);
    dbx_strv_free(w);
    profile_clear(&p);
    profile_user_clear(&uu);
}

/* ---- trust --------------------------------------------------------------------------------- */

static void test_trust(void **state) {
    struct repo *r = *state;
    _cleanup_free_ char *dir = dbx_xasprintf("%s/state/trust", r->dir);
    const char *h1 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *h2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    bool t = true;
    dbx_error *err = NULL;
    assert_int_equal(profile_trust_check(dir, "/src/proj", h1, &t, &err), 0);
    assert_false(t); /* no store yet */
    assert_int_equal(profile_trust_add(dir, "/src/proj", h1, &err), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(profile_trust_check(dir, "/src/proj", h1, &t, &err), 0);
    assert_true(t);
    assert_int_equal(profile_trust_check(dir, "/src/proj", h2, &t, &err), 0);
    assert_false(t); /* a changed profile needs trust again */
    assert_int_equal(profile_trust_check(dir, "/src/other", h1, &t, &err), 0);
    assert_false(t); /* per repo */
    assert_int_equal(profile_trust_check(dir, "/src/proj", "", &t, &err), 0);
    assert_false(t);
    assert_true(profile_trust_check(dir, "/src/proj", "ABC", &t, &err) < 0);
    assert_string_equal(err->msg, "trust: 'ABC' is not a sha256 hex digest");
    dbx_error_free(&err);
    assert_true(profile_trust_add(dir, "relative", h1, &err) < 0);
    dbx_error_free(&err);

    /* the record keeps the newest PROFILE_TRUST_KEEP hashes, 0600 */
    for (unsigned i = 0; i < PROFILE_TRUST_KEEP + 5; i++) {
        char h[65];
        snprintf(h, sizeof(h), "%064x", i);
        assert_int_equal(profile_trust_add(dir, "/src/proj", h, &err), 0);
    }
    assert_int_equal(profile_trust_check(dir, "/src/proj", h1, &t, &err), 0);
    assert_false(t);
    char last[65];
    snprintf(last, sizeof(last), "%064x", PROFILE_TRUST_KEEP + 4);
    assert_int_equal(profile_trust_check(dir, "/src/proj", last, &t, &err), 0);
    assert_true(t);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    unsigned files = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        files++;
        assert_int_equal(fstatat(dirfd(d), de->d_name, &st, 0), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_true(st.st_size < (off_t)(100 + PROFILE_TRUST_KEEP * 65));
    }
    closedir(d);
    assert_int_equal(files, 1);
}

/* The whole flow: an agent profile is refused until trusted; editing it needs trust again;
 * narrowing it afterwards does not widen. */
static void test_trust_flow(void **state) {
    struct repo *r = *state;
    _cleanup_free_ char *dir = dbx_xasprintf("%s/trust", r->dir);
    write_at(r->fd, PROFILE_FILE, "extends = agent\n");
    struct profile p;
    assert_null(load(r, &p));
    char **w = profile_widenings(&p, NULL);
    assert_non_null(w[0]);
    dbx_strv_free(w);
    dbx_error *err = NULL;
    bool t = true;
    assert_int_equal(profile_trust_check(dir, r->dir, p.hash, &t, &err), 0);
    assert_false(t);
    assert_int_equal(profile_trust_add(dir, r->dir, p.hash, &err), 0);
    assert_int_equal(profile_trust_check(dir, r->dir, p.hash, &t, &err), 0);
    assert_true(t);
    profile_clear(&p);
    write_at(r->fd, PROFILE_FILE, "extends = agent\n[network]\nmode = open\n");
    assert_null(load(r, &p));
    assert_int_equal(profile_trust_check(dir, r->dir, p.hash, &t, &err), 0);
    assert_false(t);
    profile_clear(&p);
    write_at(r->fd, PROFILE_FILE, "extends = agent\n[network]\nmode = none\n[box]\ncpus = 1\n");
    assert_null(load(r, &p));
    struct profile_user u = {.max_cpus = 4};
    w = profile_widenings(&p, &u);
    assert_null(w[0]);
    dbx_strv_free(w);
    profile_clear(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kernel_keys, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_extends_builtin, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_extends_file, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_extends_cycle_depth, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_extends_escape, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_symlinked_profile, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_user_config, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_user_proxy, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_user_only, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_widenings, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_trust, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_trust_flow, test_repo_setup, test_repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test-guest-env.c: the environment of an EXEC'd command (guest/init-env.c), on the
 * host.  An ordinary command gets the init's defaults, the plan's env (the profile's [env]) over
 * them and the request's env over both; an administrative one (DBX_EXEC_ADMIN, root with the
 * admin capabilities) gets a reset environment: the fixed PATH, root's HOME, USER, LOGNAME and
 * SHELL, the CA variables, the plan's proxy variables and the request's env, and nothing else of
 * the plan's (a repository's PATH or LD_PRELOAD must not reach root).  The CA variables follow
 * the files ca_install wrote.  Every command gets ENTR_INOTIFY_WORKAROUND=1 unless it sets its
 * own. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* init-env.c is guest code (the static init links it); the test compiles it in. */
#include "guest/init-env.c"

/* env's value of key, or NULL */
static const char *get(char *const *env, const char *key) {
    size_t k = strlen(key);
    const char *found = NULL;
    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], key, k) == 0 && env[i][k] == '=') {
            assert_null(found); /* each key once */
            found = env[i] + k + 1;
        }
    return found;
}

static char *plan_env[] = {
    "PATH=/work/repo/.venv/bin:/usr/bin",
    "LD_PRELOAD=/work/repo/evil.so",
    "PYTHONPATH=/work/repo",
    "FOO=bar",
    "HOME=/work/repo",
    "Http_Proxy=http://mixed.invalid",
    "http_proxy=http://127.0.0.1:3128",
    "HTTP_PROXY=http://127.0.0.1:3128",
    "https_proxy=http://127.0.0.1:3128",
    "HTTPS_PROXY=http://127.0.0.1:3128",
    "all_proxy=http://127.0.0.1:3128",
    "ALL_PROXY=http://127.0.0.1:3128",
    "no_proxy=localhost",
    "NO_PROXY=localhost",
    NULL,
};

struct fixture {
    struct box_policy box;
    struct exec_ctx ctx;
    struct init_user user;
    struct dbx_exec_req req;
};

static void setup(struct fixture *fx, uint32_t flags, char **req_env) {
    *fx = (struct fixture){0};
    fx->box.plan.env = plan_env;
    fx->box.plan.nenv = (uint32_t)(DBX_ARRAY_SIZE(plan_env) - 1);
    fx->ctx = (struct exec_ctx){
        .uid = 1000, .gid = 1000, .hostname = "testbox", .box = &fx->box, .ca = 0};
    fx->user = (struct init_user){
        .uid = 1000, .gid = 1000, .name = "dev", .home = "/home/dev", .shell = "/bin/bash"};
    fx->req.flags = flags;
    fx->req.env = req_env;
    fx->req.envc = (uint32_t)dbx_strv_len(req_env);
}

static void test_plain(void **state) {
    char *req_env[] = {"FOO=typed", NULL};
    struct fixture fx;
    setup(&fx, 0, req_env);
    fx.ctx.ca = CA_HAS_HOST_CRT | CA_HAS_DEVBOX_PEM;
    _cleanup_strv_ char **env = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(env, "PATH"), "/work/repo/.venv/bin:/usr/bin");
    assert_string_equal(exec_env_path(env), "/work/repo/.venv/bin:/usr/bin");
    assert_string_equal(get(env, "LD_PRELOAD"), "/work/repo/evil.so");
    assert_string_equal(get(env, "HOME"), "/work/repo");
    assert_string_equal(get(env, "FOO"), "typed");
    assert_string_equal(get(env, "USER"), "dev");
    assert_string_equal(get(env, "LOGNAME"), "dev");
    assert_string_equal(get(env, "SHELL"), "/bin/bash");
    assert_string_equal(get(env, "HOSTNAME"), "testbox");
    assert_string_equal(get(env, "Http_Proxy"), "http://mixed.invalid");
    assert_string_equal(get(env, "SSL_CERT_FILE"), CA_DEVBOX_PEM);
    assert_string_equal(get(env, "NODE_EXTRA_CA_CERTS"), CA_HOST_CRT);
}

static void test_admin_reset(void **state) {
    char *req_env[] = {"TERM=xterm-256color", "DEBIAN_FRONTEND=noninteractive", "FOO=typed", NULL};
    struct fixture fx;
    setup(&fx, DBX_EXEC_ADMIN, req_env);
    fx.ctx.ca = CA_HAS_HOST_CRT | CA_HAS_DEVBOX_PEM;
    /* what exec_spawn resolves for an admin command: 0:0, home /root, passwd's shell */
    fx.user = (struct init_user){
        .uid = 0, .gid = 0, .name = "toor", .home = "/root", .shell = "/bin/zsh"};
    _cleanup_strv_ char **env = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(env, "PATH"), DEFAULT_PATH);
    assert_string_equal(exec_env_path(env), DEFAULT_PATH);
    assert_string_equal(get(env, "HOME"), "/root");
    assert_string_equal(get(env, "USER"), "root");
    assert_string_equal(get(env, "LOGNAME"), "root");
    assert_string_equal(get(env, "SHELL"), "/bin/zsh");
    assert_string_equal(get(env, "HOSTNAME"), "testbox");
    assert_string_equal(get(env, "TERM"), "xterm-256color");
    assert_string_equal(get(env, "DEBIAN_FRONTEND"), "noninteractive");
    assert_string_equal(get(env, "FOO"), "typed"); /* typed on the host: kept */
    assert_null(get(env, "LD_PRELOAD"));
    assert_null(get(env, "PYTHONPATH"));
    assert_null(get(env, "Http_Proxy"));
    static const char *const proxies[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                          "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(proxies); i++)
        assert_string_equal(get(env, proxies[i]), "http://127.0.0.1:3128");
    assert_string_equal(get(env, "no_proxy"), "localhost");
    assert_string_equal(get(env, "NO_PROXY"), "localhost");
    static const char *const ca[] = {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                                     "GIT_SSL_CAINFO"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ca); i++)
        assert_string_equal(get(env, ca[i]), CA_DEVBOX_PEM);
    assert_string_equal(get(env, "NODE_EXTRA_CA_CERTS"), CA_HOST_CRT);
    assert_string_equal(get(env, "ENTR_INOTIFY_WORKAROUND"), "1");
    /* exactly these: 6 defaults and entr's, 4 CA + 1 Node, 8 proxy, 3 typed */
    assert_int_equal(dbx_strv_len(env), 7 + 5 + 8 + 3);
}

/* The request's env still wins for admin: the person at the host typed it. */
static void test_admin_request_wins(void **state) {
    char *req_env[] = {"PATH=/opt/tools/bin:/usr/bin", "http_proxy=http://typed.invalid", NULL};
    struct fixture fx;
    setup(&fx, DBX_EXEC_ADMIN, req_env);
    fx.user = (struct init_user){.uid = 0, .gid = 0, .home = "/root", .shell = "/bin/sh"};
    _cleanup_strv_ char **env = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(exec_env_path(env), "/opt/tools/bin:/usr/bin");
    assert_string_equal(get(env, "http_proxy"), "http://typed.invalid");
    assert_string_equal(get(env, "USER"), "root"); /* no passwd entry for uid 0 */
    assert_null(get(env, "SSL_CERT_FILE"));        /* no CA files */
}

/* The CA variables name only files ca_install wrote. */
static void test_ca_bits(void **state) {
    struct fixture fx;
    setup(&fx, 0, NULL);
    fx.ctx.ca = CA_HAS_HOST_CRT;
    _cleanup_strv_ char **env = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_null(get(env, "SSL_CERT_FILE"));
    assert_null(get(env, "GIT_SSL_CAINFO"));
    assert_string_equal(get(env, "NODE_EXTRA_CA_CERTS"), CA_HOST_CRT);
    fx.ctx.ca = CA_HAS_DEVBOX_PEM;
    _cleanup_strv_ char **env2 = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(env2, "CURL_CA_BUNDLE"), CA_DEVBOX_PEM);
    assert_null(get(env2, "NODE_EXTRA_CA_CERTS"));
}

/* LANG and the host's time zone (init-locale.c): set when SETUP found them; the plan's env and
 * the request's win, and an administrative command gets them too. */
static void test_locale_tz(void **state) {
    struct fixture fx;
    setup(&fx, 0, NULL);
    _cleanup_strv_ char **none = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_null(get(none, "LANG"));
    assert_null(get(none, "TZ"));
    fx.ctx.lang = "C.UTF-8";
    fx.ctx.tz = "Europe/Berlin";
    _cleanup_strv_ char **both = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(both, "LANG"), "C.UTF-8");
    assert_string_equal(get(both, "TZ"), "Europe/Berlin");
    char *plan[] = {"TZ=UTC", "LANG=de_DE.UTF-8", NULL};
    fx.box.plan.env = plan;
    fx.box.plan.nenv = 2;
    _cleanup_strv_ char **profile = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(profile, "TZ"), "UTC");
    assert_string_equal(get(profile, "LANG"), "de_DE.UTF-8");
    char *req_env[] = {"TZ=Asia/Tokyo", NULL};
    setup(&fx, DBX_EXEC_ADMIN, req_env);
    fx.ctx.lang = "C.UTF-8";
    fx.ctx.tz = "Europe/Berlin";
    fx.user = (struct init_user){.uid = 0, .gid = 0, .home = "/root", .shell = "/bin/sh"};
    _cleanup_strv_ char **admin = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(admin, "TZ"), "Asia/Tokyo");
    assert_string_equal(get(admin, "LANG"), "C.UTF-8");
}

/* entr in the box follows IN_MODIFY, the only event a host edit made in place gives there; a
 * command that sets it otherwise keeps its own value. */
static void test_entr(void **state) {
    struct fixture fx;
    setup(&fx, 0, NULL);
    _cleanup_strv_ char **plain = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(plain, "ENTR_INOTIFY_WORKAROUND"), "1");
    char *req_env[] = {"ENTR_INOTIFY_WORKAROUND=", NULL};
    setup(&fx, 0, req_env);
    _cleanup_strv_ char **own = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(own, "ENTR_INOTIFY_WORKAROUND"), ""); /* get: each key once */
}

/* A command that is not a login shell gets $HOME/.local/bin and $HOME/bin ahead of PATH, as a
 * login shell's ~/.profile would put them, with the final HOME; not a login shell, an admin
 * command or a PATH the request gave; no entry twice, none for a HOME that cannot be one. */
static void test_home_path(void **state) {
    char *argv[] = {"mytool", NULL};
    struct fixture fx;
    setup(&fx, 0, NULL);
    fx.req.argv = argv;
    fx.req.argc = 1;
    _cleanup_strv_ char **plain = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    /* the plan's HOME (/work/repo) is the command's, so its entries are */
    assert_string_equal(get(plain, "PATH"),
                        "/work/repo/.local/bin:/work/repo/bin:/work/repo/.venv/bin:/usr/bin");
    assert_string_equal(exec_env_path(plain), get(plain, "PATH"));

    static const struct {
        const char *home, *path, *want;
    } cases[] = {
        {"/home/dev", "/usr/bin:/bin", "/home/dev/.local/bin:/home/dev/bin:/usr/bin:/bin"},
        {"/home/dev/", "/usr/bin", "/home/dev/.local/bin:/home/dev/bin:/usr/bin"},
        {"/home/dev", "", "/home/dev/.local/bin:/home/dev/bin"}, /* no trailing ':' (cwd) */
        {"/home/dev", "/usr/bin:/home/dev/.local/bin",
         "/home/dev/bin:/usr/bin:/home/dev/.local/bin"},
        {"/home/dev", "/home/dev/bin:/usr/bin", "/home/dev/.local/bin:/home/dev/bin:/usr/bin"},
        {"/home/dev", "/home/dev/.local/bin:/home/dev/bin", "/home/dev/.local/bin:/home/dev/bin"},
        {"/home/dev", "/home/dev/.local/binx:/usr/bin",
         "/home/dev/.local/bin:/home/dev/bin:/home/dev/.local/binx:/usr/bin"},
        {"/", "/usr/bin", "/usr/bin"},
        {"//", "/usr/bin", "/usr/bin"},
        {"relative", "/usr/bin", "/usr/bin"},
        {"/home/a:b", "/usr/bin", "/usr/bin"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *h = dbx_xasprintf("HOME=%s", cases[i].home);
        _cleanup_free_ char *p = dbx_xasprintf("PATH=%s", cases[i].path);
        char *plan[] = {h, p, NULL};
        fx.box.plan.env = plan;
        fx.box.plan.nenv = 2;
        _cleanup_strv_ char **env = exec_env_build(&fx.ctx, &fx.user, &fx.req);
        assert_string_equal(get(env, "PATH"), cases[i].want);
    }

    /* the defaults: the user's home and the fixed PATH */
    fx.box.plan.env = NULL;
    fx.box.plan.nenv = 0;
    _cleanup_strv_ char **def = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(def, "PATH"), "/home/dev/.local/bin:/home/dev/bin:" DEFAULT_PATH);

    /* a login shell: its ~/.profile adds them */
    fx.req.argc = 0;
    _cleanup_strv_ char **login = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(login, "PATH"), DEFAULT_PATH);
    fx.req.argc = 1;

    /* a PATH typed on the host stays as typed */
    char *req_env[] = {"PATH=/opt/bin", NULL};
    fx.req.env = req_env;
    fx.req.envc = 1;
    _cleanup_strv_ char **typed = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(typed, "PATH"), "/opt/bin");

    /* an administrative command: the fixed PATH */
    setup(&fx, DBX_EXEC_ADMIN, NULL);
    fx.req.argv = argv;
    fx.req.argc = 1;
    fx.user = (struct init_user){.uid = 0, .gid = 0, .home = "/root", .shell = "/bin/sh"};
    _cleanup_strv_ char **admin = exec_env_build(&fx.ctx, &fx.user, &fx.req);
    assert_string_equal(get(admin, "PATH"), DEFAULT_PATH);
}

/* Where the host terminal's entry went: TERMINFO_DIRS names it, after what the environment named
 * (an image's or the profile's), with the system's directories (the empty entry) when it was
 * the only one; never twice. */
static void test_terminfo_dirs(void **state) {
    static const struct {
        const char *before, *after;
    } cases[] = {
        {NULL, "TERMINFO_DIRS=/run/devbox/terminfo:"},
        {"TERMINFO_DIRS=", "TERMINFO_DIRS=/run/devbox/terminfo:"},
        {"TERMINFO_DIRS=/nix/terminfo", "TERMINFO_DIRS=/nix/terminfo:/run/devbox/terminfo"},
        {"TERMINFO_DIRS=/a:", "TERMINFO_DIRS=/a::/run/devbox/terminfo"},
        {"TERMINFO_DIRS=/run/devbox/terminfo:", "TERMINFO_DIRS=/run/devbox/terminfo:"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        char **env = dbx_strv_push(NULL, "TERM=xterm-kitty");
        if (cases[i].before) env = dbx_strv_push(env, cases[i].before);
        exec_env_terminfo(&env);
        exec_env_terminfo(&env); /* the second adds nothing */
        assert_int_equal(dbx_strv_len(env), 2);
        assert_string_equal(env[0], "TERM=xterm-kitty");
        assert_string_equal(env[1], cases[i].after);
        dbx_strv_free(env);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_admin_reset),
        cmocka_unit_test(test_admin_request_wins),
        cmocka_unit_test(test_ca_bits),
        cmocka_unit_test(test_locale_tz),
        cmocka_unit_test(test_entr),
        cmocka_unit_test(test_home_path),
        cmocka_unit_test(test_terminfo_dirs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

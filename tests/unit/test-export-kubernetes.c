/* tests/unit/test-export-kubernetes.c: export_kubernetes against golden files (the built-in
 * default, strict and agent profiles, and tests/golden/kubernetes/every/devbox.ini in both
 * formats), byte for byte with fixed inputs; DEVBOX_UPDATE_GOLDEN=1 rewrites them.  Also: hostile
 * profile values stay scalars (parsed back with python3's yaml when it is there), invalid
 * UTF-8 is refused, names become DNS labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include "export/export.h"
#include "policy/policy.h"
#include "tests/unit/helpers.h"

#define GOLDEN "tests/golden/kubernetes"
#define IMAGE "registry.example/demo@sha256:" HEX64
#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define COMMIT "89abcdef0123456789abcdef0123456789abcdef"

static bool update(void) {
    const char *u = getenv("DEVBOX_UPDATE_GOLDEN");
    return u && strcmp(u, "1") == 0;
}

/* got must equal the file's bytes (or, updating, becomes them). */
static void golden(const char *dir, const char *file, const char *got) {
    _cleanup_free_ char *path = dbx_xasprintf(GOLDEN "/%s/%s", dir, file);
    if (update()) {
        _cleanup_free_ char *d = dbx_xasprintf(GOLDEN "/%s", dir);
        mkdir(d, 0755);
        test_write_file(path, got, 0644);
        return;
    }
    _cleanup_free_ char *want = NULL;
    size_t len = 0;
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_read_file_at(AT_FDCWD, path, 1 << 20, &want, &len, &err) < 0)
        fail_msg("%s (DEVBOX_UPDATE_GOLDEN=1 writes it)", err->msg);
    if (strcmp(want, got) != 0) {
        _cleanup_free_ char *tmp = dbx_xasprintf("/tmp/devbox-golden-%s-%s", dir, file);
        test_write_file(tmp, got, 0644);
        fail_msg("%s differs from the output (written to %s; diff them, and set "
                 "DEVBOX_UPDATE_GOLDEN=1 if the change is intended)",
                 path, tmp);
    }
}

/* The fixed inputs of every golden case. */
static struct export_input input(const struct profile *p, char **json, char **file) {
    struct export_input in = {
        .profile = p,
        .name = "demo",
        .image = IMAGE,
        .origin_url = "https://git.example/demo.git",
        .commit = COMMIT,
        .workdir = "/home/dev/demo",
        .uid = 1000,
        .gid = 1000,
        .host_cas = true,
        .idle_stop_s = 1800,
    };
    if (p->seccomp != PROFILE_SECCOMP_UNCONFINED) {
        dbx_error *err = NULL;
        if (policy_seccomp_oci_json(p->seccomp, json, &err) < 0)
            fail_msg("policy_seccomp_oci_json: %s", err->msg);
        *file = dbx_xasprintf("devbox/seccomp-%s.json",
                              p->seccomp == PROFILE_SECCOMP_STRICT ? "strict" : "default");
        in.seccomp_json = *json;
        in.seccomp_file = *file;
    }
    return in;
}

static void check_case(const char *dir, const struct profile *p, enum export_format fmt,
                       bool configmap) {
    _cleanup_free_ char *json = NULL, *file = NULL;
    struct export_input in = input(p, &json, &file);
    struct export_opts o = {.format = fmt, .seccomp_configmap = configmap};
    struct export_result res = {0};
    dbx_error *err = NULL;
    if (export_kubernetes(&in, &o, &res, &err) < 0) fail_msg("export: %s", err->msg);
    golden(dir, "demo.yaml", res.yaml);
    if (json && !configmap) golden(dir, strrchr(file, '/') + 1, json);
    /* the comment block names each item the warning line counts */
    for (char **n = res.not_carried; *n; n++) {
        _cleanup_free_ char *line = dbx_xasprintf("\n# - %s: ", *n);
        if (!strstr(res.yaml, line)) fail_msg("'%s' is not in the comment block", *n);
    }
    /* deterministic */
    struct export_result again = {0};
    assert_int_equal(export_kubernetes(&in, &o, &again, NULL), 0);
    assert_string_equal(res.yaml, again.yaml);
    export_result_clear(&again);
    export_result_clear(&res);
}

static void builtin_case(const char *name, const char *dir, enum export_format fmt,
                         bool configmap) {
    struct profile p = {0};
    dbx_error *err = NULL;
    if (profile_load_builtin(name, NULL, test_builtin_profiles(), &p, &err) < 0)
        fail_msg("profile_load_builtin %s: %s", name, err->msg);
    check_case(dir, &p, fmt, configmap);
    profile_clear(&p);
}

static void test_default(void **state) {
    builtin_case("default", "default", EXPORT_FORMAT_SANDBOX, false);
    /* stdout mode: the seccomp profile travels in a ConfigMap */
    builtin_case("default", "default-stdout", EXPORT_FORMAT_POD, true);
}

static void test_strict(void **state) {
    builtin_case("strict", "strict", EXPORT_FORMAT_SANDBOX, false);
}

static void test_agent(void **state) {
    builtin_case("agent", "agent", EXPORT_FORMAT_SANDBOX, false);
}

static const char config_ini[] = "[secret ANTHROPIC_API_KEY]\n"
                                 "env = ANTHROPIC_API_KEY\n"
                                 "hosts = api.anthropic.com\n"
                                 "header = x-api-key: {}\n";

static void load_every(struct repo *r, struct profile_user *u, struct profile *p) {
    _cleanup_free_ char *ini = NULL;
    size_t len = 0;
    dbx_error *err = NULL;
    if (dbx_read_file_at(AT_FDCWD, GOLDEN "/every/devbox.ini", 1 << 16, &ini, &len, &err) < 0)
        fail_msg("%s", err->msg);
    test_write_at(r->fd, "devbox.ini", ini);
    test_sh("mkdir -p '%s/vendor/ref'", r->dir);
    _cleanup_free_ char *e1 = test_config_load(r, config_ini, u);
    if (e1) fail_msg("config.ini: %s", e1);
    /* the fixture's config.ini sits in the repo: not devbox's state for this test's share */
    dbx_strv_free(u->private_dirs);
    u->private_dirs = NULL;
    _cleanup_free_ char *e2 = test_profile_load(r, u, p);
    if (e2) fail_msg("devbox.ini: %s", e2);
}

static void test_every(void **state) {
    struct repo *r = *state;
    struct profile_user u = {0};
    struct profile p = {0};
    load_every(r, &u, &p);
    check_case("every", &p, EXPORT_FORMAT_SANDBOX, false);
    check_case("every-pod", &p, EXPORT_FORMAT_POD, false);
    profile_clear(&p);
    profile_user_clear(&u);
}

/* ---- hostile values ----------------------------------------------------------------------- */

static const char *const hostile[] = {
    "line\nbreak: x\n- item",
    "\"quoted\" and \\back\\slash",
    "---",
    "key: value # not a comment",
    "#hash",
    "tab\there \x01\x1f\x7f",
    "unicode: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 c1:\xc2\x85\xc2\x9b bom:\xef\xbb\xbf",
    "  leading and trailing  ",
    "true",
    "0x1f",
    "",
    "{a: [b]}",
    "&anchor *alias !tag",
};

static void test_quote_roundtrip(void **state) {
    struct profile p = {0};
    assert_int_equal(profile_init_default(&p), 0);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(hostile); i++) {
        _cleanup_free_ char *kv = dbx_xasprintf("V%zu=%s", i, hostile[i]);
        p.env = dbx_strv_push(p.env, kv);
    }
    p.setup_run = dbx_strv_push(p.setup_run, hostile[0]);
    p.seccomp = PROFILE_SECCOMP_UNCONFINED;
    struct export_input in = {.profile = &p,
                              .name = "--Weird Name!!--",
                              .image = "img:1\n---\nkind: Secret",
                              .workdir = "/w/a: b",
                              .origin_url = "https://h/x\n# y",
                              .uid = 1000,
                              .gid = 1000};
    struct export_opts o = {.format = EXPORT_FORMAT_POD, .namespace_ = "ns\"x"};
    struct export_result res = {0};
    dbx_error *err = NULL;
    if (export_kubernetes(&in, &o, &res, &err) < 0) fail_msg("%s", err->msg);
    /* every line is a comment, a document marker, or indented structure: no value made one */
    size_t docs = 0;
    for (char *l = res.yaml; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (!strncmp(l, "---\n", 4)) docs++;
        if (*l != '#' && *l != ' ' && *l != '-' && strncmp(l, "apiVersion: ", 12) &&
            strncmp(l, "kind: ", 6) && strncmp(l, "metadata:", 9) && strncmp(l, "spec:", 5))
            fail_msg("unexpected line: %.40s", l);
    }
    assert_int_equal(docs, 2); /* Pod, NetworkPolicy */
    if (!test_have("python3")) {
        export_result_clear(&res);
        profile_clear(&p);
        skip_because("no python3 to parse the YAML back");
    }
    /* parse back: every env value as given, and the image and path */
    char tmpl[] = "/tmp/devbox-export-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(dbx_write_all(fd, res.yaml, strlen(res.yaml)), 0);
    close(fd);
    _cleanup_free_ char *want = dbx_xstrdup("");
    for (char **e = p.env; *e; e++) {
        _cleanup_free_ char *q = export_yaml_quote(*e);
        char *n = dbx_xasprintf("%s%s,", want, q);
        free(want);
        want = n;
    }
    _cleanup_free_ char *cmd =
        dbx_xasprintf("python3 -c 'import sys, yaml\n"
                      "d = list(yaml.safe_load_all(open(sys.argv[1], encoding=\"utf-8\")))\n"
                      "c = d[0][\"spec\"][\"containers\"][0]\n"
                      "got = [e[\"name\"] + \"=\" + e[\"value\"] for e in c[\"env\"]]\n"
                      "want = [%s]\n"
                      "assert got == want, (got, want)\n"
                      "assert c[\"image\"] == \"img:1\\n---\\nkind: Secret\"\n"
                      "assert c[\"workingDir\"] == \"/w/a: b\"\n"
                      "assert d[0][\"metadata\"][\"namespace\"] == \"ns\\\"x\"\n"
                      "assert d[0][\"metadata\"][\"name\"] == \"devbox-weird-name\"\n"
                      "' '%s' 2>&1",
                      want, tmpl);
    /* yaml is python3-yaml: a missing module is a skip, not a failure */
    int st = system("python3 -c 'import yaml' 2>/dev/null");
    if (st != 0) {
        unlink(tmpl);
        export_result_clear(&res);
        profile_clear(&p);
        skip_because("python3 has no yaml module");
    }
    st = system(cmd);
    unlink(tmpl);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    export_result_clear(&res);
    profile_clear(&p);
}

static void test_quote(void **state) {
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", "\"\""},
        {"a\"b\\c", "\"a\\\"b\\\\c\""},
        {"a\nb\tc\rd", "\"a\\nb\\tc\\x0dd\""},
        {"\x1b[31m\x7f", "\"\\x1b[31m\\x7f\""},
        {"\xc2\x85\xc2\x9b", "\"\\x85\\x9b\""},
        {"\xef\xbb\xbf\xef\xbf\xbe", "\"\\ufeff\\ufffe\""},
        {"\xc3\xa9\xf0\x9f\x98\x80", "\"\xc3\xa9\xf0\x9f\x98\x80\""},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *q = export_yaml_quote(cases[i].in);
        assert_non_null(q);
        assert_string_equal(q, cases[i].want);
    }
    /* not UTF-8: a lone continuation, an overlong '/', a surrogate, past U+10FFFF, cut short */
    static const char *const bad[] = {"\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "a\xe2\x82"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++)
        assert_null(export_yaml_quote(bad[i]));
}

static void test_invalid_utf8(void **state) {
    struct profile p = {0};
    assert_int_equal(profile_init_default(&p), 0);
    p.env = dbx_strv_push(p.env, "BAD=\xff");
    p.seccomp = PROFILE_SECCOMP_UNCONFINED;
    struct export_input in = {.profile = &p, .name = "demo", .image = IMAGE, .workdir = "/w"};
    struct export_opts o = {0};
    struct export_result res = {0};
    dbx_error *err = NULL;
    assert_int_equal(export_kubernetes(&in, &o, &res, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "not valid UTF-8"));
    assert_null(res.yaml);
    dbx_error_free(&err);
    /* a relative workspace path and a missing seccomp profile are refused too */
    in.workdir = "w";
    assert_int_equal(export_kubernetes(&in, &o, &res, NULL), -EINVAL);
    in.workdir = "/w";
    p.seccomp = PROFILE_SECCOMP_DEFAULT;
    assert_int_equal(export_kubernetes(&in, &o, &res, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "seccomp"));
    dbx_error_free(&err);
    profile_clear(&p);
}

/* The clone container takes only a URL a cluster can fetch from: a hostile or local origin
 * gives no clone container and a listed reason, never `git remote add origin ext::cmd`. */
static void test_origin(void **state) {
    static const char *const good[] = {"https://git.example/demo.git", "http://h/r",
                                       "ssh://git@h:22/r.git",         "git://h/r",
                                       "git@github.com:org/repo.git",  "h:r"};
    static const char *const bad[] = {"/home/u/src/repo",
                                      "./repo",
                                      "ext::sh -c id",
                                      "fd::3",
                                      "-uhack",
                                      "https://",
                                      "file:///srv/r",
                                      "h:",
                                      ":path",
                                      "https://h/r\nx",
                                      "https://h/ r",
                                      "transport::h/r"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(good); i++)
        if (!export_origin_fetchable(good[i])) fail_msg("refused '%s'", good[i]);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++)
        if (export_origin_fetchable(bad[i])) fail_msg("accepted '%s'", bad[i]);

    struct profile p = {0};
    dbx_error *err = NULL;
    if (profile_load_builtin("default", NULL, test_builtin_profiles(), &p, &err) < 0)
        fail_msg("profile_load_builtin: %s", err->msg);
    _cleanup_free_ char *json = NULL, *file = NULL;
    struct export_input in = input(&p, &json, &file);
    in.origin_url = "ext::sh -c touch% /tmp/pwned";
    struct export_opts o = {.format = EXPORT_FORMAT_POD};
    struct export_result res = {0};
    if (export_kubernetes(&in, &o, &res, &err) < 0) fail_msg("export: %s", err->msg);
    assert_null(strstr(res.yaml, "name: \"clone\""));
    assert_non_null(strstr(res.yaml, "# - workspace: origin 'ext::sh -c touch% /tmp/pwned' is a "
                                     "local path or not a URL"));
    export_result_clear(&res);
    profile_clear(&p);
}

/* Under an allowlist the clone reaches origin only on the port its URL uses, as Cilium's
 * toPorts will: the agent profile allows github.com on 443 and 80, so https clones and ssh
 * (22) is listed as unreachable. */
static void test_origin_port(void **state) {
    static const struct {
        const char *url;
        bool listed;
    } cases[] = {
        {"https://github.com/org/repo.git", false}, {"https://github.com:8443/org/repo.git", true},
        {"git@github.com:org/repo.git", true},      {"ssh://git@github.com/org/repo.git", true},
        {"https://example.org/repo.git", true},
    };
    struct profile p = {0};
    dbx_error *err = NULL;
    if (profile_load_builtin("agent", NULL, test_builtin_profiles(), &p, &err) < 0)
        fail_msg("profile_load_builtin: %s", err->msg);
    _cleanup_free_ char *json = NULL, *file = NULL;
    struct export_input in = input(&p, &json, &file);
    struct export_opts o = {.format = EXPORT_FORMAT_POD};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        in.origin_url = cases[i].url;
        struct export_result res = {0};
        if (export_kubernetes(&in, &o, &res, &err) < 0) fail_msg("export: %s", err->msg);
        bool listed = strstr(res.yaml, "# - workspace clone: ") != NULL;
        if (listed != cases[i].listed)
            fail_msg("%s: workspace clone %slisted", cases[i].url, listed ? "" : "not ");
        export_result_clear(&res);
    }
    profile_clear(&p);
}

static void test_names(void **state) {
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"demo", "demo"},
        {"My_Project.v2", "my-project-v2"},
        {"--x--", "x"},
        {"", "project"},
        {"\xc3\xa9t\xc3\xa9", "t"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *n = export_sanitize_name(cases[i].in);
        assert_string_equal(n, cases[i].want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_agent),
        cmocka_unit_test_setup_teardown(test_every, test_repo_setup, test_repo_teardown),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_quote_roundtrip),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_origin_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

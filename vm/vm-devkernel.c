/* vm/vm-devkernel.c: the devbox guest kernel: built once per machine from Debian's kernel source
 * package with the config fragment vm/devbox-kernel.config, cached by (source version, fragment
 * hash) where every DEVBOX_HOME finds it, and chosen over the Debian cloud kernel when ready.
 * The cache layout and the contract are in vm.h. */
#include "vm-internal.h"

#include "../common/sha256.h"
#include "../common/spawn.h"

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>

#define FRAGMENT_MAX (256u << 10) /* the fragment is ~6 KiB */
#define CONFIG_MAX (4u << 20)     /* a full .config is ~250 KiB */
#define INFO_MAX 4096u
#define INIT_MAX (64u << 20)
#define LOG_MAX (64u << 20) /* the build log on disk; the rest is dropped (the tail is kept) */
#define TAIL_BYTES 4096u
#define TAIL_LINES 8
#define DROPPED_MAX 10 /* fragment lines named in one error */
#define SRC_DIR_NAME "linux-source-6.1"

static const char *const step_names[] = {"unpack", "configure", "check", "compile", "install"};
enum { STEP_UNPACK, STEP_CONFIGURE, STEP_CHECK, STEP_COMPILE, STEP_INSTALL, NSTEPS };

const char *vm_devkernel_state_name(enum vm_devkernel_state s) {
    static const char *const names[] = {"absent", "building", "failed", "ready"};
    return (unsigned)s < DBX_ARRAY_SIZE(names) ? names[s] : "?";
}

/* ---- where things are --------------------------------------------------------------------- */

int vm_devkernel_fragment_path(char **ret, dbx_error **err) {
    const char *e = getenv("DEVBOX_KERNEL_CONFIG");
    if (e && *e) {
        char *p = realpath(e, NULL);
        if (!p) return dbx_error_set(err, errno, "DEVBOX_KERNEL_CONFIG '%s'", e);
        *ret = p;
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        const char *dir = dirname(self);
        /* build/devbox-full, $PREFIX/bin/devbox and $PREFIX/lib/devbox/devbox-full */
        static const char *const rel[] = {"", "/../vm", "/../share/devbox", "/../../share/devbox"};
        for (size_t i = 0; i < DBX_ARRAY_SIZE(rel); i++) {
            _cleanup_free_ char *p =
                dbx_xasprintf("%s%s/%s", dir, rel[i], VM_DEVKERNEL_FRAGMENT_NAME);
            char *real = access(p, R_OK) == 0 ? realpath(p, NULL) : NULL;
            if (real) {
                *ret = real;
                return 0;
            }
        }
    }
    const char *sys = "/usr/local/share/devbox/" VM_DEVKERNEL_FRAGMENT_NAME;
    if (access(sys, R_OK) == 0) {
        *ret = dbx_xstrdup(sys);
        return 0;
    }
    return dbx_error_set(
        err, 0,
        "kernel config fragment '%s' not found next to devbox, in ../vm, "
        "../share/devbox or ../../share/devbox from it or in /usr/local/share/devbox (set "
        "DEVBOX_KERNEL_CONFIG)",
        VM_DEVKERNEL_FRAGMENT_NAME);
}

char *vm_devkernel_key(const char *version, const char *fragment, size_t len) {
    size_t n = strlen(version);
    if (n == 0 || n > 64 || version[0] == '.' || version[0] == '-') return NULL;
    for (const char *p = version; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || strchr(".+~-", *p);
        if (!ok) return NULL;
    }
    uint8_t md[32];
    char hex[65];
    dbx_sha256(fragment, len, md);
    dbx_sha256_hex(md, hex);
    return dbx_xasprintf("%s-%.12s", version, hex);
}

int vm_devkernel_cache_dir(char **ret, dbx_error **err) {
    const char *e = getenv("DEVBOX_KERNEL_CACHE");
    if (e && *e) {
        if (e[0] != '/')
            return dbx_error_set(err, 0, "DEVBOX_KERNEL_CACHE '%s' is not an absolute path", e);
        *ret = dbx_xstrdup(e);
        return 0;
    }
    if (geteuid() == 0) {
        *ret = dbx_xstrdup(VM_DEVKERNEL_SYSTEM_CACHE);
        return 0;
    }
    /* The XDG base directory spec: a relative value is invalid and ignored. */
    const char *x = getenv("XDG_CACHE_HOME");
    if (x && x[0] == '/') {
        *ret = dbx_xasprintf("%s/devbox/kernel", x);
        return 0;
    }
    const char *h = getenv("HOME");
    if (!h || h[0] != '/')
        return dbx_error_set(err, 0,
                             "HOME is unset or not absolute: no place for the kernel cache (set "
                             "DEVBOX_KERNEL_CACHE)");
    *ret = dbx_xasprintf("%s/.cache/devbox/kernel", h);
    return 0;
}

bool vm_devkernel_stat_trusted(const struct stat *st) {
    return st->st_uid == 0 && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

bool vm_devkernel_path_trusted(const char *path) {
    if (path[0] != '/' || strlen(path) >= PATH_MAX) return false;
    _cleanup_free_ char *p = dbx_xstrdup(path);
    struct stat st;
    if (lstat("/", &st) < 0 || !vm_devkernel_stat_trusted(&st)) return false;
    /* every prefix ending before a '/', then the whole path */
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        bool ok = lstat(p, &st) == 0 && !S_ISLNK(st.st_mode) && vm_devkernel_stat_trusted(&st);
        *s = c;
        if (!ok) return false;
        if (c == '\0') return true;
    }
}

/* ---- the fragment against .config --------------------------------------------------------- */

/* The value .config gives name: "y", "\"-devbox\"", ... (malloc'd), "n" for "# NAME is not
 * set", NULL when .config does not mention it. */
static char *config_value(const char *config, const char *name) {
    size_t nlen = strlen(name);
    for (const char *l = config; *l;) {
        const char *end = strchr(l, '\n');
        size_t len = end ? (size_t)(end - l) : strlen(l);
        if (len > nlen && strncmp(l, name, nlen) == 0 && l[nlen] == '=')
            return dbx_xstrndup(l + nlen + 1, len - nlen - 1);
        if (len == nlen + 13 && strncmp(l, "# ", 2) == 0 && strncmp(l + 2, name, nlen) == 0 &&
            strncmp(l + 2 + nlen, " is not set", 11) == 0)
            return dbx_xstrdup("n");
        l = end ? end + 1 : l + len;
    }
    return NULL;
}

int vm_devkernel_config_check(const char *fragment, const char *config, dbx_error **err) {
    _cleanup_free_ char *frag = dbx_xstrdup(fragment);
    _cleanup_free_ char *msg = dbx_xstrdup("");
    unsigned lineno = 0, dropped = 0;
    for (char *l = frag, *next; l; l = next) {
        next = strchr(l, '\n');
        if (next) *next++ = '\0';
        lineno++;
        while (*l == ' ' || *l == '\t')
            l++;
        size_t len = strlen(l);
        while (len && (l[len - 1] == ' ' || l[len - 1] == '\t' || l[len - 1] == '\r'))
            l[--len] = '\0';
        if (!*l || *l == '#') continue;
        char *eq = strchr(l, '=');
        size_t nlen = eq ? strspn(l, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789_")
                         : 0;
        if (!eq || !dbx_str_has_prefix(l, "CONFIG_") || nlen != (size_t)(eq - l) || nlen < 8 ||
            !eq[1]) {
            _cleanup_free_ char *s = dbx_escape(l);
            return dbx_error_set(err, 0, "fragment line %u: '%s' is not CONFIG_NAME=value", lineno,
                                 s);
        }
        *eq = '\0';
        const char *want = eq + 1;
        _cleanup_free_ char *have = config_value(config, l);
        bool ok = strcmp(want, "n") == 0 ? !have || strcmp(have, "n") == 0
                                         : have && strcmp(have, want) == 0;
        if (ok) continue;
        if (++dropped > DROPPED_MAX) continue;
        _cleanup_free_ char *got = !have ? dbx_xstrdup("does not have it (unknown symbol, or a "
                                                       "dependency is missing)")
                                   : strcmp(have, "n") == 0
                                       ? dbx_xasprintf("has '# %s is not set' (a dependency is "
                                                       "missing?)",
                                                       l)
                                       : dbx_xasprintf("has '%s=%s'", l, have);
        char *m = dbx_xasprintf("%s%sfragment line %u '%s=%s' did not take: .config %s", msg,
                                *msg ? "; " : "", lineno, l, want, got);
        free(msg);
        msg = m;
    }
    if (dropped > DROPPED_MAX)
        return dbx_error_set(err, 0, "%s; and %u more", msg, dropped - DROPPED_MAX);
    if (dropped) return dbx_error_set(err, 0, "%s", msg);
    return 0;
}

/* ---- status -------------------------------------------------------------------------------- */

void vm_devkernel_status_clear(struct vm_devkernel_status *st) {
    if (!st) return;
    free(st->version);
    free(st->fragment);
    free(st->key);
    free(st->cache);
    free(st->vmlinux);
    free(st->failed_log);
    *st = (struct vm_devkernel_status){0};
}

static bool test_mode(void) {
    const char *t = getenv("DEVBOX_KERNEL_TEST_VMLINUX");
    return t && *t;
}

static char *dpkg_version(void) {
    char *argv[] = {"dpkg-query", "-W", "-f", "${Version}", VM_DEVKERNEL_PACKAGE, NULL};
    _cleanup_free_ char *out = NULL;
    int status = 0;
    _cleanup_error_ dbx_error *e = NULL;
    if (vm_run("dpkg-query", argv, NULL, &out, NULL, &status, &e) < 0 || status != 0) return NULL;
    out[strcspn(out, "\n")] = '\0';
    return *out ? TAKE_PTR(out) : NULL;
}

#define VERSION_CACHE_NAME "source-version"
#define VERSION_CACHE_MAX 512

/* dpkg-query costs ~10 ms on every boot (it loads dpkg's whole database), for an answer that
 * changes only when dpkg replaces the tarball: it unpacks every file of a package it installs
 * to a new inode and renames it over the old, so the tarball's inode, size and times name the
 * version.  The answer is kept in the user's kernel cache keyed on them; a file that does not
 * match (or does not parse) is asked again and rewritten.  Nothing is lost if it cannot be
 * written: the next boot asks dpkg-query again. */
char *vm_devkernel_source_version_cached(const char *tarball, const char *cache,
                                         char *(*query)(void)) {
    struct stat s;
    if (stat(tarball, &s) < 0 || !S_ISREG(s.st_mode)) return NULL;
    _cleanup_free_ char *stamp =
        dbx_xasprintf("%ju %ju %jd %jd.%09ld %jd.%09ld\n", (uintmax_t)s.st_dev, (uintmax_t)s.st_ino,
                      (intmax_t)s.st_size, (intmax_t)s.st_mtim.tv_sec, s.st_mtim.tv_nsec,
                      (intmax_t)s.st_ctim.tv_sec, s.st_ctim.tv_nsec);
    _cleanup_free_ char *path = dbx_xasprintf("%s/" VERSION_CACHE_NAME, cache);
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, path, VERSION_CACHE_MAX, &text, NULL, &e) == 0 &&
        dbx_str_has_prefix(text, stamp)) {
        char *v = text + strlen(stamp);
        size_t n = strcspn(v, "\n");
        if (n > 0 && v[n] == '\n' && v[n + 1] == '\0') return dbx_xstrndup(v, n);
    }
    char *v = query();
    if (!v || strchr(v, '\n')) return v;
    _cleanup_free_ char *out = dbx_xasprintf("%s%s\n", stamp, v);
    _cleanup_error_ dbx_error *we = NULL;
    if (dbx_mkdir_p(cache, 0755, &we) < 0) return v;
    _cleanup_close_ int dfd = open(cache, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) (void)dbx_write_file_atomic(dfd, VERSION_CACHE_NAME, out, strlen(out), 0644, &we);
    return v;
}

/* The installed source package's version, or NULL (not installed). */
static char *source_version(const char *cache) {
    const char *tv = getenv("DEVBOX_KERNEL_TEST_VERSION");
    if (test_mode() && tv && *tv) return dbx_xstrdup(tv);
    if (test_mode()) return dpkg_version();
    if (access(VM_DEVKERNEL_TARBALL, R_OK) < 0) return NULL;
    return vm_devkernel_source_version_cached(VM_DEVKERNEL_TARBALL, cache, dpkg_version);
}

/* Is someone building in cache (its lock held)? */
static bool lock_held(const char *cache) {
    _cleanup_free_ char *p = dbx_xasprintf("%s/lock", cache);
    _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0) return errno == EWOULDBLOCK;
    flock(fd, LOCK_UN);
    return false;
}

static void read_info(struct vm_devkernel_status *st, const char *dir) {
    _cleanup_free_ char *p = dbx_xasprintf("%s/info", dir);
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, p, INFO_MAX, &text, NULL, &e) < 0) return;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        uint64_t v;
        if (dbx_str_has_prefix(l, "seconds=") && dbx_parse_u64(l + 8, 0, UINT32_MAX, &v) == 0)
            st->build_seconds = v;
        if (dbx_str_has_prefix(l, "built=") && dbx_parse_u64(l + 6, 0, INT64_MAX, &v) == 0)
            st->built = (int64_t)v;
    }
}

/* Is cache/key/vmlinux there (and, for the system cache read by another user, trusted)? */
static bool find_ready(struct vm_devkernel_status *st, const char *cache, bool trust_check) {
    _cleanup_free_ char *dir = dbx_xasprintf("%s/%s", cache, st->key);
    _cleanup_free_ char *vm = dbx_xasprintf("%s/vmlinux", dir);
    struct stat s;
    if (lstat(vm, &s) < 0 || !S_ISREG(s.st_mode)) return false;
    if (trust_check && !vm_devkernel_path_trusted(vm)) return false;
    st->state = VM_DEVKERNEL_READY;
    char *c = dbx_xstrdup(cache); /* cache may be st->cache itself */
    free(st->cache);
    st->cache = c;
    st->vmlinux = TAKE_PTR(vm);
    st->size = (uint64_t)s.st_size;
    read_info(st, dir);
    return true;
}

static int read_fragment(const char *path, char **ret, size_t *ret_len, dbx_error **err) {
    if (dbx_read_file_at(AT_FDCWD, path, FRAGMENT_MAX, ret, ret_len, err) < 0)
        return dbx_error_wrap(err, "kernel config fragment");
    if (memchr(*ret, '\0', *ret_len)) {
        free(*ret);
        *ret = NULL;
        return dbx_error_set(err, 0, "kernel config fragment '%s' holds a NUL byte", path);
    }
    return 0;
}

/* The status, plus the fragment's bytes the key was computed over (ret_frag may be NULL). */
static int status_full(struct vm_devkernel_status *ret, char **ret_frag, size_t *ret_frag_len,
                       dbx_error **err) {
    struct vm_devkernel_status st = {0};
    const char *ov = getenv("DEVBOX_KERNEL_VMLINUX");
    if (ov && *ov) {
        struct stat s;
        st.vmlinux = realpath(ov, NULL);
        if (!st.vmlinux || stat(st.vmlinux, &s) < 0 || !S_ISREG(s.st_mode)) {
            int e = errno;
            vm_devkernel_status_clear(&st);
            return dbx_error_set(err, e, "DEVBOX_KERNEL_VMLINUX '%s' is not a regular file", ov);
        }
        st.state = VM_DEVKERNEL_READY;
        st.override = true;
        st.size = (uint64_t)s.st_size;
        st.version = dbx_xstrdup("");
        st.key = dbx_xstrdup("");
        st.fragment = dbx_xstrdup("");
        st.cache = dbx_xstrdup("");
        *ret = st;
        return 0;
    }
    _cleanup_free_ char *frag = NULL;
    size_t flen = 0;
    if (vm_devkernel_fragment_path(&st.fragment, err) < 0 ||
        read_fragment(st.fragment, &frag, &flen, err) < 0 ||
        vm_devkernel_cache_dir(&st.cache, err) < 0) {
        vm_devkernel_status_clear(&st);
        return -1;
    }
    st.version = source_version(st.cache);
    st.source_installed = st.version != NULL;
    if (!st.version) st.version = dbx_xstrdup("");
    st.key = st.source_installed ? vm_devkernel_key(st.version, frag, flen) : dbx_xstrdup("");
    if (!st.key) {
        _cleanup_free_ char *v = dbx_escape(st.version);
        vm_devkernel_status_clear(&st);
        return dbx_error_set(err, 0, "%s has an odd version '%s'", VM_DEVKERNEL_PACKAGE, v);
    }
    if (st.source_installed) {
        /* A cache root built serves every user, when root's alone can write it; an explicit
         * DEVBOX_KERNEL_CACHE is the only place (the tests rely on that). */
        const char *env = getenv("DEVBOX_KERNEL_CACHE");
        bool sys = !(env && *env) && strcmp(st.cache, VM_DEVKERNEL_SYSTEM_CACHE) != 0;
        if (!find_ready(&st, st.cache, false) &&
            !(sys && find_ready(&st, VM_DEVKERNEL_SYSTEM_CACHE, true))) {
            _cleanup_free_ char *failed = dbx_xasprintf("%s/%s.failed.log", st.cache, st.key);
            if (lock_held(st.cache) || (sys && lock_held(VM_DEVKERNEL_SYSTEM_CACHE)))
                st.state = VM_DEVKERNEL_BUILDING;
            else if (access(failed, F_OK) == 0)
                st.state = VM_DEVKERNEL_FAILED, st.failed_log = TAKE_PTR(failed);
        }
    }
    if (ret_frag) *ret_frag = TAKE_PTR(frag);
    if (ret_frag_len) *ret_frag_len = flen;
    *ret = st;
    return 0;
}

int vm_devkernel_status(struct vm_devkernel_status *ret, dbx_error **err) {
    return status_full(ret, NULL, NULL, err);
}

/* ---- building ------------------------------------------------------------------------------ */

struct build {
    const struct vm_devkernel_build_opts *o;
    const char *tmp; /* the work directory (absolute) */
    int log_fd;
    uint64_t log_bytes;
    unsigned files;
    unsigned step;
    uint64_t last_progress_ms;
    /* line scanner for "  CC      path.o" (kbuild's quiet output) */
    unsigned linepos;
    char head[5];
};

static void progress(struct build *b) {
    if (b->o->progress)
        b->o->progress(b->o->ctx, b->step + 1, NSTEPS, step_names[b->step], b->files);
}

static void log_write(struct build *b, const char *buf, size_t n) {
    if (b->log_bytes >= LOG_MAX) return;
    if (n > LOG_MAX - b->log_bytes) n = (size_t)(LOG_MAX - b->log_bytes);
    (void)dbx_write_all(b->log_fd, buf, n);
    b->log_bytes += n;
}

static void log_printf(struct build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_printf(struct build *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    log_write(b, m, strlen(m));
}

static void count_compiled(struct build *b, const char *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            b->linepos = 0;
            continue;
        }
        if (b->linepos < sizeof(b->head)) b->head[b->linepos] = buf[i];
        if (++b->linepos == sizeof(b->head) && memcmp(b->head, "  CC ", 5) == 0) b->files++;
    }
}

/* The last lines of the log, indented, for the error message. */
static char *log_tail(int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return dbx_xstrdup("");
    off_t off = st.st_size > (off_t)TAIL_BYTES ? st.st_size - (off_t)TAIL_BYTES : 0;
    char buf[TAIL_BYTES + 1];
    ssize_t n = pread(fd, buf, TAIL_BYTES, off);
    if (n <= 0) return dbx_xstrdup("");
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    char *start = buf + n;
    for (int lines = 0; start > buf && lines < TAIL_LINES;)
        if (*--start == '\n') lines++;
    if (*start == '\n') start++;
    _cleanup_free_ char *out = dbx_xstrdup("");
    for (char *save = NULL, *l = strtok_r(start, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *t = dbx_xasprintf("%s\n    %s", out, dbx_sanitize_printable(l));
        free(out);
        out = t;
    }
    return TAKE_PTR(out);
}

/* Run argv with its output into the log; an exit status other than 0 is an error. */
static int run_logged(struct build *b, char *const argv[], dbx_error **err) {
    _cleanup_free_ char *home = dbx_xasprintf("HOME=%s", b->tmp);
    /* no host environment: a stray ARCH, CROSS_COMPILE or KCONFIG_* would change the kernel */
    char *env[] = {
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", home, "KBUILD_BUILD_USER=devbox",
        "KBUILD_BUILD_HOST=devbox",           NULL};
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    _cleanup_close_ int rd = p[0];
    const struct dbx_spawn_fd fds[] = {{0, DBX_SPAWN_DEVNULL}, {1, p[1]}, {2, p[1]}};
    const struct dbx_spawn s = {.argv = argv,
                                .envp = env,
                                .search_path = true,
                                .cwd = b->tmp,
                                .new_pgrp = true,
                                /* devbox gone (Ctrl-C on a foreground build: make is in its own
                                 * group and does not see it): SIGTERM, which make passes on to
                                 * the sub-makes and compilers it runs; SIGKILL would orphan
                                 * them, compiling for minutes into a tree the next build
                                 * removes */
                                .pdeathsig = SIGTERM,
                                .fds = fds,
                                .nfds = DBX_ARRAY_SIZE(fds)};
    pid_t pid = -1;
    int r = dbx_spawn(&s, &pid, err);
    close(p[1]);
    if (r < 0) return r;
    char buf[16384];
    for (;;) {
        ssize_t n = read(rd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        log_write(b, buf, (size_t)n);
        count_compiled(b, buf, (size_t)n);
        uint64_t now = dbx_now_ms();
        if (now - b->last_progress_ms >= 1000) {
            b->last_progress_ms = now;
            progress(b);
        }
    }
    int status = dbx_spawn_wait(pid);
    if (status < 0) return dbx_error_set(err, errno, "%s: waitpid", argv[0]);
    if (WIFSIGNALED(status))
        return dbx_error_set(err, 0, "%s killed by signal %d", argv[0], WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        return dbx_error_set(err, 0, "%s exited with status %d", argv[0], WEXITSTATUS(status));
    return 0;
}

static int copy_file(const char *from, const char *to, dbx_error **err) {
    _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return dbx_error_set(err, errno, "open '%s'", from);
    _cleanup_close_ int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (out < 0) return dbx_error_set(err, errno, "create '%s'", to);
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return dbx_error_set(err, errno, "read '%s'", from);
        if (n == 0) break;
        if (dbx_write_all(out, buf, (size_t)n) < 0)
            return dbx_error_set(err, errno, "write '%s'", to);
    }
    return 0;
}

static int fsync_file(const char *path, mode_t mode, dbx_error **err) {
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fchmod(fd, mode) < 0 || fsync(fd) < 0)
        return dbx_error_set(err, errno, "fsync '%s'", path);
    return 0;
}

static int write_file(const char *dir, const char *name, const char *data, dbx_error **err) {
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return dbx_error_set(err, errno, "open '%s'", dir);
    return dbx_write_file_atomic(dfd, name, data, strlen(data), 0644, err);
}

static int test_delay(dbx_error **err) {
    const char *d = getenv("DEVBOX_KERNEL_TEST_DELAY");
    uint64_t s = 0;
    if (d && *d && dbx_parse_u64(d, 0, 600, &s) < 0)
        return dbx_error_set(err, 0, "DEVBOX_KERNEL_TEST_DELAY '%s' is not 0..600", d);
    for (uint64_t end = dbx_now_ms() + s * 1000; dbx_now_ms() < end;)
        usleep(50000);
    return 0;
}

/* One step of the build, in b->tmp (src = the unpacked tree, out = the object tree). */
static int do_step(struct build *b, const char *frag, size_t flen, dbx_error **err) {
    const char *tv = getenv("DEVBOX_KERNEL_TEST_VMLINUX");
    bool test = tv && *tv;
    _cleanup_free_ char *src = dbx_xasprintf("%s/" SRC_DIR_NAME, b->tmp);
    _cleanup_free_ char *out = dbx_xasprintf("%s/out", b->tmp);
    _cleanup_free_ char *o_arg = dbx_xasprintf("O=%s", out);
    _cleanup_free_ char *config = dbx_xasprintf("%s/.config", out);
    switch (b->step) {
    case STEP_UNPACK: {
        if (mkdir(out, 0755) < 0) return dbx_error_set(err, errno, "mkdir '%s'", out);
        if (test) return 0;
        char *argv[] = {"tar", "--no-same-owner", "-xJf", VM_DEVKERNEL_TARBALL, NULL};
        if (run_logged(b, argv, err) < 0) return -1;
        struct stat st;
        if (stat(src, &st) < 0 || !S_ISDIR(st.st_mode))
            return dbx_error_set(err, 0, "'%s' has no %s/ directory", VM_DEVKERNEL_TARBALL,
                                 SRC_DIR_NAME);
        return 0;
    }
    case STEP_CONFIGURE: {
        /* the very bytes the key hashed, not the file again */
        if (write_file(b->tmp, VM_DEVKERNEL_FRAGMENT_NAME, frag, err) < 0) return -1;
        if (test) return write_file(out, ".config", frag, err);
        _cleanup_free_ char *all =
            dbx_xasprintf("KCONFIG_ALLCONFIG=%s/%s", b->tmp, VM_DEVKERNEL_FRAGMENT_NAME);
        char *argv[] = {"make", "-C", src, o_arg, all, "allnoconfig", NULL};
        return run_logged(b, argv, err);
    }
    case STEP_CHECK: {
        _cleanup_free_ char *text = NULL;
        if (dbx_read_file_at(AT_FDCWD, config, CONFIG_MAX, &text, NULL, err) < 0) return -1;
        (void)flen;
        if (vm_devkernel_config_check(frag, text, err) < 0) {
            log_printf(b, "devbox: %s\n", (*err)->msg);
            return -1;
        }
        log_printf(b, "devbox: every CONFIG_ line of the fragment is in .config\n");
        return 0;
    }
    case STEP_COMPILE: {
        _cleanup_free_ char *vmlinux = dbx_xasprintf("%s/vmlinux", out);
        if (test) {
            if (test_delay(err) < 0) return -1;
            return copy_file(tv, vmlinux, err);
        }
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned jobs = b->o->jobs ? b->o->jobs : n > 0 ? (unsigned)n : 1;
        _cleanup_free_ char *j = dbx_xasprintf("-j%u", jobs);
        char *argv[] = {"make", "-C", src, o_arg, j, "vmlinux", NULL};
        return run_logged(b, argv, err);
    }
    }
    return 0;
}

/* Put out/vmlinux, out/.config, the log and info into tmp/result and rename it to cache/key. */
static int install(struct build *b, int cfd, const char *cache, const char *key,
                   const char *version, uint64_t t0, dbx_error **err) {
    _cleanup_free_ char *res = dbx_xasprintf("%s/result", b->tmp);
    _cleanup_free_ char *from_vm = dbx_xasprintf("%s/out/vmlinux", b->tmp);
    _cleanup_free_ char *from_cfg = dbx_xasprintf("%s/out/.config", b->tmp);
    _cleanup_free_ char *to_vm = dbx_xasprintf("%s/vmlinux", res);
    _cleanup_free_ char *to_cfg = dbx_xasprintf("%s/config", res);
    _cleanup_free_ char *from_log = dbx_xasprintf("%s/build.log", b->tmp);
    _cleanup_free_ char *to_log = dbx_xasprintf("%s/build.log", res);
    struct stat st;
    if (stat(from_vm, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
        return dbx_error_set(err, errno ? errno : EINVAL, "no vmlinux at '%s'", from_vm);
    if (mkdir(res, 0755) < 0 || chmod(res, 0755) < 0)
        return dbx_error_set(err, errno, "mkdir '%s'", res);
    if (rename(from_vm, to_vm) < 0 || rename(from_cfg, to_cfg) < 0)
        return dbx_error_set(err, errno, "move the build into '%s'", res);
    uint64_t secs = (dbx_now_ms() - t0 + 500) / 1000;
    log_printf(b, "devbox: built %s in %llu s\n", key, (unsigned long long)secs);
    if (fsync(b->log_fd) < 0 || rename(from_log, to_log) < 0)
        return dbx_error_set(err, errno, "move the log into '%s'", res);
    if (fsync_file(to_vm, 0644, err) < 0 || fsync_file(to_cfg, 0644, err) < 0 ||
        fsync_file(to_log, 0644, err) < 0)
        return -1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    _cleanup_free_ char *info =
        dbx_xasprintf("version=%s\nseconds=%llu\nbuilt=%lld\njobs=%u\n", version,
                      (unsigned long long)secs, (long long)time(NULL),
                      b->o->jobs ? b->o->jobs
                      : n > 0    ? (unsigned)n
                                 : 1);
    if (write_file(res, "info", info, err) < 0) return -1;
    if (renameat(AT_FDCWD, res, cfd, key) < 0)
        return dbx_error_set(err, errno, "rename into '%s/%s'", cache, key);
    if (fsync(cfd) < 0) return dbx_error_set(err, errno, "fsync '%s'", cache);
    return 0;
}

static void rm_rf_quiet(const char *path) {
    dbx_error *e = NULL;
    vm_rm_rf(path, &e);
    dbx_error_free(&e);
}

/* Work directories of a builder that was killed; we hold the lock, so nobody uses them. */
static void clean_leftovers(const char *cache) {
    DIR *d = opendir(cache);
    if (!d) return;
    struct dirent *de;
    char **names = NULL;
    while ((de = readdir(d)))
        if (dbx_str_has_prefix(de->d_name, ".build-")) names = dbx_strv_push(names, de->d_name);
    closedir(d);
    for (size_t i = 0; names && names[i]; i++) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", cache, names[i]);
        rm_rf_quiet(p);
    }
    dbx_strv_free(names);
}

/* The build proper, under the lock, in a fresh work directory. */
static int build_locked(const struct vm_devkernel_build_opts *o, int cfd, const char *cache,
                        const struct vm_devkernel_status *st, const char *frag, size_t flen,
                        dbx_error **err) {
    _cleanup_free_ char *tmp = dbx_xasprintf("%s/.build-XXXXXX", cache);
    if (!mkdtemp(tmp)) return dbx_error_set(err, errno, "mkdtemp in '%s'", cache);
    _cleanup_free_ char *logp = dbx_xasprintf("%s/build.log", tmp);
    struct build b = {.o = o, .tmp = tmp};
    b.log_fd = open(logp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (b.log_fd < 0) {
        int e = errno;
        rm_rf_quiet(tmp);
        return dbx_error_set(err, e, "create '%s'", logp);
    }
    uint64_t t0 = dbx_now_ms();
    log_printf(&b, "devbox: building the devbox kernel %s from %s (%s %s) with %s\n", st->key,
               VM_DEVKERNEL_TARBALL, VM_DEVKERNEL_PACKAGE, st->version, st->fragment);
    int r = 0;
    for (b.step = 0; r == 0 && b.step < NSTEPS; b.step++) {
        progress(&b);
        log_printf(&b, "devbox: step %s\n", step_names[b.step]);
        r = b.step == STEP_INSTALL ? install(&b, cfd, cache, st->key, st->version, t0, err)
                                   : do_step(&b, frag, flen, err);
        if (r < 0) break;
    }
    if (r < 0) {
        /* keep the log where status finds it; the step and its last lines go in the error */
        _cleanup_free_ char *failed = dbx_xasprintf("%s.failed.log", st->key);
        log_printf(&b, "devbox: step %s failed: %s\n", step_names[b.step], (*err)->msg);
        _cleanup_free_ char *tail = log_tail(b.log_fd);
        (void)fsync(b.log_fd);
        bool kept = renameat(AT_FDCWD, logp, cfd, failed) == 0;
        _cleanup_free_ char *why = dbx_xstrdup((*err)->msg);
        _cleanup_free_ char *where =
            kept ? dbx_xasprintf("%s/%s", cache, failed) : dbx_xstrdup("(not kept)");
        dbx_error_free(err);
        dbx_error_set(err, 0, "kernel build step '%s' failed: %s; last lines of %s:%s",
                      step_names[b.step], why, where, tail);
    } else {
        _cleanup_free_ char *failed = dbx_xasprintf("%s.failed.log", st->key);
        (void)unlinkat(cfd, failed, 0);
    }
    close(b.log_fd);
    rm_rf_quiet(tmp);
    return r;
}

static void unlockp(int *fd) {
    if (*fd >= 0) {
        flock(*fd, LOCK_UN);
        close(*fd);
    }
}

/* The source version in a cache entry named after a key ("<version>-<12 hex digits>", a build,
 * or that plus ".failed.log"), malloc'd; NULL for any other name. */
char *vm_devkernel_entry_version(const char *name) {
    static const char failed[] = ".failed.log";
    size_t n = strlen(name), f = strlen(failed);
    if (n > f && strcmp(name + n - f, failed) == 0) n -= f;
    if (n < 14 || name[n - 13] != '-' || strspn(name + n - 12, "0123456789abcdef") != 12)
        return NULL;
    char *v = dbx_xstrndup(name, n - 13);
    _cleanup_free_ char *k = vm_devkernel_key(v, "", 0); /* the version rules of a key */
    if (!k) {
        free(v);
        return NULL;
    }
    return v;
}

/* After a build of `version` (the installed source package's), under the cache's lock: the
 * builds and failed logs of other source versions go, but for the newest other build.  No
 * devbox on this machine boots those again once it has chosen its kernel, since every one keys
 * on the installed package (an upgrade replaces it), and each is a 21 MiB vmlinux, one per
 * Debian kernel update.  The newest other one stays for a start that chose it before the
 * upgrade and opens it again for its box's boot after a long [setup] (a box that runs holds its
 * own copy, or maps the file, which outlives its name), and for a cache shared by two machines
 * a version apart.  Builds of this version with another fragment (another devbox's) stay.
 * What went is appended to the new build's log. */
static void prune_old_versions(int cfd, const char *cache, const char *version, const char *key) {
    int dfd = openat(cfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0) close(dfd);
        return;
    }
    char **gone = NULL;
    _cleanup_free_ char *newest = NULL; /* the newest other version's build, kept */
    struct timespec newest_t = {0};
    for (struct dirent *de; (de = readdir(d));) {
        _cleanup_free_ char *v = vm_devkernel_entry_version(de->d_name);
        struct stat st;
        if (!v || strcmp(v, version) == 0 || fstatat(cfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        /* a build is a directory; its mtime is its build's end (vmlinux renamed in last) */
        if (S_ISDIR(st.st_mode) &&
            (!newest || st.st_mtim.tv_sec > newest_t.tv_sec ||
             (st.st_mtim.tv_sec == newest_t.tv_sec && st.st_mtim.tv_nsec > newest_t.tv_nsec))) {
            if (newest) gone = dbx_strv_push(gone, newest);
            free(newest);
            newest = dbx_xstrdup(de->d_name);
            newest_t = st.st_mtim;
            continue;
        }
        gone = dbx_strv_push(gone, de->d_name);
    }
    closedir(d);
    _cleanup_free_ char *logp = dbx_xasprintf("%s/build.log", key);
    _cleanup_close_ int log = openat(cfd, logp, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    for (size_t i = 0; gone && gone[i]; i++) {
        struct stat st;
        if (fstatat(cfd, gone[i], &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (S_ISDIR(st.st_mode)) {
            _cleanup_free_ char *p = dbx_xasprintf("%s/%s", cache, gone[i]);
            rm_rf_quiet(p);
        } else {
            (void)unlinkat(cfd, gone[i], 0);
        }
        if (log >= 0 && faccessat(cfd, gone[i], F_OK, AT_SYMLINK_NOFOLLOW) < 0)
            dprintf(log, "devbox: removed '%s' (source version other than %s)\n", gone[i], version);
    }
    if (log >= 0 && newest)
        dprintf(log, "devbox: kept '%s' (the newest build of another source version)\n", newest);
    dbx_strv_free(gone);
}

/* May a build of st's key prune the others?  Not when the installed package changed while it
 * waited for the lock: its key is then the dead one. */
static bool may_prune(const struct vm_devkernel_status *st) {
    _cleanup_free_ char *now = source_version(st->cache);
    return now && strcmp(now, st->version) == 0;
}

/* Under the cache's lock: 1 built, 0 there already, 2 busy or skipped, <0 error. */
static int build_in_cache(const struct vm_devkernel_build_opts *o,
                          const struct vm_devkernel_status *st, const char *frag, size_t flen,
                          dbx_error **err) {
    if (dbx_mkdir_p(st->cache, 0755, err) < 0) return dbx_error_wrap(err, "kernel cache");
    _cleanup_close_ int cfd = open(st->cache, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (cfd < 0) return dbx_error_set(err, errno, "open '%s'", st->cache);
    __attribute__((cleanup(unlockp))) int lock =
        openat(cfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0) return dbx_error_set(err, errno, "open '%s/lock'", st->cache);
    /* Only the cache's owner may open its lock: in root's shared cache, a user who could would
     * hold it (even shared) and stall every build.  Other users' `kernel status` then cannot
     * tell "building" from "absent", which costs them nothing.  (A lock from an older devbox
     * was 0644.) */
    if (fchmod(lock, 0600) < 0) return dbx_error_set(err, errno, "chmod '%s/lock'", st->cache);
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) return dbx_error_set(err, errno, "lock '%s/lock'", st->cache);
        if (!o->wait) return 2;
        if (o->progress) o->progress(o->ctx, 0, NSTEPS, "waiting for another build", 0);
        while (flock(lock, LOCK_EX) < 0)
            if (errno != EINTR) return dbx_error_set(err, errno, "lock '%s/lock'", st->cache);
    }
    /* Another process may have built it, or failed, while we waited. */
    _cleanup_free_ char *have = dbx_xasprintf("%s/vmlinux", st->key);
    _cleanup_free_ char *failed = dbx_xasprintf("%s.failed.log", st->key);
    if (faccessat(cfd, have, F_OK, AT_SYMLINK_NOFOLLOW) == 0) return 0;
    if (o->skip_failed && faccessat(cfd, failed, F_OK, AT_SYMLINK_NOFOLLOW) == 0) return 2;
    clean_leftovers(st->cache);
    if (build_locked(o, cfd, st->cache, st, frag, flen, err) < 0) return -1;
    if (may_prune(st)) prune_old_versions(cfd, st->cache, st->version, st->key);
    return 1;
}

int vm_devkernel_build(const struct vm_devkernel_build_opts *o, struct vm_devkernel_status *ret,
                       dbx_error **err) {
    struct vm_devkernel_status st = {0};
    _cleanup_free_ char *frag = NULL;
    size_t flen = 0;
    if (status_full(&st, &frag, &flen, err) < 0) return -1;
    const char *cache_env = getenv("DEVBOX_KERNEL_CACHE");
    int r = 0;
    /* the knob's fake kernel (and its made-up version, which would prune the real builds)
     * never goes into a cache the test did not name: as root that is the machine's */
    if (test_mode() && !st.override && !(cache_env && *cache_env))
        r = dbx_error_set(err, 0,
                          "DEVBOX_KERNEL_TEST_VMLINUX needs DEVBOX_KERNEL_CACHE (a cache "
                          "of the test's own)");
    else if (st.override || st.state == VM_DEVKERNEL_READY)
        r = 0;
    else if (!st.source_installed)
        r = dbx_error_set(err, 0,
                          "the kernel source package %s is not installed (apt-get install %s, "
                          "or make deps)",
                          VM_DEVKERNEL_PACKAGE, VM_DEVKERNEL_PACKAGE);
    else
        r = build_in_cache(o, &st, frag, flen, err);
    vm_devkernel_status_clear(&st);
    if (r >= 0 && ret && status_full(ret, NULL, NULL, err) < 0) return -1;
    return r;
}

/* ---- booting it ----------------------------------------------------------------------------- */

int vm_devkernel_ensure(const char *kernel_dir, const char *init_path,
                        const struct vm_devkernel_status *st, struct vm_kernel *ret,
                        dbx_error **err) {
    if (st->state != VM_DEVKERNEL_READY || !st->vmlinux)
        return dbx_error_set(err, 0, "the devbox kernel is not built");
    if (dbx_mkdir_private(kernel_dir, err) < 0) return dbx_error_wrap(err, "kernel directory");
    _cleanup_free_ char *kdir = realpath(kernel_dir, NULL);
    if (!kdir) return dbx_error_set(err, errno, "resolve '%s'", kernel_dir);
    _cleanup_close_ int kfd = open(kdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (kfd < 0) return dbx_error_set(err, errno, "open '%s'", kdir);
    /* the same lock as vm_kernel_ensure's: its clean-up removes .initramfs-* temp files */
    __attribute__((cleanup(unlockp))) int lock =
        openat(kfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0) return dbx_error_set(err, errno, "open '%s/lock'", kdir);
    while (flock(lock, LOCK_EX) < 0)
        if (errno != EINTR) return dbx_error_set(err, errno, "lock '%s/lock'", kdir);

    _cleanup_free_ char *init = NULL;
    size_t init_len = 0;
    if (dbx_read_file_at(AT_FDCWD, init_path, INIT_MAX, &init, &init_len, err) < 0)
        return dbx_error_wrap(err, "init");
    /* OpenSSL's SHA-256, not common/sha256.c's (the guest's, small and portable): the same
     * digest of the ~1.5 MiB init in a third of the time, on every boot's path */
    uint8_t md[32];
    char hex[65];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool hashed = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
                  EVP_DigestUpdate(c, "devbox-initramfs-init-v2", 25) == 1 &&
                  EVP_DigestUpdate(c, init, init_len) == 1 && EVP_DigestFinal_ex(c, md, NULL) == 1;
    EVP_MD_CTX_free(c);
    if (!hashed) return dbx_error_set(err, EIO, "SHA-256 of the init '%s' (OpenSSL)", init_path);
    dbx_sha256_hex(md, hex);
    _cleanup_free_ char *name = dbx_xasprintf("devbox-initramfs-%s.cpio", hex);
    struct stat sb;
    if (fstatat(kfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        _cleanup_free_ char *tpath = dbx_xasprintf("%s/.initramfs-XXXXXX", kdir);
        _cleanup_close_ int fd = mkostemp(tpath, O_CLOEXEC);
        if (fd < 0) return dbx_error_set(err, errno, "create '%s'", tpath);
        /* the bytes hashed, not the file again: a rebuilt init would get the old one's name */
        int r = vm_initramfs_write_mem(fd, init, init_len, NULL, 0, err);
        if (r == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
            r = dbx_error_set(err, errno, "write '%s'", tpath);
        if (r == 0 && renameat(AT_FDCWD, tpath, kfd, name) < 0)
            r = dbx_error_set(err, errno, "rename '%s/%s'", kdir, name);
        if (r < 0) {
            unlink(tpath);
            return dbx_error_wrap(err, "initramfs");
        }
        (void)fsync(kfd);
    }
    vm_initramfs_prune(kfd, name);
    ret->vmlinuz = dbx_xstrdup(st->vmlinux);
    ret->initramfs = dbx_xasprintf("%s/%s", kdir, name);
    ret->release = st->override ? dbx_xstrdup("devbox (DEVBOX_KERNEL_VMLINUX)")
                                : dbx_xasprintf("devbox %s", st->key);
    return 0;
}

/* ---- which kernel ---------------------------------------------------------------------------- */

int vm_kernel_select(const char *env, const char *profile, bool devbox_ready,
                     enum vm_kernel_kind *ret, dbx_error **err) {
    static const char *const names[] = {"auto", "devbox", "debian"};
    bool from_env = env && *env;
    const char *v = from_env ? env : profile ? profile : "auto";
    size_t i = 0;
    while (i < DBX_ARRAY_SIZE(names) && strcmp(v, names[i]) != 0)
        i++;
    if (i == DBX_ARRAY_SIZE(names)) {
        _cleanup_free_ char *s = dbx_escape(v);
        return dbx_error_set(err, 0, "%s '%s': expected auto, devbox or debian",
                             from_env ? "DEVBOX_KERNEL" : "[box] kernel", s);
    }
    if (i == 1 && !devbox_ready)
        return dbx_error_set(err, 0,
                             "the devbox kernel is not built (%s asks for it): run 'devbox kernel "
                             "build' (once per machine), or use kernel = debian",
                             from_env ? "DEVBOX_KERNEL=devbox" : "[box] kernel = devbox");
    *ret = i == 2 || (i == 0 && !devbox_ready) ? VM_KERNEL_DEBIAN : VM_KERNEL_DEVBOX;
    return 0;
}

/* vm/vm-run.c: running the helper programs the vm module needs (apt, dpkg-deb, modinfo,
 * genext2fs, e2fsprogs, qemu-img) with an argv, never a shell, and turning their failures into
 * one-line errors that keep the program's own words. */
#include "vm-internal.h"

#include "../common/spawn.h"

#include <ftw.h>
#include <poll.h>
#include <sys/wait.h>

#define STDOUT_CAP (16u << 20)
#define STDERR_KEEP 8192u

static const char *const passed_env[] = {"http_proxy",  "https_proxy", "HTTP_PROXY",
                                         "HTTPS_PROXY", "no_proxy",    "NO_PROXY"};

static char **helper_env(void) {
    char **env = NULL;
    env = dbx_strv_push(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
    env = dbx_strv_push(env, "LC_ALL=C");
    for (size_t i = 0; i < DBX_ARRAY_SIZE(passed_env); i++) {
        const char *v = getenv(passed_env[i]);
        if (!v) continue;
        _cleanup_free_ char *kv = dbx_xasprintf("%s=%s", passed_env[i], v);
        env = dbx_strv_push(env, kv);
    }
    return env;
}

/* The line worth showing: apt's last "E: " line, else the last non-empty line. */
static char *last_error_line(const char *buf, size_t len) {
    const char *best = NULL, *best_end = NULL, *last = NULL, *last_end = NULL;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *s = p, *e = le;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (e > s) {
            last = s, last_end = e;
            if (e - s > 3 && s[0] == 'E' && s[1] == ':' && s[2] == ' ') best = s, best_end = e;
        }
        p = nl ? nl + 1 : end;
    }
    if (!best) best = last, best_end = last_end;
    if (!best) return NULL;
    char *line = dbx_xstrndup(best, (size_t)(best_end - best));
    return dbx_sanitize_printable(line);
}

uid_t vm_nobody_uid(void) {
    /* /etc/passwd only (no NSS: a name service must not run code in the supervisor). */
    _cleanup_free_ char *pw = NULL;
    if (dbx_read_file_at(AT_FDCWD, "/etc/passwd", 4u << 20, &pw, NULL, NULL) < 0) return 65534;
    for (char *line = pw; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        unsigned long uid;
        char name[16];
        if (sscanf(line, "%15[^:]:%*[^:]:%lu:", name, &uid) == 2 && strcmp(name, "nobody") == 0 &&
            uid > 0 && uid < 0xffffffffUL)
            return (uid_t)uid;
        line = next;
    }
    return 65534;
}

static void drain(int *fd, char **buf, size_t *len, size_t cap, bool keep_tail, bool *overflow) {
    char tmp[16384];
    ssize_t n = read(*fd, tmp, sizeof(tmp));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
        close(*fd);
        *fd = -EBADF;
        return;
    }
    if (!buf) return;
    if (*len + (size_t)n > cap) {
        if (!keep_tail) {
            *overflow = true;
            return;
        }
        size_t drop = *len + (size_t)n - cap;
        if (drop > *len) drop = *len;
        memmove(*buf, *buf + drop, *len - drop);
        *len -= drop;
        if ((size_t)n > cap) n = (ssize_t)cap; /* cannot happen: tmp < cap */
    }
    *buf = dbx_xrealloc(*buf, *len + (size_t)n + 1);
    memcpy(*buf + *len, tmp, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
}

int vm_run(const char *label, char *const argv[], const char *cwd, char **ret_stdout,
           char **ret_stderr, int *ret_status, dbx_error **err) {
    if (!label) label = argv[0];
    _cleanup_strv_ char **env = helper_env();
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (outp[i] >= 0) close(outp[i]);
            if (errp[i] >= 0) close(errp[i]);
        }
        return dbx_error_set(err, e, "%s: pipe", label);
    }
    _cleanup_close_ int out_r = outp[0], err_r = errp[0];
    const struct dbx_spawn_fd fds[] = {
        {0, DBX_SPAWN_DEVNULL}, {1, ret_stdout ? outp[1] : DBX_SPAWN_DEVNULL}, {2, errp[1]}};
    const struct dbx_spawn s = {.argv = argv,
                                .envp = env,
                                .search_path = true,
                                .cwd = cwd,
                                .fds = fds,
                                .nfds = DBX_ARRAY_SIZE(fds)};
    pid_t pid = -1;
    int r = dbx_spawn(&s, &pid, err);
    close(outp[1]);
    close(errp[1]);
    if (r < 0) return r;

    _cleanup_free_ char *out = NULL, *errbuf = NULL;
    size_t out_len = 0, err_len = 0;
    bool overflow = false;
    while (out_r >= 0 || err_r >= 0) {
        struct pollfd p[2] = {{.fd = out_r, .events = POLLIN}, {.fd = err_r, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[0].revents)
            drain(&out_r, ret_stdout ? &out : NULL, &out_len, STDOUT_CAP, false, &overflow);
        if (p[1].revents) drain(&err_r, &errbuf, &err_len, STDERR_KEEP, true, &overflow);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return dbx_error_set(err, errno, "%s: waitpid", label);
    }
    if (WIFSIGNALED(status))
        return dbx_error_set(err, 0, "%s: killed by signal %d", label, WTERMSIG(status));
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    if (code != 0 && !ret_status) {
        _cleanup_free_ char *line = errbuf ? last_error_line(errbuf, err_len) : NULL;
        if (line) return dbx_error_set(err, 0, "%s: %s", label, line);
        return dbx_error_set(err, 0, "%s: exited with status %d", label, code);
    }
    if (overflow)
        return dbx_error_set(err, 0, "%s: output larger than %u bytes", label, STDOUT_CAP);
    if (ret_stdout) *ret_stdout = out ? TAKE_PTR(out) : dbx_xstrdup("");
    if (ret_stderr) *ret_stderr = errbuf ? TAKE_PTR(errbuf) : dbx_xstrdup("");
    if (ret_status) *ret_status = code;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)ftw;
    if (type == FTW_DP) return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int vm_rm_rf(const char *path, dbx_error **err) {
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT) return 0;
        return dbx_error_set(err, errno, "stat '%s'", path);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0 && errno != ENOENT)
            return dbx_error_set(err, errno, "remove '%s'", path);
        return 0;
    }
    if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
        return dbx_error_set(err, errno, "remove '%s'", path);
    return 0;
}

/* sandbox/supervisor-secrets.c: the values of the secrets a box uses (config.ini's
 * [secret NAME], asked for by the repo's `[secrets] use`), held by the supervisor for the
 * egress proxy, which puts them into requests to the secret's hosts; the box only ever sees a
 * placeholder (docs/secrets.md).
 *
 * Where a value may leak on the host, and what stops it:
 *   memory      every value (and the per-box CA's key) lives in a mapping of its own: mlock'd
 *               (not swapped; a warning when RLIMIT_MEMLOCK is too small), MADV_DONTDUMP (not
 *               in a core dump), MADV_DONTFORK (not in a child between fork and exec), zeroed
 *               before munmap; the supervisor is PR_SET_DUMPABLE 0 while it holds them (no
 *               core at all, /proc/PID/mem and environ closed to the user's other processes)
 *   environ     an `env =` variable is copied out, its bytes in the environment block are
 *               zeroed (what /proc/PID/environ shows) and it is unset, before the supervisor
 *               starts any child; declared secrets the box does not use go as well
 *   children    (already) QEMU, virtiofsd, passt and helpers get environments of their own
 *   files       nothing here writes: not the value, not the CA key
 *   messages    errors name the secret and its source, never a byte of the value
 * Read late (after [setup], which never gets a secret) so that a setup VM's rootless passt,
 * which writes its own uid_map before exec and so needs a dumpable parent, is not in the way. */
#define _GNU_SOURCE
#include "supervisor-internal.h"
#include "../common/spawn.h"
#include "../proxy/proxy.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define SECRET_MAX PROXY_SECRET_VALUE_MAX /* a value, from any source (the proxy's cap) */
#define SECRET_CMD_MS 10000               /* a `command =` source's time limit */
#define SECRET_CMD_ERR_MAX 1024u          /* the command's stderr kept for the error message */
#define SECRET_PLACEHOLDER "devbox-secret-%s-%s"

extern char **environ;

/* ---- protected memory ------------------------------------------------------------------- */

struct secmem {
    char *p;
    size_t size; /* of the mapping */
};

static void secmem_free(struct secmem *m) {
    if (!m->p) return;
    explicit_bzero(m->p, m->size);
    munlock(m->p, m->size);
    munmap(m->p, m->size);
    *m = (struct secmem){0};
}

/* len + 1 bytes (a NUL after the text), zeroed, in pages of their own.  *locked is cleared
 * when mlock failed (the caller warns once). */
static int secmem_alloc(struct secmem *ret, size_t len, bool *locked, dbx_error **err) {
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    size_t size = (len + 1 + page - 1) / page * page;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return dbx_error_set(err, errno, "mmap %zu bytes for a secret", size);
    if (madvise(p, size, MADV_DONTDUMP) < 0 || madvise(p, size, MADV_DONTFORK) < 0) {
        int e = errno;
        munmap(p, size);
        return dbx_error_set(err, e, "madvise (a secret's memory)");
    }
    if (mlock(p, size) < 0) *locked = false;
    *ret = (struct secmem){p, size};
    return 0;
}

/* A copy of text[0..len) in protected memory. */
static int secmem_dup(struct secmem *ret, const char *text, size_t len, bool *locked,
                      dbx_error **err) {
    if (secmem_alloc(ret, len, locked, err) < 0) return -1;
    memcpy(ret->p, text, len);
    ret->p[len] = '\0';
    return 0;
}

/* ---- the secrets -------------------------------------------------------------------------- */

struct sup_secret {
    char *name;
    char *placeholder;
    struct secmem value;
    char **hosts;
    char *header;
    enum profile_secret_from from;
    char *source;
};

struct sup_secrets {
    struct sup_secret *v;
    size_t n;
    struct proxy_secret *proxy; /* views of v for proxy_config, built once all are read */
    char *ca_cert_pem;          /* the per-box CA's certificate: the guest trusts it */
    struct secmem ca_key;       /* its key: this process only */
    bool locked;                /* every mlock succeeded */
    bool dumpable_off;
};

/* "config.ini:12: [secret NAME] file = PATH": where an error about a value points (a command
 * is not repeated: it may hold anything the user typed). */
static char *secret_where(const struct profile_user *user, const struct sup_secret *x) {
    _cleanup_free_ char *key = dbx_xasprintf("secret.%s", x->name);
    const char *where = NULL;
    for (size_t i = 0; user && i < user->norigin && !where; i++)
        if (strcmp(user->origin[i].key, key) == 0) where = user->origin[i].where;
    bool cmd = x->from == PROFILE_SECRET_COMMAND;
    return dbx_xasprintf("%s: [secret %s] %s%s%s", where ? where : "config.ini", x->name,
                         profile_secret_from_name(x->from), cmd ? "" : " = ", cmd ? "" : x->source);
}

static char **strv_copy(char *const *v) {
    char **c = dbx_xcalloc(1, sizeof(char *));
    for (; v && *v; v++)
        c = dbx_strv_push(c, *v);
    return c;
}

/* What a header may carry: no line break or other control byte (a value with one would end the
 * header early and start one the box chose). */
static const char *value_problem(const char *v, size_t len) {
    if (len == 0) return "the value is empty";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return v[i] == '\n' || v[i] == '\r' ? "the value has a line break inside"
                                                : "the value has a control character";
    return NULL;
}

/* A file or command's text: one trailing "\n" or "\r\n" is not part of the value. */
static size_t cut_newline(const char *v, size_t len) {
    if (len && v[len - 1] == '\n') len--;
    if (len && v[len - 1] == '\r') len--;
    return len;
}

/* Zero the bytes of NAME's value in the environment block, then unset it: unsetenv alone
 * leaves them where /proc/PID/environ reads. */
static void env_scrub(const char *name) {
    size_t kl = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, name, kl) == 0 && (*e)[kl] == '=')
            explicit_bzero(*e + kl + 1, strlen(*e + kl + 1));
    unsetenv(name);
}

/* ---- sources ---------------------------------------------------------------------------- */

static int read_env(struct sup_secret *x, bool *locked, dbx_error **err) {
    const char *v = getenv(x->source);
    if (!v)
        return dbx_error_setx(err, ENOENT,
                              "the variable is not set in the environment of the "
                              "devbox command that started the box");
    size_t len = strlen(v);
    if (len > SECRET_MAX)
        return dbx_error_setx(err, E2BIG, "the value is longer than %u KiB", SECRET_MAX / 1024);
    const char *why = value_problem(v, len);
    if (why) return dbx_error_setx(err, EINVAL, "%s", why);
    return secmem_dup(&x->value, v, len, locked, err);
}

/* Read fd to EOF into the protected scratch buf (SECRET_MAX + 1 bytes: one more means too
 * long). */
static int read_fd(int fd, struct secmem *buf, size_t *ret_len, dbx_error **err) {
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf->p + len, SECRET_MAX + 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return dbx_error_set(err, errno, "read");
        if (n == 0) break;
        len += (size_t)n;
        if (len > SECRET_MAX)
            return dbx_error_setx(err, E2BIG, "longer than %u KiB", SECRET_MAX / 1024);
    }
    *ret_len = len;
    return 0;
}

static int read_file(struct sup_secret *x, struct secmem *scratch, size_t *ret_len,
                     dbx_error **err) {
    /* O_NONBLOCK: a FIFO must not hang the start before fstat says what it is */
    _cleanup_close_ int fd = open(x->source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ELOOP)
        return dbx_error_setx(err, ELOOP, "a symbolic link (not followed: name the file itself)");
    if (fd < 0) return dbx_error_set(err, errno, "open");
    struct stat st;
    if (fstat(fd, &st) < 0) return dbx_error_set(err, errno, "stat");
    if (!S_ISREG(st.st_mode)) return dbx_error_setx(err, EINVAL, "not a regular file");
    return read_fd(fd, scratch, ret_len, err);
}

/* The command's stdout (to scratch) and stderr (kept for the message) until both close. */
static int drain_command(int out, int errfd, struct secmem *scratch, size_t *ret_len, char *errbuf,
                         size_t *errlen, dbx_error **err) {
    uint64_t deadline = dbx_now_ms() + SECRET_CMD_MS;
    size_t len = 0;
    int fds[2] = {out, errfd};
    while (fds[0] >= 0 || fds[1] >= 0) {
        uint64_t now = dbx_now_ms();
        if (now >= deadline)
            return dbx_error_setx(err, ETIMEDOUT, "the command did not finish within %u s",
                                  SECRET_CMD_MS / 1000);
        struct pollfd pfd[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        int r = poll(pfd, 2, (int)(deadline - now));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return dbx_error_set(err, errno, "poll");
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0 || !pfd[i].revents) continue;
            char sink[512];
            char *to = i == 0 ? scratch->p + len : sink;
            size_t room = i == 0 ? SECRET_MAX + 1 - len : sizeof(sink);
            ssize_t n = read(fds[i], to, room);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                fds[i] = -1;
                continue;
            }
            if (i == 0 && (len += (size_t)n) > SECRET_MAX)
                return dbx_error_setx(err, E2BIG, "the command printed more than %u KiB",
                                      SECRET_MAX / 1024);
            for (ssize_t k = 0; i == 1 && k < n && *errlen < SECRET_CMD_ERR_MAX; k++)
                errbuf[(*errlen)++] = sink[k];
        }
    }
    *ret_len = len;
    return 0;
}

/* /bin/sh -c SOURCE with stdin /dev/null, in a process group of its own (killed whole on
 * timeout), with the devbox command's environment minus every declared secret (they are gone
 * from environ by now): a password manager's CLI needs HOME, PATH, its agent's socket. */
static int read_command(struct sup_secret *x, struct secmem *scratch, size_t *ret_len,
                        dbx_error **err) {
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
        int e = errno;
        if (po[0] >= 0) close(po[0]), close(po[1]);
        return dbx_error_set(err, e, "pipe");
    }
    char *argv[] = {"/bin/sh", "-c", x->source, NULL};
    const struct dbx_spawn_fd fds[] = {{0, DBX_SPAWN_DEVNULL}, {1, po[1]}, {2, pe[1]}};
    const struct dbx_spawn sp = {.name = "secret command",
                                 .argv = argv,
                                 .new_pgrp = true,
                                 .pdeathsig = SIGKILL,
                                 .fds = fds,
                                 .nfds = DBX_ARRAY_SIZE(fds)};
    pid_t pid = -1;
    int r = dbx_spawn(&sp, &pid, err);
    close(po[1]);
    close(pe[1]);
    char errbuf[SECRET_CMD_ERR_MAX + 1];
    size_t errlen = 0;
    if (r == 0) r = drain_command(po[0], pe[0], scratch, ret_len, errbuf, &errlen, err);
    close(po[0]);
    close(pe[0]);
    if (pid <= 0) return r;
    if (r < 0) kill(-pid, SIGKILL);
    int status = dbx_spawn_wait(pid);
    if (r < 0) return r;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    /* its stderr is not shown: this error reaches the supervisor's log, and a failing command
     * may have printed the value (sh -x, a CLI's debug output) */
    (void)errlen;
    if (WIFSIGNALED(status))
        return dbx_error_setx(err, EIO,
                              "the command was killed by signal %d (its output is not shown: run "
                              "it yourself to see why)",
                              WTERMSIG(status));
    return dbx_error_setx(err, EIO,
                          "the command exited with status %d (its output is not shown: run it "
                          "yourself to see why)",
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* A file or command value: read into scratch, checked, copied into pages of exactly its size. */
static int read_text(struct sup_secret *x, bool *locked, dbx_error **err) {
    struct secmem scratch = {0};
    if (secmem_alloc(&scratch, SECRET_MAX + 1, locked, err) < 0) return -1;
    size_t len = 0;
    int r = x->from == PROFILE_SECRET_FILE ? read_file(x, &scratch, &len, err)
                                           : read_command(x, &scratch, &len, err);
    if (r == 0) {
        len = cut_newline(scratch.p, len);
        const char *why = value_problem(scratch.p, len);
        r = why ? dbx_error_setx(err, EINVAL, "%s", why)
                : secmem_dup(&x->value, scratch.p, len, locked, err);
    }
    secmem_free(&scratch);
    return r;
}

/* ---- the box's secrets ------------------------------------------------------------------ */

void sup_secrets_free(struct sup *s) {
    struct sup_secrets *z = s->secrets;
    if (!z) return;
    for (size_t i = 0; i < z->n; i++) {
        struct sup_secret *x = &z->v[i];
        secmem_free(&x->value);
        free(x->name);
        free(x->placeholder);
        dbx_strv_free(x->hosts);
        free(x->header);
        free(x->source);
    }
    free(z->v);
    free(z->proxy);
    free(z->ca_cert_pem);
    secmem_free(&z->ca_key);
    /* the process stays undumpable: freed heap (OpenSSL's buffers, a request head) may still
     * hold copies of a value */
    free(z);
    s->secrets = NULL;
}

int sup_secrets_take_env(struct sup *s, const struct profile_user *user, dbx_error **err) {
    /* (--network none: no proxy, so no secret either) */
    bool wanted = s->prof.net_mode == PROFILE_NET_ALLOWLIST;
    struct sup_secrets *z = dbx_xcalloc(1, sizeof(*z));
    z->locked = true;
    s->secrets = z;
    int r = 0;
    for (size_t i = 0; wanted && i < s->prof.nsecrets && r == 0; i++) {
        const struct profile_secret *d = &s->prof.secrets[i];
        z->v = dbx_xrealloc(z->v, (z->n + 1) * sizeof(*z->v));
        struct sup_secret *x = &z->v[z->n++];
        *x = (struct sup_secret){.name = dbx_xstrdup(d->name),
                                 .hosts = strv_copy(d->hosts),
                                 .header = d->header ? dbx_xstrdup(d->header) : NULL,
                                 .from = d->from,
                                 .source = dbx_xstrdup(d->source)};
        if (x->from == PROFILE_SECRET_ENV && read_env(x, &z->locked, err) < 0) {
            _cleanup_free_ char *where = secret_where(user, x);
            r = dbx_error_wrap(err, "%s", where);
        }
    }
    /* Every declared env source goes, used or not: none of them is for a child of ours. */
    for (size_t i = 0; user && i < user->nsecrets; i++)
        if (user->secrets[i].from == PROFILE_SECRET_ENV) env_scrub(user->secrets[i].source);
    if (r < 0) sup_secrets_free(s);
    return r;
}

static char *placeholder(const char *name) {
    uint8_t rnd[16];
    size_t got = 0;
    while (got < sizeof(rnd)) {
        ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) abort(); /* getrandom(2) without GRND_NONBLOCK fails only on bad arguments */
        got += (size_t)n;
    }
    char hex[33];
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    return dbx_xasprintf(SECRET_PLACEHOLDER, name, hex);
}

/* The per-box CA: the certificate for the guest, the key into protected memory. */
static int make_ca(struct sup_secrets *z, dbx_error **err) {
    char *cert = NULL, *key = NULL;
    if (proxy_ca_generate(&cert, &key, err) < 0) return dbx_error_wrap(err, "the box's CA");
    int r = secmem_dup(&z->ca_key, key, strlen(key), &z->locked, err);
    explicit_bzero(key, strlen(key));
    free(key);
    if (r == 0 && dbx_ca_pem_check(cert, err) < 0) r = dbx_error_wrap(err, "the box's CA");
    if (r < 0) {
        free(cert);
        return r;
    }
    z->ca_cert_pem = cert;
    return 0;
}

int sup_secrets_read(struct sup *s, const struct profile_user *user, dbx_error **err) {
    struct sup_secrets *z = s->secrets;
    if (!z || z->n == 0) return 0;
    /* No core, no /proc/PID/mem for the user's other processes, from the first value on. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return dbx_error_set(err, errno, "PR_SET_DUMPABLE");
    z->dumpable_off = true;
    for (size_t i = 0; i < z->n; i++) {
        struct sup_secret *x = &z->v[i];
        if (x->from != PROFILE_SECRET_ENV && read_text(x, &z->locked, err) < 0) {
            _cleanup_free_ char *where = secret_where(user, x);
            return dbx_error_wrap(err, "%s", where);
        }
        x->placeholder = placeholder(x->name);
    }
    if (make_ca(z, err) < 0) return -1;
    z->proxy = dbx_xcalloc(z->n, sizeof(*z->proxy));
    for (size_t i = 0; i < z->n; i++)
        z->proxy[i] = (struct proxy_secret){.name = z->v[i].name,
                                            .placeholder = z->v[i].placeholder,
                                            .value = z->v[i].value.p,
                                            .hosts = z->v[i].hosts,
                                            .header = z->v[i].header};
    if (!z->locked) {
        static const char w[] = "the secrets' memory could not be locked (RLIMIT_MEMLOCK): the "
                                "kernel may swap their values out";
        sup_log("%s", w);
        sup_ready_say(s, 'W', w);
    }
    for (size_t i = 0; i < z->n; i++) /* the name and the kind of source: never the value */
        sup_log("secret '%s' (from %s) for the proxy", z->v[i].name,
                profile_secret_from_name(z->v[i].from));
    return 0;
}

void sup_secrets_net(const struct sup *s, struct net_secrets *ret) {
    const struct sup_secrets *z = s->secrets;
    bool any = z && z->n && z->proxy;
    *ret = (struct net_secrets){.secrets = any ? z->proxy : NULL,
                                .nsecrets = any ? z->n : 0,
                                .ca_cert_pem = any ? z->ca_cert_pem : NULL,
                                .ca_key_pem = any ? z->ca_key.p : NULL,
                                .upstream_ca_pem = s->ca_pem && *s->ca_pem ? s->ca_pem : NULL};
}

int sup_secrets_guest(struct sup *s, dbx_error **err) {
    struct sup_secrets *z = s->secrets;
    if (!z || z->n == 0 || !z->proxy) return 0;
    /* The box trusts its CA: appended to the host's CAs that SETUP installs (the guest
     * replaces last boot's block, so restarts do not pile up old CAs). */
    size_t have = s->ca_pem ? strlen(s->ca_pem) : 0;
    if (have + strlen(z->ca_cert_pem) > DBX_MAX_CA_PEM)
        return dbx_error_setx(err, E2BIG,
                              "the host's CA certificates and the box's CA come to more than "
                              "%u KiB",
                              DBX_MAX_CA_PEM / 1024);
    char *pem = dbx_xasprintf("%s%s", s->ca_pem ? s->ca_pem : "", z->ca_cert_pem);
    free(s->ca_pem);
    s->ca_pem = pem;
    /* NAME=placeholder in every command's environment; over an [env] of the same name (the
     * user declared it a secret: the box must not get another value under its name). */
    struct dbx_plan *p = &s->plan;
    for (size_t i = 0; i < z->n; i++) {
        const char *name = z->v[i].name;
        int k = dbx_plan_env_find(p, name);
        if (k >= 0) {
            _cleanup_free_ char *w = dbx_xasprintf("[env] %s is the placeholder of secret '%s' "
                                                   "in the box, not the profile's value",
                                                   name, name);
            sup_log("%s", w);
            sup_ready_say(s, 'W', w);
            free(p->env[k]);
            p->env[k] = dbx_xasprintf("%s=%s", name, z->v[i].placeholder);
        } else if (!dbx_plan_env_add(p, name, z->v[i].placeholder)) {
            return dbx_error_setx(err, E2BIG,
                                  "env: no room for the secrets' variables (%u at most)",
                                  DBX_PLAN_MAX_ENV);
        }
    }
    return 0;
}

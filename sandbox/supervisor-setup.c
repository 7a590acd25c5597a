/* sandbox/supervisor-setup.c: a profile's [setup], run once per (image, setup commands) and
 * kept as a derived disk (sandbox-derived.c).
 *
 * Setup gets a boot of its own, before the box's: a VM on a fresh overlay of the image's base
 * disk, with the setup network (its own proxy allowlist, or none, or open) and no port
 * forwards; each command runs in it as root with the capabilities package managers need
 * (DBX_EXEC_ADMIN), in the workspace, one after the other; the VM is shut down cleanly and
 * its disk sealed as the derived disk.  Only then does the box itself boot, from an overlay of
 * that disk, with the profile's own policy.  So no agent command ever runs while setup's
 * privileges or network rules exist, and setup's rules end with its VM.
 *
 * The commands run through the ordinary relay: a socket pair stands in for a client, and the
 * loop here reads its other end.  Their output goes to the project's setup.log (for
 * `devbox logs --setup`) and, line by line, to the client that started the supervisor ("S"
 * lines on the report pipe). */
#include "supervisor-internal.h"
#include "../policy/policy.h"

#include "../common/netaddr.h"

#include <fcntl.h>
#include <netdb.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SETUP_LOG_CAP (8u << 20) /* bytes of setup output kept in setup.log */
#define SETUP_LINE_MAX 2048u     /* longer output lines reach the client cut (the log has all) */

struct setup_run {
    char *const *image_env; /* the image's Env: setup's commands get it, not the repo's [env] */
    int log_fd;
    uint64_t logged;
    bool mid_line;       /* the log's last byte is not a newline (output without one at its end) */
    struct dbx_buf line; /* the output line being assembled for the client */
};

/* To the log and, as an "S" line, to the starting client. */
static void setup_say(struct sup *s, struct setup_run *run, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void setup_say(struct sup *s, struct setup_run *run, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    sup_log("%s", msg);
    if (run && run->log_fd >= 0) {
        if (run->mid_line) (void)dbx_write_all(run->log_fd, "\n", 1);
        run->mid_line = false;
        (void)dbx_write_all(run->log_fd, msg, strlen(msg));
        (void)dbx_write_all(run->log_fd, "\n", 1);
    }
    dbx_sanitize_printable(msg);
    sup_ready_say(s, 'S', msg);
}

char *dbx_setup_line_shown(char *l) {
    size_t n = strlen(l);
    while (n && l[n - 1] == '\r') /* a "\r\n" line end (dpkg writes them) */
        l[--n] = '\0';
    char *cr = strrchr(l, '\r');
    if (cr) l = cr + 1;
    if (strlen(l) > SETUP_LINE_MAX) l[SETUP_LINE_MAX] = '\0';
    return dbx_sanitize_printable(l);
}

/* One line of a command's output to the client, as dbx_setup_line_shown makes it. */
static void flush_line(struct sup *s, struct setup_run *run) {
    if (!run->line.len) return;
    dbx_buf_put(&run->line, "", 1);
    sup_ready_say(s, 'S', dbx_setup_line_shown((char *)run->line.data));
    run->line.len = run->line.off = 0;
}

static void output(struct sup *s, struct setup_run *run, const uint8_t *p, size_t n) {
    if (run->log_fd >= 0 && run->logged < SETUP_LOG_CAP) {
        size_t k = n < SETUP_LOG_CAP - run->logged ? n : SETUP_LOG_CAP - run->logged;
        (void)dbx_write_all(run->log_fd, p, k);
        run->logged += k;
        if (k) run->mid_line = p[k - 1] != '\n';
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            flush_line(s, run);
        } else if (run->line.len < SETUP_LINE_MAX * 4) {
            dbx_buf_put(&run->line, &p[i], 1);
        }
    }
}

/* Run one command as root with the admin capabilities, in the workspace, through the relay.
 * Returns 0 with *ret_code its exit code (128+N for signal N), or -1 with *err when it could
 * not run or the VM went away. */
static int run_command(struct sup *s, struct setup_run *run, const char *cmd, int *ret_code,
                       dbx_error **err) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return dbx_error_set(err, errno, "socketpair");
    dbx_set_nonblock(sp[0], true);
    _cleanup_close_ int me = sp[1];
    sup_client_add(s, sp[0]); /* the relay owns it from here */

    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    /* An admin command gets a fixed environment (the guest resets it), not the repo's [env]:
     * the image's own is passed here, and apt and debconf must not wait for answers nobody
     * can give. */
    _cleanup_strv_ char **env = dbx_xcalloc(1, sizeof(char *));
    for (char *const *e = run->image_env; e && *e; e++) {
        /* the network policy's own proxy variables stay (as add_image_env keeps them) */
        static const char *const proxy[] = {
            "http_proxy=", "https_proxy=", "all_proxy=", "no_proxy="};
        bool skip = false;
        for (size_t i = 0; i < DBX_ARRAY_SIZE(proxy) && !skip; i++)
            skip = strncasecmp(*e, proxy[i], strlen(proxy[i])) == 0;
        if (!skip) env = dbx_strv_push(env, *e);
    }
    env = dbx_strv_push(env, "DEBIAN_FRONTEND=noninteractive");
    /* one stream, as its log is one file and its lines one series: stderr's in their place */
    struct dbx_exec_req req = {.flags = DBX_EXEC_ADMIN | DBX_EXEC_MERGED,
                               .umask = 022, /* what the image's files expect, as a build's */
                               .user = "",
                               /* a shared setup sees no project: it runs in / */
                               .cwd = s->prof.setup_workspace ? s->proj.root : "/",
                               .argc = 3,
                               .argv = argv,
                               .envc = (uint32_t)dbx_strv_len(env),
                               .env = env};
    struct dbx_buf b = {0};
    dbx_exec_req_encode(&req, &b);
    int r = dbx_send_frame(me, DBX_MSG_EXEC, 1, b.data, b.len);
    dbx_buf_free(&b);
    if (r < 0) return dbx_error_set(err, -r, "send the setup command");

    struct dbx_reader rd = {0};
    int result = 1; /* 1: running */
    while (result == 1) {
        if (s->guest.quit || s->guest.dead) {
            result = dbx_error_set(err, 0, "the setup VM stopped while '%s' ran", cmd);
            break;
        }
        sup_poll(s, 200);
        uint8_t buf[65536];
        ssize_t n;
        while (result == 1 && (n = recv(me, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
            dbx_reader_feed(&rd, buf, (size_t)n);
            struct dbx_frame_hdr h;
            const uint8_t *p;
            _cleanup_error_ dbx_error *e = NULL;
            enum dbx_read_result rr;
            while (result == 1 && (rr = dbx_reader_next(&rd, &h, &p, &e)) != DBX_READ_NEED_MORE) {
                if (rr == DBX_READ_BAD) {
                    result = dbx_error_set(err, 0, "setup: %s", e->msg);
                    break;
                }
                if (h.type == DBX_MSG_STDOUT || h.type == DBX_MSG_STDERR) {
                    output(s, run, p, h.len);
                    uint8_t c[5];
                    size_t cl = dbx_enc_credit(
                        c, h.type == DBX_MSG_STDOUT ? DBX_STREAM_STDOUT : DBX_STREAM_STDERR, h.len);
                    if (h.len) (void)dbx_send_frame(me, DBX_MSG_CREDIT, 1, c, cl);
                } else if (h.type == DBX_MSG_EXIT) {
                    bool sig = false;
                    uint32_t v = 0;
                    if (dbx_dec_exit(p, h.len, &sig, &v) < 0)
                        result = dbx_error_set(err, 0, "setup: malformed exit frame");
                    else
                        *ret_code = dbx_exit_code(sig, v), result = 0;
                } else if (h.type == DBX_MSG_ERROR) {
                    uint32_t code = 0;
                    _cleanup_free_ char *msg = NULL;
                    if (dbx_error_msg_decode(p, h.len, &code, &msg) < 0)
                        msg = dbx_xstrdup("malformed error frame");
                    dbx_sanitize_printable(msg);
                    /* not found / not executable: as a shell would say it */
                    if (code == DBX_ERR_NOT_FOUND || code == DBX_ERR_NOT_EXEC) {
                        output(s, run, (const uint8_t *)msg, strlen(msg));
                        output(s, run, (const uint8_t *)"\n", 1);
                        *ret_code = (int)code;
                        result = 0;
                    } else {
                        result = dbx_error_set(err, 0, "%s", msg);
                    }
                }
            }
        }
        if (n == 0 && result == 1)
            result = dbx_error_set(err, 0, "the relay closed setup's session");
    }
    flush_line(s, run);
    dbx_reader_free(&rd);
    return result;
}

/* Shut the setup VM down and wait: its disk must be complete before it is sealed. */
static int stop_setup_vm(struct sup *s, dbx_error **err) {
    sup_begin_stop(s, "setup finished");
    while (!s->guest.quit)
        sup_poll(s, 200);
    bool clean = WIFEXITED(s->vm.qemu_status) && WEXITSTATUS(s->vm.qemu_status) == 0;
    sup_kill_children(s);
    s->guest.stopping = false;
    if (!clean)
        return dbx_error_set(err, 0, "the setup VM did not shut down cleanly (status 0x%x)",
                             s->vm.qemu_status);
    return 0;
}

static char **push_new(char **v, const char *x) {
    for (char **y = v; *y; y++)
        if (strcmp(x, *y) == 0) return v;
    return dbx_strv_push(v, x);
}

/* The proxy refuses a name that resolves to a private or reserved address unless an allow
 * pattern names that address (a public name must not lead into the host's network).  The
 * mirrors the user pre-approved are the host's own configuration, and a company's mirror, or
 * a network that intercepts the distribution's, often is at such an address: those the host
 * resolves for them now are allowed too, with the same port.  Never loopback, link-local or
 * metadata addresses (the host itself and its cloud), and never for the repo's own names. */
static char **host_mirror_addrs(char **v, const char *pattern) {
    if (pattern[0] == '*' || pattern[0] == '[' || strchr(pattern, '/')) return v;
    const char *colon = strchr(pattern, ':');
    if (colon && strchr(colon + 1, ':')) return v; /* an IPv6 address */
    _cleanup_free_ char *name =
        colon ? dbx_xstrndup(pattern, (size_t)(colon - pattern)) : dbx_xstrdup(pattern);
    struct dbx_addr a;
    if (dbx_addr_parse(name, strlen(name), AF_INET, &a) == 0) return v; /* already an address */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(name, NULL, &hints, &res) != 0) return v; /* the proxy will say why */
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (dbx_addr_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &a) < 0) continue;
        enum dbx_addr_class c = dbx_addr_classify(&a);
        if (c != DBX_ADDR_PRIVATE && c != DBX_ADDR_CGNAT && c != DBX_ADDR_RESERVED) continue;
        char buf[INET6_ADDRSTRLEN];
        dbx_addr_format(&a, buf);
        _cleanup_free_ char *pat = !colon                 ? dbx_xstrdup(buf)
                                   : a.family == AF_INET6 ? dbx_xasprintf("[%s]:%s", buf, colon + 1)
                                                          : dbx_xasprintf("%s:%s", buf, colon + 1);
        sup_log("setup: the pre-approved mirror %s is at %s (%s): allowed", name, buf,
                dbx_addr_class_name(c));
        v = push_new(v, pat);
    }
    freeaddrinfo(res);
    return v;
}

/* What setup may reach: its own allow list plus the hosts the user pre-approved for setup. */
static char **setup_allow(const struct profile *p, const struct profile_user *user) {
    char **v = dbx_xcalloc(1, sizeof(char *));
    for (char **x = p->setup_allow; x && *x; x++)
        v = push_new(v, *x);
    for (char **x = user ? user->setup_allow : NULL; x && *x; x++) {
        v = push_new(v, *x);
        v = host_mirror_addrs(v, *x);
    }
    return v;
}

static const char *net_name(enum profile_net m) {
    return m == PROFILE_NET_OPEN ? "open" : m == PROFILE_NET_ALLOWLIST ? "allowlist" : "none";
}

/* Boot the setup VM on `build`, run every command, stop it.  On success the disk at build is
 * complete.  Errors name the command's file:line. */
static int run_setup_vm(struct sup *s, const struct profile_user *user, const char *build,
                        struct setup_run *run, dbx_error **err) {
    /* The box's profile as setup sees it: the setup network, no port forwards.  A shallow
     * copy: only the allow list is its own. */
    _cleanup_strv_ char **allow = setup_allow(&s->prof, user);
    struct profile view = s->prof;
    view.net_mode = s->net_override ? PROFILE_NET_NONE : s->prof.setup_net;
    view.allow = view.net_mode == PROFILE_NET_ALLOWLIST ? allow : NULL;
    view.resolve = view.net_mode == PROFILE_NET_ALLOWLIST ? s->prof.setup_resolve : NULL;
    view.ports = NULL;
    view.nports = 0;
    struct dbx_plan plan = {0};
    struct net *net = NULL;
    if (policy_compile(&view, view.memory, &plan, err) < 0)
        return dbx_error_wrap(err, "%s/%s [setup]", s->proj.root, PROFILE_FILE);
    if (net_new(&net, &view, user, NULL, s->proj.state_dir, &s->relay.agent_out, err) < 0) {
        dbx_plan_free(&plan);
        return dbx_error_wrap(err, "[setup] network");
    }
    if (net_warning(net)) sup_log("setup: %s", net_warning(net)); /* the box's start says it */
    size_t ncmd = dbx_strv_len(s->prof.setup_run);
    _cleanup_free_ char *allowed = dbx_strv_join(view.allow, ", ");
    setup_say(s, run, "devbox: setup: %zu command%s as root in a setup VM (network %s%s%s)", ncmd,
              ncmd == 1 ? "" : "s", net_name(view.net_mode), *allowed ? ": " : "", allowed);

    /* The setup VM in place of the box's: its plan, its network, its disk. */
    struct dbx_plan box_plan = s->plan;
    struct net *box_net = s->net;
    char *box_disk = s->vm.disk;
    s->plan = plan;
    s->net = net;
    s->vm.disk = (char *)build;
    s->vm.no_workspace = !s->prof.setup_workspace;
    s->vm.root_is_user = s->prof.setup_workspace;
    int r = sup_boot(s, err);
    if (r < 0) dbx_error_wrap(err, "boot the setup VM");
    for (size_t i = 0; r == 0 && i < ncmd && !s->stop_requested; i++) {
        const char *cmd = s->prof.setup_run[i];
        _cleanup_free_ char *key = dbx_xasprintf("setup.run[%zu]", i + 1);
        const char *where = profile_origin_of(&s->prof, key);
        if (!where) where = profile_origin_of(&s->prof, "setup.run");
        if (!where) where = PROFILE_FILE;
        setup_say(s, run, "devbox: setup [%zu/%zu]: %s", i + 1, ncmd, cmd);
        int code = 0;
        uint64_t t0 = dbx_now_ms();
        r = run_command(s, run, cmd, &code, err);
        if (r < 0) {
            dbx_error_wrap(err, "%s: setup command '%s'", where, cmd);
        } else if (code != 0) {
            r = dbx_error_set(err, 0,
                              "%s: setup command failed with exit code %d: %s (its output: "
                              "'devbox logs --setup'; %sthe box refuses commands until setup "
                              "succeeds)",
                              where, code, cmd,
                              s->prof.setup_workspace
                                  ? ""
                                  : "setup runs in / without the workspace unless [setup] "
                                    "workspace = true; ");
        } else {
            sup_log("setup command %zu done in %llu ms", i + 1,
                    (unsigned long long)(dbx_now_ms() - t0));
        }
    }
    if (r == 0 && s->stop_requested) r = dbx_error_set(err, 0, "setup stopped (devbox stop)");
    if (r == 0)
        r = stop_setup_vm(s, err);
    else
        sup_kill_children(s);
    s->guest.stopping = false;
    s->plan = box_plan;
    s->net = box_net;
    s->vm.disk = box_disk;
    s->vm.no_workspace = false;
    s->vm.root_is_user = false;
    dbx_plan_free(&plan);
    net_free(net);
    return r;
}

/* What shapes setup's result besides the image and the commands, for the derived disk's key:
 * the setup network as written (names, not what they resolve to now), and for a setup that
 * sees the workspace the project itself (its disk then depends on the project's files and is
 * never another project's). */
static char **key_context(const struct sup *s, const struct profile_user *user) {
    const struct profile *p = &s->prof;
    char **v = dbx_xcalloc(1, sizeof(char *));
    enum profile_net m = s->net_override ? PROFILE_NET_NONE : p->setup_net;
    _cleanup_free_ char *mode = dbx_xasprintf("network %s", net_name(m));
    v = dbx_strv_push(v, mode);
    for (char **x = m == PROFILE_NET_ALLOWLIST ? p->setup_allow : NULL; x && *x; x++) {
        _cleanup_free_ char *e = dbx_xasprintf("allow %s", *x);
        v = dbx_strv_push(v, e);
    }
    for (char **x = m == PROFILE_NET_ALLOWLIST && user ? user->setup_allow : NULL; x && *x; x++) {
        _cleanup_free_ char *e = dbx_xasprintf("pre-approved %s", *x);
        v = dbx_strv_push(v, e);
    }
    for (char **x = m == PROFILE_NET_ALLOWLIST ? p->setup_resolve : NULL; x && *x; x++) {
        _cleanup_free_ char *e = dbx_xasprintf("resolve %s", *x);
        v = dbx_strv_push(v, e);
    }
    if (p->setup_workspace) {
        _cleanup_free_ char *e = dbx_xasprintf("workspace %s", s->proj.root);
        v = dbx_strv_push(v, e);
    }
    return v;
}

int sup_setup(struct sup *s, const struct profile_user *user, const struct dbx_image *img,
              bool force, struct dbx_derived *ret, int *ret_lock, dbx_error **err) {
    char key[65];
    _cleanup_strv_ char **context = key_context(s, user);
    dbx_derived_key(img->base, s->prof.setup_run, context, key);
    _cleanup_free_ char *logp = dbx_xasprintf("%s/setup.log", s->proj.state_dir);
    struct setup_run run = {.image_env = img->env, .log_fd = -1};
    run.log_fd = dbx_log_create(AT_FDCWD, logp, 0);
    if (run.log_fd < 0) return dbx_error_set(err, errno, "open '%s'", logp);
    _cleanup_close_ int lock = dbx_derived_lock(&s->paths, key, false, err);
    if (lock == -EAGAIN) {
        /* another project runs the same setup right now: its result is ours too */
        setup_say(s, &run,
                  "devbox: setup: waiting for another project's setup of the same "
                  "image and commands");
        lock = dbx_derived_lock(&s->paths, key, true, err);
    }
    if (lock < 0) {
        close(run.log_fd);
        return -1;
    }
    int r = 0;
    if (!force && dbx_derived_get(&s->paths, key, ret, NULL) == 0) {
        char when[32];
        time_t t = (time_t)ret->created;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", localtime(&t));
        setup_say(s, &run, "devbox: setup: reusing the derived disk %.12s (built for '%s' at %s)",
                  key, ret->built_for, when);
        close(run.log_fd);
        *ret_lock = TAKE_FD(lock);
        return 0;
    }
    _cleanup_free_ char *build = dbx_derived_build_path(&s->paths, key);
    (void)unlink(build); /* a setup that died half-way */
    uint64_t t0 = dbx_now_ms();
    if (vm_disk_create_overlay(img->base, build, s->prof.disk, err) < 0)
        r = dbx_error_wrap(err, "create the setup disk");
    if (r == 0) r = run_setup_vm(s, user, build, &run, err);
    if (r == 0) {
        *ret = (struct dbx_derived){.image = dbx_xstrdup(img->name),
                                    .base = dbx_xstrdup(img->base),
                                    .built_for = dbx_xstrdup(s->proj.root),
                                    .run = dbx_xcalloc(1, sizeof(char *))};
        memcpy(ret->key, key, sizeof(key));
        for (char **x = s->prof.setup_run; x && *x; x++)
            ret->run = dbx_strv_push(ret->run, *x);
        r = dbx_derived_commit(&s->paths, ret, build, err);
    }
    if (r == 0) {
        setup_say(s, &run, "devbox: setup: done in %.0f s; saved as the derived disk %.12s",
                  (dbx_now_ms() - t0) / 1000.0, key);
        *ret_lock = TAKE_FD(lock);
    } else {
        (void)unlink(build);
        if (*err) {
            _cleanup_free_ char *m = dbx_xasprintf("devbox: %s\n", (*err)->msg);
            (void)dbx_write_all(run.log_fd, m, strlen(m));
        }
    }
    dbx_buf_free(&run.line);
    close(run.log_fd);
    return r;
}

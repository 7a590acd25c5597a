/* sandbox/lean-main.c: build/devbox, the lean client.  `devbox exec` and `devbox enter` on a
 * project whose VM runs are what editors and agents call hundreds of times; the full devbox
 * links 53 shared libraries (libcurl and its TLS/HTTP2/LDAP/SSH stacks, OpenSSL, libgit2,
 * libarchive, ...) and its dynamic loading and relocation alone cost tens of milliseconds per
 * call, for libraries such an exec never uses.  This binary links only libc (static where the
 * build allows) and the exec path's own code, shared source with the full devbox
 * (sandbox-lean.c, sandbox-exec.c, cmd-exec.c, common/).  It runs the command itself when the
 * case is the common one: a known project (its record exists), found without libgit2, whose
 * supervisor answers on its socket.  Everything else (every other command, a VM to boot, a new
 * project, GIT_* variables, a gitfile, -e with a config.ini that may declare secrets, -u root
 * and --admin, whose failure hints read the profile, --network none) is handed, with the same argv
 * and environment, to the full devbox: devbox-full next to this binary (the build tree) or in
 * ../lib/devbox (`make install`), found from /proc/self/exe, never from PATH.
 * DEVBOX_CLIENT_DEBUG=1 says on stderr which way a command went; DEVBOX_CLIENT=full always
 * hands over. */
#define _GNU_SOURCE
#include "commands.h"
#include "sandbox-internal.h"

#include <libgen.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/un.h>

/* `devbox --help`: the full devbox's own usage, taken from it at build time (the Makefile), so
 * the command table has one home (cmd-completion.c) and the two cannot differ. */
__asm__(".section .rodata\n"
        ".global dbx_lean_usage\n"
        "dbx_lean_usage:\n"
        ".incbin \"" DBX_USAGE_FILE "\"\n"
        ".byte 0\n"
        ".previous\n");
extern const char dbx_lean_usage[];

static char **full_argv; /* our argv as we got it, for the full devbox */

static bool debug(void) {
    const char *d = getenv("DEVBOX_CLIENT_DEBUG");
    return d && *d && strcmp(d, "0") != 0;
}

/* Never returns: the full devbox takes over this process (or devbox fails, 125). */
static _Noreturn void exec_full(const char *why) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        fprintf(stderr, "devbox: cannot find the full devbox: readlink /proc/self/exe: %s\n",
                strerror(errno));
        exit(125);
    }
    self[n] = '\0';
    const char *dir = dirname(self);
    char *next = dbx_xasprintf("%s/devbox-full", dir);
    char *lib = dbx_xasprintf("%s/../lib/devbox/devbox-full", dir);
    const char *full = access(next, X_OK) == 0 ? next : lib;
    if (debug()) fprintf(stderr, "devbox: client: full (%s)\n", why);
    fflush(NULL);
    execv(full, full_argv);
    int e = errno;
    char *q = dbx_escape(full);
    fprintf(stderr, "devbox: cannot run the full devbox '%s': %s\n", q, strerror(e));
    /* exit() runs no cleanup attributes: freed by hand (LeakSanitizer checks at exit) */
    free(q);
    free(next);
    free(lib);
    exit(125);
}

/* cmd-exec.c's: what the lean client must not do itself */
_Noreturn void cmd_lean_handover(const char *why) {
    exec_full(why);
}

/* The project's supervisor, or -1 (not running, or anything else: the full devbox decides). */
static int lean_connect(const struct dbx_project *proj) {
    _cleanup_free_ char *path = dbx_xasprintf("%s/%s", proj->run_dir, DBX_SOCK_NAME);
    struct sockaddr_un sa;
    if (dbx_sockaddr(&sa, path, NULL) < 0) return -1; /* too long: the full devbox says so */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* What only the full devbox can check or do for these options; NULL when nothing. */
static bool full_asked(void) {
    const char *c = getenv("DEVBOX_CLIENT");
    return c && strcmp(c, "full") == 0;
}

static const char *needs_full(const struct cmd_ctx *ctx, const struct dbx_exec_opts *o) {
    if (full_asked()) return "DEVBOX_CLIENT=full";
    /* a running VM with a network cannot be narrowed: the status check and its error */
    if (ctx->network_none) return "--network none";
    /* a failed `-u root` or --admin gets a hint read from the profile (libinih); both are
     * typed by a person, not called in a loop */
    if (o->admin) return "--admin";
    if (o->user && dbx_user_is_root(o->user)) return "-u root";
    /* -e may name a secret config.ini declares (check_env_secrets: libinih) */
    if (o->env && *o->env) {
        _cleanup_free_ char *ini = dbx_xasprintf("%s/config.ini", ctx->paths.config);
        if (access(ini, F_OK) == 0 || errno != ENOENT) return "-e with a config.ini";
    }
    return NULL;
}

int cmd_exec_run(struct cmd_ctx *ctx, struct dbx_exec_opts *o) {
    uint64_t t_start = dbx_mono_us();
    const char *why = needs_full(ctx, o);
    if (why) exec_full(why);
    struct dbx_project proj = {0};
    if (dbx_project_find_lean(&ctx->paths, ctx->dir, &proj, &why) < 0) exec_full(why);
    _cleanup_error_ dbx_error *err = NULL;
    struct dbx_buf req = {0};
    if (dbx_exec_req_build(&proj, o, &req, &err) < 0) {
        dbx_buf_free(&req);
        dbx_project_clear(&proj);
        return err->code == E2BIG ? cmd_fail_e2big(&err) : cmd_fail(&err);
    }
    uint64_t t_connect = dbx_mono_us();
    int sock = lean_connect(&proj);
    if (sock < 0) {
        dbx_buf_free(&req);
        dbx_project_clear(&proj);
        exec_full("the VM is not running");
    }
    if (debug()) fprintf(stderr, "devbox: client: lean\n");
    bool ran = false;
    int r = dbx_exec_session(sock, &req, o, &proj, t_start, t_connect, &ran, &err);
    /* the box must restart first (a replaced workspace): the full devbox restarts it.  Said
     * here, where the supervisor's answer is: that supervisor stops by itself, and the full
     * devbox (tens of libraries to load) may find it gone and start the new box without
     * hearing why (t-workspace-replaced under ASan); DBX_ENV_RESTART_SAID keeps it from saying
     * it twice when it does hear it. */
    if (r == DBX_ERR_RESTART) {
        dbx_restart_notice(err->msg);
        setenv(DBX_ENV_RESTART_SAID, "1", 1);
        exec_full("the box restarts");
    }
    dbx_buf_free(&req);
    dbx_project_clear(&proj);
    return r < 0 ? cmd_fail(&err) : r;
}

/* `devbox status [--json]` of a running box, asked of its supervisor: what an editor or agent
 * polls.  A stopped box (its image comes from the profile), a devbox.ini changed since the
 * start (exec's hash check, dbx_profile_stale: the full devbox loads it to tell a change from
 * an error) and a reply that does not decode are the full devbox's. */
static int cmd_status_lean(struct cmd_ctx *ctx, int argc, char **argv) {
    if (full_asked()) exec_full("DEVBOX_CLIENT=full");
    bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !json)) exec_full("status arguments");
    struct dbx_project proj = {0};
    const char *why = NULL;
    if (dbx_project_find_lean(&ctx->paths, ctx->dir, &proj, &why) < 0) exec_full(why);
    int sock = lean_connect(&proj);
    if (sock < 0) {
        dbx_project_clear(&proj);
        exec_full("the VM is not running");
    }
    if (debug()) fprintf(stderr, "devbox: client: lean\n");
    struct dbx_status st = {0};
    why = dbx_status_ask(sock, &st, NULL) < 0 ? "the status reply"
          : dbx_profile_stale(&proj)          ? "devbox.ini changed since the start"
                                              : NULL;
    close(sock);
    dbx_project_clear(&proj);
    if (why) {
        dbx_status_clear(&st);
        exec_full(why);
    }
    st.profile_checked = true; /* and unchanged */
    if (json) {
        char *out = dbx_status_json(&st);
        printf("%s\n", out);
        free(out);
    } else {
        dbx_status_print(&st);
    }
    dbx_status_clear(&st);
    return 0;
}

static int usage(FILE *f) {
    fputs(dbx_lean_usage, f);
    return f == stdout ? 0 : 125;
}

/* A command's usage is printed from the command table, which names every command's function:
 * the full devbox's (`exec -i --help` too, which cmd_exec sees). */
int cmd_usage_of(FILE *f, const char *name) {
    (void)f;
    (void)name;
    exec_full("--help");
}

/* The same options, in the same order and with the same words, as sandbox/main.c; --version is
 * the same string (both objects get the Makefile's VERSION). */
int main(int argc, char **argv) {
    if (cmd_stdio_reserve()) return 125; /* before any fd of ours can land on 0, 1 or 2 */
    full_argv = dbx_xcalloc((size_t)argc + 1, sizeof(char *));
    memcpy(full_argv, argv, (size_t)argc * sizeof(char *));
    if (argc >= 2 && strncmp(argv[1], "__", 2) == 0) exec_full(argv[1]);
    struct cmd_ctx ctx = {.version = DBX_VERSION};
    int i = argc;
    int rc = cmd_parse_global(argc, argv, &ctx, usage, &i);
    if (rc >= 0) return cmd_stdout_done(NULL, rc);
    if (argc - i == 2 && cmd_is_help(argv[i + 1]))
        return cmd_stdout_done(argv[i], cmd_usage_of(stdout, argv[i]));
    int (*fn)(struct cmd_ctx *, int, char **) = NULL;
    if (strcmp(argv[i], "exec") == 0)
        fn = cmd_exec;
    else if (strcmp(argv[i], "enter") == 0)
        fn = cmd_enter;
    else if (strcmp(argv[i], "status") == 0)
        fn = cmd_status_lean;
    else
        exec_full("not exec, enter or status");
    _cleanup_error_ dbx_error *err = NULL;
    if (dbx_paths_init(&ctx.paths, &err) < 0) exec_full("paths");
    rc = cmd_stdout_done(argv[i], fn(&ctx, argc - i, argv + i));
    dbx_paths_clear(&ctx.paths);
    free(full_argv);
    return rc;
}

/* sandbox/sandbox-internal.h: shared between the files of sandbox/ only. */
#pragma once

#include "sandbox.h"
#include "../common/protocol.h"
#include "../profiles/profiles.h"

#define DBX_SOCK_NAME "sock" /* control socket in the project's run dir */
#define DBX_VFS_SOCK_NAME "vfs.sock"
/* QEMU's gdbstub, with DEVBOX_GUEST_GDB set (debugging: bench/guest-profile.py) */
#define DBX_GDB_SOCK_NAME "gdb.sock"
#define DBX_STATUS_NAME "status"      /* in the run dir: dbx_status_encode of the running VM */
#define DBX_START_LOCK "start.lock"   /* in the state dir: serializes starters */
#define DBX_SETUP_FORCE "setup-force" /* in the state dir: the next start rebuilds [setup] */
#define DBX_ALIVE_LOCK "alive.lock"   /* in the run dir: held by the supervisor for its life */
/* in the state dir: why the last start failed (one line), written by its supervisor; a command
 * that waited for that start reports it instead of starting again (dbx_connect) */
#define DBX_START_FAILED "start-failed"
#define DBX_START_FAILED_MAX 4096 /* bytes of that reason kept */
#define DBX_LOG_CAP (1u << 20)    /* bytes kept per log file (console, qemu, virtiofsd) */

/* Build a sockaddr_un for path; error if it does not fit. */
struct sockaddr_un;
int dbx_sockaddr(struct sockaddr_un *sa, const char *path, dbx_error **err);
/* Create the per-project dirs (state, data, run: 0700). */
int dbx_project_dirs(const struct dbx_project *p, dbx_error **err);
/* Load a project from its id (for ls): root and dirs from the record. */
int dbx_project_from_id(const struct dbx_paths *paths, const char *id, struct dbx_project *ret,
                        dbx_error **err);
/* Blocking frame I/O on a client socket. */
int dbx_send_frame(int fd, uint8_t type, uint32_t session, const void *p, size_t n);
/* Read one frame (blocking) into *payload (malloc'd, freed by the caller); -EPIPE at EOF
 * (nothing is reported then), another negative value with *err. */
int dbx_read_frame(int fd, struct dbx_frame_hdr *h, uint8_t **payload, dbx_error **err);
/* A frame from the supervisor that did not pass dbx_hdr_check: *err says what to do when the
 * supervisor is another devbox build's (started before an upgrade), else wraps it. */
int dbx_supervisor_bad_frame(const struct dbx_frame_hdr *h, dbx_error **err);
/* A frame to the supervisor could not be sent (r: -errno): *err says what (doing what), or,
 * when a supervisor of another devbox build answered before it closed, that.  Returns -1. */
int dbx_send_failed(int fd, int r, const char *what, dbx_error **err);

/* user.name and user.email as the host's git reads them in the work tree at root (its
 * repository's config, then the user's global and system ones), each NULL when unset or unfit
 * for an environment variable.  Without the repository's config (a symlinked `.git`, or one
 * libgit2 cannot open) the user's alone, and -1 with *err saying why. */
int dbx_git_identity(const char *root, char **ret_name, char **ret_email, dbx_error **err);
/* The host's time zone for the box (sandbox-tz.c): tz is $TZ (NULL: unset), tzdir $TZDIR
 * (NULL: /usr/share/zoneinfo), localtime the file read without TZ (/etc/localtime).  0 with
 * *ret_name NULL when the host is on UTC without saying so; else the name and, when a TZif file
 * was found for it, its content; < 0 with *err for a zone that cannot be sent (a file that is
 * not TZif, too large, a name unfit for SETUP). */
int dbx_host_tz(const char *tz, const char *tzdir, const char *localtime, char **ret_name,
                uint8_t **ret_data, uint32_t *ret_len, dbx_error **err);
/* libgit2's global state kept from hold to release: setting it up (OpenSSL, the CA bundle)
 * costs 4-8 ms, which each libgit2 call pays again without it; a start needs it twice (the
 * repository check, the identity). */
void dbx_git_hold(void);
void dbx_git_release(void);

/* ---- the lean client's share (sandbox-lean.c: libc and common/ only) ---- */
/* p->id and the dirs from p->root (set). */
void dbx_project_fill(const struct dbx_paths *paths, struct dbx_project *p);
/* What dbx_project_find decides without libgit2: the canonical cwd (dir, NULL = "."), and the
 * nearest `.git` entry above it as root (NULL when there is none) with the dirs filled in;
 * *ret_gitfile (may be NULL): that `.git` is a file (a worktree's or a submodule's). */
int dbx_project_locate(const struct dbx_paths *paths, const char *dir, struct dbx_project *ret,
                       bool *ret_gitfile, dbx_error **err);
/* The lean client's project: found as dbx_project_find would find it when that needs no
 * libgit2 and nothing is unusual, 0.  Otherwise -1 and *ret_why (a static string) says why the
 * full devbox must decide: a GIT_* variable that moves discovery is set, the directory does not
 * resolve, there is no `.git` or it is a file, the path is too long, the project is new to
 * devbox. */
int dbx_project_find_lean(const struct dbx_paths *paths, const char *dir, struct dbx_project *ret,
                          const char **ret_why);

/* ---- an exec session's halves (sandbox-exec.c; the lean client uses them too) ---- */
/* The EXEC request for o, run in proj (its cwd unless o->workdir).  0, or < 0 with *err. */
int dbx_exec_req_build(const struct dbx_project *proj, const struct dbx_exec_opts *o,
                       struct dbx_buf *out, dbx_error **err);
/* Send req on sock (taken: closed before returning) and relay the session: stdio, signals,
 * terminal.  The command's exit code, or < 0 with *err; *ret_ran: the command ran (no error
 * from devbox's side), set whenever a code is returned.  DBX_ERR_RESTART (not an exit code),
 * with the reason in *err: nothing ran, and the box must be stopped and started again.  proj
 * (or NULL): the project whose changed devbox.ini is warned of once the command started.
 * t_start and t_connect (dbx_mono_us: when the client began and when it began to connect) feed
 * DEVBOX_EXEC_TIMING's line. */
int dbx_exec_session(int sock, const struct dbx_buf *req, const struct dbx_exec_opts *o,
                     const struct dbx_project *proj, uint64_t t_start, uint64_t t_connect,
                     bool *ret_ran, dbx_error **err);
/* Set by the lean client for the full devbox it hands a restart to (DBX_ERR_RESTART): the
 * notice is printed already. */
#define DBX_ENV_RESTART_SAID "DEVBOX_RESTART_SAID"
/* The one line either client prints for DBX_ERR_RESTART (why: the supervisor's reason). */
void dbx_restart_notice(const char *why);
/* CLOCK_MONOTONIC in microseconds */
uint64_t dbx_mono_us(void);
/* Write all of buf to our stdout or stderr, waiting (poll) where a terminal was left
 * non-blocking by another program.  0, or -errno. */
int dbx_write_out(int fd, const void *buf, size_t n);
/* A log of ours (opened O_APPEND) that grew past cap is cut to nothing instead of growing
 * without bound; true when fd was.  Not a regular file (a pipe, a terminal): false. */
bool dbx_log_cut(int fd, off_t cap);
/* A log of ours started afresh: dfd/name (AT_FDCWD and a path too) removed, then created
 * (0600, O_EXCL, O_NOFOLLOW, write-only, plus flags), not truncated in place: a follower
 * (`devbox logs -f`) holding the old one sees a new file and reads it from its start, where one
 * truncated and quickly written again past the follower's offset would be read from the middle.
 * An fd, or -1 with errno. */
int dbx_log_create(int dfd, const char *name, int flags);
/* One line of [setup]'s output (a NUL-terminated line of setup.log, without its '\n') as a
 * terminal would show it last (after the last carriage return that is not the line's end:
 * progress bars), cut at SETUP_LINE_MAX, printable only: a pointer into l, which it edits
 * (supervisor-setup.c; the starting client's "S" lines, and a command that waits for a start
 * another began). */
char *dbx_setup_line_shown(char *l);

/* ---- the host's CA certificates (sandbox-ca.c) ---- */
/* The PEM certificates for SETUP's ca_pem, from paths (NULL-terminated; NULL = none): each an
 * absolute path of a file, or of a directory whose *.crt and *.pem regular files (sorted, and
 * those of its subdirectories one level down) are read.  A path starting with '-' may be
 * missing (systemd's EnvironmentFile=-PATH): for default places such as
 * -/usr/local/share/ca-certificates; any other missing path is an error naming it, which the
 * caller wraps with the configuration file and key it came from.  Symlinks are followed (the
 * user's own files).  A file over 64 KiB, one whose CERTIFICATE block does not decode (OpenSSL's
 * words), or more than DBX_MAX_CA_PEM of certificates in all is an error naming the file; a
 * file without any certificate is a warning in *ret_warnings (NULL-terminated, NULL when
 * none).  *ret_pem: every certificate once, re-encoded by OpenSSL ("" when none), as
 * dbx_ca_pem_check accepts it.  Both set only on success; the caller frees them. */
int dbx_ca_load(char *const *paths, char **ret_pem, char ***ret_warnings, dbx_error **err);
/* The paths dbx_ca_load reads for every box: config.ini [network] ca_files when the file sets
 * it, else the CAs the host added locally (-/usr/local/share/ca-certificates, where
 * update-ca-certificates takes them from).  Borrowed from u, or static. */
char *const *dbx_ca_paths(const struct profile_user *u);

/* ---- profiles and trust (sandbox-policy.c) ---- */
char *dbx_trust_dir(const struct dbx_paths *paths);
/* config.ini's [network] proxy and no_proxy, when it sets them, become this process's proxy
 * variables (http_proxy, https_proxy, no_proxy and their upper-case twins; `none` unsets
 * them): what devbox itself downloads on the host goes the way the boxes go, through libcurl
 * (image pulls), the helpers vm-run.c passes them to (mmdebstrap, apt) and the supervisor it
 * starts.  Called while the process has one thread (setenv). */
void dbx_user_proxy_env(const struct profile_user *u);
/* The user's config.ini (profile_user_load), with what devbox fills in when it is silent:
 * [setup] allow defaults to the hosts of the host's apt sources (vm_apt_hosts); and its proxy
 * exported (dbx_user_proxy_env). */
int dbx_user_load(const struct dbx_paths *paths, struct profile_user *ret, dbx_error **err);
/* The effective profile (built-ins, user config, the repo chain) and the user settings. */
int dbx_profile_load(const struct dbx_paths *paths, const struct dbx_project *proj,
                     struct profile *ret, struct profile_user *ret_user, dbx_error **err);
/* 0 when p only narrows the built-in default, or the user trusted these exact bytes; else an
 * error that lists every widening. */
int dbx_profile_allowed(const struct dbx_paths *paths, const struct dbx_project *proj,
                        const struct profile *p, const struct profile_user *user, dbx_error **err);

/* (sandbox-lean.c) Whether the running VM's policy (the profile hash and repo files its
 * supervisor recorded in the status file) no longer matches the repo's profile files on disk.  Only
 * hashes the files (a warm exec must stay fast): false when nothing is recorded or it matches. */
bool dbx_profile_stale(const struct dbx_project *proj);

/* ---- the supervisor's network side (sandbox-net.c) ---- */
/* Session ids the host allocates for socket sessions start here; exec session ids stay below
 * (and guest-allocated ids have DBX_SESSION_GUEST set). */
#define NET_SID_BASE 0x40000000u
struct net;
struct pollfd;
/* What the proxy injects (network mode allowlist): the secrets, the per-box CA that signs the
 * certificates it shows the box for their hosts, and the CAs it trusts upstream besides the
 * system's (the host's ca_files).  Borrowed: the proxy copies what it keeps. */
struct proxy_secret;
struct net_secrets {
    const struct proxy_secret *secrets;
    size_t nsecrets;
    const char *ca_cert_pem, *ca_key_pem; /* set when nsecrets */
    const char *upstream_ca_pem;          /* or NULL */
};
/* Socket sessions, port forwards (the profile's [ports] are added here) and (network mode
 * allowlist) the egress proxy, with decisions logged to state_dir/network.log.  Frames for the
 * guest are appended to agent_out.  sec may be NULL (no secrets, no extra upstream CA). */
/* The upstream proxy an allowlist box's egress goes through: config.ini [network] proxy
 * (`none`: none) and no_proxy, else the environment the supervisor was started with
 * (https_proxy, HTTPS_PROXY, http_proxy, HTTP_PROXY; no_proxy, NO_PROXY), as the host's own
 * curl, apt and git read them.  *ret_url NULL (connect directly) or set, and
 * *ret_no_proxy (normalized entries, or NULL), the caller's to free; an environment value that
 * is no usable proxy URL is set aside (connect directly) with *ret_warning naming the variable
 * (never its password); config.ini's was checked when it loaded. */
void net_upstream(const struct profile_user *user, char **ret_url, char ***ret_no_proxy,
                  char **ret_warning);
/* What the start should say about the network (an environment proxy set aside), or NULL. */
const char *net_warning(const struct net *n);
int net_new(struct net **ret, const struct profile *prof, const struct profile_user *user,
            const struct net_secrets *sec, const char *state_dir, struct dbx_buf *agent_out,
            dbx_error **err);
void net_free(struct net *n);
/* The guest is ready: forwarded connections are carried from now on. */
void net_guest_ready(struct net *n);
int net_port_add(struct net *n, uint16_t host, uint16_t guest, dbx_error **err);
int net_port_rm(struct net *n, uint16_t host, dbx_error **err);
char *net_port_list(struct net *n);
/* A client's DBX_MSG_PORT_REQ payload (a string: "add HOST GUEST", "rm HOST", "ls"), decoded
 * strictly; the DBX_MSG_PORT_REPLY payload (u32 0 or 1 for an error, then the text) is appended
 * to reply. */
void net_port_frame(struct net *n, const uint8_t *p, size_t len, struct dbx_buf *reply);
/* Whether a frame from the guest belongs to a socket session (then net_agent_frame takes it). */
bool net_owns(struct net *n, const struct dbx_frame_hdr *h);
void net_agent_frame(struct net *n, const struct dbx_frame_hdr *h, const uint8_t *p);
/* Poll set: fills at most max entries; net_dispatch takes the same entries back. */
#define NET_MAX_SOCKS 512u /* socket sessions: forwarded and proxied connections */
#define NET_MAX_FWDS 64u   /* port forwards; each takes two poll entries (127.0.0.1, [::1]) */
#define NET_MAX_POLLFDS (2 * NET_MAX_FWDS + NET_MAX_SOCKS)
size_t net_pollfds(struct net *n, struct pollfd *pfd, size_t max, bool agent_busy);
void net_dispatch(struct net *n, const struct pollfd *pfd, size_t count);
size_t net_nsocks(const struct net *n);

/* The box's write attempts on protected paths for the current boot, from the guest's PROTECTED
 * frames.  The guest is hostile and the numbers informational: dbx_protected_update keeps only
 * what is plausible and bounded. */
#define DBX_PROTECTED_RATE 4u /* PROTECTED frames taken per second (the init sends <= 1) */
struct dbx_protected {
    uint64_t count;
    char first[DBX_PROTECTED_PATH_MAX + 1]; /* the first attempt's workspace-relative path,
                                               "" until one is taken (no owner to free it) */
    uint64_t window_ms;                     /* start of the current one-second window */
    uint32_t window_n;                      /* frames seen in it */
};
/* Take one PROTECTED payload received at now_ms.  Refused, leaving *pw as it was: more than
 * DBX_PROTECTED_RATE frames in a second (-EAGAIN: the caller need not log each), a payload that
 * does not decode, a count lower than the last one or 0, a first path that is not a normalized
 * relative path of printable ASCII (no "." or ".." component) at, below or above one of the
 * `protected` paths, or one that differs from the first path already taken (-EPROTO, *err
 * saying which).  0 on success. */
int dbx_protected_update(struct dbx_protected *pw, const uint8_t *p, size_t n,
                         char *const *protected, uint32_t nprotected, uint64_t now_ms,
                         dbx_error **err);

/* The status record's wire and file form (supervisor -> client, run_dir/status). */
void dbx_status_encode(const struct dbx_status *st, struct dbx_buf *out);
/* Strict: every field within its bound, enums in range, no trailing bytes. */
int dbx_status_decode(const uint8_t *p, size_t len, struct dbx_status *ret, dbx_error **err);
/* Ask the supervisor on the connected fd for its status: 0, -EPIPE when it went away (nothing
 * reported), another negative value with *err (a reply that does not decode). */
int dbx_status_ask(int fd, struct dbx_status *ret, dbx_error **err);

/* ---- issue 13: the events journal (helper C): supervisor-events.c writes, cmd-events.c reads */
#define DBX_EVENTS_NAME "events.jsonl"  /* in the state dir; rotated once to NAME ".1" */
#define DBX_EVENTS_CAP (1u << 20)       /* a line that would take the file past this rotates it */
#define DBX_EVENTS_LINE_MAX (32u << 10) /* longer lines are neither written nor read back */
#define DBX_EVENTS_STR_MAX 1024u        /* bytes of one string value kept (cut, "..." added) */
#define DBX_EVENTS_ARGV_MAX 64u         /* argv entries kept ("..." added after them) */
/* s as a JSON string (quotes included) appended to b: at most max bytes of s (cut at a UTF-8
 * boundary, "..." after the cut), '"', '\\' and every control byte escaped, a byte that is not
 * part of valid UTF-8 replaced by U+FFFD: the line stays valid JSON whatever the guest sent.
 * NULL gives null. */
void dbx_json_str(struct dbx_buf *b, const char *s, size_t max);
/* Append one journal line (len bytes ending in '\n', at most DBX_EVENTS_LINE_MAX) to dir_fd's
 * events.jsonl with a single write(2) on an O_APPEND fd, so a reader never sees two lines
 * interleaved; when the line would take the file past cap, the file is first renamed to
 * events.jsonl.1 (atomically replacing the older one). */
int dbx_events_append(int dir_fd, const char *line, size_t len, uint64_t cap, dbx_error **err);
/* What the text form remembers between lines: each exec's command, for its exit line. */
#define DBX_EVENTS_CMDS 256u
struct dbx_events_ctx {
    struct {
        uint32_t id;
        char cmd[96], user[32];
    } exec[DBX_EVENTS_CMDS];
};
/* One journal line (without its '\n') checked: a JSON object without duplicate keys, with a
 * string "time" (RFC 3339 UTC) and "type".  ret_text (may be NULL) gets its text form: one
 * terminal-safe line without '\n', the time in local time.  0 or < 0 with *err. */
int dbx_event_text(struct dbx_events_ctx *ctx, const char *line, size_t len, char **ret_text,
                   dbx_error **err);
/* The proxy's denials as they reach network.log, for the journal: from now on, fn gets each
 * deny's target (host:port or name) and reason (NULL if none), on the loop's thread (read once
 * a second in net_pollfds, and the last ones in net_free).  Accepts a NULL net. */
typedef void net_deny_fn(void *data, const char *host, const char *reason);
void net_on_deny(struct net *n, net_deny_fn *fn, void *data);
/* ---- issue 13: cleaning up (helper F; sandbox-project.c) ---- */
/* Take a project's starters' lock (DBX_START_LOCK in state_dir, what dbx_connect holds while it
 * starts a box).  *ret_fd -EBADF when the state dir is gone.  !wait: -EAGAIN (no error) while
 * someone holds it. */
int dbx_project_lock(const char *state_dir, bool wait, int *ret_fd, dbx_error **err);
/* Delete (dry_run: only count) project id's state, run and data dirs, found below paths' own
 * dirs by name; the caller holds its lock and checked it is not busy.  Bytes into *freed. */
int dbx_project_remove_locked(const struct dbx_paths *paths, const char *id, bool dry_run,
                              uint64_t *freed, dbx_error **err);

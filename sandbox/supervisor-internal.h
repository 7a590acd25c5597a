/* sandbox/supervisor-internal.h: the supervisor's state and the functions its files share
 * (sandbox-supervisor.c: the loop and the threading model; supervisor-vm.c: preparing,
 * booting and tearing down the VM; supervisor-health.c: panics, liveness, a full disk, a dead
 * virtiofsd, stopping; supervisor-relay.c: clients and the guest's frames; supervisor-status.c:
 * the status record).  Only the supervisor's own files include it. */
#pragma once

#include "sandbox-internal.h"
#include "../vm/vm.h"

#define MAX_CLIENTS 512
#define MAX_NET_FDS NET_MAX_POLLFDS /* port listeners + socket sessions (sandbox-net.c) */
#define SESS_SLOTS 1024             /* power of two, > DBX_MAX_SESSIONS */
#define AGENT_OUT_HIGH (16u << 20)  /* stop reading clients above this */
#define AGENT_OUT_MAX (64u << 20)   /* stop reading the guest above this */
/* what one client's read adds at most past AGENT_OUT_HIGH (sup_poll): an EXEC and a read */
_Static_assert(AGENT_OUT_HIGH + DBX_EXEC_MAX + 65536u < AGENT_OUT_MAX, "agent queue bounds");

/* C_REQ: a PS or KILL forwarded to the guest; the reply closes it (supervisor-procs.c).
 * C_STATS: its request went to the guest; the reply (or a timeout) closes it. */
enum client_kind { C_NEW, C_EXEC, C_STOP, C_CLOSING, C_REQ, C_STATS };

struct client {
    int fd;
    enum client_kind kind;
    uint32_t gsid;
    struct dbx_reader rd;
    struct dbx_buf out;
    uint64_t rx_us; /* when its last read brought bytes (DBX_EXEC_TIMING) */
};

struct sess {
    uint32_t gsid;    /* 0 = free slot */
    struct client *c; /* NULL once the client went away: frames are dropped */
    /* `exec -d` (DBX_EXEC_DETACH): the client leaves after STARTED; the output goes to
     * <state_dir>/procs/<pid>.log (supervisor-procs.c) and the command is not killed when its
     * client goes */
    bool detached;
    bool started;       /* STARTED came: the guest sends it once; a second is forged */
    uint8_t notices;    /* NOTICE frames seen: the first is kept, the second logged, the rest
                         * dropped silently (each would be a journal line) */
    uint32_t pid;       /* the guest's, from STARTED */
    int log_fd;         /* detached: the open log, or -1 */
    uint64_t log_bytes; /* written to it since it was (re)opened */
    /* DBX_EXEC_TIMING: CLOCK_MONOTONIC microseconds when the EXEC was read from the client,
     * written to the guest, and STARTED came (0 = no timing) */
    uint64_t t_recv, t_fwd, t_started;
};

struct logsink {
    int in;  /* read end (from QEMU/virtiofsd/console) */
    int out; /* log file */
    uint64_t written;
    char tail[1024]; /* last bytes, for error messages */
    size_t tail_len;
};

/* The events journal's memory (supervisor-events.c): sessions that have not yet had their
 * exec.exited line, and the rate limits. */
struct sup_events {
    uint32_t exec_gsid[SESS_SLOTS]; /* 0: no session waiting for its exit line */
    uint64_t exec_ms[SESS_SLOTS];   /* when it started (dbx_now_ms) */
    char stop_why[128];             /* the reason sup_begin_stop gave, for box.stopped */
    bool failed;                    /* a write failed: logged once, then silence */
    uint64_t protected_ms;          /* when the last protected line was written */
    uint64_t protected_logged;      /* the count it gave (a higher one is pending) */
    uint64_t proxy_window_ms;       /* the one-second window of proxy.denied lines */
    uint32_t proxy_n;               /* lines written in it */
    uint64_t proxy_suppressed;      /* denials not written since the last summary */
};

/* The idle clock (supervisor-idle.c): since_ms is when the box last became idle (0 while it
 * is busy), stop_ms config.ini's idle_stop (0: never). */
struct sup_idle_clock {
    uint64_t stop_ms, since_ms;
};

/* Everything below belongs to the poll loop's thread (see sandbox-supervisor.c). */
/* A shared directory as it was when its virtiofsd started (sup_ws_replaced). */
struct sup_dir_id {
    dev_t dev;
    ino_t ino;
    bool known;
};

struct sup {
    /* what runs: set up by sup_prepare, fixed afterwards */
    struct dbx_paths paths;
    struct dbx_project proj;
    struct profile prof;
    struct dbx_plan plan; /* compiled from prof; what the guest enforces */
    struct dbx_project_rec rec;
    struct vm_kernel kernel;
    char *ca_pem;  /* the host's CA certificates for SETUP (dbx_ca_load), or NULL: none */
    char *tz_name; /* the host's time zone for SETUP (dbx_host_tz), or NULL: none */
    uint8_t *tz_data;
    uint32_t tz_len;
    const char *net_override; /* --network none from the command line, or NULL */
    int ready_fd;             /* the starting client's report pipe, until "OK" or "E" */
    int sig_fd;               /* signalfd: SIGCHLD and the stop signals */
    bool stop_requested;      /* a stop signal came (also while [setup] ran) */
    bool owner; /* we hold the project's alive lock: the run dir's sockets and files are ours */

    /* the VM's processes (supervisor-vm.c) */
    struct {
        enum vm_accel accel;
        bool mask_arch_caps; /* KVM: the host's KVM refuses IA32_ARCH_CAPABILITIES (sup_boot) */
        enum vm_kernel_kind kernel_kind;    /* what s->kernel is (sup_prepare) */
        pid_t qemu_pid, vfs_pid, passt_pid; /* passt: network mode open only */
        struct vm_passt *passt;
        /* Network mode open until the guest's first frame: our end of QEMU's network socket
         * and a copy of the QEMU log's pipe, for passt (sup_passt_start); -1 otherwise. */
        int passt_sock, passt_log;
        /* The devbox kernel's private copy QEMU loads (vm_kernel_copy), until the guest's
         * hello frees its pages (vm_copy_drop); -1 otherwise. */
        int kernel_copy;
        int initrd_copy; /* the same for the initramfs (vm_initrd_copy), either kernel */
        int qemu_status;
        struct vm_qmp *qmp;     /* QEMU's monitor: pause/resume and I/O error events */
        struct logsink logs[3]; /* console, qemu, virtiofsd */
        uint64_t started_ms;
        int64_t started_wall;
        /* the boot's steps, CLOCK_MONOTONIC ns, for the "ready" log line: the supervisor's
         * start, QEMU spawned (with virtiofsd and passt before it), the guest's hello */
        uint64_t t_start, t_spawned, t_hello;
        char *disk; /* the disk QEMU boots: the project's overlay, or setup's while it runs */
        bool no_workspace; /* a setup VM that must not see the project (supervisor-setup.c) */
        /* A setup VM with the workspace: there its commands run as root, so guest root, not
         * the box user, is the user on the host in the shares' id mapping (spawn_vm) */
        bool root_is_user;
        /* The workspace directory virtiofsd shares, as it was when virtiofsd started
         * (sup_ws_replaced): a directory made at the same path since is another one. */
        struct sup_dir_id ws_id;
        /* The workspace's or a share's host path (s->proj.root, s->shares[].host), seen
         * replaced with the box idle: stopping so the next start shares the new directory;
         * every EXEC until then is answered DBX_ERR_RESTART.  NULL: not seen. */
        const char *ws_replaced;
    } vm;

    /* the guest's state as the supervisor knows it (supervisor-health.c) */
    struct {
        bool hello, ready, stopping, quit;
        bool dead;                 /* the guest died (panic, no answer): clients were told */
        uint64_t console_panic_ms; /* when the console showed the panic line (0: not yet) */
        uint64_t last_frame_ms;    /* when the guest last sent anything */
        uint64_t ping_token;
        uint64_t clock_ms; /* when the last CLOCK went to the guest (0: none yet) */
        bool nospace;      /* paused by QEMU because the host disk is full */
        uint64_t nospace_check_ms;
        uint64_t stop_deadline;
        char *boot_error;
        char *release; /* the guest kernel's release, from its hello */
    } guest;

    /* clients on the control socket and the guest's agent channel (supervisor-relay.c) */
    struct {
        int listen_fd, agent_fd;
        struct dbx_reader agent_rd;
        struct dbx_buf agent_out;
        struct client *clients[MAX_CLIENTS];
        size_t nclients;
        struct sess sess[SESS_SLOTS];
        uint32_t next_gsid, nsess;
        uint32_t fwd_gsid; /* a timed EXEC queued in agent_out: stamp its t_fwd when written */
    } relay;

    struct net *net;             /* socket sessions, port forwards, egress proxy (sandbox-net.c) */
    struct sup_secrets *secrets; /* the values the proxy adds for the box (supervisor-secrets.c) */
    struct sup_procs *procs;     /* PS and KILL waiting for the guest (supervisor-procs.c) */

    /* the box's write attempts on protected paths, as the guest reports them (this boot: a
     * setup VM has no workspace, so only the project's VM reports) (supervisor-status.c) */
    struct dbx_protected protect;

    /* idle stop (supervisor-idle.c) */
    struct {
        struct sup_idle_clock clock;
        int lock_fd;             /* the starters' lock, from the idle stop's start to exit */
        uint64_t drain_deadline; /* != 0: the socket is gone, queued clients are being heard */
        uint64_t retry_ms;       /* the lock was busy: not again before this */
        uint64_t stopped_ms;     /* != 0: the stop is an idle stop, after this long idle */
        uint64_t trim_ms;        /* when the start's library pages go (supervisor-trim.c),
                                    0 once they went */
    } idle;

    struct sup_events events;   /* the events journal (supervisor-events.c) */
    struct mounts_watch *watch; /* host edits for the box's file watchers, or NULL (issue 13) */
    /* STATS requests waiting for the guest's reply (supervisor-stats.c) */
    struct {
        struct stats_wait {
            struct client *c; /* NULL: a free slot */
            uint64_t token, client_token, deadline_ms;
        } wait[16];
        uint64_t next_token;
    } stats;
    /* issue 13: extra shares (supervisor-vm.c): a linked worktree's repository, [mounts] */
    struct sup_share {
        char *host;           /* absolute host directory (also the guest path of a repository) */
        char *guest;          /* where the box sees it */
        bool readonly;        /* enforced in virtiofsd's mount namespace */
        char **protected;     /* below host, as struct mounts_vfs_config.protected, or NULL */
        char **writable;      /* struct mounts_vfs_config.writable, or NULL */
        bool gitdir;          /* struct mounts_vfs_config.gitdir: a worktree's repository */
        pid_t pid;            /* its virtiofsd's guard, or -1 */
        struct sup_dir_id id; /* the directory when its virtiofsd started (sup_ws_replaced) */
    } shares[DBX_SHARES_MAX];
    size_t nshares;
};

/* ---- sandbox-supervisor.c ---- */
void sup_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A line to the client that started us: 'W' text (a warning), 'S' text (setup's progress and
 * output, shown as it comes), 'E' text (fatal), 'O' (ready). */
void sup_ready_say(struct sup *s, char kind, const char *msg);
/* One poll round over everything; timeout_ms bounds the wait. */
void sup_poll(struct sup *s, int timeout_ms);
int sup_listen_unix(const char *path, int backlog, dbx_error **err);

/* ---- supervisor-vm.c ---- */
/* Everything a boot needs on disk: the profile, kernel + initramfs, the project's disk. */
int sup_prepare(struct sup *s, dbx_error **err);
/* Boot until the guest is ready, falling back from a KVM that never says hello to TCG. */
int sup_boot(struct sup *s, dbx_error **err);
void sup_kill_children(struct sup *s);
void sup_logsink_pump(struct logsink *l);
/* The guest sent its first frame (s->vm.passt_sock readable): start passt on that socket.
 * A failure is logged (the VM has no network then), never fatal to the box. */
void sup_passt_start(struct sup *s);
/* Frames on session 0: hello, ready, ping, errors. */
void sup_agent_control(struct sup *s, const struct dbx_frame_hdr *h, const uint8_t *p);
char *sup_skew_error(unsigned version);
/* A child the poll loop reaped: if it is an extra share's virtiofsd, forget it and return
 * true (its death is then handled as the workspace virtiofsd's). */
const char *sup_share_reaped(struct sup *s, pid_t pid);
/* Forget the shares' paths and lists (at the end; shares_find starts with it too). */
void sup_shares_free(struct sup *s);

/* ---- supervisor-setup.c ---- */
/* The derived disk for the image and the profile's [setup]: reused when one exists (unless
 * force), else built by running setup in a VM of its own (see the file's comment).  Output
 * goes to the state dir's setup.log and, as "S" lines, to the starting client.  Errors name
 * the failing command's file:line and exit code.  ret is set on success (clear it), and
 * *ret_lock is the derived disk's lock, for the caller to hold until its project record
 * names the disk. */
int sup_setup(struct sup *s, const struct profile_user *user, const struct dbx_image *img,
              bool force, struct dbx_derived *ret, int *ret_lock, dbx_error **err);

/* ---- supervisor-secrets.c ---- */
/* The secrets the box uses (prof.secrets_use, network mode allowlist only; none otherwise),
 * in two steps.  take_env, before the supervisor starts any child: copies the values of the
 * used `env =` secrets into protected memory and removes every declared `env =` variable from
 * environ (its bytes zeroed).  read, after [setup] (which never gets a secret): PR_SET_DUMPABLE
 * 0, the file and command values, a fresh placeholder per secret, the per-box CA.  Errors name
 * config.ini's [secret NAME] and the source, never the value.  s->secrets is set by take_env
 * (freed by sup_secrets_free, which zeroes every value). */
int sup_secrets_take_env(struct sup *s, const struct profile_user *user, dbx_error **err);
int sup_secrets_read(struct sup *s, const struct profile_user *user, dbx_error **err);
/* What net_new hands the proxy (views into s->secrets; all NULL and 0 with no secret). */
void sup_secrets_net(const struct sup *s, struct net_secrets *ret);
/* After policy_compile: the box's CA appended to s->ca_pem, NAME=placeholder in s->plan.env
 * (replacing an [env] of the same name, with a warning). */
int sup_secrets_guest(struct sup *s, dbx_error **err);
void sup_secrets_free(struct sup *s);

/* ---- supervisor-health.c ---- */
void sup_begin_stop(struct sup *s, const char *why);
/* sup_begin_stop's reasons that sup_teardown words for the commands it ends */
#define SUP_STOP_CLIENT "requested by a client" /* STOP: devbox stop, restart, reset, rm */
#define SUP_STOP_SIGNAL "signal"                /* SIGTERM, SIGINT or SIGHUP to the supervisor */
void sup_check_console_panic(struct sup *s, bool now_or_never);
void sup_check_liveness(struct sup *s);
/* each poll round: DBX_MSG_CLOCK while sup_busy, at most once a second, not behind a backlog */
void sup_clock_tick(struct sup *s);
/* DBX_MSG_CLOCK to the guest unless one went less than a second ago (force: anyway). */
void sup_clock_send(struct sup *s, bool force);
/* The answer to the guest's CLOCK (its token), queued for the loop's write. */
void sup_clock_answer(struct sup *s, uint64_t token);
char *sup_nospace_msg(struct sup *s);
void sup_nospace_poll(struct sup *s);
void sup_qmp_events(struct sup *s);
/* share: the extra share's host path whose virtiofsd it was, NULL: the workspace's */
void sup_vfs_died(struct sup *s, int status, const char *share);
/* Before a virtiofsd starts: the directory it will share, from st (NULL: unknown). */
struct sup_dir_id sup_dir_id_of(const struct stat *st);
/* An EXEC has come: true when the workspace directory, or a share's, was replaced since the box
 * started, and c has been answered (the box restarts, or it is busy and the EXEC is refused). */
bool sup_ws_replaced(struct sup *s, struct client *c);

/* ---- supervisor-relay.c ---- */
void sup_agent_send(struct sup *s, uint8_t type, uint32_t session, const void *p, size_t n);
void sup_agent_read(struct sup *s);
void sup_agent_flush(struct sup *s);
/* One connection from the listening socket; false when none was waiting. */
bool sup_client_accept(struct sup *s);
/* A connected stream socket (non-blocking) becomes a client, as an accepted one would. */
void sup_client_add(struct sup *s, int fd);
void sup_client_read(struct sup *s, struct client *c);
void sup_client_flush(struct client *c);
void sup_client_free(struct sup *s, size_t i);
/* Send an error frame and close the client once it is written. */
void sup_client_error(struct client *c, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The client side of a session is gone or broken: the command in the guest is killed. */
void sup_client_detach(struct sup *s, struct client *c);

/* ---- supervisor-status.c ---- */
/* The status record of this supervisor's VM (caller clears it with dbx_status_clear). */
void sup_status(struct sup *s, struct dbx_status *ret);
/* Whether the box's programs start at fixed addresses ([security] aslr = auto under TCG). */
bool sup_no_randomize(const struct sup *s);
/* run_dir/status, read by clients that must not wait for the loop (dbx_status_read). */
int sup_write_status_file(struct sup *s, dbx_error **err);
/* A PROTECTED frame from the guest (session 0): validated into s->protect, or logged and
 * dropped. */
void sup_protected_frame(struct sup *s, const struct dbx_frame_hdr *h, const uint8_t *p);

/* ---- issue 13: supervisor-events.c (helper C) ---- */
/* Lines of <state_dir>/events.jsonl (see sandbox-internal.h's DBX_EVENTS_*).  Best effort:
 * a failed write is logged once to the supervisor log and otherwise ignored.  what: "started",
 * "stopped", "idle-stopped", or "stopping" (not written: remembers detail, the reason, for the
 * stopped line); detail: the accelerator or the reason, or NULL.  box.stopped first writes an
 * exec.exited (exit code null) for every session still open: each session gets exactly one. */
void sup_event_box(struct sup *s, const char *what, const char *detail);
void sup_event_exec_start(struct sup *s, uint32_t gsid, const struct dbx_exec_req *req,
                          bool detached);
/* exit_code: the command's code (128+N for signal N), < 0: none (an error ended the session).
 * Only the first call for a started gsid writes a line. */
void sup_event_exec_exit(struct sup *s, uint32_t gsid, int exit_code);
void sup_event_notice(struct sup *s, uint32_t gsid, uint32_t kind, uint64_t limit, uint64_t value);
/* At most one line a second; a count not yet written goes out with the next one or at stop. */
void sup_event_protected(struct sup *s, uint64_t count, const char *first);
/* Only verdict "deny" is written, at most 10 lines a second; the rest are counted into one
 * proxy.suppressed line. */
void sup_event_proxy(struct sup *s, const char *verdict, const char *host, const char *reason);
/* ---- issue 13: supervisor-watch.c (helper E) ---- */
/* After the boot: start watching the workspace (failure logged, never fatal). */
void sup_watch_start(struct sup *s);
void sup_watch_stop(struct sup *s);
/* The descriptor to poll for POLLIN, or -1. */
int sup_watch_fd(const struct sup *s);
/* timeout_ms, or less when the watcher has a notice due sooner. */
int sup_watch_timeout(struct sup *s, int timeout_ms);
/* After poll: read the watcher's events (readable) and send due CHANGED frames to the guest. */
void sup_watch_dispatch(struct sup *s, bool readable);
/* A slice of the first walk of the workspace, until it is done (last in each round). */
void sup_watch_walk(struct sup *s);
/* Send every pending host change now (before an EXEC: the command sees them). */
void sup_watch_flush(struct sup *s);
/* ---- supervisor-procs.c (issue 13: processes) ---- */
#define SUP_PROCS_LOG_MAX (4u << 20) /* a detached command's log rotates once to .log.1 here */
/* A PS or KILL frame from a new client: forwarded to the guest under a fresh token; the
 * guest's reply (checked, PS entries marked detached) answers the client, which then closes. */
void sup_procs_client_frame(struct sup *s, struct client *c, const struct dbx_frame_hdr *h,
                            const uint8_t *p);
/* PS_REPLY or KILL_REPLY from the guest (session 0).  Garbage is logged and, when its token
 * names a waiting client, answered to it as an error; it never ends the supervisor. */
void sup_procs_agent_frame(struct sup *s, const struct dbx_frame_hdr *h, const uint8_t *p);
/* The client is going away: forget its pending request. */
void sup_procs_client_gone(struct sup *s, struct client *c);
/* At most this many <pid>.log in procs/: the oldest exited ones (with a .exit) go first. */
#define SUP_PROCS_FILES_MAX 256
/* A frame of a detached session from the guest (already checked by the relay): STARTED
 * opens the log and answers the client, output goes to the log (and is credited back), EXIT
 * and ERROR close it, write <pid>.exit and (EXIT) the journal's exec.exited.  false: the
 * session must end (its command killed): a STARTED whose pid a live detached session holds,
 * or no room for its log (the client, if still there, was told why). */
bool sup_procs_detached_frame(struct sup *s, struct sess *x, const struct dbx_frame_hdr *h,
                              const uint8_t *p);
/* Every poll round (now: dbx_now_ms()): PS/KILL requests past their deadline (10 s) get an
 * error. */
void sup_procs_expire(struct sup *s, uint64_t now);
void sup_procs_free(struct sup *s);
/* ---- supervisor-stats.c (issue 13: helper B) ---- */
/* A client's STATS: forwarded to the guest under a fresh token; the reply (or an error after
 * a few seconds) goes back to the client, which is then closed. */
void sup_stats_request(struct sup *s, struct client *c, const uint8_t *p, uint32_t n);
/* STATS_REPLY from the guest (session 0): validated, returned to the client that waits. */
void sup_stats_reply(struct sup *s, const uint8_t *p, uint32_t n);
/* Every poll round: waiting requests past their deadline get an error. */
void sup_stats_expire(struct sup *s);
/* The client is being freed: forget its waiting request. */
void sup_stats_client_gone(struct sup *s, struct client *c);
/* NOTICE from the guest on session x: true when it is the session's first and decodes (then it
 * may be forwarded to the session's client); garbage is logged and false; a second NOTICE is
 * logged once and false, later ones silently false. */
bool sup_notice_ok(struct sup *s, struct sess *x, const uint8_t *p, uint32_t n);
/* ---- supervisor-idle.c (issue 12) ---- */
/* The clock: busy (a session or a socket session) stops it, the first idle round starts it. */
void sup_idle_mark(struct sup_idle_clock *c, bool busy, uint64_t now);
/* How long the box has been idle at now (0 while busy). */
uint64_t sup_idle_for(const struct sup_idle_clock *c, uint64_t now);
/* Idle for stop_ms or more (never when stop_ms is 0). */
bool sup_idle_due(const struct sup_idle_clock *c, uint64_t now);
/* timeout_ms, or the milliseconds until the box is due when that is sooner (0: due now). */
int sup_idle_timeout(const struct sup_idle_clock *c, uint64_t now, int timeout_ms);
/* The box is ready: the clock starts (s->idle.clock.stop_ms set by sup_prepare). */
void sup_idle_ready(struct sup *s);
/* A session (an exec, an enter, an `exec -d` command) or a forwarded connection is open. */
bool sup_busy(const struct sup *s);
/* ---- supervisor-trim.c (issue 12) ---- */
/* Unmap the pages of our read-only file mappings that hold no private page (the libraries the
 * start ran): they stay in the page cache, and a later touch maps them again.  The kB unmapped. */
uint64_t sup_trim_file_pages(void);
/* The main loop's poll timeout: timeout_ms or sooner, when the idle stop has something due. */
int sup_idle_poll_timeout(struct sup *s, int timeout_ms);
/* After each round of the main loop: the clock, and the idle stop's steps (see the file). */
void sup_idle_check(struct sup *s);
/* Give back the starters' lock (after the alive lock, at exit). */
void sup_idle_release(struct sup *s);
/* Take the starters' lock until exit, if no one holds it (sup_begin_stop, the idle stop's
 * drain): a command that finds our control socket gone while we still hold the alive lock
 * waits for our exit, then starts the next box, instead of failing on the alive lock.  Whether
 * we hold it. */
bool sup_hold_starters(struct sup *s);

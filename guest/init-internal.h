/* guest/init-internal.h: shared state of the guest init (PID 1).  Private to guest/.
 *
 * Files: init.c (main, phases, fatal path), init-boot.c (phases 1-4: mounts, modules, root
 * switch, agent port), init-serve.c (the poll loop and the protocol handlers), init-exec.c
 * (starting one command), init-user.c (/etc/passwd and /etc/group without NSS), init-policy.c
 * (the SETUP plan: box cgroup, devices, protected paths; and each command's confinement),
 * init-net.c (the plan's network settings: loopback, eth0, resolv.conf, apt's proxy),
 * init-sock.c (socket sessions: forwarded ports and the proxy listener), init-audit.c (the
 * box's write attempts on protected paths, from the kernel's audit records), init-procs.c (each
 * command's leaf cgroup, PS and KILL). */
#pragma once

#include "../common/plan.h"
#include "../common/protocol.h"

#include <linux/filter.h>
#include <poll.h>
#include <sys/types.h>

/* Stop reading children's output while this much is queued for the host (backpressure). */
#define INIT_OUT_HIGH (1024u * 1024u)
/* Stop reading the agent port while this much is queued: bounds memory when a host floods
 * us with requests (PING, EXEC errors) without reading the replies. */
#define INIT_OUT_HARD (16u * 1024u * 1024u)

/* One exec session.  Owned by struct agent's array; freed only by the sweep at the top of
 * each loop iteration, so pointers stay valid while one iteration's events are handled. */
struct session {
    uint32_t id;
    pid_t pid; /* also the process group id: the child calls setsid() */
    bool tty;
    bool exited; /* reaped; status is valid */
    int status;
    bool dead;              /* finished (EXIT or ERROR sent); fds closed; awaiting the sweep */
    int pty;                /* tty master or -1; is rd_fd[STDOUT] and in_fd when tty */
    int in_fd;              /* where stdin bytes go, or -1 */
    int rd_fd[3];           /* [DBX_STREAM_STDOUT], [DBX_STREAM_STDERR] read ends, or -1 */
    uint32_t credit[3];     /* output bytes the host still accepts, per stream */
    bool eof_sent[3];       /* the empty STDOUT/STDERR frame was queued */
    struct dbx_buf in;      /* stdin bytes received, not yet written */
    bool in_eof;            /* the host sent the empty STDIN frame */
    uint32_t in_pending;    /* stdin bytes received and not yet credited back */
    int cg_fd;              /* the session's leaf cgroup box/s<id> (directory), or -1: none */
    int mnt_fd;             /* the command's own mount namespace (its copy of the template), held
                               until the session is freed (after EXIT), or -1 */
    uint64_t deadline_ms;   /* EXEC's timeout_ms as a monotonic time; 0 = none */
    bool timed_out;         /* the deadline passed and the leaf was killed: EXIT reports 124 */
    uint64_t hangup_ms;     /* a pty session whose command exited before its terminal's EOF: when
                               the terminal hangs up (pty_hangups in init-serve.c); 0 = not due */
    uint64_t hangup_cap_ms; /* the latest hangup_ms may move to while output still comes */
    bool hangup_draining;   /* due: reading the last hangup_left bytes the master held */
    uint32_t hangup_left;
    uint64_t oom_kills0, pids_refused0; /* the box's counters at the start (init-stats.c) */
    uint64_t leaf_oom_kills0;           /* the leaf's oom_kill at the start (init-stats.c) */
    uint32_t host_sig;                  /* the last signal the host sent (SIGNAL), 0: none */
    struct exec_times *times;           /* EXEC asked DBX_EXEC_TIMING: the phases, else NULL */
};

/* DBX_EXEC_TIMING: CLOCK_MONOTONIC microseconds at each step of one exec, 0 = not reached.
 * The child's steps (T_CHILD to T_EXECVE) are written into a shared page (init-exec.c) and
 * copied here once its exec is known.  Sent as TIMING's durations between steps. */
enum {
    T_RX,       /* the read that brought the EXEC */
    T_DISPATCH, /* its frame handled */
    T_DECODED,
    T_USER,   /* user resolved, environment built */
    T_STDIO,  /* pipes or pty */
    T_CGROUP, /* the leaf cgroup made */
    T_SENT,   /* the command sent to the spare process (only when one runs it) */
    T_WAKE,   /* the spare has it */
    T_CHILD,  /* the child runs */
    T_JOIN,   /* the leaf cgroup joined */
    T_MOUNTS, /* rlimits, the box's mounts */
    T_ENTER,  /* the bounding set, an early seccomp filter */
    T_IDS,    /* stdio and ids */
    T_CAPS,
    T_CHDIR,
    T_LOCK,   /* no_new_privs and seccomp */
    T_EXECVE, /* policy verified, execve called */
    T_EOF,    /* the parent saw the exec succeed */
    T_STARTED,
    T_REAPED,
    T_EXIT,
    T_N_
};
struct exec_times {
    uint64_t t[T_N_];
};

/* The policy every exec'd process runs under, derived from SETUP's plan (init-policy.c). */
struct box_policy {
    bool confined;          /* false: the permissive plan; commands start exactly as before */
    struct dbx_plan plan;   /* owned; env and user apply even when not confined */
    int cg_box_fd;          /* the box cgroup's directory, or -1: no cgroup; every command runs
                               in a leaf box/s<session> below it (init-procs.c) */
    char *cg_line;          /* /proc/self/cgroup's line for the box: "0::/box"; a command's is
                               that plus "/s<session>" */
    unsigned cap_last;      /* /proc/sys/kernel/cap_last_cap */
    struct sock_fprog prog; /* the seccomp filter (len 0: none); filter owned */
    bool verify_skew;       /* --serve-fd tests: make the capability check fail */
    bool box_dev;           /* BOX_DEV is built: every command gets it as its /dev */
    int mnt_ns;             /* a mount namespace with the box's read-only mounts in place
                               (box_mounts), made once at SETUP; each command enters it and
                               takes a copy of its own.  -1: each command builds its own */
    int mnt_next;           /* that copy, made ahead for the next command while the box is
                               idle (policy_mnt_prepare), or -1 */
    bool *prot_missing;     /* per plan.protected: missing at SETUP, so a directory above it
                               may be empty (init-audit.c); NULL: not known, as if missing */
};

/* The spare process (init-exec.c), made once while the box is idle as a command's child is
 * (born in the spare leaf, a copy of the mount template entered, rlimits, the default user's
 * ids, capabilities, no_new_privs and the seccomp filter, all checked), then running this
 * binary as SPARE_ARGV0: for each command init sends on sock (argv, environment, directory,
 * stdio) it forks a child of init's that takes its session, stdio and directory and execs it.
 * The default user's commands start without the policy steps, which their process inherits;
 * any other (another user, an administrative command) starts as before.  It waits in init's
 * cgroup, outside the box; init moves it into a command's leaf for the fork, then out again. */
struct spare_proc {
    pid_t pid;     /* 0: none */
    bool reaped;   /* it died and reap() collected it: its pid is not ours to signal */
    int sock;      /* init's end of its SOCK_SEQPACKET socket, or -1 */
    int mnt_fd;    /* the mount namespace it entered (the box's mnt_next it took), which
                      every command it starts shares, or -1 */
    uint32_t leaf; /* the command's leaf it is in while it forks, 0: init's (root) cgroup */
    uid_t uid;     /* whom it runs as, with which groups and capabilities */
    gid_t gid;
    gid_t *groups;
    size_t ngroups;
    uint64_t caps;
    uint32_t failed_id; /* the leaf id for which making one failed: not tried again */
    unsigned deaths;    /* times one died without init killing it (a box process did) */
    bool disabled;      /* stopped or changed by a box process, or killed thrice: none this boot */
};

/* What exec needs from SETUP. */
/* A command's leaf made ahead of its EXEC (init-procs.c): box/s<id> for the id the next EXEC
 * is likely to carry, made and opened while the box is idle. */
struct leaf_spare {
    uint32_t id; /* 0: none */
    int dir_fd, procs_fd;
    /* the box's oom_kill and pids-refusal counts when the spare was made (stats_box_counts) */
    uint64_t oom_kills0, pids_refused0;
    struct spare_proc proc; /* the spare process, in this leaf or in a command's (init-exec.c) */
};

struct exec_ctx {
    const struct agent *agent; /* its sessions (a pid the spare process answers is no other's) */
    uid_t uid;                 /* default user */
    gid_t gid;
    const char *hostname;
    const struct box_policy *box;
    struct leaf_spare *spare;
    int *mnt_next;    /* box->mnt_next, which the next command takes (and init then closes) */
    unsigned ca;      /* CA_HAS_*: which of the host's CA files are in place (the CA variables) */
    const char *tz;   /* the host's time zone for TZ, or NULL (init-locale.c) */
    const char *lang; /* LANG, or NULL (init-locale.c) */
};

/* Steps of a command's child between fork and exec, reported to the parent on failure. */
enum child_step {
    STEP_SETSID = 1,
    STEP_TTY,
    STEP_STDIO,
    STEP_SETGROUPS,
    STEP_SETGID,
    STEP_SETUID,
    STEP_CHDIR,
    STEP_EXEC,
    STEP_CGROUP,
    STEP_RLIMIT,
    STEP_CAPS,
    STEP_NNP,
    STEP_SECCOMP,
    STEP_VERIFY, /* msg says what is not in force */
    STEP_MOUNTS, /* the box's own mount namespace */
    STEP_SPARE,  /* the spare process's state is not what it checked (changed by a box process) */
    STEP_SCHED,  /* the command's scheduling policy (init's is SCHED_BATCH) */
};

/* One write on the report pipe (< PIPE_BUF, so atomic). */
struct child_report {
    int32_t step;
    int32_t err;
    char msg[240]; /* STEP_VERIFY: "CapEff 0000000000000400, expected 0000000000000000" */
    /* STEP_CHDIR with EACCES: the first ancestor of cwd (its first `dir_len` bytes) the user
     * cannot search, with its mode and owner, and the uid that tried; dir_len 0 = unknown */
    uint32_t dir_len, dir_mode, dir_uid, dir_gid, uid;
};

enum setup_state { SETUP_WAIT = 0, SETUP_DONE, SETUP_FAILED };

enum sock_state {
    SOCK_CONNECTING = 0, /* host-opened: our connect() to 127.0.0.1:port is in progress */
    SOCK_WAIT_OK,        /* guest-opened: SOCK_OPEN sent, the host has not answered */
    SOCK_RELAY,          /* connected both ends: data moves */
};

/* One socket session: a TCP connection in the guest relayed over the agent channel.  Owned by
 * struct agent's array; freed only by sock_sweep(), like exec sessions. */
struct sock_sess {
    uint32_t id;
    uint8_t kind; /* enum dbx_sock_kind */
    uint16_t port;
    enum sock_state state;
    bool dead;           /* SOCK_CLOSE or ERROR sent or received; fd closed */
    int fd;              /* the connection (non-blocking, close-on-exec), or -1 */
    bool v6;             /* a forward's connection to [::1], after 127.0.0.1 refused it */
    uint32_t credit;     /* bytes the host still accepts from us */
    struct dbx_buf in;   /* bytes from the host not yet written to fd */
    uint32_t in_pending; /* bytes from the host not yet credited back */
    bool in_eof;         /* the host's empty SOCK_DATA arrived */
    bool wr_shut;        /* shutdown(SHUT_WR) done after in_eof */
    bool rd_eof;         /* fd reached EOF and our empty SOCK_DATA was queued */
};

/* The audit records of one syscall, gathered until its EOE (init-audit.c). */
struct audit_event {
    uint64_t serial; /* 0: none yet */
    bool syscall_seen;
    int64_t arch, nr, a0, a2;
    pid_t pid;
    char *cwd;
    char *names[8]; /* PATH records' names, as the syscall got them */
    size_t nnames;
};

/* The boot's steps (CLOCK_MONOTONIC, which starts with the kernel), logged once at READY: where
 * a cold start's time goes inside the guest. */
#define BOOT_MARKS_MAX 24
struct boot_marks {
    unsigned n;
    const char *name[BOOT_MARKS_MAX];
    uint64_t ns[BOOT_MARKS_MAX];
};
void boot_mark(struct boot_marks *m, const char *name);
bool guest_file_same(int dfd, const char *name, const char *data, mode_t mode);
/* A block of ours inside a file the image may own, between two marker lines (each ending in
 * "\n"): init-ca.c's in the system CA bundles, init-hosts.c's in /etc/hosts. */
struct guest_marks {
    const char *begin, *end;
};
/* dfd/name with the previous boot's block taken out and body(the rest, ctx) appended as the new
 * one ("": none), written atomically with its owner and mode kept, and only when that changes
 * it.  A missing file is made (0644, ours) with create, else left missing; a symlink, a file
 * that is not regular or over 8 MiB, or a write the box's root blocked, is a note.  0, or -1
 * with *err.  Shown as shown. */
int guest_block_file(int dfd, const char *name, const char *shown, const struct guest_marks *m,
                     char *(*body)(const char *rest, const void *ctx), const void *ctx, bool create,
                     char ***notes, dbx_error **err);
void boot_marks_log(const struct boot_marks *m);

/* ---- init-clock.c ----------------------------------------------------------------------- */

struct clock_state {
    uint64_t ask;        /* the outstanding ask's token (CLOCK_MONOTONIC ns), 0: none */
    int64_t ask_lead_ns; /* how far ahead the frame that made it showed the guest */
};
enum clock_act {
    CLOCK_KEEP, /* nothing to do */
    CLOCK_STEP, /* set CLOCK_REALTIME to to_ns (lag_ns: by how much it lagged) */
    CLOCK_ASK,  /* send an ask with the token st->ask and wait for the answer */
    CLOCK_SLOW, /* an answer took lag_ns to come back: the clock is kept */
};
struct clock_verdict {
    enum clock_act act;
    int64_t to_ns, lag_ns;
    /* an answer says the guest is not a second ahead: the frame that made it ask came this
     * late (its lead), else 0 */
    int64_t late_ns;
};
/* What a CLOCK frame (the host's clock host_ns; answer: the reply to the ask `token`) means
 * for a guest whose clocks read rt_ns (CLOCK_REALTIME) and mono_ns (CLOCK_MONOTONIC) now. */
struct clock_verdict clock_decide(struct clock_state *st, uint64_t host_ns, bool answer,
                                  uint64_t token, int64_t rt_ns, uint64_t mono_ns);

struct agent {
    struct boot_marks marks;
    int fd;         /* the virtio-serial port (or the --serve-fd socket); -1 before phase 4 */
    int sigfd;      /* signalfd for SIGCHLD */
    bool test_mode; /* --serve-fd: not PID 1; no mounts, hostname or power-off */
    bool hup;       /* the host end is not connected: poll the port again after 10 ms */
    struct dbx_reader rd;
    struct dbx_buf out; /* frames queued for the host */
    enum setup_state setup;
    char *setup_error;
    uid_t uid;
    gid_t gid;
    char *hostname;   /* from SETUP; "" = keep the kernel's */
    char *ws_path;    /* mounted workspace, or NULL */
    uint64_t rx_us;   /* when the last read of the port brought bytes (DBX_EXEC_TIMING) */
    unsigned ca;      /* CA_HAS_*: SETUP's CA certificates installed where (init-ca.c) */
    char *tz;         /* SETUP's time zone, or NULL (init-locale.c) */
    const char *lang; /* LANG for commands, or NULL (init-locale.c) */
    struct box_policy box;
    struct session **sess;
    size_t nsess, cap_sess;
    int proxy_fd; /* the proxy listener on 127.0.0.1:proxy_port (allowlist mode), or -1 */
    uint16_t proxy_port;
    struct sock_sess **socks;
    size_t nsocks, cap_socks;
    uint32_t sock_next; /* low bits of the next guest-allocated socket session id */
    uint64_t hup_until; /* monotonic ms before which the port is not polled (a->hup) */
    int audit_fd;       /* NETLINK_AUDIT, us as the audit daemon (init-audit.c), or -1 */
    struct audit_event audit_ev;
    uint64_t prot_count, prot_sent; /* write attempts on protected paths: seen, reported */
    uint64_t prot_sent_ms;          /* when PROTECTED was last sent */
    struct clock_state clock;       /* init-clock.c */
    char *prot_first;               /* the first one's workspace-relative path */
    struct leaf_spare spare;        /* init-procs.c */
    uint32_t last_exec_id;          /* the latest EXEC's session id: the next is likely one more */
    uint32_t *cg_linger; /* sessions over whose leaf still held processes (init-procs.c) */
    size_t ncg_linger;
};

/* ---- init.c ----------------------------------------------------------------------------- */

/* Print "devbox-init: msg" on the console (fd 2 and /dev/kmsg).  Never fails. */
void init_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Where the init writes the box's files (CAs, time zone, terminfo): "/", or under --serve-fd
 * $DEVBOX_TEST_CA_ROOT, or NULL (the tests' default: nowhere). */
const char *agent_files_root(const struct agent *a);
/* Log "PHASE: msg", report it to the host when the agent port is open, sync and power off
 * (PID 1) or exit 125 (--serve-fd).  Never returns. */
_Noreturn void init_fatal(struct agent *a, const char *phase, const char *msg);
/* sync(), then power off (PID 1) or exit (--serve-fd).  Never returns. */
_Noreturn void init_poweroff(struct agent *a, int code);

/* ---- init-boot.c: phases 1-4 ------------------------------------------------------------ */

int boot_api_fs(struct agent *a, dbx_error **err);
/* Make sure fds 0-2 are open (the console, else /dev/null), so no pipe or pty fd ever lands
 * on them and a child's dup2() onto 0-2 cannot clobber another of its stdio fds. */
void boot_stdio(void);
int boot_modules(struct agent *a, dbx_error **err);
int boot_root(struct agent *a, dbx_error **err);
/* Ignore SIGPIPE, block SIGCHLD into a signalfd (a->sigfd), lower nothing but our own OOM
 * score.  Used by both PID 1 and --serve-fd. */
int boot_process(struct agent *a, dbx_error **err);
/* Find and open the port named "org.devbox.agent" (a->fd) and queue HELLO. */
int boot_agent(struct agent *a, dbx_error **err);
/* SETUP's extra shares (issue 13), after the workspace: each virtiofs tag mounted at its path
 * (created in the guest root; nosuid, nodev, and read-only when the host says so, which the
 * host enforces too).  The decoder already refused reserved, nested and workspace paths; they
 * are checked again here.  --serve-fd: nothing is created, the mount still runs. */
int boot_mount_shares(struct agent *a, const struct dbx_setup *su, dbx_error **err);
/* Queue HELLO with our kernel release. */
void boot_send_hello(struct agent *a);

/* ---- init-serve.c ----------------------------------------------------------------------- */

void agent_send(struct agent *a, uint8_t type, uint32_t sid, const void *p, size_t n);
void agent_send_error(struct agent *a, uint32_t sid, uint32_t code, const char *msg);
uint64_t exec_now_us(void);
/* Queue TIMING for a session with times (before its EXIT; init-exec.c). */
void exec_times_send(struct agent *a, const struct session *s);
/* Write what the port accepts now without blocking.  0, or -errno on a real error. */
int agent_flush(struct agent *a);
/* The serve loop: returns only on a fatal error (*err set). */
int serve(struct agent *a, dbx_error **err);

/* Poll table entries: what an fd belongs to (init-serve.c builds it, init-sock.c adds to it). */
enum poll_role {
    ROLE_IN = 0,
    ROLE_OUT = 1,
    ROLE_ERR = 2,
    ROLE_PTY = 3,
    ROLE_SOCK,
    ROLE_LISTEN,
    ROLE_AUDIT,
    ROLE_OWN_WRITES
};
struct pollref {
    void *obj; /* struct session *, struct sock_sess *, or NULL */
    int role;  /* enum poll_role */
};
struct pollset {
    struct pollfd *pfd;
    struct pollref *ref;
    size_t n, cap;
};
void pollset_add(struct pollset *ps, int fd, short ev, void *obj, int role);

/* ---- init-sock.c ------------------------------------------------------------------------ */

/* Listen on 127.0.0.1:port for the proxy (allowlist mode), before any command runs. */
int sock_listen(struct agent *a, uint16_t port, dbx_error **err);
/* The live socket session with this id, or NULL. */
struct sock_sess *sock_find(struct agent *a, uint32_t id);
/* Host SOCK_OPEN (kind FORWARD) on a fresh id: connect, answer SOCK_OK or ERROR later. */
void sock_on_open(struct agent *a, uint32_t id, const uint8_t *p, uint32_t n);
/* Any other frame on a live socket session. */
void sock_on_frame(struct agent *a, struct sock_sess *k, uint8_t type, const uint8_t *p,
                   uint32_t n);
/* End the session now; with msg, tell the host with ERROR (a protocol violation). */
void sock_abort(struct agent *a, struct sock_sess *k, const char *msg);
/* Poll entries for the listener and every socket that may move data now; out_ok: the queue
 * to the host has room for more data. */
void sock_poll_build(struct agent *a, struct pollset *ps, bool out_ok);
void sock_events(struct agent *a, const struct pollfd *pf, const struct pollref *r);
/* Free dead socket sessions (top of each loop iteration only). */
void sock_sweep(struct agent *a);

/* ---- init-audit.c ----------------------------------------------------------------------- */

/* At SETUP, after the protected paths are in place and before any command runs: audit rules
 * for write attempts failing with EROFS, EBUSY, EACCES or EPERM, the init as audit daemon
 * (a->audit_fd).  Nothing to do without a workspace or protected paths, or in --serve-fd mode.  -1
 * with *err: the caller logs it and goes on (the count is informational). */
int audit_setup(struct agent *a, dbx_error **err);
/* Read the pending records (a bounded batch) and count the attempts they show. */
void audit_events(struct agent *a);
/* Send PROTECTED when the count changed and the last report is a second old.  The ms until it
 * is due, or -1 when nothing waits. */
int audit_report_due(struct agent *a, uint64_t now);

/* ---- init-skel.c ------------------------------------------------------------------------ */

/* Copy the directory skel (the image's /etc/skel) into the home of a user just made, owned by
 * uid:gid: regular files with one link and directories, names already there kept, nothing
 * followed, capped; best effort. */
void skel_copy(int skel, int home, uid_t uid, gid_t gid);

/* ---- init-hosts.c ----------------------------------------------------------------------- */

/* etc/hosts (etc: the box's /etc) names localhost and hostname ("": none) in a block of ours,
 * made when it is missing.  0; -1 with *err on an I/O error; a file left alone is a note. */
int hosts_install(int etc, const char *hostname, char ***notes, dbx_error **err);
/* etc/hostname says hostname (unless ""), written as a file of ours (guest_own_file) when it
 * says anything else.  0; -1 with *err; a file the box's root blocked is a note. */
int hostname_install(int etc, const char *hostname, char ***notes, dbx_error **err);

/* ---- init-net.c ------------------------------------------------------------------------- */

/* Apply the plan's network settings at SETUP: loopback up; open: eth0's address, link and
 * default route over rtnetlink and /etc/resolv.conf; allowlist: apt's proxy configuration and
 * the proxy listener; a stale apt proxy file is removed in the other modes.  --serve-fd:
 * eth0 is configured only with DEVBOX_TEST_NET=1 (a network namespace of the test's own), and
 * the /etc files are written under $DEVBOX_TEST_ETC (unset: not at all). */
int net_setup(struct agent *a, const struct dbx_plan *plan, const char *hostname, dbx_error **err);

/* ---- init-ca.c -------------------------------------------------------------------------- */

/* Where the host's CA certificates go (see init-ca.c), and what the CA variables name. */
#define CA_HOST_CRT "/usr/local/share/ca-certificates/devbox/host-ca.crt"
#define CA_ANCHOR "/etc/pki/ca-trust/source/anchors/devbox-host-ca.pem"
#define CA_DEVBOX_PEM "/etc/ssl/devbox-ca.pem"

/* What ca_install left in place, for the CA variables (init-env.c). */
enum { CA_HAS_HOST_CRT = 1u << 0, CA_HAS_DEVBOX_PEM = 1u << 1 };

/* Install pem (SETUP's ca_pem, checked again with dbx_ca_pem_check) under the directory root
 * ("/" in the VM; the unit tests use a temporary directory): host-ca.crt (and the ca-trust
 * anchor when /etc/pki/ca-trust exists), the marker block in each system bundle that is a
 * regular file, and devbox-ca.pem.  pem "" undoes all of it.  Idempotent.  Records what it
 * left in /var/lib/devbox/ca.state; a boot that finds nothing changed since (ca_state_key: the
 * stats of those files) reads no bundle, writes nothing and repeats the recorded notes.  What was
 * left alone (a symlinked or oversized bundle, a file of ours the box's root blocked with a symlink
 * or a directory, a system bundle not fit to copy) is appended to *notes as a sentence.  The
 * CA_HAS_* bits of the files written (0 for pem ""), or -1 with *err naming the file. */
int ca_install(const char *root, const char *pem, char ***notes, dbx_error **err);
/* Write (data != NULL, len bytes) or remove (data == NULL) rootfd/rel as a file of ours: 0644,
 * owned by us, written atomically, missing directories made 0755, nothing on the way followed
 * if it is a symlink.  1 when done; 0 when the box's root blocked it with a symlink, a file or a
 * directory (a sentence appended to *notes); < 0 with *err. */
int guest_own_file(int rootfd, const char *rel, const void *data, size_t len, char ***notes,
                   dbx_error **err);
/* The same for a file `name` of directory dfd (written), `shown` its name in messages. */
int guest_own_file_in(int dfd, const char *name, const char *shown, const void *data, size_t len,
                      char ***notes, dbx_error **err);

/* ---- init-locale.c ---------------------------------------------------------------------- */

/* SETUP's time zone under the directory root ("/" in the VM; the unit tests use a temporary
 * directory), checked again with dbx_tz_check: when there is data and the image has no
 * usr/share/zoneinfo/NAME, the data is written there (guest_own_file).  1 when it was, 0 when
 * nothing was needed or the box's root blocked it (a sentence appended to *notes), < 0 with
 * *err. */
int tz_install(const char *root, const char *name, const uint8_t *data, uint32_t len, char ***notes,
               dbx_error **err);
/* LANG for every command of the image under root: "C.UTF-8" when it has that locale, else
 * NULL (the C library's POSIX locale). */
const char *locale_default(const char *root);
/* EXEC's terminfo for TERM=term under root: when the image has no entry of that name in
 * etc/terminfo, lib/terminfo or usr/share/terminfo, the data (dbx_terminfo_check) is written to
 * TERMINFO_RUN_DIR/<first letter>/term (guest_own_file).  1 when it is there, for
 * TERMINFO_DIRS; 0 when not needed, not fit, or the box's root blocked it (a note); < 0 with
 * *err. */
#define TERMINFO_RUN_DIR "/run/devbox/terminfo"
int terminfo_install(const char *root, const char *term, const uint8_t *data, size_t len,
                     char ***notes, dbx_error **err);

/* ---- init-env.c ------------------------------------------------------------------------- */

struct init_user;
/* The environment of req's command running as u (NULL-terminated, caller frees with
 * dbx_strv_free): for an ordinary command the init's defaults, the plan's env, the request's
 * env; for DBX_EXEC_ADMIN a reset one (see init-env.c) without the plan's env but its proxy
 * variables.  Never fails. */
char **exec_env_build(const struct exec_ctx *ctx, const struct init_user *u,
                      const struct dbx_exec_req *req);
/* The value of env's variable key, or NULL. */
const char *exec_env_get(char *const *env, const char *key);
/* env's PATH, or the default one. */
const char *exec_env_path(char *const *env);
/* TERMINFO_RUN_DIR into env's TERMINFO_DIRS (after its entries), or TERMINFO_DIRS set to it and
 * the system's directories: where terminfo_install put the host terminal's entry. */
void exec_env_terminfo(char ***env);

/* ---- init-exec.c ------------------------------------------------------------------------ */

/* Start req as a new session leader with its stdio on fresh pipes or a pty; on success fills
 * s->pid, s->pty, s->in_fd, s->rd_fd (non-blocking, close-on-exec, owned by s).  On failure
 * returns < 0 with *err naming the step and *ret_code 125 (setup), 126 (not executable) or
 * 127 (not found); nothing is left open and the failed child (if any) is killed and reaped. */
int exec_spawn(const struct exec_ctx *ctx, const struct dbx_exec_req *req, struct session *s,
               int *ret_code, dbx_error **err);
/* argv[0] of the spare process (struct spare_proc): main() runs exec_spare_main for it. */
#define SPARE_ARGV0 "devbox-spare"
/* Between loop iterations while no command starts, after the spare leaf and the next mount
 * copy are made: the spare process moved into that leaf, or made there when there is none
 * (unless it cannot be: test mode, the permissive plan, a user with sys_admin, a failure). */
void exec_spare_start(struct agent *a);
/* The spare process killed (unless reaped already), reaped and forgotten. */
void exec_spare_drop(struct spare_proc *sp);
/* The spare process's program: start each command init sends, until init closes its end. */
int exec_spare_main(int argc, char **argv);

/* ---- init-user.c ------------------------------------------------------------------------ */

struct init_user {
    uid_t uid;
    gid_t gid;
    char *name;    /* NULL when the uid has no /etc/passwd entry */
    char *home;    /* NULL when unknown */
    char *shell;   /* the login shell: the passwd entry's when it can run, else /bin/bash if
                      the image has it, else /bin/sh; never NULL after user_resolve */
    gid_t *groups; /* supplementary groups from /etc/group */
    size_t ngroups;
};

/* Resolve an exec user spec: "" (the default uid/gid), "uid", "uid:gid", "name", "name:group"
 * against /etc/passwd and /etc/group of the current root.  Fills *ret on success. */
int user_resolve(const char *spec, uid_t def_uid, gid_t def_gid, struct init_user *ret,
                 dbx_error **err);
void user_clear(struct init_user *u);
/* /bin/bash when the image has it, else /bin/sh. */
const char *user_default_shell(void);
/* Make sure uid has an /etc/passwd entry (and gid an /etc/group entry): if not, append
 * "devbox:x:UID:GID:devbox:/home/devbox:SHELL" (SHELL user_default_shell(); an entry of an
 * earlier version with /bin/sh counts as one without a shell) and a group line, and create the
 * home directory, owned by uid:gid, mode 0755.  Nothing to do for uid 0. */
int user_ensure_default(uid_t uid, gid_t gid, dbx_error **err);

/* ---- init-policy.c ---------------------------------------------------------------------- */

/* Apply su->plan at SETUP: with anything but the permissive plan, the box cgroup and its
 * limits (read back), device nodes, PID 1 not dumpable, protected paths read-only, the default
 * user; each verified.  Takes su->plan into a->box.  In --serve-fd mode the cgroup root is
 * $DEVBOX_TEST_CGROUP (no cgroup when unset), devices and users are left alone, and the mounts
 * happen in a private mount namespace. */
int policy_setup(struct agent *a, struct dbx_setup *su, dbx_error **err);
void policy_clear(struct box_policy *b);
/* Child side, between fork and exec; each returns 0, or -1 with *r filled.  In this order:
 * enter (the leaf cgroup joined when cg_procs_fd >= 0, i.e. clone3 did not place the child in
 * it at birth; rlimits, mounts, bounding set, keep-caps, and the seccomp filter when
 * no_new_privs is off: loading it then needs CAP_SYS_ADMIN, which the user may not keep),
 * then the caller switches ids, then caps (capset, ambient), then lock (no_new_privs and the
 * seccomp filter), then verify (/proc/self/status, /proc/self/cgroup, rlimits, OOM score).  mnt_fd:
 * the command's own copy of the mount template made ahead (policy_mnt_prepare), or -1. */
int policy_child_enter(const struct box_policy *b, int cg_procs_fd, int mnt_fd, uint64_t caps,
                       uint64_t *stamps, struct child_report *r);
/* Between loop iterations while no command starts: the next command's copy of the mount
 * template (b->mnt_next), unless there is one or no template. */
void policy_mnt_prepare(struct box_policy *b);
int policy_child_caps(const struct box_policy *b, uint64_t caps, struct child_report *r);
/* The capability mask for a command running as uid: the plan's caps for uid 0, caps_user for
 * every other uid (the ordinary box user never gets what was granted to root); with admin (an
 * EXEC with DBX_EXEC_ADMIN, always uid 0) the plan's caps plus DBX_CAPS_ADMIN.  The child
 * functions take this mask for all five sets. */
uint64_t policy_caps_for(const struct box_policy *b, uid_t uid, bool admin);
int policy_child_lock(const struct box_policy *b, struct child_report *r);

/* ---- issue 13: init-watch.c (helper E) ---------------------------------------------------- */
/* CHANGED from the host: raise inotify events in the guest for files edited on the host. */
void watch_on_changed(struct agent *a, const uint8_t *p, uint32_t n);
/* Ms until watch_tick has work (0: now), or -1. */
int watch_timeout(struct agent *a, uint64_t now);
/* The workspace's inotify watches read again when due (init-watch.c). */
void watch_tick(struct agent *a, uint64_t now);
/* After the workspace is mounted, before any command: the box's own writes followed, so that
 * their notices come back to nobody (best effort: logged when it fails). */
void watch_setup(struct agent *a);
/* The descriptor to poll for the box's writes, or -1; when it is ready (read a little later,
 * by watch_tick). */
int watch_own_fd(void);
void watch_own_ready(struct agent *a);
/* Before the workspace is unmounted: what init-watch.c holds of it closed. */
void watch_shutdown(void);
/* Read a small /proc (or cgroup) file into buf, NUL-terminated; false on any error. */
bool read_proc(const char *path, char *buf, size_t size);
/* An image's /etc/passwd or /etc/group, whole: "" when missing; a FIFO, device or anything but a
 * regular file is an error (opened O_NONBLOCK: PID 1 never waits for a writer) (init-user.c). */
int user_read_db(const char *path, char **ret, dbx_error **err);
int policy_child_verify(const struct box_policy *b, const char *cg_line, const struct init_user *u,
                        uint64_t caps, bool switched, struct child_report *r);

/* ---- init-procs.c: per-command cgroups, PS and KILL --------------------------------------- */

/* The session's leaf box/s<id> under the box cgroup (none without one): s->cg_fd (the directory
 * clone3 places the child in), the leaf's cgroup.procs for a child that must join it itself
 * (*ret_procs_fd, -1 without a cgroup) and the line its
 * /proc/self/cgroup must show (*ret_line, NULL without a cgroup; caller frees). */
int procs_leaf_create(const struct box_policy *b, struct leaf_spare *spare, struct session *s,
                      int *ret_procs_fd, char **ret_line, dbx_error **err);
/* Between loop iterations (the last frames flushed): make the leaf the next EXEC will likely
 * want, after last_id, unless it is there already; drop a spare that was guessed wrong. */
void procs_leaf_prepare(struct agent *a, uint32_t last_id);
/* SIGKILL every process of the session (cgroup.kill; without a leaf its process group). */
void procs_leaf_kill(struct session *s);
/* The session is over: close s->cg_fd and remove the leaf, or remember it while it still holds
 * processes (a daemon the command left behind) and retry at each reap. */
void procs_leaf_release(struct agent *a, struct session *s);
void procs_linger_retry(struct agent *a);
/* Whether fn is true for a pid in the cgroup.procs of the cgroup directory dfd (read once, up
 * to 1 MiB; stops at the first true). */
bool procs_listed_any(int dfd, bool (*fn)(pid_t pid, void *ud), void *ud);
/* Session-0 requests: PS (list the box's processes) and KILL. */
void procs_on_ps(struct agent *a, const uint8_t *p, uint32_t n);
void procs_on_kill(struct agent *a, const uint8_t *p, uint32_t n);

/* ---- init-stats.c (issue 13: helper B) -------------------------------------------------- */

/* STATS on session 0: STATS_REPLY with the box cgroup's counters (none without a cgroup). */
void stats_on_request(struct agent *a, const uint8_t *p, uint32_t n);
/* After the box cgroup is made: the memory controller in the leaves, so each counts its own
 * OOM kills (logged when the kernel refuses). */
void stats_setup(struct agent *a);
/* The box's oom_kill and pids-refusal counts now (UINT64_MAX each when unknown). */
void stats_box_counts(struct agent *a, uint64_t *ret_oom_kills, uint64_t *ret_pids_refused);
/* Before a session's command starts: remember the box's oom_kill and pids-refusal counts (the
 * spare leaf's, read while the box was idle, when the session takes it). */
void stats_session_start(struct agent *a, struct session *s);
/* Just before a session's EXIT: NOTICE when the box's limits explain its death. */
void stats_session_end(struct agent *a, struct session *s);

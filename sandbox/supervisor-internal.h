/* sandbox/supervisor-internal.h: the supervisor's state and the functions its files share
 * (sandbox-supervisor.c: the loop and the threading model; supervisor-vm.c: preparing,
 * booting and tearing down the VM; supervisor-health.c: panics, liveness, a full disk, a dead
 * virtiofsd, stopping; supervisor-relay.c: clients and the guest's frames; supervisor-status.c:
 * the status record).  Only the supervisor's own files include it. */
#pragma once

#include "sandbox-internal.h"
#include "../vm/vm.h"

#define MAX_CLIENTS 512
#define MAX_NET_FDS 640            /* port listeners + socket sessions (sandbox-net.c) */
#define SESS_SLOTS 1024            /* power of two, > DBX_MAX_SESSIONS */
#define AGENT_OUT_HIGH (16u << 20) /* stop reading clients above this */
#define AGENT_OUT_MAX (64u << 20)  /* stop reading the guest above this */

enum client_kind { C_NEW, C_EXEC, C_STOP, C_CLOSING };

struct client {
    int fd;
    enum client_kind kind;
    uint32_t gsid;
    struct dbx_reader rd;
    struct dbx_buf out;
};

struct sess {
    uint32_t gsid;    /* 0 = free slot */
    struct client *c; /* NULL once the client went away: frames are dropped */
};

struct logsink {
    int in;  /* read end (from QEMU/virtiofsd/console) */
    int out; /* log file */
    uint64_t written;
    char tail[1024]; /* last bytes, for error messages */
    size_t tail_len;
};

/* Everything below belongs to the poll loop's thread (see sandbox-supervisor.c). */
struct sup {
    /* what runs: set up by sup_prepare, fixed afterwards */
    struct dbx_paths paths;
    struct dbx_project proj;
    struct profile prof;
    struct dbx_plan plan; /* compiled from prof; what the guest enforces */
    struct dbx_project_rec rec;
    struct vm_kernel kernel;
    char *ca_pem; /* the host's CA certificates for SETUP (dbx_ca_load), or NULL: none */
    const char *net_override; /* --network none from the command line, or NULL */
    int ready_fd;             /* the starting client's report pipe, until "OK" or "E" */
    int sig_fd;               /* signalfd: SIGCHLD and the stop signals */
    bool stop_requested;      /* a stop signal came (also while [setup] ran) */

    /* the VM's processes (supervisor-vm.c) */
    struct {
        enum vm_accel accel;
        pid_t qemu_pid, vfs_pid, passt_pid; /* passt: network mode open only */
        struct vm_passt *passt;
        int qemu_status;
        struct vm_qmp *qmp;     /* QEMU's monitor: pause/resume and I/O error events */
        struct logsink logs[3]; /* console, qemu, virtiofsd */
        uint64_t started_ms;
        int64_t started_wall;
        char *disk; /* the disk QEMU boots: the project's overlay, or setup's while it runs */
        bool no_workspace; /* a setup VM that must not see the project (supervisor-setup.c) */
    } vm;

    /* the guest's state as the supervisor knows it (supervisor-health.c) */
    struct {
        bool hello, ready, stopping, quit;
        bool dead;                 /* the guest died (panic, no answer): clients were told */
        uint64_t console_panic_ms; /* when the console showed the panic line (0: not yet) */
        uint64_t last_frame_ms;    /* when the guest last sent anything */
        uint64_t ping_token;
        bool nospace; /* paused by QEMU because the host disk is full */
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
    } relay;

    struct net *net;             /* socket sessions, port forwards, egress proxy (sandbox-net.c) */
    struct sup_secrets *secrets; /* the values the proxy adds for the box (supervisor-secrets.c) */

    /* the box's write attempts on protected paths, as the guest reports them (this boot: a
     * setup VM has no workspace, so only the project's VM reports) (supervisor-status.c) */
    struct dbx_protected protect;

    /* issue 13: extra shares (supervisor-vm.c): a linked worktree's repository, [mounts] */
    struct sup_share {
        char *host;       /* absolute host directory (also the guest path of a repository) */
        char *guest;      /* where the box sees it */
        bool readonly;    /* enforced in virtiofsd's mount namespace */
        char **protected; /* below host, as struct mounts_vfs_config.protected, or NULL */
        pid_t pid;        /* its virtiofsd's guard, or -1 */
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
/* Frames on session 0: hello, ready, ping, errors. */
void sup_agent_control(struct sup *s, const struct dbx_frame_hdr *h, const uint8_t *p);
char *sup_skew_error(unsigned version);
/* A child the poll loop reaped: if it is an extra share's virtiofsd, forget it and return
 * true (its death is then handled as the workspace virtiofsd's). */
bool sup_share_reaped(struct sup *s, pid_t pid);

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
void sup_check_console_panic(struct sup *s, bool now_or_never);
void sup_check_liveness(struct sup *s);
char *sup_nospace_msg(struct sup *s);
void sup_nospace_poll(struct sup *s);
void sup_qmp_events(struct sup *s);
void sup_vfs_died(struct sup *s, int status);

/* ---- supervisor-relay.c ---- */
void sup_agent_send(struct sup *s, uint8_t type, uint32_t session, const void *p, size_t n);
void sup_agent_read(struct sup *s);
void sup_agent_flush(struct sup *s);
void sup_client_accept(struct sup *s);
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
/* run_dir/status, read by clients that must not wait for the loop (dbx_status_read). */
int sup_write_status_file(struct sup *s, dbx_error **err);
/* A PROTECTED frame from the guest (session 0): validated into s->protect, or logged and
 * dropped. */
void sup_protected_frame(struct sup *s, const struct dbx_frame_hdr *h, const uint8_t *p);

/* sandbox/sandbox.h: the devbox command's library: where things live, which project the
 * user means, per-project state, the supervisor that owns a running VM, and the client side
 * of the control socket.  Commands (sandbox/cmd-*.c) are thin wrappers over these. */
#pragma once

#include "../common/common.h"

/* ---- paths ------------------------------------------------------------------------------ */

struct dbx_paths {
    char *data;   /* kernel, images, base disks, project disks */
    char *state;  /* per-project metadata, logs, locks, accelerator verdict */
    char *run;    /* per-project runtime dir (0700): control socket, vhost-user socket */
    char *config; /* user configuration */
};
/* DEVBOX_HOME=H gives H/{data,state,run,config}; else the XDG directories (XDG_RUNTIME_DIR,
 * or /tmp/devbox-UID when unset).  Creates them 0700 and checks ownership. */
int dbx_paths_init(struct dbx_paths *ret, dbx_error **err);
void dbx_paths_clear(struct dbx_paths *p);
/* The static guest init: DEVBOX_INIT, else devbox-init next to this executable, else
 * /usr/local/lib/devbox/devbox-init. */
int dbx_find_init(char **ret, dbx_error **err);
/* `name` in the directory of this executable (/proc/self/exe) if access(mode) allows it
 * there, else NULL: the build tree, or `make install`'s lib/devbox beside devbox-full.
 * Free with free(). */
char *dbx_find_beside_self(const char *name, int mode);

/* ---- project ---------------------------------------------------------------------------- */

struct dbx_project {
    char *root;      /* canonical absolute path of the work tree top: the identity */
    char id[17];     /* first 16 hex digits of sha256(root) */
    char *cwd;       /* canonical directory the user is in (inside root) */
    char *state_dir; /* paths.state/projects/ID */
    char *data_dir;  /* paths.data/projects/ID */
    char *run_dir;   /* paths.run/ID */
};
/* Find the project containing `dir` (NULL = cwd): the nearest directory holding a `.git`
 * entry.  libgit2's repository discovery must confirm it when the project is new to devbox
 * or `validate` is set (the supervisor does, at every start).  Repo configuration such as
 * core.worktree is deliberately ignored: the share is the directory the user is in, never
 * one a repo file names. */
int dbx_project_find(const struct dbx_paths *paths, const char *dir, bool validate,
                     struct dbx_project *ret, dbx_error **err);
/* Whether the work tree at root (canonical) may be shared as a box's workspace: never the host's
 * root, the user's home itself or a directory holding it (its shell, ssh, git and agent
 * configuration, which the box could rewrite for the host to run), nor one holding, holding a
 * part of, or inside devbox's own directories (trust records, config.ini, disks, sockets).
 * The rule [mounts] applies to its shares (profiles-mounts.c).  0, or -1 with *err. */
int dbx_project_share_check(const struct dbx_paths *paths, const char *root, dbx_error **err);
/* What the user's home links to inside the work tree at root (canonical): as normalized
 * root-relative paths, where the host's lookup of each symlink among the home's dotfiles and
 * in its .config, .ssh, .local/bin and bin (and of those four, when one is itself a link)
 * enters the workspace (a dotfiles repository installed with GNU stow or a script of links:
 * ~/.bashrc -> ~/dotfiles/.bashrc), what the host runs or reads as its configuration; at most
 * max of them, NULL-terminated (never NULL).  *ret_full: some were left out (more than max,
 * or a directory too large to read whole). */
char **dbx_project_home_links(const char *root, size_t max, bool *ret_full);
/* Open the project by id from the state dir (for ls / rm of a vanished tree). */
void dbx_project_clear(struct dbx_project *p);

/* Persistent record of a project (state_dir/project.json). */
struct dbx_project_rec {
    char *root;
    char *image;     /* image name the disk was created from */
    char *base;      /* base disk file the overlay is backed by: the image's, or a derived
                        disk (data/derived/) when the profile has [setup] */
    int64_t created; /* unix seconds */
    char *setup;     /* dbx_setup_hash of the [setup] commands the disk was made with ("" none) */
};
int dbx_project_rec_load(const char *state_dir, struct dbx_project_rec *ret, dbx_error **err);
int dbx_project_rec_save(const char *state_dir, const struct dbx_project_rec *rec, dbx_error **err);
void dbx_project_rec_clear(struct dbx_project_rec *r);
/* Every project known to devbox: NULL-terminated vector of ids. */
int dbx_project_list(const struct dbx_paths *paths, char ***ret_ids, dbx_error **err);

/* ---- images ----------------------------------------------------------------------------- */

/* An image is a record (data/images/<hash of name>.json) naming a read-only raw base disk in
 * data/bases/, content-addressed: by the manifest digest for an OCI image, by the tarball's
 * digest for a rootfs tarball.  Base disks are immutable and shared; each project writes only to
 * its own qcow2 overlay.  OCI blobs live in a content store (data/oci) shared by all images.
 * Names: a local name ("default", or what `image import` was given) or an OCI reference, which
 * is recorded in its canonical form ("debian:bookworm" -> "docker.io/library/debian:bookworm"). */
struct dbx_image {
    char *name;      /* the record's name (canonical reference for pulled images) */
    char *base;      /* absolute path of the read-only raw base disk */
    char *digest;    /* manifest digest (OCI) or sha256:... of the rootfs tarball */
    uint64_t size;   /* bytes of the base disk file */
    int64_t created; /* when the record was written */
    char *source;    /* "registry", "archive", "rootfs" or "debian" (the built-in default) */
    char *platform;  /* "linux/amd64"; "" for a rootfs tarball */
    char **env;      /* image config Env (NULL-terminated; may be empty), applied in the guest */
    char *user;      /* image config User ("" if none): informational, see docs */
    char *workdir;   /* image config WorkingDir ("" if none) */
};
void dbx_image_clear(struct dbx_image *img);

/* Pull progress, shown on a terminal by the caller. */
struct dbx_pull_opts {
    const char *platform; /* "os/arch[/variant]"; NULL = the host's */
    int progress_fd;      /* a tty to draw per-layer progress on, or -1 */
    int phase_fd;         /* > 0: where dbx_image_ensure says what it does at length, one line
                             per phase, tty or not ("building the default image (once)",
                             "pulling REF"); 0 = nowhere */
};

/* The image a profile names: the record if there is one; else pull the reference (or build the
 * default Debian image for "default").  The first use of an image costs a download. */
int dbx_image_ensure(const struct dbx_paths *paths, const char *name,
                     const struct dbx_pull_opts *opts, struct dbx_image *ret, dbx_error **err);
/* Only look it up (no pull). */
int dbx_image_get(const struct dbx_paths *paths, const char *name, struct dbx_image *ret,
                  dbx_error **err);
/* Pull ref from its registry and build its base disk, layers unpacked as they arrive. */
int dbx_image_pull(const struct dbx_paths *paths, const char *ref, const struct dbx_pull_opts *opts,
                   struct dbx_image *ret, dbx_error **err);
/* Import FILE: a `docker save` tarball, an OCI image layout (dir or tar) or a rootfs tarball.
 * name: the record's name; NULL records "import@" and the manifest digest (a rootfs
 * tarball needs one). */
int dbx_image_import(const struct dbx_paths *paths, const char *file, const char *name,
                     const struct dbx_pull_opts *opts, struct dbx_image *ret, dbx_error **err);
/* Build the default image (Debian bookworm from the Debian archive, with mmdebstrap) and record
 * it as "default". */
int dbx_image_build_default(const struct dbx_paths *paths, struct dbx_image *ret, dbx_error **err);
/* The Debian mirror the default image is built from: $DEVBOX_DEBIAN_MIRROR, else the host's
 * apt sources for bookworm (vm_debian_mirror; $DEVBOX_APT_DIR replaces /etc/apt, for tests),
 * else http://deb.debian.org/debian.  Caller frees. */
char *dbx_image_debian_mirror(void);
/* Every image record, sorted by name. */
int dbx_image_list(const struct dbx_paths *paths, struct dbx_image **ret, size_t *ret_n,
                   dbx_error **err);
/* Projects (their roots, NULL-terminated) whose disk is backed by base, directly or through
 * a derived disk. */
char **dbx_image_users(const struct dbx_paths *paths, const char *base);
/* Projects (their roots, NULL-terminated) whose record (with a base) match() accepts. */
char **dbx_projects_where(const struct dbx_paths *paths,
                          bool (*match)(const struct dbx_paths *paths,
                                        const struct dbx_project_rec *rec, const void *ud),
                          const void *ud);
/* Details for `image inspect` as JSON text. */
int dbx_image_inspect(const struct dbx_paths *paths, const char *name, char **ret_json,
                      dbx_error **err);
/* Remove an image record (and its base disk when nothing else uses it).  Refuses while a
 * project's disk is backed by it, unless force. */
int dbx_image_remove(const struct dbx_paths *paths, const char *name, bool force, dbx_error **err);
/* Delete derived disks no project uses, base disks no image, derived disk or project uses,
 * and blobs no image needs.  *ret_removed: the derived disks removed, by name. */
int dbx_image_prune(const struct dbx_paths *paths, char ***ret_removed, uint64_t *ret_freed,
                    dbx_error **err);

/* ---- derived disks ([setup]) ------------------------------------------------------------- */

/* A derived disk is an image's base disk after a profile's [setup] ran in it: a read-only
 * qcow2 overlay of the base in data/derived/, shared by every project with the same image and
 * setup (sandbox-derived.c says how it is named and kept). */
struct dbx_derived {
    char key[65];    /* SHA-256 of (version, base disk name, setup commands, context), hex */
    char *image;     /* the image name setup ran on */
    char *base;      /* that image's raw base disk */
    char *disk;      /* the current derived disk: data/derived/KEY-MS.qcow2 */
    char **run;      /* the setup commands */
    char *built_for; /* the project whose setup built it */
    int64_t created; /* unix seconds */
    uint64_t size;   /* bytes the disk file takes */
};
void dbx_derived_clear(struct dbx_derived *d);
char *dbx_derived_dir(const struct dbx_paths *paths);
/* The key of the derived disk of base after run, given the other strings that shape setup's
 * result (context, NULL-terminated, may be NULL). */
void dbx_derived_key(const char *base, char *const *run, char *const *context, char ret[65]);
/* What a project's record keeps to notice a changed [setup]: a hash of the commands only
 * ("" for none). */
void dbx_setup_hash(char *const *run, char ret[65]);
/* Lock KEY against a concurrent build, reuse or prune; returns the fd.  wait false: -EAGAIN
 * (no error set) when someone holds it. */
int dbx_derived_lock(const struct dbx_paths *paths, const char *key, bool wait, dbx_error **err);
/* Where setup builds KEY's disk (under the lock). */
char *dbx_derived_build_path(const struct dbx_paths *paths, const char *key);
/* The record of KEY, whether or not its current disk still exists; -ENOENT (no error set)
 * when there is none. */
int dbx_derived_load(const struct dbx_paths *paths, const char *key, struct dbx_derived *ret,
                     dbx_error **err);
/* The record of KEY with a disk that exists; -ENOENT (no error set) when there is none. */
int dbx_derived_get(const struct dbx_paths *paths, const char *key, struct dbx_derived *ret,
                    dbx_error **err);
/* Seal the disk at `build` (0444), name it KEY-MS.qcow2 and record it as KEY's current disk;
 * d->key, image, base, run and built_for are set by the caller; sets d->disk and created. */
int dbx_derived_commit(const struct dbx_paths *paths, struct dbx_derived *d, const char *build,
                       dbx_error **err);
/* Every record, oldest first. */
int dbx_derived_list(const struct dbx_paths *paths, struct dbx_derived **ret, size_t *ret_n,
                     dbx_error **err);
void dbx_derived_list_free(struct dbx_derived *v, size_t n);
/* Is path a derived disk (data/derived/KEY-MS.qcow2)?  Sets key. */
bool dbx_derived_is_disk(const struct dbx_paths *paths, const char *path, char key[65]);
/* How `devbox images` names it: "IMAGE+setup-<12 hex of the key>". */
char *dbx_derived_name(const struct dbx_derived *d);
/* The name of the derived disk file at path, said to be an earlier build when it is not d's
 * current disk. */
char *dbx_derived_disk_name(const struct dbx_derived *d, const char *path);
/* Delete the derived disks no project uses (and records left with no disk); *ret_removed
 * gets their names. */
int dbx_derived_prune(const struct dbx_paths *paths, char ***ret_removed, uint64_t *ret_freed,
                      dbx_error **err);

/* ---- running VMs ------------------------------------------------------------------------ */

/* How a command reaches the project's VM (main's global options travel here as values). */
struct dbx_connect_opts {
    bool start;        /* boot the VM if it is not running (else -ENOENT, no error set) */
    bool network_none; /* `devbox --network none`: a VM started now gets network mode none; one
                          already running with a network is refused (it cannot narrow) */
};
/* Connect to the project's supervisor, starting it (and so the VM) if it is not running and
 * opts->start.  Two callers racing on a stopped project end with one VM.  Warnings the
 * supervisor emits while starting (e.g. falling back from KVM) are printed by the caller: the
 * function returns them in *ret_warnings (NULL-terminated, may be NULL). */
int dbx_connect(const struct dbx_paths *paths, const struct dbx_project *proj,
                const struct dbx_connect_opts *opts, int *ret_fd, char ***ret_warnings,
                dbx_error **err);
/* A project's VM as `devbox status` shows it.  The supervisor fills one and sends it to clients
 * in the strict binary form of dbx_status_encode (also its run_dir status file); `status --json`
 * and `ls --json` render it with dbx_status_json. */
enum dbx_vm_state {
    DBX_VM_STOPPED,
    DBX_VM_RUNNING,
    DBX_VM_PAUSED,
    DBX_VM_STOPPING,
    /* never in a record: a supervisor holds the project but does not answer yet (an image build,
     * [setup], the boot), as a client sees it */
    DBX_VM_STARTING,
};
/* struct dbx_status's aslr: a record of a supervisor from before it was kept says neither */
enum { DBX_ASLR_UNKNOWN, DBX_ASLR_ON, DBX_ASLR_OFF };

struct dbx_status {
    enum dbx_vm_state state;
    char *project; /* the project's root */
    char id[17];
    char *image; /* NULL: not known (a stopped project without record or profile) */
    /* the rest only when dbx_status_live */
    int32_t pid, qemu_pid, virtiofsd_pid;
    char *accel;  /* "kvm", "tcg" */
    char *kernel; /* the guest kernel's release ("" before its hello) */
    uint64_t uptime_s, memory_mib, rss_kib;
    uint32_t cpus, sessions;
    int64_t started; /* unix seconds */
    char profile_hash[65];
    char **profile_files; /* repo files the hash covers, in order (NULL-terminated) */
    uint8_t network;      /* DBX_NET_* */
    uint8_t seccomp;      /* DBX_SECCOMP_* */
    uint64_t connections;
    char *ports;               /* one forward a line ("127.0.0.1:3000 -> 3000\n") */
    uint64_t protected_writes; /* write attempts on protected paths this boot (the guest's word) */
    char *protected_first;     /* the first one's workspace-relative path, or NULL */
    uint64_t idle_s;           /* how long the box has had nothing running (0: busy) */
    uint64_t idle_stop_s;      /* config.ini's idle_stop it started with (0: never) */
    uint8_t aslr;              /* DBX_ASLR_*: whether the box's programs are randomized */
    /* set by `devbox status` (never encoded): devbox.ini on disk against profile_hash */
    bool profile_checked, profile_changed;
    char *profile_error; /* the profile on disk does not load */
};
void dbx_status_clear(struct dbx_status *st);
/* `devbox status` without --json: a line per field, on stdout. */
void dbx_status_print(const struct dbx_status *st);
/* Seconds as status shows an idle time: "42s", "4m12s", "2h05m07s". */
char *dbx_status_idle_human(uint64_t s);
/* The status of the project's VM: asked of its supervisor, or built from the project's record
 * when it is not running.  *ret is cleared by the caller. */
int dbx_status_get(const struct dbx_paths *paths, const struct dbx_project *proj,
                   struct dbx_status *ret, dbx_error **err);
/* The status file a running supervisor keeps in run_dir (read without asking it, for a fast
 * check); -ENOENT when there is none, another negative value when it does not decode. */
int dbx_status_read(const char *run_dir, struct dbx_status *ret);
/* The names status shows ("running"; "allowlist"; "strict"). */
const char *dbx_vm_state_name(enum dbx_vm_state s);
/* A supervisor answered with the record: running, paused or stopping (not stopped, starting). */
bool dbx_status_live(const struct dbx_status *st);
const char *dbx_status_network_name(uint8_t mode);
const char *dbx_status_seccomp_name(uint8_t mode);
/* The JSON object `devbox status --json` prints (keys sorted, ASCII only); caller frees.  Its
 * "ports" is dbx_ports_json's array ([] while stopped). */
char *dbx_status_json(const struct dbx_status *st);
/* One port forward as the status record's ports and `port ls` write it: "ADDR:HOST -> GUEST\n"
 * (ADDR an IPv6 address without brackets); caller frees. */
char *dbx_port_line(const char *addr, unsigned host, unsigned guest);
/* dbx_port_line's lines as a compact JSON array of {"address", "host", "guest"} (`profile show
 * --json`'s [ports] objects, with the address the forward listens on); a line of another form
 * is left out.  Caller frees. */
char *dbx_ports_json(const char *text);
/* Clean shutdown; returns when the supervisor has exited.  0 if it was not running. */
int dbx_stop(const struct dbx_paths *paths, const struct dbx_project *proj, dbx_error **err);
/* A pidfd of the supervisor at the other end of a connection dbx_connect just made (-1 if it
 * cannot be had): taken while the connection is open, so that it names that supervisor. */
int dbx_peer_pidfd(int fd);
/* A supervisor that answered DBX_ERR_RESTART stops by itself: wait for that one (pidfd, from
 * dbx_peer_pidfd on the connection it answered) to exit, so that the caller starts the new box.
 * Returns when it has; one still there after a while, or none known (-1), is stopped
 * (dbx_stop). */
int dbx_restart_wait(const struct dbx_paths *paths, const struct dbx_project *proj, int pidfd,
                     dbx_error **err);

/* Throw the project's disk away (the VM stopped first with force, else a running one is an
 * error): the next start makes it again from the image, through [setup]'s derived disk.  The
 * workspace is the user's directory and is not touched.  setup_force: that start runs [setup]
 * again instead of reusing a derived disk. */
int dbx_reset(const struct dbx_paths *paths, const struct dbx_project *proj, bool force,
              bool setup_force, dbx_error **err);

/* Port forwards of a running VM: req is "add HOST GUEST", "rm HOST" or "ls"; *ret_text is
 * the supervisor's answer (dbx_port_line's lines).  opts->start: boot the VM if it is not
 * running; else a VM that is not is an error of code ESRCH. */
int dbx_port_request(const struct dbx_paths *paths, const struct dbx_project *proj, const char *req,
                     const struct dbx_connect_opts *opts, char **ret_text, dbx_error **err);

/* The supervisor process body (`devbox __supervise ROOT [NETWORK]`, started by dbx_connect;
 * NETWORK "none" narrows the profile's network mode: dbx_connect_opts.network_none, from
 * `devbox --network none`). */
int dbx_supervise(const char *root, const char *net_override, int ready_fd);

/* ---- client sessions -------------------------------------------------------------------- */

struct dbx_exec_opts {
    bool interactive, tty;
    bool login;          /* enter: the user's login shell */
    bool admin;          /* --admin: root with DBX_CAPS_ADMIN for this one command (user must
                            be NULL, "root" or "0") */
    const char *user;    /* NULL = default */
    const char *workdir; /* NULL = the host cwd */
    char **env;          /* "K=V" */
    char **argv;
    bool network_none;   /* see dbx_connect_opts */
    bool detach;         /* -d: print the guest pid once started and return 0 (no tty/stdin) */
    uint32_t timeout_ms; /* --timeout: 0 = none; the command ends with 124 at the deadline */
};
/* Run one command in the project's VM, relaying stdio and signals; returns the exit code
 * (command's own, 128+N, 125/126/127) or < 0 with *err set when devbox failed: -E2BIG for a
 * command line larger than execve takes (a shell's exec of it exits 126), else -1. */
int dbx_exec(const struct dbx_paths *paths, const struct dbx_project *proj,
             const struct dbx_exec_opts *opts, dbx_error **err);

/* ---- issue 13: processes (helper A) ---- */

struct dbx_ps_reply;
/* `--timeout` values: a whole number with an optional unit s (default), m, h or d; 1 ms to 30
 * days.  -EINVAL with *err quoting the value otherwise. */
int dbx_parse_duration_ms(const char *s, uint32_t *ret_ms, dbx_error **err);
/* The box's processes (PS through the running supervisor; *ret freed with dbx_ps_reply_free).
 * A stopped box is an error of code ESRCH. */
int dbx_ps(const struct dbx_paths *paths, const struct dbx_project *proj, struct dbx_ps_reply *ret,
           dbx_error **err);
/* Send signo (1..64) to the box's process pid, or to every one of them with pid 0.  The
 * guest's refusal (no such process in the box) is an error; *ret_msg: what it said. */
int dbx_kill(const struct dbx_paths *paths, const struct dbx_project *proj, uint32_t pid,
             uint32_t signo, char **ret_msg, dbx_error **err);
/* ---- issue 13: stats (helper B) --------------------------------------------------------- */

struct dbx_stats;  /* common/protocol.h */
struct dbx_notice; /* common/protocol.h */

/* The box cgroup's counters of the project's running VM (*ret: clear with dbx_stats_clear);
 * -ENOENT with *err when it is not running.  Bounded wait: a guest that does not answer is an
 * error after some seconds. */
int dbx_stats_request(const struct dbx_paths *paths, const struct dbx_project *proj,
                      struct dbx_stats *ret, dbx_error **err);
/* Bytes in binary units: "512B", "1.5K", "2.0G"; with exact, a whole multiple as "2G". */
char *dbx_size_human(uint64_t n, bool exact);
/* Microseconds as "1.25s", "3m07s" or "2h05m". */
char *dbx_duration_human(uint64_t us);
/* The line (without "devbox: ") that explains a NOTICE for the command argv (NULL or empty:
 * the login shell): "'npm test' was killed: out of memory (limit 2G, peak 2.0G)", "'make -j64'
 * hit the box's process limit (pids.max 64)"; the command escaped and cut to about 60
 * characters. */
char *dbx_notice_line(const struct dbx_notice *nt, char *const *argv);
/* ---- issue 13: cleaning up after projects that are gone (helper F) ---------------------- */

/* Whether a recorded project's repository is gone: lstat of root or of root/.git fails with
 * ENOENT or ENOTDIR, or root is not a directory.  Only lstat: the tree is never opened (nor
 * handed to libgit2).  Any other failure (EACCES, EIO) is "not gone": gc must not act on doubt.
 * A tree on an unmounted disk looks gone. */
bool dbx_project_gone(const char *root);
/* Whether a supervisor holds the project's alive lock: its box is running or starting. */
bool dbx_project_busy(const struct dbx_project *proj);
/* The recorded project `arg` names (`devbox rm PATH|ID`): 4 to 16 lower-case hex digits are a
 * project id or a unique prefix of one; anything else (or hex digits no id starts with) is a
 * path, made absolute against the cwd: the project's root or a directory below it, which may
 * no longer exist.  Hex digits that are both an id prefix and an existing path are refused as
 * ambiguous.  Errors name arg. */
int dbx_project_lookup(const struct dbx_paths *paths, const char *arg, struct dbx_project *ret,
                       dbx_error **err);
/* Delete name below dirfd (a file, or a directory tree walked fd-relative with O_NOFOLLOW and
 * unlinkat: a symlink is removed, never followed; at most 64 levels).  dry_run: only count.
 * Adds the bytes that go (blocks of files with one link, and directories) to *freed.  ENOENT
 * is not an error. */
int dbx_rm_tree_at(int dirfd, const char *name, bool dry_run, uint64_t *freed, dbx_error **err);
/* Delete the project: its disk (data dir), its state dir (record, logs, procs logs, events)
 * and its run dir, found from paths and proj->id (never outside devbox's own dirs), under the
 * project's starters' lock.  A running or starting box is an error unless force (then it is
 * stopped first).  *ret_freed (may be NULL): bytes freed. */
int dbx_project_remove(const struct dbx_paths *paths, const struct dbx_project *proj, bool force,
                       uint64_t *ret_freed, dbx_error **err);

/* What `devbox gc` removed (or, dry_run, would remove). */
struct dbx_gc_report {
    char **projects; /* roots of the projects whose repository is gone (NULL-terminated) */
    char **derived;  /* derived disks no project uses any more, by name */
    char **kept;    /* roots of gone repositories that may be on a disk not mounted now (or NULL) */
    char **running; /* roots of gone repositories whose box runs (or NULL) ... */
    char **running_ids;  /* ... and their ids, in the same order */
    size_t leftovers;    /* record-less project dirs, stopped boxes' run dirs, stale temp files */
    uint64_t freed;      /* bytes */
    bool images_counted; /* false in dry_run: image store garbage is only known by removing it */
};
void dbx_gc_report_clear(struct dbx_gc_report *r);
/* Remove what no one can use any more: projects whose repository is gone (not running ones),
 * what stopped boxes leave (their run dirs), project dirs without a record (a first start that
 * failed, an interrupted rm) unless their lock is held, temp files of crashed writers older
 * than an hour, then `image prune` (derived disks, base disks and blobs nothing uses).  Every
 * project is taken under its starters' lock without waiting: a busy one is left alone. */
int dbx_gc(const struct dbx_paths *paths, bool dry_run, struct dbx_gc_report *ret, dbx_error **err);

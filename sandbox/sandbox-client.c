/* sandbox/sandbox-client.c: reaching a project's supervisor (starting it when needed), and
 * the small requests: status, stop, remove. */
#define _GNU_SOURCE
#include "sandbox-internal.h"
#include "../common/spawn.h"
#include "../profiles/profiles.h"

#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

int dbx_project_dirs(const struct dbx_project *p, dbx_error **err) {
    if (dbx_mkdir_p(p->state_dir, 0700, err) < 0 || dbx_mkdir_p(p->data_dir, 0700, err) < 0 ||
        dbx_mkdir_private(p->run_dir, err) < 0)
        return -1;
    return 0;
}

int dbx_project_from_id(const struct dbx_paths *paths, const char *id, struct dbx_project *ret,
                        dbx_error **err) {
    struct dbx_project p = {0};
    _cleanup_free_ char *sd = dbx_xasprintf("%s/projects/%s", paths->state, id);
    struct dbx_project_rec rec = {0};
    if (dbx_project_rec_load(sd, &rec, err) < 0) return -1;
    p.root = TAKE_PTR(rec.root);
    dbx_project_rec_clear(&rec);
    snprintf(p.id, sizeof(p.id), "%s", id);
    p.cwd = dbx_xstrdup(p.root);
    p.state_dir = TAKE_PTR(sd);
    p.data_dir = dbx_xasprintf("%s/projects/%s", paths->data, id);
    p.run_dir = dbx_xasprintf("%s/%s", paths->run, id);
    *ret = p;
    return 0;
}

static int try_connect(const struct dbx_project *proj, int *ret_fd, dbx_error **err) {
    _cleanup_free_ char *path = dbx_xasprintf("%s/%s", proj->run_dir, DBX_SOCK_NAME);
    struct sockaddr_un sa;
    if (dbx_sockaddr(&sa, path, err) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return dbx_error_set(err, errno, "socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e; /* not running: no error value, the caller decides */
    }
    *ret_fd = fd;
    return 0;
}

/* Start `devbox __supervise ROOT` detached (own session, reparented away from us by a double
 * fork) and read its start-up report: "W warning" and "S setup output" lines, then "OK" or
 * "E error".  (The supervisor sanitizes every line to printable text.) */
static int start_supervisor(const struct dbx_project *proj, bool network_none, char ***warnings,
                            dbx_error **err) {
    _cleanup_free_ char *log = dbx_xasprintf("%s/supervisor.log", proj->state_dir);
    /* Opened here: the child only execs (the supervisor is a new devbox, /proc/self/exe). */
    _cleanup_close_ int lfd =
        open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd >= 0) dbx_log_cut(lfd, DBX_LOG_CAP);
    char *argv[] = {"devbox", "__supervise", (char *)proj->root, network_none ? "none" : NULL,
                    NULL};
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    const struct dbx_spawn_fd fds[] = {{0, DBX_SPAWN_DEVNULL},
                                       {1, DBX_SPAWN_DEVNULL},
                                       {2, lfd >= 0 ? lfd : DBX_SPAWN_DEVNULL},
                                       {3, p[1]}};
    const struct dbx_spawn s = {.name = "supervisor",
                                .path = "/proc/self/exe",
                                .argv = argv,
                                .detach = true,
                                .fds = fds,
                                .nfds = DBX_ARRAY_SIZE(fds)};
    int r = dbx_spawn(&s, NULL, err);
    close(p[1]);
    if (r < 0) {
        close(p[0]);
        return r;
    }
    _cleanup_fclose_ FILE *f = fdopen(p[0], "re");
    if (!f) {
        close(p[0]);
        return dbx_error_set(err, errno, "fdopen");
    }
    char line[8192];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "OK") == 0) return 0;
        if (line[0] == 'W' && line[1] == ' ') *warnings = dbx_strv_push(*warnings, line + 2);
        /* [setup]'s progress and output, as it comes (it can take minutes) */
        if (line[0] == 'S' && line[1] == ' ') fprintf(stderr, "%s\n", line + 2);
        if (line[0] == 'E' && line[1] == ' ') return dbx_error_set(err, 0, "%s", line + 2);
    }
    return dbx_error_set(err, 0, "the supervisor exited while starting the VM (see '%s')", log);
}

/* A project's first start needs its image: pull or build it here, where the user's terminal
 * can show progress, rather than in the supervisor.  A profile that does not load is left for
 * the supervisor to report. */
static int ensure_image(const struct dbx_paths *paths, const struct dbx_project *proj,
                        dbx_error **err) {
    struct dbx_project_rec rec = {0};
    if (dbx_project_rec_load(proj->state_dir, &rec, NULL) == 0) {
        dbx_project_rec_clear(&rec);
        return 0;
    }
    struct profile prof = {0};
    if (dbx_profile_load(paths, proj, &prof, NULL, NULL) < 0) return 0;
    struct dbx_pull_opts opts = {.progress_fd = isatty(2) ? 2 : -1, .phase_fd = 2};
    struct dbx_image img = {0};
    bool had = dbx_image_get(paths, prof.image, &img, NULL) == 0;
    int r = had ? 0 : dbx_image_ensure(paths, prof.image, &opts, &img, err);
    /* After minutes of pulling or building, say what the next wait is. */
    if (r == 0 && !had) fprintf(stderr, "devbox: booting\n");
    dbx_image_clear(&img);
    profile_clear(&prof);
    return r;
}

/* `--network none` cannot narrow a VM that is already running with a network. */
static int check_running_network(const struct dbx_project *proj, bool network_none,
                                 dbx_error **err) {
    if (!network_none) return 0;
    struct dbx_status st = {0};
    int r = dbx_status_read(proj->run_dir, &st);
    if (r == -ENOENT) return 0; /* not recorded yet: a supervisor that is starting */
    /* a record that does not read cannot show the network is none: refused, not assumed */
    if (r < 0)
        return dbx_error_set(err, 0,
                             "cannot tell the running VM's network mode from its status record "
                             "(%s); 'devbox stop' it to start it again with --network none",
                             strerror(-r));
    r = 0;
    if (st.network != DBX_NET_NONE)
        r = dbx_error_set(err, 0,
                          "the project's VM is running with network mode '%s'; "
                          "'devbox stop' it to start it again with --network none",
                          dbx_status_network_name(st.network));
    dbx_status_clear(&st);
    return r;
}

static int connected(const struct dbx_project *proj, const struct dbx_connect_opts *opts, int *fd,
                     dbx_error **err) {
    if (check_running_network(proj, opts->network_none, err) == 0) return 0;
    close(*fd);
    *fd = -1;
    return -1;
}

/* A supervisor that holds its alive lock but has no control socket yet is still starting
 * (building an image, running [setup], booting).  Returns its pid (from the lock file, which
 * it writes once it holds the lock), or 0 when none is. */
static pid_t supervisor_starting(const struct dbx_project *proj) {
    _cleanup_free_ char *lp = dbx_xasprintf("%s/%s", proj->run_dir, DBX_ALIVE_LOCK);
    _cleanup_close_ int lock = open(lp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (lock < 0 || flock(lock, LOCK_SH | LOCK_NB) == 0) return 0;
    char buf[24] = {0};
    uint64_t pid = 0;
    if (pread(lock, buf, sizeof(buf) - 1, 0) <= 0) return 0;
    buf[strcspn(buf, "\n")] = '\0';
    if (dbx_parse_u64(buf, 2, INT32_MAX, &pid) < 0) return 0;
    return (pid_t)pid;
}

/* ---- a start whose command went away ------------------------------------------------------ */

#define REJOIN_POLL_MS 200u
#define REJOIN_LINE_CAP 8192u /* what the supervisor keeps of a line (SETUP_LINE_MAX * 4) */
/* A supervisor whose status record exists (it was ready) but whose control socket does not
 * answer is stopping (a crash's teardown) and exits within its stop's bound (STOP_MS, 20 s, then
 * QEMU is killed): waited for this long, then taken for one that cannot be reached. */
#define REJOIN_STOPPING_MS 60000u

/* What a starting supervisor's [setup] appends to setup.log, shown on stderr as the command
 * that started it showed it ("S" lines: dbx_setup_line_shown, empty lines left out). */
struct setup_tail {
    int dfd; /* the state dir */
    int fd;  /* setup.log as far as shown, or -1 */
    struct dbx_buf line;
    bool skip; /* in the middle of a line that was there before us: not shown */
};

static void tail_line(struct setup_tail *t) {
    if (t->line.len) {
        dbx_buf_put(&t->line, "", 1);
        fprintf(stderr, "%s\n", dbx_setup_line_shown((char *)t->line.data));
    }
    t->line.len = t->line.off = 0;
}

static void tail_read(struct setup_tail *t) {
    char buf[8192];
    ssize_t n;
    while (t->fd >= 0 && (n = read(t->fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            bool end = buf[i] == '\n';
            if (t->skip) {
                t->skip = !end;
            } else if (end) {
                tail_line(t);
            } else if (t->line.len < REJOIN_LINE_CAP) {
                dbx_buf_put(&t->line, &buf[i], 1);
            }
        }
    }
}

/* setup.log, opened if it is a regular file (O_NONBLOCK: nothing else would block us). */
static int tail_open(int dfd) {
    int fd = openat(dfd, "setup.log", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Show what was appended; a new setup.log (the supervisor makes it anew when setup begins:
 * dbx_log_create) after the rest of the old one, from its start. */
static void tail_show(struct setup_tail *t) {
    tail_read(t);
    struct stat now, cur;
    if (t->dfd < 0 || fstatat(t->dfd, "setup.log", &now, AT_SYMLINK_NOFOLLOW) < 0 ||
        (t->fd >= 0 && fstat(t->fd, &cur) == 0 && cur.st_ino == now.st_ino &&
         cur.st_dev == now.st_dev))
        return;
    int fd = tail_open(t->dfd);
    if (fd < 0) return;
    if (t->fd >= 0) close(t->fd);
    t->fd = fd;
    t->line.len = t->line.off = 0;
    t->skip = false;
    tail_read(t);
}

/* The supervisor that holds the alive lock while we hold the starters' lock runs without the
 * command that started it (that one went away: Ctrl-C during a long [setup]); another would
 * only fail on the lock ("another supervisor owns", found in use).  Wait for it: starting (no
 * status record yet), say so and show what its [setup] writes from then on; stopping (a record
 * without a socket: a crash's teardown), quietly.  Its socket is tried once its record exists
 * (written just after the socket listens: connected before, the network check would find
 * none).  0 once it answers (*ret_fd); -ENOENT when it exits first (the caller starts one, as
 * any command after a stop would, which says what went wrong); -1 with *err when it runs on
 * without answering. */
static int wait_starting(const struct dbx_project *proj, int *ret_fd, dbx_error **err) {
    struct setup_tail t = {.dfd = open(proj->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
                           .fd = -1};
    if (t.dfd >= 0) t.fd = tail_open(t.dfd);
    off_t end = t.fd >= 0 ? lseek(t.fd, 0, SEEK_END) : -1;
    char last = '\n';
    if (end > 0 && pread(t.fd, &last, 1, end - 1) == 1) t.skip = last != '\n';
    _cleanup_free_ char *status = dbx_xasprintf("%s/%s", proj->run_dir, DBX_STATUS_NAME);
    bool said = false, stopping = false; /* a record seen: no start to tell of */
    uint64_t stopping_since = 0;
    int r;
    for (;;) {
        bool record = access(status, F_OK) == 0;
        r = record ? try_connect(proj, ret_fd, err) : -ENOENT;
        if (r == 0 || *err) break;
        pid_t pid = supervisor_starting(proj);
        if (pid <= 0) {
            r = -ENOENT;
            break;
        }
        stopping = stopping || record;
        if (!stopping && !said) {
            fprintf(stderr, "devbox: the VM is still starting for a command that went away; "
                            "waiting for it\n");
            said = true;
        }
        if (said) tail_show(&t);
        uint64_t now = dbx_now_ms();
        if (!record) {
            stopping_since = 0;
        } else if (!stopping_since) {
            stopping_since = now;
        } else if (now - stopping_since > REJOIN_STOPPING_MS) {
            r = dbx_error_set(err, 0,
                              "the project's supervisor (pid %d) runs, but its control socket "
                              "does not answer ('devbox stop' stops it; see 'devbox logs')",
                              (int)pid);
            break;
        }
        poll(NULL, 0, REJOIN_POLL_MS);
    }
    if (said) { /* what came since the last look, and a last line without its '\n' */
        tail_show(&t);
        if (!t.skip) tail_line(&t);
    }
    if (t.fd >= 0) close(t.fd);
    if (t.dfd >= 0) close(t.dfd);
    dbx_buf_free(&t.line);
    return r;
}

/* The starters' lock of a project (its state dir made first), held; the fd, or -1 with *err. */
static int lock_start(const struct dbx_project *proj, dbx_error **err) {
    if (dbx_project_dirs(proj, err) < 0) return -1;
    _cleanup_free_ char *lp = dbx_xasprintf("%s/%s", proj->state_dir, DBX_START_LOCK);
    int lock = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0) return dbx_error_set(err, errno, "open '%s'", lp);
    while (flock(lock, LOCK_EX) < 0)
        if (errno != EINTR) {
            int e = errno;
            close(lock);
            return dbx_error_set(err, e, "lock '%s'", lp);
        }
    return lock;
}

/* Which record of a failed start (DBX_START_FAILED) the project has: a new one is a new file
 * (written by rename; its inode number may be one freed before, not its mtime with it), so one
 * that differs after a wait was written during it.  All zero: none. */
struct failed_mark {
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
};

static char *failed_path(const struct dbx_project *proj) {
    return dbx_xasprintf("%s/%s", proj->state_dir, DBX_START_FAILED);
}

static struct failed_mark failed_mark(const struct dbx_project *proj) {
    _cleanup_free_ char *p = failed_path(proj);
    struct stat st;
    if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode)) return (struct failed_mark){0};
    return (struct failed_mark){st.st_dev, st.st_ino, st.st_mtim};
}

/* A start this command waited for (another command's, or one a command left running) failed:
 * its reason, as an error, rather than a start of our own that would run a failing [setup]
 * again (found in use: two commands at once, or one after a Ctrl-C, each waited out a long
 * failing setup).  -1 with *err; 0 when no start failed meanwhile. */
static int failed_meanwhile(const struct dbx_project *proj, struct failed_mark before,
                            dbx_error **err) {
    struct failed_mark now = failed_mark(proj);
    if (now.ino == 0 ||
        (now.dev == before.dev && now.ino == before.ino &&
         now.mtime.tv_sec == before.mtime.tv_sec && now.mtime.tv_nsec == before.mtime.tv_nsec))
        return 0;
    _cleanup_free_ char *p = failed_path(proj), *why = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, p, DBX_START_FAILED_MAX + 1, &why, NULL, &e) < 0) return 0;
    why[strcspn(why, "\n")] = '\0';
    return dbx_error_set(err, 0, "%s (the start this command waited for; run it again to retry)",
                         why);
}

int dbx_connect(const struct dbx_paths *paths, const struct dbx_project *proj,
                const struct dbx_connect_opts *opts, int *ret_fd, char ***ret_warnings,
                dbx_error **err) {
    /* err must be non-NULL here: a connect failure that is not "not running" is reported. */
    if (try_connect(proj, ret_fd, err) == 0) return connected(proj, opts, ret_fd, err);
    if (*err) return -1;
    if (!opts->start) return -ENOENT;
    /* before anything is made for the project (its directories, an image built or pulled); the
     * supervisor checks again at every start */
    if (dbx_project_share_check(paths, proj->root, err) < 0) return -1;
    /* Starters serialize here: the second of two racing commands finds the first's VM, or
     * the reason it failed. */
    struct failed_mark before = failed_mark(proj);
    _cleanup_close_ int lock = lock_start(proj, err);
    if (lock < 0) return -1;
    /* another starter's VM (or one an idle drain kept): its network is checked as well */
    if (try_connect(proj, ret_fd, err) == 0) return connected(proj, opts, ret_fd, err);
    if (*err) return -1;
    /* its failure, recorded before that starter heard it: the failed supervisor may still be
     * tearing down, which would look like a start going on */
    if (failed_meanwhile(proj, before, err) < 0) return -1;
    if (supervisor_starting(proj) > 0) {
        int w = wait_starting(proj, ret_fd, err);
        if (w == 0) return connected(proj, opts, ret_fd, err);
        if (w != -ENOENT) return -1;
    }
    if (failed_meanwhile(proj, before, err) < 0) return -1;
    if (ensure_image(paths, proj, err) < 0) return -1;
    char **warnings = NULL;
    int r = start_supervisor(proj, opts->network_none, &warnings, err);
    if (ret_warnings)
        *ret_warnings = warnings;
    else
        dbx_strv_free(warnings);
    if (r < 0) return r;
    r = try_connect(proj, ret_fd, err);
    if (r < 0 && !*err) return dbx_error_set(err, -r, "connect to the supervisor");
    return r < 0 ? r : connected(proj, opts, ret_fd, err);
}

static void stopped_status(const struct dbx_paths *paths, const struct dbx_project *proj,
                           struct dbx_status *ret) {
    struct dbx_project_rec rec = {0};
    struct profile prof = {0};
    *ret = (struct dbx_status){.state = DBX_VM_STOPPED, .project = dbx_xstrdup(proj->root)};
    memcpy(ret->id, proj->id, sizeof(ret->id));
    /* with the user's config.ini: a repo that uses a secret does not load without it */
    if (dbx_project_rec_load(proj->state_dir, &rec, NULL) == 0)
        ret->image = TAKE_PTR(rec.image);
    else if (dbx_profile_load(paths, proj, &prof, NULL, NULL) == 0)
        ret->image = TAKE_PTR(prof.image);
    dbx_project_rec_clear(&rec);
    profile_clear(&prof);
    /* a supervisor that holds the project without answering: starting, or stopping (its
     * record, written once it was ready, says what it ran) */
    if (supervisor_starting(proj) <= 0) return;
    struct dbx_status rst = {0};
    if (dbx_status_read(proj->run_dir, &rst) < 0) {
        ret->state = DBX_VM_STARTING;
        return;
    }
    dbx_status_clear(ret);
    *ret = rst;
    ret->state = DBX_VM_STOPPING;
}

int dbx_status_get(const struct dbx_paths *paths, const struct dbx_project *proj,
                   struct dbx_status *ret, dbx_error **err) {
    _cleanup_close_ int fd = -EBADF;
    _cleanup_error_ dbx_error *cerr = NULL;
    if (try_connect(proj, &fd, &cerr) < 0) {
        if (cerr) {
            if (err) *err = TAKE_PTR(cerr);
            return -1;
        }
        stopped_status(paths, proj, ret);
        return 0;
    }
    int r = dbx_status_ask(fd, ret, err);
    if (r == -EPIPE) {
        stopped_status(paths, proj, ret); /* it went away meanwhile */
        return 0;
    }
    return r;
}

/* Stop a starting supervisor: SIGTERM, then wait for its alive lock. */
static void stop_starting(const struct dbx_project *proj, pid_t pid) {
    (void)kill(pid, SIGTERM);
    _cleanup_free_ char *lp = dbx_xasprintf("%s/%s", proj->run_dir, DBX_ALIVE_LOCK);
    _cleanup_close_ int lock = open(lp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (lock >= 0)
        while (flock(lock, LOCK_SH) < 0 && errno == EINTR) {
        }
}

/* The pid of the process at the other end of a supervisor connection, when it is our user's
 * (SO_PEERCRED: who listened); 0 otherwise. */
static pid_t peer_pid(int fd) {
    struct ucred peer = {0};
    socklen_t pl = sizeof(peer);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &pl) < 0 || peer.uid != geteuid()) return 0;
    return peer.pid > 0 ? peer.pid : 0;
}

int dbx_stop(const struct dbx_paths *paths, const struct dbx_project *proj, dbx_error **err) {
    _cleanup_close_ int fd = -EBADF;
    _cleanup_error_ dbx_error *cerr = NULL;
    if (try_connect(proj, &fd, &cerr) < 0) {
        if (!cerr) {
            pid_t pid = supervisor_starting(proj);
            if (pid > 0) stop_starting(proj, pid);
            return 0;
        }
        if (err) *err = TAKE_PTR(cerr);
        return -1;
    }
    if (dbx_send_frame(fd, DBX_MSG_STOP, 0, NULL, 0) < 0) return 0;
    /* The supervisor answers STOP only by closing every client socket when it exits.  An
     * answer means it did not take the frame: one of another devbox build (started before an
     * upgrade) refuses the header's version, and waiting for its lock hung for good.  SIGTERM
     * stops every version's supervisor the same clean way; the pid is the one that answered
     * on this connection (it is alive: no pid reuse), not a file's. */
    char b[256];
    ssize_t n;
    while ((n = read(fd, b, sizeof(b))) < 0 && errno == EINTR) {
    }
    pid_t peer = n > 0 ? peer_pid(fd) : 0;
    if (peer > 0) (void)kill(peer, SIGTERM);
    /* The supervisor holds its alive lock until it has reaped QEMU and virtiofsd. */
    _cleanup_free_ char *lp = dbx_xasprintf("%s/%s", proj->run_dir, DBX_ALIVE_LOCK);
    _cleanup_close_ int lock = open(lp, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (lock >= 0) flock(lock, LOCK_EX);
    (void)paths;
    return 0;
}

int dbx_peer_pidfd(int fd) {
    pid_t pid = peer_pid(fd);
    return pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
}

/* How long a supervisor that asked for a restart may take to stop: its guest's shutdown
 * (STOP_MS in supervisor-health.c, 20 s, then QEMU is killed) and its teardown. */
#define RESTART_WAIT_MS 40000

/* Not dbx_stop, which stops whichever supervisor is current: two commands told to restart by
 * the same box both get here, and the later one would stop the box the earlier one has just
 * started, under its command.  The one that answered is waited for through the pidfd taken
 * when the connection was made (SO_PEERCRED's pid then was that supervisor's: it was listening,
 * so alive, and a pidfd keeps naming its process however long we wait).  Its alive lock is gone
 * with it (a process's files are closed before its pidfd reports the exit), and a stopping
 * supervisor holds the starters' lock until it exits (sup_begin_stop), so the caller's start
 * waits for it there. */
int dbx_restart_wait(const struct dbx_paths *paths, const struct dbx_project *proj, int pidfd,
                     dbx_error **err) {
    if (pidfd >= 0) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        uint64_t end = dbx_mono_us() + RESTART_WAIT_MS * 1000ull;
        for (;;) {
            uint64_t now = dbx_mono_us();
            int r = now < end ? poll(&p, 1, (int)((end - now + 999) / 1000)) : 0;
            if (r > 0) return 0;
            if (r == 0 || errno != EINTR) break;
        }
    }
    /* none known (no pidfd_open: a kernel before 5.3, or a seccomp filter that refuses it), or
     * it did not stop in time: it still owns the project, so it is the one dbx_stop stops */
    return dbx_stop(paths, proj, err);
}

/* Before rm or reset: a running or starting VM is an error, unless force (then it is stopped
 * first). */
static int stop_for_removal(const struct dbx_paths *paths, const struct dbx_project *proj,
                            bool force, dbx_error **err) {
    _cleanup_close_ int fd = -EBADF;
    _cleanup_error_ dbx_error *cerr = NULL;
    bool running = try_connect(proj, &fd, &cerr) == 0;
    if (cerr) {
        if (err) *err = TAKE_PTR(cerr);
        return -1;
    }
    if (!running && supervisor_starting(proj) <= 0) return 0;
    if (!force)
        return dbx_error_set(err, 0, "project '%s' is %s (stop it first, or use --force)",
                             proj->root, running ? "running" : "starting");
    return dbx_stop(paths, proj, err);
}

int dbx_reset(const struct dbx_paths *paths, const struct dbx_project *proj, bool force,
              bool setup_force, dbx_error **err) {
    if (stop_for_removal(paths, proj, force, err) < 0) return -1;
    /* Under the starters' lock: no supervisor may start on the disk while it goes. */
    _cleanup_close_ int lock = lock_start(proj, err);
    if (lock < 0) return -1;
    if (supervisor_starting(proj) > 0)
        return dbx_error_set(err, 0, "project '%s' was started meanwhile", proj->root);
    /* The record goes first: a record without its disk is what a new project looks like,
     * the other way round it would be a disk missing. */
    const char *const names[] = {"project.json", "running"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(names); i++) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", proj->state_dir, names[i]);
        if (unlink(p) < 0 && errno != ENOENT) return dbx_error_set(err, errno, "remove '%s'", p);
    }
    _cleanup_free_ char *disk = dbx_xasprintf("%s/disk.qcow2", proj->data_dir);
    if (unlink(disk) < 0 && errno != ENOENT) return dbx_error_set(err, errno, "remove '%s'", disk);
    if (setup_force) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", proj->state_dir, DBX_SETUP_FORCE);
        _cleanup_close_ int f = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (f < 0) return dbx_error_set(err, errno, "create '%s'", p);
    }
    return 0;
}

int dbx_port_request(const struct dbx_paths *paths, const struct dbx_project *proj, const char *req,
                     const struct dbx_connect_opts *opts, char **ret_text, dbx_error **err) {
    _cleanup_close_ int fd = -EBADF;
    int r = dbx_connect(paths, proj, opts, &fd, NULL, err);
    if (r == -ENOENT) /* ESRCH, as dbx_ps says it: `port ls` tells it from a failure */
        return dbx_error_setx(err, ESRCH,
                              "the project's VM is not running (port forwards live with "
                              "it: `devbox port add` starts it)");
    if (r < 0) return -1;
    struct dbx_buf b = {0};
    dbx_buf_put_str(&b, req);
    r = dbx_send_frame(fd, DBX_MSG_PORT_REQ, 0, b.data, b.len);
    dbx_buf_free(&b);
    if (r < 0) return dbx_send_failed(fd, r, "send to the supervisor", err);
    struct dbx_frame_hdr h;
    _cleanup_free_ uint8_t *p = NULL;
    r = dbx_read_frame(fd, &h, &p, err);
    if (r == -EPIPE) return dbx_error_set(err, 0, "the supervisor went away");
    if (r < 0) return -1;
    struct dbx_cursor c = {p, h.len};
    uint32_t status = 0;
    char *text = NULL;
    if (h.type != DBX_MSG_PORT_REPLY || dbx_get_u32(&c, &status) < 0 ||
        dbx_get_str(&c, DBX_FRAME_MAX, &text) < 0)
        return dbx_error_set(err, 0, "bad port reply from the supervisor");
    if (status != 0) {
        r = dbx_error_setx(err, EINVAL, "%s", text);
        free(text);
        return r;
    }
    *ret_text = text;
    return 0;
}

/* ---- issue 13: processes (helper A) ---- */

#define PROCS_REPLY_TIMEOUT_S 30u

/* One request on a fresh connection to the running supervisor, and its reply frame of type
 * want (an ERROR frame becomes the error).  *ret_p is malloc'd. */
static int procs_request(const struct dbx_paths *paths, const struct dbx_project *proj,
                         uint8_t type, const void *p, size_t n, uint8_t want,
                         struct dbx_frame_hdr *h, uint8_t **ret_p, dbx_error **err) {
    _cleanup_close_ int fd = -EBADF;
    struct dbx_connect_opts co = {0};
    int r = dbx_connect(paths, proj, &co, &fd, NULL, err);
    if (r == -ENOENT) return dbx_error_setx(err, ESRCH, "the project's VM is not running");
    if (r < 0) return -1;
    r = dbx_send_frame(fd, type, 0, p, n);
    if (r < 0) return dbx_send_failed(fd, r, "send to the supervisor", err);
    /* the guest answers in milliseconds; one that does not (hung, an init without PS) must not
     * hang the command */
    const struct timeval tv = {.tv_sec = PROCS_REPLY_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    _cleanup_free_ uint8_t *payload = NULL;
    r = dbx_read_frame(fd, h, &payload, err);
    if (r < 0 && err && *err && (*err)->code == EAGAIN) {
        dbx_error_free(err);
        return dbx_error_setx(err, ETIMEDOUT, "the box did not answer within %us",
                              PROCS_REPLY_TIMEOUT_S);
    }
    if (r == -EPIPE) return dbx_error_set(err, 0, "the supervisor went away");
    if (r < 0) return -1;
    if (h->type == DBX_MSG_ERROR) {
        uint32_t code;
        _cleanup_free_ char *m = NULL;
        if (dbx_error_msg_decode(payload, h->len, &code, &m) < 0)
            return dbx_error_set(err, 0, "malformed error from the supervisor");
        _cleanup_free_ char *q = dbx_escape(m);
        return dbx_error_setx(err, EIO, "%s", q);
    }
    if (h->type != want)
        return dbx_error_set(err, 0, "unexpected %s frame from the supervisor",
                             dbx_msg_name(h->type));
    *ret_p = TAKE_PTR(payload);
    return 0;
}

int dbx_ps(const struct dbx_paths *paths, const struct dbx_project *proj, struct dbx_ps_reply *ret,
           dbx_error **err) {
    uint64_t token = (uint64_t)getpid() << 32 | (uint64_t)dbx_now_ms();
    uint8_t b[8];
    struct dbx_frame_hdr h;
    _cleanup_free_ uint8_t *p = NULL;
    if (procs_request(paths, proj, DBX_MSG_PS, b, dbx_enc_u64(b, token), DBX_MSG_PS_REPLY, &h, &p,
                      err) < 0)
        return -1;
    struct dbx_ps_reply r = {0};
    if (dbx_ps_reply_decode(p, h.len, &r, err) < 0)
        return dbx_error_wrap(err, "from the supervisor");
    if (r.token != token) {
        dbx_ps_reply_free(&r);
        return dbx_error_set(err, 0, "the supervisor answered another request");
    }
    *ret = r;
    return 0;
}

int dbx_kill(const struct dbx_paths *paths, const struct dbx_project *proj, uint32_t pid,
             uint32_t signo, char **ret_msg, dbx_error **err) {
    uint64_t token = (uint64_t)getpid() << 32 | (uint64_t)dbx_now_ms();
    uint8_t b[16];
    struct dbx_frame_hdr h;
    _cleanup_free_ uint8_t *p = NULL;
    if (procs_request(paths, proj, DBX_MSG_KILL, b, dbx_enc_kill(b, token, pid, signo),
                      DBX_MSG_KILL_REPLY, &h, &p, err) < 0)
        return -1;
    uint64_t got;
    uint32_t status;
    _cleanup_free_ char *msg = NULL;
    if (dbx_kill_reply_decode(p, h.len, &got, &status, &msg) < 0 || got != token)
        return dbx_error_set(err, 0, "malformed kill reply from the supervisor");
    _cleanup_free_ char *q = dbx_escape(msg);
    if (status != 0) return dbx_error_setx(err, (int)status, "%s", q);
    *ret_msg = TAKE_PTR(q);
    return 0;
}

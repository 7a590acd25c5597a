/* sandbox/cmd-logs.c: `devbox logs`: the project's own logs (<state_dir>/supervisor.log,
 * network.log, setup.log, console.log, qemu.log, virtiofsd.log) and a detached command's output
 * (<state_dir>/procs/PID.log, rotated once to PID.log.1: supervisor-procs.c), all of it or its
 * last N lines (-n), then followed (-f); and the follower `events --follow` shares
 * (cmd_tail_follow).
 *
 * Every byte is printed escaped: the box writes the console and its commands' output.  The
 * supervisor's logs are cut to nothing at their cap and the VM's made anew at each boot,
 * while a detached command's log is rotated and the events journal renamed: the follower
 * handles both, as `tail -F` does, by polling (4 times a second: the files are a few MiB at
 * most, and a quarter of a second is soon enough for a person). */
#define _GNU_SOURCE
#include "commands.h"
#include "sandbox-internal.h"

#include <inttypes.h>
#include <poll.h>
#include <sys/stat.h>

#define TAIL_POLL_MS 250

/* Copy fd to stdout until EOF, escaped, in chunks cut where a UTF-8 sequence or a "\r\n" may
 * continue.  0, or -errno of a read; -EPIPE when stdout took no more, with the write's errno in
 * *werr (EPIPE: its reader is gone; ENOSPC: `logs > file` on a full disk). */
static int dump_escaped(int fd, int *werr) {
    char buf[65536];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        have += (size_t)n;
        size_t cut = n == 0 ? have : dbx_escape_cut(buf, have);
        _cleanup_free_ char *e = dbx_escape_n(buf, cut, DBX_ESC_LINES);
        int w = dbx_write_out(STDOUT_FILENO, e, strlen(e));
        if (w < 0) {
            *werr = -w;
            return -EPIPE;
        }
        if (n == 0) return 0;
        memmove(buf, buf + cut, have - cut);
        have -= cut;
    }
}

/* ---- following ---------------------------------------------------------------------------- */

/* Whether the directory was removed (`devbox rm` of the project): held open, it has no links. */
static bool dir_removed(int dfd) {
    struct stat st;
    return fstat(dfd, &st) == 0 && st.st_nlink == 0;
}

/* After a read to the end of *t->fd: if name is another file now (rotated or replaced, or
 * there at last), what the old one got since is shown and the new one opened; if the file
 * shrank below what was read (cut at its cap), it is read again from its
 * start.  true when *t->fd is to be read from its start. */
static bool reopen(struct cmd_tail *t) {
    struct stat now, cur;
    bool have = *t->fd >= 0 && fstat(*t->fd, &cur) == 0;
    if (fstatat(t->dfd, t->name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
        (!have || now.st_ino != cur.st_ino || now.st_dev != cur.st_dev)) {
        int fd = openat(t->dfd, t->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) return false;    /* not a file we open (a symlink): the old one stays */
        if (*t->fd >= 0) t->show(t); /* what was written to it before the rename */
        if (*t->fd >= 0) close(*t->fd);
        *t->fd = fd;
    } else if (!have || cur.st_size >= lseek(*t->fd, 0, SEEK_CUR) ||
               lseek(*t->fd, 0, SEEK_SET) < 0) {
        return false; /* neither replaced nor shrunk */
    }
    if (t->reset) t->reset(t);
    return true;
}

/* The wait between two looks, cut short when stdout's reader is gone (a pipe whose other end
 * closed reports POLLERR even while nothing is written), as `tail -f` ends: `devbox logs -f PID |
 * grep -m1 ready` must not wait for the next line to end.  true: gone. */
static bool wait_or_reader_gone(void) {
    struct pollfd p = {.fd = STDOUT_FILENO, .events = 0};
    return poll(&p, 1, TAIL_POLL_MS) > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

int cmd_tail_follow(struct cmd_tail *t) {
    for (;;) {
        /* decided before the read, so nothing written before the end is missed */
        bool done = dir_removed(t->dfd) || (t->done && t->done(t));
        if (t->show(t) < 0 || fflush(stdout) != 0) return 0; /* nobody reads any more */
        if (reopen(t)) continue;
        if (done || wait_or_reader_gone()) return 0;
    }
}

/* ---- the last N lines ---------------------------------------------------------------------- */

/* Where the last n lines of the files fds[0..nfds) start, read as one stream (-1: absent): the
 * file's index in *ret_i and the offset in it; 0 and 0 (all of it) when there are fewer.  A
 * last line without its '\n' counts. */
static void last_lines(const int *fds, size_t nfds, uint64_t n, size_t *ret_i, off_t *ret_off) {
    *ret_i = 0;
    *ret_off = 0;
    uint64_t seen = 0;
    bool last = true; /* the stream's last byte: its '\n' ends the last line */
    char buf[8192];
    for (size_t i = nfds; i-- > 0;) {
        struct stat st;
        if (fds[i] < 0 || fstat(fds[i], &st) < 0) continue;
        if (n == 0) { /* nothing of them: the end of the last */
            *ret_i = i;
            *ret_off = st.st_size;
            return;
        }
        for (off_t at = st.st_size; at > 0;) {
            size_t k = at > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)at;
            at -= (off_t)k;
            if (pread(fds[i], buf, k, at) != (ssize_t)k) return; /* it shrank: all of it */
            for (size_t j = k; j-- > 0; last = false) {
                if (buf[j] != '\n' || last) continue;
                if (++seen == n) {
                    *ret_i = i;
                    *ret_off = at + (off_t)j + 1;
                    return;
                }
            }
        }
    }
}

/* fds as one stream (-1: absent), from its last n lines (UINT64_MAX: all of it); each is left
 * at its end.  0, or -EPIPE when stdout took no more (dump_escaped's *werr). */
static int show_last(const int *fds, size_t nfds, uint64_t n, int *werr) {
    size_t first = 0;
    off_t off = 0;
    if (n != UINT64_MAX) last_lines(fds, nfds, n, &first, &off);
    for (size_t i = first; i < nfds; i++) {
        if (fds[i] < 0) continue;
        if (lseek(fds[i], i == first ? off : 0, SEEK_SET) < 0 || dump_escaped(fds[i], werr) < 0)
            return -EPIPE;
    }
    return 0;
}

/* ---- the command --------------------------------------------------------------------------- */

/* One log, as `logs` shows and follows it: dir/name, after dir/old (the rotated half) if any. */
struct log {
    const struct dbx_project *proj;
    int dfd, fd;
    char name[32], exitname[32];
    bool detached; /* a detached command's: over once its .exit is there, or the box stopped */
    int werr;      /* why stdout took no more (dump_escaped), or 0 */
};

static int log_show(struct cmd_tail *t) {
    struct log *l = t->arg;
    return *t->fd >= 0 ? dump_escaped(*t->fd, &l->werr) : 0;
}

/* A detached command's log ends with it: its .exit written, or the box stopped. */
static bool log_done(struct cmd_tail *t) {
    const struct log *l = t->arg;
    struct stat st;
    if (!l->detached) return false;
    struct dbx_status s = {0};
    bool stopped = dbx_status_read(l->proj->run_dir, &s) == -ENOENT;
    dbx_status_clear(&s);
    return stopped || fstatat(l->dfd, l->exitname, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Show the log (its last n lines, UINT64_MAX: all), then follow it if asked. */
static int log_run(struct log *l, uint64_t n, bool follow) {
    char old[40];
    snprintf(old, sizeof(old), "%s.1", l->name);
    _cleanup_close_ int ofd =
        l->detached ? openat(l->dfd, old, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -EBADF;
    l->fd = openat(l->dfd, l->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (l->fd < 0 && errno != ENOENT) return -errno;
    const int fds[2] = {ofd, l->fd};
    int r = show_last(fds, 2, n, &l->werr);
    if (r == 0 && follow) {
        struct cmd_tail t = {.dfd = l->dfd,
                             .name = l->name,
                             .fd = &l->fd,
                             .show = log_show,
                             .done = log_done,
                             .arg = l};
        r = cmd_tail_follow(&t);
    }
    if (l->fd >= 0) close(l->fd);
    return r == -EPIPE ? 0 : r;
}

/* `logs [-f] [-n N] PID`: <state_dir>/procs/PID.log (and .log.1). */
static int open_pid_log(const struct dbx_project *proj, uint64_t pid, struct log *l,
                        dbx_error **err) {
    _cleanup_free_ char *dir = dbx_xasprintf("%s/procs", proj->state_dir);
    snprintf(l->name, sizeof(l->name), "%" PRIu64 ".log", pid);
    snprintf(l->exitname, sizeof(l->exitname), "%" PRIu64 ".exit", pid);
    l->detached = true;
    l->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (l->dfd < 0 || fstatat(l->dfd, l->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return dbx_error_setx(err, ENOENT,
                              "logs: no log for process %" PRIu64
                              " (only detached commands, `devbox exec -d`, have one)",
                              pid);
    return 0;
}

int cmd_logs(struct cmd_ctx *ctx, int argc, char **argv) {
    const char *file = NULL, *ops[2] = {NULL, NULL};
    bool follow = false;
    uint64_t n = UINT64_MAX, pid = 0;
    const struct cmd_opt opts[] = {
        {"--network", NULL, .choice = &file, .value = "network.log"},
        {"--setup", NULL, .choice = &file, .value = "setup.log"},
        {"--supervisor", NULL, .choice = &file, .value = "supervisor.log"},
        {"--console", NULL, .choice = &file, .value = "console.log"},
        {"--qemu", NULL, .choice = &file, .value = "qemu.log"},
        {"--virtiofsd", NULL, .choice = &file, .value = "virtiofsd.log"},
        {"--follow", "-f", .flag = &follow},
        {"--tail", "-n", .num = &n, .max = CMD_LINES_MAX},
        {NULL}};
    size_t nops = 0;
    _cleanup_error_ dbx_error *err = NULL;
    if (cmd_parse_args(argc, argv, opts, ops, 2, &nops, &err) < 0) return cmd_fail(&err);
    /* `[PID] [PATH|ID]`: of two operands the first is a PID; a lone one is when it is a number
     * that can be one (a project id of digits alone goes by its path, or by more of it) */
    const char *which = ops[0];
    /* digits alone, shorter than any project id: meant as a PID (`logs 0` said that '0' was no
     * project's root) */
    size_t len = nops == 1 ? strlen(ops[0]) : 0;
    bool digits = len > 0 && len < 16 && strspn(ops[0], "0123456789") == len;
    bool is_pid = nops == 2 || digits;
    if (is_pid) {
        which = ops[1];
        if (dbx_parse_u64(ops[0], 1, INT32_MAX, &pid) < 0)
            dbx_error_setx(&err, EINVAL, "logs: '%s' is not a process id", ops[0]);
        else if (file)
            dbx_error_setx(&err, EINVAL,
                           "logs: a PID names a detached command's log: no --network, --setup, "
                           "--supervisor, --console, --qemu or --virtiofsd with it");
        if (err) return cmd_fail(&err);
    }
    struct dbx_project proj = {0};
    int rc = cmd_target(ctx, which, &proj);
    if (rc) return rc;
    struct log l = {.proj = &proj, .dfd = -1, .fd = -1};
    if (is_pid) {
        rc = open_pid_log(&proj, pid, &l, &err);
    } else {
        snprintf(l.name, sizeof(l.name), "%s", file ? file : "supervisor.log");
        l.dfd = open(proj.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (l.dfd < 0 && errno != ENOENT)
            rc = dbx_error_set(&err, errno, "open '%s'", proj.state_dir);
        else if (l.dfd < 0 && follow)
            fprintf(stderr, "devbox: logs: nothing to follow: the project's box never started\n");
    }
    if (rc == 0 && l.dfd >= 0 && (rc = log_run(&l, n, follow)) < 0)
        dbx_error_set(&err, -rc, "read the log '%s'", l.name);
    else if (rc == 0 && l.werr && l.werr != EPIPE)
        rc = dbx_error_set(&err, l.werr, "write the log '%s' to stdout", l.name);
    if (l.dfd >= 0) close(l.dfd);
    dbx_project_clear(&proj);
    return rc < 0 ? cmd_fail(&err) : 0;
}

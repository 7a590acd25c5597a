/* common/spawn.h: the one way devbox starts a child program (host and guest init).
 *
 * Everything the child needs (argv, environment, the PATH candidates, the fd plan, strings) is
 * built in the parent; between fork and exec the child makes only async-signal-safe system
 * calls, so a fork from a process whose other threads hold malloc's (or stdio's) locks cannot
 * deadlock.  A step that fails in the child is reported to the parent over a close-on-exec pipe
 * (the step and the child's errno) and becomes an ordinary dbx_error there:
 * "exec 'qemu-system-x86_64': No such file or directory",
 * "spawn 'virtiofsd': dup2 fd 3: Bad file descriptor". */
#pragma once

#include "common.h"

#include <linux/filter.h>

/* A fd the child gets: child_fd becomes a copy of the parent's parent_fd (DBX_SPAWN_DEVNULL:
 * /dev/null, read-write).  Every fd not listed is closed at exec, except that 0, 1 and 2, when
 * not listed, are /dev/null (a child must never get a std fd that a later open reuses). */
#define DBX_SPAWN_DEVNULL (-1)
struct dbx_spawn_fd {
    int child_fd;
    int parent_fd;
};

/* What to start and how.  Zero-initialise and set what you need; steps run in the child in the
 * order of the fields below. */
struct dbx_spawn {
    const char *name;    /* names the child in messages; NULL: argv[0] */
    const char *path;    /* the file executed; NULL: argv[0] */
    char *const *argv;   /* NULL-terminated, argv[0] required */
    char *const *envp;   /* the child's whole environment; NULL: ours (environ) */
    bool search_path;    /* a path without '/' is looked up in the PATH of envp (or ours;
                          * "/bin:/usr/bin" when unset), as execvpe but without its /bin/sh
                          * fallback for ENOEXEC */
    bool detach;         /* double fork: the program runs in a new session, reparented to init,
                          * and is not our child (ret_pid is then 0); it cannot be waited for */
    bool new_session;    /* setsid(): no controlling terminal, no ^C from the user's terminal */
    bool new_pgrp;       /* setpgid(0, 0) */
    int pdeathsig;       /* signal when we die (0: none); the child exits at once if we already
                          * died before it was set; set again after an identity change, which
                          * clears it */
    int unshare_flags;   /* unshare(2) flags (CLONE_NEWUSER: uid_map/gid_map below) */
    const char *uid_map; /* with CLONE_NEWUSER: written to /proc/self/uid_map, after "deny" */
    const char *gid_map; /* ... to /proc/self/setgroups; then to /proc/self/gid_map */
    bool drop_caps;      /* when euid is 0 (as Firecracker's jailer does for its VMM): lock the
                          * securebits (NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, KEEP_CAPS,
                          * all locked) and empty the bounding set; always: empty the ambient,
                          * inheritable, permitted and effective sets and set no_new_privs */
    bool set_ids;        /* setgroups(0), setresgid(gid), setresuid(uid); with drop_caps: only
                          * when euid is 0, between the bounding set and the capability sets */
    uid_t uid;
    gid_t gid;
    const char *cwd; /* chdir before exec (NULL: ours) */
    const struct dbx_spawn_fd *fds;
    size_t nfds;
    /* A seccomp filter, loaded (with no_new_privs) right before exec, after the fds are set. */
    const struct sock_fprog *seccomp;
    unsigned seccomp_flags;
    /* With SECCOMP_FILTER_FLAG_NEW_LISTENER the listener reaches the parent one of two ways.
     * - seccomp_listener_sock >= 0: the child sends it over this socket (SCM_RIGHTS), closes
     *   its copy and goes on to exec.  Only for filters that do not trap sendmsg, and it needs
     *   no ptrace access to the child.
     * - else: the child writes the listener's fd number (an int) to seccomp_listener_w, for the
     *   parent to take with pidfd_getfd (for filters that trap socket calls), then waits for
     *   one byte on seccomp_go_r before exec; EOF there (the parent closed seccomp_go_w, which
     *   the child closes on its side first) makes it give up.
     * All are close-on-exec fds of the parent; -1: unused (zero-initialised fields must be set
     * to -1 when a listener is asked for). */
    int seccomp_listener_sock;
    int seccomp_listener_w;
    int seccomp_go_r;
    int seccomp_go_w;
};

/* A started child whose exec has not been confirmed yet (dbx_spawn_start). */
struct dbx_spawn_child {
    pid_t pid;  /* 0 after a detached spawn */
    int err_r;  /* the report pipe; -1 once finished */
    char *name; /* for messages */
    char *file; /* what was exec'd, for "exec 'FILE'" */
};

/* fork and run the child's steps; returns once the child is running (not yet exec'd).  The
 * parent then does what the child waits for (a seccomp listener) and calls dbx_spawn_finish,
 * or dbx_spawn_abort.  0 or negative errno with *err set. */
int dbx_spawn_start(const struct dbx_spawn *s, struct dbx_spawn_child *ret, dbx_error **err);
/* Wait until the child has exec'd (0) or reported a failed step (negative errno, *err set, the
 * child reaped).  Frees what c holds either way. */
int dbx_spawn_finish(struct dbx_spawn_child *c, dbx_error **err);
/* Kill (SIGKILL) and reap a started child, free what c holds; returns its wait status. */
int dbx_spawn_abort(struct dbx_spawn_child *c);
/* dbx_spawn_start + dbx_spawn_finish: the pid of the running program in *ret_pid (0 when
 * detached; may be NULL). */
int dbx_spawn(const struct dbx_spawn *s, pid_t *ret_pid, dbx_error **err);
/* waitpid, retried on EINTR; the status, or -1 with errno set. */
int dbx_spawn_wait(pid_t pid);

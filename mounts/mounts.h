/* mounts/mounts.h: host side of the workspace share: virtiofsd's lifecycle and id mapping.
 * Library code: no printing. */
#pragma once

#include "../common/common.h"

struct mounts_vfs_config {
    const char *virtiofsd; /* binary; NULL = /usr/lib/qemu/virtiofsd */
    const char *source;    /* absolute, canonical host directory to share */
    int listen_fd;         /* listening unix socket; becomes virtiofsd's --fd */
    int log_fd;            /* stderr of virtiofsd (and our setup errors), or -1 */
    /* Protected paths: NULL or a NULL-terminated list of repo-relative paths (no leading '/',
     * no empty, "." or ".." components, at most MOUNTS_PROTECTED_MAX; anything else is EINVAL
     * before anything starts).  Borrowed for the duration of mounts_virtiofsd_spawn only.  In
     * virtiofsd's mount namespace (nowhere else: the host sees no mounts) each existing path
     * becomes a read-only, nosuid, nodev bind mount of itself, and each directory above it inside
     * the share a read-write bind of itself, so the guest can neither write the path nor rename,
     * remove or replace it or any parent (EROFS / EBUSY; hard links across give EXDEV).
     * A path that does not exist (nothing to mount on; see mounts_protected_scan) stays missing:
     * the name guard (below) refuses its first missing component, in the existing directory
     * above it and in any ASCII case, to every call that would create it.  A symlink at a path or
     * at any of its parents is refused: the spawn fails with ELOOP and nothing runs.  A parent that
     * exists but is not a directory (a worktree's `.git` file) is protected read-only instead of
     * the path. */
    const char *const *protected;
    /* Read-write islands: NULL or directories (in the form of `protected`, at most
     * MOUNTS_PROTECTED_MAX) below a read-only protected path that are bound writable again when
     * the walk to a longer protected path passes through them (a linked worktree's own entry
     * worktrees/NAME inside the read-only worktrees/: git writes its HEAD and index there).
     * One the walk does not pass through stays as read-only as its parent. */
    const char *const *writable;
    /* The program that runs as virtiofsd's guard (`devbox __virtiofsd-guard`); NULL:
     * /proc/self/exe, devbox itself.  Tests that are not devbox name the built binary. */
    const char *guard_exe;
    /* The whole share read-only (issue 13's extra shares): in virtiofsd's mount namespace the
     * source becomes a read-only, nosuid, nodev bind of itself (recursively, after the protected
     * paths), so the guest's writes fail with EROFS whatever it mounts or runs. */
    bool readonly;
    /* The source is itself a git directory (a linked worktree's repository, shared whole):
     * the git-directory rule applies to it as to a `.git` (its own names, its submodules', and
     * those of its worktree entries, each of which `writable` may open again). */
    bool gitdir;
};

#define MOUNTS_PROTECTED_MAX 256u

/* The id mapping devbox uses.  virtiofsd always runs as root of a new user namespace, never
 * with host privileges:
 * - as an ordinary user the namespace is set up with newuidmap/newgidmap from the user's
 *   /etc/subuid and /etc/subgid ranges such that namespace uid U (the invoking user's uid)
 *   maps to host uid U and gid G to G; namespace 0 and every other id map to subordinate ids;
 * - as host root the maps are written directly: the box user is MOUNTS_ROOT_BOX_ID in the
 *   namespace (and in the guest) and maps to host 0, the invoking user; namespace 0 and every
 *   other id map to MOUNTS_ROOT_SUB_START + MOUNTS_ROOT_SUB_COUNT, ids no /etc/subuid hands
 *   out (checked) and no account owns.
 * So files the guest's default user creates are owned on the host by the user, and files guest
 * root creates land on an unprivileged id, never on the user or real root; workspace files
 * owned by other host ids appear as the overflow id (nobody).  The one exception is a setup VM
 * with the workspace (sandbox/supervisor-vm.c), whose commands run as root: there box_uid and
 * box_gid are 0, so guest root is the user and the default user a subordinate id. */
#define MOUNTS_ROOT_BOX_ID 1000u
#define MOUNTS_ROOT_SUB_START 2147483648u /* 2^31 */
#define MOUNTS_ROOT_SUB_COUNT 65536u
struct mounts_idmap {
    uid_t uid; /* the invoking user's host uid/gid */
    gid_t gid;
    uid_t box_uid; /* what uid/gid are in the namespace and the guest */
    gid_t box_gid;
    bool rootless; /* maps through newuidmap/newgidmap (else written directly) */
    uid_t sub_uid; /* first subordinate (or, as root, high) uid, count */
    uint32_t sub_uid_count;
    gid_t sub_gid;
    uint32_t sub_gid_count;
};

/* The box user's uid and gid in the guest for the current user (no files read): as host root
 * MOUNTS_ROOT_BOX_ID, otherwise the user's own ids. */
void mounts_box_ids(uid_t *ret_uid, gid_t *ret_gid);

/* Find the mapping for the current user (reads /etc/subuid and /etc/subgid by user name and
 * by uid, as newuidmap does).  A missing range is an error that says what to add. */
int mounts_idmap_get(struct mounts_idmap *ret, dbx_error **err);

/* Spawn virtiofsd serving cfg->source on cfg->listen_fd (vhost-user), in its own user and mount
 * namespaces with a private tmpfs on /run (its pid file), mapped as described above.  The
 * daemon keeps its own sandbox (namespaces + seccomp) on.  It dies with the calling process
 * (PR_SET_PDEATHSIG set after the last credential change, right before exec).  The top of
 * every git directory in the share takes only the names git itself creates there, and missing
 * protected paths cannot be created (a seccomp filter on virtiofsd's name-creating calls,
 * answered by a guard process: mounts-names.c).
 * Returns the pid of that guard, virtiofsd's parent, which exits with virtiofsd's status and
 * whose death kills virtiofsd; or -errno with *err set; errors that happen in the guard
 * or in virtiofsd's process before its exec are written to cfg->log_fd and make the guard
 * exit 125. */
pid_t mounts_virtiofsd_spawn(const struct mounts_vfs_config *cfg, const struct mounts_idmap *map,
                             dbx_error **err);

/* mounts_virtiofsd_spawn in two halves, so that the caller can start QEMU while the guard
 * (a new devbox process) starts and sets up: _start checks cfg, walks the share and starts the
 * guard with its setup; _finish does the id mapping handshake and returns once virtiofsd has
 * exec'd, with what mounts_virtiofsd_spawn returns.  Until then nothing accepts on
 * cfg->listen_fd: a vhost-user client that connects meanwhile waits, and is served only by
 * virtiofsd behind every mount and filter the guard sets up.  cfg is borrowed by _start only.
 * _finish consumes *p (reaping the guard when it fails); a start that is not finished is the
 * caller's to end: close sync_fd, kill and reap pid. */
struct mounts_vfs_pending {
    pid_t pid;   /* the guard, -1 once finished or cleared */
    int sync_fd; /* the spawner's end of the sync socket, -1 likewise */
};
int mounts_virtiofsd_start(const struct mounts_vfs_config *cfg, const struct mounts_idmap *map,
                           struct mounts_vfs_pending *ret, dbx_error **err);
pid_t mounts_virtiofsd_finish(struct mounts_vfs_pending *p, const struct mounts_idmap *map,
                              dbx_error **err);

/* `devbox __virtiofsd-guard` (argv from there on): the process mounts_virtiofsd_spawn starts,
 * which sets up virtiofsd's namespaces, execs it and stays as its guard.  Takes its fds and its
 * setup from the spawner only; returns (125) only when run any other way. */
int mounts_virtiofsd_guard_main(int argc, char **argv);

/* Resolve `paths` (as in struct mounts_vfs_config.protected) below `source` exactly as the
 * spawn does, without mounting anything, and return in *ret_missing the paths that do not exist,
 * which the spawn keeps missing instead of mounting (a NULL-terminated copy in sorted order, or
 * NULL if none; free with dbx_strv_free).  The spawn re-resolves on its own, so a later change
 * on the host cannot make it protect less than it can see.  Errors as the spawn would: EINVAL
 * for a malformed path, ELOOP for a symlink on the way, -errno otherwise. */
int mounts_protected_scan(const char *source, const char *const *paths, char ***ret_missing,
                          dbx_error **err);

/* File descriptors.  The C virtiofsd holds an O_PATH descriptor for every inode the guest has
 * looked up and not yet forgotten (it has no file-handle mode), and with cache=auto the guest
 * forgets only under memory pressure: a walk of the workspace (find, git status, tar) needs
 * about one descriptor per file and directory.  So virtiofsd runs with RLIMIT_NOFILE raised:
 * as host root to MOUNTS_NOFILE_WANT (or fs.nr_open if lower), otherwise soft = hard, the most
 * an unprivileged process may take.  mounts_nofile_limit says what that will be. */
#define MOUNTS_NOFILE_WANT 1048576u
/* Above this many descriptors mounts_nofile_warning does not count (a walk that long would
 * delay every boot); a repo larger than this is rare and the limit is then a system's choice. */
#define MOUNTS_NOFILE_CHECK_MAX 262144u
/* Descriptors virtiofsd needs besides the inodes' (its sockets, threads' files, the guest's
 * open files). */
#define MOUNTS_NOFILE_RESERVE 256u

/* The RLIMIT_NOFILE virtiofsd will run with when spawned by this process now. */
uint64_t mounts_nofile_limit(void);

/* Count files, directories and other entries below `source` (not following symbolic links,
 * fd-relative), stopping once the count exceeds `max`: *ret_count is min(count, max + 1). */
int mounts_count_entries(const char *source, uint64_t max, uint64_t *ret_count, dbx_error **err);

/* A message for the user when the workspace has more entries than virtiofsd's descriptor limit
 * can hold (so a full walk of it would fail with EMFILE in the guest), naming the limit and
 * the fix; NULL when it fits, when the limit is too large to be worth counting against
 * (MOUNTS_NOFILE_CHECK_MAX) or when counting failed (a warning is best effort). */
char *mounts_nofile_warning(const char *source);

/* ---- mounts-watch.c: host edits, for the guest's file watchers (issue 13) ----
 * virtiofs does not tell the guest about changes made on the host, so inotify watchers in the
 * box (test runners, bundlers) would never wake for an edit made in a host editor.  The
 * supervisor watches the workspace here and sends the changed paths in CHANGED frames; the
 * guest (guest/init-watch.c) makes its own kernel report them.
 *
 * Recursive inotify over every directory below root, opened fd-relative with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (a symbolic link is never followed; the directory it
 * names, in the share or outside, is not watched), new directories watched as they appear.
 * `.git/objects` is skipped: hundreds of fan-out directories that only git writes, content
 * addressed, never edited in place and not what any watcher follows (HEAD, refs and the index
 * stay watched).
 * Events: create, close-write, delete and both halves of a move.  Neither IN_MODIFY nor
 * IN_ATTRIB: the guest raises events by setting a file's mtime (to now, or to the value it has
 * when that lies more than 2 s from now: guest/init-watch.c), which the host's kernel reports as
 * IN_MODIFY (and a change of both times as IN_ATTRIB), so watching either would bring every
 * notice back as a new one, forever.  An edit is complete when its writer closes the file,
 * which is when an editor's save reports close-write (or a rename over it, a move); what is
 * missed is a write through a descriptor kept open (a log appended by a running
 * host process, a truncate(1)), reported only when it closes.  The box's own writes reach the
 * host as virtiofsd's writes and come back once, coalesced (inotify does not say who wrote, and
 * telling virtiofsd's writes apart here would need fanotify's privileges): the guest finds a
 * file as the box's last write left it and touches nothing (guest/init-watch.c, where the
 * box's watchers look); any other echo raises no host event, so it ends there, and a time the
 * box set after its write (`touch -d`, `cp -p`, `tar x`) is kept.
 * Caps: at most min(MOUNTS_WATCH_MAX, half of fs.inotify.max_user_watches) directories (the
 * rest of the user's editors and tools keep the other half), one warning past it; at most
 * MOUNTS_WATCH_PENDING_MAX distinct pending paths, past which (or on the kernel's queue
 * overflow) the next notice is a single "rescan".
 * Coalescing and rate: a notice goes out once no event came for MOUNTS_WATCH_QUIET_MS, or
 * MOUNTS_WATCH_DELAY_MS after the first pending event, and never sooner than
 * MOUNTS_WATCH_INTERVAL_MS after the previous one. */
#define MOUNTS_WATCH_MAX 65536u
#define MOUNTS_WATCH_PENDING_MAX 4096u
#define MOUNTS_WATCH_QUIET_MS 50u
#define MOUNTS_WATCH_DELAY_MS 200u
#define MOUNTS_WATCH_INTERVAL_MS 100u

struct mounts_watch;

/* Watch the tree at root (absolute): root itself now, the directories below it by
 * mounts_watch_walk.  max_watches: 0 for the default above, else a lower cap (tests).  Errors:
 * the inotify instance or root itself (a missing or non-directory root). */
int mounts_watch_new(const char *root, uint32_t max_watches, struct mounts_watch **ret,
                     dbx_error **err);
/* The first walk, a slice at a time: at most max_dirs directories more (one at least),
 * stopping once max_ms passed; true while some remain (false also once the cap is reached).  A
 * workspace with node_modules holds tens of thousands of directories, 35 us each under load
 * (2026-12-07: 20,212 took the supervisor's loop ~0.7 s, and a cold start's first command waited
 * for all of it): the loop walks a slice between polls, so a command is served meanwhile.  A
 * directory made or moved in meanwhile is watched at once, as always; one the walk has yet to reach
 * reports nothing until it does (as before the start). */
bool mounts_watch_walk(struct mounts_watch *w, unsigned max_dirs, unsigned max_ms);
/* Whether the first walk has directories left. */
bool mounts_watch_walking(const struct mounts_watch *w);
struct mounts_watch *mounts_watch_free(struct mounts_watch *w);
/* The inotify descriptor to poll for POLLIN (non-blocking, close-on-exec). */
int mounts_watch_fd(const struct mounts_watch *w);
/* Read and record what the kernel queued (call when the fd is readable). */
void mounts_watch_read(struct mounts_watch *w, uint64_t now_ms);
/* Milliseconds until mounts_watch_take has something to give (0: now), or -1: nothing pending. */
int mounts_watch_timeout(const struct mounts_watch *w, uint64_t now_ms);
/* When a notice is due at now_ms: append one CHANGED payload (dbx_changed_encode: at most
 * DBX_CHANGED_MAX_PATHS paths and DBX_FRAME_MAX bytes, or n = 0 for a rescan) to out and
 * return true; call again until it returns false to drain the rest. */
bool mounts_watch_take(struct mounts_watch *w, uint64_t now_ms, struct dbx_buf *out);
/* mounts_watch_take without waiting for the notice to be due: everything pending, now (false
 * when nothing is).  For a command about to start, which must see the host's edits made
 * before it. */
bool mounts_watch_take_now(struct mounts_watch *w, uint64_t now_ms, struct dbx_buf *out);
/* A message to log once (the watch cap was reached), then NULL; the caller frees it. */
char *mounts_watch_take_warning(struct mounts_watch *w);
/* Directories watched now. */
size_t mounts_watch_count(const struct mounts_watch *w);

/* ---- issue 13: a linked worktree's repository (mounts-worktree.c) ---- */

/* When `source`'s `.git` is a file naming COMMON/worktrees/NAME with a commondir back to COMMON
 * (`git worktree add`), the repository's git directory COMMON (absolute, normalized), NAME, and
 * the paths below COMMON to protect read-only when it is shared (the git-directory rule for
 * COMMON, worktrees/ whole included; for worktrees/NAME its commondir, gitdir and
 * config.worktree), in the form of struct mounts_vfs_config.protected, and in `writable` (struct
 * mounts_vfs_config.writable) worktrees/NAME alone: so git in the box writes its own entry,
 * and no other entry, present or made later by `git worktree add` on the host, nor a new one.  All
 * zero when `.git` is not a file or names a git directory without commondir.  The chain is read
 * without following a symbolic link; one that points anywhere else (not a git directory, not an
 * entry of its worktrees/, a link on the way, a repository another user owns, one that contains the
 * workspace or lies inside it) is an error naming `source/.git`. */
struct mounts_worktree {
    char *common;
    char *name;
    char **protected;
    char **writable;
};
/* Open absolute `path` as a directory, walking from '/' one component at a time without
 * following a symbolic link (R4); an fd, or -errno with *err naming `what` and the path. */
int mounts_open_dir_nofollow(const char *path, const char *what, dbx_error **err);
int mounts_worktree_find(const char *source, struct mounts_worktree *ret, dbx_error **err);
void mounts_worktree_clear(struct mounts_worktree *w);

/* mounts/mounts-internal.h: pieces of the mounts module that its unit tests reach directly.
 * Not for use outside mounts/ and tests/unit/test-mounts-*.c. */
#pragma once

#include "mounts.h"

#include <limits.h>
#include <linux/filter.h>
#include <sys/stat.h>

/* Limits for /etc/subuid and /etc/subgid: they are the host's own files, but a huge or
 * garbled one must not make us allocate without bound or misparse. */
#define MOUNTS_SUBID_FILE_MAX (1024 * 1024)
#define MOUNTS_SUBID_LINE_MAX 256
#define MOUNTS_SUBID_LINES_MAX 65536

/* Find the first usable range for owner `name` (may be NULL) or numeric `id` in the contents
 * of a subuid/subgid file (buf[0..len), no NUL bytes).  Lines are `owner:start:count`.
 * Malformed or over-long lines are skipped, as are ranges with count 0, ranges that would
 * reach id 4294967295 (the invalid id), and ranges that contain id 0 or `id` itself (mapping
 * either through the subordinate range would hand guest ids real root or the user).
 * 0 with ret_start and ret_count set, or -ENOENT. */
int mounts_subid_find(const char *buf, size_t len, const char *name, uint32_t id,
                      uint32_t *ret_start, uint32_t *ret_count);

/* One line of /proc/PID/uid_map, as newuidmap takes it: `inside outside count`. */
struct mounts_id_range {
    uint32_t inside;
    uint32_t outside;
    uint32_t count;
};

/* The ranges for the mapping described in mounts.h: namespace `inside` -> host `outside`;
 * namespace 0..inside-1 and inside+1.. -> the range [sub, sub+count), using all of it.  Writes
 * at most 3 ranges to out; returns how many. */
size_t mounts_idmap_ranges(uint32_t inside, uint32_t outside, uint32_t sub, uint32_t count,
                           struct mounts_id_range out[3]);

/* Whether any range in a subuid/subgid file's contents overlaps [start, start+count). */
bool mounts_subid_overlaps(const char *buf, size_t len, uint32_t start, uint32_t count);

/* Run `tool` (newuidmap or newgidmap, looked up in the usual system directories) for `pid`
 * with the given ranges, empty environment, no inherited fds.  Its stderr becomes the error
 * message on failure. */
int mounts_run_idmap_tool(const char *tool, pid_t pid, const struct mounts_id_range *r, size_t n,
                          dbx_error **err);

/* Check a protected-path list against the rules in mounts.h (count, repo-relative,
 * normalized).  0 or -EINVAL/-E2BIG with *err set. */
int mounts_protected_validate(const char *const *paths, dbx_error **err);

/* Called in virtiofsd's guard (mounts_virtiofsd_guard_main), after it entered its own mount
 * namespace (/ is rprivate, /run is a private tmpfs) and holds root in its user namespace, before
 * it starts virtiofsd: makes the mounts described at struct mounts_vfs_config.protected below
 * `source` (trusted, absolute).  Resolution is fd-relative with no symlinks (R4), mounts are made
 * on those fds.  Only the virtiofsd about to start sees them.  Must not print (the guard's
 * stderr is the log).  Missing paths are skipped (mounts_guard_missing keeps them missing).
 * Fails closed: on any error the caller must not start virtiofsd; mounts made before the error
 * stay (the namespace dies with the guard). */
int mounts_apply_protected(const char *source, const char *const *paths, dbx_error **err);

/* Git repositories nested in the work tree (mounts-nested.c): `.git` directories below the
 * top and the git directories `.git` files below the top name inside the workspace (each a
 * repo-relative path: *gitdirs), and those `.git` files themselves (*gitfiles).  Found by a
 * walk of the whole workspace as the invoking user before the spawn (no box runs then): never
 * into a `.git` directory or through a symbolic link.  Fails (so the start does) past the
 * caps, on a `.git` symlink below the top, on a `.git` file naming something in the workspace
 * that is no git directory and that the box could create or redirect (through a link, a
 * missing component), on a directory of the user's it cannot read.  Free with
 * mounts_nested_free. */
#define MOUNTS_NESTED_MAX 256u             /* nested git directories plus `.git` files */
#define MOUNTS_NESTED_ENTRIES_MAX 1000000u /* files and directories looked at */
#define MOUNTS_NESTED_DEPTH_MAX 128u       /* directory levels below the top */
struct mounts_nested {
    char **gitdirs;
    char **gitfiles;
    uint64_t entries; /* how many entries the walk looked at */
    /* The share's root is itself a git directory (struct mounts_vfs_config.gitdir): set by the
     * spawner, not by the walk. */
    bool root;
};
struct mounts_nested_caps {
    unsigned entries, depth, found;
};
int mounts_nested_find(const char *source, struct mounts_nested *ret, dbx_error **err);
int mounts_nested_find_caps(const char *source, const struct mounts_nested_caps *caps,
                            struct mounts_nested *ret, dbx_error **err);
void mounts_nested_free(struct mounts_nested *n);

/* Open directory `rel` (normalized, "" is root) below root one component at a time, no
 * symlinks: an O_RDONLY directory fd, or -errno (-ELOOP for a link, -ENOTDIR for a
 * non-directory on the way, -ENOENT). */
int mounts_open_dir_beneath(int root, const char *rel);
/* A directory is a git directory if it has HEAD and objects, as git's own check does. */
bool mounts_is_git_dir(int dfd);

/* The git-directory rule (docs/SECURITY.md): for `.git` (when it is a directory), the share's
 * root (when nested->root: a linked worktree's repository) and its worktree entries
 * (worktrees/NAME with a HEAD, which git reads as a git directory of its own: their
 * config.worktree, modules/ and pointers commondir and gitdir), the nested git directories in
 * `nested` (may be NULL), and every submodule git directory below any of their modules/ (nested
 * ones too; at most MOUNTS_GIT_DIRS_MAX git directories, 8 levels: any further ones stay wholly
 * read-only under the read-only modules/), the paths git reads as configuration, hooks or
 * redirections, to be protected read-only whether they exist or not, plus nested's `.git`
 * files (*ret_readonly), and the submodule git directories and entries themselves, which are
 * bound writable again below the read-only modules/ or worktrees/ unless a protected path
 * covers them (*ret_rw).  Resolution as for protected paths. */
#define MOUNTS_GIT_DIRS_MAX 512u
int mounts_git_paths(const char *source, const struct mounts_nested *nested, char ***ret_readonly,
                     char ***ret_rw, dbx_error **err);
/* The git-directory rule's names (relative to a git directory), NULL-terminated. */
const char *const *mounts_git_readonly_names(void);
/* Whether `path` is read-only under the rule of git directory `gitdir` (both repo-relative). */
bool mounts_git_readonly_covers(const char *gitdir, const char *path);

/* Before the spawn, as the invoking user: create the directories of that rule that are
 * missing and mean the same to git when empty (hooks, info, objects/info, modules, worktrees,
 * branches, remotes) in every git directory but worktree entries (whose missing names the name
 * guard keeps missing: git reads hooks and info from the common directory, not from them),
 * fd-relative, no symlinks followed. */
int mounts_git_prepare(const char *source, const struct mounts_nested *nested, dbx_error **err);

/* In the guard, after the protected paths: `source` (trusted, absolute) becomes a read-only,
 * nosuid, nodev bind of itself, recursively (struct mounts_vfs_config.readonly). */
int mounts_apply_readonly(const char *source, dbx_error **err);

/* mounts_apply_protected plus the git-directory rule; `writable` as struct
 * mounts_vfs_config.writable. */
int mounts_apply_protected_git(const char *source, const char *const *paths,
                               const char *const *writable, const struct mounts_nested *nested,
                               dbx_error **err);

/* The name guard (mounts-names.c): the git directories of the share (as mounts_git_paths finds
 * them) by device and inode, whose top level only takes allowlisted new names; and the missing
 * protected paths, each as the name of its first missing component in the directory above it
 * (by device and inode), which the box may not create in any ASCII case. */
#define MOUNTS_GUARD_DIRS_MAX (3 * MOUNTS_GIT_DIRS_MAX)
#define MOUNTS_GUARD_MISSING_MAX MOUNTS_PROTECTED_MAX /* one per protected path at most */
enum mounts_guard_kind { MOUNTS_GUARD_TOP, MOUNTS_GUARD_INFO, MOUNTS_GUARD_OBJECTS_INFO };
struct mounts_guard_missing {
    dev_t dev; /* the existing parent directory */
    ino_t ino;
    bool casefold;           /* the parent folds case itself (ext4/f2fs `chattr +F`) */
    char name[NAME_MAX + 1]; /* the first missing component */
};
struct mounts_guard {
    size_t n;
    dev_t dev[MOUNTS_GUARD_DIRS_MAX];
    ino_t ino[MOUNTS_GUARD_DIRS_MAX];
    enum mounts_guard_kind kind[MOUNTS_GUARD_DIRS_MAX];
    size_t nmissing;
    struct mounts_guard_missing missing[MOUNTS_GUARD_MISSING_MAX];
};
/* Fills ret's git directories (and empties its missing list). */
int mounts_guard_dirs(const char *source, const struct mounts_nested *nested,
                      struct mounts_guard *ret, dbx_error **err);
/* Adds to g->missing the first missing component of each of `paths` (as in struct
 * mounts_vfs_config.protected) below `source`, resolved as the spawn resolves them (no
 * symlinks: ELOOP).  A path whose walk meets a non-directory is protected read-only there and
 * adds nothing; duplicates (in ASCII case) are added once.  In the guard, after
 * mounts_apply_protected_git, whose read-write binds of every parent on the way pin the
 * directories these entries name. */
int mounts_guard_missing(const char *source, const char *const *paths, struct mounts_guard *g,
                         dbx_error **err);
/* The guard's answer for a call that creates `name` (one component) in directory `dir`: 0 to
 * let it run, or EPERM: a missing protected name or a case variant of it (or, in a casefolding
 * directory, any non-ASCII name next to one), a name the git directory rule refuses. */
int mounts_guard_check(const struct mounts_guard *g, const struct stat *dir, const char *name);

/* Whether `name` (the last component of what a call creates) is `.git` in any ASCII case:
 * refused everywhere in the share, so the box can make no git directory or `.git` file host
 * git would enter (a case-folding directory finds `.GIT` as `.git`). */
bool mounts_name_is_dotgit(const char *name);

/* Whether a and b are the same name ignoring ASCII case (locale-independent). */
bool mounts_name_caseeq(const char *a, const char *b);

/* Whether git may create `name` (one component) at the top of a git directory: git's own
 * state files, never configuration or a redirection. */
bool mounts_git_name_allowed(const char *name);
/* The same for the top of a git directory, its info/ or its objects/info/. */
bool mounts_git_name_allowed_in(enum mounts_guard_kind kind, const char *name);

/* The seccomp filter that sends every name-creating system call to a listener, as classic BPF
 * for dbx_spawn (load it with SECCOMP_FILTER_FLAG_NEW_LISTENER and no_new_privs); built in the
 * guard before the fork of virtiofsd's process, which then only loads it.  *ret: malloc'd. */
int mounts_guard_filter_bpf(struct sock_filter **ret, size_t *ret_n, dbx_error **err);

/* In the guard: answer the listener's notifications until every filtered task is gone (0), or
 * until the listener fails (-errno; the caller must then close it, which fails every pending
 * and later filtered call with ENOSYS, and stop the filtered tasks: they would otherwise
 * block in their next name-creating call for good). */
int mounts_guard_serve(int listener, const struct mounts_guard *g);

/* Escape a value for virtiofsd's `-o key=value` (libfuse's fuse_opt splits on ',' and takes
 * '\' as an escape).  Returns a malloc'd string. */
char *mounts_fuse_opt_escape(const char *s);

/* What the guard (mounts_virtiofsd_guard_main) gets from mounts_virtiofsd_spawn over the sync
 * socket before the handshake: one frame, a u32 length and the payload, with a cap on every
 * count and length (mounts-virtiofsd.c). */
struct mounts_guard_setup {
    pid_t parent; /* the spawner, for the parent-death checks */
    char *binary; /* virtiofsd */
    char *source;
    bool readonly; /* the whole share (struct mounts_vfs_config.readonly) */
    char **argv;   /* virtiofsd's */
    char **protected;
    char **writable;             /* struct mounts_vfs_config.writable */
    struct mounts_nested nested; /* found by the spawner (entries unused) */
};
/* The whole frame (length included); *ret_len its size. */
char *mounts_guard_setup_encode(pid_t parent, const char *binary, const char *source, bool readonly,
                                char *const *argv, const char *const *protected,
                                const char *const *writable, const struct mounts_nested *nested,
                                size_t *ret_len);
/* The payload (without the length): 0, or -EINVAL with *err saying what is wrong. */
int mounts_guard_setup_decode(const char *buf, size_t len, struct mounts_guard_setup *ret,
                              dbx_error **err);
void mounts_guard_setup_free(struct mounts_guard_setup *s);

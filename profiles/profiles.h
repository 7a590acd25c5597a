/* profiles/profiles.h: devbox.ini, the built-in profiles, the user's config.ini, and what a
 * profile widens.  The repo's devbox.ini is code an untrusted agent can edit: it may only
 * narrow the built-in `default` profile; anything wider needs the user's `devbox trust`,
 * which records the hash of the exact profile bytes on the host.  Library code: no printing.
 *
 * Format (inih; documented in docs/profiles.md):
 *   [box]       image, cpus, memory, disk, hostname
 *   [limits]    memory, swap, cpu (CPUs, e.g. 1.5), pids, nofile, nproc, io_weight
 *   [security]  user, capabilities (names to add, e.g. "net_bind_service, chown"),
 *               seccomp = default | strict | unconfined, no_new_privileges = true | false
 *   [workspace] protect = paths (added), unprotect = paths (removed: a widening)
 *   [env]       KEY = VALUE (any key), applied inside the guest only
 *   [network]   mode = none | allowlist | open, allow = patterns (validated now, enforced by
 *               the network issue)
 *   top level (before any section) or [profile]: extends = NAME (built-in) | ./path (inside
 *   the repo)
 * Lists are comma- or whitespace-separated.  Later files in an extends chain win key by key;
 * `protect` accumulates.  Depth <= 8, no cycles. */
#pragma once

#include "../common/common.h"

#define PROFILE_FILE "devbox.ini"
#define PROFILE_MAX_BYTES (64u * 1024u)
#define PROFILE_MAX_LINE 199u /* inih r55 splits longer lines; refuse them instead */
#define PROFILE_MAX_DEPTH 8u
#define PROFILE_MAX_LIST 256u /* entries in any list */

enum profile_seccomp { PROFILE_SECCOMP_DEFAULT = 0, PROFILE_SECCOMP_STRICT, PROFILE_SECCOMP_UNCONFINED };
enum profile_net { PROFILE_NET_NONE = 0, PROFILE_NET_ALLOWLIST, PROFILE_NET_OPEN };

/* Where one effective value came from, for `devbox profile show`. */
struct profile_origin {
    char *key;    /* "section.key", e.g. "limits.memory" */
    char *where;  /* "built-in default", "built-in profile 'agent'", "devbox.ini:12",
                     "config.ini:3" (user config), "flag" */
};

struct profile {
    /* [box] */
    char *image;          /* default "default" */
    unsigned cpus;        /* default 1 */
    uint64_t memory;      /* VM memory, bytes; default 512 MiB */
    uint64_t disk;        /* project disk size, bytes; 0 = the image's */
    char *hostname;       /* default "devbox" */
    /* [limits] (0 = no limit unless noted) */
    uint64_t mem_limit;   /* cgroup memory.max; must be below the VM's memory */
    uint64_t swap_limit;  /* memory.swap.max; UINT64_MAX = unlimited */
    uint32_t cpu_milli;   /* CPU quota in thousandths of a CPU (1.5 -> 1500); 0 = none */
    uint32_t pids;
    uint64_t nofile;
    uint64_t nproc;
    uint32_t io_weight;   /* 1..10000; 0 = kernel default */
    /* [security] */
    char *user;           /* "" = the host user's uid/gid; else a name or uid[:gid] */
    uint64_t caps;        /* capabilities added (bit n = CAP n); default 0 */
    enum profile_seccomp seccomp;
    bool no_new_privs;    /* default true */
    /* [workspace]: effective protected paths, repo-relative, normalized, no duplicates */
    char **protect;
    /* [env] */
    char **env;           /* "K=V" */
    /* [network] */
    enum profile_net net_mode;
    char **allow;
    /* provenance of every key that is set */
    struct profile_origin *origin;
    size_t norigin;
    /* the bytes that trust is about: every repo file of the chain, hashed in order */
    char hash[65];        /* sha256 hex, "" when the repo has no devbox.ini */
    char **files;         /* repo files read, in order (display paths) */
};

/* User settings ($XDG_CONFIG_HOME/devbox/config.ini or DEVBOX_HOME/config/config.ini):
 *   [ceilings] cpus, memory, disk: the most any repo profile may ask for without trust
 *   [defaults] the same keys as a profile's, applied before the repo's devbox.ini */
struct profile_user {
    unsigned max_cpus;     /* default: the host's CPU count */
    uint64_t max_memory;   /* default: 2 GiB */
    uint64_t max_disk;     /* default: 16 GiB */
    char *path;            /* the file read, or NULL */
};

/* Load the effective profile for the repo whose root directory is `root_fd` (display path
 * `root` for messages): built-in `default`, then the user's [defaults], then devbox.ini and
 * its extends chain.  builtin_dir is where the built-in profiles (profiles/NAME.ini) are installed (NULL = next to the
 * binary, see profiles.c).  Every file is read without following symlinks (devbox.ini and
 * every extends target must be regular files inside the repo), checked for size, NUL bytes
 * and line length before inih sees it; unknown sections/keys (with a did-you-mean), wrong
 * types, out-of-range numbers and duplicate keys are errors naming file:line.  On error, all
 * problems found are joined one per line in (*err)->msg (for `devbox profile check`). */
int profile_load(int root_fd, const char *root, const struct profile_user *user,
                 const char *builtin_dir, struct profile *ret, dbx_error **err);
void profile_clear(struct profile *p);

int profile_user_load(const char *config_dir, struct profile_user *ret, dbx_error **err);
void profile_user_clear(struct profile_user *u);

/* What `p` widens beyond the built-in `default` profile and the user's ceilings, one short
 * phrase per item ("network mode 'open'", "capability 'net_admin'", "seccomp 'unconfined'",
 * "cpus 8 over the ceiling 4", "unprotects '.git/hooks'", "no_new_privileges false",
 * "extends a file outside the repo"...).  NULL-terminated; empty when it only narrows. */
char **profile_widenings(const struct profile *p, const struct profile_user *user);

/* Trust records live outside the repo: trust_dir/<sha256 of the repo root path> holds the
 * profile hashes the user trusted for that repo. */
int profile_trust_check(const char *trust_dir, const char *root, const char *hash, bool *ret_trusted,
                        dbx_error **err);
int profile_trust_add(const char *trust_dir, const char *root, const char *hash, dbx_error **err);

/* Capability name ("net_admin", "CAP_NET_ADMIN", case-insensitive) to number; -1 if unknown. */
int profile_cap_from_name(const char *name);
const char *profile_cap_name(int cap);

/* The effective profile as JSON (each value with "value" and "from"), for `profile show`. */
char *profile_to_json(const struct profile *p);
/* The same as INI-like text with "; from ..." comments. */
char *profile_to_text(const struct profile *p);

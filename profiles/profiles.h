/* profiles/profiles.h: devbox.ini, the built-in profiles, the user's config.ini, and what a
 * profile widens.  The repo's devbox.ini is code an untrusted agent can edit: it may only
 * narrow the built-in `default` profile; anything wider needs the user's `devbox trust`,
 * which records the hash of the exact profile bytes on the host.  Library code: no printing.
 *
 * Format (inih; documented in docs/profiles.md):
 *   [box]       image (an OCI reference or a local image name), cpus, memory, disk, hostname
 *   [limits]    memory, swap, cpu (CPUs, e.g. 1.5), pids, nofile, nproc, io_weight
 *   [security]  user, capabilities (names to add for uid 0 in the box, e.g. "chown, fowner"),
 *               capabilities_user (names to add for every user of the box, root included),
 *               seccomp = default | strict | unconfined, no_new_privileges = true | false
 *   [workspace] protect = paths (added), unprotect = paths (removed: a widening)
 *   [env]       KEY = VALUE (any key), applied inside the guest only
 *   [network]   mode = none | allowlist | open, allow = patterns, resolve = name:address
 *   [ports]     HOST = GUEST (any number of lines, at most PROFILE_MAX_PORTS)
 *   [mounts]    HOST = GUEST[:ro|:rw] (host folders shared into the box; struct profile_mount)
 *   [setup]     run = commands, one per line (the key line and each indented continuation
 *               line), network = none | allowlist | open, allow = patterns, resolve =
 *               name:address (the [network] grammar; these apply while setup runs only)
 *   [secrets]   use = NAME list: secrets declared in the user's config.ini ([secret NAME])
 *               that the box gets a placeholder for (each one a widening; see below)
 *   top level (before any section) or [profile]: extends = NAME (built-in) | ./path (inside
 *   the repo)
 * Lists (capabilities, capabilities_user, protect, unprotect, allow, resolve) are comma- or
 * whitespace-separated and may continue on indented lines (inih's multi-line values; each may
 * carry a `; comment`); the same key twice in a section is a duplicate, not an append.
 * [setup] run is the one list that is not split: each line is one command, kept as written
 * (inih trims it and drops a `;` that follows whitespace and the rest of the line, so a
 * command writes `&&`, or `;` with no space before it).  Later files in an extends chain win
 * key by key; `protect` accumulates, `unprotect` removes.
 * Depth <= 8, no cycles; extends paths are opened component by component from the repo root
 * fd, never following a symlink, and `..` or an absolute path is an error.  Every repo file
 * of the chain is added to the protected paths. */
#pragma once

#include "../common/common.h"
#include "../common/netaddr.h"

#define PROFILE_FILE "devbox.ini"
#define PROFILE_MAX_BYTES (64u * 1024u)
#define PROFILE_MAX_LINE 199u /* inih r55 splits longer lines; refuse them instead */
#define PROFILE_MAX_DEPTH 8u
#define PROFILE_MAX_LIST 256u      /* entries in any list */
#define PROFILE_MAX_PORTS 64u      /* [ports] forwards */
#define PROFILE_MAX_IMAGE_REF 512u /* [box] image; the name part at most 255 (docker's cap) */
#define PROFILE_MAX_SETUP 64u      /* [setup] run commands */
#define PROFILE_LISTEN_DEFAULT "127.0.0.1" /* config.ini [network] listen when unset */
#define PROFILE_MAX_SECRETS 32u            /* [secret NAME] sections in config.ini; [secrets] use */
#define PROFILE_MAX_SECRET_NAME 64u        /* [A-Za-z_][A-Za-z0-9_]{0,63} */
#define PROFILE_MAX_SECRET_HOSTS 32u       /* a secret's hosts */
#define PROFILE_MAX_MOUNTS 16u             /* [mounts] lines in the effective profile */

/* A secret the user declared in config.ini (never in a repo file):
 *     [secret ANTHROPIC_API_KEY]
 *     env = ANTHROPIC_API_KEY      ; exactly one of env, file, command
 *     hosts = api.anthropic.com    ; allow patterns (network.allow's grammar), at least one
 *     header = x-api-key: {}       ; optional
 * profiles/ never reads a value: it only says where the value comes from.  `source` is
 *   ENV:     the variable's name ([A-Za-z_][A-Za-z0-9_]*) in the environment of the devbox
 *            command that starts the box;
 *   FILE:    an absolute path; "~/..." in config.ini is expanded against $HOME by
 *            profile_user_load (an unset or relative $HOME is an error), so this is always
 *            absolute;
 *   COMMAND: a shell command line as written (the caller runs /bin/sh -c; a `;` after
 *            whitespace starts a config.ini comment, so write `;` without a space before it).
 * hosts: normalized allow patterns (profile_allow_parse), no duplicates, 1..
 * PROFILE_MAX_SECRET_HOSTS, NULL-terminated.  header: "Name: text with {}" (an HTTP header
 * name, ':', a value holding "{}" exactly once, which the proxy replaces with the value), or
 * NULL. */
enum profile_secret_from { PROFILE_SECRET_ENV, PROFILE_SECRET_FILE, PROFILE_SECRET_COMMAND };
struct profile_secret {
    char *name;
    enum profile_secret_from from;
    char *source;
    char **hosts;
    char *header;
};
/* "env", "file", "command" (for messages and `profile show`: the kind, never the source of a
 * command, which may hold anything the user typed). */
const char *profile_secret_from_name(enum profile_secret_from from);

enum profile_seccomp {
    PROFILE_SECCOMP_DEFAULT = 0,
    PROFILE_SECCOMP_STRICT,
    PROFILE_SECCOMP_UNCONFINED
};
enum profile_net { PROFILE_NET_NONE = 0, PROFILE_NET_ALLOWLIST, PROFILE_NET_OPEN };
/* [box] kernel: which guest kernel boots (sandbox/ resolves auto against the devbox kernel's
 * cache; env DEVBOX_KERNEL overrides it). */
enum profile_kernel { PROFILE_KERNEL_AUTO = 0, PROFILE_KERNEL_DEVBOX, PROFILE_KERNEL_DEBIAN };
/* "auto", "devbox", "debian" */
const char *profile_kernel_name(enum profile_kernel k);

/* Where one effective value came from, for `devbox profile show`. */
struct profile_origin {
    char *key;   /* "section.key", e.g. "limits.memory" */
    char *where; /* "built-in default" (compiled in), "built-in agent.ini:12", a repo file
                    relative to the root "devbox.ini:12" / "ci/base.ini:3", the user's
                    config by full path "/home/u/.config/devbox/config.ini:3", or what
                    profile_set was given ("flag"); auto-protected chain files say
                    "devbox.ini:1 (extends)" */
};

/* One [ports] line: the supervisor listens on the user's listen address (config.ini
 * [network] listen, default 127.0.0.1) port `host` and forwards each connection to `guest`
 * inside the box. */
struct profile_port {
    uint16_t host;  /* 1..65535, unique within a profile */
    uint16_t guest; /* 1..65535 */
};

/* One [mounts] line, `HOST = GUEST[:ro|:rw]`: a host directory shared into the box (one
 * virtiofsd share each, mounts/ and sandbox/ wire it).  Only repo files and the built-ins
 * they extend set these (not config.ini's [defaults], not profile_set).  HOST is `~/path`
 * (the user's home: $HOME, else the password database), a path relative to the repo root, or
 * absolute; never "..".  profile_load resolves it like realpath(3) with one difference: a
 * symlink that lives inside the repo is refused (the box can rewrite it, and trust is about
 * the profile's bytes, not about where a link points), and checks the result (see
 * docs/profiles.md, "[mounts]").  host has no symlink component at load time: open it with
 * openat2 RESOLVE_NO_SYMLINKS (or O_NOFOLLOW component by component) so that one swapped in
 * later is refused rather than followed. */
struct profile_mount {
    char *host;    /* absolute, canonical, after ~ expansion; an existing directory */
    char *guest;   /* absolute, normalized path in the box (no "..", "." or "//") */
    bool rw;       /* `:rw`; false (`:ro`, the default): read-only */
    char *file;    /* the profile file of the line, as errors name it ("devbox.ini") */
    unsigned line; /* its line */
    char *spec;    /* HOST as written, normalized ("~/datasets", "data/ref", "/srv/x") */
    bool in_repo;  /* host is inside the repo (not a widening when read-only) */
};

struct profile {
    /* [box] */
    char *image;     /* default "default": a local image name, or an OCI reference checked against
                        the docker reference grammar ("debian:bookworm", "ghcr.io/org/app:1.2",
                        "ghcr.io/org/app@sha256:<64 hex>", "127.0.0.1:5000/test/busybox:latest");
                        not parsed further here (oci/ does that) */
    unsigned cpus;   /* default 1 */
    uint64_t memory; /* VM memory, bytes; default 512 MiB */
    uint64_t disk;   /* project disk size, bytes; 0 = the image's */
    char *hostname;  /* default "devbox" */
    enum profile_kernel kernel; /* default auto: the devbox kernel when built, else Debian's */
    /* [limits] (0 = no limit unless noted) */
    uint64_t mem_limit;  /* cgroup memory.max; below the VM's memory; 0 = auto (policy derives) */
    uint64_t swap_limit; /* memory.swap.max; UINT64_MAX = unlimited (default), 0 = no swap */
    uint32_t cpu_milli;  /* CPU quota in thousandths of a CPU (1.5 -> 1500); 0 = none */
    uint32_t pids;       /* pids.max, 1..4194304; default 4096 (never 0 once loaded) */
    uint64_t nofile;     /* RLIMIT_NOFILE, 1..1048576; default 65536 (never 0 once loaded) */
    uint64_t nproc;      /* RLIMIT_NPROC; default 0 = none */
    uint32_t io_weight;  /* 1..10000; 0 = kernel default */
    /* [security] */
    char *user;         /* "" = the host user's uid/gid; else a name or uid[:gid] */
    uint64_t caps;      /* capabilities added for uid 0 in the box only (bit n = CAP n);
                           default 0.  A non-root box user never gets these. */
    uint64_t caps_user; /* capabilities added for every uid in the box, the ordinary box user
                           included (a separate opt-in); default 0 */
    enum profile_seccomp seccomp;
    bool no_new_privs; /* default true */
    bool aslr_on;      /* aslr = on: the box's programs keep address randomization under TCG
                          too; default false (auto: on under KVM, off under TCG) */
    /* [workspace]: effective protected paths, repo-relative, normalized, no duplicates */
    char **protect;
    /* [env] */
    char **env; /* "K=V" */
    /* [network] */
    enum profile_net net_mode;
    /* allow: normalized patterns, NULL-terminated (NULL = none), one spelling each:
     *   "name", "name:PORT"          a DNS name, lower case, no trailing dot
     *   "*.suffix", "*.suffix:PORT"  any name strictly below suffix (label boundary)
     *   "a.b.c.d", "a.b.c.d:PORT"    canonical dotted quad only
     *   "a.b.c.d/N", "a.b.c.d/N:PORT"  IPv4 CIDR, no bits set beyond N
     *   "::1", "[::1]:PORT"          IPv6 as inet_ntop prints it
     *   "fd00::/8", "[fd00::/8]:PORT"  IPv6 CIDR
     * no port means ports 443 and 80 (profile_allow_parse is the grammar). */
    char **allow;
    /* resolve: "name:ADDR" (like curl --resolve without the port): the proxy connects to ADDR
     * for `name` instead of asking DNS.  name is an exact DNS name (lower case, no trailing
     * dot, no wildcard); ADDR is a canonical IPv4 or an IPv6 address without brackets; split
     * at the first ':'.  At most one entry per name.  NULL-terminated, NULL = none. */
    char **resolve;
    /* [ports], in the order first written; a later file replaces a forward by host port */
    struct profile_port *ports;
    size_t nports;
    /* [setup]: commands run as root in the box before first use (sandbox/ decides when),
     * with a network policy of their own.  Part of the repo profile: each command is a
     * widening (profile_widenings), so it runs only once the user trusted the profile. */
    char **setup_run; /* commands in order, NULL-terminated; NULL = no setup.  One per line as
                         written (not split at commas or spaces), empty lines skipped, at most
                         PROFILE_MAX_SETUP, each within PROFILE_MAX_LINE, no control bytes
                         but tab.  A later file's `run` replaces the whole list.  Origins:
                         "setup.run" (the key line) and "setup.run[N]", N from 1, the
                         command's own line ("devbox.ini:7") */
    enum profile_net setup_net; /* the network while setup runs; default PROFILE_NET_ALLOWLIST
                                   (origin "setup.network") */
    char **setup_allow;         /* extra hosts for setup only: `allow`'s grammar, spelling and caps
                                   ("setup.allow"); the caller adds the user's pre-approved
                                   profile_user.setup_allow */
    char **setup_resolve;       /* name overrides for setup only, as `resolve` ("setup.resolve") */
    /* [setup] workspace: setup runs in the workspace (true) or in / without it (false, the
     * default).  A setup that sees no project makes a derived disk any project with the same
     * image and setup may share; one that sees the workspace depends on it, so its derived
     * disk is this project's own (sandbox/ keys it by the project). */
    bool setup_workspace;
    /* [secrets] use: names of secrets declared in the user's config.ini, NULL-terminated, NULL
     * = none, at most PROFILE_MAX_SECRETS, no duplicates, in the order written (a later file's
     * `use` replaces the list).  Origins "secrets.use" and "secrets.use[NAME]" (the name's own
     * line, "devbox.ini:5").  profile_load checks each against the user's declarations (a name
     * config.ini does not declare is an error at that line) and needs network mode allowlist
     * ("secret 'NAME' needs network mode allowlist" at that line otherwise).  Each used
     * secret's hosts are then in `allow` as well (those not already there get the origin key
     * "network.allow[HOST]" -> "secret 'NAME' (devbox.ini:5)"; they are not widenings of
     * their own: the secret is).  A command line cannot add secrets (profile_set refuses
     * "secrets.use"), the user's [defaults] neither. */
    char **secrets_use;
    /* Copies of config.ini's declarations of secrets_use, in the same order (set by
     * profile_load; nsecrets == dbx_strv_len(secrets_use)): what the supervisor reads and
     * what the proxy injects, without another lookup.  No value: profiles/ never reads one. */
    struct profile_secret *secrets;
    size_t nsecrets;
    /* [mounts], in the order first written, at most PROFILE_MAX_MOUNTS; a later file replaces
     * a line by its HOST as written (normalized), `HOST = none` drops an inherited one.
     * Origins "mounts.SPEC" ("mounts.~/datasets" -> "devbox.ini:3"). */
    struct profile_mount *mounts;
    size_t nmounts;
    /* provenance of every key that is set */
    struct profile_origin *origin;
    size_t norigin;
    /* the bytes that trust is about: every repo file of the chain, hashed in order */
    char hash[65]; /* sha256 hex over "name\0length\0bytes" of each repo file in chain order;
                      "" when the repo has no devbox.ini */
    char **files;  /* repo files read, in chain order, relative to the root (NULL: none) */
    /* load-time notes for the user (NULL-terminated, NULL = none), e.g. the devcontainer.json
     * keys devbox ignores; the caller prints them ("devbox: WARNING: ...") */
    char **warnings;
    /* the devbox.ini text the profile was parsed from when it came from a devcontainer.json
     * (see profile_devcontainer_translate), for `devbox profile show` to print so the user can
     * check it in; NULL otherwise */
    char *ini_equivalent;
};

/* ---- devcontainer.json (profiles-devcontainer.c) ------------------------------------------ *
 *
 * Repos with a devcontainer.json and no devbox.ini: the JSON is translated into devbox.ini
 * text, which profile_load then parses like a repo devbox.ini.  Looked for in this order,
 * opened from the repo root like devbox.ini (no symlinks, regular files only). */
#define PROFILE_DEVCONTAINER_FILES                                                                 \
    { ".devcontainer/devcontainer.json", ".devcontainer.json" }

/* Translate json (len bytes, at most PROFILE_MAX_BYTES, no NUL byte; `//` and block comments
 * and trailing commas allowed, duplicate keys refused) into devbox.ini text starting with
 * "; translated by devbox from .devcontainer/devcontainer.json":
 *   image                              -> [box] image
 *   onCreateCommand, postCreateCommand -> [setup] run, one line per command in that order
 *       (a string as written, trimmed; an array as a shell-quoted argv; an object's values in
 *       the order written, which devcontainers run in parallel)
 *   containerEnv, remoteEnv            -> [env] (remoteEnv wins; null there unsets); a value
 *       with a ${...} variable is skipped and named in a warning (never expanded)
 *   forwardPorts numbers               -> [ports] N = N ("host:port" strings: a warning)
 *   remoteUser, else containerUser     -> [security] user (root: a warning, not set)
 *   name, $schema                      -> nothing; any other key: named in one warning.
 * A value that devbox.ini cannot hold unchanged (a line over PROFILE_MAX_LINE bytes, a
 * control character or newline, a ';' at the start or after whitespace, surrounding
 * whitespace in a non-command value), a wrong JSON type or a bad variable name is an error
 * naming "fname: key: ..." (JSON syntax errors "fname:line: ..."), every problem one per
 * line, -EINVAL.  On success *ret_ini (caller frees) and *ret_warnings ("fname: ..." lines,
 * NULL-terminated, NULL = none; caller frees with dbx_strv_free) are set.  No printing, no
 * environment read. */
int profile_devcontainer_translate(const char *json, size_t len, const char *fname, char **ret_ini,
                                   char ***ret_warnings, dbx_error **err);

/* User settings ($XDG_CONFIG_HOME/devbox/config.ini or DEVBOX_HOME/config/config.ini):
 *   [ceilings]   cpus, memory, disk: the most any repo profile may ask for without trust;
 *                image_size: the most a pulled image may unpack to
 *   [defaults]   the same keys as a profile's, applied before the repo's devbox.ini
 *   [registries] insecure = host[:port] list (plain http allowed), ca_file = /abs/path.pem
 *   [network]    listen = IP address port forwards listen on, ca_files = CA files/dirs
 *   [setup]      allow = patterns setup may reach without the repo needing trust
 *   [secret NAME] env | file | command, hosts, header: a secret (struct profile_secret above)
 * [registries], [network] listen and ca_files are user-only: a repo or built-in profile that
 * sets them (or a [defaults] line naming them) is an error at file:line.  So is a [secret ...]
 * section in a repo or built-in file ("secrets are declared in config.ini, not in the
 * repository"); `[defaults] secrets.use` is refused too (only a repo profile asks for one). [setup]
 * allow is user-only in config.ini too: `[defaults] setup.allow` is an error (write it in [setup]),
 * while a repo's [setup] allow is the profile key (struct profile's setup_allow). */
struct profile_layer; /* opaque: parsed entries of one file (profiles-internal.h) */
#define PROFILE_IMAGE_SIZE_DEFAULT (16ull << 30)
struct profile_user {
    unsigned max_cpus;       /* default: the host's CPU count (at most 64) */
    uint64_t max_memory;     /* default: 2 GiB */
    uint64_t max_disk;       /* default: 16 GiB */
    uint64_t max_image_size; /* [ceilings] image_size, the most file data a pulled image
                                may unpack to (default 16 GiB; 0 = the default) */
    /* [box] idle_stop: a running box with no session, forwarded connection or detached
     * process for this long is stopped by its supervisor; 0 = never.  profile_user_load sets
     * PROFILE_IDLE_STOP_DEFAULT when the file does not say; a zero-filled struct means never. */
    uint32_t idle_stop_s;
    char *path;                     /* the file read, or NULL */
    struct profile_layer *defaults; /* [defaults], applied by profile_load; NULL = none */
    /* registries the user allows over plain http: "host", "host:PORT", "a.b.c.d[:PORT]",
     * "[v6]" or "[v6]:PORT" (lower case, as an image reference's domain is written; no port
     * means any port).  NULL-terminated; NULL = none. */
    char **registries_insecure;
    char *registries_ca_file; /* an extra CA bundle (absolute path, not opened here), or NULL */
    char *listen; /* canonical IPv4 or IPv6 address (no brackets); profile_user_load always
                     sets it (PROFILE_LISTEN_DEFAULT when the file does not); NULL in a
                     zero-filled struct means PROFILE_LISTEN_DEFAULT */
    /* [network] ca_files: CA certificate files, or directories whose *.crt / *.pem files
     * devbox installs into every box's trust store; absolute paths (not opened here),
     * NULL-terminated, at most PROFILE_MAX_LIST.  `none` (or an empty value) sets it empty.
     * When the file has no such line (ca_files_set false) the caller uses the host's locally
     * added CAs, /usr/local/share/ca-certificates. */
    char **ca_files;
    bool ca_files_set;
    /* [setup] allow: hosts [setup] may reach without the repo needing trust (pre-approved:
     * the distribution's mirrors), as normalized allow patterns; an empty value sets none.
     * When the file has no such line (setup_allow_set false) the caller (sandbox/) fills
     * them from the host's apt sources. */
    char **setup_allow;
    bool setup_allow_set;
    /* [network] proxy: the upstream HTTP proxy allowlist boxes' egress goes through, as
     * written (profile_proxy_parse accepts it), or NULL for `none`; proxy_set false when the
     * file does not say (the caller then uses the environment's https_proxy / http_proxy).
     * [network] no_proxy: hosts reached directly, normalized (profile_no_proxy_normalize);
     * no_proxy_set false when the file does not say (the environment's no_proxy). */
    char *proxy;
    bool proxy_set;
    char **no_proxy;
    bool no_proxy_set;
    /* [secret NAME] sections in file order, at most PROFILE_MAX_SECRETS, names unique; each
     * checked at load (one source, a hosts list, a name, a header shape), errors naming
     * config.ini:line.  Origins "secret.NAME" -> "/home/u/.config/devbox/config.ini:7" (the
     * section line). */
    struct profile_secret *secrets;
    size_t nsecrets;
    /* [box] kernel_autobuild = false: a supervisor that boots the Debian kernel because the devbox
     * kernel is not built does not start building it in the background (default true) */
    bool kernel_autobuild_off;
    /* Host directories that are devbox's own (its data, state, run and config directories):
     * no [mounts] host path may be one, lie inside one or contain one.  profile_user_load
     * puts config_dir here; the caller adds the others (sandbox/: struct dbx_paths' data,
     * state and run) with dbx_strv_push.  Absolute; NULL-terminated; NULL = none. */
    char **private_dirs;
    /* provenance: "ceilings.cpus", "registries.insecure", "registries.ca_file",
     * "network.listen", "network.ca_files", "setup.allow" ->
     * "/home/u/.config/devbox/config.ini:3"; unset keys have none */
    struct profile_origin *origin;
    size_t norigin;
};

/* Load the effective profile for the repo whose root directory is `root_fd`: built-in
 * `default`, then the user's [defaults] (user may be NULL), then devbox.ini's extends chain,
 * then devbox.ini.  No devbox.ini is not an error (hash "").  A repo without devbox.ini but
 * with PROFILE_DEVCONTAINER_FILES (the first that exists) gets that file translated
 * (profile_devcontainer_translate) and parsed as its devbox.ini: same checks, widenings and
 * trust; the hash, `files` and the protected paths are about the JSON file; origins and
 * errors name it with the JSON key ".devcontainer/devcontainer.json (containerEnv.FOO)";
 * ret->warnings and ret->ini_equivalent are set.  devbox.ini, when present, wins and the JSON
 * is not read.  builtin_dir holds the built-in
 * NAME.ini files (NULL = profile_builtin_dir()).  Repo files are read without following
 * symlinks (devbox.ini and every extends target must be regular files inside the repo),
 * checked for size, NUL/control bytes and line length before inih sees them; unknown
 * sections/keys (with a did-you-mean), wrong types, out-of-range numbers and duplicate keys
 * are errors naming file:line, repo files relative to the root.  `root` is the repo root's
 * absolute path (canonical, as root_fd was opened): [mounts] host paths are resolved and
 * checked against it (and against user->private_dirs and the user's home).  On error (-EINVAL),
 * every problem found is listed one per line in (*err)->msg, in file then line order (for `devbox
 * profile check`). */
int profile_load(int root_fd, const char *root, const struct profile_user *user,
                 const char *builtin_dir, struct profile *ret, dbx_error **err);
void profile_clear(struct profile *p);

/* Read config_dir/config.ini (the caller resolves the directory: devbox's paths module, the
 * one place DEVBOX_HOME and the XDG variables are read).  A missing file gives the default ceilings
 * and no defaults.  [defaults] keys are "section.key" (box.memory = 1G, env.EDITOR = vi);
 * they are checked here, errors name config.ini:line.  A zero-filled struct profile_user (or
 * NULL where one is taken) means the default ceilings and no defaults. */
int profile_user_load(const char *config_dir, struct profile_user *ret, dbx_error **err);
#define PROFILE_IDLE_STOP_DEFAULT (30u * 60u)
#define PROFILE_IDLE_STOP_MAX (30u * 24u * 3600u)
/* An idle_stop value: "0" (never), or a whole number with s, m or h, at most 720h, into
 * seconds.  0 or -EINVAL (ret untouched). */
int profile_parse_idle_stop(const char *s, uint32_t *ret_s);
void profile_user_clear(struct profile_user *u);
/* The secret declared as `name`, or NULL (u may be NULL: none). */
const struct profile_secret *profile_user_secret(const struct profile_user *u, const char *name);

/* The built-in profiles directory: $DEVBOX_PROFILES_DIR, else <dir of /proc/self/exe>/../profiles
 * when it exists (the source tree: build/devbox -> profiles/), else
 * /usr/local/share/devbox/profiles.  Caller frees. */
char *profile_builtin_dir(void);
/* The compiled-in built-in `default` (profiles/default.ini says the same; a unit test checks). */
int profile_init_default(struct profile *ret);
/* Built-in profile NAME as a repo would get it with `extends = NAME` and nothing else
 * (hash "" and no files: built-ins are not repo content). */
int profile_load_builtin(const char *name, const struct profile_user *user, const char *builtin_dir,
                         struct profile *ret, dbx_error **err);
/* Set one key ("box.cpus", "env.FOO", "network.allow" with a comma list, "ports.3000" =
 * "3000" or "none"...) with the same checks as in a file, recording `where` (e.g. "flag") as
 * its origin; then re-checks what spans keys.  On failure the caller should drop the profile
 * (a value may have been set).  Setting "network.mode" to "none" also empties network.allow
 * and network.resolve (origin `where`): the command line's `--network none` narrowing is
 * profile_set(p, "network.mode", "none", "command line").  "setup.run" takes one command,
 * which replaces the list ("" empties it); "setup.network" = "none" empties setup.allow and
 * setup.resolve the same way.  "secrets.use" is refused (a command line never asks for a
 * secret); "network.mode" = "none" also drops every used secret (secrets_use, secrets, their
 * hosts in allow; origin "secrets.use" -> `where`), and "network.mode" = "open" with a used
 * secret fails.  "network.allow" keeps the hosts a used secret brought. */
int profile_set(struct profile *p, const char *key, const char *value, const char *where,
                dbx_error **err);
/* Where the value of `key` came from, or NULL.  Keys are "section.key"; each protected path
 * is "workspace.protect[PATH]", each removed one "workspace.unprotect[PATH]", each variable
 * "env.NAME", each port forward "ports.HOST", each setup command "setup.run[N]" (from 1). */
const char *profile_origin_of(const struct profile *p, const char *key);
/* The built-in default's protected paths, NULL-terminated: .git/hooks, .git/config,
 * .gitmodules, devbox.ini, and what agents, editors and shells on the host run by themselves:
 * .claude .codex .gemini .cursor .vscode .idea .mcp.json .envrc .husky
 * .pre-commit-config.yaml .devcontainer .devcontainer.json .zed .helix .continue .roo .kiro
 * .amazonq opencode.json .opencode .aider.conf.yml (profiles/default.ini lists the same). */
extern const char *const profile_default_protect[];

/* What `p` widens beyond the built-in `default` profile (with the user's [defaults] applied:
 * the user's own settings are not repo widenings) and the user's ceilings, one short phrase
 * per item ("network mode 'open'", "capability 'net_admin'", "seccomp 'unconfined'",
 * "cpus 8 over the ceiling 4", "unprotects '.git/hooks'", "no_new_privileges false",
 * "limits.pids 8192 above 4096", "user 'root'", "network allow 'pypi.org'", "network
 * resolve 'allowed.test:127.0.0.1'"...).  The image and [ports] (loopback-only by default,
 * the listen address is the user's) are not widenings.  [setup]: each command the baseline
 * does not run ("setup runs 'npm ci' as root", the whole command), "setup network mode
 * 'open'", each setup allow entry not in user->setup_allow, by exact normalized spelling
 * ("setup network allow 'mirror.test:8080'"; with setup network allowlist) and each setup resolve
 * entry the baseline lacks ("setup network resolve 'a.test:127.0.0.1'"; unless setup
 * network none).  Each used secret: "secret 'NAME' sent to HOST, HOST2" (its hosts, allowed
 * because of it, are not also listed as network allow entries).  Each [mounts] line that is
 * read-write or whose host path is outside the repo: "mount '/home/u/datasets' (outside the
 * repo) at '/data'", "mount '/repo/out' at '/out' read-write" (the canonical host path; both
 * parts when both hold); a read-only folder inside the repo is not a widening.
 * NULL-terminated, never NULL; empty when it only narrows.  (An extends path outside the repo
 * is not a widening but a load error.)  user may be NULL. */
char **profile_widenings(const struct profile *p, const struct profile_user *user);

/* Trust records live outside the repo: trust_dir/<sha256 of the repo root path> holds the
 * profile hashes the user trusted for that repo (one per line, newest last, at most
 * PROFILE_TRUST_KEEP).  hash is 64 lowercase hex digits (anything else is EINVAL), root an
 * absolute path.  check: a missing file or dir means untrusted (not an error); hash "" (no
 * devbox.ini) is never trusted.  add creates trust_dir 0700 and writes the file atomically,
 * 0600. */
#define PROFILE_TRUST_KEEP 64u
int profile_trust_check(const char *trust_dir, const char *root, const char *hash,
                        bool *ret_trusted, dbx_error **err);
int profile_trust_add(const char *trust_dir, const char *root, const char *hash, dbx_error **err);

/* Capability name ("net_admin", "CAP_NET_ADMIN", case-insensitive) to number; -1 if unknown. */
int profile_cap_from_name(const char *name);
const char *profile_cap_name(int cap);

/* The effective profile as JSON (each value with "value" and "from"), for `profile show`. */
char *profile_to_json(const struct profile *p);
/* The same as INI-like text with "; from ..." comments. */
char *profile_to_text(const struct profile *p);
/* The user's config.ini settings that are not profile keys ([ceilings], [registries],
 * [network] listen and ca_files, [setup] allow), each with its origin ("default" when unset),
 * as text in config.ini syntax and as JSON ({"path", "ceilings": {"cpus": {"value", "from"}
 * ...}, "registries": {"insecure", "ca_file"}, "network": {"listen", "ca_files"}, "setup":
 * {"allow"}}; an unset ca_files or setup allow has "value": null and a "from" naming what the
 * caller uses instead); for `profile show`.  u may be NULL. */
char *profile_user_to_text(const struct profile_user *u);
char *profile_user_to_json(const struct profile_user *u);

/* ---- host names and allow patterns (profiles-names.c): the one grammar ------------------- *
 *
 * Both `devbox profile check` (every devbox.ini and config.ini line) and the egress proxy (its
 * allow list, its request hosts, TLS server names and resolve overrides) parse with these, so
 * a pattern the check accepts is exactly one the proxy enforces.  docs/network.md describes
 * the grammar for users. */

/* A host name: labels of letters, digits, '-' and '_' (DNS allows '_', and the proxy serves
 * such names), 1..63 bytes each, at most DBX_HOST_MAX bytes in all; one trailing dot is
 * dropped and the name lower-cased into out.  The last label must not be a number (decimal,
 * or 0x and hex digits, "0x" alone included): a URL parser reads such a host as an IPv4
 * address.  s is len bytes, not NUL-terminated (an embedded NUL is refused).  0, or -EINVAL
 * (not a name) or -EDOM (the last label is a number), with *why set to a static reason. */
int profile_host_name_parse(const char *s, size_t len, char out[DBX_HOST_MAX + 1],
                            const char **why);

enum profile_allow_kind {
    PROFILE_ALLOW_NAME,   /* exactly this host */
    PROFILE_ALLOW_SUFFIX, /* "*.domain": any name ending in ".domain" (not domain itself) */
    PROFILE_ALLOW_ADDR,   /* an address or CIDR network */
};
struct profile_allow {
    enum profile_allow_kind kind;
    char name[DBX_HOST_MAX + 1]; /* NAME: the host; SUFFIX: the domain after "*." */
    struct dbx_addr addr;        /* ADDR: the network (host bits zero) */
    unsigned prefix;             /* ADDR: prefix length (32 / 128 for one address) */
    bool cidr;                   /* ADDR: written with "/prefix" */
    uint16_t port;               /* 0 = any port the proxy serves by default (443 and 80) */
};
/* Parse one allow entry (at most 262 bytes):
 *   "name", "name:PORT", "*.domain", "*.domain:PORT"  (profile_host_name_parse; "*." needs a
 *                                                     domain of at least two labels)
 *   "a.b.c.d", "a.b.c.d/N" and either with ":PORT"    (canonical dotted quad only: 127.1,
 *                                                     0x7f.0.0.1 or 010.0.0.1 are refused)
 *   "::1", "fd00::/8" (bare IPv6 takes no port), "[::1]", "[fd00::/8]" and either with ":PORT"
 * N is decimal without a leading zero (0..32, 0..128) and the address has no bits set beyond
 * it; PORT is 1..65535 without a leading zero.  0 and *ret set, or -EINVAL with *why static. */
int profile_allow_parse(const char *s, struct profile_allow *ret, const char **why);
/* The one spelling of a (what struct profile's allow holds; it parses back to a): names lower
 * case without the trailing dot, addresses as inet_ntop prints them, "[v6]:PORT" with a port. */
char *profile_allow_format(const struct profile_allow *a);

/* ---- the upstream HTTP proxy (config.ini [network] proxy and no_proxy) ------------------ */

#define PROFILE_PROXY_MAX 1024u         /* bytes of a proxy URL */
#define PROFILE_PROXY_USERINFO_MAX 512u /* bytes of its "user:password", encoded */
/* An upstream proxy: where an allowlist box's egress proxy sends what it lets through. */
struct profile_proxy {
    struct profile_allow host; /* PROFILE_ALLOW_NAME, or ADDR of one address; port set */
    char *userinfo;            /* "user:password", percent-decoded, for Proxy-Authorization;
                                  NULL = none */
};
/* Parse "[http://][USER[:PASSWORD]@]HOST:PORT[/]": HOST a name, a dotted quad or [v6], the
 * port required, USER and PASSWORD percent-encoded as in a URL (decoded here; no control
 * characters).  Another scheme, a path, a query or a missing port is refused.  0 with *ret
 * set (profile_proxy_clear), or -EINVAL with *why static. */
int profile_proxy_parse(const char *url, struct profile_proxy *ret, const char **why);
void profile_proxy_clear(struct profile_proxy *p);
/* "http://HOST:PORT", with "USER:***@" when it carries credentials: never the password. */
char *profile_proxy_display(const struct profile_proxy *p);
/* url (any text) for a message: what precedes the last '@' after the scheme becomes "***";
 * without an '@', what follows a ':' that does not start a port does. */
char *profile_proxy_redact(const char *url);
/* One no_proxy entry, normalized: "*" (every host), a name (written "name", ".name" or
 * "*.name": the name and every name under it), an IP address or a CIDR; no port.  The result
 * is "*" or parses with profile_allow_parse (NAME or ADDR).  NULL with *why static. */
char *profile_no_proxy_normalize(const char *in, const char **why);
/* Whether a no_proxy entry e (profile_allow_parse of a normalized entry) covers h: a name
 * equal to it or under it, an address inside it. */
bool profile_no_proxy_match(const struct profile_allow *e, bool is_addr, const struct dbx_addr *a,
                            const char *name);

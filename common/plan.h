/* common/plan.h: the policy plan and its encoding, the part of the wire protocol that policy/
 * compiles and the guest init applies; SETUP (common/protocol.h) carries it.  See
 * docs/protocol.md, "The plan and the network". */
#pragma once

#include "common.h"

#include <linux/capability.h>

struct dbx_buf; /* common/protocol.h; only the encoder needs its layout */

/* The policy plan: what the guest enforces on every exec'd process.  Compiled on the host by
 * policy/ from the effective profile, carried in SETUP, checked (framing, limits, SHA-256 over
 * the encoding) and applied by the guest init with plain syscalls. */
enum dbx_seccomp_mode {
    DBX_SECCOMP_UNCONFINED = 0,
    DBX_SECCOMP_DEFAULT = 1,
    DBX_SECCOMP_STRICT = 2,
};
#define DBX_PLAN_MAX_BPF 4096u  /* BPF instructions (the kernel's BPF_MAXINSNS) */
#define DBX_PLAN_MAX_PATHS 256u /* protected paths */
#define DBX_PLAN_MAX_ENV 1024u
#define DBX_CAP_ALL UINT64_MAX /* "keep every capability": no capability changes */
/* What `devbox exec --admin` (DBX_EXEC_ADMIN) adds to the plan's caps for its one command:
 * Docker's default set for a container's root, the one package managers are written against
 * (apt/dpkg chown and chmod files of other owners, drop to the `_apt` user with setuid/setgid,
 * set file capabilities on binaries such as ping, chroot in maintainer scripts, bind low ports,
 * signal daemons).  Nothing here reaches past the box: no sys_admin, sys_module, sys_ptrace,
 * net_admin or sys_rawio.  Equal to Docker's CapEff 00000000a80425fb. */
#define DBX_CAPS_ADMIN                                                                             \
    ((UINT64_C(1) << CAP_CHOWN) | (UINT64_C(1) << CAP_DAC_OVERRIDE) |                              \
     (UINT64_C(1) << CAP_FSETID) | (UINT64_C(1) << CAP_FOWNER) | (UINT64_C(1) << CAP_MKNOD) |      \
     (UINT64_C(1) << CAP_NET_RAW) | (UINT64_C(1) << CAP_SETGID) | (UINT64_C(1) << CAP_SETUID) |    \
     (UINT64_C(1) << CAP_SETFCAP) | (UINT64_C(1) << CAP_SETPCAP) |                                 \
     (UINT64_C(1) << CAP_NET_BIND_SERVICE) | (UINT64_C(1) << CAP_SYS_CHROOT) |                     \
     (UINT64_C(1) << CAP_KILL) | (UINT64_C(1) << CAP_AUDIT_WRITE))
enum dbx_net_mode {
    DBX_NET_NONE = 0,      /* no network device: loopback only */
    DBX_NET_ALLOWLIST = 1, /* no network device; the init's proxy listener on 127.0.0.1 */
    DBX_NET_OPEN = 2,      /* a virtio-net device behind user-mode NAT on the host */
};
struct dbx_plan {
    uint64_t mem_max;       /* cgroup memory.max in bytes; 0 = "max" */
    uint64_t swap_max;      /* memory.swap.max in bytes; UINT64_MAX = "max" */
    uint32_t cpu_quota_us;  /* cpu.max quota; 0 = "max" */
    uint32_t cpu_period_us; /* cpu.max period */
    uint32_t pids_max;      /* pids.max; 0 = "max" */
    uint32_t io_weight;     /* io.weight 1..10000; 0 = leave the default */
    uint64_t nofile;        /* RLIMIT_NOFILE soft = hard; 0 = leave */
    uint64_t nproc;         /* RLIMIT_NPROC soft = hard; 0 = leave */
    uint64_t caps;          /* for uid 0 in the box: bit n = capability n in the bounding,
                               permitted, effective, inheritable and ambient sets;
                               DBX_CAP_ALL = leave them alone */
    uint64_t caps_user;     /* the same for every other uid (the ordinary box user); a subset
                               of caps unless caps is DBX_CAP_ALL */
    uint8_t no_new_privs;   /* 1 = PR_SET_NO_NEW_PRIVS */
    uint8_t seccomp_mode;   /* enum dbx_seccomp_mode, for verification and reporting */
    uint8_t no_randomize;   /* 1 = the box's programs start at fixed addresses (the init's
                               personality ADDR_NO_RANDOMIZE, which every command inherits):
                               the host sets it under TCG, whose translated code is keyed by
                               virtual address (profile key [security] aslr) */
    char *user;             /* "" = the uid/gid of SETUP; else resolved in the guest */
    uint32_t bpf_len;       /* instructions in bpf (0 with DBX_SECCOMP_UNCONFINED) */
    uint8_t *bpf;           /* bpf_len struct sock_filter, 8 bytes each, little-endian */
    uint32_t nprotected;
    char **protected; /* workspace-relative paths, read-only in the guest as well */
    uint32_t nenv;
    char **env;          /* "K=V" added to every command's environment */
    uint8_t net_mode;    /* enum dbx_net_mode */
    uint16_t proxy_port; /* allowlist: the init listens on 127.0.0.1:proxy_port; else 0 */
    char *net_addr;      /* open: eth0's "A.B.C.D/PREFIX"; else "" */
    char *net_gw;        /* open: the default gateway "A.B.C.D"; else "" */
    char *net_dns;       /* open: the nameserver for /etc/resolv.conf, or "" to leave
                            resolv.conf alone; else "" (decode checks each spelling with
                            dbx_parse_ipv4) */
};

/* The plan's encoding ends with a SHA-256 of everything before it; decode checks it, every
 * count against its limit, that nothing trails, and the network fields against net_mode:
 * allowlist <=> proxy_port != 0; open <=> net_addr set, and then net_addr "A.B.C.D/N",
 * net_gw "A.B.C.D", net_dns "" or "A.B.C.D"; other modes leave all three "". */
void dbx_plan_encode(const struct dbx_plan *p, struct dbx_buf *out);
int dbx_plan_decode(const uint8_t *p, size_t n, struct dbx_plan *ret, dbx_error **err);
void dbx_plan_free(struct dbx_plan *p);
/* The index in p->env of NAME's "NAME=...", or -1. */
int dbx_plan_env_find(const struct dbx_plan *p, const char *name);
/* "NAME=value" added to p->env (kept NULL-terminated): false, and nothing added, when it holds
 * DBX_PLAN_MAX_ENV entries already. */
bool dbx_plan_env_add(struct dbx_plan *p, const char *name, const char *value);
/* A plan that changes nothing: no limits, every capability, no seccomp. */
void dbx_plan_permissive(struct dbx_plan *ret);

/* An IPv4 address in dotted decimal, exactly four parts without leading zeros ("10.0.2.15");
 * with ret_prefix, followed by "/N", N 1..32.  Fills ret (network byte order) and *ret_prefix;
 * -EINVAL for anything else (octal, hex, short forms, spaces). */
int dbx_parse_ipv4(const char *s, uint8_t ret[4], uint8_t *ret_prefix);

/* Whether the workspace-relative path rel is one of the n paths, lies below one, or is a parent
 * of one (renaming it would move the protected path): the write attempts on protected paths the
 * guest counts and the host accepts in its report (DBX_MSG_PROTECTED). */
bool dbx_path_near(const char *rel, char *const *paths, uint32_t n);

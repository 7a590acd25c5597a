/* policy/policy.h: what an effective profile means at run time.  Compiles a struct profile
 * into the plan the guest applies (common/plan.h struct dbx_plan): cgroup values,
 * capability mask, seccomp BPF (libseccomp), rlimits, user, protected paths, environment,
 * network mode.  Also the egress proxy's decision (proxy/ does the I/O): request hosts, allow
 * patterns and which addresses they open, exported for the proxy, the tests and the fuzz
 * harnesses.  Library code: no printing. */
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "../common/common.h"
#include "../common/netaddr.h"
#include "../common/plan.h"
#include "../profiles/profiles.h"

/* Fill *ret from p; on failure return < 0 with *err set (err may be NULL) and leave *ret
 * alone.  Caller frees *ret with dbx_plan_free.
 *
 * Limits: memory.max = limits.memory, which must be below vm_memory (the VM's memory in
 * bytes); when it is 0, vm_memory minus a reserve for the guest kernel and init (1/8 of the
 * VM, at least 64 MiB).  swap, pids, io_weight (<= 10000), nofile and nproc pass through;
 * cpu.max is milli * 100 us per 100 ms (0 = "max"; below 0.01 CPU is refused, as cpu.max
 * refuses a quota under 1 ms).
 * Security: caps (what uid 0 in the box gets) is security.capabilities plus
 * security.capabilities_user, caps_user (what every other uid gets) is
 * security.capabilities_user alone; both 0 by default, never DBX_CAP_ALL; bits above
 * CAP_CHECKPOINT_RESTORE = 40, the last in Linux 6.1, are refused; no_new_privs and
 * user (NULL = "") as given.  protect and env are copied after the checks dbx_plan_decode
 * makes (relative, non-empty, no "..", KEY=VALUE, counts), and the encoded plan must fit in a
 * SETUP frame.
 *
 * Seccomp (policy-seccomp.c; the deny lists are documented in docs/SECURITY.md): unconfined
 * gives no program.  default and strict give an x86_64 program generated with libseccomp,
 * allow-by-default, behind a fixed guard that kills every other ABI (i386, x32) and refuses
 * personality() values other than 0, 0x8, 0x20000, 0x20008 and 0xffffffff.  `default` makes
 * these fail with EPERM: kexec_load, kexec_file_load, init_module, finit_module,
 * delete_module, bpf, perf_event_open, keyctl, add_key, request_key, syslog, acct,
 * lookup_dcookie, nfsservctl, reboot, swapon, swapoff, quotactl, quotactl_fd, mount, umount2,
 * pivot_root, move_mount, open_tree, fsopen, fsmount, fsconfig, fspick, mount_setattr,
 * unshare, setns, clone with any CLONE_NEW* flag, userfaultfd, io_uring_setup/enter/register,
 * ptrace, process_vm_writev, iopl, ioperm, settimeofday, clock_settime, clock_adjtime,
 * adjtimex, name_to_handle_at, open_by_handle_at, socket(AF_VSOCK), socket(AF_PACKET),
 * ioctl(TIOCSTI), ioctl(TIOCLINUX); and clone3 with ENOSYS (so libc falls back to clone).
 * `strict` adds chroot, process_vm_readv, kcmp, pidfd_getfd, memfd_secret, fanotify_init,
 * uselib, sethostname, setdomainname, vhangup, mknod/mknodat of character and block devices,
 * and socket() of every family but AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK.  The program
 * is at most DBX_PLAN_MAX_BPF instructions.
 *
 * Network: network.mode none gives DBX_NET_NONE; allowlist gives DBX_NET_ALLOWLIST with
 * proxy_port POLICY_PROXY_PORT, and the plan's env gets HTTP_PROXY, HTTPS_PROXY and ALL_PROXY
 * = POLICY_PROXY_URL, NO_PROXY = POLICY_NO_PROXY and their lower-case twins (a profile [env]
 * entry with the same key wins); network.allow must parse with policy_pattern_parse.  open
 * gives DBX_NET_OPEN with net_addr DBX_NET_OPEN_ADDR, net_gw DBX_NET_OPEN_GW and net_dns
 * DBX_NET_OPEN_DNS (QEMU user-mode networking's fixed addresses, common/netaddr.h).  Other modes
 * leave the address strings "" and proxy_port 0. */
#define POLICY_PROXY_PORT 3128
#define POLICY_PROXY_URL "http://127.0.0.1:3128"
/* NO_PROXY's loopback names; then 127.0.1.1 and the profile's hostname (unless localhost) */
#define POLICY_NO_PROXY "localhost,127.0.0.1,::1"
int policy_compile(const struct profile *p, uint64_t vm_memory, struct dbx_plan *ret,
                   dbx_error **err);

/* The guest's seccomp filter for `mode` (DEFAULT or STRICT) as an OCI runtime-spec seccomp
 * profile: the JSON that Kubernetes' seccompProfile type Localhost, runc and crun load.
 * Generated from the tables that build the guest's program (policy-seccomp.c), so the two
 * deny the same calls: defaultAction SCMP_ACT_ALLOW, architectures ["SCMP_ARCH_X86_64"]
 * only, and SCMP_ACT_ERRNO entries with errnoRet (EPERM; ENOSYS for clone3).  Rules without
 * arguments share one entry per errno, in table order; each argument rule is an entry of its
 * own with one SCMP_CMP_MASKED_EQ ("value" the mask, "valueTwo" the expected bits) or
 * SCMP_CMP_GE condition.  The personality() guard becomes masked-equal rules that deny every
 * value but the five allowed.  Differences from the guest's program: foreign ABIs (i386, x32)
 * get the runtime's bad-arch action, libseccomp's default SCMP_ACT_KILL (the thread, not the
 * process); on a non-x86_64 node the runtime keeps its native architecture too and the rules
 * apply there by name.
 * On success *ret_json is malloc'd, NUL-terminated, deterministic (same tables, same bytes),
 * indented by 2 spaces and ends in a newline.  UNCONFINED (no filter: the caller writes
 * seccompProfile type Unconfined) and other modes give -EINVAL with *err set. */
int policy_seccomp_oci_json(enum profile_seccomp mode, char **ret_json, dbx_error **err);

/* ---- request hosts and allow patterns (policy-net.c) ------------------------------------ */

/* A request's host after policy_host_parse. */
struct policy_host {
    bool is_addr;
    struct dbx_addr addr;        /* is_addr */
    char name[DBX_HOST_MAX + 1]; /* lower case, trailing dot removed; for an address its
                                    inet_ntop text (IPv6 without brackets) */
};

/* Parse len bytes of a request host (no port).  Accepted: a host name as the allow patterns
 * write it (profile_host_name_parse: letters, digits, '-', '_', labels of 1..63, at most
 * DBX_HOST_MAX bytes, one trailing dot allowed and removed, lower-cased, last label not
 * numeric), a canonical dotted quad (four decimal parts 0..255
 * without leading zeros), or a bracketed IPv6 address without zone ("[::1]").  Everything else
 * is -EINVAL with *why set to a static reason; in particular every other IPv4 spelling
 * (127.1, 2130706433, 0x7f.0.0.1, 0177.0.0.1, "1.2.3.4.") is refused as not canonical. */
int policy_host_parse(const char *s, size_t len, struct policy_host *ret, const char **why);

/* profile_allow_parse (the one grammar, profiles.h) with the error as a value naming the
 * entry: "network.allow: 'ENTRY': why".  -EINVAL on error. */
int policy_pattern_parse(const char *s, struct profile_allow *ret, dbx_error **err);
/* Whether p allows a request to h:port (names match NAME/SUFFIX patterns, addresses ADDR
 * patterns; the port must equal p->port, or be 443 or 80 when p->port is 0). */
bool policy_pattern_match(const struct profile_allow *p, const struct policy_host *h,
                          uint16_t port);
/* Whether any of the n patterns allows h:port. */
bool policy_allowed(const struct profile_allow *pats, size_t n, const struct policy_host *h,
                    uint16_t port);
/* NULL when the proxy may connect to a: a public address, or one an ADDR pattern contains
 * (whatever that pattern's port: naming an address lifts its class's refusal).  Else the
 * class name ("loopback", "private", ...). */
const char *policy_addr_refused(const struct profile_allow *pats, size_t n,
                                const struct dbx_addr *a);

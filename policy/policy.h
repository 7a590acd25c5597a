/* policy/policy.h: what an effective profile means at run time.  Compiles a struct profile
 * into the plan the guest applies (guest/protocol.h struct dbx_plan): cgroup values,
 * capability mask, seccomp BPF (libseccomp), rlimits, user, protected paths, environment.
 * Library code: no printing. */
#pragma once

#include "../common/common.h"
#include "../guest/protocol.h"
#include "../profiles/profiles.h"

/* Fill *ret from p; on failure return < 0 with *err set (err may be NULL) and leave *ret
 * alone.  Caller frees *ret with dbx_plan_free.
 *
 * Limits: memory.max = limits.memory, which must be below vm_memory (the VM's memory in
 * bytes); when it is 0, vm_memory minus a reserve for the guest kernel and init (1/8 of the
 * VM, at least 64 MiB).  swap, pids, io_weight (<= 10000), nofile and nproc pass through;
 * cpu.max is milli * 100 us per 100 ms (0 = "max"; below 0.01 CPU is refused, as cpu.max
 * refuses a quota under 1 ms).
 * Security: caps is the profile's added capabilities (0 by default, never DBX_CAP_ALL; bits
 * above CAP_CHECKPOINT_RESTORE = 40, the last in Linux 6.1, are refused); no_new_privs and
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
 * is at most DBX_PLAN_MAX_BPF instructions. */
int policy_compile(const struct profile *p, uint64_t vm_memory, struct dbx_plan *ret,
                   dbx_error **err);

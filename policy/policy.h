/* policy/policy.h: what an effective profile means at run time.  Compiles a struct profile
 * into the plan the guest applies (guest/protocol.h struct dbx_plan): cgroup values,
 * capability mask, seccomp BPF (libseccomp), rlimits, user, protected paths, environment.
 * Library code: no printing. */
#pragma once

#include "../common/common.h"
#include "../guest/protocol.h"
#include "../profiles/profiles.h"

/* Fill *ret from p.  vm_memory is the VM's memory in bytes (the cgroup limit must leave room
 * for the guest kernel and init: mem_limit 0 means VM memory minus a reserve).  The seccomp
 * program is generated with libseccomp for x86_64 and exported as BPF: `default` denies at
 * least kexec_load/kexec_file_load, init_module/finit_module/delete_module, mount/umount2/
 * pivot_root/move_mount/open_tree/fsopen/fsmount/fsconfig, bpf, perf_event_open, keyctl/
 * add_key/request_key, userfaultfd, io_uring_setup/enter/register, ptrace (a box process may
 * not need to trace others: the guest's ptrace_scope does the rest), unshare and clone/clone3
 * with CLONE_NEWUSER, socket(AF_VSOCK) and socket(AF_PACKET), iopl/ioperm, swapon/swapoff,
 * reboot, syslog, acct, quotactl, setns, personality changes other than the default, all
 * returning EPERM; x32 and i386 ABIs killed.  `strict` adds more (e.g. every socket family
 * but AF_UNIX/AF_INET/AF_INET6, chroot, mknod of devices, process_vm_readv/writev,
 * name_to_handle_at/open_by_handle_at, ...).  Caller frees with dbx_plan_free. */
int policy_compile(const struct profile *p, uint64_t vm_memory, struct dbx_plan *ret,
                   dbx_error **err);

/* policy/policy-internal.h: what policy.c and policy-seccomp.c share; not for other modules. */
#pragma once

#include <seccomp.h>

#include "policy.h"

/* Build the seccomp program for `mode` (DEFAULT or STRICT) for x86_64 and return it in the
 * plan's wire form: *ret_len instructions of 8 little-endian bytes each, malloc'd in *ret_bpf.
 * Fails when libseccomp does, or when the program exceeds DBX_PLAN_MAX_BPF instructions. */
int policy_seccomp_build(enum profile_seccomp mode, uint8_t **ret_bpf, uint32_t *ret_len,
                         dbx_error **err);

/* One rule of the seccomp tables in policy-seccomp.c: `name` fails with errno `errnum`, always
 * (argc 0) or when argument cmp.arg compares true (argc 1), with libseccomp's 64-bit meaning:
 * SCMP_CMP_MASKED_EQ is (arg & datum_a) == datum_b, SCMP_CMP_GE is arg >= datum_a. */
struct policy_seccomp_deny {
    const char *name;
    int errnum;
    unsigned argc; /* 0 or 1 */
    struct scmp_arg_cmp cmp;
};
typedef int (*policy_seccomp_fn)(const struct policy_seccomp_deny *d, void *userdata,
                                 dbx_error **err);
/* Call fn on each rule `mode` (DEFAULT or STRICT) denies, in table order (default's, then
 * strict's, then strict's socket families), stopping at the first that returns < 0.  The
 * guard's rules (foreign ABIs, personality) are not among them.  -EINVAL for another mode. */
int policy_seccomp_each(enum profile_seccomp mode, policy_seccomp_fn fn, void *userdata,
                        dbx_error **err);

/* With limits.memory unset, memory.max is the VM's memory minus this much, left to the guest
 * kernel, the page cache floor and the init: 1/8 of the VM, at least 64 MiB. */
#define POLICY_MEM_RESERVE_MIN (64u * 1024u * 1024u)
uint64_t policy_mem_reserve(uint64_t vm_memory);

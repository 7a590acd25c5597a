/* policy/policy-internal.h: what policy.c and policy-seccomp.c share; not for other modules. */
#pragma once

#include "policy.h"

/* Build the seccomp program for `mode` (DEFAULT or STRICT) for x86_64 and return it in the
 * plan's wire form: *ret_len instructions of 8 little-endian bytes each, malloc'd in *ret_bpf.
 * Fails when libseccomp does, or when the program exceeds DBX_PLAN_MAX_BPF instructions. */
int policy_seccomp_build(enum profile_seccomp mode, uint8_t **ret_bpf, uint32_t *ret_len,
                         dbx_error **err);

/* With limits.memory unset, memory.max is the VM's memory minus this much, left to the guest
 * kernel, the page cache floor and the init: 1/8 of the VM, at least 64 MiB. */
#define POLICY_MEM_RESERVE_MIN (64u * 1024u * 1024u)
uint64_t policy_mem_reserve(uint64_t vm_memory);

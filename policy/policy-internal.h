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

/* ---- the egress proxy's name lookups (policy-dns.c) ------------------------------------- */

#define POLICY_DNS_MAX_ADDRS 16u        /* addresses kept per name */
#define POLICY_DNS_TTL_MS (60u * 1000u) /* getaddrinfo gives no TTL: a fixed one */
#define POLICY_DNS_CACHE_MAX 256u       /* names cached per proxy (per project) */
#define POLICY_DNS_RETRY_MS 200u        /* pause before retrying a failed lookup */

struct policy_dns_config {
    unsigned ttl_ms, cache_max, retry_ms; /* 0 = the defaults above */
    policy_resolve_fn *resolve;           /* NULL = getaddrinfo */
    void *resolve_data;
    int stop_fd; /* readable once the proxy stops: cuts the retry pause short; -1 = none */
};
struct policy_dns;
struct policy_dns *policy_dns_new(const struct policy_dns_config *cfg);
/* Only once no thread is inside policy_dns_lookup.  Accepts NULL. */
void policy_dns_free(struct policy_dns *d);
/* The addresses of name (a valid host name, not an address): a cached answer younger than
 * ttl_ms, else the result of the one lookup in flight for name (started here if there is none;
 * a failure is retried once after retry_ms).  0 with 1..max addresses in out and *ret_n set,
 * or an EAI_* code (gai_strerror); failures are not cached.  Once stop_fd is readable no new
 * lookup starts (EAI_AGAIN).  Thread-safe. */
int policy_dns_lookup(struct policy_dns *d, const char *name, struct dbx_addr *out, size_t max,
                      size_t *ret_n);
/* Drop name's cached answer (every address of it failed to connect). */
void policy_dns_forget(struct policy_dns *d, const char *name);

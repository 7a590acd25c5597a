/* proxy/proxy-internal.h: what the proxy's files share; not for other modules. */
#pragma once

#include "proxy.h"

/* ---- the egress proxy's name lookups (proxy-dns.c) ------------------------------------- */

#define PROXY_DNS_MAX_ADDRS 16u        /* addresses kept per name */
#define PROXY_DNS_TTL_MS (60u * 1000u) /* getaddrinfo gives no TTL: a fixed one */
#define PROXY_DNS_CACHE_MAX 256u       /* names cached per proxy (per project) */
#define PROXY_DNS_RETRY_MS 200u        /* pause before retrying a failed lookup */

struct proxy_dns_config {
    unsigned ttl_ms, cache_max, retry_ms; /* 0 = the defaults above */
    proxy_resolve_fn *resolve;            /* NULL = getaddrinfo */
    void *resolve_data;
    int stop_fd; /* readable once the proxy stops: cuts the retry pause short; -1 = none */
};
struct proxy_dns;
struct proxy_dns *proxy_dns_new(const struct proxy_dns_config *cfg);
/* Only once no thread is inside proxy_dns_lookup.  Accepts NULL. */
void proxy_dns_free(struct proxy_dns *d);
/* The addresses of name (a valid host name, not an address): a cached answer younger than
 * ttl_ms, else the result of the one lookup in flight for name (started here if there is none;
 * a failure is retried once after retry_ms).  0 with 1..max addresses in out and *ret_n set,
 * or an EAI_* code (gai_strerror); failures are not cached.  Once stop_fd is readable no new
 * lookup starts (EAI_AGAIN).  Thread-safe. */
int proxy_dns_lookup(struct proxy_dns *d, const char *name, struct dbx_addr *out, size_t max,
                     size_t *ret_n);
/* Drop name's cached answer (every address of it failed to connect). */
void proxy_dns_forget(struct proxy_dns *d, const char *name);

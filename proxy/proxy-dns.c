/* proxy/proxy-dns.c: the egress proxy's name lookups: a bounded cache of positive answers,
 * one retry of a failed lookup, and one lookup in flight per name (the contract is in
 * proxy-internal.h).
 *
 * npm opens ~200 connections at once; a resolver that fails part of such a burst (92 of 150
 * parallel getaddrinfo calls failed on a test machine) turned into refused connections.  With
 * one lookup per name in flight the burst becomes one query, and the cache keeps later bursts
 * off the resolver altogether.
 *
 * The lookup stays getaddrinfo, so it follows the host's nsswitch (/etc/hosts, systemd-resolved,
 * a VPN's split DNS) exactly as before; getaddrinfo reports no TTL, so answers are kept for a
 * fixed, short time (PROXY_DNS_TTL_MS) instead of the record's own TTL.  A name whose records
 * change is seen at most that much later; a cached answer whose every address fails to connect
 * is dropped at once (proxy_dns_forget).  Failures are not cached: the failure this exists for
 * is transient, and a cached one would refuse every request for the name until it expired.
 *
 * The cache holds addresses, not decisions: the proxy classifies every address it takes from
 * here on every request and connects to exactly the one it checked. */
#include <netdb.h>
#include <poll.h>
#include <pthread.h>

#include "proxy-internal.h"

struct dns_answer {
    size_t n;
    struct dbx_addr a[PROXY_DNS_MAX_ADDRS];
};

struct dns_entry {
    char name[DBX_HOST_MAX + 1];
    struct dns_answer ans;
    uint64_t expires; /* dbx_now_ms() */
    uint64_t used;    /* proxy_dns.tick of the last use: the least recently used goes first */
};

/* A lookup in progress; everyone asking for the name meanwhile waits for its result. */
struct dns_flight {
    struct dns_flight *next;
    char name[DBX_HOST_MAX + 1];
    unsigned refs; /* the resolving thread and the waiters */
    bool done;
    int gai;
    struct dns_answer ans;
};

struct proxy_dns {
    struct proxy_dns_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t done;        /* some flight finished (broadcast) */
    struct dns_entry *cache;    /* guarded by lock; cfg.cache_max slots */
    size_t ncache;              /* guarded by lock */
    uint64_t tick;              /* guarded by lock */
    struct dns_flight *flights; /* guarded by lock */
};

struct proxy_dns *proxy_dns_new(const struct proxy_dns_config *cfg) {
    struct proxy_dns *d = dbx_xcalloc(1, sizeof(*d));
    d->cfg = *cfg;
    if (!d->cfg.ttl_ms) d->cfg.ttl_ms = PROXY_DNS_TTL_MS;
    if (!d->cfg.cache_max) d->cfg.cache_max = PROXY_DNS_CACHE_MAX;
    if (!d->cfg.retry_ms) d->cfg.retry_ms = PROXY_DNS_RETRY_MS;
    d->cache = dbx_xcalloc(d->cfg.cache_max, sizeof(*d->cache));
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->done, NULL);
    return d;
}

void proxy_dns_free(struct proxy_dns *d) {
    if (!d) return;
    /* every connection thread has been joined: no flight is left */
    pthread_cond_destroy(&d->done);
    pthread_mutex_destroy(&d->lock);
    free(d->cache);
    free(d);
}

/* ---- the resolver ------------------------------------------------------------------------- */

static int resolve_gai(void *data, const char *name, struct dbx_addr *out, size_t max,
                       size_t *ret_n) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int r = getaddrinfo(name, NULL, &hints, &ai);
    if (r != 0) return r;
    size_t n = 0;
    for (struct addrinfo *a = ai; a && n < max; a = a->ai_next)
        if (dbx_addr_from_sockaddr(a->ai_addr, a->ai_addrlen, &out[n]) == 0) n++;
    freeaddrinfo(ai);
    *ret_n = n;
    return 0;
}

static int resolve_once(struct proxy_dns *d, const char *name, struct dns_answer *ans) {
    size_t n = 0;
    int r = d->cfg.resolve
                ? d->cfg.resolve(d->cfg.resolve_data, name, ans->a, PROXY_DNS_MAX_ADDRS, &n)
                : resolve_gai(NULL, name, ans->a, PROXY_DNS_MAX_ADDRS, &n);
    if (r != 0) return r;
    if (n == 0 || n > PROXY_DNS_MAX_ADDRS) return EAI_NODATA;
    ans->n = n;
    return 0;
}

/* The proxy is stopping (its stop pipe is readable). */
static bool stopping(const struct proxy_dns *d) {
    struct pollfd pfd = {d->cfg.stop_fd, POLLIN, 0};
    return d->cfg.stop_fd >= 0 && poll(&pfd, 1, 0) > 0;
}

/* One lookup, and after a failure a short pause (cut short by the stop pipe) and one more. */
static int resolve_retry(struct proxy_dns *d, const char *name, struct dns_answer *ans) {
    int r = resolve_once(d, name, ans);
    if (r == 0) return 0;
    struct pollfd pfd = {d->cfg.stop_fd, POLLIN, 0};
    int k;
    do
        k = poll(&pfd, d->cfg.stop_fd >= 0 ? 1 : 0, (int)d->cfg.retry_ms);
    while (k < 0 && errno == EINTR);
    if (k != 0) return r; /* stopping */
    return resolve_once(d, name, ans);
}

/* ---- the cache (d->lock held) --------------------------------------------------------------- */

static struct dns_entry *cache_find(struct proxy_dns *d, const char *name) {
    for (size_t i = 0; i < d->ncache; i++)
        if (strcmp(d->cache[i].name, name) == 0) return &d->cache[i];
    return NULL;
}

static void cache_drop(struct proxy_dns *d, struct dns_entry *e) {
    *e = d->cache[--d->ncache];
}

/* Store name's answer: in its own slot, a free one, an expired one, or the least recently
 * used one. */
static void cache_put(struct proxy_dns *d, const char *name, const struct dns_answer *ans,
                      uint64_t now) {
    struct dns_entry *e = cache_find(d, name);
    if (!e && d->ncache < d->cfg.cache_max) e = &d->cache[d->ncache++];
    for (size_t i = 0; !e && i < d->ncache; i++)
        if (d->cache[i].expires <= now) e = &d->cache[i];
    if (!e) {
        size_t lru = 0;
        for (size_t i = 1; i < d->ncache; i++)
            if (d->cache[i].used < d->cache[lru].used) lru = i;
        e = &d->cache[lru];
    }
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->ans = *ans;
    e->expires = now + d->cfg.ttl_ms;
    e->used = ++d->tick;
}

static struct dns_flight *flight_find(struct proxy_dns *d, const char *name) {
    for (struct dns_flight *f = d->flights; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

static void flight_unlink(struct proxy_dns *d, struct dns_flight *f) {
    for (struct dns_flight **pf = &d->flights; *pf; pf = &(*pf)->next)
        if (*pf == f) {
            *pf = f->next;
            return;
        }
}

/* Copy a flight's result out and drop our reference. */
static int flight_take(struct dns_flight *f, struct dbx_addr *out, size_t max, size_t *ret_n) {
    int r = f->gai;
    if (r == 0) {
        size_t n = f->ans.n < max ? f->ans.n : max;
        memcpy(out, f->ans.a, n * sizeof(*out));
        *ret_n = n;
    }
    if (--f->refs == 0) free(f);
    return r;
}

/* ---- lookups ------------------------------------------------------------------------------ */

int proxy_dns_lookup(struct proxy_dns *d, const char *name, struct dbx_addr *out, size_t max,
                     size_t *ret_n) {
    pthread_mutex_lock(&d->lock);
    uint64_t now = dbx_now_ms();
    struct dns_entry *e = cache_find(d, name);
    if (e && e->expires > now) {
        size_t n = e->ans.n < max ? e->ans.n : max;
        memcpy(out, e->ans.a, n * sizeof(*out));
        e->used = ++d->tick;
        *ret_n = n;
        pthread_mutex_unlock(&d->lock);
        return 0;
    }
    if (e) cache_drop(d, e);
    struct dns_flight *f = flight_find(d, name);
    if (f) {
        f->refs++;
        while (!f->done)
            pthread_cond_wait(&d->done, &d->lock);
        int r = flight_take(f, out, max, ret_n);
        pthread_mutex_unlock(&d->lock);
        return r;
    }
    /* getaddrinfo cannot be interrupted: once the proxy stops, a request whose head was
     * already read must not start a lookup that proxy_stop then waits for */
    if (stopping(d)) {
        pthread_mutex_unlock(&d->lock);
        return EAI_AGAIN;
    }
    f = dbx_xcalloc(1, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->refs = 1;
    f->next = d->flights;
    d->flights = f;
    pthread_mutex_unlock(&d->lock);

    /* f is ours until done is set: nobody else writes it */
    struct dns_answer ans = {0};
    int r = resolve_retry(d, name, &ans);

    pthread_mutex_lock(&d->lock);
    f->gai = r;
    f->ans = ans;
    f->done = true;
    flight_unlink(d, f);
    if (r == 0) cache_put(d, name, &ans, dbx_now_ms());
    pthread_cond_broadcast(&d->done);
    r = flight_take(f, out, max, ret_n);
    pthread_mutex_unlock(&d->lock);
    return r;
}

void proxy_dns_forget(struct proxy_dns *d, const char *name) {
    pthread_mutex_lock(&d->lock);
    struct dns_entry *e = cache_find(d, name);
    if (e) cache_drop(d, e);
    pthread_mutex_unlock(&d->lock);
}

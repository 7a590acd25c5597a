/* policy/policy.h: what an effective profile means at run time.  Compiles a struct profile
 * into the plan the guest applies (guest/protocol.h struct dbx_plan): cgroup values,
 * capability mask, seccomp BPF (libseccomp), rlimits, user, protected paths, environment,
 * network mode.  Runs the egress proxy of `network.mode = allowlist` boxes, and exports its
 * pure parts (allow patterns, address classes, request and ClientHello parsers) for the tests
 * and the fuzz harnesses.  Library code: no printing. */
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "../common/common.h"
#include "../common/netaddr.h"
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
 * DBX_NET_OPEN_DNS (QEMU user-mode networking's fixed addresses).  Other modes leave the
 * address strings "" and proxy_port 0. */
#define POLICY_PROXY_PORT 3128
#define POLICY_PROXY_URL "http://127.0.0.1:3128"
#define POLICY_NO_PROXY "localhost,127.0.0.1,::1"
#define DBX_NET_OPEN_ADDR "10.0.2.15/24"
#define DBX_NET_OPEN_GW "10.0.2.2"
#define DBX_NET_OPEN_DNS "10.0.2.3"
int policy_compile(const struct profile *p, uint64_t vm_memory, struct dbx_plan *ret,
                   dbx_error **err);

/* ---- egress proxy (policy-proxy.c) ------------------------------------------------------ *
 *
 * An HTTP/1.x forward proxy for one box.  It serves CONNECT host:port (a tunnel) and
 * absolute-URI GET, HEAD and POST to http:// targets (forwarded in origin form), nothing else.
 * Per request:
 *   1. the head is parsed (policy_http_parse: at most POLICY_HTTP_MAX_HEAD bytes and
 *      POLICY_HTTP_MAX_HEADERS headers, strict framing; 408 when no byte arrives for
 *      head_idle_ms or the head is not complete head_total_ms after the connection came);
 *   2. host:port must match an allow pattern (policy_allowed); an IP literal only in canonical
 *      form and only when an address pattern lists it;
 *   3. only then is a name resolved: the `resolve` overrides, else getaddrinfo on the host
 *      through a per-proxy cache of positive answers (a fixed TTL, dns_ttl_ms: getaddrinfo
 *      reports none; at most dns_cache_max names, least recently used evicted), with one
 *      lookup in flight per name shared by every request that needs it, and a failed lookup
 *      retried once; failures are not cached;
 *   4. every address in a refused class (dbx_addr_classify) is dropped unless an address
 *      pattern contains it (policy_addr_refused); the proxy connects (10 s timeout) to exactly
 *      one of the remaining sockaddrs, trying them in order;
 *   5. CONNECT to port 443: after "200 Connection established" the ClientHello is buffered
 *      (at most POLICY_TLS_MAX_RAW bytes, the same two time limits) and the tunnel closed
 *      unless its server_name equals the CONNECT host (an IP literal host needs a hello
 *      without server_name);
 *      CONNECT to other ports is relayed without looking at the bytes;
 *   6. plain http: a Host header must name the target's host:port; the head is rewritten
 *      (origin-form target, Host, Connection; Proxy-* and Keep-Alive/Upgrade dropped) and the
 *      body forwarded by its framing; a kept-alive connection stays pinned to its first
 *      destination, a later request for another one gets 403 and the connection is closed.
 * A refusal before the tunnel is up is answered with an HTTP error (403 for policy, with a
 * body naming the allow entry to add; 400/405/431/505 for bad requests; 502/504 when the
 * destination cannot be reached) and the connection closed.  Each decision is one log line:
 *   TIME VERDICT METHOD HOST:PORT ADDR up=N down=N [reqs=N] [reason="..."]
 * with TIME in UTC ISO 8601 (ms), VERDICT allow, deny or error, ADDR the connected address
 * ("-" if none), up/down the bytes sent to the destination / to the client. */
struct dbx_addr;
/* A resolver: 0 with 1..max addresses of name in out and *ret_n set, or an EAI_* code.  Called
 * from several connection threads at once. */
typedef int policy_resolve_fn(void *data, const char *name, struct dbx_addr *out, size_t max,
                              size_t *ret_n);
struct policy_proxy_config {
    char *const *allow;     /* the profile's network.allow patterns (policy_pattern_parse) */
    char *const *resolve;   /* "name:addr" overrides used instead of DNS for that name (several
                               lines for one name give several addresses), or NULL */
    int log_fd;             /* decision lines appended here (one write each); -1 = none */
    unsigned max_conns;     /* concurrent connections; 0 = 256 */
    unsigned head_idle_ms;  /* a request head or ClientHello pausing longer is cut; 0 = 120 s */
    unsigned head_total_ms; /* ... or taking longer in all; 0 = 300 s */
    unsigned dns_ttl_ms;    /* how long an answer is reused; 0 = 60 s */
    unsigned dns_cache_max; /* names cached; 0 = 256 */
    unsigned dns_retry_ms;  /* pause before the retry of a failed lookup; 0 = 200 ms */
    policy_resolve_fn *dns_resolve; /* for tests: used instead of getaddrinfo; NULL = that */
    void *dns_resolve_data;
};
struct policy_proxy;
/* Validate cfg (an error names the bad pattern or override) and start a proxy with no
 * connections.  cfg's strings are copied; log_fd stays the caller's and must outlive the proxy. */
int policy_proxy_start(const struct policy_proxy_config *cfg, struct policy_proxy **ret,
                       dbx_error **err);
/* Serve one client connection: fd is a connected stream socket whose peer speaks HTTP to the
 * proxy; ownership passes to the proxy in every case.  Starts a thread and returns at once.
 * Fails (fd closed) over max_conns or after policy_proxy_stop began. */
int policy_proxy_serve(struct policy_proxy *p, int fd, dbx_error **err);
/* Close every connection, wait for their threads (a thread inside getaddrinfo finishes that
 * lookup first), free p.  Accepts NULL. */
void policy_proxy_stop(struct policy_proxy *p);

/* ---- addresses, host names, allow patterns (policy-net.c) -------------------------------- */

#define DBX_HOST_MAX 253u /* a DNS name without its trailing dot */

/* A request's host after policy_host_parse. */
struct policy_host {
    bool is_addr;
    struct dbx_addr addr;        /* is_addr */
    char name[DBX_HOST_MAX + 1]; /* lower case, trailing dot removed; for an address its
                                       inet_ntop text (IPv6 without brackets) */
};

/* Parse len bytes of a request host (no port).  Accepted: a host name (letters, digits, '-',
 * '_', labels of 1..63, at most DBX_HOST_MAX bytes, one trailing dot allowed and removed,
 * lower-cased, last label not numeric), a canonical dotted quad (four decimal parts 0..255
 * without leading zeros), or a bracketed IPv6 address without zone ("[::1]").  Everything else
 * is -EINVAL with *why set to a static reason; in particular every other IPv4 spelling
 * (127.1, 2130706433, 0x7f.0.0.1, 0177.0.0.1, "1.2.3.4.") is refused as not canonical. */
int policy_host_parse(const char *s, size_t len, struct policy_host *ret, const char **why);

enum policy_pattern_kind {
    POLICY_PAT_NAME,   /* exactly this host */
    POLICY_PAT_SUFFIX, /* "*.domain": any name ending in ".domain" (not domain itself) */
    POLICY_PAT_ADDR,   /* an address or CIDR network */
};
struct policy_pattern {
    enum policy_pattern_kind kind;
    char name[DBX_HOST_MAX + 1]; /* NAME: the host; SUFFIX: the domain after "*." */
    struct dbx_addr addr;        /* ADDR: the network (host bits zero) */
    unsigned prefix;             /* ADDR: prefix length (32 / 128 for one address) */
    uint16_t port;               /* 0 = ports 443 and 80 */
};
/* Parse one allow entry: "host", "*.domain" (at least two labels), "a.b.c.d", "a.b.c.d/len",
 * an IPv6 address bare ("::1", "fd00::/8") or bracketed ("[::1]", "[fd00::/8]"); names and
 * bracketed/IPv4 forms take an optional ":port" (1..65535).  Names are matched case-
 * insensitively with a trailing dot ignored.  On error -EINVAL and *err names the entry. */
int policy_pattern_parse(const char *s, struct policy_pattern *ret, dbx_error **err);
/* Whether p allows a request to h:port (names match NAME/SUFFIX patterns, addresses ADDR
 * patterns; the port must equal p->port, or be 443 or 80 when p->port is 0). */
bool policy_pattern_match(const struct policy_pattern *p, const struct policy_host *h,
                          uint16_t port);
/* Whether any of the n patterns allows h:port. */
bool policy_allowed(const struct policy_pattern *pats, size_t n, const struct policy_host *h,
                    uint16_t port);
/* NULL when the proxy may connect to a: a public address, or one an ADDR pattern contains
 * (whatever that pattern's port: naming an address lifts its class's refusal).  Else the
 * class name ("loopback", "private", ...). */
const char *policy_addr_refused(const struct policy_pattern *pats, size_t n,
                                const struct dbx_addr *a);

/* ---- HTTP request heads (policy-http.c) -------------------------------------------------- */

#define POLICY_HTTP_MAX_HEAD (16u * 1024u) /* bytes of a request head, request line included */
#define POLICY_HTTP_MAX_HEADERS 100u

enum policy_http_method {
    POLICY_HTTP_CONNECT,
    POLICY_HTTP_GET,
    POLICY_HTTP_HEAD,
    POLICY_HTTP_POST
};
enum policy_body_kind { POLICY_BODY_NONE, POLICY_BODY_LENGTH, POLICY_BODY_CHUNKED };
struct policy_span {
    uint32_t off, len; /* bytes of the head buffer */
};
struct policy_http_req {
    enum policy_http_method method;
    uint8_t minor;           /* HTTP/1.minor: 0 or 1 */
    struct policy_host host; /* the request target's host */
    uint16_t port;           /* CONNECT: required; http://: default 80 */
    struct policy_span path; /* http://: path and query from the target ("/" or "?" first;
                                len 0 = "/"); CONNECT: unused */
    bool keep_alive;         /* Connection / Proxy-Connection and the version's default */
    bool has_host;           /* a Host header was present (and agreed with the target) */
    enum policy_body_kind body;
    uint64_t content_length; /* POLICY_BODY_LENGTH */
    uint32_t head_len;       /* bytes of the head, final CRLF CRLF included */
    uint32_t nheaders;
    struct {
        struct policy_span name, value; /* value without surrounding blanks */
    } headers[POLICY_HTTP_MAX_HEADERS];
};
/* Parse the request head at the start of buf[0..len).  Returns 1 when a complete head is
 * there and valid (*ret filled; the body starts at ret->head_len), 0 when more bytes are
 * needed (only while len < POLICY_HTTP_MAX_HEAD: a head that does not end within it is an
 * error), or < 0 with *err set: -E2BIG head or header count over the cap (431), -EOPNOTSUPP a
 * method or scheme the proxy does not serve (405), -EPROTONOSUPPORT not HTTP/1.0 or 1.1
 * (505), -EACCES a target host that is no valid name or canonical address (403), -EINVAL any
 * other malformation (400): bare CR or LF, obs-fold, control bytes, a blank before a colon,
 * userinfo or fragment in the target, a Host header that differs from the target (or more than
 * one), Content-Length that is not one plain decimal header, Transfer-Encoding other than
 * exactly "chunked" (or on HTTP/1.0), both framing headers, leading blank lines.  Never reads
 * beyond len; *ret is written in any case. */
int policy_http_parse(const uint8_t *buf, size_t len, struct policy_http_req *ret, dbx_error **err);
/* The status line for a policy_http_parse error code (400, 403, 405, 431, 505). */
int policy_http_status(int code);

/* Where a request body ends, fed incrementally. */
struct policy_body {
    enum policy_body_kind kind;
    uint64_t left;     /* LENGTH: body bytes left; CHUNKED: data bytes left in this chunk */
    uint8_t state;     /* chunked parser state (policy-http.c) */
    uint32_t line;     /* bytes of the current chunk-size or trailer line */
    uint32_t trailers; /* trailer lines seen */
    bool done;
};
void policy_body_init(struct policy_body *b, const struct policy_http_req *r);
/* How many of the len bytes at buf still belong to the body (the rest is the next request);
 * b->done once the body is complete.  Chunked framing is checked (hex sizes of at most 16
 * digits, CRLF after every size line and chunk, extensions and trailer lines under 4 KiB, at
 * most 100 trailers); a violation is -EINVAL with *err set. */
ssize_t policy_body_scan(struct policy_body *b, const uint8_t *buf, size_t len, dbx_error **err);

/* ---- TLS ClientHello (policy-tls.c) ------------------------------------------------------ */

#define POLICY_TLS_MAX_HELLO (16u * 1024u) /* the ClientHello handshake message */
#define POLICY_TLS_MAX_RECORDS 64u         /* records it may be split over */
#define POLICY_TLS_MAX_RAW (POLICY_TLS_MAX_HELLO + 4u + 5u * POLICY_TLS_MAX_RECORDS)
/* Find the server_name of the ClientHello at the start of buf[0..len) (TLS records of type
 * handshake, the message possibly split over several).  1: the whole hello is there and
 * ret_sni holds its host_name, lower-cased without a trailing dot ("" when the hello has no
 * server_name extension); 0: more bytes needed (never once len >= POLICY_TLS_MAX_RAW); < 0
 * (-EPROTO) with *err: not a TLS handshake, not a ClientHello, a length or count out of
 * bounds, a server_name that is not one valid host name, duplicate extensions, or bytes after
 * the hello inside its records. */
int policy_tls_sni(const uint8_t *buf, size_t len, char ret_sni[DBX_HOST_MAX + 1], dbx_error **err);

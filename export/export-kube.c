/* export/export-kube.c: the profile as Kubernetes manifests (export.h).  Field names are those of
 * the schemas the output is validated against (tests/kube): Kubernetes core/v1 and
 * networking.k8s.io/v1, agent-sandbox's extensions.agents.x-k8s.io/v1beta1 CRDs
 * (SandboxTemplate, SandboxWarmPool) and Cilium's cilium.io/v2 CiliumNetworkPolicy. */
#define _GNU_SOURCE
#include "export-internal.h"

#include "../common/plan.h" /* DBX_CAPS_ADMIN: what [setup] runs with */
#include "../policy/policy.h"

#include <inttypes.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define LABEL_PROJECT "devbox.dev/project"
#define VOLUME "workspace"
#define WORKSPACE_SIZE "10Gi" /* the volume holds the repository only; adjustable */

/* What one export is building: the inputs, the names, and the list of what does not carry
 * over (short name + one line of detail each). */
struct kx {
    const struct export_input *in;
    const struct export_opts *o;
    const struct profile *p;
    char *name;     /* sanitized project name */
    char *resource; /* "devbox-NAME" */
    char **nc;      /* short names */
    char **detail;  /* "short: detail" lines for the comment block */
};

static void kx_clear(struct kx *k) {
    free(k->name);
    free(k->resource);
    dbx_strv_free(k->nc);
    dbx_strv_free(k->detail);
}

static void not_carried(struct kx *k, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void not_carried(struct kx *k, const char *what, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *d = dbx_xvasprintf(fmt, ap);
    va_end(ap);
    _cleanup_free_ char *line = dbx_xasprintf("%s: %s", what, d);
    k->nc = dbx_strv_push(k->nc, what);
    k->detail = dbx_strv_push(k->detail, line);
}

char *export_sanitize_name(const char *name) {
    char out[EXPORT_NAME_MAX + 1];
    size_t n = 0;
    bool dash = false;
    for (const char *c = name ? name : ""; *c && n < EXPORT_NAME_MAX; c++) {
        char ch = *c;
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
            if (dash && n > 0 && n < EXPORT_NAME_MAX - 1) out[n++] = '-';
            dash = false;
            out[n++] = ch;
        } else {
            dash = true;
        }
    }
    out[n] = '\0';
    return dbx_xstrdup(n ? out : "project");
}

/* ---- small formatting helpers ------------------------------------------------------------- */

/* A Kubernetes quantity for bytes: the largest binary unit that divides it. */
static char *quantity_bytes(uint64_t b) {
    static const char *const units[] = {"Ti", "Gi", "Mi", "Ki"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(units); i++) {
        uint64_t u = UINT64_C(1) << (10 * (4 - i));
        if (b >= u && b % u == 0) return dbx_xasprintf("%" PRIu64 "%s", b / u, units[i]);
    }
    return dbx_xasprintf("%" PRIu64, b);
}

static char *quantity_cpu(uint32_t milli) {
    return milli % 1000 == 0 ? dbx_xasprintf("%" PRIu32, milli / 1000)
                             : dbx_xasprintf("%" PRIu32 "m", milli);
}

/* "NET_ADMIN": Kubernetes spells capabilities upper case without CAP_. */
static char *cap_k8s(int cap) {
    char *s = dbx_xstrdup(profile_cap_name(cap));
    for (char *c = s; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    return s;
}

static void labels(struct kx *k, struct yw *w, int ind) {
    y_line(w, ind, "labels:");
    y_kv(w, ind + 2, "app.kubernetes.io/name", k->name);
    y_kv(w, ind + 2, "app.kubernetes.io/managed-by", "devbox");
    y_kv(w, ind + 2, LABEL_PROJECT, k->name);
}

static void metadata(struct kx *k, struct yw *w, const char *name) {
    y_line(w, 0, "metadata:");
    y_kv(w, 2, "name", name);
    if (k->o->namespace_) y_kv(w, 2, "namespace", k->o->namespace_);
    labels(k, w, 2);
}

static void doc(struct yw *w, const char *api, const char *kind) {
    y_line(w, 0, "---");
    y_kv(w, 0, "apiVersion", api);
    y_kv(w, 0, "kind", kind);
}

/* ---- what does not carry over -------------------------------------------------------------- */

/* The host (IPv6 in brackets, as policy_host_parse takes it) and port the clone container
 * connects to: "scheme://[user@]host[:port]/...", with the scheme's default port, or scp-like
 * "[user@]host:path" over ssh.  NULL when there is no host. */
static char *url_host_port(const char *url, uint16_t *ret_port) {
    static const struct {
        const char *scheme;
        uint16_t port;
    } schemes[] = {{"https://", 443}, {"http://", 80}, {"ssh://", 22}, {"git://", 9418}};
    const char *s = strstr(url, "://");
    bool scp = !s;
    *ret_port = 22;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(schemes); i++)
        if (dbx_str_has_prefix(url, schemes[i].scheme)) *ret_port = schemes[i].port;
    s = s ? s + 3 : url;
    const char *at = strchr(s, '@'), *slash = strchr(s, '/');
    if (at && (!slash || at < slash)) s = at + 1;
    size_t n = *s == '[' ? strcspn(s, "]") + 1 : strcspn(s, ":/");
    if (n == 0 || (*s == '[' && s[n - 1] != ']')) return NULL;
    uint64_t port;
    if (!scp && s[n] == ':') {
        _cleanup_free_ char *digits = dbx_xstrndup(s + n + 1, strcspn(s + n + 1, "/"));
        if (dbx_parse_u64(digits, 1, 65535, &port) == 0) *ret_port = (uint16_t)port;
    }
    return dbx_xstrndup(s, n);
}

/* Whether the allowlist lets the pod reach host:port, by the proxy's own matching
 * (policy_pattern_match): Cilium gets the same names on the same ports. */
static bool allowlist_has(const struct profile *p, const char *host, uint16_t port) {
    struct policy_host h;
    const char *why;
    if (policy_host_parse(host, strlen(host), &h, &why) < 0) return false;
    for (char **a = p->allow; a && *a; a++) {
        struct profile_allow pa;
        if (policy_pattern_parse(*a, &pa, NULL) == 0 && policy_pattern_match(&pa, &h, port))
            return true;
    }
    return false;
}

/* Whether the clone container may take url: `git remote add origin URL` then `git fetch`.
 * Only what a cluster can fetch from: https, http, ssh and git URLs, or scp-like
 * [user@]host:path.  Never a local path (it names nothing in the pod), a word git would read as
 * an option ("-..."), or a remote-helper transport ("ext::cmd" runs cmd): .git/config is the
 * repository's, which a box can write when the profile unprotects it. */
bool export_origin_fetchable(const char *url) {
    static const char *const schemes[] = {"https://", "http://", "ssh://", "git://"};
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f) return false;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(schemes); i++)
        if (dbx_str_has_prefix(url, schemes[i])) return url[strlen(schemes[i])] != '\0';
    /* any other "scheme://" (file://, a helper's) is not scp-like either */
    size_t colon = strcspn(url, ":/");
    return url[0] != '-' && !strstr(url, "://") && colon > 0 && url[colon] == ':' &&
           url[colon + 1] != ':' && url[colon + 1] != '\0';
}

static void collect_workspace(struct kx *k) {
    const struct export_input *in = k->in;
    if (!in->origin_url) {
        not_carried(k, "workspace",
                    "the repository has no 'origin' remote: the workspace volume "
                    "starts empty; copy the repository in (docs/kubernetes.md)");
        return;
    }
    if (!export_origin_fetchable(in->origin_url)) {
        not_carried(
            k, "workspace",
            "origin '%s' is a local path or not a URL a cluster can fetch from (https, "
            "http, ssh, git, or host:path): no clone container; the workspace volume starts "
            "empty (docs/kubernetes.md)",
            in->origin_url);
        return;
    }
    if (in->origin_had_userinfo)
        not_carried(k, "origin credentials",
                    "user:password@ was removed from the origin URL; a private repository needs "
                    "a credential for the clone container (a Secret), which devbox does not write");
    uint16_t port;
    _cleanup_free_ char *host = url_host_port(in->origin_url, &port);
    bool reach = k->p->net_mode == PROFILE_NET_OPEN || (k->p->net_mode == PROFILE_NET_ALLOWLIST &&
                                                        host && allowlist_has(k->p, host, port));
    if (!reach)
        not_carried(k, "workspace clone",
                    "the pod's network policy applies to its init containers too: with network "
                    "'%s' the clone container cannot reach '%s'; populate the volume another way "
                    "(docs/kubernetes.md)",
                    k->p->net_mode == PROFILE_NET_NONE ? "none" : "allowlist",
                    host ? host : in->origin_url);
}

static void collect_security(struct kx *k) {
    const struct export_input *in = k->in;
    const struct profile *p = k->p;
    if (in->uid_unknown)
        not_carried(k, "box user",
                    "[security] user '%s' is a name devbox resolves inside the "
                    "image: the pod sets runAsNonRoot without a uid",
                    p->user);
    else if (in->uid == 0)
        not_carried(k, "non-root user",
                    "the box user is root (uid 0): the pod runs with runAsNonRoot false");
    if (in->uid != 0 && p->caps & ~p->caps_user)
        not_carried(k, "root capabilities",
                    "[security] capabilities are for uid 0 in the box (devbox exec -u root); "
                    "the pod's user is not root and kubectl exec cannot switch users");
    if (in->uid != 0 && p->caps_user)
        not_carried(k, "capabilities_user",
                    "Kubernetes adds capabilities to the bounding set only for a non-root user "
                    "(no ambient capabilities): they are not effective unless a binary has "
                    "file capabilities");
    uint64_t added = p->caps_user | (in->uid == 0 ? p->caps : 0);
    if (p->no_new_privs && (added & (UINT64_C(1) << CAP_SYS_ADMIN)))
        not_carried(k, "capability sys_admin",
                    "Kubernetes refuses CAP_SYS_ADMIN with allowPrivilegeEscalation false "
                    "(no_new_privileges): left out, a narrowing");
    if (p->seccomp == PROFILE_SECCOMP_UNCONFINED)
        not_carried(k, "seccomp",
                    "the profile has no seccomp filter (unconfined): the pod runs "
                    "with seccompProfile Unconfined");
    else if (in->seccomp_json && !strstr(in->seccomp_json, "\"personality\""))
        not_carried(k, "seccomp personality",
                    "the guest filter refuses personality() values but 0, 0x8, 0x20000, 0x20008 "
                    "and 0xffffffff; the OCI profile cannot say so");
    not_carried(k, "self-check",
                "devbox's guest init verifies the policy in force (capabilities, "
                "NoNewPrivs, seccomp, uid, limits, read-only paths) before each "
                "command and fails closed; a pod has no such check");
}

static void collect_limits(struct kx *k) {
    const struct profile *p = k->p;
    not_carried(k, "pids limit",
                "pids.max %" PRIu32 " is recorded as the annotation devbox.dev/pids-limit only; "
                "the limit is the kubelet's podPidsLimit, a node setting",
                p->pids);
    if (p->nproc)
        not_carried(k, "rlimits",
                    "RLIMIT_NOFILE %" PRIu64 " and RLIMIT_NPROC %" PRIu64
                    ": a pod has no rlimit field (the container runtime's defaults apply)",
                    p->nofile, p->nproc);
    else
        not_carried(k, "rlimits",
                    "RLIMIT_NOFILE %" PRIu64
                    ": a pod has no rlimit field (the container runtime's defaults apply)",
                    p->nofile);
    if (p->swap_limit != UINT64_MAX)
        not_carried(k, "swap", "memory.swap.max: swap is the node's (kubelet memorySwap)");
    if (p->io_weight)
        not_carried(k, "io_weight", "io.weight %" PRIu32 ": no pod field", p->io_weight);
    if (p->disk)
        not_carried(k, "disk", "[box] disk: the container's root filesystem lives on the node");
    if (p->kernel != PROFILE_KERNEL_AUTO)
        not_carried(k, "kernel", "[box] kernel '%s': Kata boots its own guest kernel",
                    profile_kernel_name(p->kernel));
}

static void collect_rest(struct kx *k) {
    const struct export_input *in = k->in;
    const struct profile *p = k->p;
    if (in->image_local)
        not_carried(k, "local image",
                    "'%s' was built or imported on this machine: push it to a registry the "
                    "cluster can pull from and change image: below",
                    in->image);
    if (p->secrets_use && p->secrets_use[0]) {
        _cleanup_free_ char *names = dbx_xstrdup("");
        for (char **s = p->secrets_use; *s; s++) {
            char *n = dbx_xasprintf("%s%s%s", names, *names ? ", " : "", *s);
            free(names);
            names = n;
        }
        not_carried(k, "secrets",
                    "[secrets] use %s: devbox's proxy adds the values on the host and the box "
                    "never sees them; in a cluster use a Secret (the pod sees the value) or an "
                    "egress gateway that adds it",
                    names);
    }
    if (in->host_cas)
        not_carried(k, "host CA certificates",
                    "devbox installs your CAs (config.ini [network] ca_files) in every box; "
                    "build them into the image or mount them from a ConfigMap");
    for (size_t i = 0; i < p->nmounts; i++)
        not_carried(k, "mounts", "[mounts] '%s' at '%s': host folders do not exist in a cluster",
                    p->mounts[i].spec, p->mounts[i].guest);
    if (p->net_mode != PROFILE_NET_NONE)
        for (char **r = p->resolve; r && *r; r++) {
            const char *addr = strchr(*r, ':');
            if (addr && (!strncmp(addr + 1, "127.", 4) || !strcmp(addr + 1, "::1")))
                not_carried(k, "resolve", "'%s': loopback in a pod is the pod, not your host", *r);
        }
    if (p->setup_run && p->setup_run[0])
        not_carried(k, "setup",
                    "[setup] runs in the init container 'setup' as root, but an init "
                    "container's root filesystem changes do not reach the agent container (only "
                    "volumes do; devbox keeps them in a derived disk), and it runs under the "
                    "pod's network policy, not [setup] network: bake setup into the image");
    if (k->o->format == EXPORT_FORMAT_SANDBOX)
        for (size_t i = 0; i < p->nports; i++)
            if (p->ports[i].host != p->ports[i].guest) {
                not_carried(k, "ports",
                            "the sandbox's headless Service serves the box's own "
                            "ports: [ports] host port numbers are not used");
                break;
            }
    if (in->idle_stop_s)
        not_carried(k, "idle stop",
                    "devbox stops an idle box after %" PRIu32 "s; a sandbox runs until deleted "
                    "(SandboxClaim lifecycle shutdownTime)",
                    in->idle_stop_s);
}

/* ---- the pod ------------------------------------------------------------------------------ */

static void resources(struct kx *k, struct yw *w, int ind) {
    const struct profile *p = k->p;
    _cleanup_free_ char *cpu = quantity_cpu(p->cpu_milli ? p->cpu_milli : p->cpus * 1000u);
    _cleanup_free_ char *mem = quantity_bytes(p->mem_limit ? p->mem_limit : p->memory);
    y_line(w, ind, "resources:");
    /* requests = limits: the Guaranteed class, and Kata sizes the VM from them */
    static const char *const kinds[] = {"requests", "limits"};
    for (size_t i = 0; i < 2; i++) {
        y_line(w, ind + 2, "%s:", kinds[i]);
        y_kv(w, ind + 4, "cpu", cpu);
        y_kv(w, ind + 4, "memory", mem);
    }
}

static void capabilities(struct yw *w, int ind, uint64_t add) {
    y_line(w, ind, "capabilities:");
    y_line(w, ind + 2, "drop:");
    y_item(w, ind + 2, "ALL");
    if (!add) return;
    y_line(w, ind + 2, "add:");
    for (int c = 0; c <= CAP_LAST_CAP && c < 64; c++) {
        if (!(add & (UINT64_C(1) << c)) || !profile_cap_name(c)) continue;
        _cleanup_free_ char *n = cap_k8s(c);
        y_item(w, ind + 2, n);
    }
}

static void user_context(struct kx *k, struct yw *w, int ind) {
    const struct export_input *in = k->in;
    y_line(w, ind, "runAsNonRoot: %s", in->uid == 0 && !in->uid_unknown ? "false" : "true");
    if (in->uid_unknown) return;
    y_kvn(w, ind, "runAsUser", in->uid);
    y_kvn(w, ind, "runAsGroup", in->gid);
}

static void agent_security(struct kx *k, struct yw *w, int ind) {
    const struct profile *p = k->p;
    uint64_t add = p->caps_user | (k->in->uid == 0 && !k->in->uid_unknown ? p->caps : 0);
    if (p->no_new_privs) add &= ~(UINT64_C(1) << CAP_SYS_ADMIN);
    y_line(w, ind, "securityContext:");
    user_context(k, w, ind + 2);
    y_line(w, ind + 2, "allowPrivilegeEscalation: %s", p->no_new_privs ? "false" : "true");
    /* devbox has no read-only root setting: the box's root filesystem is its own disk */
    y_line(w, ind + 2, "readOnlyRootFilesystem: false");
    capabilities(w, ind + 2, add);
}

static void workspace_mount(struct yw *w, int ind, const char *workdir) {
    y_dkv(w, ind, "name", VOLUME);
    y_kv(w, ind + 2, "mountPath", workdir);
}

/* The clone script takes the URL, directory and commit as arguments ($1..$3), never as text
 * spliced into it.  A volume that already holds .git is a sandbox restarted over its claim:
 * the work in it is kept. */
static const char clone_script[] =
    "set -e\n"
    "cd \"$1\"\n"
    "if [ -e .git ]; then exit 0; fi\n"
    "git init -q .\n"
    "git remote add origin \"$2\"\n"
    "if [ -n \"$3\" ]; then git fetch -q origin && git checkout -q --detach \"$3\"\n"
    "else git fetch -q origin HEAD && git checkout -q --detach FETCH_HEAD; fi\n";

static void init_containers(struct kx *k, struct yw *w, int ind) {
    const struct export_input *in = k->in;
    const struct profile *p = k->p;
    bool setup = p->setup_run && p->setup_run[0];
    const char *origin =
        in->origin_url && export_origin_fetchable(in->origin_url) ? in->origin_url : NULL;
    if (!origin && !setup) return;
    y_line(w, ind, "initContainers:");
    if (origin) {
        y_dkv(w, ind, "name", "clone");
        y_kv(w, ind + 2, "image", in->clone_image ? in->clone_image : in->image);
        y_line(w, ind + 2, "command:");
        y_item(w, ind + 2, "sh");
        y_item(w, ind + 2, "-c");
        y_item(w, ind + 2, clone_script);
        y_item(w, ind + 2, "clone");
        y_item(w, ind + 2, in->workdir);
        y_item(w, ind + 2, origin);
        y_item(w, ind + 2, in->commit ? in->commit : "");
        resources(k, w, ind + 2);
        agent_security(k, w, ind + 2);
        y_line(w, ind + 2, "volumeMounts:");
        workspace_mount(w, ind + 2, in->workdir);
    }
    if (setup) {
        _cleanup_free_ char *script = dbx_xstrdup("set -e");
        for (char **c = p->setup_run; *c; c++) {
            char *s = dbx_xasprintf("%s\n%s", script, *c);
            free(script);
            script = s;
        }
        y_dkv(w, ind, "name", "setup");
        y_kv(w, ind + 2, "image", in->image);
        y_line(w, ind + 2, "command:");
        y_item(w, ind + 2, "sh");
        y_item(w, ind + 2, "-c");
        y_item(w, ind + 2, script);
        y_kv(w, ind + 2, "workingDir", p->setup_workspace ? in->workdir : "/");
        resources(k, w, ind + 2);
        /* as root with what `devbox exec --admin` gets: what package managers are written
         * against (common/plan.h DBX_CAPS_ADMIN) */
        y_line(w, ind + 2, "securityContext:");
        y_line(w, ind + 4, "runAsNonRoot: false");
        y_kvn(w, ind + 4, "runAsUser", 0);
        y_kvn(w, ind + 4, "runAsGroup", 0);
        y_line(w, ind + 4, "allowPrivilegeEscalation: false");
        capabilities(w, ind + 4,
                     (DBX_CAPS_ADMIN | p->caps | p->caps_user) & ~(UINT64_C(1) << CAP_SYS_ADMIN));
        if (p->setup_workspace) {
            y_line(w, ind + 2, "volumeMounts:");
            workspace_mount(w, ind + 2, in->workdir);
        }
    }
}

static void agent_container(struct kx *k, struct yw *w, int ind) {
    const struct export_input *in = k->in;
    const struct profile *p = k->p;
    y_line(w, ind, "containers:");
    y_dkv(w, ind, "name", "agent");
    ind += 2;
    y_kv(w, ind, "image", in->image);
    /* the box runs commands sent to it (devbox exec; here kubectl exec): keep the pod up */
    y_line(w, ind, "command:");
    y_item(w, ind, "sleep");
    y_item(w, ind, "infinity");
    y_kv(w, ind, "workingDir", in->workdir);
    if (p->env && p->env[0]) {
        y_line(w, ind, "env:");
        for (char **e = p->env; *e; e++) {
            const char *eq = strchr(*e, '=');
            _cleanup_free_ char *n = eq ? dbx_xstrndup(*e, (size_t)(eq - *e)) : dbx_xstrdup(*e);
            y_dkv(w, ind, "name", n);
            y_kv(w, ind + 2, "value", eq ? eq + 1 : "");
        }
    }
    if (p->nports) {
        y_line(w, ind, "ports:");
        for (size_t i = 0; i < p->nports; i++) {
            y_dkvn(w, ind, "containerPort", p->ports[i].guest);
            y_kv(w, ind + 2, "protocol", "TCP");
        }
    }
    resources(k, w, ind);
    agent_security(k, w, ind);
    y_line(w, ind, "volumeMounts:");
    workspace_mount(w, ind, in->workdir);
    /* protected paths: the same volume again, read-only over the path (kubelet creates a path
     * missing at the commit as an empty directory, which is still read-only) */
    for (char **x = p->protect; x && *x; x++) {
        _cleanup_free_ char *mp = dbx_xasprintf("%s/%s", in->workdir, *x);
        workspace_mount(w, ind, mp);
        y_kv(w, ind + 2, "subPath", *x);
        y_line(w, ind + 2, "readOnly: true");
    }
}

/* hostAliases from [network] resolve, grouped by address in first-seen order. */
static void host_aliases(struct kx *k, struct yw *w, int ind) {
    const struct profile *p = k->p;
    if (p->net_mode == PROFILE_NET_NONE || !p->resolve || !p->resolve[0]) return;
    y_line(w, ind, "hostAliases:");
    for (size_t i = 0; p->resolve[i]; i++) {
        const char *a = strchr(p->resolve[i], ':');
        if (!a) continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *b = strchr(p->resolve[j], ':');
            seen = b && strcmp(a, b) == 0;
        }
        if (seen) continue;
        y_dkv(w, ind, "ip", a + 1);
        y_line(w, ind + 2, "hostnames:");
        for (size_t j = i; p->resolve[j]; j++) {
            const char *b = strchr(p->resolve[j], ':');
            if (!b || strcmp(a, b) != 0) continue;
            _cleanup_free_ char *n = dbx_xstrndup(p->resolve[j], (size_t)(b - p->resolve[j]));
            y_item(w, ind + 2, n);
        }
    }
}

static void pod_spec(struct kx *k, struct yw *w, int ind) {
    const struct export_input *in = k->in;
    y_kv(w, ind, "runtimeClassName",
         k->o->runtime_class ? k->o->runtime_class : EXPORT_RUNTIME_CLASS_DEFAULT);
    y_kv(w, ind, "hostname", k->p->hostname ? k->p->hostname : "devbox");
    /* the box has no credentials for the cluster, and learns no other service's address */
    y_line(w, ind, "automountServiceAccountToken: false");
    y_line(w, ind, "enableServiceLinks: false");
    host_aliases(k, w, ind);
    y_line(w, ind, "securityContext:");
    user_context(k, w, ind + 2);
    if (!in->uid_unknown) y_kvn(w, ind + 2, "fsGroup", in->gid);
    y_line(w, ind + 2, "seccompProfile:");
    if (in->seccomp_file) {
        y_kv(w, ind + 4, "type", "Localhost");
        y_kv(w, ind + 4, "localhostProfile", in->seccomp_file);
    } else {
        y_kv(w, ind + 4, "type", "Unconfined");
    }
    init_containers(k, w, ind);
    agent_container(k, w, ind);
}

static void pod_metadata(struct kx *k, struct yw *w, int ind) {
    labels(k, w, ind);
    y_line(w, ind, "annotations:");
    _cleanup_free_ char *pids = dbx_xasprintf("%" PRIu32, k->p->pids);
    y_kv(w, ind + 2, "devbox.dev/pids-limit", pids);
    if (k->p->hash[0]) y_kv(w, ind + 2, "devbox.dev/profile-sha256", k->p->hash);
}

static void pvc_spec(struct yw *w, int ind) {
    y_line(w, ind, "accessModes:");
    y_item(w, ind, "ReadWriteOnce");
    y_line(w, ind, "resources:");
    y_line(w, ind + 2, "requests:");
    y_kv(w, ind + 4, "storage", WORKSPACE_SIZE);
}

/* ---- network ------------------------------------------------------------------------------ */

/* The ingress rule for [ports]: the box's ports, from pods of the same namespace (devbox's
 * forwards listen on your loopback: the nearest a cluster has is the namespace). */
static void ingress_rules(struct kx *k, struct yw *w, int ind) {
    const struct profile *p = k->p;
    if (!p->nports) {
        y_line(w, ind, "ingress: []");
        return;
    }
    y_line(w, ind, "ingress:");
    y_line(w, ind, "- from:");
    y_line(w, ind + 2, "- podSelector: {}");
    y_line(w, ind + 2, "ports:");
    for (size_t i = 0; i < p->nports; i++) {
        y_dkvn(w, ind + 2, "port", p->ports[i].guest);
        y_kv(w, ind + 4, "protocol", "TCP");
    }
}

static void egress_rules(struct kx *k, struct yw *w, int ind) {
    if (k->p->net_mode != PROFILE_NET_OPEN) {
        /* none: nothing; allowlist: the CiliumNetworkPolicy adds what is allowed */
        y_line(w, ind, "egress: []");
        return;
    }
    /* open: anywhere but the cloud metadata services and link-local addresses */
    y_line(w, ind, "egress:");
    y_line(w, ind, "- to:");
    y_line(w, ind + 2, "- ipBlock:");
    y_kv(w, ind + 6, "cidr", "0.0.0.0/0");
    y_line(w, ind + 6, "except:");
    y_item(w, ind + 6, "169.254.0.0/16");
    y_line(w, ind + 2, "- ipBlock:");
    y_kv(w, ind + 6, "cidr", "::/0");
    y_line(w, ind + 6, "except:");
    y_item(w, ind + 6, "fe80::/10");
    y_item(w, ind + 6, "fd00:ec2::254/128");
}

static void network_policy(struct kx *k, struct yw *w) {
    doc(w, "networking.k8s.io/v1", "NetworkPolicy");
    metadata(k, w, k->resource);
    y_line(w, 0, "spec:");
    y_line(w, 2, "podSelector:");
    y_line(w, 4, "matchLabels:");
    y_kv(w, 6, LABEL_PROJECT, k->name);
    y_line(w, 2, "policyTypes:");
    y_item(w, 2, "Ingress");
    y_item(w, 2, "Egress");
    ingress_rules(k, w, 2);
    egress_rules(k, w, 2);
}

/* toPorts for an allow entry's port (0: the proxy's defaults, 443 and 80). */
static void to_ports(struct yw *w, int ind, uint16_t port) {
    y_line(w, ind, "toPorts:");
    y_line(w, ind, "- ports:");
    uint16_t ports[2] = {port ? port : 443, 80};
    for (size_t i = 0; i < (port ? 1u : 2u); i++) {
        _cleanup_free_ char *s = dbx_xasprintf("%u", ports[i]);
        y_dkv(w, ind + 2, "port", s);
        y_kv(w, ind + 4, "protocol", "TCP");
    }
}

/* One egress rule per (kind, port) group of allow entries, in the order each group first
 * appears: toFQDNs for names, toCIDR for addresses (a rule may not mix them). */
static void cilium_allow_rules(struct kx *k, struct yw *w, int ind) {
    char **allow = k->p->allow;
    size_t n = dbx_strv_len(allow);
    _cleanup_free_ struct profile_allow *pa = dbx_xcalloc(n ? n : 1, sizeof(*pa));
    _cleanup_free_ bool *done = dbx_xcalloc(n ? n : 1, sizeof(bool));
    for (size_t i = 0; i < n; i++) {
        const char *why;
        if (profile_allow_parse(allow[i], &pa[i], &why) < 0) done[i] = true;
    }
    for (size_t i = 0; i < n; i++) {
        if (done[i]) continue;
        bool addr = pa[i].kind == PROFILE_ALLOW_ADDR;
        y_line(w, ind, addr ? "- toCIDR:" : "- toFQDNs:");
        for (size_t j = i; j < n; j++) {
            if (done[j] || (pa[j].kind == PROFILE_ALLOW_ADDR) != addr || pa[j].port != pa[i].port)
                continue;
            done[j] = true;
            if (addr) {
                char buf[INET6_ADDRSTRLEN];
                _cleanup_free_ char *cidr =
                    dbx_xasprintf("%s/%u", dbx_addr_format(&pa[j].addr, buf), pa[j].prefix);
                y_item(w, ind + 2, cidr);
            } else if (pa[j].kind == PROFILE_ALLOW_NAME) {
                y_dkv(w, ind + 2, "matchName", pa[j].name);
            } else {
                /* devbox's "*.d" is any depth below d: Cilium's "**." (its "*." is one label) */
                _cleanup_free_ char *pat = dbx_xasprintf("**.%s", pa[j].name);
                y_dkv(w, ind + 2, "matchPattern", pat);
            }
        }
        to_ports(w, ind + 2, pa[i].port);
    }
    /* [network] resolve pins an allowed name to an address: hostAliases answers it without DNS,
     * so toFQDNs never learns it; allow the address itself on that name's patterns' ports */
    for (char **r = k->p->resolve; r && *r; r++) {
        const char *colon = strchr(*r, ':');
        if (!colon) continue;
        struct policy_host h;
        const char *why;
        if (policy_host_parse(*r, (size_t)(colon - *r), &h, &why) < 0) continue;
        for (size_t i = 0; i < n; i++) {
            /* any port the pattern itself allows: its own, or 443 (with 80) */
            if (pa[i].kind == PROFILE_ALLOW_ADDR ||
                !policy_pattern_match(&pa[i], &h, pa[i].port ? pa[i].port : 443))
                continue;
            _cleanup_free_ char *cidr =
                dbx_xasprintf("%s/%d", colon + 1, strchr(colon + 1, ':') ? 128 : 32);
            y_line(w, ind, "- toCIDR:");
            y_item(w, ind + 2, cidr);
            to_ports(w, ind + 2, pa[i].port);
        }
    }
}

static void cilium_policy(struct kx *k, struct yw *w) {
    doc(w, "cilium.io/v2", "CiliumNetworkPolicy");
    metadata(k, w, k->resource);
    y_line(w, 0, "spec:");
    y_kv(w, 2, "description",
         "devbox [network] allowlist: DNS to kube-dns, then only the allowed names and "
         "addresses (requires Cilium)");
    y_line(w, 2, "endpointSelector:");
    y_line(w, 4, "matchLabels:");
    y_kv(w, 6, LABEL_PROJECT, k->name);
    y_line(w, 2, "egress:");
    /* DNS through kube-dns, every name visible to Cilium's DNS proxy: what toFQDNs learns the
     * addresses from */
    y_line(w, 2, "- toEndpoints:");
    y_line(w, 4, "- matchLabels:");
    y_kv(w, 8, "k8s:io.kubernetes.pod.namespace", "kube-system");
    y_kv(w, 8, "k8s:k8s-app", "kube-dns");
    y_line(w, 4, "toPorts:");
    y_line(w, 4, "- ports:");
    y_dkv(w, 6, "port", "53");
    y_kv(w, 8, "protocol", "UDP");
    y_dkv(w, 6, "port", "53");
    y_kv(w, 8, "protocol", "TCP");
    y_line(w, 6, "rules:");
    y_line(w, 8, "dns:");
    y_dkv(w, 8, "matchPattern", "*");
    cilium_allow_rules(k, w, 2);
}

static void service(struct kx *k, struct yw *w) {
    const struct profile *p = k->p;
    doc(w, "v1", "Service");
    metadata(k, w, k->resource);
    y_line(w, 0, "spec:");
    y_kv(w, 2, "type", "ClusterIP");
    y_line(w, 2, "selector:");
    y_kv(w, 4, LABEL_PROJECT, k->name);
    y_line(w, 2, "ports:");
    for (size_t i = 0; i < p->nports; i++) {
        _cleanup_free_ char *n = dbx_xasprintf("tcp-%u", p->ports[i].host);
        y_dkv(w, 2, "name", n);
        y_kvn(w, 4, "port", p->ports[i].host);
        y_kvn(w, 4, "targetPort", p->ports[i].guest);
        y_kv(w, 4, "protocol", "TCP");
    }
}

/* ---- documents ---------------------------------------------------------------------------- */

static void sandbox_docs(struct kx *k, struct yw *w) {
    doc(w, "extensions.agents.x-k8s.io/v1beta1", "SandboxTemplate");
    metadata(k, w, k->resource);
    y_line(w, 0, "spec:");
    y_line(w, 2, "podTemplate:");
    y_line(w, 4, "metadata:");
    pod_metadata(k, w, 6);
    y_line(w, 4, "spec:");
    pod_spec(k, w, 6);
    y_line(w, 2, "volumeClaimTemplates:");
    y_line(w, 2, "- metadata:");
    y_kv(w, 6, "name", VOLUME);
    y_line(w, 4, "spec:");
    pvc_spec(w, 6);
    if (k->p->nports) y_line(w, 2, "service: true");
    /* The controller's policy, set explicitly: left out, its "secure default" would allow the
     * public internet, wider than the profile. */
    y_kv(w, 2, "networkPolicyManagement", "Managed");
    y_line(w, 2, "networkPolicy:");
    ingress_rules(k, w, 4);
    egress_rules(k, w, 4);
    /* v1beta1 claims name a warm pool; with no replicas every claim starts a sandbox cold */
    doc(w, "extensions.agents.x-k8s.io/v1beta1", "SandboxWarmPool");
    metadata(k, w, k->resource);
    y_line(w, 0, "spec:");
    y_kvn(w, 2, "replicas", 0);
    y_line(w, 2, "sandboxTemplateRef:");
    y_kv(w, 4, "name", k->resource);
}

static void pod_docs(struct kx *k, struct yw *w) {
    doc(w, "v1", "Pod");
    metadata(k, w, k->resource);
    y_line(w, 2, "annotations:");
    _cleanup_free_ char *pids = dbx_xasprintf("%" PRIu32, k->p->pids);
    y_kv(w, 4, "devbox.dev/pids-limit", pids);
    if (k->p->hash[0]) y_kv(w, 4, "devbox.dev/profile-sha256", k->p->hash);
    y_line(w, 0, "spec:");
    pod_spec(k, w, 2);
    y_line(w, 2, "volumes:");
    y_dkv(w, 2, "name", VOLUME);
    y_line(w, 4, "ephemeral:");
    y_line(w, 6, "volumeClaimTemplate:");
    y_line(w, 8, "metadata:");
    labels(k, w, 10);
    y_line(w, 8, "spec:");
    pvc_spec(w, 10);
    network_policy(k, w);
    if (k->p->nports) service(k, w);
}

static const char *net_name(enum profile_net m) {
    return m == PROFILE_NET_OPEN ? "open" : m == PROFILE_NET_ALLOWLIST ? "allowlist" : "none";
}

static void header(struct kx *k, struct yw *w) {
    const struct export_input *in = k->in;
    const struct profile *p = k->p;
    bool sandbox = k->o->format == EXPORT_FORMAT_SANDBOX;
    y_comment(w, "devbox export kubernetes: project '%s', format %s", k->name,
              sandbox ? "sandbox (agent-sandbox SandboxTemplate + SandboxWarmPool)" : "pod");
    if (p->hash[0]) {
        _cleanup_free_ char *files = dbx_xstrdup("");
        for (char **f = p->files; f && *f; f++) {
            char *s = dbx_xasprintf("%s%s%s", files, *files ? " " : "", *f);
            free(files);
            files = s;
        }
        y_comment(w, "from the effective profile sha256 %s (files: %s)", p->hash, files);
    } else {
        y_comment(w, "from the effective profile: built-in default and config.ini (no devbox.ini)");
    }
    y_comment(w, "image %s%s; runtimeClassName %s (Kata Containers: one VM per pod)", in->image,
              strstr(in->image, "@sha256:") ? "" : " (not pinned: devbox has not pulled it)",
              k->o->runtime_class ? k->o->runtime_class : EXPORT_RUNTIME_CLASS_DEFAULT);
    if (in->origin_url && export_origin_fetchable(in->origin_url))
        y_comment(w, "workspace: cloned from %s at %s into the volume '%s'", in->origin_url,
                  in->commit ? in->commit : "its default branch", VOLUME);
    if (in->seccomp_file)
        y_comment(w,
                  "seccomp: install %s under the kubelet seccomp root "
                  "(/var/lib/kubelet/seccomp/) on every node first (docs/kubernetes.md)",
                  in->seccomp_file);
    y_comment(w, "network %s%s", net_name(p->net_mode),
              p->net_mode == PROFILE_NET_ALLOWLIST
                  ? ": the CiliumNetworkPolicy below requires Cilium (toFQDNs)"
                  : "");
    y_comment(w, "%s", "");
    y_comment(w, "NOT CARRIED OVER (%zu):", dbx_strv_len(k->detail));
    for (char **d = k->detail; d && *d; d++)
        y_comment(w, "- %s", *d);
}

static void seccomp_configmap(struct kx *k, struct yw *w) {
    const char *base = strrchr(k->in->seccomp_file, '/');
    base = base ? base + 1 : k->in->seccomp_file;
    _cleanup_free_ char *name = dbx_xasprintf("%s-seccomp", k->resource);
    doc(w, "v1", "ConfigMap");
    y_comment(w,
              "the seccomp profile the pod names: copy it to /var/lib/kubelet/seccomp/%s on "
              "every node (docs/kubernetes.md); a ConfigMap alone does not install it",
              k->in->seccomp_file);
    metadata(k, w, name);
    y_line(w, 0, "data:");
    y_kv(w, 2, base, k->in->seccomp_json);
}

/* Input no manifest can hold: refuse it, naming the value. */
static int check_input(const struct export_input *in, const struct export_opts *o,
                       dbx_error **err) {
    const struct {
        const char *what, *s;
    } strs[] = {
        {"image", in->image},
        {"origin URL", in->origin_url},
        {"commit", in->commit},
        {"workspace path", in->workdir},
        {"namespace", o->namespace_},
        {"runtime class", o->runtime_class},
        {"clone image", in->clone_image},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(strs); i++)
        if (strs[i].s && !export_utf8_valid(strs[i].s))
            return dbx_error_setx(err, EINVAL, "export: %s is not valid UTF-8", strs[i].what);
    if (!in->profile || !in->image || !*in->image)
        return dbx_error_setx(err, EINVAL, "export: no image");
    if (!in->workdir || in->workdir[0] != '/')
        return dbx_error_setx(err, EINVAL, "export: the workspace path must be absolute");
    if (in->origin_url && in->origin_url[0] == '-')
        return dbx_error_setx(err, EINVAL, "export: origin URL starts with '-'");
    if (in->profile->seccomp != PROFILE_SECCOMP_UNCONFINED &&
        (!in->seccomp_json || !in->seccomp_file || !*in->seccomp_file))
        return dbx_error_setx(err, EINVAL, "export: no seccomp profile for seccomp '%s'",
                              in->profile->seccomp == PROFILE_SECCOMP_STRICT ? "strict"
                                                                             : "default");
    return 0;
}

int export_kubernetes(const struct export_input *in, const struct export_opts *o,
                      struct export_result *ret, dbx_error **err) {
    int r = check_input(in, o, err);
    if (r < 0) return r;
    struct kx k = {.in = in, .o = o, .p = in->profile};
    k.name = export_sanitize_name(in->name);
    k.resource = dbx_xasprintf("devbox-%s", k.name);
    collect_rest(&k);
    collect_security(&k);
    collect_limits(&k);
    collect_workspace(&k);

    struct yw w;
    yw_open(&w);
    header(&k, &w);
    if (o->format == EXPORT_FORMAT_POD)
        pod_docs(&k, &w);
    else
        sandbox_docs(&k, &w);
    /* the policy above denies egress; Cilium's allow rules add to it (policies are unions) */
    if (k.p->net_mode == PROFILE_NET_ALLOWLIST) cilium_policy(&k, &w);
    if (o->seccomp_configmap && in->seccomp_file) seccomp_configmap(&k, &w);
    const char *bad = NULL;
    char *yaml = yw_close(&w);
    if (!yaml) bad = w.bad;
    if (bad) {
        r = dbx_error_setx(err, EINVAL, "export: a value of '%s' is not valid UTF-8", bad);
        kx_clear(&k);
        return r;
    }
    ret->yaml = yaml;
    ret->not_carried = k.nc ? TAKE_PTR(k.nc) : dbx_xcalloc(1, sizeof(char *));
    kx_clear(&k);
    return 0;
}

void export_result_clear(struct export_result *r) {
    free(r->yaml);
    dbx_strv_free(r->not_carried);
    *r = (struct export_result){0};
}

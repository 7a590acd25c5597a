/* export/export.h: a project's effective, trusted profile translated into Kubernetes manifests
 * for an existing cluster engine (`devbox export kubernetes`): an agent-sandbox SandboxTemplate
 * (kubernetes-sigs/agent-sandbox, extensions.agents.x-k8s.io/v1beta1) or a plain Pod, run
 * under Kata Containers through a runtimeClassName, with the profile's security context,
 * resources, seccomp filter, network policy and ports.  What Kubernetes cannot express is
 * named, never dropped: in a comment block at the top of the YAML and in
 * export_result.not_carried.
 *
 * A pure translation: no I/O, no printing, no clock, no environment; the same input gives the
 * same bytes (golden-file tests).  Every string that reaches the YAML is written as a
 * double-quoted scalar with escapes, because profile values (env, setup lines, names) are
 * bytes an untrusted repo chose and must never change the document's structure.  The caller
 * (sandbox/cmd-export.c) gathers the inputs: the profile must already be loaded and allowed
 * (dbx_profile_allowed), exactly as `devbox exec` would require. */
#pragma once

#include "../common/common.h"
#include "../profiles/profiles.h"

#define EXPORT_RUNTIME_CLASS_DEFAULT "kata-qemu"
#define EXPORT_NAME_MAX 40u /* project part of resource names: "devbox-NAME-seccomp" <= 63 */

enum export_format { EXPORT_FORMAT_SANDBOX = 0, EXPORT_FORMAT_POD };

struct export_input {
    const struct profile *profile; /* effective, allowed */
    const char *name;              /* the project directory's basename; sanitized here to a
                                      DNS-1123 label of at most EXPORT_NAME_MAX bytes */
    const char *image;             /* "repo@sha256:..." when devbox pulled it, else the profile's
                                      reference as written */
    bool image_local;              /* built or imported on this machine: no cluster can pull it */
    const char *clone_image;       /* the clone init container's image (needs git); NULL: image */
    const char *origin_url;        /* userinfo already removed by the caller; NULL: no origin */
    bool origin_had_userinfo;      /* the caller removed credentials from the URL */
    const char *commit;            /* HEAD as 40 hex digits, or NULL (unborn branch) */
    const char *workdir;           /* the workspace's absolute path inside the box */
    uint32_t uid, gid;             /* the box user's */
    bool uid_unknown;              /* [security] user is a name only the image can resolve */
    const char *seccomp_json;      /* the OCI seccomp profile; NULL when unconfined */
    const char *seccomp_file;      /* relative to the kubelet seccomp root, e.g.
                                      "devbox/seccomp-default.json"; NULL when unconfined */
    bool host_cas;                 /* devbox installs the user's CA certificates in the box */
    uint32_t idle_stop_s;          /* config.ini [box] idle_stop; 0: never */
};

struct export_opts {
    enum export_format format;
    const char *runtime_class; /* NULL: EXPORT_RUNTIME_CLASS_DEFAULT */
    const char *namespace_;    /* NULL: omitted (kubectl's current namespace) */
    bool seccomp_configmap;    /* also emit a ConfigMap holding seccomp_json (stdout mode,
                                  where no file is written beside the manifests) */
};

struct export_result {
    char *yaml;         /* the manifests, a comment block first, documents after "---" */
    char **not_carried; /* short names of what does not carry over, in the order the comment
                           block lists them; NULL-terminated, never NULL */
};
void export_result_clear(struct export_result *r);

/* The project name as a DNS-1123 label: lower case, [a-z0-9-], runs of anything else as one
 * '-', no '-' at the ends, at most EXPORT_NAME_MAX bytes; "project" if nothing is left.
 * Caller frees. */
char *export_sanitize_name(const char *name);

/* Translate in under o into *ret (set only on success; caller clears it).  -EINVAL with *err
 * naming the value for input no manifest can hold: a string that is not valid UTF-8, a
 * workdir that is not absolute, a missing image or seccomp file.  Never prints. */
int export_kubernetes(const struct export_input *in, const struct export_opts *o,
                      struct export_result *ret, dbx_error **err);

/* Whether the clone container may fetch from url: https://, http://, ssh://, git:// with
 * something after it, or scp-like [user@]host:path; never a local path, a word starting with
 * '-', a remote-helper transport ("ext::..."), or anything with whitespace or control bytes. */
bool export_origin_fetchable(const char *url);

/* The YAML double-quoted form of s (with the quotes): '"' and '\' escaped, control bytes,
 * DEL, C1 controls, U+FEFF and U+FFFE/U+FFFF as \xNN / \uNNNN, other valid UTF-8 as is.
 * NULL when s is not valid UTF-8.  Exported for the unit tests.  Caller frees. */
char *export_yaml_quote(const char *s);

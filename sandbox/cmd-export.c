/* sandbox/cmd-export.c: `devbox export kubernetes [--format sandbox|pod] [--runtime-class RC]
 * [--namespace NS] [--clone-image IMAGE] [-o DIR]`: gather what export_kubernetes translates
 * (the effective, allowed profile, the image's digest, origin and HEAD, the box user and the
 * workspace path), then write the manifests (export/export.h; docs/kubernetes.md). */
#define _GNU_SOURCE
#include "commands.h"

#include "sandbox-internal.h"
#include "../export/export.h"
#include "../mounts/mounts.h"
#include "../policy/policy.h"

#include <getopt.h>
#include <git2.h>

struct export_cmd {
    struct export_opts o;
    const char *dir;         /* -o DIR, or NULL: stdout */
    const char *clone_image; /* --clone-image */
};

static int export_usage(void) {
    fprintf(stderr,
            "usage: devbox export kubernetes [--format sandbox|pod] [--runtime-class RC]\n"
            "                                [--namespace NS] [--clone-image IMAGE] [-o DIR]\n");
    return 125;
}

static int parse(int argc, char **argv, struct export_cmd *c) {
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"runtime-class", required_argument, NULL, 'r'},
        {"namespace", required_argument, NULL, 'n'},
        {"clone-image", required_argument, NULL, 'c'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    /* ':' and opterr = 0: errors are ours (cmd_getopt_error) */
    static const char shortopts[] = ":o:h";
    optind = 0; /* not 1: glibc then starts afresh (its ordering, a bundle left half read) */
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            if (strcmp(optarg, "sandbox") == 0)
                c->o.format = EXPORT_FORMAT_SANDBOX;
            else if (strcmp(optarg, "pod") == 0)
                c->o.format = EXPORT_FORMAT_POD;
            else {
                _cleanup_free_ char *a = dbx_escape(optarg);
                fprintf(stderr, "devbox: export: unknown --format '%s' (sandbox or pod)\n", a);
                return 125;
            }
            break;
        case 'r':
            c->o.runtime_class = optarg;
            break;
        case 'n':
            c->o.namespace_ = optarg;
            break;
        case 'c':
            c->clone_image = optarg;
            break;
        case 'o':
            c->dir = optarg;
            break;
        case 'h': /* with other options; `export --help` alone is the dispatcher's */
            return cmd_usage_of(stdout, "export");
        default: {
            _cleanup_error_ dbx_error *err = NULL;
            cmd_getopt_error("export", ch, argv, shortopts, &err);
            return cmd_fail(&err);
        }
        }
    }
    if (optind != argc - 1 || strcmp(argv[optind], "kubernetes") != 0) {
        if (optind < argc) {
            bool extra = strcmp(argv[optind], "kubernetes") == 0;
            _cleanup_free_ char *a = dbx_escape(argv[optind + extra]);
            fprintf(stderr, "devbox: export: %s '%s'\n",
                    extra ? "unexpected argument" : "unknown target (kubernetes)", a);
            return 125;
        }
        return export_usage();
    }
    return -1;
}

/* "scheme://user:secret@host/p" -> "scheme://host/p"; other URLs as they are (the "git@" of
 * "git@host:path" is a login name, not a credential). */
static char *strip_userinfo(const char *url, bool *ret_stripped) {
    const char *s = strstr(url, "://");
    *ret_stripped = false;
    if (!s) return dbx_xstrdup(url);
    s += 3;
    size_t auth = strcspn(s, "/?#");
    const char *at = memrchr(s, '@', auth);
    if (!at) return dbx_xstrdup(url);
    *ret_stripped = true;
    return dbx_xasprintf("%.*s%s", (int)(s - url), url, at + 1);
}

/* origin's URL and HEAD, read from the repository's files only: libgit2 runs no hooks,
 * filters or credential helpers to read config and refs. */
static int git_origin(const char *root, char **ret_url, char **ret_commit, dbx_error **err) {
    git_libgit2_init();
    git_repository *repo = NULL;
    git_config *cfg = NULL;
    git_buf buf = {0};
    git_oid oid;
    int r = git_repository_open_ext(&repo, root, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    if (r < 0) {
        const git_error *e = git_error_last();
        r = dbx_error_setx(err, EIO, "export: open repository: %s", e ? e->message : "failed");
        goto out;
    }
    if (git_repository_config_snapshot(&cfg, repo) == 0 &&
        git_config_get_string_buf(&buf, cfg, "remote.origin.url") == 0) {
        *ret_url = dbx_xstrdup(buf.ptr);
        git_buf_dispose(&buf);
    }
    if (git_reference_name_to_id(&oid, repo, "HEAD") == 0) {
        char hex[GIT_OID_HEXSZ + 1];
        *ret_commit = dbx_xstrdup(git_oid_tostr(hex, sizeof(hex), &oid));
    }
    r = 0;
out:
    git_config_free(cfg);
    git_repository_free(repo);
    git_libgit2_shutdown();
    return r;
}

/* The image as a cluster can pull it: by digest once devbox pulled it from a registry. */
static char *image_ref(struct cmd_ctx *ctx, const char *name, bool *ret_local) {
    struct dbx_image img = {0};
    _cleanup_error_ dbx_error *err = NULL;
    *ret_local = strcmp(name, "default") == 0;
    if (dbx_image_get(&ctx->paths, name, &img, &err) < 0) return dbx_xstrdup(name);
    char *ref;
    if (img.source && strcmp(img.source, "registry") == 0 && img.digest) {
        /* "reg/repo:tag" -> "reg/repo@sha256:...": the tag follows the last '/' */
        const char *slash = strrchr(img.name, '/'), *at = strchr(img.name, '@');
        const char *colon = strchr(slash ? slash : img.name, ':');
        size_t n = at      ? (size_t)(at - img.name)
                   : colon ? (size_t)(colon - img.name)
                           : strlen(img.name);
        ref = dbx_xasprintf("%.*s@%s", (int)n, img.name, img.digest);
    } else {
        *ret_local = true;
        ref = dbx_xstrdup(img.name);
    }
    dbx_image_clear(&img);
    return ref;
}

/* The box user: the host user's ids (as devbox maps them), root, or uid[:gid]; a name is known
 * only inside the image. */
static void box_user(const struct profile *p, struct export_input *in) {
    uid_t uid;
    gid_t gid;
    mounts_box_ids(&uid, &gid);
    in->uid = uid, in->gid = gid;
    const char *u = p->user ? p->user : "";
    if (!*u) return;
    if (strcmp(u, "root") == 0) {
        in->uid = in->gid = 0;
        return;
    }
    uint64_t a, b;
    _cleanup_free_ char *first = dbx_xstrndup(u, strcspn(u, ":"));
    const char *colon = strchr(u, ':');
    if (dbx_parse_u64(first, 0, UINT32_MAX - 1, &a) == 0) {
        in->uid = (uint32_t)a;
        in->gid = colon && dbx_parse_u64(colon + 1, 0, UINT32_MAX - 1, &b) == 0 ? (uint32_t)b
                                                                                : (uint32_t)a;
    } else {
        in->uid_unknown = true;
    }
}

/* Whether a box of this user's would get the host's CAs: what the supervisor loads, read the
 * same way; a load that fails (the box would not start either) counts as having some. */
static bool host_cas(const struct profile_user *u) {
    _cleanup_free_ char *pem = NULL;
    _cleanup_strv_ char **warnings = NULL;
    return dbx_ca_load(dbx_ca_paths(u), &pem, &warnings, NULL) < 0 || pem[0] != '\0';
}

static int write_out(const char *dir, const char *name, const char *yaml, const char *seccomp_file,
                     const char *json, dbx_error **err) {
    if (dbx_mkdir_p(dir, 0755, err) < 0) return dbx_error_wrap(err, "export: '%s'", dir);
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return dbx_error_set(err, errno, "export: open '%s'", dir);
    _cleanup_free_ char *file = dbx_xasprintf("%s.yaml", name);
    if (dbx_write_file_atomic(fd, file, yaml, strlen(yaml), 0644, err) < 0)
        return dbx_error_wrap(err, "export: write '%s/%s'", dir, file);
    if (!json) return 0;
    const char *base = strrchr(seccomp_file, '/');
    base = base ? base + 1 : seccomp_file;
    if (dbx_write_file_atomic(fd, base, json, strlen(json), 0644, err) < 0)
        return dbx_error_wrap(err, "export: write '%s/%s'", dir, base);
    return 0;
}

static int export_project(struct cmd_ctx *ctx, struct dbx_project *proj, struct export_cmd *c) {
    struct profile p = {0};
    struct profile_user u = {0};
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_free_ char *url = NULL, *commit = NULL, *clean_url = NULL, *image = NULL, *json = NULL,
                        *file = NULL, *name = NULL;
    struct export_result res = {0};
    struct export_input in = {.profile = &p, .workdir = proj->root, .clone_image = c->clone_image};
    const char *slash = strrchr(proj->root, '/');
    size_t n = 0;
    int rc = 125;
    /* what `devbox exec` would run: an untrusted widening profile is refused the same way */
    if (dbx_profile_load(&ctx->paths, proj, &p, &u, &err) < 0 ||
        dbx_profile_allowed(&ctx->paths, proj, &p, &u, &err) < 0 ||
        (ctx->network_none && profile_set(&p, "network.mode", "none", "command line", &err) < 0))
        goto out;
    in.name = slash && slash[1] ? slash + 1 : proj->root;
    name = export_sanitize_name(in.name);
    image = image_ref(ctx, p.image, &in.image_local);
    in.image = image;
    if (git_origin(proj->root, &url, &commit, &err) < 0) goto out;
    if (url) clean_url = strip_userinfo(url, &in.origin_had_userinfo);
    in.origin_url = clean_url;
    in.commit = commit;
    box_user(&p, &in);
    if (p.seccomp != PROFILE_SECCOMP_UNCONFINED) {
        if (policy_seccomp_oci_json(p.seccomp, &json, &err) < 0) goto out;
        file = dbx_xasprintf("devbox/seccomp-%s.json",
                             p.seccomp == PROFILE_SECCOMP_STRICT ? "strict" : "default");
        in.seccomp_json = json;
        in.seccomp_file = file;
    }
    in.host_cas = host_cas(&u);
    in.idle_stop_s = u.idle_stop_s;
    c->o.seccomp_configmap = !c->dir;
    if (export_kubernetes(&in, &c->o, &res, &err) < 0) goto out;
    if (c->dir) {
        if (write_out(c->dir, name, res.yaml, file, json, &err) < 0) goto out;
    } else {
        if (fputs(res.yaml, stdout) == EOF || fflush(stdout) != 0) {
            dbx_error_set(&err, errno, "export: write to stdout");
            clearerr(stdout); /* told here, with the reason: not again by cmd_stdout_done */
            goto out;
        }
    }
    n = dbx_strv_len(res.not_carried);
    if (n) {
        fprintf(stderr,
                "devbox: warning: %zu settings do not carry over to Kubernetes (listed at the top "
                "of the output): ",
                n);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", res.not_carried[i]);
        fputc('\n', stderr);
    }
    rc = 0;
out:
    if (rc) rc = cmd_fail(&err);
    export_result_clear(&res);
    profile_clear(&p);
    profile_user_clear(&u);
    return rc;
}

int cmd_export(struct cmd_ctx *ctx, int argc, char **argv) {
    struct export_cmd c = {0};
    int rc = parse(argc, argv, &c);
    if (rc >= 0) return rc;
    struct dbx_project proj = {0};
    rc = cmd_project(ctx, &proj);
    if (rc) return rc;
    rc = export_project(ctx, &proj, &c);
    dbx_project_clear(&proj);
    return rc;
}

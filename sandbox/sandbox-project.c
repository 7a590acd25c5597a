/* sandbox/sandbox-project.c: which project the user means, and its persistent record. */
#define _GNU_SOURCE
#include "sandbox.h"

#include <dirent.h>
#include <git2.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <time.h>

void dbx_project_clear(struct dbx_project *p) {
    if (!p) return;
    free(p->root);
    free(p->cwd);
    free(p->state_dir);
    free(p->data_dir);
    free(p->run_dir);
    *p = (struct dbx_project){0};
}

static void project_fill(const struct dbx_paths *paths, struct dbx_project *p) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)p->root, strlen(p->root), md);
    for (int i = 0; i < 8; i++)
        snprintf(p->id + 2 * i, 3, "%02x", md[i]);
    p->state_dir = dbx_xasprintf("%s/projects/%s", paths->state, p->id);
    p->data_dir = dbx_xasprintf("%s/projects/%s", paths->data, p->id);
    p->run_dir = dbx_xasprintf("%s/%s", paths->run, p->id);
}

/* The work tree top: the nearest directory, from `dir` up, holding a `.git` entry (a
 * directory, or a gitfile for worktrees and submodules).  Repo configuration such as
 * core.worktree is deliberately not consulted: the share is the directory the user is in,
 * never one a repo file names. */
static int walk_to_dotgit(const char *dir, char **ret) {
    _cleanup_free_ char *d = dbx_xstrdup(dir);
    for (;;) {
        _cleanup_free_ char *dotgit = dbx_xasprintf("%s/.git", strcmp(d, "/") ? d : "");
        struct stat st;
        if (lstat(dotgit, &st) == 0 && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
            *ret = TAKE_PTR(d);
            return 0;
        }
        char *slash = strrchr(d, '/');
        if (!slash || slash == d) return -ENOENT;
        *slash = '\0';
    }
}

/* libgit2 decides whether `start` is inside a git work tree the first time devbox meets a
 * project (and whenever its VM starts): repository discovery with libgit2, which must agree
 * with our own walk.  libgit2's global init costs ~10 ms (it sets up OpenSSL and reads the CA
 * bundle), so commands on a project devbox already knows use the walk alone. */
static int git_check(const char *start, const char *root, dbx_error **err) {
    git_libgit2_init();
    git_buf buf = {0};
    int r = git_repository_discover(&buf, start, 0, NULL);
    _cleanup_free_ char *gitdir = r == 0 ? dbx_xstrdup(buf.ptr) : NULL;
    git_buf_dispose(&buf);
    git_libgit2_shutdown();
    if (r < 0 || !root)
        return dbx_error_set(err, 0, "'%s' is not inside a git work tree (use -C DIR)", start);
    return 0;
}
int dbx_project_find(const struct dbx_paths *paths, const char *dir, bool validate,
                     struct dbx_project *ret, dbx_error **err) {
    struct dbx_project p = {0};
    const char *start = dir ? dir : ".";
    p.cwd = realpath(start, NULL);
    if (!p.cwd) return dbx_error_set(err, errno, "'%s'", start);
    struct stat st;
    if (stat(p.cwd, &st) < 0 || !S_ISDIR(st.st_mode)) {
        dbx_project_clear(&p);
        return dbx_error_set(err, 0, "'%s'", start);
    }
    if (walk_to_dotgit(p.cwd, &p.root) < 0) p.root = NULL;
    _cleanup_free_ char *rec = NULL;
    if (p.root) {
        project_fill(paths, &p);
        rec = dbx_xasprintf("%s/project.json", p.state_dir);
    }
    if ((!rec || access(rec, F_OK) < 0 || validate) && git_check(p.cwd, p.root, err) < 0) {
        dbx_project_clear(&p);
        return -1;
    }
    if (strlen(p.root) > 3000) {
        dbx_project_clear(&p);
        return dbx_error_set(err, 0, "project path is too long");
    }
    *ret = p;
    return 0;
}

/* ---- record ----------------------------------------------------------------------------- */

void dbx_project_rec_clear(struct dbx_project_rec *r) {
    if (!r) return;
    free(r->root);
    free(r->image);
    free(r->base);
    free(r->setup);
    *r = (struct dbx_project_rec){0};
}

int dbx_project_rec_load(const char *state_dir, struct dbx_project_rec *ret, dbx_error **err) {
    _cleanup_free_ char *path = dbx_xasprintf("%s/project.json", state_dir);
    _cleanup_free_ char *buf = NULL;
    size_t len;
    if (dbx_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len, err) < 0) return -1;
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) return dbx_error_set(err, 0, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    const char *root = NULL, *image = NULL, *base = NULL, *setup = "";
    json_int_t created = 0;
    /* "setup" is absent in records from before [setup] existed */
    int r = json_unpack_ex(j, &je, JSON_STRICT, "{s:s, s:s, s:s, s:I, s?s}", "root", &root, "image",
                           &image, "base", &base, "created", &created, "setup", &setup);
    if (r == 0) {
        *ret = (struct dbx_project_rec){dbx_xstrdup(root), dbx_xstrdup(image), dbx_xstrdup(base),
                                        (int64_t)created, dbx_xstrdup(setup)};
    }
    json_decref(j);
    if (r < 0) return dbx_error_set(err, 0, "%s: %s", path, je.text);
    return 0;
}

int dbx_project_rec_save(const char *state_dir, const struct dbx_project_rec *rec,
                         dbx_error **err) {
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s}", "root", rec->root, "image", rec->image,
                          "base", rec->base, "created", (json_int_t)rec->created, "setup",
                          rec->setup ? rec->setup : "");
    if (!j) return dbx_error_set(err, 0, "encode project record");
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    if (!s) dbx_oom_hook();
    _cleanup_close_ int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = dfd < 0 ? dbx_error_set(err, errno, "open '%s'", state_dir)
                    : dbx_write_file_atomic(dfd, "project.json", s, strlen(s), 0600, err);
    free(s);
    return r;
}

int dbx_project_list(const struct dbx_paths *paths, char ***ret_ids, dbx_error **err) {
    _cleanup_free_ char *dir = dbx_xasprintf("%s/projects", paths->state);
    char **ids = dbx_xcalloc(1, sizeof(char *));
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            *ret_ids = ids;
            return 0;
        }
        dbx_strv_free(ids);
        return dbx_error_set(err, errno, "open '%s'", dir);
    }
    struct dirent *de;
    while ((de = readdir(d)))
        if (strlen(de->d_name) == 16 && strspn(de->d_name, "0123456789abcdef") == 16)
            ids = dbx_strv_push(ids, de->d_name);
    closedir(d);
    *ret_ids = ids;
    return 0;
}

/* tests/unit/test-mounts-protected.c: protected paths enforced on the host, in virtiofsd's own
 * mount namespace (R2), as root and rootless (DBX_TEST_USER, default "dbxtest", when the test
 * runs as root).
 *
 * A stand-in for virtiofsd (a shell script, passed as cfg.virtiofsd) runs inside the namespace
 * as namespace root, i.e. with the powers a guest request has there, and tries what a hostile
 * guest would: write, rename, remove, hard-link protected paths and rename their parents; then
 * does what git in the box must still do: add, commit, branch.  Afterwards the host must see no
 * mounts and protected files unchanged (bytes, inode, mtime, ctime).  Also: symlinked paths and
 * parents are refused, a worktree's `.git` file is protected, openat2-less kernels take the
 * O_NOFOLLOW walk, malformed lists fail before fork, and the real virtiofsd still starts (its
 * sandbox binds the source recursively and pivots into it) and answers GET_FEATURES. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "mounts/mounts-internal.h"
#include "tests/unit/devbox-bin.h"

#include "tests/unit/helpers-vfs.h"
#include "tests/unit/helpers.h"

#define GIT "/usr/bin/git"

static const char *const default_protected[] = {".git/hooks", ".git/config", ".gitmodules",
                                                "devbox.ini", NULL};

static void path_in(const struct vfs_env *e, const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", e->src, name);
}

static void write_in(const struct vfs_env *e, const char *name, const char *text) {
    char p[256];
    path_in(e, name, p, sizeof(p));
    test_write_file(p, text, 0644);
}

static char *slurp(const char *path) {
    char *buf = NULL;
    CHECK(dbx_read_file_at(AT_FDCWD, path, 1 << 20, &buf, NULL, NULL) == 0, "read '%s'", path);
    return buf;
}

/* Run argv (absolute) in dir with a minimal environment that keeps the host's git config out. */
static void run_in(const char *dir, char *const argv[]) {
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %m");
    if (pid == 0) {
        char *envp[] = {"HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C",
                        "PATH=/usr/bin:/bin", NULL};
        if (chdir(dir) < 0) _exit(127);
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        dup2(null, 1);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %m");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %s failed: %#x", argv[0], argv[1],
          status);
}

/* A git repository with one commit, a devbox.ini, and no .gitmodules. */
static void make_repo(const struct vfs_env *e) {
    if (access(GIT, X_OK) < 0) {
        fprintf(stderr, "skip: no %s\n", GIT);
        _exit(SKIP_CODE);
    }
    run_in(e->src, (char *const[]){GIT, "init", "-q", NULL});
    write_in(e, "devbox.ini", "[vm]\ncpus = 2\n");
    write_in(e, "README", "hello\n");
    run_in(e->src, (char *const[]){GIT, "add", "devbox.ini", "README", NULL});
    run_in(e->src, (char *const[]){GIT, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                                   "-m", "init", NULL});
}

/* What must not change on the host: bytes, inode, mtime and ctime. */
struct snap {
    char *bytes;
    struct stat st;
};

static void take_snap(const struct vfs_env *e, const char *name, struct snap *s) {
    char p[256];
    path_in(e, name, p, sizeof(p));
    CHECK(lstat(p, &s->st) == 0, "lstat '%s': %m", p);
    if (S_ISREG(s->st.st_mode)) {
        s->bytes = slurp(p);
    } else { /* a directory: its sorted listing */
        struct dirent **list;
        int n = scandir(p, &list, NULL, alphasort);
        CHECK(n >= 0, "scandir '%s': %m", p);
        s->bytes = dbx_xstrdup("");
        for (int i = 0; i < n; i++) {
            char *next = dbx_xasprintf("%s%s\n", s->bytes, list[i]->d_name);
            free(s->bytes);
            s->bytes = next;
            free(list[i]);
        }
        free(list);
    }
}

static void check_snap(const struct vfs_env *e, const char *name, const struct snap *before) {
    struct snap now;
    take_snap(e, name, &now);
    CHECK(!strcmp(now.bytes, before->bytes), "'%s' changed:\n%s\nwas:\n%s", name, now.bytes,
          before->bytes);
    CHECK(now.st.st_ino == before->st.st_ino, "'%s' replaced (inode)", name);
    CHECK(now.st.st_mtim.tv_sec == before->st.st_mtim.tv_sec &&
              now.st.st_mtim.tv_nsec == before->st.st_mtim.tv_nsec,
          "'%s' mtime changed", name);
    CHECK(now.st.st_ctim.tv_sec == before->st.st_ctim.tv_sec &&
              now.st.st_ctim.tv_nsec == before->st.st_ctim.tv_nsec,
          "'%s' ctime changed", name);
    CHECK(now.st.st_mode == before->st.st_mode, "'%s' mode changed", name);
    free(now.bytes);
}

/* Nothing of ours is mounted in the host's (our) namespace. */
static void check_no_host_mounts(const struct vfs_env *e) {
    char *mi = slurp("/proc/self/mountinfo");
    CHECK(!strstr(mi, e->dir), "mount visible on the host:\n%s", mi);
    free(mi);
}

/* The stand-in: header (finds the source, cds there, sends all output to $out) + body. */
static void write_probe(const struct vfs_env *e, const char *script, const char *body) {
    _cleanup_free_ char *text = dbx_xasprintf(
        "#!/bin/sh\n"
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH\n"
        "LC_ALL=C HOME=/nonexistent GIT_CONFIG_NOSYSTEM=1; export LC_ALL HOME "
        "GIT_CONFIG_NOSYSTEM\n"
        "for a; do case \"$a\" in source=*) src=\"${a#source=}\";; esac; done\n"
        "cd \"$src\" || exit 1\n"
        "exec >\"%s/probe.out\" 2>&1\n"
        "RO='Read-only file system' BUSY='Device or resource busy' "
        "XDEV='Invalid cross-device link' PERM='Operation not permitted'\n"
        /* fails WANT CMD...: CMD must fail, and say WANT ("" = any failure) */
        "fails() { want=\"$1\"; shift\n"
        "  if out=$(\"$@\" 2>&1); then echo \"FAIL (it worked): $*\"; return; fi\n"
        "  case \"$out\" in *\"$want\"*) echo \"ok: $* -> ${want:-failed}\";;\n"
        "  *) echo \"FAIL: $*: $out\";; esac; }\n"
        "works() { if out=$(\"$@\" 2>&1); then echo \"ok: $*\"; else echo \"FAIL: $*: $out\"; "
        "fi; }\n"
        /* git runs as the user's namespace uid, as in the box (namespace root would trip git's
         * safe.directory check on the user's repository when rootless) */
        "asuser() { setpriv --reuid=%u --regid=%u --clear-groups \"$@\"; }\n"
        "%s"
        "echo done\n",
        e->dir, (unsigned)e->map.box_uid, (unsigned)e->map.box_gid, body);
    test_write_file(script, text, 0755);
}

static void write_proc(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0 && dbx_write_all(fd, text, strlen(text)) == 0, "write '%s': %m", path);
    close(fd);
}

/* Stand-in for the spawn where it cannot be used: a user + mount namespace of our own (only
 * our uid mapped, to 0), / made private, then mounts_apply_protected and exec, as the child of
 * mounts_virtiofsd_spawn does. */
static pid_t spawn_own_ns(const struct vfs_env *e, const char *const *protected, const char *script,
                          void (*before)(void)) {
    uid_t uid = getuid();
    gid_t gid = getgid();
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %m");
    if (pid > 0) return pid;
    char map[64];
    /* The test dropped from root to the test user, which made us non-dumpable: /proc/self/
     * would stay root's and the id maps unwritable. */
    prctl(PR_SET_DUMPABLE, 1);
    CHECK(unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0, "unshare: %m");
    write_proc("/proc/self/setgroups", "deny");
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
    write_proc("/proc/self/uid_map", map);
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
    write_proc("/proc/self/gid_map", map);
    CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "make / private: %m");
    if (before) before();
    dbx_error *err = NULL;
    CHECK(mounts_apply_protected(e->src, protected, &err) == 0, "apply: %s", err->msg);
    _cleanup_free_ char *arg = dbx_xasprintf("source=%s", e->src);
    execl(script, script, "--fd=3", "-o", arg, (char *)NULL);
    CHECK(false, "exec: %m");
}

/* Spawn the probe (or run it in a namespace of our own); it must run to the end with no FAIL
 * line.  Returns its output. */
/* The next probe's share is read-only as a whole (struct mounts_vfs_config.readonly). */
static bool probe_readonly;
/* The next probe's read-write islands (struct mounts_vfs_config.writable), or NULL. */
static const char *const *probe_writable;
static bool probe_gitdir;

static char *run_probe_how(struct vfs_env *e, const char *const *protected, const char *body,
                           void (*own_ns_before)(void)) {
    char script[128], out[128], log[4096] = "";
    snprintf(script, sizeof(script), "%s/probe", e->dir);
    snprintf(out, sizeof(out), "%s/probe.out", e->dir);
    write_probe(e, script, body);
    pid_t pid;
    if (own_ns_before) {
        pid = spawn_own_ns(e, protected, script, own_ns_before);
    } else {
        struct mounts_vfs_config cfg = vfs_env_config(e, protected);
        cfg.virtiofsd = script;
        cfg.readonly = probe_readonly;
        cfg.writable = probe_writable;
        cfg.gitdir = probe_gitdir;
        dbx_error *err = NULL;
        pid = mounts_virtiofsd_spawn(&cfg, &e->map, &err);
        CHECK(pid > 0, "spawn: %s", err ? err->msg : "?");
    }
    int status = -1;
    CHECK(test_wait_exit(pid, 30000, &status), "probe did not finish");
    vfs_read_log(e, log, sizeof(log));
    char *res = slurp(out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "probe status %#x: %s\n%s", status, log,
          res);
    CHECK(!strstr(res, "FAIL") && strstr(res, "\ndone\n"), "probe:\n%s", res);
    unlink(out);
    return res;
}

static char *run_probe(struct vfs_env *e, const char *const *protected, const char *body) {
    return run_probe_how(e, protected, body, NULL);
}

static void expect_missing(const struct vfs_env *e, const char *const *paths, const char *want) {
    char **missing = NULL;
    dbx_error *err = NULL;
    CHECK(mounts_protected_scan(e->src, paths, &missing, &err) == 0, "scan: %s", err->msg);
    char got[512] = "";
    for (size_t i = 0; missing && missing[i]; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "", missing[i]);
    CHECK(!strcmp(got, want), "missing: '%s', want '%s'", got, want);
    dbx_strv_free(missing);
}

/* ---- scenarios ------------------------------------------------------------------------- */

static void scen_enforced(struct vfs_env *e) {
    make_repo(e);
    static const char *const names[] = {"devbox.ini", ".git/config", ".git/hooks", ".git"};
    struct snap before[DBX_ARRAY_SIZE(names)];
    for (size_t i = 0; i < DBX_ARRAY_SIZE(names); i++)
        take_snap(e, names[i], &before[i]);
    struct snap hook_before;
    take_snap(e, ".git/hooks/pre-commit.sample", &hook_before);
    expect_missing(e, default_protected, ".gitmodules");

    char *res = run_probe(
        e, default_protected,
        /* the protected top-level file */
        "fails \"$RO\" sh -c 'echo x >> devbox.ini'\n"
        "fails \"$RO\" sh -c ': > devbox.ini'\n"
        "fails \"$RO\" chmod 0777 devbox.ini\n"
        "fails \"$RO\" chown 12345 devbox.ini\n"
        "fails \"$RO\" touch devbox.ini\n"
        "fails \"$BUSY\" mv devbox.ini x\n"
        "fails \"$BUSY\" mv README devbox.ini\n"
        "fails \"$BUSY\" rm -f devbox.ini\n"
        "fails \"$XDEV\" ln devbox.ini y\n"
        /* the parent-rename bypass, and replacing parents */
        "fails \"$BUSY\" mv .git .git.old\n"
        /* (the name guard refuses a new `.git` before the kernel sees the mount point) */
        "fails \"$PERM\" sh -c 'mkdir z && mv -T z .git'\n"
        "fails \"$BUSY\" mv .git/hooks .git/hooks.old\n"
        "fails \"$BUSY\" mv .git/config .git/config.old\n"
        "fails \"$BUSY\" mv -T .git/objects .git/hooks\n"
        "rmdir z\n"
        /* hooks */
        "fails \"$RO\" rm -rf .git/hooks\n"
        "fails \"$RO\" touch .git/hooks/new\n"
        "fails \"$RO\" sh -c 'echo \"#!/bin/sh\" > .git/hooks/pre-commit'\n"
        "fails \"$RO\" chmod +x .git/hooks/pre-commit.sample\n"
        "fails \"$RO\" mkdir .git/hooks/d\n"
        "fails \"$XDEV\" ln .git/hooks/pre-commit.sample .git/pc\n"
        "fails \"$RO\" ln README .git/hooks/pre-commit\n"
        /* config: neither by hand nor by git (config.lock, then rename over a mount point) */
        "fails \"$RO\" sh -c 'echo \"[core] hooksPath = /tmp\" >> .git/config'\n"
        "fails \"$BUSY\" rm -f .git/config\n"
        "fails \"$XDEV\" ln .git/config .git/config2\n"
        "fails '' asuser git config core.hooksPath /tmp\n"
        "rm -f .git/config.lock\n"
        /* the rest of .git is the repository's working state and stays writable */
        "works touch .git/index2\n"
        "works mkdir -p .git/refs/heads/y\n"
        "works rm .git/index2\n"
        "works rmdir .git/refs/heads/y\n"
        "works asuser git -c user.name=a -c user.email=b commit -q --allow-empty -m x\n"
        "works asuser sh -c 'echo data > f'\n"
        "works asuser git add f\n"
        "works asuser git -c user.name=a -c user.email=b commit -q -m y\n"
        "works asuser git branch b2\n"
        "works asuser git checkout -q -b b3\n"
        "works asuser git -c user.name=a -c user.email=b commit -q --allow-empty -m z\n"
        "works asuser git gc -q\n"
        "works test \"$(asuser git rev-list --count HEAD)\" = 4\n"
        /* a protected path that does not exist stays missing (the name guard) */
        "fails \"$PERM\" touch .gitmodules\n"
        "awk '{print $5, $6}' /proc/self/mountinfo | grep \"$src\"\n");
    fprintf(stderr, "    (%s: probe passed)\n", e->map.rootless ? "rootless" : "root");
    /* The namespace's mounts, as the probe saw them: .git rw, the three others read-only. */
    char want[256];
    snprintf(want, sizeof(want), "%s/.git rw,", e->src);
    CHECK(strstr(res, want), "no rw bind of .git:\n%s", res);
    static const char *const ro[] = {"devbox.ini", ".git/config", ".git/hooks"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ro); i++) {
        snprintf(want, sizeof(want), "%s/%s ro,nosuid,nodev", e->src, ro[i]);
        CHECK(strstr(res, want), "no ro bind of %s:\n%s", ro[i], res);
    }
    free(res);

    check_no_host_mounts(e);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(names) - 1; i++)
        check_snap(e, names[i], &before[i]);
    check_snap(e, ".git/hooks/pre-commit.sample", &hook_before);
    struct stat st;
    struct snap git_now;
    take_snap(e, ".git", &git_now);
    CHECK(git_now.st.st_ino == before[3].st.st_ino, ".git replaced");
    static const char *const absent[] = {
        ".git.old", "x", "y", ".git/config2", ".git/pc", ".git/hooks.old", ".git/hooks/new", "z"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(absent); i++) {
        char p[256];
        path_in(e, absent[i], p, sizeof(p));
        CHECK(lstat(p, &st) < 0 && errno == ENOENT, "'%s' exists", absent[i]);
    }
}

/* openat2 fails with ENOSYS (seccomp, inherited by the spawned child): the O_NOFOLLOW walk. */
static void block_openat2(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = DBX_ARRAY_SIZE(f), .filter = f};
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "NO_NEW_PRIVS: %m");
    CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0, "seccomp: %m");
    CHECK(syscall(SYS_openat2, AT_FDCWD, "/", NULL, 0) < 0 && errno == ENOSYS, "openat2 works");
}

static void scen_no_openat2(struct vfs_env *e) {
    make_repo(e);
    static const char body[] = "fails \"$RO\" sh -c 'echo x >> devbox.ini'\n"
                               "fails \"$BUSY\" mv devbox.ini x\n"
                               "fails \"$BUSY\" mv .git .git.old\n"
                               "fails \"$RO\" touch .git/hooks/new\n"
                               "fails \"$RO\" sh -c 'echo >> .git/config'\n"
                               "works touch .git/index2\n"
                               "works rm .git/index2\n";
    if (!e->map.rootless) {
        block_openat2();
        free(run_probe(e, default_protected, body));
    } else {
        /* An unprivileged seccomp filter needs NO_NEW_PRIVS, under which the setuid newuidmap
         * the rootless spawn runs cannot work: use a namespace of our own instead. */
        free(run_probe_how(e, default_protected, body, block_openat2));
        block_openat2();
    }
    check_no_host_mounts(e);
    expect_missing(e, default_protected, ".gitmodules");
    /* Symlinks are refused the same way without openat2. */
    char p[256];
    path_in(e, "link", p, sizeof(p));
    CHECK(symlink(".git", p) == 0, "symlink: %m");
    static const char *const via_link[] = {"link/hooks", NULL};
    dbx_error *err = NULL;
    char **missing = NULL;
    CHECK(mounts_protected_scan(e->src, via_link, &missing, &err) == -ELOOP, "symlink accepted");
    dbx_error_free(&err);
    path_in(e, ".gitmodules", p, sizeof(p));
    CHECK(symlink("README", p) == 0, "symlink: %m");
    CHECK(mounts_protected_scan(e->src, default_protected, &missing, &err) == -ELOOP,
          "symlink accepted");
    dbx_error_free(&err);
    if (!e->map.rootless) {
        struct mounts_vfs_config cfg = vfs_env_config(e, via_link);
        cfg.virtiofsd = "/bin/true";
        CHECK(mounts_virtiofsd_spawn(&cfg, &e->map, &err) == -ELOOP, "symlink accepted: %s",
              err ? err->msg : "no error");
    }
}

/* A symlink at a protected path or at a parent: refused before virtiofsd runs, whether the link
 * points outside the share or inside it. */
static void scen_symlinks(struct vfs_env *e) {
    make_repo(e);
    char p[256], q[256], marker[128];
    path_in(e, "ran", marker, sizeof(marker));
    char script[128];
    snprintf(script, sizeof(script), "%s/probe", e->dir);
    write_probe(e, script, "touch ran\n");

    path_in(e, ".git/hooks", p, sizeof(p));
    path_in(e, ".git/hooks.real", q, sizeof(q));
    CHECK(rename(p, q) == 0, "rename: %m");
    struct {
        const char *link, *target;
        const char *const *paths;
        const char *msg;
    } cases[] = {
        {".git/hooks", "/tmp", default_protected, "protected path '.git/hooks': '.git/hooks' is"},
        {".git/hooks", "hooks.real", default_protected,
         "protected path '.git/hooks': '.git/hooks'"},
        {"devbox.ini.l", "README", (const char *const[]){"devbox.ini.l", NULL}, "'devbox.ini.l'"},
        {"sub", ".git", (const char *const[]){"sub/hooks.real", NULL},
         "protected path 'sub/hooks.real': 'sub' is a symbolic link"},
    };
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cases); i++) {
        path_in(e, cases[i].link, p, sizeof(p));
        CHECK(symlink(cases[i].target, p) == 0, "symlink: %m");
        struct mounts_vfs_config cfg = vfs_env_config(e, cases[i].paths);
        cfg.virtiofsd = script;
        dbx_error *err = NULL;
        pid_t r = mounts_virtiofsd_spawn(&cfg, &e->map, &err);
        CHECK(r == -ELOOP && err && err->code == ELOOP, "case %zu: %d %s", i, (int)r,
              err ? err->msg : "");
        CHECK(strstr(err->msg, cases[i].msg), "case %zu: message '%s'", i, err->msg);
        if (i == 0) fprintf(stderr, "    (%s)\n", err->msg);
        CHECK(access(marker, F_OK) < 0, "case %zu: the stand-in ran", i);
        CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "a child was left behind");
        dbx_error_free(&err);
        char **missing = NULL;
        CHECK(mounts_protected_scan(e->src, cases[i].paths, &missing, &err) == -ELOOP,
              "scan case %zu", i);
        dbx_error_free(&err);
        CHECK(unlink(p) == 0, "unlink: %m");
    }
    check_no_host_mounts(e);
}

/* A worktree's (or submodule's) `.git` is a file naming the real git dir: replacing its
 * contents would point host git at a guest-made directory, so it is protected read-only. */
static void scen_gitfile(struct vfs_env *e) {
    write_in(e, ".git", "gitdir: /nonexistent/.git/worktrees/x\n");
    write_in(e, "devbox.ini", "");
    expect_missing(e, default_protected, ".git/config .git/hooks .gitmodules");
    struct snap before;
    take_snap(e, ".git", &before);
    free(run_probe(e, default_protected,
                   /* (O_CREAT: the name guard refuses `.git` before the mount says EROFS) */
                   "fails \"$PERM\" sh -c 'echo gitdir: evil > .git'\n"
                   "fails \"$RO\" truncate -c -s 0 .git\n"
                   "fails \"$BUSY\" mv .git x\n"
                   "fails \"$BUSY\" rm -f .git\n"
                   "fails '' mkdir -p .git/hooks\n"
                   "fails \"$RO\" sh -c ': > devbox.ini'\n"));
    check_snap(e, ".git", &before);
    check_no_host_mounts(e);
}

static void expect_invalid(struct vfs_env *e, const char *const *paths, int code) {
    struct mounts_vfs_config cfg = vfs_env_config(e, paths);
    cfg.virtiofsd = "/bin/true";
    dbx_error *err = NULL;
    pid_t r = mounts_virtiofsd_spawn(&cfg, &e->map, &err);
    CHECK(r == -code && err && err->code == code, "%s: %d %s", paths[0], (int)r,
          err ? err->msg : "");
    CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "forked for an invalid list");
    dbx_error_free(&err);
}

static void scen_invalid(struct vfs_env *e) {
    static const char *const bad[] = {"/etc/passwd", "",   ".",   "..",  "a/../b",
                                      "a//b",        "a/", "./a", "a/.", ".git/.."};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++)
        expect_invalid(e, (const char *const[]){"devbox.ini", bad[i], NULL}, EINVAL);
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    expect_invalid(e, (const char *const[]){long_name, NULL}, EINVAL);
    const char *many[MOUNTS_PROTECTED_MAX + 2];
    for (size_t i = 0; i <= MOUNTS_PROTECTED_MAX; i++)
        many[i] = "devbox.ini";
    many[MOUNTS_PROTECTED_MAX + 1] = NULL;
    expect_invalid(e, many, E2BIG);
    /* Names that merely contain dots are fine; duplicates and nesting are fine. */
    dbx_error *err = NULL;
    CHECK(mounts_protected_validate(
              (const char *const[]){"a..b", "..a", ".git", ".git/hooks", ".git", NULL}, &err) == 0,
          "%s", err->msg);
}

/* Missing protected paths stay missing: the name guard refuses their first missing component
 * (any ASCII case) in its parent to every name-creating call, whoever makes it; siblings and
 * the rest of the tree stay writable. */
static void scen_missing(struct vfs_env *e) {
    make_repo(e);
    char p[256];
    path_in(e, "devbox.ini", p, sizeof(p));
    CHECK(unlink(p) == 0, "unlink: %m");
    path_in(e, "tools", p, sizeof(p));
    CHECK(mkdir(p, 0755) == 0, "mkdir: %m");
    static const char *const paths[] = {
        ".git/hooks", ".git/config", ".gitmodules", "devbox.ini",         ".envrc",
        ".mcp.json",  ".claude",     ".vscode",     ".vscode/tasks.json", "tools/hooks/run.sh",
        NULL};
    expect_missing(e, paths,
                   ".claude .envrc .gitmodules .mcp.json .vscode .vscode/tasks.json devbox.ini "
                   "tools/hooks/run.sh");
    free(run_probe(e, paths,
                   /* (one component each, from the parent: what virtiofsd's calls look like;
                    * the guard leaves paths with a '/' to virtiofsd's own business) */
                   "echo x > src && mkdir d0 && echo x > tools/src && mkdir tools/d0\n"
                   "for n in .envrc .mcp.json devbox.ini .gitmodules .claude .vscode "
                   "tools/hooks; do (\n"
                   "  case $n in tools/*) cd tools; n=${n#tools/};; esac\n"
                   "  fails \"$PERM\" sh -c \"echo evil > $n\"\n"
                   "  fails \"$PERM\" mkdir $n\n"
                   "  fails \"$PERM\" mkfifo $n\n"
                   "  fails \"$PERM\" ln -s src $n\n"
                   "  fails \"$PERM\" ln src $n\n"
                   "  fails \"$PERM\" mv src $n\n"
                   "  fails \"$PERM\" mv -T d0 $n\n"
                   "); done\n"
                   "fails \"$PERM\" mkdir -p .vscode/x\n"
                   "fails \"$PERM\" touch .ENVRC\n"
                   "fails \"$PERM\" mkdir .VSCode\n"
                   "fails \"$PERM\" touch DevBox.INI\n"
                   "(cd tools && fails \"$PERM\" touch HOOKS)\n"
                   "works touch .envrc2 envrc tools/other newfile\n"
                   "works mkdir tools/hooks2 .vscode2\n"
                   "works mv newfile renamed\n"
                   "works ln -s renamed link\n"
                   "works asuser sh -c 'echo data > f'\n"
                   "works asuser git add f\n"
                   "works asuser git -c user.name=a -c user.email=b commit -q -m y\n"));
    static const char *const absent[] = {".envrc",  ".mcp.json",  "devbox.ini",  ".gitmodules",
                                         ".claude", ".vscode",    "tools/hooks", ".ENVRC",
                                         ".VSCode", "DevBox.INI", "tools/HOOKS"};
    struct stat st;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(absent); i++) {
        path_in(e, absent[i], p, sizeof(p));
        CHECK(lstat(p, &st) < 0 && errno == ENOENT, "'%s' exists", absent[i]);
    }
    path_in(e, "tools/hooks2", p, sizeof(p));
    CHECK(lstat(p, &st) == 0, "'tools/hooks2' was not created");
    check_no_host_mounts(e);
}

/* Nested and duplicate entries: `.git` itself protected (read-only) with `.git/hooks` below it;
 * the deeper mount must sit inside the read-only one, not be hidden under it. */
static void scen_nested(struct vfs_env *e) {
    make_repo(e);
    char p[256];
    path_in(e, "a/b/c", p, sizeof(p));
    CHECK(dbx_mkdir_p(p, 0755, NULL) == 0, "mkdir: %m");
    write_in(e, "a/b/c/f", "x");
    write_in(e, "a/g", "x");
    static const char *const paths[] = {".git/hooks", ".git",    "a/b/c/f",
                                        ".git/hooks", "a/b/c/f", NULL};
    free(run_probe(e, paths,
                   "fails \"$RO\" touch .git/hooks/new\n"
                   "fails \"$RO\" touch .git/index2\n"
                   "fails \"$BUSY\" mv .git x\n"
                   "fails \"$RO\" sh -c 'echo >> a/b/c/f'\n"
                   "fails \"$BUSY\" mv a x\n"
                   "fails \"$BUSY\" mv a/b a/x\n"
                   "fails \"$BUSY\" mv a/b/c a/b/x\n"
                   "works sh -c 'echo y >> a/g'\n"
                   "works touch a/b/c/new\n"
                   "works mv a/b/c/new a/b/c/new2\n"
                   "works rm a/b/c/new2\n"
                   /* .git, a, a/b, a/b/c, a/b/c/f; below .git the git-directory rule's */
                   "n=$(awk '{print $5}' /proc/self/mountinfo | grep \"^$src/\" | "
                   "grep -vc \"^$src/.git/\")\n"
                   "test \"$n\" = 5 || echo \"FAIL: $n mounts\"\n"));
    check_no_host_mounts(e);
}

/* ---- the real virtiofsd ---------------------------------------------------------------- */

static void scen_real_virtiofsd(struct vfs_env *e) {
    make_repo(e);
    struct mounts_vfs_config cfg = vfs_env_config(e, default_protected);
    dbx_error *err = NULL;
    pid_t pid = mounts_virtiofsd_spawn(&cfg, &e->map, &err);
    CHECK(pid > 0, "spawn: %s", err ? err->msg : "?");
    int c = vfs_connect(e);
    uint64_t features = 0;
    vhost_user_get_features(c, &features);
    CHECK(features & (1ull << 32), "VIRTIO_F_VERSION_1 missing: %#llx",
          (unsigned long long)features);
    /* virtiofsd's sandboxed child (new pid + mount namespace, pivot_root into the source). */
    pid_t daemon = 0;
    for (int i = 0; i < 200 && !daemon; i++, usleep(10000))
        daemon = test_find_child(pid);
    CHECK(daemon > 0, "no sandboxed virtiofsd child");
    /* Its mountinfo is readable both as root and rootless (the daemon runs in a user namespace
     * the test user owns): a read failure is a failure, not a reason to skip the check. */
    char mi_path[64];
    snprintf(mi_path, sizeof(mi_path), "/proc/%d/mountinfo", (int)daemon);
    _cleanup_free_ char *mi = NULL;
    CHECK(dbx_read_file_at(AT_FDCWD, mi_path, 1 << 20, &mi, NULL, NULL) == 0, "read '%s': %m",
          mi_path);
    /* After its pivot_root the source is "/": our binds are /.git, /.git/hooks, ... */
    CHECK(strstr(mi, " /.git rw,") && strstr(mi, " /.git/hooks ro,nosuid,nodev") &&
              strstr(mi, " /.git/config ro,nosuid,nodev") &&
              strstr(mi, " /devbox.ini ro,nosuid,nodev"),
          "virtiofsd's sandbox lost the protected mounts:\n%s", mi);
    close(c);
    int status = 0;
    CHECK(test_wait_exit(pid, 5000, &status), "virtiofsd still running after the client left");
    char log[4096];
    vfs_read_log(e, log, sizeof(log));
    CHECK(!strstr(log, "devbox:"), "log: %s", log);
    check_no_host_mounts(e);
}

/* A read-only share (issue 13's extra shares): every write fails with EROFS in virtiofsd's
 * namespace, protected paths below it included; the host's files stay as they were and the
 * host sees no mount. */
static void scen_readonly(struct vfs_env *e) {
    make_repo(e);
    struct snap readme, cfg;
    take_snap(e, "README", &readme);
    take_snap(e, ".git/config", &cfg);
    probe_readonly = true;
    free(run_probe(e, default_protected,
                   "works cat README\n"
                   "fails \"$RO\" sh -c 'echo x >> README'\n"
                   "fails \"$RO\" sh -c ': > README'\n"
                   "fails \"$RO\" touch newfile\n"
                   "fails \"$RO\" mkdir newdir\n"
                   "fails \"$RO\" chmod 0777 README\n"
                   "fails \"$RO\" rm -f README\n"
                   "fails \"$RO\" mv README x\n"
                   "fails \"$RO\" sh -c 'echo x >> .git/config'\n"
                   "fails '' mount -o remount,rw .\n"
                   "fails \"$RO\" sh -c 'echo x >> README'\n"));
    probe_readonly = false;
    check_snap(e, "README", &readme);
    check_snap(e, ".git/config", &cfg);
    char p[256];
    path_in(e, "newfile", p, sizeof(p));
    CHECK(access(p, F_OK) < 0, "newfile made on the host");
    check_no_host_mounts(e);
}

/* A linked worktree's repository (mounts-worktree.c): worktrees/ read-only whole, the box's own
 * entry writable again inside it but for its pointers; no other entry, old or new, writable. */
static void scen_writable(struct vfs_env *e) {
    char p[256];
    path_in(e, "worktrees/wt", p, sizeof(p));
    CHECK(dbx_mkdir_p(p, 0755, NULL) == 0, "mkdir: %m");
    path_in(e, "worktrees/other", p, sizeof(p));
    CHECK(dbx_mkdir_p(p, 0755, NULL) == 0, "mkdir: %m");
    write_in(e, "worktrees/wt/HEAD", "ref: refs/heads/side\n");
    write_in(e, "worktrees/wt/commondir", "../..\n");
    write_in(e, "worktrees/wt/gitdir", "/x/wt/.git\n");
    write_in(e, "worktrees/other/commondir", "../..\n");
    static const char *const paths[] = {"worktrees", "worktrees/wt/commondir",
                                        "worktrees/wt/gitdir", "worktrees/wt/config.worktree",
                                        NULL};
    static const char *const writable[] = {"worktrees/wt", NULL};
    probe_writable = writable;
    free(run_probe(e, paths,
                   "works sh -c 'echo x > worktrees/wt/index'\n"
                   "works sh -c 'echo y > worktrees/wt/HEAD.lock && mv worktrees/wt/HEAD.lock "
                   "worktrees/wt/HEAD'\n"
                   "works mkdir -p worktrees/wt/logs/refs\n"
                   "fails \"$RO\" sh -c 'echo /tmp > worktrees/wt/commondir'\n"
                   "fails \"$RO\" sh -c 'echo /tmp > worktrees/wt/gitdir'\n"
                   /* one component from the parent, as virtiofsd names it (scen_missing) */
                   "(cd worktrees/wt && fails \"$PERM\" sh -c 'echo x > config.worktree')\n"
                   "fails '' mv worktrees/wt worktrees/wt2\n"
                   "fails \"$RO\" sh -c 'echo /tmp > worktrees/other/commondir'\n"
                   "fails \"$RO\" sh -c 'echo x > worktrees/other/gitdir'\n"
                   "fails \"$RO\" mkdir worktrees/new\n"
                   "fails \"$RO\" rm -r worktrees/other\n"));
    probe_writable = NULL;
    path_in(e, "worktrees/wt/commondir", p, sizeof(p));
    char *c = slurp(p);
    CHECK(!strcmp(c, "../..\n"), "commondir now '%s'", c);
    free(c);
    path_in(e, "worktrees/wt/HEAD", p, sizeof(p));
    c = slurp(p);
    CHECK(!strcmp(c, "y\n"), "HEAD now '%s'", c);
    free(c);
    path_in(e, "worktrees/new", p, sizeof(p));
    CHECK(access(p, F_OK) < 0, "worktrees/new made on the host");
    path_in(e, "worktrees/wt/config.worktree", p, sizeof(p));
    CHECK(access(p, F_OK) < 0, "config.worktree made on the host");
    check_no_host_mounts(e);
}

/* A directory `rel` below the share that git takes for a git directory (HEAD, objects/), with
 * a config. */
static void make_gitdir(struct vfs_env *e, const char *rel) {
    char p[256], name[192];
    snprintf(name, sizeof(name), "%s/objects", rel);
    path_in(e, name, p, sizeof(p));
    CHECK(dbx_mkdir_p(p, 0755, NULL) == 0, "mkdir: %m");
    snprintf(name, sizeof(name), "%s/HEAD", rel);
    write_in(e, name, "ref: refs/heads/main\n");
    snprintf(name, sizeof(name), "%s/config", rel);
    write_in(e, name, "[core]\n");
}

/* A linked worktree's entry, as `git worktree add` leaves it, below git directory `git`. */
static void make_entry(struct vfs_env *e, const char *git, const char *name) {
    char p[256], rel[192];
    snprintf(rel, sizeof(rel), "%s%sworktrees/%s/logs", git, git[0] ? "/" : "", name);
    path_in(e, rel, p, sizeof(p));
    CHECK(dbx_mkdir_p(p, 0755, NULL) == 0, "mkdir: %m");
    static const struct {
        const char *file, *text;
    } files[] = {{"HEAD", "ref: refs/heads/side\n"},
                 {"commondir", "../..\n"},
                 {"gitdir", "/x/wt/.git\n"},
                 {"index", "i\n"}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(files); i++) {
        snprintf(rel, sizeof(rel), "%s%sworktrees/%s/%s", git, git[0] ? "/" : "", name,
                 files[i].file);
        write_in(e, rel, files[i].text);
    }
}

static void expect_text(const struct vfs_env *e, const char *name, const char *want) {
    char p[256];
    path_in(e, name, p, sizeof(p));
    char *c = slurp(p);
    CHECK(!strcmp(c, want), "%s now '%s', want '%s'", name, c, want);
    free(c);
}

static void expect_absent(const struct vfs_env *e, const char *name) {
    char p[256];
    path_in(e, name, p, sizeof(p));
    CHECK(access(p, F_OK) < 0, "%s made on the host", name);
}

/* The main worktree's box, its repository having linked worktrees: worktrees/ stays read-only
 * whole, entries included.  Inside the box every linked checkout looks missing, so
 * `git worktree prune` (and `git gc`) there would take each entry for stale and delete its
 * HEAD and staged index on the host if the entry were writable; and no entry's submodule
 * config is the box's to write. */
static void scen_entries(struct vfs_env *e) {
    make_repo(e);
    make_entry(e, ".git", "wt");
    make_gitdir(e, ".git/worktrees/wt/modules/sub");
    free(run_probe(e, default_protected,
                   "fails \"$RO\" sh -c 'echo x > .git/worktrees/wt/index'\n"
                   "fails \"$RO\" sh -c 'echo y > .git/worktrees/wt/HEAD.lock'\n"
                   "fails \"$RO\" rm -f .git/worktrees/wt/HEAD\n"
                   "fails '' rm -rf .git/worktrees/wt\n"
                   "fails \"$RO\" sh -c 'echo z > .git/worktrees/wt/modules/sub/index'\n"
                   "fails \"$RO\" sh -c 'echo \"[core] fsmonitor = x\" >> "
                   ".git/worktrees/wt/modules/sub/config'\n"
                   "fails \"$RO\" mkdir .git/worktrees/new\n"));
    expect_text(e, ".git/worktrees/wt/HEAD", "ref: refs/heads/side\n");
    expect_text(e, ".git/worktrees/wt/index", "i\n");
    expect_text(e, ".git/worktrees/wt/modules/sub/config", "[core]\n");
    expect_absent(e, ".git/worktrees/new");
    check_no_host_mounts(e);
}

/* A linked worktree's repository shared whole (struct mounts_vfs_config.gitdir, as
 * mounts-worktree.c asks): the rule of a git directory on the share's root (its top takes only
 * git's names), and on the box's own entry, so its submodules' git directories (in the entry's
 * modules/, where git keeps a linked worktree's submodules) are writable but not their configs;
 * another entry stays read-only whole. */
static void scen_writable_gitdir(struct vfs_env *e) {
    make_gitdir(e, ".");
    make_entry(e, "", "wt");
    make_entry(e, "", "other");
    make_gitdir(e, "worktrees/wt/modules/sub");
    static const char *const paths[] = {"config",
                                        "hooks",
                                        "modules",
                                        "worktrees",
                                        "worktrees/wt/commondir",
                                        "worktrees/wt/gitdir",
                                        "worktrees/wt/config.worktree",
                                        NULL};
    static const char *const writable[] = {"worktrees/wt", NULL};
    probe_writable = writable;
    probe_gitdir = true;
    free(run_probe(e, paths,
                   "works sh -c 'echo x > worktrees/wt/index'\n"
                   "works sh -c 'echo z > worktrees/wt/modules/sub/index'\n"
                   "works sh -c 'echo f > FETCH_HEAD'\n"
                   "fails \"$RO\" sh -c 'echo \"[core] fsmonitor = x\" >> "
                   "worktrees/wt/modules/sub/config'\n"
                   "fails \"$RO\" mkdir worktrees/wt/modules/evil\n"
                   "(cd worktrees/wt && fails \"$PERM\" mkdir hooks)\n"
                   "fails \"$PERM\" sh -c 'echo x > commondir'\n"
                   "fails \"$PERM\" sh -c 'echo x > newname'\n"
                   "fails \"$RO\" sh -c 'echo x > worktrees/other/index'\n"));
    probe_writable = NULL;
    probe_gitdir = false;
    expect_text(e, "worktrees/wt/modules/sub/index", "z\n");
    expect_text(e, "worktrees/wt/modules/sub/config", "[core]\n");
    expect_text(e, "worktrees/other/index", "i\n");
    expect_absent(e, "commondir");
    expect_absent(e, "newname");
    check_no_host_mounts(e);

    /* an island that is no entry under the rule (here: no HEAD; past the cap alike) would be
     * open whole, its modules/ included: the start fails */
    char p[256];
    path_in(e, "worktrees/wt/HEAD", p, sizeof(p));
    CHECK(unlink(p) == 0, "unlink: %m");
    struct mounts_vfs_config cfg = vfs_env_config(e, paths);
    char script[128];
    snprintf(script, sizeof(script), "%s/probe", e->dir);
    cfg.virtiofsd = script;
    cfg.writable = writable;
    cfg.gitdir = true;
    dbx_error *err = NULL;
    pid_t r = mounts_virtiofsd_spawn(&cfg, &e->map, &err);
    CHECK(r < 0 && err && strstr(err->msg, "worktrees/wt' is not a worktree entry"),
          "spawn with an island that is no entry: %d %s", (int)r, err ? err->msg : "");
    CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "a child was left behind");
    dbx_error_free(&err);
}

/* ---- runner ---------------------------------------------------------------------------- */

#define BOTH(name, fn, needs_virtiofsd)                                                            \
    static void test_##name(void **s) {                                                            \
        vfs_run(fn, false, needs_virtiofsd);                                                       \
    }                                                                                              \
    static void test_##name##_rootless_user(void **s) {                                            \
        vfs_run(fn, true, needs_virtiofsd);                                                        \
    }

BOTH(enforced, scen_enforced, false)
BOTH(no_openat2, scen_no_openat2, false)
BOTH(symlinks, scen_symlinks, false)
BOTH(gitfile, scen_gitfile, false)
BOTH(nested, scen_nested, false)
BOTH(missing, scen_missing, false)
BOTH(invalid, scen_invalid, false)
BOTH(real_virtiofsd, scen_real_virtiofsd, true)
BOTH(readonly, scen_readonly, false)
BOTH(writable, scen_writable, false)
BOTH(entries, scen_entries, false)
BOTH(writable_gitdir, scen_writable_gitdir, false)

#define BOTH_ENTRIES(name)                                                                         \
    cmocka_unit_test(test_##name), cmocka_unit_test(test_##name##_rootless_user)

/* The names the box may create at the top of a git directory (mounts-names.c). */
static void test_git_names(void **state) {
    static const char *const ok[] = {"index.lock",
                                     "HEAD.lock",
                                     "index",
                                     "HEAD",
                                     "ORIG_HEAD",
                                     "FETCH_HEAD",
                                     "MERGE_MSG",
                                     "BISECT_LOG",
                                     "COMMIT_EDITMSG",
                                     "packed-refs",
                                     "packed-refs.new",
                                     "config.lock",
                                     "next-index-12.lock",
                                     "index.stash.42",
                                     "gc.pid",
                                     "rebase-merge",
                                     "sequencer",
                                     ".COMMIT_EDITMSG.swp",
                                     "4913", /* vim's probe */
                                     "sedG6QIQj",
                                     "XXGOof1v",
                                     "COMMIT_EDITMSGa8Fk2z",
                                     "Xa8Fk2z",
                                     "addp-hunk-edit.diff",
                                     "ADD_EDIT.patch",
                                     "ADD_EDIT.patchAb12Cd",
                                     "addp-hunk-edit.diffAb12Cd",
                                     "lfs",
                                     "objects"};
    static const char *const no[] = {"commondir",
                                     "gitdir",
                                     "config.worktree",
                                     "config",
                                     "hooks",
                                     "info",
                                     "modules",
                                     "worktrees",
                                     "branches",
                                     "remotes",
                                     "commondir.tmp",
                                     "x",
                                     "",
                                     "a/b",
                                     "Head",
                                     "COMMONDIR",
                                     "GITDIR",
                                     "MODULES",
                                     "CONFIG",
                                     "HOOKS",
                                     "WORKTREES",
                                     "sed",
                                     "sedG6QIQ",
                                     "sedG6QIQjx",
                                     "xxGOof1v",
                                     "heada8Fk2z",
                                     "HEADa8F.k2",
                                     "Commondir",
                                     "COMMONdir",
                                     "Modules",
                                     "Remotes",
                                     "BRanches",
                                     "WOrktrees",
                                     "a8Fk2z",
                                     "HEADa8Fk\xc3\xa9",
                                     "sedG6QIQ\xc3",
                                     "XXGOof1.",
                                     "add-hunk-edit.diff",
                                     "addp-hunk-edit.diffAb12C",
                                     "ADD_EDIT.patc1234567"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(ok); i++)
        if (!mounts_git_name_allowed(ok[i])) fail_msg("'%s' refused", ok[i]);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(no); i++)
        if (mounts_git_name_allowed(no[i])) fail_msg("'%s' allowed", no[i]);
    assert_true(mounts_git_name_allowed_in(MOUNTS_GUARD_INFO, "refs_a1B2c3"));
    assert_true(mounts_git_name_allowed_in(MOUNTS_GUARD_INFO, "exclude"));
    assert_false(mounts_git_name_allowed_in(MOUNTS_GUARD_INFO, "attributes"));
    assert_false(mounts_git_name_allowed_in(MOUNTS_GUARD_INFO, "grafts"));
    assert_true(mounts_git_name_allowed_in(MOUNTS_GUARD_OBJECTS_INFO, "commit-graph.lock"));
    assert_true(mounts_git_name_allowed_in(MOUNTS_GUARD_OBJECTS_INFO, "packs_x1"));
    assert_false(mounts_git_name_allowed_in(MOUNTS_GUARD_OBJECTS_INFO, "alternates"));
    assert_false(mounts_git_name_allowed_in(MOUNTS_GUARD_OBJECTS_INFO, "http-alternates"));
}

/* The guard's list of missing protected names (no namespaces: resolution and matching). */
static void test_guard_missing_names(void **state) {
    char dir[] = "/tmp/test-guard-missing-XXXXXX";
    CHECK(mkdtemp(dir), "mkdtemp: %m");
    test_sh("cd %s && mkdir -p tools a/b && echo x > devbox.ini && echo y > wt && "
            "ln -s a alink",
            dir);
    static struct mounts_guard g; /* large */
    memset(&g, 0, sizeof(g));
    static const char *const paths[] = {
        ".envrc",     ".vscode/tasks.json", ".vscode", ".claude/settings.json", ".ENVRC",
        "devbox.ini", "wt/hooks",           "a/b/c",   "tools/hooks/run.sh",    NULL};
    dbx_error *err = NULL;
    CHECK(mounts_guard_missing(dir, paths, &g, &err) == 0, "%s", err ? err->msg : "");
    /* .envrc (once for both cases), .vscode (once), .claude, a/b: c, tools: hooks; an existing
     * path and one below a file add nothing */
    assert_int_equal(g.nmissing, 5);
    assert_int_equal(g.n, 0);
    struct stat top, tools, ab, a;
    char p[128];
    CHECK(stat(dir, &top) == 0, "stat: %m");
    snprintf(p, sizeof(p), "%s/tools", dir);
    CHECK(stat(p, &tools) == 0, "stat: %m");
    snprintf(p, sizeof(p), "%s/a/b", dir);
    CHECK(stat(p, &ab) == 0, "stat: %m");
    snprintf(p, sizeof(p), "%s/a", dir);
    CHECK(stat(p, &a) == 0, "stat: %m");
    static const char *const top_no[] = {".envrc",  ".ENVRC",  ".EnvRc", ".vscode",
                                         ".VSCODE", ".claude", ".Claude"};
    static const char *const top_ok[] = {".envrc2", "envrc",      ".envrc.bak", "hooks",
                                         "c",       "tasks.json", ".vscod",     ".envrc\xc4\xb1"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(top_no); i++)
        if (mounts_guard_check(&g, &top, top_no[i]) != EPERM) fail_msg("'%s' allowed", top_no[i]);
    for (size_t i = 0; i < DBX_ARRAY_SIZE(top_ok); i++)
        if (mounts_guard_check(&g, &top, top_ok[i]) != 0) fail_msg("'%s' refused", top_ok[i]);
    assert_int_equal(mounts_guard_check(&g, &tools, "hooks"), EPERM);
    assert_int_equal(mounts_guard_check(&g, &tools, "Hooks"), EPERM);
    assert_int_equal(mounts_guard_check(&g, &tools, "hooks2"), 0);
    assert_int_equal(mounts_guard_check(&g, &tools, ".envrc"), 0);
    assert_int_equal(mounts_guard_check(&g, &ab, "c"), EPERM);
    assert_int_equal(mounts_guard_check(&g, &a, "c"), 0);
    /* a casefolding parent (chattr +F, where the file system has it): no non-ASCII name next
     * to a missing protected one (U+212A KELVIN SIGN folds to 'k') */
    g.missing[0].casefold = true;
    struct stat where = {.st_dev = g.missing[0].dev, .st_ino = g.missing[0].ino};
    assert_int_equal(mounts_guard_check(&g, &where, ".hus\xe2\x84\xaay"), EPERM);
    assert_int_equal(mounts_guard_check(&g, &where, "plain"), 0);
    /* the git-directory rule still answers for its directories */
    g.dev[0] = ab.st_dev;
    g.ino[0] = ab.st_ino;
    g.kind[0] = MOUNTS_GUARD_TOP;
    g.n = 1;
    assert_int_equal(mounts_guard_check(&g, &ab, "commondir"), EPERM);
    assert_int_equal(mounts_guard_check(&g, &ab, "index.lock"), 0);
    assert_int_equal(mounts_guard_check(&g, &ab, "c"), EPERM);
    /* a symlink on the way: refused, as the spawn refuses it */
    memset(&g, 0, sizeof(g));
    CHECK(mounts_guard_missing(dir, (const char *const[]){"alink/x", NULL}, &g, &err) == -ELOOP,
          "symlink accepted");
    dbx_error_free(&err);
    assert_true(mounts_name_caseeq(".Git", ".gIT"));
    assert_false(mounts_name_caseeq(".git", ".git2"));
    assert_false(mounts_name_caseeq("\xc3\xa9", "\xc3\x89")); /* ASCII only */
    test_rm_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        BOTH_ENTRIES(enforced),
        BOTH_ENTRIES(no_openat2),
        BOTH_ENTRIES(symlinks),
        BOTH_ENTRIES(gitfile),
        BOTH_ENTRIES(nested),
        BOTH_ENTRIES(invalid),
        BOTH_ENTRIES(missing),
        BOTH_ENTRIES(real_virtiofsd),
        BOTH_ENTRIES(readonly),
        BOTH_ENTRIES(writable),
        BOTH_ENTRIES(entries),
        BOTH_ENTRIES(writable_gitdir),
        cmocka_unit_test(test_git_names),
        cmocka_unit_test(test_guard_missing_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

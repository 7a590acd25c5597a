/* tests/unit/test-mounts-virtiofsd.c: spawning virtiofsd for real, without a VM.
 *
 * Every scenario runs in a forked child (a subreaper, so orphans come back to it) either as
 * the current user or, when the test runs as root, also as an ordinary user with subordinate
 * ids (DBX_TEST_USER, default "dbxtest"; create it with `useradd -m dbxtest`, which on Debian
 * also allocates /etc/subuid and /etc/subgid ranges).  Scenarios that cannot run skip.
 *
 * Checked: virtiofsd answers a vhost-user GET_FEATURES on the socket we pass; it gets only fds
 * 0-3 and an empty environment; it and its sandboxed child die when the spawning process is
 * killed -9; child-side errors come back as values; and, with a stand-in binary, that the
 * namespace ids map as mounts.h promises (ns uid U -> host U, ns 0 -> first subordinate id). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "common/spawn.h"
#include "mounts/mounts-internal.h"
#include "tests/unit/devbox-bin.h"

#include "tests/unit/helpers-vfs.h"
#include "tests/unit/helpers.h"

/* fds 0/1 are /dev/null, 2 the log, 3 the socket, nothing else; empty environment.  Checked
 * as root; a rootless virtiofsd runs as a subordinate id and is not ptrace-readable by the test
 * user, so there the only accepted outcome is EACCES (the root run covers the check). */
static void check_jail(pid_t pid, bool rootless) {
    char path[64], link[256];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d && rootless && errno == EACCES) return;
    CHECK(d, "opendir '%s': %m", path);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char p2[330];
        snprintf(p2, sizeof(p2), "%s/%s", path, de->d_name);
        ssize_t n = readlink(p2, link, sizeof(link) - 1);
        link[n > 0 ? n : 0] = '\0';
        int fd = atoi(de->d_name);
        if (fd <= 1)
            CHECK(!strcmp(link, "/dev/null"), "fd %d -> %s", fd, link);
        else if (fd == 2)
            CHECK(dbx_str_has_prefix(link, "pipe:"), "fd 2 -> %s", link);
        else if (fd == 3)
            CHECK(dbx_str_has_prefix(link, "socket:"), "fd 3 -> %s", link);
        else
            CHECK(false, "virtiofsd inherited fd %d -> %s", fd, link);
    }
    closedir(d);
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0, "open '%s': %m", path);
    char buf[64];
    CHECK(read(fd, buf, sizeof(buf)) == 0, "virtiofsd has a non-empty environment");
    close(fd);
}

/* The guard keeps 0-2 and the filter's listener, nothing else (not the vhost-user socket).
 * Rootless, like virtiofsd (check_jail), it is not ptrace-readable: EACCES only. */
static void check_guard_fds(pid_t pid, bool rootless) {
    char path[64], link[256];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d && rootless && errno == EACCES) return;
    CHECK(d, "opendir '%s': %m", path);
    struct dirent *de;
    int listeners = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char p2[330];
        snprintf(p2, sizeof(p2), "%s/%s", path, de->d_name);
        ssize_t n = readlink(p2, link, sizeof(link) - 1);
        link[n > 0 ? n : 0] = '\0';
        int fd = atoi(de->d_name);
        if (fd <= 2) continue;
        CHECK(!strcmp(link, "anon_inode:seccomp notify"), "guard holds fd %d -> %s", fd, link);
        listeners++;
    }
    closedir(d);
    CHECK(listeners == 1, "guard holds %d listeners", listeners);
}

/* What /proc/PID/exe points to, resolved; "" when we may not look (errno set). */
static void exe_of(pid_t pid, char *buf, size_t size) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, buf, size - 1);
    buf[n > 0 ? n : 0] = '\0';
}

/* Both were exec'd: the guard runs `devbox __virtiofsd-guard` (its command line: a fork of
 * this test would show ours) from devbox-guard, the binary the supervisor names, virtiofsd's
 * process runs virtiofsd.  The guard's exe link is readable as root only: rootless it is not
 * dumpable and its memory belongs to the initial user namespace, where we hold no CAP_SYS_PTRACE.
 */
static void check_exec(pid_t guard, pid_t vfs, bool rootless) {
    char path[64], want[PATH_MAX], got[PATH_MAX];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)guard);
    char *cmdline = NULL;
    size_t len = 0;
    CHECK(dbx_read_file_at(AT_FDCWD, path, 4096, &cmdline, &len, NULL) == 0, "read '%s'", path);
    static const char want_cmdline[] = "devbox\0__virtiofsd-guard\0";
    CHECK(len == sizeof(want_cmdline) - 1 && !memcmp(cmdline, want_cmdline, len),
          "the guard's command line is '%s'", cmdline);
    free(cmdline);
    CHECK(realpath(test_guard_bin(), want), "realpath '%s': %m", test_guard_bin());
    exe_of(guard, got, sizeof(got));
    if (!rootless || got[0]) CHECK(!strcmp(got, want), "the guard runs '%s', want '%s'", got, want);
    CHECK(realpath(VIRTIOFSD, want), "realpath: %m");
    exe_of(vfs, got, sizeof(got));
    CHECK(!strcmp(got, want), "virtiofsd's process runs '%s', want '%s'", got, want);
}

static void scen_serve(struct vfs_env *e) {
    struct stat st;
    bool run_existed = lstat("/run/virtiofsd", &st) == 0;
    struct mounts_vfs_config cfg = vfs_env_config(e, NULL);
    dbx_error *err = NULL;
    uint64_t t0 = dbx_now_ms();
    pid_t pid = mounts_virtiofsd_spawn(&cfg, &e->map, &err);
    CHECK(pid > 0, "spawn: %s", err ? err->msg : "?");
    uint64_t t_spawn = dbx_now_ms() - t0;
    usleep(100000);
    /* pid is the name guard (mounts-names.c); virtiofsd is its child */
    pid_t vfs = test_find_child(pid);
    CHECK(vfs > 0, "no virtiofsd under the guard %d", (int)pid);
    check_jail(vfs, e->map.rootless);
    check_guard_fds(pid, e->map.rootless);
    check_exec(pid, vfs, e->map.rootless);

    int c = vfs_connect(e);
    uint64_t features = 0;
    uint64_t t_reply = vhost_user_get_features(c, &features);
    CHECK(features & (1ull << 32), "VIRTIO_F_VERSION_1 missing: %#llx",
          (unsigned long long)features);
    /* After the first connection virtiofsd forks its sandboxed child (new pid namespace). */
    pid_t daemon = 0;
    for (int i = 0; i < 200 && !daemon; i++, usleep(10000))
        daemon = test_find_child(pid);
    CHECK(daemon > 0, "no sandboxed virtiofsd child");
    fprintf(stderr, "    (%s: spawn %llu ms, GET_FEATURES reply %llu ms after connect)\n",
            e->map.rootless ? "rootless" : "root", (unsigned long long)t_spawn,
            (unsigned long long)t_reply);

    /* When the front-end goes away virtiofsd exits on its own. */
    close(c);
    int status = 0;
    CHECK(test_wait_exit(pid, 5000, &status), "virtiofsd still running after the client left");
    for (int i = 0; i < 200 && !test_pid_gone(daemon); i++, usleep(10000))
        waitpid(-1, NULL, WNOHANG);
    CHECK(test_pid_gone(daemon), "sandboxed virtiofsd child %d left behind", (int)daemon);
    CHECK(run_existed || lstat("/run/virtiofsd", &st) < 0, "virtiofsd wrote to the host's /run");
}

static void scen_no_orphans(struct vfs_env *e) {
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe: %m");
    pid_t spawner = fork();
    CHECK(spawner >= 0, "fork: %m");
    if (spawner == 0) {
        struct mounts_vfs_config cfg = vfs_env_config(e, NULL);
        dbx_error *err = NULL;
        pid_t pid = mounts_virtiofsd_spawn(&cfg, &e->map, &err);
        if (pid < 0) fprintf(stderr, "spawn: %s\n", err->msg);
        (void)!write(p[1], &pid, sizeof(pid));
        for (;;)
            pause();
    }
    close(p[1]);
    pid_t pid = -1;
    CHECK(read(p[0], &pid, sizeof(pid)) == sizeof(pid) && pid > 0, "spawner failed");
    int c = vfs_connect(e);
    uint64_t features;
    vhost_user_get_features(c, &features);
    pid_t daemon = 0;
    for (int i = 0; i < 200 && !daemon; i++, usleep(10000))
        daemon = test_find_child(pid);
    CHECK(daemon > 0, "no sandboxed virtiofsd child");

    CHECK(kill(spawner, SIGKILL) == 0, "kill: %m");
    CHECK(waitpid(spawner, NULL, 0) == spawner, "waitpid: %m");
    /* We are a subreaper: both come back to us as they die, and get reaped here. */
    for (int i = 0; i < 500 && !(test_pid_gone(pid) && test_pid_gone(daemon)); i++, usleep(10000))
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
    CHECK(test_pid_gone(pid), "virtiofsd %d survived its spawner's SIGKILL", (int)pid);
    CHECK(test_pid_gone(daemon), "sandboxed virtiofsd %d survived", (int)daemon);
    close(c);
}

static char *slurp(const struct vfs_env *e, const char *name) {
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", e->src, name);
    char *buf = NULL;
    CHECK(dbx_read_file_at(AT_FDCWD, path, 1 << 16, &buf, NULL, NULL) == 0, "read '%s'", path);
    return buf;
}

/* Instead of virtiofsd, exec a script that reports what it got and creates files as
 * namespace root and as the user's namespace uid. */
static void scen_idmap(struct vfs_env *e) {
    char script[256], text[2048];
    snprintf(script, sizeof(script), "%s/fake-virtiofsd", e->dir);
    snprintf(text, sizeof(text),
             "#!/bin/sh\n"
             "for a; do case \"$a\" in source=*) src=\"${a#source=}\";; esac; done\n"
             "echo \"$@\" > \"$src/argv\"\n"
             "/bin/cat /proc/self/uid_map > \"$src/uid_map\"\n"
             "/bin/cat /proc/self/gid_map > \"$src/gid_map\"\n"
             "/bin/cat /proc/$$/environ > \"$src/environ\"\n"
             "/bin/grep -E '^(NoNewPrivs|Uid|Gid):' /proc/$$/status > \"$src/status\"\n"
             "/bin/grep ' /run ' /proc/$$/mountinfo > \"$src/run\"\n"
             "if [ -S /proc/$$/fd/3 ]; then echo yes > \"$src/fd3\"; fi\n"
             "/usr/bin/touch \"$src/as-root\"\n"
             "/usr/bin/setpriv --reuid=%u --regid=%u --clear-groups /usr/bin/touch "
             "\"$src/as-user\"\n",
             (unsigned)e->map.box_uid, (unsigned)e->map.box_gid);
    test_write_file(script, text, 0755);

    struct mounts_vfs_config cfg = vfs_env_config(e, NULL);
    cfg.virtiofsd = script;
    dbx_error *err = NULL;
    pid_t pid = mounts_virtiofsd_spawn(&cfg, &e->map, &err);
    CHECK(pid > 0, "spawn: %s", err ? err->msg : "?");
    int status = -1;
    CHECK(test_wait_exit(pid, 10000, &status), "fake virtiofsd did not finish");
    char log[4096];
    vfs_read_log(e, log, sizeof(log));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fake virtiofsd status %#x: %s", status,
          log);

    char *argv = slurp(e, "argv");
    CHECK(strstr(argv, "--fd=3 -o source=") && strstr(argv, "-o sandbox=namespace"), "argv: %s",
          argv);
    char *env = slurp(e, "environ");
    CHECK(env[0] == '\0', "environment not empty: %s", env);
    char *status_txt = slurp(e, "status");
    CHECK(strstr(status_txt, "NoNewPrivs:\t1"), "status: %s", status_txt);
    CHECK(strstr(status_txt, "Uid:\t0\t0\t0\t0"), "not namespace root: %s", status_txt);
    char *run = slurp(e, "run");
    CHECK(strstr(run, " - tmpfs "), "/run is not a private tmpfs: %s", run);
    free(slurp(e, "fd3"));

    /* /proc/self/uid_map, as seen inside: one `inside outside count` line per range. */
    char want[256] = "";
    struct mounts_id_range r[3];
    size_t nr =
        mounts_idmap_ranges(e->map.box_uid, e->map.uid, e->map.sub_uid, e->map.sub_uid_count, r);
    for (size_t i = 0; i < nr; i++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%u %u %u\n", r[i].inside,
                 r[i].outside, r[i].count);
    char *uid_map = slurp(e, "uid_map"), got[256] = "";
    unsigned a, b, c;
    int off = 0, n;
    while (sscanf(uid_map + off, " %u %u %u%n", &a, &b, &c, &n) == 3) {
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%u %u %u\n", a, b, c);
        off += n;
    }
    CHECK(!strcmp(got, want), "uid_map:\n%swant:\n%s", got, want);

    /* The point of the mapping: the user's files stay the user's, guest root's are not. */
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/as-user", e->src);
    CHECK(stat(path, &st) == 0, "stat as-user: %m");
    CHECK(st.st_uid == e->map.uid && st.st_gid == e->map.gid, "as-user owned by %u:%u", st.st_uid,
          st.st_gid);
    snprintf(path, sizeof(path), "%s/as-root", e->src);
    CHECK(stat(path, &st) == 0, "stat as-root: %m");
    uid_t ru = e->map.sub_uid;
    gid_t rg = e->map.sub_gid;
    CHECK(st.st_uid == ru && st.st_gid == rg, "as-root owned by %u:%u, want %u:%u", st.st_uid,
          st.st_gid, ru, rg);
    fprintf(stderr, "    (%s: uid_map as expected; ns root -> host %u, ns %u -> host %u)\n",
            e->map.rootless ? "rootless" : "root", ru, (unsigned)e->map.box_uid,
            (unsigned)e->map.uid);
}

static void expect_error(const struct mounts_vfs_config *cfg, const struct mounts_idmap *map,
                         int code, const char *msg) {
    dbx_error *err = NULL;
    pid_t r = mounts_virtiofsd_spawn(cfg, map, &err);
    CHECK(r < 0 && err, "spawn succeeded, want '%s'", msg);
    CHECK(r == -code && err->code == code, "code %d/%d, want %d (%s)", (int)r, err->code, code,
          err->msg);
    CHECK(!strcmp(err->msg, msg) || (msg[0] == '^' && dbx_str_has_prefix(err->msg, msg + 1)),
          "message '%s', want '%s'", err->msg, msg);
    /* No child is left behind, zombie or not. */
    CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "a child was left behind");
    if (msg[0] == '^') fprintf(stderr, "    (%s)\n", err->msg);
}

static void scen_errors(struct vfs_env *e) {
    struct mounts_vfs_config cfg = vfs_env_config(e, NULL);
    char want[512], log[1024];

    cfg.virtiofsd = "/nonexistent/virtiofsd";
    expect_error(&cfg, &e->map, ENOENT, "exec '/nonexistent/virtiofsd': No such file or directory");
    vfs_read_log(e, log, sizeof(log));
    CHECK(strstr(log, "devbox: virtiofsd setup: exec '/nonexistent/virtiofsd'"), "log: %s", log);

    cfg = vfs_env_config(e, NULL);
    char missing[256];
    snprintf(missing, sizeof(missing), "%s/nonexistent", e->dir);
    cfg.source = missing;
    snprintf(want, sizeof(want), "share source '%s': No such file or directory", missing);
    expect_error(&cfg, &e->map, ENOENT, want);

    cfg.source = "relative/dir";
    expect_error(&cfg, &e->map, EINVAL, "share source must be an absolute path: Invalid argument");

    cfg = vfs_env_config(e, NULL);
    cfg.listen_fd = 1000;
    expect_error(&cfg, &e->map, EBADF, "virtiofsd listen fd 1000: Bad file descriptor");

    if (e->map.rootless) {
        /* A range we do not own: newuidmap refuses and says so. */
        struct mounts_idmap bad = e->map;
        bad.sub_uid = e->map.sub_uid + e->map.sub_uid_count;
        cfg = vfs_env_config(e, NULL);
        expect_error(&cfg, &bad, EPERM, "^newuidmap: ");
    }
}

/* ---- runner ---------------------------------------------------------------------------- */

static void test_serve(void **s) {
    vfs_run(scen_serve, false, true);
}
static void test_serve_rootless_user(void **s) {
    vfs_run(scen_serve, true, true);
}
static void test_no_orphans(void **s) {
    vfs_run(scen_no_orphans, false, true);
}
static void test_no_orphans_rootless_user(void **s) {
    vfs_run(scen_no_orphans, true, true);
}
static void test_idmap(void **s) {
    vfs_run(scen_idmap, false, false);
}
static void test_idmap_rootless_user(void **s) {
    vfs_run(scen_idmap, true, false);
}
static void test_errors(void **s) {
    vfs_run(scen_errors, false, false);
}
static void test_errors_rootless_user(void **s) {
    vfs_run(scen_errors, true, false);
}

/* mounts_count_entries counts every entry below the root, no links followed, and stops past
 * max; the limit it is compared with is at least the hard limit (what virtiofsd gets). */
static void test_count_entries(void **s) {
    char dir[] = "/tmp/dbx-count.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[128];
    for (int d = 0; d < 3; d++) {
        snprintf(p, sizeof(p), "%s/d%d", dir, d);
        assert_int_equal(mkdir(p, 0755), 0);
        for (int f = 0; f < 4; f++) {
            snprintf(p, sizeof(p), "%s/d%d/f%d", dir, d, f);
            int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            assert_true(fd >= 0);
            close(fd);
        }
    }
    snprintf(p, sizeof(p), "%s/link", dir);
    assert_int_equal(symlink("/usr", p), 0); /* counted once, not followed */
    uint64_t n = 0;
    dbx_error *err = NULL;
    assert_int_equal(mounts_count_entries(dir, 1000, &n, &err), 0);
    assert_int_equal(n, 3 + 12 + 1);
    assert_int_equal(mounts_count_entries(dir, 5, &n, &err), 0);
    assert_int_equal(n, 6);
    assert_true(mounts_count_entries("/nonexistent-dbx", 5, &n, &err) < 0);
    dbx_error_free(&err);

    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(mounts_nofile_limit() >= rl.rlim_max);
    /* 16 entries fit any limit worth having: no warning */
    assert_null(mounts_nofile_warning(dir));
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- the guard's setup data -------------------------------------------------------------- */

static char *valid_setup(size_t *ret_len, struct mounts_nested *nested) {
    static char *const argv[] = {"/usr/lib/qemu/virtiofsd", "--fd=3", "-o", "source=/src", NULL};
    static const char *const protected[] = {"secrets", "a/b", NULL};
    static char *gitdirs[] = {"sub/.git", NULL};
    *nested = (struct mounts_nested){.gitdirs = gitdirs};
    return mounts_guard_setup_encode(42, VIRTIOFSD, "/src", false, argv, protected, NULL, nested,
                                     ret_len);
}

static void expect_bad(const char *buf, size_t len, const char *want) {
    struct mounts_guard_setup s = {0};
    dbx_error *err = NULL;
    assert_int_equal(mounts_guard_setup_decode(buf, len, &s, &err), -EINVAL);
    assert_non_null(err);
    if (!dbx_str_has_prefix(err->msg, want)) fail_msg("'%s', want '%s...'", err->msg, want);
    assert_null(s.argv);
    dbx_error_free(&err);
}

/* A frame round-trips; every truncation, a wrong magic, a count or length over its cap, a NUL
 * in a string, a relative source and bytes left over are each refused with a message. */
static void test_setup_decode(void **state) {
    struct mounts_nested nested;
    size_t len = 0;
    char *frame = valid_setup(&len, &nested);
    const char *buf = frame + 4; /* after the length */
    size_t n = len - 4;
    uint32_t framed;
    memcpy(&framed, frame, 4);
    assert_int_equal(framed, n);

    struct mounts_guard_setup s = {0};
    dbx_error *err = NULL;
    assert_int_equal(mounts_guard_setup_decode(buf, n, &s, &err), 0);
    assert_int_equal(s.parent, 42);
    assert_string_equal(s.binary, VIRTIOFSD);
    assert_string_equal(s.source, "/src");
    assert_int_equal(dbx_strv_len(s.argv), 4);
    assert_string_equal(s.argv[3], "source=/src");
    assert_int_equal(dbx_strv_len(s.protected), 2);
    assert_string_equal(s.protected[1], "a/b");
    assert_string_equal(s.nested.gitdirs[0], "sub/.git");
    assert_null(s.nested.gitfiles);
    mounts_guard_setup_free(&s);

    for (size_t cut = 0; cut < n; cut++)
        expect_bad(buf, cut, "bad setup data: ");

    char *copy = dbx_xmalloc(n + 1);
    memcpy(copy, buf, n);
    copy[0] ^= 1;
    expect_bad(copy, n, "bad setup data: magic ");
    memcpy(copy, buf, n);
    memset(copy + 4, 0, 4);
    expect_bad(copy, n, "bad setup data: parent pid 0");
    /* the virtiofsd path: its length (u32 at 8), then its bytes at 12 */
    memcpy(copy, buf, n);
    uint32_t huge = 1u << 30;
    memcpy(copy + 8, &huge, 4);
    expect_bad(copy, n, "bad setup data: virtiofsd path of 1073741824 bytes");
    memcpy(copy, buf, n);
    copy[12 + 3] = '\0';
    expect_bad(copy, n, "bad setup data: virtiofsd path holds a NUL byte");
    memcpy(copy, buf, n);
    copy[n] = 'x';
    expect_bad(copy, n + 1, "bad setup data: 1 bytes left over");
    free(copy);
    free(frame);

    /* a count over its cap, and a relative source */
    char *many[MOUNTS_PROTECTED_MAX + 2];
    for (size_t i = 0; i <= MOUNTS_PROTECTED_MAX; i++)
        many[i] = "p";
    many[MOUNTS_PROTECTED_MAX + 1] = NULL;
    static char *const argv[] = {"virtiofsd", NULL};
    frame = mounts_guard_setup_encode(1, VIRTIOFSD, "/src", false, argv, (const char *const *)many,
                                      NULL, &nested, &len);
    expect_bad(frame + 4, len - 4, "bad setup data: 257 protected paths (at most 256)");
    free(frame);
    frame = mounts_guard_setup_encode(1, VIRTIOFSD, "src", false, argv, NULL, NULL, &nested, &len);
    expect_bad(frame + 4, len - 4, "bad setup data: source is not absolute");
    free(frame);
}

/* `devbox __virtiofsd-guard` itself, given a malformed frame on its sync socket: it reports
 * what is wrong the way the spawner reads it ('E', code, message), logs it, and exits 125,
 * never crashing.  Run any other way (no sync socket) it says so and exits 125.  Both programs
 * that answer it: devbox-guard (what the supervisor starts) and the full devbox (its fallback). */
static const char *guard_bin;

static void guard_run(const void *frame, size_t len, int want_code, int *ret_status, char *msg,
                      size_t size) {
    int sv[2], lg[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pipe2(lg, O_CLOEXEC), 0);
    char *const argv[] = {"devbox", "__virtiofsd-guard", NULL};
    static char *const envp[] = {NULL};
    const struct dbx_spawn_fd fds[] = {{2, lg[1]}, {3, DBX_SPAWN_DEVNULL}, {4, sv[1]}};
    const struct dbx_spawn sp = {.path = guard_bin,
                                 .argv = argv,
                                 .envp = envp,
                                 .pdeathsig = SIGKILL,
                                 .fds = fds,
                                 .nfds = frame ? 3 : 1};
    pid_t pid = 0;
    dbx_error *err = NULL;
    assert_int_equal(dbx_spawn(&sp, &pid, &err), 0);
    close(sv[1]);
    close(lg[1]);
    if (frame) assert_int_equal(send(sv[0], frame, len, MSG_NOSIGNAL), (ssize_t)len);
    shutdown(sv[0], SHUT_WR); /* a frame cut short ends here */
    char reply[1 + 4 + 1024];
    size_t got = 0;
    for (ssize_t r;
         got < sizeof(reply) && (r = recv(sv[0], reply + got, sizeof(reply) - got, 0));) {
        if (r < 0 && errno == EINTR) continue;
        assert_true(r > 0);
        got += (size_t)r;
    }
    *ret_status = dbx_spawn_wait(pid);
    char log[1024];
    ssize_t nl = read(lg[0], log, sizeof(log) - 1);
    log[nl > 0 ? nl : 0] = '\0';
    close(sv[0]);
    close(lg[0]);
    if (!frame) {
        assert_int_equal(got, 0);
        snprintf(msg, size, "%s", log);
        return;
    }
    assert_true(got > 5);
    assert_int_equal(reply[0], 'E');
    int32_t code;
    memcpy(&code, reply + 1, 4);
    assert_int_equal(code, want_code);
    snprintf(msg, size, "%.*s", (int)(got - 5), reply + 5);
    char want_log[1200];
    snprintf(want_log, sizeof(want_log), "devbox: virtiofsd setup: %s\n", msg);
    assert_string_equal(log, want_log);
}

static void guard_rejects_bad_setup(const char *bin) {
    guard_bin = bin;
    char msg[1100];
    int status = 0;
    uint32_t bad[3] = {8, 0x12345678u, 1};
    guard_run(bad, sizeof(bad), EINVAL, &status, msg, sizeof(msg));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 125);
    assert_string_equal(msg, "bad setup data: magic 0x12345678");

    uint32_t big = (4u << 20) + 1;
    guard_run(&big, sizeof(big), EINVAL, &status, msg, sizeof(msg));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 125);
    assert_string_equal(msg, "bad setup data: 4194305 bytes (at most 4194304)");

    /* a valid frame cut short: the guard reads until EOF and says so */
    struct mounts_nested nested;
    size_t len = 0;
    char *frame = valid_setup(&len, &nested);
    guard_run(frame, len - 3, EPIPE, &status, msg, sizeof(msg));
    free(frame);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 125);
    assert_string_equal(msg, "read the setup data: Broken pipe");

    guard_run(NULL, 0, 0, &status, msg, sizeof(msg));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 125);
    assert_string_equal(msg, "devbox: __virtiofsd-guard is started by devbox itself\n");
}

static void test_guard_rejects_bad_setup(void **state) {
    guard_rejects_bad_setup(test_guard_bin());
    guard_rejects_bad_setup(test_devbox_bin());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve),
        cmocka_unit_test(test_serve_rootless_user),
        cmocka_unit_test(test_no_orphans),
        cmocka_unit_test(test_no_orphans_rootless_user),
        cmocka_unit_test(test_idmap),
        cmocka_unit_test(test_idmap_rootless_user),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_rootless_user),
        cmocka_unit_test(test_count_entries),
        cmocka_unit_test(test_setup_decode),
        cmocka_unit_test(test_guard_rejects_bad_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/helpers-vfs.c: the virtiofsd tests' scenario harness (see helpers-vfs.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <grp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "tests/unit/devbox-bin.h"
#include "tests/unit/helpers-vfs.h"
#include "tests/unit/helpers.h"

/* e->dir: made by vfs_run, which removes it */
static void vfs_env_setup(struct vfs_env *e) {
    dbx_error *err = NULL;
    if (mounts_idmap_get(&e->map, &err) < 0) {
        fprintf(stderr, "skip: %s\n", err->msg);
        _exit(SKIP_CODE);
    }
    snprintf(e->src, sizeof(e->src), "%s/src", e->dir);
    snprintf(e->sock, sizeof(e->sock), "%s/vfs.sock", e->dir);
    CHECK(mkdir(e->src, 0755) == 0, "mkdir: %m");

    e->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", e->sock);
    CHECK(bind(e->listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %m");
    CHECK(listen(e->listen_fd, 1) == 0, "listen: %m");
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe: %m");
    e->log_rd = p[0];
    e->log_wr = p[1];
    dbx_set_nonblock(e->log_rd, true);
}

struct mounts_vfs_config vfs_env_config(const struct vfs_env *e, const char *const *protected) {
    return (struct mounts_vfs_config){.source = e->src,
                                      .listen_fd = e->listen_fd,
                                      .log_fd = e->log_wr,
                                      .protected = protected,
                                      .guard_exe = test_guard_bin()};
}

size_t vfs_read_log(struct vfs_env *e, char *buf, size_t size) {
    ssize_t n = read(e->log_rd, buf, size - 1);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

int vfs_connect(const struct vfs_env *e) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", e->sock);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %m");
    return fd;
}

uint64_t vhost_user_get_features(int fd, uint64_t *ret_features) {
    uint32_t req[3] = {1 /* VHOST_USER_GET_FEATURES */, 1 /* version 1 */, 0};
    uint64_t t0 = dbx_now_ms();
    CHECK(dbx_write_all(fd, req, sizeof(req)) == 0, "send GET_FEATURES: %m");
    unsigned char buf[12 + 8];
    size_t got = 0;
    while (got < sizeof(buf)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        CHECK(poll(&p, 1, 5000) == 1, "no reply from virtiofsd within 5 s");
        ssize_t n = read(fd, buf + got, sizeof(buf) - got);
        CHECK(n > 0, "read reply: %zd %m", n);
        got += (size_t)n;
    }
    uint32_t hdr[3];
    memcpy(hdr, buf, sizeof(hdr));
    CHECK(hdr[0] == 1 && hdr[1] == 0x5 && hdr[2] == 8, "reply header %u %#x %u", hdr[0], hdr[1],
          hdr[2]);
    memcpy(ret_features, buf + 12, 8);
    return dbx_now_ms() - t0;
}

void vfs_run(void (*fn)(struct vfs_env *), bool as_user, bool needs_virtiofsd) {
    uid_t uid = 0;
    gid_t gid = 0;
    if (as_user && getuid() != 0) skip_because("switching to the test user needs root");
    if (as_user && !test_user(&uid, &gid))
        skip_because("no test user (DBX_TEST_USER, default 'dbxtest'; `useradd -m dbxtest`)");
    if (needs_virtiofsd && access(VIRTIOFSD, X_OK) < 0) skip_because("no %s", VIRTIOFSD);
    /* Made and removed out here: what virtiofsd creates as the box's root belongs to the
     * user's subordinate ids, which the test user cannot remove (as_user runs left a
     * /tmp/dbx-test-vfs-* with worktrees/wt/logs/refs behind each time); root can. */
    struct vfs_env e = {0};
    strcpy(e.dir, "/tmp/dbx-test-vfs-XXXXXX");
    assert_non_null(mkdtemp(e.dir));
    if (as_user) assert_int_equal(chown(e.dir, uid, gid), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (as_user && (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
                        setresuid(uid, uid, uid) < 0)) {
            fprintf(stderr, "drop to uid %u: %m\n", (unsigned)uid);
            _exit(1);
        }
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        vfs_env_setup(&e);
        if (chdir(e.dir) < 0) _exit(1);
        fn(&e);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    test_rm_tree(e.dir);
    /* the child printed why (vfs_env_setup) */
    if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP_CODE) skip_because("see above");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

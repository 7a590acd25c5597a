/* tests/unit/helpers.c: fixtures shared by the unit tests (see helpers.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/common.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "profiles/profiles.h"
#include "tests/unit/helpers.h"

void test_check_failed(const char *file, int line, const char *cond, const char *fmt, ...) {
    int saved = errno;
    fprintf(stderr, "%s:%d: check failed: %s", file, line, cond);
    if (fmt[0] && fmt[1]) {
        va_list ap;
        va_start(ap, fmt);
        fputc(':', stderr);
        errno = saved; /* for %m */
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    } else {
        fprintf(stderr, " (errno %d)", saved);
    }
    fputc('\n', stderr);
    _exit(1);
}

void test_send_fd(int sock, int fd) {
    char byte = 'F';
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    if (sendmsg(sock, &mh, 0) != 1) _exit(3);
}

int test_recv_fd(int sock) {
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    if (recvmsg(sock, &mh, 0) != 1) return -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (!cm || cm->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    return fd;
}

bool test_have(const char *prog) {
    static const char *const dirs[] = {"/usr/sbin", "/usr/bin", "/sbin", "/bin"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(dirs); i++) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", dirs[i], prog);
        if (access(p, X_OK) == 0) return true;
    }
    return false;
}

bool test_user(uid_t *uid, gid_t *gid) {
    const char *name = getenv("DBX_TEST_USER");
    struct passwd *pw = getpwnam(name && *name ? name : "dbxtest");
    if (!pw || pw->pw_uid == 0) return false;
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return true;
}

/* fd-relative and never through a link: a test directory may hold a symlink to /etc
 * (test-profiles-load), and following it would empty the target.  Only a real directory is
 * entered (O_DIRECTORY|O_NOFOLLOW); anything else, a symlink included, is unlinked itself. */
static void rm_at(int dfd, const char *name) {
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        unlinkat(dfd, name, 0);
        return;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rm_at(dirfd(d), de->d_name);
    closedir(d);
    unlinkat(dfd, name, AT_REMOVEDIR);
}

void test_rm_tree(const char *path) {
    rm_at(AT_FDCWD, path);
}

pid_t test_find_child(pid_t parent) {
    DIR *d = opendir("/proc");
    struct dirent *de;
    pid_t found = 0;
    while (d && (de = readdir(d)) && !found) {
        char path[300], buf[512];
        uint64_t v;
        if (dbx_parse_u64(de->d_name, 1, INT32_MAX, &v) < 0) continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        char *rp = strrchr(buf, ')');
        int ppid = 0;
        if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == parent) found = (pid_t)v;
    }
    if (d) closedir(d);
    return found;
}

bool test_pid_gone(pid_t pid) {
    return kill(pid, 0) < 0 && errno == ESRCH;
}

bool test_wait_exit(pid_t pid, int ms, int *status) {
    for (int i = 0; i < ms / 10; i++) {
        if (waitpid(pid, status, WNOHANG) == pid) return true;
        usleep(10000);
    }
    return false;
}

void test_write_file(const char *path, const char *text, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    CHECK(fd >= 0, "create '%s': %m", path);
    CHECK(dbx_write_all(fd, text, strlen(text)) == 0, "write: %m");
    close(fd);
}

void test_put_file(const char *dir, const char *rel, const char *text) {
    char *p = dbx_xasprintf("%s/%s", dir, rel), *d = dbx_xstrdup(p);
    *strrchr(d, '/') = '\0';
    dbx_error *err = NULL;
    CHECK(dbx_mkdir_p(d, 0755, &err) == 0, "mkdir -p '%s': %s", d, err ? err->msg : "?");
    test_write_file(p, text, 0644);
    free(d);
    free(p);
}

int test_repo_setup(void **state) {
    struct repo *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    snprintf(r->dir, sizeof(r->dir), "%s/dbx-prof-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(r->dir));
    r->fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(r->fd >= 0);
    *state = r;
    return 0;
}

int test_repo_teardown(void **state) {
    struct repo *r = *state;
    close(r->fd);
    test_rm_tree(r->dir);
    free(r);
    return 0;
}

const char *test_builtin_profiles(void) {
    static char dir[PATH_MAX];
    if (!dir[0] && !realpath("profiles", dir)) fail_msg("run from the source tree root");
    return dir;
}

void test_write_at(int dfd, const char *name, const char *text) {
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(dbx_write_all(fd, text, strlen(text)), 0);
    close(fd);
}

char *test_config_load(const struct repo *r, const char *text, struct profile_user *ret) {
    test_write_at(r->fd, "config.ini", text);
    dbx_error *err = NULL;
    if (profile_user_load(r->dir, ret, &err) < 0) {
        char *m = dbx_xstrdup(err->msg);
        dbx_error_free(&err);
        return m;
    }
    return NULL;
}

char *test_profile_load(const struct repo *r, const struct profile_user *u, struct profile *ret) {
    struct profile p = {0};
    dbx_error *err = NULL;
    if (profile_load(r->fd, r->dir, u, test_builtin_profiles(), &p, &err) < 0) {
        char *m = dbx_xstrdup(err->msg);
        dbx_error_free(&err);
        return m;
    }
    if (ret)
        *ret = p;
    else
        profile_clear(&p);
    return NULL;
}

void test_sh(const char *fmt, ...) {
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    assert_true(vasprintf(&cmd, fmt, ap) > 0);
    va_end(ap);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

char test_tmp[64];

int test_home_setup(void **state) {
    (void)state;
    snprintf(test_tmp, sizeof(test_tmp), "/tmp/dbx-unit-XXXXXX");
    assert_non_null(mkdtemp(test_tmp));
    char *home = dbx_xasprintf("%s/home", test_tmp);
    setenv("DEVBOX_HOME", home, 1);
    free(home);
    return 0;
}

int test_home_teardown(void **state) {
    (void)state;
    test_sh("rm -rf --one-file-system '%s'", test_tmp);
    return 0;
}

char *test_fd_text(int fd) {
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *s = dbx_xcalloc(1, (size_t)st.st_size + 1);
    assert_int_equal(pread(fd, s, (size_t)st.st_size, 0), st.st_size);
    return s;
}

int test_run_cmd(int (*fn)(struct cmd_ctx *, int, char **), struct cmd_ctx *ctx, char **argv,
                 char **ret_out, char **ret_err) {
    int argc = 0;
    while (argv[argc])
        argc++;
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = memfd_create("out", MFD_CLOEXEC), fe = memfd_create("err", MFD_CLOEXEC);
    assert_true(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = fn(ctx, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    *ret_out = test_fd_text(fo);
    *ret_err = test_fd_text(fe);
    close(so), close(se), close(fo), close(fe);
    return rc;
}

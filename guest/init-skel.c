/* guest/init-skel.c: a new home of the box's user gets the image's /etc/skel, as `useradd -m`
 * gives one.
 *
 * Found in use: `devbox enter` in a Debian box opened bash in an empty home, without Debian's
 * ~/.bashrc (its history settings, `ls` colours, lesspipe) or ~/.profile (~/.local/bin, where
 * `pip install --user` and pipx put commands, on PATH).  Every distribution keeps those in
 * /etc/skel for exactly this.
 *
 * The image (and what the box's root changed on its disk since) is the box's own, but PID 1
 * runs as root: nothing is followed, read or written through a symbolic link, a FIFO or device
 * planted in /etc/skel is not opened (O_NONBLOCK, then fstat says what it is), a file with other
 * links is not copied (its content could be any of the box's root's files), and what is copied
 * is capped in count, size and depth.  Copying is a convenience: a failure leaves the home as far
 * as it got (everything in it the user's), and the boot goes on.  Done when the user's entry is
 * made, once: the home may exist already (a share below it made it), and names there are kept. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <dirent.h>
#include <sys/stat.h>

#define SKEL_ENTRIES_MAX 256u
#define SKEL_FILE_MAX (1u << 20)
#define SKEL_BYTES_MAX (8u << 20)
#define SKEL_DEPTH_MAX 4u

struct skel {
    uid_t uid;
    gid_t gid;
    unsigned entries; /* left to look at */
    size_t bytes;     /* left to copy */
};

/* Each thing made is the user's at once (an interrupted copy leaves nothing of root's in the
 * home); its mode is set last. */
static void copy_file(int from, int to, const char *name, mode_t mode, struct skel *k) {
    _cleanup_close_ int in =
        openat(from, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        st.st_size > (off_t)SKEL_FILE_MAX || (size_t)st.st_size > k->bytes)
        return;
    _cleanup_close_ int out =
        openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) return;
    bool ok = fchown(out, k->uid, k->gid) == 0;
    char buf[16384];
    ssize_t n = 0;
    off_t left = st.st_size; /* no more than fstat said, should it grow meanwhile */
    while (ok && left > 0 && (n = read(in, buf, sizeof(buf))) > 0) {
        size_t c = (size_t)(n < left ? n : left);
        ok = dbx_write_all(out, buf, c) == 0;
        left -= (off_t)c;
    }
    k->bytes -= (size_t)st.st_size;
    /* a file cut short (a full disk) is not the image's file: none rather than half */
    if (!ok || n < 0 || fchmod(out, mode & 0777) < 0) unlinkat(to, name, 0);
}

static void copy_dir(int from, int to, unsigned depth, struct skel *k) {
    int fd = fcntl(from, F_DUPFD_CLOEXEC, 3);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) && k->entries > 0) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        k->entries--;
        if (S_ISREG(st.st_mode)) {
            copy_file(dirfd(d), to, de->d_name, st.st_mode, k);
        } else if (S_ISDIR(st.st_mode) && depth < SKEL_DEPTH_MAX) {
            if (mkdirat(to, de->d_name, 0700) < 0) continue;
            _cleanup_close_ int sub_to =
                openat(to, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub_to < 0 || fchown(sub_to, k->uid, k->gid) < 0) continue;
            _cleanup_close_ int sub_from =
                openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub_from >= 0) copy_dir(sub_from, sub_to, depth + 1, k);
            (void)!fchmod(sub_to, st.st_mode & 0777);
        }
    }
    closedir(d);
}

void skel_copy(int skel, int home, uid_t uid, gid_t gid) {
    struct skel k = {uid, gid, SKEL_ENTRIES_MAX, SKEL_BYTES_MAX};
    copy_dir(skel, home, 0, &k);
}

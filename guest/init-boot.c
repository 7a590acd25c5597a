/* guest/init-boot.c: boot phases 1-4 of the guest init: API filesystems, kernel modules, the
 * root disk and root switch, process setup, and the agent port. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <dirent.h>
#include <endian.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>

#define WAIT_STEP_MS 5
#define ROOT_WAIT_MS 10000
#define PORT_WAIT_MS 10000

static void sleep_ms(unsigned ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int mount_at(const char *src, const char *target, const char *type, unsigned long flags,
                    const char *data, dbx_error **err) {
    if (mkdir(target, 0755) < 0 && errno != EEXIST)
        return dbx_error_set(err, errno, "mkdir '%s'", target);
    if (mount(src, target, type, flags, data) < 0)
        return dbx_error_set(err, errno, "mount %s on '%s'", type, target);
    return 0;
}

void boot_stdio(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0) continue;
        /* The kernel opens /dev/console for init only if the initramfs has that node. */
        int c = open("/dev/console", O_RDWR | O_NOCTTY);
        if (c < 0) c = open("/dev/null", O_RDWR | O_NOCTTY);
        if (c >= 0 && c != fd) {
            dup2(c, fd);
            close(c);
        }
    }
}

int boot_api_fs(struct agent *a, dbx_error **err) {
    const unsigned long nse = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount_at("proc", "/proc", "proc", nse, NULL, err) < 0 ||
        mount_at("sysfs", "/sys", "sysfs", nse, NULL, err) < 0 ||
        mount_at("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", err) < 0)
        return -1;
    boot_stdio();
    return 0;
}

/* ---- modules ---------------------------------------------------------------------------- */

static int load_module(const char *name, dbx_error **err) {
    if (strchr(name, '/') || name[0] == '.')
        return dbx_error_set(err, EINVAL, "bad module name '%s' in /modules.order", name);
    _cleanup_free_ char *path = dbx_xasprintf("/lib/modules/%s", name);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", path);
    if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
        return dbx_error_set(err, errno, "load '%s'", name);
    return 0;
}

int boot_modules(struct agent *a, dbx_error **err) {
    /* The devbox kernel is built without module support (no /proc/modules): everything is in
     * it, and an initramfs that still lists modules (made for another kernel) is ignored. */
    if (access("/proc/modules", F_OK) < 0 && errno == ENOENT) {
        init_log("modules: this kernel loads none (everything built in)");
        return 0;
    }
    _cleanup_free_ char *text = NULL;
    if (dbx_read_file_at(AT_FDCWD, "/modules.order", 64 * 1024, &text, NULL, err) < 0) return -1;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        l[strcspn(l, " \t\r")] = '\0';
        if (l[0] == '\0') continue;
        if (load_module(l, err) < 0) return -1;
        /* The initramfs stays in RAM after the root switch; the module is in the kernel now,
         * so give its file's pages back. */
        _cleanup_free_ char *path = dbx_xasprintf("/lib/modules/%s", l);
        unlink(path);
    }
    return 0;
}

/* ---- root ------------------------------------------------------------------------------- */

static int wait_for_path(const char *path, unsigned ms) {
    for (unsigned t = 0;; t += WAIT_STEP_MS) {
        if (access(path, F_OK) == 0) return 0;
        if (t >= ms) return -ENOENT;
        sleep_ms(WAIT_STEP_MS);
    }
}

/* Late mounts on the new root: ptys, shared memory, /run, cgroups. */
static int root_late_mounts(dbx_error **err) {
    const unsigned long ns = MS_NOSUID | MS_NODEV;
    /* newinstance: a private pts namespace, so /dev/ptmx (devtmpfs's node, which since Linux
     * 4.7 resolves to the "pts" instance beside it) hands out slaves from this mount. */
    if (mount_at("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                 "newinstance,ptmxmode=0666,mode=0620,gid=5", err) < 0)
        return -1;
    if (access("/dev/ptmx", F_OK) < 0 && symlink("pts/ptmx", "/dev/ptmx") < 0)
        return dbx_error_set(err, errno, "symlink '/dev/ptmx'");
    if (mount_at("shm", "/dev/shm", "tmpfs", ns, "mode=1777", err) < 0 ||
        mount_at("run", "/run", "tmpfs", ns, "mode=0755", err) < 0)
        return -1;
    /* cgroup2 is optional: commands run fine without it, only resource control is lost.
     * favordynmods (Linux 6.0+): every exec moves its child into the box cgroup, and without
     * it each migration waits for an RCU grace period (milliseconds under TCG). */
    if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", ns | MS_NOEXEC, "favordynmods") < 0 &&
        mount("cgroup2", "/sys/fs/cgroup", "cgroup2", ns | MS_NOEXEC, NULL) < 0)
        init_log("root: mount cgroup2 on '/sys/fs/cgroup': %s (ignored)", strerror(errno));
    return 0;
}

/* Linux 6.1 fs/ext4/ext4.h (not in the uapi headers): grow a mounted ext4 to this many blocks */
#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, uint64_t)
#endif
#define EXT4_SB_OFFSET 1024
#define EXT4_FEATURE_INCOMPAT_64BIT 0x80

/* The block count and block size in the ext4 superblock on dev (s_blocks_count_lo at 4,
 * s_log_block_size at 24, s_feature_incompat at 96, s_blocks_count_hi at 0x150). */
static int ext4_sb_blocks(int dev, uint64_t *ret_blocks, uint64_t *ret_bsize, dbx_error **err) {
    uint8_t sb[1024];
    ssize_t n = pread(dev, sb, sizeof(sb), EXT4_SB_OFFSET);
    if (n != (ssize_t)sizeof(sb))
        return dbx_error_set(err, n < 0 ? errno : EIO, "read the ext4 superblock");
    uint32_t lo, log_bs, incompat, hi = 0;
    memcpy(&lo, sb + 4, 4);
    memcpy(&log_bs, sb + 24, 4);
    memcpy(&incompat, sb + 96, 4);
    if (le32toh(incompat) & EXT4_FEATURE_INCOMPAT_64BIT) memcpy(&hi, sb + 0x150, 4);
    if (le32toh(log_bs) > 6)
        return dbx_error_setx(err, EINVAL, "bad block size in the ext4 superblock");
    *ret_blocks = (uint64_t)le32toh(hi) << 32 | le32toh(lo);
    *ret_bsize = UINT64_C(1024) << le32toh(log_bs);
    return 0;
}

/* Grow the root ext4 (mounted at root) online to fill its block device, so a disk made larger
 * while the VM was stopped (`[box] disk`, or qemu-img resize) is usable after the next boot.
 * Only ever grows; the kernel does the work (EXT4_IOC_RESIZE_FS, as resize2fs does online). */
static int root_grow(const char *dev_path, const char *root, dbx_error **err) {
    _cleanup_close_ int dev = open(dev_path, O_RDONLY | O_CLOEXEC);
    if (dev < 0) return dbx_error_set(err, errno, "open '%s'", dev_path);
    uint64_t bytes = 0;
    if (ioctl(dev, BLKGETSIZE64, &bytes) < 0)
        return dbx_error_set(err, errno, "size of '%s'", dev_path);
    _cleanup_close_ int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct statfs sf;
    if (rfd < 0 || fstatfs(rfd, &sf) < 0) return dbx_error_set(err, errno, "statfs '%s'", root);
    if (sf.f_type != EXT4_SUPER_MAGIC)
        return dbx_error_setx(err, EOPNOTSUPP, "'%s' is not ext4", root);
    uint64_t blocks = 0, bsize = 0;
    if (ext4_sb_blocks(dev, &blocks, &bsize, err) < 0) return dbx_error_wrap(err, "'%s'", dev_path);
    if (bsize != (uint64_t)sf.f_bsize)
        return dbx_error_setx(err, EINVAL,
                              "block size %" PRIu64 " in the superblock, %ld from statfs", bsize,
                              (long)sf.f_bsize);
    uint64_t want = bytes / bsize;
    if (want <= blocks) return 0;
    if (ioctl(rfd, EXT4_IOC_RESIZE_FS, &want) < 0)
        return dbx_error_set(err, errno, "grow '%s' from %" PRIu64 " to %" PRIu64 " blocks", root,
                             blocks, want);
    init_log("root: grew the filesystem from %" PRIu64 " to %" PRIu64 " blocks of %" PRIu64, blocks,
             want, bsize);
    return 0;
}

int boot_root(struct agent *a, dbx_error **err) {
    if (wait_for_path("/dev/vda", ROOT_WAIT_MS) < 0)
        return dbx_error_set(err, ENOENT, "'/dev/vda' did not appear within %u s",
                             ROOT_WAIT_MS / 1000);
    /* discard: the blocks ext4 frees go down to the host's qcow2 overlay (discard=unmap) at
     * each journal commit, so deleted files give the host its disk back (t-discard).  Measured
     * under TCG (Debian 6.1 kernel, host load 10): rm -rf of 3,000 files + 256 MiB then sync
     * took 1.45/2.43 s with it, 0.99/2.95 s without: within the noise, and no periodic fstrim
     * (a timer and a child in PID 1) to run. */
    if (mount_at("/dev/vda", "/newroot", "ext4", 0, "discard", err) < 0) return -1;
    /* not fatal: a root that cannot grow still boots, at its old size */
    _cleanup_error_ dbx_error *gerr = NULL;
    if (root_grow("/dev/vda", "/newroot", &gerr) < 0)
        init_log("root: %s (the root filesystem keeps its size)", gerr->msg);
    static const char *const moved[] = {"/dev", "/proc", "/sys"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(moved); i++) {
        _cleanup_free_ char *dst = dbx_xasprintf("/newroot%s", moved[i]);
        if (mkdir(dst, 0755) < 0 && errno != EEXIST)
            return dbx_error_set(err, errno, "mkdir '%s'", dst);
        if (mount(moved[i], dst, NULL, MS_MOVE, NULL) < 0)
            return dbx_error_set(err, errno, "move '%s' to '%s'", moved[i], dst);
    }
    /* switch_root without deleting the initramfs: only /init (this binary) and
     * /modules.order are left in it (the modules were unlinked after loading). */
    if (chdir("/newroot") < 0) return dbx_error_set(err, errno, "chdir '/newroot'");
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
        return dbx_error_set(err, errno, "move '/newroot' to '/'");
    if (chroot(".") < 0) return dbx_error_set(err, errno, "chroot");
    if (chdir("/") < 0) return dbx_error_set(err, errno, "chdir '/'");
    return root_late_mounts(err);
}

/* ---- process ---------------------------------------------------------------------------- */

int boot_process(struct agent *a, dbx_error **err) {
    /* oom_score_adj stays 0: the kernel's OOM killer never picks the global init
     * (mm/oom_kill.c, oom_unkillable_task), so -1000 here protected nothing and made every
     * command write its own back to 0 (a procfs write per exec).  Commands inherit the 0;
     * under a confined plan policy_child_verify checks it, and the box cannot change init's
     * (box_ro_binds). */
    if (a->test_mode && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        /* Tests see orphans reparented to us, as PID 1 would. */
        return dbx_error_set(err, errno, "set child subreaper");
    }
    /* SCHED_BATCH: a process init wakes does not preempt the one running, so the command that
     * closes init's pipes and exits finishes its exit before init runs, and a writer fills its
     * pipe before init drains it: one switch where there were several, and under TCG each
     * switch between processes costs a flush of the vCPU's TLB and jump cache (a round trip of
     * two processes over a pipe 250-330 us in a box, of two threads 75-140 us).  Init still
     * gets its fair share; a box process that wakes it runs on until it blocks or the tick
     * preempts it.  Commands and the spare are SCHED_OTHER (exec: child_run).  Measured
     * 2026-12-04 under TCG, 1 vCPU, interleaved against the build before: `head -c 20000000
     * /dev/zero` through `devbox exec` 4.3/6.3 s -> 2.6/2.8 s, 5 MB while a busy loop ran in
     * the box 2.2/2.4 -> 1.2/1.3 s, warm `devbox exec true` p50 -0.4/-0.6/-1.0 ms in three
     * runs of 60-100 (bench/ab.py), its context switches in the guest 27 -> 21-22. */
    static const struct sched_param zero = {0};
    if (!a->test_mode && sched_setscheduler(0, SCHED_BATCH, &zero) < 0)
        return dbx_error_set(err, errno, "set init's scheduling policy");
    /* A host that goes away mid-write must give EPIPE, not kill PID 1. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) return dbx_error_set(err, errno, "ignore SIGPIPE");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) return dbx_error_set(err, errno, "block SIGCHLD");
    a->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (a->sigfd < 0) return dbx_error_set(err, errno, "signalfd");
    return 0;
}

/* ---- agent port ------------------------------------------------------------------------- */

/* The /dev name of the virtio-serial port called `want`, or NULL if none (yet). */
static char *find_port(const char *want) {
    DIR *d = opendir("/sys/class/virtio-ports");
    if (!d) return NULL;
    char *found = NULL;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        _cleanup_free_ char *p = dbx_xasprintf("/sys/class/virtio-ports/%s/name", de->d_name);
        _cleanup_free_ char *name = NULL;
        if (dbx_read_file_at(AT_FDCWD, p, 4096, &name, NULL, NULL) < 0) continue;
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, want) == 0) found = dbx_xstrdup(de->d_name);
    }
    closedir(d);
    return found;
}

void boot_send_hello(struct agent *a) {
    struct utsname u;
    if (uname(&u) < 0) snprintf(u.release, sizeof(u.release), "unknown");
    struct dbx_buf b = {0};
    dbx_hello_encode(&b, u.release);
    agent_send(a, DBX_MSG_HELLO, 0, b.data, b.len);
    dbx_buf_free(&b);
}

int boot_agent(struct agent *a, dbx_error **err) {
    static const char want[] = "org.devbox.agent";
    /* The port appears when the host's virtio-serial control queue announces it, after the
     * module loaded; its /dev node follows the sysfs entry. */
    for (unsigned t = 0;; t += WAIT_STEP_MS) {
        _cleanup_free_ char *dev = find_port(want);
        if (dev) {
            _cleanup_free_ char *path = dbx_xasprintf("/dev/%s", dev);
            a->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
            if (a->fd >= 0) break;
            if (errno != ENOENT || t >= PORT_WAIT_MS)
                return dbx_error_set(err, errno, "open '%s'", path);
        } else if (t >= PORT_WAIT_MS) {
            return dbx_error_set(err, ENOENT, "no virtio-serial port named '%s' within %u s", want,
                                 PORT_WAIT_MS / 1000);
        }
        sleep_ms(WAIT_STEP_MS);
    }
    boot_send_hello(a);
    return 0;
}

/* ---- issue 13: extra shares (helper D2) ---- */

int boot_mount_shares(struct agent *a, const struct dbx_setup *su, dbx_error **err) {
    for (uint32_t i = 0; i < su->nshares; i++) {
        const struct dbx_share *sh = &su->shares[i];
        /* defensively again: never over a directory the box needs, never through the
         * workspace (a mkdir there would land on the host) */
        size_t wl = strlen(su->ws_path);
        if (dbx_share_path_reserved(sh->path) ||
            (su->ws_tag[0] && !strncmp(sh->path, su->ws_path, wl) &&
             (sh->path[wl] == '/' || sh->path[wl] == '\0')))
            return dbx_error_setx(err, EINVAL, "share '%s': path '%s' refused", sh->tag, sh->path);
        if (!a->test_mode && dbx_mkdir_p(sh->path, 0755, err) < 0)
            return dbx_error_wrap(err, "share '%s'", sh->tag);
        unsigned long flags = MS_NOSUID | MS_NODEV | (sh->readonly ? MS_RDONLY : 0);
        if (mount(sh->tag, sh->path, "virtiofs", flags, NULL) < 0)
            return dbx_error_set(err, errno, "mount virtiofs '%s' on '%s'", sh->tag, sh->path);
    }
    return 0;
}

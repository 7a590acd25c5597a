/* vm/vm.h: everything about the virtual machine itself: the guest kernel and initramfs, base
 * and per-project disks, the accelerator choice and the QEMU process.  Library code: no
 * printing; errors come back as dbx_error values. */
#pragma once

#include "../common/common.h"
#include "../common/netaddr.h"

#include <sys/stat.h>

/* ---- kernel + initramfs ----------------------------------------------------------------- */

struct vm_kernel {
    char *vmlinuz;   /* absolute path of the kernel image */
    char *initramfs; /* absolute path of the initramfs (newc cpio) holding init + modules */
    char *release;   /* e.g. "6.1.0-56-cloud-amd64" */
};

/* Make sure the Debian cloud kernel is unpacked under `kernel_dir` (created 0700 if missing),
 * fetching it without root the first time (`apt-cache depends linux-image-cloud-amd64` names
 * the versioned package; `apt-get download` + `dpkg-deb -x` in a temp dir; rename into place),
 * and that an initramfs exists that holds `init_path` as /init plus the guest's modules
 * (virtio_ring virtio virtio_mmio virtio_blk virtio_console fuse virtiofs virtio_net
 * virtio_balloon, with
 * dependencies from `modinfo -F depends` (net_failover, failover), in dependency order) listed
 * in /modules.order.  A release unpacked by an older devbox for a different module list is
 * unpacked again.  The initramfs is
 * cached by a hash of its inputs, so a rebuilt init gets a new one; one that no start has used
 * for a day is removed (vm_initramfs_prune: both kernels' kinds).  Concurrent callers are
 * serialized with flock on kernel_dir/lock.  DEVBOX_KERNEL_DEB=path.deb uses a local package
 * instead of downloading.  On success fills *ret (caller frees with vm_kernel_clear). */
int vm_kernel_ensure(const char *kernel_dir, const char *init_path, struct vm_kernel *ret,
                     dbx_error **err);
void vm_kernel_clear(struct vm_kernel *k);

/* ---- disks ------------------------------------------------------------------------------ */

/* A root filesystem assembled from tar layers applied in order (OCI image layer semantics),
 * then written out as a read-only base disk.  Nothing is unpacked on the host filesystem:
 * file data is spooled into one scratch file, metadata kept in memory.
 * Kept: regular files, directories, symlinks, hard links (also to files of earlier layers),
 * character/block devices, FIFOs; permission bits including setuid/setgid/sticky; 32-bit
 * numeric owners (names are never looked up); mtimes (whole seconds, clamped to
 * 1970..2038); extended attributes in the user., security. (file capabilities, SELinux) and
 * trusted. namespaces (pax SCHILY.xattr.* / LIBARCHIVE.xattr.*; others, such as system.* ACLs,
 * are dropped).  A later entry replaces an earlier one at the same path (a non-directory
 * replaces a whole subtree; a directory over a directory merges and takes the newer
 * metadata); parents missing from a layer are created root-owned 0755.  Names resolve under
 * the root as in containerd: a leading '/' is dropped, '..' removes the component before it,
 * and an entry that resolves to the root itself ("./", "/") is skipped, so the root stays
 * 0755 root:root.
 * Refused, with a one-line error naming the layer and the entry: a '..' that would leave
 * the root, control characters, entries below a symlink or a non-directory, hard links to
 * nothing, to directories or out of the tree, sockets and other types, bad whiteouts, and
 * anything beyond the caps in vm-internal.h (entries, path length, total uncompressed bytes,
 * metadata, xattr size, layer count), each checked before the work it bounds. */
struct vm_rootfs;
/* scratch_dir: where the spool and temp files go (same filesystem as the disk is best). */
int vm_rootfs_new(const char *scratch_dir, struct vm_rootfs **ret, dbx_error **err);
/* Apply one layer read from fd until EOF (plain tar, gzip or zstd, auto-detected; the caller
 * keeps ownership of fd).  whiteouts = interpret OCI whiteouts (`.wh.NAME` deletes NAME from
 * lower layers, `.wh..wh..opq` hides the lower layers' contents of its directory); false for a
 * plain rootfs tarball.  label names the layer in error messages (e.g. its digest).
 * After a failure the builder is unusable (further calls fail): free it. */
int vm_rootfs_add_layer(struct vm_rootfs *b, int fd, const char *label, bool whiteouts,
                        dbx_error **err);
/* Lower the cap on the file data of all layers together (VM_TAR_MAX_BYTES) to max_bytes; when
 * reached, the error names `why` (e.g. "the [ceilings] image_size 8G of config.ini"). */
void vm_rootfs_limit_bytes(struct vm_rootfs *b, uint64_t max_bytes, const char *why);
/* Was a layer refused for that lower limit (not for anything else)? */
bool vm_rootfs_over_limit(const struct vm_rootfs *b);
/* Build the base disk at out_path: same contract as vm_disk_build_base (temp file beside it,
 * renamed into place only when complete, 0444, extra_bytes of free space, *ret_size). */
int vm_rootfs_write_disk(struct vm_rootfs *b, const char *out_path, uint64_t extra_bytes,
                         uint64_t *ret_size, dbx_error **err);
void vm_rootfs_free(struct vm_rootfs *b);

/* Build a raw ext4 root filesystem image at `out_path` from one root filesystem tarball
 * (plain, gzip, or zstd), rootless: vm_rootfs_new in out_path's directory, one
 * vm_rootfs_add_layer without whiteouts, vm_rootfs_write_disk.  The filesystem gets
 * `extra_bytes` of free space beyond the contents (sparse).  Written to a temp file beside
 * out_path and renamed into place only when complete; the result is made read-only (0444).
 * On success *ret_size (may be NULL) is the file size. */
int vm_disk_build_base(const char *tar_path, const char *out_path, uint64_t extra_bytes,
                       uint64_t *ret_size, dbx_error **err);
/* Create a qcow2 copy-on-write disk at `overlay_path` whose backing file is the raw base
 * (absolute path, opened read-only by QEMU).  Its virtual size is `size` bytes (rounded up to
 * 512), or the base's size when size is 0 or smaller than the base (the guest must see the
 * whole image).  Atomic (temp + rename). */
int vm_disk_create_overlay(const char *base_path, const char *overlay_path, uint64_t size,
                           dbx_error **err);
/* The virtual size of a qcow2 overlay (`qemu-img info`). */
int vm_disk_size(const char *overlay_path, uint64_t *ret, dbx_error **err);
/* Grow the overlay's virtual size to `size` bytes (`qemu-img resize`, only while no VM uses
 * it) when it is smaller; never shrinks (the guest's filesystem fills the old size).
 * *ret_size (may be NULL) is the size afterwards. */
int vm_disk_grow_overlay(const char *overlay_path, uint64_t size, uint64_t *ret_size,
                         dbx_error **err);
/* `qemu-img check -r all` of an overlay after an unclean stop; error if unrepairable. */
int vm_disk_check(const char *overlay_path, dbx_error **err);

/* ---- accelerator ------------------------------------------------------------------------ */

enum vm_accel { VM_ACCEL_KVM = 0, VM_ACCEL_TCG = 1 };
const char *vm_accel_name(enum vm_accel a);

/* Pick the accelerator: DEVBOX_ACCEL=kvm|tcg forces one (*ret_forced = true; an invalid value
 * is an error); else KVM when /dev/kvm opens read-write and no "kvm does not boot" verdict is
 * recorded in `state_dir` for this host kernel; else TCG. */
int vm_accel_choose(const char *state_dir, enum vm_accel *ret, bool *ret_forced, dbx_error **err);
/* Record (atomically) that KVM did not boot a guest on this host, so later boots go straight
 * to TCG. */
int vm_accel_record_kvm_broken(const char *state_dir, dbx_error **err);
/* The host's KVM refused the host CPU's IA32_ARCH_CAPABILITIES (QEMU aborted with "failed to set
 * MSR 0x10a": some nested hosts, GitHub's runners), recorded for this host kernel by
 * vm_accel_record_arch_caps_refused: boot with vm_config.kvm_mask_arch_caps. */
bool vm_accel_arch_caps_refused(const char *state_dir);
int vm_accel_record_arch_caps_refused(const char *state_dir, dbx_error **err);
/* QEMU's stderr `log` (the last bytes it wrote) says KVM refused that MSR. */
bool vm_qemu_refused_arch_caps(const char *log, size_t len);

/* ---- QEMU ------------------------------------------------------------------------------- */

#define VM_SHARES_MAX 17u /* DBX_SHARES_MAX */
struct vm_share {
    const char *socket;
    const char *tag;
};

enum vm_kernel_kind { VM_KERNEL_DEBIAN = 0, VM_KERNEL_DEVBOX = 1 };

struct vm_config {
    const char *qemu;   /* binary; NULL = "qemu-system-x86_64" from PATH */
    const char *kernel; /* vmlinuz (DEBIAN) or an uncompressed PVH vmlinux (DEVBOX) */
    enum vm_kernel_kind kernel_kind;
    bool balloon; /* virtio-balloon with free page reporting and deflate-on-oom */
    bool console; /* ISA serial console (debugging); DEBIAN always has it */
    const char *initramfs;
    const char *disk;       /* the project's qcow2 overlay */
    const char *vfs_socket; /* virtiofsd's vhost-user socket path (QEMU connects to it) */
    const char *vfs_tag;    /* virtiofs mount tag */
    const char *gdb_socket; /* debugging (DEVBOX_GUEST_GDB): QEMU's gdbstub listens on this
                               unix socket path (bench/guest-profile.py); NULL = none */
    /* Extra virtiofs shares (issue 13), each its own vhost-user-fs device after the workspace's:
     * socket path and tag (unique, not the workspace's), at most VM_SHARES_MAX. */
    const struct vm_share *shares;
    size_t nshares;
    int agent_fd;     /* our end is elsewhere; this connected socket becomes the
                         virtio-serial port named DBX_AGENT_PORT_NAME */
    int console_fd;   /* connected socket that receives the serial console */
    int net_fd;       /* > 0: a connected stream socket whose peer is passt's
                         (vm_passt_start); it becomes fd 5 in QEMU; 0 = no network device */
    int qmp_fd;       /* > 0: a connected stream socket that becomes QEMU's QMP monitor
                         (fd 6 in QEMU; the peer is vm_qmp_new's); 0 = no monitor */
    int kernel_fd;    /* > 0: QEMU loads the kernel from this file (fd 7 in QEMU, named
                         /proc/self/fd/7 on its command line), a vm_kernel_copy; 0 = kernel */
    int initramfs_fd; /* > 0: the initramfs from this file (fd 8, /proc/self/fd/8), a
                         vm_initrd_copy; 0 = initramfs */
    unsigned cpus;
    uint64_t mem_mib;
    enum vm_accel accel;
    /* KVM: hide the host CPU's IA32_ARCH_CAPABILITIES from the guest, for a host KVM that
     * refuses it (vm_accel_arch_caps_refused).  Without the MSR the guest kernel cannot see
     * that the CPU is immune to Meltdown, MDS and the rest, and pays for their mitigations. */
    bool kvm_mask_arch_caps;
};

#define DBX_AGENT_PORT_NAME "org.devbox.agent"

/* Build the QEMU argv (NULL-terminated, free with dbx_strv_free) for cfg, assuming agent_fd
 * and console_fd are moved to fds 3 and 4 in the child:
 * -M microvm with ACPI (VM_KERNEL_DEVBOX: without ACPI, PIT/PIC/RTC kept for TCG's timer and
 * the clock, the console on hvc0 unless cfg->console, kernel knobs from the one table in
 * vm-qemu.c), memfd-backed shared RAM, -nodefaults -no-user-config -nographic
 * -no-reboot, -sandbox on (with obsolete/elevateprivileges/spawn/resourcecontrol denied),
 * virtio-blk root disk (cache=writeback, honours guest flushes), vhost-user-fs-device,
 * virtio-serial-device with the agent port, the console on the ISA serial port (DEVBOX
 * without cfg->console: a virtconsole, hvc0, on the same device), a
 * virtio-balloon-device (free-page-reporting, deflate-on-oom) when cfg->balloon, a
 * network device only when net_fd is set: virtio-net-device (MAC VM_GUEST_MAC) on a
 * `-netdev stream` over QEMU's end of a socket pair with passt (fd 5; QEMU 7.2; with
 * -sandbox on); with qmp_fd a QMP monitor on fd 6 (`-mon chardev=qmp,mode=control`).
 * agent_fd/console_fd must be connected stream sockets (QEMU 7.2 takes them as
 * `-chardev socket,fd=N`; verified with socketpair ends).  CPU: TCG `-cpu max`, KVM
 * `-cpu host` (with `-arch-capabilities` when cfg->kvm_mask_arch_caps), both without VMX and SVM.
 * Under TCG the kernel command line carries tsc_early_khz=<host TSC kHz, measured once per process
 * (~20 ms)>: without it the guest's TSC calibration fails on a loaded host and the boot hangs. NULL
 * disk / vfs_socket+vfs_tag omit those devices.  Each extra share is one more chardev (id vfsN) and
 * vhost-user-fs-device. */
char **vm_qemu_argv(const struct vm_config *cfg, dbx_error **err);

/* Start QEMU for cfg: fork; in the child die with the parent (PR_SET_PDEATHSIG SIGKILL, and
 * exit at once if the parent is already gone), new process group, stdin from /dev/null,
 * stdout/stderr to `log_fd` (or /dev/null if < 0), agent/console fds at 3/4, every other fd
 * closed, a minimal environment; as root, every capability dropped for good (empty sets,
 * locked securebits, no_new_privs); exec.  Returns the pid, or -errno with *err set. */
pid_t vm_qemu_spawn(const struct vm_config *cfg, int log_fd, dbx_error **err);

/* A private copy of the devbox kernel's vmlinux at `path` for one QEMU (vm_config.kernel_fd): a
 * memfd named "devbox-kernel NAME" holding the ELF and program headers and every loadable
 * segment, the rest of the file a hole.  QEMU keeps the file it loaded the kernel from mapped,
 * for a reset, and the pages it copied into the guest stay in its memory (14.8 MiB of an idle
 * box's PSS with the shared vmlinux); a box's QEMU never resets (-no-reboot makes a reset its
 * exit), so once the guest runs vm_copy_drop frees the copy's pages.  The file must be
 * an ELF64 whose segments lie inside it, with at most 64 program headers.  *ret_fd is
 * O_CLOEXEC. */
int vm_kernel_copy(const char *path, const char *name, int *ret_fd, dbx_error **err);

/* A private copy of the initramfs at `path` for one QEMU (vm_config.initramfs_fd): a memfd named
 * "devbox-initramfs NAME" holding the whole file.  QEMU keeps the initrd mapped for the
 * firmware, which reads it once before the kernel starts; freed by vm_copy_drop once
 * the guest runs.  At most 1 GiB.  *ret_fd is O_CLOEXEC. */
int vm_initrd_copy(const char *path, const char *name, int *ret_fd, dbx_error **err);

/* Free a copy's pages (vm_kernel_copy's or vm_initrd_copy's; a hole over all of it): QEMU's
 * mapping of it reads zeros from then on and holds no memory.  < 0 with errno when the kernel
 * refuses. */
int vm_copy_drop(int fd);

/* Take the first reading of the host TSC's measurement (tsc_early_khz above needs two, 20 ms
 * apart): called early, the work before QEMU starts fills the 20 ms instead of a sleep in
 * vm_qemu_spawn.  Optional; a later call replaces the reading. */
void vm_tsc_calibration_start(void);

/* ---- QMP (QEMU's monitor) ----------------------------------------------------------------- */

/* The supervisor's end of QEMU's QMP monitor (vm_config.qmp_fd is QEMU's end).  Everything QEMU
 * sends is treated as hostile (it is guest-reachable): lines over 64 KiB are skipped, JSON with
 * duplicate keys or of the wrong shape is ignored; nothing here crashes on input. */
struct vm_qmp;
enum {
    VM_QMP_EV_STOP = 1 << 0,     /* the VM paused (any reason) */
    VM_QMP_EV_RESUME = 1 << 1,   /* it runs again */
    VM_QMP_EV_IO_ERROR = 1 << 2, /* a block device reported an I/O error */
    VM_QMP_EV_NOSPACE = 1 << 3,  /* ... ENOSPC on the host, and the VM was paused for it */
    VM_QMP_EV_PANIC = 1 << 4,    /* GUEST_PANICKED, or SHUTDOWN with reason guest-panic */
    VM_QMP_EV_SHUTDOWN = 1 << 5, /* SHUTDOWN for another reason (QEMU exits: -no-reboot) */
    VM_QMP_EV_STATUS = 1 << 6,   /* a query-status reply: status holds its "status" */
};
struct vm_qmp_state {
    unsigned events; /* VM_QMP_EV_* seen since the caller last cleared it */
    char status[32]; /* e.g. "running", "io-error", "paused" */
};
/* Take ownership of fd (a connected stream socket; made non-blocking) and queue
 * qmp_capabilities.  Returns 0 with *ret set (free with vm_qmp_free). */
int vm_qmp_new(int fd, struct vm_qmp **ret, dbx_error **err);
void vm_qmp_free(struct vm_qmp *q);
/* For poll(): the fd (-1 once closed) and the events to wait for. */
int vm_qmp_fd(const struct vm_qmp *q);
short vm_qmp_poll_events(const struct vm_qmp *q);
/* Write what is queued, read what is there; ORs what was seen into st->events.  -1 with *err
 * once QEMU closed the monitor (it exited) or the socket failed; the object stays valid. */
int vm_qmp_io(struct vm_qmp *q, struct vm_qmp_state *st, dbx_error **err);
/* Queue a command (the answers are not needed: the events tell). */
void vm_qmp_cont(struct vm_qmp *q);
void vm_qmp_query_status(struct vm_qmp *q);

/* ---- network ("open" mode) --------------------------------------------------------------- */

/* What passt gives the guest.  The guest configures itself statically from the plan (no DHCP
 * client needed), so these are the plan's values (common/netaddr.h): the address is
 * DBX_NET_OPEN_ADDR split at its '/' (test-vm-passt checks they agree). */
#define VM_GUEST_MAC "52:54:00:12:34:56"
#define VM_GUEST_ADDR "10.0.2.15"
#define VM_GUEST_PREFIX 24
#define VM_GUEST_GATEWAY DBX_NET_OPEN_GW
#define VM_GUEST_DNS DBX_NET_OPEN_DNS /* resolv.conf: nameserver 10.0.2.3 */

/* A running passt (Debian's 0.0~git20230309) for one VM plus the thread that vets every
 * destination it names.  passt gives user-mode NAT, IPv4 only, on sock_fd: one end of a
 * connected stream socket pair whose other end is QEMU's (vm_config.net_fd; `--fd`, so there is
 * no socket on the filesystem for anything else to reach), exiting when QEMU goes away
 * (--one-off), in the foreground.  The guest is
 * VM_GUEST_ADDR/VM_GUEST_PREFIX behind gateway VM_GUEST_GATEWAY; DNS queries sent to
 * VM_GUEST_DNS are forwarded to the first resolver in the host's /etc/resolv.conf.  The gateway
 * is NOT mapped to the host's loopback (--no-map-gw), no port is forwarded into the guest (-t
 * none -u none), passt's DHCP/DHCPv6/NDP/RA are off.
 * Enforced on the host, whatever the guest sends: a seccomp user-notification filter installed
 * before exec sends each connect/sendto/sendmsg/sendmmsg that names an address to a thread of
 * ours, which lets it proceed or fails it with EACCES.  Refused: loopback (127/8, ::1),
 * unspecified (0/8, ::), link-local and metadata (169.254/16, fe80::/10), multicast,
 * 255.255.255.255, IPv4-mapped/compatible/NAT64 spellings of these, and every address the
 * kernel routes to this host (its interfaces' addresses, local routes, subnet broadcasts;
 * asked per destination, so never stale).  Exception: the nameservers of the host's
 * /etc/resolv.conf (read at start) on port 53, even on loopback (127.0.0.53).  Everything else
 * (private ranges included) is reachable.  io_uring, threads and source routing are denied
 * to passt outright (they could carry a destination past the thread).
 * Process hygiene as vm_qemu_spawn: dies with its parent (PR_SET_PDEATHSIG), own process
 * group, stdin /dev/null, stdout/stderr to log_fd (or /dev/null), every other fd closed, an
 * empty environment.  As an ordinary user passt runs in a user namespace that maps only our
 * uid/gid to themselves (so we may read its memory).  As root we switch it to nobody's uid
 * (and the gid of that number) before exec, with an empty bounding set and no capability
 * (dbx_spawn's drop_caps).  passt sandboxes itself (namespaces, seccomp).  IPv6 is off in passt
 * (the filter judges IPv6 anyway). */
struct vm_passt;
/* passt is installed where vm_passt_start looks (/usr/bin, /usr/local/bin, /bin): 0, else
 * -ENOENT naming the package.  For a boot's own error before QEMU starts, when passt itself
 * starts only later (on the guest's first frame, sandbox/supervisor-vm.c). */
int vm_passt_check(dbx_error **err);
/* Start passt with the filter on sock_fd (the caller keeps its own copy and closes it);
 * returns 0 with *ret set once passt has been exec'd under its filter, or -errno with *err
 * set (no passt, no seccomp user notification, exec failed).  It does not wait to see passt
 * serve: an exit at its start-up (options, its own sandbox) is the caller's SIGCHLD, as any
 * later one; frames already in sock_fd wait there for it.  Refusals are
 * logged to log_fd ("devbox: refused passt connect to 127.0.0.1:8080 (loopback)", at most 5
 * lines a second, the rest counted in a summary line); log_fd is dup'ed.  The caller reaps
 * the child (SIGCHLD/waitpid on vm_passt_pid) as for QEMU. */
int vm_passt_start(int sock_fd, int log_fd, struct vm_passt **ret, dbx_error **err);
pid_t vm_passt_pid(const struct vm_passt *p);
/* Kill passt (SIGKILL through a pidfd, so never another process; no wait), stop the filter
 * thread, free.  NULL is fine. */
void vm_passt_free(struct vm_passt *p);
/* Destinations refused so far (for status/logging). */
uint64_t vm_passt_refused(const struct vm_passt *p);

/* ---- Debian root filesystems ------------------------------------------------------------ */

/* Write a root filesystem tarball of Debian `suite` (variant apt plus the comma-separated
 * `include` packages) from `mirror` to out_tar with mmdebstrap, rootless (--mode=unshare,
 * subordinate ids) unless running as root.  out_tar is overwritten; the caller renames. */
int vm_debian_rootfs(const char *out_tar, const char *suite, const char *mirror,
                     const char *include, dbx_error **err);
/* The Debian mirror the host's apt uses for `suite`: the URI of the first enabled `deb` entry
 * whose suite is exactly `suite` (so not SUITE-updates or SUITE-security), in apt's order:
 * ETC/sources.list (one-line format, `[options]` allowed), then ETC/sources.list.d/ *.list and
 * *.sources (deb822: Types, URIs, Suites, `Enabled: no`) by name, except the names apt skips
 * (hidden, or other bytes than [A-Za-z0-9_.:-]); ETC is etc_apt (NULL =
 * /etc/apt).  Only http(s):// and file:/ URIs of one word count.  The host's configuration is
 * read as a hint, never fatal: unreadable or over-cap files (1 MiB, 8 KiB lines or continued
 * deb822 fields, 256 files, 4096 entries) and malformed lines are skipped, as is anything that
 * is not a regular file.
 * Returns the URI without trailing '/' (malloc'd) or NULL when there is none. */
char *vm_debian_mirror(const char *etc_apt, const char *suite);
/* The hosts of every enabled `deb` entry of the host's apt sources (any suite: the security
 * and updates mirrors too), read with vm_debian_mirror's rules and caps, as [network] allow
 * patterns: "host" or "host:port", lower case, no duplicates, at most 32; http(s) URIs only.
 * What [setup] may reach without trust when config.ini does not say.  NULL-terminated, never
 * NULL (free with dbx_strv_free). */
char **vm_apt_hosts(const char *etc_apt);

/* ---- the devbox kernel (vm-devkernel.c) --------------------------------------------------- */

/* A guest kernel built on this machine from Debian's kernel source package with the config
 * fragment vm/devbox-kernel.config (over allnoconfig): everything built in, no modules, PVH
 * entry, booted as an uncompressed vmlinux.  Built once per machine and cached by key
 * "<source package version>-<first 12 hex digits of sha256(fragment)>".
 *
 * Cache layout (directories 0755, files 0644: a vmlinux of public source is no secret, and other
 * users of the machine read a cache root built):
 *   lock                  flock(2): one builder at a time; held for the whole build
 *   <key>/vmlinux         the kernel; its presence means complete (the directory is renamed in)
 *   <key>/config          the .config it was built with
 *   <key>/build.log       make's output
 *   <key>/info            "version=", "seconds=" (build time), "built=" (unix time), "jobs="
 *   <key>.failed.log      the log of the last failed build of key (gone after a success)
 *   (a successful build removes the builds and failed logs of other source versions but the
 *   newest other build: every devbox keys on the installed package)
 *   .build-XXXXXX/        a build in progress (source tree, objects); a killed build's is
 *                         removed by the next builder under the lock */
#define VM_DEVKERNEL_PACKAGE "linux-source-6.1"
#define VM_DEVKERNEL_TARBALL "/usr/src/linux-source-6.1.tar.xz"
#define VM_DEVKERNEL_SYSTEM_CACHE "/var/cache/devbox/kernel"
#define VM_DEVKERNEL_FRAGMENT_NAME "devbox-kernel.config"

/* The config fragment: $DEVBOX_KERNEL_CONFIG, else devbox-kernel.config next to the running
 * binary, else ../vm/ from it (the source tree: build/devbox), else ../share/devbox/ from it
 * (make install), else /usr/local/share/devbox/.  *ret is absolute (caller frees). */
int vm_devkernel_fragment_path(char **ret, dbx_error **err);
/* "<version>-<sha256(fragment)[:12]>", or NULL when version is not 1..64 of [A-Za-z0-9.+~-]
 * (it names a directory).  Caller frees. */
char *vm_devkernel_key(const char *version, const char *fragment, size_t len);
/* Where this process builds: $DEVBOX_KERNEL_CACHE, else as root VM_DEVKERNEL_SYSTEM_CACHE,
 * else ${XDG_CACHE_HOME:-$HOME/.cache}/devbox/kernel (relative or unset values are errors).
 * Not created here.  Caller frees. */
int vm_devkernel_cache_dir(char **ret, dbx_error **err);
/* May a reader that is not root use this file or directory of the system cache: owned by root
 * and not writable by group or others?  (The stat of one path component.) */
bool vm_devkernel_stat_trusted(const struct stat *st);
/* Every component of the absolute path `path`, from '/' down, passes vm_devkernel_stat_trusted
 * (lstat: a symbolic link anywhere fails). */
bool vm_devkernel_path_trusted(const char *path);
/* Did every CONFIG_ line of the fragment take in .config?  "CONFIG_X=n" must be absent or
 * "# CONFIG_X is not set"; any other value must appear exactly.  An error names the first
 * line that Kconfig dropped or changed ("fragment line 'CONFIG_X=y' did not take: .config has
 * '# CONFIG_X is not set' (a dependency is missing?)"), and malformed fragment lines. */
int vm_devkernel_config_check(const char *fragment, const char *config, dbx_error **err);

enum vm_devkernel_state {
    VM_DEVKERNEL_ABSENT = 0,
    VM_DEVKERNEL_BUILDING, /* a builder holds the lock */
    VM_DEVKERNEL_FAILED,   /* the last build of this key failed (failed_log) */
    VM_DEVKERNEL_READY,
};
const char *vm_devkernel_state_name(enum vm_devkernel_state s);

struct vm_devkernel_status {
    enum vm_devkernel_state state;
    bool source_installed;  /* VM_DEVKERNEL_TARBALL exists and dpkg knows its version */
    bool override;          /* DEVBOX_KERNEL_VMLINUX names the kernel (no cache involved) */
    char *version;          /* the source package's version ("" when not installed) */
    char *fragment;         /* path of the config fragment */
    char *key;              /* "" when there is no source package */
    char *cache;            /* where the kernel is (ready) or would be built */
    char *vmlinux;          /* ready: absolute path; else NULL */
    char *failed_log;       /* failed: path of the log; else NULL */
    uint64_t size;          /* ready: vmlinux bytes */
    uint64_t build_seconds; /* ready: how long the build took (0 = unknown) */
    int64_t built;          /* ready: unix time of the build (0 = unknown) */
};
/* Find the devbox kernel for the installed source package and the fragment: in the build cache
 * (vm_devkernel_cache_dir), else, unless DEVBOX_KERNEL_CACHE is set, in the system cache when
 * vm_devkernel_path_trusted.  DEVBOX_KERNEL_VMLINUX=path (a development override) makes that
 * file the ready kernel.  Missing source package: ABSENT (not an error).  Errors: no fragment,
 * no usable cache directory name.  Caller clears *ret. */
int vm_devkernel_status(struct vm_devkernel_status *ret, dbx_error **err);
void vm_devkernel_status_clear(struct vm_devkernel_status *st);

/* Build steps, for progress: unpack, configure, check, compile, install. */
typedef void (*vm_devkernel_progress_fn)(void *ctx, unsigned step, unsigned nsteps,
                                         const char *name, unsigned files_compiled);
struct vm_devkernel_build_opts {
    bool wait;        /* wait for another builder (foreground); false: return at once */
    bool skip_failed; /* a key whose last build failed is not tried again (autobuild) */
    unsigned jobs;    /* make -jN; 0 = online CPUs */
    vm_devkernel_progress_fn progress; /* may be NULL; called from this thread */
    void *ctx;
};
/* Build the kernel of vm_devkernel_status's key into the build cache, unless it is there:
 * under the cache's lock, in .build-XXXXXX: untar VM_DEVKERNEL_TARBALL, `make allnoconfig
 * KCONFIG_ALLCONFIG=<the fragment bytes the key hashed>`, vm_devkernel_config_check,
 * `make -jN vmlinux` (KBUILD_BUILD_USER/HOST devbox), then vmlinux + config + build.log + info
 * renamed into place as <key>/ and the work directory removed.  A failure leaves no <key>/,
 * keeps the log as <key>.failed.log and says which step failed with the log's last lines.
 * Returns 1 when it built, 0 when the kernel was there already (or another process built it
 * while we waited), 2 when another process is building and !wait, or when skip_failed
 * skipped it; <0 with *err.  *ret (may be NULL) is the status afterwards.
 * Test knob (unit and e2e tests of this machinery only, with DEVBOX_KERNEL_CACHE set, else an
 * error): DEVBOX_KERNEL_TEST_VMLINUX=FILE skips the source: no untar, the fragment's own lines as
 * .config, FILE copied as the compiled vmlinux (a missing FILE fails the compile step);
 * DEVBOX_KERNEL_TEST_DELAY=SECONDS (0..600) sleeps in the compile step. */
int vm_devkernel_build(const struct vm_devkernel_build_opts *o, struct vm_devkernel_status *ret,
                       dbx_error **err);

/* The devbox kernel as the supervisor boots it: vmlinuz = st->vmlinux (must be ready), and an
 * uncompressed initramfs in kernel_dir (0700, the user's: vm_kernel_ensure's) that holds only
 * init_path as /init, /dev/console and an empty /modules.order: the init must live outside the
 * box's writable disk (a box root could otherwise replace its own PID 1 for the next boot), and
 * the kernel loads no modules.  Cached as devbox-initramfs-<sha256 of init>.cpio under
 * kernel_dir/lock; the other initramfs files no start has used for a day (one per devbox
 * upgrade) are removed then.  release = "devbox " + key. */
int vm_devkernel_ensure(const char *kernel_dir, const char *init_path,
                        const struct vm_devkernel_status *st, struct vm_kernel *ret,
                        dbx_error **err);

/* Which kernel boots: env (DEVBOX_KERNEL; NULL or "" = unset) over the profile's `[box] kernel`
 * (NULL = auto), each auto|devbox|debian.  auto: devbox when ready, else debian.  devbox when
 * not ready is an error that says how to build it.  A bad env value is an error naming it. */
int vm_kernel_select(const char *env, const char *profile, bool devbox_ready,
                     enum vm_kernel_kind *ret, dbx_error **err);

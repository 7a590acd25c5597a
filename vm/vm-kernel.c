/* vm/vm-kernel.c: the guest kernel (Debian's cloud kernel, fetched rootless with apt-get
 * download + dpkg-deb -x) and the initramfs that carries devbox-init and the virtio modules.
 *
 * Layout of kernel_dir (0700):
 *   lock                         flock(2) between concurrent devbox processes
 *   current                      release name of the kernel in use, replaced atomically
 *   <release>/vmlinuz
 *   <release>/modules/NAME.ko    only the modules the guest loads
 *   <release>/modules.order      their file names, dependencies first
 *   initramfs-<sha256>.cpio      keyed by a hash of init + modules (a rebuilt init gets a new one;
 *                                one no start used for a day goes: vm_initramfs_prune)
 *   devbox-initramfs-<sha256>.cpio  the devbox kernel's (vm-devkernel.c), likewise
 *   .fetch-XXXXXX                work directories; leftovers of a killed run are removed */
#include "vm-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/sysmacros.h>

#define META_PACKAGE "linux-image-cloud-amd64"
#define MAX_MODULE_BYTES (64u << 20)
#define MAX_INIT_BYTES (64u << 20)
#define MAX_DEP_DEPTH 16

/* What the guest init loads (guest/init-boot.c reads /modules.order), dependencies found with
 * modinfo and put first (virtio_net needs net_failover, which needs failover). */
static const char *const wanted_modules[] = {"virtio_ring", "virtio",         "virtio_mmio",
                                             "virtio_blk",  "virtio_console", "fuse",
                                             "virtiofs",    "virtio_net",     "virtio_balloon"};
/* Loaded when the package has them (a kernel without is still booted): pvpanic_mmio binds the
 * ACPI QEMU0001 device that microvm's DSDT describes for `-device pvpanic` (vm-qemu.c), so a
 * guest panic reaches the supervisor as QMP's GUEST_PANICKED.  Debian 6.1 cloud: a module
 * (CONFIG_PVPANIC_MMIO=m), after its dependency pvpanic. */
static const char *const optional_modules[] = {"pvpanic_mmio"};

/* The wanted list as recorded beside an unpacked release: a release unpacked for another list
 * (an older devbox) is unpacked again rather than booted without a module. */
static char *wanted_stamp(void) {
    char *s = dbx_xstrdup("");
    for (size_t i = 0; i < DBX_ARRAY_SIZE(wanted_modules); i++) {
        char *t = dbx_xasprintf("%s%s\n", s, wanted_modules[i]);
        free(s);
        s = t;
    }
    for (size_t i = 0; i < DBX_ARRAY_SIZE(optional_modules); i++) {
        char *t = dbx_xasprintf("%s%s?\n", s, optional_modules[i]);
        free(s);
        s = t;
    }
    return s;
}

void vm_kernel_clear(struct vm_kernel *k) {
    if (!k) return;
    free(k->vmlinuz);
    free(k->initramfs);
    free(k->release);
    k->vmlinuz = k->initramfs = k->release = NULL;
}

static bool name_ok(const char *s, size_t max, const char *extra) {
    size_t n = strlen(s);
    if (n == 0 || n > max || s[0] == '.' || s[0] == '-') return false;
    for (const char *p = s; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || strchr(extra, *p);
        if (!ok) return false;
    }
    return true;
}
static bool release_ok(const char *s) {
    return name_ok(s, 128, "._+-");
}

/* Module names: modinfo reports "virtio_ring"; file names may spell '_' as '-'. */
static void mod_canon(char *s) {
    for (; *s; s++)
        if (*s == '-') *s = '_';
}

/* ---- module discovery ------------------------------------------------------------------- */

struct mod_index {
    char **names; /* canonical, without .ko */
    char **paths;
    size_t n;
    char **builtin; /* canonical names from modules.builtin */
    size_t n_builtin;
};

static void mod_index_free(struct mod_index *ix) {
    for (size_t i = 0; i < ix->n; i++)
        free(ix->names[i]), free(ix->paths[i]);
    for (size_t i = 0; i < ix->n_builtin; i++)
        free(ix->builtin[i]);
    free(ix->names), free(ix->paths), free(ix->builtin);
}

static int index_dir(struct mod_index *ix, const char *dir, int depth, dbx_error **err) {
    if (depth > 12) return 0;
    DIR *d = opendir(dir);
    if (!d) return dbx_error_set(err, errno, "open '%s'", dir);
    struct dirent *de;
    int r = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", dir, de->d_name);
        if (de->d_type == DT_DIR) {
            if ((r = index_dir(ix, p, depth + 1, err)) < 0) break;
            continue;
        }
        size_t len = strlen(de->d_name);
        if (de->d_type != DT_REG || len < 4 || strcmp(de->d_name + len - 3, ".ko") != 0) continue;
        ix->names = dbx_xrealloc(ix->names, (ix->n + 1) * sizeof(char *));
        ix->paths = dbx_xrealloc(ix->paths, (ix->n + 1) * sizeof(char *));
        ix->names[ix->n] = dbx_xstrndup(de->d_name, len - 3);
        mod_canon(ix->names[ix->n]);
        ix->paths[ix->n++] = TAKE_PTR(p);
    }
    closedir(d);
    return r;
}

static int read_builtin(struct mod_index *ix, const char *moddir, dbx_error **err) {
    _cleanup_free_ char *p = dbx_xasprintf("%s/modules.builtin", moddir);
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, p, 4u << 20, &text, NULL, &e) < 0)
        return e->code == ENOENT ? 0 : dbx_error_set(err, 0, "%s", e->msg);
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *base = strrchr(l, '/');
        base = base ? base + 1 : l;
        size_t len = strlen(base);
        if (len < 4 || strcmp(base + len - 3, ".ko") != 0) continue;
        ix->builtin = dbx_xrealloc(ix->builtin, (ix->n_builtin + 1) * sizeof(char *));
        ix->builtin[ix->n_builtin] = dbx_xstrndup(base, len - 3);
        mod_canon(ix->builtin[ix->n_builtin++]);
    }
    return 0;
}

struct mod_order {
    char **names;
    char **paths;
    size_t n;
};

static bool strv_has(char **v, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0) return true;
    return false;
}

/* Depth-first: dependencies (from `modinfo -F depends`) before the module itself. */
static int visit_module(const struct mod_index *ix, struct mod_order *ord, const char *name,
                        int depth, dbx_error **err) {
    if (depth > MAX_DEP_DEPTH)
        return dbx_error_set(err, 0, "module dependencies of '%s' nest too deep", name);
    if (strv_has(ord->names, ord->n, name) || strv_has(ix->builtin, ix->n_builtin, name)) return 0;
    const char *path = NULL;
    for (size_t i = 0; i < ix->n && !path; i++)
        if (strcmp(ix->names[i], name) == 0) path = ix->paths[i];
    if (!path) return dbx_error_set(err, 0, "kernel module '%s' not found in the package", name);
    char *argv[] = {"modinfo", "-F", "depends", (char *)path, NULL};
    _cleanup_free_ char *deps = NULL;
    if (vm_run("modinfo", argv, NULL, &deps, NULL, NULL, err) < 0) return -1;
    for (char *save = NULL, *d = strtok_r(deps, ",\n ", &save); d;
         d = strtok_r(NULL, ",\n ", &save)) {
        mod_canon(d);
        if (!name_ok(d, 64, "_")) return dbx_error_set(err, 0, "bad dependency of '%s'", name);
        if (visit_module(ix, ord, d, depth + 1, err) < 0) return -1;
    }
    if (strv_has(ord->names, ord->n, name)) return 0;
    ord->names = dbx_xrealloc(ord->names, (ord->n + 1) * sizeof(char *));
    ord->paths = dbx_xrealloc(ord->paths, (ord->n + 1) * sizeof(char *));
    ord->names[ord->n] = dbx_xstrdup(name);
    ord->paths[ord->n++] = dbx_xstrdup(path);
    return 0;
}

static int fsync_path(const char *path, dbx_error **err) {
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fsync(fd) < 0) return dbx_error_set(err, errno, "fsync '%s'", path);
    return 0;
}

/* Move vmlinuz and the needed modules from the unpacked package `x` into `out`. */
static int assemble_release(const char *x, const char *out, char **ret_release, dbx_error **err) {
    _cleanup_free_ char *boot = dbx_xasprintf("%s/boot", x);
    _cleanup_free_ char *release = NULL;
    DIR *d = opendir(boot);
    if (!d) return dbx_error_set(err, errno, "package has no boot/ directory: open '%s'", boot);
    struct dirent *de;
    int count = 0;
    while ((de = readdir(d)))
        if (dbx_str_has_prefix(de->d_name, "vmlinuz-")) {
            count++;
            free(release);
            release = dbx_xstrdup(de->d_name + strlen("vmlinuz-"));
        }
    closedir(d);
    if (count != 1 || !release_ok(release))
        return dbx_error_set(err, 0, "package has %d boot/vmlinuz-* files, expected one", count);

    _cleanup_free_ char *moddir = dbx_xasprintf("%s/lib/modules/%s", x, release);
    _cleanup_free_ char *out_mods = dbx_xasprintf("%s/modules", out);
    if (mkdir(out, 0755) < 0 || mkdir(out_mods, 0755) < 0)
        return dbx_error_set(err, errno, "mkdir '%s'", out_mods);
    _cleanup_free_ char *src_vmlinuz = dbx_xasprintf("%s/vmlinuz-%s", boot, release);
    _cleanup_free_ char *vmlinuz = dbx_xasprintf("%s/vmlinuz", out);
    if (rename(src_vmlinuz, vmlinuz) < 0) return dbx_error_set(err, errno, "rename '%s'", vmlinuz);
    if (fsync_path(vmlinuz, err) < 0) return -1;

    struct mod_index ix = {0};
    struct mod_order ord = {0};
    int r = index_dir(&ix, moddir, 0, err);
    if (r == 0) r = read_builtin(&ix, moddir, err);
    for (size_t i = 0; r == 0 && i < DBX_ARRAY_SIZE(wanted_modules); i++)
        r = visit_module(&ix, &ord, wanted_modules[i], 0, err);
    for (size_t i = 0; r == 0 && i < DBX_ARRAY_SIZE(optional_modules); i++)
        if (strv_has(ix.names, ix.n, optional_modules[i]))
            r = visit_module(&ix, &ord, optional_modules[i], 0, err);
    _cleanup_free_ char *order = dbx_xstrdup("");
    for (size_t i = 0; r == 0 && i < ord.n; i++) {
        _cleanup_free_ char *dst = dbx_xasprintf("%s/%s.ko", out_mods, ord.names[i]);
        if (rename(ord.paths[i], dst) < 0)
            r = dbx_error_set(err, errno, "rename '%s'", dst);
        else
            r = fsync_path(dst, err);
        char *o = dbx_xasprintf("%s%s.ko\n", order, ord.names[i]);
        free(order);
        order = o;
    }
    for (size_t i = 0; i < ord.n; i++)
        free(ord.names[i]), free(ord.paths[i]);
    free(ord.names), free(ord.paths);
    mod_index_free(&ix);
    if (r < 0) return r;
    _cleanup_close_ int ofd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ofd < 0) return dbx_error_set(err, errno, "open '%s'", out);
    if (dbx_write_file_atomic(ofd, "modules.order", order, strlen(order), 0644, err) < 0) return -1;
    _cleanup_free_ char *stamp = wanted_stamp();
    if (dbx_write_file_atomic(ofd, "modules.wanted", stamp, strlen(stamp), 0644, err) < 0)
        return -1;
    *ret_release = TAKE_PTR(release);
    return 0;
}

/* ---- fetching --------------------------------------------------------------------------- */

static int apt_package(char **ret_pkg, dbx_error **err) {
    char *argv[] = {"apt-cache", "depends", META_PACKAGE, NULL};
    _cleanup_free_ char *out = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (vm_run("apt-cache depends " META_PACKAGE, argv, NULL, &out, NULL, NULL, &e) < 0)
        return dbx_error_set(err, 0,
                             "%s (run 'apt-get update' as root, or set "
                             "DEVBOX_KERNEL_DEB to a local linux-image .deb)",
                             e->msg);
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        while (*l == ' ' || *l == '|')
            l++;
        if (!dbx_str_has_prefix(l, "Depends: linux-image-")) continue;
        char *pkg = l + strlen("Depends: ");
        pkg[strcspn(pkg, " \t")] = '\0';
        if (!name_ok(pkg, 128, ".+-"))
            return dbx_error_set(err, 0, "apt-cache names an odd package '%s'",
                                 dbx_sanitize_printable(pkg));
        *ret_pkg = dbx_xstrdup(pkg);
        return 0;
    }
    return dbx_error_set(err, 0,
                         "apt has no candidate for '%s' (run 'apt-get update' as root, "
                         "or set DEVBOX_KERNEL_DEB to a local linux-image .deb)",
                         META_PACKAGE);
}

static int find_deb(const char *dir, char **ret, dbx_error **err) {
    DIR *d = opendir(dir);
    if (!d) return dbx_error_set(err, errno, "open '%s'", dir);
    struct dirent *de;
    char *found = NULL;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".deb") == 0 && !found)
            found = dbx_xasprintf("%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (!found) return dbx_error_set(err, 0, "apt-get download left no .deb in '%s'", dir);
    *ret = found;
    return 0;
}

/* The release a local .deb would install, from its Package field, without unpacking it. */
static int deb_release(const char *deb, char **ret, dbx_error **err) {
    char *argv[] = {"dpkg-deb", "-f", (char *)deb, "Package", NULL};
    _cleanup_free_ char *out = NULL;
    if (vm_run("dpkg-deb -f", argv, NULL, &out, NULL, NULL, err) < 0) return -1;
    out[strcspn(out, "\n")] = '\0';
    if (!dbx_str_has_prefix(out, "linux-image-"))
        return dbx_error_set(err, 0, "'%s' is not a linux-image package", deb);
    char *rel = out + strlen("linux-image-");
    size_t n = strlen(rel);
    if (n > 9 && strcmp(rel + n - 9, "-unsigned") == 0) rel[n - 9] = '\0';
    if (!release_ok(rel)) return dbx_error_set(err, 0, "'%s' names an odd release", deb);
    *ret = dbx_xstrdup(rel);
    return 0;
}

static void rm_rf_quiet(char **p) {
    if (*p) {
        dbx_error *e = NULL;
        vm_rm_rf(*p, &e);
        dbx_error_free(&e);
        free(*p);
    }
}

static int fetch_kernel(int kfd, const char *kdir, const char *local_deb, char **ret_release,
                        dbx_error **err) {
    __attribute__((cleanup(rm_rf_quiet))) char *tmp = dbx_xasprintf("%s/.fetch-XXXXXX", kdir);
    if (!mkdtemp(tmp)) {
        int e = errno;
        free(tmp);
        tmp = NULL;
        return dbx_error_set(err, e, "mkdtemp in '%s'", kdir);
    }
    _cleanup_free_ char *deb = NULL;
    if (local_deb) {
        deb = dbx_xstrdup(local_deb);
    } else {
        _cleanup_free_ char *pkg = NULL;
        if (apt_package(&pkg, err) < 0) return -1;
        _cleanup_free_ char *label = dbx_xasprintf("apt-get download %s", pkg);
        char *argv[] = {"apt-get", "-q", "download", pkg, NULL};
        if (vm_run(label, argv, tmp, NULL, NULL, NULL, err) < 0) return -1;
        if (find_deb(tmp, &deb, err) < 0) return -1;
    }
    _cleanup_free_ char *x = dbx_xasprintf("%s/x", tmp);
    char *argv[] = {"dpkg-deb", "-x", deb, x, NULL};
    _cleanup_free_ char *label = dbx_xasprintf("dpkg-deb -x '%s'", deb);
    if (vm_run(label, argv, NULL, NULL, NULL, NULL, err) < 0) return -1;
    _cleanup_free_ char *out = dbx_xasprintf("%s/out", tmp);
    _cleanup_free_ char *release = NULL;
    if (assemble_release(x, out, &release, err) < 0) return -1;

    /* A directory of the same name is a leftover of a run killed before `current` was written:
     * move it aside, then put ours in place. */
    _cleanup_free_ char *old = dbx_xasprintf("%s/old", tmp);
    if (renameat(kfd, release, AT_FDCWD, old) < 0 && errno != ENOENT)
        return dbx_error_set(err, errno, "move old '%s/%s' aside", kdir, release);
    if (renameat(AT_FDCWD, out, kfd, release) < 0)
        return dbx_error_set(err, errno, "rename into '%s/%s'", kdir, release);
    if (fsync(kfd) < 0) return dbx_error_set(err, errno, "fsync '%s'", kdir);
    *ret_release = TAKE_PTR(release);
    return 0;
}

static bool release_present(int kfd, const char *release) {
    _cleanup_free_ char *a = dbx_xasprintf("%s/vmlinuz", release);
    _cleanup_free_ char *b = dbx_xasprintf("%s/modules.order", release);
    _cleanup_free_ char *c = dbx_xasprintf("%s/modules.wanted", release);
    struct stat st;
    if (fstatat(kfd, a, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
        fstatat(kfd, b, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        return false;
    _cleanup_free_ char *have = NULL, *want = wanted_stamp();
    _cleanup_error_ dbx_error *e = NULL;
    return dbx_read_file_at(kfd, c, 4096, &have, NULL, &e) == 0 && strcmp(have, want) == 0;
}

/* Work files of a run that was killed; we hold the lock, so nobody else is using them. */
static void clean_leftovers(const char *kdir) {
    DIR *d = opendir(kdir);
    if (!d) return;
    struct dirent *de;
    char **names = NULL;
    while ((de = readdir(d)))
        if (dbx_str_has_prefix(de->d_name, ".fetch-") ||
            dbx_str_has_prefix(de->d_name, ".initramfs-"))
            names = dbx_strv_push(names, de->d_name);
    closedir(d);
    for (size_t i = 0; names && names[i]; i++) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", kdir, names[i]);
        dbx_error *e = NULL;
        vm_rm_rf(p, &e);
        dbx_error_free(&e);
    }
    dbx_strv_free(names);
}

static int choose_release(int kfd, const char *kdir, char **ret, dbx_error **err) {
    const char *local_deb = getenv("DEVBOX_KERNEL_DEB");
    if (local_deb && !*local_deb) local_deb = NULL;
    _cleanup_free_ char *want = NULL;
    if (local_deb) {
        if (deb_release(local_deb, &want, err) < 0) return dbx_error_wrap(err, "DEVBOX_KERNEL_DEB");
    } else {
        _cleanup_free_ char *cur = NULL;
        _cleanup_error_ dbx_error *e = NULL;
        if (dbx_read_file_at(kfd, "current", 256, &cur, NULL, &e) == 0) {
            cur[strcspn(cur, "\n")] = '\0';
            if (release_ok(cur)) want = TAKE_PTR(cur);
        }
    }
    if (!want || !release_present(kfd, want)) {
        free(want);
        want = NULL;
        if (fetch_kernel(kfd, kdir, local_deb, &want, err) < 0)
            return dbx_error_wrap(err, "fetch kernel");
    }
    _cleanup_free_ char *cur = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(kfd, "current", 256, &cur, NULL, &e) < 0 ||
        strncmp(cur, want, strlen(want)) != 0 || cur[strlen(want)] != '\n') {
        _cleanup_free_ char *line = dbx_xasprintf("%s\n", want);
        if (dbx_write_file_atomic(kfd, "current", line, strlen(line), 0644, err) < 0)
            return dbx_error_wrap(err, "'%s'", kdir);
    }
    *ret = TAKE_PTR(want);
    return 0;
}

/* ---- initramfs -------------------------------------------------------------------------- */

static int cpio_add(struct archive *a, const char *name, mode_t mode, dev_t rdev, const void *data,
                    size_t len, unsigned ino, dbx_error **err) {
    struct archive_entry *e = archive_entry_new();
    if (!e) dbx_oom_hook();
    archive_entry_set_pathname(e, name);
    archive_entry_set_mode(e, mode);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_ino(e, ino);
    archive_entry_set_nlink(e, S_ISDIR(mode) ? 2 : 1);
    archive_entry_set_mtime(e, 0, 0);
    if (S_ISCHR(mode)) archive_entry_set_rdev(e, rdev);
    archive_entry_set_size(e, S_ISREG(mode) ? (la_int64_t)len : 0);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK)
        return dbx_error_set(err, 0, "cpio '%s': %s", name, archive_error_string(a));
    if (S_ISREG(mode) && len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len)
        return dbx_error_set(err, 0, "cpio '%s': %s", name, archive_error_string(a));
    return 0;
}

static void archive_write_freep(struct archive **a) {
    if (*a) archive_write_free(*a);
}

int vm_initramfs_write(int out_fd, const char *init_path, const struct vm_initramfs_module *mods,
                       size_t n_mods, dbx_error **err) {
    _cleanup_free_ char *init = NULL;
    size_t init_len = 0;
    if (dbx_read_file_at(AT_FDCWD, init_path, MAX_INIT_BYTES, &init, &init_len, err) < 0)
        return dbx_error_wrap(err, "init");
    return vm_initramfs_write_mem(out_fd, init, init_len, mods, n_mods, err);
}

int vm_initramfs_write_mem(int out_fd, const void *init, size_t init_len,
                           const struct vm_initramfs_module *mods, size_t n_mods, dbx_error **err) {
    static const char *const dirs[] = {"dev", "proc", "sys", "newroot", "lib", "lib/modules"};
    __attribute__((cleanup(archive_write_freep))) struct archive *a = archive_write_new();
    if (!a) dbx_oom_hook();
    if (archive_write_set_format_cpio_newc(a) != ARCHIVE_OK ||
        archive_write_add_filter_none(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open_fd(a, out_fd) != ARCHIVE_OK)
        return dbx_error_set(err, 0, "cpio: %s", archive_error_string(a));
    unsigned ino = 1;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(dirs); i++)
        if (cpio_add(a, dirs[i], S_IFDIR | 0755, 0, NULL, 0, ino++, err) < 0) return -1;
    /* The kernel opens /dev/console for init's stdio before anything is mounted. */
    if (cpio_add(a, "dev/console", S_IFCHR | 0600, makedev(5, 1), NULL, 0, ino++, err) < 0)
        return -1;
    /* 0711: the box user can exec it but not read it, so the guest's spare process (init's
     * binary run as that user, guest/init-exec.c) is not dumpable from its start */
    if (cpio_add(a, "init", S_IFREG | 0711, 0, init, init_len, ino++, err) < 0) return -1;
    _cleanup_free_ char *order = dbx_xstrdup("");
    for (size_t i = 0; i < n_mods; i++) {
        if (!name_ok(mods[i].name, 64, "_-.") || strchr(mods[i].name, '/'))
            return dbx_error_set(err, 0, "bad module name '%s'", mods[i].name);
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        if (dbx_read_file_at(AT_FDCWD, mods[i].path, MAX_MODULE_BYTES, &data, &len, err) < 0)
            return dbx_error_wrap(err, "module");
        _cleanup_free_ char *name = dbx_xasprintf("lib/modules/%s", mods[i].name);
        if (cpio_add(a, name, S_IFREG | 0644, 0, data, len, ino++, err) < 0) return -1;
        char *o = dbx_xasprintf("%s%s\n", order, mods[i].name);
        free(order);
        order = o;
    }
    if (cpio_add(a, "modules.order", S_IFREG | 0644, 0, order, strlen(order), ino++, err) < 0)
        return -1;
    if (archive_write_close(a) != ARCHIVE_OK)
        return dbx_error_set(err, 0, "cpio: %s", archive_error_string(a));
    return 0;
}

static int hash_file(EVP_MD_CTX *md, const char *tag, const char *path, dbx_error **err) {
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    if (dbx_read_file_at(AT_FDCWD, path, MAX_INIT_BYTES, &data, &len, err) < 0) return -1;
    uint64_t l = len;
    EVP_DigestUpdate(md, tag, strlen(tag) + 1);
    EVP_DigestUpdate(md, &l, sizeof(l));
    EVP_DigestUpdate(md, data, len);
    return 0;
}

static void md_freep(EVP_MD_CTX **m) {
    if (*m) EVP_MD_CTX_free(*m);
}

/* Ensure kernel_dir/initramfs-<hash>.cpio for the release's modules and init_path. */
static int ensure_initramfs(int kfd, const char *kdir, const char *release, const char *init_path,
                            char **ret_path, dbx_error **err) {
    _cleanup_free_ char *order_path = dbx_xasprintf("%s/%s/modules.order", kdir, release);
    _cleanup_free_ char *order = NULL;
    if (dbx_read_file_at(AT_FDCWD, order_path, 64 * 1024, &order, NULL, err) < 0) return -1;
    struct vm_initramfs_module mods[32];
    char *paths[32] = {0};
    size_t n = 0;
    int r = 0;
    __attribute__((cleanup(md_freep))) EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) dbx_oom_hook();
    EVP_DigestUpdate(md, "devbox-initramfs-v2", 20);
    r = hash_file(md, "init", init_path, err);
    if (r < 0) dbx_error_wrap(err, "init");
    for (char *save = NULL, *l = strtok_r(order, "\n", &save); r == 0 && l;
         l = strtok_r(NULL, "\n", &save)) {
        if (n == DBX_ARRAY_SIZE(mods) || !name_ok(l, 64, "_-.") || strchr(l, '/')) {
            r = dbx_error_set(err, 0, "'%s': bad or too many entries", order_path);
            break;
        }
        paths[n] = dbx_xasprintf("%s/%s/modules/%s", kdir, release, l);
        mods[n] = (struct vm_initramfs_module){.name = l, .path = paths[n]};
        r = hash_file(md, l, paths[n], err);
        n++;
    }
    unsigned char dig[32];
    unsigned dlen = 0;
    char hex[65];
    if (r == 0) {
        EVP_DigestFinal_ex(md, dig, &dlen);
        for (unsigned i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    }
    _cleanup_free_ char *name = r == 0 ? dbx_xasprintf("initramfs-%s.cpio", hex) : NULL;
    struct stat st;
    if (r == 0 && fstatat(kfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        _cleanup_free_ char *tpath = dbx_xasprintf("%s/.initramfs-XXXXXX", kdir);
        _cleanup_close_ int fd = mkostemp(tpath, O_CLOEXEC);
        if (fd < 0) r = dbx_error_set(err, errno, "create '%s'", tpath);
        if (r == 0) r = vm_initramfs_write(fd, init_path, mods, n, err);
        if (r == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
            r = dbx_error_set(err, errno, "write '%s'", tpath);
        _cleanup_free_ char *final = dbx_xasprintf("%s/%s", kdir, name);
        if (r == 0 && rename(tpath, final) < 0) r = dbx_error_set(err, errno, "rename '%s'", final);
        if (r == 0) fsync(kfd);
        if (r < 0 && fd >= 0) unlink(tpath);
    }
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    if (r < 0) return dbx_error_wrap(err, "initramfs");
    *ret_path = dbx_xasprintf("%s/%s", kdir, name);
    return 0;
}

/* An initramfs name of ours: PREFIX + 64 lowercase hex digits + ".cpio". */
static bool initramfs_name(const char *name) {
    static const char *const prefixes[] = {"initramfs-", "devbox-initramfs-"};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(prefixes); i++) {
        if (!dbx_str_has_prefix(name, prefixes[i])) continue;
        const char *h = name + strlen(prefixes[i]);
        if (strspn(h, "0123456789abcdef") == 64 && strcmp(h + 64, ".cpio") == 0) return true;
    }
    return false;
}

void vm_initramfs_prune(int kfd, const char *keep) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct stat st;
    if (fstatat(kfd, keep, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        st.st_mtim.tv_sec < now.tv_sec - VM_INITRAMFS_TOUCH_S)
        (void)utimensat(kfd, keep, NULL, AT_SYMLINK_NOFOLLOW);
    int dfd = openat(kfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0) close(dfd);
        return;
    }
    for (struct dirent *de; (de = readdir(d));) {
        if (!initramfs_name(de->d_name) || strcmp(de->d_name, keep) == 0) continue;
        if (fstatat(kfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            st.st_mtim.tv_sec > now.tv_sec - VM_INITRAMFS_UNUSED_S)
            continue;
        (void)unlinkat(kfd, de->d_name, 0);
    }
    closedir(d);
}

/* ---- public ----------------------------------------------------------------------------- */

static void unlockp(int *fd) {
    if (*fd >= 0) {
        flock(*fd, LOCK_UN);
        close(*fd);
    }
}

int vm_kernel_ensure(const char *kernel_dir, const char *init_path, struct vm_kernel *ret,
                     dbx_error **err) {
    if (dbx_mkdir_private(kernel_dir, err) < 0) return dbx_error_wrap(err, "kernel directory");
    _cleanup_free_ char *kdir = realpath(kernel_dir, NULL);
    if (!kdir) return dbx_error_set(err, errno, "resolve '%s'", kernel_dir);
    _cleanup_close_ int kfd = open(kdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (kfd < 0) return dbx_error_set(err, errno, "open '%s'", kdir);
    __attribute__((cleanup(unlockp))) int lock =
        openat(kfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0) return dbx_error_set(err, errno, "open '%s/lock'", kdir);
    while (flock(lock, LOCK_EX) < 0)
        if (errno != EINTR) return dbx_error_set(err, errno, "lock '%s/lock'", kdir);
    clean_leftovers(kdir);

    _cleanup_free_ char *release = NULL;
    if (choose_release(kfd, kdir, &release, err) < 0) return -1;
    _cleanup_free_ char *initramfs = NULL;
    if (ensure_initramfs(kfd, kdir, release, init_path, &initramfs, err) < 0) return -1;
    vm_initramfs_prune(kfd, strrchr(initramfs, '/') + 1);
    ret->vmlinuz = dbx_xasprintf("%s/%s/vmlinuz", kdir, release);
    ret->initramfs = TAKE_PTR(initramfs);
    ret->release = TAKE_PTR(release);
    return 0;
}

/* vm/vm-accel.c: KVM when it works, TCG otherwise.  On nested, paravirtualized hosts /dev/kvm
 * opens and answers ioctls but a guest never runs (see docs: platform notes), so the
 * supervisor records a verdict after a KVM boot that never said hello; the verdict is tied to
 * the host kernel release, so a kernel upgrade gets KVM another chance.  The same file records
 * the host KVM that refuses the host CPU's IA32_ARCH_CAPABILITIES (vm_accel_arch_caps_refused). */
#include "vm-internal.h"

#include <jansson.h>
#include <linux/kvm.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>

#define VERDICT_FILE "accel.json"
#define VERDICT_LOCK "accel.lock"

const char *vm_accel_name(enum vm_accel a) {
    switch (a) {
    case VM_ACCEL_KVM:
        return "kvm";
    case VM_ACCEL_TCG:
        return "tcg";
    }
    return "?";
}

static const struct {
    const char *name;
    int accel; /* -1 = automatic */
} accel_values[] = {
    {"kvm", VM_ACCEL_KVM},
    {"tcg", VM_ACCEL_TCG},
    {"auto", -1},
    {"", -1},
};

static bool kvm_usable(void) {
    _cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    return ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
}

/* What accel.json says about this host.  Its keys: "host_kernel" (the release the verdict
 * is for), "kvm": "broken" (no guest ever said hello under KVM), "arch_capabilities":
 * "refused" (QEMU could not give the guest the MSR).  Each verdict is one key, so a later one
 * adds to the file instead of replacing it. */
enum {
    VERDICT_KVM_BROKEN = 1u << 0,
    VERDICT_ARCH_CAPS_REFUSED = 1u << 1,
};

/* The verdicts in dfd's file for the running host kernel.  A missing, unreadable or malformed
 * file, or one for another kernel, holds none (we would only try once more). */
static unsigned verdicts_at(int dfd) {
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(dfd, VERDICT_FILE, 4096, &text, NULL, &e) < 0) return 0;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (!root) return 0;
    const char *host = NULL, *kvm = NULL, *caps = NULL;
    struct utsname u;
    unsigned v = 0;
    if (json_unpack(root, "{s:s, s?s, s?s}", "host_kernel", &host, "kvm", &kvm, "arch_capabilities",
                    &caps) == 0 &&
        uname(&u) == 0 && strcmp(host, u.release) == 0) {
        if (kvm && strcmp(kvm, "broken") == 0) v |= VERDICT_KVM_BROKEN;
        if (caps && strcmp(caps, "refused") == 0) v |= VERDICT_ARCH_CAPS_REFUSED;
    }
    json_decref(root);
    return v;
}

static unsigned verdicts(const char *state_dir) {
    _cleanup_close_ int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return dfd < 0 ? 0 : verdicts_at(dfd);
}

static bool kvm_marked_broken(const char *state_dir) {
    return verdicts(state_dir) & VERDICT_KVM_BROKEN;
}

bool vm_accel_arch_caps_refused(const char *state_dir) {
    return verdicts(state_dir) & VERDICT_ARCH_CAPS_REFUSED;
}

int vm_accel_choose(const char *state_dir, enum vm_accel *ret, bool *ret_forced, dbx_error **err) {
    const char *v = getenv("DEVBOX_ACCEL");
    int forced = -1;
    if (v) {
        size_t i = 0;
        while (i < DBX_ARRAY_SIZE(accel_values) && strcmp(v, accel_values[i].name) != 0)
            i++;
        if (i == DBX_ARRAY_SIZE(accel_values)) {
            _cleanup_free_ char *shown = dbx_sanitize_printable(dbx_xstrndup(v, 64));
            return dbx_error_set(err, 0, "DEVBOX_ACCEL='%s': expected 'kvm', 'tcg' or 'auto'",
                                 shown);
        }
        forced = accel_values[i].accel;
    }
    if (forced >= 0) {
        *ret = (enum vm_accel)forced;
        if (ret_forced) *ret_forced = true;
        return 0;
    }
    *ret = kvm_usable() && !kvm_marked_broken(state_dir) ? VM_ACCEL_KVM : VM_ACCEL_TCG;
    if (ret_forced) *ret_forced = false;
    return 0;
}

/* Add `add` to the verdicts for this host kernel: read, merge and replace the file under an
 * exclusive flock of accel.lock, so two supervisors booting at once (two projects) do not lose
 * each other's verdict.  Where the lock cannot be had (a file system without flock), the
 * verdict is written without it: at worst one is lost, and found again at a later boot. */
static int record(const char *state_dir, unsigned add, dbx_error **err) {
    struct utsname u;
    if (uname(&u) < 0) return dbx_error_set(err, errno, "uname");
    if (dbx_mkdir_p(state_dir, 0700, err) < 0) return -1;
    _cleanup_close_ int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return dbx_error_set(err, errno, "open '%s'", state_dir);
    _cleanup_close_ int lock =
        openat(dfd, VERDICT_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    while (lock >= 0 && flock(lock, LOCK_EX) < 0 && errno == EINTR) {
    }
    unsigned v = verdicts_at(dfd) | add;
    json_t *root = json_pack("{s:s}", "host_kernel", u.release);
    if (!root) dbx_oom_hook();
    if (v & VERDICT_KVM_BROKEN) json_object_set_new(root, "kvm", json_string("broken"));
    if (v & VERDICT_ARCH_CAPS_REFUSED)
        json_object_set_new(root, "arch_capabilities", json_string("refused"));
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!text) dbx_oom_hook();
    _cleanup_free_ char *line = dbx_xasprintf("%s\n", text);
    free(text);
    if (dbx_write_file_atomic(dfd, VERDICT_FILE, line, strlen(line), 0600, err) < 0)
        return dbx_error_wrap(err, "record the accelerator's verdict in '%s'", state_dir);
    return 0;
}

int vm_accel_record_kvm_broken(const char *state_dir, dbx_error **err) {
    return record(state_dir, VERDICT_KVM_BROKEN, err);
}

int vm_accel_record_arch_caps_refused(const char *state_dir, dbx_error **err) {
    return record(state_dir, VERDICT_ARCH_CAPS_REFUSED, err);
}

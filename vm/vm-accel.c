/* vm/vm-accel.c: KVM when it works, TCG otherwise.  On nested, paravirtualized hosts /dev/kvm
 * opens and answers ioctls but a guest never runs (see docs: platform notes), so the
 * supervisor records a verdict after a KVM boot that never said hello; the verdict is tied to
 * the host kernel release, so a kernel upgrade gets KVM another chance. */
#include "vm-internal.h"

#include <jansson.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>

#define VERDICT_FILE "accel.json"

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

/* true when state_dir holds a "kvm broken" verdict for the running host kernel.  A missing,
 * unreadable or malformed file is no verdict (we would only retry KVM once more). */
static bool kvm_marked_broken(const char *state_dir) {
    _cleanup_close_ int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return false;
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(dfd, VERDICT_FILE, 4096, &text, NULL, &e) < 0) return false;
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return false;
    const char *kvm = NULL, *host = NULL;
    int r = json_unpack(root, "{s:s, s:s}", "kvm", &kvm, "host_kernel", &host);
    struct utsname u;
    bool broken =
        r == 0 && strcmp(kvm, "broken") == 0 && uname(&u) == 0 && strcmp(host, u.release) == 0;
    json_decref(root);
    return broken;
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

int vm_accel_record_kvm_broken(const char *state_dir, dbx_error **err) {
    struct utsname u;
    if (uname(&u) < 0) return dbx_error_set(err, errno, "uname");
    if (dbx_mkdir_p(state_dir, 0700, err) < 0) return -1;
    _cleanup_close_ int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return dbx_error_set(err, errno, "open '%s'", state_dir);
    json_t *root = json_pack("{s:s, s:s}", "kvm", "broken", "host_kernel", u.release);
    if (!root) dbx_oom_hook();
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) dbx_oom_hook();
    _cleanup_free_ char *line = dbx_xasprintf("%s\n", text);
    free(text);
    if (dbx_write_file_atomic(dfd, VERDICT_FILE, line, strlen(line), 0600, err) < 0)
        return dbx_error_wrap(err, "record kvm verdict in '%s'", state_dir);
    return 0;
}

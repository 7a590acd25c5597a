/* tests/unit/test-vm-qemu.c: the QEMU command line (no QEMU is started) and spawn errors.
 * passt (vm_passt_start): test-vm-passt.c. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <sys/socket.h>

#include "vm/vm-internal.h"

static struct vm_config base_cfg(void) {
    return (struct vm_config){.kernel = "/k/vmlinuz",
                              .initramfs = "/k/initramfs.cpio",
                              .disk = "/p/disk,1.qcow2",
                              .vfs_socket = "/run/vfs.sock",
                              .vfs_tag = "work",
                              .agent_fd = 7,
                              .console_fd = 8,
                              .cpus = 2,
                              .mem_mib = 1024,
                              .accel = VM_ACCEL_TCG};
}

/* A list of items separated by sep contains `item` exactly (not as a prefix of another). */
static bool has_item(const char *list, char sep, const char *item) {
    size_t n = strlen(item);
    for (const char *p = list; p; p = strchr(p, sep)) {
        if (*p == sep) p++;
        if (strncmp(p, item, n) == 0 && (p[n] == sep || p[n] == '\0')) return true;
    }
    return false;
}

/* One comma-separated option list contains `item` exactly. */
static bool list_has(const char *list, const char *item) {
    return has_item(list, ',', item);
}

/* The value following option `opt` whose value starts with `prefix` (NULL if none). */
static const char *opt_value(char **v, const char *opt, const char *prefix) {
    for (size_t i = 0; v[i] && v[i + 1]; i++)
        if (strcmp(v[i], opt) == 0 && dbx_str_has_prefix(v[i + 1], prefix)) return v[i + 1];
    return NULL;
}

static bool has_arg(char **v, const char *a) {
    for (size_t i = 0; v[i]; i++)
        if (strcmp(v[i], a) == 0) return true;
    return false;
}

static void test_argv_tcg(void **state) {
    struct vm_config cfg = base_cfg();
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **v = vm_qemu_argv(&cfg, &err);
    assert_non_null(v);
    assert_null(err);
    assert_string_equal(v[0], "qemu-system-x86_64");
    assert_non_null(opt_value(v, "-M", "microvm,"));
    assert_non_null(strstr(opt_value(v, "-M", "microvm"), "acpi=on"));
    assert_non_null(strstr(opt_value(v, "-M", "microvm"), "memory-backend=mem"));
    assert_non_null(opt_value(v, "-object", "memory-backend-memfd,id=mem,size=1024M,share=on"));
    assert_non_null(opt_value(v, "-m", "1024M"));
    assert_non_null(opt_value(v, "-smp", "2"));
    assert_non_null(opt_value(v, "-accel", "tcg"));
    /* TCG: no ERMS/FSRM, so the guest's kernel clears and copies memory without rep stosb */
    const char *cpu = opt_value(v, "-cpu", "max");
    assert_non_null(cpu);
    assert_true(list_has(cpu, "-erms") && list_has(cpu, "-fsrm"));
    /* no hardware virtualization for the hostile guest kernel (TCG's max offers SVM) */
    assert_true(list_has(cpu, "-vmx") && list_has(cpu, "-svm"));
    /* and the extended CPUID leaves up to SVM's own, as with it (Debian's kernel needs them) */
    assert_true(list_has(cpu, "xlevel=0x8000000a"));
    assert_non_null(opt_value(v, "-global", "virtio-mmio.force-legacy=false"));
    for (const char *f = "-nodefaults"; f; f = NULL)
        assert_true(has_arg(v, f));
    assert_true(has_arg(v, "-no-user-config"));
    assert_true(has_arg(v, "-nographic"));
    assert_true(has_arg(v, "-no-reboot"));
    const char *sb = opt_value(v, "-sandbox", "on");
    assert_non_null(sb);
    for (const char *const *d = (const char *const[]){"obsolete=deny", "elevateprivileges=deny",
                                                      "spawn=deny", "resourcecontrol=deny", NULL};
         *d; d++)
        assert_non_null(strstr(sb, *d));
    assert_non_null(opt_value(v, "-kernel", "/k/vmlinuz"));
    assert_non_null(opt_value(v, "-initrd", "/k/initramfs.cpio"));
    const char *app = opt_value(v, "-append", "console=ttyS0");
    assert_non_null(app);
    assert_non_null(strstr(app, "panic=-1"));
    /* the comma in the disk path is doubled, QEMU's escape inside an option list */
    const char *drive = opt_value(v, "-drive", "file=/p/disk,,1.qcow2,");
    assert_non_null(drive);
    assert_non_null(strstr(drive, "format=qcow2"));
    assert_non_null(strstr(drive, "cache=writeback"));
    assert_non_null(opt_value(v, "-device", "virtio-blk-device,drive=root"));
    assert_non_null(opt_value(v, "-chardev", "socket,id=vfs,path=/run/vfs.sock"));
    assert_non_null(
        opt_value(v, "-device", "vhost-user-fs-device,event_idx=off,chardev=vfs,tag=work"));
    /* the console and the agent: two ports, not QEMU's 31 (64 virtqueues for the guest) */
    assert_non_null(opt_value(v, "-device", "virtio-serial-device,max_ports=2"));
    assert_non_null(opt_value(v, "-chardev", "socket,id=agent,fd=3"));
    assert_non_null(
        opt_value(v, "-device", "virtserialport,chardev=agent,name=" DBX_AGENT_PORT_NAME));
    assert_non_null(opt_value(v, "-chardev", "socket,id=con,fd=4"));
    assert_non_null(opt_value(v, "-serial", "chardev:con"));
    /* no network of any kind */
    for (size_t i = 0; v[i]; i++) {
        assert_false(strcmp(v[i], "-netdev") == 0 || strcmp(v[i], "-nic") == 0 ||
                     strcmp(v[i], "-net") == 0);
        assert_null(strstr(v[i], "virtio-net"));
        assert_null(strstr(v[i], "user,"));
    }
}

static void test_argv_kvm_and_optional(void **state) {
    struct vm_config cfg = base_cfg();
    cfg.accel = VM_ACCEL_KVM;
    cfg.qemu = "/opt/qemu";
    cfg.disk = NULL;
    cfg.vfs_socket = cfg.vfs_tag = NULL;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **v = vm_qemu_argv(&cfg, &err);
    assert_non_null(v);
    assert_string_equal(v[0], "/opt/qemu");
    assert_non_null(opt_value(v, "-accel", "kvm"));
    const char *cpu = opt_value(v, "-cpu", "host");
    assert_non_null(cpu);
    /* not the host's nested virtualization (KVM's nVMX/nSVM) for the hostile guest kernel */
    assert_true(list_has(cpu, "-vmx") && list_has(cpu, "-svm"));
    /* the host CPU's IA32_ARCH_CAPABILITIES reaches the guest, which then knows what the CPU
     * is immune to; masked only for a host KVM that refuses it */
    assert_string_equal(cpu, "host,-vmx,-svm");
    assert_null(strstr(cpu, "xlevel")); /* the host's own highest leaf */
    assert_null(opt_value(v, "-drive", ""));
    assert_null(opt_value(v, "-device", "vhost-user-fs-device"));
    assert_null(strstr(opt_value(v, "-append", ""), "tsc_early_khz"));
}

static void test_argv_kvm_mask_arch_caps(void **state) {
    struct vm_config cfg = base_cfg();
    cfg.accel = VM_ACCEL_KVM;
    cfg.kvm_mask_arch_caps = true;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **v = vm_qemu_argv(&cfg, &err);
    assert_non_null(v);
    assert_string_equal(opt_value(v, "-cpu", "host"), "host,-arch-capabilities,-vmx,-svm");
    /* TCG has no such MSR to hide: its CPU is the same either way */
    cfg.accel = VM_ACCEL_TCG;
    _cleanup_strv_ char **t = vm_qemu_argv(&cfg, &err);
    assert_non_null(t);
    assert_null(strstr(opt_value(t, "-cpu", "max"), "arch-capabilities"));
}

/* QEMU 7.2's stderr when KVM refuses IA32_ARCH_CAPABILITIES (asterinas issue #2980), and when it
 * refuses another MSR (a VMX capability MSR: not this fault, not this remedy). */
static void test_refused_arch_caps(void **state) {
    static const char caps[] =
        "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n"
        "qemu-system-x86_64: ../target/i386/kvm/kvm.c:3870: kvm_buf_set_msrs: Assertion `ret == "
        "cpu->kvm_msr_buf->nmsrs' failed.\n";
    static const char vmx[] =
        "qemu-system-x86_64: error: failed to set MSR 0x48f to 0xffffff00036dfb\n"
        "qemu-system-x86_64: ../target/i386/kvm/kvm.c:2691: kvm_buf_set_msrs: Assertion `ret == "
        "cpu->kvm_msr_buf->nmsrs' failed.\n";
    assert_true(vm_qemu_refused_arch_caps(caps, sizeof(caps) - 1));
    assert_false(vm_qemu_refused_arch_caps(vmx, sizeof(vmx) - 1));
    assert_false(vm_qemu_refused_arch_caps(caps, 30)); /* only what the tail holds */
    assert_false(vm_qemu_refused_arch_caps(NULL, 0));
}

/* The "open" network mode: a virtio-net device on QEMU's end of a socket pair with passt
 * (QEMU 7.2 stream netdev, fd 5 in the child). */
static void test_argv_net(void **state) {
    struct vm_config cfg = base_cfg();
    cfg.net_fd = 9;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **v = vm_qemu_argv(&cfg, &err);
    assert_non_null(v);
    assert_non_null(opt_value(v, "-netdev", "stream,id=net0,server=off,addr.type=fd,addr.str=5"));
    assert_non_null(opt_value(v, "-device", "virtio-net-device,netdev=net0,mac=" VM_GUEST_MAC));
    assert_non_null(opt_value(v, "-sandbox", "on,"));
    assert_true(has_arg(v, "-nodefaults"));
    size_t n = 0;
    for (size_t i = 0; v[i]; i++)
        n += strcmp(v[i], "-netdev") == 0;
    assert_int_equal(n, 1);
}

static void test_argv_qmp(void **state) {
    struct vm_config cfg = base_cfg();
    cfg.qmp_fd = 9;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **v = vm_qemu_argv(&cfg, &err);
    assert_non_null(v);
    assert_non_null(opt_value(v, "-chardev", "socket,id=qmp,fd=6"));
    assert_non_null(opt_value(v, "-mon", "chardev=qmp,mode=control"));
    cfg.qmp_fd = 0;
    _cleanup_strv_ char **w = vm_qemu_argv(&cfg, &err);
    assert_null(opt_value(w, "-mon", ""));
}

/* DEVBOX_GUEST_GDB: the gdbstub on the given unix socket, QEMU the server, never waiting for a
 * debugger; without it, no gdbstub at all. */
static void test_argv_gdb(void **state) {
    struct vm_config cfg = base_cfg();
    cfg.gdb_socket = "/run/u/p/gdb.sock";
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **v = vm_qemu_argv(&cfg, &err);
    assert_non_null(v);
    assert_non_null(
        opt_value(v, "-chardev", "socket,id=gdb,path=/run/u/p/gdb.sock,server=on,wait=off"));
    assert_non_null(opt_value(v, "-gdb", "chardev:gdb"));
    /* a comma in the path is doubled, as QEMU's option syntax wants */
    cfg.gdb_socket = "/run/a,b/gdb.sock";
    _cleanup_strv_ char **c = vm_qemu_argv(&cfg, &err);
    assert_non_null(
        opt_value(c, "-chardev", "socket,id=gdb,path=/run/a,,b/gdb.sock,server=on,wait=off"));
    cfg.gdb_socket = NULL;
    _cleanup_strv_ char **w = vm_qemu_argv(&cfg, &err);
    assert_null(opt_value(w, "-gdb", ""));
    for (size_t i = 0; w[i]; i++)
        assert_null(strstr(w[i], "id=gdb"));
}

/* With a monitor, the ISA panic device (microvm's DSDT names it QEMU0001 for the guest's
 * pvpanic_mmio) and a guest panic pauses the VM (GUEST_PANICKED, QEMU stays for the supervisor
 * to end); without one, neither (nobody would hear the event, and a paused VM would wait). */
static void test_argv_panic_device(void **state) {
    struct vm_config cfg = base_cfg();
    cfg.qmp_fd = 9;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **v = vm_qemu_argv(&cfg, &err);
    assert_non_null(v);
    const char *dev = opt_value(v, "-device", "pvpanic");
    assert_non_null(dev);
    assert_string_equal(dev, "pvpanic");
    assert_non_null(opt_value(v, "-action", "panic=pause"));
    assert_non_null(strstr(opt_value(v, "-append", "console=ttyS0"), "panic=-1"));
    cfg.qmp_fd = 0;
    _cleanup_strv_ char **w = vm_qemu_argv(&cfg, &err);
    assert_non_null(w);
    assert_null(opt_value(w, "-device", "pvpanic"));
    assert_null(opt_value(w, "-action", "panic="));
}

/* A word of the kernel command line, exactly. */
static bool cmdline_has(const char *app, const char *word) {
    return has_item(app, ' ', word);
}

static const char *app0(char **v) {
    return opt_value(v, "-append", "");
}

/* The Debian cloud kernel keeps today's machine: ACPI (it has no virtio_mmio.device=), the ISA
 * serial console, the panic device. */
static void test_argv_debian_kind(void **state) {
    struct vm_config cfg = base_cfg();
    cfg.qmp_fd = 9;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **v = vm_qemu_argv(&cfg, &err);
    assert_non_null(v);
    const char *m = opt_value(v, "-M", "microvm,");
    assert_non_null(m);
    assert_true(list_has(m, "acpi=on"));
    assert_false(list_has(m, "pit=off") || list_has(m, "isa-serial=off"));
    const char *app = opt_value(v, "-append", "");
    assert_true(cmdline_has(app, "console=ttyS0"));
    assert_false(cmdline_has(app, "console=hvc0"));
    assert_non_null(opt_value(v, "-serial", "chardev:con"));
    assert_null(opt_value(v, "-device", "virtconsole"));
    assert_non_null(opt_value(v, "-device", "pvpanic"));
    assert_null(opt_value(v, "-device", "virtio-balloon"));
    /* the devbox kernel's timer knobs are its own */
    assert_false(cmdline_has(app, "noapictimer") || cmdline_has(app, "no_timer_check") ||
                 cmdline_has(app, "noreplace-smp") || cmdline_has(app, "percpu_alloc") ||
                 cmdline_has(app, "rcupdate"));
    cfg.cpus = 1;
    _cleanup_strv_ char **w = vm_qemu_argv(&cfg, &err);
    assert_non_null(w);
    assert_false(cmdline_has(opt_value(w, "-append", ""), "noapictimer"));
}

/* The devbox kernel: microvm without ACPI and legacy devices, the console on hvc0 (virtio)
 * unless asked for on the ISA serial port; the same devices otherwise. */
static void test_argv_devbox_kind(void **state) {
    for (int console = 0; console <= 1; console++) {
        struct vm_config cfg = base_cfg();
        cfg.kernel_kind = VM_KERNEL_DEVBOX;
        cfg.kernel = "/k/vmlinux";
        cfg.console = console;
        cfg.qmp_fd = 9;
        _cleanup_error_ dbx_error *err = NULL;
        _cleanup_strv_ char **v = vm_qemu_argv(&cfg, &err);
        assert_non_null(v);
        const char *m = opt_value(v, "-M", "microvm,");
        assert_non_null(m);
        assert_true(list_has(m, "acpi=off"));
        assert_true(list_has(m, "memory-backend=mem"));
        /* TCG needs the PIT and PIC for its timer, the guest the RTC for its clock */
        assert_false(list_has(m, "pit=off") || list_has(m, "pic=off") || list_has(m, "rtc=off"));
        assert_true(cmdline_has(app0(v), "reboot=t"));
        assert_false(list_has(m, "acpi=on"));
        assert_int_equal(list_has(m, "isa-serial=off"), !console);
        assert_non_null(opt_value(v, "-kernel", "/k/vmlinux"));
        /* a copy of its own (vm_kernel_copy): QEMU opens the fd it gets as 7 */
        cfg.kernel_fd = 11;
        _cleanup_strv_ char **c = vm_qemu_argv(&cfg, &err);
        assert_non_null(c);
        const char *k = opt_value(c, "-kernel", "");
        assert_non_null(k);
        assert_string_equal(k, "/proc/self/fd/7");
        assert_non_null(opt_value(v, "-initrd", "/k/initramfs.cpio"));
        const char *app = opt_value(v, "-append", "");
        assert_int_equal(cmdline_has(app, "quiet"), !console);
        assert_true(cmdline_has(app, "panic=-1"));
        assert_int_equal(cmdline_has(app, "console=ttyS0"), console);
        assert_int_equal(cmdline_has(app, "console=hvc0"), !console);
        /* QEMU itself appends virtio_mmio.device= (acpi=off): none from us */
        assert_null(strstr(app, "virtio_mmio"));
        /* TCG: the host's TSC frequency, when it has a constant one */
        unsigned khz = vm_host_tsc_khz();
        assert_int_equal(strstr(app, "tsc_early_khz=") != NULL, khz != 0);
        if (khz) {
            /* loops per jiffy of the fragment's HZ=250 from the same TSC frequency */
            char lpj[64];
            snprintf(lpj, sizeof(lpj), "lpj=%llu", (unsigned long long)khz * 4);
            assert_true(cmdline_has(app, lpj));
        }
        assert_int_equal(opt_value(v, "-serial", "chardev:con") != NULL, console);
        assert_int_equal(opt_value(v, "-device", "virtconsole,chardev=con") != NULL, !console);
        /* no ACPI, so nothing would describe the ISA panic device to the guest */
        assert_null(opt_value(v, "-device", "pvpanic"));
        assert_non_null(opt_value(v, "-action", "panic=pause"));
        /* the rest as for the Debian kernel */
        assert_non_null(opt_value(v, "-device", "virtio-blk-device,drive=root"));
        assert_true(list_has(opt_value(v, "-drive", "file="), "discard=unmap"));
        assert_non_null(
            opt_value(v, "-device", "vhost-user-fs-device,event_idx=off,chardev=vfs,tag=work"));
        assert_non_null(
            opt_value(v, "-device", "virtserialport,chardev=agent,name=" DBX_AGENT_PORT_NAME));
        assert_non_null(opt_value(v, "-chardev", "socket,id=con,fd=4"));
        assert_non_null(opt_value(v, "-accel", "tcg"));
        /* the LAPIC timer stays with 2 vCPUs (the other's timers would be broadcast IPIs) */
        assert_false(cmdline_has(app, "noapictimer") || cmdline_has(app, "noreplace-smp") ||
                     cmdline_has(app, "rcupdate.rcu_expedited=1"));
        assert_true(cmdline_has(app, "percpu_alloc=page")); /* TCG with any number of vCPUs */
        assert_true(cmdline_has(app, "no_timer_check"));
    }
    /* TCG with one vCPU: the PIT alone, no LAPIC timer to calibrate */
    struct vm_config up = base_cfg();
    up.kernel_kind = VM_KERNEL_DEVBOX;
    up.cpus = 1;
    _cleanup_error_ dbx_error *uerr = NULL;
    _cleanup_strv_ char **u = vm_qemu_argv(&up, &uerr);
    assert_non_null(u);
    assert_true(cmdline_has(opt_value(u, "-append", ""), "noapictimer"));
    assert_true(cmdline_has(opt_value(u, "-append", ""), "noreplace-smp"));
    assert_true(cmdline_has(opt_value(u, "-append", ""), "percpu_alloc=page"));
    assert_true(cmdline_has(opt_value(u, "-append", ""), "rcupdate.rcu_expedited=1"));
    assert_true(cmdline_has(opt_value(u, "-append", ""), "no_timer_check"));
    struct vm_config kvm = base_cfg();
    kvm.kernel_kind = VM_KERNEL_DEVBOX;
    kvm.accel = VM_ACCEL_KVM;
    _cleanup_error_ dbx_error *err = NULL;
    _cleanup_strv_ char **w = vm_qemu_argv(&kvm, &err);
    assert_non_null(w);
    assert_null(strstr(opt_value(w, "-append", ""), "tsc_early_khz"));
    assert_null(strstr(opt_value(w, "-append", ""), "lpj="));
    /* KVM's TSC-deadline timer needs no calibration: the LAPIC timer stays, even with one vCPU */
    kvm.cpus = 1;
    _cleanup_strv_ char **k1 = vm_qemu_argv(&kvm, &err);
    assert_non_null(k1);
    assert_false(cmdline_has(opt_value(k1, "-append", ""), "noapictimer") ||
                 cmdline_has(opt_value(k1, "-append", ""), "noreplace-smp") ||
                 cmdline_has(opt_value(k1, "-append", ""), "percpu_alloc=page") ||
                 cmdline_has(opt_value(k1, "-append", ""), "rcupdate.rcu_expedited"));
    assert_true(cmdline_has(opt_value(k1, "-append", ""), "no_timer_check"));
    kvm.kernel_kind = (enum vm_kernel_kind)7;
    assert_null(vm_qemu_argv(&kvm, &err));
    assert_non_null(err);
}

/* virtio-balloon, for either kernel, only when asked: free page reporting gives what the guest
 * frees back to the host, deflate-on-oom lets the guest take the balloon back. */
static void test_argv_balloon(void **state) {
    for (int kind = VM_KERNEL_DEBIAN; kind <= VM_KERNEL_DEVBOX; kind++) {
        struct vm_config cfg = base_cfg();
        cfg.kernel_kind = (enum vm_kernel_kind)kind;
        cfg.balloon = true;
        _cleanup_error_ dbx_error *err = NULL;
        _cleanup_strv_ char **v = vm_qemu_argv(&cfg, &err);
        assert_non_null(v);
        const char *b = opt_value(v, "-device", "virtio-balloon-device,");
        assert_non_null(b);
        assert_true(list_has(b, "free-page-reporting=on"));
        assert_true(list_has(b, "deflate-on-oom=on"));
    }
}

/* Feed bytes as QEMU would and collect what the parser made of them. */
static unsigned qmp_feed(const char *const *chunks, size_t n, struct vm_qmp_state *st) {
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    struct vm_qmp *q = NULL;
    _cleanup_error_ dbx_error *err = NULL;
    assert_int_equal(vm_qmp_new(sp[0], &q, &err), 0);
    *st = (struct vm_qmp_state){0};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(dbx_write_all(sp[1], chunks[i], strlen(chunks[i])), 0);
        assert_int_equal(vm_qmp_io(q, st, &err), 0);
    }
    /* what we sent first: capabilities negotiation */
    char buf[256] = {0};
    assert_true(read(sp[1], buf, sizeof(buf) - 1) > 0);
    assert_non_null(strstr(buf, "qmp_capabilities"));
    close(sp[1]);
    assert_true(vm_qmp_io(q, st, &err) < 0); /* QEMU gone */
    assert_int_equal(vm_qmp_fd(q), -1);
    vm_qmp_free(q);
    return st->events;
}

static void test_qmp_events(void **state) {
    struct vm_qmp_state st;
    const char *nospace[] = {
        "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n{\"return\": {}}\r\n",
        "{\"timestamp\": {\"seconds\": 1}, \"event\": \"BLOCK_IO_ERROR\", \"data\": "
        "{\"device\": \"\", \"operation\": \"write\", \"action\": \"stop\", \"nos",
        "pace\": true, \"reason\": \"No space left on device\"}}\r\n{\"event\": \"STOP\"}\r\n",
    };
    assert_int_equal(qmp_feed(nospace, 3, &st),
                     VM_QMP_EV_IO_ERROR | VM_QMP_EV_NOSPACE | VM_QMP_EV_STOP);
    const char *other[] = {
        "{\"event\": \"RESUME\"}\n{\"event\": \"SHUTDOWN\", \"data\": {\"reason\": "
        "\"guest-panic\"}}\n{\"id\": \"status\", \"return\": {\"status\": \"io-error\"}}\n",
    };
    assert_int_equal(qmp_feed(other, 1, &st),
                     VM_QMP_EV_RESUME | VM_QMP_EV_PANIC | VM_QMP_EV_STATUS);
    assert_string_equal(st.status, "io-error");
    /* what QEMU 7.2 sent for a guest panic with `-device pvpanic -action panic=pause` */
    const char *panic[] = {
        "{\"timestamp\": {\"seconds\": 1796182873, \"microseconds\": 433253}, \"event\": "
        "\"GUEST_PANICKED\", \"data\": {\"action\": \"pause\"}}\r\n",
        "{\"timestamp\": {\"seconds\": 1796182873, \"microseconds\": 433338}, \"event\": "
        "\"STOP\"}\r\n",
    };
    assert_int_equal(qmp_feed(panic, 2, &st), VM_QMP_EV_PANIC | VM_QMP_EV_STOP);
}

/* Hostile monitor output: ignored, never a crash; an over-long line is skipped whole. */
static void test_qmp_hostile(void **state) {
    struct vm_qmp_state st;
    static char big[100 * 1024]; /* over the 64 KiB line cap, within a socket buffer */
    memset(big, '[', sizeof(big) - 1);
    memcpy(big, "{\"event\": \"STOP\", \"x\": \"", 24);
    const char *bad[] = {
        "not json\n",
        "{\"event\": 1}\n",
        "[\"event\", \"STOP\"]\n",
        "{\"event\": \"STOP\", \"event\": \"STOP\"}\n", /* duplicate key */
        "{\"event\": \"BLOCK_IO_ERROR\", \"data\": \"nospace\"}\n",
        "{\"id\": \"status\", \"return\": {\"status\": "
        "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}\n",
        "\0\n",
        big,
        "\"}\n",
        "{\"event\": \"RESUME\"}\n",
    };
    assert_int_equal(qmp_feed(bad, DBX_ARRAY_SIZE(bad), &st),
                     VM_QMP_EV_IO_ERROR | VM_QMP_EV_RESUME);
}

static void test_argv_invalid(void **state) {
    struct vm_config cfgs[4] = {base_cfg(), base_cfg(), base_cfg(), base_cfg()};
    cfgs[0].kernel = NULL;
    cfgs[1].cpus = 0;
    cfgs[2].mem_mib = 8;
    cfgs[3].vfs_tag = NULL;
    for (size_t i = 0; i < DBX_ARRAY_SIZE(cfgs); i++) {
        _cleanup_error_ dbx_error *err = NULL;
        char **v = vm_qemu_argv(&cfgs[i], &err);
        assert_null(v);
        assert_non_null(err);
        assert_non_null(strstr(err->msg, "qemu:"));
    }
}

static void test_spawn_exec_failure(void **state) {
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    struct vm_config cfg = base_cfg();
    cfg.qemu = "devbox-no-such-qemu";
    cfg.agent_fd = sp[0];
    cfg.console_fd = sp[1];
    _cleanup_error_ dbx_error *err = NULL;
    pid_t pid = vm_qemu_spawn(&cfg, -1, &err);
    assert_true(pid < 0);
    assert_non_null(err);
    assert_string_equal(err->msg, "exec 'devbox-no-such-qemu': No such file or directory");
    close(sp[0]);
    close(sp[1]);
}

/* Extra shares (issue 13): one chardev + vhost-user-fs device each, under KVM as under TCG;
 * tags unique and never the workspace's. */
static void test_argv_shares(void **state) {
    const struct vm_share sh[] = {{"/run/s0.sock", "share0"}, {"/run/a,b.sock", "share1"}};
    for (int accel = VM_ACCEL_KVM; accel <= VM_ACCEL_TCG; accel++) {
        struct vm_config cfg = base_cfg();
        cfg.accel = (enum vm_accel)accel;
        cfg.shares = sh;
        cfg.nshares = 2;
        _cleanup_error_ dbx_error *err = NULL;
        _cleanup_strv_ char **v = vm_qemu_argv(&cfg, &err);
        assert_non_null(v);
        assert_non_null(
            opt_value(v, "-device", "vhost-user-fs-device,event_idx=off,chardev=vfs,tag=work"));
        assert_non_null(opt_value(v, "-chardev", "socket,id=vfs0,path=/run/s0.sock"));
        assert_non_null(
            opt_value(v, "-device", "vhost-user-fs-device,event_idx=off,chardev=vfs0,tag=share0"));
        assert_non_null(opt_value(v, "-chardev", "socket,id=vfs1,path=/run/a,,b.sock"));
        assert_non_null(
            opt_value(v, "-device", "vhost-user-fs-device,event_idx=off,chardev=vfs1,tag=share1"));
    }
    const struct vm_share dup[] = {{"/a", "x"}, {"/b", "x"}};
    const struct vm_share ws[] = {{"/a", "work"}};
    const struct vm_share none[] = {{"/a", ""}};
    const struct {
        const struct vm_share *v;
        size_t n;
    } bad[] = {{dup, 2}, {ws, 1}, {none, 1}, {NULL, 1}, {sh, VM_SHARES_MAX + 1}};
    for (size_t i = 0; i < DBX_ARRAY_SIZE(bad); i++) {
        struct vm_config cfg = base_cfg();
        cfg.shares = bad[i].v;
        cfg.nshares = bad[i].n;
        _cleanup_error_ dbx_error *err = NULL;
        assert_null(vm_qemu_argv(&cfg, &err));
        assert_non_null(err);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_tcg),
        cmocka_unit_test(test_argv_kvm_and_optional),
        cmocka_unit_test(test_argv_kvm_mask_arch_caps),
        cmocka_unit_test(test_refused_arch_caps),
        cmocka_unit_test(test_argv_net),
        cmocka_unit_test(test_argv_invalid),
        cmocka_unit_test(test_spawn_exec_failure),
        cmocka_unit_test(test_argv_qmp),
        cmocka_unit_test(test_argv_gdb),
        cmocka_unit_test(test_argv_panic_device),
        cmocka_unit_test(test_qmp_events),
        cmocka_unit_test(test_qmp_hostile),
        cmocka_unit_test(test_argv_shares),
        cmocka_unit_test(test_argv_debian_kind),
        cmocka_unit_test(test_argv_devbox_kind),
        cmocka_unit_test(test_argv_balloon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

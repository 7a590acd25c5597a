/* vm/vm-qemu.c: the QEMU command line and process.
 *
 * Measured on QEMU 7.2 (Debian 12), guest kernel 6.1 cloud:
 * - `-chardev socket,id=X,fd=N` accepts an already connected socketpair end (no server/path),
 *   so the supervisor keeps the agent and console channels private: nothing on the filesystem.
 * - `-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny` works
 *   with memory-backend-memfd,share=on and a vhost-user-fs device.
 * - Under TCG the guest kernel's TSC calibration against the PIT fails on a loaded host ("tsc:
 *   Unable to calibrate against PIT ... Marking TSC unstable") and the boot then hangs for good
 *   in most runs.  TCG's RDTSC returns the host TSC, so we pass the host's TSC frequency as
 *   tsc_early_khz= and the calibration is skipped (15/15 boots after, 0/6 before on a host
 *   with load 2).
 * - `-cpu max` under TCG (x86-64-v2+ userlands need SSE4.2/POPCNT, which qemu64 lacks).
 *   Under KVM, `-cpu host` (and max) abort on some nested hosts with "failed to set MSR 0x10a"
 *   (IA32_ARCH_CAPABILITIES; these machines, GitHub's runners in asterinas issue #2980), so
 *   the supervisor then boots again with that feature masked and records it
 *   (vm_accel_arch_caps_refused).  Masked only there: without the MSR the guest assumes the
 *   CPU is affected by the speculative bugs it would rule out and mitigates them.
 * - `-accel tcg,thread=multi` vs single: boot-to-poweroff within noise (2.0-2.8 s); multi lets
 *   a 2-vCPU guest use 2 host cores for real work.
 * - `-device pvpanic` (ISA, port 0x505) is accepted by `-M microvm`, and microvm's DSDT carries
 *   it (device PEVT, _HID QEMU0001: isa_build_aml), so the guest's pvpanic_mmio module binds
 *   (/sys/bus/platform/drivers/pvpanic-mmio/QEMU0001:00, events 3).  On a panic (sysrq 'c')
 *   QEMU then sends GUEST_PANICKED.  Its default action (panic=shutdown) also powers the VM off
 *   (SHUTDOWN reason guest-panic; QEMU exits 0), racing the supervisor's report with QEMU's exit;
 *   `-action panic=pause` instead sends GUEST_PANICKED {"action": "pause"} then STOP and leaves
 *   the VM stopped: no vCPU spins, QEMU waits for the supervisor to kill it.  The kernel's
 *   panic=-1 then never takes effect (the panic notifier runs before the reboot); it stays for
 *   a kernel without the driver (its reboot ends QEMU: -no-reboot).
 * Tried for an idle box's host memory and not taken (2026-12-05, TCG, 1 vCPU, busybox image,
 * idle after a boot and 20 `devbox exec true`: QEMU's PSS without guest RAM 76-77 MiB, of which
 * TCG's code cache 36-38, the binary's and libraries' pages 10-11, anonymous 14):
 * - Debian's /usr/bin/qemu-system-x86_64-microvm (10 libraries instead of 51, 7.7 MB instead
 *   of 18.4): KVM only, and it has neither vhost-user-fs-device nor -sandbox.
 * - MALLOC_ARENA_MAX=1 in QEMU's environment: anonymous 13.9 vs 14.0 MiB (3 runs each,
 *   interleaved); QEMU's threads do not hold arenas worth trimming.
 * - The code cache without transparent huge pages (PR_SET_THP_DISABLE, which QEMU inherits):
 *   34.6 vs 38.0 MiB; it holds that much translated code, not half-used huge pages. */
#include "vm-internal.h"

#include "../common/spawn.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

/* No hardware virtualization for the guest.  Its kernel is hostile (docs/SECURITY.md), and a
 * virtual CPU with VMX or SVM lets it run VMLAUNCH/VMRUN and reach the host's emulation of
 * nested virtualization: under KVM the host kernel's nVMX/nSVM code, a source of guest-to-host
 * escapes (CVE-2021-29657, CVE-2021-3653, CVE-2021-3656 in nSVM); under TCG QEMU's own SVM
 * emulation, which `-cpu max` offered (the guest's /proc/cpuinfo listed svm, npt and vgif).
 * Nothing in a box uses it: neither guest kernel gives the box a /dev/kvm.  KVM and TCG both
 * refuse EFER.SVME and CR4.VMXE to a guest whose CPUID lacks the feature, so the instructions
 * fault in the guest.  -vmx on an AMD host (and -svm on an Intel one) changes nothing; under
 * KVM, -vmx also drops the VMX capability MSRs that QEMU would otherwise set. */
#define CPU_NO_NESTED ",-vmx,-svm"
/* TCG: `max` derives its highest extended CPUID leaf from its features, and SVM was what raised
 * it to 0x8000000a (its leaf).  Without SVM, LA57 set it at 0x80000008, and Debian's 6.1 cloud
 * kernel (which runs 5-level page tables when LA57 is there) then refused its own addresses in
 * copy_from_kernel_nofault: d_path fills what it cannot copy with 'x', so readlink of
 * /proc/self/exe gave "xxxx", every mount point in /proc/self/mountinfo read as a run of 'x',
 * and the init's cgroup setup failed (2026-12-05, every boot; with -la57 as well it booted, as
 * did the devbox kernel, which has no 5-level paging).  So the leaves stay as they were,
 * 0x8000000a now reading all zeros (no SVM features).  Not under KVM: `host` takes the host's
 * own highest leaf, which a fixed value would lower. */
#define TCG_XLEVEL ",xlevel=0x8000000a"

#define AGENT_FD 3
#define CONSOLE_FD 4
#define NET_FD 5    /* network mode open: QEMU's end of the socket pair with passt */
#define QMP_FD 6    /* the supervisor's monitor (QMP); /dev/null sits at 5 without a network */
#define KERNEL_FD 7 /* vm_kernel_copy's memfd, when the kernel comes from one */
#define INITRD_FD 8 /* vm_initrd_copy's memfd, when the initramfs comes from one */

/* ---- host TSC --------------------------------------------------------------------------- */

static bool host_tsc_constant(void) {
    _cleanup_free_ char *info = NULL;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, "/proc/cpuinfo", 8u << 20, &info, NULL, &e) < 0) return false;
    char *flags = strstr(info, "\nflags");
    if (!flags) return false;
    char *end = strchr(flags + 1, '\n');
    if (end) *end = '\0';
    return strstr(flags, " constant_tsc") && strstr(flags, " nonstop_tsc");
}

#if defined(__x86_64__) || defined(__i386__)
/* One TSC reading bracketed by two monotonic reads; false when the bracket is wider than
 * 20 us (preempted between them). */
struct tsc_sample {
    uint64_t mono, tsc;
};

static bool tsc_sample(struct tsc_sample *ret) {
    uint64_t a = dbx_now_ns(), c = __rdtsc(), b = dbx_now_ns();
    if (b - a > 20000) return false;
    *ret = (struct tsc_sample){(a + b) / 2, c};
    return true;
}

static struct tsc_sample tsc_start;
static bool tsc_started;
#endif

void vm_tsc_calibration_start(void) {
#if defined(__x86_64__) || defined(__i386__)
    tsc_started = tsc_sample(&tsc_start);
#endif
}

unsigned vm_host_tsc_khz(void) {
#if defined(__x86_64__) || defined(__i386__)
    static unsigned cached;
    if (cached || !host_tsc_constant()) return cached;
    /* Two readings at least 20 ms apart: over 20 ms the brackets bound the error to 0.2 %.
     * The first may be vm_tsc_calibration_start's, taken while the boot got ready; only the
     * rest of the 20 ms is slept.  A preempted reading starts again. */
    for (int attempt = 0; attempt < 8; attempt++) {
        struct tsc_sample t0, t1;
        /* only a recent start reading (the boot's own preparation: tens of ms): one from a
         * [setup] run or an image pull is not used, since the host may have been suspended
         * meanwhile, when CLOCK_MONOTONIC stops and a nonstop TSC does not */
        if (attempt == 0 && tsc_started && dbx_now_ns() - tsc_start.mono < 1000000000ull)
            t0 = tsc_start;
        else if (!tsc_sample(&t0))
            continue;
        uint64_t since = dbx_now_ns() - t0.mono;
        if (since < 20 * 1000 * 1000) {
            struct timespec ts = {0, (long)(20 * 1000 * 1000 - since)};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
            }
        }
        if (!tsc_sample(&t1) || t1.tsc <= t0.tsc) continue;
        uint64_t khz = (t1.tsc - t0.tsc) * 1000000ull / (t1.mono - t0.mono);
        if (khz < 100000 || khz > 20000000) return 0; /* 100 MHz..20 GHz, else nonsense */
        cached = (unsigned)khz;
        return cached;
    }
#endif
    return 0;
}

/* ---- argv ------------------------------------------------------------------------------- */

/* A value inside a QEMU option list: ',' is the separator and ',,' a literal comma. */
static char *qopt(const char *s) {
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += *p == ',' ? 2 : 1;
    char *o = dbx_xmalloc(n + 1), *q = o;
    for (const char *p = s; *p; p++) {
        *q++ = *p;
        if (*p == ',') *q++ = ',';
    }
    *q = '\0';
    return o;
}

static char **push2(char **v, const char *a, const char *b) {
    v = dbx_strv_push(v, a);
    return dbx_strv_push(v, b);
}

static char **pushf(char **v, const char *opt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static char **pushf(char **v, const char *opt, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) dbx_oom_hook();
    va_end(ap);
    v = push2(v, opt, s);
    free(s);
    return v;
}

/* ---- the devbox kernel's machine (VM_KERNEL_DEVBOX) ------------------------------------ */

/* When a knob applies. */
enum knob_when {
    KNOB_ALWAYS,
    KNOB_CONSOLE,
    KNOB_NO_CONSOLE,
    KNOB_TSC,    /* the host's TSC frequency is known (TCG): append + khz * 1000 / per_s */
    KNOB_TCG,    /* TCG */
    KNOB_TCG_UP, /* TCG with a single vCPU */
};

struct knob {
    enum knob_when when;
    const char *machine; /* an option of -M microvm */
    const char *append;  /* a word of the kernel command line */
    unsigned per_s;      /* KNOB_TSC: the number appended is TSC ticks per 1/per_s second */
};

/* vm/devbox-kernel.config: CONFIG_HZ_250 */
#define DEVBOX_KERNEL_HZ 250

/* Every choice of the devbox kernel's machine and command line, with its measured effect.
 * Measured 2026-12-03 under TCG (QEMU 7.2, -smp 2, 2 GiB, a host of 2 cores at load 12-18, so
 * wall times are noisy: QEMU's own CPU time until then is given too), the vmlinux of
 * vm/devbox-kernel.config over linux-source-6.1 6.1.192, initramfs with devbox-init, root
 * qcow2, balloon and virtio-serial: "boot" is QEMU start to the init's first console line, 3
 * runs each, alternating.  All knobs: 4.1/4.9/5.6 s (CPU 1.45/1.53/1.59 s) before lpj=, 2.8/
 * 3.0/4.0 s with it.  Whole cold `devbox exec true` (same run, same host): 6.7-9.1 s (ready
 * after 5.1-7.3 s) against 19.5-20.6 s (16.6-18.4 s) with the Debian cloud kernel. */
static const struct knob devbox_knobs[] = {
    /* No ACPI tables: the kernel has no ACPI (CONFIG_ACPI=n), and QEMU's microvm then appends
     * one virtio_mmio.device=SIZE@ADDR:IRQ per virtio device to the command line itself
     * (auto-kernel-cmdline, checked in the guest's /proc/cmdline under QEMU 7.2); the MP
     * table describes the CPUs and the IOAPIC. */
    {KNOB_ALWAYS, "acpi=off", NULL, 0},
    /* Kept, measured: pit=off or pic=off under TCG ("Failed to register legacy timer
     * interrupt", then "APIC timer disabled due to verification failure": TCG's CPU has no
     * TSC-deadline timer, so the LAPIC timer is calibrated against the PIT through the PIC;
     * without either no timer interrupt ever fires and the boot hangs in the init's first
     * sleep).  rtc=off would leave the guest's wall clock at 1970 (the kernel reads the CMOS
     * clock at boot; nothing else sets it). */
    /* TCG's vCPUs are threads whose TSCs the kernel finds "unsynchronized", so it falls back
     * to the jiffies clocksource (4 ms resolution under HZ=250); they all read the host's TSC,
     * which is synchronized.  For the clock, not the boot: 4.1/5.5/6.1 s (CPU 1.39-1.65 s)
     * without it, within the noise. */
    {KNOB_ALWAYS, NULL, "tsc=reliable", 0},
    /* Without ACPI the kernel's restart tries the keyboard controller first (against a port
     * nobody answers), then other methods; a triple fault resets at once, and -no-reboot turns
     * the reset into QEMU's exit: how the init stops the VM (no ACPI power off) and how a
     * panic ends it.  Kernel panic to QEMU's exit: 0.02/0.14 s with it, 14.5/14.9 s without. */
    {KNOB_ALWAYS, NULL, "reboot=t", 0},
    /* TCG: the TSC frequency known, the kernel's own TSC calibration against the PIT is
     * skipped (it fails on a loaded host and the boot hangs: see the top of this file) */
    {KNOB_TSC, NULL, "tsc_early_khz=", 1000},
    /* TCG, one vCPU: no local APIC timer; the PIT is the clock event device.  TCG's CPU has
     * no TSC-deadline timer, so the kernel calibrates the LAPIC timer: 100 ms counting it
     * against the TSC, then 100 ms checking it against the PIT's ticks, wall-clock waits
     * however fast the host is (setup_boot_APIC_clock in 79-83 of 271-322 samples of the
     * guest's program counter, QEMU's monitor asked every 2 ms from start to the init).
     * Measured 2026-12-03: boot of the floor (same kernel, trivial init) to /init 0.67-0.69 s
     * with the LAPIC timer, 0.42-0.48 s without; cold `devbox exec true`, 12 runs each,
     * interleaved on a loaded host: median 1.32 s (min 1.14) with, 1.15 s (min 0.90) without.
     * Timers keep their precision (the PIT is one-shot under NO_HZ): 200 `sleep 0.01` 3.49 vs
     * 3.55 s, warm exec p50 12.8 vs 12.9 ms.  The price is an idle box's wakeups: the PIT's
     * 16-bit counter defers the next tick by 27 ms at most, so an idle guest takes ~43 timer
     * interrupts a second instead of ~10, and its QEMU 1.6-1.8 % of a host core instead of
     * 0.4-0.7 % (10 s idle, twice each) until idle_stop; 0.2 s off every start is worth it.
     * Not with more vCPUs: the others' timers then arrive as broadcast IPIs from the PIT's
     * CPU, and 2 vCPUs measured 3.95-4.20 s vs 3.50-3.67 s on the same loop and exec p50
     * 13.6-14.6 vs 12.1-13.4 ms, so a box with several pays the calibration at boot instead.
     * KVM offers the TSC-deadline timer, which needs no calibration. */
    {KNOB_TCG_UP, NULL, "noapictimer", 0},
    /* TCG, one vCPU: the LOCK prefixes stay.  With one CPU present the kernel rewrites every
     * LOCK prefix of its text to a no-op, one text_poke each, and every text_poke switches
     * to a temporary page table and back, a flush of TCG's whole TLB each time
     * (switch_mm_irqs_off and __text_poke in 39 of 55 samples of the 100 ms they fell in, as
     * above).  A single vCPU's TCG runs a LOCK'd instruction as a plain one anyway (atomics
     * are emitted only for more than one vCPU), so nothing is lost; KVM runs them on the
     * CPU, where the prefix costs.  Measured 2026-12-03, 8 cold starts each interleaved:
     * kernel to the init median 596 ms (min 510) with the rewrite, 503 ms (min 439)
     * without; warm exec p50 15.6/16.4 vs 14.9/11.4 ms and 200 `sleep 0.01` 3.71/3.68 vs
     * 3.83/3.49 s, within the noise. */
    {KNOB_TCG_UP, NULL, "noreplace-smp", 0},
    /* TCG: per-CPU memory in chunks of pages, not of 2 MiB huge-page units.  With 2 MiB units
     * every new percpu chunk allocates, zeroed, a 4 MiB array of object cgroup pointers (one
     * per 4 bytes of unit, for kmem accounting), and the box's first command leaf is what
     * needs the first new chunk: its mkdir took 15-30 ms (VmallocUsed 556 kB -> 4808 kB across
     * it), 1.8-1.9 ms with page chunks, and the first exec's time outside the guest's own
     * phases (waiting for that mkdir) went from 27 to 10 ms (2026-12-03, 2 cold starts each).
     * Warm exec p50 16.2/16.2 vs 16.1/14.9 ms, 200 `sleep 0.01` 3.87/3.78 vs 3.96/3.71 s:
     * within the noise, as TCG's TLB maps 4 KiB pages either way.  KVM keeps the huge pages,
     * where zeroing 4 MiB is quick and their TLB reach is real. */
    {KNOB_TCG, NULL, "percpu_alloc=page", 0},
    /* TCG, one vCPU: every synchronize_rcu() is an expedited grace period.  The kernel already
     * expedites them while it boots (until the init runs); after that a normal grace period
     * waits for ticks, and the init's mount of cgroup2 with favordynmods waits for one
     * (rcu_sync_enter): the guest's root step took 41-45 ms with normal grace periods and
     * 30-40 ms expedited.  With one CPU an expedited grace period interrupts no other.
     * Measured 2026-12-04, cold `devbox exec true` 12 runs each interleaved (bench/ab.py
     * --cold): p50 948 vs 896 ms, p90 994 vs 949 ms; warm exec p50 12.5 vs 12.1 ms (100
     * runs each, within the noise).  Not measured with more vCPUs, where each expedited grace
     * period interrupts the others, nor under KVM. */
    {KNOB_TCG_UP, NULL, "rcupdate.rcu_expedited=1", 0},
    /* The IO-APIC's check that the timer interrupt arrives (timer_irq_works: a few ticks of
     * waiting, 6 of 215 samples as above without the LAPIC timer, ~18 ms under TCG): QEMU's
     * microvm always routes it, as every KVM guest set up with no_timer_check relies on. */
    {KNOB_ALWAYS, NULL, "no_timer_check", 0},
    /* TCG: the delay loop's loops per jiffy from the TSC (the boot CPU derives it from
     * tsc_early_khz, but each secondary CPU calibrates its own: "calibrate_delay_direct()
     * failed", 0.2-1.9 s).  Boot to the init's first line, 3 runs alternating: 2.8/3.0/4.0 s
     * with it, 3.5/4.0/4.9 s without (QEMU CPU time 1.34-1.37 s vs 1.40-1.66 s). */
    {KNOB_TSC, NULL, "lpj=", DEVBOX_KERNEL_HZ},
    /* The console is virtio (hvc0 on the virtio-serial device that carries the agent port;
     * the kernel replays its log when hvc0 registers, so a panic still shows in console.log)
     * unless asked for (debugging: the ISA UART from the first instruction, every message).
     * Boot: ISA serial quiet 6.1/7.3/7.5 s (CPU 1.51-1.69 s), ISA serial verbose 5.1/6.2/6.2 s
     * (1.54-1.71 s), hvc0 with the UART still there 5.0/5.3/6.3 s (1.57-1.70 s), hvc0 without
     * 4.1/4.9/5.6 s (1.45-1.59 s): the UART's cost is within the noise, but nothing uses it. */
    {KNOB_NO_CONSOLE, "isa-serial=off", NULL, 0},
    {KNOB_NO_CONSOLE, NULL, "console=hvc0", 0},
    {KNOB_CONSOLE, NULL, "console=ttyS0", 0},
    /* the console is for debugging: every kernel message then */
    {KNOB_NO_CONSOLE, NULL, "quiet", 0},
    /* a panic reboots, and -no-reboot ends QEMU; the console line says why (no pvpanic
     * without ACPI) */
    {KNOB_ALWAYS, NULL, "panic=-1", 0},
    /* Tried and not taken, measured 2026-12-05 (TCG, 1 vCPU, busybox image, interleaved):
     * - mitigations=off.  Under TCG the guest's retpolines, RSB filling and swapgs lfences
     *   guard nothing (the host CPU runs QEMU's translation, whose indirect jumps are QEMU's
     *   own lookups), so they would be safe to drop; but warm exec p50 12.0 vs 11.2 and 15.0
     *   vs 14.2 ms (100 and 150 runs), 300 starts of /bin/true in one command 796 vs 841 ms
     *   (QEMU's CPU time 805 vs 851 ms, 16 runs): within the noise, so nothing to gain.
     * - the kernel built for size (CC_OPTIMIZE_FOR_SIZE in vm/devbox-kernel.config): text
     *   10.5 -> 7.7 MB, but TCG's code cache after a boot and 20 commands 36-38 MiB either way
     *   (the blocks are as many; their guest bytes matter little), and warm exec p50 13.3 ->
     *   15.1 ms (100 runs). */
};

static bool knob_applies(const struct knob *k, const struct vm_config *cfg, unsigned khz) {
    switch (k->when) {
    case KNOB_ALWAYS:
        return true;
    case KNOB_TSC:
        return khz != 0;
    case KNOB_TCG:
        return cfg->accel == VM_ACCEL_TCG;
    case KNOB_TCG_UP:
        return cfg->accel == VM_ACCEL_TCG && cfg->cpus == 1;
    default:
        return (k->when == KNOB_CONSOLE) == cfg->console;
    }
}

/* "-M" value and "-append" value for cfg (both malloc'd). */
static void machine_and_cmdline(const struct vm_config *cfg, char **ret_machine,
                                char **ret_append) {
    unsigned khz = cfg->accel == VM_ACCEL_TCG ? vm_host_tsc_khz() : 0;
    if (cfg->kernel_kind != VM_KERNEL_DEVBOX) {
        /* microvm describes its virtio-mmio devices to the Debian kernel through ACPI (its
         * 6.1 cloud build has no virtio_mmio.device= support); RAM is a shared memfd so
         * virtiofsd can map it. */
        *ret_machine = dbx_xstrdup("microvm,acpi=on,memory-backend=mem");
        *ret_append = khz ? dbx_xasprintf("console=ttyS0 quiet panic=-1 tsc_early_khz=%u", khz)
                          : dbx_xstrdup("console=ttyS0 quiet panic=-1");
        return;
    }
    _cleanup_free_ char *m = dbx_xstrdup("microvm"), *a = dbx_xstrdup("");
    for (size_t i = 0; i < DBX_ARRAY_SIZE(devbox_knobs); i++) {
        const struct knob *k = &devbox_knobs[i];
        if (!knob_applies(k, cfg, khz)) continue;
        char **dst = k->machine ? &m : &a;
        const char *sep = k->machine ? "," : (**dst ? " " : "");
        _cleanup_free_ char *num =
            k->when == KNOB_TSC ? dbx_xasprintf("%llu", (unsigned long long)khz * 1000 / k->per_s)
                                : dbx_xstrdup("");
        char *n = dbx_xasprintf("%s%s%s%s", *dst, sep, k->machine ? k->machine : k->append, num);
        free(*dst);
        *dst = n;
    }
    *ret_machine = dbx_xasprintf("%s,memory-backend=mem", m);
    *ret_append = TAKE_PTR(a);
}

char **vm_qemu_argv(const struct vm_config *cfg, dbx_error **err) {
    if (!cfg->kernel || !cfg->initramfs)
        return dbx_error_set(err, 0, "qemu: kernel and initramfs are required"), NULL;
    if (cfg->cpus < 1 || cfg->cpus > 255)
        return dbx_error_set(err, 0, "qemu: %u cpus (1-255)", cfg->cpus), NULL;
    if (cfg->mem_mib < 64 || cfg->mem_mib > (1u << 20))
        return dbx_error_set(err, 0, "qemu: %llu MiB of memory (64 MiB - 1 TiB)",
                             (unsigned long long)cfg->mem_mib),
               NULL;
    if ((cfg->vfs_socket == NULL) != (cfg->vfs_tag == NULL))
        return dbx_error_set(err, 0, "qemu: vfs_socket and vfs_tag go together"), NULL;
    if (cfg->nshares > VM_SHARES_MAX || (cfg->nshares && !cfg->shares))
        return dbx_error_set(err, 0, "qemu: %zu extra shares (at most %u)", cfg->nshares,
                             VM_SHARES_MAX),
               NULL;
    for (size_t i = 0; i < cfg->nshares; i++) {
        const struct vm_share *sh = &cfg->shares[i];
        bool dup = !sh->socket || !sh->tag || !sh->tag[0] ||
                   (cfg->vfs_tag && !strcmp(cfg->vfs_tag, sh->tag));
        for (size_t j = 0; j < i && !dup; j++)
            dup = !strcmp(cfg->shares[j].tag, sh->tag);
        if (dup)
            return dbx_error_set(err, 0, "qemu: share %zu: no socket or tag, or a tag used twice",
                                 i),
                   NULL;
    }
    if (cfg->accel != VM_ACCEL_KVM && cfg->accel != VM_ACCEL_TCG)
        return dbx_error_set(err, 0, "qemu: unknown accelerator %d", (int)cfg->accel), NULL;

    if (cfg->kernel_kind != VM_KERNEL_DEBIAN && cfg->kernel_kind != VM_KERNEL_DEVBOX)
        return dbx_error_set(err, 0, "qemu: unknown kernel kind %d", (int)cfg->kernel_kind), NULL;
    bool devbox = cfg->kernel_kind == VM_KERNEL_DEVBOX;
    _cleanup_free_ char *machine = NULL, *append = NULL;
    machine_and_cmdline(cfg, &machine, &append);

    char **v = dbx_strv_push(NULL, cfg->qemu ? cfg->qemu : "qemu-system-x86_64");
    v = push2(v, "-M", machine);
    if (cfg->accel == VM_ACCEL_KVM) {
        v = push2(v, "-accel", "kvm");
        /* IA32_ARCH_CAPABILITIES (KVM's value for this CPU, cut to the bits QEMU 7.2 names:
         * rdctl-no, ibrs-all, rsba, skip-l1dfl-vmentry, ssb-no, mds-no, pschange-mc-no,
         * tsx-ctrl, taa-no) tells the guest kernel what the CPU is immune to and what it has.
         * Without the MSR, Linux reads 0 (arch/x86/kernel/cpu/common.c) and a guest on an
         * Intel CPU outside its lists of immune models turns on page-table isolation (a CR3
         * switch on every kernel entry and exit) and buffer clearing on every return to user
         * mode, and it cannot see RSBA, which some of its own mitigations depend on.  With it,
         * the guest mitigates what this CPU has: on one with enhanced IBRS that means eIBRS
         * and, when the CPU has no BHI_DIS_S, the BHB clearing loop at each syscall instead of
         * retpolines.  Not measured here (no KVM on these machines).  Masked only for a host
         * KVM that refuses the MSR (QEMU aborts at start, before the guest runs). */
        v = push2(v, "-cpu",
                  cfg->kvm_mask_arch_caps ? "host,-arch-capabilities" CPU_NO_NESTED
                                          : "host" CPU_NO_NESTED);
    } else {
        /* TCG's translation cache: QEMU 7.2 reserves 1 GiB by default and backs it with
         * transparent huge pages, and nothing in it is ever given back, so an idle box holds all
         * the code it ever translated: 38 MiB after boot, 130 after a few Python runs, up to
         * the whole GiB.  tb-size caps it; when full, the cache is flushed and refilled.
         * Measured 2026-12-03 under TCG on a 2-core host.  Idle PSS of the box's host processes
         * without guest RAM (1 vCPU, 1536M, network open, devbox kernel, busybox image): after
         * boot + 20 `devbox exec true` 92-94 MiB uncapped and with 64 or more (the boot's 38
         * fit), 85-86 with 32; after 300 busybox loops and 3 Python runs 201-203 uncapped,
         * 85-86 with 32.  Cost on a compiler: cJSON's `make clean && make -j2` in a 2-vCPU box
         * (gcc from Debian), alternating runs: uncapped 77 and 95 s, 256: 82 and 75 s, 64: 90
         * and 92 s, 32: 143 s (and 106-108 s in an earlier pair): gcc's hot code does not fit
         * 32 MiB and thrashes (16 thrashes even on busybox: exec p50 41-45 ms).  256 costs the
         * compiler nothing measurable and bounds what a box keeps at a quarter of the default. */
        v = push2(v, "-accel", "tcg,thread=multi,tb-size=256");
        /* Without ERMS and FSRM the guest's kernel copies and clears memory with rep
         * stosq/movsq or plain loops instead of rep stosb/movsb: TCG runs each iteration of a
         * rep prefix on its own, so a byte at a time costs 8 times the iterations.  Measured
         * 2026-12-03 in a box, twice each, alternating: /dev/zero to /dev/null 2 GB 4.1-5.1 s
         * with them, 0.74-0.84 s without; 400 MB written to tmpfs 6.2-7.7 vs 4.1-4.8 s;
         * cold start, median of 6 interleaved, 995 vs 932 ms; md5sum of 100 MB 12.5-13.0 vs
         * 11.2-12.6 s and warm exec p50 14.1/16.3 vs 14.5/15.9 ms, unchanged. */
        v = push2(v, "-cpu", "max,-erms,-fsrm" CPU_NO_NESTED TCG_XLEVEL);
    }
    v = pushf(v, "-smp", "%u", cfg->cpus);
    v = pushf(v, "-m", "%lluM", (unsigned long long)cfg->mem_mib);
    v = pushf(v, "-object", "memory-backend-memfd,id=mem,size=%lluM,share=on",
              (unsigned long long)cfg->mem_mib);
    /* vhost-user devices need modern (virtio 1.0) transport. */
    v = push2(v, "-global", "virtio-mmio.force-legacy=false");
    v = dbx_strv_push(v, "-nodefaults");
    v = dbx_strv_push(v, "-no-user-config");
    v = dbx_strv_push(v, "-nographic");
    v = dbx_strv_push(v, "-no-reboot");
    v = push2(v, "-sandbox",
              "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    if (cfg->kernel_fd > 0)
        v = pushf(v, "-kernel", "/proc/self/fd/%d", KERNEL_FD);
    else
        v = push2(v, "-kernel", cfg->kernel);
    if (cfg->initramfs_fd > 0)
        v = pushf(v, "-initrd", "/proc/self/fd/%d", INITRD_FD);
    else
        v = push2(v, "-initrd", cfg->initramfs);
    v = push2(v, "-append", append);
    if (cfg->disk) {
        /* writeback + honoured guest flushes (virtio-blk advertises a write cache). */
        _cleanup_free_ char *d = qopt(cfg->disk);
        v = pushf(v, "-drive", "file=%s,if=none,id=root,format=qcow2,cache=writeback,discard=unmap",
                  d);
        v = push2(v, "-device", "virtio-blk-device,drive=root");
    }
    /* event_idx=off: the guest kicks virtiofsd for every request.  With VIRTIO_RING_F_EVENT_IDX,
     * QEMU 7.2's virtiofsd (fv_queue_thread) pops requests until the ring looks empty, then
     * waits for a kick; libvhost-user's vu_queue_pop writes avail_event and, with no barrier
     * between, the next pop reads the ring's index (the smp_mb is only in
     * vu_queue_set_notification, which virtiofsd never calls).  On x86 that read can pass the
     * write, and the guest, adding a request just then, can read the old avail_event and skip
     * the kick: the store-buffer race cloud-hypervisor fixed in its own queue (PR #2179, a
     * virtio-net hang under iperf).  Then no later request is kicked either (avail_event stays
     * behind), and the workspace hangs for good, the box otherwise up: CI once, `git status` in
     * t-share-nofile waiting 394 s, nothing in any log.  Without EVENT_IDX the guest goes by
     * VRING_USED_F_NO_NOTIFY, which virtiofsd never sets: every request is kicked. */
    if (cfg->vfs_socket) {
        _cleanup_free_ char *s = qopt(cfg->vfs_socket), *t = qopt(cfg->vfs_tag);
        v = pushf(v, "-chardev", "socket,id=vfs,path=%s", s);
        v = pushf(v, "-device", "vhost-user-fs-device,event_idx=off,chardev=vfs,tag=%s", t);
    }
    for (size_t i = 0; i < cfg->nshares; i++) {
        _cleanup_free_ char *s = qopt(cfg->shares[i].socket), *t = qopt(cfg->shares[i].tag);
        v = pushf(v, "-chardev", "socket,id=vfs%zu,path=%s", i, s);
        v = pushf(v, "-device", "vhost-user-fs-device,event_idx=off,chardev=vfs%zu,tag=%s", i, t);
    }
    if (cfg->net_fd > 0) {
        /* QEMU 7.2's stream netdev speaks passt's protocol (4-byte length + frame) natively;
         * over a socket pair nothing else can connect to either end. */
        v = pushf(v, "-netdev", "stream,id=net0,server=off,addr.type=fd,addr.str=%d", NET_FD);
        v = push2(v, "-device", "virtio-net-device,netdev=net0,mac=" VM_GUEST_MAC);
    }
    if (cfg->balloon)
        /* Pages the guest frees are reported (2 MiB blocks, a few seconds after) and QEMU
         * punches them out of the memfd; the balloon itself gives way before the guest OOMs. */
        v = push2(v, "-device", "virtio-balloon-device,free-page-reporting=on,deflate-on-oom=on");
    /* Two ports: the console (port 0, hvc0) and the agent.  QEMU's default of 31 gives the
     * guest 64 virtqueues to set up: virtio_console_init 27-28 ms under TCG with 31, 14-17 ms
     * with 2 (initcall_debug, 2 boots each, 2026-12-03). */
    v = push2(v, "-device", "virtio-serial-device,max_ports=2");
    v = pushf(v, "-chardev", "socket,id=agent,fd=%d", AGENT_FD);
    v = push2(v, "-device", "virtserialport,chardev=agent,name=" DBX_AGENT_PORT_NAME);
    v = pushf(v, "-chardev", "socket,id=con,fd=%d", CONSOLE_FD);
    if (devbox && !cfg->console)
        v = push2(v, "-device", "virtconsole,chardev=con"); /* hvc0 */
    else
        v = push2(v, "-serial", "chardev:con");
    /* Debugging only: the gdbstub stops and reads the guest (a profile of where its time goes
     * samples the vCPU's program counter and current task).  A path in the project's run
     * directory (0700): only the user reaches it, never the guest. */
    if (cfg->gdb_socket) {
        _cleanup_free_ char *g = qopt(cfg->gdb_socket);
        v = pushf(v, "-chardev", "socket,id=gdb,path=%s,server=on,wait=off", g);
        v = push2(v, "-gdb", "chardev:gdb");
    }
    if (cfg->qmp_fd > 0) {
        /* A monitor over a socket pair: nothing on the filesystem, nothing else can reach it. */
        v = pushf(v, "-chardev", "socket,id=qmp,fd=%d", QMP_FD);
        v = push2(v, "-mon", "chardev=qmp,mode=control");
        /* The guest kernel reports its panic through the panic device; the VM is paused, not
         * powered off, so the monitor's GUEST_PANICKED reaches the supervisor before anything
         * ends QEMU (measured above).  Without a monitor nobody would hear it. */
        if (!devbox) /* described only by ACPI, which the devbox kernel has not */
            v = push2(v, "-device", "pvpanic");
        v = push2(v, "-action", "panic=pause");
    }
    return v;
}

/* QEMU 7.2 (target/i386/kvm/kvm.c, kvm_buf_set_msrs) prints this, then fails an assertion and
 * aborts, when KVM_SET_MSRS stops at IA32_ARCH_CAPABILITIES; the value after "to" varies. */
bool vm_qemu_refused_arch_caps(const char *log, size_t len) {
    static const char m[] = "error: failed to set MSR 0x10a to ";
    return log && memmem(log, len, m, sizeof(m) - 1) != NULL;
}

/* ---- spawn ------------------------------------------------------------------------------ */

pid_t vm_qemu_spawn(const struct vm_config *cfg, int log_fd, dbx_error **err) {
    if (cfg->agent_fd < 0 || cfg->console_fd < 0)
        return dbx_error_set(err, 0, "qemu: agent and console fds are required");
    _cleanup_strv_ char **argv = vm_qemu_argv(cfg, err);
    if (!argv) return -1;
    static char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    int log = log_fd >= 0 ? log_fd : DBX_SPAWN_DEVNULL;
    struct dbx_spawn_fd fds[9] = {{0, DBX_SPAWN_DEVNULL},
                                  {1, log},
                                  {2, log},
                                  {AGENT_FD, cfg->agent_fd},
                                  {CONSOLE_FD, cfg->console_fd}};
    size_t nfds = 5;
    /* /dev/null holds NET_FD's place when only the monitor is there */
    if (cfg->net_fd > 0 || cfg->qmp_fd > 0)
        fds[nfds++] =
            (struct dbx_spawn_fd){NET_FD, cfg->net_fd > 0 ? cfg->net_fd : DBX_SPAWN_DEVNULL};
    if (cfg->qmp_fd > 0) fds[nfds++] = (struct dbx_spawn_fd){QMP_FD, cfg->qmp_fd};
    if (cfg->kernel_fd > 0) fds[nfds++] = (struct dbx_spawn_fd){KERNEL_FD, cfg->kernel_fd};
    if (cfg->initramfs_fd > 0) fds[nfds++] = (struct dbx_spawn_fd){INITRD_FD, cfg->initramfs_fd};
    /* QEMU is what a guest escape owns: as root it gets no capability at all (none to use, none
     * to regain on exec; it still runs as uid 0, which owns the files it opens). */
    const struct dbx_spawn s = {.argv = argv,
                                .envp = env,
                                .search_path = true,
                                .new_pgrp = true,
                                .pdeathsig = SIGKILL,
                                .drop_caps = true,
                                .fds = fds,
                                .nfds = nfds};
    pid_t pid = -1;
    if (dbx_spawn(&s, &pid, err) < 0) return -1;
    return pid;
}

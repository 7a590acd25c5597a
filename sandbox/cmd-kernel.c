/* sandbox/cmd-kernel.c: `devbox kernel build` and `devbox kernel status [--json]`: the devbox
 * guest kernel, built once per machine (vm/vm-devkernel.c), and the background build the
 * supervisor starts (`devbox __kernel-autobuild`). */
#define _GNU_SOURCE
#include "commands.h"

#include "../vm/vm.h"

#include <jansson.h>
#include <sys/resource.h>
#include <sys/syscall.h>

struct progress {
    uint64_t t0_ms;
    bool tty;
    unsigned last_step;
    uint64_t last_line_ms; /* not a terminal: when the last line was printed */
    bool open_line;        /* a \r-updated line is on the terminal */
};

static char *elapsed(uint64_t ms) {
    uint64_t s = ms / 1000;
    return s >= 60 ? dbx_xasprintf("%llum%02llus", (unsigned long long)(s / 60),
                                   (unsigned long long)(s % 60))
                   : dbx_xasprintf("%llus", (unsigned long long)s);
}

/* On a terminal one line, rewritten; otherwise a line per step and one a minute (the compile
 * takes many: logs stay short but show it is alive). */
static void on_progress(void *ctx, unsigned step, unsigned nsteps, const char *name,
                        unsigned files) {
    struct progress *p = ctx;
    _cleanup_free_ char *t = elapsed(dbx_now_ms() - p->t0_ms);
    _cleanup_free_ char *what =
        files ? dbx_xasprintf("%s: %u files compiled", name, files) : dbx_xstrdup(name);
    if (p->tty) {
        fprintf(stderr, "\r\033[Kdevbox: kernel [%u/%u] %s (%s)", step, nsteps, what, t);
        p->open_line = true;
    } else if (step != p->last_step || dbx_now_ms() - p->last_line_ms >= 60000) {
        fprintf(stderr, "devbox: kernel [%u/%u] %s (%s)\n", step, nsteps, what, t);
        p->last_line_ms = dbx_now_ms();
    }
    p->last_step = step;
    fflush(stderr);
}

static void print_ready(const char *verb, const struct vm_devkernel_status *st) {
    _cleanup_free_ char *size = dbx_size_human(st->size, false);
    _cleanup_free_ char *path = dbx_escape(st->vmlinux);
    if (st->override) {
        printf("%s: %s (DEVBOX_KERNEL_VMLINUX, %s)\n", verb, path, size);
        return;
    }
    _cleanup_free_ char *t = st->build_seconds ? elapsed(st->build_seconds * 1000) : NULL;
    printf("%s: %s (%s, %s%s%s)\n", verb, path, st->key, size, t ? ", built in " : "", t ? t : "");
}

static int kernel_build(int argc, char **argv) {
    struct vm_devkernel_build_opts o = {.wait = true};
    for (int i = 2; i < argc; i++) {
        uint64_t n;
        if ((!strcmp(argv[i], "--jobs") || !strcmp(argv[i], "-j")) && i + 1 < argc) {
            if (dbx_parse_u64(argv[++i], 1, 256, &n) < 0) {
                _cleanup_free_ char *a = dbx_escape(argv[i]);
                fprintf(stderr, "devbox: kernel build: --jobs takes 1 to 256, not '%s'\n", a);
                return 125;
            }
            o.jobs = (unsigned)n;
            continue;
        }
        _cleanup_free_ char *a = dbx_escape(argv[i]);
        fprintf(stderr, "devbox: kernel build: unknown argument '%s'\n", a);
        return 125;
    }
    struct progress p = {.t0_ms = dbx_now_ms(), .tty = isatty(2), .last_step = ~0u};
    o.progress = on_progress;
    o.ctx = &p;
    struct vm_devkernel_status st = {0};
    _cleanup_error_ dbx_error *err = NULL;
    int r = vm_devkernel_build(&o, &st, &err);
    if (p.open_line) fprintf(stderr, "\n");
    if (r < 0) { /* several lines: the failed step, then the log's last (sanitized) lines */
        fprintf(stderr, "devbox: %s\n", err->msg);
        return 125;
    }
    if (st.state != VM_DEVKERNEL_READY) { /* cannot happen with wait; say so rather than lie */
        fprintf(stderr, "devbox: kernel build: the kernel is %s after the build\n",
                vm_devkernel_state_name(st.state));
        vm_devkernel_status_clear(&st);
        return 125;
    }
    print_ready(r == 1 ? "built the devbox kernel" : "the devbox kernel is built already", &st);
    vm_devkernel_status_clear(&st);
    return 0;
}

static void print_field(const char *key, const char *v) {
    _cleanup_free_ char *s = dbx_escape(v);
    printf("%-11s %s\n", key, s);
}

static int kernel_status(int argc, char **argv) {
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
            continue;
        }
        _cleanup_free_ char *a = dbx_escape(argv[i]);
        fprintf(stderr, "devbox: kernel status: unknown argument '%s'\n", a);
        return 125;
    }
    struct vm_devkernel_status st = {0};
    _cleanup_error_ dbx_error *err = NULL;
    if (vm_devkernel_status(&st, &err) < 0) return cmd_fail(&err);
    if (json) {
        json_t *o =
            json_pack("{s:s, s:s?, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:b, s:b, s:s?}", "state",
                      vm_devkernel_state_name(st.state), "path", st.vmlinux, "version", st.version,
                      "key", st.key, "size", (json_int_t)st.size, "build_seconds",
                      (json_int_t)st.build_seconds, "built", (json_int_t)st.built, "cache",
                      st.cache, "fragment", st.fragment, "source_installed", st.source_installed,
                      "override", st.override, "failed_log", st.failed_log);
        if (!o) dbx_oom_hook();
        char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(o);
        if (!s) dbx_oom_hook();
        printf("%s\n", s);
        free(s);
        vm_devkernel_status_clear(&st);
        return 0;
    }
    print_field("state", vm_devkernel_state_name(st.state));
    if (st.vmlinux) print_field("path", st.vmlinux);
    if (st.override) print_field("source", "DEVBOX_KERNEL_VMLINUX");
    if (!st.override) {
        print_field("version",
                    st.source_installed ? st.version : "(linux-source-6.1 not installed)");
        print_field("key", st.key);
    }
    if (st.state == VM_DEVKERNEL_READY) {
        _cleanup_free_ char *size = dbx_size_human(st.size, false);
        print_field("size", size);
        if (st.build_seconds) {
            _cleanup_free_ char *t = elapsed(st.build_seconds * 1000);
            print_field("build_time", t);
        }
    }
    if (!st.override) {
        print_field("cache", st.cache);
        print_field("fragment", st.fragment);
    }
    if (st.failed_log) print_field("failed_log", st.failed_log);
    if (st.state == VM_DEVKERNEL_ABSENT || st.state == VM_DEVKERNEL_FAILED)
        printf("(boxes use the Debian kernel until 'devbox kernel build' has run)\n");
    vm_devkernel_status_clear(&st);
    return 0;
}

int cmd_kernel(struct cmd_ctx *ctx, int argc, char **argv) {
    (void)ctx;
    if (argc >= 2 && !strcmp(argv[1], "build")) return kernel_build(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "status")) return kernel_status(argc, argv);
    if (argc < 2 || !cmd_unknown_sub("kernel", argv[1]))
        fprintf(stderr, "usage: devbox kernel build [--jobs N] | devbox kernel status [--json]\n");
    return 125;
}

/* The supervisor's background build: lowest CPU and I/O priority (it must not slow the boxes
 * it serves), nobody waits for it, a busy lock or an earlier failure of the same key ends it
 * at once (the log of that failure stays for `devbox kernel status`). */
int cmd_kernel_autobuild(void) {
    (void)setpriority(PRIO_PROCESS, 0, 19);
    /* ioprio_set(IOPRIO_WHO_PROCESS, self, IOPRIO_CLASS_IDLE << 13): no glibc wrapper */
    (void)syscall(SYS_ioprio_set, 1, 0, 3 << 13);
    struct vm_devkernel_build_opts o = {.wait = false, .skip_failed = true};
    _cleanup_error_ dbx_error *err = NULL;
    int r = vm_devkernel_build(&o, NULL, &err);
    if (r < 0) {
        fprintf(stderr, "devbox: kernel autobuild: %s\n", err->msg);
        return 125;
    }
    return 0;
}

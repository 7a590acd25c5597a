/* tests/unit/test-guest-audit.c: which failed syscalls the guest counts as write attempts on
 * protected paths (guest/init-audit.c), from the audit records the kernel would send: a write
 * at or below a protected path and a rename of one of its parents count; a removal of a
 * directory counts at or below one, and above one only when that one was missing at SETUP (the
 * host pins the parent of a missing path, which may be empty).  Found in use: git stash's
 * rmdir(".git") counted, every time. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* init-audit.c is guest code (the static init links it); the test compiles it in. */
#include "guest/init-audit.c"

void agent_send(struct agent *a, uint8_t type, uint32_t sid, const void *p, size_t n) {
    (void)a, (void)type, (void)sid, (void)p, (void)n;
}

static char *protected[] = {".git/config", ".git/hooks", ".vscode/tasks.json"};
static bool missing[] = {false, false, true};

static void agent_init(struct agent *a, bool *miss) {
    *a = (struct agent){0};
    a->ws_path = "/ws";
    a->box.plan.protected = protected;
    a->box.plan.nprotected = DBX_ARRAY_SIZE(protected);
    a->box.prot_missing = miss;
}

/* One failed syscall's records, as the kernel logs them: SYSCALL, CWD, PATH..., EOE. */
static void syscall_records(struct agent *a, const char *arch, int nr, const char *a0,
                            const char *a2, const char *name0, const char *name1) {
    static unsigned serial = 100;
    serial++;
    char t[512];
    snprintf(t, sizeof(t),
             "audit(1796500000.123:%u): arch=%s syscall=%d success=no exit=-16 a0=%s a1=0 "
             "a2=%s a3=0 items=2 ppid=1 pid=4242 auid=4294967295 uid=1000 comm=\"git\"",
             serial, arch, nr, a0, a2);
    on_record(a, AUDIT_SYSCALL, t);
    snprintf(t, sizeof(t), "audit(1796500000.123:%u): cwd=\"/ws\"", serial);
    on_record(a, AUDIT_CWD, t);
    snprintf(t, sizeof(t), "audit(1796500000.123:%u): item=0 name=\"%s\" inode=2", serial, name0);
    on_record(a, AUDIT_PATH, t);
    if (name1) {
        snprintf(t, sizeof(t), "audit(1796500000.123:%u): item=1 name=\"%s\" inode=3", serial,
                 name1);
        on_record(a, AUDIT_PATH, t);
    }
    snprintf(t, sizeof(t), "audit(1796500000.123:%u): ", serial);
    on_record(a, AUDIT_EOE, t);
}

#define X64 "c000003e"
#define I386 "40000003"
#define FDCWD "ffffff9c"

static void test_rmdir(void **state) {
    struct agent a;
    agent_init(&a, missing);
    /* git stash: rmdir(".git"), with the cwd's PATH record first; unlinkat's form; i386's */
    syscall_records(&a, X64, SYS_rmdir, "7ffd0000", "0", "/ws", ".git");
    syscall_records(&a, X64, SYS_unlinkat, FDCWD, "200", "/ws", ".git");
    syscall_records(&a, I386, 40, "ffd00000", "0", "/ws", ".git");
    syscall_records(&a, I386, 301, FDCWD, "200", "/ws", ".git");
    assert_int_equal(a.prot_count, 0);
    assert_null(a.prot_first);
    /* at or below a protected path: counted */
    syscall_records(&a, X64, SYS_rmdir, "7ffd0000", "0", "/ws/.git/", ".git/hooks");
    assert_int_equal(a.prot_count, 1);
    assert_string_equal(a.prot_first, ".git/hooks");
    syscall_records(&a, X64, SYS_unlinkat, FDCWD, "200", "/ws/.git/hooks/", ".git/hooks/d");
    assert_int_equal(a.prot_count, 2);
    /* above a path missing at SETUP: its parent may be empty, pinned by the host */
    syscall_records(&a, X64, SYS_rmdir, "7ffd0000", "0", "/ws", ".vscode");
    assert_int_equal(a.prot_count, 3);
    syscall_records(&a, I386, 40, "ffd00000", "0", "/ws", ".vscode");
    assert_int_equal(a.prot_count, 4);
    free(a.prot_first);
    event_clear(&a.audit_ev);
}

static void test_other_calls(void **state) {
    struct agent a;
    agent_init(&a, missing);
    /* a rename of a parent, an unlinkat without AT_REMOVEDIR, an open for writing below */
    syscall_records(&a, X64, SYS_rename, "7ffd0000", "0", ".git", ".git.old");
    assert_int_equal(a.prot_count, 1);
    assert_string_equal(a.prot_first, ".git");
    syscall_records(&a, X64, SYS_unlinkat, FDCWD, "0", "/ws", ".git");
    assert_int_equal(a.prot_count, 2);
    syscall_records(&a, X64, SYS_openat, FDCWD, "241", ".git/config", NULL);
    assert_int_equal(a.prot_count, 3);
    /* outside the workspace, or beside the protected paths: nothing */
    syscall_records(&a, X64, SYS_rmdir, "7ffd0000", "0", "/tmp", "/tmp/x");
    syscall_records(&a, X64, SYS_openat, FDCWD, "0", ".git/HEAD", NULL);
    assert_int_equal(a.prot_count, 3);
    free(a.prot_first);
    event_clear(&a.audit_ev);
}

static void test_missing_unknown(void **state) {
    /* no record of which paths were missing (no workspace at SETUP): each may be */
    struct agent a;
    agent_init(&a, NULL);
    syscall_records(&a, X64, SYS_rmdir, "7ffd0000", "0", "/ws", ".git");
    assert_int_equal(a.prot_count, 1);
    free(a.prot_first);
    event_clear(&a.audit_ev);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmdir),
        cmocka_unit_test(test_other_calls),
        cmocka_unit_test(test_missing_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

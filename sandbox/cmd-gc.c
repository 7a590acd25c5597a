/* sandbox/cmd-gc.c: `devbox gc [--dry-run]`: remove what no one can use any more, and say how
 * much space came back. */
#define _GNU_SOURCE
#include "commands.h"

static const char *plural(size_t n) {
    return n == 1 ? "" : "s";
}

int cmd_gc(struct cmd_ctx *ctx, int argc, char **argv) {
    bool dry_run = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dry-run") || !strcmp(argv[i], "-n")) {
            dry_run = true;
            continue;
        }
        _cleanup_free_ char *a = dbx_escape(argv[i]);
        fprintf(stderr, "devbox: gc: unknown argument '%s'\n", a);
        return 125;
    }
    _cleanup_error_ dbx_error *err = NULL;
    struct dbx_gc_report r = {0};
    if (dbx_gc(&ctx->paths, dry_run, &r, &err) < 0) return cmd_fail(&err);
    const char *verb = dry_run ? "would remove" : "removed";
    for (char **p = r.projects; *p; p++) {
        _cleanup_free_ char *e = dbx_escape(*p);
        printf("%s project %s (its repository is gone)\n", verb, e);
    }
    for (char **k = r.kept; k && *k; k++) {
        _cleanup_free_ char *e = dbx_escape(*k);
        printf("kept project %s: its folder is gone but the folder above it is empty, missing or "
               "another filesystem (a disk not mounted?); 'devbox rm %s' removes it\n",
               e, e);
    }
    for (size_t i = 0; r.running && r.running[i]; i++) {
        _cleanup_free_ char *e = dbx_escape(r.running[i]);
        printf("kept project %s: its repository is gone but its box is running; 'devbox stop %s' "
               "stops it, and a later gc can remove it\n",
               e, r.running_ids[i]);
    }
    for (char **d = r.derived; *d; d++) {
        _cleanup_free_ char *e = dbx_escape(*d);
        printf("%s derived disk %s\n", verb, e);
    }
    size_t np = dbx_strv_len(r.projects), nd = dbx_strv_len(r.derived);
    _cleanup_free_ char *size = dbx_size_human(r.freed, false);
    /* one summary line, always: "removed 3 projects, 2 derived disks, 1 leftover: 1.2G freed" */
    printf("%s %zu project%s, %zu derived disk%s, %zu leftover%s: %s %s%s\n", verb, np, plural(np),
           nd, plural(nd), r.leftovers, plural(r.leftovers), size,
           dry_run ? "would be freed" : "freed",
           r.images_counted ? "" : " (unused base disks and image blobs not counted)");
    dbx_gc_report_clear(&r);
    return 0;
}

/* sandbox/supervisor-trim.c: the supervisor lets go of the library pages it used only to start
 * the box (issue 12: a box nobody uses costs the host almost nothing).
 *
 * The supervisor is the full devbox for the box's life: preparing the box (image, derived disk,
 * kernel, policy, the project's git) ran libcrypto, libgit2, libarchive, libcurl and their
 * dependencies, and every page of their code it touched stays mapped, most of them by no other
 * process: 12 MiB of PSS, of which the relay and the event loop need a few hundred KiB
 * (2026-12-04).  A while after the boot the supervisor unmaps the pages of its read-only file
 * mappings (MADV_DONTNEED).  They stay in the page cache, unmapped, which the kernel reclaims
 * first; what the supervisor runs later maps them again with a minor fault (a read from disk if
 * the host reclaimed them meanwhile).  Only mappings without a private copy of any page
 * (Anonymous 0 kB) qualify: MADV_DONTNEED on a private page would revert it to the file's
 * contents, and relocated read-only data (RELRO) is exactly such a page. */
#define _GNU_SOURCE
#include "supervisor-internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/mman.h>

#define SMAPS_MAX (16u << 20) /* /proc/self/smaps: ~100 KiB for the supervisor */

struct trim_map {
    uintptr_t start, end;
    bool candidate; /* file-backed and not writable */
    uint64_t rss_kb, anon_kb;
    bool have_anon;
};

/* Unmap m's pages if it qualifies; the kB it held. */
static uint64_t trim_one(const struct trim_map *m) {
    if (!m->candidate || !m->have_anon || m->anon_kb != 0 || m->rss_kb == 0) return 0;
    return madvise((void *)m->start, m->end - m->start, MADV_DONTNEED) == 0 ? m->rss_kb : 0;
}

/* A mapping's header line: "START-END PERMS OFFSET DEV INODE [PATH]". */
static bool parse_header(const char *l, struct trim_map *m) {
    char perms[8] = "";
    unsigned long long start, end, ino;
    int path = 0;
    if (sscanf(l, "%llx-%llx %7s %*x %*s %llu %n", &start, &end, perms, &ino, &path) < 4)
        return false;
    *m = (struct trim_map){.start = (uintptr_t)start, .end = (uintptr_t)end};
    /* a file (an inode and an absolute path), readable, never writable */
    m->candidate = ino != 0 && path > 0 && l[path] == '/' && perms[0] == 'r' && perms[1] != 'w';
    return end > start;
}

uint64_t sup_trim_file_pages(void) {
    _cleanup_free_ char *text = NULL;
    if (dbx_read_file_at(AT_FDCWD, "/proc/self/smaps", SMAPS_MAX, &text, NULL, NULL) < 0) return 0;
    uint64_t total = 0;
    struct trim_map m = {0};
    bool have = false;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        unsigned long long v;
        struct trim_map next;
        if (sscanf(l, "Rss: %llu kB", &v) == 1) {
            m.rss_kb = v;
        } else if (sscanf(l, "Anonymous: %llu kB", &v) == 1) {
            m.anon_kb = v;
            m.have_anon = true;
        } else if (isxdigit((unsigned char)l[0]) && !isupper((unsigned char)l[0]) &&
                   parse_header(l, &next)) { /* field names start upper-case, addresses not */
            if (have) total += trim_one(&m);
            m = next;
            have = true;
        }
    }
    if (have) total += trim_one(&m);
    return total;
}

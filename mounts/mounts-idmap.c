/* mounts/mounts-idmap.c: which ids virtiofsd runs with: /etc/subuid, /etc/subgid and the
 * newuidmap/newgidmap calls that install the mapping described in mounts.h. */
#define _GNU_SOURCE
#include "mounts-internal.h"

#include "../common/spawn.h"

#include <pwd.h>
#include <sys/wait.h>

#define SUBUID_PATH "/etc/subuid"
#define SUBGID_PATH "/etc/subgid"
#define ID_INVALID UINT32_MAX /* (uid_t)-1 */

/* Parse one `owner:start:count` line (not NUL-terminated, no '\n').  0 when it is usable for
 * name/id, -ENOENT otherwise. */
static int subid_line(const char *line, size_t len, const char *name, uint32_t id,
                      uint32_t *ret_start, uint32_t *ret_count) {
    char buf[MOUNTS_SUBID_LINE_MAX + 1];
    if (len == 0 || len > MOUNTS_SUBID_LINE_MAX || memchr(line, '\0', len)) return -ENOENT;
    memcpy(buf, line, len);
    buf[len] = '\0';

    char *f[3], *save = NULL, *p = buf;
    size_t n = 0;
    /* strtok_r would merge empty fields ("a::1"); split by hand so "a::1" is malformed. */
    for (; n < 3; n++) {
        f[n] = p;
        save = strchr(p, ':');
        if (!save) {
            n++;
            break;
        }
        *save = '\0';
        p = save + 1;
    }
    if (n != 3 || save) return -ENOENT; /* fewer or more than three fields */

    bool match = name && strcmp(f[0], name) == 0;
    uint64_t owner, start, count;
    if (!match && dbx_parse_u64(f[0], 0, ID_INVALID - 1, &owner) == 0) match = owner == id;
    if (!match) return -ENOENT;
    if (dbx_parse_u64(f[1], 0, ID_INVALID - 1, &start) < 0) return -ENOENT;
    if (dbx_parse_u64(f[2], 1, ID_INVALID, &count) < 0) return -ENOENT;
    if (start + count > ID_INVALID) return -ENOENT;        /* would reach or pass (uid_t)-1 */
    if (start == 0) return -ENOENT;                        /* would map a guest id to real root */
    if (id >= start && id - start < count) return -ENOENT; /* overlaps the user's own id */
    *ret_start = (uint32_t)start;
    *ret_count = (uint32_t)count;
    return 0;
}

int mounts_subid_find(const char *buf, size_t len, const char *name, uint32_t id,
                      uint32_t *ret_start, uint32_t *ret_count) {
    size_t lines = 0;
    for (size_t off = 0; off < len && lines < MOUNTS_SUBID_LINES_MAX; lines++) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t l = nl ? (size_t)(nl - (buf + off)) : len - off;
        if (subid_line(buf + off, l, name, id, ret_start, ret_count) == 0) return 0;
        off += l + 1;
    }
    return -ENOENT;
}

static int subid_lookup(const char *path, const char *kind, const char *name, uint32_t id,
                        uint32_t *ret_start, uint32_t *ret_count, dbx_error **err) {
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, path, MOUNTS_SUBID_FILE_MAX, &buf, &len, &e) < 0 &&
        e->code != ENOENT) {
        *err = TAKE_PTR(e);
        return -(*err)->code;
    }
    if (buf && memchr(buf, '\0', len))
        return dbx_error_setx(err, EINVAL, "'%s' contains a NUL byte", path);
    if (buf && mounts_subid_find(buf, len, name, id, ret_start, ret_count) == 0) return 0;

    char idbuf[16];
    snprintf(idbuf, sizeof(idbuf), "%u", id);
    const char *who = name ? name : idbuf;
    return dbx_error_setx(err, ENOENT,
                          "no subordinate %s range for user '%s' in %s (add one: usermod "
                          "--add-subuids 100000-165535 --add-subgids 100000-165535 %s)",
                          kind, who, path, who);
}

bool mounts_subid_overlaps(const char *buf, size_t len, uint32_t start, uint32_t count) {
    size_t lines = 0;
    for (size_t off = 0; off < len && lines < MOUNTS_SUBID_LINES_MAX; lines++) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t l = nl ? (size_t)(nl - (buf + off)) : len - off;
        char line[MOUNTS_SUBID_LINE_MAX + 1];
        if (l > 0 && l <= MOUNTS_SUBID_LINE_MAX) {
            memcpy(line, buf + off, l);
            line[l] = '\0';
            char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
            uint64_t s0, c0;
            if (b) {
                *b = '\0';
                if (dbx_parse_u64(a + 1, 0, UINT32_MAX, &s0) == 0 &&
                    dbx_parse_u64(b + 1, 0, UINT32_MAX, &c0) == 0 && c0 > 0 &&
                    s0 < (uint64_t)start + count && (uint64_t)start < s0 + c0)
                    return true;
            }
        }
        off += l + 1;
    }
    return false;
}

void mounts_box_ids(uid_t *ret_uid, gid_t *ret_gid) {
    bool root = getuid() == 0;
    *ret_uid = root ? MOUNTS_ROOT_BOX_ID : getuid();
    *ret_gid = root ? MOUNTS_ROOT_BOX_ID : getgid();
}

/* Host root: the high range must not be one /etc/subuid or /etc/subgid gives someone. */
static int root_range_check(const char *path, dbx_error **err) {
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_read_file_at(AT_FDCWD, path, MOUNTS_SUBID_FILE_MAX, &buf, &len, &e) < 0) {
        if (e->code == ENOENT) return 0;
        *err = TAKE_PTR(e);
        return -(*err)->code;
    }
    if (mounts_subid_overlaps(buf, len, MOUNTS_ROOT_SUB_START, MOUNTS_ROOT_SUB_COUNT))
        return dbx_error_setx(err, EEXIST,
                              "%s hands out ids in %u-%u, which devbox uses for a root host's "
                              "boxes (docs/SECURITY.md)",
                              path, MOUNTS_ROOT_SUB_START,
                              MOUNTS_ROOT_SUB_START + MOUNTS_ROOT_SUB_COUNT - 1);
    return 0;
}

int mounts_idmap_get(struct mounts_idmap *ret, dbx_error **err) {
    struct mounts_idmap m = {.uid = getuid(), .gid = getgid()};
    mounts_box_ids(&m.box_uid, &m.box_gid);
    if (m.uid == 0) {
        /* Host root: the box user is an ordinary uid in the guest that maps back to root, and
         * everything else to ids nobody has (mounts.h). */
        if (root_range_check(SUBUID_PATH, err) < 0 || root_range_check(SUBGID_PATH, err) < 0)
            return -(*err)->code;
        m.sub_uid = MOUNTS_ROOT_SUB_START;
        m.sub_uid_count = MOUNTS_ROOT_SUB_COUNT;
        m.sub_gid = MOUNTS_ROOT_SUB_START;
        m.sub_gid_count = MOUNTS_ROOT_SUB_COUNT;
        *ret = m;
        return 0;
    }
    m.rootless = true;

    /* getpwuid reads the host's own passwd (never image or workspace content, R5), the same
     * lookup newuidmap does to decide which subuid lines belong to us. */
    _cleanup_free_ char *name = NULL;
    errno = 0;
    struct passwd *pw = getpwuid(m.uid);
    if (pw && pw->pw_name && *pw->pw_name) name = dbx_xstrdup(pw->pw_name);

    uint32_t start = 0, count = 0;
    if (subid_lookup(SUBUID_PATH, "uid", name, m.uid, &start, &count, err) < 0)
        return -(*err)->code;
    m.sub_uid = start;
    m.sub_uid_count = count;
    if (subid_lookup(SUBGID_PATH, "gid", name, m.uid, &start, &count, err) < 0)
        return -(*err)->code;
    /* The range must not contain our gid either (subid_line checked it against the uid). */
    if (m.gid >= start && m.gid - start < count)
        return dbx_error_setx(err, EINVAL, "subordinate gid range %u-%u in %s contains gid %u",
                              start, start + count - 1, SUBGID_PATH, (unsigned)m.gid);
    m.sub_gid = start;
    m.sub_gid_count = count;
    *ret = m;
    return 0;
}

size_t mounts_idmap_ranges(uint32_t inside, uint32_t outside, uint32_t sub, uint32_t count,
                           struct mounts_id_range out[3]) {
    size_t n = 0;
    if (inside > 0) {
        /* namespace 0..inside-1 -> sub..: guest root lands on the first subordinate id */
        uint32_t c = count < inside ? count : inside;
        out[n++] = (struct mounts_id_range){0, sub, c};
    }
    out[n++] = (struct mounts_id_range){inside, outside, 1};
    if (count > inside) {
        /* the rest of the subordinate range continues above inside */
        out[n++] = (struct mounts_id_range){inside + 1, sub + inside, count - inside};
    }
    return n;
}

/* Locations newuidmap/newgidmap live in; a fixed list rather than $PATH, which is the user's. */
static const char *const idmap_tool_dirs[] = {"/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"};

static int find_tool(const char *tool, char *buf, size_t size) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(idmap_tool_dirs); i++) {
        snprintf(buf, size, "%s%s", idmap_tool_dirs[i], tool);
        if (access(buf, X_OK) == 0) return 0;
    }
    return -ENOENT;
}

/* Keep the first line of the tool's stderr, printable, as the error message. */
static char *first_line(char *s) {
    s[strcspn(s, "\n")] = '\0';
    return dbx_sanitize_printable(s);
}

int mounts_run_idmap_tool(const char *tool, pid_t pid, const struct mounts_id_range *r, size_t n,
                          dbx_error **err) {
    char path[64];
    if (n == 0 || n > 3) return dbx_error_set(err, EINVAL, "%s: bad range count %zu", tool, n);
    if (find_tool(tool, path, sizeof(path)) < 0)
        return dbx_error_setx(err, ENOENT, "%s not found (install the 'uidmap' package)", tool);

    char nums[1 + 3 * 3][16];
    char *argv[2 + 3 * 3 + 1] = {(char *)tool, nums[0]};
    snprintf(nums[0], sizeof(nums[0]), "%d", (int)pid);
    size_t a = 2;
    for (size_t i = 0; i < n; i++) {
        uint32_t v[3] = {r[i].inside, r[i].outside, r[i].count};
        for (size_t k = 0; k < 3; k++, a++) {
            snprintf(nums[a - 1], sizeof(nums[0]), "%u", v[k]);
            argv[a] = nums[a - 1];
        }
    }
    argv[a] = NULL;

    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return dbx_error_set(err, errno, "pipe");
    _cleanup_close_ int rd = p[0];
    _cleanup_close_ int wr = p[1];
    char *envp[] = {NULL};
    const struct dbx_spawn_fd fds[] = {{0, DBX_SPAWN_DEVNULL}, {1, DBX_SPAWN_DEVNULL}, {2, wr}};
    const struct dbx_spawn s = {
        .path = path, .argv = argv, .envp = envp, .fds = fds, .nfds = DBX_ARRAY_SIZE(fds)};
    pid_t child = -1;
    int res = dbx_spawn(&s, &child, err);
    if (res < 0) return res;
    close(TAKE_FD(wr));

    char buf[1024];
    size_t len = 0;
    ssize_t k;
    /* Drain everything so the tool never blocks on a full pipe; keep the first 1 KiB. */
    while ((k = read(rd, buf + len, sizeof(buf) - 1 - len)) != 0) {
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) break;
        len += (size_t)k;
        if (len == sizeof(buf) - 1) {
            char sink[512];
            while ((k = read(rd, sink, sizeof(sink))) > 0 || (k < 0 && errno == EINTR)) {
            }
            break;
        }
    }
    buf[len] = '\0';

    int status;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) return dbx_error_set(err, errno, "waitpid %s", tool);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    first_line(buf);
    if (*buf) return dbx_error_setx(err, EPERM, "%s", buf); /* the tool names itself */
    if (WIFSIGNALED(status))
        return dbx_error_setx(err, EPERM, "%s killed by signal %d", tool, WTERMSIG(status));
    return dbx_error_setx(err, EPERM, "%s exited with status %d", tool, WEXITSTATUS(status));
}

/* sandbox/sandbox-status.c: the status record of a project's VM: its binary form (supervisor to
 * client over the control socket, and the run dir's status file) and the JSON `devbox status
 * --json` prints.  Both ends are devbox on one host, but the decoder is strict all the same:
 * every string and list has a bound, enums are checked, nothing may trail. */
#define _GNU_SOURCE
#include "sandbox-internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>

/* 2: protected_writes, protected_first; 3: idle_s, idle_stop_s; 4: aslr */
#define STATUS_VERSION 4
#define STATUS_FILE_MAX (1u << 20)
#define STATUS_STR_MAX PATH_MAX /* project root, image, one profile file */
#define STATUS_SHORT_MAX 256u   /* accel, kernel release */
#define STATUS_PORTS_MAX (64u * 1024u)
#define STATUS_FILES_MAX (PROFILE_MAX_DEPTH + 1)

void dbx_status_clear(struct dbx_status *st) {
    if (!st) return;
    free(st->project);
    free(st->image);
    free(st->accel);
    free(st->kernel);
    dbx_strv_free(st->profile_files);
    free(st->ports);
    free(st->profile_error);
    free(st->protected_first);
    *st = (struct dbx_status){0};
}

char *dbx_status_idle_human(uint64_t s) {
    unsigned long long h = s / 3600, m = s / 60 % 60, sec = s % 60;
    if (s < 60) return dbx_xasprintf("%llus", sec);
    if (s < 3600) return dbx_xasprintf("%llum%02llus", m, sec);
    return dbx_xasprintf("%lluh%02llum%02llus", h, m, sec);
}

static void print_str(const char *key, const char *v) {
    _cleanup_free_ char *s = dbx_escape(v);
    printf("%-11s %s\n", key, s);
}

static void print_int(const char *key, long long v) {
    printf("%-11s %lld\n", key, v);
}

void dbx_status_print(const struct dbx_status *st) {
    print_str("project", st->project);
    print_str("state", dbx_vm_state_name(st->state));
    if (st->image) print_str("image", st->image);
    if (dbx_status_live(st)) {
        print_str("accel", st->accel);
        print_int("pid", st->pid);
        print_int("uptime_s", (long long)st->uptime_s);
        print_int("memory_mib", (long long)st->memory_mib);
        print_int("rss_kib", (long long)st->rss_kib);
        print_int("cpus", st->cpus);
        print_str("kernel", st->kernel);
        print_str("seccomp", dbx_status_seccomp_name(st->seccomp));
        /* off only under TCG with [security] aslr = auto (supervisor-vm.c's sup_no_randomize
         * says why); the key that turns it on, where a user looks for why it is off */
        if (st->aslr == DBX_ASLR_ON) print_str("aslr", "on");
        if (st->aslr == DBX_ASLR_OFF)
            print_str("aslr", "off: programs start at fixed addresses under tcg "
                              "('[security] aslr = on' randomizes them)");
        print_int("sessions", st->sessions);
        print_str("network", dbx_status_network_name(st->network));
        print_int("connections", (long long)st->connections);
        /* nothing running for this long (absent while something does): the idle stop's
         * clock (supervisor-idle.c counts sessions and socket sessions as busy) */
        if (st->sessions == 0 && st->connections == 0) {
            _cleanup_free_ char *idle = dbx_status_idle_human(st->idle_s);
            _cleanup_free_ char *limit =
                st->idle_stop_s ? dbx_status_idle_human(st->idle_stop_s) : NULL;
            printf("%-11s %s%s%s%s\n", "idle", idle, limit ? " (stops at " : "", limit ? limit : "",
                   limit ? ")" : "");
        }
        /* what the box tried on the paths the host runs: "0 write attempts" says none */
        _cleanup_free_ char *first = st->protected_first ? dbx_escape(st->protected_first) : NULL;
        printf("%-11s %llu write attempts%s%s%s\n", "protected",
               (unsigned long long)st->protected_writes, first ? " (first: " : "",
               first ? first : "", first ? ")" : "");
    }
    /* one line per forward ("127.0.0.1:3000 -> 3000") */
    _cleanup_free_ char *pcopy = st->ports ? dbx_xstrdup(st->ports) : NULL;
    for (char *save = NULL, *l = pcopy ? strtok_r(pcopy, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save))
        printf("%-11s %s\n", "port", dbx_sanitize_printable(l));
    if (st->profile_changed)
        printf("%-11s %s changed since the VM started; it keeps its policy until 'devbox stop'\n",
               "profile", PROFILE_FILE);
}

static void put_opt_str(struct dbx_buf *b, const char *s) {
    dbx_buf_put_u8(b, s != NULL);
    if (s) dbx_buf_put_str(b, s);
}

void dbx_status_encode(const struct dbx_status *st, struct dbx_buf *b) {
    dbx_buf_put_u8(b, STATUS_VERSION);
    dbx_buf_put_u8(b, (uint8_t)st->state);
    dbx_buf_put_str(b, st->project ? st->project : "");
    dbx_buf_put_str(b, st->id);
    put_opt_str(b, st->image);
    dbx_buf_put_u32(b, (uint32_t)st->pid);
    dbx_buf_put_u32(b, (uint32_t)st->qemu_pid);
    dbx_buf_put_u32(b, (uint32_t)st->virtiofsd_pid);
    dbx_buf_put_str(b, st->accel ? st->accel : "");
    dbx_buf_put_str(b, st->kernel ? st->kernel : "");
    dbx_buf_put_u64(b, st->uptime_s);
    dbx_buf_put_u64(b, st->memory_mib);
    dbx_buf_put_u64(b, st->rss_kib);
    dbx_buf_put_u32(b, st->cpus);
    dbx_buf_put_u32(b, st->sessions);
    dbx_buf_put_u64(b, (uint64_t)st->started);
    dbx_buf_put_str(b, st->profile_hash);
    uint32_t n = (uint32_t)dbx_strv_len(st->profile_files);
    dbx_buf_put_u32(b, n);
    for (uint32_t i = 0; i < n; i++)
        dbx_buf_put_str(b, st->profile_files[i]);
    dbx_buf_put_u8(b, st->network);
    dbx_buf_put_u8(b, st->seccomp);
    dbx_buf_put_u64(b, st->connections);
    dbx_buf_put_str(b, st->ports ? st->ports : "");
    dbx_buf_put_u64(b, st->protected_writes);
    put_opt_str(b, st->protected_first);
    dbx_buf_put_u64(b, st->idle_s);
    dbx_buf_put_u64(b, st->idle_stop_s);
    dbx_buf_put_u8(b, st->aslr);
}

/* A string into a fixed array: at most cap - 1 bytes. */
static int get_fixed(struct dbx_cursor *c, char *dst, size_t cap) {
    char *s = NULL;
    if (dbx_get_str(c, cap - 1, &s) < 0) return -1;
    memcpy(dst, s, strlen(s) + 1);
    free(s);
    return 0;
}

static bool is_hex(const char *s, size_t len) {
    if (strlen(s) != len) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
    return true;
}

static int decode_fields(struct dbx_cursor *c, struct dbx_status *st) {
    uint8_t version = 0, state = 0, has_image = 0;
    uint32_t pid = 0, qpid = 0, vpid = 0, nfiles = 0;
    uint64_t started = 0;
    /* versions 2 and 3 (a supervisor started before an upgrade) lack only the idle fields and
     * aslr */
    if (dbx_get_u8(c, &version) < 0 || version < 2 || version > STATUS_VERSION ||
        dbx_get_u8(c, &state) < 0 || state > DBX_VM_STOPPING || /* never STARTING */
        dbx_get_str(c, STATUS_STR_MAX, &st->project) < 0 ||
        get_fixed(c, st->id, sizeof(st->id)) < 0 || !is_hex(st->id, sizeof(st->id) - 1) ||
        dbx_get_u8(c, &has_image) < 0 || has_image > 1 ||
        (has_image && dbx_get_str(c, STATUS_STR_MAX, &st->image) < 0) || dbx_get_u32(c, &pid) < 0 ||
        dbx_get_u32(c, &qpid) < 0 || dbx_get_u32(c, &vpid) < 0 ||
        dbx_get_str(c, STATUS_SHORT_MAX, &st->accel) < 0 ||
        dbx_get_str(c, STATUS_SHORT_MAX, &st->kernel) < 0 || dbx_get_u64(c, &st->uptime_s) < 0 ||
        dbx_get_u64(c, &st->memory_mib) < 0 || dbx_get_u64(c, &st->rss_kib) < 0 ||
        dbx_get_u32(c, &st->cpus) < 0 || dbx_get_u32(c, &st->sessions) < 0 ||
        dbx_get_u64(c, &started) < 0 ||
        get_fixed(c, st->profile_hash, sizeof(st->profile_hash)) < 0 ||
        (*st->profile_hash && !is_hex(st->profile_hash, sizeof(st->profile_hash) - 1)) ||
        dbx_get_u32(c, &nfiles) < 0 || nfiles > STATUS_FILES_MAX)
        return -1;
    st->state = (enum dbx_vm_state)state;
    st->pid = (int32_t)pid;
    st->qemu_pid = (int32_t)qpid;
    st->virtiofsd_pid = (int32_t)vpid;
    st->started = (int64_t)started;
    for (uint32_t i = 0; i < nfiles; i++) {
        char *f = NULL;
        if (dbx_get_str(c, STATUS_STR_MAX, &f) < 0) return -1;
        st->profile_files = dbx_strv_push(st->profile_files, f);
        free(f);
    }
    uint8_t has_first = 0;
    if (dbx_get_u8(c, &st->network) < 0 || st->network > DBX_NET_OPEN ||
        dbx_get_u8(c, &st->seccomp) < 0 || st->seccomp > DBX_SECCOMP_STRICT ||
        dbx_get_u64(c, &st->connections) < 0 || dbx_get_str(c, STATUS_PORTS_MAX, &st->ports) < 0 ||
        dbx_get_u64(c, &st->protected_writes) < 0 || dbx_get_u8(c, &has_first) < 0 ||
        has_first > 1 ||
        (has_first && dbx_get_str(c, DBX_PROTECTED_PATH_MAX, &st->protected_first) < 0) ||
        (version >= 3 &&
         (dbx_get_u64(c, &st->idle_s) < 0 || dbx_get_u64(c, &st->idle_stop_s) < 0)) ||
        (version >= 4 && (dbx_get_u8(c, &st->aslr) < 0 || st->aslr == DBX_ASLR_UNKNOWN ||
                          st->aslr > DBX_ASLR_OFF)) ||
        c->left)
        return -1;
    return 0;
}

int dbx_status_decode(const uint8_t *p, size_t len, struct dbx_status *ret, dbx_error **err) {
    struct dbx_status st = {0};
    struct dbx_cursor c = {p, len};
    if (decode_fields(&c, &st) < 0) {
        dbx_status_clear(&st);
        return dbx_error_setx(err, EINVAL, "malformed status record");
    }
    *ret = st;
    return 0;
}

int dbx_status_read(const char *run_dir, struct dbx_status *ret) {
    _cleanup_free_ char *path = dbx_xasprintf("%s/%s", run_dir, DBX_STATUS_NAME);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    _cleanup_error_ dbx_error *e = NULL;
    int r = dbx_read_file_at(AT_FDCWD, path, STATUS_FILE_MAX, &buf, &len, &e);
    if (r < 0) return r;
    return dbx_status_decode((const uint8_t *)buf, len, ret, NULL);
}

const char *dbx_vm_state_name(enum dbx_vm_state s) {
    static const char *const names[] = {"stopped", "running", "paused", "stopping", "starting"};
    return (unsigned)s < DBX_ARRAY_SIZE(names) ? names[s] : "?";
}

bool dbx_status_live(const struct dbx_status *st) {
    return st->state == DBX_VM_RUNNING || st->state == DBX_VM_PAUSED ||
           st->state == DBX_VM_STOPPING;
}

const char *dbx_status_network_name(uint8_t mode) {
    static const char *const names[] = {"none", "allowlist", "open"};
    return mode < DBX_ARRAY_SIZE(names) ? names[mode] : "?";
}

const char *dbx_status_seccomp_name(uint8_t mode) {
    static const char *const names[] = {"unconfined", "default", "strict"};
    return mode < DBX_ARRAY_SIZE(names) ? names[mode] : "?";
}

int dbx_status_ask(int fd, struct dbx_status *ret, dbx_error **err) {
    if (dbx_send_frame(fd, DBX_MSG_STATUS, 0, NULL, 0) < 0) return -EPIPE;
    struct dbx_frame_hdr h;
    _cleanup_free_ uint8_t *p = NULL;
    int r = dbx_read_frame(fd, &h, &p, err);
    if (r < 0) return r;
    /* A supervisor of an older devbox (still running across an upgrade) answered JSON: say
     * how to get rid of it rather than only that the reply is bad. */
    if (h.type != DBX_MSG_STATUS_REPLY || dbx_status_decode(p, h.len, ret, NULL) < 0)
        return dbx_error_set(err, 0,
                             "bad status reply from the supervisor (one started by another "
                             "devbox version stops with 'devbox stop')");
    return 0;
}

char *dbx_port_line(const char *addr, unsigned host, unsigned guest) {
    return dbx_xasprintf("%s:%u -> %u\n", addr, host, guest);
}

/* One of dbx_port_line's lines (without its '\n', cut up here) as an object, or NULL. */
static json_t *port_json(char *line) {
    char *arrow = strstr(line, " -> "), *colon = NULL;
    if (arrow) *arrow = '\0';
    if (arrow) colon = strrchr(line, ':'); /* an IPv6 address has colons of its own */
    uint64_t host, guest;
    if (!colon || colon == line) return NULL;
    *colon = '\0';
    if (dbx_parse_u64(colon + 1, 1, 65535, &host) < 0 ||
        dbx_parse_u64(arrow + 4, 1, 65535, &guest) < 0)
        return NULL;
    return json_pack("{s:s, s:I, s:I}", "address", line, "host", (json_int_t)host, "guest",
                     (json_int_t)guest);
}

static json_t *ports_json(const char *text) {
    json_t *a = json_array();
    _cleanup_free_ char *copy = dbx_xstrdup(text ? text : "");
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *o = port_json(l);
        if (o) json_array_append_new(a, o);
    }
    return a;
}

char *dbx_ports_json(const char *text) {
    json_t *a = ports_json(text);
    char *out = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(a);
    if (!out) dbx_oom_hook();
    return out;
}

/* A JSON string of s, or null for NULL; not valid UTF-8 (a host path need not be): with U+FFFD
 * for the bytes that are not, where json_string would fail and leave no JSON at all. */
static json_t *jstr(const char *s) {
    if (!s) return json_null();
    json_t *j = json_string(s);
    if (j) return j;
    _cleanup_free_ char *fixed = dbx_utf8_fix(s);
    return json_string(fixed);
}

static json_t *stopped_json(const struct dbx_status *st) {
    return json_pack("{s:s, s:o, s:s, s:n, s:n, s:n, s:n, s:o}", "state",
                     dbx_vm_state_name(st->state), "project", jstr(st->project), "id", st->id,
                     "pid", "accel", "uptime_s", "memory_mib", "image", jstr(st->image));
}

static json_t *running_json(const struct dbx_status *st) {
    json_t *j =
        json_pack("{s:s, s:o, s:s, s:i, s:i, s:i, s:s, s:I, s:I, s:I, s:i, s:s, s:s, s:I, s:i}",
                  "state", dbx_vm_state_name(st->state), "project", jstr(st->project), "id", st->id,
                  "pid", (int)st->pid, "qemu_pid", (int)st->qemu_pid, "virtiofsd_pid",
                  (int)st->virtiofsd_pid, "accel", st->accel, "uptime_s", (json_int_t)st->uptime_s,
                  "memory_mib", (json_int_t)st->memory_mib, "rss_kib", (json_int_t)st->rss_kib,
                  "cpus", (int)st->cpus, "image", st->image ? st->image : "", "kernel", st->kernel,
                  "started", (json_int_t)st->started, "sessions", (int)st->sessions);
    if (!j) return NULL;
    json_object_set_new(j, "profile_hash", json_string(st->profile_hash));
    json_t *files = json_array();
    for (char **f = st->profile_files; f && *f; f++)
        json_array_append_new(files, jstr(*f));
    json_object_set_new(j, "profile_files", files);
    json_object_set_new(j, "network", json_string(dbx_status_network_name(st->network)));
    json_object_set_new(j, "connections", json_integer((json_int_t)st->connections));
    json_object_set_new(j, "seccomp", json_string(dbx_status_seccomp_name(st->seccomp)));
    json_object_set_new(j, "protected_writes", json_integer((json_int_t)st->protected_writes));
    json_object_set_new(j, "protected_first", jstr(st->protected_first));
    json_object_set_new(j, "idle_s", json_integer((json_int_t)st->idle_s));
    json_object_set_new(j, "idle_stop_s", json_integer((json_int_t)st->idle_stop_s));
    json_object_set_new(j, "aslr",
                        st->aslr == DBX_ASLR_UNKNOWN ? json_null()
                                                     : json_boolean(st->aslr == DBX_ASLR_ON));
    return j;
}

char *dbx_status_json(const struct dbx_status *st) {
    json_t *j = dbx_status_live(st) ? running_json(st) : stopped_json(st);
    if (j) json_object_set_new(j, "ports", ports_json(st->ports));
    if (j && st->profile_checked) {
        json_object_set_new(j, "profile_changed", json_boolean(st->profile_changed));
        if (st->profile_error) json_object_set_new(j, "profile_error", jstr(st->profile_error));
    }
    /* ENSURE_ASCII: U+0080-U+009F (C1 controls) would otherwise be printed raw */
    char *out = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (!out) dbx_oom_hook();
    return out;
}

/* ---- protected-write reports ------------------------------------------------------------ */

/* Normalized, relative, printable ASCII: what a workspace-relative path from the guest may be. */
static bool rel_path_ok(const char *p) {
    if (!*p || *p == '/') return false;
    for (const char *c = p; *c; c++)
        if (*c < 0x20 || *c > 0x7e) return false;
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += n;
        if (*c == '/' && *++c == '\0') return false;
    }
    return true;
}

int dbx_protected_update(struct dbx_protected *pw, const uint8_t *p, size_t n,
                         char *const *protected, uint32_t nprotected, uint64_t now_ms,
                         dbx_error **err) {
    if (now_ms - pw->window_ms >= 1000 || now_ms < pw->window_ms) {
        pw->window_ms = now_ms;
        pw->window_n = 0;
    }
    if (++pw->window_n > DBX_PROTECTED_RATE)
        return dbx_error_setx(err, EAGAIN, "protected-write report: more than %u a second",
                              DBX_PROTECTED_RATE);
    uint64_t count = 0;
    _cleanup_free_ char *first = NULL;
    if (dbx_protected_decode(p, n, &count, &first) < 0)
        return dbx_error_setx(err, EPROTO, "protected-write report: malformed");
    if (count == 0 || count < pw->count)
        return dbx_error_setx(err, EPROTO,
                              "protected-write report: count %" PRIu64 " after %" PRIu64, count,
                              pw->count);
    if (!rel_path_ok(first) || !dbx_path_near(first, protected, nprotected)) {
        _cleanup_free_ char *e = dbx_escape_n(first, strlen(first) > 128 ? 128 : strlen(first), 0);
        return dbx_error_setx(err, EPROTO, "protected-write report: '%s' is not a protected path",
                              e);
    }
    if (pw->first[0] && strcmp(pw->first, first) != 0)
        return dbx_error_setx(err, EPROTO, "protected-write report: the first path changed");
    pw->count = count;
    snprintf(pw->first, sizeof(pw->first), "%s", first); /* fits: decode caps it */
    return 0;
}

/* guest/init-user.c: user lookup for exec by reading /etc/passwd and /etc/group directly.
 * The init is linked statically with --fatal-warnings, so getpwnam() and friends (which need
 * NSS modules at run time) are not available; the guest image's flat files are the database. */
#define _GNU_SOURCE
#include "init-internal.h"

#include <sys/stat.h>

/* The files belong to the guest image, which the guest's root can rewrite: cap what we read. */
#define USER_FILE_MAX (8u * 1024u * 1024u)
#define USER_MAX_GROUPS 1024u

struct pw_ent {
    const char *name, *gecos, *dir, *shell;
    uint32_t uid, gid;
};

/* Open path for reading only when it is a regular file.  A root box user may replace the
 * image's /etc/passwd by a FIFO (open would block PID 1 until a writer comes, and with it every
 * session) or by a symlink to a device in init's own /dev (ttyS0: a read that never returns;
 * some devices act on open alone): look first through an O_PATH descriptor, which opens
 * nothing, then reopen that very inode through /proc/self/fd.  -1 with errno on failure,
 * EINVAL for a file that is not regular. */
static int open_regular(const char *path, int flags) {
    _cleanup_close_ int pfd = open(path, O_PATH | O_CLOEXEC);
    struct stat st;
    if (pfd < 0 || fstat(pfd, &st) < 0) return -1;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        return -1;
    }
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
    return open(proc, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

int user_read_db(const char *path, char **ret, dbx_error **err) {
    _cleanup_close_ int fd = open_regular(path, O_RDONLY);
    if (fd < 0) {
        if (errno == ENOENT) { /* an image without the file simply has no names */
            *ret = dbx_xstrdup("");
            return 0;
        }
        if (errno == EINVAL) return dbx_error_setx(err, EINVAL, "'%s' is not a regular file", path);
        return dbx_error_set(err, errno, "open '%s'", path);
    }
    if (dbx_read_all(fd, USER_FILE_MAX, ret, NULL, err) < 0)
        return dbx_error_wrap(err, "read '%s'", path);
    return 0;
}

/* Split a line in place into exactly n ':'-separated fields; false if the count differs. */
static bool split_fields(char *line, char **f, size_t n) {
    size_t i = 0;
    f[i++] = line;
    for (char *p = line; *p; p++) {
        if (*p != ':') continue;
        if (i == n) return false;
        *p = '\0';
        f[i++] = p + 1;
    }
    return i == n;
}

static bool parse_id(const char *s, uint32_t *ret) {
    uint64_t v;
    /* (uid_t)-1 means "no change" to setuid() & co., so it is never a valid id. */
    if (dbx_parse_u64(s, 0, UINT32_MAX - 1, &v) < 0) return false;
    *ret = (uint32_t)v;
    return true;
}

/* Find the first passwd entry matching name (when non-NULL) or uid.  Points into buf. */
static bool pw_find(char *buf, const char *name, uint32_t uid, struct pw_ent *ret) {
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[7];
        uint32_t u, g;
        if (line[0] == '+' || line[0] == '-' || !split_fields(line, f, 7)) continue;
        if (!parse_id(f[2], &u) || !parse_id(f[3], &g)) continue;
        if (name ? strcmp(f[0], name) != 0 : u != uid) continue;
        *ret = (struct pw_ent){
            .name = f[0], .gecos = f[4], .dir = f[5], .shell = f[6], .uid = u, .gid = g};
        return true;
    }
    return false;
}

/* Find a group by name (gname != NULL) into *ret_gid, or collect the groups listing `member`
 * into u->groups.  Works on a private copy of the file text. */
static void gr_scan(const char *text, const char *gname, gid_t *ret_gid, const char *member,
                    struct init_user *u, bool *found) {
    _cleanup_free_ char *buf = dbx_xstrdup(text);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[4];
        uint32_t g;
        if (line[0] == '+' || line[0] == '-' || !split_fields(line, f, 4)) continue;
        if (!parse_id(f[2], &g)) continue;
        if (gname) {
            if (strcmp(f[0], gname) != 0) continue;
            *ret_gid = g;
            *found = true;
            return;
        }
        char *msave = NULL;
        for (char *m = strtok_r(f[3], ",", &msave); m; m = strtok_r(NULL, ",", &msave)) {
            if (strcmp(m, member) != 0 || u->ngroups >= USER_MAX_GROUPS) continue;
            u->groups = dbx_xrealloc(u->groups, (u->ngroups + 1) * sizeof(gid_t));
            u->groups[u->ngroups++] = g;
            break;
        }
    }
}

void user_clear(struct init_user *u) {
    if (!u) return;
    free(u->name);
    free(u->home);
    free(u->shell);
    free(u->groups);
    *u = (struct init_user){0};
}

/* The entry user_ensure_default wrote before it chose a shell: "/bin/sh" was not the user's
 * choice, so such an entry counts as having none. */
#define DEFAULT_GECOS "devbox"
#define OLD_DEFAULT_SHELL "/bin/sh"

static void user_take_pw(struct init_user *u, const struct pw_ent *pw) {
    u->name = dbx_xstrdup(pw->name);
    u->home = pw->dir[0] ? dbx_xstrdup(pw->dir) : NULL;
    bool ours = strcmp(pw->gecos, DEFAULT_GECOS) == 0 && strcmp(pw->shell, OLD_DEFAULT_SHELL) == 0;
    u->shell = pw->shell[0] && !ours ? dbx_xstrdup(pw->shell) : NULL;
}

static bool is_executable(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) &&
           access(path, X_OK) == 0;
}

const char *user_default_shell(void) {
    /* bash when the image has it (history, line editing), else the POSIX shell */
    return is_executable("/bin/bash") ? "/bin/bash" : "/bin/sh";
}

/* The passwd shell when there is one that can run, else user_default_shell().  Only an
 * absolute path: a relative one would be checked against init's cwd (/) here but run from the
 * command's working directory, which may hold a different file of that name. */
static void user_pick_shell(struct init_user *u) {
    if (u->shell && u->shell[0] == '/' && is_executable(u->shell)) return;
    free(u->shell);
    u->shell = dbx_xstrdup(user_default_shell());
}

/* The user half of a spec: numeric uid (entry optional) or a name (entry required). */
static int resolve_uid(const char *spec_user, const char *pwtext, struct init_user *u,
                       bool *ret_have_gid, dbx_error **err) {
    _cleanup_free_ char *buf = dbx_xstrdup(pwtext);
    struct pw_ent pw;
    uint32_t id;
    if (parse_id(spec_user, &id)) {
        u->uid = id;
        if (pw_find(buf, NULL, id, &pw)) {
            user_take_pw(u, &pw);
            u->gid = pw.gid;
            *ret_have_gid = true;
        }
        return 0;
    }
    if (!pw_find(buf, spec_user, 0, &pw))
        return dbx_error_set(err, 0, "user '%s': not found in /etc/passwd", spec_user);
    u->uid = pw.uid;
    u->gid = pw.gid;
    *ret_have_gid = true;
    user_take_pw(u, &pw);
    return 0;
}

static int resolve_db(const char *spec, uid_t def_uid, gid_t def_gid, struct init_user *ret,
                      dbx_error **err) {
    _cleanup_free_ char *pwtext = NULL, *grtext = NULL, *user = dbx_xstrdup(spec);
    struct init_user u = {.uid = def_uid, .gid = def_gid};
    bool have_gid = false, found = false;
    uint32_t g = 0;
    gid_t gg = 0;
    int r = -1;
    if (user_read_db("/etc/passwd", &pwtext, err) < 0) return -1;
    char *group = strchr(user, ':');
    if (group) *group++ = '\0';
    if (user[0] == '\0' && group) {
        r = dbx_error_set(err, 0, "user '%s': empty user name", spec);
        goto out;
    }
    if (user[0] == '\0') { /* the default user; its passwd entry, if any, gives HOME & co. */
        _cleanup_free_ char *buf = dbx_xstrdup(pwtext);
        struct pw_ent pw;
        if (pw_find(buf, NULL, def_uid, &pw)) user_take_pw(&u, &pw);
        have_gid = true;
    } else if (resolve_uid(user, pwtext, &u, &have_gid, err) < 0) {
        goto out;
    }
    /* /etc/group is needed for a group name or a known user's memberships only */
    if (((group && !parse_id(group, &g)) || u.name) && user_read_db("/etc/group", &grtext, err) < 0)
        goto out;
    if (group && parse_id(group, &g)) {
        u.gid = g;
    } else if (group) {
        gr_scan(grtext, group, &gg, NULL, &u, &found);
        if (!found) {
            r = dbx_error_set(err, 0, "group '%s': not found in /etc/group", group);
            goto out;
        }
        u.gid = gg;
    } else if (!have_gid) {
        u.gid = 0; /* a bare uid without a passwd entry: group 0, as docker does */
    }
    if (u.name) gr_scan(grtext, NULL, NULL, u.name, &u, &found);
    *ret = u;
    u = (struct init_user){0};
    r = 0;
out:
    user_clear(&u);
    return r;
}

/* The last resolution, reused while its inputs have not changed: the spec, the default ids,
 * and /etc/passwd and /etc/group as stat() sees them (inode, size, mode and both times, ctime
 * included, which no one in the box sets at will).  Reading and parsing both files through
 * open_regular took ~1 ms of a 13 ms warm exec under TCG (g_user, 2026-12-03); two stat calls
 * replace it.  The shell is picked again each time: whether it can run is the filesystem's,
 * not the files'. */
struct db_stamp {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    mode_t mode;
    struct timespec mtime, ctime;
};

static struct {
    bool valid;
    char *spec;
    uid_t def_uid;
    gid_t def_gid;
    struct db_stamp pw, gr;
    struct init_user u; /* before user_pick_shell: the passwd shell or NULL */
} user_cache;

static void user_cache_clear(void);

static void db_stamp_take(const char *path, struct db_stamp *ret) {
    struct stat st;
    *ret = (struct db_stamp){0};
    if (stat(path, &st) < 0) return;
    *ret = (struct db_stamp){.exists = true,
                             .dev = st.st_dev,
                             .ino = st.st_ino,
                             .size = st.st_size,
                             .mode = st.st_mode,
                             .mtime = st.st_mtim,
                             .ctime = st.st_ctim};
}

static bool db_stamp_same(const struct db_stamp *a, const struct db_stamp *b) {
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mode == b->mode && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
           a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void user_copy(const struct init_user *from, struct init_user *to) {
    *to = (struct init_user){.uid = from->uid, .gid = from->gid, .ngroups = from->ngroups};
    to->name = from->name ? dbx_xstrdup(from->name) : NULL;
    to->home = from->home ? dbx_xstrdup(from->home) : NULL;
    to->shell = from->shell ? dbx_xstrdup(from->shell) : NULL;
    if (from->ngroups) {
        to->groups = dbx_xcalloc(from->ngroups, sizeof(gid_t));
        memcpy(to->groups, from->groups, from->ngroups * sizeof(gid_t));
    }
}

int user_resolve(const char *spec, uid_t def_uid, gid_t def_gid, struct init_user *ret,
                 dbx_error **err) {
    struct db_stamp pw, gr;
    /* taken before the files are read: a change while reading makes the next call miss */
    db_stamp_take("/etc/passwd", &pw);
    db_stamp_take("/etc/group", &gr);
    if (user_cache.valid && user_cache.def_uid == def_uid && user_cache.def_gid == def_gid &&
        strcmp(user_cache.spec, spec) == 0 && db_stamp_same(&user_cache.pw, &pw) &&
        db_stamp_same(&user_cache.gr, &gr)) {
        user_copy(&user_cache.u, ret);
        user_pick_shell(ret);
        return 0;
    }
    struct init_user u;
    if (resolve_db(spec, def_uid, def_gid, &u, err) < 0) return -1;
    user_cache_clear();
    user_copy(&u, &user_cache.u);
    user_cache.spec = dbx_xstrdup(spec);
    user_cache.def_uid = def_uid;
    user_cache.def_gid = def_gid;
    user_cache.pw = pw;
    user_cache.gr = gr;
    user_cache.valid = true;
    user_pick_shell(&u);
    *ret = u;
    return 0;
}

static void user_cache_clear(void) {
    user_clear(&user_cache.u);
    free(user_cache.spec);
    user_cache.spec = NULL;
    user_cache.valid = false;
}

/* ---- the default user ------------------------------------------------------------------- */

static bool gr_has_gid(const char *text, gid_t gid) {
    _cleanup_free_ char *buf = dbx_xstrdup(text);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[4];
        uint32_t g;
        if (line[0] != '+' && line[0] != '-' && split_fields(line, f, 4) && parse_id(f[2], &g) &&
            g == gid)
            return true;
    }
    return false;
}

/* Whether `name` is the first field of any line of text. */
static bool db_has_name(const char *text, const char *name) {
    size_t n = strlen(name);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, name, n) == 0 && l[n] == ':') return true;
    return false;
}

/* Append one line to a database file (created 0644 if missing), on a line of its own. */
static int db_append(const char *path, const char *old, const char *line, dbx_error **err) {
    /* O_NONBLOCK: a FIFO put there since user_read_db looked must not block PID 1 either */
    _cleanup_close_ int fd = open(
        path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return dbx_error_setx(err, EINVAL, "'%s' is not a regular file", path);
    size_t ol = strlen(old);
    _cleanup_free_ char *text =
        dbx_xasprintf("%s%s\n", ol && old[ol - 1] != '\n' ? "\n" : "", line);
    int r = dbx_write_all(fd, text, strlen(text));
    if (r < 0 || fsync(fd) < 0)
        return dbx_error_set(err, r < 0 ? -r : errno, "append to '%s'", path);
    return 0;
}

int user_ensure_default(uid_t uid, gid_t gid, dbx_error **err) {
    if (uid == 0) return 0; /* the host user is root: root as it is */
    _cleanup_free_ char *pw = NULL, *gr = NULL, *buf = NULL;
    if (user_read_db("/etc/passwd", &pw, err) < 0 || user_read_db("/etc/group", &gr, err) < 0)
        return -1;
    buf = dbx_xstrdup(pw);
    struct pw_ent ent;
    if (pw_find(buf, NULL, uid, &ent)) return 0;
    _cleanup_free_ char *name = dbx_xstrdup("devbox");
    if (db_has_name(pw, name) || (!gr_has_gid(gr, gid) && db_has_name(gr, name))) {
        free(name);
        name = dbx_xasprintf("devbox-%u", (unsigned)uid);
    }
    _cleanup_free_ char *home = dbx_xasprintf("/home/%s", name);
    if (dbx_mkdir_p("/home", 0755, err) < 0) return -1;
    if (mkdir(home, 0755) < 0 && errno != EEXIST)
        return dbx_error_set(err, errno, "mkdir '%s'", home);
    /* A home left by an earlier boot keeps its content; only make sure it is ours, and never
     * through a symlink someone left there. */
    _cleanup_close_ int hfd = open(home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (hfd < 0) return dbx_error_set(err, errno, "open '%s'", home);
    if (fchown(hfd, uid, gid) < 0 || fchmod(hfd, 0755) < 0)
        return dbx_error_set(err, errno, "chown '%s'", home);
    /* the user is new (its entry is written below): its home gets the image's skeleton, even
     * if a share below it made the directory already */
    _cleanup_close_ int skel = open("/etc/skel", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (skel >= 0) skel_copy(skel, hfd, uid, gid);
    if (!gr_has_gid(gr, gid)) {
        _cleanup_free_ char *line = dbx_xasprintf("%s:x:%u:", name, (unsigned)gid);
        if (db_append("/etc/group", gr, line, err) < 0) return -1;
    }
    _cleanup_free_ char *line =
        dbx_xasprintf("%s:x:%u:%u:" DEFAULT_GECOS ":%s:%s", name, (unsigned)uid, (unsigned)gid,
                      home, user_default_shell());
    return db_append("/etc/passwd", pw, line, err);
}

/* common/protocol.h: the devbox wire protocol, shared by the host (supervisor, client) and the
 * guest init.  See docs/protocol.md for the prose version.
 *
 * A stream of frames.  Every frame is a 12-byte header followed by `len` payload bytes:
 *
 *   offset 0  u8   version   DBX_PROTO_VERSION
 *   offset 1  u8   type      enum dbx_msg
 *   offset 2  u16  flags     0 (reserved)
 *   offset 4  u32  session   0 = the connection itself, else one exec or socket session
 *   offset 8  u32  len       payload length, <= DBX_FRAME_MAX (an EXEC: DBX_EXEC_MAX)
 *
 * All integers are little-endian.  Strings in payloads are u32 length + bytes, no NUL inside.
 * The same frames travel on the agent channel (supervisor <-> guest init, over virtio-serial)
 * and on the client socket (devbox client <-> supervisor); the supervisor rewrites session ids.
 *
 * Flow control: each side may send at most DBX_WINDOW bytes of stdin/stdout/stderr data per
 * stream (socket data per direction) before the receiver returns credit with DBX_MSG_CREDIT
 * after consuming the bytes.  A sender that exceeds its window has its session ended.
 *
 * Malformed input: a header whose version or type is unknown, or whose length exceeds
 * DBX_FRAME_MAX (an EXEC to a reader that takes them: DBX_EXEC_MAX), is skipped (its payload
 * discarded by length) and ends that session with DBX_MSG_ERROR; a payload that does not decode
 * ends that session.  The connection survives. */
#pragma once

#include "common.h"
#include "plan.h"

/* 2: the plan carries caps_user (capabilities for uids other than 0).  3: EXEC's flag
 * DBX_EXEC_ADMIN and SETUP's ca_pem.  4: PROTECTED (guest->host).  5: CHANGED, NOTICE, PS,
 * KILL, STATS and the exec and setup additions of daily use (issue 13).  6: EXEC's flag
 * DBX_EXEC_TIMING and TIMING (issue 12).  7: CLOCK.  8: the plan's no_randomize.  9: the guest's
 * CLOCK (asking the host's clock) and its answer.  10: SETUP's time zone.  11: EXEC's umask and
 * terminfo.  12: EXEC's flag DBX_EXEC_MERGED. Overridable only so the tests can build an init of
 * another version (t-init-skew). */
#ifndef DBX_PROTO_VERSION
#define DBX_PROTO_VERSION 12
#endif
#define DBX_FRAME_HDR 12u
#define DBX_FRAME_MAX (256u * 1024u) /* largest payload */
#define DBX_DATA_CHUNK (32u * 1024u) /* largest stdio or socket data payload a sender emits */
#define DBX_WINDOW (256u * 1024u)    /* per-stream flow-control window */
#define DBX_MAX_SESSIONS 256u        /* concurrent exec sessions per VM */
#define DBX_MAX_SOCK_SESSIONS 512u   /* concurrent socket sessions per VM (besides exec's) */
/* EXEC carries a command line as large as Linux lets a local one be, so that what runs on
 * the host runs in the box (an agent's `python3 -c "$script"`, xargs' 128 KiB lines of short
 * names): execve takes one string of up to MAX_ARG_STRLEN (32 pages, 131072 bytes with its
 * NUL) and argv plus environment, their NULs and pointers, up to a quarter of the stack's
 * rlimit, never over 6 MiB (3/4 of _STK_LIM: fs/exec.c).  Each entry costs less on the wire
 * (4 bytes of length against a NUL and an 8-byte pointer), so DBX_EXEC_MAX holds any command
 * line the host could run, with the cwd, the user and a terminal's terminfo entry besides.  Only
 * readers that take EXEC (dbx_reader.takes_exec: the supervisor's from its clients, the init's from
 * the host) let one be that large; the box's own execve judges the rest (E2BIG, exit 126, as
 * locally). */
#define DBX_EXEC_MAX ((6u << 20) + 8192u + DBX_TERMINFO_MAX)
#define DBX_ARG_STR_MAX (128u * 1024u) /* one argv or env entry, without its NUL */
#define DBX_MAX_ARGS (1u << 20)
#define DBX_MAX_ENV 4096u
#define DBX_MAX_STR (64u * 1024u)     /* any single string (but SETUP's ca_pem) */
#define DBX_MAX_CA_PEM (192u * 1024u) /* SETUP's ca_pem: fits a SETUP frame with a full plan */
#define DBX_PROTECTED_PATH_MAX 1024u  /* PROTECTED's first path */
#define DBX_TZ_NAME_MAX 255u          /* SETUP's tz_name */
#define DBX_TZ_DATA_MAX (64u * 1024u) /* SETUP's tz_data: a TZif file (Europe/Berlin: 2.3 KiB) */
/* EXEC's terminfo: ncurses' own cap on a compiled entry (kitty's is 3.7 KiB) */
#define DBX_TERMINFO_MAX (32u * 1024u)
#define DBX_TERM_NAME_MAX 128u

enum dbx_msg {
    /* session 0 (connection) */
    DBX_MSG_HELLO = 1,    /* guest->host: u32 version, str kernel_release */
    DBX_MSG_SETUP = 2,    /* host->guest: struct dbx_setup */
    DBX_MSG_READY = 3,    /* guest->host: empty; setup applied, exec allowed */
    DBX_MSG_SHUTDOWN = 4, /* host->guest: empty; kill sessions, sync, unmount, power off */
    DBX_MSG_PING = 5,     /* either way: u64 token */
    DBX_MSG_PONG = 6,     /* reply: the same u64 token */
    /* guest->host: u64 count, str first: the box's write attempts on protected paths since
     * the boot (count, never decreasing) and the first one's workspace-relative path (never
     * changing once sent).  Informational only (the guest may lie; enforcement is the host's):
     * the init sends it at most once a second, the supervisor validates and rate-limits it. */
    DBX_MSG_PROTECTED = 7,
    /* host->guest: files changed on the host under a share (mounts/ watcher; guest/init-watch.c
     * makes the guest's inotify see them).  Payload defined with its codec below. */
    DBX_MSG_CHANGED = 8,
    /* The host's CLOCK_REALTIME (codec below).  host->guest: sent before SETUP, then before an
     * EXEC or with a PING when the last one is a second old; the guest steps its clock
     * forward to it when it lags (a guest reads its clock at boot from a whole-second RTC,
     * and a suspended host leaves it behind).  A frame can arrive late (the init was busy),
     * so a guest that seems to lead asks (guest->host, u64 token) and steps back only on an
     * answer that came back at once (host->guest, the clock and the token). */
    DBX_MSG_CLOCK = 9,
    /* session n */
    DBX_MSG_EXEC = 10,    /* host->guest: struct dbx_exec_req */
    DBX_MSG_STARTED = 11, /* guest->host: u32 pid (in guest) */
    DBX_MSG_STDIN = 12,   /* host->guest: bytes; empty payload = EOF */
    DBX_MSG_STDOUT = 13,  /* guest->host: bytes; empty payload = EOF */
    DBX_MSG_STDERR = 14,  /* guest->host: bytes; empty payload = EOF */
    DBX_MSG_CREDIT = 15,  /* either way: u8 stream (enum dbx_stream), u32 bytes; host->guest 0
                           * bytes for STDOUT/STDERR: the host's reader of that stream is gone, the
                           * guest closes its pipe (the command meets SIGPIPE) */
    DBX_MSG_RESIZE = 16,  /* host->guest: u16 rows, u16 cols */
    DBX_MSG_SIGNAL = 17,  /* host->guest: u32 signo */
    DBX_MSG_EXIT = 18,    /* guest->host: u8 signaled, u32 value; last frame of a session */
    DBX_MSG_ERROR = 19,   /* either way: u32 code, str message; ends the session (or, on
                             session 0 before READY, the boot) */
    /* socket sessions (network): a byte stream between a TCP connection in the guest and one
     * on the host.  Opened by either side: the guest opens sessions with ids that have
     * DBX_SESSION_GUEST set, the host with ids that do not; an id is not reused while its
     * session is live, and exec and socket sessions share the host's id space.  Flow control
     * as for exec streams (DBX_WINDOW per direction), with CREDIT stream DBX_STREAM_SOCK.
     * A session ends with SOCK_CLOSE (normal end, or the TCP connection failed) or ERROR (a
     * refusal or a protocol violation); neither is answered. */
    DBX_MSG_SOCK_OPEN = 20,  /* u8 kind (enum dbx_sock_kind), u16 port:
                                guest->host DBX_SOCK_PROXY: a connection to the guest's proxy
                                listener (port = the listener's);
                                host->guest DBX_SOCK_FORWARD: connect to 127.0.0.1:port in the
                                guest (a forwarded host port) */
    DBX_MSG_SOCK_OK = 21,    /* reply to SOCK_OPEN: empty; the stream is connected (a refusal
                                is an ERROR, e.g. 125 "connection refused on port 3000") */
    DBX_MSG_SOCK_DATA = 22,  /* either way: bytes (a sender emits <= DBX_DATA_CHUNK); empty
                                payload = EOF (the receiver does shutdown(SHUT_WR)); no data
                                may follow it in that direction */
    DBX_MSG_SOCK_CLOSE = 23, /* either way: empty; the session is over (no reply) */
    /* guest->host, session n, before its EXIT: why the command died when the box's limits
     * explain it (out of memory, pids limit); see its codec below */
    DBX_MSG_NOTICE = 24,
    /* session 0 requests with a u64 token that the reply repeats; between client and
     * supervisor and between supervisor and guest (payloads with their codecs below) */
    DBX_MSG_PS = 25,
    DBX_MSG_PS_REPLY = 26,
    DBX_MSG_KILL = 27,
    DBX_MSG_KILL_REPLY = 28,
    /* client <-> supervisor only, session 0; never sent to the guest */
    DBX_MSG_STATUS = 30,       /* client->supervisor: empty */
    DBX_MSG_STATUS_REPLY = 31, /* supervisor->client: a dbx_status record (sandbox-status.c) */
    DBX_MSG_STOP = 32,         /* client->supervisor: empty; reply is the socket closing */
    DBX_MSG_PORT_REQ = 33,     /* client->supervisor: str request ("add HOST GUEST", "rm HOST",
                                  "ls") */
    DBX_MSG_PORT_REPLY = 34,   /* supervisor->client: u32 status (0 ok), str text */
    DBX_MSG_STATS = 35,        /* either leg, like PS: the box cgroup's counters */
    DBX_MSG_STATS_REPLY = 36,
    /* session n, before its EXIT, only when the EXEC had DBX_EXEC_TIMING: where the time of
     * the exec went (codec below); guest->supervisor with the guest's phases,
     * supervisor->client with those and the supervisor's own */
    DBX_MSG_TIMING = 41,
    DBX_MSG_MAX_ = 42,
};

enum dbx_stream {
    DBX_STREAM_STDIN = 0,
    DBX_STREAM_STDOUT = 1,
    DBX_STREAM_STDERR = 2,
    DBX_STREAM_SOCK = 3, /* a socket session's data, in the direction of the CREDIT's sender */
};

enum dbx_sock_kind { DBX_SOCK_PROXY = 1, DBX_SOCK_FORWARD = 2 };
/* Session ids the guest allocates have this bit; the guest refuses EXEC and SOCK_OPEN from the
 * host on such an id. */
#define DBX_SESSION_GUEST 0x80000000u

/* Error codes carried in DBX_MSG_ERROR follow the exit-code convention. */
enum {
    DBX_ERR_FAILED = 125,    /* devbox itself failed */
    DBX_ERR_NOT_EXEC = 126,  /* found but could not execute */
    DBX_ERR_NOT_FOUND = 127, /* command not found */
    /* Not an exit code: the box must restart before it can run the command (its workspace
     * directory was replaced on the host).  Nothing was started; the client stops the box,
     * starts it again and sends the same EXEC once more.  An older client exits 125. */
    DBX_ERR_RESTART = 1000,
};

enum {
    DBX_EXEC_TTY = 1u << 0,   /* allocate a pty; rows/cols give its size */
    DBX_EXEC_STDIN = 1u << 1, /* keep stdin open (else the command sees EOF at once) */
    DBX_EXEC_LOGIN = 1u << 2, /* argv empty: run the user's login shell */
    /* One administrative command the user typed on the host (`devbox exec --admin`): uid 0 with
     * the plan's root capabilities plus DBX_CAPS_ADMIN (common/plan.h); user must be "" or
     * root (dbx_user_is_root: "root", "0", "0:0", "root:root"), and the environment is reset
     * (guest/init-env.c: no profile [env] but the proxy variables).  Only the host can ask for it:
     * the agent channel belongs to the init and nothing in the box can send it a frame, and the
     * supervisor passes the flag on only from its own control socket (the user on the host),
     * logging each one. */
    DBX_EXEC_ADMIN = 1u << 3,
    /* client -> supervisor: `devbox exec -d`; the supervisor answers STARTED, lets the client
     * go and writes the output to <state_dir>/procs/PID.log; the guest accepts and ignores it */
    DBX_EXEC_DETACH = 1u << 4,
    /* measure: the guest (and the supervisor) send TIMING before EXIT (DEVBOX_EXEC_TIMING=1) */
    DBX_EXEC_TIMING = 1u << 5,
    /* the client's stdout and stderr are one destination (`2>&1`, a terminal, `>>f 2>>f`; a
     * detached command's log, [setup]'s): the command gets one pipe as both, so its output
     * comes in the order it wrote it, all of it as STDOUT (STDERR is at EOF from the start, as
     * with a tty); never with DBX_EXEC_TTY */
    DBX_EXEC_MERGED = 1u << 6,
};
#define DBX_EXEC_TIMEOUT_MAX (30u * 24 * 3600 * 1000) /* timeout_ms cap: 30 days */

struct dbx_frame_hdr {
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint32_t session;
    uint32_t len;
};

struct dbx_exec_req {
    uint32_t flags;
    uint16_t rows, cols;
    uint32_t timeout_ms; /* 0 = none; at the deadline the guest kills the command's cgroup and
                            reports EXIT 124 (not signaled); at most DBX_EXEC_TIMEOUT_MAX */
    uint32_t umask;      /* the command's file mode creation mask (<= 0777): the client's own,
                            so that files come out as they would on the host; 022 for setup */
    char *user;          /* "" = the default user from SETUP; "name", "uid" or "uid:gid" */
    char *cwd;           /* absolute path in the guest */
    uint32_t argc;
    char **argv; /* argc entries + NULL */
    uint32_t envc;
    char **env; /* "K=V", envc entries + NULL */
    /* With DBX_EXEC_TTY: the host's compiled terminfo entry for the TERM in env (at most
     * DBX_TERMINFO_MAX bytes, 0 = none), for a box whose image has none of that name (a kitty,
     * alacritty, foot or wezterm user's `devbox enter`).  dbx_terminfo_check. */
    uint32_t terminfo_len;
    uint8_t *terminfo;
};

struct dbx_share; /* issue 13: extra shares (block at the end) */

struct dbx_setup {
    char *ws_tag;      /* virtiofs tag of the workspace share */
    char *ws_path;     /* where to mount it: the project's absolute host path */
    uint32_t uid, gid; /* default user for exec */
    char *hostname;
    char *ca_pem; /* the host's CA certificates for the box to trust: "" = none, else one or
                     more PEM CERTIFICATE blocks (dbx_ca_pem_check), at most DBX_MAX_CA_PEM */
    /* The host's time zone (sandbox/sandbox-tz.c): "" = none (the box keeps UTC); else its
     * name (Europe/Berlin, or a POSIX rule such as EST5EDT) and, when tz_len > 0, the host's
     * TZif file for it, for a box whose image has no zone files.  dbx_tz_check. */
    char *tz_name;
    uint32_t tz_len;
    uint8_t *tz_data;
    uint32_t nshares; /* extra virtiofs shares, at most DBX_SHARES_MAX (issue 13, below) */
    struct dbx_share *shares;
    struct dbx_plan plan;
};

/* ---- frame header ----------------------------------------------------------------------- */

void dbx_hdr_encode(uint8_t out[DBX_FRAME_HDR], uint8_t type, uint32_t session, uint32_t len);
void dbx_hdr_decode(const uint8_t in[DBX_FRAME_HDR], struct dbx_frame_hdr *ret);
/* 0 when version, type and length are acceptable; else -EPROTO/-EMSGSIZE with *err set.
 * dbx_hdr_check_exec also takes an EXEC of up to DBX_EXEC_MAX. */
int dbx_hdr_check(const struct dbx_frame_hdr *h, dbx_error **err);
int dbx_hdr_check_exec(const struct dbx_frame_hdr *h, bool takes_exec, dbx_error **err);
const char *dbx_msg_name(uint8_t type);

/* Append one whole frame (header + payload) to an output queue. */
void dbx_frame_put(struct dbx_buf *out, uint8_t type, uint32_t session, const void *payload,
                   size_t len);

/* ---- payload decoding cursor ------------------------------------------------------------ */

struct dbx_cursor {
    const uint8_t *p;
    size_t left;
};
int dbx_get_u8(struct dbx_cursor *c, uint8_t *v);
int dbx_get_u16(struct dbx_cursor *c, uint16_t *v);
int dbx_get_u32(struct dbx_cursor *c, uint32_t *v);
int dbx_get_u64(struct dbx_cursor *c, uint64_t *v);
/* Returns a malloc'd NUL-terminated copy; refuses embedded NULs and strings > max. */
int dbx_get_str(struct dbx_cursor *c, size_t max, char **ret);
/* A u32 count (at most max) and that many strings of at most DBX_MAX_STR (dbx_get_strv_max:
 * str_max); *ret_v gets a NULL-terminated vector. */
int dbx_get_strv(struct dbx_cursor *c, uint32_t max, uint32_t *ret_n, char ***ret_v);
int dbx_get_strv_max(struct dbx_cursor *c, uint32_t max, size_t str_max, uint32_t *ret_n,
                     char ***ret_v);

/* ---- incremental frame reader ----------------------------------------------------------- */

/* Feeds bytes from a stream and yields whole frames.  Oversized or unknown frames are skipped
 * by length and reported once (so the caller can end that session). */
struct dbx_reader {
    struct dbx_buf in;
    uint64_t skip;   /* payload bytes still to discard */
    bool takes_exec; /* EXEC frames may be up to DBX_EXEC_MAX (else DBX_FRAME_MAX, as all) */
};
enum dbx_read_result {
    DBX_READ_NEED_MORE = 0, /* no complete frame yet */
    DBX_READ_FRAME = 1,     /* *hdr and *payload (valid until the next call) are set */
    DBX_READ_BAD = 2,       /* a bad header was skipped; *hdr says which session, *err why */
};
void dbx_reader_feed(struct dbx_reader *r, const void *p, size_t n);
enum dbx_read_result dbx_reader_next(struct dbx_reader *r, struct dbx_frame_hdr *hdr,
                                     const uint8_t **payload, dbx_error **err);
void dbx_reader_free(struct dbx_reader *r);
/* Take the first whole frame of `type` on session 0 with a payload of exactly `len` bytes out
 * of the frames buffered but not yet returned, copying its payload to `payload`; the others
 * stay in order.  For an answer that must not wait behind the frames before it (init-clock.c).
 * Stops at a bad or incomplete frame.  Returns whether it found one. */
bool dbx_reader_take(struct dbx_reader *r, uint8_t type, uint32_t len, uint8_t *payload);

/* ---- typed payloads --------------------------------------------------------------------- */

void dbx_exec_req_encode(const struct dbx_exec_req *req, struct dbx_buf *out);
/* Strict: all fields present, counts within limits, no trailing bytes, cwd absolute. */
int dbx_exec_req_decode(const uint8_t *p, size_t n, struct dbx_exec_req *ret, dbx_error **err);
void dbx_exec_req_free(struct dbx_exec_req *req);

void dbx_setup_encode(const struct dbx_setup *s, struct dbx_buf *out);
/* Strict, as exec's; ca_pem must pass dbx_ca_pem_check (the error says where it does not). */
int dbx_setup_decode(const uint8_t *p, size_t n, struct dbx_setup *ret, dbx_error **err);
void dbx_setup_free(struct dbx_setup *s);

/* Small fixed payloads: build into a caller buffer, return its length.  CREDIT's stream is
 * any enum dbx_stream (the receiver checks it belongs to the session's kind). */
size_t dbx_enc_credit(uint8_t out[5], uint8_t stream, uint32_t bytes);
int dbx_dec_credit(const uint8_t *p, size_t n, uint8_t *stream, uint32_t *bytes);
size_t dbx_enc_exit(uint8_t out[5], bool signaled, uint32_t value);
int dbx_dec_exit(const uint8_t *p, size_t n, bool *signaled, uint32_t *value);
size_t dbx_enc_resize(uint8_t out[4], uint16_t rows, uint16_t cols);
int dbx_dec_resize(const uint8_t *p, size_t n, uint16_t *rows, uint16_t *cols);
size_t dbx_enc_u32(uint8_t out[4], uint32_t v);
int dbx_dec_u32(const uint8_t *p, size_t n, uint32_t *v);
size_t dbx_enc_u64(uint8_t out[8], uint64_t v);
int dbx_dec_u64(const uint8_t *p, size_t n, uint64_t *v);
/* CLOCK host->guest: u64 the host's CLOCK_REALTIME in ns (<= INT64_MAX), then, answering the
 * guest's ask (a CLOCK of u64 token), that token: 8 or 16 bytes. */
#define DBX_CLOCK_ANSWER_LEN 16u
size_t dbx_enc_clock(uint8_t out[DBX_CLOCK_ANSWER_LEN], uint64_t host_ns, bool answer,
                     uint64_t token);
int dbx_dec_clock(const uint8_t *p, size_t n, uint64_t *host_ns, bool *answer, uint64_t *token);
/* SOCK_OPEN: u8 kind + u16 port; decode refuses an unknown kind and port 0. */
size_t dbx_enc_sock_open(uint8_t out[3], uint8_t kind, uint16_t port);
int dbx_dec_sock_open(const uint8_t *p, size_t n, uint8_t *kind, uint16_t *port);
/* ERROR: u32 code + str message. */
void dbx_error_msg_encode(struct dbx_buf *out, uint32_t code, const char *msg);
int dbx_error_msg_decode(const uint8_t *p, size_t n, uint32_t *code, char **msg);
/* PROTECTED: u64 count + str first (at most DBX_PROTECTED_PATH_MAX bytes); decode is strict
 * about framing only (the meaning of the path is the receiver's to check). */
void dbx_protected_encode(struct dbx_buf *out, uint64_t count, const char *first);
int dbx_protected_decode(const uint8_t *p, size_t n, uint64_t *count, char **first);
/* HELLO: u32 version + str kernel release. */
void dbx_hello_encode(struct dbx_buf *out, const char *release);
int dbx_hello_decode(const uint8_t *p, size_t n, uint32_t *version, char **release);

/* Whether pem is "" or one or more PEM certificate blocks and nothing else: each block is the
 * line "-----BEGIN CERTIFICATE-----", 1 to 1024 lines of 1 to 76 base64 characters ('=' only
 * as padding at the end of the last line), and "-----END CERTIFICATE-----"; every line ends
 * with '\n'; no blank lines, no other bytes; at most DBX_MAX_CA_PEM bytes.  -EINVAL with *err
 * naming the line ("line 7: not base64") otherwise.  The one spelling both the host's loader
 * (sandbox-ca.c, which re-encodes with OpenSSL) and the guest accept. */
int dbx_ca_pem_check(const char *pem, dbx_error **err);
/* SETUP's time zone: name at most DBX_TZ_NAME_MAX bytes of [A-Za-z0-9._+-/,:<>] ("" only with
 * no data); with data (at most DBX_TZ_DATA_MAX bytes, starting "TZif") the name is also a path
 * under a zoneinfo directory: no leading '/', no empty, "." or ".." component, and no ',', ':',
 * '<' or '>'. */
int dbx_tz_check(const char *name, const uint8_t *data, size_t len, dbx_error **err);
/* A terminal's name as a terminfo file's (1 to DBX_TERM_NAME_MAX bytes of [A-Za-z0-9._+-], not
 * starting with '.') and, when len > 0, a compiled entry (ncurses' legacy or extended-number
 * magic, at most DBX_TERMINFO_MAX bytes). */
bool dbx_terminfo_check(const char *term, const uint8_t *data, size_t len);

/* Whether an EXEC user spec names root and nothing else: "root" or "0", alone or with the group
 * "root" or "0" ("0:0", "root:root").  The one check both the client (`--admin -u USER`) and
 * the guest (DBX_EXEC_ADMIN, which also takes "") apply; the guest then runs the command as 0:0
 * whatever the image's passwd says. */
bool dbx_user_is_root(const char *user);

/* Map an EXIT payload to a shell exit code: value, or 128+signal. */
int dbx_exit_code(bool signaled, uint32_t value);

/* ---- issue 13: CHANGED (helper E) ---- */

/* CHANGED (host->guest, session 0): u32 n, n x str path.  Each path is workspace-relative:
 * not empty, no leading '/', no empty, "." or ".." component, at most DBX_CHANGED_PATH_MAX
 * bytes.  n == 0 means "too many changes: rescan" (the guest touches the workspace root).  A
 * payload never exceeds DBX_FRAME_MAX: a sender splits longer lists over several frames. */
#define DBX_CHANGED_MAX_PATHS 256u
#define DBX_CHANGED_PATH_MAX 4096u
/* Whether path is acceptable in CHANGED (above). */
bool dbx_changed_path_ok(const char *path);
/* n paths (each dbx_changed_path_ok, n <= DBX_CHANGED_MAX_PATHS; the caller checks). */
void dbx_changed_encode(struct dbx_buf *out, uint32_t n, const char *const *paths);
/* Strict: count within the cap, every path acceptable, no trailing bytes.  *ret_paths is a
 * NULL-terminated vector (dbx_strv_free); -EPROTO with *err naming the problem otherwise. */
int dbx_changed_decode(const uint8_t *p, size_t n, uint32_t *ret_n, char ***ret_paths,
                       dbx_error **err);
/* ---- issue 13: processes (helper A) ---- */

/* PS (session 0, either leg): u64 token.  PS_REPLY: u64 token, u32 n (<= DBX_PS_MAX), n
 * entries of: u32 pid, ppid, uid, session; u64 start_ms_ago, cpu_ms, rss_bytes; str user
 * (<= DBX_PS_USER_MAX), str cmd (<= DBX_PS_CMD_MAX); u8 detached (0 or 1).  The guest lists
 * only the box cgroup's processes and sends detached 0; the supervisor sets it. */
#define DBX_PS_MAX 4096u
#define DBX_PS_CMD_MAX 4096u
#define DBX_PS_USER_MAX 256u
struct dbx_ps_entry {
    uint32_t pid, ppid, uid;
    uint32_t session; /* the exec session whose leaf cgroup holds it; 0: not in one */
    uint64_t start_ms_ago, cpu_ms, rss_bytes;
    char *user; /* name, or the uid in decimal */
    char *cmd;  /* the command line, arguments joined by spaces */
    uint8_t detached;
};
struct dbx_ps_reply {
    uint64_t token;
    uint32_t n;
    struct dbx_ps_entry *v;
};
/* The encoded size of one entry (to keep a reply within DBX_FRAME_MAX). */
size_t dbx_ps_entry_size(const struct dbx_ps_entry *e);
void dbx_ps_entry_encode(struct dbx_buf *out, const struct dbx_ps_entry *e);
/* Header of a reply whose n entries the caller appends with dbx_ps_entry_encode. */
void dbx_ps_reply_begin(struct dbx_buf *out, uint64_t token, uint32_t n);
/* Strict: counts and string lengths within the caps, detached 0 or 1, no trailing bytes.
 * -EPROTO with *err otherwise (*ret untouched). */
int dbx_ps_reply_decode(const uint8_t *p, size_t n, struct dbx_ps_reply *ret, dbx_error **err);
void dbx_ps_reply_free(struct dbx_ps_reply *r);

/* KILL (session 0): u64 token, u32 pid (0 = every process of the box), u32 signo (1..64).
 * KILL_REPLY: u64 token, u32 status (0 ok, else an errno), str message (<= 1024). */
#define DBX_KILL_MSG_MAX 1024u
size_t dbx_enc_kill(uint8_t out[16], uint64_t token, uint32_t pid, uint32_t signo);
int dbx_dec_kill(const uint8_t *p, size_t n, uint64_t *token, uint32_t *pid, uint32_t *signo);
void dbx_kill_reply_encode(struct dbx_buf *out, uint64_t token, uint32_t status, const char *msg);
int dbx_kill_reply_decode(const uint8_t *p, size_t n, uint64_t *token, uint32_t *status,
                          char **msg);
/* ---- issue 13: NOTICE and STATS (helper B) ---------------------------------------------- */

/* NOTICE (guest->host, session n, just before its EXIT): why the command died, when the box's
 * limits explain it.  u32 kind, u64 limit, u64 value: for DBX_NOTICE_OOM the box's memory.max
 * (UINT64_MAX: none, the VM's memory ran out) and memory.peak; for DBX_NOTICE_PIDS pids.max and
 * pids.current.  Informational: the guest attributes it from box-wide counters. */
enum { DBX_NOTICE_OOM = 1, DBX_NOTICE_PIDS = 2 };
#define DBX_NOTICE_LEN 20u
struct dbx_notice {
    uint32_t kind;
    uint64_t limit, value;
};
size_t dbx_enc_notice(uint8_t out[DBX_NOTICE_LEN], const struct dbx_notice *n);
/* Strict: exactly 20 bytes and a known kind; *ret is set only on success. */
int dbx_dec_notice(const uint8_t *p, size_t n, struct dbx_notice *ret);

/* STATS: u64 token.  STATS_REPLY: u64 token, u32 n (<= DBX_STATS_MAX), n x (str key, u64
 * value): the box cgroup's counters under their flattened cgroup v2 names (cpu_usage_us,
 * memory_current, ...; docs/protocol.md lists them), a counter the kernel lacks left out, n 0
 * when the box has no cgroup.  UINT64_MAX in memory_max or pids_max means "max". */
#define DBX_STATS_MAX 64u
#define DBX_STATS_KEY_MAX 32u /* a key: 1 to 32 of [a-z0-9_], each key once */
struct dbx_stat {
    char *key;
    uint64_t value;
};
struct dbx_stats {
    uint64_t token;
    uint32_t n;
    struct dbx_stat *v;
};
/* Append key = value (the key copied); at most DBX_STATS_MAX entries (more are dropped). */
void dbx_stats_add(struct dbx_stats *st, const char *key, uint64_t value);
/* The value of key, or false when the reply has none. */
bool dbx_stats_find(const struct dbx_stats *st, const char *key, uint64_t *ret);
void dbx_stats_encode(const struct dbx_stats *st, struct dbx_buf *out);
/* Strict: counts and key syntax within the limits above, no duplicate key, no trailing bytes;
 * -EPROTO with *err saying what is wrong, *ret set only on success. */
int dbx_stats_decode(const uint8_t *p, size_t n, struct dbx_stats *ret, dbx_error **err);
void dbx_stats_clear(struct dbx_stats *st);

/* ---- issue 13: extra shares (helper D2) ---- */

/* SETUP's share list, encoded after ca_pem: u32 n (<= DBX_SHARES_MAX), n x (str tag, str path,
 * u8 readonly).  A tag is 1-36 bytes of [A-Za-z0-9_-] (a virtiofs tag; unique in the list and
 * never the workspace's); a path is absolute, normalized (no "." / ".." / empty components, no
 * trailing '/'), at most 4096 bytes, never "/", never one of the system directories the guest
 * needs (dbx_share_path_reserved), never the workspace's path, above or below it (a mount
 * point made through the workspace would be made on the host), nor above or below another
 * share's; readonly is 0 or 1. */
#define DBX_SHARES_MAX                                                                             \
    17u /* a profile's 16 [mounts] (PROFILE_MAX_MOUNTS) and a worktree's repository */
#define DBX_SHARE_TAG_MAX 36u
struct dbx_share {
    char *tag;
    char *path;
    uint8_t readonly;
};
void dbx_shares_encode(struct dbx_buf *out, uint32_t n, const struct dbx_share *v);
/* Strict (the caps and rules above; ws_tag/ws_path: the workspace's, which no share may take).
 * 0, or -EPROTO with *err naming the share. */
int dbx_shares_decode(struct dbx_cursor *c, const char *ws_tag, const char *ws_path,
                      uint32_t *ret_n, struct dbx_share **ret, dbx_error **err);
void dbx_shares_free(uint32_t n, struct dbx_share *v);
/* Whether a share's tag has the syntax above. */
bool dbx_share_tag_ok(const char *tag);
/* Whether an absolute normalized path is (or lies below) a directory a share must not cover
 * in the guest: /, /proc, /sys, /dev, /etc, /usr, /bin, /sbin, /lib*, /run (profiles' [mounts]
 * refuses these; /tmp is allowed here: a linked worktree's repository may live there). */
bool dbx_share_path_reserved(const char *path);

/* ---- issue 12: TIMING (helper latency) -------------------------------------------------- */

/* TIMING (session n, before EXIT): u32 n (<= DBX_TIMING_MAX), n x (str key, u64 value).  A key
 * is 1 to DBX_TIMING_KEY_MAX of [a-z0-9_], each key once, in the order the phases happened.
 * Values are microseconds: durations, except keys ending in "_at", which are absolute
 * CLOCK_MONOTONIC times on the host (the supervisor's, for the client to subtract from its
 * own).  The guest measures on its own clock and sends only durations.  Informational: a
 * receiver checks the framing, never trusts the numbers. */
#define DBX_TIMING_MAX 32u
#define DBX_TIMING_KEY_MAX 24u
struct dbx_timing_entry {
    char key[DBX_TIMING_KEY_MAX + 1];
    uint64_t value;
};
struct dbx_timing {
    uint32_t n;
    struct dbx_timing_entry v[DBX_TIMING_MAX];
};
/* Whether key has the syntax above. */
bool dbx_timing_key_ok(const char *key);
/* Append key = value; a bad key, a repeated key or an entry past DBX_TIMING_MAX is dropped
 * (false). */
bool dbx_timing_add(struct dbx_timing *t, const char *key, uint64_t value);
/* The entries of in whose key starts with prefix, in order, into out (cleared first), leaving
 * room for `room` more: how the supervisor keeps only the guest's own g_* keys of a hostile
 * guest's frame before adding its s_* ones. */
void dbx_timing_filter(const struct dbx_timing *in, const char *prefix, uint32_t room,
                       struct dbx_timing *out);
/* The value of key, or false when there is none. */
bool dbx_timing_find(const struct dbx_timing *t, const char *key, uint64_t *ret);
void dbx_timing_encode(const struct dbx_timing *t, struct dbx_buf *out);
/* Strict: count and keys as above, no trailing bytes; -EPROTO with *err otherwise, *ret set
 * only on success. */
int dbx_timing_decode(const uint8_t *p, size_t n, struct dbx_timing *ret, dbx_error **err);

/* sandbox/supervisor-stats.c: `devbox stats` and NOTICE on the supervisor's side.  A client's
 * STATS goes to the guest under a token of ours (the client's own token is only echoed back:
 * two clients may pick the same), and the guest's reply is checked strictly before the client
 * sees it; a guest that does not answer within STATS_TIMEOUT_MS costs the client an error, not
 * a hang.  NOTICE frames are validated here and forwarded by supervisor-relay.c like the
 * session's other frames. */
#define _GNU_SOURCE
#include "supervisor-internal.h"

#define STATS_TIMEOUT_MS 5000

static struct stats_wait *wait_find(struct sup *s, uint64_t token) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(s->stats.wait); i++)
        if (s->stats.wait[i].c && s->stats.wait[i].token == token) return &s->stats.wait[i];
    return NULL;
}

static void client_reply(struct client *c, const struct dbx_buf *b) {
    dbx_frame_put(&c->out, DBX_MSG_STATS_REPLY, 1, b->data, b->len);
    c->kind = C_CLOSING;
}

void sup_stats_request(struct sup *s, struct client *c, const uint8_t *p, uint32_t n) {
    uint64_t ctoken;
    if (dbx_dec_u64(p, n, &ctoken) < 0) {
        sup_client_error(c, DBX_ERR_FAILED, "malformed stats frame from client");
        return;
    }
    if (!s->guest.ready || s->guest.stopping || s->relay.agent_fd < 0) {
        sup_client_error(c, DBX_ERR_FAILED, "the VM is not running");
        return;
    }
    if (s->guest.nospace) {
        _cleanup_free_ char *m = sup_nospace_msg(s);
        sup_client_error(c, DBX_ERR_FAILED, "%s", m);
        return;
    }
    struct stats_wait *w = NULL;
    for (size_t i = 0; !w && i < DBX_ARRAY_SIZE(s->stats.wait); i++)
        if (!s->stats.wait[i].c) w = &s->stats.wait[i];
    if (!w) {
        sup_client_error(c, DBX_ERR_FAILED, "too many stats requests at once (at most %zu)",
                         DBX_ARRAY_SIZE(s->stats.wait));
        return;
    }
    *w = (struct stats_wait){.c = c,
                             .token = ++s->stats.next_token,
                             .client_token = ctoken,
                             .deadline_ms = dbx_now_ms() + STATS_TIMEOUT_MS};
    c->kind = C_STATS;
    uint8_t b[8];
    sup_agent_send(s, DBX_MSG_STATS, 0, b, dbx_enc_u64(b, w->token));
}

void sup_stats_reply(struct sup *s, const uint8_t *p, uint32_t n) {
    struct dbx_stats st = {0};
    _cleanup_error_ dbx_error *e = NULL;
    if (dbx_stats_decode(p, n, &st, &e) < 0) {
        sup_log("malformed stats-reply frame from the guest: %s", e->msg);
        /* its token, when it has one, still tells which client waits in vain */
        struct stats_wait *w = n >= 8 ? wait_find(s, dbx_get_le(p, 8)) : NULL;
        if (w) {
            sup_client_error(w->c, DBX_ERR_FAILED, "malformed stats reply from the guest");
            w->c = NULL;
        }
        return;
    }
    struct stats_wait *w = wait_find(s, st.token);
    if (!w) {
        sup_log("stats reply from the guest nobody asked for (token %llu)",
                (unsigned long long)st.token);
        dbx_stats_clear(&st);
        return;
    }
    st.token = w->client_token;
    struct dbx_buf b = {0};
    dbx_stats_encode(&st, &b);
    client_reply(w->c, &b);
    dbx_buf_free(&b);
    dbx_stats_clear(&st);
    w->c = NULL;
}

void sup_stats_expire(struct sup *s) {
    uint64_t now = dbx_now_ms();
    for (size_t i = 0; i < DBX_ARRAY_SIZE(s->stats.wait); i++) {
        struct stats_wait *w = &s->stats.wait[i];
        if (!w->c || now < w->deadline_ms) continue;
        sup_client_error(w->c, DBX_ERR_FAILED,
                         "the guest did not answer the stats request within %us",
                         STATS_TIMEOUT_MS / 1000);
        w->c = NULL;
    }
}

void sup_stats_client_gone(struct sup *s, struct client *c) {
    for (size_t i = 0; i < DBX_ARRAY_SIZE(s->stats.wait); i++)
        if (s->stats.wait[i].c == c) s->stats.wait[i].c = NULL;
}

bool sup_notice_ok(struct sup *s, struct sess *x, const uint8_t *p, uint32_t n) {
    uint32_t gsid = x->gsid;
    struct dbx_notice nt;
    /* A command is killed once: a flood of notices is forged, and each would cost a journal
     * line (enough of them rotate the audit trail away) and a log line. */
    if (x->notices >= 1) {
        if (x->notices == 1)
            sup_log("session %u: more notice frames from the guest: dropped", gsid);
        x->notices = 2;
        return false;
    }
    x->notices = 1;
    if (dbx_dec_notice(p, n, &nt) < 0) {
        sup_log("session %u: malformed notice frame from the guest (%u bytes): dropped", gsid, n);
        return false;
    }
    sup_log("session %u: %s (limit %llu, value %llu)", gsid,
            nt.kind == DBX_NOTICE_OOM ? "killed: out of memory" : "hit the pids limit",
            (unsigned long long)nt.limit, (unsigned long long)nt.value);
    sup_event_notice(s, gsid, nt.kind, nt.limit, nt.value);
    return true;
}

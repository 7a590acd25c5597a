/* proxy/proxy-tls.c: the server_name of a TLS ClientHello (RFC 8446 4.1.2, RFC 6066 3), so
 * that a tunnel CONNECTed to an allowed name cannot carry a TLS session to another one behind
 * the same address (domain fronting by SNI).  No interception: the bytes are only read.
 *
 * The hello may be split over several handshake records (TLS allows fragmenting it, and
 * post-quantum key shares make it large); it is reassembled up to PROXY_TLS_MAX_HELLO. */
#include "proxy-internal.h"

#define REC_HDR 5u
#define HS_HDR 4u
#define CONTENT_HANDSHAKE 22
#define HS_CLIENT_HELLO 1
#define EXT_SERVER_NAME 0

struct cur {
    const uint8_t *p;
    size_t left;
};

static int take(struct cur *c, size_t n, const uint8_t **ret) {
    if (c->left < n) return -1;
    *ret = c->p;
    c->p += n;
    c->left -= n;
    return 0;
}

static int take_u(struct cur *c, size_t n, uint32_t *ret) {
    const uint8_t *p;
    if (take(c, n, &p) < 0) return -1;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    *ret = v;
    return 0;
}

/* A length-prefixed sub-block (prefix of n bytes) as its own cursor. */
static int take_block(struct cur *c, size_t n, struct cur *ret) {
    uint32_t len;
    const uint8_t *p;
    if (take_u(c, n, &len) < 0 || take(c, len, &p) < 0) return -1;
    *ret = (struct cur){p, len};
    return 0;
}

static int server_name(struct cur ext, char *sni, dbx_error **err) {
    struct cur list;
    if (take_block(&ext, 2, &list) < 0 || ext.left != 0 || list.left == 0)
        return dbx_error_setx(err, EPROTO, "malformed server_name extension");
    bool seen = false;
    while (list.left > 0) {
        uint32_t type;
        struct cur name;
        if (take_u(&list, 1, &type) < 0 || take_block(&list, 2, &name) < 0)
            return dbx_error_setx(err, EPROTO, "malformed server_name extension");
        if (type != 0 || seen)
            return dbx_error_setx(err, EPROTO, "server_name is not exactly one host_name");
        seen = true;
        struct policy_host h;
        const char *why = NULL;
        if (name.left == 0 || policy_host_parse((const char *)name.p, name.left, &h, &why) < 0)
            return dbx_error_setx(err, EPROTO, "server_name is not a valid host name");
        memcpy(sni, h.name, strlen(h.name) + 1);
    }
    return 0;
}

/* The ClientHello body (after the 4-byte handshake header). */
static int parse_hello(struct cur c, char *sni, dbx_error **err) {
    const uint8_t *skip;
    struct cur sid, suites, comp, exts;
    if (take(&c, 2 + 32, &skip) < 0 || take_block(&c, 1, &sid) < 0 || sid.left > 32 ||
        take_block(&c, 2, &suites) < 0 || suites.left < 2 || suites.left % 2 ||
        take_block(&c, 1, &comp) < 0 || comp.left < 1)
        return dbx_error_setx(err, EPROTO, "malformed ClientHello");
    sni[0] = '\0';
    if (c.left == 0) return 0; /* no extensions at all (TLS 1.0 style) */
    if (take_block(&c, 2, &exts) < 0 || c.left != 0)
        return dbx_error_setx(err, EPROTO, "malformed ClientHello extensions");
    /* RFC 8446 4.2: an extension type appears at most once */
    _cleanup_free_ uint8_t *seen = dbx_xcalloc(65536 / 8, 1);
    while (exts.left > 0) {
        uint32_t type;
        struct cur body;
        if (take_u(&exts, 2, &type) < 0 || take_block(&exts, 2, &body) < 0)
            return dbx_error_setx(err, EPROTO, "malformed ClientHello extension");
        if (seen[type / 8] & (1u << (type % 8)))
            return dbx_error_setx(err, EPROTO, "duplicate ClientHello extension %u", type);
        seen[type / 8] |= (uint8_t)(1u << (type % 8));
        if (type == EXT_SERVER_NAME) {
            int r = server_name(body, sni, err);
            if (r < 0) return r;
        }
    }
    return 0;
}

int proxy_tls_sni(const uint8_t *buf, size_t len, char ret_sni[DBX_HOST_MAX + 1], dbx_error **err) {
    _cleanup_free_ uint8_t *msg = NULL;
    size_t have = 0, want = 0, off = 0;
    for (unsigned rec = 0;; rec++) {
        if (rec >= PROXY_TLS_MAX_RECORDS)
            return dbx_error_setx(err, EPROTO, "ClientHello split over more than %u records",
                                  PROXY_TLS_MAX_RECORDS);
        if (len - off < REC_HDR) return 0;
        const uint8_t *h = buf + off;
        size_t rlen = (size_t)h[3] << 8 | h[4];
        if (h[0] != CONTENT_HANDSHAKE || h[1] != 3 || h[2] > 4)
            return dbx_error_setx(err, EPROTO, "not a TLS handshake record");
        if (rlen == 0) return dbx_error_setx(err, EPROTO, "empty TLS handshake record");
        if (len - off - REC_HDR < rlen) return 0;
        if (!msg) msg = dbx_xmalloc(PROXY_TLS_MAX_HELLO + HS_HDR);
        size_t room = (want ? want : PROXY_TLS_MAX_HELLO + HS_HDR) - have;
        if (rlen > room)
            return dbx_error_setx(err, EPROTO, "bytes after the ClientHello in its records");
        memcpy(msg + have, h + REC_HDR, rlen);
        have += rlen;
        off += REC_HDR + rlen;
        if (!want && have >= HS_HDR) {
            if (msg[0] != HS_CLIENT_HELLO)
                return dbx_error_setx(err, EPROTO, "first handshake message is not a ClientHello");
            want = HS_HDR + ((size_t)msg[1] << 16 | (size_t)msg[2] << 8 | msg[3]);
            if (want > PROXY_TLS_MAX_HELLO + HS_HDR)
                return dbx_error_setx(err, EPROTO, "ClientHello larger than %u bytes",
                                      PROXY_TLS_MAX_HELLO);
            if (have > want)
                return dbx_error_setx(err, EPROTO, "bytes after the ClientHello in its records");
        }
        if (want && have == want) break;
    }
    char sni[DBX_HOST_MAX + 1];
    int r = parse_hello((struct cur){msg + HS_HDR, want - HS_HDR}, sni, err);
    if (r < 0) return r;
    memcpy(ret_sni, sni, strlen(sni) + 1);
    return 1;
}

/* policy/policy-net.c: request hosts and what the allow patterns let through: the pure half
 * of the egress proxy's decision (R8 in docs/SECURITY.md's sources: decisions use the address
 * actually connected, in every spelling).  The grammar of names and patterns is profiles/'s
 * (profile_host_name_parse, profile_allow_parse), the address classes common/'s.
 *
 * Request hosts accept exactly one spelling of an IPv4 address (the canonical dotted quad),
 * because inet_aton and browsers also read 127.1, 2130706433, 0x7f.0.0.1 and 0177.0.0.1 as
 * 127.0.0.1: a matcher that compares text would otherwise be bypassed. */
#include "policy-internal.h"

int policy_host_parse(const char *s, size_t len, struct policy_host *ret, const char **why) {
    *ret = (struct policy_host){0};
    if (len > 0 && s[0] == '[') {
        if (len < 3 || s[len - 1] != ']' ||
            dbx_addr_parse(s + 1, len - 2, AF_INET6, &ret->addr) < 0) {
            *why = "not a bracketed IPv6 address";
            return -EINVAL;
        }
    } else if (dbx_addr_parse(s, len, AF_INET, &ret->addr) < 0) {
        /* the name grammar of the allow patterns (profiles/), so that what a pattern names
         * is what a request can name */
        if (profile_host_name_parse(s, len, ret->name, why) < 0) {
            ret->name[0] = '\0';
            return -EINVAL;
        }
        return 0;
    }
    ret->is_addr = true;
    dbx_addr_format(&ret->addr, ret->name);
    return 0;
}

/* ---- allow patterns --------------------------------------------------------------------- */

int policy_pattern_parse(const char *s, struct profile_allow *ret, dbx_error **err) {
    const char *why = NULL;
    if (profile_allow_parse(s, ret, &why) < 0)
        return dbx_error_setx(err, EINVAL, "network.allow: '%s': %s", s, why);
    return 0;
}

static bool port_ok(const struct profile_allow *p, uint16_t port) {
    return p->port ? port == p->port : port == 443 || port == 80;
}

static bool addr_in(const struct profile_allow *p, const struct dbx_addr *a) {
    return p->kind == PROFILE_ALLOW_ADDR && dbx_addr_in(a, &p->addr, p->prefix);
}

bool policy_pattern_match(const struct profile_allow *p, const struct policy_host *h,
                          uint16_t port) {
    if (!port_ok(p, port)) return false;
    if (h->is_addr) return addr_in(p, &h->addr);
    switch (p->kind) {
    case PROFILE_ALLOW_NAME:
        return strcmp(h->name, p->name) == 0;
    case PROFILE_ALLOW_SUFFIX: {
        /* on a label boundary, and never the bare domain */
        size_t hl = strlen(h->name), sl = strlen(p->name);
        return hl > sl + 1 && h->name[hl - sl - 1] == '.' &&
               strcmp(h->name + hl - sl, p->name) == 0;
    }
    default:
        return false;
    }
}

bool policy_allowed(const struct profile_allow *pats, size_t n, const struct policy_host *h,
                    uint16_t port) {
    for (size_t i = 0; i < n; i++)
        if (policy_pattern_match(&pats[i], h, port)) return true;
    return false;
}

const char *policy_addr_refused(const struct profile_allow *pats, size_t n,
                                const struct dbx_addr *a) {
    enum dbx_addr_class c = dbx_addr_classify(a);
    if (c == DBX_ADDR_PUBLIC) return NULL;
    for (size_t i = 0; i < n; i++)
        if (addr_in(&pats[i], a)) return NULL;
    return dbx_addr_class_name(c);
}

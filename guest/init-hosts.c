/* guest/init-hosts.c: the box's own names in /etc/hosts, written at SETUP.
 *
 * Found in use: an image has no /etc/hosts of its own (Debian's and Ubuntu's OCI images leave it
 * to the runtime, as Docker writes one into every container), and without it `localhost` did
 * not resolve in a box.  A dev server told to listen on localhost failed to start (Node:
 * "getaddrinfo EAI_AGAIN localhost"), `curl localhost:3000` in the box failed, and neither did
 * the box's hostname (sudo's "unable to resolve host", Java's getLocalHost).
 *
 * So /etc/hosts gets a block of ours between two marker lines at its end, as the CA bundles do
 * (init-ca.c): localhost on 127.0.0.1 (below) unless the rest of the file names it already, and
 * the hostname on 127.0.1.1 (Debian's convention for a machine's own name)
 * unless the rest names it.  The file is made when the image has none.  Each boot replaces the
 * previous block, so a hostname changed in the profile takes the old one's place, while what
 * the image or the user wrote outside the block stays as it is, and a line of the user's for a
 * name drops ours.  The root disk persists and the box's root may have planted anything there:
 * nothing is followed, and a file we cannot write is a console line, not a failed boot.
 *
 * localhost is 127.0.0.1 only (::1 keeps ip6-localhost and ip6-loopback).  The box has no IPv6
 * network (eth0 has IPv6 off in mode open), and with Debian's "::1 localhost" line too, a server
 * that listens on "localhost" takes ::1, the resolver's first answer, while a client that asks
 * with AI_ADDRCONFIG, as Node's http does, gets only 127.0.0.1 where the machine's one
 * non-loopback address is IPv4 (glibc keeps only the families it has such an address of): Node's
 * server and client on "localhost" could not meet (measured with Node 20 in a namespace like
 * that: "server on ::1", "ECONNREFUSED 127.0.0.1").  Docker writes the ::1 line and its users
 * meet this (moby#35954, docker/for-linux#250).  Where an image names ::1 localhost itself, a
 * forward still reaches a server there (init-sock.c).
 *
 * /etc/hostname says the box's name too: an image built by mmdebstrap or debootstrap carries the
 * name of the machine that built it, and scripts, shell prompts and tools read the file rather
 * than ask the kernel (Docker writes it into every container as well). */
#define _GNU_SOURCE
#include "init-internal.h"

#include <ctype.h>

#define HOSTS_MARK_BEGIN "# devbox: this box's names (begin)\n"
#define HOSTS_MARK_END "# devbox: this box's names (end)\n"
#define HOSTS_LOCALHOST "127.0.0.1\tlocalhost\n::1\tip6-localhost ip6-loopback\n"
#define HOSTS_OWN_ADDR "127.0.1.1"

static const struct guest_marks hosts_marks = {HOSTS_MARK_BEGIN, HOSTS_MARK_END};

/* Whether a line of text (hosts(5): an address, then names; '#' starts a comment) gives name
 * an address.  Names compare without case, as the resolver's do. */
static bool hosts_names(const char *text, const char *name) {
    size_t want = strlen(name);
    for (const char *l = text; *l;) {
        const char *eol = strchrnul(l, '\n');
        const char *hash = memchr(l, '#', (size_t)(eol - l));
        const char *end = hash ? hash : eol;
        int field = 0;
        for (const char *p = l; p < end;) {
            while (p < end && isspace((unsigned char)*p))
                p++;
            const char *w = p;
            while (p < end && !isspace((unsigned char)*p))
                p++;
            if (p == w) break;
            if (field++ > 0 && (size_t)(p - w) == want && strncasecmp(w, name, want) == 0)
                return true;
        }
        l = *eol ? eol + 1 : eol;
    }
    return false;
}

/* Our block for the rest of the file: what it does not name already. */
static char *hosts_body(const char *rest, const void *ctx) {
    const char *hostname = ctx;
    bool local = !hosts_names(rest, "localhost");
    bool own =
        hostname[0] && strcasecmp(hostname, "localhost") != 0 && !hosts_names(rest, hostname);
    return dbx_xasprintf("%s%s%s%s", local ? HOSTS_LOCALHOST : "", own ? HOSTS_OWN_ADDR "\t" : "",
                         own ? hostname : "", own ? "\n" : "");
}

/* The profile allows a host name label only; SETUP's decoder any string up to 64 bytes.  One
 * that is not a single hosts(5) name would write a line that means something else. */
static bool hosts_name_ok(const char *name) {
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.') return false;
    return true;
}

int hosts_install(int etc, const char *hostname, char ***notes, dbx_error **err) {
    if (!hosts_name_ok(hostname)) hostname = "";
    return guest_block_file(etc, "hosts", "/etc/hosts", &hosts_marks, hosts_body, hostname, true,
                            notes, err);
}

int hostname_install(int etc, const char *hostname, char ***notes, dbx_error **err) {
    if (!hostname[0] || !hosts_name_ok(hostname)) return 0;
    _cleanup_free_ char *line = dbx_xasprintf("%s\n", hostname);
    return guest_own_file_in(etc, "hostname", "/etc/hostname", line, strlen(line), notes, err) < 0
               ? -1
               : 0;
}

/* profiles/profiles.h: the repo's devbox.ini.  For now the [box] section (image, cpus,
 * memory); the full profile format (limits, security, workspace, env, network, inheritance
 * and trust) extends this struct.  Library code: no printing. */
#pragma once

#include "../common/common.h"

#define PROFILE_FILE "devbox.ini"
#define PROFILE_MAX_BYTES (64u * 1024u)
#define PROFILE_MAX_LINE 199u /* inih r55 splits longer lines; refuse them instead */

struct profile {
    char *image;         /* image name; default "default" */
    unsigned cpus;       /* vCPUs; default 1 */
    uint64_t memory;     /* VM memory in bytes; default 512 MiB */
    char *source;        /* "built-in" or the profile file's path */
};

/* Defaults, then `devbox.ini` in the directory `root_fd` refers to if present.  The file is
 * opened without following symlinks (a symlinked devbox.ini is refused), must be a regular
 * file under PROFILE_MAX_BYTES without NUL bytes or lines over PROFILE_MAX_LINE; unknown
 * sections and keys, duplicate keys and bad values are errors that name `path:line`
 * (`display_path` is used in messages). */
int profile_load(int root_fd, const char *display_path, struct profile *ret, dbx_error **err);
void profile_clear(struct profile *p);

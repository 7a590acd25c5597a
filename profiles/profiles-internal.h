/* profiles/profiles-internal.h: shared between the files of profiles/ only.
 *
 * A profile file is read in two steps.  profiles-parse.c checks the bytes (size, NUL and
 * control bytes, line length), runs inih over them one line per reader call and collects a
 * `layer`: the entries in file order, each with its line, continuation lines kept as extra
 * parts.  It reports syntax errors, unknown sections and keys (with a did-you-mean) and
 * duplicate keys.  profiles-keys.c then applies layers in chain order onto a struct profile
 * through the key table (value checks, provenance), and checks what spans keys
 * (limits.memory below box.memory...).  profiles-load.c walks the extends chain. */
#pragma once

#include "profiles.h"

#define PROF_MAX_ERRORS 100u /* problems listed in one error message; more are counted */
#define PROF_MAX_NAME 64u    /* built-in profile name length */

/* One value as written: the key line's value, or one continuation line's. */
struct prof_part {
    char *text;
    unsigned line;
};

struct prof_entry {
    char *section; /* "box", ...; the top level is stored as "profile" */
    char *key;
    struct prof_part *parts; /* parts[0] from the key line; more from continuation lines */
    size_t nparts;
    unsigned line;
};

enum prof_kind {
    PROF_KIND_REPO,    /* devbox.ini or a repo file it extends */
    PROF_KIND_BUILTIN, /* profiles/NAME.ini shipped with devbox */
    PROF_KIND_USER,    /* config.ini: [ceilings] and [defaults] with "section.key" names */
};

struct profile_layer {
    enum prof_kind kind;
    char *name;  /* file name in messages: "devbox.ini", "ci/base.ini", "/usr/.../agent.ini" */
    char *where; /* provenance prefix: like name, "built-in agent.ini" for built-ins */
    struct prof_entry *v;
    size_t n;
    char *extends; /* [profile] extends, or NULL */
    unsigned extends_line;
    /* config.ini's [secret NAME] section lines, in file order (text = NAME, valid and unique;
     * at most PROFILE_MAX_SECRETS): their entries are in v under section "secret NAME" */
    struct prof_part *secrets;
    size_t nsecrets;
};

/* Error list: a NULL-terminated vector of "file:line: problem" strings. */
void prof_errf(char ***errors, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Join into one dbx_error (EINVAL), one problem per line.  Returns -EINVAL. */
int prof_errors_raise(char **errors, dbx_error **err);

/* ---- profiles-parse.c ---- */

/* Parse buf (len bytes, NUL-terminated) into *layer (kind, name and where set by the caller).
 * Problems are appended to *errors; the layer holds whatever parsed.  Returns the number of
 * problems found. */
size_t prof_parse(const char *buf, size_t len, struct profile_layer *layer, char ***errors);
void prof_layer_free(struct profile_layer *l);
void prof_layer_freep(struct profile_layer **l);
/* Levenshtein distance (ASCII case-insensitive) from a to b, for did-you-mean; UINT32_MAX
 * when a or b is longer than 64 bytes or the distance is not below strlen(a). */
unsigned prof_distance(const char *a, const char *b);

/* User-only keys (config.ini): [ceilings] cpus/memory/disk, [registries] insecure/ca_file,
 * [network] listen/ca_files, [setup] allow (also a profile key: in a profile, the repo's
 * own).  NULL when (section, key) is not one. */
struct prof_user_key {
    const char *section, *key;
    unsigned flags; /* PROF_LIST */
};
const struct prof_user_key *prof_user_key_find(const char *section, const char *key);
/* The closest user-only key of `section` within distance 2, or NULL. */
const char *prof_user_suggest(const char *section, const char *key);
/* A config.ini-only section ("ceilings", "registries")? */
bool prof_user_section(const char *section);

/* ---- profiles-load.c ---- */

/* A user-only list (config.ini): entries comma- or whitespace-separated on any number of
 * lines, each normalized by `norm`, no duplicates, at most `max`; problems "NAME:LINE:
 * [section] key: ..." appended.  *dst is replaced only when every entry is good. */
void prof_user_list(const struct profile_layer *l, const struct prof_entry *e,
                    char *(*norm)(const char *, const char **), size_t max, char ***dst,
                    char ***errors);

/* ---- profiles-secrets.c ---- */

/* "secret NAME" (a section entries of [secret NAME] are stored under) -> NAME, else NULL. */
const char *prof_secret_section(const char *section);
/* [A-Za-z_][A-Za-z0-9_]{0,63} */
bool prof_secret_name_ok(const char *s);
/* The keys of a [secret NAME] section (flags PROF_LIST for hosts), or NULL. */
const struct prof_user_key *prof_secret_key_find(const char *key);
/* The closest [secret] key within distance 2, or NULL. */
const char *prof_secret_suggest(const char *key);
/* config.ini: build u->secrets from l's [secret NAME] sections (problems appended). */
void prof_user_secrets(struct profile_user *u, const struct profile_layer *l, char ***errors);
/* After a chain is applied: every name in p->secrets_use must be declared in user (NULL: none
 * are); copies the declarations into p->secrets and, in allowlist mode, adds their hosts to
 * p->allow (origin "network.allow[HOST]" naming the secret). */
void prof_secrets_resolve(struct profile *p, const struct profile_user *user, char ***errors);
/* A used secret needs network mode allowlist (part of prof_check). */
void prof_secrets_check(const struct profile *p, char ***errors);
/* Forget every used secret (profile_set "network.mode" = "none"), origins to `where`. */
void prof_secrets_drop(struct profile *p, const char *where);
void prof_secrets_free(struct profile_secret *v, size_t n);

/* ---- profiles-mounts.c ---- */

/* One [mounts] line onto p->mounts (syntax, the guest path's own rules, merging by HOST as
 * written; `none` drops).  Host paths are resolved later, by prof_mounts_resolve. */
void prof_mount_apply(struct profile *p, const struct profile_layer *l, const struct prof_entry *e,
                      char ***errors);
/* After a chain is applied (protect is final): resolve every host path against root (NULL:
 * no repo, e.g. a built-in loaded alone) and check what spans mounts.  Problems appended. */
void prof_mounts_resolve(struct profile *p, const char *root, const struct profile_user *user,
                         char ***errors);
void prof_mounts_free(struct profile_mount *v, size_t n);

/* ---- profiles-names.c ---- */

/* Each returns a normalized copy (caller frees), or NULL with *why (static). */
char *prof_allow_normalize(const char *in, const char **why);    /* profile.h's allow forms */
char *prof_resolve_normalize(const char *in, const char **why);  /* "name:addr" */
char *prof_addr_normalize(const char *in, const char **why);     /* one IP address */
char *prof_registry_normalize(const char *in, const char **why); /* host[:port] */
/* Decimal 1..65535, no sign, no leading zero. */
bool prof_port_parse(const char *s, uint16_t *ret);
/* The docker reference grammar (sha256 digests only); false with *why. */
bool prof_image_ref_ok(const char *ref, const char **why);

/* ---- profiles-keys.c ---- */

enum { PROF_LIST = 1u << 0 };
struct prof_apply;
typedef void (*prof_parser)(struct prof_apply *a, const struct prof_entry *e);
struct prof_key {
    const char *section, *key;
    prof_parser parse;
    unsigned flags;
};
extern const struct prof_key prof_keys[];
extern const size_t prof_nkeys;
extern const char *const prof_sections[]; /* NULL-terminated */

/* The key's table entry, or NULL; [env] accepts any name (checked when applied). */
const struct prof_key *prof_key_find(const char *section, const char *key);
/* Closest known key of `section` (or section name when key is NULL) within distance 2. */
const char *prof_suggest(const char *section, const char *key);

/* The compiled-in built-in `default` (profiles/default.ini says the same). */
void prof_init_default(struct profile *p);
/* Apply every entry of `l` onto p (key by key; protect accumulates).  Problems appended. */
void prof_apply_layer(struct profile *p, const struct profile_layer *l, char ***errors);
/* Checks spanning keys, on the effective profile. */
void prof_check(const struct profile *p, char ***errors);
void prof_origin_set(struct profile *p, const char *key, const char *where);
/* The same on any origin vector (struct profile_user's). */
void prof_origins_set(struct profile_origin **v, size_t *n, const char *key, const char *where);
void prof_origin_drop(struct profile *p, const char *key);
/* Remove s from the vector (in place); true if it was there. */
bool prof_strv_remove(char **v, const char *s);
bool prof_strv_contains(char *const *v, const char *s);
/* "a, b, c" (caller frees; "" for none). */
char *prof_strv_join(char *const *v);
/* Normalize a repo-relative path ("./a//b/" -> "a/b"); NULL with *why set when it is
 * absolute, empty, "." or has a ".." component. */
char *prof_path_normalize(const char *s, const char **why);
/* "512M", "2G", "1536M" ... exact in the largest unit that divides. */
char *prof_size_str(uint64_t v);
/* 1500 -> "1.5" */
char *prof_milli_str(uint32_t m);

/* ---- profiles-devcontainer.c ---- */

/* JSON with comments -> JSON, in place: `//` and block comments outside strings and one
 * trailing comma before '}' or ']' become spaces (newlines are kept, so jansson's line numbers
 * stay right).  -EINVAL with *ret_line set for a block comment without its end. */
int prof_jsonc_strip(char *s, size_t len, unsigned *ret_line);
/* profile_devcontainer_translate, also giving, for each line of the INI (line N at index
 * N - 1), the JSON key it came from ("image", "postCreateCommand.install", "" for comments
 * and section lines); NULL-terminated; ret_line_keys may be NULL. */
int prof_devcontainer_translate(const char *json, size_t len, const char *fname, char **ret_ini,
                                char ***ret_warnings, char ***ret_line_keys, dbx_error **err);

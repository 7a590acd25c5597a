/* sandbox/sandbox-ca.c: the host's CA certificates for SETUP's ca_pem (dbx_ca_load).
 *
 * Each certificate is parsed with OpenSSL and written back out with PEM_write_bio_X509, so
 * what reaches the guest is only well-formed certificates in one spelling (the one
 * dbx_ca_pem_check accepts), whatever comments, keys or line ends the files had.
 *
 * Symlinks are followed, on purpose: these are the host user's own files named in the user's
 * own configuration (never a path from the repository or the box, R4 is about those), and the
 * usual CA directories are full of them (/etc/ssl/certs/NAME.pem -> /usr/share/ca-certificates/
 * ...; update-ca-certificates links /usr/local/share/ca-certificates into it). */
#define _GNU_SOURCE
#include "sandbox-internal.h"

#include <dirent.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#define CA_FILE_MAX (64u * 1024u) /* one certificate file */
#define CA_DIR_MAX 1024u          /* entries read from one directory */

struct ca_acc {
    struct dbx_buf out; /* the certificates so far, PEM */
    char **warnings;
};

static int ssl_error(dbx_error **err, const char *path) {
    char msg[256];
    ERR_error_string_n(ERR_peek_last_error(), msg, sizeof(msg));
    ERR_clear_error();
    return dbx_error_setx(err, EINVAL, "'%s': %s", path, msg);
}

/* Append one certificate (re-encoded) unless an earlier file had the same one. */
static int add_cert(struct ca_acc *acc, X509 *x, const char *path, dbx_error **err) {
    BIO *mem = BIO_new(BIO_s_mem());
    if (!mem || !PEM_write_bio_X509(mem, x)) {
        BIO_free(mem);
        return ssl_error(err, path);
    }
    char *p = NULL;
    long n = BIO_get_mem_data(mem, &p);
    _cleanup_free_ char *pem = dbx_xstrndup(p, (size_t)n);
    BIO_free(mem);
    dbx_buf_put_u8(&acc->out, 0); /* NUL for strstr, taken back below */
    acc->out.len--;
    if (strstr((const char *)acc->out.data, pem)) return 0;
    if (acc->out.len + strlen(pem) > DBX_MAX_CA_PEM)
        return dbx_error_setx(err, EFBIG, "'%s': the CA certificates come to more than %u KiB",
                              path, DBX_MAX_CA_PEM / 1024);
    dbx_buf_put(&acc->out, pem, strlen(pem));
    return 0;
}

/* Every CERTIFICATE block of a file; other PEM blocks (a key, a CRL) and text between blocks
 * are skipped, a block that does not decode is an error, a file without any is a warning. */
static int load_file(struct ca_acc *acc, const char *path, dbx_error **err) {
    /* O_NONBLOCK: a FIFO must not hang devbox before fstat tells what it is */
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return dbx_error_set(err, errno, "open '%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0) return dbx_error_set(err, errno, "stat '%s'", path);
    if (!S_ISREG(st.st_mode)) return dbx_error_setx(err, EINVAL, "'%s': not a regular file", path);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (dbx_read_all(fd, CA_FILE_MAX, &text, &len, err) < 0)
        return dbx_error_wrap(err, "'%s' (a certificate file has at most %u KiB)", path,
                              CA_FILE_MAX / 1024);
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    if (!bio) return ssl_error(err, path);
    ERR_clear_error();
    unsigned found = 0;
    X509 *x;
    int r = 0;
    while (r == 0 && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        found++;
        r = add_cert(acc, x, path, err);
        X509_free(x);
    }
    BIO_free(bio);
    if (r < 0) return r;
    unsigned long e = ERR_peek_last_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
        return ssl_error(err, path); /* a CERTIFICATE block that does not decode */
    ERR_clear_error();
    if (found == 0) {
        _cleanup_free_ char *w = dbx_xasprintf("'%s': no PEM certificate in it (skipped)", path);
        acc->warnings = dbx_strv_push(acc->warnings, w);
    }
    return 0;
}

static bool ca_name(const char *n) {
    size_t l = strlen(n);
    return n[0] != '.' && l > 4 &&
           (strcmp(n + l - 4, ".crt") == 0 || strcmp(n + l - 4, ".pem") == 0);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* dir's *.crt and *.pem regular files in name order; at depth 0 also those of each
 * subdirectory (update-ca-certificates' /usr/local/share/ca-certificates/NAME/x.crt). */
static int load_dir(struct ca_acc *acc, const char *dir, int depth, dbx_error **err) {
    DIR *d = opendir(dir);
    if (!d) return dbx_error_set(err, errno, "open directory '%s'", dir);
    _cleanup_strv_ char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n <= CA_DIR_MAX)
        if (de->d_name[0] != '.') {
            names = dbx_strv_push(names, de->d_name);
            n++;
        }
    closedir(d);
    if (n > CA_DIR_MAX)
        return dbx_error_setx(err, E2BIG, "'%s': more than %u entries", dir, CA_DIR_MAX);
    if (n) qsort(names, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *p = dbx_xasprintf("%s/%s", dir, names[i]);
        struct stat st;
        if (stat(p, &st) < 0) continue; /* a dangling link: nothing to trust */
        int r = 0;
        if (S_ISDIR(st.st_mode) && depth == 0)
            r = load_dir(acc, p, 1, err);
        else if (S_ISREG(st.st_mode) && ca_name(names[i]))
            r = load_file(acc, p, err);
        if (r < 0) return r;
    }
    return 0;
}

int dbx_ca_load(char *const *paths, char **ret_pem, char ***ret_warnings, dbx_error **err) {
    struct ca_acc acc = {0};
    int r = 0;
    for (size_t i = 0; paths && paths[i] && r == 0; i++) {
        bool optional = paths[i][0] == '-';
        const char *p = paths[i] + optional;
        struct stat st;
        if (p[0] != '/')
            r = dbx_error_setx(err, EINVAL, "'%s': not an absolute path", p);
        else if (stat(p, &st) < 0)
            r = errno == ENOENT && optional ? 0 : dbx_error_set(err, errno, "'%s'", p);
        else if (S_ISDIR(st.st_mode))
            r = load_dir(&acc, p, 0, err);
        else
            r = load_file(&acc, p, err);
    }
    dbx_buf_put_u8(&acc.out, 0);
    _cleanup_free_ char *pem = (char *)acc.out.data; /* owns the buffer from here */
    if (r == 0 && dbx_ca_pem_check(pem, err) < 0)    /* what OpenSSL wrote: cannot happen */
        r = dbx_error_wrap(err, "the CA certificates as re-encoded");
    if (r < 0) {
        dbx_strv_free(acc.warnings);
        return -1;
    }
    *ret_pem = TAKE_PTR(pem);
    *ret_warnings = acc.warnings;
    return 0;
}

char *const *dbx_ca_paths(const struct profile_user *u) {
    static char *const def[] = {"-/usr/local/share/ca-certificates", NULL};
    return u->ca_files_set ? u->ca_files : def;
}

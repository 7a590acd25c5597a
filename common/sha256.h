/* common/sha256.h: SHA-256 (FIPS 180-4) for code that cannot use OpenSSL: the static guest
 * init checks the policy plan's checksum with it.  Host code may use it too. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct dbx_sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t n;
};
void dbx_sha256_init(struct dbx_sha256 *c);
void dbx_sha256_update(struct dbx_sha256 *c, const void *p, size_t n);
void dbx_sha256_final(struct dbx_sha256 *c, uint8_t out[32]);
void dbx_sha256(const void *p, size_t n, uint8_t out[32]);
/* The digest as 64 lowercase hex digits and a NUL. */
void dbx_sha256_hex(const uint8_t md[32], char out[65]);

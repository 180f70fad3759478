/*
 * crypto.h - randomness from the OS, SHA-256 (OpenSSL's libcrypto) and hex.
 *
 * Thread-safe; no state of its own.
 */
#ifndef PODIUM_LIB_CRYPTO_H
#define PODIUM_LIB_CRYPTO_H

#include <stddef.h>

#define CRYPTO_SHA256_LEN 32

/* Fill buf with n bytes from getrandom(2). 0, or -1 (errno set). */
int crypto_random(void *buf, size_t n);

/* SHA-256 of data[0..n) into out[32]. 0, or -1 if libcrypto failed. */
int crypto_sha256(const void *data, size_t n, unsigned char out[CRYPTO_SHA256_LEN]);

/* Lower-case hex of in[0..n) into out, which holds 2n+1 bytes. */
void crypto_hex(const unsigned char *in, size_t n, char *out);

#endif

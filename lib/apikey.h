/*
 * apikey.h - the format of Podium's API keys.
 *
 * A key is "pdm_" followed by 64 hex digits: 32 bytes from the OS's random
 * source. Its first APIKEY_PREFIX_LEN characters ("pdm_" and 8 digits) are
 * stored in clear to identify it in listings and logs; the key itself is
 * stored only as its SHA-256. A fast hash is right here: the key carries 256
 * bits of entropy, so there is nothing for a slow password hash to protect.
 */
#ifndef PODIUM_LIB_APIKEY_H
#define PODIUM_LIB_APIKEY_H

#include <stddef.h>

#include "lib/crypto.h"

#define APIKEY_LEN 68          /* "pdm_" + 64 hex digits */
#define APIKEY_PREFIX_LEN 12

struct apikey {
    char key[APIKEY_LEN + 1];
    char prefix[APIKEY_PREFIX_LEN + 1];
    unsigned char hash[CRYPTO_SHA256_LEN];
};

/* A new random key with its prefix and hash. 0, or -1 on failure. */
int apikey_generate(struct apikey *k);

/* 1 when s (of length n) has the shape of a key, else 0. Cheap; lets the
 * server refuse garbage before hashing or touching the database. */
int apikey_well_formed(const char *s, size_t n);

/* The stored hash of a presented key. 0, or -1. */
int apikey_hash(const char *s, size_t n, unsigned char out[CRYPTO_SHA256_LEN]);

#endif

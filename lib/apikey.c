/* apikey.c - see apikey.h. */
#include "lib/apikey.h"

#include <string.h>

int apikey_generate(struct apikey *k)
{
    unsigned char raw[32];
    if (crypto_random(raw, sizeof raw) < 0) return -1;
    memcpy(k->key, "pdm_", 4);
    crypto_hex(raw, sizeof raw, k->key + 4);
    memcpy(k->prefix, k->key, APIKEY_PREFIX_LEN);
    k->prefix[APIKEY_PREFIX_LEN] = '\0';
    return apikey_hash(k->key, APIKEY_LEN, k->hash);
}

int apikey_well_formed(const char *s, size_t n)
{
    if (n != APIKEY_LEN || memcmp(s, "pdm_", 4) != 0) return 0;
    for (size_t i = 4; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return 1;
}

int apikey_hash(const char *s, size_t n, unsigned char out[CRYPTO_SHA256_LEN])
{
    return crypto_sha256(s, n, out);
}

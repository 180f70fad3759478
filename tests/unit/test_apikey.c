/* test_apikey.c - key format, hashing (SHA-256 test vectors) and hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/apikey.h"
#include "lib/crypto.h"

static void sha256_vectors(void **state)
{
    unsigned char h[32];
    char hex[65];
    assert_int_equal(crypto_sha256("abc", 3, h), 0);
    crypto_hex(h, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(crypto_sha256("", 0, h), 0);
    crypto_hex(h, 32, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void generated_keys_are_well_formed_and_distinct(void **state)
{
    struct apikey a, b;
    assert_int_equal(apikey_generate(&a), 0);
    assert_int_equal(apikey_generate(&b), 0);
    assert_int_equal(strlen(a.key), APIKEY_LEN);
    assert_true(apikey_well_formed(a.key, strlen(a.key)));
    assert_memory_equal(a.prefix, a.key, APIKEY_PREFIX_LEN);
    assert_int_equal(strlen(a.prefix), APIKEY_PREFIX_LEN);
    assert_string_not_equal(a.key, b.key);
    unsigned char h[32];
    assert_int_equal(apikey_hash(a.key, APIKEY_LEN, h), 0);
    assert_memory_equal(h, a.hash, 32);
    assert_memory_not_equal(a.hash, b.hash, 32);
}

static void malformed_keys_rejected(void **state)
{
    struct apikey a;
    apikey_generate(&a);
    char k[APIKEY_LEN + 2];
    memcpy(k, a.key, APIKEY_LEN + 1);
    assert_false(apikey_well_formed(k, APIKEY_LEN - 1));
    k[10] = 'G';
    assert_false(apikey_well_formed(k, APIKEY_LEN));
    memcpy(k, a.key, APIKEY_LEN + 1);
    k[0] = 'x';
    assert_false(apikey_well_formed(k, APIKEY_LEN));
    assert_false(apikey_well_formed("", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_vectors),
        cmocka_unit_test(generated_keys_are_well_formed_and_distinct),
        cmocka_unit_test(malformed_keys_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_validate.c - request field validation collects every problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "server/validate.h"

static void collects_all_errors(void **state)
{
    cJSON *in = cJSON_Parse("{\"name\": 5, \"role\": \"boss\", \"extra\": true}");
    struct validator v;
    validator_init(&v);
    validate_only(&v, in, NULL, (const char *const[]){"name", "role", NULL});
    assert_null(validate_string(&v, in, "name", 1, 1, 10));
    assert_null(validate_enum(&v, in, "role", (const char *const[]){"admin", "member", NULL}, "member"));
    assert_true(validator_failed(&v));
    cJSON *errors = validator_take(&v);
    assert_int_equal(cJSON_GetArraySize(errors), 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(errors, 0), "field")->valuestring, "extra");
    cJSON_Delete(errors);
    cJSON_Delete(in);
}

static void strings_checked_for_length_utf8_and_controls(void **state)
{
    struct validator v;
    validator_init(&v);
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "ok", "h\xc3\xa9llo");          /* 5 code points */
    cJSON_AddStringToObject(in, "bad", "a\xc3\x28");            /* invalid UTF-8 */
    cJSON_AddStringToObject(in, "overlong", "\xc0\xaf");        /* overlong '/' */
    cJSON_AddStringToObject(in, "ctl", "a\x01");
    assert_string_equal(validate_string(&v, in, "ok", 1, 5, 5), "h\xc3\xa9llo");
    assert_false(validator_failed(&v));
    assert_null(validate_string(&v, in, "bad", 1, 0, 10));
    assert_null(validate_string(&v, in, "overlong", 1, 0, 10));
    assert_null(validate_string(&v, in, "ctl", 1, 0, 10));
    assert_null(validate_string(&v, in, "ok", 1, 6, 10));
    assert_null(validate_string(&v, in, "missing", 0, 0, 10));
    cJSON *errors = validator_take(&v);
    assert_int_equal(cJSON_GetArraySize(errors), 4);
    cJSON_Delete(errors);
    cJSON_Delete(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(collects_all_errors),
        cmocka_unit_test(strings_checked_for_length_utf8_and_controls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

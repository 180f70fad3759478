/* test_etag_cors.c - If-None-Match matching (lists, weak tags, "*", junk)
 * and the CORS allow-list (what is an origin, what matches). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "server/cors.h"
#include "server/etag.h"

static void etags_are_made_and_matched(void **state)
{
    char strong[ETAG_MAX], weak[ETAG_MAX];
    etag_job(strong, 42, "lb.json", 0);
    etag_job(weak, 42, "job", 1);
    assert_string_equal(strong, "\"p1-42-lb.json\"");
    assert_string_equal(weak, "W/\"p1-42-job\"");

    assert_true(etag_match("\"p1-42-lb.json\"", strong));
    assert_true(etag_match("W/\"p1-42-lb.json\"", strong));      /* weak comparison */
    assert_true(etag_match("\"p1-42-job\"", weak));
    assert_true(etag_match("\"a\", W/\"p1-42-job\" , \"b\"", weak));
    assert_true(etag_match("*", strong));
    assert_false(etag_match("\"p1-41-lb.json\"", strong));
    assert_false(etag_match("\"p1-42-lb.csv\"", strong));
    assert_false(etag_match("\"p1-42-lb.json", strong));         /* unterminated */
    assert_false(etag_match("p1-42-lb.json", strong));           /* unquoted */
    assert_false(etag_match("\"p1-42-lb.jsonx\"", strong));
    assert_false(etag_match("\"xp1-42-lb.json\"", strong));      /* no substring match */
    assert_false(etag_match("", strong));
    assert_false(etag_match(NULL, strong));
    assert_false(etag_match(",,, ,", strong));
}

static void cors_lists_are_checked(void **state)
{
    char err[256];
    assert_int_equal(cors_check_list("", err, sizeof err), 0);
    assert_int_equal(cors_check_list("https://a.example,http://localhost:5173", err, sizeof err), 0);
    assert_int_equal(cors_check_list(" https://a.example , https://b.example ", err, sizeof err), 0);
    assert_int_equal(cors_check_list("*", err, sizeof err), -1);
    assert_non_null(strstr(err, "'*'"));
    assert_int_equal(cors_check_list("https://a.example/", err, sizeof err), -1);
    assert_int_equal(cors_check_list("https://a.example/app", err, sizeof err), -1);
    assert_int_equal(cors_check_list("a.example", err, sizeof err), -1);
    assert_int_equal(cors_check_list("https://a.example:", err, sizeof err), -1);
    assert_int_equal(cors_check_list("https://a.example:80x", err, sizeof err), -1);
    assert_int_equal(cors_check_list("ftp://a.example", err, sizeof err), -1);
}

static void only_listed_origins_match(void **state)
{
    const char *list = "https://a.example, http://localhost:5173";
    assert_true(cors_allowed(list, "https://a.example"));
    assert_true(cors_allowed(list, "HTTPS://A.example"));
    assert_true(cors_allowed(list, "http://localhost:5173"));
    assert_false(cors_allowed(list, "http://localhost:5174"));
    assert_false(cors_allowed(list, "http://localhost"));
    assert_false(cors_allowed(list, "https://a.example.evil.com"));
    assert_false(cors_allowed(list, "https://evil.com/https://a.example"));
    assert_false(cors_allowed(list, "http://a.example"));
    assert_false(cors_allowed(list, "null"));
    assert_false(cors_allowed(list, ""));
    assert_false(cors_allowed(list, NULL));
    assert_false(cors_allowed("", "https://a.example"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(etags_are_made_and_matched),
        cmocka_unit_test(cors_lists_are_checked),
        cmocka_unit_test(only_listed_origins_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_static_path.c - the pure parts of server/static.c: which request
 * paths map to a file name, content types by extension, and If-None-Match
 * matching. The files themselves are served in
 * tests/integration/test_static.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "server/static.h"

static void test_paths_served(void **state)
{
    char out[600];
    assert_int_equal(static_rel_path("/", out, sizeof out), 0);
    assert_string_equal(out, "index.html");
    assert_int_equal(static_rel_path("/app.js", out, sizeof out), 0);
    assert_string_equal(out, "app.js");
    assert_int_equal(static_rel_path("/vendor/uPlot.esm.js", out, sizeof out), 0);
    assert_string_equal(out, "vendor/uPlot.esm.js");
    assert_int_equal(static_rel_path("/a-b_c.1/d..e", out, sizeof out), 0);   /* dots inside a name are fine */
    assert_string_equal(out, "a-b_c.1/d..e");
}

static void test_paths_refused(void **state)
{
    static const char *const bad[] = {
        "", "app.js", "//", "/..", "/../x", "/a/../b", "/a/..", "/.", "/./a", "/a/./b",
        "/.hidden", "/a/.git/config", "/a//b", "/a/", "/a\\..\\b", "/%2e%2e/x", "/a%2fb",
        "/a b", "/a?b", "/a:b", "/\x01", "/caf\xc3\xa9",
    };
    char out[600];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (static_rel_path(bad[i], out, sizeof out) != -1) fail_msg("served '%s'", bad[i]);
    }
    assert_int_equal(static_rel_path(NULL, out, sizeof out), -1);
    /* Too long for the buffer or for the limit. */
    char small[4];
    assert_int_equal(static_rel_path("/abcd", small, sizeof small), -1);
    char longpath[700];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    assert_int_equal(static_rel_path(longpath, out, sizeof out), -1);
}

static void test_content_types(void **state)
{
    assert_string_equal(static_content_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(static_content_type("vendor/uPlot.esm.js"), "text/javascript; charset=utf-8");
    assert_string_equal(static_content_type("style.CSS"), "text/css; charset=utf-8");
    assert_string_equal(static_content_type("favicon.svg"), "image/svg+xml");
    assert_string_equal(static_content_type("LICENSE"), "application/octet-stream");
    assert_string_equal(static_content_type("a.b/LICENSE"), "application/octet-stream");
    assert_string_equal(static_content_type("x.exe"), "application/octet-stream");
}

static void test_etag_matching(void **state)
{
    const char *tag = "\"12-34-56\"";
    assert_true(static_etag_matches("\"12-34-56\"", tag));
    assert_true(static_etag_matches("W/\"12-34-56\"", tag));
    assert_true(static_etag_matches("\"a\", \"12-34-56\"", tag));
    assert_true(static_etag_matches("\"a\",\"12-34-56\" ", tag));
    assert_true(static_etag_matches("*", tag));
    assert_false(static_etag_matches("\"12-34-5\"", tag));
    assert_false(static_etag_matches("\"12-34-56", tag));
    assert_false(static_etag_matches("", tag));
    assert_false(static_etag_matches(",,", tag));
    assert_false(static_etag_matches(NULL, tag));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_served),
        cmocka_unit_test(test_paths_refused),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_etag_matching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

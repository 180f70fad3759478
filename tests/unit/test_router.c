/* test_router.c - route matching: literals, {params}, 405 with Allow, and
 * hostile paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "server/router.h"

static int h(struct http_req *r) { return 0; }

static const struct route table[] = {
    {"GET", "/healthz", ROUTE_PUBLIC, h, "", NULL},
    {"GET", "/v1/teams/{team_id}", ROUTE_MEMBER, h, "", NULL},
    {"GET", "/v1/teams/{team_id}/keys", ROUTE_ADMIN, h, "", NULL},
    {"POST", "/v1/teams/{team_id}/keys", ROUTE_ADMIN, h, "", NULL},
    {"DELETE", "/v1/keys/{key_id}", ROUTE_ADMIN, h, "", NULL},
};
#define N (sizeof table / sizeof table[0])

static void literal_and_params(void **state)
{
    const struct route *r;
    struct route_params p;
    assert_int_equal(router_match(table, N, "GET", "/healthz", &r, &p, NULL, 0), ROUTE_FOUND);
    assert_ptr_equal(r, &table[0]);
    assert_int_equal(router_match(table, N, "POST", "/v1/teams/abc/keys", &r, &p, NULL, 0),
                     ROUTE_FOUND);
    assert_ptr_equal(r, &table[3]);
    assert_string_equal(route_param(&p, "team_id"), "abc");
    assert_null(route_param(&p, "key_id"));
    assert_int_equal(router_match(table, N, "GET", "/v1/teams/x", &r, &p, NULL, 0), ROUTE_FOUND);
    assert_ptr_equal(r, &table[1]);
}

static void not_found(void **state)
{
    const struct route *r;
    struct route_params p;
    const char *paths[] = {"/", "", "/healthz/", "/v1/teams", "/v1/teams//keys",
                           "/v1/teams/a/keys/extra", "/HEALTHZ", "/v1/keys/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        assert_int_equal(router_match(table, N, "GET", paths[i], &r, &p, NULL, 0),
                         paths[i][0] ? ROUTE_NOT_FOUND : ROUTE_NOT_FOUND);
    assert_null(r);
}

static void wrong_method_lists_allowed(void **state)
{
    const struct route *r;
    struct route_params p;
    char allow[64];
    assert_int_equal(router_match(table, N, "PUT", "/v1/teams/t/keys", &r, &p, allow, sizeof allow),
                     ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET, POST");
}

static void overlong_param(void **state)
{
    const struct route *r;
    struct route_params p;
    char path[400] = "/v1/keys/";
    memset(path + 9, 'a', 300);
    path[309] = '\0';
    assert_int_equal(router_match(table, N, "DELETE", path, &r, &p, NULL, 0), ROUTE_BAD_PARAM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_and_params),
        cmocka_unit_test(not_found),
        cmocka_unit_test(wrong_method_lists_allowed),
        cmocka_unit_test(overlong_param),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

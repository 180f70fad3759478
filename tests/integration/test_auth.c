/* test_auth.c - teams and API keys through the real server: 401 without or
 * with a bad key, roles, 404 across teams, revocation, the last admin key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/support/harness.h"

static struct th_db db;
static struct th_server srv;

static int setup(void **state)
{
    if (th_db_create(&db) < 0) return -1;
    return th_server_start(&srv, &db, NULL);
}

static int teardown(void **state)
{
    int rc = th_server_stop(&srv);
    th_db_drop(&db);
    return rc == 0 ? 0 : -1;
}

/* A request whose answer must have this status; returns the response. */
static struct th_resp req(const char *method, const char *path, const char *key,
                          const char *body, long want)
{
    struct th_resp r;
    assert_int_equal(th_http(&srv, method, path, key, NULL, body, body ? strlen(body) : 0, &r), 0);
    if (r.status != want) fprintf(stderr, "%s %s -> %ld: %s\n", method, path, r.status, r.body);
    assert_int_equal(r.status, want);
    if (want >= 400) assert_string_equal(r.content_type, "application/problem+json");
    return r;
}

static char *my_team(const char *key)
{
    struct th_resp r = req("GET", "/v1/me", key, NULL, 200);
    char *id = strdup(th_json_str(&r, "team.id"));
    th_resp_free(&r);
    return id;
}

static void missing_or_bad_key_is_401(void **state)
{
    struct th_resp r = req("GET", "/v1/me", NULL, NULL, 401);
    assert_non_null(strstr(r.www_authenticate, "Bearer"));
    th_resp_free(&r);
    r = req("GET", "/v1/me", "pdm_0000000000000000000000000000000000000000000000000000000000000000",
            NULL, 401);
    th_resp_free(&r);
    r = req("GET", "/v1/me", "not-a-key", NULL, 401);
    th_resp_free(&r);
    const char *basic[] = {"Authorization: Basic dXNlcjpwYXNz", NULL};
    assert_int_equal(th_http_headers(&srv, "GET", "/v1/me", basic, NULL, 0, &r), 0);
    assert_int_equal(r.status, 401);
    th_resp_free(&r);
    /* Public routes need no key. */
    r = req("GET", "/healthz", NULL, NULL, 200);
    th_resp_free(&r);
}

static void me_describes_the_key(void **state)
{
    struct th_resp r = req("GET", "/v1/me", srv.key, NULL, 200);
    assert_string_equal(th_json_str(&r, "key.role"), "admin");
    assert_string_equal(th_json_str(&r, "team.name"), "default");
    assert_memory_equal(th_json_str(&r, "key.prefix"), srv.key, 12);
    assert_null(strstr(r.body, srv.key)); /* the secret itself never comes back */
    th_resp_free(&r);
}

static void teams_are_isolated(void **state)
{
    struct th_resp r = req("POST", "/v1/teams", srv.key, "{\"name\": \"acme\"}", 201);
    char *acme_key = strdup(th_json_str(&r, "admin_key.key"));
    char *acme_id = strdup(th_json_str(&r, "team.id"));
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/teams/%s", acme_id);
    assert_string_equal(r.location, loc);
    th_resp_free(&r);
    char *default_id = my_team(srv.key);

    /* Duplicate names conflict, whatever their case. */
    r = req("POST", "/v1/teams", srv.key, "{\"name\": \"ACME\"}", 409);
    th_resp_free(&r);

    /* acme's admin sees its own team, not default's: 404, as if absent. */
    char path[160];
    snprintf(path, sizeof path, "/v1/teams/%s", acme_id);
    r = req("GET", path, acme_key, NULL, 200);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/teams/%s", default_id);
    r = req("GET", path, acme_key, NULL, 404);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/teams/%s/keys", default_id);
    r = req("GET", path, acme_key, NULL, 404);
    th_resp_free(&r);
    r = req("POST", path, acme_key, "{}", 404);
    th_resp_free(&r);

    /* A key of default's cannot be read or revoked by acme. */
    r = req("POST", path, srv.key, "{\"name\": \"ci\"}", 201);
    char key_path[256];
    snprintf(key_path, sizeof key_path, "%s", r.location);
    th_resp_free(&r);
    r = req("GET", key_path, acme_key, NULL, 404);
    th_resp_free(&r);
    r = req("DELETE", key_path, acme_key, NULL, 404);
    th_resp_free(&r);
    r = req("GET", key_path, srv.key, NULL, 200);
    th_resp_free(&r);

    /* Only the operator team creates teams. */
    r = req("POST", "/v1/teams", acme_key, "{\"name\": \"other\"}", 403);
    th_resp_free(&r);
    /* Unknown or malformed ids are plain 404s. */
    r = req("GET", "/v1/keys/not-a-uuid", srv.key, NULL, 404);
    th_resp_free(&r);
    r = req("DELETE", "/v1/keys/00000000-0000-0000-0000-000000000000", srv.key, NULL, 404);
    th_resp_free(&r);
    free(acme_key);
    free(acme_id);
    free(default_id);
}

static void members_cannot_use_admin_routes(void **state)
{
    char *team = my_team(srv.key);
    char path[160];
    snprintf(path, sizeof path, "/v1/teams/%s/keys", team);
    struct th_resp r = req("POST", path, srv.key, "{\"name\": \"m\", \"role\": \"member\"}", 201);
    char *member = strdup(th_json_str(&r, "key"));
    assert_string_equal(th_json_str(&r, "role"), "member");
    th_resp_free(&r);
    r = req("GET", "/v1/me", member, NULL, 200);
    th_resp_free(&r);
    r = req("GET", path, member, NULL, 403);
    th_resp_free(&r);
    r = req("POST", path, member, "{}", 403);
    th_resp_free(&r);
    free(member);
    free(team);
}

static void revoked_key_stops_working(void **state)
{
    char *team = my_team(srv.key);
    char path[160];
    snprintf(path, sizeof path, "/v1/teams/%s/keys", team);
    struct th_resp r = req("POST", path, srv.key, "{\"name\": \"temp\"}", 201);
    char *key = strdup(th_json_str(&r, "key"));
    char *loc = strdup(r.location);
    th_resp_free(&r);
    r = req("GET", "/v1/me", key, NULL, 200);
    th_resp_free(&r);
    r = req("DELETE", loc, srv.key, NULL, 204);
    th_resp_free(&r);
    r = req("GET", "/v1/me", key, NULL, 401);
    th_resp_free(&r);
    /* Revoking again is harmless; the listing shows when it was revoked. */
    r = req("DELETE", loc, srv.key, NULL, 204);
    th_resp_free(&r);
    r = req("GET", loc, srv.key, NULL, 200);
    assert_non_null(th_json_str(&r, "revoked_at"));
    th_resp_free(&r);
    free(key);
    free(loc);
    free(team);
}

static void last_admin_key_cannot_be_revoked(void **state)
{
    struct th_resp r = req("GET", "/v1/me", srv.key, NULL, 200);
    char path[160];
    snprintf(path, sizeof path, "/v1/keys/%s", th_json_str(&r, "key.id"));
    th_resp_free(&r);
    r = req("DELETE", path, srv.key, NULL, 409);
    th_resp_free(&r);
    r = req("GET", "/v1/me", srv.key, NULL, 200);
    th_resp_free(&r);
}

static void key_validation_is_422_naming_fields(void **state)
{
    char *team = my_team(srv.key);
    char path[160];
    snprintf(path, sizeof path, "/v1/teams/%s/keys", team);
    struct th_resp r = req("POST", path, srv.key, "{\"role\": \"root\", \"name\": 7, \"x\": 1}", 422);
    cJSON *doc = th_json(&r);
    cJSON *errors = cJSON_GetObjectItem(doc, "errors");
    assert_int_equal(cJSON_GetArraySize(errors), 3);
    int saw_role = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, errors)
        saw_role |= strcmp(cJSON_GetObjectItem(e, "field")->valuestring, "role") == 0;
    assert_true(saw_role);
    cJSON_Delete(doc);
    th_resp_free(&r);
    r = req("POST", "/v1/teams", srv.key, "{}", 422);
    assert_non_null(strstr(r.body, "name"));
    th_resp_free(&r);
    free(team);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(missing_or_bad_key_is_401),
        cmocka_unit_test(me_describes_the_key),
        cmocka_unit_test(teams_are_isolated),
        cmocka_unit_test(members_cannot_use_admin_routes),
        cmocka_unit_test(revoked_key_stops_working),
        cmocka_unit_test(last_admin_key_cannot_be_revoked),
        cmocka_unit_test(key_validation_is_422_naming_fields),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

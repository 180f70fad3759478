/* test_http.c - the server's core against hostile and broken requests:
 * every error is problem+json with a request id; limits on URL, headers and
 * body; malformed JSON located by line and column; one JSON access-log line
 * per request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/support/harness.h"

static struct th_db db;
static struct th_server srv;

static int setup(void **state)
{
    if (th_db_create(&db) < 0) return -1;
    const char *extra[] = {"--max-body-bytes=4096", NULL};
    return th_server_start(&srv, &db, extra);
}

static int teardown(void **state)
{
    int rc = th_server_stop(&srv);
    th_db_drop(&db);
    return rc == 0 ? 0 : -1;
}

static void assert_problem(const struct th_resp *r, long status)
{
    if (r->status != status) fprintf(stderr, "got %ld: %s\n", r->status, r->body);
    assert_int_equal(r->status, status);
    assert_string_equal(r->content_type, "application/problem+json");
    cJSON *doc = th_json(r);
    assert_non_null(doc);
    assert_int_equal(cJSON_GetObjectItem(doc, "status")->valueint, status);
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "type")));
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "title")));
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "detail")));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "request_id")), r->request_id);
    cJSON_Delete(doc);
}

static void unknown_route_and_method(void **state)
{
    struct th_resp r;
    assert_int_equal(th_http(&srv, "GET", "/nope", NULL, NULL, NULL, 0, &r), 0);
    assert_problem(&r, 404);
    th_resp_free(&r);
    assert_int_equal(th_http(&srv, "PUT", "/v1/me", srv.key, NULL, "{}", 2, &r), 0);
    assert_problem(&r, 405);
    assert_string_equal(r.allow, "GET");
    th_resp_free(&r);
    assert_int_equal(th_http(&srv, "HEAD", "/healthz", NULL, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
}

static void malformed_json_is_located(void **state)
{
    struct th_resp r;
    const char *body = "{\n  \"name\": \"x\",\n  \"role\": }";
    assert_int_equal(th_http(&srv, "POST", "/v1/teams", srv.key, NULL, body, strlen(body), &r), 0);
    assert_problem(&r, 400);
    assert_non_null(strstr(r.body, "line 3"));
    th_resp_free(&r);
    /* Trailing garbage after a valid object is malformed too. */
    assert_int_equal(th_http(&srv, "POST", "/v1/teams", srv.key, NULL, "{} x", 4, &r), 0);
    assert_problem(&r, 400);
    th_resp_free(&r);
    /* A JSON array where an object is expected. */
    assert_int_equal(th_http(&srv, "POST", "/v1/teams", srv.key, NULL, "[1]", 3, &r), 0);
    assert_problem(&r, 400);
    th_resp_free(&r);
    /* Binary garbage with NUL bytes. */
    const char garbage[] = {'{', 0, (char)0xff, '}'};
    assert_int_equal(th_http(&srv, "POST", "/v1/teams", srv.key, NULL, garbage, 4, &r), 0);
    assert_problem(&r, 400);
    th_resp_free(&r);
}

static void wrong_content_type_is_415(void **state)
{
    struct th_resp r;
    assert_int_equal(th_http(&srv, "POST", "/v1/teams", srv.key, "text/plain", "{}", 2, &r), 0);
    assert_problem(&r, 415);
    th_resp_free(&r);
    assert_int_equal(th_http(&srv, "POST", "/v1/teams", srv.key, "application/json; charset=utf-8",
                             "{\"name\": \"ct\"}", 14, &r), 0);
    assert_int_equal(r.status, 201);
    th_resp_free(&r);
}

static void oversized_body_is_413(void **state)
{
    size_t n = 64 * 1024;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    struct th_resp r;
    assert_int_equal(th_http(&srv, "POST", "/v1/teams", srv.key, NULL, big, n, &r), 0);
    assert_problem(&r, 413);
    th_resp_free(&r);
    /* The same without Content-Length (chunked): found while reading. */
    char auth[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", srv.key);
    const char *h[] = {auth, "Content-Type: application/json", "Transfer-Encoding: chunked", NULL};
    assert_int_equal(th_http_headers(&srv, "POST", "/v1/teams", h, big, n, &r), 0);
    assert_problem(&r, 413);
    th_resp_free(&r);
    free(big);
    /* The server is fine afterwards. */
    assert_int_equal(th_http(&srv, "GET", "/healthz", NULL, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
}

static void oversized_url_and_headers(void **state)
{
    struct th_resp r;
    char *path = malloc(6000);
    strcpy(path, "/v1/");
    memset(path + 4, 'a', 5990);
    path[5994] = '\0';
    assert_int_equal(th_http(&srv, "GET", path, NULL, NULL, NULL, 0, &r), 0);
    assert_problem(&r, 414);
    th_resp_free(&r);
    free(path);

    char *hdr = malloc(20000);
    strcpy(hdr, "X-Big: ");
    memset(hdr + 7, 'b', 19000);
    hdr[19007] = '\0';
    const char *h[] = {hdr, NULL};
    assert_int_equal(th_http_headers(&srv, "GET", "/healthz", h, NULL, 0, &r), 0);
    assert_problem(&r, 431);
    th_resp_free(&r);
    free(hdr);
}

static void request_ids(void **state)
{
    struct th_resp a, b;
    assert_int_equal(th_http(&srv, "GET", "/healthz", NULL, NULL, NULL, 0, &a), 0);
    assert_int_equal(th_http(&srv, "GET", "/healthz", NULL, NULL, NULL, 0, &b), 0);
    assert_true(strlen(a.request_id) >= 16);
    assert_string_not_equal(a.request_id, b.request_id);
    th_resp_free(&a);
    th_resp_free(&b);
    /* A caller's own plain id is kept; a hostile one is replaced. */
    const char *mine[] = {"X-Request-Id: trace-1234abcd", NULL};
    assert_int_equal(th_http_headers(&srv, "GET", "/healthz", mine, NULL, 0, &a), 0);
    assert_string_equal(a.request_id, "trace-1234abcd");
    th_resp_free(&a);
    const char *evil[] = {"X-Request-Id: <script>alert(1)</script>", NULL};
    assert_int_equal(th_http_headers(&srv, "GET", "/healthz", evil, NULL, 0, &a), 0);
    assert_null(strchr(a.request_id, '<'));
    th_resp_free(&a);
}

static void access_log_is_json_lines(void **state)
{
    const char *mine[] = {"X-Request-Id: logcheck-0001", NULL};
    struct th_resp r;
    assert_int_equal(th_http_headers(&srv, "GET", "/v1/me", mine, NULL, 0, &r), 0);
    th_resp_free(&r);
    /* The line is written when the response completes; give it a moment. */
    int found = 0;
    for (int tries = 0; tries < 50 && !found; tries++) {
        FILE *f = fopen(srv.log_path, "r");
        assert_non_null(f);
        char line[4096];
        while (fgets(line, sizeof line, f)) {
            cJSON *j = cJSON_Parse(line);
            assert_non_null(j); /* every line the server writes is JSON */
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "request_id"));
            if (id && strcmp(id, "logcheck-0001") == 0) {
                assert_int_equal(cJSON_GetObjectItem(j, "status")->valueint, 401);
                assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "path")), "/v1/me");
                assert_non_null(cJSON_GetObjectItem(j, "duration_ms"));
                found = 1;
            }
            cJSON_Delete(j);
        }
        fclose(f);
        if (!found) usleep(20000);
    }
    assert_true(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_route_and_method),
        cmocka_unit_test(malformed_json_is_located),
        cmocka_unit_test(wrong_content_type_is_415),
        cmocka_unit_test(oversized_body_is_413),
        cmocka_unit_test(oversized_url_and_headers),
        cmocka_unit_test(request_ids),
        cmocka_unit_test(access_log_is_json_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* test_jobs_api.c - the jobs API without a scheduler: a job spec is checked
 * field by field, a queued job can be read, listed, re-budgeted and
 * cancelled, leaderboards answer in JSON and CSV with ETags, a data set
 * with an active job cannot be deleted, and other teams see nothing. */
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
static char dataset[64];

static int setup(void **state)
{
    if (th_db_create(&db) < 0 || th_server_start(&srv, &db, NULL) < 0) return -1;
    size_t len;
    char *csv = th_read_file("tests/data/tabular/iris.csv", &len);
    struct th_resp r;
    if (csv == NULL || th_http(&srv, "POST", "/v1/datasets", srv.key, "text/csv", csv, len, &r) < 0 ||
        r.status != 201) return -1;
    snprintf(dataset, sizeof dataset, "%s", th_json_str(&r, "id"));
    th_resp_free(&r);
    free(csv);
    return 0;
}

static int teardown(void **state)
{
    int rc = th_server_stop(&srv);
    th_db_drop(&db);
    return rc == 0 ? 0 : -1;
}

static struct th_resp call(const char *method, const char *path, const char *body, long want)
{
    struct th_resp r;
    assert_int_equal(th_http(&srv, method, path, srv.key, NULL, body, body ? strlen(body) : 0, &r), 0);
    if (r.status != want) fprintf(stderr, "%s %s -> %ld %s\n", method, path, r.status, r.body);
    assert_int_equal(r.status, want);
    return r;
}

static void bad_specs_name_each_field(void **state)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"target\": \"nope\", \"metric\": \"speed\","
             " \"models\": [\"gbm\", \"svm\"], \"strategy\": \"grid\","
             " \"budget\": {\"max_trials\": 0, \"max_seconds\": -5, \"extra\": 1},"
             " \"cv\": {\"folds\": 1}, \"parallelism\": 0, \"colour\": \"red\"}",
             dataset);
    struct th_resp r = call("POST", "/v1/jobs", body, 422);
    const char *fields[] = {"target", "metric", "models[1]", "strategy", "budget.max_trials",
                            "budget.max_seconds", "budget.extra", "cv.folds", "parallelism",
                            "colour"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!th_has_error_for(&r, fields[i])) fprintf(stderr, "no error for %s: %s\n", fields[i], r.body);
        assert_true(th_has_error_for(&r, fields[i]));
    }
    th_resp_free(&r);
    r = call("POST", "/v1/jobs", "{\"dataset_id\": \"00000000-0000-0000-0000-000000000000\"}", 422);
    assert_true(th_has_error_for(&r, "dataset_id"));
    th_resp_free(&r);
    r = call("POST", "/v1/jobs", "{}", 422);
    assert_true(th_has_error_for(&r, "dataset_id"));
    th_resp_free(&r);
    /* A metric that does not fit the task. */
    snprintf(body, sizeof body, "{\"dataset_id\": \"%s\", \"metric\": \"rmse\"}", dataset);
    r = call("POST", "/v1/jobs", body, 422);
    assert_true(th_has_error_for(&r, "metric"));
    th_resp_free(&r);
}

static void a_queued_job_reads_back_and_cancels(void **state)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"metric\": \"accuracy\", \"models\": [\"linear\", \"gbm\"],"
             " \"budget\": {\"max_trials\": 4, \"max_seconds\": 60}}", dataset);
    struct th_resp r = call("POST", "/v1/jobs", body, 202);
    cJSON *job = th_json(&r);
    /* Defaults filled from the data set's profile. */
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(job, "target")), "species");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(job, "task")), "classification");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(job, "state")), "queued");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(job, "higher_is_better")));
    char path[160], id[64];
    snprintf(id, sizeof id, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(job, "id")));
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    assert_string_equal(r.location, path);
    cJSON_Delete(job);
    th_resp_free(&r);

    r = call("GET", path, NULL, 200);
    job = th_json(&r);
    cJSON *progress = cJSON_GetObjectItem(job, "progress");
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(progress, "trials")), 0);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(progress, "max_trials")), 4);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(job, "best")));
    cJSON_Delete(job);
    th_resp_free(&r);

    /* The budget can be raised while the job has not finished. */
    r = call("PATCH", path, "{\"budget\": {\"max_trials\": 10}}", 200);
    assert_non_null(strstr(r.body, "\"max_trials\":10"));
    th_resp_free(&r);
    r = call("PATCH", path, "{\"budget\": {\"max_trials\": \"many\"}}", 422);
    th_resp_free(&r);

    r = call("GET", "/v1/jobs?state=queued", NULL, 200);
    assert_non_null(strstr(r.body, id));
    th_resp_free(&r);

    /* The data set is in use while the job is queued. */
    char dpath[160];
    snprintf(dpath, sizeof dpath, "/v1/datasets/%s", dataset);
    r = call("DELETE", dpath, NULL, 409);
    th_resp_free(&r);

    char cpath[200];
    snprintf(cpath, sizeof cpath, "%s/cancel", path);
    r = call("POST", cpath, NULL, 202);
    assert_string_equal(th_json_str(&r, "state"), "cancelled");
    th_resp_free(&r);
    r = call("POST", cpath, NULL, 409);
    th_resp_free(&r);
    r = call("PATCH", path, "{\"budget\": {\"max_trials\": 20}}", 409);
    th_resp_free(&r);
}

static void leaderboards_answer_json_and_csv_with_etags(void **state)
{
    char body[256];
    snprintf(body, sizeof body, "{\"dataset_id\": \"%s\"}", dataset);
    struct th_resp r = call("POST", "/v1/jobs", body, 202);
    char path[200];
    snprintf(path, sizeof path, "/v1/jobs/%s/leaderboard", th_json_str(&r, "id"));
    th_resp_free(&r);
    r = call("GET", path, NULL, 200);
    assert_string_equal(r.content_type, "application/json");
    assert_non_null(strstr(r.body, "\"items\":[]"));
    assert_non_null(strstr(r.body, "\"metric\":\"logloss\""));
    th_resp_free(&r);

    char auth[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", srv.key);
    const char *csv_h[] = {auth, "Accept: text/csv", NULL};
    assert_int_equal(th_http_headers(&srv, "GET", path, csv_h, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/csv");
    assert_true(strncmp(r.body, "rank,model_id,", 14) == 0);
    th_resp_free(&r);

    /* A poll whose answer has not changed: 304, in JSON and in CSV. */
    const char *json_h[] = {auth, NULL};
    assert_int_equal(th_http_headers(&srv, "GET", path, json_h, NULL, 0, &r), 0);
    assert_true(strlen(r.etag) > 2);
    char inm[200];
    snprintf(inm, sizeof inm, "If-None-Match: %s", r.etag);
    th_resp_free(&r);
    const char *again[] = {auth, inm, NULL};
    assert_int_equal(th_http_headers(&srv, "GET", path, again, NULL, 0, &r), 0);
    assert_int_equal(r.status, 304);
    th_resp_free(&r);
    const char *csv_again[] = {auth, inm, "Accept: text/csv", NULL};
    assert_int_equal(th_http_headers(&srv, "GET", path, csv_again, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200); /* another representation, another ETag */
    th_resp_free(&r);

    char lb[200];
    snprintf(lb, sizeof lb, "/v1/leaderboards?dataset_id=%s", dataset);
    r = call("GET", lb, NULL, 200);
    assert_non_null(strstr(r.body, "\"items\":[]"));
    th_resp_free(&r);
    r = call("GET", "/v1/leaderboards", NULL, 400);
    th_resp_free(&r);
    r = call("POST", "/v1/jobs/00000000-0000-0000-0000-000000000000/cancel", NULL, 404);
    th_resp_free(&r);
    r = call("GET", "/v1/models/00000000-0000-0000-0000-000000000000", NULL, 404);
    th_resp_free(&r);
    r = call("GET", "/v1/trials/not-a-uuid", NULL, 404);
    th_resp_free(&r);
}

static void other_teams_see_no_jobs(void **state)
{
    struct th_resp r = call("POST", "/v1/teams", "{\"name\": \"other\"}", 201);
    char *key = strdup(th_json_str(&r, "admin_key.key"));
    th_resp_free(&r);
    r = call("GET", "/v1/jobs", NULL, 200);
    cJSON *list = th_json(&r);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(list, "items"), 0), "id"));
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    cJSON_Delete(list);
    th_resp_free(&r);
    assert_int_equal(th_http(&srv, "GET", path, key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 404);
    th_resp_free(&r);
    assert_int_equal(th_http(&srv, "GET", "/v1/jobs", key, NULL, NULL, 0, &r), 0);
    assert_non_null(strstr(r.body, "\"items\":[]"));
    th_resp_free(&r);
    /* Nor can they start a job on our data set. */
    char body[200];
    snprintf(body, sizeof body, "{\"dataset_id\": \"%s\"}", dataset);
    assert_int_equal(th_http(&srv, "POST", "/v1/jobs", key, NULL, body, strlen(body), &r), 0);
    assert_int_equal(r.status, 422);
    th_resp_free(&r);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_specs_name_each_field),
        cmocka_unit_test(a_queued_job_reads_back_and_cancels),
        cmocka_unit_test(leaderboards_answer_json_and_csv_with_etags),
        cmocka_unit_test(other_teams_see_no_jobs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* test_image_jobs.c - search jobs on an image data set through the real
 * server, scheduler and trainers: what POST /v1/jobs fills in for images
 * (size from the profile, NAS settings, strategy, families, holdout,
 * accuracy), every bad field named, baselines on pixels that reach the
 * accuracy kNN is known for on digits8x8, and a model without a genotype
 * answering 404 for its cell diagram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/support/harness.h"

static char digits[64];

static int setup(void **state)
{
    const char *extra[] = {"--slots=2", NULL};
    if (th_stack_start(&th_jobs, extra, "iris", "tests/data/tabular/iris.csv") < 0) return -1;
    size_t len;
    char *zip = th_read_file("tests/data/images/digits8x8.zip", &len);
    struct th_resp r;
    if (zip == NULL || th_http(&th_jobs.srv, "POST", "/v1/datasets?name=digits", th_jobs.srv.key,
                               "application/zip", zip, len, &r) < 0 || r.status != 201) {
        free(zip);
        return -1;
    }
    snprintf(digits, sizeof digits, "%s", th_json_str(&r, "id"));
    th_resp_free(&r);
    free(zip);
    return 0;
}

static int teardown(void **state) { return th_stack_stop(&th_jobs); }

static struct th_resp call(const char *method, const char *path, const char *body, long want)
{
    struct th_resp r;
    assert_int_equal(th_http(&th_jobs.srv, method, path, th_jobs.srv.key, NULL, body,
                             body ? strlen(body) : 0, &r), 0);
    if (r.status != want) fprintf(stderr, "%s %s -> %ld %s\n", method, path, r.status, r.body);
    assert_int_equal(r.status, want);
    return r;
}

static double num(const cJSON *j, const char *a, const char *b, const char *c)
{
    const cJSON *x = cJSON_GetObjectItem(j, a);
    if (b) x = cJSON_GetObjectItem(x, b);
    if (c) x = cJSON_GetObjectItem(x, c);
    assert_true(cJSON_IsNumber(x));
    return x->valuedouble;
}

static void defaults_for_images(void **state)
{
    char body[256];
    snprintf(body, sizeof body, "{\"dataset_id\": \"%s\", \"budget\": {\"max_trials\": 1}}",
             digits);
    struct th_resp r = call("POST", "/v1/jobs", body, 202);
    cJSON *job = th_json(&r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(job, "target")), "class");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(job, "task")), "classification");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(job, "metric")), "accuracy");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(job, "strategy")), "darts");
    cJSON *models = cJSON_GetObjectItem(job, "models");
    assert_int_equal(cJSON_GetArraySize(models), 4);
    assert_string_equal(cJSON_GetArrayItem(models, 0)->valuestring, "cnn");
    assert_true(num(job, "cv", "holdout", NULL) == 0.2);
    /* the images' own size (8x8 grey), and small NAS settings */
    assert_int_equal((int)num(job, "options", "image", "height"), 8);
    assert_int_equal((int)num(job, "options", "image", "width"), 8);
    assert_int_equal((int)num(job, "options", "image", "channels"), 1);
    assert_int_equal((int)num(job, "options", "nas", "cells"), 5);
    assert_int_equal((int)num(job, "options", "nas", "population"), 10);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel",
             cJSON_GetStringValue(cJSON_GetObjectItem(job, "id")));
    cJSON_Delete(job);
    th_resp_free(&r);
    r = call("POST", path, NULL, 202);
    th_resp_free(&r);
}

static void bad_image_specs_name_each_field(void **state)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"target\": \"label\", \"task\": \"regression\","
             " \"models\": [\"gbm\", \"cnn\"], \"strategy\": \"tpe\","
             " \"options\": {\"image\": {\"height\": 2, \"channels\": 2, \"depth\": 1},"
             "  \"nas\": {\"cells\": 0, \"population\": 5, \"sample\": 9,"
             "   \"learning_rate\": \"fast\", \"augment\": 1}, \"colour\": 1}}",
             digits);
    struct th_resp r = call("POST", "/v1/jobs", body, 422);
    const char *fields[] = {"target", "task", "models[0]", "strategy", "options.image.height",
                            "options.image.channels", "options.image.depth", "options.nas.cells",
                            "options.nas.sample", "options.nas.learning_rate",
                            "options.nas.augment", "options.colour"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!th_has_error_for(&r, fields[i])) fprintf(stderr, "no error for %s: %s\n", fields[i], r.body);
        assert_true(th_has_error_for(&r, fields[i]));
    }
    assert_false(th_has_error_for(&r, "models[1]"));
    th_resp_free(&r);
    /* options belong to image jobs only; NAS strategies too */
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"options\": {}, \"strategy\": \"darts\"}",
             th_jobs.dataset);
    r = call("POST", "/v1/jobs", body, 422);
    assert_true(th_has_error_for(&r, "options"));
    assert_true(th_has_error_for(&r, "strategy"));
    th_resp_free(&r);
}

/* knn and linear on the pixels, each once (the image strategies start
 * with the job's baselines), through the scheduler and podium-train. */
static void baselines_on_pixels(void **state)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"models\": [\"knn\", \"linear\"], \"strategy\": \"random\","
             " \"budget\": {\"max_trials\": 2, \"trial_timeout_seconds\": 120}}",
             digits);
    const char *id = th_post_job(&th_jobs.srv, body);
    char job[64];
    snprintf(job, sizeof job, "%s", id);
    assert_string_equal(th_wait_job(&th_jobs.srv, job, "succeeded", 120), "succeeded");
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s/leaderboard", job);
    struct th_resp r = call("GET", path, NULL, 200);
    cJSON *lb = th_json(&r);
    cJSON *items = cJSON_GetObjectItem(lb, "items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    cJSON *best = cJSON_GetArrayItem(items, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(best, "family")), "knn");
    /* kNN on raw pixels: about 0.986 on digits8x8 */
    assert_true(num(best, "score", NULL, NULL) >= 0.95);
    char model[64];
    snprintf(model, sizeof model, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(best, "model_id")));
    cJSON_Delete(lb);
    th_resp_free(&r);

    /* a classical model has no cell diagram */
    snprintf(path, sizeof path, "/v1/models/%s/genotype.svg", model);
    r = call("GET", path, NULL, 404);
    assert_non_null(strstr(r.content_type, "application/problem+json"));
    assert_non_null(strstr(r.body, "no architecture genotype"));
    th_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_for_images),
        cmocka_unit_test(bad_image_specs_name_each_field),
        cmocka_unit_test(baselines_on_pixels),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

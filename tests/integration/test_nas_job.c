/* test_nas_job.c - neural architecture search as a job, through the real
 * server, scheduler and podium-train on digits8x8: DARTS searches a
 * supernet, derives a valid genotype and that genotype is retrained from
 * scratch as its own trial; the genotype downloads as JSON and draws as
 * SVG; the CNN predicts on an uploaded image. Then GPU slots: a scheduler
 * told of one GPU gives a cnn trial that GPU (its spec says cuda, which
 * this CPU-only trainer refuses, naming it) while the other runs on the
 * CPU, trained with the DARTS extras the job asked for (drop-path, cutout,
 * the auxiliary head), which its params carry. Bad extras are a 422 naming
 * each field; absent ones are stored with their defaults and reach the
 * retrain's params. Tiny settings: a few seconds of training, not
 * accuracy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/genotype.h"
#include "tests/support/harness.h"

static char digits[64];

static int upload_digits(struct th_stack *st)
{
    size_t len;
    char *zip = th_read_file("tests/data/images/digits8x8.zip", &len);
    struct th_resp r;
    int ok = zip && th_http(&st->srv, "POST", "/v1/datasets?name=digits", st->srv.key,
                            "application/zip", zip, len, &r) == 0 && r.status == 201;
    if (ok) {
        snprintf(digits, sizeof digits, "%s", th_json_str(&r, "id"));
        th_resp_free(&r);
    }
    free(zip);
    return ok ? 0 : -1;
}

static int setup(void **state)
{
    const char *extra[] = {"--slots=2", "--gpus=none", NULL};
    if (th_stack_start(&th_jobs, extra, "iris", "tests/data/tabular/iris.csv") < 0) return -1;
    return upload_digits(&th_jobs);
}

static int teardown(void **state) { return th_stack_stop(&th_jobs); }

static struct th_resp get(const char *path, long want)
{
    struct th_resp r;
    assert_int_equal(th_http(&th_jobs.srv, "GET", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    if (r.status != want) fprintf(stderr, "GET %s -> %ld %s\n", path, r.status, r.body);
    assert_int_equal(r.status, want);
    return r;
}

static const char TINY[] =
    "{\"cells\": 2, \"channels\": 4, \"epochs\": 1, \"search_epochs\": 1, \"batch_size\": 64}";
/* the same with every training extra on (2 epochs: drop-path is 0 in the first) */
static const char TINY_EXTRAS[] =
    "{\"cells\": 3, \"channels\": 4, \"epochs\": 2, \"search_epochs\": 1, \"batch_size\": 64,"
    " \"drop_path\": 0.3, \"cutout\": 0.5, \"auxiliary_weight\": 0.4}";

static void darts_search_then_retrain(void **state)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"models\": [\"cnn\"], \"strategy\": \"darts\","
             " \"parallelism\": 1, \"options\": {\"nas\": %s},"
             " \"budget\": {\"max_trials\": 2, \"trial_timeout_seconds\": 300}}",
             digits, TINY);
    char job[64];
    snprintf(job, sizeof job, "%s", th_post_job(&th_jobs.srv, body));
    assert_string_equal(th_wait_job(&th_jobs.srv, job, "succeeded", 300), "succeeded");

    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s/trials", job);
    struct th_resp r = get(path, 200);
    cJSON *doc = th_json(&r);
    cJSON *items = cJSON_GetObjectItem(doc, "items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    cJSON *search = cJSON_GetArrayItem(items, 0), *retrain = cJSON_GetArrayItem(items, 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(search, "family")), "darts");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(search, "state")), "succeeded");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(retrain, "family")), "cnn");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(retrain, "state")), "succeeded");
    /* the derived genotype is valid and is what the retrain trained */
    cJSON *derived = cJSON_Duplicate(
        cJSON_GetObjectItem(cJSON_GetObjectItem(search, "details"), "genotype"), 1);
    struct genotype g;
    char err[200];
    if (genotype_from_json(derived, &g, err, sizeof err) < 0) fail_msg("derived genotype: %s", err);
    for (int i = 0; i < GENOTYPE_EDGES; i += 2) {
        assert_int_not_equal(g.normal[i].input, g.normal[i + 1].input);
        assert_int_not_equal(g.reduce[i].input, g.reduce[i + 1].input);
    }
    cJSON *params = cJSON_GetObjectItem(retrain, "params");
    assert_true(cJSON_Compare(derived, cJSON_GetObjectItem(params, "genotype"), 1));
    /* the job stored the extras' defaults; the retrain trained with them */
    const char *const extras[] = {"drop_path", "cutout", "auxiliary_weight"};
    for (int i = 0; i < 3; i++) assert_true(cJSON_IsNumber(cJSON_GetObjectItem(params, extras[i])));
    assert_int_equal(cJSON_GetObjectItem(params, "from_search")->valueint, 1);
    cJSON *details = cJSON_GetObjectItem(retrain, "details");
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(details, "param_count")) > 100);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(details, "flops")) > 1000);
    char model[64];
    snprintf(model, sizeof model, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(retrain, "id")));
    cJSON_Delete(doc);
    th_resp_free(&r);

    /* the leaderboard row carries the genotype; the cells draw as SVG */
    snprintf(path, sizeof path, "/v1/jobs/%s/leaderboard", job);
    r = get(path, 200);
    assert_non_null(strstr(r.body, "\"genotype\""));
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/models/%s/genotype", model);
    r = get(path, 200);
    doc = th_json(&r);
    if (!cJSON_Compare(derived, cJSON_GetObjectItem(doc, "genotype"), 1))
        fail_msg("the model's genotype differs from the derived one: %s", r.body);
    cJSON_Delete(doc);
    cJSON_Delete(derived);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/models/%s/genotype.svg", model);
    r = get(path, 200);
    assert_non_null(strstr(r.content_type, "image/svg+xml"));
    assert_non_null(strstr(r.body, "<svg"));
    assert_non_null(strstr(r.body, "reduction cell"));
    char etag[160];
    snprintf(etag, sizeof etag, "If-None-Match: %.128s", r.etag);
    th_resp_free(&r);
    char auth[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %.128s", th_jobs.srv.key);
    const char *h[] = {auth, etag, NULL};
    assert_int_equal(th_http_headers(&th_jobs.srv, "GET", path, h, NULL, 0, &r), 0);
    assert_int_equal(r.status, 304);
    th_resp_free(&r);

    /* the CNN predicts on an image */
    size_t len;
    char *png = th_read_file("tests/data/images/digit3.png", &len);
    if (png) {
        snprintf(path, sizeof path, "/v1/models/%s/predict", model);
        assert_int_equal(th_http(&th_jobs.srv, "POST", path, th_jobs.srv.key, "image/png", png,
                                 len, &r), 0);
        if (r.status != 200) fprintf(stderr, "predict: %ld %s\n", r.status, r.body);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "\"probabilities\""));
        th_resp_free(&r);
        free(png);
    }
}

/* One GPU slot and one CPU slot: two cnn trials at once, one on each. */
static void gpu_slot_placement(void **state)
{
    struct th_stack st;
    const char *extra[] = {"--slots=1", "--gpus=0", NULL};
    assert_int_equal(th_stack_start(&st, extra, "iris", "tests/data/tabular/iris.csv"), 0);
    assert_int_equal(upload_digits(&st), 0);
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"models\": [\"cnn\"], \"strategy\": \"random\","
             " \"parallelism\": 2, \"options\": {\"nas\": %s},"
             " \"budget\": {\"max_trials\": 2, \"trial_timeout_seconds\": 300}}",
             digits, TINY_EXTRAS);
    char job[64];
    snprintf(job, sizeof job, "%s", th_post_job(&st.srv, body));
    th_wait_job(&st.srv, job, "succeeded", 300);
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s/trials", job);
    struct th_resp r;
    assert_int_equal(th_http(&st.srv, "GET", path, st.srv.key, NULL, NULL, 0, &r), 0);
    cJSON *doc = th_json(&r);
    cJSON *items = cJSON_GetObjectItem(doc, "items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    int on_gpu = 0, on_cpu = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, items) {
        const char *state_ = cJSON_GetStringValue(cJSON_GetObjectItem(t, "state"));
        const char *why = cJSON_GetStringValue(cJSON_GetObjectItem(t, "failure_reason"));
        if (strcmp(state_, "failed") == 0 && why && strstr(why, "cuda")) on_gpu++;
        else if (strcmp(state_, "succeeded") == 0) on_cpu++;
        else fprintf(stderr, "trial: %s %s\n", state_, why ? why : "");
        const cJSON *p = cJSON_GetObjectItem(t, "params");
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(p, "drop_path")) == 0.3);
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(p, "cutout")) == 0.5);
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(p, "auxiliary_weight")) == 0.4);
    }
    assert_int_equal(on_gpu, 1);
    assert_int_equal(on_cpu, 1);
    cJSON_Delete(doc);
    th_resp_free(&r);
    assert_int_equal(th_stack_stop(&st), 0);
}

/* Bad training extras: a 422 naming each; good ones stored as given. */
static void extras_validated(void **state)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"models\": [\"cnn\"], \"strategy\": \"random\","
             " \"options\": {\"nas\": {\"drop_path\": 0.95, \"cutout\": \"half\","
             " \"auxiliary_weight\": -0.4}}}",
             digits);
    struct th_resp r;
    assert_int_equal(th_http(&th_jobs.srv, "POST", "/v1/jobs", th_jobs.srv.key, "application/json",
                             body, strlen(body), &r), 0);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.content_type, "application/problem+json"));
    const char *fields[] = {"options.nas.drop_path", "options.nas.cutout",
                            "options.nas.auxiliary_weight"};
    for (size_t i = 0; i < 3; i++) {
        if (!th_has_error_for(&r, fields[i])) fprintf(stderr, "no error for %s: %s\n", fields[i], r.body);
        assert_true(th_has_error_for(&r, fields[i]));
    }
    th_resp_free(&r);
    /* good values are kept as given, absent ones get the defaults; the job
     * is cancelled before it trains anything */
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"models\": [\"cnn\"], \"strategy\": \"random\","
             " \"options\": {\"nas\": {\"drop_path\": 0.2, \"cutout\": 0}},"
             " \"budget\": {\"max_trials\": 1}}",
             digits);
    assert_int_equal(th_http(&th_jobs.srv, "POST", "/v1/jobs", th_jobs.srv.key, "application/json",
                             body, strlen(body), &r), 0);
    assert_int_equal(r.status, 202);
    cJSON *job = th_json(&r);
    const cJSON *nas = cJSON_GetObjectItem(cJSON_GetObjectItem(job, "options"), "nas");
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(nas, "drop_path")) == 0.2);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(nas, "cutout")) == 0);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(nas, "auxiliary_weight")));
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel",
             cJSON_GetStringValue(cJSON_GetObjectItem(job, "id")));
    cJSON_Delete(job);
    th_resp_free(&r);
    assert_int_equal(th_http(&th_jobs.srv, "POST", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    th_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(extras_validated),
        cmocka_unit_test(darts_search_then_retrain),
        cmocka_unit_test(gpu_slot_placement),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

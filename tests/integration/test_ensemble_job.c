/* test_ensemble_job.c - ensemble selection at the end of a job, through
 * the API with a real server, scheduler, trainers and database: a small
 * iris job ends with one 'ensemble' trial (seq = last + 1) over its
 * succeeded trials, on the leaderboard with a score no worse than its best
 * member's (log loss, within 1e-9), whose artifact predicts through
 * POST /v1/models/{id}/predict; a cancelled job gets no ensemble. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/support/harness.h"

static cJSON *get_trials(const char *job)
{
    char path[200];
    struct th_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/trials", job);
    assert_int_equal(th_http(&th_jobs.srv, "GET", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *j = th_json(&r);
    th_resp_free(&r);
    assert_non_null(j);
    return j;
}

static void a_job_ends_with_an_ensemble_that_predicts(void **state)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"metric\": \"logloss\","
             " \"models\": [\"linear\", \"knn\", \"nb\", \"rf\"],"
             " \"budget\": {\"max_trials\": 5, \"max_seconds\": 120, \"trial_timeout_seconds\": 60},"
             " \"parallelism\": 2, \"seed\": 5}", th_jobs.dataset);
    char job[64];
    snprintf(job, sizeof job, "%s", th_post_job(&th_jobs.srv, body));
    const char *final = th_wait_job(&th_jobs.srv, job, "succeeded", 120);
    if (strcmp(final, "succeeded") != 0) fprintf(stderr, "job ended %s; see %s\n", final, th_jobs.sched.log_path);
    assert_string_equal(final, "succeeded");

    /* five trials, then the ensemble as seq 6 */
    cJSON *trials = get_trials(job);
    cJSON *items = cJSON_GetObjectItem(trials, "items");
    assert_int_equal(cJSON_GetArraySize(items), 6);
    const cJSON *ens = NULL, *t;
    double best_member = INFINITY;
    int n_ens = 0;
    cJSON_ArrayForEach(t, items) {
        const char *fam = cJSON_GetStringValue(cJSON_GetObjectItem(t, "family"));
        if (strcmp(fam, "ensemble") == 0) {
            ens = t;
            n_ens++;
        } else if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "state")), "succeeded") == 0) {
            double s = cJSON_GetNumberValue(cJSON_GetObjectItem(t, "score"));
            if (s < best_member) best_member = s;
        }
    }
    assert_int_equal(n_ens, 1);
    if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(ens, "state")), "succeeded") != 0) {
        char *txt = cJSON_PrintUnformatted(ens);
        fail_msg("ensemble trial did not succeed: %s (log %s)", txt, th_jobs.sched.log_path);
    }
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(ens, "seq")), 6);
    const cJSON *params = cJSON_GetObjectItem(ens, "params");
    const cJSON *members = cJSON_GetObjectItem(params, "members");
    assert_true(cJSON_GetArraySize(members) >= 2);
    assert_true(cJSON_IsString(cJSON_GetArrayItem(members, 0)));
    double ens_score = cJSON_GetNumberValue(cJSON_GetObjectItem(ens, "score"));
    fprintf(stderr, "iris job logloss: best member %.5f, ensemble %.5f\n", best_member, ens_score);
    assert_true(ens_score <= best_member + 1e-9);
    char model[64];
    snprintf(model, sizeof model, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(ens, "id")));
    cJSON_Delete(trials);

    /* on the leaderboard */
    char path[200];
    struct th_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/leaderboard", job);
    assert_int_equal(th_http(&th_jobs.srv, "GET", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *lb = th_json(&r);
    th_resp_free(&r);
    int found = 0;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(lb, "items")) {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "model_id")), model) == 0) {
            found = 1;
            assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(t, "family")), "ensemble");
        }
    }
    assert_true(found);
    cJSON_Delete(lb);

    /* it predicts through the endpoint */
    assert_int_equal(th_predict_csv(&th_jobs.srv, model, "tests/data/tabular/iris.csv", &r), 0);
    if (r.status != 200) fail_msg("predict: %d %s", r.status, r.body);
    int rows = 0, correct = 0;
    char *b = r.body;
    strsep(&b, "\n");
    for (char *line = strsep(&b, "\n"); line && *line; line = strsep(&b, "\n"), rows++) {
        const char *want = rows < 50 ? "setosa" : rows < 100 ? "versicolor" : "virginica";
        if (*line == '"') line++;
        correct += strncmp(line, want, strlen(want)) == 0;
    }
    assert_int_equal(rows, 150);
    assert_true(correct >= 140);
    th_resp_free(&r);

    /* the artifact downloads, and it is an ensemble model file */
    snprintf(path, sizeof path, "/v1/models/%s/artifact", model);
    assert_int_equal(th_http(&th_jobs.srv, "GET", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(r.body_len > 24 && memcmp(r.body, "PDMODEL", 8) == 0);
    assert_non_null(memmem(r.body, r.body_len, "\"family\":\"ensemble\"", 19));
    th_resp_free(&r);
}

static void a_cancelled_job_gets_no_ensemble(void **state)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"models\": [\"knn\", \"mlp\"],"
             " \"budget\": {\"max_trials\": 200, \"max_seconds\": 300}, \"parallelism\": 2}", th_jobs.dataset);
    char job[64], path[200];
    snprintf(job, sizeof job, "%s", th_post_job(&th_jobs.srv, body));
    /* let a few trials succeed first */
    double t0 = th_now_s();
    int succeeded = 0;
    while (th_now_s() - t0 < 30 && succeeded < 2) {
        cJSON *trials = get_trials(job);
        succeeded = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(trials, "items"))
            succeeded += strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "state")), "succeeded") == 0;
        cJSON_Delete(trials);
        usleep(100 * 1000);
    }
    assert_true(succeeded >= 2);
    struct th_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", job);
    assert_int_equal(th_http(&th_jobs.srv, "POST", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 202);
    th_resp_free(&r);
    assert_string_equal(th_wait_job(&th_jobs.srv, job, "cancelled", 10), "cancelled");
    sleep(1);
    cJSON *trials = get_trials(job);
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(trials, "items"))
        assert_string_not_equal(cJSON_GetStringValue(cJSON_GetObjectItem(t, "family")), "ensemble");
    cJSON_Delete(trials);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_job_ends_with_an_ensemble_that_predicts),
        cmocka_unit_test(a_cancelled_job_gets_no_ensemble),
    };
    return cmocka_run_group_tests(tests, th_jobs_setup, th_jobs_teardown);
}

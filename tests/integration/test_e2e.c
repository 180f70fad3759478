/* test_e2e.c - what a new user does, through the API only, with a real
 * server, scheduler, trainers and database: upload iris.csv, run a job
 * with a small budget, read a leaderboard whose best CV accuracy is at
 * least 0.93, download that model and get the same predictions from
 * podium-predict and from the predict endpoint; then cancel a job while
 * it runs. */
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
#include <sys/wait.h>
#include <cmocka.h>

#include "tests/support/harness.h"

static void a_job_yields_a_leaderboard_and_a_model_that_predicts(void **state)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"metric\": \"accuracy\","
             " \"models\": [\"linear\", \"knn\", \"gbm\", \"rf\"],"
             " \"budget\": {\"max_trials\": 6, \"max_seconds\": 120, \"trial_timeout_seconds\": 60},"
             " \"parallelism\": 2, \"seed\": 3}", th_jobs.dataset);
    struct th_resp r;
    char job[64];
    snprintf(job, sizeof job, "%s", th_post_job(&th_jobs.srv, body));

    const char *final = th_wait_job(&th_jobs.srv, job, "succeeded", 120);
    if (strcmp(final, "succeeded") != 0) fprintf(stderr, "job ended %s; see %s\n", final, th_jobs.sched.log_path);
    assert_string_equal(final, "succeeded");

    /* Six trials, the best first on the leaderboard with accuracy >= 0.93. */
    char path[200];
    snprintf(path, sizeof path, "/v1/jobs/%s/trials", job);
    assert_int_equal(th_http(&th_jobs.srv, "GET", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    cJSON *trials = th_json(&r);
    /* ... and the ensemble over them, the last trial (trainers/ensemble.h) */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(trials, "items")), 7);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetArrayItem(cJSON_GetObjectItem(trials, "items"), 6), "family")),
                        "ensemble");
    cJSON_Delete(trials);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/leaderboard", job);
    assert_int_equal(th_http(&th_jobs.srv, "GET", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *lb = th_json(&r);
    cJSON *best = cJSON_GetArrayItem(cJSON_GetObjectItem(lb, "items"), 0);
    double score = cJSON_GetNumberValue(cJSON_GetObjectItem(best, "score"));
    fprintf(stderr, "best: %s %.4f\n", cJSON_GetStringValue(cJSON_GetObjectItem(best, "family")), score);
    assert_true(score >= 0.93);
    char model[64];
    snprintf(model, sizeof model, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(best, "model_id")));
    cJSON_Delete(lb);
    th_resp_free(&r);

    /* The team's leaderboard for the data set has the same best model. */
    snprintf(path, sizeof path, "/v1/leaderboards?dataset_id=%s", th_jobs.dataset);
    assert_int_equal(th_http(&th_jobs.srv, "GET", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    assert_non_null(strstr(r.body, model));
    th_resp_free(&r);

    /* Download the model; podium-predict and the endpoint agree. */
    snprintf(path, sizeof path, "/v1/models/%s/artifact", model);
    assert_int_equal(th_http(&th_jobs.srv, "GET", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    const char *tmp = getenv("PODIUM_TEST_TMP") ? getenv("PODIUM_TEST_TMP") : "/tmp";
    char file[600], out[700], cmd[2000];
    snprintf(file, sizeof file, "%s/e2e-%d.pdm", tmp, (int)getpid());
    FILE *f = fopen(file, "wb");
    assert_int_equal(fwrite(r.body, 1, r.body_len, f), r.body_len);
    fclose(f);
    th_resp_free(&r);
    snprintf(out, sizeof out, "%s.csv", file);
    snprintf(cmd, sizeof cmd, "%s/podium-predict %s tests/data/tabular/iris.csv > %s",
             getenv("PODIUM_BIN_DIR") ? getenv("PODIUM_BIN_DIR") : "bin", file, out);
    assert_int_equal(system(cmd), 0);

    assert_int_equal(th_predict_csv(&th_jobs.srv, model, "tests/data/tabular/iris.csv", &r), 0);
    assert_int_equal(r.status, 200);
    size_t plen;
    char *cli = th_read_file(out, &plen);
    /* Same rows, same labels, same probabilities (both print %.17g); the
     * endpoint quotes labels, podium-predict only where CSV needs it. */
    char *a = cli, *b = r.body;
    int rows = 0;
    for (char *la = strsep(&a, "\n"), *lb2 = strsep(&b, "\n"); la && lb2 && *la;
         la = strsep(&a, "\n"), lb2 = strsep(&b, "\n"), rows++) {
        char ca[512], cb[512];
        size_t j = 0;
        for (const char *p = la; *p && j < sizeof ca - 1; p++) if (*p != '"') ca[j++] = *p;
        ca[j] = '\0';
        j = 0;
        for (const char *p = lb2; *p && j < sizeof cb - 1; p++) if (*p != '"') cb[j++] = *p;
        cb[j] = '\0';
        assert_string_equal(ca, cb);
    }
    assert_int_equal(rows, 151); /* header + 150 */
    free(cli);
    th_resp_free(&r);
}

static void a_running_job_cancels_promptly(void **state)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"models\": [\"mlp\", \"rf\"],"
             " \"budget\": {\"max_trials\": 200, \"max_seconds\": 300}, \"parallelism\": 2}", th_jobs.dataset);
    struct th_resp r;
    char job[64], path[200];
    snprintf(job, sizeof job, "%s", th_post_job(&th_jobs.srv, body));
    assert_string_equal(th_wait_job(&th_jobs.srv, job, "running", 30), "running");
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", job);
    double t0 = th_now_s();
    assert_int_equal(th_http(&th_jobs.srv, "POST", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 202);
    th_resp_free(&r);
    assert_string_equal(th_wait_job(&th_jobs.srv, job, "cancelled", 10), "cancelled");
    double took = th_now_s() - t0;
    fprintf(stderr, "cancelled in %.2f s\n", took);
    assert_true(took < 3.0);
    snprintf(path, sizeof path, "/v1/jobs/%s", job);
    assert_int_equal(th_http(&th_jobs.srv, "GET", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    cJSON *j = th_json(&r);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "progress"), "running")), 0);
    cJSON_Delete(j);
    th_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_job_yields_a_leaderboard_and_a_model_that_predicts),
        cmocka_unit_test(a_running_job_cancels_promptly),
    };
    return cmocka_run_group_tests(tests, th_jobs_setup, th_jobs_teardown);
}

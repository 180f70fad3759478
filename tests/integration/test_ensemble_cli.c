/* test_ensemble_cli.c - ensemble selection through the real binaries:
 * three iris models trained with bin/podium-train, an ensemble built from
 * their model and OOF files with podium-train's {"ensemble": ...} spec,
 * then bin/podium-predict with the ensemble model; a regression ensemble;
 * and the errors (members on different cv splits or data sets, a bad
 * spec). Needs no database. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "tests/support/harness.h"

static char tmp[1024];

/* Train one member: NAME.pdm (+ .oof.csv) under tmp; returns its score. */
static double train_member(const char *name, const char *data, const char *target,
                           const char *family, const char *params, int seed)
{
    char spec[4096], spec_path[1200], out[1200], err[1200];
    snprintf(spec, sizeof spec,
             "{\"data\":\"%s\",\"target\":\"%s\",\"model\":{\"family\":\"%s\",\"params\":%s},"
             "\"cv\":{\"folds\":5,\"seed\":%d},\"artifact\":\"%s/%s.pdm\"}",
             data, target, family, params, seed, tmp, name);
    snprintf(spec_path, sizeof spec_path, "%s/%s.json", tmp, name);
    th_write_file(spec_path, spec);
    snprintf(out, sizeof out, "%s/%s.out", tmp, name);
    snprintf(err, sizeof err, "%s/%s.err", tmp, name);
    int rc = th_run("podium-train", spec_path, NULL, NULL, out, err);
    if (rc != 0) fail_msg("podium-train %s: exit %d", name, rc);
    cJSON *last = th_last_event(out);
    double score = cJSON_GetObjectItem(last, "score")->valuedouble;
    cJSON_Delete(last);
    return score;
}

/* Build an ensemble of the named members; returns the exit code and the
 * last event in *last. */
static int build(const char *name, const char *const *members, int n, const char *extra, cJSON **last)
{
    char spec[8192], spec_path[1200], out[1200], err[1200];
    int at = snprintf(spec, sizeof spec, "{\"ensemble\":{\"members\":[");
    for (int i = 0; i < n; i++)
        at += snprintf(spec + at, sizeof spec - (size_t)at,
                       "%s{\"artifact\":\"%s/%s.pdm\",\"oof\":\"%s/%s.pdm.oof.csv\"}", i ? "," : "", tmp,
                       members[i], tmp, members[i]);
    snprintf(spec + at, sizeof spec - (size_t)at, "],\"rounds\":50},\"artifact\":\"%s/%s.pdm\"%s}", tmp, name,
             extra ? extra : "");
    snprintf(spec_path, sizeof spec_path, "%s/%s.json", tmp, name);
    th_write_file(spec_path, spec);
    snprintf(out, sizeof out, "%s/%s.out", tmp, name);
    snprintf(err, sizeof err, "%s/%s.err", tmp, name);
    int rc = th_run("podium-train", spec_path, NULL, NULL, out, err);
    *last = th_last_event(out);
    return rc;
}

static size_t count_lines(const char *path)
{
    char *s = th_read_file(path, NULL);
    assert_non_null(s);
    size_t n = 0;
    for (char *p = s; *p; p++) n += *p == '\n';
    free(s);
    return n;
}

static void iris_three_members(void **state)
{
    const char *data = "tests/data/tabular/iris.csv";
    double s[3];
    s[0] = train_member("e_linear", data, "species", "linear", "{}", 0);
    s[1] = train_member("e_knn", data, "species", "knn", "{}", 0);
    s[2] = train_member("e_rf", data, "species", "rf", "{\"n_estimators\":50}", 0);
    double best = fmin(s[0], fmin(s[1], s[2]));
    const char *members[] = {"e_linear", "e_knn", "e_rf"};
    cJSON *last = NULL;
    char extra[1400];
    snprintf(extra, sizeof extra, ",\"metric\":\"logloss\",\"task\":\"classification\",\"data\":\"%s\"", data);
    int rc = build("e_ens", members, 3, extra, &last);
    if (rc != 0) fail_msg("ensemble exit %d: %s", rc, cJSON_PrintUnformatted(last));
    assert_string_equal(cJSON_GetObjectItem(last, "event")->valuestring, "result");
    assert_string_equal(cJSON_GetObjectItem(last, "family")->valuestring, "ensemble");
    double score = cJSON_GetObjectItem(last, "score")->valuedouble;
    print_message("iris logloss: members %.5f %.5f %.5f, ensemble %.5f\n", s[0], s[1], s[2], score);
    assert_true(score <= best + 1e-9);
    /* weights sum to 1, indices in range */
    const cJSON *p = cJSON_GetObjectItem(last, "params");
    double wsum = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(p, "members")) {
        int idx = cJSON_GetObjectItem(m, "model")->valueint;
        assert_true(idx >= 0 && idx < 3);
        wsum += cJSON_GetObjectItem(m, "weight")->valuedouble;
    }
    assert_true(fabs(wsum - 1) < 1e-9);
    assert_true(cJSON_GetObjectItem(p, "rounds")->valueint >= 1);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(last, "predict_us_per_row")));
    const cJSON *ll = cJSON_GetObjectItem(cJSON_GetObjectItem(last, "metrics"), "logloss");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ll, "folds")), 5);
    char art[1200], oof[1300], out[1200], err[1200];
    snprintf(art, sizeof art, "%s/e_ens.pdm", tmp);
    snprintf(oof, sizeof oof, "%s/e_ens.pdm.oof.csv", tmp);
    struct stat st;
    assert_int_equal(stat(art, &st), 0);
    assert_int_equal((double)st.st_size, cJSON_GetObjectItem(last, "model_bytes")->valuedouble);
    assert_int_equal(count_lines(oof), 151);
    cJSON_Delete(last);

    /* podium-predict with the ensemble */
    snprintf(out, sizeof out, "%s/e_pred.csv", tmp);
    snprintf(err, sizeof err, "%s/e_pred.err", tmp);
    rc = th_run("podium-predict", art, data, NULL, out, err);
    if (rc != 0) fail_msg("podium-predict exit %d: %s", rc, th_read_file(err, NULL));
    char *pred = th_read_file(out, NULL);
    assert_non_null(pred);
    assert_true(strncmp(pred, "prediction,proba_setosa,proba_versicolor,proba_virginica\n", 57) == 0);
    size_t correct = 0, rows = 0;
    char *save = NULL;
    strtok_r(pred, "\n", &save);
    for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save), rows++) {
        const char *want = rows < 50 ? "setosa," : rows < 100 ? "versicolor," : "virginica,";
        correct += strncmp(line, want, strlen(want)) == 0;
        double a, b, c;
        char lab[32];
        assert_int_equal(sscanf(line, "%31[^,],%lf,%lf,%lf", lab, &a, &b, &c), 4);
        assert_true(fabs(a + b + c - 1) < 1e-9);
    }
    assert_int_equal(rows, 150);
    assert_true(correct >= 140);
    free(pred);

    /* errors: members on another cv split, another data set, bad spec */
    train_member("e_knn_seed1", data, "species", "knn", "{}", 1);
    const char *split[] = {"e_linear", "e_knn_seed1"};
    rc = build("e_bad_split", split, 2, NULL, &last);
    assert_int_equal(rc, 2);
    assert_string_equal(cJSON_GetObjectItem(last, "kind")->valuestring, "bad_data");
    assert_non_null(strstr(cJSON_GetObjectItem(last, "message")->valuestring, "folds"));
    cJSON_Delete(last);
    train_member("e_wine", "tests/data/tabular/wine.csv", "cultivar", "linear", "{}", 0);
    const char *other[] = {"e_linear", "e_wine"};
    rc = build("e_bad_data", other, 2, NULL, &last);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(cJSON_GetObjectItem(last, "message")->valuestring, "schema"));
    cJSON_Delete(last);
    rc = build("e_bad_metric", members, 3, ",\"metric\":\"rmse\"", &last);
    assert_int_equal(rc, 2);
    assert_string_equal(cJSON_GetObjectItem(last, "field")->valuestring, "metric");
    cJSON_Delete(last);
    rc = build("e_none", members, 0, NULL, &last);
    assert_int_equal(rc, 2);
    assert_string_equal(cJSON_GetObjectItem(last, "kind")->valuestring, "bad_spec");
    cJSON_Delete(last);
    /* a failed build leaves no artifact */
    snprintf(art, sizeof art, "%s/e_bad_split.pdm", tmp);
    assert_int_equal(access(art, F_OK), -1);
}

static void regression_two_members(void **state)
{
    const char *data = "tests/data/tabular/diabetes.csv";
    double a = train_member("r_linear", data, "progression", "linear", "{}", 0);
    double b = train_member("r_rf", data, "progression", "rf", "{\"n_estimators\":50}", 0);
    const char *members[] = {"r_linear", "r_rf"};
    cJSON *last = NULL;
    int rc = build("r_ens", members, 2, ",\"metric\":\"rmse\"", &last);
    if (rc != 0) fail_msg("ensemble exit %d: %s", rc, cJSON_PrintUnformatted(last));
    double score = cJSON_GetObjectItem(last, "score")->valuedouble;
    print_message("diabetes rmse: members %.4f %.4f, ensemble %.4f\n", a, b, score);
    assert_true(score <= fmin(a, b) + 1e-9);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(last, "predict_us_per_row")));
    cJSON_Delete(last);
    char art[1200], out[1200], err[1200];
    snprintf(art, sizeof art, "%s/r_ens.pdm", tmp);
    snprintf(out, sizeof out, "%s/r_pred.csv", tmp);
    snprintf(err, sizeof err, "%s/r_pred.err", tmp);
    assert_int_equal(th_run("podium-predict", art, data, NULL, out, err), 0);
    assert_int_equal(count_lines(out), 443);
}

int main(void)
{
    const char *t = getenv("PODIUM_TEST_TMP");
    snprintf(tmp, sizeof tmp, "%s", t && *t ? t : "/tmp");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iris_three_members),
        cmocka_unit_test(regression_two_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_driver.c - podium-train's driver in-process: spec validation with
 * field names, column typing and task inference (schema), per-fold
 * preprocessing without leakage (medians, one-hot, unseen levels, scaling,
 * save/load), the event sequence of a run, reproducibility, a bad
 * parameter named in the error, cancellation leaving no artifact, holdout
 * and rows without a target. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/csv.h"
#include "trainers/driver.h"
#include "trainers/preprocess.h"
#include "trainers/schema.h"

static const char *tmpdir(void)
{
    const char *t = getenv("PODIUM_TEST_TMP");
    return t && *t ? t : "/tmp";
}

/* ---- spec ---------------------------------------------------------------- */

static void expect_spec_error(const char *json, const char *field)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    struct driver_spec s;
    struct driver_error e;
    int rc = driver_spec_parse(j, &s, &e);
    if (rc != DRIVER_EBADSPEC) fail_msg("expected a bad spec for %s", json);
    if (strcmp(e.field, field) != 0) fail_msg("%s: field '%s', expected '%s' (%s)", json, e.field, field, e.message);
    assert_int_equal(driver_exit_code(rc), 2);
    cJSON *ev = driver_error_event(&e);
    assert_string_equal(cJSON_GetObjectItem(ev, "kind")->valuestring, "bad_spec");
    cJSON_Delete(ev);
    driver_spec_free(&s);
    cJSON_Delete(j);
}

#define M "\"model\":{\"family\":\"linear\"}"

static void spec_errors_name_the_field(void **state)
{
    expect_spec_error("[]", "");
    expect_spec_error("{\"target\":\"y\"," M "}", "data");
    expect_spec_error("{\"data\":\"\",\"target\":\"y\"," M "}", "data");
    expect_spec_error("{\"data\":\"a.csv\"," M "}", "target");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"}", "model");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\",\"model\":{}}", "model.family");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\",\"model\":{\"family\":\"svm\"}}", "model.family");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\",\"model\":{\"family\":\"gbm\",\"params\":3}}", "model.params");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\",\"model\":{\"family\":\"gbm\",\"parms\":{}}}", "model.parms");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"," M ",\"task\":\"ranking\"}", "task");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"," M ",\"cv\":{\"folds\":1}}", "cv.folds");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"," M ",\"cv\":{\"folds\":2.5}}", "cv.folds");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"," M ",\"cv\":{\"holdout\":1}}", "cv.holdout");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"," M ",\"cv\":{\"holdout\":0.2,\"folds\":3}}", "cv");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"," M ",\"cv\":{\"seed\":-1}}", "cv.seed");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"," M ",\"cv\":{\"shuffle\":true}}", "cv.shuffle");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"," M ",\"metric\":\"auc\"}", "metric");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"," M ",\"threads\":0}", "threads");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"," M ",\"threads\":\"2\"}", "threads");
    expect_spec_error("{\"data\":\"a.csv\",\"target\":\"y\"," M ",\"artifact\":7}", "artifact");

    /* defaults and a full spec */
    cJSON *j = cJSON_Parse("{\"data\":\"a.csv\",\"target\":\"y\",\"task\":\"classification\","
                           "\"model\":{\"family\":\"gbm\",\"params\":{\"max_depth\":3}},"
                           "\"cv\":{\"holdout\":0.25,\"seed\":7},\"metric\":\"logloss\","
                           "\"threads\":2,\"artifact\":\"m.pdm\",\"job_id\":\"x\"}");
    struct driver_spec s;
    struct driver_error e;
    assert_int_equal(driver_spec_parse(j, &s, &e), DRIVER_OK);
    assert_int_equal(s.task, PD_TASK_CLASSIFICATION);
    assert_string_equal(s.family->name, "gbm");
    assert_int_equal(s.folds, 0);
    assert_float_equal(s.holdout, 0.25, 0);
    assert_int_equal(s.seed, 7);
    assert_string_equal(driver_metric_name(s.metric), "logloss");
    assert_int_equal(s.threads, 2);
    assert_string_equal(s.artifact, "m.pdm");
    assert_non_null(s.params);
    driver_spec_free(&s);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"data\":\"a.csv\",\"target\":\"y\"," M "}");
    assert_int_equal(driver_spec_parse(j, &s, &e), DRIVER_OK);
    assert_int_equal(s.folds, 5);
    assert_int_equal(s.seed, 0);
    assert_int_equal(s.task, SCHEMA_TASK_AUTO);
    assert_int_equal(s.metric, -1);
    assert_null(s.artifact);
    driver_spec_free(&s);
    cJSON_Delete(j);
    assert_int_equal(driver_exit_code(DRIVER_EBADDATA), 2);
    assert_int_equal(driver_exit_code(DRIVER_EINTERNAL), 3);
    assert_int_equal(driver_exit_code(DRIVER_ECANCELLED), 4);
}

/* ---- schema -------------------------------------------------------------- */

static void load_buf(const char *text, struct csv_table *t)
{
    struct csv_error ce;
    if (csv_table_load_buffer(text, strlen(text), NULL, t, &ce) != 0) fail_msg("%s", ce.message);
}

static void schema_types_and_task(void **state)
{
    /* 24 rows: id (row number), cid (named id, repeats), const, flag
     * (booleans), num (with missing), cat (3 levels), name (all distinct
     * strings), label (a/b) */
    char text[8192];
    size_t len = (size_t)snprintf(text, sizeof text, "id,customerId,const,flag,num,cat,name,label\n");
    for (int i = 0; i < 24; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%d,%d,7,%s,%s,%s,n%d,%s\n", i + 1,
                                100 + i % 20, i % 3 ? "TRUE" : "false", i % 5 ? "1.5" : "NA",
                                i % 3 == 0 ? "x" : i % 3 == 1 ? "y" : "z", i, i % 2 ? "b" : "a");
    struct csv_table t;
    load_buf(text, &t);
    struct schema s;
    char err[256];
    assert_int_equal(schema_infer(&t, "label", SCHEMA_TASK_AUTO, &s, err, sizeof err), 0);
    assert_int_equal(s.n_cols, 7);
    const enum schema_type want[7] = {SCHEMA_IDENTIFIER, SCHEMA_IDENTIFIER, SCHEMA_CONSTANT,
                                      SCHEMA_BOOLEAN, SCHEMA_CONSTANT /* 1.5 or missing */,
                                      SCHEMA_CATEGORICAL, SCHEMA_IDENTIFIER};
    for (int c = 0; c < 7; c++)
        if (s.cols[c].type != want[c])
            fail_msg("column %s: %s, expected %s", s.cols[c].name, schema_type_name(s.cols[c].type),
                     schema_type_name(want[c]));
    assert_int_equal(s.task, PD_TASK_CLASSIFICATION);
    assert_int_equal(s.n_classes, 2);
    assert_string_equal(s.classes[0], "a");

    /* JSON round trip */
    cJSON *j = schema_to_json(&s);
    struct schema s2;
    assert_int_equal(schema_from_json(j, &s2, err, sizeof err), 0);
    assert_int_equal(s2.n_cols, s.n_cols);
    assert_int_equal(s2.cols[3].type, SCHEMA_BOOLEAN);
    assert_string_equal(s2.classes[1], "b");
    schema_free(&s2);
    cJSON_Delete(j);
    schema_free(&s);

    /* forcing regression on a string target is an error; an unknown
     * target column too */
    assert_int_equal(schema_infer(&t, "label", PD_TASK_REGRESSION, &s, err, sizeof err), -1);
    assert_int_equal(schema_infer(&t, "nope", SCHEMA_TASK_AUTO, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "nope"));
    csv_table_free(&t);

    /* auto: integer target with 3 values over 60 rows -> classification,
     * sorted numerically ("2" < "10"); a float target -> regression */
    len = (size_t)snprintf(text, sizeof text, "x,k,v\n");
    for (int i = 0; i < 60; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%d,%d,%g\n", i % 7, i % 3 == 0 ? 2 : i % 3 == 1 ? 10 : 3,
                                i * 0.37);
    load_buf(text, &t);
    assert_int_equal(schema_infer(&t, "k", SCHEMA_TASK_AUTO, &s, err, sizeof err), 0);
    assert_int_equal(s.task, PD_TASK_CLASSIFICATION);
    assert_int_equal(s.n_classes, 3);
    assert_string_equal(s.classes[0], "2");
    assert_string_equal(s.classes[2], "10");
    double y[60];
    assert_int_equal(schema_encode_target(&s, &t, y, err, sizeof err), 0);
    assert_float_equal(y[0], 0, 0);
    assert_float_equal(y[1], 2, 0);
    schema_free(&s);
    assert_int_equal(schema_infer(&t, "v", SCHEMA_TASK_AUTO, &s, err, sizeof err), 0);
    assert_int_equal(s.task, PD_TASK_REGRESSION);
    schema_free(&s);
    csv_table_free(&t);
}

/* ---- preprocessing -------------------------------------------------------- */

static void preprocessing_fits_on_training_rows_only(void **state)
{
    /* num: 1 2 3 NA 100; cat: a b a NA c; label */
    const char *text = "num,cat,flag,label\n1,a,true,p\n2,b,false,q\n3,a,true,p\nNA,,false,q\n100,c,true,p\n";
    struct csv_table t;
    load_buf(text, &t);
    struct schema s;
    char err[256];
    assert_int_equal(schema_infer(&t, "label", PD_TASK_CLASSIFICATION, &s, err, sizeof err), 0);
    assert_int_equal(s.cols[0].type, SCHEMA_NUMERIC);
    assert_int_equal(s.cols[1].type, SCHEMA_CATEGORICAL);
    assert_int_equal(s.cols[2].type, SCHEMA_BOOLEAN);
    struct schema_frame f;
    assert_int_equal(schema_frame_build(&s, &t, &f, err, sizeof err), 0);

    /* fit on rows 0..3: median of {1,2,3} = 2 (row 4's 100 unseen),
     * levels {a,b} (c unseen), indicator for num */
    size_t rows[4] = {0, 1, 2, 3};
    struct prep_opts o = {.impute = 1, .scale = 0, .native_categorical = 0, .onehot_max_levels = 16};
    struct prep *p;
    assert_int_equal(prep_fit(&s, &f, rows, 4, &o, &p, err, sizeof err), 0);
    /* num, num_missing, cat=a, cat=b, flag */
    assert_int_equal(prep_width(p), 5);
    assert_null(prep_levels(p));
    float x[25];
    prep_transform(p, &f, NULL, 5, x);
    const float want[25] = {
        1, 0, 1, 0, 1,
        2, 0, 0, 1, 0,
        3, 0, 1, 0, 1,
        2, 1, 0, 0, 0,   /* imputed median, missing category: all zero */
        100, 0, 0, 0, 1, /* unseen category c: all zero */
    };
    assert_memory_equal(x, want, sizeof want);

    /* save/load gives the same transform */
    struct pd_buf b;
    pd_buf_init(&b);
    assert_int_equal(prep_save(p, &b), 0);
    struct pd_reader r;
    pd_reader_init(&r, b.data, b.len);
    struct prep *p2;
    assert_int_equal(prep_load(&r, &s, &p2, err, sizeof err), 0);
    assert_int_equal(r.left, 0);
    float x2[25];
    prep_transform(p2, &f, NULL, 5, x2);
    assert_memory_equal(x, x2, sizeof x);
    prep_free(p2);
    for (size_t cut = 0; cut < b.len; cut++) {
        pd_reader_init(&r, b.data, cut);
        if (prep_load(&r, &s, &p2, err, sizeof err) == 0) fail_msg("a cut at %zu loaded", cut);
    }
    pd_buf_free(&b);
    prep_free(p);

    /* scaling (training mean/sd of the imputed column), native codes,
     * and no imputation for families that handle missing values */
    o = (struct prep_opts){.impute = 0, .scale = 1, .native_categorical = 1, .onehot_max_levels = 16};
    assert_int_equal(prep_fit(&s, &f, rows, 4, &o, &p, err, sizeof err), 0);
    assert_int_equal(prep_width(p), 3);
    const int *lv = prep_levels(p);
    assert_non_null(lv);
    assert_int_equal(lv[0], 0);
    assert_int_equal(lv[1], 2);
    prep_transform(p, &f, NULL, 5, x);
    /* num over {1,2,3}: mean 2, sd sqrt(2/3) */
    double sd = sqrt(2.0 / 3);
    assert_float_equal(x[0], (float)((1 - 2) / sd), 1e-6);
    assert_true(isnan(x[9]));       /* row 3 num missing stays NaN */
    assert_float_equal(x[1], 0, 0); /* a */
    assert_float_equal(x[4], 1, 0); /* b */
    assert_true(isnan(x[10]));      /* missing category */
    assert_true(isnan(x[13]));      /* unseen category */
    prep_free(p);

    /* a level cap of 1 turns cat into an ordinal column + indicator */
    o = (struct prep_opts){.impute = 1, .scale = 0, .native_categorical = 0, .onehot_max_levels = 1};
    assert_int_equal(prep_fit(&s, &f, rows, 4, &o, &p, err, sizeof err), 0);
    assert_int_equal(prep_width(p), 5); /* num, ind, cat, ind, flag */
    prep_transform(p, &f, NULL, 5, x);
    assert_float_equal(x[2], 0, 0);     /* a */
    assert_float_equal(x[7], 1, 0);     /* b */
    assert_float_equal(x[17], 0, 0);    /* missing -> most frequent (a) */
    assert_float_equal(x[18], 1, 0);
    prep_free(p);

    schema_frame_free(&f);
    schema_free(&s);
    csv_table_free(&t);
}

/* ---- runs ---------------------------------------------------------------- */

struct events {
    int n;
    char *names[64];
    char *last;
};

static void collect(void *ctx, const cJSON *ev)
{
    struct events *e = ctx;
    const cJSON *name = cJSON_GetObjectItem(ev, "event");
    assert_true(cJSON_IsString(name));
    if (e->n < 64 && strcmp(name->valuestring, "iteration") != 0) e->names[e->n++] = strdup(name->valuestring);
    free(e->last);
    e->last = cJSON_PrintUnformatted(ev);
}

static void events_free(struct events *e)
{
    for (int i = 0; i < e->n; i++) free(e->names[i]);
    free(e->last);
    memset(e, 0, sizeof *e);
}

static int run_spec(const char *json, const volatile sig_atomic_t *cancel,
                    struct events *ev, struct driver_result *res, struct driver_error *e)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    struct driver_spec s;
    int rc = driver_spec_parse(j, &s, e);
    cJSON_Delete(j);
    if (rc != DRIVER_OK) {
        driver_spec_free(&s);
        return rc;
    }
    struct driver_opts o = {.cancel = cancel, .emit = collect, .emit_ctx = ev, .progress_interval = 0.1};
    rc = driver_run(&s, &o, res, e);
    driver_spec_free(&s);
    return rc;
}

static double metric_mean(const cJSON *result, const char *name)
{
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(result, "metrics"), name);
    return cJSON_GetObjectItem(m, "mean")->valuedouble;
}

static void iris_run_events_and_result(void **state)
{
    char spec[1024], art[512];
    snprintf(art, sizeof art, "%s/driver_iris.pdm", tmpdir());
    snprintf(spec, sizeof spec,
             "{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"species\","
             "\"model\":{\"family\":\"linear\"},\"cv\":{\"folds\":5,\"seed\":3},"
             "\"metric\":\"accuracy\",\"threads\":2,\"artifact\":\"%s\"}", art);
    struct events ev = {0};
    struct driver_result res;
    struct driver_error e;
    int rc = run_spec(spec, NULL, &ev, &res, &e);
    if (rc != DRIVER_OK) fail_msg("%s: %s", e.field, e.message);
    /* start, 5 x (fold, fold_done), refit, result */
    assert_int_equal(ev.n, 13);
    assert_string_equal(ev.names[0], "start");
    for (int f = 0; f < 5; f++) {
        assert_string_equal(ev.names[1 + 2 * f], "fold");
        assert_string_equal(ev.names[2 + 2 * f], "fold_done");
    }
    assert_string_equal(ev.names[11], "refit");
    assert_string_equal(ev.names[12], "result");
    const cJSON *r = res.result;
    assert_string_equal(cJSON_GetObjectItem(r, "metric")->valuestring, "accuracy");
    assert_true(cJSON_GetObjectItem(r, "score")->valuedouble >= 0.93);
    assert_float_equal(cJSON_GetObjectItem(r, "score")->valuedouble, metric_mean(r, "accuracy"), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "metrics"), "logloss"), "folds")), 5);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "metrics"), "roc_auc"));
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "metrics"), "rmse"));
    assert_int_equal(cJSON_GetObjectItem(r, "n_rows")->valueint, 150);
    assert_int_equal(cJSON_GetObjectItem(r, "n_features")->valueint, 4);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "classes")), 3);
    assert_string_equal(cJSON_GetObjectItem(r, "device")->valuestring, "cpu");
    assert_true(cJSON_GetObjectItem(r, "model_bytes")->valuedouble > 100);
    assert_string_equal(cJSON_GetObjectItem(r, "family")->valuestring, "linear");
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(r, "params")));
    /* the artifact and the OOF file exist; the OOF has a line per row */
    assert_int_equal(access(art, R_OK), 0);
    FILE *f = fopen(res.oof_path, "r");
    assert_non_null(f);
    char line[1024];
    int lines = 0;
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "row,fold,target,prediction,proba_setosa,proba_versicolor,proba_virginica\n");
    while (fgets(line, sizeof line, f)) lines++;
    fclose(f);
    assert_int_equal(lines, 150);
    driver_result_free(&res);
    events_free(&ev);
    unlink(art);
}

static void reproducible_for_a_seed(void **state)
{
    const char *fams[] = {"gbm", "rf", "mlp"};
    for (int i = 0; i < 3; i++) {
        char spec[1024];
        snprintf(spec, sizeof spec,
                 "{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"species\","
                 "\"model\":{\"family\":\"%s\",\"params\":{%s}},\"cv\":{\"folds\":3,\"seed\":11},\"threads\":2}",
                 fams[i], i == 0 ? "\"n_estimators\":30" : i == 1 ? "\"n_estimators\":30" : "\"max_iter\":50");
        char *m[2];
        for (int k = 0; k < 2; k++) {
            struct events ev = {0};
            struct driver_result res;
            struct driver_error e;
            if (run_spec(spec, NULL, &ev, &res, &e) != DRIVER_OK) fail_msg("%s: %s", fams[i], e.message);
            m[k] = cJSON_PrintUnformatted(cJSON_GetObjectItem(res.result, "metrics"));
            driver_result_free(&res);
            events_free(&ev);
        }
        assert_string_equal(m[0], m[1]);
        free(m[0]);
        free(m[1]);
    }
}

static void bad_param_is_named(void **state)
{
    struct events ev = {0};
    struct driver_result res;
    struct driver_error e;
    int rc = run_spec("{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"species\","
                      "\"model\":{\"family\":\"gbm\",\"params\":{\"max_depth\":-3}}}",
                      NULL, &ev, &res, &e);
    assert_int_equal(rc, DRIVER_EBADSPEC);
    assert_string_equal(e.field, "model.params.max_depth");
    assert_non_null(strstr(e.message, "max_depth"));
    driver_result_free(&res);
    rc = run_spec("{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"species\","
                  "\"model\":{\"family\":\"knn\",\"params\":{\"n_neighbours\":3}}}",
                  NULL, &ev, &res, &e);
    assert_int_equal(rc, DRIVER_EBADSPEC);
    assert_string_equal(e.field, "model.params.n_neighbours");
    driver_result_free(&res);
    /* a metric of the wrong task; a family without regression */
    rc = run_spec("{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"species\","
                  "\"model\":{\"family\":\"nb\"},\"metric\":\"r2\"}", NULL, &ev, &res, &e);
    assert_int_equal(rc, DRIVER_EBADSPEC);
    assert_string_equal(e.field, "metric");
    driver_result_free(&res);
    rc = run_spec("{\"data\":\"tests/data/tabular/diabetes.csv\",\"target\":\"progression\","
                  "\"model\":{\"family\":\"nb\"}}", NULL, &ev, &res, &e);
    assert_int_equal(rc, DRIVER_EBADSPEC);
    assert_string_equal(e.field, "model.family");
    driver_result_free(&res);
    /* data errors */
    rc = run_spec("{\"data\":\"tests/data/tabular/nope.csv\",\"target\":\"species\","
                  "\"model\":{\"family\":\"nb\"}}", NULL, &ev, &res, &e);
    assert_int_equal(rc, DRIVER_EBADDATA);
    assert_string_equal(e.field, "data");
    driver_result_free(&res);
    rc = run_spec("{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"Species\","
                  "\"model\":{\"family\":\"nb\"}}", NULL, &ev, &res, &e);
    assert_int_equal(rc, DRIVER_EBADDATA);
    assert_string_equal(e.field, "target");
    driver_result_free(&res);
    events_free(&ev);
}

static void cancelled_run_leaves_nothing(void **state)
{
    char spec[1024], art[512];
    snprintf(art, sizeof art, "%s/driver_cancel.pdm", tmpdir());
    snprintf(spec, sizeof spec,
             "{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"species\","
             "\"model\":{\"family\":\"mlp\"},\"artifact\":\"%s\"}", art);
    volatile sig_atomic_t cancel = 1;
    struct events ev = {0};
    struct driver_result res;
    struct driver_error e;
    int rc = run_spec(spec, &cancel, &ev, &res, &e);
    assert_int_equal(rc, DRIVER_ECANCELLED);
    assert_int_equal(driver_exit_code(rc), 4);
    assert_int_not_equal(access(art, F_OK), 0);
    driver_result_free(&res);
    events_free(&ev);
}

static void holdout_and_missing_targets(void **state)
{
    /* iris with three targets blanked */
    char path[512], spec[1024];
    snprintf(path, sizeof path, "%s/driver_iris_gaps.csv", tmpdir());
    FILE *in = fopen("tests/data/tabular/iris.csv", "r"), *out = fopen(path, "w");
    assert_non_null(in);
    assert_non_null(out);
    char line[256];
    int i = 0;
    while (fgets(line, sizeof line, in)) {
        if (i == 10 || i == 60 || i == 110) {
            char *c = strrchr(line, ',');
            strcpy(c + 1, "\n");
        }
        fputs(line, out);
        i++;
    }
    fclose(in);
    fclose(out);
    snprintf(spec, sizeof spec,
             "{\"data\":\"%s\",\"target\":\"species\",\"model\":{\"family\":\"knn\"},"
             "\"cv\":{\"holdout\":0.2,\"seed\":1},\"metric\":\"f1_macro\"}", path);
    struct events ev = {0};
    struct driver_result res;
    struct driver_error e;
    if (run_spec(spec, NULL, &ev, &res, &e) != DRIVER_OK) fail_msg("%s", e.message);
    assert_int_equal(cJSON_GetObjectItem(res.result, "n_rows")->valueint, 147);
    assert_int_equal(cJSON_GetObjectItem(res.result, "folds")->valueint, 1);
    assert_true(cJSON_GetObjectItem(res.result, "score")->valuedouble > 0.85);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(res.result, "artifact")));
    driver_result_free(&res);
    events_free(&ev);
    unlink(path);
}

static int count_event(const char *name, const struct events *ev)
{
    int n = 0;
    for (int i = 0; i < ev->n; i++) n += strcmp(ev->names[i], name) == 0;
    return n;
}

static void early_stopping_and_unwritable_artifact(void **state)
{
    struct events ev = {0};
    struct driver_result res;
    struct driver_error e;
    /* early stopping holds out part of each training set: it runs, and the
     * final model stops before 400 rounds */
    int rc = run_spec("{\"data\":\"tests/data/tabular/breast_cancer.csv\",\"target\":\"diagnosis\","
                      "\"model\":{\"family\":\"gbm\",\"params\":{\"n_estimators\":400,"
                      "\"early_stopping_rounds\":5,\"max_depth\":3}},\"cv\":{\"folds\":3},\"threads\":2}",
                      NULL, &ev, &res, &e);
    if (rc != DRIVER_OK) fail_msg("%s", e.message);
    assert_int_equal(count_event("fold_done", &ev), 3);
    assert_true(cJSON_GetObjectItem(res.result, "score")->valuedouble < 0.2); /* logloss */
    assert_true(cJSON_GetObjectItem(res.result, "metric") != NULL);
    driver_result_free(&res);
    events_free(&ev);

    /* an artifact that cannot be written is found before training */
    rc = run_spec("{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"species\","
                  "\"model\":{\"family\":\"nb\"},\"artifact\":\"/nonexistent-dir/m.pdm\"}",
                  NULL, &ev, &res, &e);
    assert_int_equal(rc, DRIVER_EBADSPEC);
    assert_string_equal(e.field, "artifact");
    assert_int_equal(ev.n, 0);
    driver_result_free(&res);
    events_free(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spec_errors_name_the_field),
        cmocka_unit_test(schema_types_and_task),
        cmocka_unit_test(preprocessing_fits_on_training_rows_only),
        cmocka_unit_test(iris_run_events_and_result),
        cmocka_unit_test(reproducible_for_a_seed),
        cmocka_unit_test(bad_param_is_named),
        cmocka_unit_test(cancelled_run_leaves_nothing),
        cmocka_unit_test(holdout_and_missing_targets),
        cmocka_unit_test(early_stopping_and_unwritable_artifact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

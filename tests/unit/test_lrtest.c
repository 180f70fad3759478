/* test_lrtest.c - the learning-rate finder inside podium-train: the spec
 * member lr_find (defaults, each bad member named), the mlp family's range
 * test (the record's shape, a bad configuration), learning_rate "auto"
 * (parsing and its other names; the fit after the test is bit for bit the
 * fit at the suggested rate, so the test left weights, Adam's state and
 * the generator as they were), the driver's range-test mode on iris (a
 * result with the curve and no model), and lrfind_from_record (a stored
 * record suggests and draws as the live finder did), and the scheduler's
 * lr_find strategy (one trial: the family with its params plus the
 * settings). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "nn/lrfind.h"
#include "scheduler/strategy.h"
#include "trainers/driver.h"
#include "trainers/lrtest.h"
#include "trainers/mlp.h"
#include "trainers/rng.h"

static const struct pd_family *F = &pd_family_mlp;

/* Three Gaussian blobs in 4 dimensions, 50 rows each. */
enum { N = 150, D = 4, K = 3 };
static float X[N * D];
static double Y[N];

static void make_blobs(void)
{
    struct pd_rng r;
    pd_rng_seed(&r, 7);
    for (int i = 0; i < N; i++) {
        int c = i % K;
        Y[i] = c;
        for (int j = 0; j < D; j++) X[i * D + j] = (float)(pd_rng_normal(&r) + (j == c ? 2.5 : 0));
    }
}

static int parse(const char *json, void **p, char *err, size_t errlen)
{
    struct pd_task t = {PD_TASK_CLASSIFICATION, K};
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    int rc = F->params_parse(j, &t, p, err, errlen);
    cJSON_Delete(j);
    return rc;
}

static void lr_find_member(void **state)
{
    struct lrfind_config c;
    char field[96], msg[256];
    assert_int_equal(lrtest_config_parse(NULL, &c, field, sizeof field, msg, sizeof msg), 0);
    assert_true(c.start_lr == 1e-7 && c.end_lr == 10 && c.iterations == 100 && c.method == LRFIND_VALLEY);
    cJSON *j = cJSON_Parse("{\"start\": 1e-5, \"end\": 1, \"iterations\": 40, \"suggestion\": \"steep\"}");
    assert_int_equal(lrtest_config_parse(j, &c, field, sizeof field, msg, sizeof msg), 0);
    assert_true(c.start_lr == 1e-5 && c.end_lr == 1 && c.iterations == 40 && c.method == LRFIND_STEEP);
    cJSON_Delete(j);
    static const struct { const char *json, *field; } bad[] = {
        {"[]", "lr_find"},
        {"{\"start\": 0}", "lr_find.start"},
        {"{\"start\": \"1e-7\"}", "lr_find.start"},
        {"{\"end\": -1}", "lr_find.end"},
        {"{\"end\": 1e7}", "lr_find.end"},
        {"{\"start\": 1, \"end\": 0.5}", "lr_find.end"},
        {"{\"iterations\": 5}", "lr_find.iterations"},
        {"{\"iterations\": 50.5}", "lr_find.iterations"},
        {"{\"suggestion\": \"lowest\"}", "lr_find.suggestion"},
        {"{\"beta\": 0.9}", "lr_find.beta"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = cJSON_Parse(bad[i].json);
        assert_int_equal(lrtest_config_parse(j, &c, field, sizeof field, msg, sizeof msg), -1);
        assert_string_equal(field, bad[i].field);
        assert_non_null(strstr(msg, bad[i].field));
        cJSON_Delete(j);
    }
}

static void learning_rate_names(void **state)
{
    void *p;
    char err[256];
    /* learning_rate is learning_rate_init's other name */
    assert_int_equal(parse("{\"learning_rate\": 0.01}", &p, err, sizeof err), 0);
    cJSON *pj = F->params_json(p);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(pj, "learning_rate_init")) == 0.01);
    cJSON_Delete(pj);
    F->params_free(p);
    /* scikit-learn's schedule name sets nothing */
    assert_int_equal(parse("{\"learning_rate\": \"constant\"}", &p, err, sizeof err), 0);
    pj = F->params_json(p);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(pj, "learning_rate_init")) == 1e-3);
    cJSON_Delete(pj);
    F->params_free(p);
    static const char *const autos[] = {"{\"learning_rate\": \"auto\"}", "{\"learning_rate_init\": \"auto\"}"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(parse(autos[i], &p, err, sizeof err), 0);
        pj = F->params_json(p);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(pj, "learning_rate_init")), "auto");
        assert_null(cJSON_GetObjectItem(pj, "learning_rate_found"));   /* no fit yet */
        cJSON_Delete(pj);
        F->params_free(p);
    }
    static const char *const bad[] = {
        "{\"learning_rate\": 0.01, \"learning_rate_init\": 0.01}",
        "{\"learning_rate\": \"auto\", \"learning_rate_init\": 0.001}",
        "{\"learning_rate\": \"adaptive\"}",
        "{\"learning_rate_init\": \"constant\"}",
        "{\"learning_rate\": 0}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = NULL;
        assert_int_equal(parse(bad[i], &p, err, sizeof err), PD_EPARAM);
        assert_null(p);
        assert_non_null(strstr(err, "learning_rate"));
    }
}

static void *fit(const char *json, uint64_t seed, void **params)
{
    char err[256];
    struct pd_task t = {PD_TASK_CLASSIFICATION, K};
    struct pd_data tr = {N, D, X, Y, NULL, NULL};
    struct pd_fit_opts o = {.threads = 1, .seed = seed};
    void *m = NULL;
    if (parse(json, params, err, sizeof err) != 0) fail_msg("%s: %s", json, err);
    if (F->fit(*params, &t, &tr, NULL, &o, &m, err, sizeof err) != 0) fail_msg("%s: %s", json, err);
    return m;
}

static void auto_trains_at_the_suggestion(void **state)
{
    make_blobs();
    void *pa, *pb;
    void *ma = fit("{\"learning_rate\": \"auto\", \"hidden_layer_sizes\": [16], \"max_iter\": 40,"
                   " \"batch_size\": 32}", 3, &pa);
    cJSON *pj = F->params_json(pa);
    double found = cJSON_GetNumberValue(cJSON_GetObjectItem(pj, "learning_rate_found"));
    cJSON_Delete(pj);
    fprintf(stderr, "blobs: auto chose %.4g\n", found);
    assert_true(found > 1e-7 && found < 10);
    char json[256];
    snprintf(json, sizeof json, "{\"learning_rate_init\": %.17g, \"hidden_layer_sizes\": [16],"
             " \"max_iter\": 40, \"batch_size\": 32}", found);
    void *mb = fit(json, 3, &pb);
    size_t np = pd_mlp_n_params(ma);
    assert_int_equal(np, pd_mlp_n_params(mb));
    assert_memory_equal(pd_mlp_params(ma), pd_mlp_params(mb), np * sizeof(float));
    /* and it learned */
    double *pred = malloc(N * K * sizeof *pred);
    assert_int_equal(F->predict(ma, X, N, D, 1, pred), 0);
    int right = 0;
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int k = 1; k < K; k++) if (pred[i * K + k] > pred[i * K + best]) best = k;
        right += best == (int)Y[i];
    }
    assert_true(right >= 0.85 * N);
    free(pred);
    F->model_free(ma);
    F->model_free(mb);
    F->params_free(pa);
    F->params_free(pb);
}

static void mlp_range_test_record(void **state)
{
    make_blobs();
    void *p;
    char err[256];
    assert_int_equal(parse("{\"hidden_layer_sizes\": [16], \"batch_size\": 50}", &p, err, sizeof err), 0);
    struct pd_task t = {PD_TASK_CLASSIFICATION, K};
    struct pd_data tr = {N, D, X, Y, NULL, NULL};
    struct pd_fit_opts o = {.threads = 1, .seed = 1};
    struct lrfind_config c;
    lrfind_config_init(&c);
    c.iterations = 60;
    cJSON *out = NULL;
    assert_non_null(F->lr_find);
    assert_int_equal(F->lr_find(p, &t, &tr, &o, &c, &out, err, sizeof err), 0);
    const cJSON *lrs = cJSON_GetObjectItem(out, "lrs");
    int n = cJSON_GetArraySize(lrs);
    assert_true(n >= 10 && n <= 60);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(out, "losses")), n);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(out, "smoothed")), n);
    assert_true(fabs(cJSON_GetNumberValue(cJSON_GetArrayItem(lrs, 0)) - 1e-7) < 1e-16);
    /* the first loss is the untrained network's: about log(3) */
    double l0 = cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(out, "losses"), 0));
    assert_true(l0 > 0.5 && l0 < 3);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(out, "suggestion"), "lr")));
    cJSON_Delete(out);
    /* the same seed, the same record */
    cJSON *again = NULL;
    assert_int_equal(F->lr_find(p, &t, &tr, &o, &c, &again, err, sizeof err), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(again, "lrs")), n);
    cJSON_Delete(again);
    c.iterations = 2;
    assert_int_equal(F->lr_find(p, &t, &tr, &o, &c, &out, err, sizeof err), PD_EPARAM);
    assert_null(out);
    assert_non_null(strstr(err, "lr_find"));
    F->params_free(p);
}

static int run_spec(const char *json, struct driver_result *res, struct driver_error *e)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    struct driver_spec s;
    int rc = driver_spec_parse(j, &s, e);
    cJSON_Delete(j);
    if (rc == DRIVER_OK) {
        struct driver_opts o = {0};
        rc = driver_run(&s, &o, res, e);
    }
    driver_spec_free(&s);
    return rc;
}

static void driver_mode_on_iris(void **state)
{
    struct driver_result res;
    struct driver_error e;
    int rc = run_spec("{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"species\","
                      "\"model\":{\"family\":\"mlp\"},\"lr_find\":{\"iterations\":50,"
                      "\"suggestion\":\"minimum\"}}", &res, &e);
    if (rc != DRIVER_OK) fail_msg("%s: %s", e.field, e.message);
    const cJSON *r = res.result;
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "event")), "result");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "mode")), "lr_find");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "n_rows")), 150);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "artifact")));
    const cJSON *lf = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "details"), "lr_find");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(lf, "suggestion"), "method")),
                        "minimum");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(lf, "config"), "iterations")), 50);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(lf, "min_loss")));
    assert_null(res.final.model);
    driver_result_free(&res);

    /* families without a finder, and bad members, are bad specs */
    rc = run_spec("{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"species\","
                  "\"model\":{\"family\":\"knn\"},\"lr_find\":{}}", &res, &e);
    assert_int_equal(rc, DRIVER_EBADSPEC);
    assert_string_equal(e.field, "model.family");
    driver_result_free(&res);
    rc = run_spec("{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"species\","
                  "\"model\":{\"family\":\"mlp\"},\"lr_find\":{\"iterations\":3}}", &res, &e);
    assert_int_equal(rc, DRIVER_EBADSPEC);
    assert_string_equal(e.field, "lr_find.iterations");
    driver_result_free(&res);
}

static void record_round_trip(void **state)
{
    struct lrfind_config c;
    lrfind_config_init(&c);
    c.iterations = 80;
    c.method = LRFIND_STEEP;
    struct lrfind *f;
    char err[128];
    assert_int_equal(lrfind_new(&c, &f, err, sizeof err), 0);
    /* a bowl in log lr that blows up at the end */
    while (lrfind_running(f)) {
        double x = log10(lrfind_lr(f));
        lrfind_report(f, 1 + 0.05 * (x + 2) * (x + 2) + (x > 0 ? 5 * x * x : 0));
    }
    cJSON *j = lrfind_to_json(f);
    size_t n = lrfind_count(f);
    double *v[3];
    static const char *const names[] = {"lrs", "losses", "smoothed"};
    for (int k = 0; k < 3; k++) {
        const cJSON *a = cJSON_GetObjectItem(j, names[k]);
        assert_int_equal((size_t)cJSON_GetArraySize(a), n);
        v[k] = malloc(n * sizeof *v[k]);
        for (size_t i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(a, (int)i);
            v[k][i] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        }
    }
    struct lrfind *g;
    assert_int_equal(lrfind_from_record(&c, v[0], v[1], v[2], n, &g, err, sizeof err), 0);
    assert_false(lrfind_running(g));
    assert_int_equal(lrfind_count(g), n);
    assert_int_equal(lrfind_stopped_early(g), lrfind_stopped_early(f));
    for (int m = LRFIND_VALLEY; m <= LRFIND_MINIMUM; m++) {
        struct lrfind_suggestion a, b;
        assert_int_equal(lrfind_suggest(f, m, &a), 0);
        assert_int_equal(lrfind_suggest(g, m, &b), 0);
        assert_true(a.lr == b.lr && a.index == b.index);
    }
    char *s1, *s2;
    size_t l1, l2;
    assert_int_equal(lrfind_svg(f, NULL, &s1, &l1), 0);
    assert_int_equal(lrfind_svg(g, NULL, &s2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(s1, s2, l1);
    free(s1);
    free(s2);
    lrfind_free(g);
    /* refused: too many points for the iterations, a rate that is not > 0 */
    assert_int_equal(lrfind_from_record(&c, v[0], v[1], v[2], 81, &g, err, sizeof err), LRFIND_EARG);
    assert_null(g);
    v[0][3] = 0;
    assert_int_equal(lrfind_from_record(&c, v[0], v[1], v[2], n, &g, err, sizeof err), LRFIND_EARG);
    assert_int_equal(lrfind_from_record(&c, v[0], v[1], v[2], 0, &g, err, sizeof err), LRFIND_EARG);
    for (int k = 0; k < 3; k++) free(v[k]);
    cJSON_Delete(j);
    lrfind_free(f);
}

static void the_strategy_proposes_the_test(void **state)
{
    const struct strategy_ops *ops = strategy_find("lr_find");
    assert_non_null(ops);
    cJSON *opts = cJSON_Parse("{\"lr_find\": {\"start\": 1e-6, \"end\": 1, \"iterations\": 50,"
                              " \"suggestion\": \"steep\"}, \"model_params\": {\"hidden_layer_sizes\": [8]}}");
    const char *models[] = {"mlp"};
    struct strategy_job job = {.models = models, .n_models = 1, .seed = 1, .max_trials = 1, .options = opts};
    struct strategy st;
    char err[256];
    assert_int_equal(strategy_new(&st, ops, &job, NULL, err, sizeof err), 0);
    const char *family = NULL;
    cJSON *params = NULL;
    assert_int_equal(strategy_next(&st, NULL, 0, &family, &params, err, sizeof err), 0);
    assert_string_equal(family, "mlp");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(params, "hidden_layer_sizes"), 0)), 8);
    const cJSON *lf = cJSON_GetObjectItem(params, "lr_find");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(lf, "iterations")), 50);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(lf, "suggestion")), "steep");
    cJSON *saved = strategy_save(&st);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(saved, "strategy")), "lr_find");
    cJSON_Delete(saved);
    cJSON_Delete(params);
    strategy_free(&st);
    /* not a finder family, two families, no settings */
    const char *knn[] = {"knn"}, *two[] = {"mlp", "cnn"};
    job.models = knn;
    assert_int_equal(strategy_new(&st, ops, &job, NULL, err, sizeof err), -1);
    strategy_free(&st);
    job.models = two;
    job.n_models = 2;
    assert_int_equal(strategy_new(&st, ops, &job, NULL, err, sizeof err), -1);
    strategy_free(&st);
    job.models = models;
    job.n_models = 1;
    job.options = NULL;
    assert_int_equal(strategy_new(&st, ops, &job, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "lr_find"));
    strategy_free(&st);
    cJSON_Delete(opts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lr_find_member),
        cmocka_unit_test(learning_rate_names),
        cmocka_unit_test(auto_trains_at_the_suggestion),
        cmocka_unit_test(mlp_range_test_record),
        cmocka_unit_test(driver_mode_on_iris),
        cmocka_unit_test(record_round_trip),
        cmocka_unit_test(the_strategy_proposes_the_test),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

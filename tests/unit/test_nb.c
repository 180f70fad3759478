/* test_nb.c - naive Bayes probabilities recomputed by hand on a tiny mixed
 * table (with a missing value in training and at predict time), uniform
 * priors, weights, save/load, parameter errors and the iris floor. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/support/tabfix.h"
#include "trainers/nb.h"
#include "trainers/rng.h"

static const struct pd_family *F = &pd_family_nb;

static void *fit_nb(const char *json, int nc, const float *x, const double *y,
                    const double *w, const int *levels, size_t n, size_t d)
{
    struct pd_task t = {PD_TASK_CLASSIFICATION, nc};
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    void *p = NULL, *m = NULL;
    char err[256];
    if (F->params_parse(j, &t, &p, err, sizeof err) != 0) fail_msg("%s", err);
    struct pd_data data = {n, d, x, y, w, levels};
    struct pd_fit_opts o = {.threads = 1, .seed = 1};
    if (F->fit(p, &t, &data, NULL, &o, &m, err, sizeof err) != 0) fail_msg("%s", err);
    F->params_free(p);
    cJSON_Delete(j);
    return m;
}

static double lognorm(double x, double mu, double var)
{
    return -0.5 * log(2 * M_PI * var) - (x - mu) * (x - mu) / (2 * var);
}

/* x0 numeric, x1 categorical with 2 levels.
 *   class 0: (1, 0) (3, 0) (NaN, 1)      class 1: (4, 1) (6, 0) (8, 1)
 * Gaussians: class 0 mean 2 var 1 (the NaN row skipped), class 1 mean 6
 * var 8/3; variance of x0 over its 5 values (mean 4.4) = 29.2/5 = 5.84, so
 * epsilon = var_smoothing * 5.84. Categorical (alpha = 1):
 *   class 0 counts (2, 1) -> (3/5, 2/5); class 1 counts (1, 2) -> (2/5, 3/5)
 * Priors 3/6 and 3/6. */
static const float X[12] = {1, 0, 3, 0, NAN, 1, 4, 1, 6, 0, 8, 1};
static const double Y[6] = {0, 0, 0, 1, 1, 1};
static const int LEVELS[2] = {0, 2};

static void mixed_table_by_hand(void **state)
{
    void *m = fit_nb("{\"var_smoothing\": 0.01}", 2, X, Y, NULL, LEVELS, 6, 2);
    double eps = 0.01 * 5.84;
    float q[6] = {5, 1, NAN, 0, 2.5f, NAN};
    double p[6];
    assert_int_equal(F->predict(m, q, 3, 2, 1, p), 0);
    /* row 0: both features */
    double j0 = log(0.5) + lognorm(5, 2, 1 + eps) + log(2.0 / 5);
    double j1 = log(0.5) + lognorm(5, 6, 8.0 / 3 + eps) + log(3.0 / 5);
    assert_float_equal(p[1], exp(j1) / (exp(j0) + exp(j1)), 1e-12);
    assert_float_equal(p[0] + p[1], 1, 1e-12);
    /* row 1: x0 missing -> only the categorical table: 3/5 vs 2/5 */
    assert_float_equal(p[2], 0.6, 1e-12);
    /* row 2: x1 missing -> only the Gaussian */
    j0 = lognorm(2.5, 2, 1 + eps);
    j1 = lognorm(2.5, 6, 8.0 / 3 + eps);
    assert_float_equal(p[4], exp(j0) / (exp(j0) + exp(j1)), 1e-12);
    /* an out-of-range code counts as missing */
    float q2[2] = {NAN, 7};
    assert_int_equal(F->predict(m, q2, 1, 2, 1, p), 0);
    assert_float_equal(p[0], 0.5, 1e-12);
    F->model_free(m);

    /* alpha = 0.5 and no fitted prior; weight 2 on the first row:
     * class 0 counts (3, 1) of 4 -> (3.5/5, 1.5/5); class 1 (1, 2) of 3 ->
     * (1.5/4, 2.5/4); priors uniform. Query x = (NaN, 0). */
    double w[6] = {2, 1, 1, 1, 1, 1};
    m = fit_nb("{\"alpha\": 0.5, \"fit_prior\": false}", 2, X, Y, w, LEVELS, 6, 2);
    assert_int_equal(F->predict(m, q + 2, 1, 2, 1, p), 0);
    double a = 3.5 / 5, b = 1.5 / 4;
    assert_float_equal(p[0], a / (a + b), 1e-12);
    F->model_free(m);
}

static void gaussian_default_smoothing(void **state)
{
    /* all numeric (levels NULL); default var_smoothing 1e-9 */
    float x[6] = {1, 3, 5, 4, 6, 8};
    double y[6] = {0, 0, 0, 1, 1, 1};
    void *m = fit_nb(NULL, 2, x, y, NULL, NULL, 6, 1);
    /* class 0 mean 3 var 8/3, class 1 mean 6 var 8/3; overall mean 4.5,
     * var (12.25+2.25+0.25+0.25+2.25+12.25)/6 = 29.5/6 */
    double eps = 1e-9 * 29.5 / 6;
    float q = 4.0f;
    double p[2];
    assert_int_equal(F->predict(m, &q, 1, 1, 1, p), 0);
    double j0 = lognorm(4, 3, 8.0 / 3 + eps), j1 = lognorm(4, 6, 8.0 / 3 + eps);
    assert_float_equal(p[0], exp(j0) / (exp(j0) + exp(j1)), 1e-12);
    F->model_free(m);
}

static void save_load_truncation_and_params(void **state)
{
    void *m = fit_nb(NULL, 2, X, Y, NULL, LEVELS, 6, 2);
    struct pd_buf b;
    pd_buf_init(&b);
    assert_int_equal(F->save(m, &b), 0);
    struct pd_reader r;
    char err[256];
    void *m2 = NULL;
    pd_reader_init(&r, b.data, b.len);
    assert_int_equal(F->load(&r, &m2, err, sizeof err), 0);
    double p1[12], p2[12];
    assert_int_equal(F->predict(m, X, 6, 2, 1, p1), 0);
    assert_int_equal(F->predict(m2, X, 6, 2, 1, p2), 0);
    assert_memory_equal(p1, p2, sizeof p1);
    F->model_free(m2);
    for (size_t cut = 0; cut < b.len; cut++) {
        pd_reader_init(&r, b.data, cut);
        assert_int_equal(F->load(&r, &m2, err, sizeof err), PD_EFORMAT);
        assert_null(m2);
    }
    struct pd_rng g;
    pd_rng_seed(&g, 11);
    for (int trial = 0; trial < 200; trial++) {
        for (size_t i = 4; i < b.len; i++) b.data[i] = (unsigned char)pd_rng_next(&g);
        pd_reader_init(&r, b.data, b.len);
        if (F->load(&r, &m2, err, sizeof err) == 0) {  /* may parse: must predict safely */
            double pp[12];
            F->predict(m2, X, 6, 2, 1, pp);
            F->model_free(m2);
        }
    }
    pd_buf_free(&b);
    F->model_free(m);

    struct pd_task t = {PD_TASK_CLASSIFICATION, 2}, reg = {PD_TASK_REGRESSION, 0};
    const char *bad[][2] = {
        {"{\"alpha\": 0}", "alpha"}, {"{\"var_smoothing\": -1}", "var_smoothing"},
        {"{\"fit_prior\": 1}", "fit_prior"}, {"{\"priors\": [0.5, 0.5]}", "priors"},
        {"{\"alpha\": \"x\"}", "alpha"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = cJSON_Parse(bad[i][0]);
        void *p = (void *)1;
        assert_int_equal(F->params_parse(j, &t, &p, err, sizeof err), PD_EPARAM);
        assert_null(p);
        if (strstr(err, bad[i][1]) != err) fail_msg("%s: %s", bad[i][0], err);
        cJSON_Delete(j);
    }
    void *p = NULL;
    assert_int_equal(F->params_parse(NULL, &reg, &p, err, sizeof err), PD_EPARAM);
    assert_non_null(strstr(err, "classification"));
    assert_int_equal(F->params_parse(NULL, &t, &p, err, sizeof err), 0);
    cJSON *j = F->params_json(p);
    assert_float_equal(cJSON_GetObjectItem(j, "var_smoothing")->valuedouble, 1e-9, 0);
    assert_float_equal(cJSON_GetObjectItem(j, "alpha")->valuedouble, 1, 0);
    cJSON_Delete(j);
    /* a code outside its levels is bad data */
    float xb[4] = {1, 2, 3, 0};
    double yb[2] = {0, 1};
    struct pd_data data = {2, 2, xb, yb, NULL, LEVELS};
    struct pd_fit_opts o = {.threads = 1, .seed = 1};
    void *mm = NULL;
    assert_int_equal(F->fit(p, &t, &data, NULL, &o, &mm, err, sizeof err), PD_EDATA);
    assert_null(mm);
    F->params_free(p);
}

static void iris_floor(void **state)
{
    struct tabfix t;
    char err[256];
    if (tabfix_load("tests/data/tabular/iris.csv", NULL, 1, &t, err, sizeof err) != 0) fail_msg("%s", err);
    double acc = 0;
    if (tabfix_cv_score(F, NULL, &t, 5, 42, 1, &acc, err, sizeof err) != 0) fail_msg("%s", err);
    print_message("iris: 5-fold accuracy %.4f\n", acc);
    assert_true(acc >= 0.90);
    if (tabfix_cv_score(F, NULL, &t, 5, 42, 0, &acc, err, sizeof err) != 0) fail_msg("%s", err);
    assert_true(acc >= 0.90);  /* scaling does not matter to naive Bayes */
    tabfix_free(&t);
    if (tabfix_load("tests/data/tabular/wine.csv", NULL, 1, &t, err, sizeof err) != 0) fail_msg("%s", err);
    if (tabfix_cv_score(F, NULL, &t, 5, 42, 1, &acc, err, sizeof err) != 0) fail_msg("%s", err);
    print_message("wine: 5-fold accuracy %.4f\n", acc);
    assert_true(acc >= 0.93);
    tabfix_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mixed_table_by_hand),
        cmocka_unit_test(gaussian_default_smoothing),
        cmocka_unit_test(save_load_truncation_and_params),
        cmocka_unit_test(iris_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

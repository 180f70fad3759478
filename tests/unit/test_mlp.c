/* test_mlp.c - the MLP's backpropagation against central finite
 * differences (classification and regression, with the L2 term), seeded
 * reproducibility, early stopping on a given validation set, cancellation,
 * save/load, parameter errors, and accuracy floors on iris. */
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
#include "trainers/mlp.h"
#include "trainers/rng.h"

static const struct pd_family *F = &pd_family_mlp;

static int fit_rc(const char *json, enum pd_task_kind kind, int nc,
                  const struct pd_data *tr, const struct pd_data *va,
                  uint64_t seed, const volatile sig_atomic_t *cancel,
                  void (*prog)(void *, const struct pd_progress *), void **m)
{
    struct pd_task t = {kind, nc};
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    void *p = NULL;
    char err[256];
    if (F->params_parse(j, &t, &p, err, sizeof err) != 0) fail_msg("%s", err);
    struct pd_fit_opts o = {.threads = 1, .seed = seed, .cancel = cancel, .progress = prog};
    *m = NULL;
    int rc = F->fit(p, &t, tr, va, &o, m, err, sizeof err);
    F->params_free(p);
    cJSON_Delete(j);
    return rc;
}

static void *fit_ok(const char *json, enum pd_task_kind kind, int nc,
                    const struct pd_data *tr, uint64_t seed)
{
    void *m;
    if (fit_rc(json, kind, nc, tr, NULL, seed, NULL, NULL, &m) != 0) fail_msg("fit %s failed", json);
    return m;
}

/* Central differences, h = 3e-3, on every parameter; the loss is float
 * arithmetic, so allow 1e-3 absolute + 2% relative, and a few misses where
 * a step crosses a ReLU kink. */
static void grad_check(enum pd_task_kind kind, int nc)
{
    enum { N = 8, D = 3 };
    float x[N * D];
    double y[N];
    struct pd_rng r;
    pd_rng_seed(&r, 21 + (uint64_t)kind);
    for (int i = 0; i < N * D; i++) x[i] = (float)pd_rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = kind == PD_TASK_CLASSIFICATION ? i % nc : 3 * x[i * D] + pd_rng_normal(&r);
    struct pd_data tr = {N, D, x, y, NULL, NULL};
    void *m = fit_ok("{\"hidden_layer_sizes\": [5, 4], \"max_iter\": 3, \"learning_rate_init\": 0.05}", kind, nc, &tr, 1);
    size_t np = pd_mlp_n_params(m);
    assert_int_equal(np, (size_t)(D * 5 + 5 + 5 * 4 + 4 + 4 * (nc ? nc : 1) + (nc ? nc : 1)));
    float *th = pd_mlp_params(m), *g = malloc(np * sizeof *g), *g2 = malloc(np * sizeof *g2);
    const double alpha = 0.3, h = 3e-3;
    double loss, lp, lm;
    assert_int_equal(pd_mlp_loss_grad(m, alpha, x, y, N, &loss, g), 0);
    size_t miss = 0;
    for (size_t t = 0; t < np; t++) {
        float keep = th[t];
        th[t] = keep + (float)h;
        double hp = (double)th[t] - keep;
        pd_mlp_loss_grad(m, alpha, x, y, N, &lp, g2);
        th[t] = keep - (float)h;
        double hm = keep - (double)th[t];
        pd_mlp_loss_grad(m, alpha, x, y, N, &lm, g2);
        th[t] = keep;
        double fd = (lp - lm) / (hp + hm);
        if (fabs(fd - g[t]) > 1e-3 + 0.02 * fabs(g[t])) miss++;
    }
    print_message("gradient check (%s): %zu of %zu parameters off\n",
                  kind == PD_TASK_CLASSIFICATION ? "classification" : "regression", miss, np);
    assert_true(miss * 50 <= np);  /* <= 2% */
    /* and the loss is positive and finite */
    assert_true(isfinite(loss) && loss > 0);
    free(g);
    free(g2);
    F->model_free(m);
}

static void gradient_matches_finite_differences(void **state)
{
    grad_check(PD_TASK_CLASSIFICATION, 3);
    grad_check(PD_TASK_REGRESSION, 0);
}

static struct tabfix iris;

static int setup(void **state)
{
    char err[256];
    if (tabfix_load("tests/data/tabular/iris.csv", NULL, 1, &iris, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    double mean[4], sd[4];
    tabfix_col_stats(iris.x, iris.n, iris.d, mean, sd);
    /* Standardized once for the tests that fit on all rows. The CV floors
     * re-standardize each training fold with its own statistics, which
     * gives exactly the per-fold standardization of the raw data, since
     * standardization undoes any earlier affine map. */
    tabfix_scale(iris.x, iris.n, iris.d, mean, sd);
    return 0;
}

static int teardown(void **state)
{
    tabfix_free(&iris);
    return 0;
}

static int last_iter;
static const char *last_metric;
static void on_progress(void *ctx, const struct pd_progress *p)
{
    last_iter = p->iteration;
    last_metric = p->metric;
}

static void reproducible_early_stopping_cancel(void **state)
{
    struct pd_data tr = {iris.n, iris.d, iris.x, iris.y, NULL, NULL};
    double *p1 = malloc(iris.n * 3 * sizeof *p1), *p2 = malloc(iris.n * 3 * sizeof *p2);
    const char *spec = "{\"hidden_layer_sizes\": [16], \"max_iter\": 30, \"dropout\": 0.1, \"batch_size\": 32}";
    void *a = fit_ok(spec, PD_TASK_CLASSIFICATION, 3, &tr, 5);
    void *b = fit_ok(spec, PD_TASK_CLASSIFICATION, 3, &tr, 5);
    void *c = fit_ok(spec, PD_TASK_CLASSIFICATION, 3, &tr, 6);
    assert_int_equal(F->predict(a, iris.x, iris.n, iris.d, 1, p1), 0);
    assert_int_equal(F->predict(b, iris.x, iris.n, iris.d, 1, p2), 0);
    assert_memory_equal(p1, p2, iris.n * 3 * sizeof *p1);
    assert_int_equal(F->predict(c, iris.x, iris.n, iris.d, 1, p2), 0);
    assert_memory_not_equal(p1, p2, iris.n * 3 * sizeof *p1);
    for (size_t i = 0; i < iris.n; i++) assert_float_equal(p1[3 * i] + p1[3 * i + 1] + p1[3 * i + 2], 1, 1e-9);
    F->model_free(a);
    F->model_free(b);
    F->model_free(c);

    /* early stopping on a given validation set: reports valid_loss and
     * stops before max_iter once it stalls (huge tol => stall at once) */
    struct pd_data va = {50, iris.d, iris.x + 50 * iris.d, iris.y + 50, NULL, NULL};
    void *m;
    assert_int_equal(fit_rc("{\"early_stopping\": true, \"tol\": 100, \"n_iter_no_change\": 2, \"max_iter\": 50}",
                            PD_TASK_CLASSIFICATION, 3, &tr, &va, 1, NULL, on_progress, &m), 0);
    assert_string_equal(last_metric, "valid_loss");
    assert_int_equal(last_iter, 4);  /* epoch 1 sets the best, 2..4 stall, 3 > 2 */
    F->model_free(m);
    /* without a validation set it splits one off the training rows */
    assert_int_equal(fit_rc("{\"early_stopping\": true, \"max_iter\": 5}", PD_TASK_CLASSIFICATION, 3, &tr,
                            NULL, 1, NULL, on_progress, &m), 0);
    assert_string_equal(last_metric, "valid_loss");
    F->model_free(m);
    assert_int_equal(fit_rc("{\"max_iter\": 5}", PD_TASK_CLASSIFICATION, 3, &tr, NULL, 1, NULL, on_progress, &m), 0);
    assert_string_equal(last_metric, "train_loss");
    assert_int_equal(last_iter, 5);
    F->model_free(m);

    /* no hidden layer: multinomial logistic regression trained by Adam */
    assert_int_equal(fit_rc("{\"hidden_layer_sizes\": [], \"max_iter\": 300, \"learning_rate_init\": 0.05}",
                            PD_TASK_CLASSIFICATION, 3, &tr, NULL, 1, NULL, NULL, &m), 0);
    assert_int_equal(pd_mlp_n_params(m), 4 * 3 + 3);
    assert_int_equal(F->predict(m, iris.x, iris.n, iris.d, 1, p1), 0);
    int hit = 0;
    for (size_t i = 0; i < iris.n; i++) {
        int best = 0;
        for (int cl = 1; cl < 3; cl++)
            if (p1[3 * i + cl] > p1[3 * i + best]) best = cl;
        hit += best == (int)iris.y[i];
    }
    assert_true(hit >= 135);
    F->model_free(m);

    volatile sig_atomic_t stop = 1;
    assert_int_equal(fit_rc(NULL, PD_TASK_CLASSIFICATION, 3, &tr, NULL, 1, &stop, NULL, &m), PD_ECANCELLED);
    assert_null(m);
    free(p1);
    free(p2);
}

static void save_load_and_params(void **state)
{
    struct pd_data tr = {iris.n, iris.d, iris.x, iris.y, NULL, NULL};
    void *m = fit_ok("{\"hidden_layer_sizes\": [8, 6], \"max_iter\": 5}", PD_TASK_CLASSIFICATION, 3, &tr, 2);
    struct pd_buf b;
    pd_buf_init(&b);
    assert_int_equal(F->save(m, &b), 0);
    struct pd_reader r;
    char err[256];
    void *m2 = NULL;
    pd_reader_init(&r, b.data, b.len);
    assert_int_equal(F->load(&r, &m2, err, sizeof err), 0);
    double *p1 = malloc(iris.n * 3 * sizeof *p1), *p2 = malloc(iris.n * 3 * sizeof *p2);
    assert_int_equal(F->predict(m, iris.x, iris.n, iris.d, 1, p1), 0);
    assert_int_equal(F->predict(m2, iris.x, iris.n, iris.d, 1, p2), 0);
    assert_memory_equal(p1, p2, iris.n * 3 * sizeof *p1);
    F->model_free(m2);
    for (size_t cut = 0; cut < b.len; cut++) {
        pd_reader_init(&r, b.data, cut);
        assert_int_equal(F->load(&r, &m2, err, sizeof err), PD_EFORMAT);
        assert_null(m2);
    }
    struct pd_rng g;
    pd_rng_seed(&g, 8);
    for (int trial = 0; trial < 200; trial++) {
        for (size_t i = 0; i < b.len; i++) b.data[i] = (unsigned char)pd_rng_next(&g);
        pd_reader_init(&r, b.data, b.len);
        assert_int_equal(F->load(&r, &m2, err, sizeof err), PD_EFORMAT);
    }
    pd_buf_free(&b);
    F->model_free(m);
    free(p1);
    free(p2);

    struct pd_task t = {PD_TASK_CLASSIFICATION, 3};
    const char *bad[][2] = {
        {"{\"hidden_layer_sizes\": [0]}", "hidden_layer_sizes"},
        {"{\"hidden_layer_sizes\": \"100\"}", "hidden_layer_sizes"},
        {"{\"dropout\": 1}", "dropout"}, {"{\"learning_rate_init\": 0}", "learning_rate_init"},
        {"{\"beta_1\": 1}", "beta_1"}, {"{\"batch_size\": \"big\"}", "batch_size"},
        {"{\"batch_size\": 0}", "batch_size"}, {"{\"activation\": \"tanh\"}", "activation"},
        {"{\"validation_fraction\": 0}", "validation_fraction"}, {"{\"solver\": \"sgd\"}", "solver"},
        {"{\"early_stopping\": 1}", "early_stopping"}, {"{\"max_iter\": -3}", "max_iter"},
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
    assert_int_equal(F->params_parse(NULL, &t, &p, err, sizeof err), 0);
    cJSON *j = F->params_json(p);
    cJSON *h = cJSON_GetObjectItem(j, "hidden_layer_sizes");
    assert_int_equal(cJSON_GetArraySize(h), 1);
    assert_float_equal(cJSON_GetArrayItem(h, 0)->valuedouble, 100, 0);
    assert_string_equal(cJSON_GetObjectItem(j, "batch_size")->valuestring, "auto");
    assert_float_equal(cJSON_GetObjectItem(j, "max_iter")->valuedouble, 200, 0);
    cJSON_Delete(j);
    F->params_free(p);
}

static void regression_learns(void **state)
{
    /* y = x0² - x1 on 300 random points; R² on fresh points > 0.9 */
    enum { N = 300, M = 200 };
    float x[(N + M) * 2];
    double y[N + M], pred[M];
    struct pd_rng r;
    pd_rng_seed(&r, 31);
    for (int i = 0; i < N + M; i++) {
        x[2 * i] = (float)pd_rng_normal(&r);
        x[2 * i + 1] = (float)pd_rng_normal(&r);
        y[i] = 10 + 5 * ((double)x[2 * i] * x[2 * i] - x[2 * i + 1]);
    }
    struct pd_data tr = {N, 2, x, y, NULL, NULL};
    void *m = fit_ok("{\"hidden_layer_sizes\": [32], \"learning_rate_init\": 0.01, \"batch_size\": 32}",
                     PD_TASK_REGRESSION, 0, &tr, 3);
    assert_int_equal(F->predict(m, x + 2 * N, M, 2, 1, pred), 0);
    double mean = 0, ss = 0, sr = 0;
    for (int i = 0; i < M; i++) mean += y[N + i] / M;
    for (int i = 0; i < M; i++) {
        ss += (y[N + i] - mean) * (y[N + i] - mean);
        sr += (y[N + i] - pred[i]) * (y[N + i] - pred[i]);
    }
    print_message("regression R2 on fresh points %.4f\n", 1 - sr / ss);
    assert_true(1 - sr / ss > 0.9);
    F->model_free(m);
}

static void iris_floor(void **state)
{
    char err[256];
    double acc = 0;
    if (tabfix_cv_score(F, NULL, &iris, 5, 42, 1, &acc, err, sizeof err) != 0) fail_msg("%s", err);
    print_message("iris default: 5-fold accuracy %.4f\n", acc);
    assert_true(acc >= 0.90);
    if (tabfix_cv_score(F, "{\"hidden_layer_sizes\": [32, 16], \"dropout\": 0.1, \"early_stopping\": true, "
                           "\"learning_rate_init\": 0.01, \"validation_fraction\": 0.15}",
                        &iris, 5, 42, 1, &acc, err, sizeof err) != 0)
        fail_msg("%s", err);
    print_message("iris 2 layers, dropout, early stopping: 5-fold accuracy %.4f\n", acc);
    assert_true(acc >= 0.90);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradient_matches_finite_differences),
        cmocka_unit_test(reproducible_early_stopping_cancel),
        cmocka_unit_test(save_load_and_params),
        cmocka_unit_test(regression_learns),
        cmocka_unit_test(iris_floor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

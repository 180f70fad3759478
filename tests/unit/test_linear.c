/* test_linear.c - the linear family against independently computed optima:
 * ridge / least squares against a 2x2 solve by Cramer's rule, logistic
 * regression against a 1-D optimum found by bisection and against the
 * first-order (KKT) conditions of its objective recomputed here, lasso
 * zeroing irrelevant features; save/load, parameter errors, cancellation,
 * and accuracy floors on iris, wine and breast_cancer. */
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
#include "trainers/linear.h"
#include "trainers/rng.h"

static const struct pd_family *F = &pd_family_linear;

static void *parse(const char *json, enum pd_task_kind kind, int nc)
{
    struct pd_task t = {kind, nc};
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    void *p = NULL;
    char err[256];
    int rc = F->params_parse(j, &t, &p, err, sizeof err);
    if (rc != 0) fail_msg("params_parse(%s): %s", json, err);
    cJSON_Delete(j);
    return p;
}

static void *fit(const char *json, enum pd_task_kind kind, int nc,
                 const float *x, const double *y, const double *w, size_t n,
                 size_t d)
{
    struct pd_task t = {kind, nc};
    void *p = parse(json, kind, nc), *m = NULL;
    struct pd_data data = {n, d, x, y, w, NULL};
    struct pd_fit_opts o = {.threads = 1, .seed = 1};
    char err[256];
    int rc = F->fit(p, &t, &data, NULL, &o, &m, err, sizeof err);
    if (rc != 0) fail_msg("fit(%s): %s", json, err);
    F->params_free(p);
    return m;
}

/* min 1/(2n)||y - Xw - b||² + alpha/2 ||w||² for d = 2: center, then
 * (C + alpha I) w = c with C = Xc'Xc/n, c = Xc'yc/n, by Cramer's rule. */
static void ridge2(const float *x, const double *y, size_t n, double alpha,
                   double w[2], double *b)
{
    double mx[2] = {0, 0}, my = 0;
    for (size_t i = 0; i < n; i++) {
        mx[0] += x[2 * i] / (double)n;
        mx[1] += x[2 * i + 1] / (double)n;
        my += y[i] / (double)n;
    }
    double a = alpha, bb = 0, dd = alpha, c0 = 0, c1 = 0;
    for (size_t i = 0; i < n; i++) {
        double u = x[2 * i] - mx[0], v = x[2 * i + 1] - mx[1], t = y[i] - my;
        a += u * u / (double)n;
        bb += u * v / (double)n;
        dd += v * v / (double)n;
        c0 += u * t / (double)n;
        c1 += v * t / (double)n;
    }
    double det = a * dd - bb * bb;
    w[0] = (c0 * dd - bb * c1) / det;
    w[1] = (a * c1 - bb * c0) / det;
    *b = my - mx[0] * w[0] - mx[1] * w[1];
}

static const float X5[10] = {1, 2, 2, 1, 3, 5, 4, 3, 6, 4};
static const double Y5[5] = {3.5, 2.0, 8.25, 6.0, 9.5};

static void ridge_matches_closed_form(void **state)
{
    const double alphas[3] = {0.0, 0.1, 2.5};
    for (int a = 0; a < 3; a++) {
        char json[96];
        snprintf(json, sizeof json, "{\"alpha\": %g, \"l1_ratio\": 0}", alphas[a]);
        void *m = fit(json, PD_TASK_REGRESSION, 0, X5, Y5, NULL, 5, 2);
        size_t d, k;
        const double *coef, *b;
        assert_int_equal(pd_linear_coef(m, &d, &k, &coef, &b), 0);
        assert_int_equal(d, 2);
        assert_int_equal(k, 1);
        double w[2], bw;
        ridge2(X5, Y5, 5, alphas[a], w, &bw);
        assert_float_equal(coef[0], w[0], 1e-9);
        assert_float_equal(coef[1], w[1], 1e-9);
        assert_float_equal(b[0], bw, 1e-9);
        double pred[5];
        assert_int_equal(F->predict(m, X5, 5, 2, 1, pred), 0);
        for (int i = 0; i < 5; i++)
            assert_float_equal(pred[i], bw + w[0] * X5[2 * i] + w[1] * X5[2 * i + 1], 1e-9);
        F->model_free(m);
    }
    /* an exact linear target is recovered by least squares */
    double y[5];
    for (int i = 0; i < 5; i++) y[i] = 1.5 + 2 * X5[2 * i] - 3 * X5[2 * i + 1];
    void *m = fit("{\"alpha\": 0}", PD_TASK_REGRESSION, 0, X5, y, NULL, 5, 2);
    size_t d, k;
    const double *coef, *b;
    pd_linear_coef(m, &d, &k, &coef, &b);
    assert_float_equal(coef[0], 2, 1e-9);
    assert_float_equal(coef[1], -3, 1e-9);
    assert_float_equal(b[0], 1.5, 1e-9);
    F->model_free(m);
}

static void weights_equal_duplicated_rows(void **state)
{
    /* weight 3 on row 0 == row 0 three times (the penalty sees the same
     * total weight: 7 in both) */
    float xd[14];
    double yd[7];
    memcpy(xd, X5, sizeof X5);
    memcpy(yd, Y5, sizeof Y5);
    for (int r = 5; r < 7; r++) {
        xd[2 * r] = X5[0];
        xd[2 * r + 1] = X5[1];
        yd[r] = Y5[0];
    }
    double w[5] = {3, 1, 1, 1, 1};
    const char *specs[2] = {"{\"alpha\": 0.3, \"l1_ratio\": 0}", "{\"alpha\": 0.3, \"l1_ratio\": 0.5, \"tol\": 1e-12}"};
    for (int s = 0; s < 2; s++) {
        void *a = fit(specs[s], PD_TASK_REGRESSION, 0, X5, Y5, w, 5, 2);
        void *b = fit(specs[s], PD_TASK_REGRESSION, 0, xd, yd, NULL, 7, 2);
        size_t d, k;
        const double *ca, *ia, *cb, *ib;
        pd_linear_coef(a, &d, &k, &ca, &ia);
        pd_linear_coef(b, &d, &k, &cb, &ib);
        assert_float_equal(ca[0], cb[0], 1e-8);
        assert_float_equal(ca[1], cb[1], 1e-8);
        assert_float_equal(ia[0], ib[0], 1e-8);
        F->model_free(a);
        F->model_free(b);
    }
}

/* Data: y = 3 x0 - 2 x1 + small noise; x2..x5 are noise features. */
static void make_sparse(size_t n, float *x, double *y)
{
    struct pd_rng r;
    pd_rng_seed(&r, 99);
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < 6; j++) x[i * 6 + j] = (float)pd_rng_normal(&r);
        y[i] = 3 * x[i * 6] - 2 * x[i * 6 + 1] + 0.1 * pd_rng_normal(&r) + 4;
    }
}

static void lasso_zeroes_irrelevant_features(void **state)
{
    enum { N = 200, D = 6 };
    float x[N * D];
    double y[N];
    make_sparse(N, x, y);
    const double alpha = 0.2;
    void *m = fit("{\"alpha\": 0.2, \"l1_ratio\": 1, \"tol\": 1e-10}", PD_TASK_REGRESSION, 0, x, y, NULL, N, D);
    size_t d, k;
    const double *w, *b;
    pd_linear_coef(m, &d, &k, &w, &b);
    assert_true(w[0] > 2.5 && w[0] < 3);
    assert_true(w[1] < -1.5 && w[1] > -2);
    for (int j = 2; j < D; j++) assert_true(w[j] == 0.0);
    /* KKT of 1/(2n)||r||² + alpha ||w||_1: g_j = X_j'r/n equals
     * alpha sign(w_j) where w_j != 0 and |g_j| <= alpha where w_j = 0;
     * the intercept makes sum(r) = 0. */
    double g[D] = {0}, rs = 0;
    for (int i = 0; i < N; i++) {
        double r = y[i] - b[0];
        for (int j = 0; j < D; j++) r -= x[i * D + j] * w[j];
        rs += r;
        for (int j = 0; j < D; j++) g[j] += x[i * D + j] * r / N;
    }
    assert_float_equal(rs / N, 0, 1e-8);
    for (int j = 0; j < D; j++) {
        if (w[j] != 0) assert_float_equal(g[j], copysign(alpha, w[j]), 1e-6);
        else assert_true(fabs(g[j]) <= alpha + 1e-6);
    }
    F->model_free(m);

    /* elastic net: g_j - alpha (1 - l1_ratio) w_j = alpha l1_ratio sign(w_j) */
    m = fit("{\"alpha\": 0.1, \"l1_ratio\": 0.5, \"tol\": 1e-12}", PD_TASK_REGRESSION, 0, x, y, NULL, N, D);
    pd_linear_coef(m, &d, &k, &w, &b);
    memset(g, 0, sizeof g);
    for (int i = 0; i < N; i++) {
        double r = y[i] - b[0];
        for (int j = 0; j < D; j++) r -= x[i * D + j] * w[j];
        for (int j = 0; j < D; j++) g[j] += x[i * D + j] * r / N;
    }
    for (int j = 0; j < D; j++) {
        if (w[j] != 0) assert_float_equal(g[j] - 0.05 * w[j], copysign(0.05, w[j]), 1e-6);
        else assert_true(fabs(g[j]) <= 0.05 + 1e-6);
    }
    F->model_free(m);
}

/* sum-form gradient of the logistic loss (binary: one logit; else softmax)
 * at the model's weights, excluding the penalty */
static void logistic_grad(const void *m, const float *x, const double *y,
                          size_t n, size_t D, int K, double *g, double *gb)
{
    size_t d, k;
    const double *w, *b;
    pd_linear_coef(m, &d, &k, &w, &b);
    memset(g, 0, d * k * sizeof *g);
    memset(gb, 0, k * sizeof *gb);
    for (size_t i = 0; i < n; i++) {
        double z[16], mx = -INFINITY, s = 0;
        for (size_t c = 0; c < k; c++) {
            z[c] = b[c];
            for (size_t j = 0; j < D; j++) z[c] += x[i * D + j] * w[j * k + c];
        }
        if (k == 1) {
            z[0] = 1 / (1 + exp(-z[0])) - (y[i] == 1);
        } else {
            for (size_t c = 0; c < k; c++) mx = fmax(mx, z[c]);
            for (size_t c = 0; c < k; c++) s += exp(z[c] - mx);
            for (size_t c = 0; c < k; c++) z[c] = exp(z[c] - mx) / s - ((int)y[i] == (int)c);
        }
        for (size_t c = 0; c < k; c++) {
            gb[c] += z[c];
            for (size_t j = 0; j < D; j++) g[j * k + c] += x[i * D + j] * z[c];
        }
    }
    (void)K;
}

static void wide_ridge_uses_cd(void **state)
{
    /* 2100 features (> the 2048 of the dense solve): the answer still
     * satisfies ridge's stationarity X'r/n = alpha w, sum r = 0 */
    enum { N = 60, D = 2100 };
    float *x = malloc(N * D * sizeof *x);
    double y[N], *g = calloc(D, sizeof *g);
    struct pd_rng r;
    pd_rng_seed(&r, 12);
    for (int i = 0; i < N * D; i++) x[i] = (float)pd_rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = x[i * D] - x[i * D + 7] + pd_rng_normal(&r);
    void *m = fit("{\"alpha\": 0.5, \"tol\": 1e-12, \"max_iter\": 100000}", PD_TASK_REGRESSION, 0, x, y, NULL, N, D);
    size_t d, k;
    const double *w, *b;
    pd_linear_coef(m, &d, &k, &w, &b);
    double rs = 0, worst = 0;
    for (int i = 0; i < N; i++) {
        double res = y[i] - b[0];
        for (int j = 0; j < D; j++) res -= x[i * D + j] * w[j];
        rs += res;
        for (int j = 0; j < D; j++) g[j] += x[i * D + j] * res / N;
    }
    for (int j = 0; j < D; j++) worst = fmax(worst, fabs(g[j] - 0.5 * w[j]));
    assert_float_equal(rs / N, 0, 1e-8);
    assert_true(worst < 1e-6);
    F->model_free(m);
    free(x);
    free(g);
}

static void logistic_weights_equal_duplicated_rows(void **state)
{
    float x[8] = {0.5f, 1, -1, 0.25f, 2, -0.5f, -1.5f, -2};
    double y[4] = {1, 0, 1, 0}, w[4] = {1, 3, 1, 2};
    float xd[14];
    double yd[7];
    int rep[7] = {0, 1, 1, 1, 2, 3, 3};
    for (int i = 0; i < 7; i++) {
        xd[2 * i] = x[2 * rep[i]];
        xd[2 * i + 1] = x[2 * rep[i] + 1];
        yd[i] = y[rep[i]];
    }
    const char *specs[2] = {"{\"C\": 0.7, \"tol\": 1e-10}",
                            "{\"penalty\": \"l1\", \"C\": 2, \"tol\": 1e-10, \"max_iter\": 100000}"};
    for (int s = 0; s < 2; s++) {
        void *a = fit(specs[s], PD_TASK_CLASSIFICATION, 2, x, y, w, 4, 2);
        void *b = fit(specs[s], PD_TASK_CLASSIFICATION, 2, xd, yd, NULL, 7, 2);
        size_t d, k;
        const double *ca, *ia, *cb, *ib;
        pd_linear_coef(a, &d, &k, &ca, &ia);
        pd_linear_coef(b, &d, &k, &cb, &ib);
        for (int j = 0; j < 2; j++) assert_float_equal(ca[j], cb[j], 1e-7);
        assert_float_equal(ia[0], ib[0], 1e-7);
        F->model_free(a);
        F->model_free(b);
    }
}

static void logistic_1d_against_bisection(void **state)
{
    /* x = (1, -1), y = (1, 0), no intercept, C = 1: the objective is
     * 2 log(1 + e^-w) + w²/2, stationary where w = 2 / (1 + e^w);
     * bisection on h(w) = w - 2/(1+e^w) (increasing) finds the optimum. */
    float x[2] = {1, -1};
    double y[2] = {1, 0};
    double lo = 0, hi = 2;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (mid - 2 / (1 + exp(mid)) > 0) hi = mid; else lo = mid;
    }
    void *m = fit("{\"C\": 1, \"fit_intercept\": false, \"tol\": 1e-12}", PD_TASK_CLASSIFICATION, 2, x, y, NULL, 2, 1);
    size_t d, k;
    const double *w, *b;
    pd_linear_coef(m, &d, &k, &w, &b);
    assert_float_equal(w[0], lo, 1e-9);
    assert_true(b[0] == 0);
    double p[4];
    assert_int_equal(F->predict(m, x, 2, 1, 1, p), 0);
    assert_float_equal(p[1], 1 / (1 + exp(-lo)), 1e-9);
    assert_float_equal(p[0] + p[1], 1, 1e-12);
    assert_float_equal(p[2], 1 / (1 + exp(-lo)), 1e-9);  /* symmetric */
    F->model_free(m);
}

static void logistic_l2_stationary(void **state)
{
    struct tabfix t;
    char err[256];
    if (tabfix_load("tests/data/tabular/iris.csv", NULL, 1, &t, err, sizeof err) != 0) fail_msg("%s", err);
    double mean[4], sd[4];
    tabfix_col_stats(t.x, t.n, t.d, mean, sd);
    tabfix_scale(t.x, t.n, t.d, mean, sd);
    /* multinomial, C = 0.5: grad sum loss + w / C = 0, intercept grad 0 */
    void *m = fit("{\"C\": 0.5, \"tol\": 1e-9}", PD_TASK_CLASSIFICATION, 3, t.x, t.y, NULL, t.n, t.d);
    size_t d, k;
    const double *w, *b;
    pd_linear_coef(m, &d, &k, &w, &b);
    assert_int_equal(k, 3);
    double g[12], gb[3];
    logistic_grad(m, t.x, t.y, t.n, t.d, 3, g, gb);
    for (int j = 0; j < 12; j++) assert_float_equal(g[j] + w[j] / 0.5, 0, 1e-5);
    for (int c = 0; c < 3; c++) assert_float_equal(gb[c], 0, 1e-5);
    F->model_free(m);

    /* binary (versicolor vs the rest) */
    double yb[150];
    for (int i = 0; i < 150; i++) yb[i] = t.y[i] == 1;
    m = fit("{\"C\": 2, \"tol\": 1e-9}", PD_TASK_CLASSIFICATION, 2, t.x, yb, NULL, t.n, t.d);
    pd_linear_coef(m, &d, &k, &w, &b);
    assert_int_equal(k, 1);
    logistic_grad(m, t.x, yb, t.n, t.d, 2, g, gb);
    for (int j = 0; j < 4; j++) assert_float_equal(g[j] + w[j] / 2, 0, 1e-5);
    assert_float_equal(gb[0], 0, 1e-5);
    F->model_free(m);
    tabfix_free(&t);
}

static void logistic_l1_kkt(void **state)
{
    /* y from the sign of 3 x0 - 2 x1 + noise; l1 with C = 0.05: grad of
     * sum loss = -sign(w)/C where w != 0, |grad| <= 1/C where w = 0 */
    enum { N = 200, D = 6 };
    float x[N * D];
    double yr[N], y[N];
    make_sparse(N, x, yr);
    struct pd_rng r;
    pd_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) y[i] = yr[i] - 4 + pd_rng_normal(&r) > 0;
    const char *specs[2] = {"{\"penalty\": \"l1\", \"C\": 0.05, \"tol\": 1e-9, \"max_iter\": 100000}",
                            "{\"penalty\": \"elasticnet\", \"l1_ratio\": 0.5, \"C\": 0.05, \"tol\": 1e-9, \"max_iter\": 100000}"};
    double l1w[2] = {1.0, 0.5}, l2w[2] = {0.0, 0.5};
    for (int s = 0; s < 2; s++) {
        void *m = fit(specs[s], PD_TASK_CLASSIFICATION, 2, x, y, NULL, N, D);
        size_t d, k;
        const double *w, *b;
        pd_linear_coef(m, &d, &k, &w, &b);
        double g[D], gb[1];
        logistic_grad(m, x, y, N, D, 2, g, gb);
        int zeros = 0;
        for (int j = 0; j < D; j++) {
            double gj = g[j] + l2w[s] * w[j] / 0.05;
            if (w[j] != 0) assert_float_equal(gj, -copysign(l1w[s] / 0.05, w[j]), 1e-4);
            else {
                zeros++;
                assert_true(fabs(gj) <= l1w[s] / 0.05 + 1e-4);
            }
        }
        assert_float_equal(gb[0], 0, 1e-4);
        assert_true(w[0] > 0 && w[1] < 0);
        if (s == 0) assert_true(zeros >= 3);  /* the noise features drop out */
        F->model_free(m);
    }
}

static void save_load_round_trip_and_truncation(void **state)
{
    struct tabfix t;
    char err[256];
    if (tabfix_load("tests/data/tabular/iris.csv", NULL, 1, &t, err, sizeof err) != 0) fail_msg("%s", err);
    void *m = fit(NULL, PD_TASK_CLASSIFICATION, 3, t.x, t.y, NULL, t.n, t.d);
    struct pd_buf b;
    pd_buf_init(&b);
    assert_int_equal(F->save(m, &b), 0);
    struct pd_reader r;
    pd_reader_init(&r, b.data, b.len);
    void *m2 = NULL;
    assert_int_equal(F->load(&r, &m2, err, sizeof err), 0);
    assert_int_equal(r.left, 0);
    double *p1 = malloc(t.n * 3 * sizeof *p1), *p2 = malloc(t.n * 3 * sizeof *p2);
    assert_int_equal(F->predict(m, t.x, t.n, t.d, 1, p1), 0);
    assert_int_equal(F->predict(m2, t.x, t.n, t.d, 1, p2), 0);
    assert_memory_equal(p1, p2, t.n * 3 * sizeof *p1);
    for (size_t i = 0; i < t.n; i++) assert_float_equal(p1[3 * i] + p1[3 * i + 1] + p1[3 * i + 2], 1, 1e-12);
    assert_int_equal(F->predict(m, t.x, t.n, 3, 1, p2), PD_EPARAM);  /* wrong d */
    F->model_free(m2);
    for (size_t cut = 0; cut < b.len; cut++) {
        pd_reader_init(&r, b.data, cut);
        m2 = (void *)1;
        assert_int_equal(F->load(&r, &m2, err, sizeof err), PD_EFORMAT);
        assert_null(m2);
    }
    /* garbage: flipped magic, and random bytes */
    b.data[0] ^= 0xff;
    pd_reader_init(&r, b.data, b.len);
    assert_int_equal(F->load(&r, &m2, err, sizeof err), PD_EFORMAT);
    struct pd_rng g;
    pd_rng_seed(&g, 3);
    for (int trial = 0; trial < 200; trial++) {
        for (size_t i = 0; i < b.len; i++) b.data[i] = (unsigned char)pd_rng_next(&g);
        pd_reader_init(&r, b.data, b.len);
        assert_int_equal(F->load(&r, &m2, err, sizeof err), PD_EFORMAT);
    }
    pd_buf_free(&b);
    F->model_free(m);
    F->model_free(NULL);
    free(p1);
    free(p2);
    tabfix_free(&t);
}

static void expect_bad(const char *json, enum pd_task_kind kind, const char *name)
{
    struct pd_task t = {kind, kind == PD_TASK_CLASSIFICATION ? 2 : 0};
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    void *p = (void *)1;
    char err[256] = "";
    assert_int_equal(F->params_parse(j, &t, &p, err, sizeof err), PD_EPARAM);
    assert_null(p);
    if (strstr(err, name) != err) fail_msg("%s: message \"%s\" does not start with %s", json, err, name);
    cJSON_Delete(j);
}

static void bad_params_are_named(void **state)
{
    expect_bad("{\"C\": 0}", PD_TASK_CLASSIFICATION, "C");
    expect_bad("{\"C\": -1}", PD_TASK_CLASSIFICATION, "C");
    expect_bad("{\"penalty\": \"l3\"}", PD_TASK_CLASSIFICATION, "penalty");
    expect_bad("{\"l1_ratio\": 1.5}", PD_TASK_CLASSIFICATION, "l1_ratio");
    expect_bad("{\"max_iter\": 0}", PD_TASK_CLASSIFICATION, "max_iter");
    expect_bad("{\"max_iter\": 2.5}", PD_TASK_CLASSIFICATION, "max_iter");
    expect_bad("{\"tol\": 0}", PD_TASK_REGRESSION, "tol");
    expect_bad("{\"fit_intercept\": \"yes\"}", PD_TASK_REGRESSION, "fit_intercept");
    expect_bad("{\"alpha\": -0.1}", PD_TASK_REGRESSION, "alpha");
    expect_bad("{\"alpha\": 1}", PD_TASK_CLASSIFICATION, "alpha");
    expect_bad("{\"C\": 1}", PD_TASK_REGRESSION, "C");
    expect_bad("{\"n_neighbors\": 3}", PD_TASK_CLASSIFICATION, "n_neighbors");
    expect_bad("[1]", PD_TASK_CLASSIFICATION, "params");

    void *p = parse(NULL, PD_TASK_CLASSIFICATION, 2);
    cJSON *j = F->params_json(p);
    assert_string_equal(cJSON_GetObjectItem(j, "penalty")->valuestring, "l2");
    assert_float_equal(cJSON_GetObjectItem(j, "C")->valuedouble, 1.0, 0);
    assert_float_equal(cJSON_GetObjectItem(j, "max_iter")->valuedouble, 1000, 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "fit_intercept")));
    cJSON_Delete(j);
    F->params_free(p);
    p = parse("{\"alpha\": 0.5, \"l1_ratio\": 1}", PD_TASK_REGRESSION, 0);
    j = F->params_json(p);
    assert_float_equal(cJSON_GetObjectItem(j, "alpha")->valuedouble, 0.5, 0);
    assert_null(cJSON_GetObjectItem(j, "C"));
    cJSON_Delete(j);
    F->params_free(p);
    F->params_free(NULL);
}

static int calls;
static void count_progress(void *ctx, const struct pd_progress *p)
{
    (void)ctx;
    assert_true(p->iteration >= 1);
    calls++;
}

static void cancel_progress_and_bad_data(void **state)
{
    enum { N = 200, D = 6 };
    float x[N * D];
    double y[N], yc[N];
    make_sparse(N, x, y);
    for (int i = 0; i < N; i++) yc[i] = y[i] > 4;
    struct pd_task t = {PD_TASK_CLASSIFICATION, 2};
    void *p = parse("{\"tol\": 1e-12}", PD_TASK_CLASSIFICATION, 2), *m = NULL;
    struct pd_data data = {N, D, x, yc, NULL, NULL};
    volatile sig_atomic_t stop = 1;
    struct pd_fit_opts o = {.threads = 1, .seed = 1, .cancel = &stop, .progress = count_progress};
    char err[256];
    assert_int_equal(F->fit(p, &t, &data, NULL, &o, &m, err, sizeof err), PD_ECANCELLED);
    assert_null(m);
    stop = 0;
    calls = 0;
    assert_int_equal(F->fit(p, &t, &data, NULL, &o, &m, err, sizeof err), 0);
    assert_true(calls > 0);
    /* deterministic: a second fit gives the same weights */
    void *m2 = NULL;
    assert_int_equal(F->fit(p, &t, &data, NULL, &o, &m2, err, sizeof err), 0);
    size_t d, k;
    const double *w1, *b1, *w2, *b2;
    pd_linear_coef(m, &d, &k, &w1, &b1);
    pd_linear_coef(m2, &d, &k, &w2, &b2);
    assert_memory_equal(w1, w2, D * sizeof *w1);
    F->model_free(m);
    F->model_free(m2);
    /* one class only, and a class index out of range */
    double one[N];
    for (int i = 0; i < N; i++) one[i] = 1;
    data.y = one;
    assert_int_equal(F->fit(p, &t, &data, NULL, &o, &m, err, sizeof err), PD_EDATA);
    one[3] = 2;
    assert_int_equal(F->fit(p, &t, &data, NULL, &o, &m, err, sizeof err), PD_EDATA);
    /* a NaN feature: linear does not handle missing values */
    x[5] = NAN;
    data.y = yc;
    assert_int_equal(F->fit(p, &t, &data, NULL, &o, &m, err, sizeof err), PD_EDATA);
    assert_null(m);
    F->params_free(p);
}

static void cv_floor(const char *path, const char *params, double floor_acc)
{
    struct tabfix t;
    char err[256];
    if (tabfix_load(path, NULL, 1, &t, err, sizeof err) != 0) fail_msg("%s", err);
    double acc = 0;
    if (tabfix_cv_score(F, params, &t, 5, 42, 1, &acc, err, sizeof err) != 0) fail_msg("%s", err);
    print_message("%s: 5-fold accuracy %.4f\n", path, acc);
    if (acc < floor_acc) fail_msg("%s: accuracy %.4f below %.2f", path, acc, floor_acc);
    tabfix_free(&t);
}

static void accuracy_floors(void **state)
{
    cv_floor("tests/data/tabular/iris.csv", NULL, 0.93);
    cv_floor("tests/data/tabular/wine.csv", NULL, 0.94);
    cv_floor("tests/data/tabular/breast_cancer.csv", NULL, 0.94);
    cv_floor("tests/data/tabular/iris.csv", "{\"penalty\": \"l1\", \"C\": 10}", 0.93);
    cv_floor("tests/data/tabular/breast_cancer.csv", "{\"penalty\": \"elasticnet\", \"C\": 1}", 0.94);
    /* diabetes regression: R² of the pooled out-of-fold predictions */
    struct tabfix t;
    char err[256];
    if (tabfix_load("tests/data/tabular/diabetes.csv", NULL, 0, &t, err, sizeof err) != 0) fail_msg("%s", err);
    double r2 = 0;
    if (tabfix_cv_score(F, NULL, &t, 5, 42, 1, &r2, err, sizeof err) != 0) fail_msg("%s", err);
    print_message("diabetes: 5-fold R2 %.4f\n", r2);
    assert_true(r2 > 0.45);
    if (tabfix_cv_score(F, "{\"alpha\": 0.5, \"l1_ratio\": 1}", &t, 5, 42, 1, &r2, err, sizeof err) != 0) fail_msg("%s", err);
    print_message("diabetes lasso: 5-fold R2 %.4f\n", r2);
    assert_true(r2 > 0.45);
    tabfix_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ridge_matches_closed_form),
        cmocka_unit_test(weights_equal_duplicated_rows),
        cmocka_unit_test(lasso_zeroes_irrelevant_features),
        cmocka_unit_test(wide_ridge_uses_cd),
        cmocka_unit_test(logistic_weights_equal_duplicated_rows),
        cmocka_unit_test(logistic_1d_against_bisection),
        cmocka_unit_test(logistic_l2_stationary),
        cmocka_unit_test(logistic_l1_kkt),
        cmocka_unit_test(save_load_round_trip_and_truncation),
        cmocka_unit_test(bad_params_are_named),
        cmocka_unit_test(cancel_progress_and_bad_data),
        cmocka_unit_test(accuracy_floors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

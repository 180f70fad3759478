/* test_knn.c - k nearest neighbours on a hand-made 2-D set (uniform and
 * distance votes, exact hits, ties to the lower row), regression, the
 * blockwise GEMM search against brute force in double on a larger random
 * set with several threads, save/load, parameter errors, the iris floor. */
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
#include "trainers/knn.h"
#include "trainers/rng.h"

static const struct pd_family *F = &pd_family_knn;

static void *fit_knn(const char *json, enum pd_task_kind kind, int nc,
                     const float *x, const double *y, const double *w,
                     size_t n, size_t d)
{
    struct pd_task t = {kind, nc};
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    void *p = NULL, *m = NULL;
    char err[256];
    if (F->params_parse(j, &t, &p, err, sizeof err) != 0) fail_msg("%s", err);
    struct pd_data data = {n, d, x, y, w, NULL};
    struct pd_fit_opts o = {.threads = 1, .seed = 1};
    if (F->fit(p, &t, &data, NULL, &o, &m, err, sizeof err) != 0) fail_msg("%s", err);
    F->params_free(p);
    cJSON_Delete(j);
    return m;
}

/* three class-0 points near the origin, four class-1 points */
static const float X[14] = {0, 0, 1, 0, 0, 1, 5, 5, 6, 5, 5, 6, 3, 3};
static const double Y[7] = {0, 0, 0, 1, 1, 1, 1};

static void hand_made_2d(void **state)
{
    void *m = fit_knn("{\"n_neighbors\": 3}", PD_TASK_CLASSIFICATION, 2, X, Y, NULL, 7, 2);
    float q[6] = {0.2f, 0.1f, 2.9f, 3.0f, 5.0f, 5.0f};
    double p[6];
    assert_int_equal(F->predict(m, q, 3, 2, 1, p), 0);
    assert_float_equal(p[0], 1.0, 0);
    /* (2.9, 3): nearest (3,3) 0.1, (5,5) 2.9, (0,1) 3.52 -> 1/3 vs 2/3 */
    assert_float_equal(p[2], 1.0 / 3, 1e-12);
    assert_float_equal(p[3], 2.0 / 3, 1e-12);
    assert_float_equal(p[5], 1.0, 0);
    F->model_free(m);

    m = fit_knn("{\"n_neighbors\": 3, \"weights\": \"distance\"}", PD_TASK_CLASSIFICATION, 2, X, Y, NULL, 7, 2);
    assert_int_equal(F->predict(m, q, 3, 2, 1, p), 0);
    double d33 = 0.1, d55 = sqrt(2.1 * 2.1 + 4), d01 = sqrt(2.9 * 2.9 + 4);
    double w0 = 1 / d01, w1 = 1 / d33 + 1 / d55;
    assert_float_equal(p[2], w0 / (w0 + w1), 1e-6);
    /* (5,5) is a training row: distance 0 takes all the weight */
    assert_float_equal(p[5], 1.0, 0);
    F->model_free(m);

    /* ties: (0.5, 0.5) is equidistant from rows 0, 1, 2; k = 1 takes row
     * 0. With class labels 0, 1, 1 on those rows the vote shows which. */
    double yt[7] = {0, 1, 1, 1, 1, 1, 1};
    m = fit_knn("{\"n_neighbors\": 1}", PD_TASK_CLASSIFICATION, 2, X, yt, NULL, 7, 2);
    float qt[2] = {0.5f, 0.5f};
    assert_int_equal(F->predict(m, qt, 1, 2, 1, p), 0);
    assert_float_equal(p[0], 1.0, 0);
    F->model_free(m);

    /* row weights multiply the votes: weight 5 on (3,3) */
    double w[7] = {1, 1, 1, 1, 1, 1, 5};
    m = fit_knn("{\"n_neighbors\": 3}", PD_TASK_CLASSIFICATION, 2, X, Y, w, 7, 2);
    assert_int_equal(F->predict(m, q + 2, 1, 2, 1, p), 0);
    assert_float_equal(p[0], 1.0 / 7, 1e-12);
    F->model_free(m);
}

static void regression_mean_of_neighbours(void **state)
{
    double y[7];
    for (int i = 0; i < 7; i++) y[i] = X[2 * i] + 2 * X[2 * i + 1];
    void *m = fit_knn("{\"n_neighbors\": 2}", PD_TASK_REGRESSION, 0, X, y, NULL, 7, 2);
    float q[2] = {0.9f, 0.1f};  /* nearest (1,0) then (0,0) */
    double p;
    assert_int_equal(F->predict(m, q, 1, 2, 1, &p), 0);
    assert_float_equal(p, (1 + 0) / 2.0, 1e-12);
    F->model_free(m);
}

struct pair { double d; int i; };
static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : x->i - y->i;
}

static void gemm_search_matches_brute_force(void **state)
{
    enum { N = 2500, Q = 300, D = 7, K = 5 };
    float *x = malloc(N * D * sizeof *x), *q = malloc(Q * D * sizeof *q);
    double *y = malloc(N * sizeof *y), p1[Q], p4[Q];
    struct pair *pr = malloc(N * sizeof *pr);
    struct pd_rng r;
    pd_rng_seed(&r, 17);
    for (int i = 0; i < N * D; i++) x[i] = (float)pd_rng_normal(&r);
    for (int i = 0; i < Q * D; i++) q[i] = (float)pd_rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = pd_rng_uniform(&r);
    void *m = fit_knn("{\"n_neighbors\": 5}", PD_TASK_REGRESSION, 0, x, y, NULL, N, D);
    assert_int_equal(F->predict(m, q, Q, D, 1, p1), 0);
    assert_int_equal(F->predict(m, q, Q, D, 4, p4), 0);
    assert_memory_equal(p1, p4, sizeof p1);
    int match = 0;
    for (int a = 0; a < Q; a++) {
        for (int i = 0; i < N; i++) {
            double s = 0;
            for (int j = 0; j < D; j++) {
                double e = (double)q[a * D + j] - x[i * D + j];
                s += e * e;
            }
            pr[i] = (struct pair){s, i};
        }
        qsort(pr, N, sizeof *pr, cmp_pair);
        double mean = 0;
        for (int t = 0; t < K; t++) mean += y[pr[t].i] / K;
        match += fabs(mean - p1[a]) < 1e-12;
    }
    /* float distances may swap near-equal neighbours, rarely */
    print_message("%d of %d rows equal brute force\n", match, Q);
    assert_true(match >= Q - 2);
    F->model_free(m);
    free(x); free(q); free(y); free(pr);
}

static void save_load_and_params(void **state)
{
    void *m = fit_knn("{\"n_neighbors\": 3, \"weights\": \"distance\"}", PD_TASK_CLASSIFICATION, 2, X, Y, NULL, 7, 2);
    struct pd_buf b;
    pd_buf_init(&b);
    assert_int_equal(F->save(m, &b), 0);
    struct pd_reader r;
    char err[256];
    void *m2 = NULL;
    pd_reader_init(&r, b.data, b.len);
    assert_int_equal(F->load(&r, &m2, err, sizeof err), 0);
    double p1[14], p2[14];
    assert_int_equal(F->predict(m, X, 7, 2, 1, p1), 0);
    assert_int_equal(F->predict(m2, X, 7, 2, 2, p2), 0);
    assert_memory_equal(p1, p2, sizeof p1);
    F->model_free(m2);
    for (size_t cut = 0; cut < b.len; cut++) {
        pd_reader_init(&r, b.data, cut);
        assert_int_equal(F->load(&r, &m2, err, sizeof err), PD_EFORMAT);
        assert_null(m2);
    }
    struct pd_rng g;
    pd_rng_seed(&g, 4);
    for (int trial = 0; trial < 200; trial++) {
        for (size_t i = 0; i < b.len; i++) b.data[i] = (unsigned char)pd_rng_next(&g);
        pd_reader_init(&r, b.data, b.len);
        assert_int_equal(F->load(&r, &m2, err, sizeof err), PD_EFORMAT);
    }
    pd_buf_free(&b);
    F->model_free(m);

    struct pd_task t = {PD_TASK_CLASSIFICATION, 2};
    const char *bad[][2] = {
        {"{\"n_neighbors\": 0}", "n_neighbors"}, {"{\"n_neighbors\": 2.5}", "n_neighbors"},
        {"{\"weights\": \"gaussian\"}", "weights"}, {"{\"p\": 1}", "p"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = cJSON_Parse(bad[i][0]);
        void *p = (void *)1;
        assert_int_equal(F->params_parse(j, &t, &p, err, sizeof err), PD_EPARAM);
        assert_null(p);
        if (strstr(err, bad[i][1]) != err) fail_msg("%s: %s", bad[i][0], err);
        cJSON_Delete(j);
    }
    /* more neighbours than rows is named at fit time */
    cJSON *j = cJSON_Parse("{\"n_neighbors\": 8}");
    void *p = NULL, *mm = NULL;
    assert_int_equal(F->params_parse(j, &t, &p, err, sizeof err), 0);
    cJSON *e = F->params_json(p);
    assert_string_equal(cJSON_GetObjectItem(e, "weights")->valuestring, "uniform");
    cJSON_Delete(e);
    struct pd_data data = {7, 2, X, Y, NULL, NULL};
    struct pd_fit_opts o = {.threads = 1, .seed = 1};
    assert_int_equal(F->fit(p, &t, &data, NULL, &o, &mm, err, sizeof err), PD_EPARAM);
    assert_non_null(strstr(err, "n_neighbors"));
    assert_null(mm);
    F->params_free(p);
    cJSON_Delete(j);
}

static void iris_floor(void **state)
{
    struct tabfix t;
    char err[256];
    if (tabfix_load("tests/data/tabular/iris.csv", NULL, 1, &t, err, sizeof err) != 0) fail_msg("%s", err);
    double acc = 0;
    if (tabfix_cv_score(F, NULL, &t, 5, 42, 1, &acc, err, sizeof err) != 0) fail_msg("%s", err);
    print_message("iris: 5-fold accuracy %.4f\n", acc);
    assert_true(acc >= 0.93);
    if (tabfix_cv_score(F, "{\"weights\": \"distance\", \"n_neighbors\": 10}", &t, 5, 42, 1, &acc, err, sizeof err) != 0)
        fail_msg("%s", err);
    print_message("iris distance k=10: 5-fold accuracy %.4f\n", acc);
    assert_true(acc >= 0.93);
    tabfix_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hand_made_2d),
        cmocka_unit_test(regression_mean_of_neighbours),
        cmocka_unit_test(gemm_search_matches_brute_force),
        cmocka_unit_test(save_load_and_params),
        cmocka_unit_test(iris_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

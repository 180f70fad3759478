/* test_gbm.c - histogram gradient boosting: binning, a hand-computed
 * round for regression and binary classification, the learnt default
 * direction of missing values, leaf-wise growth, early stopping,
 * reproducibility (seed and thread count), save/load, truncated and garbage
 * model files, bad parameters, cancellation, and 5-fold accuracy floors on
 * iris, breast_cancer and diabetes (CSV copies in tests/data/tabular/, read
 * with tests/support/tabfix; run from the repository root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/support/tabfix.h"
#include "trainers/gbm.h"
#include "trainers/hist.h"

/* --- helpers ------------------------------------------------------------- */

/* Fixtures are loaded with TABFIX_CLASSES_SEEN (class indices in order of
 * first appearance; breast_cancer lists malignant first), the order these
 * tests' expectations were written against. */

static void *fit_full(const char *json, struct pd_task task, const struct pd_data *train,
                      const struct pd_data *valid, struct pd_fit_opts *opts)
{
    char err[512] = "";
    void *model = NULL;
    if (tabfix_fit(&pd_family_gbm, json, task, train, valid, opts, &model, err, sizeof err) != PD_OK)
        fail_msg("%s", err);
    return model;
}

static void *fit_json(const char *json, struct pd_task task, const float *x, const double *y,
                      size_t n, size_t d, int threads, uint64_t seed)
{
    struct pd_data data = { .n = n, .d = d, .x = x, .y = y };
    struct pd_fit_opts opts = { .threads = threads, .seed = seed };
    return fit_full(json, task, &data, NULL, &opts);
}

/* Pooled 5-fold out-of-fold score (accuracy or R^2) over a shuffle seeded
 * with 7, each fold fitted with seed 42 on 2 threads. */
static double cv5(const struct pd_family *fam, const char *json, const struct tabfix *t)
{
    char err[512] = "";
    double score = 0;
    if (tabfix_cv_shuffled(fam, json, t, 5, 7, 42, 2, &score, err, sizeof err) != PD_OK)
        fail_msg("%s", err);
    return score;
}

/* --- binning ------------------------------------------------------------- */

static void bins_match_thresholds(void **state)
{
    float few[] = { 3, 1, 2, 2, NAN };
    struct hist_bins hb;
    assert_int_equal(hist_bins_fit(&hb, few, 5, 1, 255, 0), 0);
    assert_int_equal(hb.n_bins[0], 3);
    assert_true(hb.edges[0] == 1.5f && hb.edges[1] == 2.5f);
    assert_int_equal(hist_bin(&hb, 0, NAN), 3);
    assert_int_equal(hist_bin(&hb, 0, 1.0f), 0);
    assert_int_equal(hist_bin(&hb, 0, 2.5f), 1);
    assert_int_equal(hist_bin(&hb, 0, 2.6f), 2);
    assert_int_equal(hist_bin(&hb, 0, 100.0f), 2);
    assert_true(isinf(hist_threshold(&hb, 0, 2)));
    hist_bins_free(&hb);

    /* Many values, half of them 0 (a heavy tie gets a bin of its own). */
    size_t n = 10000;
    float *x = malloc(n * sizeof *x);
    struct pd_rng r;
    pd_rng_seed(&r, 5);
    for (size_t i = 0; i < n; i++) x[i] = i % 2 ? (float)pd_rng_normal(&r) : 0.0f;
    assert_int_equal(hist_bins_fit(&hb, x, n, 1, 16, 0), 0);
    assert_true(hb.n_bins[0] >= 8 && hb.n_bins[0] <= 16);
    size_t count[17] = { 0 };
    for (size_t i = 0; i < n; i++) count[hist_bin(&hb, 0, x[i])]++;
    for (uint32_t b = 0; b < hb.n_bins[0]; b++) {
        assert_true(count[b] > 0);
        assert_true(count[b] <= n / 16 * 2 || count[b] == n / 2);
    }
    for (int k = 0; k < 2000; k++) {
        float v = (float)(pd_rng_normal(&r) * 2);
        uint8_t bv = hist_bin(&hb, 0, v);
        for (uint32_t b = 0; b < hb.n_bins[0]; b++)
            assert_int_equal(bv <= b, v <= hist_threshold(&hb, 0, b));
    }
    hist_bins_free(&hb);
    free(x);
}

/* --- one round by hand --------------------------------------------------- */

static void one_round_regression_by_hand(void **state)
{
    /* base = mean(y) = 4; g = base - y = 3, 2, 1, -6; h = 1.
     * Gains (G^2/(H+1) summed over sides, parent G = 0):
     *   x<=1.5: 9/2 + 9/4 = 6.75;  x<=2.5: 25/3 * 2 = 16.67;
     *   x<=3.5: 36/4 + 36/2 = 27 (best).
     * Leaves: -6/(3+1) * 0.5 = -0.75 and 6/(1+1) * 0.5 = 1.5. */
    float x[] = { 1, 2, 3, 4 };
    double y[] = { 1, 2, 3, 10 };
    struct pd_data dt = { .n = 4, .d = 1, .x = x, .y = y };
    struct pd_fit_opts o = { .threads = 1 };
    void *m = fit_full("{\"n_estimators\":1,\"max_depth\":1,\"learning_rate\":0.5}",
                       (struct pd_task){ PD_TASK_REGRESSION, 0 }, &dt, NULL, &o);
    assert_true(gbm_model_base_score(m, 0) == 4.0);
    assert_int_equal(gbm_model_n_rounds(m), 1);
    const struct tree *t = gbm_model_tree(m, 0, 0);
    assert_int_equal(t->n_nodes, 3);
    assert_true(t->nodes[0].thr == 3.5f);
    double lv = t->values[t->nodes[t->nodes[0].left].left];
    double rv = t->values[t->nodes[t->nodes[0].right].left];
    assert_true(fabs(lv - (-0.75)) < 1e-12 && fabs(rv - 1.5) < 1e-12);
    double out[4];
    assert_int_equal(pd_family_gbm.predict(m, x, 4, 1, 1, out), PD_OK);
    assert_true(fabs(out[0] - 3.25) < 1e-12 && fabs(out[3] - 5.5) < 1e-12);
    pd_family_gbm.model_free(m);
}

static void one_round_logistic_by_hand(void **state)
{
    /* base = logit(0.5) = 0; p = 0.5, g = p - y = .5 .5 -.5 -.5, h = .25.
     * Best cut x<=2.5 (gain 1/1.5 * 2); leaves -G/(H+1)*lr = -1/1.5*0.3
     * = -0.2 and +0.2, so P(y=1 | x=1) = sigmoid(-0.2). */
    float x[] = { 1, 2, 3, 4 };
    double y[] = { 0, 0, 1, 1 };
    struct pd_data dt = { .n = 4, .d = 1, .x = x, .y = y };
    struct pd_fit_opts o = { .threads = 1 };
    void *m = fit_full("{\"n_estimators\":1,\"max_depth\":1,\"learning_rate\":0.3,"
                       "\"min_child_weight\":0}",
                       (struct pd_task){ PD_TASK_CLASSIFICATION, 2 }, &dt, NULL, &o);
    assert_true(gbm_model_base_score(m, 0) == 0.0);
    const struct tree *t = gbm_model_tree(m, 0, 0);
    assert_true(t->nodes[0].thr == 2.5f);
    double lv = t->values[t->nodes[t->nodes[0].left].left];
    assert_true(fabs(lv - (-0.2)) < 1e-12);
    double out[8];
    assert_int_equal(pd_family_gbm.predict(m, x, 4, 1, 1, out), PD_OK);
    assert_true(fabs(out[1] - 1 / (1 + exp(0.2))) < 1e-12);
    assert_true(fabs(out[0] + out[1] - 1) < 1e-15);
    assert_true(fabs(out[7] - 1 / (1 + exp(-0.2))) < 1e-12);
    pd_family_gbm.model_free(m);
}

static void missing_values_default_direction(void **state)
{
    /* NaN rows look like the x >= 3 rows in the first case and like the
     * x <= 2 rows in the second; the stump must send them there. */
    float x[] = { 1, 2, 3, 4, NAN, NAN };
    double y1[] = { 0, 0, 10, 10, 10, 10 };
    double y2[] = { 0, 0, 10, 10, 0, 0 };
    const char *js = "{\"n_estimators\":1,\"max_depth\":1,\"learning_rate\":1,"
                     "\"reg_lambda\":0,\"min_child_weight\":0}";
    struct pd_fit_opts o = { .threads = 1 };
    for (int c = 0; c < 2; c++) {
        struct pd_data dt = { .n = 6, .d = 1, .x = x, .y = c ? y2 : y1 };
        void *m = fit_full(js, (struct pd_task){ PD_TASK_REGRESSION, 0 }, &dt, NULL, &o);
        const struct tree *t = gbm_model_tree(m, 0, 0);
        assert_true(t->nodes[0].thr == 2.5f);
        assert_int_equal(t->nodes[0].missing_left, c ? 1 : 0);
        float q[] = { NAN, 1, 4 };
        double out[3];
        assert_int_equal(pd_family_gbm.predict(m, q, 3, 1, 1, out), PD_OK);
        assert_true(fabs(out[0] - (c ? 0.0 : 10.0)) < 1e-5);
        assert_true(fabs(out[1]) < 1e-5 && fabs(out[2] - 10) < 1e-5);
        pd_family_gbm.model_free(m);
    }
    assert_int_equal(pd_family_gbm.handles_missing, 1);
}

/* --- growth policies, early stopping ------------------------------------ */

static void leaf_wise_growth_caps_leaves(void **state)
{
    struct tabfix t;
    assert_int_equal(tabfix_load("tests/data/tabular/breast_cancer.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    struct pd_data dt = { .n = t.n, .d = t.d, .x = t.x, .y = t.y };
    struct pd_fit_opts o = { .threads = 2, .seed = 1 };
    struct pd_task task = { PD_TASK_CLASSIFICATION, 2 };
    void *m = fit_full("{\"n_estimators\":10,\"max_leaves\":4,\"max_depth\":0}", task, &dt, NULL, &o);
    int four = 0;
    for (size_t r = 0; r < gbm_model_n_rounds(m); r++) {
        const struct tree *tr = gbm_model_tree(m, r, 0);
        assert_true(tr->n_leaves <= 4);
        four += tr->n_leaves == 4;
    }
    assert_true(four > 0);
    pd_family_gbm.model_free(m);
    m = fit_full("{\"n_estimators\":10,\"max_depth\":3,\"min_child_weight\":0}", task, &dt, NULL, &o);
    int deep = 0;
    for (size_t r = 0; r < gbm_model_n_rounds(m); r++) {
        int dp = tree_depth(gbm_model_tree(m, r, 0));
        assert_true(dp <= 3);
        deep += dp == 3;
    }
    assert_true(deep > 0);
    pd_family_gbm.model_free(m);
    tabfix_free(&t);
}

struct events { int n; double v[1000]; int best_events; double best; const char *metric; };

static void on_progress(void *ctx, const struct pd_progress *p)
{
    struct events *e = ctx;
    if (p->metric && strcmp(p->metric, "best_iteration") == 0) {
        e->best_events++;
        e->best = p->value;
        return;
    }
    assert_int_equal(p->iteration, e->n + 1);
    e->metric = p->metric;
    if (e->n < 1000) e->v[e->n++] = p->value;
}

static void early_stopping_keeps_best_round(void **state)
{
    struct tabfix t;
    assert_int_equal(tabfix_load("tests/data/tabular/breast_cancer.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    size_t ntr = 400;
    struct pd_data tr = { .n = ntr, .d = t.d, .x = t.x, .y = t.y };
    struct pd_data va = { .n = t.n - ntr, .d = t.d, .x = t.x + ntr * t.d, .y = t.y + ntr };
    struct events e = { 0 };
    struct pd_fit_opts o = { .threads = 2, .seed = 1, .progress = on_progress, .progress_ctx = &e };
    struct pd_task task = { PD_TASK_CLASSIFICATION, 2 };
    void *m = fit_full("{\"n_estimators\":400,\"learning_rate\":0.3,\"early_stopping_rounds\":10}",
                       task, &tr, &va, &o);
    assert_string_equal(e.metric, "valid_logloss");
    size_t nr = gbm_model_n_rounds(m);
    assert_true(nr < 400);
    assert_int_equal(gbm_model_best_iteration(m), (int)nr - 1);
    assert_int_equal(e.best_events, 1);
    assert_true(e.best == (double)(nr - 1));
    assert_int_equal(e.n, (int)nr + 10);          /* stopped 10 rounds after */
    for (int i = 0; i < e.n; i++) assert_true(e.v[i] >= e.v[nr - 1]);
    /* The kept model's validation loss is the best one reported. */
    double *out = malloc(va.n * 2 * sizeof *out), ll = 0;
    assert_int_equal(pd_family_gbm.predict(m, va.x, va.n, va.d, 1, out), PD_OK);
    for (size_t i = 0; i < va.n; i++) ll -= log(out[2 * i + (int)va.y[i]]);
    assert_true(fabs(ll / va.n - e.v[nr - 1]) < 1e-6);
    free(out);
    pd_family_gbm.model_free(m);

    /* Without a validation set: train_loss every round, all rounds kept. */
    struct events e2 = { 0 };
    o.progress_ctx = &e2;
    m = fit_full("{\"n_estimators\":20,\"early_stopping_rounds\":3}", task, &tr, NULL, &o);
    assert_string_equal(e2.metric, "train_loss");
    assert_int_equal(e2.n, 20);
    assert_int_equal(gbm_model_n_rounds(m), 20);
    for (int i = 1; i < e2.n; i++) assert_true(e2.v[i] <= e2.v[i - 1] + 1e-12);
    pd_family_gbm.model_free(m);
    tabfix_free(&t);
}

/* --- reproducibility, save/load, truncation ------------------------------ */

static void reproducible_across_threads(void **state)
{
    struct tabfix t;
    assert_int_equal(tabfix_load("tests/data/tabular/iris.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    struct pd_task task = { PD_TASK_CLASSIFICATION, 3 };
    double *o[4];
    int th[4] = { 1, 2, 2, 2 };
    for (int i = 0; i < 4; i++) {
        void *m = fit_json("{\"n_estimators\":30,\"subsample\":0.7,\"colsample_bytree\":0.6}",
                           task, t.x, t.y, t.n, t.d, th[i], i == 3 ? 8 : 7);
        assert_int_equal(gbm_model_trees_per_round(m), 3);
        o[i] = malloc(t.n * 3 * sizeof *o[i]);
        assert_int_equal(pd_family_gbm.predict(m, t.x, t.n, t.d, th[i], o[i]), PD_OK);
        pd_family_gbm.model_free(m);
    }
    assert_memory_equal(o[0], o[1], t.n * 3 * sizeof(double));
    assert_memory_equal(o[1], o[2], t.n * 3 * sizeof(double));
    assert_true(memcmp(o[0], o[3], t.n * 3 * sizeof(double)) != 0);
    for (int i = 0; i < 4; i++) free(o[i]);
    tabfix_free(&t);

    /* A bigger synthetic table, so that histograms really run on 2 threads. */
    size_t n = 20000, d = 8;
    float *x = malloc(n * d * sizeof *x);
    double *y = malloc(n * sizeof *y);
    struct pd_rng r;
    pd_rng_seed(&r, 9);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++) x[i * d + j] = (float)pd_rng_normal(&r);
        if (i % 7 == 0) x[i * d + 3] = NAN;
        y[i] = x[i * d] * 2 + sin(x[i * d + 1]) + (x[i * d + 2] > 0) + pd_rng_normal(&r) * 0.1;
    }
    double *p1 = malloc(n * sizeof *p1), *p2 = malloc(n * sizeof *p2);
    struct pd_task rt = { PD_TASK_REGRESSION, 0 };
    void *m1 = fit_json("{\"n_estimators\":10,\"subsample\":0.8}", rt, x, y, n, d, 1, 3);
    void *m2 = fit_json("{\"n_estimators\":10,\"subsample\":0.8}", rt, x, y, n, d, 2, 3);
    assert_int_equal(pd_family_gbm.predict(m1, x, n, d, 1, p1), PD_OK);
    assert_int_equal(pd_family_gbm.predict(m2, x, n, d, 2, p2), PD_OK);
    assert_memory_equal(p1, p2, n * sizeof *p1);
    pd_family_gbm.model_free(m1);
    pd_family_gbm.model_free(m2);
    free(p1); free(p2); free(x); free(y);
}

static void save_load_round_trip_and_truncation(void **state)
{
    struct tabfix t;
    assert_int_equal(tabfix_load("tests/data/tabular/iris.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    /* Some missing values, so that default directions are exercised. */
    for (size_t i = 0; i < t.n; i += 5) t.x[i * t.d + (i % t.d)] = NAN;
    struct pd_task task = { PD_TASK_CLASSIFICATION, 3 };
    void *m = fit_json("{\"n_estimators\":3,\"max_depth\":2,\"max_bins\":8}",
                       task, t.x, t.y, t.n, t.d, 2, 1);
    struct pd_buf b;
    pd_buf_init(&b);
    assert_int_equal(pd_family_gbm.save(m, &b), PD_OK);
    struct pd_reader r;
    pd_reader_init(&r, b.data, b.len);
    void *m2 = NULL;
    char err[256];
    assert_int_equal(pd_family_gbm.load(&r, &m2, err, sizeof err), PD_OK);
    assert_int_equal(r.left, 0);
    double *o1 = malloc(t.n * 3 * sizeof *o1), *o2 = malloc(t.n * 3 * sizeof *o2);
    assert_int_equal(pd_family_gbm.predict(m, t.x, t.n, t.d, 1, o1), PD_OK);
    assert_int_equal(pd_family_gbm.predict(m2, t.x, t.n, t.d, 2, o2), PD_OK);
    assert_memory_equal(o1, o2, t.n * 3 * sizeof(double));
    struct pd_buf b2;
    pd_buf_init(&b2);
    assert_int_equal(pd_family_gbm.save(m2, &b2), PD_OK);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    pd_buf_free(&b2);
    for (size_t len = 0; len < b.len; len++) {
        void *m3 = (void *)1;
        pd_reader_init(&r, b.data, len);
        assert_int_equal(pd_family_gbm.load(&r, &m3, err, sizeof err), PD_EFORMAT);
        assert_null(m3);
    }
    unsigned char *bad = malloc(b.len);
    double *big = malloc(TREE_MAX_VALUE_DIM * sizeof *big);
    memcpy(bad, b.data, b.len);
    bad[1] ^= 0x10;
    pd_reader_init(&r, bad, b.len);
    void *m4 = NULL;
    assert_int_equal(pd_family_gbm.load(&r, &m4, err, sizeof err), PD_EFORMAT);
    assert_null(m4);
    struct pd_rng rng;
    pd_rng_seed(&rng, 4);
    for (int k = 0; k < 300; k++) {
        memcpy(bad, b.data, b.len);
        for (int z = 0; z < 4; z++) bad[pd_rng_below(&rng, b.len)] = (unsigned char)pd_rng_next(&rng);
        pd_reader_init(&r, bad, b.len);
        void *m5 = NULL;
        int rc = pd_family_gbm.load(&r, &m5, err, sizeof err);
        assert_true(rc == PD_OK || rc == PD_EFORMAT);
        if (m5) {
            int prc = pd_family_gbm.predict(m5, t.x, 1, t.d, 1, big);
            assert_true(prc == PD_OK || prc == PD_EDATA);
        }
        pd_family_gbm.model_free(m5);
    }
    free(bad); free(big); free(o1); free(o2);
    pd_buf_free(&b);
    pd_family_gbm.model_free(m);
    pd_family_gbm.model_free(m2);
    tabfix_free(&t);
}

/* --- parameters, cancel -------------------------------------------------- */

static void bad_params_are_named(void **state)
{
    struct { const char *json, *name; } cases[] = {
        { "{\"n_estimators\":0}", "n_estimators" },
        { "{\"learning_rate\":0}", "learning_rate" },
        { "{\"learning_rate\":1.5}", "learning_rate" },
        { "{\"learning_rate\":\"fast\"}", "learning_rate" },
        { "{\"max_depth\":-1}", "max_depth" },
        { "{\"max_depth\":0}", "max_depth" },
        { "{\"max_depth\":3.5}", "max_depth" },
        { "{\"max_leaves\":1}", "max_leaves" },
        { "{\"min_child_weight\":-1}", "min_child_weight" },
        { "{\"reg_lambda\":-0.5}", "reg_lambda" },
        { "{\"reg_alpha\":\"x\"}", "reg_alpha" },
        { "{\"gamma\":-1}", "gamma" },
        { "{\"gamma\":1,\"min_split_loss\":1}", "min_split_loss" },
        { "{\"subsample\":0}", "subsample" },
        { "{\"subsample\":1.5}", "subsample" },
        { "{\"colsample_bytree\":0}", "colsample_bytree" },
        { "{\"max_bins\":1}", "max_bins" },
        { "{\"max_bins\":256}", "max_bins" },
        { "{\"early_stopping_rounds\":-1}", "early_stopping_rounds" },
        { "{\"eta\":0.1}", "eta" },
        { "{\"objective\":\"binary:logistic\"}", "objective" },
        { "\"x\"", "params" },
    };
    struct pd_task task = { PD_TASK_CLASSIFICATION, 2 };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        assert_non_null(j);
        void *p = (void *)1;
        char err[256] = "";
        int rc = pd_family_gbm.params_parse(j, &task, &p, err, sizeof err);
        cJSON_Delete(j);
        if (rc != PD_EPARAM || strstr(err, cases[i].name) == NULL)
            fail_msg("%s: rc %d, message \"%s\"", cases[i].json, rc, err);
        assert_null(p);
    }
    void *p;
    char err[256];
    assert_int_equal(pd_family_gbm.params_parse(NULL, &task, &p, err, sizeof err), PD_OK);
    cJSON *j = pd_family_gbm.params_json(p);
    assert_int_equal(cJSON_GetObjectItem(j, "n_estimators")->valueint, 100);
    assert_true(cJSON_GetObjectItem(j, "learning_rate")->valuedouble == 0.1);
    assert_int_equal(cJSON_GetObjectItem(j, "max_depth")->valueint, 6);
    assert_int_equal(cJSON_GetObjectItem(j, "max_bins")->valueint, 255);
    assert_true(cJSON_GetObjectItem(j, "reg_lambda")->valuedouble == 1.0);
    cJSON_Delete(j);
    pd_family_gbm.params_free(p);
}

static void cancel_stops_fit(void **state)
{
    float x[] = { 1, 2, 3, 4 };
    double y[] = { 0, 1, 0, 1 };
    struct pd_task task = { PD_TASK_CLASSIFICATION, 2 };
    void *p, *m = (void *)1;
    char err[256];
    assert_int_equal(pd_family_gbm.params_parse(NULL, &task, &p, err, sizeof err), PD_OK);
    volatile sig_atomic_t cancel = 1;
    struct pd_data dt = { .n = 4, .d = 1, .x = x, .y = y };
    struct pd_fit_opts o = { .threads = 2, .cancel = &cancel };
    assert_int_equal(pd_family_gbm.fit(p, &task, &dt, NULL, &o, &m, err, sizeof err), PD_ECANCELLED);
    assert_null(m);
    double bad_y[] = { 0, 1, 0.5, 1 };
    dt.y = bad_y;
    cancel = 0;
    assert_int_equal(pd_family_gbm.fit(p, &task, &dt, NULL, &o, &m, err, sizeof err), PD_EDATA);
    pd_family_gbm.params_free(p);
}

/* A row of weight 2 counts as two copies of the row. */
static void weights_equal_duplicates(void **state)
{
    struct tabfix t;
    assert_int_equal(tabfix_load("tests/data/tabular/diabetes.csv", NULL, TABFIX_NUMBER, &t, NULL, 0), 0);
    size_t n = 200, d = t.d, n2 = 0;
    float *x2 = malloc(2 * n * d * sizeof *x2);
    double *y2 = malloc(2 * n * sizeof *y2), *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++) {
        w[i] = i % 3 == 0 ? 2.0 : 1.0;
        for (int c = 0; c < (int)w[i]; c++) {
            memcpy(x2 + n2 * d, t.x + i * d, d * sizeof *x2);
            y2[n2++] = t.y[i];
        }
    }
    const char *js = "{\"n_estimators\":5,\"max_depth\":3}";
    struct pd_task task = { PD_TASK_REGRESSION, 0 };
    struct pd_fit_opts o = { .threads = 1, .seed = 1 };
    struct pd_data d1 = { .n = n2, .d = d, .x = x2, .y = y2 };
    struct pd_data d2 = { .n = n, .d = d, .x = t.x, .y = t.y, .w = w };
    /* Same quantiles: bins come from distinct values and both tables have
     * fewer than 255 of them per feature. */
    void *m1 = fit_full(js, task, &d1, NULL, &o), *m2 = fit_full(js, task, &d2, NULL, &o);
    double *o1 = malloc(n * sizeof *o1), *o2 = malloc(n * sizeof *o2);
    assert_int_equal(pd_family_gbm.predict(m1, t.x, n, d, 1, o1), PD_OK);
    assert_int_equal(pd_family_gbm.predict(m2, t.x, n, d, 1, o2), PD_OK);
    for (size_t i = 0; i < n; i++) assert_true(fabs(o1[i] - o2[i]) < 1e-6 * fabs(o1[i]) + 1e-9);
    pd_family_gbm.model_free(m1);
    pd_family_gbm.model_free(m2);
    free(x2); free(y2); free(w); free(o1); free(o2);
    tabfix_free(&t);
}

/* --- accuracy floors ----------------------------------------------------- */

static void accuracy_floors(void **state)
{
    struct tabfix t;
    assert_int_equal(tabfix_load("tests/data/tabular/iris.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    double a = cv5(&pd_family_gbm, NULL, &t);
    print_message("iris: gbm %.4f\n", a);
    assert_true(a >= 0.93);
    tabfix_free(&t);

    assert_int_equal(tabfix_load("tests/data/tabular/breast_cancer.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    a = cv5(&pd_family_gbm, NULL, &t);
    double b = cv5(&pd_family_gbm, "{\"max_leaves\":8,\"max_depth\":0,\"subsample\":0.8,"
                                   "\"colsample_bytree\":0.5}", &t);
    print_message("breast_cancer: gbm %.4f lossguide %.4f\n", a, b);
    assert_true(a >= 0.94 && b >= 0.94);
    tabfix_free(&t);

    assert_int_equal(tabfix_load("tests/data/tabular/diabetes.csv", NULL, TABFIX_NUMBER, &t, NULL, 0), 0);
    a = cv5(&pd_family_gbm, "{\"max_depth\":3,\"learning_rate\":0.05,\"subsample\":0.8}", &t);
    b = cv5(&pd_family_gbm, NULL, &t);
    print_message("diabetes R2: gbm %.4f (defaults %.4f)\n", a, b);
    assert_true(a >= 0.35);
    tabfix_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bins_match_thresholds),
        cmocka_unit_test(one_round_regression_by_hand),
        cmocka_unit_test(one_round_logistic_by_hand),
        cmocka_unit_test(missing_values_default_direction),
        cmocka_unit_test(leaf_wise_growth_caps_leaves),
        cmocka_unit_test(early_stopping_keeps_best_round),
        cmocka_unit_test(reproducible_across_threads),
        cmocka_unit_test(save_load_round_trip_and_truncation),
        cmocka_unit_test(bad_params_are_named),
        cmocka_unit_test(cancel_stops_fit),
        cmocka_unit_test(weights_equal_duplicates),
        cmocka_unit_test(accuracy_floors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

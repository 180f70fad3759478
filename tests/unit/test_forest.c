/* test_forest.c - rf and extratrees: hand-checked stumps, reproducibility
 * across thread counts, save/load, truncated and garbage model files, bad
 * parameters, OOB score, cancellation, and 5-fold accuracy floors on iris,
 * breast_cancer and diabetes (CSV copies in tests/data/tabular/, read with
 * tests/support/tabfix; run from the repository root). */
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
#include "trainers/forest.h"

/* --- helpers ------------------------------------------------------------- */

/* Fixtures are loaded with TABFIX_CLASSES_SEEN (class indices in order of
 * first appearance; breast_cancer lists malignant first), the order these
 * tests' expectations were written against. */

static void *fit_json(const struct pd_family *fam, const char *json, struct pd_task task,
                      const float *x, const double *y, size_t n, size_t d, int threads,
                      uint64_t seed)
{
    char err[512] = "";
    struct pd_data data = { .n = n, .d = d, .x = x, .y = y };
    struct pd_fit_opts opts = { .threads = threads, .seed = seed };
    void *model = NULL;
    if (tabfix_fit(fam, json, task, &data, NULL, &opts, &model, err, sizeof err) != PD_OK)
        fail_msg("%s", err);
    return model;
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

/* --- hand-checked stumps ------------------------------------------------- */

static void stump_regression(void **state)
{
    /* Split after x=3: left {1,1,1} SSE 0, right {5,5,6} SSE 2/3; every
     * other cut is worse. Threshold midpoint 3.5, leaves 1 and 16/3. */
    float x[] = { 1, 2, 3, 4, 5, 6 };
    double y[] = { 1, 1, 1, 5, 5, 6 };
    struct pd_task task = { PD_TASK_REGRESSION, 0 };
    void *m = fit_json(&pd_family_rf,
                       "{\"n_estimators\":1,\"bootstrap\":false,\"max_depth\":1}",
                       task, x, y, 6, 1, 1, 1);
    const struct tree *t = forest_model_tree(m, 0);
    assert_int_equal(t->n_nodes, 3);
    assert_int_equal(t->nodes[0].feature, 0);
    assert_true(t->nodes[0].thr == 3.5f);
    const struct tree_node *l = &t->nodes[t->nodes[0].left], *r = &t->nodes[t->nodes[0].right];
    assert_true(fabs(t->values[l->left] - 1.0) < 1e-12);
    assert_true(fabs(t->values[r->left] - 16.0 / 3) < 1e-12);
    float q[] = { 3.4f, 3.6f };
    double out[2];
    assert_int_equal(pd_family_rf.predict(m, q, 2, 1, 1, out), PD_OK);
    assert_true(fabs(out[0] - 1.0) < 1e-12 && fabs(out[1] - 16.0 / 3) < 1e-12);
    pd_family_rf.model_free(m);
}

static void stump_classification(void **state)
{
    /* y = 0 0 1 0 1 1 1 over x = 1..7. Gini proxy sum(c^2)/w per side:
     * cut after 2: 2 + 17/5 = 5.4; after 4: 10/4 + 3 = 5.5 (best); after
     * 5: 2.6 + 2 = 4.6; ... Entropy picks the same cut. Left leaf holds
     * 3 zeros and 1 one. */
    float x[] = { 1, 2, 3, 4, 5, 6, 7 };
    double y[] = { 0, 0, 1, 0, 1, 1, 1 };
    struct pd_task task = { PD_TASK_CLASSIFICATION, 2 };
    const char *js[] = {
        "{\"n_estimators\":1,\"bootstrap\":false,\"max_depth\":1,\"max_features\":null}",
        "{\"n_estimators\":1,\"bootstrap\":false,\"max_depth\":1,\"criterion\":\"entropy\"}",
    };
    for (int c = 0; c < 2; c++) {
        void *m = fit_json(&pd_family_rf, js[c], task, x, y, 7, 1, 1, 3);
        const struct tree *t = forest_model_tree(m, 0);
        assert_int_equal(t->n_nodes, 3);
        assert_true(t->nodes[0].thr == 4.5f);
        const double *lv = t->values + (size_t)t->nodes[t->nodes[0].left].left * 2;
        const double *rv = t->values + (size_t)t->nodes[t->nodes[0].right].left * 2;
        assert_true(lv[0] == 0.75 && lv[1] == 0.25);
        assert_true(rv[0] == 0.0 && rv[1] == 1.0);
        float q[] = { 4.4f, 4.6f };
        double out[4];
        assert_int_equal(pd_family_rf.predict(m, q, 2, 1, 1, out), PD_OK);
        assert_true(out[0] == 0.75 && out[1] == 0.25 && out[2] == 0.0 && out[3] == 1.0);
        pd_family_rf.model_free(m);
    }
}

static void extratrees_stump_is_consistent(void **state)
{
    /* A random threshold inside [1, 7); leaves must hold the class shares
     * of the rows on each side of it. */
    float x[] = { 1, 2, 3, 4, 5, 6, 7 };
    double y[] = { 0, 0, 1, 0, 1, 1, 1 };
    struct pd_task task = { PD_TASK_CLASSIFICATION, 2 };
    for (uint64_t seed = 1; seed < 20; seed++) {
        void *m = fit_json(&pd_family_extratrees, "{\"n_estimators\":1,\"max_depth\":1}",
                           task, x, y, 7, 1, 1, seed);
        const struct tree *t = forest_model_tree(m, 0);
        assert_int_equal(t->n_nodes, 3);
        float thr = t->nodes[0].thr;
        assert_true(thr >= 1 && thr < 7);
        double c[2][2] = { { 0 } };
        for (int i = 0; i < 7; i++) c[x[i] <= thr ? 0 : 1][(int)y[i]] += 1;
        const double *lv = t->values + (size_t)t->nodes[t->nodes[0].left].left * 2;
        assert_true(fabs(lv[1] - c[0][1] / (c[0][0] + c[0][1])) < 1e-12);
        pd_family_extratrees.model_free(m);
    }
}

/* --- reproducibility, save/load, truncation ------------------------------ */

static void reproducible_across_threads(void **state)
{
    struct tabfix t;
    assert_int_equal(tabfix_load("tests/data/tabular/breast_cancer.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    struct pd_task task = { PD_TASK_CLASSIFICATION, t.n_classes };
    const struct pd_family *fams[] = { &pd_family_rf, &pd_family_extratrees };
    /* Query points between training rows: on the rows themselves fully
     * grown extra-trees are exact whatever the seed. */
    float *qx = malloc(t.n * t.d * sizeof *qx);
    for (size_t i = 0; i < t.n * t.d; i++)
        qx[i] = 0.5f * (t.x[i] + t.x[(i + t.d) % (t.n * t.d)]);
    for (int f = 0; f < 2; f++) {
        double *o[4];
        int th[4] = { 1, 2, 2, 3 };
        for (int i = 0; i < 4; i++) {
            void *m = fit_json(fams[f], "{\"n_estimators\":20}", task, t.x, t.y, t.n, t.d,
                               th[i], i == 3 ? 99 : 5);
            o[i] = malloc(t.n * 2 * sizeof *o[i]);
            assert_int_equal(fams[f]->predict(m, qx, t.n, t.d, th[i], o[i]), PD_OK);
            fams[f]->model_free(m);
        }
        assert_memory_equal(o[0], o[1], t.n * 2 * sizeof(double));
        assert_memory_equal(o[1], o[2], t.n * 2 * sizeof(double));
        assert_true(memcmp(o[0], o[3], t.n * 2 * sizeof(double)) != 0); /* other seed */
        for (int i = 0; i < 4; i++) free(o[i]);
    }
    free(qx);
    tabfix_free(&t);
}

static void save_load_round_trip_and_truncation(void **state)
{
    struct tabfix t;
    assert_int_equal(tabfix_load("tests/data/tabular/iris.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    struct pd_task task = { PD_TASK_CLASSIFICATION, t.n_classes };
    const struct pd_family *fams[] = { &pd_family_rf, &pd_family_extratrees };
    for (int f = 0; f < 2; f++) {
        void *m = fit_json(fams[f], "{\"n_estimators\":3,\"max_depth\":3}", task, t.x, t.y,
                           t.n, t.d, 2, 11);
        struct pd_buf b;
        pd_buf_init(&b);
        assert_int_equal(fams[f]->save(m, &b), PD_OK);
        struct pd_reader r;
        pd_reader_init(&r, b.data, b.len);
        void *m2 = NULL;
        char err[256];
        assert_int_equal(fams[f]->load(&r, &m2, err, sizeof err), PD_OK);
        assert_int_equal(r.left, 0);
        double *o1 = malloc(t.n * 3 * sizeof *o1), *o2 = malloc(t.n * 3 * sizeof *o2);
        assert_int_equal(fams[f]->predict(m, t.x, t.n, t.d, 1, o1), PD_OK);
        assert_int_equal(fams[f]->predict(m2, t.x, t.n, t.d, 2, o2), PD_OK);
        assert_memory_equal(o1, o2, t.n * 3 * sizeof(double));
        /* Every proper prefix is rejected. */
        for (size_t len = 0; len < b.len; len++) {
            void *m3 = (void *)1;
            pd_reader_init(&r, b.data, len);
            assert_int_equal(fams[f]->load(&r, &m3, err, sizeof err), PD_EFORMAT);
            assert_null(m3);
        }
        /* Garbage: a wrong magic, and a child index pointing backwards. */
        unsigned char *bad = malloc(b.len);
        double *big = malloc(TREE_MAX_VALUE_DIM * sizeof *big);
        memcpy(bad, b.data, b.len);
        bad[0] ^= 0xff;
        pd_reader_init(&r, bad, b.len);
        void *m4 = NULL;
        assert_int_equal(fams[f]->load(&r, &m4, err, sizeof err), PD_EFORMAT);
        memcpy(bad, b.data, b.len);
        /* header is 8 u32 + f64 = 40 bytes, tree header 12, node: feature,
         * thr, left at offset 8 */
        uint32_t zero = 0;
        memcpy(bad + 40 + 12 + 8, &zero, 4);
        pd_reader_init(&r, bad, b.len);
        assert_int_equal(fams[f]->load(&r, &m4, err, sizeof err), PD_EFORMAT);
        assert_null(m4);
        /* Random bytes never crash. */
        struct pd_rng rng;
        pd_rng_seed(&rng, 3);
        for (int k = 0; k < 200; k++) {
            memcpy(bad, b.data, b.len);
            for (int z = 0; z < 4; z++) bad[pd_rng_below(&rng, b.len)] = (unsigned char)pd_rng_next(&rng);
            pd_reader_init(&r, bad, b.len);
            void *m5 = NULL;
            int rc = fams[f]->load(&r, &m5, err, sizeof err);
            assert_true(rc == PD_OK || rc == PD_EFORMAT);
            if (m5) {
                /* Only the first row: a changed class count widens rows. */
                int prc = fams[f]->predict(m5, t.x, 1, t.d, 1, big);
                assert_true(prc == PD_OK || prc == PD_EDATA);
            }
            fams[f]->model_free(m5);
        }
        free(bad);
        free(big);
        free(o1); free(o2);
        pd_buf_free(&b);
        fams[f]->model_free(m);
        fams[f]->model_free(m2);
    }
    tabfix_free(&t);
}

/* --- parameters ---------------------------------------------------------- */

static void bad_params_are_named(void **state)
{
    struct { const struct pd_family *fam; int cls; const char *json, *name; } cases[] = {
        { &pd_family_rf, 1, "{\"n_estimators\":0}", "n_estimators" },
        { &pd_family_rf, 1, "{\"n_estimators\":\"ten\"}", "n_estimators" },
        { &pd_family_rf, 1, "{\"max_depth\":0}", "max_depth" },
        { &pd_family_rf, 1, "{\"max_depth\":2.5}", "max_depth" },
        { &pd_family_rf, 1, "{\"min_samples_split\":1}", "min_samples_split" },
        { &pd_family_rf, 1, "{\"min_samples_leaf\":0}", "min_samples_leaf" },
        { &pd_family_rf, 1, "{\"max_features\":\"cube\"}", "max_features" },
        { &pd_family_rf, 1, "{\"max_features\":-1}", "max_features" },
        { &pd_family_rf, 1, "{\"max_features\":2.5}", "max_features" },
        { &pd_family_rf, 1, "{\"criterion\":\"squared_error\"}", "criterion" },
        { &pd_family_rf, 0, "{\"criterion\":\"gini\"}", "criterion" },
        { &pd_family_rf, 1, "{\"bootstrap\":1}", "bootstrap" },
        { &pd_family_rf, 1, "{\"bootstrap\":false,\"oob_score\":true}", "oob_score" },
        { &pd_family_rf, 1, "{\"max_samples\":0}", "max_samples" },
        { &pd_family_extratrees, 1, "{\"max_samples\":0.5}", "max_samples" },
        { &pd_family_rf, 1, "{\"random_state\":1}", "random_state" },
        { &pd_family_rf, 1, "[1,2]", "params" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pd_task task = cases[i].cls ? (struct pd_task){ PD_TASK_CLASSIFICATION, 3 }
                                           : (struct pd_task){ PD_TASK_REGRESSION, 0 };
        cJSON *j = cJSON_Parse(cases[i].json);
        assert_non_null(j);
        void *p = (void *)1;
        char err[256] = "";
        int rc = cases[i].fam->params_parse(j, &task, &p, err, sizeof err);
        cJSON_Delete(j);
        if (rc != PD_EPARAM || strstr(err, cases[i].name) == NULL)
            fail_msg("%s: rc %d, message \"%s\"", cases[i].json, rc, err);
        assert_null(p);
    }
    /* max_features larger than the data: rejected at fit, named. */
    struct pd_task task = { PD_TASK_REGRESSION, 0 };
    cJSON *j = cJSON_Parse("{\"max_features\":5}");
    void *p = NULL;
    char err[256];
    assert_int_equal(pd_family_rf.params_parse(j, &task, &p, err, sizeof err), PD_OK);
    cJSON_Delete(j);
    float x[6] = { 1, 2, 3, 4, 5, 6 };
    double y[3] = { 1, 2, 3 };
    struct pd_data data = { .n = 3, .d = 2, .x = x, .y = y };
    struct pd_fit_opts opts = { .threads = 1 };
    void *m = NULL;
    assert_int_equal(pd_family_rf.fit(p, &task, &data, NULL, &opts, &m, err, sizeof err), PD_EPARAM);
    assert_non_null(strstr(err, "max_features"));
    pd_family_rf.params_free(p);
}

static void defaults_follow_sklearn(void **state)
{
    struct pd_task cls = { PD_TASK_CLASSIFICATION, 2 }, reg = { PD_TASK_REGRESSION, 0 };
    void *p;
    char err[256];
    assert_int_equal(pd_family_rf.params_parse(NULL, &cls, &p, err, sizeof err), PD_OK);
    cJSON *j = pd_family_rf.params_json(p);
    assert_int_equal(cJSON_GetObjectItem(j, "n_estimators")->valueint, 100);
    assert_string_equal(cJSON_GetObjectItem(j, "max_features")->valuestring, "sqrt");
    assert_string_equal(cJSON_GetObjectItem(j, "criterion")->valuestring, "gini");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "bootstrap")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "max_depth")));
    assert_int_equal(cJSON_GetObjectItem(j, "min_samples_split")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(j, "min_samples_leaf")->valueint, 1);
    cJSON_Delete(j);
    pd_family_rf.params_free(p);
    assert_int_equal(pd_family_extratrees.params_parse(NULL, &reg, &p, err, sizeof err), PD_OK);
    j = pd_family_extratrees.params_json(p);
    assert_true(cJSON_GetObjectItem(j, "max_features")->valuedouble == 1.0);
    assert_string_equal(cJSON_GetObjectItem(j, "criterion")->valuestring, "squared_error");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "bootstrap")));
    cJSON_Delete(j);
    pd_family_extratrees.params_free(p);
    assert_int_equal(pd_family_rf.handles_missing, 0);
    assert_int_equal(pd_family_extratrees.native_categorical, 0);
}

/* --- OOB, cancel, bad data ----------------------------------------------- */

struct seen { int trees; int oob_events; double oob; };

static void on_progress(void *ctx, const struct pd_progress *p)
{
    struct seen *s = ctx;
    if (p->metric && strcmp(p->metric, "oob_score") == 0) { s->oob_events++; s->oob = p->value; }
    else s->trees = p->iteration;
}

static void oob_score_reported(void **state)
{
    struct tabfix t;
    assert_int_equal(tabfix_load("tests/data/tabular/iris.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    struct pd_task task = { PD_TASK_CLASSIFICATION, t.n_classes };
    cJSON *j = cJSON_Parse("{\"n_estimators\":50,\"oob_score\":true}");
    void *p, *m = NULL;
    char err[256];
    assert_int_equal(pd_family_rf.params_parse(j, &task, &p, err, sizeof err), PD_OK);
    cJSON_Delete(j);
    struct seen s = { 0 };
    struct pd_data data = { .n = t.n, .d = t.d, .x = t.x, .y = t.y };
    struct pd_fit_opts opts = { .threads = 2, .seed = 1, .progress = on_progress, .progress_ctx = &s };
    assert_int_equal(pd_family_rf.fit(p, &task, &data, NULL, &opts, &m, err, sizeof err), PD_OK);
    assert_int_equal(s.trees, 50);
    assert_int_equal(s.oob_events, 1);
    assert_true(s.oob > 0.85 && s.oob <= 1.0);
    assert_true(forest_model_oob_score(m) == s.oob);
    pd_family_rf.model_free(m);
    pd_family_rf.params_free(p);
    tabfix_free(&t);

    /* Regression OOB is an R^2. */
    assert_int_equal(tabfix_load("tests/data/tabular/diabetes.csv", NULL, TABFIX_NUMBER, &t, NULL, 0), 0);
    struct pd_task rt = { PD_TASK_REGRESSION, 0 };
    j = cJSON_Parse("{\"n_estimators\":40,\"oob_score\":true,\"max_samples\":0.8}");
    assert_int_equal(pd_family_rf.params_parse(j, &rt, &p, err, sizeof err), PD_OK);
    cJSON_Delete(j);
    struct pd_data rd = { .n = t.n, .d = t.d, .x = t.x, .y = t.y };
    assert_int_equal(pd_family_rf.fit(p, &rt, &rd, NULL, &opts, &m, err, sizeof err), PD_OK);
    double r2 = forest_model_oob_score(m);
    assert_true(r2 > 0.2 && r2 < 0.7);
    pd_family_rf.model_free(m);
    pd_family_rf.params_free(p);
    tabfix_free(&t);
}

static void cancel_and_bad_data(void **state)
{
    float x[] = { 1, 2, 3, 4, NAN, 6 };
    double y[] = { 0, 1, 0, 1, 0, 1 };
    struct pd_task task = { PD_TASK_CLASSIFICATION, 2 };
    void *p, *m = NULL;
    char err[256];
    assert_int_equal(pd_family_rf.params_parse(NULL, &task, &p, err, sizeof err), PD_OK);
    volatile sig_atomic_t cancel = 1;
    struct pd_data data = { .n = 4, .d = 1, .x = x, .y = y };
    struct pd_fit_opts opts = { .threads = 2, .cancel = &cancel };
    assert_int_equal(pd_family_rf.fit(p, &task, &data, NULL, &opts, &m, err, sizeof err),
                     PD_ECANCELLED);
    assert_null(m);
    cancel = 0;
    data.n = 6; /* now holds a NaN */
    assert_int_equal(pd_family_rf.fit(p, &task, &data, NULL, &opts, &m, err, sizeof err), PD_EDATA);
    double bad_y[] = { 0, 1, 2, 0 };
    data = (struct pd_data){ .n = 4, .d = 1, .x = x, .y = bad_y };
    assert_int_equal(pd_family_rf.fit(p, &task, &data, NULL, &opts, &m, err, sizeof err), PD_EDATA);
    assert_null(m);
    pd_family_rf.params_free(p);
}

/* A row of weight 2 counts as two copies of the row. */
static void weights_equal_duplicates(void **state)
{
    struct tabfix t;
    assert_int_equal(tabfix_load("tests/data/tabular/iris.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    size_t n = t.n, d = t.d, n2 = 0;
    float *x2 = malloc(2 * n * d * sizeof *x2);
    double *y2 = malloc(2 * n * sizeof *y2), *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++) {
        w[i] = i % 3 == 0 ? 2.0 : 1.0;
        for (int c = 0; c < (int)w[i]; c++) {
            memcpy(x2 + n2 * d, t.x + i * d, d * sizeof *x2);
            y2[n2++] = t.y[i];
        }
    }
    struct pd_task task = { PD_TASK_CLASSIFICATION, 3 };
    const char *js = "{\"n_estimators\":1,\"bootstrap\":false,\"max_features\":null}";
    void *m1 = fit_json(&pd_family_rf, js, task, x2, y2, n2, d, 1, 1);
    char err[256];
    cJSON *j = cJSON_Parse(js);
    void *p, *m2 = NULL;
    assert_int_equal(pd_family_rf.params_parse(j, &task, &p, err, sizeof err), PD_OK);
    cJSON_Delete(j);
    struct pd_data dt = { .n = n, .d = d, .x = t.x, .y = t.y, .w = w };
    struct pd_fit_opts o = { .threads = 1, .seed = 1 };
    assert_int_equal(pd_family_rf.fit(p, &task, &dt, NULL, &o, &m2, err, sizeof err), PD_OK);
    double *o1 = malloc(n * 3 * sizeof *o1), *o2 = malloc(n * 3 * sizeof *o2);
    assert_int_equal(pd_family_rf.predict(m1, t.x, n, d, 1, o1), PD_OK);
    assert_int_equal(pd_family_rf.predict(m2, t.x, n, d, 1, o2), PD_OK);
    for (size_t i = 0; i < n * 3; i++) assert_true(fabs(o1[i] - o2[i]) < 1e-12);
    pd_family_rf.model_free(m1);
    pd_family_rf.model_free(m2);
    pd_family_rf.params_free(p);
    free(x2); free(y2); free(w); free(o1); free(o2);
    tabfix_free(&t);
}

/* --- accuracy floors ----------------------------------------------------- */

static void accuracy_floors(void **state)
{
    struct tabfix t;
    assert_int_equal(tabfix_load("tests/data/tabular/iris.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    assert_int_equal(t.n, 150);
    assert_int_equal(t.n_classes, 3);
    double a = cv5(&pd_family_rf, NULL, &t), b = cv5(&pd_family_extratrees, NULL, &t);
    print_message("iris: rf %.4f extratrees %.4f\n", a, b);
    assert_true(a >= 0.93 && b >= 0.93);
    tabfix_free(&t);

    assert_int_equal(tabfix_load("tests/data/tabular/breast_cancer.csv", NULL, TABFIX_CLASSES_SEEN, &t, NULL, 0), 0);
    assert_int_equal(t.n_classes, 2);
    a = cv5(&pd_family_rf, NULL, &t);
    b = cv5(&pd_family_extratrees, "{\"criterion\":\"entropy\"}", &t);
    print_message("breast_cancer: rf %.4f extratrees %.4f\n", a, b);
    assert_true(a >= 0.94 && b >= 0.94);
    tabfix_free(&t);

    assert_int_equal(tabfix_load("tests/data/tabular/diabetes.csv", NULL, TABFIX_NUMBER, &t, NULL, 0), 0);
    a = cv5(&pd_family_rf, NULL, &t);
    b = cv5(&pd_family_extratrees, "{\"min_samples_leaf\":5}", &t);
    print_message("diabetes R2: rf %.4f extratrees %.4f\n", a, b);
    assert_true(a >= 0.35 && b >= 0.35);
    tabfix_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stump_regression),
        cmocka_unit_test(stump_classification),
        cmocka_unit_test(extratrees_stump_is_consistent),
        cmocka_unit_test(reproducible_across_threads),
        cmocka_unit_test(save_load_round_trip_and_truncation),
        cmocka_unit_test(bad_params_are_named),
        cmocka_unit_test(defaults_follow_sklearn),
        cmocka_unit_test(oob_score_reported),
        cmocka_unit_test(cancel_and_bad_data),
        cmocka_unit_test(weights_equal_duplicates),
        cmocka_unit_test(accuracy_floors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_darts.c - the "darts" family: a short first-order search on a
 * subset of tests/data/images/digits8x8.zip derives a valid genotype (it
 * parses with lib/genotype, has no "none", two distinct inputs per node),
 * moves the alphas away from their initialization, leaves a supernet that
 * predicts clearly better than chance and survives save/load; and its
 * parameter errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/genotype.h"
#include "trainers/cnn.h"
#include "trainers/cnnnet.h"
#include "trainers/darts.h"
#include "trainers/imagedata.h"

#define DIGITS "tests/data/images/digits8x8.zip"

static const struct pd_family *F = &pd_family_darts;

static void search_derives_a_valid_genotype(void **state)
{
    (void)state;
    struct imagedata d;
    struct imagedata_opts io = {.flags = IMAGEDATA_FEATURES};
    char err[512];
    if (imagedata_load_file(DIGITS, &io, &d, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(d.dim, 64);
    /* every 3rd image for the search, the others (a subset) to evaluate */
    size_t n = 0, nt = 0;
    float *x = malloc(d.n * 64 * sizeof *x), *tx = malloc(d.n * 64 * sizeof *tx);
    double *y = malloc(d.n * sizeof *y), *ty = malloc(d.n * sizeof *ty);
    for (size_t i = 0; i < d.n; i++) {
        if (i % 3 == 0) {
            memcpy(x + n * 64, d.x + i * 64, 64 * sizeof *x);
            y[n++] = d.label[i];
        } else if (i % 6 == 1) {
            memcpy(tx + nt * 64, d.x + i * 64, 64 * sizeof *tx);
            ty[nt++] = d.label[i];
        }
    }
    struct pd_task t = {PD_TASK_CLASSIFICATION, d.n_classes};
    cJSON *j = cJSON_Parse("{\"cells\": 3, \"channels\": 4, \"epochs\": 3, \"batch_size\": 32,"
                           " \"seed\": 3, \"learning_rate\": 0.05}");
    void *p = NULL, *m = NULL, *m2 = NULL;
    assert_int_equal(F->params_parse(j, &t, &p, err, sizeof err), 0);
    struct pd_data tr = {.n = n, .d = 64, .x = x, .y = y};
    struct pd_fit_opts o = {.threads = 1, .seed = 1, .image_channels = 1, .image_height = 8,
                            .image_width = 8};
    if (F->fit(p, &t, &tr, NULL, &o, &m, err, sizeof err) != 0) fail_msg("%s", err);

    cJSON *det = F->details(m);
    assert_non_null(det);
    struct genotype g;
    if (genotype_from_json(cJSON_GetObjectItemCaseSensitive(det, "genotype"), &g, err, sizeof err) != 0)
        fail_msg("derived genotype: %s", err);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < GENOTYPE_NODES; i++) {
            const struct genotype_edge *e = r ? g.reduce : g.normal;
            assert_int_not_equal(e[2 * i].op, GOP_NONE);
            assert_int_not_equal(e[2 * i + 1].op, GOP_NONE);
            assert_int_not_equal(e[2 * i].input, e[2 * i + 1].input);
            assert_true(e[2 * i].input < 2 + i && e[2 * i + 1].input < 2 + i);
        }
    assert_true(cJSON_GetObjectItemCaseSensitive(det, "param_count")->valuedouble >
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(det, "derived"),
                                                 "param_count")->valuedouble);

    /* the alphas moved away from a fresh supernet's (same seed) */
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    struct cnnnet_config cfg = {.mode = CNNNET_SEARCH, .in_channels = 1, .height = 8, .width = 8,
                                .n_classes = d.n_classes, .cells = 3, .channels = 4, .seed = 3};
    struct cnnnet *fresh = NULL;
    assert_int_equal(cnnnet_new(be, &cfg, &fresh, err, sizeof err), 0);
    const cJSON *al = cJSON_GetObjectItemCaseSensitive(det, "alphas");
    double a0[CNNNET_SEARCH_EDGES * GOP_COUNT];
    for (int r = 0; r < 2; r++) {
        assert_int_equal(cnnnet_alphas(fresh, r, a0), 0);
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(al, r ? "reduce" : "normal");
        assert_int_equal(cJSON_GetArraySize(rows), CNNNET_SEARCH_EDGES);
        double moved = 0;
        for (int e = 0; e < CNNNET_SEARCH_EDGES; e++) {
            const cJSON *row = cJSON_GetArrayItem(rows, e);
            assert_int_equal(cJSON_GetArraySize(row), GOP_COUNT);
            double s = 0;
            for (int k = 0; k < GOP_COUNT; k++) {
                double v = cJSON_GetArrayItem(row, k)->valuedouble;
                s += v;
                moved = fmax(moved, fabs(v - a0[e * GOP_COUNT + k]));
            }
            assert_true(fabs(s - 1) < 1e-9);
        }
        if (!(moved > 1e-4)) fail_msg("%s alphas moved by %g only", r ? "reduce" : "normal", moved);
    }
    cnnnet_free(fresh);
    nn_backend_free(be);
    cJSON_Delete(det);

    /* the supernet predicts well above chance (0.1), also after save/load */
    double *p1 = malloc(nt * 10 * sizeof *p1), *p2 = malloc(nt * 10 * sizeof *p2);
    assert_int_equal(F->predict(m, tx, nt, 64, 1, p1), 0);
    size_t ok = 0;
    for (size_t i = 0; i < nt; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++) best = p1[i * 10 + k] > p1[i * 10 + best] ? k : best;
        ok += best == (int)ty[i];
    }
    if (ok < nt / 2) fail_msg("supernet: %zu of %zu right", ok, nt);
    struct pd_buf b;
    pd_buf_init(&b);
    assert_int_equal(F->save(m, &b), 0);
    struct pd_reader rd;
    pd_reader_init(&rd, b.data, b.len);
    if (F->load(&rd, &m2, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(F->predict(m2, tx, nt, 64, 1, p2), 0);
    assert_memory_equal(p1, p2, nt * 10 * sizeof *p1);
    /* the loaded model derives the same genotype */
    cJSON *d1 = F->details(m), *d2 = F->details(m2);
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(d1, "genotype"),
                              cJSON_GetObjectItemCaseSensitive(d2, "genotype"), 1));
    cJSON_Delete(d1);
    cJSON_Delete(d2);
    /* a cnn loader refuses a supernet */
    void *m3 = NULL;
    pd_reader_init(&rd, b.data, b.len);
    assert_int_equal(pd_family_cnn.load(&rd, &m3, err, sizeof err), PD_EFORMAT);
    pd_buf_free(&b);

    free(p1);
    free(p2);
    F->model_free(m);
    F->model_free(m2);
    F->params_free(p);
    cJSON_Delete(j);
    free(x);
    free(y);
    free(tx);
    free(ty);
    imagedata_free(&d);
}

static void params_named(void **state)
{
    (void)state;
    static const struct { const char *json, *want; } cases[] = {
        {"{\"cells\": 0}", "cells:"},
        {"{\"channels\": 129}", "channels:"},
        {"{\"epochs\": 601}", "epochs:"},
        {"{\"batch_size\": 2000}", "batch_size:"},
        {"{\"learning_rate\": -1}", "learning_rate:"},
        {"{\"genotype\": {}}", "genotype:"},
    };
    struct pd_task t = {PD_TASK_CLASSIFICATION, 3};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        void *p = NULL;
        char err[256] = "";
        assert_int_equal(F->params_parse(j, &t, &p, err, sizeof err), PD_EPARAM);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("%s: got \"%s\"", cases[i].json, err);
        cJSON_Delete(j);
    }
    void *p = NULL;
    char err[256];
    assert_int_equal(F->params_parse(NULL, &t, &p, err, sizeof err), 0);
    cJSON *e = F->params_json(p);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(e, "epochs")->valueint, 5);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(e, "cells")->valueint, 5);
    cJSON_Delete(e);
    F->params_free(p);
    assert_int_equal(F->no_refit_on_holdout, 1);
    assert_int_equal(F->needs_scaling, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(search_derives_a_valid_genotype),
        cmocka_unit_test(params_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_cnn.c - the DARTS network (trainers/cnnnet) and the "cnn" family:
 * parameter counts, multiply-adds and output shapes against PyTorch's
 * (tests/data/nn/cnn_counts.json, made by make_cnn_counts.py) for fixed
 * networks and a supernet, odd image sizes through the reductions, SGD
 * steps that lower the loss on a fixed batch, DARTS' derivation rule on
 * hand-made weights, save/load predicting identically, damaged model
 * data, parameter errors that name the field, the image-shape check, the
 * range-test hook and "learning_rate": "auto". */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn/ops.h"
#include "nn/optim.h"
#include "tests/support/harness.h"
#include "trainers/cnn.h"
#include "trainers/cnnnet.h"
#include "trainers/rng.h"

static const struct pd_family *F = &pd_family_cnn;

/* ---- sizes against PyTorch ------------------------------------------------- */

static void counts_match_pytorch(void **state)
{
    (void)state;
    char *text = th_read_file("tests/data/nn/cnn_counts.json", NULL);
    assert_non_null(text);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "cases"), *c;
    assert_true(cJSON_GetArraySize(cases) >= 4);
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    assert_non_null(be);
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        struct cnnnet_config cfg = {
            .mode = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "search")) ? CNNNET_SEARCH : CNNNET_FIXED,
            .in_channels = cJSON_GetObjectItemCaseSensitive(c, "in_channels")->valueint,
            .height = cJSON_GetObjectItemCaseSensitive(c, "height")->valueint,
            .width = cJSON_GetObjectItemCaseSensitive(c, "width")->valueint,
            .n_classes = cJSON_GetObjectItemCaseSensitive(c, "n_classes")->valueint,
            .cells = cJSON_GetObjectItemCaseSensitive(c, "cells")->valueint,
            .channels = cJSON_GetObjectItemCaseSensitive(c, "channels")->valueint,
            .seed = 7,
        };
        if (cfg.mode == CNNNET_FIXED &&
            genotype_from_json(cJSON_GetObjectItemCaseSensitive(c, "genotype"), &cfg.genotype, err,
                               sizeof err) != 0)
            fail_msg("%s: %s", name, err);
        struct cnnnet *net = NULL;
        if (cnnnet_new(be, &cfg, &net, err, sizeof err) != 0) fail_msg("%s: %s", name, err);
        double want_p = cJSON_GetObjectItemCaseSensitive(c, "param_count")->valuedouble;
        double want_m = cJSON_GetObjectItemCaseSensitive(c, "macs")->valuedouble;
        double macs = 0;
        assert_int_equal(cnnnet_macs(net, &macs, err, sizeof err), 0);
        if ((double)cnnnet_param_count(net) != want_p || macs != want_m)
            fail_msg("%s: params %zu (torch %.0f), macs %.0f (torch %.0f)", name,
                     cnnnet_param_count(net), want_p, macs, want_m);
        assert_int_equal(cnnnet_arch(net) != NULL, cfg.mode == CNNNET_SEARCH);

        /* a batch of 3 goes through every reduction to [3, classes] */
        struct nn_graph *g = nn_graph_new(be, err, sizeof err);
        int shape[4] = {3, cfg.in_channels, cfg.height, cfg.width};
        size_t n = (size_t)3 * cfg.in_channels * cfg.height * cfg.width;
        float *x = malloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++) x[i] = (float)((i * 37 % 101) / 101.0);
        struct nn_tensor *y = cnnnet_forward(net, g, nn_graph_input(g, 4, shape, x));
        if (y == NULL) fail_msg("%s: %s", name, nn_graph_error(g));
        assert_int_equal(y->ndim, 2);
        assert_int_equal(y->shape[0], 3);
        assert_int_equal(y->shape[1], cfg.n_classes);
        free(x);
        nn_graph_free(g);
        cnnnet_free(net);
    }
    cJSON_Delete(doc);
    nn_backend_free(be);
}

static void bad_config_refused(void **state)
{
    (void)state;
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    struct cnnnet_config cfg = {.mode = CNNNET_SEARCH, .in_channels = 2, .height = 8, .width = 8,
                                .n_classes = 3, .cells = 3, .channels = 4};
    struct cnnnet *net = (struct cnnnet *)1;
    assert_int_equal(cnnnet_new(be, &cfg, &net, err, sizeof err), -1);
    assert_null(net);
    assert_non_null(strstr(err, "in_channels"));
    cfg.in_channels = 1;
    cfg.mode = CNNNET_FIXED;   /* a zeroed genotype holds "none" ops */
    assert_int_equal(cnnnet_new(be, &cfg, &net, err, sizeof err), -1);
    assert_non_null(strstr(err, "genotype"));
    nn_backend_free(be);
}

/* ---- training steps ---------------------------------------------------------- */

static void sgd_lowers_the_loss(void **state)
{
    (void)state;
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    struct cnnnet_config cfg = {.mode = CNNNET_FIXED, .in_channels = 1, .height = 8, .width = 8,
                                .n_classes = 4, .cells = 3, .channels = 4, .seed = 3};
    /* the family's default genotype (DARTS_V2) via params_json */
    struct pd_task task = {PD_TASK_CLASSIFICATION, 4};
    void *p = NULL;
    assert_int_equal(F->params_parse(NULL, &task, &p, err, sizeof err), 0);
    cJSON *pj = F->params_json(p);
    assert_int_equal(genotype_from_json(cJSON_GetObjectItemCaseSensitive(pj, "genotype"), &cfg.genotype,
                                        err, sizeof err), 0);
    cJSON_Delete(pj);
    F->params_free(p);

    struct cnnnet *net = NULL;
    assert_int_equal(cnnnet_new(be, &cfg, &net, err, sizeof err), 0);
    struct nn_graph *g = nn_graph_new(be, err, sizeof err);
    enum { B = 16 };
    float x[B * 64];
    int labels[B];
    struct pd_rng r;
    pd_rng_seed(&r, 11);
    for (int i = 0; i < B; i++) {
        labels[i] = i % 4;
        for (int j = 0; j < 64; j++)   /* class k: a bright quadrant k, plus noise */
            x[i * 64 + j] = (float)(0.3 * pd_rng_uniform(&r) +
                                    ((j / 32) * 2 + (j % 8) / 4 == labels[i] ? 1.0 : 0.0));
    }
    struct optim_group *gs = NULL;
    int ng = cnn_optim_groups(cnnnet_weights(net), &gs);
    assert_true(ng > 0);
    struct optim_config oc;
    optim_config_init(&oc, OPTIM_SGD);
    oc.lr = 0.05;
    oc.momentum = 0.9;
    struct optim *opt = NULL;
    assert_int_equal(optim_new(&oc, gs, (size_t)ng, &opt, err, sizeof err), 0);
    int shape[4] = {B, 1, 8, 8};
    double first = 0, last = 0;
    for (int step = 0; step < 25; step++) {
        nn_graph_reset(g);
        optim_zero_grad(opt);
        struct nn_tensor *loss = nn_softmax_ce(g, cnnnet_forward(net, g, nn_graph_input(g, 4, shape, x)),
                                               labels, NULL);
        if (loss == NULL) fail_msg("%s", nn_graph_error(g));
        float v;
        nn_tensor_download(loss, &v);
        if (step == 0) first = v;
        last = v;
        assert_int_equal(nn_graph_backward(g, loss, err, sizeof err), 0);
        optim_clip_grad_norm(opt, 5.0);
        optim_step(opt);
    }
    if (!(last < 0.5 * first)) fail_msg("loss %.4f -> %.4f", first, last);
    optim_free(opt);
    free(gs);
    nn_graph_free(g);
    cnnnet_free(net);
    nn_backend_free(be);
}

/* ---- DARTS' derivation rule ------------------------------------------------- */

static void derive_rule(void **state)
{
    (void)state;
    double w[CNNNET_SEARCH_EDGES * GOP_COUNT];
    for (int i = 0; i < CNNNET_SEARCH_EDGES * GOP_COUNT; i++) w[i] = 1.0 / GOP_COUNT;
#define W(e, op) w[(e) * GOP_COUNT + (op)]
    /* node 0 (edges 0, 1): both kept; edge 0's best is dil 5x5, edge 1's sep 3x3;
     * a huge "none" on edge 0 does not count */
    W(0, GOP_NONE) = 0.9;
    W(0, GOP_DIL_CONV_5X5) = 0.3;
    W(1, GOP_SEP_CONV_3X3) = 0.4;
    /* node 1 (edges 2, 3, 4 from states 0, 1, 2): state 2 strongest, then 0 */
    W(2, GOP_MAX_POOL_3X3) = 0.35;
    W(3, GOP_AVG_POOL_3X3) = 0.2;
    W(4, GOP_SKIP_CONNECT) = 0.5;
    /* node 3 (edges 9..13 from states 0..4): states 4 and 1 */
    W(13, GOP_SEP_CONV_5X5) = 0.6;
    W(10, GOP_DIL_CONV_3X3) = 0.55;
    W(12, GOP_NONE) = 0.99;
#undef W
    struct genotype_edge e[GENOTYPE_EDGES];
    cnnnet_derive_cell(w, e);
    assert_int_equal(e[0].input, 1);
    assert_int_equal(e[0].op, GOP_SEP_CONV_3X3);
    assert_int_equal(e[1].input, 0);
    assert_int_equal(e[1].op, GOP_DIL_CONV_5X5);
    assert_int_equal(e[2].input, 2);
    assert_int_equal(e[2].op, GOP_SKIP_CONNECT);
    assert_int_equal(e[3].input, 0);
    assert_int_equal(e[3].op, GOP_MAX_POOL_3X3);
    /* node 2: all equal: the first two states, the first op after none */
    assert_int_equal(e[4].input, 0);
    assert_int_equal(e[5].input, 1);
    assert_int_equal(e[4].op, GOP_MAX_POOL_3X3);
    assert_int_equal(e[6].input, 4);
    assert_int_equal(e[6].op, GOP_SEP_CONV_5X5);
    assert_int_equal(e[7].input, 1);
    assert_int_equal(e[7].op, GOP_DIL_CONV_3X3);
}

/* ---- the family ----------------------------------------------------------------- */

/* n synthetic 1x8x8 images of 3 classes (a bright row band per class). */
struct imgset {
    size_t n;
    float *x;
    double *y;
};

static struct imgset make_images(size_t n, uint64_t seed)
{
    struct imgset s = {n, malloc(n * 64 * sizeof(float)), malloc(n * sizeof(double))};
    struct pd_rng r;
    pd_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % 3);
        s.y[i] = c;
        for (int j = 0; j < 64; j++)
            s.x[i * 64 + j] = (float)(0.5 * pd_rng_uniform(&r) + ((j / 8) / 3 == c ? 0.5 : 0.0));
    }
    return s;
}

static void imgset_free(struct imgset *s)
{
    free(s->x);
    free(s->y);
}

static int fit(const char *json, const struct imgset *s, int with_shape, void **model, char *err,
               size_t errlen)
{
    struct pd_task t = {PD_TASK_CLASSIFICATION, 3};
    cJSON *j = cJSON_Parse(json);
    void *p = NULL;
    int rc = F->params_parse(j, &t, &p, err, errlen);
    cJSON_Delete(j);
    if (rc != 0) return rc;
    struct pd_data d = {.n = s->n, .d = 64, .x = s->x, .y = s->y};
    struct pd_fit_opts o = {.threads = 1, .seed = 5};
    if (with_shape) {
        o.image_channels = 1;
        o.image_height = 8;
        o.image_width = 8;
    }
    rc = F->fit(p, &t, &d, NULL, &o, model, err, errlen);
    F->params_free(p);
    return rc;
}

static void save_load_predicts_identically(void **state)
{
    (void)state;
    struct imgset s = make_images(90, 1);
    void *m = NULL, *m2 = NULL;
    char err[256];
    if (fit("{\"cells\": 3, \"channels\": 4, \"epochs\": 2, \"batch_size\": 16}", &s, 1, &m, err,
            sizeof err) != 0)
        fail_msg("%s", err);
    double *p1 = malloc(s.n * 3 * sizeof *p1), *p2 = malloc(s.n * 3 * sizeof *p2);
    assert_int_equal(F->predict(m, s.x, s.n, 64, 1, p1), 0);
    for (size_t i = 0; i < s.n; i++) {
        double sum = p1[i * 3] + p1[i * 3 + 1] + p1[i * 3 + 2];
        assert_true(fabs(sum - 1) < 1e-6);
    }
    size_t in = 0, out = 0;
    F->shape(m, &in, &out);
    assert_int_equal(in, 64);
    assert_int_equal(out, 3);
    assert_int_equal(F->predict(m, s.x, s.n, 63, 1, p1), PD_EPARAM);

    struct pd_buf b;
    pd_buf_init(&b);
    assert_int_equal(F->save(m, &b), 0);
    struct pd_reader rd;
    pd_reader_init(&rd, b.data, b.len);
    if (F->load(&rd, &m2, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(rd.left, 0);
    assert_int_equal(F->predict(m2, s.x, s.n, 64, 1, p2), 0);
    assert_memory_equal(p1, p2, s.n * 3 * sizeof *p1);

    /* details: the genotype, sizes, the device */
    cJSON *d = F->details(m2);
    assert_non_null(d);
    struct genotype gt;
    assert_int_equal(genotype_from_json(cJSON_GetObjectItemCaseSensitive(d, "genotype"), &gt, err,
                                        sizeof err), 0);
    assert_true(cJSON_GetObjectItemCaseSensitive(d, "param_count")->valuedouble > 1000);
    assert_true(cJSON_GetObjectItemCaseSensitive(d, "flops")->valuedouble > 10000);
    cJSON *dev = cJSON_GetObjectItemCaseSensitive(d, "device");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(dev, "kind")->valuestring, "cpu");
    assert_true(strlen(cJSON_GetObjectItemCaseSensitive(dev, "name")->valuestring) > 0);
    cJSON_Delete(d);
    F->model_free(m2);
    m2 = NULL;

    /* truncated, and a darts loader on a cnn model: refused */
    for (size_t cut = 0; cut < b.len; cut += b.len / 7 + 1) {
        pd_reader_init(&rd, b.data, cut);
        assert_int_equal(F->load(&rd, &m2, err, sizeof err), PD_EFORMAT);
        assert_null(m2);
    }
    const struct pd_family *darts = pd_family_find("darts");
    assert_non_null(darts);
    pd_reader_init(&rd, b.data, b.len);
    assert_int_equal(darts->load(&rd, &m2, err, sizeof err), PD_EFORMAT);
    /* a damaged tensor name inside the weights blob */
    unsigned char *bad = malloc(b.len);
    memcpy(bad, b.data, b.len);
    char *hit = memmem(bad, b.len, "stem.w", 6);
    assert_non_null(hit);
    hit[0] = 'X';
    pd_reader_init(&rd, bad, b.len);
    assert_int_equal(F->load(&rd, &m2, err, sizeof err), PD_EFORMAT);
    free(bad);

    pd_buf_free(&b);
    F->model_free(m);
    F->model_free(NULL);
    free(p1);
    free(p2);
    imgset_free(&s);
}

static void learns_the_bands(void **state)
{
    (void)state;
    struct imgset s = make_images(150, 2), t = make_images(60, 3);
    void *m = NULL;
    char err[256];
    if (fit("{\"cells\": 3, \"channels\": 4, \"epochs\": 4, \"batch_size\": 16, \"seed\": 9}", &s, 1,
            &m, err, sizeof err) != 0)
        fail_msg("%s", err);
    double *p = malloc(t.n * 3 * sizeof *p);
    assert_int_equal(F->predict(m, t.x, t.n, 64, 1, p), 0);
    int ok = 0;
    for (size_t i = 0; i < t.n; i++) {
        int best = 0;
        for (int k = 1; k < 3; k++) best = p[i * 3 + k] > p[i * 3 + best] ? k : best;
        ok += best == (int)t.y[i];
    }
    if (ok < 54) fail_msg("%d of %zu right", ok, t.n);
    free(p);
    F->model_free(m);
    imgset_free(&s);
    imgset_free(&t);
}

static void params_named(void **state)
{
    (void)state;
    static const struct { const char *json, *want; } cases[] = {
        {"{\"cells\": 1}", "cells:"},
        {"{\"cells\": 21}", "cells:"},
        {"{\"channels\": 200}", "channels:"},
        {"{\"channels\": 3}", "channels:"},
        {"{\"epochs\": 0}", "epochs:"},
        {"{\"batch_size\": 4}", "batch_size:"},
        {"{\"learning_rate\": \"fast\"}", "learning_rate:"},
        {"{\"learning_rate\": 0}", "learning_rate:"},
        {"{\"augment\": \"yes\"}", "augment:"},
        {"{\"hflip\": 1}", "hflip:"},
        {"{\"seed\": -1}", "seed:"},
        {"{\"depth\": 3}", "depth:"},
        {"{\"genotype\": {\"normal\": [], \"reduce\": []}}", "genotype.normal"},
        {"{\"genotype\": 5}", "genotype:"},
    };
    struct pd_task t = {PD_TASK_CLASSIFICATION, 3};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        assert_non_null(j);
        void *p = NULL;
        char err[256] = "";
        assert_int_equal(F->params_parse(j, &t, &p, err, sizeof err), PD_EPARAM);
        assert_null(p);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("%s: got \"%s\"", cases[i].json, err);
        cJSON_Delete(j);
    }
    /* good ones, echoed */
    cJSON *j = cJSON_Parse("{\"learning_rate\": \"auto\", \"hflip\": true, \"from_search\": 4,"
                           " \"genotype\": {\"normal\": [[\"skip_connect\", 0], [\"skip_connect\", 1],"
                           " [\"avg_pool_3x3\", 2], [\"skip_connect\", 1], [\"sep_conv_5x5\", 3],"
                           " [\"skip_connect\", 0], [\"skip_connect\", 4], [\"skip_connect\", 1]],"
                           " \"reduce\": [[\"max_pool_3x3\", 0], [\"max_pool_3x3\", 1],"
                           " [\"max_pool_3x3\", 0], [\"max_pool_3x3\", 2], [\"max_pool_3x3\", 0],"
                           " [\"max_pool_3x3\", 1], [\"max_pool_3x3\", 0], [\"max_pool_3x3\", 1]]}}");
    void *p = NULL;
    char err[256];
    assert_int_equal(F->params_parse(j, &t, &p, err, sizeof err), 0);
    cJSON *e = F->params_json(p);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "learning_rate")->valuestring, "auto");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(e, "from_search")->valueint, 4);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "hflip")));
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(e, "genotype"),
                              cJSON_GetObjectItemCaseSensitive(j, "genotype"), 1));
    cJSON_Delete(e);
    cJSON_Delete(j);
    F->params_free(p);
    struct pd_task reg = {PD_TASK_REGRESSION, 0};
    assert_int_equal(F->params_parse(NULL, &reg, &p, err, sizeof err), PD_EPARAM);
}

static void needs_image_shape(void **state)
{
    (void)state;
    struct imgset s = make_images(30, 4);
    void *m = NULL;
    char err[256];
    assert_int_equal(fit("{\"epochs\": 1}", &s, 0, &m, err, sizeof err), PD_EDATA);
    assert_null(m);
    assert_non_null(strstr(err, "image"));
    imgset_free(&s);
}

static void range_test_and_auto(void **state)
{
    (void)state;
    struct imgset s = make_images(96, 6);
    struct pd_task t = {PD_TASK_CLASSIFICATION, 3};
    cJSON *j = cJSON_Parse("{\"cells\": 2, \"channels\": 4, \"batch_size\": 16}");
    void *p = NULL;
    char err[256];
    assert_int_equal(F->params_parse(j, &t, &p, err, sizeof err), 0);
    struct pd_data d = {.n = s.n, .d = 64, .x = s.x, .y = s.y};
    struct pd_fit_opts o = {.threads = 1, .seed = 5, .image_channels = 1, .image_height = 8,
                            .image_width = 8};
    struct lrfind_config cfg;
    lrfind_config_init(&cfg);
    cfg.iterations = 20;
    cfg.start_lr = 1e-4;
    cfg.end_lr = 100;
    cJSON *curve = NULL;
    assert_int_equal(F->lr_find, cnn_lr_find);
    if (cnn_lr_find(p, &t, &d, &o, &cfg, &curve, err, sizeof err) != 0) fail_msg("%s", err);
    const cJSON *lrs = cJSON_GetObjectItemCaseSensitive(curve, "lrs");
    assert_true(cJSON_GetArraySize(lrs) >= 6 && cJSON_GetArraySize(lrs) <= 20);
    assert_true(cJSON_GetArrayItem(lrs, 0)->valuedouble < cJSON_GetArrayItem(lrs, 1)->valuedouble);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(curve, "suggestion"));
    cJSON_Delete(curve);
    F->params_free(p);
    cJSON_Delete(j);

    /* "auto": trains at the suggestion, reported in the details */
    void *m = NULL;
    if (fit("{\"cells\": 2, \"channels\": 4, \"batch_size\": 16, \"epochs\": 1,"
            " \"learning_rate\": \"auto\"}", &s, 1, &m, err, sizeof err) != 0)
        fail_msg("%s", err);
    cJSON *det = F->details(m);
    double lr = cJSON_GetObjectItemCaseSensitive(det, "learning_rate")->valuedouble;
    assert_true(lr > 0 && lr <= 10);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(det, "lr_find"));
    cJSON_Delete(det);
    F->model_free(m);
    imgset_free(&s);
}

static void cancel_stops(void **state)
{
    (void)state;
    struct imgset s = make_images(60, 8);
    struct pd_task t = {PD_TASK_CLASSIFICATION, 3};
    void *p = NULL, *m = NULL;
    char err[256];
    assert_int_equal(F->params_parse(NULL, &t, &p, err, sizeof err), 0);
    volatile sig_atomic_t stop = 1;
    struct pd_data d = {.n = s.n, .d = 64, .x = s.x, .y = s.y};
    struct pd_fit_opts o = {.threads = 1, .cancel = &stop, .image_channels = 1, .image_height = 8,
                            .image_width = 8};
    assert_int_equal(F->fit(p, &t, &d, NULL, &o, &m, err, sizeof err), PD_ECANCELLED);
    assert_null(m);
    F->params_free(p);
    imgset_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_match_pytorch),
        cmocka_unit_test(bad_config_refused),
        cmocka_unit_test(sgd_lowers_the_loss),
        cmocka_unit_test(derive_rule),
        cmocka_unit_test(save_load_predicts_identically),
        cmocka_unit_test(learns_the_bands),
        cmocka_unit_test(params_named),
        cmocka_unit_test(needs_image_shape),
        cmocka_unit_test(range_test_and_auto),
        cmocka_unit_test(cancel_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

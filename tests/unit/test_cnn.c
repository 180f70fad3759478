/* test_cnn.c - the DARTS network (trainers/cnnnet) and the "cnn" family:
 * parameter counts, multiply-adds and output shapes against PyTorch's
 * (tests/data/nn/cnn_counts.json, made by make_cnn_counts.py) for fixed
 * networks and a supernet, odd image sizes through the reductions, SGD
 * steps that lower the loss on a fixed batch, DARTS' derivation rule on
 * hand-made weights, save/load predicting identically, damaged model
 * data, parameter errors that name the field, the image-shape check, the
 * range-test hook and "learning_rate": "auto". The training extras:
 * with all three off, fit's epoch losses are bit for bit those of the
 * recipe as it was before them (replayed here from the public pieces it
 * is made of); each extra alone changes them; the auxiliary head at
 * several map sizes (none under 2x2), its parameters apart from the
 * weights (the weights, counts, MACs and the saved model are those of a
 * network without it); drop-path and the head only in training mode. */
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
#include "nn/tensor.h"
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
        {"{\"drop_path\": 0.95}", "drop_path:"},
        {"{\"drop_path\": -0.1}", "drop_path:"},
        {"{\"drop_path\": \"high\"}", "drop_path:"},
        {"{\"cutout\": 1.5}", "cutout:"},
        {"{\"cutout\": true}", "cutout:"},
        {"{\"auxiliary_weight\": 2}", "auxiliary_weight:"},
        {"{\"auxiliary_weight\": -0.4}", "auxiliary_weight:"},
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
                           " \"drop_path\": 0.2, \"cutout\": 0.5, \"auxiliary_weight\": 0.4,"
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
    assert_true(cJSON_GetObjectItemCaseSensitive(e, "drop_path")->valuedouble == 0.2);
    assert_true(cJSON_GetObjectItemCaseSensitive(e, "cutout")->valuedouble == 0.5);
    assert_true(cJSON_GetObjectItemCaseSensitive(e, "auxiliary_weight")->valuedouble == 0.4);
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


/* ---- the training extras ------------------------------------------------------- */

struct losses {
    int n;
    double v[16];
};

static void on_progress(void *ctx, const struct pd_progress *pr)
{
    struct losses *l = ctx;
    if (pr->metric && strcmp(pr->metric, "train_loss") == 0 && l->n < 16) l->v[l->n++] = pr->value;
}

/* fit with progress: the epoch losses into *l; the model into *model
 * (NULL: freed). */
static int fit_losses(const char *json, const struct imgset *s, struct losses *l, void **model,
                      char *err, size_t errlen)
{
    struct pd_task t = {PD_TASK_CLASSIFICATION, 3};
    cJSON *j = cJSON_Parse(json);
    void *p = NULL, *m = NULL;
    int rc = F->params_parse(j, &t, &p, err, errlen);
    cJSON_Delete(j);
    if (rc != 0) return rc;
    struct pd_data d = {.n = s->n, .d = 64, .x = s->x, .y = s->y};
    struct pd_fit_opts o = {.threads = 1, .seed = 5, .image_channels = 1, .image_height = 8,
                            .image_width = 8, .progress = on_progress, .progress_ctx = l};
    memset(l, 0, sizeof *l);
    rc = F->fit(p, &t, &d, NULL, &o, &m, err, errlen);
    F->params_free(p);
    if (model) *model = m;
    else F->model_free(m);
    return rc;
}

static struct genotype default_genotype(void)
{
    struct pd_task task = {PD_TASK_CLASSIFICATION, 3};
    void *p = NULL;
    char err[256];
    struct genotype g;
    assert_int_equal(F->params_parse(NULL, &task, &p, err, sizeof err), 0);
    cJSON *pj = F->params_json(p);
    assert_int_equal(genotype_from_json(cJSON_GetObjectItemCaseSensitive(pj, "genotype"), &g, err,
                                        sizeof err), 0);
    cJSON_Delete(pj);
    F->params_free(p);
    return g;
}

/* The recipe of cnn.h as it was before the extras, replayed from the
 * public pieces it is made of: the model at the params' seed, the batches
 * of cnn_feed_batch (crop padding 1 at 8x8) in the order the trainer
 * shuffles them, cnn_model_backward, SGD (momentum 0.9, wd 3e-4) on the
 * backend, clipping at 5 and the cosine schedule. */
static void old_recipe(const struct imgset *s, int epochs, int batch, uint64_t seed,
                       struct losses *l)
{
    char err[256];
    struct cnnnet_config cfg = {.mode = CNNNET_FIXED, .genotype = default_genotype(),
                                .in_channels = 1, .height = 8, .width = 8, .n_classes = 3,
                                .cells = 3, .channels = 4, .seed = seed};
    struct cnn_model *m = NULL;
    assert_int_equal(cnn_model_new(&cfg, 1, NULL, &m, err, sizeof err), 0);
    cnn_model_set_norm(m, s->x, NULL, s->n);
    size_t steps = s->n / (size_t)batch;
    struct cnn_feed feed = {s->x, s->y, 1, 8, 8, 1, 0};
    struct nn_graph *g = nn_graph_new(m->be, err, sizeof err);
    struct optim_group *gs = NULL;
    int ng = cnn_optim_groups(cnnnet_weights(m->net), &gs);
    struct optim_config oc;
    optim_config_init(&oc, OPTIM_SGD);
    oc.lr = 0.025;
    oc.momentum = 0.9;
    oc.weight_decay = 3e-4;
    struct optim *opt = NULL;
    assert_int_equal(optim_new_on(m->be, &oc, gs, (size_t)ng, &opt, err, sizeof err), 0);
    size_t *order = malloc(s->n * sizeof *order);
    float *bx = malloc((size_t)batch * 64 * sizeof *bx);
    int *labels = malloc((size_t)batch * sizeof *labels);
    for (size_t i = 0; i < s->n; i++) order[i] = i;
    struct pd_rng rng;
    pd_rng_seed(&rng, seed ^ 0x6261746368ULL);
    struct optim_sched sched = {OPTIM_SCHED_COSINE, 0.025, 0.0, 0, (uint64_t)epochs * steps};
    memset(l, 0, sizeof *l);
    uint64_t step = 0;
    for (int e = 0; e < epochs; e++) {
        double sum = 0;
        for (size_t b = 0; b < steps; b++, step++) {
            if (b == 0)
                for (size_t i = s->n; i > 1; i--) {
                    size_t k = (size_t)pd_rng_below(&rng, i), x = order[i - 1];
                    order[i - 1] = order[k];
                    order[k] = x;
                }
            cnn_feed_batch(m, &feed, order + b * (size_t)batch, (size_t)batch, seed * 31 + step, bx,
                           labels);
            optim_zero_grad(opt);
            double loss;
            assert_int_equal(cnn_model_backward(m, g, bx, labels, batch, &loss, err, sizeof err), 0);
            optim_clip_grad_norm(opt, 5.0);
            optim_set_lr(opt, optim_sched_lr(&sched, step));
            optim_step(opt);
            sum += loss;
        }
        l->v[l->n++] = sum / (double)steps;
    }
    free(order);
    free(bx);
    free(labels);
    optim_free(opt);
    free(gs);
    nn_graph_free(g);
    cnn_model_free(m);
}

static void extras_off_is_the_old_recipe(void **state)
{
    (void)state;
    struct imgset s = make_images(96, 12);
    struct losses now, old;
    char err[256];
    if (fit_losses("{\"cells\": 3, \"channels\": 4, \"epochs\": 3, \"batch_size\": 16, \"seed\": 9,"
                   " \"drop_path\": 0, \"cutout\": 0, \"auxiliary_weight\": 0}",
                   &s, &now, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    old_recipe(&s, 3, 16, 9, &old);
    assert_int_equal(now.n, 3);
    assert_int_equal(old.n, 3);
    for (int e = 0; e < 3; e++)
        if (memcmp(&now.v[e], &old.v[e], sizeof now.v[e]) != 0)
            fail_msg("epoch %d: %.17g now, %.17g by the old recipe", e + 1, now.v[e], old.v[e]);
    /* the defaults are the old recipe too: turning an extra on by default
     * must be a decision that changes this test */
    if (fit_losses("{\"cells\": 3, \"channels\": 4, \"epochs\": 3, \"batch_size\": 16, \"seed\": 9}",
                   &s, &now, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_memory_equal(now.v, old.v, 3 * sizeof now.v[0]);
    imgset_free(&s);
}

/* Each extra alone changes the training; the model trained with all of
 * them has the parameters, size and saved form of one without, and
 * predicts the same after a save and load. */
static void extras_change_training_not_the_model(void **state)
{
    (void)state;
    struct imgset s = make_images(96, 13);
    static const char *const base =
        "{\"cells\": 3, \"channels\": 4, \"epochs\": 3, \"batch_size\": 16, \"seed\": 9";
    /* every extra named: the test does not lean on the family's defaults */
    static const char *const extra[] = {
        ", \"drop_path\": 0, \"cutout\": 0, \"auxiliary_weight\": 0",
        ", \"drop_path\": 0.3, \"cutout\": 0, \"auxiliary_weight\": 0",
        ", \"drop_path\": 0, \"cutout\": 0.5, \"auxiliary_weight\": 0",
        ", \"drop_path\": 0, \"cutout\": 0, \"auxiliary_weight\": 0.4",
        ", \"drop_path\": 0.3, \"cutout\": 0.5, \"auxiliary_weight\": 0.4",
    };
    struct losses l[5];
    void *models[5] = {NULL};
    char err[256], json[256];
    for (int i = 0; i < 5; i++) {
        snprintf(json, sizeof json, "%s%s}", base, extra[i]);
        if (fit_losses(json, &s, &l[i], &models[i], err, sizeof err) != 0)
            fail_msg("%s: %s", json, err);
        assert_int_equal(l[i].n, 3);
        for (int e = 0; e < 3; e++) assert_true(isfinite(l[i].v[e]));
        if (i > 0 && memcmp(l[i].v, l[0].v, sizeof l[0].v) == 0)
            fail_msg("%s trains exactly as without it", extra[i]);
    }
    /* drop-path is 0 in the first epoch (DARTS' schedule): the same first epoch */
    assert_true(l[1].v[0] == l[0].v[0]);
    assert_true(l[1].v[1] != l[0].v[1]);

    struct cnn_model *plain = models[0], *all = models[4];
    assert_null(cnnnet_aux(plain->net));
    assert_non_null(cnnnet_aux(all->net));
    cJSON *d0 = F->details(plain), *d4 = F->details(all);
    assert_true(cJSON_GetObjectItemCaseSensitive(d0, "param_count")->valuedouble ==
                cJSON_GetObjectItemCaseSensitive(d4, "param_count")->valuedouble);
    assert_true(cJSON_GetObjectItemCaseSensitive(d0, "flops")->valuedouble ==
                cJSON_GetObjectItemCaseSensitive(d4, "flops")->valuedouble);
    cJSON_Delete(d0);
    cJSON_Delete(d4);
    struct pd_buf b0, b4;
    pd_buf_init(&b0);
    pd_buf_init(&b4);
    assert_int_equal(F->save(plain, &b0), 0);
    assert_int_equal(F->save(all, &b4), 0);
    assert_int_equal(b0.len, b4.len);
    assert_null(memmem(b4.data, b4.len, "aux.", 4));
    double *p1 = malloc(s.n * 3 * sizeof *p1), *p2 = malloc(s.n * 3 * sizeof *p2);
    assert_int_equal(F->predict(all, s.x, s.n, 64, 1, p1), 0);
    struct pd_reader rd;
    pd_reader_init(&rd, b4.data, b4.len);
    void *loaded = NULL;
    if (F->load(&rd, &loaded, err, sizeof err) != 0) fail_msg("%s", err);
    assert_null(cnnnet_aux(((struct cnn_model *)loaded)->net));
    assert_int_equal(F->predict(loaded, s.x, s.n, 64, 1, p2), 0);
    assert_memory_equal(p1, p2, s.n * 3 * sizeof *p1);
    F->model_free(loaded);
    pd_buf_free(&b0);
    pd_buf_free(&b4);
    free(p1);
    free(p2);
    for (int i = 0; i < 5; i++) F->model_free(models[i]);
    imgset_free(&s);
}

/* The auxiliary head at several map sizes after the second reduction: its
 * parameter count (DARTS' head on 16 C channels), logits in training mode
 * only; the network's weights, count, MACs and evaluation output are
 * those of the network without it. */
static void aux_head_sizes(void **state)
{
    (void)state;
    static const struct { int h, w, cells, head; } cases[] = {
        {8, 8, 5, 1},     /* 8 -> 4 -> 2: an identity pool */
        {28, 28, 3, 1},   /* 7: pool 4 stride 3 */
        {32, 32, 3, 1},   /* 8: DARTS' 5 at stride 3 */
        {8, 16, 3, 1},    /* 2 x 4: the global pool takes the rest */
        {4, 4, 5, 0},     /* 1 x 1: no head */
    };
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cnnnet_config cfg = {.mode = CNNNET_FIXED, .genotype = default_genotype(),
                                    .in_channels = 1, .height = cases[i].h, .width = cases[i].w,
                                    .n_classes = 5, .cells = cases[i].cells, .channels = 4,
                                    .seed = 17};
        struct cnnnet *plain = NULL, *aux = NULL;
        assert_int_equal(cnnnet_new(be, &cfg, &plain, err, sizeof err), 0);
        cfg.auxiliary = 1;
        if (cnnnet_new(be, &cfg, &aux, err, sizeof err) != 0)
            fail_msg("%dx%d: %s", cases[i].h, cases[i].w, err);
        assert_int_equal(cnnnet_aux(aux) != NULL, cases[i].head);
        assert_int_equal(cnnnet_param_count(plain), cnnnet_param_count(aux));
        if (cases[i].head) {
            size_t cin = 16 * 4, want = CNNNET_AUX_MID * cin + 2 * CNNNET_AUX_MID +
                                        (size_t)CNNNET_AUX_WIDTH * CNNNET_AUX_MID * 4 +
                                        2 * CNNNET_AUX_WIDTH + 5 * CNNNET_AUX_WIDTH + 5;
            size_t got = 0;
            for (int k = 0; k < nn_params_count(cnnnet_aux(aux)); k++) {
                struct nn_tensor *t = nn_params_get(cnnnet_aux(aux), k);
                if (t->flags & NN_T_PARAM) got += t->numel;
            }
            assert_int_equal(got, want);
        }
        void *b0 = NULL, *b1 = NULL;
        size_t l0 = 0, l1 = 0;
        assert_int_equal(nn_params_save(cnnnet_weights(plain), &b0, &l0, err, sizeof err), 0);
        assert_int_equal(nn_params_save(cnnnet_weights(aux), &b1, &l1, err, sizeof err), 0);
        assert_int_equal(l0, l1);
        assert_memory_equal(b0, b1, l0);
        free(b0);
        free(b1);
        double m0 = 0, m1 = 0;
        assert_int_equal(cnnnet_macs(plain, &m0, err, sizeof err), 0);
        assert_int_equal(cnnnet_macs(aux, &m1, err, sizeof err), 0);
        assert_true(m0 == m1);

        int shape[4] = {3, 1, cases[i].h, cases[i].w};
        size_t n = (size_t)3 * cases[i].h * cases[i].w;
        float *x = malloc(n * sizeof *x), *y0 = malloc(15 * sizeof *y0), *y1 = malloc(15 * sizeof *y1);
        for (size_t k = 0; k < n; k++) x[k] = (float)((k * 29 % 97) / 97.0);
        struct nn_graph *g = nn_graph_new(be, err, sizeof err);
        struct nn_tensor *logits_aux = (struct nn_tensor *)1;
        /* evaluation (before any training pass moves the BN statistics): no
         * head, and exactly the plain network's output */
        nn_graph_set_training(g, 0);
        nn_graph_set_recording(g, 0);
        struct nn_tensor *y = cnnnet_forward_train(aux, g, nn_graph_input(g, 4, shape, x), 0.5f, 3,
                                                   &logits_aux);
        assert_non_null(y);
        assert_null(logits_aux);
        nn_tensor_download(y, y1);
        nn_graph_reset(g);
        y = cnnnet_forward(plain, g, nn_graph_input(g, 4, shape, x));
        nn_tensor_download(y, y0);
        assert_memory_equal(y0, y1, 15 * sizeof *y0);
        nn_graph_reset(g);
        nn_graph_set_training(g, 1);
        nn_graph_set_recording(g, 1);
        y = cnnnet_forward_train(aux, g, nn_graph_input(g, 4, shape, x), 0.0f, 1, &logits_aux);
        if (y == NULL) fail_msg("%dx%d: %s", cases[i].h, cases[i].w, nn_graph_error(g));
        if (cases[i].head) {
            assert_non_null(logits_aux);
            assert_int_equal(logits_aux->ndim, 2);
            assert_int_equal(logits_aux->shape[0], 3);
            assert_int_equal(logits_aux->shape[1], 5);
            /* it trains: the loss reaches the head's parameters */
            struct nn_tensor *l = nn_softmax_ce(g, logits_aux, (const int[]){0, 1, 4}, NULL);
            assert_int_equal(nn_graph_backward(g, l, err, sizeof err), 0);
            struct nn_tensor *w1 = nn_params_get(cnnnet_aux(aux), 0);
            float *gr = malloc(w1->numel * sizeof *gr);
            nn_tensor_download_grad(w1, gr);
            double sq = 0;
            for (size_t k = 0; k < w1->numel; k++) sq += (double)gr[k] * gr[k];
            assert_true(sq > 0);
            free(gr);
        } else {
            assert_null(logits_aux);
        }
        nn_graph_free(g);
        free(x);
        free(y0);
        free(y1);
        cnnnet_free(plain);
        cnnnet_free(aux);
    }
    /* a supernet takes no head */
    struct cnnnet_config sc = {.mode = CNNNET_SEARCH, .in_channels = 1, .height = 8, .width = 8,
                               .n_classes = 3, .cells = 3, .channels = 4, .auxiliary = 1};
    struct cnnnet *net = NULL;
    assert_int_equal(cnnnet_new(be, &sc, &net, err, sizeof err), -1);
    assert_non_null(strstr(err, "auxiliary"));
    nn_backend_free(be);
}

/* Drop-path in the network: p 0 is the plain forward bit for bit, p > 0
 * changes a training pass and leaves identity edges alone; refused on a
 * supernet and outside [0, 1). */
static void drop_path_in_the_network(void **state)
{
    (void)state;
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    struct cnnnet_config cfg = {.mode = CNNNET_FIXED, .genotype = default_genotype(),
                                .in_channels = 1, .height = 8, .width = 8, .n_classes = 3,
                                .cells = 3, .channels = 4, .seed = 2};
    struct cnnnet *net = NULL;
    assert_int_equal(cnnnet_new(be, &cfg, &net, err, sizeof err), 0);
    enum { B = 8 };
    int shape[4] = {B, 1, 8, 8};
    float x[B * 64], a[B * 3], b[B * 3], c[B * 3];
    for (int k = 0; k < B * 64; k++) x[k] = (float)((k * 13 % 31) / 31.0);
    struct nn_graph *g = nn_graph_new(be, err, sizeof err);
    nn_tensor_download(cnnnet_forward(net, g, nn_graph_input(g, 4, shape, x)), a);
    nn_graph_reset(g);
    nn_tensor_download(cnnnet_forward_train(net, g, nn_graph_input(g, 4, shape, x), 0.0f, 7, NULL), b);
    assert_memory_equal(a, b, sizeof a);
    int nodes_plain = nn_graph_nodes(g);
    nn_graph_reset(g);
    struct nn_tensor *y = cnnnet_forward_train(net, g, nn_graph_input(g, 4, shape, x), 0.5f, 7, NULL);
    assert_non_null(y);
    nn_tensor_download(y, c);
    assert_memory_not_equal(a, c, sizeof a);
    /* one mask per edge that is not the identity: DARTS_V2's normal cell
     * has 2 identities of 8 edges (skips from state 0), its reduction cell
     * 3 (skips from node 0, at stride 1; its skips would be factorized
     * reduces from the inputs); 3 cells are normal, reduction, reduction */
    assert_int_equal(nn_graph_nodes(g) - nodes_plain, 6 + 5 + 5);
    nn_graph_reset(g);
    assert_null(cnnnet_forward_train(net, g, nn_graph_input(g, 4, shape, x), 1.0f, 7, NULL));
    assert_non_null(strstr(nn_graph_error(g), "drop_path"));
    nn_graph_free(g);
    cnnnet_free(net);

    struct cnnnet_config sc = {.mode = CNNNET_SEARCH, .in_channels = 1, .height = 8, .width = 8,
                               .n_classes = 3, .cells = 2, .channels = 4};
    assert_int_equal(cnnnet_new(be, &sc, &net, err, sizeof err), 0);
    g = nn_graph_new(be, err, sizeof err);
    assert_null(cnnnet_forward_train(net, g, nn_graph_input(g, 4, shape, x), 0.2f, 7, NULL));
    assert_non_null(strstr(nn_graph_error(g), "fixed"));
    nn_graph_free(g);
    cnnnet_free(net);
    nn_backend_free(be);
}

static void cutout_length(void **state)
{
    (void)state;
    assert_int_equal(cnn_cutout_length(0.5, 32, 32), 16);   /* DARTS' 16 at 32x32 */
    assert_int_equal(cnn_cutout_length(0.5, 8, 8), 4);
    assert_int_equal(cnn_cutout_length(0.5, 28, 28), 14);
    assert_int_equal(cnn_cutout_length(0.5, 28, 12), 6);
    assert_int_equal(cnn_cutout_length(0.01, 8, 8), 1);
    assert_int_equal(cnn_cutout_length(0, 8, 8), 0);
    assert_int_equal(cnn_cutout_length(1, 8, 8), 8);
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
        cmocka_unit_test(extras_off_is_the_old_recipe),
        cmocka_unit_test(extras_change_training_not_the_model),
        cmocka_unit_test(aux_head_sizes),
        cmocka_unit_test(drop_path_in_the_network),
        cmocka_unit_test(cutout_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

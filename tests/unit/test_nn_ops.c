/* test_nn_ops.c - every op of the CNN engine (nn/ops.h) against central
 * finite differences, on the CPU backend.
 *
 * For an op y = f(leaves) the scalar checked is L = sum(y * R), R a fixed
 * random tensor, summed in double on the host; the analytic gradient comes
 * from nn_graph_backward_from(y, R). Each leaf element e (all of them, or
 * an evenly spread sample of 60 for big leaves) gets
 *   fd = (L(e + h) - L(e - h)) / (2h)  with h = 1e-2 (1e-3 near kinks),
 * and must satisfy |fd - g| <= 2e-3 + 1e-2 |g|. Inputs of ReLU and the
 * max pool are kept away from their kinks and ties so that the step never
 * crosses one. The checker itself is checked: a corrupted gradient must
 * be caught. Also: sticky shape errors, the arena settling, parameter
 * save/load, MAC counts and PyTorch's default initialisation bounds.
 * Drop-path (a per-sample mask made of existing backend entries) is
 * checked against dropout's mask for the same seed as well. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn/graph.h"
#include "nn/ops.h"
#include "nn/tensor.h"

#define MAX_LEAVES 8
#define ATOL 2e-3
#define RTOL 1e-2
#define SAMPLE 60

struct gc;
typedef struct nn_tensor *(*fwd_fn)(struct gc *c);

struct gc {
    struct nn_backend *be;
    struct nn_graph *g;
    struct nn_tensor *leaf[MAX_LEAVES];
    int nleaf;
    struct nn_tensor *buf[4];  /* non-differentiated tensors (BN running stats) */
    int nbuf;
    int iarg[8];
    float farg[4];
    int labels[16];
    fwd_fn fwd;
    float h;
};

static struct nn_rng rng;

static void gc_init(struct gc *c, fwd_fn fwd, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    char err[256];
    c->be = nn_backend_cpu_new(1, err, sizeof err);
    assert_non_null(c->be);
    c->g = nn_graph_new(c->be, err, sizeof err);
    assert_non_null(c->g);
    c->fwd = fwd;
    c->h = 1e-2f;
    nn_rng_seed(&rng, seed);
}

static void gc_free(struct gc *c)
{
    for (int i = 0; i < c->nleaf; i++) nn_tensor_free(c->leaf[i]);
    for (int i = 0; i < c->nbuf; i++) nn_tensor_free(c->buf[i]);
    nn_graph_free(c->g);
    nn_backend_free(c->be);
}

/* A leaf filled with U(lo, hi); away_from_zero: |v| >= 0.1 (ReLU kinks). */
static struct nn_tensor *leaf(struct gc *c, int ndim, const int *shape, float lo, float hi,
                              int away_from_zero)
{
    char err[256];
    struct nn_tensor *t = nn_tensor_new(c->be, ndim, shape, 1, err, sizeof err);
    assert_non_null(t);
    float *v = malloc(t->numel * sizeof *v);
    for (size_t i = 0; i < t->numel; i++) {
        v[i] = lo + (hi - lo) * (float)nn_rng_uniform(&rng);
        if (away_from_zero && fabsf(v[i]) < 0.1f) v[i] = v[i] < 0 ? v[i] - 0.1f : v[i] + 0.1f;
    }
    nn_tensor_upload(t, v);
    free(v);
    c->leaf[c->nleaf++] = t;
    return t;
}

/* Distinct values spaced >= 0.05 apart, shuffled (max pool: no ties). */
static struct nn_tensor *leaf_distinct(struct gc *c, int ndim, const int *shape)
{
    struct nn_tensor *t = leaf(c, ndim, shape, 0, 1, 0);
    float *v = malloc(t->numel * sizeof *v);
    for (size_t i = 0; i < t->numel; i++) v[i] = 0.05f * (float)i - 0.025f * (float)t->numel;
    for (size_t i = t->numel - 1; i > 0; i--) {
        size_t j = nn_rng_next(&rng) % (i + 1);
        float tmp = v[i];
        v[i] = v[j];
        v[j] = tmp;
    }
    nn_tensor_upload(t, v);
    free(v);
    return t;
}

static double loss_of(struct gc *c, const float *r, size_t *n_out)
{
    nn_graph_reset(c->g);
    struct nn_tensor *y = c->fwd(c);
    if (!y) fail_msg("forward failed: %s", nn_graph_error(c->g));
    float *v = malloc(y->numel * sizeof *v);
    nn_tensor_download(y, v);
    double s = 0;
    for (size_t i = 0; i < y->numel; i++) s += (double)v[i] * (r ? r[i] : 0.0);
    if (n_out) *n_out = y->numel;
    free(v);
    return s;
}

/* Runs the check; returns the number of mismatching elements. corrupt: add
 * 0.5 to one analytic gradient element first (the checker must notice). */
static int gc_run(struct gc *c, int corrupt)
{
    size_t ny;
    loss_of(c, NULL, &ny);
    float *r = malloc(ny * sizeof *r);
    for (size_t i = 0; i < ny; i++) r[i] = (float)(2 * nn_rng_uniform(&rng) - 1);
    for (int l = 0; l < c->nleaf; l++)
        c->be->fill(c->be, c->leaf[l]->grad, 0.0f, c->leaf[l]->numel);
    nn_graph_reset(c->g);
    struct nn_tensor *y = c->fwd(c);
    assert_non_null(y);
    char err[256];
    if (nn_graph_backward_from(c->g, y, r, err, sizeof err) != 0) fail_msg("backward: %s", err);
    int bad = 0;
    size_t checked = 0;
    for (int l = 0; l < c->nleaf; l++) {
        struct nn_tensor *t = c->leaf[l];
        float *val = malloc(t->numel * sizeof *val), *g = malloc(t->numel * sizeof *g);
        nn_tensor_download(t, val);
        nn_tensor_download_grad(t, g);
        if (corrupt && l == 0) g[t->numel / 2] += 0.5f;
        size_t step = t->numel > SAMPLE ? t->numel / SAMPLE : 1;
        for (size_t e = 0; e < t->numel; e += step) {
            float keep = val[e];
            val[e] = keep + c->h;
            nn_tensor_upload(t, val);
            double hp = (double)val[e] - keep;
            double lp = loss_of(c, r, NULL);
            val[e] = keep - c->h;
            nn_tensor_upload(t, val);
            double hm = keep - (double)val[e];
            double lm = loss_of(c, r, NULL);
            val[e] = keep;
            nn_tensor_upload(t, val);
            double fd = (lp - lm) / (hp + hm);
            checked++;
            if (fabs(fd - g[e]) > ATOL + RTOL * fabs(g[e])) {
                if (bad < 5 && !corrupt)
                    print_message("  leaf %d elem %zu: analytic %.6g, numeric %.6g\n", l, e,
                                  (double)g[e], fd);
                bad++;
            }
        }
        free(val);
        free(g);
    }
    free(r);
    assert_true(checked > 0);
    return bad;
}

static void gc_expect_ok(struct gc *c)
{
    int bad = gc_run(c, 0);
    assert_int_equal(bad, 0);
    gc_free(c);
}

/* --- convolution ------------------------------------------------------------------ */

static struct nn_tensor *f_conv(struct gc *c)
{
    return nn_conv2d(c->g, c->leaf[0], c->leaf[1], c->nleaf > 2 ? c->leaf[2] : NULL, c->iarg[0],
                     c->iarg[1], c->iarg[2], c->iarg[3]);
}

static void conv_case(int n, int cin, int h, int w, int cout, int k, int stride, int pad, int dil,
                      int groups, int bias)
{
    struct gc c;
    gc_init(&c, f_conv, 100 + (uint64_t)(cin * 7 + cout * 3 + k + stride + dil + groups));
    int xs[4] = {n, cin, h, w}, ws[4] = {cout, cin / groups, k, k}, bs[1] = {cout};
    leaf(&c, 4, xs, -1, 1, 0);
    leaf(&c, 4, ws, -0.5f, 0.5f, 0);
    if (bias) leaf(&c, 1, bs, -0.5f, 0.5f, 0);
    c.iarg[0] = stride;
    c.iarg[1] = pad;
    c.iarg[2] = dil;
    c.iarg[3] = groups;
    gc_expect_ok(&c);
}

static void test_conv_basic(void **s) { (void)s; conv_case(2, 3, 7, 7, 4, 3, 1, 1, 1, 1, 1); }
static void test_conv_stride_pad(void **s) { (void)s; conv_case(2, 3, 8, 8, 5, 3, 2, 1, 1, 1, 0); }
static void test_conv_dilation(void **s) { (void)s; conv_case(1, 2, 9, 9, 3, 3, 1, 2, 2, 1, 1); }
static void test_conv_groups(void **s) { (void)s; conv_case(2, 4, 6, 6, 6, 3, 1, 1, 1, 2, 1); }
static void test_conv_depthwise(void **s) { (void)s; conv_case(2, 3, 7, 7, 3, 3, 2, 1, 1, 3, 1); }
static void test_conv_depthwise_dil5(void **s) { (void)s; conv_case(2, 4, 9, 9, 4, 5, 1, 4, 2, 4, 0); }
static void test_conv_1x1_stride2(void **s) { (void)s; conv_case(3, 4, 6, 6, 2, 1, 2, 0, 1, 1, 0); }
static void test_conv_odd_stride_pad(void **s) { (void)s; conv_case(2, 2, 7, 5, 3, 2, 3, 1, 1, 1, 1); }

/* The checker catches a wrong gradient (so the checks above can fail). */
static void test_checker_catches_errors(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_conv, 5);
    int xs[4] = {1, 2, 5, 5}, ws[4] = {2, 2, 3, 3};
    leaf(&c, 4, xs, -1, 1, 0);
    leaf(&c, 4, ws, -0.5f, 0.5f, 0);
    c.iarg[0] = c.iarg[2] = c.iarg[3] = 1;
    c.iarg[1] = 1;
    assert_true(gc_run(&c, 1) >= 1);
    gc_free(&c);
}

/* --- pools -------------------------------------------------------------------------- */

static struct nn_tensor *f_pool(struct gc *c)
{
    return c->iarg[3] ? nn_max_pool2d(c->g, c->leaf[0], c->iarg[0], c->iarg[1], c->iarg[2])
                      : nn_avg_pool2d(c->g, c->leaf[0], c->iarg[0], c->iarg[1], c->iarg[2]);
}

static void pool_case(int is_max, int k, int stride, int pad)
{
    struct gc c;
    gc_init(&c, f_pool, 200 + (uint64_t)(k * 3 + stride + pad));
    int xs[4] = {2, 3, 7, 7};
    if (is_max) leaf_distinct(&c, 4, xs);
    else leaf(&c, 4, xs, -1, 1, 0);
    c.iarg[0] = k;
    c.iarg[1] = stride;
    c.iarg[2] = pad;
    c.iarg[3] = is_max;
    c.h = is_max ? 1e-3f : 1e-2f;
    gc_expect_ok(&c);
}

static void test_max_pool(void **s) { (void)s; pool_case(1, 3, 2, 1); pool_case(1, 2, 2, 0); }
static void test_avg_pool(void **s) { (void)s; pool_case(0, 3, 1, 1); pool_case(0, 3, 2, 1); pool_case(0, 2, 2, 0); }

/* --- batch norm --------------------------------------------------------------------- */

static struct nn_tensor *f_bn(struct gc *c)
{
    nn_graph_set_training(c->g, c->iarg[0]);
    int affine = c->nleaf > 1;
    return nn_batch_norm(c->g, c->leaf[0], affine ? c->leaf[1] : NULL, affine ? c->leaf[2] : NULL,
                         c->buf[0], c->buf[1], 0.1f, 1e-5f);
}

static void bn_case(int training, int affine, int ndim)
{
    struct gc c;
    gc_init(&c, f_bn, 300 + (uint64_t)(training * 2 + affine + ndim));
    int xs[4] = {3, 4, 3, 3}, cs[1] = {4};
    leaf(&c, ndim, xs, -1, 2, 0);
    if (affine) {
        leaf(&c, 1, cs, 0.5f, 1.5f, 0);
        leaf(&c, 1, cs, -0.5f, 0.5f, 0);
    }
    char err[256];
    c.buf[0] = nn_tensor_new(c.be, 1, cs, 0, err, sizeof err);
    c.buf[1] = nn_tensor_new(c.be, 1, cs, 0, err, sizeof err);
    c.nbuf = 2;
    float rm[4] = {0.1f, -0.2f, 0.3f, 0.0f}, rv[4] = {1.0f, 0.5f, 2.0f, 1.5f};
    nn_tensor_upload(c.buf[0], rm);
    nn_tensor_upload(c.buf[1], rv);
    c.iarg[0] = training;
    gc_expect_ok(&c);
}

static void test_bn_train_affine(void **s) { (void)s; bn_case(1, 1, 4); }
static void test_bn_train_plain(void **s) { (void)s; bn_case(1, 0, 4); }
static void test_bn_train_2d(void **s) { (void)s; bn_case(1, 1, 2); }
static void test_bn_eval(void **s) { (void)s; bn_case(0, 1, 4); }

/* Running statistics after one training step, by hand. */
static void test_bn_running_stats(void **s)
{
    (void)s;
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    struct nn_graph *g = nn_graph_new(be, err, sizeof err);
    int xs[4] = {2, 1, 1, 2}, cs[1] = {1};
    float x[4] = {1, 2, 3, 6}, one = 1.0f, y[4];
    struct nn_tensor *rm = nn_tensor_new(be, 1, cs, 0, err, sizeof err);
    struct nn_tensor *rv = nn_tensor_new(be, 1, cs, 0, err, sizeof err);
    nn_tensor_upload(rv, &one);
    struct nn_tensor *xt = nn_graph_input(g, 4, xs, x);
    struct nn_tensor *yt = nn_batch_norm(g, xt, NULL, NULL, rm, rv, 0.1f, 1e-5f);
    assert_non_null(yt);
    nn_tensor_download(yt, y);
    float m, v;
    nn_tensor_download(rm, &m);
    nn_tensor_download(rv, &v);
    /* mean 3, biased var 3.5, unbiased 14/3 */
    assert_float_equal(m, 0.3f, 1e-6);
    assert_float_equal(v, 0.9f + 0.1f * 14.0f / 3.0f, 1e-6);
    assert_float_equal(y[3], (float)(3.0 / sqrt(3.5 + 1e-5)), 1e-5);
    nn_tensor_free(rm);
    nn_tensor_free(rv);
    nn_graph_free(g);
    nn_backend_free(be);
}

/* --- relu, gap, linear, dropout, loss ----------------------------------------------- */

static struct nn_tensor *f_relu(struct gc *c) { return nn_relu(c->g, c->leaf[0]); }
static struct nn_tensor *f_gap(struct gc *c) { return nn_global_avg_pool(c->g, c->leaf[0]); }
static struct nn_tensor *f_linear(struct gc *c)
{
    return nn_linear(c->g, c->leaf[0], c->leaf[1], c->nleaf > 2 ? c->leaf[2] : NULL);
}
static struct nn_tensor *f_dropout(struct gc *c) { return nn_dropout(c->g, c->leaf[0], 0.3f, 77); }
static struct nn_tensor *f_drop_path(struct gc *c)
{
    return nn_drop_path(c->g, c->leaf[0], c->farg[0], (uint64_t)c->iarg[0]);
}
static struct nn_tensor *f_ce(struct gc *c) { return nn_softmax_ce(c->g, c->leaf[0], c->labels, NULL); }

static void test_relu(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_relu, 400);
    int xs[4] = {2, 3, 4, 4};
    leaf(&c, 4, xs, -1, 1, 1);
    gc_expect_ok(&c);
}

static void test_gap(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_gap, 401);
    int xs[4] = {2, 3, 4, 5};
    leaf(&c, 4, xs, -1, 1, 0);
    gc_expect_ok(&c);
}

static void test_linear(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_linear, 402);
    int xs[4] = {3, 2, 2, 2}, ws[2] = {5, 8}, bs[1] = {5};
    leaf(&c, 4, xs, -1, 1, 0); /* flattened to [3, 8] */
    leaf(&c, 2, ws, -0.5f, 0.5f, 0);
    leaf(&c, 1, bs, -0.5f, 0.5f, 0);
    gc_expect_ok(&c);
}

static void test_dropout(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_dropout, 403);
    int xs[2] = {10, 20};
    leaf(&c, 2, xs, -1, 1, 0);
    /* the mask is fixed by the seed: about 30% zeros, the rest 1/0.7 */
    nn_graph_reset(c.g);
    struct nn_tensor *y = f_dropout(&c);
    float xv[200], yv[200];
    nn_tensor_download(c.leaf[0], xv);
    nn_tensor_download(y, yv);
    int zeros = 0;
    for (int i = 0; i < 200; i++) {
        if (yv[i] == 0.0f) zeros++;
        else assert_float_equal(yv[i], xv[i] / 0.7f, 1e-5);
    }
    assert_in_range(zeros, 40, 80);
    /* outside training: identity */
    nn_graph_set_training(c.g, 0);
    assert_ptr_equal(f_dropout(&c), c.leaf[0]);
    nn_graph_set_training(c.g, 1);
    gc_expect_ok(&c);
}

/* Drop-path: whole samples zeroed, the rest scaled by 1/keep; sample i's
 * fate is dropout's mask element i for the same seed; identity outside
 * training and at p 0; the gradient through the fixed mask checks out. */
static void drop_path_case(int ndim, const int *xs, float p, int seed)
{
    struct gc c;
    gc_init(&c, f_drop_path, 410 + (uint64_t)seed);
    struct nn_tensor *x = leaf(&c, ndim, xs, -1, 1, 0);
    c.farg[0] = p;
    c.iarg[0] = seed;
    int n = xs[0];
    size_t per = x->numel / (size_t)n;
    nn_graph_reset(c.g);
    struct nn_tensor *y = f_drop_path(&c);
    assert_non_null(y);
    float *xv = malloc(x->numel * sizeof *xv), *yv = malloc(x->numel * sizeof *yv);
    nn_tensor_download(x, xv);
    nn_tensor_download(y, yv);
    /* dropout's mask over n values, same seed: the per-sample decision */
    int ns[2] = {n, 1};
    char err[256];
    struct nn_tensor *ones = nn_tensor_new(c.be, 2, ns, 0, err, sizeof err);
    assert_non_null(ones);
    c.be->fill(c.be, ones->data, 1.0f, (size_t)n);
    struct nn_tensor *dm = nn_dropout(c.g, ones, p, (uint64_t)seed);
    assert_non_null(dm);
    float *mv = malloc((size_t)n * sizeof *mv);
    nn_tensor_download(dm, mv);
    int dropped = 0;
    for (int i = 0; i < n; i++) {
        int gone = mv[i] == 0.0f;
        dropped += gone;
        for (size_t j = 0; j < per; j++) {
            size_t e = (size_t)i * per + j;
            if (gone) assert_true(yv[e] == 0.0f);
            else assert_true(yv[e] == xv[e] * (1.0f / (1.0f - p)));
        }
    }
    if (n >= 40) assert_in_range(dropped, (int)(0.5 * p * n), (int)(1.6 * p * n) + 1);
    /* no gradient to anything but x, and no mask outside training or at p 0 */
    nn_graph_set_training(c.g, 0);
    assert_ptr_equal(f_drop_path(&c), x);
    nn_graph_set_training(c.g, 1);
    assert_ptr_equal(nn_drop_path(c.g, x, 0.0f, 1), x);
    free(xv);
    free(yv);
    free(mv);
    nn_tensor_free(ones);
    gc_expect_ok(&c);
}

static void test_drop_path(void **s)
{
    (void)s;
    int a[4] = {6, 3, 3, 3};      /* 27 values a sample: the spreading's odd tail */
    drop_path_case(4, a, 0.5f, 3);
    int b[2] = {64, 5};           /* many samples: about p of them dropped */
    drop_path_case(2, b, 0.3f, 8);
    int c1[4] = {4, 2, 4, 4};     /* a power of two a sample */
    drop_path_case(4, c1, 0.2f, 11);
    int d[4] = {5, 1, 1, 1};      /* one value a sample */
    drop_path_case(4, d, 0.5f, 12);
}

static void test_drop_path_refuses(void **s)
{
    (void)s;
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    struct nn_graph *g = nn_graph_new(be, err, sizeof err);
    int xs[2] = {2, 3};
    struct nn_tensor *x = nn_graph_tensor(g, 2, xs);
    assert_null(nn_drop_path(g, x, 1.0f, 1));
    assert_non_null(strstr(nn_graph_error(g), "drop_path"));
    nn_graph_reset(g);
    assert_null(nn_drop_path(g, NULL, 0.1f, 1));
    nn_graph_free(g);
    nn_backend_free(be);
}

static void test_softmax_ce(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_ce, 404);
    int zs[2] = {5, 4};
    leaf(&c, 2, zs, -2, 2, 0);
    for (int i = 0; i < 5; i++) c.labels[i] = (i * 3) % 4;
    gc_expect_ok(&c);
    /* the probabilities come out too, rows summing to one */
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    struct nn_graph *g = nn_graph_new(be, err, sizeof err);
    float z[6] = {1, 2, 3, 0, 0, 0};
    int lab[2] = {2, 1}, sh[2] = {2, 3};
    struct nn_tensor *p;
    struct nn_tensor *loss = nn_softmax_ce(g, nn_graph_input(g, 2, sh, z), lab, &p);
    assert_non_null(loss);
    float pv[6], lv;
    nn_tensor_download(p, pv);
    nn_tensor_download(loss, &lv);
    double e = exp(1) + exp(2) + exp(3);
    assert_float_equal(pv[2], (float)(exp(3) / e), 1e-6);
    assert_float_equal(pv[4], 1.0f / 3, 1e-6);
    assert_float_equal(lv, (float)((-(3 - log(e)) + log(3.0)) / 2), 1e-5);
    /* a label out of range is an error */
    lab[1] = 3;
    nn_graph_reset(g);
    assert_null(nn_softmax_ce(g, nn_graph_input(g, 2, sh, z), lab, NULL));
    assert_non_null(strstr(nn_graph_error(g), "label 3"));
    nn_graph_free(g);
    nn_backend_free(be);
}

/* --- DARTS pieces ------------------------------------------------------------------- */

/* The mixed op: softmax over alpha [2,3], row 1 weighs three inputs. */
static struct nn_tensor *f_mixed(struct gc *c)
{
    struct nn_tensor *w = nn_softmax(c->g, c->leaf[3]);
    return nn_wsum(c->g, 3, c->leaf, w, 3);
}

static void test_mixed_op(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_mixed, 500);
    int xs[4] = {2, 2, 3, 3}, as[2] = {2, 3};
    for (int i = 0; i < 3; i++) leaf(&c, 4, xs, -1, 1, 0);
    leaf(&c, 2, as, -1, 1, 0);
    gc_expect_ok(&c);
}

static struct nn_tensor *f_wsum_raw(struct gc *c) { return nn_wsum(c->g, 2, c->leaf, c->leaf[2], 1); }

static void test_wsum_raw_weights(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_wsum_raw, 501);
    int xs[2] = {4, 5}, ws[1] = {4};
    leaf(&c, 2, xs, -1, 1, 0);
    leaf(&c, 2, xs, -1, 1, 0);
    leaf(&c, 1, ws, -1, 1, 0);
    gc_expect_ok(&c);
}

static struct nn_tensor *f_softmax(struct gc *c) { return nn_softmax(c->g, c->leaf[0]); }

static void test_softmax(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_softmax, 502);
    int as[2] = {3, 5};
    leaf(&c, 2, as, -2, 2, 0);
    gc_expect_ok(&c);
}

static struct nn_tensor *f_add_scale(struct gc *c)
{
    return nn_scale(c->g, nn_add(c->g, c->leaf[0], nn_identity(c->g, c->leaf[1])), -1.7f);
}

static void test_add_scale_identity(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_add_scale, 503);
    int xs[4] = {2, 3, 2, 2};
    leaf(&c, 4, xs, -1, 1, 0);
    leaf(&c, 4, xs, -1, 1, 0);
    gc_expect_ok(&c);
}

/* concat of three (one used twice), then a slice across the seams */
static struct nn_tensor *f_concat_slice(struct gc *c)
{
    struct nn_tensor *xs[4] = {c->leaf[0], c->leaf[1], c->leaf[2], c->leaf[0]};
    struct nn_tensor *y = nn_concat(c->g, 4, xs);
    return nn_slice(c->g, y, 1, 7);
}

static void test_concat_slice(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_concat_slice, 504);
    int a[4] = {2, 2, 3, 3}, b[4] = {2, 3, 3, 3}, d[4] = {2, 1, 3, 3};
    leaf(&c, 4, a, -1, 1, 0);
    leaf(&c, 4, b, -1, 1, 0);
    leaf(&c, 4, d, -1, 1, 0);
    gc_expect_ok(&c);
}

/* DARTS' "none" op inside a mixed op: zeros carry no gradient, and the
 * weight of "none" gets <0, dy> = 0. */
static struct nn_tensor *f_with_zero(struct gc *c)
{
    struct nn_tensor *z = nn_zeros(c->g, c->leaf[0]->ndim, c->leaf[0]->shape);
    struct nn_tensor *xs[2] = {z, c->leaf[0]};
    return nn_wsum(c->g, 2, xs, c->leaf[1], 0);
}

static void test_zero_op(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_with_zero, 505);
    int xs[4] = {2, 2, 3, 3}, ws[1] = {2};
    leaf(&c, 4, xs, -1, 1, 0);
    leaf(&c, 1, ws, -1, 1, 0);
    gc_expect_ok(&c);
}

/* conv-bn-relu-pool-linear-CE, every parameter and the input checked */
static struct nn_tensor *f_small_net(struct gc *c)
{
    struct nn_graph *g = c->g;
    nn_graph_set_training(g, 1);
    struct nn_tensor *h = nn_conv2d(g, c->leaf[0], c->leaf[1], c->leaf[2], 1, 1, 1, 1);
    h = nn_batch_norm(g, h, c->leaf[3], c->leaf[4], c->buf[0], c->buf[1], 0.1f, 1e-5f);
    h = nn_relu(g, h);
    h = nn_max_pool2d(g, h, 2, 2, 0);
    h = nn_linear(g, h, c->leaf[5], c->leaf[6]);
    return nn_softmax_ce(g, h, c->labels, NULL);
}

static void test_composed_net(void **s)
{
    (void)s;
    struct gc c;
    gc_init(&c, f_small_net, 506);
    int xs[4] = {4, 2, 6, 6}, ws[4] = {3, 2, 3, 3}, cs[1] = {3}, ls[2] = {5, 27}, lb[1] = {5};
    leaf(&c, 4, xs, -1, 1, 0);
    leaf(&c, 4, ws, -0.5f, 0.5f, 0);
    leaf(&c, 1, cs, -0.1f, 0.1f, 0);
    leaf(&c, 1, cs, 0.8f, 1.2f, 0);
    leaf(&c, 1, cs, -0.1f, 0.1f, 0);
    leaf(&c, 2, ls, -0.3f, 0.3f, 0);
    leaf(&c, 1, lb, -0.1f, 0.1f, 0);
    char err[256];
    c.buf[0] = nn_tensor_new(c.be, 1, cs, 0, err, sizeof err);
    c.buf[1] = nn_tensor_new(c.be, 1, cs, 0, err, sizeof err);
    c.nbuf = 2;
    for (int i = 0; i < 4; i++) c.labels[i] = i;
    /* ReLU and max pool kinks: a smaller step; a composed net may still
     * straddle one, so tolerate a couple of misses out of ~200 */
    c.h = 1e-3f;
    int bad = gc_run(&c, 0);
    assert_in_range(bad, 0, 2);
    gc_free(&c);
}

/* --- graph behaviour ---------------------------------------------------------------- */

static void test_sticky_errors(void **s)
{
    (void)s;
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    struct nn_graph *g = nn_graph_new(be, err, sizeof err);
    int xs[4] = {1, 3, 5, 5}, ws[4] = {2, 2, 3, 3};
    struct nn_tensor *x = nn_graph_tensor(g, 4, xs), *w = nn_graph_tensor(g, 4, ws);
    assert_null(nn_conv2d(g, x, w, NULL, 1, 0, 1, 1)); /* 3 channels vs weight's 2 */
    assert_non_null(strstr(nn_graph_error(g), "conv2d"));
    assert_null(nn_relu(g, x)); /* sticky */
    assert_int_not_equal(nn_graph_backward(g, x, err, sizeof err), 0);
    nn_graph_reset(g);
    assert_null(nn_graph_error(g));
    x = nn_graph_tensor(g, 4, xs);
    assert_null(nn_slice(g, x, 2, 4));
    nn_graph_reset(g);
    assert_null(nn_max_pool2d(g, nn_graph_tensor(g, 4, xs), 3, 1, 2));
    nn_graph_reset(g);
    assert_null(nn_relu(g, NULL));
    nn_graph_reset(g);
    int big[4] = {1 << 16, 1 << 16, 1 << 16, 1};
    assert_null(nn_graph_tensor(g, 4, big));
    nn_graph_free(g);
    nn_backend_free(be);
}

/* A training loop settles: after the first step, the arena is one block and
 * the same bytes are used every step; inference records nothing. */
static void test_arena_and_modes(void **s)
{
    (void)s;
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    struct nn_graph *g = nn_graph_new(be, err, sizeof err);
    struct nn_params *ps = nn_params_new(be);
    int ws[4] = {8, 3, 3, 3}, ls[2] = {4, 8};
    struct nn_tensor *w = nn_params_add(ps, "conv.w", 4, ws, NN_T_PARAM, err, sizeof err);
    struct nn_tensor *lw = nn_params_add(ps, "fc.w", 2, ls, NN_T_PARAM, err, sizeof err);
    struct nn_rng r;
    nn_rng_seed(&r, 1);
    nn_init_kaiming_uniform(w, 27, &r);
    nn_init_kaiming_uniform(lw, 8, &r);
    int xs[4] = {16, 3, 40, 40}, labels[16] = {0};
    float *x = calloc(16 * 3 * 40 * 40, sizeof *x);
    size_t used[3];
    for (int step = 0; step < 3; step++) {
        nn_graph_reset(g);
        struct nn_tensor *h = nn_conv2d(g, nn_graph_input(g, 4, xs, x), w, NULL, 1, 1, 1, 1);
        h = nn_global_avg_pool(g, nn_relu(g, h));
        struct nn_tensor *loss = nn_softmax_ce(g, nn_linear(g, h, lw, NULL), labels, NULL);
        assert_int_equal(nn_graph_backward(g, loss, err, sizeof err), 0);
        assert_int_equal(nn_graph_nodes(g), 5);
        used[step] = nn_graph_arena_bytes(g);
        assert_float_equal(nn_graph_macs(g), 16.0 * 8 * 40 * 40 * 27 + 16 * 8 * 4, 0.5);
    }
    assert_true(used[0] > 4 * 16 * 8 * 40 * 40); /* grew past the first 4 MB block */
    assert_int_equal(used[1], used[2]);
    nn_graph_reset(g);
    nn_graph_set_recording(g, 0);
    nn_graph_set_training(g, 0);
    struct nn_tensor *h = nn_conv2d(g, nn_graph_input(g, 4, xs, x), w, NULL, 1, 1, 1, 1);
    assert_non_null(h);
    assert_int_equal(nn_graph_nodes(g), 0);
    assert_int_not_equal(nn_graph_backward(g, h, err, sizeof err), 0);
    free(x);
    nn_params_free(ps);
    nn_graph_free(g);
    nn_backend_free(be);
}

static void test_params_save_load_init(void **s)
{
    (void)s;
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    struct nn_params *a = nn_params_new(be), *b = nn_params_new(be);
    int ws[4] = {16, 4, 3, 3}, cs[1] = {16};
    struct nn_tensor *w = nn_params_add(a, "c.w", 4, ws, NN_T_PARAM, err, sizeof err);
    struct nn_tensor *bias = nn_params_add(a, "c.b", 1, cs, NN_T_PARAM, err, sizeof err);
    struct nn_tensor *rm = nn_params_add(a, "bn.rm", 1, cs, NN_T_BUFFER, err, sizeof err);
    assert_non_null(w);
    assert_null(nn_params_add(a, "c.w", 1, cs, NN_T_PARAM, err, sizeof err));
    assert_non_null(strstr(err, "duplicate"));
    assert_null(rm->grad);
    assert_int_equal(nn_params_numel(a), 16 * 36 + 16);
    struct nn_rng r;
    nn_rng_seed(&r, 3);
    nn_init_kaiming_uniform(w, 36, &r);
    nn_init_kaiming_uniform(bias, 36, &r);
    nn_init_const(rm, 0.25f);
    /* PyTorch's bound 1/sqrt(fan_in) = 1/6, and the values fill it */
    const float *wv = nn_tensor_host_data(w);
    float mx = 0;
    for (size_t i = 0; i < w->numel; i++) mx = fmaxf(mx, fabsf(wv[i]));
    assert_true(mx <= 1.0f / 6 && mx > 0.9f / 6);
    void *buf;
    size_t len;
    assert_int_equal(nn_params_save(a, &buf, &len, err, sizeof err), 0);
    /* b: same names in another order */
    nn_params_add(b, "bn.rm", 1, cs, NN_T_BUFFER, err, sizeof err);
    struct nn_tensor *w2 = nn_params_add(b, "c.w", 4, ws, NN_T_PARAM, err, sizeof err);
    nn_params_add(b, "c.b", 1, cs, NN_T_PARAM, err, sizeof err);
    /* every truncation is refused and changes nothing */
    for (size_t cut = 0; cut < len; cut += 7)
        assert_int_not_equal(nn_params_load(b, buf, cut, err, sizeof err), 0);
    assert_float_equal(nn_tensor_host_data(w2)[0], 0.0f, 0);
    unsigned char *bad = malloc(len);
    memcpy(bad, buf, len);
    bad[8 + 4 + 3 + 4] = 9; /* first tensor's shape[0] */
    assert_int_not_equal(nn_params_load(b, bad, len, err, sizeof err), 0);
    free(bad);
    assert_int_equal(nn_params_load(b, buf, len, err, sizeof err), 0);
    assert_memory_equal(nn_tensor_host_data(w2), wv, w->numel * sizeof(float));
    assert_float_equal(nn_tensor_host_data(nn_params_find(b, "bn.rm"))[5], 0.25f, 0);
    free(buf);
    nn_params_free(a);
    nn_params_free(b);
    /* a file naming one tensor twice (and the other never) is refused */
    a = nn_params_new(be);
    nn_params_add(a, "p", 1, cs, NN_T_PARAM, err, sizeof err);
    nn_params_add(a, "q", 1, cs, NN_T_PARAM, err, sizeof err);
    assert_int_equal(nn_params_save(a, &buf, &len, err, sizeof err), 0);
    size_t second = 8 + 4 + 1 + 4 + 16 + 16 * 4 + 4; /* name byte of the second tensor */
    assert_int_equal(((unsigned char *)buf)[second], 'q');
    ((unsigned char *)buf)[second] = 'p';
    assert_int_not_equal(nn_params_load(a, buf, len, err, sizeof err), 0);
    assert_non_null(strstr(err, "twice"));
    free(buf);
    nn_params_free(a);
    nn_backend_free(be);
}

/* The threaded CPU paths (worker pool splits, threaded GEMMs) give the
 * single-threaded results: a net big enough to split every loop. */
static struct nn_tensor *net_on(struct nn_backend *be, struct nn_graph *g, struct nn_params **out,
                                const float *xv, const int *labels)
{
    char err[256];
    struct nn_params *ps = nn_params_new(be);
    int ws[4] = {16, 8, 3, 3}, dws[4] = {16, 1, 3, 3}, cs[1] = {16}, ls[2] = {10, 16};
    struct nn_tensor *w = nn_params_add(ps, "w", 4, ws, NN_T_PARAM, err, sizeof err);
    struct nn_tensor *dw = nn_params_add(ps, "dw", 4, dws, NN_T_PARAM, err, sizeof err);
    struct nn_tensor *gm = nn_params_add(ps, "g", 1, cs, NN_T_PARAM, err, sizeof err);
    struct nn_tensor *bt = nn_params_add(ps, "b", 1, cs, NN_T_PARAM, err, sizeof err);
    struct nn_tensor *rm = nn_params_add(ps, "rm", 1, cs, NN_T_BUFFER, err, sizeof err);
    struct nn_tensor *rv = nn_params_add(ps, "rv", 1, cs, NN_T_BUFFER, err, sizeof err);
    struct nn_tensor *lw = nn_params_add(ps, "lw", 2, ls, NN_T_PARAM, err, sizeof err);
    struct nn_rng r;
    nn_rng_seed(&r, 9);
    nn_init_kaiming_uniform(w, 72, &r);
    nn_init_kaiming_uniform(dw, 9, &r);
    nn_init_kaiming_uniform(lw, 16, &r);
    nn_init_const(gm, 1.0f);
    nn_init_const(rv, 1.0f);
    int xs[4] = {8, 8, 16, 16};
    struct nn_tensor *h = nn_conv2d(g, nn_graph_input(g, 4, xs, xv), w, NULL, 1, 1, 1, 1);
    h = nn_relu(g, nn_batch_norm(g, h, gm, bt, rm, rv, 0.1f, 1e-5f));
    h = nn_avg_pool2d(g, nn_max_pool2d(g, h, 2, 2, 0), 3, 1, 1);
    h = nn_conv2d(g, h, dw, NULL, 1, 2, 2, 16);
    struct nn_tensor *loss = nn_softmax_ce(g, nn_linear(g, nn_global_avg_pool(g, h), lw, NULL), labels, NULL);
    assert_non_null(loss);
    assert_int_equal(nn_graph_backward(g, loss, err, sizeof err), 0);
    *out = ps;
    return loss;
}

static void test_threads_match(void **s)
{
    (void)s;
    char err[256];
    float *xv = malloc(8 * 8 * 16 * 16 * sizeof *xv);
    struct nn_rng r;
    nn_rng_seed(&r, 4);
    for (int i = 0; i < 8 * 8 * 16 * 16; i++) xv[i] = (float)(2 * nn_rng_uniform(&r) - 1);
    int labels[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    struct nn_backend *b1 = nn_backend_cpu_new(1, err, sizeof err), *b2 = nn_backend_cpu_new(2, err, sizeof err);
    struct nn_graph *g1 = nn_graph_new(b1, err, sizeof err), *g2 = nn_graph_new(b2, err, sizeof err);
    struct nn_params *p1, *p2;
    float l1, l2;
    nn_tensor_download(net_on(b1, g1, &p1, xv, labels), &l1);
    nn_tensor_download(net_on(b2, g2, &p2, xv, labels), &l2);
    assert_float_equal(l1, l2, 1e-5);
    for (int i = 0; i < nn_params_count(p1); i++) {
        struct nn_tensor *a = nn_params_get(p1, i), *b = nn_params_get(p2, i);
        const float *va = a->grad ? nn_tensor_host_grad(a) : nn_tensor_host_data(a);
        const float *vb = b->grad ? nn_tensor_host_grad(b) : nn_tensor_host_data(b);
        for (size_t k = 0; k < a->numel; k++)
            if (fabsf(va[k] - vb[k]) > 1e-5f + 1e-4f * fabsf(va[k]))
                fail_msg("%s[%zu]: 1 thread %g, 2 threads %g", a->name, k, (double)va[k], (double)vb[k]);
    }
    nn_params_free(p1);
    nn_params_free(p2);
    nn_graph_free(g1);
    nn_graph_free(g2);
    nn_backend_free(b1);
    nn_backend_free(b2);
    free(xv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_catches_errors),
        cmocka_unit_test(test_conv_basic),
        cmocka_unit_test(test_conv_stride_pad),
        cmocka_unit_test(test_conv_dilation),
        cmocka_unit_test(test_conv_groups),
        cmocka_unit_test(test_conv_depthwise),
        cmocka_unit_test(test_conv_depthwise_dil5),
        cmocka_unit_test(test_conv_1x1_stride2),
        cmocka_unit_test(test_conv_odd_stride_pad),
        cmocka_unit_test(test_max_pool),
        cmocka_unit_test(test_avg_pool),
        cmocka_unit_test(test_bn_train_affine),
        cmocka_unit_test(test_bn_train_plain),
        cmocka_unit_test(test_bn_train_2d),
        cmocka_unit_test(test_bn_eval),
        cmocka_unit_test(test_bn_running_stats),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_drop_path),
        cmocka_unit_test(test_drop_path_refuses),
        cmocka_unit_test(test_softmax_ce),
        cmocka_unit_test(test_mixed_op),
        cmocka_unit_test(test_wsum_raw_weights),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_add_scale_identity),
        cmocka_unit_test(test_concat_slice),
        cmocka_unit_test(test_zero_op),
        cmocka_unit_test(test_composed_net),
        cmocka_unit_test(test_sticky_errors),
        cmocka_unit_test(test_arena_and_modes),
        cmocka_unit_test(test_params_save_load_init),
        cmocka_unit_test(test_threads_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

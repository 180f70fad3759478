/* test_nn_cuda.c - the CUDA backend (nn/cuda.h) op by op against the CPU
 * backend, the oracle, on the same random inputs; then a few training
 * steps of a small DARTS network on both.
 *
 * Without a visible GPU (or in a build without CUDA) every test is
 * reported SKIPPED by cmocka, never passed; PODIUM_REQUIRE_GPU=1 (set by
 * tests/gpu/run.sh) turns that into a failure.
 *
 * Each op case builds the same leaves on both backends (values and
 * pre-filled gradients, so that backward's accumulation is checked too),
 * runs the op forward, runs backward from the same random upstream
 * gradient, and compares the output, every leaf's gradient and every
 * buffer (batch-norm running statistics) with the max-norm relative error
 *     err = max_i |gpu_i - cpu_i| / max_i |cpu_i|
 * which must be <= 1e-4 in fp32. With NN_CUDA_TF32 (TF32 tensor cores in
 * cuDNN and cuBLAS: 10-bit mantissas on the inputs of each product) the
 * bound is 1e-2. The DARTS network's per-step losses must agree within
 * 2e-4 relative on the first step (a forward pass) and 1e-3 on the later
 * ones (differences compound through batch norm and the updates). Then
 * the "cnn" and "darts" families' own fit on "cpu" and on "cuda" (their
 * optimizers on the device: the table's sgd_step/adam_step/sumsq), with
 * their epoch losses, predictions and reported device compared (the
 * tolerances are stated above fam_compare), and "auto" picking the GPU.
 * `test_nn_cuda --probe` only says whether a GPU is visible (exit 0) or
 * why not (exit 1), for tests/gpu/run.sh. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn/cuda.h"
#include "nn/graph.h"
#include "nn/ops.h"
#include "nn/tensor.h"
#include "tests/support/darts_net.h"
#include "trainers/cnn.h"
#include "trainers/darts.h"

#define TOL_FP32 1e-4
#define TOL_TF32 1e-2
#define MAX_LEAVES 12

static int have_gpu;

#define NEED_GPU()                   \
    do {                             \
        if (!have_gpu) {             \
            skip();                  \
            return;                  \
        }                            \
    } while (0)

struct side {
    struct nn_backend *be;
    struct nn_graph *g;
    struct nn_tensor *leaf[MAX_LEAVES], *buf[4];
};

struct cmp;
typedef struct nn_tensor *(*fwd_fn)(struct cmp *c, struct side *s);

struct cmp {
    struct side s[2];        /* 0: CPU (oracle), 1: CUDA */
    int nleaf, nbuf;
    int iarg[8];
    float farg[4];
    int labels[64];
    fwd_fn fwd;
    double tol;
    struct nn_rng rng;
};

static struct nn_backend *cuda_or_fail(int flags)
{
    char err[256];
    struct nn_backend *be = nn_backend_cuda_new(0, flags, err, sizeof err);
    if (!be) fail_msg("a GPU is visible but the CUDA backend did not start: %s", err);
    return be;
}

static void cmp_init(struct cmp *c, fwd_fn fwd, uint64_t seed, int flags)
{
    memset(c, 0, sizeof *c);
    char err[256];
    c->s[0].be = nn_backend_cpu_new(1, err, sizeof err);
    assert_non_null(c->s[0].be);
    c->s[1].be = cuda_or_fail(flags);
    for (int i = 0; i < 2; i++) {
        c->s[i].g = nn_graph_new(c->s[i].be, err, sizeof err);
        assert_non_null(c->s[i].g);
    }
    c->fwd = fwd;
    c->tol = (flags & NN_CUDA_TF32) ? TOL_TF32 : TOL_FP32;
    nn_rng_seed(&c->rng, seed);
}

static void cmp_free(struct cmp *c)
{
    for (int i = 0; i < 2; i++) {
        for (int l = 0; l < c->nleaf; l++) nn_tensor_free(c->s[i].leaf[l]);
        for (int b = 0; b < c->nbuf; b++) nn_tensor_free(c->s[i].buf[b]);
        nn_graph_free(c->s[i].g);
        nn_backend_free(c->s[i].be);
    }
}

static float *rand_vals(struct cmp *c, size_t n, float lo, float hi)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * (float)nn_rng_uniform(&c->rng);
    return v;
}

/* The same leaf (values U(lo, hi), gradient pre-filled U(-1, 1)) on both. */
static void leaf(struct cmp *c, int ndim, const int *shape, float lo, float hi)
{
    size_t n = nn_shape_numel(ndim, shape);
    float *v = rand_vals(c, n, lo, hi), *g = rand_vals(c, n, -1, 1);
    char err[256];
    for (int i = 0; i < 2; i++) {
        struct nn_tensor *t = nn_tensor_new(c->s[i].be, ndim, shape, 1, err, sizeof err);
        assert_non_null(t);
        nn_tensor_upload(t, v);
        c->s[i].be->upload(c->s[i].be, t->grad, g, n);
        c->s[i].leaf[c->nleaf] = t;
    }
    c->nleaf++;
    free(v);
    free(g);
}

/* Distinct values (max pool: no ties), shuffled. */
static void leaf_distinct(struct cmp *c, int ndim, const int *shape)
{
    size_t n = nn_shape_numel(ndim, shape);
    leaf(c, ndim, shape, 0, 1);
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = 0.01f * (float)i - 0.005f * (float)n;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = nn_rng_next(&c->rng) % (i + 1);
        float t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    for (int i = 0; i < 2; i++) nn_tensor_upload(c->s[i].leaf[c->nleaf - 1], v);
    free(v);
}

static void buffer(struct cmp *c, int n, float lo, float hi)
{
    int shape[1] = {n};
    float *v = rand_vals(c, (size_t)n, lo, hi);
    char err[256];
    for (int i = 0; i < 2; i++) {
        struct nn_tensor *t = nn_tensor_new(c->s[i].be, 1, shape, 0, err, sizeof err);
        assert_non_null(t);
        nn_tensor_upload(t, v);
        c->s[i].buf[c->nbuf] = t;
    }
    c->nbuf++;
    free(v);
}

static double rel_err(const float *gpu, const float *cpu, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)gpu[i] - cpu[i]);
        if (!(d <= num)) num = d; /* NaN propagates */
        if (fabs(cpu[i]) > den) den = fabs(cpu[i]);
    }
    return den > 0 ? num / den : num;
}

static void expect_close(const char *what, const float *gpu, const float *cpu, size_t n, double tol)
{
    double e = rel_err(gpu, cpu, n);
    if (!(e <= tol)) {
        for (size_t i = 0, shown = 0; i < n && shown < 3; i++)
            if (fabs((double)gpu[i] - cpu[i]) > tol * fabs(cpu[i]) + 1e-7) {
                print_message("  %s[%zu]: gpu %.8g, cpu %.8g\n", what, i, (double)gpu[i], (double)cpu[i]);
                shown++;
            }
        fail_msg("%s: relative error %.3g > %.1g over %zu values", what, e, tol, n);
    }
}

static void expect_tensors(struct cmp *c, const char *what, struct nn_tensor *cpu,
                           struct nn_tensor *gpu, int grad)
{
    assert_int_equal(cpu->numel, gpu->numel);
    float *a = malloc(cpu->numel * sizeof *a), *b = malloc(cpu->numel * sizeof *b);
    if (grad) {
        nn_tensor_download_grad(cpu, a);
        nn_tensor_download_grad(gpu, b);
    } else {
        nn_tensor_download(cpu, a);
        nn_tensor_download(gpu, b);
    }
    expect_close(what, b, a, cpu->numel, c->tol);
    free(a);
    free(b);
}

/* Forward and backward on both, compare everything. */
static void cmp_run(struct cmp *c)
{
    struct nn_tensor *y[2];
    for (int i = 0; i < 2; i++) {
        nn_graph_reset(c->s[i].g);
        y[i] = c->fwd(c, &c->s[i]);
        if (!y[i]) fail_msg("forward on %s: %s", c->s[i].be->name, nn_graph_error(c->s[i].g));
    }
    expect_tensors(c, "y", y[0], y[1], 0);
    if (y[0]->flags & NN_T_NEEDS_GRAD) {
        float *r = rand_vals(c, y[0]->numel, -1, 1);
        char err[256];
        for (int i = 0; i < 2; i++)
            if (nn_graph_backward_from(c->s[i].g, y[i], r, err, sizeof err) != 0)
                fail_msg("backward on %s: %s", c->s[i].be->name, err);
        free(r);
    }
    char what[32];
    for (int l = 0; l < c->nleaf; l++) {
        snprintf(what, sizeof what, "grad of leaf %d", l);
        expect_tensors(c, what, c->s[0].leaf[l], c->s[1].leaf[l], 1);
    }
    for (int b = 0; b < c->nbuf; b++) {
        snprintf(what, sizeof what, "buffer %d", b);
        expect_tensors(c, what, c->s[0].buf[b], c->s[1].buf[b], 0);
    }
    cmp_free(c);
}

/* --- convolution ------------------------------------------------------------------ */

static struct nn_tensor *f_conv(struct cmp *c, struct side *s)
{
    return nn_conv2d(s->g, s->leaf[0], s->leaf[1], c->nleaf > 2 ? s->leaf[2] : NULL, c->iarg[0],
                     c->iarg[1], c->iarg[2], c->iarg[3]);
}

static void conv_case(int flags, int n, int cin, int h, int cout, int k, int stride, int pad, int dil,
                      int groups, int bias)
{
    struct cmp c;
    cmp_init(&c, f_conv, 1000 + (uint64_t)(cin * 7 + cout * 3 + k + stride + dil + groups), flags);
    int xs[4] = {n, cin, h, h}, ws[4] = {cout, cin / groups, k, k}, bs[1] = {cout};
    leaf(&c, 4, xs, -1, 1);
    leaf(&c, 4, ws, -0.5f, 0.5f);
    if (bias) leaf(&c, 1, bs, -0.5f, 0.5f);
    c.iarg[0] = stride;
    c.iarg[1] = pad;
    c.iarg[2] = dil;
    c.iarg[3] = groups;
    cmp_run(&c);
}

static void test_conv_basic(void **st) { (void)st; NEED_GPU(); conv_case(0, 2, 3, 8, 4, 3, 1, 1, 1, 1, 1); }
static void test_conv_s2_d2_g2(void **st) { (void)st; NEED_GPU(); conv_case(0, 2, 4, 9, 6, 3, 2, 2, 2, 2, 1); }
static void test_conv_dw_s2(void **st) { (void)st; NEED_GPU(); conv_case(0, 2, 8, 10, 8, 3, 2, 1, 1, 8, 0); }
static void test_conv_dw_dil5(void **st) { (void)st; NEED_GPU(); conv_case(0, 2, 8, 10, 8, 5, 1, 4, 2, 8, 0); }
static void test_conv_1x1_s2(void **st) { (void)st; NEED_GPU(); conv_case(0, 2, 8, 8, 8, 1, 2, 0, 1, 1, 0); }
static void test_conv_big(void **st) { (void)st; NEED_GPU(); conv_case(0, 16, 32, 16, 64, 3, 1, 1, 1, 1, 1); }
static void test_conv_big_tf32(void **st) { (void)st; NEED_GPU(); conv_case(NN_CUDA_TF32, 16, 32, 16, 64, 3, 1, 1, 1, 1, 1); }

/* --- pooling ----------------------------------------------------------------------- */

static struct nn_tensor *f_pool(struct cmp *c, struct side *s)
{
    return c->iarg[0] ? nn_max_pool2d(s->g, s->leaf[0], c->iarg[1], c->iarg[2], c->iarg[3])
                      : nn_avg_pool2d(s->g, s->leaf[0], c->iarg[1], c->iarg[2], c->iarg[3]);
}

static void pool_case(int is_max, int k, int stride, int pad, int h)
{
    struct cmp c;
    cmp_init(&c, f_pool, 2000 + (uint64_t)(is_max * 10 + k + stride + pad), 0);
    int xs[4] = {2, 3, h, h};
    leaf_distinct(&c, 4, xs);
    c.iarg[0] = is_max;
    c.iarg[1] = k;
    c.iarg[2] = stride;
    c.iarg[3] = pad;
    cmp_run(&c);
}

static void test_maxpool(void **st)
{
    (void)st;
    NEED_GPU();
    pool_case(1, 3, 2, 1, 9);
    pool_case(1, 3, 1, 1, 8);
    pool_case(1, 2, 2, 0, 8);
}

static void test_avgpool(void **st)
{
    (void)st;
    NEED_GPU();
    pool_case(0, 3, 1, 1, 8);
    pool_case(0, 3, 2, 1, 9);
    pool_case(0, 2, 2, 0, 8);
}

/* --- batch norm ----------------------------------------------------------------------- */

static struct nn_tensor *f_bn(struct cmp *c, struct side *s)
{
    nn_graph_set_training(s->g, c->iarg[0]);
    int affine = c->iarg[1];
    return nn_batch_norm(s->g, s->leaf[0], affine ? s->leaf[1] : NULL, affine ? s->leaf[2] : NULL,
                         s->buf[0], s->buf[1], 0.1f, 1e-5f);
}

static void bn_case(int training, int affine, int ndim)
{
    struct cmp c;
    cmp_init(&c, f_bn, 3000 + (uint64_t)(training * 2 + affine + ndim), 0);
    int xs4[4] = {4, 6, 5, 5}, xs2[2] = {16, 6}, cs[1] = {6};
    leaf(&c, ndim, ndim == 4 ? xs4 : xs2, -2, 3);
    if (affine) {
        leaf(&c, 1, cs, 0.5f, 1.5f);
        leaf(&c, 1, cs, -0.5f, 0.5f);
    }
    buffer(&c, 6, -0.5f, 0.5f);
    buffer(&c, 6, 0.5f, 2.0f);
    c.iarg[0] = training;
    c.iarg[1] = affine;
    cmp_run(&c);
}

static void test_bn_train_affine(void **st) { (void)st; NEED_GPU(); bn_case(1, 1, 4); }
static void test_bn_train_plain(void **st) { (void)st; NEED_GPU(); bn_case(1, 0, 4); }
static void test_bn_train_2d(void **st) { (void)st; NEED_GPU(); bn_case(1, 1, 2); }
static void test_bn_eval_affine(void **st) { (void)st; NEED_GPU(); bn_case(0, 1, 4); }
static void test_bn_eval_plain(void **st) { (void)st; NEED_GPU(); bn_case(0, 0, 4); }

/* --- the rest of the ops -------------------------------------------------------------- */

static struct nn_tensor *f_relu(struct cmp *c, struct side *s) { (void)c; return nn_relu(s->g, s->leaf[0]); }
static struct nn_tensor *f_gap(struct cmp *c, struct side *s) { (void)c; return nn_global_avg_pool(s->g, s->leaf[0]); }
static struct nn_tensor *f_linear(struct cmp *c, struct side *s)
{
    return nn_linear(s->g, s->leaf[0], s->leaf[1], c->nleaf > 2 ? s->leaf[2] : NULL);
}
static struct nn_tensor *f_dropout(struct cmp *c, struct side *s) { (void)c; return nn_dropout(s->g, s->leaf[0], 0.3f, 77); }
static struct nn_tensor *f_ce(struct cmp *c, struct side *s) { return nn_softmax_ce(s->g, s->leaf[0], c->labels, NULL); }
static struct nn_tensor *f_softmax(struct cmp *c, struct side *s) { (void)c; return nn_softmax(s->g, s->leaf[0]); }
static struct nn_tensor *f_add(struct cmp *c, struct side *s) { (void)c; return nn_add(s->g, s->leaf[0], s->leaf[1]); }
static struct nn_tensor *f_scale(struct cmp *c, struct side *s) { (void)c; return nn_scale(s->g, s->leaf[0], -1.7f); }

/* mixed op: sum_k softmax(alpha)[row 1] * x_k over k = iarg[0] inputs */
static struct nn_tensor *f_mixed(struct cmp *c, struct side *s)
{
    int k = c->iarg[0];
    return nn_wsum(s->g, k, s->leaf + 1, nn_softmax(s->g, s->leaf[0]), k);
}

static struct nn_tensor *f_concat_slice(struct cmp *c, struct side *s)
{
    (void)c;
    struct nn_tensor *y = nn_concat(s->g, 3, s->leaf);
    return nn_add(s->g, nn_slice(s->g, y, 1, 5), nn_slice(s->g, y, 3, 7));
}

static struct nn_tensor *f_zeros(struct cmp *c, struct side *s)
{
    (void)c;
    int shape[4] = {2, 3, 4, 4};
    return nn_add(s->g, s->leaf[0], nn_zeros(s->g, 4, shape));
}

static void simple_case(fwd_fn f, int ndim, const int *shape, float lo, float hi)
{
    struct cmp c;
    cmp_init(&c, f, 4000 + (uint64_t)shape[0] * 31 + (uint64_t)ndim, 0);
    leaf(&c, ndim, shape, lo, hi);
    cmp_run(&c);
}

static void test_elementwise(void **st)
{
    (void)st;
    NEED_GPU();
    int s4[4] = {2, 3, 7, 5}, big[1] = {100003};
    simple_case(f_relu, 4, s4, -1, 1);
    simple_case(f_relu, 1, big, -1, 1);
    simple_case(f_gap, 4, s4, -1, 1);
    simple_case(f_dropout, 1, big, -1, 1);
    simple_case(f_scale, 4, s4, -1, 1);
    int sm[2] = {14, 8};
    simple_case(f_softmax, 2, sm, -3, 3);
    struct cmp c;
    cmp_init(&c, f_add, 4100, 0);
    leaf(&c, 4, s4, -1, 1);
    leaf(&c, 4, s4, -1, 1);
    cmp_run(&c);
    int zs[4] = {2, 3, 4, 4};
    simple_case(f_zeros, 4, zs, -1, 1);
}

static void linear_case(int flags, int n, int in, int out, int bias)
{
    struct cmp c;
    cmp_init(&c, f_linear, 5000 + (uint64_t)(n + in + out + bias), flags);
    int xs[2] = {n, in}, ws[2] = {out, in}, bs[1] = {out};
    leaf(&c, 2, xs, -1, 1);
    leaf(&c, 2, ws, -0.5f, 0.5f);
    if (bias) leaf(&c, 1, bs, -0.5f, 0.5f);
    cmp_run(&c);
}

static void test_linear(void **st)
{
    (void)st;
    NEED_GPU();
    linear_case(0, 8, 20, 10, 1);
    linear_case(0, 64, 256, 100, 0);
    linear_case(NN_CUDA_TF32, 64, 256, 100, 1);
}

static void test_softmax_ce(void **st)
{
    (void)st;
    NEED_GPU();
    struct cmp c;
    cmp_init(&c, f_ce, 6000, 0);
    int zs[2] = {37, 10};
    leaf(&c, 2, zs, -4, 4);
    for (int i = 0; i < 37; i++) c.labels[i] = (i * 7) % 10;
    cmp_run(&c);
}

static void mixed_case(int k)
{
    struct cmp c;
    cmp_init(&c, f_mixed, 7000 + (uint64_t)k, 0);
    int as[2] = {3, k}, xs[4] = {2, 4, 6, 6};
    leaf(&c, 2, as, -1, 1);
    for (int j = 0; j < k; j++) leaf(&c, 4, xs, -1, 1);
    c.iarg[0] = k;
    cmp_run(&c);
}

static void test_mixed_op(void **st)
{
    (void)st;
    NEED_GPU();
    mixed_case(8);
    mixed_case(11); /* more inputs than one kernel launch takes */
}

static void test_concat_slice(void **st)
{
    (void)st;
    NEED_GPU();
    struct cmp c;
    cmp_init(&c, f_concat_slice, 8000, 0);
    int a[4] = {2, 2, 5, 5}, b[4] = {2, 3, 5, 5}, d[4] = {2, 4, 5, 5};
    leaf(&c, 4, a, -1, 1);
    leaf(&c, 4, b, -1, 1);
    leaf(&c, 4, d, -1, 1);
    cmp_run(&c);
}

/* The table's memory entries directly: fill, overlapping copy, masks. */
static void test_table_memory(void **st)
{
    (void)st;
    NEED_GPU();
    char err[256];
    struct nn_backend *cpu = nn_backend_cpu_new(1, err, sizeof err), *gpu = cuda_or_fail(0);
    const size_t n = 4099;
    float *h = malloc(2 * n * sizeof *h), *r = malloc(2 * n * sizeof *r), *e = malloc(2 * n * sizeof *e);
    for (size_t i = 0; i < 2 * n; i++) h[i] = (float)i;
    float *d = gpu->alloc(gpu, 2 * n), *c = cpu->alloc(cpu, 2 * n);
    assert_non_null(d);
    gpu->upload(gpu, d, h, 2 * n);
    cpu->upload(cpu, c, h, 2 * n);
    gpu->copy(gpu, d + 7, d, n); /* overlapping: memmove */
    cpu->copy(cpu, c + 7, c, n);
    gpu->fill(gpu, d + n + 100, 2.5f, 50);
    cpu->fill(cpu, c + n + 100, 2.5f, 50);
    gpu->fill(gpu, d + n + 200, 0.0f, 50);
    cpu->fill(cpu, c + n + 200, 0.0f, 50);
    gpu->download(gpu, r, d, 2 * n);
    cpu->download(cpu, e, c, 2 * n);
    assert_memory_equal(r, e, 2 * n * sizeof *r);
    gpu->dropout_mask(gpu, d, n, 0.37f, 12345);
    cpu->dropout_mask(cpu, c, n, 0.37f, 12345);
    gpu->download(gpu, r, d, n);
    cpu->download(cpu, e, c, n);
    assert_memory_equal(r, e, n * sizeof *r); /* the same bits */
    /* the pool reuses a freed block */
    gpu->free(gpu, d);
    float *d2 = gpu->alloc(gpu, 2 * n);
    assert_ptr_equal(d2, d);
    gpu->free(gpu, d2);
    gpu->free(gpu, NULL);
    assert_true(nn_cuda_peak_bytes(gpu) >= 2 * n * sizeof(float));
    char name[256];
    assert_int_equal(nn_cuda_backend_device_name(gpu, name, sizeof name), 0);
    assert_true(name[0] != 0);
    cpu->free(cpu, c);
    free(h);
    free(r);
    free(e);
    nn_backend_free(gpu);
    nn_backend_free(cpu);
}

/* --- a few training steps of a small DARTS network ------------------------------------- */

static void test_darts_steps(void **st)
{
    (void)st;
    NEED_GPU();
    enum { N = 8, H = 16, STEPS = 5 };
    struct darts_cfg cfg = {.c = 8, .cells = 3, .nodes = 2, .classes = 10, .in_ch = 3, .search = 1,
                            .seed = 42};
    char err[256];
    struct nn_backend *be[2] = {nn_backend_cpu_new(1, err, sizeof err), cuda_or_fail(0)};
    struct darts_net *net[2];
    struct nn_graph *g[2];
    for (int i = 0; i < 2; i++) {
        net[i] = darts_net_new(be[i], &cfg, err, sizeof err);
        if (!net[i]) fail_msg("darts_net_new: %s", err);
        g[i] = nn_graph_new(be[i], err, sizeof err);
    }
    struct nn_rng r;
    nn_rng_seed(&r, 7);
    float *x = malloc(sizeof(float) * N * 3 * H * H);
    int labels[N], xs[4] = {N, 3, H, H};
    double losses[2][STEPS];
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < N * 3 * H * H; i++) x[i] = (float)(2 * nn_rng_uniform(&r) - 1);
        for (int i = 0; i < N; i++) labels[i] = (int)(nn_rng_next(&r) % 10);
        for (int i = 0; i < 2; i++) {
            nn_graph_reset(g[i]);
            nn_params_zero_grad(darts_net_params(net[i]));
            struct nn_tensor *logits = darts_net_forward(net[i], g[i], nn_graph_input(g[i], 4, xs, x));
            struct nn_tensor *loss = nn_softmax_ce(g[i], logits, labels, NULL);
            if (!loss) fail_msg("forward on %s: %s", be[i]->name, nn_graph_error(g[i]));
            if (nn_graph_backward(g[i], loss, err, sizeof err) != 0) fail_msg("backward: %s", err);
            darts_net_sgd(net[i], 0.05f, 0.9f, 3e-4f);
            float l;
            nn_tensor_download(loss, &l);
            losses[i][step] = l;
        }
        double rel = fabs(losses[1][step] - losses[0][step]) / fabs(losses[0][step]);
        print_message("  step %d: loss cpu %.6f, cuda %.6f (rel %.2g)\n", step, losses[0][step],
                      losses[1][step], rel);
        assert_true(rel <= (step == 0 ? 2e-4 : 1e-3));
    }
    /* the architecture weights moved the same way */
    struct nn_params *p0 = darts_net_params(net[0]), *p1 = darts_net_params(net[1]);
    assert_int_equal(nn_params_count(p0), nn_params_count(p1));
    for (int t = 0; t < nn_params_count(p0); t++) {
        struct nn_tensor *a = nn_params_get(p0, t), *b = nn_params_get(p1, t);
        float *va = malloc(a->numel * sizeof *va), *vb = malloc(b->numel * sizeof *vb);
        nn_tensor_download(a, va);
        nn_tensor_download(b, vb);
        expect_close(a->name, vb, va, a->numel, 1e-3);
        free(va);
        free(vb);
    }
    assert_true(nn_cuda_peak_bytes(be[1]) > 0);
    free(x);
    for (int i = 0; i < 2; i++) {
        darts_net_free(net[i]);
        nn_graph_free(g[i]);
        nn_backend_free(be[i]);
    }
}

/* --- the "cnn" and "darts" families on both backends ----------------------------------- */

/* The families' own fit, from the same initialization (the network is
 * initialised from a seeded host generator and uploaded) and the same
 * batches (drawn, cropped and normalized on the host), once with
 * "device": "cpu" and once with "cuda": every epoch's mean training loss
 * must agree within FAM_TOL_FIRST (relative) in the first epoch and
 * FAM_TOL_LATER after (differences compound through batch norm, the
 * clipped SGD steps and the cosine schedule; the per-step DARTS check
 * above holds 1e-3 after five steps, and an epoch here is two steps), and
 * the trained models' probabilities on the training images within
 * FAM_TOL_PROBA (absolute). The CUDA model's details must name the
 * device: kind "cuda", a name, peak memory > 0. */
#define FAM_TOL_FIRST 1e-3
#define FAM_TOL_LATER 5e-3
#define FAM_TOL_PROBA 2e-2
enum { FAM_N = 32, FAM_K = 4, FAM_EPOCHS = 3 };

struct fam_log {
    int n;
    double loss[16];
};

static void fam_progress(void *ctx, const struct pd_progress *p)
{
    struct fam_log *l = ctx;
    if (p->metric && strcmp(p->metric, "train_loss") == 0 && l->n < 16) l->loss[l->n++] = p->value;
}

/* 32 images of 8x8: class k is a bright quadrant k plus noise */
static void fam_data(float *x, double *y)
{
    struct nn_rng r;
    nn_rng_seed(&r, 11);
    for (int i = 0; i < FAM_N; i++) {
        y[i] = i % FAM_K;
        for (int j = 0; j < 64; j++)
            x[i * 64 + j] = (float)(0.3 * nn_rng_uniform(&r) +
                                    ((j / 32) * 2 + (j % 8) / 4 == i % FAM_K ? 0.7 : 0.0));
    }
}

static void *fam_fit(const struct pd_family *F, const char *params, const char *device,
                     struct fam_log *log)
{
    static float x[FAM_N * 64];
    static double y[FAM_N];
    fam_data(x, y);
    char err[512];
    struct pd_task task = {PD_TASK_CLASSIFICATION, FAM_K};
    cJSON *j = cJSON_Parse(params);
    assert_non_null(j);
    void *p = NULL, *m = NULL;
    if (F->params_parse(j, &task, &p, err, sizeof err) != 0) fail_msg("params: %s", err);
    cJSON_Delete(j);
    struct pd_data tr = {.n = FAM_N, .d = 64, .x = x, .y = y};
    memset(log, 0, sizeof *log);
    struct pd_fit_opts o = {.threads = 1, .seed = 1, .progress = fam_progress, .progress_ctx = log,
                            .image_channels = 1, .image_height = 8, .image_width = 8,
                            .device = device};
    if (F->fit(p, &task, &tr, NULL, &o, &m, err, sizeof err) != 0)
        fail_msg("%s fit on %s: %s", F->name, device, err);
    F->params_free(p);
    return m;
}

static void fam_compare(const struct pd_family *F, const char *params)
{
    struct fam_log lc, lg;
    void *mc = fam_fit(F, params, "cpu", &lc), *mg = fam_fit(F, params, "cuda", &lg);
    assert_int_equal(lc.n, FAM_EPOCHS);
    assert_int_equal(lg.n, FAM_EPOCHS);
    for (int e = 0; e < FAM_EPOCHS; e++) {
        double rel = fabs(lg.loss[e] - lc.loss[e]) / fabs(lc.loss[e]);
        print_message("  %s epoch %d: train_loss cpu %.6f, cuda %.6f (rel %.2g)\n", F->name, e + 1,
                      lc.loss[e], lg.loss[e], rel);
        if (!(rel <= (e == 0 ? FAM_TOL_FIRST : FAM_TOL_LATER)))
            fail_msg("%s epoch %d: relative loss difference %.3g", F->name, e + 1, rel);
    }
    /* predictions of the two trained models */
    static float x[FAM_N * 64];
    static double y[FAM_N], pc[FAM_N * FAM_K], pg[FAM_N * FAM_K];
    fam_data(x, y);
    assert_int_equal(F->predict(mc, x, FAM_N, 64, 1, pc), 0);
    assert_int_equal(F->predict(mg, x, FAM_N, 64, 1, pg), 0);
    double worst = 0;
    for (int i = 0; i < FAM_N * FAM_K; i++) worst = fmax(worst, fabs(pc[i] - pg[i]));
    print_message("  %s: largest probability difference %.3g\n", F->name, worst);
    if (!(worst <= FAM_TOL_PROBA)) fail_msg("%s: probabilities differ by %.3g", F->name, worst);
    /* what the results say about the device */
    cJSON *dg = F->details(mg), *dc = F->details(mc);
    assert_non_null(dg);
    assert_non_null(dc);
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(dg, "device");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(dev, "kind")->valuestring, "cuda");
    assert_true(strlen(cJSON_GetObjectItemCaseSensitive(dev, "name")->valuestring) > 0);
    assert_true(cJSON_GetObjectItemCaseSensitive(dev, "peak_memory_bytes")->valuedouble > 0);
    dev = cJSON_GetObjectItemCaseSensitive(dc, "device");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(dev, "kind")->valuestring, "cpu");
    cJSON_Delete(dg);
    cJSON_Delete(dc);
    F->model_free(mc);
    F->model_free(mg);
}

static void test_cnn_family(void **st)
{
    (void)st;
    NEED_GPU();
    fam_compare(&pd_family_cnn, "{\"cells\": 3, \"channels\": 8, \"epochs\": 3, \"batch_size\": 16,"
                                " \"learning_rate\": 0.01, \"augment\": true, \"seed\": 5}");
}

static void test_darts_family(void **st)
{
    (void)st;
    NEED_GPU();
    /* 16 rows a side, batches of 8: two search steps an epoch */
    fam_compare(&pd_family_darts, "{\"cells\": 2, \"channels\": 4, \"epochs\": 3, \"batch_size\": 8,"
                                  " \"learning_rate\": 0.01, \"augment\": false, \"seed\": 5}");
}

/* "auto" takes the visible GPU */
static void test_auto_device(void **st)
{
    (void)st;
    NEED_GPU();
    struct fam_log l;
    void *m = fam_fit(&pd_family_cnn, "{\"cells\": 2, \"channels\": 4, \"epochs\": 1,"
                                      " \"batch_size\": 16, \"seed\": 5}", "auto", &l);
    cJSON *d = pd_family_cnn.details(m);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "device"),
                                                         "kind")->valuestring, "cuda");
    cJSON_Delete(d);
    pd_family_cnn.model_free(m);
}

int main(int argc, char **argv)
{
    int n = nn_cuda_device_count();
    have_gpu = n > 0;
    if (argc > 1 && strcmp(argv[1], "--probe") == 0) {
        /* tests/gpu/run.sh: is there a GPU to test on? (exit 0: yes) */
        char why[256] = "", name[256] = "";
        if (nn_cuda_probe(0, why, sizeof why) != 0) {
            printf("test_nn_cuda: %s\n", why);
            return 1;
        }
        nn_cuda_device_name(0, name, sizeof name);
        printf("test_nn_cuda: %d CUDA device(s), testing on %s\n", n, name);
        return 0;
    }
    if (!have_gpu) {
        char err[256] = "";
        struct nn_backend *be = nn_backend_cuda_new(0, 0, err, sizeof err);
        nn_backend_free(be);
        const char *req = getenv("PODIUM_REQUIRE_GPU");
        if (req && strcmp(req, "1") == 0) {
            fprintf(stderr, "test_nn_cuda: PODIUM_REQUIRE_GPU=1 but %s\n", err);
            return 1;
        }
        printf("test_nn_cuda: %s: every GPU test is SKIPPED (not passed)\n", err);
    } else {
        char name[256];
        nn_cuda_device_name(0, name, sizeof name);
        printf("test_nn_cuda: %d CUDA device(s), testing on %s\n", n, name);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_basic),
        cmocka_unit_test(test_conv_s2_d2_g2),
        cmocka_unit_test(test_conv_dw_s2),
        cmocka_unit_test(test_conv_dw_dil5),
        cmocka_unit_test(test_conv_1x1_s2),
        cmocka_unit_test(test_conv_big),
        cmocka_unit_test(test_conv_big_tf32),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_avgpool),
        cmocka_unit_test(test_bn_train_affine),
        cmocka_unit_test(test_bn_train_plain),
        cmocka_unit_test(test_bn_train_2d),
        cmocka_unit_test(test_bn_eval_affine),
        cmocka_unit_test(test_bn_eval_plain),
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_softmax_ce),
        cmocka_unit_test(test_mixed_op),
        cmocka_unit_test(test_concat_slice),
        cmocka_unit_test(test_table_memory),
        cmocka_unit_test(test_darts_steps),
        cmocka_unit_test(test_cnn_family),
        cmocka_unit_test(test_darts_family),
        cmocka_unit_test(test_auto_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

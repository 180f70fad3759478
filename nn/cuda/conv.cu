/*
 * conv.cu - convolutions through cuDNN and linear layers through cuBLAS.
 *
 * Each convolution shape (the whole nn_conv_desc) gets one cache entry
 * holding its cuDNN descriptors and the algorithms chosen for forward,
 * backward-data and backward-filter. An algorithm is chosen the first
 * time its direction runs, by cudnnFind*Algorithm (which times the
 * candidates on buffers of its own, so the caller's gradients are never
 * scribbled on), falling back to cudnnGet*Algorithm_v7's heuristics
 * and then to a plain GEMM algorithm. Candidates needing more than
 * WS_LIMIT bytes of workspace are skipped. In fp32 mode tensor-op (TF32)
 * results are never taken and every algorithm runs under CUDNN_FMA_MATH
 * (cuDNN's DEFAULT_MATH would allow TF32 on Ampere and later); one that
 * then refuses to run falls back to the GEMM algorithm. The workspace is
 * the backend's single buffer (cu_workspace), grown to the largest need.
 *
 * The cache is an open-addressing table that doubles at half full; it
 * only grows (a network has a few dozen shapes).
 *
 * Backward accumulates as the table asks: cuDNN's beta = 1 adds into dx,
 * dw and db.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cuda/internal.h"
#include "nn/gemm_colmajor.h"

#define WS_LIMIT ((size_t)1 << 30)
#define N_PERF 16

struct cu_conv_entry {
    int used;
    struct nn_conv_desc key;
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    int have_fwd, have_bwd_data, have_bwd_filter;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, data_math, filter_math;
    size_t fwd_ws, data_ws, filter_ws;
};

static const float ONE = 1.0f, ZERO = 0.0f;

static int key_eq(const struct nn_conv_desc *a, const struct nn_conv_desc *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static size_t key_hash(const struct nn_conv_desc *d, size_t cap)
{
    const int *v = (const int *)d;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < sizeof *d / sizeof(int); i++) {
        h ^= (uint32_t)v[i];
        h *= 1099511628211ULL;
    }
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static void entry_destroy(struct cu_conv_entry *e)
{
    if (e->xd) cudnnDestroyTensorDescriptor(e->xd);
    if (e->yd) cudnnDestroyTensorDescriptor(e->yd);
    if (e->bd) cudnnDestroyTensorDescriptor(e->bd);
    if (e->wd) cudnnDestroyFilterDescriptor(e->wd);
    if (e->cd) cudnnDestroyConvolutionDescriptor(e->cd);
}

void cu_conv_cache_free(struct cu_ctx *c)
{
    for (size_t i = 0; i < c->conv_cap; i++)
        if (c->conv[i].used) entry_destroy(&c->conv[i]);
    free(c->conv);
    c->conv = NULL;
    c->conv_cap = c->conv_n = 0;
}

static cudnnMathType_t base_math(const struct cu_ctx *c)
{
    return (c->flags & NN_CUDA_TF32) ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

/* An algorithm's math type is acceptable in this mode: in fp32, FMA
 * kernels first (strict), then ones reported as DEFAULT_MATH (which run
 * under the FMA restriction below); never tensor-op ones. */
static int math_ok(const struct cu_ctx *c, cudnnMathType_t m, int strict)
{
    if (c->flags & NN_CUDA_TF32) return 1;
    return m == CUDNN_FMA_MATH || (!strict && m == CUDNN_DEFAULT_MATH);
}

/* The math type to run a chosen algorithm with. */
static cudnnMathType_t run_math(const struct cu_ctx *c, cudnnMathType_t m)
{
    return (c->flags & NN_CUDA_TF32) ? m : CUDNN_FMA_MATH;
}

static void entry_init(struct cu_ctx *c, struct cu_conv_entry *e, const struct nn_conv_desc *d)
{
    memset(e, 0, sizeof *e);
    e->used = 1;
    e->key = *d;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->xd));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->yd));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->bd));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&e->wd));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&e->cd));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->cin,
                                           d->h, d->w));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->cout,
                                           d->ho, d->wo));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, d->cout, 1, 1));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(e->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, d->cout,
                                           d->cin / d->groups, d->kh, d->kw));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(e->cd, d->ph, d->pw, d->sh, d->sw, d->dh, d->dw,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(e->cd, d->groups));
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, base_math(c)));
    int on, oc, oh, ow;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(e->cd, e->xd, e->wd, &on, &oc, &oh, &ow));
    if (on != d->n || oc != d->cout || oh != d->ho || ow != d->wo) {
        char msg[160];
        snprintf(msg, sizeof msg, "cuDNN computes output %dx%dx%dx%d, the graph %dx%dx%dx%d", on, oc,
                 oh, ow, d->n, d->cout, d->ho, d->wo);
        cu_fatal(__FILE__, __LINE__, "conv2d output shape", msg);
    }
}

static struct cu_conv_entry *entry_for(struct cu_ctx *c, const struct nn_conv_desc *d)
{
    if (c->conv_cap) {
        size_t j = key_hash(d, c->conv_cap);
        while (c->conv[j].used) {
            if (key_eq(&c->conv[j].key, d)) return &c->conv[j];
            j = (j + 1) & (c->conv_cap - 1);
        }
    }
    if ((c->conv_n + 1) * 2 > c->conv_cap) {
        size_t cap = c->conv_cap ? 2 * c->conv_cap : 64;
        struct cu_conv_entry *t = (struct cu_conv_entry *)calloc(cap, sizeof *t);
        if (!t) cu_fatal(__FILE__, __LINE__, "conv cache", "out of memory");
        for (size_t i = 0; i < c->conv_cap; i++) {
            if (!c->conv[i].used) continue;
            size_t j = key_hash(&c->conv[i].key, cap);
            while (t[j].used) j = (j + 1) & (cap - 1);
            t[j] = c->conv[i];
        }
        free(c->conv);
        c->conv = t;
        c->conv_cap = cap;
    }
    size_t j = key_hash(d, c->conv_cap);
    while (c->conv[j].used) j = (j + 1) & (c->conv_cap - 1);
    entry_init(c, &c->conv[j], d);
    c->conv_n++;
    return &c->conv[j];
}

/* --- choosing algorithms ------------------------------------------------------------ */

/* The three directions differ only in types and function names; one
 * template picks the first acceptable result of Find, then of Get_v7. */
template <typename Perf>
static int pick(const struct cu_ctx *c, const Perf *perf, int n)
{
    for (int strict = 1; strict >= 0; strict--)
        for (int i = 0; i < n; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= WS_LIMIT &&
                math_ok(c, perf[i].mathType, strict))
                return i;
    return -1;
}

static void choose_fwd(struct cu_ctx *c, struct cu_conv_entry *e)
{
    cudnnConvolutionFwdAlgoPerf_t perf[N_PERF];
    int n = 0, i = -1;
    /* as the other two: the descriptor may hold a backward direction's
     * math type when the entry's backward ran first */
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, base_math(c)));
    if (cudnnFindConvolutionForwardAlgorithm(c->dnn, e->xd, e->wd, e->cd, e->yd, N_PERF, &n, perf) ==
        CUDNN_STATUS_SUCCESS)
        i = pick(c, perf, n);
    if (i < 0 && cudnnGetConvolutionForwardAlgorithm_v7(c->dnn, e->xd, e->wd, e->cd, e->yd, N_PERF, &n,
                                                        perf) == CUDNN_STATUS_SUCCESS)
        i = pick(c, perf, n);
    e->fwd = i >= 0 ? perf[i].algo : CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    e->fwd_math = i >= 0 ? run_math(c, perf[i].mathType) : base_math(c);
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, e->fwd_math));
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(c->dnn, e->xd, e->wd, e->cd, e->yd, e->fwd,
                                                        &e->fwd_ws));
    e->have_fwd = 1;
}

static void choose_bwd_data(struct cu_ctx *c, struct cu_conv_entry *e)
{
    cudnnConvolutionBwdDataAlgoPerf_t perf[N_PERF];
    int n = 0, i = -1;
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, base_math(c)));
    if (cudnnFindConvolutionBackwardDataAlgorithm(c->dnn, e->wd, e->yd, e->cd, e->xd, N_PERF, &n,
                                                  perf) == CUDNN_STATUS_SUCCESS)
        i = pick(c, perf, n);
    if (i < 0 && cudnnGetConvolutionBackwardDataAlgorithm_v7(c->dnn, e->wd, e->yd, e->cd, e->xd, N_PERF,
                                                             &n, perf) == CUDNN_STATUS_SUCCESS)
        i = pick(c, perf, n);
    e->bwd_data = i >= 0 ? perf[i].algo : CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    e->data_math = i >= 0 ? run_math(c, perf[i].mathType) : base_math(c);
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, e->data_math));
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(c->dnn, e->wd, e->yd, e->cd, e->xd,
                                                             e->bwd_data, &e->data_ws));
    e->have_bwd_data = 1;
}

static void choose_bwd_filter(struct cu_ctx *c, struct cu_conv_entry *e)
{
    cudnnConvolutionBwdFilterAlgoPerf_t perf[N_PERF];
    int n = 0, i = -1;
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, base_math(c)));
    if (cudnnFindConvolutionBackwardFilterAlgorithm(c->dnn, e->xd, e->yd, e->cd, e->wd, N_PERF, &n,
                                                    perf) == CUDNN_STATUS_SUCCESS)
        i = pick(c, perf, n);
    if (i < 0 && cudnnGetConvolutionBackwardFilterAlgorithm_v7(c->dnn, e->xd, e->yd, e->cd, e->wd,
                                                               N_PERF, &n, perf) == CUDNN_STATUS_SUCCESS)
        i = pick(c, perf, n);
    e->bwd_filter = i >= 0 ? perf[i].algo : CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    e->filter_math = i >= 0 ? run_math(c, perf[i].mathType) : base_math(c);
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, e->filter_math));
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(c->dnn, e->xd, e->yd, e->cd, e->wd,
                                                               e->bwd_filter, &e->filter_ws));
    e->have_bwd_filter = 1;
}

/* --- the table's entries ------------------------------------------------------------ */

/* An algorithm that cuDNN chose but then refuses to run (NOT_SUPPORTED,
 * e.g. under the math type we hold it to) is replaced, once, by the plain
 * GEMM one of its direction, which every configuration supports. */
static int refused(cudnnStatus_t s) { return s == CUDNN_STATUS_NOT_SUPPORTED; }

void cu_conv2d_fwd(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                   const float *w, const float *b, float *y)
{
    struct cu_ctx *c = cu_ctx_of(be);
    struct cu_conv_entry *e = entry_for(c, d);
    if (!e->have_fwd) choose_fwd(c, e);
    for (;;) {
        void *ws = e->fwd_ws ? cu_workspace(c, e->fwd_ws) : NULL;
        CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, e->fwd_math));
        cudnnStatus_t st = cudnnConvolutionForward(c->dnn, &ONE, e->xd, x, e->wd, w, e->cd, e->fwd, ws,
                                                   e->fwd_ws, &ZERO, e->yd, y);
        if (refused(st) && e->fwd != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) {
            e->fwd = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
            e->fwd_math = base_math(c);
            CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, e->fwd_math));
            CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(c->dnn, e->xd, e->wd, e->cd, e->yd,
                                                                e->fwd, &e->fwd_ws));
            continue;
        }
        CUDNN_CHECK(st);
        break;
    }
    if (b) CUDNN_CHECK(cudnnAddTensor(c->dnn, &ONE, e->bd, b, &ONE, e->yd, y));
}

void cu_conv2d_bwd(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                   const float *w, const float *dy, float *dx, float *dw, float *db)
{
    struct cu_ctx *c = cu_ctx_of(be);
    struct cu_conv_entry *e = entry_for(c, d);
    if (db) CUDNN_CHECK(cudnnConvolutionBackwardBias(c->dnn, &ONE, e->yd, dy, &ONE, e->bd, db));
    while (dw) {
        if (!e->have_bwd_filter) choose_bwd_filter(c, e);
        void *ws = e->filter_ws ? cu_workspace(c, e->filter_ws) : NULL;
        CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, e->filter_math));
        cudnnStatus_t st = cudnnConvolutionBackwardFilter(c->dnn, &ONE, e->xd, x, e->yd, dy, e->cd,
                                                          e->bwd_filter, ws, e->filter_ws, &ONE, e->wd, dw);
        if (refused(st) && e->bwd_filter != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1) {
            e->bwd_filter = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
            e->filter_math = base_math(c);
            CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, e->filter_math));
            CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(c->dnn, e->xd, e->yd, e->cd, e->wd,
                                                                       e->bwd_filter, &e->filter_ws));
            continue;
        }
        CUDNN_CHECK(st);
        break;
    }
    while (dx) {
        if (!e->have_bwd_data) choose_bwd_data(c, e);
        void *ws = e->data_ws ? cu_workspace(c, e->data_ws) : NULL;
        CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, e->data_math));
        cudnnStatus_t st = cudnnConvolutionBackwardData(c->dnn, &ONE, e->wd, w, e->yd, dy, e->cd,
                                                        e->bwd_data, ws, e->data_ws, &ONE, e->xd, dx);
        if (refused(st) && e->bwd_data != CUDNN_CONVOLUTION_BWD_DATA_ALGO_1) {
            e->bwd_data = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
            e->data_math = base_math(c);
            CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd, e->data_math));
            CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(c->dnn, e->wd, e->yd, e->cd, e->xd,
                                                                     e->bwd_data, &e->data_ws));
            continue;
        }
        CUDNN_CHECK(st);
        break;
    }
}

/* --- linear layers: row-major through column-major cuBLAS ---------------------------
 *
 * nn/gemm_colmajor.h chooses each product's arguments (transposes, sizes,
 * leading dimensions, which buffer is A and B, beta); the same choice is
 * checked on the CPU by tests/unit/test_nn_gemm_map.c through
 * cblas_sgemm(CblasColMajor, ...).
 */
static void linear_gemm(struct cu_ctx *c, const struct gemm_colmajor *g, const float *const ops[3],
                        float *out)
{
    CUBLAS_CHECK(cublasSgemm(c->blas, g->transa ? CUBLAS_OP_T : CUBLAS_OP_N,
                             g->transb ? CUBLAS_OP_T : CUBLAS_OP_N, g->m, g->n, g->k, &ONE, ops[g->a],
                             g->lda, ops[g->b], g->ldb, &g->beta, out, g->ldc));
}

void cu_linear_fwd(struct nn_backend *be, int n, int in, int out, const float *x, const float *w,
                   const float *b, float *y)
{
    struct cu_ctx *c = cu_ctx_of(be);
    const float *ops[3] = {x, w, NULL};
    struct gemm_colmajor g = gemm_colmajor_linear_fwd(n, in, out);
    linear_gemm(c, &g, ops, y);
    if (b) cu_row_bias_add(c, y, b, n, out);
}

void cu_linear_bwd(struct nn_backend *be, int n, int in, int out, const float *x, const float *w,
                   const float *dy, float *dx, float *dw, float *db)
{
    struct cu_ctx *c = cu_ctx_of(be);
    const float *ops[3] = {x, w, dy};
    if (dx) {
        struct gemm_colmajor g = gemm_colmajor_linear_bwd_data(n, in, out);
        linear_gemm(c, &g, ops, dx);
    }
    if (dw) {
        struct gemm_colmajor g = gemm_colmajor_linear_bwd_filter(n, in, out);
        linear_gemm(c, &g, ops, dw);
    }
    if (db) cu_row_bias_grad(c, db, dy, n, out);
}

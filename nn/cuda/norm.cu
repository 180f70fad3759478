/*
 * norm.cu - pooling, batch norm and the global average pool on CUDA.
 *
 * Average pooling is cuDNN's CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING
 * (PyTorch's count_include_pad=False, the CPU backend's rule). Max
 * pooling is a kernel of ours: the CPU backend (and PyTorch) send a
 * window's gradient to its FIRST maximum and keep that argmax in the
 * op's aux slots, which cuDNN does not promise; the backward gathers per
 * input element (no atomics, deterministic). Both per-element rules are
 * in nn/kernel_math.h, which tests/unit/test_nn_cuda_math.c runs on
 * the host against the CPU backend.
 *
 * Training-mode batch norm is cuDNN's spatial batch norm: its saved mean
 * and inverse standard deviation are the table's `save` layout, its
 * running variance uses the unbiased batch variance (as PyTorch), and
 * alpha/beta = 1/1 make the backward accumulate. Without affine
 * parameters it gets a scale of ones and a bias of zeros; gradients that
 * are not wanted go to scratch. Inference-mode batch norm (running
 * statistics, which cuDNN's backward cannot take) is kernels of ours:
 * one pass for y, one per-channel reduction for the backward.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/cuda/internal.h"
#include "nn/kernel_math.h"

static const float ONE = 1.0f, ZERO = 0.0f;

/* --- max pooling ------------------------------------------------------------------- */

static struct cu_pool_dims dims_of(const struct nn_pool_desc *d)
{
    struct cu_pool_dims p = {d->n, d->c, d->h, d->w, d->kh, d->kw, d->sh, d->sw, d->ph, d->pw, d->ho, d->wo};
    return p;
}

/* the per-element rules are nn/kernel_math.h's (tested on the host) */
__global__ static void k_maxpool_fwd(struct cu_pool_dims d, const float *__restrict__ x,
                                     float *__restrict__ y, int32_t *__restrict__ arg, size_t total)
{
    for (size_t o = blockIdx.x * (size_t)blockDim.x + threadIdx.x; o < total;
         o += (size_t)gridDim.x * blockDim.x) {
        int32_t best;
        y[o] = cu_maxpool_out(d, x, o, &best);
        if (arg) arg[o] = best;
    }
}

/* dx[i] += sum of dy over the windows whose argmax is i */
__global__ static void k_maxpool_bwd(struct cu_pool_dims d, const int32_t *__restrict__ arg,
                                     const float *__restrict__ dy, float *__restrict__ dx, size_t total)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x)
        dx[i] += cu_maxpool_grad_in(d, arg, dy, i);
}

static void set_pool(struct cu_ctx *c, const struct nn_pool_desc *d)
{
    CUDNN_CHECK(cudnnSetPooling2dDescriptor(c->pool_desc, CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
                                            CUDNN_NOT_PROPAGATE_NAN, d->kh, d->kw, d->ph, d->pw, d->sh,
                                            d->sw));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(c->td_a, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->c, d->h,
                                           d->w));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(c->td_b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->c,
                                           d->ho, d->wo));
    int n, ch, h, w;
    CUDNN_CHECK(cudnnGetPooling2dForwardOutputDim(c->pool_desc, c->td_a, &n, &ch, &h, &w));
    if (h != d->ho || w != d->wo) {
        char msg[128];
        snprintf(msg, sizeof msg, "cuDNN computes %dx%d, the graph %dx%d", h, w, d->ho, d->wo);
        cu_fatal(__FILE__, __LINE__, "avg pool output shape", msg);
    }
}

void cu_pool2d_fwd(struct nn_backend *be, const struct nn_pool_desc *d, const float *x, float *y,
                   float *aux)
{
    struct cu_ctx *c = cu_ctx_of(be);
    if (d->is_max) {
        size_t total = (size_t)d->n * d->c * d->ho * d->wo;
        k_maxpool_fwd<<<cu_blocks(c, total), CU_THREADS>>>(dims_of(d), x, y, (int32_t *)(void *)aux,
                                                          total);
        CU_LAUNCHED();
        return;
    }
    set_pool(c, d);
    CUDNN_CHECK(cudnnPoolingForward(c->dnn, c->pool_desc, &ONE, c->td_a, x, &ZERO, c->td_b, y));
}

void cu_pool2d_bwd(struct nn_backend *be, const struct nn_pool_desc *d, const float *x,
                   const float *y, const float *aux, const float *dy, float *dx)
{
    struct cu_ctx *c = cu_ctx_of(be);
    if (d->is_max) {
        size_t total = (size_t)d->n * d->c * d->h * d->w;
        k_maxpool_bwd<<<cu_blocks(c, total), CU_THREADS>>>(dims_of(d), (const int32_t *)(const void *)aux,
                                                          dy, dx, total);
        CU_LAUNCHED();
        return;
    }
    set_pool(c, d);
    CUDNN_CHECK(cudnnPoolingBackward(c->dnn, c->pool_desc, &ONE, c->td_b, y, c->td_b, dy, c->td_a, x,
                                     &ONE, c->td_a, dx));
}

/* --- batch norm ---------------------------------------------------------------------- */

/* inference: save = (running mean, 1/sqrt(running var + eps)) */
__global__ static void k_bn_eval_save(int c, const float *rmean, const float *rvar, float eps,
                                      float *save)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    save[ch] = rmean[ch];
    save[c + ch] = (float)(1.0 / sqrt((double)rvar[ch] + (double)eps));
}

/* y = (x - mean) * inv * gamma + beta, with the CPU backend's a/b split */
__global__ static void k_bn_apply(int c, size_t hw, size_t total, const float *__restrict__ x,
                                  const float *__restrict__ gamma, const float *__restrict__ beta,
                                  const float *__restrict__ save, float *__restrict__ y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int ch = (int)((i / hw) % c);
        float mean = save[ch], inv = save[c + ch];
        float a = inv * (gamma ? gamma[ch] : 1.0f);
        float b = (beta ? beta[ch] : 0.0f) - mean * a;
        y[i] = x[i] * a + b;
    }
}

/* Per channel: red[2ch] += sum dy, red[2ch+1] += sum dy * (x - mean).
 * Grid: (channels, splits); each block takes a share of the channel's
 * n * hw values, sums in float, and adds its total in double. */
__global__ static void k_bn_sums(int n, int c, size_t hw, const float *__restrict__ x,
                                 const float *__restrict__ dy, const float *__restrict__ save,
                                 double *red)
{
    int ch = blockIdx.x;
    size_t cnt = (size_t)n * hw;
    float mean = save[ch];
    float a = 0.0f, b = 0.0f;
    for (size_t j = blockIdx.y * (size_t)blockDim.x + threadIdx.x; j < cnt;
         j += (size_t)gridDim.y * blockDim.x) {
        size_t i = (j / hw) * c * hw + (size_t)ch * hw + j % hw;
        float g = dy[i];
        a += g;
        b += g * (x[i] - mean);
    }
    for (int off = 16; off > 0; off >>= 1) {
        a += __shfl_down_sync(0xffffffffu, a, off);
        b += __shfl_down_sync(0xffffffffu, b, off);
    }
    __shared__ float sa[32], sb[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) {
        sa[warp] = a;
        sb[warp] = b;
    }
    __syncthreads();
    if (warp == 0) {
        int nw = (blockDim.x + 31) >> 5;
        a = lane < nw ? sa[lane] : 0.0f;
        b = lane < nw ? sb[lane] : 0.0f;
        for (int off = 16; off > 0; off >>= 1) {
            a += __shfl_down_sync(0xffffffffu, a, off);
            b += __shfl_down_sync(0xffffffffu, b, off);
        }
        if (lane == 0) {
            atomicAdd(&red[2 * ch], (double)a);
            atomicAdd(&red[2 * ch + 1], (double)b);
        }
    }
}

/* inference backward: dgamma += inv * sum dy (x - mean); dbeta += sum dy */
__global__ static void k_bn_eval_param_grads(int c, const float *save, const double *red,
                                             float *dgamma, float *dbeta)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    if (dgamma) dgamma[ch] += (float)(red[2 * ch + 1] * save[c + ch]);
    if (dbeta) dbeta[ch] += (float)red[2 * ch];
}

/* inference backward: dx += gamma * inv * dy (the statistics are constants) */
__global__ static void k_bn_eval_dx(int c, size_t hw, size_t total, const float *__restrict__ gamma,
                                    const float *__restrict__ save, const float *__restrict__ dy,
                                    float *__restrict__ dx)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int ch = (int)((i / hw) % c);
        dx[i] += (gamma ? gamma[ch] : 1.0f) * save[c + ch] * dy[i];
    }
}

/* cuDNN refuses an epsilon below CUDNN_BN_MIN_EPSILON (0 since cuDNN 8,
 * 1e-5 before, which the models' 1e-5f, 9.99999975e-6 as a double, is
 * just under). Clamping moves the result by less than float rounding. */
static double bn_eps(float eps)
{
    return fmax((double)eps, (double)CUDNN_BN_MIN_EPSILON);
}

static void set_bn(struct cu_ctx *c, int n, int ch, size_t hw)
{
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(c->td_a, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, ch, (int)hw, 1));
    CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(c->td_c, c->td_a, CUDNN_BATCHNORM_SPATIAL));
}

void cu_bn_fwd(struct nn_backend *be, int n, int c, size_t hw, const float *x, const float *gamma,
               const float *beta, float *rmean, float *rvar, float *y, float *save, int training,
               float momentum, float eps)
{
    struct cu_ctx *cx = cu_ctx_of(be);
    size_t total = (size_t)n * c * hw;
    if (!total) return;
    if (!training) {
        k_bn_eval_save<<<(c + 255) / 256, 256>>>(c, rmean, rvar, eps, save);
        CU_LAUNCHED();
        k_bn_apply<<<cu_blocks(cx, total), CU_THREADS>>>(c, hw, total, x, gamma, beta, save, y);
        CU_LAUNCHED();
        return;
    }
    const float *ones, *zeros;
    cu_ones_zeros(cx, (size_t)c, &ones, &zeros);
    set_bn(cx, n, c, hw);
    /* cuDNN takes both running statistics or neither */
    float *rm = rmean, *rv = rvar;
    if (!rm != !rv) {
        float *scratch = (float *)cu_workspace(cx, 2 * (size_t)c * sizeof(float));
        if (!rm) rm = scratch;
        if (!rv) rv = scratch + c;
    }
    CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
        cx->dnn, CUDNN_BATCHNORM_SPATIAL, &ONE, &ZERO, cx->td_a, x, cx->td_a, y, cx->td_c,
        gamma ? gamma : ones, beta ? beta : zeros, (double)momentum, rm, rv, bn_eps(eps), save,
        save + c));
}

void cu_bn_bwd(struct nn_backend *be, int n, int c, size_t hw, const float *x, const float *gamma,
               const float *save, const float *dy, float *dx, float *dgamma, float *dbeta,
               int training)
{
    struct cu_ctx *cx = cu_ctx_of(be);
    size_t total = (size_t)n * c * hw;
    if (!total) return;
    if (!training) {
        if (dgamma || dbeta) {
            double *red = cu_reduction(cx, 2 * (size_t)c);
            int splits = (int)((total / c + CU_THREADS * 8 - 1) / (CU_THREADS * 8));
            if (splits < 1) splits = 1;
            if (splits > 64) splits = 64;
            k_bn_sums<<<dim3(c, splits), CU_THREADS>>>(n, c, hw, x, dy, save, red);
            CU_LAUNCHED();
            k_bn_eval_param_grads<<<(c + 255) / 256, 256>>>(c, save, red, dgamma, dbeta);
            CU_LAUNCHED();
        }
        if (dx) {
            k_bn_eval_dx<<<cu_blocks(cx, total), CU_THREADS>>>(c, hw, total, gamma, save, dy, dx);
            CU_LAUNCHED();
        }
        return;
    }
    if (!dx && !dgamma && !dbeta) return;
    const float *ones, *zeros;
    cu_ones_zeros(cx, (size_t)c, &ones, &zeros);
    set_bn(cx, n, c, hw);
    /* scratch for what is not wanted: dx (total floats), dgamma, dbeta */
    size_t need = (dx ? 0 : total) + 2 * (size_t)c;
    float *scratch = (float *)cu_workspace(cx, need * sizeof(float));
    float *pdx = dx ? dx : scratch + 2 * c;
    float *pdg = dgamma ? dgamma : scratch;
    float *pdb = dbeta ? dbeta : scratch + c;
    const float beta_data = dx ? 1.0f : 0.0f;
    const float beta_param = (dgamma || dbeta) ? 1.0f : 0.0f;
    /* eps only matters when cuDNN recomputes the statistics, which it does
     * not with saved mean and inverse deviation given (the table's bn_bwd
     * has no eps; 1e-5 is the models' and >= CUDNN_BN_MIN_EPSILON) */
    CUDNN_CHECK(cudnnBatchNormalizationBackward(
        cx->dnn, CUDNN_BATCHNORM_SPATIAL, &ONE, &beta_data, &ONE, &beta_param, cx->td_a, x, cx->td_a,
        dy, cx->td_a, pdx, cx->td_c, gamma ? gamma : ones, pdg, pdb, 1e-5, save, save + c));
}

/* --- global average pool ------------------------------------------------------------ */

/* one warp per plane */
__global__ static void k_gap_fwd(size_t planes, size_t hw, const float *__restrict__ x,
                                 float *__restrict__ y)
{
    size_t warp = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    size_t nwarps = ((size_t)gridDim.x * blockDim.x) >> 5;
    for (size_t p = warp; p < planes; p += nwarps) {
        const float *xp = x + p * hw;
        double s = 0;
        for (size_t j = lane; j < hw; j += 32) s += xp[j];
        for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
        if (lane == 0) y[p] = (float)(s / (double)hw);
    }
}

__global__ static void k_gap_bwd(size_t total, size_t hw, const float *__restrict__ dy,
                                 float *__restrict__ dx)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x)
        dx[i] += dy[i / hw] / (float)hw;
}

void cu_gap_fwd(struct nn_backend *be, int n, int c, size_t hw, const float *x, float *y)
{
    struct cu_ctx *cx = cu_ctx_of(be);
    size_t planes = (size_t)n * c;
    k_gap_fwd<<<cu_blocks(cx, planes * 32), CU_THREADS>>>(planes, hw, x, y);
    CU_LAUNCHED();
}

void cu_gap_bwd(struct nn_backend *be, int n, int c, size_t hw, const float *dy, float *dx)
{
    struct cu_ctx *cx = cu_ctx_of(be);
    size_t total = (size_t)n * c * hw;
    k_gap_bwd<<<cu_blocks(cx, total), CU_THREADS>>>(total, hw, dy, dx);
    CU_LAUNCHED();
}

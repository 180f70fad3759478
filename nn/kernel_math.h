/*
 * kernel_math.h - per-row and per-element rules of the CNN engine's
 * kernels that both the GPU and the host run: nvcc compiles them as
 * __host__ __device__ functions for the .cu files in nn/cuda/, a C compiler as plain
 * static inline ones for nn/cpu.c and tests/unit/test_nn_cuda_math.c.
 * Pure C, no CUDA types (as nn/optim_math.h does for the optimizers).
 *
 * Two kinds of rules are here. Rows both backends run as they are (one
 * copy, so they cannot drift apart):
 *   - a softmax row forward and backward, and a softmax cross-entropy row
 *     (sums in double).
 * And the rules of the GPU's own loops, which the host runs only in tests:
 *   - max pooling: the forward per output (value and first-maximum
 *     argmax, as the CPU backend) and the backward as a GATHER per input
 *     element (the inverse of the window map: which outputs' windows
 *     cover an input; the CPU backend scatters instead);
 *   - the dropout mask's hash of (seed, i), which must equal the CPU
 *     backend's bit for bit (a copy of cpu_dropout_mask's loop, kept
 *     apart on purpose: the test compares the two).
 */
#ifndef PODIUM_NN_KERNEL_MATH_H
#define PODIUM_NN_KERNEL_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define CU_MATH_FN __host__ __device__ static inline
#else
#define CU_MATH_FN static inline
#endif

/* y = softmax(x) over k values, with the maximum taken out first. */
CU_MATH_FN void cu_softmax_row(float *y, const float *x, int k)
{
    float mx = x[0];
    for (int j = 1; j < k; j++) mx = x[j] > mx ? x[j] : mx;
    double s = 0;
    for (int j = 0; j < k; j++) s += exp((double)x[j] - mx);
    for (int j = 0; j < k; j++) y[j] = (float)(exp((double)x[j] - mx) / s);
}

/* dx += J^T dy for one softmax row y. */
CU_MATH_FN void cu_softmax_row_bwd(float *dx, const float *y, const float *dy, int k)
{
    double dot = 0;
    for (int j = 0; j < k; j++) dot += (double)y[j] * dy[j];
    for (int j = 0; j < k; j++) dx[j] += (float)(y[j] * (dy[j] - dot));
}

/* One row of softmax cross-entropy: the probabilities of logits z into p,
 * and the row's loss -log p[label]. */
CU_MATH_FN double cu_ce_row(float *p, const float *z, int k, int label)
{
    float mx = z[0];
    for (int j = 1; j < k; j++) mx = z[j] > mx ? z[j] : mx;
    double s = 0;
    for (int j = 0; j < k; j++) s += exp((double)z[j] - mx);
    double ls = log(s);
    for (int j = 0; j < k; j++) p[j] = (float)exp((double)z[j] - mx - ls);
    return -((double)z[label] - mx - ls);
}

/* nn_pool_desc's sizes, by value into a kernel */
struct cu_pool_dims {
    int n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo;
};

CU_MATH_FN int cu_imin(int a, int b) { return a < b ? a : b; }
CU_MATH_FN int cu_imax(int a, int b) { return a > b ? a : b; }

/* Output o (of n*c*ho*wo, NCHW): the maximum of its window clipped to the
 * input, and in *arg its offset within the plane (the first maximum in
 * row-major order; windows are never empty since padding < kernel). */
CU_MATH_FN float cu_maxpool_out(struct cu_pool_dims d, const float *x, size_t o, int32_t *arg)
{
    int ow = (int)(o % (size_t)d.wo);
    int oh = (int)((o / (size_t)d.wo) % (size_t)d.ho);
    size_t plane = o / ((size_t)d.wo * d.ho);
    const float *xp = x + plane * (size_t)d.h * d.w;
    int hs = oh * d.sh - d.ph, ws = ow * d.sw - d.pw;
    int h0 = cu_imax(hs, 0), w0 = cu_imax(ws, 0);
    int h1 = cu_imin(hs + d.kh, d.h), w1 = cu_imin(ws + d.kw, d.w);
    int best = h0 * d.w + w0;
    float v = xp[best];
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++) {
            float t = xp[ih * d.w + iw];
            if (t > v) {
                v = t;
                best = ih * d.w + iw;
            }
        }
    *arg = best;
    return v;
}

/* Input element i (of n*c*h*w): the sum of dy over the outputs whose
 * window covers it and whose argmax it is. Output oh covers input rows
 * [oh*sh - ph, oh*sh - ph + kh), so row ih is covered by
 * ceil((ih + ph - kh + 1) / sh) <= oh <= floor((ih + ph) / sh); the same
 * for columns. */
CU_MATH_FN float cu_maxpool_grad_in(struct cu_pool_dims d, const int32_t *arg, const float *dy, size_t i)
{
    int iw = (int)(i % (size_t)d.w);
    int ih = (int)((i / (size_t)d.w) % (size_t)d.h);
    size_t plane = i / ((size_t)d.w * d.h);
    int self = ih * d.w + iw;
    int oh0 = ih + d.ph - d.kh + 1, oh1 = ih + d.ph;
    oh0 = oh0 <= 0 ? 0 : (oh0 + d.sh - 1) / d.sh;
    oh1 = oh1 < 0 ? -1 : cu_imin(oh1 / d.sh, d.ho - 1);
    int ow0 = iw + d.pw - d.kw + 1, ow1 = iw + d.pw;
    ow0 = ow0 <= 0 ? 0 : (ow0 + d.sw - 1) / d.sw;
    ow1 = ow1 < 0 ? -1 : cu_imin(ow1 / d.sw, d.wo - 1);
    const int32_t *ap = arg + plane * (size_t)d.ho * d.wo;
    const float *gp = dy + plane * (size_t)d.ho * d.wo;
    float s = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++)
            if (ap[oh * d.wo + ow] == self) s += gp[oh * d.wo + ow];
    return s;
}

/* The dropout mask's element i: 0 with probability thr / 2^53, else
 * keep; splitmix64's finaliser over (seed, i), cpu_dropout_mask's rule. */
CU_MATH_FN float cu_dropout_at(uint64_t seed, size_t i, uint64_t thr, float keep)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (z >> 11) < thr ? 0.0f : keep;
}

#endif

/*
 * cpu_conv.c - the CPU backend's convolution and linear kernels.
 *
 * Convolution is im2col + SGEMM over a chunk of images at a time: the
 * columns of nb images sit side by side ([Cin*KH*KW, nb*Ho*Wo]), so one
 * GEMM per group covers the chunk and stays large even at 7x7 feature
 * maps; the GEMM's [Cout, nb*Ho*Wo] result is then scattered into NCHW.
 * Backward recomputes the columns, gathers dy into the same layout, and
 * runs dW += dY col^T and dcol = W^T dY (then col2im adds dcol into dx).
 * Depthwise convolutions (one input and one output channel per group)
 * skip the GEMMs and run direct loops.
 *
 * The scratch buffer is the backend's (cpu_scratch); chunks are sized to
 * keep it near SCRATCH_TARGET floats. Running out of memory for it is
 * fatal (the engine runs in trainer processes, which may fail fast).
 */
/* see cpu.c */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu_kernels.h"

#define SCRATCH_TARGET ((size_t)4 << 20) /* floats: 16 MB */

static float *scratch_or_die(struct nn_backend *be, size_t n)
{
    float *p = cpu_scratch(be, n);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory for %zu floats of convolution scratch\n", __FILE__,
                __LINE__, n);
        abort();
    }
    return p;
}

/* Valid output columns [lo, hi) for kernel offset off: 0 <= ow*s - p + off < w. */
static void valid_range(int wo, int s, int p, int off, int w, int *lo, int *hi)
{
    int a = p - off; /* need ow*s >= a */
    int l = a <= 0 ? 0 : (a + s - 1) / s;
    int b = w + p - off; /* need ow*s < b */
    int h = b <= 0 ? 0 : (b + s - 1) / s;
    if (h > wo) h = wo;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* One image's columns into col (row stride ld), or (col2im) back into x. */
static void im2col(const struct nn_conv_desc *d, const float *x, float *col, size_t ld)
{
    size_t r = 0;
    for (int c = 0; c < d->cin; c++)
        for (int ki = 0; ki < d->kh; ki++)
            for (int kj = 0; kj < d->kw; kj++, r++) {
                float *row = col + r * ld;
                int lo, hi;
                valid_range(d->wo, d->sw, d->pw, kj * d->dw, d->w, &lo, &hi);
                for (int oh = 0; oh < d->ho; oh++) {
                    float *o = row + (size_t)oh * d->wo;
                    int ih = oh * d->sh - d->ph + ki * d->dh;
                    if (ih < 0 || ih >= d->h) {
                        memset(o, 0, (size_t)d->wo * sizeof *o);
                        continue;
                    }
                    const float *xr = x + ((size_t)c * d->h + ih) * d->w;
                    int off = kj * d->dw - d->pw;
                    for (int ow = 0; ow < lo; ow++) o[ow] = 0.0f;
                    if (d->sw == 1 && hi > lo)
                        memcpy(o + lo, xr + off + lo, (size_t)(hi - lo) * sizeof *o);
                    else
                        for (int ow = lo; ow < hi; ow++) o[ow] = xr[off + ow * d->sw];
                    for (int ow = hi; ow < d->wo; ow++) o[ow] = 0.0f;
                }
            }
}

static void col2im(const struct nn_conv_desc *d, const float *col, size_t ld, float *x)
{
    size_t r = 0;
    for (int c = 0; c < d->cin; c++)
        for (int ki = 0; ki < d->kh; ki++)
            for (int kj = 0; kj < d->kw; kj++, r++) {
                const float *row = col + r * ld;
                int lo, hi;
                valid_range(d->wo, d->sw, d->pw, kj * d->dw, d->w, &lo, &hi);
                for (int oh = 0; oh < d->ho; oh++) {
                    int ih = oh * d->sh - d->ph + ki * d->dh;
                    if (ih < 0 || ih >= d->h) continue;
                    const float *o = row + (size_t)oh * d->wo;
                    float *xr = x + ((size_t)c * d->h + ih) * d->w;
                    int off = kj * d->dw - d->pw;
                    for (int ow = lo; ow < hi; ow++) xr[off + ow * d->sw] += o[ow];
                }
            }
}

static int chunk_images(const struct nn_conv_desc *d)
{
    size_t hw = (size_t)d->ho * d->wo;
    size_t per = ((size_t)d->cin * d->kh * d->kw + (size_t)d->cout) * hw;
    size_t nb = SCRATCH_TARGET / (per ? per : 1);
    if (nb < 1) nb = 1;
    if (nb > (size_t)d->n) nb = (size_t)d->n;
    return (int)nb;
}

static int is_depthwise(const struct nn_conv_desc *d)
{
    return d->groups == d->cin && d->cout == d->cin && d->groups > 1;
}

/* Per-image work of one chunk, split across the backend's threads. */
struct chunk_args {
    const struct nn_conv_desc *d;
    const float *x, *b, *dy, *w;
    float *y, *col, *out, *dx, *dw, *db;
    size_t ld, hw, inhw;
    int n0, m;
};

static void im2col_range(void *v, size_t lo, size_t hi)
{
    const struct chunk_args *A = v;
    for (size_t i = lo; i < hi; i++)
        im2col(A->d, A->x + (size_t)(A->n0 + (int)i) * A->d->cin * A->inhw, A->col + i * A->hw, A->ld);
}

static void col2im_range(void *v, size_t lo, size_t hi)
{
    const struct chunk_args *A = v;
    for (size_t i = lo; i < hi; i++)
        col2im(A->d, A->col + i * A->hw, A->ld, A->dx + (size_t)(A->n0 + (int)i) * A->d->cin * A->inhw);
}

/* out [Cout, m*hw] (+ bias) -> y NCHW */
static void scatter_range(void *v, size_t lo, size_t hi)
{
    const struct chunk_args *A = v;
    const struct nn_conv_desc *d = A->d;
    for (size_t i = lo; i < hi; i++)
        for (int co = 0; co < d->cout; co++) {
            float *dst = A->y + ((size_t)(A->n0 + (int)i) * d->cout + co) * A->hw;
            const float *src = A->out + co * A->ld + i * A->hw;
            float bias = A->b ? A->b[co] : 0.0f;
            for (size_t j = 0; j < A->hw; j++) dst[j] = src[j] + bias;
        }
}

/* dy NCHW -> [Cout, m*hw] in out */
static void gather_range(void *v, size_t lo, size_t hi)
{
    const struct chunk_args *A = v;
    const struct nn_conv_desc *d = A->d;
    for (size_t i = lo; i < hi; i++)
        for (int co = 0; co < d->cout; co++)
            memcpy(A->out + co * A->ld + i * A->hw, A->dy + ((size_t)(A->n0 + (int)i) * d->cout + co) * A->hw,
                   A->hw * sizeof(float));
}

/* --- depthwise: direct loops --------------------------------------------------- */

/* Threads split the channels: each owns its channels' dw and db. */
static void dw_fwd_range(void *v, size_t c_lo, size_t c_hi)
{
    const struct chunk_args *A = v;
    const struct nn_conv_desc *d = A->d;
    const float *x = A->x, *w = A->w, *b = A->b;
    float *y = A->y;
    size_t hw = (size_t)d->ho * d->wo;
    for (int i = 0; i < d->n; i++)
        for (int c = (int)c_lo; c < (int)c_hi; c++) {
            const float *xp = x + ((size_t)i * d->cin + c) * d->h * d->w;
            const float *wp = w + (size_t)c * d->kh * d->kw;
            float *yp = y + ((size_t)i * d->cout + c) * hw;
            float bias = b ? b[c] : 0.0f;
            for (size_t j = 0; j < hw; j++) yp[j] = bias;
            for (int ki = 0; ki < d->kh; ki++)
                for (int kj = 0; kj < d->kw; kj++) {
                    float wv = wp[ki * d->kw + kj];
                    int lo, hi;
                    valid_range(d->wo, d->sw, d->pw, kj * d->dw, d->w, &lo, &hi);
                    for (int oh = 0; oh < d->ho; oh++) {
                        int ih = oh * d->sh - d->ph + ki * d->dh;
                        if (ih < 0 || ih >= d->h) continue;
                        const float *xr = xp + (size_t)ih * d->w;
                        int off = kj * d->dw - d->pw;
                        float *o = yp + (size_t)oh * d->wo;
                        for (int ow = lo; ow < hi; ow++) o[ow] += wv * xr[off + ow * d->sw];
                    }
                }
        }
}

static void dw_bwd_range(void *v, size_t c_lo, size_t c_hi)
{
    const struct chunk_args *A = v;
    const struct nn_conv_desc *d = A->d;
    const float *x = A->x, *w = A->w, *dy = A->dy;
    float *dx = A->dx, *dw = A->dw, *db = A->db;
    size_t hw = (size_t)d->ho * d->wo;
    for (int i = 0; i < d->n; i++)
        for (int c = (int)c_lo; c < (int)c_hi; c++) {
            const float *xp = x + ((size_t)i * d->cin + c) * d->h * d->w;
            float *dxp = dx ? dx + ((size_t)i * d->cin + c) * d->h * d->w : NULL;
            const float *wp = w + (size_t)c * d->kh * d->kw;
            const float *g = dy + ((size_t)i * d->cout + c) * hw;
            if (db) {
                double s = 0;
                for (size_t j = 0; j < hw; j++) s += g[j];
                db[c] += (float)s;
            }
            for (int ki = 0; ki < d->kh; ki++)
                for (int kj = 0; kj < d->kw; kj++) {
                    float wv = wp[ki * d->kw + kj];
                    double sw = 0;
                    int lo, hi;
                    valid_range(d->wo, d->sw, d->pw, kj * d->dw, d->w, &lo, &hi);
                    for (int oh = 0; oh < d->ho; oh++) {
                        int ih = oh * d->sh - d->ph + ki * d->dh;
                        if (ih < 0 || ih >= d->h) continue;
                        size_t row = (size_t)ih * d->w;
                        int off = kj * d->dw - d->pw;
                        const float *xr = xp + row;
                        const float *go = g + (size_t)oh * d->wo;
                        float acc = 0;
                        for (int ow = lo; ow < hi; ow++) acc += go[ow] * xr[off + ow * d->sw];
                        sw += acc;
                        if (dxp) {
                            float *dxr = dxp + row;
                            for (int ow = lo; ow < hi; ow++) dxr[off + ow * d->sw] += wv * go[ow];
                        }
                    }
                    if (dw) dw[(size_t)c * d->kh * d->kw + ki * d->kw + kj] += (float)sw;
                }
        }
}

/* --- GEMM split over the backend's threads ------------------------------------ */

/* OpenBLAS runs single-threaded (nn_backend_cpu_new): its own threads and
 * the backend's pool fought over the cores (a quarter of a 2-thread step
 * went to the scheduler). Instead the backend splits each GEMM: C's
 * columns when it is wide (the im2col GEMMs: N = pixels of a chunk), else
 * C's rows, into slices that are independent GEMMs. */
struct gemm_args {
    enum CBLAS_TRANSPOSE ta, tb;
    int m, n, k, lda, ldb, ldc, by_cols;
    float alpha, beta;
    const float *a, *b;
    float *c;
};

static void gemm_range(void *v, size_t lo, size_t hi)
{
    const struct gemm_args *G = v;
    int l = (int)lo, len = (int)(hi - lo);
    if (G->by_cols) {   /* C[:, lo:hi] = op(A) op(B)[:, lo:hi] */
        const float *b = G->tb == CblasNoTrans ? G->b + l : G->b + (size_t)l * G->ldb;
        cblas_sgemm(CblasRowMajor, G->ta, G->tb, G->m, len, G->k, G->alpha, G->a, G->lda, b,
                    G->ldb, G->beta, G->c + l, G->ldc);
    } else {            /* C[lo:hi, :] = op(A)[lo:hi, :] op(B) */
        const float *a = G->ta == CblasNoTrans ? G->a + (size_t)l * G->lda : G->a + l;
        cblas_sgemm(CblasRowMajor, G->ta, G->tb, len, G->n, G->k, G->alpha, a, G->lda, G->b,
                    G->ldb, G->beta, G->c + (size_t)l * G->ldc, G->ldc);
    }
}

static void sgemm_par(struct nn_backend *be, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                      int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                      int ldb, float beta, float *c, int ldc)
{
    struct gemm_args G = {ta, tb, m, n, k, lda, ldb, ldc, n >= m, alpha, beta, a, b, c};
    size_t cost = (size_t)m * n * k;
    cpu_parallel(be, (size_t)(G.by_cols ? n : m), cost / 4, gemm_range, &G);
}

/* --- general: im2col + GEMM ------------------------------------------------------ */

void cpu_conv2d_fwd(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                    const float *w, const float *b, float *y)
{
    if (is_depthwise(d)) {
        struct chunk_args A = {.d = d, .x = x, .w = w, .b = b, .y = y};
        size_t cost = (size_t)d->n * d->cout * d->ho * d->wo * d->kh * d->kw;
        cpu_parallel(be, (size_t)d->cin, cost, dw_fwd_range, &A);
        return;
    }
    size_t hw = (size_t)d->ho * d->wo, inhw = (size_t)d->h * d->w;
    int kg = d->cin / d->groups * d->kh * d->kw, cog = d->cout / d->groups;
    size_t kfull = (size_t)d->cin * d->kh * d->kw;
    int nb = chunk_images(d);
    float *col = scratch_or_die(be, (kfull + (size_t)d->cout) * hw * nb);
    for (int n0 = 0; n0 < d->n; n0 += nb) {
        int m = d->n - n0 < nb ? d->n - n0 : nb;
        size_t ld = (size_t)m * hw;
        /* one image: the GEMM can write y directly (layout [Cout, HW]) */
        float *out = m == 1 ? y + (size_t)n0 * d->cout * hw : col + kfull * ld;
        struct chunk_args A = {.d = d, .x = x, .b = b, .y = y, .col = col, .out = out, .ld = ld,
                               .hw = hw, .inhw = inhw, .n0 = n0, .m = m};
        cpu_parallel(be, (size_t)m, kfull * ld, im2col_range, &A);
        for (int g = 0; g < d->groups; g++)
            sgemm_par(be, CblasNoTrans, CblasNoTrans, cog, (int)ld, kg, 1.0f,
                      w + (size_t)g * cog * kg, kg, col + (size_t)g * kg * ld, (int)ld, 0.0f,
                      out + (size_t)g * cog * ld, (int)ld);
        if (m > 1) {
            cpu_parallel(be, (size_t)m, (size_t)d->cout * ld, scatter_range, &A);
        } else if (b) {
            for (int co = 0; co < d->cout; co++)
                for (size_t j = 0; j < hw; j++) out[co * hw + j] += b[co];
        }
    }
}

void cpu_conv2d_bwd(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                    const float *w, const float *dy, float *dx, float *dw, float *db)
{
    if (is_depthwise(d)) {
        struct chunk_args A = {.d = d, .x = x, .w = w, .dy = dy, .dx = dx, .dw = dw, .db = db};
        size_t cost = (size_t)d->n * d->cout * d->ho * d->wo * d->kh * d->kw;
        cpu_parallel(be, (size_t)d->cin, cost, dw_bwd_range, &A);
        return;
    }
    size_t hw = (size_t)d->ho * d->wo, inhw = (size_t)d->h * d->w;
    int kg = d->cin / d->groups * d->kh * d->kw, cog = d->cout / d->groups;
    size_t kfull = (size_t)d->cin * d->kh * d->kw;
    if (db)
        for (int i = 0; i < d->n; i++)
            for (int co = 0; co < d->cout; co++) {
                const float *g = dy + ((size_t)i * d->cout + co) * hw;
                float s = 0;
                for (size_t j = 0; j < hw; j++) s += g[j];
                db[co] += s;
            }
    if (!dx && !dw) return;
    int nb = chunk_images(d);
    float *col = scratch_or_die(be, (kfull + (size_t)d->cout) * hw * nb);
    for (int n0 = 0; n0 < d->n; n0 += nb) {
        int m = d->n - n0 < nb ? d->n - n0 : nb;
        size_t ld = (size_t)m * hw;
        struct chunk_args A = {.d = d, .x = x, .dy = dy, .col = col, .out = col + kfull * ld,
                               .dx = dx, .ld = ld, .hw = hw, .inhw = inhw, .n0 = n0, .m = m};
        const float *dyt;
        if (m == 1) {
            dyt = dy + (size_t)n0 * d->cout * hw;
        } else {
            cpu_parallel(be, (size_t)m, (size_t)d->cout * ld, gather_range, &A);
            dyt = A.out;
        }
        if (dw) {
            cpu_parallel(be, (size_t)m, kfull * ld, im2col_range, &A);
            for (int g = 0; g < d->groups; g++)
                sgemm_par(be, CblasNoTrans, CblasTrans, cog, kg, (int)ld, 1.0f,
                          dyt + (size_t)g * cog * ld, (int)ld, col + (size_t)g * kg * ld, (int)ld,
                          1.0f, dw + (size_t)g * cog * kg, kg);
        }
        if (dx) {
            for (int g = 0; g < d->groups; g++)
                sgemm_par(be, CblasTrans, CblasNoTrans, kg, (int)ld, cog, 1.0f,
                          w + (size_t)g * cog * kg, kg, dyt + (size_t)g * cog * ld, (int)ld, 0.0f,
                          col + (size_t)g * kg * ld, (int)ld);
            cpu_parallel(be, (size_t)m, kfull * ld, col2im_range, &A);
        }
    }
}

/* --- linear ------------------------------------------------------------------------ */

void cpu_linear_fwd(struct nn_backend *be, int n, int in, int out, const float *x, const float *w,
                    const float *b, float *y)
{
    (void)be;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (b)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < out; j++) y[(size_t)i * out + j] += b[j];
}

void cpu_linear_bwd(struct nn_backend *be, int n, int in, int out, const float *x, const float *w,
                    const float *dy, float *dx, float *dw, float *db)
{
    (void)be;
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, w, in, 1.0f,
                    dx, in);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f,
                    dw, in);
    if (db)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < out; j++) db[j] += dy[(size_t)i * out + j];
}

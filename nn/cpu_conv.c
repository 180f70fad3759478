/*
 * cpu_conv.c - the CPU backend's convolution and linear kernels.
 *
 * Convolution is im2col + SGEMM, the images split over the backend's
 * threads (each thread runs the whole convolution on its share, one job
 * per call), a chunk of images at a time: the columns of nb images sit
 * side by side ([Cin*KH*KW, nb*Ho*Wo]) and one GEMM per group covers the
 * chunk; with one image per chunk (the usual case) the GEMM writes y
 * directly, else its [Cout, nb*Ho*Wo] result is scattered into NCHW.
 * Backward recomputes the columns, gathers dy into the same layout, and
 * runs dW += dY col^T (into a partial dW per thread, added up in thread
 * order) and dcol = W^T dY (then col2im adds dcol into dx). im2col reads
 * a zero-padded copy of each input plane, so no tap needs bounds.
 * Special cases: depthwise convolutions (one input and one output channel
 * per group) run direct loops; pointwise ones (1x1, stride 1, no padding)
 * need no columns, one GEMM per image between the tensors.
 *
 * Scratch buffers are the backend's, one per thread (cpu_slot_scratch).
 * Running out of memory for them is fatal (the engine runs in trainer
 * processes, which may fail fast).
 */
/* see cpu.c; and the copy loops of im2col (rows of 7 to 28 floats) stay
 * loops instead of becoming memcpy calls, whose cost per call was most
 * of im2col's */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-tree-loop-distribute-patterns")
#endif

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu_kernels.h"

/* Images per chunk: enough for MIN_COLS GEMM columns, within SCRATCH_TARGET
 * floats of columns and GEMM output. One image at a time was as fast as any
 * larger chunk on the benchmarks (bench/nn_step.py, bench/darts_step.py: no
 * gather of dy, no scatter of y, the columns stay in the cache); chunks
 * only keep the GEMMs of tiny feature maps from being tiny. */
#define SCRATCH_TARGET ((size_t)1 << 16) /* floats: 256 KB */
#define MIN_COLS 64

static float *slot_scratch_or_die(struct nn_backend *be, int slot, size_t n)
{
    float *p = cpu_slot_scratch(be, slot, n);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory for %zu floats of convolution scratch\n", __FILE__,
                __LINE__, n);
        abort();
    }
    return p;
}

/* Valid output columns [lo, hi) for kernel offset off: 0 <= ow*s - p + off < w
 * (the depthwise loops at stride > 1). */
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

/* im2col and col2im go through a zero-padded copy P of one input plane,
 * Hp x Wp with Hp = (ho-1) sh + (kh-1) dh + 1 (likewise Wp): the input under
 * tap (ki, kj) at output (oh, ow) is P[oh sh + ki dh][ow sw + kj dw], with
 * no bounds to check. A row of columns is then ho short copies (a tap's
 * valid range per row, a memset/memcpy pair per output row and a bounds
 * computation per tap before: a fifth of a training step). */
struct pad_geom { int hp, wp; size_t pn; };

static struct pad_geom pad_geom(const struct nn_conv_desc *d)
{
    struct pad_geom g;
    g.hp = (d->ho - 1) * d->sh + (d->kh - 1) * d->dh + 1;
    g.wp = (d->wo - 1) * d->sw + (d->kw - 1) * d->dw + 1;
    g.pn = (size_t)g.hp * g.wp;
    return g;
}

static float *buf_or_die(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory for %zu floats of convolution scratch\n", __FILE__,
                __LINE__, n);
        abort();
    }
    return p;
}

/* P (hp x wp) = the plane xp (h x w) at offset (ph, pw), zeros elsewhere;
 * the parts of x past P's far edges (never under a tap) are left out. */
static void pad_plane(const struct nn_conv_desc *d, const struct pad_geom *g, const float *xp,
                      float *restrict P)
{
    int c0 = d->pw, c1 = d->pw + d->w < g->wp ? d->pw + d->w : g->wp;
    for (int r = 0; r < g->hp; r++) {
        float *restrict o = P + (size_t)r * g->wp;
        int ih = r - d->ph;
        if (ih < 0 || ih >= d->h) {
            for (int j = 0; j < g->wp; j++) o[j] = 0.0f;
            continue;
        }
        const float *restrict xr = xp + (size_t)ih * d->w;
        for (int j = 0; j < c0; j++) o[j] = 0.0f;
        for (int j = c0; j < c1; j++) o[j] = xr[j - c0];
        for (int j = c1; j < g->wp; j++) o[j] = 0.0f;
    }
}

/* One image's columns into col (row stride ld); P: g->pn floats. */
static void im2col(const struct nn_conv_desc *d, const struct pad_geom *g, const float *x,
                   float *col, size_t ld, float *P)
{
    size_t r = 0;
    if (d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0) {
        for (int c = 0; c < d->cin; c++)   /* the columns are the planes */
            memcpy(col + (size_t)c * ld, x + (size_t)c * d->h * d->w,
                   (size_t)d->h * d->w * sizeof *col);
        return;
    }
    for (int c = 0; c < d->cin; c++) {
        pad_plane(d, g, x + (size_t)c * d->h * d->w, P);
        for (int ki = 0; ki < d->kh; ki++)
            for (int kj = 0; kj < d->kw; kj++, r++) {
                float *restrict row = col + r * ld;
                const float *restrict src = P + (size_t)ki * d->dh * g->wp + kj * d->dw;
                for (int oh = 0; oh < d->ho; oh++) {
                    float *restrict o = row + (size_t)oh * d->wo;
                    const float *restrict s = src + (size_t)oh * d->sh * g->wp;
                    if (d->sw == 1)
                        for (int ow = 0; ow < d->wo; ow++) o[ow] = s[ow];
                    else
                        for (int ow = 0; ow < d->wo; ow++) o[ow] = s[ow * d->sw];
                }
            }
    }
}

/* x += col2im(col): each channel's taps are summed into P, then P's
 * part over the input is added to x. */
static void col2im(const struct nn_conv_desc *d, const struct pad_geom *g, const float *col,
                   size_t ld, float *x, float *P)
{
    size_t r = 0;
    for (int c = 0; c < d->cin; c++) {
        memset(P, 0, g->pn * sizeof *P);
        for (int ki = 0; ki < d->kh; ki++)
            for (int kj = 0; kj < d->kw; kj++, r++) {
                const float *restrict row = col + r * ld;
                float *restrict dst = P + (size_t)ki * d->dh * g->wp + kj * d->dw;
                for (int oh = 0; oh < d->ho; oh++) {
                    const float *restrict o = row + (size_t)oh * d->wo;
                    float *restrict q = dst + (size_t)oh * d->sh * g->wp;
                    if (d->sw == 1)
                        for (int ow = 0; ow < d->wo; ow++) q[ow] += o[ow];
                    else
                        for (int ow = 0; ow < d->wo; ow++) q[ow * d->sw] += o[ow];
                }
            }
        float *xp = x + (size_t)c * d->h * d->w;
        int c0 = d->pw, c1 = d->pw + d->w < g->wp ? d->pw + d->w : g->wp;
        for (int ih = 0; ih < d->h; ih++) {
            int rr = ih + d->ph;
            if (rr >= g->hp) break;
            float *restrict xr = xp + (size_t)ih * d->w;
            const float *restrict q = P + (size_t)rr * g->wp + c0;
            for (int j = 0; j < c1 - c0; j++) xr[j] += q[j];
        }
    }
}

static int chunk_images(const struct nn_conv_desc *d)
{
    size_t hw = (size_t)d->ho * d->wo;
    size_t per = ((size_t)d->cin * d->kh * d->kw + (size_t)d->cout) * hw;
    size_t nb = (MIN_COLS + hw - 1) / (hw ? hw : 1);
    if (nb * per > SCRATCH_TARGET) nb = SCRATCH_TARGET / (per ? per : 1);
    if (nb < 1) nb = 1;
    if (nb > (size_t)d->n) nb = (size_t)d->n;
    return (int)nb;
}

static int is_depthwise(const struct nn_conv_desc *d)
{
    return d->groups == d->cin && d->cout == d->cin && d->groups > 1;
}

/* arguments of the depthwise and pointwise range functions */
struct op_args {
    const struct nn_conv_desc *d;
    const float *x, *b, *dy, *w;
    float *y, *dx, *dw, *db;
    size_t hw;
};

/* --- depthwise: direct loops --------------------------------------------------- */

/* Threads split the channels: each owns its channels' dw and db. */

/* Stride 1 (DARTS' separable and dilated convolutions), over the padded
 * plane P of im2col: the output is computed Wp wide (the last Wp - wo
 * columns of each row are junk, never copied out), so that each tap is one
 * long contiguous loop of L = (ho-1) Wp + wo values that vectorises,
 * instead of ho short rows with clipped ends. Backward lays dy out the same
 * way with zeros in the junk columns: dw[tap] is then a dot product of
 * length L and dP += w[tap] dy' a long axpy. */
static void dw_axpy(float *restrict y, float a, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

/* sum a[i] b[i] in LANES partial sums, added in a fixed order */
#define LANES 8
static float dw_dot(const float *restrict a, const float *restrict b, size_t n)
{
    float s[LANES] = {0}, t = 0;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) s[k] += a[i + k] * b[i + k];
    for (; i < n; i++) t += a[i] * b[i];
    return (((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))) + t;
}

static void dw1_fwd_range(void *v, size_t c_lo, size_t c_hi)
{
    const struct op_args *A = v;
    const struct nn_conv_desc *d = A->d;
    struct pad_geom g = pad_geom(d);
    size_t l = (size_t)(d->ho - 1) * g.wp + d->wo; /* the Wp-wide output */
    float *P = buf_or_die(2 * g.pn), *acc = P + g.pn;
    size_t hw = (size_t)d->ho * d->wo;
    for (int c = (int)c_lo; c < (int)c_hi; c++) {
        const float *wp = A->w + (size_t)c * d->kh * d->kw;
        float bias = A->b ? A->b[c] : 0.0f;
        for (int i = 0; i < d->n; i++) {
            pad_plane(d, &g, A->x + ((size_t)i * d->cin + c) * d->h * d->w, P);
            for (size_t j = 0; j < l; j++) acc[j] = bias;
            for (int ki = 0; ki < d->kh; ki++)
                for (int kj = 0; kj < d->kw; kj++)
                    dw_axpy(acc, wp[ki * d->kw + kj], P + (size_t)ki * d->dh * g.wp + kj * d->dw,
                            l);
            float *yp = A->y + ((size_t)i * d->cout + c) * hw;
            for (int oh = 0; oh < d->ho; oh++)
                memcpy(yp + (size_t)oh * d->wo, acc + (size_t)oh * g.wp, (size_t)d->wo * sizeof *yp);
        }
    }
    free(P);
}

static void dw1_bwd_range(void *v, size_t c_lo, size_t c_hi)
{
    const struct op_args *A = v;
    const struct nn_conv_desc *d = A->d;
    struct pad_geom g = pad_geom(d);
    size_t l = (size_t)(d->ho - 1) * g.wp + d->wo;
    int taps = d->kh * d->kw;
    float *P = buf_or_die(3 * g.pn), *G = P + g.pn, *dP = G + g.pn;
    double *sw = calloc((size_t)taps, sizeof *sw);
    if (!sw) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }
    size_t hw = (size_t)d->ho * d->wo;
    for (int c = (int)c_lo; c < (int)c_hi; c++) {
        const float *wp = A->w + (size_t)c * taps;
        double sb = 0;
        for (int t = 0; t < taps; t++) sw[t] = 0;
        for (int i = 0; i < d->n; i++) {
            const float *gp = A->dy + ((size_t)i * d->cout + c) * hw;
            if (A->db) {
                float s = 0;
                for (size_t j = 0; j < hw; j++) s += gp[j];
                sb += s;
            }
            /* dy, Wp wide with zeros in the junk columns */
            memset(G, 0, l * sizeof *G);
            for (int oh = 0; oh < d->ho; oh++)
                memcpy(G + (size_t)oh * g.wp, gp + (size_t)oh * d->wo, (size_t)d->wo * sizeof *G);
            if (A->dw) {
                pad_plane(d, &g, A->x + ((size_t)i * d->cin + c) * d->h * d->w, P);
                for (int ki = 0; ki < d->kh; ki++)
                    for (int kj = 0; kj < d->kw; kj++)
                        sw[ki * d->kw + kj] +=
                            dw_dot(G, P + (size_t)ki * d->dh * g.wp + kj * d->dw, l);
            }
            if (A->dx) {
                memset(dP, 0, g.pn * sizeof *dP);
                for (int ki = 0; ki < d->kh; ki++)
                    for (int kj = 0; kj < d->kw; kj++)
                        dw_axpy(dP + (size_t)ki * d->dh * g.wp + kj * d->dw, wp[ki * d->kw + kj],
                                G, l);
                /* dx += the part of dP over the input */
                float *dxp = A->dx + ((size_t)i * d->cin + c) * d->h * d->w;
                int wn = d->pw + d->w < g.wp ? d->w : g.wp - d->pw;
                for (int ih = 0; ih < d->h && ih + d->ph < g.hp; ih++) {
                    float *restrict o = dxp + (size_t)ih * d->w;
                    const float *restrict q = dP + (size_t)(ih + d->ph) * g.wp + d->pw;
                    for (int iw = 0; iw < wn; iw++) o[iw] += q[iw];
                }
            }
        }
        if (A->db) A->db[c] += (float)sb;
        if (A->dw)
            for (int t = 0; t < taps; t++) A->dw[(size_t)c * taps + t] += (float)sw[t];
    }
    free(sw);
    free(P);
}

/* Any stride: row by row, clipping each tap's columns. */
static void dw_fwd_range(void *v, size_t c_lo, size_t c_hi)
{
    const struct op_args *A = v;
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
    const struct op_args *A = v;
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

/* --- pointwise: 1x1, stride 1, no padding, one group ------------------------------ */

/* An image's input [Cin, HW] is its own column matrix, so forward and the
 * input gradient are one GEMM per image straight between the tensors:
 * y_i = W x_i and dx_i += W^T dy_i (no im2col, no scatter, no col2im; these
 * are most of DARTS' convolutions). Threads split the images. The weight
 * gradient sums over images, so it keeps the chunked path (one long GEMM
 * whose result does not depend on the thread count). */
static int is_pointwise(const struct nn_conv_desc *d)
{
    return d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0 &&
           d->groups == 1;
}

static void pw_fwd_range(void *v, size_t lo, size_t hi)
{
    const struct op_args *A = v;
    const struct nn_conv_desc *d = A->d;
    for (size_t i = lo; i < hi; i++) {
        float *y = A->y + i * d->cout * A->hw;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->cout, (int)A->hw, d->cin, 1.0f,
                    A->w, d->cin, A->x + i * d->cin * A->hw, (int)A->hw, 0.0f, y, (int)A->hw);
        if (A->b)
            for (int co = 0; co < d->cout; co++)
                for (size_t j = 0; j < A->hw; j++) y[co * A->hw + j] += A->b[co];
    }
}

static void pw_dx_range(void *v, size_t lo, size_t hi)
{
    const struct op_args *A = v;
    const struct nn_conv_desc *d = A->d;
    for (size_t i = lo; i < hi; i++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d->cin, (int)A->hw, d->cout, 1.0f,
                    A->w, d->cin, A->dy + i * d->cout * A->hw, (int)A->hw, 1.0f,
                    A->dx + i * d->cin * A->hw, (int)A->hw);
}

/* --- general: im2col + GEMM, the images split over the threads -------------------- */

/* Each thread (slot t of the backend's `threads`) takes a contiguous share
 * of the images and runs the whole convolution on it, chunk by chunk, in a
 * scratch buffer of its own: im2col, one single-threaded GEMM per group,
 * then the scatter into NCHW (forward), or the gather of dy, the weight
 * gradient GEMM into the slot's own partial dW, the input-gradient GEMM and
 * col2im (backward). One job per call instead of three per chunk: on a
 * loaded machine every join waits for the slowest thread, and a chunk sized
 * to stay in the cache (SCRATCH_TARGET) made many. The partial dWs are
 * added into dw in slot order afterwards, so the result depends on the
 * thread count (it sets the shares) but not on timing. */
struct conv_job {
    struct nn_backend *be;
    const struct nn_conv_desc *d;
    const float *x, *w, *b, *dy;
    float *y, *dx, *dw;
    int slots;
    float *part[CPU_MAX_THREADS]; /* backward: slot t's partial dW */
};

struct conv_geom {
    size_t hw, inhw, kfull, pn;
    int kg, cog, nb;
    struct pad_geom g;
};

static struct conv_geom conv_geom(const struct nn_conv_desc *d)
{
    struct conv_geom c;
    c.hw = (size_t)d->ho * d->wo;
    c.inhw = (size_t)d->h * d->w;
    c.kfull = (size_t)d->cin * d->kh * d->kw;
    c.kg = d->cin / d->groups * d->kh * d->kw;
    c.cog = d->cout / d->groups;
    c.g = pad_geom(d);
    c.pn = (c.g.pn + 15) & ~(size_t)15; /* keeps what follows P 64-byte aligned */
    c.nb = chunk_images(d);
    return c;
}

/* slot t's images [*i0, *i1) */
static void slot_images(const struct conv_job *J, size_t t, int *i0, int *i1)
{
    *i0 = (int)((size_t)J->d->n * t / (size_t)J->slots);
    *i1 = (int)((size_t)J->d->n * (t + 1) / (size_t)J->slots);
}

static void conv_fwd_slot(void *v, size_t lo, size_t hi)
{
    const struct conv_job *J = v;
    const struct nn_conv_desc *d = J->d;
    struct conv_geom c = conv_geom(d);
    for (size_t t = lo; t < hi; t++) {
        int i0, i1;
        slot_images(J, t, &i0, &i1);
        if (i0 == i1) continue;
        int nb = c.nb < i1 - i0 ? c.nb : i1 - i0;
        float *P = slot_scratch_or_die(J->be, (int)t,
                                       c.pn + (c.kfull + (size_t)d->cout) * c.hw * nb);
        float *col = P + c.pn;
        for (int n0 = i0; n0 < i1; n0 += nb) {
            int m = i1 - n0 < nb ? i1 - n0 : nb;
            size_t ld = (size_t)m * c.hw;
            /* one image: the GEMM writes y directly (layout [Cout, HW]) */
            float *out = m == 1 ? J->y + (size_t)n0 * d->cout * c.hw : col + c.kfull * ld;
            for (int i = 0; i < m; i++)
                im2col(d, &c.g, J->x + (size_t)(n0 + i) * d->cin * c.inhw, col + i * c.hw, ld, P);
            for (int g = 0; g < d->groups; g++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c.cog, (int)ld, c.kg, 1.0f,
                            J->w + (size_t)g * c.cog * c.kg, c.kg, col + (size_t)g * c.kg * ld,
                            (int)ld, 0.0f, out + (size_t)g * c.cog * ld, (int)ld);
            for (int i = 0; i < m; i++)
                for (int co = 0; co < d->cout; co++) {
                    float *restrict dst = J->y + ((size_t)(n0 + i) * d->cout + co) * c.hw;
                    const float *restrict src = out + co * ld + i * c.hw;
                    float bias = J->b ? J->b[co] : 0.0f;
                    if (m == 1) {
                        if (J->b)
                            for (size_t j = 0; j < c.hw; j++) dst[j] += bias;
                    } else {
                        for (size_t j = 0; j < c.hw; j++) dst[j] = src[j] + bias;
                    }
                }
        }
    }
}

static void conv_bwd_slot(void *v, size_t lo, size_t hi)
{
    const struct conv_job *J = v;
    const struct nn_conv_desc *d = J->d;
    struct conv_geom c = conv_geom(d);
    size_t nw = (size_t)d->cout * c.kg, nwp = (nw + 15) & ~(size_t)15;
    for (size_t t = lo; t < hi; t++) {
        int i0, i1;
        slot_images(J, t, &i0, &i1);
        if (i0 == i1) continue;
        int nb = c.nb < i1 - i0 ? c.nb : i1 - i0;
        float *P = slot_scratch_or_die(J->be, (int)t,
                                       c.pn + nwp + (c.kfull + (size_t)d->cout) * c.hw * nb);
        float *part = P + c.pn, *col = part + nwp;
        if (J->dw) memset(part, 0, nw * sizeof *part);
        for (int n0 = i0; n0 < i1; n0 += nb) {
            int m = i1 - n0 < nb ? i1 - n0 : nb;
            size_t ld = (size_t)m * c.hw;
            const float *dyt = J->dy + (size_t)n0 * d->cout * c.hw;
            if (m > 1) { /* dy NCHW -> [Cout, m*hw] */
                float *o = col + c.kfull * ld;
                for (int i = 0; i < m; i++)
                    for (int co = 0; co < d->cout; co++)
                        memcpy(o + co * ld + i * c.hw,
                               J->dy + ((size_t)(n0 + i) * d->cout + co) * c.hw,
                               c.hw * sizeof *o);
                dyt = o;
            }
            if (J->dw) {
                /* a pointwise convolution's columns of one image are x's */
                const float *cols = J->x + (size_t)n0 * d->cin * c.inhw;
                if (m > 1 || !is_pointwise(d)) {
                    for (int i = 0; i < m; i++)
                        im2col(d, &c.g, J->x + (size_t)(n0 + i) * d->cin * c.inhw,
                               col + i * c.hw, ld, P);
                    cols = col;
                }
                for (int g = 0; g < d->groups; g++)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c.cog, c.kg, (int)ld, 1.0f,
                                dyt + (size_t)g * c.cog * ld, (int)ld, cols + (size_t)g * c.kg * ld,
                                (int)ld, 1.0f, part + (size_t)g * c.cog * c.kg, c.kg);
            }
            if (J->dx) {
                for (int g = 0; g < d->groups; g++)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c.kg, (int)ld, c.cog, 1.0f,
                                J->w + (size_t)g * c.cog * c.kg, c.kg, dyt + (size_t)g * c.cog * ld,
                                (int)ld, 0.0f, col + (size_t)g * c.kg * ld, (int)ld);
                for (int i = 0; i < m; i++)
                    col2im(d, &c.g, col + i * c.hw, ld,
                           J->dx + (size_t)(n0 + i) * d->cin * c.inhw, P);
            }
        }
    }
}

static int conv_slots(struct nn_backend *be)
{
    int t = ((struct cpu_ctx *)be->ctx)->threads;
    return t < CPU_MAX_THREADS ? t : CPU_MAX_THREADS;
}

void cpu_conv2d_fwd(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                    const float *w, const float *b, float *y)
{
    if (is_depthwise(d)) {
        struct op_args A = {.d = d, .x = x, .w = w, .b = b, .y = y};
        size_t cost = (size_t)d->n * d->cout * d->ho * d->wo * d->kh * d->kw;
        cpu_parallel(be, (size_t)d->cin, cost, d->sh == 1 && d->sw == 1 ? dw1_fwd_range : dw_fwd_range,
                     &A);
        return;
    }
    size_t hw = (size_t)d->ho * d->wo;
    size_t cost = (size_t)d->n * d->cout * (d->cin / d->groups) * d->kh * d->kw * hw;
    if (is_pointwise(d) && d->n > 1) {
        struct op_args A = {.d = d, .x = x, .w = w, .b = b, .y = y, .hw = hw};
        cpu_parallel(be, (size_t)d->n, cost, pw_fwd_range, &A);
        return;
    }
    struct conv_job J = {.be = be, .d = d, .x = x, .w = w, .b = b, .y = y, .slots = conv_slots(be)};
    cpu_parallel(be, (size_t)J.slots, cost, conv_fwd_slot, &J);
}

void cpu_conv2d_bwd(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                    const float *w, const float *dy, float *dx, float *dw, float *db)
{
    if (is_depthwise(d)) {
        struct op_args A = {.d = d, .x = x, .w = w, .dy = dy, .dx = dx, .dw = dw, .db = db};
        size_t cost = (size_t)d->n * d->cout * d->ho * d->wo * d->kh * d->kw;
        cpu_parallel(be, (size_t)d->cin, cost, d->sh == 1 && d->sw == 1 ? dw1_bwd_range : dw_bwd_range,
                     &A);
        return;
    }
    size_t hw = (size_t)d->ho * d->wo;
    size_t cost = (size_t)d->n * d->cout * (d->cin / d->groups) * d->kh * d->kw * hw;
    if (db)
        for (int i = 0; i < d->n; i++)
            for (int co = 0; co < d->cout; co++) {
                const float *g = dy + ((size_t)i * d->cout + co) * hw;
                float s = 0;
                for (size_t j = 0; j < hw; j++) s += g[j];
                db[co] += s;
            }
    if (dx && is_pointwise(d) && d->n > 1) {
        struct op_args A = {.d = d, .w = w, .dy = dy, .dx = dx, .hw = hw};
        cpu_parallel(be, (size_t)d->n, cost, pw_dx_range, &A);
        dx = NULL; /* done */
    }
    if (!dx && !dw) return;
    struct conv_job J = {.be = be, .d = d, .x = x, .w = w, .dy = dy, .dx = dx, .dw = dw,
                         .slots = conv_slots(be)};
    cpu_parallel(be, (size_t)J.slots, cost, conv_bwd_slot, &J);
    if (!dw) return;
    /* the slots' partial weight gradients, in slot order */
    struct conv_geom c = conv_geom(d);
    size_t nw = (size_t)d->cout * c.kg;
    for (int t = 0; t < J.slots; t++) {
        int i0, i1;
        slot_images(&J, (size_t)t, &i0, &i1);
        if (i0 == i1) continue;
        const float *restrict part = cpu_slot_scratch(be, t, 0) + c.pn;
        for (size_t j = 0; j < nw; j++) dw[j] += part[j];
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

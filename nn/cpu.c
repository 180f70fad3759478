/*
 * cpu.c - the CPU backend's table (see nn/backend.h): memory is host
 * memory (64-byte aligned), the element-wise, pooling, batch-norm,
 * softmax and loss kernels are plain C loops here, and convolution and
 * linear layers are SGEMM calls in cpu_conv.c.
 *
 * Called from one thread at a time. With threads > 1 the backend keeps
 * threads - 1 workers of its own (cpu_parallel) that split the big loops
 * (ReLU, batch norm and pools by channel or plane, depthwise convolution
 * by channel, pointwise convolution and the other convolutions by image);
 * each call returns when all its work is done. Every split writes
 * disjoint outputs, except the convolutions' weight gradients, which each
 * thread sums over its own images and which are then added up in thread
 * order: results are the same on every run with the same thread count,
 * and differ between thread counts only by float rounding. Reductions
 * that feed a gradient are summed in float within a plane (in 8 partial
 * sums, which vectorise) and in double across planes. The optimizer
 * entries run nn/optim_math.h, nn/optim's own host code, so an optimizer
 * on this backend gives the same bits as one over host arrays.
 */
#include "nn/backend.h"

/* The kernels are short loops that only pay off vectorised; -O2 (GCC 12)
 * leaves most of them scalar. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/cpu_kernels.h"
#include "nn/kernel_math.h"
#include "nn/optim_math.h"

/* --- memory ----------------------------------------------------------------- */

static float *cpu_alloc(struct nn_backend *be, size_t n)
{
    (void)be;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (bytes == 0) bytes = 64;
    return aligned_alloc(64, bytes);
}

static void cpu_free(struct nn_backend *be, float *p)
{
    (void)be;
    free(p);
}

static void cpu_upload(struct nn_backend *be, float *dst, const float *src, size_t n)
{
    (void)be;
    memcpy(dst, src, n * sizeof *dst);
}

static void cpu_download(struct nn_backend *be, float *dst, const float *src, size_t n)
{
    (void)be;
    memcpy(dst, src, n * sizeof *dst);
}

static void cpu_fill(struct nn_backend *be, float *dst, float v, size_t n)
{
    (void)be;
    if (v == 0.0f) {
        memset(dst, 0, n * sizeof *dst);
        return;
    }
    for (size_t i = 0; i < n; i++) dst[i] = v;
}

static void cpu_copy(struct nn_backend *be, float *dst, const float *src, size_t n)
{
    (void)be;
    memmove(dst, src, n * sizeof *dst);
}

float *cpu_slot_scratch(struct nn_backend *be, int slot, size_t n)
{
    struct cpu_ctx *c = be->ctx;
    if (n <= c->scratch_cap[slot]) return c->scratch[slot];
    size_t cap = n + n / 4;
    float *p = cpu_alloc(be, cap);
    if (!p) return NULL;
    free(c->scratch[slot]);
    c->scratch[slot] = p;
    c->scratch_cap[slot] = cap;
    return p;
}

/* --- worker pool -------------------------------------------------------------- */

/* One job at a time (the backend's caller is one thread); a job is a
 * range function, split evenly. A training step is hundreds of short
 * jobs back to back, so both sides spin a little before sleeping: workers
 * watch the job counter (gen) for SPIN_NS after their last job, then
 * sleep on a condition variable; the caller, having done its own share,
 * watches the count of workers still busy (pending) the same way.
 * Sleeping after every job cost a kernel round trip per wake-up: 60 steps
 * of bench/nn_step.c on 2 threads made 5,048 context switches before,
 * 397 with the spin. */
struct cpu_pool {
    pthread_t *th;
    int n;                   /* workers (threads - 1) */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    cpu_range_fn fn;         /* written before gen is bumped */
    void *arg;
    size_t total;
    atomic_uint gen;
    atomic_int pending, stop;
};

#define SPIN_NS 100000L      /* 0.1 ms */

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spin until gen differs from seen or the pool stops, up to SPIN_NS:
 * 1 when it happened. */
static int spin_for_job(struct cpu_pool *p, unsigned seen)
{
    long t0 = 0;
    for (int i = 0;; i++) {
        if (atomic_load_explicit(&p->gen, memory_order_acquire) != seen ||
            atomic_load_explicit(&p->stop, memory_order_relaxed))
            return 1;
        cpu_relax();
        if ((i & 255) == 255) {
            long t = now_ns();
            if (t0 == 0) t0 = t;
            else if (t - t0 > SPIN_NS) return 0;
        }
    }
}

struct worker_arg { struct cpu_pool *p; int id; };

static void *worker_main(void *v)
{
    struct worker_arg *wa = v;
    struct cpu_pool *p = wa->p;
    int id = wa->id;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        if (!spin_for_job(p, seen)) {
            pthread_mutex_lock(&p->mu);
            while (!atomic_load(&p->stop) && atomic_load(&p->gen) == seen)
                pthread_cond_wait(&p->go, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        size_t total = p->total, parts = (size_t)p->n + 1;
        size_t lo = total * (size_t)id / parts, hi = total * (size_t)(id + 1) / parts;
        if (lo < hi) p->fn(p->arg, lo, hi);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            /* the last one: the caller may be asleep */
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

static void pool_free(struct cpu_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->th);
    free(p);
}

static struct cpu_pool *pool_new(int workers)
{
    struct cpu_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->th = calloc((size_t)workers, sizeof *p->th);
    if (!p->th) {
        free(p);
        return NULL;
    }
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < workers; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        if (!wa) break;
        wa->p = p;
        wa->id = i + 1;
        if (pthread_create(&p->th[i], NULL, worker_main, wa) != 0) {
            free(wa);
            break;
        }
        p->n++;
    }
    if (p->n == 0) {
        pool_free(p);
        return NULL;
    }
    return p;
}

/* Below this cost a job runs on the caller alone. Every split job ends in a
 * join that waits for the slowest thread, and on a loaded machine that can
 * be a descheduled one: with 32768, bench/nn_step.py at 2 threads took
 * 11.4 ms a step against 8.2 ms with this (and 12.1 ms with 2^20). */
#define PARALLEL_MIN_COST 131072

void cpu_parallel(struct nn_backend *be, size_t n, size_t cost, cpu_range_fn fn, void *arg)
{
    struct cpu_pool *p = ((struct cpu_ctx *)be->ctx)->pool;
    if (!p || n < 2 || cost < PARALLEL_MIN_COST) {
        if (n) fn(arg, 0, n);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->total = n;
    atomic_store_explicit(&p->pending, p->n, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    /* workers asleep check gen under the mutex: none can miss this */
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    size_t hi = n / ((size_t)p->n + 1);
    if (hi) fn(arg, 0, hi);
    long t0 = 0;
    for (int i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
        cpu_relax();
        if ((i & 255) != 255) continue;
        long t = now_ns();
        if (t0 == 0) {
            t0 = t;
        } else if (t - t0 > SPIN_NS) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
}

/* --- element-wise ----------------------------------------------------------- */

static void cpu_add(struct nn_backend *be, float *y, const float *a, const float *b, size_t n)
{
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

static void cpu_axpy(struct nn_backend *be, float *y, float alpha, const float *x, size_t n)
{
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

static void cpu_scale(struct nn_backend *be, float *y, float alpha, const float *x, size_t n)
{
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = alpha * x[i];
}

struct ew_args { float *y; const float *a, *b; };

static void relu_fwd_range(void *v, size_t lo, size_t hi)
{
    struct ew_args *e = v;
    float *restrict y = e->y;
    const float *restrict x = e->a;
    for (size_t i = lo; i < hi; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void cpu_relu_fwd(struct nn_backend *be, float *y, const float *x, size_t n)
{
    struct ew_args e = {y, x, NULL};
    cpu_parallel(be, n, n, relu_fwd_range, &e);
}

static void relu_bwd_range(void *v, size_t lo, size_t hi)
{
    struct ew_args *e = v;
    float *restrict dx = e->y;
    const float *restrict y = e->a, *restrict dy = e->b;
    /* a select, not a multiply by a 0/1 mask: GCC turned the mask into a
     * data-dependent branch (half of them mispredicted on ReLU outputs,
     * a fifth of a training step) and did not vectorise it */
    for (size_t i = lo; i < hi; i++) {
        float g = dy[i];
        dx[i] += y[i] > 0.0f ? g : 0.0f;
    }
}

static void cpu_relu_bwd(struct nn_backend *be, float *dx, const float *y, const float *dy, size_t n)
{
    struct ew_args e = {dx, y, dy};
    cpu_parallel(be, n, n, relu_bwd_range, &e);
}

static void cpu_mul_fwd(struct nn_backend *be, float *y, const float *x, const float *m, size_t n)
{
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = x[i] * m[i];
}

static void cpu_mul_bwd(struct nn_backend *be, float *dx, const float *m, const float *dy, size_t n)
{
    (void)be;
    for (size_t i = 0; i < n; i++) dx[i] += dy[i] * m[i];
}

static void cpu_dropout_mask(struct nn_backend *be, float *m, size_t n, float p, uint64_t seed)
{
    (void)be;
    float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    uint64_t thr = p >= 1.0f ? UINT64_MAX : (uint64_t)((double)p * 0x1.0p53);
    for (size_t i = 0; i < n; i++) {
        /* a counter-based hash (splitmix64's finaliser): the mask is a
         * function of (seed, i), the same on any backend */
        uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        m[i] = (z >> 11) < thr ? 0.0f : keep;
    }
}

static void cpu_wsum_fwd(struct nn_backend *be, float *y, const float *const *xs, const float *w,
                         int k, size_t n)
{
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = w[0] * xs[0][i];
    for (int j = 1; j < k; j++) {
        const float *x = xs[j];
        float a = w[j];
        for (size_t i = 0; i < n; i++) y[i] += a * x[i];
    }
}

static void cpu_wsum_bwd(struct nn_backend *be, float *const *dxs, float *dw, const float *const *xs,
                         const float *w, const float *dy, int k, size_t n)
{
    (void)be;
    for (int j = 0; j < k; j++) {
        if (dxs && dxs[j]) {
            float *dx = dxs[j];
            float a = w[j];
            for (size_t i = 0; i < n; i++) dx[i] += a * dy[i];
        }
        if (dw) {
            const float *x = xs[j];
            double s = 0;
            for (size_t i = 0; i < n; i++) s += (double)x[i] * dy[i];
            dw[j] += (float)s;
        }
    }
}

static void cpu_softmax_fwd(struct nn_backend *be, float *y, const float *x, int rows, int k)
{
    (void)be;
    for (int r = 0; r < rows; r++) cu_softmax_row(y + (size_t)r * k, x + (size_t)r * k, k);
}

static void cpu_softmax_bwd(struct nn_backend *be, float *dx, const float *y, const float *dy,
                            int rows, int k)
{
    (void)be;
    for (int r = 0; r < rows; r++)
        cu_softmax_row_bwd(dx + (size_t)r * k, y + (size_t)r * k, dy + (size_t)r * k, k);
}

static void cpu_chan_copy(struct nn_backend *be, float *dst, int dst_c, int dst_c0, const float *src,
                          int src_c, int src_c0, int c, int n, size_t hw, int acc)
{
    (void)be;
    size_t len = (size_t)c * hw;
    for (int i = 0; i < n; i++) {
        float *d = dst + ((size_t)i * dst_c + dst_c0) * hw;
        const float *s = src + ((size_t)i * src_c + src_c0) * hw;
        if (acc)
            for (size_t j = 0; j < len; j++) d[j] += s[j];
        else
            memcpy(d, s, len * sizeof *d);
    }
}

/* --- pooling ---------------------------------------------------------------- */

/* The window of output (oh, ow) clipped to the input: [h0, h1) x [w0, w1). */
static void pool_window(const struct nn_pool_desc *d, int oh, int ow, int *h0, int *h1, int *w0,
                        int *w1)
{
    int hs = oh * d->sh - d->ph, ws = ow * d->sw - d->pw;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = hs + d->kh > d->h ? d->h : hs + d->kh;
    *w1 = ws + d->kw > d->w ? d->w : ws + d->kw;
}

/* The max pool's argmax (offset within the plane) goes into aux as int32:
 * backend memory is untyped storage, and 32-bit slots are what the graph
 * promised. */
struct pool_args {
    const struct nn_pool_desc *d;
    const float *x, *dy;
    float *y, *dx, *aux;
};

/* The common 2x2 stride-2 max pool of one plane: every window is whole,
 * scanned in the generic loop's order (first maximum wins). */
static void max_pool_2x2(const struct nn_pool_desc *d, const float *restrict xp,
                         float *restrict yp, int32_t *restrict ap)
{
    int w = d->w;
    for (int oh = 0; oh < d->ho; oh++) {
        const float *r0 = xp + (size_t)2 * oh * w, *r1 = r0 + w;
        int base = 2 * oh * w;
        for (int ow = 0; ow < d->wo; ow++) {
            int j = 2 * ow, best = base + j;
            float v = r0[j], t = r0[j + 1];
            best = t > v ? base + j + 1 : best;
            v = t > v ? t : v;
            t = r1[j];
            best = t > v ? base + w + j : best;
            v = t > v ? t : v;
            t = r1[j + 1];
            best = t > v ? base + w + j + 1 : best;
            v = t > v ? t : v;
            yp[oh * d->wo + ow] = v;
            if (ap) ap[oh * d->wo + ow] = best;
        }
    }
}

static void pool_fwd_range(void *argp, size_t lo, size_t hi)
{
    struct pool_args *pa = argp;
    const struct nn_pool_desc *d = pa->d;
    const float *x = pa->x;
    float *y = pa->y;
    int32_t *arg = (int32_t *)(void *)pa->aux;
    int two = d->is_max && d->kh == 2 && d->kw == 2 && d->sh == 2 && d->sw == 2 && d->ph == 0 &&
              d->pw == 0;
    for (size_t pl = lo; pl < hi; pl++) {
        const float *xp = x + pl * d->h * d->w;
        float *yp = y + pl * d->ho * d->wo;
        int32_t *ap = arg ? arg + pl * d->ho * d->wo : NULL;
        if (two) {
            max_pool_2x2(d, xp, yp, ap);
            continue;
        }
        for (int oh = 0; oh < d->ho; oh++)
            for (int ow = 0; ow < d->wo; ow++) {
                int h0, h1, w0, w1;
                pool_window(d, oh, ow, &h0, &h1, &w0, &w1);
                float v;
                if (d->is_max) {
                    int best = h0 * d->w + w0;
                    v = xp[best];
                    /* selects, not branches: which element wins is data */
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++) {
                            float t = xp[ih * d->w + iw];
                            best = t > v ? ih * d->w + iw : best;
                            v = t > v ? t : v;
                        }
                    if (ap) ap[oh * d->wo + ow] = best;
                } else {
                    float s = 0;
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++) s += xp[ih * d->w + iw];
                    int cnt = (h1 - h0) * (w1 - w0);
                    v = cnt > 0 ? s / (float)cnt : 0.0f;
                }
                yp[oh * d->wo + ow] = v;
            }
    }
}

static void cpu_pool2d_fwd(struct nn_backend *be, const struct nn_pool_desc *d, const float *x,
                           float *y, float *aux)
{
    struct pool_args pa = {d, x, NULL, y, NULL, aux};
    size_t planes = (size_t)d->n * d->c;
    cpu_parallel(be, planes, planes * d->h * d->w, pool_fwd_range, &pa);
}

static void pool_bwd_range(void *v, size_t lo, size_t hi)
{
    struct pool_args *pa = v;
    const struct nn_pool_desc *d = pa->d;
    const float *dy = pa->dy;
    float *dx = pa->dx;
    size_t ohw = (size_t)d->ho * d->wo;
    const int32_t *arg = (const int32_t *)(const void *)pa->aux;
    for (size_t pl = lo; pl < hi; pl++) {
        const float *dyp = dy + pl * ohw;
        float *dxp = dx + pl * d->h * d->w;
        if (d->is_max) {
            const int32_t *ap = arg + pl * ohw;
            for (size_t o = 0; o < ohw; o++) dxp[ap[o]] += dyp[o];
            continue;
        }
        for (int oh = 0; oh < d->ho; oh++)
            for (int ow = 0; ow < d->wo; ow++) {
                int h0, h1, w0, w1;
                pool_window(d, oh, ow, &h0, &h1, &w0, &w1);
                int cnt = (h1 - h0) * (w1 - w0);
                if (cnt <= 0) continue;
                float g = dyp[oh * d->wo + ow] / (float)cnt;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) dxp[ih * d->w + iw] += g;
            }
    }
}

static void cpu_pool2d_bwd(struct nn_backend *be, const struct nn_pool_desc *d, const float *x,
                           const float *y, const float *aux, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    /* the argmax slots are only read; the cast drops const for the struct */
    struct pool_args pa = {d, NULL, dy, NULL, dx, (float *)(uintptr_t)aux};
    size_t planes = (size_t)d->n * d->c;
    cpu_parallel(be, planes, planes * d->h * d->w, pool_bwd_range, &pa);
}

/* --- batch norm ------------------------------------------------------------- */

/* Float sums over one plane kept in LANES partial sums (j mod LANES), added
 * up in a fixed order at the end: GCC vectorises the lanes (a single float
 * accumulator is a serial chain it may not reorder), and the result is the
 * same whatever the thread count or vector width. */
#define LANES 8

static float lanes_total(const float *a, float tail)
{
    return (((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))) + tail;
}

/* sum (p - m) and sum (p - m)^2 over hw values */
static void plane_sums(const float *restrict p, size_t hw, float m, float *s, float *s2)
{
    float a[LANES] = {0}, b[LANES] = {0}, ta = 0, tb = 0;
    size_t j = 0;
    for (; j + LANES <= hw; j += LANES)
        for (int k = 0; k < LANES; k++) {
            float d = p[j + k] - m;
            a[k] += d;
            b[k] += d * d;
        }
    for (; j < hw; j++) {
        float d = p[j] - m;
        ta += d;
        tb += d * d;
    }
    *s = lanes_total(a, ta);
    *s2 = lanes_total(b, tb);
}

/* sum g and sum g (p - m) over hw values */
static void plane_dot_sums(const float *restrict g, const float *restrict p, size_t hw, float m,
                           float *s, float *s2)
{
    float a[LANES] = {0}, b[LANES] = {0}, ta = 0, tb = 0;
    size_t j = 0;
    for (; j + LANES <= hw; j += LANES)
        for (int k = 0; k < LANES; k++) {
            a[k] += g[j + k];
            b[k] += g[j + k] * (p[j + k] - m);
        }
    for (; j < hw; j++) {
        ta += g[j];
        tb += g[j] * (p[j] - m);
    }
    *s = lanes_total(a, ta);
    *s2 = lanes_total(b, tb);
}

/* Sum (and sum of squares about m) of one channel's values over the
 * batch, float within a plane, double across planes. */
static void chan_sums(int n, int c, int ch, size_t hw, const float *x, float m, double *s,
                      double *s2)
{
    double a = 0, b = 0;
    for (int i = 0; i < n; i++) {
        float fa, fb;
        plane_sums(x + ((size_t)i * c + ch) * hw, hw, m, &fa, &fb);
        a += fa;
        b += fb;
    }
    *s = a;
    *s2 = b;
}

struct bn_args {
    int n, c, training;
    size_t hw;
    const float *x, *gamma, *beta, *dy, *save_in;
    float *rmean, *rvar, *y, *save, *dx, *dgamma, *dbeta;
    float momentum, eps;
};

static void bn_fwd_range(void *v, size_t lo, size_t hi)
{
    const struct bn_args *A = v;
    int n = A->n, c = A->c;
    size_t hw = A->hw;
    const float *x = A->x;
    double cnt = (double)n * (double)hw;
    for (int ch = (int)lo; ch < (int)hi; ch++) {
        double mean, var;
        if (A->training) {
            /* shift by the first value, then correct: stable in float */
            float shift = x[(size_t)ch * hw];
            double s, s2;
            chan_sums(n, c, ch, hw, x, shift, &s, &s2);
            double dm = s / cnt;
            mean = shift + dm;
            var = s2 / cnt - dm * dm;
            if (var < 0) var = 0;
            double m = A->momentum;
            if (A->rmean) A->rmean[ch] = (float)((1.0 - m) * A->rmean[ch] + m * mean);
            if (A->rvar)
                A->rvar[ch] = (float)((1.0 - m) * A->rvar[ch] +
                                      m * (cnt > 1 ? var * cnt / (cnt - 1) : var));
        } else {
            mean = A->rmean[ch];
            var = A->rvar[ch];
        }
        double inv = 1.0 / sqrt(var + A->eps);
        A->save[ch] = (float)mean;
        A->save[c + ch] = (float)inv;
        float a = (float)(inv * (A->gamma ? A->gamma[ch] : 1.0f));
        float b = (float)((A->beta ? A->beta[ch] : 0.0f) - mean * a);
        for (int i = 0; i < n; i++) {
            const float *restrict p = x + ((size_t)i * c + ch) * hw;
            float *restrict q = A->y + ((size_t)i * c + ch) * hw;
            for (size_t j = 0; j < hw; j++) q[j] = p[j] * a + b;
        }
    }
}

static void cpu_bn_fwd(struct nn_backend *be, int n, int c, size_t hw, const float *x,
                       const float *gamma, const float *beta, float *rmean, float *rvar, float *y,
                       float *save, int training, float momentum, float eps)
{
    struct bn_args A = {.n = n, .c = c, .training = training, .hw = hw, .x = x, .gamma = gamma,
                        .beta = beta, .rmean = rmean, .rvar = rvar, .y = y, .save = save,
                        .momentum = momentum, .eps = eps};
    cpu_parallel(be, (size_t)c, (size_t)n * c * hw, bn_fwd_range, &A);
}

static void bn_bwd_range(void *v, size_t lo, size_t hi)
{
    const struct bn_args *A = v;
    int n = A->n, c = A->c;
    size_t hw = A->hw;
    const float *x = A->x, *dy = A->dy;
    double cnt = (double)n * (double)hw;
    for (int ch = (int)lo; ch < (int)hi; ch++) {
        float mean = A->save_in[ch], inv = A->save_in[c + ch];
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++) {
            float a, b;
            plane_dot_sums(dy + ((size_t)i * c + ch) * hw, x + ((size_t)i * c + ch) * hw, hw, mean,
                           &a, &b);
            sdy += a;
            sdyx += b;
        }
        sdyx *= inv;
        if (A->dgamma) A->dgamma[ch] += (float)sdyx;
        if (A->dbeta) A->dbeta[ch] += (float)sdy;
        if (!A->dx) continue;
        double gm = A->gamma ? A->gamma[ch] : 1.0;
        /* training: dx = g*inv/cnt * (cnt*dy - sum dy - xhat * sum(dy*xhat));
         * inference: the statistics are constants, dx = g*inv*dy */
        float k1 = (float)(gm * inv);
        float k2 = A->training ? (float)(gm * inv * sdy / cnt) : 0.0f;
        float k3 = A->training ? (float)(gm * inv * sdyx / cnt * inv) : 0.0f;
        float k0 = k3 * mean - k2; /* dx = k1*dy - k3*x + k0 */
        for (int i = 0; i < n; i++) {
            const float *restrict p = x + ((size_t)i * c + ch) * hw;
            const float *restrict g = dy + ((size_t)i * c + ch) * hw;
            float *restrict q = A->dx + ((size_t)i * c + ch) * hw;
            for (size_t j = 0; j < hw; j++) q[j] += k1 * g[j] - k3 * p[j] + k0;
        }
    }
}

static void cpu_bn_bwd(struct nn_backend *be, int n, int c, size_t hw, const float *x,
                       const float *gamma, const float *save, const float *dy, float *dx,
                       float *dgamma, float *dbeta, int training)
{
    struct bn_args A = {.n = n, .c = c, .training = training, .hw = hw, .x = x, .gamma = gamma,
                        .dy = dy, .save_in = save, .dx = dx, .dgamma = dgamma, .dbeta = dbeta};
    cpu_parallel(be, (size_t)c, (size_t)n * c * hw, bn_bwd_range, &A);
}

/* --- global average pool ---------------------------------------------------- */

static void cpu_gap_fwd(struct nn_backend *be, int n, int c, size_t hw, const float *x, float *y)
{
    (void)be;
    for (size_t p = 0; p < (size_t)n * c; p++) {
        double s = 0;
        for (size_t j = 0; j < hw; j++) s += x[p * hw + j];
        y[p] = (float)(s / (double)hw);
    }
}

static void cpu_gap_bwd(struct nn_backend *be, int n, int c, size_t hw, const float *dy, float *dx)
{
    (void)be;
    for (size_t p = 0; p < (size_t)n * c; p++) {
        float g = dy[p] / (float)hw;
        for (size_t j = 0; j < hw; j++) dx[p * hw + j] += g;
    }
}

/* --- softmax cross-entropy -------------------------------------------------- */

static void cpu_ce_fwd(struct nn_backend *be, int n, int k, const float *logits, const float *labels,
                       float *probs, float *loss)
{
    (void)be;
    double total = 0;
    for (int i = 0; i < n; i++)
        total += cu_ce_row(probs + (size_t)i * k, logits + (size_t)i * k, k, (int)labels[i]);
    loss[0] = (float)(total / n);
}

static void cpu_ce_bwd(struct nn_backend *be, int n, int k, const float *probs, const float *labels,
                       const float *dloss, float *dlogits)
{
    (void)be;
    float a = dloss[0] / (float)n;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * k;
        float *d = dlogits + (size_t)i * k;
        int y = (int)labels[i];
        for (int j = 0; j < k; j++) d[j] += a * (p[j] - (j == y ? 1.0f : 0.0f));
    }
}

/* --- optimizer updates (nn/optim_math.h: the same code as nn/optim's host path) --- */

struct opt_args {
    float *w, *buf, *m, *v;
    const float *g;
    double lr, mu, wd;
    int nesterov;
    struct optim_math_adam a;
};

static void sgd_range(void *p, size_t lo, size_t hi)
{
    struct opt_args *o = p;
    optim_math_sgd(o->w, o->g, o->buf, lo, hi, o->lr, o->mu, o->wd, o->nesterov);
}

static void cpu_sgd_step(struct nn_backend *be, float *w, const float *g, float *buf, size_t n,
                         double lr, double momentum, double wd, int nesterov)
{
    struct opt_args o = {.w = w, .buf = buf, .g = g, .lr = lr, .mu = momentum, .wd = wd,
                         .nesterov = nesterov};
    cpu_parallel(be, n, 2 * n, sgd_range, &o);
}

static void adam_range(void *p, size_t lo, size_t hi)
{
    struct opt_args *o = p;
    optim_math_adam(o->w, o->g, o->m, o->v, lo, hi, &o->a);
}

static void cpu_adam_step(struct nn_backend *be, float *w, const float *g, float *m, float *v,
                          size_t n, double lr, double beta1, double beta2, double eps, double wd,
                          uint64_t t)
{
    struct opt_args o = {.w = w, .m = m, .v = v, .g = g,
                         .a = optim_math_adam_consts(lr, beta1, beta2, eps, wd, t)};
    cpu_parallel(be, n, 4 * n, adam_range, &o);
}

/* In index order on one thread: the bits of optim_clip_groups. */
static double cpu_sumsq(struct nn_backend *be, const float *const *xs, const size_t *ns, int k)
{
    (void)be;
    double ss = 0.0;
    for (int j = 0; j < k; j++) optim_math_sumsq(xs[j], ns[j], &ss);
    return ss;
}

/* --- the table -------------------------------------------------------------- */

static void cpu_destroy(struct nn_backend *be)
{
    struct cpu_ctx *c = be->ctx;
    pool_free(c->pool);
    for (int i = 0; i < CPU_MAX_THREADS; i++) free(c->scratch[i]);
    free(c);
    free(be);
}

struct nn_backend *nn_backend_cpu_new(int threads, char *err, size_t errlen)
{
    struct nn_backend *be = calloc(1, sizeof *be);
    struct cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->threads = threads > 0 ? threads : 1;
    if (c->threads > CPU_MAX_THREADS) c->threads = CPU_MAX_THREADS;
    if (c->threads > 1) c->pool = pool_new(c->threads - 1); /* NULL: run inline */
    /* GEMMs are split over the pool (cpu_conv.c): OpenBLAS's own threads
     * would only contend with it for the cores */
    openblas_set_num_threads(1);
    be->name = "cpu";
    be->ctx = c;
    be->host_visible = 1;
    be->destroy = cpu_destroy;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->upload = cpu_upload;
    be->download = cpu_download;
    be->fill = cpu_fill;
    be->copy = cpu_copy;
    be->add = cpu_add;
    be->axpy = cpu_axpy;
    be->scale = cpu_scale;
    be->relu_fwd = cpu_relu_fwd;
    be->relu_bwd = cpu_relu_bwd;
    be->mul_fwd = cpu_mul_fwd;
    be->mul_bwd = cpu_mul_bwd;
    be->dropout_mask = cpu_dropout_mask;
    be->wsum_fwd = cpu_wsum_fwd;
    be->wsum_bwd = cpu_wsum_bwd;
    be->softmax_fwd = cpu_softmax_fwd;
    be->softmax_bwd = cpu_softmax_bwd;
    be->chan_copy = cpu_chan_copy;
    be->conv2d_fwd = cpu_conv2d_fwd;
    be->conv2d_bwd = cpu_conv2d_bwd;
    be->pool2d_fwd = cpu_pool2d_fwd;
    be->pool2d_bwd = cpu_pool2d_bwd;
    be->bn_fwd = cpu_bn_fwd;
    be->bn_bwd = cpu_bn_bwd;
    be->gap_fwd = cpu_gap_fwd;
    be->gap_bwd = cpu_gap_bwd;
    be->linear_fwd = cpu_linear_fwd;
    be->linear_bwd = cpu_linear_bwd;
    be->ce_fwd = cpu_ce_fwd;
    be->ce_bwd = cpu_ce_bwd;
    be->sgd_step = cpu_sgd_step;
    be->adam_step = cpu_adam_step;
    be->sumsq = cpu_sumsq;
    return be;
}

void nn_backend_free(struct nn_backend *be)
{
    if (be) be->destroy(be);
}

/* test_nn_cpu.c - the CPU backend's kernels (nn/cpu.c, nn/cpu_conv.c)
 * called through the backend table against plain double-precision loops,
 * on every path the kernels choose between: convolutions one image per
 * chunk and several (gathered dy, scattered y), grouped, strided, dilated,
 * padded more than the kernel reaches, pointwise (1x1: one GEMM per image;
 * one image: the im2col path), depthwise at stride 1 (padded planes) and 2
 * (clipped rows); the 2x2 max pool and the generic one, with ties (first
 * maximum wins, as PyTorch); ReLU's backward; batch norm. Each runs on 1, 2
 * and 3 threads, must match the reference within 1e-4 (relative to the
 * largest term), and must give the same bits when run again on the same
 * thread count. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn/backend.h"

static uint64_t rng_state = 88172645463325252ULL;

static float urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

static float *rand_buf(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = urand();
    return p;
}

static float *on_be(struct nn_backend *be, const float *h, size_t n)
{
    float *p = be->alloc(be, n);
    assert_non_null(p);
    if (h) be->upload(be, p, h, n);
    else be->fill(be, p, 0.0f, n);
    return p;
}

/* |got - want| <= 1e-4 * (1 + scale) for every element */
static void expect_close(const char *what, const float *got, const double *want, size_t n,
                         double scale)
{
    for (size_t i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > 1e-4 * (1.0 + scale))
            fail_msg("%s[%zu]: got %.7g, want %.7g", what, i, (double)got[i], want[i]);
}

/* --- convolution ------------------------------------------------------------ */

static size_t xi(const struct nn_conv_desc *d, int i, int c, int h, int w)
{
    return (((size_t)i * d->cin + c) * d->h + h) * d->w + w;
}

static void conv_ref(const struct nn_conv_desc *d, const float *x, const float *w, const float *b,
                     const float *dy, double *y, double *dx, double *dw, double *db)
{
    int cig = d->cin / d->groups, cog = d->cout / d->groups;
    size_t ny = (size_t)d->n * d->cout * d->ho * d->wo;
    memset(y, 0, ny * sizeof *y);
    memset(dx, 0, (size_t)d->n * d->cin * d->h * d->w * sizeof *dx);
    memset(dw, 0, (size_t)d->cout * cig * d->kh * d->kw * sizeof *dw);
    memset(db, 0, (size_t)d->cout * sizeof *db);
    for (int i = 0; i < d->n; i++)
        for (int co = 0; co < d->cout; co++)
            for (int oh = 0; oh < d->ho; oh++)
                for (int ow = 0; ow < d->wo; ow++) {
                    size_t yi = (((size_t)i * d->cout + co) * d->ho + oh) * d->wo + ow;
                    double s = b ? b[co] : 0.0, g = dy[yi];
                    db[co] += g;
                    for (int ci = 0; ci < cig; ci++)
                        for (int ki = 0; ki < d->kh; ki++)
                            for (int kj = 0; kj < d->kw; kj++) {
                                int ih = oh * d->sh - d->ph + ki * d->dh;
                                int iw = ow * d->sw - d->pw + kj * d->dw;
                                if (ih < 0 || ih >= d->h || iw < 0 || iw >= d->w) continue;
                                int c = co / cog * cig + ci;
                                size_t wi = (((size_t)co * cig + ci) * d->kh + ki) * d->kw + kj;
                                s += (double)w[wi] * x[xi(d, i, c, ih, iw)];
                                dx[xi(d, i, c, ih, iw)] += (double)w[wi] * g;
                                dw[wi] += g * x[xi(d, i, c, ih, iw)];
                            }
                    y[yi] = s;
                }
}

struct conv_out { float *y, *dx, *dw, *db; };

static struct conv_out conv_run(int threads, const struct nn_conv_desc *d, const float *x,
                                const float *w, const float *b, const float *dy, size_t nx,
                                size_t nw, size_t ny)
{
    char err[128];
    struct nn_backend *be = nn_backend_cpu_new(threads, err, sizeof err);
    assert_non_null(be);
    float *bx = on_be(be, x, nx), *bw = on_be(be, w, nw), *bb = b ? on_be(be, b, d->cout) : NULL;
    float *bdy = on_be(be, dy, ny), *by = on_be(be, NULL, ny), *bdx = on_be(be, NULL, nx);
    float *bdw = on_be(be, NULL, nw), *bdb = on_be(be, NULL, d->cout);
    be->conv2d_fwd(be, d, bx, bw, bb, by);
    be->conv2d_bwd(be, d, bx, bw, bdy, bdx, bdw, bdb);
    struct conv_out o = {malloc(ny * sizeof(float)), malloc(nx * sizeof(float)),
                         malloc(nw * sizeof(float)), malloc(d->cout * sizeof(float))};
    be->download(be, o.y, by, ny);
    be->download(be, o.dx, bdx, nx);
    be->download(be, o.dw, bdw, nw);
    be->download(be, o.db, bdb, d->cout);
    float *all[] = {bx, bw, bb, bdy, by, bdx, bdw, bdb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) be->free(be, all[i]);
    nn_backend_free(be);
    return o;
}

static void conv_out_free(struct conv_out *o)
{
    free(o->y);
    free(o->dx);
    free(o->dw);
    free(o->db);
}

static void conv_check(int n, int cin, int h, int w, int cout, int kh, int kw, int s, int p, int dil,
                       int groups, int bias)
{
    struct nn_conv_desc d = {.n = n, .cin = cin, .h = h, .w = w, .cout = cout, .kh = kh, .kw = kw,
                             .sh = s, .sw = s, .ph = p, .pw = p, .dh = dil, .dw = dil,
                             .groups = groups};
    d.ho = (h + 2 * p - dil * (kh - 1) - 1) / s + 1;
    d.wo = (w + 2 * p - dil * (kw - 1) - 1) / s + 1;
    size_t nx = (size_t)n * cin * h * w, nw = (size_t)cout * (cin / groups) * kh * kw;
    size_t ny = (size_t)n * cout * d.ho * d.wo;
    float *x = rand_buf(nx), *wt = rand_buf(nw), *b = bias ? rand_buf((size_t)cout) : NULL;
    float *dy = rand_buf(ny);
    double *y = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx);
    double *dw = malloc(nw * sizeof *dw), *db = malloc((size_t)cout * sizeof *db);
    conv_ref(&d, x, wt, b, dy, y, dx, dw, db);
    double kscale = (double)(cin / groups) * kh * kw, bscale = (double)n * d.ho * d.wo;
    for (int t = 1; t <= 3; t++) {
        struct conv_out a = conv_run(t, &d, x, wt, b, dy, nx, nw, ny);
        struct conv_out again = conv_run(t, &d, x, wt, b, dy, nx, nw, ny);
        expect_close("y", a.y, y, ny, kscale);
        expect_close("dx", a.dx, dx, nx, (double)cout * kh * kw);
        expect_close("dw", a.dw, dw, nw, bscale);
        if (bias) expect_close("db", a.db, db, (size_t)cout, bscale);
        assert_memory_equal(a.y, again.y, ny * sizeof(float));
        assert_memory_equal(a.dx, again.dx, nx * sizeof(float));
        assert_memory_equal(a.dw, again.dw, nw * sizeof(float));
        conv_out_free(&a);
        conv_out_free(&again);
    }
    free(x);
    free(wt);
    free(b);
    free(dy);
    free(y);
    free(dx);
    free(dw);
    free(db);
}

/* n, cin, h, w, cout, kh, kw, stride, pad, dilation, groups, bias */
static void test_conv_one_image_per_chunk(void **s)
{
    (void)s;
    conv_check(5, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1, 0);
    conv_check(3, 2, 10, 8, 3, 3, 3, 1, 2, 2, 1, 1);     /* dilated */
    conv_check(4, 2, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1);      /* 3x1 */
}

static void test_conv_chunks(void **s)
{
    (void)s;
    conv_check(7, 4, 6, 6, 6, 3, 3, 2, 1, 1, 2, 1);      /* 3x3 outputs: 7 images a chunk */
    conv_check(9, 3, 5, 5, 4, 3, 3, 1, 3, 1, 1, 0);      /* pad past the kernel's reach */
    conv_check(6, 4, 7, 7, 4, 1, 1, 2, 0, 1, 1, 0);      /* factorized reduce's 1x1 stride 2 */
}

static void test_conv_pointwise(void **s)
{
    (void)s;
    conv_check(5, 6, 9, 9, 7, 1, 1, 1, 0, 1, 1, 1);
    conv_check(1, 6, 9, 9, 7, 1, 1, 1, 0, 1, 1, 0);      /* one image: the im2col path */
    conv_check(8, 5, 3, 3, 4, 1, 1, 1, 0, 1, 1, 0);
}

static void test_conv_depthwise(void **s)
{
    (void)s;
    conv_check(3, 5, 8, 8, 5, 3, 3, 1, 1, 1, 5, 1);
    conv_check(2, 4, 9, 7, 4, 5, 5, 1, 4, 2, 4, 0);      /* 5x5 dilation 2 */
    conv_check(2, 3, 8, 8, 3, 3, 3, 1, 2, 2, 3, 0);      /* DARTS' dil_conv_3x3 */
    conv_check(3, 4, 9, 9, 4, 3, 3, 2, 1, 1, 4, 1);      /* stride 2 */
}

/* --- pooling, ReLU ------------------------------------------------------------ */

static void pool_check(int n, int c, int h, int w, int k, int st, int p)
{
    struct nn_pool_desc d = {.n = n, .c = c, .h = h, .w = w, .kh = k, .kw = k, .sh = st, .sw = st,
                             .ph = p, .pw = p, .is_max = 1};
    d.ho = (h + 2 * p - k) / st + 1;
    d.wo = (w + 2 * p - k) / st + 1;
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * d.ho * d.wo;
    float *x = malloc(nx * sizeof *x), *dy = rand_buf(ny);
    for (size_t i = 0; i < nx; i++) x[i] = (float)((int)(urand() * 3.0f)); /* many ties */
    double *y = calloc(ny, sizeof *y), *dx = calloc(nx, sizeof *dx);
    for (size_t pl = 0; pl < (size_t)n * c; pl++)
        for (int oh = 0; oh < d.ho; oh++)
            for (int ow = 0; ow < d.wo; ow++) {
                int best = -1;
                for (int i = oh * st - p; i < oh * st - p + k; i++)
                    for (int j = ow * st - p; j < ow * st - p + k; j++) {
                        if (i < 0 || i >= h || j < 0 || j >= w) continue;
                        if (best < 0 || x[pl * h * w + i * w + j] > x[pl * h * w + best])
                            best = i * w + j;
                    }
                size_t o = (pl * d.ho + oh) * d.wo + ow;
                y[o] = x[pl * h * w + best];
                dx[pl * h * w + best] += dy[o];
            }
    for (int t = 1; t <= 3; t++) {
        char err[128];
        struct nn_backend *be = nn_backend_cpu_new(t, err, sizeof err);
        assert_non_null(be);
        float *bx = on_be(be, x, nx), *by = on_be(be, NULL, ny), *bdy = on_be(be, dy, ny);
        float *bdx = on_be(be, NULL, nx), *aux = on_be(be, NULL, ny);
        be->pool2d_fwd(be, &d, bx, by, aux);
        be->pool2d_bwd(be, &d, bx, by, aux, bdy, bdx);
        float *gy = malloc(ny * sizeof *gy), *gdx = malloc(nx * sizeof *gdx);
        be->download(be, gy, by, ny);
        be->download(be, gdx, bdx, nx);
        expect_close("pool y", gy, y, ny, 0);
        expect_close("pool dx", gdx, dx, nx, 0);
        free(gy);
        free(gdx);
        float *all[] = {bx, by, bdy, bdx, aux};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) be->free(be, all[i]);
        nn_backend_free(be);
    }
    free(x);
    free(dy);
    free(y);
    free(dx);
}

static void test_max_pool(void **s)
{
    (void)s;
    pool_check(3, 4, 8, 8, 2, 2, 0);   /* the 2x2 path */
    pool_check(2, 3, 7, 9, 2, 2, 0);   /* odd sides: the last row/column unused */
    pool_check(2, 3, 7, 7, 3, 2, 1);   /* the generic path */
    pool_check(2, 3, 6, 6, 3, 1, 1);
}

static void test_relu_bwd(void **s)
{
    (void)s;
    size_t n = 100003; /* big enough to be split, odd */
    float *y = rand_buf(n), *dy = rand_buf(n), *dx0 = rand_buf(n);
    for (size_t i = 0; i < n; i += 7) y[i] = 0.0f;
    double *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) want[i] = (double)dx0[i] + (y[i] > 0.0f ? dy[i] : 0.0f);
    for (int t = 1; t <= 3; t++) {
        char err[128];
        struct nn_backend *be = nn_backend_cpu_new(t, err, sizeof err);
        assert_non_null(be);
        float *by = on_be(be, y, n), *bdy = on_be(be, dy, n), *bdx = on_be(be, dx0, n);
        float *got = malloc(n * sizeof *got);
        be->relu_bwd(be, bdx, by, bdy, n);
        be->download(be, got, bdx, n);
        expect_close("relu dx", got, want, n, 0);
        free(got);
        be->free(be, by);
        be->free(be, bdy);
        be->free(be, bdx);
        nn_backend_free(be);
    }
    free(y);
    free(dy);
    free(dx0);
    free(want);
}

/* --- batch norm ----------------------------------------------------------------- */

static void test_batch_norm(void **s)
{
    (void)s;
    int n = 6, c = 5;
    size_t hw = 37, nx = (size_t)n * c * hw; /* hw not a multiple of the lanes */
    float *x = rand_buf(nx), *dy = rand_buf(nx), *gamma = rand_buf((size_t)c);
    float *beta = rand_buf((size_t)c);
    for (size_t i = 0; i < nx; i++) x[i] = 3.0f + 2.0f * x[i]; /* off zero */
    double *y = malloc(nx * sizeof *y), *dx = malloc(nx * sizeof *dx);
    double *dg = calloc((size_t)c, sizeof *dg), *dbt = calloc((size_t)c, sizeof *dbt);
    double cnt = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double m = 0, v = 0, sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < hw; j++) m += x[((size_t)i * c + ch) * hw + j];
        m /= cnt;
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < hw; j++) {
                double e = x[((size_t)i * c + ch) * hw + j] - m;
                v += e * e;
            }
        v /= cnt;
        double inv = 1.0 / sqrt(v + 1e-5);
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < hw; j++) {
                size_t k = ((size_t)i * c + ch) * hw + j;
                double xh = (x[k] - m) * inv;
                y[k] = gamma[ch] * xh + beta[ch];
                sdy += dy[k];
                sdyx += dy[k] * xh;
            }
        dg[ch] = sdyx;
        dbt[ch] = sdy;
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < hw; j++) {
                size_t k = ((size_t)i * c + ch) * hw + j;
                double xh = (x[k] - m) * inv;
                dx[k] = gamma[ch] * inv / cnt * (cnt * dy[k] - sdy - xh * sdyx);
            }
    }
    for (int t = 1; t <= 3; t++) {
        char err[128];
        struct nn_backend *be = nn_backend_cpu_new(t, err, sizeof err);
        assert_non_null(be);
        float *bx = on_be(be, x, nx), *bdy = on_be(be, dy, nx), *by = on_be(be, NULL, nx);
        float *bdx = on_be(be, NULL, nx), *bg = on_be(be, gamma, (size_t)c);
        float *bb = on_be(be, beta, (size_t)c), *rm = on_be(be, NULL, (size_t)c);
        float *rv = on_be(be, NULL, (size_t)c), *save = on_be(be, NULL, 2 * (size_t)c);
        float *bdg = on_be(be, NULL, (size_t)c), *bdb = on_be(be, NULL, (size_t)c);
        be->bn_fwd(be, n, c, hw, bx, bg, bb, rm, rv, by, save, 1, 0.1f, 1e-5f);
        be->bn_bwd(be, n, c, hw, bx, bg, save, bdy, bdx, bdg, bdb, 1);
        float *got = malloc(nx * sizeof *got), gc[5];
        be->download(be, got, by, nx);
        expect_close("bn y", got, y, nx, 4.0);
        be->download(be, got, bdx, nx);
        expect_close("bn dx", got, dx, nx, 4.0);
        be->download(be, gc, bdg, (size_t)c);
        expect_close("bn dgamma", gc, dg, (size_t)c, cnt);
        be->download(be, gc, bdb, (size_t)c);
        expect_close("bn dbeta", gc, dbt, (size_t)c, cnt);
        free(got);
        float *all[] = {bx, bdy, by, bdx, bg, bb, rm, rv, save, bdg, bdb};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) be->free(be, all[i]);
        nn_backend_free(be);
    }
    free(x);
    free(dy);
    free(gamma);
    free(beta);
    free(y);
    free(dx);
    free(dg);
    free(dbt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_one_image_per_chunk),
        cmocka_unit_test(test_conv_chunks),
        cmocka_unit_test(test_conv_pointwise),
        cmocka_unit_test(test_conv_depthwise),
        cmocka_unit_test(test_max_pool),
        cmocka_unit_test(test_relu_bwd),
        cmocka_unit_test(test_batch_norm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

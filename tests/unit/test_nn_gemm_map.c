/* test_nn_gemm_map.c - the CUDA backend's cuBLAS calls for the linear
 * layer, checked without a GPU: nn/gemm_colmajor.h chooses the arguments
 * (transposes, m/n/k, leading dimensions, which buffer is A and B, beta)
 * that nn/cuda/conv.cu passes to cublasSgemm; this test passes exactly
 * those to OpenBLAS's cblas_sgemm(CblasColMajor, ...) (the same
 * column-major semantics: C = alpha op(A) op(B) + beta C) and holds the
 * results to the CPU backend's linear_fwd / linear_bwd, the oracle, on odd
 * shapes, with backward accumulating into non-zero dx and dW and the
 * forward output pre-filled with NaN (beta must be 0 there, so it is
 * never read). It also checks what cuBLAS would reject or read out of
 * bounds: every leading dimension against BLAS's rule and every
 * operand's footprint against its buffer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cblas.h>

#include "nn/backend.h"
#include "nn/gemm_colmajor.h"

#define TOL 1e-5

struct lin {
    int n, in, out;
    float *x, *w, *dy;       /* inputs */
    size_t numel[3];         /* by enum gemm_operand */
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static float urand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) * 0x1.0p-24) * 2.0f - 1.0f;
}

static float *rand_buf(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = urand();
    return p;
}

static float *copy_buf(const float *src, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    memcpy(p, src, n * sizeof *p);
    return p;
}

static double rel_err(const float *got, const float *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= num)) num = d; /* NaN propagates */
        if (fabs(want[i]) > den) den = fabs(want[i]);
    }
    return den > 0 ? num / den : num;
}

static void expect_close(const char *what, const struct lin *L, const float *got, const float *want,
                         size_t n)
{
    double e = rel_err(got, want, n);
    if (!(e <= TOL))
        fail_msg("%s (n %d, in %d, out %d): relative error %.3g > %.1g", what, L->n, L->in, L->out, e,
                 TOL);
}

/* What cublasSgemm checks (CUBLAS_STATUS_INVALID_VALUE otherwise) and
 * what it would read or write: op(A) is m x k, so A is stored as
 * (transa ? k x m : m x k) column-major with lda >= its rows, and its
 * last element lies at lda * (cols - 1) + rows - 1; likewise B and C. */
static void check_shape(const struct gemm_colmajor *g, const struct lin *L, size_t c_numel)
{
    assert_true(g->m >= 0 && g->n >= 0 && g->k >= 0);
    assert_true(g->a >= GEMM_X && g->a <= GEMM_DY && g->b >= GEMM_X && g->b <= GEMM_DY);
    int a_rows = g->transa ? g->k : g->m, a_cols = g->transa ? g->m : g->k;
    int b_rows = g->transb ? g->n : g->k, b_cols = g->transb ? g->k : g->n;
    assert_true(g->lda >= (a_rows > 1 ? a_rows : 1));
    assert_true(g->ldb >= (b_rows > 1 ? b_rows : 1));
    assert_true(g->ldc >= (g->m > 1 ? g->m : 1));
    assert_true((size_t)g->lda * (size_t)(a_cols - 1) + (size_t)a_rows <= L->numel[g->a]);
    assert_true((size_t)g->ldb * (size_t)(b_cols - 1) + (size_t)b_rows <= L->numel[g->b]);
    assert_true((size_t)g->ldc * (size_t)(g->n - 1) + (size_t)g->m <= c_numel);
}

/* The call conv.cu makes, with OpenBLAS in place of cuBLAS. */
static void run_map(const struct gemm_colmajor *g, const struct lin *L, float *c, size_t c_numel)
{
    check_shape(g, L, c_numel);
    const float *ops[3] = {L->x, L->w, L->dy};
    cblas_sgemm(CblasColMajor, g->transa ? CblasTrans : CblasNoTrans,
                g->transb ? CblasTrans : CblasNoTrans, g->m, g->n, g->k, 1.0f, ops[g->a], g->lda,
                ops[g->b], g->ldb, g->beta, c, g->ldc);
}

static void linear_case(struct nn_backend *cpu, int n, int in, int out)
{
    struct lin L = {n, in, out, NULL, NULL, NULL, {0, 0, 0}};
    L.numel[GEMM_X] = (size_t)n * in;
    L.numel[GEMM_W] = (size_t)out * in;
    L.numel[GEMM_DY] = (size_t)n * out;
    L.x = rand_buf(L.numel[GEMM_X]);
    L.w = rand_buf(L.numel[GEMM_W]);
    L.dy = rand_buf(L.numel[GEMM_DY]);

    /* forward: the oracle's y, and the mapping's over a NaN-filled y */
    size_t ny = (size_t)n * out;
    float *y_ref = rand_buf(ny), *y_map = rand_buf(ny);
    for (size_t i = 0; i < ny; i++) y_map[i] = NAN;
    cpu->linear_fwd(cpu, n, in, out, L.x, L.w, NULL, y_ref);
    struct gemm_colmajor g = gemm_colmajor_linear_fwd(n, in, out);
    assert_true(g.beta == 0.0f);
    run_map(&g, &L, y_map, ny);
    expect_close("y", &L, y_map, y_ref, ny);

    /* backward into non-zero gradients: both must add */
    size_t ndx = (size_t)n * in, ndw = (size_t)out * in;
    float *dx_ref = rand_buf(ndx), *dw_ref = rand_buf(ndw);
    float *dx_map = copy_buf(dx_ref, ndx), *dw_map = copy_buf(dw_ref, ndw);
    float *dx0 = copy_buf(dx_ref, ndx);
    cpu->linear_bwd(cpu, n, in, out, L.x, L.w, L.dy, dx_ref, dw_ref, NULL);
    g = gemm_colmajor_linear_bwd_data(n, in, out);
    run_map(&g, &L, dx_map, ndx);
    expect_close("dx", &L, dx_map, dx_ref, ndx);
    g = gemm_colmajor_linear_bwd_filter(n, in, out);
    run_map(&g, &L, dw_map, ndw);
    expect_close("dW", &L, dw_map, dw_ref, ndw);
    /* the accumulation is visible: the result is not the fresh product */
    double moved = 0;
    for (size_t i = 0; i < ndx; i++) moved = fmax(moved, fabs((double)dx_ref[i] - dx0[i]));
    assert_true(moved > 0);

    free(L.x);
    free(L.w);
    free(L.dy);
    free(y_ref);
    free(y_map);
    free(dx_ref);
    free(dw_ref);
    free(dx_map);
    free(dw_map);
    free(dx0);
}

static void test_linear_shapes(void **st)
{
    (void)st;
    char err[256];
    struct nn_backend *cpu = nn_backend_cpu_new(1, err, sizeof err);
    assert_non_null(cpu);
    /* n, in, out: ones, primes, n > in, out > in, a wide one, a tall one */
    static const int shapes[][3] = {
        {1, 1, 1},  {1, 7, 3},    {5, 1, 4},   {7, 13, 5},   {3, 17, 1},
        {33, 65, 9}, {2, 3, 129}, {129, 2, 3}, {64, 256, 100}, {11, 5, 23},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        linear_case(cpu, shapes[i][0], shapes[i][1], shapes[i][2]);
    nn_backend_free(cpu);
}

/* The forward overwrites, the backward accumulates: the table's rule
 * (nn/backend.h), independent of the shapes above. */
static void test_betas(void **st)
{
    (void)st;
    assert_true(gemm_colmajor_linear_fwd(4, 5, 6).beta == 0.0f);
    assert_true(gemm_colmajor_linear_bwd_data(4, 5, 6).beta == 1.0f);
    assert_true(gemm_colmajor_linear_bwd_filter(4, 5, 6).beta == 1.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_shapes),
        cmocka_unit_test(test_betas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

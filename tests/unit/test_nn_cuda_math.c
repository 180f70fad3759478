/* test_nn_cuda_math.c - the CUDA backend's per-element kernel rules
 * (nn/kernel_math.h: the very functions its max-pool and dropout
 * kernels call, one element per thread) run on the host, element by
 * element, against the CPU backend, the oracle, on any machine:
 *   - max pooling forward: every output's value and argmax equal the CPU
 *     backend's (bit for bit: a maximum is exact);
 *   - max pooling backward: the kernel's gather per input element (which
 *     outputs' windows cover it: the index arithmetic the CPU backend's
 *     scatter does not need) against the CPU backend's scatter, into
 *     non-zero gradients, within 1e-6 relative (the two add in different
 *     groupings), over strides below, equal to and above the kernel size
 *     (inputs no window covers), padding, and non-square planes;
 *   - the dropout mask: bit for bit the CPU backend's.
 * What this cannot show is the launch itself (grid, threads): that is
 * tests/unit/test_nn_cuda.c's, on a GPU. */
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
#include "nn/kernel_math.h"

static uint64_t rng_state = 12345;

static uint64_t next_u64(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng_state >> 11;
}

static float *rand_buf(size_t n)
{
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = (float)((double)(next_u64() >> 29) * 0x1.0p-24 * 2.0 - 1.0);
    return p;
}

/* n distinct values, shuffled (a max pool without ties), or with ties */
static float *pool_input(size_t n, int ties)
{
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = ties ? (float)(i % 3) : 0.01f * (float)i - 0.005f * (float)n;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = next_u64() % (i + 1);
        float t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

static int out_size(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

static void maxpool_case(struct nn_backend *cpu, int n, int c, int h, int w, int k, int s, int p, int ties)
{
    struct nn_pool_desc d = {n, c, h, w, k, k, s, s, p, p, out_size(h, k, s, p), out_size(w, k, s, p), 1};
    struct cu_pool_dims g = {d.n, d.c, d.h, d.w, d.kh, d.kw, d.sh, d.sw, d.ph, d.pw, d.ho, d.wo};
    size_t nin = (size_t)n * c * h * w, nout = (size_t)n * c * d.ho * d.wo;
    float *x = pool_input(nin, ties);
    float *y_cpu = malloc(nout * sizeof *y_cpu), *y_gpu = malloc(nout * sizeof *y_gpu);
    int32_t *arg_cpu = malloc(nout * sizeof *arg_cpu), *arg_gpu = malloc(nout * sizeof *arg_gpu);
    assert_true(y_cpu && y_gpu && arg_cpu && arg_gpu);
    cpu->pool2d_fwd(cpu, &d, x, y_cpu, (float *)(void *)arg_cpu);
    for (size_t o = 0; o < nout; o++) y_gpu[o] = cu_maxpool_out(g, x, o, &arg_gpu[o]);
    assert_memory_equal(y_gpu, y_cpu, nout * sizeof *y_cpu);
    assert_memory_equal(arg_gpu, arg_cpu, nout * sizeof *arg_cpu);

    float *dy = rand_buf(nout), *dx_cpu = rand_buf(nin);
    float *dx_gpu = malloc(nin * sizeof *dx_gpu);
    assert_non_null(dx_gpu);
    memcpy(dx_gpu, dx_cpu, nin * sizeof *dx_gpu);
    cpu->pool2d_bwd(cpu, &d, x, y_cpu, (const float *)(const void *)arg_cpu, dy, dx_cpu);
    for (size_t i = 0; i < nin; i++) dx_gpu[i] += cu_maxpool_grad_in(g, arg_gpu, dy, i);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < nin; i++) {
        worst = fmax(worst, fabs((double)dx_gpu[i] - dx_cpu[i]));
        scale = fmax(scale, fabs(dx_cpu[i]));
    }
    if (!(worst <= 1e-6 * scale))
        fail_msg("maxpool backward %dx%dx%dx%d k%d s%d p%d: error %.3g (scale %.3g)", n, c, h, w, k, s,
                 p, worst, scale);
    free(x);
    free(y_cpu);
    free(y_gpu);
    free(arg_cpu);
    free(arg_gpu);
    free(dy);
    free(dx_cpu);
    free(dx_gpu);
}

static void test_maxpool(void **st)
{
    (void)st;
    char err[256];
    struct nn_backend *cpu = nn_backend_cpu_new(1, err, sizeof err);
    assert_non_null(cpu);
    /* n, c, h, w, kernel, stride, padding, ties */
    static const int cases[][8] = {
        {2, 3, 9, 9, 3, 2, 1, 0},  /* the DARTS reduction pool */
        {2, 3, 8, 8, 3, 1, 1, 0},  /* the DARTS normal pool */
        {2, 3, 8, 8, 2, 2, 0, 0},  /* stride = kernel */
        {1, 2, 10, 7, 2, 3, 0, 0}, /* stride > kernel: inputs in no window */
        {1, 2, 11, 6, 5, 2, 2, 0}, /* wide windows, padding 2, non-square */
        {3, 1, 5, 5, 3, 2, 1, 1},  /* ties: the first maximum */
        {1, 1, 1, 1, 1, 1, 0, 0},  /* one pixel */
        {1, 4, 4, 9, 3, 3, 1, 0},  /* stride = kernel with padding */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int *k = cases[i];
        maxpool_case(cpu, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]);
    }
    nn_backend_free(cpu);
}

static void test_dropout(void **st)
{
    (void)st;
    char err[256];
    struct nn_backend *cpu = nn_backend_cpu_new(1, err, sizeof err);
    assert_non_null(cpu);
    const size_t n = 10007;
    float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
    assert_true(want && got);
    static const float ps[] = {0.0f, 0.37f, 0.5f, 0.999f, 1.0f};
    for (size_t t = 0; t < sizeof ps / sizeof *ps; t++) {
        float p = ps[t];
        uint64_t seed = 0x1234567ULL * (t + 1);
        cpu->dropout_mask(cpu, want, n, p, seed);
        /* cu_dropout_mask's host-side constants */
        float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
        uint64_t thr = p >= 1.0f ? UINT64_MAX : (uint64_t)((double)p * 0x1.0p53);
        for (size_t i = 0; i < n; i++) got[i] = cu_dropout_at(seed, i, thr, keep);
        assert_memory_equal(got, want, n * sizeof *got);
    }
    free(want);
    free(got);
    nn_backend_free(cpu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

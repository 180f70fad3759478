/*
 * kernels.cu - the CUDA backend's small kernels: element-wise ops,
 * dropout masks, the mixed op's weighted sum, row softmax, softmax
 * cross-entropy, channel copies, the linear layer's bias, and the
 * optimizer updates (SGD, AdamW: nn/optim_math.h's element rules, one
 * element per thread) with the sum of squares gradient clipping needs.
 *
 * Grid-stride loops of CU_THREADS threads. Each mirrors its loop in
 * nn/cpu.c (the oracle) closely enough to hold the same tolerance:
 * sums that feed a gradient or a loss are taken in double, and the
 * dropout mask is the same function of (seed, index) bit for bit.
 */
#include "nn/cuda/internal.h"

#include "nn/kernel_math.h"
#include "nn/optim_math.h"

/* atomicAdd on doubles (the reductions below) needs compute capability
 * 6.0; the Makefile's CUDA_ARCHS are 80 and 90 */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 600
#error "the CUDA backend needs compute capability 6.0 or later (CUDA_ARCHS)"
#endif

#define GRID_STRIDE(i, n)                                                        \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

#define LAUNCH(be, n, kernel, ...)                                                   \
    do {                                                                             \
        if ((n) == 0) break;                                                         \
        kernel<<<cu_blocks(cu_ctx_of(be), (n)), CU_THREADS>>>(__VA_ARGS__);          \
        CU_LAUNCHED();                                                               \
    } while (0)

/* --- element-wise ------------------------------------------------------------------ */

__global__ static void k_add(float *y, const float *a, const float *b, size_t n)
{
    GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}
__global__ static void k_axpy(float *y, float alpha, const float *x, size_t n)
{
    GRID_STRIDE(i, n) y[i] += alpha * x[i];
}
__global__ static void k_scale(float *y, float alpha, const float *x, size_t n)
{
    GRID_STRIDE(i, n) y[i] = alpha * x[i];
}
__global__ static void k_relu_fwd(float *y, const float *x, size_t n)
{
    GRID_STRIDE(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
__global__ static void k_relu_bwd(float *dx, const float *y, const float *dy, size_t n)
{
    GRID_STRIDE(i, n) dx[i] += dy[i] * (float)(y[i] > 0.0f);
}
__global__ static void k_mul_fwd(float *y, const float *x, const float *m, size_t n)
{
    GRID_STRIDE(i, n) y[i] = x[i] * m[i];
}
__global__ static void k_mul_bwd(float *dx, const float *m, const float *dy, size_t n)
{
    GRID_STRIDE(i, n) dx[i] += dy[i] * m[i];
}

void cu_add(struct nn_backend *be, float *y, const float *a, const float *b, size_t n)
{
    LAUNCH(be, n, k_add, y, a, b, n);
}
void cu_axpy(struct nn_backend *be, float *y, float alpha, const float *x, size_t n)
{
    LAUNCH(be, n, k_axpy, y, alpha, x, n);
}
void cu_scale(struct nn_backend *be, float *y, float alpha, const float *x, size_t n)
{
    LAUNCH(be, n, k_scale, y, alpha, x, n);
}
void cu_relu_fwd(struct nn_backend *be, float *y, const float *x, size_t n)
{
    LAUNCH(be, n, k_relu_fwd, y, x, n);
}
void cu_relu_bwd(struct nn_backend *be, float *dx, const float *y, const float *dy, size_t n)
{
    LAUNCH(be, n, k_relu_bwd, dx, y, dy, n);
}
void cu_mul_fwd(struct nn_backend *be, float *y, const float *x, const float *m, size_t n)
{
    LAUNCH(be, n, k_mul_fwd, y, x, m, n);
}
void cu_mul_bwd(struct nn_backend *be, float *dx, const float *m, const float *dy, size_t n)
{
    LAUNCH(be, n, k_mul_bwd, dx, m, dy, n);
}

/* cpu_dropout_mask's exact rule (nn/kernel_math.h, tested on the host) */
__global__ static void k_dropout_mask(float *m, size_t n, uint64_t thr, float keep, uint64_t seed)
{
    GRID_STRIDE(i, n) m[i] = cu_dropout_at(seed, i, thr, keep);
}

void cu_dropout_mask(struct nn_backend *be, float *m, size_t n, float p, uint64_t seed)
{
    float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    uint64_t thr = p >= 1.0f ? UINT64_MAX : (uint64_t)((double)p * 0x1.0p53);
    LAUNCH(be, n, k_dropout_mask, m, n, thr, keep, seed);
}

/* --- weighted sum (the DARTS mixed op) ------------------------------------------------ */

/* Inputs go to the kernels by value, WSUM_CHUNK at a time. */
#define WSUM_CHUNK 8

struct wsum_args {
    const float *x[WSUM_CHUNK];
    float *dx[WSUM_CHUNK];
    int k;
};

/* y (=|+=) sum_j w[j] x[j] */
__global__ static void k_wsum_fwd(float *y, struct wsum_args a, const float *w, int accumulate,
                                  size_t n)
{
    GRID_STRIDE(i, n) {
        float s = accumulate ? y[i] : w[0] * a.x[0][i];
        for (int j = accumulate ? 0 : 1; j < a.k; j++) s += w[j] * a.x[j][i];
        y[i] = s;
    }
}

void cu_wsum_fwd(struct nn_backend *be, float *y, const float *const *xs, const float *w, int k,
                 size_t n)
{
    for (int j0 = 0; j0 < k; j0 += WSUM_CHUNK) {
        struct wsum_args a = {};
        a.k = k - j0 < WSUM_CHUNK ? k - j0 : WSUM_CHUNK;
        for (int j = 0; j < a.k; j++) a.x[j] = xs[j0 + j];
        LAUNCH(be, n, k_wsum_fwd, y, a, w + j0, j0 > 0, n);
    }
}

/* dx[j] += w[j] dy for the wanted dx[j] */
__global__ static void k_wsum_bwd_dx(struct wsum_args a, const float *w, const float *dy, size_t n)
{
    GRID_STRIDE(i, n) {
        float g = dy[i];
        for (int j = 0; j < a.k; j++)
            if (a.dx[j]) a.dx[j][i] += w[j] * g;
    }
}

/* red[j] += <x[j], dy>: per-thread float sums, block sums through shared
 * memory, one double atomic per block and input */
__global__ static void k_wsum_bwd_dw(struct wsum_args a, const float *dy, double *red, size_t n)
{
    float s[WSUM_CHUNK];
    for (int j = 0; j < WSUM_CHUNK; j++) s[j] = 0.0f;
    GRID_STRIDE(i, n) {
        float g = dy[i];
        for (int j = 0; j < a.k; j++) s[j] += a.x[j][i] * g;
    }
    __shared__ float sh[WSUM_CHUNK][32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int j = 0; j < a.k; j++) {
        float v = s[j];
        for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
        if (lane == 0) sh[j][warp] = v;
    }
    __syncthreads();
    if (warp == 0)
        for (int j = 0; j < a.k; j++) {
            float v = lane < nw ? sh[j][lane] : 0.0f;
            for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
            if (lane == 0) atomicAdd(&red[j], (double)v);
        }
}

__global__ static void k_add_red(float *dw, const double *red, int k)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < k) dw[j] += (float)red[j];
}

void cu_wsum_bwd(struct nn_backend *be, float *const *dxs, float *dw, const float *const *xs,
                 const float *w, const float *dy, int k, size_t n)
{
    struct cu_ctx *c = cu_ctx_of(be);
    if (!n) return;
    double *red = dw ? cu_reduction(c, (size_t)k) : NULL;
    for (int j0 = 0; j0 < k; j0 += WSUM_CHUNK) {
        struct wsum_args a = {};
        a.k = k - j0 < WSUM_CHUNK ? k - j0 : WSUM_CHUNK;
        int any_dx = 0;
        for (int j = 0; j < a.k; j++) {
            a.x[j] = xs[j0 + j];
            a.dx[j] = dxs ? dxs[j0 + j] : NULL;
            any_dx |= a.dx[j] != NULL;
        }
        if (any_dx) LAUNCH(be, n, k_wsum_bwd_dx, a, w + j0, dy, n);
        if (dw) LAUNCH(be, n, k_wsum_bwd_dw, a, dy, red + j0, n);
    }
    if (dw) {
        k_add_red<<<(k + 255) / 256, 256>>>(dw, red, k);
        CU_LAUNCHED();
    }
}

/* --- softmax and the loss ----------------------------------------------------------- */

/* one thread per row (rows are architecture weights or a batch) */
__global__ static void k_softmax_fwd(float *y, const float *x, int rows, int k)
{
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    cu_softmax_row(y + (size_t)r * k, x + (size_t)r * k, k);
}

__global__ static void k_softmax_bwd(float *dx, const float *y, const float *dy, int rows, int k)
{
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    cu_softmax_row_bwd(dx + (size_t)r * k, y + (size_t)r * k, dy + (size_t)r * k, k);
}

void cu_softmax_fwd(struct nn_backend *be, float *y, const float *x, int rows, int k)
{
    (void)be;
    if (rows <= 0 || k <= 0) return; /* a grid of 0 blocks is a launch error */
    k_softmax_fwd<<<(rows + 127) / 128, 128>>>(y, x, rows, k);
    CU_LAUNCHED();
}

void cu_softmax_bwd(struct nn_backend *be, float *dx, const float *y, const float *dy, int rows, int k)
{
    (void)be;
    if (rows <= 0 || k <= 0) return;
    k_softmax_bwd<<<(rows + 127) / 128, 128>>>(dx, y, dy, rows, k);
    CU_LAUNCHED();
}

/* One block: each thread takes rows, the block sums the row losses in
 * double and thread 0 writes the mean. */
#define CE_THREADS 256
__global__ static void k_ce_fwd(int n, int k, const float *logits, const float *labels,
                                float *probs, float *loss)
{
    double total = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        total += cu_ce_row(probs + (size_t)i * k, logits + (size_t)i * k, k, (int)labels[i]);
    __shared__ double sh[CE_THREADS];
    sh[threadIdx.x] = total;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) loss[0] = (float)(sh[0] / n);
}

__global__ static void k_ce_bwd(int n, int k, const float *probs, const float *labels,
                                const float *dloss, float *dlogits, size_t total)
{
    float a = dloss[0] / (float)n;
    GRID_STRIDE(i, total) {
        int row = (int)(i / k), j = (int)(i % k);
        int y = (int)labels[row];
        dlogits[i] += a * (probs[i] - (j == y ? 1.0f : 0.0f));
    }
}

void cu_ce_fwd(struct nn_backend *be, int n, int k, const float *logits, const float *labels,
               float *probs, float *loss)
{
    (void)be;
    k_ce_fwd<<<1, CE_THREADS>>>(n, k, logits, labels, probs, loss);
    CU_LAUNCHED();
}

void cu_ce_bwd(struct nn_backend *be, int n, int k, const float *probs, const float *labels,
               const float *dloss, float *dlogits)
{
    size_t total = (size_t)n * k;
    LAUNCH(be, total, k_ce_bwd, n, k, probs, labels, dloss, dlogits, total);
}

/* --- channel blocks ----------------------------------------------------------------- */

__global__ static void k_chan_copy(float *dst, int dst_c, int dst_c0, const float *src, int src_c,
                                   int src_c0, size_t len, size_t hw, int acc, size_t total)
{
    GRID_STRIDE(t, total) {
        size_t i = t / len, r = t % len;
        float *d = dst + ((size_t)i * dst_c + dst_c0) * hw + r;
        float v = src[((size_t)i * src_c + src_c0) * hw + r];
        if (acc) *d += v;
        else *d = v;
    }
}

void cu_chan_copy(struct nn_backend *be, float *dst, int dst_c, int dst_c0, const float *src,
                  int src_c, int src_c0, int c, int n, size_t hw, int acc)
{
    size_t len = (size_t)c * hw, total = len * n;
    LAUNCH(be, total, k_chan_copy, dst, dst_c, dst_c0, src, src_c, src_c0, len, hw, acc, total);
}

/* --- the linear layer's bias ----------------------------------------------------------- */

__global__ static void k_row_bias_add(float *y, const float *b, int cols, size_t total)
{
    GRID_STRIDE(i, total) y[i] += b[i % cols];
}

__global__ static void k_row_bias_grad(float *db, const float *dy, int rows, int cols)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    double s = 0;
    for (int i = 0; i < rows; i++) s += dy[(size_t)i * cols + j];
    db[j] += (float)s;
}

void cu_row_bias_add(struct cu_ctx *c, float *y, const float *b, int rows, int cols)
{
    size_t total = (size_t)rows * cols;
    if (!total) return;
    k_row_bias_add<<<cu_blocks(c, total), CU_THREADS>>>(y, b, cols, total);
    CU_LAUNCHED();
}

void cu_row_bias_grad(struct cu_ctx *c, float *db, const float *dy, int rows, int cols)
{
    (void)c;
    if (cols <= 0) return;
    k_row_bias_grad<<<(cols + 127) / 128, 128>>>(db, dy, rows, cols);
    CU_LAUNCHED();
}

/* --- optimizer updates ------------------------------------------------------------------ */

__global__ static void k_sgd(float *w, const float *g, float *buf, size_t n, double lr, double mu,
                             double wd, int nesterov)
{
    GRID_STRIDE(i, n) optim_math_sgd(w, g, buf, i, i + 1, lr, mu, wd, nesterov);
}

__global__ static void k_adam(float *w, const float *g, float *m, float *v, size_t n,
                              struct optim_math_adam a)
{
    GRID_STRIDE(i, n) optim_math_adam(w, g, m, v, i, i + 1, &a);
}

void cu_sgd_step(struct nn_backend *be, float *w, const float *g, float *buf, size_t n, double lr,
                 double momentum, double wd, int nesterov)
{
    LAUNCH(be, n, k_sgd, w, g, momentum != 0.0 ? buf : NULL, n, lr, momentum, wd, nesterov);
}

void cu_adam_step(struct nn_backend *be, float *w, const float *g, float *m, float *v, size_t n,
                  double lr, double beta1, double beta2, double eps, double wd, uint64_t t)
{
    /* the bias corrections on the host, by the CPU's own code */
    struct optim_math_adam a = optim_math_adam_consts(lr, beta1, beta2, eps, wd, t);
    LAUNCH(be, n, k_adam, w, g, m, v, n, a);
}

/* acc += sum x[i]^2: double per thread, warp shuffles, one atomic per block */
__global__ static void k_sumsq(const float *x, size_t n, double *acc)
{
    double s = 0.0;
    GRID_STRIDE(i, n) {
        double v = (double)x[i];
        s += v * v;
    }
    __shared__ double sh[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
    if (lane == 0) sh[warp] = s;
    __syncthreads();
    if (warp == 0) {
        s = lane < nw ? sh[lane] : 0.0;
        for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
        if (lane == 0) atomicAdd(acc, s);
    }
}

/* One accumulator for all k arrays, one copy back (the synchronisation). */
double cu_sumsq(struct nn_backend *be, const float *const *xs, const size_t *ns, int k)
{
    struct cu_ctx *c = cu_ctx_of(be);
    double *acc = cu_reduction(c, 1), h = 0.0;
    for (int j = 0; j < k; j++) LAUNCH(be, ns[j], k_sumsq, xs[j], ns[j], acc);
    CU_CHECK(cudaMemcpy(&h, acc, sizeof h, cudaMemcpyDeviceToHost));
    return h;
}

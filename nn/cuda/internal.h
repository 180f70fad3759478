/*
 * internal.h - shared by the CUDA backend's files (the .cu files in nn/cuda/): its
 * context, the fatal-error checks and the launch helpers. Model code
 * includes nn/cuda.h instead.
 *
 * Files: backend.cu (the table, memory pool, device queries),
 * conv.cu (cuDNN convolutions with the per-shape algorithm cache, cuBLAS
 * linear layers), norm.cu (pooling and batch norm), kernels.cu
 * (element-wise ops, softmax, the loss, the weighted sum, channel copies,
 * the optimizer updates and the gradient norm).
 *
 * The table's kernels cannot fail (nn/backend.h), so a CUDA, cuDNN or
 * cuBLAS error inside one is fatal: it prints file, line and the
 * library's message and aborts (the engine runs in trainer processes,
 * which may fail fast). Only alloc reports failure, with NULL.
 */
#ifndef PODIUM_NN_CUDA_INTERNAL_H
#define PODIUM_NN_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

/* The legacy cuDNN API as cuDNN 8 and 9 have it: CUDNN_FMA_MATH and the
 * *_v7 algorithm queries are cuDNN 8's; cuDNN 9 deprecates (but keeps)
 * every descriptor-based call used here; nn_backend_cuda_new (backend.cu)
 * refuses a library of another major version at run time. */
#if !defined(CUDNN_MAJOR) || CUDNN_MAJOR < 8 || CUDNN_MAJOR > 9
#error "the CUDA backend is written for cuDNN 8 or 9 (its legacy convolution API)"
#endif

extern "C" {
#include "nn/backend.h"
#include "nn/cuda.h"
}

struct cu_conv_entry;        /* conv.cu's cache of algorithms per shape */

struct cu_pool {
    /* live blocks: open addressing, pointer -> bytes (NULL: empty slot,
     * CU_TOMB: deleted) */
    void **live_p;
    size_t *live_b;
    size_t live_cap, live_n, live_tomb;
    /* freed blocks kept for reuse */
    void **free_p;
    size_t *free_b;
    size_t free_n, free_cap, free_bytes;
    size_t held, peak;       /* bytes cudaMalloc'd now (pool + workspace), most ever */
};

struct cu_ctx {
    int device, flags;
    int sm_count;
    char name[256];
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    struct cu_pool pool;
    void *ws;                /* cuDNN workspace and other scratch */
    size_t ws_bytes;
    double *red;             /* per-channel / per-weight sums (reductions) */
    size_t red_cap;          /* doubles */
    float *ones;             /* 1.0f (BN without affine: scale), grown */
    float *zeros;            /* 0.0f (its bias) */
    size_t oz_cap;           /* floats in each */
    struct cu_conv_entry *conv;
    size_t conv_cap, conv_n;
    /* descriptors set per call (pooling, batch norm) */
    cudnnTensorDescriptor_t td_a, td_b, td_c;
    cudnnPoolingDescriptor_t pool_desc;
};

static inline struct cu_ctx *cu_ctx_of(struct nn_backend *be) { return (struct cu_ctx *)be->ctx; }

/* fatal checks */
void cu_fatal(const char *file, int line, const char *what, const char *msg);
#define CU_CHECK(x)                                                                    \
    do {                                                                               \
        cudaError_t e_ = (x);                                                          \
        if (e_ != cudaSuccess) cu_fatal(__FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
    } while (0)
#define CUDNN_CHECK(x)                                                                  \
    do {                                                                                \
        cudnnStatus_t s_ = (x);                                                         \
        if (s_ != CUDNN_STATUS_SUCCESS) cu_fatal(__FILE__, __LINE__, #x, cudnnGetErrorString(s_)); \
    } while (0)
#define CUBLAS_CHECK(x)                                                                 \
    do {                                                                                \
        cublasStatus_t s_ = (x);                                                        \
        if (s_ != CUBLAS_STATUS_SUCCESS) cu_fatal(__FILE__, __LINE__, #x, cublasGetStatusString(s_)); \
    } while (0)
/* after a kernel launch: a bad configuration shows up here */
#define CU_LAUNCHED() CU_CHECK(cudaGetLastError())

/* The workspace, grown (never shrunk) to at least bytes; aborts when the
 * device is out of memory. */
void *cu_workspace(struct cu_ctx *c, size_t bytes);
/* n doubles of reduction scratch, zeroed (on the stream). */
double *cu_reduction(struct cu_ctx *c, size_t n);
/* n ones and n zeros (floats) for cuDNN calls that want a scale and a bias. */
void cu_ones_zeros(struct cu_ctx *c, size_t n, const float **ones, const float **zeros);
/* Blocks for a grid-stride loop over n items with 256 threads. */
int cu_blocks(const struct cu_ctx *c, size_t n);
#define CU_THREADS 256

/* Table entries, by file. */
void cu_conv2d_fwd(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                   const float *w, const float *b, float *y);
void cu_conv2d_bwd(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                   const float *w, const float *dy, float *dx, float *dw, float *db);
void cu_linear_fwd(struct nn_backend *be, int n, int in, int out, const float *x, const float *w,
                   const float *b, float *y);
void cu_linear_bwd(struct nn_backend *be, int n, int in, int out, const float *x, const float *w,
                   const float *dy, float *dx, float *dw, float *db);
void cu_conv_cache_free(struct cu_ctx *c);

void cu_pool2d_fwd(struct nn_backend *be, const struct nn_pool_desc *d, const float *x, float *y,
                   float *aux);
void cu_pool2d_bwd(struct nn_backend *be, const struct nn_pool_desc *d, const float *x,
                   const float *y, const float *aux, const float *dy, float *dx);
void cu_bn_fwd(struct nn_backend *be, int n, int c, size_t hw, const float *x, const float *gamma,
               const float *beta, float *rmean, float *rvar, float *y, float *save, int training,
               float momentum, float eps);
void cu_bn_bwd(struct nn_backend *be, int n, int c, size_t hw, const float *x, const float *gamma,
               const float *save, const float *dy, float *dx, float *dgamma, float *dbeta,
               int training);
void cu_gap_fwd(struct nn_backend *be, int n, int c, size_t hw, const float *x, float *y);
void cu_gap_bwd(struct nn_backend *be, int n, int c, size_t hw, const float *dy, float *dx);

void cu_fill(struct nn_backend *be, float *dst, float v, size_t n);
void cu_copy(struct nn_backend *be, float *dst, const float *src, size_t n);
void cu_add(struct nn_backend *be, float *y, const float *a, const float *b, size_t n);
void cu_axpy(struct nn_backend *be, float *y, float alpha, const float *x, size_t n);
void cu_scale(struct nn_backend *be, float *y, float alpha, const float *x, size_t n);
void cu_relu_fwd(struct nn_backend *be, float *y, const float *x, size_t n);
void cu_relu_bwd(struct nn_backend *be, float *dx, const float *y, const float *dy, size_t n);
void cu_mul_fwd(struct nn_backend *be, float *y, const float *x, const float *m, size_t n);
void cu_mul_bwd(struct nn_backend *be, float *dx, const float *m, const float *dy, size_t n);
void cu_dropout_mask(struct nn_backend *be, float *m, size_t n, float p, uint64_t seed);
void cu_wsum_fwd(struct nn_backend *be, float *y, const float *const *xs, const float *w, int k,
                 size_t n);
void cu_wsum_bwd(struct nn_backend *be, float *const *dxs, float *dw, const float *const *xs,
                 const float *w, const float *dy, int k, size_t n);
void cu_softmax_fwd(struct nn_backend *be, float *y, const float *x, int rows, int k);
void cu_softmax_bwd(struct nn_backend *be, float *dx, const float *y, const float *dy, int rows,
                    int k);
void cu_chan_copy(struct nn_backend *be, float *dst, int dst_c, int dst_c0, const float *src,
                  int src_c, int src_c0, int c, int n, size_t hw, int acc);
void cu_ce_fwd(struct nn_backend *be, int n, int k, const float *logits, const float *labels,
               float *probs, float *loss);
void cu_ce_bwd(struct nn_backend *be, int n, int k, const float *probs, const float *labels,
               const float *dloss, float *dlogits);
void cu_sgd_step(struct nn_backend *be, float *w, const float *g, float *buf, size_t n, double lr,
                 double momentum, double wd, int nesterov);
void cu_adam_step(struct nn_backend *be, float *w, const float *g, float *m, float *v, size_t n,
                  double lr, double beta1, double beta2, double eps, double wd, uint64_t t);
double cu_sumsq(struct nn_backend *be, const float *const *xs, const size_t *ns, int k);
/* per-row bias: y[i, j] += b[j] for i < rows, j < cols; db[j] += sum_i dy[i, j] */
void cu_row_bias_add(struct cu_ctx *c, float *y, const float *b, int rows, int cols);
void cu_row_bias_grad(struct cu_ctx *c, float *db, const float *dy, int rows, int cols);

#endif

/*
 * backend.cu - the CUDA backend's table (see nn/cuda.h), its context,
 * the caching memory pool, the workspace and the device queries.
 *
 * The pool: alloc hands out cudaMalloc'd blocks (256-byte aligned, which
 * covers the table's 64); free keeps a block in a cache instead of
 * cudaFree'ing it, and alloc takes the smallest cached block that fits
 * and is at most twice the request. The cache holds at most
 * CACHE_MAX_BYTES; past that a freed block is released. When cudaMalloc
 * fails, the cache is released and the call tried once more. Live blocks
 * are found by pointer in an open-addressing table. Called from the one
 * thread that drives the backend.
 *
 * Releasing device memory (cu_release): every kernel runs in order on the
 * default stream, so a block handed back to the cache may be reused at
 * once, but cudaFree'ing memory that a queued kernel may still read or
 * write (the workspace when it grows between two cuDNN calls of one
 * convolution backward, a freed tensor when the cache is full) needs the
 * device to be idle first: CUDA documents only that cudaFree "may"
 * synchronise, so we synchronise ourselves. It happens when a buffer
 * grows or the cache overflows, not per step.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cuda/internal.h"

#define CACHE_MAX_BYTES ((size_t)1 << 30)
#define CU_TOMB ((void *)1)

void cu_fatal(const char *file, int line, const char *what, const char *msg)
{
    fprintf(stderr, "%s:%d: %s failed: %s\n", file, line, what, msg ? msg : "?");
    abort();
}

int cu_blocks(const struct cu_ctx *c, size_t n)
{
    size_t b = (n + CU_THREADS - 1) / CU_THREADS;
    size_t cap = (size_t)(c->sm_count > 0 ? c->sm_count : 80) * 16;
    if (b > cap) b = cap;
    return b < 1 ? 1 : (int)b;
}

/* --- the pool's table of live blocks -------------------------------------------- */

static size_t ptr_hash(const void *p, size_t cap)
{
    uint64_t z = (uint64_t)(uintptr_t)p;
    z ^= z >> 33;
    z *= 0xff51afd7ed558ccdULL;
    z ^= z >> 33;
    return (size_t)z & (cap - 1);
}

static int live_grow(struct cu_pool *p)
{
    size_t cap = p->live_cap ? 2 * p->live_cap : 1024;
    if (p->live_n * 4 < p->live_cap) cap = p->live_cap; /* mostly tombstones: rehash in place */
    void **np = (void **)calloc(cap, sizeof *np);
    size_t *nb = (size_t *)calloc(cap, sizeof *nb);
    if (!np || !nb) {
        free(np);
        free(nb);
        return -1;
    }
    for (size_t i = 0; i < p->live_cap; i++) {
        void *k = p->live_p[i];
        if (!k || k == CU_TOMB) continue;
        size_t j = ptr_hash(k, cap);
        while (np[j]) j = (j + 1) & (cap - 1);
        np[j] = k;
        nb[j] = p->live_b[i];
    }
    free(p->live_p);
    free(p->live_b);
    p->live_p = np;
    p->live_b = nb;
    p->live_cap = cap;
    p->live_tomb = 0;
    return 0;
}

static int live_put(struct cu_pool *p, void *k, size_t bytes)
{
    if ((p->live_n + p->live_tomb + 1) * 2 > p->live_cap && live_grow(p) != 0) return -1;
    size_t j = ptr_hash(k, p->live_cap);
    while (p->live_p[j] && p->live_p[j] != CU_TOMB) j = (j + 1) & (p->live_cap - 1);
    if (p->live_p[j] == CU_TOMB) p->live_tomb--;
    p->live_p[j] = k;
    p->live_b[j] = bytes;
    p->live_n++;
    return 0;
}

/* Remove k; its size, or 0 when it is not live. */
static size_t live_take(struct cu_pool *p, void *k)
{
    if (!p->live_cap) return 0;
    size_t j = ptr_hash(k, p->live_cap);
    while (p->live_p[j]) {
        if (p->live_p[j] == k) {
            p->live_p[j] = CU_TOMB;
            p->live_tomb++;
            p->live_n--;
            return p->live_b[j];
        }
        j = (j + 1) & (p->live_cap - 1);
    }
    return 0;
}

/* cudaFree after the device has finished every queued use of ptr. */
static void cu_release(void *ptr)
{
    if (!ptr) return;
    CU_CHECK(cudaDeviceSynchronize());
    CU_CHECK(cudaFree(ptr));
}

static void held_add(struct cu_pool *p, size_t bytes)
{
    p->held += bytes;
    if (p->held > p->peak) p->peak = p->held;
}

static void cache_release(struct cu_pool *p)
{
    if (p->free_n) CU_CHECK(cudaDeviceSynchronize());
    for (size_t i = 0; i < p->free_n; i++) {
        CU_CHECK(cudaFree(p->free_p[i]));
        p->held -= p->free_b[i];
    }
    p->free_n = 0;
    p->free_bytes = 0;
}

static float *cu_alloc(struct nn_backend *be, size_t n)
{
    struct cu_ctx *c = cu_ctx_of(be);
    struct cu_pool *p = &c->pool;
    size_t bytes = (n * sizeof(float) + 255) & ~(size_t)255;
    if (bytes == 0) bytes = 256;
    /* smallest cached block in [bytes, 2 bytes] */
    size_t best = (size_t)-1;
    for (size_t i = 0; i < p->free_n; i++)
        if (p->free_b[i] >= bytes && p->free_b[i] <= 2 * bytes &&
            (best == (size_t)-1 || p->free_b[i] < p->free_b[best]))
            best = i;
    void *ptr = NULL;
    size_t got = bytes;
    if (best != (size_t)-1) {
        ptr = p->free_p[best];
        got = p->free_b[best];
        p->free_bytes -= got;
        p->free_p[best] = p->free_p[p->free_n - 1];
        p->free_b[best] = p->free_b[p->free_n - 1];
        p->free_n--;
    } else {
        if (cudaMalloc(&ptr, bytes) != cudaSuccess) {
            cudaGetLastError(); /* out of memory is not sticky; clear it */
            cache_release(p);
            if (cudaMalloc(&ptr, bytes) != cudaSuccess) {
                cudaGetLastError();
                return NULL;
            }
        }
        held_add(p, bytes);
    }
    if (live_put(p, ptr, got) != 0) {
        cu_release(ptr); /* a cached block may still be in a queued kernel's hands */
        p->held -= got;
        return NULL;
    }
    return (float *)ptr;
}

static void cu_free(struct nn_backend *be, float *ptr)
{
    if (!ptr) return;
    struct cu_pool *p = &cu_ctx_of(be)->pool;
    size_t bytes = live_take(p, ptr);
    if (!bytes) cu_fatal(__FILE__, __LINE__, "free", "pointer not allocated by this backend");
    if (p->free_bytes + bytes > CACHE_MAX_BYTES) {
        cu_release(ptr);
        p->held -= bytes;
        return;
    }
    if (p->free_n == p->free_cap) {
        size_t cap = p->free_cap ? 2 * p->free_cap : 64;
        void **np = (void **)realloc(p->free_p, cap * sizeof *np);
        if (np) p->free_p = np;
        size_t *nb = np ? (size_t *)realloc(p->free_b, cap * sizeof *nb) : NULL;
        if (nb) p->free_b = nb;
        if (!np || !nb) { /* no room to remember it: give it back */
            cu_release(ptr);
            p->held -= bytes;
            return;
        }
        p->free_cap = cap;
    }
    p->free_p[p->free_n] = ptr;
    p->free_b[p->free_n] = bytes;
    p->free_n++;
    p->free_bytes += bytes;
}

void *cu_workspace(struct cu_ctx *c, size_t bytes)
{
    if (bytes <= c->ws_bytes) return c->ws;
    size_t want = (bytes + bytes / 4 + 255) & ~(size_t)255;
    if (c->ws) {
        cu_release(c->ws); /* an earlier cuDNN call of this step may still use it */
        c->pool.held -= c->ws_bytes;
        c->ws = NULL;
        c->ws_bytes = 0;
    }
    if (cudaMalloc(&c->ws, want) != cudaSuccess) {
        cudaGetLastError();
        cache_release(&c->pool);
        CU_CHECK(cudaMalloc(&c->ws, want));
    }
    c->ws_bytes = want;
    held_add(&c->pool, want);
    return c->ws;
}

double *cu_reduction(struct cu_ctx *c, size_t n)
{
    if (n > c->red_cap) {
        size_t cap = n < 1024 ? 1024 : n + n / 2;
        if (c->red) {
            cu_release(c->red);
            c->pool.held -= c->red_cap * sizeof(double);
        }
        CU_CHECK(cudaMalloc((void **)&c->red, cap * sizeof(double)));
        c->red_cap = cap;
        held_add(&c->pool, cap * sizeof(double));
    }
    CU_CHECK(cudaMemsetAsync(c->red, 0, n * sizeof(double), 0));
    return c->red;
}

__global__ static void k_fill(float *p, float v, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = v;
}

void cu_ones_zeros(struct cu_ctx *c, size_t n, const float **ones, const float **zeros)
{
    if (n > c->oz_cap) {
        size_t cap = n < 1024 ? 1024 : n;
        if (c->ones) {
            cu_release(c->ones);
            cu_release(c->zeros);
            c->pool.held -= 2 * c->oz_cap * sizeof(float);
        }
        CU_CHECK(cudaMalloc((void **)&c->ones, cap * sizeof(float)));
        CU_CHECK(cudaMalloc((void **)&c->zeros, cap * sizeof(float)));
        held_add(&c->pool, 2 * cap * sizeof(float));
        k_fill<<<cu_blocks(c, cap), CU_THREADS>>>(c->ones, 1.0f, cap);
        CU_LAUNCHED();
        CU_CHECK(cudaMemsetAsync(c->zeros, 0, cap * sizeof(float), 0));
        c->oz_cap = cap;
    }
    *ones = c->ones;
    *zeros = c->zeros;
}

/* --- memory entries ---------------------------------------------------------------- */

static void cu_upload(struct nn_backend *be, float *dst, const float *src, size_t n)
{
    (void)be;
    CU_CHECK(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyHostToDevice));
}

/* cudaMemcpy to pageable host memory returns when the copy (and every
 * kernel before it on the default stream) is done. */
static void cu_download(struct nn_backend *be, float *dst, const float *src, size_t n)
{
    (void)be;
    CU_CHECK(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost));
}

void cu_fill(struct nn_backend *be, float *dst, float v, size_t n)
{
    if (!n) return;
    if (v == 0.0f) {
        CU_CHECK(cudaMemsetAsync(dst, 0, n * sizeof(float), 0));
        return;
    }
    k_fill<<<cu_blocks(cu_ctx_of(be), n), CU_THREADS>>>(dst, v, n);
    CU_LAUNCHED();
}

/* memmove semantics, as the CPU backend: overlapping ranges go through
 * the workspace. */
void cu_copy(struct nn_backend *be, float *dst, const float *src, size_t n)
{
    if (!n || dst == src) return;
    size_t bytes = n * sizeof(float);
    if (dst < src + n && src < dst + n) {
        void *tmp = cu_workspace(cu_ctx_of(be), bytes);
        CU_CHECK(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, 0));
        src = (const float *)tmp;
    }
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
}

/* --- the table ----------------------------------------------------------------------- */

static void cu_destroy(struct nn_backend *be)
{
    struct cu_ctx *c = cu_ctx_of(be);
    cudaDeviceSynchronize();
    cu_conv_cache_free(c);
    if (c->td_a) cudnnDestroyTensorDescriptor(c->td_a);
    if (c->td_b) cudnnDestroyTensorDescriptor(c->td_b);
    if (c->td_c) cudnnDestroyTensorDescriptor(c->td_c);
    if (c->pool_desc) cudnnDestroyPoolingDescriptor(c->pool_desc);
    if (c->dnn) cudnnDestroy(c->dnn);
    if (c->blas) cublasDestroy(c->blas);
    /* blocks still live were leaked by the caller; release them anyway */
    for (size_t i = 0; i < c->pool.live_cap; i++)
        if (c->pool.live_p[i] && c->pool.live_p[i] != CU_TOMB) cudaFree(c->pool.live_p[i]);
    for (size_t i = 0; i < c->pool.free_n; i++) cudaFree(c->pool.free_p[i]);
    cudaFree(c->ws);
    cudaFree(c->red);
    cudaFree(c->ones);
    cudaFree(c->zeros);
    free(c->pool.live_p);
    free(c->pool.live_b);
    free(c->pool.free_p);
    free(c->pool.free_b);
    free(c);
    free(be);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int nn_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

int nn_cuda_device_name(int device, char *buf, size_t len)
{
    if (buf && len) buf[0] = 0;
    cudaDeviceProp prop;
    if (device < 0 || device >= nn_cuda_device_count() ||
        cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    if (buf && len) snprintf(buf, len, "%s", prop.name);
    return 0;
}

static int is_cuda(const struct nn_backend *be)
{
    return be && be->name && strcmp(be->name, "cuda") == 0;
}

int nn_cuda_backend_device_name(const struct nn_backend *be, char *buf, size_t len)
{
    if (buf && len) buf[0] = 0;
    if (!is_cuda(be)) return -1;
    if (buf && len) snprintf(buf, len, "%s", ((const struct cu_ctx *)be->ctx)->name);
    return 0;
}

size_t nn_cuda_peak_bytes(const struct nn_backend *be)
{
    return is_cuda(be) ? ((const struct cu_ctx *)be->ctx)->pool.peak : 0;
}

int nn_cuda_probe(int device, char *err, size_t errlen)
{
    int count = 0;
    cudaError_t ce = cudaGetDeviceCount(&count);
    if (ce != cudaSuccess || count == 0) {
        cudaGetLastError();
        set_err(err, errlen, "no CUDA GPU is visible (%s)",
                ce != cudaSuccess ? cudaGetErrorString(ce) : "the driver reports 0 devices");
        return -1;
    }
    if (device < 0 || device >= count) {
        set_err(err, errlen, "CUDA device %d does not exist (%d visible)", device, count);
        return -1;
    }
    return 0;
}

struct nn_backend *nn_backend_cuda_new(int device, int flags, char *err, size_t errlen)
{
    if (nn_cuda_probe(device, err, errlen) != 0) return NULL;
    cudaError_t ce;
    cudaFuncAttributes fa;
    size_t dnn_version = cudnnGetVersion();
    struct nn_backend *be = (struct nn_backend *)calloc(1, sizeof *be);
    struct cu_ctx *c = (struct cu_ctx *)calloc(1, sizeof *c);
    const char *what = NULL;
    cudaDeviceProp prop;
    if (!be || !c) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    c->device = device;
    c->flags = flags;
    if ((ce = cudaSetDevice(device)) != cudaSuccess ||
        (ce = cudaGetDeviceProperties(&prop, device)) != cudaSuccess ||
        (ce = cudaFree(0)) != cudaSuccess) { /* cudaFree(0): start the context now */
        cudaGetLastError();
        set_err(err, errlen, "CUDA device %d: %s", device, cudaGetErrorString(ce));
        goto fail;
    }
    snprintf(c->name, sizeof c->name, "%s", prop.name);
    c->sm_count = prop.multiProcessorCount;
    /* kernels compiled for none of this GPU's architectures (CUDA_ARCHS)
     * would fail at their first launch, mid-training: say so now */
    if ((ce = cudaFuncGetAttributes(&fa, k_fill)) != cudaSuccess) {
        cudaGetLastError();
        set_err(err, errlen, "CUDA device %d (%s, compute capability %d.%d): this build's kernels "
                "cannot run on it (%s); rebuild with CUDA_ARCHS including %d%d",
                device, c->name, prop.major, prop.minor, cudaGetErrorString(ce), prop.major, prop.minor);
        goto fail;
    }
    /* cuDNN 9 numbers versions MAJOR*10000 + MINOR*100 + PATCH, cuDNN 8
     * MAJOR*1000 + MINOR*100 + PATCH */
    if ((dnn_version >= 10000 ? dnn_version / 10000 : dnn_version / 1000) != CUDNN_MAJOR) {
        set_err(err, errlen, "CUDA device %d (%s): the cuDNN library loaded is version %zu, this "
                "build was compiled against %d.%d", device, c->name, dnn_version, CUDNN_MAJOR,
                CUDNN_MINOR);
        goto fail;
    }
    if (cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS) {
        c->blas = NULL;
        what = "cublasCreate";
    } else if (cublasSetMathMode(c->blas, (flags & NN_CUDA_TF32) ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                  : CUBLAS_DEFAULT_MATH) !=
               CUBLAS_STATUS_SUCCESS) {
        what = "cublasSetMathMode";
    } else if (cudnnCreate(&c->dnn) != CUDNN_STATUS_SUCCESS) {
        c->dnn = NULL;
        what = "cudnnCreate (is libcudnn installed for this CUDA?)";
    } else if (cudnnCreateTensorDescriptor(&c->td_a) != CUDNN_STATUS_SUCCESS ||
               cudnnCreateTensorDescriptor(&c->td_b) != CUDNN_STATUS_SUCCESS ||
               cudnnCreateTensorDescriptor(&c->td_c) != CUDNN_STATUS_SUCCESS ||
               cudnnCreatePoolingDescriptor(&c->pool_desc) != CUDNN_STATUS_SUCCESS) {
        what = "cuDNN descriptors";
    }
    if (what) {
        set_err(err, errlen, "CUDA device %d (%s): %s failed", device, c->name, what);
        goto fail;
    }
    be->name = "cuda";
    be->ctx = c;
    be->host_visible = 0;
    be->destroy = cu_destroy;
    be->alloc = cu_alloc;
    be->free = cu_free;
    be->upload = cu_upload;
    be->download = cu_download;
    be->fill = cu_fill;
    be->copy = cu_copy;
    be->add = cu_add;
    be->axpy = cu_axpy;
    be->scale = cu_scale;
    be->relu_fwd = cu_relu_fwd;
    be->relu_bwd = cu_relu_bwd;
    be->mul_fwd = cu_mul_fwd;
    be->mul_bwd = cu_mul_bwd;
    be->dropout_mask = cu_dropout_mask;
    be->wsum_fwd = cu_wsum_fwd;
    be->wsum_bwd = cu_wsum_bwd;
    be->softmax_fwd = cu_softmax_fwd;
    be->softmax_bwd = cu_softmax_bwd;
    be->chan_copy = cu_chan_copy;
    be->conv2d_fwd = cu_conv2d_fwd;
    be->conv2d_bwd = cu_conv2d_bwd;
    be->pool2d_fwd = cu_pool2d_fwd;
    be->pool2d_bwd = cu_pool2d_bwd;
    be->bn_fwd = cu_bn_fwd;
    be->bn_bwd = cu_bn_bwd;
    be->gap_fwd = cu_gap_fwd;
    be->gap_bwd = cu_gap_bwd;
    be->linear_fwd = cu_linear_fwd;
    be->linear_bwd = cu_linear_bwd;
    be->ce_fwd = cu_ce_fwd;
    be->ce_bwd = cu_ce_bwd;
    be->sgd_step = cu_sgd_step;
    be->adam_step = cu_adam_step;
    be->sumsq = cu_sumsq;
    return be;
fail:
    if (c) {
        if (c->td_a) cudnnDestroyTensorDescriptor(c->td_a);
        if (c->td_b) cudnnDestroyTensorDescriptor(c->td_b);
        if (c->td_c) cudnnDestroyTensorDescriptor(c->td_c);
        if (c->pool_desc) cudnnDestroyPoolingDescriptor(c->pool_desc);
        if (c->dnn) cudnnDestroy(c->dnn);
        if (c->blas) cublasDestroy(c->blas);
    }
    free(c);
    free(be);
    return NULL;
}

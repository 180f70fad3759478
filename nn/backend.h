/*
 * backend.h - the compute-backend table of the CNN engine.
 *
 * A backend owns tensor memory and runs the kernels. Everything above it
 * (nn/tensor, nn/graph, nn/ops and the model code built on them) reaches
 * tensor memory only through this table or through nn_tensor_upload /
 * nn_tensor_download, so a GPU backend (CUDA/cuDNN, a later issue) fills in
 * the same table and keeps every tensor on the device for a whole training
 * step. There is no #ifdef anywhere above this line.
 *
 * Contract:
 *   - Pointers typed float * that a backend hands out (alloc) or receives
 *     (every kernel argument except the descriptors and the host-side
 *     arguments of upload/download) are backend memory: model code passes
 *     them around but never dereferences them. Only when host_visible is 1
 *     (the CPU backend) may a caller read or write them directly
 *     (nn_tensor_host_data in nn/tensor.h is that escape hatch; tests use
 *     it). The optimizers run through the table (sgd_step, adam_step,
 *     sumsq), on every backend.
 *   - alloc returns memory aligned to 64 bytes or NULL; free(NULL) is a
 *     no-op. Sub-ranges of an allocation (pointer + offset) are valid
 *     kernel arguments: the graph's arena carves tensors out of one block.
 *   - Backward kernels ACCUMULATE (+=) into the gradients they are given;
 *     a NULL gradient pointer means "not wanted" and is skipped. Forward
 *     kernels overwrite their outputs.
 *   - All calls come from one thread at a time (the thread that runs the
 *     training step); a backend may use threads of its own inside a call
 *     (the CPU backend: a small pool for its loops and GEMM slices)
 *     and must have finished (or be ordered, on a GPU stream) before the
 *     next call reads the results. download is the synchronisation point.
 *   - Kernels cannot fail: shapes are checked above, in nn/ops. Only alloc
 *     reports failure (NULL). Only download and sumsq hand values back
 *     to the host.
 *   - The backend is freed with nn_backend_free after every tensor it owns.
 *
 * Layout: tensors are fp32, NCHW, contiguous. Conv weights are
 * [Cout, Cin/groups, KH, KW]; linear weights are [out, in] (as PyTorch).
 */
#ifndef PODIUM_NN_BACKEND_H
#define PODIUM_NN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct nn_conv_desc {
    int n, cin, h, w;        /* input */
    int cout, kh, kw;        /* weight [cout, cin/groups, kh, kw] */
    int sh, sw, ph, pw, dh, dw, groups;
    int ho, wo;              /* output spatial size */
};

struct nn_pool_desc {
    int n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo;
    int is_max;              /* 1: max pool, 0: average (count_include_pad=False) */
};

struct nn_backend {
    const char *name;
    void *ctx;               /* the backend's own state */
    int host_visible;        /* 1: backend memory is host memory */

    void (*destroy)(struct nn_backend *be);

    /* memory */
    float *(*alloc)(struct nn_backend *be, size_t n_floats);
    void (*free)(struct nn_backend *be, float *p);
    void (*upload)(struct nn_backend *be, float *dst, const float *host_src, size_t n);
    void (*download)(struct nn_backend *be, float *host_dst, const float *src, size_t n);
    void (*fill)(struct nn_backend *be, float *dst, float v, size_t n);
    void (*copy)(struct nn_backend *be, float *dst, const float *src, size_t n);

    /* element-wise: y = a + b; y += alpha * x; y = alpha * x */
    void (*add)(struct nn_backend *be, float *y, const float *a, const float *b, size_t n);
    void (*axpy)(struct nn_backend *be, float *y, float alpha, const float *x, size_t n);
    void (*scale)(struct nn_backend *be, float *y, float alpha, const float *x, size_t n);
    /* y = max(x, 0); dx += dy * (y > 0) */
    void (*relu_fwd)(struct nn_backend *be, float *y, const float *x, size_t n);
    void (*relu_bwd)(struct nn_backend *be, float *dx, const float *y, const float *dy, size_t n);
    /* y = x * m; dx += dy * m (dropout applies its mask with these) */
    void (*mul_fwd)(struct nn_backend *be, float *y, const float *x, const float *m, size_t n);
    void (*mul_bwd)(struct nn_backend *be, float *dx, const float *m, const float *dy, size_t n);
    /* m[i] = 0 with probability p, else 1/(1-p); a function of (seed, i) */
    void (*dropout_mask)(struct nn_backend *be, float *m, size_t n, float p, uint64_t seed);

    /* y = sum_k w[k] * xs[k]  (w is backend memory, k values);
     * dxs[k] += w[k] * dy; dw[k] += <xs[k], dy>. */
    void (*wsum_fwd)(struct nn_backend *be, float *y, const float *const *xs, const float *w,
                     int k, size_t n);
    void (*wsum_bwd)(struct nn_backend *be, float *const *dxs, float *dw, const float *const *xs,
                     const float *w, const float *dy, int k, size_t n);
    /* row-wise softmax of [rows, k]; dx += J^T dy */
    void (*softmax_fwd)(struct nn_backend *be, float *y, const float *x, int rows, int k);
    void (*softmax_bwd)(struct nn_backend *be, float *dx, const float *y, const float *dy,
                        int rows, int k);

    /* Channel blocks: for every image i < n, copy (or add, when acc) the
     * channels [src_c0, src_c0 + c) of src (src_c channels) onto channels
     * [dst_c0, dst_c0 + c) of dst (dst_c channels); hw = H*W. Concat,
     * slice and their backward passes are all this. */
    void (*chan_copy)(struct nn_backend *be, float *dst, int dst_c, int dst_c0, const float *src,
                      int src_c, int src_c0, int c, int n, size_t hw, int acc);

    /* convolution (bias may be NULL) */
    void (*conv2d_fwd)(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                       const float *w, const float *b, float *y);
    void (*conv2d_bwd)(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                       const float *w, const float *dy, float *dx, float *dw, float *db);

    /* pooling; the max pool's backward sends each output's gradient to
     * the first maximum of its window (as PyTorch). aux: n*c*ho*wo 32-bit
     * slots of backend memory the forward may fill for its backward (the
     * CPU backend keeps the max pool's argmax there), or NULL when no
     * backward will follow. */
    void (*pool2d_fwd)(struct nn_backend *be, const struct nn_pool_desc *d, const float *x, float *y,
                       float *aux);
    void (*pool2d_bwd)(struct nn_backend *be, const struct nn_pool_desc *d, const float *x,
                       const float *y, const float *aux, const float *dy, float *dx);

    /* batch norm over (N, H, W) per channel. save holds 2*c floats: the
     * mean and 1/sqrt(var + eps) used, for backward. In training mode the
     * batch statistics are used and the running ones updated
     * (r = (1 - momentum) r + momentum * batch, unbiased variance, as
     * PyTorch); otherwise the running ones are used. gamma/beta NULL: no
     * affine. Backward uses the mode of its forward. */
    void (*bn_fwd)(struct nn_backend *be, int n, int c, size_t hw, const float *x,
                   const float *gamma, const float *beta, float *rmean, float *rvar, float *y,
                   float *save, int training, float momentum, float eps);
    void (*bn_bwd)(struct nn_backend *be, int n, int c, size_t hw, const float *x,
                   const float *gamma, const float *save, const float *dy, float *dx,
                   float *dgamma, float *dbeta, int training);

    /* global average pool [n, c, hw] -> [n, c] */
    void (*gap_fwd)(struct nn_backend *be, int n, int c, size_t hw, const float *x, float *y);
    void (*gap_bwd)(struct nn_backend *be, int n, int c, size_t hw, const float *dy, float *dx);

    /* y[n, out] = x[n, in] W^T + b (b may be NULL) */
    void (*linear_fwd)(struct nn_backend *be, int n, int in, int out, const float *x,
                       const float *w, const float *b, float *y);
    void (*linear_bwd)(struct nn_backend *be, int n, int in, int out, const float *x,
                       const float *w, const float *dy, float *dx, float *dw, float *db);

    /* softmax cross-entropy, mean over the batch. labels: n class indices
     * stored as floats (exact below 2^24). probs [n, k] and loss[0] out;
     * backward: dlogits += dloss[0] * (probs - onehot) / n. */
    void (*ce_fwd)(struct nn_backend *be, int n, int k, const float *logits, const float *labels,
                   float *probs, float *loss);
    void (*ce_bwd)(struct nn_backend *be, int n, int k, const float *probs, const float *labels,
                   const float *dloss, float *dlogits);

    /* Optimizer updates of n weights w (in place) from their gradients g
     * (read only), with the rules of nn/optim.h (float storage, double
     * intermediates), so a training step never leaves the backend; the
     * state buffers are backend memory the caller allocated and zeroed
     * before the first step. nn/optim drives these for an optimizer made
     * with optim_new_on.
     *   SGD: d = g + wd w; with momentum != 0 (buf: n floats, else NULL)
     *        buf = momentum buf + d, d = nesterov ? d + momentum buf : buf;
     *        w -= lr d.
     *   AdamW: m, v (n floats each); step t >= 1 (for the bias
     *        corrections); decoupled decay w *= 1 - lr wd. */
    void (*sgd_step)(struct nn_backend *be, float *w, const float *g, float *buf, size_t n,
                     double lr, double momentum, double wd, int nesterov);
    void (*adam_step)(struct nn_backend *be, float *w, const float *g, float *m, float *v,
                      size_t n, double lr, double beta1, double beta2, double eps, double wd,
                      uint64_t t);
    /* The sum of squares of k arrays (xs[j]: ns[j] floats), accumulated in
     * double: gradient clipping's global norm. The one entry that returns a
     * value, so it is a synchronisation point like download (one per call,
     * whatever k is). */
    double (*sumsq)(struct nn_backend *be, const float *const *xs, const size_t *ns, int k);
};

/* The CPU backend: OpenBLAS SGEMM for convolution and linear layers,
 * plain C (and `threads` worker threads) for the rest. threads <= 0 means
 * 1. Sets OpenBLAS to one thread (a process-wide setting: the backend
 * splits its GEMMs over its own threads). NULL on
 * failure with a message in err. */
struct nn_backend *nn_backend_cpu_new(int threads, char *err, size_t errlen);

/* Release a backend (after all its tensors); NULL is a no-op. */
void nn_backend_free(struct nn_backend *be);

#endif

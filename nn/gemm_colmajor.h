/*
 * gemm_colmajor.h - the linear layer's three products (nn/backend.h's
 * linear_fwd / linear_bwd, row-major as PyTorch) written as column-major
 * SGEMM calls, the convention of cuBLAS (and of BLAS's CblasColMajor).
 *
 * The CUDA backend (nn/cuda/conv.cu) hands these very arguments to
 * cublasSgemm; tests/unit/test_nn_gemm_map.c hands them to OpenBLAS's
 * cblas_sgemm(CblasColMajor, ...), which has the same semantics, and
 * holds the result to the CPU backend's linear_fwd / linear_bwd. So the
 * mapping is checked on any machine, not only on a GPU. Pure C, no CUDA
 * types: a header both compilers read.
 *
 * Row-major [r, c] memory is column-major [c, r], the transpose. So
 *   y[n,out]   = x[n,in] W^T    is  y^T  = W x^T     (W^T read transposed)
 *   dx[n,in]  += dy[n,out] W    is  dx^T = W^T dy^T
 *   dW[out,in]+= dy^T x         is  dW^T = x^T dy    (dy^T read transposed)
 * C = alpha op(A) op(B) + beta C with op(A) m x k, op(B) k x n, C m x n;
 * alpha is 1, beta 0 forward and 1 backward (the table's backward
 * accumulates). C is always the output: y, dx or dW.
 */
#ifndef PODIUM_NN_GEMM_COLMAJOR_H
#define PODIUM_NN_GEMM_COLMAJOR_H

/* The operands A and B name one of the linear layer's buffers. */
enum gemm_operand {
    GEMM_X = 0,              /* x [n, in] */
    GEMM_W = 1,              /* W [out, in] */
    GEMM_DY = 2,             /* dy [n, out] */
};

struct gemm_colmajor {
    int transa, transb;      /* 1: op(.) is the transpose ("T"), 0: as is ("N") */
    int m, n, k;
    int a, b;                /* enum gemm_operand */
    int lda, ldb, ldc;
    float beta;
};

/* y = x W^T:  y^T[out x n] = op(W^T)=W [out x in] * x^T [in x n] */
static inline struct gemm_colmajor gemm_colmajor_linear_fwd(int n, int in, int out)
{
    struct gemm_colmajor g = {1, 0, out, n, in, GEMM_W, GEMM_X, in, in, out, 0.0f};
    return g;
}

/* dx += dy W:  dx^T[in x n] += W^T [in x out] * dy^T [out x n] */
static inline struct gemm_colmajor gemm_colmajor_linear_bwd_data(int n, int in, int out)
{
    struct gemm_colmajor g = {0, 0, in, n, out, GEMM_W, GEMM_DY, in, out, in, 1.0f};
    return g;
}

/* dW += dy^T x:  dW^T[in x out] += x^T [in x n] * op(dy^T)=dy [n x out] */
static inline struct gemm_colmajor gemm_colmajor_linear_bwd_filter(int n, int in, int out)
{
    struct gemm_colmajor g = {0, 1, in, out, n, GEMM_X, GEMM_DY, in, out, in, 1.0f};
    return g;
}

#endif

/*
 * optim_math.h - internal to nn/: the optimizer updates over host float
 * arrays, the one CPU implementation of nn/optim.h's rules. nn/optim.c
 * runs them for an optimizer over host arrays (optim_new) and the CPU
 * backend's sgd_step / adam_step entries (nn/cpu.c) run them over ranges
 * for an optimizer on the backend (optim_new_on), so both give the same
 * bits. The CUDA backend's kernels (nn/cuda/kernels.cu) mirror them.
 *
 * Float storage, double intermediates; every function updates elements
 * [lo, hi) and touches nothing else, so a caller may split a range
 * between threads without changing a bit. Compiled by nvcc (the CUDA
 * backend includes this file), the element updates are also device
 * functions: its kernels run them one element per thread, so there is
 * one statement of each rule. (nvcc fuses multiply-adds, so the GPU's
 * doubles may differ from these in their last bits.)
 */
#ifndef PODIUM_NN_OPTIM_MATH_H
#define PODIUM_NN_OPTIM_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define OPTIM_MATH_FN __host__ __device__ static inline
#else
#define OPTIM_MATH_FN static inline
#endif

/* SGD (torch.optim.SGD, dampening 0): buf is NULL when momentum is 0. */
OPTIM_MATH_FN void optim_math_sgd(float *w, const float *g, float *buf, size_t lo, size_t hi,
                                  double lr, double mu, double wd, int nesterov)
{
    for (size_t i = lo; i < hi; i++) {
        double d = (double)g[i] + wd * (double)w[i];
        if (mu != 0.0) {
            /* torch copies d into the buffer at the first step; with
             * dampening 0 and a zero buffer, mu*0 + d is the same. */
            float b = (float)(mu * (double)buf[i] + d);
            buf[i] = b;
            d = nesterov ? d + mu * (double)b : (double)b;
        }
        w[i] = (float)((double)w[i] - lr * d);
    }
}

/* AdamW's per-step constants: step t >= 1 (host only). */
struct optim_math_adam {
    double b1, b2, eps;
    double bc2_sqrt;         /* sqrt(1 - b2^t) */
    double step_size;        /* lr / (1 - b1^t) */
    double decay;            /* 1 - lr wd */
};

static inline struct optim_math_adam optim_math_adam_consts(double lr, double b1, double b2,
                                                            double eps, double wd, uint64_t t)
{
    struct optim_math_adam a;
    a.b1 = b1;
    a.b2 = b2;
    a.eps = eps;
    a.bc2_sqrt = sqrt(1.0 - pow(b2, (double)t));
    a.step_size = lr / (1.0 - pow(b1, (double)t));
    a.decay = 1.0 - lr * wd;
    return a;
}

/* AdamW (torch.optim.AdamW, amsgrad off). */
OPTIM_MATH_FN void optim_math_adam(float *w, const float *g, float *m, float *v, size_t lo,
                                   size_t hi, const struct optim_math_adam *a)
{
    for (size_t i = lo; i < hi; i++) {
        double gi = (double)g[i];
        double wi = (double)(float)((double)w[i] * a->decay);
        float mi = (float)(a->b1 * (double)m[i] + (1.0 - a->b1) * gi);
        float vi = (float)(a->b2 * (double)v[i] + (1.0 - a->b2) * gi * gi);
        m[i] = mi;
        v[i] = vi;
        double denom = sqrt((double)vi) / a->bc2_sqrt + a->eps;
        w[i] = (float)(wi - a->step_size * (double)mi / denom);
    }
}

/* sum of x[i]^2 over [0, n), in double, added to *acc in index order */
static inline void optim_math_sumsq(const float *x, size_t n, double *acc)
{
    double ss = *acc;
    for (size_t i = 0; i < n; i++) {
        double xi = (double)x[i];
        ss += xi * xi;
    }
    *acc = ss;
}

#endif

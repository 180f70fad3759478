/*
 * cpu_kernels.h - internal to the CPU backend (nn/cpu.c, nn/cpu_conv.c):
 * its context and the GEMM-based kernels that live in cpu_conv.c. Model
 * code includes nn/backend.h instead.
 */
#ifndef PODIUM_NN_CPU_KERNELS_H
#define PODIUM_NN_CPU_KERNELS_H

#include <stddef.h>

#include "nn/backend.h"

struct cpu_pool;

#define CPU_MAX_THREADS 256

struct cpu_ctx {
    int threads;             /* 1..CPU_MAX_THREADS */
    /* scratch buffers, one per slot (a slot is one thread's share of a
     * job split into `threads` parts); each grows, none shrinks */
    float *scratch[CPU_MAX_THREADS];
    size_t scratch_cap[CPU_MAX_THREADS]; /* floats */
    struct cpu_pool *pool;   /* threads - 1 workers, or NULL */
};

/* Run fn(arg, lo, hi) over [0, n) split into contiguous ranges, one per
 * thread (the caller's thread takes the first); returns when all are done.
 * Inline when there is one thread or cost (about the floats touched) is
 * too small to pay for waking the workers. */
typedef void (*cpu_range_fn)(void *arg, size_t lo, size_t hi);
void cpu_parallel(struct nn_backend *be, size_t n, size_t cost, cpu_range_fn fn, void *arg);

/* Slot `slot`'s scratch buffer of at least n floats, 64-byte aligned (NULL
 * when out of memory); its contents are kept until the next call that
 * grows it. Only slot t's own range may use it inside a cpu_parallel job
 * over `threads` items (item t is then that slot's). */
float *cpu_slot_scratch(struct nn_backend *be, int slot, size_t n);

void cpu_conv2d_fwd(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                    const float *w, const float *b, float *y);
void cpu_conv2d_bwd(struct nn_backend *be, const struct nn_conv_desc *d, const float *x,
                    const float *w, const float *dy, float *dx, float *dw, float *db);
void cpu_linear_fwd(struct nn_backend *be, int n, int in, int out, const float *x,
                    const float *w, const float *b, float *y);
void cpu_linear_bwd(struct nn_backend *be, int n, int in, int out, const float *x,
                    const float *w, const float *dy, float *dx, float *dw, float *db);

#endif

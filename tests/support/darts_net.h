/*
 * darts_net.h - a DARTS network (Liu et al., "DARTS: Differentiable
 * Architecture Search", 2019) built from nn/ops, for the GPU checks
 * (tests/unit/test_nn_cuda.c trains a tiny one on the CPU and the CUDA
 * backends and compares the losses) and the GPU bench (bench/gpu_step.c;
 * bench/gpu_step.py is the same network in PyTorch).
 *
 * Search mode: every edge of every cell is a mixed op, the softmax of its
 * row of architecture weights times the 8 candidate ops (none, 3x3 max
 * and average pool, skip, 3x3 and 5x5 separable convs, 3x3 and 5x5
 * dilated convs; pools followed by a non-affine batch norm, as DARTS
 * does). Retrain mode: the cells of DARTS_V2's genotype, affine batch
 * norms, no architecture weights. Cells at 1/3 and 2/3 of the depth
 * reduce (stride 2, channels doubled). One difference from DARTS: the
 * factorized reduce's second 1x1 conv sees the same pixels as the first
 * (no one-pixel shift; nn/ops has no spatial crop).
 *
 * Parameters live in one nn_params set (initialised from a seeded host
 * generator, so two backends start from the same values); darts_net_sgd
 * updates them on the backend itself with the table's scale/axpy
 * (momentum SGD, PyTorch's rule), so a training step never leaves the
 * device. Failures to build return NULL with a message; forward errors
 * are the graph's sticky error.
 */
#ifndef PODIUM_TESTS_DARTS_NET_H
#define PODIUM_TESTS_DARTS_NET_H

#include <stddef.h>
#include <stdint.h>

#include "nn/backend.h"
#include "nn/graph.h"
#include "nn/tensor.h"

struct darts_cfg {
    int c;          /* channels of the first cell (DARTS search: 16) */
    int cells;      /* 8 in DARTS search */
    int nodes;      /* intermediate nodes per cell: 4 in DARTS */
    int classes;
    int in_ch;      /* image channels */
    int search;     /* 1: mixed ops + architecture weights; 0: DARTS_V2 cells */
    uint64_t seed;
};

struct darts_net;

struct darts_net *darts_net_new(struct nn_backend *be, const struct darts_cfg *cfg, char *err,
                                size_t errlen);
void darts_net_free(struct darts_net *n);
struct nn_params *darts_net_params(struct darts_net *n);
/* x [N, in_ch, H, W] -> logits [N, classes] (NULL on a graph error) */
struct nn_tensor *darts_net_forward(struct darts_net *n, struct nn_graph *g, struct nn_tensor *x);
/* One momentum-SGD step over every parameter with a gradient (weights
 * and, in search mode, the architecture weights): PyTorch's
 * b = m b + (g + wd w); w -= lr b. */
void darts_net_sgd(struct darts_net *n, float lr, float momentum, float wd);

#endif

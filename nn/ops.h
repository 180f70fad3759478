/*
 * ops.h - the ops of the CNN engine, as model code calls them.
 *
 * Each op takes its inputs (step tensors of the graph, parameters, or
 * standalone tensors), checks their shapes, allocates its output from the
 * graph's arena, runs the backend's forward kernel and, when the graph
 * records and an input needs a gradient, pushes its backward onto the
 * tape (see nn/graph.h). A NULL input or a bad shape sets the graph's
 * sticky error and returns NULL, so a forward pass can be written without
 * a check per line. Shapes are NCHW; "x [N,C,H,W]" below means a 4-D
 * tensor. Square kernels, strides, paddings and dilations.
 *
 * Building blocks for DARTS: nn_softmax over the rows of the architecture
 * weights, nn_wsum for the mixed op (sum_k w[k] * op_k(x), gradients for
 * the inputs and the weights), nn_zeros for the "none" op, nn_identity
 * for the skip, nn_concat of the intermediate nodes, nn_slice; a
 * factorized reduce is two strided 1x1 convolutions and a concat.
 */
#ifndef PODIUM_NN_OPS_H
#define PODIUM_NN_OPS_H

#include <stdint.h>

#include "nn/graph.h"
#include "nn/tensor.h"

/* x [N,Cin,H,W], w [Cout,Cin/groups,K,K], b [Cout] or NULL. Output
 * [N,Cout,Ho,Wo], Ho = (H + 2 pad - dil (K-1) - 1) / stride + 1. */
struct nn_tensor *nn_conv2d(struct nn_graph *g, struct nn_tensor *x, struct nn_tensor *w,
                            struct nn_tensor *b, int stride, int padding, int dilation, int groups);

/* Pools on x [N,C,H,W] (pad <= k/2, as PyTorch). The average ignores the
 * padding (count_include_pad=False). */
struct nn_tensor *nn_max_pool2d(struct nn_graph *g, struct nn_tensor *x, int k, int stride, int pad);
struct nn_tensor *nn_avg_pool2d(struct nn_graph *g, struct nn_tensor *x, int k, int stride, int pad);

/* Batch norm on x [N,C,H,W] (or [N,C]): gamma, beta [C] or both NULL (no
 * affine); running_mean/var [C] buffers, updated in training mode with
 * momentum (PyTorch: 0.1), eps (1e-5). */
struct nn_tensor *nn_batch_norm(struct nn_graph *g, struct nn_tensor *x, struct nn_tensor *gamma,
                                struct nn_tensor *beta, struct nn_tensor *running_mean,
                                struct nn_tensor *running_var, float momentum, float eps);

struct nn_tensor *nn_relu(struct nn_graph *g, struct nn_tensor *x);
/* [N,C,H,W] -> [N,C] */
struct nn_tensor *nn_global_avg_pool(struct nn_graph *g, struct nn_tensor *x);
/* x [N, ...] (flattened to [N,in]), w [out,in], b [out] or NULL -> [N,out] */
struct nn_tensor *nn_linear(struct nn_graph *g, struct nn_tensor *x, struct nn_tensor *w,
                            struct nn_tensor *b);
/* Inverted dropout: in training mode zero each element with probability p
 * and scale the rest by 1/(1-p); the mask is a function of seed (give each
 * step and layer its own). Outside training mode: identity. */
struct nn_tensor *nn_dropout(struct nn_graph *g, struct nn_tensor *x, float p, uint64_t seed);
/* Drop-path (stochastic depth per sample, as DARTS' drop_path): in
 * training mode each sample of x [N, ...] is zeroed whole with probability
 * p and the kept ones are scaled by 1/(1-p). Sample i's fate is the
 * backend's dropout mask at (seed, i), a function of them only (give each
 * step and edge its own seed). Outside training mode, or p == 0: x itself.
 * Made of existing backend entries: the [N] mask is dropout_mask's, spread
 * over each sample's values by chan_copy (log2 of the values per sample
 * doublings), then mul_fwd/mul_bwd as dropout. */
struct nn_tensor *nn_drop_path(struct nn_graph *g, struct nn_tensor *x, float p, uint64_t seed);

/* Mean softmax cross-entropy of logits [N,K] against labels[N] (host
 * array, each in [0, K)). Returns the loss, a [1] tensor; *probs (if not
 * NULL) gets the softmax probabilities [N,K] for predictions. */
struct nn_tensor *nn_softmax_ce(struct nn_graph *g, struct nn_tensor *logits, const int *labels,
                                struct nn_tensor **probs);

struct nn_tensor *nn_add(struct nn_graph *g, struct nn_tensor *a, struct nn_tensor *b);
struct nn_tensor *nn_scale(struct nn_graph *g, struct nn_tensor *x, float s);
/* Row-wise softmax of x [R,K] (or [K]). */
struct nn_tensor *nn_softmax(struct nn_graph *g, struct nn_tensor *x);
/* sum_{j<k} w[w_off + j] * xs[j]: xs same-shaped; w any tensor with at
 * least w_off + k elements (e.g. row e of softmaxed alphas: w_off = e*K). */
struct nn_tensor *nn_wsum(struct nn_graph *g, int k, struct nn_tensor *const *xs,
                          struct nn_tensor *w, int w_off);
/* A zero tensor of the given shape (DARTS' "none"); no gradient. */
struct nn_tensor *nn_zeros(struct nn_graph *g, int ndim, const int *shape);
/* x itself (DARTS' skip connection at stride 1). */
struct nn_tensor *nn_identity(struct nn_graph *g, struct nn_tensor *x);
/* Concatenate k tensors [N,Ci,H,W] along channels. */
struct nn_tensor *nn_concat(struct nn_graph *g, int k, struct nn_tensor *const *xs);
/* Channels [c0, c1) of x [N,C,H,W]. */
struct nn_tensor *nn_slice(struct nn_graph *g, struct nn_tensor *x, int c0, int c1);

#endif

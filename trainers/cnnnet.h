/*
 * cnnnet.h - the DARTS convolutional network on the CNN engine (nn/): the
 * network a genotype describes (the "cnn" family trains it from scratch)
 * and the supernet of the search (the "darts" family), built as Liu et
 * al.'s "DARTS: Differentiable Architecture Search" (ICLR 2019) defines
 * both (their model.py and model_search.py):
 *
 *   stem      3x3 conv (in -> 3C, no bias), batch norm (affine)
 *   cells     `cells` cells; those at cells/3 and 2*cells/3 are reduction
 *             cells (spatial size halved, channels doubled). A cell with C
 *             channels per node takes the outputs s0, s1 of the two cells
 *             before it (the stem output for the first two), preprocesses
 *             them to C channels (ReLU-conv1x1-BN; s0 by a factorized
 *             reduce when the previous cell reduced), computes
 *             GENOTYPE_NODES nodes, each the sum of its edges, and outputs
 *             the concatenation of the nodes (4C channels).
 *   head      global average pool, linear layer (with bias) to the classes.
 *   auxiliary (fixed networks with cfg.auxiliary, training passes only)
 *             DARTS' auxiliary head on the output of the cell at
 *             2*cells/3 (the second reduction cell): ReLU, average pool,
 *             conv 1x1 -> 128, BN, ReLU, conv 2x2 -> 768, BN, ReLU, global
 *             average pool, linear (with bias) to the classes. DARTS pools
 *             5x5 at stride 3 (its 8x8 map at 32x32 inputs); the pool here
 *             is that where it gives 2 outputs along the map's shorter
 *             side (sides 8..10) and otherwise ceil(side/2) at stride
 *             floor(side/2) (2 outputs too, as an adaptive pool); the
 *             global average pool is DARTS' flatten on a square map and
 *             absorbs the rest on an oblong one. A map under 2x2 (e.g. 4x4
 *             inputs) gets no head. Its parameters are a set of their own
 *             (cnnnet_aux, names "aux.*"), initialised from a generator of
 *             their own: not in cnnnet_weights, so never saved, loaded or
 *             counted, and the network's weights are the same with and
 *             without it.
 *
 * Drop-path (cnnnet_forward_train, fixed networks, training mode): the
 * output of every op on a cell edge except the identity (skip_connect at
 * stride 1) goes through nn_drop_path with the given probability, each
 * edge of each cell with a mask seed of its own derived from the step's
 * seed, as DARTS' cells do.
 *
 * The ops of an edge (C channels in and out; stride 2 on the edges of a
 * reduction cell that leave the cell's inputs):
 *   sep_conv_KxK  (ReLU, depthwise KxK at the stride, pointwise 1x1, BN)
 *                 then (ReLU, depthwise KxK, pointwise 1x1, BN); pad K/2
 *   dil_conv_KxK  ReLU, depthwise KxK dilation 2 at the stride, pointwise
 *                 1x1, BN; pad 2 (3x3) or 4 (5x5)
 *   max/avg_pool_3x3  pad 1 at the stride (average ignores the padding);
 *                 in the supernet followed by a BN without affine
 *   skip_connect  identity, or at stride 2 a factorized reduce: ReLU, then
 *                 the concatenation of two 1x1 stride-2 convs (C/2 outputs
 *                 each, no bias), the second on the input shifted by one
 *                 pixel (x[:, :, 1:, 1:]), then BN
 *   none          zeros (supernet only)
 * Every conv has no bias. In the fixed network every BN is affine; in the
 * supernet the BNs inside the cells are not (as DARTS' search), the stem's
 * is. The supernet's edge e of a cell computes
 *     sum_k softmax(alpha[e])_k op_k(x),
 * alpha being the architecture parameters of normal cells
 * (alphas_normal) or of reduction cells (alphas_reduce), each
 * [CNNNET_SEARCH_EDGES, GOP_COUNT], kept in a parameter set of their own
 * (cnnnet_arch) apart from the weights (cnnnet_weights), initialised as
 * DARTS does: 1e-3 * N(0, 1). Node i of a supernet cell has an edge from
 * every earlier state (2 + i edges, 14 in all, in order: node 0's from
 * states 0, 1; node 1's from 0, 1, 2; ...). The "none" op contributes
 * nothing to the sum and is not computed (its alpha still takes part in
 * the softmax).
 *
 * The shifted input of the factorized reduce is made by a depthwise 3x3
 * stride-2 conv with a fixed one-hot kernel (no gradient to it); its
 * multiply-adds are taken back out of the graph's count, so cnnnet_macs
 * is the count of the network as defined above.
 *
 * Weights are initialised as PyTorch does (convs and the linear layer:
 * kaiming_uniform with a = sqrt(5); BN: gamma 1, beta 0, running mean 0,
 * variance 1) from a seeded generator.
 *
 * Ownership: cnnnet_new returns a network the caller frees with
 * cnnnet_free (NULL is fine) before freeing the backend. The parameter
 * sets belong to the network. One thread at a time, like the backend.
 */
#ifndef PODIUM_TRAINERS_CNNNET_H
#define PODIUM_TRAINERS_CNNNET_H

#include <stddef.h>
#include <stdint.h>

#include "lib/genotype.h"
#include "nn/graph.h"
#include "nn/tensor.h"

#define CNNNET_MIN_CELLS 2
#define CNNNET_MAX_CELLS 20
#define CNNNET_MIN_CHANNELS 4
#define CNNNET_MAX_CHANNELS 128
#define CNNNET_MAX_CLASSES 10000
#define CNNNET_MAX_SIDE 4096
/* edges of a supernet cell: 2 + 3 + 4 + 5 */
#define CNNNET_SEARCH_EDGES 14
/* the auxiliary head's widths (DARTS') */
#define CNNNET_AUX_MID 128
#define CNNNET_AUX_WIDTH 768

enum cnnnet_mode {
    CNNNET_FIXED = 0,        /* the network of a genotype */
    CNNNET_SEARCH = 1,       /* the DARTS supernet */
};

struct cnnnet_config {
    int mode;                /* enum cnnnet_mode */
    struct genotype genotype;/* CNNNET_FIXED only */
    int in_channels;         /* 1 or 3 */
    int height, width;       /* input size, 1..CNNNET_MAX_SIDE */
    int n_classes;           /* 2..CNNNET_MAX_CLASSES */
    int cells;               /* CNNNET_MIN_CELLS..CNNNET_MAX_CELLS */
    int channels;            /* C of the first cells, CNNNET_MIN..MAX_CHANNELS */
    uint64_t seed;           /* weight (and alpha) initialisation */
    int auxiliary;           /* 1: build the auxiliary head (CNNNET_FIXED only) */
};

struct cnnnet;

/* Build a network on be. 0, or -1 with a message (a bad configuration,
 * out of memory). */
int cnnnet_new(struct nn_backend *be, const struct cnnnet_config *cfg, struct cnnnet **out,
               char *err, size_t errlen);
void cnnnet_free(struct cnnnet *net);

const struct cnnnet_config *cnnnet_config(const struct cnnnet *net);
/* The weights and batch-norm buffers. */
struct nn_params *cnnnet_weights(const struct cnnnet *net);
/* The architecture parameters "alphas_normal" and "alphas_reduce"
 * (CNNNET_SEARCH), or NULL (CNNNET_FIXED). */
struct nn_params *cnnnet_arch(const struct cnnnet *net);
/* The auxiliary head's parameters and BN buffers, or NULL (no head: not
 * asked for, or a map under 2x2 after the second reduction cell). */
struct nn_params *cnnnet_aux(const struct cnnnet *net);

/* Logits [N, n_classes] of a batch x [N, in_channels, height, width], or
 * NULL with the graph's sticky error. The graph's modes decide batch-norm
 * statistics and recording. */
struct nn_tensor *cnnnet_forward(struct cnnnet *net, struct nn_graph *g, struct nn_tensor *x);
/* The same with the training extras: drop-path with probability
 * drop_path in [0, 1) (fixed networks; masks from seed: give each step its
 * own), and, when aux is not NULL, the auxiliary head's logits
 * [N, n_classes] in *aux (NULL when the network has no head or the graph
 * is not in training mode). Outside training mode, or with drop_path 0 and
 * aux NULL, exactly cnnnet_forward. */
struct nn_tensor *cnnnet_forward_train(struct cnnnet *net, struct nn_graph *g, struct nn_tensor *x,
                                       float drop_path, uint64_t seed, struct nn_tensor **aux);

/* Which parameters get gradients from the next backward passes: the
 * weights (and the auxiliary head's), the alphas (both on after
 * cnnnet_new). DARTS' alternating
 * steps turn the other side off so that backward skips its gradients. */
void cnnnet_set_trainable(struct cnnnet *net, int weights, int arch);

/* Trainable weights (alphas, the auxiliary head and BN buffers excluded). */
size_t cnnnet_param_count(const struct cnnnet *net);
/* Multiply-adds of one forward pass on one image (convolutions and the
 * linear layer), run on a scratch graph in evaluation mode. 0 or -1. */
int cnnnet_macs(struct cnnnet *net, double *macs, char *err, size_t errlen);

/* Softmaxed alphas of the normal (reduce = 0) or reduction cells into
 * out[CNNNET_SEARCH_EDGES * GOP_COUNT] (row e, column = enum genotype_op).
 * -1 for a fixed network. */
int cnnnet_alphas(const struct cnnnet *net, int reduce, double *out);

/* DARTS' derivation from softmaxed alphas w (as cnnnet_alphas gives them)
 * into the edges of one cell: for each node the two incoming edges whose
 * strongest op other than none weighs most (the stronger first), each
 * with that op. */
void cnnnet_derive_cell(const double *w, struct genotype_edge out[GENOTYPE_EDGES]);
/* Both cells of a supernet; -1 for a fixed network. */
int cnnnet_derive(const struct cnnnet *net, struct genotype *out);

#endif

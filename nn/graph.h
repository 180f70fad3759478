/*
 * graph.h - the tape autograd of the CNN engine and the per-step arena.
 *
 * A graph is one training (or evaluation) step's worth of state: the ops
 * of nn/ops.h, called in forward order, allocate their outputs from the
 * graph's arena (backend memory, carved out of a few large blocks) and,
 * when recording, push one node each onto the tape. nn_graph_backward
 * walks the tape in reverse, calling each node's backward, which
 * accumulates into the gradients of its inputs: arena tensors get a
 * gradient (zeroed, from the arena) the first time one reaches them;
 * parameters accumulate into their persistent grad, so zero those
 * (nn_params_zero_grad) before each step. Run one backward per tape (a
 * second one would add the step tensors' gradients onto the first's). nn_graph_reset drops the tape
 * and every arena tensor but keeps the memory, so a steady training loop
 * allocates nothing per step (the arena settles into one block of the
 * size the largest step needed).
 *
 * Errors are sticky: an op that gets a bad shape (or a NULL input, or runs
 * out of memory) records a message and returns NULL; every later op on
 * that graph returns NULL too, and nn_graph_error tells what went wrong
 * first. Check once at the end of the forward pass; nn_graph_reset clears
 * the error.
 *
 * Modes: training (batch-norm uses batch statistics and updates the
 * running ones; dropout drops) or not, and recording (tape on) or not
 * (inference: no nodes, no gradients). New graphs train and record.
 *
 * One thread at a time, like the backend.
 */
#ifndef PODIUM_NN_GRAPH_H
#define PODIUM_NN_GRAPH_H

#include <stddef.h>

#include "nn/backend.h"
#include "nn/tensor.h"

struct nn_graph;

struct nn_graph *nn_graph_new(struct nn_backend *be, char *err, size_t errlen);
void nn_graph_free(struct nn_graph *g);
/* Forget the tape, the arena's tensors and any error. */
void nn_graph_reset(struct nn_graph *g);
void nn_graph_set_training(struct nn_graph *g, int training);
void nn_graph_set_recording(struct nn_graph *g, int recording);
int nn_graph_training(const struct nn_graph *g);
int nn_graph_recording(const struct nn_graph *g);
struct nn_backend *nn_graph_backend(const struct nn_graph *g);

/* The first error since the last reset, or NULL. */
const char *nn_graph_error(const struct nn_graph *g);

/* Seed d(loss)/d(loss) = 1 and run the tape backwards. loss must be a
 * one-element tensor of this step. 0, or -1 with a message. */
int nn_graph_backward(struct nn_graph *g, struct nn_tensor *loss, char *err, size_t errlen);
/* The same from any recorded tensor y, seeding its gradient with host
 * values dy (y->numel floats): the vector-Jacobian product of the step. */
int nn_graph_backward_from(struct nn_graph *g, struct nn_tensor *y, const float *dy, char *err,
                           size_t errlen);

/* Multiply-accumulates of the convolutions and linear layers run since the
 * last reset (recorded or not): the figure NAS papers report as "FLOPs"
 * (or MAdds). Twice this is the count of floating-point operations. */
double nn_graph_macs(const struct nn_graph *g);

/* Nodes on the tape; bytes of arena in use (for tests and sizing). */
int nn_graph_nodes(const struct nn_graph *g);
size_t nn_graph_arena_bytes(const struct nn_graph *g);

/* A step tensor from the arena, values unset; NULL (and the sticky error)
 * on failure. */
struct nn_tensor *nn_graph_tensor(struct nn_graph *g, int ndim, const int *shape);
/* A step tensor holding a copy of host values (the input batch). */
struct nn_tensor *nn_graph_input(struct nn_graph *g, int ndim, const int *shape, const float *host);

/* --- for op implementations (nn/ops.c) -------------------------------------- */

struct nn_node;
typedef void (*nn_backward_fn)(struct nn_graph *g, struct nn_node *nd);

/* One tape entry: which backward to run and what it needs. Fixed size;
 * ops with many inputs keep an array of them in the graph's host arena. */
struct nn_node {
    nn_backward_fn backward;
    struct nn_tensor *out;
    struct nn_tensor *in[3];
    struct nn_tensor **ins;  /* k inputs (concat, weighted sum) */
    int k;
    struct nn_tensor *aux;   /* saved for backward: probs, BN stats, mask, labels */
    struct nn_tensor *aux2;
    union {
        struct nn_conv_desc conv;
        struct nn_pool_desc pool;
        float f[4];
        int i[8];
    } p;
};

/* Record the first error and return NULL (for `return nn_graph_fail(...)`). */
void *nn_graph_fail(struct nn_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int nn_graph_failed(const struct nn_graph *g);
/* Host memory from the step's arena (aligned for pointers), or NULL. */
void *nn_graph_host_alloc(struct nn_graph *g, size_t bytes);
/* A new output tensor; marks it as needing a gradient when recording and
 * any of the n inputs does. */
struct nn_tensor *nn_graph_output(struct nn_graph *g, int ndim, const int *shape,
                                  struct nn_tensor *const *inputs, int n);
/* Push a node (copied) when out needs a gradient; returns 0 or -1. */
int nn_graph_push(struct nn_graph *g, const struct nn_node *nd);
/* The gradient of t to accumulate into: allocated and zeroed on first use;
 * NULL when t needs none (or the arena is out of memory: then the sticky
 * error is set and backward fails). */
float *nn_graph_grad(struct nn_graph *g, struct nn_tensor *t);
void nn_graph_add_macs(struct nn_graph *g, double macs);

#endif

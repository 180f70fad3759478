/*
 * tensor.h - fp32 tensors of up to 4 dimensions (NCHW) whose memory a
 * backend owns, the parameter set a model keeps across steps (weights with
 * their gradients, plus buffers such as batch-norm running statistics),
 * PyTorch's default initialisation, and saving/loading parameter values.
 *
 * Ownership: a tensor made by nn_tensor_new is the caller's
 * (nn_tensor_free). Tensors made inside a graph step live in the graph's
 * arena and die at nn_graph_reset. Tensors of a parameter set belong to
 * the set (nn_params_free).
 *
 * Memory: t->data and t->grad are backend memory (see nn/backend.h): pass
 * them to backend calls only. To read or write values use
 * nn_tensor_upload / nn_tensor_download, or, on a host-visible backend
 * (the CPU one), nn_tensor_host_data / nn_tensor_host_grad, which give
 * plain float arrays (this is how an optimizer over float arrays updates
 * the weights in place: for each parameter p of the set, step
 * nn_tensor_host_data(p) with nn_tensor_host_grad(p), p->numel floats).
 *
 * One thread at a time per backend, like the backend itself.
 */
#ifndef PODIUM_NN_TENSOR_H
#define PODIUM_NN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "nn/backend.h"

#define NN_MAX_DIMS 4
#define NN_MAX_NAME 64

enum {
    NN_T_PARAM = 1u,         /* trainable: has a persistent grad */
    NN_T_BUFFER = 2u,        /* saved with the model, not trained (BN stats) */
    NN_T_NEEDS_GRAD = 4u,    /* gradient flows to it (a param, or depends on one) */
    NN_T_OWNED = 8u,         /* data/grad freed with the tensor (not arena memory) */
};

struct nn_tensor {
    int ndim;
    int shape[NN_MAX_DIMS];  /* shape[0..ndim-1]; the rest are 1 */
    size_t numel;
    float *data;             /* backend memory */
    float *grad;             /* backend memory; NULL until a backward pass reaches it
                              * (params: allocated at creation, zeroed) */
    unsigned flags;
    struct nn_backend *be;
    char name[NN_MAX_NAME];  /* params and buffers; "" otherwise */
};

/* A small seeded generator (xoshiro256**), for initialisation and masks. */
struct nn_rng { uint64_t s[4]; };
void nn_rng_seed(struct nn_rng *r, uint64_t seed);
uint64_t nn_rng_next(struct nn_rng *r);
double nn_rng_uniform(struct nn_rng *r);   /* [0, 1) */

/* Elements of a shape, or 0 when a dimension is < 1, ndim is out of
 * [1, NN_MAX_DIMS], or the count overflows 2^31. */
size_t nn_shape_numel(int ndim, const int *shape);

/* A standalone tensor (owned by the caller), zeroed; with_grad also
 * allocates a zeroed gradient. NULL on failure with a message. */
struct nn_tensor *nn_tensor_new(struct nn_backend *be, int ndim, const int *shape, int with_grad,
                                char *err, size_t errlen);
void nn_tensor_free(struct nn_tensor *t);

/* Copy n = t->numel floats in or out of the tensor's values. */
void nn_tensor_upload(struct nn_tensor *t, const float *host);
void nn_tensor_download(const struct nn_tensor *t, float *host);
/* ... and of its gradient (download of a missing grad writes zeros). */
void nn_tensor_download_grad(const struct nn_tensor *t, float *host);
/* Host pointers to values / gradient, or NULL when the backend is not
 * host-visible (or there is no gradient). */
float *nn_tensor_host_data(struct nn_tensor *t);
float *nn_tensor_host_grad(struct nn_tensor *t);

/* --- parameter sets ------------------------------------------------------ */

struct nn_params;

struct nn_params *nn_params_new(struct nn_backend *be);
void nn_params_free(struct nn_params *ps);

/* A new parameter (flags NN_T_PARAM: value and zeroed grad) or buffer
 * (NN_T_BUFFER: value only) of the set, values zeroed. Names must be
 * unique within the set (they key save/load). NULL on failure. */
struct nn_tensor *nn_params_add(struct nn_params *ps, const char *name, int ndim,
                                const int *shape, unsigned kind, char *err, size_t errlen);

int nn_params_count(const struct nn_params *ps);           /* tensors (params + buffers) */
struct nn_tensor *nn_params_get(const struct nn_params *ps, int i);
struct nn_tensor *nn_params_find(const struct nn_params *ps, const char *name);
/* Trainable scalars (NN_T_PARAM tensors only): what leaderboards show. */
size_t nn_params_numel(const struct nn_params *ps);
/* Zero every parameter's gradient. */
void nn_params_zero_grad(struct nn_params *ps);

/* PyTorch's default for conv and linear layers (kaiming_uniform_ with
 * a = sqrt(5) for the weight, and the bias rule): U(-b, b) with
 * b = 1/sqrt(fan_in), fan_in = in_channels/groups * kh * kw (or in). */
void nn_init_uniform(struct nn_tensor *t, float bound, struct nn_rng *r);
void nn_init_kaiming_uniform(struct nn_tensor *t, int fan_in, struct nn_rng *r);
void nn_init_const(struct nn_tensor *t, float v);

/* Serialise every tensor's values (params and buffers) into a new buffer
 * (the caller frees it): "NNP1", count, then per tensor its name, shape
 * and little-endian floats. 0 or -1. */
int nn_params_save(const struct nn_params *ps, void **buf, size_t *len, char *err, size_t errlen);
/* Load values saved by nn_params_save into a set of the same structure
 * (same names, shapes; order free). The bytes are untrusted: every size is
 * checked, and nothing is changed unless the whole buffer is valid. */
int nn_params_load(struct nn_params *ps, const void *buf, size_t len, char *err, size_t errlen);

#endif

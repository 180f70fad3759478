/*
 * optim.h - first-order optimizers over plain float arrays: SGD with
 * momentum and AdamW with PyTorch's exact update rules, a learning-rate
 * schedule (constant, or cosine annealing with linear warmup), gradient
 * clipping by the global L2 norm, and save/restore of the optimizer state.
 *
 * Who uses it: the CNN trainers (trainers/cnn.c, trainers/darts.c) over
 * a compute backend's memory (optim_new_on), and any trainer that keeps
 * its weights and gradients in host memory (optim_new); the LR
 * finder (nn/lrfind) drives the learning rate step by step through
 * optim_set_lr. It knows nothing about tensors: a model hands it groups of
 * (weights, gradients, count).
 *
 * Two kinds of optimizer, one API: optim_new's groups are host arrays and
 * it updates them itself; optim_new_on's groups are memory of a compute
 * backend (nn/backend.h: a tensor's data and grad) and every step, zeroing,
 * clipping and the state live there too, through the backend's sgd_step,
 * adam_step, sumsq, scale and fill entries; only the clipping norm (one
 * double per call) and optim_state_save/load cross to the host. On the CPU
 * backend both kinds compute the same bits (nn/optim_math.h is the one
 * CPU implementation).
 *
 * Ownership: the caller owns every w and g array and must keep them alive
 * (and at the same addresses) for the optimizer's life (and, for
 * optim_new_on, the backend too); the optimizer owns its per-parameter
 * state (momentum buffers, Adam moments), allocated by optim_new(_on) and
 * released by optim_free. One optimizer is used by one thread at a time
 * (the backend's thread); optimizers share nothing.
 *
 * Update rules (g is the gradient the caller computed, lr the current
 * learning rate, wd the weight decay, t the step count starting at 1):
 *
 *   SGD (torch.optim.SGD, dampening 0, maximize off):
 *     d = g + wd*w
 *     if momentum != 0: b = momentum*b + d   (b starts at 0, so b = d at t=1)
 *                       d = nesterov ? d + momentum*b : b
 *     w = w - lr*d
 *
 *   AdamW (torch.optim.AdamW, amsgrad off):
 *     w = w * (1 - lr*wd)                    (decoupled weight decay)
 *     m = beta1*m + (1-beta1)*g
 *     v = beta2*v + (1-beta2)*g*g
 *     w = w - lr/(1-beta1^t) * m / (sqrt(v)/sqrt(1-beta2^t) + eps)
 *
 * The gradients are never modified by optim_step (only by
 * optim_clip_grad_norm and optim_zero_grad). A group with no_decay set
 * gets no weight decay (the usual choice for biases and normalization
 * scales). Arithmetic is float storage with double intermediates; the
 * tests hold it to PyTorch's float32 results within 1e-6 relative.
 */
#ifndef PODIUM_NN_OPTIM_H
#define PODIUM_NN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "nn/backend.h"

enum optim_kind {
    OPTIM_SGD = 0,
    OPTIM_ADAMW = 1,
};

enum optim_status {
    OPTIM_OK = 0,
    OPTIM_EARG = -1,      /* a bad argument or configuration */
    OPTIM_ENOMEM = -2,
    OPTIM_ESTATE = -3,    /* a state buffer that does not fit this optimizer */
};

/* Upper bounds, so that a size from a model file or a request cannot make
 * us allocate without limit. */
#define OPTIM_MAX_GROUPS 4096
#define OPTIM_MAX_PARAMS (1ull << 32)   /* floats, all groups together */

/* One parameter tensor: n weights and their n gradients. */
struct optim_group {
    float *w;
    float *g;
    size_t n;
    int no_decay;         /* 1: no weight decay on this group */
};

struct optim_config {
    int kind;             /* enum optim_kind */
    double lr;            /* > 0 (may be changed per step with optim_set_lr) */
    double weight_decay;  /* >= 0; SGD: L2 added to the gradient; AdamW: decoupled */
    double momentum;      /* SGD: in [0, 1) */
    int nesterov;         /* SGD: needs momentum > 0 */
    double beta1, beta2;  /* AdamW: each in [0, 1) */
    double eps;           /* AdamW: > 0 */
};

/* PyTorch's defaults for kind: SGD lr 0.01 (torch has none), momentum 0,
 * weight_decay 0, nesterov off; AdamW lr 1e-3, betas (0.9, 0.999),
 * eps 1e-8, weight_decay 1e-2. */
void optim_config_init(struct optim_config *cfg, int kind);

struct optim;

/* A new optimizer over n_groups groups (the groups array is copied; the
 * arrays it points to are not). 0 with *out, or a negative enum
 * optim_status with a message in err[0..err_size). */
int optim_new(const struct optim_config *cfg, const struct optim_group *groups,
              size_t n_groups, struct optim **out, char *err, size_t err_size);
/* The same over groups whose w and g are memory of backend be (the
 * state is allocated there, zeroed). OPTIM_EARG also when be lacks the
 * optimizer entries. */
int optim_new_on(struct nn_backend *be, const struct optim_config *cfg,
                 const struct optim_group *groups, size_t n_groups, struct optim **out,
                 char *err, size_t err_size);
void optim_free(struct optim *o);   /* NULL is a no-op */

/* One update of every group with the current lr; the step count goes up
 * by one. */
void optim_step(struct optim *o);

/* Set every gradient to 0. */
void optim_zero_grad(struct optim *o);

/* The learning rate used by the next optim_step; set it before each step
 * to follow a schedule. lr must be finite and >= 0 (else OPTIM_EARG). */
int optim_set_lr(struct optim *o, double lr);
double optim_lr(const struct optim *o);
uint64_t optim_steps(const struct optim *o);   /* steps taken so far */
size_t optim_n_params(const struct optim *o);  /* floats over all groups */

/* torch.nn.utils.clip_grad_norm_ with norm_type 2 over all groups: the
 * global norm N = sqrt(sum of g^2) (accumulated in double); when
 * max_norm/(N + 1e-6) < 1 every gradient is multiplied by that factor.
 * Returns N, the norm before clipping. When N is not finite the gradients
 * are left as they are (torch would turn them into NaN) and the caller
 * should skip the step. max_norm <= 0 only measures. */
double optim_clip_grad_norm(struct optim *o, double max_norm);

/* The same over groups of host arrays without an optimizer (e.g. before
 * one exists). */
double optim_clip_groups(const struct optim_group *groups, size_t n_groups,
                         double max_norm);

/* Save/restore: the whole mutable state (lr, step count, momentum buffers
 * or Adam moments) as an opaque byte buffer of optim_state_bytes() bytes,
 * in this machine's byte order. A buffer only loads into an optimizer of
 * the same kind over groups of the same sizes (else OPTIM_ESTATE, and the
 * optimizer is unchanged). The weights are not part of it: the caller
 * saves those (see nn/lrfind.h). */
size_t optim_state_bytes(const struct optim *o);
int optim_state_save(const struct optim *o, void *buf, size_t size);
int optim_state_load(struct optim *o, const void *buf, size_t size,
                     char *err, size_t err_size);

/* --- learning-rate schedule --------------------------------------------- */

enum optim_sched_kind {
    OPTIM_SCHED_CONSTANT = 0,
    OPTIM_SCHED_COSINE = 1,
};

/* total counts steps including warmup. Warmup (cosine only; 0 = none)
 * and cosine match torch's SequentialLR of
 *   LinearLR(start_factor = 1/(warmup+1), end_factor 1, total_iters = warmup)
 *   CosineAnnealingLR(T_max = total - warmup, eta_min = lr_min)
 * with milestone warmup, in closed form:
 *   step < warmup:          lr_max * (step + 1) / (warmup + 1)
 *   warmup <= step < total: lr_min + (lr_max - lr_min) *
 *                           (1 + cos(pi * (step - warmup) / (total - warmup))) / 2
 *   step >= total:          lr_min
 * Constant is lr_max at every step. */
struct optim_sched {
    int kind;             /* enum optim_sched_kind */
    double lr_max, lr_min;
    uint64_t warmup, total;
};

/* Check a schedule: finite 0 <= lr_min <= lr_max, warmup < total for
 * cosine. 0 or OPTIM_EARG with a message. */
int optim_sched_check(const struct optim_sched *s, char *err, size_t err_size);

/* The learning rate at step (0-based). */
double optim_sched_lr(const struct optim_sched *s, uint64_t step);

#endif

/*
 * mlp.h - the "mlp" model family: a fully connected network with ReLU
 * hidden layers trained by Adam on minibatches (scikit-learn's
 * MLPClassifier / MLPRegressor), softmax cross-entropy for classification
 * and squared error for regression.
 *
 * Parameters (scikit-learn names; defaults as there):
 *   hidden_layer_sizes  array of 0..16 widths in 1..65536, or one int  [100]
 *   activation          "relu" (the only one)                     "relu"
 *   dropout             in [0, 1): inverted dropout on hidden units  0
 *   learning_rate_init  > 0, or "auto": before every fit the learning-
 *                       rate range test (nn/lrfind.h, 300 steps from 1e-7
 *                       to 10, valley) on the training rows from the
 *                       initial weights, which it restores; the fit then
 *                       trains at its suggestion, and params_json reports
 *                       it as learning_rate_found                 1e-3
 *   learning_rate       another name for learning_rate_init (as the cnn
 *                       family says it; give one of the two), or
 *                       "constant" (scikit-learn's schedule, the only one)
 *   beta_1, beta_2      in [0, 1)                           0.9, 0.999
 *   epsilon             > 0                                       1e-8
 *   alpha               >= 0, L2 penalty: alpha/2 ||W||² / batch  1e-4
 *   batch_size          "auto" = min(200, n), or >= 1 (more than
 *                       the training rows means one batch)     "auto"
 *   max_iter            >= 1 epochs                                200
 *   shuffle             true | false                              true
 *   tol                 >= 0                                      1e-4
 *   n_iter_no_change    >= 1                                        10
 *   early_stopping      true | false                             false
 *   validation_fraction in (0, 1)                                  0.1
 *
 * Training stops after more than n_iter_no_change epochs in a row without the
 * training loss dropping by tol, or, with early_stopping, without the
 * validation loss (log loss / squared error) dropping by tol; then the
 * best validation weights are kept. The validation set is `valid` when
 * fit is given one, else a stratified validation_fraction of `train`.
 * Regression targets are standardized inside the model (undone at
 * predict), unlike scikit-learn, so that squared error and tol do not
 * depend on the target's units. Weights, biases and activations are float;
 * every GEMM is cblas_sgemm. Reproducible for a seed (initialization,
 * shuffling, dropout masks all come from pd_rng).
 */
#ifndef PODIUM_TRAINERS_MLP_H
#define PODIUM_TRAINERS_MLP_H

#include <stddef.h>

#include "trainers/family.h"

extern const struct pd_family pd_family_mlp;

/* For gradient checks: the number of parameters of a fitted model, and
 * its flat parameter vector (layer by layer: W row-major fan_in x fan_out,
 * then the biases), which the caller may change. */
size_t pd_mlp_n_params(const void *model);
float *pd_mlp_params(void *model);
/* The training objective on (x, y) as one batch without dropout: mean
 * data loss + alpha/2 ||W||² / n, and its gradient (pd_mlp_n_params
 * entries) into grad. Regression targets are given in their own units.
 * 0, or PD_ENOMEM / PD_EPARAM. */
int pd_mlp_loss_grad(const void *model, double alpha, const float *x,
                     const double *y, size_t n, double *loss, float *grad);

#endif

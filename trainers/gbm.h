/*
 * gbm.h - histogram gradient boosting (`gbm`), in the manner of XGBoost's
 * `hist` tree method: features quantized to at most max_bins bins (see
 * hist.h), second-order leaf values -G/(H + reg_lambda) times the learning
 * rate, a learnt default direction for missing values at every split, and
 * the histogram subtraction trick.
 *
 * Objectives follow the task: squared error (regression), binary logistic
 * (2 classes, one tree per round) and softmax (K > 2 classes, K trees per
 * round; hessian p(1-p)). The base score is the prior: the weighted mean,
 * its log-odds, or the log class frequencies.
 *
 * Parameters (JSON object, all optional):
 *   n_estimators          int >= 1 (100)       boosting rounds
 *   learning_rate         (0, 1] (0.1)
 *   max_depth             int 0..64 (6); 0 = unlimited, only with max_leaves
 *   max_leaves            0 or int >= 2 (0); > 0 switches to leaf-wise
 *                         (lossguide) growth, best gain first
 *   min_child_weight      >= 0 (1)             hessian sum of a child
 *   reg_lambda            >= 0 (1)             L2 on leaf values
 *   reg_alpha             >= 0 (0)             L1 on leaf values
 *   gamma | min_split_loss >= 0 (0)            a split must gain more
 *   subsample             (0, 1] (1)           rows per round
 *   colsample_bytree      (0, 1] (1)           features per tree
 *   max_bins              int 2..255 (255)
 *   early_stopping_rounds int >= 0 (0)         needs a validation set
 * Split gain is score(L) + score(R) - score(parent) with score(G, H) =
 * T(G)^2 / (H + lambda), T the L1 soft threshold, as in XGBoost.
 *
 * Progress: one event per round, metric "valid_logloss" (classification)
 * or "valid_mse" (regression) when a validation set is given, else
 * "train_loss" (logloss or mse on the training rows). With early stopping
 * the model keeps the rounds up to the best one and a last event reports
 * metric "best_iteration" (0-based round).
 *
 * Threads: fit keeps a pool of opts->threads - 1 workers for its lifetime
 * and builds each node's histogram one feature per task. Every histogram
 * bin is summed in row order by one thread, so a fit repeats bit for bit
 * for a given seed whatever the thread count.
 */
#ifndef PODIUM_TRAINERS_GBM_H
#define PODIUM_TRAINERS_GBM_H

#include <stddef.h>

#include "trainers/family.h"
#include "trainers/tree.h"

extern const struct pd_family pd_family_gbm;

/* Inspection of a fitted or loaded gbm model (tests, reports). */
size_t gbm_model_n_rounds(const void *model);
size_t gbm_model_trees_per_round(const void *model);
/* The tree of class k (0 unless softmax) in round r; leaves hold one
 * value each, already multiplied by the learning rate. */
const struct tree *gbm_model_tree(const void *model, size_t r, size_t k);
double gbm_model_base_score(const void *model, size_t k);
/* 0-based best round under early stopping; the last round otherwise. */
int gbm_model_best_iteration(const void *model);

#endif

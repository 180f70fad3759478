/*
 * cv.h - row splits for cross validation and holdout in podium-train.
 *
 * Every function writes one fold number per row and is deterministic for
 * a seed (pd_rng, so a seed means the same thing as in the families).
 * Classification splits are stratified: each class's rows are shuffled and
 * dealt round-robin, so per fold a class count differs by at most one from
 * its share and fold sizes differ by at most one. Regression splits shuffle
 * all rows and deal them the same way. The caller owns `fold` (n entries).
 * Return 0, or PD_EPARAM / PD_EDATA with a message.
 */
#ifndef PODIUM_TRAINERS_CV_H
#define PODIUM_TRAINERS_CV_H

#include <stddef.h>
#include <stdint.h>

#include "trainers/family.h"

/* fold[i] in 0..k-1; 2 <= k <= n. For classification y holds class
 * indices 0..n_classes-1. */
int pd_cv_kfold(const struct pd_task *task, const double *y, size_t n, int k,
                uint64_t seed, int *fold, char *err, size_t errlen);

/* fold[i] = 1 for the held-out rows, 0 for the training rows. The holdout
 * takes round(fraction * n) rows, at least 1 and at most n - 1
 * (0 < fraction < 1, n >= 2); for classification each class contributes in
 * proportion (largest remainder). */
int pd_cv_holdout(const struct pd_task *task, const double *y, size_t n,
                  double fraction, uint64_t seed, int *fold, char *err,
                  size_t errlen);

#endif

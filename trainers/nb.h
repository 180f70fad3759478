/*
 * nb.h - the "nb" model family: naive Bayes for classification on mixed
 * tables. Numeric features get a Gaussian per class (scikit-learn's
 * GaussianNB), categorical features (pd_data.levels[j] = k > 0, codes
 * 0..k-1) a smoothed frequency table per class (CategoricalNB).
 *
 * Parameters:
 *   var_smoothing  >= 0: every variance gets var_smoothing times the
 *                  largest numeric feature variance added       1e-9
 *   alpha          > 0: Laplace/Lidstone smoothing of the
 *                  categorical tables                            1.0
 *   fit_prior      true: class priors from the (weighted) class
 *                  frequencies; false: uniform                   true
 *
 * Missing values (NaN) are skipped per feature, in fit and in predict: a
 * missing feature contributes nothing to a row's likelihood. A categorical
 * code outside 0..k-1 at predict time counts as missing. A class with no
 * observed value of a numeric feature uses that feature's overall mean
 * and variance; a class absent from the training rows gets prior 0 (with
 * fit_prior). Classification only.
 */
#ifndef PODIUM_TRAINERS_NB_H
#define PODIUM_TRAINERS_NB_H

#include "trainers/family.h"

extern const struct pd_family pd_family_nb;

#endif

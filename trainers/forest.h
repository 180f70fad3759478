/*
 * forest.h - random forest (`rf`) and extremely randomized trees
 * (`extratrees`) for classification (gini / entropy; probabilities are the
 * mean of the trees' leaf class distributions) and regression (squared
 * error), following scikit-learn's parameter names and defaults.
 *
 * Trees are grown in parallel on up to opts->threads pthreads; tree i draws
 * from its own generator seeded from (seed, i), so a fit repeats bit for
 * bit for a given seed whatever the thread count or scheduling.
 *
 * Parameters (JSON object, all optional):
 *   n_estimators      int >= 1 (100)
 *   criterion         "gini" | "entropy" | "log_loss" (classification,
 *                     default "gini"); "squared_error" (regression)
 *   max_depth         null (unlimited) or int >= 1
 *   min_samples_split int >= 2 (2)
 *   min_samples_leaf  int >= 1 (1)
 *   max_features      "sqrt" | "log2" | null (all) | a number: an integer
 *                     > 1 is a count, a value in (0, 1] a fraction of the
 *                     features (so 1 and 1.0 both mean all features);
 *                     default "sqrt" for classification, 1.0 regression
 *   bootstrap         bool (true for rf, false for extratrees)
 *   max_samples       null (n) or a number: integer > 1 a count, (0, 1] a
 *                     fraction; only with bootstrap
 *   oob_score         bool (false); only with bootstrap. The score (OOB
 *                     accuracy, or R^2 for regression) is reported through
 *                     a progress event with metric "oob_score" at the end
 *                     of fit, and by forest_model_oob_score.
 *
 * The fit reports progress (metric NULL) as trees complete, on the caller's
 * thread, and checks opts->cancel between trees.
 */
#ifndef PODIUM_TRAINERS_FOREST_H
#define PODIUM_TRAINERS_FOREST_H

#include <stddef.h>

#include "trainers/family.h"
#include "trainers/tree.h"

extern const struct pd_family pd_family_rf;
extern const struct pd_family pd_family_extratrees;

/* Out-of-bag score of a fitted or loaded forest model; NaN when oob_score
 * was off (or no row was ever out of bag). */
double forest_model_oob_score(const void *model);
size_t forest_model_n_trees(const void *model);
/* Tree i (< forest_model_n_trees) of the model; value_dim is n_classes
 * for classification (class probabilities), 1 for regression. */
const struct tree *forest_model_tree(const void *model, size_t i);

#endif

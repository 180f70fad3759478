/*
 * metrics.h - evaluation metrics of podium-train: the scores reported per
 * fold and on holdout data, and the names a job spec uses to pick one.
 *
 * Classification metrics take the true class indices y (0..k-1, as
 * doubles, the same encoding as pd_data.y) and a row-major n*k matrix of
 * predicted probabilities; the predicted label is the argmax (the lowest
 * index on ties). Regression metrics take n predicted values. Nothing here
 * allocates except ROC AUC (O(n) scratch). A metric that is undefined for
 * its input (ROC AUC with one class present, R² of an empty set, ...) is
 * NaN. Pure functions, any thread.
 */
#ifndef PODIUM_TRAINERS_METRICS_H
#define PODIUM_TRAINERS_METRICS_H

#include <stddef.h>

#include "trainers/family.h"

enum pd_metric {
    PD_METRIC_ACCURACY = 0,
    PD_METRIC_BALANCED_ACCURACY,
    PD_METRIC_LOG_LOSS,
    PD_METRIC_ROC_AUC,          /* binary; macro one-vs-rest for k > 2 */
    PD_METRIC_F1_MACRO,
    PD_METRIC_RMSE,
    PD_METRIC_MAE,
    PD_METRIC_R2,
    PD_METRIC_COUNT
};

/* "accuracy", "balanced_accuracy", "log_loss", "roc_auc", "f1_macro",
 * "rmse", "mae", "r2"; NULL for an out-of-range value. */
const char *pd_metric_name(enum pd_metric m);
/* The metric with that name, or -1. */
int pd_metric_find(const char *name);
/* 1 when a larger value is better (accuracy), 0 when smaller is (rmse). */
int pd_metric_greater_is_better(enum pd_metric m);
/* 1 when the metric applies to tasks of this kind. */
int pd_metric_applies(enum pd_metric m, enum pd_task_kind kind);

/* Log loss clips probabilities to [PD_LOGLOSS_EPS, 1 - PD_LOGLOSS_EPS]. */
#define PD_LOGLOSS_EPS 1e-15

double pd_metric_accuracy(const double *y, const double *proba, size_t n, int k);
double pd_metric_balanced_accuracy(const double *y, const double *proba,
                                   size_t n, int k);
double pd_metric_log_loss(const double *y, const double *proba, size_t n, int k);
/* Binary: AUC of score proba[:,1]; k > 2: mean over classes with both
 * positives and negatives of the one-vs-rest AUC. Ties get average ranks.
 * NaN when undefined or when scratch memory cannot be had. */
double pd_metric_roc_auc(const double *y, const double *proba, size_t n, int k);
/* Mean F1 over classes present in y or in the predictions. */
double pd_metric_f1_macro(const double *y, const double *proba, size_t n, int k);
/* AUC of a score for the rows where positive[i] != 0 against the rest. */
double pd_metric_auc_binary(const double *score, const unsigned char *positive,
                            size_t n);

double pd_metric_rmse(const double *y, const double *pred, size_t n);
double pd_metric_mae(const double *y, const double *pred, size_t n);
/* 1 - SS_res/SS_tot; when y is constant: 1 if the fit is perfect, else 0
 * (scikit-learn's force_finite). */
double pd_metric_r2(const double *y, const double *pred, size_t n);

/* Compute every metric that applies to task into out[PD_METRIC_COUNT];
 * those that do not apply are NaN. pred is n*n_classes probabilities for
 * classification, n values for regression. 0, or PD_EPARAM / PD_EDATA
 * with a message (a class index out of range, n == 0). */
int pd_metrics_compute(const struct pd_task *task, const double *y,
                       const double *pred, size_t n, double *out,
                       char *err, size_t errlen);

#endif

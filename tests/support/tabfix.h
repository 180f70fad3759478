/*
 * tabfix.h - a tiny CSV fixture loader for unit tests (owned by the model
 * family tests: linear, knn, nb, mlp, forest, gbm; any test may use it).
 *
 * Loads a numeric CSV with one header line. Every column but the label is
 * parsed with strtod (an empty field or "NA" becomes NaN). The label column
 * is the one named `label`, or the last one when `label` is NULL. With
 * classify TABFIX_CLASSES, label strings are mapped to class indices in
 * sorted (strcmp) order, as scikit-learn's LabelEncoder does; with
 * TABFIX_CLASSES_SEEN, in order of first appearance; with TABFIX_NUMBER
 * the label is parsed as a number. A relative path is tried as given, then
 * under $PODIUM_SRC_DIR when that is set.
 *
 * Also: fold subsets, standardization with training-fold statistics, a
 * parse-and-fit helper, and the two cross-validation drivers the model
 * tests share (stratified folds from pd_cv_kfold, or a seeded shuffle cut
 * into k slices). Messages go to err, which may be NULL when errlen is 0.
 */
#ifndef PODIUM_TESTS_TABFIX_H
#define PODIUM_TESTS_TABFIX_H

#include <stddef.h>
#include <stdint.h>

#include "trainers/family.h"

/* tabfix_load's classify. */
enum {
    TABFIX_NUMBER = 0,        /* the label is a number */
    TABFIX_CLASSES = 1,       /* class indices in sorted (strcmp) order */
    TABFIX_CLASSES_SEEN = 2,  /* class indices in order of first appearance */
};

struct tabfix {
    size_t n, d;
    float *x;            /* n*d row-major */
    double *y;           /* n labels (class index or value) */
    int n_classes;       /* 0 when not classify */
    char **class_names;  /* n_classes names, index order */
    char **col_names;    /* d feature names */
};

/* 0 on success; -1 with a message. The caller frees with tabfix_free. */
int tabfix_load(const char *path, const char *label, int classify,
                struct tabfix *out, char *err, size_t errlen);
void tabfix_free(struct tabfix *t);

/* Copy the rows with (fold[i] == f) == in_fold into new arrays (malloc'd,
 * caller frees); returns the row count. */
size_t tabfix_subset(const struct tabfix *t, const int *fold, int f,
                     int in_fold, float **x, double **y);

/* Column means and standard deviations of x (n*d); a zero deviation is
 * reported as 1 so that scaling leaves the column centered. */
void tabfix_col_stats(const float *x, size_t n, size_t d, double *mean,
                      double *sd);
/* x[i][j] = (x[i][j] - mean[j]) / sd[j] in place. */
void tabfix_scale(float *x, size_t n, size_t d, const double *mean,
                  const double *sd);

/* Parse params_json (JSON text, NULL = defaults) for fam and task, fit on
 * train (valid may be NULL) with opts, and free the params. 0 with *model
 * set (the caller frees it with fam->model_free), or a negative PD_ code
 * with a message that says which step failed. */
int tabfix_fit(const struct pd_family *fam, const char *params_json,
               struct pd_task task, const struct pd_data *train,
               const struct pd_data *valid, const struct pd_fit_opts *opts,
               void **model, char *err, size_t errlen);

/* Cross-validate a model family on t: k stratified (classification, when
 * t->n_classes >= 2) or plain folds from pd_cv_kfold with `seed`, each
 * training fold standardized with its own statistics when `standardize`
 * is set, params given as JSON text (NULL = defaults). *score is the
 * accuracy (classification) or R² (regression) of the pooled
 * out-of-fold predictions. 0, or a negative PD_ code with a message. */
int tabfix_cv_score(const struct pd_family *fam, const char *params_json,
                    const struct tabfix *t, int k, uint64_t seed,
                    int standardize, double *score, char *err, size_t errlen);

/* Cross-validate without scaling over k slices of a shuffle: the row
 * order is permuted by a Fisher-Yates shuffle drawn from pd_rng seeded
 * with shuffle_seed, and the i-th row of that order is tested in fold
 * i % k. Each fold is fitted with fit_seed on `threads` threads.
 * Classification when t->n_classes > 0. *score is the accuracy (argmax,
 * ties to the lower class) or R² (against the mean of all of t's targets)
 * of the pooled out-of-fold predictions. 0, or a negative PD_ code with a
 * message. */
int tabfix_cv_shuffled(const struct pd_family *fam, const char *params_json,
                       const struct tabfix *t, int k, uint64_t shuffle_seed,
                       uint64_t fit_seed, int threads, double *score,
                       char *err, size_t errlen);

#endif

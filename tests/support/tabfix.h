/*
 * tabfix.h - a tiny CSV fixture loader for unit tests (owned by the
 * linear/knn/nb/mlp tests; any test may use it).
 *
 * Loads a numeric CSV with one header line. Every column but the label is
 * parsed with strtod (an empty field or "NA" becomes NaN). The label column
 * is the one named `label`, or the last one when `label` is NULL. With
 * classify set, label strings are mapped to class indices in sorted
 * (strcmp) order, as scikit-learn's LabelEncoder does; otherwise the label
 * is parsed as a number. A relative path is tried as given, then under
 * $PODIUM_SRC_DIR when that is set.
 *
 * Also: fold subsets, standardization with training-fold statistics, and
 * a cross-validation driver the model tests share.
 */
#ifndef PODIUM_TESTS_TABFIX_H
#define PODIUM_TESTS_TABFIX_H

#include <stddef.h>
#include <stdint.h>

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

/* Cross-validate a model family on t: k stratified (classification, when
 * t->n_classes >= 2) or plain folds from pd_cv_kfold with `seed`, each
 * training fold standardized with its own statistics when `standardize`
 * is set, params given as JSON text (NULL = defaults). *score is the
 * accuracy (classification) or R² (regression) of the pooled
 * out-of-fold predictions. 0, or a negative PD_ code with a message. */
struct pd_family;
int tabfix_cv_score(const struct pd_family *fam, const char *params_json,
                    const struct tabfix *t, int k, uint64_t seed,
                    int standardize, double *score, char *err, size_t errlen);

#endif

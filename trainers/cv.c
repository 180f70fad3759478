/*
 * cv.c - see cv.h. Stratification groups row indices by class (a counting
 * sort, so the order before shuffling is the row order), shuffles each
 * group with Fisher-Yates, and concatenates the groups; dealing position p
 * of that list to fold p % k spreads every class evenly.
 */
#include "trainers/cv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "trainers/rng.h"

static void shuffle(size_t *v, size_t n, struct pd_rng *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)pd_rng_below(r, i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* Row indices grouped by class (each group shuffled) into order[n];
 * start[c]..start[c+1] delimit class c. Regression: one group. */
static int grouped_order(const struct pd_task *task, const double *y, size_t n,
                         uint64_t seed, size_t **order_out, size_t **start_out,
                         int *groups, char *err, size_t errlen)
{
    int k = task->kind == PD_TASK_CLASSIFICATION ? task->n_classes : 1;
    if (task->kind == PD_TASK_CLASSIFICATION && k < 2) {
        snprintf(err, errlen, "n_classes: must be >= 2, got %d", k);
        return PD_EPARAM;
    }
    size_t *order = malloc(n * sizeof *order);
    size_t *start = calloc((size_t)k + 1, sizeof *start);
    if (order == NULL || start == NULL) {
        free(order);
        free(start);
        snprintf(err, errlen, "cv: out of memory");
        return PD_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int c = 0;
        if (k > 1) {
            if (!(y[i] >= 0 && y[i] < k && y[i] == floor(y[i]))) {
                snprintf(err, errlen, "cv: row %zu: class %g is not in 0..%d", i, y[i], k - 1);
                free(order);
                free(start);
                return PD_EDATA;
            }
            c = (int)y[i];
        }
        start[c + 1]++;
    }
    for (int c = 0; c < k; c++) start[c + 1] += start[c];
    size_t *pos = malloc((size_t)k * sizeof *pos);
    if (pos == NULL) {
        free(order);
        free(start);
        snprintf(err, errlen, "cv: out of memory");
        return PD_ENOMEM;
    }
    for (int c = 0; c < k; c++) pos[c] = start[c];
    for (size_t i = 0; i < n; i++) order[pos[k > 1 ? (int)y[i] : 0]++] = i;
    free(pos);
    struct pd_rng r;
    pd_rng_seed(&r, seed);
    for (int c = 0; c < k; c++) shuffle(order + start[c], start[c + 1] - start[c], &r);
    *order_out = order;
    *start_out = start;
    *groups = k;
    return PD_OK;
}

int pd_cv_kfold(const struct pd_task *task, const double *y, size_t n, int k,
                uint64_t seed, int *fold, char *err, size_t errlen)
{
    if (k < 2 || (size_t)k > n) {
        snprintf(err, errlen, "folds: must be between 2 and the %zu rows, got %d", n, k);
        return PD_EPARAM;
    }
    size_t *order, *start;
    int g;
    int rc = grouped_order(task, y, n, seed, &order, &start, &g, err, errlen);
    if (rc < 0) return rc;
    /* Rotate each group's first fold so that the remainders of successive
     * classes land on different folds: the concatenated deal does this. */
    for (size_t p = 0; p < n; p++) fold[order[p]] = (int)(p % (size_t)k);
    free(order);
    free(start);
    return PD_OK;
}

int pd_cv_holdout(const struct pd_task *task, const double *y, size_t n,
                  double fraction, uint64_t seed, int *fold, char *err,
                  size_t errlen)
{
    if (!(fraction > 0 && fraction < 1)) {
        snprintf(err, errlen, "holdout_fraction: must be > 0 and < 1, got %g", fraction);
        return PD_EPARAM;
    }
    if (n < 2) {
        snprintf(err, errlen, "holdout: needs at least 2 rows, got %zu", n);
        return PD_EDATA;
    }
    size_t *order, *start;
    int g;
    int rc = grouped_order(task, y, n, seed, &order, &start, &g, err, errlen);
    if (rc < 0) return rc;
    size_t want = (size_t)llround(fraction * (double)n);
    if (want < 1) want = 1;
    if (want > n - 1) want = n - 1;
    /* Largest remainder: floor shares first, then the biggest fractions
     * (lowest class first on ties). */
    size_t *take = calloc((size_t)g, sizeof *take);
    double *rem = calloc((size_t)g, sizeof *rem);
    if (take == NULL || rem == NULL) {
        free(take); free(rem); free(order); free(start);
        snprintf(err, errlen, "cv: out of memory");
        return PD_ENOMEM;
    }
    size_t given = 0;
    for (int c = 0; c < g; c++) {
        double share = (double)want * (double)(start[c + 1] - start[c]) / (double)n;
        take[c] = (size_t)floor(share);
        rem[c] = share - floor(share);
        given += take[c];
    }
    while (given < want) {
        int best = -1;
        for (int c = 0; c < g; c++)
            if (take[c] < start[c + 1] - start[c] && (best < 0 || rem[c] > rem[best])) best = c;
        if (best < 0) break;
        take[best]++;
        rem[best] = -1;
        given++;
    }
    for (int c = 0; c < g; c++)
        for (size_t p = start[c]; p < start[c + 1]; p++)
            fold[order[p]] = (p - start[c]) < take[c];
    free(take); free(rem); free(order); free(start);
    return PD_OK;
}

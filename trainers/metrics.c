/*
 * metrics.c - see metrics.h. Definitions follow scikit-learn's
 * (accuracy_score, balanced_accuracy_score, log_loss, roc_auc_score with
 * multi_class="ovr" average="macro", f1_score average="macro",
 * mean_squared_error, mean_absolute_error, r2_score), unweighted.
 */
#include "trainers/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int greater;
    enum pd_task_kind kind;
} metric_info[PD_METRIC_COUNT] = {
    [PD_METRIC_ACCURACY] = {"accuracy", 1, PD_TASK_CLASSIFICATION},
    [PD_METRIC_BALANCED_ACCURACY] = {"balanced_accuracy", 1, PD_TASK_CLASSIFICATION},
    [PD_METRIC_LOG_LOSS] = {"log_loss", 0, PD_TASK_CLASSIFICATION},
    [PD_METRIC_ROC_AUC] = {"roc_auc", 1, PD_TASK_CLASSIFICATION},
    [PD_METRIC_F1_MACRO] = {"f1_macro", 1, PD_TASK_CLASSIFICATION},
    [PD_METRIC_RMSE] = {"rmse", 0, PD_TASK_REGRESSION},
    [PD_METRIC_MAE] = {"mae", 0, PD_TASK_REGRESSION},
    [PD_METRIC_R2] = {"r2", 1, PD_TASK_REGRESSION},
};

const char *pd_metric_name(enum pd_metric m)
{
    if ((int)m < 0 || m >= PD_METRIC_COUNT) return NULL;
    return metric_info[m].name;
}

int pd_metric_find(const char *name)
{
    if (name == NULL) return -1;
    for (int m = 0; m < PD_METRIC_COUNT; m++)
        if (strcmp(name, metric_info[m].name) == 0) return m;
    return -1;
}

int pd_metric_greater_is_better(enum pd_metric m)
{
    if ((int)m < 0 || m >= PD_METRIC_COUNT) return 0;
    return metric_info[m].greater;
}

int pd_metric_applies(enum pd_metric m, enum pd_task_kind kind)
{
    if ((int)m < 0 || m >= PD_METRIC_COUNT) return 0;
    return metric_info[m].kind == kind;
}

static int argmax_row(const double *p, int k)
{
    int best = 0;
    for (int c = 1; c < k; c++)
        if (p[c] > p[best]) best = c;
    return best;
}

double pd_metric_accuracy(const double *y, const double *proba, size_t n, int k)
{
    if (n == 0) return NAN;
    size_t hit = 0;
    for (size_t i = 0; i < n; i++)
        hit += (argmax_row(proba + i * (size_t)k, k) == (int)y[i]);
    return (double)hit / (double)n;
}

/* Confusion counts per class: tp, true support, predicted count. */
static int class_counts(const double *y, const double *proba, size_t n, int k,
                        size_t **tp, size_t **sup, size_t **pred)
{
    *tp = calloc((size_t)k, sizeof **tp);
    *sup = calloc((size_t)k, sizeof **sup);
    *pred = calloc((size_t)k, sizeof **pred);
    if (!*tp || !*sup || !*pred) {
        free(*tp); free(*sup); free(*pred);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int t = (int)y[i], p = argmax_row(proba + i * (size_t)k, k);
        if (t < 0 || t >= k) continue;
        (*sup)[t]++;
        (*pred)[p]++;
        if (t == p) (*tp)[t]++;
    }
    return 0;
}

double pd_metric_balanced_accuracy(const double *y, const double *proba,
                                   size_t n, int k)
{
    size_t *tp, *sup, *pred;
    if (n == 0 || k < 1 || class_counts(y, proba, n, k, &tp, &sup, &pred) < 0)
        return NAN;
    double s = 0;
    int m = 0;
    for (int c = 0; c < k; c++) {
        if (sup[c] == 0) continue;  /* recall undefined: left out */
        s += (double)tp[c] / (double)sup[c];
        m++;
    }
    free(tp); free(sup); free(pred);
    return m ? s / m : NAN;
}

double pd_metric_f1_macro(const double *y, const double *proba, size_t n, int k)
{
    size_t *tp, *sup, *pred;
    if (n == 0 || k < 1 || class_counts(y, proba, n, k, &tp, &sup, &pred) < 0)
        return NAN;
    double s = 0;
    int m = 0;
    for (int c = 0; c < k; c++) {
        if (sup[c] == 0 && pred[c] == 0) continue;
        /* F1 = 2tp / (2tp + fp + fn) = 2tp / (support + predicted) */
        s += 2.0 * (double)tp[c] / (double)(sup[c] + pred[c]);
        m++;
    }
    free(tp); free(sup); free(pred);
    return m ? s / m : NAN;
}

double pd_metric_log_loss(const double *y, const double *proba, size_t n, int k)
{
    if (n == 0) return NAN;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        int t = (int)y[i];
        if (t < 0 || t >= k) return NAN;
        double p = proba[i * (size_t)k + t];
        if (!(p >= PD_LOGLOSS_EPS)) p = PD_LOGLOSS_EPS;  /* also NaN */
        if (p > 1 - PD_LOGLOSS_EPS) p = 1 - PD_LOGLOSS_EPS;
        s -= log(p);
    }
    return s / (double)n;
}

struct scored { double s; size_t i; };

static int cmp_scored(const void *a, const void *b)
{
    const struct scored *x = a, *y = b;
    if (x->s < y->s) return -1;
    if (x->s > y->s) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Mann-Whitney: AUC = (R+ - P(P+1)/2) / (P N), R+ the positives' rank sum
 * with tied scores given their average rank. */
static double auc_sorted(const struct scored *v, const unsigned char *positive,
                         size_t n)
{
    double rank_sum = 0, npos = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j + 1 < n && v[j + 1].s == v[i].s) j++;
        double avg = 0.5 * ((double)(i + 1) + (double)(j + 1));
        for (size_t t = i; t <= j; t++)
            if (positive[v[t].i]) { rank_sum += avg; npos++; }
        i = j + 1;
    }
    double nneg = (double)n - npos;
    if (npos == 0 || nneg == 0) return NAN;
    return (rank_sum - npos * (npos + 1) / 2) / (npos * nneg);
}

double pd_metric_auc_binary(const double *score, const unsigned char *positive,
                            size_t n)
{
    if (n == 0) return NAN;
    struct scored *v = malloc(n * sizeof *v);
    if (v == NULL) return NAN;
    for (size_t i = 0; i < n; i++) {
        v[i].s = score[i];
        v[i].i = i;
    }
    qsort(v, n, sizeof *v, cmp_scored);
    double a = auc_sorted(v, positive, n);
    free(v);
    return a;
}

double pd_metric_roc_auc(const double *y, const double *proba, size_t n, int k)
{
    if (n == 0 || k < 2) return NAN;
    double *score = malloc(n * sizeof *score);
    unsigned char *pos = malloc(n);
    double out = NAN;
    if (score == NULL || pos == NULL) goto done;
    if (k == 2) {
        for (size_t i = 0; i < n; i++) {
            score[i] = proba[i * 2 + 1];
            pos[i] = (y[i] == 1.0);
        }
        out = pd_metric_auc_binary(score, pos, n);
        goto done;
    }
    double s = 0;
    int m = 0;
    for (int c = 0; c < k; c++) {
        for (size_t i = 0; i < n; i++) {
            score[i] = proba[i * (size_t)k + c];
            pos[i] = ((int)y[i] == c);
        }
        double a = pd_metric_auc_binary(score, pos, n);
        if (isnan(a)) continue;
        s += a;
        m++;
    }
    if (m) out = s / m;
done:
    free(score);
    free(pos);
    return out;
}

double pd_metric_rmse(const double *y, const double *pred, size_t n)
{
    if (n == 0) return NAN;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (y[i] - pred[i]) * (y[i] - pred[i]);
    return sqrt(s / (double)n);
}

double pd_metric_mae(const double *y, const double *pred, size_t n)
{
    if (n == 0) return NAN;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs(y[i] - pred[i]);
    return s / (double)n;
}

double pd_metric_r2(const double *y, const double *pred, size_t n)
{
    if (n == 0) return NAN;
    double mean = 0, ss_res = 0, ss_tot = 0;
    for (size_t i = 0; i < n; i++) mean += y[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        ss_res += (y[i] - pred[i]) * (y[i] - pred[i]);
        ss_tot += (y[i] - mean) * (y[i] - mean);
    }
    if (ss_tot == 0) return ss_res == 0 ? 1.0 : 0.0;
    return 1.0 - ss_res / ss_tot;
}

int pd_metrics_compute(const struct pd_task *task, const double *y,
                       const double *pred, size_t n, double *out,
                       char *err, size_t errlen)
{
    for (int m = 0; m < PD_METRIC_COUNT; m++) out[m] = NAN;
    if (n == 0) {
        snprintf(err, errlen, "metrics: no rows to score");
        return PD_EDATA;
    }
    if (task->kind == PD_TASK_REGRESSION) {
        out[PD_METRIC_RMSE] = pd_metric_rmse(y, pred, n);
        out[PD_METRIC_MAE] = pd_metric_mae(y, pred, n);
        out[PD_METRIC_R2] = pd_metric_r2(y, pred, n);
        return PD_OK;
    }
    int k = task->n_classes;
    if (task->kind != PD_TASK_CLASSIFICATION || k < 2) {
        snprintf(err, errlen, "metrics: n_classes must be >= 2, got %d", k);
        return PD_EPARAM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(y[i] >= 0 && y[i] < k && y[i] == floor(y[i]))) {
            snprintf(err, errlen, "metrics: row %zu: class %g is not in 0..%d",
                     i, y[i], k - 1);
            return PD_EDATA;
        }
    }
    out[PD_METRIC_ACCURACY] = pd_metric_accuracy(y, pred, n, k);
    out[PD_METRIC_BALANCED_ACCURACY] = pd_metric_balanced_accuracy(y, pred, n, k);
    out[PD_METRIC_LOG_LOSS] = pd_metric_log_loss(y, pred, n, k);
    out[PD_METRIC_ROC_AUC] = pd_metric_roc_auc(y, pred, n, k);
    out[PD_METRIC_F1_MACRO] = pd_metric_f1_macro(y, pred, n, k);
    return PD_OK;
}

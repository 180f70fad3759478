/* test_metrics.c - metrics against values computed by hand (and, for
 * multiclass AUC, against brute-force pair counting); name lookup. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "trainers/metrics.h"

/* one-hot-ish probabilities that make argmax = lab */
static void hard(const int *lab, size_t n, int k, double *p)
{
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < k; c++) p[i * k + c] = (c == lab[i]) ? 0.8 : 0.2 / (k - 1);
}

static void accuracy_balanced_f1(void **state)
{
    /* y = 0 0 0 1, predicted 0 0 1 1: accuracy 3/4; recalls 2/3 and 1 ->
     * balanced 5/6; F1(0) = 2*2/(3+2) = 0.8, F1(1) = 2*1/(1+2) = 2/3. */
    double y[4] = {0, 0, 0, 1}, p[8];
    int pred[4] = {0, 0, 1, 1};
    hard(pred, 4, 2, p);
    assert_float_equal(pd_metric_accuracy(y, p, 4, 2), 0.75, 1e-12);
    assert_float_equal(pd_metric_balanced_accuracy(y, p, 4, 2), 5.0 / 6, 1e-12);
    assert_float_equal(pd_metric_f1_macro(y, p, 4, 2), (0.8 + 2.0 / 3) / 2, 1e-12);

    /* 3 classes, class 2 never true but predicted once: balanced accuracy
     * averages recall over the true classes only; macro F1 counts class 2
     * with F1 0. y = 0 1 1 0, pred = 0 1 2 1:
     * recall0 = 1/2, recall1 = 1/2 -> 0.5.
     * F1(0) = 2*1/(2+1) = 2/3, F1(1) = 2*1/(2+2) = 1/2, F1(2) = 0. */
    double y3[4] = {0, 1, 1, 0}, p3[12];
    int pr3[4] = {0, 1, 2, 1};
    hard(pr3, 4, 3, p3);
    assert_float_equal(pd_metric_balanced_accuracy(y3, p3, 4, 3), 0.5, 1e-12);
    assert_float_equal(pd_metric_f1_macro(y3, p3, 4, 3), (2.0 / 3 + 0.5 + 0) / 3, 1e-12);
    assert_float_equal(pd_metric_accuracy(y3, p3, 4, 3), 0.5, 1e-12);
}

static void log_loss_clipped(void **state)
{
    double y[3] = {0, 1, 1};
    double p[6] = {0.9, 0.1, 0.2, 0.8, 0.7, 0.3};
    double want = -(log(0.9) + log(0.8) + log(0.3)) / 3;
    assert_float_equal(pd_metric_log_loss(y, p, 3, 2), want, 1e-12);
    /* a zero probability for the true class is clipped to 1e-15 */
    double y1[1] = {1}, p1[2] = {1.0, 0.0};
    assert_float_equal(pd_metric_log_loss(y1, p1, 1, 2), -log(1e-15), 1e-9);
    assert_true(isfinite(pd_metric_log_loss(y1, p1, 1, 2)));
}

static void auc_binary_with_ties(void **state)
{
    /* scikit-learn's doc example: 0.75 */
    double y[4] = {0, 0, 1, 1};
    double p[8] = {0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8};
    assert_float_equal(pd_metric_roc_auc(y, p, 4, 2), 0.75, 1e-12);
    /* ties: positives {0.5, 0.9}, negatives {0.5, 0.2}; pairs:
     * 0.5~0.5 = 1/2, the other three = 1 -> 3.5 / 4 */
    double yt[4] = {0, 1, 0, 1};
    double pt[8] = {0.5, 0.5, 0.5, 0.5, 0.8, 0.2, 0.1, 0.9};
    assert_float_equal(pd_metric_roc_auc(yt, pt, 4, 2), 0.875, 1e-12);
    /* all scores tied -> 0.5; one class only -> NaN */
    double pe[8] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    assert_float_equal(pd_metric_roc_auc(yt, pe, 4, 2), 0.5, 1e-12);
    double y0[4] = {1, 1, 1, 1};
    assert_true(isnan(pd_metric_roc_auc(y0, pt, 4, 2)));
}

/* Brute force: fraction of (pos, neg) pairs ordered right, ties 1/2. */
static double pair_auc(const double *s, const int *pos, size_t n)
{
    double good = 0, pairs = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            if (!pos[i] || pos[j]) continue;
            pairs++;
            good += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
        }
    return good / pairs;
}

static void auc_multiclass_ovr_macro(void **state)
{
    enum { N = 9, K = 3 };
    double y[N] = {0, 1, 2, 0, 1, 2, 0, 1, 2};
    double p[N * K] = {
        0.6, 0.3, 0.1,  0.2, 0.5, 0.3,  0.1, 0.3, 0.6,
        0.3, 0.4, 0.3,  0.3, 0.4, 0.3,  0.2, 0.2, 0.6,
        0.4, 0.4, 0.2,  0.5, 0.25, 0.25, 0.3, 0.4, 0.3,
    };
    double want = 0;
    for (int c = 0; c < K; c++) {
        double s[N];
        int pos[N];
        for (int i = 0; i < N; i++) {
            s[i] = p[i * K + c];
            pos[i] = (int)y[i] == c;
        }
        want += pair_auc(s, pos, N) / K;
    }
    assert_float_equal(pd_metric_roc_auc(y, p, N, K), want, 1e-12);
}

static void regression_metrics(void **state)
{
    /* scikit-learn's doc example: MSE 0.375, MAE 0.5, R2 0.948608137... */
    double y[4] = {3, -0.5, 2, 7}, p[4] = {2.5, 0.0, 2, 8};
    assert_float_equal(pd_metric_rmse(y, p, 4), sqrt(0.375), 1e-12);
    assert_float_equal(pd_metric_mae(y, p, 4), 0.5, 1e-12);
    assert_float_equal(pd_metric_r2(y, p, 4), 0.9486081370449679, 1e-12);
    double c[3] = {1, 1, 1}, q[3] = {1, 1, 2};
    assert_float_equal(pd_metric_r2(c, c, 3), 1.0, 0);
    assert_float_equal(pd_metric_r2(c, q, 3), 0.0, 0);
}

static void compute_all_and_names(void **state)
{
    struct pd_task cls = {PD_TASK_CLASSIFICATION, 2}, reg = {PD_TASK_REGRESSION, 0};
    double y[4] = {0, 0, 1, 1};
    double p[8] = {0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8};
    double out[PD_METRIC_COUNT];
    char err[128];
    assert_int_equal(pd_metrics_compute(&cls, y, p, 4, out, err, sizeof err), 0);
    assert_float_equal(out[PD_METRIC_ROC_AUC], 0.75, 1e-12);
    assert_float_equal(out[PD_METRIC_ACCURACY], 0.75, 1e-12); /* 3rd row wrong */
    assert_true(isnan(out[PD_METRIC_RMSE]));
    double bad[4] = {0, 0, 2, 1};
    assert_int_equal(pd_metrics_compute(&cls, bad, p, 4, out, err, sizeof err), PD_EDATA);
    double yr[4] = {3, -0.5, 2, 7}, pr[4] = {2.5, 0.0, 2, 8};
    assert_int_equal(pd_metrics_compute(&reg, yr, pr, 4, out, err, sizeof err), 0);
    assert_float_equal(out[PD_METRIC_MAE], 0.5, 1e-12);
    assert_true(isnan(out[PD_METRIC_ACCURACY]));

    for (int m = 0; m < PD_METRIC_COUNT; m++)
        assert_int_equal(pd_metric_find(pd_metric_name(m)), m);
    assert_int_equal(pd_metric_find("nope"), -1);
    assert_int_equal(pd_metric_find(NULL), -1);
    assert_null(pd_metric_name(PD_METRIC_COUNT));
    assert_true(pd_metric_greater_is_better(PD_METRIC_ROC_AUC));
    assert_false(pd_metric_greater_is_better(PD_METRIC_LOG_LOSS));
    assert_false(pd_metric_greater_is_better(PD_METRIC_RMSE));
    assert_true(pd_metric_greater_is_better(PD_METRIC_R2));
    assert_true(pd_metric_applies(PD_METRIC_R2, PD_TASK_REGRESSION));
    assert_false(pd_metric_applies(PD_METRIC_R2, PD_TASK_CLASSIFICATION));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accuracy_balanced_f1),
        cmocka_unit_test(log_loss_clipped),
        cmocka_unit_test(auc_binary_with_ties),
        cmocka_unit_test(auc_multiclass_ovr_macro),
        cmocka_unit_test(regression_metrics),
        cmocka_unit_test(compute_all_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

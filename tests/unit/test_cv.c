/* test_cv.c - stratified folds keep class proportions, every row lands in
 * exactly one fold, splits repeat for a seed, holdout sizes are exact. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "trainers/cv.h"

static void stratified_kfold_balanced(void **state)
{
    enum { N = 23, K = 4, C = 3 };
    /* classes of 7, 13 and 3 rows, interleaved */
    double y[N];
    int cnt[C] = {7, 13, 3}, left[C] = {7, 13, 3};
    for (int i = 0, c = 0; i < N; c = (c + 1) % C) {
        if (left[c] == 0) continue;
        left[c]--;
        y[i++] = c;
    }
    struct pd_task t = {PD_TASK_CLASSIFICATION, C};
    int fold[N], fold2[N];
    char err[128];
    assert_int_equal(pd_cv_kfold(&t, y, N, K, 42, fold, err, sizeof err), 0);
    int per[K][C];
    memset(per, 0, sizeof per);
    for (int i = 0; i < N; i++) {
        assert_true(fold[i] >= 0 && fold[i] < K);
        per[fold[i]][(int)y[i]]++;
    }
    int total = 0;
    for (int f = 0; f < K; f++) {
        int size = 0;
        for (int c = 0; c < C; c++) {
            /* each class within floor/ceil of its share */
            assert_true(per[f][c] >= cnt[c] / K);
            assert_true(per[f][c] <= (cnt[c] + K - 1) / K);
            size += per[f][c];
        }
        assert_true(size == N / K || size == N / K + 1);
        total += size;
    }
    assert_int_equal(total, N);
    assert_int_equal(pd_cv_kfold(&t, y, N, K, 42, fold2, err, sizeof err), 0);
    assert_memory_equal(fold, fold2, sizeof fold);
}

static void iris_like_exact_proportions(void **state)
{
    double y[150];
    for (int i = 0; i < 150; i++) y[i] = i / 50;
    struct pd_task t = {PD_TASK_CLASSIFICATION, 3};
    int fold[150], other[150];
    char err[128];
    assert_int_equal(pd_cv_kfold(&t, y, 150, 5, 7, fold, err, sizeof err), 0);
    int per[5][3] = {{0}};
    for (int i = 0; i < 150; i++) per[fold[i]][(int)y[i]]++;
    for (int f = 0; f < 5; f++)
        for (int c = 0; c < 3; c++) assert_int_equal(per[f][c], 10);
    /* another seed gives another (still balanced) assignment */
    assert_int_equal(pd_cv_kfold(&t, y, 150, 5, 8, other, err, sizeof err), 0);
    assert_memory_not_equal(fold, other, sizeof fold);
    /* shuffled: fold 0 is not simply every 5th row */
    int seq = 1;
    for (int i = 0; i < 150; i++) seq &= fold[i] == i % 5;
    assert_false(seq);
}

static void regression_kfold_and_errors(void **state)
{
    double y[10];
    for (int i = 0; i < 10; i++) y[i] = i * 0.5;
    struct pd_task t = {PD_TASK_REGRESSION, 0};
    int fold[10], size[3] = {0};
    char err[128];
    assert_int_equal(pd_cv_kfold(&t, y, 10, 3, 1, fold, err, sizeof err), 0);
    for (int i = 0; i < 10; i++) size[fold[i]]++;
    assert_int_equal(size[0] + size[1] + size[2], 10);
    for (int f = 0; f < 3; f++) assert_true(size[f] == 3 || size[f] == 4);

    assert_int_equal(pd_cv_kfold(&t, y, 10, 1, 1, fold, err, sizeof err), PD_EPARAM);
    assert_non_null(strstr(err, "folds"));
    assert_int_equal(pd_cv_kfold(&t, y, 10, 11, 1, fold, err, sizeof err), PD_EPARAM);
    struct pd_task c = {PD_TASK_CLASSIFICATION, 2};
    assert_int_equal(pd_cv_kfold(&c, y, 10, 2, 1, fold, err, sizeof err), PD_EDATA);
}

static void holdout_stratified(void **state)
{
    double y[150];
    for (int i = 0; i < 150; i++) y[i] = i % 3;
    struct pd_task t = {PD_TASK_CLASSIFICATION, 3};
    int fold[150], again[150];
    char err[128];
    assert_int_equal(pd_cv_holdout(&t, y, 150, 0.2, 3, fold, err, sizeof err), 0);
    int per[3] = {0}, total = 0;
    for (int i = 0; i < 150; i++) {
        assert_true(fold[i] == 0 || fold[i] == 1);
        per[(int)y[i]] += fold[i];
        total += fold[i];
    }
    assert_int_equal(total, 30);
    for (int c = 0; c < 3; c++) assert_int_equal(per[c], 10);
    assert_int_equal(pd_cv_holdout(&t, y, 150, 0.2, 3, again, err, sizeof err), 0);
    assert_memory_equal(fold, again, sizeof fold);

    /* 0.25 of 10 rows of 7 + 3: round(2.5) = 3 held out, shares 1.75 and
     * 0.75 -> floors 1 + 0, remainders give one each -> 2 + 1 */
    double y2[10] = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1};
    int f2[10], p2[2] = {0};
    assert_int_equal(pd_cv_holdout(&t, y2, 10, 0.25, 9, f2, err, sizeof err), 0);
    for (int i = 0; i < 10; i++) p2[(int)y2[i]] += f2[i];
    assert_int_equal(p2[0], 2);
    assert_int_equal(p2[1], 1);

    struct pd_task r = {PD_TASK_REGRESSION, 0};
    assert_int_equal(pd_cv_holdout(&r, y2, 10, 0.01, 9, f2, err, sizeof err), 0);
    total = 0;
    for (int i = 0; i < 10; i++) total += f2[i];
    assert_int_equal(total, 1);  /* at least one row */
    assert_int_equal(pd_cv_holdout(&r, y2, 10, 1.0, 9, f2, err, sizeof err), PD_EPARAM);
    assert_non_null(strstr(err, "holdout_fraction"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stratified_kfold_balanced),
        cmocka_unit_test(iris_like_exact_proportions),
        cmocka_unit_test(regression_kfold_and_errors),
        cmocka_unit_test(holdout_stratified),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_space.c - every family's default search space against podium-train's
 * own parameter parsers: the defaults and thousands of samples per family
 * and task must be accepted by pd_family_find(name)->params_parse; integer
 * and range bounds hold; conditional parameters appear only under their
 * condition; the spaces cover exactly the trainer's families; and each
 * fidelity (for successive halving) is an integer parameter the trainer
 * accepts from its smallest rung up. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "scheduler/space.h"
#include "trainers/family.h"

static const char *const ALL[] = {"linear", "rf", "extratrees", "gbm", "knn", "nb", "mlp"};

static void check_accepted(const struct space_family *f, int task, const cJSON *params)
{
    const struct pd_family *pf = pd_family_find(f->name);
    assert_non_null(pf);
    struct pd_task t = {task == SPACE_CLASSIFICATION ? PD_TASK_CLASSIFICATION
                                                     : PD_TASK_REGRESSION,
                        task == SPACE_CLASSIFICATION ? 3 : 0};
    void *p = NULL;
    char err[256] = "";
    int rc = pf->params_parse(params, &t, &p, err, sizeof err);
    if (rc != 0) {
        char *s = cJSON_PrintUnformatted(params);
        fail_msg("%s %s rejected: %s", f->name, s, err);
    }
    pf->params_free(p);
}

static void test_families_match_trainer(void **state)
{
    (void)state;
    assert_int_equal(space_family_count(), sizeof ALL / sizeof ALL[0]);
    for (size_t i = 0; i < sizeof ALL / sizeof ALL[0]; i++) {
        const struct space_family *f = space_family_find(ALL[i]);
        assert_non_null(f);
        const struct pd_family *pf = pd_family_find(ALL[i]);
        assert_non_null(pf);
        assert_int_equal(space_family_supports(f, SPACE_CLASSIFICATION),
                         pf->supports_classification != 0);
        assert_int_equal(space_family_supports(f, SPACE_REGRESSION),
                         pf->supports_regression != 0);
    }
    assert_null(space_family_find("svm"));
    assert_null(space_family_find(NULL));
}

static void test_defaults_accepted(void **state)
{
    (void)state;
    for (size_t i = 0; i < space_family_count(); i++) {
        const struct space_family *f = space_family_at(i);
        for (int task = 1; task <= 2; task++) {
            if (!space_family_supports(f, task)) continue;
            cJSON *p = space_default_params(f, task);
            check_accepted(f, task, p);
            cJSON_Delete(p);
        }
    }
}

static void test_samples_accepted_and_in_range(void **state)
{
    (void)state;
    struct space_rng rng;
    space_rng_seed(&rng, 7);
    for (size_t i = 0; i < space_family_count(); i++) {
        const struct space_family *f = space_family_at(i);
        for (int task = 1; task <= 2; task++) {
            if (!space_family_supports(f, task)) continue;
            for (int k = 0; k < 500; k++) {
                cJSON *p = space_sample(f, task, &rng);
                assert_non_null(p);
                check_accepted(f, task, p);
                for (size_t j = 0; j < f->n_params; j++) {
                    const struct space_param *sp = &f->params[j];
                    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, sp->name);
                    if (!(sp->tasks & task)) {
                        /* a same-named parameter of the other task may exist */
                        continue;
                    }
                    if (v == NULL) {
                        assert_non_null(sp->when_param);   /* only conditionals go missing */
                        continue;
                    }
                    if (sp->kind == SPACE_CHOICE) continue;
                    assert_true(cJSON_IsNumber(v));
                    assert_true(v->valuedouble >= sp->lo && v->valuedouble <= sp->hi);
                    if (sp->kind == SPACE_INT)
                        assert_true(v->valuedouble == floor(v->valuedouble));
                }
                cJSON_Delete(p);
            }
        }
    }
}

static void test_conditional(void **state)
{
    (void)state;
    const struct space_family *f = space_family_find("linear");
    struct space_rng rng;
    space_rng_seed(&rng, 1);
    int with = 0, without = 0;
    for (int k = 0; k < 300; k++) {
        cJSON *p = space_sample(f, SPACE_CLASSIFICATION, &rng);
        const cJSON *pen = cJSON_GetObjectItemCaseSensitive(p, "penalty");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(p, "l1_ratio");
        assert_true(cJSON_IsString(pen));
        int elastic = strcmp(pen->valuestring, "elasticnet") == 0;
        assert_int_equal(r != NULL, elastic);
        with += elastic;
        without += !elastic;
        /* classification never gets the regression-only alpha */
        assert_null(cJSON_GetObjectItemCaseSensitive(p, "alpha"));
        cJSON_Delete(p);
    }
    assert_true(with > 0 && without > 0);
}

static void test_rng_reproducible(void **state)
{
    (void)state;
    struct space_rng a, b;
    space_rng_seed(&a, 99);
    space_rng_seed(&b, 99);
    const struct space_family *f = space_family_find("gbm");
    for (int k = 0; k < 20; k++) {
        cJSON *x = space_sample(f, SPACE_REGRESSION, &a);
        cJSON *y = space_sample(f, SPACE_REGRESSION, &b);
        assert_true(cJSON_Compare(x, y, 1));
        cJSON_Delete(x);
        cJSON_Delete(y);
    }
    assert_int_equal(space_task_parse("classification"), SPACE_CLASSIFICATION);
    assert_int_equal(space_task_parse("regression"), SPACE_REGRESSION);
    assert_int_equal(space_task_parse("auto"), -1);
}

static void test_fidelity(void **state)
{
    (void)state;
    static const char *const with[] = {"rf", "extratrees", "gbm", "mlp"};
    for (size_t i = 0; i < space_family_count(); i++) {
        const struct space_family *f = space_family_at(i);
        int expect = 0;
        for (size_t j = 0; j < sizeof with / sizeof with[0]; j++)
            expect |= strcmp(f->name, with[j]) == 0;
        assert_int_equal(f->fidelity != NULL, expect);
        if (f->fidelity == NULL) continue;
        for (int task = 1; task <= 2; task++) {
            if (!space_family_supports(f, task)) continue;
            const struct space_param *p = space_param_find(f, task, f->fidelity);
            assert_non_null(p);
            assert_int_equal(p->kind, SPACE_INT);
            assert_null(p->when_param);
            assert_true(f->fidelity_min >= 1 && f->fidelity_min < p->hi);
            cJSON *params = cJSON_CreateObject();
            cJSON_AddNumberToObject(params, f->fidelity, f->fidelity_min);
            check_accepted(f, task, params);
            cJSON_Delete(params);
        }
    }
    /* space_param_value rounds and clamps */
    const struct space_family *g = space_family_find("gbm");
    const struct space_param *n = space_param_find(g, SPACE_REGRESSION, "n_estimators");
    const struct space_param *lr = space_param_find(g, SPACE_REGRESSION, "learning_rate");
    assert_null(space_param_find(g, SPACE_REGRESSION, "penalty"));
    cJSON *v = space_param_value(n, 99.6);
    assert_true(v->valuedouble == 100);
    cJSON_Delete(v);
    v = space_param_value(n, 1e9);
    assert_true(v->valuedouble == 500);
    cJSON_Delete(v);
    v = space_param_value(lr, 0.123456);
    assert_true(v->valuedouble == 0.1235);
    cJSON_Delete(v);
    v = space_param_value(lr, NAN);
    assert_true(v->valuedouble == 0.01);
    cJSON_Delete(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families_match_trainer),
        cmocka_unit_test(test_defaults_accepted),
        cmocka_unit_test(test_samples_accepted_and_in_range),
        cmocka_unit_test(test_conditional),
        cmocka_unit_test(test_rng_reproducible),
        cmocka_unit_test(test_fidelity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

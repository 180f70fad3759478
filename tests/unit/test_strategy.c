/* test_strategy.c - random search: the known-good configurations first (the
 * families' defaults in job.models order, skipping families that do not fit
 * the task), a sequence that depends only on the seed and the history, its
 * state round-tripping through JSON (a restarted scheduler continues the
 * same search), and errors for jobs it cannot serve. */
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
#include "scheduler/strategy.h"

#define N 30

struct run {
    struct strategy_trial hist[N];
    cJSON *params[N];
    char *text[N];
};

static void run_free(struct run *r, int n)
{
    for (int i = 0; i < n; i++) {
        cJSON_Delete(r->params[i]);
        free(r->text[i]);
    }
}

/* Propose n trials from scratch (every one succeeding at once), restoring
 * the strategy from its saved JSON text before each proposal when
 * roundtrip is set. text[i] = "family params". */
static void propose_n(const struct strategy_job *job, int n, int roundtrip, struct run *r)
{
    char err[256];
    struct strategy s;
    assert_int_equal(strategy_new(&s, &strategy_random, job, NULL, err, sizeof err), 0);
    for (int i = 0; i < n; i++) {
        if (roundtrip) {
            cJSON *saved = strategy_save(&s);
            char *txt = cJSON_PrintUnformatted(saved);
            cJSON_Delete(saved);
            strategy_free(&s);
            cJSON *back = cJSON_Parse(txt);
            free(txt);
            assert_int_equal(strategy_new(&s, &strategy_random, job, back, err, sizeof err), 0);
            cJSON_Delete(back);
        }
        const char *fam = NULL;
        cJSON *p = NULL;
        assert_int_equal(strategy_next(&s, r->hist, (size_t)i, &fam, &p, err, sizeof err), 0);
        char *pt = cJSON_PrintUnformatted(p);
        size_t len = strlen(fam) + strlen(pt) + 2;
        r->text[i] = malloc(len);
        snprintf(r->text[i], len, "%s %s", fam, pt);
        free(pt);
        r->params[i] = p;
        r->hist[i] = (struct strategy_trial){i + 1, fam, p, ST_SUCCEEDED, 0.5 + 0.01 * i};
    }
    strategy_free(&s);
}

static const char *const MODELS[] = {"gbm", "knn", "nb", "linear"};

static void test_known_good_first(void **state)
{
    (void)state;
    struct strategy_job job = {MODELS, 4, SPACE_CLASSIFICATION, 42, 1};
    struct run r = {0};
    propose_n(&job, 8, 0, &r);
    assert_string_equal(r.text[0], "gbm {}");
    assert_string_equal(r.text[1], "knn {}");
    assert_string_equal(r.text[2], "nb {}");
    assert_string_equal(r.text[3], "linear {}");
    for (int i = 4; i < 8; i++) assert_string_not_equal(strchr(r.text[i], ' '), " {}");
    run_free(&r, 8);

    /* regression: nb does not fit and is skipped */
    struct strategy_job reg = {MODELS, 4, SPACE_REGRESSION, 42, 0};
    struct run q = {0};
    propose_n(&reg, 12, 0, &q);
    assert_string_equal(q.text[0], "gbm {}");
    assert_string_equal(q.text[1], "knn {}");
    assert_string_equal(q.text[2], "linear {}");
    for (int i = 0; i < 12; i++) assert_null(strstr(q.text[i], "nb "));
    run_free(&q, 12);
}

static void test_reproducible(void **state)
{
    (void)state;
    struct strategy_job job = {MODELS, 4, SPACE_CLASSIFICATION, 42, 1};
    struct run a = {0}, b = {0}, c = {0};
    propose_n(&job, N, 0, &a);
    propose_n(&job, N, 0, &b);
    job.seed = 43;
    propose_n(&job, N, 0, &c);
    int differ = 0;
    for (int i = 0; i < N; i++) {
        assert_string_equal(a.text[i], b.text[i]);
        differ += strcmp(a.text[i], c.text[i]) != 0;
    }
    assert_true(differ >= N / 2);
    /* every family of the job gets explored */
    for (int m = 0; m < 4; m++) {
        int seen = 0;
        for (int i = 4; i < N; i++) seen += strncmp(a.text[i], MODELS[m], strlen(MODELS[m])) == 0;
        assert_true(seen > 0);
    }
    run_free(&a, N);
    run_free(&b, N);
    run_free(&c, N);
}

static void test_state_roundtrip(void **state)
{
    (void)state;
    struct strategy_job job = {MODELS, 4, SPACE_CLASSIFICATION, 7, 1};
    struct run a = {0}, b = {0};
    propose_n(&job, N, 0, &a);
    propose_n(&job, N, 1, &b);
    for (int i = 0; i < N; i++) assert_string_equal(a.text[i], b.text[i]);
    run_free(&a, N);
    run_free(&b, N);

    char err[256];
    struct strategy s;
    cJSON *st = cJSON_Parse("{\"strategy\":\"random\",\"proposed\":3,\"observed\":2}");
    assert_int_equal(strategy_new(&s, &strategy_random, &job, st, err, sizeof err), 0);
    cJSON *saved = strategy_save(&s);
    assert_true(cJSON_Compare(st, saved, 1));
    cJSON_Delete(saved);
    cJSON_Delete(st);
    strategy_free(&s);
}

static void test_errors(void **state)
{
    (void)state;
    char err[256] = "";
    struct strategy s = {0};
    static const char *const only_nb[] = {"nb", "svm"};
    struct strategy_job job = {only_nb, 2, SPACE_REGRESSION, 1, 0};
    assert_int_equal(strategy_new(&s, &strategy_random, &job, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "no model family"));
    strategy_free(&s);
    assert_ptr_equal(strategy_find("random"), &strategy_random);
    assert_null(strategy_find("tpe"));
    assert_null(strategy_find(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_good_first),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

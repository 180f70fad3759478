/* test_nas.c - the strategies of image jobs (scheduler/nas.c): baselines
 * first, regularized evolution's random start then mutated tournament
 * winners, DARTS' search -> retrain protocol, and proposals that depend
 * only on the seed and the history. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/genotype.h"
#include "scheduler/space.h"
#include "scheduler/strategy.h"

#define MAX_H 64

struct hist {
    struct strategy_trial t[MAX_H];
    cJSON *params[MAX_H], *details[MAX_H];
    char family[MAX_H][16];
    size_t n;
};

static void hist_free(struct hist *h)
{
    for (size_t i = 0; i < h->n; i++) {
        cJSON_Delete(h->params[i]);
        cJSON_Delete(h->details[i]);
    }
}

static const char OPTIONS[] =
    "{\"image\": {\"height\": 8, \"width\": 8, \"channels\": 1},"
    " \"nas\": {\"cells\": 3, \"channels\": 8, \"epochs\": 4, \"search_epochs\": 2,"
    " \"batch_size\": 32, \"learning_rate\": 0.05, \"population\": 4, \"sample\": 2,"
    " \"augment\": false}}";

/* Propose one trial and append it (running) to h. */
static const char *propose(const struct strategy_ops *ops, const char *const *models, size_t nm,
                           uint64_t seed, struct hist *h)
{
    cJSON *opts = cJSON_Parse(OPTIONS);
    struct strategy_job job = {models, nm, SPACE_CLASSIFICATION, seed, 1, 100, opts};
    struct strategy s;
    char err[256];
    const char *family;
    cJSON *params;
    assert_int_equal(strategy_new(&s, ops, &job, NULL, err, sizeof err), 0);
    assert_int_equal(strategy_next(&s, h->t, h->n, &family, &params, err, sizeof err), 0);
    strategy_free(&s);
    cJSON_Delete(opts);
    size_t i = h->n++;
    snprintf(h->family[i], sizeof h->family[i], "%s", family);
    h->params[i] = params;
    h->t[i] = (struct strategy_trial){(int)i + 1, h->family[i], params, ST_RUNNING, 0, NULL};
    return h->family[i];
}

static void finish(struct hist *h, size_t i, double score)
{
    h->t[i].state = ST_SUCCEEDED;
    h->t[i].score = score;
}

static int genotype_of(const cJSON *params, struct genotype *g)
{
    char err[160];
    return genotype_from_json(cJSON_GetObjectItem(params, "genotype"), g, err, sizeof err);
}

static int edges_differing(const struct genotype *a, const struct genotype *b)
{
    int d = 0;
    for (int i = 0; i < GENOTYPE_EDGES; i++) {
        d += memcmp(&a->normal[i], &b->normal[i], sizeof a->normal[i]) != 0;
        d += memcmp(&a->reduce[i], &b->reduce[i], sizeof a->reduce[i]) != 0;
    }
    return d;
}

static void evolution(void **state)
{
    const char *models[] = {"cnn", "knn", "mlp"};
    struct hist h = {0};
    /* the baselines first, with their defaults */
    assert_string_equal(propose(&strategy_evolution, models, 3, 5, &h), "knn");
    assert_string_equal(propose(&strategy_evolution, models, 3, 5, &h), "mlp");
    finish(&h, 0, 0.9);
    finish(&h, 1, 0.8);
    /* then P = 4 random genotypes, carrying the job's training settings */
    for (int k = 0; k < 4; k++) {
        assert_string_equal(propose(&strategy_evolution, models, 3, 5, &h), "cnn");
        const cJSON *p = h.params[h.n - 1];
        struct genotype g;
        assert_int_equal(genotype_of(p, &g), 0);
        assert_int_equal(cJSON_GetObjectItem(p, "cells")->valueint, 3);
        assert_int_equal(cJSON_GetObjectItem(p, "epochs")->valueint, 4);
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(p, "augment")));
        finish(&h, h.n - 1, 0.5 + 0.1 * k);
    }
    /* children: one edge away from a member of the population */
    for (int k = 0; k < 20; k++) {
        assert_string_equal(propose(&strategy_evolution, models, 3, 5, &h), "cnn");
        struct genotype child;
        assert_int_equal(genotype_of(h.params[h.n - 1], &child), 0);
        int from_member = 0;
        for (size_t i = h.n - 1; i-- > 2;) {
            struct genotype m;
            if (genotype_of(h.params[i], &m) == 0 && edges_differing(&m, &child) == 1)
                from_member = 1;
        }
        assert_true(from_member);
        finish(&h, h.n - 1, 0.5 + 0.02 * (k % 7));
    }
    /* the same history and seed propose the same child; another seed need not */
    struct hist a = h, b = h;
    a.n = b.n = h.n;
    const char *fa = propose(&strategy_evolution, models, 3, 5, &a);
    const char *fb = propose(&strategy_evolution, models, 3, 5, &b);
    assert_string_equal(fa, fb);
    assert_true(cJSON_Compare(a.params[a.n - 1], b.params[b.n - 1], 1));
    cJSON_Delete(a.params[a.n - 1]);
    cJSON_Delete(b.params[b.n - 1]);
    hist_free(&h);
}

static void random_genotypes(void **state)
{
    const char *models[] = {"cnn"};
    struct hist h = {0};
    for (int k = 0; k < 8; k++) {
        assert_string_equal(propose(&strategy_nas_random, models, 1, 1, &h), "cnn");
        finish(&h, h.n - 1, 0.9);
    }
    /* random search never converges on one architecture */
    int distinct = 0;
    for (size_t i = 0; i < h.n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= cJSON_Compare(cJSON_GetObjectItem(h.params[i], "genotype"),
                                  cJSON_GetObjectItem(h.params[j], "genotype"), 1);
        distinct += !seen;
    }
    assert_int_equal(distinct, 8);
    hist_free(&h);
}

static void darts_search_then_retrain(void **state)
{
    const char *models[] = {"cnn", "knn"};
    struct hist h = {0};
    assert_string_equal(propose(&strategy_darts, models, 2, 9, &h), "darts");
    assert_int_equal(cJSON_GetObjectItem(h.params[0], "epochs")->valueint, 2);
    assert_null(cJSON_GetObjectItem(h.params[0], "genotype"));
    /* while it searches: the baseline, then another search */
    assert_string_equal(propose(&strategy_darts, models, 2, 9, &h), "knn");
    assert_string_equal(propose(&strategy_darts, models, 2, 9, &h), "darts");
    /* the first search succeeds with a genotype: it is retrained */
    struct genotype_rng r = {11};
    struct genotype g;
    genotype_random(&g, &r);
    finish(&h, 0, 0.7);
    h.details[0] = cJSON_CreateObject();
    cJSON_AddItemToObject(h.details[0], "genotype", genotype_to_json(&g));
    h.t[0].details = h.details[0];
    assert_string_equal(propose(&strategy_darts, models, 2, 9, &h), "cnn");
    struct genotype got;
    assert_int_equal(genotype_of(h.params[h.n - 1], &got), 0);
    assert_memory_equal(&got, &g, sizeof g);
    assert_int_equal(cJSON_GetObjectItem(h.params[h.n - 1], "from_search")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(h.params[h.n - 1], "epochs")->valueint, 4);
    /* retrained once only */
    assert_string_equal(propose(&strategy_darts, models, 2, 9, &h), "darts");
    hist_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(evolution),
        cmocka_unit_test(random_genotypes),
        cmocka_unit_test(darts_search_then_retrain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

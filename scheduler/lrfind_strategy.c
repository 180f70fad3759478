/*
 * lrfind_strategy.c - the "lr_find" strategy (strategy.h): a learning-rate
 * finder job (POST /v1/lr-find, server/lrfind.h) is a job with this
 * strategy, max_trials 1, one family in models and, in jobs.options,
 *   {"lr_find": {"start", "end", "iterations", "suggestion"},
 *    "model_params": {...}}
 * as the server validated them. It proposes exactly one trial: that family
 * with model_params plus an "lr_find" member holding the settings, which
 * build_spec (sched.c) lifts to the spec's top level, where podium-train
 * reads it (trainers/lrtest.h). Should the job be given more trials (a
 * budget raised by hand), each is the same test again.
 *
 * State: {"strategy": "lr_find", "proposed": k, "observed": n}.
 * Loop thread, inside the claim transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/strategy.h"

/* The families with a learning-rate finder (trainers/family.h lr_find). */
static const char *const lrfind_families[] = {"mlp", "cnn", NULL};

struct lrfind_ctx {
    const char *family;      /* static */
    cJSON *params;           /* model_params + lr_find */
    int proposed, observed;
};

static void lrfind_destroy(void *ctx)
{
    struct lrfind_ctx *c = ctx;
    if (c == NULL) return;
    cJSON_Delete(c->params);
    free(c);
}

static int lrfind_create(const struct strategy_job *job, const cJSON *state, void **out,
                         char *err, size_t errlen)
{
    *out = NULL;
    const char *family = NULL;
    for (size_t i = 0; job->n_models >= 1 && lrfind_families[i]; i++)
        if (job->models[0] && strcmp(job->models[0], lrfind_families[i]) == 0)
            family = lrfind_families[i];
    if (family == NULL || job->n_models != 1) {
        snprintf(err, errlen, "an lr_find job takes one model family, mlp or cnn");
        return -1;
    }
    const cJSON *settings = cJSON_GetObjectItemCaseSensitive(job->options, "lr_find");
    const cJSON *mp = cJSON_GetObjectItemCaseSensitive(job->options, "model_params");
    if (!cJSON_IsObject(settings) || (mp != NULL && !cJSON_IsNull(mp) && !cJSON_IsObject(mp))) {
        snprintf(err, errlen, "an lr_find job needs options {\"lr_find\": {...}, \"model_params\": {...}}");
        return -1;
    }
    struct lrfind_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) goto nomem;
    c->family = family;
    c->params = cJSON_IsObject(mp) ? cJSON_Duplicate(mp, 1) : cJSON_CreateObject();
    if (c->params == NULL) goto nomem;
    cJSON_DeleteItemFromObjectCaseSensitive(c->params, "lr_find");
    cJSON *s = cJSON_Duplicate(settings, 1);
    if (s == NULL || !cJSON_AddItemToObject(c->params, "lr_find", s)) {
        cJSON_Delete(s);
        goto nomem;
    }
    c->proposed = strategy_state_count(state, "proposed");
    c->observed = strategy_state_count(state, "observed");
    *out = c;
    return 0;
nomem:
    lrfind_destroy(c);
    snprintf(err, errlen, "out of memory");
    return -1;
}

static void lrfind_observe(void *ctx, const struct strategy_trial *t)
{
    (void)t;
    ((struct lrfind_ctx *)ctx)->observed++;
}

static int lrfind_propose(void *ctx, const struct strategy_trial *history, size_t n,
                          const char **family, cJSON **params, char *err, size_t errlen)
{
    struct lrfind_ctx *c = ctx;
    (void)history;
    if ((*params = cJSON_Duplicate(c->params, 1)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *family = c->family;
    c->proposed = (int)n + 1;
    return 0;
}

static cJSON *lrfind_save(void *ctx)
{
    struct lrfind_ctx *c = ctx;
    cJSON *s = cJSON_CreateObject();
    if (s == NULL) return NULL;
    cJSON_AddStringToObject(s, "strategy", "lr_find");
    cJSON_AddNumberToObject(s, "proposed", c->proposed);
    cJSON_AddNumberToObject(s, "observed", c->observed);
    return s;
}

const struct strategy_ops strategy_lr_find = {
    "lr_find", lrfind_create, lrfind_observe, lrfind_propose, lrfind_save, lrfind_destroy,
};

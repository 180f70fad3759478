/*
 * strategy.c - the strategy table (strategy.h) and random search.
 *
 * Random search: trial k (k = the number of trials proposed so far + 1)
 * is, for k <= the number of usable families, family k's defaults (the
 * known-good start); after that a family drawn uniformly from job.models
 * and params drawn from its space, with a generator seeded from
 * (job.seed, k) alone, so the sequence is reproducible whatever order
 * results arrive in and whichever scheduler proposes. State:
 * {"strategy": "random", "proposed": k, "observed": n}: proposals made and
 * finished trials observed (in seq order). Random search needs neither;
 * they are the bookkeeping TPE will build on.
 */
#include "scheduler/strategy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/space.h"

struct random_ctx {
    struct strategy_job job;
    const struct space_family *fams[16];
    size_t n_fams;
    int proposed;
    int observed;
};

static int random_create(const struct strategy_job *job, const cJSON *state, void **out,
                         char *err, size_t errlen)
{
    struct random_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->job = *job;
    for (size_t i = 0; i < job->n_models && c->n_fams < 16; i++) {
        const struct space_family *f = space_family_find(job->models[i]);
        if (f == NULL || !space_family_supports(f, job->task)) continue;
        int dup = 0;
        for (size_t j = 0; j < c->n_fams; j++) dup |= c->fams[j] == f;
        if (!dup) c->fams[c->n_fams++] = f;
    }
    if (c->n_fams == 0) {
        snprintf(err, errlen, "no model family of the job fits its task");
        free(c);
        return -1;
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(state, "proposed");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(state, "observed");
    if (cJSON_IsNumber(p) && p->valuedouble >= 0 && p->valuedouble < 1e9) c->proposed = p->valueint;
    if (cJSON_IsNumber(o) && o->valuedouble >= 0 && o->valuedouble < 1e9) c->observed = o->valueint;
    *out = c;
    return 0;
}

static void random_observe(void *ctx, const struct strategy_trial *t)
{
    (void)t;   /* random search learns nothing; TPE will keep (params, score) */
    ((struct random_ctx *)ctx)->observed++;
}

static int random_propose(void *ctx, const struct strategy_trial *history, size_t n,
                          const char **family, cJSON **params, char *err, size_t errlen)
{
    struct random_ctx *c = ctx;
    (void)history;
    /* The history is authoritative (the state's count is informational): a
     * state saved by a transaction that rolled back, or a proposal lost
     * with the connection, must not skip a configuration. */
    int k = (int)n + 1;
    const struct space_family *f;
    if ((size_t)k <= c->n_fams) {
        f = c->fams[k - 1];
        *params = space_default_params(f, c->job.task);
    } else {
        struct space_rng rng;
        space_rng_seed(&rng, c->job.seed * 0x100000001b3ULL + (uint64_t)k);
        f = c->fams[space_rng_next(&rng) % c->n_fams];
        *params = space_sample(f, c->job.task, &rng);
    }
    if (*params == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *family = f->name;
    c->proposed = k;
    return 0;
}

static cJSON *random_save(void *ctx)
{
    struct random_ctx *c = ctx;
    cJSON *s = cJSON_CreateObject();
    if (s == NULL) return NULL;
    cJSON_AddStringToObject(s, "strategy", "random");
    cJSON_AddNumberToObject(s, "proposed", c->proposed);
    cJSON_AddNumberToObject(s, "observed", c->observed);
    return s;
}

static void random_destroy(void *ctx) { free(ctx); }

const struct strategy_ops strategy_random = {
    "random", random_create, random_observe, random_propose, random_save, random_destroy,
};

const struct strategy_ops *strategy_find(const char *name)
{
    /* TODO(tpe, asha): register them here. */
    if (name != NULL && strcmp(name, "random") == 0) return &strategy_random;
    return NULL;
}

int strategy_new(struct strategy *s, const struct strategy_ops *ops,
                 const struct strategy_job *job, const cJSON *state, char *err, size_t errlen)
{
    s->ops = ops;
    s->ctx = NULL;
    return ops->create(job, state, &s->ctx, err, errlen);
}

int strategy_next(struct strategy *s, const struct strategy_trial *history, size_t n,
                  const char **family, cJSON **params, char *err, size_t errlen)
{
    /* Finished trials in seq order; the state counts how many were seen. */
    cJSON *saved = s->ops->save(s->ctx);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(saved, "observed");
    int seen = cJSON_IsNumber(o) ? o->valueint : 0;
    cJSON_Delete(saved);
    int finished = 0;
    for (size_t i = 0; i < n; i++) {
        if (history[i].state == ST_RUNNING) continue;
        if (finished++ >= seen) s->ops->observe(s->ctx, &history[i]);
    }
    return s->ops->propose(s->ctx, history, n, family, params, err, errlen);
}

cJSON *strategy_save(struct strategy *s) { return s->ops->save(s->ctx); }

void strategy_free(struct strategy *s)
{
    if (s != NULL && s->ops != NULL && s->ctx != NULL) s->ops->destroy(s->ctx);
    if (s != NULL) s->ctx = NULL;
}

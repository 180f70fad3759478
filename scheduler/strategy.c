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
 * finished trials observed (in seq order). Random search needs neither.
 *
 * The helpers at the top (families, generators, ranking) are shared with
 * tpe.c and asha.c.
 */
#include "scheduler/strategy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/space.h"

size_t strategy_families(const struct strategy_job *job, const struct space_family **out,
                         size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < job->n_models && n < max; i++) {
        const struct space_family *f = space_family_find(job->models[i]);
        if (f == NULL || !space_family_supports(f, job->task)) continue;
        int dup = 0;
        for (size_t j = 0; j < n; j++) dup |= out[j] == f;
        if (!dup) out[n++] = f;
    }
    return n;
}

void strategy_rng(struct space_rng *rng, uint64_t seed, int k, uint64_t salt)
{
    space_rng_seed(rng, (seed * 0x100000001b3ULL + (uint64_t)k) ^ salt);
}

int strategy_state_count(const cJSON *state, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(state, name);
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9) return v->valueint;
    return 0;
}

int strategy_common_init(struct strategy_common *c, const struct strategy_job *job,
                         const cJSON *state, char *err, size_t errlen)
{
    c->job = *job;
    c->n_fams = strategy_families(job, c->fams, STRATEGY_MAX_FAMILIES);
    if (c->n_fams == 0) {
        snprintf(err, errlen, "no model family of the job fits its task");
        return -1;
    }
    c->proposed = strategy_state_count(state, "proposed");
    c->observed = strategy_state_count(state, "observed");
    return 0;
}

int strategy_better(const struct strategy_job *job, const struct strategy_trial *a,
                    const struct strategy_trial *b)
{
    if (a->score != b->score)
        return job->higher_is_better ? a->score > b->score : a->score < b->score;
    return a->seq < b->seq;
}

struct random_ctx {
    struct strategy_common com;
};

static int random_create(const struct strategy_job *job, const cJSON *state, void **out,
                         char *err, size_t errlen)
{
    struct random_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (strategy_common_init(&c->com, job, state, err, errlen) < 0) {
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

static void random_observe(void *ctx, const struct strategy_trial *t)
{
    (void)t;   /* random search learns nothing; TPE will keep (params, score) */
    ((struct random_ctx *)ctx)->com.observed++;
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
    if ((size_t)k <= c->com.n_fams) {
        f = c->com.fams[k - 1];
        *params = space_default_params(f, c->com.job.task);
    } else {
        struct space_rng rng;
        strategy_rng(&rng, c->com.job.seed, k, 0);
        f = c->com.fams[space_rng_next(&rng) % c->com.n_fams];
        *params = space_sample(f, c->com.job.task, &rng);
    }
    if (*params == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *family = f->name;
    c->com.proposed = k;
    return 0;
}

static cJSON *random_save(void *ctx)
{
    struct random_ctx *c = ctx;
    cJSON *s = cJSON_CreateObject();
    if (s == NULL) return NULL;
    cJSON_AddStringToObject(s, "strategy", "random");
    cJSON_AddNumberToObject(s, "proposed", c->com.proposed);
    cJSON_AddNumberToObject(s, "observed", c->com.observed);
    return s;
}

static void random_destroy(void *ctx) { free(ctx); }

const struct strategy_ops strategy_random = {
    "random", random_create, random_observe, random_propose, random_save, random_destroy,
};

const struct strategy_ops *strategy_find(const char *name)
{
    static const struct strategy_ops *const all[] = {&strategy_random, &strategy_tpe,
                                                     &strategy_asha, &strategy_evolution,
                                                     &strategy_darts, &strategy_lr_find};
    for (size_t i = 0; name != NULL && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, all[i]->name) == 0) return all[i];
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

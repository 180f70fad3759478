/*
 * nas.c - the strategies of image jobs (server/imagejobs.h): neural
 * architecture search over DARTS cell genotypes (lib/genotype.h), beside
 * the job's classical baselines (knn, mlp, linear on pixels).
 *
 * All three first propose each baseline family of job.models once, with
 * its known-good defaults, then:
 *
 *   evolution   regularized evolution (Real et al., AAAI 2019): the first
 *               P "cnn" trials are random genotypes; after that each child
 *               mutates one edge of the best of S trials sampled from the
 *               population, the P most recent finished "cnn" trials (the
 *               oldest leave it as new ones finish: "aging").
 *   random      every "cnn" trial a random genotype (the baseline NAS
 *               papers compare against, at the same budget).
 *   darts       a "darts" trial (first-order DARTS: the supernet trains its
 *               weights on half of the training split and its
 *               architecture on the other half; its result's details carry
 *               the derived genotype), before the baselines; every
 *               succeeded "darts" trial's genotype is then retrained from
 *               scratch as a "cnn" trial; with nothing else to do, another
 *               search with the next seed.
 *
 * A "cnn" trial's params: {"genotype", "cells", "channels", "epochs",
 * "batch_size", "learning_rate", "augment", "seed"} and the training
 * extras "drop_path", "cutout", "auxiliary_weight" that job.options.nas
 * holds (the server fills in their defaults; a job stored before they
 * existed has none, and its trials then train with the family's
 * defaults); a "darts" trial's:
 * {"cells", "channels", "epochs" (the search's), "batch_size",
 * "learning_rate", "seed"} (P, S and the rest from job.options.nas).
 *
 * Proposals depend only on job.seed and the history (each draw is seeded
 * from the seed and the trial's number), so a restarted scheduler goes on
 * with the same search; the saved state is informational.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/genotype.h"
#include "scheduler/space.h"
#include "scheduler/strategy.h"

enum nas_mode { NAS_RANDOM, NAS_EVOLUTION, NAS_DARTS };

struct nas_ctx {
    struct strategy_job job;
    enum nas_mode mode;
    const struct space_family *baselines[STRATEGY_MAX_FAMILIES];
    size_t n_baselines;
    int cnn;                 /* job.models has "cnn" */
    /* options.nas */
    int cells, channels, epochs, search_epochs, batch_size, population, sample, augment;
    cJSON *learning_rate;    /* a number or "auto" */
    double extras[3];        /* options.nas' cnn_extras[i], when has_extra[i] */
    int has_extra[3];
};

/* The training extras a cnn trial takes from options.nas as they are. */
static const char *const cnn_extras[] = {"drop_path", "cutout", "auxiliary_weight"};

static int opt_int(const cJSON *nas, const char *name, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(nas, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble < 1e6 ? v->valueint : dflt;
}

static int nas_create(enum nas_mode mode, const struct strategy_job *job, void **out, char *err,
                      size_t errlen)
{
    struct nas_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->job = *job;
    c->mode = mode;
    c->n_baselines = strategy_families(job, c->baselines, STRATEGY_MAX_FAMILIES);
    for (size_t i = 0; i < job->n_models; i++) c->cnn |= strcmp(job->models[i], "cnn") == 0;
    const cJSON *nas = cJSON_GetObjectItemCaseSensitive(job->options, "nas");
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(nas, cnn_extras[i]);
        c->has_extra[i] = cJSON_IsNumber(v);
        c->extras[i] = c->has_extra[i] ? v->valuedouble : 0;
    }
    c->cells = opt_int(nas, "cells", 5);
    c->channels = opt_int(nas, "channels", 16);
    c->epochs = opt_int(nas, "epochs", 10);
    c->search_epochs = opt_int(nas, "search_epochs", 5);
    c->batch_size = opt_int(nas, "batch_size", 64);
    c->population = opt_int(nas, "population", 10);
    c->sample = opt_int(nas, "sample", 3);
    if (c->sample > c->population) c->sample = c->population;
    c->augment = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(nas, "augment"));
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(nas, "learning_rate");
    c->learning_rate = lr ? cJSON_Duplicate(lr, 0) : cJSON_CreateNumber(0.025);
    if (c->learning_rate == NULL) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!c->cnn && c->n_baselines == 0) {
        cJSON_Delete(c->learning_rate);
        free(c);
        snprintf(err, errlen, "no model family of the job fits image data");
        return -1;
    }
    *out = c;
    return 0;
}

static int random_create(const struct strategy_job *job, const cJSON *state, void **out,
                         char *err, size_t errlen)
{
    return nas_create(NAS_RANDOM, job, out, err, errlen);
}

static int evolution_create(const struct strategy_job *job, const cJSON *state, void **out,
                            char *err, size_t errlen)
{
    return nas_create(NAS_EVOLUTION, job, out, err, errlen);
}

static int darts_create(const struct strategy_job *job, const cJSON *state, void **out,
                        char *err, size_t errlen)
{
    return nas_create(NAS_DARTS, job, out, err, errlen);
}

static void nas_observe(void *ctx, const struct strategy_trial *t) { (void)ctx, (void)t; }

static cJSON *nas_save(void *ctx)
{
    const struct nas_ctx *c = ctx;
    static const char *const names[] = {"random", "evolution", "darts"};
    cJSON *s = cJSON_CreateObject();
    if (s) cJSON_AddStringToObject(s, "strategy", names[c->mode]);
    return s;
}

static void nas_destroy(void *ctx)
{
    struct nas_ctx *c = ctx;
    if (c == NULL) return;
    cJSON_Delete(c->learning_rate);
    free(c);
}

/* The training settings every cnn/darts trial carries. */
static cJSON *train_params(const struct nas_ctx *c, int epochs, uint64_t seed)
{
    cJSON *p = cJSON_CreateObject();
    if (p == NULL) return NULL;
    cJSON_AddNumberToObject(p, "cells", c->cells);
    cJSON_AddNumberToObject(p, "channels", c->channels);
    cJSON_AddNumberToObject(p, "epochs", epochs);
    cJSON_AddNumberToObject(p, "batch_size", c->batch_size);
    cJSON_AddItemToObject(p, "learning_rate", cJSON_Duplicate(c->learning_rate, 0));
    cJSON_AddNumberToObject(p, "seed", (double)(seed % 2147483647u));
    return p;
}

static cJSON *cnn_params(const struct nas_ctx *c, const struct genotype *g, uint64_t seed)
{
    cJSON *p = train_params(c, c->epochs, seed), *gj = genotype_to_json(g);
    if (p == NULL || gj == NULL) {
        cJSON_Delete(p);
        cJSON_Delete(gj);
        return NULL;
    }
    cJSON_AddBoolToObject(p, "augment", c->augment);
    for (int i = 0; i < 3; i++)
        if (c->has_extra[i]) cJSON_AddNumberToObject(p, cnn_extras[i], c->extras[i]);
    cJSON_AddItemToObject(p, "genotype", gj);
    return p;
}

static int has_family(const struct strategy_trial *h, size_t n, const char *family)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].family, family) == 0) return 1;
    return 0;
}

/* The next baseline family not tried yet, or NULL. */
static const struct space_family *next_baseline(const struct nas_ctx *c,
                                                const struct strategy_trial *h, size_t n)
{
    for (size_t i = 0; i < c->n_baselines; i++)
        if (!has_family(h, n, c->baselines[i]->name)) return c->baselines[i];
    return NULL;
}

/* Regularized evolution's child, or a random genotype while the
 * population is not full (or has no success to learn from). */
static void evolve(const struct nas_ctx *c, const struct strategy_trial *h, size_t n,
                   struct genotype_rng *rng, struct genotype *out)
{
    size_t proposed = 0;
    for (size_t i = 0; i < n; i++) proposed += strcmp(h[i].family, "cnn") == 0;
    /* the population: the P most recent succeeded cnn trials with a genotype */
    const struct strategy_trial *pop[1000];
    struct genotype gen[1000];
    int np = 0;
    for (size_t i = n; i-- > 0 && np < c->population && np < 1000;) {
        if (strcmp(h[i].family, "cnn") != 0 || h[i].state != ST_SUCCEEDED) continue;
        char err[160];
        const cJSON *gj = cJSON_GetObjectItemCaseSensitive(h[i].params, "genotype");
        if (genotype_from_json(gj, &gen[np], err, sizeof err) < 0) continue;
        pop[np++] = &h[i];
    }
    if (c->mode == NAS_RANDOM || proposed < (size_t)c->population || np == 0) {
        genotype_random(out, rng);
        return;
    }
    /* tournament: the best of S distinct members drawn uniformly */
    int best = -1, s = c->sample < np ? c->sample : np;
    int picked[1000] = {0};
    for (int k = 0; k < s; k++) {
        int i;
        do i = (int)(genotype_rng_next(rng) % (uint64_t)np);
        while (picked[i]);
        picked[i] = 1;
        if (best < 0 || strategy_better(&c->job, pop[i], pop[best])) best = i;
    }
    *out = gen[best];
    genotype_mutate(out, rng);
}

/* darts: a succeeded search whose genotype has no retrain yet (its seq
 * is recorded in the retrain's params as "from_search"), or -1. */
static int unretrained_search(const struct strategy_trial *h, size_t n, struct genotype *g)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(h[i].family, "darts") != 0 || h[i].state != ST_SUCCEEDED) continue;
        int done = 0;
        for (size_t j = 0; j < n && !done; j++) {
            const cJSON *from = cJSON_GetObjectItemCaseSensitive(h[j].params, "from_search");
            done = strcmp(h[j].family, "cnn") == 0 && cJSON_IsNumber(from) &&
                   from->valueint == h[i].seq;
        }
        char err[160];
        const cJSON *gj = cJSON_GetObjectItemCaseSensitive(h[i].details, "genotype");
        if (!done && genotype_from_json(gj, g, err, sizeof err) == 0) return h[i].seq;
    }
    return -1;
}

static int nas_propose(void *ctx, const struct strategy_trial *h, size_t n,
                       const char **family, cJSON **params, char *err, size_t errlen)
{
    struct nas_ctx *c = ctx;
    struct genotype_rng rng = {c->job.seed * 0x100000001b3ULL + (uint64_t)n + 1};
    uint64_t trial_seed = genotype_rng_next(&rng);
    *params = NULL;

    if (c->mode == NAS_DARTS && c->cnn) {
        /* the first search before anything else: it is the long one */
        int searches = 0;
        for (size_t i = 0; i < n; i++) searches += strcmp(h[i].family, "darts") == 0;
        struct genotype g;
        int from = unretrained_search(h, n, &g);
        if (searches > 0 && from >= 0) {
            *family = "cnn";
            if ((*params = cnn_params(c, &g, trial_seed)) != NULL)
                cJSON_AddNumberToObject(*params, "from_search", from);
        } else if (searches > 0 && next_baseline(c, h, n)) {
            const struct space_family *f = next_baseline(c, h, n);
            *family = f->name;
            *params = space_default_params(f, c->job.task);
        } else {
            *family = "darts";
            *params = train_params(c, c->search_epochs, trial_seed);
        }
    } else if (next_baseline(c, h, n)) {
        const struct space_family *f = next_baseline(c, h, n);
        *family = f->name;
        *params = space_default_params(f, c->job.task);
    } else if (c->cnn) {
        struct genotype g;
        evolve(c, h, n, &rng, &g);
        *family = "cnn";
        *params = cnn_params(c, &g, trial_seed);
    } else {
        /* baselines only, each tried: their search spaces, at random */
        const struct space_family *f = c->baselines[n % c->n_baselines];
        struct space_rng sr;
        strategy_rng(&sr, c->job.seed, (int)n + 1, 0x6e6173);
        *family = f->name;
        *params = space_sample(f, c->job.task, &sr);
    }
    if (*params == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

const struct strategy_ops strategy_nas_random = {
    "random", random_create, nas_observe, nas_propose, nas_save, nas_destroy,
};
const struct strategy_ops strategy_evolution = {
    "evolution", evolution_create, nas_observe, nas_propose, nas_save, nas_destroy,
};
const struct strategy_ops strategy_darts = {
    "darts", darts_create, nas_observe, nas_propose, nas_save, nas_destroy,
};

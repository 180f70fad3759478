/*
 * strategy.h - search strategies: what to try next in a job, from the
 * history of its trials.
 *
 * A strategy is a table of functions over an opaque context (as a model
 * family is in trainers/family.h): random search (strategy.c), TPE
 * (tpe.c) and asynchronous successive halving (asha.c). The scheduler calls, inside the transaction that holds the job's
 * row locked:
 *   strategy_new(job, saved state)        restore from jobs.strategy_state
 *   strategy_observe(s, trial)            once per finished trial it has not
 *                                         seen yet (the state remembers which)
 *   strategy_propose(s, history)          the next (family, params)
 *   strategy_save(s)                      back into jobs.strategy_state
 * so a restarted or different scheduler continues the same search. A
 * proposal must depend only on job.seed and the history (and the state,
 * which is itself a function of those): never on time or on the process.
 *
 * The space is mixed and conditional (family -> that family's params, see
 * space.h): a strategy picks a family among job.models first, then params.
 * Every strategy starts with the known-good configurations, one per family
 * in job.models order, before it explores.
 *
 * Single-threaded; the caller owns everything it passes in.
 */
#ifndef PODIUM_SCHEDULER_STRATEGY_H
#define PODIUM_SCHEDULER_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum strategy_trial_state { ST_RUNNING = 0, ST_SUCCEEDED, ST_FAILED, ST_CANCELLED };

struct strategy_job {
    const char *const *models;   /* family names, in the job's order */
    size_t n_models;
    int task;                    /* SPACE_CLASSIFICATION / SPACE_REGRESSION */
    uint64_t seed;
    int higher_is_better;
    int max_trials;              /* the budget; 0 when unknown */
    const cJSON *options;        /* the job's options (server/imagejobs.h); may be NULL */
};

struct strategy_trial {
    int seq;                     /* 1, 2, ... */
    const char *family;
    const cJSON *params;
    int state;                   /* enum strategy_trial_state */
    double score;                /* valid when state == ST_SUCCEEDED */
    const cJSON *details;        /* what its result reported beyond metrics; may be NULL */
};

struct strategy_ops {
    const char *name;
    /* Restore (state may be NULL or {} for a new job). 0 or -1 with err. */
    int (*create)(const struct strategy_job *job, const cJSON *state, void **ctx,
                  char *err, size_t errlen);
    void (*observe)(void *ctx, const struct strategy_trial *t);
    /* The next trial: *family (static string) and *params (a new object).
     * 0, or -1 with err (e.g. no family of job.models fits the task). */
    int (*propose)(void *ctx, const struct strategy_trial *history, size_t n,
                   const char **family, cJSON **params, char *err, size_t errlen);
    cJSON *(*save)(void *ctx);
    void (*destroy)(void *ctx);
};

extern const struct strategy_ops strategy_random;
extern const struct strategy_ops strategy_tpe;
extern const struct strategy_ops strategy_asha;
/* Image jobs (nas.c): regularized evolution, DARTS, and random genotypes
 * (what "random" means for a job with options.nas). */
extern const struct strategy_ops strategy_evolution;
extern const struct strategy_ops strategy_darts;
extern const struct strategy_ops strategy_nas_random;
/* The learning-rate finder's one trial (lrfind_strategy.c). */
extern const struct strategy_ops strategy_lr_find;

/* The strategy called name ("random", "tpe", "asha"); NULL if not built in. */
const struct strategy_ops *strategy_find(const char *name);

struct strategy {
    const struct strategy_ops *ops;
    void *ctx;
};

/* Restore a strategy; 0 or -1 with err. strategy_free(NULL-ctx) is fine. */
int strategy_new(struct strategy *s, const struct strategy_ops *ops,
                 const struct strategy_job *job, const cJSON *state, char *err, size_t errlen);
/* Observe every finished trial of history[] that the state has not seen,
 * then propose. */
int strategy_next(struct strategy *s, const struct strategy_trial *history, size_t n,
                  const char **family, cJSON **params, char *err, size_t errlen);
cJSON *strategy_save(struct strategy *s);
void strategy_free(struct strategy *s);

/* For the strategies' own use (strategy.c):
 * The job's usable families (known, fitting the task, no duplicates) in
 * job.models order, at most max; how many. */
struct space_family;
struct space_rng;
size_t strategy_families(const struct strategy_job *job, const struct space_family **out,
                         size_t max);
/* The generator of the k-th proposal of a job, salted per strategy (salt 0
 * is random search's). */
void strategy_rng(struct space_rng *rng, uint64_t seed, int k, uint64_t salt);
/* A non-negative count from a saved state's member, 0 if absent or bad. */
int strategy_state_count(const cJSON *state, const char *name);
/* Is trial a better than b for the job (scores of succeeded trials; ties
 * broken by the lower seq)? */
int strategy_better(const struct strategy_job *job, const struct strategy_trial *a,
                    const struct strategy_trial *b);
#define STRATEGY_MAX_FAMILIES 16

/* What random search, TPE and ASHA each keep: the job, its usable
 * families, and the counts their saved state carries. */
struct strategy_common {
    struct strategy_job job;
    const struct space_family *fams[STRATEGY_MAX_FAMILIES];
    size_t n_fams;
    int proposed;            /* proposals made */
    int observed;            /* finished trials observed, in seq order */
};
/* Fill it from the job and a saved state ("proposed", "observed"). 0, or
 * -1 with err when no family of the job fits its task. */
int strategy_common_init(struct strategy_common *c, const struct strategy_job *job,
                         const cJSON *state, char *err, size_t errlen);

#endif

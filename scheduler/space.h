/*
 * space.h - the default search space of every model family podium-train
 * knows (linear, rf, extratrees, gbm, knn, nb, mlp), as data: a family is
 * a list of parameters, each an integer or a float range (optionally
 * log-scaled) or a categorical choice of JSON literals, optionally
 * conditional on another parameter's value (linear's l1_ratio only with
 * penalty "elasticnet") and optionally limited to one task. Names and
 * ranges are the ones trainers/<family>.h accepts (tests/unit/test_space.c
 * holds every sample against the family's params_parse).
 *
 * Pure functions, no state: any thread. The sampler draws from a
 * caller-owned space_rng, so a strategy controls reproducibility.
 */
#ifndef PODIUM_SCHEDULER_SPACE_H
#define PODIUM_SCHEDULER_SPACE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum space_task { SPACE_CLASSIFICATION = 1, SPACE_REGRESSION = 2, SPACE_BOTH = 3 };

enum space_kind {
    SPACE_INT,     /* integer in [lo, hi] */
    SPACE_FLOAT,   /* real in [lo, hi] */
    SPACE_CHOICE,  /* one of choices[] (JSON literals: "\"l2\"", "null", "[64,32]") */
};

struct space_param {
    const char *name;
    enum space_kind kind;
    double lo, hi;
    int log;                          /* sample uniformly in log space */
    const char *const *choices;       /* SPACE_CHOICE */
    int n_choices;
    int tasks;                        /* enum space_task mask */
    const char *when_param;           /* NULL, or only when that param ... */
    const char *when_value;           /* ... is this JSON literal */
};

struct space_family {
    const char *name;
    int tasks;                        /* which tasks the family supports */
    const struct space_param *params;
    size_t n_params;
    /* The fidelity for successive halving: an integer parameter of params[]
     * whose value buys accuracy with time (boosting rounds, trees, epochs),
     * and its smallest useful value; its largest is the parameter's hi.
     * NULL for a family with none (it always trains at full fidelity). */
    const char *fidelity;
    double fidelity_min;
};

/* The families that can train on a GPU: the CNN trainers of image jobs
 * ("cnn", "darts"; their params are genotypes and training settings drawn
 * by scheduler/nas.c, not from a space here). Their trials take a GPU slot
 * when one is free (slots.h) and run on the CPU otherwise. NULL-ended. */
extern const char *const space_gpu_families[];
int space_family_uses_gpu(const char *name);

/* A small deterministic generator (splitmix64). */
struct space_rng { uint64_t s; };
void space_rng_seed(struct space_rng *r, uint64_t seed);
uint64_t space_rng_next(struct space_rng *r);
double space_rng_uniform(struct space_rng *r);   /* [0, 1) */

/* The family's space, NULL if unknown. */
const struct space_family *space_family_find(const char *name);
/* Every family, in a fixed order. */
const struct space_family *space_family_at(size_t i);
size_t space_family_count(void);
/* 1 if the family supports the task (SPACE_CLASSIFICATION/REGRESSION). */
int space_family_supports(const struct space_family *f, int task);

/* The known-good configuration of a family: its defaults, {} (podium-train
 * fills them in). A new object the caller deletes. */
cJSON *space_default_params(const struct space_family *f, int task);

/* A random configuration from the family's space for the task. A new
 * object the caller deletes, NULL when out of memory. */
cJSON *space_sample(const struct space_family *f, int task, struct space_rng *rng);

/* The parameter called name that applies to task, NULL if none. */
const struct space_param *space_param_find(const struct space_family *f, int task,
                                           const char *name);
/* 1 if p applies to task and its condition holds in obj (the parameters
 * already chosen, in params[] order). */
int space_param_active(const struct space_param *p, int task, const cJSON *obj);
/* p's JSON value for x: SPACE_CHOICE: x is the index of the choice;
 * otherwise x on the natural scale, rounded (integers; 4 significant digits
 * for reals) and clamped to [lo, hi]. A new item, NULL when out of memory. */
cJSON *space_param_value(const struct space_param *p, double x);

/* "classification" / "regression" -> SPACE_*; -1 otherwise. */
int space_task_parse(const char *s);

#endif

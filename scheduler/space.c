/*
 * space.c - the default search spaces (space.h). Ranges are deliberately
 * narrower than what the families accept: they are where good models of
 * ordinary tabular data live, and a trial of the search is cheap only if
 * it stays there (e.g. n_estimators up to 500, knn up to 50 neighbours).
 */
#include "scheduler/space.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void space_rng_seed(struct space_rng *r, uint64_t seed) { r->s = seed ^ 0x9e3779b97f4a7c15ULL; }

uint64_t space_rng_next(struct space_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double space_rng_uniform(struct space_rng *r)
{
    return (double)(space_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const PENALTY[] = {"\"l2\"", "\"l1\"", "\"elasticnet\""};
static const char *const BOOL[] = {"true", "false"};
static const struct space_param LINEAR[] = {
    {"penalty", SPACE_CHOICE, 0, 0, 0, PENALTY, N(PENALTY), SPACE_CLASSIFICATION, NULL, NULL},
    {"C", SPACE_FLOAT, 1e-3, 1e3, 1, NULL, 0, SPACE_CLASSIFICATION, NULL, NULL},
    {"l1_ratio", SPACE_FLOAT, 0.05, 0.95, 0, NULL, 0, SPACE_CLASSIFICATION, "penalty",
     "\"elasticnet\""},
    {"alpha", SPACE_FLOAT, 1e-6, 1.0, 1, NULL, 0, SPACE_REGRESSION, NULL, NULL},
    {"l1_ratio", SPACE_FLOAT, 0.0, 1.0, 0, NULL, 0, SPACE_REGRESSION, NULL, NULL},
};

static const char *const MAX_DEPTH[] = {"null", "4", "8", "16", "32"};
static const char *const MAX_FEATURES[] = {"\"sqrt\"", "\"log2\"", "0.5", "1.0"};
static const char *const CRITERION[] = {"\"gini\"", "\"entropy\""};
static const struct space_param FOREST[] = {
    {"n_estimators", SPACE_INT, 50, 500, 1, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"criterion", SPACE_CHOICE, 0, 0, 0, CRITERION, N(CRITERION), SPACE_CLASSIFICATION, NULL, NULL},
    {"max_depth", SPACE_CHOICE, 0, 0, 0, MAX_DEPTH, N(MAX_DEPTH), SPACE_BOTH, NULL, NULL},
    {"min_samples_leaf", SPACE_INT, 1, 20, 1, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"max_features", SPACE_CHOICE, 0, 0, 0, MAX_FEATURES, N(MAX_FEATURES), SPACE_BOTH, NULL, NULL},
};

static const struct space_param GBM[] = {
    {"n_estimators", SPACE_INT, 50, 500, 1, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"learning_rate", SPACE_FLOAT, 0.01, 0.3, 1, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"max_depth", SPACE_INT, 2, 10, 0, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"min_child_weight", SPACE_FLOAT, 0.1, 10.0, 1, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"reg_lambda", SPACE_FLOAT, 1e-3, 10.0, 1, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"subsample", SPACE_FLOAT, 0.5, 1.0, 0, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"colsample_bytree", SPACE_FLOAT, 0.5, 1.0, 0, NULL, 0, SPACE_BOTH, NULL, NULL},
};

static const char *const WEIGHTS[] = {"\"uniform\"", "\"distance\""};
static const struct space_param KNN[] = {
    {"n_neighbors", SPACE_INT, 1, 50, 1, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"weights", SPACE_CHOICE, 0, 0, 0, WEIGHTS, N(WEIGHTS), SPACE_BOTH, NULL, NULL},
};

static const struct space_param NB[] = {
    {"var_smoothing", SPACE_FLOAT, 1e-12, 1e-3, 1, NULL, 0, SPACE_CLASSIFICATION, NULL, NULL},
};

static const char *const HIDDEN[] = {"[32]", "[64]", "[128]", "[64,32]", "[128,64]"};
static const struct space_param MLP[] = {
    {"hidden_layer_sizes", SPACE_CHOICE, 0, 0, 0, HIDDEN, N(HIDDEN), SPACE_BOTH, NULL, NULL},
    {"alpha", SPACE_FLOAT, 1e-6, 1e-2, 1, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"learning_rate_init", SPACE_FLOAT, 1e-4, 1e-2, 1, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"max_iter", SPACE_INT, 100, 400, 0, NULL, 0, SPACE_BOTH, NULL, NULL},
    {"early_stopping", SPACE_CHOICE, 0, 0, 0, BOOL, N(BOOL), SPACE_BOTH, NULL, NULL},
};

static const struct space_family FAMILIES[] = {
    /* Fidelities: with successive halving's eta = 3, 20 -> 60 -> 180 -> 500
     * trees or rounds, and 15 -> 45 -> 135 -> 400 epochs. */
    {"linear", SPACE_BOTH, LINEAR, N(LINEAR), NULL, 0},
    {"rf", SPACE_BOTH, FOREST, N(FOREST), "n_estimators", 20},
    {"extratrees", SPACE_BOTH, FOREST, N(FOREST), "n_estimators", 20},
    {"gbm", SPACE_BOTH, GBM, N(GBM), "n_estimators", 20},
    {"knn", SPACE_BOTH, KNN, N(KNN), NULL, 0},
    {"nb", SPACE_CLASSIFICATION, NB, N(NB), NULL, 0},
    {"mlp", SPACE_BOTH, MLP, N(MLP), "max_iter", 15},
};

const char *const space_gpu_families[] = {"cnn", "darts", NULL};

int space_family_uses_gpu(const char *name)
{
    for (size_t i = 0; name && space_gpu_families[i]; i++)
        if (strcmp(name, space_gpu_families[i]) == 0) return 1;
    return 0;
}

const struct space_family *space_family_find(const char *name)
{
    if (name == NULL) return NULL;
    for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++)
        if (strcmp(FAMILIES[i].name, name) == 0) return &FAMILIES[i];
    return NULL;
}

const struct space_family *space_family_at(size_t i)
{
    return i < sizeof FAMILIES / sizeof FAMILIES[0] ? &FAMILIES[i] : NULL;
}

size_t space_family_count(void) { return sizeof FAMILIES / sizeof FAMILIES[0]; }

int space_family_supports(const struct space_family *f, int task)
{
    return f != NULL && (f->tasks & task) != 0;
}

int space_task_parse(const char *s)
{
    if (s == NULL) return -1;
    if (strcmp(s, "classification") == 0) return SPACE_CLASSIFICATION;
    if (strcmp(s, "regression") == 0) return SPACE_REGRESSION;
    return -1;
}

cJSON *space_default_params(const struct space_family *f, int task)
{
    (void)f;
    (void)task;
    return cJSON_CreateObject();
}

const struct space_param *space_param_find(const struct space_family *f, int task,
                                           const char *name)
{
    for (size_t i = 0; f != NULL && name != NULL && i < f->n_params; i++)
        if ((f->params[i].tasks & task) && strcmp(f->params[i].name, name) == 0)
            return &f->params[i];
    return NULL;
}

/* Does the already-sampled object satisfy p's condition? */
static int condition_holds(const struct space_param *p, const cJSON *obj)
{
    if (p->when_param == NULL) return 1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, p->when_param);
    if (v == NULL) return 0;
    cJSON *want = cJSON_Parse(p->when_value);
    int eq = want != NULL && cJSON_Compare(v, want, 1);
    cJSON_Delete(want);
    return eq;
}

int space_param_active(const struct space_param *p, int task, const cJSON *obj)
{
    return (p->tasks & task) && condition_holds(p, obj);
}

cJSON *space_param_value(const struct space_param *p, double x)
{
    if (p->kind == SPACE_CHOICE) {
        int k = x >= 0 ? (int)x : 0;
        if (k >= p->n_choices) k = p->n_choices - 1;
        return cJSON_Parse(p->choices[k]);
    }
    if (p->kind == SPACE_INT) {
        x = floor(x + 0.5);
    } else {
        /* 4 significant digits: readable in the API, same model */
        char buf[32];
        snprintf(buf, sizeof buf, "%.4g", x);
        x = strtod(buf, NULL);
    }
    if (!(x >= p->lo)) x = p->lo;   /* NaN too */
    if (x > p->hi) x = p->hi;
    return cJSON_CreateNumber(x);
}

cJSON *space_sample(const struct space_family *f, int task, struct space_rng *rng)
{
    cJSON *obj = cJSON_CreateObject();
    if (obj == NULL) return NULL;
    for (size_t i = 0; i < f->n_params; i++) {
        const struct space_param *p = &f->params[i];
        /* Draw even when the parameter is skipped, so that one parameter's
         * condition does not shift every later draw. */
        double u = space_rng_uniform(rng);
        if (!space_param_active(p, task, obj)) continue;
        double x;
        if (p->kind == SPACE_CHOICE)
            x = (double)(int)(u * p->n_choices);
        else
            x = p->log ? exp(log(p->lo) + u * (log(p->hi) - log(p->lo)))
                       : p->lo + u * (p->hi - p->lo);
        cJSON *v = space_param_value(p, x);
        if (v == NULL || !cJSON_AddItemToObject(obj, p->name, v)) {
            cJSON_Delete(v);
            cJSON_Delete(obj);
            return NULL;
        }
    }
    return obj;
}

/*
 * asha.c - asynchronous successive halving (Li et al. 2018, "ASHA") with
 * reduction factor ASHA_ETA = 3.
 *
 * Each family's fidelity is space data (space.h): gbm, rf and extratrees
 * train n_estimators trees or rounds, mlp max_iter epochs. Rung r trains
 * at fidelity min * eta^r, the top rung R (the first whose fidelity
 * reaches the parameter's hi) at hi: 20, 60, 180, 500 trees; 15, 45, 135,
 * 400 epochs. A family without a fidelity (linear, knn, nb) has R = 0: its
 * trials train at full fidelity and are never promoted.
 *
 * Proposal of trial seq s (the history's largest seq + 1, as claim.c
 * numbers it): from the rung below the top down to rung 0, the finished
 * (succeeded or failed) trials at rung r of families with R > r are
 * ranked (succeeded ones only, best first in the job's direction, ties by
 * seq); the first of the top floor(finished / eta) not promoted yet is
 * promoted: the same family and parameters with the fidelity of rung r+1.
 * With nothing to promote, a new configuration at rung 0: the families'
 * known-good defaults first (in job.models order), then random search's
 * draw for s; the fidelity parameter set to rung 0's. Trials never wait
 * for a rung to fill (that is the asynchronous part): a trial can be
 * promoted once a third of its rung is known and it is in the best third.
 *
 * The parameters go to the trainer as they are, so the bookkeeping lives in
 * the state, keyed by seq: {"strategy": "asha", "proposed": k, "observed":
 * n, "eta": 3, "trials": [[seq, rung, parent seq or 0], ...]} in seq order.
 * A trial is promoted iff some entry names it as parent, so none is
 * promoted twice. History trials without an entry (none, unless the state
 * was lost) are ignored. Scores come from the history, so the proposal
 * depends only on the seed, the history and the state.
 */
#include "scheduler/strategy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/space.h"

#define ASHA_ETA 3
#define ASHA_MAX_RUNGS 16
#define ASHA_MAX_ENTRIES 1000000   /* bound on a saved state (max_trials is 100000) */

struct asha_entry { int seq, rung, from; };

struct asha_ctx {
    struct strategy_common com;
    struct asha_entry *e;     /* sorted by seq, seqs distinct */
    size_t n, cap;
};

/* The family's fidelity parameter for the job's task, NULL if none. */
static const struct space_param *fidelity_param(const struct asha_ctx *c,
                                                const struct space_family *f)
{
    if (f->fidelity == NULL || !(f->fidelity_min > 0)) return NULL;
    const struct space_param *p = space_param_find(f, c->com.job.task, f->fidelity);
    return p != NULL && p->kind == SPACE_INT && p->when_param == NULL ? p : NULL;
}

/* The top rung of a family (0: no fidelity). */
static int top_rung(const struct asha_ctx *c, const struct space_family *f)
{
    const struct space_param *p = fidelity_param(c, f);
    if (p == NULL) return 0;
    int r = 0;
    for (double x = f->fidelity_min; x < p->hi && r < ASHA_MAX_RUNGS - 1; x *= ASHA_ETA) r++;
    return r;
}

static double rung_fidelity(const struct asha_ctx *c, const struct space_family *f, int r)
{
    const struct space_param *p = fidelity_param(c, f);
    double x = f->fidelity_min;
    for (int i = 0; i < r; i++) x *= ASHA_ETA;
    return x < p->hi ? x : p->hi;
}

static const struct space_family *family_of(const struct asha_ctx *c, const char *name)
{
    for (size_t i = 0; name != NULL && i < c->com.n_fams; i++)
        if (strcmp(c->com.fams[i]->name, name) == 0) return c->com.fams[i];
    return NULL;
}

static struct asha_entry *entry_find(const struct asha_ctx *c, int seq)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->e[mid].seq == seq) return &c->e[mid];
        if (c->e[mid].seq < seq) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static int cmp_entry(const void *x, const void *y)
{
    const struct asha_entry *a = x, *b = y;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static int entry_push(struct asha_ctx *c, struct asha_entry e)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        struct asha_entry *ne = realloc(c->e, cap * sizeof *ne);
        if (ne == NULL) return -1;
        c->e = ne;
        c->cap = cap;
    }
    c->e[c->n++] = e;
    return 0;
}

static void asha_destroy(void *ctx)
{
    struct asha_ctx *c = ctx;
    if (c == NULL) return;
    free(c->e);
    free(c);
}

static int asha_create(const struct strategy_job *job, const cJSON *state, void **out,
                       char *err, size_t errlen)
{
    struct asha_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (strategy_common_init(&c->com, job, state, err, errlen) < 0) {
        free(c);
        return -1;
    }
    /* Entries that are not [seq >= 1, 0 <= rung < max, 0 <= from < seq]
     * are dropped: a trial without an entry is only never promoted. */
    const cJSON *trials = cJSON_GetObjectItemCaseSensitive(state, "trials");
    const cJSON *it;
    if (!cJSON_IsArray(trials)) trials = NULL;
    cJSON_ArrayForEach(it, trials)
    {
        if (c->n >= ASHA_MAX_ENTRIES) break;
        if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 3) continue;
        double v[3];
        int ok = 1;
        for (int i = 0; i < 3; i++) {
            const cJSON *x = cJSON_GetArrayItem(it, i);
            ok &= cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble < 1e9 &&
                  x->valuedouble == floor(x->valuedouble);
            v[i] = ok ? x->valuedouble : 0;
        }
        if (!ok || v[0] < 1 || v[1] >= ASHA_MAX_RUNGS || v[2] >= v[0]) continue;
        if (entry_push(c, (struct asha_entry){(int)v[0], (int)v[1], (int)v[2]}) < 0) {
            snprintf(err, errlen, "out of memory");
            asha_destroy(c);
            return -1;
        }
    }
    if (c->n > 1) {
        qsort(c->e, c->n, sizeof *c->e, cmp_entry);
        size_t w = 1;   /* a duplicated seq keeps its first entry */
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].seq != c->e[w - 1].seq) c->e[w++] = c->e[i];
        c->n = w;
    }
    *out = c;
    return 0;
}

static void asha_observe(void *ctx, const struct strategy_trial *t)
{
    (void)t;   /* scores are read from the history at each proposal */
    ((struct asha_ctx *)ctx)->com.observed++;
}

struct ranked { double key; int seq; const struct strategy_trial *t; };

static int cmp_ranked(const void *x, const void *y)
{
    const struct ranked *a = x, *b = y;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* The trial to promote (NULL: none) and into *rung its rung. */
static const struct strategy_trial *find_promotion(const struct asha_ctx *c,
                                                   const struct strategy_trial *history,
                                                   size_t n, struct ranked *buf,
                                                   const char *promoted, int *rung)
{
    int top = 0;
    for (size_t i = 0; i < c->com.n_fams; i++) {
        int r = top_rung(c, c->com.fams[i]);
        if (r > top) top = r;
    }
    for (int r = top - 1; r >= 0; r--) {
        size_t finished = 0, ns = 0;
        for (size_t i = 0; i < n; i++) {
            const struct strategy_trial *t = &history[i];
            const struct asha_entry *e = entry_find(c, t->seq);
            const struct space_family *f = family_of(c, t->family);
            if (e == NULL || e->rung != r || f == NULL || top_rung(c, f) <= r) continue;
            if (t->state == ST_FAILED) finished++;
            if (t->state == ST_SUCCEEDED && isfinite(t->score)) {
                finished++;
                buf[ns++] = (struct ranked){c->com.job.higher_is_better ? -t->score : t->score,
                                            t->seq, t};
            }
        }
        size_t k = finished / ASHA_ETA;
        if (k == 0) continue;
        qsort(buf, ns, sizeof *buf, cmp_ranked);
        for (size_t i = 0; i < k && i < ns; i++) {
            if (!promoted[buf[i].seq] && cJSON_IsObject(buf[i].t->params)) {
                *rung = r;
                return buf[i].t;
            }
        }
    }
    return NULL;
}

/* The fidelity of a rung may lie below the parameter's search range (20
 * trees where the space starts at 50): the trainers accept any positive
 * count, so it is only rounded. */
static int set_fidelity(cJSON *params, const struct space_param *p, double x)
{
    cJSON *v = cJSON_CreateNumber(floor(x + 0.5));
    if (v == NULL) return -1;
    if (cJSON_GetObjectItemCaseSensitive(params, p->name) != NULL)
        return cJSON_ReplaceItemInObjectCaseSensitive(params, p->name, v) ? 0 : -1;
    if (!cJSON_AddItemToObject(params, p->name, v)) {
        cJSON_Delete(v);
        return -1;
    }
    return 0;
}

static int asha_propose(void *ctx, const struct strategy_trial *history, size_t n,
                        const char **family, cJSON **params, char *err, size_t errlen)
{
    struct asha_ctx *c = ctx;
    int seq = 0;
    for (size_t i = 0; i < n; i++)
        if (history[i].seq > seq) seq = history[i].seq;
    seq++;
    /* Entries at or past seq belong to proposals that never became trials. */
    while (c->n > 0 && c->e[c->n - 1].seq >= seq) c->n--;

    /* promoted[s]: trial s has been promoted (every entry's seq < seq) */
    struct ranked *buf = calloc(n + 1, sizeof *buf);
    char *promoted = calloc((size_t)seq + 1, 1);
    const struct space_family *f = NULL;
    struct asha_entry e = {seq, 0, 0};
    *params = NULL;
    if (buf == NULL || promoted == NULL) {
        free(buf);
        free(promoted);
        goto oom;
    }
    for (size_t i = 0; i < c->n; i++) promoted[c->e[i].from] = 1;
    const struct strategy_trial *parent = find_promotion(c, history, n, buf, promoted, &e.rung);
    free(buf);
    free(promoted);
    if (parent != NULL) {
        f = family_of(c, parent->family);
        e.from = parent->seq;
        e.rung++;
        *params = cJSON_Duplicate(parent->params, 1);
        if (*params == NULL ||
            set_fidelity(*params, fidelity_param(c, f), rung_fidelity(c, f, e.rung)) < 0)
            goto oom;
    } else {
        size_t fresh = 0;
        for (size_t i = 0; i < c->n; i++) fresh += c->e[i].from == 0;
        if (fresh < c->com.n_fams) {
            f = c->com.fams[fresh];
            *params = space_default_params(f, c->com.job.task);
        } else {
            struct space_rng rng;
            strategy_rng(&rng, c->com.job.seed, seq, 0);
            f = c->com.fams[space_rng_next(&rng) % c->com.n_fams];
            *params = space_sample(f, c->com.job.task, &rng);
        }
        if (*params == NULL) goto oom;
        if (top_rung(c, f) > 0 &&
            set_fidelity(*params, fidelity_param(c, f), rung_fidelity(c, f, 0)) < 0)
            goto oom;
    }
    if (entry_push(c, e) < 0) goto oom;
    *family = f->name;
    c->com.proposed = (int)n + 1;
    return 0;
oom:
    cJSON_Delete(*params);
    *params = NULL;
    snprintf(err, errlen, "out of memory");
    return -1;
}

static cJSON *asha_save(void *ctx)
{
    struct asha_ctx *c = ctx;
    cJSON *s = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    if (s == NULL || arr == NULL || !cJSON_AddStringToObject(s, "strategy", "asha") ||
        !cJSON_AddNumberToObject(s, "proposed", c->com.proposed) ||
        !cJSON_AddNumberToObject(s, "observed", c->com.observed) ||
        !cJSON_AddNumberToObject(s, "eta", ASHA_ETA))
        goto fail;
    if (!cJSON_AddItemToObject(s, "trials", arr)) goto fail;
    cJSON *a = arr;
    arr = NULL;
    for (size_t i = 0; i < c->n; i++) {
        int v[3] = {c->e[i].seq, c->e[i].rung, c->e[i].from};
        cJSON *t = cJSON_CreateIntArray(v, 3);
        if (t == NULL || !cJSON_AddItemToArray(a, t)) {
            cJSON_Delete(t);
            goto fail;
        }
    }
    return s;
fail:
    cJSON_Delete(arr);
    cJSON_Delete(s);
    return NULL;
}

const struct strategy_ops strategy_asha = {
    "asha", asha_create, asha_observe, asha_propose, asha_save, asha_destroy,
};

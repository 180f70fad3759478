/*
 * tpe.c - the Tree-structured Parzen Estimator (Bergstra et al. 2011) over
 * podium's conditional space: family -> that family's parameters.
 *
 * Trial k (k = the size of the history + 1):
 *   - k <= the number of usable families: that family's defaults, the
 *     known-good start (as random search);
 *   - while fewer than n_fams + TPE_STARTUP trials have finished: random
 *     search's own k-th proposal (same generator), so the model has data;
 *   - otherwise the finished trials are split into good (the best
 *     ceil(TPE_GAMMA * finished) succeeded trials, in the job's direction)
 *     and bad (the rest, failed trials included; cancelled ones are
 *     ignored). The family is drawn with probability proportional to
 *     l(f) / g(f), where l and g are its share of the good and of the bad
 *     trials with a prior of one trial per family, so every family keeps a
 *     chance. Then, in the family's order, each parameter that applies
 *     (task, condition on the parameters already chosen) gets the best of
 *     TPE_CANDIDATES draws from l by l(x)/g(x): numbers through adaptive
 *     Parzen windows (Gaussian kernels on the internal scale - log for
 *     log-scaled parameters - at each observation plus a wide prior kernel,
 *     each kernel's width the larger gap to its neighbours, clipped to
 *     [range / min(100, 1 + n), range], truncated to the range), integers
 *     rounded before they are scored, choices by counts plus one.
 *     Observations lacking the parameter (the {} defaults, an inactive
 *     conditional) say nothing about it.
 * The generator is seeded from (job.seed, k) alone, and the history is
 * sorted by seq and ranked with ties broken by seq, so a proposal depends
 * only on the seed and the history, whatever order results arrived in.
 *
 * State: {"strategy": "tpe", "proposed": k, "observed": n}, as random
 * search's; everything else is recomputed from the history (which the
 * scheduler reads in the same transaction), so nothing can drift.
 */
#include "scheduler/strategy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/space.h"

#define TPE_STARTUP 10          /* random trials after the known-good ones */
#define TPE_GAMMA 0.25          /* the good share of the finished trials */
#define TPE_CANDIDATES 24       /* draws from l(x) per parameter */
#define TPE_SALT 0x7470655f7470655fULL

struct tpe_ctx {
    struct strategy_common com;
};

static int tpe_create(const struct strategy_job *job, const cJSON *state, void **out, char *err,
                      size_t errlen)
{
    struct tpe_ctx *c = calloc(1, sizeof *c);
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

static void tpe_observe(void *ctx, const struct strategy_trial *t)
{
    (void)t;   /* the model is refitted from the history at each proposal */
    ((struct tpe_ctx *)ctx)->com.observed++;
}

/* The number of random trials after the known-good ones: TPE_STARTUP, or a
 * quarter of what the budget leaves for a small one. */
static int startup_trials(const struct tpe_ctx *c)
{
    int n = TPE_STARTUP;
    if (c->com.job.max_trials > 0) {
        int left = c->com.job.max_trials - (int)c->com.n_fams;
        if (left / 4 < n) n = left / 4 > 2 ? left / 4 : 2;
    }
    return n;
}

/* ---- Parzen estimators ---- */

struct parzen {
    double *mu, *sigma, *z;   /* kernels (the prior's among them); z: mass in [a, b] */
    size_t n;
    double a, b;
};

static double phi_cdf(double x) { return 0.5 * (1.0 + erf(x / sqrt(2.0))); }

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Fit to the n observations xs[] (internal scale, inside [a, b]). */
static int parzen_fit(struct parzen *pz, const double *xs, size_t n, double a, double b)
{
    pz->n = n + 1;
    pz->a = a;
    pz->b = b;
    pz->mu = malloc(pz->n * sizeof(double));
    pz->sigma = malloc(pz->n * sizeof(double));
    pz->z = malloc(pz->n * sizeof(double));
    if (!pz->mu || !pz->sigma || !pz->z) return -1;
    double range = b - a, prior = 0.5 * (a + b);
    memcpy(pz->mu, xs, n * sizeof(double));
    pz->mu[n] = prior;
    qsort(pz->mu, pz->n, sizeof(double), cmp_double);
    double lo = range / (1.0 + (n < 99 ? (double)n : 99.0)), hi = range;
    int prior_done = 0;
    for (size_t i = 0; i < pz->n; i++) {
        double s;
        if (pz->n == 1) {
            s = range;
        } else {
            double left = i > 0 ? pz->mu[i] - pz->mu[i - 1] : 0;
            double right = i + 1 < pz->n ? pz->mu[i + 1] - pz->mu[i] : 0;
            s = left > right ? left : right;
        }
        if (!prior_done && pz->mu[i] == prior) {   /* the prior kernel is wide */
            s = range;
            prior_done = 1;
        }
        if (s < lo) s = lo;
        if (s > hi) s = hi;
        if (!(s > 0)) s = 1e-12;
        pz->sigma[i] = s;
        pz->z[i] = phi_cdf((b - pz->mu[i]) / s) - phi_cdf((a - pz->mu[i]) / s);
        if (!(pz->z[i] > 1e-300)) pz->z[i] = 1e-300;
    }
    return 0;
}

static void parzen_free(struct parzen *pz)
{
    free(pz->mu);
    free(pz->sigma);
    free(pz->z);
}

static double parzen_log_pdf(const struct parzen *pz, double x)
{
    double sum = 0;
    for (size_t i = 0; i < pz->n; i++) {
        double d = (x - pz->mu[i]) / pz->sigma[i];
        sum += exp(-0.5 * d * d) / (pz->sigma[i] * pz->z[i]);
    }
    sum /= (double)pz->n * sqrt(2.0 * M_PI);
    return log(sum > 1e-300 ? sum : 1e-300);
}

/* A standard normal draw (Box-Muller). */
static double normal(struct space_rng *rng)
{
    double u1 = space_rng_uniform(rng), u2 = space_rng_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double parzen_sample(const struct parzen *pz, struct space_rng *rng)
{
    size_t i = (size_t)(space_rng_uniform(rng) * (double)pz->n);
    if (i >= pz->n) i = pz->n - 1;
    for (int tries = 0; tries < 32; tries++) {
        double x = pz->mu[i] + pz->sigma[i] * normal(rng);
        if (x >= pz->a && x <= pz->b) return x;
    }
    return pz->a + space_rng_uniform(rng) * (pz->b - pz->a);
}

/* ---- one parameter ---- */

#define TPE_MAX_CHOICES 64

/* v (a JSON value of p) on p's internal scale; 0 when v is not a value of
 * p. ch[]: p's choices parsed (SPACE_CHOICE only). */
static int internal(const struct space_param *p, cJSON *const *ch, const cJSON *v, double *x)
{
    if (v == NULL) return 0;
    if (p->kind == SPACE_CHOICE) {
        for (int k = 0; k < p->n_choices && k < TPE_MAX_CHOICES; k++) {
            if (ch[k] != NULL && cJSON_Compare(ch[k], v, 1)) {
                *x = k;
                return 1;
            }
        }
        return 0;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= p->lo && v->valuedouble <= p->hi)) return 0;
    *x = p->log ? log(v->valuedouble) : v->valuedouble;
    return 1;
}

/* The value to propose for p: the best of TPE_CANDIDATES draws from l by
 * l/g, with good[]/bad[] the observations on the internal scale. */
static cJSON *propose_param(const struct space_param *p, const double *good, size_t ng,
                            const double *bad, size_t nb, struct space_rng *rng)
{
    if (p->kind == SPACE_CHOICE) {
        int K = p->n_choices, best = 0;
        double lw[TPE_MAX_CHOICES] = {0}, gw[TPE_MAX_CHOICES] = {0}, best_r = -INFINITY;
        if (K > TPE_MAX_CHOICES) K = TPE_MAX_CHOICES;
        for (size_t i = 0; i < ng; i++) lw[(int)good[i]] += 1;
        for (size_t i = 0; i < nb; i++) gw[(int)bad[i]] += 1;
        for (int j = 0; j < K; j++) {
            lw[j] = (lw[j] + 1) / ((double)ng + K);
            gw[j] = (gw[j] + 1) / ((double)nb + K);
        }
        for (int t = 0; t < TPE_CANDIDATES; t++) {
            double u = space_rng_uniform(rng), acc = 0;
            int j = K - 1;
            for (int q = 0; q < K; q++) {
                acc += lw[q];
                if (u < acc) {
                    j = q;
                    break;
                }
            }
            double r = log(lw[j]) - log(gw[j]);
            if (r > best_r) {
                best_r = r;
                best = j;
            }
        }
        return space_param_value(p, best);
    }
    double a = p->log ? log(p->lo) : p->lo, b = p->log ? log(p->hi) : p->hi;
    struct parzen l = {0}, g = {0};
    cJSON *out = NULL;
    if (parzen_fit(&l, good, ng, a, b) == 0 && parzen_fit(&g, bad, nb, a, b) == 0) {
        double best = 0.5 * (a + b), best_r = -INFINITY;
        for (int t = 0; t < TPE_CANDIDATES; t++) {
            double x = parzen_sample(&l, rng);
            /* score what will be proposed: the rounded, clamped value */
            cJSON *v = space_param_value(p, p->log ? exp(x) : x);
            double xi;
            if (v == NULL || !internal(p, NULL, v, &xi)) xi = x;
            cJSON_Delete(v);
            double r = parzen_log_pdf(&l, xi) - parzen_log_pdf(&g, xi);
            if (r > best_r) {
                best_r = r;
                best = xi;
            }
        }
        out = space_param_value(p, p->log ? exp(best) : best);
    }
    parzen_free(&l);
    parzen_free(&g);
    return out;
}

/* ---- a proposal ---- */

/* Succeeded trials ranked best first: key is the score oriented so that
 * lower is better, ties broken by seq. */
struct ranked { double key; int seq; size_t at; };

static int cmp_ranked(const void *x, const void *y)
{
    const struct ranked *a = x, *b = y;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static int family_index(const struct tpe_ctx *c, const char *name)
{
    for (size_t i = 0; name != NULL && i < c->com.n_fams; i++)
        if (strcmp(c->com.fams[i]->name, name) == 0) return (int)i;
    return -1;
}

/* The model-based proposal from the finished trials fin[0..n) (sorted by
 * seq), of which the good ones are flagged. */
static cJSON *tpe_model(const struct tpe_ctx *c, const struct strategy_trial *const *fin,
                        const char *good, size_t n, struct space_rng *rng,
                        const struct space_family **family)
{
    /* the family: l(f) / g(f) with one prior trial per family */
    size_t F = c->com.n_fams, n_good = 0;
    double gc[STRATEGY_MAX_FAMILIES] = {0}, bc[STRATEGY_MAX_FAMILIES] = {0};
    double w[STRATEGY_MAX_FAMILIES], total = 0;
    for (size_t i = 0; i < n; i++) {
        int f = family_index(c, fin[i]->family);
        n_good += good[i] != 0;
        if (good[i]) gc[f] += 1;
        else bc[f] += 1;
    }
    for (size_t f = 0; f < F; f++) {
        double l = (gc[f] + 1) / ((double)n_good + F);
        double g = (bc[f] + 1) / ((double)(n - n_good) + F);
        w[f] = l / g;
        total += w[f];
    }
    double u = space_rng_uniform(rng) * total, acc = 0;
    size_t fi = F - 1;
    for (size_t f = 0; f < F; f++) {
        acc += w[f];
        if (u < acc) {
            fi = f;
            break;
        }
    }
    const struct space_family *fam = c->com.fams[fi];
    *family = fam;

    cJSON *obj = cJSON_CreateObject();
    double *gx = malloc((n + 1) * sizeof(double)), *bx = malloc((n + 1) * sizeof(double));
    if (obj == NULL || gx == NULL || bx == NULL) goto fail;
    for (size_t j = 0; j < fam->n_params; j++) {
        const struct space_param *p = &fam->params[j];
        if (!space_param_active(p, c->com.job.task, obj)) continue;
        size_t ng = 0, nb = 0;
        cJSON *ch[TPE_MAX_CHOICES] = {0};
        for (int q = 0; p->kind == SPACE_CHOICE && q < p->n_choices && q < TPE_MAX_CHOICES; q++)
            ch[q] = cJSON_Parse(p->choices[q]);
        for (size_t i = 0; i < n; i++) {
            if ((size_t)family_index(c, fin[i]->family) != fi) continue;
            double x;
            if (!internal(p, ch, cJSON_GetObjectItemCaseSensitive(fin[i]->params, p->name), &x))
                continue;
            if (good[i]) gx[ng++] = x;
            else bx[nb++] = x;
        }
        for (int q = 0; q < TPE_MAX_CHOICES; q++) cJSON_Delete(ch[q]);
        cJSON *v = propose_param(p, gx, ng, bx, nb, rng);
        if (v == NULL || !cJSON_AddItemToObject(obj, p->name, v)) {
            cJSON_Delete(v);
            goto fail;
        }
    }
    free(gx);
    free(bx);
    return obj;
fail:
    free(gx);
    free(bx);
    cJSON_Delete(obj);
    return NULL;
}

static int tpe_propose(void *ctx, const struct strategy_trial *history, size_t n,
                       const char **family, cJSON **params, char *err, size_t errlen)
{
    struct tpe_ctx *c = ctx;
    int k = (int)n + 1;
    const struct space_family *f = NULL;
    const struct strategy_trial **fin = calloc(n + 1, sizeof *fin);
    struct ranked *ranked = calloc(n + 1, sizeof *ranked);
    char *good = calloc(n + 1, 1);
    *params = NULL;
    if (fin == NULL || ranked == NULL || good == NULL) goto oom;

    /* finished trials of the job's families, in seq order */
    size_t nf = 0, ns = 0;
    for (size_t i = 0; i < n; i++) {
        const struct strategy_trial *t = &history[i];
        if (family_index(c, t->family) < 0) continue;
        if (t->state == ST_FAILED || (t->state == ST_SUCCEEDED && isfinite(t->score)))
            fin[nf++] = t;
    }
    for (size_t i = 1; i < nf; i++)   /* insertion sort by seq: usually sorted already */
        for (size_t j = i; j > 0 && fin[j - 1]->seq > fin[j]->seq; j--) {
            const struct strategy_trial *t = fin[j];
            fin[j] = fin[j - 1];
            fin[j - 1] = t;
        }
    for (size_t i = 0; i < nf; i++)
        if (fin[i]->state == ST_SUCCEEDED)
            ranked[ns++] = (struct ranked){c->com.job.higher_is_better ? -fin[i]->score : fin[i]->score,
                                           fin[i]->seq, i};

    struct space_rng rng;
    if ((size_t)k <= c->com.n_fams) {
        f = c->com.fams[k - 1];
        *params = space_default_params(f, c->com.job.task);
    } else if (nf < c->com.n_fams + (size_t)startup_trials(c) || ns == 0) {
        strategy_rng(&rng, c->com.job.seed, k, 0);   /* random search's k-th trial */
        f = c->com.fams[space_rng_next(&rng) % c->com.n_fams];
        *params = space_sample(f, c->com.job.task, &rng);
    } else {
        qsort(ranked, ns, sizeof *ranked, cmp_ranked);
        size_t n_good = (size_t)ceil(TPE_GAMMA * (double)nf);
        if (n_good < 1) n_good = 1;
        if (n_good > ns) n_good = ns;
        for (size_t g = 0; g < n_good; g++) good[ranked[g].at] = 1;
        strategy_rng(&rng, c->com.job.seed, k, TPE_SALT);
        *params = tpe_model(c, fin, good, nf, &rng, &f);
    }
    if (*params == NULL) goto oom;
    free(fin);
    free(ranked);
    free(good);
    *family = f->name;
    c->com.proposed = k;
    return 0;
oom:
    free(fin);
    free(ranked);
    free(good);
    snprintf(err, errlen, "out of memory");
    return -1;
}

static cJSON *tpe_save(void *ctx)
{
    struct tpe_ctx *c = ctx;
    cJSON *s = cJSON_CreateObject();
    if (s == NULL) return NULL;
    if (!cJSON_AddStringToObject(s, "strategy", "tpe") ||
        !cJSON_AddNumberToObject(s, "proposed", c->com.proposed) ||
        !cJSON_AddNumberToObject(s, "observed", c->com.observed)) {
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

static void tpe_destroy(void *ctx) { free(ctx); }

const struct strategy_ops strategy_tpe = {
    "tpe", tpe_create, tpe_observe, tpe_propose, tpe_save, tpe_destroy,
};

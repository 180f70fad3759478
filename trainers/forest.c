/*
 * forest.c - see forest.h. Random forests and extra-trees over CART trees.
 *
 * Data layout: fit copies the row-major input into a column-major float
 * matrix once. For rf it also ranks each feature's values (rank = index of
 * the value among the feature's sorted distinct values), so that a node
 * sorts (rank << 32 | row) pairs with a counting or radix sort instead of a
 * comparison sort of floats; thresholds are midpoints between neighbouring
 * distinct values. extratrees draws one uniform threshold per candidate
 * feature between the node's min and max and needs no sort.
 *
 * Each worker thread owns a scratch block sized by n, allocated once per
 * fit, so growing a node allocates nothing (the tree's own arrays grow by
 * doubling). Nodes are grown depth-first with an explicit stack.
 *
 * Threads: fit starts min(threads, n_estimators) workers that take tree
 * indices from a shared counter; the caller's thread waits, relays progress
 * and watches opts->cancel. Results do not depend on which worker grew
 * which tree.
 */
#include "trainers/forest.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trainers/params.h"

#define FOREST_MAGIC 0x46524450u /* "PDRF" */
#define FOREST_VERSION 1u
#define FOREST_MAX_TREES 100000

enum { MF_SQRT, MF_LOG2, MF_ALL, MF_COUNT, MF_FRAC };
enum { MS_ALL, MS_COUNT, MS_FRAC };
enum { CRIT_GINI, CRIT_ENTROPY, CRIT_SQUARED };

struct forest_params {
    int extra;
    int kind;
    int n_classes;
    long n_estimators;
    long max_depth;          /* 0 = unlimited */
    long min_samples_split;
    long min_samples_leaf;
    int mf_kind;
    double mf_value;
    int bootstrap;
    int ms_kind;
    double ms_value;
    int oob_score;
    int criterion;
};

struct forest_model {
    int extra;
    int kind;
    uint32_t n_classes;      /* 0 for regression */
    uint32_t value_dim;
    uint32_t d;
    uint32_t n_trees;
    double oob;
    struct tree *trees;
};

/* --- parameters ---------------------------------------------------------- */

static const char *const forest_keys[] = {
    "n_estimators", "criterion", "max_depth", "min_samples_split",
    "min_samples_leaf", "max_features", "bootstrap", "max_samples",
    "oob_score", NULL
};

static int parse_fraction_or_count(const cJSON *v, const char *key, int *kind,
                                   double *value, char *err, size_t errlen)
{
    double x = v->valuedouble;
    if (!isfinite(x) || x <= 0) {
        snprintf(err, errlen, "%s: must be > 0, got %.17g", key, x);
        return -1;
    }
    if (x <= 1.0) { *kind = 1; *value = x; return 0; }
    if (x != floor(x) || x > 1e9) {
        snprintf(err, errlen, "%s: must be an integer count > 1 or a fraction in (0, 1], got %.17g",
                 key, x);
        return -1;
    }
    *kind = 2;
    *value = x;
    return 0;
}

static int forest_parse(int extra, const cJSON *params, const struct pd_task *task,
                        void **out, char *err, size_t errlen)
{
    *out = NULL;
    if (task == NULL || (task->kind == PD_TASK_CLASSIFICATION && task->n_classes < 2) ||
        (task->kind != PD_TASK_CLASSIFICATION && task->kind != PD_TASK_REGRESSION)) {
        snprintf(err, errlen, "task: unsupported task");
        return PD_EPARAM;
    }
    struct params_ctx pc = {"forest", PARAMS_INTERVAL, err, errlen};
    if (params_check_keys(&pc, params, forest_keys) != 0) return PD_EPARAM;
    struct forest_params p = {
        .extra = extra, .kind = task->kind,
        .n_classes = task->kind == PD_TASK_CLASSIFICATION ? task->n_classes : 0,
        .n_estimators = 100, .max_depth = 0, .min_samples_split = 2,
        .min_samples_leaf = 1,
        .mf_kind = task->kind == PD_TASK_CLASSIFICATION ? MF_SQRT : MF_FRAC,
        .mf_value = 1.0, .bootstrap = !extra, .ms_kind = MS_ALL,
        .criterion = task->kind == PD_TASK_CLASSIFICATION ? CRIT_GINI : CRIT_SQUARED,
    };
    /* "entropy" and "log_loss" are one criterion under two names. */
    static const char *const cls_crit[] = {"gini", "entropy", "log_loss", NULL};
    static const char *const reg_crit[] = {"squared_error", NULL};
    int cls = task->kind == PD_TASK_CLASSIFICATION, crit = 0;
    if (params_int(&pc, params_get(params, "n_estimators"), 1, FOREST_MAX_TREES, &p.n_estimators) != 0 ||
        params_int(&pc, params_get(params, "min_samples_split"), 2, 1000000000L, &p.min_samples_split) != 0 ||
        params_int(&pc, params_get(params, "min_samples_leaf"), 1, 1000000000L, &p.min_samples_leaf) != 0 ||
        params_bool(&pc, params_get(params, "bootstrap"), &p.bootstrap) != 0 ||
        params_bool(&pc, params_get(params, "oob_score"), &p.oob_score) != 0 ||
        params_int(&pc, params_get_nonnull(params, "max_depth"), 1, 100000, &p.max_depth) != 0)
        return PD_EPARAM;
    const cJSON *it = params_get(params, "criterion");
    if (it) {
        if (params_enum(&pc, it, cls ? cls_crit : reg_crit, &crit) != 0) return PD_EPARAM;
        p.criterion = !cls ? CRIT_SQUARED : crit == 0 ? CRIT_GINI : CRIT_ENTROPY;
    }
    it = params_get(params, "max_features");
    if (it) {
        if (cJSON_IsNull(it)) p.mf_kind = MF_ALL;
        else if (cJSON_IsString(it) && strcmp(it->valuestring, "sqrt") == 0) p.mf_kind = MF_SQRT;
        else if (cJSON_IsString(it) && strcmp(it->valuestring, "log2") == 0) p.mf_kind = MF_LOG2;
        else if (cJSON_IsNumber(it)) {
            int k;
            if (parse_fraction_or_count(it, "max_features", &k, &p.mf_value, err, errlen) < 0)
                return PD_EPARAM;
            p.mf_kind = k == 1 ? MF_FRAC : MF_COUNT;
        } else {
            snprintf(err, errlen, "max_features: must be \"sqrt\", \"log2\", null or a number");
            return PD_EPARAM;
        }
    }
    it = params_get(params, "max_samples");
    if (it && !cJSON_IsNull(it)) {
        int k;
        if (!cJSON_IsNumber(it)) {
            snprintf(err, errlen, "max_samples: must be null or a number");
            return PD_EPARAM;
        }
        if (parse_fraction_or_count(it, "max_samples", &k, &p.ms_value, err, errlen) < 0)
            return PD_EPARAM;
        p.ms_kind = k == 1 ? MS_FRAC : MS_COUNT;
        if (!p.bootstrap) {
            snprintf(err, errlen, "max_samples: only allowed with bootstrap=true");
            return PD_EPARAM;
        }
    }
    if (p.oob_score && !p.bootstrap) {
        snprintf(err, errlen, "oob_score: only available with bootstrap=true");
        return PD_EPARAM;
    }
    struct forest_params *pp = malloc(sizeof *pp);
    if (pp == NULL) {
        snprintf(err, errlen, "out of memory");
        return PD_ENOMEM;
    }
    *pp = p;
    *out = pp;
    return PD_OK;
}

static int rf_params_parse(const cJSON *params, const struct pd_task *task,
                           void **out, char *err, size_t errlen)
{
    return forest_parse(0, params, task, out, err, errlen);
}

static int et_params_parse(const cJSON *params, const struct pd_task *task,
                           void **out, char *err, size_t errlen)
{
    return forest_parse(1, params, task, out, err, errlen);
}

static cJSON *forest_params_json(const void *params)
{
    const struct forest_params *p = params;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cJSON_AddNumberToObject(o, "n_estimators", (double)p->n_estimators);
    cJSON_AddStringToObject(o, "criterion", p->criterion == CRIT_GINI ? "gini"
                            : p->criterion == CRIT_ENTROPY ? "entropy" : "squared_error");
    if (p->max_depth > 0) cJSON_AddNumberToObject(o, "max_depth", (double)p->max_depth);
    else cJSON_AddNullToObject(o, "max_depth");
    cJSON_AddNumberToObject(o, "min_samples_split", (double)p->min_samples_split);
    cJSON_AddNumberToObject(o, "min_samples_leaf", (double)p->min_samples_leaf);
    switch (p->mf_kind) {
    case MF_SQRT: cJSON_AddStringToObject(o, "max_features", "sqrt"); break;
    case MF_LOG2: cJSON_AddStringToObject(o, "max_features", "log2"); break;
    case MF_ALL: cJSON_AddNullToObject(o, "max_features"); break;
    default: cJSON_AddNumberToObject(o, "max_features", p->mf_value); break;
    }
    cJSON_AddBoolToObject(o, "bootstrap", p->bootstrap);
    if (p->ms_kind == MS_ALL) cJSON_AddNullToObject(o, "max_samples");
    else cJSON_AddNumberToObject(o, "max_samples", p->ms_value);
    cJSON_AddBoolToObject(o, "oob_score", p->oob_score);
    return o;
}

static void forest_params_free(void *params) { free(params); }

/* --- fitting -------------------------------------------------------------- */

struct fit_ctx {
    const struct forest_params *p;
    size_t n, d;
    uint32_t K;                /* classes, or 1 for regression */
    int cls;
    const float *xc;           /* d * n column-major */
    const uint32_t *rank;      /* rf: d * n ranks */
    const float *uval;         /* rf: distinct values, feature j at uoff[j] */
    const size_t *uoff;
    const int32_t *yc;         /* class index per row */
    const double *yr;          /* regression target */
    const double *w;           /* data weights or NULL */
    size_t mtry, n_draw;
    uint64_t seed;
    struct tree *trees;
    uint8_t *inbag;            /* oob: n_trees * inbag_stride bytes */
    size_t inbag_stride;
    const volatile sig_atomic_t *cancel;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    long next, done;
    int status;                /* first failure, PD_OK while fine */
};

struct frame { uint32_t node, b, e, depth; };

struct scratch {
    uint32_t *idx, *part;
    double *wrow;
    uint64_t *pairs, *tmp;
    uint32_t *counts;
    double *node_c, *left_c, *right_c;
    uint32_t *feat;
    struct frame *stack;
    size_t stack_cap;
};

static void scratch_free(struct scratch *s)
{
    free(s->idx); free(s->part); free(s->wrow); free(s->pairs); free(s->tmp); free(s->counts);
    free(s->node_c); free(s->left_c); free(s->right_c); free(s->feat); free(s->stack);
    memset(s, 0, sizeof *s);
}

static int scratch_init(struct scratch *s, const struct fit_ctx *c)
{
    memset(s, 0, sizeof *s);
    size_t n = c->n;
    s->idx = malloc(n * sizeof *s->idx);
    s->part = malloc(n * sizeof *s->part);
    s->wrow = malloc(n * sizeof *s->wrow);
    if (!c->p->extra) {
        s->pairs = malloc(n * sizeof *s->pairs);
        s->tmp = malloc(n * sizeof *s->tmp);
        s->counts = malloc((2 * n + 257) * sizeof *s->counts);
    }
    s->node_c = malloc(c->K * sizeof *s->node_c);
    s->left_c = malloc(c->K * sizeof *s->left_c);
    s->right_c = malloc(c->K * sizeof *s->right_c);
    s->feat = malloc(c->d * sizeof *s->feat);
    s->stack_cap = 64;
    s->stack = malloc(s->stack_cap * sizeof *s->stack);
    if (!s->idx || !s->part || !s->wrow || (!c->p->extra && (!s->pairs || !s->tmp || !s->counts)) ||
        !s->node_c || !s->left_c || !s->right_c || !s->feat || !s->stack) {
        scratch_free(s);
        return -1;
    }
    return 0;
}

static inline double xlogx(double x) { return x > 0 ? x * log(x) : 0.0; }

struct split {
    int found;
    int32_t feature;
    float thr;
    double proxy;
};

static float midpoint(float lo, float hi)
{
    float m = (float)((double)lo + ((double)hi - (double)lo) * 0.5);
    if (!(m >= lo && m < hi)) m = lo;
    return m;
}

/* rf: exhaustive search over feature f's distinct values in the node. */
static int rf_eval(const struct fit_ctx *c, struct scratch *s, uint32_t b, uint32_t e,
                   uint32_t f, double W, double S, struct split *best)
{
    const uint32_t *rk = c->rank + (size_t)f * c->n;
    size_t m = e - b;
    uint32_t minr = UINT32_MAX, maxr = 0;
    uint64_t *pr = s->pairs;
    const uint32_t *ix = s->idx + b;
    for (size_t i = 0; i < m; i++) {
        uint32_t r = ix[i];
        /* The gather is the cost of a node: fetch ahead. */
        if (i + 16 < m) __builtin_prefetch(rk + ix[i + 16]);
        uint32_t k = rk[r];
        if (k < minr) minr = k;
        if (k > maxr) maxr = k;
        pr[i] = (uint64_t)k << 32 | r;
    }
    if (minr == maxr) return 0; /* constant in this node */
    if (minr) {
        uint64_t sub = (uint64_t)minr << 32;
        for (size_t i = 0; i < m; i++) pr[i] -= sub;
    }
    tree_sort_keys(pr, s->tmp, s->counts, m, maxr - minr + 1);

    size_t minleaf = (size_t)c->p->min_samples_leaf;
    double wl = 0, wr = W;
    double bestp = best->found ? best->proxy : -INFINITY;
    int64_t best_i = -1;
    if (c->cls) {
        uint32_t K = c->K;
        double *cl = s->left_c, *cr = s->right_c;
        memset(cl, 0, K * sizeof *cl);
        memcpy(cr, s->node_c, K * sizeof *cr);
        if (c->p->criterion == CRIT_GINI) {
            double sql = 0, sqr = 0;
            for (uint32_t k = 0; k < K; k++) sqr += cr[k] * cr[k];
            for (size_t i = 0; i + 1 < m; i++) {
                uint32_t r = (uint32_t)pr[i];
                if (i + 16 < m) {
                    __builtin_prefetch(c->yc + (uint32_t)pr[i + 16]);
                    __builtin_prefetch(s->wrow + (uint32_t)pr[i + 16]);
                }
                int32_t y = c->yc[r];
                double w = s->wrow[r];
                sql += w * (2 * cl[y] + w);
                sqr += w * (w - 2 * cr[y]);
                cl[y] += w; cr[y] -= w;
                wl += w; wr -= w;
                if ((pr[i] >> 32) == (pr[i + 1] >> 32)) continue;
                if (i + 1 < minleaf) continue;
                if (m - i - 1 < minleaf) break;
                double proxy = sql / wl + sqr / wr;
                if (proxy > bestp) { bestp = proxy; best_i = (int64_t)i; }
            }
        } else {
            for (size_t i = 0; i + 1 < m; i++) {
                uint32_t r = (uint32_t)pr[i];
                int32_t y = c->yc[r];
                double w = s->wrow[r];
                cl[y] += w; cr[y] -= w;
                wl += w; wr -= w;
                if ((pr[i] >> 32) == (pr[i + 1] >> 32)) continue;
                if (i + 1 < minleaf) continue;
                if (m - i - 1 < minleaf) break;
                double proxy = -xlogx(wl) - xlogx(wr);
                for (uint32_t k = 0; k < K; k++) proxy += xlogx(cl[k]) + xlogx(cr[k]);
                if (proxy > bestp) { bestp = proxy; best_i = (int64_t)i; }
            }
        }
    } else {
        double sl = 0, sr = S;
        for (size_t i = 0; i + 1 < m; i++) {
            uint32_t r = (uint32_t)pr[i];
            if (i + 16 < m) {
                __builtin_prefetch(c->yr + (uint32_t)pr[i + 16]);
                __builtin_prefetch(s->wrow + (uint32_t)pr[i + 16]);
            }
            double w = s->wrow[r], wy = w * c->yr[r];
            sl += wy; sr -= wy;
            wl += w; wr -= w;
            if ((pr[i] >> 32) == (pr[i + 1] >> 32)) continue;
            if (i + 1 < minleaf) continue;
            if (m - i - 1 < minleaf) break;
            double proxy = sl * sl / wl + sr * sr / wr;
            if (proxy > bestp) { bestp = proxy; best_i = (int64_t)i; }
        }
    }
    if (best_i >= 0) {
        const float *uv = c->uval + c->uoff[f];
        uint32_t lo = (uint32_t)(pr[best_i] >> 32) + minr;
        uint32_t hi = (uint32_t)(pr[best_i + 1] >> 32) + minr;
        best->found = 1;
        best->feature = (int32_t)f;
        best->thr = midpoint(uv[lo], uv[hi]);
        best->proxy = bestp;
    }
    return 1;
}

/* extratrees: one random threshold in (min, max) of feature f. */
static int et_eval(const struct fit_ctx *c, struct scratch *s, struct pd_rng *rng,
                   uint32_t b, uint32_t e, uint32_t f, double W, double S,
                   struct split *best)
{
    const float *col = c->xc + (size_t)f * c->n;
    float mn = INFINITY, mx = -INFINITY;
    for (uint32_t i = b; i < e; i++) {
        if (i + 16 < e) __builtin_prefetch(col + s->idx[i + 16]);
        float v = col[s->idx[i]];
        if (v < mn) mn = v;
        if (v > mx) mx = v;
    }
    if (!(mn < mx)) return 0;
    float thr = (float)((double)mn + ((double)mx - (double)mn) * pd_rng_uniform(rng));
    if (!(thr < mx) || !(thr >= mn)) thr = mn;

    size_t m = e - b, nl = 0, minleaf = (size_t)c->p->min_samples_leaf;
    double wl = 0, proxy;
    if (c->cls) {
        uint32_t K = c->K;
        double *cl = s->left_c;
        memset(cl, 0, K * sizeof *cl);
        for (uint32_t i = b; i < e; i++) {
            uint32_t r = s->idx[i];
            if (col[r] <= thr) { double w = s->wrow[r]; cl[c->yc[r]] += w; wl += w; nl++; }
        }
        if (nl < minleaf || m - nl < minleaf) return 1;
        double wr = W - wl;
        if (c->p->criterion == CRIT_GINI) {
            double sql = 0, sqr = 0;
            for (uint32_t k = 0; k < K; k++) {
                double r = s->node_c[k] - cl[k];
                sql += cl[k] * cl[k];
                sqr += r * r;
            }
            proxy = sql / wl + sqr / wr;
        } else {
            proxy = -xlogx(wl) - xlogx(wr);
            for (uint32_t k = 0; k < K; k++) proxy += xlogx(cl[k]) + xlogx(s->node_c[k] - cl[k]);
        }
    } else {
        double sl = 0;
        for (uint32_t i = b; i < e; i++) {
            uint32_t r = s->idx[i];
            if (col[r] <= thr) { double w = s->wrow[r]; sl += w * c->yr[r]; wl += w; nl++; }
        }
        if (nl < minleaf || m - nl < minleaf) return 1;
        double sr = S - sl, wr = W - wl;
        proxy = sl * sl / wl + sr * sr / wr;
    }
    if (!best->found || proxy > best->proxy) {
        best->found = 1;
        best->feature = (int32_t)f;
        best->thr = thr;
        best->proxy = proxy;
    }
    return 1;
}

static int push_frame(struct scratch *s, size_t *top, struct frame f)
{
    if (*top == s->stack_cap) {
        struct frame *st = realloc(s->stack, 2 * s->stack_cap * sizeof *st);
        if (st == NULL) return -1;
        s->stack = st;
        s->stack_cap *= 2;
    }
    s->stack[(*top)++] = f;
    return 0;
}

static uint64_t tree_seed(uint64_t seed, size_t t)
{
    uint64_t x = seed ^ 0x5851f42d4c957f2dULL;
    x += 0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1);
    return pd_rng_splitmix(&x);
}

/* Grow tree t into c->trees[t]. Returns PD_OK or PD_ENOMEM. */
static int grow_tree(struct fit_ctx *c, struct scratch *s, size_t t)
{
    const struct forest_params *p = c->p;
    struct pd_rng rng;
    pd_rng_seed(&rng, tree_seed(c->seed, t));
    size_t n = c->n, d = c->d;
    uint32_t K = c->K;

    /* Row weights: bootstrap counts times data weights. */
    if (p->bootstrap) {
        memset(s->wrow, 0, n * sizeof *s->wrow);
        for (size_t i = 0; i < c->n_draw; i++) s->wrow[pd_rng_below(&rng, n)] += 1.0;
        if (c->w) for (size_t i = 0; i < n; i++) s->wrow[i] *= c->w[i];
    } else {
        for (size_t i = 0; i < n; i++) s->wrow[i] = c->w ? c->w[i] : 1.0;
    }
    uint32_t m0 = 0;
    for (size_t i = 0; i < n; i++)
        if (s->wrow[i] > 0) s->idx[m0++] = (uint32_t)i;
    if (c->inbag) {
        uint8_t *bits = c->inbag + t * c->inbag_stride;
        for (uint32_t i = 0; i < m0; i++) bits[s->idx[i] >> 3] |= (uint8_t)(1u << (s->idx[i] & 7));
    }
    for (size_t j = 0; j < d; j++) s->feat[j] = (uint32_t)j;

    struct tree *tr = &c->trees[t];
    tree_init(tr, K);
    if (tree_add_node(tr) < 0) return PD_ENOMEM;
    size_t top = 0;
    if (push_frame(s, &top, (struct frame){ 0, 0, m0, 0 }) < 0) return PD_ENOMEM;

    while (top > 0) {
        struct frame fr = s->stack[--top];
        uint32_t b = fr.b, e = fr.e;
        size_t m = e - b;
        /* Node statistics. */
        double W = 0, S = 0;
        int pure;
        if (c->cls) {
            memset(s->node_c, 0, K * sizeof *s->node_c);
            for (uint32_t i = b; i < e; i++) {
                uint32_t r = s->idx[i];
                if (i + 16 < e) __builtin_prefetch(c->yc + s->idx[i + 16]);
                s->node_c[c->yc[r]] += s->wrow[r];
            }
            int nz = 0;
            for (uint32_t k = 0; k < K; k++) { W += s->node_c[k]; nz += s->node_c[k] > 0; }
            pure = nz <= 1;
        } else {
            double ymin = INFINITY, ymax = -INFINITY;
            for (uint32_t i = b; i < e; i++) {
                uint32_t r = s->idx[i];
                double y = c->yr[r];
                W += s->wrow[r];
                S += s->wrow[r] * y;
                if (y < ymin) ymin = y;
                if (y > ymax) ymax = y;
            }
            pure = !(ymin < ymax);
        }
        struct split best = { 0 };
        int leaf = pure || m < (size_t)p->min_samples_split ||
                   m < 2 * (size_t)p->min_samples_leaf ||
                   (p->max_depth > 0 && fr.depth >= (uint32_t)p->max_depth);
        if (!leaf) {
            size_t visited = 0;
            for (size_t k = 0; k < d && visited < c->mtry; k++) {
                size_t j = k + (size_t)pd_rng_below(&rng, d - k);
                uint32_t f = s->feat[j];
                s->feat[j] = s->feat[k];
                s->feat[k] = f;
                int nonconst = p->extra ? et_eval(c, s, &rng, b, e, f, W, S, &best)
                                        : rf_eval(c, s, b, e, f, W, S, &best);
                visited += (size_t)nonconst;
            }
            leaf = !best.found;
        }
        if (leaf) {
            double *v = tree_make_leaf(tr, fr.node);
            if (v == NULL) return PD_ENOMEM;
            if (!(W > 0)) /* only when every drawn row has weight 0 */
                for (uint32_t k = 0; k < K; k++) v[k] = c->cls ? 1.0 / K : 0.0;
            else if (c->cls) for (uint32_t k = 0; k < K; k++) v[k] = s->node_c[k] / W;
            else v[0] = S / W;
            continue;
        }
        /* Stable partition, x <= thr to the front: rows stay in ascending
         * order inside every node, so the per-feature gathers above walk
         * memory forwards instead of jumping about. */
        const float *col = c->xc + (size_t)best.feature * n;
        uint32_t i = b, nr = 0;
        for (uint32_t a = b; a < e; a++) {
            uint32_t row = s->idx[a];
            if (a + 16 < e) __builtin_prefetch(col + s->idx[a + 16]);
            if (col[row] <= best.thr) s->idx[i++] = row;
            else s->part[nr++] = row;
        }
        memcpy(s->idx + i, s->part, nr * sizeof *s->idx);
        int64_t l = tree_add_node(tr), r = tree_add_node(tr);
        if (l < 0 || r < 0) return PD_ENOMEM;
        struct tree_node *nd = &tr->nodes[fr.node];
        nd->feature = best.feature;
        nd->thr = best.thr;
        nd->left = (uint32_t)l;
        nd->right = (uint32_t)r;
        nd->missing_left = 0;
        if (push_frame(s, &top, (struct frame){ (uint32_t)r, i, e, fr.depth + 1 }) < 0 ||
            push_frame(s, &top, (struct frame){ (uint32_t)l, b, i, fr.depth + 1 }) < 0)
            return PD_ENOMEM;
    }
    tree_shrink(tr);
    return PD_OK;
}

static void *fit_worker(void *arg)
{
    struct fit_ctx *c = arg;
    struct scratch s;
    if (scratch_init(&s, c) < 0) {
        pthread_mutex_lock(&c->mu);
        if (c->status == PD_OK) c->status = PD_ENOMEM;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&c->mu);
        if (c->status == PD_OK && c->cancel && *c->cancel) c->status = PD_ECANCELLED;
        if (c->status != PD_OK || c->next >= c->p->n_estimators) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        long t = c->next++;
        pthread_mutex_unlock(&c->mu);
        int rc = grow_tree(c, &s, (size_t)t);
        pthread_mutex_lock(&c->mu);
        if (rc != PD_OK && c->status == PD_OK) c->status = rc;
        c->done++;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    scratch_free(&s);
    return NULL;
}

struct oob_ctx {
    const struct fit_ctx *c;
    const float *x;          /* row-major input */
    double *pred;            /* n * K sums */
    uint32_t *cnt;
};

static void oob_rows(void *arg, size_t lo, size_t hi)
{
    struct oob_ctx *o = arg;
    const struct fit_ctx *c = o->c;
    uint32_t K = c->K;
    for (size_t r = lo; r < hi; r++) {
        double *acc = o->pred + r * K;
        for (uint32_t k = 0; k < K; k++) acc[k] = 0;
        uint32_t cnt = 0;
        for (long t = 0; t < c->p->n_estimators; t++) {
            const uint8_t *bits = c->inbag + (size_t)t * c->inbag_stride;
            if (bits[r >> 3] & (1u << (r & 7))) continue;
            const double *v = tree_leaf_values(&c->trees[t], o->x + r * c->d);
            for (uint32_t k = 0; k < K; k++) acc[k] += v[k];
            cnt++;
        }
        o->cnt[r] = cnt;
    }
}

static double oob_score(const struct fit_ctx *c, const struct pd_data *train, int threads)
{
    size_t n = c->n;
    double *pred = malloc(n * c->K * sizeof *pred);
    uint32_t *cnt = malloc(n * sizeof *cnt);
    double score = NAN;
    if (pred == NULL || cnt == NULL) goto done;
    struct oob_ctx o = { c, train->x, pred, cnt };
    tree_parallel_rows(threads, n, 256, oob_rows, &o);
    size_t used = 0;
    if (c->cls) {
        size_t right = 0;
        for (size_t r = 0; r < n; r++) {
            if (cnt[r] == 0) continue;
            used++;
            uint32_t arg = 0;
            for (uint32_t k = 1; k < c->K; k++)
                if (pred[r * c->K + k] > pred[r * c->K + arg]) arg = k;
            right += (int32_t)arg == c->yc[r];
        }
        if (used) score = (double)right / (double)used;
    } else {
        double mean = 0;
        for (size_t r = 0; r < n; r++)
            if (cnt[r]) { mean += c->yr[r]; used++; }
        if (used) {
            mean /= (double)used;
            double sse = 0, sst = 0;
            for (size_t r = 0; r < n; r++) {
                if (!cnt[r]) continue;
                double e = c->yr[r] - pred[r] / cnt[r], dv = c->yr[r] - mean;
                sse += e * e;
                sst += dv * dv;
            }
            score = sst > 0 ? 1.0 - sse / sst : NAN;
        }
    }
done:
    free(pred);
    free(cnt);
    return score;
}

static void forest_model_free(void *model)
{
    struct forest_model *m = model;
    if (m == NULL) return;
    if (m->trees)
        for (uint32_t t = 0; t < m->n_trees; t++) tree_free(&m->trees[t]);
    free(m->trees);
    free(m);
}

/* Rank every feature's values (rf only); fills rank, uval, uoff. */
static int build_ranks(size_t n, size_t d, const float *xc, uint32_t *rank,
                       float *uval, size_t *uoff)
{
    uint64_t *a = malloc(n * sizeof *a), *tmp = malloc(n * sizeof *tmp);
    uint32_t *counts = malloc((2 * n + 257) * sizeof *counts);
    if (!a || !tmp || !counts) { free(a); free(tmp); free(counts); return -1; }
    size_t off = 0;
    for (size_t j = 0; j < d; j++) {
        const float *col = xc + j * n;
        for (size_t i = 0; i < n; i++) a[i] = (uint64_t)tree_float_key(col[i]) << 32 | i;
        tree_sort_keys(a, tmp, counts, n, UINT32_MAX);
        uoff[j] = off;
        uint32_t rk = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t r = (uint32_t)a[i];
            if (i > 0 && (a[i] >> 32) != (a[i - 1] >> 32)) rk++;
            if (i == 0 || (a[i] >> 32) != (a[i - 1] >> 32)) uval[off + rk] = col[r];
            rank[j * n + r] = rk;
        }
        off += (size_t)rk + 1;
    }
    uoff[d] = off;
    free(a); free(tmp); free(counts);
    return 0;
}

static size_t resolve_mtry(const struct forest_params *p, size_t d)
{
    double m;
    switch (p->mf_kind) {
    case MF_SQRT: m = floor(sqrt((double)d)); break;
    case MF_LOG2: m = floor(log2((double)d)); break;
    case MF_ALL: m = (double)d; break;
    case MF_COUNT: m = p->mf_value; break;
    default: m = floor(p->mf_value * (double)d); break;
    }
    if (m < 1) m = 1;
    return (size_t)m;
}

static int forest_fit(const void *params, const struct pd_task *task,
                      const struct pd_data *train, const struct pd_data *valid,
                      const struct pd_fit_opts *opts, void **out_model,
                      char *err, size_t errlen)
{
    const struct forest_params *p = params;
    *out_model = NULL;
    size_t n = train->n, d = train->d;
    int rc = PD_OK;
    if (n == 0 || d == 0 || n >= UINT32_MAX || d > TREE_MAX_FEATURES) {
        snprintf(err, errlen, "data: need 1..2^32-1 rows and 1..%u features", TREE_MAX_FEATURES);
        return PD_EDATA;
    }
    if ((int)task->kind != p->kind ||
        (task->kind == PD_TASK_CLASSIFICATION && task->n_classes != p->n_classes)) {
        snprintf(err, errlen, "task: differs from the one the params were parsed for");
        return PD_EPARAM;
    }
    struct fit_ctx c = { .p = p, .n = n, .d = d, .cls = task->kind == PD_TASK_CLASSIFICATION,
                         .w = train->w, .seed = opts ? opts->seed : 0,
                         .cancel = opts ? opts->cancel : NULL };
    c.K = c.cls ? (uint32_t)task->n_classes : 1;
    c.mtry = resolve_mtry(p, d);
    if (c.mtry > d) {
        snprintf(err, errlen, "max_features: %zu exceeds the %zu features", c.mtry, d);
        return PD_EPARAM;
    }
    if (p->ms_kind == MS_COUNT) {
        if (p->ms_value > (double)n) {
            snprintf(err, errlen, "max_samples: %.0f exceeds the %zu rows", p->ms_value, n);
            return PD_EPARAM;
        }
        c.n_draw = (size_t)p->ms_value;
    } else if (p->ms_kind == MS_FRAC) {
        c.n_draw = (size_t)llround(p->ms_value * (double)n);
        if (c.n_draw < 1) c.n_draw = 1;
    } else {
        c.n_draw = n;
    }

    float *xc = NULL;
    uint32_t *rank = NULL;
    float *uval = NULL;
    size_t *uoff = NULL;
    int32_t *yc = NULL;
    struct forest_model *model = NULL;
    int mutex_ok = 0;

    for (size_t i = 0; i < n; i++) {
        double y = train->y[i];
        if (c.cls ? !(y >= 0 && y < c.K && y == floor(y)) : !isfinite(y)) {
            snprintf(err, errlen, "data: bad target at row %zu", i);
            return PD_EDATA;
        }
        if (train->w && !(train->w[i] >= 0 && isfinite(train->w[i]))) {
            snprintf(err, errlen, "data: bad weight at row %zu", i);
            return PD_EDATA;
        }
    }
    if (train->w) {
        double ws = 0;
        for (size_t i = 0; i < n; i++) ws += train->w[i];
        if (!(ws > 0)) {
            snprintf(err, errlen, "data: all weights are zero");
            return PD_EDATA;
        }
    }
    xc = malloc(n * d * sizeof *xc);
    if (xc == NULL) goto nomem;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            float v = train->x[i * d + j];
            if (v != v) {
                snprintf(err, errlen, "data: missing value at row %zu, feature %zu (impute first)", i, j);
                rc = PD_EDATA;
                goto fail;
            }
            xc[j * n + i] = v;
        }
    c.xc = xc;
    if (c.cls) {
        yc = malloc(n * sizeof *yc);
        if (yc == NULL) goto nomem;
        for (size_t i = 0; i < n; i++) yc[i] = (int32_t)train->y[i];
        c.yc = yc;
    } else {
        c.yr = train->y;
    }
    if (!p->extra) {
        rank = malloc(n * d * sizeof *rank);
        uval = malloc(n * d * sizeof *uval);
        uoff = malloc((d + 1) * sizeof *uoff);
        if (!rank || !uval || !uoff || build_ranks(n, d, xc, rank, uval, uoff) < 0) goto nomem;
        c.rank = rank; c.uval = uval; c.uoff = uoff;
    }

    model = calloc(1, sizeof *model);
    if (model == NULL) goto nomem;
    model->trees = calloc((size_t)p->n_estimators, sizeof *model->trees);
    if (model->trees == NULL) goto nomem;
    model->extra = p->extra;
    model->kind = task->kind;
    model->n_classes = c.cls ? c.K : 0;
    model->value_dim = c.K;
    model->d = (uint32_t)d;
    model->n_trees = (uint32_t)p->n_estimators;
    model->oob = NAN;
    for (long t = 0; t < p->n_estimators; t++) tree_init(&model->trees[t], c.K);
    c.trees = model->trees;
    if (p->oob_score) {
        c.inbag_stride = (n + 7) / 8;
        c.inbag = calloc((size_t)p->n_estimators, c.inbag_stride);
        if (c.inbag == NULL) goto nomem;
    }

    if (pthread_mutex_init(&c.mu, NULL) != 0) goto nomem;
    if (pthread_cond_init(&c.cv, NULL) != 0) { pthread_mutex_destroy(&c.mu); goto nomem; }
    mutex_ok = 1;
    int T = opts && opts->threads > 1 ? opts->threads : 1;
    if (T > p->n_estimators) T = (int)p->n_estimators;
    if (T > 256) T = 256;
    pthread_t th[256];
    int started = 0;
    for (int t = 0; t < T; t++) {
        if (pthread_create(&th[t], NULL, fit_worker, &c) != 0) break;
        started++;
    }
    if (started == 0) {
        fit_worker(&c); /* no threads: grow everything here */
    }
    long reported = 0;
    pthread_mutex_lock(&c.mu);
    for (;;) {
        int finished = c.done >= p->n_estimators || (c.status != PD_OK && c.done >= c.next);
        long done = c.done;
        if (done > reported && opts && opts->progress) {
            pthread_mutex_unlock(&c.mu);
            for (long i = reported + 1; i <= done; i++) {
                struct pd_progress pr = { (int)i, (int)p->n_estimators, NULL, 0 };
                opts->progress(opts->progress_ctx, &pr);
            }
            pthread_mutex_lock(&c.mu);
        }
        reported = done;
        if (finished) break;
        if (c.status == PD_OK && c.cancel && *c.cancel) c.status = PD_ECANCELLED;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        if (c.done == reported) pthread_cond_timedwait(&c.cv, &c.mu, &ts);
    }
    pthread_mutex_unlock(&c.mu);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    rc = c.status;
    if (rc == PD_ECANCELLED) { snprintf(err, errlen, "cancelled"); goto fail; }
    if (rc != PD_OK) goto nomem;

    if (p->oob_score) {
        model->oob = oob_score(&c, train, opts ? opts->threads : 1);
        if (opts && opts->progress) {
            struct pd_progress pr = { (int)p->n_estimators, (int)p->n_estimators,
                                      "oob_score", model->oob };
            opts->progress(opts->progress_ctx, &pr);
        }
    }
    (void)valid;
    *out_model = model;
    model = NULL;
    rc = PD_OK;
    goto done;
nomem:
    snprintf(err, errlen, "out of memory");
    rc = PD_ENOMEM;
fail:
done:
    if (mutex_ok) { pthread_mutex_destroy(&c.mu); pthread_cond_destroy(&c.cv); }
    forest_model_free(model);
    free(c.inbag);
    free(xc); free(rank); free(uval); free(uoff); free(yc);
    return rc;
}

/* --- prediction ---------------------------------------------------------- */

struct pred_ctx {
    const struct forest_model *m;
    const float *x;
    double *out;
};

/* Rows go through in blocks, one tree at a time, so that the upper levels
 * of a tree stay in cache while a block passes through it. */
static void pred_rows(void *arg, size_t lo, size_t hi)
{
    struct pred_ctx *pc = arg;
    const struct forest_model *m = pc->m;
    uint32_t K = m->value_dim;
    double inv = 1.0 / m->n_trees;
    for (size_t r = lo; r < hi; r++)
        for (uint32_t k = 0; k < K; k++) pc->out[r * K + k] = 0;
    for (size_t b0 = lo; b0 < hi; b0 += 128) {
        size_t b1 = b0 + 128 < hi ? b0 + 128 : hi;
        for (uint32_t t = 0; t < m->n_trees; t++)
            for (size_t r = b0; r < b1; r++) {
                const double *v = tree_leaf_values(&m->trees[t], pc->x + r * m->d);
                double *o = pc->out + r * K;
                for (uint32_t k = 0; k < K; k++) o[k] += v[k];
            }
    }
    for (size_t r = lo; r < hi; r++)
        for (uint32_t k = 0; k < K; k++) pc->out[r * K + k] *= inv;
}

static int forest_predict(const void *model, const float *x, size_t n, size_t d,
                          int threads, double *out)
{
    const struct forest_model *m = model;
    if (m == NULL || d != m->d || (n && (x == NULL || out == NULL))) return PD_EDATA;
    struct pred_ctx pc = { m, x, out };
    tree_parallel_rows(threads, n, 64, pred_rows, &pc);
    return PD_OK;
}

/* --- serialization ------------------------------------------------------- */

static int forest_save(const void *model, struct pd_buf *out)
{
    const struct forest_model *m = model;
    pd_buf_put_u32(out, FOREST_MAGIC);
    pd_buf_put_u32(out, FOREST_VERSION);
    pd_buf_put_u32(out, (uint32_t)m->extra);
    pd_buf_put_u32(out, (uint32_t)m->kind);
    pd_buf_put_u32(out, m->n_classes);
    pd_buf_put_u32(out, m->value_dim);
    pd_buf_put_u32(out, m->d);
    pd_buf_put_u32(out, m->n_trees);
    pd_buf_put_f64(out, m->oob);
    for (uint32_t t = 0; t < m->n_trees; t++)
        if (tree_save(&m->trees[t], out) < 0) return PD_ENOMEM;
    return out->failed ? PD_ENOMEM : PD_OK;
}

static int forest_load(struct pd_reader *in, void **out_model, char *err, size_t errlen)
{
    *out_model = NULL;
    uint32_t magic, version, extra, kind, n_classes, dim, d, n_trees;
    double oob;
    if (pd_reader_get_u32(in, &magic) < 0 || pd_reader_get_u32(in, &version) < 0 ||
        pd_reader_get_u32(in, &extra) < 0 || pd_reader_get_u32(in, &kind) < 0 ||
        pd_reader_get_u32(in, &n_classes) < 0 || pd_reader_get_u32(in, &dim) < 0 ||
        pd_reader_get_u32(in, &d) < 0 || pd_reader_get_u32(in, &n_trees) < 0 ||
        pd_reader_get_f64(in, &oob) < 0) {
        snprintf(err, errlen, "forest model: truncated header");
        return PD_EFORMAT;
    }
    if (magic != FOREST_MAGIC || version != FOREST_VERSION) {
        snprintf(err, errlen, "forest model: not a forest model (or unknown version)");
        return PD_EFORMAT;
    }
    int cls = kind == PD_TASK_CLASSIFICATION;
    if (extra > 1 || (kind != PD_TASK_CLASSIFICATION && kind != PD_TASK_REGRESSION) ||
        (cls ? (n_classes < 2 || n_classes > TREE_MAX_VALUE_DIM || dim != n_classes)
             : (n_classes != 0 || dim != 1)) ||
        d == 0 || d > TREE_MAX_FEATURES || n_trees == 0 || n_trees > FOREST_MAX_TREES ||
        (uint64_t)n_trees * 12 > in->left) {
        snprintf(err, errlen, "forest model: inconsistent header");
        return PD_EFORMAT;
    }
    struct forest_model *m = calloc(1, sizeof *m);
    if (m == NULL) { snprintf(err, errlen, "out of memory"); return PD_ENOMEM; }
    m->trees = calloc(n_trees, sizeof *m->trees);
    if (m->trees == NULL) { free(m); snprintf(err, errlen, "out of memory"); return PD_ENOMEM; }
    m->extra = (int)extra;
    m->kind = (int)kind;
    m->n_classes = n_classes;
    m->value_dim = dim;
    m->d = d;
    m->n_trees = n_trees;
    m->oob = oob;
    for (uint32_t t = 0; t < n_trees; t++) {
        char terr[128];
        if (tree_load(&m->trees[t], in, d, dim, terr, sizeof terr) < 0) {
            snprintf(err, errlen, "forest model: tree %u: %s", t, terr);
            forest_model_free(m);
            return PD_EFORMAT;
        }
    }
    *out_model = m;
    return PD_OK;
}

double forest_model_oob_score(const void *model)
{
    return model ? ((const struct forest_model *)model)->oob : NAN;
}

size_t forest_model_n_trees(const void *model)
{
    return model ? ((const struct forest_model *)model)->n_trees : 0;
}

const struct tree *forest_model_tree(const void *model, size_t i)
{
    const struct forest_model *m = model;
    return m && i < m->n_trees ? &m->trees[i] : NULL;
}

/* See pd_family.shape. */
static void forest_shape(const void *model, size_t *inputs, size_t *outputs)
{
    const struct forest_model *m = model;
    *inputs = m->d;
    *outputs = m->kind == PD_TASK_CLASSIFICATION ? m->n_classes : 1;
}

const struct pd_family pd_family_rf = {
    .shape = forest_shape,
    .name = "rf",
    .handles_missing = 0,
    .needs_scaling = 0,
    .native_categorical = 0,
    .supports_classification = 1,
    .supports_regression = 1,
    .params_parse = rf_params_parse,
    .params_json = forest_params_json,
    .params_free = forest_params_free,
    .fit = forest_fit,
    .predict = forest_predict,
    .save = forest_save,
    .load = forest_load,
    .model_free = forest_model_free,
};

const struct pd_family pd_family_extratrees = {
    .shape = forest_shape,
    .name = "extratrees",
    .handles_missing = 0,
    .needs_scaling = 0,
    .native_categorical = 0,
    .supports_classification = 1,
    .supports_regression = 1,
    .params_parse = et_params_parse,
    .params_json = forest_params_json,
    .params_free = forest_params_free,
    .fit = forest_fit,
    .predict = forest_predict,
    .save = forest_save,
    .load = forest_load,
    .model_free = forest_model_free,
};

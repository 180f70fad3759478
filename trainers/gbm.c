/*
 * gbm.c - see gbm.h. Histogram gradient boosting.
 *
 * Fit layout: a column-major uint8 bin matrix (q[j * n + i]), one float
 * (gradient, hessian) pair per row and tree, and an index array of the
 * round's rows that every split partitions stably, so each node owns a
 * contiguous range in ascending row order. A node's histogram holds three
 * doubles per bin (gradient sum, hessian sum, row count; the count makes
 * "is this child empty" exact after subtractions) for every feature, bins
 * of feature j starting at hoff[j]; the missing bin comes last.
 *
 * Growth: candidate leaves carry their best split; depth-wise growth takes
 * them first in, first out (breadth first), leaf-wise growth (max_leaves)
 * takes the largest gain. When a node splits, the histogram of the child
 * with fewer rows is built and the other child's is the parent's minus it.
 *
 * Threads: a pool of threads - 1 workers lives for one fit; the caller's
 * thread takes tasks too. Tasks are whole features (histograms) or row
 * blocks (quantization), each writing only its own output.
 */
#include "trainers/gbm.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainers/hist.h"
#include "trainers/params.h"

#define GBM_MAGIC 0x42474450u /* "PDGB" */
#define GBM_VERSION 1u
#define GBM_MAX_ROUNDS 100000
#define GBM_BIN_SAMPLE 400000   /* rows used for quantiles */
#define GBM_SERIAL_WORK 16384   /* rows * features below which a node is built inline */

enum { OBJ_SQUARED = 0, OBJ_LOGISTIC = 1, OBJ_SOFTMAX = 2 };

struct gbm_params {
    int kind;
    int n_classes;
    long n_estimators;
    double learning_rate;
    long max_depth;
    long max_leaves;
    double min_child_weight;
    double reg_lambda;
    double reg_alpha;
    double gamma;
    double subsample;
    double colsample_bytree;
    long max_bins;
    long early_stopping_rounds;
};

struct gbm_model {
    int kind;
    uint32_t n_classes;        /* 0 for regression */
    uint32_t objective;
    uint32_t K;                /* trees per round */
    uint32_t d;
    uint32_t n_rounds;
    int32_t best_iteration;
    double *base;              /* K */
    struct tree *trees;        /* n_rounds * K, round-major */
    struct hist_bins bins;
};

/* --- parameters ---------------------------------------------------------- */

static const char *const gbm_keys[] = {
    "n_estimators", "learning_rate", "max_depth", "max_leaves",
    "min_child_weight", "reg_lambda", "reg_alpha", "gamma", "min_split_loss",
    "subsample", "colsample_bytree", "max_bins", "early_stopping_rounds", NULL
};

static int gbm_params_parse(const cJSON *params, const struct pd_task *task,
                            void **out, char *err, size_t errlen)
{
    *out = NULL;
    if (task == NULL || (task->kind == PD_TASK_CLASSIFICATION && task->n_classes < 2) ||
        (task->kind != PD_TASK_CLASSIFICATION && task->kind != PD_TASK_REGRESSION)) {
        snprintf(err, errlen, "task: unsupported task");
        return PD_EPARAM;
    }
    struct params_ctx pc = {"gbm", PARAMS_INTERVAL, err, errlen};
    if (params_check_keys(&pc, params, gbm_keys) != 0) return PD_EPARAM;
    struct gbm_params p = {
        .kind = task->kind,
        .n_classes = task->kind == PD_TASK_CLASSIFICATION ? task->n_classes : 0,
        .n_estimators = 100, .learning_rate = 0.1, .max_depth = 6, .max_leaves = 0,
        .min_child_weight = 1, .reg_lambda = 1, .reg_alpha = 0, .gamma = 0,
        .subsample = 1, .colsample_bytree = 1, .max_bins = 255,
        .early_stopping_rounds = 0,
    };
    const cJSON *gamma_it = params_get(params, "gamma");
    const cJSON *msl_it = params_get(params, "min_split_loss");
    if (params_int(&pc, params_get(params, "n_estimators"), 1, GBM_MAX_ROUNDS, &p.n_estimators) != 0 ||
        params_num(&pc, params_get(params, "learning_rate"), 0, 1, 1, 0, &p.learning_rate) != 0 ||
        params_int(&pc, params_get(params, "max_depth"), 0, 64, &p.max_depth) != 0 ||
        params_int(&pc, params_get(params, "max_leaves"), 0, 1L << 20, &p.max_leaves) != 0 ||
        params_num(&pc, params_get(params, "min_child_weight"), 0, 0, 1e300, 0, &p.min_child_weight) != 0 ||
        params_num(&pc, params_get(params, "reg_lambda"), 0, 0, 1e300, 0, &p.reg_lambda) != 0 ||
        params_num(&pc, params_get(params, "reg_alpha"), 0, 0, 1e300, 0, &p.reg_alpha) != 0 ||
        params_num(&pc, params_get(params, "subsample"), 0, 1, 1, 0, &p.subsample) != 0 ||
        params_num(&pc, params_get(params, "colsample_bytree"), 0, 1, 1, 0, &p.colsample_bytree) != 0 ||
        params_int(&pc, params_get(params, "max_bins"), 2, HIST_MAX_BINS, &p.max_bins) != 0 ||
        params_int(&pc, params_get(params, "early_stopping_rounds"), 0, GBM_MAX_ROUNDS,
                   &p.early_stopping_rounds) != 0 ||
        params_num(&pc, gamma_it, 0, 0, 1e300, 0, &p.gamma) != 0 ||
        params_num(&pc, msl_it, 0, 0, 1e300, 0, &p.gamma) != 0)
        return PD_EPARAM;
    if (gamma_it && msl_it) {
        snprintf(err, errlen, "min_split_loss: an alias of gamma; give only one");
        return PD_EPARAM;
    }
    if (p.max_leaves == 1) {
        snprintf(err, errlen, "max_leaves: must be 0 (off) or >= 2, got 1");
        return PD_EPARAM;
    }
    if (p.max_depth == 0 && p.max_leaves == 0) {
        snprintf(err, errlen, "max_depth: 0 (unlimited) needs max_leaves > 0");
        return PD_EPARAM;
    }
    struct gbm_params *pp = malloc(sizeof *pp);
    if (pp == NULL) { snprintf(err, errlen, "out of memory"); return PD_ENOMEM; }
    *pp = p;
    *out = pp;
    return PD_OK;
}

static cJSON *gbm_params_json(const void *params)
{
    const struct gbm_params *p = params;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cJSON_AddNumberToObject(o, "n_estimators", (double)p->n_estimators);
    cJSON_AddNumberToObject(o, "learning_rate", p->learning_rate);
    cJSON_AddNumberToObject(o, "max_depth", (double)p->max_depth);
    cJSON_AddNumberToObject(o, "max_leaves", (double)p->max_leaves);
    cJSON_AddNumberToObject(o, "min_child_weight", p->min_child_weight);
    cJSON_AddNumberToObject(o, "reg_lambda", p->reg_lambda);
    cJSON_AddNumberToObject(o, "reg_alpha", p->reg_alpha);
    cJSON_AddNumberToObject(o, "gamma", p->gamma);
    cJSON_AddNumberToObject(o, "subsample", p->subsample);
    cJSON_AddNumberToObject(o, "colsample_bytree", p->colsample_bytree);
    cJSON_AddNumberToObject(o, "max_bins", (double)p->max_bins);
    cJSON_AddNumberToObject(o, "early_stopping_rounds", (double)p->early_stopping_rounds);
    return o;
}

static void gbm_params_free(void *params) { free(params); }

/* --- worker pool ---------------------------------------------------------- */

struct pool {
    pthread_t th[64];
    int n;
    pthread_mutex_t mu;
    pthread_cond_t go, fin;
    void (*fn)(void *ctx, size_t task);
    void *ctx;
    size_t ntasks, next, done;
    unsigned long gen;
    int stop;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waiting threads spin this many rounds (some tens of microseconds)
 * before sleeping: node tasks come in quick succession, and a futex wake
 * costs about as much as a small node's histogram. */
#define POOL_SPIN 2000

static void pool_take(struct pool *p)
{
    /* Called with p->mu held; returns with it held. */
    while (p->next < p->ntasks) {
        size_t t = p->next++;
        void (*fn)(void *, size_t) = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, t);
        pthread_mutex_lock(&p->mu);
        if (__atomic_add_fetch(&p->done, 1, __ATOMIC_RELEASE) == p->ntasks)
            pthread_cond_broadcast(&p->fin);
    }
}

static void *pool_main(void *arg)
{
    struct pool *p = arg;
    unsigned long seen = 0;
    for (;;) {
        for (int i = 0; i < POOL_SPIN; i++) {
            if (__atomic_load_n(&p->gen, __ATOMIC_ACQUIRE) != seen ||
                __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
                break;
            cpu_relax();
        }
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->gen == seen) pthread_cond_wait(&p->go, &p->mu);
        if (p->stop) { pthread_mutex_unlock(&p->mu); break; }
        seen = p->gen;
        pool_take(p);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

static int pool_start(struct pool *p, int threads)
{
    memset(p, 0, sizeof *p);
    if (pthread_mutex_init(&p->mu, NULL) != 0) return -1;
    if (pthread_cond_init(&p->go, NULL) != 0) { pthread_mutex_destroy(&p->mu); return -1; }
    if (pthread_cond_init(&p->fin, NULL) != 0) {
        pthread_cond_destroy(&p->go);
        pthread_mutex_destroy(&p->mu);
        return -1;
    }
    int want = threads - 1;
    if (want > 64) want = 64;
    for (int i = 0; i < want; i++) {
        if (pthread_create(&p->th[i], NULL, pool_main, p) != 0) break;
        p->n++;
    }
    return 0;
}

static void pool_stop(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->fin);
    pthread_cond_destroy(&p->go);
    pthread_mutex_destroy(&p->mu);
}

/* Run fn(ctx, 0..ntasks-1) on the pool and the caller; returns when all
 * are done. inline_only: run them here, in order. */
static void pool_run(struct pool *p, void (*fn)(void *, size_t), void *ctx,
                     size_t ntasks, int inline_only)
{
    if (ntasks == 0) return;
    if (p->n == 0 || inline_only || ntasks == 1) {
        for (size_t t = 0; t < ntasks; t++) fn(ctx, t);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    p->next = 0;
    __atomic_store_n(&p->done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->gen, p->gen + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->go);
    pool_take(p);
    if (p->done < p->ntasks) {
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < POOL_SPIN; i++) {
            if (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE) >= ntasks) break;
            cpu_relax();
        }
        pthread_mutex_lock(&p->mu);
    }
    while (p->done < p->ntasks) pthread_cond_wait(&p->fin, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* --- fitting -------------------------------------------------------------- */

struct gpair { float g, h; };

struct cand {              /* a leaf that may be split */
    uint32_t node;         /* tree node index */
    uint32_t depth;
    double *hist;
    /* best split */
    int32_t feature;
    uint32_t bin;
    uint32_t dleft;
    double gain;
    double GL, HL, CL;     /* left child sums */
};

struct ninfo {             /* per tree node, while growing */
    uint32_t b, e;         /* rows idx[b..e) */
    double G, H, C;
    uint32_t bin;          /* split bin (internal nodes) */
};

struct fsplit {             /* best cut of one feature */
    double gain;            /* score(L) + score(R) - score(parent); 0: none */
    uint32_t bin, dleft;
    double GL, HL, CL;
};

struct fit {
    const struct gbm_params *p;
    struct pool pool;
    size_t n, d;
    const uint8_t *q;          /* d * n bins, column-major */
    const struct hist_bins *hb;
    size_t *hoff;              /* d + 1, in bins */
    size_t total_bins;
    const struct gpair *gh;    /* current tree's pairs */
    uint32_t *idx, *idx_tmp;
    uint32_t *fset;            /* active features of this tree */
    size_t n_fset;
    /* histogram buffers, free list */
    double **hfree;
    size_t n_hfree, cap_hfree;
    double **hall;
    size_t n_hall, cap_hall;
    /* growth state */
    struct cand *cands;
    size_t n_cands, cap_cands;
    struct ninfo *info;
    size_t cap_info;
    /* the node task: histogram of `small` over idx[tb..te), `big` -=
     * it, then each feature's best cut for whichever of them asks */
    uint32_t tb, te;
    double *thist, *tbig;
    const struct ninfo *small_info, *big_info;   /* NULL: no search */
    struct fsplit *fs_small, *fs_big;            /* per fset position */
};

static double *hist_get(struct fit *f)
{
    if (f->n_hfree) return f->hfree[--f->n_hfree];
    if (f->n_hall == f->cap_hall) {
        size_t cap = f->cap_hall ? 2 * f->cap_hall : 16;
        double **a = realloc(f->hall, cap * sizeof *a);
        double **b = a ? realloc(f->hfree, cap * sizeof *b) : NULL;
        if (a) f->hall = a;
        if (b) f->hfree = b;
        if (!a || !b) return NULL;
        f->cap_hall = f->cap_hfree = cap;
    }
    double *h = malloc(f->total_bins * 3 * sizeof *h);
    if (h == NULL) return NULL;
    f->hall[f->n_hall++] = h;
    return h;
}

static void hist_put(struct fit *f, double *h)
{
    if (h) f->hfree[f->n_hfree++] = h;
}

static void feature_split(const struct fit *f, const double *hist, const struct ninfo *ni,
                          uint32_t j, struct fsplit *out);

/* Histogram of feature j for the small node, the big one's by
 * subtraction, then the split search of both, as the task asks. */
static void feature_done(struct fit *f, size_t pos, uint32_t j)
{
    size_t lo = 3 * f->hoff[j], hi = 3 * f->hoff[j + 1];
    if (f->tbig) {
        double *big = f->tbig;
        const double *sm = f->thist;
        for (size_t i = lo; i < hi; i++) big[i] -= sm[i];
    }
    if (f->small_info) feature_split(f, f->thist, f->small_info, j, &f->fs_small[pos]);
    if (f->big_info) feature_split(f, f->tbig, f->big_info, j, &f->fs_big[pos]);
}

/* One task: features fset[2t] and fset[2t+1], histograms built in one
 * pass over the rows (sharing the loads of row index and gradients). */
static void build_task(void *arg, size_t t)
{
    struct fit *f = arg;
    const uint32_t *idx = f->idx;
    const struct gpair *gh = f->gh;
    uint32_t j0 = f->fset[2 * t];
    double *h0 = f->thist + 3 * f->hoff[j0];
    memset(h0, 0, (size_t)(f->hb->n_bins[j0] + 1) * 3 * sizeof *h0);
    const uint8_t *c0 = f->q + (size_t)j0 * f->n;
    if (2 * t + 1 < f->n_fset) {
        uint32_t j1 = f->fset[2 * t + 1];
        double *h1 = f->thist + 3 * f->hoff[j1];
        memset(h1, 0, (size_t)(f->hb->n_bins[j1] + 1) * 3 * sizeof *h1);
        const uint8_t *c1 = f->q + (size_t)j1 * f->n;
        for (uint32_t i = f->tb; i < f->te; i++) {
            uint32_t r = idx[i];
            double g = gh[r].g, h = gh[r].h;
            double *a = h0 + 3 * (size_t)c0[r], *b = h1 + 3 * (size_t)c1[r];
            a[0] += g; a[1] += h; a[2] += 1.0;
            b[0] += g; b[1] += h; b[2] += 1.0;
        }
        feature_done(f, 2 * t, j0);
        feature_done(f, 2 * t + 1, j1);
    } else {
        for (uint32_t i = f->tb; i < f->te; i++) {
            uint32_t r = idx[i];
            double *a = h0 + 3 * (size_t)c0[r];
            a[0] += gh[r].g; a[1] += gh[r].h; a[2] += 1.0;
        }
        feature_done(f, 2 * t, j0);
    }
}

static inline double thr_l1(double g, double alpha)
{
    if (g > alpha) return g - alpha;
    if (g < -alpha) return g + alpha;
    return 0.0;
}

static inline double score(const struct gbm_params *p, double G, double H)
{
    double den = H + p->reg_lambda;
    if (!(den > 0)) return 0.0;
    double t = thr_l1(G, p->reg_alpha);
    return t * t / den;
}

static double leaf_value(const struct gbm_params *p, double G, double H)
{
    double den = H + p->reg_lambda;
    if (!(den > 0)) return 0.0;
    return -thr_l1(G, p->reg_alpha) / den * p->learning_rate;
}

/* Best cut of feature j for a node with totals ni, from its histogram.
 * Row counts are exact in doubles (sums and differences of whole numbers),
 * so "cl >= 1 && cr >= 1" rejects empty sides whatever the rounding of the
 * gradient sums. */
static void feature_split(const struct fit *f, const double *hist, const struct ninfo *ni,
                          uint32_t j, struct fsplit *out)
{
    const struct gbm_params *p = f->p;
    const double mcw = p->min_child_weight, lambda = p->reg_lambda;
    const int l1 = p->reg_alpha > 0;
    const double G = ni->G, H = ni->H, C = ni->C;
    const double parent = score(p, G, H);
    uint32_t nb = f->hb->n_bins[j];
    const double *h = hist + 3 * f->hoff[j];
    const double Gm = h[3 * nb], Hm = h[3 * nb + 1], Cm = h[3 * nb + 2];
    const int dirs = Cm > 0 ? 2 : 1;
    double GL = 0, HL = 0, CL = 0, best = 0;
    out->gain = 0;
    for (uint32_t b = 0; b < nb; b++) {
        /* An empty bin repeats the previous cut (ties keep the lower
         * threshold, as XGBoost does). */
        if (h[3 * b + 2] == 0) continue;
        GL += h[3 * b]; HL += h[3 * b + 1]; CL += h[3 * b + 2];
        for (int dir = 0; dir < dirs; dir++) {
            /* dir 0: missing rows go right; dir 1: they go left. */
            double gl = dir ? GL + Gm : GL, hl = dir ? HL + Hm : HL;
            double cl = dir ? CL + Cm : CL;
            double gr = G - gl, hr = H - hl, cr = C - cl;
            if (cl < 1 || cr < 1 || hl < mcw || hr < mcw ||
                !(hl + lambda > 0) || !(hr + lambda > 0))
                continue;
            double gain = l1 ? score(p, gl, hl) + score(p, gr, hr)
                             : gl * gl / (hl + lambda) + gr * gr / (hr + lambda);
            if (gain - parent > best) {
                best = gain - parent;
                out->gain = best;
                out->bin = b;
                /* With no missing rows seen, NaN follows the heavier side. */
                out->dleft = dir == 1 ? 1 : (Cm == 0 ? hl >= hr : 0);
                out->GL = gl; out->HL = hl; out->CL = cl;
            }
        }
    }
}

/* The best of the per-feature cuts, first feature first on ties;
 * c->gain = 0 when there is none worth taking (gamma). */
static void pick_split(const struct fit *f, struct cand *c, const struct fsplit *fs)
{
    double best = 0;
    c->gain = 0;
    c->feature = -1;
    for (size_t t = 0; t < f->n_fset; t++) {
        if (!(fs[t].gain > best)) continue;
        best = fs[t].gain;
        c->feature = (int32_t)f->fset[t];
        c->bin = fs[t].bin;
        c->dleft = fs[t].dleft;
        c->GL = fs[t].GL; c->HL = fs[t].HL; c->CL = fs[t].CL;
    }
    c->gain = best;
    if (c->feature < 0 || !(best > f->p->gamma) || !(best > 1e-12)) c->gain = 0;
}

/* Build the histogram of rows idx[b..e) into small; when big is given it
 * holds the parent's histogram and becomes the sibling's. Searches the
 * nodes whose info is not NULL (results in f->fs_small / fs_big). */
static void node_task(struct fit *f, double *small, double *big, uint32_t b, uint32_t e,
                      const struct ninfo *small_info, const struct ninfo *big_info)
{
    f->tb = b;
    f->te = e;
    f->thist = small;
    f->tbig = big;
    f->small_info = small_info;
    f->big_info = big_info;
    int inline_only = (size_t)(e - b) * f->n_fset < GBM_SERIAL_WORK;
    pool_run(&f->pool, build_task, f, (f->n_fset + 1) / 2, inline_only);
}

static int ensure_info(struct fit *f, size_t n_nodes)
{
    if (n_nodes <= f->cap_info) return 0;
    size_t cap = f->cap_info ? f->cap_info : 64;
    while (cap < n_nodes) cap *= 2;
    struct ninfo *ni = realloc(f->info, cap * sizeof *ni);
    if (ni == NULL) return -1;
    f->info = ni;
    f->cap_info = cap;
    return 0;
}

static int push_cand(struct fit *f, struct cand c)
{
    if (f->n_cands == f->cap_cands) {
        size_t cap = f->cap_cands ? 2 * f->cap_cands : 64;
        struct cand *a = realloc(f->cands, cap * sizeof *a);
        if (a == NULL) return -1;
        f->cands = a;
        f->cap_cands = cap;
    }
    f->cands[f->n_cands++] = c;
    return 0;
}

static int can_split(const struct fit *f, uint32_t depth, const struct ninfo *ni)
{
    const struct gbm_params *p = f->p;
    if (p->max_depth > 0 && depth >= (uint32_t)p->max_depth) return 0;
    return ni->C >= 2 && ni->H >= 2 * p->min_child_weight;
}

static inline int goes_left(const struct fit *f, uint32_t j, uint32_t bin, uint32_t dleft,
                            uint32_t r)
{
    uint8_t v = f->q[(size_t)j * f->n + r];
    if (v == f->hb->n_bins[j]) return (int)dleft;
    return v <= bin;
}

/* Grow one tree over rows idx[0..m) (the pairs in f->gh) into *tr. */
static int grow(struct fit *f, struct tree *tr, uint32_t m)
{
    const struct gbm_params *p = f->p;
    tree_init(tr, 1);
    f->n_cands = 0;
    if (tree_add_node(tr) < 0 || ensure_info(f, 1) < 0) return PD_ENOMEM;
    struct ninfo *ri = &f->info[0];
    ri->b = 0;
    ri->e = m;
    ri->G = ri->H = 0;
    ri->C = m;
    for (uint32_t i = 0; i < m; i++) { ri->G += f->gh[f->idx[i]].g; ri->H += f->gh[f->idx[i]].h; }
    if (can_split(f, 0, ri)) {
        struct cand c = { .node = 0, .depth = 0, .hist = hist_get(f) };
        if (c.hist == NULL) return PD_ENOMEM;
        node_task(f, c.hist, NULL, 0, m, ri, NULL);
        pick_split(f, &c, f->fs_small);
        if (c.gain > 0) { if (push_cand(f, c) < 0) return PD_ENOMEM; }
        else hist_put(f, c.hist);
    }
    size_t head = 0;
    uint32_t n_leaves = 1;
    int lossguide = p->max_leaves > 0;
    while (head < f->n_cands) {
        if (p->max_leaves > 0 && n_leaves >= (uint32_t)p->max_leaves) break;
        size_t pick = head;
        if (lossguide)
            for (size_t i = head + 1; i < f->n_cands; i++)
                if (f->cands[i].gain > f->cands[pick].gain) pick = i;
        struct cand c = f->cands[pick];
        f->cands[pick] = f->cands[head];
        f->cands[head++] = c;

        /* Stable partition of the node's rows. */
        struct ninfo pi = f->info[c.node];
        uint32_t nl = pi.b, nr = 0;
        {
            const uint8_t *col = f->q + (size_t)c.feature * f->n;
            const uint32_t miss = f->hb->n_bins[c.feature], bin = c.bin;
            const int dleft = (int)c.dleft;
            uint32_t *idx = f->idx, *tmp = f->idx_tmp;
            for (uint32_t i = pi.b; i < pi.e; i++) {
                uint32_t r = idx[i];
                uint32_t v = col[r];
                /* Branch-free: write both, advance one (nl <= i). */
                uint32_t go = v == miss ? (uint32_t)dleft : (uint32_t)(v <= bin);
                idx[nl] = r;
                tmp[nr] = r;
                nl += go;
                nr += go ^ 1u;
            }
            memcpy(idx + nl, tmp, nr * sizeof *idx);
        }

        int64_t l = tree_add_node(tr), r = tree_add_node(tr);
        if (l < 0 || r < 0 || ensure_info(f, tr->n_nodes) < 0) { hist_put(f, c.hist); return PD_ENOMEM; }
        struct tree_node *nd = &tr->nodes[c.node];
        nd->feature = c.feature;
        nd->thr = hist_threshold(f->hb, (size_t)c.feature, c.bin);
        nd->left = (uint32_t)l;
        nd->right = (uint32_t)r;
        nd->missing_left = c.dleft;
        f->info[c.node].bin = c.bin;
        struct ninfo *li = &f->info[l], *rj = &f->info[r];
        *li = (struct ninfo){ .b = pi.b, .e = nl, .G = c.GL, .H = c.HL, .C = c.CL };
        *rj = (struct ninfo){ .b = nl, .e = pi.e, .G = pi.G - c.GL, .H = pi.H - c.HL,
                              .C = pi.C - c.CL };
        n_leaves++;

        uint32_t depth = c.depth + 1;
        int sl = can_split(f, depth, li), sr = can_split(f, depth, rj);
        if (!sl && !sr) { hist_put(f, c.hist); continue; }
        int left_small = (nl - pi.b) <= (pi.e - nl);
        struct cand cs = { .node = (uint32_t)(left_small ? l : r), .depth = depth };
        struct cand cb = { .node = (uint32_t)(left_small ? r : l), .depth = depth };
        cs.hist = hist_get(f);
        if (cs.hist == NULL) { hist_put(f, c.hist); return PD_ENOMEM; }
        const struct ninfo *si = &f->info[cs.node], *bi = &f->info[cb.node];
        int s_ok = left_small ? sl : sr, b_ok = left_small ? sr : sl;
        cb.hist = c.hist;
        node_task(f, cs.hist, cb.hist, si->b, si->e, s_ok ? si : NULL, b_ok ? bi : NULL);
        if (s_ok) pick_split(f, &cs, f->fs_small);
        if (b_ok) pick_split(f, &cb, f->fs_big);
        struct cand *both[2] = { left_small ? &cs : &cb, left_small ? &cb : &cs };
        int ok[2] = { sl, sr };
        for (int k = 0; k < 2; k++) {
            struct cand *x = both[k];
            if (ok[k] && x->gain > 0) {
                if (push_cand(f, *x) < 0) { hist_put(f, x->hist); return PD_ENOMEM; }
            } else {
                hist_put(f, x->hist);
            }
        }
    }
    for (size_t i = head; i < f->n_cands; i++) hist_put(f, f->cands[i].hist);
    f->n_cands = 0;
    /* Leaves: every node still marked as one. */
    for (uint32_t i = 0; i < tr->n_nodes; i++) {
        if (tr->nodes[i].feature >= 0) continue;
        double *v = tree_make_leaf(tr, i);
        if (v == NULL) return PD_ENOMEM;
        v[0] = leaf_value(p, f->info[i].G, f->info[i].H);
    }
    tree_shrink(tr);
    return PD_OK;
}

/* Leaf of row r through the bins of the tree just grown (f->info[].bin). */
static uint32_t binned_leaf(const struct fit *f, const struct tree *tr, uint32_t r)
{
    uint32_t i = 0;
    while (tr->nodes[i].feature >= 0) {
        const struct tree_node *nd = &tr->nodes[i];
        i = goes_left(f, (uint32_t)nd->feature, f->info[i].bin, nd->missing_left, r)
            ? nd->left : nd->right;
    }
    return i;
}

struct quant_ctx {
    const struct hist_bins *hb;
    const float *x;
    size_t n;
    uint8_t *q;
    size_t blocks;
};

static void quant_task(void *arg, size_t t)
{
    struct quant_ctx *qc = arg;
    size_t lo = qc->n * t / qc->blocks, hi = qc->n * (t + 1) / qc->blocks;
    hist_quantize(qc->hb, qc->x, qc->n, lo, hi, qc->q);
}

static double sigmoid(double m) { return 1.0 / (1.0 + exp(-m)); }

/* Gradients of all K outputs for rows [lo, hi) from margins (n * K);
 * gh holds K blocks of n pairs. */
static void gradients(int obj, uint32_t K, size_t n, size_t lo, size_t hi,
                      const double *margin, const double *y, const double *w,
                      struct gpair *gh)
{
    for (size_t i = lo; i < hi; i++) {
        double wi = w ? w[i] : 1.0;
        const double *mi = margin + i * K;
        if (obj == OBJ_SQUARED) {
            gh[i].g = (float)(wi * (mi[0] - y[i]));
            gh[i].h = (float)wi;
        } else if (obj == OBJ_LOGISTIC) {
            double pr = sigmoid(mi[0]);
            gh[i].g = (float)(wi * (pr - y[i]));
            gh[i].h = (float)(wi * fmax(pr * (1 - pr), 1e-16));
        } else {
            double mx = mi[0], s = 0;
            for (uint32_t k = 1; k < K; k++) if (mi[k] > mx) mx = mi[k];
            for (uint32_t k = 0; k < K; k++) s += exp(mi[k] - mx);
            for (uint32_t k = 0; k < K; k++) {
                double pr = exp(mi[k] - mx) / s;
                double t = (double)((uint32_t)y[i] == k);
                gh[k * n + i].g = (float)(wi * (pr - t));
                gh[k * n + i].h = (float)(wi * fmax(pr * (1 - pr), 1e-16));
            }
        }
    }
}

/* Weighted loss sum and weight sum over rows [lo, hi) of margins (n * K):
 * squared error or logloss. */
static void loss_sum(int obj, uint32_t K, size_t lo, size_t hi, const double *margin,
                     const double *y, const double *w, double *sum, double *wsum)
{
    double s = 0, ws = 0;
    for (size_t i = lo; i < hi; i++) {
        double wi = w ? w[i] : 1.0, l;
        const double *mi = margin + i * K;
        if (obj == OBJ_SQUARED) {
            double e = mi[0] - y[i];
            l = e * e;
        } else if (obj == OBJ_LOGISTIC) {
            /* log(1 + e^m) - y m, stably */
            double m = mi[0];
            l = (m > 0 ? m + log1p(exp(-m)) : log1p(exp(m))) - y[i] * m;
        } else {
            double mx = mi[0], s2 = 0;
            for (uint32_t k = 1; k < K; k++) if (mi[k] > mx) mx = mi[k];
            for (uint32_t k = 0; k < K; k++) s2 += exp(mi[k] - mx);
            l = mx + log(s2) - mi[(uint32_t)y[i]];
        }
        s += wi * l;
        ws += wi;
    }
    *sum = s;
    *wsum = ws;
}

/* Row-block tasks for gradients and losses. The blocks depend on n only,
 * never on the thread count, so sums come out the same on any pool. */
#define GBM_ROW_BLOCKS 16

struct rows_ctx {
    int obj;
    uint32_t K;
    size_t n;
    const double *margin, *y, *w;
    struct gpair *gh;            /* NULL: compute losses */
    double sum[GBM_ROW_BLOCKS], wsum[GBM_ROW_BLOCKS];
};

static void rows_task(void *arg, size_t t)
{
    struct rows_ctx *rc = arg;
    size_t lo = rc->n * t / GBM_ROW_BLOCKS, hi = rc->n * (t + 1) / GBM_ROW_BLOCKS;
    if (rc->gh) gradients(rc->obj, rc->K, rc->n, lo, hi, rc->margin, rc->y, rc->w, rc->gh);
    else loss_sum(rc->obj, rc->K, lo, hi, rc->margin, rc->y, rc->w, &rc->sum[t], &rc->wsum[t]);
}

static double mean_loss(struct pool *p, int obj, uint32_t K, size_t n, const double *margin,
                        const double *y, const double *w)
{
    struct rows_ctx rc = { obj, K, n, margin, y, w, NULL, { 0 }, { 0 } };
    pool_run(p, rows_task, &rc, GBM_ROW_BLOCKS, n < 4096);
    double s = 0, ws = 0;
    for (int t = 0; t < GBM_ROW_BLOCKS; t++) { s += rc.sum[t]; ws += rc.wsum[t]; }
    return ws > 0 ? s / ws : 0.0;
}

static void gbm_model_free(void *model)
{
    struct gbm_model *m = model;
    if (m == NULL) return;
    if (m->trees)
        for (size_t t = 0; t < (size_t)m->n_rounds * m->K; t++) tree_free(&m->trees[t]);
    free(m->trees);
    free(m->base);
    hist_bins_free(&m->bins);
    free(m);
}

static int check_data(const struct pd_data *dt, const struct pd_task *task, const char *what,
                      char *err, size_t errlen)
{
    for (size_t i = 0; i < dt->n; i++) {
        double y = dt->y[i];
        if (task->kind == PD_TASK_CLASSIFICATION
                ? !(y >= 0 && y < task->n_classes && y == floor(y)) : !isfinite(y)) {
            snprintf(err, errlen, "%s: bad target at row %zu", what, i);
            return -1;
        }
        if (dt->w && !(dt->w[i] >= 0 && isfinite(dt->w[i]))) {
            snprintf(err, errlen, "%s: bad weight at row %zu", what, i);
            return -1;
        }
    }
    return 0;
}

static int gbm_fit(const void *params, const struct pd_task *task,
                   const struct pd_data *train, const struct pd_data *valid,
                   const struct pd_fit_opts *opts, void **out_model,
                   char *err, size_t errlen)
{
    const struct gbm_params *p = params;
    *out_model = NULL;
    size_t n = train->n, d = train->d;
    if (n == 0 || d == 0 || n >= UINT32_MAX || d > TREE_MAX_FEATURES) {
        snprintf(err, errlen, "data: need 1..2^32-1 rows and 1..%u features", TREE_MAX_FEATURES);
        return PD_EDATA;
    }
    if ((int)task->kind != p->kind ||
        (task->kind == PD_TASK_CLASSIFICATION && task->n_classes != p->n_classes)) {
        snprintf(err, errlen, "task: differs from the one the params were parsed for");
        return PD_EPARAM;
    }
    if (check_data(train, task, "train", err, errlen) < 0) return PD_EDATA;
    if (valid && valid->n > 0) {
        if (valid->d != d) {
            snprintf(err, errlen, "valid: has %zu features, train has %zu", valid->d, d);
            return PD_EDATA;
        }
        if (check_data(valid, task, "valid", err, errlen) < 0) return PD_EDATA;
    } else {
        valid = NULL;
    }

    int rc = PD_OK;
    int obj = task->kind == PD_TASK_REGRESSION ? OBJ_SQUARED
            : task->n_classes == 2 ? OBJ_LOGISTIC : OBJ_SOFTMAX;
    uint32_t K = obj == OBJ_SOFTMAX ? (uint32_t)task->n_classes : 1;
    int threads = opts && opts->threads > 1 ? opts->threads : 1;
    struct pd_rng rng;
    pd_rng_seed(&rng, opts ? opts->seed : 0);

    struct fit f = { .p = p, .n = n, .d = d };
    struct gbm_model *model = NULL;
    uint8_t *q = NULL;
    struct gpair *gh = NULL;
    double *margin = NULL, *vmargin = NULL;
    uint32_t *rows = NULL;
    uint32_t *all_features = NULL;
    int pool_ok = 0;

    model = calloc(1, sizeof *model);
    if (model == NULL) goto nomem;
    model->kind = task->kind;
    model->n_classes = task->kind == PD_TASK_CLASSIFICATION ? (uint32_t)task->n_classes : 0;
    model->objective = (uint32_t)obj;
    model->K = K;
    model->d = (uint32_t)d;
    model->best_iteration = -1;
    model->base = calloc(K, sizeof *model->base);
    model->trees = calloc((size_t)p->n_estimators * K, sizeof *model->trees);
    if (!model->base || !model->trees) goto nomem;

    /* Bins and the quantized matrix. */
    if (hist_bins_fit(&model->bins, train->x, n, d, (int)p->max_bins, GBM_BIN_SAMPLE) < 0)
        goto nomem;
    f.hb = &model->bins;
    if (pool_start(&f.pool, threads) < 0) goto nomem;
    pool_ok = 1;
    q = malloc(n * d);
    if (q == NULL) goto nomem;
    {
        struct quant_ctx qc = { f.hb, train->x, n, q, (size_t)threads * 4 };
        if (qc.blocks > n) qc.blocks = n;
        pool_run(&f.pool, quant_task, &qc, qc.blocks, n * d < 65536);
    }
    f.q = q;
    f.hoff = malloc((d + 1) * sizeof *f.hoff);
    if (f.hoff == NULL) goto nomem;
    f.hoff[0] = 0;
    for (size_t j = 0; j < d; j++) f.hoff[j + 1] = f.hoff[j] + f.hb->n_bins[j] + 1;
    f.total_bins = f.hoff[d];

    /* Prior. */
    {
        double ws = 0, *cnt = calloc(K > 1 ? K : 1, sizeof *cnt), ys = 0;
        if (cnt == NULL) goto nomem;
        for (size_t i = 0; i < n; i++) {
            double wi = train->w ? train->w[i] : 1.0;
            ws += wi;
            ys += wi * train->y[i];
            if (obj == OBJ_SOFTMAX) cnt[(uint32_t)train->y[i]] += wi;
        }
        if (!(ws > 0)) { free(cnt); snprintf(err, errlen, "train: all weights are zero"); rc = PD_EDATA; goto fail; }
        if (obj == OBJ_SQUARED) model->base[0] = ys / ws;
        else if (obj == OBJ_LOGISTIC) {
            double pr = fmin(fmax(ys / ws, 1e-6), 1 - 1e-6);
            model->base[0] = log(pr / (1 - pr));
        } else {
            for (uint32_t k = 0; k < K; k++) model->base[k] = log(fmax(cnt[k] / ws, 1e-6));
        }
        free(cnt);
    }

    gh = malloc(n * K * sizeof *gh);
    margin = malloc(n * K * sizeof *margin);
    rows = malloc(n * sizeof *rows);
    f.idx = malloc(n * sizeof *f.idx);
    f.idx_tmp = malloc(n * sizeof *f.idx_tmp);
    f.fset = malloc(d * sizeof *f.fset);
    f.fs_small = malloc(d * sizeof *f.fs_small);
    f.fs_big = malloc(d * sizeof *f.fs_big);
    all_features = malloc(d * sizeof *all_features);
    if (!gh || !margin || !rows || !f.idx || !f.idx_tmp || !f.fset || !f.fs_small || !f.fs_big || !all_features) goto nomem;
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < K; k++) margin[i * K + k] = model->base[k];
    for (size_t j = 0; j < d; j++) all_features[j] = (uint32_t)j;
    if (valid) {
        vmargin = malloc(valid->n * K * sizeof *vmargin);
        if (vmargin == NULL) goto nomem;
        for (size_t i = 0; i < valid->n; i++)
            for (uint32_t k = 0; k < K; k++) vmargin[i * K + k] = model->base[k];
    }

    size_t ncol = (size_t)llround(p->colsample_bytree * (double)d);
    if (ncol < 1) ncol = 1;
    if (ncol > d) ncol = d;
    double best_loss = INFINITY;
    long best_round = -1;
    const char *metric = valid ? (obj == OBJ_SQUARED ? "valid_mse" : "valid_logloss") : "train_loss";
    long round;
    for (round = 0; round < p->n_estimators; round++) {
        if (opts && opts->cancel && *opts->cancel) {
            snprintf(err, errlen, "cancelled");
            rc = PD_ECANCELLED;
            goto fail;
        }
        {
            struct rows_ctx gc = { obj, K, n, margin, train->y, train->w, gh, { 0 }, { 0 } };
            pool_run(&f.pool, rows_task, &gc, GBM_ROW_BLOCKS, n < 4096);
        }
        /* Row sample of this round. */
        uint32_t m = 0;
        if (p->subsample < 1.0) {
            for (size_t i = 0; i < n; i++)
                if (pd_rng_uniform(&rng) < p->subsample) rows[m++] = (uint32_t)i;
            if (m == 0) rows[m++] = (uint32_t)pd_rng_below(&rng, n);
        } else {
            for (size_t i = 0; i < n; i++) rows[i] = (uint32_t)i;
            m = (uint32_t)n;
        }
        for (uint32_t k = 0; k < K; k++) {
            /* Column sample of this tree (kept in ascending order). */
            if (ncol < d) {
                memcpy(f.fset, all_features, d * sizeof *f.fset);
                for (size_t t = 0; t < ncol; t++) {
                    size_t j = t + (size_t)pd_rng_below(&rng, d - t);
                    uint32_t tmp = f.fset[t]; f.fset[t] = f.fset[j]; f.fset[j] = tmp;
                }
                /* insertion sort the chosen few */
                for (size_t a = 1; a < ncol; a++) {
                    uint32_t v = f.fset[a];
                    size_t b = a;
                    while (b > 0 && f.fset[b - 1] > v) { f.fset[b] = f.fset[b - 1]; b--; }
                    f.fset[b] = v;
                }
            } else {
                memcpy(f.fset, all_features, d * sizeof *f.fset);
            }
            f.n_fset = ncol;
            memcpy(f.idx, rows, m * sizeof *f.idx);
            f.gh = gh + (size_t)k * n;
            struct tree *tr = &model->trees[(size_t)round * K + k];
            model->n_rounds = (uint32_t)round + 1; /* so that model_free frees it */
            int grc = grow(&f, tr, m);
            if (grc != PD_OK) goto nomem;
            /* Training margins. */
            if (m == n) {
                for (uint32_t i = 0; i < tr->n_nodes; i++) {
                    if (tr->nodes[i].feature >= 0) continue;
                    double v = tr->values[tr->nodes[i].left];
                    for (uint32_t a = f.info[i].b; a < f.info[i].e; a++)
                        margin[(size_t)f.idx[a] * K + k] += v;
                }
            } else {
                for (size_t i = 0; i < n; i++) {
                    uint32_t leaf = binned_leaf(&f, tr, (uint32_t)i);
                    margin[i * K + k] += tr->values[tr->nodes[leaf].left];
                }
            }
            if (valid)
                for (size_t i = 0; i < valid->n; i++)
                    vmargin[i * K + k] += tree_leaf_values(tr, valid->x + i * d)[0];
        }
        /* The training loss only feeds progress reports. */
        double lv = valid ? mean_loss(&f.pool, obj, K, valid->n, vmargin, valid->y, valid->w)
                  : opts && opts->progress ? mean_loss(&f.pool, obj, K, n, margin, train->y, train->w)
                  : NAN;
        if (opts && opts->progress) {
            struct pd_progress pr = { (int)round + 1, (int)p->n_estimators, metric, lv };
            opts->progress(opts->progress_ctx, &pr);
        }
        if (valid && p->early_stopping_rounds > 0) {
            if (lv < best_loss) { best_loss = lv; best_round = round; }
            else if (round - best_round >= p->early_stopping_rounds) break;
        }
    }
    if (valid && p->early_stopping_rounds > 0 && best_round >= 0) {
        for (size_t t = (size_t)(best_round + 1) * K; t < (size_t)model->n_rounds * K; t++)
            tree_free(&model->trees[t]);
        model->n_rounds = (uint32_t)best_round + 1;
        model->best_iteration = (int32_t)best_round;
        if (opts && opts->progress) {
            struct pd_progress pr = { (int)model->n_rounds, (int)p->n_estimators,
                                      "best_iteration", (double)best_round };
            opts->progress(opts->progress_ctx, &pr);
        }
    } else {
        model->best_iteration = (int32_t)model->n_rounds - 1;
    }
    *out_model = model;
    model = NULL;
    rc = PD_OK;
    goto done;
nomem:
    snprintf(err, errlen, "out of memory");
    rc = PD_ENOMEM;
fail:
done:
    if (pool_ok) pool_stop(&f.pool);
    for (size_t i = 0; i < f.n_hall; i++) free(f.hall[i]);
    free(f.hall); free(f.hfree); free(f.cands); free(f.info);
    free(f.hoff); free(f.idx); free(f.idx_tmp); free(f.fset);
    free(f.fs_small); free(f.fs_big);
    free(all_features); free(rows); free(gh); free(margin); free(vmargin); free(q);
    gbm_model_free(model);
    return rc;
}

/* --- prediction ---------------------------------------------------------- */

struct pred_ctx {
    const struct gbm_model *m;
    const float *x;
    double *out;
};

static void pred_rows(void *arg, size_t lo, size_t hi)
{
    struct pred_ctx *pc = arg;
    const struct gbm_model *m = pc->m;
    uint32_t K = m->K;
    double mg[TREE_MAX_VALUE_DIM];
    for (size_t r = lo; r < hi; r++) {
        const float *xr = pc->x + r * m->d;
        for (uint32_t k = 0; k < K; k++) mg[k] = m->base[k];
        for (uint32_t t = 0; t < m->n_rounds; t++)
            for (uint32_t k = 0; k < K; k++)
                mg[k] += tree_leaf_values(&m->trees[(size_t)t * K + k], xr)[0];
        if (m->objective == OBJ_SQUARED) {
            pc->out[r] = mg[0];
        } else if (m->objective == OBJ_LOGISTIC) {
            double pr = sigmoid(mg[0]);
            pc->out[2 * r] = 1 - pr;
            pc->out[2 * r + 1] = pr;
        } else {
            double mx = mg[0], s = 0;
            for (uint32_t k = 1; k < K; k++) if (mg[k] > mx) mx = mg[k];
            for (uint32_t k = 0; k < K; k++) s += (mg[k] = exp(mg[k] - mx));
            for (uint32_t k = 0; k < K; k++) pc->out[r * K + k] = mg[k] / s;
        }
    }
}

static int gbm_predict(const void *model, const float *x, size_t n, size_t d,
                       int threads, double *out)
{
    const struct gbm_model *m = model;
    if (m == NULL || d != m->d || (n && (x == NULL || out == NULL))) return PD_EDATA;
    struct pred_ctx pc = { m, x, out };
    tree_parallel_rows(threads, n, 256, pred_rows, &pc);
    return PD_OK;
}

/* --- serialization ------------------------------------------------------- */

static int gbm_save(const void *model, struct pd_buf *out)
{
    const struct gbm_model *m = model;
    pd_buf_put_u32(out, GBM_MAGIC);
    pd_buf_put_u32(out, GBM_VERSION);
    pd_buf_put_u32(out, (uint32_t)m->kind);
    pd_buf_put_u32(out, m->n_classes);
    pd_buf_put_u32(out, m->objective);
    pd_buf_put_u32(out, m->K);
    pd_buf_put_u32(out, m->d);
    pd_buf_put_u32(out, m->n_rounds);
    pd_buf_put_u32(out, (uint32_t)m->best_iteration);
    pd_buf_put_f64s(out, m->base, m->K);
    for (uint32_t j = 0; j < m->d; j++) {
        uint32_t nb = m->bins.n_bins[j];
        pd_buf_put_u32(out, nb);
        pd_buf_put_f32s(out, m->bins.edges + m->bins.off[j], nb - 1);
    }
    for (size_t t = 0; t < (size_t)m->n_rounds * m->K; t++)
        if (tree_save(&m->trees[t], out) < 0) return PD_ENOMEM;
    return out->failed ? PD_ENOMEM : PD_OK;
}

static int gbm_load(struct pd_reader *in, void **out_model, char *err, size_t errlen)
{
    *out_model = NULL;
    uint32_t magic, version, kind, n_classes, objective, K, d, n_rounds, best;
    if (pd_reader_get_u32(in, &magic) < 0 || pd_reader_get_u32(in, &version) < 0 ||
        pd_reader_get_u32(in, &kind) < 0 || pd_reader_get_u32(in, &n_classes) < 0 ||
        pd_reader_get_u32(in, &objective) < 0 || pd_reader_get_u32(in, &K) < 0 ||
        pd_reader_get_u32(in, &d) < 0 || pd_reader_get_u32(in, &n_rounds) < 0 ||
        pd_reader_get_u32(in, &best) < 0) {
        snprintf(err, errlen, "gbm model: truncated header");
        return PD_EFORMAT;
    }
    if (magic != GBM_MAGIC || version != GBM_VERSION) {
        snprintf(err, errlen, "gbm model: not a gbm model (or unknown version)");
        return PD_EFORMAT;
    }
    int ok;
    if (kind == PD_TASK_REGRESSION)
        ok = n_classes == 0 && objective == OBJ_SQUARED && K == 1;
    else if (kind == PD_TASK_CLASSIFICATION)
        ok = (n_classes == 2 && objective == OBJ_LOGISTIC && K == 1) ||
             (n_classes > 2 && n_classes <= TREE_MAX_VALUE_DIM && objective == OBJ_SOFTMAX &&
              K == n_classes);
    else
        ok = 0;
    if (!ok || d == 0 || d > TREE_MAX_FEATURES || n_rounds == 0 || n_rounds > GBM_MAX_ROUNDS ||
        (int32_t)best < -1 || (int32_t)best >= (int32_t)n_rounds ||
        (uint64_t)n_rounds * K * 12 + (uint64_t)d * 4 + (uint64_t)K * 8 > in->left) {
        snprintf(err, errlen, "gbm model: inconsistent header");
        return PD_EFORMAT;
    }
    struct gbm_model *m = calloc(1, sizeof *m);
    if (m == NULL) { snprintf(err, errlen, "out of memory"); return PD_ENOMEM; }
    m->kind = (int)kind;
    m->n_classes = n_classes;
    m->objective = objective;
    m->K = K;
    m->d = d;
    m->best_iteration = (int32_t)best;
    m->base = malloc(K * sizeof *m->base);
    m->bins.d = d;
    m->bins.n_bins = malloc(d * sizeof *m->bins.n_bins);
    m->bins.off = malloc((d + 1) * sizeof *m->bins.off);
    m->trees = calloc((size_t)n_rounds * K, sizeof *m->trees);
    if (!m->base || !m->bins.n_bins || !m->bins.off || !m->trees) {
        gbm_model_free(m);
        snprintf(err, errlen, "out of memory");
        return PD_ENOMEM;
    }
    int rc = PD_EFORMAT;
    if (pd_reader_get_f64s(in, m->base, K) < 0) {
        snprintf(err, errlen, "gbm model: truncated base score");
        goto fail;
    }
    /* Bin edges: count first, then read them in one go. */
    {
        size_t total = 0;
        struct pd_reader peek = *in;
        for (uint32_t j = 0; j < d; j++) {
            uint32_t nb;
            if (pd_reader_get_count(&peek, HIST_MAX_BINS, &nb) < 0 || nb == 0 ||
                (size_t)(nb - 1) * 4 > peek.left) {
                snprintf(err, errlen, "gbm model: bad bins of feature %u", j);
                goto fail;
            }
            peek.p += (size_t)(nb - 1) * 4;
            peek.left -= (size_t)(nb - 1) * 4;
            total += nb - 1;
        }
        m->bins.edges = malloc((total ? total : 1) * sizeof *m->bins.edges);
        if (m->bins.edges == NULL) { snprintf(err, errlen, "out of memory"); rc = PD_ENOMEM; goto fail; }
        size_t off = 0;
        for (uint32_t j = 0; j < d; j++) {
            uint32_t nb;
            if (pd_reader_get_count(in, HIST_MAX_BINS, &nb) < 0 ||
                pd_reader_get_f32s(in, m->bins.edges + off, nb - 1) < 0) {
                snprintf(err, errlen, "gbm model: bad bins of feature %u", j);
                goto fail;
            }
            m->bins.n_bins[j] = nb;
            m->bins.off[j] = off;
            off += nb - 1;
        }
        m->bins.off[d] = off;
    }
    for (size_t t = 0; t < (size_t)n_rounds * K; t++) {
        char terr[128];
        m->n_rounds = (uint32_t)(t / K) + 1;
        if (tree_load(&m->trees[t], in, d, 1, terr, sizeof terr) < 0) {
            snprintf(err, errlen, "gbm model: tree %zu: %s", t, terr);
            goto fail;
        }
    }
    m->n_rounds = n_rounds;
    *out_model = m;
    return PD_OK;
fail:
    gbm_model_free(m);
    return rc;
}

/* --- inspection ---------------------------------------------------------- */

size_t gbm_model_n_rounds(const void *model)
{
    return model ? ((const struct gbm_model *)model)->n_rounds : 0;
}

size_t gbm_model_trees_per_round(const void *model)
{
    return model ? ((const struct gbm_model *)model)->K : 0;
}

const struct tree *gbm_model_tree(const void *model, size_t r, size_t k)
{
    const struct gbm_model *m = model;
    if (m == NULL || r >= m->n_rounds || k >= m->K) return NULL;
    return &m->trees[r * m->K + k];
}

double gbm_model_base_score(const void *model, size_t k)
{
    const struct gbm_model *m = model;
    return m && k < m->K ? m->base[k] : NAN;
}

int gbm_model_best_iteration(const void *model)
{
    return model ? ((const struct gbm_model *)model)->best_iteration : -1;
}

/* See pd_family.shape. */
static void gbm_shape(const void *model, size_t *inputs, size_t *outputs)
{
    const struct gbm_model *m = model;
    *inputs = m->d;
    *outputs = m->kind == PD_TASK_CLASSIFICATION ? m->n_classes : 1;
}

const struct pd_family pd_family_gbm = {
    .shape = gbm_shape,
    .name = "gbm",
    .handles_missing = 1,
    .needs_scaling = 0,
    .native_categorical = 0,
    .supports_classification = 1,
    .supports_regression = 1,
    .params_parse = gbm_params_parse,
    .params_json = gbm_params_json,
    .params_free = gbm_params_free,
    .fit = gbm_fit,
    .predict = gbm_predict,
    .save = gbm_save,
    .load = gbm_load,
    .model_free = gbm_model_free,
};

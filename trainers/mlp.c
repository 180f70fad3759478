/*
 * mlp.c - see mlp.h. Runs on the caller's thread; the SGEMMs may use
 * OpenBLAS's own threads.
 *
 * Shapes: sizes[0] = d inputs, sizes[1..L-1] hidden widths, sizes[L] =
 * outputs (n_classes, or 1 for regression); layer l maps sizes[l] to
 * sizes[l+1] with W_l (row-major, fan_in x fan_out) then b_l, stored one
 * after the other in one float vector so that Adam is a single loop.
 */
#include "trainers/mlp.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/lrfind.h"
#include "trainers/cv.h"
#include "trainers/params.h"

#define MLP_MAGIC 0x31504c4du /* "MLP1" */
#define MLP_MAX_LAYERS 16
#define MLP_MAX_WIDTH 65536u
#define MLP_MAX_D (1u << 24)
#define MLP_MAX_CLASSES (1u << 16)
#define MLP_MAX_PARAMS ((size_t)1 << 28)
enum { PRED_BLOCK = 256 };
/* The range test behind learning_rate "auto" runs 300 steps, not fastai's
 * 100: the smoothed loss (beta 0.98) lags about 50 steps behind, which at
 * 100 steps over 8 decades is 4 decades, and the valley lands low. On
 * iris (5-fold CV, defaults otherwise) 100 steps suggested 4e-4 (CV log
 * loss 0.33), 300 steps 1.4e-3 to 2.2e-3 (0.13 to 0.09; the best fixed
 * rate on a grid, 5e-3, gives 0.088). */
#define MLP_AUTO_ITERATIONS 300

struct mlp_params {
    enum pd_task_kind kind;
    int n_hidden;
    int hidden[MLP_MAX_LAYERS];
    double dropout, lr, beta1, beta2, eps, alpha, tol, validation_fraction;
    long batch_size;  /* 0 = auto */
    long max_iter, n_iter_no_change;
    int shuffle, early_stopping;
    int lr_auto;      /* learning rate "auto": the range test picks it per fit */
    /* With lr_auto, the rate the last fit chose (0 before any fit). fit
     * takes params as const; this one field is its record, written on the
     * caller's thread like everything else (see mlp_fit). */
    double lr_found;
};

struct mlp_model {
    uint32_t kind, n_classes, L;
    uint32_t sizes[MLP_MAX_LAYERS + 2];
    size_t woff[MLP_MAX_LAYERS + 1], boff[MLP_MAX_LAYERS + 1], np;
    uint32_t maxw;       /* widest layer, inputs excluded */
    double y_mean, y_std;
    float *theta;
};

/* ---- parameters ---------------------------------------------------------- */

static int hidden_param(const struct params_ctx *pc, const cJSON *it,
                        struct mlp_params *p)
{
    if (cJSON_IsNumber(it)) {
        long w = 0;
        int rc = params_int(pc, it, 1, (long)MLP_MAX_WIDTH, &w);
        if (rc == 0) p->hidden[0] = (int)w;
        p->n_hidden = 1;
        return rc;
    }
    if (!cJSON_IsArray(it))
        return params_fail(pc->err, pc->errlen, "hidden_layer_sizes: must be an array of layer widths");
    int n = cJSON_GetArraySize(it);
    if (n > MLP_MAX_LAYERS)
        return params_fail(pc->err, pc->errlen, "hidden_layer_sizes: at most %d layers, got %d",
                           MLP_MAX_LAYERS, n);
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, it) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
            e->valuedouble < 1 || e->valuedouble > MLP_MAX_WIDTH)
            return params_fail(pc->err, pc->errlen,
                               "hidden_layer_sizes: layer %d must be an integer between 1 and %u",
                               i, MLP_MAX_WIDTH);
        p->hidden[i++] = (int)e->valuedouble;
    }
    p->n_hidden = n;
    return 0;
}

/* learning_rate_init, or its other name learning_rate (what the cnn family
 * and NAS options call it): a number > 0 or "auto" (the range test on the
 * training rows picks it at every fit). learning_rate may also be
 * scikit-learn's "constant", the only schedule there is, which sets
 * nothing. *keys counts the members that set the rate. */
static int lr_param(const struct params_ctx *pc, const cJSON *it, struct mlp_params *p, int *keys)
{
    int is_lr = strcmp(it->string, "learning_rate") == 0;
    if (is_lr && cJSON_IsString(it) && strcmp(it->valuestring, "constant") == 0) return 0;
    ++*keys;
    if (cJSON_IsString(it) && strcmp(it->valuestring, "auto") == 0) {
        p->lr_auto = 1;
        return 0;
    }
    if (!cJSON_IsNumber(it))
        return params_fail(pc->err, pc->errlen, "%s: must be a number > 0 or \"auto\"%s", it->string,
                           is_lr ? " (or \"constant\")" : "");
    p->lr_auto = 0;
    return params_num(pc, it, 0, 1, INFINITY, 0, &p->lr);
}

static int mlp_params_parse(const cJSON *params, const struct pd_task *task,
                            void **out, char *err, size_t errlen)
{
    *out = NULL;
    struct params_ctx pc = {"mlp", PARAMS_BRIEF, err, errlen};
    if (task == NULL || (task->kind != PD_TASK_CLASSIFICATION && task->kind != PD_TASK_REGRESSION))
        return params_fail(err, errlen, "task: unknown kind");
    if (params_object(&pc, params) != 0) return PD_EPARAM;
    struct mlp_params *p = calloc(1, sizeof *p);
    if (p == NULL) {
        params_fail(err, errlen, "params: out of memory");
        return PD_ENOMEM;
    }
    *p = (struct mlp_params){
        .kind = task->kind, .n_hidden = 1, .hidden = {100}, .dropout = 0,
        .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .alpha = 1e-4,
        .tol = 1e-4, .validation_fraction = 0.1, .batch_size = 0,
        .max_iter = 200, .shuffle = 1, .n_iter_no_change = 10, .early_stopping = 0,
    };
    const cJSON *obj = cJSON_IsObject(params) ? params : NULL, *it;
    int lr_keys = 0;
    cJSON_ArrayForEach(it, obj) {
        const char *k = it->string;
        int rc;
        if (strcmp(k, "hidden_layer_sizes") == 0) rc = hidden_param(&pc, it, p);
        else if (strcmp(k, "activation") == 0)
            rc = cJSON_IsString(it) && strcmp(it->valuestring, "relu") == 0
                     ? 0 : params_fail(err, errlen, "activation: only \"relu\" is supported");
        else if (strcmp(k, "dropout") == 0) rc = params_num(&pc, it, 0, 0, 1, 1, &p->dropout);
        else if (strcmp(k, "learning_rate_init") == 0 || strcmp(k, "learning_rate") == 0)
            rc = lr_param(&pc, it, p, &lr_keys);
        else if (strcmp(k, "beta_1") == 0) rc = params_num(&pc, it, 0, 0, 1, 1, &p->beta1);
        else if (strcmp(k, "beta_2") == 0) rc = params_num(&pc, it, 0, 0, 1, 1, &p->beta2);
        else if (strcmp(k, "epsilon") == 0) rc = params_num(&pc, it, 0, 1, INFINITY, 0, &p->eps);
        else if (strcmp(k, "alpha") == 0) rc = params_num(&pc, it, 0, 0, INFINITY, 0, &p->alpha);
        else if (strcmp(k, "tol") == 0) rc = params_num(&pc, it, 0, 0, INFINITY, 0, &p->tol);
        else if (strcmp(k, "validation_fraction") == 0)
            rc = params_num(&pc, it, 0, 1, 1, 1, &p->validation_fraction);
        else if (strcmp(k, "batch_size") == 0) {
            if (cJSON_IsString(it) && strcmp(it->valuestring, "auto") == 0) {
                p->batch_size = 0;
                rc = 0;
            } else {
                rc = params_int(&pc, it, 1, 1 << 20, &p->batch_size);
                if (rc) rc = params_fail(err, errlen, "batch_size: must be \"auto\" or an integer between 1 and %d", 1 << 20);
            }
        } else if (strcmp(k, "max_iter") == 0) rc = params_int(&pc, it, 1, 1000000, &p->max_iter);
        else if (strcmp(k, "n_iter_no_change") == 0) rc = params_int(&pc, it, 1, 1000000, &p->n_iter_no_change);
        else if (strcmp(k, "shuffle") == 0) rc = params_bool(&pc, it, &p->shuffle);
        else if (strcmp(k, "early_stopping") == 0) rc = params_bool(&pc, it, &p->early_stopping);
        else rc = params_unknown(&pc, it);
        if (rc == 0 && lr_keys > 1)
            rc = params_fail(err, errlen, "learning_rate: give learning_rate or learning_rate_init, not both");
        if (rc != 0) {
            free(p);
            return rc;
        }
    }
    *out = p;
    return PD_OK;
}

static cJSON *mlp_params_json(const void *params)
{
    const struct mlp_params *p = params;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || p == NULL) return o;
    cJSON *h = cJSON_AddArrayToObject(o, "hidden_layer_sizes");
    for (int i = 0; h && i < p->n_hidden; i++) cJSON_AddItemToArray(h, cJSON_CreateNumber(p->hidden[i]));
    cJSON_AddStringToObject(o, "activation", "relu");
    cJSON_AddNumberToObject(o, "dropout", p->dropout);
    if (p->lr_auto) {
        cJSON_AddStringToObject(o, "learning_rate_init", "auto");
        if (p->lr_found > 0) cJSON_AddNumberToObject(o, "learning_rate_found", p->lr_found);
    } else {
        cJSON_AddNumberToObject(o, "learning_rate_init", p->lr);
    }
    cJSON_AddNumberToObject(o, "beta_1", p->beta1);
    cJSON_AddNumberToObject(o, "beta_2", p->beta2);
    cJSON_AddNumberToObject(o, "epsilon", p->eps);
    cJSON_AddNumberToObject(o, "alpha", p->alpha);
    if (p->batch_size == 0) cJSON_AddStringToObject(o, "batch_size", "auto");
    else cJSON_AddNumberToObject(o, "batch_size", p->batch_size);
    cJSON_AddNumberToObject(o, "max_iter", p->max_iter);
    cJSON_AddBoolToObject(o, "shuffle", p->shuffle);
    cJSON_AddNumberToObject(o, "tol", p->tol);
    cJSON_AddNumberToObject(o, "n_iter_no_change", p->n_iter_no_change);
    cJSON_AddBoolToObject(o, "early_stopping", p->early_stopping);
    cJSON_AddNumberToObject(o, "validation_fraction", p->validation_fraction);
    return o;
}

static void mlp_params_free(void *params) { free(params); }

/* ---- model shape -------------------------------------------------------- */

static void mlp_model_free(void *model)
{
    struct mlp_model *m = model;
    if (m == NULL) return;
    free(m->theta);
    free(m);
}

/* Lay out the parameters for m->L layers of m->sizes; -1 when too many. */
static int layout(struct mlp_model *m)
{
    size_t np = 0;
    m->maxw = 1;
    for (uint32_t l = 0; l < m->L; l++) {
        size_t fi = m->sizes[l], fo = m->sizes[l + 1];
        if (fi == 0 || fo == 0 || fi > MLP_MAX_PARAMS / fo) return -1;
        m->woff[l] = np;
        np += fi * fo;
        m->boff[l] = np;
        np += fo;
        if (np > MLP_MAX_PARAMS) return -1;
        if (fo > m->maxw) m->maxw = (uint32_t)fo;
    }
    m->np = np;
    return 0;
}

size_t pd_mlp_n_params(const void *model)
{
    const struct mlp_model *m = model;
    return m ? m->np : 0;
}

float *pd_mlp_params(void *model)
{
    struct mlp_model *m = model;
    return m ? m->theta : NULL;
}

/* ---- forward / backward ------------------------------------------------- */

/* Activation buffers for batches of up to B rows: A[l] holds layer l's
 * output (l = 1..L; the input is read in place), d0/d1 the deltas. */
struct work {
    size_t B;
    float *A[MLP_MAX_LAYERS + 2];
    float *d0, *d1;
};

static void work_free(struct work *w)
{
    for (int l = 0; l < MLP_MAX_LAYERS + 2; l++) free(w->A[l]);
    free(w->d0);
    free(w->d1);
    memset(w, 0, sizeof *w);
}

static int work_init(struct work *w, const struct mlp_model *m, size_t B)
{
    memset(w, 0, sizeof *w);
    w->B = B;
    for (uint32_t l = 1; l <= m->L; l++)
        if ((w->A[l] = malloc(B * m->sizes[l] * sizeof(float))) == NULL) goto fail;
    w->d0 = malloc(B * m->maxw * sizeof(float));
    w->d1 = malloc(B * m->maxw * sizeof(float));
    if (w->d0 == NULL || w->d1 == NULL) goto fail;
    return 0;
fail:
    work_free(w);
    return -1;
}

/* Forward B rows of x; the output layer's pre-activations end in A[L].
 * With dropout > 0 (training) hidden units are zeroed with probability
 * dropout and the kept ones scaled by 1/(1-dropout). */
static void forward(const struct mlp_model *m, const float *th, struct work *w,
                    const float *x, size_t B, double dropout, struct pd_rng *r)
{
    const float *in = x;
    float keep_scale = (float)(1.0 / (1.0 - dropout));
    for (uint32_t l = 0; l < m->L; l++) {
        size_t fi = m->sizes[l], fo = m->sizes[l + 1];
        float *z = w->A[l + 1];
        for (size_t i = 0; i < B; i++) memcpy(z + i * fo, th + m->boff[l], fo * sizeof *z);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)fo, (int)fi,
                    1.0f, in, (int)fi, th + m->woff[l], (int)fo, 1.0f, z, (int)fo);
        if (l + 1 < m->L) {
            for (size_t t = 0; t < B * fo; t++) {
                float v = z[t] > 0 ? z[t] : 0;
                if (dropout > 0) v = pd_rng_uniform(r) < dropout ? 0 : v * keep_scale;
                z[t] = v;
            }
        }
        in = z;
    }
}

/* Turn the output pre-activations (A[L]) into probabilities in place and
 * return the batch's summed weighted loss; write into delta (B x out) the
 * gradient of (summed loss / B) w.r.t. the pre-activations. yt holds class
 * indices or standardized targets. */
static double output_loss(const struct mlp_model *m, struct work *w,
                          const double *yt, const double *sw, size_t B,
                          float *delta)
{
    size_t K = m->sizes[m->L];
    float *o = w->A[m->L];
    double loss = 0;
    for (size_t i = 0; i < B; i++) {
        double wi = sw ? sw[i] : 1.0;
        float *oi = o + i * K, *di = delta + i * K;
        if (m->kind == PD_TASK_REGRESSION) {
            double e = (double)oi[0] - yt[i];
            loss += wi * 0.5 * e * e;
            di[0] = (float)(wi * e / (double)B);
            continue;
        }
        float mx = oi[0];
        for (size_t c = 1; c < K; c++)
            if (oi[c] > mx) mx = oi[c];
        double s = 0;
        for (size_t c = 0; c < K; c++) s += exp((double)oi[c] - mx);
        double lse = mx + log(s);
        size_t y = (size_t)yt[i];
        loss += wi * (lse - oi[y]);
        for (size_t c = 0; c < K; c++) {
            double pc = exp((double)oi[c] - lse);
            oi[c] = (float)pc;
            di[c] = (float)(wi * (pc - (c == y)) / (double)B);
        }
    }
    return loss;
}

/* Gradient of (summed loss / B + alpha/2 ||W||² / B) into grad, from the
 * output delta in w->d0. dropout must match the forward pass. */
static void backward(const struct mlp_model *m, const float *th, struct work *w,
                     const float *x, size_t B, double alpha, double dropout,
                     float *grad)
{
    float *d = w->d0, *dn = w->d1;
    float scale = dropout > 0 ? (float)(1.0 / (1.0 - dropout)) : 1.0f;
    for (uint32_t l = m->L; l-- > 0;) {
        size_t fi = m->sizes[l], fo = m->sizes[l + 1];
        const float *in = l ? w->A[l] : x;
        float *gw = grad + m->woff[l], *gb = grad + m->boff[l];
        const float *W = th + m->woff[l];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)fi, (int)fo, (int)B,
                    1.0f, in, (int)fi, d, (int)fo, 0.0f, gw, (int)fo);
        float a = (float)(alpha / (double)B);
        for (size_t t = 0; t < fi * fo; t++) gw[t] += a * W[t];
        for (size_t c = 0; c < fo; c++) gb[c] = 0;
        for (size_t i = 0; i < B; i++)
            for (size_t c = 0; c < fo; c++) gb[c] += d[i * fo + c];
        if (l == 0) break;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)fi, (int)fo,
                    1.0f, d, (int)fo, W, (int)fo, 0.0f, dn, (int)fi);
        const float *act = w->A[l];
        for (size_t t = 0; t < B * fi; t++) dn[t] = act[t] > 0 ? dn[t] * scale : 0.0f;
        float *tmp = d;
        d = dn;
        dn = tmp;
    }
}

static double l2_norm2(const struct mlp_model *m, const float *th)
{
    double s = 0;
    for (uint32_t l = 0; l < m->L; l++)
        for (size_t t = 0; t < (size_t)m->sizes[l] * m->sizes[l + 1]; t++)
            s += (double)th[m->woff[l] + t] * th[m->woff[l] + t];
    return s;
}

/* Forward n rows in blocks; out gets probabilities (n x K) or raw
 * standardized regression outputs (n). */
static int predict_raw(const struct mlp_model *m, const float *th,
                       const float *x, size_t n, double *out)
{
    struct work w;
    size_t B = n < PRED_BLOCK ? (n ? n : 1) : PRED_BLOCK, K = m->sizes[m->L], d = m->sizes[0];
    if (work_init(&w, m, B) < 0) return PD_ENOMEM;
    for (size_t r0 = 0; r0 < n; r0 += B) {
        size_t b = n - r0 < B ? n - r0 : B;
        forward(m, th, &w, x + r0 * d, b, 0, NULL);
        const float *o = w.A[m->L];
        for (size_t i = 0; i < b; i++) {
            double *po = out + (r0 + i) * K;
            if (m->kind == PD_TASK_REGRESSION) {
                po[0] = o[i];
                continue;
            }
            double mx = o[i * K], s = 0;
            for (size_t c = 1; c < K; c++)
                if (o[i * K + c] > mx) mx = o[i * K + c];
            for (size_t c = 0; c < K; c++) s += (po[c] = exp((double)o[i * K + c] - mx));
            for (size_t c = 0; c < K; c++) po[c] /= s;
        }
    }
    work_free(&w);
    return PD_OK;
}

/* Mean loss of rows (x, yt) under th: log loss (clipped at 1e-15) or half
 * the squared error in standardized units. NaN on allocation failure. */
static double eval_loss(const struct mlp_model *m, const float *th,
                        const float *x, const double *yt, const double *sw,
                        size_t n)
{
    size_t K = m->sizes[m->L];
    double *p = malloc((n ? n : 1) * K * sizeof *p);
    if (p == NULL || predict_raw(m, th, x, n, p) != PD_OK) {
        free(p);
        return NAN;
    }
    double s = 0, W = 0;
    for (size_t i = 0; i < n; i++) {
        double wi = sw ? sw[i] : 1.0, l;
        if (m->kind == PD_TASK_REGRESSION) {
            double e = p[i] - yt[i];
            l = 0.5 * e * e;
        } else {
            double q = p[i * K + (size_t)yt[i]];
            l = -log(q < 1e-15 ? 1e-15 : q);
        }
        s += wi * l;
        W += wi;
    }
    free(p);
    return W > 0 ? s / W : 0;
}

/* ---- training rows ------------------------------------------------------ */

static int check_rows(const struct pd_task *task, const struct pd_data *t,
                      const char *what, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->n; i++) {
        double w = t->w ? t->w[i] : 1.0, y = t->y[i];
        if (!(w >= 0) || !isfinite(w) || !isfinite(y) ||
            (task->kind == PD_TASK_CLASSIFICATION && !(y >= 0 && y < task->n_classes && y == floor(y)))) {
            params_fail(err, errlen, "%s row %zu: bad weight or target", what, i);
            return PD_EDATA;
        }
        for (size_t j = 0; j < t->d; j++)
            if (!isfinite(t->x[i * t->d + j])) {
                params_fail(err, errlen, "%s row %zu feature %zu: missing or infinite value", what, i, j);
                return PD_EDATA;
            }
    }
    return PD_OK;
}

struct rows {       /* a gathered subset: x, transformed y, weights */
    size_t n;
    float *x;
    double *y, *w;
};

static void rows_free(struct rows *r)
{
    free(r->x);
    free(r->y);
    free(r->w);
    memset(r, 0, sizeof *r);
}

/* Copy the rows of t where (sel == NULL || sel[i] == want), with y
 * standardized for regression. */
static int gather(const struct pd_data *t, const int *sel, int want,
                  const struct mlp_model *m, struct rows *r)
{
    size_t n = 0, d = t->d;
    for (size_t i = 0; i < t->n; i++) n += sel == NULL || sel[i] == want;
    r->n = n;
    r->x = malloc((n ? n : 1) * d * sizeof *r->x);
    r->y = malloc((n ? n : 1) * sizeof *r->y);
    r->w = t->w ? malloc((n ? n : 1) * sizeof *r->w) : NULL;
    if (r->x == NULL || r->y == NULL || (t->w && r->w == NULL)) {
        rows_free(r);
        return PD_ENOMEM;
    }
    for (size_t i = 0, k = 0; i < t->n; i++) {
        if (sel != NULL && sel[i] != want) continue;
        memcpy(r->x + k * d, t->x + i * d, d * sizeof *r->x);
        r->y[k] = m->kind == PD_TASK_REGRESSION ? (t->y[i] - m->y_mean) / m->y_std : t->y[i];
        if (r->w) r->w[k] = t->w[i];
        k++;
    }
    return PD_OK;
}

static void shuffle_idx(size_t *v, size_t n, struct pd_rng *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)pd_rng_below(r, i), t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* ---- minibatch Adam: what fit and the range test share ------------------ */

/* Training over rows tr: the weights (m->theta), Adam's moments, the row
 * order of the current epoch, and the generator (initialization,
 * shuffling, dropout masks). */
struct sgd {
    const struct mlp_params *p;
    struct mlp_model *m;
    const struct rows *tr;
    struct work w;
    size_t B;              /* rows per batch */
    size_t *idx;
    float *grad, *am, *av, *bx;
    double *by, *bw;
    struct pd_rng rng;
    uint64_t step;
    double b1t, b2t;       /* beta_1^step, beta_2^step */
};

static void sgd_free(struct sgd *s)
{
    work_free(&s->w);
    free(s->idx);
    free(s->grad);
    free(s->am);
    free(s->av);
    free(s->bx);
    free(s->by);
    free(s->bw);
    memset(s, 0, sizeof *s);
}

/* Allocate the state and m->theta (freed with the model), and initialize
 * the weights Glorot uniform as scikit-learn: bound sqrt(6 / (fan_in +
 * fan_out)), from a generator seeded with seed. 0 or PD_ENOMEM. */
static int sgd_init(struct sgd *s, const struct mlp_params *p, struct mlp_model *m,
                    const struct rows *tr, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->p = p;
    s->m = m;
    s->tr = tr;
    size_t n = tr->n, d = m->sizes[0];
    s->B = p->batch_size ? (size_t)p->batch_size : 200;
    if (s->B > n) s->B = n;
    m->theta = malloc(m->np * sizeof *m->theta);
    s->grad = malloc(m->np * sizeof *s->grad);
    s->am = calloc(m->np, sizeof *s->am);
    s->av = calloc(m->np, sizeof *s->av);
    s->idx = malloc((n ? n : 1) * sizeof *s->idx);
    s->bx = malloc((s->B ? s->B : 1) * d * sizeof *s->bx);
    s->by = malloc((s->B ? s->B : 1) * sizeof *s->by);
    s->bw = tr->w ? malloc((s->B ? s->B : 1) * sizeof *s->bw) : NULL;
    if (!m->theta || !s->grad || !s->am || !s->av || !s->idx || !s->bx || !s->by ||
        (tr->w && !s->bw) || work_init(&s->w, m, s->B) < 0) {
        sgd_free(s);
        return PD_ENOMEM;
    }
    pd_rng_seed(&s->rng, seed);
    for (uint32_t l = 0; l < m->L; l++) {
        size_t fi = m->sizes[l], fo = m->sizes[l + 1];
        double bound = sqrt(6.0 / (double)(fi + fo));
        for (size_t t = 0; t < fi * fo + fo; t++)
            m->theta[m->woff[l] + t] = (float)((2 * pd_rng_uniform(&s->rng) - 1) * bound);
    }
    for (size_t i = 0; i < n; i++) s->idx[i] = i;
    s->b1t = s->b2t = 1;
    return PD_OK;
}

/* One Adam step at learning rate lr on the rows idx[s0 .. s0+b). Returns
 * the batch's summed (weighted) data loss, taken before the step. */
static double sgd_batch(struct sgd *s, size_t s0, size_t b, double lr)
{
    const struct mlp_params *p = s->p;
    struct mlp_model *m = s->m;
    const struct rows *tr = s->tr;
    size_t d = m->sizes[0];
    for (size_t i = 0; i < b; i++) {
        size_t r = s->idx[s0 + i];
        memcpy(s->bx + i * d, tr->x + r * d, d * sizeof *s->bx);
        s->by[i] = tr->y[r];
        if (s->bw) s->bw[i] = tr->w[r];
    }
    forward(m, m->theta, &s->w, s->bx, b, p->dropout, &s->rng);
    double loss = output_loss(m, &s->w, s->by, s->bw, b, s->w.d0);
    backward(m, m->theta, &s->w, s->bx, b, p->alpha, p->dropout, s->grad);
    /* Adam, with scikit-learn's bias-corrected step size */
    s->step++;
    s->b1t *= p->beta1;
    s->b2t *= p->beta2;
    double lr_t = lr * sqrt(1 - s->b2t) / (1 - s->b1t);
    float fb1 = (float)p->beta1, fb2 = (float)p->beta2;
    for (size_t t = 0; t < m->np; t++) {
        float g = s->grad[t];
        s->am[t] = fb1 * s->am[t] + (1 - fb1) * g;
        s->av[t] = fb2 * s->av[t] + (1 - fb2) * g * g;
        m->theta[t] -= (float)(lr_t * s->am[t] / (sqrt((double)s->av[t]) + p->eps));
    }
    return loss;
}

/* The learning-rate range test (nn/lrfind.h) from s's current weights:
 * batches in shuffled epochs as fit takes them, each one Adam step at the
 * finder's rate, reporting the batch's mean objective before its step
 * (data loss + alpha/2 ||W||² / batch, what the step descends). After it
 * the weights, Adam's moments and step count, the row order and the
 * generator are back as they were, so a fit that follows is the fit it
 * would have been. With report, every step goes to opts->progress as
 * metric "lr_find_loss". *out gets the finder (the caller frees it). */
static int range_test(struct sgd *s, const struct lrfind_config *cfg,
                      const struct pd_fit_opts *opts, int report, struct lrfind **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    struct mlp_model *m = s->m;
    struct lrfind *f = NULL;
    char msg[200];
    int rc = lrfind_new(cfg, &f, msg, sizeof msg);
    if (rc != 0) {
        params_fail(err, errlen, "lr_find: %s", msg);
        return rc == LRFIND_ENOMEM ? PD_ENOMEM : PD_EPARAM;
    }
    float *theta0 = malloc(m->np * sizeof *theta0);
    if (theta0 == NULL) {
        lrfind_free(f);
        params_fail(err, errlen, "mlp: out of memory");
        return PD_ENOMEM;
    }
    memcpy(theta0, m->theta, m->np * sizeof *theta0);
    struct pd_rng rng0 = s->rng;
    size_t n = s->tr->n, pos = n;
    int it = 0;
    rc = PD_OK;
    while (lrfind_running(f)) {
        if (opts && opts->cancel && *opts->cancel) {
            rc = PD_ECANCELLED;
            params_fail(err, errlen, "mlp: cancelled");
            break;
        }
        if (pos >= n) {   /* a new epoch */
            if (s->p->shuffle) shuffle_idx(s->idx, n, &s->rng);
            pos = 0;
        }
        size_t b = n - pos < s->B ? n - pos : s->B;
        double penalty = 0.5 * s->p->alpha * l2_norm2(m, m->theta) / (double)b;
        double loss = sgd_batch(s, pos, b, lrfind_lr(f)) / (double)b + penalty;
        pos += b;
        lrfind_report(f, loss);
        it++;
        if (report && opts && opts->progress) {
            struct pd_progress pr = {it, cfg->iterations, "lr_find_loss", loss};
            opts->progress(opts->progress_ctx, &pr);
        }
    }
    memcpy(m->theta, theta0, m->np * sizeof *theta0);
    memset(s->am, 0, m->np * sizeof *s->am);
    memset(s->av, 0, m->np * sizeof *s->av);
    s->step = 0;
    s->b1t = s->b2t = 1;
    s->rng = rng0;
    for (size_t i = 0; i < n; i++) s->idx[i] = i;
    free(theta0);
    if (rc != PD_OK) {
        lrfind_free(f);
        return rc;
    }
    *out = f;
    return PD_OK;
}

/* ---- fit ---------------------------------------------------------------- */

/* Check the arguments of a fit and make the model's shape for them (no
 * weights yet; the regression target's mean and spread from train). */
static int model_for(const struct mlp_params *p, const struct pd_task *task,
                     const struct pd_data *train, struct mlp_model **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    if (p == NULL || task == NULL || train == NULL) return params_fail(err, errlen, "mlp: missing argument");
    if (task->kind != p->kind) return params_fail(err, errlen, "task: params were parsed for another task kind");
    if (task->kind == PD_TASK_CLASSIFICATION &&
        (task->n_classes < 2 || (uint32_t)task->n_classes > MLP_MAX_CLASSES))
        return params_fail(err, errlen, "n_classes: must be between 2 and %u", MLP_MAX_CLASSES);
    if (train->n == 0 || train->d == 0 || train->d > MLP_MAX_D || train->n > (size_t)INT32_MAX) {
        params_fail(err, errlen, "mlp: cannot fit %zu rows of %zu features", train->n, train->d);
        return PD_EDATA;
    }
    int rc = check_rows(task, train, "train", err, errlen);
    if (rc != PD_OK) return rc;
    struct mlp_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        params_fail(err, errlen, "mlp: out of memory");
        return PD_ENOMEM;
    }
    m->kind = task->kind;
    m->n_classes = task->kind == PD_TASK_CLASSIFICATION ? (uint32_t)task->n_classes : 0;
    m->L = (uint32_t)p->n_hidden + 1;
    m->sizes[0] = (uint32_t)train->d;
    for (int l = 0; l < p->n_hidden; l++) m->sizes[l + 1] = (uint32_t)p->hidden[l];
    m->sizes[m->L] = task->kind == PD_TASK_CLASSIFICATION ? (uint32_t)task->n_classes : 1;
    if (layout(m) < 0) {
        mlp_model_free(m);
        return params_fail(err, errlen, "hidden_layer_sizes: the network would have more than %zu parameters", MLP_MAX_PARAMS);
    }
    m->y_mean = 0;
    m->y_std = 1;
    if (task->kind == PD_TASK_REGRESSION) {
        double s = 0, ss = 0, W = 0;
        for (size_t i = 0; i < train->n; i++) {
            double wi = train->w ? train->w[i] : 1.0;
            s += wi * train->y[i];
            W += wi;
        }
        m->y_mean = W > 0 ? s / W : 0;
        for (size_t i = 0; i < train->n; i++) {
            double wi = train->w ? train->w[i] : 1.0, e = train->y[i] - m->y_mean;
            ss += wi * e * e;
        }
        m->y_std = W > 0 && ss > 0 ? sqrt(ss / W) : 1.0;
    }
    *out = m;
    return PD_OK;
}

static int mlp_fit(const void *params, const struct pd_task *task,
                   const struct pd_data *train, const struct pd_data *valid,
                   const struct pd_fit_opts *opts, void **out_model,
                   char *err, size_t errlen)
{
    const struct mlp_params *p = params;
    *out_model = NULL;
    struct mlp_model *m = NULL;
    int rc = model_for(p, task, train, &m, err, errlen);
    if (rc != PD_OK) return rc;
    if (valid != NULL && p->early_stopping) {
        if (valid->d != train->d || valid->n == 0) {
            mlp_model_free(m);
            params_fail(err, errlen, "valid: %zu rows of %zu features do not match train", valid->n, valid->d);
            return PD_EDATA;
        }
        if ((rc = check_rows(task, valid, "valid", err, errlen)) != PD_OK) {
            mlp_model_free(m);
            return rc;
        }
    }

    struct rows tr = {0}, va = {0};
    struct sgd s;
    memset(&s, 0, sizeof s);
    struct lrfind *finder = NULL;
    int *split = NULL;
    float *best = NULL;

    /* the validation rows, if early stopping wants them */
    int use_valid = p->early_stopping;
    if (use_valid && valid != NULL) {
        if (gather(train, NULL, 0, m, &tr) || gather(valid, NULL, 0, m, &va)) goto nomem;
    } else if (use_valid) {
        if (train->n < 2) {
            mlp_model_free(m);
            params_fail(err, errlen, "early_stopping: needs at least 2 training rows");
            return PD_EDATA;
        }
        split = malloc(train->n * sizeof *split);
        if (split == NULL) goto nomem;
        rc = pd_cv_holdout(task, train->y, train->n, p->validation_fraction,
                           opts ? opts->seed ^ 0x76616c6964ULL : 0, split, err, errlen);
        if (rc != PD_OK) goto done;
        if (gather(train, split, 0, m, &tr) || gather(train, split, 1, m, &va)) goto nomem;
    } else {
        if (gather(train, NULL, 0, m, &tr)) goto nomem;
    }

    size_t n = tr.n;
    best = use_valid ? malloc(m->np * sizeof *best) : NULL;
    if ((use_valid && !best) || sgd_init(&s, p, m, &tr, opts ? opts->seed : 0) != PD_OK)
        goto nomem;

    /* learning_rate "auto": the range test on the training rows (the
     * validation rows stay unseen) from the initial weights, which it
     * leaves as they were; then training at its suggestion */
    double lr = p->lr;
    if (p->lr_auto) {
        struct lrfind_config cfg;
        lrfind_config_init(&cfg);
        cfg.iterations = MLP_AUTO_ITERATIONS;
        if ((rc = range_test(&s, &cfg, opts, 0, &finder, err, errlen)) != PD_OK) goto done;
        struct lrfind_suggestion sg;
        if (lrfind_suggest(finder, cfg.method, &sg) != 0 || !(sg.lr > 0) || !isfinite(sg.lr)) {
            rc = PD_EDATA;
            params_fail(err, errlen, "learning_rate_init: \"auto\": the range test found no usable "
                        "learning rate (too few finite losses); give a number");
            goto done;
        }
        lr = sg.lr;
        ((struct mlp_params *)params)->lr_found = lr;  /* see struct mlp_params */
    }

    double best_loss = INFINITY, best_valid = INFINITY;
    int no_improve = 0;
    for (int epoch = 1; epoch <= p->max_iter; epoch++) {
        if (p->shuffle) shuffle_idx(s.idx, n, &s.rng);
        double loss = 0;
        for (size_t s0 = 0; s0 < n; s0 += s.B) {
            if (opts && opts->cancel && *opts->cancel) {
                rc = PD_ECANCELLED;
                params_fail(err, errlen, "mlp: cancelled");
                goto done;
            }
            size_t b = n - s0 < s.B ? n - s0 : s.B;
            loss += sgd_batch(&s, s0, b, lr);
        }
        loss = loss / (double)n + 0.5 * p->alpha * l2_norm2(m, m->theta) / (double)n;
        if (!isfinite(loss)) {
            rc = PD_EDATA;
            params_fail(err, errlen, "mlp: the training loss diverged at epoch %d (try a lower learning_rate_init)", epoch);
            goto done;
        }
        if (use_valid) {
            double vl = eval_loss(m, m->theta, va.x, va.y, va.w, va.n);
            if (isnan(vl)) goto nomem;
            if (opts && opts->progress) {
                struct pd_progress pr = {epoch, p->max_iter, "valid_loss", vl};
                opts->progress(opts->progress_ctx, &pr);
            }
            no_improve = vl > best_valid - p->tol ? no_improve + 1 : 0;
            if (vl < best_valid) {
                best_valid = vl;
                memcpy(best, m->theta, m->np * sizeof *best);
            }
        } else {
            if (opts && opts->progress) {
                struct pd_progress pr = {epoch, p->max_iter, "train_loss", loss};
                opts->progress(opts->progress_ctx, &pr);
            }
            no_improve = loss > best_loss - p->tol ? no_improve + 1 : 0;
            if (loss < best_loss) best_loss = loss;
        }
        if (no_improve > p->n_iter_no_change) break;  /* as scikit-learn */
    }
    if (use_valid) memcpy(m->theta, best, m->np * sizeof *best);
    rc = PD_OK;
    goto done;
nomem:
    rc = PD_ENOMEM;
    params_fail(err, errlen, "mlp: out of memory");
done:
    if (rc == PD_OK) *out_model = m;
    else mlp_model_free(m);
    rows_free(&tr);
    rows_free(&va);
    sgd_free(&s);
    lrfind_free(finder);
    free(split);
    free(best);
    return rc;
}

/* See pd_family.lr_find: the range test from the initialization fit
 * would start from (same seed), on every row of train. */
static int mlp_lr_find(const void *params, const struct pd_task *task,
                       const struct pd_data *train, const struct pd_fit_opts *opts,
                       const struct lrfind_config *cfg, cJSON **out, char *err, size_t errlen)
{
    const struct mlp_params *p = params;
    *out = NULL;
    if (cfg == NULL || out == NULL) return params_fail(err, errlen, "mlp: missing argument");
    struct mlp_model *m = NULL;
    int rc = model_for(p, task, train, &m, err, errlen);
    if (rc != PD_OK) return rc;
    struct rows tr = {0};
    struct sgd s;
    memset(&s, 0, sizeof s);
    struct lrfind *f = NULL;
    if (gather(train, NULL, 0, m, &tr) != PD_OK || sgd_init(&s, p, m, &tr, opts ? opts->seed : 0) != PD_OK) {
        rc = PD_ENOMEM;
        params_fail(err, errlen, "mlp: out of memory");
    } else if ((rc = range_test(&s, cfg, opts, 1, &f, err, errlen)) == PD_OK &&
               (*out = lrfind_to_json(f)) == NULL) {
        rc = PD_ENOMEM;
        params_fail(err, errlen, "mlp: out of memory");
    }
    lrfind_free(f);
    sgd_free(&s);
    rows_free(&tr);
    mlp_model_free(m);
    return rc;
}

int pd_mlp_loss_grad(const void *model, double alpha, const float *x,
                     const double *y, size_t n, double *loss, float *grad)
{
    const struct mlp_model *m = model;
    if (m == NULL || n == 0) return PD_EPARAM;
    struct work w;
    double *yt = malloc(n * sizeof *yt);
    if (yt == NULL || work_init(&w, m, n) < 0) {
        free(yt);
        return PD_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        yt[i] = m->kind == PD_TASK_REGRESSION ? (y[i] - m->y_mean) / m->y_std : y[i];
    forward(m, m->theta, &w, x, n, 0, NULL);
    *loss = output_loss(m, &w, yt, NULL, n, w.d0) / (double)n +
            0.5 * alpha * l2_norm2(m, m->theta) / (double)n;
    backward(m, m->theta, &w, x, n, alpha, 0, grad);
    work_free(&w);
    free(yt);
    return PD_OK;
}

static int mlp_predict(const void *model, const float *x, size_t n, size_t d,
                       int threads, double *out)
{
    const struct mlp_model *m = model;
    if (m == NULL || d != m->sizes[0]) return PD_EPARAM;
    if (n == 0) return PD_OK;
    int rc = predict_raw(m, m->theta, x, n, out);
    if (rc == PD_OK && m->kind == PD_TASK_REGRESSION)
        for (size_t i = 0; i < n; i++) out[i] = out[i] * m->y_std + m->y_mean;
    return rc;
}

static int mlp_save(const void *model, struct pd_buf *out)
{
    const struct mlp_model *m = model;
    if (m == NULL) return PD_EPARAM;
    pd_buf_put_u32(out, MLP_MAGIC);
    pd_buf_put_u32(out, m->kind);
    pd_buf_put_u32(out, m->n_classes);
    pd_buf_put_u32(out, m->L);
    for (uint32_t l = 0; l <= m->L; l++) pd_buf_put_u32(out, m->sizes[l]);
    pd_buf_put_f64(out, m->y_mean);
    pd_buf_put_f64(out, m->y_std);
    pd_buf_put_f32s(out, m->theta, m->np);
    return out->failed ? PD_ENOMEM : PD_OK;
}

static int mlp_load(struct pd_reader *in, void **out_model, char *err,
                    size_t errlen)
{
    *out_model = NULL;
    struct mlp_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        params_fail(err, errlen, "mlp: out of memory");
        return PD_ENOMEM;
    }
    uint32_t magic = 0;
    pd_reader_get_u32(in, &magic);
    pd_reader_get_u32(in, &m->kind);
    pd_reader_get_count(in, MLP_MAX_CLASSES, &m->n_classes);
    pd_reader_get_count(in, MLP_MAX_LAYERS + 1, &m->L);
    int ok = !in->failed && magic == MLP_MAGIC && m->L >= 1;
    for (uint32_t l = 0; ok && l <= m->L; l++)
        ok = pd_reader_get_count(in, l == 0 ? MLP_MAX_D : MLP_MAX_WIDTH, &m->sizes[l]) == 0 &&
             m->sizes[l] > 0;
    pd_reader_get_f64(in, &m->y_mean);
    pd_reader_get_f64(in, &m->y_std);
    ok = ok && !in->failed && isfinite(m->y_mean) && isfinite(m->y_std) && m->y_std > 0 &&
         (m->kind == PD_TASK_REGRESSION ? m->n_classes == 0 && m->sizes[m->L] == 1
          : m->kind == PD_TASK_CLASSIFICATION ? m->n_classes >= 2 && m->sizes[m->L] == m->n_classes
          : 0) &&
         layout(m) == 0 && m->np <= in->left / sizeof(float);
    if (ok) {
        m->theta = malloc(m->np * sizeof *m->theta);
        if (m->theta == NULL) {
            mlp_model_free(m);
            params_fail(err, errlen, "mlp: out of memory");
            return PD_ENOMEM;
        }
        ok = pd_reader_get_f32s(in, m->theta, m->np) == 0;
        for (size_t t = 0; ok && t < m->np; t++) ok = isfinite(m->theta[t]);
    }
    if (!ok) {
        mlp_model_free(m);
        params_fail(err, errlen, "mlp: model data is truncated or not an mlp model");
        return PD_EFORMAT;
    }
    *out_model = m;
    return PD_OK;
}

/* See pd_family.shape. */
static void mlp_shape(const void *model, size_t *inputs, size_t *outputs)
{
    const struct mlp_model *m = model;
    *inputs = m->sizes[0];
    *outputs = m->kind == PD_TASK_CLASSIFICATION ? m->n_classes : 1;
}

const struct pd_family pd_family_mlp = {
    .shape = mlp_shape,
    .name = "mlp",
    .handles_missing = 0,
    .needs_scaling = 1,
    .native_categorical = 0,
    .supports_classification = 1,
    .supports_regression = 1,
    .params_parse = mlp_params_parse,
    .params_json = mlp_params_json,
    .params_free = mlp_params_free,
    .fit = mlp_fit,
    .predict = mlp_predict,
    .save = mlp_save,
    .load = mlp_load,
    .model_free = mlp_model_free,
    .lr_find = mlp_lr_find,
};

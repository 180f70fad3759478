/*
 * nb.c - see nb.h. Fit is two passes over the rows (sums, then squared
 * deviations), predict one; both on the caller's thread. Statistics are
 * kept in double.
 */
#include "trainers/nb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainers/params.h"

struct nb_params {
    double var_smoothing, alpha;
    int fit_prior;
};

struct nb_model {
    uint32_t k, d;
    uint32_t *levels;     /* d: 0 numeric, else category count */
    size_t *off;          /* d: start of feature j's table in cat */
    double *log_prior;    /* k */
    double *mean, *var;   /* k*d, entries of numeric features */
    double *cat;          /* sum_j k*levels[j]: log P(code | class), [c][v] */
    size_t ncat;
};

#define NB_MAGIC 0x3130424eu /* "NB01" */
#define NB_MAX_D (1u << 24)
#define NB_MAX_CLASSES (1u << 16)
#define NB_MAX_LEVELS (1u << 20)

static int nb_params_parse(const cJSON *params, const struct pd_task *task,
                           void **out, char *err, size_t errlen)
{
    *out = NULL;
    struct params_ctx pc = {"nb", PARAMS_BOUNDS, err, errlen};
    if (task == NULL || task->kind != PD_TASK_CLASSIFICATION)
        return params_fail(err, errlen, "task: nb supports classification only");
    if (params_object(&pc, params) != 0) return PD_EPARAM;
    struct nb_params *p = calloc(1, sizeof *p);
    if (p == NULL) {
        params_fail(err, errlen, "params: out of memory");
        return PD_ENOMEM;
    }
    p->var_smoothing = 1e-9;
    p->alpha = 1.0;
    p->fit_prior = 1;
    const cJSON *obj = cJSON_IsObject(params) ? params : NULL, *it;
    cJSON_ArrayForEach(it, obj) {
        const char *k = it->string;
        int rc;
        if (strcmp(k, "var_smoothing") == 0) rc = params_num(&pc, it, 0, 0, INFINITY, 0, &p->var_smoothing);
        else if (strcmp(k, "alpha") == 0) rc = params_num(&pc, it, 0, 1, INFINITY, 0, &p->alpha);
        else if (strcmp(k, "fit_prior") == 0) rc = params_bool(&pc, it, &p->fit_prior);
        else rc = params_unknown(&pc, it);
        if (rc != 0) {
            free(p);
            return rc;
        }
    }
    *out = p;
    return PD_OK;
}

static cJSON *nb_params_json(const void *params)
{
    const struct nb_params *p = params;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || p == NULL) return o;
    cJSON_AddNumberToObject(o, "var_smoothing", p->var_smoothing);
    cJSON_AddNumberToObject(o, "alpha", p->alpha);
    cJSON_AddBoolToObject(o, "fit_prior", p->fit_prior);
    return o;
}

static void nb_params_free(void *params) { free(params); }

static void nb_model_free(void *model)
{
    struct nb_model *m = model;
    if (m == NULL) return;
    free(m->levels);
    free(m->off);
    free(m->log_prior);
    free(m->mean);
    free(m->var);
    free(m->cat);
    free(m);
}

/* A model with its arrays allocated for k classes and these levels. */
static struct nb_model *model_new(uint32_t k, uint32_t d, const uint32_t *levels)
{
    struct nb_model *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    m->k = k;
    m->d = d;
    m->levels = calloc(d + 1, sizeof *m->levels);
    m->off = calloc(d + 1, sizeof *m->off);
    m->log_prior = calloc(k, sizeof *m->log_prior);
    m->mean = calloc((size_t)k * d + 1, sizeof *m->mean);
    m->var = calloc((size_t)k * d + 1, sizeof *m->var);
    if (!m->levels || !m->off || !m->log_prior || !m->mean || !m->var) goto fail;
    for (uint32_t j = 0; j < d; j++) {
        m->levels[j] = levels ? levels[j] : 0;
        m->off[j] = m->ncat;
        m->ncat += (size_t)k * m->levels[j];
    }
    m->cat = calloc(m->ncat + 1, sizeof *m->cat);
    if (m->cat == NULL) goto fail;
    return m;
fail:
    nb_model_free(m);
    return NULL;
}

static int nb_fit(const void *params, const struct pd_task *task,
                  const struct pd_data *tr, const struct pd_data *valid,
                  const struct pd_fit_opts *opts, void **out_model,
                  char *err, size_t errlen)
{
    const struct nb_params *p = params;
    *out_model = NULL;
    if (p == NULL || task == NULL || tr == NULL) return params_fail(err, errlen, "nb: missing argument");
    if (task->kind != PD_TASK_CLASSIFICATION || task->n_classes < 1 ||
        (uint32_t)task->n_classes > NB_MAX_CLASSES)
        return params_fail(err, errlen, "task: nb needs classification with 1..%u classes", NB_MAX_CLASSES);
    if (tr->n == 0 || tr->d == 0 || tr->d > NB_MAX_D) {
        params_fail(err, errlen, "nb: cannot fit %zu rows of %zu features", tr->n, tr->d);
        return PD_EDATA;
    }
    size_t n = tr->n, d = tr->d, k = (size_t)task->n_classes;
    uint32_t *lv = calloc(d, sizeof *lv);
    if (lv == NULL) goto nomem;
    for (size_t j = 0; j < d; j++) {
        int l = tr->levels ? tr->levels[j] : 0;
        if (l < 0 || (uint32_t)l > NB_MAX_LEVELS) {
            free(lv);
            params_fail(err, errlen, "levels: feature %zu has %d levels (0..%u allowed)", j, l, NB_MAX_LEVELS);
            return PD_EDATA;
        }
        lv[j] = (uint32_t)l;
    }
    /* validate before allocating the per-class tables */
    for (size_t i = 0; i < n; i++) {
        double w = tr->w ? tr->w[i] : 1.0, y = tr->y[i];
        if (!(w >= 0) || !isfinite(w) || !(y >= 0 && y < (double)k && y == floor(y))) {
            free(lv);
            params_fail(err, errlen, "row %zu: bad weight or class", i);
            return PD_EDATA;
        }
        for (size_t j = 0; j < d; j++) {
            float v = tr->x[i * d + j];
            if (isnan(v)) continue;
            if (isinf(v) || (lv[j] && !(v >= 0 && v < (float)lv[j] && v == floorf(v)))) {
                free(lv);
                params_fail(err, errlen, "row %zu feature %zu: value %g is not valid", i, j, (double)v);
                return PD_EDATA;
            }
        }
    }
    struct nb_model *m = model_new((uint32_t)k, (uint32_t)d, lv);
    free(lv);
    double *cw = calloc(k, sizeof *cw);          /* class weight */
    double *sw = calloc(k * d, sizeof *sw);      /* weight of non-missing */
    double *gs = calloc(3 * d, sizeof *gs);      /* global w, mean, var */
    if (m == NULL || cw == NULL || sw == NULL || gs == NULL) {
        nb_model_free(m);
        free(cw); free(sw); free(gs);
        goto nomem;
    }
    double *gw = gs, *gm = gs + d, *gv = gs + 2 * d;
    for (size_t i = 0; i < n; i++) {
        double w = tr->w ? tr->w[i] : 1.0;
        size_t c = (size_t)tr->y[i];
        cw[c] += w;
        for (size_t j = 0; j < d; j++) {
            float v = tr->x[i * d + j];
            if (isnan(v)) continue;
            sw[c * d + j] += w;
            gw[j] += w;
            if (m->levels[j]) m->cat[m->off[j] + c * m->levels[j] + (size_t)v] += w;
            else {
                m->mean[c * d + j] += w * v;
                gm[j] += w * v;
            }
        }
        if (opts && opts->cancel && *opts->cancel && (i & 4095) == 0) goto cancelled;
    }
    double total = 0;
    for (size_t c = 0; c < k; c++) total += cw[c];
    if (!(total > 0)) {
        nb_model_free(m);
        free(cw); free(sw); free(gs);
        params_fail(err, errlen, "weights: sum to zero");
        return PD_EDATA;
    }
    for (size_t j = 0; j < d; j++) {
        gm[j] = gw[j] > 0 ? gm[j] / gw[j] : 0;
        for (size_t c = 0; c < k; c++)
            if (sw[c * d + j] > 0) m->mean[c * d + j] /= sw[c * d + j];
    }
    for (size_t i = 0; i < n; i++) {
        double w = tr->w ? tr->w[i] : 1.0;
        size_t c = (size_t)tr->y[i];
        for (size_t j = 0; j < d; j++) {
            float v = tr->x[i * d + j];
            if (isnan(v) || m->levels[j]) continue;
            double e = v - m->mean[c * d + j], g = v - gm[j];
            m->var[c * d + j] += w * e * e;
            gv[j] += w * g * g;
        }
    }
    double maxvar = 0;
    for (size_t j = 0; j < d; j++) {
        gv[j] = gw[j] > 0 ? gv[j] / gw[j] : 0;
        if (!m->levels[j] && gv[j] > maxvar) maxvar = gv[j];
    }
    double eps = p->var_smoothing * maxvar;
    for (size_t c = 0; c < k; c++) {
        m->log_prior[c] = p->fit_prior ? log(cw[c] / total) : -log((double)k);
        for (size_t j = 0; j < d; j++) {
            size_t cj = c * d + j;
            uint32_t L = m->levels[j];
            if (L) {
                double *t = m->cat + m->off[j] + c * L;
                double den = log(sw[cj] + p->alpha * L);
                for (uint32_t v = 0; v < L; v++) t[v] = log(t[v] + p->alpha) - den;
                continue;
            }
            if (sw[cj] > 0) m->var[cj] /= sw[cj];
            else {
                m->mean[cj] = gm[j];
                m->var[cj] = gv[j];
            }
            m->var[cj] += eps;
            if (!(m->var[cj] > 0)) m->var[cj] = 1e-300;  /* constant feature, no smoothing */
        }
    }
    if (opts && opts->progress) {
        struct pd_progress pr = {1, 1, NULL, 0};
        opts->progress(opts->progress_ctx, &pr);
    }
    free(cw); free(sw); free(gs);
    *out_model = m;
    return PD_OK;
cancelled:
    nb_model_free(m);
    free(cw); free(sw); free(gs);
    params_fail(err, errlen, "nb: cancelled");
    return PD_ECANCELLED;
nomem:
    params_fail(err, errlen, "nb: out of memory");
    return PD_ENOMEM;
}

static int nb_predict(const void *model, const float *x, size_t n, size_t d,
                      int threads, double *out)
{
    const struct nb_model *m = model;
    if (m == NULL || d != m->d) return PD_EPARAM;
    size_t k = m->k;
    const double half_log_2pi = 0.5 * log(2 * M_PI);
    for (size_t i = 0; i < n; i++) {
        double *o = out + i * k;
        for (size_t c = 0; c < k; c++) o[c] = m->log_prior[c];
        for (size_t j = 0; j < d; j++) {
            float v = x[i * d + j];
            if (isnan(v)) continue;
            uint32_t L = m->levels[j];
            if (L) {
                if (!(v >= 0 && v < (float)L && v == floorf(v))) continue;
                const double *t = m->cat + m->off[j] + (size_t)v;
                for (size_t c = 0; c < k; c++) o[c] += t[c * L];
            } else {
                for (size_t c = 0; c < k; c++) {
                    double var = m->var[c * d + j], e = v - m->mean[c * d + j];
                    o[c] -= half_log_2pi + 0.5 * log(var) + 0.5 * e * e / var;
                }
            }
        }
        double mx = -INFINITY, s = 0;
        for (size_t c = 0; c < k; c++)
            if (o[c] > mx) mx = o[c];
        if (!isfinite(mx)) {  /* every class impossible: fall back to the priors */
            for (size_t c = 0; c < k; c++) o[c] = m->log_prior[c];
            mx = -INFINITY;
            for (size_t c = 0; c < k; c++)
                if (o[c] > mx) mx = o[c];
        }
        for (size_t c = 0; c < k; c++) s += (o[c] = exp(o[c] - mx));
        for (size_t c = 0; c < k; c++) o[c] /= s;
    }
    return PD_OK;
}

static int nb_save(const void *model, struct pd_buf *out)
{
    const struct nb_model *m = model;
    if (m == NULL) return PD_EPARAM;
    pd_buf_put_u32(out, NB_MAGIC);
    pd_buf_put_u32(out, m->k);
    pd_buf_put_u32(out, m->d);
    for (uint32_t j = 0; j < m->d; j++) pd_buf_put_u32(out, m->levels[j]);
    pd_buf_put_f64s(out, m->log_prior, m->k);
    for (uint32_t j = 0; j < m->d; j++) {
        if (m->levels[j]) continue;
        for (uint32_t c = 0; c < m->k; c++) {
            pd_buf_put_f64(out, m->mean[(size_t)c * m->d + j]);
            pd_buf_put_f64(out, m->var[(size_t)c * m->d + j]);
        }
    }
    pd_buf_put_f64s(out, m->cat, m->ncat);
    return out->failed ? PD_ENOMEM : PD_OK;
}

static int nb_load(struct pd_reader *in, void **out_model, char *err,
                   size_t errlen)
{
    *out_model = NULL;
    uint32_t magic = 0, k = 0, d = 0, *lv = NULL;
    struct nb_model *m = NULL;
    pd_reader_get_u32(in, &magic);
    pd_reader_get_count(in, NB_MAX_CLASSES, &k);
    pd_reader_get_count(in, NB_MAX_D, &d);
    if (in->failed || magic != NB_MAGIC || k == 0 || d == 0 || d > in->left / 4)
        goto bad;
    lv = malloc((size_t)d * sizeof *lv);
    if (lv == NULL) goto nomem;
    /* every value that follows is 8 bytes: bound the table sizes by what
     * is left before allocating them */
    size_t need = k, avail = (in->left - (size_t)d * 4) / 8;
    for (uint32_t j = 0; j < d; j++) {
        if (pd_reader_get_count(in, NB_MAX_LEVELS, &lv[j]) < 0) goto bad;
        need += lv[j] ? (size_t)k * lv[j] : 2 * (size_t)k;
        if (need > avail) goto bad;
    }
    m = model_new(k, d, lv);
    if (m == NULL) goto nomem;
    pd_reader_get_f64s(in, m->log_prior, k);
    for (uint32_t j = 0; j < d; j++) {
        if (m->levels[j]) continue;
        for (uint32_t c = 0; c < k; c++) {
            pd_reader_get_f64(in, &m->mean[(size_t)c * d + j]);
            pd_reader_get_f64(in, &m->var[(size_t)c * d + j]);
            if (!in->failed && (!isfinite(m->mean[(size_t)c * d + j]) || !(m->var[(size_t)c * d + j] > 0) ||
                                !isfinite(m->var[(size_t)c * d + j])))
                goto bad;
        }
    }
    pd_reader_get_f64s(in, m->cat, m->ncat);
    if (in->failed) goto bad;
    for (uint32_t c = 0; c < k; c++)
        if (isnan(m->log_prior[c]) || m->log_prior[c] > 0) goto bad;
    for (size_t t = 0; t < m->ncat; t++)
        if (isnan(m->cat[t]) || m->cat[t] > 0) goto bad;
    free(lv);
    *out_model = m;
    return PD_OK;
bad:
    free(lv);
    nb_model_free(m);
    params_fail(err, errlen, "nb: model data is truncated or not a naive Bayes model");
    return PD_EFORMAT;
nomem:
    free(lv);
    nb_model_free(m);
    params_fail(err, errlen, "nb: out of memory");
    return PD_ENOMEM;
}

/* See pd_family.shape. */
static void nb_shape(const void *model, size_t *inputs, size_t *outputs)
{
    const struct nb_model *m = model;
    *inputs = m->d;
    *outputs = m->k;
}

const struct pd_family pd_family_nb = {
    .shape = nb_shape,
    .name = "nb",
    .handles_missing = 1,
    .needs_scaling = 0,
    .native_categorical = 1,
    .supports_classification = 1,
    .supports_regression = 0,
    .params_parse = nb_params_parse,
    .params_json = nb_params_json,
    .params_free = nb_params_free,
    .fit = nb_fit,
    .predict = nb_predict,
    .save = nb_save,
    .load = nb_load,
    .model_free = nb_model_free,
};

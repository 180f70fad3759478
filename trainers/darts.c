/*
 * darts.c - see darts.h. The model, batches, prediction and model file
 * are the cnn family's (trainers/cnn.h) in CNNNET_SEARCH mode; this file
 * holds the parameters, the alternating search loop and the details.
 * Runs on the caller's thread, on the backend opts->device names (as the
 * cnn family: cnn.h); both optimizers and Adam's L2 term run through the
 * backend's table, so a search step never reads backend memory on the
 * host beyond its loss.
 */
#include "trainers/darts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/optim.h"
#include "trainers/cnn.h"
#include "trainers/cv.h"
#include "trainers/params.h"
#include "trainers/rng.h"

#define DARTS_DEFAULT_LR 0.025
#define DARTS_LR_MIN 0.001
#define ARCH_LR 3e-4
#define ARCH_WD 1e-3

struct darts_params {
    struct cnn_train_params t;
};

static int darts_params_parse(const cJSON *params, const struct pd_task *task, void **out,
                              char *err, size_t errlen)
{
    *out = NULL;
    struct params_ctx pc = {"darts", PARAMS_BRIEF, err, errlen};
    if (task == NULL || task->kind != PD_TASK_CLASSIFICATION)
        return params_fail(err, errlen, "darts: only for classification");
    if (params_object(&pc, params) != 0) return PD_EPARAM;
    struct darts_params *p = calloc(1, sizeof *p);
    if (p == NULL) {
        params_fail(err, errlen, "params: out of memory");
        return PD_ENOMEM;
    }
    *p = (struct darts_params){
        .t = {.cells = 5, .channels = 16, .epochs = 5, .batch_size = 64, .lr = DARTS_DEFAULT_LR,
              .augment = 1, .hflip = 0, .seed = -1},
    };
    const cJSON *obj = cJSON_IsObject(params) ? params : NULL, *it;
    cJSON_ArrayForEach(it, obj) {
        int rc;
        if ((rc = cnn_train_param(&pc, it, &p->t)) == 1) rc = params_unknown(&pc, it);
        if (rc != 0) {
            free(p);
            return rc;
        }
    }
    *out = p;
    return PD_OK;
}

static cJSON *darts_params_json(const void *params)
{
    const struct darts_params *p = params;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || p == NULL) return o;
    cnn_train_params_json(&p->t, o);
    return o;
}

static void darts_params_free(void *params) { free(params); }

/* One side of the search: its rows (shuffled each pass), its batches. */
struct half {
    size_t *rows, n, pos;
    struct pd_rng rng;
};

static void shuffle(size_t *v, size_t n, struct pd_rng *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)pd_rng_below(r, i), x = v[i - 1];
        v[i - 1] = v[j];
        v[j] = x;
    }
}

/* The next b rows, reshuffling when a pass is over. */
static const size_t *half_next(struct half *h, size_t b)
{
    if (h->pos + b > h->n) h->pos = 0;
    if (h->pos == 0) shuffle(h->rows, h->n, &h->rng);
    const size_t *r = h->rows + h->pos;
    h->pos += b;
    return r;
}

static int darts_fit(const void *params, const struct pd_task *task, const struct pd_data *train,
                     const struct pd_data *valid, const struct pd_fit_opts *opts, void **out_model,
                     char *err, size_t errlen)
{
    *out_model = NULL;
    const struct darts_params *p = params;
    if (p == NULL || task == NULL || train == NULL || opts == NULL)
        return params_fail(err, errlen, "darts: missing argument");
    if (task->kind != PD_TASK_CLASSIFICATION || task->n_classes < 2 ||
        task->n_classes > CNNNET_MAX_CLASSES)
        return params_fail(err, errlen, "darts: needs classification with 2..%d classes", CNNNET_MAX_CLASSES);
    int c, h, w;
    int rc = cnn_image_shape(opts, train, &c, &h, &w, err, errlen);
    if (rc != PD_OK) return rc;
    for (size_t i = 0; i < train->n; i++)
        if (!(train->y[i] >= 0 && train->y[i] < task->n_classes && train->y[i] == floor(train->y[i]))) {
            params_fail(err, errlen, "darts: row %zu: bad class", i);
            return PD_EDATA;
        }
    if (train->n < 4) {
        params_fail(err, errlen, "darts: needs at least 4 training rows, got %zu", train->n);
        return PD_EDATA;
    }
    uint64_t seed = p->t.seed >= 0 ? (uint64_t)p->t.seed : opts->seed;
    struct cnnnet_config cfg = {
        .mode = CNNNET_SEARCH, .in_channels = c, .height = h, .width = w,
        .n_classes = task->n_classes, .cells = (int)p->t.cells, .channels = (int)p->t.channels,
        .seed = seed,
    };
    struct cnn_model *m = NULL;
    struct nn_graph *g = NULL;
    struct optim *wopt = NULL, *aopt = NULL;
    struct optim_group *wg = NULL, *ag = NULL;
    int *split = NULL, *labels = NULL;
    float *bx = NULL;
    struct half hw = {0}, ha = {0};
    char msg[256] = "";
    if ((rc = cnn_model_new(&cfg, opts->threads, opts->device, &m, err, errlen)) != PD_OK) return rc;
    cnn_model_set_norm(m, train->x, NULL, train->n);
    m->learning_rate = p->t.lr > 0 ? p->t.lr : DARTS_DEFAULT_LR;

    /* the two halves */
    split = malloc(train->n * sizeof *split);
    hw.rows = malloc(train->n * sizeof *hw.rows);
    ha.rows = malloc(train->n * sizeof *ha.rows);
    if (split == NULL || hw.rows == NULL || ha.rows == NULL) goto nomem;
    if ((rc = pd_cv_holdout(task, train->y, train->n, 0.5, seed ^ 0x6172636873706c74ULL, split,
                            msg, sizeof msg)) != 0) {
        params_fail(err, errlen, "darts: splitting the rows: %s", msg);
        rc = PD_EDATA;
        goto out;
    }
    for (size_t i = 0; i < train->n; i++) {
        if (split[i]) ha.rows[ha.n++] = i;
        else hw.rows[hw.n++] = i;
    }
    pd_rng_seed(&hw.rng, seed ^ 0x77656967687473ULL);
    pd_rng_seed(&ha.rng, seed ^ 0x616c70686173ULL);
    size_t smaller = hw.n < ha.n ? hw.n : ha.n;
    size_t B = (size_t)p->t.batch_size < smaller ? (size_t)p->t.batch_size : smaller;
    size_t steps = smaller / B;

    g = nn_graph_new(m->be, msg, sizeof msg);
    bx = malloc(B * train->d * sizeof *bx);
    labels = malloc(B * sizeof *labels);
    int nw = cnn_optim_groups(cnnnet_weights(m->net), &wg);
    int na = cnn_optim_groups(cnnnet_arch(m->net), &ag);
    if (g == NULL || bx == NULL || labels == NULL || nw < 0 || na < 0) goto nomem;
    if (nw == 0 || na == 0) {
        rc = PD_EINTERNAL;
        params_fail(err, errlen, "darts: the supernet has no trainable weights or alphas");
        goto out;
    }
    struct optim_config oc;
    optim_config_init(&oc, OPTIM_SGD);
    oc.lr = m->learning_rate;
    oc.momentum = 0.9;
    oc.weight_decay = 3e-4;
    struct optim_config ac;
    optim_config_init(&ac, OPTIM_ADAMW);
    ac.lr = ARCH_LR;
    ac.beta1 = 0.5;
    ac.beta2 = 0.999;
    ac.weight_decay = 0;     /* Adam's L2 is added to the gradient below */
    if (optim_new_on(m->be, &oc, wg, (size_t)nw, &wopt, msg, sizeof msg) != 0 ||
        optim_new_on(m->be, &ac, ag, (size_t)na, &aopt, msg, sizeof msg) != 0) {
        rc = PD_EINTERNAL;
        params_fail(err, errlen, "darts: %s", msg);
        goto out;
    }
    double lr_min = DARTS_LR_MIN < m->learning_rate ? DARTS_LR_MIN : m->learning_rate;
    struct optim_sched sched = {OPTIM_SCHED_COSINE, m->learning_rate, lr_min, 0,
                                (uint64_t)p->t.epochs * steps};
    uint32_t pad = p->t.augment ? (uint32_t)(h / 8 > 1 ? h / 8 : 1) : 0;
    struct cnn_feed feed = {train->x, train->y, c, h, w, pad, p->t.augment && p->t.hflip};
    uint64_t step = 0;
    for (int epoch = 1; epoch <= p->t.epochs; epoch++) {
        double sum = 0;
        size_t counted = 0;
        for (size_t s = 0; s < steps; s++, step++) {
            if (opts->cancel && *opts->cancel) {
                rc = PD_ECANCELLED;
                params_fail(err, errlen, "darts: cancelled");
                goto out;
            }
            double loss;
            /* the architecture step, weights fixed */
            cnn_feed_batch(m, &feed, half_next(&ha, B), B, seed * 131 + 2 * step, bx, labels);
            cnnnet_set_trainable(m->net, 0, 1);
            optim_zero_grad(aopt);
            if (cnn_model_backward(m, g, bx, labels, (int)B, &loss, err, errlen) < 0) {
                rc = PD_EINTERNAL;
                goto out;
            }
            if (isfinite(loss)) {
                /* torch.optim.Adam's L2: g += wd w, in float as torch does */
                for (int i = 0; i < na; i++)
                    m->be->axpy(m->be, ag[i].g, (float)ARCH_WD, ag[i].w, ag[i].n);
                optim_step(aopt);
            }
            /* the weight step, alphas fixed */
            cnn_feed_batch(m, &feed, half_next(&hw, B), B, seed * 131 + 2 * step + 1, bx, labels);
            cnnnet_set_trainable(m->net, 1, 0);
            optim_zero_grad(wopt);
            if (cnn_model_backward(m, g, bx, labels, (int)B, &loss, err, errlen) < 0) {
                rc = PD_EINTERNAL;
                goto out;
            }
            if (!isfinite(loss)) {
                rc = PD_EDATA;
                params_fail(err, errlen, "darts: the training loss diverged at epoch %d "
                            "(try a lower learning_rate)", epoch);
                goto out;
            }
            if (isfinite(optim_clip_grad_norm(wopt, 5.0))) {
                optim_set_lr(wopt, optim_sched_lr(&sched, step));
                optim_step(wopt);
            }
            sum += loss;
            counted++;
        }
        if (opts->progress) {
            struct pd_progress pr = {epoch, (int)p->t.epochs, "train_loss",
                                     counted ? sum / (double)counted : NAN};
            opts->progress(opts->progress_ctx, &pr);
            if (valid != NULL && valid->d == train->d && valid->n > 0) {
                pr.metric = "valid_accuracy";
                pr.value = cnn_model_accuracy(m, valid->x, valid->y, NULL, valid->n);
                opts->progress(opts->progress_ctx, &pr);
            }
        }
    }
    cnnnet_set_trainable(m->net, 1, 1);
    cnn_model_note_device(m);
    *out_model = m;
    m = NULL;
    rc = PD_OK;
    goto out;
nomem:
    rc = PD_ENOMEM;
    params_fail(err, errlen, "darts: out of memory");
out:
    optim_free(wopt);
    optim_free(aopt);
    free(wg);
    free(ag);
    nn_graph_free(g);
    free(bx);
    free(labels);
    free(split);
    free(hw.rows);
    free(ha.rows);
    cnn_model_free(m);
    return rc;
}

static int darts_load(struct pd_reader *in, void **out_model, char *err, size_t errlen)
{
    return cnn_model_load(in, CNNNET_SEARCH, out_model, err, errlen);
}

static cJSON *alphas_json(const struct cnn_model *m, int reduce)
{
    double a[CNNNET_SEARCH_EDGES * GOP_COUNT];
    if (cnnnet_alphas(m->net, reduce, a) < 0) return NULL;
    cJSON *rows = cJSON_CreateArray();
    for (int e = 0; rows && e < CNNNET_SEARCH_EDGES; e++)
        cJSON_AddItemToArray(rows, cJSON_CreateDoubleArray(a + e * GOP_COUNT, GOP_COUNT));
    return rows;
}

static cJSON *darts_details(const void *model)
{
    const struct cnn_model *m = model;
    if (m == NULL) return NULL;
    struct genotype gt;
    cJSON *o = cnn_details_common(m);
    if (o == NULL || cnnnet_derive(m->net, &gt) < 0) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddItemToObject(o, "genotype", genotype_to_json(&gt));
    cJSON *al = cJSON_AddObjectToObject(o, "alphas");
    if (al) {
        cJSON_AddItemToObject(al, "normal", alphas_json(m, 0));
        cJSON_AddItemToObject(al, "reduce", alphas_json(m, 1));
        cJSON *ops = cJSON_AddArrayToObject(al, "ops");
        for (int k = 0; ops && k < GOP_COUNT; k++)
            cJSON_AddItemToArray(ops, cJSON_CreateString(genotype_op_name(k)));
    }
    cJSON_AddNumberToObject(o, "cells", m->cfg.cells);
    cJSON_AddNumberToObject(o, "channels", m->cfg.channels);
    /* the derived network's size at the same depth and width */
    struct cnnnet_config dc = m->cfg;
    dc.mode = CNNNET_FIXED;
    dc.genotype = gt;
    struct cnnnet *dn = NULL;
    char msg[128];
    double macs = 0;
    if (cnnnet_new(m->be, &dc, &dn, msg, sizeof msg) == 0 && cnnnet_macs(dn, &macs, msg, sizeof msg) == 0) {
        cJSON *d = cJSON_AddObjectToObject(o, "derived");
        if (d) {
            cJSON_AddNumberToObject(d, "param_count", (double)cnnnet_param_count(dn));
            cJSON_AddNumberToObject(d, "flops", macs);
        }
    }
    cnnnet_free(dn);
    return o;
}

const struct pd_family pd_family_darts = {
    .name = "darts",
    .handles_missing = 0,
    .needs_scaling = 0,
    .native_categorical = 0,
    .supports_classification = 1,
    .supports_regression = 0,
    .params_parse = darts_params_parse,
    .params_json = darts_params_json,
    .params_free = darts_params_free,
    .fit = darts_fit,
    .predict = cnn_predict,
    .save = cnn_model_save,
    .load = darts_load,
    .model_free = cnn_model_free,
    .shape = cnn_shape,
    .details = darts_details,
    .no_refit_on_holdout = 1,
};

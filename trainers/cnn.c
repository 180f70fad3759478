/*
 * cnn.c - see cnn.h. Runs on the caller's thread; the CPU backend uses
 * OpenBLAS's threads and its own small pool inside each kernel, the CUDA
 * backend its GPU.
 *
 * Nothing here reads backend memory directly: batches go up through
 * nn_graph_input, the loss and probabilities come down through
 * nn_tensor_download (once per batch), and the optimizer is nn/optim's
 * backend kind (optim_new_on), the same code on every backend.
 */
#include "trainers/cnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/augment.h"
#include "nn/ops.h"
#include "nn/tensor.h"
#include "trainers/params.h"
#include "trainers/rng.h"

#define CNN_MAGIC 0x314e4e43u    /* "CNN1" */
#define CNN_MAX_BLOB ((uint64_t)1 << 34)
#define CNN_DEFAULT_LR 0.025
/* The extras' bounds and defaults (cnn.h says why these defaults). */
#define CNN_MAX_DROP_PATH 0.9
#define CNN_MAX_AUX_WEIGHT 1.0
#define CNN_DEFAULT_DROP_PATH 0.0
#define CNN_DEFAULT_CUTOUT 0.0
#define CNN_DEFAULT_AUX_WEIGHT 0.0
enum { PRED_BLOCK = 128 };


struct cnn_params {
    struct cnn_train_params t;
    struct genotype genotype;
    long from_search;        /* -1 = none */
    /* the training extras of DARTS' evaluation (cnn.h); 0 = off */
    double drop_path;        /* the last epoch's drop-path probability */
    double cutout;           /* the hole's side as a fraction of the shorter image side */
    double aux_weight;       /* the auxiliary head's loss weight */
};

/* ---- parameters ------------------------------------------------------------- */

int cnn_train_param(struct params_ctx *pc, const cJSON *it, struct cnn_train_params *t)
{
    const char *k = it->string;
    if (strcmp(k, "cells") == 0) return params_int(pc, it, CNNNET_MIN_CELLS, CNNNET_MAX_CELLS, &t->cells);
    if (strcmp(k, "channels") == 0)
        return params_int(pc, it, CNNNET_MIN_CHANNELS, CNNNET_MAX_CHANNELS, &t->channels);
    if (strcmp(k, "epochs") == 0) return params_int(pc, it, 1, 600, &t->epochs);
    if (strcmp(k, "batch_size") == 0) return params_int(pc, it, 8, 1024, &t->batch_size);
    if (strcmp(k, "augment") == 0) return params_bool(pc, it, &t->augment);
    if (strcmp(k, "hflip") == 0) return params_bool(pc, it, &t->hflip);
    if (strcmp(k, "seed") == 0) return params_int(pc, it, 0, 2147483647L, &t->seed);
    if (strcmp(k, "learning_rate") != 0) return 1;
    if (cJSON_IsString(it) && strcmp(it->valuestring, "auto") == 0) {
        t->lr = 0;
        return 0;
    }
    if (cJSON_IsNumber(it) && isfinite(it->valuedouble) && it->valuedouble > 0 &&
        it->valuedouble <= 10) {
        t->lr = it->valuedouble;
        return 0;
    }
    return params_fail(pc->err, pc->errlen, "learning_rate: must be \"auto\" or a number in (0, 10]");
}

void cnn_train_params_json(const struct cnn_train_params *t, cJSON *o)
{
    cJSON_AddNumberToObject(o, "cells", (double)t->cells);
    cJSON_AddNumberToObject(o, "channels", (double)t->channels);
    cJSON_AddNumberToObject(o, "epochs", (double)t->epochs);
    cJSON_AddNumberToObject(o, "batch_size", (double)t->batch_size);
    if (t->lr > 0) cJSON_AddNumberToObject(o, "learning_rate", t->lr);
    else cJSON_AddStringToObject(o, "learning_rate", "auto");
    cJSON_AddBoolToObject(o, "augment", t->augment);
    cJSON_AddBoolToObject(o, "hflip", t->hflip);
    if (t->seed >= 0) cJSON_AddNumberToObject(o, "seed", (double)t->seed);
}

static int cnn_params_parse(const cJSON *params, const struct pd_task *task, void **out, char *err,
                            size_t errlen)
{
    *out = NULL;
    struct params_ctx pc = {"cnn", PARAMS_BRIEF, err, errlen};
    if (task == NULL || task->kind != PD_TASK_CLASSIFICATION)
        return params_fail(err, errlen, "cnn: only for classification");
    if (params_object(&pc, params) != 0) return PD_EPARAM;
    struct cnn_params *p = calloc(1, sizeof *p);
    if (p == NULL) {
        params_fail(err, errlen, "params: out of memory");
        return PD_ENOMEM;
    }
    *p = (struct cnn_params){
        .t = {.cells = 5, .channels = 16, .epochs = 10, .batch_size = 64, .lr = CNN_DEFAULT_LR,
              .augment = 1, .hflip = 0, .seed = -1},
        .genotype = genotype_darts_v2, .from_search = -1,
        .drop_path = CNN_DEFAULT_DROP_PATH, .cutout = CNN_DEFAULT_CUTOUT,
        .aux_weight = CNN_DEFAULT_AUX_WEIGHT,
    };
    const cJSON *obj = cJSON_IsObject(params) ? params : NULL, *it;
    cJSON_ArrayForEach(it, obj) {
        const char *k = it->string;
        int rc;
        if (strcmp(k, "genotype") == 0) {
            char msg[200];
            rc = genotype_from_json(it, &p->genotype, msg, sizeof msg) == 0
                     ? 0 : params_fail(err, errlen, "%s", msg);
        } else if ((rc = cnn_train_param(&pc, it, &p->t)) != 1) {
            /* a shared setting: parsed (rc 0) or refused */
        } else if (strcmp(k, "from_search") == 0) {
            rc = params_int(&pc, it, 0, 2147483647L, &p->from_search);
        } else if (strcmp(k, "drop_path") == 0) {
            rc = params_num(&pc, it, 0, 0, CNN_MAX_DROP_PATH, 0, &p->drop_path);
        } else if (strcmp(k, "cutout") == 0) {
            rc = params_num(&pc, it, 0, 0, 1, 0, &p->cutout);
        } else if (strcmp(k, "auxiliary_weight") == 0) {
            rc = params_num(&pc, it, 0, 0, CNN_MAX_AUX_WEIGHT, 0, &p->aux_weight);
        } else {
            rc = params_unknown(&pc, it);
        }
        if (rc != 0) {
            free(p);
            return rc;
        }
    }
    *out = p;
    return PD_OK;
}

static cJSON *cnn_params_json(const void *params)
{
    const struct cnn_params *p = params;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || p == NULL) return o;
    cJSON *g = genotype_to_json(&p->genotype);
    if (g) cJSON_AddItemToObject(o, "genotype", g);
    cnn_train_params_json(&p->t, o);
    if (p->from_search >= 0) cJSON_AddNumberToObject(o, "from_search", (double)p->from_search);
    cJSON_AddNumberToObject(o, "drop_path", p->drop_path);
    cJSON_AddNumberToObject(o, "cutout", p->cutout);
    cJSON_AddNumberToObject(o, "auxiliary_weight", p->aux_weight);
    return o;
}

static void cnn_params_free(void *params) { free(params); }

/* ---- the model ---------------------------------------------------------------- */

int cnn_model_new(const struct cnnnet_config *cfg, int threads, const char *device,
                  struct cnn_model **out, char *err, size_t errlen)
{
    *out = NULL;
    struct cnn_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, errlen, "cnn: out of memory");
        return PD_ENOMEM;
    }
    m->cfg = *cfg;
    m->threads = threads < 1 ? 1 : threads;
    for (int c = 0; c < 3; c++) m->std[c] = 1.0f;
    char msg[256] = "";
    m->be = nn_backend_for_device(device, m->threads, 0, msg, sizeof msg);
    if (m->be == NULL) {
        /* nn/device's message starts 'device "cuda": ...'; the field leads */
        const char *why = strncmp(msg, "device ", 7) == 0 ? msg + 7 : msg;
        params_fail(err, errlen, "device: %s", why);
        cnn_model_free(m);
        return PD_EPARAM;
    }
    if (cnnnet_new(m->be, cfg, &m->net, msg, sizeof msg) < 0) {
        snprintf(err, errlen, "cnn: %s", msg);
        cnn_model_free(m);
        return PD_EINTERNAL;
    }
    if (cnnnet_macs(m->net, &m->macs, msg, sizeof msg) < 0) {
        snprintf(err, errlen, "cnn: %s", msg);
        cnn_model_free(m);
        return PD_EINTERNAL;
    }
    *out = m;
    return PD_OK;
}

void cnn_model_note_device(struct cnn_model *m)
{
    nn_device_describe(m->be, &m->device);
}

void cnn_model_free(void *model)
{
    struct cnn_model *m = model;
    if (m == NULL) return;
    cnnnet_free(m->net);
    nn_backend_free(m->be);
    cJSON_Delete(m->lr_find);
    free(m);
}

int cnn_image_shape(const struct pd_fit_opts *opts, const struct pd_data *train, int *c, int *h,
                    int *w, char *err, size_t errlen)
{
    *c = opts ? opts->image_channels : 0;
    *h = opts ? opts->image_height : 0;
    *w = opts ? opts->image_width : 0;
    if ((*c != 1 && *c != 3) || *h < 1 || *w < 1 || *h > CNNNET_MAX_SIDE || *w > CNNNET_MAX_SIDE) {
        params_fail(err, errlen, "cnn: needs image data (a spec of kind \"images\"); "
                                 "these rows have no image shape");
        return PD_EDATA;
    }
    if (train == NULL || train->d != (size_t)*c * (size_t)*h * (size_t)*w || train->n == 0) {
        params_fail(err, errlen, "cnn: %zu features per row are not %d x %d x %d pixels",
                    train ? train->d : 0, *c, *h, *w);
        return PD_EDATA;
    }
    return PD_OK;
}

void cnn_model_set_norm(struct cnn_model *m, const float *x, const size_t *rows, size_t n)
{
    int c = m->cfg.in_channels;
    size_t hw = (size_t)m->cfg.height * (size_t)m->cfg.width;
    struct aug_stats st;
    aug_stats_init(&st, c);
    for (size_t i = 0; i < n; i++) aug_stats_add(&st, x + (rows ? rows[i] : i) * (size_t)c * hw, hw);
    if (aug_stats_finish(&st, m->mean, m->std) != 0)
        for (int k = 0; k < c; k++) {
            m->mean[k] = 0.0f;
            m->std[k] = 1.0f;
        }
}

/* cnn_feed_batch with a cutout hole of side `cutout` (0: none, and then
 * exactly cnn_feed_batch: the hole draws after everything else). */
static void feed_batch(const struct cnn_model *m, const struct cnn_feed *f, uint32_t cutout,
                       const size_t *idx, size_t b, uint64_t seed, float *out, int *labels)
{
    size_t hw = (size_t)f->h * (size_t)f->w, d = (size_t)f->c * hw;
    for (size_t i = 0; i < b; i++) {
        const float *src = f->x + idx[i] * d;
        float *dst = out + i * d;
        struct pd_rng r;
        pd_rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ULL * (i + 1)));
        if (f->pad > 0) aug_random_crop(src, dst, f->c, (uint32_t)f->h, (uint32_t)f->w, f->pad, &r,
                                        NULL, NULL);
        else memcpy(dst, src, d * sizeof *dst);
        if (f->hflip && pd_rng_uniform(&r) < 0.5) aug_hflip(dst, f->c, (uint32_t)f->h, (uint32_t)f->w);
        aug_normalize(dst, f->c, hw, m->mean, m->std);
        aug_cutout(dst, f->c, (uint32_t)f->h, (uint32_t)f->w, cutout, &r, NULL, NULL);
        if (labels) labels[i] = (int)f->y[idx[i]];
    }
}

void cnn_feed_batch(const struct cnn_model *m, const struct cnn_feed *f, const size_t *idx,
                    size_t b, uint64_t seed, float *out, int *labels)
{
    feed_batch(m, f, 0, idx, b, seed, out, labels);
}

/* The training extras of one step (NULL: none; cnn_model_backward). */
struct step_extras {
    float drop_path;         /* this epoch's probability */
    uint64_t seed;           /* this step's masks */
    double aux_weight;       /* > 0: add this times the auxiliary head's loss */
};

/* cnn_model_backward with extras. *loss is the main head's loss (the
 * figure "train_loss" reports, comparable with and without the head); the
 * gradient is that of loss + aux_weight * the auxiliary loss, as DARTS. */
static int backward_ex(struct cnn_model *m, struct nn_graph *g, const float *bx, const int *labels,
                       int b, const struct step_extras *ex, double *loss, char *err, size_t errlen)
{
    nn_graph_reset(g);
    nn_graph_set_training(g, 1);
    nn_graph_set_recording(g, 1);
    int shape[4] = {b, m->cfg.in_channels, m->cfg.height, m->cfg.width};
    struct nn_tensor *x = nn_graph_input(g, 4, shape, bx), *logits, *aux = NULL;
    int want_aux = ex && ex->aux_weight > 0 && cnnnet_aux(m->net) != NULL;
    if (ex)
        logits = cnnnet_forward_train(m->net, g, x, ex->drop_path, ex->seed, want_aux ? &aux : NULL);
    else
        logits = cnnnet_forward(m->net, g, x);
    struct nn_tensor *l = nn_softmax_ce(g, logits, labels, NULL), *total = l;
    if (want_aux)
        total = nn_add(g, l, nn_scale(g, nn_softmax_ce(g, aux, labels, NULL), (float)ex->aux_weight));
    if (total == NULL) {
        snprintf(err, errlen, "cnn: forward: %s", nn_graph_error(g) ? nn_graph_error(g) : "failed");
        return -1;
    }
    float v = 0, vt = 0;
    nn_tensor_download(l, &v);
    if (total != l) nn_tensor_download(total, &vt);
    else vt = v;
    *loss = isfinite(vt) ? v : vt;
    if (!isfinite(vt)) return 0;   /* the caller decides; no backward through NaN */
    return nn_graph_backward(g, total, err, errlen) == 0 ? 0 : -1;
}

uint32_t cnn_cutout_length(double fraction, int h, int w)
{
    if (!(fraction > 0) || h < 1 || w < 1) return 0;
    double len = floor(fraction * (double)(h < w ? h : w) + 0.5);
    return len < 1 ? 1 : (uint32_t)len;
}

int cnn_model_backward(struct cnn_model *m, struct nn_graph *g, const float *bx, const int *labels,
                       int b, double *loss, char *err, size_t errlen)
{
    return backward_ex(m, g, bx, labels, b, NULL, loss, err, errlen);
}

int cnn_optim_groups(struct nn_params *ps, struct optim_group **out)
{
    *out = NULL;
    int n = 0, cnt = nn_params_count(ps);
    struct optim_group *gs = malloc(((size_t)cnt + 1) * sizeof *gs);
    if (gs == NULL) return -1;
    for (int i = 0; i < cnt; i++) {
        struct nn_tensor *t = nn_params_get(ps, i);
        if (!(t->flags & NN_T_PARAM)) continue;
        if (t->data == NULL || t->grad == NULL) continue;   /* params always have both */
        gs[n++] = (struct optim_group){t->data, t->grad, t->numel, 0};
    }
    *out = gs;
    return n;
}

/* Probabilities of n normalized images (host floats) into out (n x K). */
static int forward_probs(const struct cnn_model *m, struct nn_graph *g, const float *bx, int b,
                         float *probs)
{
    nn_graph_reset(g);
    nn_graph_set_training(g, 0);
    nn_graph_set_recording(g, 0);
    int shape[4] = {b, m->cfg.in_channels, m->cfg.height, m->cfg.width};
    /* an evaluation pass changes nothing in the network: the cast is safe */
    struct nn_tensor *p = nn_softmax(g, cnnnet_forward(m->net, g, nn_graph_input(g, 4, shape, bx)));
    if (p == NULL) return -1;
    nn_tensor_download(p, probs);
    return 0;
}

/* Run fn over rows[0..n) (or 0..n-1) of x in blocks: normalized, no
 * augmentation, probabilities into a block buffer. */
static int predict_rows(const struct cnn_model *m, const float *x, const size_t *rows, size_t n,
                        double *out_proba, const double *y, size_t *correct)
{
    int K = m->cfg.n_classes;
    size_t d = (size_t)m->cfg.in_channels * m->cfg.height * m->cfg.width;
    size_t B = n < PRED_BLOCK ? n : PRED_BLOCK;
    char msg[256];
    struct nn_graph *g = nn_graph_new(m->be, msg, sizeof msg);
    float *bx = malloc((B ? B : 1) * d * sizeof *bx), *pr = malloc((B ? B : 1) * (size_t)K * sizeof *pr);
    size_t *idx = malloc((B ? B : 1) * sizeof *idx);
    int rc = PD_OK;
    if (g == NULL || bx == NULL || pr == NULL || idx == NULL) {
        rc = PD_ENOMEM;
        goto out;
    }
    struct cnn_feed f = {x, y, m->cfg.in_channels, m->cfg.height, m->cfg.width, 0, 0};
    if (correct) *correct = 0;
    for (size_t r0 = 0; r0 < n; r0 += B) {
        size_t b = n - r0 < B ? n - r0 : B;
        for (size_t i = 0; i < b; i++) idx[i] = rows ? rows[r0 + i] : r0 + i;
        cnn_feed_batch(m, &f, idx, b, 0, bx, NULL);
        if (forward_probs(m, g, bx, (int)b, pr) < 0) {
            rc = PD_EINTERNAL;
            goto out;
        }
        for (size_t i = 0; i < b; i++) {
            const float *p = pr + i * (size_t)K;
            if (out_proba) {
                double s = 0, *o = out_proba + (r0 + i) * (size_t)K;
                for (int k = 0; k < K; k++) s += o[k] = p[k];
                for (int k = 0; k < K; k++) o[k] = s > 0 ? o[k] / s : 1.0 / K;
            }
            if (correct) {
                int best = 0;
                for (int k = 1; k < K; k++) best = p[k] > p[best] ? k : best;
                *correct += best == (int)y[idx[i]];
            }
        }
    }
out:
    nn_graph_free(g);
    free(bx);
    free(pr);
    free(idx);
    return rc;
}

double cnn_model_accuracy(const struct cnn_model *m, const float *x, const double *y,
                          const size_t *rows, size_t n)
{
    size_t correct = 0;
    if (n == 0 || predict_rows(m, x, rows, n, NULL, y, &correct) != PD_OK) return NAN;
    return (double)correct / (double)n;
}

int cnn_predict(const void *model, const float *x, size_t n, size_t d, int threads, double *out)
{
    (void)threads;   /* the backend's threads were set when it was made */
    const struct cnn_model *m = model;
    if (m == NULL || d != (size_t)m->cfg.in_channels * m->cfg.height * m->cfg.width) return PD_EPARAM;
    if (n == 0) return PD_OK;
    return predict_rows(m, x, NULL, n, out, NULL, NULL);
}

void cnn_shape(const void *model, size_t *inputs, size_t *outputs)
{
    const struct cnn_model *m = model;
    *inputs = (size_t)m->cfg.in_channels * m->cfg.height * m->cfg.width;
    *outputs = (size_t)m->cfg.n_classes;
}

/* ---- save / load ------------------------------------------------------------------ */

static int put_blob(struct pd_buf *out, struct nn_params *ps)
{
    void *blob = NULL;
    size_t len = 0;
    char msg[128];
    if (nn_params_save(ps, &blob, &len, msg, sizeof msg) != 0) return PD_ENOMEM;
    pd_buf_put_u64(out, len);
    pd_buf_put(out, blob, len);
    free(blob);
    return out->failed ? PD_ENOMEM : PD_OK;
}

int cnn_model_save(const void *model, struct pd_buf *out)
{
    const struct cnn_model *m = model;
    if (m == NULL) return PD_EPARAM;
    const struct cnnnet_config *c = &m->cfg;
    pd_buf_put_u32(out, CNN_MAGIC);
    pd_buf_put_u32(out, (uint32_t)c->mode);
    pd_buf_put_u32(out, (uint32_t)c->in_channels);
    pd_buf_put_u32(out, (uint32_t)c->height);
    pd_buf_put_u32(out, (uint32_t)c->width);
    pd_buf_put_u32(out, (uint32_t)c->n_classes);
    pd_buf_put_u32(out, (uint32_t)c->cells);
    pd_buf_put_u32(out, (uint32_t)c->channels);
    for (int r = 0; r < 2; r++)
        for (int e = 0; e < GENOTYPE_EDGES; e++) {
            const struct genotype_edge *ge = r ? &c->genotype.reduce[e] : &c->genotype.normal[e];
            pd_buf_put_u32(out, (uint32_t)ge->op);
            pd_buf_put_u32(out, (uint32_t)ge->input);
        }
    pd_buf_put_f32s(out, m->mean, (size_t)c->in_channels);
    pd_buf_put_f32s(out, m->std, (size_t)c->in_channels);
    pd_buf_put_f64(out, m->learning_rate);
    int rc = put_blob(out, cnnnet_weights(m->net));
    if (rc == PD_OK && c->mode == CNNNET_SEARCH) rc = put_blob(out, cnnnet_arch(m->net));
    return rc != PD_OK ? rc : out->failed ? PD_ENOMEM : PD_OK;
}

static int get_blob(struct pd_reader *in, struct nn_params *ps, char *err, size_t errlen)
{
    uint64_t len = 0;
    if (pd_reader_get_u64(in, &len) != 0 || len > in->left || len > CNN_MAX_BLOB) return -1;
    char msg[256];
    if (nn_params_load(ps, in->p, (size_t)len, msg, sizeof msg) != 0) {
        snprintf(err, errlen, "cnn: model weights: %.200s", msg);
        return -2;
    }
    in->p += len;
    in->left -= (size_t)len;
    return 0;
}

int cnn_model_load(struct pd_reader *in, int mode, void **out_model, char *err, size_t errlen)
{
    *out_model = NULL;
    uint32_t v[8] = {0};
    for (int i = 0; i < 8; i++) pd_reader_get_u32(in, &v[i]);
    struct cnnnet_config cfg = {
        .mode = (int)v[1], .in_channels = (int)v[2], .height = (int)v[3], .width = (int)v[4],
        .n_classes = (int)v[5], .cells = (int)v[6], .channels = (int)v[7],
    };
    int ok = !in->failed && v[0] == CNN_MAGIC && v[1] == (uint32_t)mode && (v[2] == 1 || v[2] == 3) &&
             v[3] >= 1 && v[3] <= CNNNET_MAX_SIDE && v[4] >= 1 && v[4] <= CNNNET_MAX_SIDE &&
             v[5] >= 2 && v[5] <= CNNNET_MAX_CLASSES && v[6] >= CNNNET_MIN_CELLS &&
             v[6] <= CNNNET_MAX_CELLS && v[7] >= CNNNET_MIN_CHANNELS && v[7] <= CNNNET_MAX_CHANNELS;
    for (int r = 0; r < 2; r++)
        for (int e = 0; e < GENOTYPE_EDGES; e++) {
            uint32_t op = 0, input = 0;
            pd_reader_get_u32(in, &op);
            pd_reader_get_u32(in, &input);
            struct genotype_edge *ge = r ? &cfg.genotype.reduce[e] : &cfg.genotype.normal[e];
            ge->op = op < GOP_COUNT ? (int)op : 0;
            ge->input = input < 2 + GENOTYPE_NODES ? (int)input : 0;
        }
    float mean[3] = {0}, sd[3] = {1, 1, 1};
    double lr = 0;
    if (ok) {
        pd_reader_get_f32s(in, mean, (size_t)cfg.in_channels);
        pd_reader_get_f32s(in, sd, (size_t)cfg.in_channels);
        pd_reader_get_f64(in, &lr);
        for (int c = 0; c < cfg.in_channels; c++)
            ok = ok && isfinite(mean[c]) && isfinite(sd[c]) && sd[c] > 0;
        ok = ok && !in->failed;
    }
    if (!ok) {
        params_fail(err, errlen, "cnn: model data is truncated or not a %s model",
                    mode == CNNNET_SEARCH ? "darts" : "cnn");
        return PD_EFORMAT;
    }
    struct cnn_model *m = NULL;
    char msg[256] = "";
    int rc = cnn_model_new(&cfg, 1, NULL, &m, msg, sizeof msg);
    if (rc != PD_OK) {
        /* a genotype the network refuses is a damaged file, not our bug */
        params_fail(err, errlen, "%s", msg);
        return rc == PD_ENOMEM ? rc : PD_EFORMAT;
    }
    memcpy(m->mean, mean, sizeof mean);
    memcpy(m->std, sd, sizeof sd);
    m->learning_rate = lr;
    int br = get_blob(in, cnnnet_weights(m->net), msg, sizeof msg);
    if (br == 0 && mode == CNNNET_SEARCH) br = get_blob(in, cnnnet_arch(m->net), msg, sizeof msg);
    if (br != 0) {
        params_fail(err, errlen, "%s", br == -2 ? msg : "cnn: model weights are truncated");
        cnn_model_free(m);
        return PD_EFORMAT;
    }
    *out_model = m;
    return PD_OK;
}

static int cnn_load(struct pd_reader *in, void **out_model, char *err, size_t errlen)
{
    return cnn_model_load(in, CNNNET_FIXED, out_model, err, errlen);
}

/* ---- details ----------------------------------------------------------------------- */

cJSON *cnn_details_common(const struct cnn_model *m)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cJSON_AddNumberToObject(o, "param_count", (double)cnnnet_param_count(m->net));
    cJSON_AddNumberToObject(o, "flops", m->macs);
    struct nn_device_info now;
    const struct nn_device_info *info = &m->device;
    if (info->kind[0] == 0) {
        nn_device_describe(m->be, &now);
        info = &now;
    }
    cJSON *dev = nn_device_to_json(info);
    if (dev) {
        if (strcmp(info->kind, "cpu") == 0) cJSON_AddNumberToObject(dev, "threads", m->threads);
        cJSON_AddItemToObject(o, "device", dev);
    }
    if (m->learning_rate > 0) cJSON_AddNumberToObject(o, "learning_rate", m->learning_rate);
    if (m->lr_find) cJSON_AddItemToObject(o, "lr_find", cJSON_Duplicate(m->lr_find, 1));
    return o;
}

static cJSON *cnn_details(const void *model)
{
    const struct cnn_model *m = model;
    if (m == NULL) return NULL;
    cJSON *o = cnn_details_common(m), *g = genotype_to_json(&m->cfg.genotype);
    if (o == NULL || g == NULL) {
        cJSON_Delete(o);
        cJSON_Delete(g);
        return NULL;
    }
    cJSON_AddItemToObject(o, "genotype", g);
    cJSON_AddNumberToObject(o, "cells", m->cfg.cells);
    cJSON_AddNumberToObject(o, "channels", m->cfg.channels);
    return o;
}

/* ---- training ---------------------------------------------------------------------- */

/* What fit and the range test share: the model at its initialization,
 * the optimizer, the batches. */
struct trainer {
    const struct cnn_params *p;
    struct cnn_model *m;
    struct nn_graph *g;
    struct optim *opt;
    struct optim_group *groups;
    int n_groups;
    struct cnn_feed feed;
    size_t *order;           /* the training rows, shuffled each epoch */
    size_t n, batch, steps_per_epoch;
    float *bx;
    int *labels;
    struct pd_rng rng;
    uint64_t seed;
    uint32_t cutout;         /* the hole's side; 0 = none */
    struct step_extras ex;   /* drop_path set per epoch, seed per step */
    int extras;              /* any extra on: steps go through backward_ex's extras */
};

static void trainer_free(struct trainer *t)
{
    optim_free(t->opt);
    free(t->groups);
    nn_graph_free(t->g);
    free(t->order);
    free(t->bx);
    free(t->labels);
    cnn_model_free(t->m);
    memset(t, 0, sizeof *t);
}

/* The optimizer's groups: the weights', then the auxiliary head's (the
 * head trains with the same SGD, weight decay and clipping, as DARTS'
 * model.parameters() holds it). The count, or -1. */
static int optim_groups(struct cnnnet *net, struct optim_group **out)
{
    struct optim_group *aux = NULL;
    int n = cnn_optim_groups(cnnnet_weights(net), out);
    int na = n >= 0 && cnnnet_aux(net) ? cnn_optim_groups(cnnnet_aux(net), &aux) : 0;
    if (n < 0 || na < 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    if (na > 0) {
        struct optim_group *all = realloc(*out, ((size_t)n + (size_t)na) * sizeof *all);
        if (all == NULL) {
            free(aux);
            free(*out);
            *out = NULL;
            return -1;
        }
        memcpy(all + n, aux, (size_t)na * sizeof *aux);
        *out = all;
        n += na;
    }
    free(aux);
    return n;
}

static int trainer_init(struct trainer *t, const struct cnn_params *p, const struct pd_task *task,
                        const struct pd_data *train, const struct pd_fit_opts *opts, char *err,
                        size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->p = p;
    if (p == NULL || task == NULL || train == NULL)
        return params_fail(err, errlen, "cnn: missing argument");
    if (task->kind != PD_TASK_CLASSIFICATION || task->n_classes < 2 ||
        task->n_classes > CNNNET_MAX_CLASSES)
        return params_fail(err, errlen, "cnn: needs classification with 2..%d classes", CNNNET_MAX_CLASSES);
    int c, h, w;
    int rc = cnn_image_shape(opts, train, &c, &h, &w, err, errlen);
    if (rc != PD_OK) return rc;
    for (size_t i = 0; i < train->n; i++)
        if (!(train->y[i] >= 0 && train->y[i] < task->n_classes && train->y[i] == floor(train->y[i]))) {
            params_fail(err, errlen, "cnn: row %zu: bad class", i);
            return PD_EDATA;
        }
    t->seed = p->t.seed >= 0 ? (uint64_t)p->t.seed : opts->seed;
    struct cnnnet_config cfg = {
        .mode = CNNNET_FIXED, .genotype = p->genotype, .in_channels = c, .height = h, .width = w,
        .n_classes = task->n_classes, .cells = (int)p->t.cells, .channels = (int)p->t.channels,
        .seed = t->seed, .auxiliary = p->aux_weight > 0,
    };
    if ((rc = cnn_model_new(&cfg, opts->threads, opts->device, &t->m, err, errlen)) != PD_OK)
        return rc;
    cnn_model_set_norm(t->m, train->x, NULL, train->n);
    t->n = train->n;
    t->batch = (size_t)p->t.batch_size < t->n ? (size_t)p->t.batch_size : t->n;
    t->steps_per_epoch = t->n / t->batch;   /* the last partial batch is dropped */
    t->feed = (struct cnn_feed){train->x, train->y, c, h, w,
                                p->t.augment ? (uint32_t)(h / 8 > 1 ? h / 8 : 1) : 0,
                                p->t.augment && p->t.hflip};
    t->cutout = cnn_cutout_length(p->cutout, h, w);
    t->ex.aux_weight = p->aux_weight;
    t->extras = p->drop_path > 0 || p->aux_weight > 0;
    char msg[256] = "";
    t->g = nn_graph_new(t->m->be, msg, sizeof msg);
    t->order = malloc(t->n * sizeof *t->order);
    t->bx = malloc(t->batch * train->d * sizeof *t->bx);
    t->labels = malloc(t->batch * sizeof *t->labels);
    t->n_groups = optim_groups(t->m->net, &t->groups);
    if (t->g == NULL || t->order == NULL || t->bx == NULL || t->labels == NULL || t->n_groups < 0) {
        trainer_free(t);
        params_fail(err, errlen, "cnn: out of memory");
        return PD_ENOMEM;
    }
    if (t->n_groups == 0) {
        trainer_free(t);
        params_fail(err, errlen, "cnn: the network has no trainable weights");
        return PD_EINTERNAL;
    }
    struct optim_config oc;
    optim_config_init(&oc, OPTIM_SGD);
    oc.lr = p->t.lr > 0 ? p->t.lr : CNN_DEFAULT_LR;
    oc.momentum = 0.9;
    oc.weight_decay = 3e-4;
    if (optim_new_on(t->m->be, &oc, t->groups, (size_t)t->n_groups, &t->opt, msg, sizeof msg) != 0) {
        trainer_free(t);
        params_fail(err, errlen, "cnn: %s", msg);
        return PD_EINTERNAL;
    }
    for (size_t i = 0; i < t->n; i++) t->order[i] = i;
    pd_rng_seed(&t->rng, t->seed ^ 0x6261746368ULL);
    return PD_OK;
}

static void shuffle(size_t *v, size_t n, struct pd_rng *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)pd_rng_below(r, i), x = v[i - 1];
        v[i - 1] = v[j];
        v[j] = x;
    }
}

/* One SGD step on batch `s` of the current epoch's order at rate lr. */
static int train_step(struct trainer *t, size_t s, uint64_t step, double lr, double *loss,
                      char *err, size_t errlen)
{
    if (s == 0) shuffle(t->order, t->n, &t->rng);
    feed_batch(t->m, &t->feed, t->cutout, t->order + s * t->batch, t->batch, t->seed * 31 + step,
               t->bx, t->labels);
    optim_zero_grad(t->opt);
    t->ex.seed = t->seed * 0x2545f4914f6cdd1dULL + step;
    if (backward_ex(t->m, t->g, t->bx, t->labels, (int)t->batch, t->extras ? &t->ex : NULL, loss,
                    err, errlen) < 0)
        return -1;
    if (!isfinite(*loss)) return 0;
    if (!isfinite(optim_clip_grad_norm(t->opt, 5.0))) return 0;
    optim_set_lr(t->opt, lr);
    optim_step(t->opt);
    return 0;
}

static int is_cancelled(const struct pd_fit_opts *opts)
{
    return opts && opts->cancel && *opts->cancel;
}

/* The range test on t from its current state; the weights and the
 * optimizer state are restored afterwards. */
static int run_finder(struct trainer *t, const struct lrfind_config *cfg,
                      const struct pd_fit_opts *opts, int report, struct lrfind **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    struct lrfind *f = NULL;
    void *wsave = NULL, *asave = NULL;
    size_t wlen = 0, alen = 0, olen = optim_state_bytes(t->opt);
    void *osave = malloc(olen ? olen : 1);
    struct nn_params *aux = cnnnet_aux(t->m->net);
    char msg[256] = "";
    int rc = PD_OK;
    if (osave == NULL || nn_params_save(cnnnet_weights(t->m->net), &wsave, &wlen, msg, sizeof msg) != 0 ||
        (aux && nn_params_save(aux, &asave, &alen, msg, sizeof msg) != 0) ||
        optim_state_save(t->opt, osave, olen) != 0) {
        rc = PD_ENOMEM;
        params_fail(err, errlen, "cnn: out of memory");
        goto out;
    }
    if (lrfind_new(cfg, &f, msg, sizeof msg) != 0) {
        rc = PD_EPARAM;
        params_fail(err, errlen, "lr_find: %s", msg);
        goto out;
    }
    for (uint64_t i = 0; lrfind_running(f); i++) {
        if (is_cancelled(opts)) {
            rc = PD_ECANCELLED;
            params_fail(err, errlen, "cnn: cancelled");
            goto out;
        }
        double loss = NAN;
        if (train_step(t, (size_t)(i % t->steps_per_epoch), i, lrfind_lr(f), &loss, err, errlen) < 0) {
            rc = PD_EINTERNAL;
            goto out;
        }
        lrfind_report(f, loss);
        if (report && opts && opts->progress) {
            struct pd_progress pr = {(int)i + 1, cfg->iterations, "lr_find_loss", loss};
            opts->progress(opts->progress_ctx, &pr);
        }
    }
out:
    if (wsave && (nn_params_load(cnnnet_weights(t->m->net), wsave, wlen, msg, sizeof msg) != 0 ||
                  (asave && nn_params_load(aux, asave, alen, msg, sizeof msg) != 0) ||
                  optim_state_load(t->opt, osave, olen, msg, sizeof msg) != 0) && rc == PD_OK) {
        rc = PD_EINTERNAL;
        params_fail(err, errlen, "cnn: restoring after the range test: %s", msg);
    }
    free(wsave);
    free(asave);
    free(osave);
    if (rc == PD_OK) *out = f;
    else lrfind_free(f);
    return rc;
}

int cnn_lr_find(const void *params, const struct pd_task *task, const struct pd_data *train,
                const struct pd_fit_opts *opts, const struct lrfind_config *cfg, cJSON **out,
                char *err, size_t errlen)
{
    *out = NULL;
    struct lrfind_config dflt;
    if (cfg == NULL) {
        lrfind_config_init(&dflt);
        cfg = &dflt;
    }
    struct trainer t;
    int rc = trainer_init(&t, params, task, train, opts, err, errlen);
    if (rc != PD_OK) return rc;
    struct lrfind *f = NULL;
    rc = run_finder(&t, cfg, opts, 1, &f, err, errlen);
    if (rc == PD_OK && (*out = lrfind_to_json(f)) == NULL) {
        rc = PD_ENOMEM;
        params_fail(err, errlen, "cnn: out of memory");
    }
    lrfind_free(f);
    trainer_free(&t);
    return rc;
}

/* "auto": the range test's valley, or the default when it has none. */
static int auto_lr(struct trainer *t, const struct pd_fit_opts *opts, double *lr, char *err,
                   size_t errlen)
{
    struct lrfind_config cfg;
    lrfind_config_init(&cfg);
    /* fewer steps than fastai's 100 on small data: about two epochs, 30..100 */
    size_t it = 2 * t->steps_per_epoch;
    cfg.iterations = it < 30 ? 30 : it > 100 ? 100 : (int)it;
    cfg.start_lr = 1e-5;
    cfg.end_lr = 10;
    struct lrfind *f = NULL;
    int rc = run_finder(t, &cfg, opts, 0, &f, err, errlen);
    if (rc != PD_OK) return rc;
    struct lrfind_suggestion s;
    *lr = lrfind_suggest(f, LRFIND_VALLEY, &s) == 0 && isfinite(s.lr) && s.lr > 0 ? s.lr : CNN_DEFAULT_LR;
    if (*lr > 10) *lr = 10;
    t->m->lr_find = lrfind_to_json(f);
    lrfind_free(f);
    return PD_OK;
}

static int cnn_fit(const void *params, const struct pd_task *task, const struct pd_data *train,
                   const struct pd_data *valid, const struct pd_fit_opts *opts, void **out_model,
                   char *err, size_t errlen)
{
    *out_model = NULL;
    const struct cnn_params *p = params;
    struct trainer t;
    int rc = trainer_init(&t, p, task, train, opts, err, errlen);
    if (rc != PD_OK) return rc;
    if (valid != NULL && (valid->d != train->d || valid->n == 0)) valid = NULL;
    double lr = p->t.lr;
    if (lr <= 0 && (rc = auto_lr(&t, opts, &lr, err, errlen)) != PD_OK) goto out;
    t.m->learning_rate = lr;
    struct optim_sched sched = {OPTIM_SCHED_COSINE, lr, 0.0, 0,
                                (uint64_t)p->t.epochs * t.steps_per_epoch};
    uint64_t step = 0;
    for (int epoch = 1; epoch <= p->t.epochs; epoch++) {
        double sum = 0;
        size_t counted = 0;
        /* DARTS' schedule: drop_path * e / epochs for the e-th epoch from 0 */
        t.ex.drop_path = (float)(p->drop_path * (double)(epoch - 1) / (double)p->t.epochs);
        for (size_t s = 0; s < t.steps_per_epoch; s++, step++) {
            if (is_cancelled(opts)) {
                rc = PD_ECANCELLED;
                params_fail(err, errlen, "cnn: cancelled");
                goto out;
            }
            double loss;
            if (train_step(&t, s, step, optim_sched_lr(&sched, step), &loss, err, errlen) < 0) {
                rc = PD_EINTERNAL;
                goto out;
            }
            if (!isfinite(loss)) {
                rc = PD_EDATA;
                params_fail(err, errlen, "cnn: the training loss diverged at epoch %d "
                            "(try a lower learning_rate)", epoch);
                goto out;
            }
            sum += loss;
            counted++;
        }
        if (opts->progress) {
            struct pd_progress pr = {epoch, (int)p->t.epochs, "train_loss", counted ? sum / (double)counted : NAN};
            opts->progress(opts->progress_ctx, &pr);
            if (valid) {
                pr.metric = "valid_accuracy";
                pr.value = cnn_model_accuracy(t.m, valid->x, valid->y, NULL, valid->n);
                opts->progress(opts->progress_ctx, &pr);
            }
        }
    }
    cnn_model_note_device(t.m);
    *out_model = t.m;
    t.m = NULL;
    rc = PD_OK;
out:
    trainer_free(&t);
    return rc;
}

const struct pd_family pd_family_cnn = {
    .name = "cnn",
    .handles_missing = 0,
    .needs_scaling = 0,
    .native_categorical = 0,
    .supports_classification = 1,
    .supports_regression = 0,
    .params_parse = cnn_params_parse,
    .params_json = cnn_params_json,
    .params_free = cnn_params_free,
    .fit = cnn_fit,
    .predict = cnn_predict,
    .save = cnn_model_save,
    .load = cnn_load,
    .model_free = cnn_model_free,
    .shape = cnn_shape,
    .lr_find = cnn_lr_find,
    .details = cnn_details,
    .no_refit_on_holdout = 1,
};

/*
 * driver.c - see driver.h. Runs on the caller's thread; the families start
 * their own worker threads inside fit/predict. Cancellation is polled
 * between steps and handed to every fit as opts.cancel.
 *
 * Flow: spec -> CSV table -> schema (column types, task, classes) ->
 * params_parse (needs the task) -> typed frame -> folds -> per fold
 * {prep_fit on the training rows, fit, predict the held-out rows, fold
 * metrics} -> aggregate -> final prep + fit on every row -> model file and
 * OOF file under temporary names -> rename both -> result event.
 *
 * Image data (spec kind "images"): the archive is loaded by
 * trainers/imagedata into one float row of pixels per image, and the
 * schema is an image schema (schema.h) with one numeric column per pixel
 * value; from there the flow is the same (frame, prep, folds, families,
 * metrics, OOF, model file), the frame being built from the pixel rows.
 */
#include "trainers/driver.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/csv.h"
#include "lib/log.h"
#include "nn/device.h"
#include "trainers/cnn.h"
#include "trainers/cv.h"
#include "trainers/darts.h"
#include "trainers/imagedata.h"
#include "trainers/lrtest.h"
#include "trainers/metrics.h"
#include "trainers/preprocess.h"
#include "trainers/schema.h"

/* ---- errors -------------------------------------------------------------- */

int driver_exit_code(int status)
{
    switch (status) {
    case DRIVER_OK: return 0;
    case DRIVER_EBADSPEC: case DRIVER_EBADDATA: return 2;
    case DRIVER_ECANCELLED: return 4;
    default: return 3;
    }
}

static const char *status_kind(int status)
{
    switch (status) {
    case DRIVER_EBADSPEC: return "bad_spec";
    case DRIVER_EBADDATA: return "bad_data";
    case DRIVER_ECANCELLED: return "cancelled";
    default: return "internal";
    }
}

__attribute__((format(printf, 4, 5)))
static int set_err(struct driver_error *e, int status, const char *field,
                   const char *fmt, ...)
{
    e->status = status;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return status;
}

cJSON *driver_error_event(const struct driver_error *e)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cJSON_AddStringToObject(o, "event", "error");
    cJSON_AddStringToObject(o, "kind", status_kind(e->status));
    if (e->field[0]) cJSON_AddStringToObject(o, "field", e->field);
    if (e->line > 0) cJSON_AddNumberToObject(o, "line", (double)e->line);
    cJSON_AddStringToObject(o, "message", e->message);
    return o;
}

/* ---- metrics ------------------------------------------------------------- */

const char *driver_metric_name(int m)
{
    if (m == PD_METRIC_LOG_LOSS) return "logloss";
    return pd_metric_name((enum pd_metric)m);
}

static int metric_lookup(const char *name)
{
    if (strcmp(name, "logloss") == 0) return PD_METRIC_LOG_LOSS;
    return pd_metric_find(name);
}

/* ---- spec ---------------------------------------------------------------- */

static int get_int(const cJSON *it, double lo, double hi, double *out)
{
    if (!cJSON_IsNumber(it)) return -1;
    double v = it->valuedouble;
    if (!(v >= lo && v <= hi) || v != floor(v)) return -1;
    *out = v;
    return 0;
}

static char *dup_string(const cJSON *it)
{
    return cJSON_IsString(it) && it->valuestring[0] ? strdup(it->valuestring) : NULL;
}

int driver_spec_parse(const cJSON *json, struct driver_spec *out,
                      struct driver_error *e)
{
    memset(out, 0, sizeof *out);
    memset(e, 0, sizeof *e);
    out->task = SCHEMA_TASK_AUTO;
    out->folds = 5;
    out->metric = -1;
    out->threads = 1;
    if (!cJSON_IsObject(json))
        return set_err(e, DRIVER_EBADSPEC, NULL, "the spec must be a JSON object");

    static const char *const known[] = {"data", "target", "task", "model", "cv",
                                        "metric", "threads", "artifact", "kind",
                                        "image", "lr_find", "device", "refit", NULL};
    for (const cJSON *it = json->child; it; it = it->next) {
        int ok = 0;
        for (int i = 0; known[i]; i++) ok |= it->string && strcmp(it->string, known[i]) == 0;
        if (!ok) log_msg(LOG_WARN, "spec: ignoring unknown member '%s'", it->string ? it->string : "");
    }

    const cJSON *it = cJSON_GetObjectItemCaseSensitive(json, "kind");
    if (it != NULL && !cJSON_IsNull(it)) {
        const char *k = cJSON_IsString(it) ? it->valuestring : "";
        if (strcmp(k, "images") == 0) out->kind = DRIVER_DATA_IMAGES;
        else if (strcmp(k, "table") == 0) out->kind = DRIVER_DATA_TABLE;
        else return set_err(e, DRIVER_EBADSPEC, "kind", "kind: must be \"table\" or \"images\"");
    }
    it = cJSON_GetObjectItemCaseSensitive(json, "data");
    if (it == NULL)
        return set_err(e, DRIVER_EBADSPEC, "data", out->kind == DRIVER_DATA_IMAGES
                       ? "data: is required (an image archive path)" : "data: is required (a CSV file path)");
    if ((out->data = dup_string(it)) == NULL)
        return set_err(e, DRIVER_EBADSPEC, "data", "data: must be a non-empty string");
    it = cJSON_GetObjectItemCaseSensitive(json, "image");
    if (it != NULL && !cJSON_IsNull(it)) {
        if (out->kind != DRIVER_DATA_IMAGES)
            return set_err(e, DRIVER_EBADSPEC, "image", "image: only for kind \"images\"");
        if (!cJSON_IsObject(it))
            return set_err(e, DRIVER_EBADSPEC, "image", "image: must be an object {height, width, channels}");
        for (const cJSON *m = it->child; m; m = m->next) {
            double v;
            char f[96];
            snprintf(f, sizeof f, "image.%.80s", m->string);
            if (strcmp(m->string, "channels") == 0) {
                if (!cJSON_IsNumber(m) || (m->valuedouble != 1 && m->valuedouble != 3))
                    return set_err(e, DRIVER_EBADSPEC, f, "%s: must be 1 or 3", f);
                out->image_channels = (int)m->valuedouble;
            } else if (strcmp(m->string, "height") == 0 || strcmp(m->string, "width") == 0) {
                if (get_int(m, 1, SCHEMA_MAX_IMAGE_SIDE, &v) < 0)
                    return set_err(e, DRIVER_EBADSPEC, f, "%s: must be an integer from 1 to %u", f,
                                   SCHEMA_MAX_IMAGE_SIDE);
                if (m->string[0] == 'h') out->image_height = (unsigned)v;
                else out->image_width = (unsigned)v;
            } else {
                return set_err(e, DRIVER_EBADSPEC, f, "%s: unknown member (expected height, width, channels)", f);
            }
        }
    }
    it = cJSON_GetObjectItemCaseSensitive(json, "target");
    if (out->kind == DRIVER_DATA_IMAGES) {
        /* the class is the folder name or the IDX label */
        if (it != NULL && !cJSON_IsNull(it))
            log_msg(LOG_WARN, "spec: ignoring target for image data (the class is the folder or IDX label)");
    } else {
        if (it == NULL) return set_err(e, DRIVER_EBADSPEC, "target", "target: is required (a column name)");
        if ((out->target = dup_string(it)) == NULL)
            return set_err(e, DRIVER_EBADSPEC, "target", "target: must be a non-empty string");
    }

    if ((it = cJSON_GetObjectItemCaseSensitive(json, "task")) != NULL) {
        const char *t = cJSON_IsString(it) ? it->valuestring : "";
        if (strcmp(t, "auto") == 0) out->task = SCHEMA_TASK_AUTO;
        else if (strcmp(t, "classification") == 0) out->task = PD_TASK_CLASSIFICATION;
        else if (strcmp(t, "regression") == 0) out->task = PD_TASK_REGRESSION;
        else return set_err(e, DRIVER_EBADSPEC, "task",
                            "task: must be \"auto\", \"classification\" or \"regression\"");
        if (out->kind == DRIVER_DATA_IMAGES && out->task == PD_TASK_REGRESSION)
            return set_err(e, DRIVER_EBADSPEC, "task", "task: image data is for classification only");
    }

    const cJSON *model = cJSON_GetObjectItemCaseSensitive(json, "model");
    if (model == NULL) return set_err(e, DRIVER_EBADSPEC, "model", "model: is required");
    if (!cJSON_IsObject(model))
        return set_err(e, DRIVER_EBADSPEC, "model", "model: must be an object {\"family\": ..., \"params\": {...}}");
    for (const cJSON *m = model->child; m; m = m->next) {
        if (strcmp(m->string, "family") != 0 && strcmp(m->string, "params") != 0) {
            char f[96];
            snprintf(f, sizeof f, "model.%.80s", m->string);
            return set_err(e, DRIVER_EBADSPEC, f, "%s: unknown member (expected family, params)", f);
        }
    }
    it = cJSON_GetObjectItemCaseSensitive(model, "family");
    if (!cJSON_IsString(it))
        return set_err(e, DRIVER_EBADSPEC, "model.family", "model.family: is required (a string)");
    if ((out->family = pd_family_find(it->valuestring)) == NULL)
        return set_err(e, DRIVER_EBADSPEC, "model.family",
                       "model.family: unknown family '%.64s' (linear, rf, extratrees, gbm, knn, nb, mlp, cnn, darts)",
                       it->valuestring);
    it = cJSON_GetObjectItemCaseSensitive(model, "params");
    if (it != NULL && !cJSON_IsNull(it)) {
        if (!cJSON_IsObject(it))
            return set_err(e, DRIVER_EBADSPEC, "model.params", "model.params: must be an object");
        if ((out->params = cJSON_Duplicate(it, 1)) == NULL)
            return set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
    }

    const cJSON *cv = cJSON_GetObjectItemCaseSensitive(json, "cv");
    if (cv != NULL) {
        if (!cJSON_IsObject(cv))
            return set_err(e, DRIVER_EBADSPEC, "cv", "cv: must be an object");
        for (const cJSON *m = cv->child; m; m = m->next) {
            if (strcmp(m->string, "folds") && strcmp(m->string, "holdout") && strcmp(m->string, "seed")) {
                char f[96];
                snprintf(f, sizeof f, "cv.%.80s", m->string);
                return set_err(e, DRIVER_EBADSPEC, f, "%s: unknown member (expected folds or holdout, and seed)", f);
            }
        }
        const cJSON *folds = cJSON_GetObjectItemCaseSensitive(cv, "folds");
        const cJSON *hold = cJSON_GetObjectItemCaseSensitive(cv, "holdout");
        const cJSON *seed = cJSON_GetObjectItemCaseSensitive(cv, "seed");
        double v;
        if (folds && hold)
            return set_err(e, DRIVER_EBADSPEC, "cv", "cv: give either folds or holdout, not both");
        if (folds) {
            if (get_int(folds, 2, 1000, &v) < 0)
                return set_err(e, DRIVER_EBADSPEC, "cv.folds", "cv.folds: must be an integer between 2 and 1000");
            out->folds = (int)v;
        }
        if (hold) {
            if (!cJSON_IsNumber(hold) || !(hold->valuedouble > 0 && hold->valuedouble < 1))
                return set_err(e, DRIVER_EBADSPEC, "cv.holdout", "cv.holdout: must be a number in (0, 1)");
            out->folds = 0;
            out->holdout = hold->valuedouble;
        }
        if (seed) {
            if (get_int(seed, 0, 9007199254740992.0, &v) < 0)
                return set_err(e, DRIVER_EBADSPEC, "cv.seed", "cv.seed: must be an integer between 0 and 2^53");
            out->seed = (uint64_t)v;
        }
    }

    if ((it = cJSON_GetObjectItemCaseSensitive(json, "metric")) != NULL && !cJSON_IsNull(it)) {
        if (!cJSON_IsString(it) || (out->metric = metric_lookup(it->valuestring)) < 0)
            return set_err(e, DRIVER_EBADSPEC, "metric",
                           "metric: unknown metric (accuracy, balanced_accuracy, logloss, roc_auc, "
                           "f1_macro, rmse, mae, r2)");
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(json, "threads")) != NULL) {
        double v;
        if (get_int(it, 1, 256, &v) < 0)
            return set_err(e, DRIVER_EBADSPEC, "threads", "threads: must be an integer between 1 and 256");
        out->threads = (int)v;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(json, "artifact")) != NULL && !cJSON_IsNull(it)) {
        if ((out->artifact = dup_string(it)) == NULL)
            return set_err(e, DRIVER_EBADSPEC, "artifact", "artifact: must be a non-empty string");
        if (strlen(out->artifact) > 3900)
            return set_err(e, DRIVER_EBADSPEC, "artifact", "artifact: path too long");
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(json, "device")) != NULL && !cJSON_IsNull(it)) {
        /* whether the GPU is there is driver_run's first question
         * (check_device), so that a spec check runs anywhere */
        const char *d = cJSON_IsString(it) ? it->valuestring : "";
        if (nn_device_check(d, NULL, 0) != 0)
            return set_err(e, DRIVER_EBADSPEC, "device", "device: must be \"cpu\", \"cuda\" "
                           "(or \"cuda:N\") or \"auto\", not \"%.40s\"", d);
        if (strcmp(d, "cpu") != 0 && (out->device = dup_string(it)) == NULL)
            return set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(json, "refit")) != NULL && !cJSON_IsNull(it)) {
        if (!cJSON_IsBool(it))
            return set_err(e, DRIVER_EBADSPEC, "refit", "refit: must be true or false");
        out->refit = cJSON_IsTrue(it) ? 1 : -1;
        if (out->refit < 0 && out->folds > 0)
            return set_err(e, DRIVER_EBADSPEC, "refit",
                           "refit: false needs a holdout split (cv.holdout): with k folds there is "
                           "no single model to keep");
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(json, "lr_find")) != NULL && !cJSON_IsNull(it)) {
        char field[96], msg[256];
        if (lrtest_config_parse(it, &out->lr_find_cfg, field, sizeof field, msg, sizeof msg) < 0)
            return set_err(e, DRIVER_EBADSPEC, field, "%s", msg);
        if (out->family->lr_find == NULL)
            return set_err(e, DRIVER_EBADSPEC, "model.family",
                           "model.family: %s has no learning-rate finder (lr_find is for mlp and cnn)",
                           out->family->name);
        out->lr_find = 1;
    }
    return DRIVER_OK;
}

void driver_spec_free(struct driver_spec *s)
{
    if (s == NULL) return;
    free(s->data);
    free(s->target);
    free(s->artifact);
    free(s->device);
    cJSON_Delete(s->params);
    memset(s, 0, sizeof *s);
}

/* ---- the run ------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct run {
    const struct driver_spec *spec;
    const struct driver_opts *o;
    struct driver_error *e;
    struct csv_table table;
    struct schema schema;
    struct schema_frame frame;
    struct pd_task task;
    void *params;
    double *y_all;      /* per table row; NaN = missing target */
    size_t *rows;       /* the table rows with a target */
    size_t n;           /* count of rows */
    double *y;          /* y_all[rows[i]] */
    uint64_t unreadable;/* images: left out because they do not decode */
    int early_stopping; /* params ask for a validation set */
    /* progress */
    const char *stage;
    int fold;
    double last_emit;
    int last_iteration;
};

static int cancelled(const struct run *r)
{
    return r->o->cancel && *r->o->cancel;
}

static void emit(const struct run *r, cJSON *ev)
{
    if (ev && r->o->emit) r->o->emit(r->o->emit_ctx, ev);
    cJSON_Delete(ev);
}

static cJSON *event(const char *name)
{
    cJSON *ev = cJSON_CreateObject();
    if (ev) cJSON_AddStringToObject(ev, "event", name);
    return ev;
}

static void on_progress(void *ctx, const struct pd_progress *p)
{
    struct run *r = ctx;
    double t = now_s();
    double interval = r->o->progress_interval > 0 ? r->o->progress_interval : 0.1;
    int last = p->total > 0 && p->iteration >= p->total;
    int special = p->metric && (strcmp(p->metric, "best_iteration") == 0 || strcmp(p->metric, "oob_score") == 0);
    /* a family may report several metrics of one iteration (cnn: train_loss
     * and valid_accuracy of an epoch): once the first went out, so do the rest */
    int same = r->last_emit > 0 && p->iteration == r->last_iteration;
    if (!last && !special && !same && t - r->last_emit < interval) return;
    r->last_emit = t;
    r->last_iteration = p->iteration;
    cJSON *ev = event("iteration");
    if (ev == NULL) return;
    cJSON_AddStringToObject(ev, "stage", r->stage);
    if (r->fold >= 0) cJSON_AddNumberToObject(ev, "fold", r->fold);
    cJSON_AddNumberToObject(ev, "iteration", p->iteration);
    cJSON_AddNumberToObject(ev, "total", p->total);
    if (p->metric) {
        cJSON_AddStringToObject(ev, "metric", p->metric);
        cJSON_AddNumberToObject(ev, "value", p->value);
    }
    emit(r, ev);
}

/* The field a family's parameter message names ("max_depth: must be ..."
 * or "gbm: max_depth: ..."), as "model.params.max_depth". */
static void param_field(const char *msg, const struct pd_family *fam, char *field, size_t len)
{
    const char *s = msg;
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0;
        /* names may have a path: "genotype.normal[3]: unknown op" */
        while (isalnum((unsigned char)s[k]) || s[k] == '_' || (k > 0 && s[k] && strchr(".[]", s[k]))) k++;
        if (k == 0 || s[k] != ':') break;
        if (strlen(fam->name) == k && strncmp(s, fam->name, k) == 0) {
            s += k + 1;
            while (*s == ' ') s++;
            continue;
        }
        snprintf(field, len, "model.params.%.*s", (int)k, s);
        return;
    }
    snprintf(field, len, "model.params");
}

static int fit_status(struct run *r, int rc, const char *msg)
{
    if (rc == PD_ECANCELLED || cancelled(r))
        return set_err(r->e, DRIVER_ECANCELLED, NULL, "cancelled");
    if (rc == PD_EPARAM) {
        char field[128];
        if (strncmp(msg, "device:", 7) == 0) snprintf(field, sizeof field, "device");
        else param_field(msg, r->spec->family, field, sizeof field);
        return set_err(r->e, DRIVER_EBADSPEC, field, "%s", msg);
    }
    if (rc == PD_EDATA) return set_err(r->e, DRIVER_EBADDATA, "data", "%s", msg);
    return set_err(r->e, DRIVER_EINTERNAL, NULL, "%s: fit failed: %s", r->spec->family->name, msg);
}

/* Fit preprocessing and model on rows idx[0..m) (positions into r->rows).
 * With early stopping, a stratified 10% of them is held out as the
 * family's validation set. */
static int fit_on(struct run *r, const size_t *idx, size_t m, struct prep **prep,
                  void **model)
{
    *prep = NULL;
    *model = NULL;
    int status = DRIVER_EINTERNAL;
    size_t *trow = malloc((m + 1) * sizeof *trow), *vrow = malloc((m + 1) * sizeof *vrow);
    double *ty = malloc((m + 1) * sizeof *ty), *vy = malloc((m + 1) * sizeof *vy);
    int *inner = calloc(m + 1, sizeof *inner);
    float *tx = NULL, *vx = NULL;
    char msg[512] = "";
    if (trow == NULL || vrow == NULL || ty == NULL || vy == NULL || inner == NULL) {
        set_err(r->e, DRIVER_EINTERNAL, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < m; i++) ty[i] = r->y[idx[i]];
    if (r->early_stopping && m >= 20) {
        if (pd_cv_holdout(&r->task, ty, m, 0.1, r->spec->seed ^ 0x5eedULL, inner, msg, sizeof msg) != 0) {
            set_err(r->e, DRIVER_EBADDATA, "data", "early stopping split: %s", msg);
            goto done;
        }
    }
    size_t nt = 0, nv = 0;
    for (size_t i = 0; i < m; i++) {
        if (inner[i]) { vrow[nv] = r->rows[idx[i]]; vy[nv++] = r->y[idx[i]]; }
        else { trow[nt] = r->rows[idx[i]]; ty[nt++] = r->y[idx[i]]; }
    }
    struct prep_opts po = prep_opts_for(r->spec->family);
    if (prep_fit(&r->schema, &r->frame, trow, nt, &po, prep, msg, sizeof msg) < 0) {
        set_err(r->e, DRIVER_EINTERNAL, NULL, "%s", msg);
        goto done;
    }
    size_t d = prep_width(*prep);
    if (d == 0) {
        set_err(r->e, DRIVER_EBADDATA, "data", "no usable feature column (all are identifiers, constants or empty)");
        goto done;
    }
    tx = malloc(nt * d * sizeof *tx);
    vx = nv ? malloc(nv * d * sizeof *vx) : NULL;
    if (tx == NULL || (nv && vx == NULL)) {
        set_err(r->e, DRIVER_EINTERNAL, NULL, "out of memory");
        goto done;
    }
    prep_transform(*prep, &r->frame, trow, nt, tx);
    if (nv) prep_transform(*prep, &r->frame, vrow, nv, vx);
    struct pd_data train = {nt, d, tx, ty, NULL, prep_levels(*prep)};
    struct pd_data valid = {nv, d, vx, vy, NULL, prep_levels(*prep)};
    struct pd_fit_opts fo = {
        .threads = r->spec->threads, .seed = r->spec->seed, .cancel = r->o->cancel,
        .progress = on_progress, .progress_ctx = r, .device = r->spec->device,
    };
    if (r->spec->kind == DRIVER_DATA_IMAGES) {   /* the rows are CHW images */
        fo.image_channels = r->schema.image_channels;
        fo.image_height = (int)r->schema.image_height;
        fo.image_width = (int)r->schema.image_width;
    }
    int rc = r->spec->family->fit(r->params, &r->task, &train, nv ? &valid : NULL, &fo, model,
                                  msg, sizeof msg);
    if (rc != 0) {
        *model = NULL;
        fit_status(r, rc, msg);
        goto done;
    }
    status = DRIVER_OK;
done:
    if (status != DRIVER_OK) {
        prep_free(*prep);
        *prep = NULL;
    }
    free(trow); free(vrow); free(ty); free(vy); free(inner); free(tx); free(vx);
    return status;
}

/* Predict rows idx[0..m) (positions into r->rows) into out. */
static int predict_on(struct run *r, const struct prep *prep, const void *model,
                      const size_t *idx, size_t m, double *out)
{
    size_t d = prep_width(prep);
    float *x = malloc((m * d + 1) * sizeof *x);
    size_t *tr = malloc((m + 1) * sizeof *tr);
    if (x == NULL || tr == NULL) {
        free(x);
        free(tr);
        return set_err(r->e, DRIVER_EINTERNAL, NULL, "out of memory");
    }
    for (size_t i = 0; i < m; i++) tr[i] = r->rows[idx[i]];
    prep_transform(prep, &r->frame, tr, m, x);
    int rc = r->spec->family->predict(model, x, m, d, r->spec->threads, out);
    free(x);
    free(tr);
    if (rc != 0)
        return set_err(r->e, DRIVER_EINTERNAL, NULL, "%s: predict failed (%d)", r->spec->family->name, rc);
    return DRIVER_OK;
}

/* The archive's images as a frame of pixel columns, their classes as y. */
static int load_images(struct run *r)
{
    const struct driver_spec *s = r->spec;
    struct imagedata d;
    struct imagedata_opts o = {
        .channels = s->image_channels, .height = s->image_height, .width = s->image_width,
        .flags = IMAGEDATA_FEATURES, .max_bytes = DRIVER_IMAGE_MAX_BYTES,
    };
    char msg[768];
    int rc = imagedata_load_file(s->data, &o, &d, msg, sizeof msg);
    if (rc == IMAGEDATA_ENOMEM) return set_err(r->e, DRIVER_EINTERNAL, NULL, "%s", msg);
    if (rc != 0) return set_err(r->e, DRIVER_EBADDATA, "data", "%s: %.600s", s->data, msg);
    int status = DRIVER_OK;
    if (schema_init_images(&r->schema, (const char *const *)d.classes, d.n_classes, d.channels,
                           d.height, d.width, msg, sizeof msg) < 0) {
        status = set_err(r->e, DRIVER_EBADDATA, "image", "%s", msg);
        goto out;
    }
    if (imagedata_frame(d.x, d.dim, NULL, d.n, &r->frame) < 0) {
        status = set_err(r->e, DRIVER_EINTERNAL, NULL, "out of memory");
        goto out;
    }
    free(d.x);                   /* the frame holds the pixels from here on */
    d.x = NULL;
    r->y_all = malloc((d.n + 1) * sizeof *r->y_all);
    r->rows = malloc((d.n + 1) * sizeof *r->rows);
    r->y = malloc((d.n + 1) * sizeof *r->y);
    if (r->y_all == NULL || r->rows == NULL || r->y == NULL) {
        status = set_err(r->e, DRIVER_EINTERNAL, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < d.n; i++) {
        r->y_all[i] = r->y[i] = d.label[i];
        r->rows[i] = i;
    }
    r->n = d.n;
    r->unreadable = d.unreadable;
    if (d.unreadable)
        log_msg(LOG_WARN, "%llu images that do not decode are left out",
                (unsigned long long)d.unreadable);
out:
    imagedata_free(&d);
    return status;
}

/* Family, metric and params against the task; early stopping. */
static int check_model(struct run *r)
{
    const struct driver_spec *s = r->spec;
    char msg[512];
    const struct pd_family *fam = s->family;
    if ((r->task.kind == PD_TASK_CLASSIFICATION && !fam->supports_classification) ||
        (r->task.kind == PD_TASK_REGRESSION && !fam->supports_regression))
        return set_err(r->e, DRIVER_EBADSPEC, "model.family", "model.family: %s does not support %s",
                       fam->name, r->task.kind == PD_TASK_CLASSIFICATION ? "classification" : "regression");
    if (s->metric >= 0 && !pd_metric_applies((enum pd_metric)s->metric, r->task.kind))
        return set_err(r->e, DRIVER_EBADSPEC, "metric", "metric: %s does not apply to %s",
                       driver_metric_name(s->metric),
                       r->task.kind == PD_TASK_CLASSIFICATION ? "classification" : "regression");
    int rc = fam->params_parse(s->params, &r->task, &r->params, msg, sizeof msg);
    if (rc != 0) {
        r->params = NULL;
        if (rc == PD_EPARAM) return fit_status(r, rc, msg);
        return set_err(r->e, DRIVER_EINTERNAL, NULL, "params: %s", msg);
    }
    cJSON *pj = fam->params_json(r->params);
    const cJSON *es = cJSON_GetObjectItemCaseSensitive(pj, "early_stopping_rounds");
    r->early_stopping = cJSON_IsNumber(es) && es->valuedouble > 0;
    cJSON_Delete(pj);
    return DRIVER_OK;
}

static int load_data(struct run *r)
{
    const struct driver_spec *s = r->spec;
    int status;
    if (s->kind == DRIVER_DATA_IMAGES) {
        /* the archive first: a bad archive is reported before bad params */
        if ((status = load_images(r)) != DRIVER_OK) return status;
        r->task.kind = PD_TASK_CLASSIFICATION;
        r->task.n_classes = r->schema.n_classes;
        return check_model(r);
    }
    struct csv_error ce;
    memset(&ce, 0, sizeof ce);
    struct csv_opts co = {0};
    if (csv_table_load_file(s->data, &co, &r->table, &ce) != 0) {
        r->e->line = ce.line;
        return set_err(r->e, DRIVER_EBADDATA, "data", "%s: %s", s->data, ce.message);
    }
    char msg[512];
    if (csv_table_column(&r->table, s->target) < 0)
        return set_err(r->e, DRIVER_EBADDATA, "target", "target: the data has no column named '%.128s'",
                       s->target);
    if (schema_infer(&r->table, s->target, s->task, &r->schema, msg, sizeof msg) < 0)
        return set_err(r->e, DRIVER_EBADDATA, "target", "%s", msg);
    r->task.kind = r->schema.task;
    r->task.n_classes = r->schema.n_classes;
    if ((status = check_model(r)) != DRIVER_OK) return status;

    size_t nr = r->table.n_rows;
    r->y_all = malloc((nr + 1) * sizeof *r->y_all);
    r->rows = malloc((nr + 1) * sizeof *r->rows);
    r->y = malloc((nr + 1) * sizeof *r->y);
    if (r->y_all == NULL || r->rows == NULL || r->y == NULL)
        return set_err(r->e, DRIVER_EINTERNAL, NULL, "out of memory");
    if (schema_encode_target(&r->schema, &r->table, r->y_all, msg, sizeof msg) < 0)
        return set_err(r->e, DRIVER_EBADDATA, "target", "%s", msg);
    for (size_t i = 0; i < nr; i++) {
        if (isnan(r->y_all[i])) continue;
        r->y[r->n] = r->y_all[i];
        r->rows[r->n++] = i;
    }
    if (r->n < nr)
        log_msg(LOG_WARN, "%zu rows without a target value are left out", nr - r->n);
    if (schema_frame_build(&r->schema, &r->table, &r->frame, msg, sizeof msg) < 0)
        return set_err(r->e, DRIVER_EBADDATA, "data", "%s", msg);
    return DRIVER_OK;
}

/* "input": "images", "image": {height, width, channels}, "unreadable": k */
static void add_image_info(const struct run *r, cJSON *ev)
{
    if (ev == NULL) return;
    cJSON_AddStringToObject(ev, "input", "images");
    cJSON *im = cJSON_AddObjectToObject(ev, "image");
    if (im) {
        cJSON_AddNumberToObject(im, "height", r->schema.image_height);
        cJSON_AddNumberToObject(im, "width", r->schema.image_width);
        cJSON_AddNumberToObject(im, "channels", r->schema.image_channels);
    }
    cJSON_AddNumberToObject(ev, "unreadable", (double)r->unreadable);
}

static double mean_of(const double *v, int k)
{
    double s = 0;
    for (int i = 0; i < k; i++) s += v[i];
    return s / k;
}

static double std_of(const double *v, int k)
{
    double m = mean_of(v, k), s = 0;
    for (int i = 0; i < k; i++) s += (v[i] - m) * (v[i] - m);
    return sqrt(s / k);
}

/* Write the OOF file: row (0-based data row of the CSV), fold, target,
 * prediction, then proba_<class> columns for classification. */
static int write_oof(struct run *r, const char *path, const int *fold, const double *oof,
                     const unsigned char *have)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return set_err(r->e, DRIVER_EINTERNAL, "artifact", "%s: %s", path, strerror(errno));
    int K = r->task.kind == PD_TASK_CLASSIFICATION ? r->task.n_classes : 1;
    fputs("row,fold,target,prediction", f);
    if (r->task.kind == PD_TASK_CLASSIFICATION) {
        for (int k = 0; k < K; k++) {
            fputc(',', f);
            char name[512];
            snprintf(name, sizeof name, "proba_%s", r->schema.classes[k]);
            csv_write_field(f, name);
        }
    }
    fputc('\n', f);
    for (size_t i = 0; i < r->n; i++) {
        if (!have[i]) continue;
        fprintf(f, "%zu,%d,", r->rows[i], fold[i]);
        const double *p = oof + i * (size_t)K;
        if (r->task.kind == PD_TASK_CLASSIFICATION) {
            int best = 0;
            for (int k = 1; k < K; k++) if (p[k] > p[best]) best = k;
            csv_write_field(f, r->schema.classes[(int)r->y[i]]);
            fputc(',', f);
            csv_write_field(f, r->schema.classes[best]);
            for (int k = 0; k < K; k++) fprintf(f, ",%.17g", p[k]);
        } else {
            fprintf(f, "%.17g,%.17g", r->y[i], p[0]);
        }
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return set_err(r->e, DRIVER_EINTERNAL, "artifact", "%s: write failed", path);
    return DRIVER_OK;
}

static int write_file(struct run *r, const char *path, const struct pd_buf *b)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return set_err(r->e, DRIVER_EINTERNAL, "artifact", "%s: %s", path, strerror(errno));
    size_t put = fwrite(b->data, 1, b->len, f);
    int bad = put != b->len || fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (fclose(f) != 0 || bad)
        return set_err(r->e, DRIVER_EINTERNAL, "artifact", "%s: write failed", path);
    return DRIVER_OK;
}

void driver_temp_path(const char *artifact, int oof, char *out, size_t len)
{
    snprintf(out, len, "%s%s.tmp.%ld", artifact, oof ? ".oof.csv" : "", (long)getpid());
}

static void run_free(struct run *r)
{
    schema_frame_free(&r->frame);
    schema_free(&r->schema);
    csv_table_free(&r->table);
    if (r->params) r->spec->family->params_free(r->params);
    free(r->y_all);
    free(r->rows);
    free(r->y);
}

/* The range-test mode (trainers/lrtest.h) on the loaded data. */
static int run_lr_find(struct run *r, struct driver_result *res)
{
    const struct driver_spec *spec = r->spec;
    cJSON *ev = event("start");
    cJSON_AddStringToObject(ev, "mode", "lr_find");
    cJSON_AddStringToObject(ev, "task", r->task.kind == PD_TASK_CLASSIFICATION ? "classification" : "regression");
    cJSON_AddStringToObject(ev, "family", spec->family->name);
    cJSON_AddNumberToObject(ev, "n_rows", (double)r->n);
    if (spec->kind == DRIVER_DATA_IMAGES) add_image_info(r, ev);
    emit(r, ev);
    r->stage = "lr_find";
    struct lrtest_input in = {
        .family = spec->family, .params = r->params, .task = &r->task, .schema = &r->schema,
        .frame = &r->frame, .rows = r->rows, .y = r->y, .n = r->n, .threads = spec->threads,
        .seed = spec->seed, .cancel = r->o->cancel, .progress = on_progress, .progress_ctx = r,
        .device = spec->device,
    };
    char msg[512] = "";
    cJSON *result = NULL;
    int rc = lrtest_run(&in, &spec->lr_find_cfg, &result, msg, sizeof msg);
    if (rc == PD_EPARAM && strncmp(msg, "model.family:", 13) == 0)
        return set_err(r->e, DRIVER_EBADSPEC, "model.family", "%s", msg);
    if (rc != PD_OK) return fit_status(r, rc, msg);
    if (spec->kind == DRIVER_DATA_IMAGES) add_image_info(r, result);
    if (r->o->emit) r->o->emit(r->o->emit_ctx, result);
    if (res) res->result = result;
    else cJSON_Delete(result);
    return DRIVER_OK;
}

/* The families that run on nn/device's backends; the others ignore
 * "device" (and never see a GPU: the scheduler gives them none). */
static int uses_device(const struct pd_family *f)
{
    return f == &pd_family_cnn || f == &pd_family_darts;
}

/* "device" decided before anything is loaded or reported, so that
 * "cuda" without a GPU is a bad_spec on "device" up front, not after the
 * trial's start events; "auto" without one is the CPU. Whether a visible
 * GPU then starts is still the family's to report (nn_backend_for_device). */
static int check_device(const struct driver_spec *spec, struct driver_error *e)
{
    if (!uses_device(spec->family)) return DRIVER_OK;
    char msg[512] = "";
    if (nn_device_resolve(spec->device, msg, sizeof msg) >= 0) return DRIVER_OK;
    /* nn/device's message starts 'device "cuda": ...'; the field leads */
    const char *why = strncmp(msg, "device ", 7) == 0 ? msg + 7 : msg;
    return set_err(e, DRIVER_EBADSPEC, "device",
                   "device: %s; \"auto\" trains on the CPU when no GPU is visible", why);
}

int driver_run(const struct driver_spec *spec, const struct driver_opts *o,
               struct driver_result *res, struct driver_error *e)
{
    struct run R;
    memset(&R, 0, sizeof R);
    memset(e, 0, sizeof *e);
    if (res) memset(res, 0, sizeof *res);
    struct run *r = &R;
    r->spec = spec;
    r->o = o;
    r->e = e;
    r->fold = -1;
    r->stage = "cv";
    const struct pd_family *fam = spec->family;
    int *fold = NULL;
    size_t *tr = NULL, *va = NULL;
    double *oof = NULL, *fold_scores = NULL;
    unsigned char *have = NULL;
    struct prep *prep = NULL;
    void *model = NULL;
    struct pd_buf file;
    pd_buf_init(&file);
    char *tmp_model = NULL, *tmp_oof = NULL, *oof_path = NULL;
    cJSON *metrics = NULL, *header = NULL, *details = NULL;
    int status;
    double t_start = now_s();

    if ((status = check_device(spec, e)) != DRIVER_OK) goto out;
    if (spec->artifact) {
        /* fail before training, not after, when the artifact cannot be written */
        char probe[4200];
        driver_temp_path(spec->artifact, 0, probe, sizeof probe);
        FILE *pf = fopen(probe, "wb");
        if (pf == NULL) {
            status = set_err(e, DRIVER_EBADSPEC, "artifact", "artifact: cannot write %s: %s",
                             spec->artifact, strerror(errno));
            goto out;
        }
        fclose(pf);
        unlink(probe);
    }
    if ((status = load_data(r)) != DRIVER_OK) goto out;
    if (spec->lr_find) {   /* the range-test mode: no CV, no model */
        status = run_lr_find(r, res);
        goto out;
    }
    if (cancelled(r)) { status = set_err(e, DRIVER_ECANCELLED, NULL, "cancelled"); goto out; }

    size_t n = r->n;
    int K = r->task.kind == PD_TASK_CLASSIFICATION ? r->task.n_classes : 1;
    int n_eval = spec->folds > 0 ? spec->folds : 1;
    int primary = spec->metric >= 0 ? spec->metric
                : spec->kind == DRIVER_DATA_IMAGES ? PD_METRIC_ACCURACY
                : r->task.kind == PD_TASK_CLASSIFICATION ? PD_METRIC_LOG_LOSS : PD_METRIC_RMSE;
    char msg[512];
    fold = malloc((n + 1) * sizeof *fold);
    tr = malloc((n + 1) * sizeof *tr);
    va = malloc((n + 1) * sizeof *va);
    oof = calloc(n * (size_t)K + 1, sizeof *oof);
    have = calloc(n + 1, 1);
    fold_scores = malloc(((size_t)n_eval * PD_METRIC_COUNT + 1) * sizeof *fold_scores);
    if (!fold || !tr || !va || !oof || !have || !fold_scores) {
        status = set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
        goto out;
    }
    int rc = spec->folds > 0
        ? pd_cv_kfold(&r->task, r->y, n, spec->folds, spec->seed, fold, msg, sizeof msg)
        : pd_cv_holdout(&r->task, r->y, n, spec->holdout, spec->seed, fold, msg, sizeof msg);
    if (rc != 0) {
        status = set_err(e, rc == PD_EPARAM ? DRIVER_EBADSPEC : DRIVER_EBADDATA,
                         spec->folds > 0 ? "cv.folds" : "cv.holdout", "%s", msg);
        goto out;
    }

    cJSON *ev = event("start");
    cJSON_AddStringToObject(ev, "task", r->task.kind == PD_TASK_CLASSIFICATION ? "classification" : "regression");
    cJSON_AddStringToObject(ev, "family", fam->name);
    cJSON_AddNumberToObject(ev, "n_rows", (double)n);
    cJSON_AddNumberToObject(ev, "folds", n_eval);
    if (spec->kind == DRIVER_DATA_IMAGES) add_image_info(r, ev);
    emit(r, ev);

    double cv_fit_seconds = 0, fit_seconds = 0, predict_us = 0;
    /* with a holdout and no refit the fold's model is the final one */
    int refit = spec->folds > 0 || (spec->refit != 0 ? spec->refit > 0 : !fam->no_refit_on_holdout);
    for (int f = 0; f < n_eval; f++) {
        if (cancelled(r)) { status = set_err(e, DRIVER_ECANCELLED, NULL, "cancelled"); goto out; }
        size_t nt = 0, nv = 0;
        for (size_t i = 0; i < n; i++) {
            int held = spec->folds > 0 ? fold[i] == f : fold[i] == 1;
            if (held) va[nv++] = i;
            else tr[nt++] = i;
        }
        ev = event("fold");
        cJSON_AddNumberToObject(ev, "fold", f);
        cJSON_AddNumberToObject(ev, "folds", n_eval);
        emit(r, ev);
        r->fold = f;
        r->last_emit = 0;
        double t0 = now_s();
        if ((status = fit_on(r, tr, nt, &prep, &model)) != DRIVER_OK) goto out;
        double secs = now_s() - t0;
        cv_fit_seconds += secs;
        double *pred = malloc((nv * (size_t)K + 1) * sizeof *pred);
        double *yv = malloc((nv + 1) * sizeof *yv);
        if (pred == NULL || yv == NULL) {
            free(pred);
            free(yv);
            status = set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
            goto out;
        }
        double tp = now_s();
        status = predict_on(r, prep, model, va, nv, pred);
        predict_us = (now_s() - tp) * 1e6 / (double)(nv ? nv : 1);
        fit_seconds = secs;
        if (status == DRIVER_OK) {
            for (size_t i = 0; i < nv; i++) {
                yv[i] = r->y[va[i]];
                memcpy(oof + va[i] * (size_t)K, pred + i * (size_t)K, (size_t)K * sizeof *pred);
                have[va[i]] = 1;
            }
            if (pd_metrics_compute(&r->task, yv, pred, nv, fold_scores + (size_t)f * PD_METRIC_COUNT,
                                   msg, sizeof msg) != 0)
                status = set_err(e, DRIVER_EINTERNAL, NULL, "metrics: %s", msg);
        }
        free(pred);
        free(yv);
        if (refit || status != DRIVER_OK) {
            fam->model_free(model);
            model = NULL;
            prep_free(prep);
            prep = NULL;
        }
        if (status != DRIVER_OK) goto out;
        ev = event("fold_done");
        cJSON_AddNumberToObject(ev, "fold", f);
        cJSON *fm = cJSON_AddObjectToObject(ev, "metrics");
        for (int m = 0; m < PD_METRIC_COUNT; m++)
            if (pd_metric_applies((enum pd_metric)m, r->task.kind))
                cJSON_AddNumberToObject(fm, driver_metric_name(m), fold_scores[(size_t)f * PD_METRIC_COUNT + m]);
        cJSON_AddNumberToObject(ev, "fit_seconds", secs);
        emit(r, ev);
    }
    double cv_seconds = now_s() - t_start;

    /* aggregate */
    metrics = cJSON_CreateObject();
    double score = NAN;
    double *col = malloc(((size_t)n_eval + 1) * sizeof *col);
    if (metrics == NULL || col == NULL) {
        free(col);
        status = set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
        goto out;
    }
    for (int m = 0; m < PD_METRIC_COUNT; m++) {
        if (!pd_metric_applies((enum pd_metric)m, r->task.kind)) continue;
        for (int f = 0; f < n_eval; f++) col[f] = fold_scores[(size_t)f * PD_METRIC_COUNT + m];
        cJSON *mo = cJSON_AddObjectToObject(metrics, driver_metric_name(m));
        cJSON_AddNumberToObject(mo, "mean", mean_of(col, n_eval));
        cJSON_AddNumberToObject(mo, "std", std_of(col, n_eval));
        cJSON_AddItemToObject(mo, "folds", cJSON_CreateDoubleArray(col, n_eval));
        if (m == primary) score = mean_of(col, n_eval);
    }
    free(col);

    /* the final model on every row (or the holdout fold's, without refit) */
    if (cancelled(r)) { status = set_err(e, DRIVER_ECANCELLED, NULL, "cancelled"); goto out; }
    if (refit) {
        emit(r, event("refit"));
        r->stage = "final";
        r->fold = -1;
        r->last_emit = 0;
        for (size_t i = 0; i < n; i++) tr[i] = i;
        double t0 = now_s();
        if ((status = fit_on(r, tr, n, &prep, &model)) != DRIVER_OK) goto out;
        fit_seconds = now_s() - t0;
        double *pred = malloc((n * (size_t)K + 1) * sizeof *pred);
        if (pred == NULL) {
            status = set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
            goto out;
        }
        t0 = now_s();
        status = predict_on(r, prep, model, tr, n, pred);
        predict_us = (now_s() - t0) * 1e6 / (double)n;
        free(pred);
        if (status != DRIVER_OK) goto out;
    }
    if (cancelled(r)) { status = set_err(e, DRIVER_ECANCELLED, NULL, "cancelled"); goto out; }
    details = fam->details ? fam->details(model) : NULL;

    header = modelfile_header_new(&r->schema, prep, fam, r->params);
    if (header == NULL) {
        status = set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
        goto out;
    }
    cJSON_AddItemToObject(header, "metrics", cJSON_Duplicate(metrics, 1));
    cJSON_AddStringToObject(header, "metric", driver_metric_name(primary));
    cJSON_AddNumberToObject(header, "score", score);
    cJSON_AddNumberToObject(header, "n_rows", (double)n);
    cJSON *cvj = cJSON_AddObjectToObject(header, "cv");
    if (spec->folds > 0) cJSON_AddNumberToObject(cvj, "folds", spec->folds);
    else cJSON_AddNumberToObject(cvj, "holdout", spec->holdout);
    cJSON_AddNumberToObject(cvj, "seed", (double)spec->seed);
    cJSON_AddNumberToObject(header, "fit_seconds", fit_seconds);
    cJSON_AddBoolToObject(header, "refit", refit);
    if (details) cJSON_AddItemToObject(header, "details", cJSON_Duplicate(details, 1));
    if (spec->kind == DRIVER_DATA_IMAGES)
        cJSON_AddNumberToObject(header, "unreadable_images", (double)r->unreadable);
    if (modelfile_encode(header, prep, fam, model, &file) != 0) {
        status = set_err(e, DRIVER_EINTERNAL, NULL, "cannot serialize the model");
        goto out;
    }

    if (spec->artifact) {
        size_t len = strlen(spec->artifact) + 64;
        tmp_model = malloc(len);
        tmp_oof = malloc(len);
        oof_path = malloc(len);
        if (!tmp_model || !tmp_oof || !oof_path) {
            status = set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
            goto out;
        }
        driver_temp_path(spec->artifact, 0, tmp_model, len);
        snprintf(oof_path, len, "%s.oof.csv", spec->artifact);
        driver_temp_path(spec->artifact, 1, tmp_oof, len);
        if ((status = write_oof(r, tmp_oof, fold, oof, have)) != DRIVER_OK) goto out;
        if ((status = write_file(r, tmp_model, &file)) != DRIVER_OK) goto out;
        if (cancelled(r)) { status = set_err(e, DRIVER_ECANCELLED, NULL, "cancelled"); goto out; }
        if (rename(tmp_oof, oof_path) != 0 || rename(tmp_model, spec->artifact) != 0) {
            status = set_err(e, DRIVER_EINTERNAL, "artifact", "%s: rename failed: %s",
                             spec->artifact, strerror(errno));
            unlink(oof_path);
            goto out;
        }
    }

    cJSON *result = event("result");
    cJSON_AddStringToObject(result, "task", r->task.kind == PD_TASK_CLASSIFICATION ? "classification" : "regression");
    cJSON_AddStringToObject(result, "family", fam->name);
    cJSON *pj = fam->params_json(r->params);
    cJSON_AddItemToObject(result, "params", pj ? pj : cJSON_CreateObject());
    cJSON_AddStringToObject(result, "metric", driver_metric_name(primary));
    cJSON_AddNumberToObject(result, "score", score);
    cJSON_AddBoolToObject(result, "greater_is_better", pd_metric_greater_is_better((enum pd_metric)primary));
    cJSON_AddItemToObject(result, "metrics", metrics);
    metrics = NULL;
    cJSON_AddNumberToObject(result, "n_rows", (double)n);
    cJSON_AddNumberToObject(result, "n_features", (double)prep_width(prep));
    cJSON *cls = cJSON_AddArrayToObject(result, "classes");
    for (int k = 0; k < r->schema.n_classes; k++)
        cJSON_AddItemToArray(cls, cJSON_CreateString(r->schema.classes[k]));
    cJSON *dropped = cJSON_AddArrayToObject(result, "dropped_columns");
    for (size_t c = 0; c < r->schema.n_cols; c++) {
        if (schema_col_used(&r->schema.cols[c])) continue;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", r->schema.cols[c].name);
        cJSON_AddStringToObject(d, "reason", schema_type_name(r->schema.cols[c].type));
        cJSON_AddItemToArray(dropped, d);
    }
    if (spec->kind == DRIVER_DATA_IMAGES) add_image_info(r, result);
    cJSON_AddNumberToObject(result, "folds", n_eval);
    cJSON_AddNumberToObject(result, "fit_seconds", fit_seconds);
    cJSON_AddNumberToObject(result, "cv_fit_seconds", cv_fit_seconds);
    cJSON_AddNumberToObject(result, "cv_seconds", cv_seconds);
    cJSON_AddNumberToObject(result, "predict_us_per_row", predict_us);
    cJSON_AddNumberToObject(result, "model_bytes", (double)file.len);
    cJSON_AddNumberToObject(result, "threads", spec->threads);
    /* the kind the model ran on, when the family says (cnn, darts) */
    const cJSON *dkind = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(details, "device"), "kind");
    cJSON_AddStringToObject(result, "device", cJSON_IsString(dkind) ? dkind->valuestring : "cpu");
    cJSON_AddBoolToObject(result, "refit", refit);
    if (details) {
        cJSON_AddItemToObject(result, "details", details);
        details = NULL;
    }
    if (spec->artifact) {
        cJSON_AddStringToObject(result, "artifact", spec->artifact);
        cJSON_AddStringToObject(result, "oof_path", oof_path);
    } else {
        cJSON_AddNullToObject(result, "artifact");
        cJSON_AddNullToObject(result, "oof_path");
    }
    if (o->emit) o->emit(o->emit_ctx, result);
    if (res) {
        res->result = result;
        res->oof_path = oof_path;
        oof_path = NULL;
        /* hand the final model over, as podium-predict would load it */
        res->final.header = header;
        header = NULL;
        res->final.schema = r->schema;
        memset(&r->schema, 0, sizeof r->schema);
        res->final.prep = prep;
        prep = NULL;
        res->final.family = fam;
        res->final.task = r->task;
        res->final.model = model;
        model = NULL;
    } else {
        cJSON_Delete(result);
    }
    status = DRIVER_OK;
out:
    if (status != DRIVER_OK) {
        if (tmp_model) unlink(tmp_model);
        if (tmp_oof) unlink(tmp_oof);
    }
    if (model) fam->model_free(model);
    prep_free(prep);
    pd_buf_free(&file);
    cJSON_Delete(metrics);
    cJSON_Delete(header);
    cJSON_Delete(details);
    free(tmp_model);
    free(tmp_oof);
    free(oof_path);
    free(fold);
    free(tr);
    free(va);
    free(oof);
    free(have);
    free(fold_scores);
    run_free(r);
    return status;
}

void driver_result_free(struct driver_result *r)
{
    if (r == NULL) return;
    cJSON_Delete(r->result);
    modelfile_free(&r->final);
    free(r->oof_path);
    memset(r, 0, sizeof *r);
}

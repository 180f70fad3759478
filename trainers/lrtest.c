/*
 * lrtest.c - the range-test mode of podium-train (lrtest.h). Runs on the
 * driver's thread.
 */
#include "trainers/lrtest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trainers/preprocess.h"

static int fail(char *field, size_t field_len, char *msg, size_t msg_len, const char *name,
                const char *what)
{
    snprintf(field, field_len, "lr_find%s%s", name ? "." : "", name ? name : "");
    snprintf(msg, msg_len, "%s: %s", field, what);
    return -1;
}

int lrtest_config_parse(const cJSON *it, struct lrfind_config *cfg, char *field, size_t field_len,
                        char *msg, size_t msg_len)
{
    lrfind_config_init(cfg);
    if (it == NULL || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsObject(it))
        return fail(field, field_len, msg, msg_len, NULL,
                    "must be an object {start, end, iterations, suggestion}");
    for (const cJSON *m = it->child; m; m = m->next) {
        const char *k = m->string ? m->string : "";
        if (strcmp(k, "start") == 0) {
            if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble) || !(m->valuedouble > 0))
                return fail(field, field_len, msg, msg_len, k, "must be a number > 0");
            cfg->start_lr = m->valuedouble;
        } else if (strcmp(k, "end") == 0) {
            if (!cJSON_IsNumber(m) || !(m->valuedouble > 0) || !(m->valuedouble <= LRTEST_MAX_END))
                return fail(field, field_len, msg, msg_len, k, "must be a number > 0 and at most 1e6");
            cfg->end_lr = m->valuedouble;
        } else if (strcmp(k, "iterations") == 0) {
            double v = cJSON_IsNumber(m) ? m->valuedouble : -1;
            if (v != floor(v) || v < LRFIND_MIN_ITERATIONS || v > LRFIND_MAX_ITERATIONS) {
                char what[96];
                snprintf(what, sizeof what, "must be an integer from %d to %d",
                         LRFIND_MIN_ITERATIONS, LRFIND_MAX_ITERATIONS);
                return fail(field, field_len, msg, msg_len, k, what);
            }
            cfg->iterations = (int)v;
        } else if (strcmp(k, "suggestion") == 0) {
            int method = cJSON_IsString(m) ? lrfind_method_parse(m->valuestring) : LRFIND_EARG;
            if (method < 0)
                return fail(field, field_len, msg, msg_len, k,
                            "must be \"valley\", \"steep\" or \"minimum\"");
            cfg->method = method;
        } else {
            char name[80];
            snprintf(name, sizeof name, "%.64s", k);
            return fail(field, field_len, msg, msg_len, name,
                        "unknown member (expected start, end, iterations, suggestion)");
        }
    }
    if (!(cfg->end_lr > cfg->start_lr))
        return fail(field, field_len, msg, msg_len, "end", "must be greater than start");
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The smallest finite value of v[0..n), NAN when there is none. */
static double min_finite(const cJSON *v)
{
    double best = NAN;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
        if (cJSON_IsNumber(e) && isfinite(e->valuedouble) && !(e->valuedouble >= best))
            best = e->valuedouble;
    return best;
}

int lrtest_run(const struct lrtest_input *in, const struct lrfind_config *cfg, cJSON **result,
               char *err, size_t errlen)
{
    *result = NULL;
    const struct pd_family *fam = in->family;
    if (fam->lr_find == NULL) {
        snprintf(err, errlen, "model.family: %s has no learning-rate finder (mlp and cnn have one)",
                 fam->name);
        return PD_EPARAM;
    }
    struct prep *prep = NULL;
    float *x = NULL;
    cJSON *found = NULL, *res = NULL;
    int rc;
    struct prep_opts po = prep_opts_for(fam);
    if (prep_fit(in->schema, in->frame, in->rows, in->n, &po, &prep, err, errlen) < 0) {
        rc = PD_EINTERNAL;
        goto out;
    }
    size_t d = prep_width(prep);
    if (d == 0) {
        snprintf(err, errlen, "no usable feature column (all are identifiers, constants or empty)");
        rc = PD_EDATA;
        goto out;
    }
    if (in->n > SIZE_MAX / sizeof *x / d || (x = malloc(in->n * d * sizeof *x)) == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = PD_ENOMEM;
        goto out;
    }
    prep_transform(prep, in->frame, in->rows, in->n, x);
    struct pd_data train = {in->n, d, x, in->y, NULL, prep_levels(prep)};
    struct pd_fit_opts fo = {
        .threads = in->threads, .seed = in->seed, .cancel = in->cancel,
        .progress = in->progress, .progress_ctx = in->progress_ctx, .device = in->device,
    };
    if (in->schema->image_channels > 0) {   /* the rows are CHW images */
        fo.image_channels = in->schema->image_channels;
        fo.image_height = (int)in->schema->image_height;
        fo.image_width = (int)in->schema->image_width;
    }
    double t0 = now_s();
    rc = fam->lr_find(in->params, in->task, &train, &fo, cfg, &found, err, errlen);
    double secs = now_s() - t0;
    if (rc != PD_OK) goto out;

    double min_loss = min_finite(cJSON_GetObjectItemCaseSensitive(found, "smoothed"));
    if (isfinite(min_loss)) cJSON_AddNumberToObject(found, "min_loss", min_loss);
    else cJSON_AddNullToObject(found, "min_loss");
    cJSON *c = cJSON_AddObjectToObject(found, "config");
    if (c) {
        cJSON_AddNumberToObject(c, "start", cfg->start_lr);
        cJSON_AddNumberToObject(c, "end", cfg->end_lr);
        cJSON_AddNumberToObject(c, "iterations", cfg->iterations);
        cJSON_AddStringToObject(c, "suggestion", lrfind_method_name(cfg->method));
    }

    res = cJSON_CreateObject();
    if (res == NULL || c == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = PD_ENOMEM;
        goto out;
    }
    cJSON_AddStringToObject(res, "event", "result");
    cJSON_AddStringToObject(res, "mode", "lr_find");
    cJSON_AddStringToObject(res, "task", in->task->kind == PD_TASK_CLASSIFICATION
                                             ? "classification" : "regression");
    cJSON_AddStringToObject(res, "family", fam->name);
    cJSON *pj = fam->params_json(in->params);
    cJSON_AddItemToObject(res, "params", pj ? pj : cJSON_CreateObject());
    cJSON_AddObjectToObject(res, "metrics");
    cJSON_AddNullToObject(res, "score");
    cJSON_AddNumberToObject(res, "n_rows", (double)in->n);
    cJSON_AddNumberToObject(res, "n_features", (double)d);
    cJSON *cls = cJSON_AddArrayToObject(res, "classes");
    for (int k = 0; cls && k < in->schema->n_classes; k++)
        cJSON_AddItemToArray(cls, cJSON_CreateString(in->schema->classes[k]));
    cJSON *details = cJSON_AddObjectToObject(res, "details");
    if (details) {
        cJSON_AddItemToObject(details, "lr_find", found);
        found = NULL;
    }
    cJSON_AddNumberToObject(res, "fit_seconds", secs);
    cJSON_AddNumberToObject(res, "threads", in->threads);
    cJSON_AddStringToObject(res, "device", "cpu");
    cJSON_AddNullToObject(res, "artifact");
    cJSON_AddNullToObject(res, "oof_path");
    if (details == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = PD_ENOMEM;
        goto out;
    }
    *result = res;
    res = NULL;
    rc = PD_OK;
out:
    cJSON_Delete(res);
    cJSON_Delete(found);
    free(x);
    prep_free(prep);
    return rc;
}

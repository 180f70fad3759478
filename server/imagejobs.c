/*
 * imagejobs.c - image job families, strategies and options (imagejobs.h).
 *
 * Beside the options imagejobs.h lists, "nas" takes the training extras
 * of DARTS' evaluation that every "cnn" trial gets (trainers/cnn.h):
 * "drop_path" 0..0.9, "cutout" 0..1 (the hole's side over the shorter
 * image side) and "auxiliary_weight" 0..1; 0 turns one off. Their
 * defaults here are the cnn family's (IMAGEJOBS_DEFAULT_* below; the
 * family's header says why), written into the job so that a trial's
 * params say what it trained with.
 */
#include "server/imagejobs.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const imagejobs_families[] = {"cnn", "knn", "mlp", "linear", NULL};
const char *const imagejobs_strategies[] = {"darts", "evolution", "random", NULL};

static int in_list(const char *const *list, const char *name)
{
    for (size_t i = 0; name && list[i]; i++)
        if (strcmp(list[i], name) == 0) return 1;
    return 0;
}

int imagejobs_family(const char *name) { return in_list(imagejobs_families, name); }
int imagejobs_strategy(const char *name) { return in_list(imagejobs_strategies, name); }

#define MAX_DEFAULT_SIDE 64
/* the cnn family's defaults (trainers/cnn.h) */
#define IMAGEJOBS_DEFAULT_DROP_PATH 0.0
#define IMAGEJOBS_DEFAULT_CUTOUT 0.0
#define IMAGEJOBS_DEFAULT_AUX_WEIGHT 0.0

/* A number member in [lo, hi] (dflt when absent), into out. */
static void num_member(struct validator *v, const cJSON *obj, cJSON *out, const char *prefix,
                       const char *name, double lo, double hi, double dflt)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    double val = dflt;
    if (it && !cJSON_IsNull(it)) {
        double d = cJSON_GetNumberValue(it);
        if (!cJSON_IsNumber(it) || !isfinite(d) || d < lo || d > hi) {
            char field[96];
            snprintf(field, sizeof field, "%s.%s", prefix, name);
            validate_error(v, field, "must be a number from %g to %g", lo, hi);
        } else {
            val = d;
        }
    }
    cJSON_AddNumberToObject(out, name, val);
}

/* An integer member in [lo, hi] (dflt when absent), into out. */
static void int_member(struct validator *v, const cJSON *obj, cJSON *out, const char *prefix,
                       const char *name, long lo, long hi, long dflt)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    long val = dflt;
    if (it && !cJSON_IsNull(it)) {
        double d = cJSON_GetNumberValue(it);
        if (!cJSON_IsNumber(it) || d != floor(d) || d < (double)lo || d > (double)hi) {
            char field[96];
            snprintf(field, sizeof field, "%s.%s", prefix, name);
            validate_error(v, field, "must be an integer from %ld to %ld", lo, hi);
        } else {
            val = (long)d;
        }
    }
    cJSON_AddNumberToObject(out, name, (double)val);
}

/* An object member (absent: NULL); anything else is an error. */
static const cJSON *object_member(struct validator *v, const cJSON *obj, const char *name,
                                  const char *field)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (it == NULL || cJSON_IsNull(it)) return NULL;
    if (!cJSON_IsObject(it)) {
        validate_error(v, field, "must be an object");
        return NULL;
    }
    return it;
}

static void image_defaults(const cJSON *profile, long *h, long *w, long *c)
{
    const cJSON *mc = cJSON_GetObjectItem(cJSON_GetObjectItem(profile, "sizes"), "most_common");
    double ph = cJSON_GetNumberValue(cJSON_GetObjectItem(mc, "height"));
    double pw = cJSON_GetNumberValue(cJSON_GetObjectItem(mc, "width"));
    *h = ph >= 4 ? (long)fmin(ph, MAX_DEFAULT_SIDE) : 28;
    *w = pw >= 4 ? (long)fmin(pw, MAX_DEFAULT_SIDE) : 28;
    /* grey unless some image has colour (or alpha over colour) */
    const cJSON *ch = cJSON_GetObjectItem(profile, "channels");
    *c = 1;
    for (const cJSON *it = ch ? ch->child : NULL; it; it = it->next)
        if (it->string && strcmp(it->string, "1") != 0 && strcmp(it->string, "2") != 0 &&
            cJSON_GetNumberValue(it) > 0)
            *c = 3;
}

cJSON *imagejobs_options(struct validator *v, const cJSON *in, const cJSON *profile)
{
    cJSON *out = cJSON_CreateObject();
    cJSON *image = cJSON_AddObjectToObject(out, "image");
    cJSON *nas = cJSON_AddObjectToObject(out, "nas");
    if (out == NULL || image == NULL || nas == NULL) {
        cJSON_Delete(out);
        return NULL;
    }
    const cJSON *opts = object_member(v, in, "options", "options");
    if (opts) validate_only(v, opts, "options", (const char *const[]){"image", "nas", NULL});
    const cJSON *img = object_member(v, opts, "image", "options.image");
    const cJSON *n = object_member(v, opts, "nas", "options.nas");
    if (img)
        validate_only(v, img, "options.image",
                      (const char *const[]){"height", "width", "channels", NULL});
    if (n)
        validate_only(v, n, "options.nas",
                      (const char *const[]){"cells", "channels", "epochs", "search_epochs",
                                            "batch_size", "learning_rate", "population", "sample",
                                            "augment", "drop_path", "cutout", "auxiliary_weight",
                                            NULL});

    long h, w, c;
    image_defaults(profile, &h, &w, &c);
    int_member(v, img, image, "options.image", "height", 4, 256, h);
    int_member(v, img, image, "options.image", "width", 4, 256, w);
    const cJSON *chv = cJSON_GetObjectItemCaseSensitive(img, "channels");
    if (chv && !cJSON_IsNull(chv) &&
        !(cJSON_IsNumber(chv) && (chv->valuedouble == 1 || chv->valuedouble == 3)))
        validate_error(v, "options.image.channels", "must be 1 (grey) or 3 (RGB)");
    else if (chv && cJSON_IsNumber(chv))
        c = (long)chv->valuedouble;
    cJSON_AddNumberToObject(image, "channels", (double)c);

    int_member(v, n, nas, "options.nas", "cells", 2, 20, 5);
    int_member(v, n, nas, "options.nas", "channels", 4, 128, 16);
    int_member(v, n, nas, "options.nas", "epochs", 1, 600, 10);
    int_member(v, n, nas, "options.nas", "search_epochs", 1, 200, 5);
    int_member(v, n, nas, "options.nas", "batch_size", 8, 1024, 64);
    int_member(v, n, nas, "options.nas", "population", 2, 1000, 10);
    long pop = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(nas, "population"));
    int_member(v, n, nas, "options.nas", "sample", 2, pop >= 2 ? pop : 2, pop < 3 ? pop : 3);

    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(n, "learning_rate");
    if (lr == NULL || cJSON_IsNull(lr)) {
        cJSON_AddNumberToObject(nas, "learning_rate", 0.025);
    } else if (cJSON_IsString(lr) && strcmp(lr->valuestring, "auto") == 0) {
        cJSON_AddStringToObject(nas, "learning_rate", "auto");
    } else if (cJSON_IsNumber(lr) && lr->valuedouble > 0 && lr->valuedouble <= 10) {
        cJSON_AddNumberToObject(nas, "learning_rate", lr->valuedouble);
    } else {
        validate_error(v, "options.nas.learning_rate", "must be a number in (0, 10] or \"auto\"");
    }
    const cJSON *aug = cJSON_GetObjectItemCaseSensitive(n, "augment");
    if (aug && !cJSON_IsNull(aug) && !cJSON_IsBool(aug))
        validate_error(v, "options.nas.augment", "must be true or false");
    cJSON_AddBoolToObject(nas, "augment", aug ? cJSON_IsTrue(aug) : 1);
    num_member(v, n, nas, "options.nas", "drop_path", 0, 0.9, IMAGEJOBS_DEFAULT_DROP_PATH);
    num_member(v, n, nas, "options.nas", "cutout", 0, 1, IMAGEJOBS_DEFAULT_CUTOUT);
    num_member(v, n, nas, "options.nas", "auxiliary_weight", 0, 1, IMAGEJOBS_DEFAULT_AUX_WEIGHT);

    return out;
}

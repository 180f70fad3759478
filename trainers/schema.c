/*
 * schema.c - see schema.h. Column typing looks at every cell once; the
 * distinct counts sort a copy of the column (O(n log n) per column), which
 * is fine for the table sizes a trainer loads into memory.
 */
#include "trainers/schema.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const MISSING[] = {
    "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?", NULL
};

int schema_is_missing(const char *s)
{
    if (s == NULL) return 1;
    while (*s == ' ' || *s == '\t') s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    if (len == 0) return 1;
    for (int i = 0; MISSING[i]; i++)
        if (strlen(MISSING[i]) == len && memcmp(MISSING[i], s, len) == 0) return 1;
    return 0;
}

int schema_parse_number(const char *s, double *v)
{
    if (s == NULL || !csv_is_number(s, strlen(s))) return -1;
    char *end;
    double d = strtod(s, &end);
    if (!isfinite(d)) return -1;
    *v = d;
    return 0;
}

static int parse_bool(const char *s, double *v)
{
    while (*s == ' ') s++;
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == ' ') len--;
    if (len == 4 && strncasecmp(s, "true", 4) == 0) { *v = 1; return 0; }
    if (len == 5 && strncasecmp(s, "false", 5) == 0) { *v = 0; return 0; }
    return -1;
}

const char *schema_type_name(enum schema_type t)
{
    switch (t) {
    case SCHEMA_NUMERIC: return "numeric";
    case SCHEMA_CATEGORICAL: return "categorical";
    case SCHEMA_BOOLEAN: return "boolean";
    case SCHEMA_IDENTIFIER: return "identifier";
    case SCHEMA_CONSTANT: return "constant";
    }
    return NULL;
}

int schema_col_used(const struct schema_col *c)
{
    return c->type == SCHEMA_NUMERIC || c->type == SCHEMA_CATEGORICAL ||
           c->type == SCHEMA_BOOLEAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int name_says_id(const char *name)
{
    size_t len = strlen(name);
    if (strcasecmp(name, "id") == 0) return 1;
    if (len >= 3) {
        const char *t = name + len - 3;
        if ((t[0] == '_' || t[0] == '.' || t[0] == '-' || t[0] == ' ') &&
            strcasecmp(t + 1, "id") == 0)
            return 1;
        if (name[len - 2] == 'I' && name[len - 1] == 'd' && islower((unsigned char)name[len - 3]))
            return 1;
    }
    return 0;
}

/* Type one column. vals/strs are scratch of n_rows entries. */
static enum schema_type type_column(const struct csv_table *t, size_t c,
                                    double *vals, const char **strs)
{
    size_t n = 0, n_num = 0, n_bool = 0;
    int all_int = 1;
    for (size_t r = 0; r < t->n_rows; r++) {
        const char *s = csv_table_cell(t, r, c);
        if (schema_is_missing(s)) continue;
        double v;
        strs[n++] = s;
        if (schema_parse_number(s, &v) == 0) {
            vals[n_num++] = v;
            if (v != floor(v)) all_int = 0;
        } else if (parse_bool(s, &v) == 0) {
            n_bool++;
        }
    }
    if (n == 0) return SCHEMA_CONSTANT;
    if (n_num == n) {
        qsort(vals, n, sizeof *vals, cmp_double);
        size_t distinct = 1;
        for (size_t i = 1; i < n; i++) distinct += vals[i] != vals[i - 1];
        if (distinct <= 1) return SCHEMA_CONSTANT;
        if (all_int && name_says_id(t->names[c]) && 2 * distinct >= n)
            return SCHEMA_IDENTIFIER;
        if (all_int && distinct == n && n >= 20 && vals[n - 1] - vals[0] + 1 == (double)n)
            return SCHEMA_IDENTIFIER;
        return SCHEMA_NUMERIC;
    }
    if (n_bool == n) {
        size_t ones = 0;
        for (size_t i = 0; i < n; i++) {
            double v = 0;
            parse_bool(strs[i], &v);
            ones += v != 0;
        }
        return ones == 0 || ones == n ? SCHEMA_CONSTANT : SCHEMA_BOOLEAN;
    }
    qsort(strs, n, sizeof *strs, cmp_str);
    size_t distinct = 1;
    for (size_t i = 1; i < n; i++) distinct += strcmp(strs[i], strs[i - 1]) != 0;
    if (distinct <= 1) return SCHEMA_CONSTANT;
    if (distinct == n && n >= 20) return SCHEMA_IDENTIFIER;
    return SCHEMA_CATEGORICAL;
}

/* Sort labels numerically when all are numbers (*arg), else by strcmp. */
static int cmp_label(const void *a, const void *b, void *arg)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    if (*(const int *)arg) {
        double u = 0, v = 0;
        schema_parse_number(x, &u);
        schema_parse_number(y, &v);
        if (u != v) return (u > v) - (u < v);
    }
    return strcmp(x, y);
}

static int target_classes(const struct csv_table *t, size_t tc, int task,
                          struct schema *out, char *err, size_t errlen)
{
    size_t n = 0, n_num = 0;
    int all_int = 1;
    const char **strs = malloc((t->n_rows + 1) * sizeof *strs);
    if (strs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        const char *s = csv_table_cell(t, r, tc);
        if (schema_is_missing(s)) continue;
        double v;
        strs[n++] = s;
        if (schema_parse_number(s, &v) == 0) {
            n_num++;
            if (v != floor(v)) all_int = 0;
        }
    }
    if (n < 2) {
        free(strs);
        snprintf(err, errlen, "target '%s' has %zu non-missing values; at least 2 are needed",
                 out->target, n);
        return -1;
    }
    qsort(strs, n, sizeof *strs, cmp_str);
    size_t distinct = 1;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(strs[i], strs[i - 1]) != 0) strs[distinct++] = strs[i];
    }
    if (task == SCHEMA_TASK_AUTO) {
        if (n_num < n) task = PD_TASK_CLASSIFICATION;
        else if (all_int && (distinct == 2 || (distinct <= 20 && distinct * 10 <= n)))
            task = PD_TASK_CLASSIFICATION;
        else task = PD_TASK_REGRESSION;
    }
    out->task = (enum pd_task_kind)task;
    if (task == PD_TASK_REGRESSION) {
        free(strs);
        if (n_num < n) {
            snprintf(err, errlen, "target '%s' holds values that are not numbers; "
                     "regression needs a numeric target", out->target);
            return -1;
        }
        out->n_classes = 0;
        return 0;
    }
    if (distinct < 2 || distinct > SCHEMA_MAX_CLASSES) {
        free(strs);
        snprintf(err, errlen, "target '%s' has %zu distinct values; classification needs 2..%d",
                 out->target, distinct, SCHEMA_MAX_CLASSES);
        return -1;
    }
    int numeric = n_num == n;
    qsort_r(strs, distinct, sizeof *strs, cmp_label, &numeric);
    out->classes = calloc(distinct, sizeof *out->classes);
    if (out->classes == NULL) {
        free(strs);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    out->n_classes = (int)distinct;
    for (size_t i = 0; i < distinct; i++) {
        if ((out->classes[i] = strdup(strs[i])) == NULL) {
            free(strs);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    free(strs);
    return 0;
}

int schema_infer(const struct csv_table *t, const char *target, int task,
                 struct schema *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    long tc = csv_table_column(t, target);
    if (tc < 0) {
        snprintf(err, errlen, "the data has no column named '%s'", target);
        return -1;
    }
    double *vals = malloc((t->n_rows + 1) * sizeof *vals);
    const char **strs = malloc((t->n_rows + 1) * sizeof *strs);
    out->cols = calloc(t->n_cols, sizeof *out->cols);
    out->target = strdup(target);
    if (vals == NULL || strs == NULL || out->cols == NULL || out->target == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t c = 0; c < t->n_cols; c++) {
        if ((long)c == tc) continue;
        struct schema_col *sc = &out->cols[out->n_cols++];
        if ((sc->name = strdup(t->names[c])) == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        sc->type = type_column(t, c, vals, strs);
    }
    if (target_classes(t, (size_t)tc, task, out, err, errlen) < 0) goto fail;
    free(vals);
    free(strs);
    return 0;
fail:
    free(vals);
    free(strs);
    schema_free(out);
    return -1;
}

/* Index of a label among the classes: a binary search over a strcmp
 * order would need a second array; class counts are small (<= 1000), so
 * the caller builds one sorted index (see schema_encode_target). */
struct label_ix { const char *s; int k; };

static int cmp_label_ix(const void *a, const void *b)
{
    return strcmp(((const struct label_ix *)a)->s, ((const struct label_ix *)b)->s);
}

int schema_encode_target(const struct schema *s, const struct csv_table *t,
                         double *y, char *err, size_t errlen)
{
    long tc = csv_table_column(t, s->target);
    if (tc < 0) {
        snprintf(err, errlen, "the data has no column named '%s'", s->target);
        return -1;
    }
    struct label_ix *ix = NULL;
    if (s->task == PD_TASK_CLASSIFICATION) {
        ix = malloc((size_t)s->n_classes * sizeof *ix);
        if (ix == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (int k = 0; k < s->n_classes; k++) ix[k] = (struct label_ix){s->classes[k], k};
        qsort(ix, (size_t)s->n_classes, sizeof *ix, cmp_label_ix);
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        const char *cell = csv_table_cell(t, r, (size_t)tc);
        if (schema_is_missing(cell)) {
            y[r] = NAN;
            continue;
        }
        if (ix) {
            struct label_ix key = {cell, 0};
            struct label_ix *hit = bsearch(&key, ix, (size_t)s->n_classes, sizeof *ix, cmp_label_ix);
            if (hit == NULL) {
                free(ix);
                snprintf(err, errlen, "target '%s', data row %zu: unknown label '%.64s'",
                         s->target, r + 1, cell);
                return -1;
            }
            y[r] = hit->k;
        } else if (schema_parse_number(cell, &y[r]) < 0) {
            snprintf(err, errlen, "target '%s', data row %zu: '%.64s' is not a number",
                     s->target, r + 1, cell);
            return -1;
        }
    }
    free(ix);
    return 0;
}

int schema_frame_build(const struct schema *s, const struct csv_table *t,
                       struct schema_frame *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->n_rows = t->n_rows;
    f->n_cols = s->n_cols;
    f->num = calloc(s->n_cols + 1, sizeof *f->num);
    f->str = calloc(s->n_cols + 1, sizeof *f->str);
    if (f->num == NULL || f->str == NULL) goto oom;
    for (size_t c = 0; c < s->n_cols; c++) {
        const struct schema_col *sc = &s->cols[c];
        if (!schema_col_used(sc)) continue;
        long tc = csv_table_column(t, sc->name);
        if (tc < 0) {
            snprintf(err, errlen, "the data has no column '%s' (the model was trained with it)",
                     sc->name);
            goto fail;
        }
        if (sc->type == SCHEMA_CATEGORICAL) {
            if ((f->str[c] = malloc((t->n_rows + 1) * sizeof *f->str[c])) == NULL) goto oom;
            for (size_t r = 0; r < t->n_rows; r++) {
                const char *cell = csv_table_cell(t, r, (size_t)tc);
                f->str[c][r] = schema_is_missing(cell) ? NULL : cell;
            }
            continue;
        }
        if ((f->num[c] = malloc((t->n_rows + 1) * sizeof *f->num[c])) == NULL) goto oom;
        for (size_t r = 0; r < t->n_rows; r++) {
            const char *cell = csv_table_cell(t, r, (size_t)tc);
            double v = NAN;
            if (!schema_is_missing(cell)) {
                int bad = sc->type == SCHEMA_BOOLEAN ? parse_bool(cell, &v) : schema_parse_number(cell, &v);
                if (!bad && fabs(v) > FLT_MAX) {
                    snprintf(err, errlen, "column '%s', data row %zu: %.64s is out of the float range",
                             sc->name, r + 1, cell);
                    goto fail;
                }
                if (bad) {
                    snprintf(err, errlen, "column '%s', data row %zu: '%.64s' is not %s",
                             sc->name, r + 1, cell,
                             sc->type == SCHEMA_BOOLEAN ? "true or false" : "a number");
                    goto fail;
                }
            }
            f->num[c][r] = v;
        }
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    schema_frame_free(f);
    return -1;
}

void schema_frame_free(struct schema_frame *f)
{
    if (f == NULL) return;
    for (size_t c = 0; c < f->n_cols; c++) {
        if (f->num) free(f->num[c]);
        if (f->str) free((void *)f->str[c]);
    }
    free(f->num);
    free(f->str);
    memset(f, 0, sizeof *f);
}

static int check_image_dims(int channels, double h, double w, char *err, size_t errlen)
{
    if (channels != 1 && channels != 3) {
        snprintf(err, errlen, "image: channels must be 1 or 3");
        return -1;
    }
    if (!(h >= 1 && h <= SCHEMA_MAX_IMAGE_SIDE && h == floor(h)) ||
        !(w >= 1 && w <= SCHEMA_MAX_IMAGE_SIDE && w == floor(w))) {
        snprintf(err, errlen, "image: height and width must be integers from 1 to %u",
                 SCHEMA_MAX_IMAGE_SIDE);
        return -1;
    }
    if ((double)channels * h * w > SCHEMA_MAX_IMAGE_FEATURES) {
        snprintf(err, errlen, "image: %d x %.0f x %.0f = %.0f values per image, over the limit of %u",
                 channels, h, w, (double)channels * h * w, SCHEMA_MAX_IMAGE_FEATURES);
        return -1;
    }
    return 0;
}

/* The pixel columns px0..px<d-1> of an image schema whose other members are set. */
static int image_columns(struct schema *s)
{
    size_t d = (size_t)s->image_channels * s->image_height * s->image_width;
    if ((s->cols = calloc(d + 1, sizeof *s->cols)) == NULL) return -1;
    for (size_t c = 0; c < d; c++) {
        char name[24];
        snprintf(name, sizeof name, "px%zu", c);
        if ((s->cols[c].name = strdup(name)) == NULL) return -1;
        s->cols[c].type = SCHEMA_NUMERIC;
        s->n_cols = c + 1;
    }
    return 0;
}

int schema_init_images(struct schema *out, const char *const *classes, int n_classes,
                       int channels, unsigned height, unsigned width, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (check_image_dims(channels, height, width, err, errlen) < 0) return -1;
    if (n_classes < 2 || n_classes > SCHEMA_MAX_CLASSES) {
        snprintf(err, errlen, "images: %d classes; a classifier needs 2 to %d", n_classes,
                 SCHEMA_MAX_CLASSES);
        return -1;
    }
    out->task = PD_TASK_CLASSIFICATION;
    out->image_channels = channels;
    out->image_height = height;
    out->image_width = width;
    if ((out->target = strdup("class")) == NULL ||
        (out->classes = calloc((size_t)n_classes + 1, sizeof *out->classes)) == NULL)
        goto oom;
    for (int k = 0; k < n_classes; k++) {
        if ((out->classes[k] = strdup(classes[k])) == NULL) goto oom;
        out->n_classes = k + 1;
    }
    if (image_columns(out) < 0) goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    schema_free(out);
    return -1;
}

cJSON *schema_to_json(const struct schema *s)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cJSON_AddStringToObject(o, "target", s->target);
    cJSON_AddStringToObject(o, "task", s->task == PD_TASK_CLASSIFICATION ? "classification" : "regression");
    cJSON *cl = cJSON_AddArrayToObject(o, "classes");
    for (int k = 0; cl && k < s->n_classes; k++)
        cJSON_AddItemToArray(cl, cJSON_CreateString(s->classes[k]));
    if (s->image_channels > 0) {
        cJSON *im = cJSON_AddObjectToObject(o, "image");
        if (im) {
            cJSON_AddNumberToObject(im, "height", s->image_height);
            cJSON_AddNumberToObject(im, "width", s->image_width);
            cJSON_AddNumberToObject(im, "channels", s->image_channels);
        }
        return o;
    }
    cJSON *cols = cJSON_AddArrayToObject(o, "columns");
    for (size_t c = 0; cols && c < s->n_cols; c++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", s->cols[c].name);
        cJSON_AddStringToObject(e, "type", schema_type_name(s->cols[c].type));
        cJSON_AddItemToArray(cols, e);
    }
    return o;
}

int schema_from_json(const cJSON *j, struct schema *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(j, "target");
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(j, "task");
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(j, "classes");
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(j, "columns");
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(j, "image");
    if (image != NULL) {
        /* an image model: no column list, the pixel columns are rebuilt */
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(image, "height");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(image, "width");
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(image, "channels");
        if (!cJSON_IsObject(image) || !cJSON_IsNumber(h) || !cJSON_IsNumber(w) ||
            !cJSON_IsNumber(ch) || cols != NULL || !cJSON_IsString(task) ||
            strcmp(task->valuestring, "classification") != 0) {
            snprintf(err, errlen, "schema: an image schema needs image {height, width, channels}, "
                     "task classification and no columns");
            return -1;
        }
        char sub[200];
        double chv = ch->valuedouble;
        if (!(chv == 1 || chv == 3)) {
            snprintf(err, errlen, "schema: image: channels must be 1 or 3");
            return -1;
        }
        if (check_image_dims((int)chv, h->valuedouble, w->valuedouble, sub, sizeof sub) < 0) {
            snprintf(err, errlen, "schema: %s", sub);
            return -1;
        }
        cJSON *copy = cJSON_Duplicate(j, 1);
        if (copy == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        /* the class checks below, with an empty column list */
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "image");
        cJSON_AddItemToObject(copy, "columns", cJSON_CreateArray());
        int rc = schema_from_json(copy, out, err, errlen);
        cJSON_Delete(copy);
        if (rc < 0) return -1;
        free(out->cols);
        out->cols = NULL;
        out->image_channels = (int)chv;
        out->image_height = (unsigned)h->valuedouble;
        out->image_width = (unsigned)w->valuedouble;
        if (image_columns(out) < 0) {
            schema_free(out);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    if (!cJSON_IsString(target) || !cJSON_IsString(task) || !cJSON_IsArray(classes) ||
        !cJSON_IsArray(cols)) {
        snprintf(err, errlen, "schema: target, task, classes and columns are required");
        return -1;
    }
    if (strcmp(task->valuestring, "classification") == 0) out->task = PD_TASK_CLASSIFICATION;
    else if (strcmp(task->valuestring, "regression") == 0) out->task = PD_TASK_REGRESSION;
    else {
        snprintf(err, errlen, "schema: unknown task '%.32s'", task->valuestring);
        return -1;
    }
    int nk = cJSON_GetArraySize(classes), nc = cJSON_GetArraySize(cols);
    if ((out->task == PD_TASK_CLASSIFICATION && (nk < 2 || nk > SCHEMA_MAX_CLASSES)) ||
        (out->task == PD_TASK_REGRESSION && nk != 0) || nc < 0 || nc > (int)CSV_DEFAULT_MAX_COLUMNS) {
        snprintf(err, errlen, "schema: bad class or column count");
        return -1;
    }
    out->target = strdup(target->valuestring);
    out->classes = calloc((size_t)nk + 1, sizeof *out->classes);
    out->cols = calloc((size_t)nc + 1, sizeof *out->cols);
    if (out->target == NULL || out->classes == NULL || out->cols == NULL) goto oom;
    out->n_classes = nk;
    for (int k = 0; k < nk; k++) {
        const cJSON *e = cJSON_GetArrayItem(classes, k);
        if (!cJSON_IsString(e)) {
            snprintf(err, errlen, "schema: class %d is not a string", k);
            goto fail;
        }
        if ((out->classes[k] = strdup(e->valuestring)) == NULL) goto oom;
    }
    for (int c = 0; c < nc; c++) {
        const cJSON *e = cJSON_GetArrayItem(cols, c);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
        if (!cJSON_IsString(name) || !cJSON_IsString(type)) {
            snprintf(err, errlen, "schema: column %d needs a name and a type", c);
            goto fail;
        }
        int ty = -1;
        for (int k = 0; k <= SCHEMA_CONSTANT; k++)
            if (strcmp(schema_type_name((enum schema_type)k), type->valuestring) == 0) ty = k;
        if (ty < 0) {
            snprintf(err, errlen, "schema: column %d has an unknown type", c);
            goto fail;
        }
        out->cols[c].type = (enum schema_type)ty;
        if ((out->cols[c].name = strdup(name->valuestring)) == NULL) goto oom;
        out->n_cols = (size_t)c + 1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    schema_free(out);
    return -1;
}

void schema_free(struct schema *s)
{
    if (s == NULL) return;
    for (size_t c = 0; s->cols && c < s->n_cols; c++) free(s->cols[c].name);
    free(s->cols);
    for (int k = 0; s->classes && k < s->n_classes; k++) free(s->classes[k]);
    free(s->classes);
    free(s->target);
    memset(s, 0, sizeof *s);
}

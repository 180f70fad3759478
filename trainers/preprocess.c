/*
 * preprocess.c - see preprocess.h. One struct prep_col per used schema
 * column; the output columns are laid out in schema order, each column's
 * block followed by its missing indicator when it has one. Categorical
 * levels are kept as sorted strings and looked up by binary search.
 */
#include "trainers/preprocess.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum prep_kind {
    PREP_NUMERIC = 0,    /* one column: value, imputed, scaled */
    PREP_ONEHOT = 1,     /* n_levels 0/1 columns */
    PREP_ORDINAL = 2,    /* one column: level index, imputed, scaled */
    PREP_NATIVE = 3,     /* one column: level index, NaN when missing */
};

#define PREP_MAX_LEVELS (1u << 24)

struct prep_col {
    uint32_t src;        /* schema column */
    uint32_t kind;
    uint32_t indicator;  /* 1: a missing-indicator column follows */
    double fill;         /* imputation value; NaN = leave missing */
    double mean, scale;  /* out = (v - mean) / scale */
    uint32_t n_levels;
    char **levels;       /* sorted (strcmp) */
};

struct prep {
    uint32_t n_cols;
    struct prep_col *cols;
    size_t width;
    int *levels;         /* width entries, native_categorical only */
};

struct prep_opts prep_opts_for(const struct pd_family *fam)
{
    struct prep_opts o = {
        .impute = !fam->handles_missing,
        .scale = fam->needs_scaling,
        .native_categorical = fam->native_categorical,
        .onehot_max_levels = PREP_DEFAULT_ONEHOT_MAX_LEVELS,
    };
    return o;
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

static long level_of(const struct prep_col *c, const char *s)
{
    if (s == NULL || c->n_levels == 0) return -1;
    char **hit = bsearch(&s, c->levels, c->n_levels, sizeof *c->levels, cmp_str);
    return hit ? (long)(hit - c->levels) : -1;
}

static size_t col_width(const struct prep_col *c)
{
    return (c->kind == PREP_ONEHOT ? c->n_levels : 1) + c->indicator;
}

/* The value of column c in frame row r before scaling: NaN when missing. */
static double raw_value(const struct prep_col *c, const struct schema_frame *f, size_t r)
{
    if (c->kind == PREP_NUMERIC) return f->num[c->src][r];
    long k = level_of(c, f->str[c->src][r]);
    return k < 0 ? NAN : (double)k;
}

static void finish_layout(struct prep *p, int native)
{
    p->width = 0;
    for (uint32_t i = 0; i < p->n_cols; i++) p->width += col_width(&p->cols[i]);
    if (native && p->width > 0 && (p->levels = calloc(p->width, sizeof *p->levels)) != NULL) {
        size_t j = 0;
        for (uint32_t i = 0; i < p->n_cols; i++) {
            const struct prep_col *c = &p->cols[i];
            if (c->kind == PREP_NATIVE) p->levels[j] = (int)c->n_levels;
            j += col_width(c);
        }
    }
}

/* Fit one categorical column's levels from the training rows. */
static int fit_levels(struct prep_col *c, const char **cells, const size_t *rows,
                      size_t n, size_t *n_missing)
{
    const char **tmp = malloc((n + 1) * sizeof *tmp);
    if (tmp == NULL) return -1;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = cells[rows[i]];
        if (s) tmp[m++] = s;
    }
    *n_missing = n - m;
    qsort(tmp, m, sizeof *tmp, cmp_str);
    size_t distinct = 0;
    for (size_t i = 0; i < m; i++)
        if (i == 0 || strcmp(tmp[i], tmp[i - 1]) != 0) distinct++;
    c->levels = calloc(distinct + 1, sizeof *c->levels);
    if (c->levels == NULL) {
        free(tmp);
        return -1;
    }
    /* most frequent level (first in sorted order on ties) for imputation */
    size_t best = 0, best_count = 0, run = 0;
    for (size_t i = 0; i < m; i++) {
        if (i == 0 || strcmp(tmp[i], tmp[i - 1]) != 0) {
            if ((c->levels[c->n_levels] = strdup(tmp[i])) == NULL) {
                free(tmp);
                return -1;
            }
            c->n_levels++;
            run = 0;
        }
        if (++run > best_count) {
            best_count = run;
            best = c->n_levels - 1;
        }
    }
    c->fill = (double)best;
    free(tmp);
    return 0;
}

int prep_fit(const struct schema *s, const struct schema_frame *f,
             const size_t *rows, size_t n, const struct prep_opts *o,
             struct prep **out, char *err, size_t errlen)
{
    *out = NULL;
    struct prep *p = calloc(1, sizeof *p);
    double *vals = malloc((n + 1) * sizeof *vals);
    if (p == NULL || vals == NULL || (p->cols = calloc(s->n_cols + 1, sizeof *p->cols)) == NULL)
        goto oom;
    for (size_t c = 0; c < s->n_cols; c++) {
        const struct schema_col *sc = &s->cols[c];
        if (!schema_col_used(sc)) continue;
        struct prep_col *pc = &p->cols[p->n_cols];
        memset(pc, 0, sizeof *pc);
        pc->src = (uint32_t)c;
        pc->mean = 0;
        pc->scale = 1;
        pc->fill = NAN;
        size_t n_missing = 0;
        if (sc->type == SCHEMA_CATEGORICAL) {
            if (fit_levels(pc, f->str[c], rows, n, &n_missing) < 0) {
                p->n_cols++;
                goto oom;
            }
            p->n_cols++;
            if (pc->n_levels == 0) { /* nothing seen in training */
                free(pc->levels);
                pc->levels = NULL;
                p->n_cols--;
                continue;
            }
            if (o->native_categorical) {
                pc->kind = PREP_NATIVE;
                if (!o->impute) pc->fill = NAN;
            } else if (pc->n_levels <= o->onehot_max_levels) {
                pc->kind = PREP_ONEHOT;
                pc->fill = NAN;
                continue;
            } else {
                pc->kind = PREP_ORDINAL;
                if (!o->impute) pc->fill = NAN;
                pc->indicator = o->impute && n_missing > 0;
            }
        } else {
            pc->kind = PREP_NUMERIC;
            size_t m = 0;
            for (size_t i = 0; i < n; i++) {
                double v = f->num[c][rows[i]];
                if (!isnan(v)) vals[m++] = v;
            }
            if (m == 0) continue; /* nothing seen in training */
            p->n_cols++;
            n_missing = n - m;
            qsort(vals, m, sizeof *vals, cmp_double);
            pc->fill = o->impute ? (m % 2 ? vals[m / 2] : 0.5 * (vals[m / 2 - 1] + vals[m / 2])) : NAN;
            pc->indicator = o->impute && n_missing > 0;
        }
        if (o->scale && pc->kind != PREP_NATIVE) {
            double sum = 0, sq = 0;
            size_t m = 0;
            for (size_t i = 0; i < n; i++) {
                double v = raw_value(pc, f, rows[i]);
                if (isnan(v)) v = pc->fill;
                if (isnan(v)) continue;
                sum += v;
                m++;
            }
            double mean = m ? sum / (double)m : 0;
            for (size_t i = 0; i < n; i++) {
                double v = raw_value(pc, f, rows[i]);
                if (isnan(v)) v = pc->fill;
                if (isnan(v)) continue;
                sq += (v - mean) * (v - mean);
            }
            double sd = m ? sqrt(sq / (double)m) : 0;
            pc->mean = mean;
            pc->scale = sd > 1e-12 * (fabs(mean) + 1) ? sd : 1;
        }
    }
    finish_layout(p, o->native_categorical);
    if (o->native_categorical && p->width > 0 && p->levels == NULL) goto oom;
    free(vals);
    *out = p;
    return 0;
oom:
    snprintf(err, errlen, "preprocessing: out of memory");
    free(vals);
    prep_free(p);
    return -1;
}

size_t prep_width(const struct prep *p) { return p->width; }
const int *prep_levels(const struct prep *p) { return p->levels; }

void prep_transform(const struct prep *p, const struct schema_frame *f,
                    const size_t *rows, size_t n, float *x)
{
    for (size_t i = 0; i < n; i++) {
        size_t r = rows ? rows[i] : i;
        float *o = x + i * p->width;
        for (uint32_t k = 0; k < p->n_cols; k++) {
            const struct prep_col *c = &p->cols[k];
            if (c->kind == PREP_ONEHOT) {
                long lv = level_of(c, f->str[c->src][r]);
                for (uint32_t j = 0; j < c->n_levels; j++) o[j] = (long)j == lv ? 1.0f : 0.0f;
                o += c->n_levels;
                continue;
            }
            double v = raw_value(c, f, r);
            int missing = isnan(v);
            if (missing) v = c->fill;
            if (c->kind != PREP_NATIVE) v = (v - c->mean) / c->scale;
            /* A finite input far out of the training range must not become
             * an infinity in float (NaN probabilities downstream). */
            if (v > FLT_MAX) v = FLT_MAX;
            else if (v < -FLT_MAX) v = -FLT_MAX;
            *o++ = (float)v;
            if (c->indicator) *o++ = missing ? 1.0f : 0.0f;
        }
    }
}

int prep_save(const struct prep *p, struct pd_buf *b)
{
    pd_buf_put_u32(b, p->n_cols);
    pd_buf_put_u32(b, p->levels != NULL);
    for (uint32_t i = 0; i < p->n_cols; i++) {
        const struct prep_col *c = &p->cols[i];
        pd_buf_put_u32(b, c->src);
        pd_buf_put_u32(b, c->kind);
        pd_buf_put_u32(b, c->indicator);
        pd_buf_put_f64(b, c->fill);
        pd_buf_put_f64(b, c->mean);
        pd_buf_put_f64(b, c->scale);
        pd_buf_put_u32(b, c->n_levels);
        for (uint32_t j = 0; j < c->n_levels; j++) pd_buf_put_str(b, c->levels[j]);
    }
    return b->failed ? PD_ENOMEM : 0;
}

int prep_load(struct pd_reader *r, const struct schema *s, struct prep **out,
              char *err, size_t errlen)
{
    *out = NULL;
    size_t n_cols = s->n_cols;
    uint32_t nc = 0, native = 0;
    if (pd_reader_get_count(r, (uint32_t)n_cols, &nc) < 0 || pd_reader_get_count(r, 1, &native) < 0) {
        snprintf(err, errlen, "preprocessing section: truncated or bad column count");
        return PD_EFORMAT;
    }
    struct prep *p = calloc(1, sizeof *p);
    if (p == NULL || (p->cols = calloc((size_t)nc + 1, sizeof *p->cols)) == NULL) {
        prep_free(p);
        snprintf(err, errlen, "out of memory");
        return PD_ENOMEM;
    }
    for (uint32_t i = 0; i < nc; i++) {
        struct prep_col *c = &p->cols[i];
        p->n_cols = i + 1;
        if (pd_reader_get_count(r, (uint32_t)n_cols - 1, &c->src) < 0 ||
            pd_reader_get_count(r, PREP_NATIVE, &c->kind) < 0 ||
            pd_reader_get_count(r, 1, &c->indicator) < 0 ||
            pd_reader_get_f64(r, &c->fill) < 0 || pd_reader_get_f64(r, &c->mean) < 0 ||
            pd_reader_get_f64(r, &c->scale) < 0 ||
            pd_reader_get_count(r, PREP_MAX_LEVELS, &c->n_levels) < 0)
            goto bad;
        if (c->n_levels > r->left / 4) goto bad; /* each level takes >= 4 bytes */
        if (c->kind != PREP_NUMERIC && c->n_levels == 0) goto bad;
        if ((c->levels = calloc((size_t)c->n_levels + 1, sizeof *c->levels)) == NULL) {
            prep_free(p);
            snprintf(err, errlen, "out of memory");
            return PD_ENOMEM;
        }
        for (uint32_t j = 0; j < c->n_levels; j++) {
            if (pd_reader_get_str(r, 1u << 20, &c->levels[j]) < 0) goto bad;
            if (j > 0 && strcmp(c->levels[j - 1], c->levels[j]) >= 0) goto bad;
        }
        if (!(c->scale != 0) || !isfinite(c->scale) || !isfinite(c->mean)) goto bad;
        if (i > 0 && c->src <= p->cols[i - 1].src) goto bad;
        /* the column must be used and typed as the kind expects, so that
         * prep_transform finds the frame array it reads */
        const struct schema_col *sc = &s->cols[c->src];
        if (!schema_col_used(sc) ||
            (sc->type == SCHEMA_CATEGORICAL) != (c->kind != PREP_NUMERIC) ||
            (c->kind == PREP_NATIVE) != (native != 0 && sc->type == SCHEMA_CATEGORICAL))
            goto bad;
        if (c->kind != PREP_NUMERIC && !isnan(c->fill) &&
            !(c->fill >= 0 && c->fill < c->n_levels && c->fill == floor(c->fill)))
            goto bad;
        if (c->kind == PREP_ONEHOT && (c->indicator || !isnan(c->fill))) goto bad;
    }
    finish_layout(p, native != 0);
    if (native && p->width > 0 && p->levels == NULL) {
        prep_free(p);
        snprintf(err, errlen, "out of memory");
        return PD_ENOMEM;
    }
    *out = p;
    return 0;
bad:
    prep_free(p);
    snprintf(err, errlen, "preprocessing section: truncated or inconsistent");
    return PD_EFORMAT;
}

static const char *kind_name(uint32_t k)
{
    static const char *const names[] = {"numeric", "onehot", "ordinal", "categorical_code"};
    return k <= PREP_NATIVE ? names[k] : "?";
}

cJSON *prep_json(const struct prep *p, const struct schema *s)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cJSON_AddNumberToObject(o, "n_features", (double)p->width);
    cJSON *cols = cJSON_AddArrayToObject(o, "columns");
    for (uint32_t i = 0; cols && i < p->n_cols; i++) {
        const struct prep_col *c = &p->cols[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", c->src < s->n_cols ? s->cols[c->src].name : "?");
        cJSON_AddStringToObject(e, "encoding", kind_name(c->kind));
        if (c->kind != PREP_NUMERIC) cJSON_AddNumberToObject(e, "levels", c->n_levels);
        if (!isnan(c->fill)) {
            if (c->kind == PREP_NUMERIC) cJSON_AddNumberToObject(e, "impute_median", c->fill);
            else if (c->kind != PREP_ONEHOT)
                cJSON_AddStringToObject(e, "impute_most_frequent", c->levels[(size_t)c->fill]);
        }
        cJSON_AddBoolToObject(e, "missing_indicator", c->indicator != 0);
        if (c->mean != 0 || c->scale != 1) {
            cJSON_AddNumberToObject(e, "mean", c->mean);
            cJSON_AddNumberToObject(e, "scale", c->scale);
        }
        cJSON_AddItemToArray(cols, e);
    }
    return o;
}

void prep_free(struct prep *p)
{
    if (p == NULL) return;
    for (uint32_t i = 0; p->cols && i < p->n_cols; i++) {
        for (uint32_t j = 0; p->cols[i].levels && j < p->cols[i].n_levels; j++)
            free(p->cols[i].levels[j]);
        free(p->cols[i].levels);
    }
    free(p->cols);
    free(p->levels);
    free(p);
}

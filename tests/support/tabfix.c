/*
 * tabfix.c - see tabfix.h. Test support only: simple over fast, but never
 * reads out of bounds on a malformed file.
 */
#include "tests/support/tabfix.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainers/cv.h"
#include "trainers/family.h"
#include "trainers/metrics.h"

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Split line in place on commas; returns the field count (<= max). */
static size_t split(char *line, char **f, size_t max)
{
    size_t k = 0;
    char *p = line;
    for (;;) {
        if (k < max) f[k] = p;
        k++;
        char *c = strchr(p, ',');
        if (c == NULL) break;
        *c = '\0';
        p = c + 1;
    }
    return k;
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void tabfix_free(struct tabfix *t)
{
    if (t == NULL) return;
    free(t->x);
    free(t->y);
    for (int c = 0; c < t->n_classes && t->class_names; c++) free(t->class_names[c]);
    free(t->class_names);
    for (size_t j = 0; j < t->d && t->col_names; j++) free(t->col_names[j]);
    free(t->col_names);
    memset(t, 0, sizeof *t);
}

enum { MAXF = 1024 };

int tabfix_load(const char *path, const char *label, int classify,
                struct tabfix *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "r");
    if (fp == NULL && path[0] != '/' && getenv("PODIUM_SRC_DIR")) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", getenv("PODIUM_SRC_DIR"), path);
        fp = fopen(full, "r");
    }
    if (fp == NULL) return fail(err, errlen, "%s: cannot open", path);

    char *line = NULL, **labels = NULL, *f[MAXF];
    size_t cap = 0, ncols = 0, lab = 0, rows = 0, rcap = 0;
    int rc = -1;
    if (getline(&line, &cap, fp) < 0) { fail(err, errlen, "%s: empty", path); goto done; }
    chomp(line);
    ncols = split(line, f, MAXF);
    if (ncols < 2 || ncols > MAXF) { fail(err, errlen, "%s: %zu columns", path, ncols); goto done; }
    lab = ncols - 1;
    if (label) {
        size_t j;
        for (j = 0; j < ncols && strcmp(f[j], label) != 0; j++) {}
        if (j == ncols) { fail(err, errlen, "%s: no column %s", path, label); goto done; }
        lab = j;
    }
    out->d = ncols - 1;
    out->col_names = calloc(out->d, sizeof *out->col_names);
    if (!out->col_names) { fail(err, errlen, "out of memory"); goto done; }
    for (size_t j = 0, k = 0; j < ncols; j++)
        if (j != lab) out->col_names[k++] = strdup(f[j]);

    while (getline(&line, &cap, fp) >= 0) {
        chomp(line);
        if (line[0] == '\0') continue;
        size_t k = split(line, f, MAXF);
        if (k != ncols) { fail(err, errlen, "%s: row %zu has %zu fields, want %zu", path, rows + 2, k, ncols); goto done; }
        if (rows == rcap) {
            rcap = rcap ? rcap * 2 : 64;
            float *nx = realloc(out->x, rcap * out->d * sizeof *nx);
            if (nx) out->x = nx;
            char **nl = realloc(labels, rcap * sizeof *nl);
            if (nl) labels = nl;
            if (!nx || !nl) { fail(err, errlen, "out of memory"); goto done; }
        }
        for (size_t j = 0, c = 0; j < ncols; j++) {
            if (j == lab) continue;
            char *end;
            double v = strtod(f[j], &end);
            if (f[j][0] == '\0' || strcmp(f[j], "NA") == 0) v = NAN;
            else if (*end != '\0') { fail(err, errlen, "%s: row %zu column %zu: not a number", path, rows + 2, j + 1); labels[rows] = NULL; goto done; }
            out->x[rows * out->d + c++] = (float)v;
        }
        labels[rows] = strdup(f[lab]);
        if (!labels[rows]) { fail(err, errlen, "out of memory"); goto done; }
        rows++;
    }
    out->n = rows;
    out->y = malloc((rows ? rows : 1) * sizeof *out->y);
    if (!out->y) { fail(err, errlen, "out of memory"); goto done; }
    if (classify == TABFIX_CLASSES_SEEN) {
        /* Fixtures hold few classes: a linear search is enough. */
        out->class_names = calloc(rows ? rows : 1, sizeof *out->class_names);
        if (!out->class_names) { fail(err, errlen, "out of memory"); goto done; }
        for (size_t i = 0; i < rows; i++) {
            int c = 0;
            while (c < out->n_classes && strcmp(out->class_names[c], labels[i]) != 0) c++;
            if (c == out->n_classes) {
                out->class_names[c] = strdup(labels[i]);
                if (!out->class_names[c]) { fail(err, errlen, "out of memory"); goto done; }
                out->n_classes++;
            }
            out->y[i] = c;
        }
    } else if (classify) {
        char **s = malloc((rows ? rows : 1) * sizeof *s);
        if (!s) { fail(err, errlen, "out of memory"); goto done; }
        memcpy(s, labels, rows * sizeof *s);
        qsort(s, rows, sizeof *s, cmp_str);
        size_t u = 0;
        for (size_t i = 0; i < rows; i++)
            if (u == 0 || strcmp(s[u - 1], s[i]) != 0) s[u++] = s[i];
        out->class_names = calloc(u ? u : 1, sizeof *out->class_names);
        if (!out->class_names) { free(s); fail(err, errlen, "out of memory"); goto done; }
        for (size_t c = 0; c < u; c++) out->class_names[c] = strdup(s[c]);
        out->n_classes = (int)u;
        for (size_t i = 0; i < rows; i++) {
            char **hit = bsearch(&labels[i], s, u, sizeof *s, cmp_str);
            out->y[i] = (double)(hit - s);
        }
        free(s);
    } else {
        for (size_t i = 0; i < rows; i++) {
            char *end;
            out->y[i] = strtod(labels[i], &end);
            if (*end != '\0' || labels[i][0] == '\0') { fail(err, errlen, "%s: row %zu: label not a number", path, i + 2); goto done; }
        }
    }
    rc = 0;
done:
    if (labels) for (size_t i = 0; i < rows; i++) free(labels[i]);
    free(labels);
    free(line);
    fclose(fp);
    if (rc != 0) tabfix_free(out);
    return rc;
}

size_t tabfix_subset(const struct tabfix *t, const int *fold, int f,
                     int in_fold, float **x, double **y)
{
    size_t m = 0;
    for (size_t i = 0; i < t->n; i++) m += ((fold[i] == f) == !!in_fold);
    *x = malloc((m ? m : 1) * t->d * sizeof **x);
    *y = malloc((m ? m : 1) * sizeof **y);
    if (!*x || !*y) { free(*x); free(*y); *x = NULL; *y = NULL; return 0; }
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        if ((fold[i] == f) != !!in_fold) continue;
        memcpy(*x + k * t->d, t->x + i * t->d, t->d * sizeof **x);
        (*y)[k++] = t->y[i];
    }
    return m;
}

void tabfix_col_stats(const float *x, size_t n, size_t d, double *mean,
                      double *sd)
{
    for (size_t j = 0; j < d; j++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < n; i++) s += x[i * d + j];
        double m = n ? s / (double)n : 0;
        for (size_t i = 0; i < n; i++) {
            double e = x[i * d + j] - m;
            ss += e * e;
        }
        mean[j] = m;
        sd[j] = n ? sqrt(ss / (double)n) : 0;
        if (!(sd[j] > 0)) sd[j] = 1;
    }
}

void tabfix_scale(float *x, size_t n, size_t d, const double *mean,
                  const double *sd)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = (float)((x[i * d + j] - mean[j]) / sd[j]);
}

int tabfix_cv_score(const struct pd_family *fam, const char *params_json,
                    const struct tabfix *t, int k, uint64_t seed,
                    int standardize, double *score, char *err, size_t errlen)
{
    struct pd_task task = {t->n_classes >= 2 ? PD_TASK_CLASSIFICATION : PD_TASK_REGRESSION,
                           t->n_classes >= 2 ? t->n_classes : 0};
    size_t kk = task.kind == PD_TASK_CLASSIFICATION ? (size_t)task.n_classes : 1;
    int *fold = malloc(t->n * sizeof *fold);
    double *pred = malloc(t->n * kk * sizeof *pred);
    double *mean = malloc(t->d * sizeof *mean), *sd = malloc(t->d * sizeof *sd);
    cJSON *pj = params_json ? cJSON_Parse(params_json) : NULL;
    void *params = NULL;
    int rc = PD_ENOMEM;
    if (!fold || !pred || !mean || !sd || (params_json && !pj)) {
        fail(err, errlen, "tabfix_cv_score: out of memory or bad JSON");
        goto done;
    }
    rc = pd_cv_kfold(&task, t->y, t->n, k, seed, fold, err, errlen);
    if (rc == 0) rc = fam->params_parse(pj, &task, &params, err, errlen);
    for (int f = 0; rc == 0 && f < k; f++) {
        float *trx, *tex;
        double *try_, *tey;
        size_t ntr = tabfix_subset(t, fold, f, 0, &trx, &try_);
        size_t nte = tabfix_subset(t, fold, f, 1, &tex, &tey);
        if (standardize) {
            tabfix_col_stats(trx, ntr, t->d, mean, sd);
            tabfix_scale(trx, ntr, t->d, mean, sd);
            tabfix_scale(tex, nte, t->d, mean, sd);
        }
        if (!trx || !tex) {
            free(trx); free(try_); free(tex); free(tey);
            rc = PD_ENOMEM;
            fail(err, errlen, "tabfix_cv_score: out of memory");
            break;
        }
        struct pd_data tr = {ntr, t->d, trx, try_, NULL, NULL};
        struct pd_fit_opts opts = {.threads = 1, .seed = seed};
        void *model = NULL;
        double *fp = malloc((nte ? nte : 1) * kk * sizeof *fp);
        rc = fp ? fam->fit(params, &task, &tr, NULL, &opts, &model, err, errlen) : PD_ENOMEM;
        if (rc == 0) rc = fam->predict(model, tex, nte, t->d, 1, fp);
        for (size_t i = 0, r = 0; rc == 0 && i < t->n; i++)
            if (fold[i] == f) {
                memcpy(pred + i * kk, fp + r * kk, kk * sizeof *fp);
                r++;
            }
        fam->model_free(model);
        free(fp);
        free(trx); free(try_); free(tex); free(tey);
    }
    if (rc == 0) {
        if (task.kind == PD_TASK_CLASSIFICATION)
            *score = pd_metric_accuracy(t->y, pred, t->n, task.n_classes);
        else
            *score = pd_metric_r2(t->y, pred, t->n);
    }
done:
    if (fam && params) fam->params_free(params);
    cJSON_Delete(pj);
    free(fold); free(pred); free(mean); free(sd);
    return rc;
}

int tabfix_fit(const struct pd_family *fam, const char *params_json,
               struct pd_task task, const struct pd_data *train,
               const struct pd_data *valid, const struct pd_fit_opts *opts,
               void **model, char *err, size_t errlen)
{
    char msg[256] = "";
    *model = NULL;
    cJSON *pj = params_json ? cJSON_Parse(params_json) : NULL;
    if (params_json && !pj) {
        fail(err, errlen, "params %s: not JSON", params_json);
        return PD_EPARAM;
    }
    void *params = NULL;
    int rc = fam->params_parse(pj, &task, &params, msg, sizeof msg);
    cJSON_Delete(pj);
    if (rc != PD_OK) {
        fail(err, errlen, "params_parse(%s): %s", params_json ? params_json : "NULL", msg);
        return rc;
    }
    rc = fam->fit(params, &task, train, valid, opts, model, msg, sizeof msg);
    fam->params_free(params);
    if (rc != PD_OK) fail(err, errlen, "fit: %d %s", rc, msg);
    return rc;
}

int tabfix_cv_shuffled(const struct pd_family *fam, const char *params_json,
                       const struct tabfix *t, int k, uint64_t shuffle_seed,
                       uint64_t fit_seed, int threads, double *score,
                       char *err, size_t errlen)
{
    size_t n = t->n, d = t->d;
    int K = t->n_classes;
    struct pd_task task = { K ? PD_TASK_CLASSIFICATION : PD_TASK_REGRESSION, K };
    size_t *perm = malloc((n ? n : 1) * sizeof *perm);
    float *xtr = malloc((n ? n : 1) * d * sizeof *xtr), *xte = malloc((n ? n : 1) * d * sizeof *xte);
    double *ytr = malloc((n ? n : 1) * sizeof *ytr), *yte = malloc((n ? n : 1) * sizeof *yte);
    double *out = malloc((n ? n : 1) * (K ? K : 1) * sizeof *out);
    int rc = PD_ENOMEM;
    if (!perm || !xtr || !xte || !ytr || !yte || !out || k < 1) {
        fail(err, errlen, "tabfix_cv_shuffled: out of memory or no folds");
        goto done;
    }
    for (size_t i = 0; i < n; i++) perm[i] = i;
    struct pd_rng r;
    pd_rng_seed(&r, shuffle_seed);
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)pd_rng_below(&r, i + 1);
        size_t tmp = perm[i]; perm[i] = perm[j]; perm[j] = tmp;
    }
    double right = 0, sse = 0, sst = 0, mean = 0;
    for (size_t i = 0; i < n; i++) mean += t->y[i];
    mean /= n;
    rc = PD_OK;
    for (int f = 0; rc == PD_OK && f < k; f++) {
        size_t ntr = 0, nte = 0;
        for (size_t i = 0; i < n; i++) {
            size_t r0 = perm[i];
            if ((int)(i % (size_t)k) == f) {
                memcpy(xte + nte * d, t->x + r0 * d, d * sizeof *xte);
                yte[nte++] = t->y[r0];
            } else {
                memcpy(xtr + ntr * d, t->x + r0 * d, d * sizeof *xtr);
                ytr[ntr++] = t->y[r0];
            }
        }
        struct pd_data tr = { .n = ntr, .d = d, .x = xtr, .y = ytr };
        struct pd_fit_opts opts = { .threads = threads, .seed = fit_seed };
        void *m = NULL;
        rc = tabfix_fit(fam, params_json, task, &tr, NULL, &opts, &m, err, errlen);
        if (rc != PD_OK) break;
        rc = fam->predict(m, xte, nte, d, threads, out);
        if (rc != PD_OK) fail(err, errlen, "predict: %d", rc);
        for (size_t i = 0; rc == PD_OK && i < nte; i++) {
            if (K) {
                int arg = 0;
                for (int c = 1; c < K; c++) if (out[i * K + c] > out[i * K + arg]) arg = c;
                right += arg == (int)yte[i];
            } else {
                sse += (out[i] - yte[i]) * (out[i] - yte[i]);
                sst += (yte[i] - mean) * (yte[i] - mean);
            }
        }
        fam->model_free(m);
    }
    if (rc == PD_OK) *score = K ? right / n : 1 - sse / sst;
done:
    free(perm); free(xtr); free(xte); free(ytr); free(yte); free(out);
    return rc;
}

/*
 * ensemble.c - see ensemble.h. Caruana ensemble selection, the "ensemble"
 * model family (a container of whole member model files plus weights) and
 * podium-train's {"ensemble": ...} spec. Single-threaded; runs in the
 * podium-train process, and (load/predict) wherever a model file is read.
 *
 * Weights section of an ensemble model file (docs/model-format.md):
 *   u32 n_members            1..ENSEMBLE_MAX_MEMBERS
 *   n_members times:
 *     f64 weight             finite, > 0; all sum to 1 (within 1e-9)
 *     u64 len                then len bytes: a whole model file (not an
 *                            ensemble), with the same schema as the outer file
 */
#include "trainers/ensemble.h"

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
#include "trainers/imagedata.h"
#include "trainers/metrics.h"
#include "trainers/preprocess.h"

/* ---- the model ----------------------------------------------------------- */

struct ens_model {
    int n;
    double *w;
    unsigned char **bytes;
    size_t *lens;
    struct modelfile *m;
};

static void ens_free(void *model)
{
    struct ens_model *e = model;
    if (e == NULL) return;
    for (int i = 0; i < e->n; i++) {
        if (e->m) modelfile_free(&e->m[i]);
        if (e->bytes) free(e->bytes[i]);
    }
    free(e->w);
    free(e->bytes);
    free(e->lens);
    free(e->m);
    free(e);
}

static struct ens_model *ens_alloc(int n)
{
    struct ens_model *e = calloc(1, sizeof *e);
    if (e == NULL) return NULL;
    e->w = calloc((size_t)n, sizeof *e->w);
    e->bytes = calloc((size_t)n, sizeof *e->bytes);
    e->lens = calloc((size_t)n, sizeof *e->lens);
    e->m = calloc((size_t)n, sizeof *e->m);
    if (!e->w || !e->bytes || !e->lens || !e->m) {
        ens_free(e);
        return NULL;
    }
    return e;
}

static int schema_equal(const struct schema *a, const struct schema *b)
{
    cJSON *ja = schema_to_json(a), *jb = schema_to_json(b);
    int eq = ja && jb && cJSON_Compare(ja, jb, 1);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    return eq;
}

/* Decode member i from its bytes (kept) and check it. */
static int ens_add(struct ens_model *e, int i, const void *data, size_t len, double w,
                   char *err, size_t errlen)
{
    if (!(w > 0) || !isfinite(w)) {
        snprintf(err, errlen, "member %d: weight must be a finite number > 0", i);
        return PD_EFORMAT;
    }
    e->w[i] = w;
    e->n = i + 1;
    if ((e->bytes[i] = malloc(len ? len : 1)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return PD_ENOMEM;
    }
    memcpy(e->bytes[i], data, len);
    e->lens[i] = len;
    char sub[384];
    int rc = modelfile_decode(data, len, &e->m[i], sub, sizeof sub);
    if (rc != 0) {
        snprintf(err, errlen, "member %d: %s", i, sub);
        return rc;
    }
    if (e->m[i].family == &pd_family_ensemble) {
        snprintf(err, errlen, "member %d: an ensemble cannot be a member", i);
        return PD_EFORMAT;
    }
    if (i > 0 && !schema_equal(&e->m[0].schema, &e->m[i].schema)) {
        snprintf(err, errlen, "member %d: its schema differs from member 0's", i);
        return PD_EFORMAT;
    }
    return 0;
}

static int ens_check_sum(const struct ens_model *e, char *err, size_t errlen)
{
    double s = 0;
    for (int i = 0; i < e->n; i++) s += e->w[i];
    if (!(fabs(s - 1.0) <= 1e-9)) {
        snprintf(err, errlen, "member weights sum to %.17g, not 1", s);
        return PD_EFORMAT;
    }
    return 0;
}

static int ens_save(const void *model, struct pd_buf *out)
{
    const struct ens_model *e = model;
    pd_buf_put_u32(out, (uint32_t)e->n);
    for (int i = 0; i < e->n; i++) {
        pd_buf_put_f64(out, e->w[i]);
        pd_buf_put_u64(out, e->lens[i]);
        pd_buf_put(out, e->bytes[i], e->lens[i]);
    }
    return out->failed ? PD_ENOMEM : 0;
}

static int ens_load(struct pd_reader *in, void **out_model, char *err, size_t errlen)
{
    *out_model = NULL;
    uint32_t n = 0;
    if (pd_reader_get_count(in, ENSEMBLE_MAX_MEMBERS, &n) < 0 || n == 0) {
        snprintf(err, errlen, "ensemble: truncated or bad member count (1..%d)", ENSEMBLE_MAX_MEMBERS);
        return PD_EFORMAT;
    }
    struct ens_model *e = ens_alloc((int)n);
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return PD_ENOMEM;
    }
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        double w = 0;
        uint64_t len = 0;
        if (pd_reader_get_f64(in, &w) < 0 || pd_reader_get_u64(in, &len) < 0 || len > in->left) {
            snprintf(err, errlen, "ensemble: member %u: truncated", i);
            rc = PD_EFORMAT;
            break;
        }
        rc = ens_add(e, (int)i, in->p, (size_t)len, w, err, errlen);
        in->p += len;
        in->left -= (size_t)len;
    }
    if (rc == 0) rc = ens_check_sum(e, err, errlen);
    if (rc != 0) {
        ens_free(e);
        return rc == PD_ENOMEM ? rc : PD_EFORMAT;
    }
    *out_model = e;
    return 0;
}

int ensemble_check_schema(const void *model, const struct schema *s, char *err, size_t errlen)
{
    const struct ens_model *e = model;
    if (!schema_equal(&e->m[0].schema, s)) {
        snprintf(err, errlen, "ensemble: the members' schema differs from the file's");
        return PD_EFORMAT;
    }
    return 0;
}

int ensemble_predict_frame(const void *model, const struct schema_frame *f, int threads,
                           double *out, char *err, size_t errlen)
{
    const struct ens_model *e = model;
    size_t n = f->n_rows;
    int K = e->m[0].task.kind == PD_TASK_CLASSIFICATION ? e->m[0].task.n_classes : 1;
    size_t total = n * (size_t)K;
    if (n == 0) return 0;
    double *tmp = malloc(total * sizeof *tmp);
    if (tmp == NULL) {
        snprintf(err, errlen, "out of memory");
        return PD_ENOMEM;
    }
    memset(out, 0, total * sizeof *out);
    for (int i = 0; i < e->n; i++) {
        int rc = modelfile_predict(&e->m[i], f, threads, tmp, err, errlen);
        if (rc != 0) {
            free(tmp);
            return rc;
        }
        for (size_t j = 0; j < total; j++) out[j] += e->w[i] * tmp[j];
    }
    free(tmp);
    return 0;
}

static int ens_params_parse(const cJSON *params, const struct pd_task *task, void **out,
                            char *err, size_t errlen)
{
    *out = NULL;
    snprintf(err, errlen, "ensemble: built from an {\"ensemble\": ...} spec, not model.family");
    return PD_EPARAM;
}

static cJSON *ens_params_json(const void *params)
{
    return cJSON_CreateObject();
}

static void ens_params_free(void *params) { (void)params; }

static int ens_fit(const void *params, const struct pd_task *task, const struct pd_data *train,
                   const struct pd_data *valid, const struct pd_fit_opts *opts, void **out_model,
                   char *err, size_t errlen)
{
    *out_model = NULL;
    snprintf(err, errlen, "ensemble: built from an {\"ensemble\": ...} spec, not model.family");
    return PD_EPARAM;
}

/* An ensemble reads raw frames (modelfile_predict calls
 * ensemble_predict_frame); preprocessed features mean nothing to it. */
static int ens_predict(const void *model, const float *x, size_t n, size_t d, int threads,
                       double *out)
{
    return PD_EINTERNAL;
}

const struct pd_family pd_family_ensemble = {
    .name = "ensemble",
    .supports_classification = 1,
    .supports_regression = 1,
    .params_parse = ens_params_parse,
    .params_json = ens_params_json,
    .params_free = ens_params_free,
    .fit = ens_fit,
    .predict = ens_predict,
    .save = ens_save,
    .load = ens_load,
    .model_free = ens_free,
};

/* An empty preprocessing state (no columns): the section an ensemble file
 * carries, since each member holds its own. */
static int empty_prep(const struct schema *s, struct prep **out)
{
    static const unsigned char zero[8];
    struct pd_reader r;
    pd_reader_init(&r, zero, sizeof zero);
    char err[64];
    return prep_load(&r, s, out, err, sizeof err);
}

int ensemble_encode(const void *const *members, const size_t *lens, const double *weights,
                    int n, const cJSON *extra, struct pd_buf *out, char *err, size_t errlen)
{
    if (n < 1 || n > ENSEMBLE_MAX_MEMBERS) {
        snprintf(err, errlen, "ensemble: between 1 and %d members, got %d", ENSEMBLE_MAX_MEMBERS, n);
        return PD_EPARAM;
    }
    struct ens_model *e = ens_alloc(n);
    struct prep *prep = NULL;
    cJSON *h = NULL;
    int rc = e ? 0 : PD_ENOMEM;
    for (int i = 0; i < n && rc == 0; i++) rc = ens_add(e, i, members[i], lens[i], weights[i], err, errlen);
    if (rc == 0) rc = ens_check_sum(e, err, errlen);
    if (rc == 0 && empty_prep(&e->m[0].schema, &prep) != 0) rc = PD_ENOMEM;
    if (rc == 0 && (h = modelfile_header_new(&e->m[0].schema, prep, &pd_family_ensemble, NULL)) == NULL)
        rc = PD_ENOMEM;
    if (rc == 0) {
        cJSON *ms = cJSON_AddArrayToObject(h, "members");
        for (int i = 0; i < n; i++) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddNumberToObject(m, "index", i);
            cJSON_AddStringToObject(m, "family", e->m[i].family->name);
            cJSON_AddNumberToObject(m, "weight", e->w[i]);
            cJSON_AddNumberToObject(m, "bytes", (double)e->lens[i]);
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(e->m[i].header, "params");
            if (p) cJSON_AddItemToObject(m, "params", cJSON_Duplicate(p, 1));
            cJSON_AddItemToArray(ms, m);
        }
        for (const cJSON *it = extra ? extra->child : NULL; it; it = it->next) {
            if (cJSON_GetObjectItemCaseSensitive(h, it->string))
                cJSON_ReplaceItemInObjectCaseSensitive(h, it->string, cJSON_Duplicate(it, 1));
            else
                cJSON_AddItemToObject(h, it->string, cJSON_Duplicate(it, 1));
        }
        rc = modelfile_encode(h, prep, &pd_family_ensemble, e, out);
        if (rc != 0) snprintf(err, errlen, "ensemble: cannot serialize the model");
    } else if (rc == PD_ENOMEM) {
        snprintf(err, errlen, "out of memory");
    }
    cJSON_Delete(h);
    prep_free(prep);
    ens_free(e);
    return rc;
}

/* ---- selection ----------------------------------------------------------- */

static double metric_one(const struct pd_task *task, int metric, const double *y,
                         const double *p, size_t n)
{
    int k = task->kind == PD_TASK_CLASSIFICATION ? task->n_classes : 1;
    switch (metric) {
    case PD_METRIC_ACCURACY: return pd_metric_accuracy(y, p, n, k);
    case PD_METRIC_BALANCED_ACCURACY: return pd_metric_balanced_accuracy(y, p, n, k);
    case PD_METRIC_LOG_LOSS: return pd_metric_log_loss(y, p, n, k);
    case PD_METRIC_ROC_AUC: return pd_metric_roc_auc(y, p, n, k);
    case PD_METRIC_F1_MACRO: return pd_metric_f1_macro(y, p, n, k);
    case PD_METRIC_RMSE: return pd_metric_rmse(y, p, n);
    case PD_METRIC_MAE: return pd_metric_mae(y, p, n);
    case PD_METRIC_R2: return pd_metric_r2(y, p, n);
    default: return NAN;
    }
}

/* Rows are grouped by fold in the OOF file but need not be: gather each
 * fold's rows into scratch. */
double ensemble_objective(const struct pd_task *task, int metric, const double *y,
                          const int *fold, int n_folds, size_t n, const double *pred)
{
    int k = task->kind == PD_TASK_CLASSIFICATION ? task->n_classes : 1;
    if (n_folds <= 1 || fold == NULL) return metric_one(task, metric, y, pred, n);
    double *yy = malloc(n * sizeof *yy), *pp = malloc(n * (size_t)k * sizeof *pp);
    double sum = 0;
    int used = 0;
    if (yy == NULL || pp == NULL) {
        free(yy);
        free(pp);
        return NAN;
    }
    for (int f = 0; f < n_folds; f++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (fold[i] != f) continue;
            yy[m] = y[i];
            memcpy(pp + m * (size_t)k, pred + i * (size_t)k, (size_t)k * sizeof *pp);
            m++;
        }
        if (m == 0) continue;
        sum += metric_one(task, metric, yy, pp, m);
        used++;
    }
    free(yy);
    free(pp);
    return used ? sum / used : NAN;
}

/* a better than b for this metric (NaN is never better). */
static int better(int metric, double a, double b)
{
    if (isnan(a)) return 0;
    if (isnan(b)) return 1;
    return pd_metric_greater_is_better((enum pd_metric)metric) ? a > b : a < b;
}

int ensemble_select(const struct pd_task *task, int metric, const double *y, const int *fold,
                    int n_folds, size_t n, const double *const *pred, int n_models, int rounds,
                    int patience, int *counts, double *score, int *used)
{
    if (n_models < 1 || rounds < 1 || n == 0 || metric < 0 || metric >= PD_METRIC_COUNT ||
        !pd_metric_applies((enum pd_metric)metric, task->kind))
        return PD_EPARAM;
    if (patience < 1) patience = 1;
    int k = task->kind == PD_TASK_CLASSIFICATION ? task->n_classes : 1;
    size_t total = n * (size_t)k;
    double *sum = calloc(total, sizeof *sum), *cand = malloc(total * sizeof *cand);
    int *picks = malloc((size_t)rounds * sizeof *picks);
    if (!sum || !cand || !picks) {
        free(sum);
        free(cand);
        free(picks);
        return PD_ENOMEM;
    }
    /* round 0 is the best single model; each later round adds one */
    int best_len = 0, since = 0;
    double best = NAN;
    for (int r = 0; r < rounds; r++) {
        int pick = -1;
        double pick_score = NAN;
        double inv = 1.0 / (double)(r + 1);
        for (int m = 0; m < n_models; m++) {
            const double *p = pred[m];
            for (size_t j = 0; j < total; j++) cand[j] = (sum[j] + p[j]) * inv;
            double s = ensemble_objective(task, metric, y, fold, n_folds, n, cand);
            if (pick < 0 || better(metric, s, pick_score)) {
                pick = m;
                pick_score = s;
            }
        }
        picks[r] = pick;
        for (size_t j = 0; j < total; j++) sum[j] += pred[pick][j];
        if (r == 0 || better(metric, pick_score, best)) {
            best = pick_score;
            best_len = r + 1;
            since = 0;
        } else if (++since >= patience) {
            break;
        }
    }
    memset(counts, 0, (size_t)n_models * sizeof *counts);
    for (int r = 0; r < best_len; r++) counts[picks[r]]++;
    *score = best;
    *used = best_len;
    free(sum);
    free(cand);
    free(picks);
    return 0;
}

/* ---- the spec and the run ------------------------------------------------ */

__attribute__((format(printf, 4, 5)))
static int set_err(struct driver_error *e, int status, const char *field, const char *fmt, ...)
{
    e->status = status;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return status;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int get_int(const cJSON *it, double lo, double hi, int *out)
{
    if (!cJSON_IsNumber(it)) return -1;
    double v = it->valuedouble;
    if (!(v >= lo && v <= hi) || v != floor(v)) return -1;
    *out = (int)v;
    return 0;
}

/* One member's OOF predictions, read from its CSV. */
struct oof {
    size_t n;
    size_t *row;
    int *fold;
    double *y;
    double *p;   /* n*k */
};

static void oof_free(struct oof *o)
{
    free(o->row);
    free(o->fold);
    free(o->y);
    free(o->p);
    memset(o, 0, sizeof *o);
}

static int parse_size(const char *s, double lo, double hi, double *v)
{
    return schema_parse_number(s, v) == 0 && *v >= lo && *v <= hi && *v == floor(*v) ? 0 : -1;
}

static int count_image(void *ctx, const struct imagedata_pred *p)
{
    (void)p;
    (*(size_t *)ctx)++;
    return 0;
}

/* Read an OOF file against the ensemble's schema: the columns must be
 * row, fold, target, prediction, then proba_<class> in class order. */
static int oof_read(const char *path, const struct schema *s, struct oof *o, const char *field,
                    struct driver_error *e)
{
    memset(o, 0, sizeof *o);
    struct csv_table t;
    struct csv_error ce;
    memset(&ce, 0, sizeof ce);
    struct csv_opts co = {0};
    co.header = CSV_HEADER_YES;
    if (csv_table_load_file(path, &co, &t, &ce) != 0)
        return set_err(e, DRIVER_EBADDATA, field, "%s: %s: %s", field, path, ce.message);
    int K = s->task == PD_TASK_CLASSIFICATION ? s->n_classes : 1;
    size_t want = 4 + (s->task == PD_TASK_CLASSIFICATION ? (size_t)K : 0);
    int status = DRIVER_OK;
    char name[1100];
    static const char *const fixed[] = {"row", "fold", "target", "prediction"};
    if (t.n_cols != want) {
        status = set_err(e, DRIVER_EBADDATA, field, "%s: %s: expected %zu columns, found %zu", field,
                         path, want, t.n_cols);
        goto out;
    }
    for (size_t c = 0; c < want; c++) {
        if (c < 4) snprintf(name, sizeof name, "%s", fixed[c]);
        else snprintf(name, sizeof name, "proba_%s", s->classes[c - 4]);
        if (strcmp(t.names[c], name) != 0) {
            status = set_err(e, DRIVER_EBADDATA, field, "%s: %s: column %zu is '%.200s', expected '%.200s'",
                             field, path, c + 1, t.names[c], name);
            goto out;
        }
    }
    o->n = t.n_rows;
    o->row = malloc((t.n_rows + 1) * sizeof *o->row);
    o->fold = malloc((t.n_rows + 1) * sizeof *o->fold);
    o->y = malloc((t.n_rows + 1) * sizeof *o->y);
    o->p = malloc((t.n_rows * (size_t)K + 1) * sizeof *o->p);
    if (!o->row || !o->fold || !o->y || !o->p) {
        status = set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
        goto out;
    }
    for (size_t r = 0; r < t.n_rows; r++) {
        double v;
        const char *bad = NULL;
        if (parse_size(csv_table_cell(&t, r, 0), 0, 1e15, &v) < 0) bad = "row";
        else o->row[r] = (size_t)v;
        if (!bad && parse_size(csv_table_cell(&t, r, 1), 0, 1000, &v) < 0) bad = "fold";
        else if (!bad) o->fold[r] = (int)v;
        const char *tg = csv_table_cell(&t, r, 2);
        if (!bad && s->task == PD_TASK_CLASSIFICATION) {
            int k = 0;
            while (k < K && strcmp(s->classes[k], tg) != 0) k++;
            if (k == K) bad = "target";
            else o->y[r] = k;
            for (int j = 0; !bad && j < K; j++) {
                if (schema_parse_number(csv_table_cell(&t, r, 4 + (size_t)j), &v) < 0 || !(v >= 0 && v <= 1))
                    bad = "proba";
                else o->p[r * (size_t)K + (size_t)j] = v;
            }
        } else if (!bad) {
            if (schema_parse_number(tg, &v) < 0 || !isfinite(v)) bad = "target";
            else o->y[r] = v;
            if (!bad && (schema_parse_number(csv_table_cell(&t, r, 3), &v) < 0 || !isfinite(v)))
                bad = "prediction";
            else if (!bad) o->p[r] = v;
        }
        if (bad) {
            status = set_err(e, DRIVER_EBADDATA, field, "%s: %s: data row %zu: bad %s", field, path, r + 1, bad);
            goto out;
        }
    }
    if (o->n == 0) status = set_err(e, DRIVER_EBADDATA, field, "%s: %s: no rows", field, path);
out:
    csv_table_free(&t);
    if (status != DRIVER_OK) oof_free(o);
    return status;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= MODELFILE_MAX_BYTES) { free(buf); buf = NULL; break; }
            unsigned char *b = realloc(buf, cap * 2);
            if (b == NULL) { free(buf); buf = NULL; break; }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (buf && ferror(f)) { free(buf); buf = NULL; }
    fclose(f);
    *len = n;
    return buf;
}

static int write_oof(const char *path, const struct schema *s, const struct oof *o,
                     const double *p, struct driver_error *e)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) return set_err(e, DRIVER_EINTERNAL, "artifact", "%s: %s", path, strerror(errno));
    int cls = s->task == PD_TASK_CLASSIFICATION, K = cls ? s->n_classes : 1;
    fputs("row,fold,target,prediction", f);
    for (int k = 0; cls && k < K; k++) {
        char name[1100];
        snprintf(name, sizeof name, "proba_%s", s->classes[k]);
        fputc(',', f);
        csv_write_field(f, name);
    }
    fputc('\n', f);
    for (size_t i = 0; i < o->n; i++) {
        fprintf(f, "%zu,%d,", o->row[i], o->fold[i]);
        const double *q = p + i * (size_t)K;
        if (cls) {
            int best = 0;
            for (int k = 1; k < K; k++) if (q[k] > q[best]) best = k;
            csv_write_field(f, s->classes[(int)o->y[i]]);
            fputc(',', f);
            csv_write_field(f, s->classes[best]);
            for (int k = 0; k < K; k++) fprintf(f, ",%.17g", q[k]);
        } else {
            fprintf(f, "%.17g,%.17g", o->y[i], q[0]);
        }
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return set_err(e, DRIVER_EINTERNAL, "artifact", "%s: write failed", path);
    return DRIVER_OK;
}

static void emit(const struct driver_opts *o, cJSON *ev)
{
    if (ev && o && o->emit) o->emit(o->emit_ctx, ev);
    cJSON_Delete(ev);
}

static int metric_lookup(const char *name)
{
    if (strcmp(name, "logloss") == 0) return PD_METRIC_LOG_LOSS;
    return pd_metric_find(name);
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

/* Per-fold metrics of the ensemble's OOF predictions:
 * {name: {mean, std, folds: [...]}}. */
static cJSON *fold_metrics(const struct pd_task *task, const struct oof *o, const double *p,
                           int n_folds, int primary, double *score)
{
    int K = task->kind == PD_TASK_CLASSIFICATION ? task->n_classes : 1;
    double *vals = calloc((size_t)n_folds * PD_METRIC_COUNT + 1, sizeof *vals);
    double *yy = malloc((o->n + 1) * sizeof *yy), *pp = malloc((o->n * (size_t)K + 1) * sizeof *pp);
    cJSON *metrics = cJSON_CreateObject();
    int used = 0;
    char msg[256];
    if (!vals || !yy || !pp || !metrics) goto fail;
    for (int f = 0; f < n_folds; f++) {
        size_t m = 0;
        for (size_t i = 0; i < o->n; i++) {
            if (o->fold[i] != f) continue;
            yy[m] = o->y[i];
            memcpy(pp + m * (size_t)K, p + i * (size_t)K, (size_t)K * sizeof *pp);
            m++;
        }
        if (m == 0) continue;
        if (pd_metrics_compute(task, yy, pp, m, vals + (size_t)used * PD_METRIC_COUNT, msg, sizeof msg) != 0)
            goto fail;
        used++;
    }
    double *col = yy; /* reuse: used <= n */
    for (int m = 0; m < PD_METRIC_COUNT; m++) {
        if (!pd_metric_applies((enum pd_metric)m, task->kind)) continue;
        for (int f = 0; f < used; f++) col[f] = vals[(size_t)f * PD_METRIC_COUNT + m];
        cJSON *mo = cJSON_AddObjectToObject(metrics, driver_metric_name(m));
        cJSON_AddNumberToObject(mo, "mean", mean_of(col, used));
        cJSON_AddNumberToObject(mo, "std", std_of(col, used));
        cJSON_AddItemToObject(mo, "folds", cJSON_CreateDoubleArray(col, used));
        if (m == primary) *score = mean_of(col, used);
    }
    free(vals);
    free(yy);
    free(pp);
    return metrics;
fail:
    free(vals);
    free(yy);
    free(pp);
    cJSON_Delete(metrics);
    return NULL;
}

int ensemble_run(const cJSON *spec, const struct driver_opts *o, struct driver_error *e)
{
    memset(e, 0, sizeof *e);
    double t_start = now_s();
    struct modelfile *mf = NULL;
    unsigned char **bytes = NULL;
    size_t *lens = NULL;
    struct oof *oofs = NULL;
    const double **preds = NULL;
    int *counts = NULL;
    double *ens = NULL, *wts = NULL;
    const void **sel_bytes = NULL;
    size_t *sel_lens = NULL;
    struct pd_buf file;
    pd_buf_init(&file);
    cJSON *extra = NULL, *metrics = NULL, *result = NULL, *params = NULL;
    char *tmp_model = NULL, *tmp_oof = NULL, *oof_path = NULL;
    int n_members = 0, status = DRIVER_OK, rounds = ENSEMBLE_DEFAULT_ROUNDS,
        patience = ENSEMBLE_DEFAULT_PATIENCE, threads = 1, metric = -1, task_want = SCHEMA_TASK_AUTO;
    char msg[512];

    if (!cJSON_IsObject(spec)) return set_err(e, DRIVER_EBADSPEC, NULL, "the spec must be a JSON object");
    const cJSON *ensj = cJSON_GetObjectItemCaseSensitive(spec, "ensemble");
    if (!cJSON_IsObject(ensj))
        return set_err(e, DRIVER_EBADSPEC, "ensemble", "ensemble: must be an object {\"members\": [...], \"rounds\": n}");
    for (const cJSON *it = ensj->child; it; it = it->next) {
        if (strcmp(it->string, "members") && strcmp(it->string, "rounds") && strcmp(it->string, "patience"))
            return set_err(e, DRIVER_EBADSPEC, "ensemble", "ensemble.%.80s: unknown member (members, rounds, patience)",
                           it->string);
    }
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(ensj, "rounds");
    if (it && get_int(it, 1, ENSEMBLE_MAX_ROUNDS, &rounds) < 0)
        return set_err(e, DRIVER_EBADSPEC, "ensemble.rounds", "ensemble.rounds: must be an integer between 1 and %d",
                       ENSEMBLE_MAX_ROUNDS);
    it = cJSON_GetObjectItemCaseSensitive(ensj, "patience");
    if (it && get_int(it, 1, ENSEMBLE_MAX_ROUNDS, &patience) < 0)
        return set_err(e, DRIVER_EBADSPEC, "ensemble.patience", "ensemble.patience: must be an integer between 1 and %d",
                       ENSEMBLE_MAX_ROUNDS);
    const cJSON *mem = cJSON_GetObjectItemCaseSensitive(ensj, "members");
    n_members = cJSON_IsArray(mem) ? cJSON_GetArraySize(mem) : 0;
    if (n_members < 1 || n_members > ENSEMBLE_MAX_MEMBERS)
        return set_err(e, DRIVER_EBADSPEC, "ensemble.members",
                       "ensemble.members: must be an array of 1..%d {\"artifact\": path, \"oof\": path}",
                       ENSEMBLE_MAX_MEMBERS);
    if ((it = cJSON_GetObjectItemCaseSensitive(spec, "task")) != NULL) {
        const char *t = cJSON_IsString(it) ? it->valuestring : "";
        if (strcmp(t, "auto") == 0) task_want = SCHEMA_TASK_AUTO;
        else if (strcmp(t, "classification") == 0) task_want = PD_TASK_CLASSIFICATION;
        else if (strcmp(t, "regression") == 0) task_want = PD_TASK_REGRESSION;
        else return set_err(e, DRIVER_EBADSPEC, "task", "task: must be \"auto\", \"classification\" or \"regression\"");
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(spec, "metric")) != NULL && !cJSON_IsNull(it)) {
        if (!cJSON_IsString(it) || (metric = metric_lookup(it->valuestring)) < 0)
            return set_err(e, DRIVER_EBADSPEC, "metric",
                           "metric: unknown metric (accuracy, balanced_accuracy, logloss, roc_auc, "
                           "f1_macro, rmse, mae, r2)");
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(spec, "threads")) != NULL && get_int(it, 1, 256, &threads) < 0)
        return set_err(e, DRIVER_EBADSPEC, "threads", "threads: must be an integer between 1 and 256");
    const cJSON *art = cJSON_GetObjectItemCaseSensitive(spec, "artifact");
    const char *artifact = cJSON_IsString(art) && art->valuestring[0] ? art->valuestring : NULL;
    if (art && !cJSON_IsNull(art) && (artifact == NULL || strlen(artifact) > 3900))
        return set_err(e, DRIVER_EBADSPEC, "artifact", "artifact: must be a non-empty path (at most 3900 bytes)");
    const cJSON *dataj = cJSON_GetObjectItemCaseSensitive(spec, "data");
    const char *data = cJSON_IsString(dataj) && dataj->valuestring[0] ? dataj->valuestring : NULL;

    mf = calloc((size_t)n_members, sizeof *mf);
    bytes = calloc((size_t)n_members, sizeof *bytes);
    lens = calloc((size_t)n_members, sizeof *lens);
    oofs = calloc((size_t)n_members, sizeof *oofs);
    preds = calloc((size_t)n_members, sizeof *preds);
    counts = calloc((size_t)n_members, sizeof *counts);
    wts = calloc((size_t)n_members, sizeof *wts);
    sel_bytes = calloc((size_t)n_members, sizeof *sel_bytes);
    sel_lens = calloc((size_t)n_members, sizeof *sel_lens);
    if (!mf || !bytes || !lens || !oofs || !preds || !counts || !wts || !sel_bytes || !sel_lens) {
        status = set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
        goto out;
    }
    /* members: model files, then OOF files checked against member 0 */
    for (int i = 0; i < n_members; i++) {
        const cJSON *m = cJSON_GetArrayItem(mem, i);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(m, "artifact");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(m, "oof");
        char field[64];
        snprintf(field, sizeof field, "ensemble.members[%d]", i);
        if (!cJSON_IsObject(m) || !cJSON_IsString(a) || !cJSON_IsString(f)) {
            status = set_err(e, DRIVER_EBADSPEC, field, "%s: must be {\"artifact\": path, \"oof\": path}", field);
            goto out;
        }
        if ((bytes[i] = read_file(a->valuestring, &lens[i])) == NULL) {
            status = set_err(e, DRIVER_EBADDATA, field, "%s: cannot read %.600s", field, a->valuestring);
            goto out;
        }
        if (modelfile_decode(bytes[i], lens[i], &mf[i], msg, sizeof msg) != 0) {
            status = set_err(e, DRIVER_EBADDATA, field, "%s: %s", field, msg);
            goto out;
        }
        if (mf[i].family == &pd_family_ensemble) {
            status = set_err(e, DRIVER_EBADDATA, field, "%s: an ensemble cannot be a member", field);
            goto out;
        }
        if (i > 0 && !schema_equal(&mf[0].schema, &mf[i].schema)) {
            status = set_err(e, DRIVER_EBADDATA, field,
                             "%s: trained on a different schema (columns, target or classes) than member 0", field);
            goto out;
        }
        if ((status = oof_read(f->valuestring, &mf[0].schema, &oofs[i], field, e)) != DRIVER_OK) goto out;
        if (i > 0) {
            int same = oofs[i].n == oofs[0].n;
            for (size_t r = 0; same && r < oofs[0].n; r++)
                same = oofs[i].row[r] == oofs[0].row[r] && oofs[i].fold[r] == oofs[0].fold[r] &&
                       oofs[i].y[r] == oofs[0].y[r];
            if (!same) {
                status = set_err(e, DRIVER_EBADDATA, field,
                                 "%s: its OOF rows, folds or targets differ from member 0's "
                                 "(members must share one data set and one cv split)", field);
                goto out;
            }
        }
        preds[i] = oofs[i].p;
    }
    struct pd_task task = mf[0].task;
    const struct schema *s = &mf[0].schema;
    if (task_want != SCHEMA_TASK_AUTO && task_want != (int)task.kind) {
        status = set_err(e, DRIVER_EBADSPEC, "task", "task: the members are %s models",
                         task.kind == PD_TASK_CLASSIFICATION ? "classification" : "regression");
        goto out;
    }
    if (metric < 0) metric = task.kind == PD_TASK_CLASSIFICATION ? PD_METRIC_LOG_LOSS : PD_METRIC_RMSE;
    if (!pd_metric_applies((enum pd_metric)metric, task.kind)) {
        status = set_err(e, DRIVER_EBADSPEC, "metric", "metric: %s does not apply to %s", driver_metric_name(metric),
                         task.kind == PD_TASK_CLASSIFICATION ? "classification" : "regression");
        goto out;
    }
    int n_folds = 0;
    for (size_t r = 0; r < oofs[0].n; r++) if (oofs[0].fold[r] + 1 > n_folds) n_folds = oofs[0].fold[r] + 1;
    size_t n = oofs[0].n;
    int K = task.kind == PD_TASK_CLASSIFICATION ? task.n_classes : 1;

    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "start");
    cJSON_AddStringToObject(ev, "task", task.kind == PD_TASK_CLASSIFICATION ? "classification" : "regression");
    cJSON_AddStringToObject(ev, "family", "ensemble");
    cJSON_AddNumberToObject(ev, "n_rows", (double)n);
    cJSON_AddNumberToObject(ev, "folds", n_folds);
    cJSON_AddNumberToObject(ev, "members", n_members);
    emit(o, ev);
    if (o && o->cancel && *o->cancel) { status = set_err(e, DRIVER_ECANCELLED, NULL, "cancelled"); goto out; }

    /* select */
    double t0 = now_s(), best = NAN;
    int used = 0;
    if (ensemble_select(&task, metric, oofs[0].y, oofs[0].fold, n_folds, n, preds, n_members, rounds, patience,
                        counts, &best, &used) != 0) {
        status = set_err(e, DRIVER_EINTERNAL, NULL, "ensemble selection failed");
        goto out;
    }
    double fit_seconds = now_s() - t0;
    ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "iteration");
    cJSON_AddStringToObject(ev, "stage", "final");
    cJSON_AddNumberToObject(ev, "iteration", used);
    cJSON_AddNumberToObject(ev, "total", rounds);
    cJSON_AddStringToObject(ev, "metric", driver_metric_name(metric));
    cJSON_AddNumberToObject(ev, "value", best);
    emit(o, ev);

    /* the ensemble's OOF predictions and its weights */
    if ((ens = calloc(n * (size_t)K + 1, sizeof *ens)) == NULL) {
        status = set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
        goto out;
    }
    int n_sel = 0;
    params = cJSON_CreateObject();
    cJSON *pm = cJSON_AddArrayToObject(params, "members");
    for (int i = 0; i < n_members; i++) {
        if (counts[i] == 0) continue;
        double w = (double)counts[i] / (double)used;
        for (size_t j = 0; j < n * (size_t)K; j++) ens[j] += w * preds[i][j];
        wts[n_sel] = w;
        sel_bytes[n_sel] = bytes[i];
        sel_lens[n_sel] = lens[i];
        n_sel++;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "model", i);
        cJSON_AddNumberToObject(x, "weight", w);
        cJSON_AddItemToArray(pm, x);
    }
    cJSON_AddNumberToObject(params, "rounds", used);
    double score = NAN;
    if ((metrics = fold_metrics(&task, &oofs[0], ens, n_folds, metric, &score)) == NULL) {
        status = set_err(e, DRIVER_EINTERNAL, NULL, "metrics of the ensemble failed");
        goto out;
    }

    /* the model file */
    extra = cJSON_CreateObject();
    cJSON_AddItemToObject(extra, "params", cJSON_Duplicate(params, 1));
    cJSON_AddItemToObject(extra, "metrics", cJSON_Duplicate(metrics, 1));
    cJSON_AddStringToObject(extra, "metric", driver_metric_name(metric));
    cJSON_AddNumberToObject(extra, "score", score);
    cJSON_AddNumberToObject(extra, "n_rows", (double)n);
    cJSON_AddNumberToObject(extra, "fit_seconds", fit_seconds);
    if (ensemble_encode(sel_bytes, sel_lens, wts, n_sel, extra, &file, msg, sizeof msg) != 0) {
        status = set_err(e, DRIVER_EINTERNAL, NULL, "cannot build the ensemble model: %s", msg);
        goto out;
    }

    /* predict timing: decode what we wrote and predict the data rows */
    double predict_us = NAN;
    if (data) {
        struct modelfile m;
        struct csv_table t;
        struct csv_error ce;
        struct schema_frame fr;
        struct csv_opts co = {0};
        memset(&ce, 0, sizeof ce);
        if (modelfile_decode(file.data, file.len, &m, msg, sizeof msg) != 0) {
            status = set_err(e, DRIVER_EINTERNAL, NULL, "the ensemble model does not decode: %s", msg);
            goto out;
        }
        if (imagedata_is_image_model(&m)) {
            /* image members: time the archive's images instead of CSV rows */
            size_t count = 0;
            double tp = now_s();
            int rc = imagedata_predict_file(&m, data, NULL, count_image, &count, msg, sizeof msg);
            if (rc == 0 && count > 0) predict_us = (now_s() - tp) * 1e6 / (double)count;
            modelfile_free(&m);
            if (rc != 0) {
                status = set_err(e, DRIVER_EBADDATA, "data", "data: the ensemble cannot predict it: %s", msg);
                goto out;
            }
        } else {
            if (csv_table_load_file(data, &co, &t, &ce) != 0) {
                modelfile_free(&m);
                status = set_err(e, DRIVER_EBADDATA, "data", "data: %s: %s", data, ce.message);
                goto out;
            }
            int rc = schema_frame_build(&m.schema, &t, &fr, msg, sizeof msg);
            double *pr = rc == 0 ? malloc((t.n_rows * (size_t)K + 1) * sizeof *pr) : NULL;
            if (rc == 0 && pr) {
                double tp = now_s();
                rc = modelfile_predict(&m, &fr, threads, pr, msg, sizeof msg);
                if (rc == 0 && t.n_rows > 0) predict_us = (now_s() - tp) * 1e6 / (double)t.n_rows;
            } else if (rc == 0) {
                rc = PD_ENOMEM;
            }
            free(pr);
            if (rc == 0) schema_frame_free(&fr);
            csv_table_free(&t);
            modelfile_free(&m);
            if (rc != 0) {
                status = set_err(e, DRIVER_EBADDATA, "data", "data: the ensemble cannot predict it: %s", msg);
                goto out;
            }
        }
    }
    if (o && o->cancel && *o->cancel) { status = set_err(e, DRIVER_ECANCELLED, NULL, "cancelled"); goto out; }

    if (artifact) {
        size_t len = strlen(artifact) + 64;
        tmp_model = malloc(len);
        tmp_oof = malloc(len);
        oof_path = malloc(len);
        if (!tmp_model || !tmp_oof || !oof_path) {
            status = set_err(e, DRIVER_EINTERNAL, NULL, "out of memory");
            goto out;
        }
        driver_temp_path(artifact, 0, tmp_model, len);
        driver_temp_path(artifact, 1, tmp_oof, len);
        snprintf(oof_path, len, "%s.oof.csv", artifact);
        if ((status = write_oof(tmp_oof, s, &oofs[0], ens, e)) != DRIVER_OK) goto out;
        FILE *f = fopen(tmp_model, "wb");
        int ok = f && fwrite(file.data, 1, file.len, f) == file.len;
        if (f && fclose(f) != 0) ok = 0;
        if (!ok) {
            status = set_err(e, DRIVER_EINTERNAL, "artifact", "%s: cannot write: %s", tmp_model, strerror(errno));
            goto out;
        }
        if (o && o->cancel && *o->cancel) { status = set_err(e, DRIVER_ECANCELLED, NULL, "cancelled"); goto out; }
        if (rename(tmp_oof, oof_path) != 0 || rename(tmp_model, artifact) != 0) {
            status = set_err(e, DRIVER_EINTERNAL, "artifact", "%s: rename failed: %s", artifact, strerror(errno));
            unlink(oof_path);
            goto out;
        }
    }

    result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "event", "result");
    cJSON_AddStringToObject(result, "task", task.kind == PD_TASK_CLASSIFICATION ? "classification" : "regression");
    cJSON_AddStringToObject(result, "family", "ensemble");
    cJSON_AddItemToObject(result, "params", params);
    params = NULL;
    cJSON_AddStringToObject(result, "metric", driver_metric_name(metric));
    cJSON_AddNumberToObject(result, "score", score);
    cJSON_AddNumberToObject(result, "selection_score", best);
    cJSON_AddBoolToObject(result, "greater_is_better", pd_metric_greater_is_better((enum pd_metric)metric));
    cJSON_AddItemToObject(result, "metrics", metrics);
    metrics = NULL;
    cJSON_AddNumberToObject(result, "n_rows", (double)n);
    cJSON_AddNumberToObject(result, "n_features", 0);
    cJSON *cls = cJSON_AddArrayToObject(result, "classes");
    for (int k = 0; k < s->n_classes; k++) cJSON_AddItemToArray(cls, cJSON_CreateString(s->classes[k]));
    cJSON *dropped = cJSON_AddArrayToObject(result, "dropped_columns");
    for (size_t c = 0; c < s->n_cols; c++) {
        if (schema_col_used(&s->cols[c])) continue;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", s->cols[c].name);
        cJSON_AddStringToObject(d, "reason", schema_type_name(s->cols[c].type));
        cJSON_AddItemToArray(dropped, d);
    }
    cJSON_AddNumberToObject(result, "folds", n_folds);
    cJSON_AddNumberToObject(result, "fit_seconds", fit_seconds);
    cJSON_AddNumberToObject(result, "cv_fit_seconds", 0);
    cJSON_AddNumberToObject(result, "cv_seconds", now_s() - t_start);
    if (isnan(predict_us)) cJSON_AddNullToObject(result, "predict_us_per_row");
    else cJSON_AddNumberToObject(result, "predict_us_per_row", predict_us);
    cJSON_AddNumberToObject(result, "model_bytes", (double)file.len);
    cJSON_AddNumberToObject(result, "threads", threads);
    cJSON_AddStringToObject(result, "device", "cpu");
    if (artifact) {
        cJSON_AddStringToObject(result, "artifact", artifact);
        cJSON_AddStringToObject(result, "oof_path", oof_path);
    } else {
        cJSON_AddNullToObject(result, "artifact");
        cJSON_AddNullToObject(result, "oof_path");
    }
    emit(o, result);
    result = NULL;

out:
    if (status != DRIVER_OK) {
        if (tmp_model) unlink(tmp_model);
        if (tmp_oof) unlink(tmp_oof);
    }
    for (int i = 0; mf && i < n_members; i++) modelfile_free(&mf[i]);
    for (int i = 0; bytes && i < n_members; i++) free(bytes[i]);
    for (int i = 0; oofs && i < n_members; i++) oof_free(&oofs[i]);
    free(mf);
    free(bytes);
    free(lens);
    free(oofs);
    free(preds);
    free(counts);
    free(ens);
    free(wts);
    free(sel_bytes);
    free(sel_lens);
    pd_buf_free(&file);
    cJSON_Delete(extra);
    cJSON_Delete(metrics);
    cJSON_Delete(result);
    cJSON_Delete(params);
    free(tmp_model);
    free(tmp_oof);
    free(oof_path);
    return status;
}

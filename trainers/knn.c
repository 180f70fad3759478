/*
 * knn.c - see knn.h. fit copies the training set; predict runs on the
 * caller's thread plus up to threads-1 workers it joins before returning.
 */
#include "trainers/knn.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainers/params.h"

struct knn_params {
    enum pd_task_kind kind;
    long n_neighbors;
    int distance;           /* weights = "distance": index in weight_names */
};

struct knn_model {
    uint32_t kind, n_classes, k, distance;
    uint64_t n, d;
    float *x;       /* n*d */
    float *norm;    /* n: |x_i|² */
    double *y, *w;  /* n each */
};

#define KNN_MAGIC 0x314e4e4bu /* "KNN1" */
#define KNN_MAX_D (1u << 24)
#define KNN_MAX_CLASSES (1u << 16)
#define KNN_MAX_K 100000
enum { QBLOCK = 64, TBLOCK = 1024 };

static const char *const weight_names[] = {"uniform", "distance", NULL};

static int knn_params_parse(const cJSON *params, const struct pd_task *task,
                            void **out, char *err, size_t errlen)
{
    *out = NULL;
    struct params_ctx pc = {"knn", PARAMS_BRIEF, err, errlen};
    if (task == NULL || (task->kind != PD_TASK_CLASSIFICATION && task->kind != PD_TASK_REGRESSION))
        return params_fail(err, errlen, "task: unknown kind");
    if (params_object(&pc, params) != 0) return PD_EPARAM;
    struct knn_params *p = calloc(1, sizeof *p);
    if (p == NULL) {
        params_fail(err, errlen, "params: out of memory");
        return PD_ENOMEM;
    }
    p->kind = task->kind;
    p->n_neighbors = 5;
    const cJSON *obj = cJSON_IsObject(params) ? params : NULL, *it;
    cJSON_ArrayForEach(it, obj) {
        const char *k = it->string;
        int rc;
        if (strcmp(k, "n_neighbors") == 0) rc = params_int(&pc, it, 1, KNN_MAX_K, &p->n_neighbors);
        else if (strcmp(k, "weights") == 0) rc = params_enum(&pc, it, weight_names, &p->distance);
        else rc = params_unknown(&pc, it);
        if (rc != 0) {
            free(p);
            return rc;
        }
    }
    *out = p;
    return PD_OK;
}

static cJSON *knn_params_json(const void *params)
{
    const struct knn_params *p = params;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || p == NULL) return o;
    cJSON_AddNumberToObject(o, "n_neighbors", p->n_neighbors);
    cJSON_AddStringToObject(o, "weights", p->distance ? "distance" : "uniform");
    return o;
}

static void knn_params_free(void *params) { free(params); }

static void knn_model_free(void *model)
{
    struct knn_model *m = model;
    if (m == NULL) return;
    free(m->x);
    free(m->norm);
    free(m->y);
    free(m->w);
    free(m);
}

static struct knn_model *model_new(size_t n, size_t d)
{
    struct knn_model *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    m->n = n;
    m->d = d;
    m->x = malloc(n * d * sizeof *m->x);
    m->norm = malloc(n * sizeof *m->norm);
    m->y = malloc(n * sizeof *m->y);
    m->w = malloc(n * sizeof *m->w);
    if (!m->x || !m->norm || !m->y || !m->w) {
        knn_model_free(m);
        return NULL;
    }
    return m;
}

static void compute_norms(struct knn_model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        double s = 0;
        for (size_t j = 0; j < m->d; j++) s += (double)m->x[i * m->d + j] * m->x[i * m->d + j];
        m->norm[i] = (float)s;
    }
}

static int knn_fit(const void *params, const struct pd_task *task,
                   const struct pd_data *tr, const struct pd_data *valid,
                   const struct pd_fit_opts *opts, void **out_model,
                   char *err, size_t errlen)
{
    const struct knn_params *p = params;
    *out_model = NULL;
    if (p == NULL || task == NULL || tr == NULL) return params_fail(err, errlen, "knn: missing argument");
    if (task->kind != p->kind) return params_fail(err, errlen, "task: params were parsed for another task kind");
    if (task->kind == PD_TASK_CLASSIFICATION &&
        (task->n_classes < 1 || (uint32_t)task->n_classes > KNN_MAX_CLASSES))
        return params_fail(err, errlen, "n_classes: must be between 1 and %u", KNN_MAX_CLASSES);
    if (tr->n == 0 || tr->d == 0 || tr->d > KNN_MAX_D || tr->n > (size_t)INT32_MAX) {
        params_fail(err, errlen, "knn: cannot fit %zu rows of %zu features", tr->n, tr->d);
        return PD_EDATA;
    }
    if ((size_t)p->n_neighbors > tr->n)
        return params_fail(err, errlen, "n_neighbors: %ld exceeds the %zu training rows", p->n_neighbors, tr->n);
    for (size_t i = 0; i < tr->n; i++) {
        double w = tr->w ? tr->w[i] : 1, y = tr->y[i];
        if (!(w >= 0) || !isfinite(w) || !isfinite(y) ||
            (task->kind == PD_TASK_CLASSIFICATION && !(y >= 0 && y < task->n_classes && y == floor(y)))) {
            params_fail(err, errlen, "row %zu: bad weight or target", i);
            return PD_EDATA;
        }
        for (size_t j = 0; j < tr->d; j++)
            if (!isfinite(tr->x[i * tr->d + j])) {
                params_fail(err, errlen, "row %zu feature %zu: missing or infinite value", i, j);
                return PD_EDATA;
            }
    }
    struct knn_model *m = model_new(tr->n, tr->d);
    if (m == NULL) {
        params_fail(err, errlen, "knn: out of memory");
        return PD_ENOMEM;
    }
    m->kind = task->kind;
    m->n_classes = task->kind == PD_TASK_CLASSIFICATION ? (uint32_t)task->n_classes : 0;
    m->k = (uint32_t)p->n_neighbors;
    m->distance = (uint32_t)p->distance;
    memcpy(m->x, tr->x, tr->n * tr->d * sizeof *m->x);
    memcpy(m->y, tr->y, tr->n * sizeof *m->y);
    for (size_t i = 0; i < tr->n; i++) m->w[i] = tr->w ? tr->w[i] : 1.0;
    compute_norms(m);
    if (opts && opts->progress) {
        struct pd_progress pr = {1, 1, NULL, 0};
        opts->progress(opts->progress_ctx, &pr);
    }
    *out_model = m;
    return PD_OK;
}

/* ---- predict ------------------------------------------------------------ */

struct nb { float dist; uint32_t idx; };

static int nb_less(struct nb a, struct nb b)
{
    return a.dist < b.dist || (a.dist == b.dist && a.idx < b.idx);
}

/* Max-heap of the k best so far (root = worst kept). */
static void heap_push(struct nb *h, uint32_t *cnt, uint32_t k, struct nb v)
{
    if (*cnt < k) {
        uint32_t i = (*cnt)++;
        while (i > 0) {
            uint32_t parent = (i - 1) / 2;
            if (!nb_less(h[parent], v)) break;
            h[i] = h[parent];
            i = parent;
        }
        h[i] = v;
        return;
    }
    if (!nb_less(v, h[0])) return;
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, big = i;
        struct nb cur = big == i ? v : h[big];
        if (l < k && nb_less(cur, h[l])) { big = l; cur = h[l]; }
        if (r < k && nb_less(cur, h[r])) big = r;
        if (big == i) break;
        h[i] = h[big];
        i = big;
    }
    h[i] = v;
}

struct job {
    const struct knn_model *m;
    const float *x;
    size_t n;
    double *out;
    size_t first_block, stride;   /* blocks first, first+stride, ... */
    int rc;
};

static void predict_row(const struct knn_model *m, const float *q,
                        const struct nb *h, uint32_t cnt, double *o, double *dist)
{
    size_t d = m->d;
    int zero = 0;
    for (uint32_t t = 0; t < cnt; t++) {
        const float *r = m->x + (size_t)h[t].idx * d;
        double s = 0;
        for (size_t j = 0; j < d; j++) {
            double e = (double)q[j] - r[j];
            s += e * e;
        }
        dist[t] = sqrt(s);
        zero |= dist[t] == 0;
    }
    size_t nc = m->kind == PD_TASK_CLASSIFICATION ? m->n_classes : 1;
    for (size_t c = 0; c < nc; c++) o[c] = 0;
    double tot = 0, ytot = 0;
    for (int pass = 0; pass < 2 && tot == 0; pass++) {
        /* pass 1 ignores row weights in case they are all zero */
        for (uint32_t t = 0; t < cnt; t++) {
            double wt = pass == 0 ? m->w[h[t].idx] : 1.0;
            if (m->distance) wt *= zero ? (dist[t] == 0) : 1.0 / dist[t];
            tot += wt;
            if (m->kind == PD_TASK_CLASSIFICATION) o[(size_t)m->y[h[t].idx]] += wt;
            else ytot += wt * m->y[h[t].idx];
        }
    }
    if (m->kind == PD_TASK_REGRESSION) {
        o[0] = ytot / tot;
        return;
    }
    for (size_t c = 0; c < nc; c++) o[c] /= tot;
}

static void *predict_worker(void *arg)
{
    struct job *jb = arg;
    const struct knn_model *m = jb->m;
    size_t d = m->d, k = m->k, nc = m->kind == PD_TASK_CLASSIFICATION ? m->n_classes : 1;
    float *g = malloc((size_t)QBLOCK * TBLOCK * sizeof *g);
    float *qn = malloc(QBLOCK * sizeof *qn);
    struct nb *heap = malloc((size_t)QBLOCK * k * sizeof *heap);
    uint32_t *cnt = malloc(QBLOCK * sizeof *cnt);
    double *dist = malloc(k * sizeof *dist);
    if (!g || !qn || !heap || !cnt || !dist) {
        jb->rc = PD_ENOMEM;
        goto done;
    }
    size_t nblocks = (jb->n + QBLOCK - 1) / QBLOCK;
    for (size_t b = jb->first_block; b < nblocks; b += jb->stride) {
        size_t q0 = b * QBLOCK, qb = jb->n - q0 < QBLOCK ? jb->n - q0 : QBLOCK;
        const float *q = jb->x + q0 * d;
        for (size_t i = 0; i < qb; i++) {
            double s = 0;
            for (size_t j = 0; j < d; j++) s += (double)q[i * d + j] * q[i * d + j];
            qn[i] = (float)s;
            cnt[i] = 0;
        }
        for (size_t t0 = 0; t0 < m->n; t0 += TBLOCK) {
            size_t tb = m->n - t0 < TBLOCK ? m->n - t0 : TBLOCK;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qb, (int)tb, (int)d,
                        -2.0f, q, (int)d, m->x + t0 * d, (int)d, 0.0f, g, (int)tb);
            for (size_t i = 0; i < qb; i++) {
                const float *gi = g + i * tb;
                for (size_t t = 0; t < tb; t++) {
                    float dd = qn[i] + m->norm[t0 + t] + gi[t];
                    struct nb v = {dd > 0 ? dd : 0, (uint32_t)(t0 + t)};
                    heap_push(heap + i * k, &cnt[i], (uint32_t)k, v);
                }
            }
        }
        for (size_t i = 0; i < qb; i++)
            predict_row(m, q + i * d, heap + i * k, cnt[i], jb->out + (q0 + i) * nc, dist);
    }
done:
    free(g);
    free(qn);
    free(heap);
    free(cnt);
    free(dist);
    return NULL;
}

static int knn_predict(const void *model, const float *x, size_t n, size_t d,
                       int threads, double *out)
{
    const struct knn_model *m = model;
    if (m == NULL || d != m->d) return PD_EPARAM;
    if (n == 0) return PD_OK;
    size_t nblocks = (n + QBLOCK - 1) / QBLOCK;
    size_t nt = threads < 1 ? 1 : (size_t)threads;
    if (nt > nblocks) nt = nblocks;
    if (nt > 64) nt = 64;
    struct job jobs[64];
    pthread_t tid[64];
    int started[64] = {0};
    for (size_t t = 0; t < nt; t++)
        jobs[t] = (struct job){m, x, n, out, t, nt, PD_OK};
    for (size_t t = 1; t < nt; t++)
        started[t] = pthread_create(&tid[t], NULL, predict_worker, &jobs[t]) == 0;
    predict_worker(&jobs[0]);
    for (size_t t = 1; t < nt; t++) {
        if (started[t]) pthread_join(tid[t], NULL);
        else predict_worker(&jobs[t]);  /* could not start: do its share here */
    }
    for (size_t t = 0; t < nt; t++)
        if (jobs[t].rc != PD_OK) return jobs[t].rc;
    return PD_OK;
}

static int knn_save(const void *model, struct pd_buf *out)
{
    const struct knn_model *m = model;
    if (m == NULL) return PD_EPARAM;
    pd_buf_put_u32(out, KNN_MAGIC);
    pd_buf_put_u32(out, m->kind);
    pd_buf_put_u32(out, m->n_classes);
    pd_buf_put_u32(out, m->k);
    pd_buf_put_u32(out, m->distance);
    pd_buf_put_u64(out, m->n);
    pd_buf_put_u64(out, m->d);
    pd_buf_put_f32s(out, m->x, m->n * m->d);
    pd_buf_put_f64s(out, m->y, m->n);
    pd_buf_put_f64s(out, m->w, m->n);
    return out->failed ? PD_ENOMEM : PD_OK;
}

static int knn_load(struct pd_reader *in, void **out_model, char *err,
                    size_t errlen)
{
    *out_model = NULL;
    uint32_t magic = 0, kind = 0, nc = 0, k = 0, dist = 0;
    uint64_t n = 0, d = 0;
    pd_reader_get_u32(in, &magic);
    pd_reader_get_u32(in, &kind);
    pd_reader_get_u32(in, &nc);
    pd_reader_get_u32(in, &k);
    pd_reader_get_u32(in, &dist);
    pd_reader_get_u64(in, &n);
    pd_reader_get_u64(in, &d);
    int ok = !in->failed && magic == KNN_MAGIC && dist <= 1 &&
             (kind == PD_TASK_REGRESSION ? nc == 0
              : kind == PD_TASK_CLASSIFICATION ? nc >= 1 && nc <= KNN_MAX_CLASSES : 0) &&
             d >= 1 && d <= KNN_MAX_D && n >= 1 && n <= INT32_MAX && k >= 1 && k <= n &&
             k <= KNN_MAX_K &&
             n <= in->left / (d * 4 + 16) && n * (d * 4 + 16) <= in->left;
    struct knn_model *m = ok ? model_new((size_t)n, (size_t)d) : NULL;
    if (ok && m == NULL) {
        params_fail(err, errlen, "knn: out of memory");
        return PD_ENOMEM;
    }
    if (m != NULL) {
        m->kind = kind;
        m->n_classes = nc;
        m->k = k;
        m->distance = dist;
        pd_reader_get_f32s(in, m->x, n * d);
        pd_reader_get_f64s(in, m->y, n);
        pd_reader_get_f64s(in, m->w, n);
        ok = !in->failed;
        for (size_t i = 0; ok && i < n * d; i++) ok = isfinite(m->x[i]);
        for (size_t i = 0; ok && i < n; i++) {
            double y = m->y[i], w = m->w[i];
            ok = isfinite(y) && w >= 0 && isfinite(w) &&
                 (kind == PD_TASK_REGRESSION || (y >= 0 && y < nc && y == floor(y)));
        }
    }
    if (!ok) {
        knn_model_free(m);
        params_fail(err, errlen, "knn: model data is truncated or not a knn model");
        return PD_EFORMAT;
    }
    compute_norms(m);
    *out_model = m;
    return PD_OK;
}

/* See pd_family.shape. */
static void knn_shape(const void *model, size_t *inputs, size_t *outputs)
{
    const struct knn_model *m = model;
    *inputs = m->d;
    *outputs = m->kind == PD_TASK_CLASSIFICATION ? m->n_classes : 1;
}

const struct pd_family pd_family_knn = {
    .shape = knn_shape,
    .name = "knn",
    .handles_missing = 0,
    .needs_scaling = 1,
    .native_categorical = 0,
    .supports_classification = 1,
    .supports_regression = 1,
    .params_parse = knn_params_parse,
    .params_json = knn_params_json,
    .params_free = knn_params_free,
    .fit = knn_fit,
    .predict = knn_predict,
    .save = knn_save,
    .load = knn_load,
    .model_free = knn_model_free,
};

/*
 * predict.c - POST /v1/models/{model_id}/predict: predictions from a
 * trained model, in the server's own process.
 *
 * The model file is read from its large object once and kept decoded in a
 * small cache (PREDICT_CACHE models, least recently used out), so a
 * dashboard or a service asking one model for predictions pays the load
 * once. Prediction is the same code podium-predict runs (trainers/
 * modelfile.h), so both give the same numbers. Rows come as CSV (a header
 * and rows, columns in any order) or as JSON ({"rows": [{column: value}]}).
 *
 * An image model (trained on an image archive) takes instead one image
 * (image/png, image/jpeg) or an archive of images (application/zip,
 * application/x-tar, application/gzip for tar.gz; class folders or flat),
 * within the same body limit as any body, and answers
 * {"classes": [...], "predictions": [{"name", "class", "probabilities":
 * {class: p}, "resized"} | {"name", "error"}]} in archive order (or CSV
 * with Accept: text/csv: name, prediction, proba_<class>..., error). The
 * images go through trainers/imagedata (the same code as podium-predict)
 * under tighter archive limits than an upload, since a request is served
 * in memory on an HTTP worker. Rows sent to an image model, or images to
 * a table model, are 415 with what the model takes; an archive imageset
 * refuses (unsafe path, zip bomb, damage) or a single image that does not
 * decode is 422.
 *
 * Threads: any HTTP worker. The cache is guarded by a mutex; a cached model
 * is shared read-only between requests and freed when its last user is done.
 */
#include "server/predict.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/blob.h"
#include "lib/csv.h"
#include "lib/log.h"
#include "trainers/imagedata.h"
#include "trainers/modelfile.h"

#define PREDICT_CACHE 8
#define MAX_MODEL_BYTES ((size_t)1 << 30)

/* Images in one request (the body is at most max_body_bytes anyway). */
#define PREDICT_MAX_IMAGES 10000
#define PREDICT_MAX_ENTRIES 20000
#define PREDICT_MAX_ENTRY_BYTES ((uint64_t)32 << 20)
#define PREDICT_MAX_TOTAL_BYTES ((uint64_t)256 << 20)
#define PREDICT_MAX_PIXELS ((uint64_t)16 << 20)          /* 16 megapixels an image */
#define PREDICT_MAX_DECODER_BYTES ((uint64_t)128 << 20)

struct cached {
    char id[40];
    struct modelfile m;
    int refs;             /* the cache's own reference + one per request */
    unsigned long used;   /* last use, for eviction */
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cached *cache[PREDICT_CACHE];
static unsigned long cache_clock;

static void release(struct cached *c)
{
    pthread_mutex_lock(&cache_mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&cache_mu);
    if (last) {
        modelfile_free(&c->m);
        free(c);
    }
}

static struct cached *lookup(const char *id)
{
    pthread_mutex_lock(&cache_mu);
    struct cached *found = NULL;
    for (int i = 0; i < PREDICT_CACHE; i++) {
        if (cache[i] && strcmp(cache[i]->id, id) == 0) {
            found = cache[i];
            found->refs++;
            found->used = ++cache_clock;
            break;
        }
    }
    pthread_mutex_unlock(&cache_mu);
    return found;
}

/* Keep c in the cache (the caller still holds its own reference). */
static void insert(struct cached *c)
{
    struct cached *evicted = NULL;
    pthread_mutex_lock(&cache_mu);
    int slot = 0;
    for (int i = 0; i < PREDICT_CACHE; i++) {
        if (cache[i] == NULL) {
            slot = i;
            break;
        }
        if (cache[i]->used < cache[slot]->used) slot = i;
    }
    evicted = cache[slot];
    c->refs++;
    c->used = ++cache_clock;
    cache[slot] = c;
    pthread_mutex_unlock(&cache_mu);
    if (evicted) release(evicted);
}

/* Read the model's file out of its large object and decode it. */
static struct cached *load(struct http_req *r, const char *id, int *ret)
{
    const char *p[2] = {id, r->auth.team_id};
    PGresult *res = pool_exec(&r->db,
        "SELECT artifact_lo FROM trials WHERE id = $1 AND team_id = $2 AND state = 'succeeded'"
        " AND artifact_lo IS NOT NULL", 2, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        *ret = http_problem_db(r, res);
        PQclear(res);
        return NULL;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        *ret = http_problem(r, 404, "not-found", "Not found", NULL, "no model at %s", r->path);
        return NULL;
    }
    Oid lo = (Oid)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);

    PGconn *db = r->db.pg;
    char err[512];
    char *data = NULL;
    size_t len = 0, cap = 0;
    PQclear(PQexec(db, "BEGIN READ ONLY"));
    struct blob_reader *b = blob_reader_open(db, lo, 0, err, sizeof err);
    ssize_t n = b ? 0 : -1;
    if (b) {
        for (;;) {
            const void *chunk;
            ssize_t got = blob_reader_read(b, &chunk);
            if (got <= 0) {
                n = got;
                break;
            }
            if (len + (size_t)got > MAX_MODEL_BYTES) {
                n = -2;
                break;
            }
            if (len + (size_t)got > cap) {
                cap = (len + (size_t)got) * 2;
                char *grown = realloc(data, cap);
                if (grown == NULL) {
                    n = -3;
                    break;
                }
                data = grown;
            }
            memcpy(data + len, chunk, (size_t)got);
            len += (size_t)got;
        }
        blob_reader_close(b);
    }
    PQclear(PQexec(db, "COMMIT"));
    if (b == NULL || n < 0) {
        free(data);
        *ret = n == -3 ? http_problem(r, 500, "internal", "Internal error", NULL, "out of memory")
                       : http_problem_db_unavailable(r, "reading the model");
        return NULL;
    }
    struct cached *c = calloc(1, sizeof *c);
    if (c == NULL) {
        free(data);
        *ret = http_problem(r, 500, "internal", "Internal error", NULL, "out of memory");
        return NULL;
    }
    snprintf(c->id, sizeof c->id, "%s", id);
    c->refs = 1;
    int rc = modelfile_decode(data, len, &c->m, err, sizeof err);
    free(data);
    if (rc != 0) {
        free(c);
        log_msg(LOG_ERROR, "model %s: %s", id, err);
        *ret = http_problem(r, 500, "internal", "Internal error", NULL,
                            "the stored model could not be read (request id %s)", r->request_id);
        return NULL;
    }
    insert(c);
    return c;
}

/* JSON rows → CSV text with the model's columns as the header. */
static char *json_rows_to_csv(const struct schema *s, const cJSON *rows, size_t *len, char *err,
                              size_t errlen)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (f == NULL) return NULL;
    for (size_t c = 0; c < s->n_cols; c++) {
        if (c) fputc(',', f);
        fputc('"', f);
        for (const char *p = s->cols[c].name; *p; p++) {
            if (*p == '"') fputc('"', f);
            fputc(*p, f);
        }
        fputc('"', f);
    }
    fputc('\n', f);
    int i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        if (!cJSON_IsObject(row)) {
            snprintf(err, errlen, "rows[%d] must be an object of column: value", i);
            fclose(f);
            free(buf);
            return NULL;
        }
        for (size_t c = 0; c < s->n_cols; c++) {
            if (c) fputc(',', f);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, s->cols[c].name);
            if (v == NULL || cJSON_IsNull(v)) continue; /* missing */
            if (cJSON_IsNumber(v)) {
                fprintf(f, "%.17g", v->valuedouble);
            } else if (cJSON_IsBool(v)) {
                fputs(cJSON_IsTrue(v) ? "true" : "false", f);
            } else if (cJSON_IsString(v)) {
                fputc('"', f);
                for (const char *p = v->valuestring; *p; p++) {
                    if (*p == '"') fputc('"', f);
                    fputc(*p, f);
                }
                fputc('"', f);
            } else {
                snprintf(err, errlen, "rows[%d].%s must be a number, string, boolean or null", i,
                         s->cols[c].name);
                fclose(f);
                free(buf);
                return NULL;
            }
        }
        fputc('\n', f);
        i++;
    }
    fclose(f);
    if (i == 0) {
        snprintf(err, errlen, "rows must hold at least one row");
        free(buf);
        return NULL;
    }
    return buf;
}

static int answer(struct http_req *r, const struct modelfile *m, const double *out, size_t n_rows)
{
    int K = m->task.kind == PD_TASK_CLASSIFICATION ? m->task.n_classes : 1;
    const char *accept = http_header(r, "Accept");
    if (accept && strstr(accept, "text/csv")) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        fputs("prediction", f);
        for (int k = 0; K > 1 && k < K; k++) fprintf(f, ",\"proba_%s\"", m->schema.classes[k]);
        fputc('\n', f);
        for (size_t i = 0; i < n_rows; i++) {
            const double *p = out + i * (size_t)K;
            if (m->task.kind == PD_TASK_CLASSIFICATION) {
                int best = 0;
                for (int k = 1; k < K; k++) if (p[k] > p[best]) best = k;
                fprintf(f, "\"%s\"", m->schema.classes[best]);
                for (int k = 0; k < K; k++) fprintf(f, ",%.17g", p[k]);
            } else {
                fprintf(f, "%.17g", p[0]);
            }
            fputc('\n', f);
        }
        fclose(f);
        return http_respond_bytes(r, 200, "text/csv", buf, len, NULL);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *preds = cJSON_AddArrayToObject(o, "predictions");
    cJSON *probs = K > 1 ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; i < n_rows; i++) {
        const double *p = out + i * (size_t)K;
        if (m->task.kind == PD_TASK_CLASSIFICATION) {
            int best = 0;
            for (int k = 1; k < K; k++) if (p[k] > p[best]) best = k;
            cJSON_AddItemToArray(preds, cJSON_CreateString(m->schema.classes[best]));
            cJSON *row = cJSON_CreateArray();
            for (int k = 0; k < K; k++) cJSON_AddItemToArray(row, cJSON_CreateNumber(p[k]));
            cJSON_AddItemToArray(probs, row);
        } else {
            cJSON_AddItemToArray(preds, cJSON_CreateNumber(p[0]));
        }
    }
    if (probs) {
        cJSON *classes = cJSON_AddArrayToObject(o, "classes");
        for (int k = 0; k < K; k++) cJSON_AddItemToArray(classes, cJSON_CreateString(m->schema.classes[k]));
        cJSON_AddItemToObject(o, "probabilities", probs);
    }
    return http_respond_json(r, 200, o);
}

/* ---- image models ------------------------------------------------------- */

static int is_image_type(const char *ct)
{
    static const char *const types[] = {"image/png", "image/jpeg", "application/zip",
                                        "application/x-tar", "application/gzip",
                                        "application/x-gzip", NULL};
    for (int i = 0; ct && types[i]; i++) {
        size_t n = strlen(types[i]);
        if (strncasecmp(ct, types[i], n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
            return 1;
    }
    return 0;
}

#define IMAGE_TYPES "image/png, image/jpeg, application/zip, application/x-tar or application/gzip"

struct img_answer {
    const struct modelfile *m;
    int csv;
    cJSON *preds;            /* JSON */
    FILE *f;                 /* CSV */
};

static int on_image(void *ctx, const struct imagedata_pred *p)
{
    struct img_answer *a = ctx;
    const struct schema *s = &a->m->schema;
    if (a->csv) {
        fputc('"', a->f);
        for (const char *q = p->name; *q; q++) {
            if (*q == '"') fputc('"', a->f);
            fputc(*q, a->f);
        }
        fputc('"', a->f);
        if (p->error) {
            for (int k = 0; k <= s->n_classes; k++) fputc(',', a->f);
            fputs(",\"", a->f);
            for (const char *q = p->error; *q; q++) {
                if (*q == '"') fputc('"', a->f);
                fputc(*q, a->f);
            }
            fputs("\"\n", a->f);
        } else {
            fprintf(a->f, ",\"%s\"", s->classes[p->cls]);
            for (int k = 0; k < s->n_classes; k++) fprintf(a->f, ",%.17g", p->proba[k]);
            fputs(",\n", a->f);
        }
        return ferror(a->f) ? -1 : 0;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return -1;
    cJSON_AddItemToArray(a->preds, o);
    cJSON_AddStringToObject(o, "name", p->name);
    if (p->error) {
        cJSON_AddStringToObject(o, "error", p->error);
        return 0;
    }
    cJSON_AddStringToObject(o, "class", s->classes[p->cls]);
    cJSON *pr = cJSON_AddObjectToObject(o, "probabilities");
    for (int k = 0; pr && k < s->n_classes; k++) cJSON_AddNumberToObject(pr, s->classes[k], p->proba[k]);
    cJSON_AddBoolToObject(o, "resized", p->resized != 0);
    return pr ? 0 : -1;
}

static int predict_images(struct http_req *r, const char *id, const struct modelfile *m)
{
    struct imagedata_predict_opts po;
    memset(&po, 0, sizeof po);
    po.limits.max_entries = PREDICT_MAX_ENTRIES;
    po.limits.max_entry_bytes = PREDICT_MAX_ENTRY_BYTES;
    po.limits.max_total_bytes = PREDICT_MAX_TOTAL_BYTES;
    po.image.max_pixels = PREDICT_MAX_PIXELS;
    po.image.max_decoder_bytes = PREDICT_MAX_DECODER_BYTES;
    po.max_images = PREDICT_MAX_IMAGES;
    po.threads = 1;
    const char *accept = http_header(r, "Accept");
    struct img_answer a = {m, accept && strstr(accept, "text/csv") != NULL, NULL, NULL};
    char *buf = NULL;
    size_t len = 0;
    cJSON *o = NULL;
    if (a.csv) {
        if ((a.f = open_memstream(&buf, &len)) == NULL)
            return http_problem(r, 500, "internal", "Internal error", NULL, "out of memory");
        fputs("name,prediction", a.f);
        for (int k = 0; k < m->schema.n_classes; k++) {
            fputs(",\"proba_", a.f);
            for (const char *q = m->schema.classes[k]; *q; q++) {
                if (*q == '"') fputc('"', a.f);
                fputc(*q, a.f);
            }
            fputc('"', a.f);
        }
        fputs(",error\n", a.f);
    } else {
        o = cJSON_CreateObject();
        cJSON *cl = o ? cJSON_AddArrayToObject(o, "classes") : NULL;
        for (int k = 0; cl && k < m->schema.n_classes; k++)
            cJSON_AddItemToArray(cl, cJSON_CreateString(m->schema.classes[k]));
        a.preds = o ? cJSON_AddArrayToObject(o, "predictions") : NULL;
        if (a.preds == NULL) {
            cJSON_Delete(o);
            return http_problem(r, 500, "internal", "Internal error", NULL, "out of memory");
        }
    }
    char err[1024];
    int rc = imagedata_predict_buffer(m, r->body, r->body_len, "image", &po, on_image, &a, err,
                                      sizeof err);
    if (a.f) fclose(a.f);
    if (rc != 0) {
        free(buf);
        cJSON_Delete(o);
        switch (rc) {
        case IMAGEDATA_EIMAGE:
            return http_problem(r, 422, "invalid-image", "Unprocessable content", NULL, "%s", err);
        case IMAGEDATA_EARCHIVE:
            return http_problem(r, 422, "invalid-archive", "Unprocessable content", NULL,
                                "%s (the model takes one PNG or JPEG image, or a zip, tar or tar.gz "
                                "archive of them)", err);
        case IMAGEDATA_ELIMIT:
            return http_problem(r, 422, "too-many-images", "Unprocessable content", NULL, "%s", err);
        default:
            log_msg(LOG_ERROR, "predict %s: %s", id, err);
            return http_problem(r, 500, "internal", "Internal error", NULL,
                                "prediction failed (request id %s)", r->request_id);
        }
    }
    if (a.csv) return http_respond_bytes(r, 200, "text/csv", buf, len, NULL);
    return http_respond_json(r, 200, o);
}

int models_predict(struct http_req *r)
{
    const char *id = http_param(r, "model_id");
    if (!http_is_uuid(id))
        return http_problem(r, 404, "not-found", "Not found", NULL, "no model at %s", r->path);
    const char *ct = http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    int is_csv = ct && (strncasecmp(ct, "text/csv", 8) == 0);
    int is_json = ct && (strncasecmp(ct, "application/json", 16) == 0);
    int is_image = is_image_type(ct);
    if (!is_csv && !is_json && !is_image)
        return http_problem(r, 415, "unsupported-media-type", "Unsupported media type", NULL,
                            "send rows as text/csv or as application/json {\"rows\": [...]}, or "
                            "for an image model images as " IMAGE_TYPES);
    if (r->body_len == 0)
        return http_problem(r, 400, "empty-body", "Empty body", NULL,
                            is_image ? "send the images to predict" : "send the rows to predict");
    if (http_db(r) == NULL) return http_problem_db_unavailable(r, "model");

    int ret;
    struct cached *c = lookup(id);
    if (c == NULL && (c = load(r, id, &ret)) == NULL) return ret;
    const struct modelfile *m = &c->m;
    if (imagedata_is_image_model(m) != is_image) {
        ret = is_image
            ? http_problem(r, 415, "unsupported-media-type", "Unsupported media type", NULL,
                           "the model was trained on a table: send rows as text/csv or as "
                           "application/json {\"rows\": [...]}, not images")
            : http_problem(r, 415, "unsupported-media-type", "Unsupported media type", NULL,
                           "the model was trained on images (%ux%u, %d channel%s): send one image "
                           "or an archive of them as " IMAGE_TYPES,
                           m->schema.image_width, m->schema.image_height, m->schema.image_channels,
                           m->schema.image_channels == 1 ? "" : "s");
        release(c);
        return ret;
    }
    if (is_image) {
        ret = predict_images(r, id, m);
        release(c);
        return ret;
    }

    char err[512];
    char *csv = NULL;
    size_t csv_len = 0;
    if (is_json) {
        cJSON *in = http_json_body(r, 0, &ret);
        if (in == NULL) {
            release(c);
            return ret;
        }
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(in, "rows");
        if (!cJSON_IsArray(rows)) {
            cJSON_Delete(in);
            release(c);
            return http_problem(r, 422, "validation", "Invalid request", "rows",
                                "rows: must be an array of objects");
        }
        csv = json_rows_to_csv(&m->schema, rows, &csv_len, err, sizeof err);
        cJSON_Delete(in);
        if (csv == NULL) {
            release(c);
            return http_problem(r, 422, "validation", "Invalid request", "rows", "%s", err);
        }
    }
    struct csv_table t;
    struct csv_error ce;
    memset(&ce, 0, sizeof ce);
    struct csv_opts co = {.header = CSV_HEADER_YES};
    int rc = is_json ? csv_table_load_buffer(csv, csv_len, &co, &t, &ce)
                     : csv_table_load_buffer(r->body, r->body_len, &co, &t, &ce);
    free(csv);
    if (rc != 0) {
        release(c);
        return http_problem_at(r, 422, "invalid-csv", "Unprocessable content", ce.line, ce.column,
                               "%s", ce.message);
    }
    struct schema_frame f;
    if (schema_frame_build(&m->schema, &t, &f, err, sizeof err) < 0) {
        csv_table_free(&t);
        release(c);
        return http_problem(r, 422, "invalid-rows", "Unprocessable content", NULL, "%s", err);
    }
    int K = m->task.kind == PD_TASK_CLASSIFICATION ? m->task.n_classes : 1;
    double *out = malloc((t.n_rows * (size_t)K + 1) * sizeof *out);
    if (out == NULL || modelfile_predict(m, &f, 1, out, err, sizeof err) != 0) {
        log_msg(LOG_ERROR, "predict %s: %s", id, out ? err : "out of memory");
        ret = http_problem(r, 500, "internal", "Internal error", NULL,
                           "prediction failed (request id %s)", r->request_id);
    } else {
        ret = answer(r, m, out, t.n_rows);
    }
    free(out);
    schema_frame_free(&f);
    csv_table_free(&t);
    release(c);
    return ret;
}

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
#include "trainers/modelfile.h"

#define PREDICT_CACHE 8
#define MAX_MODEL_BYTES ((size_t)1 << 30)

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

int models_predict(struct http_req *r)
{
    const char *id = http_param(r, "model_id");
    if (!http_is_uuid(id))
        return http_problem(r, 404, "not-found", "Not found", NULL, "no model at %s", r->path);
    const char *ct = http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    int is_csv = ct && (strncasecmp(ct, "text/csv", 8) == 0);
    int is_json = ct && (strncasecmp(ct, "application/json", 16) == 0);
    if (!is_csv && !is_json)
        return http_problem(r, 415, "unsupported-media-type", "Unsupported media type", NULL,
                            "send rows as text/csv or as application/json {\"rows\": [...]}");
    if (r->body_len == 0)
        return http_problem(r, 400, "empty-body", "Empty body", NULL, "send the rows to predict");
    if (http_db(r) == NULL) return http_problem_db_unavailable(r, "model");

    int ret;
    struct cached *c = lookup(id);
    if (c == NULL && (c = load(r, id, &ret)) == NULL) return ret;
    const struct modelfile *m = &c->m;

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

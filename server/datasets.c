/*
 * datasets.c - see datasets.h. Everything is scoped by the caller's team;
 * another team's data set is a 404.
 */
#include "server/datasets.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/csv.h"
#include "lib/db.h"
#include "lib/gunzip.h"
#include "lib/log.h"
#include "lib/pgjson.h"
#include "lib/blob.h"
#include "server/pool.h"
#include "server/resource.h"
#include "server/samples.h"

/* The columns of a data set as the API shows it; `profile` is added only
 * where the whole data set is asked for. */
#define DATASET_COLUMNS                                                        \
    "d.id, d.name, d.kind, d.format, d.content_type, b.size,"                  \
    " encode(b.sha256, 'hex') AS sha256, " PGJSON_TS("d.created_at") " AS created_at"
#define DATASET_SUMMARY                                                        \
    " json_build_object('rows', d.profile->'n_rows', 'columns', d.profile->'n_columns',"  \
    " 'images', d.profile->'images', 'classes', jsonb_array_length("           \
    "   CASE WHEN jsonb_typeof(d.profile->'classes') = 'array' THEN d.profile->'classes'" \
    "   ELSE '[]'::jsonb END), 'target', d.profile->'target', 'task', d.profile->'task') AS summary"

static int not_found(struct http_req *r)
{
    return http_problem(r, 404, "not-found", "Not found", NULL, "no data set at %s", r->path);
}

cJSON *datasets_insert(PGconn *db, const struct dataset_new *d, PGresult **res_out)
{
    char sha_hex[2 * CRYPTO_SHA256_LEN + 3] = "\\x";
    crypto_hex(d->sha256, CRYPTO_SHA256_LEN, sha_hex + 2);
    char lo[16], size[24];
    snprintf(lo, sizeof lo, "%u", d->lo);
    snprintf(size, sizeof size, "%" PRIu64, d->size);
    char *profile = cJSON_PrintUnformatted(d->profile);
    if (profile == NULL) return NULL;
    *res_out = NULL;

    /* Find the team's blob with these bytes (locked against a concurrent
     * delete), else record ours; if another upload recorded the same bytes
     * meanwhile, the insert yields nothing and we look again. */
    char blob_id[24] = "";
    int reused = 0;
    for (int attempt = 0; attempt < 3 && blob_id[0] == '\0'; attempt++) {
        const char *find[2] = {d->team_id, sha_hex};
        PGresult *res = PQexecParams(db,
            "SELECT id, lo FROM blobs WHERE team_id = $1 AND sha256 = $2::bytea FOR SHARE",
            2, NULL, find, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) goto fail_res;
        if (PQntuples(res) == 1) {
            snprintf(blob_id, sizeof blob_id, "%s", PQgetvalue(res, 0, 0));
            PQclear(res);
            const char *unlink_p[1] = {lo};
            res = PQexecParams(db, "SELECT lo_unlink($1::oid)", 1, NULL, unlink_p, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_TUPLES_OK) goto fail_res;
            PQclear(res);
            reused = 1;
            break;
        }
        PQclear(res);
        const char *ins[5] = {d->team_id, sha_hex, lo, size, d->zstd ? "zstd" : "identity"};
        res = PQexecParams(db,
            "INSERT INTO blobs (team_id, sha256, lo, size, encoding)"
            " VALUES ($1, $2::bytea, $3::oid, $4, $5)"
            " ON CONFLICT (team_id, sha256) DO NOTHING RETURNING id",
            5, NULL, ins, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) goto fail_res;
        if (PQntuples(res) == 1) snprintf(blob_id, sizeof blob_id, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        continue;
    fail_res:
        *res_out = res;
        free(profile);
        return NULL;
    }
    if (blob_id[0] == '\0') {
        free(profile);
        return NULL;
    }

    const char *p[7] = {d->team_id, blob_id, d->name, d->kind, d->format, d->content_type, profile};
    PGresult *res = PQexecParams(db,
        "WITH d AS (INSERT INTO datasets (team_id, blob_id, name, kind, format, content_type, profile)"
        "           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING *)"
        " SELECT " DATASET_COLUMNS ", d.profile FROM d JOIN blobs b ON b.id = d.blob_id",
        7, NULL, p, NULL, NULL, 0);
    free(profile);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        *res_out = res;
        return NULL;
    }
    cJSON *out = pgjson_row(res, 0);
    PQclear(res);
    if (out) cJSON_AddBoolToObject(out, "content_reused", reused);
    return out;
}

/* --- listing ----------------------------------------------------------------- */

/* Cursors are "<created_at microseconds>_<id>": opaque to clients, stable
 * under inserts, and served by the (team_id, created_at, id) index. */
int datasets_list(struct http_req *r)
{
    int ret;
    long limit;
    if (resource_query_int(r, "limit", 1, 500, 50, &limit, &ret) < 0) return ret;
    const char *cursor = http_query(r, "cursor");
    char ts[24] = "", id[40] = "";
    if (cursor) {
        const char *us = strchr(cursor, '_');
        if (us == NULL || us - cursor > 20 || us == cursor || !http_is_uuid(us + 1) ||
            strspn(cursor, "0123456789") != (size_t)(us - cursor))
            return http_problem(r, 400, "invalid-parameter", "Invalid parameter", "cursor",
                                "cursor is not one this server gave out");
        memcpy(ts, cursor, (size_t)(us - cursor));
        snprintf(id, sizeof id, "%s", us + 1);
    }
    if (http_db(r) == NULL) return http_problem_db_unavailable(r, "datasets");
    char lim_s[24];
    snprintf(lim_s, sizeof lim_s, "%ld", limit + 1);
    const char *p[4] = {r->auth.team_id, lim_s, cursor ? ts : NULL, cursor ? id : NULL};
    PGresult *res = pool_exec(&r->db,
        "SELECT " DATASET_COLUMNS "," DATASET_SUMMARY ","
        "       (extract(epoch FROM d.created_at) * 1000000)::bigint::text || '_' || d.id AS cursor"
        "  FROM datasets d JOIN blobs b ON b.id = d.blob_id"
        " WHERE d.team_id = $1 AND ($3::bigint IS NULL OR (d.created_at, d.id) <"
        "       (to_timestamp($3::bigint / 1000000.0), $4::uuid))"
        " ORDER BY d.created_at DESC, d.id DESC LIMIT $2",
        4, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    int n = PQntuples(res);
    int more = n > limit;
    if (more) n = (int)limit;
    cJSON *items = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *row = pgjson_row(res, i);
        cJSON_DeleteItemFromObject(row, "cursor");
        cJSON_AddItemToArray(items, row);
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "items", items);
    if (more)
        cJSON_AddStringToObject(out, "next_cursor", PQgetvalue(res, n - 1, PQfnumber(res, "cursor")));
    else
        cJSON_AddNullToObject(out, "next_cursor");
    PQclear(res);
    return http_respond_json(r, 200, out);
}

/* The caller's data set {dataset_id} with extra columns; NULL result means
 * a response was queued (404 or error) into *ret. */
static PGresult *fetch(struct http_req *r, const char *extra, int *ret)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT " DATASET_COLUMNS "%s FROM datasets d JOIN blobs b ON b.id = d.blob_id"
             " WHERE d.id = $1 AND d.team_id = $2",
             extra);
    return resource_fetch(r, "dataset_id", "data set", sql, ret);
}

int datasets_get(struct http_req *r)
{
    int ret;
    PGresult *res = fetch(r, ", d.profile", &ret);
    if (res == NULL) return ret;
    cJSON *o = pgjson_row(res, 0);
    PQclear(res);
    return http_respond_json(r, 200, o);
}

/* --- content ---------------------------------------------------------------------- */

struct content_stream {
    struct pool_conn db;
    struct blob_reader *blob;
    uint64_t left;
    const char *pending;   /* read from the blob, not yet handed out */
    size_t pending_len;
};

/* libmicrohttpd asks for at most `max` bytes at a time, which may be less
 * than a block of the blob (and a compressed blob cannot seek back), so
 * what does not fit waits in `pending` for the next call. */
static ssize_t content_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct content_stream *c = cls;
    if (c->left == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    if (c->pending_len == 0) {
        const void *data;
        ssize_t n = blob_reader_read(c->blob, &data);
        if (n <= 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        c->pending = data;
        c->pending_len = (size_t)n;
    }
    size_t take = c->pending_len < max ? c->pending_len : max;
    memcpy(buf, c->pending, take);
    c->pending += take;
    c->pending_len -= take;
    c->left -= take;
    return (ssize_t)take;
}

static void content_done(void *cls)
{
    struct content_stream *c = cls;
    blob_reader_close(c->blob);
    if (c->db.pg) {
        PQclear(PQexec(c->db.pg, "COMMIT"));
        pool_release(&c->db);
    }
    free(c);
}

int datasets_content(struct http_req *r)
{
    int ret;
    PGresult *res = fetch(r, ", b.lo, b.encoding = 'zstd' AS zstd", &ret);
    if (res == NULL) return ret;
    int zstd = PQgetvalue(res, 0, PQfnumber(res, "zstd"))[0] == 't';
    char etag[80], name[256], ctype[128], disposition[400];
    snprintf(etag, sizeof etag, "\"%s\"", PQgetvalue(res, 0, PQfnumber(res, "sha256")));
    snprintf(name, sizeof name, "%s", PQgetvalue(res, 0, PQfnumber(res, "name")));
    snprintf(ctype, sizeof ctype, "%s", PQgetvalue(res, 0, PQfnumber(res, "content_type")));
    uint64_t size = strtoull(PQgetvalue(res, 0, PQfnumber(res, "size")), NULL, 10);
    Oid lo = (Oid)strtoul(PQgetvalue(res, 0, PQfnumber(res, "lo")), NULL, 10);
    PQclear(res);

    const char *inm = http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && (strstr(inm, etag) || strcmp(inm, "*") == 0)) return http_respond_not_modified(r, etag);

    /* The response outlives this handler: the stream takes the request's
     * connection and gives it back when the last byte has gone out. */
    struct content_stream *c = calloc(1, sizeof *c);
    if (c == NULL) return MHD_NO;
    c->db = r->db;
    r->has_db = 0;
    memset(&r->db, 0, sizeof r->db);
    c->left = size;
    char err[256];
    if (db_command(c->db.pg, "BEGIN READ ONLY") < 0 ||
        (c->blob = blob_reader_open(c->db.pg, lo, zstd, err, sizeof err)) == NULL) {
        ret = http_problem_db_unavailable(r, "opening the content");
        content_done(c);
        return ret;
    }
    /* Names are UTF-8 text from the uploader: keep the header ASCII-safe. */
    char safe[256];
    size_t j = 0;
    for (size_t i = 0; name[i] && j < sizeof safe - 1; i++) {
        unsigned char ch = (unsigned char)name[i];
        safe[j++] = (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') ? '_' : (char)ch;
    }
    safe[j] = '\0';
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"", safe);
    const char *headers[] = {MHD_HTTP_HEADER_ETAG, etag,
                             MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition,
                             MHD_HTTP_HEADER_CACHE_CONTROL, "private, no-cache", NULL};
    return http_respond_callback(r, 200, size, ctype, headers, content_read, c, content_done);
}

/* --- preview ------------------------------------------------------------------- */

struct preview {
    long want;                  /* data rows wanted */
    int header;                 /* 1: the first record is the header */
    cJSON *columns, *rows;
    struct csv_parser *csv;
};

static int preview_record(void *ctx, const struct csv_record *rec)
{
    struct preview *pv = ctx;
    if (rec->index == 0 && pv->header) {
        for (size_t i = 0; i < rec->n_fields; i++)
            cJSON_AddItemToArray(pv->columns, cJSON_CreateString(rec->fields[i].ptr));
        return 0;
    }
    if (rec->index == 0) {
        for (size_t i = 0; i < rec->n_fields; i++) {
            char name[32];
            snprintf(name, sizeof name, "col_%zu", i + 1);
            cJSON_AddItemToArray(pv->columns, cJSON_CreateString(name));
        }
    }
    cJSON *row = cJSON_CreateArray();
    for (size_t i = 0; i < rec->n_fields; i++)
        cJSON_AddItemToArray(row, cJSON_CreateString(rec->fields[i].ptr));
    cJSON_AddItemToArray(pv->rows, row);
    return cJSON_GetArraySize(pv->rows) >= pv->want ? 1 : 0;
}

static int preview_inflated(void *ctx, const char *data, size_t len)
{
    struct preview *pv = ctx;
    return csv_parser_feed(pv->csv, data, len) < 0 ? 1 : 0;
}

/* Read the first rows of a stored CSV (plain or gzip'd). */
static int preview_tabular(struct http_req *r, Oid lo, int zstd, int gz, const cJSON *profile,
                           long want)
{
    struct preview pv = {want, 1, cJSON_CreateArray(), cJSON_CreateArray(), NULL};
    const char *hdr = cJSON_GetStringValue(cJSON_GetObjectItem(profile, "header"));
    pv.header = !(hdr && strcmp(hdr, "generated") == 0);
    struct csv_opts copts = {0};
    const char *delim = cJSON_GetStringValue(cJSON_GetObjectItem(profile, "delimiter"));
    if (delim && delim[0]) copts.delimiter = strcmp(delim, "\\t") == 0 ? '\t' : delim[0];
    pv.csv = csv_parser_new(&copts, preview_record, &pv);
    struct gunzip *g = gz ? gunzip_new(0, 0, preview_inflated, &pv) : NULL;
    char err[256];
    int ret;
    struct blob_reader *b = NULL;
    if (pv.csv == NULL || (gz && g == NULL)) {
        ret = http_problem(r, 500, "internal", "Internal error", NULL, "out of memory");
        goto out;
    }
    if (db_command(r->db.pg, "BEGIN READ ONLY") < 0 ||
        (b = blob_reader_open(r->db.pg, lo, zstd, err, sizeof err)) == NULL) {
        ret = http_problem_db_unavailable(r, "reading a preview");
        goto out;
    }
    for (;;) {
        const void *data;
        ssize_t n = blob_reader_read(b, &data);
        if (n <= 0) break;
        int stop = gz ? gunzip_feed(g, data, (size_t)n) != 0
                      : csv_parser_feed(pv.csv, data, (size_t)n) != 0;
        if (stop) break;
    }
    if (cJSON_GetArraySize(pv.rows) < want && !csv_parser_error(pv.csv)->code)
        csv_parser_finish(pv.csv);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "kind", "tabular");
    cJSON_AddItemToObject(out, "columns", pv.columns);
    cJSON_AddItemToObject(out, "rows", pv.rows);
    pv.columns = pv.rows = NULL;
    ret = http_respond_json(r, 200, out);
out:
    blob_reader_close(b);
    db_command(r->db.pg, "COMMIT");
    gunzip_free(g);
    csv_parser_free(pv.csv);
    cJSON_Delete(pv.columns);
    cJSON_Delete(pv.rows);
    return ret;
}

int datasets_preview(struct http_req *r)
{
    int ret;
    long want;
    if (resource_query_int(r, "rows", 1, 1000, 20, &want, &ret) < 0) return ret;
    PGresult *res = fetch(r, ", b.lo, b.encoding = 'zstd' AS zstd, d.profile", &ret);
    if (res == NULL) return ret;
    int zstd = PQgetvalue(res, 0, PQfnumber(res, "zstd"))[0] == 't';
    cJSON *row = pgjson_row(res, 0);
    Oid lo = (Oid)strtoul(PQgetvalue(res, 0, PQfnumber(res, "lo")), NULL, 10);
    PQclear(res);
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(row, "kind"));
    const char *format = cJSON_GetStringValue(cJSON_GetObjectItem(row, "format"));
    cJSON *profile = cJSON_GetObjectItem(row, "profile");
    if (kind && strcmp(kind, "tabular") == 0) {
        ret = preview_tabular(r, lo, zstd, format && strcmp(format, "csv.gz") == 0, profile, want);
        cJSON_Delete(row);
        return ret;
    }
    /* Images: the classes with a few file names each, from the profile,
     * and the URLs of their sample images (numbered as samples.h says). */
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "kind", "images");
    cJSON *classes = cJSON_CreateArray();
    const char *layout = cJSON_GetStringValue(cJSON_GetObjectItem(profile, "layout"));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(row, "id"));
    int next = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(profile, "classes")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "name", cJSON_Duplicate(cJSON_GetObjectItem(c, "name"), 1));
        cJSON_AddItemToObject(o, "count", cJSON_Duplicate(cJSON_GetObjectItem(c, "count"), 1));
        cJSON *samples = cJSON_GetObjectItem(c, "samples");
        cJSON_AddItemToObject(o, "samples", samples ? cJSON_Duplicate(samples, 1) : cJSON_CreateArray());
        cJSON *urls = cJSON_AddArrayToObject(o, "sample_urls");
        for (int k = samples_of_class(layout, c); k > 0; k--) {
            char url[128];
            snprintf(url, sizeof url, "/v1/datasets/%s/samples/%d", id ? id : "", next++);
            cJSON_AddItemToArray(urls, cJSON_CreateString(url));
        }
        cJSON_AddItemToArray(classes, o);
    }
    cJSON_AddItemToObject(out, "classes", classes);
    cJSON_Delete(row);
    return http_respond_json(r, 200, out);
}

/* --- delete ------------------------------------------------------------------------- */

int datasets_delete(struct http_req *r)
{
    const char *id = http_param(r, "dataset_id");
    if (!http_is_uuid(id)) return not_found(r);
    PGconn *db = http_db(r);
    if (db == NULL) return http_problem_db_unavailable(r, "deleting a data set");
    const char *p[2] = {id, r->auth.team_id};
    PGresult *res = NULL;
    if (db_command(db, "BEGIN") < 0) goto db_error;
    /* Lock the blob first: a concurrent upload of the same bytes (which
     * takes it FOR SHARE) or a delete of another data set on it waits, so
     * the last user of a blob always sees itself as the last. */
    res = PQexecParams(db,
        "SELECT b.id, b.lo FROM datasets d JOIN blobs b ON b.id = d.blob_id"
        " WHERE d.id = $1 AND d.team_id = $2 FOR UPDATE OF d, b",
        2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) goto db_error;
    if (PQntuples(res) == 0) {
        PQclear(res);
        db_command(db, "ROLLBACK");
        return not_found(r);
    }
    /* With the data set's row locked, a job being created on it waits for
     * us (its foreign key check), and this statement sees every job that
     * committed before. */
    PGresult *busy = PQexecParams(db,
        "SELECT count(*) FROM jobs WHERE dataset_id = $1 AND state IN ('queued', 'running')",
        1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(busy) != PGRES_TUPLES_OK) {
        PQclear(res);
        res = busy;
        goto db_error;
    }
    long jobs = atol(PQgetvalue(busy, 0, 0));
    PQclear(busy);
    if (jobs > 0) {
        PQclear(res);
        db_command(db, "ROLLBACK");
        return http_problem(r, 409, "dataset-in-use", "Conflict", NULL,
                            "%ld job%s running on this data set; cancel %s or wait for %s to finish",
                            jobs, jobs == 1 ? " is" : "s are", jobs == 1 ? "it" : "them",
                            jobs == 1 ? "it" : "them");
    }
    char blob[24], lo[16];
    snprintf(blob, sizeof blob, "%s", PQgetvalue(res, 0, 0));
    snprintf(lo, sizeof lo, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    res = PQexecParams(db, "DELETE FROM datasets WHERE id = $1 AND team_id = $2", 2, NULL, p,
                       NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) goto db_error;
    PQclear(res);
    const char *bp[2] = {blob, lo};
    res = PQexecParams(db,
        "WITH gone AS (DELETE FROM blobs WHERE id = $1 AND NOT EXISTS"
        "   (SELECT 1 FROM datasets WHERE blob_id = $1) RETURNING lo)"
        " SELECT lo_unlink(lo) FROM gone",
        1, NULL, bp, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) goto db_error;
    PQclear(res);
    res = NULL;
    if (db_command(db, "COMMIT") < 0) goto db_error;
    return http_respond_empty(r, 204);
db_error:;
    int ret = http_problem_db(r, res);
    PQclear(res);
    db_command(db, "ROLLBACK");
    return ret;
}

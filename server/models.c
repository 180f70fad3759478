/*
 * models.c - see models.h. Everything is scoped by the caller's team.
 *
 * The artifact is streamed from its large object on the request's own
 * connection, in a READ ONLY transaction that the response takes over:
 * artifact_done, when libmicrohttpd is through with it, ends the
 * transaction and releases the connection.
 */
#include "server/models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/blob.h"
#include "lib/db.h"
#include "lib/pgjson.h"
#include "server/resource.h"

int models_get(struct http_req *r)
{
    return resource_get(r, "model_id", "model",
        "SELECT t.id, t.job_id, j.dataset_id, j.target, j.task, t.family, t.params, j.metric,"
        " t.score, t.score_std, t.metrics, t.fit_seconds, t.predict_us_per_row, t.model_bytes,"
        " encode(t.artifact_sha256, 'hex') AS artifact_sha256, t.details,"
        " " PGJSON_TS("t.finished_at") " AS trained_at"
        " FROM trials t JOIN jobs j ON j.id = t.job_id"
        " WHERE t.id = $1 AND t.team_id = $2 AND t.state = 'succeeded'"
        " AND t.artifact_lo IS NOT NULL");
}

struct artifact_stream {
    struct pool_conn db;
    struct blob_reader *blob;
    const char *pending;   /* read, not yet handed out (see datasets.c, content_read) */
    size_t pending_len;
};

static ssize_t artifact_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct artifact_stream *a = cls;
    if (a->pending_len == 0) {
        const void *data;
        ssize_t n = blob_reader_read(a->blob, &data);
        if (n == 0) return MHD_CONTENT_READER_END_OF_STREAM;
        if (n < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        a->pending = data;
        a->pending_len = (size_t)n;
    }
    size_t take = a->pending_len < max ? a->pending_len : max;
    memcpy(buf, a->pending, take);
    a->pending += take;
    a->pending_len -= take;
    return (ssize_t)take;
}

static void artifact_done(void *cls)
{
    struct artifact_stream *a = cls;
    blob_reader_close(a->blob);
    if (a->db.pg) {
        PQclear(PQexec(a->db.pg, "COMMIT"));
        pool_release(&a->db);
    }
    free(a);
}

int models_artifact(struct http_req *r)
{
    int ret;
    PGresult *res = resource_fetch(r, "model_id", "model",
        "SELECT t.artifact_lo, encode(t.artifact_sha256, 'hex'), encode(t.artifact_sha256, 'base64'),"
        " t.id, t.family"
        " FROM trials t WHERE t.id = $1 AND t.team_id = $2 AND t.state = 'succeeded'"
        " AND t.artifact_lo IS NOT NULL", &ret);
    if (res == NULL) return ret;
    Oid lo = (Oid)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    char etag[80], digest[80], disposition[120];
    snprintf(etag, sizeof etag, "\"%s\"", PQgetvalue(res, 0, 1));
    snprintf(digest, sizeof digest, "sha-256=:%s:", PQgetvalue(res, 0, 2));
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s-%.8s.pdm\"",
             PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 3));
    PQclear(res);
    const char *inm = http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && strstr(inm, etag)) return http_respond_not_modified(r, etag);

    struct artifact_stream *a = calloc(1, sizeof *a);
    if (a == NULL) return MHD_NO;
    a->db = r->db;
    r->has_db = 0;
    memset(&r->db, 0, sizeof r->db);
    char err[256];
    if (db_command(a->db.pg, "BEGIN READ ONLY") < 0 ||
        (a->blob = blob_reader_open(a->db.pg, lo, 0, err, sizeof err)) == NULL) {
        ret = http_problem_db_unavailable(r, "opening the artifact");
        artifact_done(a);
        return ret;
    }
    /* The size from the object itself: pg_largeobject is not readable by
     * an ordinary database role. */
    int64_t end = blob_reader_seek(a->blob, 0, SEEK_END);
    if (end < 0 || blob_reader_seek(a->blob, 0, SEEK_SET) != 0) {
        ret = http_problem_db_unavailable(r, "sizing the artifact");
        artifact_done(a);
        return ret;
    }
    uint64_t size = (uint64_t)end;
    const char *headers[] = {MHD_HTTP_HEADER_ETAG, etag, "Repr-Digest", digest,
                             MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition, NULL};
    return http_respond_callback(r, 200, size, "application/octet-stream", headers, artifact_read,
                                 a, artifact_done);
}

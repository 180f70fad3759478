/*
 * upload.c - POST /v1/datasets: the body streams into a large object and
 * through ingest (format, CSV parse and profile) chunk by chunk; nothing
 * holds the whole file.
 *
 * Life of an upload, all in one transaction on the request's connection:
 *   begin   options from the query, BEGIN, a new large object;
 *           multipart/form-data gets libmicrohttpd's post processor, whose
 *           "file" part is the content and whose other fields are options
 *   chunk   SHA-256, size limit, large object, ingest
 *   end     ingest_finish; archives are profiled from the stored object
 *           (lib/imageset); blob deduplication and the datasets row; COMMIT
 *   cleanup ROLLBACK unless committed: a failed upload leaves no row and
 *           no large object behind
 * The first failure answers at once and the rest of the body is dropped
 * unread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/imageset.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/blob.h"
#include "server/datasets.h"
#include "server/ingest.h"
#include "server/server.h"

#define MAX_NA_TOKENS 64
#define MAX_FIELD 1024

struct upload {
    struct http_req *r;
    struct ingest_opts iopts;
    struct ingest *ingest;
    struct blob_writer *blob;
    struct MHD_PostProcessor *pp;
    int in_tx, committed;
    int failed;                 /* an answer has been given */
    uint64_t size;

    /* options, from the query or form fields */
    char name[MAX_FIELD];
    char filename[MAX_FIELD];
    char na_text[MAX_FIELD];
    const char *na[MAX_NA_TOKENS];
    char content_type[128];     /* what a download answers */
    int file_parts;
    int field_too_long;

    /* The refusal, kept to be given at the end of the body when
     * libmicrohttpd cannot take a response in the middle of one. */
    unsigned status;
    char slug[40], title[40], detail[512];
    uint64_t line, column, drained;
    int encoding_decided;
};

/* CSV text is stored zstd-compressed; everything else as it came. Decided
 * once the format is known (512 bytes in), before the first MiB is
 * handed to the writer. */
static void decide_encoding(struct upload *u)
{
    if (u->encoding_decided || ingest_format(u->ingest) == INGEST_UNKNOWN) return;
    u->encoding_decided = 1;
    if (ingest_format(u->ingest) == INGEST_CSV && blob_writer_compress(u->blob) < 0)
        log_msg(LOG_WARN, "upload %s: storing uncompressed", u->r->request_id);
}

/* Give the kept refusal (if libmicrohttpd would not take it earlier). */
static int answer_refusal(struct upload *u)
{
    if (u->r->responded) return MHD_YES;
    return http_problem_at(u->r, u->status, u->slug, u->title, u->line, u->column, "%s", u->detail);
}

/* Refuse the upload (once): the answer goes out now if libmicrohttpd
 * takes it, else when the body has ended; later chunks are dropped. */
static int refuse_at(struct upload *u, unsigned status, const char *slug, const char *title,
                     const char *field, uint64_t line, uint64_t column, const char *detail)
{
    if (u->failed) return -1;
    u->failed = 1;
    u->status = status;
    snprintf(u->slug, sizeof u->slug, "%s", slug);
    snprintf(u->title, sizeof u->title, "%s", title);
    snprintf(u->detail, sizeof u->detail, "%s", detail);
    u->line = line;
    u->column = column;
    answer_refusal(u);
    return -1;
}

static int refuse(struct upload *u, unsigned status, const char *slug, const char *title,
                  const char *field, const char *detail)
{
    return refuse_at(u, status, slug, title, field, 0, 0, detail);
}

static int refuse_ingest(struct upload *u)
{
    const struct ingest_error *e = ingest_error(u->ingest);
    const char *title = e->status == 415 ? "Unsupported media type"
                      : e->status == 413 ? "Request body too large"
                      : e->status >= 500 ? "Internal error" : "Unprocessable content";
    return refuse_at(u, e->status, e->slug, title, NULL, e->line, e->column, e->detail);
}

/* The missing-value tokens from na_text ("NA,?,null"); called once. */
static int parse_na(struct upload *u, char *err, size_t errlen)
{
    if (u->na_text[0]) {
        size_t n = 0;
        char *save = NULL;
        for (char *tok = strtok_r(u->na_text, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (n == MAX_NA_TOKENS) {
                snprintf(err, errlen, "na: at most %d tokens", MAX_NA_TOKENS);
                return -1;
            }
            if (strlen(tok) > 64) {
                snprintf(err, errlen, "na: tokens are at most 64 bytes");
                return -1;
            }
            u->na[n++] = tok;
        }
        /* "na=" alone means: only empty fields are missing. */
        static const char *const empty_only[] = {""};
        u->iopts.profile.missing = n ? u->na : empty_only;
        u->iopts.profile.n_missing = n ? n : 1;
    }
    return 0;
}

static int parse_header(struct upload *u, const char *header, char *err, size_t errlen)
{
    if (header) {
        if (strcmp(header, "auto") == 0) u->iopts.profile.header = CSV_HEADER_AUTO;
        else if (strcmp(header, "yes") == 0) u->iopts.profile.header = CSV_HEADER_YES;
        else if (strcmp(header, "no") == 0) u->iopts.profile.header = CSV_HEADER_NO;
        else {
            snprintf(err, errlen, "header: must be auto, yes or no");
            return -1;
        }
    }
    return 0;
}

/* Bytes of the file, from the raw body or the form's file part. */
static int sink(struct upload *u, const char *data, size_t len)
{
    if (u->failed) return -1;
    uint64_t limit = u->r->srv->cfg.max_upload_bytes;
    if (len > limit - u->size) {
        char d[128];
        snprintf(d, sizeof d, "the upload exceeds the limit of %llu bytes",
                 (unsigned long long)limit);
        return refuse(u, 413, "body-too-large", "Request body too large", NULL, d);
    }
    u->size += len;
    char err[512];
    if (blob_writer_write(u->blob, data, len, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, "upload %s: storing: %s", u->r->request_id, err);
        return refuse(u, 503, "database-unavailable", "Service unavailable", NULL,
                      "storing the upload failed; try again");
    }
    if (ingest_feed(u->ingest, data, len) < 0) return refuse_ingest(u);
    decide_encoding(u);
    return 0;
}

static void copy_field(struct upload *u, char *dst, const char *data, uint64_t off, size_t size)
{
    if (off + size >= MAX_FIELD) {
        u->field_too_long = 1;
        return;
    }
    memcpy(dst + off, data, size);
    dst[off + size] = '\0';
}

static enum MHD_Result on_form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *filename, const char *content_type,
                                     const char *transfer_encoding, const char *data,
                                     uint64_t off, size_t size)
{
    struct upload *u = cls;
    if (u->failed) return MHD_NO;
    if (strcmp(key, "file") == 0) {
        if (off == 0) {
            if (++u->file_parts > 1) {
                refuse(u, 422, "multiple-files", "Unprocessable content", "file",
                       "send one file per upload");
                return MHD_NO;
            }
            if (filename) snprintf(u->filename, sizeof u->filename, "%s", filename);
            /* The form's other fields (name, na) came before the file. */
            char err[256];
            if (parse_na(u, err, sizeof err) < 0) {
                refuse(u, 422, "invalid-field", "Unprocessable content", "na", err);
                return MHD_NO;
            }
            u->ingest = ingest_new(&u->iopts);
            if (u->ingest == NULL) {
                refuse(u, 500, "internal", "Internal error", NULL, "out of memory");
                return MHD_NO;
            }
        }
        return size == 0 || sink(u, data, size) == 0 ? MHD_YES : MHD_NO;
    }
    if (strcmp(key, "name") == 0) copy_field(u, u->name, data, off, size);
    else if (strcmp(key, "na") == 0) copy_field(u, u->na_text, data, off, size);
    /* Other fields are ignored, as browsers send what their form has. */
    return MHD_YES;
}

static int upload_begin(struct http_req *r)
{
    struct upload *u = calloc(1, sizeof *u);
    if (u == NULL) {
        http_problem(r, 500, "internal", "Internal error", NULL, "out of memory");
        return -1;
    }
    r->stream_ctx = u;
    u->r = r;

    const char *ct = http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    int multipart = ct && strncasecmp(ct, "multipart/form-data", 19) == 0;
    if (!multipart) {
        if (ingest_declared_from_type(ct, &u->iopts.declared) < 0)
            return refuse(u, 415, "unsupported-media-type", "Unsupported media type", NULL,
                          ct ? "send text/csv, application/gzip, application/zip, "
                               "application/x-tar or multipart/form-data with a 'file' part"
                             : "a Content-Type header is required");
        size_t n = strcspn(ct, ";");
        snprintf(u->content_type, sizeof u->content_type, "%.*s", (int)(n < 100 ? n : 100), ct);
    }

    const char *q;
    if ((q = http_query(r, "name"))) snprintf(u->name, sizeof u->name, "%s", q);
    if ((q = http_query(r, "na"))) snprintf(u->na_text, sizeof u->na_text, "%s", q);
    char err[256];
    if (parse_header(u, http_query(r, "header"), err, sizeof err) < 0)
        return refuse(u, 400, "invalid-parameter", "Invalid parameter", "header", err);
    if (!multipart && parse_na(u, err, sizeof err) < 0)
        return refuse(u, 400, "invalid-parameter", "Invalid parameter", "na", err);
    u->iopts.max_decompressed = (uint64_t)16 << 30;

    PGconn *db = r->db.pg;
    PGresult *res = PQexec(db, "BEGIN");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok || (u->blob = blob_writer_new(db, err, sizeof err)) == NULL)
        return refuse(u, 503, "database-unavailable", "Service unavailable", NULL,
                      "the database is not reachable; try again shortly");
    u->in_tx = 1;

    if (multipart) {
        /* The ingest starts with the file part, after the form's fields. */
        u->iopts.declared = INGEST_DECLARED_ANY;
        u->pp = MHD_create_post_processor(r->conn, 64 * 1024, on_form_field, u);
        if (u->pp == NULL)
            return refuse(u, 400, "invalid-multipart", "Bad request", NULL,
                          "the multipart/form-data body has no usable boundary");
        return 0;
    }
    u->ingest = ingest_new(&u->iopts);
    if (u->ingest == NULL) return refuse(u, 500, "internal", "Internal error", NULL, "out of memory");
    return 0;
}

static int upload_chunk(struct http_req *r, const char *data, size_t len)
{
    struct upload *u = r->stream_ctx;
    if (u == NULL) return -2;
    if (u->failed) {
        /* Dropping what a refused client still sends costs no more than
         * reading it; past the upload limit again, hang up instead. */
        u->drained += len;
        return u->drained > r->srv->cfg.max_upload_bytes ? -2 : -1;
    }
    if (u->pp) {
        if (MHD_post_process(u->pp, data, len) != MHD_YES && !u->failed)
            return refuse(u, 400, "invalid-multipart", "Bad request", NULL,
                          "the multipart/form-data body is malformed");
        return u->failed ? -1 : 0;
    }
    return sink(u, data, len);
}

/* Archives are read back from the stored object by libarchive. */
struct lo_source { struct blob_reader *b; };

static ssize_t lo_read_cb(void *ctx, const void **buf)
{
    return blob_reader_read(((struct lo_source *)ctx)->b, buf);
}

static int64_t lo_seek_cb(void *ctx, int64_t off, int whence)
{
    return blob_reader_seek(((struct lo_source *)ctx)->b, off, whence);
}

static cJSON *profile_archive(struct upload *u, Oid lo)
{
    char err[256];
    struct lo_source src = {blob_reader_open(u->r->db.pg, lo, 0, err, sizeof err)};
    if (src.b == NULL) {
        refuse(u, 503, "database-unavailable", "Service unavailable", NULL,
               "reading the stored upload failed; try again");
        return NULL;
    }
    struct imageset_source s = {&src, lo_read_cb, lo_seek_cb};
    struct imageset_limits lim = {.compressed_bytes = u->size};
    struct imageset_error e = {0};
    cJSON *profile = NULL;
    int rc = imageset_profile(&s, &lim, &profile, &e);
    blob_reader_close(src.b);
    if (rc == 0) return profile;
    static const char *const slugs[] = {"", "internal", "invalid-archive", "invalid-archive",
                                        "unsafe-path", "archive-too-large", "invalid-layout",
                                        "no-images", "invalid-idx", "internal"};
    int idx = -rc < 10 ? -rc : 1;
    unsigned status = (rc == IMAGESET_ENOMEM || rc == IMAGESET_EARG) ? 500
                    : rc == IMAGESET_ELIMIT ? 413 : 422;
    refuse(u, status, slugs[idx], status == 500 ? "Internal error" : "Unprocessable content",
           NULL, e.message[0] ? e.message : imageset_strerror(rc));
    return NULL;
}

/* A default name when neither ?name= nor a form field nor a file name
 * gives one. */
static void default_name(struct upload *u, enum ingest_format f)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(u->name, sizeof u->name, "upload-%04d%02d%02d-%02d%02d%02d.%s", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ingest_format_name(f));
}

static const char *type_of(enum ingest_format f)
{
    switch (f) {
    case INGEST_CSV: return "text/csv";
    case INGEST_CSV_GZ:
    case INGEST_TAR_GZ: return "application/gzip";
    case INGEST_ZIP: return "application/zip";
    case INGEST_TAR: return "application/x-tar";
    default: return "application/octet-stream";
    }
}

static int valid_name(const char *s)
{
    size_t n = utf8_length(s);
    if (n == 0 || n > 200) return 0; /* (size_t)-1, invalid UTF-8, is > 200 */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

static int upload_end(struct http_req *r)
{
    struct upload *u = r->stream_ctx;
    if (u == NULL) return MHD_YES; /* refused in begin */
    if (u->pp && !u->failed) {
        MHD_destroy_post_processor(u->pp); /* flushes the last part */
        u->pp = NULL;
        if (!u->failed && u->file_parts == 0)
            refuse(u, 422, "missing-file", "Unprocessable content", "file",
                   "the form has no 'file' part");
        if (!u->failed && u->field_too_long)
            refuse(u, 422, "invalid-field", "Unprocessable content", NULL,
                   "a form field is longer than 1023 bytes");
    }
    if (u->failed) return answer_refusal(u);
    if (u->ingest == NULL) { /* a form whose file part was empty */
        refuse(u, 422, "empty-body", "Unprocessable content", "file", "the upload is empty");
        return answer_refusal(u);
    }
    if (ingest_finish(u->ingest) < 0) {
        refuse_ingest(u);
        return answer_refusal(u);
    }
    decide_encoding(u);
    char err[512];
    if (blob_writer_close(u->blob, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, "upload %s: %s", r->request_id, err);
        refuse(u, 503, "database-unavailable", "Service unavailable", NULL,
               "storing the upload failed; try again");
        return answer_refusal(u);
    }
    enum ingest_format f = ingest_format(u->ingest);
    cJSON *profile = ingest_is_archive(f) ? profile_archive(u, blob_writer_oid(u->blob))
                                          : ingest_take_profile(u->ingest);
    if (profile == NULL) {
        if (!u->failed) refuse(u, 500, "internal", "Internal error", NULL, "profiling failed");
        return answer_refusal(u);
    }
    if (u->name[0] == '\0') {
        if (u->filename[0]) snprintf(u->name, sizeof u->name, "%s", u->filename);
        else default_name(u, f);
    }
    if (!valid_name(u->name)) {
        cJSON_Delete(profile);
        refuse(u, 422, "validation", "Unprocessable content", "name",
               "name: must be 1 to 200 characters of UTF-8 without control characters");
        return answer_refusal(u);
    }
    if (u->content_type[0] == '\0' || strcasecmp(u->content_type, "application/octet-stream") == 0)
        snprintf(u->content_type, sizeof u->content_type, "%s", type_of(f));

    struct dataset_new d = {
        .team_id = r->auth.team_id,
        .name = u->name,
        .kind = ingest_is_archive(f) ? "images" : "tabular",
        .format = ingest_format_name(f),
        .content_type = u->content_type,
        .lo = blob_writer_oid(u->blob),
        .zstd = blob_writer_compressed(u->blob),
        .size = u->size,
        .profile = profile,
    };
    blob_writer_sha256(u->blob, d.sha256);
    PGresult *res = NULL;
    cJSON *out = datasets_insert(r->db.pg, &d, &res);
    cJSON_Delete(profile);
    if (out == NULL) {
        u->failed = 1;
        int ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    res = PQexec(r->db.pg, "COMMIT");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        cJSON_Delete(out);
        u->failed = 1;
        return http_problem_db_unavailable(r, "committing an upload");
    }
    u->committed = 1;
    char location[96];
    snprintf(location, sizeof location, "/v1/datasets/%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(out, "id")));
    log_msg(LOG_INFO, "upload %s: data set %s, %s, %llu bytes", r->request_id,
            cJSON_GetStringValue(cJSON_GetObjectItem(out, "id")), ingest_format_name(f),
            (unsigned long long)u->size);
    return http_respond_created(r, out, location);
}

static void upload_cleanup(struct http_req *r)
{
    struct upload *u = r->stream_ctx;
    if (u == NULL) return;
    if (u->pp) MHD_destroy_post_processor(u->pp);
    /* The writer's thread may still be using the connection: stop it
     * before the connection rolls back. */
    blob_writer_free(u->blob);
    u->blob = NULL;
    if (u->in_tx && !u->committed && r->has_db) PQclear(PQexec(r->db.pg, "ROLLBACK"));
    ingest_free(u->ingest);
    free(u);
    r->stream_ctx = NULL;
}

const struct route_stream datasets_upload = {
    upload_begin, upload_chunk, upload_end, upload_cleanup,
};

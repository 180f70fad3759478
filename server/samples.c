/*
 * samples.c - see samples.h. The handler reads the data set's row (404
 * for another team's, or a table), finds the class and rank of sample n
 * from the profile, answers 304 when the client has it already, then
 * looks the thumbnail up in memory, and otherwise walks the stored archive
 * until the visitor hands that image over. Only the wanted image's pixels
 * are kept (scaled down in the callback); the walk stops there, so sample
 * 0 costs one image's decode and the last one at most the archive's whole
 * walk.
 *
 * Thumbnails in memory (rcache.h): keyed by the blob's SHA-256 and n, so
 * the same bytes are the same key whoever asks (the row read above has
 * already said whether the caller may see them); at most
 * SAMPLES_CACHE_BYTES. Requests for one thumbnail that is being made wait
 * for that walk (single flight) instead of walking too.
 *
 * Walks at once: at most SAMPLES_WALKS; behind them at most
 * SAMPLES_WALK_QUEUE requests wait, each at most SAMPLES_WALK_WAIT_MS, and
 * any other is answered 503 with Retry-After (gate.h). Why a short queue
 * and not a plain 503: the dashboard asks for a data set's whole grid of
 * samples at once (5 a class), and a brief wait serves that burst in turn
 * without errors; why not a long one: a waiting request holds one of the
 * server's few worker threads, which polls and health checks need too.
 */
#include "server/samples.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/blob.h"
#include "lib/image.h"
#include "lib/imageset.h"
#include "lib/log.h"
#include "server/etag.h"
#include "server/gate.h"
#include "server/rcache.h"
#include "server/resource.h"

/* Bump when the thumbnails change (size, filter, encoding), so that tags
 * an older server gave never match. */
#define SAMPLES_FORMAT "t1"

#define SAMPLES_CACHE_BYTES ((size_t)16 << 20)
#define SAMPLES_WALKS 2
#define SAMPLES_WALK_QUEUE 4
#define SAMPLES_WALK_WAIT_MS 3000
#define SAMPLES_FLIGHT_WAIT_MS 10000
#define SAMPLES_RETRY_AFTER "1"

static struct rcache *thumbs;
static struct gate walks;
static int walks_ok;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void samples_init(void)
{
    thumbs = rcache_new(SAMPLES_CACHE_BYTES);
    walks_ok = gate_init(&walks, SAMPLES_WALKS, SAMPLES_WALK_QUEUE) == 0;
}

/* A problem+json body handed out by a content reader (http_respond_callback
 * is the answer that takes extra headers: Retry-After). */
struct fixed_body { char *text; size_t len; };

static ssize_t fixed_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct fixed_body *b = cls;
    if (pos >= b->len) return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = b->len - (size_t)pos < max ? b->len - (size_t)pos : max;
    memcpy(buf, b->text + pos, n);
    return (ssize_t)n;
}

static void fixed_free(void *cls)
{
    struct fixed_body *b = cls;
    if (b) free(b->text);
    free(b);
}

/* 503: too many archive walks at once; try again in a second. */
static int too_busy(struct http_req *r)
{
    cJSON *p = cJSON_CreateObject();
    struct fixed_body *b = calloc(1, sizeof *b);
    if (p == NULL || b == NULL) {
        cJSON_Delete(p);
        free(b);
        return MHD_NO;
    }
    cJSON_AddStringToObject(p, "type", "/problems/busy");
    cJSON_AddStringToObject(p, "title", "Service unavailable");
    cJSON_AddNumberToObject(p, "status", 503);
    cJSON_AddStringToObject(p, "detail", "too many sample images are being read from their "
                                         "archives at once; try again in " SAMPLES_RETRY_AFTER
                                         " s (Retry-After)");
    cJSON_AddStringToObject(p, "instance", r->path ? r->path : "");
    cJSON_AddStringToObject(p, "request_id", r->request_id);
    b->text = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    if (b->text == NULL) {
        free(b);
        return MHD_NO;
    }
    b->len = strlen(b->text);
    const char *headers[] = {"Retry-After", SAMPLES_RETRY_AFTER, NULL};
    return http_respond_callback(r, 503, b->len, "application/problem+json", headers, fixed_read,
                                 b, fixed_free);
}

int samples_of_class(const char *layout, const cJSON *cls)
{
    if (layout && strcmp(layout, "idx") == 0) {
        double count = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cls, "count"));
        if (!(count > 0)) return 0;
        return count < SAMPLES_PER_CLASS ? (int)count : SAMPLES_PER_CLASS;
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cls, "samples");
    return cJSON_IsArray(s) ? cJSON_GetArraySize(s) : 0;
}

/* n from the path: a canonical decimal (no sign, no leading zeros), else -1. */
static long parse_n(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 9 || strspn(s, "0123456789") != strlen(s) ||
        (s[0] == '0' && s[1] != '\0'))
        return -1;
    return strtol(s, NULL, 10);
}

struct want {
    const char *class_name;    /* the class of sample n */
    int rank;                  /* its place among that class's readable images */
    int seen;                  /* readable images of that class so far */
    const char *expect_name;   /* folders: the profile's sample path, else NULL */
    struct image_pixels thumb; /* filled when found */
    int found, failed;         /* failed: an image_status from the resize */
};

static int on_image(void *ctx, const struct imageset_item *it)
{
    struct want *w = ctx;
    if (it->pixels == NULL || it->class_name == NULL || strcmp(it->class_name, w->class_name) != 0)
        return 0;
    if (w->seen++ < w->rank) return 0;
    if (w->expect_name && strcmp(it->name, w->expect_name) != 0)
        log_msg(LOG_WARN, "sample %s of class %s: the archive gives %s", w->expect_name,
                w->class_name, it->name);
    int rc = image_resize_area(it->pixels, SAMPLES_MAX_SIDE, &w->thumb);
    if (rc != 0) w->failed = rc;
    else w->found = 1;
    return 1;   /* stop the walk either way */
}

/* The archive is read back from its large object by libarchive. */
static ssize_t blob_read_cb(void *ctx, const void **buf)
{
    return blob_reader_read(ctx, buf);
}

static int64_t blob_seek_cb(void *ctx, int64_t off, int whence)
{
    return blob_reader_seek(ctx, off, whence);
}

static int no_such_sample(struct http_req *r, long n, int total)
{
    return http_problem(r, 404, "not-found", "Not found", NULL,
                        "no sample %ld: this data set has %d sample image%s (0 to %d)", n, total,
                        total == 1 ? "" : "s", total - 1);
}

int samples_get(struct http_req *r)
{
    int ret;
    /* An n that is not a number is a path that names nothing: 404, after
     * the data set itself has been checked (so the answer says which). */
    long n = parse_n(http_param(r, "n"));
    PGresult *res = resource_fetch(r, "dataset_id", "data set",
        "SELECT d.kind, encode(b.sha256, 'hex') AS sha256, b.lo, b.size,"
        "       b.encoding = 'zstd' AS zstd, d.profile->>'layout' AS layout,"
        "       d.profile->'classes' AS classes"
        "  FROM datasets d JOIN blobs b ON b.id = d.blob_id"
        " WHERE d.id = $1 AND d.team_id = $2", &ret);
    if (res == NULL) return ret;
    char kind[32], sha[72], layout[16];
    snprintf(kind, sizeof kind, "%s", PQgetvalue(res, 0, 0));
    snprintf(sha, sizeof sha, "%s", PQgetvalue(res, 0, 1));
    Oid lo = (Oid)strtoul(PQgetvalue(res, 0, 2), NULL, 10);
    uint64_t size = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
    int zstd = PQgetvalue(res, 0, 4)[0] == 't';
    snprintf(layout, sizeof layout, "%s", PQgetvalue(res, 0, 5));
    cJSON *classes = PQgetisnull(res, 0, 6) ? NULL : cJSON_Parse(PQgetvalue(res, 0, 6));
    PQclear(res);

    if (strcmp(kind, "images") != 0) {
        cJSON_Delete(classes);
        return http_problem(r, 404, "not-found", "Not found", NULL,
                            "data set %s is a table; only image sets have sample images",
                            http_param(r, "dataset_id"));
    }
    /* Which class, and which of its samples, is n? */
    struct want w = {0};
    int total = 0;
    const cJSON *c, *cls = NULL;
    cJSON_ArrayForEach(c, classes) {
        int k = samples_of_class(layout, c);
        if (cls == NULL && n >= total && n < total + k) {
            cls = c;
            w.rank = (int)(n - total);
        }
        total += k;
    }
    if (n < 0 || cls == NULL) {
        cJSON_Delete(classes);
        return n < 0 ? http_problem(r, 404, "not-found", "Not found", NULL,
                                    "no sample %s: samples are numbered 0 to %d",
                                    http_param(r, "n"), total - 1)
                     : no_such_sample(r, n, total);
    }
    w.class_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cls, "name"));
    w.expect_name = cJSON_GetStringValue(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cls, "samples"), w.rank));
    if (w.class_name == NULL) {
        cJSON_Delete(classes);
        return http_problem(r, 500, "internal", "Internal error", NULL,
                            "the data set's profile has a class without a name");
    }

    /* The same blob and n are the same image: the tag needs no read. */
    char etag[ETAG_MAX + 32];
    snprintf(etag, sizeof etag, "\"%s-sample%ld-" SAMPLES_FORMAT "\"", sha, n);
    const char *inm = http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && etag_match(inm, etag)) {
        cJSON_Delete(classes);
        return http_respond_not_modified(r, etag);
    }

    pthread_once(&once, samples_init);
    char key[ETAG_MAX + 32];
    snprintf(key, sizeof key, "%s/%ld", sha, n);
    struct rcache_flight *flight = NULL;
    if (thumbs) {
        struct rcache_body hit;
        if (rcache_get(thumbs, key, SAMPLES_FORMAT, SAMPLES_FLIGHT_WAIT_MS, &hit, &flight) ==
            RCACHE_HIT) {
            cJSON_Delete(classes);
            return http_respond_bytes(r, 200, "image/png", hit.data, hit.len, etag);
        }
    }
    if (!walks_ok || gate_enter(&walks, SAMPLES_WALK_WAIT_MS) < 0) {
        rcache_abandon(thumbs, flight);
        cJSON_Delete(classes);
        log_msg(LOG_WARN, "sample %ld of data set %s: too many archive walks at once", n,
                http_param(r, "dataset_id"));
        return too_busy(r);
    }
    PGresult *begin = PQexec(r->db.pg, "BEGIN READ ONLY");
    int began = PQresultStatus(begin) == PGRES_COMMAND_OK;
    PQclear(begin);
    char err[256];
    struct blob_reader *b = began ? blob_reader_open(r->db.pg, lo, zstd, err, sizeof err) : NULL;
    if (b == NULL) {
        gate_leave(&walks);
        rcache_abandon(thumbs, flight);
        if (began) PQclear(PQexec(r->db.pg, "ROLLBACK"));
        cJSON_Delete(classes);
        return http_problem_db_unavailable(r, "reading the data set");
    }
    /* A zstd blob cannot seek: libarchive then reads a zip in streaming mode. */
    struct imageset_source src = {b, blob_read_cb, zstd ? NULL : blob_seek_cb};
    struct imageset_limits lim = {.compressed_bytes = size};
    struct imageset_error e = {0};
    int rc = imageset_visit(&src, &lim, 0, on_image, &w, NULL, &e);
    blob_reader_close(b);
    PQclear(PQexec(r->db.pg, "COMMIT"));
    gate_leave(&walks);

    if (!w.found) {
        rcache_abandon(thumbs, flight);
        const char *id = http_param(r, "dataset_id");
        if (w.failed == IMAGE_ENOMEM || rc == IMAGESET_ENOMEM)
            ret = http_problem(r, 500, "internal", "Internal error", NULL, "out of memory");
        else if (rc == 0) {
            /* The archive ended before the sample: the profile and the
             * bytes disagree, which a stored data set never should. */
            log_msg(LOG_ERROR, "data set %s: sample %ld (class %s, #%d) not in the archive", id,
                    n, w.class_name, w.rank);
            ret = http_problem(r, 500, "internal", "Internal error", NULL,
                               "sample %ld is not in the stored archive", n);
        } else {
            log_msg(LOG_ERROR, "data set %s: sample %ld: %s", id, n,
                    e.message[0] ? e.message : imageset_strerror(rc));
            ret = http_problem(r, 500, "internal", "Internal error", NULL,
                               "reading the stored archive failed");
        }
        image_pixels_free(&w.thumb);
        cJSON_Delete(classes);
        return ret;
    }
    cJSON_Delete(classes);
    unsigned char *png;
    size_t len;
    rc = image_encode_png(&w.thumb, &png, &len, err, sizeof err);
    image_pixels_free(&w.thumb);
    if (rc != 0) {
        rcache_abandon(thumbs, flight);
        return http_problem(r, 500, "internal", "Internal error", NULL, "encoding the sample: %s",
                            err);
    }
    if (thumbs) {
        struct rcache_body put = {.data = (char *)png, .len = len};
        snprintf(put.etag, sizeof put.etag, "%s", etag);
        snprintf(put.content_type, sizeof put.content_type, "image/png");
        rcache_put(thumbs, flight, key, SAMPLES_FORMAT, &put);
    }
    /* private, no-cache (http_respond_bytes): the browser keeps it and
     * revalidates with the tag, which costs no archive read. */
    return http_respond_bytes(r, 200, "image/png", (char *)png, len, etag);
}

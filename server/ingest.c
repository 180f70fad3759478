/* ingest.c - see ingest.h. */
#include "server/ingest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/gunzip.h"

#define SNIFF 512   /* enough for tar's "ustar" at offset 257 */

struct ingest {
    struct ingest_opts opts;
    enum ingest_format format;
    struct ingest_error err;
    int failed;

    unsigned char sniff[SNIFF];     /* first bytes, until the format is known */
    size_t sniff_len;
    unsigned char inner[SNIFF];     /* first decompressed bytes of a gzip */
    size_t inner_len;
    int inner_known;

    struct gunzip *gz;
    struct csv_parser *csv;
    struct profile *profile;
    cJSON *result;
};

static int fail(struct ingest *in, unsigned status, const char *slug, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct ingest *in, unsigned status, const char *slug, const char *fmt, ...)
{
    if (in->failed) return -1;
    in->failed = 1;
    in->err.status = status;
    snprintf(in->err.slug, sizeof in->err.slug, "%s", slug);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->err.detail, sizeof in->err.detail, fmt, ap);
    va_end(ap);
    return -1;
}

int ingest_declared_from_type(const char *ct, enum ingest_declared *out)
{
    static const struct { const char *type; enum ingest_declared d; } map[] = {
        {"text/csv", INGEST_DECLARED_CSV},
        {"application/csv", INGEST_DECLARED_CSV},
        {"text/plain", INGEST_DECLARED_CSV},
        {"text/tab-separated-values", INGEST_DECLARED_CSV},
        {"application/gzip", INGEST_DECLARED_GZIP},
        {"application/x-gzip", INGEST_DECLARED_GZIP},
        {"application/zip", INGEST_DECLARED_ZIP},
        {"application/x-zip-compressed", INGEST_DECLARED_ZIP},
        {"application/x-tar", INGEST_DECLARED_TAR},
        {"application/octet-stream", INGEST_DECLARED_ANY},
    };
    if (ct == NULL) return -1;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strlen(map[i].type) == n && strncasecmp(ct, map[i].type, n) == 0) {
            *out = map[i].d;
            return 0;
        }
    }
    return -1;
}

const char *ingest_format_name(enum ingest_format f)
{
    static const char *const names[] = {"unknown", "csv", "csv.gz", "zip", "tar", "tar.gz"};
    return names[f];
}

int ingest_is_archive(enum ingest_format f)
{
    return f == INGEST_ZIP || f == INGEST_TAR || f == INGEST_TAR_GZ;
}

struct ingest *ingest_new(const struct ingest_opts *opts)
{
    struct ingest *in = calloc(1, sizeof *in);
    if (in == NULL) return NULL;
    in->opts = *opts;
    return in;
}

void ingest_free(struct ingest *in)
{
    if (in == NULL) return;
    gunzip_free(in->gz);
    csv_parser_free(in->csv);
    profile_free(in->profile);
    cJSON_Delete(in->result);
    free(in);
}

const struct ingest_error *ingest_error(const struct ingest *in) { return &in->err; }
enum ingest_format ingest_format(const struct ingest *in) { return in->format; }

cJSON *ingest_take_profile(struct ingest *in)
{
    cJSON *r = in->result;
    in->result = NULL;
    return r;
}

static int is_tar(const unsigned char *p, size_t n)
{
    return n >= 262 && memcmp(p + 257, "ustar", 5) == 0;
}

static int is_zip(const unsigned char *p, size_t n)
{
    return n >= 4 && p[0] == 'P' && p[1] == 'K' &&
           ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6));
}

/* The CSV parser's or profiler's failure as a 422 at its line. */
static int csv_failed(struct ingest *in)
{
    const struct csv_error *e = csv_parser_error(in->csv);
    if (e->code == CSV_ESTOPPED && in->profile && profile_error(in->profile)) {
        fail(in, 422, "invalid-csv", "%s", profile_error(in->profile));
        return -1;
    }
    if (e->code == CSV_ENOMEM) return fail(in, 500, "internal", "out of memory parsing the CSV");
    fail(in, 422, "invalid-csv", "%s", e->message);
    in->err.line = e->line;
    in->err.column = e->column;
    return -1;
}

static int start_csv(struct ingest *in)
{
    in->profile = profile_new(&in->opts.profile);
    if (in->profile == NULL)
        return fail(in, 422, "invalid-options", "invalid missing-value tokens or header option");
    in->csv = csv_parser_new(&in->opts.csv, profile_record_cb, in->profile);
    if (in->csv == NULL) return fail(in, 422, "invalid-options", "invalid CSV options");
    return 0;
}

static int csv_feed(struct ingest *in, const char *data, size_t len)
{
    if (csv_parser_feed(in->csv, data, len) < 0) return csv_failed(in);
    return 0;
}

/* Decompressed bytes of a gzip body. */
static int on_inflated(void *ctx, const char *data, size_t len)
{
    struct ingest *in = ctx;
    if (!in->inner_known) {
        size_t take = SNIFF - in->inner_len < len ? SNIFF - in->inner_len : len;
        memcpy(in->inner + in->inner_len, data, take);
        in->inner_len += take;
        data += take;
        len -= take;
        if (in->inner_len < SNIFF) return 0;
        in->inner_known = 1;
        if (is_tar(in->inner, in->inner_len)) {
            in->format = INGEST_TAR_GZ;
            return 1; /* stop: the archive is read from storage later */
        }
        in->format = INGEST_CSV_GZ;
        if (start_csv(in) < 0 || csv_feed(in, (const char *)in->inner, in->inner_len) < 0) return 1;
    }
    if (len > 0 && csv_feed(in, data, len) < 0) return 1;
    return 0;
}

static const char *declared_name(enum ingest_declared d)
{
    static const char *const names[] = {"application/octet-stream", "text/csv",
                                        "application/gzip", "application/zip",
                                        "application/x-tar"};
    return names[d];
}

/* Decide the format from the sniffed bytes and push them on. */
static int decide(struct ingest *in)
{
    const unsigned char *p = in->sniff;
    size_t n = in->sniff_len;
    enum ingest_declared d = in->opts.declared;
    enum ingest_declared found;
    if (is_zip(p, n)) {
        in->format = INGEST_ZIP;
        found = INGEST_DECLARED_ZIP;
    } else if (gunzip_is_gzip(p, n)) {
        found = INGEST_DECLARED_GZIP;
    } else if (is_tar(p, n)) {
        in->format = INGEST_TAR;
        found = INGEST_DECLARED_TAR;
    } else {
        in->format = INGEST_CSV;
        found = INGEST_DECLARED_CSV;
    }
    if (d != INGEST_DECLARED_ANY && d != found) {
        static const char *const what[] = {"data", "CSV text", "gzip data", "a zip archive",
                                           "a tar archive"};
        return fail(in, 415, "content-type-mismatch",
                    "the body was declared %s but is %s", declared_name(d), what[found]);
    }
    if (found == INGEST_DECLARED_GZIP) {
        in->gz = gunzip_new(in->opts.max_decompressed, 0, on_inflated, in);
        if (in->gz == NULL) return fail(in, 500, "internal", "out of memory");
        return 0; /* the sniffed bytes go through the gzip path in feed */
    }
    if (in->format == INGEST_CSV) {
        if (start_csv(in) < 0) return -1;
        return csv_feed(in, (const char *)p, n);
    }
    return 0;
}

static int gz_feed(struct ingest *in, const char *data, size_t len)
{
    if (in->format == INGEST_TAR_GZ) return 0;
    int rc = gunzip_feed(in->gz, data, len);
    if (rc == GUNZIP_OK) return 0;
    if (rc == GUNZIP_ESTOPPED) return in->failed ? -1 : 0; /* tar.gz found, or CSV error */
    if (rc == GUNZIP_ELIMIT)
        return fail(in, 413, "too-large", "the decompressed content is larger than %llu bytes",
                    (unsigned long long)in->opts.max_decompressed);
    if (rc == GUNZIP_ENOMEM) return fail(in, 500, "internal", "out of memory");
    return fail(in, 422, "invalid-gzip", "the gzip data is corrupt");
}

int ingest_feed(struct ingest *in, const char *data, size_t len)
{
    if (in->failed) return -1;
    if (in->format == INGEST_UNKNOWN && in->gz == NULL) {
        size_t take = SNIFF - in->sniff_len < len ? SNIFF - in->sniff_len : len;
        memcpy(in->sniff + in->sniff_len, data, take);
        in->sniff_len += take;
        data += take;
        len -= take;
        if (in->sniff_len < SNIFF) return 0;
        if (decide(in) < 0) return -1;
        if (in->gz && gz_feed(in, (const char *)in->sniff, in->sniff_len) < 0) return -1;
    }
    if (len == 0) return 0;
    if (in->gz) return gz_feed(in, data, len);
    if (in->format == INGEST_CSV) return csv_feed(in, data, len);
    return 0; /* zip, tar: stored, read back later */
}

static int finish_csv(struct ingest *in)
{
    if (csv_parser_finish(in->csv) < 0) return csv_failed(in);
    profile_set_delimiter(in->profile, csv_parser_delimiter(in->csv));
    in->result = profile_to_json(in->profile);
    if (in->result == NULL) return fail(in, 422, "empty-body", "the CSV holds no records");
    double rows = cJSON_GetNumberValue(cJSON_GetObjectItem(in->result, "n_rows"));
    double cols = cJSON_GetNumberValue(cJSON_GetObjectItem(in->result, "n_columns"));
    if (!(rows >= 1))
        return fail(in, 422, "no-rows", "the CSV has a header row but no data rows");
    if (!(cols >= 2))
        return fail(in, 422, "one-column",
                    "the CSV has one column: a data set needs a target and at least one "
                    "feature (is the delimiter one of , ; TAB |?)");
    return 0;
}

int ingest_finish(struct ingest *in)
{
    if (in->failed) return -1;
    if (in->format == INGEST_UNKNOWN && in->gz == NULL) {
        if (in->sniff_len == 0) return fail(in, 422, "empty-body", "the upload is empty");
        if (decide(in) < 0) return -1;
        if (in->gz && gz_feed(in, (const char *)in->sniff, in->sniff_len) < 0) return -1;
    }
    if (in->gz && in->format != INGEST_TAR_GZ) {
        int rc = gunzip_finish(in->gz);
        if (rc == GUNZIP_ETRUNCATED) return fail(in, 422, "invalid-gzip", "the gzip data is truncated");
        if (rc < 0 && !in->failed) return fail(in, 422, "invalid-gzip", "the gzip data is corrupt");
        if (in->failed) return -1;
        if (!in->inner_known) {
            /* Under SNIFF bytes decompressed: decide on what there is. */
            in->inner_known = 1;
            in->format = INGEST_CSV_GZ;
            if (in->inner_len == 0) return fail(in, 422, "empty-body", "the gzip data is empty");
            if (start_csv(in) < 0 || csv_feed(in, (const char *)in->inner, in->inner_len) < 0)
                return -1;
        }
    }
    if (in->format == INGEST_CSV || in->format == INGEST_CSV_GZ) return finish_csv(in);
    return 0;
}

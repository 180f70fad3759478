/* test_datasets.c - data sets through the real server and database: raw
 * and multipart uploads, gzip, deduplication, reading back, preview,
 * deletion, team isolation, every shared CSV profiled as expected, and
 * hostile input answered with a located 4xx that leaves nothing behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include "lib/crypto.h"
#include "tests/support/harness.h"

static struct th_db db;
static struct th_server srv;
static PGconn *pg;

#define MAX_UPLOAD (2 * 1024 * 1024)

static int setup(void **state)
{
    if (th_db_create(&db) < 0) return -1;
    const char *extra[] = {"--max-upload-bytes=2097152", NULL};
    if (th_server_start(&srv, &db, extra) < 0) return -1;
    pg = th_db_connect(&db);
    return pg ? 0 : -1;
}

static int teardown(void **state)
{
    PQfinish(pg);
    int rc = th_server_stop(&srv);
    th_db_drop(&db);
    return rc == 0 ? 0 : -1;
}

static long count(const char *sql)
{
    PGresult *res = PQexec(pg, sql);
    long v = PQresultStatus(res) == PGRES_TUPLES_OK ? atol(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    return v;
}

/* Large objects, blobs and data sets: what a failed upload must not add. */
struct footprint { long lo, blobs, datasets; };

static struct footprint footprint(void)
{
    struct footprint f = {count("SELECT count(*) FROM pg_largeobject_metadata"),
                          count("SELECT count(*) FROM blobs"),
                          count("SELECT count(*) FROM datasets")};
    return f;
}

static void assert_unchanged(struct footprint before)
{
    struct footprint now = footprint();
    assert_int_equal(now.lo, before.lo);
    assert_int_equal(now.blobs, before.blobs);
    assert_int_equal(now.datasets, before.datasets);
}

static char *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "tests/data/tabular/%s", name);
    char *data = th_read_file(path, len);
    assert_non_null(data);
    return data;
}

static struct th_resp post(const char *path, const char *ctype, const void *body, size_t len)
{
    struct th_resp r;
    assert_int_equal(th_http(&srv, "POST", path, srv.key, ctype, body, len, &r), 0);
    return r;
}

static void expect_problem(struct th_resp *r, long status, const char *needle)
{
    if (r->status != status || (needle && !strstr(r->body, needle)))
        fprintf(stderr, "want %ld with '%s', got %ld: %s\n", status, needle ? needle : "",
                r->status, r->body);
    assert_int_equal(r->status, status);
    assert_string_equal(r->content_type, "application/problem+json");
    if (needle) assert_non_null(strstr(r->body, needle));
}

static double num(cJSON *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    cJSON *cur = o;
    for (char *t = strtok(buf, "."); t && cur; t = strtok(NULL, "."))
        cur = cJSON_GetObjectItemCaseSensitive(cur, t);
    return cur ? cJSON_GetNumberValue(cur) : -1;
}

static void raw_csv_upload(void **state)
{
    size_t len;
    char *csv = load("iris.csv", &len);
    struct th_resp r = post("/v1/datasets?name=iris", "text/csv", csv, len);
    if (r.status != 201) fprintf(stderr, "%s\n", r.body);
    assert_int_equal(r.status, 201);
    cJSON *d = th_json(&r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "name")), "iris");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "kind")), "tabular");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "format")), "csv");
    assert_int_equal((long)num(d, "size"), (long)len);
    unsigned char h[32];
    char hex[65];
    crypto_sha256(csv, len, h);
    crypto_hex(h, 32, hex);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "sha256")), hex);
    assert_int_equal((long)num(d, "profile.n_rows"), 150);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItem(d, "profile"), "target")), "species");
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/datasets/%s", cJSON_GetStringValue(cJSON_GetObjectItem(d, "id")));
    assert_string_equal(r.location, loc);
    cJSON_Delete(d);
    th_resp_free(&r);
    free(csv);
}

static void multipart_upload_and_dedup(void **state)
{
    size_t len;
    char *csv = load("wine.csv", &len);
    struct footprint before = footprint();
    struct th_resp r;
    assert_int_equal(th_http_form(&srv, "/v1/datasets", srv.key, NULL, NULL, "wine.csv", csv, len,
                                  "text/csv", &r), 0);
    if (r.status != 201) fprintf(stderr, "%s\n", r.body);
    assert_int_equal(r.status, 201);
    assert_string_equal(th_json_str(&r, "name"), "wine.csv"); /* the file's name */
    th_resp_free(&r);
    /* The same bytes again, under another name from the form: a second
     * data set, the same single stored copy. */
    assert_int_equal(th_http_form(&srv, "/v1/datasets", srv.key, "wine again", NULL, "w.csv", csv,
                                  len, "application/vnd.ms-excel", &r), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(th_json_str(&r, "name"), "wine again");
    cJSON *d = th_json(&r);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "content_reused")));
    cJSON_Delete(d);
    th_resp_free(&r);
    struct footprint after = footprint();
    assert_int_equal(after.datasets, before.datasets + 2);
    assert_int_equal(after.blobs, before.blobs + 1);
    assert_int_equal(after.lo, before.lo + 1);
    free(csv);
}

static char *gzip_bytes(const char *data, size_t len, size_t *out_len)
{
    z_stream z = {0};
    deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&z, len) + 64;
    char *out = malloc(cap);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)len;
    z.next_out = (unsigned char *)out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void gzip_csv_upload(void **state)
{
    size_t len, glen;
    char *csv = load("PimaIndiansDiabetes2.csv", &len);
    char *gz = gzip_bytes(csv, len, &glen);
    struct th_resp r = post("/v1/datasets?name=pima", "application/gzip", gz, glen);
    if (r.status != 201) fprintf(stderr, "%s\n", r.body);
    assert_int_equal(r.status, 201);
    cJSON *d = th_json(&r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "format")), "csv.gz");
    assert_int_equal((long)num(d, "profile.n_rows"), 768);
    assert_int_equal((long)num(d, "profile.missing_total"), 652);
    char path[160];
    snprintf(path, sizeof path, "/v1/datasets/%s/preview?rows=3",
             cJSON_GetStringValue(cJSON_GetObjectItem(d, "id")));
    cJSON_Delete(d);
    th_resp_free(&r);
    /* Preview decompresses the stored bytes. */
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    d = th_json(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "rows")), 3);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "columns")), 9);
    cJSON_Delete(d);
    th_resp_free(&r);
    free(gz);
    free(csv);
}

static void read_back_and_delete(void **state)
{
    size_t len;
    char *csv = load("Zoo.csv", &len);
    struct th_resp r = post("/v1/datasets?name=zoo", "text/csv", csv, len);
    assert_int_equal(r.status, 201);
    char id[64], path[200];
    snprintf(id, sizeof id, "%s", th_json_str(&r, "id"));
    th_resp_free(&r);

    /* The content, byte for byte, with its ETag; then 304. */
    snprintf(path, sizeof path, "/v1/datasets/%s/content", id);
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, len);
    assert_memory_equal(r.body, csv, len);
    th_resp_free(&r);
    char auth[200], inm[120];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", srv.key);
    unsigned char h[32];
    char hex[65];
    crypto_sha256(csv, len, h);
    crypto_hex(h, 32, hex);
    snprintf(inm, sizeof inm, "If-None-Match: \"%s\"", hex);
    const char *hdrs[] = {auth, inm, NULL};
    assert_int_equal(th_http_headers(&srv, "GET", path, hdrs, NULL, 0, &r), 0);
    assert_int_equal(r.status, 304);
    th_resp_free(&r);

    /* Preview and the whole record. */
    snprintf(path, sizeof path, "/v1/datasets/%s/preview?rows=2", id);
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *p = th_json(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(p, "rows")), 2);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(p, "columns"), 0)->valuestring, "hair");
    cJSON_Delete(p);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/datasets/%s/preview?rows=0", id);
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    expect_problem(&r, 400, "rows");
    th_resp_free(&r);

    /* Delete: 204, then 404, and its stored copy is gone. */
    struct footprint before = footprint();
    snprintf(path, sizeof path, "/v1/datasets/%s", id);
    assert_int_equal(th_http(&srv, "DELETE", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 204);
    th_resp_free(&r);
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    expect_problem(&r, 404, NULL);
    th_resp_free(&r);
    struct footprint after = footprint();
    assert_int_equal(after.datasets, before.datasets - 1);
    assert_int_equal(after.lo, before.lo - 1);
    free(csv);
}

/* A CSV over several of the writer's 1 MiB blocks: stored compressed,
 * read back byte for byte. */
static void large_csv_is_stored_compressed(void **state)
{
    size_t cap = 1900 * 1000, len = 0;
    char *csv = malloc(cap + 64);
    len += (size_t)sprintf(csv, "id_like,x,y,label\n");
    for (unsigned i = 0; len < cap; i++)
        len += (size_t)sprintf(csv + len, "%u,%u.%03u,%u,%s\n", i % 977, i % 101, i % 1000, i % 7,
                               i % 3 ? "red" : "blue");
    struct th_resp r = post("/v1/datasets?name=big", "text/csv", csv, len);
    if (r.status != 201) fprintf(stderr, "%s\n", r.body);
    assert_int_equal(r.status, 201);
    char id[64], path[200];
    snprintf(id, sizeof id, "%s", th_json_str(&r, "id"));
    th_resp_free(&r);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT (b.encoding = 'zstd')::int * 1000000000 + "
             "(SELECT sum(length(data)) FROM pg_largeobject WHERE loid = b.lo)"
             " FROM datasets d JOIN blobs b ON b.id = d.blob_id WHERE d.id = '%s'", id);
    long v = count(sql);
    assert_true(v > 1000000000);                 /* zstd */
    assert_true(v - 1000000000 < (long)len / 2); /* and smaller */
    snprintf(path, sizeof path, "/v1/datasets/%s/content", id);
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, len);
    assert_memory_equal(r.body, csv, len);
    th_resp_free(&r);
    free(csv);
}

static void listing_is_paged_newest_first(void **state)
{
    struct th_resp r;
    assert_int_equal(th_http(&srv, "GET", "/v1/datasets?limit=2", srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *page = th_json(&r);
    cJSON *items = cJSON_GetObjectItem(page, "items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    const char *cursor = cJSON_GetStringValue(cJSON_GetObjectItem(page, "next_cursor"));
    assert_non_null(cursor);
    long total = count("SELECT count(*) FROM datasets");
    /* Walk all pages: every data set once, newest first. */
    long seen = 2;
    char path[256], prev[40];
    snprintf(prev, sizeof prev, "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 1), "created_at")));
    snprintf(path, sizeof path, "/v1/datasets?limit=2&cursor=%s", cursor);
    cJSON_Delete(page);
    th_resp_free(&r);
    for (;;) {
        assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
        assert_int_equal(r.status, 200);
        page = th_json(&r);
        cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(page, "items")) {
            const char *ts = cJSON_GetStringValue(cJSON_GetObjectItem(it, "created_at"));
            assert_true(strcmp(ts, prev) <= 0);
            snprintf(prev, sizeof prev, "%s", ts);
            seen++;
        }
        cursor = cJSON_GetStringValue(cJSON_GetObjectItem(page, "next_cursor"));
        if (cursor) snprintf(path, sizeof path, "/v1/datasets?limit=2&cursor=%s", cursor);
        cJSON_Delete(page);
        th_resp_free(&r);
        if (!cursor) break;
    }
    assert_int_equal(seen, total);
    assert_int_equal(th_http(&srv, "GET", "/v1/datasets?cursor=bogus", srv.key, NULL, NULL, 0, &r), 0);
    expect_problem(&r, 400, "cursor");
    th_resp_free(&r);
}

static void other_teams_see_nothing(void **state)
{
    struct th_resp r = post("/v1/teams", "application/json", "{\"name\": \"rivals\"}", 18);
    assert_int_equal(r.status, 201);
    char *rival = strdup(th_json_str(&r, "admin_key.key"));
    th_resp_free(&r);
    size_t len;
    char *csv = load("Servo.csv", &len);
    r = post("/v1/datasets", "text/csv", csv, len);
    assert_int_equal(r.status, 201);
    char id[64], path[200];
    snprintf(id, sizeof id, "%s", th_json_str(&r, "id"));
    th_resp_free(&r);
    const char *suffix[] = {"", "/content", "/preview"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/v1/datasets/%s%s", id, suffix[i]);
        assert_int_equal(th_http(&srv, "GET", path, rival, NULL, NULL, 0, &r), 0);
        expect_problem(&r, 404, NULL);
        th_resp_free(&r);
    }
    snprintf(path, sizeof path, "/v1/datasets/%s", id);
    assert_int_equal(th_http(&srv, "DELETE", path, rival, NULL, NULL, 0, &r), 0);
    expect_problem(&r, 404, NULL);
    th_resp_free(&r);
    assert_int_equal(th_http(&srv, "GET", "/v1/datasets", rival, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"items\":[]"));
    th_resp_free(&r);
    /* The same bytes uploaded by the other team are its own copy. */
    long lo = count("SELECT count(*) FROM pg_largeobject_metadata");
    assert_int_equal(th_http(&srv, "POST", "/v1/datasets", rival, "text/csv", csv, len, &r), 0);
    assert_int_equal(r.status, 201);
    th_resp_free(&r);
    assert_int_equal(count("SELECT count(*) FROM pg_largeobject_metadata"), lo + 1);
    free(csv);
    free(rival);
}

static void shared_tables_profile_as_expected(void **state)
{
    size_t len;
    char *manifest = th_read_file("tests/data/tabular.json", &len);
    assert_non_null(manifest);
    cJSON *m = cJSON_Parse(manifest);
    cJSON *entry;
    int n = 0;
    cJSON_ArrayForEach(entry, m) {
        const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(entry, "file"));
        const char *slash = strrchr(file, '/');
        size_t clen;
        char *csv = load(slash ? slash + 1 : file, &clen);
        struct th_resp r = post("/v1/datasets", "text/csv", csv, clen);
        if (r.status != 201) fprintf(stderr, "%s: %s\n", file, r.body);
        assert_int_equal(r.status, 201);
        cJSON *d = th_json(&r);
        cJSON *profile = cJSON_GetObjectItem(d, "profile");
        const char *target = cJSON_GetStringValue(cJSON_GetObjectItem(profile, "target"));
        const char *task = cJSON_GetStringValue(cJSON_GetObjectItem(profile, "task"));
        if (strcmp(target, cJSON_GetStringValue(cJSON_GetObjectItem(entry, "target"))) ||
            strcmp(task, cJSON_GetStringValue(cJSON_GetObjectItem(entry, "task"))))
            fprintf(stderr, "%s: target %s task %s\n", file, target, task);
        assert_string_equal(target, cJSON_GetStringValue(cJSON_GetObjectItem(entry, "target")));
        assert_string_equal(task, cJSON_GetStringValue(cJSON_GetObjectItem(entry, "task")));
        cJSON *ids = cJSON_GetObjectItem(entry, "id_columns");
        if (ids) {
            char *got = cJSON_PrintUnformatted(cJSON_GetObjectItem(profile, "identifier_columns"));
            char *want = cJSON_PrintUnformatted(ids);
            assert_string_equal(got, want);
            free(got);
            free(want);
        }
        cJSON_Delete(d);
        th_resp_free(&r);
        free(csv);
        n++;
    }
    assert_int_equal(n, 14);
    cJSON_Delete(m);
    free(manifest);
}

/* Each hostile body: its status, a word the detail must contain, and
 * (for CSV) the line the error must name. */
struct hostile {
    const char *what, *ctype, *body;
    size_t len;
    long status;
    const char *needle;
    int line;
};

static void hostile_input_is_refused_and_leaves_nothing(void **state)
{
    static const char garbage[] = {0x7f, 'E', 'L', 'F', 0, 1, 2, 3, (char)0xff, 0, 0, 9};
    const struct hostile cases[] = {
        {"unterminated quote", "text/csv", "a,b\n1,2\n3,\"open\n4,5\n", 0, 422, "quote", 3},
        {"ragged row", "text/csv", "a,b,c\n1,2,3\n4,5\n", 0, 422, "field", 3},
        {"empty body", "text/csv", "", 0, 422, "empty", 0},
        {"header only", "text/csv", "a,b,c\n", 0, 422, "no data rows", 0},
        {"binary garbage", "text/csv", garbage, sizeof garbage, 422, NULL, 1},
        {"invalid UTF-8", "text/csv", "a,b\n1,caf\xc3\n2,x\n", 0, 422, "UTF-8", 2},
        {"one column", "text/csv", "x\n1\n2\n3\n", 0, 422, "one column", 0},
        {"wrong content type", "application/json", "{\"a\": 1}", 0, 415, "text/csv", 0},
        {"declared zip, is CSV", "application/zip", "a,b\n1,2\n", 0, 415, "zip", 0},
        {"declared CSV, is gzip", "text/csv", "\x1f\x8b\x08\x00rest", 9, 415, "gzip", 0},
        {"corrupt gzip", "application/gzip", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage!", 18, 422, "gzip", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct hostile *c = &cases[i];
        struct footprint before = footprint();
        size_t len = c->len ? c->len : strlen(c->body);
        struct th_resp r = post("/v1/datasets", c->ctype, c->body, len);
        fprintf(stderr, "%-24s -> %ld %s\n", c->what, r.status, r.body);
        expect_problem(&r, c->status, c->needle);
        if (c->line) {
            cJSON *p = th_json(&r);
            assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(p, "line")), c->line);
            cJSON_Delete(p);
        }
        th_resp_free(&r);
        assert_unchanged(before);
    }
}

static void oversized_uploads_are_413(void **state)
{
    struct footprint before = footprint();
    /* Over the limit by Content-Length: refused before any byte is read. */
    size_t n = MAX_UPLOAD + 4096;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++) big[i] = (i % 8 == 7) ? '\n' : (i % 2 ? ',' : '1');
    memcpy(big, "a,b,c,d\n", 8);
    struct th_resp r = post("/v1/datasets", "text/csv", big, n);
    expect_problem(&r, 413, NULL);
    th_resp_free(&r);
    /* The same streamed without a length: found while reading. */
    char auth[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", srv.key);
    const char *h[] = {auth, "Content-Type: text/csv", "Transfer-Encoding: chunked", NULL};
    assert_int_equal(th_http_headers(&srv, "POST", "/v1/datasets", h, big, n, &r), 0);
    expect_problem(&r, 413, NULL);
    th_resp_free(&r);
    free(big);
    assert_unchanged(before);
    /* Nothing is read without a key. */
    assert_int_equal(th_http(&srv, "POST", "/v1/datasets", NULL, "text/csv", "a,b\n1,2\n", 8, &r), 0);
    expect_problem(&r, 401, NULL);
    th_resp_free(&r);
}

static void forms_without_a_file_are_refused(void **state)
{
    struct footprint before = footprint();
    struct th_resp r;
    assert_int_equal(th_http_form(&srv, "/v1/datasets", srv.key, "nameonly", NULL, NULL, NULL, 0,
                                  NULL, &r), 0);
    expect_problem(&r, 422, "file");
    th_resp_free(&r);
    assert_unchanged(before);
}

static void missing_tokens_are_configurable(void **state)
{
    const char *csv = "a,b,label\n1,-1,x\n2,-1,y\n3,4,x\n4,5,y\n";
    struct th_resp r = post("/v1/datasets?na=-1", "text/csv", csv, strlen(csv));
    assert_int_equal(r.status, 201);
    cJSON *d = th_json(&r);
    assert_int_equal((long)num(d, "profile.missing_total"), 2);
    cJSON_Delete(d);
    th_resp_free(&r);
}

/* --- image archives ------------------------------------------------------- */

struct membuf { char *data; size_t len, cap; };

/* An archive written into memory by libarchive: format "zip" or "tar.gz";
 * entries are (name, data, len) triples, or a zero-filled entry of `zeros`
 * bytes when data is NULL (a compression bomb). */
struct entry { const char *name; const void *data; size_t len; size_t zeros; };

static char *make_archive(const char *format, const struct entry *e, size_t n, size_t *out_len)
{
    struct archive *a = archive_write_new();
    if (strcmp(format, "zip") == 0) {
        archive_write_set_format_zip(a);
    } else {
        archive_write_set_format_pax_restricted(a);
        archive_write_add_filter_gzip(a);
    }
    size_t cap = 64 << 20;
    char *buf = malloc(cap);
    size_t used = 0;
    archive_write_set_bytes_in_last_block(a, 1);
    assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
    static const char zeros[65536];
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, e[i].name);
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, 0644);
        archive_entry_set_size(ae, (la_int64_t)(e[i].data ? e[i].len : e[i].zeros));
        assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
        if (e[i].data) {
            archive_write_data(a, e[i].data, e[i].len);
        } else {
            for (size_t done = 0; done < e[i].zeros; done += sizeof zeros)
                archive_write_data(a, zeros, sizeof zeros);
        }
        archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
    *out_len = used;
    return buf;
}

/* The first PNG of the digits archive, to build others from. */
static char *first_png(size_t *len)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_zip(a);
    assert_int_equal(archive_read_open_filename(a, "tests/data/images/digits8x8.zip", 65536), ARCHIVE_OK);
    struct archive_entry *ae;
    char *png = NULL;
    while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
        if (archive_entry_size(ae) <= 0) continue;
        *len = (size_t)archive_entry_size(ae);
        png = malloc(*len);
        archive_read_data(a, png, *len);
        break;
    }
    archive_read_free(a);
    assert_non_null(png);
    return png;
}

static void image_archives_upload_and_profile(void **state)
{
    size_t len;
    char *zip = th_read_file("tests/data/images/digits8x8.zip", &len);
    assert_non_null(zip);
    struct th_resp r = post("/v1/datasets?name=digits", "application/zip", zip, len);
    if (r.status != 201) fprintf(stderr, "%s\n", r.body);
    assert_int_equal(r.status, 201);
    cJSON *d = th_json(&r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "kind")), "images");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "format")), "zip");
    assert_int_equal((long)num(d, "profile.images"), 1797);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetObjectItem(d, "profile"), "classes")), 10);
    char path[200];
    snprintf(path, sizeof path, "/v1/datasets/%s/preview",
             cJSON_GetStringValue(cJSON_GetObjectItem(d, "id")));
    cJSON_Delete(d);
    th_resp_free(&r);
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    d = th_json(&r);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "classes"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "name")), "0");
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(c0, "samples")) > 0);
    cJSON_Delete(d);
    th_resp_free(&r);

    /* A tar.gz of two class folders, one image unreadable: profiled, with
     * the bad file named. */
    size_t plen;
    char *png = first_png(&plen);
    char *bad = malloc(plen);
    memcpy(bad, png, plen);
    memset(bad + 40, 0x55, plen - 48); /* keep the header, wreck the data */
    const struct entry e[] = {{"set/cat/a.png", png, plen, 0}, {"set/cat/b.png", png, plen, 0},
                              {"set/dog/c.png", png, plen, 0}, {"set/dog/broken.png", bad, plen, 0}};
    size_t tlen;
    char *tgz = make_archive("tar.gz", e, 4, &tlen);
    assert_int_equal(th_http_form(&srv, "/v1/datasets", srv.key, "pets", NULL, "pets.tar.gz", tgz,
                                  tlen, "application/octet-stream", &r), 0);
    if (r.status != 201) fprintf(stderr, "%s\n", r.body);
    assert_int_equal(r.status, 201);
    d = th_json(&r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "format")), "tar.gz");
    assert_int_equal((long)num(d, "profile.images"), 3);
    assert_int_equal((long)num(d, "profile.unreadable.count"), 1);
    assert_non_null(strstr(r.body, "broken.png"));
    cJSON_Delete(d);
    th_resp_free(&r);
    free(tgz);
    free(bad);
    free(png);
    free(zip);
}

static void hostile_archives_are_refused_and_leave_nothing(void **state)
{
    size_t plen;
    char *png = first_png(&plen);
    char *bad = malloc(plen);
    memcpy(bad, png, plen);
    memset(bad + 40, 0x55, plen - 48);
    size_t zlen;
    char *zip = th_read_file("tests/data/images/digits8x8.zip", &zlen);

    const struct entry escape[] = {{"cat/ok.png", png, plen, 0}, {"../evil.png", png, plen, 0}};
    const struct entry absolute[] = {{"/etc/evil.png", png, plen, 0}};
    const struct entry bomb[] = {{"zeros/a.png", NULL, 0, (size_t)96 << 20}};
    const struct entry corrupt[] = {{"cat/broken.png", bad, plen, 0}};
    struct { const char *what; char *body; size_t len; long status; const char *needle; } cases[5];
    cases[0].what = "../ path";
    cases[0].body = make_archive("zip", escape, 2, &cases[0].len);
    cases[0].status = 422;
    cases[0].needle = "evil.png";
    cases[1].what = "absolute path";
    cases[1].body = make_archive("tar.gz", absolute, 1, &cases[1].len);
    cases[1].status = 422;
    cases[1].needle = "evil.png";
    cases[2].what = "zip bomb";
    cases[2].body = make_archive("zip", bomb, 1, &cases[2].len);
    cases[2].status = 413;
    cases[2].needle = NULL;
    cases[3].what = "truncated zip";
    cases[3].body = malloc(zlen / 2);
    memcpy(cases[3].body, zip, zlen / 2);
    cases[3].len = zlen / 2;
    cases[3].status = 422;
    cases[3].needle = NULL;
    cases[4].what = "only a corrupted PNG";
    cases[4].body = make_archive("zip", corrupt, 1, &cases[4].len);
    cases[4].status = 422;
    cases[4].needle = "broken.png";
    for (int i = 0; i < 5; i++) {
        struct footprint before = footprint();
        struct th_resp r = post("/v1/datasets", "application/octet-stream", cases[i].body, cases[i].len);
        fprintf(stderr, "%-22s -> %ld %s\n", cases[i].what, r.status, r.body);
        expect_problem(&r, cases[i].status, cases[i].needle);
        th_resp_free(&r);
        assert_unchanged(before);
        free(cases[i].body);
    }
    free(zip);
    free(bad);
    free(png);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(raw_csv_upload),
        cmocka_unit_test(multipart_upload_and_dedup),
        cmocka_unit_test(gzip_csv_upload),
        cmocka_unit_test(read_back_and_delete),
        cmocka_unit_test(large_csv_is_stored_compressed),
        cmocka_unit_test(listing_is_paged_newest_first),
        cmocka_unit_test(other_teams_see_nothing),
        cmocka_unit_test(shared_tables_profile_as_expected),
        cmocka_unit_test(hostile_input_is_refused_and_leaves_nothing),
        cmocka_unit_test(oversized_uploads_are_413),
        cmocka_unit_test(forms_without_a_file_are_refused),
        cmocka_unit_test(missing_tokens_are_configurable),
        cmocka_unit_test(image_archives_upload_and_profile),
        cmocka_unit_test(hostile_archives_are_refused_and_leave_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

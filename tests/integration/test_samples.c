/* test_samples.c - GET /v1/datasets/{id}/samples/{n} through the real
 * server: the digits archive's first and last samples are the archive's
 * own pixels (read here with lib/imageset's visitor) as PNGs, listed in
 * the preview's sample_urls; an unchanged tag is a 304; a large image is
 * scaled down to 128 px; an IDX pair's samples are the first images of
 * each label; and every n or data set that names no sample is a 404. A
 * thumbnail once made is kept in memory: it is still served, the same
 * bytes, after its stored archive has been overwritten with zeros, while
 * a sample not made before now fails to be read from it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/image.h"
#include "lib/imageset.h"
#include "tests/support/harness.h"
#include "tests/support/imgfix.h"

#define DIGITS "tests/data/images/digits8x8.zip"

static struct th_db db;
static struct th_server srv;

static int setup(void **state)
{
    if (th_db_create(&db) < 0) return -1;
    return th_server_start(&srv, &db, NULL);
}

static int teardown(void **state)
{
    int rc = th_server_stop(&srv);
    th_db_drop(&db);
    return rc == 0 ? 0 : -1;
}

/* Upload bytes as a data set; its id in a static buffer. */
static const char *upload(const char *name, const char *ctype, const void *data, size_t len)
{
    static char id[64];
    char path[128];
    snprintf(path, sizeof path, "/v1/datasets?name=%s", name);
    struct th_resp r;
    assert_int_equal(th_http(&srv, "POST", path, srv.key, ctype, data, len, &r), 0);
    if (r.status != 201) fprintf(stderr, "%s\n", r.body);
    assert_int_equal(r.status, 201);
    snprintf(id, sizeof id, "%s", th_json_str(&r, "id"));
    th_resp_free(&r);
    return id;
}

/* GET a sample; decodes it into *px when the answer is a 200 PNG. */
static long get_sample(const char *path, const char *key, const char *if_none_match,
                       struct image_pixels *px, char *etag, size_t etag_len)
{
    char auth[256], inm[256];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    snprintf(inm, sizeof inm, "If-None-Match: %s", if_none_match ? if_none_match : "");
    const char *h[] = {auth, if_none_match ? inm : NULL, NULL};
    struct th_resp r;
    assert_int_equal(th_http_headers(&srv, "GET", path, h, NULL, 0, &r), 0);
    long status = r.status;
    if (etag) snprintf(etag, etag_len, "%s", r.etag);
    if (status == 200) {
        assert_string_equal(r.content_type, "image/png");
        assert_true(r.etag[0] == '"');
        char msg[256];
        struct image_info info;
        int rc = image_decode(r.body, r.body_len, NULL, &info, px, msg, sizeof msg);
        if (rc != 0) fail_msg("%s: the body is not a PNG: %s", path, msg);
        assert_int_equal(info.format, IMAGE_PNG);
    } else if (status >= 400) {
        assert_non_null(strstr(r.content_type, "application/problem+json"));
        fprintf(stderr, "GET %s -> %ld %s\n", path, status, r.body);
    }
    th_resp_free(&r);
    return status;
}

/* The pixels of one entry of a local archive, read with the visitor. */
struct find { const char *name; struct image_pixels px; };

static int find_entry(void *ctx, const struct imageset_item *it)
{
    struct find *f = ctx;
    if (it->pixels == NULL || strcmp(it->name, f->name) != 0) return 0;
    size_t n = (size_t)it->pixels->width * it->pixels->height * (size_t)it->pixels->channels;
    f->px = *it->pixels;
    f->px.data = malloc(n);
    assert_non_null(f->px.data);
    memcpy(f->px.data, it->pixels->data, n);
    return 1;
}

static struct image_pixels archive_image(const char *path, const char *name)
{
    struct find f = {name, {0}};
    struct imageset_error e;
    int rc = imageset_visit_file(path, NULL, 0, find_entry, &f, NULL, &e);
    if (rc != IMAGESET_ESTOPPED) fail_msg("%s: no readable %s (%d %s)", path, name, rc, e.message);
    return f.px;
}

static void assert_same_pixels(const struct image_pixels *a, const struct image_pixels *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    assert_memory_equal(a->data, b->data, (size_t)a->width * a->height * (size_t)a->channels);
}

static void expect_404(const char *path, const char *key)
{
    struct image_pixels px = {0};
    assert_int_equal(get_sample(path, key, NULL, &px, NULL, 0), 404);
}

static void digits_samples_are_the_archives_images(void **state)
{
    size_t len;
    char *zip = th_read_file(DIGITS, &len);
    assert_non_null(zip);
    char id[64], path[256];
    snprintf(id, sizeof id, "%s", upload("digits", "application/zip", zip, len));
    free(zip);

    /* The preview lists each class's samples with their URLs, numbered
     * from 0 in class order. */
    snprintf(path, sizeof path, "/v1/datasets/%s/preview", id);
    struct th_resp r;
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *pv = th_json(&r);
    th_resp_free(&r);
    cJSON *classes = cJSON_GetObjectItem(pv, "classes");
    assert_int_equal(cJSON_GetArraySize(classes), 10);
    int total = 0;
    const char *first_name = NULL, *last_name = NULL;
    cJSON *c;
    cJSON_ArrayForEach(c, classes) {
        cJSON *names = cJSON_GetObjectItem(c, "samples"), *urls = cJSON_GetObjectItem(c, "sample_urls");
        assert_int_equal(cJSON_GetArraySize(names), 5);
        assert_int_equal(cJSON_GetArraySize(urls), 5);
        for (int k = 0; k < 5; k++) {
            char want[256];
            snprintf(want, sizeof want, "/v1/datasets/%s/samples/%d", id, total + k);
            assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(urls, k)), want);
        }
        if (first_name == NULL) first_name = cJSON_GetStringValue(cJSON_GetArrayItem(names, 0));
        last_name = cJSON_GetStringValue(cJSON_GetArrayItem(names, 4));
        total += 5;
    }
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(classes, 0), "name")), "0");

    /* Sample 0 and the last one: the archive's pixels, 8x8 grey. */
    struct image_pixels got, want;
    char etag[128];
    snprintf(path, sizeof path, "/v1/datasets/%s/samples/0", id);
    assert_int_equal(get_sample(path, srv.key, NULL, &got, etag, sizeof etag), 200);
    want = archive_image(DIGITS, first_name);
    assert_int_equal(got.width, 8);
    assert_int_equal(got.height, 8);
    assert_same_pixels(&got, &want);
    image_pixels_free(&got);
    image_pixels_free(&want);

    /* The tag holds: 304, no body; another tag or none: 200. */
    assert_int_equal(get_sample(path, srv.key, etag, &got, NULL, 0), 304);
    assert_int_equal(get_sample(path, srv.key, "\"something-else\"", &got, NULL, 0), 200);
    image_pixels_free(&got);

    char last_etag[128];
    snprintf(path, sizeof path, "/v1/datasets/%s/samples/%d", id, total - 1);
    assert_int_equal(get_sample(path, srv.key, NULL, &got, last_etag, sizeof last_etag), 200);
    assert_true(strcmp(etag, last_etag) != 0);
    want = archive_image(DIGITS, last_name);
    assert_same_pixels(&got, &want);
    image_pixels_free(&got);
    image_pixels_free(&want);

    /* Every sample answers (the dashboard shows them all). */
    for (int n = 1; n < total - 1; n++) {
        snprintf(path, sizeof path, "/v1/datasets/%s/samples/%d", id, n);
        assert_int_equal(get_sample(path, srv.key, NULL, &got, NULL, 0), 200);
        assert_int_equal(got.width, 8);
        image_pixels_free(&got);
    }

    /* No such sample: out of range, negative, not a plain number. */
    static const char *const bad[] = {"50", "-1", "abc", "01", "1.0", "99999999999", "0x1", "+1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "/v1/datasets/%s/samples/%s", id, bad[i]);
        expect_404(path, srv.key);
    }

    /* Another team sees no such data set. */
    assert_int_equal(th_http(&srv, "POST", "/v1/teams", srv.key, NULL, "{\"name\": \"rivals\"}", 18, &r), 0);
    assert_int_equal(r.status, 201);
    char rival[128];
    snprintf(rival, sizeof rival, "%s", th_json_str(&r, "admin_key.key"));
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/datasets/%s/samples/0", id);
    expect_404(path, rival);
    expect_404("/v1/datasets/00000000-0000-0000-0000-000000000000/samples/0", srv.key);
    expect_404("/v1/datasets/not-a-uuid/samples/0", srv.key);
    cJSON_Delete(pv);
}

static void tables_have_no_samples(void **state)
{
    size_t len;
    char *csv = th_read_file("tests/data/tabular/iris.csv", &len);
    assert_non_null(csv);
    char path[256];
    snprintf(path, sizeof path, "/v1/datasets/%s/samples/0", upload("iris", "text/csv", csv, len));
    free(csv);
    expect_404(path, srv.key);
}

/* A 300x200 RGB image comes back 128x85, the area average of the original. */
static void large_images_are_scaled_down(void **state)
{
    enum { W = 300, H = 200 };
    uint16_t *s = malloc(sizeof *s * W * H * 3);
    assert_non_null(s);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            s[(y * W + x) * 3 + 0] = (uint16_t)(x * 255 / W);
            s[(y * W + x) * 3 + 1] = (uint16_t)(y * 255 / H);
            s[(y * W + x) * 3 + 2] = (uint16_t)((x ^ y) & 0xff);
        }
    struct imgfix_buf png = imgfix_png(W, H, 2 /* RGB */, 8, 0, s, NULL, 0, NULL, 0);
    free(s);
    const char *names[] = {"big/one.png", "big/two.png"};
    struct imgfix_buf files[] = {png, png};
    struct imgfix_buf tar = imgfix_archive("tar.gz", 2, names, files);
    char path[256];
    snprintf(path, sizeof path, "/v1/datasets/%s/samples/1",
             upload("big", "application/gzip", tar.p, tar.len));
    struct image_pixels got, orig, want;
    assert_int_equal(get_sample(path, srv.key, NULL, &got, NULL, 0), 200);
    assert_int_equal(got.width, 128);
    assert_int_equal(got.height, 85);
    assert_int_equal(got.channels, 3);
    char msg[256];
    assert_int_equal(image_decode(png.p, png.len, NULL, NULL, &orig, msg, sizeof msg), 0);
    assert_int_equal(image_resize_area(&orig, 128, &want), 0);
    assert_same_pixels(&got, &want);
    image_pixels_free(&got);
    image_pixels_free(&orig);
    image_pixels_free(&want);
    snprintf(strrchr(path, '/'), 16, "/2");
    expect_404(path, srv.key);
    free(tar.p);
    free(png.p);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX pair of 20 images of 3x4 (pixel i*10 + r*4 + c), labels i % 3:
 * classes 0, 1, 2 of 7, 7 and 6 images, 5 samples each; sample 5k + j is
 * image 3j + k. */
static void idx_samples_are_the_first_of_each_label(void **state)
{
    enum { N = 20, R = 3, C = 4 };
    struct imgfix_buf im = {malloc(16 + N * R * C), 16 + N * R * C};
    struct imgfix_buf lb = {malloc(8 + N), 8 + N};
    assert_non_null(im.p);
    assert_non_null(lb.p);
    put_be32(im.p, 0x803);
    put_be32(im.p + 4, N);
    put_be32(im.p + 8, R);
    put_be32(im.p + 12, C);
    put_be32(lb.p, 0x801);
    put_be32(lb.p + 4, N);
    for (int i = 0; i < N; i++) {
        lb.p[8 + i] = (unsigned char)(i % 3);
        for (int p = 0; p < R * C; p++) im.p[16 + i * R * C + p] = (unsigned char)(i * 10 + p);
    }
    const char *names[] = {"mnist/train-images-idx3-ubyte", "mnist/train-labels-idx1-ubyte"};
    struct imgfix_buf files[] = {im, lb};
    struct imgfix_buf tar = imgfix_archive("tar", 2, names, files);
    char id[64], path[256];
    snprintf(id, sizeof id, "%s", upload("idx", "application/x-tar", tar.p, tar.len));

    snprintf(path, sizeof path, "/v1/datasets/%s/preview", id);
    struct th_resp r;
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *pv = th_json(&r);
    th_resp_free(&r);
    cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(pv, "classes")) {
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "sample_urls")), 5);
        k++;
    }
    assert_int_equal(k, 3);
    cJSON_Delete(pv);

    for (int n = 0; n < 15; n++) {
        struct image_pixels got;
        snprintf(path, sizeof path, "/v1/datasets/%s/samples/%d", id, n);
        assert_int_equal(get_sample(path, srv.key, NULL, &got, NULL, 0), 200);
        assert_int_equal(got.width, C);
        assert_int_equal(got.height, R);
        assert_int_equal(got.channels, 1);
        int i = 3 * (n % 5) + n / 5;
        assert_memory_equal(got.data, im.p + 16 + i * R * C, R * C);
        image_pixels_free(&got);
    }
    snprintf(path, sizeof path, "/v1/datasets/%s/samples/15", id);
    expect_404(path, srv.key);
    free(tar.p);
    free(im.p);
    free(lb.p);
}

/* The body of GET path: status, and a copy of the bytes (caller frees). */
static long get_bytes(const char *path, char **body, size_t *len)
{
    struct th_resp r;
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    long status = r.status;
    *len = r.body_len;
    *body = malloc(r.body_len + 1);
    assert_non_null(*body);
    memcpy(*body, r.body, r.body_len);
    if (status >= 400) {
        assert_non_null(strstr(r.content_type, "application/problem+json"));
        fprintf(stderr, "GET %s -> %ld %s\n", path, status, r.body);
    }
    th_resp_free(&r);
    return status;
}

static void thumbnails_are_kept_and_need_no_second_walk(void **state)
{
    /* Two classes of three 16x16 grey images, each its own shade. */
    enum { N = 6, S = 16 };
    const char *names[N] = {"a/1.png", "a/2.png", "a/3.png", "b/1.png", "b/2.png", "b/3.png"};
    struct imgfix_buf files[N];
    uint16_t px[S * S];
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < S * S; k++) px[k] = (uint16_t)((i * 40 + k) & 0xff);
        files[i] = imgfix_png(S, S, 0 /* grey */, 8, 0, px, NULL, 0, NULL, 0);
    }
    struct imgfix_buf zip = imgfix_archive("zip", N, names, files);
    char id[64], path[256];
    snprintf(id, sizeof id, "%s", upload("kept", "application/zip", zip.p, zip.len));
    free(zip.p);
    for (int i = 0; i < N; i++) free(files[i].p);

    /* Samples 0, 1 and 3 made once, and again: the same bytes. */
    static const int made[] = {0, 1, 3};
    char *first[3];
    size_t first_len[3];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/v1/datasets/%s/samples/%d", id, made[i]);
        assert_int_equal(get_bytes(path, &first[i], &first_len[i]), 200);
        char *again;
        size_t again_len;
        assert_int_equal(get_bytes(path, &again, &again_len), 200);
        assert_int_equal(again_len, first_len[i]);
        assert_memory_equal(again, first[i], again_len);
        free(again);
    }

    /* Overwrite the stored archive (its large object) with zeros. */
    PGconn *pg = th_db_connect(&db);
    assert_non_null(pg);
    const char *p[1] = {id};
    PGresult *res = PQexecParams(pg,
        "SELECT lo_put(b.lo, 0, decode(repeat('00', length(lo_get(b.lo))), 'hex'))"
        "  FROM datasets d JOIN blobs b ON b.id = d.blob_id WHERE d.id = $1",
        1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) fail_msg("lo_put: %s", PQerrorMessage(pg));
    assert_int_equal(PQntuples(res), 1);
    PQclear(res);
    PQfinish(pg);

    /* What was made is served from memory, byte for byte ... */
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/v1/datasets/%s/samples/%d", id, made[i]);
        char *now;
        size_t now_len;
        assert_int_equal(get_bytes(path, &now, &now_len), 200);
        assert_int_equal(now_len, first_len[i]);
        assert_memory_equal(now, first[i], now_len);
        free(now);
        free(first[i]);
    }
    /* ... and a sample never made would need the archive, which is gone. */
    snprintf(path, sizeof path, "/v1/datasets/%s/samples/2", id);
    char *broken;
    size_t broken_len;
    assert_int_equal(get_bytes(path, &broken, &broken_len), 500);
    free(broken);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digits_samples_are_the_archives_images),
        cmocka_unit_test(tables_have_no_samples),
        cmocka_unit_test(large_images_are_scaled_down),
        cmocka_unit_test(idx_samples_are_the_first_of_each_label),
        cmocka_unit_test(thumbnails_are_kept_and_need_no_second_walk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

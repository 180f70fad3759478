/* test_imagedata.c - image data sets through the trainers: lib/imageset's
 * visitor hands over the profile's images and classes (flat archives,
 * IDX pairs, a callback that stops); trainers/imagedata loads an archive
 * into pixel features in the profile's class order, resizes and converts
 * channels, skips unreadable images, refuses hostile archives and data
 * over its memory limit; podium-train's driver cross-validates knn and
 * mlp on digits8x8 and writes an image model file; and that model
 * predicts single images (a wrong-size one resized as in training) and
 * archives, with clean errors for damaged images, CSV and zip bombs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <png.h>
#include <zlib.h>

#include "lib/imageset.h"
#include "trainers/driver.h"
#include "trainers/imagedata.h"
#include "tests/support/imgfix.h"

#define DIGITS "tests/data/images/digits8x8.zip"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* A w x h grey PNG whose pixels are v0, v0+step, ... */
static struct imgfix_buf grey_png(uint32_t w, uint32_t h, int v0, int step)
{
    uint16_t s[64 * 64];
    for (uint32_t i = 0; i < w * h; i++) s[i] = (uint16_t)((v0 + (int)i * step) & 0xff);
    return imgfix_png(w, h, PNG_COLOR_TYPE_GRAY, 8, 0, s, NULL, 0, NULL, 0);
}

/* ---- loading ---------------------------------------------------------- */

static void loads_digits_in_profile_order(void **state)
{
    (void)state;
    struct imagedata d;
    char err[512];
    struct imagedata_opts o = {.flags = IMAGEDATA_FEATURES | IMAGEDATA_RAW | IMAGEDATA_NAMES};
    int rc = imagedata_load_file(DIGITS, &o, &d, err, sizeof err);
    if (rc != 0) fail_msg("%s", err);
    assert_int_equal(d.n, 1797);
    assert_int_equal(d.channels, 1);       /* all grey: 1 channel by default */
    assert_int_equal(d.height, 8);
    assert_int_equal(d.width, 8);
    assert_int_equal(d.dim, 64);
    assert_int_equal(d.unreadable, 0);
    /* the classes are the profile's, in its order, and counts agree */
    cJSON *p = NULL;
    assert_int_equal(imageset_profile_file(DIGITS, NULL, &p, NULL), 0);
    cJSON *cl = cJSON_GetObjectItem(p, "classes");
    assert_int_equal(cJSON_GetArraySize(cl), d.n_classes);
    assert_int_equal(d.n_classes, 10);
    size_t count[10] = {0};
    for (size_t i = 0; i < d.n; i++) {
        assert_true(d.label[i] >= 0 && d.label[i] < 10);
        count[d.label[i]]++;
        /* the label is the class folder of the entry */
        char folder[16];
        snprintf(folder, sizeof folder, "%.*s", (int)strcspn(d.names[i], "/"), d.names[i]);
        assert_string_equal(folder, d.classes[d.label[i]]);
        /* same size: the features are the raw pixels / 255 */
        assert_int_equal(d.raw[i].width, 8);
        assert_int_equal(d.raw[i].channels, 1);
        for (size_t j = 0; j < 64; j++)
            assert_true(fabsf(d.x[i * 64 + j] - d.raw[i].data[j] / 255.0f) < 1e-6f);
    }
    for (int k = 0; k < 10; k++) {
        cJSON *c = cJSON_GetArrayItem(cl, k);
        assert_string_equal(cJSON_GetObjectItem(c, "name")->valuestring, d.classes[k]);
        assert_int_equal((size_t)cJSON_GetObjectItem(c, "count")->valuedouble, count[k]);
    }
    cJSON_Delete(p);
    imagedata_free(&d);
    imagedata_free(&d);   /* zeroed: fine */
}

static void resizes_and_converts_channels(void **state)
{
    (void)state;
    struct imagedata d;
    char err[512];
    struct imagedata_opts o = {.channels = 3, .height = 6, .width = 5, .flags = IMAGEDATA_FEATURES};
    assert_int_equal(imagedata_load_file(DIGITS, &o, &d, err, sizeof err), 0);
    assert_int_equal(d.dim, 90);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < d.n; i++) {
        const float *x = d.x + i * d.dim;
        for (size_t j = 0; j < 30; j++) {
            /* grey repeated in the three planes */
            assert_true(x[j] == x[30 + j] && x[j] == x[60 + j]);
            if (x[j] < lo) lo = x[j];
            if (x[j] > hi) hi = x[j];
        }
    }
    assert_true(lo >= 0 && hi <= 1 && hi > 0.9f);
    imagedata_free(&d);

    /* over the memory limit: refused, with the numbers */
    o.max_bytes = 10000;
    assert_int_equal(imagedata_load_file(DIGITS, &o, &d, err, sizeof err), IMAGEDATA_ELIMIT);
    assert_non_null(strstr(err, "10000 bytes"));
    assert_non_null(strstr(err, "3 x 6 x 5"));
    assert_null(d.x);
    o.max_bytes = 0;
    o.channels = 2;
    assert_int_equal(imagedata_load_file(DIGITS, &o, &d, err, sizeof err), IMAGEDATA_EDATA);
}

static void unreadable_skipped_hostile_refused(void **state)
{
    (void)state;
    struct imgfix_buf img[4] = {grey_png(4, 4, 0, 10), grey_png(4, 4, 5, 3), grey_png(4, 4, 9, 7),
                                grey_png(6, 2, 1, 1)};
    struct imgfix_buf bad = {malloc(40), 40};
    memcpy(bad.p, img[0].p, 40);           /* a PNG cut short */
    const char *names[] = {"cats/1.png", "cats/2.png", "dogs/1.png", "dogs/2.png", "dogs/3.png"};
    struct imgfix_buf data[5] = {img[0], bad, img[1], img[2], img[3]};
    struct imgfix_buf z = imgfix_archive("tar.gz", 5, names, data);
    imgfix_write(tmp_path("pets.tar.gz"), &z);
    struct imagedata d;
    char err[512];
    struct imagedata_opts o = {.flags = IMAGEDATA_FEATURES | IMAGEDATA_NAMES};
    assert_int_equal(imagedata_load_file(tmp_path("pets.tar.gz"), &o, &d, err, sizeof err), 0);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.unreadable, 1);
    assert_int_equal(d.height, 4);         /* the most common size */
    assert_string_equal(d.classes[0], "cats");
    assert_int_equal(d.label[0], 0);
    assert_int_equal(d.label[1], 1);
    assert_string_equal(d.names[3], "dogs/3.png");
    imagedata_free(&d);
    free(z.p);

    /* one class only: not a classification data set */
    struct imgfix_buf one[2] = {img[0], img[1]};
    const char *one_names[] = {"cats/1.png", "cats/2.png"};
    z = imgfix_archive("zip", 2, one_names, one);
    imgfix_write(tmp_path("one.zip"), &z);
    assert_int_equal(imagedata_load_file(tmp_path("one.zip"), &o, &d, err, sizeof err), IMAGEDATA_EDATA);
    assert_non_null(strstr(err, "1 class"));
    free(z.p);

    /* a path that escapes the archive fails the whole load */
    const char *evil[] = {"cats/1.png", "../dogs/1.png"};
    z = imgfix_archive("tar", 2, evil, one);
    imgfix_write(tmp_path("evil.tar"), &z);
    assert_int_equal(imagedata_load_file(tmp_path("evil.tar"), &o, &d, err, sizeof err), IMAGEDATA_EARCHIVE);
    assert_non_null(strstr(err, ".."));
    free(z.p);
    for (int i = 0; i < 4; i++) free(img[i].p);
    free(bad.p);
}

/* IDX: images file gzip'd, labels raw, in a tar */
static void idx_pair(void **state)
{
    (void)state;
    unsigned char im[16 + 3 * 6], lb[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 2};
    unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3};
    memcpy(im, hdr, 16);
    for (int i = 0; i < 18; i++) im[16 + i] = (unsigned char)(i * 15);
    uLongf zl = compressBound(sizeof im) + 64;
    unsigned char *gz = malloc(zl);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = im;
    zs.avail_in = sizeof im;
    zs.next_out = gz;
    zs.avail_out = (uInt)zl;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    struct imgfix_buf files[2] = {{gz, zs.total_out}, {lb, sizeof lb}};
    deflateEnd(&zs);
    const char *names[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte"};
    struct imgfix_buf t = imgfix_archive("tar", 2, names, files);
    imgfix_write(tmp_path("idx.tar"), &t);
    struct imagedata d;
    char err[512];
    struct imagedata_opts o = {.flags = IMAGEDATA_FEATURES | IMAGEDATA_RAW | IMAGEDATA_NAMES};
    if (imagedata_load_file(tmp_path("idx.tar"), &o, &d, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.height, 2);
    assert_int_equal(d.width, 3);
    assert_int_equal(d.n_classes, 2);
    assert_string_equal(d.classes[0], "0");
    assert_string_equal(d.classes[1], "2");
    assert_int_equal(d.label[0], 1);
    assert_int_equal(d.label[1], 0);
    assert_int_equal(d.label[2], 1);
    assert_string_equal(d.names[1], "train-images-idx3-ubyte.gz#1");
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 6; j++) {
            assert_int_equal(d.raw[i].data[j], (i * 6 + j) * 15);
            assert_true(fabsf(d.x[i * 6 + j] - (float)((i * 6 + j) * 15) / 255.0f) < 1e-6f);
        }
    imagedata_free(&d);
    free(gz);
    free(t.p);
}

struct seen {
    int n, unreadable, root, stop_at;
};

static int count_item(void *ctx, const struct imageset_item *it)
{
    struct seen *s = ctx;
    s->n++;
    if (!it->pixels) {
        assert_non_null(it->error);
        s->unreadable++;
    }
    if (!it->class_name) s->root++;
    return s->stop_at && s->n >= s->stop_at ? -1 : 0;
}

static void visitor_flat_and_stop(void **state)
{
    (void)state;
    struct imgfix_buf a = grey_png(3, 3, 0, 1), b = grey_png(3, 3, 1, 1);
    struct imgfix_buf bad = {(unsigned char *)strdup("\x89PNG\r\n\x1a\nnope"), 12};
    const char *names[] = {"a.png", "b.png", "sub/c.png", "d.png"};
    struct imgfix_buf data[4] = {a, b, a, bad};
    struct imgfix_buf z = imgfix_archive("zip", 4, names, data);
    struct seen s = {0};
    struct imageset_error e;
    cJSON *p = NULL;
    assert_int_equal(imageset_visit_buffer(z.p, z.len, NULL, IMAGESET_VISIT_FLAT, count_item, &s,
                                           &p, &e), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.root, 3);
    assert_int_equal(s.unreadable, 1);
    assert_int_equal(cJSON_GetObjectItem(p, "images")->valuedouble, 3);
    cJSON_Delete(p);
    /* without FLAT, root images are skipped as when profiling */
    memset(&s, 0, sizeof s);
    assert_int_equal(imageset_visit_buffer(z.p, z.len, NULL, 0, count_item, &s, NULL, &e), 0);
    assert_int_equal(s.n, 1);
    /* a callback that says stop */
    memset(&s, 0, sizeof s);
    s.stop_at = 2;
    assert_int_equal(imageset_visit_buffer(z.p, z.len, NULL, IMAGESET_VISIT_FLAT, count_item, &s,
                                           NULL, &e), IMAGESET_ESTOPPED);
    assert_int_equal(s.n, 2);
    assert_int_equal(imageset_visit(NULL, NULL, 0, count_item, &s, NULL, &e), IMAGESET_EARG);
    free(a.p);
    free(b.p);
    free(bad.p);
    free(z.p);
}

/* ---- training and prediction ------------------------------------------ */

static int train(const char *spec_text, struct driver_result *res, struct driver_error *e)
{
    cJSON *j = cJSON_Parse(spec_text);
    assert_non_null(j);
    struct driver_spec s;
    int rc = driver_spec_parse(j, &s, e);
    cJSON_Delete(j);
    if (rc == DRIVER_OK) {
        struct driver_opts o = {0};
        rc = driver_run(&s, &o, res, e);
    }
    driver_spec_free(&s);
    return rc;
}

static double holdout_accuracy(const struct driver_result *res)
{
    const cJSON *acc = cJSON_GetObjectItem(cJSON_GetObjectItem(res->result, "metrics"), "accuracy");
    return cJSON_GetObjectItem(acc, "mean")->valuedouble;
}

struct preds {
    int n, errors, resized;
    int cls[4];
    double p0[4];
    char error[256];
};

static int keep_pred(void *ctx, const struct imagedata_pred *p)
{
    struct preds *s = ctx;
    if (p->error) {
        s->errors++;
        snprintf(s->error, sizeof s->error, "%s", p->error);
    } else if (s->n < 4) {
        s->cls[s->n] = p->cls;
        s->p0[s->n] = p->proba[p->cls];
    }
    s->resized += p->resized;
    s->n++;
    return 0;
}

static void driver_knn_mlp_and_predict(void **state)
{
    (void)state;
    struct driver_result res;
    struct driver_error e;
    char spec[1024];
    snprintf(spec, sizeof spec,
             "{\"kind\": \"images\", \"data\": \"%s\", \"model\": {\"family\": \"knn\"},"
             " \"cv\": {\"holdout\": 0.2, \"seed\": 3}, \"threads\": 2, \"artifact\": \"%s\"}",
             DIGITS, tmp_path("knn.pdm"));
    if (train(spec, &res, &e) != DRIVER_OK) fail_msg("%s", e.message);
    double acc = holdout_accuracy(&res);
    assert_true(acc >= 0.95);
    assert_string_equal(cJSON_GetObjectItem(res.result, "metric")->valuestring, "accuracy");
    assert_int_equal(cJSON_GetObjectItem(res.result, "n_features")->valuedouble, 64);
    driver_result_free(&res);

    /* the model file remembers the image preprocessing */
    struct modelfile m;
    char err[512];
    assert_int_equal(modelfile_load(tmp_path("knn.pdm"), &m, err, sizeof err), 0);
    assert_true(imagedata_is_image_model(&m));
    assert_string_equal(cJSON_GetObjectItem(m.header, "input")->valuestring, "images");
    cJSON *im = cJSON_GetObjectItem(m.header, "image");
    assert_int_equal(cJSON_GetObjectItem(im, "height")->valuedouble, 8);
    assert_int_equal(cJSON_GetObjectItem(im, "channels")->valuedouble, 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m.header, "classes")), 10);
    assert_int_equal(m.schema.n_cols, 64);

    /* one digit as a PNG, and the same digit at twice the size */
    struct imagedata d;
    struct imagedata_opts lo = {.flags = IMAGEDATA_RAW};
    assert_int_equal(imagedata_load_file(DIGITS, &lo, &d, err, sizeof err), 0);
    struct preds P = {0};
    struct imagedata_predict_opts po = {0};
    for (int i = 0; i < 2; i++) {
        size_t at = (size_t)i * 900;
        uint16_t s8[64], s16[256];
        for (int j = 0; j < 64; j++) s8[j] = d.raw[at].data[j];
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) s16[y * 16 + x] = s8[(y / 2) * 8 + x / 2];
        struct imgfix_buf b8 = imgfix_png(8, 8, PNG_COLOR_TYPE_GRAY, 8, 0, s8, NULL, 0, NULL, 0);
        struct imgfix_buf b16 = imgfix_png(16, 16, PNG_COLOR_TYPE_GRAY, 8, 0, s16, NULL, 0, NULL, 0);
        memset(&P, 0, sizeof P);
        assert_int_equal(imagedata_predict_buffer(&m, b8.p, b8.len, "a.png", &po, keep_pred, &P,
                                                  err, sizeof err), 0);
        assert_int_equal(imagedata_predict_buffer(&m, b16.p, b16.len, "b.png", &po, keep_pred, &P,
                                                  err, sizeof err), 0);
        assert_int_equal(P.n, 2);
        assert_int_equal(P.resized, 1);
        assert_int_equal(P.cls[0], d.label[at]);
        /* a 2x nearest-neighbour upscale shrinks back exactly */
        assert_int_equal(P.cls[1], P.cls[0]);
        assert_true(fabs(P.p0[1] - P.p0[0]) < 1e-9);
        /* in an archive, an image over the per-image limit is one error, not a failure */
        const char *an[] = {"x/a.png", "x/b.png"};
        struct imgfix_buf ab[2] = {b8, b16};
        struct imgfix_buf arc = imgfix_archive("zip", 2, an, ab);
        struct imagedata_predict_opts small = {.image = {.max_pixels = 100}};
        memset(&P, 0, sizeof P);
        assert_int_equal(imagedata_predict_buffer(&m, arc.p, arc.len, NULL, &small, keep_pred, &P,
                                                  err, sizeof err), 0);
        assert_int_equal(P.n, 2);
        assert_int_equal(P.errors, 1);
        assert_non_null(strstr(P.error, "over the limit"));
        assert_int_equal(P.cls[0], d.label[at]);
        free(arc.p);
        free(b8.p);
        free(b16.p);
    }
    imagedata_free(&d);

    /* the archive itself: one answer per image */
    memset(&P, 0, sizeof P);
    assert_int_equal(imagedata_predict_file(&m, DIGITS, &po, keep_pred, &P, err, sizeof err), 0);
    assert_int_equal(P.n, 1797);
    assert_int_equal(P.errors, 0);

    /* damaged image, CSV, a zip bomb, too many images, a path that escapes */
    struct imgfix_buf g = grey_png(8, 8, 0, 3);
    assert_int_equal(imagedata_predict_buffer(&m, g.p, g.len / 2, "cut.png", &po, keep_pred, &P,
                                              err, sizeof err), IMAGEDATA_EIMAGE);
    assert_non_null(strstr(err, "cut.png"));
    const char *csv = "a,b\n1,2\n";
    assert_int_equal(imagedata_predict_buffer(&m, csv, strlen(csv), NULL, &po, keep_pred, &P, err,
                                              sizeof err), IMAGEDATA_EARCHIVE);
    size_t big = 40u << 20;
    struct imgfix_buf zero = {calloc(1, big), big};
    const char *bomb_names[] = {"x/zeros.png"};
    struct imgfix_buf bomb = imgfix_archive("zip", 1, bomb_names, &zero);
    assert_true(bomb.len < big / 200);
    memset(&P, 0, sizeof P);
    assert_int_equal(imagedata_predict_buffer(&m, bomb.p, bomb.len, NULL, &po, keep_pred, &P, err,
                                              sizeof err), IMAGEDATA_EARCHIVE);
    assert_non_null(strstr(err, "zip bomb"));
    assert_int_equal(P.n, 0);
    free(zero.p);
    free(bomb.p);
    const char *two_names[] = {"x/1.png", "../2.png"};
    struct imgfix_buf two[2] = {g, g};
    struct imgfix_buf evil = imgfix_archive("tar", 2, two_names, two);
    assert_int_equal(imagedata_predict_buffer(&m, evil.p, evil.len, NULL, &po, keep_pred, &P, err,
                                              sizeof err), IMAGEDATA_EARCHIVE);
    free(evil.p);
    po.max_images = 100;
    assert_int_equal(imagedata_predict_file(&m, DIGITS, &po, keep_pred, &P, err, sizeof err),
                     IMAGEDATA_ELIMIT);
    free(g.p);
    modelfile_free(&m);

    /* mlp, holdout */
    snprintf(spec, sizeof spec,
             "{\"kind\": \"images\", \"data\": \"%s\", \"image\": {\"height\": 8, \"width\": 8},"
             " \"model\": {\"family\": \"mlp\"}, \"cv\": {\"holdout\": 0.2, \"seed\": 3}, \"threads\": 2}",
             DIGITS);
    if (train(spec, &res, &e) != DRIVER_OK) fail_msg("%s", e.message);
    assert_true(holdout_accuracy(&res) >= 0.93);
    assert_int_equal(res.final.schema.image_channels, 1);
    driver_result_free(&res);
}

static void image_spec_errors(void **state)
{
    (void)state;
    struct driver_result res;
    struct driver_error e;
    char spec[512];
    snprintf(spec, sizeof spec, "{\"kind\": \"images\", \"data\": \"%s\", \"image\": {\"channels\": 2},"
             " \"model\": {\"family\": \"knn\"}}", DIGITS);
    assert_int_equal(train(spec, &res, &e), DRIVER_EBADSPEC);
    assert_string_equal(e.field, "image.channels");
    snprintf(spec, sizeof spec, "{\"kind\": \"images\", \"data\": \"%s\", \"task\": \"regression\","
             " \"model\": {\"family\": \"knn\"}}", DIGITS);
    assert_int_equal(train(spec, &res, &e), DRIVER_EBADSPEC);
    assert_string_equal(e.field, "task");
    snprintf(spec, sizeof spec, "{\"kind\": \"images\", \"data\": \"tests/data/tabular/iris.csv\","
             " \"model\": {\"family\": \"knn\"}}");
    assert_int_equal(train(spec, &res, &e), DRIVER_EBADDATA);
    assert_non_null(strstr(e.message, "not a zip"));
    driver_result_free(&res);
    snprintf(spec, sizeof spec, "{\"data\": \"%s\", \"image\": {\"height\": 8},"
             " \"target\": \"x\", \"model\": {\"family\": \"knn\"}}", DIGITS);
    assert_int_equal(train(spec, &res, &e), DRIVER_EBADSPEC);
    assert_string_equal(e.field, "image");
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("PODIUM_TEST_TMP") ? getenv("PODIUM_TEST_TMP") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/imagedata-%d", base, (int)getpid());
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_digits_in_profile_order),
        cmocka_unit_test(resizes_and_converts_channels),
        cmocka_unit_test(unreadable_skipped_hostile_refused),
        cmocka_unit_test(idx_pair),
        cmocka_unit_test(visitor_flat_and_stop),
        cmocka_unit_test(driver_knn_mlp_and_predict),
        cmocka_unit_test(image_spec_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

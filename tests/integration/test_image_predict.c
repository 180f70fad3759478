/* test_image_predict.c - an image model end to end: podium-train on the
 * digits8x8 archive (knn, holdout), podium-predict on one PNG, on a
 * wrong-size PNG (resized, said on stderr), on the archive and on a
 * damaged PNG; then the same model recorded as a succeeded trial (as a
 * scheduler records one) and asked through POST /v1/models/{id}/predict
 * with image/png, application/zip and Accept: text/csv, agreeing with
 * podium-predict; rows sent to it, and an image sent to a table model,
 * are 415; a path-traversal archive, a zip bomb and a damaged image are
 * 422 problem+json. */
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

#include "trainers/imagedata.h"
#include "tests/support/harness.h"
#include "tests/support/imgfix.h"

#define DIGITS "tests/data/images/digits8x8.zip"

static struct th_db db;
static struct th_server srv;
static char tmp[300], img_model[64], tab_model[64];
static struct imgfix_buf png8, png16, cut;
static int png_label;

static const char *tp(const char *name)
{
    static char b[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(b[k], sizeof b[k], "%s/%s", tmp, name);
    return b[k];
}

/* A trial of family fam with the model file at path, in job; its id into out. */
static int insert_trial(const char *job, int seq, const char *fam, const char *path, char *out)
{
    PGconn *c = th_db_connect(&db);
    if (c == NULL) return -1;
    PQclear(PQexec(c, "BEGIN"));
    Oid lo = lo_import(c, path);
    char lo_s[16], seq_s[8];
    snprintf(lo_s, sizeof lo_s, "%u", lo);
    snprintf(seq_s, sizeof seq_s, "%d", seq);
    const char *p[4] = {job, lo_s, seq_s, fam};
    PGresult *res = PQexecParams(c,
        "INSERT INTO trials (job_id, team_id, seq, state, family, params, score, score_std,"
        " metrics, fit_seconds, predict_us_per_row, model_bytes, artifact_lo, artifact_sha256,"
        " finished_at)"
        " SELECT id, team_id, $3::int, 'succeeded', $4, '{}', 0.9, 0.01,"
        "  '{\"accuracy\": {\"mean\": 0.9}}', 0.01, 1.5, 1000, $2::oid, '\\x00'::bytea, now()"
        " FROM jobs WHERE id = $1 RETURNING id", 4, NULL, p, NULL, NULL, 0);
    int ok = lo != InvalidOid && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok) snprintf(out, 64, "%s", PQgetvalue(res, 0, 0));
    else fprintf(stderr, "%s", PQerrorMessage(c));
    PQclear(res);
    PQclear(PQexec(c, ok ? "COMMIT" : "ROLLBACK"));
    PQfinish(c);
    return ok ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "%s/image-predict-%d",
             getenv("PODIUM_TEST_TMP") ? getenv("PODIUM_TEST_TMP") : "/tmp", (int)getpid());
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
    if (system(cmd) != 0) return -1;
    char spec[1024];
    snprintf(spec, sizeof spec,
             "{\"kind\": \"images\", \"data\": \"%s\", \"model\": {\"family\": \"knn\"},"
             " \"cv\": {\"holdout\": 0.2, \"seed\": 1}, \"threads\": 1, \"artifact\": \"%s\"}\n",
             DIGITS, tp("digits.pdm"));
    th_write_file(tp("digits.json"), spec);
    if (th_run("podium-train", NULL, NULL, tp("digits.json"), tp("digits.events"), tp("digits.err")) != 0)
        return -1;
    snprintf(spec, sizeof spec,
             "{\"data\": \"tests/data/tabular/iris.csv\", \"target\": \"species\","
             " \"model\": {\"family\": \"linear\"}, \"cv\": {\"folds\": 3}, \"artifact\": \"%s\"}\n",
             tp("iris.pdm"));
    th_write_file(tp("iris.json"), spec);
    if (th_run("podium-train", NULL, NULL, tp("iris.json"), tp("iris.events"), tp("iris.err")) != 0)
        return -1;

    /* digit 0 of the archive as a PNG, at its size and at twice it */
    struct imagedata d;
    struct imagedata_opts o = {.flags = IMAGEDATA_RAW};
    char err[256];
    if (imagedata_load_file(DIGITS, &o, &d, err, sizeof err) != 0) return -1;
    uint16_t s8[64], s16[256];
    for (int j = 0; j < 64; j++) s8[j] = d.raw[0].data[j];
    for (int j = 0; j < 256; j++) s16[j] = s8[(j / 32) * 8 + (j % 16) / 2];
    png_label = d.label[0];
    imagedata_free(&d);
    png8 = imgfix_png(8, 8, PNG_COLOR_TYPE_GRAY, 8, 0, s8, NULL, 0, NULL, 0);
    png16 = imgfix_png(16, 16, PNG_COLOR_TYPE_GRAY, 8, 0, s16, NULL, 0, NULL, 0);
    cut.len = png8.len - 10;
    cut.p = malloc(cut.len);
    memcpy(cut.p, png8.p, cut.len);
    imgfix_write(tp("digit.png"), &png8);
    imgfix_write(tp("digit16.png"), &png16);
    imgfix_write(tp("cut.png"), &cut);

    if (th_db_create(&db) < 0 || th_server_start(&srv, &db, NULL) < 0) return -1;
    /* A job (on a CSV data set: the model's data set does not matter to
     * predict) holding both models as succeeded trials. */
    char ds[64];
    if (th_upload_csv(&srv, "iris", "tests/data/tabular/iris.csv", ds, sizeof ds) != 0) return -1;
    char body[200];
    snprintf(body, sizeof body, "{\"dataset_id\": \"%s\", \"metric\": \"accuracy\"}", ds);
    char job[64];
    snprintf(job, sizeof job, "%s", th_post_job(&srv, body));
    if (insert_trial(job, 1, "knn", tp("digits.pdm"), img_model) != 0 ||
        insert_trial(job, 2, "linear", tp("iris.pdm"), tab_model) != 0)
        return -1;
    PGconn *c = th_db_connect(&db);
    PQclear(PQexec(c, "UPDATE jobs SET state = 'succeeded', started_at = now(), finished_at = now()"));
    PQfinish(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = th_server_stop(&srv);
    th_db_drop(&db);
    free(png8.p);
    free(png16.p);
    free(cut.p);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) rc = -1;
    return rc == 0 ? 0 : -1;
}

/* The lines of a file (static, at most 2000), the count returned. */
static int lines_of(const char *path, char ***out)
{
    static char *buf;
    static char *v[2000];
    free(buf);
    buf = th_read_file(path, NULL);
    assert_non_null(buf);
    int n = 0;
    for (char *s = strtok(buf, "\n"); s && n < 2000; s = strtok(NULL, "\n")) v[n++] = s;
    *out = v;
    return n;
}

static void cli_png_archive_and_errors(void **state)
{
    (void)state;
    char **l;
    assert_int_equal(th_run("podium-predict", tp("digits.pdm"), tp("digit.png"), NULL, tp("o.csv"), tp("e.txt")), 0);
    assert_int_equal(lines_of(tp("o.csv"), &l), 2);
    assert_string_equal(l[0], "name,prediction,proba_0,proba_1,proba_2,proba_3,proba_4,proba_5,"
                              "proba_6,proba_7,proba_8,proba_9,error");
    char want[32];
    snprintf(want, sizeof want, "digit.png,%d,", png_label);
    assert_memory_equal(l[1], want, strlen(want));
    assert_int_equal(l[1][strlen(l[1]) - 1], ',');   /* no error */

    /* twice the size: the same answer, and a note */
    char first[512];
    snprintf(first, sizeof first, "%s", strchr(l[1], ','));
    assert_int_equal(th_run("podium-predict", tp("digits.pdm"), tp("digit16.png"), NULL, tp("o.csv"), tp("e.txt")), 0);
    assert_int_equal(lines_of(tp("o.csv"), &l), 2);
    assert_string_equal(strchr(l[1], ','), first);
    char *e = th_read_file(tp("e.txt"), NULL);
    assert_non_null(strstr(e, "16x16, resized to the model's 8x8"));
    free(e);

    /* the archive: one line per image, folder = prediction nearly always */
    assert_int_equal(th_run("podium-predict", tp("digits.pdm"), DIGITS, NULL, tp("all.csv"), tp("e.txt")), 0);
    int n = lines_of(tp("all.csv"), &l);
    assert_int_equal(n, 1798);
    int right = 0;
    for (int i = 1; i < n; i++) right += l[i][0] == l[i][strcspn(l[i], ",") + 1];
    assert_true(right > 1700);

    /* a damaged PNG, rows instead of images, an image to a table model */
    assert_int_equal(th_run("podium-predict", tp("digits.pdm"), tp("cut.png"), NULL, tp("o.csv"), tp("e.txt")), 2);
    e = th_read_file(tp("e.txt"), NULL);
    assert_non_null(strstr(e, "cut.png: png:"));
    free(e);
    assert_int_equal(th_run("podium-predict", tp("digits.pdm"), "tests/data/tabular/iris.csv", NULL, tp("o.csv"), tp("e.txt")), 2);
    e = th_read_file(tp("e.txt"), NULL);
    assert_non_null(strstr(e, "PNG or JPEG"));
    free(e);
    assert_int_equal(th_run("podium-predict", tp("iris.pdm"), tp("digit.png"), NULL, tp("o.csv"), tp("e.txt")), 2);
    e = th_read_file(tp("e.txt"), NULL);
    assert_non_null(strstr(e, "trained on a table"));
    free(e);
}

static void post(const char *model, const char *type, const void *body, size_t len, struct th_resp *r)
{
    char path[200];
    snprintf(path, sizeof path, "/v1/models/%s/predict", model);
    assert_int_equal(th_http(&srv, "POST", path, srv.key, type, body, len, r), 0);
}

static void endpoint_images(void **state)
{
    (void)state;
    struct th_resp r;
    post(img_model, "image/png", png8.p, png8.len, &r);
    if (r.status != 200) fprintf(stderr, "%s\n", r.body);
    assert_int_equal(r.status, 200);
    cJSON *o = th_json(&r);
    cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "predictions"), 0);
    char want[32];
    snprintf(want, sizeof want, "%d", png_label);
    assert_string_equal(cJSON_GetObjectItem(p0, "class")->valuestring, want);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(p0, "resized")));
    double p_want = cJSON_GetObjectItem(cJSON_GetObjectItem(p0, "probabilities"), want)->valuedouble;
    cJSON_Delete(o);
    th_resp_free(&r);

    post(img_model, "image/png", png16.p, png16.len, &r);
    assert_int_equal(r.status, 200);
    o = th_json(&r);
    p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "predictions"), 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(p0, "resized")));
    assert_true(fabs(cJSON_GetObjectItem(cJSON_GetObjectItem(p0, "probabilities"), want)->valuedouble - p_want) < 1e-12);
    cJSON_Delete(o);
    th_resp_free(&r);

    /* the archive: same predictions as podium-predict, line by line */
    size_t len;
    char *zip = th_read_file(DIGITS, &len);
    post(img_model, "application/zip", zip, len, &r);
    assert_int_equal(r.status, 200);
    o = th_json(&r);
    cJSON *preds = cJSON_GetObjectItem(o, "predictions");
    assert_int_equal(cJSON_GetArraySize(preds), 1797);
    char **l;
    assert_int_equal(lines_of(tp("all.csv"), &l), 1798);
    for (int i = 0; i < 1797; i++) {
        cJSON *p = cJSON_GetArrayItem(preds, i);
        char line[64];
        snprintf(line, sizeof line, "%s,%s,", cJSON_GetObjectItem(p, "name")->valuestring,
                 cJSON_GetObjectItem(p, "class")->valuestring);
        assert_memory_equal(l[i + 1], line, strlen(line));
    }
    cJSON_Delete(o);
    th_resp_free(&r);

    /* Accept: text/csv answers as podium-predict writes (names quoted) */
    char path[200], auth[200];
    snprintf(path, sizeof path, "/v1/models/%s/predict", img_model);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", srv.key);
    const char *h[] = {auth, "Content-Type: image/png", "Accept: text/csv", NULL};
    assert_int_equal(th_http_headers(&srv, "POST", path, h, (const char *)png8.p, png8.len, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "name,prediction,\"proba_0\""));
    snprintf(want, sizeof want, "\"image\",\"%d\",", png_label);
    assert_non_null(strstr(r.body, want));
    th_resp_free(&r);
    free(zip);
}

static void endpoint_refusals(void **state)
{
    (void)state;
    struct th_resp r;
    /* rows to an image model, an image to a table model */
    const char *csv = "a,b\n1,2\n";
    post(img_model, "text/csv", csv, strlen(csv), &r);
    assert_int_equal(r.status, 415);
    assert_string_equal(r.content_type, "application/problem+json");
    assert_non_null(strstr(r.body, "trained on images (8x8, 1 channel)"));
    th_resp_free(&r);
    post(tab_model, "image/png", png8.p, png8.len, &r);
    assert_int_equal(r.status, 415);
    assert_non_null(strstr(r.body, "trained on a table"));
    th_resp_free(&r);
    post(img_model, "application/pdf", "x", 1, &r);
    assert_int_equal(r.status, 415);
    th_resp_free(&r);

    /* a damaged image, a path that escapes, a zip bomb, not an archive */
    post(img_model, "image/png", cut.p, cut.len, &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(r.content_type, "application/problem+json");
    assert_non_null(strstr(r.body, "invalid-image"));
    th_resp_free(&r);
    const char *names[] = {"a/1.png", "../b/2.png"};
    struct imgfix_buf two[2] = {png8, png8};
    struct imgfix_buf evil = imgfix_archive("tar.gz", 2, names, two);
    post(img_model, "application/gzip", evil.p, evil.len, &r);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.body, "'..'"));
    th_resp_free(&r);
    free(evil.p);
    size_t big = 60u << 20;
    struct imgfix_buf zero = {calloc(1, big), big};
    const char *bomb_names[] = {"a/zeros.png"};
    struct imgfix_buf bomb = imgfix_archive("zip", 1, bomb_names, &zero);
    post(img_model, "application/zip", bomb.p, bomb.len, &r);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.body, "invalid-archive"));
    th_resp_free(&r);
    free(zero.p);
    free(bomb.p);
    post(img_model, "application/x-tar", csv, strlen(csv), &r);
    assert_int_equal(r.status, 422);
    th_resp_free(&r);
    /* the server is still fine */
    post(img_model, "image/png", png8.p, png8.len, &r);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cli_png_archive_and_errors),
        cmocka_unit_test(endpoint_images),
        cmocka_unit_test(endpoint_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* test_models.c - a trained model through the API: its leaderboard entry,
 * its artifact downloaded byte for byte with digest and ETag, and
 * predictions from the endpoint equal to podium-predict's on the same rows.
 *
 * The model is trained by the real podium-train here and recorded as a
 * succeeded trial, as a scheduler records one, so this test does not
 * depend on the scheduler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "lib/crypto.h"
#include "tests/support/harness.h"

static struct th_db db;
static struct th_server srv;
static char model_id[64], artifact[512];

static int run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int setup(void **state)
{
    if (th_db_create(&db) < 0 || th_server_start(&srv, &db, NULL) < 0) return -1;
    const char *tmp = getenv("PODIUM_TEST_TMP") ? getenv("PODIUM_TEST_TMP") : "/tmp";
    const char *bin = getenv("PODIUM_BIN_DIR") ? getenv("PODIUM_BIN_DIR") : "bin";
    snprintf(artifact, sizeof artifact, "%s/models-%d.pdm", tmp, (int)getpid());
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "echo '{\"data\": \"tests/data/tabular/iris.csv\", \"target\": \"species\","
             " \"task\": \"classification\", \"model\": {\"family\": \"linear\"},"
             " \"cv\": {\"folds\": 3, \"seed\": 1}, \"metric\": \"accuracy\", \"threads\": 1,"
             " \"artifact\": \"%s\"}' | %s/podium-train > %s.events 2>/dev/null",
             artifact, bin, artifact);
    if (run(cmd) != 0) return -1;

    /* The job and its one succeeded trial, as a scheduler leaves them. */
    size_t len;
    char *csv = th_read_file("tests/data/tabular/iris.csv", &len);
    struct th_resp r;
    if (th_http(&srv, "POST", "/v1/datasets", srv.key, "text/csv", csv, len, &r) < 0 || r.status != 201)
        return -1;
    char body[200];
    snprintf(body, sizeof body, "{\"dataset_id\": \"%s\", \"metric\": \"accuracy\"}", th_json_str(&r, "id"));
    th_resp_free(&r);
    free(csv);
    if (th_http(&srv, "POST", "/v1/jobs", srv.key, NULL, body, strlen(body), &r) < 0 || r.status != 202)
        return -1;
    char job[64];
    snprintf(job, sizeof job, "%s", th_json_str(&r, "id"));
    th_resp_free(&r);

    char *bytes = th_read_file(artifact, &len);
    unsigned char h[32];
    char hex[65];
    crypto_sha256(bytes, len, h);
    crypto_hex(h, 32, hex);
    free(bytes);
    PGconn *c = th_db_connect(&db);
    PQclear(PQexec(c, "BEGIN"));
    Oid lo = lo_import(c, artifact);
    char lo_s[16];
    snprintf(lo_s, sizeof lo_s, "%u", lo);
    const char *p[3] = {job, lo_s, hex};
    PGresult *res = PQexecParams(c,
        "INSERT INTO trials (job_id, team_id, seq, state, family, params, score, score_std,"
        " metrics, fit_seconds, predict_us_per_row, model_bytes, artifact_lo, artifact_sha256,"
        " finished_at)"
        " SELECT id, team_id, 1, 'succeeded', 'linear', '{}', 0.96, 0.01,"
        "  '{\"accuracy\": {\"mean\": 0.96}}', 0.01, 1.5, 1000, $2::oid, decode($3, 'hex'), now()"
        " FROM jobs WHERE id = $1 RETURNING id", 3, NULL, p, NULL, NULL, 0);
    int ok = lo != InvalidOid && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (ok) snprintf(model_id, sizeof model_id, "%s", PQgetvalue(res, 0, 0));
    else fprintf(stderr, "%s", PQerrorMessage(c));
    PQclear(res);
    PQclear(PQexec(c, "UPDATE jobs SET state = 'succeeded', started_at = now(), finished_at = now()"));
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    int rc = th_server_stop(&srv);
    th_db_drop(&db);
    return rc == 0 ? 0 : -1;
}

static void model_and_leaderboard(void **state)
{
    char path[200];
    snprintf(path, sizeof path, "/v1/models/%s", model_id);
    struct th_resp r;
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(th_json_str(&r, "family"), "linear");
    char job[64];
    snprintf(job, sizeof job, "%s", th_json_str(&r, "job_id"));
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/leaderboard", job);
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *lb = th_json(&r);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(lb, "items"), 0);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "rank")), 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "model_id")), model_id);
    cJSON_Delete(lb);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s", job);
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_string_equal(th_json_str(&r, "best.model_id"), model_id);
    th_resp_free(&r);
}

static void artifact_downloads_byte_for_byte(void **state)
{
    size_t len;
    char *bytes = th_read_file(artifact, &len);
    char path[200];
    snprintf(path, sizeof path, "/v1/models/%s/artifact", model_id);
    struct th_resp r;
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, len);
    assert_memory_equal(r.body, bytes, len);
    unsigned char h[32];
    char etag[80] = "\"";
    crypto_sha256(bytes, len, h);
    crypto_hex(h, 32, etag + 1);
    strcat(etag, "\"");
    assert_string_equal(r.etag, etag);
    th_resp_free(&r);
    char auth[200], inm[120];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", srv.key);
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    const char *h2[] = {auth, inm, NULL};
    assert_int_equal(th_http_headers(&srv, "GET", path, h2, NULL, 0, &r), 0);
    assert_int_equal(r.status, 304);
    th_resp_free(&r);
    free(bytes);
}

/* podium-predict's CSV output on the same rows, parsed: predictions and
 * probabilities per row. */
static int predict_cli(const char *rows_path, char labels[][32], double probs[][3], int max)
{
    char out[600], cmd[2048];
    snprintf(out, sizeof out, "%s.pred.csv", artifact);
    snprintf(cmd, sizeof cmd, "%s/podium-predict %s %s > %s",
             getenv("PODIUM_BIN_DIR") ? getenv("PODIUM_BIN_DIR") : "bin", artifact, rows_path, out);
    if (run(cmd) != 0) return -1;
    FILE *f = fopen(out, "r");
    char line[512];
    int n = 0;
    if (!fgets(line, sizeof line, f)) n = -1;
    while (n >= 0 && n < max && fgets(line, sizeof line, f)) {
        char *save, *tok = strtok_r(line, ",\n", &save);
        snprintf(labels[n], 32, "%s", tok[0] == '"' ? tok + 1 : tok);
        labels[n][strcspn(labels[n], "\"")] = '\0';
        for (int k = 0; k < 3; k++) probs[n][k] = strtod(strtok_r(NULL, ",\n", &save), NULL);
        n++;
    }
    fclose(f);
    return n;
}

static void predictions_match_podium_predict(void **state)
{
    static char labels[200][32];
    static double probs[200][3];
    int n = predict_cli("tests/data/tabular/iris.csv", labels, probs, 200);
    assert_int_equal(n, 150);

    size_t len;
    char *csv = th_read_file("tests/data/tabular/iris.csv", &len);
    char path[200];
    snprintf(path, sizeof path, "/v1/models/%s/predict", model_id);
    struct th_resp r;
    assert_int_equal(th_http(&srv, "POST", path, srv.key, "text/csv", csv, len, &r), 0);
    if (r.status != 200) fprintf(stderr, "%s\n", r.body);
    assert_int_equal(r.status, 200);
    cJSON *o = th_json(&r);
    cJSON *preds = cJSON_GetObjectItem(o, "predictions");
    cJSON *p = cJSON_GetObjectItem(o, "probabilities");
    assert_int_equal(cJSON_GetArraySize(preds), 150);
    for (int i = 0; i < 150; i++) {
        assert_string_equal(cJSON_GetArrayItem(preds, i)->valuestring, labels[i]);
        for (int k = 0; k < 3; k++)
            assert_true(fabs(cJSON_GetArrayItem(cJSON_GetArrayItem(p, i), k)->valuedouble - probs[i][k]) < 1e-12);
    }
    cJSON_Delete(o);
    th_resp_free(&r);
    free(csv);

    /* The same rows as JSON objects, columns in another order. */
    const char *json = "{\"rows\": [{\"petal_width_(cm)\": 0.2, \"petal_length_(cm)\": 1.4,"
                       " \"sepal_width_(cm)\": 3.5, \"sepal_length_(cm)\": 5.1}]}";
    assert_int_equal(th_http(&srv, "POST", path, srv.key, NULL, json, strlen(json), &r), 0);
    assert_int_equal(r.status, 200);
    o = th_json(&r);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "predictions"), 0)->valuestring, labels[0]);
    assert_true(fabs(cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "probabilities"), 0), 0)
                         ->valuedouble - probs[0][0]) < 1e-9);
    cJSON_Delete(o);
    th_resp_free(&r);
}

static void bad_rows_are_refused(void **state)
{
    char path[200];
    snprintf(path, sizeof path, "/v1/models/%s/predict", model_id);
    struct th_resp r;
    const char *missing = "sepal_length_(cm),sepal_width_(cm)\n5.1,3.5\n";
    assert_int_equal(th_http(&srv, "POST", path, srv.key, "text/csv", missing, strlen(missing), &r), 0);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.body, "petal"));
    th_resp_free(&r);
    assert_int_equal(th_http(&srv, "POST", path, srv.key, "text/plain", "x", 1, &r), 0);
    assert_int_equal(r.status, 415);
    th_resp_free(&r);
    assert_int_equal(th_http(&srv, "POST", path, srv.key, NULL, "{\"rows\": 5}", 11, &r), 0);
    assert_int_equal(r.status, 422);
    th_resp_free(&r);
    assert_int_equal(th_http(&srv, "POST", "/v1/models/00000000-0000-0000-0000-000000000000/predict",
                             srv.key, "text/csv", missing, strlen(missing), &r), 0);
    assert_int_equal(r.status, 404);
    th_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_and_leaderboard),
        cmocka_unit_test(artifact_downloads_byte_for_byte),
        cmocka_unit_test(predictions_match_podium_predict),
        cmocka_unit_test(bad_rows_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* test_modelfile.c - the model file: what podium-train saves predicts
 * exactly what the in-process final model predicts, for every family; a
 * truncated, corrupted, foreign or inconsistent file is rejected with a
 * message (never read out of bounds). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/csv.h"
#include "trainers/driver.h"
#include "trainers/modelfile.h"

static const char *tmpdir(void)
{
    const char *t = getenv("PODIUM_TEST_TMP");
    return t && *t ? t : "/tmp";
}

static void train(const char *data, const char *target, const char *family,
                  const char *params, const char *artifact, struct driver_result *res)
{
    char spec[2048];
    snprintf(spec, sizeof spec,
             "{\"data\":\"%s\",\"target\":\"%s\",\"model\":{\"family\":\"%s\",\"params\":%s},"
             "\"cv\":{\"folds\":2,\"seed\":1},\"threads\":2,\"artifact\":\"%s\"}",
             data, target, family, params, artifact);
    cJSON *j = cJSON_Parse(spec);
    assert_non_null(j);
    struct driver_spec s;
    struct driver_error e;
    if (driver_spec_parse(j, &s, &e) != DRIVER_OK) fail_msg("%s", e.message);
    cJSON_Delete(j);
    struct driver_opts o = {0};
    if (driver_run(&s, &o, res, &e) != DRIVER_OK) fail_msg("%s %s: %s", data, family, e.message);
    driver_spec_free(&s);
}

/* Predictions of the in-memory model and of the saved file on the same
 * rows, bit for bit. */
static void check_same_predictions(const char *data, const char *target,
                                   const char *family, const char *params)
{
    char art[512];
    snprintf(art, sizeof art, "%s/mf_%s.pdm", tmpdir(), family);
    struct driver_result res;
    train(data, target, family, params, art, &res);

    struct modelfile m;
    char err[512];
    if (modelfile_load(art, &m, err, sizeof err) != 0) fail_msg("%s", err);
    assert_string_equal(m.family->name, family);
    assert_int_equal(m.task.kind, res.final.task.kind);
    assert_int_equal(m.task.n_classes, res.final.task.n_classes);

    struct csv_table t;
    struct csv_error ce;
    assert_int_equal(csv_table_load_file(data, NULL, &t, &ce), 0);
    struct schema_frame f1, f2;
    assert_int_equal(schema_frame_build(&res.final.schema, &t, &f1, err, sizeof err), 0);
    assert_int_equal(schema_frame_build(&m.schema, &t, &f2, err, sizeof err), 0);
    size_t k = m.task.kind == PD_TASK_CLASSIFICATION ? (size_t)m.task.n_classes : 1;
    double *p1 = calloc(t.n_rows * k, sizeof *p1), *p2 = calloc(t.n_rows * k, sizeof *p2);
    assert_int_equal(modelfile_predict(&res.final, &f1, 2, p1, err, sizeof err), 0);
    assert_int_equal(modelfile_predict(&m, &f2, 1, p2, err, sizeof err), 0);
    for (size_t i = 0; i < t.n_rows * k; i++)
        if (!(fabs(p1[i] - p2[i]) <= 1e-12)) fail_msg("%s: value %zu: %.17g vs %.17g", family, i, p1[i], p2[i]);
    /* the header carries the metrics and the schema */
    assert_non_null(cJSON_GetObjectItem(m.header, "metrics"));
    assert_non_null(cJSON_GetObjectItem(m.header, "preprocessing"));
    free(p1);
    free(p2);
    schema_frame_free(&f1);
    schema_frame_free(&f2);
    csv_table_free(&t);
    modelfile_free(&m);
    driver_result_free(&res);
    char oof[600];
    snprintf(oof, sizeof oof, "%s.oof.csv", art);
    unlink(oof);
    unlink(art);
}

static void saved_model_predicts_like_in_process(void **state)
{
    check_same_predictions("tests/data/tabular/iris.csv", "species", "linear", "{}");
    check_same_predictions("tests/data/tabular/iris.csv", "species", "knn", "{}");
    check_same_predictions("tests/data/tabular/HouseVotes84.csv", "Class", "nb", "{}");
    check_same_predictions("tests/data/tabular/PimaIndiansDiabetes2.csv", "diabetes", "mlp", "{\"max_iter\":30}");
    check_same_predictions("tests/data/tabular/BreastCancer.csv", "Class", "rf", "{\"n_estimators\":20}");
    check_same_predictions("tests/data/tabular/HouseVotes84.csv", "Class", "extratrees", "{\"n_estimators\":20}");
    check_same_predictions("tests/data/tabular/PimaIndiansDiabetes2.csv", "diabetes", "gbm", "{\"n_estimators\":20}");
    check_same_predictions("tests/data/tabular/diabetes.csv", "progression", "gbm", "{\"n_estimators\":20}");
    check_same_predictions("tests/data/tabular/diabetes.csv", "progression", "linear", "{}");
}

static void encode(struct driver_result *res, struct pd_buf *b)
{
    pd_buf_init(b);
    assert_int_equal(modelfile_encode(res->final.header, res->final.prep, res->final.family,
                                      res->final.model, b), 0);
}

static void damaged_files_are_rejected(void **state)
{
    char art[512];
    snprintf(art, sizeof art, "%s/mf_damage.pdm", tmpdir());
    struct driver_result res;
    train("tests/data/tabular/HouseVotes84.csv", "Class", "linear", "{}", art, &res);
    struct pd_buf b;
    encode(&res, &b);
    struct modelfile m;
    char err[512];
    assert_int_equal(modelfile_decode(b.data, b.len, &m, err, sizeof err), 0);
    modelfile_free(&m);

    /* every truncation (all short cuts, then a stride) */
    for (size_t cut = 0; cut < b.len; cut += cut < 256 ? 1 : 13) {
        int rc = modelfile_decode(b.data, cut, &m, err, sizeof err);
        if (rc != PD_EFORMAT) fail_msg("a cut at %zu of %zu gave %d", cut, b.len, rc);
        assert_non_null(strstr(err, "model file"));
    }
    /* a flipped byte anywhere after the version */
    for (size_t at = 12; at < b.len; at += 97) {
        b.data[at] ^= 0x40;
        assert_int_equal(modelfile_decode(b.data, b.len, &m, err, sizeof err), PD_EFORMAT);
        b.data[at] ^= 0x40;
    }
    /* not ours */
    const char *junk = "species,sepal\nsetosa,1\n";
    assert_int_equal(modelfile_decode(junk, strlen(junk), &m, err, sizeof err), PD_EFORMAT);
    assert_non_null(strstr(err, "magic"));
    /* a future version */
    b.data[8] = 9;
    assert_int_equal(modelfile_decode(b.data, b.len, &m, err, sizeof err), PD_EFORMAT);
    assert_non_null(strstr(err, "version"));
    b.data[8] = 1;
    /* trailing bytes */
    unsigned char *big = malloc(b.len + 4);
    memcpy(big, b.data, b.len);
    memset(big + b.len, 0, 4);
    assert_int_equal(modelfile_decode(big, b.len + 4, &m, err, sizeof err), PD_EFORMAT);
    free(big);
    pd_buf_free(&b);

    /* a consistent checksum over an inconsistent header: the schema says
     * a categorical column is numeric, so the preprocessing section does
     * not match it */
    cJSON *cols = cJSON_GetObjectItem(cJSON_GetObjectItem(res.final.header, "schema"), "columns");
    cJSON *c0 = cJSON_GetArrayItem(cols, 0);
    cJSON_ReplaceItemInObject(c0, "type", cJSON_CreateString("numeric"));
    encode(&res, &b);
    assert_int_equal(modelfile_decode(b.data, b.len, &m, err, sizeof err), PD_EFORMAT);
    assert_non_null(strstr(err, "preprocessing"));
    pd_buf_free(&b);
    /* an unknown family */
    cJSON_ReplaceItemInObject(c0, "type", cJSON_CreateString("categorical"));
    cJSON_ReplaceItemInObject(res.final.header, "family", cJSON_CreateString("svm"));
    encode(&res, &b);
    assert_int_equal(modelfile_decode(b.data, b.len, &m, err, sizeof err), PD_EFORMAT);
    assert_non_null(strstr(err, "family"));
    pd_buf_free(&b);

    /* files: missing, empty */
    assert_int_equal(modelfile_load("tests/data/tabular/none.pdm", &m, err, sizeof err), PD_EFORMAT);
    char empty[600];
    snprintf(empty, sizeof empty, "%s/mf_empty.pdm", tmpdir());
    FILE *f = fopen(empty, "w");
    fclose(f);
    assert_int_equal(modelfile_load(empty, &m, err, sizeof err), PD_EFORMAT);
    unlink(empty);
    driver_result_free(&res);
    char oof[600];
    snprintf(oof, sizeof oof, "%s.oof.csv", art);
    unlink(oof);
    unlink(art);
}

/* Found by tests/fuzz/fuzz_modelfile.c: real model files whose header was
 * edited (a class removed, the task changed) with a valid checksum. The
 * weights give more outputs than the header promises; decoding must refuse
 * them, or predict writes past a buffer sized from the header. Each corpus
 * file is one option byte followed by the model file. */
static void weights_that_disagree_with_the_header_are_refused(void **state)
{
    const char *names[] = {"gbm-schema-regression-weights-3-classes",
                           "linear-schema-2-classes-weights-3", "nb-schema-2-classes-weights-3",
                           "rf-schema-2-classes-weights-3"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fuzz/corpus/modelfile/%s", names[i]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        unsigned char buf[65536];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        assert_true(n > 1);
        struct modelfile m;
        char err[512];
        assert_int_equal(modelfile_decode(buf + 1, n - 1, &m, err, sizeof err), PD_EFORMAT);
        assert_non_null(strstr(err, "do not match the header"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(saved_model_predicts_like_in_process),
        cmocka_unit_test(damaged_files_are_rejected),
        cmocka_unit_test(weights_that_disagree_with_the_header_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

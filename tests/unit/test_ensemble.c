/* test_ensemble.c - Caruana ensemble selection (trainers/ensemble.h) on
 * synthetic OOF predictions: the better member is picked more often, the
 * result is never worse than the best single member on the objective, the
 * weights sum to 1, the selection is reproducible; and the ensemble model
 * file: it decodes and predicts exactly the weighted average of its
 * members, and truncated or garbage ensemble files are rejected. */
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
#include "trainers/ensemble.h"
#include "trainers/metrics.h"
#include "trainers/modelfile.h"

static const char *tmpdir(void)
{
    const char *t = getenv("PODIUM_TEST_TMP");
    return t && *t ? t : "/tmp";
}

/* A tiny LCG so that the test does not depend on rng.h's API. */
static double unif(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

/* Synthetic 3-class OOF predictions: member m puts `skill[m]` extra mass
 * on the true class, the rest spread at random. */
static void synth(size_t n, int k, const double *skill, int n_models, double *y, int *fold,
                  double **pred, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        y[i] = (double)(i % (size_t)k);
        fold[i] = (int)(i % 5);
    }
    for (int m = 0; m < n_models; m++) {
        for (size_t i = 0; i < n; i++) {
            double *p = pred[m] + i * (size_t)k, sum = 0;
            for (int c = 0; c < k; c++) sum += p[c] = unif(&s) + (c == (int)y[i] ? skill[m] : 0);
            for (int c = 0; c < k; c++) p[c] /= sum;
        }
    }
}

static void selection_prefers_the_better_member(void **state)
{
    enum { N = 600, K = 3, M = 3 };
    double y[N];
    int fold[N];
    double *pred[M];
    for (int m = 0; m < M; m++) pred[m] = malloc(N * K * sizeof(double));
    const double skill[M] = {0.3, 1.5, 0.8};
    synth(N, K, skill, M, y, fold, pred, 7);
    struct pd_task task = {PD_TASK_CLASSIFICATION, K};
    int metrics[] = {PD_METRIC_LOG_LOSS, PD_METRIC_ACCURACY, PD_METRIC_ROC_AUC};
    for (size_t t = 0; t < sizeof metrics / sizeof metrics[0]; t++) {
        int metric = metrics[t];
        int counts[M], counts2[M], used = 0, used2 = 0;
        double score = 0, score2 = 0;
        assert_int_equal(ensemble_select(&task, metric, y, fold, 5, N, (const double *const *)pred, M, 50, 10,
                                         counts, &score, &used), 0);
        /* reproducible */
        assert_int_equal(ensemble_select(&task, metric, y, fold, 5, N, (const double *const *)pred, M, 50, 10,
                                         counts2, &score2, &used2), 0);
        assert_memory_equal(counts, counts2, sizeof counts);
        assert_true(score == score2);
        assert_int_equal(used, used2);
        /* weights sum to 1: counts sum to the prefix length */
        int total = 0;
        double wsum = 0;
        for (int m = 0; m < M; m++) total += counts[m];
        for (int m = 0; m < M; m++) wsum += (double)counts[m] / used;
        assert_int_equal(total, used);
        assert_true(fabs(wsum - 1) < 1e-12);
        /* the better member is picked most */
        assert_true(counts[1] >= counts[0] && counts[1] >= counts[2]);
        /* never worse than the best single member */
        int gib = pd_metric_greater_is_better((enum pd_metric)metric);
        for (int m = 0; m < M; m++) {
            double s = ensemble_objective(&task, metric, y, fold, 5, N, pred[m]);
            if (gib) assert_true(score >= s - 1e-12);
            else assert_true(score <= s + 1e-12);
        }
        /* the score is the objective of the weighted average */
        double *avg = calloc(N * K, sizeof *avg);
        for (int m = 0; m < M; m++)
            for (size_t j = 0; j < N * K; j++) avg[j] += (double)counts[m] / used * pred[m][j];
        double again = ensemble_objective(&task, metric, y, fold, 5, N, avg);
        assert_true(fabs(again - score) < 1e-9);
        free(avg);
    }
    /* log loss: mixing two decent members beats either alone here */
    int counts[M], used = 0;
    double score = 0;
    const double skill2[M] = {1.0, 1.0, 1.0};
    synth(N, K, skill2, M, y, fold, pred, 11);
    assert_int_equal(ensemble_select(&task, PD_METRIC_LOG_LOSS, y, fold, 5, N, (const double *const *)pred, M,
                                     50, 10, counts, &score, &used), 0);
    int distinct = 0;
    for (int m = 0; m < M; m++) distinct += counts[m] > 0;
    assert_true(distinct >= 2);
    for (int m = 0; m < M; m++)
        assert_true(score < ensemble_objective(&task, PD_METRIC_LOG_LOSS, y, fold, 5, N, pred[m]));
    /* bad arguments */
    assert_int_equal(ensemble_select(&task, PD_METRIC_RMSE, y, fold, 5, N, (const double *const *)pred, M, 50, 10,
                                     counts, &score, &used), PD_EPARAM);
    assert_int_equal(ensemble_select(&task, PD_METRIC_LOG_LOSS, y, fold, 5, N, (const double *const *)pred, 0, 50,
                                     10, counts, &score, &used), PD_EPARAM);
    for (int m = 0; m < M; m++) free(pred[m]);
}

static void regression_selection(void **state)
{
    enum { N = 300, M = 2 };
    double y[N], a[N], b[N];
    int fold[N];
    uint64_t s = 3;
    for (size_t i = 0; i < N; i++) {
        y[i] = unif(&s) * 10;
        fold[i] = (int)(i % 3);
        a[i] = y[i] + 1.0;  /* biased up */
        b[i] = y[i] - 1.0;  /* biased down: the average is exact */
    }
    const double *pred[M] = {a, b};
    struct pd_task task = {PD_TASK_REGRESSION, 0};
    int counts[M], used = 0;
    double score = 0;
    assert_int_equal(ensemble_select(&task, PD_METRIC_RMSE, y, fold, 3, N, pred, M, 20, 5, counts, &score, &used), 0);
    assert_int_equal(counts[0], counts[1]);
    assert_true(score < 1e-9);
}

/* Train a member in-process; returns its file bytes. */
static unsigned char *train_member(const char *family, const char *params, size_t *len)
{
    char art[512], spec[2048];
    snprintf(art, sizeof art, "%s/ens_%s.pdm", tmpdir(), family);
    snprintf(spec, sizeof spec,
             "{\"data\":\"tests/data/tabular/iris.csv\",\"target\":\"species\","
             "\"model\":{\"family\":\"%s\",\"params\":%s},\"cv\":{\"folds\":3,\"seed\":1},"
             "\"artifact\":\"%s\"}",
             family, params, art);
    cJSON *j = cJSON_Parse(spec);
    struct driver_spec s;
    struct driver_error e;
    if (driver_spec_parse(j, &s, &e) != DRIVER_OK) fail_msg("%s", e.message);
    cJSON_Delete(j);
    struct driver_opts o = {0};
    if (driver_run(&s, &o, NULL, &e) != DRIVER_OK) fail_msg("%s: %s", family, e.message);
    driver_spec_free(&s);
    FILE *f = fopen(art, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    char oof[600];
    snprintf(oof, sizeof oof, "%s.oof.csv", art);
    unlink(oof);
    unlink(art);
    return b;
}

static void predict_file(const void *data, size_t len, const struct csv_table *t, double *out)
{
    struct modelfile m;
    char err[512];
    if (modelfile_decode(data, len, &m, err, sizeof err) != 0) fail_msg("%s", err);
    struct schema_frame f;
    if (schema_frame_build(&m.schema, t, &f, err, sizeof err) != 0) fail_msg("%s", err);
    if (modelfile_predict(&m, &f, 1, out, err, sizeof err) != 0) fail_msg("%s", err);
    schema_frame_free(&f);
    modelfile_free(&m);
}

static void model_file_predicts_the_weighted_average(void **state)
{
    size_t la, lb;
    unsigned char *a = train_member("linear", "{}", &la);
    unsigned char *b = train_member("knn", "{\"n_neighbors\":7}", &lb);
    const void *mem[2] = {a, b};
    size_t lens[2] = {la, lb};
    double w[2] = {0.25, 0.75};
    struct pd_buf file;
    pd_buf_init(&file);
    char err[512];
    if (ensemble_encode(mem, lens, w, 2, NULL, &file, err, sizeof err) != 0) fail_msg("%s", err);

    struct csv_table t;
    struct csv_opts co = {0};
    struct csv_error ce;
    assert_int_equal(csv_table_load_file("tests/data/tabular/iris.csv", &co, &t, &ce), 0);
    size_t nk = t.n_rows * 3;
    double *pa = malloc(nk * sizeof *pa), *pb = malloc(nk * sizeof *pb), *pe = malloc(nk * sizeof *pe);
    predict_file(a, la, &t, pa);
    predict_file(b, lb, &t, pb);
    predict_file(file.data, file.len, &t, pe);
    for (size_t j = 0; j < nk; j++) {
        double want = 0;
        want += 0.25 * pa[j];
        want += 0.75 * pb[j];
        if (pe[j] != want) fail_msg("value %zu: %.17g != %.17g", j, pe[j], want);
    }
    struct modelfile m;
    assert_int_equal(modelfile_decode(file.data, file.len, &m, err, sizeof err), 0);
    assert_string_equal(m.family->name, "ensemble");
    const cJSON *ms = cJSON_GetObjectItem(m.header, "members");
    assert_int_equal(cJSON_GetArraySize(ms), 2);
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(ms, 1), "weight")->valuedouble == 0.75);
    modelfile_free(&m);

    /* every truncation and flipped bytes: rejected, never read out of bounds */
    for (size_t cut = 0; cut < file.len; cut += cut < 512 ? 1 : 101) {
        int rc = modelfile_decode(file.data, cut, &m, err, sizeof err);
        if (rc != PD_EFORMAT) fail_msg("a cut at %zu of %zu gave %d", cut, file.len, rc);
    }
    for (size_t at = 12; at < file.len; at += 211) {
        file.data[at] ^= 0x21;
        assert_int_equal(modelfile_decode(file.data, file.len, &m, err, sizeof err), PD_EFORMAT);
        file.data[at] ^= 0x21;
    }

    /* bad ensembles are not encoded */
    double bad_w[2] = {0.5, 0.6};
    struct pd_buf x;
    pd_buf_init(&x);
    assert_int_equal(ensemble_encode(mem, lens, bad_w, 2, NULL, &x, err, sizeof err), PD_EFORMAT);
    assert_non_null(strstr(err, "sum"));
    double neg_w[2] = {-0.5, 1.5};
    assert_int_equal(ensemble_encode(mem, lens, neg_w, 2, NULL, &x, err, sizeof err), PD_EFORMAT);
    const void *garbage[1] = {"PDMODEL\0garbage"};
    size_t glen[1] = {16};
    double one[1] = {1.0};
    assert_int_equal(ensemble_encode(garbage, glen, one, 1, NULL, &x, err, sizeof err), PD_EFORMAT);
    /* an ensemble inside an ensemble */
    const void *nested[1] = {file.data};
    size_t nlen[1] = {file.len};
    assert_int_equal(ensemble_encode(nested, nlen, one, 1, NULL, &x, err, sizeof err), PD_EFORMAT);
    assert_non_null(strstr(err, "ensemble"));
    pd_buf_free(&x);

    /* garbage inside a consistent container: a member whose bytes are
     * not a model file, behind a valid checksum */
    struct pd_buf g;
    pd_buf_init(&g);
    {
        cJSON *h = cJSON_Parse("{}");
        assert_int_equal(modelfile_decode(file.data, file.len, &m, err, sizeof err), 0);
        cJSON_Delete(h);
        struct pd_buf w_;
        pd_buf_init(&w_);
        pd_buf_put_u32(&w_, 1);
        pd_buf_put_f64(&w_, 1.0);
        pd_buf_put_u64(&w_, 5);
        pd_buf_put(&w_, "junk!", 5);
        /* rebuild the container with the same header and prep sections */
        char *text = cJSON_PrintUnformatted(m.header);
        pd_buf_put(&g, MODELFILE_MAGIC, 8);
        pd_buf_put_u32(&g, MODELFILE_VERSION);
        pd_buf_put_u32(&g, (uint32_t)strlen(text));
        pd_buf_put(&g, text, strlen(text));
        pd_buf_put_u64(&g, 8);
        pd_buf_put_u32(&g, 0);
        pd_buf_put_u32(&g, 0);
        pd_buf_put_u64(&g, w_.len);
        pd_buf_put(&g, w_.data, w_.len);
        pd_buf_put_u64(&g, modelfile_checksum(g.data, g.len));
        free(text);
        pd_buf_free(&w_);
        modelfile_free(&m);
    }
    assert_int_equal(modelfile_decode(g.data, g.len, &m, err, sizeof err), PD_EFORMAT);
    assert_non_null(strstr(err, "member 0"));
    pd_buf_free(&g);

    free(pa);
    free(pb);
    free(pe);
    csv_table_free(&t);
    pd_buf_free(&file);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(selection_prefers_the_better_member),
        cmocka_unit_test(regression_selection),
        cmocka_unit_test(model_file_predicts_the_weighted_average),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

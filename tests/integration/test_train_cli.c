/* test_train_cli.c - the real bin/podium-train and bin/podium-predict as
 * child processes on the data sets under tests/data/tabular: accuracy floors
 * per family, categorical data with missing values, an identifier column
 * dropped, regression, JSON Lines and exit codes, the spec on stdin,
 * reproducibility, predictions independent of column order, damaged model
 * files, bad parameters and data, and SIGTERM during a long fit. Needs no
 * database. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "tests/support/harness.h"

static char bin_dir[1024];
static char tmp[1024];

struct trained {
    int rc;
    cJSON *last;          /* last stdout event */
    char artifact[1200];
    char out[1200], err[1200];
};

/* Write the spec to a file and run podium-train on it. */
static void train(const char *name, const char *data, const char *target, const char *family,
                  const char *params, const char *extra, struct trained *t)
{
    char spec[4096], spec_path[1200];
    snprintf(t->artifact, sizeof t->artifact, "%s/%s.pdm", tmp, name);
    snprintf(spec, sizeof spec,
             "{\"data\":\"%s\",\"target\":\"%s\",\"model\":{\"family\":\"%s\",\"params\":%s},"
             "\"cv\":{\"folds\":5,\"seed\":0},\"threads\":2,\"artifact\":\"%s\"%s}",
             data, target, family, params ? params : "{}", t->artifact, extra ? extra : "");
    snprintf(spec_path, sizeof spec_path, "%s/%s.json", tmp, name);
    th_write_file(spec_path, spec);
    snprintf(t->out, sizeof t->out, "%s/%s.out", tmp, name);
    snprintf(t->err, sizeof t->err, "%s/%s.err", tmp, name);
    t->rc = th_run("podium-train", spec_path, NULL, NULL, t->out, t->err);
    t->last = th_last_event(t->out);
}

static double mean_of(const cJSON *result, const char *metric)
{
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(result, "metrics"), metric);
    assert_non_null(m);
    return cJSON_GetObjectItem(m, "mean")->valuedouble;
}

static void expect_result(struct trained *t, const char *metric, double floor_)
{
    if (t->rc != 0) {
        char *e = th_read_file(t->err, NULL);
        char *o = cJSON_PrintUnformatted(t->last);
        fail_msg("podium-train exit %d: %s\n%s", t->rc, o, e ? e : "");
    }
    assert_string_equal(cJSON_GetObjectItem(t->last, "event")->valuestring, "result");
    double v = mean_of(t->last, metric);
    if (!(v >= floor_)) fail_msg("%s: %s %.4f below %.4f", t->artifact, metric, v, floor_);
}

static void trained_free(struct trained *t)
{
    cJSON_Delete(t->last);
    char oof[1300];
    snprintf(oof, sizeof oof, "%s.oof.csv", t->artifact);
    unlink(oof);
    unlink(t->artifact);
}

static void iris_floors_every_family(void **state)
{
    const char *fams[] = {"linear", "knn", "nb", "mlp", "rf", "extratrees", "gbm"};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        struct trained t;
        char name[64];
        snprintf(name, sizeof name, "iris_%s", fams[i]);
        train(name, "tests/data/tabular/iris.csv", "species", fams[i], NULL, NULL, &t);
        expect_result(&t, "accuracy", 0.93);
        assert_string_equal(cJSON_GetObjectItem(t.last, "task")->valuestring, "classification");
        /* the model and the OOF file are there, no temporary left */
        struct stat st;
        assert_int_equal(stat(t.artifact, &st), 0);
        assert_int_equal((double)st.st_size, cJSON_GetObjectItem(t.last, "model_bytes")->valuedouble);
        assert_int_equal(access(cJSON_GetObjectItem(t.last, "oof_path")->valuestring, R_OK), 0);
        trained_free(&t);
    }
}

static void categorical_with_missing_values(void **state)
{
    const char *fams[] = {"linear", "nb"};
    for (int i = 0; i < 2; i++) {
        struct trained t;
        char name[64];
        snprintf(name, sizeof name, "votes_%s", fams[i]);
        train(name, "tests/data/tabular/HouseVotes84.csv", "Class", fams[i], NULL, NULL, &t);
        expect_result(&t, "accuracy", 0.90);
        assert_int_equal(cJSON_GetObjectItem(t.last, "n_rows")->valueint, 435);
        trained_free(&t);
    }
    /* numeric with missing values, imputed (linear) or native (gbm) */
    struct trained t;
    train("pima_linear", "tests/data/tabular/PimaIndiansDiabetes2.csv", "diabetes", "linear", NULL, NULL, &t);
    expect_result(&t, "accuracy", 0.72);
    trained_free(&t);
    train("pima_gbm", "tests/data/tabular/PimaIndiansDiabetes2.csv", "diabetes", "gbm",
          "{\"n_estimators\":50,\"max_depth\":3}", NULL, &t);
    expect_result(&t, "roc_auc", 0.75);
    trained_free(&t);
}

static void identifier_column_dropped(void **state)
{
    struct trained t;
    train("bc_rf", "tests/data/tabular/BreastCancer.csv", "Class", "rf", "{\"n_estimators\":50}", NULL, &t);
    expect_result(&t, "accuracy", 0.94);
    const cJSON *dropped = cJSON_GetObjectItem(t.last, "dropped_columns");
    assert_int_equal(cJSON_GetArraySize(dropped), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(dropped, 0), "name")->valuestring, "Id");
    assert_int_equal(cJSON_GetObjectItem(t.last, "n_features")->valueint, 10); /* 9 + a missing indicator */
    /* predicting needs no Id column */
    char rows[1200], out[1200], err[1200];
    snprintf(rows, sizeof rows, "%s/bc_rows.csv", tmp);
    th_write_file(rows, "Cl.thickness,Cell.size,Cell.shape,Marg.adhesion,Epith.c.size,Bare.nuclei,"
                     "Bl.cromatin,Normal.nucleoli,Mitoses\n5,1,1,1,2,1,3,1,1\n8,10,10,8,7,10,9,7,1\n"
                     "5,1,1,1,2,,3,1,1\n");
    snprintf(out, sizeof out, "%s/bc_pred.csv", tmp);
    snprintf(err, sizeof err, "%s/bc_pred.err", tmp);
    assert_int_equal(th_run("podium-predict", t.artifact, NULL, rows, out, err), 0);
    char *p = th_read_file(out, NULL);
    assert_non_null(p);
    assert_true(strncmp(p, "prediction,proba_benign,proba_malignant\nbenign,", 47) == 0);
    assert_non_null(strstr(p, "\nmalignant,"));
    free(p);
    trained_free(&t);
}

static void regression_runs(void **state)
{
    struct trained t;
    train("diab_linear", "tests/data/tabular/diabetes.csv", "progression", "linear", NULL,
          ",\"metric\":\"r2\"", &t);
    expect_result(&t, "r2", 0.40);
    assert_string_equal(cJSON_GetObjectItem(t.last, "task")->valuestring, "regression");
    assert_string_equal(cJSON_GetObjectItem(t.last, "metric")->valuestring, "r2");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t.last, "classes")), 0);
    char out[1200], err[1200];
    snprintf(out, sizeof out, "%s/diab_pred.csv", tmp);
    snprintf(err, sizeof err, "%s/diab_pred.err", tmp);
    assert_int_equal(th_run("podium-predict", t.artifact, "tests/data/tabular/diabetes.csv", NULL, out, err), 0);
    char *p = th_read_file(out, NULL);
    int lines = 0;
    for (char *c = p; *c; c++) lines += *c == '\n';
    assert_int_equal(lines, 443);
    assert_true(strncmp(p, "prediction\n", 11) == 0);
    free(p);
    trained_free(&t);
    train("diab_gbm", "tests/data/tabular/diabetes.csv", "progression", "gbm",
          "{\"n_estimators\":60,\"max_depth\":3,\"learning_rate\":0.05}", NULL, &t);
    expect_result(&t, "r2", 0.30);
    trained_free(&t);
}

static void spec_on_stdin_and_reproducible(void **state)
{
    char spec[1200], sp[1200], out[2][1200], err[1200];
    snprintf(spec, sizeof spec,
             "{\"data\":\"tests/data/tabular/breast_cancer.csv\",\"target\":\"diagnosis\","
             "\"model\":{\"family\":\"gbm\",\"params\":{\"n_estimators\":40}},"
             "\"cv\":{\"holdout\":0.25,\"seed\":4},\"threads\":2,\"metric\":\"roc_auc\"}");
    snprintf(sp, sizeof sp, "%s/stdin.json", tmp);
    th_write_file(sp, spec);
    snprintf(err, sizeof err, "%s/stdin.err", tmp);
    char *m[2];
    for (int k = 0; k < 2; k++) {
        snprintf(out[k], sizeof out[k], "%s/stdin%d.out", tmp, k);
        assert_int_equal(th_run("podium-train", NULL, NULL, sp, out[k], err), 0);
        cJSON *r = th_last_event(out[k]);
        assert_string_equal(cJSON_GetObjectItem(r, "event")->valuestring, "result");
        assert_true(cJSON_GetObjectItem(r, "score")->valuedouble > 0.95);
        m[k] = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "metrics"));
        cJSON_Delete(r);
    }
    assert_string_equal(m[0], m[1]);
    free(m[0]);
    free(m[1]);
}

/* The same rows with the columns shuffled and the target removed predict
 * the same bytes. */
static void column_order_does_not_matter(void **state)
{
    struct trained t;
    train("votes_order", "tests/data/tabular/HouseVotes84.csv", "Class", "gbm", "{\"n_estimators\":30}", NULL, &t);
    expect_result(&t, "accuracy", 0.90);
    /* reversed columns, no Class, plus an unseen category and an extra column */
    char rows[1200], out1[1200], out2[1200], err[1200];
    snprintf(rows, sizeof rows, "%s/votes_rev.csv", tmp);
    FILE *in = fopen("tests/data/tabular/HouseVotes84.csv", "r"), *o = fopen(rows, "w");
    char line[1024];
    int r = 0;
    while (fgets(line, sizeof line, in)) {
        line[strcspn(line, "\r\n")] = 0;
        char *f[17];
        int n = 0;
        for (char *s = line, *c; n < 17; s = c + 1) {
            f[n++] = s;
            if ((c = strchr(s, ',')) == NULL) break;
            *c = 0;
        }
        assert_int_equal(n, 17);
        fputs(r == 0 ? "extra" : "1", o);
        for (int k = 16; k >= 1; k--) fprintf(o, ",%s", r == 5 && k == 3 ? "\"maybe\"" : f[k]);
        fputc('\n', o);
        r++;
    }
    fclose(in);
    fclose(o);
    snprintf(out1, sizeof out1, "%s/votes_p1.csv", tmp);
    snprintf(out2, sizeof out2, "%s/votes_p2.csv", tmp);
    snprintf(err, sizeof err, "%s/votes_p.err", tmp);
    assert_int_equal(th_run("podium-predict", t.artifact, NULL, "tests/data/tabular/HouseVotes84.csv", out1, err), 0);
    assert_int_equal(th_run("podium-predict", t.artifact, rows, NULL, out2, err), 0);
    char *a = th_read_file(out1, NULL), *b = th_read_file(out2, NULL);
    /* identical but for row 5 (data row 4), whose V3 is unseen */
    char *la = a, *lb = b;
    for (int k = 0; k < 436; k++) {
        char *ea = strchr(la, '\n'), *eb = strchr(lb, '\n');
        assert_non_null(ea);
        assert_non_null(eb);
        if (k != 5) {
            if (ea - la != eb - lb || memcmp(la, lb, (size_t)(ea - la)) != 0)
                fail_msg("line %d differs", k);
        }
        la = ea + 1;
        lb = eb + 1;
    }
    free(a);
    free(b);
    /* a missing training column is named */
    th_write_file(rows, "V1,V2\ny,n\n");
    assert_int_equal(th_run("podium-predict", t.artifact, rows, NULL, out2, err), 2);
    char *e = th_read_file(err, NULL);
    assert_non_null(strstr(e, "'V3'"));
    free(e);
    trained_free(&t);
}

static void damaged_model_files(void **state)
{
    struct trained t;
    train("iris_damage", "tests/data/tabular/iris.csv", "species", "knn", NULL, NULL, &t);
    expect_result(&t, "accuracy", 0.9);
    char *model = th_read_file(t.artifact, NULL);
    struct stat st;
    stat(t.artifact, &st);
    char bad[1200], out[1200], err[1200];
    snprintf(bad, sizeof bad, "%s/trunc.pdm", tmp);
    snprintf(out, sizeof out, "%s/trunc.out", tmp);
    snprintf(err, sizeof err, "%s/trunc.err", tmp);
    size_t cuts[] = {0, 5, 12, 100, (size_t)st.st_size / 2, (size_t)st.st_size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        FILE *f = fopen(bad, "wb");
        fwrite(model, 1, cuts[i], f);
        fclose(f);
        int rc = th_run("podium-predict", bad, "tests/data/tabular/iris.csv", NULL, out, err);
        if (rc != 2) fail_msg("a model cut at %zu: exit %d", cuts[i], rc);
        char *e = th_read_file(err, NULL);
        assert_non_null(strstr(e, "not a valid Podium model file"));
        free(e);
    }
    free(model);
    /* a CSV passed as the model */
    assert_int_equal(th_run("podium-predict", "tests/data/tabular/iris.csv", "tests/data/tabular/iris.csv", NULL, out, err), 2);
    char *e = th_read_file(err, NULL);
    assert_non_null(strstr(e, "bad magic"));
    free(e);
    assert_int_equal(th_run("podium-predict", "/nonexistent.pdm", NULL, NULL, out, err), 2);
    unlink(bad);
    trained_free(&t);
}

static void bad_spec_and_data(void **state)
{
    struct trained t;
    train("bad_param", "tests/data/tabular/iris.csv", "species", "gbm", "{\"max_depth\":-1}", NULL, &t);
    assert_int_equal(t.rc, 2);
    assert_string_equal(cJSON_GetObjectItem(t.last, "event")->valuestring, "error");
    assert_string_equal(cJSON_GetObjectItem(t.last, "kind")->valuestring, "bad_spec");
    assert_string_equal(cJSON_GetObjectItem(t.last, "field")->valuestring, "model.params.max_depth");
    assert_int_not_equal(access(t.artifact, F_OK), 0);
    trained_free(&t);
    train("bad_param2", "tests/data/tabular/iris.csv", "species", "rf", "{\"n_estimators\":0}", NULL, &t);
    assert_int_equal(t.rc, 2);
    assert_string_equal(cJSON_GetObjectItem(t.last, "field")->valuestring, "model.params.n_estimators");
    trained_free(&t);
    train("bad_family", "tests/data/tabular/iris.csv", "species", "svm", NULL, NULL, &t);
    assert_int_equal(t.rc, 2);
    assert_string_equal(cJSON_GetObjectItem(t.last, "field")->valuestring, "model.family");
    trained_free(&t);

    /* a malformed CSV: the error carries the line */
    char csv[1200];
    snprintf(csv, sizeof csv, "%s/broken.csv", tmp);
    th_write_file(csv, "a,b,y\n1,2,p\n3,4,q\n5,\"6\"x,p\n");
    train("bad_csv", csv, "y", "linear", NULL, NULL, &t);
    assert_int_equal(t.rc, 2);
    assert_string_equal(cJSON_GetObjectItem(t.last, "kind")->valuestring, "bad_data");
    assert_int_equal(cJSON_GetObjectItem(t.last, "line")->valueint, 4);
    trained_free(&t);

    /* not JSON at all; no argument file */
    char out[1200], err[1200], sp[1200];
    snprintf(out, sizeof out, "%s/nojson.out", tmp);
    snprintf(err, sizeof err, "%s/nojson.err", tmp);
    snprintf(sp, sizeof sp, "%s/nojson.json", tmp);
    th_write_file(sp, "{\"data\": ");
    assert_int_equal(th_run("podium-train", sp, NULL, NULL, out, err), 2);
    cJSON *ev = th_last_event(out);
    assert_string_equal(cJSON_GetObjectItem(ev, "kind")->valuestring, "bad_spec");
    cJSON_Delete(ev);
    assert_int_equal(th_run("podium-train", "/nonexistent.json", NULL, NULL, out, err), 2);
}

/* SIGTERM during a long fit: exit 4 within about a second, no artifact and
 * no temporary file left. */
static void sigterm_stops_quickly(void **state)
{
    char csv[1200], spec[4096], sp[1200], art[1200];
    snprintf(csv, sizeof csv, "%s/big.csv", tmp);
    FILE *f = fopen(csv, "w");
    fputs("a,b,c,d,e,f,y\n", f);
    uint64_t s = 42;
    for (int i = 0; i < 20000; i++) {
        double v[6];
        for (int k = 0; k < 6; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            v[k] = (double)(s >> 11) * 0x1.0p-53 * 2 - 1;
        }
        fprintf(f, "%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%s\n", v[0], v[1], v[2], v[3], v[4], v[5],
                v[0] * v[1] + v[2] > 0 ? "yes" : "no");
    }
    fclose(f);
    const char *models[] = {
        "{\"family\":\"mlp\",\"params\":{\"max_iter\":100000,\"hidden_layer_sizes\":[64,64],\"tol\":0,\"n_iter_no_change\":100000}}",
        "{\"family\":\"gbm\",\"params\":{\"n_estimators\":100000,\"max_depth\":8}}",
    };
    for (int m = 0; m < 2; m++) {
        snprintf(art, sizeof art, "%s/sigterm%d.pdm", tmp, m);
        snprintf(spec, sizeof spec, "{\"data\":\"%s\",\"target\":\"y\",\"model\":%s,\"threads\":2,"
                 "\"artifact\":\"%s\"}", csv, models[m], art);
        snprintf(sp, sizeof sp, "%s/sigterm.json", tmp);
        th_write_file(sp, spec);
        int pipefd[2];
        assert_int_equal(pipe(pipefd), 0);
        char path[1200];
        snprintf(path, sizeof path, "%s/podium-train", bin_dir);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(pipefd[1], 1);
            close(pipefd[0]);
            close(pipefd[1]);
            int dn = open("/dev/null", O_WRONLY);
            dup2(dn, 2);
            execl(path, path, sp, (char *)NULL);
            _exit(121);
        }
        close(pipefd[1]);
        /* wait for the first iteration event of fold 0 */
        char buf[65536];
        size_t have = 0;
        double t0 = th_now_s();
        while (th_now_s() - t0 < 60) {
            struct pollfd pfd = {pipefd[0], POLLIN, 0};
            if (poll(&pfd, 1, 1000) <= 0) continue;
            ssize_t got = read(pipefd[0], buf + have, sizeof buf - 1 - have);
            if (got <= 0) break;
            have += (size_t)got;
            buf[have] = 0;
            if (strstr(buf, "\"event\":\"iteration\"")) break;
            if (have > sizeof buf / 2) have = 0;
        }
        assert_non_null(strstr(buf, "\"event\":\"iteration\""));
        usleep(200 * 1000);
        double t1 = th_now_s();
        kill(pid, SIGTERM);
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        double took = th_now_s() - t1;
        /* drain the rest of stdout: the last line is the cancelled event */
        ssize_t got;
        have = 0;
        while ((got = read(pipefd[0], buf + have, sizeof buf - 1 - have)) > 0) have += (size_t)got;
        buf[have] = 0;
        close(pipefd[0]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 4);
        if (took > 1.0) fail_msg("model %d: took %.3f s to stop", m, took);
        assert_non_null(strstr(buf, "\"kind\":\"cancelled\""));
        assert_int_not_equal(access(art, F_OK), 0);
        char oof[1300], tmpname[1400];
        snprintf(oof, sizeof oof, "%s.oof.csv", art);
        assert_int_not_equal(access(oof, F_OK), 0);
        snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", art, (long)pid);
        assert_int_not_equal(access(tmpname, F_OK), 0);
    }
    unlink(csv);
}

int main(void)
{
    const char *b = getenv("PODIUM_BIN_DIR"), *t = getenv("PODIUM_TEST_TMP");
    snprintf(bin_dir, sizeof bin_dir, "%s", b && *b ? b : "bin");
    snprintf(tmp, sizeof tmp, "%s", t && *t ? t : "/tmp");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iris_floors_every_family),
        cmocka_unit_test(categorical_with_missing_values),
        cmocka_unit_test(identifier_column_dropped),
        cmocka_unit_test(regression_runs),
        cmocka_unit_test(spec_on_stdin_and_reproducible),
        cmocka_unit_test(column_order_does_not_matter),
        cmocka_unit_test(damaged_model_files),
        cmocka_unit_test(bad_spec_and_data),
        cmocka_unit_test(sigterm_stops_quickly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

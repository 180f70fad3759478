/* test_cnn_train.c - the "cnn" family end to end: podium-train on
 * tests/data/images/digits8x8.zip with a holdout split and a small
 * network (4 cells, 8 channels, 4 epochs: 0.97-0.98 held-out accuracy
 * measured over seeds; the bar is 0.93) keeps the holdout model (no
 * refit event, "refit": false), reports the genotype, parameter count,
 * FLOPs and device in "details" (result event and model header), and
 * podium-predict answers for a PNG of the archive; and the spec errors of
 * "device" and "refit". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <png.h>

#include "lib/genotype.h"
#include "tests/support/harness.h"
#include "tests/support/imgfix.h"
#include "trainers/imagedata.h"

#define DIGITS "tests/data/images/digits8x8.zip"

static char tmp[512];

static const char *tp(const char *name)
{
    static char bufs[8][700];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tmp, name);
    return b;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "%s/cnn-train-%d",
             getenv("PODIUM_TEST_TMP") ? getenv("PODIUM_TEST_TMP") : "/tmp", (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static void train_and_predict(void **state)
{
    (void)state;
    char spec[1024];
    snprintf(spec, sizeof spec,
             "{\"kind\": \"images\", \"data\": \"%s\", \"device\": \"cpu\","
             " \"model\": {\"family\": \"cnn\", \"params\": {\"cells\": 4, \"channels\": 8,"
             " \"epochs\": 4, \"batch_size\": 32, \"seed\": 0}},"
             " \"cv\": {\"holdout\": 0.2, \"seed\": 0}, \"threads\": 1, \"artifact\": \"%s\"}\n",
             DIGITS, tp("cnn.pdm"));
    th_write_file(tp("cnn.json"), spec);
    int rc = th_run("podium-train", NULL, NULL, tp("cnn.json"), tp("cnn.events"), tp("cnn.err"));
    if (rc != 0) {
        char *e = th_read_file(tp("cnn.err"), NULL);
        fail_msg("podium-train exited %d: %s", rc, e ? e : "");
    }
    char *events = th_read_file(tp("cnn.events"), NULL);
    assert_non_null(events);
    assert_null(strstr(events, "\"event\":\"refit\""));
    assert_non_null(strstr(events, "\"metric\":\"train_loss\""));
    free(events);
    cJSON *res = th_last_event(tp("cnn.events"));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(res, "event")->valuestring, "result");
    double score = cJSON_GetObjectItemCaseSensitive(res, "score")->valuedouble;
    if (!(score > 0.93)) fail_msg("held-out accuracy %.4f", score);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(res, "refit")));
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(res, "details");
    struct genotype g;
    char err[256];
    assert_int_equal(genotype_from_json(cJSON_GetObjectItemCaseSensitive(det, "genotype"), &g, err,
                                        sizeof err), 0);
    assert_true(cJSON_GetObjectItemCaseSensitive(det, "param_count")->valuedouble > 1000);
    assert_true(cJSON_GetObjectItemCaseSensitive(det, "flops")->valuedouble > 1000);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(det, "device"),
                                                         "kind")->valuestring, "cpu");
    cJSON_Delete(res);

    /* a digit of the archive as a PNG */
    struct imagedata d;
    struct imagedata_opts o = {.flags = IMAGEDATA_RAW};
    assert_int_equal(imagedata_load_file(DIGITS, &o, &d, err, sizeof err), 0);
    size_t pick = d.n / 2;
    uint16_t s8[64];
    for (int j = 0; j < 64; j++) s8[j] = d.raw[pick].data[j];
    int label = d.label[pick];
    imagedata_free(&d);
    struct imgfix_buf png = imgfix_png(8, 8, PNG_COLOR_TYPE_GRAY, 8, 0, s8, NULL, 0, NULL, 0);
    imgfix_write(tp("digit.png"), &png);
    free(png.p);
    assert_int_equal(th_run("podium-predict", tp("cnn.pdm"), tp("digit.png"), NULL, tp("o.csv"),
                            tp("e.txt")), 0);
    char *out = th_read_file(tp("o.csv"), NULL);
    assert_non_null(out);
    char want[64];
    snprintf(want, sizeof want, "\ndigit.png,%d,", label);
    if (strstr(out, want) == NULL) fail_msg("want class %d: %s", label, out);
    free(out);
}

static void spec_errors(void **state)
{
    (void)state;
    static const struct { const char *extra, *want; } cases[] = {
        {"\"device\": \"cuda\", \"cv\": {\"holdout\": 0.2}",
         "device: cuda requested but this build has no CUDA backend"},
        {"\"device\": \"tpu\", \"cv\": {\"holdout\": 0.2}", "device: must be"},
        {"\"refit\": false, \"cv\": {\"folds\": 3}", "refit: false needs a holdout split"},
        {"\"refit\": 1, \"cv\": {\"holdout\": 0.2}", "refit: must be true or false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char spec[512];
        snprintf(spec, sizeof spec,
                 "{\"kind\": \"images\", \"data\": \"%s\", \"model\": {\"family\": \"cnn\"}, %s}\n",
                 DIGITS, cases[i].extra);
        th_write_file(tp("bad.json"), spec);
        assert_int_equal(th_run("podium-train", NULL, NULL, tp("bad.json"), tp("bad.events"),
                                tp("bad.err")), 2);
        cJSON *ev = th_last_event(tp("bad.events"));
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "kind")->valuestring, "bad_spec");
        const char *msg = cJSON_GetObjectItemCaseSensitive(ev, "message")->valuestring;
        if (strncmp(msg, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("%s: got \"%s\"", cases[i].extra, msg);
        cJSON_Delete(ev);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(train_and_predict),
        cmocka_unit_test(spec_errors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

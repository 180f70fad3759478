/* test_driver_device.c - the driver decides a CNN family's "device"
 * before it loads or reports anything (trainers/driver.c's
 * check_device, nn_device_resolve): "cuda" where no GPU is visible (or
 * in a build without the CUDA backend) is a bad_spec on field "device"
 * (exit code 2, podium-train's error event) with no event emitted before
 * it, in the cross-validation and the lr_find modes alike; "auto" there
 * goes on (and here fails later, on the missing data file, which shows
 * that the device came first); families other than cnn and darts ignore
 * "device". Where a GPU is visible, "cuda" goes on too, and a device
 * number past the visible ones is the bad_spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "nn/cuda.h"
#include "trainers/driver.h"

struct events {
    int n;
};

static void count_event(void *ctx, const cJSON *ev)
{
    (void)ev;
    ((struct events *)ctx)->n++;
}

/* Parse spec (it must parse), run it on no data, and return the status;
 * *n_events: the events emitted before it failed. */
static int run_spec(const char *spec, struct driver_error *e, int *n_events)
{
    cJSON *j = cJSON_Parse(spec);
    assert_non_null(j);
    struct driver_spec s;
    int rc = driver_spec_parse(j, &s, e);
    cJSON_Delete(j);
    if (rc != DRIVER_OK) fail_msg("spec did not parse: %s: %s", e->field, e->message);
    struct events ev = {0};
    struct driver_opts o = {.emit = count_event, .emit_ctx = &ev};
    rc = driver_run(&s, &o, NULL, e);
    driver_spec_free(&s);
    *n_events = ev.n;
    return rc;
}

static void expect_device_error(const char *spec, const char *device)
{
    struct driver_error e;
    int n = -1;
    int rc = run_spec(spec, &e, &n);
    assert_int_equal(rc, DRIVER_EBADSPEC);
    assert_int_equal(driver_exit_code(rc), 2);
    assert_string_equal(e.field, "device");
    assert_int_equal(n, 0); /* nothing reported before the error */
    char want[64];
    snprintf(want, sizeof want, "device: \"%s\": ", device);
    if (strncmp(e.message, want, strlen(want)) != 0) fail_msg("message: %s", e.message);
    assert_non_null(strstr(e.message, "\"auto\""));
    /* podium-train prints this event */
    cJSON *ev = driver_error_event(&e);
    assert_non_null(ev);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "kind")->valuestring, "bad_spec");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "field")->valuestring, "device");
    cJSON_Delete(ev);
    print_message("  %s\n", e.message);
}

/* The run got past the device and failed on the data file instead. */
static void expect_data_error(const char *spec)
{
    struct driver_error e;
    int n = -1;
    int rc = run_spec(spec, &e, &n);
    assert_int_not_equal(rc, DRIVER_OK);
    if (strcmp(e.field, "device") == 0) fail_msg("a device error: %s", e.message);
    assert_string_equal(e.field, "data");
}

#define IMAGES "{\"kind\": \"images\", \"data\": \"no-such-dir/none.zip\", "

static void test_cuda_without_gpu(void **st)
{
    (void)st;
    if (nn_cuda_device_count() > 0) {
        /* there, "cuda" goes on to the data */
        expect_data_error(IMAGES "\"device\": \"cuda\", \"model\": {\"family\": \"cnn\"}}");
        return;
    }
    expect_device_error(IMAGES "\"device\": \"cuda\", \"model\": {\"family\": \"cnn\"}}", "cuda");
    expect_device_error(IMAGES "\"device\": \"cuda\", \"model\": {\"family\": \"darts\"}}", "cuda");
    /* the learning-rate range test runs on the device too */
    expect_device_error(IMAGES "\"device\": \"cuda\", \"model\": {\"family\": \"cnn\"}, "
                               "\"lr_find\": {\"iterations\": 10}}", "cuda");
    /* before the artifact's folder is checked, too */
    expect_device_error(IMAGES "\"device\": \"cuda\", \"artifact\": \"no-such-dir/m.pdm\", "
                               "\"model\": {\"family\": \"cnn\"}}", "cuda");
}

static void test_missing_device_number(void **st)
{
    (void)st;
    expect_device_error(IMAGES "\"device\": \"cuda:1000\", \"model\": {\"family\": \"cnn\"}}",
                        "cuda:1000");
}

static void test_auto_and_cpu_go_on(void **st)
{
    (void)st;
    expect_data_error(IMAGES "\"device\": \"auto\", \"model\": {\"family\": \"cnn\"}}");
    expect_data_error(IMAGES "\"device\": \"cpu\", \"model\": {\"family\": \"darts\"}}");
    expect_data_error(IMAGES "\"model\": {\"family\": \"cnn\"}}");
}

/* Families that never run on a GPU ignore "device", as before. */
static void test_other_families_ignore_it(void **st)
{
    (void)st;
    expect_data_error("{\"data\": \"no-such-dir/t.csv\", \"target\": \"y\", \"device\": \"cuda:1000\","
                      " \"model\": {\"family\": \"gbm\"}}");
    expect_data_error(IMAGES "\"device\": \"cuda:1000\", \"model\": {\"family\": \"knn\"}}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_without_gpu),
        cmocka_unit_test(test_missing_device_number),
        cmocka_unit_test(test_auto_and_cpu_go_on),
        cmocka_unit_test(test_other_families_ignore_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

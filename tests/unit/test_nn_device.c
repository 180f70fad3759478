/* test_nn_device.c - choosing the CNN engine's backend from a spec's
 * "device" (nn/device.h) and describing it for trial results. Runs with
 * or without a GPU: what it checks depends on nn_cuda_device_count(), and
 * every branch asserts something real (no GPU: "cuda" is a clear error
 * and "auto" is the CPU; a GPU: both are CUDA). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "nn/cuda.h"
#include "nn/device.h"

static void test_check(void **st)
{
    (void)st;
    char err[256];
    assert_int_equal(nn_device_check("cpu", err, sizeof err), 0);
    assert_int_equal(nn_device_check("cuda", err, sizeof err), 0);
    assert_int_equal(nn_device_check("cuda:1", err, sizeof err), 0);
    assert_int_equal(nn_device_check("auto", err, sizeof err), 0);
    assert_int_equal(nn_device_check(NULL, err, sizeof err), 0);
    const char *bad[] = {"gpu", "", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "cpu "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        assert_int_equal(nn_device_check(bad[i], err, sizeof err), -1);
        assert_non_null(strstr(err, "device must be"));
    }
    assert_null(nn_backend_for_device("tpu", 1, 0, err, sizeof err));
}

static void test_cpu(void **st)
{
    (void)st;
    char err[256];
    struct nn_backend *be = nn_backend_for_device("cpu", 2, 0, err, sizeof err);
    assert_non_null(be);
    assert_string_equal(be->name, "cpu");
    struct nn_device_info info;
    nn_device_describe(be, &info);
    assert_string_equal(info.kind, "cpu");
    assert_true(info.peak_memory_bytes > 0);
    cJSON *j = nn_device_to_json(&info);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "kind")->valuestring, "cpu");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "name")));
    assert_true(cJSON_GetObjectItem(j, "peak_memory_bytes")->valuedouble > 0);
    cJSON_Delete(j);
    assert_int_equal(nn_cuda_peak_bytes(be), 0);
    assert_int_equal(nn_cuda_backend_device_name(be, err, sizeof err), -1);
    nn_backend_free(be);
}

static void test_cuda_and_auto(void **st)
{
    (void)st;
    char err[256] = "";
    int gpus = nn_cuda_device_count();
    struct nn_backend *cuda = nn_backend_for_device("cuda", 1, 0, err, sizeof err);
    struct nn_backend *au = nn_backend_for_device("auto", 1, 0, err, sizeof err);
    assert_non_null(au);
    if (gpus == 0) {
        /* a clear error naming the device, and auto falls back to the CPU */
        assert_null(cuda);
        err[0] = 0;
        assert_null(nn_backend_for_device("cuda", 1, 0, err, sizeof err));
        assert_non_null(strstr(err, "device \"cuda\""));
        assert_true(strstr(err, "no CUDA GPU") || strstr(err, "no CUDA backend"));
        assert_string_equal(au->name, "cpu");
        char name[64];
        assert_int_equal(nn_cuda_device_name(0, name, sizeof name), -1);
        assert_string_equal(name, "");
    } else {
        assert_non_null(cuda);
        assert_string_equal(cuda->name, "cuda");
        assert_string_equal(au->name, "cuda");
        struct nn_device_info info;
        nn_device_describe(cuda, &info);
        assert_string_equal(info.kind, "cuda");
        assert_true(info.name[0] != 0);
        nn_backend_free(cuda);
    }
    char e2[256] = "";
    assert_null(nn_backend_for_device("cuda:1000", 1, 0, e2, sizeof e2));
    assert_true(e2[0] != 0);
    nn_backend_free(au);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_cpu),
        cmocka_unit_test(test_cuda_and_auto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

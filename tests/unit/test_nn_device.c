/* test_nn_device.c - choosing the CNN engine's backend from a spec's
 * "device" (nn/device.h), resolving it without starting anything, and
 * describing it for trial results, with the CPU's name parsed from the
 * sample /proc/cpuinfo texts in tests/data/cpuinfo/ (x86 and aarch64).
 * Runs with or without a GPU: what it checks depends on
 * nn_cuda_device_count(), and every branch asserts something real (no
 * GPU: "cuda" is a clear error and "auto" is the CPU; a GPU: both are
 * CUDA). Needs only libnn (tests/gpu/run.sh links it so). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* nn_device_resolve: the same decision as nn_backend_for_device, made
 * without starting a backend, with the message a trainer reports. */
static void test_resolve(void **st)
{
    (void)st;
    char err[256];
    int gpus = nn_cuda_device_count();
    assert_int_equal(nn_device_resolve(NULL, err, sizeof err), NN_DEVICE_CPU);
    assert_int_equal(nn_device_resolve("cpu", err, sizeof err), NN_DEVICE_CPU);
    err[0] = 0;
    assert_int_equal(nn_device_resolve("gpu", err, sizeof err), -1);
    assert_non_null(strstr(err, "device must be"));
    assert_int_equal(nn_device_resolve("auto", err, sizeof err), gpus > 0 ? NN_DEVICE_CUDA : NN_DEVICE_CPU);
    err[0] = 0;
    int k = nn_device_resolve("cuda", err, sizeof err);
    if (gpus == 0) {
        assert_int_equal(k, -1);
        assert_true(strncmp(err, "device \"cuda\": ", 15) == 0);
        assert_true(strstr(err, "no CUDA GPU is visible") || strstr(err, "this build has no CUDA backend"));
        char why[256] = "";
        assert_int_equal(nn_cuda_probe(0, why, sizeof why), -1);
        assert_non_null(strstr(err, why)); /* the probe's reason, quoted whole */
    } else {
        assert_int_equal(k, NN_DEVICE_CUDA);
        assert_int_equal(nn_cuda_probe(0, err, sizeof err), 0);
    }
    err[0] = 0;
    assert_int_equal(nn_device_resolve("cuda:1000", err, sizeof err), -1);
    assert_true(strncmp(err, "device \"cuda:1000\": ", 20) == 0);
    if (gpus > 0) assert_non_null(strstr(err, "CUDA device 1000 does not exist"));
}

/* A sample cpuinfo text under tests/data/cpuinfo/ (from the repository
 * root, where tests run, or $PODIUM_SOURCE_DIR). */
static char *sample(const char *name)
{
    static const char *envs[] = {NULL, "PODIUM_SOURCE_DIR"};
    char path[1024];
    for (size_t i = 0; i < 2; i++) {
        const char *root = envs[i] ? getenv(envs[i]) : ".";
        if (!root) continue;
        snprintf(path, sizeof path, "%s/tests/data/cpuinfo/%s", root, name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        char *text = calloc(1, 65536);
        assert_non_null(text);
        size_t n = fread(text, 1, 65535, f);
        fclose(f);
        assert_true(n > 0);
        return text;
    }
    fail_msg("tests/data/cpuinfo/%s not found (run from the repository root or set PODIUM_SOURCE_DIR)", name);
    return NULL;
}

static void expect_name(const char *file, const char *text, const char *machine, const char *want)
{
    char buf[256] = "x";
    nn_device_cpu_name(text, machine, buf, sizeof buf);
    if (strcmp(buf, want) != 0) fail_msg("%s: got \"%s\", want \"%s\"", file, buf, want);
}

static void test_cpu_name(void **st)
{
    (void)st;
    static const struct { const char *file, *machine, *want; } files[] = {
        {"x86_64.txt", "x86_64", "Intel(R) Xeon(R) Platinum 8480+"},
        /* no model name: the core from implementer and part */
        {"aarch64_neoverse_v2.txt", "aarch64", "ARM Neoverse-V2"},
        /* a board: its SoC ("Hardware") before the core */
        {"aarch64_board.txt", "aarch64", "BCM2835"},
        /* a core this file does not name */
        {"aarch64_ampere.txt", "aarch64", "Ampere CPU part 0xac3"},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *text = sample(files[i].file);
        expect_name(files[i].file, text, files[i].machine, files[i].want);
        free(text);
    }
    /* keys match whole: "cpu family" and "cpu MHz" are not POWER's "cpu" */
    expect_name("x86 without model name", "processor\t: 0\ncpu family\t: 6\ncpu MHz\t\t: 2000.000\n",
                "x86_64", "x86_64 CPU");
    expect_name("POWER", "processor\t: 0\ncpu\t\t: POWER9, altivec supported\nclock\t\t: 2.3GHz\n",
                "ppc64le", "POWER9, altivec supported");
    /* an empty value does not count; the board's Model then does */
    expect_name("empty model name", "model name\t:   \r\nModel\t: Jetson AGX Orin\n", "aarch64",
                "Jetson AGX Orin");
    expect_name("unknown implementer", "CPU implementer\t: 0x99\nCPU part\t: 0x001\n", "aarch64",
                "CPU implementer 0x99 part 0x001");
    expect_name("garbled part", "CPU implementer\t: 0x41\nCPU part\t: zz\n", "aarch64", "aarch64 CPU");
    expect_name("empty", "", "aarch64", "aarch64 CPU");
    expect_name("nothing", NULL, NULL, "unknown CPU");
    expect_name("no machine", "", "", "unknown CPU");
    /* a short buffer is cut, never overrun */
    char small[8];
    nn_device_cpu_name("model name\t: Intel(R) Xeon(R)\n", "x86_64", small, sizeof small);
    assert_string_equal(small, "Intel(R");
    /* this machine's CPU has a name */
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    assert_non_null(be);
    struct nn_device_info info;
    nn_device_describe(be, &info);
    assert_true(info.name[0] != 0);
    print_message("  this machine: \"%s\"\n", info.name);
    nn_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_cpu),
        cmocka_unit_test(test_cuda_and_auto),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_cpu_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

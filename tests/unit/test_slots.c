/* test_slots.c - the scheduler's CPU and GPU slots: device lists
 * configured or detected, placement (a GPU family takes a free GPU, else
 * a CPU slot; other families never see a GPU), what may be claimed, and
 * --gpus on the command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "scheduler/config.h"
#include "scheduler/slots.h"
#include "scheduler/space.h"

static void lists(void **state)
{
    struct slots s;
    char err[256];
    assert_int_equal(slots_init(&s, 2, "0,1", err, sizeof err), 0);
    assert_int_equal(s.n_gpu, 2);
    assert_string_equal(s.gpu_ids[0], "0");
    assert_string_equal(s.gpu_ids[1], "1");
    assert_int_equal(slots_init(&s, 2, "GPU-8a1b2c3d,3", err, sizeof err), 0);
    assert_int_equal(s.n_gpu, 2);
    assert_string_equal(s.gpu_ids[0], "GPU-8a1b2c3d");
    assert_int_equal(slots_init(&s, 2, "none", err, sizeof err), 0);
    assert_int_equal(s.n_gpu, 0);

    const char *bad[] = {"0,,1", "0;1", "1,1", ",", "0 1", "x/../y", "012345678901234567"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(slots_init(&s, 2, bad[i], err, sizeof err), -1);
        assert_non_null(strstr(err, "--gpus"));
    }
}

static void detected_from_environment(void **state)
{
    struct slots s;
    char err[256];
    setenv("CUDA_VISIBLE_DEVICES", "2,5", 1);
    assert_int_equal(slots_init(&s, 1, "auto", err, sizeof err), 0);
    assert_int_equal(s.n_gpu, 2);
    assert_string_equal(s.gpu_ids[1], "5");
    setenv("CUDA_VISIBLE_DEVICES", "", 1);
    assert_int_equal(slots_init(&s, 1, "auto", err, sizeof err), 0);
    assert_int_equal(s.n_gpu, 0);
    setenv("CUDA_VISIBLE_DEVICES", "-1", 1);
    assert_int_equal(slots_init(&s, 1, "auto", err, sizeof err), 0);
    assert_int_equal(s.n_gpu, 0);
    unsetenv("CUDA_VISIBLE_DEVICES");
}

static void placement(void **state)
{
    struct slots s;
    char err[256];
    assert_int_equal(slots_init(&s, 1, "3,7", err, sizeof err), 0);
    assert_int_equal(slots_claim_mask(&s), SLOTS_CPU | SLOTS_GPU);

    /* a CPU family takes the CPU slot and sees no GPU */
    struct slot cpu, g1, g2, g3, none;
    assert_int_equal(slots_take(&s, 0, &cpu), 0);
    assert_int_equal(cpu.gpu, -1);
    assert_string_equal(slots_visible_devices(&s, &cpu), "");
    /* CPU full: only GPU families may be claimed, and a CPU family fits nowhere */
    assert_int_equal(slots_claim_mask(&s), SLOTS_GPU);
    assert_int_equal(slots_take(&s, 0, &none), -1);

    /* GPU families get one GPU each, in order */
    assert_int_equal(slots_take(&s, 1, &g1), 0);
    assert_string_equal(slots_visible_devices(&s, &g1), "3");
    assert_int_equal(slots_take(&s, 1, &g2), 0);
    assert_string_equal(slots_visible_devices(&s, &g2), "7");
    assert_int_equal(slots_claim_mask(&s), 0);
    assert_int_equal(slots_take(&s, 1, &g3), -1);

    /* a freed GPU is taken again; with GPUs busy a GPU family falls back to the CPU */
    slots_put(&s, &g1);
    assert_int_equal(slots_claim_mask(&s), SLOTS_GPU);
    assert_int_equal(slots_take(&s, 1, &g3), 0);
    assert_string_equal(slots_visible_devices(&s, &g3), "3");
    slots_put(&s, &cpu);
    assert_int_equal(slots_claim_mask(&s), SLOTS_CPU);
    assert_int_equal(slots_take(&s, 1, &cpu), 0);
    assert_int_equal(cpu.gpu, -1);
    assert_string_equal(slots_visible_devices(&s, &cpu), "");
    slots_put(&s, &cpu);
    slots_put(&s, &g2);
    slots_put(&s, &g3);
    assert_int_equal(s.cpu_used, 0);
    assert_int_equal(slots_claim_mask(&s), SLOTS_CPU | SLOTS_GPU);
}

static void no_gpus(void **state)
{
    struct slots s;
    char err[256];
    assert_int_equal(slots_init(&s, 2, "none", err, sizeof err), 0);
    struct slot a, b, c;
    assert_int_equal(slots_take(&s, 1, &a), 0);   /* a GPU family runs on the CPU */
    assert_int_equal(a.gpu, -1);
    assert_int_equal(slots_take(&s, 0, &b), 0);
    assert_int_equal(slots_claim_mask(&s), 0);
    assert_int_equal(slots_take(&s, 0, &c), -1);
}

static void command_line(void **state)
{
    struct sched_config c;
    char err[256];
    unsetenv("PODIUM_GPUS");
    char *a1[] = {"podium-scheduler", NULL};
    assert_int_equal(config_parse(&c, 1, a1, stdout, err, sizeof err), CONFIG_RUN);
    assert_string_equal(c.gpus, "auto");
    char *a2[] = {"podium-scheduler", "--gpus=0,1", NULL};
    assert_int_equal(config_parse(&c, 2, a2, stdout, err, sizeof err), CONFIG_RUN);
    assert_string_equal(c.gpus, "0,1");
    setenv("PODIUM_GPUS", "none", 1);
    assert_int_equal(config_parse(&c, 1, a1, stdout, err, sizeof err), CONFIG_RUN);
    assert_string_equal(c.gpus, "none");
    unsetenv("PODIUM_GPUS");
    char *a3[] = {"podium-scheduler", "--gpus=0,0", NULL};
    assert_int_equal(config_parse(&c, 2, a3, stdout, err, sizeof err), CONFIG_EUSAGE);
    assert_non_null(strstr(err, "named twice"));
}

/* The CNN trainers take GPUs; the tabular families are CPU-only. */
static void tabular_families_are_cpu(void **state)
{
    for (size_t i = 0; space_family_at(i); i++)
        assert_int_equal(space_family_uses_gpu(space_family_at(i)->name), 0);
    assert_int_equal(space_family_uses_gpu("cnn"), 1);
    assert_int_equal(space_family_uses_gpu("darts"), 1);
    assert_int_equal(space_family_uses_gpu("ensemble"), 0);
    assert_int_equal(space_family_uses_gpu(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lists),
        cmocka_unit_test(detected_from_environment),
        cmocka_unit_test(placement),
        cmocka_unit_test(no_gpus),
        cmocka_unit_test(command_line),
        cmocka_unit_test(tabular_families_are_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

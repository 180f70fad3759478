/* test_retention_parse.c - the scheduler's --events-retention values
 * (scheduler/retention.h) and its two event flags' defaults and bounds
 * (scheduler/config.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "scheduler/config.h"
#include "scheduler/retention.h"

static void windows_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long long seconds;
    } ok[] = {
        {"90", 90},       {"90s", 90},      {"15m", 900},         {"36h", 129600},
        {"7d", 604800},   {"0", -1},        {"0d", -1},           {"never", -1},
        {"3650d", 3650LL * 86400},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        long long s = 12345;
        assert_int_equal(retention_parse(ok[i].text, &s), 0);
        assert_int_equal(s, ok[i].seconds);
    }
    static const char *const bad[] = {"", "d", "-1", "7 d", "7dd", "7w", "1.5h", "never ",
                                      "3651d", "99999999999999999999", "Never"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long long s = 12345;
        assert_int_equal(retention_parse(bad[i], &s), -1);
        assert_int_equal(s, 12345); /* untouched */
    }
}

static void flags_and_defaults(void **state)
{
    (void)state;
    struct sched_config c;
    char err[256];
    char *a0[] = {"podium-scheduler", "--gpus=none", NULL};
    assert_int_equal(config_parse(&c, 2, a0, stdout, err, sizeof err), CONFIG_RUN);
    assert_int_equal(c.events_retention, 7LL * 86400);
    assert_int_equal(c.events_progress_cap, 10000);

    char *a1[] = {"podium-scheduler", "--gpus=none", "--events-retention=never",
                  "--events-progress-cap=0", NULL};
    assert_int_equal(config_parse(&c, 4, a1, stdout, err, sizeof err), CONFIG_RUN);
    assert_int_equal(c.events_retention, -1);
    assert_int_equal(c.events_progress_cap, 0);

    char *a2[] = {"podium-scheduler", "--gpus=none", "--events-retention=7 days", NULL};
    assert_int_equal(config_parse(&c, 3, a2, stdout, err, sizeof err), CONFIG_EUSAGE);
    assert_non_null(strstr(err, "--events-retention"));
    char *a3[] = {"podium-scheduler", "--gpus=none", "--events-progress-cap=-5", NULL};
    assert_int_equal(config_parse(&c, 3, a3, stdout, err, sizeof err), CONFIG_EUSAGE);
    assert_non_null(strstr(err, "--events-progress-cap"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(windows_parse),
        cmocka_unit_test(flags_and_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

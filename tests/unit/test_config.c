/* test_config.c - settings from the environment, flags winning over it,
 * and bad values named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "server/config.h"

static void defaults(void **state)
{
    unsetenv("PODIUM_PORT");
    unsetenv("DATABASE_URL");
    struct server_config c;
    char err[256];
    char *argv[] = {"podium-server", NULL};
    assert_int_equal(config_load(&c, 1, argv, err, sizeof err), 0);
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.bind, "127.0.0.1");
    assert_int_equal(c.db_pool, c.threads);
    assert_int_equal(c.max_body_bytes, 1 << 20);
}

static void env_then_flags(void **state)
{
    setenv("PODIUM_PORT", "9000", 1);
    setenv("DATABASE_URL", "dbname=x", 1);
    struct server_config c;
    char err[256];
    char *argv1[] = {"podium-server", NULL};
    assert_int_equal(config_load(&c, 1, argv1, err, sizeof err), 0);
    assert_int_equal(c.port, 9000);
    assert_string_equal(c.database_url, "dbname=x");
    char *argv2[] = {"podium-server", "--port", "9100", "--migrate", "--threads=3", NULL};
    assert_int_equal(config_load(&c, 5, argv2, err, sizeof err), 0);
    assert_int_equal(c.port, 9100);
    assert_int_equal(c.threads, 3);
    assert_int_equal(c.db_pool, 3);
    assert_true(c.migrate_only);
    unsetenv("PODIUM_PORT");
    unsetenv("DATABASE_URL");
}

static void bad_values_are_named(void **state)
{
    struct server_config c;
    char err[256];
    setenv("PODIUM_PORT", "80x", 1);
    char *argv[] = {"podium-server", NULL};
    assert_int_equal(config_load(&c, 1, argv, err, sizeof err), -1);
    assert_non_null(strstr(err, "PODIUM_PORT"));
    unsetenv("PODIUM_PORT");
    char *argv2[] = {"podium-server", "--threads=0", NULL};
    assert_int_equal(config_load(&c, 2, argv2, err, sizeof err), -1);
    assert_non_null(strstr(err, "threads"));
    char *argv3[] = {"podium-server", "--nope", NULL};
    assert_int_equal(config_load(&c, 2, argv3, err, sizeof err), -1);
    assert_non_null(strstr(err, "--nope"));
    char *argv4[] = {"podium-server", "--log-level=loud", NULL};
    assert_int_equal(config_load(&c, 2, argv4, err, sizeof err), -1);
    assert_non_null(strstr(err, "log-level"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(env_then_flags),
        cmocka_unit_test(bad_values_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_migrate.c - migrations against the real PostgreSQL: applied once
 * each, also under concurrent starters (threads and podium-server
 * processes); a changed applied migration stops start-up; a failing one
 * leaves nothing behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "lib/migrate.h"
#include "tests/support/harness.h"

static const struct migration list_v1[] = {
    {1, "one", "CREATE TABLE t1 (a int); INSERT INTO t1 VALUES (1);", 51},
    {2, "two", "CREATE TABLE t2 (b int);", 24},
};

static long scalar(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    long v = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
                 ? atol(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    return v;
}

static void applies_once_and_is_idempotent(void **state)
{
    struct th_db db;
    assert_int_equal(th_db_create(&db), 0);
    PGconn *c = th_db_connect(&db);
    assert_non_null(c);
    char err[512];
    assert_int_equal(migrate_apply(c, list_v1, 2, err, sizeof err), 2);
    assert_int_equal(migrate_check(c, list_v1, 2, err, sizeof err), 0);
    assert_int_equal(migrate_apply(c, list_v1, 2, err, sizeof err), 0);
    assert_int_equal(scalar(c, "SELECT count(*) FROM t1"), 1);
    assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations"), 2);
    PQfinish(c);
    th_db_drop(&db);
}

static void changed_migration_stops(void **state)
{
    struct th_db db;
    assert_int_equal(th_db_create(&db), 0);
    PGconn *c = th_db_connect(&db);
    char err[512];
    assert_int_equal(migrate_apply(c, list_v1, 2, err, sizeof err), 2);
    struct migration changed[2] = {list_v1[0], list_v1[1]};
    changed[1].sql = "CREATE TABLE t2 (b bigint);";
    changed[1].len = strlen(changed[1].sql);
    assert_int_equal(migrate_apply(c, changed, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "0002_two.sql was changed after it was applied"));
    assert_int_equal(migrate_check(c, changed, 2, err, sizeof err), -1);
    /* A database migrated further than this build knows is refused too. */
    assert_int_equal(migrate_apply(c, list_v1, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "newer"));
    PQfinish(c);
    th_db_drop(&db);
}

static void failing_migration_leaves_nothing(void **state)
{
    struct th_db db;
    assert_int_equal(th_db_create(&db), 0);
    PGconn *c = th_db_connect(&db);
    char err[512];
    const struct migration bad[] = {
        list_v1[0],
        {2, "broken", "CREATE TABLE half (x int); SELECT no_such_function();", 53},
    };
    assert_int_equal(migrate_apply(c, bad, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "0002_broken failed"));
    assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations"), 1);
    assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'half'"), 0);
    /* Fixing it and running again applies the rest. */
    assert_int_equal(migrate_apply(c, list_v1, 2, err, sizeof err), 1);
    PQfinish(c);
    th_db_drop(&db);
}

struct starter { const struct th_db *db; int applied; };

static void *start_one(void *arg)
{
    struct starter *s = arg;
    PGconn *c = th_db_connect(s->db);
    char err[512];
    s->applied = c ? migrate_apply(c, podium_migrations, podium_migrations_count, err, sizeof err) : -1;
    PQfinish(c);
    return NULL;
}

static void concurrent_threads_apply_each_once(void **state)
{
    struct th_db db;
    assert_int_equal(th_db_create(&db), 0);
    enum { N = 6 };
    pthread_t t[N];
    struct starter s[N];
    for (int i = 0; i < N; i++) {
        s[i].db = &db;
        pthread_create(&t[i], NULL, start_one, &s[i]);
    }
    int total = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_true(s[i].applied >= 0);
        total += s[i].applied;
    }
    assert_int_equal(total, (int)podium_migrations_count);
    PGconn *c = th_db_connect(&db);
    assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations"), (long)podium_migrations_count);
    PQfinish(c);
    th_db_drop(&db);
}

/* Two real `podium-server --migrate` processes started together. */
static void concurrent_servers_migrate_once(void **state)
{
    struct th_db db;
    assert_int_equal(th_db_create(&db), 0);
    char bin[512], url[640], keyfile[600];
    snprintf(bin, sizeof bin, "%s/podium-server", getenv("PODIUM_BIN_DIR"));
    snprintf(url, sizeof url, "--database-url=%s", db.conninfo);
    snprintf(keyfile, sizeof keyfile, "--bootstrap-key-file=%s/mig-key-%d",
             getenv("PODIUM_TEST_TMP"), (int)getpid());
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            execl(bin, bin, "--migrate", url, keyfile, (char *)NULL);
            _exit(127);
        }
    }
    for (int i = 0; i < 2; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    PGconn *c = th_db_connect(&db);
    assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations"), (long)podium_migrations_count);
    /* ...and bootstrapped exactly one team with one key. */
    assert_int_equal(scalar(c, "SELECT count(*) FROM teams"), 1);
    assert_int_equal(scalar(c, "SELECT count(*) FROM api_keys"), 1);
    PQfinish(c);
    th_db_drop(&db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(applies_once_and_is_idempotent),
        cmocka_unit_test(changed_migration_stops),
        cmocka_unit_test(failing_migration_leaves_nothing),
        cmocka_unit_test(concurrent_threads_apply_each_once),
        cmocka_unit_test(concurrent_servers_migrate_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

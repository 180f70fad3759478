/* test_lifecycle.c - the server across PostgreSQL restarts and its own
 * shutdown: /readyz is 503 while the database is down and 200 once it is
 * back, with no restart of the server; SIGTERM lets a request that is
 * already running finish, then exits 0.
 *
 * This program stops and starts the suite's shared cluster: tests/run.sh
 * runs programs one at a time, so nothing else is using it meanwhile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "tests/support/harness.h"

static long get_status(const struct th_server *s, const char *path, const char *key,
                       char *ctype, size_t ctlen)
{
    struct th_resp r;
    if (th_http(s, "GET", path, key, NULL, NULL, 0, &r) < 0) {
        th_resp_free(&r);
        return -1;
    }
    if (ctype) snprintf(ctype, ctlen, "%s", r.content_type);
    th_resp_free(&r);
    return r.status;
}

static void readyz_follows_the_database(void **state)
{
    struct th_db db;
    struct th_server srv;
    assert_int_equal(th_db_create(&db), 0);
    assert_int_equal(th_server_start(&srv, &db, NULL), 0);
    assert_int_equal(get_status(&srv, "/readyz", NULL, NULL, 0), 200);
    assert_int_equal(get_status(&srv, "/v1/me", srv.key, NULL, 0), 200);

    assert_int_equal(th_pg_ctl("stop"), 0);
    char ct[128];
    assert_int_equal(get_status(&srv, "/readyz", NULL, ct, sizeof ct), 503);
    assert_string_equal(ct, "application/problem+json");
    assert_int_equal(get_status(&srv, "/v1/me", srv.key, ct, sizeof ct), 503);
    assert_string_equal(ct, "application/problem+json");
    assert_int_equal(get_status(&srv, "/healthz", NULL, NULL, 0), 200); /* alive all along */

    assert_int_equal(th_pg_ctl("start"), 0);
    long st = 0;
    for (int i = 0; i < 100 && st != 200; i++) {
        st = get_status(&srv, "/readyz", NULL, NULL, 0);
        if (st != 200) usleep(100000);
    }
    assert_int_equal(st, 200);
    /* Every pooled connection died with the old postmaster: none of them
     * may turn a request into an error now. */
    for (int i = 0; i < 12; i++) assert_int_equal(get_status(&srv, "/v1/me", srv.key, NULL, 0), 200);

    assert_int_equal(th_server_stop(&srv), 0);
    th_db_drop(&db);
}

struct slow { struct th_server *srv; long status; };

static void *slow_request(void *arg)
{
    struct slow *s = arg;
    s->status = get_status(s->srv, "/v1/me", s->srv->key, NULL, 0);
    return NULL;
}

static void sigterm_finishes_in_flight_requests(void **state)
{
    struct th_db db;
    struct th_server srv;
    assert_int_equal(th_db_create(&db), 0);
    assert_int_equal(th_server_start(&srv, &db, NULL), 0);

    /* Hold a lock that authentication needs, so the request stays in
     * flight while the server is told to stop. */
    PGconn *c = th_db_connect(&db);
    PQclear(PQexec(c, "BEGIN"));
    PQclear(PQexec(c, "LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE"));
    struct slow s = {&srv, 0};
    pthread_t t;
    pthread_create(&t, NULL, slow_request, &s);
    usleep(300000);
    kill(srv.pid, SIGTERM);
    usleep(300000);
    /* The listener is closed: new connections are refused. */
    assert_int_equal(get_status(&srv, "/healthz", NULL, NULL, 0), -1);
    PQclear(PQexec(c, "COMMIT"));
    pthread_join(t, NULL);
    assert_int_equal(s.status, 200);
    int st;
    assert_int_equal(waitpid(srv.pid, &st, 0), srv.pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    srv.pid = 0;
    assert_false(th_log_has_sanitizer_report(srv.log_path));
    PQfinish(c);
    th_db_drop(&db);
}

static void refuses_a_changed_schema(void **state)
{
    struct th_db db;
    struct th_server srv;
    assert_int_equal(th_db_create(&db), 0);
    assert_int_equal(th_server_start(&srv, &db, NULL), 0);
    assert_int_equal(th_server_stop(&srv), 0);
    /* Pretend migration 1 had different text when it was applied. */
    PGconn *c = th_db_connect(&db);
    PQclear(PQexec(c, "UPDATE schema_migrations SET checksum = 'x' WHERE version = 1"));
    PQfinish(c);
    assert_int_equal(th_server_start(&srv, &db, NULL), -1);
    FILE *f = fopen(srv.log_path, "r");
    char line[2048];
    int said = 0;
    while (f && fgets(line, sizeof line, f)) said |= strstr(line, "was changed after it was applied") != NULL;
    if (f) fclose(f);
    assert_true(said);
    th_db_drop(&db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(readyz_follows_the_database),
        cmocka_unit_test(sigterm_finishes_in_flight_requests),
        cmocka_unit_test(refuses_a_changed_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_cache.c - rendered leaderboards served from memory (server/rcache.h
 * through server/jobs.c), through a real server, scheduler and PostgreSQL:
 * a cached body is the bytes a fresh server renders (a second server on
 * the same database, whose cache is empty), JSON and CSV apart; a change
 * to the board (a trial's score rewritten in SQL, as any writer may) is
 * served as soon as its version moves, on the job's board and the team's;
 * another team gets 404 for the job's board, with or without a tag, and
 * its own empty team board; and a cached board is served with PostgreSQL
 * stopped while anything that needs a query is 503. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <unistd.h>

#include "tests/support/harness.h"

static struct th_stack st;
static struct th_server fresh;     /* a second server: its cache starts empty */
static char job[64];

static int setup(void **state)
{
    const char *extra[] = {"--slots=2", NULL};
    if (th_stack_start(&st, extra, "iris", "tests/data/tabular/iris.csv") < 0) return -1;
    return 0;
}

static int teardown(void **state)
{
    int rc = fresh.pid ? th_server_stop(&fresh) : 0;
    int sched = st.sched.pid ? th_scheduler_stop(&st.sched) : 0;   /* the first test stops it */
    int srv = th_server_stop(&st.srv);
    th_db_drop(&st.db);
    return rc == 0 && sched == 0 && srv == 0 ? 0 : -1;
}

/* GET path on s with key, Accept (NULL: none) and If-None-Match (NULL:
 * none). */
static struct th_resp get(const struct th_server *s, const char *path, const char *key,
                          const char *accept, const char *inm)
{
    char auth[200], acc[100], tag[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    snprintf(acc, sizeof acc, "Accept: %s", accept ? accept : "");
    snprintf(tag, sizeof tag, "If-None-Match: %s", inm ? inm : "");
    const char *h[4] = {auth, NULL, NULL, NULL};
    int n = 1;
    if (accept) h[n++] = acc;
    if (inm) h[n++] = tag;
    struct th_resp r;
    assert_int_equal(th_http_headers(s, "GET", path, h, NULL, 0, &r), 0);
    return r;
}

static void assert_same(const struct th_resp *a, const struct th_resp *b)
{
    assert_int_equal(a->status, b->status);
    assert_string_equal(a->etag, b->etag);
    assert_string_equal(a->content_type, b->content_type);
    assert_int_equal(a->body_len, b->body_len);
    assert_memory_equal(a->body, b->body, a->body_len);
}

static void board_paths(char *lb, size_t lb_len, char *team, size_t team_len)
{
    snprintf(lb, lb_len, "/v1/jobs/%s/leaderboard", job);
    snprintf(team, team_len, "/v1/leaderboards?dataset_id=%s", st.dataset);
}

/* A finished job with a few models; its boards, twice from the first
 * server (the second from memory) and once from a fresh one: the same
 * bytes and tags, JSON and CSV each their own. */
static void cached_boards_are_what_a_fresh_server_renders(void **state)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"models\": [\"nb\", \"knn\", \"linear\"],"
             " \"budget\": {\"max_trials\": 4, \"max_seconds\": 120}, \"cv\": {\"folds\": 3}}",
             st.dataset);
    snprintf(job, sizeof job, "%s", th_post_job(&st.srv, body));
    assert_string_equal(th_wait_job(&st.srv, job, "succeeded", 120), "succeeded");
    /* Nothing else writes from now on (a trial the scheduler was still
     * winding up would move the board between two reads). */
    assert_int_equal(th_scheduler_stop(&st.sched), 0);
    assert_int_equal(th_server_start(&fresh, &st.db, NULL), 0);

    char lb[200], team[200];
    board_paths(lb, sizeof lb, team, sizeof team);
    static const char *const accepts[] = {NULL, "text/csv"};
    for (int path = 0; path < 2; path++) {
        struct th_resp seen[2];
        for (int a = 0; a < 2; a++) {
            const char *p = path ? team : lb;
            struct th_resp one = get(&st.srv, p, st.srv.key, accepts[a], NULL);
            struct th_resp two = get(&st.srv, p, st.srv.key, accepts[a], NULL);
            struct th_resp other = get(&fresh, p, st.srv.key, accepts[a], NULL);
            assert_int_equal(one.status, 200);
            assert_true(one.etag[0] != '\0');
            assert_same(&one, &two);
            assert_same(&one, &other);
            /* An unchanged poll is still a 304, from the cached tag too. */
            struct th_resp again = get(&st.srv, p, st.srv.key, accepts[a], one.etag);
            assert_int_equal(again.status, 304);
            th_resp_free(&again);
            th_resp_free(&two);
            th_resp_free(&other);
            seen[a] = one;
        }
        assert_non_null(strstr(seen[0].content_type, "application/json"));
        assert_non_null(strstr(seen[1].content_type, "text/csv"));
        assert_string_not_equal(seen[0].etag, seen[1].etag);
        assert_memory_equal(seen[1].body, "rank,model_id,", 14);
        assert_non_null(strstr(seen[0].body, "\"items\":[{"));
        th_resp_free(&seen[0]);
        th_resp_free(&seen[1]);
    }

    /* A query-string variant (metric) is its own board: the same picked
     * metric is the same bytes, another metric with no job is empty. */
    char with_metric[300];
    struct th_resp dflt = get(&st.srv, team, st.srv.key, NULL, NULL);
    snprintf(with_metric, sizeof with_metric, "%s&metric=logloss", team);
    struct th_resp same = get(&st.srv, with_metric, st.srv.key, NULL, NULL);
    assert_same(&dflt, &same);
    snprintf(with_metric, sizeof with_metric, "%s&metric=accuracy", team);
    struct th_resp none = get(&st.srv, with_metric, st.srv.key, NULL, NULL);
    assert_int_equal(none.status, 200);
    assert_non_null(strstr(none.body, "\"items\":[]"));
    th_resp_free(&dflt);
    th_resp_free(&same);
    th_resp_free(&none);
}

/* Rewrite the score of one of the job's models; returns its id. */
static void rewrite_a_score(const char *score, char *model, size_t model_len)
{
    PGconn *pg = th_db_connect(&st.db);
    assert_non_null(pg);
    const char *p[2] = {job, score};
    PGresult *res = PQexecParams(pg,
        "UPDATE trials SET score = $2::float8 WHERE id = (SELECT id FROM trials"
        " WHERE job_id = $1 AND state = 'succeeded' AND artifact_lo IS NOT NULL"
        " ORDER BY seq LIMIT 1) RETURNING id",
        2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) fail_msg("update: %s", PQerrorMessage(pg));
    assert_int_equal(PQntuples(res), 1);
    snprintf(model, model_len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(pg);
}

/* A change moves the board's version: the next body that carries a new
 * tag has the change in it (never the old body under the new tag), and
 * every later poll is that body. */
static void a_change_is_served_once_its_version_moves(void **state)
{
    char lb[200], team[200];
    board_paths(lb, sizeof lb, team, sizeof team);
    struct th_resp before = get(&st.srv, lb, st.srv.key, NULL, NULL);
    struct th_resp team_before = get(&st.srv, team, st.srv.key, NULL, NULL);
    assert_int_equal(before.status, 200);
    assert_null(strstr(before.body, "0.0123456"));

    char model[64];
    rewrite_a_score("0.0123456", model, sizeof model);

    /* The team board reads its version from the database: at once. */
    struct th_resp team_after = get(&st.srv, team, st.srv.key, NULL, NULL);
    assert_int_equal(team_after.status, 200);
    assert_string_not_equal(team_after.etag, team_before.etag);
    assert_non_null(strstr(team_after.body, "0.0123456"));

    /* The job's board: as soon as the NOTIFY has moved its seq. */
    double until = th_now_s() + 30;
    struct th_resp after = {0};
    for (;;) {
        after = get(&st.srv, lb, st.srv.key, NULL, NULL);
        assert_int_equal(after.status, 200);
        if (strcmp(after.etag, before.etag) != 0 || th_now_s() > until) break;
        th_resp_free(&after);
        usleep(50 * 1000);
    }
    assert_string_not_equal(after.etag, before.etag);
    assert_non_null(strstr(after.body, "0.0123456"));
    assert_non_null(strstr(after.body, model));
    struct th_resp cached = get(&st.srv, lb, st.srv.key, NULL, NULL);
    assert_same(&after, &cached);
    struct th_resp other = get(&fresh, lb, st.srv.key, NULL, NULL);
    assert_same(&after, &other);
    /* The old tag is a full answer now. */
    struct th_resp old = get(&st.srv, lb, st.srv.key, NULL, before.etag);
    assert_same(&after, &old);
    th_resp_free(&before);
    th_resp_free(&after);
    th_resp_free(&cached);
    th_resp_free(&other);
    th_resp_free(&old);
    th_resp_free(&team_before);
    th_resp_free(&team_after);
}

/* Another team: 404 for the job's board (cached as it is), with or without
 * the tag, JSON or CSV; its own, empty, board of the data set. */
static void another_team_never_gets_a_cached_body(void **state)
{
    char lb[200], team[200];
    board_paths(lb, sizeof lb, team, sizeof team);
    struct th_resp mine = get(&st.srv, lb, st.srv.key, NULL, NULL);
    assert_int_equal(mine.status, 200);

    struct th_resp r;
    assert_int_equal(th_http(&st.srv, "POST", "/v1/teams", st.srv.key, NULL,
                             "{\"name\": \"rivals\"}", strlen("{\"name\": \"rivals\"}"), &r), 0);
    assert_int_equal(r.status, 201);
    char rival[128];
    snprintf(rival, sizeof rival, "%s", th_json_str(&r, "admin_key.key"));
    th_resp_free(&r);

    const char *accepts[] = {NULL, "text/csv"};
    for (int a = 0; a < 2; a++) {
        struct th_resp plain = get(&st.srv, lb, rival, accepts[a], NULL);
        struct th_resp tagged = get(&st.srv, lb, rival, accepts[a], mine.etag);
        assert_int_equal(plain.status, 404);
        assert_int_equal(tagged.status, 404);
        assert_non_null(strstr(plain.content_type, "application/problem+json"));
        assert_non_null(strstr(tagged.content_type, "application/problem+json"));
        assert_null(strstr(plain.body, "model_id"));
        th_resp_free(&plain);
        th_resp_free(&tagged);
    }
    struct th_resp theirs = get(&st.srv, team, rival, NULL, NULL);
    assert_int_equal(theirs.status, 200);
    assert_non_null(strstr(theirs.body, "\"items\":[]"));
    assert_null(strstr(theirs.body, job));
    th_resp_free(&theirs);
    th_resp_free(&mine);
}

/* With PostgreSQL stopped, the cached board is still served in full (no
 * If-None-Match); the trials, which are not cached, are 503. */
static void a_cached_board_needs_no_database(void **state)
{
    char lb[200], team[200], trials[200];
    board_paths(lb, sizeof lb, team, sizeof team);
    snprintf(trials, sizeof trials, "/v1/jobs/%s/trials", job);
    /* A key verified just now (the auth cache keeps it for a while). */
    struct th_resp r;
    assert_int_equal(th_http(&st.srv, "GET", "/v1/me", st.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
    struct th_resp before = get(&st.srv, lb, st.srv.key, NULL, NULL);
    struct th_resp csv_before = get(&st.srv, lb, st.srv.key, "text/csv", NULL);
    assert_int_equal(before.status, 200);
    assert_int_equal(csv_before.status, 200);

    assert_int_equal(th_pg_ctl("stop"), 0);
    struct th_resp during = get(&st.srv, lb, st.srv.key, NULL, NULL);
    struct th_resp csv = get(&st.srv, lb, st.srv.key, "text/csv", NULL);
    struct th_resp uncached = get(&st.srv, trials, st.srv.key, NULL, NULL);
    assert_int_equal(th_pg_ctl("start"), 0);
    assert_same(&before, &during);
    assert_same(&csv_before, &csv);
    assert_int_equal(uncached.status, 503);
    th_resp_free(&before);
    th_resp_free(&during);
    th_resp_free(&csv);
    th_resp_free(&csv_before);
    th_resp_free(&uncached);

    /* Back to normal once PostgreSQL is. */
    double until = th_now_s() + 20;
    long status = 0;
    while (th_now_s() < until) {
        struct th_resp t = get(&st.srv, trials, st.srv.key, NULL, NULL);
        status = t.status;
        th_resp_free(&t);
        if (status == 200) break;
        usleep(200 * 1000);
    }
    assert_int_equal(status, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cached_boards_are_what_a_fresh_server_renders),
        cmocka_unit_test(a_change_is_served_once_its_version_moves),
        cmocka_unit_test(another_team_never_gets_a_cached_body),
        cmocka_unit_test(a_cached_board_needs_no_database),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

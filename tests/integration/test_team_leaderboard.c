/* test_team_leaderboard.c - GET /v1/leaderboards (the team leaderboard,
 * server/leaderboard.c) paged by keyset and exported whole as CSV, against a
 * real server and PostgreSQL, on boards seeded in SQL: an accuracy board
 * (higher is better) of 2,200 models over two jobs, more than two of the
 * export's batches, and a logloss board (lower is better) of 250, their
 * scores drawn from a few values so that ties are long and cross pages
 * and batches; beside them trials that are not models (running, failed,
 * succeeded without an artifact) and a job on another target.
 *
 * The oracle is the models read straight from the tables and sorted here
 * by the documented order (score in the metric's direction, then id in the
 * same direction), ranked as 1 + the number of strictly better scores.
 * Walking `next` must give every model exactly once, in that order, with
 * those ranks; the CSV must have a line for each, in the same order; bad
 * parameters are 400 problems naming the parameter; a model added in the
 * middle of a walk never makes the walk repeat or skip another; another
 * team sees none of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/support/harness.h"

static struct th_db db;
static struct th_server srv;
static char dataset[64];
static char team[64];

#define N_ACCURACY 2200     /* two jobs of 1,100 */
#define N_LOGLOSS 250

/* Trials that must never be on a board. */
static char not_models[4][40];

static PGresult *sql(PGconn *pg, const char *q, int n, const char *const *p)
{
    PGresult *res = PQexecParams(pg, q, n, NULL, p, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)
        fail_msg("%s: %s", q, PQerrorMessage(pg));
    return res;
}

/* A job on the data set; its id into id (40). */
static void seed_job(PGconn *pg, const char *target, const char *metric, int higher,
                     const char *age, char *id)
{
    const char *p[5] = {team, dataset, target, metric, higher ? "true" : "false"};
    char q[1024];
    snprintf(q, sizeof q,
             "INSERT INTO jobs (team_id, dataset_id, state, target, task, metric,"
             " higher_is_better, models, strategy, max_trials, max_seconds,"
             " trial_timeout_seconds, max_failed_trials, parallelism, cv, seed, created_at)"
             " VALUES ($1, $2, 'succeeded', $3, 'classification', $4, $5::boolean, '{knn}',"
             " 'random', 100000, 600, 60, 10, 1, '{\"folds\": 5}', 1, now() - interval '%s')"
             " RETURNING id",
             age);
    PGresult *res = sql(pg, q, 5, p);
    snprintf(id, 40, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

/* n models on job, seq from first, scores from `values` distinct ones. */
static void seed_models(PGconn *pg, const char *job, int first, int n, int values)
{
    char a[16], b[16], v[16];
    snprintf(a, sizeof a, "%d", first);
    snprintf(b, sizeof b, "%d", first + n - 1);
    snprintf(v, sizeof v, "%d", values);
    const char *p[5] = {job, team, a, b, v};
    PQclear(sql(pg,
        "INSERT INTO trials (job_id, team_id, seq, state, family, params, score, score_std,"
        " metrics, fit_seconds, predict_us_per_row, model_bytes, artifact_lo, finished_at)"
        " SELECT $1, $2, g, 'succeeded', 'knn', jsonb_build_object('k', g, 'note', 'a \"q\", b'),"
        "   0.5 + ((g * 7919) % $5::int) / 64.0, 0.01, '{}', 1.5, 2.0, 1000, 0, now()"
        " FROM generate_series($3::int, $4::int) g",
        5, p));
}

static int setup(void **state)
{
    if (th_db_create(&db) < 0 || th_server_start(&srv, &db, NULL) < 0) return -1;
    if (th_upload_csv(&srv, "iris", "tests/data/tabular/iris.csv", dataset, sizeof dataset) < 0)
        return -1;
    PGconn *pg = th_db_connect(&db);
    if (pg == NULL) return -1;
    const char *p[1] = {dataset};
    PGresult *res = sql(pg, "SELECT team_id FROM datasets WHERE id = $1", 1, p);
    snprintf(team, sizeof team, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    char acc1[40], acc2[40], loss[40], other[40];
    seed_job(pg, "species", "accuracy", 1, "3 hours", acc1);
    seed_job(pg, "species", "accuracy", 1, "2 hours", acc2);
    seed_job(pg, "other_target", "accuracy", 1, "4 hours", other);
    seed_job(pg, "species", "logloss", 0, "1 hour", loss);   /* the latest: the default */
    seed_models(pg, acc1, 1, N_ACCURACY / 2, 17);
    seed_models(pg, acc2, 1, N_ACCURACY / 2, 17);
    seed_models(pg, loss, 1, N_LOGLOSS, 9);
    seed_models(pg, other, 1, 40, 5);
    /* Not models: running, failed, succeeded without an artifact (an LR
     * test's), and one without a score. */
    const char *q[2] = {acc1, team};
    res = sql(pg,
        "INSERT INTO trials (job_id, team_id, seq, state, family, params, score, artifact_lo)"
        " VALUES ($1, $2, 5001, 'running', 'knn', '{}', NULL, NULL),"
        "        ($1, $2, 5002, 'failed', 'knn', '{}', 0.99, NULL),"
        "        ($1, $2, 5003, 'succeeded', 'mlp', '{}', 0.99, NULL),"
        "        ($1, $2, 5004, 'succeeded', 'mlp', '{}', NULL, 0)"
        " RETURNING id",
        2, q);
    for (int i = 0; i < 4; i++) snprintf(not_models[i], sizeof not_models[i], "%s", PQgetvalue(res, i, 0));
    PQclear(res);
    PQfinish(pg);
    return 0;
}

static int teardown(void **state)
{
    int rc = th_server_stop(&srv);
    th_db_drop(&db);
    return rc == 0 ? 0 : -1;
}

/* --- the oracle ------------------------------------------------------------------ */

struct model { char id[40]; double score; long rank; };

static int higher_first;

static int by_board_order(const void *pa, const void *pb)
{
    const struct model *a = pa, *b = pb;
    int c = a->score < b->score ? -1 : a->score > b->score ? 1 : strcmp(a->id, b->id);
    return higher_first ? -c : c;
}

/* The board's models from the tables, in board order, ranked; *n set. */
static struct model *expected(const char *metric, int higher, int *n)
{
    PGconn *pg = th_db_connect(&db);
    assert_non_null(pg);
    const char *p[3] = {team, dataset, metric};
    PGresult *res = sql(pg,
        "SELECT t.id::text, t.score FROM trials t JOIN jobs j ON j.id = t.job_id"
        " WHERE t.team_id = $1 AND j.dataset_id = $2 AND j.target = 'species' AND j.metric = $3"
        " AND t.state = 'succeeded' AND t.artifact_lo IS NOT NULL AND t.score IS NOT NULL",
        3, p);
    *n = PQntuples(res);
    struct model *m = calloc((size_t)*n + 1, sizeof *m);
    for (int i = 0; i < *n; i++) {
        snprintf(m[i].id, sizeof m[i].id, "%s", PQgetvalue(res, i, 0));
        m[i].score = strtod(PQgetvalue(res, i, 1), NULL);
    }
    PQclear(res);
    PQfinish(pg);
    higher_first = higher;
    qsort(m, (size_t)*n, sizeof *m, by_board_order);
    for (int i = 0; i < *n; i++)
        m[i].rank = i > 0 && m[i].score == m[i - 1].score ? m[i - 1].rank : i + 1;
    return m;
}

/* --- requests ---------------------------------------------------------------------- */

static struct th_resp get(const char *path, const char *key, const char *accept, const char *inm)
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
    assert_int_equal(th_http_headers(&srv, "GET", path, h, NULL, 0, &r), 0);
    return r;
}

/* Walk the board from path by `next`, checking every page against the
 * oracle from where the walk has got to; returns the models seen. */
static int walk(const char *first, const struct model *want, int n, int limit)
{
    char path[2048];
    snprintf(path, sizeof path, "%s", first);
    int seen = 0, pages = 0;
    for (;;) {
        struct th_resp r = get(path, srv.key, NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_true(r.etag[0] != '\0');
        cJSON *page = th_json(&r);
        assert_non_null(page);
        /* The total on the first page only (a count of the whole board). */
        if (pages == 0) assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(page, "total")), n);
        else assert_null(cJSON_GetObjectItem(page, "total"));
        const cJSON *items = cJSON_GetObjectItem(page, "items");
        int k = cJSON_GetArraySize(items);
        assert_true(k <= limit);
        for (int i = 0; i < k; i++, seen++) {
            const cJSON *it = cJSON_GetArrayItem(items, i);
            assert_true(seen < n);
            assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(it, "model_id")), want[seen].id);
            assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(it, "score")) == want[seen].score);
            assert_int_equal((long)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "rank")), want[seen].rank);
        }
        const char *next = cJSON_GetStringValue(cJSON_GetObjectItem(page, "next"));
        pages++;
        if (next == NULL) {
            assert_true(cJSON_IsNull(cJSON_GetObjectItem(page, "next")));
            cJSON_Delete(page);
            th_resp_free(&r);
            break;
        }
        assert_int_equal(k, limit);   /* only the last page is short */
        assert_true(strlen(next) < sizeof path);
        snprintf(path, sizeof path, "%s", next);
        cJSON_Delete(page);
        th_resp_free(&r);
        assert_true(pages <= n / limit + 1);
    }
    assert_int_equal(pages, (n + limit - 1) / limit);
    return seen;
}

/* Higher is better: every model once, in order, ties by id descending,
 * at page sizes that put tie groups across page boundaries. */
static void accuracy_pages_give_every_model_once_in_order(void **state)
{
    int n;
    struct model *want = expected("accuracy", 1, &n);
    assert_int_equal(n, N_ACCURACY);
    assert_true(want[0].score > want[n - 1].score);
    char path[300];
    static const int limits[] = {13, 100, 1000};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        snprintf(path, sizeof path, "/v1/leaderboards?dataset_id=%s&metric=accuracy&limit=%d",
                 dataset, limits[i]);
        assert_int_equal(walk(path, want, n, limits[i]), n);
    }
    free(want);
}

/* Lower is better, and the default board (the latest job's metric). */
static void logloss_pages_give_every_model_once_in_order(void **state)
{
    int n;
    struct model *want = expected("logloss", 0, &n);
    assert_int_equal(n, N_LOGLOSS);
    assert_true(want[0].score < want[n - 1].score);
    char path[300];
    snprintf(path, sizeof path, "/v1/leaderboards?dataset_id=%s&metric=logloss&limit=7", dataset);
    assert_int_equal(walk(path, want, n, 7), n);
    snprintf(path, sizeof path, "/v1/leaderboards?dataset_id=%s&limit=50", dataset);
    assert_int_equal(walk(path, want, n, 50), n);
    /* The default limit. */
    snprintf(path, sizeof path, "/v1/leaderboards?dataset_id=%s", dataset);
    struct th_resp r = get(path, srv.key, NULL, NULL);
    cJSON *page = th_json(&r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(page, "metric")), "logloss");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(page, "target")), "species");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(page, "items")), 100);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(page, "limit")), 100);
    for (int i = 0; i < 4; i++) assert_null(strstr(r.body, not_models[i]));
    cJSON_Delete(page);
    th_resp_free(&r);
    free(want);
}

/* The CSV export: every model, one line each in board order, whatever the
 * paging; its tag makes an unchanged export a 304. */
static void csv_export_has_every_model(void **state)
{
    static const struct { const char *metric; int higher; } boards[] = {{"accuracy", 1}, {"logloss", 0}};
    for (size_t b = 0; b < 2; b++) {
        int n;
        struct model *want = expected(boards[b].metric, boards[b].higher, &n);
        char path[300];
        snprintf(path, sizeof path, "/v1/leaderboards?dataset_id=%s&metric=%s", dataset,
                 boards[b].metric);
        struct th_resp r = get(path, srv.key, "text/csv", NULL);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "text/csv");
        assert_true(r.etag[0] != '\0');
        assert_int_equal(strlen(r.body), r.body_len);
        for (int k = 0; k < 4; k++) assert_null(strstr(r.body, not_models[k]));
        char *save = NULL, *line = strtok_r(r.body, "\n", &save);
        assert_string_equal(line, "rank,model_id,job_id,family,metric,score,score_std,fit_seconds,"
                                  "predict_us_per_row,model_bytes,params");
        int i = 0;
        for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
            assert_true(i < n);
            char expect[80];
            snprintf(expect, sizeof expect, "%ld,%s,", want[i].rank, want[i].id);
            assert_memory_equal(line, expect, strlen(expect));
            assert_non_null(strstr(line, ",\"{\"\"k\"\": "));   /* params, quoted */
        }
        assert_int_equal(i, n);
        /* Unchanged: 304; the JSON's tag is another. */
        struct th_resp again = get(path, srv.key, "text/csv", r.etag);
        assert_int_equal(again.status, 304);
        th_resp_free(&again);
        struct th_resp json = get(path, srv.key, NULL, r.etag);
        assert_int_equal(json.status, 200);
        assert_string_not_equal(json.etag, r.etag);
        th_resp_free(&json);
        th_resp_free(&r);
        free(want);
    }
}

static void assert_bad(const char *path, const char *accept, long status, const char *field)
{
    struct th_resp r = get(path, srv.key, accept, NULL);
    if (r.status != status) fail_msg("%s: %ld, expected %ld: %s", path, r.status, status, r.body);
    assert_non_null(strstr(r.content_type, "application/problem+json"));
    const char *f = th_json_str(&r, "field");
    if (f == NULL || strcmp(f, field) != 0) fail_msg("%s: field %s, expected %s", path, f ? f : "(none)", field);
    th_resp_free(&r);
}

/* The hex of text. */
static void hex(const char *text, char *out)
{
    for (; *text; text++, out += 2) sprintf(out, "%02x", (unsigned char)*text);
    *out = '\0';
}

static void bad_parameters_are_problems_naming_them(void **state)
{
    char path[1200], cur[900], base[200];
    snprintf(base, sizeof base, "/v1/leaderboards?dataset_id=%s", dataset);
    static const char *const limits[] = {"0", "1001", "-1", "abc", "", "10x", "99999999999999999999"};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        snprintf(path, sizeof path, "%s&limit=%s", base, limits[i]);
        assert_bad(path, NULL, 400, "limit");
    }
    /* A real cursor, then broken ones. */
    snprintf(path, sizeof path, "%s&metric=accuracy&limit=5", base);
    struct th_resp r = get(path, srv.key, NULL, NULL);
    const char *next = th_json_str(&r, "next");
    assert_non_null(next);
    const char *c = strstr(next, "cursor=");
    assert_non_null(c);
    snprintf(cur, sizeof cur, "%s", c + 7);
    th_resp_free(&r);

    char forged[400], forged_hex[900];
    static const char *const cursors[] = {"zz", "abc", "00", "", "6331"};
    for (size_t i = 0; i < sizeof cursors / sizeof cursors[0]; i++) {
        snprintf(path, sizeof path, "%s&cursor=%s", base, cursors[i]);
        assert_bad(path, NULL, 400, "cursor");
    }
    /* Well-formed but not a position: rank after pos, an id that is not
     * one, a score that is not a number, an unknown metric. */
    static const char *const texts[] = {
        "c1\naccuracy\n5\n6\n0.5\n00000000-0000-0000-0000-000000000000\nspecies",
        "c1\naccuracy\n5\n5\n0.5\nnot-an-id\nspecies",
        "c1\naccuracy\n5\n5\n1;DROP\n00000000-0000-0000-0000-000000000000\nspecies",
        "c1\nbogus\n5\n5\n0.5\n00000000-0000-0000-0000-000000000000\nspecies",
        "c2\naccuracy\n5\n5\n0.5\n00000000-0000-0000-0000-000000000000\nspecies",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        snprintf(forged, sizeof forged, "%s", texts[i]);
        hex(forged, forged_hex);
        snprintf(path, sizeof path, "%s&cursor=%s", base, forged_hex);
        assert_bad(path, NULL, 400, "cursor");
    }
    /* The cursor of the accuracy board asked of the logloss one. */
    snprintf(path, sizeof path, "%s&metric=logloss&cursor=%s", base, cur);
    assert_bad(path, NULL, 400, "cursor");
    snprintf(path, sizeof path, "%s&target=other_target&cursor=%s", base, cur);
    assert_bad(path, NULL, 400, "cursor");
    /* The export is whole: no paging. */
    snprintf(path, sizeof path, "%s&limit=10", base);
    assert_bad(path, "text/csv", 400, "limit");
    snprintf(path, sizeof path, "%s&cursor=%s", base, cur);
    assert_bad(path, "text/csv", 400, "cursor");
    snprintf(path, sizeof path, "%s&metric=bogus", base);
    assert_bad(path, NULL, 400, "metric");
    assert_bad("/v1/leaderboards", NULL, 400, "dataset_id");
    assert_bad("/v1/leaderboards?dataset_id=nope", NULL, 400, "dataset_id");
    /* The real cursor itself is fine, with or without the metric. */
    snprintf(path, sizeof path, "%s&cursor=%s", base, cur);
    r = get(path, srv.key, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(th_json_str(&r, "metric"), "accuracy");
    th_resp_free(&r);
}

/* A model added in the middle of a walk (before the cursor and after it)
 * makes no other model repeat or go missing: the walk sees every model
 * that was there before, once, and the one added after the cursor. */
static void a_change_during_a_walk_repeats_or_skips_nothing(void **state)
{
    int n;
    struct model *want = expected("accuracy", 1, &n);
    char path[2048];
    snprintf(path, sizeof path, "/v1/leaderboards?dataset_id=%s&metric=accuracy&limit=500", dataset);
    char *seen = calloc((size_t)n, 1);
    int pages = 0, extra = 0;
    char best[40] = "", worst[40] = "";
    for (;;) {
        struct th_resp r = get(path, srv.key, NULL, NULL);
        assert_int_equal(r.status, 200);
        cJSON *page = th_json(&r);
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(page, "items")) {
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(it, "model_id"));
            int k = 0;
            while (k < n && strcmp(want[k].id, id) != 0) k++;
            if (k == n) {
                assert_string_equal(id, worst);   /* the one added after the cursor */
                extra++;
                continue;
            }
            assert_int_equal(seen[k], 0);
            seen[k] = 1;
        }
        if (++pages == 1) {
            /* A new best (before the cursor) and a new worst (after it). */
            PGconn *pg = th_db_connect(&db);
            const char *p[2] = {team, dataset};
            PGresult *res = sql(pg,
                "INSERT INTO trials (job_id, team_id, seq, state, family, params, score, artifact_lo)"
                " SELECT j.id, $1, 9000 + v.n, 'succeeded', 'gbm', '{}', v.s, 0"
                " FROM (SELECT id FROM jobs WHERE dataset_id = $2 AND metric = 'accuracy'"
                "       AND target = 'species' ORDER BY created_at LIMIT 1) j,"
                "      (VALUES (1, 2.0), (2, 0.001)) v(n, s) ORDER BY v.n RETURNING id",
                2, p);
            snprintf(best, sizeof best, "%s", PQgetvalue(res, 0, 0));
            snprintf(worst, sizeof worst, "%s", PQgetvalue(res, 1, 0));
            PQclear(res);
            PQfinish(pg);
        }
        const char *next = cJSON_GetStringValue(cJSON_GetObjectItem(page, "next"));
        if (next) snprintf(path, sizeof path, "%s", next);
        cJSON_Delete(page);
        th_resp_free(&r);
        if (next == NULL) break;
    }
    for (int k = 0; k < n; k++) assert_int_equal(seen[k], 1);
    assert_int_equal(extra, 1);
    /* A new walk starts with the new best. */
    snprintf(path, sizeof path, "/v1/leaderboards?dataset_id=%s&metric=accuracy&limit=1", dataset);
    struct th_resp r = get(path, srv.key, NULL, NULL);
    assert_non_null(strstr(r.body, best));
    th_resp_free(&r);
    free(seen);
    free(want);
}

/* Another team: nothing of ours, in JSON or CSV, with or without our cursor. */
static void another_team_sees_nothing(void **state)
{
    struct th_resp r;
    const char *body = "{\"name\": \"rivals\"}";
    assert_int_equal(th_http(&srv, "POST", "/v1/teams", srv.key, NULL, body, strlen(body), &r), 0);
    assert_int_equal(r.status, 201);
    char rival[128];
    snprintf(rival, sizeof rival, "%s", th_json_str(&r, "admin_key.key"));
    th_resp_free(&r);

    char path[1200];
    snprintf(path, sizeof path, "/v1/leaderboards?dataset_id=%s&metric=accuracy&limit=3", dataset);
    r = get(path, srv.key, NULL, NULL);
    char next[1100];
    snprintf(next, sizeof next, "%s", th_json_str(&r, "next"));
    char one[40];
    cJSON *mine = th_json(&r);
    snprintf(one, sizeof one, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(mine, "items"), 0), "model_id")));
    cJSON_Delete(mine);
    th_resp_free(&r);

    const char *paths[] = {path, next};
    for (int i = 0; i < 2; i++) {
        r = get(paths[i], rival, NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "\"items\":[]"));
        assert_null(strstr(r.body, one));
        th_resp_free(&r);
    }
    snprintf(path, sizeof path, "/v1/leaderboards?dataset_id=%s", dataset);
    r = get(path, rival, "text/csv", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/csv");
    assert_string_equal(r.body, "rank,model_id,job_id,family,metric,score,score_std,fit_seconds,"
                                "predict_us_per_row,model_bytes,params\n");
    th_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accuracy_pages_give_every_model_once_in_order),
        cmocka_unit_test(logloss_pages_give_every_model_once_in_order),
        cmocka_unit_test(csv_export_has_every_model),
        cmocka_unit_test(bad_parameters_are_problems_naming_them),
        cmocka_unit_test(another_team_sees_nothing),
        cmocka_unit_test(a_change_during_a_walk_repeats_or_skips_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

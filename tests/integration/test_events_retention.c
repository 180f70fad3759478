/* test_events_retention.c - deleting old job events (migrations/0007,
 * scheduler/retention.c) against a real PostgreSQL, server and scheduler:
 * a compaction batch deletes exactly the oldest progress events it may,
 * never waits for a busy job, and records how far it went; a scheduler
 * pass deletes every progress event of a job finished before the window
 * and those of a running job beyond the cap, and nothing else (no other
 * event, nothing of a recent or small job); new events go on from the
 * head's seq with no gap; readers resuming below the compacted seq are
 * told so, as JSON ("compacted") and as SSE (an "event: compacted").
 *
 * The jobs are written with SQL (no trainer runs): their events come from
 * the same triggers as a real job's. Active jobs are built full (as many
 * running trials as max_trials and parallelism, no lease) so that the
 * scheduler neither proposes for them nor takes their trials over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <unistd.h>

#include <curl/curl.h>

#include "tests/support/harness.h"

#define CAP 25

static struct th_db db;
static struct th_server srv;
static struct th_scheduler sched;
static int sched_started;
static PGconn *pg;
static char team[40];

/* The jobs. */
static char job_fn[40];     /* old, finished: the batch function test */
static char job_cap_fn[40]; /* running: the batch function with keep */
static char job_old[40];    /* finished 8 days ago: compacted by the pass */
static char job_recent[40]; /* finished an hour ago: kept */
static char job_big[40];    /* running, 60 progress events: capped to CAP */
static char job_small[40];  /* running, 10 progress events: kept */

/* --- SQL helpers -------------------------------------------------------------- */

static PGresult *q(const char *sql, int n, const char *const *p)
{
    PGresult *res = PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fprintf(stderr, "SQL failed: %s\n%s\n", PQresultErrorMessage(res), sql);
    assert_true(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK);
    return res;
}

static long long q_ll(const char *sql, int n, const char *const *p)
{
    PGresult *res = q(sql, n, p);
    assert_int_equal(PQntuples(res), 1);
    long long v = PQgetisnull(res, 0, 0) ? -1 : atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static long long job_ll(const char *sql, const char *job)
{
    const char *p[1] = {job};
    return q_ll(sql, 1, p);
}

static long long progress_count(const char *job)
{
    return job_ll("SELECT count(*) FROM job_events WHERE job_id = $1 AND type = 'trial_progress'",
                  job);
}

/* The job's events other than progress, as "seq:type,..." (static). */
static const char *others(const char *job)
{
    static char out[8192];
    const char *p[1] = {job};
    PGresult *res = q("SELECT coalesce(string_agg(seq || ':' || type, ',' ORDER BY seq), '')"
                      " FROM job_events WHERE job_id = $1 AND type <> 'trial_progress'", 1, p);
    snprintf(out, sizeof out, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

/* A job with trials running trials, each reporting progress steps
 * times; then, unless finished_ago is NULL, every trial succeeded and
 * the job succeeded, finished that interval ago. Its id into id. */
static void make_job(char id[40], int trials, int steps, const char *finished_ago)
{
    char n[16];
    snprintf(n, sizeof n, "%d", trials);
    const char *p1[2] = {team, n};
    PGresult *res = q("INSERT INTO jobs (team_id, target, task, metric, higher_is_better, models,"
                      " strategy, max_trials, max_seconds, trial_timeout_seconds,"
                      " max_failed_trials, parallelism, cv, seed)"
                      " VALUES ($1, 'y', 'classification', 'accuracy', true, '{nb}', 'random',"
                      " $2::int, 3600, 600, 0, $2::int, '{\"folds\": 3}', 1) RETURNING id",
                      2, p1);
    snprintf(id, 40, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *p2[3] = {id, team, n};
    PQclear(q("UPDATE jobs SET state = 'running', started_at = now() WHERE id = $1", 1, p2));
    PQclear(q("INSERT INTO trials (job_id, team_id, seq, family, params, started_at)"
              " SELECT $1, $2, g, 'nb', '{}', now() FROM generate_series(1, $3::int) g", 3, p2));
    for (int i = 1; i <= steps; i++) {
        char it[16];
        snprintf(it, sizeof it, "%d", i);
        const char *p3[2] = {id, it};
        PQclear(q("UPDATE trials SET progress = jsonb_build_object('event', 'iteration',"
                  " 'iteration', $2::int) WHERE job_id = $1", 2, p3));
    }
    if (finished_ago == NULL) return;
    const char *p4[2] = {id, finished_ago};
    PQclear(q("UPDATE trials SET state = 'succeeded', score = 0.5 + seq / 100.0,"
              " finished_at = now() WHERE job_id = $1", 1, p4));
    PQclear(q("UPDATE jobs SET state = 'succeeded', finished_at = now() - $2::interval"
              " WHERE id = $1", 2, p4));
}

/* --- fixtures ------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    setenv("PODIUM_SSE_HEARTBEAT", "1", 1);
    int rc = th_db_create(&db) == 0 && th_server_start(&srv, &db, NULL) == 0 ? 0 : -1;
    unsetenv("PODIUM_SSE_HEARTBEAT");
    if (rc < 0) return -1;
    pg = th_db_connect(&db);
    if (pg == NULL) return -1;
    PGresult *res = PQexec(pg, "SELECT id FROM teams ORDER BY created_at LIMIT 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) return -1;
    snprintf(team, sizeof team, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int a = sched_started ? th_scheduler_stop(&sched) : 0;
    int b = th_server_stop(&srv);
    PQfinish(pg);
    th_db_drop(&db);
    return a == 0 && b == 0 ? 0 : -1;
}

/* --- the batch function ------------------------------------------------------------- */

static long long compact(const char *job, const char *keep, const char *batch)
{
    const char *p[3] = {job, keep, batch};
    return q_ll("SELECT podium_compact_progress($1, $2::int, $3::int)", 3, p);
}

/* Batches of 7 over 30 progress events: 7, 7, 7, 7, 2, then 0; each
 * deletes the oldest ones left and moves compacted_seq to the last it
 * deleted; the other events and the head's seq stay as they were. */
static void batches_delete_oldest_progress_first(void **state)
{
    (void)state;
    make_job(job_fn, 3, 10, "8 days");
    assert_int_equal(progress_count(job_fn), 30);
    char before[8192];
    snprintf(before, sizeof before, "%s", others(job_fn));
    long long head = job_ll("SELECT seq FROM job_event_heads WHERE job_id = $1", job_fn);
    assert_int_equal(job_ll("SELECT has_progress::int FROM job_event_heads WHERE job_id = $1",
                            job_fn), 1);

    static const long long expect[] = {7, 7, 7, 7, 2, 0};
    long long deleted = 0;
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        /* The batch's last victim: the expect[i]-th oldest progress event left. */
        char off[24], lim[24];
        snprintf(off, sizeof off, "%lld", expect[i] > 0 ? expect[i] - 1 : 0);
        const char *p[2] = {job_fn, off};
        long long last = expect[i] == 0 ? -1
            : q_ll("SELECT seq FROM job_events WHERE job_id = $1 AND type = 'trial_progress'"
                   " ORDER BY seq OFFSET $2::int LIMIT 1", 2, p);
        assert_int_equal(compact(job_fn, "0", "7"), expect[i]);
        deleted += expect[i];
        assert_int_equal(progress_count(job_fn), 30 - deleted);
        if (expect[i] == 0) continue;
        assert_int_equal(job_ll("SELECT compacted_seq FROM job_event_heads WHERE job_id = $1",
                                job_fn), last);
        /* None left at or below it, all left above it. */
        snprintf(lim, sizeof lim, "%lld", last);
        const char *p2[2] = {job_fn, lim};
        assert_int_equal(q_ll("SELECT count(*) FROM job_events WHERE job_id = $1"
                              " AND type = 'trial_progress' AND seq <= $2::bigint", 2, p2), 0);
    }
    assert_string_equal(others(job_fn), before);
    assert_int_equal(job_ll("SELECT seq FROM job_event_heads WHERE job_id = $1", job_fn), head);
    assert_int_equal(job_ll("SELECT has_progress::int FROM job_event_heads WHERE job_id = $1",
                            job_fn), 0);
}

/* keep = 5 of 20: batches of 4 delete the 15 oldest (4, 4, 4, 3, 0); the
 * 5 newest stay. A job whose head is locked is not waited for: -1. */
static void batches_keep_the_newest_and_never_wait(void **state)
{
    (void)state;
    make_job(job_cap_fn, 2, 10, NULL);
    assert_int_equal(progress_count(job_cap_fn), 20);
    const char *p[1] = {job_cap_fn};
    long long fifteenth = q_ll("SELECT seq FROM job_events WHERE job_id = $1"
                               " AND type = 'trial_progress' ORDER BY seq OFFSET 14 LIMIT 1", 1, p);
    long long sixteenth = q_ll("SELECT seq FROM job_events WHERE job_id = $1"
                               " AND type = 'trial_progress' ORDER BY seq OFFSET 15 LIMIT 1", 1, p);
    static const long long expect[] = {4, 4, 4, 3, 0};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        assert_int_equal(compact(job_cap_fn, "5", "4"), expect[i]);
    assert_int_equal(progress_count(job_cap_fn), 5);
    assert_int_equal(job_ll("SELECT min(seq) FROM job_events WHERE job_id = $1"
                            " AND type = 'trial_progress'", job_cap_fn), sixteenth);
    assert_int_equal(job_ll("SELECT compacted_seq FROM job_event_heads WHERE job_id = $1",
                            job_cap_fn), fifteenth);
    assert_int_equal(job_ll("SELECT has_progress::int FROM job_event_heads WHERE job_id = $1",
                            job_cap_fn), 1);

    /* Another session holds the head (as an event being written does). */
    PGconn *other = th_db_connect(&db);
    assert_non_null(other);
    PGresult *res = PQexec(other, "BEGIN");
    PQclear(res);
    const char *p1[1] = {job_cap_fn};
    res = PQexecParams(other, "SELECT 1 FROM job_event_heads WHERE job_id = $1 FOR UPDATE", 1,
                       NULL, p1, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    assert_int_equal(compact(job_cap_fn, "0", "4"), -1);
    assert_int_equal(progress_count(job_cap_fn), 5);
    PQclear(PQexec(other, "ROLLBACK"));
    PQfinish(other);
    /* A job that does not exist: nothing to do. */
    assert_int_equal(compact("00000000-0000-0000-0000-000000000000", "0", "4"), 0);
}

/* --- the scheduler's pass --------------------------------------------------------------- */

static void pass_deletes_old_and_capped_progress_only(void **state)
{
    (void)state;
    make_job(job_old, 3, 20, "8 days");
    make_job(job_recent, 3, 20, "1 hour");
    make_job(job_big, 2, 30, NULL);
    make_job(job_small, 2, 5, NULL);
    char old_others[8192], recent_others[8192], big_others[8192], small_others[8192];
    snprintf(old_others, sizeof old_others, "%s", others(job_old));
    snprintf(recent_others, sizeof recent_others, "%s", others(job_recent));
    snprintf(big_others, sizeof big_others, "%s", others(job_big));
    snprintf(small_others, sizeof small_others, "%s", others(job_small));
    long long old_last_progress = job_ll("SELECT max(seq) FROM job_events WHERE job_id = $1"
                                         " AND type = 'trial_progress'", job_old);
    const char *pb[1] = {job_big};
    long long big_35th = q_ll("SELECT seq FROM job_events WHERE job_id = $1"
                              " AND type = 'trial_progress' ORDER BY seq OFFSET 34 LIMIT 1", 1, pb);
    long long big_head = job_ll("SELECT seq FROM job_event_heads WHERE job_id = $1", job_big);
    long long old_head = job_ll("SELECT seq FROM job_event_heads WHERE job_id = $1", job_old);
    assert_int_equal(progress_count(job_old), 60);
    assert_int_equal(progress_count(job_big), 60);

    char cap[48];
    snprintf(cap, sizeof cap, "--events-progress-cap=%d", CAP);
    const char *extra[] = {"--slots=1", "--events-retention=7d", cap, NULL};
    assert_int_equal(th_scheduler_start(&sched, &db, extra), 0);
    sched_started = 1;

    /* The pass runs when the scheduler connects; wait for its outcome. */
    double until = th_now_s() + 60;
    while (th_now_s() < until && (progress_count(job_old) > 0 || progress_count(job_big) > CAP))
        usleep(100 * 1000);
    assert_int_equal(progress_count(job_old), 0);
    assert_int_equal(progress_count(job_big), CAP);

    /* The old job: no progress left, every other event as it was. */
    assert_string_equal(others(job_old), old_others);
    assert_int_equal(job_ll("SELECT compacted_seq FROM job_event_heads WHERE job_id = $1", job_old),
                     old_last_progress);
    assert_int_equal(job_ll("SELECT has_progress::int FROM job_event_heads WHERE job_id = $1",
                            job_old), 0);
    /* The big running job: its newest CAP progress events are left. */
    assert_string_equal(others(job_big), big_others);
    assert_int_equal(job_ll("SELECT compacted_seq FROM job_event_heads WHERE job_id = $1", job_big),
                     big_35th);
    assert_true(job_ll("SELECT min(seq) FROM job_events WHERE job_id = $1"
                       " AND type = 'trial_progress'", job_big) > big_35th);
    /* Untouched: the recent finished job and the small running one. */
    assert_int_equal(progress_count(job_recent), 60);
    assert_string_equal(others(job_recent), recent_others);
    assert_int_equal(job_ll("SELECT compacted_seq FROM job_event_heads WHERE job_id = $1",
                            job_recent), 0);
    assert_int_equal(progress_count(job_small), 10);
    assert_string_equal(others(job_small), small_others);
    assert_int_equal(job_ll("SELECT compacted_seq FROM job_event_heads WHERE job_id = $1",
                            job_small), 0);

    /* New events go on from the head: seq head + 1, no gap, no reuse. */
    PQclear(q("UPDATE trials SET progress = '{\"event\": \"iteration\", \"iteration\": 99}'"
              " WHERE job_id = $1 AND seq = 1", 1, pb));
    assert_int_equal(job_ll("SELECT max(seq) FROM job_events WHERE job_id = $1", job_big),
                     big_head + 1);
    assert_int_equal(job_ll("SELECT seq FROM job_event_heads WHERE job_id = $1", job_big),
                     big_head + 1);
    const char *po[1] = {job_old};
    PQclear(q("UPDATE jobs SET max_trials = max_trials + 1 WHERE id = $1", 1, po));
    assert_int_equal(job_ll("SELECT max(seq) FROM job_events WHERE job_id = $1", job_old),
                     old_head + 1);
}

/* --- readers --------------------------------------------------------------------------- */

static cJSON *get_json(const char *path)
{
    struct th_resp r;
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *doc = th_json(&r);
    assert_non_null(doc);
    th_resp_free(&r);
    return doc;
}

static double num(const cJSON *o, const char *name)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(o, name));
}

/* JSON: below compacted_seq the answer says "compacted": true and lists
 * every other event in order; at or above it, false. A job never
 * compacted says 0 and false. */
static void json_resume_below_compacted_says_so(void **state)
{
    (void)state;
    long long compacted = job_ll("SELECT compacted_seq FROM job_event_heads WHERE job_id = $1",
                                 job_old);
    assert_true(compacted > 3);
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s/events?after=3&limit=1000", job_old);
    cJSON *doc = get_json(path);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "compacted")));
    assert_int_equal((long long)num(doc, "compacted_seq"), compacted);
    cJSON *items = cJSON_GetObjectItem(doc, "items");
    const cJSON *e;
    char listed[8192] = "";
    size_t len = 0;
    cJSON_ArrayForEach(e, items) {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(e, "type"));
        assert_string_not_equal(type, "trial_progress");
        assert_null(cJSON_GetObjectItem(e, "compacted_seq"));
        len += (size_t)snprintf(listed + len, sizeof listed - len, "%s%lld:%s", len ? "," : "",
                                (long long)num(e, "seq"), type);
    }
    /* Exactly the stored events after 3. */
    const char *p[1] = {job_old};
    PGresult *res = q("SELECT coalesce(string_agg(seq || ':' || type, ',' ORDER BY seq), '')"
                      " FROM job_events WHERE job_id = $1 AND seq > 3", 1, p);
    assert_string_equal(listed, PQgetvalue(res, 0, 0));
    PQclear(res);
    cJSON_Delete(doc);

    snprintf(path, sizeof path, "/v1/jobs/%s/events?after=%lld", job_old, compacted);
    doc = get_json(path);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(doc, "compacted")));
    assert_int_equal((long long)num(doc, "compacted_seq"), compacted);
    cJSON_Delete(doc);

    snprintf(path, sizeof path, "/v1/jobs/%s/events?after=0&limit=5", job_recent);
    doc = get_json(path);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(doc, "compacted")));
    assert_int_equal((long long)num(doc, "compacted_seq"), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "items")), 5);
    cJSON_Delete(doc);

    /* An unchanged poll is still a 304 (the tag is weak). */
    snprintf(path, sizeof path, "/v1/jobs/%s/events?after=3&limit=1000", job_old);
    struct th_resp r;
    assert_int_equal(th_http(&srv, "GET", path, srv.key, NULL, NULL, 0, &r), 0);
    char etag[128];
    snprintf(etag, sizeof etag, "%s", r.etag);
    th_resp_free(&r);
    assert_memory_equal(etag, "W/\"", 3);
    char auth[200], inm[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", srv.key);
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    const char *h[] = {auth, inm, NULL};
    assert_int_equal(th_http_headers(&srv, "GET", path, h, NULL, 0, &r), 0);
    assert_int_equal(r.status, 304);
    th_resp_free(&r);
}

/* --- SSE ------------------------------------------------------------------------------- */

struct sse {
    char buf[262144];
    size_t len;
    int64_t stop_at;          /* hang up after the event with this id (0: read to the end) */
    int stopped;
};

static size_t sse_write(char *data, size_t size, size_t n, void *ud)
{
    struct sse *s = ud;
    size_t len = size * n;
    if (s->len + len >= sizeof s->buf) return 0;
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    if (s->stop_at > 0) {
        char want[40];
        snprintf(want, sizeof want, "id: %lld\n", (long long)s->stop_at);
        const char *at = strstr(s->buf, want);
        if (at && strstr(at, "\n\n")) {
            s->stopped = 1;
            return 0;
        }
    }
    return len;
}

static void sse_read(const char *job, const char *last_event_id, int64_t stop_at, struct sse *s)
{
    memset(s, 0, sizeof *s);
    s->stop_at = stop_at;
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512], auth[200], leid[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/jobs/%s/events", srv.port, job);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", srv.key);
    snprintf(leid, sizeof leid, "Last-Event-ID: %s", last_event_id);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Accept: text/event-stream");
    h = curl_slist_append(h, leid);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    assert_int_equal(status, 200);
    assert_true(rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && s->stopped));
}

/* The SSE blocks of s that carry an id, as "seq:type,..." (static), and
 * the compacted notices, as "after/compacted_seq@position,..." where
 * position is how many events came before it. */
static void sse_parse(struct sse *s, char *events, size_t elen, char *notes, size_t nlen)
{
    size_t el = 0, nl = 0;
    int n_events = 0;
    events[0] = notes[0] = '\0';
    for (char *block = s->buf, *end; (end = strstr(block, "\n\n")) != NULL; block = end + 2) {
        *end = '\0';
        long long id = -1;
        char type[40] = "";
        cJSON *data = NULL;
        for (char *line = block, *nl_at; line && *line; line = nl_at ? nl_at + 1 : NULL) {
            nl_at = strchr(line, '\n');
            if (nl_at) *nl_at = '\0';
            if (strncmp(line, "id: ", 4) == 0) id = atoll(line + 4);
            else if (strncmp(line, "event: ", 7) == 0) snprintf(type, sizeof type, "%s", line + 7);
            else if (strncmp(line, "data: ", 6) == 0) data = cJSON_Parse(line + 6);
        }
        if (strcmp(type, "compacted") == 0) {
            assert_int_equal(id, -1); /* no id: Last-Event-ID stays the last event's */
            assert_non_null(data);
            nl += (size_t)snprintf(notes + nl, nlen - nl, "%s%lld/%lld@%d", nl ? "," : "",
                                   (long long)num(data, "after"),
                                   (long long)num(data, "compacted_seq"), n_events);
        } else if (id >= 0) {
            el += (size_t)snprintf(events + el, elen - el, "%s%lld:%s", el ? "," : "", id, type);
            n_events++;
        }
        cJSON_Delete(data);
    }
}

/* SSE: Last-Event-ID below compacted_seq gets one "compacted" notice
 * first, then every remaining event after it, to the end of the job; at
 * compacted_seq, none. A running job capped below the reader's position
 * too, and its stream goes on live. */
static void sse_resume_below_compacted_says_so(void **state)
{
    (void)state;
    struct sse *s = malloc(sizeof *s);
    assert_non_null(s);
    char events[8192], notes[256], want[8192];
    long long compacted = job_ll("SELECT compacted_seq FROM job_event_heads WHERE job_id = $1",
                                 job_old);
    const char *p[1] = {job_old};
    /* A stream ends with the job's final state (the old job had one more
     * event after it, from the test above). */
    PGresult *res = q("SELECT coalesce(string_agg(seq || ':' || type, ',' ORDER BY seq), '')"
                      " FROM job_events WHERE job_id = $1 AND seq > 3 AND seq <= (SELECT max(seq)"
                      " FROM job_events WHERE job_id = $1 AND type = 'job_state')", 1, p);
    snprintf(want, sizeof want, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    sse_read(job_old, "3", 0, s);
    sse_parse(s, events, sizeof events, notes, sizeof notes);
    char note[64];
    snprintf(note, sizeof note, "3/%lld@0", compacted);
    assert_string_equal(notes, note);
    assert_string_equal(events, want);

    char leid[32];
    snprintf(leid, sizeof leid, "%lld", compacted);
    res = q("SELECT coalesce(string_agg(seq || ':' || type, ',' ORDER BY seq), '')"
            " FROM job_events WHERE job_id = $1 AND seq > $2::bigint AND seq <= (SELECT max(seq)"
            " FROM job_events WHERE job_id = $1 AND type = 'job_state')", 2,
            (const char *const[]){job_old, leid});
    snprintf(want, sizeof want, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    sse_read(job_old, leid, 0, s);
    sse_parse(s, events, sizeof events, notes, sizeof notes);
    assert_string_equal(notes, "");
    assert_string_equal(events, want);

    /* The capped running job, from its second event: a notice, then the
     * events that are left, up to its latest (then we hang up). */
    long long big_compacted = job_ll("SELECT compacted_seq FROM job_event_heads WHERE job_id = $1",
                                     job_big);
    long long big_head = job_ll("SELECT seq FROM job_event_heads WHERE job_id = $1", job_big);
    res = q("SELECT coalesce(string_agg(seq || ':' || type, ',' ORDER BY seq), '')"
            " FROM job_events WHERE job_id = $1 AND seq > 2", 1, (const char *const[]){job_big});
    snprintf(want, sizeof want, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    sse_read(job_big, "2", big_head, s);
    sse_parse(s, events, sizeof events, notes, sizeof notes);
    snprintf(note, sizeof note, "2/%lld@0", big_compacted);
    assert_string_equal(notes, note);
    assert_string_equal(events, want);
    free(s);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batches_delete_oldest_progress_first),
        cmocka_unit_test(batches_keep_the_newest_and_never_wait),
        cmocka_unit_test(pass_deletes_old_and_capped_progress_only),
        cmocka_unit_test(json_resume_below_compacted_says_so),
        cmocka_unit_test(sse_resume_below_compacted_says_so),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}

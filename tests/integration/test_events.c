/* test_events.c - live job status through a real server, scheduler and
 * PostgreSQL: a job's events come in order with no gap (seq 1..N), as JSON
 * after a seq and as Server-Sent Events; a stream cut mid-job and resumed
 * with Last-Event-ID misses and repeats nothing; an idle stream gets
 * heartbeats and wakes for a live event; unchanged polls are 304 from
 * memory (they still are with PostgreSQL stopped, while a poll that needs
 * the database is 503), another team gets 404, and CORS answers listed
 * origins only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include <pthread.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tests/support/harness.h"

#define ORIGIN "https://dash.example.com"
#define MAX_EVENTS 512

static struct th_stack st;
static char job[64];          /* the finished job of the first test */
static char lb_etag[128];

static int setup(void **state)
{
    setenv("PODIUM_SSE_HEARTBEAT", "1", 1);
    setenv("PODIUM_CORS_ORIGINS", ORIGIN ",http://localhost:5173", 1);
    setenv("PODIUM_AUTH_CACHE", "30", 1);
    const char *extra[] = {"--slots=1", NULL};
    int rc = th_stack_start(&st, extra, "iris", "tests/data/tabular/iris.csv");
    unsetenv("PODIUM_SSE_HEARTBEAT");
    unsetenv("PODIUM_CORS_ORIGINS");
    unsetenv("PODIUM_AUTH_CACHE");
    return rc;
}

static int teardown(void **state)
{
    return th_stack_stop(&st);
}

/* --- a small HTTP client that keeps every response header -------------------- */

struct raw {
    long status;
    char headers[4096];
    size_t hlen;
    char *body;
    size_t blen;
};

static size_t raw_header(char *data, size_t size, size_t n, void *ud)
{
    struct raw *r = ud;
    size_t len = size * n;
    if (len > 5 && strncmp(data, "HTTP/", 5) == 0) r->hlen = 0; /* a new response */
    if (r->hlen + len < sizeof r->headers) {
        memcpy(r->headers + r->hlen, data, len);
        r->hlen += len;
        r->headers[r->hlen] = '\0';
    }
    return len;
}

static size_t raw_body(char *data, size_t size, size_t n, void *ud)
{
    struct raw *r = ud;
    size_t len = size * n;
    char *b = realloc(r->body, r->blen + len + 1);
    if (b == NULL) return 0;
    memcpy(b + r->blen, data, len);
    r->blen += len;
    b[r->blen] = '\0';
    r->body = b;
    return len;
}

/* method path with headers (NULL-terminated); fails the test if no answer. */
static void raw_call(const char *method, const char *path, const char *const *headers,
                     struct raw *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", st.srv.port, path);
    struct curl_slist *h = NULL;
    for (int i = 0; headers && headers[i]; i++) h = curl_slist_append(h, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, raw_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, raw_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) fprintf(stderr, "%s %s: %s\n", method, path, curl_easy_strerror(rc));
    assert_int_equal(rc, CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out->body == NULL) out->body = calloc(1, 1);
}

/* The value of response header name (static copy), or NULL. */
static const char *raw_header_value(const struct raw *r, const char *name)
{
    static char value[512];
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > n + 1 && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ') v++;
            snprintf(value, sizeof value, "%.*s", (int)(len - (size_t)(v - line)), v);
            return value;
        }
        line = end ? end + 2 : NULL;
    }
    return NULL;
}

static void auth_header(char *out, size_t len, const char *key)
{
    snprintf(out, len, "Authorization: Bearer %s", key);
}

/* --- reading a stream ----------------------------------------------------------- */

struct sse {
    const char *path;
    char last_event_id[32];   /* "" for none */
    int stop_on_type_count;   /* abort after this many events of stop_type (0: read to the end) */
    const char *stop_type;
    double timeout_s;

    long status;
    CURLcode rc;
    int64_t seq[MAX_EVENTS];
    double at[MAX_EVENTS];    /* when it arrived (th_now_s) */
    char type[MAX_EVENTS][32];
    int n;
    int pings;
    int pings_before_first;
    int retry_seen;
    int seen_stop;
    char buf[65536];
    size_t len;
};

static void sse_block(struct sse *s, char *block)
{
    int64_t id = -1;
    char type[32] = "";
    int data = 0;
    for (char *line = strtok(block, "\n"); line; line = strtok(NULL, "\n")) {
        if (strcmp(line, ": ping") == 0) {
            s->pings++;
            if (s->n == 0) s->pings_before_first++;
        } else if (strncmp(line, "retry: ", 7) == 0) {
            s->retry_seen = 1;
        } else if (strncmp(line, "id: ", 4) == 0) {
            id = strtoll(line + 4, NULL, 10);
        } else if (strncmp(line, "event: ", 7) == 0) {
            snprintf(type, sizeof type, "%s", line + 7);
        } else if (strncmp(line, "data: ", 6) == 0) {
            cJSON *d = cJSON_Parse(line + 6);
            data = d != NULL && (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "seq")) == id;
            cJSON_Delete(d);
        }
    }
    if (id < 0) return;
    assert_true(data); /* every event's data is its JSON item, with the same seq */
    assert_true(s->n < MAX_EVENTS);
    s->seq[s->n] = id;
    s->at[s->n] = th_now_s();
    snprintf(s->type[s->n], sizeof s->type[s->n], "%s", type);
    s->n++;
    if (s->stop_type && strcmp(type, s->stop_type) == 0 && --s->stop_on_type_count == 0)
        s->seen_stop = 1;
}

static size_t sse_write(char *data, size_t size, size_t n, void *ud)
{
    struct sse *s = ud;
    size_t len = size * n;
    if (s->len + len >= sizeof s->buf) return 0;
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    char *end;
    while ((end = strstr(s->buf, "\n\n")) != NULL) {
        *end = '\0';
        size_t used = (size_t)(end - s->buf) + 2;
        char *block = strdup(s->buf);
        assert_non_null(block);
        memmove(s->buf, s->buf + used, s->len - used + 1);
        s->len -= used;
        sse_block(s, block);
        free(block);
        if (s->seen_stop) return 0; /* hang up mid-stream */
    }
    return len;
}

static void sse_read(struct sse *s)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512], auth[200], leid[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", st.srv.port, s->path);
    auth_header(auth, sizeof auth, st.srv.key);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Accept: text/event-stream");
    if (s->last_event_id[0]) {
        snprintf(leid, sizeof leid, "Last-Event-ID: %s", s->last_event_id);
        h = curl_slist_append(h, leid);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(s->timeout_s * 1000));
    s->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static int is_final_state(const char *type, const cJSON *data)
{
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(data, "state"));
    return strcmp(type, "job_state") == 0 && state &&
           (!strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "cancelled"));
}

/* Every event of job as JSON, paging with after/limit. */
static cJSON *all_events_json(const char *id, int limit)
{
    cJSON *all = cJSON_CreateArray();
    int64_t after = 0;
    for (;;) {
        char path[256];
        snprintf(path, sizeof path, "/v1/jobs/%s/events?after=%lld&limit=%d", id, (long long)after,
                 limit);
        struct th_resp r;
        assert_int_equal(th_http(&st.srv, "GET", path, st.srv.key, NULL, NULL, 0, &r), 0);
        assert_int_equal(r.status, 200);
        assert_true(strlen(r.etag) > 2);
        cJSON *doc = th_json(&r);
        th_resp_free(&r);
        cJSON *items = cJSON_GetObjectItem(doc, "items");
        assert_true(cJSON_GetArraySize(items) <= limit);
        cJSON *it;
        cJSON_ArrayForEach(it, items) cJSON_AddItemToArray(all, cJSON_Duplicate(it, 1));
        after = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "last_seq"));
        int more = cJSON_IsTrue(cJSON_GetObjectItem(doc, "has_more"));
        cJSON_Delete(doc);
        if (!more) break;
    }
    return all;
}

static int count_type(const cJSON *events, const char *type)
{
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
        n += strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "type")), type) == 0;
    return n;
}

/* --- the tests -------------------------------------------------------------------- */

/* A job watched live, cut off after its first finished trial, resumed with
 * Last-Event-ID: the two parts are seq 1..N exactly once each, they end
 * with the job's final state, and they are the events the JSON lists. */
static void stream_resumes_without_loss_or_repeat(void **state)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"models\": [\"knn\", \"linear\", \"nb\"],"
             " \"budget\": {\"max_trials\": 40, \"max_seconds\": 120}, \"parallelism\": 1,"
             " \"cv\": {\"folds\": 3}}", st.dataset);
    snprintf(job, sizeof job, "%s", th_post_job(&st.srv, body));
    char path[200];
    snprintf(path, sizeof path, "/v1/jobs/%s/events", job);

    struct sse *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    a->path = path;
    a->stop_type = "trial_succeeded";
    a->stop_on_type_count = 2;
    a->timeout_s = 60;
    sse_read(a);
    assert_int_equal(a->status, 200);
    assert_int_equal(a->rc, CURLE_WRITE_ERROR); /* we hung up */
    assert_true(a->retry_seen);
    assert_true(a->seen_stop);
    /* Mid-job: the job had not finished when we hung up. */
    char jpath[160];
    snprintf(jpath, sizeof jpath, "/v1/jobs/%s", job);
    struct th_resp r;
    assert_int_equal(th_http(&st.srv, "GET", jpath, st.srv.key, NULL, NULL, 0, &r), 0);
    const char *state_then = th_json_str(&r, "state");
    if (strcmp(state_then, "running") != 0) fprintf(stderr, "job already %s\n", state_then);
    assert_string_equal(state_then, "running");
    th_resp_free(&r);

    /* Let events pile up while nobody listens: the resumed stream must
     * replay stored ones before it goes live. */
    int64_t latest = 0;
    for (double until = th_now_s() + 10; th_now_s() < until && latest <= a->seq[a->n - 1];) {
        usleep(200 * 1000);
        char epath[200];
        snprintf(epath, sizeof epath, "/v1/jobs/%s/events?limit=1", job);
        assert_int_equal(th_http(&st.srv, "GET", epath, st.srv.key, NULL, NULL, 0, &r), 0);
        cJSON *doc = th_json(&r);
        latest = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "latest_seq"));
        cJSON_Delete(doc);
        th_resp_free(&r);
    }
    assert_true(latest > a->seq[a->n - 1]);

    b->path = path;
    snprintf(b->last_event_id, sizeof b->last_event_id, "%lld", (long long)a->seq[a->n - 1]);
    b->timeout_s = 90;
    sse_read(b);
    assert_int_equal(b->status, 200);
    assert_int_equal(b->rc, CURLE_OK); /* the server ended it, after the final state */
    assert_true(b->n > 0);

    int n = a->n + b->n;
    for (int i = 0; i < a->n; i++) assert_int_equal(a->seq[i], i + 1);
    for (int i = 0; i < b->n; i++) assert_int_equal(b->seq[i], a->n + i + 1);
    assert_string_equal(b->type[b->n - 1], "job_state");

    /* The JSON, read in pages of 5, says the same. */
    cJSON *all = all_events_json(job, 5);
    assert_int_equal(cJSON_GetArraySize(all), n);
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_GetArrayItem(all, i);
        const char *type = i < a->n ? a->type[i] : b->type[i - a->n];
        assert_int_equal((int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "seq")), i + 1);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "type")), type);
    }
    cJSON *first = cJSON_GetArrayItem(all, 0), *last = cJSON_GetArrayItem(all, n - 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "type")), "job_state");
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(first, "data"), "state")),
        "queued");
    assert_true(is_final_state(cJSON_GetStringValue(cJSON_GetObjectItem(last, "type")),
                               cJSON_GetObjectItem(last, "data")));

    /* One start and one end per trial, at least one new best, and the job
     * went running before it finished. */
    snprintf(jpath, sizeof jpath, "/v1/jobs/%s/trials", job);
    assert_int_equal(th_http(&st.srv, "GET", jpath, st.srv.key, NULL, NULL, 0, &r), 0);
    cJSON *trials = th_json(&r);
    th_resp_free(&r);
    int n_trials = cJSON_GetArraySize(cJSON_GetObjectItem(trials, "items"));
    cJSON_Delete(trials);
    assert_true(n_trials >= 2);
    assert_int_equal(count_type(all, "trial_started"), n_trials);
    assert_int_equal(count_type(all, "trial_succeeded") + count_type(all, "trial_failed") +
                         count_type(all, "trial_cancelled"),
                     n_trials);
    assert_true(count_type(all, "new_best") >= 1);
    assert_int_equal(count_type(all, "job_state"), 3); /* queued, running, final */
    cJSON_Delete(all);

    /* After the end: 204, so an EventSource stops reconnecting. */
    memset(b, 0, sizeof *b);
    b->path = path;
    snprintf(b->last_event_id, sizeof b->last_event_id, "%d", n);
    b->timeout_s = 10;
    sse_read(b);
    assert_int_equal(b->rc, CURLE_OK);
    assert_int_equal(b->status, 204);
    free(a);
    free(b);
}

static void json_events_check_their_parameters(void **state)
{
    char path[256], auth[200];
    struct th_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s/events?after=2&limit=3", job);
    assert_int_equal(th_http(&st.srv, "GET", path, st.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *doc = th_json(&r);
    cJSON *items = cJSON_GetObjectItem(doc, "items");
    assert_int_equal(cJSON_GetArraySize(items), 3);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "seq")), 3);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "last_seq")), 5);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "has_more")));
    cJSON_Delete(doc);
    th_resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s/events?after=x1", job);
    assert_int_equal(th_http(&st.srv, "GET", path, st.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.content_type, "application/problem+json");
    assert_string_equal(th_json_str(&r, "field"), "after");
    th_resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s/events", job);
    auth_header(auth, sizeof auth, st.srv.key);
    const char *bad_id[] = {auth, "Accept: text/event-stream", "Last-Event-ID: -3", NULL};
    assert_int_equal(th_http_headers(&st.srv, "GET", path, bad_id, NULL, 0, &r), 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(th_json_str(&r, "field"), "Last-Event-ID");
    th_resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s/events?limit=0", job);
    assert_int_equal(th_http(&st.srv, "GET", path, st.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 400);
    th_resp_free(&r);

    assert_int_equal(th_http(&st.srv, "GET", "/v1/jobs/00000000-0000-0000-0000-000000000000/events",
                             st.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.content_type, "application/problem+json");
    th_resp_free(&r);
}

/* GET path with If-None-Match etag (NULL: none) and key; the status. */
static long poll_with(const char *path, const char *key, const char *etag, char *etag_out,
                      size_t etag_len)
{
    char auth[200], inm[200];
    auth_header(auth, sizeof auth, key);
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag ? etag : "");
    const char *h[] = {auth, etag ? inm : NULL, NULL};
    struct th_resp r;
    assert_int_equal(th_http_headers(&st.srv, "GET", path, h, NULL, 0, &r), 0);
    long status = r.status;
    if (etag_out) snprintf(etag_out, etag_len, "%s", r.etag);
    th_resp_free(&r);
    return status;
}

static void unchanged_polls_are_304_and_changes_are_200(void **state)
{
    static const char *const suffix[] = {"", "/trials", "/leaderboard", "/events?after=3"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char path[256], etag[128], again[128];
        snprintf(path, sizeof path, "/v1/jobs/%s%s", job, suffix[i]);
        assert_int_equal(poll_with(path, st.srv.key, NULL, etag, sizeof etag), 200);
        assert_true(strlen(etag) > 4);
        assert_int_equal(poll_with(path, st.srv.key, etag, again, sizeof again), 304);
        assert_string_equal(again, etag);
        if (i == 0) assert_memory_equal(etag, "W/\"", 3); /* the job's clock fields */
        if (i == 2) snprintf(lb_etag, sizeof lb_etag, "%s", etag);
    }

    /* A change is a new event, hence a new tag: 200 for the old one. */
    char body[256];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"models\": [\"nb\"], \"budget\": {\"max_trials\": 50,"
             " \"max_seconds\": 600}}", st.dataset);
    char id[64], path[200], etag[128], etag2[128];
    snprintf(id, sizeof id, "%s", th_post_job(&st.srv, body));
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    assert_int_equal(poll_with(path, st.srv.key, NULL, etag, sizeof etag), 200);
    struct th_resp r;
    assert_int_equal(th_http(&st.srv, "PATCH", path, st.srv.key, NULL,
                             "{\"budget\": {\"max_trials\": 60}}",
                             strlen("{\"budget\": {\"max_trials\": 60}}"), &r), 0);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
    assert_int_equal(poll_with(path, st.srv.key, etag, etag2, sizeof etag2), 200);
    assert_string_not_equal(etag, etag2);
    char cpath[220];
    snprintf(cpath, sizeof cpath, "%s/cancel", path);
    assert_int_equal(th_http(&st.srv, "POST", cpath, st.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 202);
    th_resp_free(&r);
    assert_int_equal(poll_with(path, st.srv.key, etag2, NULL, 0), 200);
    assert_string_equal(th_wait_job(&st.srv, id, "cancelled", 30), "cancelled");
}

static void another_team_gets_404_also_from_memory(void **state)
{
    struct th_resp r;
    assert_int_equal(th_http(&st.srv, "POST", "/v1/teams", st.srv.key, NULL,
                             "{\"name\": \"rivals\"}", strlen("{\"name\": \"rivals\"}"), &r), 0);
    assert_int_equal(r.status, 201);
    char *rival = strdup(th_json_str(&r, "admin_key.key"));
    th_resp_free(&r);
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s/leaderboard", job);
    assert_int_equal(poll_with(path, rival, NULL, NULL, 0), 404);
    assert_int_equal(poll_with(path, rival, lb_etag, NULL, 0), 404);
    snprintf(path, sizeof path, "/v1/jobs/%s/events", job);
    assert_int_equal(poll_with(path, rival, NULL, NULL, 0), 404);
    free(rival);
}

/* With PostgreSQL stopped, an unchanged poll is still 304 (it needs no
 * query: the key is cached, the seq is known); one that needs the
 * database is 503. */
static void unchanged_poll_needs_no_database(void **state)
{
    char path[256], lb[256];
    snprintf(path, sizeof path, "/v1/jobs/%s/trials", job);
    snprintf(lb, sizeof lb, "/v1/jobs/%s/leaderboard", job);
    /* A fresh key, verified against the database just now. */
    struct th_resp r;
    assert_int_equal(th_http(&st.srv, "GET", "/v1/me", st.srv.key, NULL, NULL, 0, &r), 0);
    char kpath[160];
    snprintf(kpath, sizeof kpath, "/v1/teams/%s/keys", th_json_str(&r, "team.id"));
    th_resp_free(&r);
    assert_int_equal(th_http(&st.srv, "POST", kpath, st.srv.key, NULL, "{\"name\": \"poller\"}",
                             strlen("{\"name\": \"poller\"}"), &r), 0);
    assert_int_equal(r.status, 201);
    char *key = strdup(th_json_str(&r, "key"));
    th_resp_free(&r);
    char etag[128];
    assert_int_equal(poll_with(lb, key, NULL, etag, sizeof etag), 200);
    assert_string_equal(etag, lb_etag);

    assert_int_equal(th_pg_ctl("stop"), 0);
    long unchanged = poll_with(lb, key, etag, NULL, 0);
    long uncached = poll_with(path, key, NULL, NULL, 0);
    long other = poll_with("/v1/datasets", key, NULL, NULL, 0);
    assert_int_equal(th_pg_ctl("start"), 0);
    assert_int_equal(unchanged, 304);
    assert_int_equal(uncached, 503);
    assert_int_equal(other, 503);

    /* Back to normal once PostgreSQL is. */
    double until = th_now_s() + 20;
    long status = 0;
    while (th_now_s() < until && (status = poll_with(path, key, NULL, NULL, 0)) != 200)
        usleep(200 * 1000);
    assert_int_equal(status, 200);
    assert_int_equal(poll_with(lb, key, etag, NULL, 0), 304);
    free(key);
}

static void cors_answers_listed_origins_only(void **state)
{
    struct raw r;
    const char *pre[] = {"Origin: " ORIGIN, "Access-Control-Request-Method: GET",
                         "Access-Control-Request-Headers: authorization, if-none-match", NULL};
    raw_call("OPTIONS", "/v1/jobs", pre, &r);
    assert_int_equal(r.status, 204);
    assert_string_equal(raw_header_value(&r, "Access-Control-Allow-Origin"), ORIGIN);
    const char *allow = raw_header_value(&r, "Access-Control-Allow-Headers");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "Authorization"));
    assert_non_null(strstr(allow, "If-None-Match"));
    assert_non_null(strstr(allow, "Last-Event-ID"));
    assert_non_null(strstr(raw_header_value(&r, "Access-Control-Allow-Methods"), "PATCH"));
    assert_non_null(raw_header_value(&r, "Access-Control-Max-Age"));
    assert_string_equal(raw_header_value(&r, "Vary"), "Origin");
    free(r.body);

    const char *evil[] = {"Origin: https://evil.example.com", "Access-Control-Request-Method: GET",
                          NULL};
    raw_call("OPTIONS", "/v1/jobs", evil, &r);
    assert_int_equal(r.status, 403);
    assert_null(raw_header_value(&r, "Access-Control-Allow-Origin"));
    free(r.body);

    /* Actual requests: answers (errors too) carry the origin and what
     * headers a page may read. */
    char auth[200], path[200];
    auth_header(auth, sizeof auth, st.srv.key);
    snprintf(path, sizeof path, "/v1/jobs/%s/leaderboard", job);
    const char *get[] = {auth, "Origin: " ORIGIN, NULL};
    raw_call("GET", path, get, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(raw_header_value(&r, "Access-Control-Allow-Origin"), ORIGIN);
    assert_non_null(strstr(raw_header_value(&r, "Access-Control-Expose-Headers"), "ETag"));
    free(r.body);
    const char *nokey[] = {"Origin: " ORIGIN, NULL};
    raw_call("GET", path, nokey, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(raw_header_value(&r, "Access-Control-Allow-Origin"), ORIGIN);
    free(r.body);
    const char *other[] = {auth, "Origin: https://evil.example.com", NULL};
    raw_call("GET", path, other, &r);
    assert_int_equal(r.status, 200);
    assert_null(raw_header_value(&r, "Access-Control-Allow-Origin"));
    free(r.body);
}

/* --- an idle stream: heartbeats, then live events, then its end ---------------- */

struct live {
    struct sse s;
    char path[200];
};

static void *live_reader(void *arg)
{
    struct live *l = arg;
    sse_read(&l->s);
    return NULL;
}

static void idle_stream_beats_then_wakes_for_live_events(void **state)
{
    /* Without a scheduler the job stays queued and says nothing. */
    assert_int_equal(th_scheduler_stop(&st.sched), 0);
    char body[256];
    snprintf(body, sizeof body, "{\"dataset_id\": \"%s\", \"models\": [\"nb\"]}", st.dataset);
    char id[64], path[200];
    snprintf(id, sizeof id, "%s", th_post_job(&st.srv, body));
    struct live *l = calloc(1, sizeof *l);
    assert_non_null(l);
    snprintf(l->path, sizeof l->path, "/v1/jobs/%s/events", id);
    l->s.path = l->path;
    snprintf(l->s.last_event_id, sizeof l->s.last_event_id, "1"); /* after "queued" */
    l->s.timeout_s = 30;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, live_reader, l), 0);

    usleep(2600 * 1000); /* heartbeat: 1 s */
    char lb[220], job_tag[128], lb_tag[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    snprintf(lb, sizeof lb, "/v1/jobs/%s/leaderboard", id);
    assert_int_equal(poll_with(path, st.srv.key, NULL, job_tag, sizeof job_tag), 200);
    assert_int_equal(poll_with(lb, st.srv.key, NULL, lb_tag, sizeof lb_tag), 200);
    struct th_resp r;
    double patched = th_now_s();
    assert_int_equal(th_http(&st.srv, "PATCH", path, st.srv.key, NULL,
                             "{\"parallelism\": 3}", strlen("{\"parallelism\": 3}"), &r), 0);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
    /* A budget change is news for the job, not for its leaderboard. */
    assert_int_equal(poll_with(path, st.srv.key, job_tag, NULL, 0), 200);
    assert_int_equal(poll_with(lb, st.srv.key, lb_tag, NULL, 0), 304);
    usleep(300 * 1000);
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    assert_int_equal(th_http(&st.srv, "POST", path, st.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 202);
    th_resp_free(&r);
    pthread_join(t, NULL);

    assert_int_equal(l->s.status, 200);
    assert_int_equal(l->s.rc, CURLE_OK); /* ended by the server after "cancelled" */
    assert_true(l->s.pings_before_first >= 2);
    assert_int_equal(l->s.n, 3);
    assert_int_equal(l->s.seq[0], 2);
    assert_string_equal(l->s.type[0], "job_updated");
    /* Woken by the NOTIFY, not by the next heartbeat or retry (1 s). */
    if (l->s.at[0] - patched > 0.5) fprintf(stderr, "live event after %.3f s\n", l->s.at[0] - patched);
    assert_true(l->s.at[0] - patched < 0.5);
    assert_int_equal(l->s.seq[1], 3);
    assert_string_equal(l->s.type[1], "job_updated");
    assert_int_equal(l->s.seq[2], 4);
    assert_string_equal(l->s.type[2], "job_state");
    free(l);

    const char *extra[] = {"--slots=1", NULL};
    assert_int_equal(th_scheduler_start(&st.sched, &st.db, extra), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stream_resumes_without_loss_or_repeat),
        cmocka_unit_test(json_events_check_their_parameters),
        cmocka_unit_test(unchanged_polls_are_304_and_changes_are_200),
        cmocka_unit_test(another_team_gets_404_also_from_memory),
        cmocka_unit_test(cors_answers_listed_origins_only),
        cmocka_unit_test(idle_stream_beats_then_wakes_for_live_events),
        cmocka_unit_test(unchanged_poll_needs_no_database),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}

/*
 * feed.c - see feed.h.
 *
 * The stream's content reader runs on a libmicrohttpd worker thread. It
 * hands out what it has buffered; with nothing buffered it reads the next
 * events from job_events when the job's seq (from NOTIFY) is past the last
 * one sent, writes a heartbeat when one is due, and otherwise suspends the
 * connection until the listener wakes it. A failed read is retried a
 * second later; the stream stays open meanwhile (an EventSource that gets
 * an error status would give up for good).
 */
#include "server/feed.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/pgjson.h"
#include "server/etag.h"
#include "server/events.h"
#include "server/jobs.h"
#include "server/resource.h"
#include "server/server.h"

#define FEED_BATCH "200"
#define RETRY_MS 1000

#define EVENT_COLUMNS                                                                   \
    "seq, type, trial_id, data, " PGJSON_TS("created_at") " AS created_at,"             \
    " type = 'job_state' AND data->>'state' IN ('succeeded', 'failed', 'cancelled') AS final"
/* Their columns in a read_events result (column 0: compacted_seq). */
enum { EV_SEQ = 1, EV_TYPE = 2, EV_FINAL = 6 };

/* A non-negative decimal of at most 18 digits. */
static int parse_seq(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18) return -1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return -1;
    *out = strtoll(s, NULL, 10);
    return 0;
}

/* Where to start: Last-Event-ID (a reconnecting EventSource), else
 * ?after. -1 with the 400 queued into *ret. */
static int start_after(struct http_req *r, int64_t *after, int *ret)
{
    *after = 0;
    const char *name = "Last-Event-ID";
    const char *v = http_header(r, "Last-Event-ID");
    if (v == NULL) {
        name = "after";
        v = http_query(r, "after");
    }
    if (v == NULL) return 0;
    if (parse_seq(v, after) < 0) {
        *ret = http_problem(r, 400, "invalid-parameter", "Invalid parameter", name,
                            "%s must be an event sequence number (a non-negative integer)", name);
        return -1;
    }
    return 0;
}

/* The job (of the caller's team): its state and latest seq. NULL with the
 * answer queued when it is not there or the database fails. */
static PGresult *fetch_head(struct http_req *r, int *ret)
{
    uint64_t epoch = events_epoch(r->srv->events);
    PGresult *res = resource_fetch(r, "job_id", "job",
        "SELECT j.id, j.team_id, j.state, coalesce(h.seq, 0), coalesce(h.job_seq, 0),"
        " coalesce(h.board_seq, 0)"
        " FROM jobs j LEFT JOIN job_event_heads h ON h.job_id = j.id"
        " WHERE j.id = $1 AND j.team_id = $2", ret);
    if (res != NULL) {
        struct events_job known;
        snprintf(known.team_id, sizeof known.team_id, "%s", PQgetvalue(res, 0, 1));
        for (int v = 0; v < EVENTS_VIEWS; v++)
            known.seq[v] = strtoll(PQgetvalue(res, 0, 3 + v), NULL, 10);
        events_note(r->srv->events, PQgetvalue(res, 0, 0), &known, epoch);
    }
    return res;
}

static int is_final(const char *state)
{
    return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
           strcmp(state, "cancelled") == 0;
}

/* Events (after, upto] of job, at most limit, and in the same snapshot
 * the job's compacted_seq (migrations/0007): column 0 of every row, then
 * EVENT_COLUMNS. Reading both at once is what makes "compacted" exact: a
 * compaction that committed before this statement shows in both, one
 * after it in neither. One row with a NULL seq when there is no event
 * in the range; none when the job is gone. */
static PGresult *read_events(struct pool_conn *db, const char *job_id, int64_t after,
                             int64_t upto, const char *limit)
{
    char a[24], u[24];
    snprintf(a, sizeof a, "%" PRId64, after);
    snprintf(u, sizeof u, "%" PRId64, upto);
    const char *p[4] = {job_id, a, u, limit};
    return pool_exec(db,
        "SELECT h.compacted_seq, e.* FROM job_event_heads h LEFT JOIN LATERAL"
        " (SELECT " EVENT_COLUMNS " FROM job_events"
        "   WHERE job_id = h.job_id AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4) e ON true"
        " WHERE h.job_id = $1 ORDER BY e.seq", 4, p);
}

/* The rows of a read_events result that hold an event. */
static int n_events(const PGresult *res)
{
    int n = PQntuples(res);
    return n == 1 && PQgetisnull(res, 0, EV_SEQ) ? 0 : n;
}

/* The job's compacted_seq in a read_events result (0 when gone). */
static int64_t compacted_of(const PGresult *res)
{
    return PQntuples(res) > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
}

static cJSON *event_json(const PGresult *res, int row)
{
    cJSON *e = pgjson_row(res, row);
    cJSON_DeleteItemFromObject(e, "final");
    cJSON_DeleteItemFromObject(e, "compacted_seq");
    return e;
}

/* --- JSON --------------------------------------------------------------------- */

static int feed_json(struct http_req *r, int64_t after)
{
    int ret;
    long limit;
    if (resource_query_int(r, "limit", 1, 1000, 100, &limit, &ret) < 0) return ret;
    char variant[64];
    snprintf(variant, sizeof variant, "events.%" PRId64 ".%ld", after, limit);
    if (jobs_poll_from_memory(r, EVENTS_ALL, variant, 1, &ret)) return ret;

    PGresult *head = fetch_head(r, &ret);
    if (head == NULL) return ret;
    char job_id[37], state[16];
    snprintf(job_id, sizeof job_id, "%s", PQgetvalue(head, 0, 0));
    snprintf(state, sizeof state, "%s", PQgetvalue(head, 0, 2));
    int64_t latest = strtoll(PQgetvalue(head, 0, 3), NULL, 10);
    PQclear(head);

    /* Bounded by the seq read above, so the body is what its tag says. */
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    PGresult *res = read_events(&r->db, job_id, after, latest, lim);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    int n = n_events(res);
    int64_t last = n > 0 ? strtoll(PQgetvalue(res, n - 1, EV_SEQ), NULL, 10) : after;
    int64_t compacted = compacted_of(res);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "job_id", job_id);
    cJSON_AddStringToObject(out, "state", state);
    cJSON_AddNumberToObject(out, "after", (double)after);
    cJSON_AddNumberToObject(out, "last_seq", (double)last);
    cJSON_AddNumberToObject(out, "latest_seq", (double)latest);
    cJSON_AddBoolToObject(out, "has_more", last < latest);
    cJSON_AddNumberToObject(out, "compacted_seq", (double)compacted);
    cJSON_AddBoolToObject(out, "compacted", after < compacted);
    cJSON *items = cJSON_AddArrayToObject(out, "items");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(items, event_json(res, i));
    PQclear(res);

    /* Weak: retention deletes progress events without a new seq, so a
     * body cached before that is confirmed by a 304 although it lists
     * more progress events than a fresh one (nothing less, nothing else). */
    char etag[ETAG_MAX];
    etag_job(etag, latest, variant, 1);
    if (etag_match(http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        cJSON_Delete(out);
        return http_respond_not_modified(r, etag);
    }
    char *text = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    if (text == NULL) return MHD_NO;
    return http_respond_bytes(r, 200, "application/json", text, strlen(text), etag);
}

/* --- Server-Sent Events -------------------------------------------------------- */

struct stream {
    struct events_waiter w;    /* first: the waiter is the stream */
    struct server *srv;
    int64_t sent;              /* the last seq written to out */
    int64_t known;             /* the head seq read when the stream began */
    int64_t next_ping_ms;
    int64_t retry_at_ms;       /* after a failed read; 0: none */
    int64_t compacted_told;    /* the compacted_seq of the last "compacted" sent */
    int finished;              /* the final job_state is in out */
    char *out;
    size_t len, off, cap;
};

static int out_append(struct stream *s, const char *text, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n) cap *= 2;
        char *b = realloc(s->out, cap);
        if (b == NULL) return -1;
        s->out = b;
        s->cap = cap;
    }
    memcpy(s->out + s->len, text, n);
    s->len += n;
    return 0;
}

/* Read the next events into out. 0, or -1 when the database failed. */
static int fill(struct stream *s)
{
    struct pool_conn db;
    char err[256];
    if (pool_acquire(s->srv->pool, 1000, &db, err, sizeof err) < 0) {
        log_msg(LOG_WARN, "event stream for job %s: %s", s->w.job_id, err);
        return -1;
    }
    PGresult *res = read_events(&db, s->w.job_id, s->sent, INT64_MAX, FEED_BATCH);
    pool_release(&db);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_msg(LOG_WARN, "event stream for job %s: %s", s->w.job_id, PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    /* Progress events after the last one sent were deleted by retention
     * (migrations/0007): say so before the events that remain, once per
     * compaction that overtook the stream. The notice has no id, so a
     * reconnection's Last-Event-ID stays the last event's. */
    int64_t compacted = compacted_of(res);
    if (compacted > s->sent && compacted > s->compacted_told) {
        char note[160];
        int n = snprintf(note, sizeof note,
                         "event: compacted\ndata: {\"after\":%" PRId64 ",\"compacted_seq\":%" PRId64
                         "}\n\n", s->sent, compacted);
        if (out_append(s, note, (size_t)n) < 0) {
            PQclear(res);
            return -1;
        }
        s->compacted_told = compacted;
    }
    for (int i = 0; i < n_events(res) && !s->finished; i++) {
        cJSON *e = event_json(res, i);
        char *data = e ? cJSON_PrintUnformatted(e) : NULL;
        cJSON_Delete(e);
        if (data == NULL) break;
        char head[160];
        int n = snprintf(head, sizeof head, "id: %s\nevent: %s\ndata: ",
                         PQgetvalue(res, i, EV_SEQ), PQgetvalue(res, i, EV_TYPE));
        int rc = out_append(s, head, (size_t)n);
        if (rc == 0) rc = out_append(s, data, strlen(data));
        if (rc == 0) rc = out_append(s, "\n\n", 2);
        cJSON_free(data);
        if (rc < 0) break;
        s->sent = strtoll(PQgetvalue(res, i, EV_SEQ), NULL, 10);
        s->w.seen = s->sent;
        if (PQgetvalue(res, i, EV_FINAL)[0] == 't') s->finished = 1;
    }
    PQclear(res);
    return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    struct events *ev = s->srv->events;
    (void)pos;
    for (;;) {
        if (s->off < s->len) {
            size_t n = s->len - s->off < max ? s->len - s->off : max;
            memcpy(buf, s->out + s->off, n);
            s->off += n;
            s->next_ping_ms = events_now_ms() + events_heartbeat_ms(ev);
            return (ssize_t)n;
        }
        s->off = s->len = 0; /* all handed out */
        if (s->finished || events_closing(ev)) return MHD_CONTENT_READER_END_OF_STREAM;

        int64_t now = events_now_ms();
        if (s->retry_at_ms && now >= s->retry_at_ms) s->retry_at_ms = 0;
        int64_t latest = events_seq(ev, s->w.job_id);
        if (s->known > latest) latest = s->known;
        if (latest > s->sent && s->retry_at_ms == 0) {
            if (fill(s) < 0) {
                s->retry_at_ms = now + RETRY_MS;
            } else if (s->len > 0) {
                continue;
            } else {
                /* Announced but not there (the job was deleted): look
                 * again later rather than spin. */
                s->known = s->sent;
                s->retry_at_ms = now + RETRY_MS;
            }
        }
        if (now >= s->next_ping_ms) {
            if (out_append(s, ": ping\n\n", 8) < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        int64_t wake = s->next_ping_ms;
        if (s->retry_at_ms && s->retry_at_ms < wake) wake = s->retry_at_ms;
        /* While a retry is pending, only the clock wakes the stream. */
        s->w.seen = s->retry_at_ms ? INT64_MAX : s->sent;
        int suspended = events_suspend(ev, &s->w, wake);
        s->w.seen = s->sent;
        if (suspended) return 0;
    }
}

static void stream_done(void *cls)
{
    struct stream *s = cls;
    events_unwatch(s->srv->events, &s->w);
    free(s->out);
    free(s);
}

static int feed_sse(struct http_req *r, int64_t after)
{
    int ret;
    PGresult *head = fetch_head(r, &ret);
    if (head == NULL) return ret;
    int final = is_final(PQgetvalue(head, 0, 2));
    int64_t latest = strtoll(PQgetvalue(head, 0, 3), NULL, 10);
    struct stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        PQclear(head);
        return MHD_NO;
    }
    snprintf(s->w.job_id, sizeof s->w.job_id, "%s", PQgetvalue(head, 0, 0));
    PQclear(head);
    if (final && after >= latest) {
        /* Nothing will follow: 204 tells an EventSource not to reconnect. */
        free(s);
        return http_respond_empty(r, 204);
    }
    s->srv = r->srv;
    s->w.conn = r->conn;
    s->w.seen = s->sent = after;
    s->known = latest;
    s->next_ping_ms = events_now_ms() + events_heartbeat_ms(r->srv->events);
    /* The first bytes: the client's reconnection delay, which also puts
     * the headers on the wire before any event is due. */
    if (out_append(s, "retry: 2000\n\n", 13) < 0) {
        free(s);
        return MHD_NO;
    }
    events_watch(r->srv->events, &s->w);
    static const char *const headers[] = {MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache",
                                          "X-Accel-Buffering", "no", NULL};
    ret = http_respond_callback(r, 200, MHD_SIZE_UNKNOWN, "text/event-stream", headers,
                                stream_read, s, stream_done);
    r->resp_bytes = 0;
    return ret;
}

int feed_get(struct http_req *r)
{
    int ret;
    if (!http_is_uuid(http_param(r, "job_id"))) return resource_not_found(r, "job");
    int64_t after;
    if (start_after(r, &after, &ret) < 0) return ret;
    const char *accept = http_header(r, "Accept");
    if (accept && strstr(accept, "text/event-stream")) return feed_sse(r, after);
    return feed_json(r, after);
}

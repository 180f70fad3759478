/*
 * retention.c - old job events deleted in small batches (retention.h).
 *
 * A pass is a chain of single statements on our own pgloop connection:
 * a page of candidate jobs, then compaction batches for each, then the
 * next page. One statement at a time, so a pass costs PostgreSQL one
 * backend and short transactions; nothing else of the scheduler waits on
 * it. Loop thread only.
 */
#include "scheduler/retention.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "scheduler/pgloop.h"

#define PAGE 100
#define MAX_SECONDS (10LL * 365 * 86400)
#define STR(x) #x
#define XSTR(x) STR(x)

/* Jobs holding progress events that a pass should compact now, after
 * cursor in job_id order ($1 cursor, $2 cap, $3 retention seconds or -1),
 * each with how many of its newest progress events to keep (0: none). */
static const char SQL_PAGE[] =
    "SELECT h.job_id::text, CASE WHEN j.state IN ('queued', 'running') THEN $2::int ELSE 0 END "
    "FROM job_event_heads h JOIN jobs j ON j.id = h.job_id "
    "WHERE h.has_progress AND h.job_id > $1::uuid "
    "AND ((j.state IN ('queued', 'running') AND $2::int > 0) "
    "  OR (j.state NOT IN ('queued', 'running') AND $3::bigint >= 0 "
    "      AND coalesce(j.finished_at, j.created_at) < now() - $3::bigint * interval '1 second')) "
    "ORDER BY h.job_id LIMIT " XSTR(PAGE);

static const char SQL_BATCH[] =
    "SELECT podium_compact_progress($1::uuid, $2::int, " XSTR(RETENTION_BATCH) ")";

struct retention {
    uv_loop_t *loop;
    struct pgloop *pl;          /* NULL: nothing to do */
    uv_timer_t timer;
    long long seconds;          /* -1: never */
    int cap;                    /* 0: none */
    int running, stopping;
    /* the pass under way */
    char cursor[40];
    char jobs[PAGE][40];
    int keep[PAGE];
    int n_jobs, i_job, touched_this_job;
    long long deleted;
    int jobs_touched, busy;
};

int retention_parse(const char *text, long long *seconds)
{
    if (strcmp(text, "never") == 0) {
        *seconds = -1;
        return 0;
    }
    long long v = 0;
    const char *p = text;
    if (!isdigit((unsigned char)*p)) return -1;
    for (; isdigit((unsigned char)*p); p++) {
        v = v * 10 + (*p - '0');
        if (v > MAX_SECONDS) return -1;
    }
    long long unit = 1;
    if (*p) {
        switch (*p) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: return -1;
        }
        if (p[1] != '\0') return -1;
    }
    if (v > MAX_SECONDS / unit) return -1;
    *seconds = v == 0 ? -1 : v * unit;
    return 0;
}

static void next_page(struct retention *r);
static void next_batch(struct retention *r);

static void end_pass(struct retention *r)
{
    r->running = 0;
    if (r->deleted > 0 || r->busy > 0)
        log_msg(LOG_INFO, "events retention: deleted %lld progress event(s) of %d job(s)%s",
                r->deleted, r->jobs_touched, r->busy ? "; some jobs were busy, next pass" : "");
}

static void on_batch(void *ctx, PGresult *res)
{
    struct retention *r = ctx;
    if (res == NULL || r->stopping) {
        end_pass(r);
        return;
    }
    int full = 0;
    if (!pgloop_ok(res) || PQntuples(res) != 1) {
        log_msg(LOG_WARN, "events retention: job %s: %s", r->jobs[r->i_job],
                PQresultErrorMessage(res));
    } else {
        long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        if (n < 0) r->busy++;
        if (n > 0) {
            r->deleted += n;
            if (!r->touched_this_job) r->jobs_touched++;
            r->touched_this_job = 1;
        }
        full = n >= RETENTION_BATCH;
    }
    if (!full) {
        r->i_job++;
        r->touched_this_job = 0;
    }
    next_batch(r);
}

static void next_batch(struct retention *r)
{
    if (r->i_job >= r->n_jobs) {
        if (r->n_jobs < PAGE) end_pass(r);
        else next_page(r);
        return;
    }
    char keep[16];
    snprintf(keep, sizeof keep, "%d", r->keep[r->i_job]);
    const char *v[] = {r->jobs[r->i_job], keep};
    if (pgloop_query(r->pl, SQL_BATCH, 2, v, 0, on_batch, r) < 0) end_pass(r);
}

static void on_page(void *ctx, PGresult *res)
{
    struct retention *r = ctx;
    if (res == NULL || r->stopping) {
        end_pass(r);
        return;
    }
    if (!pgloop_ok(res)) {
        log_msg(LOG_WARN, "events retention: %s", PQresultErrorMessage(res));
        end_pass(r);
        return;
    }
    r->n_jobs = PQntuples(res) < PAGE ? PQntuples(res) : PAGE;
    for (int i = 0; i < r->n_jobs; i++) {
        snprintf(r->jobs[i], sizeof r->jobs[i], "%s", PQgetvalue(res, i, 0));
        r->keep[i] = atoi(PQgetvalue(res, i, 1));
    }
    if (r->n_jobs > 0) snprintf(r->cursor, sizeof r->cursor, "%s", r->jobs[r->n_jobs - 1]);
    r->i_job = 0;
    r->touched_this_job = 0;
    next_batch(r);
}

static void next_page(struct retention *r)
{
    char cap[16], secs[24];
    snprintf(cap, sizeof cap, "%d", r->cap);
    snprintf(secs, sizeof secs, "%lld", r->seconds);
    const char *v[] = {r->cursor, cap, secs};
    if (pgloop_query(r->pl, SQL_PAGE, 3, v, 0, on_page, r) < 0) end_pass(r);
}

static void start_pass(struct retention *r)
{
    if (r->running || r->stopping || !pgloop_connected(r->pl)) return;
    r->running = 1;
    snprintf(r->cursor, sizeof r->cursor, "00000000-0000-0000-0000-000000000000");
    r->deleted = 0;
    r->jobs_touched = r->busy = 0;
    next_page(r);
}

static void on_timer(uv_timer_t *t)
{
    start_pass(t->data);
}

static void on_connect(void *ctx)
{
    start_pass(ctx);
}

struct retention *retention_new(uv_loop_t *loop, const char *conninfo,
                                long long retention_seconds, int progress_cap)
{
    struct retention *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->loop = loop;
    r->seconds = retention_seconds > 0 ? retention_seconds : -1;
    r->cap = progress_cap > 0 ? progress_cap : 0;
    if (r->seconds < 0 && r->cap == 0) {
        log_msg(LOG_INFO, "events retention: off (all events kept)");
        return r;
    }
    struct pgloop_events ev = {NULL, on_connect, NULL, r};
    r->pl = pgloop_new(loop, conninfo, "podium-scheduler retention", NULL, &ev);
    if (r->pl == NULL) {
        free(r);
        return NULL;
    }
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_timer, RETENTION_EVERY_MS, RETENTION_EVERY_MS);
    char window[32] = "never";
    if (r->seconds > 0) snprintf(window, sizeof window, "%lld s", r->seconds);
    log_msg(LOG_INFO, "events retention: progress events of jobs finished for %s, and of "
            "active jobs beyond the newest %d%s, deleted every %d s",
            window, r->cap, r->cap ? "" : " (no cap)", RETENTION_EVERY_MS / 1000);
    return r;
}

void retention_stop(struct retention *r)
{
    if (r == NULL || r->stopping) return;
    r->stopping = 1;
    if (r->pl == NULL) return;
    uv_close((uv_handle_t *)&r->timer, NULL);
    pgloop_close(r->pl);   /* a pass in flight ends in its callback (res NULL) */
    r->pl = NULL;
}

void retention_free(struct retention *r)
{
    free(r);
}

/*
 * jobs.h - search jobs and their trials over the API, and the cache of
 * rendered job resources that the handlers of a job's other views share.
 *
 * The server only records what a user asks for and reads back what the
 * schedulers did: POST /v1/jobs inserts a queued job and NOTIFYs
 * podium_jobs; podium-scheduler claims it, proposes and runs trials and
 * writes their results. Cancelling and raising budgets are the same:
 * a row update and a NOTIFY. Every change is also a job event
 * (migrations/0005, feed.h), and GETs of a job, its trials and its
 * leaderboard are tagged with the job's latest event seq.
 *
 * Leaderboards (a job's and a team's: leaderboard.h) and LR-finder
 * results (lrfind.h) are rendered once per version and served from memory
 * to every poller through the cache declared at the end of this file
 * (rcache.h; jobs.c and leaderboard.c say how each is keyed and
 * versioned): jobs_from_memory, jobs_cached_at and jobs_respond_job for a
 * job's resources, jobs_cached and jobs_respond_stored for any other key.
 * Models are models.h.
 *
 * Threads: everything here runs on libmicrohttpd's worker threads; the
 * cache may be used from any of them (rcache.h).
 */
#ifndef PODIUM_SERVER_JOBS_H
#define PODIUM_SERVER_JOBS_H

#include <stdint.h>

#include "lib/pgjson.h"
#include "server/events.h"
#include "server/http.h"

/* A job as the API shows it (without its progress): the select list over
 * jobs j that POST /v1/jobs and POST /v1/lr-find answer with. */
#define JOBS_COLUMNS                                                                   \
    "j.id, j.dataset_id, j.state, j.target, j.task, j.metric, j.higher_is_better,"    \
    " to_jsonb(j.models) AS models, j.strategy,"                                      \
    " json_build_object('max_trials', j.max_trials, 'max_seconds', j.max_seconds,"   \
    "   'trial_timeout_seconds', j.trial_timeout_seconds,"                            \
    "   'max_failed_trials', j.max_failed_trials) AS budget,"                         \
    " j.cv, j.seed, j.parallelism, j.options, j.cancel_requested, j.error,"           \
    " " PGJSON_TS("j.created_at") " AS created_at,"                                   \
    " " PGJSON_TS("j.started_at") " AS started_at,"                                   \
    " " PGJSON_TS("j.finished_at") " AS finished_at"

int jobs_create(struct http_req *r);
int jobs_list(struct http_req *r);
int jobs_get(struct http_req *r);
int jobs_update(struct http_req *r);
int jobs_cancel(struct http_req *r);
int jobs_trials(struct http_req *r);
int trials_get(struct http_req *r);

/* A metric a job may optimise: whether it scores classification (else
 * regression), and its direction. */
struct jobs_metric { const char *name; int classification; int higher_is_better; };

/* The metric called name, or NULL when there is none. */
const struct jobs_metric *jobs_metric_find(const char *name);

/* One job of the caller's team (the path's job_id), with progress; NULL
 * (response queued, *ret set) when it is not there. seq (may be NULL) gets
 * its latest event seqs, which the event table also learns. The caller
 * PQclears. */
PGresult *jobs_fetch(struct http_req *r, int *ret, int64_t seq[EVENTS_VIEWS]);

/* An unchanged GET answered from memory (events.h): when If-None-Match
 * matches the tag of variant at the job's latest seq of view (enum
 * events_view), queue 304 (or 404 for another team's job) into *ret and
 * return 1; otherwise 0 (read the database). weak: the tag is W/. */
int jobs_poll_from_memory(struct http_req *r, int view, const char *variant, int weak, int *ret);

struct rcache;
struct rcache_flight;

/* The server's cache of rendered job resources (NULL when it could not be
 * made: everything is then rendered each time). */
struct rcache *jobs_responses(void);

/* The body cached under key at version for team_id: answered (200, or
 * 304 for a matching If-None-Match) into *ret, and 1. Otherwise 0, and
 * *flight is set when the caller is to render it for everyone (finish it
 * with jobs_respond_stored, or rcache_abandon on failure). */
int jobs_cached(struct http_req *r, const char *key, const char *version, const char *team_id,
                struct rcache_flight **flight, int *ret);

/* A GET of a job resource's representation variant, whose version is the
 * job's seq of view: 1 with *ret when answered from memory (304 for an
 * unchanged poll, 404 for another team's job, the cached body); 0
 * otherwise (read the database), with *flight set when the caller is to
 * render it for everyone. */
int jobs_from_memory(struct http_req *r, int view, const char *variant,
                     struct rcache_flight **flight, int *ret);

/* After reading job_id at seq from the database: jobs_from_memory's
 * lookup at that seq, unless *flight is set already (then 0). */
int jobs_cached_at(struct http_req *r, const char *job_id, const char *variant, int64_t seq,
                   struct rcache_flight **flight, int *ret);

/* jobs_respond_stored for a job resource: keyed by job_id and variant at
 * seq, tagged as etag_job(seq, variant) (strong). */
int jobs_respond_job(struct http_req *r, struct rcache_flight *flight, const char *job_id,
                     const char *variant, int64_t seq, const char *content_type, char *body,
                     size_t len);

/* Store a rendered body (malloc'd, taken) under key at version for the
 * caller's team, end flight (may be NULL) and answer: 200 with the body,
 * or 304 when If-None-Match has etag. */
int jobs_respond_stored(struct http_req *r, struct rcache_flight *flight, const char *key,
                        const char *version, const char *content_type, char *body, size_t len,
                        const char *etag);

#endif

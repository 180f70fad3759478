/*
 * jobs.h - search jobs, their trials and leaderboards over the API.
 *
 * The server only records what a user asks for and reads back what the
 * schedulers did: POST /v1/jobs inserts a queued job and NOTIFYs
 * podium_jobs; podium-scheduler claims it, proposes and runs trials and
 * writes their results. Cancelling and raising budgets are the same:
 * a row update and a NOTIFY. Every change is also a job event
 * (migrations/0005, feed.h), and GETs of a job, its trials and its
 * leaderboard are tagged with the job's latest event seq.
 */
#ifndef PODIUM_SERVER_JOBS_H
#define PODIUM_SERVER_JOBS_H

#include "lib/pgjson.h"
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
int jobs_leaderboard(struct http_req *r);
int trials_get(struct http_req *r);
int leaderboards_team(struct http_req *r);
int models_get(struct http_req *r);
int models_artifact(struct http_req *r);

/* An unchanged GET answered from memory (events.h): when If-None-Match
 * matches the tag of variant at the job's latest seq of view (enum
 * events_view), queue 304 (or 404 for another team's job) into *ret and
 * return 1; otherwise 0 (read the database). weak: the tag is W/. */
int jobs_poll_from_memory(struct http_req *r, int view, const char *variant, int weak, int *ret);

#endif

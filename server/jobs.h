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

#include "server/http.h"

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

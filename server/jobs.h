/*
 * jobs.h - search jobs, their trials and leaderboards over the API.
 *
 * The server only records what a user asks for and reads back what the
 * schedulers did: POST /v1/jobs inserts a queued job and NOTIFYs
 * podium_jobs; podium-scheduler claims it, proposes and runs trials and
 * writes their results. Cancelling and raising budgets are the same:
 * a row update and a NOTIFY.
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

#endif

/*
 * leaderboard.h - the leaderboards over the API, each as JSON or, for
 * Accept: text/csv, as CSV:
 *
 *   GET /v1/jobs/{id}/leaderboard    a job's models, ranked by its metric
 *   GET /v1/leaderboards?dataset_id= every model the team trained on a
 *                                    data set (and target), ranked by one
 *                                    metric
 *
 * A job's board is tagged with the job's board seq (etag.h), a team's
 * with a hash; both are rendered once per version and served from memory
 * to every poller (the jobs' response cache, jobs.h). The team's is paged
 * by keyset (limit, cursor, `next`; only its first page is kept) and its
 * CSV export, every model, is streamed from one snapshot instead of
 * rendered. leaderboard.c says how.
 *
 * The handlers keep the names of their routes (routes.c), as the other
 * handlers of job resources do. Threads: libmicrohttpd's worker threads;
 * the export's later batches are read by its content reader, on the
 * worker that serves the download.
 */
#ifndef PODIUM_SERVER_LEADERBOARD_H
#define PODIUM_SERVER_LEADERBOARD_H

#include "server/http.h"

int jobs_leaderboard(struct http_req *r);
int leaderboards_team(struct http_req *r);

#endif

/*
 * lrfind.h - the learning-rate finder over the API.
 *
 *   POST /v1/lr-find                 start one: a job with strategy
 *                                    "lr_find" (scheduler/lrfind_strategy.c)
 *   GET  /v1/jobs/{id}/lr-find       its curve and suggestion
 *   GET  /v1/jobs/{id}/lr-find.svg   the curve drawn (nn/lrfind.h)
 *
 * The request:
 *   {"dataset_id": uuid, required,
 *    "model": {"family": "mlp" | "cnn", "params": {...}}, required
 *             (cnn only on an image data set; mlp params are checked here
 *             as podium-train checks them),
 *    "target": a column (tables; default the profile's; "class" or absent
 *              for images),
 *    "options": {"start": (0, end) = 1e-7, "end": at most 1e6 = 10,
 *                "iterations": 10..1000 = 100,
 *                "suggestion": "valley" | "steep" | "minimum" = "valley"},
 *    "seed": 0..2^31-1 = 0}
 * Every bad member is reported in one 422. The job: models [family],
 * max_trials 1, parallelism 1, no failures allowed, 600 s budget and trial
 * timeout; options {"lr_find": the options with defaults filled in,
 * "model_params": params} (plus "image", the size images are converted to,
 * for an image data set). The answer is 202 with the job, as POST /v1/jobs
 * answers.
 *
 * The result comes from the trial's details (trainers/lrtest.h); until
 * there is one, both GETs answer 409 (problem type lr-find-pending, or
 * lr-find-failed once the job ended without one), and 404 for a job that
 * is not an LR-finder job.
 */
#ifndef PODIUM_SERVER_LRFIND_H
#define PODIUM_SERVER_LRFIND_H

#include "server/http.h"

int lrfind_create(struct http_req *r);
int lrfind_get(struct http_req *r);
int lrfind_get_svg(struct http_req *r);

#endif
